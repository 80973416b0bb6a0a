"""Finite MDPs and exact planning (seed 004 S4:L513-598, seed 003 S3:L552-574; spec seeds003_004 Sec. 4.1-4.2).

One convention for the package (spec Sec. 4.1; the seeds index rewards differently, erratum 5): a transition is
(s_t, a_t, r_t, s_{t+1}, done_t), r_t the reward that follows a_t, and the return G_t = sum_k gamma^k r_{t+k}.
gamma < 1 unless the horizon is finite.

`TabularMDP(P [A, S, S], R, gamma)`: P[a, s, s'] = P[S_{t+1} = s' | S_t = s, A_t = a] with stochastic rows; R either
[S, A] (expected reward of (s, a)) or [A, S, S] (the reward of s -a-> s', as the slides write R^a_{ss'}).
Policies are [S, A] row-stochastic arrays (`deterministic(actions, A)` makes one from an action per state).

  policy_evaluation(mdp, pi)           V = (I - gamma P_pi)^-1 R_pi by a linear solve, Q = R + gamma P V
  iterative_policy_evaluation(...)     the Bellman expectation backup repeated to a tolerance
  q_value_iteration(mdp)               Q_{k+1}(s, a) = sum_s' P^a_ss' [R^a_ss' + gamma max_a' Q_k(s', a')]
                                       (the slide's optimality backup with its stray pi dropped, erratum 4)
  policy_iteration(mdp)                exact evaluation + greedy improvement until the policy is stable
  trajectory_log_prob(...)             log p(tau) = log p(s_0) + sum_t [log pi(a_t|s_t) + log P(s_{t+1}|s_t, a_t)]

NumPy only (float64); the tests compare them with each other, with hand-computed values and with Monte Carlo.
"""

import dataclasses
from typing import Optional, Tuple

import numpy as np


@dataclasses.dataclass
class TabularMDP:
  """<S, A, P, R, gamma> with P [A, S, S] and R [S, A] or [A, S, S] (module docstring)."""
  P: np.ndarray
  R: np.ndarray
  gamma: float
  start: Optional[np.ndarray] = None          # [S] initial distribution (uniform if None)
  terminal: Optional[np.ndarray] = None       # [S] bool: absorbing end states (for pictures and reports)

  def __post_init__(self):
    self.P = np.asarray(self.P, np.float64)
    self.R = np.asarray(self.R, np.float64)
    if self.P.ndim != 3 or self.P.shape[1] != self.P.shape[2]:
      raise ValueError(f'P must be [A, S, S], got shape {self.P.shape}')
    a, s, _ = self.P.shape
    if np.any(self.P < -1e-12) or not np.allclose(self.P.sum(-1), 1.0, atol=1e-6):
      bad = np.argwhere(~np.isclose(self.P.sum(-1), 1.0, atol=1e-6))
      raise ValueError(f'P\'s rows must be probability distributions; (action, state) {bad[:3].tolist()} sum to '
                       f'{self.P.sum(-1)[tuple(bad[0])] if len(bad) else "a negative entry"}')
    if self.R.shape not in ((s, a), (a, s, s)):
      raise ValueError(f'R must be [S, A] = [{s}, {a}] or [A, S, S] = [{a}, {s}, {s}], got {self.R.shape}')
    if not 0.0 <= float(self.gamma) <= 1.0:
      raise ValueError(f'gamma must lie in [0, 1], got {self.gamma}')
    self.gamma = float(self.gamma)
    self.start = np.full(s, 1.0 / s) if self.start is None else np.asarray(self.start, np.float64)
    self.terminal = np.zeros(s, bool) if self.terminal is None else np.asarray(self.terminal, bool)

  @property
  def num_states(self) -> int:
    return int(self.P.shape[1])

  @property
  def num_actions(self) -> int:
    return int(self.P.shape[0])

  @property
  def expected_reward(self) -> np.ndarray:
    """R(s, a) = sum_s' P(s'|s, a) R(s, a, s'), [S, A]."""
    if self.R.ndim == 2:
      return self.R
    return np.einsum('ast,ast->sa', self.P, self.R)


def two_state_mdp(gamma: float = 0.9) -> TabularMDP:
  """The spec's worked example (Sec. 7.7): states {0, 1}, actions {0: stay, 1: move}; from 0 stay -> 0 (r 0), move
  -> 1 (r 1); from 1 stay -> 1 (r 2), move -> 0 (r 0)."""
  P = np.zeros((2, 2, 2))
  P[0, 0, 0] = P[0, 1, 1] = 1.0             # stay
  P[1, 0, 1] = P[1, 1, 0] = 1.0             # move
  R = np.array([[0.0, 1.0], [2.0, 0.0]])    # [S, A]
  return TabularMDP(P, R, gamma, start=np.array([1.0, 0.0]))


def deterministic(actions, num_actions: int) -> np.ndarray:
  """A [S, A] one-hot policy from one action per state."""
  actions = np.asarray(actions, np.int64)
  return np.eye(num_actions)[actions]


def uniform(mdp: TabularMDP) -> np.ndarray:
  return np.full((mdp.num_states, mdp.num_actions), 1.0 / mdp.num_actions)


