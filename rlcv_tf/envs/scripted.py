"""A scripted test stand-in: a tiny pure-NumPy environment whose faults are asked for (`test_scripted`).

Not a task: it exists so the runtime's fault handling can be tested in seconds. Only ever used when asked for by
name. Everything it shows is predictable from the step count, so a test can check what travelled:

  observation  uint8 [N, H, W, 1], agent n's plane filled with (t + n) mod 256 (t: steps since reset);
  reward       float32 [N], each agent's own action (so the actions the learner sent can be read back);
  positions    (t mod H, n mod W);
  episode end  after `episode_length` steps, a termination (discount 0) or, with `truncate`, a time limit;
  episode_info {'steps_total': a NumPy integer, 'tag': 'scripted'} (non-float statistics must travel too).

Slowness, for every seed: `build_delay_s` (the constructor sleeps, like a GRF build) and `step_delay_s` (every
step sleeps). Faults, counted in `step` calls since the process built the environment (1 = the first step):
  hang_at_step   that step sleeps for ever (an engine that stopped answering);
  crash_at_step  that step raises RuntimeError (an engine that crashed mid-episode);
  fail_to_build  the constructor raises RuntimeError (an engine that cannot start);
  only_seeds     if not empty, the faults apply only to environments built with one of these seeds, so a test can
                 make one run of an actor faulty and its replacement (another seed, `actors.restart_seed`) not.
"""

import time
from typing import Dict, Tuple

import dm_env
import numpy as np
from dm_env import specs

from rlcv_tf.envs import base


class ScriptedEnv(base.MultiAgentEnv):
  """See the module docstring."""

  def __init__(self, seed: int = 0, num_agents: int = 2, hw: Tuple[int, int] = (3, 4), num_actions: int = 5,
               episode_length: int = 10, truncate: bool = False, build_delay_s: float = 0.0,
               step_delay_s: float = 0.0, hang_at_step: int = 0, crash_at_step: int = 0, fail_to_build: bool = False,
               only_seeds: Tuple[int, ...] = ()):
    time.sleep(build_delay_s)
    faulty = not only_seeds or seed in tuple(only_seeds)
    if fail_to_build and faulty:
      raise RuntimeError(f'scripted build failure (seed {seed})')
    if num_agents < 1 or episode_length < 1 or num_actions < 1:
      raise ValueError(f'num_agents, episode_length and num_actions must be >= 1, got {num_agents}, '
                       f'{episode_length}, {num_actions}')
    self._n = num_agents
    self._hw = (int(hw[0]), int(hw[1]))
    self._num_actions = num_actions
    self._length = episode_length
    self._truncate = truncate
    self._step_delay = step_delay_s
    self._hang_at = hang_at_step if faulty else 0
    self._crash_at = crash_at_step if faulty else 0
    self._t = 0
    self._steps_total = 0

  @property
  def num_agents(self) -> int:
    return self._n

  @property
  def num_actions(self) -> int:
    return self._num_actions

  @property
  def map_hw(self) -> Tuple[int, int]:
    return self._hw

  def observation_spec(self):
    return specs.Array((self._n,) + self._hw + (1,), np.uint8, name='scripted')

  def agent_positions(self) -> np.ndarray:
    n = np.arange(self._n)
    return np.stack([np.full(self._n, self._t % self._hw[0]), n % self._hw[1]], axis=1).astype(np.int32)

  def episode_info(self) -> Dict:
    return {'steps_total': np.int64(self._steps_total), 'tag': 'scripted'}

  def _observe(self) -> np.ndarray:
    values = (self._t + np.arange(self._n)) % 256
    return np.broadcast_to(values[:, None, None, None], (self._n,) + self._hw + (1,)).astype(np.uint8)

  def reset(self) -> dm_env.TimeStep:
    self._t = 0
    return dm_env.restart(self._observe())

  def step(self, actions) -> dm_env.TimeStep:
    actions = base.check_actions(actions, self._n, self._num_actions)
    self._steps_total += 1
    time.sleep(self._step_delay)
    if self._steps_total == self._hang_at:
      while True:
        time.sleep(3600)
    if self._steps_total == self._crash_at:
      raise RuntimeError(f'scripted crash at step {self._steps_total}')
    self._t += 1
    reward = actions.astype(np.float32)
    if self._t < self._length:
      return dm_env.transition(reward, self._observe())
    end = dm_env.truncation if self._truncate else dm_env.termination
    return end(reward, self._observe())

  def close(self):
    pass


def make_scripted(seed: int = 0, **kwargs) -> ScriptedEnv:
  return ScriptedEnv(seed=seed, **kwargs)
