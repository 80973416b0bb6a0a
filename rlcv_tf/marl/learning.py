"""Chapter 4 losses: per-agent V-trace actor-critic (Sec. 4.2.1, App. 4.A; spec ch4 §3.2-3.3).

Every agent is its own V-trace problem: its importance weight uses only its own action, its reward is its own
(shaped) reward, and its value is its own head's output; the weights are shared. With time-major tensors
`[T+1, B, N]` from an unroll (step t holds the reward and done of the transition INTO observation t):

    L = L_pg + L_baseline + L_entropy
    L_pg       = -mean[ log pi(a_s|x_s) * A^pg_s ]                (A^pg from V-trace, gradient stopped)
    L_baseline = baseline_cost * 0.5 * mean[ (v_s - V(x_s))^2 ]   (v_s the V-trace target)
    L_entropy  = -entropy_cost * mean[ H(pi(.|x_s)) ]

Means run over all (t, b, agent) entries of the replica's batch; the caller divides by the replica count.
"""

from typing import Dict, Tuple

import tensorflow as tf
import tensorflow_probability as tfp

from rlcv_tf.core import vtrace

tfd = tfp.distributions


def vtrace_loss(policy_logits, baseline, actions, behaviour_logits, rewards, done, *, discounting: float,
                baseline_cost: float, entropy_cost: float, lambda_: float = 1.0,
                clip_rho_threshold: float = 1.0,
                clip_pg_rho_threshold: float = 1.0) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
  """Total loss and its parts for one batch of unrolls.

  Args:
    policy_logits: learner (target) logits, [T+1, B, N, A].
    baseline: learner values, [T+1, B, N].
    actions: actions taken, int [T+1, B, N].
    behaviour_logits: the acting policy's logits, [T+1, B, N, A].
    rewards: per-agent reward of the transition into step t, [T+1, B, N].
    done: episode ended on the transition into step t, bool [T+1, B].
  """
  target = tfd.Categorical(logits=policy_logits[:-1])
  behaviour = tfd.Categorical(logits=tf.cast(behaviour_logits[:-1], tf.float32))
  taken = tf.cast(actions[:-1], tf.int32)
  target_log_prob = target.log_prob(taken)
  log_rhos = target_log_prob - behaviour.log_prob(taken)

  not_done = 1.0 - tf.cast(done[1:], tf.float32)                    # [T, B]
  discounts = discounting * not_done[..., tf.newaxis] * tf.ones_like(baseline[1:])  # broadcast over agents
  values = baseline[:-1]
  vt = vtrace.from_importance_weights(log_rhos, discounts, rewards[1:], values, baseline[-1],
                                      clip_rho_threshold=clip_rho_threshold,
                                      clip_pg_rho_threshold=clip_pg_rho_threshold, lambda_=lambda_)

  pg_loss = -tf.reduce_mean(target_log_prob * vt.pg_advantages)
  baseline_loss = baseline_cost * 0.5 * tf.reduce_mean(tf.square(vt.vs - values))
  entropy = tf.reduce_mean(target.entropy())
  entropy_loss = -entropy_cost * entropy
  total = pg_loss + baseline_loss + entropy_loss
  rhos = tf.exp(log_rhos)
  logs = {
      'loss/total': total,
      'loss/policy_gradient': pg_loss,
      'loss/baseline': baseline_loss,
      'loss/entropy': entropy_loss,
      'policy/entropy': entropy,
      'vtrace/value_target_mean': tf.reduce_mean(vt.vs),
      'vtrace/pg_advantage_mean': tf.reduce_mean(vt.pg_advantages),
      'vtrace/rho_mean': tf.reduce_mean(rhos),
      'vtrace/rho_clipped_fraction': tf.reduce_mean(tf.cast(rhos > clip_rho_threshold, tf.float32)),
      'value/mean': tf.reduce_mean(values),
      'value/explained_variance': _explained_variance(vt.vs, values),
  }
  return total, logs


def _explained_variance(targets, predictions):
  var = tf.math.reduce_variance(targets)
  return 1.0 - tf.math.reduce_variance(targets - predictions) / tf.maximum(var, 1e-8)
