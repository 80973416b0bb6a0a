"""Chapter 6 training run: attribute-conditioned data -> train steps -> checkpoints, TensorBoard, sheets, evaluation,
learning check, export.

`train(cfg, run, logdir)` writes under `logdir`:
  config.json               the model configuration (AcVAEConfig) and the run settings; a re-run checks and resumes
  checkpoints/              networks, every optimiser, the step counter, the data stream position
  events.*                  TensorBoard: every loss term, D accuracy and update rate, attention entropy, learning rate,
                            images/s; the sample sheet
  samples/step_*.png        held-out real images | reconstructions (top), prior samples for the same attribute vectors
                            with fixed noise (bottom)
  samples/attribute_swap.png  one face per row: real, reconstruction, then one attribute flipped per column
  samples/attention.png     acVAE: the T x N attention mask M (rows = steps, columns = attributes)
  attribute_classifier.keras  the attribute classifier the evaluation used (trained here unless --classifier)
  eval.json                 held-out reconstruction error against the mean image, the classifier's accuracy on real
                            held-out images and on generations for their attribute vectors (Table 6.3 analogue),
                            Table 6.1 (acVAE) and the learning check's line
  saved_model/              `export.export_model` (generate / sample / encode / decode / edit / attribute_names /
                            attention)
Re-running with the same `logdir` resumes (e.g. with more steps). Ctrl-C / SIGTERM save a checkpoint and the
SavedModel before the run stops.

The learning check (can fail): reconstructions of held-out faces must beat the mean image by a margin, and the
attribute classifier must read the requested attributes off the generations clearly above the majority baseline.
"""

import json
import os
import time
from typing import Callable, Dict, Optional

import numpy as np
import tensorflow as tf

from rlcv_tf.acvae import attention as attention_lib
from rlcv_tf.acvae import classifier as classifier_lib
from rlcv_tf.acvae import evaluation
from rlcv_tf.acvae import export
from rlcv_tf.acvae import networks
from rlcv_tf.acvae import presets
from rlcv_tf.acvae import progressive
from rlcv_tf.acvae import run_config
from rlcv_tf.acvae import tools
from rlcv_tf.acvae import train_steps
from rlcv_tf.core import images as images_lib
from rlcv_tf.core import runs
from rlcv_tf.core import train_loop
from rlcv_tf.datasets import pipeline

PREFIX = '[acvae] '
RunConfig = run_config.RunConfig

# A resumed run must not change these (the checkpoint's variables, or what its outputs mean, depend on them).
ARCHITECTURE_FIELDS = ('model', 'resolution', 'channels', 'encoder_layers', 'decoder_layers', 'n_z', 'latent_size',
                       'num_blocks', 'lstm_hidden', 'lstm_layers', 'd_channels', 'd_kernels', 'd_dense',
                       'mbd_kernels', 'mbd_dims', 'use_mi', 'mi_channels', 'num_attributes', 'attribute_names',
                       'prior_lstm_hidden', 'base_channels')

# The learning check's thresholds (module docstring).
MAX_RECON_OVER_MEAN = 0.6         # held-out reconstruction MSE / the mean image's MSE
MIN_GENERATED_GAIN = 0.08         # mean attribute accuracy on generations minus the majority baseline
MIN_CLASSIFIER_GAIN = 0.12        # the same on real held-out images (else the classifier cannot judge)


class _FadeTrainer:
  """A grown model's trainer: before every step, alpha = cfg.fade_alpha(step) (from the checkpointed step, so a
  resume continues the ramp); the step also reports 'grow/alpha'. Everything else is the wrapped trainer's."""

  def __init__(self, trainer, cfg, vae, disc):
    self._trainer, self._cfg, self._models = trainer, cfg, [m for m in (vae, disc) if m is not None]

  def __getattr__(self, name):
    return getattr(self._trainer, name)

  def train_step(self, x, a):
    alpha = float(self._cfg.fade_alpha(int(self._trainer.step.numpy())))
    progressive.set_alpha(alpha, *self._models)
    out = dict(self._trainer.train_step(x, a))
    out['grow/alpha'] = tf.constant(alpha, tf.float32)
    return out


