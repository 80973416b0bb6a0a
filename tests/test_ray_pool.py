"""--backend=ray (`ray_pool.RayActorPool`) on a real Ray, every Ray process on 127.0.0.1, and its bad input.

Not run in parallel with each other: the Bazel target is exclusive and every test that starts Ray holds a file lock.
Each test is bounded (pytest-timeout, and every wait has its own deadline); clusters are stopped by the pids of their
own processes, never by name, so other Ray instances on the machine are left alone (`ray stop` would stop them all).

Cheap (the fast phase): the bad-input lines that need no cluster, `--backend=local` never importing Ray, and one pool
on a private Ray (a crash restarted with the node named, every Ray socket on the loopback, nothing left after close).
Slow: two Ray nodes on one machine (ray.cluster_utils.Cluster in this process, Ray's single-node mode keeping every
address on 127.0.0.1) training mini_5v5_small with inference batches mixing both nodes; a Ray worker SIGKILLed
mid-run; a node removed mid-run; the faults' one-line messages; the README recipe (`ray start` on the command line,
inside a network and PID namespace of its own: only a loopback there, and `ray stop` sees only its processes); one
run on real GRF.
"""

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import types

import numpy as np
import psutil
import pytest

from rlcv_tf.runtime import actors
from rlcv_tf.runtime import transport

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCK_PATH = os.path.join(tempfile.gettempdir(), 'rlcv_tf_ray_tests.lock')
STORE_BYTES = 80 << 20
SEED = 5
SMALL_NET = dict(stack_channels=((8, 1), (8, 1)), feature_dim=32)


# ------------------------------------------------------------------------------------------------------- helpers
_lock_depth = [0]


@contextlib.contextmanager
def _ray_lock():
  """One Ray test at a time on this machine (another pytest process, or Bazel running targets side by side);
  re-entrant in this process (the cluster fixture holds it while its tests run)."""
  if _lock_depth[0]:
    _lock_depth[0] += 1
    try:
      yield
    finally:
      _lock_depth[0] -= 1
    return
  with open(LOCK_PATH, 'w') as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    _lock_depth[0] = 1
    try:
      yield
    finally:
      _lock_depth[0] = 0
      fcntl.flock(f, fcntl.LOCK_UN)


def _live(pids):
  """The pids in `pids` that are still running (zombies waiting for a parent that does not reap them are not)."""
  out = []
  for pid in pids:
    try:
      if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        out.append(pid)
    except psutil.NoSuchProcess:
      pass
  return out


def _descendants():
  return {p.pid for p in psutil.Process().children(recursive=True)}


def _wait_gone(pids, timeout_s=20.0):
  deadline = time.monotonic() + timeout_s
  while _live(pids) and time.monotonic() < deadline:
    time.sleep(0.2)
  return _live(pids)


def _kill(pids):
  for pid in _live(pids):
    with contextlib.suppress(psutil.NoSuchProcess):
      psutil.Process(pid).kill()


def _describe(pids):
  out = []
  for pid in _live(pids):
    with contextlib.suppress(psutil.NoSuchProcess):
      out.append(f'{pid} {" ".join(psutil.Process(pid).cmdline())[:100]}')
  return out


def _connections(pid):
  try:
    return psutil.Process(pid).net_connections(kind='inet')
  except (psutil.NoSuchProcess, psutil.AccessDenied):
    return []


def _scripted(n=2, faulty=None, **common):
  """`n` test_scripted actors (actor 0 with `faulty` kwargs), one stacked frame each."""
  return [actors.ActorConfig('test_scripted', dict(common, **(faulty or {})) if i == 0 else dict(common),
                             seed=SEED + 100 * i, num_frames=1) for i in range(n)]


def _pump(pool, until, timeout_s=90.0, events=None):
  """Steps every actor that reports (action 1 for every agent) until `until()`; keeps (actor, run) per step."""
  events = [] if events is None else events
  deadline = time.monotonic() + timeout_s
  while not until():
    assert time.monotonic() < deadline, f'timed out; last steps {events[-5:]}, restarts {pool.restarts}'
    got = pool.receive(0.05)
    events += [(s.actor_id, s.run_id) for s in got]
    if got:
      pool.send_actions([s.actor_id for s in got], np.ones((len(got),) + got[0].reward.shape, np.int32))
  return events


def _launcher(*flags, env=None, timeout=300):
  return subprocess.run([sys.executable, '-m', 'launchers.marl', *flags], cwd=ROOT, capture_output=True, text=True,
                        timeout=timeout, env=env)


