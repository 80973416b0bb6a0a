"""V-trace off-policy targets (Espeholt et al., 2018, IMPALA), as used per agent in thesis Chapter 4 (Sec. 4.2.1).

Time-major tensors `[T, B]` with any number of trailing axes (Chapter 4 uses `[T, B, N]`, one column per agent):
every agent is corrected with its own importance weight, reward and value, never the joint product.

    rho_s = min(rho_bar, pi(a_s|x_s) / mu(a_s|x_s)),   c_s = lambda * min(c_bar, pi/mu)
    delta_s = rho_s * (r_s + gamma_s * V(x_{s+1}) - V(x_s))
    v_s = V(x_s) + delta_s + gamma_s * c_s * (v_{s+1} - V(x_{s+1})),    v_T = V(x_T) (the bootstrap)
    A^pg_s = min(rho_bar_pg, pi/mu) * (r_s + gamma_s * v_{s+1} - V(x_s))

`discounts` carries gamma * (1 - done) so an episode end cuts every sum. Outputs are gradient-stopped targets.
"""

from typing import NamedTuple

import tensorflow as tf


class VTraceReturns(NamedTuple):
  vs: tf.Tensor             # [T, B, ...] value targets v_s
  pg_advantages: tf.Tensor  # [T, B, ...] policy-gradient advantages A^pg_s


def from_importance_weights(log_rhos, discounts, rewards, values, bootstrap_value, clip_rho_threshold=1.0,
                            clip_c_threshold=1.0, clip_pg_rho_threshold=1.0, lambda_=1.0) -> VTraceReturns:
  """V-trace targets from log importance weights log(pi/mu), all time-major `[T, B, ...]`.

  Args:
    log_rhos: log pi(a_s|x_s) - log mu(a_s|x_s).
    discounts: gamma_s, zero where the episode ended after step s.
    rewards: r_s, the reward received after acting at step s.
    values: V(x_s) under the learner's (target) policy for s = 0..T-1.
    bootstrap_value: V(x_T), shape `[B, ...]`.
    clip_rho_threshold, clip_c_threshold, clip_pg_rho_threshold: rho_bar, c_bar, rho_bar_pg; None = no clipping.
    lambda_: the trace-cutting mixing coefficient (1 = plain V-trace).
  """
  log_rhos = tf.convert_to_tensor(log_rhos, tf.float32)
  discounts = tf.convert_to_tensor(discounts, tf.float32)
  rewards = tf.convert_to_tensor(rewards, tf.float32)
  values = tf.convert_to_tensor(values, tf.float32)
  bootstrap_value = tf.convert_to_tensor(bootstrap_value, tf.float32)
  rank = values.shape.rank
  for name, t in (('log_rhos', log_rhos), ('discounts', discounts), ('rewards', rewards)):
    if t.shape.rank != rank:
      raise ValueError(f'{name} has rank {t.shape.rank}, values has rank {rank}; all must be [T, B, ...]')
  if bootstrap_value.shape.rank != rank - 1:
    raise ValueError(f'bootstrap_value must be values without the time axis (rank {rank - 1}), '
                     f'got rank {bootstrap_value.shape.rank}')

  rhos = tf.exp(log_rhos)
  clipped_rhos = rhos if clip_rho_threshold is None else tf.minimum(clip_rho_threshold, rhos)
  cs = rhos if clip_c_threshold is None else tf.minimum(clip_c_threshold, rhos)
  cs = lambda_ * cs

  values_next = tf.concat([values[1:], bootstrap_value[tf.newaxis]], axis=0)
  deltas = clipped_rhos * (rewards + discounts * values_next - values)

  # Backward recursion on (v_s - V_s): acc_s = delta_s + gamma_s c_s acc_{s+1}, with acc_T = 0.
  def step(acc, inputs):
    delta, discount, c = inputs
    return delta + discount * c * acc

  vs_minus_v = tf.scan(step, (tf.stop_gradient(deltas), tf.stop_gradient(discounts), tf.stop_gradient(cs)),
                       initializer=tf.zeros_like(bootstrap_value), reverse=True)
  vs = vs_minus_v + values

  vs_next = tf.concat([vs[1:], bootstrap_value[tf.newaxis]], axis=0)
  pg_rhos = rhos if clip_pg_rho_threshold is None else tf.minimum(clip_pg_rho_threshold, rhos)
  pg_advantages = pg_rhos * (rewards + discounts * vs_next - values)
  return VTraceReturns(vs=tf.stop_gradient(vs), pg_advantages=tf.stop_gradient(pg_advantages))
