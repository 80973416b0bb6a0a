"""Chapter 7 InfoNCE (Eq. 7.5) against a NumPy double loop, its limits, and the reconstruction reductions (spec A6)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.video import losses


def np_eq_7_5(p_hat, p_true):
  """-sum_{v,t} log exp(p_hat_{v,t} . p_{v,t}) / sum_{n,i} exp(p_hat_{v,t} . p_{n,i}), looped; returns (sum, count)."""
  n_videos, steps, _ = p_hat.shape
  total, count = 0.0, 0
  for v in range(n_videos):
    for t in range(steps):
      positive = math.exp(float(p_hat[v, t] @ p_true[v, t]))
      denominator = 0.0
      for n in range(n_videos):
        for i in range(steps):
          denominator += math.exp(float(p_hat[v, t] @ p_true[n, i]))
      total -= math.log(positive / denominator)
      count += 1
  return total, count


def np_accuracy(p_hat, p_true):
  a = p_hat.reshape(-1, p_hat.shape[-1])
  b = p_true.reshape(-1, p_true.shape[-1])
  hits = 0
  for r in range(a.shape[0]):
    scores = [float(a[r] @ b[c]) for c in range(b.shape[0])]
    hits += int(np.argmax(scores) == r)
  return hits / a.shape[0]


@pytest.mark.parametrize('shape', [(4, 7, 5), (1, 3, 2), (3, 1, 6)])
def test_info_nce_matches_numpy_loop(shape):
  rng = np.random.default_rng(sum(shape))
  p_hat = rng.normal(size=shape)
  p_true = p_hat + 0.8 * rng.normal(size=shape)
  total, count = np_eq_7_5(p_hat, p_true)
  np.testing.assert_allclose(losses.info_nce(p_hat, p_true).numpy(), total / count, rtol=1e-10)
  np.testing.assert_allclose(losses.info_nce(p_hat, p_true, reduction='sum').numpy(), total, rtol=1e-10)
  f32 = losses.info_nce(p_hat.astype(np.float32), p_true.astype(np.float32))
  assert f32.dtype == tf.float32 and f32.shape == ()
  np.testing.assert_allclose(f32.numpy(), total / count, rtol=1e-5)
  np.testing.assert_allclose(losses.info_nce_accuracy(p_hat, p_true).numpy(), np_accuracy(p_hat, p_true))


def test_same_video_other_steps_are_negatives():
  # N = 1: only the video's own other time steps are negatives, so the loss is neither 0 nor log 1.
  p_true = np.eye(3)[np.newaxis] * 2.0  # [1, 3, 3]
  p_hat = p_true.copy()
  value = losses.info_nce(p_hat, p_true).numpy()
  np.testing.assert_allclose(value, -math.log(math.exp(4.0) / (math.exp(4.0) + 2.0)), rtol=1e-12)


def test_zero_prediction_gives_log_of_candidate_count():
  rng = np.random.default_rng(0)
  for n, steps in ((4, 7), (64, 7), (1, 5)):
    p_true = rng.normal(size=(n, steps, 16)).astype(np.float32)
    value = losses.info_nce(np.zeros_like(p_true), p_true).numpy()
    assert value == pytest.approx(math.log(n * steps), rel=1e-7)


def test_perfect_prediction_and_gradients():
  p_true = np.eye(6).reshape(2, 3, 6) * 50.0 / np.sqrt(50.0)  # orthogonal rows, p_hat . p = 50
  assert losses.info_nce(p_true, p_true).numpy() < 1e-6
  assert losses.info_nce_accuracy(p_true, p_true).numpy() == 1.0
  rng = np.random.default_rng(1)
  p_hat = tf.Variable(rng.normal(size=(3, 4, 5)))
  target = tf.constant(rng.normal(size=(3, 4, 5)))
  with tf.GradientTape() as tape:
    value = losses.info_nce(p_hat, target)
  grad = tape.gradient(value, p_hat).numpy()
  eps, numeric = 1e-6, np.zeros_like(grad)
  base = p_hat.numpy()
  for idx in np.ndindex(base.shape):
    plus, minus = base.copy(), base.copy()
    plus[idx] += eps
    minus[idx] -= eps
    numeric[idx] = (np_eq_7_5(plus, target.numpy())[0] - np_eq_7_5(minus, target.numpy())[0]) / (2 * eps * 12)
  np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


def test_info_nce_in_tf_function_with_dynamic_batch():
  fn = tf.function(losses.info_nce, input_signature=[tf.TensorSpec([None, 7, 4], tf.float32)] * 2)
  rng = np.random.default_rng(2)
  for n in (2, 5):
    a, b = rng.normal(size=(2, n, 7, 4)).astype(np.float32)
    total, count = np_eq_7_5(a.astype(np.float64), b.astype(np.float64))
    np.testing.assert_allclose(fn(a, b).numpy(), total / count, rtol=1e-5)


def test_info_nce_rejects_bad_shapes():
  with pytest.raises(ValueError):
    losses.info_nce(np.zeros((2, 3, 4)), np.zeros((2, 3, 5)))
  with pytest.raises(ValueError):
    losses.info_nce(np.zeros((6, 4)), np.zeros((6, 4)))
  with pytest.raises(ValueError):
    losses.info_nce(np.zeros((2, 3, 4)), np.zeros((2, 3, 4)), reduction='none')


def test_reconstruction_reductions():
  rng = np.random.default_rng(3)
  x, y = rng.normal(size=(2, 3, 4, 5, 6, 2))  # videos [B, T, H, W, C]
  sq = (x - y) ** 2
  np.testing.assert_allclose(losses.reconstruction(x, y).numpy(), sq.mean(), rtol=1e-12)
  per_frame = np.array([[sq[b, t].sum() for t in range(4)] for b in range(3)])
  np.testing.assert_allclose(losses.reconstruction(x, y, reduction='sum').numpy(), per_frame.mean(), rtol=1e-12)
  np.testing.assert_allclose(losses.reconstruction(x, y, 'sum', event_rank=4).numpy(), sq.sum() / 3, rtol=1e-12)
  half = losses.reconstruction(tf.cast(x, tf.float16), tf.cast(y, tf.float16))
  assert half.dtype == tf.float32
  with pytest.raises(ValueError):
    losses.reconstruction(x, y, reduction='max')
