r"""Throughput of seed-001 PPO training (VAE features; fixed / adapt / joint) on real ALE Breakout (issue 14 Sec. 5),
every number measured in one run on one machine.

Seed 001 gives no throughput figures (its runs: 16 envs x 2,048 steps, 10^7 agent steps, on a GPU). Training here is
synchronous (`vae_pg.training.train_rl` on `runtime/sync_rollouts.py`): each iteration steps every environment t_max
times with one batched acting call per step, then makes one PPO update (`ppo.PPOLearner.update`); nothing overlaps,
so the best a run can do is the serial bound below. Measured, in agent steps per second (actions applied, one per
environment and step) unless said otherwise:

  env-only        `SyncRollouts.collect` through the actor pool (`pools.make_pool`), for every `--runtimes` entry
                  (inline: the environments in this process; actors: actor processes, `--envs_per_actor` each), with
                  a uniformly random NumPy policy: stepping, transport and rollout bookkeeping, no TensorFlow. Also
                  emulator frames/s (ALE's frame counter over the episodes that ended in the window);
  vector env      `ale_py.AtariVectorEnv(game, num_envs=E, frameskip=4, ...)` stepped with random actions, against
                  the same E project adapters (`registry.make_env(--env)`, frame stack n included) stepped one by one
                  in a Python loop, as a ratio; one row per `--vector_threads` entry (AtariVectorEnv's C++ threads;
                  0 = ale_py's default). Its preprocessing is ALE's own, not identical to the adapter's (the report
                  lists the settings and what differs);
  inference-only  `training.ActingPolicy` (one batched `PPOLearner.act` call on E observations, actions drawn in
                  NumPy) on the stored observations of a real rollout; the same network in all three variants, so
                  measured once;
  learner-only    `PPOLearner.update` per variant on one stored rollout (E x t_max samples, advantages and
                  returns by `ppo.flatten_rollout`), after one untimed update (tracing): samples/s = E x t_max /
                  seconds per update, and the learner time per iteration as the ratio joint : adapt : fixed;
  system          `training.train_rl` per variant for `--warmup_iterations` + `--system_iterations` iterations on
                  `--system_runtime`, timed from the first step of the first iteration after the warm-up to the
                  moment the loop hands its pool back (the `pool_factory` argument wraps the pool and stamps the
                  times): whole iterations (collect, bootstrap value, GAE, update, episode bookkeeping and
                  summaries); start-up, tracing, the R5 gradient norms of the first iteration, the final checkpoint
                  and the SavedModel export lie outside the window;
  serial bound    1 / (1/env-only + 1/inference + 1/learner) per variant (env-only of the system's runtime);
and the ratios system / serial bound and system / env-only.

Settings: the paper network of Table 1-3 (`presets.PAPER`: encoder Conv 32-64 + FC 512, 20 latents, n = 4 frames,
64-64 tanh trunk) on `atari_breakout_seed001` (84x84 grey, frame skip 4); the scale is cut for 2 CPU cores: E
environments x t_max steps (default 8 x 64 instead of 16 x 2,048) and `--num_minibatches` x `--epochs` (default
4 x 1 instead of 32 x 10) so that a joint update takes tens of seconds. With `--kl_early_stop=false` (the default)
delta_target is raised out of reach so every update does all epochs x num_minibatches minibatch steps: the three
variants then do the same number of steps and learner-only and system do the same work (with it on, an update
stops at the first minibatch whose KL exceeds 0.015: the counts are recorded). fixed and adapt start from a
stand-in "pre-trained" VAE: the Table 1 VAE at its random initialisation written as a pre-training directory
(config.json + vae/vae.weights.h5); throughput does not depend on the weights' values.

Each run appends one JSON line to OUT.jsonl and writes OUT.md: this run in full, then, once the file holds several,
every run of OUT.jsonl in a table. The machine is usually shared: the load average before and after each part and
the busiest other processes are kept with the numbers.

  python benchmarks/vae_pg_throughput.py                               # Breakout, 8 envs x 64 steps, ~10 minutes
  python benchmarks/vae_pg_throughput.py --num_envs=16 --t_max=128 --epochs=2 --variants=adapt,joint
  python benchmarks/vae_pg_throughput.py --preset=tiny --env=mini_breakout_tiny --num_envs=2 --t_max=8 \
      --num_minibatches=2 --component_s=0.5 --out=/tmp/vt         # smoke test (NumPy stand-in, no vector env)
"""

import os
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags  # pylint: disable=g-import-not-at-top
from absl import logging  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

import machine_state  # pylint: disable=g-import-not-at-top  (this folder)
from rlcv_tf.vae_pg import presets  # pylint: disable=g-import-not-at-top  (no TensorFlow)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NO_KL_STOP = 1e9     # delta_target out of reach: every update does epochs x num_minibatches minibatch steps

flags.DEFINE_string('env', 'atari_breakout_seed001', 'Environment (the seed-001 ALE preset by default).')
flags.DEFINE_string('preset', 'paper', 'vae_pg preset whose network and PPO settings are used (the flags below '
                    'override its scale).')
flags.DEFINE_integer('num_envs', 8, 'E, environments (the paper: 16).')
flags.DEFINE_integer('t_max', 64, 'Steps per environment and iteration (the paper: 2048).')
flags.DEFINE_integer('envs_per_actor', 2, 'Environments per actor process (runtime actors).')
flags.DEFINE_integer('num_minibatches', 4, 'Minibatches per epoch (the paper\'s "batch size 32" read as 32).')
flags.DEFINE_integer('epochs', 1, 'PPO epochs K per update (the paper: 10).')
flags.DEFINE_bool('kl_early_stop', False, 'Keep the preset\'s delta_target early stop (else every update does all '
                  'its minibatch steps; module docstring).')