def _one_error_line(proc):
  assert proc.returncode == 2, (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])
  assert 'Traceback' not in proc.stderr, proc.stderr
  lines = [l for l in proc.stderr.splitlines() if l.strip()]
  assert len(lines) == 1, proc.stderr
  assert lines[0].startswith('error: ')
  return lines[0]


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _no_tensorflow_env(tmp_path, fake_ray=False):
  """An environment in which importing TensorFlow fails loudly (so a line printed before it loads is proven so),
  and, with `fake_ray`, Ray looks uninstalled."""
  fakes = tmp_path / ('fakes_no_ray' if fake_ray else 'fakes')
  (fakes / 'tensorflow').mkdir(parents=True, exist_ok=True)
  (fakes / 'tensorflow' / '__init__.py').write_text('raise SystemExit("tensorflow was imported")\n')
  if fake_ray:
    (fakes / 'ray').mkdir(exist_ok=True)
    (fakes / 'ray' / '__init__.py').write_text('raise ModuleNotFoundError("No module named \'ray\'", name="ray")\n')
  env = dict(os.environ)
  env['PYTHONPATH'] = os.pathsep.join([str(fakes), ROOT] + [p for p in [env.get('PYTHONPATH')] if p])
  return env


@pytest.fixture(scope='module')
def ray_env():
  """This process as a Ray driver: Ray's single-node mode (every address 127.0.0.1) and a token of the tests' own."""
  ray = pytest.importorskip('ray')
  from rlcv_tf.runtime import ray_pool
  saved = {k: os.environ.get(k) for k in ('RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER', 'RAY_AUTH_MODE', 'RAY_AUTH_TOKEN')}
  os.environ.update({'RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER': '0', 'RAY_AUTH_MODE': 'token',
                     'RAY_AUTH_TOKEN': secrets.token_hex(32)})
  ray_pool._reread_settings(ray)  # pylint: disable=protected-access
  try:
    yield ray
  finally:
    for k, v in saved.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v
    ray_pool._reread_settings(ray)  # pylint: disable=protected-access


@pytest.fixture(scope='module')
def cluster(ray_env):
  """Three Ray nodes on 127.0.0.1: a head with no CPUs (the learner's machine, as in the README recipe) and two
  actor nodes, B and C (8 logical CPUs each); this process is the driver."""
  ray = ray_env
  from ray import cluster_utils
  with _ray_lock():
    temp_dir = tempfile.mkdtemp(prefix='rlcvray')   # short: Ray's socket paths live under it
    os.makedirs(os.path.join(tempfile.gettempdir(), 'ray'), exist_ok=True)   # cluster_utils notes its address there
    before = _descendants()
    c = cluster_utils.Cluster(initialize_head=True, head_node_args=dict(
        num_cpus=0, include_dashboard=False, object_store_memory=STORE_BYTES, temp_dir=temp_dir))
    try:
      # Logical CPUs, more than the actors need: Ray's default placement would pack them on one node.
      nodes = {'B': c.add_node(num_cpus=8, object_store_memory=STORE_BYTES),
               'C': c.add_node(num_cpus=8, object_store_memory=STORE_BYTES)}
      ray.init(address=c.address, log_to_driver=False, logging_level='ERROR')
      yield types.SimpleNamespace(cluster=c, address=c.address, nodes=nodes,
                                  ids={name: n.node_id for name, n in nodes.items()}, ray=ray)
    finally:
      started = _descendants() - before
      ray.shutdown()
      with contextlib.suppress(Exception):
        c.shutdown()
      _kill(_wait_gone(started, 15))
      shutil.rmtree(temp_dir, ignore_errors=True)
      note = os.path.join(tempfile.gettempdir(), 'ray', 'ray_current_cluster')
      with contextlib.suppress(OSError):
        if open(note).read().strip() == c.address:
          os.remove(note)   # it names a cluster that is gone


