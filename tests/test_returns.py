"""core/returns.py against slow references: a per-agent Python loop written like the thesis's Alg. 1 (T:L869-892),
explicit n-step sums, a hand-computed example, and the Jacobians of the targets (which rewards each one sees)."""

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.core import returns


def alg1_reference(rewards, done, values, bootstrap, gamma, tau, bootstrap_only=None):
  """Alg. 1's backward loop, one agent at a time: R <- r_t + gamma R; delta_t <- r_t + gamma V_{t+1} - V_t;
  A_t <- gamma tau A + delta_t, with R = 0 (and V_{t+1} = 0, A = 0) where the episode ended after step t.
  A bootstrap-only step restarts the loop from its own value: R = V_t, A = 0."""
  T, B = rewards.shape
  out_r = np.zeros((T, B))
  out_a = np.zeros((T, B))
  for b in range(B):
    big_r = bootstrap[b]
    adv = 0.0
    v_next = bootstrap[b]
    for t in reversed(range(T)):
      if bootstrap_only is not None and bootstrap_only[t, b]:
        big_r, adv, v_next = values[t, b], 0.0, values[t, b]
        out_r[t, b], out_a[t, b] = big_r, adv
        continue
      if done[t, b]:
        big_r, adv, v_next = 0.0, 0.0, 0.0
      big_r = rewards[t, b] + gamma * big_r
      delta = rewards[t, b] + gamma * v_next - values[t, b]
      adv = gamma * tau * adv + delta
      out_r[t, b], out_a[t, b] = big_r, adv
      v_next = values[t, b]
  return out_r, out_a


def n_step_reference(rewards, discounts, values, bootstrap, n, bootstrap_only=None):
  """sum_{k<m} (prod_{j<k} d_{t+j}) r_{t+k} + (prod_{j<m} d_{t+j}) V_{t+m}, one element at a time."""
  T, B = rewards.shape
  cut = np.zeros((T, B), bool) if bootstrap_only is None else bootstrap_only
  out = np.zeros((T, B))
  for b in range(B):
    for t in range(T):
      total, disc, k = 0.0, 1.0, 0
      while True:
        s = t + k
        if s == T:
          total += disc * bootstrap[b]
          break
        if cut[s, b] or k == n:
          total += disc * values[s, b]
          break
        total += disc * rewards[s, b]
        disc *= discounts[s, b]
        k += 1
      out[t, b] = total
  return out


def random_rollout(seed, T=9, B=4, p_done=0.25):
  rng = np.random.default_rng(seed)
  return dict(rewards=rng.normal(size=(T, B)), done=rng.random((T, B)) < p_done, values=rng.normal(size=(T, B)),
              bootstrap=rng.normal(size=B))


def test_hand_computed_three_steps_terminal_in_the_middle():
  # T = 3, gamma = 0.95, the episode ends after step 1, the rollout bootstraps from V(o_3) = 2 after step 2.
  r = np.array([[1.0], [2.0], [3.0]])
  done = np.array([[False], [True], [False]])
  v = np.array([[0.5], [1.0], [1.5]])
  boot = np.array([2.0])
  d = returns.discounts_from_done(done, 0.95, tf.float64)
  np.testing.assert_allclose(returns.discounted_returns(r, d, v, boot).numpy()[:, 0], [2.9, 2.0, 4.9])
  np.testing.assert_allclose(returns.td_errors(r, d, v, boot).numpy()[:, 0], [1.45, 1.0, 3.4])
  np.testing.assert_allclose(returns.generalized_advantage_estimation(r, d, v, boot, 0.5).advantages.numpy()[:, 0],
                             [1.45 + 0.95 * 0.5 * 1.0, 1.0, 3.4])
  np.testing.assert_allclose(returns.n_step_returns(r, d, v, boot, 1).numpy()[:, 0], [1 + 0.95 * 1.0, 2.0, 4.9])


