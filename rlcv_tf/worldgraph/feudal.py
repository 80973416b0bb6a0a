"""Chapter 3's Feudal hierarchy training (thesis Alg. 7, App. 3.C.2; spec ch3 §4.4 and §4.8-4.10). This module holds
the Manager's objective; the Alg. 7 training loop (rollout state machine, Worker rewards, traversal, updates of the
Manager and the Worker) will follow here. The Worker, pi_g and the flat A2C baseline use the shared A2C loss,
`core/actor_critic.actor_critic_loss` (spec §4.3).

Manager loss (Alg. 7, spec §4.4). S_m = the env-time indices at which the Manager emitted a subgoal pair. Its reward
r_t is the env reward at EVERY env step, Worker steps and traversal steps included [T]. Over a rollout of T env
steps (time-major [T, B] as `core/returns.py`):

    R <- 0 if terminal else V_m(s_T)          # bootstrap: the value head on a tentative LSTM step, not committed
    for t = T-1 .. 0:
        R <- r_t + gamma (1 - done_t) R
        if t in S_m:
            A = R - V_m,t
            loss += lambda_V A^2 - stop_grad(A) [log pi^w(g^w_t) + log pi^n(g^n_t | g^w_t)]
                    - beta_H [H(pi^w_t) + H(pi^n_t(. | g^w_t))]

so the value at a decision regresses on the discounted return over all env steps after it (the Worker's actions
and rewards and any traversal), "the t_m-step discounted return covering all Worker actions and rewards" [T].
An episode end inside the rollout (done_t) cuts R there, as in Alg. 1. log-probs, entropies and values are given in
env time [T, B] and read only at decision steps (other entries may hold anything finite). For the FN baseline the
same loss applies with the one categorical's log-prob and entropy.

Reduction, as `core/actor_critic` ('sum_time': summed over the decision steps of the rollout, averaged over the B
envs, Alg. 7's "loss +=" per env; 'mean': averaged over all decisions in the batch).
"""

from typing import Dict, Tuple

import tensorflow as tf

from rlcv_tf.core import actor_critic
from rlcv_tf.core import returns


def manager_loss(rewards, done, decision_mask, log_probs, entropies, values_at_decisions, bootstrap_value, *,
                 gamma: float, value_weight: float, entropy_weight: float, reduction: str = 'sum_time'
                 ) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
  """Alg. 7's Manager loss (module docstring) and its parts for logging.

  Args:
    rewards: env rewards r_t at every env step, [T, B].
    done: bool [T, B], the episode terminated right after env step t.
    decision_mask: bool [T, B], t in S_m (the Manager emitted a pair at the observation of step t).
    log_probs: joint log pi^w(g^w_t) + log pi^n(g^n_t | g^w_t) at the decisions, [T, B] (env time).
    entropies: H(pi^w_t) + H(pi^n_t(. | g^w_t)), [T, B].
    values_at_decisions: V_m,t, [T, B].
    bootstrap_value: V_m(s_T), [B] (gradient stopped; ignored where the last step is terminal).
    gamma, value_weight, entropy_weight: gamma, lambda_V, beta_H.
    reduction: 'sum_time' or 'mean'.

  Returns:
    (total loss, {name: scalar}): loss/value, loss/policy, loss/entropy, loss/total, and means over the decisions
    of the entropy, V_m, R and A, and the number of decisions per env.
  """
  actor_critic.check_reduction(reduction)
  values = tf.convert_to_tensor(values_at_decisions)
  if values.shape.rank != 2:
    raise ValueError(f'values_at_decisions must be env-time [T, B], got shape {values.shape}')
  shaped = {'rewards': rewards, 'done': done, 'decision_mask': decision_mask, 'log_probs': log_probs,
            'entropies': entropies}
  for name, x in shaped.items():
    shape = tf.convert_to_tensor(x).shape
    if not shape.is_compatible_with(values.shape):
      raise ValueError(f'{name} has shape {shape}; values_at_decisions has {values.shape}: all must be env-time '
                       f'[T, B]')
  bootstrap_value = tf.convert_to_tensor(bootstrap_value)
  if not bootstrap_value.shape.is_compatible_with(values.shape[1:]):
    raise ValueError(f'bootstrap_value must be V_m(s_T) of shape {values.shape[1:]}, got {bootstrap_value.shape}')
  dtype = values.dtype
  weights = tf.cast(tf.cast(decision_mask, tf.bool), dtype)
  discounts = returns.discounts_from_done(done, gamma, dtype)
  # R over every env step; `values` is not read (no bootstrap-only steps), only shapes and dtype.
  big_r = returns.discounted_returns(tf.cast(rewards, dtype), discounts, values, bootstrap_value)
  # The advantage exists at decision steps only; the mask keeps garbage elsewhere out of it.
  advantages = tf.stop_gradient(tf.where(weights > 0, big_r - values, tf.zeros_like(values)))
  log_probs = tf.cast(log_probs, dtype)
  entropies = tf.cast(entropies, dtype)
  value_loss = value_weight * actor_critic.reduce_steps(tf.square(big_r - values), weights, reduction)
  policy_loss = -actor_critic.reduce_steps(log_probs * advantages, weights, reduction)
  entropy_loss = -entropy_weight * actor_critic.reduce_steps(entropies, weights, reduction)
  total = value_loss + policy_loss + entropy_loss
  count = tf.maximum(tf.reduce_sum(weights), 1.0)
  logs = {
      'manager/loss/value': value_loss,
      'manager/loss/policy': policy_loss,
      'manager/loss/entropy': entropy_loss,
      'manager/loss/total': total,
      'manager/entropy': tf.reduce_sum(entropies * weights) / count,
      'manager/value_mean': tf.reduce_sum(values * weights) / count,
      'manager/return_mean': tf.reduce_sum(big_r * weights) / count,
      'manager/advantage_mean': tf.reduce_sum(advantages * weights) / count,
      'manager/decisions_per_env': tf.reduce_sum(weights) / tf.cast(tf.shape(weights)[1], dtype),
  }
  return total, logs
