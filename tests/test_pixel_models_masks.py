"""Masked convolutions and PixelCNN (seed 004, spec §7.6 T-MASK-1/2, T-PCNN-1/2/3, T-LIK-1).

References: a mask written by hand from the rule with NumPy loops; causality by gradients (exact zeros)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.pixel_models import likelihood
from rlcv_tf.pixel_models import masked_conv
from rlcv_tf.pixel_models import pixelcnn
from tests import pixel_models_helpers as helpers


def _mask_by_hand(k, n_in, n_out, mask_type, groups):
  m = np.zeros((k, k, n_in, n_out))
  c = k // 2
  for i in range(k):
    for j in range(k):
      for a in range(n_in):
        for b in range(n_out):
          if i < c or (i == c and j < c):
            m[i, j, a, b] = 1
          elif i == c and j == c:
            ga, gb = a * groups // n_in, b * groups // n_out
            m[i, j, a, b] = (ga < gb) if mask_type == 'A' else (ga <= gb)
  return m


def test_3x3_masks_exact():
  a = masked_conv.make_mask(3, 1, 1, 'A')[..., 0, 0]
  b = masked_conv.make_mask(3, 1, 1, 'B')[..., 0, 0]
  np.testing.assert_array_equal(a, [[1, 1, 1], [1, 0, 0], [0, 0, 0]])
  np.testing.assert_array_equal(b, [[1, 1, 1], [1, 1, 0], [0, 0, 0]])


@pytest.mark.parametrize('k', [3, 5, 7])
@pytest.mark.parametrize('mask_type', ['A', 'B'])
@pytest.mark.parametrize('n_in,n_out,groups', [(1, 4, 1), (3, 6, 3), (6, 3, 3), (6, 9, 3)])
def test_masks_match_hand_rule(k, mask_type, n_in, n_out, groups):
  np.testing.assert_array_equal(masked_conv.make_mask(k, n_in, n_out, mask_type, groups),
                                _mask_by_hand(k, n_in, n_out, mask_type, groups))


def test_rgb_centre_tap():
  a = masked_conv.make_mask(3, 3, 3, 'A', 3)[1, 1]
  b = masked_conv.make_mask(3, 3, 3, 'B', 3)[1, 1]
  np.testing.assert_array_equal(a, [[0, 1, 1], [0, 0, 1], [0, 0, 0]])  # [g_in, g_out]: R->G, R->B, G->B
  np.testing.assert_array_equal(b, [[1, 1, 1], [0, 1, 1], [0, 0, 1]])
  assert (masked_conv.make_mask(3, 3, 3, 'A', 3)[0] == 1).all()  # off-centre past taps connect all groups


def test_mask_is_applied_in_call_before_any_update():
  layer = masked_conv.MaskedConv2D(1, 3, 'A')
  x = tf.zeros((1, 5, 5, 1))
  layer(x)
  layer.kernel.assign(tf.ones_like(layer.kernel))
  x = np.zeros((1, 5, 5, 1), np.float32)
  x[0, 2, 2, 0] = 1.0  # a centre pixel must not reach its own output (type A), nor the one to its left
  y = layer(tf.constant(x)).numpy()[0, :, :, 0]
  assert y[2, 2] == 0 and y[2, 1] == 0 and y[2, 3] == 1 and y[3, 2] == 1


def _tanh_pixelcnn(shape, kernel=7, blocks=2, hidden=6, levels=4):
  tf.keras.utils.set_random_seed(0)
  m = pixelcnn.PixelCNN(shape, levels=levels, hidden=hidden, blocks=blocks, first_kernel=kernel, head=6,
                        activation='tanh')
  m(tf.zeros((1,) + tuple(shape)))
  for v in m.trainable_variables:  # non-zero biases too, so no unit sits at an accidental zero
    v.assign(tf.random.normal(v.shape, stddev=0.5))
  return m


def _check_causal(dep, shape):
  h, w, c = shape
  order = helpers.raster_index(h, w, c)
  for i_out in np.ndindex(h, w, c):
    i = order[i_out]
    d = dep[i_out]
    assert (d[order >= i] == 0).all(), f'output {i_out} reads its present or future'
    if i > 0:
      assert d[order < i].sum() > 0, f'output {i_out} reads nothing of its past'


def test_pixelcnn_causal_single_channel():
  shape = (8, 8, 1)
  _check_causal(helpers.dependency(_tanh_pixelcnn(shape), shape), shape)


def test_pixelcnn_causal_rgb():
  shape = (4, 4, 3)
  dep = helpers.dependency(_tanh_pixelcnn(shape), shape)
  _check_causal(dep, shape)
  r, c = 2, 1
  assert (dep[r, c, 0][r, c] == 0).all()                                   # R reads none of its own pixel
  assert dep[r, c, 1][r, c, 0] > 0 and (dep[r, c, 1][r, c, 1:] == 0).all()  # G reads R only
  assert (dep[r, c, 2][r, c, :2] > 0).all() and dep[r, c, 2][r, c, 2] == 0  # B reads R and G


def test_pixelcnn_has_a_blind_spot():
  """Slide erratum (S4:L243-246): PixelCNN has no full dependency field; (r-1, c+2) is never read from (r, c)."""
  shape = (11, 11, 1)
  dep = helpers.dependency(_tanh_pixelcnn(shape, kernel=3, blocks=3), shape)
  assert dep[8, 5, 0][7, 7, 0] == 0.0
  assert dep[8, 5, 0][7, 6, 0] > 0 and dep[8, 5, 0][6, 7, 0] > 0  # its neighbours are read


def test_uniform_logits_give_8_bits_per_dim():
  x = tf.constant(np.random.default_rng(0).integers(0, 256, (3, 4, 5, 3)), tf.int32)
  nll = likelihood.nll_nats(tf.zeros((3, 4, 5, 3, 256)), x)
  np.testing.assert_allclose(nll.numpy(), 4 * 5 * 3 * math.log(256), rtol=1e-6)
  np.testing.assert_allclose(likelihood.bits_per_dim(nll, 4 * 5 * 3).numpy(), 8.0, rtol=1e-6)


def test_nll_matches_hand_softmax():
  rng = np.random.default_rng(1)
  logits = rng.normal(size=(2, 3, 3, 1, 4)).astype(np.float32)
  x = rng.integers(0, 4, (2, 3, 3, 1))
  p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  expected = -np.log(np.take_along_axis(p, x[..., None], -1))[..., 0].sum(axis=(1, 2, 3))
  np.testing.assert_allclose(likelihood.nll_nats(tf.constant(logits), tf.constant(x)).numpy(), expected, rtol=1e-5)
  np.testing.assert_allclose(likelihood.bits_per_dim(tf.constant(expected), 9).numpy(), expected / 9 / np.log(2))


def test_output_reshape_follows_the_group_convention():
  """The logits of colour ch are channels [ch * levels, (ch + 1) * levels) of the last layer (contiguous groups)."""
  y = tf.reshape(tf.range(2 * 3 * 4, dtype=tf.float32), (1, 1, 2, 12))
  out = masked_conv.reshape_logits(y, 3, 4).numpy()
  np.testing.assert_array_equal(out[0, 0, 1, 2], [20, 21, 22, 23])
