"""Chapter 2 objectives: the A3C family (A3C-LSTM, SA3C, FSA3C, HPA3C, dropout and NoisyNet variants), ACER
(ACER, SACER, NN-ACER) and DDPG (DDPG, SDDPG, PN-DDPG). Thesis values are the defaults, cited as T:Lnnnn (lines of
shared/seeds/000_c47052dd0852ee6d.txt); values the thesis leaves open are marked as such.

Rollout layout (as `core/returns.py`): time-major `[T, B]`; step t holds the policy/value outputs at o_t, the
action a_t, the raw reward r_t received after acting and done_t (the episode terminated right after acting at t);
`bootstrap_value` is the value of o_T, the observation after the last step (stop-gradient; zeroed by done).
Steps flagged `bootstrap_only` (the last observation of a time-limit-truncated episode) only bootstrap the step
before them and are left out of every loss term.

Reduction (the thesis does not state it; spec PROPOSAL): each term is summed over time and averaged over the B
rollouts, as the thesis's per-agent accumulation dtheta <- dtheta + ... over t = t_max..1 (Alg. 1, T:L883-892)
averaged over the mini-batch of agents.

A3C family (Alg. 1-3, T:L869-892, T:L1846-1912; Eq. 2.1-2.2, T:L843-850):
    R_t = r_t + gamma (1 - done_t) R_{t+1},  R_T = V(o_T)           n-step return over the rollout
    A_t = GAE(gamma, tau) advantage (Schulman et al., 2016)
    L = sum_t [ lambda_v (R_t - V_t)^2  -  log pi_t(a_t) stop_grad(A_t)  -  beta H(pi_t)  +  psi KL_t ]
The value term is lambda_v (R - V)^2 exactly as Alg. 1 writes it ("lambda dA_t^2/dtheta"), not 0.5 lambda_v (R - V)^2.
Everything but the KL term is the shared `core/actor_critic.actor_critic_loss` (Chapter 3's A2C uses it too);
`a3c_loss` adds the Chapter 2 defaults and HPA3C's KL.

ACER (Wang et al., 2016; thesis Alg. 4/5, T:L1913-2003, values T:L1733-1737): Retrace targets with c = min(1, rho),
truncated importance sampling (c = 10) with bias correction, and the linearised trust region (delta = 1) against the
average network's probabilities, all with respect to the probability vector f (`core/retrace.py`):
    L = sum_t [ -sum_a stop_grad(z*_t)(a) f_t(a)  -  beta H(f_t)  +  lambda_v 1/2 (Q^ret_t - Q_t(a_t))^2 ]
`printed_algorithm=True` follows the printed Alg. 4/5 instead: untruncated rho in Retrace (T:L1953), g = grad log
pi(a_t) (Q^ret_t - V_t) with no importance weight and no bias correction (T:L1938-1939); the trust region still acts
on f.

DDPG (Lillicrap et al., 2016; the thesis gives batch 128 and lr 5e-4, T:L1739, and is silent on gamma and tau):
    critic: mean (y - Q(s, a))^2,  y = r + gamma (1 - done) Q'(s', mu'(s'))      actor: -mean Q(s, mu(s))
    targets: theta' <- tau theta + (1 - tau) theta' (tau = 0.001; `ddpg.soft_update`)
"""

from typing import Dict, Optional, Tuple

import tensorflow as tf
import tensorflow_probability as tfp

from rlcv_tf.core import actor_critic
from rlcv_tf.core import retrace
from rlcv_tf.core import returns

tfd = tfp.distributions

