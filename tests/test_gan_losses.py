"""Seed 003 GAN maths in rlcv_tf.core.gan (spec seeds003_004 §7.1-7.2, §7.4): logit losses vs probability formulas,
saturation, the optimal discriminator, V(D*, G) = -log 4 + 2 JSD, cGAN loss composition and mismatched pairs, WGAN
clipping, the gradient penalty of a linear critic, emd_1d."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import integrate
from scipy import stats

from rlcv_tf.core import gan


def sigmoid(x):
  return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


# ------------------------------------------------------------------------------------------ T-GAN-1, T-GAN-2


def test_logit_losses_equal_the_probability_formulas():
  rng = np.random.default_rng(0)
  l_r, l_f = rng.normal(size=64).astype(np.float32) * 3, rng.normal(size=64).astype(np.float32) * 3
  d_r, d_f = sigmoid(l_r), sigmoid(l_f)
  # The slide's bracket, negated (D ascends it): -(mean log D(x) + mean log(1 - D(G(z)))).
  expected_d = -(np.mean(np.log(d_r)) + np.mean(np.log(1 - d_f)))
  assert float(gan.minimax_discriminator_loss(l_r, l_f)) == pytest.approx(expected_d, rel=1e-6)
  assert float(gan.saturating_generator_loss(l_f)) == pytest.approx(np.mean(np.log(1 - d_f)), rel=1e-6)
  assert float(gan.generator_loss(l_f)) == pytest.approx(-np.mean(np.log(d_f)), rel=1e-6)


def test_logit_losses_are_finite_at_plus_minus_100():
  big = np.array([100.0, -100.0], np.float32)
  for value in (gan.minimax_discriminator_loss(big, big), gan.saturating_generator_loss(big),
                gan.generator_loss(big), gan.conditional_discriminator_loss(big, big, big),
                gan.minimax_discriminator_loss(-big, big)):
    assert np.isfinite(float(value))
  # log(1 - sigmoid(100)) computed naively in float32 is -inf; the logit form gives -100 (mean with -0 -> -50).
  assert float(gan.saturating_generator_loss([100.0])) == pytest.approx(-100.0, rel=1e-6)


def test_saturation_gradient_at_minus_10():
  logit = tf.Variable([-10.0])
  with tf.GradientTape(persistent=True) as tape:
    sat = gan.saturating_generator_loss(logit)
    ns = gan.generator_loss(logit)
  g_sat, g_ns = float(tape.gradient(sat, logit)[0]), float(tape.gradient(ns, logit)[0])
  assert abs(g_sat) == pytest.approx(4.5398e-5, abs=1e-6)          # sigmoid(-10)
  assert abs(g_ns) == pytest.approx(0.9999546, abs=1e-6)           # 1 - sigmoid(-10)
  assert gan.generator_loss_fn() is gan.generator_loss
  assert gan.generator_loss_fn('saturating') is gan.saturating_generator_loss
  with pytest.raises(ValueError, match='non_saturating'):
    gan.generator_loss_fn('minimax')


# ------------------------------------------------------------------------------------------ T-GAN-3, T-GAN-6


def test_a_logistic_discriminator_learns_the_log_density_ratio():
  """x_real ~ N(1, 1), x_fake ~ N(-1, 1): log D*/(1 - D*) = log N(x; 1, 1) - log N(x; -1, 1) = 2x."""
  keras.utils.set_random_seed(0)
  d = keras.Sequential([keras.layers.Dense(1)])
  d.build((None, 1))
  opt = keras.optimizers.Adam(0.05)
  rng = np.random.default_rng(0)

  @tf.function
  def step(real, fake):
    with tf.GradientTape() as tape:
      loss = gan.minimax_discriminator_loss(d(real), d(fake))
    opt.apply_gradients(zip(tape.gradient(loss, d.trainable_variables), d.trainable_variables))

  for _ in range(500):
    step(rng.normal(1.0, 1.0, (512, 1)).astype(np.float32), rng.normal(-1.0, 1.0, (512, 1)).astype(np.float32))
  w, b = (float(np.ravel(v.numpy())[0]) for v in d.trainable_variables)
  assert w == pytest.approx(2.0, abs=0.25)
  assert b == pytest.approx(0.0, abs=0.2)


def jsd_discrete(p, q):
  m = (p + q) / 2
  kl = lambda a, b: np.sum(np.where(a > 0, a * np.log(a / b), 0.0))
  return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def value(p, q, d):
  """V(D, G) = E_p log D + E_q log(1 - D) for discrete p, q."""
  return np.sum(np.where(p > 0, p * np.log(d), 0)) + np.sum(np.where(q > 0, q * np.log(1 - d), 0))


def test_value_at_the_optimal_discriminator_is_minus_log4_plus_2jsd_discrete():
  rng = np.random.default_rng(1)
  for _ in range(5):
    p, q = rng.dirichlet(np.ones(7)), rng.dirichlet(np.ones(7))
    d_star = gan.optimal_discriminator(p, q)
    assert value(p, q, d_star) == pytest.approx(-np.log(4) + 2 * jsd_discrete(p, q), abs=1e-9)
    # D* is the maximiser: any other D gives less.
    other = np.clip(d_star + rng.normal(0, 0.05, 7), 1e-3, 1 - 1e-3)
    assert value(p, q, other) < value(p, q, d_star)
  same = rng.dirichlet(np.ones(7))
  assert value(same, same, gan.optimal_discriminator(same, same)) == pytest.approx(-np.log(4), abs=1e-12)


def test_value_at_the_optimal_discriminator_gaussians_quadrature_vs_monte_carlo_jsd():
  p, q = stats.norm(0.0, 1.0), stats.norm(1.5, 0.7)
  d_star = lambda x: gan.optimal_discriminator(p.pdf(x), q.pdf(x))
  one_minus = lambda x: gan.optimal_discriminator(q.pdf(x), p.pdf(x))     # 1 - D* without rounding to 0 in the tails
  v = integrate.quad(lambda x: p.pdf(x) * np.log(d_star(x)) + q.pdf(x) * np.log(one_minus(x)), -12, 12)[0]
  # JSD by Monte Carlo, an independent route: 0.5 E_p log(2p / (p + q)) + 0.5 E_q log(2q / (p + q)).
  rng = np.random.default_rng(0)
  xp, xq = p.rvs(400_000, random_state=rng), q.rvs(400_000, random_state=rng)
  jsd = 0.5 * np.mean(np.log(2 * p.pdf(xp) / (p.pdf(xp) + q.pdf(xp)))) + \
      0.5 * np.mean(np.log(2 * q.pdf(xq) / (p.pdf(xq) + q.pdf(xq))))
  assert v == pytest.approx(-np.log(4) + 2 * jsd, abs=3e-3)
  assert 0 < jsd < np.log(2)


# ------------------------------------------------------------------------------------------ T-CGAN-1, T-CGAN-3


def test_mismatch_pairs_are_a_derangement_masked_where_conditions_coincide():
  labels = np.array([3, 3, 1, 0, 0, 0, 2], np.int32)
  perm, valid = gan.mismatch_pairs(labels)
  perm, valid = perm.numpy(), valid.numpy()
  assert sorted(perm) == list(range(7)) and not np.any(perm == np.arange(7))
  assert list(valid) == [labels[i] != labels[perm[i]] for i in range(7)]
  one_hot = np.eye(4, dtype=np.float32)[labels]
  perm2, valid2 = gan.mismatch_pairs(one_hot)
  assert np.array_equal(perm2.numpy(), perm) and np.array_equal(valid2.numpy(), valid)
  attributes = np.array([[1, -1], [1, -1], [-1, -1]], np.float32)
  _, valid3 = gan.mismatch_pairs(attributes)
  assert list(valid3.numpy()) == [False, True, True]


@pytest.mark.parametrize('preset', ['thesis', 'stackgan'])
def test_conditional_d_loss_is_the_weighted_sum_of_three_bce_terms(preset):
  rng = np.random.default_rng(2)
  l_r, l_f, l_m = (rng.normal(size=8).astype(np.float32) * 2 for _ in range(3))
  mask = np.array([1, 1, 0, 1, 1, 1, 0, 1], bool)
  w_f, w_m = gan.CGAN_WEIGHTS[preset]
  bce = lambda logits, label: -(label * np.log(sigmoid(logits)) + (1 - label) * np.log(1 - sigmoid(logits)))
  expected = bce(l_r, 1).mean() + w_f * bce(l_f, 0).mean() + w_m * bce(l_m, 0)[mask].mean()
  got = gan.conditional_discriminator_loss(l_r, l_f, l_m, w_f, w_m, mismatch_mask=mask)
  assert float(got) == pytest.approx(expected, rel=1e-6)
  unmasked = bce(l_r, 1).mean() + w_f * bce(l_f, 0).mean() + w_m * bce(l_m, 0).mean()
  assert float(gan.conditional_discriminator_loss(l_r, l_f, l_m, w_f, w_m)) == pytest.approx(unmasked, rel=1e-6)
  two_term = bce(l_r, 1).mean() + bce(l_f, 0).mean()
  assert float(gan.conditional_discriminator_loss(l_r, l_f)) == pytest.approx(two_term, rel=1e-6)
  assert float(gan.conditional_discriminator_loss(l_r, l_f, l_m, mismatch_mask=np.zeros(8, bool))) == \
      pytest.approx(two_term, rel=1e-6)


# ------------------------------------------------------------------------------------------ WGAN pieces


def test_clip_weights_bounds_every_variable():
  variables = [tf.Variable(np.linspace(-1, 1, 11, dtype=np.float32)), tf.Variable([[0.5, -0.003]])]
  gan.clip_weights(variables, 0.01)
  for v in variables:
    assert np.all(np.abs(v.numpy()) <= 0.01)
  assert variables[1].numpy()[0, 1] == pytest.approx(-0.003)
  with pytest.raises(ValueError, match='clip'):
    gan.clip_weights(variables, 0.0)


@pytest.mark.parametrize('w', [[0.3, -0.4], [3.0, 4.0], [0.6, 0.8]])
def test_gradient_penalty_of_a_linear_critic(w):
  w = np.asarray(w, np.float32)
  critic = lambda x: tf.linalg.matvec(x, w)
  rng = np.random.default_rng(0)
  real, fake = rng.normal(size=(16, 2)).astype(np.float32), rng.normal(size=(16, 2)).astype(np.float32)
  gp = gan.gradient_penalty(critic, real, fake, weight=10.0, seed=(1, 2))
  assert float(gp) == pytest.approx(10.0 * (np.linalg.norm(w) - 1.0) ** 2, rel=1e-4, abs=1e-6)


def test_gradient_penalty_interpolates_per_example_on_images():
  """f(x) = 0.5 * sum x^2: grad at x_hat = x_hat, so the penalty is mean (||eps x + (1 - eps) x~|| - 1)^2."""
  rng = np.random.default_rng(3)
  real, fake = rng.normal(size=(4, 3, 3, 2)).astype(np.float32), rng.normal(size=(4, 3, 3, 2)).astype(np.float32)
  eps = np.array([0.0, 0.25, 0.5, 1.0], np.float32)
  critic = lambda x: 0.5 * tf.reduce_sum(tf.square(x), axis=[1, 2, 3])
  x_hat = eps[:, None, None, None] * real + (1 - eps[:, None, None, None]) * fake
  expected = np.mean((np.linalg.norm(x_hat.reshape(4, -1), axis=1) - 1) ** 2)
  assert float(gan.gradient_penalty(critic, real, fake, weight=1.0, epsilon=eps)) == pytest.approx(expected, rel=1e-5)


def test_wgan_losses_and_emd_1d():
  assert float(gan.wgan_critic_loss([1.0, 3.0], [0.0, 0.0])) == pytest.approx(-2.0)
  assert float(gan.wgan_generator_loss([1.0, 3.0])) == pytest.approx(-2.0)
  assert gan.emd_1d(np.zeros(50), np.full(50, -1.5)) == pytest.approx(1.5)
  rng = np.random.default_rng(0)
  assert gan.emd_1d(rng.normal(size=10_000), rng.normal(size=10_000) + 2) == pytest.approx(2.0, abs=0.05)
  with pytest.raises(ValueError, match='equal-size'):
    gan.emd_1d(np.zeros(3), np.zeros(4))
