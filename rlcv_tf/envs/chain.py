"""`mini_chain`: the spec's 6-state corridor for DQN learning checks (seeds003_004 Sec. 7.7 T-DQN-7). Not a seed
environment: a stand-in, used only when named.

States 0..5, start 0; actions 0 left, 1 right (left at 0 stays). Reaching state 5 gives +1 and ends the episode
(discount 0); otherwise reward 0. Episodes are cut (truncation, discount 1) after `max_steps` = 20 steps. The
observation is the one-hot state as float32 [1, 6, 1]. The shortest path takes 5 steps.
"""

from typing import Any, Dict

import dm_env
import numpy as np
from dm_env import specs

from rlcv_tf.envs import base

NUM_STATES = 6
MAX_STEPS = 20


class Chain(base.MultiAgentEnv):

  def __init__(self, seed: int = 0, num_states: int = NUM_STATES, max_steps: int = MAX_STEPS):
    del seed                                   # deterministic
    self._n, self._max_steps = int(num_states), int(max_steps)
    self._spec = specs.Array((1, self._n, 1), np.float32, name='state')
    self._needs_reset = True
    self._score = 0.0

  @property
  def num_agents(self) -> int:
    return 1

  @property
  def num_actions(self) -> int:
    return 2

  def observation_spec(self):
    return self._spec

  def reseed(self, seed: int) -> None:
    del seed

  def _observe(self):
    obs = np.zeros((1, self._n, 1), np.float32)
    obs[0, self._s, 0] = 1.0
    return obs

  def episode_info(self) -> Dict[str, Any]:
    return {'score': self._score, 'steps': self._t, 'frames': self._t}

  def reset(self):
    self._s, self._t, self._score, self._needs_reset = 0, 0, 0.0, False
    return dm_env.restart(self._observe())

  def step(self, actions):
    if self._needs_reset:
      return self.reset()
    a = int(base.check_actions(actions, 1, 2)[0])
    self._s = min(self._s + 1, self._n - 1) if a == 1 else max(self._s - 1, 0)
    self._t += 1
    reward = np.array([1.0 if self._s == self._n - 1 else 0.0], np.float32)
    self._score += float(reward[0])
    if self._s == self._n - 1:
      self._needs_reset = True
      return dm_env.termination(reward, self._observe())
    if self._t >= self._max_steps:
      self._needs_reset = True
      return dm_env.truncation(reward, self._observe())
    return dm_env.transition(reward, self._observe())

  def close(self):
    pass


def make_chain(seed: int = 0, **kwargs) -> Chain:
  return Chain(seed=seed, **kwargs)
