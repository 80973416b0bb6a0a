"""Gated PixelCNN (seed 004 S4:L256-257, one line: "removes blind spots, replaces ReLU units"; the layers are [orig]
van den Oord et al., NeurIPS 2016, "Conditional Image Generation with PixelCNN Decoders"; spec §3.4).

Per layer, two stacks ([orig]):

* gated activation y = tanh(W_f * x) . sigmoid(W_g * x): one conv with 2p outputs, split (`gate`). Under the
  package's contiguous colour-group convention the split is made inside each colour group, so output group g of the
  gate reads only pre-activation group g;
* vertical stack: an n x n field restricted to rows <= r, as a (n//2 + 1) x n conv on the input padded n//2 rows on
  top (output row r reads input rows r - n//2 .. r, every column of the window);
* horizontal stack: a 1 x n conv along the row, masked (type A in the first layer, B after, with the colour
  groups) = the paper's 1 x (n//2 + 1) conv from the left up to (A: excluding) the current column;
* the vertical pre-activations are SHIFTED DOWN ONE ROW and enter the horizontal stack through a 1x1 conv (2p) before
  its gate, so horizontal row r only ever sees vertical information of rows < r;
* the horizontal stack is residual, h_out = h_in + 1x1(gated) (not in the first layer, whose input is the image);
  the vertical stack has none;
* class conditioning on a one-hot label h: V_f^T h and V_g^T h (one Dense(2p) per stack) added before the gates.

Head (as PixelCNN's, [orig]): ReLU -> 1x1 B -> ReLU -> 1x1 B (C * levels) -> [B, H, W, C, levels].
There is no blind spot: (r-1, c+2) is read from the second layer on (tests/test_pixel_models_gated.py).
"""

import keras
import tensorflow as tf

from rlcv_tf.core import tracking
from rlcv_tf.pixel_models import masked_conv


def gate(x, groups: int):
  """tanh(first half) * sigmoid(second half) of each of `groups` contiguous channel groups: [..., 2p] -> [..., p]."""
  shape = tf.shape(x)
  n = x.shape[-1]
  y = tf.reshape(x, tf.concat([shape[:-1], [groups, 2, n // (2 * groups)]], 0))
  out = tf.tanh(y[..., 0, :]) * tf.sigmoid(y[..., 1, :])
  return tf.reshape(out, tf.concat([shape[:-1], [n // 2]], 0))


def shift_down(x):
  """Row r of the result is row r - 1 of x (row 0 is zeros)."""
  return tf.pad(x, [[0, 0], [1, 0], [0, 0], [0, 0]])[:, :-1]


class GatedLayer(keras.layers.Layer):
  """One gated layer: (v_in, h_in[, condition]) -> (v_out, h_out)."""

  def __init__(self, channels: int, kernel: int = 3, first: bool = False, color_groups: int = 1,
               num_classes: int = 0, shift: bool = True, **kwargs):
    super().__init__(**kwargs)
    self.p, self.n, self.first, self.groups, self.shift = channels, kernel, first, color_groups, shift
    masked_conv.channel_groups(2 * channels, color_groups)
    self.v_conv = keras.layers.Conv2D(2 * channels, (kernel // 2 + 1, kernel), padding='valid', name='v')
    self.v_to_h = keras.layers.Conv2D(2 * channels, 1, name='v_to_h')
    self.h_conv = masked_conv.MaskedConv2D(2 * channels, (1, kernel), 'A' if first else 'B', color_groups,
                                           name='h')
    self.h_out = masked_conv.MaskedConv2D(channels, 1, 'B', color_groups, name='h_out')
    self.cond_v = keras.layers.Dense(2 * channels, use_bias=False, name='cond_v') if num_classes else None
    self.cond_h = keras.layers.Dense(2 * channels, use_bias=False, name='cond_h') if num_classes else None

  def call(self, v, h, condition=None):
    k = self.n // 2
    v_pre = self.v_conv(tf.pad(v, [[0, 0], [k, 0], [k, k], [0, 0]]))
    h_pre = self.h_conv(h) + self.v_to_h(shift_down(v_pre) if self.shift else v_pre)
    if self.cond_v is not None:
      v_pre = v_pre + self.cond_v(condition)[:, None, None, :]
      h_pre = h_pre + self.cond_h(condition)[:, None, None, :]
    v_out = gate(v_pre, self.groups)
    h_new = self.h_out(gate(h_pre, self.groups))
    return v_out, (h_new if self.first else h + h_new)


class GatedPixelCNN(keras.Model):
  """Gated PixelCNN on [B, H, W, C] inputs in [-1, 1] (+ a one-hot condition [B, num_classes] when
  num_classes > 0); returns logits [B, H, W, C, levels]. `receptive_rows` is the fast sampler's window."""

  def __init__(self, image_shape, levels: int = 256, channels: int = 32, layers: int = 5, kernel: int = 3,
               head: int = 64, num_classes: int = 0, shift: bool = True, head_activation: str = 'relu',
               **kwargs):
    super().__init__(**kwargs)
    self.image_shape, self.levels, self.num_classes = tuple(int(s) for s in image_shape), int(levels), num_classes
    c = self.image_shape[-1]
    self.gated = [GatedLayer(channels, kernel, first=(i == 0), color_groups=c, num_classes=num_classes,
                             shift=shift, name=f'gated{i}') for i in range(layers)]
    tracking.track_sublayers(self, 'gated', self.gated)    # tf.train.Checkpoint does not see Keras lists
    self.head1 = masked_conv.MaskedConv2D(head, 1, 'B', c, name='head1')
    self.head2 = masked_conv.MaskedConv2D(c * self.levels, 1, 'B', c, name='logits')
    self.receptive_rows = layers * (kernel // 2) + 1
    self.act = keras.activations.get(head_activation)  # 'tanh' in the gradient tests (no dead ReLU zeros)

  @property
  def _default_save_signature(self):
    # Keras would trace self(x) without the condition when a SavedModel is written; export.py writes the endpoints.
    return None

  def call(self, x, condition=None):
    if self.num_classes and condition is None:
      raise ValueError(f'this gated PixelCNN is class-conditional: pass a one-hot condition [B, {self.num_classes}]')
    condition = None if not self.num_classes else tf.cast(condition, tf.float32)
    v = h = x
    for layer in self.gated:
      v, h = layer(v, h, condition)
    y = self.head2(self.act(self.head1(self.act(h))))
    return masked_conv.reshape_logits(y, self.image_shape[-1], self.levels)
