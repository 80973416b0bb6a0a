"""Seeds 003-004 RL basics, planning and tabular learning (spec Sec. 7.7): hand-computed values of the two-state
MDP, linear solve vs iterative backups, value vs policy iteration on random MDPs, Monte Carlo returns vs V^pi,
the score-function property of log p(tau) by finite differences, epsilon-greedy and its schedule, tabular
Q-learning reaching Q*, and the real gymnasium toy-text tables (FrozenLake-v1, CliffWalking-v1) planned and played."""

import numpy as np
import pytest

from rlcv_tf.envs import toy_text
from rlcv_tf.rl_basics import dqn
from rlcv_tf.rl_basics import exploration
from rlcv_tf.rl_basics import mdp as mdp_lib
from rlcv_tf.rl_basics import tabular


def _random_mdp(seed, s=6, a=3, gamma=0.9):
  rng = np.random.default_rng(seed)
  p = rng.random((a, s, s)) ** 3
  p /= p.sum(-1, keepdims=True)
  return mdp_lib.TabularMDP(p, rng.normal(size=(a, s, s)), gamma)


def test_rows_must_be_distributions_and_gamma_in_range():
  p = np.zeros((2, 2, 2))
  p[:, :, 0] = 1.0
  mdp_lib.TabularMDP(p, np.zeros((2, 2)), 0.9)
  bad = p.copy()
  bad[1, 0, 1] = 1e-3
  with pytest.raises(ValueError, match='probability distributions'):
    mdp_lib.TabularMDP(bad, np.zeros((2, 2)), 0.9)
  with pytest.raises(ValueError, match='gamma'):
    mdp_lib.TabularMDP(p, np.zeros((2, 2)), 1.5)
  with pytest.raises(ValueError, match='R must be'):
    mdp_lib.TabularMDP(p, np.zeros((3, 2)), 0.9)


def test_two_state_policy_evaluation_by_hand():
  mdp = mdp_lib.two_state_mdp(0.9)
  pi = mdp_lib.uniform(mdp)
  v, q = mdp_lib.policy_evaluation(mdp, pi)
  np.testing.assert_allclose(v, [7.25, 7.75], atol=1e-10)
  np.testing.assert_allclose(q, [[6.525, 7.975], [8.975, 6.525]], atol=1e-10)
  v_it, q_it, _ = mdp_lib.iterative_policy_evaluation(mdp, pi)
  np.testing.assert_allclose(v_it, v, atol=1e-8)
  np.testing.assert_allclose(q_it, q, atol=1e-8)


def test_two_state_q_value_iteration_by_hand():
  q, policy, _ = mdp_lib.q_value_iteration(mdp_lib.two_state_mdp(0.9))
  np.testing.assert_allclose(q, [[17.1, 19.0], [20.0, 17.1]], atol=1e-8)
  assert policy.tolist() == [1, 0]                        # move from 0, stay in 1


def test_policy_iteration_equals_value_iteration_on_random_mdps():
  for seed in range(10):
    mdp = _random_mdp(seed)
    q_vi, pol_vi, _ = mdp_lib.q_value_iteration(mdp, tol=1e-12)
    v_pi, q_pi, pol_pi, steps = mdp_lib.policy_iteration(mdp)
    np.testing.assert_allclose(q_pi, q_vi, atol=1e-8)
    np.testing.assert_allclose(v_pi, q_vi.max(1), atol=1e-8)
    assert np.array_equal(pol_pi, pol_vi) and steps >= 1


