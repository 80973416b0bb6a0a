"""Chapter 5 building blocks (spec ch5 §A2.1, §7.1 items 1-4, §7.3 items 3, 8, 24): CReLU, AddBias, minibatch
discrimination against a NumPy loop written from Salimans et al.'s formula, L2 normalisation, the Torch BN mapping,
the Torch initialiser bounds and the channel-block split/merge."""

import numpy as np
import pytest
import tensorflow as tf

import keras

from rlcv_tf.core.vaegan import blocks
from rlcv_tf.core.vaegan import layers


def test_crelu_doubles_channels_and_matches_definition():
  x = np.random.default_rng(0).normal(size=(2, 3, 3, 5)).astype(np.float32)
  y = layers.CReLU()(x).numpy()
  assert y.shape == (2, 3, 3, 10)
  np.testing.assert_array_equal(y[..., :5], np.maximum(x, 0))
  np.testing.assert_array_equal(y[..., 5:], np.maximum(-x, 0))


def test_add_bias_shape_init_range_and_trainable():
  layer = layers.AddBias((4, 4, 64))
  x = np.zeros((3, 4, 4, 64), np.float32)
  y = layer(x).numpy()
  bias = layer.bias.numpy()
  assert bias.shape == (4, 4, 64) and len(layer.trainable_weights) == 1
  assert np.all(np.abs(bias) <= 0.01) and bias.std() > 0.004      # U(-0.01, 0.01): std 0.0058
  np.testing.assert_array_equal(y, np.broadcast_to(bias, y.shape))
  assert layers.AddBias.from_config(layer.get_config()).bias_shape == (4, 4, 64)


def mbd_reference(x, kernel, num_kernels, kernel_dim):
  """Salimans et al. 2016 minibatch features, written as the explicit double loop of the paper."""
  n = x.shape[0]
  m = (x @ kernel).reshape(n, num_kernels, kernel_dim)
  o = np.zeros((n, num_kernels))
  for i in range(n):
    for j in range(n):
      if j != i:
        o[i] += np.exp(-np.abs(m[i] - m[j]).sum(-1))
  return np.concatenate([x, o], -1)


def test_minibatch_discrimination_hand_computed_three_examples():
  # A = 2 inputs, B = 2 kernels of C = 2 dims; W chosen so M_i is easy to write down: M_i = [[x0, x1], [x0+x1, 0]].
  layer = layers.MinibatchDiscrimination(2, 2)
  x = np.array([[0.0, 0.0], [1.0, 0.5], [-0.5, 2.0]], np.float32)
  layer.build(x.shape)
  kernel = np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0]], np.float32)
  layer.kernel.assign(kernel)
  out = layer(x).numpy()
  # By hand: M_0 = [[0, 0], [0, 0]], M_1 = [[1, .5], [1.5, 0]], M_2 = [[-.5, 2], [1.5, 0]].
  # kernel 0: L1(0,1) = 1.5, L1(0,2) = 2.5, L1(1,2) = 1.5 + 1.5 = 3.0; kernel 1: L1(0,1) = 1.5, L1(0,2) = 1.5,
  # L1(1,2) = 0.
  e = np.exp
  expected_o = np.array([[e(-1.5) + e(-2.5), e(-1.5) + e(-1.5)],
                         [e(-1.5) + e(-3.0), e(-1.5) + e(0.0)],
                         [e(-2.5) + e(-3.0), e(-1.5) + e(0.0)]])
  np.testing.assert_allclose(out[:, 2:], expected_o, atol=1e-6)
  np.testing.assert_array_equal(out[:, :2], x)
  np.testing.assert_allclose(out, mbd_reference(x, kernel, 2, 2), atol=1e-6)


def test_minibatch_discrimination_equivariance_identical_examples_and_width():
  rng = np.random.default_rng(1)
  layer = layers.MinibatchDiscrimination(100, 5)
  x = rng.normal(size=(6, 32)).astype(np.float32)
  out = layer(x).numpy()
  assert out.shape == (6, 132)
  np.testing.assert_allclose(out, mbd_reference(x, layer.kernel.numpy(), 100, 5), rtol=1e-5, atol=1e-6)
  perm = rng.permutation(6)
  np.testing.assert_allclose(layer(x[perm]).numpy(), out[perm], rtol=1e-6, atol=1e-6)
  twins = np.concatenate([x[:1], x[:1], x[1:3]], 0)
  twin_out = layer(twins).numpy()
  np.testing.assert_array_equal(twin_out[0], twin_out[1])
  # Init N(0, 0.05^2).
  assert abs(float(layer.kernel.numpy().std()) - 0.05) < 0.005


def test_minibatch_discrimination_in_tf_function_with_unknown_batch():
  layer = layers.MinibatchDiscrimination(3, 2)
  layer.build((None, 4))
  fn = tf.function(layer, input_signature=[tf.TensorSpec((None, 4), tf.float32)])
  x = np.random.default_rng(2).normal(size=(5, 4)).astype(np.float32)
  np.testing.assert_allclose(fn(x).numpy(), layer(x).numpy(), atol=1e-6)


def test_l2_normalize():
  layer = layers.L2Normalize()
  x = np.array([[3.0, 4.0], [0.0, 0.0]], np.float32)
  np.testing.assert_allclose(layer(x).numpy(), [[0.6, 0.8], [0.0, 0.0]], atol=1e-7)


def test_torch_bn_mapping():
  bn = layers.torch_bn(eps=1e-6, mom=0.9)
  assert isinstance(bn, keras.layers.BatchNormalization)
  assert bn.epsilon == pytest.approx(1e-6) and bn.momentum == pytest.approx(0.1)
  bn_mnist = layers.torch_bn(eps=1e-5, mom=0.1)
  assert bn_mnist.momentum == pytest.approx(0.9)
  # Semantics: one training batch moves the moving mean by Torch's momentum (0.9) towards the batch mean.
  bn(np.full((4, 3), 2.0, np.float32), training=True)
  np.testing.assert_allclose(bn.moving_mean.numpy(), 0.9 * 2.0, rtol=1e-6)


@pytest.mark.parametrize('make,bound', [
    (lambda: keras.layers.Conv2D(40, 3, kernel_initializer=layers.conv_initializer()), np.sqrt(1 / (3 * 3 * 40))),
    (lambda: keras.layers.Conv2DTranspose(40, 4, kernel_initializer=layers.conv_transpose_initializer()),
     np.sqrt(1 / (4 * 4 * 40))),
    (lambda: keras.layers.Dense(30, kernel_initializer=layers.dense_initializer()), 1 / np.sqrt(50)),
])
def test_torch_initialiser_bounds(make, bound):
  layer = make()
  layer.build((None, 6, 6, 50) if not isinstance(layer, keras.layers.Dense) else (None, 50))
  kernel = np.abs(layer.kernel.numpy())
  assert kernel.max() <= bound + 1e-7 and kernel.max() > 0.95 * bound


def test_block_split_merge_inverse_and_channel_to_block():
  x = np.random.default_rng(3).normal(size=(2, 4, 4, 64)).astype(np.float32)
  split = blocks.split_blocks(x, 8).numpy()
  assert split.shape == (2, 8, 128)
  np.testing.assert_array_equal(blocks.merge_blocks(split, 8, 4, 4).numpy(), x)
  for t in (0, 3, 7):
    for k in (0, 5):
      one = np.zeros((1, 4, 4, 64), np.float32)
      one[..., 8 * t + k] = 1.0
      changed = np.abs(blocks.split_blocks(one, 8).numpy()[0]).sum(-1) > 0
      assert changed.tolist() == [s == t for s in range(8)]
