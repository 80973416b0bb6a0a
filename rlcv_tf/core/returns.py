"""Discounted returns, n-step bootstrapped returns, TD errors and GAE over time-major rollouts.

Layout (the same as `core/vtrace.py`): tensors are time-major `[T, B, ...]` with any number of trailing axes.
Step t holds the observation o_t, the action a_t taken there, the reward r_t received after acting and
`discounts[t]` = gamma * (1 - done_t), zero when the episode ended (terminated) right after acting at t.
`values[t]` = V(o_t) for t = 0..T-1 and `bootstrap_value` = V(o_T), shape `[B, ...]`: the value of the observation
after the rollout's last step (set its discount to 0, or pass any value, when that step ended an episode).

    discounted return (A3C's n-step return, thesis Alg. 1, T:L883-886):
        R_T = V(o_T),   R_t = r_t + discounts_t * R_{t+1}
    n-step return (fixed horizon n, cut at the rollout's end and at episode ends):
        R^(n)_t = sum_{k<m} (prod_{j<k} discounts_{t+j}) r_{t+k} + (prod_{j<m} discounts_{t+j}) V(o_{t+m}),
        m = min(n, T - t)
    TD error (T:L892):  delta_t = r_t + discounts_t * V(o_{t+1}) - V(o_t)
    GAE (Schulman et al., 2016; thesis Alg. 1, T:L892: the backward loop "A_t <- gamma tau A_{t-1} + delta"):
        A_T = 0,   A_t = delta_t + discounts_t * lambda * A_{t+1};   lambda-return = A_t + V(o_t)

With lambda = 1 the GAE advantage equals R_t - V(o_t); with lambda = 0 it is the TD error.

Time-limit truncation: a step whose `bootstrap_only` flag is set carries the LAST observation of an episode cut by a
time limit (the runtime's `truncated` step, `runtime/env_runner.py`). Its action was not applied and its own
transition (to the reset) is not real, so its return is its own value, R_t = V(o_t), its TD error and advantage are
0, and the step before it bootstraps from V(o_t) (keep that step's discount at gamma). Give such a step reward 0 and
discount 0 and leave it out of the losses (mask it).

Outputs are targets: by default their gradients are stopped (`stop_gradient=False` keeps them, e.g. to check which
inputs a target depends on).
"""

from typing import NamedTuple, Optional

import tensorflow as tf


class GAEOutput(NamedTuple):
  advantages: tf.Tensor     # [T, B, ...] GAE advantages A_t
  lambda_returns: tf.Tensor  # [T, B, ...] A_t + V(o_t)


def discounts_from_done(done, gamma: float, dtype=tf.float32) -> tf.Tensor:
  """gamma * (1 - done): the per-step discount that cuts every sum at an episode end (`done` bool or 0/1)."""
  return gamma * (1.0 - tf.cast(done, dtype))


def prepare_rollout(rewards, discounts, values, bootstrap_value, bootstrap_only=None):
  """Converts and checks a rollout: every tensor in `values`' float dtype (float32 when `values` is not float),
  rewards/discounts/values of one rank [T, B, ...], bootstrap_value without the time axis, and `bootstrap_only`
  as a bool tensor of values' shape (all False when None). Raises ValueError naming the tensor that does not fit.
  """
  values = tf.convert_to_tensor(values)
  dtype = values.dtype if values.dtype.is_floating else tf.float32
  values = tf.cast(values, dtype)
  rewards = tf.cast(tf.convert_to_tensor(rewards), dtype)
  discounts = tf.cast(tf.convert_to_tensor(discounts), dtype)
  bootstrap_value = tf.cast(tf.convert_to_tensor(bootstrap_value), dtype)
  rank = values.shape.rank
  if rank is None or rank < 1:
    raise ValueError(f'values must be time-major [T, B, ...], got shape {values.shape}')
  for name, t in (('rewards', rewards), ('discounts', discounts)):
    if t.shape.rank != rank:
      raise ValueError(f'{name} has rank {t.shape.rank}, values has rank {rank}; all must be [T, B, ...]')
  if bootstrap_value.shape.rank != rank - 1:
    raise ValueError(f'bootstrap_value must be values without the time axis (rank {rank - 1}), '
                     f'got rank {bootstrap_value.shape.rank}')
  if bootstrap_only is None:
    bootstrap_only = tf.zeros_like(values, dtype=tf.bool)
  else:
    bootstrap_only = tf.cast(tf.convert_to_tensor(bootstrap_only), tf.bool)
    if bootstrap_only.shape.rank != rank:
      raise ValueError(f'bootstrap_only has rank {bootstrap_only.shape.rank}, values has rank {rank}')
    bootstrap_only = tf.broadcast_to(bootstrap_only, tf.shape(values))
  return rewards, discounts, values, bootstrap_value, bootstrap_only


