"""Generators and discriminators / critics of the seed-003 GAN family (issue 15 §2; spec seeds003_004 §2.1-2.2,
§2.5).

The slides give no architecture (spec §2.1). Two families:

* Toy MLPs for 2-D data (`MLPGenerator`, `MLPDiscriminator`): z [B, z_dim] -> hidden ReLU layers -> R^d;
  x -> hidden LeakyReLU(0.2) layers -> one logit (or, for a WGAN critic, one unbounded score: the same head).
* DCGAN-style image nets at 28, 32 and 64 px (and 16 for StackGAN's Stage-I; `DCGANGenerator`,
  `DCGANDiscriminator`), after Radford, Metz & Chintala, "Unsupervised representation learning with deep
  convolutional GANs", ICLR 2016 [orig, not on the slides]: G projects z to a 4x4 (7x7 at 28 px) map, then 4x4
  stride-2 transposed convolutions with BatchNorm and ReLU, halving the channels, to a tanh image; D uses 4x4
  stride-2 convolutions with LeakyReLU(0.2), BatchNorm on all but the first (norm='none' for WGAN-GP critics:
  Gulrajani et al. 2017 drop BN in the critic [orig]), and a dense head to one logit. Weights ~ N(0, 0.02) as in
  the paper.

Conditions (cGAN, spec §2.2): every model takes `call(x_or_z, condition=None)`. With `condition_dim > 0` the
generator concatenates c with z before the first layer; the MLP D concatenates c with x; the conv D compresses c
with a dense layer to `condition_embed` units, tiles it over the last feature map and concatenates it on channels,
then a 1x1 conv (BN, LeakyReLU) before the head, as StackGAN's D does [orig].
"""

import contextlib
from typing import Sequence, Tuple

import keras
from keras import ops

from rlcv_tf.core import tracking
from rlcv_tf.gans import config

RESOLUTIONS = config.RESOLUTIONS
NORMS = ('batch', 'none')


def _init():
  return keras.initializers.RandomNormal(0.0, 0.02)


def check_condition(condition, condition_dim: int, who: str):
  """The condition of a `who` call: None for an unconditional model, else a [B, condition_dim] tensor."""
  if condition_dim == 0:
    if condition is not None:
      raise ValueError(f'{who} is unconditional (condition_dim=0) but was given a condition')
    return None
  if condition is None:
    raise ValueError(f'{who} needs a condition of size {condition_dim}')
  condition = ops.cast(condition, 'float32')
  if condition.shape[-1] is not None and condition.shape[-1] != condition_dim:
    raise ValueError(f'{who}: condition of size {condition.shape[-1]}, expected {condition_dim}')
  return condition


class Model(keras.Model):
  """keras.Model whose SavedModel export takes only the endpoints of `export.py`: Keras would otherwise trace a
  one-input `serving_default` of every tracked model, which a (z, condition) model cannot answer."""

  @property
  def _default_save_signature(self):
    return None


class MLPGenerator(Model):
  """z [B, z_dim] (+ condition [B, condition_dim]) -> x [B, out_dim] (linear output)."""

  def __init__(self, out_dim: int = 2, hidden: Sequence[int] = (128, 128), condition_dim: int = 0, **kwargs):
    kwargs.setdefault('name', 'mlp_generator')
    super().__init__(**kwargs)
    self.out_dim, self.condition_dim = int(out_dim), int(condition_dim)
    self.hidden = [keras.layers.Dense(h, activation='relu', name=f'dense{i}') for i, h in enumerate(hidden)]
    self.out = keras.layers.Dense(self.out_dim, name='out')
    tracking.track_containers(self)       # tf.train.Checkpoint does not see layers kept in lists

  def call(self, z, condition=None, training=False):
    condition = check_condition(condition, self.condition_dim, self.name)
    x = z if condition is None else ops.concatenate([z, condition], axis=-1)
    for layer in self.hidden:
      x = layer(x)
    return self.out(x)


class MLPDiscriminator(Model):
  """x [B, in_dim] (+ condition) -> one logit / critic score [B, 1] (no sigmoid)."""

  def __init__(self, hidden: Sequence[int] = (128, 128), condition_dim: int = 0, **kwargs):
    kwargs.setdefault('name', 'mlp_discriminator')
    super().__init__(**kwargs)
    self.condition_dim = int(condition_dim)
    self.hidden = [keras.layers.Dense(h, name=f'dense{i}') for i, h in enumerate(hidden)]
    self.out = keras.layers.Dense(1, name='logit')
    tracking.track_containers(self)

  def call(self, x, condition=None, training=False):
    condition = check_condition(condition, self.condition_dim, self.name)
    if condition is not None:
      x = ops.concatenate([x, condition], axis=-1)
    for layer in self.hidden:
      x = ops.leaky_relu(layer(x), 0.2)
    return self.out(x)


def _start_size(resolution: int) -> Tuple[int, int]:
  """(side of the first map, number of stride-2 stages): 16 -> (4, 2), 28 -> (7, 2), 32 -> (4, 3), 64 -> (4, 4)."""
  if resolution not in RESOLUTIONS:
    raise ValueError(f'resolution: got {resolution}; valid values are {RESOLUTIONS}')
  return (7, 2) if resolution == 28 else (4, {16: 2, 32: 3, 64: 4}[resolution])


