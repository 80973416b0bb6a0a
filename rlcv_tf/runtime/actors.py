"""The actor/learner boundary of the SEED-style runtime, and its local implementation.

Actors only step environments: they send each new observation to the learner and wait for the agents'
actions, which the learner computes in one batched inference over all actors (SEED RL's central inference).
Everything the learner knows about actors goes through `ActorPool`:

  pool.start()
  steps = pool.receive(timeout)         # env outputs from every actor that has one ready
  pool.send_actions(actor_ids, actions) # one joint action [N] per actor, in the same order
  pool.close()

`LocalActorPool` runs one OS process per actor on this machine (the embedded default). Actors are plain
`python -m rlcv_tf.runtime.actor_process` processes that never import TensorFlow, talking over a
`multiprocessing.connection` Unix socket, so a later pool can put the same actor loop on other machines (Ray)
without the learner changing. A dead actor is restarted with a new `run_id`; the learner sees the new run id
and drops that actor's partial unroll.
"""

import abc
import dataclasses
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from multiprocessing import connection
from typing import Any, Dict, List, Optional, Sequence

import numpy as np


@dataclasses.dataclass
class EnvStep:
  """One environment output, as an actor reports it.

  `reward`, `discount` and `done` describe the transition INTO `observation` (SEED's layout). When an episode
  ends the actor resets: `observation` is then the first observation of the next episode, `done` is True and
  `episode` holds the statistics of the episode that just ended. At a time-limit truncation one step with
  `truncated=True` carries the episode's last observation first (for the bootstrap value; its action is not
  executed). See `env_runner.py`.
  """
  actor_id: int
  run_id: int
  observation: np.ndarray        # uint8 [N, H, W, C]
  reward: np.ndarray             # float32 [N]
  done: bool
  agent_positions: np.ndarray    # int32 [N, 2], positions in `observation`
  episode: Optional[Dict[str, Any]] = None  # {'return': float32 [N], 'length': int, ...env info}
  discount: float = 1.0          # dm_env discount of the transition into `observation`
  truncated: bool = False        # `observation` ends an episode cut by a time limit (bootstrap only)


@dataclasses.dataclass(frozen=True)
class ActorConfig:
  """Everything an actor process needs to build its environment (picklable, no TensorFlow)."""
  env_name: str
  env_kwargs: Dict[str, Any]
  seed: int
  num_frames: int = 4


class ActorPool(abc.ABC):
  """The boundary between actors and the learner (see module docstring)."""

  @property
  @abc.abstractmethod
  def num_actors(self) -> int:
    ...

  @abc.abstractmethod
  def start(self) -> None:
    ...

  @abc.abstractmethod
  def receive(self, timeout: float) -> List[EnvStep]:
    """Env outputs from actors that are waiting for actions; [] if none arrived within `timeout` seconds."""

  @abc.abstractmethod
  def send_actions(self, actor_ids: Sequence[int], actions: np.ndarray) -> None:
    """Sends `actions[k]` (int32 [N]) to actor `actor_ids[k]`."""

  @abc.abstractmethod
  def close(self) -> None:
    ...

  @property
  def restarts(self) -> int:
    """How many times an actor has been restarted after dying."""
    return 0

  def __enter__(self):
    self.start()
    return self

  def __exit__(self, *exc):
    self.close()


class ActorStartupError(RuntimeError):
  """An actor process could not build its environment; the message carries the actor's own error."""