def test_policy_value_matches_monte_carlo_returns():
  """V^pi of a random stochastic MDP and policy against the mean discounted return of sampled episodes."""
  mdp = _random_mdp(3, s=4, a=2, gamma=0.8)
  rng = np.random.default_rng(0)
  pi = rng.dirichlet(np.ones(2), size=4)
  v, _ = mdp_lib.policy_evaluation(mdp, pi)
  n, horizon = 4000, 60                                   # 0.8^60 ~ 1.5e-6: the tail is negligible
  s = np.zeros(n, np.int64)
  total, discount = np.zeros(n), 1.0
  for _ in range(horizon):
    a = (rng.random(n)[:, None] > np.cumsum(pi[s], axis=1)).sum(1)
    u = rng.random(n)[:, None]
    s2 = (u > np.cumsum(mdp.P[a, s], axis=1)).sum(1)
    total += discount * mdp.R[a, s, s2]
    discount *= mdp.gamma
    s = s2
  assert abs(total.mean() - v[0]) < 4 * total.std() / np.sqrt(n), (total.mean(), v[0])


def test_trajectory_log_prob_gradient_is_the_sum_of_policy_scores():
  """d/dtheta log p(tau) for a tabular softmax policy, by central differences, equals sum_t d log pi(a_t|s_t):
  the dynamics contribute nothing (T-TRAJ-1)."""
  mdp = _random_mdp(5, s=5, a=3)
  rng = np.random.default_rng(1)
  theta = rng.normal(size=(5, 3))
  log_softmax = lambda t: t - np.log(np.exp(t).sum(1, keepdims=True))
  states, actions = [0], []
  for _ in range(8):
    a = int(rng.integers(3))
    actions.append(a)
    states.append(int(rng.choice(5, p=mdp.P[a, states[-1]])))
  actions.append(int(rng.integers(3)))
  numeric = np.zeros_like(theta)
  for idx in np.ndindex(theta.shape):
    e = np.zeros_like(theta)
    e[idx] = 1e-6
    numeric[idx] = (mdp_lib.trajectory_log_prob(mdp, log_softmax(theta + e), states, actions)
                    - mdp_lib.trajectory_log_prob(mdp, log_softmax(theta - e), states, actions)) / 2e-6
  pi = np.exp(log_softmax(theta))
  analytic = np.zeros_like(theta)
  for s, a in zip(states, actions):
    analytic[s] += np.eye(3)[a] - pi[s]
  np.testing.assert_allclose(numeric, analytic, atol=1e-6)
  expected = np.log(mdp.start[0]) + sum(np.log(mdp.P[a, s, s2]) for s, a, s2 in zip(states, actions, states[1:]))
  expected += sum(log_softmax(theta)[s, a] for s, a in zip(states, actions))
  assert mdp_lib.trajectory_log_prob(mdp, log_softmax(theta), states, actions) == pytest.approx(expected)


def test_epsilon_greedy_and_linear_schedule():
  rng = np.random.default_rng(0)
  q = np.array([0.1, 0.5, 0.2, -1.0])
  assert all(exploration.epsilon_greedy(q, 0.0, rng) == 1 for _ in range(200))
  counts = np.bincount(exploration.epsilon_greedy(np.tile(q, (10_000, 1)), 1.0, rng), minlength=4) / 10_000
  np.testing.assert_allclose(counts, 0.25, atol=0.03)
  sched = exploration.LinearSchedule(1.0, 0.1, 1e6)
  assert [sched(0), sched(5e5), sched(1e6), sched(2e6)] == pytest.approx([1.0, 0.55, 0.1, 0.1])


def test_tabular_q_learning_reaches_q_star():
  mdp = mdp_lib.two_state_mdp(0.9)
  q = tabular.q_learning(mdp, steps=20_000, alpha=0.1, epsilon=0.2, seed=0)
  np.testing.assert_allclose(q, [[17.1, 19.0], [20.0, 17.1]], atol=0.05)


