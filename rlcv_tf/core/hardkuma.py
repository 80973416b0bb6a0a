"""The Hard Kumaraswamy gate of the Chapter 3 waypoint VAE, its KL to a Beta prior, and the sparsity expectations.

Thesis Ch. 3, Sec. 3.3.1 and App. 3.A (Eq. 3.3-3.11), App. 3.C.1 (l = -0.1, r = 1.1); spec ch3_world_graphs.md
Sec. 3.1, 4.1, 9 (tests 1-6) and 10 (A1-A3, A5). Everything is a `tfp.distributions` object or a plain function of
tensors, so it runs inside `tf.function` and under `tf.GradientTape`.

Kumaraswamy Kuma(a, b), a, b > 0, on (0, 1) (`tfd.Kumaraswamy(concentration1=a, concentration0=b)`):

  density    q(x) = a b x^(a-1) (1 - x^a)^(b-1)
  CDF        F_K(x) = 1 - (1 - x^a)^b                   (Eq. 3.3 prints (1 - (1 - x^a))^b: a typo, spec A1)
  quantile   F_K^-1(u) = (1 - (1 - u)^(1/b))^(1/a)      (Eq. 3.4, the reparameterised sample)

HardKuma (stretch and rectify, Eq. 3.6-3.7; Bastings et al. 2019): k ~ Kuma(a, b), s = l + (r - l) k, z = min(1,
max(0, s)), with l = -0.1 < 0 < 1 < r = 1.1 (App. 3.C.1; Eq. 3.6 swaps the labels, spec A2). Then

  P(z = 0) = F_K(-l / (r - l)) = F_K(1/12),   P(z = 1) = 1 - F_K((1 - l) / (r - l)) = 1 - F_K(11/12),

so b = 1 gives P0 = (1/12)^a and P1 = 1 - (11/12)^a (spec Sec. 3.1).

KL(Kuma(a, b) || Beta(alpha, beta)) (Eq. 3.5, after Nalisnick & Smyth 2016), with gamma Euler's constant and psi
the digamma function:

  (a - alpha)/a (-gamma - psi(b) - 1/b) + log(a b) + log B(alpha, beta) - (b - 1)/b
      + (beta - 1) b sum_{m>=1} B(m/a, b) / (m + a b)

The thesis keeps the first 5 terms of the sum ("We take the first 5 terms here"); `num_terms=None` is accurate
instead (spec A5): the sum equals -E_q[log(1 - x)] = 1/b + E_q[log((1 - x^a) / (1 - x))] (because x^a ~ Beta(1, b)
has E[log(1 - x^a)] = -1/b), which is psi(a + 1) + gamma exactly when b = 1 and is otherwise integrated by a fixed
51-node tanh-sinh rule (the expectation to < 1e-8 in float64 and < 1e-6 in float32 for a in [0.05, 20], b in
[0.3, 50]; the KL to < 1e-8 in float64 for alpha, beta in [0.01, 100], and in float32 to ~2e-5 max(1, |KL|), the
rounding of the other terms). The 5-term series is biased when beta != 1 and can be negative (-7.9 at beta = 100).
The KL is that of the *unstretched* Kumaraswamy: a HardKuma has atoms at 0 and 1 and so no density with respect to
a Beta. The accurate KL is registered with `tfd.RegisterKL` for (tfd.Kumaraswamy, tfd.Beta), for which TFP 0.25 has
none (a release that has one keeps its own).

The regularisers' expectations (Eq. 3.9, 3.11) for independent gates with p0_t = P(z_t = 0):
`expected_l0` = sum_t (1 - p0_t) over the free gates, `expected_switches` = sum over the pairs (t, t + 1) of
p0_t (1 - p0_{t+1}) + (1 - p0_t) p0_{t+1} (a switch is zero <-> non-zero).
"""

import math
from typing import Optional

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

# The stretch of App. 3.C.1: support (low, high) = (-0.1, 1.1) before rectification (spec A2).
STRETCH_LOW = -0.1
STRETCH_HIGH = 1.1
# Uniform draws for the reparameterised sample lie in [eps, 1 - eps] (spec Sec. 3.1), so neither log1p(-u) nor
# log(1 - (1 - u)^(1/b)) is infinite and the path-wise gradient has no NaN (an exact u = 0 would give one).
UNIFORM_EPS = 1e-6
# The series length the thesis uses in Eq. 3.5.
THESIS_KL_TERMS = 5
# Gauss-Legendre nodes for HardKumaraswamy.mean().
_MEAN_NODES = 64


