"""Chapter 7 evaluation protocols on trained runs: the MMNIST probes and retrieval, the Weizmann attentive classifier,
the RAVDESS fine-tuning (issue 13 §4; spec ch7 §3.6, §5 (a)-(d), §8). `launchers/video_eval.py` is the command line.

What the thesis states (T = thesis line):
  * 7.4.4 (T:L6584-6612): a linear classifier on S of 2-digit MMNIST (55 unordered pairs) reaches 69.1 %; a linear
    classifier on the per-frame s_t whose frames vote reaches 63.0 %. The test set is the fixed 10,000 8-frame
    sequences of the test digits (T:L6946-6947).
  * Table 7.1 (T:L6614-6650, T:L6699-6712): top-1 nearest neighbours in P, in the supervised classifier's last FC
    and in the autoencoder's bottleneck, scored by the L1 keypoint displacement distance between the reference and
    the retrieved clip (MMNIST: the digit centres from the simulator): 24 (ours), 61 (classification), 24 (recon.).
  * Table 7.2 (T:L6720-6790): Weizmann, a linear classifier with attention a in [0, 1] on frozen (S, P), the clips
    of a video averaged, leave one actor out: 96 %.
  * Table 7.3 (T:L6800-6830): RAVDESS, Enc_v fine-tuned from random (67 %), from an S-only stage 2 (68 %), from the
    full stage 2 (72 %), 5-split cross-validation, the clips of a video vote.

[proposal] choices made here (the thesis does not state them):
  * Features are computed in inference mode (BN moving statistics), in batches: S flattened to [n, h w c], P [n,
    dim P], s_t = g_enc of each frame flattened [n, T, h w c], the baselines' `features` [n, dim P].
  * Probe: `evaluation.fit_linear_probe` (standardised features, L-BFGS softmax regression, L2 1e-4) fitted on
    `num_train` clips of the *train* split drawn with seed PROBE_TRAIN_SEED + seed (fresh trajectories of the
    training digits), scored on the first `num_test` clips of the thesis's test set (split 'test',
    moving_mnist.HELD_OUT_SEED). The s_t baseline fits one probe on all frames (`evaluation.frame_probe_votes`);
    the headline vote is the mean softmax (spec A14); mean logits and majority are reported too.
  * Retrieval: queries are the first `num_queries` clips of split 'val' (HELD_OUT_SEED), the database the first
    `num_database` clips of the test set; `evaluation.retrieval_report` (centres as keypoints, best digit
    permutation, sum over the T-1 steps and the per-step mean) and top-1 digit-pair agreement;
    `evaluation.random_retrieval_report` is the floor. Distances are in pixels of the run's frames; the
    `*_64px` numbers scale them to 64-pixel frames (the thesis's size) for the table.
  * Retrieval on Weizmann / RAVDESS (Table 7.1's other rows): the centred clip of every prepared video, each
    clip's top-1 Euclidean neighbour among the other videos (leave one out), scored with the keypoints the shards
    store, keypoint m matched to m (RAVDESS: the 5 MTCNN landmarks, the thesis's; Weizmann: the joints of the user's
    OpenPose output when prepared with --openpose_dir, the thesis's, else the mask keypoints, a different metric);
    clips with a missing keypoint are left out and counted. Also the label (action / emotion) agreement and how
    often the neighbour shows the same person (the thesis notes that RAVDESS neighbours from reconstruction
    features share the identity). Pixels of the stored frames; the thesis gives no units.
  * Controlled swap (Fig. 7.1 as a number): per query q, `moving_mnist.recombine` renders one clip with q's
    trajectories and the digits of another query q' (chosen, seeded, among the queries with a different digit pair)
    and one with q's digits and the trajectories of another query q''; the rate is how often a feature puts the
    first nearer to q (`evaluation.controlled_swap_rates`, ties 1/2, chance 50 %). These clips are compared with
    their own query only; the Table 7.1 database is left as it is.
  * Attentive (Weizmann): `windows_per_video` evenly spaced 8-frame windows per prepared video (1 = the centred
    window, as `video_shards.make_dataset(training=False)`), frames resized (area) to the run's frame size as the
    training reader does; S and P standardised with the training part's mean / std in each fold; an
    `AttentiveClassifier` (c_g = 128) trained by `classifiers.train_head` with the clips of a video averaged
    (group ids = video ids), Adam 1e-3, `epochs` (spec §6: 100); accuracy per held-out actor's videos, the mean
    over folds, and the mean attention a on the held-out clips.
  * Fine-tuning (RAVDESS): `evaluation.identity_folds` (5 person-disjoint folds, seeded); per fold a
    `FinetuneClassifier` from random, or `load_from` the fold's pretrained stage 2 (its ablation decides 'S only'
    or 'S + P'); trained by `classifiers.BaselineTrainer` on the training people's videos through the training
    reader (random windows, the config's flips), lr 1e-3 x 0.5 every 50 epochs (7.b.3) for `epochs` epochs of
    ceil(videos / batch) steps; tested on the held-out people's videos with `windows_per_video` windows each,
    clip logits voted per video (mean softmax headline; mean logits and majority too).
    By default (cv_pretrain='per_fold') fold i needs its own pretrained run whose stage 2 (and, when its config is
    readable, stage 1) was trained with --exclude_actors covering fold i's test people; cv_pretrain='shared' uses
    one run for every fold and marks the result transductive (the unsupervised pretraining saw the test people).
"""

import dataclasses
import json
import math
import os
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from rlcv_tf.video import evaluation
from rlcv_tf.video import presets
from rlcv_tf.video import run_config

TASKS = ('probe', 'retrieval', 'attentive', 'finetune')
TASK_DATASETS = {'probe': 'mmnist', 'retrieval': 'mmnist', 'attentive': 'weizmann', 'finetune': 'ravdess'}
KINDS = ('stage1', 'stage2', 'classifier', 'autoencoder')
CV_PRETRAIN = ('per_fold', 'shared')
FOLD_FIELD = '{fold}'
# Which run kind gives each feature.
FEATURE_KINDS = {'P': ('stage2',), 'S': ('stage2',), 's_t': ('stage1', 'stage2'), 'classifier': ('classifier',),
                 'autoencoder': ('autoencoder',)}
FEATURE_FLAGS = {'P': '--logdir', 'S': '--logdir', 's_t': '--logdir', 'classifier': '--classifier_logdir',
                 'autoencoder': '--autoencoder_logdir'}
HEADLINE_VOTE = 'mean_softmax'
PROBE_TRAIN_SEED = 7_001        # + seed: the probe's training clips (train split), not any run's stream
SWAP_SEED = 7_002               # + seed: which other queries lend digits / trajectories to the controlled swap
FINETUNE_LR = 1e-3              # 7.b.3
FINETUNE_LR_STEP_EPOCHS = 50    # x0.5 every 50 epochs (7.b.3)
ATTENTIVE_EPOCHS = 100          # spec §6 [proposal]
THESIS_FRAME_SIZE = 64
SHARD_RETRIEVAL_DATASETS = ('weizmann', 'ravdess')
# Table 7.1's other rows (units not given in the thesis; Weizmann with OpenPose keypoints).
THESIS_SHARD_RETRIEVAL = {'weizmann': {'P': 0.92, 'classifier': 1.87, 'autoencoder': 0.96},
                          'ravdess': {'P': 2.75, 'classifier': 3.03, 'autoencoder': 3.07}}
THESIS = {
    'probe': {'statics': 0.691, 'frame_vote': 0.630},
    'retrieval': {'P': 24.0, 'classifier': 61.0, 'autoencoder': 24.0},
    'attentive': {'S+P': 0.96, 'supervised 3DCNN': 0.75},
    'finetune': {'random': 0.67, 'statics_only': 0.68, 'full': 0.72},
}

Clips = Dict[str, np.ndarray]
Extractor = Callable[[Clips], np.ndarray]


class RunError(ValueError):
  """A logdir that holds no usable Chapter 7 run for the task (one line naming the directory and the fix)."""