# -------------------------------------------------------------------------------------- bad input, no cluster
def test_bad_ray_input_is_one_line_before_tensorflow_loads(tmp_path):
  base = ['--env=mini_5v5_small', '--model=cnn', f'--logdir={tmp_path}/run']
  no_ray = _one_error_line(_launcher(*base, '--backend=ray', env=_no_tensorflow_env(tmp_path, fake_ray=True)))
  assert 'needs Ray, which is not installed' in no_ray and 'pip install "ray==2.60.0"' in no_ray and \
      'scripts/setup.sh' in no_ray, no_ray
  env = _no_tensorflow_env(tmp_path)
  local = _one_error_line(_launcher(*base, '--ray_address=127.0.0.1:6379', env=env))
  assert local.startswith('error: --ray_address=127.0.0.1:6379: only used by backend=ray'), local
  inline = _one_error_line(_launcher(*base, '--backend=ray', '--runtime=inline', env=env))
  assert 'runtime=inline has none' in inline, inline
  port = _free_port()   # nobody listens there: refused at once
  t0 = time.monotonic()
  refused = _one_error_line(_launcher(*base, '--backend=ray', f'--ray_address=127.0.0.1:{port}', env=env))
  assert time.monotonic() - t0 < 30
  assert f'--ray_address=127.0.0.1:{port}: no Ray cluster answered there' in refused and \
      f'`ray start --head --port={port} --num-cpus=0`' in refused, refused
  bad = _one_error_line(_launcher(*base, '--backend=ray', '--ray_address=nohost', env=env))
  assert 'expected HOST:PORT of a Ray head' in bad, bad
  for line in (no_ray, local, inline, refused, bad):
    print(line)


