"""HardKuma, KL(Kuma || Beta) and the L0/switch expectations against SciPy / NumPy references (spec ch3 Sec. 9, 1-6).

References are float64 and written from the definitions: the Kumaraswamy density and CDF as formulas,
scipy.stats.beta where Kuma(a, 1) = Beta(a, 1) and Kuma(1, b) = Beta(1, b), scipy.integrate.quad for E[z] and for
KL = int q log(q / p), Monte Carlo of independent Bernoulli gates for Eq. 3.9 / 3.11, and the spec's table.
"""

import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import integrate, special, stats

from rlcv_tf.core import hardkuma

tfd = tfp.distributions
LOW, HIGH = -0.1, 1.1
X0, X1 = 1.0 / 12.0, 11.0 / 12.0        # 0 and 1 on the Kumaraswamy's scale: (z - l) / (r - l)


# ------------------------------------------------------------------------------------------------ references
def ref_kuma_cdf(x, a, b):
  return 1.0 - (1.0 - x ** a) ** b


def ref_kuma_logpdf(x, a, b):
  return math.log(a * b) + (a - 1.0) * np.log(x) + (b - 1.0) * np.log(1.0 - x ** a)


def ref_p0(a, b):
  return ref_kuma_cdf(X0, a, b)


def ref_p1(a, b):
  return 1.0 - ref_kuma_cdf(X1, a, b)


def ref_mean(a, b):
  """E[z] = int_0^1 P(z > t) dt = int_0^1 (1 - F_K((t - l) / (r - l))) dt (spec Sec. 9 test 6)."""
  return integrate.quad(lambda t: 1.0 - ref_kuma_cdf((t - LOW) / (HIGH - LOW), a, b), 0.0, 1.0,
                        epsabs=1e-13, epsrel=1e-12)[0]


def ref_kl(a, b, alpha, beta):
  """int_0^1 q(x) log(q(x) / p(x)) dx with x = F_K^-1(u), u ~ U(0, 1), evaluated in log space."""
  log_b = special.betaln(alpha, beta)

  def integrand(u):
    if u <= 0.0 or u >= 1.0:
      return 0.0
    log_1m_xa = math.log1p(-u) / b                       # 1 - x^a = (1 - u)^(1/b)
    log_x = math.log(-math.expm1(log_1m_xa)) / a
    log_1m_x = math.log(-math.expm1(log_x)) if log_x < 0.0 else -math.inf
    if not math.isfinite(log_1m_x):
      return 0.0
    log_q = math.log(a * b) + (a - 1.0) * log_x + (b - 1.0) * log_1m_xa
    log_p = (alpha - 1.0) * log_x + (beta - 1.0) * log_1m_x - log_b
    return log_q - log_p

  return integrate.quad(integrand, 0.0, 1.0, limit=500, epsabs=1e-10, epsrel=1e-10)[0]


def ref_kl_series(a, b, alpha, beta, num_terms):
  """Eq. 3.5 term by term."""
  total = 0.0
  for m in range(1, num_terms + 1):
    total += math.exp(special.betaln(m / a, b)) / (m + a * b)
  return ((a - alpha) / a * (-np.euler_gamma - special.digamma(b) - 1.0 / b) + math.log(a * b)
          + special.betaln(alpha, beta) - (b - 1.0) / b + (beta - 1.0) * b * total)


def mc_gate_counts(p0, mask, draws, rng):
  """Draws independent gates (z != 0 with probability 1 - p0 on the free gates, z = 1 elsewhere) and counts, per
  draw and sequence, the non-zero free gates and the switches over the pairs (t, t + 1) that start on a free gate
  (the step after the last column is a fixed gate)."""
  batch, steps = p0.shape
  nonzero = np.ones((draws, batch, steps + 1), dtype=bool)
  free = mask.astype(bool)
  nonzero[:, :, :steps] = np.where(free, rng.random((draws, batch, steps)) >= p0, True)
  l0 = np.zeros((draws, batch))
  switches = np.zeros((draws, batch))
  for t in range(steps):
    l0 += free[:, t] * nonzero[:, :, t]
    switches += free[:, t] * (nonzero[:, :, t] != nonzero[:, :, t + 1])
  return l0, switches


