"""Observation encoders of Chapter 2 (Table 2.G.2, T:L2006-2072; spec ch2 §2.2 and §12 readings 1-2).

Each conv is an explicit zero padding (PyTorch's symmetric `padding`) followed by a 'valid' convolution, then
LeakyReLU(0.1) (the slope is not printed; 0.1 is the A3C-LSTM code base's) or, on the slim encoder's stride-1
layers, CReLU (T:L2068-2072). Read as:

* `default` (Seaquest, BeamRider, MsPacman, Qbert; ACER on CarRacing), 80x80xC -> 1024. conv7's padding 0 is kept
  as printed: 10x10 -> 8x8, and conv8 gives 4x4x64 = 1024, the LSTM's printed input width (the printed 10x10 and
  5x5 sizes are inconsistent with padding 0). 174,240 conv parameters for C = 1.
* `slim` (Boxing, Breakout, Freeway): the printed channel counts do not chain; read with the caption's "channels
  doubled at output" as half the filters plus CReLU on the stride-1 layers (conv1/3/5/7) and LeakyReLU on the
  stride-2 ones, giving the same 32-32-32-32-64-64-64-64 output channels and 1024 features; 133,296 parameters
  for C = 1.
* `conv1d` (DDPG family on BipedalWalker): input [L, C] = 24 positions x 4 stacked states; lengths 24, 24, 25, 25
  and 64 x 25 = 1600 features; 11,840 parameters for C = 4.
* `mlp`: Dense layers with LeakyReLU for vector observations (the cartpole_masked / pendulum stand-ins, not a
  thesis encoder).

`conv7_padding` is configurable (spec §12-1); the default is the printed 0.
"""

from typing import Sequence, Tuple

import keras
from keras import ops

from rlcv_tf.core import tracking
from rlcv_tf.stochastic_ac import layers as layers_lib

# (filters, kernel, stride, padding, activation): Table 2.G.2 as read above.
DEFAULT_CONV = (
    (32, 5, 1, 2, 'leaky'),
    (32, 3, 2, 1, 'leaky'),
    (32, 5, 1, 2, 'leaky'),
    (32, 3, 2, 1, 'leaky'),
    (64, 3, 1, 1, 'leaky'),
    (64, 3, 2, 1, 'leaky'),
    (64, 3, 1, 0, 'leaky'),
    (64, 3, 2, 1, 'leaky'),
)
SLIM_CONV = (
    (16, 5, 1, 2, 'crelu'),
    (32, 3, 2, 1, 'leaky'),
    (16, 5, 1, 2, 'crelu'),
    (32, 3, 2, 1, 'leaky'),
    (32, 3, 1, 1, 'crelu'),
    (64, 3, 2, 1, 'leaky'),
    (32, 3, 1, 0, 'crelu'),
    (64, 3, 2, 1, 'leaky'),
)
CONV1D = (
    (32, 3, 1, 1, 'leaky'),
    (32, 3, 1, 1, 'leaky'),
    (64, 2, 1, 1, 'leaky'),
    (64, 1, 1, 0, 'leaky'),
)
KINDS = ('default', 'slim', 'conv1d', 'mlp')
LEAKY_SLOPE = 0.1

# Parameter counts of Table 2.G.2 as read here (issue 10 §3), for the input channels named.
PARAMS_DEFAULT_1CH = 174_240
PARAMS_SLIM_1CH = 133_296
PARAMS_CONV1D_4CH = 11_840


class _Activation(keras.layers.Layer):

  def __init__(self, kind: str, slope: float, **kwargs):
    super().__init__(**kwargs)
    self.kind = kind
    self.slope = float(slope)

  def call(self, x):
    if self.kind == 'crelu':
      return ops.concatenate([ops.relu(x), ops.relu(-x)], axis=-1)
    return layers_lib.leaky_relu(x, self.slope)

  def get_config(self):
    return dict(super().get_config(), kind=self.kind, slope=self.slope)


