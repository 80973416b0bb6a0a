"""ACER's off-policy pieces (Wang et al., 2016): Retrace targets, the truncated importance-sampling policy gradient
with bias correction, and the trust-region projection, all on the policy's distribution statistics.

Thesis Chapter 2 uses ACER on CarRacing with importance weight truncation c = 10, trust threshold delta = 1 and an
average network updated with ratio 0.99 (T:L1733-1737). The printed pseudo-code (Alg. 4/5, T:L1913-2003) keeps
Retrace's weight untruncated (R <- rho_t (R - Q_t(a_t)) + V_t, T:L1953), has no importance weight or bias
correction in g (g <- grad log pi(a_t) A_t, T:L1938-1939) and leaves open which parameters the trust region acts on;
the functions here follow Wang et al.'s full algorithm by default, and `c_bar=None` gives the printed Retrace weight
(the ACER loss in `stochastic_ac/losses.py` has a flag for the printed algorithm as a whole).

Layout (as `core/returns.py` and `core/vtrace.py`): time-major `[T, B, ...]`; step t holds o_t, a_t, the reward r_t
received after acting and discounts_t = gamma * (1 - done_t). Per-action tensors add a last axis of size A.
The statistics f are the probability vectors pi(.|o_t) (as in Wang et al.'s discrete ACER):
gradients "with respect to f" treat the A probabilities as free coordinates, so grad_f log f(a) = e_a / f(a).
"""

from typing import NamedTuple, Optional

import tensorflow as tf

from rlcv_tf.core import returns as returns_lib

# Denominators (probabilities) are floored at this value, so a probability that underflowed to 0 gives a large
# finite ratio instead of inf or nan. It changes nothing for probabilities above it.
MIN_PROB = 1e-8


def retrace_targets(rewards, discounts, q_taken, values, bootstrap_value, rhos, *, lambda_: float = 1.0,
                    c_bar: Optional[float] = 1.0, bootstrap_only=None, stop_gradient: bool = True) -> tf.Tensor:
  """Retrace targets Q^ret_t for the actions taken, computed backwards.

      Q^ret_t = r_t + discounts_t * [ c_{t+1} (Q^ret_{t+1} - Q(o_{t+1}, a_{t+1})) + V(o_{t+1}) ],
      c_t = lambda * min(c_bar, rho_t),   rho_t = pi(a_t|o_t) / mu(a_t|o_t),
      and the last step bootstraps from V(o_T) = bootstrap_value with no correction.

  ACER uses lambda = 1, c_bar = 1 (c = min(1, rho)). `c_bar=None` leaves rho untruncated (the thesis's printed
  Alg. 4, T:L1953). With c = 1 at every step and Q(o_t, a_t) = V(o_t) (e.g. Q equal over actions) Q^ret_t is the
  discounted return R_t; with lambda = 0 it is the one-step target r_t + gamma V(o_{t+1}).
  At a `bootstrap_only` step (the last observation of a time-limit-truncated episode, see `core/returns.py`)
  Q^ret_t = V(o_t) and the trace is cut there (c = 0).

  Args:
    rewards, discounts: [T, B, ...].
    q_taken: Q(o_t, a_t) of the current network, [T, B, ...].
    values: V(o_t) = sum_a pi(a|o_t) Q(o_t, a), [T, B, ...].
    bootstrap_value: V(o_T), [B, ...].
    rhos: pi(a_t|o_t) / mu(a_t|o_t), [T, B, ...] (1 on-policy).
  """
  rewards, discounts, values, bootstrap_value, cut = returns_lib.prepare_rollout(
      rewards, discounts, values, bootstrap_value, bootstrap_only)
  q_taken = tf.cast(tf.convert_to_tensor(q_taken), values.dtype)
  rhos = tf.cast(tf.convert_to_tensor(rhos), values.dtype)
  for name, t in (('q_taken', q_taken), ('rhos', rhos)):
    if t.shape.rank != values.shape.rank:
      raise ValueError(f'{name} has rank {t.shape.rank}, values has rank {values.shape.rank}')
  cs = rhos if c_bar is None else tf.minimum(returns_lib.as_dtype(c_bar, values.dtype), rhos)
  cs = returns_lib.as_dtype(lambda_, values.dtype) * cs

  # carry = what step t-1 bootstraps from: c_t (Q^ret_t - Q_t(a_t)) + V_t (or V_t alone at a bootstrap-only step).
  def step(carry, inputs):
    _, next_carry = carry
    r, d, q, v, c, b = inputs
    q_ret = tf.where(b, v, r + d * next_carry)
    return q_ret, tf.where(b, v, c * (q_ret - q) + v)

  q_ret, _ = tf.scan(step, (rewards, discounts, q_taken, values, cs, cut),
                     initializer=(tf.zeros_like(bootstrap_value), bootstrap_value), reverse=True)
  return tf.stop_gradient(q_ret) if stop_gradient else q_ret


class TruncatedPolicyGradient(NamedTuple):
  gradient: tf.Tensor          # [..., A] g_hat = truncated + bias_correction (w.r.t. the probabilities f)
  truncated: tf.Tensor         # [..., A] min(c, rho(a_t)) (Q^ret - V) grad_f log f(a_t)
  bias_correction: tf.Tensor   # [..., A] sum_a [1 - c/rho(a)]_+ f(a) (Q(a) - V) grad_f log f(a)
  rhos: tf.Tensor              # [..., A] f(a) / mu(a)


