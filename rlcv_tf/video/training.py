"""Chapter 7 training runs: stage 1, stage 2 and the Table 7.1 baselines, with checkpoints, TensorBoard, sheets,
an end-of-run evaluation with a learning check that can fail, and a SavedModel.

`train(cfg, run, logdir)` writes under `logdir`:
  config.json        the model configuration (VideoConfig) and the run settings; a re-run checks them and resumes
  checkpoints/       the models (BN statistics included), the optimizer, the step counter. Stage 2 saves the frozen
                     stage-1 module too, so its checkpoints stand alone.
  events.*           TensorBoard: every loss term, the learning rate, clips/s; the sample sheet
  samples/step_*.png stage 1: x_i | g_dec(s_i) | x_j | g_dec(T(s_i, s_j)) | g_dec(s_i) (the identity warp);
                     stage 2: clip frames then g_dec(S) per clip, and the swap f_dec(p_t^B, S^A) (samples/swap_*.png)
  eval.json          held-out numbers and the learning check's line
  saved_model/       stage 2: `export.export_model` (encode / frame_dynamics / decode_statics / compose / predict);
                     stage 1: `export.export_stage1` (encode_frames / decode / warp); baselines: features / logits or
                     reconstruct
Re-running with the same logdir resumes (e.g. with more steps). Ctrl-C / SIGTERM save a checkpoint and the SavedModel
before the run stops. The MMNIST training stream is a function of (seed, clip index): a resumed run continues it at
the clip after the last one trained on (step x batch).

Learning rates follow the thesis: Adam at stage1_lr / stage2_lr, x lr_decay every lr_step_epochs epochs (staircase);
an MMNIST epoch is `run_config.MMNIST_EPOCH_CLIPS` clips (spec §6 [proposal]).

The learning checks (module constants; each can fail):
  stage 1     on held-out pairs the learned warp's target error is at most STAGE1_MAX_WARP_OVER_IDENTITY x the
              identity warp's and at most MAX_RECON_OVER_MEAN x the mean frame's (a warp that blanks the map can
              beat a misplaced identity warp under MSE without moving anything: the second bound catches it), and
              reconstructions beat the mean frame (<= MAX_RECON_OVER_MEAN x its error);
  stage 2     g_dec(T(S, s_t) o S) and f_dec(p_t, S) both beat the mean frame, and the InfoNCE top-1 accuracy is at
              least MIN_PRED_OVER_CHANCE x chance (1 / (N (T-1)));
  classifier  held-out accuracy at least MIN_ACCURACY_OVER_CHANCE x chance;
  autoencoder held-out reconstructions beat the mean clip.
"""

import json
import os
import time
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from rlcv_tf.core import images as images_lib
from rlcv_tf.core import runs
from rlcv_tf.core import train_loop
from rlcv_tf.datasets import moving_mnist
from rlcv_tf.video import models
from rlcv_tf.video import presets
from rlcv_tf.video import run_config
from rlcv_tf.video import train_steps

PREFIX = '[video] '
RunConfig = run_config.RunConfig

# A resumed run, or a stage 2 on a stage-1 run, must not change these.
STAGE1_FIELDS = ('image_size', 'channels', 'output_activation', 'latent_channels', 'num_blocks', 'ae_stem',
                 'ae_widths', 'dec_widths', 'loc_filters', 'loc_units', 'loc_input', 'bn_momentum', 'bn_epsilon')
ARCHITECTURE_FIELDS = STAGE1_FIELDS + ('num_frames', 'video_width', 'conv1_kernel', 'statics_head_filters',
                                       'dynamics_hidden', 'dynamics_dim', 'frame_code_dim', 'lstm_units')
RUN_FIELDS = ('dataset', 'model', 'stage', 'ablation')

STAGE1_MAX_WARP_OVER_IDENTITY = 0.9
MAX_RECON_OVER_MEAN = 0.9
MIN_PRED_OVER_CHANCE = 3.0
MIN_ACCURACY_OVER_CHANCE = 3.0
EVAL_PAIR_SEED = 1234            # the held-out frame pairs of the stage-1 evaluation (a protocol constant)