# A3C family (thesis App. 2.E).
A3C_GAMMA = 0.95                 # T:L1718-1719 "Discount rate gamma for return is 0.95"
VALUE_WEIGHT = 5.0               # T:L1719-1720 "weighted with lambda = 5"
VALUE_WEIGHT_FREEWAY = 0.5       # T:L1720 "except for Freeway where lambda = 0.5"
ENTROPY_WEIGHT = 0.01            # T:L1720-1721 "beta = 0.01"
REWARD_CLIP = 1.0                # T:L1721-1722 "clipped between -1 and 1 except for Freeway" (Freeway: None)
GAE_LAMBDA = 1.0                 # T:L1723-1724 "tau = 1.0"
GAE_LAMBDA_FREEWAY = 0.92        # T:L1724 "except for Freeway tau = 0.92"
HPA3C_KL_WEIGHT = 1e-4           # T:L1726-1727 "the KL term is weighted with psi = 0.0001"

# ACER (T:L1733-1737; the rest "follow[s] most of the hyperparameters used for Seaquest", T:L1733).
ACER_TRUNCATION = 10.0           # T:L1737 "importance weight truncation 10"
ACER_TRUST_REGION_DELTA = 1.0    # T:L1736 "trust threshold 1"
ACER_RETRACE_LAMBDA = 1.0        # Wang et al. (2016): c = min(1, rho); the thesis does not restate it

# DDPG (the thesis is silent on these; Lillicrap et al., 2016). The target networks' soft update is
# `ddpg.soft_update(target, source, DDPG_TAU)`; ACER's average network is updated by `acer.update_average_network`.
DDPG_GAMMA = 0.99
DDPG_TAU = 0.001


# The learner's reward clipping (shared with Chapter 3 through core).
clip_rewards = actor_critic.clip_rewards


def _step_mask(values, bootstrap_only):
  if bootstrap_only is None:
    return tf.ones_like(values)
  return 1.0 - tf.cast(bootstrap_only, values.dtype)


def _reduce(per_step, mask):
  """Sum over time, mean over the batch (and any further axes)."""
  return tf.reduce_mean(tf.reduce_sum(per_step * mask, axis=0))


def a3c_loss(logits, values, actions, rewards, done, bootstrap_value, *, gamma: float = A3C_GAMMA,
             gae_lambda: float = GAE_LAMBDA, value_weight: float = VALUE_WEIGHT,
             entropy_weight: float = ENTROPY_WEIGHT, reward_clip: Optional[float] = REWARD_CLIP, kl=None,
             kl_weight: float = HPA3C_KL_WEIGHT, bootstrap_only=None) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
  """The A3C-family loss of one batch of on-policy rollouts, and its parts for logging.

  Args:
    logits: policy logits at o_t, [T, B, A], computed under the noise used to pick a_t.
    values: V(o_t), [T, B], under the same noise.
    actions: a_t, int [T, B].
    rewards: raw rewards r_t, [T, B]; clipped here to +-reward_clip (None: unclipped, Freeway).
    done: bool [T, B], the episode terminated right after acting at t.
    bootstrap_value: V(o_T), [B] (gradient stopped here).
    gamma, gae_lambda, value_weight, entropy_weight, kl_weight: gamma, tau, lambda_v, beta, psi (thesis defaults).
    kl: HPA3C's KL[N(mu_t, sigma_t^2) || N(mu^p_t, sigma_p^2)] per step, [T, B] (further axes, e.g. units, are
      summed); None for the other models.
    bootstrap_only: optional bool [T, B], see the module docstring.

  Returns:
    (total loss, {name: scalar}).
  """
  values = tf.convert_to_tensor(values)
  total, logs = actor_critic.actor_critic_loss(
      logits, values, actions, rewards, done, bootstrap_value, gamma=gamma, gae_lambda=gae_lambda,
      value_weight=value_weight, entropy_weight=entropy_weight, reward_clip=reward_clip,
      bootstrap_only=bootstrap_only)
  logs = dict(logs)
  if kl is not None:
    mask = _step_mask(values, bootstrap_only)
    count = tf.maximum(tf.reduce_sum(mask), 1.0)
    kl = tf.cast(tf.convert_to_tensor(kl), values.dtype)
    if kl.shape.rank > 2:
      kl = tf.reduce_sum(kl, axis=list(range(2, kl.shape.rank)))
    kl_loss = kl_weight * _reduce(kl, mask)
    total = total + kl_loss
    logs['loss/kl'] = kl_loss
    logs['hpa3c/kl'] = tf.reduce_sum(kl * mask) / count
  logs['loss/total'] = total
  return total, logs


