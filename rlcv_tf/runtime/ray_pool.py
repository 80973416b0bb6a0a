"""Actors on a Ray cluster (`--backend=ray`): one Ray actor per rlcv_tf actor, spread over the cluster's nodes.

Each Ray actor (`_ActorHost`) runs the same actor process as `actors.LocalActorPool`, `python -m
rlcv_tf.runtime.actor_process` with the node's own interpreter, and that process dials the learner over TCP with the
same protocol and per-run key. Ray places, watches and stops actors; it never carries steps. Only plain data goes
through Ray's pickling: the actor's command-line arguments, its JSON configuration and the key on the way out; node
id, address, host name, pid, exit code and the actor's last stderr line on the way back. Inference stays central and
batched over every node (SEED RL), and the learner cannot tell these actors from local ones.

Everything but the starting of processes is `actors.SocketActorPool`'s: the handshake, receive, actor timeouts, and
the restart rule and budget. A Ray actor that dies (its worker killed, its node lost) ends that run like a process
that exits: the pool asks Ray for a new actor, which Ray places on a live node, and that run gets the next run id
(the learner drops the dead run's partial unroll). Ray's own actor restarts are off: they would replay a run id.

Ray is imported only when a pool starts or `preflight` runs, so `--backend=local` never loads it.

  ray_address=''          a private Ray for this run on 127.0.0.1 (Ray's single-node mode: every Ray process
                          listens on the loopback only; no dashboard; a per-run token), stopped at close
  ray_address='HOST:PORT' the cluster whose head is there (`ray start --head --port=PORT`), within 30 s
"""

import collections
import logging
import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from rlcv_tf.runtime import actor_process
from rlcv_tf.runtime import actors
from rlcv_tf.runtime import transport

RAY_REQUIREMENT = 'ray==2.60.0'   # also in setup.cfg's `ray` extra (scripts/setup.sh installs it)
CONNECT_TIMEOUT_S = 25.0   # unreachable --ray_address: one line within 30 s of the launch
NODE_CHECK_TIMEOUT_S = 120.0
_SINGLE_NODE_ENV = 'RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER'   # '0': Ray's one-machine mode, every address 127.0.0.1
_AUTH_ENV = ('RAY_AUTH_MODE', 'RAY_AUTH_TOKEN')
_PRIVATE_OBJECT_STORE_BYTES = 100 << 20   # actors put nothing there
_TAIL_LINES = 20


class RayError(RuntimeError):
  """Ray is missing, unreachable or cannot host the actors: one line that names the fix (the launcher prints it and
  exits with status 2)."""


# ------------------------------------------------------------------------------------------------- connecting
def import_ray():
  """The `ray` module, or RayError with the command that installs it."""
  try:
    import ray  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise RayError(f'--backend=ray needs Ray, which is not installed in this Python environment ({e}); install it '
                   f'with `bash scripts/setup.sh` or `{sys.executable} -m pip install "{RAY_REQUIREMENT}"`') from None
  return ray


_private_env: Optional[Dict[str, Optional[str]]] = None   # what a private Ray changed in os.environ, to restore


def connect(address: str, num_cpus: int = 0, timeout_s: float = CONNECT_TIMEOUT_S) -> bool:
  """Makes this process a Ray driver: of a private Ray on 127.0.0.1 with `num_cpus` logical CPUs (`address` empty),
  or of the cluster at `address` (HOST:PORT). Returns True if this call connected (the caller disconnects), False if
  this process already was a driver."""
  if not address:
    global _private_env
    imported = 'ray' in sys.modules
    if imported and import_ray().is_initialized():
      return False
    # Set before Ray is imported, if it is not yet: Ray reads these once, at import.
    saved = {k: os.environ.get(k) for k in (_SINGLE_NODE_ENV,) + _AUTH_ENV}
    os.environ[_SINGLE_NODE_ENV] = '0'
    if 'RAY_AUTH_MODE' not in os.environ:
      # Ray's token authentication, with a token of this run's only (Ray would otherwise write ~/.ray/auth_token).
      os.environ['RAY_AUTH_MODE'] = 'token'
      os.environ['RAY_AUTH_TOKEN'] = secrets.token_hex(32)
    _private_env = saved
    ray = import_ray()
    if imported:
      _reread_settings(ray)
    try:
      # address='local': a new Ray, even if this machine runs another one (`ray start`), which ray.init() would join.
      ray.init(address='local', num_cpus=max(1, num_cpus), include_dashboard=False, log_to_driver=False,
               logging_level=logging.ERROR, object_store_memory=_PRIVATE_OBJECT_STORE_BYTES)
    except BaseException:
      _restore_private_env(ray)
      raise
    return True
  ray = import_ray()
  if ray.is_initialized():
    return False
  _connect_to_cluster(ray, address, timeout_s)
  return True


