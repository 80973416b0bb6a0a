"""Policy-gradient losses (spec Sec. 7.7 T-PG-1, T-AC-1): the REINFORCE estimate against the closed-form bandit
gradient, the actor-critic losses' gradient routing, entropy and value loss on hand numbers."""

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.rl_basics import reinforce


def test_bandit_gradient_closed_form_and_reinforce_estimate():
  logits = np.array([0.2, -0.1, 0.4])
  rewards = np.array([1.0, 0.0, 2.0])
  exact = reinforce.bandit_gradient(logits, rewards).numpy()
  np.testing.assert_allclose(exact, [-0.0548, -0.2907, 0.3454], atol=5e-5)
  # independent check of the closed form: central differences of E[r] = softmax(logits) . r
  expect = lambda z: float(np.exp(z) @ rewards / np.exp(z).sum())
  numeric = [(expect(logits + 1e-6 * e) - expect(logits - 1e-6 * e)) / 2e-6 for e in np.eye(3)]
  np.testing.assert_allclose(exact, numeric, atol=1e-8)
  estimate = reinforce.reinforce_bandit_estimate(logits, rewards, 200_000, seed=0).numpy()
  np.testing.assert_allclose(estimate, exact, atol=0.005)


def test_actor_critic_losses_route_gradients_and_match_hand_numbers():
  logits = tf.Variable([[0.0, 0.0, 0.0], [1.0, -1.0, 0.5]])
  values = tf.Variable([1.0, 2.0])
  actions = tf.constant([0, 2])
  returns = tf.constant([3.0, 1.0])
  with tf.GradientTape(persistent=True) as tape:
    out = reinforce.actor_critic_losses(logits, values, actions, returns, entropy_coef=0.0)
  assert tape.gradient(out['policy'], values) is None                  # the advantage is held fixed
  assert float(out['value']) == pytest.approx(((3 - 1) ** 2 + (1 - 2) ** 2) / 2)
  uniform = reinforce.categorical_entropy(tf.zeros([1, 5]))
  assert float(uniform[0]) == pytest.approx(np.log(5))
  g = tape.gradient(out['policy'], logits).numpy()
  pi = tf.nn.softmax(logits).numpy()
  adv = np.array([3.0 - 1.0, 1.0 - 2.0])
  expected = -(np.eye(3)[[0, 2]] - pi) * adv[:, None] / 2                   # d(-mean log pi(a) A)/dlogits
  np.testing.assert_allclose(g, expected, atol=1e-6)


def test_reinforce_loss_baseline_is_held_fixed():
  logits = tf.Variable([[0.3, -0.2]])
  baseline = tf.Variable([0.5])
  with tf.GradientTape() as tape:
    loss = reinforce.reinforce_loss(logits, [1], [2.0], baseline)
  assert tape.gradient(loss, baseline) is None


@pytest.mark.slow
def test_reinforce_learns_the_two_armed_bandit():
  """T-PG-2: REINFORCE on a deterministic 2-armed bandit (1 vs 0) puts P(best) > 0.9 within 300 updates; at a
  learning rate of 1e-6 it stays near 0.5 (the check can fail)."""
  probs = reinforce.reinforce_bandit([1.0, 0.0], updates=300, batch_size=8, learning_rate=0.1, seed=0)
  assert probs[0, 0] == pytest.approx(0.5) and probs[-1, 0] > 0.9
  stuck = reinforce.reinforce_bandit([1.0, 0.0], updates=300, batch_size=8, learning_rate=1e-6, seed=0)
  assert abs(stuck[-1, 0] - 0.5) < 0.01
