"""The actor/learner boundary of the SEED-style runtime, and its local implementation.

Actors only step environments: they send each new observation to the learner and wait for the agents'
actions, which the learner computes in one batched inference over all actors (SEED RL's central inference).
Everything the learner knows about actors goes through `ActorPool`:

  pool.start()
  steps = pool.receive(timeout)         # env outputs from every actor that has one ready
  pool.send_actions(actor_ids, actions) # one joint action [N] per actor, in the same order
  pool.close()

An actor may step K > 1 environments (`ActorConfig.num_envs`, Chapter 2's synchronous rollouts): `receive` then
returns its K steps together, in environment order (`EnvStep.env_index`), and `send_actions` takes one answer per
actor whose leading axis holds the K joint actions. With K = 1 (Chapter 4) nothing changes.

`LocalActorPool` runs one OS process per actor on this machine (the embedded default). Actors are plain
`python -m rlcv_tf.runtime.actor_process` processes that never import TensorFlow. They dial the learner's socket
and speak `transport`'s binary frames (no pickle; AF_UNIX here, the same bytes over TCP for actors on other
machines). `SocketActorPool` holds everything but the starting of processes (listener, handshake, receive, faults,
restarts); `LocalActorPool` starts them with `subprocess`, `ray_pool.RayActorPool` inside Ray actors on a
cluster's nodes, and the learner cannot tell the two apart.

Faults, all handled inside `receive` / `send_actions` while the other actors keep being served:

  * an actor that dies, crashes mid-episode (its traceback arrives as an ERROR frame), closes its connection or
    sends a bad frame is killed if need be and replaced by a new process with a new `run_id` (the learner sees
    the new run id and drops that actor's partial unroll). The replacement starts in the background: it is
    launched at once and joins when its HELLO and first STEP arrive;
  * an actor that was sent actions and has not answered within `actor_timeout_s` is killed and replaced;
  * a replacement that cannot build its environment, or has not sent its first step within `startup_timeout`,
    is replaced again. Every launch after the first counts against `max_restarts` (over all actors); when the
    budget is spent `ActorFailedError` names the actor and carries its own last error text. At `start` a
    failure stops the pool at once (`ActorStartupError`): it is a configuration problem, not bad luck;
  * a peer that is not one of this run's actors (wrong magic, version or key, garbage, a truncated, malformed or
    oversized frame, no HELLO within `handshake_timeout_s`) is dropped, logged on one line and counted in
    `rejected_peers`; a peer of another protocol version is told so before the learner hangs up. An actor of
    this pool that is refused (exit code `transport.EXIT_REFUSED`) is not restarted: the same code would be
    refused again, so the pool raises `ActorFailedError` instead of looping.
"""

import abc
import dataclasses
import hmac
import json
import logging
import os
import secrets
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from rlcv_tf.runtime import compact
from rlcv_tf.runtime import transport


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
  env_index: int = 0             # which of the actor's `num_envs` environments (0 for a one-environment actor)


@dataclasses.dataclass(frozen=True)
class ActorConfig:
  """Everything an actor process needs to build its environment: plain JSON-compatible data, no TensorFlow.

  `num_envs` > 1: the actor steps that many environments, environment k with seed `seed + k` (module docstring)."""
  env_name: str
  env_kwargs: Dict[str, Any]
  seed: int
  num_frames: int = 4
  num_envs: int = 1


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
  def send_actions(self, actor_ids: Sequence[int], actions) -> None:
    """Sends `actions[k]` (int32 [N]; float32 [N, D] for continuous actions; with a leading axis of K joint actions
    for an actor of K > 1 environments) to actor `actor_ids[k]`, answering the steps `receive` returned in the order
    it returned them (an actor of K environments is answered once for its K steps)."""

  @abc.abstractmethod
  def close(self) -> None:
    ...

  @property
  def restarts(self) -> int:
    """How many times an actor has been restarted after dying."""
    return 0

  @property
  def rejected_peers(self) -> int:
    """How many peers were dropped for speaking something other than this run's protocol (see `transport`)."""
    return 0

  def __enter__(self):
    self.start()
    return self

  def __exit__(self, *exc):
    self.close()



