"""Residual blocks of the Chapter 7 networks (thesis T:L6562-6565, T:L6896-6897, T:L6911-6912; spec ch7 §3.1, §3.3).

* `BasicBlock2D(filters, stride)`: the "basic residual block" of He et al. (2016) that g_enc, g_dec and f_enc stack
  (the thesis: "a stack of 4 basic residual blocks", T:L6896-6897):
      y = ReLU(BN(Conv3x3(filters, stride)(x))); y = BN(Conv3x3(filters)(y))
      shortcut = x, or BN(Conv1x1(filters, stride)(x)) when the shape changes;  out = ReLU(y + shortcut)
  so its output is >= 0 (spec A10).
* `BasicBlock3D(filters, strides)`: the same with 3x3x3 kernels and a 1x1x1 projection shortcut, the block of the
  Res3D-18 backbone (Hara et al. 2018) that Enc_v uses (T:L6911-6912).
* `ResidualStage3D(filters, strides, depth=2)`: one Res3D-18 layer, `depth` blocks, the first with `strides`.

Convolutions before batch norm have no bias and He-normal kernels [proposal]; BN uses `bn_momentum` / `bn_epsilon`
(Keras semantics; 0.9 / 1e-5 = PyTorch's defaults, which Hara's code uses). Channels-last throughout.
"""

from typing import Sequence, Union

import keras

from rlcv_tf.core import tracking

IntOrTuple = Union[int, Sequence[int]]


def batch_norm(momentum: float, epsilon: float, name: str) -> keras.layers.BatchNormalization:
  return keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon, name=name)


def conv2d(filters: int, kernel: IntOrTuple, strides: IntOrTuple = 1, use_bias: bool = False, name: str = None,
           activation=None) -> keras.layers.Conv2D:
  return keras.layers.Conv2D(filters, kernel, strides=strides, padding='same', use_bias=use_bias,
                             kernel_initializer='he_normal', activation=activation, name=name)


def conv3d(filters: int, kernel: IntOrTuple, strides: IntOrTuple = 1, use_bias: bool = False,
           name: str = None) -> keras.layers.Conv3D:
  return keras.layers.Conv3D(filters, kernel, strides=strides, padding='same', use_bias=use_bias,
                             kernel_initializer='he_normal', name=name)


def _as_tuple(value: IntOrTuple, rank: int) -> tuple:
  if isinstance(value, int):
    return (value,) * rank
  value = tuple(int(v) for v in value)
  if len(value) != rank:
    raise ValueError(f'strides: got {value}; valid values are an int or {rank} ints')
  return value


class _BasicBlock(keras.layers.Layer):
  """Shared body of the 2D and 3D basic blocks (`rank` 2 or 3)."""

  rank = 2

  def __init__(self, filters: int, strides: IntOrTuple = 1, bn_momentum: float = 0.9, bn_epsilon: float = 1e-5,
               **kwargs):
    super().__init__(**kwargs)
    self.filters = int(filters)
    self.strides = _as_tuple(strides, self.rank)
    self.bn_momentum = float(bn_momentum)
    self.bn_epsilon = float(bn_epsilon)
    conv = conv2d if self.rank == 2 else conv3d
    self.conv1 = conv(self.filters, 3, self.strides, name='conv1')
    self.bn1 = batch_norm(self.bn_momentum, self.bn_epsilon, 'bn1')
    self.conv2 = conv(self.filters, 3, 1, name='conv2')
    self.bn2 = batch_norm(self.bn_momentum, self.bn_epsilon, 'bn2')
    self.shortcut_conv = None
    self.shortcut_bn = None

  def build(self, input_shape):
    if input_shape[-1] != self.filters or any(s != 1 for s in self.strides):
      conv = conv2d if self.rank == 2 else conv3d
      # Stride by slicing, then a stride-1 1x1 conv: the same function as a strided 'same' 1x1 conv (which reads
      # input i * s for output i at every size), but TF 2.21's oneDNN CPU kernel for the strided version's filter
      # gradient corrupts the heap at 64x64 (4 -> 8 and 8 -> 16 channels segfault; tests/test_video_models.py).
      self.shortcut_conv = conv(self.filters, 1, 1, name='shortcut_conv')
      self.shortcut_bn = batch_norm(self.bn_momentum, self.bn_epsilon, 'shortcut_bn')
    self.built = True

  def call(self, x, training=False):
    y = keras.ops.relu(self.bn1(self.conv1(x), training=training))
    y = self.bn2(self.conv2(y), training=training)
    shortcut = x
    if self.shortcut_conv is not None:
      strided = x[(slice(None),) + tuple(slice(None, None, st) for st in self.strides)]
      shortcut = self.shortcut_bn(self.shortcut_conv(strided), training=training)
    return keras.ops.relu(y + shortcut)

  def compute_output_shape(self, input_shape):
    spatial = tuple(None if d is None else -(-d // s) for d, s in zip(input_shape[1:-1], self.strides))
    return (input_shape[0],) + spatial + (self.filters,)

  def get_config(self):
    return dict(super().get_config(), filters=self.filters, strides=self.strides, bn_momentum=self.bn_momentum,
                bn_epsilon=self.bn_epsilon)


class BasicBlock2D(_BasicBlock):
  """He et al.'s basic residual block on [B, H, W, C] (module docstring); output [B, ceil(H/s), ceil(W/s), filters]."""

  rank = 2


class BasicBlock3D(_BasicBlock):
  """The 3D basic block on [B, T, H, W, C] with 3x3x3 kernels (module docstring)."""

  rank = 3


class ResidualStage3D(keras.layers.Layer):
  """One Res3D-18 layer: `depth` BasicBlock3D(filters), the first with `strides`, the rest stride 1."""

  def __init__(self, filters: int, strides: IntOrTuple = 1, depth: int = 2, bn_momentum: float = 0.9,
               bn_epsilon: float = 1e-5, **kwargs):
    super().__init__(**kwargs)
    self.filters = int(filters)
    self.strides = _as_tuple(strides, 3)
    self.depth = int(depth)
    self.bn_momentum = float(bn_momentum)
    self.bn_epsilon = float(bn_epsilon)
    self.blocks = [BasicBlock3D(self.filters, self.strides if i == 0 else 1, bn_momentum, bn_epsilon,
                                name=f'block{i + 1}') for i in range(self.depth)]
    tracking.track_sublayers(self, 'block', self.blocks)

  def call(self, x, training=False):
    for block in self.blocks:
      x = block(x, training=training)
    return x

  def get_config(self):
    return dict(super().get_config(), filters=self.filters, strides=self.strides, depth=self.depth,
                bn_momentum=self.bn_momentum, bn_epsilon=self.bn_epsilon)