TrainResult = train_loop.TrainResult


# ------------------------------------------------------------------------------------------ config files
def _json_form(value):
  return json.loads(json.dumps(value))


def check_resume(cfg: presets.VideoConfig, run: RunConfig, logdir: str) -> None:
  """runs.ResumeMismatchError naming the field when `logdir` holds a run of another model, stage or architecture."""
  saved = runs.load_config(logdir)
  if saved is None:
    return
  if 'model' not in saved or 'run' not in saved or saved['model'].get('dataset') not in presets.DATASETS:
    raise runs.ResumeMismatchError(f'--logdir={logdir} holds a run of another launcher; use a new --logdir')
  for field in RUN_FIELDS:
    old, new = saved['run'].get(field), getattr(run, field)
    if old != new:
      raise runs.ResumeMismatchError(
          f'--logdir={logdir} holds a run with --{field}={old}, but this run asks for --{field}={new}. Use the same '
          'flags to resume it, or a new --logdir to start a new run.')
  runs.check_same_settings(logdir, saved['model'], _json_form(cfg.to_dict()), ARCHITECTURE_FIELDS)


def check_stage1(cfg: presets.VideoConfig, run: RunConfig) -> presets.VideoConfig:
  """The stage-1 run's config after checking that `cfg` (stage 2) and `run` can use it (`run_config.read_stage1_run`:
  a finished stage-1 run of the same data set; and the same frozen architecture); ValueError naming the field."""
  saved = run_config.read_stage1_run(run.stage1_logdir, run.dataset)
  first = presets.VideoConfig.from_dict(saved['model']).validate()
  for field in STAGE1_FIELDS:
    if getattr(first, field) != getattr(cfg, field):
      raise ValueError(f'--stage1_logdir={run.stage1_logdir} has {field}={getattr(first, field)!r}, this stage 2 '
                       f'asks for {getattr(cfg, field)!r}; use the stage-1 run\'s preset (or no --preset)')
  return first


# -------------------------------------------------------------------------------------------------- data
def digit_size(cfg: presets.VideoConfig) -> int:
  """MNIST digits are 28 px on 64 px frames; smaller frames shrink them in proportion (14 px at 32)."""
  return max(8, int(round(moving_mnist.MNIST_DIGIT_SIZE * cfg.image_size / moving_mnist.SIZE)))


def _mmnist_kwargs(cfg, run):
  return dict(source=run.digits, data_dir=run.data_dir or None, size=cfg.image_size, digit_size=digit_size(cfg))


def mmnist_stream(cfg: presets.VideoConfig, run: RunConfig, length: int, start_step: int) -> tf.data.Dataset:
  """Endless training batches (video,) of `length`-frame clips, from clip start_step x batch_size on."""
  ds = moving_mnist.make_dataset('train', cfg.batch_size, length, run.seed, start=start_step * cfg.batch_size,
                                 **_mmnist_kwargs(cfg, run))
  return ds.map(lambda b: (b['video'],))


def held_out_clips(cfg: presets.VideoConfig, run: RunConfig, num: int, length: Optional[int] = None,
                   split: str = 'val') -> Dict[str, np.ndarray]:
  """MMNIST held-out clips (HELD_OUT_SEED: the same for every run)."""
  return moving_mnist.make_clips(split, num, length or cfg.num_frames, moving_mnist.HELD_OUT_SEED,
                                 **_mmnist_kwargs(cfg, run))


def _actors(run) -> Optional[Tuple[str, ...]]:
  return tuple(a for a in run.exclude_actors.split(',') if a) or None


def _shard_stream(cfg, run, length, start_step):
  from rlcv_tf.datasets import video_shards  # pylint: disable=g-import-not-at-top
  report = video_shards.check_prepared(run.data_dir, run.dataset)
  exclude = _actors(run)
  ds = video_shards.make_dataset(run.data_dir, cfg.batch_size, num_frames=length,
                                 seed=runs.derived_seed(run.seed, start_step), training=True, hflip=cfg.hflip,
                                 exclude_actors=exclude, value_range=_value_range(cfg), image_size=cfg.image_size)
  count = len(video_shards.select_videos(report, exclude_actors=exclude, min_frames=length))
  return ds, count


