"""Chapter 5 Stage-1 training run: data -> train steps -> checkpoints, TensorBoard, sample sheets, evaluation, export.

`train(cfg, run, logdir)` writes under `logdir`:
  config.json            the model configuration (CrVAEConfig) and the run settings; a re-run checks and resumes
  checkpoints/           tf.train.CheckpointManager: networks, every optimiser, the step counter
  events.*               TensorBoard: every loss term (L_rec, each KL_t, L_MI, adversarial, D), D accuracy and
                         update rate, learning rate, images/s; image grids of fixed-z samples and reconstructions
  samples/step_*.png     the same grids as PNG (real | reconstruction on top, fixed-z prior samples below)
  samples/progressive.png  latent blocks filled one at a time (thesis Fig. 5.8) for crVAE models
  samples/expost_step_*.png  RGB models: N(0, I) samples above samples of the ex-post Gaussian fitted to the
                         training images' posteriors after training (expost_prior.py; not the thesis's sampler)
  eval.json              held-out reconstruction error; for MNIST models the importance-sampled NLL (Table 5.B.1);
                         for RGB models the learning check's numbers and its line (learning_check.py)
  saved_model/           generator and encoder as a SavedModel (`rlcv_tf.crvae.export`), with `sample_expost`
Re-running with the same `logdir` resumes from the latest checkpoint (e.g. with more `steps`). Ctrl-C / SIGTERM
save a checkpoint and the SavedModel before the run stops (`core/train_loop.py`).
"""

import dataclasses
import json
import os
import time
from typing import Callable, Dict, Optional

import numpy as np
import tensorflow as tf

from rlcv_tf.core import images as images_lib
from rlcv_tf.core import train_loop
from rlcv_tf.core.vaegan import evaluation
from rlcv_tf.crvae import export
from rlcv_tf.crvae import expost_prior
from rlcv_tf.core.vaegan import latent_tools
from rlcv_tf.crvae import learning_check
from rlcv_tf.core.vaegan import networks
from rlcv_tf.crvae import presets
from rlcv_tf.crvae import run_config
from rlcv_tf.crvae import selection
from rlcv_tf.crvae import train_steps

RunConfig = run_config.RunConfig
DataPosition = train_loop.DataPosition
data_start = train_loop.data_start
PREFIX = '[crvae] '

# Architecture fields: a resumed run must not change them (the checkpoint's variables have these shapes).
_ARCHITECTURE_FIELDS = ('model', 'resolution', 'channels', 'encoder_layers', 'decoder_layers', 'n_z',
                        'latent_size', 'num_blocks', 'lstm_hidden', 'lstm_layers', 'mean_path', 'd_channels',
                        'd_kernels', 'd_dense', 'mbd_kernels', 'mbd_dims', 'use_mi', 'mi_channels')


class ResumeMismatchError(ValueError):
  pass


TrainResult = train_loop.TrainResult


def _load_saved(logdir: str) -> Optional[dict]:
  path = os.path.join(logdir, 'config.json')
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def check_resume(cfg: presets.CrVAEConfig, run: RunConfig, logdir: str):
  saved = _load_saved(logdir)
  if saved is None:
    return
  old = presets.CrVAEConfig.from_dict(saved['model'])
  for field in _ARCHITECTURE_FIELDS:
    a, b = getattr(old, field), getattr(cfg, field)
    if a != b:
      raise ResumeMismatchError(
          f'--logdir={logdir} holds a run with {field}={a!r}, but this run asks for {field}={b!r}. Use the same '
          'preset and flags to resume it, or a new --logdir to start a new run.')
  if saved['run']['dataset'] != run.dataset:
    raise ResumeMismatchError(
        f'--logdir={logdir} was trained on --dataset={saved["run"]["dataset"]}, not {run.dataset}. Use the same '
        'dataset to resume, or a new --logdir.')


def make_datasets(cfg: presets.CrVAEConfig, run: RunConfig):
  """(train dataset of image batches, held-out images as an array, steps per epoch); `make_data` keeps labels,
  attributes and the stream positions too."""
  from rlcv_tf.datasets import mnist as mnist_lib  # pylint: disable=g-import-not-at-top
  data_dir = run.data_dir or None
  if cfg.likelihood == 'bernoulli':
    train, info = mnist_lib.make_mnist_dataset(run.dataset, data_dir, 'train', cfg.batch_size, train=True,
                                               binarize='dynamic', seed=cfg.seed, with_info=True)
    # The test digits of every run: one fixed binarisation, independent of cfg.seed (Table 5.B.1 protocol).
    held_images = mnist_lib.fixed_binary_split(run.dataset, data_dir, 'test', run.num_eval_images)[0]
    return train.map(lambda b: b['image']), held_images, info.steps_per_epoch
  data = make_data(cfg, run)
  return data.images(), data.held['image'], data.steps_per_epoch


