"""Training runs of the seed-002 models with checkpoints, TensorBoard, sheets, per-epoch curves, an end-of-run
evaluation with a learning check that can fail, and a SavedModel (S = seed 002 line).

`train(cfg, run, logdir)` writes under `logdir`:
  config.json            the model configuration (FCVAEConfig) and the run settings; a re-run checks them and resumes
  checkpoints/           model (BN statistics, the AEs' code Gaussian), optimizer, step, the plateau schedule
  events.*               TensorBoard: loss terms, learning rate, images/s; the sample sheet; eval/* at the end
  samples/step_*.png     held-out reconstructions (originals left, reconstructions right) above prior samples
  samples/final_*.png    `viz.write_sheets`: reconstructions, best-of-10 prior samples, traversals, noise strips,
                         MCMC chain (VAEs), latent maps and mean |mu| maps (spatial latents)
  curves.csv / .png      per-epoch training and validation reconstruction and KL (S:L1126)
  eval.json              held-out numbers, MIG (dSprites), symbol accuracy (DSRL, spatial latents), learning check
  saved_model/           `export.export_model` (generate / sample / encode / reconstruct)
Re-running with the same logdir resumes; Ctrl-C / SIGTERM save a checkpoint and the SavedModel first.

Objective (batch mean, minimised): VAEs `losses.beta_vae_loss` (+ ortho_weight x the orthogonality penalty of the
latent-head kernels); AEs the reconstruction alone (summed BCE, S:L443). Adam at cfg.learning_rate; with
plateau_patience > 0 the rate halves (plateau_factor) after that many epochs without a better validation loss (the
draft's "reduce LR on plateau", S:L901; its early stopping is left to --steps / --epochs).

Evaluation on `run.num_eval` held-out images (the data set's test split; Atari frames: the collector's val
episodes), in a fixed shuffled order, inference mode, z = the posterior mean:
  bce_sum         per-image summed BCE (the metric behind Tables 3.1 / 3.2's 71.94 / 64.89, spec 6)
  kl_neuron       per-image KL of the whole latent (nats), whatever kl_mode trained
  excess_bce      BCE minus the images' own entropy sum_i H(x_i): 0 for a perfect reconstruction (for intensities
                  in (0, 1) BCE has this floor, which a mean image pays too)
  mean_image_excess  the same for the training set's mean image, the best constant predictor
Learning check: excess_bce <= MAX_EXCESS_OVER_MEAN_IMAGE x mean_image_excess. An untrained model (all pixels 0.5)
fails it on every data set here.
"""

import json
import os
import time
from typing import Callable, Dict, List, Optional

import keras
import numpy as np
import tensorflow as tf

from rlcv_tf.core import runs
from rlcv_tf.core import train_loop
from rlcv_tf.core import images as images_lib
from rlcv_tf.fcvae import data as data_lib
from rlcv_tf.fcvae import losses
from rlcv_tf.fcvae import models
from rlcv_tf.fcvae import presets

PREFIX = '[fcvae] '
MAX_EXCESS_OVER_MEAN_IMAGE = 0.8
DEFAULT_NUM_TRAIN = {'synth_dsprites': 20_000, 'dsprites': 100_000, 'dsrl': 4_000}
HELD_OUT_ORDER_SEED = 5   # held-out images in a fixed shuffled order (the files keep classes together)
LINE_METRICS = (('loss/loss', 'loss'), ('loss/recon', 'rec'), ('loss/kl', 'kl'), ('loss/entropy', 'H'))

TrainResult = train_loop.TrainResult
RunConfig = presets.RunConfig