def _shard_held_out(cfg, run, num, length=None):
  """The excluded actors' videos (centred windows), or, with none excluded, the training videos themselves (the
  evaluation is then in-sample: eval.json says so)."""
  from rlcv_tf.datasets import video_shards  # pylint: disable=g-import-not-at-top
  ds = video_shards.make_dataset(run.data_dir, num, num_frames=length or cfg.num_frames, training=False,
                                 actors=_actors(run), value_range=_value_range(cfg), image_size=cfg.image_size,
                                 drop_remainder=False)
  batch = next(iter(ds))
  return {k: v.numpy() for k, v in batch.items() if k in ('video', 'label', 'keypoints', 'actor')}


def _value_range(cfg) -> Tuple[float, float]:
  return (0.0, 1.0) if cfg.output_activation == 'sigmoid' else (-1.0, 1.0)


def training_stream(cfg, run, length, start_step):
  """(batches of (video,), clips per epoch)."""
  if run.dataset == 'mmnist':
    return mmnist_stream(cfg, run, length, start_step), run.epoch_clips or run_config.MMNIST_EPOCH_CLIPS
  ds, count = _shard_stream(cfg, run, length, start_step)
  return ds.map(lambda b: (b['video'],)), run.epoch_clips or count


def held_out(cfg, run, num, length=None) -> Dict[str, np.ndarray]:
  """Held-out clips: a dict with 'video' [n, T, H, W, C] and, when known, 'label' / 'pair_label', 'centres'."""
  if run.dataset == 'mmnist':
    return held_out_clips(cfg, run, num, length)
  return _shard_held_out(cfg, run, num, length)


# ------------------------------------------------------------------------------------------------ models
def build_stage1(cfg: presets.VideoConfig):
  built = models.build_models(cfg)
  return built['frame_autoencoder'], built['block_stn']


def restore_stage1(stage1_logdir: str, autoencoder, stn) -> str:
  """Loads the latest stage-1 checkpoint of `stage1_logdir` into (autoencoder, stn); returns its path."""
  path = tf.train.latest_checkpoint(os.path.join(stage1_logdir, 'checkpoints'))
  tf.train.Checkpoint(frame_autoencoder=autoencoder, block_stn=stn).restore(path).expect_partial()
  return path


