"""Chapter 7 affine grid and bilinear sampler against scipy, rolls and finite differences (spec ch7 §3.2, §9)."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

from rlcv_tf.video import stn


def np_affine_grid(theta, h, w):
  """(x, y) source points from the formula, one output pixel at a time (pixel centres at (2i+1)/n - 1)."""
  b = theta.shape[0]
  grid = np.zeros((b, h, w, 2))
  for n in range(b):
    for r in range(h):
      for c in range(w):
        xn, yn = (2 * c + 1) / w - 1, (2 * r + 1) / h - 1
        grid[n, r, c] = theta[n] @ np.array([xn, yn, 1.0])
  return grid


def scipy_sample(x, grid):
  """Reference sampler: map_coordinates(order=1, mode='grid-constant') per image and channel."""
  b, in_h, in_w, ch = x.shape
  out = np.zeros(grid.shape[:3] + (ch,))
  for n in range(b):
    cols = ((grid[n, ..., 0] + 1) * in_w - 1) / 2
    rows = ((grid[n, ..., 1] + 1) * in_h - 1) / 2
    for k in range(ch):
      out[n, ..., k] = ndimage.map_coordinates(x[n, ..., k], [rows, cols], order=1, mode='grid-constant', cval=0.0)
  return out


def random_theta(rng, b):
  """Rotations, scales, shears and shifts large enough to move parts of the image outside."""
  ang = rng.uniform(-0.8, 0.8, b)
  scale = rng.uniform(0.6, 1.4, (b, 2))
  shear = rng.uniform(-0.3, 0.3, b)
  theta = np.zeros((b, 2, 3))
  theta[:, 0, 0] = scale[:, 0] * np.cos(ang)
  theta[:, 0, 1] = -scale[:, 1] * np.sin(ang) + shear
  theta[:, 1, 0] = scale[:, 0] * np.sin(ang)
  theta[:, 1, 1] = scale[:, 1] * np.cos(ang)
  theta[:, :, 2] = rng.uniform(-0.5, 0.5, (b, 2))
  return theta


def test_affine_grid_matches_formula_and_pixel_centres():
  rng = np.random.default_rng(0)
  theta = random_theta(rng, 3)
  got = stn.affine_grid(tf.constant(theta, tf.float64), 5, 7).numpy()
  assert got.shape == (3, 5, 7, 2)
  np.testing.assert_allclose(got, np_affine_grid(theta, 5, 7), atol=1e-12)
  ident = stn.affine_grid(stn.identity_theta(1), 4, 6).numpy()[0]
  np.testing.assert_allclose(ident[0, :, 0], [-5 / 6, -3 / 6, -1 / 6, 1 / 6, 3 / 6, 5 / 6], atol=1e-6)
  np.testing.assert_allclose(ident[:, 0, 1], [-0.75, -0.25, 0.25, 0.75], atol=1e-6)


@pytest.mark.parametrize('out_size', [(9, 11), (6, 5)])
def test_sampler_matches_scipy_grid_constant(out_size):
  rng = np.random.default_rng(1)
  x = rng.normal(size=(4, 9, 11, 3))
  theta = random_theta(rng, 4)
  grid = np_affine_grid(theta, *out_size)
  want = scipy_sample(x, grid)
  got = stn.bilinear_sample(tf.constant(x, tf.float32), tf.constant(grid, tf.float32)).numpy()
  assert got.shape == (4,) + out_size + (3,)
  np.testing.assert_allclose(got, want, atol=2e-5)
  # Zero padding really is exercised: some samples fall entirely outside, some within a pixel of the border.
  cols = ((grid[..., 0] + 1) * 11 - 1) / 2
  assert (cols < -1).any() and ((cols > -1) & (cols < 0)).any()
  warped = stn.warp(tf.constant(x, tf.float64), tf.constant(theta, tf.float64)).numpy()
  np.testing.assert_allclose(warped, scipy_sample(x, np_affine_grid(theta, 9, 11)), atol=1e-10)


def test_identity_theta_returns_input_exactly():
  x = np.random.default_rng(2).normal(size=(3, 8, 10, 4)).astype(np.float32)
  out = stn.warp(x, stn.identity_theta(3)).numpy()
  np.testing.assert_allclose(out, x, rtol=0, atol=1e-6)


@pytest.mark.parametrize('dx,dy', [(1, 0), (0, -2), (3, 2), (-4, 1)])
def test_integer_shift_is_a_zero_filled_roll(dx, dy):
  x = np.random.default_rng(3).normal(size=(2, 7, 9, 2)).astype(np.float32)
  out = stn.warp(x, tf.tile(stn.shift_theta(dx, dy, 7, 9), [2, 1, 1])).numpy()
  want = np.roll(x, shift=(-dy, -dx), axis=(1, 2))  # out[r, c] = x[r + dy, c + dx]
  if dx > 0:
    want[:, :, -dx:] = 0
  elif dx < 0:
    want[:, :, :-dx] = 0
  if dy > 0:
    want[:, -dy:] = 0
  elif dy < 0:
    want[:, :-dy] = 0
  np.testing.assert_allclose(out, want, atol=1e-5)


def test_far_outside_and_non_finite_coordinates_give_zeros():
  x = tf.ones((1, 4, 4, 1))
  grid = tf.constant([[[[5.0, 0.0], [-3.0, 0.0], [0.0, 1e30], [0.0, -1e30]]]])
  np.testing.assert_array_equal(stn.bilinear_sample(x, grid).numpy(), np.zeros((1, 1, 4, 1)))
  nan_grid = tf.constant([[[[np.nan, 0.0]]]], tf.float32)
  out = stn.bilinear_sample(x, nan_grid)  # must not gather out of range
  assert out.shape == (1, 1, 1, 1)


def central_difference(f, value, eps):
  grad = np.zeros_like(value)
  for idx in np.ndindex(value.shape):
    plus, minus = value.copy(), value.copy()
    plus[idx] += eps
    minus[idx] -= eps
    grad[idx] = (f(plus) - f(minus)) / (2 * eps)
  return grad


def test_gradients_match_central_differences_float64():
  rng = np.random.default_rng(4)
  x = rng.normal(size=(2, 5, 6, 2))
  theta = random_theta(rng, 2) * 0.9
  weights = rng.normal(size=(2, 5, 6, 2))  # a random linear read-out, so every output element matters

  def loss(x_val, theta_val):
    return tf.reduce_sum(weights * stn.warp(tf.constant(x_val), tf.constant(theta_val)))

  x_t, theta_t = tf.constant(x), tf.constant(theta)
  with tf.GradientTape() as tape:
    tape.watch([x_t, theta_t])
    value = tf.reduce_sum(weights * stn.warp(x_t, theta_t))
  gx, gtheta = tape.gradient(value, [x_t, theta_t])
  num_theta = central_difference(lambda t: loss(x, t).numpy(), theta, 1e-6)
  num_x = central_difference(lambda v: loss(v, theta).numpy(), x, 1e-6)
  np.testing.assert_allclose(gtheta.numpy(), num_theta, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(gx.numpy(), num_x, rtol=1e-4, atol=1e-6)
  assert np.abs(gtheta.numpy()).min() > 0  # theta really receives gradient


def test_tf_function_dynamic_batch_and_half_precision():
  fn = tf.function(stn.warp, input_signature=[tf.TensorSpec([None, 6, 8, 3], tf.float32),
                                               tf.TensorSpec([None, 2, 3], tf.float32)])
  rng = np.random.default_rng(5)
  for b in (1, 3):
    x = rng.normal(size=(b, 6, 8, 3)).astype(np.float32)
    theta = random_theta(rng, b).astype(np.float32)
    np.testing.assert_allclose(fn(x, theta).numpy(), scipy_sample(x, np_affine_grid(theta, 6, 8)), atol=2e-5)
  x = rng.uniform(size=(2, 6, 8, 3)).astype(np.float32)
  theta = random_theta(rng, 2).astype(np.float32)
  full = stn.warp(x, theta).numpy()
  for dtype in (tf.float16, tf.bfloat16):
    half = stn.warp(tf.cast(x, dtype), tf.cast(theta, dtype))
    assert half.dtype == dtype
    np.testing.assert_allclose(tf.cast(half, tf.float32).numpy(), full, atol=0.05)
