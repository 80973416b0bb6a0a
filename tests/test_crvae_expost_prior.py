"""The ex-post Gaussian (crvae/expost_prior.py): its moments against a Monte Carlo of the mixture it summarises,
its samples against the moments it was given, and `fit` on a linear model whose posteriors are known.
"""

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.crvae import expost_prior


def test_aggregate_moments_match_a_monte_carlo_of_the_posterior_mixture():
  rng = np.random.default_rng(0)
  n, d = 6, 3
  means = rng.normal(size=(n, d)) * np.array([2.0, 0.5, 1.0]) + np.array([1.0, -1.0, 0.0])
  means[:, 2] += 0.8 * means[:, 0]                       # correlated component means
  log_variances = rng.normal(size=(n, d)) * 0.5 - 1.0
  # Draw from the mixture: pick a component uniformly, then draw from its diagonal Gaussian.
  draws = 400_000
  which = rng.integers(0, n, size=draws)
  x = means[which] + np.exp(0.5 * log_variances[which]) * rng.normal(size=(draws, d))
  mean, covariance = expost_prior.aggregate_moments(means, log_variances)
  np.testing.assert_allclose(mean, x.mean(0), atol=0.02)
  np.testing.assert_allclose(covariance, np.cov(x.T, ddof=0), atol=0.03)
  # Without the average within-component variance the diagonal would be too small (a check that can fail).
  assert np.all(np.diag(covariance) - np.diag(np.cov(means.T, ddof=0)) > 0.1)


def test_samples_follow_the_moments_and_keep_the_latent_shape():
  latent_shape = (2, 1, 2)
  prior = expost_prior.ExPostGaussian(latent_shape)
  z = prior.sample(5, seed=(0, 1))
  assert z.shape == (5,) + latent_shape
  assert int(prior.num_images) == 0                      # not fitted: N(0, I)
  a = np.array([[1.0, 0.0, 0.0, 0.0], [0.9, 0.5, 0.0, 0.0], [0.0, 0.2, 2.0, 0.0], [-0.3, 0.0, 0.1, 0.3]])
  cov = a @ a.T
  loc = np.array([1.0, -2.0, 0.5, 3.0])
  prior.set_moments(loc, cov, num_images=7)
  assert int(prior.num_images) == 7
  z = prior.sample(100_000, seed=(3, 4)).numpy().reshape(100_000, -1)
  np.testing.assert_allclose(z.mean(0), loc, atol=0.03)
  np.testing.assert_allclose(np.cov(z.T), cov, atol=0.05)
  # The same stateless seed gives the same draws.
  np.testing.assert_array_equal(prior.sample(3, seed=(5, 6)).numpy(), prior.sample(3, seed=(5, 6)).numpy())


def test_a_singular_covariance_still_factorises_and_bad_shapes_are_named():
  prior = expost_prior.ExPostGaussian((3,))
  prior.set_moments(np.zeros(3), np.ones((3, 3)), num_images=2)          # rank 1
  assert np.all(np.isfinite(prior.scale_tril.numpy()))
  with pytest.raises(ValueError, match=r'want mean \[3\]'):
    prior.set_moments(np.zeros(4), np.eye(4), num_images=2)


class _LinearEncoder:
  """encode(x) = (x[:, :D] reshaped, constant log-variance): the posteriors are known exactly."""

  latent_shape = (1, 1, 2)

  def __init__(self, logvar):
    self.logvar = logvar
    self.calls = 0

  def encode(self, x, training=False):
    assert training is False
    self.calls += 1
    mu = tf.reshape(tf.reshape(x, (x.shape[0], -1))[:, :2], (-1, 1, 1, 2))
    return mu, tf.fill(tf.shape(mu), self.logvar)


def test_fit_reads_exactly_num_images_from_batches_or_dicts():
  rng = np.random.default_rng(1)
  images = rng.normal(size=(10, 2, 2, 1)).astype(np.float32)
  batches = [images[i:i + 4] for i in range(0, 10, 4)]              # 4, 4, 2
  vae = _LinearEncoder(logvar=np.log(0.25).astype(np.float32))
  prior = expost_prior.fit(vae, iter(batches), num_images=6)
  assert int(prior.num_images) == 6 and vae.calls == 2              # stopped after the 6th image
  mu = images[:6].reshape(6, -1)[:, :2]
  want = np.cov(mu.T, ddof=0) + 0.25 * np.eye(2)
  np.testing.assert_allclose(prior.loc.numpy(), mu.mean(0), atol=1e-6)
  got = prior.scale_tril.numpy() @ prior.scale_tril.numpy().T
  np.testing.assert_allclose(got, want, atol=1e-5)
  dict_prior = expost_prior.fit(vae, iter([{'image': b} for b in batches]), num_images=6)
  np.testing.assert_allclose(dict_prior.loc.numpy(), prior.loc.numpy())
  with pytest.raises(ValueError, match='at least 2 training images'):
    expost_prior.fit(vae, iter([images[:1]]), num_images=6)


def test_a_saved_module_keeps_the_fitted_moments(tmp_path):
  prior = expost_prior.ExPostGaussian((2,))
  prior.set_moments(np.array([1.0, 2.0]), np.array([[2.0, 0.5], [0.5, 1.0]]), num_images=3)
  tf.saved_model.save(prior, str(tmp_path))
  loaded = tf.saved_model.load(str(tmp_path))
  np.testing.assert_allclose(loaded.loc.numpy(), [1.0, 2.0])
  np.testing.assert_allclose(loaded.scale_tril.numpy(), prior.scale_tril.numpy())
  assert int(loaded.num_images) == 3