def _tanh_sinh_rule(step: float = 0.125, max_abs_s: float = 20.0):
  """Nodes s_k and weights w_k with sum_k w_k f(u(s_k)) ~ int_0^1 f(u) du, u(s) = sigmoid(2 s) (tanh-sinh rule).

  u = (1 + tanh(s)) / 2 with s = (pi/2) sinh(t), t = k * step; the rule stops at |s| <= max_abs_s, where u and
  1 - u are e^-40 (float32-safe), so the left-out mass is < 1e-17. Endpoint singularities such as u^(1/a) and
  (1 - u)^(1/b) are integrated with errors that fall double-exponentially in 1 / step.
  """
  k_max = math.floor(math.asinh(2.0 * max_abs_s / math.pi) / step)
  t = np.arange(-k_max, k_max + 1, dtype=np.float64) * step
  s = 0.5 * math.pi * np.sinh(t)
  w = step * 0.5 * math.pi * np.cosh(t) / (2.0 * np.cosh(s) ** 2)
  return s, w


_TS_NODES, _TS_WEIGHTS = _tanh_sinh_rule()


# ------------------------------------------------------------------------------------------------ Kumaraswamy maths
def _float_dtype(*values) -> tf.DType:
  for v in values:
    dtype = getattr(v, 'dtype', None)
    if dtype is not None:
      dtype = tf.as_dtype(dtype)
      if dtype.is_floating:
        return dtype
  return tf.float32


def _numpy_dtype(dtype):
  return tf.as_dtype(dtype).as_numpy_dtype


def _convert_all(*values):
  """Tensors of one float dtype: the first floating dtype among the values (float32 for Python numbers)."""
  dtype = _float_dtype(*values)
  return tuple(tf.cast(v, dtype) if isinstance(v, (tf.Tensor, tf.Variable)) else tf.convert_to_tensor(v, dtype)
               for v in values)


def kumaraswamy_log_cdf(x, a, b):
  """log F_K(x; a, b) = log(1 - (1 - x^a)^b) for x in (0, 1) (Eq. 3.3 as corrected, spec A1)."""
  x, a, b = _convert_all(x, a, b)
  return tf.math.log(-tf.math.expm1(b * tf.math.log1p(-tf.pow(x, a))))


def kumaraswamy_cdf(x, a, b):
  """F_K(x; a, b) = 1 - (1 - x^a)^b for x in [0, 1] (Eq. 3.3 as corrected, spec A1)."""
  x, a, b = _convert_all(x, a, b)
  return -tf.math.expm1(b * tf.math.log1p(-tf.pow(x, a)))


def _log1mexp(l):
  """log(1 - exp(l)) for l <= 0, accurate on both sides of l = -log 2 (Maechler 2012) and with finite gradients:
  each branch only ever sees arguments where it is finite (tfp.math.log1mexp's unused branch can be -inf)."""
  near_zero = l > -math.log(2.0)
  tiny = np.finfo(_numpy_dtype(l.dtype)).tiny
  l_near = tf.where(near_zero, tf.minimum(l, -tiny), -tf.ones_like(l))
  l_far = tf.where(near_zero, -tf.ones_like(l), l)
  return tf.where(near_zero, tf.math.log(-tf.math.expm1(l_near)), tf.math.log1p(-tf.exp(l_far)))


def kumaraswamy_quantile(u, a, b):
  """F_K^-1(u; a, b) = (1 - (1 - u)^(1/b))^(1/a) (Eq. 3.4), as exp(log1mexp(log1p(-u) / b) / a).

  Equal in value to tfd.Kumaraswamy(a, b).quantile(u), but log(1 - (1 - u)^(1/b)) does not round to log(0) for
  u ~ 1e-6 and large b, so the gradients stay finite for every u in (0, 1).
  """
  u, a, b = _convert_all(u, a, b)
  return tf.exp(_log1mexp(tf.math.log1p(-u) / b) / a)


