"""PixelRNN: Row LSTM and Diagonal BiLSTM (seed 004 S4:L97-170, L243-246; details [orig] van den Oord et al., ICML
2016, "Pixel Recurrent Neural Networks" §3.1-3.4; spec §3.5).

The LSTM update (S4:L157):  [o, f, i, g] = sigma(K^ss (*) h_{i-1} + K^is (*) x_i),  c_i = f . c_{i-1} + i . g,
h_i = o . tanh(c_i), with (*) a convolution. Seed erratum (S4:L157, spec §8.6): the slide writes one sigma for all
four; o, f, i use the logistic sigmoid and g uses TANH ([orig]). K^is (*) x is computed for the whole map first as
one masked conv with 4h outputs.

Gate layout: the 4h pre-activations are split under the package's contiguous colour-group convention into C groups,
each [o | f | i | g] of h / C channels (for C = 1: [o | f | i | g], h each); state group g reads only
pre-activation group g.

* Row LSTM ([orig] §3.1): rows top to bottom, one step per row (the state is a whole row). Input-to-state: a 1 x k
  masked conv along the row (k = 3; mask A on a raw image, B after a mask-A layer); state-to-state: an unmasked 1 x k
  conv over the previous row's state. Its field is a triangle above the pixel ("triangular receptive field, slow",
  S4:L243-246): one mask-A layer on the image reads (r, c-1) and rows r-k over columns c-k-1 .. c+k-1, except
  column W-1, whose input only feeds a (non-existent) column-W state; the full model's 7x7 first layer covers it.
* Diagonal BiLSTM ([orig] §3.2): the map is skewed (row r shifted right by r, H x (W + H - 1)), an LSTM runs over
  its columns with a 1x1 (mask B) input-to-state conv and a 2 x 1 state-to-state conv reading skewed (i, j-1) and
  (i-1, j-1) = original (r, c-1) and (r-1, c); the outputs are unskewed. The second direction runs on the mirrored
  map, is mirrored back and SHIFTED DOWN ONE ROW (without the shift it would read the current row's future) and
  added. Full dependency field ("slowest, best log-likelihood") except one edge effect with a 7x7 mask-A first
  layer: (r-1, W-1) is not read from (r, c) when c < W - 4 (spec §3.5; tests/test_pixel_models_pixelrnn.py).
* Residual connections ([orig] §3.4): each layer maps 2h features to h states, a 1x1 (mask B) conv brings them back
  to 2h and adds the layer input.
* Full model ([orig]): 7x7 mask-A conv (2h) -> L recurrent layers -> ReLU -> 1x1 B -> ReLU -> 1x1 B logits.

Both recurrences use tf.scan over a dynamic length, so the models run on any image height (the samplers' windows).
"""

import keras
import tensorflow as tf

from rlcv_tf.core import tracking
from rlcv_tf.pixel_models import masked_conv


