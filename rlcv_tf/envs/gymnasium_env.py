"""One gymnasium environment behind `base.MultiAgentEnv` (N = 1): the shared half of the Chapter 2 adapters.

The adapters (`atari.py`, `box2d.py`, `classic.py`) give the gymnasium environment, how a raw observation becomes
the agent's [1, ...] array (`_observe`) and, optionally, an action repeat. This class does the rest, the same way
for all of them:

  * Seeding: the first `reset()` seeds the engine with the constructor's `seed` (gymnasium's `reset(seed=...)`)
    and this adapter's own generator (`self.np_random`, used for repeat counts) with the same seed; later resets
    continue both streams, so one seed gives one reproducible sequence of episodes. `reseed(s)` makes the next
    reset start over from seed `s` (evaluation on held-out seeds without building a new engine).
  * Action repeat: `step` applies the action for `_repeat_count()` engine steps (1 by default), sums their raw
    rewards and stops early at the episode's end. Rewards are the engine's, unclipped: clipping is the learner's
    business (issue 10 Sec. 3).
  * Episode ends: gymnasium's `terminated` becomes `dm_env.termination` (discount 0), `truncated` (time limit or
    ALE's frame cap) `dm_env.truncation` (discount 1); a termination wins when both are set. A `step` after the
    last one starts the next episode (as the other adapters do).
  * Counting: `episode_info()` gives the episode's raw `score`, its emulator `frames` (engine steps, or ALE's own
    frame counter) and agent `steps`; `total_frames` counts emulator frames since construction and
    `last_repeat` how many engine frames the last `step` took.
"""

from typing import Any, Dict, Optional

import dm_env
import numpy as np
from dm_env import specs

from rlcv_tf.envs import base


class GymnasiumEnv(base.MultiAgentEnv):
  """A single-agent gymnasium environment with a leading agent axis of 1 (module docstring).

  Subclasses set `self._observation_spec` and implement `_observe(raw) -> np.ndarray` (shape of that spec); a
  discrete environment passes `num_actions`, a continuous one `action_bounds=(minimum, maximum)`.
  """

  def __init__(self, env, seed: int = 0, num_actions: Optional[int] = None, action_bounds=None):
    if (num_actions is None) == (action_bounds is None):
      raise ValueError('give exactly one of num_actions (discrete) and action_bounds (continuous)')
    self._env = env
    self._next_seed: Optional[int] = int(seed)
    self.np_random = np.random.default_rng(int(seed))
    if action_bounds is not None:
      self._action_spec = base.continuous_action_spec(1, action_bounds[0], action_bounds[1])
      self._num_actions = int(self._action_spec.shape[-1])
    else:
      self._action_spec = None
      self._num_actions = int(num_actions)
    self._needs_reset = True
    self._score = 0.0
    self._episode_frames = 0
    self._steps = 0
    self.total_frames = 0
    self.last_repeat = 0

  # ------------------------------------------------------------------------------------------- subclass hooks
  def _observe(self, raw) -> np.ndarray:
    raise NotImplementedError

  def _repeat_count(self) -> int:
    """Engine steps per agent step; drawn from `self.np_random` where it is random."""
    return 1

  def _after_reset(self, raw):
    """The raw first observation of an episode, after any adapter-specific fix-up (default: unchanged)."""
    return raw

  def _engine_action(self, action):
    """The validated agent action (int, or float32 [D]) as the engine takes it."""
    return action

  def _engine_step(self, action, last_of_repeat: bool):
    """One engine step; `last_of_repeat` tells an adapter whose observation of earlier steps is never used."""
    del last_of_repeat
    return self._env.step(action)

  def _episode_frame_count(self, info: Dict[str, Any], engine_steps: int) -> int:
    """Emulator frames of the episode so far: one per engine step unless the engine counts them itself."""
    del info
    return engine_steps

  # ------------------------------------------------------------------------------------------------ interface
  @property
  def num_agents(self) -> int:
    return 1

  @property
  def num_actions(self) -> int:
    return self._num_actions

  @property
  def continuous_actions(self) -> bool:
    return self._action_spec is not None

  def action_spec(self):
    if self._action_spec is not None:
      return self._action_spec
    return super().action_spec()

  def observation_spec(self) -> specs.Array:
    return self._observation_spec

  @property
  def gym_env(self):
    """The wrapped gymnasium environment (for tests and tools)."""
    return self._env

  def reseed(self, seed: int) -> None:
    """The next `reset()` re-seeds the engine and the adapter's generator with `seed`."""
    self._next_seed = int(seed)

  def reset(self) -> dm_env.TimeStep:
    if self._next_seed is not None:
      seed, self._next_seed = self._next_seed, None
      self.np_random = np.random.default_rng(seed)
      raw, info = self._env.reset(seed=seed)
    else:
      raw, info = self._env.reset()
    self._needs_reset = False
    self._score = 0.0
    self._steps = 0
    self._engine_steps = 0
    self._episode_frames = self._episode_frame_count(info, 0)
    self.last_repeat = 0
    return dm_env.restart(self._observe(self._after_reset(raw)))

  def step(self, actions) -> dm_env.TimeStep:
    if self._needs_reset:
      return self.reset()
    if self._action_spec is not None:
      action = base.check_continuous_actions(actions, self._action_spec)[0]
    else:
      action = int(base.check_actions(actions, 1, self._num_actions)[0])
    engine_action = self._engine_action(action)
    repeat = int(self._repeat_count())
    total = 0.0
    terminated = truncated = False
    raw, info = None, {}
    for i in range(repeat):
      raw, reward, terminated, truncated, info = self._engine_step(engine_action, i == repeat - 1)
      total += float(reward)
      self._engine_steps += 1
      if terminated or truncated:
        break
    frames = self._episode_frame_count(info, self._engine_steps)
    self.last_repeat = frames - self._episode_frames
    self.total_frames += self.last_repeat
    self._episode_frames = frames
    self._score += total
    self._steps += 1
    reward = np.array([total], np.float32)
    observation = self._observe(raw)
    if terminated:
      self._needs_reset = True
      return dm_env.termination(reward, observation)
    if truncated:
      self._needs_reset = True
      return dm_env.truncation(reward, observation)
    return dm_env.transition(reward, observation)

  def episode_info(self) -> Dict[str, Any]:
    """The current episode so far: raw `score` (sum of unclipped rewards), emulator `frames`, agent `steps`."""
    return {'score': float(self._score), 'frames': int(self._episode_frames), 'steps': int(self._steps)}

  def close(self):
    self._env.close()