class ConvEncoder(keras.layers.Layer):
  """A stack of (zero pad, 'valid' conv, activation) layers, then flatten: [B, *spatial, C] -> [B, features].

  Args:
    table: (filters, kernel, stride, padding, 'leaky' | 'crelu') per layer.
    rank: 2 (images, Conv2D) or 1 (sequences, Conv1D).
    leaky_slope: LeakyReLU's negative slope.
  """

  def __init__(self, table: Sequence[Tuple[int, int, int, int, str]], rank: int = 2,
               leaky_slope: float = LEAKY_SLOPE, **kwargs):
    super().__init__(**kwargs)
    self.table = tuple(tuple(row) for row in table)
    self.rank = int(rank)
    self.leaky_slope = float(leaky_slope)
    conv = {2: keras.layers.Conv2D, 1: keras.layers.Conv1D}[self.rank]
    pad = {2: keras.layers.ZeroPadding2D, 1: keras.layers.ZeroPadding1D}[self.rank]
    self.stack = []
    for i, (filters, kernel, stride, padding, activation) in enumerate(self.table):
      if activation not in ('leaky', 'crelu'):
        raise ValueError(f'encoder activation must be leaky or crelu, got {activation!r}')
      self.stack.append((
          pad(padding, name=f'pad{i + 1}'),
          conv(filters, kernel, strides=stride, padding='valid', name=f'conv{i + 1}'),
          _Activation(activation, self.leaky_slope, name=f'act{i + 1}'),
      ))
    tracking.track_sublayers(self, 'stack_layer', self.stack)
    self.flatten = keras.layers.Flatten()

  def call(self, x):
    for pad, conv, act in self.stack:
      x = act(conv(pad(x)))
    return self.flatten(x)

  def conv_layers(self):
    return [conv for _, conv, _ in self.stack]

  def get_config(self):
    return dict(super().get_config(), table=self.table, rank=self.rank, leaky_slope=self.leaky_slope)


class MLPEncoder(keras.layers.Layer):
  """Flatten, then Dense(units) + LeakyReLU per entry of `units`: for vector observations (stand-ins only)."""

  def __init__(self, units: Sequence[int] = (64,), leaky_slope: float = LEAKY_SLOPE, **kwargs):
    super().__init__(**kwargs)
    self.units = tuple(int(u) for u in units)
    self.leaky_slope = float(leaky_slope)
    self.flatten = keras.layers.Flatten()
    self.dense = [keras.layers.Dense(u, name=f'fc{i + 1}') for i, u in enumerate(self.units)]
    tracking.track_sublayers(self, 'dense_layer', self.dense)

  def call(self, x):
    x = self.flatten(x)
    for layer in self.dense:
      x = layers_lib.leaky_relu(layer(x), self.leaky_slope)
    return x

  def get_config(self):
    return dict(super().get_config(), units=self.units, leaky_slope=self.leaky_slope)


def build_encoder(kind: str, conv7_padding: int = 0, mlp_units: Sequence[int] = (64,),
                  leaky_slope: float = LEAKY_SLOPE, name: str = 'encoder') -> keras.layers.Layer:
  """The encoder of `kind` ('default', 'slim', 'conv1d' or 'mlp')."""
  if kind in ('default', 'slim'):
    table = [list(row) for row in (DEFAULT_CONV if kind == 'default' else SLIM_CONV)]
    table[6][3] = int(conv7_padding)
    return ConvEncoder(table, rank=2, leaky_slope=leaky_slope, name=name)
  if kind == 'conv1d':
    return ConvEncoder(CONV1D, rank=1, leaky_slope=leaky_slope, name=name)
  if kind == 'mlp':
    return MLPEncoder(mlp_units, leaky_slope=leaky_slope, name=name)
  raise ValueError(f'encoder must be one of {KINDS}, got {kind!r}')


def count_params(layer: keras.layers.Layer) -> int:
  """Number of scalars in the layer's weights (it must be built)."""
  return int(sum(int(ops.size(w)) for w in layer.weights))
