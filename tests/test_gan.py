"""Shared GAN maths (rlcv_tf.core.gan): losses, D minibatch mix, accuracy, warm-up, D gate (spec ch5 §7.3 10-12)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.core import gan


def np_bce_from_logits(logits, labels):
  p = 1 / (1 + np.exp(-logits.astype(np.float64)))
  return -np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))


# ----------------------------------------------------------------------------------------- losses and accuracy


def test_losses_match_numpy_and_do_not_broadcast_labels():
  logits = np.array([[2.0], [-1.0], [0.5], [-3.0]], np.float32)       # [B, 1], like the D head
  labels = np.array([1.0, 0.0, 0.0, 1.0], np.float32)                 # [B], like mix_batch
  expected = np_bce_from_logits(logits[:, 0], labels)
  assert float(gan.discriminator_loss(logits, labels)) == pytest.approx(expected, rel=1e-6)
  assert float(gan.generator_loss(logits)) == pytest.approx(np_bce_from_logits(logits[:, 0], np.ones(4)), rel=1e-6)
  # Non-saturating: the generator gradient does not vanish where D confidently rejects the fake.
  fake = tf.Variable([[-10.0]])
  with tf.GradientTape() as tape:
    loss = gan.generator_loss(fake)
  assert float(tape.gradient(loss, fake)[0, 0]) < -0.99


def test_accuracy():
  logits = np.array([[2.0], [-1.0], [0.5], [-3.0]], np.float32)
  labels = np.array([1.0, 0.0, 0.0, 1.0], np.float32)
  assert float(gan.accuracy(logits, labels)) == pytest.approx(0.5)
  assert float(gan.accuracy(logits, [1, 0, 1, 0])) == pytest.approx(1.0)
  assert float(gan.accuracy(logits, [1, 0, 1, 0], threshold=0.7)) == pytest.approx(0.75)   # sigmoid(0.5) < 0.7


# ----------------------------------------------------------------------------------------- 7.3-10: D batch mix


def tagged_batches(batch_size):
  shape = (batch_size, 2, 2, 3)
  return np.full(shape, 1.0, np.float32), np.full(shape, 2.0, np.float32), np.full(shape, 3.0, np.float32)


def test_mix_batch_pattern_b8():
  real, recon, prior = tagged_batches(8)
  x_mix, labels = gan.mix_batch(real, recon, prior)
  # 1 = real, 3 = prior, 2 = recon: [real, real, prior, recon] * 2.
  np.testing.assert_array_equal(x_mix.numpy()[:, 0, 0, 0], [1, 1, 3, 2, 1, 1, 3, 2])
  np.testing.assert_array_equal(labels.numpy(), [1, 1, 0, 0, 1, 1, 0, 0])
  assert labels.dtype == tf.float32 and x_mix.shape == real.shape


def test_mix_batch_takes_each_example_from_its_own_position():
  rng = np.random.default_rng(0)
  real, recon, prior = (rng.normal(size=(12, 3)).astype(np.float32) for _ in range(3))
  x_mix = gan.mix_batch(real, recon, prior)[0].numpy()
  for j in range(12):
    i = j + 1
    source = recon if i % 4 == 0 else prior if i % 4 == 3 else real
    np.testing.assert_array_equal(x_mix[j], source[j])


def test_mix_batch_rejects_batches_not_divisible_by_4():
  with pytest.raises(ValueError, match='divisible by 4'):
    gan.mix_batch(*tagged_batches(6))
  with pytest.raises(ValueError, match='same shape'):
    gan.mix_batch(np.zeros((4, 2)), np.zeros((4, 3)), np.zeros((4, 2)))


def test_mix_batch_dynamic_batch_in_tf_function():
  mix = tf.function(gan.mix_batch, input_signature=[tf.TensorSpec((None, 2, 2, 3), tf.float32)] * 3)
  x_mix, labels = mix(*tagged_batches(4))
  np.testing.assert_array_equal(x_mix.numpy()[:, 0, 0, 0], [1, 1, 3, 2])
  np.testing.assert_array_equal(labels.numpy(), [1, 1, 0, 0])
  with pytest.raises(tf.errors.InvalidArgumentError):
    mix(*tagged_batches(5))


def test_thesis_mix_is_data_and_returns_the_source_index():
  mix = gan.THESIS_MIX
  assert (mix.sources, mix.labels, mix.pattern) == (('real', 'prior', 'recon'), (1.0, 0.0, 0.0), (0, 0, 1, 2))
  real, recon, prior = tagged_batches(8)
  x_mix, labels, source = mix.mix({'real': real, 'recon': recon, 'prior': prior})
  np.testing.assert_array_equal(source.numpy(), [0, 0, 1, 2, 0, 0, 1, 2])
  np.testing.assert_array_equal(source.numpy(), gan.mix_pattern(8).numpy())
  np.testing.assert_array_equal(x_mix.numpy(), gan.mix_batch(real, recon, prior)[0].numpy())
  np.testing.assert_array_equal(labels.numpy(), [1, 1, 0, 0, 1, 1, 0, 0])


def test_a_conditional_mix_built_as_data_gathers_images_and_conditions():
  """Issue 12's 'thirds' as an instance: real pair, mismatched pair, generated pair (recon, then prior) per 3."""
  thirds = gan.MinibatchMix(sources=('real', 'mismatch', 'recon', 'prior'), labels=(1, 0, 0, 0),
                            pattern=(0, 1, 2, 0, 1, 3))
  b = 12
  rng = np.random.default_rng(1)
  x = rng.normal(size=(b, 2, 2, 3)).astype(np.float32)
  x_q, x_p = x + 10.0, x + 20.0
  a = rng.integers(0, 2, size=(b, 5)).astype(np.float32)
  images = {'real': x, 'mismatch': np.roll(x, 1, axis=0), 'recon': x_q, 'prior': x_p}
  x_mix, labels, source = thirds.mix(images)
  # Hand-written table for B = 12 (0-based positions).
  table = ['real', 'mismatch', 'recon', 'real', 'mismatch', 'prior'] * 2
  assert [thirds.sources[i] for i in source.numpy()] == table
  np.testing.assert_array_equal(labels.numpy(), [1.0 if name == 'real' else 0.0 for name in table])
  for j, name in enumerate(table):
    np.testing.assert_array_equal(x_mix.numpy()[j], images[name][j])
  # Conditions: every pair keeps its own vector; the mismatched image is another example's.
  conditions = thirds.gather(source, {name: a for name in thirds.sources})
  np.testing.assert_array_equal(conditions.numpy(), a)
  with pytest.raises(ValueError, match='divisible by 6'):
    thirds.mix({name: v[:8] for name, v in images.items()})