# ------------------------------------------------------------------------------------------------ objective
def objective(cfg: presets.FCVAEConfig, model, x, training: bool) -> Dict[str, tf.Tensor]:
  """The loss terms of one batch (module docstring): {'loss', 'recon'}, for VAEs also 'kl' (the kl_mode's term)
  and, when used, 'entropy' (wta_competitive) and 'ortho'."""
  out = model(x, training=training)
  if not model.variational:
    recon = tf.reduce_mean(losses.reconstruction(x, out['logits'], cfg.recon_loss, cfg.reduction))
    return {'loss': recon, 'recon': recon}
  terms = losses.beta_vae_loss(x, out['logits'], out['mu'], out['logvar'], cfg.beta, cfg.kl_mode, cfg.recon_loss,
                               cfg.reduction, cfg.competition_weight, cfg.temperature)
  if cfg.ortho_weight:
    ortho = tf.add_n([losses.ortho_penalty(k) for k in model.latent_head_kernels()])
    terms['ortho'] = ortho
    terms['loss'] = terms['loss'] + cfg.ortho_weight * ortho
  return terms


class Plateau(tf.Module):
  """The learning-rate schedule's state, saved in checkpoints: the rate, the best validation loss, epochs since."""

  def __init__(self, learning_rate: float):
    super().__init__(name='plateau')
    self.learning_rate = tf.Variable(float(learning_rate), dtype=tf.float64, trainable=False, name='learning_rate')
    self.best = tf.Variable(np.inf, dtype=tf.float64, trainable=False, name='best')
    self.wait = tf.Variable(0, dtype=tf.int64, trainable=False, name='wait')

  def update(self, val_loss: float, factor: float, patience: int) -> bool:
    """After an epoch: True when the rate was just lowered."""
    if patience <= 0:
      return False
    if val_loss < float(self.best.numpy()):
      self.best.assign(val_loss)
      self.wait.assign(0)
      return False
    self.wait.assign_add(1)
    if int(self.wait.numpy()) >= patience:
      self.learning_rate.assign(float(self.learning_rate.numpy()) * factor)
      self.wait.assign(0)
      return True
    return False


class Trainer:
  """One Adam step of `objective` per batch; accumulates the training terms of the current epoch for the curves."""

  def __init__(self, cfg: presets.FCVAEConfig, model):
    self.cfg, self.model = cfg, model
    self.optimizer = keras.optimizers.Adam(cfg.learning_rate)
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
    self.plateau = Plateau(cfg.learning_rate)
    self.epoch_sums: Dict[str, float] = {}
    self.epoch_count = 0
    self._step_fn = tf.function(self._step)

  def _step(self, x):
    with tf.GradientTape() as tape:
      terms = objective(self.cfg, self.model, x, training=True)
    variables = self.model.trainable_variables
    self.optimizer.apply_gradients(zip(tape.gradient(terms['loss'], variables), variables))
    self.step.assign_add(1)
    return terms

  def train_step(self, x) -> Dict[str, tf.Tensor]:
    terms = self._step_fn(tf.convert_to_tensor(x, tf.float32))
    for k in ('recon', 'kl'):
      if k in terms:
        self.epoch_sums[k] = self.epoch_sums.get(k, 0.0) + float(terms[k])
    self.epoch_count += 1
    return {f'loss/{k}': v for k, v in terms.items()}

  def epoch_means(self) -> Dict[str, float]:
    means = {k: v / max(self.epoch_count, 1) for k, v in self.epoch_sums.items()}
    self.epoch_sums, self.epoch_count = {}, 0
    return means

  def set_learning_rate(self, lr: float) -> None:
    self.optimizer.learning_rate.assign(lr)

  def checkpoint_objects(self) -> Dict[str, object]:
    return {'model': self.model, 'optimizer': self.optimizer, 'step': self.step, 'plateau': self.plateau}


# ------------------------------------------------------------------------------------------------ evaluation
def _binary_entropy_sum(x: np.ndarray) -> np.ndarray:
  """sum_i H(x_i) per image (nats): the BCE floor of targets x in [0, 1]."""
  p = np.clip(x.astype(np.float64), 1e-7, 1 - 1e-7)
  h = -(p * np.log(p) + (1 - p) * np.log(1 - p))
  h[(x <= 0) | (x >= 1)] = 0.0
  return h.reshape(len(x), -1).sum(axis=1)