def acer_loss(logits, q_values, actions, rewards, done, behaviour_probs, bootstrap_value, average_logits, *,
              gamma: float = A3C_GAMMA, truncation: float = ACER_TRUNCATION,
              trust_region_delta: Optional[float] = ACER_TRUST_REGION_DELTA,
              retrace_lambda: float = ACER_RETRACE_LAMBDA, entropy_weight: float = ENTROPY_WEIGHT,
              value_weight: float = VALUE_WEIGHT, reward_clip: Optional[float] = REWARD_CLIP,
              printed_algorithm: bool = False, bootstrap_only=None) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
  """The ACER loss of one batch of segments (on-policy: behaviour_probs = the acting probabilities, rho = 1).

  Args:
    logits: policy logits of the current network at o_t, [T, B, A].
    q_values: Q(o_t, .) of the current network, [T, B, A].
    actions: a_t, int [T, B].
    rewards: raw rewards, [T, B]; clipped to +-reward_clip (the Seaquest setting ACER inherits, T:L1733,
      T:L1721-1722; None: unclipped).
    done: bool [T, B].
    behaviour_probs: mu_t(.), the probabilities the actions were drawn from, [T, B, A].
    bootstrap_value: V(o_T) = sum_a f_T(a) Q_T(a), [B] (gradient stopped).
    average_logits: logits of the average network theta_a at o_t, [T, B, A] (gradient stopped).
    gamma: 0.95, the Seaquest value (T:L1718-1719, T:L1733).
    truncation: c = 10 (T:L1737). trust_region_delta: delta = 1 (T:L1736); None switches the trust region off.
    retrace_lambda: lambda in c_t = lambda min(1, rho_t) (Wang et al.: 1).
    entropy_weight: beta = 0.01 (T:L1720-1721). value_weight: lambda in "dtheta <- dtheta + lambda dL_V/dtheta" with
      L_V = 1/2 (R - Q_t(a_t))^2 (Alg. 4, T:L1936-1949; 5 from Seaquest, T:L1719-1720).
    printed_algorithm: follow the printed Alg. 4/5 (see the module docstring) instead of Wang et al.'s ACER.
    bootstrap_only: optional bool [T, B].
  """
  dist = tfd.Categorical(logits=logits)
  probs = dist.probs_parameter()
  q_values = tf.convert_to_tensor(q_values)
  dtype = q_values.dtype
  behaviour_probs = tf.cast(tf.convert_to_tensor(behaviour_probs), dtype)
  taken = tf.cast(actions, tf.int32)
  onehot = tf.one_hot(taken, q_values.shape[-1], dtype=dtype)
  q_taken = tf.reduce_sum(q_values * onehot, axis=-1)
  values = tf.stop_gradient(tf.reduce_sum(probs * q_values, axis=-1))
  rho_taken = tf.stop_gradient(tf.reduce_sum(probs * onehot, axis=-1)
                               / tf.maximum(tf.reduce_sum(behaviour_probs * onehot, axis=-1), retrace.MIN_PROB))
  rewards_clipped = tf.cast(clip_rewards(rewards, reward_clip), dtype)
  discounts = returns.discounts_from_done(done, gamma, dtype)
  q_ret = retrace.retrace_targets(rewards_clipped, discounts, tf.stop_gradient(q_taken), values, bootstrap_value,
                                  rho_taken, lambda_=retrace_lambda, c_bar=None if printed_algorithm else 1.0,
                                  bootstrap_only=bootstrap_only)
  if printed_algorithm:
    # g = grad_f log f(a_t) (Q^ret - V): the importance weights set to 1 (mu := f), no truncation or correction.
    g = retrace.truncated_policy_gradient(probs, probs, taken, q_values, q_ret, values, truncation=None)
  else:
    g = retrace.truncated_policy_gradient(probs, behaviour_probs, taken, q_values, q_ret, values,
                                          truncation=truncation)
  average_probs = tf.stop_gradient(tfd.Categorical(logits=tf.cast(average_logits, dtype)).probs_parameter())
  if trust_region_delta is None:
    z = g.gradient
    scale = tf.zeros_like(values)
  else:
    projected = retrace.trust_region_projection(g.gradient, retrace.kl_gradient(average_probs, probs),
                                                trust_region_delta)
    z, scale = projected.gradient, projected.scale
  mask = _step_mask(values, bootstrap_only)
  entropy = dist.entropy()
  policy_loss = -_reduce(tf.reduce_sum(tf.stop_gradient(z) * probs, axis=-1), mask)
  entropy_loss = -entropy_weight * _reduce(entropy, mask)
  value_loss = value_weight * _reduce(0.5 * tf.square(q_ret - q_taken), mask)
  total = policy_loss + entropy_loss + value_loss
  count = tf.maximum(tf.reduce_sum(mask), 1.0)

  def mean(x):
    return tf.reduce_sum(x * mask) / count

  kl_average = tf.reduce_sum(average_probs * (tf.math.log(tf.maximum(average_probs, retrace.MIN_PROB))
                                              - tf.math.log(tf.maximum(probs, retrace.MIN_PROB))), axis=-1)
  logs = {
      'loss/total': total,
      'loss/policy': policy_loss,
      'loss/entropy': entropy_loss,
      'loss/value': value_loss,
      'policy/entropy': mean(entropy),
      'acer/rho_mean': mean(rho_taken),
      'acer/rho_truncated_fraction': mean(tf.cast(rho_taken > truncation, dtype)),
      'acer/bias_correction_norm': mean(tf.norm(g.bias_correction, axis=-1)),
      'acer/trust_region_active_fraction': mean(tf.cast(scale > 0, dtype)),
      'acer/kl_from_average': mean(tf.stop_gradient(kl_average)),
      'acer/q_retrace_mean': mean(q_ret),
      'value/mean': mean(values),
  }
  return total, logs


