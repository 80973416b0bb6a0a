"""epsilon-greedy action selection and the linear epsilon schedule (seed 003 S3:L542-548, L622-624; spec Sec. 4.3).

`epsilon_greedy(q, epsilon, rng)`: with probability epsilon a uniformly random action, else argmax_a q (the lowest
index on ties); q [A] or [B, A]. `LinearSchedule(start, end, duration)(t)`: start + (end - start) min(t, duration) /
duration; DQN's [orig, Mnih et al. 2015] 1.0 -> 0.1 over the first 10^6 frames, then constant.
"""

import dataclasses

import numpy as np


def epsilon_greedy(q, epsilon: float, rng: np.random.Generator):
  """An action (int) for q [A], or actions [B] for q [B, A]."""
  if not 0.0 <= epsilon <= 1.0:
    raise ValueError(f'epsilon must lie in [0, 1], got {epsilon}')
  q = np.asarray(q)
  single = q.ndim == 1
  q = q[None] if single else q
  greedy = np.argmax(q, axis=-1)
  explore = rng.random(len(q)) < epsilon
  random = rng.integers(0, q.shape[-1], size=len(q))
  actions = np.where(explore, random, greedy)
  return int(actions[0]) if single else actions


@dataclasses.dataclass(frozen=True)
class LinearSchedule:
  start: float
  end: float
  duration: float

  def __call__(self, t: float) -> float:
    if self.duration <= 0:
      return float(self.end)
    frac = min(max(float(t), 0.0), float(self.duration)) / float(self.duration)
    return float(self.start + (self.end - self.start) * frac)