def mean_image_bce(mean_image: np.ndarray, images: np.ndarray) -> np.ndarray:
  """Per-image summed BCE of the constant prediction `mean_image` [H, W, C] on images [N, H, W, C]."""
  p = np.clip(mean_image.astype(np.float64), 1e-7, 1 - 1e-7)[None]
  x = images.astype(np.float64)
  return -(x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(len(x), -1).sum(axis=1)


def make_scorer(cfg: presets.FCVAEConfig, model):
  """A tf.function x -> per-image scores [B] (inference mode): 'bce_sum', 'squared_euclid', the training terms
  'loss' and 'recon' (and for VAEs 'kl', the kl_mode's term, and 'kl_neuron')."""

  @tf.function
  def scores(x):
    out = model(x, training=False)
    terms = objective(cfg, model, x, training=False)
    fill = lambda v: tf.fill(tf.shape(x)[:1], v)
    result = {'bce_sum': losses.bce(x, out['logits'], 'sum'),
              'squared_euclid': losses.squared_euclid(x, tf.sigmoid(out['logits']), 'sum'),
              'loss': fill(terms['loss']), 'recon': fill(terms['recon'])}
    if model.variational:
      result['kl_neuron'] = losses.kl_neuron(out['mu'], out['logvar'])
      result['kl'] = fill(terms['kl'])
    return result
  return scores


def evaluate(cfg: presets.FCVAEConfig, model, images: np.ndarray, mean_image: Optional[np.ndarray] = None,
             batch: int = 64, scorer=None) -> Dict[str, float]:
  """Held-out scores (module docstring), inference mode; `scorer` is `make_scorer`'s function (built if None)."""
  scorer = scorer or make_scorer(cfg, model)
  sums: Dict[str, float] = {}
  for i in range(0, len(images), batch):
    out = scorer(tf.constant(images[i:i + batch], tf.float32))
    for k, v in out.items():
      sums[k] = sums.get(k, 0.0) + float(np.sum(v.numpy()))
  n = len(images)
  results = {k: v / n for k, v in sums.items()}
  floor = float(np.mean(_binary_entropy_sum(images)))
  results['entropy_floor'] = floor
  results['excess_bce'] = results['bce_sum'] - floor
  if mean_image is not None:
    results['mean_image_bce'] = float(np.mean(mean_image_bce(mean_image, images)))
    results['mean_image_excess'] = results['mean_image_bce'] - floor
    results['excess_over_mean_image'] = results['excess_bce'] / max(results['mean_image_excess'], 1e-9)
  results['num_images'] = n
  return results


def learning_check(results: Dict[str, float]):
  ratio = results['excess_over_mean_image']
  ok = bool(ratio <= MAX_EXCESS_OVER_MEAN_IMAGE)
  return ok, (f'learning check {"passed" if ok else "FAILED"}: held-out reconstructions have '
              f'{results["excess_bce"]:.2f} nats of BCE above the images\' own entropy, {ratio:.2f} x the training '
              f'mean image\'s {results["mean_image_excess"]:.2f} (want <= {MAX_EXCESS_OVER_MEAN_IMAGE}); summed BCE '
              f'{results["bce_sum"]:.2f} per image')


def disentanglement_scores(cfg: presets.FCVAEConfig, model, split: data_lib.Split) -> Dict[str, object]:
  """MIG on dSprites factors; DSRL symbol accuracy for spatial latents; {} otherwise."""
  from rlcv_tf.datasets import dsprites  # pylint: disable=g-import-not-at-top
  from rlcv_tf.fcvae import disentanglement  # pylint: disable=g-import-not-at-top
  from rlcv_tf.fcvae import viz  # pylint: disable=g-import-not-at-top
  out: Dict[str, object] = {}
  if split.factors is None and split.cells is None:
    return out
  codes = viz.encode_means(model, split.images)
  if split.factors is not None and int(np.prod(codes.shape[1:])) >= 2:
    scores = disentanglement.mig(codes.reshape(len(codes), -1), split.factors, factor_names=dsprites.LATENT_NAMES)
    out['mig'] = scores['mig']
    out['mig_per_factor'] = scores['per_factor']
  if split.cells is not None and codes.ndim == 4:
    scores = disentanglement.symbol_accuracy(codes, split.cells)
    out.update({f'symbol_{k}': v for k, v in scores.items()})
  return out


# ------------------------------------------------------------------------------------------------ data
class _Data:
  """The run's training stream, held-out images and the mean training image."""

  def __init__(self, cfg: presets.FCVAEConfig, run: RunConfig, print_fn):
    self.cfg, self.run = cfg, run
    self.held_out_split = 'test'
    if cfg.dataset == 'atari_frames':
      self.train_images = None
      try:
        held = data_lib.first_frames(run.data_dir, 'val', run.num_eval)
        self.held_out_split = 'val'
      except data_lib.DataError as e:
        print_fn(f'{PREFIX}no held-out frames ({e}); evaluating on training frames (in-sample)')
        held = data_lib.first_frames(run.data_dir, 'train', run.num_eval)
        self.held_out_split = 'train (in-sample: no val split)'
      sample, self.num_train = data_lib.first_frames(run.data_dir, 'train', 1000, with_count=True)
      sample = sample.images
    else:
      num = run.num_train or DEFAULT_NUM_TRAIN.get(cfg.dataset)
      self.train_images = data_lib.load_split(cfg.dataset, run.data_dir, 'train', num, seed=run.seed).images
      held = data_lib.load_split(cfg.dataset, run.data_dir, 'test', run.num_eval, seed=0)
      sample = self.train_images
      self.num_train = len(self.train_images)
    if held.images.shape[1:] != cfg.image_shape:
      raise data_lib.DataError(f'the {cfg.dataset} images are {held.images.shape[1:]}, the model expects '
                               f'{cfg.image_shape}' + (' (--colour must match the frames: grey 1 channel, rgb 3)'
                                                       if cfg.dataset == 'atari_frames' else ''))
    order = np.random.default_rng(HELD_OUT_ORDER_SEED).permutation(len(held.images))
    self.held = data_lib.Split(*(None if a is None else a[order] for a in (held.images, held.factors, held.cells,
                                                                            held.labels)))
    self.mean_image = sample.mean(axis=0)
    self.steps_per_epoch = data_lib.steps_per_epoch(self.num_train, cfg.batch_size)
    print_fn(f'{PREFIX}data: {cfg.dataset}, {self.num_train:,} training images ({self.steps_per_epoch:,} steps per '
             f'epoch of batch {cfg.batch_size}), {len(held.images):,} held-out')

  def stream(self, start_step: int):
    if self.train_images is not None:
      return data_lib.memory_batches(self.train_images, self.cfg.batch_size, self.run.seed, start_step)
    ds = data_lib.frame_batches(self.run.data_dir, 'train', self.cfg.batch_size, True,
                                runs.derived_seed(self.run.seed, start_step), training=True)
    return ((data_lib.frames_of(b),) for b in ds)


# ------------------------------------------------------------------------------------------------ train
check_resume = presets.check_resume


def total_steps(cfg: presets.FCVAEConfig, run: RunConfig, steps_per_epoch: int) -> int:
  return cfg.epochs * steps_per_epoch if cfg.epochs else run.steps


def _read_curves(path: str, up_to_step: int) -> List[Dict[str, float]]:
  if not os.path.exists(path):
    return []
  import csv  # pylint: disable=g-import-not-at-top
  with open(path) as f:
    rows = [{k: float(v) for k, v in r.items() if v not in ('', None)} for r in csv.DictReader(f)]
  return [r for r in rows if r.get('step', 0) <= up_to_step]


def train(cfg: presets.FCVAEConfig, run: RunConfig, logdir: str,
          print_fn: Callable[[str], None] = print) -> TrainResult:
  """Trains, evaluates and exports one model (module docstring)."""
  from rlcv_tf.fcvae import export  # pylint: disable=g-import-not-at-top
  from rlcv_tf.fcvae import viz  # pylint: disable=g-import-not-at-top
  cfg = cfg.validate()
  run.validate()
  start = time.monotonic()
  check_resume(cfg, logdir)
  tf.keras.utils.set_random_seed(run.seed)
  data = _Data(cfg, run, print_fn)
  steps = total_steps(cfg, run, data.steps_per_epoch)
  run_record = RunConfig(**{**run.__dict__, 'steps': steps})
  train_loop.save_run_config(logdir, cfg, run_record)
  model = models.build_model(cfg)
  trainer = Trainer(cfg, model)
  writer = tf.summary.create_file_writer(logdir)
  manager = train_loop.restore_or_start(trainer, logdir, print_fn, prefix=PREFIX)
  done = int(trainer.step.numpy())
  saved_model = os.path.join(logdir, 'saved_model')

  def export_fn():
    if not model.variational and data.train_images is not None:
      model.fit_code_gaussian(data.train_images[:5000])
    return runs.write_saved_model(saved_model, lambda p: export.export_model(model, p))

  curve_path = os.path.join(logdir, 'curves.csv')
  curves = _read_curves(curve_path, done)
  curve_images = data.held.images[:min(run.num_curve, run.num_eval)]
  scorer = make_scorer(cfg, model)
  shown = data.held.images[:8]

  def sheet():
    prior = viz.decode_images(model, viz.prior_draws(model, 8, seed=0))
    return images_lib.stack_rows([viz.reconstruction_sheet(model, shown),
                                  images_lib.make_grid(prior, rows=1, value_range=viz.UNIT_RANGE)])

  def on_step(at_step: int):
    if at_step % data.steps_per_epoch and at_step != steps:
      return
    val = evaluate(cfg, model, curve_images, scorer=scorer)
    train_means = trainer.epoch_means()
    row = {'epoch': at_step / data.steps_per_epoch, 'step': at_step,
           'learning_rate': float(trainer.plateau.learning_rate.numpy()),
           'train_recon': train_means.get('recon', np.nan), 'train_kl': train_means.get('kl', np.nan),
           'val_recon': val['recon'], 'val_kl': val.get('kl', np.nan), 'val_loss': val['loss']}
    curves.append(row)
    viz.write_curves(curves, curve_path, os.path.join(logdir, 'curves.png'))
    with writer.as_default(step=at_step):
      tf.summary.scalar('val/loss', val['loss'])
      tf.summary.scalar('val/bce_sum', val['bce_sum'])
      if 'kl_neuron' in val:
        tf.summary.scalar('val/kl_neuron', val['kl_neuron'])
    if trainer.plateau.update(val['loss'], cfg.plateau_factor, cfg.plateau_patience):
      print_fn(f'{PREFIX}validation loss flat for {cfg.plateau_patience} epochs: learning rate -> '
               f'{float(trainer.plateau.learning_rate.numpy()):.3g}')

  print_fn(f'{PREFIX}{cfg.model} ({describe(cfg)}) on {cfg.dataset}: {steps:,} steps of batch {cfg.batch_size}'
           f'{f" ({cfg.epochs} epochs)" if cfg.epochs else ""}, logdir {logdir}')
  done, metrics, rate = train_loop.train_loop(
      trainer, data.stream(done), run_record, manager, writer,
      train_loop.sheet_writer(logdir, writer, sheet, 'samples/reconstructions'),
      lambda _: float(trainer.plateau.learning_rate.numpy()), cfg.batch_size, data.steps_per_epoch, logdir,
      print_fn, on_step=on_step, prefix=PREFIX, export_fn=export_fn, line_metrics=LINE_METRICS)

  results = evaluate(cfg, model, data.held.images[:run.num_eval], data.mean_image, scorer=scorer)
  results.update(disentanglement_scores(cfg, model, data_lib.Split(
      data.held.images[:run.num_eval],
      factors=None if data.held.factors is None else data.held.factors[:run.num_eval],
      cells=None if data.held.cells is None else data.held.cells[:run.num_eval])))
  passed, line = learning_check(results)
  results.update(learning_check_passed=passed, learning_check=line, beta=cfg.beta, kl_mode=cfg.kl_mode,
                 model=cfg.model, dataset=cfg.dataset, held_out_split=data.held_out_split)
  sheets = viz.write_sheets(model, data.held.images[:run.num_eval], os.path.join(logdir, 'samples'), 'final_',
                            seed=run.seed)
  results['sheets'] = {k: os.path.relpath(v, logdir) for k, v in sheets.items()}
  with open(os.path.join(logdir, 'eval.json'), 'w') as f:
    json.dump({'step': done, **results}, f, indent=1, sort_keys=True, default=float)
  with writer.as_default(step=done):
    for k, v in results.items():
      if isinstance(v, float):
        tf.summary.scalar(f'eval/{k}', v)
  writer.flush()
  print_fn(f'{PREFIX}{line}')
  for key in ('mig', 'symbol_accuracy'):
    if key in results:
      print_fn(f'{PREFIX}{key.replace("_", " ")}: {results[key]:.3f}')
  saved = export_fn()
  print_fn(f'{PREFIX}done: step {done:,}; SavedModel {saved}; pictures {os.path.join(logdir, "samples")}; '
           f'TensorBoard: tensorboard --logdir={logdir}')
  return TrainResult(done, metrics, results, saved, time.monotonic() - start, rate)


def sweep_row(evaluation: Dict) -> Dict[str, float]:
  """One point of the beta sweep from a run's eval.json: {'beta', 'recon' (held-out summed BCE per image),
  'kl' (held-out KL of the whole latent, nats per image)}, comparable across KL modes and reductions."""
  return {'beta': float(evaluation['beta']), 'recon': float(evaluation['bce_sum']),
          'kl': float(evaluation.get('kl_neuron', float('nan')))}


def beta_sweep(cfg: presets.FCVAEConfig, run: RunConfig, betas, root: str,
               print_fn: Callable[[str], None] = print) -> List[Dict[str, float]]:
  """Trains `cfg` at each beta (root/beta_<b>; an existing run there resumes) and writes root/beta_sweep.json and,
  with matplotlib, root/beta_sweep.png (the no-free-lunch plot, S:L1428-1433). Returns the `sweep_row`s."""
  from rlcv_tf.fcvae import viz  # pylint: disable=g-import-not-at-top
  rows = []
  for beta in betas:
    result = train(cfg.replace(beta=float(beta)), run, os.path.join(root, f'beta_{float(beta):g}'), print_fn)
    rows.append(sweep_row(result.evaluation))
  with open(os.path.join(root, 'beta_sweep.json'), 'w') as f:
    json.dump({'config': cfg.to_dict(), 'rows': rows}, f, indent=1)
  try:
    viz.plot_beta_sweep(rows, os.path.join(root, 'beta_sweep.png'), title=f'{cfg.model} on {cfg.dataset}')
  except ImportError as e:
    print_fn(f'{PREFIX}{e}; beta_sweep.png not written')
  return rows


def describe(cfg: presets.FCVAEConfig) -> str:
  if cfg.model == 'fcvae':
    return (f'{cfg.depth}, k={cfg.filters}, latent {cfg.height // 4}x{cfg.width // 4}x{cfg.filters}, bn {cfg.bn}, '
            f'{cfg.kl_mode} KL, beta {cfg.beta:g}')
  if cfg.model == 'vae':
    return f'dense, {cfg.latent_dim} latents, beta {cfg.beta:g}'
  return f'{"Table 3.1" if cfg.model == "ae_fc" else "Table 3.2"}, summed {cfg.recon_loss}'
