"""The advantage actor-critic (A2C / A3C) loss over time-major rollouts, shared by Chapter 2's A3C family
(`stochastic_ac/losses.a3c_loss` wraps it with the thesis's Ch. 2 defaults and HPA3C's KL term) and Chapter 3's
goal-conditioned policy pi_g, Worker and flat A2C baseline (spec ch3 §4.3: "following Ch. 2 Eq. 2.1-2.2 / Alg. 1").
It has no defaults for the weights: each chapter passes its own.

Rollout layout (as `core/returns.py`): time-major `[T, B]`; step t holds the policy/value outputs at o_t, the action
a_t, the reward r_t received after acting and done_t (the episode terminated right after acting at t);
`bootstrap_value` is V(o_T), the value of the observation after the last step (gradient stopped; zeroed by done).

    R_t = r_t + gamma (1 - done_t) R_{t+1},  R_T = V(o_T)           n-step return over the rollout (Alg. 1, T:L883-886)
    A_t = GAE(gamma, tau) advantage (Schulman et al., 2016; Alg. 1's "A <- gamma tau A + delta", T:L892);
          tau = 1 gives A_t = R_t - V_t
    L = reduce_t [ lambda_v (R_t - V_t)^2  -  log pi_t(a_t) stop_grad(A_t)  -  beta H(pi_t) ]
The value term is lambda_v (R - V)^2 exactly as Alg. 1 writes it ("lambda dA_t^2/dtheta"), not 0.5 lambda_v (R - V)^2.

Steps that do not count (both are left out of every loss term and every logged mean):
* `bootstrap_only` [T, B] (Ch. 2): the last observation of a time-limit-truncated episode. Its return is its own
  value, R_t = V(o_t), its advantage 0, and the step before it bootstraps from V(o_t) (`core/returns.py`).
* `mask` [T, B] (1 / True = the step counts): padding of variable-length rollouts, e.g. Ch. 3's pi_g rollouts, which
  stop when the goal is reached (spec §4.3 "Termination = goal reached"), stored in a fixed [T, B] batch. A masked
  step is treated exactly as a bootstrap-only one: after a terminal step (done) its contents never reach a return;
  after a counted non-terminal step it supplies that step's bootstrap value V(o_t), so padding a rollout that was
  cut (not terminated) with the observation reached gives the right n-step return. Masked inputs must be finite
  (pad with zeros): they are multiplied by 0, not selected away.

Reduction (`reduction`):
* 'sum_time' (default; Ch. 2's reading, a spec PROPOSAL there): each term summed over time and averaged over the
  B rollouts, as the per-agent accumulation dtheta <- dtheta + ... over t = t_max..1 (Alg. 1, T:L883-892) averaged
  over the agents.
* 'mean': averaged over the counted steps (all of T and B), the "mean_t" spec ch3 §4.3 writes.
"""

from typing import Dict, Optional, Tuple

import tensorflow as tf
import tensorflow_probability as tfp

from rlcv_tf.core import returns

tfd = tfp.distributions

REDUCTIONS = ('sum_time', 'mean')


def clip_rewards(rewards, bound: Optional[float]) -> tf.Tensor:
  """Rewards clipped to [-bound, bound] (the learner's clipping; raw scores are still reported); None: unclipped."""
  rewards = tf.convert_to_tensor(rewards)
  if bound is None:
    return rewards
  if not bound > 0:
    raise ValueError(f'reward clip bound must be positive or None, got {bound!r}')
  return tf.clip_by_value(rewards, -bound, bound)


def check_reduction(reduction: str) -> None:
  if reduction not in REDUCTIONS:
    raise ValueError(f'reduction must be one of {REDUCTIONS}, got {reduction!r}')


def counted_steps(values, bootstrap_only=None, mask=None) -> tf.Tensor:
  """Float 0/1 weights of the steps that count (values' dtype and shape): 0 where `bootstrap_only` or not `mask`."""
  values = tf.convert_to_tensor(values)
  weights = tf.ones_like(values)
  if bootstrap_only is not None:
    weights = weights * (1.0 - tf.cast(bootstrap_only, values.dtype))
  if mask is not None:
    weights = weights * tf.cast(tf.cast(mask, tf.bool), values.dtype)
  return weights


def cut_flags(bootstrap_only=None, mask=None):
  """The bool flags `core/returns.py` treats as bootstrap-only: bootstrap_only OR NOT mask (None when both None)."""
  if mask is None:
    return bootstrap_only
  not_counted = tf.logical_not(tf.cast(mask, tf.bool))
  if bootstrap_only is None:
    return not_counted
  return tf.logical_or(tf.cast(bootstrap_only, tf.bool), not_counted)


def reduce_steps(per_step, weights, reduction: str = 'sum_time') -> tf.Tensor:
  """'sum_time': sum over time, mean over the batch (and any further axes); 'mean': mean over the counted steps."""
  check_reduction(reduction)
  if reduction == 'sum_time':
    return tf.reduce_mean(tf.reduce_sum(per_step * weights, axis=0))
  return tf.reduce_sum(per_step * weights) / tf.maximum(tf.reduce_sum(weights), 1.0)


