"""Gated PixelCNN (spec §7.6 T-GPCNN-1): no blind spot, causal by gradients, the vertical stack's shift-down, the
class condition."""

import numpy as np
import tensorflow as tf

from rlcv_tf.pixel_models import gated_pixelcnn
from tests import pixel_models_helpers as helpers


def _model(shape, layers=3, num_classes=0, shift=True, channels=6):
  tf.keras.utils.set_random_seed(0)
  m = gated_pixelcnn.GatedPixelCNN(shape, levels=3, channels=channels, layers=layers, kernel=3, head=6,
                                   num_classes=num_classes, shift=shift, head_activation='tanh')
  cond = {} if not num_classes else {'condition': tf.one_hot([1], num_classes)}
  m(tf.zeros((1,) + tuple(shape)), **cond)
  for v in m.trainable_variables:
    v.assign(tf.random.normal(v.shape, stddev=0.5))
  return m


def _causal_violations(dep, shape):
  h, w, c = shape
  order = helpers.raster_index(h, w, c)
  bad, empty = 0, 0
  for i_out in np.ndindex(h, w, c):
    i = order[i_out]
    bad += int((dep[i_out][order >= i] != 0).any())
    empty += int(i > 0 and dep[i_out][order < i].sum() == 0)
  return bad, empty


def test_no_blind_spot_and_causal():
  shape = (11, 11, 1)
  dep = helpers.dependency(_model(shape), shape)
  assert dep[8, 5, 0][7, 7, 0] > 0, '(r-1, c+2) must be read: no blind spot'
  # every past pixel inside the 3-layer cone (rows r-3..r-1 at columns c-3..c+3 here, and the row's left part) is read
  for dr in range(1, 4):
    for dc in range(-3, 4):
      assert dep[8, 5, 0][8 - dr, 5 + dc, 0] > 0, (dr, dc)
  assert (dep[8, 5, 0][8, 2:5, 0] > 0).all()
  assert _causal_violations(dep, shape) == (0, 0)


def test_causal_rgb():
  shape = (4, 4, 3)
  dep = helpers.dependency(_model(shape, layers=2), shape)
  assert _causal_violations(dep, shape) == (0, 0)
  assert dep[2, 1, 1][2, 1, 0] > 0 and dep[2, 1, 2][2, 1, 1] > 0


def test_without_the_shift_down_the_vertical_stack_leaks():
  shape = (6, 6, 1)
  dep = helpers.dependency(_model(shape, shift=False), shape)
  bad, _ = _causal_violations(dep, shape)
  assert bad > 0


def test_class_condition_changes_the_logits_and_stays_causal():
  shape = (5, 5, 1)
  m = _model(shape, num_classes=4)
  x = tf.random.normal((1,) + shape)
  a = m(x, condition=tf.one_hot([0], 4)).numpy()
  b = m(x, condition=tf.one_hot([3], 4)).numpy()
  assert np.abs(a - b).max() > 1e-3
  assert (np.abs(a[0, 0, 0] - b[0, 0, 0]) > 0).any()  # even the first pixel sees the label
  dep = helpers.dependency(m, shape, condition=tf.one_hot([2], 4))
  assert _causal_violations(dep, shape) == (0, 0)