# ------------------------------------------------------------------------------------------- Kumaraswamy / HardKuma
SHAPES = [(a, b) for a in (0.3, 1.0, 3.0) for b in (0.3, 1.0, 3.0)]


def test_kumaraswamy_round_trip():
  """F_K(F_K^-1(u)) = u (spec Sec. 9 test 1). In float32 only up to u = 0.9: for b < 1 and u near 1, k = F_K^-1(u)
  is within a few float32 ulps of 1 and F_K is steep there (u = 0.99, a = b = 0.3: 1 - k ~ 7e-7), so the round trip
  is off by ~1e-3 from rounding k alone. The HardKuma clips that region to z = 1 (P1 = 0.33 there)."""
  u64 = np.linspace(0.001, 0.999, 199)
  u = u64.astype(np.float32)
  for a, b in SHAPES:
    k64 = tfd.Kumaraswamy(np.float64(a), np.float64(b)).quantile(u64)   # the sampler's inverse CDF (Eq. 3.4)
    np.testing.assert_allclose(hardkuma.kumaraswamy_cdf(k64, a, b), u64, atol=1e-12)
    np.testing.assert_allclose(hardkuma.kumaraswamy_quantile(u64, a, b), k64, rtol=1e-12)
    low = u <= 0.9
    for k in (tfd.Kumaraswamy(np.float32(a), np.float32(b)).quantile(u),
              hardkuma.kumaraswamy_quantile(u, np.float32(a), np.float32(b))):
      np.testing.assert_allclose(hardkuma.kumaraswamy_cdf(k, np.float32(a), np.float32(b))[low], u[low], atol=1e-5)
    gate = hardkuma.HardKumaraswamy(np.float32(a), np.float32(b))
    inner = u[(u > ref_p0(a, b) + 1e-3) & (u < 1.0 - ref_p1(a, b) - 1e-3)]
    np.testing.assert_allclose(gate.cdf(gate.quantile(inner)), inner, atol=1e-5)


