r"""Throughput of the Chapter 4 runtime, every number measured side by side in one run on one machine.

For each model and runtime it measures, one after the other:
  raw env        env steps/s of the environment stepped in-process with random actions, in as many processes as
                 the run has environments (the physical bound: no transport, no learner);
  env-only       env steps/s through the actor pool with random actions (the transport's cost on top of raw);
  inference-only env steps/s of central inference alone, at the batch sizes the system run used;
  learner-only   env steps/s (B*T per update) of V-trace updates on a fixed batch;
  shared-core    1 / (1/env-only + 1/learner + 1/inference): where actors, inference and training share the same
  bound          cores, each env step costs the sum of the three;
  system         env steps/s and agent steps/s of a full training run in a window of `--measure_s` seconds after
                 `--warmup_s` seconds (sample-factory's protocol: 60 s + 300 s), with the CPU use of the learner and
                 its actors over the window;
and the goals' ratios: system / raw env (G1 >= 0.3), system / peer (G1 >= 2, with `--peer_env_steps_per_s`, the
peer's figure measured on this machine kind), system / shared-core bound (G2 >= 0.95), with `--pin` system /
min(env-only, learner side) (G3 >= 0.9), env-only / raw env (G4 >= 0.85). Each row is also printed as one JSON line
(prefix `[bench-json]`), and a per-env-step budget in core-milliseconds (env, transport, inference, training, the
rest) from the CPU time each part used in isolation.

  python benchmarks/marl_throughput.py --env=grf_5v5 --models=cnn --num_agents=4 --runtimes=actors,inline
  python benchmarks/marl_throughput.py --env=grf_5v5 --models=acnn --num_agents=5 --pin
"""

import json
import multiprocessing
import os
import signal
import sys
import tempfile
import threading
import time

from absl import app
from absl import flags
from absl import logging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=g-import-not-at-top
import psutil  # pylint: disable=g-import-not-at-top

from rlcv_tf.core import quiet  # pylint: disable=g-import-not-at-top

quiet.import_tensorflow()

from rlcv_tf.core import runs  # pylint: disable=g-import-not-at-top
from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
from rlcv_tf.marl import agents as agents_lib  # pylint: disable=g-import-not-at-top
from rlcv_tf.marl import config as config_lib  # pylint: disable=g-import-not-at-top
from rlcv_tf.marl import learner as learner_lib  # pylint: disable=g-import-not-at-top
from rlcv_tf.marl import training  # pylint: disable=g-import-not-at-top

flags.DEFINE_string('env', 'grf_5v5', 'Environment.')
flags.DEFINE_list('models', ['cnn'], 'Models to measure.')
flags.DEFINE_integer('num_agents', 4, 'Controlled agents (the peer comparison uses 4: the goalie built-in).')
flags.DEFINE_list('runtimes', ['actors', 'inline'], 'Runtimes to measure: actors, inline.')
flags.DEFINE_list('backends', ['local'], 'Actor backends for runtime=actors, each measured: local, ray (a private '
                  'Ray on 127.0.0.1; needs the ray extra that scripts/setup.sh installs).')
flags.DEFINE_integer('num_envs', 4, 'Environments (actor processes, or inline environments).')
flags.DEFINE_integer('batch_size', 4, 'Unrolls per update.')
flags.DEFINE_integer('unroll_length', 32, 'Unroll length.')
flags.DEFINE_string('smm_size', '', 'HxW super-mini-map size; empty = environment default (72x96).')
flags.DEFINE_float('warmup_s', 60.0, 'Seconds of the system run before the measurement window.')
flags.DEFINE_float('measure_s', 300.0, 'Seconds of the system run that are measured.')
flags.DEFINE_float('component_s', 30.0, 'Seconds for each isolated component (raw env, env-only, inference).')
flags.DEFINE_integer('learner_updates', 5, 'Timed updates for learner-only (after 2 warm-up updates).')
flags.DEFINE_bool('pin', False, 'Actors on core 0, learner and inference on core 1 (runtime=actors only).')
flags.DEFINE_float('peer_env_steps_per_s', 0.0, 'The peer\'s env steps/s on the same task and machine kind, if '
                   'measured (the issue\'s side-by-side figure for sample-factory 2.1.1 APPO serial: 36.4).')
flags.DEFINE_string('output', '', 'Also append the JSON rows to this file.')
FLAGS = flags.FLAGS