def kumaraswamy_log_prob(x, a, b):
  """log q(x; a, b) = log(a b) + (a - 1) log x + (b - 1) log(1 - x^a) for x in (0, 1)."""
  x, a, b = _convert_all(x, a, b)
  return tf.math.log(a * b) + (a - 1.0) * tf.math.log(x) + (b - 1.0) * tf.math.log1p(-tf.pow(x, a))


def _log_beta_fn(x, y):
  """log B(x, y) = lgamma(x) + lgamma(y) - lgamma(x + y)."""
  return tf.math.lgamma(x) + tf.math.lgamma(y) - tf.math.lgamma(x + y)


# ------------------------------------------------------------------------------------------------ HardKumaraswamy
def _as_parameter(value, dtype, name):
  if isinstance(value, tf.Variable):  # kept as a reference, so gradients reach the variable
    if value.dtype != dtype:
      raise ValueError(f'HardKumaraswamy: {name} is a {value.dtype.name} variable but the distribution is '
                       f'{dtype.name}; give concentration1 and concentration0 the same dtype')
    return value
  return tf.convert_to_tensor(value, dtype=dtype, name=name)


class HardKumaraswamy(tfd.AutoCompositeTensorDistribution):
  """HardKuma(a, b; l, r): a Kumaraswamy sample stretched to (low, high) and clipped to [0, 1] (Eq. 3.6-3.7).

  `concentration1` is a (alpha in the thesis, a~_t for the posterior), `concentration0` is b (fixed to 1 for the
  posterior, thesis App. 3.A). The distribution is a mixture of two atoms and a continuous part:

  * `sample`: k = F_K^-1(u) with u ~ U[eps, 1 - eps] (Eq. 3.4), z = clip(low + (high - low) k, 0, 1)
    (`sample_from_uniform`). It gives exact 0s and 1s, and it is path-wise differentiable (FULLY_REPARAMETERIZED);
    clipped samples have gradient 0.
  * `log_prob` is the density of the *mixed* measure, with respect to the base measure Lebesgue on (0, 1) plus unit
    atoms at 0 and 1: log P(z = 0) at z == 0, log P(z = 1) at z == 1, log q(x) - log(high - low) with
    x = (z - low) / (high - low) for 0 < z < 1, and -inf outside [0, 1].
  * `cdf(z) = P(Z <= z)` (right-continuous: cdf(0) = P0, cdf(1) = 1), `quantile`, `median`, `mean` (exact to
    rounding, with its gradients), `prob_zero()`, `prob_one()`.
  """

  def __init__(self,
               concentration1,
               concentration0,
               low: float = STRETCH_LOW,
               high: float = STRETCH_HIGH,
               validate_args: bool = False,
               allow_nan_stats: bool = True,
               name: str = 'HardKumaraswamy'):
    """Builds HardKuma(concentration1, concentration0; low, high).

    Args:
      concentration1: a > 0, float tensor (the batch shape broadcasts with concentration0's).
      concentration0: b > 0, float tensor.
      low: the stretched support's left end, a Python number < 0 (thesis: -0.1).
      high: its right end, a Python number > 1 (thesis: 1.1).
      validate_args: check a, b > 0 at run time.
      allow_nan_stats: as for every tfd.Distribution.
      name: name scope.

    Raises:
      ValueError: low/high not Python numbers with low < 0 < 1 < high.
    """
    parameters = dict(locals())
    for key, value, ok, want in (('low', low, lambda v: v < 0.0, '< 0'), ('high', high, lambda v: v > 1.0, '> 1')):
      if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) or not ok(value):
        raise ValueError(f'HardKumaraswamy: {key}={value!r} must be a Python number {want} so that the stretched '
                         'support (low, high) covers [0, 1] and both 0 and 1 get a point mass (Eq. 3.6-3.7); the '
                         'thesis uses low=-0.1, high=1.1 (App. 3.C.1)')
    with tf.name_scope(name) as name:
      dtype = _float_dtype(concentration1, concentration0)
      self._concentration1 = _as_parameter(concentration1, dtype, 'concentration1')
      self._concentration0 = _as_parameter(concentration0, dtype, 'concentration0')
      self._low = float(low)
      self._high = float(high)
      super().__init__(dtype=dtype,
                       reparameterization_type=tfd.FULLY_REPARAMETERIZED,
                       validate_args=validate_args,
                       allow_nan_stats=allow_nan_stats,
                       parameters=parameters,
                       name=name)

  @classmethod
  def _parameter_properties(cls, dtype, num_classes=None):
    positive = lambda: tfp.bijectors.Softplus(low=np.finfo(_numpy_dtype(dtype)).eps)
    return dict(concentration1=tfp.util.ParameterProperties(default_constraining_bijector_fn=positive),
                concentration0=tfp.util.ParameterProperties(default_constraining_bijector_fn=positive))

  # ---------------------------------------------------------------- parameters
  @property
  def concentration1(self):
    """a (the Kumaraswamy's first shape parameter)."""
    return self._concentration1

  @property
  def concentration0(self):
    """b (the Kumaraswamy's second shape parameter)."""
    return self._concentration0

  @property
  def low(self) -> float:
    return self._low

  @property
  def high(self) -> float:
    return self._high

  @property
  def kumaraswamy(self) -> tfd.Kumaraswamy:
    """The unstretched Kuma(a, b) (what Eq. 3.5's KL is taken of, see `kl_kumaraswamy_beta`)."""
    return tfd.Kumaraswamy(self._concentration1, self._concentration0, validate_args=self.validate_args,
                           allow_nan_stats=self.allow_nan_stats)

  def _params(self):
    a = tf.convert_to_tensor(self._concentration1)
    b = tf.convert_to_tensor(self._concentration0)
    if self.validate_args:
      with tf.control_dependencies([
          tf.debugging.assert_positive(a, message='HardKumaraswamy: concentration1 (a) must be > 0'),
          tf.debugging.assert_positive(b, message='HardKumaraswamy: concentration0 (b) must be > 0')]):
        a, b = tf.identity(a), tf.identity(b)
    return a, b

  def _unit(self, value):
    """Maps z on the stretched scale to x = (z - low) / (high - low) on Kuma's (0, 1)."""
    return (value - self._low) / (self._high - self._low)

  # ---------------------------------------------------------------- point masses (Eq. 3.7)
  def prob_zero(self, name: str = 'prob_zero'):
    """P(z = 0) = F_K(-low / (high - low)); (1/12)^a for b = 1 (Eq. 3.7)."""
    with self._name_and_control_scope(name):
      a, b = self._params()
      return kumaraswamy_cdf(tf.constant(self._unit(0.0), self.dtype), a, b)

  def prob_one(self, name: str = 'prob_one'):
    """P(z = 1) = 1 - F_K((1 - low) / (high - low)) = (1 - x1^a)^b; 1 - (11/12)^a for b = 1 (Eq. 3.7)."""
    with self._name_and_control_scope(name):
      a, b = self._params()
      return tf.exp(b * tf.math.log1p(-tf.pow(tf.constant(self._unit(1.0), self.dtype), a)))

  def median(self, name: str = 'median'):
    """The median clip(low + (high - low) (1 - 2^(-1/b))^(1/a), 0, 1) (spec Sec. 3.2's test-time gate)."""
    with self._name_and_control_scope(name):
      return self._quantile(tf.constant(0.5, self.dtype))

  def sample_from_uniform(self, u, name: str = 'sample_from_uniform'):
    """The reparameterisation: z = clip(low + (high - low) F_K^-1(u), 0, 1) for uniform draws u (Eq. 3.4, 3.6-3.7).

    u is first clamped to [UNIFORM_EPS, 1 - UNIFORM_EPS] (spec Sec. 3.1): at u = 0 exactly, k = 0 and dk/da = 0 * inf
    = NaN, which would reach the parameters even though the clipped sample's gradient is 0. `sample` draws u
    uniformly on that interval and calls this.
    """
    with self._name_and_control_scope(name):
      a, b = self._params()
      u = tf.clip_by_value(tf.convert_to_tensor(u, self.dtype), UNIFORM_EPS, 1.0 - UNIFORM_EPS)
      k = kumaraswamy_quantile(u, a, b)                          # Eq. 3.4: F_K^-1(u) ~ Kuma(a, b)
      return tf.clip_by_value(self._low + (self._high - self._low) * k, 0.0, 1.0)   # Eq. 3.6, then rectify

  # ---------------------------------------------------------------- tfd.Distribution hooks
  def _event_shape(self):
    return tf.TensorShape([])

  def _event_shape_tensor(self):
    return tf.constant([], dtype=tf.int32)

  def _sample_n(self, n, seed=None):
    a, b = self._params()
    shape = tf.concat([[n], tf.broadcast_dynamic_shape(tf.shape(a), tf.shape(b))], axis=0)
    u = tf.random.stateless_uniform(shape, seed=tfp.random.sanitize_seed(seed), minval=UNIFORM_EPS,
                                    maxval=1.0 - UNIFORM_EPS, dtype=self.dtype)
    return self.sample_from_uniform(u)

  def _log_prob(self, z):
    a, b = self._params()
    z = tf.convert_to_tensor(z, self.dtype)
    inside = (z > 0.0) & (z < 1.0)
    x = tf.where(inside, self._unit(z), tf.constant(0.5, self.dtype))   # a safe x where the branch is unused
    continuous = kumaraswamy_log_prob(x, a, b) - math.log(self._high - self._low)
    log_p0 = kumaraswamy_log_cdf(tf.constant(self._unit(0.0), self.dtype), a, b)
    log_p1 = b * tf.math.log1p(-tf.pow(tf.constant(self._unit(1.0), self.dtype), a))
    minus_inf = tf.constant(-np.inf, self.dtype)
    return tf.where(z == 0.0, log_p0, tf.where(z == 1.0, log_p1, tf.where(inside, continuous, minus_inf)))

  def _cdf(self, z):
    a, b = self._params()
    z = tf.convert_to_tensor(z, self.dtype)
    x = tf.clip_by_value(self._unit(z), 0.0, 1.0)
    inner = kumaraswamy_cdf(x, a, b)
    return tf.where(z < 0.0, tf.zeros_like(inner), tf.where(z >= 1.0, tf.ones_like(inner), inner))

  def _quantile(self, p):
    a, b = self._params()
    p = tf.convert_to_tensor(p, self.dtype)
    k = kumaraswamy_quantile(p, a, b)                            # F_K^-1(p) (Eq. 3.4)
    return tf.clip_by_value(self._low + (self._high - self._low) * k, 0.0, 1.0)

  def _mean(self):
    """E[z] = int_0^1 P(z > t) dt = (high - low) int_{x0}^{x1} (1 - x^a)^b dx, x0, x1 = 0, 1 on the Kuma scale.

    The integrand is analytic on [x0, x1] (it stays away from x = 0 and x = 1), so a fixed 64-node Gauss-Legendre
    rule is exact to rounding (also its gradients in a and b; TFP's betainc gradients are only ~1e-3 accurate).
    """
    a, b = self._params()
    x0, x1 = self._unit(0.0), self._unit(1.0)
    nodes, weights = np.polynomial.legendre.leggauss(_MEAN_NODES)
    x = tf.constant(x0 + 0.5 * (x1 - x0) * (nodes + 1.0), self.dtype)
    w = tf.constant(0.5 * (x1 - x0) * weights, self.dtype)
    survival = tf.exp(b[..., None] * tf.math.log1p(-tf.pow(x, a[..., None])))     # 1 - F_K(x)
    shape = tf.broadcast_dynamic_shape(tf.shape(a), tf.shape(b))
    return tf.broadcast_to((self._high - self._low) * tf.reduce_sum(w * survival, axis=-1), shape)

  def _default_event_space_bijector(self):
    return None  # mixed measure: no bijector onto its support