def disconnect():
  """Ends this driver's connection (and a private Ray with it)."""
  ray = import_ray()
  ray.shutdown()
  _restore_private_env(ray)


def _reread_settings(ray):
  """Makes a Ray imported before `os.environ` changed see the single-node flag and the authentication settings
  (both are read once, at import: the module constant and the core's configuration)."""
  constants = getattr(getattr(ray, '_private', None), 'ray_constants', None)
  if constants is not None and hasattr(constants, 'ENABLE_RAY_CLUSTER'):
    flag = os.environ.get(_SINGLE_NODE_ENV)
    constants.ENABLE_RAY_CLUSTER = (flag.lower() in ('1', 'true') if flag is not None else
                                    not getattr(constants, 'IS_WINDOWS_OR_OSX', False))
  try:
    from ray._raylet import AuthenticationTokenLoader  # pylint: disable=g-import-not-at-top
    from ray._raylet import Config  # pylint: disable=g-import-not-at-top
    Config.initialize('')
    AuthenticationTokenLoader.instance().reset_cache()
  except (ImportError, AttributeError):
    pass


def _restore_private_env(ray):
  global _private_env
  if _private_env is None:
    return
  for k, v in _private_env.items():
    if v is None:
      os.environ.pop(k, None)
    else:
      os.environ[k] = v
  _private_env = None
  _reread_settings(ray)


def parse_ray_address(address: str) -> Tuple[str, int]:
  """'HOST:PORT' of a Ray head -> (host, port); RayError naming the expected form otherwise."""
  if address.startswith('ray://'):
    raise RayError(f'--ray_address={address}: Ray Client addresses are not supported; run the learner on the head '
                   'machine (where `ray start --head` ran) and give --ray_address=HEAD_IP:PORT')
  host, _, port = address.rpartition(':')
  host = host[1:-1] if host.startswith('[') and host.endswith(']') else host
  if not host or not port.isdigit() or not 0 < int(port) < 65536:
    raise RayError(f'--ray_address={address}: expected HOST:PORT of a Ray head, e.g. 10.0.0.1:6379')
  return host, int(port)


def _unreachable(address: str, why: str) -> str:
  port = address.rpartition(':')[2]
  return (f'--ray_address={address}: no Ray cluster answered there ({why}); start one on the head machine with '
          f'`ray start --head --port={port} --num-cpus=0` (and `ray start --address={address}` on each actor '
          'machine), or leave --ray_address empty for a private Ray on this machine')