@pytest.mark.parametrize('kwargs,match', [
    (dict(sources=('real', 'real'), labels=(1, 0), pattern=(0, 1)), 'distinct'),
    (dict(sources=('real', 'fake'), labels=(1,), pattern=(0, 1)), '1 labels for 2 sources'),
    (dict(sources=('real', 'fake'), labels=(1, 0), pattern=(0, 2)), 'pattern entries'),
    (dict(sources=('real', 'fake'), labels=(1, 2), pattern=(0, 1)), r'\[0, 1\]'),
])
def test_minibatch_mix_validates_its_data(kwargs, match):
  with pytest.raises(ValueError, match=match):
    gan.MinibatchMix(**kwargs)


def test_minibatch_mix_names_missing_and_unknown_sources():
  real, recon, prior = tagged_batches(4)
  with pytest.raises(ValueError, match='missing batches'):
    gan.THESIS_MIX.mix({'real': real, 'recon': recon})
  with pytest.raises(ValueError, match='unknown sources'):
    gan.THESIS_MIX.gather(gan.mix_pattern(4), {'real': real, 'recon': recon, 'prior': prior, 'other': real})


# ----------------------------------------------------------------------------------------- 7.3-11: the D gate


def make_discriminator():
  """A linear D whose logit is +10 x: accuracy is set entirely by the signs of the inputs."""
  d = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant(10.0))])
  optimizer = keras.optimizers.Adam(1e-2)
  optimizer.build(d.trainable_variables)
  return d, optimizer