# ------------------------------------------------------------------------------------------------ KL (Eq. 3.5)
def _quadrature_log_ratio(a, b):
  """E_q[log((1 - x^a) / (1 - x))] for x ~ Kuma(a, b) by the tanh-sinh rule.

  With u = F_K(x) uniform: log(1 - u) = -softplus(2 s), log(1 - x^a) = log(1 - u) / b,
  log x = log(1 - (1 - u)^(1/b)) / a, log(1 - x) = log(-expm1(log x)); all without cancellation in float32, and
  with finite gradients at every node.
  """
  dtype = a.dtype
  s = tf.constant(_TS_NODES, dtype)
  w = tf.constant(_TS_WEIGHTS, dtype)
  a_, b_ = a[..., None], b[..., None]
  log_one_minus_xa = -tf.math.softplus(2.0 * s) / b_
  log_x = _log1mexp(log_one_minus_xa) / a_
  interior = log_x < 0.0                         # x rounds to 1 only where the weight is < 1e-17; limit log a
  safe_log_x = tf.where(interior, log_x, -tf.ones_like(log_x))
  phi = tf.where(interior, log_one_minus_xa - tf.math.log(-tf.math.expm1(safe_log_x)), tf.math.log(a_))
  return tf.reduce_sum(w * phi, axis=-1)


