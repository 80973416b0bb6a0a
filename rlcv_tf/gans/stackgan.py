"""StackGAN (Zhang et al., ICCV 2017) as seed 003 names it: Conditioning Augmentation, Stage-I, the Stage-II refiner
(issue 15 §2; spec seeds003_004 §2.3). The slides give only the titles (S3:L146-151, L187-273); everything below
is [orig] (the paper and its official code), scaled down to CPU sizes, with labels or attribute vectors as the
condition in place of Reed et al.'s text embeddings (out of scope: pickled downloads, issue 15 §8).

* Conditioning Augmentation (`ConditioningAugmentation`): condition -> FC -> LeakyReLU(0.2) (official code) ->
  [mu, log sigma] (ca_dim each); c^ = mu + sigma * eps, eps ~ N(0, I) (reparameterised; the official code's
  truncated normal is not used); returns (c^, KL) with KL = mean_B sum_d (-log sigma + (sigma^2 + mu^2 - 1) / 2) =
  D_KL(N(mu, diag sigma^2) || N(0, I)) (`ca_kl`), added to the G loss with weight lambda (`KL_WEIGHT` = 1, the
  paper's; the official birds config uses 2). In inference (training=False) c^ is sampled too, as StackGAN does
  at test time [orig], but from a fixed table: row i of any batch takes draw i of a stateless N(0, I) stream
  (`inference_noise`), so `generate(z, c)` stays a deterministic function (exports, comparable sheets) while
  every sample sees an eps like those of training. c^ = mu would not do: the KL term drives sigma to ~1 and mu
  to ~0 (sd ~0.1 across conditions in short runs), so mu alone is an input the generators never saw in training,
  and Stage-II, whose only other input is the Stage-I image, then gave one image for every z (issue 15 §7).
* Stage-I G (`StageIGenerator`): concat(c^_0, z) -> FC -> 4x4x(gf 2^n) -> BN -> ReLU -> n x (nearest x2 -> conv3x3
  -> BN -> ReLU, halving channels) -> conv3x3 -> tanh, at 4 * 2^n px (16 by default; the paper's 64). The official
  residual blocks at 4x4 / 8x8 are left out.
* Stage-I / Stage-II D: `networks.DCGANDiscriminator` with the condition head of StackGAN's D (FC to an embedding,
  tiled over the 4x4 map, concatenated, 1x1 conv; spec §2.2) on the raw condition.
* Stage-II G: `core.vaegan.refiner.Stage2Generator` (Chapter 5's refiner, generalised) with its own CA: the Stage-I
  image is encoded, c^_1 is replicated over the bottleneck and concatenated, residual blocks, up-blocks to 2x the
  Stage-I size.
* Losses: D as the cGAN with mismatched pairs at StackGAN's weights real + (wrong + fake) / 2
  (`core.gan.CGAN_WEIGHTS['stackgan']`); G non-saturating + lambda KL.
* Training (`StackGANTrainer`): by default (`stage1_steps` = 0) each step updates Stage-I (k D steps, one G step)
  and then Stage-II on the current Stage-I images with gradients stopped (our simplification for short runs: Stage-II
  always sees the Stage-I generator of the moment). With `stage1_steps` = N the paper's schedule [orig: 600 epochs
  of Stage-I, then Stage-II with Stage-I fixed]: Stage-I and D0 alone for N steps (about 3x faster per step on CPU),
  then Stage-II and D1 alone on the fixed Stage-I, run in inference mode (its BN moving statistics, fresh CA draws)
  so that Stage-II trains on the images it refines at test time. examples/gans_stackgan.py uses it.
"""

import math
from typing import Dict

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from rlcv_tf.core import gan
from rlcv_tf.core import images as images_lib
from rlcv_tf.core import tracking
from rlcv_tf.core.vaegan import refiner
from rlcv_tf.gans import conditional as conditional_lib
from rlcv_tf.gans import config
from rlcv_tf.gans import networks

KL_WEIGHT = config.KL_WEIGHT
CA_DIM = config.CA_DIM
INFERENCE_NOISE_SEED = 2017      # the stateless stream of the inference eps table (`inference_noise`)


def ca_kl(mu, log_sigma):
  """Per example: sum_d -log sigma_d + (sigma_d^2 + mu_d^2 - 1) / 2 = KL(N(mu, diag sigma^2) || N(0, I)); [B]."""
  return tf.reduce_sum(-log_sigma + 0.5 * (tf.exp(2.0 * log_sigma) + tf.square(mu) - 1.0), axis=-1)