def as_dtype(x, dtype) -> tf.Tensor:
  """A Python number converted straight to `dtype` (tf.cast would round it through float32 first); tensors cast."""
  if isinstance(x, (int, float)):
    return tf.constant(x, dtype)
  return tf.cast(x, dtype)


def _maybe_stop(x, stop_gradient):
  return tf.stop_gradient(x) if stop_gradient else x


def discounted_returns(rewards, discounts, values, bootstrap_value, *, bootstrap_only=None,
                       stop_gradient: bool = True) -> tf.Tensor:
  """R_t = r_t + discounts_t * R_{t+1}, R_T = bootstrap_value (A3C's n-step return over the whole rollout).

  `values` is only read at `bootstrap_only` steps (R_t = V(o_t) there) and for dtype and shape checks.
  """
  rewards, discounts, values, bootstrap_value, cut = prepare_rollout(rewards, discounts, values, bootstrap_value,
                                                              bootstrap_only)

  def step(next_return, inputs):
    r, d, v, b = inputs
    return tf.where(b, v, r + d * next_return)

  returns = tf.scan(step, (rewards, discounts, values, cut), initializer=bootstrap_value, reverse=True)
  return _maybe_stop(returns, stop_gradient)


def n_step_returns(rewards, discounts, values, bootstrap_value, n: int, *, bootstrap_only=None,
                   stop_gradient: bool = True) -> tf.Tensor:
  """Fixed-horizon n-step returns: at most n rewards, then the value of the observation reached.

  Near the rollout's end fewer rewards remain and the return bootstraps from `bootstrap_value`; an episode end
  (discount 0) or a `bootstrap_only` step cuts it earlier. n = 1 gives the one-step TD target; n >= T gives
  `discounted_returns`.
  """
  if int(n) != n or n < 1:
    raise ValueError(f'n must be a positive integer, got {n!r}')
  rewards, discounts, values, bootstrap_value, cut = prepare_rollout(rewards, discounts, values, bootstrap_value,
                                                              bootstrap_only)
  # G^(0) = V over steps 0..T; G^(k)_t = r_t + d_t G^(k-1)_{t+1} for t < T (V_t at bootstrap-only steps), G_T = V_T.
  values_ext = tf.concat([values, bootstrap_value[tf.newaxis]], axis=0)
  g = values_ext
  for _ in range(int(n)):
    g_head = tf.where(cut, values, rewards + discounts * g[1:])
    g = tf.concat([g_head, bootstrap_value[tf.newaxis]], axis=0)
  return _maybe_stop(g[:-1], stop_gradient)


def td_errors(rewards, discounts, values, bootstrap_value, *, bootstrap_only=None,
              stop_gradient: bool = True) -> tf.Tensor:
  """delta_t = r_t + discounts_t * V(o_{t+1}) - V(o_t); 0 at `bootstrap_only` steps."""
  rewards, discounts, values, bootstrap_value, cut = prepare_rollout(rewards, discounts, values, bootstrap_value,
                                                              bootstrap_only)
  values_next = tf.concat([values[1:], bootstrap_value[tf.newaxis]], axis=0)
  deltas = tf.where(cut, tf.zeros_like(values), rewards + discounts * values_next - values)
  return _maybe_stop(deltas, stop_gradient)


def generalized_advantage_estimation(rewards, discounts, values, bootstrap_value, lambda_: float, *,
                                     bootstrap_only=None, stop_gradient: bool = True) -> GAEOutput:
  """GAE advantages A_t = delta_t + discounts_t * lambda * A_{t+1} (A_T = 0) and the lambda-returns A_t + V(o_t).

  `lambda_` is the trace decay (the thesis's tau: 1.0, Freeway 0.92; T:L1723-1724). It may be a scalar or a tensor
  that broadcasts against `values`.
  """
  deltas = td_errors(rewards, discounts, values, bootstrap_value, bootstrap_only=bootstrap_only,
                     stop_gradient=stop_gradient)
  _, discounts, values, bootstrap_value, cut = prepare_rollout(rewards, discounts, values, bootstrap_value,
                                                        bootstrap_only)
  lam = as_dtype(lambda_, values.dtype) * tf.ones_like(values)

  def step(next_adv, inputs):
    delta, d, l, b = inputs
    return tf.where(b, tf.zeros_like(delta), delta + d * l * next_adv)

  advantages = tf.scan(step, (deltas, discounts, lam, cut), initializer=tf.zeros_like(bootstrap_value),
                       reverse=True)
  advantages = _maybe_stop(advantages, stop_gradient)
  return GAEOutput(advantages=advantages, lambda_returns=_maybe_stop(advantages + values, stop_gradient))