class DCGANGenerator(Model):
  """z (+ condition) -> image [B, R, R, channels] in [-1, 1] (Radford et al. 2016 [orig]).

  Dense -> s x s x (gf * 2^(n-1)) -> BN -> ReLU -> n - 1 x (ConvT 4x4 s2 -> BN -> ReLU; channels halving) ->
  ConvT 4x4 s2 -> channels -> tanh; s, n from the resolution (28: 7, 2; 32: 4, 3; 64: 4, 4)."""

  def __init__(self, resolution: int = 28, channels: int = 1, gf: int = 32, condition_dim: int = 0, **kwargs):
    kwargs.setdefault('name', 'dcgan_generator')
    super().__init__(**kwargs)
    self.resolution, self.channels, self.condition_dim = int(resolution), int(channels), int(condition_dim)
    self.side, stages = _start_size(self.resolution)
    self.base_channels = gf * 2 ** (stages - 1)
    self.project = keras.layers.Dense(self.side * self.side * self.base_channels, use_bias=False,
                                      kernel_initializer=_init(), name='project')
    self.project_bn = keras.layers.BatchNormalization(name='project_bn')
    self.ups = []
    for i in range(stages - 1):
      self.ups.append((keras.layers.Conv2DTranspose(gf * 2 ** (stages - 2 - i), 4, strides=2, padding='same',
                                                    use_bias=False, kernel_initializer=_init(), name=f'up{i}'),
                       keras.layers.BatchNormalization(name=f'up{i}_bn')))
    self.to_image = keras.layers.Conv2DTranspose(self.channels, 4, strides=2, padding='same',
                                                 kernel_initializer=_init(), name='to_image')
    tracking.track_containers(self)       # the up-stages' BatchNorm statistics must reach checkpoints

  def call(self, z, condition=None, training=False):
    condition = check_condition(condition, self.condition_dim, self.name)
    x = z if condition is None else ops.concatenate([z, condition], axis=-1)
    x = ops.relu(self.project_bn(self.project(x), training=training))
    x = ops.reshape(x, (-1, self.side, self.side, self.base_channels))
    for conv, bn in self.ups:
      x = ops.relu(bn(conv(x), training=training))
    return ops.tanh(self.to_image(x))


class DCGANDiscriminator(Model):
  """image (+ condition) -> one logit / critic score [B, 1] (Radford et al. 2016 [orig]; conditional head as in
  StackGAN's D [orig])."""

  def __init__(self, resolution: int = 28, df: int = 32, condition_dim: int = 0, norm: str = 'batch',
               condition_embed: int = 32, **kwargs):
    kwargs.setdefault('name', 'dcgan_discriminator')
    super().__init__(**kwargs)
    if norm not in NORMS:
      raise ValueError(f'norm: got {norm!r}; valid values are {NORMS}')
    self.resolution, self.condition_dim, self.norm = int(resolution), int(condition_dim), norm
    _, stages = _start_size(self.resolution)
    self.downs = []
    for i in range(stages):
      bn = keras.layers.BatchNormalization(name=f'down{i}_bn') if (i and norm == 'batch') else None
      self.downs.append((keras.layers.Conv2D(df * 2 ** i, 4, strides=2, padding='same', kernel_initializer=_init(),
                                             name=f'down{i}'), bn))
    self.embed = self.joint = self.joint_bn = None
    if self.condition_dim:
      self.embed = keras.layers.Dense(condition_embed, kernel_initializer=_init(), name='condition_embed')
      self.joint = keras.layers.Conv2D(df * 2 ** (stages - 1), 1, kernel_initializer=_init(), name='joint')
      self.joint_bn = keras.layers.BatchNormalization(name='joint_bn') if norm == 'batch' else None
    self.flatten = keras.layers.Flatten(name='flatten')
    self.logit = keras.layers.Dense(1, kernel_initializer=_init(), name='logit')
    tracking.track_containers(self)

  def call(self, x, condition=None, training=False):
    condition = check_condition(condition, self.condition_dim, self.name)
    for conv, bn in self.downs:
      x = conv(x)
      if bn is not None:
        x = bn(x, training=training)
      x = ops.leaky_relu(x, 0.2)
    if condition is not None:
      c = ops.leaky_relu(self.embed(condition), 0.2)
      side = ops.shape(x)[1]
      c = ops.tile(c[:, None, None, :], (1, side, side, 1))
      x = self.joint(ops.concatenate([x, c], axis=-1))
      if self.joint_bn is not None:
        x = self.joint_bn(x, training=training)
      x = ops.leaky_relu(x, 0.2)
    return self.logit(self.flatten(x))


def build(model: keras.Model, input_shape, condition_dim: int = 0):
  """Builds `model` by calling it once on zeros of [2, *input_shape] (+ a [2, condition_dim] condition)."""
  x = ops.zeros((2,) + tuple(input_shape))
  model(x, None if not condition_dim else ops.zeros((2, condition_dim)))
  return model


@contextlib.contextmanager
def statistics_kept(*models: keras.Model):
  """Runs the block with `models` in training mode free to use batch statistics, then puts their non-trainable
  variables (BatchNorm moving statistics) back as they were: a G step runs D in training mode but must leave D
  bit-identical, and a D step runs G likewise (issue 15 §2 test: a G step leaves D unchanged and vice versa). In a
  tf.function the restores are ops placed after the block's ops."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  saved = [[tf.identity(v.value) for v in m.non_trainable_variables] for m in models]
  yield
  for model, values in zip(models, saved):
    for v, value in zip(model.non_trainable_variables, values):
      v.assign(value)
