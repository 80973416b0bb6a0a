"""The one environment interface used everywhere in rlcv_tf.

Decision: environments are `dm_env.Environment`s. dm_env keeps episode boundaries explicit (`StepType`) and
separates termination (`discount == 0`) from time-limit truncation (`discount > 0` on the LAST step), which is
what bootstrapped returns such as V-trace need. Multi-agent environments batch their agents on a leading axis:

  * `reset()` -> `TimeStep(FIRST, reward=None, discount=None, observation [N, ...])`: uint8 pixels [N, H, W, C]
    for the Chapter 4 adapters; float32 for Chapter 2's (normalised frames [N, 80, 80, 1], state vectors as
    [N, L, 1]). The last axis is always the channel axis that `frame_stack.FrameStack` stacks on.
  * `step(actions)` -> `TimeStep(MID|LAST, reward=float32 [N], discount=float32 scalar, observation)`. Actions are
    int32 [N] for a discrete action set (`action_spec()` bounds them by [0, num_actions - 1]) or, where
    `continuous_actions` is True, float32 [N, D] bounded per component by `action_spec()`'s minimum/maximum
    (`check_continuous_actions` validates them and clips them into the bounds).
  * `agent_positions()` -> int32 [N, 2]: (row, col) of each controlled agent on the map in the current
    observation (the target of the Chapter 4 prediction objective). Optional: environments without a map keep
    the default (zeros) and report `has_agent_positions == False`.
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
    """Size of each agent's discrete action set; with `continuous_actions`, the length D of each agent's action
    vector (check `continuous_actions` before building a categorical policy on it)."""

  @property
  def continuous_actions(self) -> bool:
    """True when actions are float vectors [N, D] (bounded Box actions), False for a discrete set (default)."""
    return False

  @property
  def map_hw(self) -> Tuple[int, int]:
    """(height, width) of the map that `agent_positions` indexes; (0, 0) where there is none."""
    return (0, 0)

  def agent_positions(self) -> np.ndarray:
    """int32 [N, 2] (row, col) of each controlled agent in the current observation. Environments without a map
    keep this default, zeros, so the actor stream keeps one layout; `has_agent_positions` tells them apart."""
    return np.zeros((self.num_agents, 2), np.int32)

  @property
  def has_agent_positions(self) -> bool:
    """Whether `agent_positions` is real (overridden by the adapter) rather than the zeros default."""
    return type(self).agent_positions is not MultiAgentEnv.agent_positions

  @property
  def unwrapped(self) -> 'MultiAgentEnv':
    """The adapter itself under any wrappers (`FrameStack` forwards to it); here, this environment."""
    return self

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


def continuous_action_spec(num_agents: int, minimum, maximum) -> specs.BoundedArray:
  """float32 [N, D] actions, component d bounded by [minimum[d], maximum[d]] (the spec of a continuous env)."""
  low = np.asarray(minimum, np.float32)
  high = np.asarray(maximum, np.float32)
  if low.ndim != 1 or low.shape != high.shape or not np.all(low < high):
    raise ValueError(f'continuous action bounds must be two 1-D arrays with minimum < maximum, got {low}, {high}')
  shape = (num_agents, low.shape[0])
  return specs.BoundedArray(shape, np.float32, np.broadcast_to(low, shape), np.broadcast_to(high, shape),
                            name='actions')


def check_continuous_actions(actions, spec: specs.BoundedArray) -> np.ndarray:
  """Validates float actions against a `continuous_action_spec` and returns them as float32 [N, D], clipped into
  the bounds (exploration noise may push a behaviour action past them). Raises ValueError naming the problem:
  a wrong shape or a non-finite value."""
  a = np.asarray(actions)
  if a.shape != spec.shape:
    raise ValueError(f'expected float actions of shape {spec.shape} (agents, action dimensions), got shape {a.shape}')
  if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
    raise ValueError(f'continuous actions must be numbers, got dtype {a.dtype}')
  a = a.astype(np.float32)
  if not np.all(np.isfinite(a)):
    raise ValueError(f'continuous actions must be finite, got {a.tolist()}')
  return np.clip(a, spec.minimum, spec.maximum)


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