@dataclasses.dataclass
class TaskResult:
  """A task's JSON-ready report and its pictures (name -> uint8 [H, W, 3] sheet)."""
  report: Dict
  images: Dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


# ------------------------------------------------------------------------------------------------ runs (no TF)
@dataclasses.dataclass
class RunInfo:
  """A run's recorded settings (read from config.json only; no TensorFlow)."""
  logdir: str
  cfg: presets.VideoConfig
  run: run_config.RunConfig

  @property
  def kind(self) -> str:
    return self.run.kind

  @property
  def excluded_actors(self) -> Tuple[str, ...]:
    return tuple(a for a in self.run.exclude_actors.split(',') if a)

  def describe(self) -> str:
    extra = f', ablation {self.run.ablation}' if self.run.ablation else ''
    article = 'an' if self.kind[0] in 'aeiou' else 'a'
    return f'{article} {self.kind} run on {self.run.dataset}{extra}'


_TRAIN_HINT = 'train one with python -m launchers.video --logdir=DIR'


def read_run(logdir: str, flag: str = '--logdir') -> RunInfo:
  """The settings of the Chapter 7 run in `logdir` (config.json of `launchers.video`); RunError (one line) for a
  directory with no run, a run of another launcher, or a run without a checkpoint."""
  path = os.path.join(logdir, 'config.json')
  if not os.path.isdir(logdir) or not os.path.isfile(path):
    raise RunError(f'{flag}={logdir}: no run there (no config.json); {_TRAIN_HINT}')
  try:
    with open(path) as f:
      saved = json.load(f)
  except (OSError, ValueError) as e:
    raise RunError(f'{flag}={logdir}: config.json is unreadable ({type(e).__name__}); {_TRAIN_HINT}') from None
  model, run = (saved.get('model'), saved.get('run')) if isinstance(saved, dict) else (None, None)
  if (not isinstance(model, dict) or not isinstance(run, dict) or model.get('dataset') not in presets.DATASETS
      or run.get('model') not in run_config.MODELS):
    raise RunError(f'{flag}={logdir} holds a run of another launcher, not of python -m launchers.video; pass a '
                   'Chapter 7 run')
  try:
    cfg = presets.VideoConfig.from_dict(model).validate()
    names = {f.name for f in dataclasses.fields(run_config.RunConfig)}
    rc = run_config.RunConfig(**{k: v for k, v in run.items() if k in names})
  except (TypeError, ValueError) as e:
    raise RunError(f'{flag}={logdir}: config.json does not describe a valid run ({e}); {_TRAIN_HINT}') from None
  checkpoints = os.path.join(logdir, 'checkpoints')
  if not os.path.isfile(os.path.join(checkpoints, 'checkpoint')):
    raise RunError(f'{flag}={logdir}: the run has no checkpoint yet; let it train (python -m launchers.video '
                   f'--logdir={logdir} resumes it)')
  return RunInfo(logdir, cfg, rc)


def check_run(info: RunInfo, kinds: Sequence[str], dataset: Optional[str] = None, flag: str = '--logdir',
              purpose: str = '') -> RunInfo:
  """RunError unless the run is one of `kinds` on `dataset`; returns `info`."""
  why = f' ({purpose})' if purpose else ''
  if dataset is not None and info.run.dataset != dataset:
    raise RunError(f'{flag}={info.logdir} is {info.describe()}, but this needs a {dataset} run{why}')
  if info.kind not in kinds:
    want = ' or '.join(kinds)
    hint = (f'; train stage 2 on it: python -m launchers.video --dataset={info.run.dataset} --stage=2 '
            f'--stage1_logdir={info.logdir}') if info.kind == 'stage1' and 'stage2' in kinds else ''
    raise RunError(f'{flag}={info.logdir} is {info.describe()}, but this needs a {want} run{why}{hint}')
  return info


def fold_logdirs(pattern: str, num_folds: int) -> List[str]:
  """The per-fold logdirs of a pattern holding '{fold}' (0-based fold index)."""
  if FOLD_FIELD not in pattern:
    raise ValueError(f'pretrain_logdir_pattern: {pattern!r} has no {FOLD_FIELD}; write e.g. runs/ravdess_fold'
                     f'{FOLD_FIELD}_stage2 (fold 0..{num_folds - 1})')
  return [pattern.replace(FOLD_FIELD, str(i)) for i in range(num_folds)]


# ------------------------------------------------------------------------------------------------ loaded runs
def _tf():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf


def _value_range(cfg: presets.VideoConfig) -> Tuple[float, float]:
  return (0.0, 1.0) if cfg.output_activation == 'sigmoid' else (-1.0, 1.0)


def prepare_videos(videos, cfg: presets.VideoConfig) -> np.ndarray:
  """Model input from clips: uint8 frames are scaled into the config's pixel range ([0, 1] sigmoid, [-1, 1] tanh),
  then frames of another size are resized with area averaging (the order of `video_shards.make_dataset`)."""
  v = np.asarray(videos)
  if v.ndim != 5:
    raise ValueError(f'videos: expected [n, T, H, W, C], got shape {v.shape}')
  if v.shape[-1] != cfg.channels:
    raise ValueError(f'videos: {v.shape[-1]} channels but the model takes {cfg.channels}')
  if v.dtype == np.uint8:
    low, high = _value_range(cfg)
    v = v.astype(np.float32) * np.float32((high - low) / 255.0) + np.float32(low)
  v = v.astype(np.float32, copy=False)
  size = cfg.image_size
  if v.shape[2:4] != (size, size) and v.size:
    tf = _tf()
    n, t = v.shape[:2]
    v = tf.image.resize(v.reshape((n * t,) + v.shape[2:]), [size, size], method='area').numpy()
    v = v.reshape((n, t, size, size, cfg.channels))
  return v