def load_run_models(logdir: str):
  """(config, vae, disc) of the run in `logdir` with its latest weights (a grown run comes back grown)."""
  saved = runs.load_config(logdir)
  latest = tf.train.latest_checkpoint(os.path.join(logdir, 'checkpoints'))
  if saved is None or latest is None or saved.get('model', {}).get('model') not in presets.MODELS:
    raise FileNotFoundError(f'{logdir} holds no Chapter 6 run with a checkpoint (expected config.json and '
                            'checkpoints/ written by launchers.acvae)')
  cfg = progressive.config_from_dict(saved['model'])
  vae, disc = (progressive.build_grown_models(cfg) if isinstance(cfg, progressive.GrownConfig)
               else networks.build_models(cfg))
  objects = {'vae': vae, **({'discriminator': disc} if disc is not None else {})}
  tf.train.Checkpoint(**objects).restore(latest).expect_partial().assert_existing_objects_matched()
  return cfg, vae, disc


def _build(cfg, logdir, grow_from, print_fn):
  """The models of this run: fresh, or (a progressive stage) grown from the run in `grow_from` unless `logdir`
  already holds this stage's checkpoint (then built grown and restored by the caller)."""
  if not isinstance(cfg, progressive.GrownConfig):
    return networks.build_models(cfg)
  if grow_from is None or tf.train.latest_checkpoint(os.path.join(logdir, 'checkpoints')):
    return progressive.build_grown_models(cfg)
  base_cfg, vae, disc = load_run_models(grow_from)
  vae2, disc2, grown = progressive.grow(vae, disc, base_cfg, fade_steps=cfg.fade_steps,
                                        start_step=cfg.fade_start_step, steps_per_epoch=cfg.fade_steps_per_epoch,
                                        lr_mult_pretrained=cfg.lr_mult_pretrained, name=cfg.name)
  if grown.to_dict() != cfg.to_dict():
    diff = sorted(k for k, v in grown.to_dict().items() if cfg.to_dict().get(k) != v)
    raise ValueError(f'--grow_from={grow_from}: the grown model differs from this run\'s config in {diff}')
  print_fn(f'{PREFIX}grew {grow_from} ({base_cfg.resolution}px) to {cfg.resolution}px: every pretrained weight '
           f'copied; fade-in over the first {cfg.fade_steps:,.0f} steps')
  return vae2, disc2


TrainResult = train_loop.TrainResult


def check_resume(cfg: presets.AcVAEConfig, run: RunConfig, logdir: str) -> None:
  """runs.ResumeMismatchError naming the field when `logdir` holds a run another model or data set made."""
  saved = runs.load_config(logdir)
  if saved is None:
    return
  if 'model' not in saved or saved['model'].get('model') not in presets.MODELS:
    raise runs.ResumeMismatchError(f'--logdir={logdir} holds a run of another launcher; use a new --logdir')
  for field in ARCHITECTURE_FIELDS:
    # Compared in their config.json form (tuples are lists there).
    old, new = saved['model'].get(field), json.loads(json.dumps(getattr(cfg, field)))
    if old != new:
      raise runs.ResumeMismatchError(
          f'--logdir={logdir} holds a run with {field}={old!r}, but this run asks for {field}={new!r}. Use the same '
          'flags to resume it, or a new --logdir to start a new run.')
  if saved['run']['dataset'] != run.dataset:
    raise runs.ResumeMismatchError(f'--logdir={logdir} was trained on --dataset={saved["run"]["dataset"]}, not '
                                   f'{run.dataset}; use the same data set to resume, or a new --logdir.')


def _data(cfg, run, start):
  """(training batches with 'image' and 'attributes', DatasetInfo, held-out arrays)."""
  data_dir = run.data_dir or None
  names = list(cfg.attribute_names)
  checks = dict(verify=run.verify, max_skipped_fraction=run.max_skipped_fraction, deterministic=run.deterministic,
                attributes=names)
  train, info = pipeline.make_image_dataset(
      run.dataset, data_dir, 'train', cfg.resolution, cfg.batch_size, train=True, seed=cfg.seed, epochs=None,
      start_epoch=start[0], skip=start[1], cache=run.cache, with_info=True,
      num_examples=cfg.examples_per_epoch or None, **checks)
  held = classifier_lib.load_split_arrays(run.dataset, data_dir, 'val', cfg.resolution, attributes=names,
                                          num_examples=run.num_eval_images)
  return train, info, held