def make_config(model, runtime, **kw):
  env_kwargs = {'num_agents': FLAGS.num_agents}
  if FLAGS.smm_size:
    env_kwargs['smm_hw'] = tuple(int(x) for x in FLAGS.smm_size.split('x'))
  extra = dict(num_envs=FLAGS.num_envs) if runtime == 'inline' else {}
  return config_lib.MarlConfig(env=FLAGS.env, model=model, env_kwargs=env_kwargs, num_actors=FLAGS.num_envs,
                               runtime=runtime, batch_size=FLAGS.batch_size, unroll_length=FLAGS.unroll_length,
                               log_interval_s=1e9, summary_interval_s=1e9, checkpoint_interval_s=1e9,
                               total_frames=10**12, **extra, **kw)


class _CpuMeter:
  """CPU seconds used by this process and its children (actors) between `start` and `stop`."""

  def __init__(self):
    self._proc = psutil.Process()

  def _total(self):
    t = self._proc.cpu_times()
    total = t.user + t.system
    for child in self._proc.children(recursive=True):
      try:
        c = child.cpu_times()
        total += c.user + c.system
      except psutil.Error:
        pass
    return total

  def start(self):
    self._t0, self._c0 = time.monotonic(), self._total()

  def stop(self):
    wall, cpu = time.monotonic() - self._t0, self._total() - self._c0
    return wall, cpu


def _raw_env_worker(name, kwargs, seed, seconds, out):
  env = registry.make_env(name, seed=seed, num_frames=4, **kwargs)
  rng = np.random.default_rng(seed)
  env.reset()
  steps, t0 = 0, time.monotonic()
  cpu0 = time.process_time()
  while time.monotonic() - t0 < seconds:
    ts = env.step(rng.integers(0, env.num_actions, env.num_agents).astype(np.int32))
    steps += 1
    if ts.last():
      env.reset()
  out.put((steps, time.monotonic() - t0, time.process_time() - cpu0))
  env.close()


def raw_env(cfg, seconds):
  """Env steps/s of `num_envs` processes stepping the environment in-process (no transport), and core-ms/step."""
  ctx = multiprocessing.get_context('spawn')
  out = ctx.Queue()
  procs = [ctx.Process(target=_raw_env_worker, args=(cfg.env, cfg.effective_env_kwargs, i, seconds, out))
           for i in range(cfg.env_count)]
  for p in procs:
    p.start()
  results = [out.get(timeout=seconds + 300) for _ in procs]
  for p in procs:
    p.join()
  steps = sum(r[0] for r in results)
  rate = sum(r[0] / r[1] for r in results)
  return rate, 1000.0 * sum(r[2] for r in results) / max(1, steps)


def env_only(cfg, num_actions, seconds):
  """Env steps/s through the actor pool with random actions, and core-ms per step (actors + learner side)."""
  pool = training.make_actor_pool(cfg)
  rng = np.random.default_rng(0)
  meter = _CpuMeter()
  steps = 0
  with pool:
    t0 = None
    while True:
      got = pool.receive(0.1)
      if got:
        acts = rng.integers(0, num_actions, size=(len(got), got[0].reward.shape[0])).astype(np.int32)
        pool.send_actions([s.actor_id for s in got], acts)
        if t0 is None:
          t0 = time.monotonic()
          meter.start()
        else:
          steps += len(got)
      if t0 is not None and time.monotonic() - t0 >= seconds:
        wall, cpu = meter.stop()
        return steps / wall, 1000.0 * cpu / max(1, steps)


def _fixed_batch(cfg, obs_shape, num_actions):
  rng = np.random.default_rng(0)
  t1, b, n = cfg.unroll_length + 1, cfg.batch_size, obs_shape[0]
  obs = np.zeros((t1, b) + tuple(obs_shape), np.uint8)
  obs[..., :] = (rng.random(obs.shape) < 0.02) * 255
  return {
      'observation': obs,
      'reward': rng.normal(size=(t1, b, n)).astype(np.float32),
      'done': np.zeros((t1, b), bool), 'discount': np.ones((t1, b), np.float32),
      'truncated': np.zeros((t1, b), bool), 'agent_positions': np.zeros((t1, b, n, 2), np.int32),
      'action': rng.integers(0, num_actions, size=(t1, b, n)).astype(np.int32),
      'behaviour_logits': np.zeros((t1, b, n, num_actions), np.float32),
  }


def learner_only(learner, cfg, obs_shape, num_actions, updates):
  batch = _fixed_batch(cfg, obs_shape, num_actions)
  for _ in range(2):
    learner.train(batch)
  meter = _CpuMeter()
  meter.start()
  for _ in range(updates):
    learner.train(batch)
  wall, cpu = meter.stop()
  frames = updates * cfg.frames_per_update
  return frames / wall, 1000.0 * cpu / frames