flags.DEFINE_list('variants', list(presets.VARIANTS), 'Variants measured (learner-only and system).')
flags.DEFINE_list('runtimes', ['inline', 'actors'], 'Runtimes of env-only: inline, actors.')
flags.DEFINE_string('system_runtime', 'actors', 'Runtime of the system runs (one of --runtimes).')
flags.DEFINE_list('vector_threads', ['1', '0'], 'AtariVectorEnv num_threads values compared (0: ale_py\'s default); '
                  'empty: no vector-env comparison.')
flags.DEFINE_float('component_s', 8.0, 'Seconds of each env-only, vector-env and inference-only measurement.')
flags.DEFINE_integer('learner_updates', 1, 'Timed updates of learner-only per variant (after 1 untimed one).')
flags.DEFINE_integer('warmup_iterations', 1, 'System iterations before the timed window (tracing, first steps).')
flags.DEFINE_integer('system_iterations', 2, 'Whole system iterations in the timed window.')
flags.DEFINE_integer('seed', 0, 'Seed of the networks and the environments.')
flags.DEFINE_string('out', os.path.join(ROOT, 'docs', 'vae_pg_throughput'),
                    'Appends a JSON line to OUT.jsonl and writes OUT.md; empty: print only.')
FLAGS = flags.FLAGS


# ----------------------------------------------------------------------------------------------- environments


def make_rollouts(cfg, runtime: str, seed: int):
  from rlcv_tf.runtime import pools  # pylint: disable=g-import-not-at-top
  from rlcv_tf.runtime import sync_rollouts  # pylint: disable=g-import-not-at-top
  configs = sync_rollouts.actor_configs(cfg.env, cfg.num_envs, cfg.envs_per_actor, seed=seed,
                                        num_frames=cfg.num_frames)
  return sync_rollouts.SyncRollouts(pools.make_pool(configs, runtime=runtime), cfg.t_max)


def env_only(cfg, runtime: str, num_actions: int, seconds: float) -> dict:
  """Agent steps/s of `SyncRollouts.collect` with a random policy (after one untimed rollout)."""
  return machine_state.env_only(make_rollouts(cfg, runtime, seed=1000 + cfg.seed),
                                machine_state.RandomPolicy(num_actions, seed=cfg.seed), seconds)


def vector_settings(cfg, game: str, threads: int) -> dict:
  """AtariVectorEnv's keyword arguments, set as close to the seed-001 adapter preset as its options allow."""
  from rlcv_tf.envs import atari  # pylint: disable=g-import-not-at-top
  return dict(game=game, num_envs=cfg.num_envs, frameskip=atari.SEED_ACTION_REPEAT, img_height=cfg.image_size,
              img_width=cfg.image_size, grayscale=True, stack_num=cfg.num_frames, maxpool=False,
              noop_max=atari.SEED001_NOOP_MAX, use_fire_reset=True, episodic_life=False, life_loss_info=False,
              reward_clipping=False, repeat_action_probability=0.0,
              max_num_frames_per_episode=atari.SEED001_MAX_AGENT_STEPS, num_threads=threads)


# What AtariVectorEnv does differently from the seed-001 adapter preset with the settings above (ALE's
# src/ale/vector/preprocessed_env sources, as read for this benchmark; the adapter: rlcv_tf/envs/atari.py).
VECTOR_DIFFERENCES = (
    'the C++ loop in its own threads (num_threads) and no Python per environment',
    'grey from ALE\'s palette (the adapter reads obs_type="grayscale", the same palette) and cv::resize INTER_AREA '
    'to 84x84 (the adapter: cv2 INTER_AREA), but with maxpool=False the frame it keeps of each 4-frame repeat is '
    'its own choice (the adapter keeps the last)',
    'no-ops at reset drawn by its own generator (0..noop_max-1 plus one, FIRE counted in), FIRE once at reset; no '
    'FIRE after a lost life (the adapter holds FIRE for one more agent step when a life is lost)',
    'max_num_frames_per_episode counts its agent steps: 27,000 as the adapter\'s cap',
    'observations [E, n, 84, 84] uint8 (the adapter: [1, 84, 84, n] per environment); rewards unclipped in both',
)


def vector_comparison(cfg, game: str, threads_list, seconds: float) -> dict:
  """AtariVectorEnv vs E adapters stepped one by one (random actions, same E), agent steps/s and their ratio."""
  from ale_py import AtariVectorEnv  # pylint: disable=g-import-not-at-top
  from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(cfg.seed)
  envs = [registry.make_env(cfg.env, seed=cfg.seed + 3000 + i, num_frames=cfg.num_frames)
          for i in range(cfg.num_envs)]
  try:
    num_actions = envs[0].num_actions
    for e in envs:
      e.reset()
    meter = machine_state.CpuMeter()
    meter.start()
    steps, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < seconds:
      for e in envs:
        e.step(np.array([rng.integers(num_actions)]))
      steps += len(envs)
    wall = time.monotonic() - t0
    adapters = dict(agent_steps_per_s=steps / wall, agent_steps=steps, wall_s=wall, cpu_percent=meter.stop(),
                    observation_shape=list(envs[0].observation_spec().shape))
  finally:
    for e in envs:
      close = getattr(e, 'close', None)
      if close:
        close()
  rows = []
  for threads in threads_list:
    kwargs = vector_settings(cfg, game, threads)
    venv = AtariVectorEnv(**kwargs)
    try:
      obs, _ = venv.reset(seed=cfg.seed + 4000)
      n = int(venv.single_action_space.n)
      for _ in range(10):
        venv.step(rng.integers(0, n, cfg.num_envs))
      meter = machine_state.CpuMeter()
      meter.start()
      steps, t0 = 0, time.monotonic()
      while time.monotonic() - t0 < seconds:
        obs, _, _, _, _ = venv.step(rng.integers(0, n, cfg.num_envs))
        steps += cfg.num_envs
      wall = time.monotonic() - t0
      rate = steps / wall
      rows.append(dict(num_threads=threads, agent_steps_per_s=rate, agent_steps=steps, wall_s=wall,
                       cpu_percent=meter.stop(), observation_shape=list(obs.shape),
                       over_adapters=rate / adapters['agent_steps_per_s'],
                       settings={k: v for k, v in kwargs.items() if k != 'num_threads'}))
    finally:
      venv.close()
  return dict(adapters=adapters, vector=rows, differences=list(VECTOR_DIFFERENCES))


