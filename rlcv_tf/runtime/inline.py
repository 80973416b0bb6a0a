"""The inline runtime's pool: every environment stepped in the learner's own process, one after the other.

`InlinePool` is an `ActorPool` with no processes and no sockets. `receive` returns one step of every environment
(in environment order) once all of them have been answered; `send_actions` steps them at once, on the caller's
thread. Used with `inference.InferenceServer(inline=True)`, so the learner loop alternates "step every env once,
one batched inference" and "train on batch_size unrolls" with nothing running concurrently: two runs with the same
seed are identical, and on a 2-core machine no core is lost to processes waiting on each other.

It steps the environments through the same `env_runner.EnvRunner` as actor processes, so the stream (episode
ends, truncation steps, statistics) is the one the actor runtime reports. A configuration of `num_envs` K > 1 is K
environments of seeds seed, seed + 1, ..., reported and answered as an actor process of K environments is.
"""

from typing import List, Optional, Sequence

import numpy as np

from rlcv_tf.runtime import actors as actors_lib
from rlcv_tf.runtime import env_runner


class InlinePool(actors_lib.ActorPool):
  """`num_actors` environments in this process (see module docstring)."""

  def __init__(self, configs: Sequence[actors_lib.ActorConfig]):
    actors_lib.check_configs(configs)
    self._configs = list(configs)
    self._runners: List[env_runner.EnvRunner] = []
    self._pending: List[Optional[env_runner.StepOutput]] = []
    self._slots: List[tuple] = []   # (actor id, env index) of every runner

  @property
  def num_actors(self) -> int:
    return len(self._configs)

  def start(self) -> None:
    from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
    for i, cfg in enumerate(self._configs):
      for k in range(cfg.num_envs):
        env = registry.make_env(cfg.env_name, seed=cfg.seed + k, num_frames=cfg.num_frames, **cfg.env_kwargs)
        self._runners.append(env_runner.EnvRunner(env))
        self._slots.append((i, k))
    self._first = [sum(c.num_envs for c in self._configs[:i]) for i in range(len(self._configs))]
    self._pending = [r.reset() for r in self._runners]

  def receive(self, timeout: float) -> List[actors_lib.EnvStep]:
    """Every environment's step, if all are waiting for actions; [] while some are not (never blocks)."""
    del timeout
    if not self._pending or any(p is None for p in self._pending):
      return []
    steps = [actors_lib.EnvStep(i, 0, p.observation, p.reward, p.done, p.agent_positions, p.episode, p.discount,
                                p.truncated, k) for (i, k), p in zip(self._slots, self._pending)]
    self._pending = [None] * len(self._pending)
    return steps

  def send_actions(self, actor_ids: Sequence[int], actions) -> None:
    for j, i in enumerate(actor_ids):
      first, num_envs = self._first[i], self._configs[i].num_envs
      if num_envs == 1:
        self._pending[first] = self._runners[first].step(np.asarray(actions[j]))
        continue
      joint = np.asarray(actions[j])
      if joint.ndim < 1 or joint.shape[0] != num_envs:
        raise ValueError(f'actions of shape {joint.shape} for actor {i} of {num_envs} environments: the leading '
                         'axis must hold one joint action per environment')
      for k in range(num_envs):
        self._pending[first + k] = self._runners[first + k].step(joint[k])

  @property
  def envs(self) -> list:
    """The environments, in the order `receive` reports them (tests and tools: episode counters)."""
    return [r.env for r in self._runners]

  def close(self) -> None:
    for r in self._runners:
      r.close()
    self._runners, self._pending, self._slots = [], [], []
