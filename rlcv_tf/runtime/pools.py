"""`make_pool`: the one place where a run's runtime settings become an `actors.ActorPool`.

Every chapter's trainer picks its actors the same way (Chapter 4's `marl.training.make_actor_pool`, Chapter 2's
synchronous rollouts):

  runtime='inline'                  every environment in the learner's process (`inline.InlinePool`);
  runtime='actors', backend='local' one actor process each on this machine (`actors.LocalActorPool`), over a unix
                                    socket, or TCP when `learner_host` / `learner_port` differ from the defaults;
  runtime='actors', backend='ray'   one Ray actor each on a cluster's nodes (`ray_pool.RayActorPool`; Ray is
                                    imported only then).

No TensorFlow here.
"""

from typing import Sequence

from rlcv_tf.runtime import actors as actors_lib
from rlcv_tf.runtime import inline as inline_lib

RUNTIMES = ('actors', 'inline')
BACKENDS = ('local', 'ray')
DEFAULT_LEARNER_HOST = '127.0.0.1'


def make_pool(configs: Sequence[actors_lib.ActorConfig], runtime: str = 'actors', backend: str = 'local',
              ray_address: str = '', learner_host: str = DEFAULT_LEARNER_HOST, learner_port: int = 0,
              actor_timeout_s: float = 60.0, max_restarts: int = 100) -> actors_lib.ActorPool:
  """The pool for `configs` (one per actor) under these settings (module docstring); not started yet.

  `actor_timeout_s` and `max_restarts` are the actor pools' fault settings (`actors.SocketActorPool`); the inline
  pool has no processes and ignores them and the listener settings. ValueError names an unknown runtime or backend.
  """
  if runtime not in RUNTIMES:
    raise ValueError(f'runtime: unknown value {runtime!r}; valid values: {", ".join(RUNTIMES)}')
  if backend not in BACKENDS:
    raise ValueError(f'backend: unknown value {backend!r}; valid values: {", ".join(BACKENDS)}')
  if runtime == 'inline':
    return inline_lib.InlinePool(configs)
  if backend == 'ray':
    from rlcv_tf.runtime import ray_pool  # pylint: disable=g-import-not-at-top  (Ray loads when the pool starts)
    return ray_pool.RayActorPool(configs, ray_address=ray_address, learner_host=learner_host,
                                 learner_port=learner_port, actor_timeout_s=actor_timeout_s,
                                 max_restarts=max_restarts)
  listener = {}
  if learner_host != DEFAULT_LEARNER_HOST or learner_port:
    listener = dict(family='tcp', address=(learner_host, learner_port))
  return actors_lib.LocalActorPool(configs, actor_timeout_s=actor_timeout_s, max_restarts=max_restarts, **listener)
