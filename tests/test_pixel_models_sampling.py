"""Samplers (spec §7.6 T-SAMPLE-1/2): naive calls the network H*W*C times, fast == naive for the same seed,
temperature 0 is the argmax, conditional sampling; slow: memorise a 4x4 pattern and sample it back."""

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.pixel_models import gated_pixelcnn
from rlcv_tf.pixel_models import likelihood
from rlcv_tf.pixel_models import pixelcnn
from rlcv_tf.pixel_models import pixelrnn
from rlcv_tf.pixel_models import sampling


class _Counting:
  def __init__(self, model):
    self.model, self.calls = model, 0
    self.image_shape, self.levels, self.receptive_rows = model.image_shape, model.levels, model.receptive_rows
    self.num_classes = getattr(model, 'num_classes', 0)

  def __call__(self, x, **kwargs):
    self.calls += 1
    return self.model(x, **kwargs)


def _pixelcnn(shape=(6, 5, 1), levels=3):
  tf.keras.utils.set_random_seed(0)
  m = pixelcnn.PixelCNN(shape, levels=levels, hidden=6, blocks=1, first_kernel=3, head=6)
  m(tf.zeros((1,) + shape))
  for v in m.trainable_variables:
    v.assign(tf.random.normal(v.shape, stddev=0.7))
  return m


def test_naive_calls_the_network_hwc_times_and_returns_levels():
  m = _Counting(_pixelcnn((3, 4, 1), levels=5))
  x = sampling.sample(m, 2, 1.0, seed=3, fast=False)
  assert m.calls == 3 * 4 * 1
  assert x.shape == (2, 3, 4, 1) and x.dtype == tf.int32
  assert x.numpy().min() >= 0 and x.numpy().max() < 5


def test_rgb_sampling_shape_and_calls():
  tf.keras.utils.set_random_seed(0)
  m = pixelcnn.PixelCNN((2, 3, 3), levels=4, hidden=6, blocks=1, first_kernel=3, head=6)
  counted = _Counting(m)
  x = sampling.sample(counted, 3, 1.0, seed=1, fast=True)
  assert counted.calls == 2 * 3 * 3 and x.shape == (3, 2, 3, 3) and x.numpy().max() < 4


@pytest.mark.parametrize('kind', ['pixelcnn', 'gated', 'row_lstm', 'diagonal_bilstm'])
def test_fast_equals_naive_for_the_same_seed(kind):
  shape = (7, 5, 1)
  if kind == 'pixelcnn':
    m = _pixelcnn(shape)
  else:
    tf.keras.utils.set_random_seed(0)
    if kind == 'gated':
      m = gated_pixelcnn.GatedPixelCNN(shape, levels=3, channels=4, layers=2, head=8)
    else:
      kind = pixelrnn.RowLSTMPixelRNN if kind == 'row_lstm' else pixelrnn.DiagonalBiLSTMPixelRNN
      m = kind(shape, levels=3, hidden=4, layers=1, head=8)
    m(tf.zeros((1,) + shape))
    for v in m.trainable_variables:
      v.assign(tf.random.normal(v.shape, stddev=0.7))
  # conv models: windows of receptive_rows + 1 rows; PixelRNNs: the rows up to the current one
  assert m.receptive_rows < shape[0] - 1 or isinstance(m, (pixelrnn.RowLSTMPixelRNN, pixelrnn.DiagonalBiLSTMPixelRNN))
  naive = sampling.sampler(m, fast=False)(4, 1.0, 7).numpy()
  fast = sampling.sampler(m, fast=True)(4, 1.0, 7).numpy()
  np.testing.assert_array_equal(naive, fast)
  other = sampling.sampler(m, fast=True)(4, 1.0, 8).numpy()
  assert (other != fast).any()  # the seed matters
  assert len(np.unique(fast)) > 1