def _connect_to_cluster(ray, address: str, timeout_s: float):
  host, port = parse_ray_address(address)
  deadline = time.monotonic() + timeout_s
  try:
    # Ray dials what it makes of the address (a name of this machine becomes its node IP): probe the same.
    target = ray._private.services.canonicalize_bootstrap_address(address)  # pylint: disable=protected-access
    target_host, _, target_port = target.rpartition(':')
    target = (target_host.strip('[]'), int(target_port))
  except Exception:  # pylint: disable=broad-except
    target = (host, port)
  try:
    socket.create_connection(target, timeout=min(10.0, timeout_s)).close()
  except OSError as e:
    raise RayError(_unreachable(address, f'{target[0]}:{target[1]}: {e.strerror or e}')) from None
  outcome: Dict[str, BaseException] = {}
  done = threading.Event()

  def attempt():
    try:
      ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
    except BaseException as e:  # pylint: disable=broad-except
      outcome['error'] = e
    finally:
      done.set()

  # Ray's core prints a warning every few seconds while it retries: keep this console to one line.
  with _stderr_silenced() as silenced:
    threading.Thread(target=attempt, name='ray-connect', daemon=True).start()
    done.wait(max(0.0, deadline - time.monotonic()))
    if not done.is_set():
      silenced.keep()   # the attempt goes on in the background, and its core keeps writing to fd 2
      raise RayError(_unreachable(address, f'the port is open, but no Ray head answered within {timeout_s:g} s'))
  error = outcome.get('error')
  if error is not None:
    text = _first_line(str(error)) or type(error).__name__
    if 'uthenticat' in text or 'token' in text.lower():
      raise RayError(f'--ray_address={address}: the cluster asks for its Ray authentication token; copy '
                     '~/.ray/auth_token from the head machine (`ray get-auth-token` prints it) or set RAY_AUTH_TOKEN')
    raise RayError(_unreachable(address, f'{type(error).__name__}: {text}'))


class _stderr_silenced:
  """Points file descriptor 2 at /dev/null for a while (Ray's C++ core writes there directly). `keep()` leaves it
  there for good and gives `sys.stderr` (this process's own lines) the real stderr instead."""

  def __enter__(self):
    sys.stderr.flush()
    self._saved = os.dup(2)
    self._kept = False
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    return self

  def keep(self):
    self._kept = True

  def __exit__(self, *exc):
    sys.stderr.flush()
    if self._kept:
      sys.stderr = os.fdopen(self._saved, 'w', buffering=1)
    else:
      os.dup2(self._saved, 2)
      os.close(self._saved)


# ------------------------------------------------------------------------------------------------- pre-flight
def preflight(address: str, env_name: str, num_actors: int, actor_cpus: float = 1.0):
  """What the launcher checks before TensorFlow loads: Ray is installed; for a cluster (`address`), that it answers
  within 30 s, has a free CPU for every actor and can build `env_name` on every node that may host actors. Raises
  RayError. Leaves this process connected to the cluster (the pool then uses that connection)."""
  ray = import_ray()
  if not address:
    return   # a private Ray on this machine: the launcher checks the environment here
  connect(address)
  check_capacity(address, num_actors, actor_cpus)
  check_nodes(env_name)


def actor_nodes(ray) -> List[Dict[str, Any]]:
  """The alive nodes that offer CPUs (those that can host actors)."""
  return [n for n in ray.nodes() if n.get('Alive') and n.get('Resources', {}).get('CPU', 0) > 0]


def check_capacity(address: str, num_actors: int, actor_cpus: float = 1.0):
  """RayError unless the cluster has a free CPU (`actor_cpus`) for every actor."""
  ray = import_ray()
  needed = num_actors * actor_cpus
  free = ray.available_resources().get('CPU', 0.0)
  if free >= needed:
    return
  nodes = actor_nodes(ray)
  where = f'the Ray cluster at {address}' if address else 'the private Ray'
  if not nodes:
    raise RayError(f'--num_actors={num_actors}: no actor machine has joined {where} yet (nodes with CPUs: none); '
                   f'run `ray start --address={address or "HEAD:PORT"}` on each actor machine')
  raise RayError(f'--num_actors={num_actors}: {where} has {free:g} free CPUs on {len(nodes)} actor node'
                 f'{"s" if len(nodes) != 1 else ""} and each actor takes {actor_cpus:g}; join more machines with '
                 f'`ray start --address={address or "HEAD:PORT"}` or lower --num_actors')