class _Sheets:
  """Fixed held-out images, attribute vectors and prior noise, so successive sheets are comparable."""

  def __init__(self, vae, cfg, held, count):
    self.vae = vae
    count = min(count, len(held['images']))
    self.real = held['images'][:count]
    self.attributes = held['attributes'][:count]
    self.noise = tf.random.stateless_normal((count,) + tuple(vae.latent_shape), seed=(cfg.seed, 17))

  def grid(self) -> np.ndarray:
    mu, _ = self.vae.encode(self.real, self.attributes, training=False)
    recon = self.vae.decode(mu, self.attributes, training=False)[1].numpy()
    mu_p, lv_p = self.vae.prior_params(self.attributes, training=False)
    samples = self.vae.decode(mu_p + tf.exp(0.5 * lv_p) * self.noise, self.attributes, training=False)[1].numpy()
    cols = int(np.ceil(np.sqrt(len(self.real))))
    half = max(1, len(self.real) // 2)
    pairs = np.concatenate([self.real[:half], recon[:half]], axis=0)
    return images_lib.stack_rows([images_lib.make_grid(pairs, cols=cols, value_range=(-1, 1)),
                                  images_lib.make_grid(samples, cols=cols, value_range=(-1, 1))])


def _classifier(cfg, run, logdir, print_fn):
  """The attribute classifier of the evaluation: --classifier, or one trained here on the training split."""
  names = list(cfg.attribute_names)
  if run.classifier:
    return classifier_lib.load_attribute_classifier(run.classifier, expected_names=names), run.classifier
  path = os.path.join(logdir, classifier_lib.FILE_NAME)
  if os.path.exists(path):
    return classifier_lib.load_attribute_classifier(path, expected_names=names), path
  data_dir = run.data_dir or None
  print_fn(f'{PREFIX}training the attribute classifier of the evaluation on {run.classifier_images:,} training '
           f'images ({run.classifier_epochs} epochs, best on val)')
  train = classifier_lib.load_split_arrays(run.dataset, data_dir, 'train', cfg.resolution, attributes=names,
                                           num_examples=run.classifier_images)
  val = classifier_lib.load_split_arrays(run.dataset, data_dir, 'val', cfg.resolution, attributes=names,
                                         num_examples=min(1000, run.num_eval_images * 2))
  trained = classifier_lib.train_attribute_classifier((train['images'], train['attributes']),
                                                      (val['images'], val['attributes']), names,
                                                      epochs=run.classifier_epochs, seed=cfg.seed)
  classifier_lib.save_attribute_classifier(trained.model, path, names, trained.metadata())
  return trained.model, path


def _identity_classifier(cfg, run, logdir, print_fn):
  """The identity classifier of the IS (run.is_classifier, or trained here on synth_faces), or None."""
  from rlcv_tf.core.vaegan import evaluation as vaegan_evaluation  # pylint: disable=g-import-not-at-top
  if run.is_classifier:
    return vaegan_evaluation.load_classifier(run.is_classifier)
  if run.dataset != 'synth_faces' or not run.is_epochs:
    return None
  path = os.path.join(logdir, 'identity_classifier.keras')
  if os.path.exists(path):
    return vaegan_evaluation.load_classifier(path)
  print_fn(f'{PREFIX}training the identity classifier of the inception score (synth_faces: 20 identities)')
  data_dir = run.data_dir or None
  train = classifier_lib.load_split_arrays(run.dataset, data_dir, 'train', cfg.resolution,
                                           num_examples=run.classifier_images)
  val = classifier_lib.load_split_arrays(run.dataset, data_dir, 'val', cfg.resolution, num_examples=500)
  model, accuracy = evaluation.train_identity_classifier((train['images'], train['labels']),
                                                         (val['images'], val['labels']), epochs=run.is_epochs,
                                                         seed=cfg.seed)
  vaegan_evaluation.save_classifier(model, path)
  print_fn(f'{PREFIX}identity classifier: {100 * accuracy:.1f}% on val (20 classes)')
  return model


def evaluate(vae, cfg, held, classifier_model, train_majority, identity_model=None) -> Dict:
  """Reconstruction vs the mean image; attribute accuracy on real held-out images and on generations for their
  attribute vectors, with the majority baseline; Table 6.1 for acVAE."""
  images, attributes = held['images'], held['attributes']
  names = list(cfg.attribute_names)
  recon = []
  for i in range(0, len(images), 100):
    mu, _ = vae.encode(images[i:i + 100], attributes[i:i + 100], training=False)
    recon.append(vae.decode(mu, attributes[i:i + 100], training=False)[1].numpy())
  recon = np.concatenate(recon)
  mse = float(np.mean((recon - images) ** 2))
  mean_mse = float(np.mean((images.mean(axis=0, keepdims=True) - images) ** 2))
  generated = evaluation.generate_for_attributes(vae, attributes, seed=cfg.seed)
  baseline = classifier_lib.majority_baseline(None, attributes, majority=train_majority)
  table = evaluation.attribute_accuracy_table(classifier_model, images, attributes, {cfg.model: generated},
                                              attributes, names, baseline=baseline)
  out = {'reconstruction_mse': mse, 'mean_image_mse': mean_mse, 'recon_over_mean': mse / mean_mse,
         'accuracy_real': float(table.mean('real')), 'accuracy_generated': float(table.mean(cfg.model)),
         'accuracy_baseline': float(np.mean(baseline)), 'accuracy_table': table.to_dict(),
         'accuracy_table_markdown': evaluation.format_accuracy_table(table)}
  if identity_model is not None:     # Table 6.2 analogue: IS of the generations, real held-out images for scale
    out['inception_score'], out['inception_score_std'] = evaluation.identity_inception_score(identity_model, generated)
    out['inception_score_real'], _ = evaluation.identity_inception_score(identity_model, images)
  if vae.attention is not None:
    m = vae.attention.mask().numpy()
    out['attention_table'] = attention_lib.attribute_assignment(m, names)
    out['attention_entropy'] = float(np.mean(attention_lib.entropy_per_attribute(m)))
  return out


def learning_check(results: Dict):
  """(passed, one line) on `evaluate`'s results (module docstring)."""
  gen_gain = results['accuracy_generated'] - results['accuracy_baseline']
  real_gain = results['accuracy_real'] - results['accuracy_baseline']
  ok = (results['recon_over_mean'] <= MAX_RECON_OVER_MEAN and gen_gain >= MIN_GENERATED_GAIN
        and real_gain >= MIN_CLASSIFIER_GAIN)
  line = (f'learning check {"passed" if ok else "FAILED"}: held-out reconstruction MSE {results["recon_over_mean"]:.2f}'
          f' x the mean image\'s (want <= {MAX_RECON_OVER_MEAN}); attributes read off generations for held-out '
          f'attribute vectors {100 * results["accuracy_generated"]:.1f}% vs majority baseline '
          f'{100 * results["accuracy_baseline"]:.1f}% (want >= +{100 * MIN_GENERATED_GAIN:.0f} points); the classifier'
          f' on real held-out images {100 * results["accuracy_real"]:.1f}% (want >= +{100 * MIN_CLASSIFIER_GAIN:.0f}'
          ' points)')
  return ok, line


def train(cfg: presets.AcVAEConfig, run: RunConfig, logdir: str,
          print_fn: Callable[[str], None] = print, grow_from: Optional[str] = None) -> TrainResult:
  """Trains `cfg` on `run.dataset`, then evaluates and exports it (module docstring).

  A progressive stage (thesis Sec. 6.4.3): `cfg` is a `progressive.GrownConfig` (`progressive.grow_config` of the
  run in `grow_from`); a new stage grows that run's latest weights, a resumed one restores its own. alpha follows
  the stored fade length from the step counter; the SavedModel is exported at alpha = 1 (the 2R model alone).
  """
  cfg = cfg.validate()
  run.validate()
  start = time.monotonic()
  check_resume(cfg, run, logdir)
  tf.keras.utils.set_random_seed(cfg.seed)
  data_begin = train_loop.data_start(logdir)
  train_ds, info, held = _data(cfg, run, data_begin)
  if tuple(held['names']) != tuple(cfg.attribute_names):
    raise ValueError(f'the data set gave attributes {held["names"]}, the model wants {cfg.attribute_names}')
  train_loop.save_run_config(logdir, cfg, run)

  vae, disc = _build(cfg, logdir, grow_from, print_fn)
  trainer = train_steps.AcVAETrainer(vae, disc, cfg)
  if isinstance(cfg, progressive.GrownConfig):
    trainer = _FadeTrainer(trainer, cfg, vae, disc)
  position = train_loop.DataPosition(data_begin)
  manager = train_loop.restore_or_start(trainer, logdir, print_fn, extra={'data': position}, prefix=PREFIX)
  writer = tf.summary.create_file_writer(logdir)
  feed = train_loop.DataFeed(train_ds, info, lambda b: (b['image'], b['attributes']), position, manager, writer,
                             trainer.step, print_fn, run.summary_every, prefix=PREFIX)
  sheets = _Sheets(vae, cfg, held, run.grid_size)
  steps_per_epoch = info.steps_per_epoch
  lr_every = cfg.lr_step_epochs * steps_per_epoch if steps_per_epoch else 0

  def learning_rate(at_step: int) -> float:
    return cfg.learning_rate * (cfg.lr_decay ** (at_step // lr_every) if lr_every else 1.0)

  saved_model_path = os.path.join(logdir, 'saved_model')
  line_metrics = train_loop.DEFAULT_LINE_METRICS[:5] + (('attention/entropy', 'attn H'), ('grow/alpha', 'alpha'))
  done, metrics, steps_per_second = train_loop.train_loop(
      trainer, feed, run, manager, writer,
      train_loop.sheet_writer(logdir, writer, sheets.grid, 'samples/real_recon_and_prior'), learning_rate,
      cfg.batch_size, steps_per_epoch, logdir, print_fn, prefix=PREFIX,
      export_fn=lambda: export.export_model(vae, cfg, saved_model_path), line_metrics=line_metrics)

  # Pictures of what the attributes do.
  samples = os.path.join(logdir, 'samples')
  count = min(8, len(held['images']))
  swap = tools.attribute_swap_grid(vae, held['images'][:count], held['attributes'][:count],
                                   list(cfg.attribute_names))
  images_lib.save_png(swap.image, os.path.join(samples, 'attribute_swap.png'), scale=2)
  if vae.attention is not None:
    attention_lib.save_mask_png(vae.attention.mask().numpy(), os.path.join(samples, 'attention.png'))

  classifier_model, classifier_path = _classifier(cfg, run, logdir, print_fn)
  # The baseline predicts each attribute's training-split majority (the classifier's sidecar records it); a
  # classifier saved without it falls back to the held-out split's own majority (a baseline at least as high).
  majority = classifier_lib.load_metadata(classifier_path).get('train_majority')
  majority = np.asarray(majority, np.float32) if majority is not None else classifier_lib.majority_values(
      held['attributes'])
  results = evaluate(vae, cfg, held, classifier_model, majority, _identity_classifier(cfg, run, logdir, print_fn))
  passed, check_line = learning_check(results)
  results['learning_check_passed'] = passed
  results['learning_check'] = check_line
  with open(os.path.join(logdir, 'eval.json'), 'w') as f:
    json.dump({'step': done, 'classifier': classifier_path, **results, **feed.report()}, f, indent=1,
              sort_keys=True, default=float)
  with writer.as_default(step=done):
    for key in ('recon_over_mean', 'accuracy_real', 'accuracy_generated', 'accuracy_baseline', 'attention_entropy',
                'inception_score', 'inception_score_real'):
      if key in results:
        tf.summary.scalar(f'eval/{key}', results[key])
  writer.flush()
  print_fn(f'{PREFIX}attribute accuracy (Table 6.3 analogue; held-out attribute vectors):\n'
           + results['accuracy_table_markdown'])
  if vae.attention is not None:
    print_fn(f'{PREFIX}attention (Table 6.1 analogue):\n'
             + attention_lib.format_attention_table(vae.attention.mask().numpy(), list(cfg.attribute_names)))
  if 'inception_score' in results:
    print_fn(f'{PREFIX}inception score (identity classifier, 10 splits): generations {results["inception_score"]:.2f}'
             f' +- {results["inception_score_std"]:.2f}, real held-out images {results["inception_score_real"]:.2f}')
  print_fn(f'{PREFIX}{check_line}')
  if isinstance(cfg, progressive.GrownConfig):
    progressive.set_alpha(1.0, *[m for m in (vae, disc) if m is not None])
  saved_model_dir = export.export_model(vae, cfg, saved_model_path)
  print_fn(f'{PREFIX}done: step {done:,}; SavedModel {saved_model_dir}; samples {samples}; TensorBoard: '
           f'tensorboard --logdir={logdir}')
  return TrainResult(done, metrics, results, saved_model_dir, time.monotonic() - start, steps_per_second)