def inference_only(learner, obs_shape, batch_sizes, seconds):
  """Env steps/s of inference alone, cycling through the batch sizes the system run used; core-ms per step."""
  sizes = [int(b) for b in batch_sizes if b > 0] or [FLAGS.num_envs]
  obs = {b: np.zeros((b,) + tuple(obs_shape), np.uint8) for b in set(sizes)}
  for b in set(sizes):
    learner.infer(obs[b])
  meter = _CpuMeter()
  meter.start()
  steps, k = 0, 0
  while True:
    b = sizes[k % len(sizes)]
    learner.infer(obs[b])
    steps += b
    k += 1
    wall = time.monotonic() - meter._t0  # pylint: disable=protected-access
    if wall >= seconds:
      break
  wall, cpu = meter.stop()
  return steps / wall, 1000.0 * cpu / steps


class _CountingPool:
  """Wraps a pool: timestamps every env step it hands out and records the inference batch sizes."""

  def __init__(self, pool):
    self._pool = pool
    self.times = []
    self.batch_sizes = []

  def __getattr__(self, name):
    return getattr(self._pool, name)

  def receive(self, timeout):
    got = self._pool.receive(timeout)
    if got:
      now = time.monotonic()
      self.times.extend([now] * len(got))
    return got

  def send_actions(self, actor_ids, actions):
    self.batch_sizes.append(len(actor_ids))
    return self._pool.send_actions(actor_ids, actions)

  def start(self):
    self._pool.start()
    if FLAGS.pin:
      for pid in self._pool.pids():
        if pid:
          os.sched_setaffinity(pid, {0})

  def __enter__(self):
    self.start()
    return self

  def __exit__(self, *exc):
    self._pool.close()


def system(cfg, logdir):
  """Runs training for warmup_s + measure_s and returns (env steps/s in the window, CPU %, batch sizes)."""
  pools = []

  def factory(c, start_frames=0):
    pools.append(_CountingPool(training.make_actor_pool(c, start_frames)))
    return pools[-1]

  meter = _CpuMeter()
  marks = {}

  def timer():
    deadline = time.monotonic() + 900
    while not (pools and pools[0].times) and time.monotonic() < deadline:
      time.sleep(0.2)
    time.sleep(FLAGS.warmup_s)
    marks['start'] = time.monotonic()
    meter.start()
    time.sleep(FLAGS.measure_s)
    marks['end'] = time.monotonic()
    marks['wall'], marks['cpu'] = meter.stop()
    os.kill(os.getpid(), signal.SIGINT)   # the run saves and stops, as on Ctrl-C

  threading.Thread(target=timer, daemon=True).start()
  if FLAGS.pin:
    os.sched_setaffinity(0, {1})
  try:
    training.train(cfg, logdir, pool_factory=factory, print_fn=lambda s: None)
  except runs.Interrupted:
    pass
  finally:
    if FLAGS.pin:
      os.sched_setaffinity(0, set(range(os.cpu_count())))
  times = np.asarray(pools[0].times)
  steps = int(((times >= marks['start']) & (times < marks['end'])).sum())
  rate = steps / (marks['end'] - marks['start'])
  cpu_pct = 100.0 * marks['cpu'] / marks['wall']
  return rate, cpu_pct, 1000.0 * marks['cpu'] / max(1, steps), pools[0].batch_sizes