@pytest.mark.parametrize('gamma,tau', [(0.95, 1.0), (0.95, 0.92), (0.99, 0.0), (0.9, 0.5)])
def test_returns_and_gae_match_alg1_loop(gamma, tau):
  x = random_rollout(0)
  ref_r, ref_a = alg1_reference(x['rewards'], x['done'], x['values'], x['bootstrap'], gamma, tau)
  d = returns.discounts_from_done(x['done'], gamma, tf.float64)
  got_r = returns.discounted_returns(x['rewards'], d, x['values'], x['bootstrap'])
  gae = returns.generalized_advantage_estimation(x['rewards'], d, x['values'], x['bootstrap'], tau)
  np.testing.assert_allclose(got_r.numpy(), ref_r, rtol=1e-12, atol=1e-12)
  np.testing.assert_allclose(gae.advantages.numpy(), ref_a, rtol=1e-12, atol=1e-12)
  np.testing.assert_allclose(gae.lambda_returns.numpy(), ref_a + x['values'], rtol=1e-12, atol=1e-12)


def test_gae_with_tau_one_is_return_minus_value_and_tau_zero_is_td_error():
  x = random_rollout(1)
  d = returns.discounts_from_done(x['done'], 0.95, tf.float64)
  big_r = returns.discounted_returns(x['rewards'], d, x['values'], x['bootstrap']).numpy()
  adv1 = returns.generalized_advantage_estimation(x['rewards'], d, x['values'], x['bootstrap'], 1.0).advantages
  adv0 = returns.generalized_advantage_estimation(x['rewards'], d, x['values'], x['bootstrap'], 0.0).advantages
  np.testing.assert_allclose(adv1.numpy(), big_r - x['values'], atol=1e-12)
  np.testing.assert_allclose(adv0.numpy(), returns.td_errors(x['rewards'], d, x['values'], x['bootstrap']).numpy(),
                             atol=1e-12)


def test_bootstrap_only_steps_match_the_loop():
  x = random_rollout(2, T=10, B=5)
  rng = np.random.default_rng(3)
  cut = rng.random(x['done'].shape) < 0.2
  cut[0, 0] = cut[-1, 1] = cut[4, 2] = True
  rewards = np.where(cut, 0.0, x['rewards'])
  done = x['done'] & ~cut
  ref_r, ref_a = alg1_reference(rewards, done, x['values'], x['bootstrap'], 0.95, 0.92, bootstrap_only=cut)
  d = returns.discounts_from_done(done | cut, 0.95, tf.float64)  # the transition out of a bootstrap-only step: 0
  got_r = returns.discounted_returns(rewards, d, x['values'], x['bootstrap'], bootstrap_only=cut)
  got_a = returns.generalized_advantage_estimation(rewards, d, x['values'], x['bootstrap'], 0.92,
                                                   bootstrap_only=cut).advantages
  np.testing.assert_allclose(got_r.numpy(), ref_r, atol=1e-12)
  np.testing.assert_allclose(got_a.numpy(), ref_a, atol=1e-12)
  # The step before a bootstrap-only one bootstraps from its value.
  np.testing.assert_allclose(got_r.numpy()[3, 2], rewards[3, 2] + 0.95 * x['values'][4, 2])


@pytest.mark.parametrize('n', [1, 2, 3, 5, 20])
def test_n_step_returns_match_explicit_sums(n):
  x = random_rollout(4, T=8, B=3)
  rng = np.random.default_rng(5)
  cut = rng.random(x['done'].shape) < 0.15
  d = np.where(x['done'] | cut, 0.0, 0.97)
  rewards = np.where(cut, 0.0, x['rewards'])
  ref = n_step_reference(rewards, d, x['values'], x['bootstrap'], n, bootstrap_only=cut)
  got = returns.n_step_returns(rewards, d, x['values'], x['bootstrap'], n, bootstrap_only=cut)
  np.testing.assert_allclose(got.numpy(), ref, atol=1e-12)
  if n >= 8:
    np.testing.assert_allclose(got.numpy(), returns.discounted_returns(rewards, d, x['values'], x['bootstrap'],
                                                                       bootstrap_only=cut).numpy(), atol=1e-12)