class LocalActorPool(ActorPool):
  """One process per actor on this machine; dead actors are restarted (up to `max_restarts` in total)."""

  def __init__(self, configs: Sequence[ActorConfig], max_restarts: int = 100, startup_timeout: float = 180.0):
    self._configs = list(configs)
    self._max_restarts = max_restarts
    self._startup_timeout = startup_timeout
    self._tmpdir = None
    self._listener = None
    self._procs: List[Optional[subprocess.Popen]] = [None] * len(self._configs)
    self._conns: List[Optional[connection.Connection]] = [None] * len(self._configs)
    self._run_ids = [0] * len(self._configs)
    self._restarts = 0
    self._authkey = secrets.token_bytes(16)

  @property
  def num_actors(self) -> int:
    return len(self._configs)

  @property
  def restarts(self) -> int:
    return self._restarts

  def pids(self) -> List[Optional[int]]:
    return [p.pid if p is not None else None for p in self._procs]

  def start(self) -> None:
    self._tmpdir = tempfile.mkdtemp(prefix='rlcv_actors_')
    self._listener = connection.Listener(os.path.join(self._tmpdir, 'learner.sock'), family='AF_UNIX',
                                         authkey=self._authkey)
    # accept() would block forever on an actor that died before connecting: poll instead.
    self._listener._listener._socket.settimeout(1.0)  # pylint: disable=protected-access
    for i in range(self.num_actors):
      self._launch(i)
    for i in range(self.num_actors):
      self._accept(i)

  def _launch(self, actor_id: int):
    cfg = self._configs[actor_id]
    # Restarted actors get a fresh seed so they do not replay the episode they died in.
    seed = cfg.seed + 1000003 * self._run_ids[actor_id]
    cmd = [sys.executable, '-m', 'rlcv_tf.runtime.actor_process', '--address', self._listener.address,
           '--actor_id', str(actor_id), '--run_id', str(self._run_ids[actor_id]), '--seed', str(seed)]
    env = dict(os.environ, RLCV_ACTOR_AUTHKEY=self._authkey.hex())
    # Actors must not grab every core for BLAS/OpenMP: the learner needs them.
    env.setdefault('OMP_NUM_THREADS', '1')
    env.setdefault('OPENBLAS_NUM_THREADS', '1')
    self._procs[actor_id] = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE)
    # The configuration travels over stdin as JSON-compatible data (no pickle of arbitrary objects).
    payload = json.dumps(dataclasses.asdict(cfg), default=_json_default).encode()
    self._procs[actor_id].stdin.write(payload)
    self._procs[actor_id].stdin.close()

  def _accept(self, actor_id: int):
    """Waits for actor `actor_id` to connect and report that its environment is built."""
    deadline = time.monotonic() + self._startup_timeout
    # Actors connect in any order; each introduces itself with its id.
    while self._conns[actor_id] is None:
      if time.monotonic() > deadline:
        raise ActorStartupError(f'actor {actor_id} did not connect within {self._startup_timeout:.0f} s')
      proc = self._procs[actor_id]
      if proc.poll() is not None:
        raise ActorStartupError(f'actor {actor_id} exited with code {proc.returncode} before connecting')
      try:
        conn = self._listener.accept()
      except socket.timeout:
        continue  # re-check the deadline and whether the actor died before connecting
      hello = conn.recv()
      if hello[0] == 'error':
        raise ActorStartupError(f'actor {hello[1]} could not start its environment: {hello[2]}')
      _, aid, run_id = hello
      if run_id != self._run_ids[aid]:
        conn.close()
        continue
      self._conns[aid] = conn

  def _restart(self, actor_id: int, reason: str):
    if self._restarts >= self._max_restarts:
      raise RuntimeError(f'actor {actor_id} died ({reason}) and the restart budget of {self._max_restarts} '
                         'is spent; giving up')
    self._restarts += 1
    logging.warning('actor %d died (%s); restarting it (restart %d)', actor_id, reason, self._restarts)
    old = self._procs[actor_id]
    if old is not None and old.poll() is None:
      old.kill()
    if old is not None:
      old.wait()
    if self._conns[actor_id] is not None:
      self._conns[actor_id].close()
    self._conns[actor_id] = None
    self._run_ids[actor_id] += 1
    self._launch(actor_id)
    self._accept(actor_id)

  def receive(self, timeout: float) -> List[EnvStep]:
    live = {c: i for i, c in enumerate(self._conns) if c is not None}
    ready = connection.wait(list(live), timeout=timeout)
    steps = []
    for conn in ready:
      actor_id = live[conn]
      try:
        msg = conn.recv()
      except (EOFError, ConnectionError, OSError) as e:
        self._restart(actor_id, type(e).__name__)
        continue
      if msg[0] == 'error':
        self._restart(actor_id, msg[2])
        continue
      _, obs_bytes, obs_shape, reward, done, positions, episode, discount, truncated = msg
      obs = np.frombuffer(obs_bytes, np.uint8).reshape(obs_shape)
      steps.append(EnvStep(actor_id, self._run_ids[actor_id], obs, reward, done, positions, episode, discount,
                           truncated))
    # Catch actors that died without closing their socket (e.g. killed while the learner was busy).
    for i, proc in enumerate(self._procs):
      if proc is not None and proc.poll() is not None and self._conns[i] is not None and \
          self._conns[i] not in ready:
        self._restart(i, f'exit code {proc.returncode}')
    return steps

  def send_actions(self, actor_ids: Sequence[int], actions: np.ndarray) -> None:
    actions = np.asarray(actions, np.int32)
    for k, actor_id in enumerate(actor_ids):
      conn = self._conns[actor_id]
      if conn is None:
        continue
      try:
        conn.send(('act', actions[k]))
      except (BrokenPipeError, ConnectionError, OSError) as e:
        self._restart(actor_id, type(e).__name__)

  def close(self) -> None:
    for conn in self._conns:
      if conn is not None:
        try:
          conn.send(('close',))
        except (OSError, ValueError):
          pass
    deadline = time.monotonic() + 10.0
    for proc in self._procs:
      if proc is None:
        continue
      try:
        proc.wait(timeout=max(0.1, deadline - time.monotonic()))
      except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for conn in self._conns:
      if conn is not None:
        conn.close()
    self._conns = [None] * self.num_actors
    if self._listener is not None:
      self._listener.close()
      self._listener = None


def _json_default(o):
  if isinstance(o, (tuple, list)):
    return list(o)
  if isinstance(o, np.generic):
    return o.item()
  raise TypeError(f'actor configuration value {o!r} is not JSON-serialisable')