def _as_batch(x, name, like=None):
  x = tf.convert_to_tensor(x)
  if x.shape.rank == 2 and x.shape[-1] == 1:
    x = x[:, 0]
  if x.shape.rank != 1:
    raise ValueError(f'{name} must be [B] or [B, 1], got shape {x.shape}')
  return x if like is None else tf.cast(x, like.dtype)


def ddpg_critic_loss(q, rewards, done, next_target_q, *, gamma: float = DDPG_GAMMA
                     ) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
  """mean_i (y_i - Q(s_i, a_i))^2 with y_i = r_i + gamma (1 - done_i) Q'(s'_i, mu'(s'_i)) (gradient stopped).

  `done` must be a termination (falling in BipedalWalker), not a time-limit end: a truncated transition keeps
  done = 0 and bootstraps from s'. SDDPG uses the MAP actor for mu' (no activation noise in training, T:L1050-1052).
  Shapes [B] or [B, 1].
  """
  q = _as_batch(q, 'q')
  target = _as_batch(rewards, 'rewards', q) + gamma * (1.0 - _as_batch(tf.cast(done, q.dtype), 'done', q)) * \
      _as_batch(next_target_q, 'next_target_q', q)
  target = tf.stop_gradient(target)
  loss = tf.reduce_mean(tf.square(target - q))
  return loss, {'loss/critic': loss, 'critic/q_mean': tf.reduce_mean(q), 'critic/target_mean': tf.reduce_mean(target)}


def ddpg_actor_loss(q_of_actor_actions) -> tf.Tensor:
  """-mean_i Q(s_i, mu(s_i)): its gradient moves the actor's actions up the critic (the critic is not updated by it:
  apply the gradient to the actor's variables only)."""
  return -tf.reduce_mean(_as_batch(q_of_actor_actions, 'q_of_actor_actions'))