def test_jacobians_show_each_target_sees_only_later_rewards_of_its_episode():
  """dR_t/dr_s = prod_{k=t}^{s-1} d_k for s >= t (0 for s < t); dA_t/dr_s the same with lambda d_k;
  dR_t/dV(o_T) = prod_{k=t}^{T-1} d_k. Computed by autodiff with the stop-gradient off."""
  x = random_rollout(6, T=7, B=3, p_done=0.3)
  gamma, lam = 0.9, 0.8
  d = np.where(x['done'], 0.0, gamma)
  T, B = d.shape
  rewards = tf.constant(x['rewards'])
  boot = tf.constant(x['bootstrap'])
  with tf.GradientTape(persistent=True) as tape:
    tape.watch([rewards, boot])
    big_r = returns.discounted_returns(rewards, d, x['values'], boot, stop_gradient=False)
    adv = returns.generalized_advantage_estimation(rewards, d, x['values'], boot, lam, stop_gradient=False).advantages
  jac_r = tape.jacobian(big_r, rewards).numpy()   # [T, B, T, B]
  jac_a = tape.jacobian(adv, rewards).numpy()
  jac_boot = tape.jacobian(big_r, boot).numpy()   # [T, B, B]
  for b in range(B):
    for t in range(T):
      for s in range(T):
        want_r = np.prod(d[t:s, b]) if s >= t else 0.0
        want_a = np.prod(lam * d[t:s, b]) if s >= t else 0.0
        assert jac_r[t, b, s, b] == pytest.approx(want_r, abs=1e-12)
        assert jac_a[t, b, s, b] == pytest.approx(want_a, abs=1e-12)
      assert jac_boot[t, b, b] == pytest.approx(np.prod(d[t:, b]), abs=1e-12)
  # No agent's target depends on another agent's rewards.
  for b in range(B):
    for c in range(B):
      if b != c:
        assert not jac_r[:, b, :, c].any() and not jac_a[:, b, :, c].any()
  # By default the targets are constants for autodiff.
  with tf.GradientTape() as tape:
    tape.watch(rewards)
    stopped = returns.discounted_returns(rewards, d, x['values'], boot)
  assert tape.gradient(stopped, rewards) is None


def test_extra_trailing_axes_and_tf_function():
  rng = np.random.default_rng(7)
  T, B, N = 6, 2, 3
  r = rng.normal(size=(T, B, N)).astype(np.float32)
  v = rng.normal(size=(T, B, N)).astype(np.float32)
  boot = rng.normal(size=(B, N)).astype(np.float32)
  done = rng.random((T, B, N)) < 0.3
  d = returns.discounts_from_done(done, 0.95)
  fn = tf.function(lambda *a: returns.generalized_advantage_estimation(*a, 0.92).advantages)
  got = fn(r, d, v, boot).numpy()
  for n in range(N):
    _, ref_a = alg1_reference(r[..., n], done[..., n], v[..., n], boot[:, n], 0.95, 0.92)
    np.testing.assert_allclose(got[..., n], ref_a, rtol=1e-5, atol=1e-5)
  assert got.dtype == np.float32


def test_bad_shapes_name_the_tensor():
  with pytest.raises(ValueError, match='bootstrap_value'):
    returns.discounted_returns(np.zeros((3, 2)), np.zeros((3, 2)), np.zeros((3, 2)), np.zeros((3, 2)))
  with pytest.raises(ValueError, match='rewards'):
    returns.td_errors(np.zeros((3,)), np.zeros((3, 2)), np.zeros((3, 2)), np.zeros(2))
  with pytest.raises(ValueError, match='n must be'):
    returns.n_step_returns(np.zeros((3, 2)), np.zeros((3, 2)), np.zeros((3, 2)), np.zeros(2), 0)