@pytest.mark.parametrize('kind', ['pixelcnn', 'gated'])
def test_receptive_rows_is_the_exact_vertical_reach(kind):
  """The fast sampler's window: row r's logits from rows r - R .. r equal the full image's; from r - R + 1 they
  do not (so R is neither too small, which would change samples, nor needlessly large)."""
  shape = (9, 5, 1)
  tf.keras.utils.set_random_seed(0)
  if kind == 'pixelcnn':
    m = pixelcnn.PixelCNN(shape, levels=3, hidden=4, blocks=2, first_kernel=5, head=8, activation='tanh')
  else:
    m = gated_pixelcnn.GatedPixelCNN(shape, levels=3, channels=4, layers=3, head=8, head_activation='tanh')
  m(tf.zeros((1,) + shape))
  for v in m.trainable_variables:
    v.assign(tf.random.normal(v.shape, stddev=0.7))
  x = tf.random.uniform((2,) + shape, -1, 1)
  full = m(x).numpy()
  reach, r = m.receptive_rows, shape[0] - 1
  assert reach < r
  np.testing.assert_allclose(m(x[:, r - reach:]).numpy()[:, -1], full[:, r], rtol=1e-5, atol=1e-5)
  assert np.abs(m(x[:, r - reach + 1:]).numpy()[:, -1] - full[:, r]).max() > 1e-4


def test_temperature_zero_is_the_argmax_and_ignores_the_seed():
  m = _pixelcnn()
  a = sampling.sample(m, 2, 0.0, seed=1).numpy()
  b = sampling.sample(m, 2, 0.0, seed=2).numpy()
  np.testing.assert_array_equal(a, b)
  # each pixel is the argmax of the logits given the pixels before it
  logits = m(likelihood.scale(tf.constant(a), 3)).numpy()
  np.testing.assert_array_equal(a, logits.argmax(-1))


def test_conditional_sampling_follows_the_label():
  tf.keras.utils.set_random_seed(0)
  shape = (4, 4, 1)
  m = gated_pixelcnn.GatedPixelCNN(shape, levels=3, channels=4, layers=2, head=8, num_classes=2)
  m(tf.zeros((1,) + shape), condition=tf.one_hot([0], 2))
  for v in m.trainable_variables:
    v.assign(tf.random.normal(v.shape, stddev=0.7))
  labels = tf.one_hot([0, 1, 0, 1], 2)
  x = sampling.sampler(m)(4, 0.0, 0, labels).numpy()
  assert x.shape == (4, 4, 4, 1)
  # argmax sampling: every pixel is the argmax given its label; with the labels swapped it is not
  np.testing.assert_array_equal(m(likelihood.scale(x, 3), condition=labels).numpy().argmax(-1), x)
  assert (m(likelihood.scale(x, 3), condition=labels[::-1]).numpy().argmax(-1) != x).any()
  assert (x[0] != x[1]).any()
  with pytest.raises(ValueError):
    m(tf.zeros((1,) + shape))  # a conditional model needs its condition
  with pytest.raises(tf.errors.InvalidArgumentError, match='one row per image'):
    sampling.sample(m, 3, 1.0, 0, labels)  # a condition of the wrong size


@pytest.mark.slow
def test_memorise_a_4x4_pattern_and_sample_it_back():
  tf.keras.utils.set_random_seed(0)
  pattern = np.array([[0, 1, 2, 3], [3, 2, 1, 0], [1, 1, 3, 3], [0, 2, 0, 2]], np.int32).reshape(1, 4, 4, 1)
  x = tf.constant(np.repeat(pattern, 8, axis=0))
  m = pixelcnn.PixelCNN((4, 4, 1), levels=4, hidden=16, blocks=2, first_kernel=7, head=32)
  opt = tf.keras.optimizers.Adam(1e-2)

  @tf.function
  def step():
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(likelihood.nll_nats(m(likelihood.scale(x, 4)), x))
    opt.apply_gradients(zip(tape.gradient(loss, m.trainable_variables), m.trainable_variables))
    return loss
  for _ in range(300):
    loss = step()
  assert float(loss) / 16 < 0.05
  np.testing.assert_array_equal(sampling.sample(m, 2, 0.0, seed=0).numpy(), np.repeat(pattern, 2, axis=0))