def test_the_local_backend_never_imports_ray(tmp_path):
  script = textwrap.dedent(f'''
      import sys
      from rlcv_tf.marl import config as config_lib
      from rlcv_tf.marl import training
      cfg = config_lib.MarlConfig(env='mini_5v5_small', model='cnn', num_actors=2, batch_size=2, unroll_length=8,
                                  total_frames=32, checkpoint_interval_s=1e9, log_interval_s=1e9,
                                  stack_channels=((8, 1), (8, 1)), feature_dim=32)
      training.train(cfg, {str(tmp_path / 'run')!r}, print_fn=lambda s: None)
      print('ray imported:', 'ray' in sys.modules)
      ''')
  proc = subprocess.run([sys.executable, '-c', script], cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'ray imported: False' in proc.stdout, proc.stdout


# ----------------------------------------------------------------------------------------- a private Ray pool
@pytest.mark.timeout(240)
def test_a_pool_on_a_private_ray_restarts_a_crash_and_leaves_nothing_behind(caplog):
  """The cheap Ray test: a private Ray on 127.0.0.1 (started and stopped by the pool), two actors, actor 0's first
  run crashes at its 5th step: exactly one restart, the log names the node, every socket of the run's processes
  listens on the loopback, and after close none of them is left."""
  pytest.importorskip('ray')
  from rlcv_tf.runtime import ray_pool
  with _ray_lock():
    before = _descendants()
    pool = ray_pool.RayActorPool(_scripted(faulty={'crash_at_step': 5, 'only_seeds': [SEED]}))
    events = []
    try:
      pool.start()
      _pump(pool, lambda: events.count((0, 1)) >= 3, events=events)
      address, nodes, restarts = pool.address, set(pool.node_ids()), pool.restarts
    finally:
      during = _descendants() - before
      listening = {c.laddr.ip for pid in during for c in _connections(pid) if c.status == psutil.CONN_LISTEN}
      pool.close()
    left = _wait_gone(during, 15)
  assert not left, f'left running after close: {_describe(left)}'
  assert address.startswith('tcp:127.0.0.1:')
  assert restarts == 1 and set(events) == {(0, 0), (0, 1), (1, 0)}
  assert listening and listening <= {'127.0.0.1', '::ffff:127.0.0.1'}, listening
  assert len(nodes) == 1 and None not in nodes
  assert re.search(r'actor 0 on Ray node 127\.0\.0\.1 \(host [^,]+, node id [0-9a-f]{8}\) failed: RuntimeError: '
                   r'scripted crash at step 5; restarting it \(restart 1 of 100\)', caplog.text), caplog.text
  assert 'RAY_AUTH_TOKEN' not in os.environ, 'the private Ray\'s settings are undone at close'


# ---------------------------------------------------------------------------- no cluster of the tests' (slow)
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_an_open_port_that_is_not_ray_fails_within_30_s(tmp_path):
  with socket.socket() as server:
    server.bind(('127.0.0.1', 0))
    server.listen()
    port = server.getsockname()[1]
    # Ray's single-node mode: Ray dials 127.0.0.1 as given (else it would make it this machine's network address).
    env = dict(_no_tensorflow_env(tmp_path), RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER='0')
    t0 = time.monotonic()
    line = _one_error_line(_launcher('--env=mini_5v5_small', f'--logdir={tmp_path}/run', '--backend=ray',
                                     f'--ray_address=127.0.0.1:{port}', env=env))
    took = time.monotonic() - t0
  assert took < 30, took
  assert 'no Ray head answered within 25 s' in line and '`ray start --head' in line, line
  print(f'{line} ({took:.0f} s)')


# ------------------------------------------------------------------------------------ the README recipe (slow)
def _unshare_works():
  try:
    return subprocess.run(['unshare', '--net', '--pid', '--fork', '--mount-proc', 'true'], capture_output=True,
                          timeout=30).returncode == 0
  except (OSError, subprocess.TimeoutExpired):
    return False


_RECIPE = r'''
set -u
ip link set lo up
RAY="$VENV_BIN/ray"
SMALL="--object-store-memory={store} --disable-usage-stats"
"$RAY" start --head --port=6379 --num-cpus=0 --include-dashboard=false $SMALL >ray_head.log 2>&1 || exit 11
# No actor machine yet: the launcher says so on one line, before TensorFlow loads.
"$PY" -m launchers.marl --backend=ray --ray_address=127.0.0.1:6379 --env=mini_5v5_small --num_actors=2 \
    --logdir={logdir} >no_actors.out 2>no_actors.err
echo "no actors: exit $?" >>no_actors.out
"$RAY" start --address=127.0.0.1:6379 --num-cpus=2 $SMALL >ray_node.log 2>&1 || exit 12
"$PY" -m launchers.marl --backend=ray --ray_address=127.0.0.1:6379 --learner_host=127.0.0.1 \
    --env=mini_5v5_small --model=cnn --num_actors=2 --batch_size=2 --unroll_length=8 --total_frames=64 \
    --stack_channels=8x1,8x1 --feature_dim=32 --log_interval_s=1e9 --logdir={logdir}
code=$?
"$RAY" stop >ray_stop.log 2>&1
echo "launcher exit $code"
exit $code
'''


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_readme_recipe(tmp_path):
  """`ray start --head`, `ray start --address`, the launcher with --backend=ray, then `ray stop`, as in README.md
  (with the head's address 127.0.0.1: the recipe runs in a network namespace whose only interface is the
  loopback, and a PID namespace, so `ray stop` stops this recipe's Ray and nothing else)."""
  if not _unshare_works():
    pytest.skip('needs `unshare --net --pid` (root, or user namespaces) to keep the recipe\'s Ray on a loopback '
                'of its own')
  readme = open(os.path.join(ROOT, 'README.md')).read()
  for step in ('ray start --head --port=6379 --num-cpus=0', 'ray start --address=HEAD:6379',
               '--backend=ray --ray_address=HEAD:6379 --learner_host=HEAD_IP', 'ray stop'):
    assert step in readme, f'README.md lost the recipe step {step!r}'
  work = tempfile.mkdtemp(prefix='rlcvrecipe')   # RAY_TMPDIR: short, for Ray's socket paths
  env = dict(os.environ, VENV_BIN=os.path.dirname(sys.executable), PY=sys.executable, RAY_TMPDIR=work,
             RAY_AUTH_MODE='token', RAY_AUTH_TOKEN=secrets.token_hex(32),
             PYTHONPATH=os.pathsep.join([ROOT] + [p for p in [os.environ.get('PYTHONPATH')] if p]))
  env.pop('RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER', None)
  script = _RECIPE.format(store=STORE_BYTES, logdir=tmp_path / 'run')
  try:
    with _ray_lock():
      t0 = time.monotonic()
      proc = subprocess.run(['unshare', '--net', '--pid', '--fork', '--mount-proc', 'bash', '-c', script],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=540)
      took = time.monotonic() - t0
  finally:
    shutil.rmtree(work, ignore_errors=True)
  logs = {name: (tmp_path / name).read_text() if (tmp_path / name).exists() else ''
          for name in ('ray_head.log', 'ray_node.log', 'ray_stop.log', 'no_actors.out', 'no_actors.err')}
  assert proc.returncode == 0, (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:], logs)
  assert 'no actors: exit 2' in logs['no_actors.out'], logs
  no_actors = [l for l in logs['no_actors.err'].splitlines() if l.startswith('error: ')]
  assert len(no_actors) == 1 and 'no actor machine has joined the Ray cluster at 127.0.0.1:6379' in no_actors[0] \
      and '`ray start --address=127.0.0.1:6379`' in no_actors[0], logs['no_actors.err']
  assert re.search(r'\[marl\] learner listening on tcp:127\.0\.0\.1:\d+', proc.stdout), proc.stdout
  assert '[marl] done: 64 frames' in proc.stdout, proc.stdout
  assert 'Stopped' in logs['ray_stop.log'] or 'stopped' in logs['ray_stop.log'].lower(), logs['ray_stop.log']
  print(no_actors[0])
  print(proc.stdout + proc.stderr)
  print(f'the recipe took {took:.0f} s')


