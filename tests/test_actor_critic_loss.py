"""core/actor_critic.py: the shared A2C loss (Ch. 2 Alg. 1, Ch. 3 spec §4.3; spec §9 test 14's first half) against
hand-computed numbers and a plain NumPy loop written from Alg. 1, with episode ends, bootstrap values, padded
(masked) steps and both reductions."""

import math

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.core import actor_critic


def softmax(z):
  e = np.exp(z - z.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def reference(logits, values, actions, rewards, done, bootstrap, gamma, tau, lam_v, beta, mask=None,
              reduction='sum_time'):
  """Alg. 1 per agent, backwards over t: R <- r_t + gamma R; delta_t = r_t + gamma V_{t+1} - V_t;
  Ahat <- gamma tau Ahat + delta_t; loss += lam_v (R - V_t)^2 - log pi_t(a_t) Ahat - beta H(pi_t). An episode end
  resets R, V_{t+1} and Ahat to 0. A masked step adds nothing; the step before it starts from R = V_t there.
  Returns (loss, R [T, B], Ahat [T, B])."""
  T, B = rewards.shape
  mask = np.ones((T, B), bool) if mask is None else mask
  total, count = 0.0, 0
  big_rs, advs = np.zeros((T, B)), np.zeros((T, B))
  for b in range(B):
    big_r, adv, v_next = bootstrap[b], 0.0, bootstrap[b]
    for t in reversed(range(T)):
      if not mask[t, b]:
        big_r, adv, v_next = values[t, b], 0.0, values[t, b]
        big_rs[t, b] = big_r
        continue
      if done[t, b]:
        big_r, adv, v_next = 0.0, 0.0, 0.0
      big_r = rewards[t, b] + gamma * big_r
      adv = gamma * tau * adv + rewards[t, b] + gamma * v_next - values[t, b]
      big_rs[t, b], advs[t, b] = big_r, adv
      pi = softmax(logits[t, b])
      entropy = -np.sum(pi * np.log(pi))
      total += lam_v * (big_r - values[t, b]) ** 2 - np.log(pi[actions[t, b]]) * adv - beta * entropy
      count += 1
      v_next = values[t, b]
  loss = total / B if reduction == 'sum_time' else total / max(count, 1)
  return loss, big_rs, advs


def loss(x, **kwargs):
  args = dict(gamma=0.95, gae_lambda=1.0, value_weight=0.5, entropy_weight=0.01)
  args.update(kwargs)
  return actor_critic.actor_critic_loss(x['logits'], x['values'], x['actions'], x['rewards'], x['done'],
                                        x['bootstrap'], **args)


def random_rollout(seed, T=6, B=3, A=4):
  rng = np.random.default_rng(seed)
  return dict(logits=rng.normal(size=(T, B, A)), values=rng.normal(size=(T, B)),
              actions=rng.integers(0, A, size=(T, B)), rewards=rng.normal(size=(T, B)),
              done=rng.random((T, B)) < 0.25, bootstrap=rng.normal(size=B))


def three_steps(terminal):
  """One agent, 2 actions, uniform policy: rewards (1, 0, 2), V = (0.5, 0.4, 0.3), V(o_3) = 1, gamma 0.9."""
  return dict(logits=np.zeros((3, 1, 2)), values=np.array([[0.5], [0.4], [0.3]]),
              actions=np.array([[0], [1], [0]]), rewards=np.array([[1.0], [0.0], [2.0]]),
              done=np.array([[False], [False], [terminal]]), bootstrap=np.array([1.0]))


@pytest.mark.parametrize('terminal,want_returns', [
    (False, [3.349, 2.61, 2.9]),   # R_2 = 2 + 0.9 * 1; R_1 = 0.9 * 2.9; R_0 = 1 + 0.9 * 2.61
    (True, [2.62, 1.8, 2.0]),      # the episode ends after step 2: V(o_3) is not used
])
def test_three_step_example_by_hand(terminal, want_returns):
  x = three_steps(terminal)
  want_returns = np.array(want_returns)
  residual = want_returns - x['values'][:, 0]
  log2 = math.log(2.0)
  # lambda_v sum (R - V)^2 - sum log(1/2) (R - V) - beta sum H, with tau = 1 (A = R - V) and H = log 2.
  want = 0.5 * np.sum(residual ** 2) + log2 * np.sum(residual) - 0.01 * 3 * log2
  total, logs = loss(x, gamma=0.9)
  assert float(total) == pytest.approx(want, rel=1e-12)
  assert float(logs['loss/total']) == pytest.approx(want, rel=1e-12)
  assert float(logs['value/return_mean']) == pytest.approx(want_returns.mean(), rel=1e-12)
  assert float(logs['value/advantage_mean']) == pytest.approx(residual.mean(), rel=1e-12)
  assert float(logs['policy/entropy']) == pytest.approx(log2, rel=1e-12)


def test_gae_tau_one_is_return_minus_value_in_the_policy_gradient():
  """dL/dlogits_t = -A_t (e_{a_t} - pi_t) / B - beta dH/dlogits_t / B with A_t = R_t - V_t when tau = 1; and the
  value gradient is -2 lambda_v (R_t - V_t) / B."""
  x = random_rollout(0)
  T, B, A = x['logits'].shape
  logits, values = tf.Variable(x['logits']), tf.Variable(x['values'])
  with tf.GradientTape() as tape:
    total, _ = actor_critic.actor_critic_loss(logits, values, x['actions'], x['rewards'], x['done'], x['bootstrap'],
                                              gamma=0.9, gae_lambda=1.0, value_weight=0.5, entropy_weight=0.0)
  g_logits, g_values = tape.gradient(total, [logits, values])
  _, big_r, adv = reference(x['logits'], x['values'], x['actions'], x['rewards'], x['done'], x['bootstrap'], 0.9,
                            1.0, 0.5, 0.0)
  np.testing.assert_allclose(adv, big_r - x['values'], rtol=1e-12, atol=1e-12)   # the reference agrees with itself
  pi = softmax(x['logits'])
  want = -(big_r - x['values'])[..., None] * (np.eye(A)[x['actions']] - pi) / B
  np.testing.assert_allclose(g_logits.numpy(), want, rtol=1e-9, atol=1e-12)
  np.testing.assert_allclose(g_values.numpy(), -2 * 0.5 * (big_r - x['values']) / B, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize('tau', [1.0, 0.9])
@pytest.mark.parametrize('reduction', ['sum_time', 'mean'])
def test_matches_the_alg1_loop(tau, reduction):
  x = random_rollout(1)
  want, _, _ = reference(x['logits'], x['values'], x['actions'], x['rewards'], x['done'], x['bootstrap'], 0.95, tau,
                         0.5, 0.01, reduction=reduction)
  total, _ = loss(x, gae_lambda=tau, reduction=reduction)
  assert float(total) == pytest.approx(want, rel=1e-10)


def test_reward_clip():
  x = three_steps(True)
  x['rewards'] = np.array([[5.0], [-3.0], [0.5]])
  _, logs = loss(x, gamma=0.5, reward_clip=1.0)
  # Clipped rewards (1, -1, 0.5): R = (1 - 0.5 + 0.125, -1 + 0.25, 0.5).
  assert float(logs['value/return_mean']) == pytest.approx((0.625 - 0.75 + 0.5) / 3)
  with pytest.raises(ValueError, match='reward clip'):
    loss(x, reward_clip=0.0)


def padded_goal_rollouts(seed, pad_logits=0.0, pad_values=0.0):
  """pi_g-style batch, T = 6, B = 3: agent 0 reaches its goal at step 2 (done) and steps 3-5 are padding; agent 1
  runs all 6 steps; agent 2 is cut (not terminated) after step 3 and step 4 holds V(o_4), step 5 is padding."""
  x = random_rollout(seed, T=6, B=3)
  mask = np.ones((6, 3), bool)
  mask[3:, 0] = False
  mask[4:, 2] = False
  x['done'][:, 0] = [False, False, True, False, False, False]
  x['done'][:, 2] = False
  x['done'][:, 1] = [False, True, False, False, False, False]
  for t, b in zip(*np.nonzero(~mask)):
    if not (b == 2 and t == 4):
      x['logits'][t, b] = pad_logits
      x['values'][t, b] = pad_values
    x['rewards'][t, b] = 123.0
  return x, mask


@pytest.mark.parametrize('reduction', ['sum_time', 'mean'])
def test_masked_padding_after_the_goal_does_not_count(reduction):
  x, mask = padded_goal_rollouts(2)
  want, _, _ = reference(x['logits'], x['values'], x['actions'], x['rewards'], x['done'], x['bootstrap'], 0.95, 0.95,
                         0.5, 0.01, mask=mask, reduction=reduction)
  total, logs = loss(x, gae_lambda=0.95, mask=mask, reduction=reduction)
  assert float(total) == pytest.approx(want, rel=1e-10)
  # The same numbers as the rollouts taken one by one at their own length.
  parts = []
  for b, length, boot in ((0, 3, 0.0), (1, 6, x['bootstrap'][1]), (2, 4, x['values'][4, 2])):
    one = {k: v[:length, b:b + 1] for k, v in x.items() if k != 'bootstrap'}
    one['bootstrap'] = np.array([boot])
    parts.append(float(loss(one, gae_lambda=0.95)[0]))
  if reduction == 'sum_time':
    assert float(total) == pytest.approx(sum(parts) / 3, rel=1e-10)
  # Whatever the padding holds, nothing changes and no gradient reaches it.
  y, _ = padded_goal_rollouts(2, pad_logits=50.0, pad_values=-7.0)
  logits, values = tf.Variable(y['logits']), tf.Variable(y['values'])
  with tf.GradientTape() as tape:
    other, _ = actor_critic.actor_critic_loss(logits, values, y['actions'], y['rewards'], y['done'], y['bootstrap'],
                                              gamma=0.95, gae_lambda=0.95, value_weight=0.5, entropy_weight=0.01,
                                              mask=mask, reduction=reduction)
  assert float(other) == pytest.approx(float(total), rel=1e-12)
  g_logits, g_values = tape.gradient(other, [logits, values])
  assert not g_logits.numpy()[~mask].any() and not g_values.numpy()[~mask].any()
  assert float(logs['reward/clipped_mean']) == pytest.approx(x['rewards'][mask].mean(), rel=1e-12)


def test_mask_and_bootstrap_only_combine():
  x = random_rollout(3, T=5, B=2)
  x['done'][:] = False
  cut = np.zeros((5, 2), bool)
  cut[2, 0] = True
  mask = np.ones((5, 2), bool)
  mask[4, 1] = False
  want, _, _ = reference(x['logits'], x['values'], x['actions'], x['rewards'], x['done'], x['bootstrap'], 0.95, 1.0,
                         0.5, 0.01, mask=mask & ~cut)
  total, _ = loss(x, mask=mask, bootstrap_only=cut)
  assert float(total) == pytest.approx(want, rel=1e-10)


def test_float32_under_tf_function():
  x = random_rollout(4)
  want = float(loss(x)[0])
  y = {k: (v.astype(np.float32) if v.dtype == np.float64 else v) for k, v in x.items()}
  fn = tf.function(lambda *a: actor_critic.actor_critic_loss(*a, gamma=0.95, gae_lambda=1.0, value_weight=0.5,
                                                             entropy_weight=0.01)[0])
  got = fn(y['logits'], y['values'], y['actions'], y['rewards'], y['done'], y['bootstrap'])
  assert float(got) == pytest.approx(want, rel=1e-5)


def test_bad_input_names_the_tensor():
  x = random_rollout(5)
  with pytest.raises(ValueError, match='reduction'):
    loss(x, reduction='sum')
  bad = dict(x, actions=x['actions'][:-1])
  with pytest.raises(ValueError, match='actions'):
    loss(bad)
  with pytest.raises(ValueError, match='mask'):
    loss(x, mask=np.ones((2, 3), bool))
  with pytest.raises(ValueError, match='bootstrap_value'):
    loss(dict(x, bootstrap=np.zeros(4)))
  with pytest.raises(ValueError, match='logits'):
    loss(dict(x, logits=x['logits'][..., 0]))