# ----------------------------------------------------------------------------------------------- networks


def write_standin_pretrain(cfg, logdir: str) -> str:
  """A pre-training directory holding the Table 1 VAE at its random initialisation (module docstring)."""
  import keras  # pylint: disable=g-import-not-at-top
  from rlcv_tf.core import runs  # pylint: disable=g-import-not-at-top
  from rlcv_tf.vae_pg import training  # pylint: disable=g-import-not-at-top
  from rlcv_tf.vae_pg import vae as vae_lib  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(cfg.seed)
  vae = vae_lib.VAE(cfg.image_size, cfg.enc_filters, cfg.enc_fc, cfg.latent_dim).build_all()
  vae(tf.zeros((1, cfg.image_size, cfg.image_size, 1)), sample=False)   # marks the whole model built for Keras
  path = os.path.join(logdir, training.VAE_WEIGHTS)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  vae.save_weights(path)
  runs.record_config(logdir, dict(cfg.to_dict(), stage='pretrain', note='benchmark stand-in: random weights'), 0)
  return logdir


def stored_batch(cfg, learner):
  """One real rollout of the learner's acting policy on inline environments, as the update's `ppo.Batch`."""
  from rlcv_tf.vae_pg import ppo  # pylint: disable=g-import-not-at-top
  from rlcv_tf.vae_pg import training  # pylint: disable=g-import-not-at-top
  rollouts = make_rollouts(cfg, 'inline', seed=2000 + cfg.seed)
  with rollouts:
    rollout = rollouts.collect(training.ActingPolicy(learner, seed=cfg.seed + 1))
  bootstrap = learner.values(rollout.observations[-1])
  batch = ppo.flatten_rollout(rollout, rollout.extras['log_prob'], rollout.extras['value'], bootstrap, cfg)
  return rollout, batch


def inference_only(cfg, learner, rollout, seconds: float) -> dict:
  """Agent steps/s of the acting step alone on stored observations (E a call)."""
  from rlcv_tf.vae_pg import training  # pylint: disable=g-import-not-at-top
  acting = training.ActingPolicy(learner, seed=cfg.seed + 2)
  t_max = rollout.num_steps
  for i in range(3):
    acting(rollout.observations[i % t_max], (), rollout.first[i % t_max])
  meter = machine_state.CpuMeter()
  meter.start()
  calls, t0 = 0, time.monotonic()
  while time.monotonic() - t0 < seconds:
    acting(rollout.observations[calls % t_max], (), rollout.first[calls % t_max])
    calls += 1
  wall = time.monotonic() - t0
  cpu = meter.stop()
  return dict(agent_steps_per_s=calls * cfg.num_envs / wall, calls=calls, ms_per_call=1e3 * wall / calls,
              wall_s=wall, cpu_percent=cpu, cpu_ms_per_step=10.0 * cpu * wall / (calls * cfg.num_envs))


