"""stochastic_ac/losses.py: the A3C-family, ACER and DDPG objectives against NumPy loops written from the thesis's
Alg. 1-4 and Wang et al. (2016), and the signs of their gradients (what each term pushes, and what it must not
touch)."""

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.core import retrace
from rlcv_tf.stochastic_ac import losses


def softmax(z):
  e = np.exp(z - z.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def a3c_reference(logits, values, actions, rewards, done, bootstrap, gamma, tau, lam_v, beta, clip, kl=None,
                  psi=0.0):
  """Alg. 1 per agent (T:L869-892): R <- r_t + gamma R; A_t <- R - V_t; delta_t <- r_t + gamma V_{t+1} - V_t;
  Ahat <- gamma tau Ahat + delta_t; loss += lam_v A_t^2 - log pi_t(a_t) Ahat - beta H(pi_t) (+ psi KL_t).
  Episode ends reset R, V_{t+1} and Ahat to 0. Mean over agents."""
  T, B = rewards.shape
  r = rewards if clip is None else np.clip(rewards, -clip, clip)
  total = 0.0
  for b in range(B):
    big_r, adv, v_next = bootstrap[b], 0.0, bootstrap[b]
    for t in reversed(range(T)):
      if done[t, b]:
        big_r, adv, v_next = 0.0, 0.0, 0.0
      big_r = r[t, b] + gamma * big_r
      delta = r[t, b] + gamma * v_next - values[t, b]
      adv = gamma * tau * adv + delta
      pi = softmax(logits[t, b])
      entropy = -np.sum(pi * np.log(pi))
      total += lam_v * (big_r - values[t, b]) ** 2 - np.log(pi[actions[t, b]]) * adv - beta * entropy
      if kl is not None:
        total += psi * kl[t, b]
      v_next = values[t, b]
  return total / B


def a3c_targets(rewards, done, values, bootstrap, gamma, tau):
  """The R_t and Ahat_t of `a3c_reference` (rewards already clipped)."""
  T, B = rewards.shape
  big_rs, advs = np.zeros((T, B)), np.zeros((T, B))
  for b in range(B):
    big_r, adv, v_next = bootstrap[b], 0.0, bootstrap[b]
    for t in reversed(range(T)):
      if done[t, b]:
        big_r, adv, v_next = 0.0, 0.0, 0.0
      big_r = rewards[t, b] + gamma * big_r
      adv = gamma * tau * adv + rewards[t, b] + gamma * v_next - values[t, b]
      big_rs[t, b], advs[t, b] = big_r, adv
      v_next = values[t, b]
  return big_rs, advs


def random_rollout(seed, T=7, B=4, A=5):
  rng = np.random.default_rng(seed)
  return dict(logits=rng.normal(size=(T, B, A)), values=rng.normal(size=(T, B)),
              actions=rng.integers(0, A, size=(T, B)), rewards=rng.normal(size=(T, B)) * 2.0,
              done=rng.random((T, B)) < 0.2, bootstrap=rng.normal(size=B), kl=rng.random((T, B)))


# ------------------------------------------------------------------------------------------------ A3C family

@pytest.mark.parametrize('gamma,tau,lam_v,clip', [(0.95, 1.0, 5.0, 1.0), (0.95, 0.92, 0.5, None)])
def test_a3c_loss_matches_alg1_loop(gamma, tau, lam_v, clip):
  x = random_rollout(0)
  assert np.abs(x['rewards']).max() > 1  # clipping matters
  want = a3c_reference(x['logits'], x['values'], x['actions'], x['rewards'], x['done'], x['bootstrap'], gamma, tau,
                       lam_v, 0.01, clip, kl=x['kl'], psi=1e-4)
  total, logs = losses.a3c_loss(x['logits'], x['values'], x['actions'], x['rewards'], x['done'], x['bootstrap'],
                                gamma=gamma, gae_lambda=tau, value_weight=lam_v, reward_clip=clip, kl=x['kl'])
  assert float(total) == pytest.approx(want, rel=1e-10)
  assert float(logs['loss/total']) == pytest.approx(want, rel=1e-10)
  assert float(logs['loss/kl']) == pytest.approx(1e-4 * x['kl'].sum() / 4, rel=1e-10)


def test_a3c_defaults_are_the_thesis_values():
  assert (losses.A3C_GAMMA, losses.VALUE_WEIGHT, losses.VALUE_WEIGHT_FREEWAY, losses.ENTROPY_WEIGHT,
          losses.REWARD_CLIP, losses.GAE_LAMBDA, losses.GAE_LAMBDA_FREEWAY, losses.HPA3C_KL_WEIGHT) == (
              0.95, 5.0, 0.5, 0.01, 1.0, 1.0, 0.92, 1e-4)
  x = random_rollout(1)
  want = a3c_reference(x['logits'], x['values'], x['actions'], x['rewards'], x['done'], x['bootstrap'], 0.95, 1.0,
                       5.0, 0.01, 1.0)
  total, _ = losses.a3c_loss(x['logits'], x['values'], x['actions'], x['rewards'], x['done'], x['bootstrap'])
  assert float(total) == pytest.approx(want, rel=1e-10)


def test_a3c_gradients_value_policy_and_entropy_terms():
  """dL/dV_t = -2 lambda_v (R_t - V_t) / B (the policy term's advantage is a constant);
  dL/dlogits_t = -(Ahat_t (e_{a_t} - pi_t) + beta dH/dlogits_t) / B, only from step t's own terms;
  nothing reaches the bootstrap value."""
  x = random_rollout(2)
  T, B, A = x['logits'].shape
  logits, values, boot = (tf.Variable(x['logits']), tf.Variable(x['values']), tf.Variable(x['bootstrap']))
  with tf.GradientTape() as tape:
    total, _ = losses.a3c_loss(logits, values, x['actions'], x['rewards'], x['done'], boot, gae_lambda=0.92)
  g_logits, g_values, g_boot = tape.gradient(total, [logits, values, boot])
  big_r, adv = a3c_targets(np.clip(x['rewards'], -1, 1), x['done'], x['values'], x['bootstrap'], 0.95, 0.92)
  np.testing.assert_allclose(g_values.numpy(), -2 * 5.0 * (big_r - x['values']) / B, rtol=1e-10)
  pi = softmax(x['logits'])
  entropy = -np.sum(pi * np.log(pi), -1, keepdims=True)
  dh = -pi * (np.log(pi) + entropy)
  onehot = np.eye(A)[x['actions']]
  want = -(adv[..., None] * (onehot - pi) + 0.01 * dh) / B
  np.testing.assert_allclose(g_logits.numpy(), want, rtol=1e-9, atol=1e-12)
  assert g_boot is None or not np.any(g_boot.numpy())


def one_state_step(advantage_reward, entropy_weight, lr=0.5):
  """One SGD step on a 1-state, 3-action policy (value 0, a one-step episode): returns pi before and after."""
  logits = tf.Variable([[[0.3, -0.2, 0.1]]], dtype=tf.float64)
  before = tf.nn.softmax(logits)[0, 0].numpy()
  with tf.GradientTape() as tape:
    total, _ = losses.a3c_loss(logits, tf.zeros((1, 1), tf.float64), [[1]], [[advantage_reward]], [[True]],
                               tf.zeros(1, tf.float64), value_weight=0.0, entropy_weight=entropy_weight)
  logits.assign_sub(lr * tape.gradient(total, logits))
  return before, tf.nn.softmax(logits)[0, 0].numpy()


def test_a3c_policy_step_follows_the_advantage_sign_and_entropy_moves_towards_uniform():
  before, after = one_state_step(+1.0, 0.0)
  assert after[1] > before[1]
  before, after = one_state_step(-1.0, 0.0)
  assert after[1] < before[1]
  before, after = one_state_step(0.0, 1.0)  # zero advantage: only the entropy bonus acts

  def entropy(p):
    return -np.sum(p * np.log(p))

  assert entropy(after) > entropy(before)
  assert np.abs(after - 1 / 3).max() < np.abs(before - 1 / 3).max()


def test_a3c_reward_clipping_and_freeway_unclipped():
  rewards = np.array([[5.0], [-3.0], [0.5]])
  done = np.array([[False], [False], [True]])
  kwargs = dict(gamma=0.5, value_weight=1.0, entropy_weight=0.0)
  z = np.zeros((3, 1, 2))
  v = np.zeros((3, 1))
  _, clipped = losses.a3c_loss(z, v, np.zeros((3, 1), int), rewards, done, np.zeros(1), **kwargs)
  _, raw = losses.a3c_loss(z, v, np.zeros((3, 1), int), rewards, done, np.zeros(1), reward_clip=None, **kwargs)
  # R = (1 - 0.5 + 0.25 * 0.5, -1 + 0.25, 0.5) clipped; (5 - 1.5 + 0.125, -3 + 0.25, 0.5) raw.
  assert float(clipped['value/return_mean']) == pytest.approx((0.625 - 0.75 + 0.5) / 3)
  assert float(raw['value/return_mean']) == pytest.approx((3.625 - 2.75 + 0.5) / 3)
  with pytest.raises(ValueError, match='reward clip'):
    losses.clip_rewards(rewards, 0.0)


def test_a3c_bootstrap_only_step_is_left_out_and_bootstraps_the_step_before():
  x = random_rollout(3, T=5, B=2)
  cut = np.zeros((5, 2), bool)
  cut[2, 0] = True
  rewards = np.where(cut, 0.0, x['rewards'])
  done = x['done'] & ~cut
  done[1, 0] = False
  logits, values = tf.Variable(x['logits']), tf.Variable(x['values'])
  with tf.GradientTape() as tape:
    total, _ = losses.a3c_loss(logits, values, x['actions'], rewards, done | cut, x['bootstrap'],
                               bootstrap_only=cut, value_weight=1.0)
  g_logits, g_values = tape.gradient(total, [logits, values])
  assert not g_logits.numpy()[2, 0].any() and g_values.numpy()[2, 0] == 0
  # Step 1 of agent 0: R_1 = r_1 + gamma V_2.
  r1 = np.clip(rewards[1, 0], -1, 1) + 0.95 * x['values'][2, 0]
  assert g_values.numpy()[1, 0] == pytest.approx(-2 * (r1 - x['values'][1, 0]) / 2)


# ------------------------------------------------------------------------------------------------ ACER

def acer_segment(seed, T=6, B=3, A=5, off_policy=True):
  rng = np.random.default_rng(seed)
  logits = rng.normal(size=(T, B, A)) * 1.5
  f = softmax(logits)
  mu = softmax(rng.normal(size=(T, B, A)) * 1.5) if off_policy else f
  actions = np.array([[rng.choice(A, p=mu[t, b]) for b in range(B)] for t in range(T)])
  return dict(logits=logits, f=f, mu=mu, actions=actions, q=rng.normal(size=(T, B, A)),
              rewards=rng.normal(size=(T, B)) * 0.5, done=rng.random((T, B)) < 0.2, bootstrap=rng.normal(size=B),
              average_logits=logits + rng.normal(size=(T, B, A)) * 0.5)


def acer_numpy_targets(x, truncated_rho=True):
  """V, rho(a_t) and Q^ret with NumPy inputs (Q^ret via the separately tested core/retrace.py)."""
  v = (x['f'] * x['q']).sum(-1)
  rho = np.take_along_axis(x['f'] / x['mu'], x['actions'][..., None], -1)[..., 0]
  q_a = np.take_along_axis(x['q'], x['actions'][..., None], -1)[..., 0]
  discounts = np.where(x['done'], 0.0, 0.95)
  q_ret = retrace.retrace_targets(np.clip(x['rewards'], -1, 1), discounts, q_a, v, x['bootstrap'], rho,
                                  c_bar=1.0 if truncated_rho else None).numpy()
  return v, rho, q_a, q_ret


def acer_logit_gradient(x, c, q_ret, v, delta=None):
  """-(1/B) J^T z with J = diag(f) - f f^T, z = g_hat (projected when delta is set), g_hat written out per step
  with explicit sums over actions."""
  T, B, A = x['f'].shape
  out = np.zeros((T, B, A))
  for t in range(T):
    for b in range(B):
      f, mu, a_t, q = x['f'][t, b], x['mu'][t, b], x['actions'][t, b], x['q'][t, b]
      g = np.zeros(A)
      for a in range(A):
        rho_a = f[a] / mu[a]
        if a == a_t:
          g[a] += min(c, rho_a) * (q_ret[t, b] - v[t, b]) / f[a]
        g[a] += max(0.0, 1.0 - c / rho_a) * (q[a] - v[t, b])
      if delta is not None:
        k = -softmax(x['average_logits'][t, b]) / f
        g = g - max(0.0, (k @ g - delta) / (k @ k)) * k
      jac = np.diag(f) - np.outer(f, f)
      out[t, b] = -(jac.T @ g) / B
  return out


def test_acer_policy_gradient_matches_truncation_and_bias_correction_by_hand():
  x = acer_segment(0)
  v, rho, _, q_ret = acer_numpy_targets(x)
  assert (rho > 1).any() and ((x['f'] / x['mu']) > 10).any()  # truncation and correction both exercised
  logits = tf.Variable(x['logits'])
  with tf.GradientTape() as tape:
    total, logs = losses.acer_loss(logits, x['q'], x['actions'], x['rewards'], x['done'], x['mu'], x['bootstrap'],
                                   x['average_logits'], trust_region_delta=None, entropy_weight=0.0,
                                   value_weight=0.0)
  np.testing.assert_allclose(tape.gradient(total, logits).numpy(), acer_logit_gradient(x, 10.0, q_ret, v),
                             rtol=1e-9, atol=1e-12)
  assert float(logs['acer/bias_correction_norm']) > 0


def test_acer_trust_region_gradient_matches_projection_by_hand():
  x = acer_segment(1)
  v, _, _, q_ret = acer_numpy_targets(x)
  logits = tf.Variable(x['logits'])
  with tf.GradientTape() as tape:
    total, logs = losses.acer_loss(logits, x['q'], x['actions'], x['rewards'], x['done'], x['mu'], x['bootstrap'],
                                   x['average_logits'], entropy_weight=0.0, value_weight=0.0)
  np.testing.assert_allclose(tape.gradient(total, logits).numpy(), acer_logit_gradient(x, 10.0, q_ret, v, 1.0),
                             rtol=1e-9, atol=1e-12)
  assert 0 < float(logs['acer/trust_region_active_fraction']) < 1


def test_acer_value_gradient_reaches_only_the_taken_q():
  """dL/dQ(o_t, a) = -lambda_v (Q^ret_t - Q_t(a_t)) / B for a = a_t and 0 otherwise, with every term on: the policy
  gradient's Q, V and Q^ret are constants."""
  x = acer_segment(2)
  _, _, q_a, q_ret = acer_numpy_targets(x)
  q = tf.Variable(x['q'])
  with tf.GradientTape() as tape:
    total, _ = losses.acer_loss(x['logits'], q, x['actions'], x['rewards'], x['done'], x['mu'], x['bootstrap'],
                                x['average_logits'])
  B, A = x['q'].shape[1:]
  want = (-5.0 * (q_ret - q_a) / B)[..., None] * np.eye(A)[x['actions']]
  np.testing.assert_allclose(tape.gradient(total, q).numpy(), want, rtol=1e-9, atol=1e-12)


def test_acer_on_policy_is_the_advantage_gradient_with_no_correction():
  x = acer_segment(3, off_policy=False)
  v, rho, _, q_ret = acer_numpy_targets(x)
  np.testing.assert_allclose(rho, 1.0)
  logits = tf.Variable(x['logits'])
  with tf.GradientTape() as tape:
    total, logs = losses.acer_loss(logits, x['q'], x['actions'], x['rewards'], x['done'], x['f'], x['bootstrap'],
                                   x['average_logits'], trust_region_delta=None, entropy_weight=0.0,
                                   value_weight=0.0)
  B, A = x['f'].shape[1:]
  want = -((q_ret - v)[..., None] * (np.eye(A)[x['actions']] - x['f'])) / B
  np.testing.assert_allclose(tape.gradient(total, logits).numpy(), want, rtol=1e-9, atol=1e-12)
  assert float(logs['acer/bias_correction_norm']) == 0.0


def test_acer_printed_algorithm_has_untruncated_retrace_and_no_importance_weight():
  x = acer_segment(8)
  v, _, _, q_ret = acer_numpy_targets(x, truncated_rho=False)
  assert np.abs(q_ret - acer_numpy_targets(x)[3]).max() > 0.1  # some rho > 1 inside the trace: the two differ
  logits = tf.Variable(x['logits'])
  with tf.GradientTape() as tape:
    total, logs = losses.acer_loss(logits, x['q'], x['actions'], x['rewards'], x['done'], x['mu'], x['bootstrap'],
                                   x['average_logits'], trust_region_delta=None, entropy_weight=0.0,
                                   value_weight=0.0, printed_algorithm=True)
  B, A = x['f'].shape[1:]
  want = -((q_ret - v)[..., None] * (np.eye(A)[x['actions']] - x['f'])) / B
  np.testing.assert_allclose(tape.gradient(total, logits).numpy(), want, rtol=1e-9, atol=1e-12)
  assert float(logs['acer/q_retrace_mean']) == pytest.approx(q_ret.mean(), rel=1e-9)


def test_losses_in_float32_under_tf_function_match_float64():
  x = acer_segment(6)
  f32 = {k: (v.astype(np.float32) if v.dtype == np.float64 else v) for k, v in x.items()}
  acer = tf.function(lambda *a: losses.acer_loss(*a)[0])
  args = ('logits', 'q', 'actions', 'rewards', 'done', 'mu', 'bootstrap', 'average_logits')
  got = float(acer(*[f32[k] for k in args]))
  assert got == pytest.approx(float(losses.acer_loss(*[x[k] for k in args])[0]), rel=1e-4, abs=1e-4)
  y = random_rollout(7)
  a3c = tf.function(lambda *a: losses.a3c_loss(*a, kl=y['kl'].astype(np.float32))[0])
  args = ('logits', 'values', 'actions', 'rewards', 'done', 'bootstrap')
  got = float(a3c(*[y[k].astype(np.float32) if y[k].dtype == np.float64 else y[k] for k in args]))
  assert got == pytest.approx(float(losses.a3c_loss(*[y[k] for k in args], kl=y['kl'])[0]), rel=1e-4, abs=1e-4)


def test_acer_defaults_are_the_thesis_values():
  assert (losses.ACER_TRUNCATION, losses.ACER_TRUST_REGION_DELTA, losses.ACER_RETRACE_LAMBDA) == (10.0, 1.0, 1.0)
  assert (losses.DDPG_GAMMA, losses.DDPG_TAU) == (0.99, 0.001)


# ------------------------------------------------------------------------------------------------ DDPG

def test_ddpg_critic_target_uses_one_minus_done_and_stops_its_gradient():
  rng = np.random.default_rng(5)
  q, r, nq = rng.normal(size=8), rng.normal(size=8), rng.normal(size=8)
  done = np.array([0, 1, 0, 0, 1, 0, 0, 0], bool)
  y = r + 0.99 * (1 - done) * nq
  qv, nqv = tf.Variable(q), tf.Variable(nq[:, None])
  with tf.GradientTape() as tape:
    loss, logs = losses.ddpg_critic_loss(qv[:, None], r, done, nqv)
  g_q, g_next = tape.gradient(loss, [qv, nqv])
  assert float(loss) == pytest.approx(np.mean((y - q) ** 2), rel=1e-12)
  np.testing.assert_allclose(g_q.numpy(), -2 * (y - q) / 8, rtol=1e-12)
  assert g_next is None
  assert float(logs['critic/target_mean']) == pytest.approx(y.mean())
  with pytest.raises(ValueError, match='rewards'):
    losses.ddpg_critic_loss(q, np.zeros((8, 2)), done, nq)


def test_ddpg_actor_step_climbs_the_critic():
  """Critic Q(a) = -(a - 0.7)^2: one gradient step on -mean Q moves the actor's actions towards 0.7."""
  actions = tf.Variable([[-0.5], [0.2], [1.0]], dtype=tf.float64)
  with tf.GradientTape() as tape:
    loss = losses.ddpg_actor_loss(-tf.square(actions - 0.7))
  before = np.abs(actions.numpy() - 0.7)
  actions.assign_sub(0.1 * tape.gradient(loss, actions))
  assert np.all(np.abs(actions.numpy() - 0.7) < before)