# ----------------------------------------------------------------------------------------------- real GRF
@pytest.mark.grf
@pytest.mark.timeout(600)
def test_real_football_on_a_private_ray(tmp_path):
  pytest.importorskip('ray')
  from rlcv_tf.envs import base
  from rlcv_tf.envs import registry
  try:
    registry.check_available('grf_5v5')
  except base.EnvironmentUnavailableError as e:
    pytest.skip(str(e))
  with _ray_lock():
    t0 = time.monotonic()
    proc = _launcher('--env=grf_5v5', '--model=cnn', '--backend=ray', '--num_actors=2', '--smm_size=36x48',
                     '--batch_size=2', '--unroll_length=16', '--total_frames=256', '--stack_channels=8x1,8x1',
                     '--feature_dim=32', '--log_interval_s=1e9', f'--logdir={tmp_path}/run', timeout=540)
    took = time.monotonic() - t0
  assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
  match = re.search(r'\[marl\] learner listening on (tcp:127\.0\.0\.1:\d+)', proc.stdout)
  assert match and '[marl] done: 256 frames' in proc.stdout, proc.stdout
  time.sleep(1.0)
  leftovers = [p.pid for p in psutil.process_iter(['cmdline'])
               if match.group(1) in ' '.join(p.info['cmdline'] or [])]
  assert not _live(leftovers), f'actor processes outlived the run: {_describe(leftovers)}'
  print(f'GRF on a private Ray: 256 frames in {took:.0f} s')


