"""Chapter 5 evaluation: importance-sampled NLL, inception score, in-house classifier (spec ch5 §7.3 13-14, A5.4)."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.core.vaegan import evaluation
from rlcv_tf.core.vaegan import losses

# ----------------------------------------------------------------------------------------- 7.3-14: IS-NLL

# z ~ N(0, 1), x | z ~ N(a z + b, s^2)  =>  p(x) = N(x; b, a^2 + s^2), posterior N(m(x), v) in closed form.
A, B, S = 1.5, 0.3, 0.4


def exact_log_marginal(x):
  var = A ** 2 + S ** 2
  return -0.5 * (np.log(2 * np.pi * var) + (x - B) ** 2 / var)


def exact_posterior(x):
  x = tf.convert_to_tensor(x, tf.float32)
  var = S ** 2 / (S ** 2 + A ** 2)
  mean = var * A * (x - B) / S ** 2
  return mean, tf.fill(tf.shape(x), float(np.log(var)))


def linear_gaussian_log_likelihood(x, z):
  return losses.gaussian_log_likelihood(x, A * z + B, S)


def test_exact_posterior_gives_exact_nll_for_any_k():
  x = np.array([[-2.0], [0.0], [0.3], [1.7], [4.0]], np.float32)      # [N, 1]
  for k in (1, 3, 50):
    nll = evaluation.importance_sampled_nll(exact_posterior, linear_gaussian_log_likelihood, x, k,
                                            batch_size=2, samples_per_chunk=7)
    assert nll.shape == (5,)
    np.testing.assert_allclose(nll, -exact_log_marginal(x[:, 0]), atol=1e-5)


def test_poor_posterior_converges_as_k_grows():
  x = np.array([[-1.0], [0.5], [2.0]], np.float32)
  exact = -exact_log_marginal(x[:, 0])

  def poor_posterior(x):           # the prior itself, ignoring x
    return tf.zeros_like(x), tf.zeros_like(x)

  errors = {}
  for k in (1, 10_000):
    nll = evaluation.importance_sampled_nll(poor_posterior, linear_gaussian_log_likelihood, x, k,
                                            samples_per_chunk=2_500, seed=3)
    errors[k] = np.abs(nll - exact)
  assert errors[10_000].max() < 0.05
  assert errors[1].mean() > 5 * errors[10_000].mean()   # one prior sample is a poor estimate


class TinyBernoulliVAE(keras.Model):
  """The VAE interface with a linear encoder and decoder, latents [B, 4, 4, 2], images [B, 8, 8, 1]."""

  likelihood = 'bernoulli'

  def __init__(self):
    super().__init__()
    self.enc = keras.layers.Dense(2 * 4 * 4 * 2, kernel_initializer=keras.initializers.RandomNormal(stddev=0.05))
    self.dec = keras.layers.Dense(8 * 8, kernel_initializer=keras.initializers.RandomNormal(stddev=0.3))

  def encode(self, x, training=False):
    h = self.enc(tf.reshape(x, (-1, 64)))
    mu, logvar = tf.split(tf.reshape(h, (-1, 4, 4, 4)), 2, axis=-1)
    return mu, logvar - 1.0

  def decode_logits(self, z, training=False):
    return tf.reshape(self.dec(tf.reshape(z, (-1, 32))), (-1, 8, 8, 1))


def test_model_nll_matches_generic_estimator_and_elbo_bound():
  vae = TinyBernoulliVAE()
  rng = np.random.default_rng(0)
  images = (rng.random((6, 8, 8, 1)) < 0.4).astype(np.float32)
  nll = evaluation.model_nll(vae, images, num_samples=64, batch_size=4, samples_per_chunk=16, seed=1)
  generic = evaluation.importance_sampled_nll(
      lambda x: vae.encode(x), lambda x, z: losses.bernoulli_log_likelihood(x, vae.decode_logits(z)), images, 64,
      batch_size=4, samples_per_chunk=16, seed=1)
  np.testing.assert_allclose(nll, generic, rtol=1e-6)
  assert nll.shape == (6,) and np.isfinite(nll).all()
  # The K = 64 bound is tighter (lower NLL) than the K = 1 bound on average.
  one = evaluation.model_nll(vae, images, num_samples=1, seed=1)
  assert nll.mean() < one.mean()


def test_model_nll_gaussian_needs_sigma():
  vae = TinyBernoulliVAE()
  vae.likelihood = 'gaussian'
  images = np.zeros((2, 8, 8, 1), np.float32)
  with pytest.raises(ValueError, match='sigma'):
    evaluation.model_nll(vae, images, num_samples=2)
  assert np.isfinite(evaluation.model_nll(vae, images, num_samples=2, sigma=0.5)).all()


def test_reconstruction_error_matches_manual_computation():
  vae = TinyBernoulliVAE()
  images = (np.random.default_rng(1).random((5, 8, 8, 1)) < 0.5).astype(np.float32)
  result = evaluation.reconstruction_error(vae, images, batch_size=2)
  mu, _ = vae.encode(images)
  logits = vae.decode_logits(mu).numpy().astype(np.float64)
  p = 1 / (1 + np.exp(-logits))
  assert result['mse'] == pytest.approx(np.mean((p - images) ** 2), rel=1e-5)
  bce = -np.mean(images * np.log(p) + (1 - images) * np.log(1 - p))
  assert result['bce_per_pixel'] == pytest.approx(bce, rel=1e-5)


# ----------------------------------------------------------------------------------------- 7.3-13: inception score


def test_inception_score_of_uniform_predictions_is_one():
  mean, std = evaluation.inception_score(np.full((200, 10), 0.1), num_splits=10)
  assert mean == pytest.approx(1.0, abs=1e-9) and std == pytest.approx(0.0, abs=1e-9)


def test_inception_score_of_balanced_one_hot_is_num_classes():
  probs = np.eye(10)[np.arange(1000) % 10]       # every split of 100 holds each class 10 times
  mean, std = evaluation.inception_score(probs, num_splits=10)
  assert abs(mean - 10.0) < 1e-6 and std < 1e-6


def test_inception_score_matches_numpy_formula_per_split():
  rng = np.random.default_rng(2)
  logits = rng.normal(size=(300, 5)) * 2
  probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
  scores = []
  for part in np.split(probs, 10):
    py = part.mean(0)
    scores.append(np.exp(np.mean([np.sum(p * np.log(p / py)) for p in part])))
  mean, std = evaluation.inception_score(probs, num_splits=10)
  assert mean == pytest.approx(np.mean(scores), rel=1e-10) and std == pytest.approx(np.std(scores), rel=1e-8)
  # Collapsed generator: every image the same confident class gives IS = 1.
  assert evaluation.inception_score(np.tile(probs[:1], (300, 1)))[0] == pytest.approx(1.0)
  with pytest.raises(ValueError):
    evaluation.inception_score(probs[:5], num_splits=10)


# ----------------------------------------------------------------------------------------- in-house classifier


def two_class_images(rng, n):
  """Class 0: bright upper half; class 1: bright lower half; plus noise. [n, 16, 16, 3] in [-1, 1]."""
  labels = rng.integers(0, 2, size=n)
  images = rng.normal(scale=0.3, size=(n, 16, 16, 3)).astype(np.float32) - 0.5
  for i, label in enumerate(labels):
    rows = slice(0, 8) if label == 0 else slice(8, 16)
    images[i, rows] += 1.0
  return np.clip(images, -1, 1), labels


def test_classifier_learns_easy_task_and_round_trips(tmp_path):
  keras.utils.set_random_seed(0)
  rng = np.random.default_rng(0)
  train, held_out = two_class_images(rng, 256), two_class_images(rng, 128)
  model = evaluation.build_classifier((16, 16, 3), num_classes=2, width=8)
  assert model.output_shape == (None, 2)
  accuracy = evaluation.train_classifier(model, train, epochs=4, validation=held_out, batch_size=32)
  assert accuracy > 0.8                           # chance is 0.5

  probs = evaluation.classifier_probs(model, held_out[0], batch_size=50)
  np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
  # Larger inputs are resized to the classifier's 16x16.
  upsampled = np.repeat(np.repeat(held_out[0][:10], 2, axis=1), 2, axis=2)
  assert evaluation.classifier_probs(model, upsampled).shape == (10, 2)

  path = evaluation.save_classifier(model, os.path.join(tmp_path, 'clf', 'two_class.keras'))
  loaded = evaluation.load_classifier(path)
  np.testing.assert_allclose(evaluation.classifier_probs(loaded, held_out[0]), probs, atol=1e-5)

  # A generator of one class scores ~1, a balanced one ~2.
  one_class = lambda n: two_class_images(np.random.default_rng(n), 4 * n)[0][
      two_class_images(np.random.default_rng(n), 4 * n)[1] == 0][:n]
  balanced = lambda n: two_class_images(np.random.default_rng(n + 1), n)[0]
  collapsed, _ = evaluation.inception_score_of_generator(one_class, loaded, 200, batch_size=50, num_splits=2)
  diverse, _ = evaluation.inception_score_of_generator(balanced, loaded, 200, batch_size=50, num_splits=2)
  assert collapsed < 1.2 and diverse > 1.4


def test_load_classifier_missing_file(tmp_path):
  with pytest.raises(FileNotFoundError, match='no classifier'):
    evaluation.load_classifier(os.path.join(tmp_path, 'missing.keras'))
  with pytest.raises(ValueError, match='.keras'):
    evaluation.save_classifier(evaluation.build_classifier((8, 8, 1), 2, width=4), 'model.h5')


def test_build_classifier_handles_small_inputs():
  model = evaluation.build_classifier((28, 28, 1), num_classes=10, width=16)
  assert model(np.zeros((2, 28, 28, 1), np.float32)).shape == (2, 10)
  conv_widths = [layer.filters for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
  assert conv_widths == [16, 32, 64, 64, 128, 128, 128, 128]     # VGG11-A / 4


def three_attribute_images(rng, n):
  """Attributes in {-1, +1} (CelebA's coding): bright top half, bright left half, red tint; plus noise."""
  attributes = rng.choice([-1.0, 1.0], size=(n, 3))
  images = rng.normal(scale=0.2, size=(n, 16, 16, 3)).astype(np.float32) - 0.4
  images[attributes[:, 0] > 0, :8] += 0.8
  images[attributes[:, 1] > 0, :, :8] += 0.8
  images[attributes[:, 2] > 0, :, :, 0] += 0.8
  return np.clip(images, -1, 1), attributes.astype(np.float32)


def test_multi_label_classifier_learns_each_attribute_with_sigmoid_outputs():
  keras.utils.set_random_seed(1)
  rng = np.random.default_rng(1)
  train, held_out = three_attribute_images(rng, 384), three_attribute_images(rng, 128)
  model = evaluation.build_classifier((16, 16, 3), num_classes=3, width=8)
  accuracy = evaluation.train_classifier(model, train, epochs=6, validation=held_out, batch_size=32,
                                         multi_label=True)
  per_attribute = evaluation.classifier_accuracy(model, held_out, multi_label=True)
  assert per_attribute.shape == (3,) and (per_attribute > 0.85).all(), per_attribute     # chance is 0.5 each
  assert accuracy == pytest.approx(per_attribute.mean())
  # The per-attribute accuracy by hand: logit > 0 <=> attribute present (+1).
  logits = model(held_out[0], training=False).numpy()
  np.testing.assert_allclose(per_attribute, ((logits > 0) == (held_out[1] > 0)).mean(axis=0))
  # {0, 1} targets are read the same way as {-1, +1}.
  zero_one = (held_out[0], (held_out[1] > 0).astype(np.float32))
  np.testing.assert_allclose(evaluation.classifier_accuracy(model, zero_one, multi_label=True), per_attribute)


def test_single_label_accuracy_is_the_argmax_hit_rate():
  model = evaluation.build_classifier((16, 16, 3), num_classes=4, width=4)
  rng = np.random.default_rng(0)
  images, labels = rng.normal(size=(37, 16, 16, 3)).astype(np.float32), rng.integers(0, 4, 37)
  expected = (np.argmax(model(images, training=False).numpy(), axis=1) == labels).mean()
  assert evaluation.classifier_accuracy(model, (images, labels), batch_size=10) == pytest.approx(expected)