def truncated_policy_gradient(probs, behaviour_probs, actions, q_values, q_retrace, values, *,
                              truncation: Optional[float] = 10.0) -> TruncatedPolicyGradient:
  """ACER's policy gradient with truncated importance sampling and bias correction, w.r.t. the statistics f.

      g_hat_t = min(c, rho_t(a_t)) grad_f log f_t(a_t) (Q^ret_t - V_t)
                + sum_a [1 - c / rho_t(a)]_+ f_t(a) grad_f log f_t(a) (Q_t(a) - V_t),      rho_t(a) = f_t(a) / mu_t(a)

  With grad_f log f(a) = e_a / f(a) the first term lives on the taken action's coordinate,
  min(c, rho(a_t)) (Q^ret - V) / f(a_t), and the second is [1 - c/rho(a)]_+ (Q(a) - V) on coordinate a.
  The correction term is 0 wherever rho(a) <= c, so on-policy (rho = 1 < c) g_hat is the plain advantage gradient.
  `truncation=None` drops both the truncation and the correction (untruncated importance weight).
  Everything is a constant for autodiff: the loss is -sum_a stop_gradient(g)(a) f(a).

  Args:
    probs: f_t = pi(.|o_t) of the current network, [T, B, ..., A].
    behaviour_probs: mu_t(.) the acting policy's probabilities, [T, B, ..., A].
    actions: a_t, int [T, B, ...].
    q_values: Q(o_t, .), [T, B, ..., A].
    q_retrace: Q^ret_t, [T, B, ...].
    values: V_t = sum_a f_t(a) Q_t(a), [T, B, ...].
  """
  probs = tf.stop_gradient(tf.convert_to_tensor(probs))
  dtype = probs.dtype
  behaviour_probs = tf.cast(tf.convert_to_tensor(behaviour_probs), dtype)
  q_values = tf.stop_gradient(tf.cast(tf.convert_to_tensor(q_values), dtype))
  q_retrace = tf.stop_gradient(tf.cast(tf.convert_to_tensor(q_retrace), dtype))
  values = tf.stop_gradient(tf.cast(tf.convert_to_tensor(values), dtype))
  num_actions = probs.shape[-1]
  if behaviour_probs.shape.rank != probs.shape.rank or q_values.shape.rank != probs.shape.rank:
    raise ValueError(f'probs {probs.shape}, behaviour_probs {behaviour_probs.shape} and q_values '
                     f'{q_values.shape} must all be [T, B, ..., A]')
  onehot = tf.one_hot(tf.cast(actions, tf.int32), num_actions, dtype=dtype)
  rhos = probs / tf.maximum(behaviour_probs, MIN_PROB)
  rho_taken = tf.reduce_sum(rhos * onehot, axis=-1)
  prob_taken = tf.reduce_sum(probs * onehot, axis=-1)
  weight = rho_taken if truncation is None else tf.minimum(returns_lib.as_dtype(truncation, dtype), rho_taken)
  truncated = (weight * (q_retrace - values) / tf.maximum(prob_taken, MIN_PROB))[..., tf.newaxis] * onehot
  if truncation is None:
    bias_correction = tf.zeros_like(truncated)
  else:
    # [1 - c/rho]_+ written as [1 - c mu / f]_+, finite when a probability is 0.
    coeff = tf.nn.relu(1.0 - returns_lib.as_dtype(truncation, dtype) * behaviour_probs / tf.maximum(probs, MIN_PROB))
    bias_correction = coeff * (q_values - values[..., tf.newaxis])
  return TruncatedPolicyGradient(gradient=truncated + bias_correction, truncated=truncated,
                                 bias_correction=bias_correction, rhos=rhos)


def kl_gradient(average_probs, probs) -> tf.Tensor:
  """k = grad_f KL(f_a || f) = -f_a / f, the gradient of the KL from the average policy f_a, w.r.t. f."""
  probs = tf.stop_gradient(tf.convert_to_tensor(probs))
  average_probs = tf.stop_gradient(tf.cast(tf.convert_to_tensor(average_probs), probs.dtype))
  return -average_probs / tf.maximum(probs, MIN_PROB)


class TrustRegionOutput(NamedTuple):
  gradient: tf.Tensor  # [..., A] z* = g - scale * k
  scale: tf.Tensor     # [...] max(0, (k.g - delta) / |k|^2); 0 when g already satisfies k.g <= delta


def trust_region_projection(gradient, kl_grad, delta: float = 1.0) -> TrustRegionOutput:
  """The closed-form solution of ACER's linearised trust region, over the last axis (the statistics):

      z* = argmin_z 1/2 |g - z|^2  s.t.  k.z <= delta   =   g - max(0, (k.g - delta) / |k|^2) k

  so k.z* <= delta always (= delta where the constraint binds) and z* = g where k.g <= delta already.
  The thesis's trust threshold is delta = 1 (T:L1736).
  """
  g = tf.convert_to_tensor(gradient)
  k = tf.cast(tf.convert_to_tensor(kl_grad), g.dtype)
  violation = tf.reduce_sum(k * g, axis=-1) - returns_lib.as_dtype(delta, g.dtype)
  scale = tf.nn.relu(tf.math.divide_no_nan(violation, tf.reduce_sum(k * k, axis=-1)))
  return TrustRegionOutput(gradient=g - scale[..., tf.newaxis] * k, scale=scale)