def _check_policy(mdp: TabularMDP, pi) -> np.ndarray:
  pi = np.asarray(pi, np.float64)
  if pi.shape != (mdp.num_states, mdp.num_actions) or not np.allclose(pi.sum(-1), 1.0, atol=1e-6):
    raise ValueError(f'a policy is a row-stochastic [S, A] = [{mdp.num_states}, {mdp.num_actions}] array, got '
                     f'shape {pi.shape}')
  return pi


def q_from_v(mdp: TabularMDP, v: np.ndarray) -> np.ndarray:
  """Q(s, a) = R(s, a) + gamma sum_s' P(s'|s, a) V(s'), [S, A]."""
  return mdp.expected_reward + mdp.gamma * np.einsum('ast,t->sa', mdp.P, v)


def policy_evaluation(mdp: TabularMDP, pi) -> Tuple[np.ndarray, np.ndarray]:
  """(V^pi [S], Q^pi [S, A]) exactly: V = (I - gamma P_pi)^-1 R_pi. Needs gamma < 1, or a policy that reaches an
  absorbing zero-reward state with probability 1 (else the system is singular and LinAlgError says so)."""
  pi = _check_policy(mdp, pi)
  p_pi = np.einsum('sa,ast->st', pi, mdp.P)
  r_pi = np.einsum('sa,sa->s', pi, mdp.expected_reward)
  a = np.eye(mdp.num_states) - mdp.gamma * p_pi
  if mdp.gamma == 1.0:
    # Absorbing zero-reward states have V = 0; pin them so the undiscounted system has a unique solution.
    pinned = mdp.terminal
    a[pinned] = 0.0
    a[pinned, pinned] = 1.0
    r_pi = np.where(pinned, 0.0, r_pi)
  v = np.linalg.solve(a, r_pi)
  return v, q_from_v(mdp, v)


def iterative_policy_evaluation(mdp: TabularMDP, pi, tol: float = 1e-12, max_iterations: int = 100_000):
  """The Bellman expectation backup V <- R_pi + gamma P_pi V from V = 0 until the largest change is below `tol`;
  returns (V, Q, iterations)."""
  pi = _check_policy(mdp, pi)
  p_pi = np.einsum('sa,ast->st', pi, mdp.P)
  r_pi = np.einsum('sa,sa->s', pi, mdp.expected_reward)
  v = np.zeros(mdp.num_states)
  for i in range(1, max_iterations + 1):
    new = r_pi + mdp.gamma * p_pi @ v
    delta = float(np.max(np.abs(new - v)))
    v = new
    if delta < tol:
      return v, q_from_v(mdp, v), i
  raise RuntimeError(f'policy evaluation did not converge to {tol} in {max_iterations} backups')


def greedy(q: np.ndarray) -> np.ndarray:
  """argmax_a Q(s, a) per state (the lowest action index on ties)."""
  return np.argmax(q, axis=-1)


def q_value_iteration(mdp: TabularMDP, tol: float = 1e-10, max_iterations: int = 100_000):
  """(Q* [S, A], greedy policy [S], iterations) by the optimality backup from Q = 0 until the largest change is
  below `tol`."""
  q = np.zeros((mdp.num_states, mdp.num_actions))
  r = mdp.expected_reward
  for i in range(1, max_iterations + 1):
    new = r + mdp.gamma * np.einsum('ast,t->sa', mdp.P, q.max(axis=1))
    delta = float(np.max(np.abs(new - q)))
    q = new
    if delta < tol:
      return q, greedy(q), i
  raise RuntimeError(f'Q-value iteration did not converge to {tol} in {max_iterations} backups')


def policy_iteration(mdp: TabularMDP, max_iterations: int = 1_000):
  """(V*, Q*, policy [S], improvement steps): exact evaluation, then the greedy policy, until it no longer changes.
  Starts from action 0 everywhere. Ties keep the current action, so it stops rather than cycling between equals."""
  actions = np.zeros(mdp.num_states, np.int64)
  for i in range(1, max_iterations + 1):
    v, q = policy_evaluation(mdp, deterministic(actions, mdp.num_actions))
    best = q.max(axis=1)
    keep = q[np.arange(mdp.num_states), actions] >= best - 1e-12
    new = np.where(keep, actions, greedy(q))
    if np.array_equal(new, actions):
      return v, q, actions, i
    actions = new
  raise RuntimeError(f'policy iteration did not stabilise in {max_iterations} steps')


def trajectory_log_prob(mdp: TabularMDP, log_pi, states, actions) -> float:
  """log p(tau) for tau = (s_0, a_0, ..., s_T, a_T) (S4:L575-586): log p(s_0) + sum_t log pi(a_t|s_t) +
  sum_t log P(s_{t+1}|s_t, a_t), `log_pi` [S, A] the policy's log-probabilities. Only the policy terms depend on the
  policy's parameters: the dynamics drop out of its gradient (the score-function trick)."""
  states = np.asarray(states, np.int64)
  actions = np.asarray(actions, np.int64)
  if len(states) != len(actions):
    raise ValueError(f'a trajectory has one action per state: {len(states)} states, {len(actions)} actions')
  total = np.log(mdp.start[states[0]])
  total = total + np.sum(np.log(mdp.P[actions[:-1], states[:-1], states[1:]]))
  return float(total + np.sum(np.asarray(log_pi, np.float64)[states, actions]))
