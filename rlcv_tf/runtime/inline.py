"""The inline runtime's pool: every environment stepped in the learner's own process, one after the other.

`InlinePool` is an `ActorPool` with no processes and no sockets. `receive` returns one step of every environment
(in environment order) once all of them have been answered; `send_actions` steps them at once, on the caller's
thread. Used with `inference.InferenceServer(inline=True)`, so the learner loop alternates "step every env once,
one batched inference" and "train on batch_size unrolls" with nothing running concurrently: two runs with the same
seed are identical, and on a 2-core machine no core is lost to processes waiting on each other.

It steps the environments through the same `env_runner.EnvRunner` as actor processes, so the stream (episode
ends, truncation steps, statistics) is the one the actor runtime reports.
"""

from typing import List, Optional, Sequence

import numpy as np

from rlcv_tf.runtime import actors as actors_lib
from rlcv_tf.runtime import env_runner


class InlinePool(actors_lib.ActorPool):
  """`num_actors` environments in this process (see module docstring)."""

  def __init__(self, configs: Sequence[actors_lib.ActorConfig]):
    self._configs = list(configs)
    self._runners: List[env_runner.EnvRunner] = []
    self._pending: List[Optional[env_runner.StepOutput]] = []

  @property
  def num_actors(self) -> int:
    return len(self._configs)

  def start(self) -> None:
    from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
    for cfg in self._configs:
      env = registry.make_env(cfg.env_name, seed=cfg.seed, num_frames=cfg.num_frames, **cfg.env_kwargs)
      self._runners.append(env_runner.EnvRunner(env))
    self._pending = [r.reset() for r in self._runners]

  def receive(self, timeout: float) -> List[actors_lib.EnvStep]:
    """Every environment's step, if all are waiting for actions; [] while some are not (never blocks)."""
    del timeout
    if not self._pending or any(p is None for p in self._pending):
      return []
    steps = [actors_lib.EnvStep(i, 0, p.observation, p.reward, p.done, p.agent_positions, p.episode, p.discount,
                                p.truncated) for i, p in enumerate(self._pending)]
    self._pending = [None] * len(self._pending)
    return steps

  def send_actions(self, actor_ids: Sequence[int], actions: np.ndarray) -> None:
    for k, i in enumerate(actor_ids):
      self._pending[i] = self._runners[i].step(np.asarray(actions[k]))

  def close(self) -> None:
    for r in self._runners:
      r.close()
    self._runners, self._pending = [], []