# ------------------------------------------------------------------------------------------------ data stream
# Issue 9 §1: a resumed run continues the data stream where it stopped (the position of the last batch consumed
# is saved with every checkpoint), and images skipped as unreadable reach the console, TensorBoard and eval.json
# (core/train_loop.py: DataPosition, data_start, DataFeed).


@dataclasses.dataclass
class Data:
  """A run's data. `train`: endless training batches, dicts with 'image', 'label', 'attributes' (when the data set
  has them, e.g. CelebA's 40 +-1 attributes) and the stream position 'epoch' / 'position' (image data sets);
  `held`: held-out arrays ('image'; image data sets also 'label' and 'attributes'); `info`: the training split's
  pipeline.DatasetInfo (image data sets); `start`: the (epoch, skip) the stream starts at."""
  train: tf.data.Dataset
  held: Dict[str, np.ndarray]
  steps_per_epoch: int
  info: Optional[object] = None
  start: tuple = (0, 0)

  def images(self) -> tf.data.Dataset:
    return self.train.map(lambda b: b['image'])


def make_data(cfg: presets.CrVAEConfig, run: RunConfig, start=(0, 0)) -> Data:
  """The run's `Data`; image data sets start the training stream at `start` = (epoch, skip) (see `data_start`),
  with the run's file check, skip limit, cache and determinism settings."""
  if cfg.likelihood == 'bernoulli':
    train, held_images, steps = make_datasets(cfg, run)
    return Data(train.map(lambda x: {'image': x}), {'image': held_images}, steps)
  from rlcv_tf.datasets import pipeline  # pylint: disable=g-import-not-at-top
  data_dir = run.data_dir or None
  checks = dict(verify=run.verify, max_skipped_fraction=run.max_skipped_fraction, deterministic=run.deterministic)
  train, info = pipeline.make_image_dataset(
      run.dataset, data_dir, 'train', cfg.resolution, cfg.batch_size, train=True, seed=cfg.seed, epochs=None,
      start_epoch=start[0], skip=start[1], cache=run.cache, with_info=True, **checks)
  # Batches of one, so a split smaller than num_eval_images still works; built (and file-checked) once.
  held, held_info = pipeline.make_image_dataset(run.dataset, data_dir, 'val', cfg.resolution, 1, train=False,
                                                with_info=True, **checks)
  held = next(iter(held.unbatch().batch(min(run.num_eval_images, held_info.num_examples)).take(1)))
  held = {k: v.numpy() for k, v in held.items() if k in ('image', 'label', 'attributes')}
  return Data(train, held, info.steps_per_epoch, info, tuple(start))


def _value_range(cfg):
  return (0.0, 1.0) if cfg.likelihood == 'bernoulli' else (-1.0, 1.0)