def test_kumaraswamy_density_and_cdf_against_scipy_and_formulas():
  x = np.linspace(1e-3, 1.0 - 1e-3, 301)
  for a in (0.3, 0.7, 1.0, 2.5, 8.0):
    # Kuma(a, 1) = Beta(a, 1) and Kuma(1, b) = Beta(1, b) (thesis App. 3.A).
    np.testing.assert_allclose(hardkuma.kumaraswamy_log_prob(x, a, 1.0), stats.beta.logpdf(x, a, 1.0), rtol=1e-5)
    np.testing.assert_allclose(hardkuma.kumaraswamy_log_prob(x, 1.0, a), stats.beta.logpdf(x, 1.0, a), rtol=1e-5)
    np.testing.assert_allclose(hardkuma.kumaraswamy_cdf(x, a, 1.0), stats.beta.cdf(x, a, 1.0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(hardkuma.kumaraswamy_cdf(x, 1.0, a), stats.beta.cdf(x, 1.0, a), rtol=1e-9, atol=1e-12)
    x32 = x.astype(np.float32)
    np.testing.assert_allclose(hardkuma.kumaraswamy_log_prob(x32, np.float32(a), np.float32(1.0)),
                               stats.beta.logpdf(x, a, 1.0), rtol=1e-4, atol=1e-5)
  for a, b in SHAPES + [(0.7, 2.0), (5.0, 0.5)]:
    np.testing.assert_allclose(hardkuma.kumaraswamy_log_prob(x, a, b), ref_kuma_logpdf(x, a, b), rtol=1e-10)
    np.testing.assert_allclose(hardkuma.kumaraswamy_cdf(x, a, b), ref_kuma_cdf(x, a, b), rtol=1e-9, atol=1e-14)
    # The CDF is the integral of the density (checks the corrected Eq. 3.3 against the pdf).
    for point in (0.1, 0.5, 0.9):
      area = integrate.quad(lambda t: math.exp(ref_kuma_logpdf(t, a, b)), 0.0, point, epsabs=1e-12)[0]
      assert abs(float(hardkuma.kumaraswamy_cdf(np.float64(point), a, b)) - area) < 1e-8


@pytest.mark.parametrize('a,b', [(0.5, 1.0), (1.0, 1.0), (2.0, 1.0), (0.7, 2.0), (3.0, 0.3)])
def test_hardkuma_log_prob_is_the_mixed_measure(a, b):
  gate = hardkuma.HardKumaraswamy(np.float64(a), np.float64(b))
  z = np.linspace(0.001, 0.999, 200)
  x = (z - LOW) / (HIGH - LOW)
  np.testing.assert_allclose(gate.log_prob(z), ref_kuma_logpdf(x, a, b) - math.log(HIGH - LOW), rtol=1e-10)
  if b == 1.0:
    np.testing.assert_allclose(gate.log_prob(z), stats.beta.logpdf(x, a, 1.0) - math.log(HIGH - LOW), rtol=1e-5)
  # Atoms: log P(z = 0) and log P(z = 1); nothing outside [0, 1].
  np.testing.assert_allclose(gate.log_prob([0.0, 1.0]), np.log([ref_p0(a, b), ref_p1(a, b)]), rtol=1e-10)
  assert np.all(np.isneginf(gate.log_prob([-0.05, 1.05]).numpy()))
  # Total mass over Lebesgue on (0, 1) plus the two atoms is 1.
  nodes, weights = np.polynomial.legendre.leggauss(200)
  interior = float(np.sum(0.5 * weights * gate.prob(0.5 * (nodes + 1.0)).numpy()))
  assert abs(interior + ref_p0(a, b) + ref_p1(a, b) - 1.0) < 1e-10
  # CDF: 0 below 0, the atom at 0, the continuous part, 1 at 1.
  np.testing.assert_allclose(gate.cdf([-0.5, 0.0, 0.3, 0.999, 1.0, 2.0]),
                             [0.0, ref_p0(a, b), ref_kuma_cdf((0.3 - LOW) / 1.2, a, b),
                              ref_kuma_cdf((0.999 - LOW) / 1.2, a, b), 1.0, 1.0], rtol=1e-10, atol=1e-15)


def test_point_masses_closed_form_and_monte_carlo():
  # Spec Sec. 9 test 3 (b = 1): P0 = (1/12)^a, P1 = 1 - (11/12)^a.
  table = {0.5: (0.288675, 0.042573), 1.0: (0.083333, 0.083333), 2.0: (0.006944, 0.159722)}
  gate = hardkuma.HardKumaraswamy(np.array(list(table), np.float32), np.float32(1.0))
  expected = np.array(list(table.values()))
  np.testing.assert_allclose(gate.prob_zero(), expected[:, 0], atol=1e-6)
  np.testing.assert_allclose(gate.prob_one(), expected[:, 1], atol=1e-6)
  general = hardkuma.HardKumaraswamy(np.float32(0.7), np.float32(2.0))
  np.testing.assert_allclose(general.prob_zero(), ref_p0(0.7, 2.0), rtol=1e-5)
  np.testing.assert_allclose(general.prob_one(), ref_p1(0.7, 2.0), rtol=1e-5)

  a = np.array([0.5, 1.0, 2.0, 0.7], np.float32)
  b = np.array([1.0, 1.0, 1.0, 2.0], np.float32)
  samples = hardkuma.HardKumaraswamy(a, b).sample(1_000_000, seed=7).numpy()
  assert samples.shape == (1_000_000, 4) and samples.min() == 0.0 and samples.max() == 1.0
  for i in range(4):
    for observed, p in (((samples[:, i] == 0.0).mean(), ref_p0(a[i], b[i])),
                        ((samples[:, i] == 1.0).mean(), ref_p1(a[i], b[i]))):
      assert abs(observed - p) < 4.0 * math.sqrt(p * (1 - p) / 1e6) + 1e-6, (a[i], b[i], observed, p)
  # MC means (spec: 0.50000 for a = 1, ~0.6921 for a = 2).
  assert abs(samples[:, 1].mean() - 0.5) < 2e-3
  assert abs(samples[:, 2].mean() - 0.6921) < 2e-3


def test_samples_follow_the_cdf_kolmogorov_smirnov():
  """Atoms: exact 0/1 frequencies; continuous part: samples in (0, 1) vs the conditional reference CDF."""
  for j, (a, b) in enumerate(SHAPES):
    z = hardkuma.HardKumaraswamy(np.float32(a), np.float32(b)).sample(100_000, seed=100 + j).numpy().astype(float)
    inner = z[(z > 0.0) & (z < 1.0)]
    p0, p1 = ref_p0(a, b), ref_p1(a, b)
    conditional = lambda t, a=a, b=b, p0=p0, p1=p1: (ref_kuma_cdf((t - LOW) / (HIGH - LOW), a, b) - p0) / (1 - p0 - p1)
    assert stats.kstest(inner, conditional).pvalue > 0.01, (a, b)


def test_sample_shapes_dtypes_and_tf_function():
  a = tf.random.stateless_uniform([3, 5], seed=[1, 2], minval=0.1, maxval=4.0)
  gate = hardkuma.HardKumaraswamy(a, tf.ones_like(a))
  assert gate.batch_shape == [3, 5] and gate.sample(4, seed=1).shape == [4, 3, 5]
  assert hardkuma.HardKumaraswamy(np.ones(2), 1.0).sample(seed=3).dtype == tf.float64

  @tf.function
  def draw(distribution, seed):
    return distribution.sample(seed=seed)

  first = draw(gate, tf.constant([4, 2]))
  np.testing.assert_array_equal(first, draw(gate, tf.constant([4, 2])))   # stateless seeds repeat
  assert first.shape == [3, 5]


@pytest.mark.parametrize('b', [1.0, 3.0])
def test_sample_gradients_are_finite_over_the_posterior_range(b):
  for dtype in (tf.float32, tf.float64):
    a = tf.Variable(np.geomspace(0.05, 20.0, 60), dtype=dtype)
    with tf.GradientTape() as tape:
      z = hardkuma.HardKumaraswamy(a, tf.constant(b, dtype)).sample(20_000, seed=11)
      loss = tf.reduce_sum(tf.square(z - 0.3))
    grad = tape.gradient(loss, a).numpy()
    assert np.all(np.isfinite(grad)), grad
    assert np.any(z.numpy() == 0.0) and np.any(z.numpy() == 1.0)
    assert np.count_nonzero(grad) == grad.size          # every a gets a path-wise signal through unclipped samples


def test_extreme_uniform_draws_give_finite_gradients():
  u = np.array([0.0, 1e-30, 1e-7, 0.5, 1.0 - 1e-7, 1.0], np.float32)
  for a_value in (0.05, 1.0, 20.0):
    for b_value in (1.0, 3.0, 20.0):
      a = tf.Variable(np.full(6, a_value, np.float32))
      b = tf.Variable(np.full(6, b_value, np.float32))
      with tf.GradientTape() as tape:
        z = hardkuma.HardKumaraswamy(a, b).sample_from_uniform(u)
      grads = tape.gradient(z, [a, b])
      assert all(np.all(np.isfinite(g.numpy())) for g in grads), (a_value, b_value, grads)
      assert np.all(np.diff(z.numpy()) >= 0.0)                                # monotone in u


@pytest.mark.parametrize('a,b', [(0.05, 1.0), (0.5, 1.0), (1.0, 1.0), (2.0, 1.0), (20.0, 1.0), (0.7, 2.0), (3.0, 0.5)])
def test_mean_and_its_gradient_against_quadrature(a, b):
  concentration = tf.Variable([a, b], dtype=tf.float64)
  with tf.GradientTape() as tape:
    mean = hardkuma.HardKumaraswamy(concentration[0], concentration[1]).mean()
  np.testing.assert_allclose(mean, ref_mean(a, b), rtol=1e-9, atol=1e-12)
  h = 1e-5
  fd = [(ref_mean(a + h, b) - ref_mean(a - h, b)) / (2 * h), (ref_mean(a, b + h) - ref_mean(a, b - h)) / (2 * h)]
  np.testing.assert_allclose(tape.gradient(mean, concentration), fd, rtol=1e-5, atol=1e-8)
  # float32 and the median.
  gate32 = hardkuma.HardKumaraswamy(np.float32(a), np.float32(b))
  np.testing.assert_allclose(gate32.mean(), ref_mean(a, b), rtol=2e-5, atol=1e-6)
  median = float(hardkuma.HardKumaraswamy(np.float64(a), np.float64(b)).median())
  if 0.0 < median < 1.0:
    assert abs(ref_kuma_cdf((median - LOW) / (HIGH - LOW), a, b) - 0.5) < 1e-12


@pytest.mark.parametrize('a,b', [(0.5, 1.0), (1.0, 1.0), (2.0, 1.0), (0.7, 2.0)])
def test_pathwise_gradient_of_the_mean_matches_finite_differences(a, b):
  """Spec Sec. 9 test 6: d/da E[z] from 1e5 reparameterised samples vs the finite difference of the quadrature."""
  concentration = tf.Variable(a, dtype=tf.float64)
  with tf.GradientTape() as tape:
    estimate = tf.reduce_mean(hardkuma.HardKumaraswamy(concentration, np.float64(b)).sample(100_000, seed=5))
  h = 1e-5
  fd = (ref_mean(a + h, b) - ref_mean(a - h, b)) / (2 * h)
  assert abs(float(tape.gradient(estimate, concentration)) / fd - 1.0) < 0.03


def test_bad_stretch_and_parameters_are_refused():
  with pytest.raises(ValueError, match='low=0.0 must be a Python number < 0'):
    hardkuma.HardKumaraswamy(1.0, 1.0, low=0.0)
  with pytest.raises(ValueError, match='high=1.0 must be a Python number > 1'):
    hardkuma.HardKumaraswamy(1.0, 1.0, high=1.0)
  with pytest.raises(ValueError, match='low'):
    hardkuma.HardKumaraswamy(1.0, 1.0, low=tf.constant(-0.1))
  with pytest.raises(ValueError, match='concentration0 is a float32 variable'):
    hardkuma.HardKumaraswamy(np.float64(1.0), tf.Variable(1.0))
  with pytest.raises(tf.errors.InvalidArgumentError, match='concentration1'):
    hardkuma.HardKumaraswamy(-1.0, 1.0, validate_args=True).prob_zero()


# ------------------------------------------------------------------------------------------------ KL (Eq. 3.5)
# Spec Sec. 9 test 4: (a, b, alpha, beta) -> series M=5, series M=1e5, exact_b1 (None where b != 1).
KL_TABLE = [
    ((0.5, 1, 0.5, 0.5), 0.188127, 0.144732, 0.144730),
    ((2, 1, 1, 3), 1.475487, 2.094495, 2.094535),
    ((1.5, 1, 0.3, 0.7), 0.650211, 0.578023, 0.578019),
    ((0.3, 1, 1, 1), 1.129361, 1.129361, 1.129361),
    ((1, 1, 1, 1), 0.0, 0.0, 0.0),
    ((2, 3, 1.5, 2.5), 0.046585, 0.088901, None),
    ((0.7, 2, 0.5, 0.5), 0.388298, 0.381926, None),
]


def _kl(params, num_terms, dtype=np.float32):
  a, b, alpha, beta = (np.asarray(v, dtype) for v in params)
  return hardkuma.kl_kumaraswamy_beta(tfd.Kumaraswamy(a, b), tfd.Beta(alpha, beta), num_terms=num_terms).numpy()


def test_kl_against_the_spec_table():
  params = np.array([row[0] for row in KL_TABLE], np.float64).T
  series5 = np.array([row[1] for row in KL_TABLE])
  series_long = np.array([row[2] for row in KL_TABLE])
  np.testing.assert_allclose(_kl(params, 5), series5, atol=1e-4)           # the thesis's truncation, float32
  np.testing.assert_allclose(_kl(params, 100_000, np.float64), series_long, atol=2e-6)
  accurate = _kl(params, None)
  for row, value in zip(KL_TABLE, accurate):
    reference = row[3] if row[3] is not None else ref_kl(*row[0])
    assert abs(value - reference) < 1e-4, (row, value, reference)
  # The table itself, rechecked: Eq. 3.5 term by term and the quadrature of int q log(q / p).
  for row in KL_TABLE:
    assert abs(ref_kl_series(*row[0], 5) - row[1]) < 1e-6
    assert abs(ref_kl(*row[0]) - (row[3] if row[3] is not None else row[2])) < 1e-5


def test_accurate_kl_against_quadrature_on_a_grid():
  grid = [(a, b, alpha, beta) for a in (0.05, 0.3, 1.0, 3.0, 20.0) for b in (1.0, 1.5, 2.0, 5.0, 20.0)
          for alpha, beta in ((0.5, 0.5), (2.0, 5.0), (0.3, 20.0), (10.0, 1.5), (0.01, 100.0), (100.0, 0.01))]
  params = np.array(grid, np.float64).T
  references = np.array([ref_kl(*p) for p in grid])
  np.testing.assert_allclose(_kl(params, None, np.float64), references, atol=1e-4, rtol=0)
  np.testing.assert_allclose(_kl(params, None, np.float32), references, atol=1e-4, rtol=2e-5)
  # b = 1 is Beta(a, 1) against Beta(alpha, beta): TFP's Beta-Beta KL agrees with the closed form.
  b1 = params[:, params[1] == 1.0]
  np.testing.assert_allclose(_kl(b1, None, np.float64),
                             tfd.kl_divergence(tfd.Beta(b1[0], 1.0), tfd.Beta(b1[2], b1[3])).numpy(), rtol=1e-9,
                             atol=1e-10)


@pytest.mark.parametrize('num_terms', [5, None])
def test_kl_and_its_gradients_are_finite_over_the_vae_ranges(num_terms):
  """Posterior a~ in [0.05, 20] (b = 1, and b = 2), prior alpha, beta in [0.01, 100] (spec Sec. 3.2), float32."""
  prior = np.geomspace(0.01, 100.0, 6)
  grid = np.meshgrid(np.geomspace(0.05, 20.0, 12), [1.0, 2.0], prior, prior, indexing='ij')
  params = [tf.Variable(g.ravel().astype(np.float32)) for g in grid]
  with tf.GradientTape() as tape:
    kl = hardkuma.kl_kumaraswamy_beta(tfd.Kumaraswamy(params[0], params[1]), tfd.Beta(params[2], params[3]),
                                      num_terms=num_terms)
  grads = tape.gradient(kl, params)
  assert np.all(np.isfinite(kl.numpy()))
  assert all(np.all(np.isfinite(g.numpy())) for g in grads)
  if num_terms is None:
    assert kl.numpy().min() > -1e-4        # a KL (the 5-term series goes negative here: -7.9 at beta = 100)


def test_accurate_kl_is_registered_with_tfp():
  q = tfd.Kumaraswamy(np.float32([0.5, 2.0, 0.7]), np.float32([1.0, 3.0, 2.0]))
  p = tfd.Beta(np.float32([0.5, 1.5, 0.5]), np.float32([0.5, 2.5, 0.5]))
  np.testing.assert_allclose(tfd.kl_divergence(q, p), hardkuma.kl_kumaraswamy_beta(q, p, num_terms=None), rtol=1e-7)
  np.testing.assert_allclose(tfd.kl_divergence(q, p), [0.144730, 0.088901, 0.381926], atol=1e-4)
  np.testing.assert_allclose(tfd.kl_divergence(tfd.Kumaraswamy(2.0, 1.0), tfd.Beta(2.0, 1.0)), 0.0, atol=1e-6)


@pytest.mark.parametrize('num_terms', [5, None])
def test_kl_gradients_match_central_differences(num_terms):
  points = np.array([[0.5, 1.0, 0.5, 0.5], [2.0, 1.0, 1.0, 3.0], [2.0, 3.0, 1.5, 2.5], [0.7, 2.0, 0.5, 4.0]])
  params = tf.Variable(points.T)
  with tf.GradientTape() as tape:
    kl = tf.reduce_sum(hardkuma.kl_kumaraswamy_beta_from_params(*tf.unstack(params), num_terms=num_terms))
  grad = tape.gradient(kl, params).numpy()
  h = 1e-6
  for i in range(4):
    shift = np.zeros_like(points.T)
    shift[i] = h
    up = hardkuma.kl_kumaraswamy_beta_from_params(*(points.T + shift), num_terms=num_terms).numpy()
    down = hardkuma.kl_kumaraswamy_beta_from_params(*(points.T - shift), num_terms=num_terms).numpy()
    np.testing.assert_allclose(grad[i], (up - down) / (2 * h), rtol=1e-5, atol=1e-7)
  if num_terms is None:   # and the accurate KL's gradient is that of the quadrature reference
    h = 1e-4
    for row, g in zip(points, grad.T):
      for i in range(4):
        step = np.eye(4)[i] * h
        assert abs(g[i] - (ref_kl(*(row + step)) - ref_kl(*(row - step))) / (2 * h)) < 1e-4


def test_kl_bad_input():
  q, p = tfd.Kumaraswamy(1.0, 1.0), tfd.Beta(1.0, 1.0)
  for bad in (0, -3, True, 2.5):
    with pytest.raises(ValueError, match='num_terms'):
      hardkuma.kl_kumaraswamy_beta(q, p, num_terms=bad)
  with pytest.raises(ValueError, match='pass q.kumaraswamy'):
    hardkuma.kl_kumaraswamy_beta(hardkuma.HardKumaraswamy(1.0, 1.0), p)
  with pytest.raises(ValueError, match='p must be a tfd.Beta'):
    hardkuma.kl_kumaraswamy_beta(q, tfd.Kumaraswamy(1.0, 1.0))
  # HardKuma.kumaraswamy is what the VAE passes.
  gate = hardkuma.HardKumaraswamy(np.float32(2.0), np.float32(1.0))
  np.testing.assert_allclose(hardkuma.kl_kumaraswamy_beta(gate.kumaraswamy, tfd.Beta(1.0, 3.0)), 1.475487, atol=1e-4)


# ------------------------------------------------------------------------------------------------ Eq. 3.9, 3.11
def test_expectations_spec_vector():
  p0 = np.array([[0.0, 0.3, 0.6, 0.1, 0.9, 0.0]])
  np.testing.assert_allclose(hardkuma.expected_l0(p0, np.ones_like(p0)), [4.10], atol=1e-12)
  np.testing.assert_allclose(hardkuma.expected_switches(p0, np.ones_like(p0)), [3.14], atol=1e-12)
  # With z_0 and z_5 fixed (free gates 1..4): L0 over 1..4, switches over the pairs (1,2)..(4,5).
  free = np.array([[0, 1, 1, 1, 1, 0]])
  np.testing.assert_allclose(hardkuma.expected_l0(p0, free), [2.10], atol=1e-12)
  np.testing.assert_allclose(hardkuma.expected_switches(p0, free), [0.54 + 0.58 + 0.82 + 0.9], atol=1e-12)


def test_expectations_against_the_thesis_sums_with_lengths():
  """Eq. 3.9 / 3.11 written as the spec's Sec. 4.1 loops, for padded sequences of T_n actions (tokens 0..T)."""
  rng = np.random.default_rng(0)
  horizon = 9
  lengths = np.array([9, 5, 2, 1])
  p0 = rng.random((4, horizon + 1))
  free = np.zeros_like(p0)
  for n, length in enumerate(lengths):
    free[n, 1:length] = 1.0
  l0, switches = hardkuma.expected_l0(p0 * free, free).numpy(), hardkuma.expected_switches(p0 * free, free).numpy()
  for n, length in enumerate(lengths):
    q = [0.0] + [p0[n, t] for t in range(1, length)] + [0.0]             # p0 of z_0..z_{T_n}; fixed gates 0
    assert abs(l0[n] - sum(1.0 - q[t] for t in range(1, length))) < 1e-12
    expected = sum(q[t] * (1 - q[t + 1]) + (1 - q[t]) * q[t + 1] for t in range(1, length))
    assert abs(switches[n] - expected) < 1e-12
  # Padding content changes nothing.
  noisy = np.where(free == 1.0, p0, rng.random(p0.shape))
  np.testing.assert_allclose(hardkuma.expected_switches(noisy, free), switches, atol=1e-12)
  np.testing.assert_allclose(hardkuma.expected_l0(noisy, free), l0, atol=1e-12)


def test_expectations_against_monte_carlo_bernoulli():
  rng = np.random.default_rng(1)
  p0 = rng.random((3, 8))
  mask = np.array([[0, 1, 1, 1, 1, 1, 1, 0], [1, 1, 0, 1, 1, 0, 0, 1], [0, 1, 1, 1, 0, 0, 0, 0]], np.float64)
  l0, switches = mc_gate_counts(p0, mask, 1_000_000, rng)
  for got, draws in ((hardkuma.expected_l0(p0, mask), l0), (hardkuma.expected_switches(p0, mask), switches)):
    tolerance = 4.0 * draws.std(axis=0) / math.sqrt(draws.shape[0])
    assert np.all(np.abs(got.numpy() - draws.mean(axis=0)) < tolerance), (got, draws.mean(axis=0), tolerance)


def test_expectations_end_to_end_with_hardkuma_gates():
  """Sample HardKuma gates from random a~, count non-zeros and switches, compare with the closed forms."""
  rng = np.random.default_rng(2)
  a = rng.uniform(0.1, 1.5, size=(2, 7)).astype(np.float32)
  free = np.array([[0, 1, 1, 1, 1, 1, 0], [0, 1, 1, 1, 0, 0, 0]], np.float32)
  gate = hardkuma.HardKumaraswamy(a, np.ones_like(a))
  z = gate.sample(400_000, seed=9).numpy()
  z = np.where(free == 1.0, z, 1.0)                                           # fixed gates and padding: z = 1
  nonzero = np.concatenate([z != 0.0, np.ones(z.shape[:2] + (1,), bool)], axis=2)
  l0 = (nonzero[:, :, :-1] * free).sum(axis=2)
  switches = ((nonzero[:, :, :-1] != nonzero[:, :, 1:]) * free).sum(axis=2)
  p0 = gate.prob_zero() * free
  for got, draws in ((hardkuma.expected_l0(p0, free), l0), (hardkuma.expected_switches(p0, free), switches)):
    tolerance = 4.0 * draws.std(axis=0) / math.sqrt(draws.shape[0])
    assert np.all(np.abs(got.numpy() - draws.mean(axis=0)) < tolerance)


def test_expectations_bad_shapes():
  with pytest.raises(ValueError, match=r'mask has shape \(2, 4\) but p0 has \(2, 5\)'):
    hardkuma.expected_l0(np.zeros((2, 5)), np.ones((2, 4)))
  with pytest.raises(ValueError, match=r'p0 must be \[B, T\]'):
    hardkuma.expected_switches(np.zeros((2, 5, 1)), np.ones((2, 5, 1)))