class ActorFailedError(RuntimeError):
  """An actor failed and cannot be replaced (budget spent, or refused); the message carries its own last error."""

  @property
  def summary(self) -> str:
    """The message's first line, without the actor's own traceback that may follow it (for a one-line report)."""
    return str(self).split('\n', 1)[0].rstrip(':').removesuffix('; its last error')


class ActorStartupError(ActorFailedError):
  """An actor process could not start (its environment, or the connection) when the pool started."""


def check_configs(configs: Sequence[ActorConfig]) -> None:
  """ValueError naming the problem if an actor configuration cannot run (for now: its number of environments)."""
  for i, cfg in enumerate(configs):
    if not isinstance(cfg.num_envs, int) or not 1 <= cfg.num_envs <= transport.MAX_STEPS_PER_FRAME:
      raise ValueError(f'actor {i}: num_envs must be an integer in 1..{transport.MAX_STEPS_PER_FRAME}, got '
                       f'{cfg.num_envs!r}')


def restart_seed(seed: int, run_id: int) -> int:
  """The environment seed of an actor's `run_id`-th process: restarted actors do not replay the episode they died
  in."""
  return seed + 1000003 * run_id


@dataclasses.dataclass
class _Slot:
  """What the pool knows about one actor: its current process (run) and connection."""
  proc: Optional[subprocess.Popen] = None
  run_id: int = 0
  sock: Optional[socket.socket] = None
  decoder: Optional[transport.FrameDecoder] = None
  launched_at: float = 0.0
  live: bool = False                      # its first STEP arrived (environment built)
  expecting: bool = False                 # a STEP of this run was received and not answered yet
  awaiting_since: Optional[float] = None  # when it was sent actions it has not answered
  last_bytes_at: float = 0.0
  stale_answers: int = 0                  # steps of dead runs handed out and not answered yet: skip that many
  last_error: str = ''                    # the actor's own text from its last ERROR frame (any run)


@dataclasses.dataclass
class _Peer:
  """A connection that has not introduced itself yet."""
  sock: socket.socket
  decoder: transport.FrameDecoder
  accepted_at: float
  name: str


_LISTENER = 'listener'
_HEALTH_INTERVAL_S = 0.1
_SEND_TIMEOUT_S = 5.0
_READ_LIMIT = 8 << 20   # bytes read from one socket per readiness event, so one peer cannot starve the others


