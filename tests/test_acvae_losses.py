"""Chapter 6 conditional KL per block and the L_G assembly against NumPy, Monte Carlo and tfp (spec B3)."""

import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from rlcv_tf.acvae import losses

tfd = tfp.distributions

B, H, W, C, T = 3, 2, 2, 8, 4


def np_kl(mu_q, lv_q, mu_p, lv_p):
  """Elementwise KL(N(mu_q, e^lv_q) || N(mu_p, v_p)), v_p = max(e^lv_p, 1e-5), float64."""
  var_p = np.maximum(np.exp(lv_p), 1e-5)
  return 0.5 * (np.log(var_p) - lv_q + (np.exp(lv_q) + (mu_q - mu_p) ** 2) / var_p - 1.0)


def np_kl_blocks(mu_q, lv_q, mu_p, lv_p, num_blocks):
  """KL_t by slicing channels [t*C/T, (t+1)*C/T) and looping over examples."""
  per = np_kl(*(np.asarray(x, np.float64) for x in (mu_q, lv_q, mu_p, lv_p)))
  c = per.shape[-1] // num_blocks
  out = np.zeros(num_blocks)
  for t in range(num_blocks):
    for b in range(per.shape[0]):
      out[t] += per[b, ..., t * c:(t + 1) * c].sum()
  return out / per.shape[0]


def params(seed=0, lv_p_low=-2.0):
  rng = np.random.default_rng(seed)
  shape = (B, H, W, C)
  mu_q = rng.normal(0, 1, shape)
  lv_q = rng.uniform(-2, 1, shape)
  mu_p = rng.normal(0, 1, shape)
  lv_p = rng.uniform(lv_p_low, 1, shape)
  return [x.astype(np.float32) for x in (mu_q, lv_q, mu_p, lv_p)]


def test_per_block_matches_numpy_channel_slices_and_sums_to_total():
  p = params()
  kl_t = losses.conditional_kl_per_block(*p, num_blocks=T).numpy()
  assert kl_t.shape == (T,)
  np.testing.assert_allclose(kl_t, np_kl_blocks(*p, T), rtol=1e-5)
  total = float(losses.conditional_kl(*p))
  assert kl_t.sum() == pytest.approx(total, rel=1e-5)
  assert total == pytest.approx(np_kl(*(x.astype(np.float64) for x in p)).sum() / B, rel=1e-5)


def test_matches_monte_carlo_per_block():
  p = params(seed=1)
  mu_q, lv_q, mu_p, lv_p = (x.astype(np.float64) for x in p)
  rng = np.random.default_rng(7)
  n = 200_000
  eps = rng.standard_normal((n,) + mu_q.shape[1:])
  kl_t = losses.conditional_kl_per_block(*p, num_blocks=T).numpy()
  c = C // T
  for b in range(B):
    z = mu_q[b] + np.exp(0.5 * lv_q[b]) * eps                      # [n, H, W, C]
    log_ratio = (-0.5 * (lv_q[b] + (z - mu_q[b]) ** 2 / np.exp(lv_q[b]))
                 + 0.5 * (lv_p[b] + (z - mu_p[b]) ** 2 / np.exp(lv_p[b])))
    block = np.stack([log_ratio[..., t * c:(t + 1) * c].sum(axis=(1, 2, 3)) for t in range(T)], axis=1)   # [n, T]
    if b == 0:
      mc, var = block.mean(0), block.var(0)
    else:
      mc, var = mc + block.mean(0), var + block.var(0)
  mc, se = mc / B, np.sqrt(var / n) / B
  assert np.all(np.abs(kl_t - mc) < 5 * se + 1e-4), (kl_t, mc, se)


def test_matches_tfp_multivariate_normal_diag_per_block():
  p = params(seed=2)
  kl_t = losses.conditional_kl_per_block(*p, num_blocks=T).numpy()
  c = C // T
  mu_q, lv_q, mu_p, lv_p = (x.astype(np.float64) for x in p)
  expected = np.zeros(T)
  for t in range(T):
    def flat(x):
      return x[..., t * c:(t + 1) * c].reshape(B, -1)
    q = tfd.MultivariateNormalDiag(loc=flat(mu_q), scale_diag=np.exp(0.5 * flat(lv_q)))
    prior = tfd.Independent(tfd.Normal(loc=flat(mu_p), scale=np.exp(0.5 * flat(lv_p))), reinterpreted_batch_ndims=1)
    q_ind = tfd.Independent(tfd.Normal(loc=flat(mu_q), scale=np.exp(0.5 * flat(lv_q))), reinterpreted_batch_ndims=1)
    expected[t] = tfd.kl_divergence(q_ind, prior).numpy().mean()
    p_mvn = tfd.MultivariateNormalDiag(loc=flat(mu_p), scale_diag=np.exp(0.5 * flat(lv_p)))
    assert tfd.kl_divergence(q, p_mvn).numpy().mean() == pytest.approx(expected[t], rel=1e-9)
  np.testing.assert_allclose(kl_t, expected, rtol=1e-5)


def test_kl_of_q_to_itself_is_zero():
  mu, lv, _, _ = params(seed=3)
  np.testing.assert_allclose(losses.conditional_kl_per_block(mu, lv, mu, lv, T).numpy(), np.zeros(T), atol=1e-6)


