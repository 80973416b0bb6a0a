"""PixelRNN (spec §7.6 T-PRNN-1..4): skew / unskew, the Row LSTM's triangle, the Diagonal BiLSTM's full causal field
with its one edge exception (and a copy without the down-shift that fails), Row-LSTM steps vs a NumPy LSTM written
from the paper's equations (sigmoid o, f, i; tanh g)."""

import numpy as np
import tensorflow as tf

from rlcv_tf.pixel_models import masked_conv
from rlcv_tf.pixel_models import pixelrnn
from tests import pixel_models_helpers as helpers


def _randomise(layer, stddev=0.5):
  for v in layer.trainable_variables:
    v.assign(tf.random.normal(v.shape, stddev=stddev))


def test_skew_unskew():
  x = tf.reshape(tf.range(2 * 3 * 4 * 2, dtype=tf.float32) + 1, (2, 3, 4, 2))
  s = pixelrnn.skew(x).numpy()
  assert s.shape == (2, 3, 4 + 3 - 1, 2)
  for r in range(3):
    np.testing.assert_array_equal(s[:, r, r:r + 4], x.numpy()[:, r])
    assert (np.delete(s[:, r], np.arange(r, r + 4), axis=1) == 0).all()
  np.testing.assert_array_equal(pixelrnn.unskew(pixelrnn.skew(x), 4).numpy(), x.numpy())


def test_row_lstm_triangle():
  tf.keras.utils.set_random_seed(0)
  layer = pixelrnn.RowLSTM(2, 3, 'A')
  layer(tf.zeros((1, 7, 7, 1)))
  _randomise(layer)
  dep = helpers.dependency(lambda x: layer(x)[..., None, :], (7, 7, 1))[..., 0, :, :, 0]  # [r, c, r', c']
  r, c = 4, 3
  d = dep[r, c]
  assert d[r, c] == 0 and d[r, c + 1] == 0 and (d[r + 1:] == 0).all()
  assert d[r - 1, c + 1] == 0                                   # outside the triangle
  assert d[r, c - 1] > 0 and d[r - 1, c] > 0 and d[r - 2, c + 1] > 0
  # the whole field of ONE layer: (r, c - 1) on its own row (no recurrence along a row), and (r - k, c') for
  # c - k - 1 <= c' <= c + k - 1; the last column W - 1 only ever feeds a column-W state, which does not exist
  for rr in range(7):
    for cc in range(7):
      k = r - rr
      inside = (k == 0 and cc == c - 1) or (k >= 1 and c - k - 1 <= cc <= min(c + k - 1, 7 - 2))
      assert (d[rr, cc] > 0) == inside, (rr, cc)


def _diag_stack(shift):
  tf.keras.utils.set_random_seed(0)
  first = masked_conv.MaskedConv2D(4, 7, 'A')
  bilstm = pixelrnn.DiagonalBiLSTM(2, shift=shift)
  bilstm(first(tf.zeros((1, 9, 9, 1))))
  _randomise(first)
  _randomise(bilstm)
  return lambda x: bilstm(first(x))[..., None, :]


def test_diagonal_bilstm_full_causal_field_but_the_edge():
  h = w = 9
  dep = helpers.dependency(_diag_stack(True), (h, w, 1))[..., 0, :, :, 0]
  order = np.arange(h * w).reshape(h, w)
  for r in range(h):
    for c in range(w):
      d = dep[r, c]
      assert (d[order >= order[r, c]] == 0).all(), f'({r}, {c}) reads its future'
      past = order < order[r, c]
      unread = {tuple(p) for p in np.argwhere(past & (d == 0))}
      expected = {(r - 1, w - 1)} if (r >= 1 and c < w - 4) else set()
      assert unread == expected, ((r, c), unread)


def test_diagonal_bilstm_without_the_down_shift_reads_the_future():
  h = w = 9
  dep = helpers.dependency(_diag_stack(False), (h, w, 1))[..., 0, :, :, 0]
  order = np.arange(h * w).reshape(h, w)
  assert any((dep[r, c][order >= order[r, c]] != 0).any() for r in range(h) for c in range(w))


def _sigmoid(z):
  return 1.0 / (1.0 + np.exp(-z))


def test_row_lstm_steps_match_numpy_cell():
  """Two rows of a Row LSTM (mask B, k = 3) vs loops over the paper's equations with the same kernels."""
  rng = np.random.default_rng(0)
  height, width, feats, units = 2, 3, 2, 2
  x = rng.normal(size=(1, height, width, feats)).astype(np.float32)
  layer = pixelrnn.RowLSTM(units, 3, 'B')
  layer(tf.constant(x))
  k_is = rng.normal(size=(1, 3, feats, 4 * units)).astype(np.float32)
  b_is = rng.normal(size=(4 * units,)).astype(np.float32)
  k_ss = rng.normal(size=(3, units, 4 * units)).astype(np.float32)
  layer.input_to_state.kernel.assign(k_is)
  layer.input_to_state.bias.assign(b_is)
  layer.state_to_state.kernel.assign(k_ss)
  got = layer(tf.constant(x)).numpy()[0]

  h_prev = np.zeros((width, units))
  c_prev = np.zeros((width, units))
  for r in range(height):
    h_row, c_row = np.zeros((width, units)), np.zeros((width, units))
    for c in range(width):
      pre = b_is.astype(np.float64).copy()
      for dc in (-1, 0):                      # mask B along the row: left neighbour and the centre
        if 0 <= c + dc < width:
          pre += x[0, r, c + dc] @ k_is[0, dc + 1]
      for dc in (-1, 0, 1):                   # unmasked state-to-state over the previous row
        if 0 <= c + dc < width:
          pre += h_prev[c + dc] @ k_ss[dc + 1]
      o, f, i, g = (pre[j * units:(j + 1) * units] for j in range(4))
      c_new = _sigmoid(f) * c_prev[c] + _sigmoid(i) * np.tanh(g)
      h_row[c] = _sigmoid(o) * np.tanh(c_new)
      c_row[c] = c_new
    np.testing.assert_allclose(got[r], h_row, rtol=1e-5, atol=1e-5)
    h_prev, c_prev = h_row, c_row


def test_full_models_run_on_any_height():
  for kind in (pixelrnn.RowLSTMPixelRNN, pixelrnn.DiagonalBiLSTMPixelRNN):
    m = kind((6, 5, 1), levels=3, hidden=4, layers=1, head=8)
    assert m(tf.zeros((2, 6, 5, 1))).shape == (2, 6, 5, 1, 3)
    assert m(tf.zeros((2, 3, 5, 1))).shape == (2, 3, 5, 1, 3)