class ConditioningAugmentation(keras.layers.Layer):
  """condition [B, N] -> (c^ [B, ca_dim], KL scalar: the batch mean of `ca_kl`)."""

  def __init__(self, ca_dim: int = CA_DIM, seed: int = 0, **kwargs):
    super().__init__(**kwargs)
    self.ca_dim = int(ca_dim)
    self.fc = keras.layers.Dense(2 * self.ca_dim, name='fc')
    self.seed = int(seed)
    self.seed_generator = keras.random.SeedGenerator(seed)

  def moments(self, condition):
    h = ops.leaky_relu(self.fc(ops.cast(condition, 'float32')), 0.2)
    return h[:, :self.ca_dim], h[:, self.ca_dim:]

  def inference_noise(self, batch):
    """The fixed eps table of inference: [batch, ca_dim], row i the same for every batch size."""
    return tf.random.stateless_normal(tf.stack([batch, self.ca_dim]), seed=(INFERENCE_NOISE_SEED, self.seed))

  def call(self, condition, training=False, noise=None):
    """c^ = mu + sigma * eps: eps = `noise` if given, else fresh N(0, I) draws in training and the fixed
    `inference_noise` table in inference."""
    mu, log_sigma = self.moments(condition)
    kl = ops.mean(ca_kl(mu, log_sigma))
    if noise is None:
      noise = (keras.random.normal(ops.shape(mu), seed=self.seed_generator) if training
               else self.inference_noise(tf.shape(mu)[0]))
    return mu + ops.exp(log_sigma) * noise, kl


class StageIGenerator(networks.Model):
  """(z [B, z_dim], condition [B, N]) -> (image [B, R, R, C] in [-1, 1], CA KL); R = 4 * 2^n."""

  def __init__(self, resolution: int = 16, channels: int = 3, gf: int = 32, ca_dim: int = CA_DIM, **kwargs):
    kwargs.setdefault('name', 'stage1_generator')
    super().__init__(**kwargs)
    n = int(round(math.log2(resolution / 4)))
    if n < 1 or 4 * 2 ** n != resolution:
      raise ValueError(f'resolution: got {resolution}; valid values are 4 * 2^n, n >= 1 (8, 16, 32, 64)')
    self.ca = ConditioningAugmentation(ca_dim, name='ca')
    self.base = gf * 2 ** n
    self.project = keras.layers.Dense(16 * self.base, use_bias=False, name='project')
    self.project_bn = keras.layers.BatchNormalization(name='project_bn')
    self.ups = [(keras.layers.UpSampling2D(2, interpolation='nearest', name=f'up{i}_nearest'),
                 keras.layers.Conv2D(max(gf * 2 ** (n - 1 - i), 1), 3, padding='same', use_bias=False,
                                     name=f'up{i}_conv'),
                 keras.layers.BatchNormalization(name=f'up{i}_bn')) for i in range(n)]
    self.to_image = keras.layers.Conv2D(channels, 3, padding='same', name='to_image')
    tracking.track_containers(self)       # tf.train.Checkpoint does not see layers kept in lists

  def call(self, z, condition, training=False, ca_noise=None):
    c_hat, kl = self.ca(condition, training=training, noise=ca_noise)
    x = ops.relu(self.project_bn(self.project(ops.concatenate([c_hat, z], axis=-1)), training=training))
    x = ops.reshape(x, (-1, 4, 4, self.base))
    for up, conv, bn in self.ups:
      x = ops.relu(bn(conv(up(x)), training=training))
    return ops.tanh(self.to_image(x)), kl


class StackGAN(networks.Model):
  """Both generators: `generate(z, c)` -> (Stage-I image, Stage-II image); `call` returns the Stage-II image."""

  def __init__(self, stage1: StageIGenerator, stage2: refiner.Stage2Generator, ca2: ConditioningAugmentation,
               **kwargs):
    kwargs.setdefault('name', 'stackgan')
    super().__init__(**kwargs)
    self.stage1, self.stage2, self.ca2 = stage1, stage2, ca2

  def generate(self, z, condition, training=False, with_kl=False):
    s1, kl1 = self.stage1(z, condition, training=training)
    c_hat, kl2 = self.ca2(condition, training=training)
    s2 = self.stage2(ops.stop_gradient(s1), c_hat, training=training)
    return (s1, s2, kl1, kl2) if with_kl else (s1, s2)

  def call(self, z, condition=None, training=False):
    return self.generate(z, condition, training=training)[1]