def learner_only(cfg, learner, batch, updates: int) -> dict:
  """Samples/s of `PPOLearner.update` on the stored batch (E x t_max samples an update), after one untimed update."""
  rng = np.random.default_rng(cfg.seed + 5)
  learner.update(batch, rng)
  meter = machine_state.CpuMeter()
  meter.start()
  minibatches = []
  t0 = time.monotonic()
  for _ in range(updates):
    minibatches.append(int(learner.update(batch, rng)['ppo/minibatch_updates']))
  wall = time.monotonic() - t0
  cpu = meter.stop()
  return dict(samples_per_s=updates * batch.size / wall, updates=updates, samples_per_update=batch.size,
              ms_per_update=1e3 * wall / updates, minibatch_updates=minibatches,
              minibatch_samples_per_s=sum(minibatches) * (batch.size // cfg.num_minibatches) / wall,
              trained_variables=int(sum(int(np.prod(v.shape)) for v in learner.variables)),
              wall_s=wall, cpu_percent=cpu, cpu_ms_per_update=10.0 * cpu * wall / updates,
              cpu_ms_per_step=10.0 * cpu * wall / (updates * batch.size))


# ----------------------------------------------------------------------------------------------- system


class TimedPool:
  """Wraps an actor pool: the time of every `send_actions` that answers all actors (one per step of a rollout),
  the (start, seconds) of every `send_actions` and `receive` (the environment side of the loop) and the time the
  loop hands the pool back (`close`, right after its last iteration); with a `meter`, also the CPU seconds (this
  process and its actor processes) at the `mark`-th full step and at `close`."""

  def __init__(self, pool, meter=None, mark: int = 0):
    self._pool = pool
    self._meter = meter
    self._mark = mark
    self.times = []
    self.env_calls = []
    self.closed_at = None
    self.cpu_at_mark = None
    self.cpu_at_close = None

  def __getattr__(self, name):
    return getattr(self._pool, name)

  def send_actions(self, actor_ids, actions):
    t0 = time.monotonic()
    if len(actor_ids) == self._pool.num_actors:
      if self._meter is not None and len(self.times) == self._mark:
        self.cpu_at_mark = self._meter.total()
        t0 = time.monotonic()
      self.times.append(t0)
    try:
      return self._pool.send_actions(actor_ids, actions)
    finally:
      self.env_calls.append((t0, time.monotonic() - t0))

  def receive(self, timeout):
    t0 = time.monotonic()
    try:
      return self._pool.receive(timeout)
    finally:
      self.env_calls.append((t0, time.monotonic() - t0))

  def close(self):
    if self.closed_at is None:
      self.closed_at = time.monotonic()
      if self._meter is not None:
        self.cpu_at_close = self._meter.total()
    return self._pool.close()


def system(cfg, pretrain_logdir, warmup: int, iterations: int) -> dict:
  """Agent steps/s of `training.train_rl` over `iterations` whole iterations after `warmup` ones (docstring)."""
  from rlcv_tf.vae_pg import training  # pylint: disable=g-import-not-at-top
  pools = []
  meter = machine_state.CpuMeter()
  first = warmup * cfg.t_max      # step k*T opens iteration k (0-based)

  def factory(c, seed_base):
    pools.append(TimedPool(training._pool_factory(c, seed_base), meter, first))  # pylint: disable=protected-access
    return pools[-1]

  lines = []
  meter.start()
  with tempfile.TemporaryDirectory() as logdir:
    t0 = time.monotonic()
    result = training.train_rl(cfg, logdir, pretrain_logdir if cfg.variant != 'joint' else None,
                               print_fn=lines.append, pool_factory=factory, max_iterations=warmup + iterations)
    total_wall = time.monotonic() - t0
  cpu = meter.stop()
  pool = pools[0]
  if result.iterations < warmup + iterations or len(pool.times) <= first or pool.closed_at is None:
    raise RuntimeError(f'the {cfg.variant} system run stopped after {result.iterations} iterations: '
                       f'{" | ".join(lines[-3:])}')
  start = pool.times[first]
  window = pool.closed_at - start
  steps = iterations * cfg.t_max * cfg.num_envs
  env_side = sum(d for t, d in pool.env_calls if start <= t < pool.closed_at)
  cpu_window = pool.cpu_at_close - pool.cpu_at_mark
  return dict(agent_steps_per_s=steps / window, window_s=window, window_iterations=iterations,
              cpu_percent_window=100.0 * cpu_window / window, cpu_ms_per_step=1e3 * cpu_window / steps,
              ms_per_iteration=1e3 * window / iterations, env_side_ms_per_iteration=1e3 * env_side / iterations,
              total_wall_s=total_wall, cpu_percent_whole_run=cpu,
              minibatch_updates_last_iteration=int(result.logs.get('ppo/minibatch_updates', 0)),
              episodes_ended=len(result.episodes),
              mean_episode_length=(float(np.mean([e['length'] for e in result.episodes])) if result.episodes
                                   else None))


# ----------------------------------------------------------------------------------------------- report


def _fmt(v, digits=1):
  return '-' if v is None else f'{v:,.{digits}f}'


def env_table(row: dict) -> str:
  lines = ['| runtime | env-only agent steps/s | emulator frames/s | CPU % | episodes ended |', '|---|---|---|---|---|']
  for runtime, e in row['env_only'].items():
    lines.append(f'| {runtime} | {_fmt(e["agent_steps_per_s"])} | {_fmt(e["emulator_frames_per_s"], 0)} | '
                 f'{e["cpu_percent"]:.0f} | {e["episodes_ended"]} |')
  return '\n'.join(lines)


def variant_table(row: dict) -> str:
  lines = ['| variant | trained variables | learner-only samples/s (CPU %) | ms per update | learner time / fixed | '
           'learner CPU / fixed | system agent steps/s (CPU %) | serial bound | system / bound | system / env-only | '
           'CPU ms an agent step: parts / system |', '|---|---|---|---|---|---|---|---|---|---|---|']
  for v, r in row['variants'].items():
    lo, sy = r['learner_only'], r['system']
    lines.append(
        f'| {v} | {lo["trained_variables"]:,} | {_fmt(lo["samples_per_s"])} ({lo["cpu_percent"]:.0f}) | '
        f'{lo["ms_per_update"]:,.0f} | {_fmt(r.get("learner_time_over_fixed"), 2)} | '
        f'{_fmt(r.get("learner_cpu_over_fixed"), 2)} | '
        f'{_fmt(sy["agent_steps_per_s"])} ({sy["cpu_percent_window"]:.0f}) | {_fmt(r["serial_bound"])} | '
        f'{r["system_over_serial_bound"]:.3f} | {r["system_over_env_only"]:.3f} | '
        f'{r["parts_cpu_ms_per_step"]:.2f} / {sy["cpu_ms_per_step"]:.2f} = {_fmt(r["parts_cpu_over_system_cpu"], 3)} |')
  return '\n'.join(lines)


def vector_table(row: dict) -> str:
  vc = row['vector_env']
  a = vc['adapters']
  lines = ['| stepping | num_threads | agent steps/s | CPU % | / adapters one by one |', '|---|---|---|---|---|',
           f'| {row["settings"]["num_envs"]} project adapters one by one | - | {_fmt(a["agent_steps_per_s"])} | '
           f'{a["cpu_percent"]:.0f} | 1.000 |']
  for r in vc['vector']:
    lines.append(f'| AtariVectorEnv | {r["num_threads"]} | {_fmt(r["agent_steps_per_s"])} | {r["cpu_percent"]:.0f} | '
                 f'{r["over_adapters"]:.3f} |')
  return '\n'.join(lines)


def ratio_line(row: dict, key: str = 'learner_time_over_fixed') -> str:
  """'joint 12.3 : adapt 4.5 : fixed 1.00' (learner time per iteration over fixed's, or with key
  'learner_cpu_over_fixed' its CPU time; the variants measured)."""
  order = [v for v in reversed(presets.VARIANTS) if v in row['variants']]
  parts = [f'{v} {row["variants"][v][key]:.2f}' for v in order if row['variants'][v].get(key) is not None]
  return ' : '.join(parts)


def markdown(rows: list) -> str:
  row = rows[-1]
  s = row['settings']
  m = row['machine']
  per_iteration = s['num_envs'] * s['t_max']
  out = [
      '# Seed-001 throughput: env-only, inference-only, learner-only and full PPO training per variant',
      '',
      'Written by `python benchmarks/vae_pg_throughput.py` (issue 14 Sec. 5); every number below comes from one run '
      'on one machine, in agent steps per second (actions applied, one per environment and step) unless said '
      'otherwise. **The machine is shared with other engineers\' CPU-heavy jobs** (load average and the busiest other '
      'processes below): the numbers move with that load, and each part ran at a different time. Seed 001 gives no '
      'throughput figures (its runs: 16 envs x 2,048 steps, 10^7 agent steps, on a GPU).',
      '',
      '## Latest run',
      '',
      f'- date {m["date"]}, host {m["host"]}, {m["device"]}, {m["cpu_count"]} cores ({m["processor"]}), '
      f'TensorFlow {m["tf_version"]}, code {m["code"]}',
      f'- load average (1, 5, 15 min) at start {row["load_average"]["start"]}, at the end '
      f'{row["load_average"]["end"]}; after each part: '
      + '; '.join(f'{k} {v}' for k, v in row['load_average']['after'].items()),
      '- other work on the machine at start: '
      + ('; '.join(f'{w["command"]} ({w["cpu_percent"]}% CPU)' for w in row['other_work']) or 'none seen'),
      f'- settings: {s["env"]}, {s["preset"]} preset network (encoder Conv {s["enc_filters"][0]}-'
      f'{s["enc_filters"][1]} + FC {s["enc_fc"]}, {s["latent_dim"]} latents, n = {s["num_frames"]} frames of '
      f'{s["image_size"]}x{s["image_size"]}, trunk {"-".join(map(str, s["hidden"]))} tanh, {s["num_actions"]} '
      f'actions); {s["num_envs"]} environments x t_max {s["t_max"]} ({per_iteration} agent steps an iteration), '
      f'{s["num_minibatches"]} minibatches x {s["epochs"]} epoch(s) per update '
      f'(minibatch {per_iteration // s["num_minibatches"]}), KL early stop '
      + (f'on (delta_target {s["delta_target"]})' if s['kl_early_stop'] else 'off (every minibatch step runs)') + '; '
      f'env-only, vector env and inference-only {s["component_s"]:g} s each, learner-only 1 + '
      f'{s["learner_updates"]} update(s) per variant, system {s["warmup_iterations"]} + {s["system_iterations"]} '
      f'iterations on {s["system_runtime"]} ({s["envs_per_actor"]} environments an actor process)',
      '- fixed and adapt start from a stand-in pre-trained VAE (the Table 1 VAE at its random initialisation): '
      'throughput does not depend on the weights\' values',
      '',
      '### Environments',
      '',
      env_table(row),
      '',
  ]
  if row.get('vector_env'):
    vc = row['vector_env']
    st = dict(vc['vector'][0]['settings']) if vc['vector'] else {}
    out += [
        vector_table(row),
        '',
        'AtariVectorEnv settings: ' + ', '.join(f'{k}={v!r}' for k, v in st.items()) + '. Its preprocessing is not '
        'identical to the adapter\'s (`atari_breakout_seed001`; as read in ALE\'s C++ sources, '
        'src/ale/vector/preprocessed_env, not compared frame by frame): ' + '; '.join(vc['differences'])
        + '. Both step '
        f'{s["num_envs"]} games with uniformly random actions; observations {vc["vector"][0]["observation_shape"]} '
        f'(vector) vs {vc["adapters"]["observation_shape"]} per adapter.' if vc['vector'] else '',
        '',
    ]
  else:
    out += [f'No AtariVectorEnv comparison: {row.get("vector_env_skipped", "not requested")}.', '']
  inf = row['inference_only']
  out += [
      '### Learner and system per variant',
      '',
      variant_table(row),
      '',
      f'Inference-only (the same network in every variant): {_fmt(inf["agent_steps_per_s"])} agent steps/s, '
      f'{inf["ms_per_call"]:.1f} ms per batched acting call of {s["num_envs"]} observations (CPU '
      f'{inf["cpu_percent"]:.0f}% of one core). Learner time per iteration joint : adapt : fixed = '
      f'**{ratio_line(row)}** (wall ms per update over fixed\'s); in CPU time '
      f'**{ratio_line(row, "learner_cpu_over_fixed")}**.',
      '',
  ]
  for v, r in row['variants'].items():
    lo, sy, p = r['learner_only'], r['system'], r['predicted_ms']
    out.append(
        f'- {v}: learner-only {lo["ms_per_update"]:,.0f} ms an update of {lo["samples_per_update"]} samples '
        f'({lo["minibatch_updates"]} minibatch steps, CPU {lo["cpu_percent"]:.0f}%); system '
        f'{sy["ms_per_iteration"]:,.0f} ms an iteration over {sy["window_iterations"]} iterations '
        f'({sy["window_s"]:.1f} s; {sy["minibatch_updates_last_iteration"]} minibatch steps in the last update), the '
        f'whole train_rl() call {sy["total_wall_s"]:.0f} s at {sy["cpu_percent_whole_run"]:.0f}% CPU. Of an '
        f'iteration, {sy["env_side_ms_per_iteration"]:,.0f} ms in the pool\'s send_actions / receive (env-only '
        f'predicts {p["env"]:,.0f}) and {sy["ms_per_iteration"] - sy["env_side_ms_per_iteration"]:,.0f} ms '
        f'elsewhere (inference-only and learner-only predict {p["inference"]:,.0f} + {p["learner"]:,.0f}).')
  out += [
      '',
      '## Reading',
      '',
      '- The serial bound 1 / (1/env + 1/inference + 1/learner) assumes the three parts run one after the other and '
      'nothing else, which is how the synchronous loop runs (collect t_max steps with one acting call a step, then '
      'update), so system / bound is at most about 1; what it loses is the loop\'s own work (the bootstrap value, '
      'GAE, episode bookkeeping, summaries) and interference from other work on the machine.',
      '- Where an agent step\'s time goes by the components (env / inference / learner, % of the serial bound\'s '
      'cost): ' + '; '.join(
          f'{v}: {100 * r["serial_bound"] / r["env_rate"]:.0f} / '
          f'{100 * r["serial_bound"] / inf["agent_steps_per_s"]:.0f} / '
          f'{100 * r["serial_bound"] / r["learner_only"]["samples_per_s"]:.0f}'
          for v, r in row['variants'].items()) + '.',
      '- Learner cost by variant: fixed trains only the 64-64 MLP and its heads (the encoder runs forward on the n '
      'frames, gradient-stopped); adapt also back-propagates through the encoder; joint adds the decoder and the '
      'VAE loss on all n frames of every sample (spec A10). The update time scales with epochs x samples; the '
      f'paper\'s 16 x 2,048 samples x 10 epochs is {16 * 2048 * 10 / (per_iteration * s["epochs"]):,.0f} times '
      f'this run\'s {s["num_envs"]} x {s["t_max"]} x {s["epochs"]}.',
      '- Shared cores: each part gets its own share of them (the CPU % columns, of one core; 200% is both). A part '
      'measured while other jobs starved it looks slower than it runs inside the system, which can push system / '
      'bound above 1 (and the other way round). The CPU-time column is less sensitive to that: CPU ms an agent step '
      'of the three parts (env-only on the system\'s runtime, actor processes included; inference-only; '
      'learner-only) against the system\'s over its window, about 1 when the system does no more work than its '
      'parts, below 1 by the loop\'s own work. It is not pure work either (TensorFlow\'s thread pools spin while '
      'waiting; contention changes cache behaviour).',
      '- Confounds: the machine is shared (load above); each part ran at a different time, so load changes between '
      'parts move the ratios. Env-only uses a random policy; the system\'s episodes (its policy near random this '
      'early) may differ in length and resets. The AtariVectorEnv rows differ in preprocessing as listed.',
  ]
  if len(rows) > 1:
    out += ['', '## All runs in the JSON lines file', '',
            '| date | env | envs x t_max | mb x epochs | variant | env-only | inference | learner | bound | system | '
            'sys / bound | learner / fixed | learner CPU / fixed | CPU parts / system | load at start |',
            '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    spread = {}
    for r in rows:
      st = r['settings']
      for v, x in r['variants'].items():
        out.append(f'| {r["machine"]["date"]} | {st["env"]} | {st["num_envs"]} x {st["t_max"]} | '
                   f'{st["num_minibatches"]} x {st["epochs"]} | {v} | {_fmt(x["env_rate"])} | '
                   f'{_fmt(r["inference_only"]["agent_steps_per_s"])} | {_fmt(x["learner_only"]["samples_per_s"])} '
                   f'| {_fmt(x["serial_bound"])} | {_fmt(x["system"]["agent_steps_per_s"])} | '
                   f'{x["system_over_serial_bound"]:.2f} | {_fmt(x.get("learner_time_over_fixed"), 2)} | '
                   f'{_fmt(x.get("learner_cpu_over_fixed"), 2)} | {_fmt(x.get("parts_cpu_over_system_cpu"), 2)} | '
                   f'{r["load_average"]["start"]} |')
        for key in ('system_over_serial_bound', 'parts_cpu_over_system_cpu', 'learner_time_over_fixed',
                    'learner_cpu_over_fixed'):
          if x.get(key) is not None:
            spread.setdefault(key, {}).setdefault(v, []).append(x[key])

      for x in (r.get('vector_env') or {}).get('vector', []):
        spread.setdefault('vector', {}).setdefault(f'num_threads={x["num_threads"]}', []).append(x['over_adapters'])

    def span(key):
      return '; '.join(f'{v} {min(a):.2f} to {max(a):.2f}' for v, a in spread.get(key, {}).items())

    out += ['', f'Over these {len(rows)} runs (all settings): system / serial bound (wall clock) '
            f'{span("system_over_serial_bound")}; CPU ms an agent step, parts / system '
            f'{span("parts_cpu_over_system_cpu")}; learner time over fixed\'s, wall {span("learner_time_over_fixed")}, '
            f'CPU {span("learner_cpu_over_fixed")}'
            + (f'; AtariVectorEnv / adapters one by one {span("vector")}' if 'vector' in spread else '') + '.']
  return '\n'.join(out) + '\n'


# ----------------------------------------------------------------------------------------------- main


def check_flags():
  bad = [v for v in FLAGS.variants if v not in presets.VARIANTS]
  if bad or not FLAGS.variants:
    machine_state.fail(f'--variants={",".join(FLAGS.variants)}: valid values are {", ".join(presets.VARIANTS)} '
                       '(comma-separated)')
  bad = [r for r in FLAGS.runtimes if r not in presets.RUNTIMES]
  if bad or not FLAGS.runtimes:
    machine_state.fail(f'--runtimes={",".join(FLAGS.runtimes)}: valid values are {", ".join(presets.RUNTIMES)} '
                       '(comma-separated)')
  if FLAGS.system_runtime not in FLAGS.runtimes:
    machine_state.fail(f'--system_runtime={FLAGS.system_runtime}: must be one of --runtimes '
                       f'({",".join(FLAGS.runtimes)}), whose env-only rate the serial bound uses')
  try:
    threads = [int(t) for t in FLAGS.vector_threads]
  except ValueError:
    threads = [-1]
  if any(t < 0 for t in threads):
    machine_state.fail(f'--vector_threads={",".join(FLAGS.vector_threads)}: integers >= 0 (0: ale_py\'s default), '
                       'comma-separated, or empty for no comparison')
  for name, low in (('component_s', 1e-3), ('learner_updates', 1), ('warmup_iterations', 1),
                    ('system_iterations', 1)):
    if getattr(FLAGS, name) < low:
      machine_state.fail(f'--{name}={getattr(FLAGS, name)}: must be >= {low:g}')
  try:
    cfg = presets.preset(FLAGS.preset, env=FLAGS.env, num_envs=FLAGS.num_envs, t_max=FLAGS.t_max,
                         envs_per_actor=FLAGS.envs_per_actor, num_minibatches=FLAGS.num_minibatches,
                         epochs=FLAGS.epochs, seed=FLAGS.seed, total_steps=10 ** 12, checkpoint_interval_s=1e9,
                         log_interval_s=1e9, runtime=FLAGS.system_runtime)
    if not FLAGS.kl_early_stop:
      cfg = cfg.replace(delta_target=NO_KL_STOP).validate()
  except ValueError as e:
    machine_state.fail(f'{e} (set it with the matching flag)')
  from rlcv_tf.envs import base  # pylint: disable=g-import-not-at-top
  from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
  try:
    registry.entry(cfg.env)
    registry.check_available(cfg.env)
  except ValueError as e:
    machine_state.fail(f'--env={cfg.env}: {e}')
  except base.EnvironmentUnavailableError as e:
    machine_state.fail(str(e))
  return cfg, threads


def vector_game(cfg):
  """(game, None) when --env is an ALE seed-001 preset the vector env can mirror, else (None, why not)."""
  from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
  e = registry.entry(cfg.env)
  kwargs = dict(e.kwargs)
  if e.module != 'atari' or kwargs.get('preset') != 'seed001':
    return None, f'{cfg.env} is not an ALE seed-001 preset (AtariVectorEnv mirrors only those)'
  return kwargs['game'], None


def main(argv):
  if len(argv) > 1:
    machine_state.fail(f'unexpected arguments {argv[1:]}; all settings are --flags (see --help)')
  logging.set_verbosity(logging.WARNING)   # no INFO lines from the SavedModel export at the end of train_rl()
  cfg, threads = check_flags()
  load_start = machine_state.load_average()
  busy = machine_state.other_work()
  print(f'[bench] {cfg.env}, {cfg.preset} network, {cfg.num_envs} envs x t_max {cfg.t_max}, {cfg.num_minibatches} '
        f'minibatches x {cfg.epochs} epoch(s); load average {load_start} on {os.cpu_count()} cores (shared machine); '
        'other work: ' + ('; '.join(f'{w["command"][:60]} ({w["cpu_percent"]}%)' for w in busy) or 'none seen'),
        flush=True)
  t_run = time.monotonic()
  from rlcv_tf.core import quiet  # pylint: disable=g-import-not-at-top
  tf = quiet.import_tensorflow()
  from rlcv_tf.vae_pg import ppo  # pylint: disable=g-import-not-at-top
  from rlcv_tf.vae_pg import training  # pylint: disable=g-import-not-at-top
  info = machine_state.machine_info(tf)
  try:
    layout = training.env_layout(cfg)      # (observation shape, number of actions, ...)
    observation_shape, num_actions = layout[0], layout[1]
  except ValueError as e:
    machine_state.fail(str(e))
  after = {}

  env_rates = {}
  for runtime in FLAGS.runtimes:
    env_rates[runtime] = env_only(cfg, runtime, num_actions, FLAGS.component_s)
    after[f'env-only {runtime}'] = machine_state.load_average()
    e = env_rates[runtime]
    print(f'[bench] env-only ({runtime}): {e["agent_steps_per_s"]:,.1f} agent steps/s, '
          f'{_fmt(e["emulator_frames_per_s"], 0)} emulator frames/s', flush=True)

  game, skipped = vector_game(cfg)
  vector = None
  if game and threads:
    vector = vector_comparison(cfg, game, threads, FLAGS.component_s)
    after['vector env'] = machine_state.load_average()
    for r in vector['vector']:
      print(f'[bench] AtariVectorEnv (num_threads={r["num_threads"]}): {r["agent_steps_per_s"]:,.1f} agent steps/s '
            f'vs {vector["adapters"]["agent_steps_per_s"]:,.1f} for {cfg.num_envs} adapters one by one: ratio '
            f'{r["over_adapters"]:.3f}', flush=True)
  elif not threads:
    skipped = '--vector_threads is empty'

  learner = ppo.PPOLearner(cfg.replace(variant=FLAGS.variants[0]), num_actions, seed=cfg.seed)
  rollout, batch = stored_batch(cfg.replace(variant=FLAGS.variants[0]), learner)
  infer = inference_only(cfg, learner, rollout, FLAGS.component_s)
  after['inference-only'] = machine_state.load_average()
  print(f'[bench] inference-only: {infer["agent_steps_per_s"]:,.1f} agent steps/s ({infer["ms_per_call"]:.1f} ms a '
        'call)', flush=True)
  del learner

  with tempfile.TemporaryDirectory() as pretrain_dir:
    write_standin_pretrain(cfg, pretrain_dir)
    learners = {}
    for v in FLAGS.variants:
      vcfg = cfg.replace(variant=v)
      learner = ppo.PPOLearner(vcfg, num_actions, seed=cfg.seed)
      if v != 'joint':
        learner.load_pretrained(os.path.join(pretrain_dir, training.VAE_WEIGHTS))
      learners[v] = learner_only(vcfg, learner, batch, FLAGS.learner_updates)
      after[f'learner-only {v}'] = machine_state.load_average()
      del learner
      print(f'[bench] learner-only ({v}): {learners[v]["samples_per_s"]:,.1f} samples/s '
            f'({learners[v]["ms_per_update"]:,.0f} ms an update of {batch.size} samples)', flush=True)
    base_ms = learners['fixed']['ms_per_update'] if 'fixed' in learners else None
    base_cpu = learners['fixed']['cpu_ms_per_update'] if 'fixed' in learners else None

    env_rate = env_rates[FLAGS.system_runtime]['agent_steps_per_s']
    env_cpu = env_rates[FLAGS.system_runtime]['cpu_ms_per_step']
    variants = {}
    for v in FLAGS.variants:
      vcfg = cfg.replace(variant=v)
      sysr = system(vcfg, pretrain_dir, FLAGS.warmup_iterations, FLAGS.system_iterations)
      after[f'system {v}'] = machine_state.load_average()
      lo = learners[v]
      bound = 1.0 / (1.0 / env_rate + 1.0 / infer['agent_steps_per_s'] + 1.0 / lo['samples_per_s'])
      per_iteration = cfg.num_envs * cfg.t_max
      cpu_bound = env_cpu + infer['cpu_ms_per_step'] + lo['cpu_ms_per_step']
      variants[v] = dict(
          learner_only=lo, system=sysr, env_rate=env_rate, serial_bound=bound,
          system_over_serial_bound=sysr['agent_steps_per_s'] / bound,
          system_over_env_only=sysr['agent_steps_per_s'] / env_rate,
          learner_time_over_fixed=None if base_ms is None else lo['ms_per_update'] / base_ms,
          # None where a CPU time is below the process clock's resolution (tiny smoke settings)
          learner_cpu_over_fixed=None if not base_cpu else lo['cpu_ms_per_update'] / base_cpu,
          parts_cpu_ms_per_step=cpu_bound,
          parts_cpu_over_system_cpu=cpu_bound / sysr['cpu_ms_per_step'] if sysr['cpu_ms_per_step'] else None,
          predicted_ms=dict(env=1e3 * per_iteration / env_rate,
                            inference=1e3 * per_iteration / infer['agent_steps_per_s'],
                            learner=lo['ms_per_update']))
      print(f'[bench] system ({v}, {FLAGS.system_runtime}): {sysr["agent_steps_per_s"]:,.1f} agent steps/s; serial '
            f'bound {bound:,.1f}; system / bound {variants[v]["system_over_serial_bound"]:.3f}; an iteration '
            f'{sysr["ms_per_iteration"]:,.0f} ms, of which {sysr["env_side_ms_per_iteration"]:,.0f} ms on the '
            f'environment side; CPU {sysr["cpu_percent_window"]:.0f}% over the window, CPU ms an agent step: parts '
            f'{cpu_bound:.2f} / system {sysr["cpu_ms_per_step"]:.2f} = '
            f'{_fmt(variants[v]["parts_cpu_over_system_cpu"], 3)}', flush=True)

  row = dict(benchmark='vae_pg_throughput', machine=info,
             load_average=dict(start=load_start, end=machine_state.load_average(), after=after), other_work=busy,
             shared_machine=True, run_wall_s=time.monotonic() - t_run,
             settings=dict(env=cfg.env, preset=cfg.preset, image_size=cfg.image_size, num_frames=cfg.num_frames,
                           enc_filters=list(cfg.enc_filters), enc_fc=cfg.enc_fc, latent_dim=cfg.latent_dim,
                           hidden=list(cfg.hidden), num_envs=cfg.num_envs, t_max=cfg.t_max,
                           envs_per_actor=cfg.envs_per_actor, num_minibatches=cfg.num_minibatches, epochs=cfg.epochs,
                           kl_early_stop=FLAGS.kl_early_stop, delta_target=cfg.delta_target,
                           kl_mode=cfg.kl_mode, kappa=cfg.kappa, variants=list(FLAGS.variants),
                           runtimes=list(FLAGS.runtimes), system_runtime=FLAGS.system_runtime,
                           component_s=FLAGS.component_s, learner_updates=FLAGS.learner_updates,
                           warmup_iterations=FLAGS.warmup_iterations, system_iterations=FLAGS.system_iterations,
                           vector_threads=threads, observation_shape=list(observation_shape),
                           num_actions=num_actions, seed=cfg.seed, pretrained_vae='stand-in: random initialisation'),
             env_only=env_rates, vector_env=vector, vector_env_skipped=skipped if vector is None else None,
             inference_only=infer, variants=variants)
  print()
  print(env_table(row))
  if vector:
    print()
    print(vector_table(row))
  print()
  print(variant_table(row))
  if base_ms is not None:
    print(f'\nlearner time per iteration (over fixed): wall {ratio_line(row)}; CPU '
          f'{ratio_line(row, "learner_cpu_over_fixed")}')
  print(f'[bench] whole run {row["run_wall_s"]:.0f} s; load average at the end {row["load_average"]["end"]} '
        '(shared machine)')
  if FLAGS.out:
    machine_state.save_report(FLAGS.out, row, 'vae_pg_throughput', markdown)


if __name__ == '__main__':
  app.run(main)
