"""Chapter 5/6 VAE losses against NumPy formulas written independently (spec ch5 §7.3 items 1, 2, 9, 17)."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from rlcv_tf.core.vaegan import losses

tfd = tfp.distributions


def np_gaussian_kl(mu_q, lv_q, mu_p, lv_p):
  """KL(N(mu_q, e^lv_q) || N(mu_p, e^lv_p)) in closed form, float64."""
  return 0.5 * (lv_p - lv_q + (np.exp(lv_q) + (mu_q - mu_p) ** 2) / np.exp(lv_p) - 1.0)


def np_log_normal(x, mu, var):
  return -0.5 * (np.log(2 * np.pi * var) + (x - mu) ** 2 / var)


# ----------------------------------------------------------------------------------------- 7.3-1: KL closed form


def test_generalised_kl_matches_closed_form_and_spec_value():
  expected = np_gaussian_kl(0.7, -0.4, -0.3, 0.5)
  assert expected == pytest.approx(0.45655, abs=1e-5)   # the value written in the spec
  assert float(losses.gaussian_kl(0.7, -0.4, -0.3, 0.5)) == pytest.approx(expected, abs=1e-6)


def test_generalised_kl_matches_monte_carlo():
  rng = np.random.default_rng(0)
  mu_q, lv_q, mu_p, lv_p = 0.7, -0.4, -0.3, 0.5
  z = mu_q + np.exp(0.5 * lv_q) * rng.standard_normal(2_000_000)
  mc = np.mean(np_log_normal(z, mu_q, np.exp(lv_q)) - np_log_normal(z, mu_p, np.exp(lv_p)))
  assert abs(mc - float(losses.gaussian_kl(mu_q, lv_q, mu_p, lv_p))) < 5e-3


def test_standard_normal_kl_spec_value():
  expected = 0.5 * (0.7 ** 2 + np.exp(-0.4) - 1.0 + 0.4)
  assert expected == pytest.approx(0.28016, abs=1e-5)
  kl = losses.gaussian_kl_per_block(np.full((1, 1, 1, 1), 0.7, np.float32), np.full((1, 1, 1, 1), -0.4, np.float32), 1)
  assert float(kl[0]) == pytest.approx(expected, abs=1e-6)
  assert float(losses.standard_normal_kl(0.7, -0.4)) == pytest.approx(expected, abs=1e-6)


def test_kls_match_tfp_multivariate_normal_diag():
  rng = np.random.default_rng(1)
  mu_q, lv_q, mu_p, lv_p = (rng.normal(size=(3, 32)).astype(np.float32) for _ in range(4))
  mvn = lambda mu, lv: tfd.MultivariateNormalDiag(loc=mu, scale_diag=np.exp(0.5 * lv))
  expected = tfd.kl_divergence(mvn(mu_q, lv_q), mvn(mu_p, lv_p)).numpy()
  got = tf.reduce_sum(losses.gaussian_kl(mu_q, lv_q, mu_p, lv_p), axis=-1).numpy()
  np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)
  # Standard-normal prior: latents [B, 4, 4, 2] -> per-example KL is the MVN KL of the flattened vector.
  mu, lv = mu_q.reshape(3, 4, 4, 2), lv_q.reshape(3, 4, 4, 2)
  std = tfd.MultivariateNormalDiag(loc=np.zeros(32, np.float32), scale_diag=np.ones(32, np.float32))
  expected_total = np.mean(tfd.kl_divergence(mvn(mu_q, lv_q), std).numpy())
  total = float(tf.reduce_sum(losses.gaussian_kl_per_block(mu, lv, 2)))
  assert total == pytest.approx(expected_total, abs=1e-4)


# ----------------------------------------------------------------------------------------- 7.3-2: per-block KL


def random_posterior(rng, shape=(5, 4, 4, 64)):
  return rng.normal(size=shape).astype(np.float32), (0.5 * rng.normal(size=shape)).astype(np.float32)


def test_kl_per_block_sums_channel_slices():
  rng = np.random.default_rng(2)
  mu, lv = random_posterior(rng)
  per_unit = np_gaussian_kl(mu.astype(np.float64), lv.astype(np.float64), 0.0, 0.0)
  expected = np.stack([per_unit[..., 8 * t:8 * (t + 1)].sum(axis=(1, 2, 3)).mean() for t in range(8)])
  got = losses.gaussian_kl_per_block(mu, lv, 8).numpy()
  assert got.shape == (8,)
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  assert got.sum() == pytest.approx(per_unit.sum(axis=(1, 2, 3)).mean(), rel=1e-6)


def test_kl_per_block_sees_the_right_block():
  mu = np.zeros((1, 4, 4, 64), np.float32)
  lv = np.zeros_like(mu)
  mu[..., 8 * 5 + 3] = 1.0                       # channel 8t + k with t = 5
  kl = losses.gaussian_kl_per_block(mu, lv, 8).numpy()
  expected = np.zeros(8)
  expected[5] = 16 * 0.5                         # 16 spatial units of KL(N(1,1)||N(0,1)) = 1/2
  np.testing.assert_allclose(kl, expected, atol=1e-6)


def test_kl_per_block_rejects_indivisible_channels():
  mu = np.zeros((1, 4, 4, 10), np.float32)
  with pytest.raises(ValueError, match='equal channel blocks'):
    losses.gaussian_kl_per_block(mu, mu, 8)


@pytest.mark.parametrize('num_blocks, n_early', [(8, 3), (4, 2), (2, 1), (1, 0), (16, 6), (12, 5)])
def test_block_kl_weights_default_split(num_blocks, n_early):
  weights = losses.block_kl_weights(num_blocks, 2.0, 1.0)
  assert weights.shape == (num_blocks,) and weights.dtype == np.float32
  np.testing.assert_array_equal(weights, [2.0] * n_early + [1.0] * (num_blocks - n_early))


def test_block_kl_weights_explicit_and_invalid():
  np.testing.assert_array_equal(losses.block_kl_weights(4, 5.0, 1.0, n_early=1), [5, 1, 1, 1])
  with pytest.raises(ValueError):
    losses.block_kl_weights(4, 1.0, 1.0, n_early=5)


def test_weighted_kl_identities():
  rng = np.random.default_rng(3)
  kl = losses.gaussian_kl_per_block(*random_posterior(rng), 8)
  total = float(tf.reduce_sum(kl))
  assert float(losses.weighted_kl(kl, losses.block_kl_weights(8, 1.0, 1.0))) == pytest.approx(total, rel=1e-6)
  expected = total + float(tf.reduce_sum(kl[:3]))
  assert float(losses.weighted_kl(kl, losses.block_kl_weights(8, 2.0, 1.0))) == pytest.approx(expected, rel=1e-6)
  with pytest.raises(ValueError):
    losses.weighted_kl(kl, np.ones(4, np.float32))


# ----------------------------------------------------------------------------------------- 7.3-9: normalisation


def test_reconstruction_mse_is_elementwise_mean_and_resolution_free():
  rng = np.random.default_rng(4)
  x = rng.normal(size=(3, 8, 8, 3)).astype(np.float32)
  y = rng.normal(size=(3, 8, 8, 3)).astype(np.float32)
  assert float(losses.reconstruction_mse(x, y)) == pytest.approx(np.mean((x - y) ** 2), rel=1e-6)
  # Doubling H and W by nearest-neighbour repetition leaves the mean unchanged.
  up = lambda a: np.repeat(np.repeat(a, 2, axis=1), 2, axis=2)
  assert float(losses.reconstruction_mse(up(x), up(y))) == pytest.approx(float(losses.reconstruction_mse(x, y)),
                                                                         rel=1e-6)


def test_kl_is_a_batch_mean():
  rng = np.random.default_rng(5)
  mu, lv = random_posterior(rng, (1, 4, 4, 16))
  single = losses.gaussian_kl_per_block(mu, lv, 4).numpy()
  repeated = losses.gaussian_kl_per_block(np.repeat(mu, 7, 0), np.repeat(lv, 7, 0), 4).numpy()
  np.testing.assert_allclose(repeated, single, rtol=1e-6)


# ----------------------------------------------------------------------------------------- likelihoods, MI, IWAE


def test_bernoulli_log_likelihood_matches_numpy():
  rng = np.random.default_rng(6)
  logits = rng.normal(size=(4, 5, 5, 1)).astype(np.float32) * 3
  x = (rng.random((4, 5, 5, 1)) < 0.5).astype(np.float32)
  p = 1 / (1 + np.exp(-logits.astype(np.float64)))
  expected = (x * np.log(p) + (1 - x) * np.log(1 - p)).sum(axis=(1, 2, 3))
  got = losses.bernoulli_log_likelihood(x, logits).numpy()
  assert got.shape == (4,)
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  # Extreme logits stay finite (computed from logits, not from a clipped probability).
  assert np.isfinite(losses.bernoulli_log_likelihood(np.ones((1, 2)), np.full((1, 2), -80.0)).numpy()).all()


def test_gaussian_log_probs_match_numpy():
  rng = np.random.default_rng(7)
  z, mu = rng.normal(size=(2, 3, 4, 4, 2)).astype(np.float32)
  lv = rng.normal(size=(3, 4, 4, 2)).astype(np.float32)
  np.testing.assert_allclose(losses.gaussian_log_prob_std(z).numpy(),
                             np_log_normal(z, 0.0, 1.0).sum(axis=(1, 2, 3)), rtol=1e-5)
  np.testing.assert_allclose(losses.diag_gaussian_log_prob(z, mu, lv).numpy(),
                             np_log_normal(z, mu, np.exp(lv)).sum(axis=(1, 2, 3)), rtol=1e-5)
  np.testing.assert_allclose(losses.gaussian_log_likelihood(z, mu, 0.5).numpy(),
                             np_log_normal(z, mu, 0.25).sum(axis=(1, 2, 3)), rtol=1e-5)


def test_mi_loss_value_and_stop_gradient():
  u = tf.Variable(np.arange(6, dtype=np.float32).reshape(2, 3))
  u_hat = tf.Variable(np.ones((2, 3), np.float32))
  with tf.GradientTape() as tape:
    loss = losses.mi_loss(u, u_hat)
  grad_u, grad_u_hat = tape.gradient(loss, [u, u_hat])
  assert float(loss) == pytest.approx(np.mean((1 - np.arange(6)) ** 2))
  assert grad_u is None                                            # the target is held constant
  np.testing.assert_allclose(grad_u_hat.numpy(), 2 * (1 - u.numpy()) / 6, rtol=1e-6)


def test_iwae_bound_is_stable_logmeanexp():
  log_w = np.array([[-1000.0, 3.0], [-1001.0, 1.0], [-1002.0, 2.0]], np.float32)
  shifted = log_w - log_w.max(0)
  expected = log_w.max(0) + np.log(np.exp(shifted.astype(np.float64)).mean(0))
  got = losses.iwae_bound(log_w).numpy()
  assert np.isfinite(got).all()
  np.testing.assert_allclose(got, expected, rtol=1e-6)
  # K identical weights: the bound is that weight.
  np.testing.assert_allclose(losses.iwae_bound(np.full((5, 2), -3.0, np.float32)).numpy(), [-3.0, -3.0], rtol=1e-6)


# ----------------------------------------------------------------------------------------- 7.3-17: generalised KL


def test_generalised_kl_is_zero_for_identical_distributions():
  rng = np.random.default_rng(8)
  mu, lv = rng.normal(size=(2, 3, 7)).astype(np.float32)
  np.testing.assert_allclose(losses.gaussian_kl(mu, lv, mu, lv).numpy(), 0.0, atol=1e-6)
  assert (losses.gaussian_kl(mu, lv, mu + 0.1, lv).numpy() > 0).all()


def test_generalised_kl_gradients_match_finite_differences():
  rng = np.random.default_rng(9)
  mu_q, lv_q, mu_p, lv_p = (rng.normal(size=(6,)) for _ in range(4))
  mu_p_var, lv_p_var = tf.Variable(mu_p.astype(np.float32)), tf.Variable(lv_p.astype(np.float32))
  with tf.GradientTape() as tape:
    total = tf.reduce_sum(losses.gaussian_kl(mu_q.astype(np.float32), lv_q.astype(np.float32), mu_p_var, lv_p_var))
  grad_mu_p, grad_lv_p = (g.numpy() for g in tape.gradient(total, [mu_p_var, lv_p_var]))
  eps = 1e-5
  fd_mu = (np_gaussian_kl(mu_q, lv_q, mu_p + eps, lv_p) - np_gaussian_kl(mu_q, lv_q, mu_p - eps, lv_p)) / (2 * eps)
  fd_lv = (np_gaussian_kl(mu_q, lv_q, mu_p, lv_p + eps) - np_gaussian_kl(mu_q, lv_q, mu_p, lv_p - eps)) / (2 * eps)
  np.testing.assert_allclose(grad_mu_p, fd_mu, atol=1e-3, rtol=1e-3)
  np.testing.assert_allclose(grad_lv_p, fd_lv, atol=1e-3, rtol=1e-3)


def test_generalised_kl_floor_keeps_collapsed_prior_finite():
  lv_p = tf.Variable(np.full((4,), -30.0, np.float32))
  mu_p = tf.Variable(np.zeros((4,), np.float32))
  mu_q = np.array([0.0, 0.1, -0.2, 1.0], np.float32)
  with tf.GradientTape() as tape:
    kl = losses.gaussian_kl(mu_q, np.zeros(4, np.float32), mu_p, lv_p)
    total = tf.reduce_sum(kl)
  grads = tape.gradient(total, [mu_p, lv_p])
  assert np.isfinite(kl.numpy()).all() and all(np.isfinite(g.numpy()).all() for g in grads)
  floor_lv = np.log(losses.PRIOR_VARIANCE_FLOOR)
  np.testing.assert_allclose(kl.numpy(), np_gaussian_kl(mu_q.astype(np.float64), 0.0, 0.0, floor_lv), rtol=1e-4)
  assert (kl.numpy() >= 0).all()