def make_d_step(d, optimizer):
  @tf.function
  def d_step(features, labels):
    with tf.GradientTape() as tape:
      logits = d(features, training=True)
      loss = gan.discriminator_loss(logits, labels)
    grads = tape.gradient(loss, d.trainable_variables)
    acc = gan.accuracy(logits, labels)
    return gan.gated_apply(optimizer, grads, d.trainable_variables, acc), acc
  return d_step


def snapshot(d, optimizer):
  return [v.numpy().copy() for v in d.trainable_variables] + [v.numpy().copy() for v in optimizer.variables]


def test_gate_skips_a_perfect_discriminator_and_applies_otherwise():
  d, optimizer = make_discriminator()
  d_step = make_d_step(d, optimizer)
  labels = np.array([1, 1, 0, 0, 1, 1, 0, 0], np.float32)
  perfect = np.where(labels == 1, 1.0, -1.0).astype(np.float32)[:, None]     # acc = 1.0
  before = snapshot(d, optimizer)
  applied, acc = d_step(perfect, labels)
  assert float(acc) == 1.0 and not bool(applied)
  assert int(optimizer.iterations) == 0
  for a, b in zip(before, snapshot(d, optimizer)):
    np.testing.assert_array_equal(a, b)                                      # weights, moments, counters

  half = perfect * np.array([1, -1] * 4, np.float32)[:, None]                # acc = 0.5
  applied, acc = d_step(half, labels)
  assert float(acc) == 0.5 and bool(applied)
  assert int(optimizer.iterations) == 1
  assert not np.array_equal(before[0], d.trainable_variables[0].numpy())


def test_gate_threshold_is_inclusive():
  d, optimizer = make_discriminator()
  grads = [tf.ones_like(v) for v in d.trainable_variables]
  apply = tf.function(lambda acc: gan.gated_apply(optimizer, grads, d.trainable_variables, acc))
  assert bool(apply(tf.constant(0.9)))           # accuracy <= 0.9 trains
  assert not bool(apply(tf.constant(0.9001)))
  assert int(optimizer.iterations) == 1


def test_gate_requires_a_built_optimizer():
  d = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
  grads = [tf.zeros_like(v) for v in d.trainable_variables]
  with pytest.raises(ValueError, match='optimizer.build'):
    gan.gated_apply(keras.optimizers.Adam(), grads, d.trainable_variables, 0.5)
  other = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
  optimizer = keras.optimizers.Adam()
  optimizer.build(other.trainable_variables)
  with pytest.raises(ValueError, match='not passed to optimizer.build'):
    gan.gated_apply(optimizer, grads, d.trainable_variables, 0.5)


# ----------------------------------------------------------------------------------------- 7.3-12: warm-up


def test_warmup_multiplier_schedule():
  got = [float(gan.warmup_multiplier(i)) for i in (0, 9, 10, 29, 30, 1000)]
  np.testing.assert_allclose(got, [1 / 50, 1 / 50, 1 / 5, 1 / 5, 1.0, 1.0], rtol=1e-6)
  assert gan.warmup_multiplier(tf.constant(3, tf.int64)).dtype == tf.float32


def test_effective_learning_rate_during_warmup():
  """With SGD the step equals lr * grad, so the applied step measures the effective LR at each call."""
  base_lr = 0.1
  variable = tf.Variable(0.0)
  optimizer = keras.optimizers.SGD(base_lr)
  optimizer.build([variable])
  calls = tf.Variable(0, dtype=tf.int64)    # counts every D call, gated or not

  @tf.function
  def d_step(acc):
    lr = base_lr * gan.warmup_multiplier(calls)
    applied = gan.gated_apply(optimizer, [tf.constant(1.0)], [variable], acc, learning_rate=lr)
    calls.assign_add(1)
    return applied

  effective = {}
  for call in range(31):
    before = float(variable.numpy())
    acc = 1.0 if call == 5 else 0.5         # one skipped call must still advance the warm-up counter
    d_step(tf.constant(acc))
    effective[call] = before - float(variable.numpy())
  assert effective[5] == 0.0
  for call, expected in ((0, base_lr / 50), (9, base_lr / 50), (10, base_lr / 5), (29, base_lr / 5), (30, base_lr)):
    assert effective[call] == pytest.approx(expected, rel=1e-5), call
  assert int(optimizer.iterations) == 30
