"""The running frame normaliser and the area resize (`rlcv_tf/envs/preprocessing.py`) against slow references."""

import numpy as np
import pytest

from rlcv_tf.envs import preprocessing


def test_normaliser_matches_the_closed_form_weighted_sums():
  """m^_t = sum_i (1 - a) a^(t - i) mu_i / (1 - a^t), written as an explicit sum over the history."""
  rng = np.random.default_rng(0)
  alpha = 0.9                                  # small, so that the weighting matters within 30 frames
  norm = preprocessing.RunningFrameNormalizer(alpha)
  mus, sigmas = [], []
  for t in range(1, 31):
    frame = rng.uniform(0, 1, (6, 7)) * rng.uniform(0.1, 2.0) + rng.normal()
    mean, std = norm.update(frame)
    values = frame.ravel().tolist()
    mu = sum(values) / len(values)
    mus.append(mu)
    sigmas.append((sum((v - mu) ** 2 for v in values) / len(values)) ** 0.5)
    weights = [(1 - alpha) * alpha ** (t - i) for i in range(1, t + 1)]
    ref_mean = sum(w * m for w, m in zip(weights, mus)) / (1 - alpha ** t)
    ref_std = sum(w * s for w, s in zip(weights, sigmas)) / (1 - alpha ** t)
    assert mean == pytest.approx(ref_mean, rel=1e-9, abs=1e-12)
    assert std == pytest.approx(ref_std, rel=1e-9, abs=1e-12)


def test_normaliser_is_unbiased_from_the_first_frame_and_converges():
  norm = preprocessing.RunningFrameNormalizer()            # alpha 0.9999
  assert norm.alpha == 0.9999
  frame = np.full((4, 4), 0.25)
  frame[0, 0] = 0.75
  for _ in range(5):
    mean, std = norm.update(frame)
    # Bias correction: a constant stream gives its own statistics at once, not 1e-4 of them.
    assert mean == pytest.approx(frame.mean()) and std == pytest.approx(frame.std())
  out = norm.apply(frame, mean, std)
  assert out.dtype == np.float32
  assert float(out.mean()) == pytest.approx(0.0, abs=1e-6) and float(out.std()) == pytest.approx(1.0, rel=1e-5)
  flat = preprocessing.RunningFrameNormalizer()
  m, s = flat.update(np.full((3, 3), 0.4))
  np.testing.assert_array_equal(flat.apply(np.full((3, 3), 0.4), m, s), 0.0)   # constant input -> zeros


def test_area_resize_is_the_block_mean_and_inter_area():
  rng = np.random.default_rng(1)
  x = rng.uniform(0, 1, (160, 160)).astype(np.float32)
  small = preprocessing.area_resize(x, (80, 80))
  ref = np.zeros((80, 80))
  for r in range(80):
    for c in range(80):
      ref[r, c] = (x[2 * r, 2 * c] + x[2 * r + 1, 2 * c] + x[2 * r, 2 * c + 1] + x[2 * r + 1, 2 * c + 1]) / 4
  np.testing.assert_allclose(small, ref, atol=1e-6)
  # 96 -> 80 (CarRacing): each output pixel is a weighted mean, so a constant stays constant and the mean is kept.
  y = rng.uniform(0, 1, (96, 96)).astype(np.float32)
  out = preprocessing.area_resize(y, (80, 80))
  assert out.shape == (80, 80)
  assert float(out.mean()) == pytest.approx(float(y.mean()), abs=1e-3)
  np.testing.assert_allclose(preprocessing.area_resize(np.full((96, 96), 0.3, np.float32), (80, 80)), 0.3,
                             atol=1e-6)


def test_gray_uses_bt601_weights():
  rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]], np.uint8)
  np.testing.assert_allclose(preprocessing.rgb_to_gray(rgb)[0],
                             [0.299 * 255, 0.587 * 255, 0.114 * 255, 0.299 * 10 + 0.587 * 20 + 0.114 * 30],
                             rtol=1e-6)


def test_normaliser_rejects_a_bad_alpha():
  with pytest.raises(ValueError, match='alpha'):
    preprocessing.RunningFrameNormalizer(1.0)