def _check_environment(env_name: str) -> Dict[str, str]:
  """Runs on a node: can it build `env_name`? ('' if so, else why), with the node's name."""
  import ray  # pylint: disable=g-import-not-at-top
  from rlcv_tf.envs import base  # pylint: disable=g-import-not-at-top
  from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
  problem = ''
  try:
    registry.check_available(env_name)
  except base.EnvironmentUnavailableError as e:
    problem = str(e)
  return {'problem': problem, 'node_id': ray.get_runtime_context().get_node_id(),
          'ip': ray.util.get_node_ip_address(), 'host': socket.gethostname()}


def check_nodes(env_name: str, timeout_s: float = NODE_CHECK_TIMEOUT_S):
  """RayError naming the first node that cannot build `env_name` (its engine, or rlcv_tf itself, is missing)."""
  ray = import_ray()
  from ray.util import scheduling_strategies  # pylint: disable=g-import-not-at-top
  check = ray.remote(num_cpus=0, max_retries=0)(_check_environment)
  pending = {}
  for node in actor_nodes(ray):
    strategy = scheduling_strategies.NodeAffinitySchedulingStrategy(node['NodeID'], soft=False)
    pending[check.options(scheduling_strategy=strategy).remote(env_name)] = node
  ready, not_ready = ray.wait(list(pending), num_returns=len(pending), timeout=timeout_s)
  for ref in ready:
    node = pending[ref]
    name = _node_name(node['NodeManagerAddress'], node.get('NodeManagerHostname', ''), node['NodeID'])
    try:
      answer = ray.get(ref)
    except ray.exceptions.RayError as e:
      raise RayError(f'rlcv_tf cannot run on Ray node {name}: {_ray_reason(e)}; run `bash scripts/setup.sh` on '
                     'that machine, at the same commit as the learner\'s') from None
    if answer['problem']:
      fix = '' if 'scripts/setup.sh' in answer['problem'] else '; set up that machine with `bash scripts/setup.sh`'
      raise RayError(f'--env={env_name} cannot run on Ray node {name}: {answer["problem"]}{fix} (every node at the '
                     'learner\'s commit)')
  if not_ready:
    names = ', '.join(_node_name(pending[r]['NodeManagerAddress'], '', pending[r]['NodeID']) for r in not_ready)
    raise RayError(f'Ray node{"s" if len(not_ready) > 1 else ""} {names} did not run a {timeout_s:g} s check of '
                   f'--env={env_name}; see `ray status` on the head machine')


def _node_name(ip: str, host: str, node_id: str) -> str:
  return f'{ip} ({"host " + host + ", " if host else ""}node id {node_id[:8]})'