def _expected_log_ratio(a, b):
  """E_q[log((1 - x^a) / (1 - x))] for x ~ Kuma(a, b): psi(a + 1) + gamma - 1 at b = 1, else the quadrature.

  At b = 1 the value is exact; its derivative in b (which the closed form in a alone does not carry) comes from the
  quadrature: exact(a) + q(sg(a), b) - sg(q(sg(a), b)) has the value exact(a) and the gradients (d exact/da, dq/db).
  """
  quadrature = _quadrature_log_ratio(a, b)
  at_b1 = tf.equal(b, 1.0)
  exact_b1 = tf.math.digamma(a + 1.0) + np.euler_gamma - 1.0
  b_only = _quadrature_log_ratio(tf.stop_gradient(a), b)
  exact_b1 = exact_b1 + (b_only - tf.stop_gradient(b_only))
  return tf.where(at_b1, exact_b1, quadrature)


def kl_kumaraswamy_beta_from_params(a, b, alpha, beta, num_terms: Optional[int] = THESIS_KL_TERMS):
  """KL(Kuma(a, b) || Beta(alpha, beta)) element-wise (Eq. 3.5); see `kl_kumaraswamy_beta`."""
  if num_terms is not None and (isinstance(num_terms, bool) or not isinstance(num_terms, (int, np.integer))
                                or num_terms < 1):
    raise ValueError(f'kl_kumaraswamy_beta: num_terms={num_terms!r} must be a positive int (Eq. 3.5 truncated '
                     f'after that many terms; the thesis uses {THESIS_KL_TERMS}) or None for the accurate KL '
                     '(a flag value --kl_terms=0 should be passed as None)')
  a, b, alpha, beta = _convert_all(a, b, alpha, beta)
  dtype = a.dtype
  shape = tf.broadcast_dynamic_shape(tf.broadcast_dynamic_shape(tf.shape(a), tf.shape(b)),
                                     tf.broadcast_dynamic_shape(tf.shape(alpha), tf.shape(beta)))
  a, b, alpha, beta = (tf.broadcast_to(v, shape) for v in (a, b, alpha, beta))
  head = ((a - alpha) / a * (-np.euler_gamma - tf.math.digamma(b) - 1.0 / b) + tf.math.log(a * b)
          + _log_beta_fn(alpha, beta) - (b - 1.0) / b)
  if num_terms is None:
    series = 1.0 / b + _expected_log_ratio(a, b)           # = -E_q[log(1 - x)] = b sum_m B(m/a, b) / (m + a b)
  else:
    m = tf.range(1, int(num_terms) + 1, dtype=dtype)
    a_, b_ = a[..., None], b[..., None]
    series = b * tf.reduce_sum(tf.exp(_log_beta_fn(m / a_, b_)) / (m + a_ * b_), axis=-1)
  return head + (beta - 1.0) * series