def loss_terms(targets, values, log_probs, advantages, entropies, weights, *, value_weight: float,
               entropy_weight: float, reduction: str = 'sum_time'):
  """(value, policy, entropy, total) loss of the module docstring's L from its per-step pieces [T, B]:
  lambda_v (targets - V)^2, -log pi(a) A (A gradient-free as given), -beta H, each reduced over the `weights`
  (the counted steps). Shared with Chapter 3's Manager loss (worldgraph/feudal.manager_loss)."""
  value_loss = value_weight * reduce_steps(tf.square(targets - values), weights, reduction)
  policy_loss = -reduce_steps(log_probs * advantages, weights, reduction)
  entropy_loss = -entropy_weight * reduce_steps(entropies, weights, reduction)
  return value_loss, policy_loss, entropy_loss, value_loss + policy_loss + entropy_loss


def _check_shapes(logits, values, actions, rewards, done, bootstrap_value, bootstrap_only, mask):
  if values.shape.rank is None or values.shape.rank < 2:
    raise ValueError(f'values must be time-major [T, B], got shape {values.shape}')
  if logits.shape.rank != values.shape.rank + 1:
    raise ValueError(f'logits must be values\' shape plus an action axis ({values.shape} + [A]), got {logits.shape}')
  for name, x in (('logits', logits.shape[:-1]), ('actions', actions.shape), ('rewards', rewards.shape),
                  ('done', done.shape)):
    if not x.is_compatible_with(values.shape):
      raise ValueError(f'{name} has shape {x} (without the action axis for logits); values has {values.shape}: '
                       f'all must be [T, B]')
  for name, x in (('bootstrap_only', bootstrap_only), ('mask', mask)):
    if x is not None and not tf.convert_to_tensor(x).shape.is_compatible_with(values.shape):
      raise ValueError(f'{name} has shape {tf.convert_to_tensor(x).shape}; it must be values\' shape {values.shape}')
  if not bootstrap_value.shape.is_compatible_with(values.shape[1:]):
    raise ValueError(f'bootstrap_value must be V(o_T) of shape {values.shape[1:]}, got {bootstrap_value.shape}')


def actor_critic_loss(logits, values, actions, rewards, done, bootstrap_value, *, gamma: float, gae_lambda: float,
                      value_weight: float, entropy_weight: float, reward_clip: Optional[float] = None,
                      bootstrap_only=None, mask=None, reduction: str = 'sum_time'
                      ) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
  """The A2C loss of one batch of on-policy rollouts, and its parts for logging.

  Args:
    logits: policy logits at o_t, [T, B, A].
    values: V(o_t), [T, B].
    actions: a_t, int [T, B].
    rewards: raw rewards r_t, [T, B]; clipped here to +-reward_clip (None: unclipped).
    done: bool [T, B], the episode terminated right after acting at t.
    bootstrap_value: V(o_T), [B] (gradient stopped here).
    gamma, gae_lambda, value_weight, entropy_weight: gamma, tau, lambda_v, beta.
    reward_clip: bound of the reward clipping, None for none.
    bootstrap_only: optional bool [T, B], see the module docstring.
    mask: optional [T, B] (bool or 0/1), the steps that count; see the module docstring.
    reduction: 'sum_time' or 'mean' (module docstring).

  Returns:
    (total loss, {name: scalar}): loss/value, loss/policy, loss/entropy, loss/total and means over the counted steps
    of the entropy, V, R, A and the clipped reward.
  """
  check_reduction(reduction)
  values = tf.convert_to_tensor(values)
  logits = tf.convert_to_tensor(logits)
  actions = tf.convert_to_tensor(actions)
  rewards = tf.convert_to_tensor(rewards)
  done = tf.convert_to_tensor(done)
  bootstrap_value = tf.convert_to_tensor(bootstrap_value)
  _check_shapes(logits, values, actions, rewards, done, bootstrap_value, bootstrap_only, mask)
  dist = tfd.Categorical(logits=logits)
  rewards_clipped = tf.cast(clip_rewards(rewards, reward_clip), values.dtype)
  discounts = returns.discounts_from_done(done, gamma, values.dtype)
  cut = cut_flags(bootstrap_only, mask)
  n_step = returns.discounted_returns(rewards_clipped, discounts, values, bootstrap_value, bootstrap_only=cut)
  advantages = returns.generalized_advantage_estimation(rewards_clipped, discounts, values, bootstrap_value,
                                                        gae_lambda, bootstrap_only=cut).advantages
  weights = counted_steps(values, bootstrap_only, mask)
  log_prob = dist.log_prob(tf.cast(actions, tf.int32))
  entropy = dist.entropy()

  value_loss, policy_loss, entropy_loss, total = loss_terms(
      n_step, values, log_prob, advantages, entropy, weights, value_weight=value_weight,
      entropy_weight=entropy_weight, reduction=reduction)
  count = tf.maximum(tf.reduce_sum(weights), 1.0)
  logs = {
      'loss/value': value_loss,
      'loss/policy': policy_loss,
      'loss/entropy': entropy_loss,
      'policy/entropy': tf.reduce_sum(entropy * weights) / count,
      'value/mean': tf.reduce_sum(values * weights) / count,
      'value/return_mean': tf.reduce_sum(n_step * weights) / count,
      'value/advantage_mean': tf.reduce_sum(advantages * weights) / count,
      'reward/clipped_mean': tf.reduce_sum(rewards_clipped * weights) / count,
      'loss/total': total,
  }
  return total, logs