# ----------------------------------------------------------------------------------------------- the Ray actor
class _ActorHost:
  """A Ray actor that hosts one run of one rlcv_tf actor: the process `LocalActorPool` would start, on this node.

  Methods take and return plain data only (strings, numbers, lists and dicts of them)."""

  def describe(self) -> Dict[str, Any]:
    import ray  # pylint: disable=g-import-not-at-top
    return {'node_id': ray.get_runtime_context().get_node_id(), 'ip': ray.util.get_node_ip_address(),
            'host': socket.gethostname(), 'pid': os.getpid()}

  def run(self, args: List[str], env: Dict[str, str], config_json: str) -> Dict[str, Any]:
    """Runs `python args...` (this node's interpreter) to its end; its stderr goes to this worker's log, and the
    last line of it comes back with the exit code."""
    env = actors.process_environment(dict(env, **{actor_process.PARENT_PID_ENV: str(os.getpid())}))
    proc = subprocess.Popen([sys.executable] + list(args), env=env, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    tail = collections.deque(maxlen=_TAIL_LINES)

    def pump():
      for line in iter(proc.stderr.readline, b''):
        text = line.decode(errors='replace')
        tail.append(text)
        sys.stderr.write(text)
      sys.stderr.flush()

    reader = threading.Thread(target=pump, name='actor-stderr', daemon=True)
    reader.start()
    try:
      proc.stdin.write(config_json.encode())
      proc.stdin.close()
    except BrokenPipeError:
      pass
    code = proc.wait()
    reader.join(timeout=5.0)
    return {'code': code, 'words': actors._last_line(''.join(tail)) if tail else ''}  # pylint: disable=protected-access


def _is_plain(value) -> bool:
  if value is None or isinstance(value, (str, int, float, bool)):
    return True
  if isinstance(value, (list, tuple)):
    return all(_is_plain(v) for v in value)
  if isinstance(value, dict):
    return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
  return False


def _ray_reason(error: BaseException) -> str:
  """Ray's account of an actor's or task's death on one line (its messages run over several, with ids)."""
  lines = [l.strip() for l in str(error).splitlines() if l.strip()]
  keep = [l for l in lines if not l.split(':', 1)[0] in ('class_name', 'actor_id', 'pid', 'namespace', 'ip',
                                                           'name', 'task_id', 'job_id')]
  text = ' '.join(keep[-2:]) if keep else type(error).__name__
  text = text.split(' Some common causes include')[0]   # Ray's generic advice (OOM killer, ray stop, ...)
  return text if len(text) <= 300 else text[:297] + '...'


class _RayRun:
  """One run of one actor inside a Ray actor: what `subprocess.Popen` is to `LocalActorPool` (the handle
  `SocketActorPool._start_process` returns). `done_hint` is set by the pool's batched poll of every run."""

  def __init__(self, ray, host, args: List[str], env: Dict[str, str], config_json: str):
    if not _is_plain((args, env, config_json)):
      raise TypeError('only plain data (strings, numbers, lists and dicts of them) may travel to a Ray actor')
    self._ray = ray
    self._host = host
    self._info_ref = host.describe.remote()
    self.run_ref = host.run.remote(list(args), dict(env), config_json)
    self._info: Optional[Dict[str, Any]] = None
    self.returncode: Optional[int] = None
    self.last_words = ''   # the last stderr line of the actor process
    self._death = ''       # Ray's account, if the Ray actor died
    self._killed = False
    self._released = False
    self.done_hint = True  # poll() asks Ray itself until the pool batches

  # ------------------------------------------------------------------------------------------- where it runs
  def info(self, timeout: float = 0.0) -> Dict[str, Any]:
    if self._info is None:
      ready, _ = self._ray.wait([self._info_ref], timeout=timeout)
      if ready:
        try:
          self._info = self._ray.get(self._info_ref)
        except self._ray.exceptions.RayError:
          self._info = {}
    return self._info or {}

  @property
  def pid(self) -> Optional[int]:
    return self.info().get('pid')

  @property
  def node_id(self) -> Optional[str]:
    return self.info().get('node_id')

  @property
  def where(self) -> str:
    info = self.info()
    if not info:
      return '' if self._info is not None else ' (not placed on a Ray node yet)'
    return f' on Ray node {_node_name(info["ip"], info["host"], info["node_id"])}'

  # --------------------------------------------------------------------------------------- Popen's interface
  def poll(self) -> Optional[int]:
    if self.returncode is None and self.done_hint:
      ready, _ = self._ray.wait([self.run_ref], timeout=0)
      if ready:
        self._finish()
    return self.returncode

  def wait(self, timeout: Optional[float] = None) -> int:
    if self.returncode is None:
      if self._killed:
        self.returncode = -signal.SIGKILL   # killed by the pool: nothing to wait for (Ray reaps it)
      else:
        ready, _ = self._ray.wait([self.run_ref], timeout=timeout)
        if not ready:
          raise subprocess.TimeoutExpired(f'Ray actor{self.where}', timeout)
        self._finish()
    return self.returncode

  def kill(self):
    self._killed = True
    self.release()

  def release(self):
    """Ends the Ray actor (and its CPU reservation); its process dies with it."""
    if not self._released:
      self._released = True
      try:
        self._ray.kill(self._host, no_restart=True)
      except Exception:  # pylint: disable=broad-except
        pass   # already gone with its node

  def describe_exit(self, code: int, connected: bool) -> str:
    when = '' if connected else ' before connecting'
    if self._death:
      return f'lost its Ray actor{when} ({self._death})'
    return f'exited with code {code}{when}' + (f': {self.last_words}' if self.last_words else '')

  def _finish(self):
    self.info(timeout=1.0)   # where it ran, for the messages (resolved long before, unless it never started)
    try:
      result = self._ray.get(self.run_ref)
      self.returncode = int(result['code'])
      self.last_words = str(result['words'])
    except self._ray.exceptions.RayError as e:
      self._death = _ray_reason(e)
      self.returncode = -signal.SIGKILL
    self.release()


# -------------------------------------------------------------------------------------------------- the pool
class RayActorPool(actors.SocketActorPool):
  """`SocketActorPool` with each actor's process in a Ray actor, spread over the cluster (see the module docstring).

  `ray_address`: '' (a private Ray on 127.0.0.1, stopped at close) or HOST:PORT of a cluster's head.
  `learner_host` / `learner_port`: where the learner listens (and actors dial); a wildcard host (0.0.0.0) listens
  everywhere and tells actors this node's Ray address. `actor_cpus`: the CPUs Ray reserves for each actor, so
  actors go to machines that offer CPUs (a head started with --num-cpus=0 hosts none). Other arguments as
  `SocketActorPool`.
  """

  def __init__(self, configs: Sequence[actors.ActorConfig], ray_address: str = '', learner_host: str = '127.0.0.1',
               learner_port: int = 0, actor_cpus: float = 1.0, **kwargs):
    super().__init__(configs, family='tcp', address=(learner_host, learner_port), **kwargs)
    self._ray_address = ray_address
    self._actor_cpus = actor_cpus
    self._ray = None
    self._owns_ray = False
    self._host_class = None
    self._runs: List[_RayRun] = []   # every run started, released at close

  def start(self) -> None:
    self._ray = import_ray()
    needed = math.ceil(self.num_actors * self._actor_cpus)
    self._owns_ray = connect(self._ray_address, num_cpus=max(os.cpu_count() or 1, needed))
    try:
      check_capacity(self._ray_address, self.num_actors, self._actor_cpus)
    except RayError as e:
      self.close()
      raise actors.ActorStartupError(str(e)) from None
    self._host_class = self._ray.remote(_ActorHost).options(
        num_cpus=self._actor_cpus, scheduling_strategy='SPREAD', max_restarts=0, max_task_retries=0)
    super().start()

  def close(self) -> None:
    try:
      super().close()
    finally:
      for run in self._runs:
        run.release()
      if self._owns_ray:
        self._owns_ray = False
        disconnect()

  def node_ids(self) -> List[Optional[str]]:
    """The Ray node id of each actor's current run (None until Ray has placed it)."""
    return [s.proc.node_id if s.proc is not None else None for s in self._slots]

  def _listen(self):
    super()._listen()
    host, port = self._listener.getsockname()[:2]
    if host in ('0.0.0.0', '::'):
      host = self._ray.util.get_node_ip_address()   # listening everywhere: actors dial this node's address
      self.address = transport.format_address('tcp', (host, port))

  def _start_process(self, actor_id: int, command: List[str], env: Dict[str, str], config_json: str) -> _RayRun:
    run = _RayRun(self._ray, self._host_class.remote(), command[1:], env, config_json)
    self._runs.append(run)
    return run

  def _check_health(self, now: float):
    # One Ray call for every run instead of one per actor: poll() then answers from `done_hint`.
    runs = [s.proc for s in self._slots if s.proc is not None and s.proc.returncode is None]
    if runs:
      ready, _ = self._ray.wait([r.run_ref for r in runs], num_returns=len(runs), timeout=0)
      ready = set(ready)
      for r in runs:
        r.done_hint = r.run_ref in ready
    super()._check_health(now)


def _first_line(text: str) -> str:
  return next((l.strip() for l in text.splitlines() if l.strip()), '')