def kl_kumaraswamy_beta(q, p, num_terms: Optional[int] = THESIS_KL_TERMS, name: Optional[str] = None):
  """KL(q || p) for q = Kuma(a, b) and p = Beta(alpha, beta), Eq. 3.5, element-wise over the batch.

  Args:
    q: a `tfd.Kumaraswamy` (for a HardKumaraswamy gate pass `gate.kumaraswamy`: the thesis's KL is that of the
      unstretched Kumaraswamy; the HardKuma itself has atoms and no density with respect to a Beta).
    p: a `tfd.Beta`.
    num_terms: series length (the thesis: 5, biased when beta != 1, spec Sec. 9 test 4); None is accurate: exact at
      b = 1, error < 1e-4 for b >= 1 (quadrature of the series' closed form, see the module docstring).
    name: name scope.

  Returns:
    The KL, shaped like the broadcast batch shapes of q and p.

  Raises:
    ValueError: q is not a Kumaraswamy, p not a Beta, or num_terms is neither None nor a positive int.
  """
  if isinstance(q, HardKumaraswamy):
    raise ValueError('kl_kumaraswamy_beta: q is a HardKumaraswamy; pass q.kumaraswamy (Eq. 3.5 is the KL of the '
                     'unstretched Kuma(a, b): the HardKuma has point masses at 0 and 1, so its KL to a Beta is '
                     'infinite)')
  if not isinstance(q, tfd.Kumaraswamy):
    raise ValueError(f'kl_kumaraswamy_beta: q must be a tfd.Kumaraswamy, got {type(q).__name__}')
  if not isinstance(p, tfd.Beta):
    raise ValueError(f'kl_kumaraswamy_beta: p must be a tfd.Beta, got {type(p).__name__}')
  with tf.name_scope(name or 'kl_kumaraswamy_beta'):
    return kl_kumaraswamy_beta_from_params(q.concentration1, q.concentration0, p.concentration1, p.concentration0,
                                           num_terms=num_terms)


