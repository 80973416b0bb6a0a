"""Masked convolutions of types A and B with colour groups (seed 004 S4:L188-190; rules [orig] PixelRNN paper §3.4).

S4:L188-190 says only "2D convolution ... apply masks so a pixel does not see future pixels". The rules are from van
den Oord et al. 2016 (PixelRNN, §3.4), spec seeds003_004 §3.2:

* spatial part, for a kh x kw kernel with centre (kh // 2, kw // 2): every tap above the centre row is kept, the
  centre row keeps the taps left of the centre, everything below or right is zero;
* centre tap, colour part: input group g_in may feed output group g_out iff g_in < g_out (type A) or g_in <= g_out
  (type B); with one group, type A drops the centre tap and type B keeps it.

Channel convention (the one used everywhere in this package, including the output reshape to
[B, H, W, C, levels]): channels are split into `color_groups` CONTIGUOUS blocks, channel k of n belongs to group
k // (n / groups). A logits layer with C * levels outputs therefore reshapes to [..., C, levels] with a plain
reshape. The raw image's C channels are groups 0..C-1 (R, G, B).

The mask is a constant made in `build()` and multiplied into the kernel in `call()` (not a kernel_constraint, which
fires only after optimizer updates and would let the first forward pass leak). No BatchNorm anywhere in these
models: batch statistics mix future pixels into the present.
"""

import keras
import numpy as np
import tensorflow as tf


def channel_groups(num_channels: int, groups: int) -> np.ndarray:
  """Group index of each of `num_channels` channels under the contiguous convention."""
  if num_channels % groups:
    raise ValueError(f'{num_channels} channels do not split into {groups} colour groups; use a multiple of {groups}')
  return np.arange(num_channels) // (num_channels // groups)


def make_mask(kernel_size, in_channels: int, out_channels: int, mask_type: str, color_groups: int = 1) -> np.ndarray:
  """The float32 [kh, kw, in, out] 0/1 mask of a masked conv (rules in the module docstring)."""
  if mask_type not in ('A', 'B'):
    raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
  kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
  ch, cw = kh // 2, kw // 2
  mask = np.zeros((kh, kw, in_channels, out_channels), np.float32)
  mask[:ch] = 1.0
  mask[ch, :cw] = 1.0
  g_in = channel_groups(in_channels, color_groups)[:, None]
  g_out = channel_groups(out_channels, color_groups)[None, :]
  mask[ch, cw] = (g_in < g_out) if mask_type == 'A' else (g_in <= g_out)
  return mask


class MaskedConv2D(keras.layers.Layer):
  """Conv2D, stride 1, padding 'same', whose kernel is multiplied by the type-A/B mask of `make_mask` in call()."""

  def __init__(self, filters: int, kernel_size, mask_type: str, color_groups: int = 1, activation=None,
               use_bias: bool = True, **kwargs):
    super().__init__(**kwargs)
    self.filters, self.mask_type, self.color_groups = int(filters), mask_type, int(color_groups)
    self.kernel_size = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
    self.activation = keras.activations.get(activation)
    self.use_bias = use_bias
    channel_groups(self.filters, self.color_groups)  # raises early on a bad split

  def build(self, input_shape):
    in_channels = int(input_shape[-1])
    self.kernel = self.add_weight(name='kernel', shape=self.kernel_size + (in_channels, self.filters),
                                  initializer='glorot_uniform')
    self.bias = self.add_weight(name='bias', shape=(self.filters,), initializer='zeros') if self.use_bias else None
    # A NumPy constant: Keras may build inside a scratch graph, so the tensor is made in call().
    self.mask = make_mask(self.kernel_size, in_channels, self.filters, self.mask_type, self.color_groups)

  def call(self, x):
    y = tf.nn.conv2d(x, self.kernel * tf.constant(self.mask), strides=1, padding='SAME')
    if self.bias is not None:
      y = y + self.bias
    return self.activation(y)


def reshape_logits(y, channels: int, levels: int):
  """[B, H, W, channels * levels] -> [B, H, W, channels, levels] under the contiguous group convention."""
  shape = tf.shape(y)
  return tf.reshape(y, tf.concat([shape[:3], [channels, levels]], axis=0))
