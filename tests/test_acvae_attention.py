"""The acVAE attention operator, its regularisers and Table 6.1 read-out against NumPy loops (spec B2-B3, §8-A20)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.acvae import attention

T, N = 4, 6


def np_softmax_columns(w):
  """M[t, n] = exp(W[t, n]) / sum_s exp(W[s, n]), written as a loop in float64."""
  w = np.asarray(w, np.float64)
  m = np.zeros_like(w)
  for n in range(w.shape[1]):
    e = [math.exp(w[t, n]) for t in range(w.shape[0])]
    for t in range(w.shape[0]):
      m[t, n] = e[t] / sum(e)
  return m


def np_entropy_loss(w, weight):
  """weight * mean_n -sum_t M log max(M, 1e-7) from W, float64."""
  m = np_softmax_columns(w)
  h = [-sum(m[t, n] * math.log(max(m[t, n], 1e-7)) for t in range(m.shape[0])) for n in range(m.shape[1])]
  return weight * sum(h) / len(h)


def columns_match_softmax(m, w, tol=1e-6):
  """Each column sums to 1 and M equals the NumPy column softmax of W."""
  m = np.asarray(m, np.float64)
  return bool(np.all(np.abs(m.sum(axis=0) - 1.0) < tol) and np.allclose(m, np_softmax_columns(w), atol=tol))


def make_layer(seed=3, scale=None):
  layer = attention.AttributeAttention(T, N, seed=seed)
  if scale is not None:
    layer.w.assign(np.random.default_rng(seed).normal(0.0, scale, (T, N)).astype(np.float32))
  return layer


def test_mask_columns_sum_to_one_and_match_numpy_softmax():
  layer = make_layer(scale=2.0)
  m = layer.mask().numpy()
  assert m.shape == (T, N)
  assert columns_match_softmax(m, layer.w.numpy())


def test_break_check_softmax_over_attributes_fails_the_column_test():
  layer = make_layer(scale=2.0)
  wrong = tf.nn.softmax(layer.w, axis=1).numpy()   # rows sum to 1 instead of columns
  assert not columns_match_softmax(wrong, layer.w.numpy())


def test_init_is_uniform_within_torch_bound_and_seeded():
  bound = 1.0 / math.sqrt(T * N)
  w = make_layer(seed=5).w.numpy()
  assert np.all(np.abs(w) <= bound)
  assert np.abs(w).max() > 0.5 * bound and w.std() > 0.2 * bound
  np.testing.assert_array_equal(w, make_layer(seed=5).w.numpy())
  assert not np.array_equal(w, make_layer(seed=6).w.numpy())


def test_call_matches_python_loop_and_steps_sum_to_a():
  layer = make_layer(scale=1.5)
  rng = np.random.default_rng(0)
  a = rng.choice([-1.0, 1.0], size=(3, N)).astype(np.float32)
  a_t = layer(a).numpy()
  m = layer.mask().numpy()
  assert a_t.shape == (3, T, N)
  expected = np.zeros((3, T, N))
  for b in range(3):
    for t in range(T):
      for n in range(N):
        expected[b, t, n] = a[b, n] * m[t, n]
  np.testing.assert_allclose(a_t, expected, atol=1e-7)
  np.testing.assert_allclose(a_t.sum(axis=1), a, atol=1e-6)


def test_gradient_reaches_w():
  layer = make_layer()
  a = np.ones((2, N), np.float32)
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(tf.square(layer(a)))
  grad = tape.gradient(loss, layer.w)
  assert grad is not None and float(tf.reduce_max(tf.abs(grad))) > 0


def test_zero_weights_give_log_t_entropy_for_every_attribute():
  layer = make_layer()
  layer.w.assign(np.zeros((T, N), np.float32))
  h = attention.entropy_per_attribute(layer.mask()).numpy()
  np.testing.assert_allclose(h, np.full(N, math.log(T)), atol=1e-6)
  assert float(attention.entropy_loss(layer.mask(), 0.05)) == pytest.approx(0.05 * math.log(T), abs=1e-6)


def test_entropy_of_hand_made_columns():
  m = np.array([[1.0, 0.5, 0.25], [0.0, 0.5, 0.25], [0.0, 0.0, 0.25], [0.0, 0.0, 0.25]], np.float32)
  np.testing.assert_allclose(attention.entropy_per_attribute(m).numpy(), [0.0, math.log(2), math.log(4)], atol=1e-6)
  assert float(attention.entropy_loss(m)) == 0.0   # default weight 0


def test_entropy_gradient_matches_central_finite_differences():
  rng = np.random.default_rng(1)
  w0 = rng.normal(0.0, 1.0, (T, N))
  w = tf.Variable(w0.astype(np.float32))
  with tf.GradientTape() as tape:
    loss = attention.entropy_loss(attention.attention_mask(w), 0.05)
  grad = tape.gradient(loss, w).numpy()
  assert float(loss) == pytest.approx(np_entropy_loss(w0, 0.05), abs=1e-6)
  eps = 1e-5
  fd = np.zeros_like(w0)
  for t in range(T):
    for n in range(N):
      plus, minus = w0.copy(), w0.copy()
      plus[t, n] += eps
      minus[t, n] -= eps
      fd[t, n] = (np_entropy_loss(plus, 0.05) - np_entropy_loss(minus, 0.05)) / (2 * eps)
  np.testing.assert_allclose(grad, fd, atol=2e-6)
  assert np.abs(fd).max() > 1e-3


def test_even_load_matches_loop():
  rng = np.random.default_rng(2)
  w = rng.normal(0.0, 2.0, (T, N))
  m = np_softmax_columns(w)
  expected = 0.0
  for t in range(T):
    load = sum(m[t, n] for n in range(N))
    expected += (load - N / T) ** 2
  got = float(attention.even_load_loss(m.astype(np.float32), 0.05))
  assert got == pytest.approx(0.05 * expected, rel=1e-5)
  assert expected > 1e-2
  uniform = np.full((T, N), 1.0 / T, np.float32)
  assert float(attention.even_load_loss(uniform, 1.0)) == pytest.approx(0.0, abs=1e-10)
  assert float(attention.even_load_loss(m.astype(np.float32))) == 0.0   # default weight 0


def test_attention_table_on_hand_made_mask():
  names = ['Male', 'Smiling', 'Eyeglasses', 'Wearing_Hat', 'Bangs']
  m = np.array([[0.9, 0.1, 0.2, 0.1, 0.0],
                [0.05, 0.1, 0.6, 0.1, 0.0],
                [0.05, 0.8, 0.2, 0.1, 0.0],
                [0.0, 0.0, 0.0, 0.7, 1.0]])
  per_attribute = attention.attribute_assignment(m, names)
  assert [(r['attribute'], r['step']) for r in per_attribute] == [
      ('Male', 1), ('Smiling', 3), ('Eyeglasses', 2), ('Wearing_Hat', 4), ('Bangs', 4)]
  assert [r['max_weight'] for r in per_attribute] == pytest.approx([0.9, 0.8, 0.6, 0.7, 1.0])
  rows = attention.attention_table(m, names)
  assert [(r['step'], r['attributes'], r['count']) for r in rows] == [
      (1, ['Male'], 1), (2, ['Eyeglasses'], 1), (3, ['Smiling'], 1), (4, ['Wearing_Hat', 'Bangs'], 2)]
  text = attention.format_attention_table(m, names)
  assert '   4 | Wearing_Hat (0.70), Bangs (1.00)' in text
  assert text.endswith('attributes per step: 1/1/1/2')


def test_attention_table_keeps_empty_steps_and_first_step_on_ties():
  m = np.array([[0.5, 0.2], [0.5, 0.8], [0.0, 0.0]])
  rows = attention.attention_table(m)
  assert [(r['step'], r['attributes']) for r in rows] == [(1, ['attr_0']), (2, ['attr_1']), (3, [])]
  assert '   3 | -' in attention.format_attention_table(m)


def test_mask_image_is_a_t_by_n_heat_map(tmp_path):
  m = np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 0.5]], np.float32)
  img = attention.mask_image(m)
  assert img.dtype == np.uint8 and img.shape == (2, 3, 3)
  np.testing.assert_array_equal(img[..., 0], [[0, 255, 128], [255, 0, 128]])
  assert attention.mask_image(m, scale=4).shape == (8, 12, 3)
  from PIL import Image  # pylint: disable=g-import-not-at-top
  path = attention.save_mask_png(m, str(tmp_path / 'samples' / 'attention.png'), scale=5)
  assert np.asarray(Image.open(path)).shape == (10, 15, 3)


def test_bad_inputs_raise_clear_errors():
  layer = make_layer()
  with pytest.raises(ValueError, match='num_attributes'):
    layer(np.ones((2, N + 1), np.float32))
  with pytest.raises(ValueError, match='names'):
    attention.attention_table(np.full((T, N), 1.0 / T), names=['a'])
  with pytest.raises(ValueError, match=r'\[T, N\]'):
    attention.entropy_per_attribute(np.ones(N, np.float32))
  with pytest.raises(ValueError, match='num_steps'):
    attention.AttributeAttention(0, N)
