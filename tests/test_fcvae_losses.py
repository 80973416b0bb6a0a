"""Seed-002 losses against independent references: NumPy loops of the formulas, TFP's multivariate KL, and a
200,000-sample Monte Carlo of the filter average."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from rlcv_tf.fcvae import losses

tfd = tfp.distributions


def _map(seed, shape=(3, 7, 7, 4), lv_scale=0.3):
  rng = np.random.default_rng(seed)
  return (rng.normal(size=shape).astype(np.float32), (lv_scale * rng.normal(size=shape)).astype(np.float32))


def _kl_loop(mu, lv):
  """1/2 sum (e^lv + mu^2 - 1 - lv) per example, one unit at a time (Eq. 3.27)."""
  out = np.zeros(mu.shape[0])
  for b in range(mu.shape[0]):
    for m, v in zip(mu[b].ravel(), lv[b].ravel()):
      out[b] += 0.5 * (np.exp(v) + m * m - 1.0 - v)
  return out


def test_neuron_kl_matches_tfp_multivariate_and_the_closed_form():
  mu, lv = _map(0)
  flat_mu, flat_sd = mu.reshape(3, -1), np.exp(0.5 * lv.reshape(3, -1))
  q = tfd.MultivariateNormalDiag(flat_mu, flat_sd)
  p = tfd.MultivariateNormalDiag(np.zeros_like(flat_mu), np.ones_like(flat_sd))
  np.testing.assert_allclose(losses.kl_neuron(mu, lv).numpy(), tfd.kl_divergence(q, p).numpy(), rtol=1e-5)
  np.testing.assert_allclose(losses.kl_neuron(mu, lv).numpy(), _kl_loop(mu, lv), rtol=1e-5)
  assert np.allclose(losses.kl_neuron(np.zeros_like(mu), np.zeros_like(lv)).numpy(), 0.0)


def test_wta_as_written_equals_neuron_level():
  mu, lv = _map(0, lv_scale=2.0)
  # Eq. 5.1 term by term: per position, the KL of the k-vector against N(0, I_k) (TFP), summed over positions.
  ref = np.zeros(mu.shape[0])
  for i in range(mu.shape[1]):
    for j in range(mu.shape[2]):
      q = tfd.MultivariateNormalDiag(mu[:, i, j], np.exp(0.5 * lv[:, i, j]))
      ref += tfd.kl_divergence(q, tfd.MultivariateNormalDiag(np.zeros(4, np.float32), np.ones(4, np.float32)))
  np.testing.assert_allclose(losses.kl_wta(mu, lv).numpy(), ref, rtol=1e-5)
  for seed in range(3):
    mu, lv = _map(seed, lv_scale=2.0)
    np.testing.assert_allclose(losses.kl_wta(mu, lv).numpy(), losses.kl_neuron(mu, lv).numpy(), rtol=1e-6)
    np.testing.assert_allclose(losses.kl_term(mu, lv, 'wta').numpy(), losses.kl_term(mu, lv, 'neuron').numpy(),
                               rtol=1e-6)


def test_filter_average_law_and_kl_match_a_200k_sample_monte_carlo():
  """The spec's draw: mu ~ N(0, 1), lv ~ 0.3 N(0, 1) on a 7x7 map of 4 filters; z_bar_f is computed by averaging
  sampled maps, and KL(N(law) || N(0, 1)) is estimated as E_{z_bar ~ samples}[log q(z_bar) - log p(z_bar)]."""
  mu, lv = _map(1, shape=(1, 7, 7, 4))
  rng = np.random.default_rng(2)
  n = 200_000
  z = mu[0] + np.exp(0.5 * lv[0]) * rng.standard_normal((n, 7, 7, 4)).astype(np.float32)
  z_bar = z.mean(axis=(1, 2))                                   # [n, 4]
  mean, log_var = (t.numpy()[0] for t in losses.filter_average_law(mu, lv))
  # The law, from the definition: mean of the means, sum of the variances / (mn)^2.
  np.testing.assert_allclose(mean, mu[0].mean(axis=(0, 1)), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.exp(log_var), np.exp(lv[0]).sum(axis=(0, 1)) / 49 ** 2, rtol=1e-5)
  np.testing.assert_allclose(z_bar.mean(axis=0), mean, atol=4 * np.sqrt(np.exp(log_var).max() / n))
  np.testing.assert_allclose(z_bar.var(axis=0), np.exp(log_var), rtol=0.02)
  var = np.exp(log_var)
  log_q = -0.5 * (np.log(2 * np.pi * var) + (z_bar - mean) ** 2 / var)
  log_p = -0.5 * (np.log(2 * np.pi) + z_bar ** 2)
  mc = (log_q - log_p).mean(axis=0).sum()
  closed = losses.kl_filter_avg(mu, lv).numpy()[0]
  assert abs(closed - mc) < 2e-2, (closed, mc)
  per_filter = losses.kl_filter_avg_per_filter(mu, lv).numpy()[0]
  np.testing.assert_allclose(losses.kl_term(mu, lv, 'filter_avg_weighted').numpy()[0], per_filter.mean(), rtol=1e-6)


def test_filter_average_is_stable_for_very_small_variances():
  mu, lv = _map(3)
  lv = lv - 80.0                                                # variances ~ e^-80: exp underflows in float32
  mean, log_var = losses.filter_average_law(mu, lv)
  assert np.all(np.isfinite(log_var.numpy()))
  np.testing.assert_allclose(log_var.numpy(), np.log(np.exp(lv.astype(np.float64)).sum(axis=(1, 2)) / 49 ** 2),
                             rtol=1e-5)


def _bce_loop(x, p):
  out = np.zeros(len(x))
  for b in range(len(x)):
    for xi, pi in zip(x[b].ravel(), p[b].ravel()):
      out[b] -= xi * np.log(pi) + (1 - xi) * np.log(1 - pi)
  return out


def test_bce_and_euclid_reductions_match_the_formulas():
  rng = np.random.default_rng(4)
  x = rng.uniform(size=(2, 5, 4, 1)).astype(np.float32)
  logits = rng.normal(size=(2, 5, 4, 1)).astype(np.float32)
  p = 1 / (1 + np.exp(-logits.astype(np.float64)))
  np.testing.assert_allclose(losses.bce(x, logits, 'sum').numpy(), _bce_loop(x, p), rtol=1e-5)
  np.testing.assert_allclose(losses.bce(x, logits, 'mean').numpy(), _bce_loop(x, p) / 20, rtol=1e-5)
  sq = ((x - p) ** 2).reshape(2, -1).sum(axis=1)
  np.testing.assert_allclose(losses.reconstruction(x, logits, 'euclid', 'sum').numpy(), sq, rtol=1e-5)
  np.testing.assert_allclose(losses.reconstruction(x, logits, 'euclid', 'mean').numpy(), sq / 20, rtol=1e-5)
  np.testing.assert_allclose(losses.euclid(x, p.astype(np.float32)).numpy(), np.sqrt(sq), rtol=1e-5)


def test_beta_zero_leaves_the_reconstruction_alone():
  rng = np.random.default_rng(5)
  x = rng.uniform(size=(2, 8, 8, 1)).astype(np.float32)
  logits = tf.constant(rng.normal(size=(2, 8, 8, 1)).astype(np.float32))
  mu, lv = (tf.Variable(a) for a in _map(6, shape=(2, 2, 2, 3)))
  with tf.GradientTape(persistent=True) as tape:
    terms = losses.beta_vae_loss(x, logits, mu, lv, beta=0.0)
    one = losses.beta_vae_loss(x, logits, mu, lv, beta=1.0)
  np.testing.assert_allclose(terms['loss'].numpy(), np.mean(_bce_loop(x, 1 / (1 + np.exp(-logits.numpy())))),
                             rtol=1e-5)
  assert terms['kl'].numpy() > 0                                 # reported, not trained
  assert tape.gradient(terms['loss'], lv) is None and tape.gradient(terms['loss'], mu) is None
  # beta = 1 is the negative ELBO: recon + KL (Eq. 3.23; not Eq. 3.29's +KL inside the maximised quantity).
  np.testing.assert_allclose(one['loss'].numpy(), terms['recon'].numpy() + one['kl'].numpy(), rtol=1e-6)


def test_filter_avg_weighted_is_mean_bce_plus_beta_mean_kl():
  rng = np.random.default_rng(7)
  x = rng.uniform(size=(2, 8, 8, 1)).astype(np.float32)
  logits = rng.normal(size=(2, 8, 8, 1)).astype(np.float32)
  mu, lv = _map(8, shape=(2, 2, 2, 3))
  terms = losses.beta_vae_loss(x, logits, mu, lv, beta=2.0, kl_mode='filter_avg_weighted', reduction='sum')
  mean_bce = np.mean(_bce_loop(x, 1 / (1 + np.exp(-logits.astype(np.float64)))) / 64)
  kl_f = np.zeros((2, 3))
  for b in range(2):
    for f in range(3):
      m, v = mu[b, :, :, f].mean(), np.exp(lv[b, :, :, f]).sum() / 16
      kl_f[b, f] = 0.5 * (v + m * m - 1 - np.log(v))
  np.testing.assert_allclose(terms['loss'].numpy(), mean_bce + 2.0 * kl_f.mean(), rtol=1e-5)


def test_competitive_entropy_matches_numpy_and_its_limits():
  mu, lv = _map(9, shape=(2, 3, 3, 4))
  a = np.abs(mu.astype(np.float64))
  p = np.exp(a) / np.exp(a).sum(axis=-1, keepdims=True)
  ref = (-(p * np.log(p)).sum(axis=-1)).reshape(2, -1).mean(axis=1)
  np.testing.assert_allclose(losses.competition_entropy(mu).numpy(), ref, rtol=1e-5)
  one_hot = np.zeros((1, 3, 3, 4), np.float32)
  one_hot[..., 2] = 50.0
  assert losses.competition_entropy(one_hot).numpy()[0] < 1e-6
  np.testing.assert_allclose(losses.competition_entropy(np.zeros((1, 3, 3, 4), np.float32)).numpy(), np.log(4),
                             rtol=1e-6)
  x = np.full((2, 4, 4, 1), 0.5, np.float32)
  terms = losses.beta_vae_loss(x, np.zeros_like(x), mu, lv, 1.0, 'wta_competitive', competition_weight=0.5)
  np.testing.assert_allclose(terms['loss'].numpy(), terms['recon'].numpy() + losses.kl_neuron(mu, lv).numpy().mean()
                             + 0.5 * ref.mean(), rtol=1e-5)


def test_ortho_penalty():
  rng = np.random.default_rng(10)
  kernel = rng.normal(size=(3, 3, 5, 4)).astype(np.float32)
  w = kernel.reshape(-1, 4).astype(np.float64)
  ref = sum((w[:, i] @ w[:, j] - (i == j)) ** 2 for i in range(4) for j in range(4))
  np.testing.assert_allclose(losses.ortho_penalty(kernel).numpy(), ref, rtol=1e-5)
  q, _ = np.linalg.qr(rng.normal(size=(45, 4)))
  assert losses.ortho_penalty(q.reshape(3, 3, 5, 4).astype(np.float32)).numpy() < 1e-5


def test_unknown_mode_is_refused():
  mu, lv = _map(0)
  with pytest.raises(ValueError, match='kl_mode'):
    losses.kl_term(mu, lv, 'winner')