class SocketActorPool(ActorPool):
  """One process per actor, dialling this learner's socket (see the module docstring for what happens on faults).

  Subclasses say how a process is started (`_start_process`): everything else, from the listener to the restart
  budget, is shared. `family`: 'unix' (a socket file in a private temporary directory; the default) or 'tcp'
  (`address` = (host, port), default 127.0.0.1 and a free port) for the listener; actors get the address on their
  command line and the per-run key in their environment. `actor_timeout_s` = 0 never times an actor out.
  """

  def __init__(self, configs: Sequence[ActorConfig], max_restarts: int = 100, startup_timeout: float = 180.0,
               actor_timeout_s: float = 60.0, family: str = 'unix', address=None, handshake_timeout_s: float = 10.0,
               max_frame_bytes: int = transport.MAX_FRAME_BYTES):
    if family not in ('unix', 'tcp'):
      raise ValueError(f'family: unknown value {family!r}; valid values: unix, tcp')
    if actor_timeout_s < 0:
      raise ValueError(f'actor_timeout_s: must be >= 0, got {actor_timeout_s!r}')
    check_configs(configs)
    self._configs = list(configs)
    self._max_restarts = max_restarts
    self._startup_timeout = startup_timeout
    self._actor_timeout = actor_timeout_s
    self._family = family
    self._bind_address = address
    self._handshake_timeout = handshake_timeout_s
    self._max_frame_bytes = max_frame_bytes
    self._key = secrets.token_bytes(16)
    self._slots = [_Slot() for _ in self._configs]
    self._peers: Dict[socket.socket, _Peer] = {}
    self._tmpdir: Optional[str] = None
    self._listener: Optional[socket.socket] = None
    self._selector: Optional[selectors.BaseSelector] = None
    self.address = ''              # where actors dial in, as `transport.format_address` writes it
    self._out: List[EnvStep] = []  # steps received and not handed out yet
    self._frames = compact.FrameStacker()   # every actor's frame stack (actors send only the newest frame)
    self._restarts = 0
    self._rejected = 0
    self._starting = False
    self._next_health = 0.0
    self._lock = threading.RLock()

  @property
  def num_actors(self) -> int:
    return len(self._configs)

  @property
  def restarts(self) -> int:
    return self._restarts

  @property
  def rejected_peers(self) -> int:
    return self._rejected

  @property
  def _procs(self) -> List[Optional[subprocess.Popen]]:
    return [s.proc for s in self._slots]

  def pids(self) -> List[Optional[int]]:
    return [s.proc.pid if s.proc is not None else None for s in self._slots]

  # ------------------------------------------------------------------------------------------------ lifecycle
  def start(self) -> None:
    """Launches every actor and returns once each has built its environment and sent its first step."""
    with self._lock:
      self._selector = selectors.DefaultSelector()
      self._listen()
      self._listener.setblocking(False)
      self._selector.register(self._listener, selectors.EVENT_READ, _LISTENER)
      self._starting = True
      try:
        for i in range(self.num_actors):
          self._launch(i)
        while not all(s.live for s in self._slots):
          self._pump(0.1)
      except BaseException:
        self._starting = False
        self.close()
        raise
      self._starting = False

  def close(self) -> None:
    with self._lock:
      for slot in self._slots:
        if slot.sock is not None:
          self._send(slot.sock, transport.encode_close(), timeout=0.5)
        elif slot.proc is not None and slot.proc.poll() is None:
          slot.proc.kill()   # a replacement still starting: nothing to close cleanly, nobody would tell it to stop
      deadline = time.monotonic() + 10.0
      for slot in self._slots:
        if slot.proc is None:
          continue
        try:
          slot.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
          slot.proc.kill()
          slot.proc.wait()
      for slot in self._slots:
        self._disconnect(slot)
      for peer in list(self._peers.values()):
        self._drop_peer(peer)
      if self._listener is not None:
        self._listener.close()
        self._listener = None
      if self._selector is not None:
        self._selector.close()
        self._selector = None
      if self._tmpdir is not None:
        shutil.rmtree(self._tmpdir, ignore_errors=True)
        self._tmpdir = None

  def _listen(self):
    """Opens the listener and sets `address` (what actors dial)."""
    if self._family == 'unix':
      self._tmpdir = tempfile.mkdtemp(prefix='rlcv_actors_')
      self._listener = transport.listen('unix', os.path.join(self._tmpdir, 'learner.sock'))
      self.address = transport.format_address('unix', self._listener.getsockname())
    else:
      self._listener = transport.listen('tcp', self._bind_address)
      self.address = transport.format_address('tcp', self._listener.getsockname())

  def _actor_command(self, actor_id: int, run_id: int, seed: int) -> List[str]:
    return [sys.executable, '-m', 'rlcv_tf.runtime.actor_process', '--address', self.address,
            '--actor_id', str(actor_id), '--run_id', str(run_id), '--seed', str(seed)]

  @abc.abstractmethod
  def _start_process(self, actor_id: int, command: List[str], env: Dict[str, str], config_json: str):
    """Starts `command` (an interpreter, then its arguments) with `env` added to its environment and `config_json`
    on its stdin, without waiting for it. Returns a handle with `subprocess.Popen`'s `pid`, `poll()`,
    `wait(timeout)` (raising `subprocess.TimeoutExpired`) and `kill()`; optionally `where` (' on node X', for
    messages) and `describe_exit(code, connected)` (how the run ended, in words)."""

  def _launch(self, actor_id: int):
    cfg = self._configs[actor_id]
    slot = self._slots[actor_id]
    cmd = self._actor_command(actor_id, slot.run_id, restart_seed(cfg.seed, slot.run_id))
    # The configuration travels as JSON (no pickle of arbitrary objects), the key in the environment.
    config_json = json.dumps(dataclasses.asdict(cfg), default=_json_default)
    slot.proc = self._start_process(actor_id, cmd, {transport.KEY_ENV: self._key.hex()}, config_json)
    slot.launched_at = time.monotonic()
    slot.live = slot.expecting = False
    slot.awaiting_since = None
    slot.last_bytes_at = 0.0

  # ---------------------------------------------------------------------------------------------- the interface
  def receive(self, timeout: float) -> List[EnvStep]:
    with self._lock:
      if self._selector is None:
        raise RuntimeError('the actor pool is not started (or already closed)')
      deadline = time.monotonic() + timeout
      while True:
        remaining = deadline - time.monotonic()
        self._pump(0.0 if self._out else max(0.0, min(remaining, _HEALTH_INTERVAL_S)))
        if self._out or remaining <= 0:
          out, self._out = self._out, []
          return out

  def send_actions(self, actor_ids: Sequence[int], actions) -> None:
    with self._lock:
      for k, actor_id in enumerate(actor_ids):
        slot = self._slots[actor_id]
        if slot.stale_answers:
          slot.stale_answers -= 1   # the answer to a step of a run that has died since
          continue
        if slot.sock is None or not slot.expecting:
          continue
        slot.expecting = False
        if not self._send(slot.sock, transport.encode_actions(actions[k])):
          self._fail(actor_id, 'lost its connection')
          continue
        slot.awaiting_since = time.monotonic()

  # ------------------------------------------------------------------------------------------------- internals
  def _pump(self, wait: float):
    """Waits up to `wait` s for sockets, handles what is ready, then (every 0.1 s) checks processes and clocks."""
    for key, _ in self._selector.select(wait):
      if key.data == _LISTENER:
        self._accept()
      elif isinstance(key.data, _Peer):
        if key.data.sock in self._peers:
          self._read_peer(key.data)
      elif self._slots[key.data].sock is key.fileobj:
        self._read_actor(key.data)
    now = time.monotonic()
    if now >= self._next_health:
      self._next_health = now + _HEALTH_INTERVAL_S
      self._check_health(now)

  def _accept(self):
    while True:
      try:
        sock, addr = self._listener.accept()
      except (BlockingIOError, InterruptedError):
        return
      except OSError as e:
        logging.warning('actor pool: accept failed: %s', e)
        return
      sock.setblocking(False)
      transport.tune(sock)
      name = f'{addr[0]}:{addr[1]}' if isinstance(addr, tuple) else 'a local peer'
      peer = _Peer(sock, transport.FrameDecoder(transport.MAX_HELLO_BYTES), time.monotonic(), name)
      self._peers[sock] = peer
      self._selector.register(sock, selectors.EVENT_READ, peer)

  def _reject(self, peer: _Peer, reason: str, reply: Optional[str] = None):
    """Drops a peer that is not one of this run's actors, on one log line; `reply` tells it why first."""
    self._rejected += 1
    logging.warning('actor pool: dropped %s: %s (%d rejected so far)', peer.name, reason, self._rejected)
    if reply is not None:
      self._send(peer.sock, transport.encode_error(transport.LEARNER_ID, reply), timeout=0.5)
    self._drop_peer(peer)

  def _drop_peer(self, peer: _Peer):
    self._peers.pop(peer.sock, None)
    if self._selector is not None:
      try:
        self._selector.unregister(peer.sock)
      except (KeyError, ValueError):
        pass
    peer.sock.close()

  def _read_peer(self, peer: _Peer):
    try:
      frames, eof = peer.decoder.read_from(peer.sock, _READ_LIMIT)
    except transport.ProtocolError as e:
      self._reject(peer, f'bad first frame ({e})')
      return
    if not frames:
      if eof:
        self._reject(peer, 'closed the connection before its HELLO' +
                     (f' ({peer.decoder.pending} bytes of a truncated frame)' if peer.decoder.pending else ''))
      return
    frame_type, payload = frames[0]
    if frame_type != transport.HELLO:
      self._reject(peer, f'its first frame is {transport.FRAME_NAMES.get(frame_type, frame_type)}, not HELLO')
      return
    try:
      hello = transport.decode_hello(payload)
    except transport.VersionMismatch as e:
      if e.version is None:
        self._reject(peer, str(e))
      else:
        self._reject(peer, f'refused: {e}', reply=f'{e}; run the same rlcv_tf commit on actors and learner')
      return
    except transport.ProtocolError as e:
      self._reject(peer, f'bad HELLO ({e})')
      return
    if not hmac.compare_digest(hello.key, self._key):
      self._reject(peer, 'wrong key', reply='wrong key for this run')
      return
    if not 0 <= hello.actor_id < self.num_actors:
      self._reject(peer, f'unknown actor id {hello.actor_id}', reply=f'no actor {hello.actor_id} here')
      return
    slot = self._slots[hello.actor_id]
    if hello.run_id != slot.run_id:
      # A process of an earlier run that got through before it was replaced: not a stranger, just late.
      logging.info('actor pool: closed a late connection of actor %d run %d', hello.actor_id, hello.run_id)
      self._drop_peer(peer)
      return
    if slot.sock is not None:
      self._reject(peer, f'a second connection for actor {hello.actor_id} run {hello.run_id}')
      return
    # Accepted: the connection now belongs to the actor's slot, with the limit of a connected actor.
    self._peers.pop(peer.sock)
    self._selector.modify(peer.sock, selectors.EVENT_READ, hello.actor_id)
    peer.decoder.max_bytes = self._max_frame_bytes
    slot.sock, slot.decoder = peer.sock, peer.decoder
    slot.last_bytes_at = time.monotonic()
    if not self._send(slot.sock, transport.encode_welcome()):
      self._fail(hello.actor_id, 'lost its connection during the handshake')
      return
    if frames[1:] or eof:
      self._handle_actor_frames(hello.actor_id, frames[1:], eof)

  def _read_actor(self, actor_id: int):
    slot = self._slots[actor_id]
    received = slot.decoder.received
    try:
      frames, eof = slot.decoder.read_from(slot.sock, _READ_LIMIT)
    except transport.ProtocolError as e:
      self._rejected += 1
      self._fail(actor_id, f'sent a bad frame ({e})')
      return
    if slot.decoder.received != received:
      slot.last_bytes_at = time.monotonic()
    self._handle_actor_frames(actor_id, frames, eof)

  def _handle_actor_frames(self, actor_id: int, frames, eof: bool):
    slot = self._slots[actor_id]
    run_id = slot.run_id
    for frame_type, payload in frames:
      if frame_type == transport.STEP:
        try:
          s = transport.decode_step(payload)
          observation = self._frames.observation(actor_id, run_id, s)   # the stack, rebuilt from the newest frame
        except transport.ProtocolError as e:
          self._rejected += 1
          self._fail(actor_id, f'sent a bad frame ({e})')
          return
        if self._configs[actor_id].num_envs != 1:
          self._rejected += 1
          self._fail(actor_id, f'sent a STEP frame, but it steps {self._configs[actor_id].num_envs} environments '
                               '(a STEPS frame expected)')
          return
        slot.live, slot.expecting, slot.awaiting_since = True, True, None
        self._out.append(EnvStep(actor_id, run_id, observation, s.reward, s.done, s.agent_positions, s.episode,
                                 s.discount, s.truncated))
      elif frame_type == transport.STEPS:
        num_envs = self._configs[actor_id].num_envs
        try:
          steps = transport.decode_steps(payload)
          if len(steps) != num_envs:
            raise transport.ProtocolError(f'STEPS frame of {len(steps)} steps from an actor of {num_envs} '
                                          'environments')
          # One frame stack per environment of the actor.
          observations = [self._frames.observation((actor_id, k), run_id, s) for k, s in enumerate(steps)]
        except transport.ProtocolError as e:
          self._rejected += 1
          self._fail(actor_id, f'sent a bad frame ({e})')
          return
        slot.live, slot.expecting, slot.awaiting_since = True, True, None
        self._out.extend(EnvStep(actor_id, run_id, o, s.reward, s.done, s.agent_positions, s.episode, s.discount,
                                 s.truncated, k) for k, (o, s) in enumerate(zip(observations, steps)))
      elif frame_type == transport.ERROR:
        try:
          text = transport.decode_error(payload)[1]
        except transport.ProtocolError:
          text = '(unreadable error frame)'
        slot.last_error = text
        what = 'failed' if slot.live else 'could not start its environment'
        self._fail(actor_id, f'{what}: {_last_line(text)}')
        return
      else:
        self._rejected += 1
        self._fail(actor_id, f'sent an unexpected {transport.FRAME_NAMES.get(frame_type, frame_type)} frame')
        return
    if eof:
      self._fail(actor_id, self._exit_reason(slot, wait_s=0.2) +
                 (' in the middle of a frame' if slot.decoder.pending else ''))

  @staticmethod
  def _exit_reason(slot: _Slot, wait_s: float) -> str:
    try:
      code = slot.proc.wait(timeout=wait_s)
    except subprocess.TimeoutExpired:
      return 'closed its connection'
    return _exit_text(slot.proc, code, connected=True)

  def _check_health(self, now: float):
    for actor_id, slot in enumerate(self._slots):
      if slot.proc is None:
        continue
      code = slot.proc.poll()
      if code is not None:
        if slot.sock is not None:
          proc = slot.proc
          self._read_actor(actor_id)   # its last words (an ERROR frame) and the end of its connection
          if slot.proc is not proc:
            continue
        if code == transport.EXIT_REFUSED:
          words = getattr(slot.proc, 'last_words', '') or 'see its line above'
          raise ActorFailedError(f'{self._name(actor_id)} was refused by this learner ({words}) and exited; not '
                                 'restarting it, the same code would be refused again')
        self._fail(actor_id, _exit_text(slot.proc, code, connected=slot.sock is not None))
      elif not slot.live and now - slot.launched_at > self._startup_timeout:
        self._fail(actor_id, f'did not start within {self._startup_timeout:g} s')
      elif slot.awaiting_since is not None and self._actor_timeout > 0 and \
          now - max(slot.awaiting_since, slot.last_bytes_at) > self._actor_timeout:
        self._fail(actor_id, f'did not answer its actions within actor_timeout_s={self._actor_timeout:g} s')
    for peer in list(self._peers.values()):
      if now - peer.accepted_at > self._handshake_timeout:
        self._reject(peer, f'no HELLO within {self._handshake_timeout:g} s')

  def _fail(self, actor_id: int, reason: str):
    """Actor `actor_id`'s current run is over: replace it, or raise if that is not allowed."""
    slot = self._slots[actor_id]
    name = self._name(actor_id)
    if self._starting:
      if slot.last_error:
        raise ActorStartupError(f'{name} could not start its environment: {slot.last_error}')
      raise ActorStartupError(f'{name} {reason}')
    self._retire(actor_id)
    if self._restarts >= self._max_restarts:
      last = f'; its last error:\n{slot.last_error}' if slot.last_error else ''
      raise ActorFailedError(f'{name} {reason}, and the restart budget of {self._max_restarts} is '
                             f'spent; giving up{last}')
    self._restarts += 1
    logging.warning('%s %s; restarting it (restart %d of %d)', name, reason, self._restarts, self._max_restarts)
    slot.run_id += 1
    self._launch(actor_id)

  def _name(self, actor_id: int) -> str:
    """'actor 3', and where its current run is placed if the pool knows ('actor 3 on node 10.0.0.7 (...)')."""
    return f'actor {actor_id}{getattr(self._slots[actor_id].proc, "where", "")}'

  def _retire(self, actor_id: int):
    """Kills actor `actor_id`'s current process and forgets its connection and the steps it has not had answered."""
    slot = self._slots[actor_id]
    if slot.proc is not None:
      if slot.proc.poll() is None:
        slot.proc.kill()
      slot.proc.wait()
    self._disconnect(slot)
    kept = [s for s in self._out if s.actor_id != actor_id]
    if slot.expecting and len(kept) == len(self._out):
      slot.stale_answers += 1   # its last step was handed out: the caller will still answer it
    self._out = kept
    slot.live = slot.expecting = False
    slot.awaiting_since = None

  def _disconnect(self, slot: _Slot):
    if slot.sock is None:
      return
    if self._selector is not None:
      try:
        self._selector.unregister(slot.sock)
      except (KeyError, ValueError):
        pass
    slot.sock.close()
    slot.sock = slot.decoder = None

  @staticmethod
  def _send(sock: socket.socket, data: bytes, timeout: float = _SEND_TIMEOUT_S) -> bool:
    """Writes all of `data` to a non-blocking socket within `timeout` s; False if the peer is gone or stuck."""
    view = memoryview(data)
    deadline = time.monotonic() + timeout
    while view:
      try:
        view = view[sock.send(view):]
      except (BlockingIOError, InterruptedError):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
          return False
        with selectors.DefaultSelector() as sel:
          sel.register(sock, selectors.EVENT_WRITE)
          sel.select(remaining)
      except OSError:
        return False
    return True