def learning_rate_schedule(base: float, cfg: presets.VideoConfig, steps_per_epoch: Optional[float]):
  """lr(step) = base x lr_decay ** floor(epoch / lr_step_epochs) (the thesis's x0.5 per 50 epochs)."""
  every = cfg.lr_step_epochs * steps_per_epoch if steps_per_epoch else 0

  def learning_rate(at_step: int) -> float:
    return base * (cfg.lr_decay ** int(at_step // every) if every else 1.0)
  return learning_rate


class _Renamed:
  """A trainer whose step outputs get a TensorBoard prefix and whose train_step is `step_fn`."""

  def __init__(self, trainer, step_fn, prefix: str):
    self._trainer, self._step_fn, self._prefix = trainer, step_fn, prefix
    self.step = trainer.step

  def train_step(self, *batch):
    return {f'{self._prefix}/{k}': v for k, v in self._step_fn(*batch).items()}

  def set_learning_rate(self, lr):
    self._trainer.set_learning_rate(lr)

  def checkpoint_objects(self):
    return self._trainer.checkpoint_objects()


# -------------------------------------------------------------------------------------------- evaluation
def _batched(fn, *arrays, batch: int = 32):
  outs = [fn(*(a[i:i + batch] for a in arrays)) for i in range(0, len(arrays[0]), batch)]
  return np.concatenate([np.asarray(o) for o in outs]) if outs and np.ndim(outs[0]) else np.asarray(outs)


def _mean_frame_mse(frames: np.ndarray) -> float:
  """MSE of the best constant input (the mean over axis 0) on `frames` [n, ...]: the mean frame's error on frames,
  the mean clip's on clips."""
  return float(np.mean((frames - frames.mean(axis=0, keepdims=True)) ** 2))


def evaluate_stage1(trainer: train_steps.Stage1Trainer, clips: np.ndarray) -> Dict[str, float]:
  """Held-out pairs (one per clip, EVAL_PAIR_SEED): the learned warp's and the identity warp's target MSE, and the
  reconstruction MSE against the mean frame's."""
  c = trainer.config
  source, target, _ = train_steps.sample_pairs(clips, c.max_pair_gap, EVAL_PAIR_SEED, c.min_pair_gap)
  source, target = source.numpy(), target.numpy()
  warp = float(np.mean(_batched(lambda s, t: [trainer.warp_error(s, t).numpy()], source, target)))
  ident = float(np.mean(_batched(lambda s, t: [trainer.identity_warp_error(s, t).numpy()], source, target)))
  recon = _batched(lambda x: trainer.autoencoder(x, training=False)[1].numpy(), target)
  mse = float(np.mean((recon - target) ** 2))
  mean = _mean_frame_mse(target)
  return {'warp_mse': warp, 'identity_warp_mse': ident, 'warp_over_identity': warp / ident,
          'warp_over_mean': warp / mean,
          'reconstruction_mse': mse, 'mean_frame_mse': mean, 'recon_over_mean': mse / mean}


def learning_check_stage1(results: Dict) -> Tuple[bool, str]:
  ok = (results['warp_over_identity'] <= STAGE1_MAX_WARP_OVER_IDENTITY
        and results['warp_over_mean'] <= MAX_RECON_OVER_MEAN and results['recon_over_mean'] <= MAX_RECON_OVER_MEAN)
  return ok, (f'learning check {"passed" if ok else "FAILED"}: on held-out frame pairs the learned warp\'s target '
              f'error is {results["warp_over_identity"]:.2f} x the identity warp\'s (want <= '
              f'{STAGE1_MAX_WARP_OVER_IDENTITY}) and {results["warp_over_mean"]:.2f} x the mean frame\'s (want <= '
              f'{MAX_RECON_OVER_MEAN}); reconstructions {results["recon_over_mean"]:.2f} x the mean frame\'s '
              f'error (want <= {MAX_RECON_OVER_MEAN})')


def evaluate_stage2(trainer: train_steps.Stage2Trainer, clips: np.ndarray, batch: int) -> Dict[str, float]:
  """Held-out clips, inference mode, in batches of the training batch size (InfoNCE's chance level depends on it):
  the statics and frame reconstructions against the mean frame, InfoNCE and its top-1 accuracy."""
  sums: Dict[str, list] = {}
  rebuilt_s, rebuilt_f = [], []
  usable = (len(clips) // batch) * batch or len(clips)
  clips = clips[:usable]
  for i in range(0, usable, batch):
    video = tf.constant(clips[i:i + batch])
    terms, images = trainer.terms_and_reconstructions(video, training=False)
    for k, v in terms.items():
      sums.setdefault(k, []).append(float(v))
    rebuilt_s.append(images['statics'].numpy())
    if 'frames' in images:
      rebuilt_f.append(images['frames'].numpy())
  frames = clips.reshape((-1,) + clips.shape[2:])
  mean = _mean_frame_mse(frames)
  out = {f'heldout_{k}': float(np.mean(v)) for k, v in sums.items()}
  out['mean_frame_mse'] = mean
  out['statics_over_mean'] = float(np.mean((np.concatenate(rebuilt_s) - frames) ** 2)) / mean
  if rebuilt_f:
    out['frame_over_mean'] = float(np.mean((np.concatenate(rebuilt_f) - frames) ** 2)) / mean
    out['pred_chance'] = 1.0 / (min(batch, usable) * (clips.shape[1] - 1))
  return out


def learning_check_stage2(results: Dict) -> Tuple[bool, str]:
  ok = results['statics_over_mean'] <= MAX_RECON_OVER_MEAN
  parts = [f'g_dec(T(S, s_t) o S) {results["statics_over_mean"]:.2f} x the mean frame\'s error (want <= '
           f'{MAX_RECON_OVER_MEAN})']
  if 'frame_over_mean' in results:
    pred_ratio = results['heldout_pred_accuracy'] / results['pred_chance']
    ok = ok and results['frame_over_mean'] <= MAX_RECON_OVER_MEAN and pred_ratio >= MIN_PRED_OVER_CHANCE
    parts += [f'f_dec(p_t, S) {results["frame_over_mean"]:.2f} x (want <= {MAX_RECON_OVER_MEAN})',
              f'InfoNCE top-1 {100 * results["heldout_pred_accuracy"]:.1f}% = {pred_ratio:.1f} x chance (want >= '
              f'{MIN_PRED_OVER_CHANCE:.0f} x)']
  return ok, f'learning check {"passed" if ok else "FAILED"}: held-out ' + '; '.join(parts)


# ------------------------------------------------------------------------------------------------ sheets
class _Sheets:
  """Fixed held-out clips, so successive sheets are comparable."""

  def __init__(self, run: RunConfig, clips: np.ndarray, trainer):
    from rlcv_tf.video import viz  # pylint: disable=g-import-not-at-top
    self.viz, self.trainer, self.run = viz, trainer, run
    self.clips = clips[:max(2, run.grid_clips)]

  def stage1(self) -> np.ndarray:
    c = self.trainer.config
    source, target, _ = train_steps.sample_pairs(self.clips, c.max_pair_gap, EVAL_PAIR_SEED, c.min_pair_gap)
    return self.viz.stage1_sheet(self.trainer.autoencoder, self.trainer.stn, source.numpy(), target.numpy())

  def stage2(self) -> np.ndarray:
    t = self.trainer
    return self.viz.statics_sheet(t.video_encoder, t.autoencoder, self.clips[:, :t.config.num_frames])

  def swap(self) -> np.ndarray:
    t = self.trainer
    clips = self.clips[:, :t.config.num_frames]
    return self.viz.swap_sheet(t.video_encoder, t.frame_dynamics, clips[0:1], clips[1:2])


# ------------------------------------------------------------------------------------------------- train
def train(cfg: presets.VideoConfig, run: RunConfig, logdir: str,
          print_fn: Callable[[str], None] = print) -> TrainResult:
  """Trains what `run` names on `run.dataset`, evaluates it, exports it (module docstring)."""
  cfg = cfg.validate()
  run.validate()
  start = time.monotonic()
  check_resume(cfg, run, logdir)
  if run.kind == 'stage2':
    check_stage1(cfg, run)
  tf.keras.utils.set_random_seed(run.seed)
  train_loop.save_run_config(logdir, cfg, run)
  if run.kind in ('stage1', 'stage2'):
    return _train_ours(cfg, run, logdir, print_fn, start)
  return _train_baseline(cfg, run, logdir, print_fn, start)


def _loop(cfg, run, logdir, print_fn, trainer, step_fn, prefix, base_lr, stream, export_fn, sheet, line_metrics):
  """Restores `trainer` from logdir if it holds a checkpoint, then runs `core.train_loop` on `stream(start_step)` ->
  (batches, clips per epoch), started after the restored step. Returns (done, metrics, steps/s, writer)."""
  writer = tf.summary.create_file_writer(logdir)
  wrapped = _Renamed(trainer, step_fn, prefix)
  manager = train_loop.restore_or_start(wrapped, logdir, print_fn, prefix=PREFIX)
  batches, epoch_clips = stream(int(trainer.step.numpy()))
  steps_per_epoch = epoch_clips / cfg.batch_size
  done, metrics, rate = train_loop.train_loop(
      wrapped, batches, run, manager, writer,
      train_loop.sheet_writer(logdir, writer, sheet, f'samples/{prefix}'),
      learning_rate_schedule(base_lr, cfg, steps_per_epoch), cfg.batch_size, steps_per_epoch, logdir, print_fn,
      prefix=PREFIX, export_fn=export_fn, line_metrics=line_metrics, throughput_unit='clips')
  return done, metrics, rate, writer


def _finish(logdir, writer, done, results, check, print_fn, export_fn, metrics, rate, start):
  passed, line = check
  results.update(learning_check_passed=passed, learning_check=line)
  with open(os.path.join(logdir, 'eval.json'), 'w') as f:
    json.dump({'step': done, **results}, f, indent=1, sort_keys=True, default=float)
  with writer.as_default(step=done):
    for k, v in results.items():
      if isinstance(v, float):
        tf.summary.scalar(f'eval/{k}', v)
  writer.flush()
  print_fn(f'{PREFIX}{line}')
  saved = export_fn()
  print_fn(f'{PREFIX}done: step {done:,}; SavedModel {saved}; samples {os.path.join(logdir, "samples")}; '
           f'TensorBoard: tensorboard --logdir={logdir}')
  return TrainResult(done, metrics, results, saved, time.monotonic() - start, rate)


def _train_ours(cfg, run, logdir, print_fn, start) -> TrainResult:
  from rlcv_tf.video import export  # pylint: disable=g-import-not-at-top
  saved_model = os.path.join(logdir, 'saved_model')
  if run.kind == 'stage1':
    autoencoder, stn = build_stage1(cfg)
    trainer = train_steps.Stage1Trainer(cfg, autoencoder, stn, seed=run.seed)
    length = run.stage1_clip_length
    held = held_out(cfg, run, run.num_eval_clips, length)['video']
    sheets = _Sheets(run, held, trainer)
    export_fn = lambda: export.export_stage1(autoencoder, stn, cfg, saved_model)
    done, metrics, rate, writer = _loop(
        cfg, run, logdir, print_fn, trainer, trainer.train_clips, 'stage1', cfg.stage1_lr,
        lambda step: training_stream(cfg, run, length, step), export_fn,
        sheets.stage1, (('stage1/loss', 'loss'), ('stage1/recon_source', 'rec x_i'),
                        ('stage1/recon_target', 'rec x_j'), ('stage1/theta_offset', '|theta-I|')))
    results = evaluate_stage1(trainer, held)
    return _finish(logdir, writer, done, results, learning_check_stage1(results), print_fn, export_fn, metrics,
                   rate, start)

  built = models.build_models(cfg)
  trainer = train_steps.Stage2Trainer(cfg, built['frame_autoencoder'], built['block_stn'], built['video_encoder'],
                                      built['frame_dynamics'], built['predictor'], ablation=run.ablation)
  if not tf.train.latest_checkpoint(os.path.join(logdir, 'checkpoints')):
    path = restore_stage1(run.stage1_logdir, built['frame_autoencoder'], built['block_stn'])
    print_fn(f'{PREFIX}stage 1 (frozen): {path}')
  held = held_out(cfg, run, run.num_eval_clips)['video']
  sheets = _Sheets(run, held, trainer)
  export_fn = lambda: export.export_model(built, cfg, saved_model)
  done, metrics, rate, writer = _loop(
      cfg, run, logdir, print_fn, trainer, trainer.train_step, 'stage2', cfg.stage2_lr,
      lambda step: training_stream(cfg, run, cfg.num_frames, step), export_fn,
      sheets.stage2, (('stage2/loss', 'loss'), ('stage2/statics', 'statics'), ('stage2/frame', 'frame'),
                     ('stage2/pred', 'pred'), ('stage2/pred_accuracy', 'pred acc')))
  if run.ablation != 'statics_only':
    images_lib.save_png(sheets.swap(), os.path.join(logdir, 'samples', f'swap_{done:07d}.png'), scale=2)
  results = evaluate_stage2(trainer, held, cfg.batch_size)
  return _finish(logdir, writer, done, results, learning_check_stage2(results), print_fn, export_fn, metrics, rate,
                 start)


# --------------------------------------------------------------------------------------------- baselines
def num_classes(run: RunConfig) -> int:
  if run.dataset == 'mmnist':
    return moving_mnist.NUM_PAIRS
  from rlcv_tf.datasets import video_shards  # pylint: disable=g-import-not-at-top
  return 1 + max(int(v['label']) for v in video_shards.check_prepared(run.data_dir, run.dataset)['videos'])


def _labelled_stream(cfg, run, start_step):
  if run.dataset == 'mmnist':
    ds = moving_mnist.make_dataset('train', cfg.batch_size, cfg.num_frames, run.seed,
                                   start=start_step * cfg.batch_size, **_mmnist_kwargs(cfg, run))
    return ds.map(lambda b: (b['video'], b['pair_label'])), run.epoch_clips or run_config.MMNIST_EPOCH_CLIPS
  ds, count = _shard_stream(cfg, run, cfg.num_frames, start_step)
  return ds.map(lambda b: (b['video'], tf.cast(b['label'], tf.int64))), run.epoch_clips or count


def _labels(held: Dict[str, np.ndarray]) -> np.ndarray:
  return held['pair_label'] if 'pair_label' in held else held['label']


def _train_baseline(cfg, run, logdir, print_fn, start) -> TrainResult:
  from rlcv_tf.video import classifiers  # pylint: disable=g-import-not-at-top
  from rlcv_tf.video import export  # pylint: disable=g-import-not-at-top
  n = num_classes(run)
  if run.model == 'classifier':
    model = classifiers.SupervisedVideoClassifier(cfg, n)
  else:
    model = classifiers.VideoAutoencoderBaseline(cfg)
  trainer = classifiers.BaselineTrainer(cfg, model, run.model, cfg.stage2_lr)
  held = held_out(cfg, run, run.num_eval_clips)
  saved_model = os.path.join(logdir, 'saved_model')
  export_fn = lambda: export.export_baseline(model, cfg, run.model, saved_model)
  from rlcv_tf.video import viz  # pylint: disable=g-import-not-at-top
  value_range = viz.pixel_range(cfg)

  def sheet():
    clips = held['video'][:max(2, run.grid_clips)]
    if run.model == 'autoencoder':
      rebuilt = model(clips, training=False).numpy()
      return images_lib.stack_rows([viz.video_strip(v, value_range) for pair in zip(clips, rebuilt) for v in pair])
    return images_lib.stack_rows([viz.video_strip(v, value_range) for v in clips])
  done, metrics, rate, writer = _loop(
      cfg, run, logdir, print_fn, trainer, trainer.train_step, run.model, cfg.stage2_lr,
      lambda step: _labelled_stream(cfg, run, step), export_fn, sheet,
      ((f'{run.model}/loss', 'loss'), (f'{run.model}/accuracy', 'acc')))
  videos = held['video']
  outputs = _batched(lambda v: model(v, training=False).numpy(), videos)     # logits or reconstructions
  if run.model == 'classifier':
    accuracy = float(np.mean(np.argmax(outputs, axis=1) == _labels(held)))
    results = {'heldout_accuracy': accuracy, 'chance': 1.0 / n, 'num_classes': n}
    ok = accuracy >= MIN_ACCURACY_OVER_CHANCE / n
    check = (ok, f'learning check {"passed" if ok else "FAILED"}: held-out accuracy {100 * accuracy:.1f}% vs chance '
                 f'{100 / n:.1f}% (want >= {MIN_ACCURACY_OVER_CHANCE:.0f} x chance)')
  else:
    mse = float(np.mean((outputs - videos) ** 2))
    mean = _mean_frame_mse(videos)      # the mean clip's error
    results = {'reconstruction_mse': mse, 'mean_clip_mse': mean, 'recon_over_mean': mse / mean}
    ok = mse / mean <= MAX_RECON_OVER_MEAN
    check = (ok, f'learning check {"passed" if ok else "FAILED"}: held-out clip reconstructions {mse / mean:.2f} x '
                 f'the mean clip\'s error (want <= {MAX_RECON_OVER_MEAN})')
  return _finish(logdir, writer, done, results, check, print_fn, export_fn, metrics, rate, start)