def measure(model, runtime, backend='local'):
  cfg = make_config(model, runtime, backend=backend)
  obs_shape, num_actions = agents_lib.env_specs(cfg)
  n = obs_shape[0]
  row = dict(env=FLAGS.env, model=model, runtime=runtime if runtime == 'inline' else f'{runtime}/{backend}',
             backend=backend if runtime == 'actors' else '', num_agents=n, num_envs=cfg.env_count,
             batch=f'{cfg.batch_size}x{cfg.unroll_length}', map=f'{obs_shape[1]}x{obs_shape[2]}', pin=FLAGS.pin,
             warmup_s=FLAGS.warmup_s, measure_s=FLAGS.measure_s, cores=os.cpu_count())
  with tempfile.TemporaryDirectory() as d:
    sys_sps, cpu_pct, sys_core_ms, batch_sizes = system(cfg, d)
  row.update(system_env_steps_per_s=sys_sps, system_agent_steps_per_s=sys_sps * n, cpu_percent=cpu_pct,
             system_core_ms_per_step=sys_core_ms)
  print(f'[bench] {model}/{row["runtime"]}: system {sys_sps:.1f} env steps/s ({sys_sps * n:.0f} agent steps/s), '
        f'CPU {cpu_pct:.0f}%', flush=True)
  raw, raw_ms = raw_env(cfg, FLAGS.component_s)
  row.update(raw_env_steps_per_s=raw, env_core_ms_per_step=raw_ms)
  print(f'[bench] {model}/{row["runtime"]}: raw env {raw:.1f} env steps/s in {cfg.env_count} processes', flush=True)
  if runtime == 'actors':
    eo, eo_ms = env_only(cfg, num_actions, FLAGS.component_s)
  else:
    eo, eo_ms = raw, raw_ms    # inline: no transport
  row.update(env_only_steps_per_s=eo, env_only_core_ms_per_step=eo_ms)
  learner = learner_lib.Learner(cfg, obs_shape, num_actions,
                                shared_channels=agents_lib.env_shared_channels(cfg))
  inf, inf_ms = inference_only(learner, obs_shape, batch_sizes[len(batch_sizes) // 4:], FLAGS.component_s)
  lrn, lrn_ms = learner_only(learner, cfg, obs_shape, num_actions, FLAGS.learner_updates)
  sizes = np.asarray(batch_sizes[len(batch_sizes) // 4:] or [0])
  bound = 1.0 / (1.0 / eo + 1.0 / lrn + 1.0 / inf)
  learner_side = 1.0 / (1.0 / lrn + 1.0 / inf)
  row.update(inference_steps_per_s=inf, inference_core_ms_per_step=inf_ms, mean_inference_batch=float(sizes.mean()),
             learner_steps_per_s=lrn, learner_core_ms_per_step=lrn_ms, shared_core_bound=bound,
             g1_system_over_raw=sys_sps / raw, g2_system_over_shared_bound=sys_sps / bound,
             g3_system_over_min_env_learner=sys_sps / min(eo, learner_side), g4_env_only_over_raw=eo / raw)
  if FLAGS.peer_env_steps_per_s:
    row['g1_system_over_peer'] = sys_sps / FLAGS.peer_env_steps_per_s
  transport_ms = max(0.0, eo_ms - raw_ms)
  rest = sys_core_ms - raw_ms - transport_ms - inf_ms - lrn_ms
  row['budget_core_ms_per_step'] = dict(env=raw_ms, transport=transport_ms, inference=inf_ms, training=lrn_ms,
                                        rest=rest, total=sys_core_ms)
  return row


def main(_):
  logging.set_verbosity(logging.WARNING)
  print(f'[bench] env={FLAGS.env} agents={FLAGS.num_agents} envs={FLAGS.num_envs} batch={FLAGS.batch_size}x'
        f'{FLAGS.unroll_length} window {FLAGS.warmup_s:.0f}+{FLAGS.measure_s:.0f} s, cores={os.cpu_count()}, '
        f'load {os.getloadavg()[0]:.2f}', flush=True)
  bad = sorted(set(FLAGS.backends) - {'local', 'ray'})
  if bad:
    raise app.UsageError(f'--backends: unknown {",".join(bad)}; valid: local, ray')
  rows = []
  for model in FLAGS.models:
    for runtime in FLAGS.runtimes:
      for backend in (FLAGS.backends if runtime == 'actors' else ['local']):
        row = measure(model, runtime, backend)
        rows.append(row)
        print('[bench-json] ' + json.dumps(row, sort_keys=True), flush=True)
        if FLAGS.output:
          with open(FLAGS.output, 'a') as f:
            f.write(json.dumps(row, sort_keys=True) + '\n')
  print('\nmodel runtime       N  raw-env  env-only  inference  learner  shared-bound  system  agent-st/s  CPU%  '
        'sys/raw  sys/bound  env/raw' + ('  sys/peer' if FLAGS.peer_env_steps_per_s else ''))
  for r in rows:
    line = (f'{r["model"]:5s} {r["runtime"]:12s} {r["num_agents"]:2d}  {r["raw_env_steps_per_s"]:7.1f}  '
            f'{r["env_only_steps_per_s"]:8.1f}  {r["inference_steps_per_s"]:9.1f}  {r["learner_steps_per_s"]:7.1f}  '
            f'{r["shared_core_bound"]:12.1f}  {r["system_env_steps_per_s"]:6.1f}  {r["system_agent_steps_per_s"]:10.0f}'
            f'  {r["cpu_percent"]:4.0f}  {r["g1_system_over_raw"]:7.2f}  {r["g2_system_over_shared_bound"]:9.2f}  '
            f'{r["g4_env_only_over_raw"]:7.2f}')
    if FLAGS.peer_env_steps_per_s:
      line += f'  {r["g1_system_over_peer"]:8.2f}'
    print(line)
  print('\nper-env-step budget (core-ms): env, transport, inference, training, rest = total')
  for r in rows:
    b = r['budget_core_ms_per_step']
    print(f'{r["model"]}/{r["runtime"]}: {b["env"]:.2f}, {b["transport"]:.2f}, {b["inference"]:.2f}, '
          f'{b["training"]:.2f}, {b["rest"]:.2f} = {b["total"]:.2f}')


if __name__ == '__main__':
  app.run(main)