def test_frozenlake_tables_planned_and_played():
  """The real FrozenLake-v1 (slippery 4x4): value and policy iteration agree, and the greedy policy's discounted
  return over played episodes (no time limit) matches V*(start) within Monte Carlo error."""
  t = toy_text.tables('frozenlake')
  assert t.P.shape == (4, 16, 16) and t.terminal.sum() == 5 and t.grid[3, 3] == 'G'
  mdp = mdp_lib.TabularMDP(t.P, t.R, 0.95, start=t.start, terminal=t.terminal)
  q, policy, _ = mdp_lib.q_value_iteration(mdp, tol=1e-12)
  v_pi, _, policy_pi, _ = mdp_lib.policy_iteration(mdp)
  np.testing.assert_allclose(v_pi, q.max(1), atol=1e-8)
  returns = toy_text.play('frozenlake', policy, episodes=400, gamma=0.95, seed=0)
  v_start = float(t.start @ q.max(1))
  assert 0.1 < v_start < 0.5
  assert abs(returns.mean() - v_start) < 4 * returns.std() / np.sqrt(len(returns)) + 1e-3, (returns.mean(), v_start)


def test_cliffwalking_goal_is_absorbing_and_the_shortest_path_is_13_steps():
  t = toy_text.tables('cliffwalking')
  assert t.terminal.tolist() == [s == 47 for s in range(48)] and t.grid[3, 5] == 'C'
  mdp = mdp_lib.TabularMDP(t.P, t.R, 1.0, start=t.start, terminal=t.terminal)
  q, policy, _ = mdp_lib.q_value_iteration(mdp)
  assert float(t.start @ q.max(1)) == pytest.approx(-13.0)
  v, _ = mdp_lib.policy_evaluation(mdp, mdp_lib.deterministic(policy, 4))
  assert v[36] == pytest.approx(-13.0)
  assert toy_text.play('cliffwalking', policy, episodes=2, gamma=1.0).tolist() == [-13.0, -13.0]


def test_launcher_writes_the_solution_and_picture_and_refuses_bad_flags(tmp_path):
  import json  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top
  from launcher_test_helpers import one_error_line, run_module  # pylint: disable=g-import-not-at-top
  out = tmp_path / 'two'
  proc = run_module('launchers.mdp', '--env=two_state', '--method=evaluate', '--gamma=0.9', f'--output_dir={out}')
  assert proc.returncode == 0, proc.stderr[-2000:]
  sol = json.load(open(out / 'solution.json'))
  np.testing.assert_allclose(sol['V'], [7.25, 7.75], atol=1e-9)
  out = tmp_path / 'lake'
  proc = run_module('launchers.mdp', '--episodes=50', f'--output_dir={out}')
  assert proc.returncode == 0 and os.path.exists(out / 'values.png'), proc.stderr[-2000:]
  sol = json.load(open(out / 'solution.json'))
  assert sol['played']['episodes'] == 50 and len(sol['policy']) == 16
  for args, needle in [(('--gamma=1.5',), '--gamma'), (('--env=moon',), '--env'), (('--method=guess',), '--method'),
                       (('--env=two_state', '--gamma=1'), 'infinite')]:
    proc = run_module('launchers.mdp', *args, f'--output_dir={tmp_path / "x"}')
    assert proc.returncode == 2 and needle in one_error_line(proc), (args, proc.stderr[-500:])
  assert not os.path.exists(tmp_path / 'x')


@pytest.mark.slow
def test_online_neural_q_learning_reaches_q_star():
  """T-QL-2: the slides' online neural Q-learning (one-hot state -> Dense(2), SGD, no replay, the target held
  fixed) on the two-state MDP reaches Q* within 0.5; at a learning rate of 1e-7 Q stays near 0 (the check can
  fail)."""
  mdp = mdp_lib.two_state_mdp(0.9)
  q = dqn.online_q_learning(mdp, steps=3_000, learning_rate=0.1, epsilon=0.2, seed=0)
  np.testing.assert_allclose(q, [[17.1, 19.0], [20.0, 17.1]], atol=0.5)
  frozen = dqn.online_q_learning(mdp, steps=300, learning_rate=1e-7, epsilon=0.2, seed=0)
  assert np.abs(frozen).max() < 0.1
