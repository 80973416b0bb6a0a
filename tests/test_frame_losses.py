"""The lecture's frame losses (rlcv_tf.core.frame_losses; spec seeds003_004 §2.7, T-FRAME-1): L1 / L2 on hand arrays,
the gradient-difference loss vs a NumPy double loop, 0 for a constant shift, > 0 for a blur."""

import numpy as np
import pytest
from scipy import ndimage

from rlcv_tf.core import frame_losses


def test_l1_l2_on_hand_arrays():
  target = np.zeros((2, 2, 2, 1), np.float32)
  prediction = np.array([[[[1], [-2]], [[0], [0]]], [[[0], [0]], [[3], [0]]]], np.float32)
  # Per image: |1| + |-2| = 3 and 3; squares 1 + 4 = 5 and 9.
  assert float(frame_losses.l1_loss(prediction, target)) == pytest.approx(3.0)
  assert float(frame_losses.l2_loss(prediction, target)) == pytest.approx(7.0)
  assert float(frame_losses.l1_loss(prediction, target, reduction='mean')) == pytest.approx(6.0 / 8)
  assert float(frame_losses.l2_loss(prediction, target, reduction='mean')) == pytest.approx(14.0 / 8)
  with pytest.raises(ValueError, match='reduction'):
    frame_losses.l1_loss(prediction, target, reduction='max')
  with pytest.raises(ValueError, match='same shape'):
    frame_losses.l2_loss(prediction, target[:, :1])


def gdl_numpy(y_hat, y, alpha):
  """Mathieu et al. Eq. 5, summed per image with explicit loops, averaged over the batch."""
  total = 0.0
  b, h, w, c = y.shape
  for n in range(b):
    for k in range(c):
      for i in range(h):
        for j in range(w):
          if i > 0:
            true, pred = abs(y[n, i, j, k] - y[n, i - 1, j, k]), abs(y_hat[n, i, j, k] - y_hat[n, i - 1, j, k])
            total += abs(true - pred) ** alpha
          if j > 0:
            true, pred = abs(y[n, i, j - 1, k] - y[n, i, j, k]), abs(y_hat[n, i, j - 1, k] - y_hat[n, i, j, k])
            total += abs(true - pred) ** alpha
  return total / b


@pytest.mark.parametrize('alpha', [1.0, 2.0])
def test_gdl_equals_the_loop_is_zero_for_a_shift_and_positive_for_a_blur(alpha):
  rng = np.random.default_rng(0)
  y = rng.uniform(size=(2, 6, 5, 3)).astype(np.float32)
  y_hat = rng.uniform(size=(2, 6, 5, 3)).astype(np.float32)
  assert float(frame_losses.gdl_loss(y_hat, y, alpha)) == pytest.approx(gdl_numpy(y_hat, y, alpha), rel=1e-5)
  assert float(frame_losses.gdl_loss(y + 0.37, y, alpha)) == pytest.approx(0.0, abs=1e-5)
  blurred = ndimage.uniform_filter(y, size=(1, 3, 3, 1), mode='nearest')
  assert float(frame_losses.gdl_loss(blurred, y, alpha)) > 0.1