def lstm_update(pre, c_prev, groups: int):
  """One LSTM update from pre-activations [..., 4h] (layout in the module docstring) and cell state [..., h]:
  returns (h, c). o, f, i: sigmoid; g: tanh ([orig]; the slide's single sigma is erratum §8.6)."""
  shape = tf.shape(pre)
  n = pre.shape[-1] // 4
  z = tf.reshape(pre, tf.concat([shape[:-1], [groups, 4, n // groups]], 0))
  o, f, i, g = tf.sigmoid(z[..., 0, :]), tf.sigmoid(z[..., 1, :]), tf.sigmoid(z[..., 2, :]), tf.tanh(z[..., 3, :])
  flat = tf.concat([shape[:-1], [n]], 0)
  c = tf.reshape(f, flat) * c_prev + tf.reshape(i * g, flat)
  return tf.reshape(o, flat) * tf.tanh(c), c


def skew(x):
  """[B, H, W, F] -> [B, H, W + H - 1, F], row r shifted right by r (zeros elsewhere)."""
  b, h, w, f = tf.unstack(tf.shape(x))
  x = tf.pad(x, [[0, 0], [0, 0], [0, h], [0, 0]])                     # [B, H, W + H, F]
  x = tf.reshape(x, [b, h * (w + h), f])[:, :h * (w + h - 1)]
  return tf.reshape(x, [b, h, w + h - 1, f])


def unskew(x, width):
  """Inverse of `skew`: [B, H, W + H - 1, F] -> [B, H, W, F]."""
  b, h, ws, f = tf.unstack(tf.shape(x))
  x = tf.reshape(x, [b, h * ws, f])
  x = tf.pad(x, [[0, 0], [0, h], [0, 0]])
  return tf.reshape(x, [b, h, ws + 1, f])[:, :, :width]


class RowLSTM(keras.layers.Layer):
  """Row LSTM layer: [B, H, W, F] -> states [B, H, W, units]."""

  def __init__(self, units: int, kernel: int = 3, mask_type: str = 'B', color_groups: int = 1, **kwargs):
    super().__init__(**kwargs)
    self.units, self.groups = units, color_groups
    masked_conv.channel_groups(units, color_groups)
    self.input_to_state = masked_conv.MaskedConv2D(4 * units, (1, kernel), mask_type, color_groups, name='is')
    self.state_to_state = keras.layers.Conv1D(4 * units, kernel, padding='same', use_bias=False, name='ss')

  def call(self, x):
    pre = tf.transpose(self.input_to_state(x), [1, 0, 2, 3])            # [H, B, W, 4h]
    zeros = tf.zeros(tf.concat([tf.shape(pre)[1:3], [self.units]], 0))

    def step(carry, pre_row):
      h, c = carry
      return lstm_update(pre_row + self.state_to_state(h), c, self.groups)

    hs, _ = tf.scan(step, pre, initializer=(zeros, zeros))
    return tf.transpose(hs, [1, 0, 2, 3])


class DiagonalLSTM(keras.layers.Layer):
  """One direction of the Diagonal BiLSTM, on a map already through its input-to-state conv: [B, H, W, 4h] ->
  [B, H, W, h] (skew, LSTM over skewed columns with the 2 x 1 state-to-state conv, unskew)."""

  def __init__(self, units: int, color_groups: int = 1, **kwargs):
    super().__init__(**kwargs)
    self.units, self.groups = units, color_groups
    self.state_to_state = keras.layers.Dense(4 * units, use_bias=False, name='ss_2x1')  # on [h(i-1,j-1), h(i,j-1)]

  def call(self, pre):
    width = tf.shape(pre)[2]
    cols = tf.transpose(skew(pre), [2, 0, 1, 3])                          # [W + H - 1, B, H, 4h]
    zeros = tf.zeros(tf.concat([tf.shape(cols)[1:3], [self.units]], 0))

    def step(carry, pre_col):
      h, c = carry
      above = tf.pad(h, [[0, 0], [1, 0], [0, 0]])[:, :-1]                 # skewed (i - 1, j - 1)
      return lstm_update(pre_col + self.state_to_state(tf.concat([above, h], -1)), c, self.groups)

    hs, _ = tf.scan(step, cols, initializer=(zeros, zeros))
    return unskew(tf.transpose(hs, [1, 2, 0, 3]), width)


class DiagonalBiLSTM(keras.layers.Layer):
  """Both directions: left-to-right + (right-to-left on the mirrored map, mirrored back, shifted down one row)."""

  def __init__(self, units: int, color_groups: int = 1, shift: bool = True, **kwargs):
    super().__init__(**kwargs)
    self.shift = shift
    masked_conv.channel_groups(units, color_groups)
    self.is_fwd = masked_conv.MaskedConv2D(4 * units, 1, 'B', color_groups, name='is_fwd')
    self.is_bwd = masked_conv.MaskedConv2D(4 * units, 1, 'B', color_groups, name='is_bwd')
    self.fwd = DiagonalLSTM(units, color_groups, name='fwd')
    self.bwd = DiagonalLSTM(units, color_groups, name='bwd')

  def call(self, x):
    forward = self.fwd(self.is_fwd(x))
    mirrored = x[:, :, ::-1]
    backward = self.bwd(self.is_bwd(mirrored))[:, :, ::-1]
    if self.shift:
      backward = tf.pad(backward, [[0, 0], [1, 0], [0, 0], [0, 0]])[:, :-1]
    return forward + backward


class _PixelRNN(keras.Model):
  """7x7 mask-A conv (2h) -> L residual recurrent layers -> ReLU -> 1x1 B -> ReLU -> 1x1 B -> [B, H, W, C, levels]."""

  def __init__(self, image_shape, levels: int, hidden: int, layers: int, head: int, make_layer, **kwargs):
    super().__init__(**kwargs)
    self.image_shape, self.levels, self.num_classes = tuple(int(s) for s in image_shape), int(levels), 0
    c = self.image_shape[-1]
    self.first = masked_conv.MaskedConv2D(2 * hidden, 7, 'A', c, name='in_A')
    self.recurrent = [make_layer(i) for i in range(layers)]
    self.up = [masked_conv.MaskedConv2D(2 * hidden, 1, 'B', c, name=f'res{i}') for i in range(layers)]
    tracking.track_sublayers(self, 'recurrent', self.recurrent)   # tf.train.Checkpoint does not see Keras lists
    tracking.track_sublayers(self, 'up', self.up)
    self.head1 = masked_conv.MaskedConv2D(head, 1, 'B', c, name='head1')
    self.head2 = masked_conv.MaskedConv2D(c * self.levels, 1, 'B', c, name='logits')
    self.receptive_rows = self.image_shape[0]  # unbounded upwards: the fast sampler only drops the rows below

  def call(self, x, condition=None):
    del condition
    h = self.first(x)
    for layer, up in zip(self.recurrent, self.up):
      h = h + up(layer(h))
    y = self.head2(tf.nn.relu(self.head1(tf.nn.relu(h))))
    return masked_conv.reshape_logits(y, self.image_shape[-1], self.levels)


class RowLSTMPixelRNN(_PixelRNN):
  def __init__(self, image_shape, levels: int = 256, hidden: int = 16, layers: int = 2, head: int = 32, **kwargs):
    c = int(image_shape[-1])
    super().__init__(image_shape, levels, hidden, layers, head,
                     lambda i: RowLSTM(hidden, 3, 'B', c, name=f'row_lstm{i}'), **kwargs)


class DiagonalBiLSTMPixelRNN(_PixelRNN):
  def __init__(self, image_shape, levels: int = 256, hidden: int = 16, layers: int = 2, head: int = 32,
               shift: bool = True, **kwargs):
    c = int(image_shape[-1])
    super().__init__(image_shape, levels, hidden, layers, head,
                     lambda i: DiagonalBiLSTM(hidden, c, shift=shift, name=f'diag_bilstm{i}'), **kwargs)