class LoadedRun:
  """A run with its Keras models restored from the latest checkpoint, and batched inference-mode features.

  Attributes: logdir, cfg (VideoConfig), run (RunConfig), kind, checkpoint (path), models (name -> Keras model:
  frame_autoencoder, block_stn [, video_encoder, frame_dynamics, predictor] for stage 1 [2], or {kind: model} for
  a baseline). Videos passed to the feature methods are float [n, T, H, W, C] in the model's pixel range, or uint8
  frames (scaled to it), at any frame size (resized with area averaging to the run's, as the shard reader does).
  """

  def __init__(self, info: RunInfo, models: Dict[str, object], checkpoint: str):
    self.info = info
    self.logdir, self.cfg, self.run, self.kind = info.logdir, info.cfg, info.run, info.kind
    self.models = models
    self.checkpoint = checkpoint
    self._fns: Dict[str, Callable] = {}

  def __repr__(self):
    return f'LoadedRun({self.logdir!r}, {self.kind}, {self.cfg.name})'

  @property
  def video_encoder(self):
    return self._model('video_encoder', ('stage2',))

  @property
  def frame_autoencoder(self):
    return self._model('frame_autoencoder', ('stage1', 'stage2'))

  @property
  def baseline(self):
    return self._model(self.kind, ('classifier', 'autoencoder'))

  def _model(self, name, kinds):
    if self.kind not in kinds:
      raise RunError(f'{self.logdir} is {self.info.describe()}; it has no {name} (needs a {" or ".join(kinds)} run)')
    return self.models[name]

  # -------------------------------------------------------------------------------------------- inputs
  def prepare(self, videos) -> np.ndarray:
    """float32 [n, T, H, W, C] in the model's range at the model's frame size (`prepare_videos`)."""
    return prepare_videos(videos, self.cfg)

  def _batched(self, name: str, make_fn, videos, batch_size: int) -> Tuple[np.ndarray, ...]:
    if batch_size < 1:
      raise ValueError(f'batch_size: got {batch_size}; valid values are integers >= 1')
    if name not in self._fns:
      self._fns[name] = make_fn()
    fn = self._fns[name]
    tf = _tf()
    outs = []
    for i in range(0, len(videos), batch_size):
      out = fn(tf.constant(self.prepare(videos[i:i + batch_size])))
      outs.append(tuple(np.asarray(o) for o in (out if isinstance(out, (tuple, list)) else (out,))))
    if not outs:
      raise ValueError('videos: got no clips')
    return tuple(np.concatenate(parts) for parts in zip(*outs))

  def _signature(self, frames=None):
    tf = _tf()
    c = self.cfg
    return [tf.TensorSpec((None, frames) + c.frame_shape, tf.float32)]

  # -------------------------------------------------------------------------------------------- features
  def statics_and_dynamics(self, videos, batch_size: int = 32) -> Tuple[np.ndarray, np.ndarray]:
    """(S [n, h, w, c], P [n, dim P]) of Enc_v (stage 2)."""
    encoder = self.video_encoder
    tf = _tf()
    make = lambda: tf.function(lambda v: encoder(v, training=False), input_signature=self._signature(
        self.cfg.num_frames))
    return self._batched('encode', make, videos, batch_size)

  def statics(self, videos, batch_size: int = 32) -> np.ndarray:
    """S flattened: [n, h w c]."""
    s, _ = self.statics_and_dynamics(videos, batch_size)
    return s.reshape(len(s), -1)

  def dynamics(self, videos, batch_size: int = 32) -> np.ndarray:
    """P: [n, dim P]."""
    return self.statics_and_dynamics(videos, batch_size)[1]

  def frame_codes(self, videos, batch_size: int = 32) -> np.ndarray:
    """s_t = g_enc(x_t) of every frame, flattened: [n, T, h w c] (stage 1 or 2)."""
    autoencoder = self.frame_autoencoder
    tf = _tf()
    make = lambda: tf.function(lambda v: autoencoder.encode_video(v, training=False),
                               input_signature=self._signature(None))
    (codes,) = self._batched('frames', make, videos, batch_size)
    return codes.reshape(codes.shape[:2] + (-1,))

  def baseline_features(self, videos, batch_size: int = 32) -> np.ndarray:
    """The classifier's last FC before the softmax, or the autoencoder's bottleneck: [n, dim P]."""
    model = self.baseline
    tf = _tf()
    make = lambda: tf.function(lambda v: model.features(v, training=False), input_signature=self._signature(
        self.cfg.num_frames))
    (feats,) = self._batched('baseline', make, videos, batch_size)
    return feats

  def features(self, name: str, videos, batch_size: int = 32) -> np.ndarray:
    """`name` in FEATURE_KINDS: 'P', 'S', 's_t', 'classifier', 'autoencoder'."""
    if name not in FEATURE_KINDS:
      raise ValueError(f'feature: got {name!r}; valid values are {", ".join(FEATURE_KINDS)}')
    if self.kind not in FEATURE_KINDS[name]:
      raise RunError(f'{self.logdir} is {self.info.describe()}; feature {name} needs a '
                     f'{" or ".join(FEATURE_KINDS[name])} run')
    if name == 'P':
      return self.dynamics(videos, batch_size)
    if name == 'S':
      return self.statics(videos, batch_size)
    if name == 's_t':
      return self.frame_codes(videos, batch_size)
    return self.baseline_features(videos, batch_size)

  def extractor(self, name: str, batch_size: int = 32) -> Extractor:
    """A clips-dict -> features function for `name` (reads clips['video'])."""
    if name not in FEATURE_KINDS:
      raise ValueError(f'feature: got {name!r}; valid values are {", ".join(FEATURE_KINDS)}')
    if self.kind not in FEATURE_KINDS[name]:
      raise RunError(f'{self.logdir} is {self.info.describe()}; feature {name} needs a '
                     f'{" or ".join(FEATURE_KINDS[name])} run')
    return lambda clips: self.features(name, clips['video'], batch_size)


def _num_classes_in_checkpoint(path: str, kind: str) -> int:
  tf = _tf()
  shapes = dict(tf.train.list_variables(path))
  key = f'{kind}/classify/bias/.ATTRIBUTES/VARIABLE_VALUE'
  if key not in shapes:
    raise RunError(f'{path}: no {kind} classification layer in the checkpoint; pass a run of '
                   'python -m launchers.video --model=classifier')
  return int(shapes[key][0])


def load_run(logdir: str, kinds: Sequence[str] = KINDS, dataset: Optional[str] = None, flag: str = '--logdir',
             purpose: str = '') -> LoadedRun:
  """`read_run` + `check_run`, then the run's models built from its config and restored from its latest checkpoint
  (every model variable must come from the checkpoint; the optimizer's state is not loaded)."""
  info = check_run(read_run(logdir, flag), kinds, dataset, flag, purpose)
  tf = _tf()
  from rlcv_tf.video import models as models_lib  # pylint: disable=g-import-not-at-top
  path = tf.train.latest_checkpoint(os.path.join(logdir, 'checkpoints'))
  if not path:
    raise RunError(f'{flag}={logdir}: the run has no readable checkpoint; let it train (python -m launchers.video '
                   f'--logdir={logdir} resumes it)')
  if info.kind in ('stage1', 'stage2'):
    built = models_lib.build_models(info.cfg)
    names = ('frame_autoencoder', 'block_stn') + (
        ('video_encoder', 'frame_dynamics', 'predictor') if info.kind == 'stage2' else ())
    models = {name: built[name] for name in names}
  else:
    from rlcv_tf.video import classifiers  # pylint: disable=g-import-not-at-top
    if info.kind == 'classifier':
      model = classifiers.SupervisedVideoClassifier(info.cfg, _num_classes_in_checkpoint(path, 'classifier'))
    else:
      model = classifiers.VideoAutoencoderBaseline(info.cfg)
    models = {info.kind: model.build_weights()}
  status = tf.train.Checkpoint(**models).restore(path)
  try:
    status.assert_existing_objects_matched()
  except AssertionError:
    raise RunError(f'{flag}={logdir}: its checkpoint {os.path.basename(path)} does not hold every weight of '
                   f'{info.describe()} with config {info.cfg.name}; was config.json replaced?') from None
  status.expect_partial()
  return LoadedRun(info, models, path)


# ------------------------------------------------------------------------------------------------ MMNIST clips
def mmnist_kwargs(info) -> Dict:
  """make_clips / recombine keywords matching a run: its digit source, frame size and digit size."""
  from rlcv_tf.video import training  # pylint: disable=g-import-not-at-top
  return dict(source=info.run.digits, data_dir=info.run.data_dir or None, size=info.cfg.image_size,
              digit_size=training.digit_size(info.cfg))


def mmnist_clips(info, split: str, num: int, seed: int) -> Clips:
  """`num` clips of `split` (seed) with the run's frame size, digit size and digit source."""
  from rlcv_tf.datasets import moving_mnist  # pylint: disable=g-import-not-at-top
  if num < 1:
    raise ValueError(f'num: got {num}; valid values are integers >= 1')
  return moving_mnist.make_clips(split, int(num), info.cfg.num_frames, int(seed), **mmnist_kwargs(info))


def _take(clips: Clips, index) -> Clips:
  return {k: np.asarray(v)[index] for k, v in clips.items()}


def _pair_labels(clips: Clips) -> np.ndarray:
  d = np.sort(np.asarray(clips['digits']), axis=1)
  return d[:, 0] * 10 + d[:, 1]


def _other_rows(labels: np.ndarray, rng: np.random.Generator, different_label: bool) -> np.ndarray:
  """Per row i an index j != i, uniform among the rows with another label when `different_label` and one exists."""
  n = len(labels)
  if n < 2:
    raise ValueError(f'the controlled swap needs at least 2 queries, got {n}')
  out = np.empty(n, np.int64)
  for i in range(n):
    pool = np.flatnonzero(labels != labels[i]) if different_label else np.empty(0, np.int64)
    if not len(pool):
      pool = np.delete(np.arange(n), i)
    out[i] = pool[rng.integers(len(pool))]
  return out


