"""K environments stepped in lock-step in one process, outputs stacked on a leading env axis.

For a synchronous batched actor-critic (the thesis's A3C with 64 agents, T:L1410-1418): one batched inference
per step over every env, then `step` with the K joint actions. Envs whose episode ended are reset at once, so
every row always holds the observation the next action is chosen for. NumPy only; engines run serially here
(parallel stepping across processes is the runtime's job).

`BatchStep` rows (k = env index, N = agents per env, usually 1):
  observation       [K, N, ...]  the observation the next action is chosen for (a new episode's first one where
                                 `first[k]`);
  reward            float32 [K, N] the reward of the transition just made (0 after `reset()`);
  discount          float32 [K]  dm_env's discount of that transition: 1 mid-episode, 0 at a termination, 1 at a
                                 time-limit truncation (bootstrap from `final_observation[k]` there);
  first             bool [K]     the env was reset after its episode ended on this step (or by `reset()`);
  final_observation list of K    the last observation of an episode that ended on this step, else None;
  episodes          list of K    `episode_info()` plus `return` (per-agent sum of rewards) and `truncated` of an
                                 episode that ended on this step, else None.
"""

import dataclasses
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from rlcv_tf.envs import base
from rlcv_tf.envs import registry


@dataclasses.dataclass
class BatchStep:
  observation: np.ndarray
  reward: np.ndarray
  discount: np.ndarray
  first: np.ndarray
  final_observation: List[Optional[np.ndarray]]
  episodes: List[Optional[Dict[str, Any]]]

  @property
  def ended(self) -> np.ndarray:
    """bool [K]: an episode ended on this step (`first` after a `step`)."""
    return np.array([e is not None for e in self.episodes], bool)


class EnvBatch:
  """Steps `envs` (same observation and action specs) together; see the module docstring."""

  def __init__(self, envs: Sequence[base.MultiAgentEnv]):
    if not envs:
      raise ValueError('EnvBatch needs at least one environment')
    self.envs = list(envs)
    obs_spec, act_spec = self.envs[0].observation_spec(), self.envs[0].action_spec()
    for i, env in enumerate(self.envs[1:], 1):
      if env.observation_spec().shape != obs_spec.shape or env.action_spec().shape != act_spec.shape:
        raise ValueError(f'env {i} has observation/action shapes {env.observation_spec().shape}/'
                         f'{env.action_spec().shape}, env 0 has {obs_spec.shape}/{act_spec.shape}')
    self._returns = np.zeros((len(self.envs), self.envs[0].num_agents), np.float64)
    self._started = False

  @property
  def num_envs(self) -> int:
    return len(self.envs)

  def observation_spec(self):
    """One env's observation spec ([N, ...]); the batch's observations are [K, N, ...]."""
    return self.envs[0].observation_spec()

  def action_spec(self):
    """One env's action spec; `step` takes [K] + its shape."""
    return self.envs[0].action_spec()

  def reset(self) -> BatchStep:
    obs = [env.reset().observation for env in self.envs]
    self._returns[:] = 0.0
    self._started = True
    k, n = self._returns.shape
    return BatchStep(np.stack(obs), np.zeros((k, n), np.float32), np.ones(k, np.float32), np.ones(k, bool),
                     [None] * k, [None] * k)

  def step(self, actions) -> BatchStep:
    if not self._started:
      raise RuntimeError('call reset() before step()')
    actions = np.asarray(actions)
    if actions.shape[:1] != (self.num_envs,):
      raise ValueError(f'expected one joint action per env, leading axis {self.num_envs}, got shape {actions.shape}')
    k, n = self._returns.shape
    obs, rewards = [], np.zeros((k, n), np.float32)
    discounts, first = np.ones(k, np.float32), np.zeros(k, bool)
    finals: List[Optional[np.ndarray]] = [None] * k
    episodes: List[Optional[Dict[str, Any]]] = [None] * k
    for i, env in enumerate(self.envs):
      ts = env.step(actions[i])
      rewards[i] = ts.reward
      discounts[i] = ts.discount
      self._returns[i] += ts.reward
      if ts.last():
        info = dict(env.episode_info())
        info['return'] = self._returns[i].copy()
        info['truncated'] = bool(ts.discount > 0)
        episodes[i], finals[i] = info, ts.observation
        self._returns[i] = 0.0
        first[i] = True
        ts = env.reset()
      obs.append(ts.observation)
    return BatchStep(np.stack(obs), rewards, discounts, first, finals, episodes)

  def close(self):
    for env in self.envs:
      env.close()


def make_batch(name: str, num_envs: int, seed: int = 0, seed_stride: int = 1, **kwargs) -> EnvBatch:
  """`num_envs` copies of registry env `name` with seeds seed, seed + stride, ... (kwargs to `make_env`)."""
  if num_envs < 1:
    raise ValueError(f'num_envs must be >= 1, got {num_envs}')
  return EnvBatch([registry.make_env(name, seed=seed + i * seed_stride, **kwargs) for i in range(num_envs)])