class LocalActorPool(SocketActorPool):
  """One OS process per actor on this machine, started with `subprocess` (the embedded default)."""

  def _start_process(self, actor_id: int, command: List[str], env: Dict[str, str],
                     config_json: str) -> subprocess.Popen:
    proc = subprocess.Popen(command, env=process_environment(env), stdin=subprocess.PIPE)
    try:
      proc.stdin.write(config_json.encode())
      proc.stdin.close()
    except BrokenPipeError:
      pass  # it died at once: the health check sees the exit code (the pipe closes with the Popen object)
    return proc


def process_environment(extra: Dict[str, str]) -> Dict[str, str]:
  """The environment of an actor process: this process's, plus `extra`. Actors must not grab every core for
  BLAS/OpenMP: the learner needs them (or, on an actor machine, the other actors)."""
  env = dict(os.environ, **extra)
  env.setdefault('OMP_NUM_THREADS', '1')
  env.setdefault('OPENBLAS_NUM_THREADS', '1')
  return env


def _exit_text(proc, code: int, connected: bool) -> str:
  """How an actor's run ended, in words: the handle's own account if it has one (a Ray actor that died with its
  node), else its exit code."""
  describe = getattr(proc, 'describe_exit', None)
  if describe is not None:
    return describe(code, connected)
  return f'exited with code {code}' + ('' if connected else ' before connecting')


def _last_line(text: str) -> str:
  lines = [l for l in text.strip().splitlines() if l.strip()]
  return lines[-1].strip() if lines else '(no text)'


def _json_default(o):
  if isinstance(o, (tuple, list)):
    return list(o)
  if isinstance(o, np.generic):
    return o.item()
  raise TypeError(f'actor configuration value {o!r} is not JSON-serialisable')