def swap_clips(queries: Clips, seed: int, split: str = 'val', **mmnist_kwargs) -> Tuple[Clips, Clips, Dict]:
  """(same trajectory / other digits, same digits / other trajectory) clips for every query (module docstring),
  and the donor rows. `mmnist_kwargs`: source, data_dir, digit_size of the split the queries came from."""
  from rlcv_tf.datasets import moving_mnist  # pylint: disable=g-import-not-at-top
  kwargs = {k: v for k, v in mmnist_kwargs.items() if k in ('source', 'data_dir', 'digit_size')}
  rng = np.random.default_rng(SWAP_SEED + int(seed))
  digit_donor = _other_rows(_pair_labels(queries), rng, different_label=True)
  trajectory_donor = _other_rows(_pair_labels(queries), rng, different_label=False)
  same_trajectory = moving_mnist.recombine(queries, _take(queries, digit_donor), split, **kwargs)
  same_digits = moving_mnist.recombine(_take(queries, trajectory_donor), queries, split, **kwargs)
  return same_trajectory, same_digits, {'digit_donor': digit_donor, 'trajectory_donor': trajectory_donor}


# ------------------------------------------------------------------------------------------------ probe
def probe_on_clips(statics_fn: Extractor, frames_fn: Optional[Extractor], train: Clips, test: Clips,
                   num_classes: int = 55, l2: float = 1e-4, max_iterations: int = 500) -> Dict:
  """The 55-way linear probe on a clip feature (statics_fn: clips -> [n, d]) and the per-frame probe with votes
  (frames_fn: clips -> [n, T, d]; None skips it), trained on `train`, scored on `test` (clips dicts with
  'pair_label')."""
  y_train, y_test = np.asarray(train['pair_label']), np.asarray(test['pair_label'])
  fit = dict(l2=l2, max_iterations=max_iterations)
  s_train, s_test = np.asarray(statics_fn(train)), np.asarray(statics_fn(test))
  fitted = evaluation.fit_linear_probe(s_train, y_train, num_classes, **fit)
  report = {'num_classes': num_classes, 'chance': 1.0 / num_classes, 'num_train': int(len(y_train)),
            'num_test': int(len(y_test)),
            'train_labels_covered': int(len(np.unique(y_train))),
            'statics': {'accuracy': fitted.accuracy(s_test, y_test),
                        'train_accuracy': fitted.accuracy(s_train, y_train),
                        'dim': int(np.prod(s_train.shape[1:])), 'lbfgs_iterations': fitted.iterations},
            'probe': {'l2': l2, 'max_iterations': max_iterations, 'standardised': True,
                      'solver': 'L-BFGS softmax regression (evaluation.fit_linear_probe)'}}
  if frames_fn is not None:
    f_train, f_test = np.asarray(frames_fn(train)), np.asarray(frames_fn(test))
    votes = evaluation.frame_probe_votes(f_train, y_train, f_test, y_test, num_classes, **fit)
    report['frames'] = dict(votes, dim=int(np.prod(f_train.shape[2:])), headline_vote=HEADLINE_VOTE,
                            vote_accuracy=votes[f'vote_{HEADLINE_VOTE}'])
  return report


def probe(run: LoadedRun, num_train: int = 2000, num_test: int = 2000, seed: int = 0, batch_size: int = 32,
          l2: float = 1e-4, max_iterations: int = 500) -> TaskResult:
  """7.4.4 on MMNIST: the linear probe on S and the s_t probe with votes (module docstring)."""
  from rlcv_tf.datasets import moving_mnist  # pylint: disable=g-import-not-at-top
  check_run(run.info, ('stage2',), 'mmnist', purpose='the probe classifies MMNIST digit pairs from S')
  train = mmnist_clips(run.info, 'train', num_train, PROBE_TRAIN_SEED + seed)
  test = mmnist_clips(run.info, 'test', num_test, moving_mnist.HELD_OUT_SEED)
  report = probe_on_clips(run.extractor('S', batch_size), run.extractor('s_t', batch_size), train, test,
                          moving_mnist.NUM_PAIRS, l2, max_iterations)
  report.update(task='probe', train_split='train', train_seed=PROBE_TRAIN_SEED + seed, test_split='test',
                test_seed=moving_mnist.HELD_OUT_SEED, thesis=THESIS['probe'], image_size=run.cfg.image_size)
  return TaskResult(report)


# ------------------------------------------------------------------------------------------------ retrieval
def _digit_captions(clips: Clips) -> List[str]:
  return [f'{a}{b}' for a, b in np.sort(np.asarray(clips['digits']), axis=1)]


def retrieval_on_clips(extractors: Dict[str, Extractor], queries: Clips, database: Clips, same_trajectory: Clips,
                       same_digits: Clips, seed: int = 0, value_range: Tuple[float, float] = (0.0, 1.0),
                       montage_queries: int = 6) -> TaskResult:
  """Table 7.1 retrieval, digit agreement and the controlled swap for each named feature (clips -> [n, d])."""
  if not extractors:
    raise ValueError('extractors: got none; pass at least one feature name -> function')
  centres_q, centres_db = queries['centres'], database['centres']
  size = int(np.shape(queries['video'])[2])
  scale = THESIS_FRAME_SIZE / size
  features, retrieved = {}, {}
  for name, fn in extractors.items():
    q, db = np.asarray(fn(queries), np.float64), np.asarray(fn(database), np.float64)
    q, db = q.reshape(len(q), -1), db.reshape(len(db), -1)
    rep = evaluation.retrieval_report(q, db, centres_q, centres_db, queries['digits'], database['digits'],
                                      match_permutations=True)
    traj = np.asarray(fn(same_trajectory), np.float64).reshape(len(q), -1)
    digits = np.asarray(fn(same_digits), np.float64).reshape(len(q), -1)
    features[name] = {'keypoint_distance': rep['keypoint_distance'],
                      'keypoint_distance_per_step': rep['keypoint_distance_per_step'],
                      'keypoint_distance_64px': rep['keypoint_distance'] * scale,
                      'digit_agreement': rep['label_agreement'],
                      'swap_rate': evaluation.controlled_swap_rates(q, traj, digits),
                      'dim': int(q.shape[1])}
    retrieved[name] = rep['indices']
  rand = evaluation.random_retrieval_report(centres_q, centres_db, queries['digits'], database['digits'],
                                            match_permutations=True, seed=seed)
  retrieved['random'] = rand['indices']
  report = {
      'num_queries': int(len(centres_q)), 'num_database': int(len(centres_db)), 'image_size': size,
      'features': features,
      'random': {'keypoint_distance': rand['keypoint_distance'],
                 'keypoint_distance_per_step': rand['keypoint_distance_per_step'],
                 'keypoint_distance_64px': rand['keypoint_distance'] * scale,
                 'digit_agreement': rand['label_agreement']},
      'chance': {'swap_rate': 0.5, 'digit_agreement': rand['label_agreement']},
      'metric': ('min over digit correspondences of (1/M) sum_m sum_{t<T} |d_ref - d_ret|_1, d = centre '
                 'displacements, pixels of the run\'s frames (keypoint_distance_64px: x 64 / frame size); top-1 '
                 'Euclidean neighbour; keypoint_distance_per_step = / (T - 1)'),
  }
  from rlcv_tf.video import viz  # pylint: disable=g-import-not-at-top
  k = min(montage_queries, len(centres_q))
  images = {}
  if k:
    videos = {name: np.asarray(database['video'])[idx[:k]] for name, idx in retrieved.items()}
    images['retrieval_montage'] = viz.retrieval_montage(
        np.asarray(queries['video'])[:k], videos, labels=_digit_captions(_take(queries, slice(0, k))),
        value_range=value_range)
    images['controlled_swap'] = viz.retrieval_montage(
        np.asarray(queries['video'])[:k], {'same trajectory': np.asarray(same_trajectory['video'])[:k],
                                           'same digits': np.asarray(same_digits['video'])[:k]},
        labels=_digit_captions(_take(queries, slice(0, k))), value_range=value_range)
  return TaskResult(report, images)