class StackDiscriminators(tf.Module):
  """D0 (Stage-I) and D1 (Stage-II), both conditional."""

  def __init__(self, d1: keras.Model, d2: keras.Model):
    super().__init__(name='stack_discriminators')
    self.d1, self.d2 = d1, d2

  # tf.Module's own variable collection does not see Keras 3 variables (it would return nothing): list the pair's.
  @property
  def variables(self):
    return list(self.d1.variables) + list(self.d2.variables)

  @property
  def trainable_variables(self):
    return list(self.d1.trainable_variables) + list(self.d2.trainable_variables)


def stage2_config(stage1_resolution: int, stage2_resolution: int, gf: int) -> refiner.Stage2Config:
  """The refiner at CPU size: 2 stride-2 downsamplings, 2 residual blocks (the paper's 4), up to Stage-II."""
  num_down = 2 if stage1_resolution >= 16 else 1
  return refiner.Stage2Config(name='stackgan_stage2', in_resolution=stage1_resolution,
                              out_resolution=stage2_resolution, gf=gf, num_down=num_down, num_residual=2,
                              d_channels=(8,), d_extra_channels=8).validate()


def build_stackgan(cfg, source):
  """(StackGAN generator, StackDiscriminators) for a resolved GANConfig on a conditional image `source`."""
  channels, n = source.shape[-1], source.condition_dim
  stage1 = StageIGenerator(cfg.resolution, channels, cfg.gf, cfg.ca_dim)
  ca2 = ConditioningAugmentation(cfg.ca_dim, seed=1, name='ca2')
  stage2 = refiner.Stage2Generator(stage2_config(cfg.resolution, cfg.stage2_resolution, cfg.gf),
                                   condition_dim=cfg.ca_dim)
  generator = StackGAN(stage1, stage2, ca2)
  generator(ops.zeros((2, cfg.z_dim)), ops.zeros((2, n)))      # builds every part (Keras marks it built)
  d1 = networks.build(networks.DCGANDiscriminator(cfg.resolution, cfg.df, n, name='stage1_discriminator'),
                      (cfg.resolution, cfg.resolution, channels), n)
  d2 = networks.build(networks.DCGANDiscriminator(cfg.stage2_resolution, cfg.df, n, name='stage2_discriminator'),
                      (cfg.stage2_resolution, cfg.stage2_resolution, channels), n)
  return generator, StackDiscriminators(d1, d2)


