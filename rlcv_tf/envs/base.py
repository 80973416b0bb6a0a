"""The one environment interface used everywhere in rlcv_tf.

Decision: environments are `dm_env.Environment`s. dm_env keeps episode boundaries explicit (`StepType`) and
separates termination (`discount == 0`) from time-limit truncation (`discount > 0` on the LAST step), which is
what bootstrapped returns such as V-trace need. Multi-agent environments batch their agents on a leading axis:

  * `reset()` -> `TimeStep(FIRST, reward=None, discount=None, observation=uint8 [N, H, W, C])`
  * `step(actions int32 [N])` -> `TimeStep(MID|LAST, reward=float32 [N], discount=float32 scalar, observation)`
  * `agent_positions()` -> int32 [N, 2]: (row, col) of each controlled agent on the map in the current
    observation (the target of the Chapter 4 prediction objective).
  * `team_sizes` -> (left agents, right agents): with two-team control the right team's agents follow the left's.
  * `episode_info()` -> dict of scalars worth logging about the current episode (e.g. `score_home`).
  * `shared_channels` -> the observation channels that are equal for every agent of one team at one step (the
    networks compute their first conv on them once per team, `marl/networks.py`); empty unless declared.

A single-agent environment is the case N = 1: the leading agent axis is always present. Frame stacking is
done once, by `frame_stack.FrameStack`, never inside an adapter.
"""

import abc
from typing import Any, Dict, Tuple

import dm_env
import numpy as np
from dm_env import specs


class MultiAgentEnv(dm_env.Environment, abc.ABC):
  """A dm_env environment whose N agents act at the same time and share one observation tensor."""

  @property
  @abc.abstractmethod
  def num_agents(self) -> int:
    """N, the number of agents controlled by the caller (leading axis of observations/actions/rewards)."""

  @property
  @abc.abstractmethod
  def num_actions(self) -> int:
    """Size of each agent's discrete action set."""

  @property
  @abc.abstractmethod
  def map_hw(self) -> Tuple[int, int]:
    """(height, width) of the map that `agent_positions` indexes."""

  @abc.abstractmethod
  def agent_positions(self) -> np.ndarray:
    """int32 [N, 2] (row, col) of each controlled agent in the current observation."""

  @property
  def team_sizes(self) -> Tuple[int, int]:
    """(left agents, right agents) on the agent axis, left first. The right count is 0 unless the caller
    also drives right-team players (two-team control for agent-vs-agent games and self-play)."""
    return (self.num_agents, 0)

  @property
  def shared_channels(self) -> Tuple[int, ...]:
    """Indices of the observation channels (last axis) that hold the same values for every agent of one team at
    every step: with two-team control, the same within the left agents and within the right agents. Empty by
    default (nothing promised); an adapter declares them only where it draws them so (the SMM's team and ball
    planes), never where an agent sees itself differently from its team mates (DMLab2D Cleanup)."""
    return ()

  def episode_info(self) -> Dict[str, Any]:
    """Scalars describing the current episode so far (score, ...); empty by default."""
    return {}

  def action_spec(self) -> specs.BoundedArray:
    return specs.BoundedArray((self.num_agents,), np.int32, 0, self.num_actions - 1, name='actions')

  def reward_spec(self) -> specs.Array:
    return specs.Array((self.num_agents,), np.float32, name='reward')

  def discount_spec(self) -> specs.BoundedArray:
    return specs.BoundedArray((), np.float32, 0.0, 1.0, name='discount')


class EnvironmentUnavailableError(RuntimeError):
  """A real engine or data set is missing. The message says what is missing and how to install it."""


def check_actions(actions, num_agents: int, num_actions: int) -> np.ndarray:
  """Validates a joint action and returns it as int32 [N]; raises ValueError naming the problem."""
  a = np.asarray(actions)
  if a.shape != (num_agents,):
    raise ValueError(f'expected one action per agent, shape ({num_agents},), got shape {a.shape}')
  if not np.issubdtype(a.dtype, np.integer):
    raise ValueError(f'actions must be integers, got dtype {a.dtype}')
  if a.size and (a.min() < 0 or a.max() >= num_actions):
    raise ValueError(f'actions must lie in [0, {num_actions - 1}], got {a.tolist()}')
  return a.astype(np.int32)
