"""How one environment is stepped for the learner: the actor-side half of the runtime, with no TensorFlow.

Used by every actor process (`actor_process.py`) and by the single-process inline runtime, so both report
exactly the same stream. Each output describes the transition INTO its observation (SEED's layout):

  observation  the stacked observation the next action is chosen for;
  reward       float32 [N] of the transition into it;
  discount     dm_env's discount of that transition: 1 mid-episode, 0 at a termination, > 0 at a time-limit
               truncation (`base.py`), and 0 for the reset transition that follows an episode end;
  done         True when `observation` is the first of a new episode (the actor reset after an episode end);
  truncated    True when `observation` is the LAST observation of an episode cut by a time limit. It is sent
               only so the learner can bootstrap V-trace from its value: the action chosen for it is never
               executed, the next output is the reset, and the learner masks its own losses at this step.
  episode      statistics of the episode that just ended, on the output with `done`.

A termination sends no final observation (its value is never needed: the discount is 0), as in SEED RL; a
truncation costs one extra inference per episode (one in 1,000 steps for DMLab2D Cleanup).
"""

import dataclasses
from typing import Any, Dict, Optional

import numpy as np


@dataclasses.dataclass
class StepOutput:
  observation: np.ndarray        # uint8 [N, H, W, C]
  reward: np.ndarray             # float32 [N]
  discount: float
  done: bool
  truncated: bool
  agent_positions: np.ndarray    # int32 [N, 2]
  episode: Optional[Dict[str, Any]] = None


class EnvRunner:
  """Steps one `base.MultiAgentEnv`, resetting at episode ends and keeping the episode's statistics."""

  def __init__(self, env):
    self.env = env
    n = env.num_agents
    self._return = np.zeros(n, np.float32)
    self._length = 0
    self._pending_reset = False

  def reset(self) -> StepOutput:
    """The first output: the first observation of the first episode."""
    ts = self.env.reset()
    self._return[:] = 0.0
    self._length = 0
    self._pending_reset = False
    return self._output(ts.observation, np.zeros_like(self._return), 1.0, False, False, None)

  def step(self, actions) -> StepOutput:
    """Applies `actions` (int [N]) and returns the next output. After a `truncated` output the actions are
    ignored and the environment resets."""
    if self._pending_reset:
      return self._reset_after_episode(np.zeros_like(self._return))
    ts = self.env.step(actions)
    reward = np.asarray(ts.reward, np.float32)
    self._return += reward
    self._length += 1
    if not ts.last():
      return self._output(ts.observation, reward, float(ts.discount), False, False, None)
    discount = float(ts.discount)
    if discount > 0.0:
      # Time limit: hand over the final observation for the bootstrap value, then reset on the next call.
      self._pending_reset = True
      return self._output(ts.observation, reward, discount, False, True, None)
    return self._reset_after_episode(reward)

  def _reset_after_episode(self, reward) -> StepOutput:
    stats: Dict[str, Any] = {'return': self._return.copy(), 'length': self._length}
    stats.update(self.env.episode_info())
    ts = self.env.reset()
    self._return[:] = 0.0
    self._length = 0
    self._pending_reset = False
    return self._output(ts.observation, reward, 0.0, True, False, stats)

  def _output(self, observation, reward, discount, done, truncated, episode) -> StepOutput:
    return StepOutput(np.ascontiguousarray(observation), reward, discount, done, truncated,
                      np.asarray(self.env.agent_positions(), np.int32), episode)

  def close(self):
    self.env.close()