class StackGANTrainer(tf.Module):
  """One `train_step(x, c)` with x at the Stage-II size [k * B, R2, R2, C]: Stage-I (k D steps on x resized to R1,
  one G step) and / or Stage-II (k D steps, one G step on stop_gradient(Stage-I images)), as `stages_at(step)`
  says; Adam(lr, 0.5, 0.999) [orig: 2e-4, 0.5]."""

  def __init__(self, generator: StackGAN, discriminators: StackDiscriminators, cfg):
    super().__init__(name='stackgan_trainer')
    self.generator, self.discriminators = generator, discriminators
    self.z_dim, self.k, self.kl_weight = cfg.z_dim, cfg.d_steps, cfg.kl_weight
    self.resolution, self.d_gate = cfg.resolution, cfg.d_gate
    self.stage1_steps = int(cfg.stage1_steps)
    self.weights = gan.CGAN_WEIGHTS[cfg.cgan_weights or 'stackgan']
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
    self.rng = tf.random.Generator.from_seed(cfg.seed)
    adam = lambda: keras.optimizers.Adam(cfg.learning_rate, beta_1=cfg.beta1, beta_2=cfg.beta2)
    self.g1_opt, self.g2_opt, self.d1_opt, self.d2_opt = adam(), adam(), adam(), adam()
    self.g1_vars = generator.stage1.trainable_variables
    self.g2_vars = generator.stage2.trainable_variables + generator.ca2.trainable_variables
    for opt, variables in ((self.g1_opt, self.g1_vars), (self.g2_opt, self.g2_vars),
                           (self.d1_opt, discriminators.d1.trainable_variables),
                           (self.d2_opt, discriminators.d2.trainable_variables)):
      opt.build(variables)
    self._train = tf.function(self._train_impl)

  def checkpoint_objects(self) -> Dict[str, object]:
    return {'generator': self.generator, 'discriminator': self.discriminators, 'g1_optimizer': self.g1_opt,
            'g2_optimizer': self.g2_opt, 'd1_optimizer': self.d1_opt, 'd2_optimizer': self.d2_opt,
            'step': self.step, 'rng': self.rng}

  def set_learning_rate(self, lr: float) -> None:
    for opt in (self.g1_opt, self.g2_opt, self.d1_opt, self.d2_opt):
      opt.learning_rate = lr

  def _d_step(self, d, opt, real, fake, condition):
    variables = d.trainable_variables
    with tf.GradientTape() as tape:
      loss, info = conditional_lib.discriminator_loss(d, real, fake, condition, self.weights)
    grads = tape.gradient(loss, variables)
    if self.d_gate > 0:
      gan.gated_apply(opt, grads, variables, info['d/accuracy'], self.d_gate)
    else:
      opt.apply_gradients(zip(grads, variables))
    return loss, info['d/accuracy']

  def _forward(self, z, condition, train1, train2):
    """(s1, s2, kl1, kl2) with each stage in training mode if it trains; s2 and kl2 are None if Stage-II does
    not train (not computed)."""
    g = self.generator
    noise = None if train1 else self.rng.normal([tf.shape(z)[0], g.stage1.ca.ca_dim])   # fixed Stage-I: fresh eps
    s1, kl1 = g.stage1(z, condition, training=train1, ca_noise=noise)
    if not train2:
      return s1, None, kl1, None
    c_hat, kl2 = g.ca2(condition, training=True)
    return s1, g.stage2(tf.stop_gradient(s1), c_hat, training=True), kl1, kl2

  def _fakes(self, batch, condition, train1, train2):
    z = self.rng.normal([batch, self.z_dim])
    with networks.statistics_kept(self.generator):
      return self._forward(z, condition, train1, train2)[:2]

  def _train_impl(self, x, condition, train1=True, train2=True):
    """One step; `train1` / `train2` (Python bools: one trace each) say which stages update. A fixed Stage-I runs
    in inference mode (BN moving statistics: the images Stage-II sees at test time) with fresh CA draws."""
    d1, d2 = self.discriminators.d1, self.discriminators.d2
    shape = lambda t: tf.concat([[self.k, -1], tf.shape(t)[1:]], 0)
    xs, cs = tf.reshape(x, shape(x)), tf.reshape(condition, shape(condition))
    out = {}
    for i in range(self.k):
      real2, c = xs[i], cs[i]
      s1, s2 = self._fakes(tf.shape(real2)[0], c, train1, train2)
      if train1:
        real1 = tf.image.resize(real2, (self.resolution, self.resolution), method='area')
        out['loss/d'], out['d/accuracy'] = self._d_step(d1, self.d1_opt, real1, s1, c)
      if train2:
        out['loss/d2'], out['d2/accuracy'] = self._d_step(d2, self.d2_opt, real2, s2, c)
    c = cs[-1]
    z = self.rng.normal([tf.shape(c)[0], self.z_dim])
    with networks.statistics_kept(d1, d2):
      with tf.GradientTape(persistent=True) as tape:
        s1, s2, kl1, kl2 = self._forward(z, c, train1, train2)
        g1 = gan.generator_loss(d1(s1, c, training=True)) + self.kl_weight * kl1 if train1 else None
        g2 = gan.generator_loss(d2(s2, c, training=True)) + self.kl_weight * kl2 if train2 else None
      if train1:
        self.g1_opt.apply_gradients(zip(tape.gradient(g1, self.g1_vars), self.g1_vars))
        out.update({'loss/g': g1, 'loss/kl': kl1})
      if train2:
        self.g2_opt.apply_gradients(zip(tape.gradient(g2, self.g2_vars), self.g2_vars))
        out.update({'loss/g2': g2, 'loss/kl2': kl2})
      del tape
    self.step.assign_add(1)
    return out

  def stages_at(self, step: int):
    """(train Stage-I, train Stage-II) at `step`: both with stage1_steps = 0; else Stage-I alone for the first
    stage1_steps steps, then Stage-II alone on the fixed Stage-I (the paper's schedule [orig])."""
    if not self.stage1_steps:
      return True, True
    return (True, False) if step < self.stage1_steps else (False, True)

  def train_step(self, x, condition=None):
    if condition is None:
      raise ValueError('condition: StackGAN needs a condition (labels or attributes)')
    train1, train2 = self.stages_at(int(self.step.numpy()))
    return self._train(tf.convert_to_tensor(x, tf.float32), tf.convert_to_tensor(condition, tf.float32), train1,
                       train2)


def pair_sheet(samples, cols: int = 8) -> np.ndarray:
  """A grid of (Stage-I upsampled to the Stage-II size by nearest neighbour | Stage-II) pairs."""
  s1, s2 = (np.asarray(s) for s in samples)
  factor = s2.shape[1] // s1.shape[1]
  up = s1.repeat(factor, axis=1).repeat(factor, axis=2)
  pairs = np.stack([up, s2], axis=1).reshape((-1,) + s2.shape[1:])
  return images_lib.make_grid(pairs, cols=2 * (cols // 2))
