"""Frame stacking, done once for every environment: the last k frames concatenated on channels, oldest first.

Channels are the last axis of any observation layout: [N, H, W, C] frames give [N, H, W, k*C]; state vectors
held as [N, L, 1] (BipedalWalker's 24 numbers, App. 2.E) give [N, L, k], the 1-D encoder's (length, channels).

At reset the buffer holds k copies of the first frame (as gfootball's `stacked=True` does), so the stacked
observation always has k*C channels and the newest frame sits in the last C channels.
"""

from typing import Tuple

import dm_env
import numpy as np
from dm_env import specs

from rlcv_tf.envs import base


class FrameStack(base.MultiAgentEnv):
  """Wraps a `MultiAgentEnv` whose observations are [N, H, W, C] and stacks the last `num_frames` frames."""

  def __init__(self, env: base.MultiAgentEnv, num_frames: int = 4):
    if num_frames < 1:
      raise ValueError(f'num_frames must be >= 1, got {num_frames}')
    self._env = env
    self._k = num_frames
    self._frames = None  # [N, H, W, k*C] ring kept contiguous: shift left by C and write the newest at the end.

  @property
  def unwrapped(self) -> base.MultiAgentEnv:
    return getattr(self._env, 'unwrapped', self._env)

  @property
  def num_frames(self) -> int:
    return self._k

  @property
  def num_agents(self) -> int:
    return self._env.num_agents

  @property
  def team_sizes(self) -> Tuple[int, int]:
    return self._env.team_sizes

  @property
  def num_actions(self) -> int:
    return self._env.num_actions

  @property
  def continuous_actions(self) -> bool:
    return self._env.continuous_actions

  @property
  def map_hw(self) -> Tuple[int, int]:
    return self._env.map_hw

  @property
  def has_agent_positions(self) -> bool:
    return self._env.has_agent_positions

  @property
  def shared_channels(self) -> Tuple[int, ...]:
    """The wrapped environment's shared channels in every stacked frame (frame f's channel c is f*C + c)."""
    inner = self._env.shared_channels
    c = self._env.observation_spec().shape[-1]
    return tuple(f * c + i for f in range(self._k) for i in inner)

  def agent_positions(self) -> np.ndarray:
    return self._env.agent_positions()

  def episode_info(self):
    return self._env.episode_info()

  def observation_spec(self) -> specs.Array:
    inner = self._env.observation_spec()
    shape = inner.shape[:-1] + (inner.shape[-1] * self._k,)
    return specs.Array(shape, inner.dtype, name='stacked_' + (inner.name or 'observation'))

  def action_spec(self):
    return self._env.action_spec()

  def reset(self) -> dm_env.TimeStep:
    ts = self._env.reset()
    self._frames = np.concatenate([ts.observation] * self._k, axis=-1)
    return ts._replace(observation=self._frames.copy())

  def step(self, actions) -> dm_env.TimeStep:
    if self._frames is None:
      raise RuntimeError('call reset() before step()')
    ts = self._env.step(actions)
    c = ts.observation.shape[-1]
    self._frames[..., :-c] = self._frames[..., c:]
    self._frames[..., -c:] = ts.observation
    return ts._replace(observation=self._frames.copy())

  def close(self):
    self._env.close()