def _kl_kumaraswamy_beta_accurate(q, p, name=None):
  """tfd.kl_divergence(Kumaraswamy, Beta): the accurate Eq. 3.5 (num_terms=None)."""
  return kl_kumaraswamy_beta(q, p, num_terms=None, name=name)


try:
  tfd.RegisterKL(tfd.Kumaraswamy, tfd.Beta)(_kl_kumaraswamy_beta_accurate)
except ValueError:  # a TFP release that already registers this pair keeps its own
  pass


# ------------------------------------------------------------------------------------------------ Eq. 3.9, 3.11
def _check_gate_arrays(fn: str, p0, mask):
  p0 = tf.convert_to_tensor(p0)
  if not p0.dtype.is_floating:
    p0 = tf.cast(p0, tf.float32)
  mask = tf.cast(tf.convert_to_tensor(mask), p0.dtype)
  if p0.shape.rank is not None and p0.shape.rank != 2:
    raise ValueError(f'{fn}: p0 must be [B, T] (P(z_t = 0) per sequence and step), got shape {p0.shape}')
  if not p0.shape.is_compatible_with(mask.shape):
    raise ValueError(f'{fn}: mask has shape {mask.shape} but p0 has {p0.shape}; give one mask entry per gate '
                     '(1 for a free gate, 0 for a fixed gate or padding)')
  return p0, mask


def expected_l0(p0, mask):
  """E||z||_0 = sum_t mask_t (1 - p0_t) per sequence (Eq. 3.9), [B].

  Args:
    p0: [B, T] P(z_t = 0) (for a HardKuma gate: `prob_zero()`).
    mask: [B, T] 1 for the free gates that count (thesis: z_1..z_{T_n - 1}), 0 for fixed gates and padding.
  """
  p0, mask = _check_gate_arrays('expected_l0', p0, mask)
  return tf.reduce_sum(mask * (1.0 - p0), axis=1)


def expected_switches(p0, mask):
  """E[#{t : z_t != 0 <-> z_{t+1}}] over the pairs (t, t + 1) with mask_t = 1, per sequence (Eq. 3.11), [B].

  Gates with mask 0 (the fixed z = 1 gates, padding, and the step after column T - 1) count as z = 1, i.e. p0 = 0,
  so the pair from the last free gate into the fixed end gate z_{T_n} counts (thesis sum t = 1..T - 1, spec A3),
  and the pair from the fixed z_0 does not. With mask = the free gates 1..T_n - 1 this is

    sum_{t=1}^{T_n - 1} p0_t (1 - p0_{t+1}) + (1 - p0_t) p0_{t+1},   p0_{T_n} = 0.

  Args:
    p0: [B, T] P(z_t = 0).
    mask: [B, T] 1 where the pair (t, t + 1) counts (the free gates), else 0.
  """
  p0, mask = _check_gate_arrays('expected_switches', p0, mask)
  p0 = p0 * mask
  following = tf.concat([p0[:, 1:], tf.zeros_like(p0[:, :1])], axis=1)
  return tf.reduce_sum(mask * (p0 * (1.0 - following) + (1.0 - p0) * following), axis=1)