# ------------------------------------------------------------------------------------------ two nodes (slow)
class _RecordingPool:
  """Mixed into RayActorPool: notes the nodes of every inference batch (one send_actions call per batch)."""
  batches = None

  def send_actions(self, actor_ids, actions):
    nodes = self.node_ids()
    self.batches.append([nodes[a] for a in actor_ids])
    super().send_actions(actor_ids, actions)


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_two_nodes_train_with_inference_batches_mixing_both(cluster, tmp_path):
  from rlcv_tf.marl import config as config_lib
  from rlcv_tf.marl import training
  from rlcv_tf.runtime import ray_pool

  class Pool(_RecordingPool, ray_pool.RayActorPool):
    batches = []

  cfg = config_lib.MarlConfig(env='mini_5v5_small', model='cnn', num_actors=4, batch_size=4, unroll_length=8,
                              total_frames=320, backend='ray', ray_address=cluster.address,
                              checkpoint_interval_s=1e9, log_interval_s=1e9, **SMALL_NET)
  pools = []

  def factory(c, start_frames=0):
    pools.append(Pool(training.actor_configs(c, start_frames), ray_address=c.ray_address,
                      learner_host=c.learner_host, learner_port=c.learner_port))
    return pools[-1]

  lines = []
  with _ray_lock():
    result = training.train(cfg, str(tmp_path / 'run'), pool_factory=factory, print_fn=lines.append)
  assert result.frames == 320 and result.actor_restarts == 0
  assert any(re.fullmatch(r'\[marl\] learner listening on tcp:127\.0\.0\.1:\d+', l) for l in lines), lines
  batches = Pool.batches
  used = {n for b in batches for n in b}
  assert used == {cluster.ids['B'], cluster.ids['C']}, 'actors on both actor nodes, none on the CPU-less head'
  placed = pools[0].node_ids()
  assert placed.count(cluster.ids['B']) == placed.count(cluster.ids['C']) == 2, f'spread evenly: {placed}'
  mixed = [b for b in batches if len(set(b)) > 1]
  assert len(mixed) >= len(batches) // 4, f'{len(mixed)} of {len(batches)} inference batches mix both nodes'
  print(f'{len(batches)} inference batches, {len(mixed)} mixing both nodes, mean size '
        f'{np.mean([len(b) for b in batches]):.2f}')


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_sigkilled_ray_worker_is_restarted_once_and_no_unroll_mixes_two_runs(cluster, caplog):
  """The scripted observation counts steps since reset ((t + agent) mod 256): in an unroll, every step follows the
  one before (t + 1) unless an episode ended. A replacement starts again at t = 0 without an episode end, so an
  unroll holding the end of one run and the start of the next would break the count."""
  from rlcv_tf.runtime import inference
  from rlcv_tf.runtime import ray_pool
  unroll_length = 8
  pool = ray_pool.RayActorPool(_scripted(n=4, episode_length=10_000), ray_address=cluster.address)
  steps = []

  def infer(obs):
    return np.ones(obs.shape[:2], np.int32), np.zeros(obs.shape[:2] + (5,), np.float32)

  server = inference.InferenceServer(pool, infer, unroll_length, max_queued_unrolls=10_000,
                                     step_hook=lambda s: steps.append((s.actor_id, s.run_id)))
  count_0 = lambda: sum(1 for a, _ in steps if a == 0)   # pylint: disable=unnecessary-lambda-assignment
  unrolls = []
  with _ray_lock():
    try:
      pool.start()
      server.start()
      deadline = time.monotonic() + 120

      def until(cond):
        while not cond():
          assert time.monotonic() < deadline, f'timed out: {len(steps)} steps, restarts {pool.restarts}'
          unrolls.extend(server.get_unrolls(1, timeout_s=0.2) or [])

      until(lambda: count_0() >= 13)   # mid-unroll: 13 = one unroll of 9 steps, then 4 more
      worker = pool.pids()[0]
      children = [p.pid for p in psutil.Process(worker).children(recursive=True)]
      os.kill(worker, signal.SIGKILL)
      killed_at = count_0()
      until(lambda: count_0() >= killed_at + 3 * (unroll_length + 1))
      restarts, node_ids = pool.restarts, pool.node_ids()
    finally:
      server.stop()
      pool.close()
  for u in unrolls:
    t = u['observation'][:, 0, 0, 0, 0].astype(int)
    follows = (np.diff(t) % 256 == 1) | u['done'][1:]
    assert follows.all(), f'an unroll mixes two runs: t = {t.tolist()}, done = {u["done"].tolist()}'
  assert len(unrolls) >= 12
  assert restarts == 1, restarts
  assert children and not _wait_gone(children, 10), 'the killed worker\'s actor process died with it'
  assert {r for a, r in steps if a != 0} == {0} and {r for a, r in steps if a == 0} == {0, 1}
  assert set(node_ids) <= {cluster.ids['B'], cluster.ids['C']}
  [line] = [r.getMessage() for r in caplog.records if 'restarting it' in r.getMessage()]
  assert re.match(r'actor 0 on Ray node 127\.0\.0\.1 \(host [^,]+, node id [0-9a-f]{8}\) ', line), line
  print(f'{len(unrolls)} unrolls, {len(steps)} steps, {restarts} restart: {line}')


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_unreachable_learner_refused_version_and_spent_budget_name_the_node(cluster):
  """The faults' messages under Ray: the actor's own error and the node it ran on; a refused actor is not
  restarted; a spent budget carries the last error."""
  from rlcv_tf.runtime import ray_pool
  port = _free_port()

  class Unreachable(ray_pool.RayActorPool):
    def _actor_command(self, actor_id, run_id, seed):
      cmd = super()._actor_command(actor_id, run_id, seed)
      return [c.replace(self.address, f'tcp:127.0.0.1:{port}') for c in cmd]

  class OtherVersion(ray_pool.RayActorPool):
    def _actor_command(self, actor_id, run_id, seed):
      return super()._actor_command(actor_id, run_id, seed) + [f'--protocol_version={transport.VERSION + 1}']

  node = r'on Ray node 127\.0\.0\.1 \(host [^,]+, node id [0-9a-f]{8}\)'
  with _ray_lock():
    t0 = time.monotonic()
    with pytest.raises(actors.ActorStartupError) as unreachable:
      Unreachable(_scripted(n=1), ray_address=cluster.address).start()
    t1 = time.monotonic()
    with pytest.raises(actors.ActorFailedError) as refused:
      pool = OtherVersion(_scripted(n=1), ray_address=cluster.address, max_restarts=100)
      pool.start()
    t2 = time.monotonic()
    pool = ray_pool.RayActorPool(_scripted(n=1, faulty={'crash_at_step': 2}), ray_address=cluster.address,
                                 max_restarts=1)
    with pool, pytest.raises(actors.ActorFailedError) as spent:
      _pump(pool, lambda: False)
  unreachable, refused, spent = unreachable.value, refused.value, spent.value
  assert re.match(rf'actor 0 {node} exited with code 2 before connecting: \[actor 0\] cannot reach the learner at '
                  rf'tcp:127\.0\.0\.1:{port}: .*--learner_host', str(unreachable)), unreachable
  assert re.match(rf'actor 0 {node} was refused by this learner \(\[actor 0\] refused by the learner at tcp:.*'
                  rf'protocol version {transport.VERSION + 1}.*\) and exited; not restarting it', str(refused)), refused
  assert pool.restarts == 1
  assert re.match(rf'actor 0 {node} failed: RuntimeError: scripted crash at step 2, and the restart budget of 1 is '
                  r'spent; giving up$', spent.summary), spent.summary
  assert 'Traceback (most recent call last)' in str(spent), 'the full message still carries the actor\'s own text'
  assert t1 - t0 < 60 and t2 - t1 < 60
  for e in (unreachable, refused, spent):
    print(e.summary)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_node_without_the_engine_is_named(cluster, tmp_path):
  """gfootball missing on one node (its workers import a stand-in that fails): the pre-flight check names the node
  and scripts/setup.sh."""
  from rlcv_tf.runtime import ray_pool
  fakes = tmp_path / 'fakes'
  (fakes / 'gfootball').mkdir(parents=True)
  (fakes / 'gfootball' / '__init__.py').write_text('raise ImportError("No module named \'gfootball\'")\n')
  pythonpath = os.pathsep.join([str(fakes)] + [p for p in [os.environ.get('PYTHONPATH')] if p])
  with _ray_lock():
    bare = cluster.cluster.add_node(num_cpus=1, object_store_memory=STORE_BYTES, env_vars={'PYTHONPATH': pythonpath})
    try:
      with pytest.raises(ray_pool.RayError) as e:
        ray_pool.check_nodes('grf_5v5')
      ray_pool.check_nodes('mini_5v5')   # the stand-in needs no engine
    finally:
      cluster.cluster.remove_node(bare)
  line = str(e.value)
  assert '\n' not in line
  assert re.match(rf'--env=grf_5v5 cannot run on Ray node 127\.0\.0\.1 \(host [^,]+, node id {bare.node_id[:8]}\): '
                  r'Google Research Football .*scripts/setup.sh', line), line
  print(line)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_removed_node_s_actors_come_back_on_the_other(cluster, caplog):
  """Node C leaves mid-run (its raylet stops, as at a shutdown): its actors return on B with new run ids, one
  restart each, while B's actors keep stepping. Runs last: C does not come back."""
  from rlcv_tf.runtime import ray_pool
  pool = ray_pool.RayActorPool(_scripted(n=4, episode_length=10_000), ray_address=cluster.address)
  events = []
  with _ray_lock(), pool:
    _pump(pool, lambda: len(events) >= 40, events=events)
    on_c = [a for a, n in enumerate(pool.node_ids()) if n == cluster.ids['C']]
    assert on_c and len(on_c) < 4, pool.node_ids()
    on_c_procs = [c.pid for a in on_c for c in psutil.Process(pool.pids()[a]).children(recursive=True)]
    cluster.cluster.remove_node(cluster.nodes['C'])
    t0 = time.monotonic()
    _pump(pool, lambda: all((a, 1) in events for a in on_c), events=events)
    back_s = time.monotonic() - t0
    _pump(pool, lambda: all(events.count((a, 1)) >= 5 for a in on_c), events=events)
    restarts, node_ids = pool.restarts, pool.node_ids()
  assert restarts == len(on_c), (restarts, on_c)
  assert node_ids == [cluster.ids['B']] * 4
  assert {r for a, r in events if a not in on_c} == {0}
  assert on_c_procs and not _wait_gone(on_c_procs, 10), 'the removed node\'s actor processes died with it'
  lines = [r.getMessage() for r in caplog.records if 'restarting it' in r.getMessage()]
  assert len(lines) == len(on_c) and all(cluster.ids['C'][:8] in l for l in lines), lines
  print(f'{len(on_c)} actors on the removed node, back on the other after {back_s:.1f} s, {restarts} restarts:')
  print('\n'.join(lines))