def _check_feature_runs(runs_by_feature: Dict[str, LoadedRun], dataset: str) -> LoadedRun:
  """The first run, after checking that each feature name -> run is a run of the kind the feature needs, on
  `dataset`, with the first run's clip shape (RunError / ValueError, one line)."""
  first = next(iter(runs_by_feature.values()))
  for name, run in runs_by_feature.items():
    if name not in FEATURE_KINDS or name == 's_t':
      raise ValueError(f'runs_by_feature: feature {name!r}; valid values are P, S, classifier, autoencoder')
    check_run(run.info, FEATURE_KINDS[name], dataset, FEATURE_FLAGS[name], purpose=f'feature {name}')
    for field in ('image_size', 'channels', 'num_frames'):
      if getattr(run.cfg, field) != getattr(first.cfg, field):
        raise RunError(f'{run.logdir} has {field}={getattr(run.cfg, field)} but {first.logdir} has '
                       f'{getattr(first.cfg, field)}; retrieval compares runs on the same clips: train the '
                       'baselines with the same --preset')
  return first


def retrieval(runs_by_feature: Dict[str, LoadedRun], num_queries: int = 500, num_database: int = 2000,
              seed: int = 0, batch_size: int = 32, montage_queries: int = 6) -> TaskResult:
  """Table 7.1 on MMNIST for each feature name -> run ('P' / 'S' of a stage-2 run, 'classifier', 'autoencoder';
  module docstring). Every run must share the data (mmnist, digits) and the clip shape."""
  from rlcv_tf.datasets import moving_mnist  # pylint: disable=g-import-not-at-top
  if not runs_by_feature:
    raise ValueError('runs_by_feature: got none; pass e.g. {"P": run, "S": run}')
  first = _check_feature_runs(runs_by_feature, 'mmnist')
  for run in runs_by_feature.values():
    if (run.run.digits, run.run.data_dir) != (first.run.digits, first.run.data_dir):
      raise RunError(f'{run.logdir} used --digits={run.run.digits} but {first.logdir} --digits={first.run.digits}; '
                     'pass runs of the same digits')
  queries = mmnist_clips(first.info, 'val', num_queries, moving_mnist.HELD_OUT_SEED)
  database = mmnist_clips(first.info, 'test', num_database, moving_mnist.HELD_OUT_SEED)
  same_trajectory, same_digits, _ = swap_clips(queries, seed, 'val', **mmnist_kwargs(first.info))
  extractors = {name: run.extractor(name, batch_size) for name, run in runs_by_feature.items()}
  result = retrieval_on_clips(extractors, queries, database, same_trajectory, same_digits, seed,
                              _value_range(first.cfg), montage_queries)
  result.report.update(task='retrieval', query_split='val', database_split='test', seed=seed,
                       clip_seed=moving_mnist.HELD_OUT_SEED, thesis=THESIS['retrieval'],
                       runs={name: run.logdir for name, run in runs_by_feature.items()})
  return result


