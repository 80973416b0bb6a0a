"""Gymnasium's toy-text tables (FrozenLake-v1, CliffWalking-v1) as arrays for exact planning (seeds 003-004).

`tables(name)` reads the real environment's transition table `env.unwrapped.P` ({s: {a: [(p, s', r, done)]}})
into NumPy: P [A, S, S] (row-stochastic), R [A, S, S] (the reward of each transition), the start distribution and
the grid's layout. Episode ends become absorbing states: every state some transition enters with done=True is made
terminal, its rows a self-loop with reward 0, so V = 0 there and the Bellman equations of an infinite-horizon MDP
give the episodic values. (FrozenLake's table already has such self-loops for holes and the goal; CliffWalking's
goal row does not: its table lets the agent walk on from the goal, which the environment never does.)

`play(name, policy, episodes, gamma, seed)` plays a deterministic tabular policy on the real environment without
its registered time limit and returns the discounted returns: the Monte Carlo check of a planned V*.
`gymnasium` is a core dependency; no stand-in exists.
"""

import dataclasses
from typing import Dict, List, Optional, Sequence

import numpy as np

TOY_TEXT = {'frozenlake': 'FrozenLake-v1', 'cliffwalking': 'CliffWalking-v1'}


@dataclasses.dataclass
class ToyTextTables:
  name: str                   # the gymnasium id
  P: np.ndarray               # [A, S, S] float64, rows sum to 1
  R: np.ndarray               # [A, S, S] float64, reward of s -a-> s'
  terminal: np.ndarray        # [S] bool: absorbing states (episode ends)
  start: np.ndarray           # [S] float64: initial state distribution
  grid: np.ndarray            # [rows, cols] str: the map ('S', 'F', 'H', 'G' for FrozenLake; 'C' cliff, 'x' open)
  action_names: Sequence[str]


def _make(name: str, **kwargs):
  import gymnasium as gym  # pylint: disable=g-import-not-at-top
  if name not in TOY_TEXT:
    raise ValueError(f'unknown toy-text environment {name!r}; valid values: {", ".join(TOY_TEXT)}')
  return gym.make(TOY_TEXT[name], **kwargs)


def tables(name: str) -> ToyTextTables:
  """The arrays of environment `name` ('frozenlake' or 'cliffwalking'); module docstring."""
  env = _make(name)
  raw = env.unwrapped
  table: Dict[int, Dict[int, List]] = raw.P
  num_s, num_a = int(raw.observation_space.n), int(raw.action_space.n)
  P = np.zeros((num_a, num_s, num_s))
  R = np.zeros((num_a, num_s, num_s))
  terminal = np.zeros(num_s, bool)
  for s in range(num_s):
    for a in range(num_a):
      for p, s2, r, done in table[s][a]:
        s2 = int(s2)
        # R is the expected reward of the transition s -a-> s2 (several table entries may share s2).
        R[a, s, s2] = (R[a, s, s2] * P[a, s, s2] + p * r) / max(P[a, s, s2] + p, 1e-300)
        P[a, s, s2] += p
        if done:
          terminal[s2] = True
  for s in np.flatnonzero(terminal):
    P[:, s, :] = 0.0
    P[:, s, s] = 1.0
    R[:, s, :] = 0.0
  start = np.asarray(raw.initial_state_distrib, np.float64)
  if name == 'frozenlake':
    grid = np.vectorize(lambda b: b.decode())(raw.desc)
    actions = ('left', 'down', 'right', 'up')
  else:
    rows, cols = raw.shape
    grid = np.full((rows, cols), 'x')
    grid[np.asarray(raw._cliff, bool)] = 'C'        # pylint: disable=protected-access
    grid[3, 0], grid[3, cols - 1] = 'S', 'G'
    actions = ('up', 'right', 'down', 'left')
  env.close()
  return ToyTextTables(TOY_TEXT[name], P, R, terminal, start / start.sum(), grid, actions)


def play(name: str, policy: np.ndarray, episodes: int, gamma: float, seed: int = 0,
         max_steps: Optional[int] = 100_000) -> np.ndarray:
  """Discounted returns of `episodes` episodes of the deterministic policy [S] (action per state) on the real
  environment, without its registered time limit (FrozenLake's 100 steps, CliffWalking's 200); an episode still
  running after `max_steps` steps is cut there."""
  env = _make(name, max_episode_steps=int(max_steps))
  out = np.zeros(episodes)
  try:
    for i in range(episodes):
      s, _ = env.reset(seed=seed + i)
      total, discount = 0.0, 1.0
      for _ in range(max_steps):
        s, r, terminated, truncated, _ = env.step(int(policy[int(s)]))
        total += discount * float(r)
        discount *= gamma
        if terminated or truncated:
          break
      out[i] = total
  finally:
    env.close()
  return out
