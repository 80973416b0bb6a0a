"""Policy-gradient losses (seed 004 S4:L584-608, the thesis T:L841-850, T:L3907-3917; spec Sec. 4.6).

REINFORCE: grad_theta E_p(tau)[r(tau)] = E[r(tau) sum_t grad_theta log pi_theta(a_t|s_t)]: the dynamics and the
initial state drop out of grad log p(tau) (`mdp.trajectory_log_prob`). As a loss to minimise over sampled
(s_t, a_t, G_t): L = -mean_t log pi(a_t|s_t) (G_t - b(s_t)), the return and the baseline held fixed
(stop_gradient); with b = 0 it is plain REINFORCE, with a learned value b = V(s) the advantage form.

Advantage actor-critic (the thesis's A3C losses): policy -log pi(a|s) stop_grad(A) - beta H(pi(.|s)), value
(G - V(s))^2, with their weights. `categorical_entropy(logits)` is H in nats (ln K for uniform logits).
Distributions are `tfp.distributions.Categorical` (the project's rule).
"""

from typing import Dict, Optional

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp


def categorical_entropy(logits) -> tf.Tensor:
  """H(pi(.|s)) in nats per row of logits [..., K]."""
  return tfp.distributions.Categorical(logits=logits).entropy()


def log_prob(logits, actions) -> tf.Tensor:
  return tfp.distributions.Categorical(logits=logits).log_prob(actions)


def reinforce_loss(logits, actions, returns, baseline=None) -> tf.Tensor:
  """-mean log pi(a_t|s_t) (G_t - b_t), with G and b constants (module docstring). logits [N, K]; the rest [N]."""
  weight = tf.stop_gradient(tf.cast(returns, tf.float32) - (0.0 if baseline is None
                                                             else tf.cast(baseline, tf.float32)))
  return -tf.reduce_mean(log_prob(logits, actions) * weight)


def actor_critic_losses(logits, values, actions, returns, advantages=None, entropy_coef: float = 0.01,
                        value_coef: float = 0.5) -> Dict[str, tf.Tensor]:
  """{'policy', 'value', 'entropy', 'total'}: policy -mean log pi(a|s) stop_grad(A) - entropy_coef mean H, value
  mean (G - V)^2, total policy + value_coef value. A defaults to G - V (held fixed)."""
  returns = tf.cast(returns, tf.float32)
  values = tf.cast(values, tf.float32)
  adv = tf.stop_gradient(returns - values if advantages is None else tf.cast(advantages, tf.float32))
  entropy = tf.reduce_mean(categorical_entropy(logits))
  policy = -tf.reduce_mean(log_prob(logits, actions) * adv) - entropy_coef * entropy
  value = tf.reduce_mean(tf.square(returns - values))
  return {'policy': policy, 'value': value, 'entropy': entropy, 'total': policy + value_coef * value}


def bandit_gradient(logits, rewards) -> tf.Tensor:
  """The exact gradient of E_{a ~ softmax(logits)}[r_a] with respect to the logits: pi * (r - pi . r)."""
  pi = tf.nn.softmax(tf.cast(logits, tf.float64))
  r = tf.cast(rewards, tf.float64)
  return pi * (r - tf.reduce_sum(pi * r))


def reinforce_bandit_estimate(logits, rewards, num_samples: int, seed: int = 0,
                              baseline: Optional[float] = None) -> tf.Tensor:
  """The Monte Carlo REINFORCE estimate of `bandit_gradient`: the mean over sampled actions of
  (r_a - b) grad log pi(a), by automatic differentiation of -reinforce_loss."""
  logits = tf.Variable(tf.cast(logits, tf.float64))
  actions = tfp.distributions.Categorical(logits=logits).sample(num_samples, seed=seed)
  r = tf.gather(tf.cast(rewards, tf.float64), actions)
  with tf.GradientTape() as tape:
    lp = tfp.distributions.Categorical(logits=logits).log_prob(actions)
    objective = tf.reduce_mean(lp * tf.stop_gradient(r - (0.0 if baseline is None else baseline)))
  return tape.gradient(objective, logits)


def reinforce_bandit(rewards, updates: int, batch_size: int = 8, learning_rate: float = 0.1, seed: int = 0,
                     baseline: bool = False) -> np.ndarray:
  """REINFORCE on a K-armed deterministic bandit (spec T-PG-2): logits start at 0; each update samples
  `batch_size` arms from softmax(logits), takes one SGD step on `reinforce_loss` (with the batch's mean reward as
  a fixed baseline if `baseline`). Returns the policy's probabilities [updates + 1, K], before and after each."""
  r_table = tf.constant(rewards, tf.float32)
  logits = tf.Variable(tf.zeros_like(r_table))
  rng = tf.random.Generator.from_seed(seed)
  history = [tf.nn.softmax(logits).numpy()]

  @tf.function
  def update():
    actions = tfp.distributions.Categorical(logits=logits).sample(
        batch_size, seed=tf.cast(rng.uniform_full_int([2], tf.int64), tf.int32))
    returns = tf.gather(r_table, actions)
    with tf.GradientTape() as tape:
      batch_logits = tf.tile(logits[tf.newaxis], [batch_size, 1])
      loss = reinforce_loss(batch_logits, actions, returns,
                            tf.fill([batch_size], tf.reduce_mean(returns)) if baseline else None)
    logits.assign_sub(learning_rate * tape.gradient(loss, logits))      # plain SGD

  for _ in range(updates):
    update()
    history.append(tf.nn.softmax(logits).numpy())
  return np.stack(history)