class _Sheets:
  """Fixed inputs for the picture sheets, so successive sheets show the same z and the same real images."""

  def __init__(self, vae, cfg, held_images, count, seed):
    self.vae, self.cfg = vae, cfg
    count = min(count, len(held_images))
    self.real = held_images[:count]
    self.z = tf.random.stateless_normal((count,) + tuple(cfg.latent_shape), seed=(seed, 17))

  def grid(self) -> np.ndarray:
    mu, _ = self.vae.encode(self.real, training=False)
    recon = self.vae.decode(mu, training=False).numpy()
    samples = self.vae.decode(self.z, training=False).numpy()
    vr = _value_range(self.cfg)
    cols = int(np.ceil(np.sqrt(len(self.real))))
    half = max(1, len(self.real) // 2)
    pairs = np.concatenate([self.real[:half], recon[:half]], axis=0)
    return images_lib.stack_rows([images_lib.make_grid(pairs, cols=cols, value_range=vr),
                                  images_lib.make_grid(samples, cols=cols, value_range=vr)])

  def expost_grid(self, expost) -> np.ndarray:
    """N(0, I) samples (the fixed z of every sheet) above as many samples of the ex-post Gaussian."""
    vr = _value_range(self.cfg)
    cols = int(np.ceil(np.sqrt(len(self.real))))
    prior = self.vae.decode(self.z, training=False).numpy()
    post = self.vae.decode(expost.sample(len(self.real), seed=(self.cfg.seed, 19)), training=False).numpy()
    return images_lib.stack_rows([images_lib.make_grid(prior, cols=cols, value_range=vr),
                                  images_lib.make_grid(post, cols=cols, value_range=vr)])

  def progressive(self) -> np.ndarray:
    frames = latent_tools.progressive_sequence(self.vae, self.z[:8])   # [T, B, H, W, C]
    frames = np.asarray(frames)
    t, b = frames.shape[:2]
    sheet = np.transpose(frames, (1, 0, 2, 3, 4)).reshape((b * t,) + frames.shape[2:])
    return images_lib.make_grid(sheet, cols=t, value_range=_value_range(self.cfg))


def fit_expost(vae, cfg, run: RunConfig):
  """The ex-post Gaussian (expost_prior.py) of the first `run.expost_images` training images, read in their
  listed order without augmentation (the same images for every run on a data set)."""
  from rlcv_tf.datasets import pipeline  # pylint: disable=g-import-not-at-top
  batches = pipeline.make_image_dataset(run.dataset, run.data_dir or None, 'train', cfg.resolution,
                                        min(cfg.batch_size, run.expost_images), train=False, verify=run.verify,
                                        max_skipped_fraction=run.max_skipped_fraction,
                                        deterministic=run.deterministic)
  return expost_prior.fit(vae, batches.as_numpy_iterator(), run.expost_images)


def evaluate(vae, cfg, held_images, nll_samples: int, expost=None) -> Dict[str, float]:
  out = {'eval/reconstruction_mse': float(evaluation.reconstruction_error(vae, held_images)['mse'])}
  if cfg.likelihood == 'bernoulli':
    nll = evaluation.model_nll(vae, held_images, num_samples=nll_samples)
    out['eval/nll_nats'] = float(np.mean(nll))
    out['eval/nll_samples'] = float(nll_samples)
    out['eval/num_images'] = float(len(held_images))
  elif len(held_images) >= 2:
    # Did it learn anything visible? (learning_check: against the mean image, a collapsed posterior, one sample.)
    diag = learning_check.diagnostics(vae, held_images, seed=cfg.seed, expost=expost)
    out.update({f'eval/{k}': v for k, v in diag.items() if k != 'reconstruction_mse'})
    out['eval/learning_check_passed'] = float(learning_check.check(diag)[0])
  return out


def learning_check_line(results: Dict[str, float]) -> Optional[str]:
  """The learning check's one line from `evaluate`'s results (None for models it does not cover)."""
  if 'eval/learning_check_passed' not in results:
    return None
  diag = {k[5:]: v for k, v in results.items() if k.startswith('eval/')}
  return learning_check.check(diag)[1]


def train(cfg: presets.CrVAEConfig, run: RunConfig, logdir: str,
          print_fn: Callable[[str], None] = print) -> TrainResult:
  """Stage 1: trains the model `cfg` on `run.dataset`, then evaluates and exports it (see the module docstring)."""
  cfg.validate()
  run.validate()
  start = time.monotonic()
  check_resume(cfg, run, logdir)
  tf.keras.utils.set_random_seed(cfg.seed)
  data = make_data(cfg, run, data_start(logdir))
  held_images, steps_per_epoch = data.held['image'], data.steps_per_epoch
  train_loop.save_run_config(logdir, cfg, run)

  vae, disc = networks.build_models(cfg)
  trainer = train_steps.make_trainer(vae, disc, cfg)
  data_position = DataPosition(data.start)
  manager = train_loop.restore_or_start(trainer, logdir, print_fn, extra={'data': data_position}, prefix=PREFIX)
  writer = tf.summary.create_file_writer(logdir)
  feed = train_loop.DataFeed(data.train, data.info, lambda b: (b['image'],), data_position, manager, writer,
                             trainer.step, print_fn, run.summary_every, prefix=PREFIX)
  sheets = _Sheets(vae, cfg, held_images, run.grid_size, cfg.seed)
  lr_every = run.lr_step_every or (cfg.lr_step_epochs * steps_per_epoch if steps_per_epoch else 0)

  def learning_rate(at_step: int) -> float:
    return cfg.learning_rate * (cfg.lr_decay ** (at_step // lr_every) if lr_every else 1.0)

  selector = (selection.mnist_selector(vae, cfg, run, logdir, steps_per_epoch, writer, print_fn)
              if cfg.likelihood == 'bernoulli' else None)
  done, metrics, steps_per_second = train_loop.train_loop(
      trainer, feed, run, manager, writer,
      train_loop.sheet_writer(logdir, writer, sheets.grid, 'samples/real_recon_and_prior'), learning_rate,
      cfg.batch_size, steps_per_epoch, logdir, print_fn, on_step=selector.maybe_score if selector else None,
      prefix=PREFIX, export_fn=lambda: export.export_vae(vae, os.path.join(logdir, 'saved_model')))
  selected = selection.finish(selector, done, print_fn)   # MNIST: the best validation weights from here on

  if vae.num_blocks > 1 and 'cr' in (cfg.inference_head, cfg.generation_head):
    images_lib.save_png(sheets.progressive(), os.path.join(logdir, 'samples', 'progressive.png'), scale=2)
  expost = None
  if cfg.likelihood != 'bernoulli':
    expost = fit_expost(vae, cfg, run)
    images_lib.save_png(sheets.expost_grid(expost), os.path.join(logdir, 'samples', f'expost_step_{done:07d}.png'),
                        scale=2)
  results = evaluate(vae, cfg, held_images, run.nll_samples, expost)
  results.update(selected)
  check_line = learning_check_line(results)
  with open(os.path.join(logdir, 'eval.json'), 'w') as f:
    json.dump({'step': done, **results, **feed.report(), **({'learning_check': check_line} if check_line else {})},
              f, indent=1, sort_keys=True)
  if check_line:
    print_fn(f'[crvae] {check_line}')
  with writer.as_default(step=done):
    for k, v in results.items():
      tf.summary.scalar(k, v)
  writer.flush()
  saved_model_dir = export.export_vae(vae, os.path.join(logdir, 'saved_model'), expost=expost)
  shown = {k: v for k, v in results.items() if 'kl_block_' not in k and k != 'eval/learning_check_passed'}
  print_fn(f'[crvae] done: step {done:,}; ' + ', '.join(f'{k[5:]} {v:.4g}' for k, v in shown.items()) +
           f'; SavedModel {saved_model_dir}; samples {os.path.join(logdir, "samples")}; '
           f'TensorBoard: tensorboard --logdir={logdir}')
  return TrainResult(done, metrics, results, saved_model_dir, time.monotonic() - start, steps_per_second)


def load_stage1(stage1_logdir: str):
  """(ImageVAE with the latest Stage-1 weights, its CrVAEConfig, its RunConfig dict) from a Stage-1 logdir."""
  saved = _load_saved(stage1_logdir)
  latest = tf.train.latest_checkpoint(os.path.join(stage1_logdir, 'checkpoints'))
  if saved is None or latest is None:
    raise FileNotFoundError(f'--stage1_logdir={stage1_logdir} holds no finished Stage-1 run (expected config.json '
                            'and checkpoints/ written by a Stage-1 run of launchers.crvae)')
  cfg = presets.CrVAEConfig.from_dict(saved['model'])
  vae, _ = networks.build_models(cfg)
  tf.train.Checkpoint(vae=vae).restore(latest).expect_partial().assert_existing_objects_matched()
  vae.trainable = False
  return vae, cfg, saved['run']


def train_stage2(s2cfg, run: RunConfig, stage1_logdir: str, logdir: str, feature_net=None,
                 print_fn: Callable[[str], None] = print) -> TrainResult:
  """Stage 2 (thesis Sec. 5.3.4, App. 5.D): a refiner G2 / D2 trained on the outputs of a frozen Stage-1 model.

  Each batch pairs images at the Stage-1 resolution with the same crops at `s2cfg.out_resolution`. Writes the
  same files as Stage 1 (checkpoints, events, samples/ with Stage-1 | Stage-2 pairs, saved_model/ whose `generate`
  and `sample` run both stages, eval.json with the held-out reconstruction error at the high resolution).
  """
  s2cfg = s2cfg.validate()
  run.validate()
  start = time.monotonic()
  vae, cfg1, run1 = load_stage1(stage1_logdir)
  if cfg1.resolution != s2cfg.in_resolution or cfg1.channels != s2cfg.channels:
    raise ValueError(f'stage2 preset {s2cfg.name} refines {s2cfg.in_resolution}px images, but the Stage-1 model '
                     f'in {stage1_logdir} makes {cfg1.resolution}px ones; choose a Stage-2 preset whose '
                     'in_resolution matches')
  saved = _load_saved(logdir)
  if saved is not None and saved.get('stage2', {}).get('name') != s2cfg.name:
    raise ResumeMismatchError(f'--logdir={logdir} holds another run; use a new --logdir for Stage 2')
  from rlcv_tf.crvae import stage2 as stage2_lib  # pylint: disable=g-import-not-at-top
  from rlcv_tf.datasets import pipeline  # pylint: disable=g-import-not-at-top
  tf.keras.utils.set_random_seed(cfg1.seed)
  data_dir = run.data_dir or None
  data_begin = data_start(logdir)   # not `start`: that is the wall-clock start of the run
  train_ds, info = pipeline.make_image_dataset(run.dataset, data_dir, 'train', s2cfg.in_resolution,
                                               s2cfg.batch_size, train=True, seed=cfg1.seed,
                                               hires=s2cfg.out_resolution, with_info=True, epochs=None,
                                               start_epoch=data_begin[0], skip=data_begin[1], cache=run.cache,
                                               verify=run.verify, deterministic=run.deterministic,
                                               max_skipped_fraction=run.max_skipped_fraction)
  held = next(iter(pipeline.make_image_dataset(run.dataset, data_dir, 'val', s2cfg.in_resolution,
                                               min(run.grid_size, s2cfg.batch_size), train=False,
                                               hires=s2cfg.out_resolution).take(1)))
  os.makedirs(logdir, exist_ok=True)
  with open(os.path.join(logdir, 'config.json'), 'w') as f:
    json.dump({'stage2': dataclasses.asdict(s2cfg), 'run': dataclasses.asdict(run), 'stage1_logdir': stage1_logdir,
               'stage1_model': cfg1.to_dict(),
               # Which features the perceptual loss matched (spec A14), None without a feature net.
               'perceptual_feature_layer': getattr(feature_net, 'layer_name', None)}, f, indent=1, sort_keys=True)

  generator, discriminator = stage2_lib.build_stage2_models(s2cfg)
  trainer = train_steps.Stage2Trainer(vae, generator, discriminator, s2cfg, feature_net=feature_net)
  data_position = DataPosition(data_begin)
  manager = train_loop.restore_or_start(trainer, logdir, print_fn, extra={'data': data_position}, prefix=PREFIX)
  writer = tf.summary.create_file_writer(logdir)
  feed = train_loop.DataFeed(train_ds, info, lambda b: (b['image'], b['hires']), data_position, manager, writer,
                             trainer.step, print_fn, run.summary_every, prefix=PREFIX)
  z = tf.random.stateless_normal((len(held['image']),) + tuple(cfg1.latent_shape), seed=(cfg1.seed, 23))

  def grid():
    low = vae.decode(z, training=False)
    high = generator(low, training=False).numpy()
    up = tf.image.resize(low, high.shape[1:3], method='nearest').numpy()
    cols = int(np.ceil(np.sqrt(len(high))))
    return images_lib.stack_rows([images_lib.make_grid(up, cols=cols), images_lib.make_grid(high, cols=cols)])

  done, metrics, steps_per_second = train_loop.train_loop(
      trainer, feed, run, manager, writer,
      train_loop.sheet_writer(logdir, writer, grid, 'samples/stage1_and_stage2'), lambda _: s2cfg.learning_rate,
      s2cfg.batch_size, info.steps_per_epoch, logdir, print_fn, prefix=PREFIX,
      export_fn=lambda: export.export_two_stage(vae, generator, os.path.join(logdir, 'saved_model')))

  mu, _ = vae.encode(held['image'], training=False)
  refined = generator(vae.decode(mu, training=False), training=False)
  results = {'eval/stage2_reconstruction_mse': float(tf.reduce_mean(tf.square(refined - held['hires'])))}
  with open(os.path.join(logdir, 'eval.json'), 'w') as f:
    json.dump({'step': done, **results, **feed.report()}, f, indent=1, sort_keys=True)
  writer.flush()
  saved_model_dir = export.export_two_stage(vae, generator, os.path.join(logdir, 'saved_model'))
  print_fn(f'[crvae] stage 2 done: step {done:,}; reconstruction_mse {results["eval/stage2_reconstruction_mse"]:.4g}'
           f'; SavedModel {saved_model_dir}; samples {os.path.join(logdir, "samples")}')
  return TrainResult(done, metrics, results, saved_model_dir, time.monotonic() - start, steps_per_second)