# ------------------------------------------------------------------------------------------------ shard clips
def window_starts(num_frames: int, length: int, windows: int) -> np.ndarray:
  """`windows` evenly spaced starts of `length`-frame windows in a `num_frames` video (1: the centred one,
  (num_frames - length) // 2, as the evaluation reader); fewer when the video has fewer distinct starts."""
  if windows < 1:
    raise ValueError(f'windows_per_video: got {windows}; valid values are integers >= 1')
  last = num_frames - length
  if last < 0:
    return np.zeros(0, np.int64)
  if windows == 1:
    return np.array([last // 2], np.int64)
  return np.unique(np.round(np.linspace(0, last, windows)).astype(np.int64))


def iter_shard_clips(data_dir: str, dataset: str, num_frames: int, windows_per_video: int = 1,
                     actors: Optional[Sequence[str]] = None, exclude_actors: Optional[Sequence[str]] = None
                     ) -> Iterator[Clips]:
  """Clips of prepared videos, one dict per shard (bounded memory): video uint8 [n, T, H, W, C] (stored size),
  label int64 [n], actor / video_id str [n], start int64 [n], keypoints float32 [n, T, K, 2]."""
  from rlcv_tf.datasets import video_shards  # pylint: disable=g-import-not-at-top
  report = video_shards.check_prepared(data_dir, dataset)
  selected = video_shards.select_videos(report, actors, exclude_actors, min_frames=num_frames)
  by_shard: Dict[str, List[str]] = {}
  for v in selected:
    by_shard.setdefault(v['shard'], []).append(v['id'])
  for shard in sorted(by_shard):
    out = {k: [] for k in ('video', 'label', 'actor', 'video_id', 'start', 'keypoints')}
    for v in video_shards.load_videos(data_dir, actors=actors, exclude_actors=exclude_actors,
                                      video_ids=by_shard[shard], value_range=None):
      for start in window_starts(len(v['video']), num_frames, windows_per_video):
        out['video'].append(v['video'][start:start + num_frames])
        out['keypoints'].append(v['keypoints'][start:start + num_frames])
        out['label'].append(v['label'])
        out['actor'].append(v['actor'])
        out['video_id'].append(v['video_id'])
        out['start'].append(start)
    if out['video']:
      yield {'video': np.stack(out['video']), 'label': np.asarray(out['label'], np.int64),
             'actor': np.asarray(out['actor']), 'video_id': np.asarray(out['video_id']),
             'start': np.asarray(out['start'], np.int64), 'keypoints': np.stack(out['keypoints'])}


def shard_num_classes(data_dir: str, dataset: str) -> int:
  from rlcv_tf.datasets import video_shards  # pylint: disable=g-import-not-at-top
  return 1 + max(int(v['label']) for v in video_shards.check_prepared(data_dir, dataset)['videos'])


def shard_features(run: LoadedRun, data_dir: str, windows_per_video: int = 1, batch_size: int = 32,
                   **filters) -> Dict[str, np.ndarray]:
  """S (flattened), P, label, actor, video_id, start of every clip of the prepared videos (streamed per shard)."""
  parts: Dict[str, List[np.ndarray]] = {}
  for clips in iter_shard_clips(data_dir, run.run.dataset, run.cfg.num_frames, windows_per_video, **filters):
    s, p = run.statics_and_dynamics(clips['video'], batch_size)
    row = dict(S=s.reshape(len(s), -1), P=p, **{k: clips[k] for k in ('label', 'actor', 'video_id', 'start')})
    for k, v in row.items():
      parts.setdefault(k, []).append(v)
  if not parts:
    raise RunError(f'{data_dir}: no prepared video has >= {run.cfg.num_frames} frames')
  return {k: np.concatenate(v) for k, v in parts.items()}


# ------------------------------------------------------------------------------------------------ shard retrieval
def shard_retrieval_on_clips(features: Dict[str, np.ndarray], clips: Clips, seed: int = 0) -> Dict:
  """Table 7.1's retrieval among prepared videos, leave one out: each clip's top-1 Euclidean neighbour among the
  other clips (one clip per video), for each feature name -> [n, d]; scored by the keypoint displacement distance
  with keypoint m matched to m (landmarks and body points have identities), the label agreement (action / emotion)
  and how often the neighbour shows the same person. Clips whose keypoints are missing (NaN) anywhere are left out
  and counted; a seeded random neighbour is the floor. `clips`: keypoints [n, T, K, 2], label, actor [n]."""
  keypoints = np.asarray(clips['keypoints'], np.float64)
  keep = np.all(np.isfinite(keypoints), axis=(1, 2, 3))
  if keep.sum() < 2:
    raise RunError(f'retrieval needs at least 2 clips with keypoints in every frame, got {int(keep.sum())} of '
                   f'{len(keep)}')
  kp = keypoints[keep]
  labels = np.asarray(clips['label'])[keep]
  actors = np.asarray(clips['actor'])[keep]

  def scored(rep):
    idx = rep['indices']
    return {'keypoint_distance': rep['keypoint_distance'],
            'keypoint_distance_per_step': rep['keypoint_distance_per_step'],
            'label_agreement': rep['label_agreement'],
            'same_actor': float(np.mean(actors[idx] == actors))}

  rows, retrieved = {}, {}
  for name, feats in features.items():
    f = np.asarray(feats, np.float64).reshape(len(keep), -1)[keep]
    rep = evaluation.retrieval_report(f, f, kp, kp, labels, labels, match_permutations=False, exclude_self=True)
    rows[name] = dict(scored(rep), dim=int(f.shape[1]))
    retrieved[name] = np.flatnonzero(keep)[rep['indices']]
  rand = evaluation.random_retrieval_report(kp, kp, labels, labels, match_permutations=False, seed=seed,
                                            exclude_self=True)
  retrieved['random'] = np.flatnonzero(keep)[rand['indices']]
  return {'features': rows, 'random': scored(rand), 'num_clips': int(keep.sum()),
          'num_without_keypoints': int((~keep).sum()), 'query_rows': np.flatnonzero(keep),
          'retrieved_rows': retrieved}


def shard_retrieval(runs_by_feature: Dict[str, LoadedRun], data_dir: str = '', seed: int = 0, batch_size: int = 32,
                    montage_queries: int = 6) -> TaskResult:
  """Table 7.1 on Weizmann or RAVDESS shards (`shard_retrieval_on_clips` on the centred clip of every prepared
  video) for each feature name -> run ('P' / 'S' of a stage-2 run, 'classifier', 'autoencoder'), all on the same
  data set and clip shape; data_dir defaults to the first run's. Keypoints are what the shards store: RAVDESS the
  5 face landmarks (the thesis's), Weizmann OpenPose joints (video_prepare --openpose_dir; the thesis's) or else the
  mask keypoints (not the same metric). Distances are in pixels of the stored frames (Weizmann 96, RAVDESS 128);
  the thesis does not give its units, so its numbers are beside ours for the order, not the size."""
  from rlcv_tf.datasets import video_shards  # pylint: disable=g-import-not-at-top
  if not runs_by_feature:
    raise ValueError('runs_by_feature: got none; pass e.g. {"P": run, "S": run}')
  first = next(iter(runs_by_feature.values()))
  dataset = first.run.dataset
  if dataset not in SHARD_RETRIEVAL_DATASETS:
    raise RunError(f'{first.logdir} is {first.info.describe()}; shard retrieval takes weizmann or ravdess runs '
                   '(Moving MNIST: protocols.retrieval)')
  _check_feature_runs(runs_by_feature, dataset)
  data_dir = data_dir or first.run.data_dir
  prepared = video_shards.check_prepared(data_dir, dataset)
  source = prepared['keypoints'].get('source', '')
  if int(prepared['num_keypoints']) == 0:
    raise RunError(f'{data_dir}: the shards hold no keypoints ({source or "none stored"}); prepare Weizmann with '
                   'classification_masks.mat next to the action folders')
  parts: Dict[str, List[np.ndarray]] = {}
  for clips in iter_shard_clips(data_dir, dataset, first.cfg.num_frames, 1):
    row = {k: clips[k] for k in ('keypoints', 'label', 'actor', 'video_id')}
    row.update({f'feature/{name}': run.features(name, clips['video'], batch_size)
                for name, run in runs_by_feature.items()})
    for k, v in row.items():
      parts.setdefault(k, []).append(v)
  if not parts:
    raise RunError(f'{data_dir}: no prepared video has >= {first.cfg.num_frames} frames')
  clips = {k: np.concatenate(v) for k, v in parts.items()}
  features = {name: clips[f'feature/{name}'] for name in runs_by_feature}
  result = shard_retrieval_on_clips(features, clips, seed)
  query_rows, retrieved = result.pop('query_rows'), result.pop('retrieved_rows')
  size = int(prepared['image_shape'][0])
  result.update(task='retrieval', dataset=dataset, data_dir=data_dir, image_size=size, seed=seed,
                keypoints=prepared['keypoints'], thesis=THESIS_SHARD_RETRIEVAL[dataset],
                runs={name: run.logdir for name, run in runs_by_feature.items()},
                chance={'label_agreement': result['random']['label_agreement'],
                        'same_actor': result['random']['same_actor']},
                metric=('(1/K) sum_k sum_{t<T} |d_ref - d_ret|_1 with keypoint k matched to k, d = keypoint '
                        f'displacements in pixels of the stored {size}x{size} frames, on the centred '
                        f'{first.cfg.num_frames}-frame clip of each video; top-1 Euclidean neighbour among the other '
                        'videos (leave one out); keypoint_distance_per_step = / (T - 1)'))
  images = {}
  k = min(montage_queries, len(query_rows))
  if k:
    # One query per label first (the shards are in label order), then the next rows.
    _, first_of_label = np.unique(clips['label'][query_rows], return_index=True)
    picks = list(np.sort(first_of_label)[:k]) + [i for i in range(len(query_rows)) if i not in first_of_label]
    picks = np.asarray(picks[:k])
    rows = query_rows[picks]
    retrieved = {n: idx[picks] for n, idx in retrieved.items()}
    wanted = set(rows.tolist()) | {int(i) for idx in retrieved.values() for i in idx}
    ids = clips['video_id']
    by_id = {v['video_id']: v for v in video_shards.load_videos(data_dir, video_ids=sorted({ids[i] for i in wanted}),
                                                                value_range=None)}

    def clip(i):
      v = by_id[ids[i]]['video']
      start = window_starts(len(v), first.cfg.num_frames, 1)[0]
      return v[start:start + first.cfg.num_frames]

    from rlcv_tf.video import viz  # pylint: disable=g-import-not-at-top
    names = {int(v['label']): v['label_name'] for v in by_id.values()}
    images['retrieval_montage'] = viz.retrieval_montage(
        np.stack([clip(i) for i in rows]).astype(np.float32),
        {n: np.stack([clip(i) for i in idx]).astype(np.float32) for n, idx in retrieved.items()},
        labels=[names.get(int(clips['label'][i]), str(clips['label'][i])) for i in rows], value_range=(0, 255))
  return TaskResult(result, images)


# ------------------------------------------------------------------------------------------------ attentive
def _standardise(train: np.ndarray, *others: np.ndarray) -> List[np.ndarray]:
  mean = train.mean(axis=0)
  std = train.std(axis=0)
  std = np.where(std < 1e-6, 1.0, std)
  return [((x - mean) / std).astype(np.float32) for x in (train,) + others]


def attentive_on_features(feats: Dict[str, np.ndarray], num_classes: int, epochs: int = ATTENTIVE_EPOCHS,
                          batch_size: int = 16, learning_rate: float = FINETUNE_LR, seed: int = 0,
                          hidden: int = 128, standardise: bool = True) -> Dict:
  """Leave-one-actor-out attentive classification on precomputed clip features (S, P, label, actor, video_id)."""
  import keras  # pylint: disable=g-import-not-at-top
  from rlcv_tf.video import classifiers  # pylint: disable=g-import-not-at-top
  folds = evaluation.leave_one_actor_out_folds(feats['actor'])
  rows, all_attention = [], []
  for i, fold in enumerate(folds):
    tr, te = fold.train, fold.test
    s_tr, s_te = (_standardise(feats['S'][tr], feats['S'][te]) if standardise
                  else (feats['S'][tr], feats['S'][te]))
    p_tr, p_te = (_standardise(feats['P'][tr], feats['P'][te]) if standardise
                  else (feats['P'][tr], feats['P'][te]))
    keras.utils.set_random_seed(seed * 1000 + i)
    head = classifiers.AttentiveClassifier(num_classes, hidden)
    history = classifiers.train_head(head, (s_tr, p_tr), feats['label'][tr], group_ids=feats['video_id'][tr],
                                     epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                                     seed=seed + i)
    videos, logits = classifiers.head_video_logits(head, (s_te, p_te), feats['video_id'][te])
    truth = np.array([feats['label'][te][feats['video_id'][te] == v][0] for v in videos])
    attention = np.asarray(head.attention(s_te, p_te))
    all_attention.append(attention)
    rows.append({'test_actor': str(fold.test_people[0]), 'num_train_videos': int(len(np.unique(feats['video_id'][tr]))),
                 'num_test_videos': int(len(videos)), 'num_test_clips': int(len(te)),
                 'accuracy': float(np.mean(np.argmax(logits, axis=1) == truth)),
                 'mean_attention': float(attention.mean()), 'final_train_loss': history['loss'][-1],
                 'final_train_accuracy': history['accuracy'][-1]})
  return {'folds': rows, 'mean_accuracy': float(np.mean([r['accuracy'] for r in rows])),
          'mean_attention': float(np.concatenate(all_attention).mean()),
          'num_classes': num_classes, 'chance': 1.0 / num_classes, 'num_folds': len(rows),
          'num_videos': int(len(np.unique(feats['video_id']))), 'num_clips': int(len(feats['label'])),
          'head': {'hidden': hidden, 'epochs': epochs, 'batch_videos': batch_size, 'learning_rate': learning_rate,
                   'standardised': standardise}}


def attentive(run: LoadedRun, data_dir: str = '', windows_per_video: int = 1, epochs: int = ATTENTIVE_EPOCHS,
              batch_size: int = 16, learning_rate: float = FINETUNE_LR, seed: int = 0, hidden: int = 128,
              feature_batch_size: int = 32) -> TaskResult:
  """Table 7.2 on Weizmann shards (module docstring); data_dir defaults to the run's."""
  check_run(run.info, ('stage2',), 'weizmann', purpose='Table 7.2 classifies Weizmann actions from S and P')
  data_dir = data_dir or run.run.data_dir
  feats = shard_features(run, data_dir, windows_per_video, feature_batch_size)
  report = attentive_on_features(feats, shard_num_classes(data_dir, 'weizmann'), epochs, batch_size, learning_rate,
                                 seed, hidden)
  excluded = set(run.info.excluded_actors)
  report.update(task='attentive', data_dir=data_dir, windows_per_video=windows_per_video, thesis=THESIS['attentive'],
                pretraining_excluded_actors=sorted(excluded),
                pretraining_saw_test_actor=[r['test_actor'] not in excluded for r in report['folds']])
  return TaskResult(report)


# ------------------------------------------------------------------------------------------------ finetune
def fold_plan(data_dir: str, num_folds: int = 5, seed: int = 0, dataset: str = 'ravdess',
              num_frames: int = 8) -> List[Dict]:
  """The person-disjoint folds of the prepared videos: per fold its test and training people and video ids."""
  from rlcv_tf.datasets import video_shards  # pylint: disable=g-import-not-at-top
  report = video_shards.check_prepared(data_dir, dataset)
  videos = video_shards.select_videos(report, min_frames=num_frames)
  actors = np.array([v['actor'] for v in videos])
  ids = np.array([v['id'] for v in videos])
  plan = []
  for fold in evaluation.identity_folds(actors, num_folds, seed):
    plan.append({'test_people': sorted(str(a) for a in fold.test_people),
                 'train_people': sorted(set(actors[fold.train].tolist())),
                 'test_videos': sorted(ids[fold.test].tolist()), 'train_videos': sorted(ids[fold.train].tolist())})
  return plan


def _stage1_exclusions(info: RunInfo) -> Optional[Tuple[str, ...]]:
  try:
    first = read_run(info.run.stage1_logdir, '--stage1_logdir')
  except (RunError, TypeError):
    return None
  return first.excluded_actors


def check_pretraining(info: RunInfo, test_people: Sequence[str], fold: int, flag: str) -> Dict:
  """RunError unless the stage-2 run (and its stage 1, when readable) excluded every test person of the fold."""
  missing = sorted(set(test_people) - set(info.excluded_actors))
  need = ','.join(sorted(test_people))
  if missing:
    raise RunError(f'{flag}={info.logdir} (fold {fold}) was trained with --exclude_actors='
                   f'{",".join(info.excluded_actors) or "(none)"}, but fold {fold} tests people {need}; train its '
                   f'stage 1 and 2 with --exclude_actors={need}, or pass --cv_pretrain=shared (transductive)')
  stage1 = _stage1_exclusions(info)
  if stage1 is not None and set(test_people) - set(stage1):
    raise RunError(f'{flag}={info.logdir} (fold {fold}): its stage 1 ({info.run.stage1_logdir}) was trained with '
                   f'--exclude_actors={",".join(stage1) or "(none)"}; fold {fold} tests {need}: train stage 1 with '
                   f'--exclude_actors={need} too')
  return {'stage2_excludes_test_people': True, 'stage1_excludes_test_people': None if stage1 is None else True}


def _init_name(run: Optional[LoadedRun]) -> str:
  if run is None:
    return 'random'
  return 'statics_only' if run.run.ablation == 'statics_only' else 'full'


def finetune(data_dir: str, pretrained: Optional[Sequence[LoadedRun]] = None, cfg: Optional[presets.VideoConfig] = None,
             cv_pretrain: str = 'per_fold', num_folds: int = 5, fold_seed: int = 0, epochs: int = 10,
             batch_size: Optional[int] = None, learning_rate: float = FINETUNE_LR, windows_per_video: int = 3,
             seed: int = 0, steps_per_epoch: Optional[int] = None, print_fn: Callable[[str], None] = lambda s: None
             ) -> TaskResult:
  """Table 7.3 on RAVDESS shards (module docstring).

  Args:
    data_dir: the prepared RAVDESS shards.
    pretrained: None (random initialisation, needs `cfg`), one stage-2 run per fold (cv_pretrain='per_fold'), or
      one shared run (cv_pretrain='shared').
    cfg: the classifier's VideoConfig for random initialisation (default: the pretrained run's).
    num_folds, fold_seed: `evaluation.identity_folds`.
    epochs: passes over the training videos (ceil(videos / batch) steps each, unless steps_per_epoch).
    batch_size: clips per step (default the config's).
    windows_per_video: test clips per held-out video (they vote).
  """
  tf = _tf()
  import keras  # pylint: disable=g-import-not-at-top
  from rlcv_tf.datasets import video_shards  # pylint: disable=g-import-not-at-top
  from rlcv_tf.video import classifiers  # pylint: disable=g-import-not-at-top
  if cv_pretrain not in CV_PRETRAIN:
    raise ValueError(f'cv_pretrain: got {cv_pretrain!r}; valid values are {", ".join(CV_PRETRAIN)}')
  runs = list(pretrained or [])
  if runs:
    for r in runs:
      check_run(r.info, ('stage2',), 'ravdess', purpose='Table 7.3 fine-tunes a RAVDESS stage 2')
    if cv_pretrain == 'per_fold' and len(runs) != num_folds:
      raise RunError(f'per-fold pretraining needs {num_folds} runs (one per fold), got {len(runs)}; pass '
                     f'--pretrain_logdir_pattern with {FOLD_FIELD}, or --cv_pretrain=shared (transductive)')
    if cv_pretrain == 'shared' and len(runs) != 1:
      raise RunError(f'--cv_pretrain=shared takes one pretrained run, got {len(runs)}')
    if len({_init_name(r) for r in runs}) != 1:
      raise RunError('the per-fold runs mix S-only (--ablation=statics_only) and full stage 2; pass runs of one kind')
  elif cfg is None:
    raise ValueError('cfg: random initialisation needs the classifier\'s VideoConfig (e.g. get_preset("ravdess", '
                     '"small"))')
  init = _init_name(runs[0] if runs else None)
  plan = fold_plan(data_dir, num_folds, fold_seed, 'ravdess', (cfg or runs[0].cfg).num_frames)
  num_classes = shard_num_classes(data_dir, 'ravdess')
  rows = []
  for i, fold in enumerate(plan):
    run = (runs[i] if cv_pretrain == 'per_fold' else runs[0]) if runs else None
    c = run.cfg if run is not None else cfg
    flag = '--pretrain_logdir_pattern' if cv_pretrain == 'per_fold' else '--logdir'
    leakage = (check_pretraining(run.info, fold['test_people'], i, flag) if run is not None and cv_pretrain ==
               'per_fold' else None)
    keras.utils.set_random_seed(seed * 1000 + i)
    model = classifiers.FinetuneClassifier(c, num_classes)
    copied = model.load_from(run.video_encoder) if run is not None else 0
    model.build_weights()
    trainer = classifiers.BaselineTrainer(c, model, 'classifier', learning_rate)
    batch = int(batch_size or c.batch_size)
    low_high = _value_range(c)
    stream = video_shards.make_dataset(data_dir, batch, num_frames=c.num_frames, seed=seed * 1000 + i,
                                       training=True, hflip=c.hflip, exclude_actors=fold['test_people'],
                                       value_range=low_high, image_size=c.image_size)
    per_epoch = int(steps_per_epoch or math.ceil(len(fold['train_videos']) / batch))
    it = iter(stream)
    history = []
    for epoch in range(int(epochs)):
      trainer.set_learning_rate(learning_rate * 0.5 ** (epoch // FINETUNE_LR_STEP_EPOCHS))
      losses = []
      for _ in range(per_epoch):
        b = next(it)
        losses.append(float(trainer.train_step(b['video'], tf.cast(b['label'], tf.int64))['loss']))
      history.append(float(np.mean(losses)))
    logits, labels, video_ids = [], [], []
    predict = tf.function(lambda v: model(v, training=False),
                          input_signature=[tf.TensorSpec((None,) + c.video_shape, tf.float32)])
    for clips in iter_shard_clips(data_dir, 'ravdess', c.num_frames, windows_per_video, actors=fold['test_people']):
      for j in range(0, len(clips['video']), batch):
        logits.append(predict(tf.constant(prepare_videos(clips['video'][j:j + batch], c))).numpy())
      labels.append(clips['label'])
      video_ids.append(clips['video_id'])
    logits, labels, video_ids = np.concatenate(logits), np.concatenate(labels), np.concatenate(video_ids)
    row = {'fold': i, 'test_people': fold['test_people'], 'train_people': fold['train_people'],
           'num_train_videos': len(fold['train_videos']), 'num_test_videos': len(fold['test_videos']),
           'num_test_clips': int(len(labels)), 'pretrained_logdir': run.logdir if run is not None else None,
           'weights_copied': int(copied), 'train_loss': history,
           'clip_accuracy': float(np.mean(np.argmax(logits, axis=1) == labels))}
    for method in evaluation.VOTE_METHODS:
      videos, votes = evaluation.group_vote(logits, video_ids, method)
      truth = np.array([labels[video_ids == v][0] for v in videos])
      row[f'video_accuracy_{method}'] = float(np.mean(votes == truth))
    row['video_accuracy'] = row[f'video_accuracy_{HEADLINE_VOTE}']
    if leakage is not None:
      row.update(leakage)
    rows.append(row)
    print_fn(f'[video_eval] finetune fold {i + 1}/{len(plan)} (test people {",".join(fold["test_people"])}): video '
             f'accuracy {100 * row["video_accuracy"]:.1f}%')
  transductive = bool(runs) and cv_pretrain == 'shared'
  report = {'task': 'finetune', 'init': init, 'cv_pretrain': cv_pretrain if runs else None,
            'transductive': transductive, 'folds': rows, 'num_folds': len(rows), 'fold_seed': fold_seed,
            'mean_video_accuracy': float(np.mean([r['video_accuracy'] for r in rows])),
            'mean_clip_accuracy': float(np.mean([r['clip_accuracy'] for r in rows])),
            'num_classes': num_classes, 'chance': 1.0 / num_classes, 'epochs': epochs,
            'learning_rate': learning_rate, 'windows_per_video': windows_per_video, 'headline_vote': HEADLINE_VOTE,
            'data_dir': data_dir, 'thesis': THESIS['finetune'], 'config': (cfg or runs[0].cfg).name}
  if transductive:
    report['note'] = ('transductive: one pretrained run for every fold; its unsupervised pretraining saw the test '
                      'people of each fold')
  return TaskResult(report)


# ------------------------------------------------------------------------------------------------ tables
def _pct(x) -> str:
  return '–' if x is None else f'{100 * x:.1f} %'


def _num(x) -> str:
  return '–' if x is None else f'{x:.2f}'


def markdown_table(report: Dict) -> str:
  """The task's numbers beside the thesis's (markdown)."""
  task = report.get('task')
  if task == 'probe':
    frames = report.get('frames', {})
    lines = ['| MMNIST 55-way probe | ours | thesis | chance |', '|---|---:|---:|---:|',
             f'| linear on S | {_pct(report["statics"]["accuracy"])} | 69.1 % | {_pct(report["chance"])} |']
    if frames:
      lines.append(f'| s_t per frame, {frames["headline_vote"]} vote | {_pct(frames["vote_accuracy"])} | 63.0 % | '
                   f'{_pct(report["chance"])} |')
      lines.append(f'| s_t per frame, no vote | {_pct(frames["frame_accuracy"])} | – | {_pct(report["chance"])} |')
    return '\n'.join(lines)
  if task == 'retrieval' and report.get('dataset') in SHARD_RETRIEVAL_DATASETS:
    thesis = report['thesis']
    px = report['image_size']
    openpose = report.get('keypoints', {}).get('source', '').startswith('OpenPose')
    name, kind = (('Weizmann', 'OpenPose joints' if openpose else 'mask keypoints') if report['dataset'] == 'weizmann'
                  else ('RAVDESS', 'face landmarks'))
    lines = [f'| {name} retrieval ({kind}) | keypoint dist. ({px} px) | per step | '
             'thesis (units not given) | label agreement | same person |', '|---|---:|---:|---:|---:|---:|']
    for name, row in list(report['features'].items()) + [('random', report['random'])]:
      t = thesis.get(name)
      lines.append(f'| {name} | {_num(row["keypoint_distance"])} | {_num(row["keypoint_distance_per_step"])} | '
                   f'{"–" if t is None else f"{t:.2f}"} | {_pct(row["label_agreement"])} | '
                   f'{_pct(row["same_actor"])} |')
    return '\n'.join(lines)
  if task == 'retrieval':
    thesis = report['thesis']
    px = report['image_size']
    lines = [f'| MMNIST retrieval | keypoint dist. ({px} px) | at 64 px | thesis | digit agreement | swap rate |',
             '|---|---:|---:|---:|---:|---:|']
    for name, row in report['features'].items():
      t = thesis.get(name)
      thesis_cell = '–' if t is None else f'{t:.0f}'
      lines.append(f'| {name} | {_num(row["keypoint_distance"])} | {_num(row["keypoint_distance_64px"])} | '
                   f'{thesis_cell} | {_pct(row["digit_agreement"])} | {_pct(row["swap_rate"])} |')
    r = report['random']
    lines.append(f'| random | {_num(r["keypoint_distance"])} | {_num(r["keypoint_distance_64px"])} | – | '
                 f'{_pct(r["digit_agreement"])} | 50.0 % (chance) |')
    return '\n'.join(lines)
  if task == 'attentive':
    return '\n'.join(['| Weizmann, leave one actor out | ours | thesis | chance | mean attention a on S |',
                      '|---|---:|---:|---:|---:|',
                      f'| attentive linear on S + P | {_pct(report["mean_accuracy"])} | 96 % | '
                      f'{_pct(report["chance"])} | {report["mean_attention"]:.2f} |'])
  if task == 'finetune':
    name = {'random': 'supervised 3DCNN (random init)', 'statics_only': 'pretrain with S only',
            'full': 'ours, S + P'}[report['init']]
    note = ' (transductive)' if report['transductive'] else ''
    return '\n'.join([f'| RAVDESS, {report["num_folds"]}-fold CV by identity | ours | thesis | chance |',
                      '|---|---:|---:|---:|',
                      f'| {name}{note} | {_pct(report["mean_video_accuracy"])} | '
                      f'{100 * THESIS["finetune"][report["init"]]:.0f} % | {_pct(report["chance"])} |'])
  raise ValueError(f'report: unknown task {task!r}')


def json_ready(value):
  """NumPy scalars / arrays -> Python numbers / lists, recursively (for json.dump)."""
  if isinstance(value, dict):
    return {str(k): json_ready(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [json_ready(v) for v in value]
  if isinstance(value, np.ndarray):
    return json_ready(value.tolist())
  if isinstance(value, np.generic):
    return value.item()
  return value
