"""Tabular Q-learning on a `mdp.TabularMDP` by sampling (seed 003 S3:L576-581 in table form; spec Sec. 4.4).

Q(s, a) <- Q(s, a) + alpha (r + gamma (1 - done) max_a' Q(s', a') - Q(s, a)), the target held fixed (it is a
number here). Transitions are sampled from the MDP's P and R; an absorbing terminal state ends the episode
(done = 1) and the next one starts from the MDP's start distribution. Behaviour is epsilon-greedy in Q.
"""

from typing import Optional, Tuple

import numpy as np

from rlcv_tf.rl_basics import exploration
from rlcv_tf.rl_basics import mdp as mdp_lib


def step(mdp: mdp_lib.TabularMDP, s: int, a: int, rng: np.random.Generator) -> Tuple[int, float, bool]:
  """One sampled transition: (s', r, done); done when s' is an absorbing terminal state."""
  s2 = int(rng.choice(mdp.num_states, p=mdp.P[a, s]))
  r = float(mdp.R[s, a]) if mdp.R.ndim == 2 else float(mdp.R[a, s, s2])
  return s2, r, bool(mdp.terminal[s2])


def q_learning(mdp: mdp_lib.TabularMDP, steps: int, alpha: float = 0.1, epsilon: float = 0.2, seed: int = 0,
               q0: Optional[np.ndarray] = None, max_episode_steps: Optional[int] = None) -> np.ndarray:
  """Q [S, A] after `steps` sampled transitions (module docstring). Episodes longer than `max_episode_steps`
  restart from the start distribution without a terminal target (a time limit, not an end)."""
  rng = np.random.default_rng(seed)
  q = np.zeros((mdp.num_states, mdp.num_actions)) if q0 is None else np.array(q0, np.float64)
  s = int(rng.choice(mdp.num_states, p=mdp.start))
  t = 0
  for _ in range(steps):
    a = exploration.epsilon_greedy(q[s], epsilon, rng)
    s2, r, done = step(mdp, s, a, rng)
    target = r + (0.0 if done else mdp.gamma * q[s2].max())
    q[s, a] += alpha * (target - q[s, a])
    t += 1
    if done or (max_episode_steps is not None and t >= max_episode_steps):
      s, t = int(rng.choice(mdp.num_states, p=mdp.start)), 0
    else:
      s = s2
  return q