def test_gradients_reach_the_prior_and_match_closed_form():
  mu_q, lv_q, mu_p0, lv_p0 = params(seed=4)
  mu_p, lv_p = tf.Variable(mu_p0), tf.Variable(lv_p0)
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(losses.conditional_kl_per_block(mu_q, lv_q, mu_p, lv_p, T))
  g_mu, g_lv = tape.gradient(loss, [mu_p, lv_p])
  var_p = np.exp(lv_p0.astype(np.float64))
  d_mu = (mu_p0 - mu_q) / var_p / B
  d_lv = (0.5 - 0.5 * (np.exp(lv_q) + (mu_q - mu_p0) ** 2) / var_p) / B
  assert np.abs(g_mu.numpy()).max() > 1e-3 and np.abs(g_lv.numpy()).max() > 1e-3
  np.testing.assert_allclose(g_mu.numpy(), d_mu, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(g_lv.numpy(), d_lv, rtol=1e-4, atol=1e-6)


def test_collapsed_prior_is_finite_with_finite_gradients():
  mu_q, lv_q, mu_p0, _ = params(seed=5)
  lv_p0 = np.full_like(mu_q, -30.0)
  mu_p, lv_p = tf.Variable(mu_p0), tf.Variable(lv_p0)
  with tf.GradientTape() as tape:
    kl_t = losses.conditional_kl_per_block(mu_q, lv_q, mu_p, lv_p, T)
    loss = tf.reduce_sum(kl_t)
  grads = tape.gradient(loss, [mu_p, lv_p])
  assert np.all(np.isfinite(kl_t.numpy()))
  assert all(np.all(np.isfinite(g.numpy())) for g in grads)
  np.testing.assert_allclose(kl_t.numpy(), np_kl_blocks(mu_q, lv_q, mu_p0, lv_p0, T), rtol=1e-5)  # floored at 1e-5
  assert np.abs(grads[0].numpy()).max() > 0


def test_flat_latent_one_block_is_the_total_kl():
  rng = np.random.default_rng(6)
  mu_q, lv_q, mu_p, lv_p = (rng.normal(0, 1, (B, 10)).astype(np.float32) for _ in range(4))
  kl_1 = losses.conditional_kl_per_block(mu_q, lv_q, mu_p, lv_p, 1).numpy()
  expected = np_kl(*(x.astype(np.float64) for x in (mu_q, lv_q, mu_p, lv_p))).sum() / B
  np.testing.assert_allclose(kl_1, [expected], rtol=1e-5)
  alpha = 3e-4
  weights = losses.block_kl_weights(1, alpha, alpha)
  assert float(losses.weighted_kl(kl_1, weights)) == pytest.approx(alpha * expected, rel=1e-5)


def test_weighted_kl_uses_the_chapter5_block_weights():
  kl_t = losses.conditional_kl_per_block(*params(seed=7), num_blocks=T).numpy()
  weights = losses.block_kl_weights(T, 3e-4, 2e-4)        # first 2 of 4 blocks get alpha1
  expected = 3e-4 * (kl_t[0] + kl_t[1]) + 2e-4 * (kl_t[2] + kl_t[3])
  assert float(losses.weighted_kl(kl_t, weights)) == pytest.approx(expected, rel=1e-6)


def test_generator_loss_assembles_the_terms():
  out = losses.generator_loss(rec=1.0, kl_per_block=[2.0, 3.0], kl_weights=[0.1, 0.2], adv=4.0, beta=0.5, mi=6.0,
                              kappa=0.01, attn=0.7)
  assert float(out['total']) == pytest.approx(1.0 + 0.8 + 2.0 + 0.06 + 0.7, rel=1e-6)
  assert float(out['kl_total']) == pytest.approx(5.0) and float(out['kl_weighted']) == pytest.approx(0.8)
  assert float(out['adv']) == 4.0 and float(out['mi']) == 6.0 and float(out['attention']) == pytest.approx(0.7)
  plain = losses.generator_loss(rec=1.0, kl_per_block=[2.0], kl_weights=[0.5])
  assert float(plain['total']) == pytest.approx(2.0) and set(plain) == {'rec', 'kl_total', 'kl_weighted', 'total'}


def test_adversarial_and_attention_terms_match_numpy():
  lq, lp = np.array([0.3, -1.2, 2.0], np.float32), np.array([-0.5, 0.1, 0.0], np.float32)
  expected = np.mean(np.log1p(np.exp(-lq))) + np.mean(np.log1p(np.exp(-lp)))
  assert float(losses.adversarial_generator_loss(lq, lp)) == pytest.approx(expected, rel=1e-6)
  m = np.array([[0.7, 0.2, 0.5], [0.3, 0.8, 0.5]])
  h = -(m * np.log(m)).sum(axis=0).mean()
  ds = ((m.sum(axis=1) - 1.5) ** 2).sum()
  assert float(losses.attention_loss(m.astype(np.float32), 0.05, 0.1)) == pytest.approx(0.05 * h + 0.1 * ds, rel=1e-5)


def test_bad_shapes_raise_clear_errors():
  mu_q, lv_q, mu_p, lv_p = params()
  with pytest.raises(ValueError, match='share one shape'):
    losses.conditional_kl_per_block(mu_q, lv_q, mu_p[:, :1], lv_p, T)
  with pytest.raises(ValueError, match='channel blocks'):
    losses.conditional_kl_per_block(mu_q, lv_q, mu_p, lv_p, 3)
  with pytest.raises(ValueError, match=r'\[B, H, W, C\]'):
    losses.conditional_kl_per_block(mu_q[0, 0], lv_q[0, 0], mu_p[0, 0], lv_p[0, 0][None], T)
  with pytest.raises(ValueError, match='must both be'):
    losses.generator_loss(rec=1.0, kl_per_block=[1.0, 2.0], kl_weights=[1.0])


def test_floor_constant_is_chapter5s():
  assert losses.PRIOR_VARIANCE_FLOOR == 1e-5
  assert math.log(losses.PRIOR_VARIANCE_FLOOR) == pytest.approx(-11.5129, abs=1e-4)
