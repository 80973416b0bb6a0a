r"""Throughput of Chapter 2's A3C-family training (issue 10 Sec. 7), every number measured in one run on one machine.

The thesis's batch A3C is synchronous (`runtime/sync_rollouts.py`): each iteration steps every environment t_max
times, with one batched acting step per time step, then makes one update. Nothing overlaps, so the best a run can
do is the serial bound below. For each `--runtimes` entry the benchmark measures, in agent steps per second
(actions applied; one per environment and step):

  env-only        `SyncRollouts.collect` through the actor pool (`pools.make_pool`) with a uniformly random NumPy
                  policy: stepping, transport and the rollout bookkeeping, no TensorFlow. Also emulator frames/s:
                  agent steps/s x the emulator frames per agent step of the episodes that ended in the window
                  (ALE's frame counter; 2-4 frames an agent step on Atari);
and, once per run (they do not depend on the runtime):
  inference-only  `training.ActingPolicy` (noise draw, `Learner.act`, Gumbel-max action) on the stored
                  observations of a real rollout, E observations a call, the LSTM state carried;
  learner-only    `Learner.update` on that stored rollout (E x t_max agent steps an update);
and per runtime again:
  system          `training.train` (validation off) for `--warmup_iterations` + `--system_iterations` iterations,
                  timed over the last `--system_iterations` - 1 whole iterations (collect + update) by the times the
                  pool was sent its actions; start-up, tracing, saving and export lie outside the window;
  serial bound    1 / (1/env-only + 1/inference + 1/learner): each agent step costs the sum of the three;
and the ratios system / env-only and system / serial bound (goal >= 0.9).

Each run appends one JSON line to OUT.jsonl and writes OUT.md: this run in full, then, once the file holds several,
every run of OUT.jsonl in a table.

  python benchmarks/stochastic_ac_throughput.py                              # Seaquest, SA3C, 8 envs, t_max 20
  python benchmarks/stochastic_ac_throughput.py --env=atari_breakout --model=a3c --runtimes=actors
  python benchmarks/stochastic_ac_throughput.py --env=cartpole_masked --component_s=1 --system_iterations=3

On a shared machine every number moves with the other work; the load average before and after each part is kept.
"""

import dataclasses
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
from rlcv_tf.stochastic_ac import config as config_lib  # pylint: disable=g-import-not-at-top  (no TensorFlow)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOAL_SYSTEM_OVER_BOUND = 0.9   # issue 10 Sec. 7

flags.DEFINE_string('env', 'atari_seaquest', 'Chapter 2 environment with discrete actions.')
flags.DEFINE_string('model', 'sa3c', 'A3C-family model (config.A3C_MODELS).')
flags.DEFINE_string('preset', 'laptop', 'Config preset whose network and per-game values are used (the scale '
                    'flags below override its number of environments and t_max).')
flags.DEFINE_integer('num_envs', 8, 'Environments (the thesis: 64).')
flags.DEFINE_integer('unroll_length', 20, 't_max, steps per rollout.')
flags.DEFINE_list('runtimes', ['inline', 'actors'], 'Runtimes measured (env-only and system): inline, actors.')
flags.DEFINE_integer('envs_per_actor', 1, 'Environments per actor process (runtime=actors).')
flags.DEFINE_float('component_s', 15.0, 'Seconds of env-only (per runtime) and of inference-only.')
flags.DEFINE_integer('learner_updates', 8, 'Timed updates of learner-only (after 2 warm-up updates).')
flags.DEFINE_integer('warmup_iterations', 2, 'System iterations before the timed window (tracing, first steps).')
flags.DEFINE_integer('system_iterations', 10, 'System iterations in the timed window (at least 2).')
flags.DEFINE_string('out', os.path.join(ROOT, 'docs', 'stochastic_ac_throughput'),
                    'Appends a JSON line to OUT.jsonl and writes OUT.md; empty: print only.')
FLAGS = flags.FLAGS


# ----------------------------------------------------------------------------------------------- parts


def make_rollouts(cfg, runtime: str, seed: int, initial_state=None):
  from rlcv_tf.runtime import pools  # pylint: disable=g-import-not-at-top
  from rlcv_tf.runtime import sync_rollouts  # pylint: disable=g-import-not-at-top
  configs = sync_rollouts.actor_configs(cfg.env, cfg.num_envs, cfg.envs_per_actor, seed=seed)
  pool = pools.make_pool(configs, runtime=runtime, actor_timeout_s=cfg.actor_timeout_s)
  return sync_rollouts.SyncRollouts(pool, cfg.unroll_length, initial_state=initial_state)


def env_only(cfg, runtime: str, num_actions: int, seconds: float) -> dict:
  """Agent steps/s of `SyncRollouts.collect` with a random policy (after one warm-up rollout)."""
  return machine_state.env_only(make_rollouts(cfg, runtime, seed=1000),
                                machine_state.RandomPolicy(num_actions, seed=0), seconds)


def stored_rollout(cfg, learner, training):
  """One real rollout of the learner's acting policy on inline environments (observations, noise, logits)."""
  rollouts = make_rollouts(cfg, 'inline', seed=2000,
                           initial_state=lambda e: training.numpy_state(learner.model, e))
  acting = training.ActingPolicy(learner, seed=1)
  with rollouts:
    acting.begin_rollout()
    return rollouts.collect(acting)


def inference_only(cfg, learner, rollout, training, seconds: float) -> dict:
  """Agent steps/s of the acting step alone on stored observations (E a call), state carried."""
  acting = training.ActingPolicy(learner, seed=2)
  state = training.numpy_state(learner.model, cfg.num_envs)
  t_max = rollout.num_steps

  def call(i, state):
    t = i % t_max
    if t == 0:
      acting.begin_rollout()
    _, new_state, _ = acting(rollout.observations[t], state, rollout.first[t])
    return new_state

  for i in range(3):
    state = call(i, state)
  meter = machine_state.CpuMeter()
  meter.start()
  calls, t0 = 0, time.monotonic()
  while time.monotonic() - t0 < seconds:
    state = call(calls, state)
    calls += 1
  wall = time.monotonic() - t0
  return dict(agent_steps_per_s=calls * cfg.num_envs / wall, calls=calls, ms_per_call=1e3 * wall / calls,
              wall_s=wall, cpu_percent=meter.stop())


def learner_only(cfg, learner, rollout, training, updates: int) -> dict:
  """Agent steps/s of `Learner.update` on the stored rollout (E x t_max per update)."""
  batch = training.rollout_batch(rollout, learner.specs)
  for _ in range(2):
    learner.update(batch)
  meter = machine_state.CpuMeter()
  meter.start()
  t0 = time.monotonic()
  for _ in range(updates):
    learner.update(batch)
  wall = time.monotonic() - t0
  per_update = cfg.num_envs * cfg.unroll_length
  return dict(agent_steps_per_s=updates * per_update / wall, updates=updates, ms_per_update=1e3 * wall / updates,
              wall_s=wall, cpu_percent=meter.stop())


class TimedPool:
  """Wraps an actor pool: the time of every `send_actions` that answers all actors (one per step of a rollout), and
  the (start, seconds) of every `send_actions` and `receive` call: the environment side of the loop (inline, the
  environments step inside `send_actions`; with actor processes, `receive` waits for them)."""

  def __init__(self, pool):
    self._pool = pool
    self.times = []
    self.env_calls = []

  def __getattr__(self, name):
    return getattr(self._pool, name)

  def send_actions(self, actor_ids, actions):
    t0 = time.monotonic()
    if len(actor_ids) == self._pool.num_actors:
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


def system(cfg, training, warmup: int, iterations: int) -> dict:
  """Agent steps/s of `training.train` over whole iterations after `warmup` ones (module docstring)."""
  pools = []

  def factory(c, seed_base):
    pools.append(TimedPool(training._pool_factory(c, seed_base)))  # pylint: disable=protected-access
    return pools[-1]

  lines = []
  meter = machine_state.CpuMeter()
  meter.start()
  with tempfile.TemporaryDirectory() as logdir:
    t0 = time.monotonic()
    result = training.train(cfg, logdir, print_fn=lines.append, pool_factory=factory,
                             max_iterations=warmup + iterations)
    total_wall = time.monotonic() - t0
  cpu = meter.stop()
  times = pools[0].times
  t_max = cfg.unroll_length
  # Step k*T opens iteration k (0-based); the span from iteration `warmup`'s first step to the last iteration's
  # first step holds iterations - 1 whole iterations, each a collect and its update.
  first, last = warmup * t_max, (warmup + iterations - 1) * t_max
  if result.iterations < warmup + iterations or len(times) <= last:
    raise RuntimeError(f'the system run stopped after {result.iterations} iterations: {" | ".join(lines[-3:])}')
  window = times[last] - times[first]
  steps = (iterations - 1) * t_max * cfg.num_envs
  fps = machine_state.frames_per_step(result.episodes)
  env_side = sum(d for t, d in pools[0].env_calls if times[first] <= t < times[last])
  return dict(agent_steps_per_s=steps / window, window_s=window, window_iterations=iterations - 1,
              ms_per_iteration=1e3 * window / (iterations - 1),
              env_side_ms_per_iteration=1e3 * env_side / (iterations - 1), total_wall_s=total_wall,
              cpu_percent_whole_run=cpu, emulator_frames_per_agent_step=fps, episodes_ended=len(result.episodes))


# ----------------------------------------------------------------------------------------------- report


def _fmt(v, digits=1):
  return '-' if v is None else f'{v:,.{digits}f}'


def table(row: dict) -> str:
  lines = ['| runtime | env-only | emulator frames/s | inference-only | learner-only | serial bound | system | '
           'system / env-only | system / serial bound | goal >= 0.9 |',
           '|---|---|---|---|---|---|---|---|---|---|']
  for runtime, r in row['runtimes'].items():
    lines.append(
        f'| {runtime} | {_fmt(r["env_only"]["agent_steps_per_s"])} | {_fmt(r["env_only"]["emulator_frames_per_s"], 0)} '
        f'| {_fmt(row["inference_only"]["agent_steps_per_s"])} | {_fmt(row["learner_only"]["agent_steps_per_s"])} '
        f'| {_fmt(r["serial_bound"])} | {_fmt(r["system"]["agent_steps_per_s"])} '
        f'| {r["system_over_env_only"]:.3f} | {r["system_over_serial_bound"]:.3f} '
        f'| {"met" if r["goal_met"] else "not met"} |')
  return '\n'.join(lines)


def markdown(rows: list) -> str:
  row = rows[-1]
  s = row['settings']
  m = row['machine']
  out = [
      '# Chapter 2 throughput: env-only, inference-only, learner-only and full training',
      '',
      'Written by `python benchmarks/stochastic_ac_throughput.py` (issue 10 Sec. 7); every number below comes from '
      'one run on one machine, in agent steps per second (actions applied, one per environment and step) unless '
      'said otherwise. The thesis gives no throughput figures for Chapter 2 (its runs: 64 agents, 150K iterations '
      'on a GPU machine).',
      '',
      '## Latest run',
      '',
      f'- date {m["date"]}, host {m["host"]}, {m["device"]}, {m["cpu_count"]} cores ({m["processor"]}), '
      f'TensorFlow {m["tf_version"]}, code {m["code"]}',
      f'- load average (1, 5, 15 min) at start {row["load_average"]["start"]}, at the end '
      f'{row["load_average"]["end"]}',
      f'- other work on the machine at start: '
      + ('; '.join(f'{w["command"]} ({w["cpu_percent"]}% CPU)' for w in row['other_work']) or 'none seen'),
      f'- settings: {s["env"]}, {s["model"]} ({s["preset"]} preset network: encoder {s["encoder"]}, LSTM '
      f'{s["lstm_units"]}, FC {s["fc_units"]}), {s["num_envs"]} environments, t_max {s["unroll_length"]} '
      f'({s["num_envs"] * s["unroll_length"]} agent steps an iteration); env-only and inference-only '
      f'{s["component_s"]:g} s each, learner-only {s["learner_updates"]} updates, system '
      f'{s["warmup_iterations"]} + {s["system_iterations"]} iterations (validation off)',
      '',
      table(row),
      '',
      f'Inference-only: {row["inference_only"]["ms_per_call"]:.1f} ms per batched acting step of '
      f'{s["num_envs"]} observations (CPU {row["inference_only"]["cpu_percent"]:.0f}% of one core). Learner-only: '
      f'{row["learner_only"]["ms_per_update"]:.0f} ms per update of {s["num_envs"]} x {s["unroll_length"]} steps '
      f'(CPU {row["learner_only"]["cpu_percent"]:.0f}%).',
      '',
  ]
  for runtime, r in row['runtimes'].items():
    e, y = r['env_only'], r['system']
    fps = e['emulator_frames_per_agent_step']
    frames = (f', {fps:.2f} emulator frames an agent step over {e["episodes_ended"]} ended episodes' if fps
              else ', no episode ended: no emulator frame count')
    out.append(f'- {runtime}: env-only {_fmt(e["agent_steps_per_s"])} agent steps/s (CPU {e["cpu_percent"]:.0f}%'
               f'{frames}); '
               f'system {y["ms_per_iteration"]:.0f} ms an iteration over {y["window_iterations"]} iterations '
               f'({y["window_s"]:.1f} s), the whole train() call {y["total_wall_s"]:.0f} s at '
               f'{y["cpu_percent_whole_run"]:.0f}% CPU. Of an iteration, {y["env_side_ms_per_iteration"]:.0f} ms in '
               f'the pool\'s send_actions / receive (env-only predicts {r["predicted_ms"]["env"]:.0f}) and '
               f'{y["ms_per_iteration"] - y["env_side_ms_per_iteration"]:.0f} ms elsewhere (acting, update and '
               f'bookkeeping; inference-only and learner-only predict {r["predicted_ms"]["inference"]:.0f} + '
               f'{r["predicted_ms"]["learner"]:.0f}).')
  out += [
      '',
      '## Reading',
      '',
      f'- Goal (issue 10 Sec. 7): system >= {GOAL_SYSTEM_OVER_BOUND} x the serial bound 1 / (1/env + 1/infer + '
      '1/learn). ' + '; '.join(f'{k}: {r["system_over_serial_bound"]:.2f} ({"met" if r["goal_met"] else "not met"})'
                               for k, r in row['runtimes'].items()) + '.',
      '- Where an agent step\'s time goes by the components (env / inference / learner, % of the serial bound\'s '
      'cost): ' + '; '.join(
          f'{k}: {100 * r["serial_bound"] / r["env_only"]["agent_steps_per_s"]:.0f} / '
          f'{100 * r["serial_bound"] / row["inference_only"]["agent_steps_per_s"]:.0f} / '
          f'{100 * r["serial_bound"] / row["learner_only"]["agent_steps_per_s"]:.0f}'
          for k, r in row['runtimes'].items()) + '.',
      '- The serial bound assumes the three parts run one after the other and nothing else: that is how the '
      'synchronous batch A3C runs (collect t_max steps, then update). Actor processes step their environments in '
      'parallel with each other (env-only includes that), never while the learner acts or updates, so the ratio '
      'is at most about 1; what it loses is the loop\'s own work (rollout and episode bookkeeping, summaries) and '
      'interference from other work on the machine.',
      '- Confounds: the machine is shared (load and other work above); each part ran at a different time, so load '
      'changes between parts move the ratios. Inference-only and learner-only were measured once and serve both '
      'runtimes. The system figure covers whole iterations with their bookkeeping (episode statistics, TensorBoard '
      'summaries every 10 s) but no validation episodes (a laptop-preset run plays one every 5,000 agent steps). '
      'Env-only uses a random policy; the system\'s episodes (near-random early in training) may differ in length '
      'and in resets.',
  ]
  if len(rows) > 1:
    out += ['', '## All runs in the JSON lines file', '',
            '| date | env | model | envs x t_max | runtime | env-only | inference | learner | bound | system | '
            'sys / bound | load at start |', '|---|---|---|---|---|---|---|---|---|---|---|---|']
    for r in rows:
      st = r['settings']
      for runtime, x in r['runtimes'].items():
        out.append(f'| {r["machine"]["date"]} | {st["env"]} | {st["model"]} | {st["num_envs"]} x '
                   f'{st["unroll_length"]} | {runtime} | {_fmt(x["env_only"]["agent_steps_per_s"])} | '
                   f'{_fmt(r["inference_only"]["agent_steps_per_s"])} | {_fmt(r["learner_only"]["agent_steps_per_s"])} '
                   f'| {_fmt(x["serial_bound"])} | {_fmt(x["system"]["agent_steps_per_s"])} | '
                   f'{x["system_over_serial_bound"]:.2f} | {r["load_average"]["start"]} |')
    spread = {}
    for r in rows:
      for runtime, x in r['runtimes'].items():
        spread.setdefault(runtime, []).append(x['system_over_serial_bound'])
    out += ['', 'system / serial bound over these runs (all settings): ' + '; '.join(
        f'{k} {min(v):.2f} to {max(v):.2f} ({len(v)} runs)' for k, v in spread.items()) + '.']
  return '\n'.join(out) + '\n'


# ----------------------------------------------------------------------------------------------- main


def check_flags() -> config_lib.StochasticACConfig:
  if FLAGS.model not in config_lib.A3C_MODELS:
    machine_state.fail(f'--model={FLAGS.model}: not an A3C-family model; valid values: '
                       f'{", ".join(config_lib.A3C_MODELS)}')
  bad = [r for r in FLAGS.runtimes if r not in config_lib.RUNTIMES]
  if bad or not FLAGS.runtimes:
    machine_state.fail(f'--runtimes={",".join(FLAGS.runtimes)}: valid values are {", ".join(config_lib.RUNTIMES)} '
          '(comma-separated)')
  for name, low in (('component_s', 1e-3), ('learner_updates', 1), ('warmup_iterations', 1),
                    ('system_iterations', 2)):
    if getattr(FLAGS, name) < low:
      machine_state.fail(f'--{name}={getattr(FLAGS, name)}: must be >= {low:g}')
  try:
    cfg = config_lib.make_config(FLAGS.env, FLAGS.model, FLAGS.preset, num_envs=FLAGS.num_envs,
                                 unroll_length=FLAGS.unroll_length, envs_per_actor=FLAGS.envs_per_actor,
                                 total_frames=10 ** 12, validate_every_frames=0, checkpoint_interval_s=1e9)
    cfg.validate()
  except ValueError as e:
    machine_state.fail(f'{e} (set it with the matching flag)')
  from rlcv_tf.envs import base  # pylint: disable=g-import-not-at-top
  from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
  try:
    registry.check_available(cfg.env)
  except base.EnvironmentUnavailableError as e:
    machine_state.fail(str(e))
  return cfg


def main(argv):
  if len(argv) > 1:
    machine_state.fail(f'unexpected arguments {argv[1:]}; all settings are --flags (see --help)')
  logging.set_verbosity(logging.WARNING)   # no INFO lines from the SavedModel export at the end of train()
  cfg = check_flags()
  load_start = machine_state.load_average()
  busy = machine_state.other_work()
  print(f'[bench] {cfg.env} {cfg.model}, {cfg.num_envs} envs x t_max {cfg.unroll_length}; load average '
        f'{load_start} on {os.cpu_count()} cores; other work: '
        + ('; '.join(f'{w["command"][:60]} ({w["cpu_percent"]}%)' for w in busy) or 'none seen'), flush=True)
  from rlcv_tf.core import quiet  # pylint: disable=g-import-not-at-top
  tf = quiet.import_tensorflow()
  from rlcv_tf.stochastic_ac import training  # pylint: disable=g-import-not-at-top
  info = machine_state.machine_info(tf)
  observation_shape, num_actions = training.env_layout(cfg.env)

  per_runtime = {}
  for runtime in FLAGS.runtimes:
    c = dataclasses.replace(cfg, runtime=runtime)
    per_runtime[runtime] = dict(config=c, env_only=env_only(c, runtime, num_actions, FLAGS.component_s),
                                load_after_env_only=machine_state.load_average())
    print(f'[bench] env-only ({runtime}): {per_runtime[runtime]["env_only"]["agent_steps_per_s"]:,.1f} agent '
          f'steps/s, {_fmt(per_runtime[runtime]["env_only"]["emulator_frames_per_s"], 0)} emulator frames/s',
          flush=True)

  learner = training.Learner(cfg, observation_shape, num_actions, seed=0)
  rollout = stored_rollout(cfg, learner, training)
  infer = inference_only(cfg, learner, rollout, training, FLAGS.component_s)
  infer['load_after'] = machine_state.load_average()
  print(f'[bench] inference-only: {infer["agent_steps_per_s"]:,.1f} agent steps/s ({infer["ms_per_call"]:.1f} ms '
        'a call)', flush=True)
  learn = learner_only(cfg, learner, rollout, training, FLAGS.learner_updates)
  learn['load_after'] = machine_state.load_average()
  print(f'[bench] learner-only: {learn["agent_steps_per_s"]:,.1f} agent steps/s ({learn["ms_per_update"]:.0f} ms '
        'an update)', flush=True)
  del learner

  runtimes = {}
  for runtime, p in per_runtime.items():
    sysr = system(p['config'], training, FLAGS.warmup_iterations, FLAGS.system_iterations)
    sysr['load_after'] = machine_state.load_average()
    env_rate = p['env_only']['agent_steps_per_s']
    bound = 1.0 / (1.0 / env_rate + 1.0 / infer['agent_steps_per_s'] + 1.0 / learn['agent_steps_per_s'])
    ratio = sysr['agent_steps_per_s'] / bound
    per_iteration = cfg.num_envs * cfg.unroll_length
    predicted = dict(env=1e3 * per_iteration / env_rate, inference=1e3 * per_iteration / infer['agent_steps_per_s'],
                     learner=1e3 * per_iteration / learn['agent_steps_per_s'])
    runtimes[runtime] = dict(env_only=dict(p['env_only'], load_after=p['load_after_env_only']), system=sysr,
                             predicted_ms=predicted,
                             serial_bound=bound, system_over_env_only=sysr['agent_steps_per_s'] / env_rate,
                             system_over_serial_bound=ratio, goal_met=bool(ratio >= GOAL_SYSTEM_OVER_BOUND))
    print(f'[bench] system ({runtime}): {sysr["agent_steps_per_s"]:,.1f} agent steps/s; serial bound '
          f'{bound:,.1f}; system / bound {ratio:.3f}; an iteration {sysr["ms_per_iteration"]:.0f} ms, of which '
          f'{sysr["env_side_ms_per_iteration"]:.0f} ms on the environment side (env-only: {predicted["env"]:.0f})',
          flush=True)

  row = dict(benchmark='stochastic_ac_throughput', machine=info,
             load_average=dict(start=load_start, end=machine_state.load_average()), other_work=busy,
             settings=dict(env=cfg.env, model=cfg.model, preset=cfg.preset, encoder=cfg.encoder,
                           lstm_units=cfg.lstm_units, fc_units=cfg.fc_units, num_envs=cfg.num_envs,
                           unroll_length=cfg.unroll_length, envs_per_actor=cfg.envs_per_actor,
                           component_s=FLAGS.component_s, learner_updates=FLAGS.learner_updates,
                           warmup_iterations=FLAGS.warmup_iterations, system_iterations=FLAGS.system_iterations,
                           observation_shape=list(observation_shape), num_actions=num_actions),
             inference_only=infer, learner_only=learn, runtimes=runtimes,
             goal=f'system / serial bound >= {GOAL_SYSTEM_OVER_BOUND}')
  print()
  print(table(row))
  if FLAGS.out:
    machine_state.save_report(FLAGS.out, row, 'stochastic_ac_throughput', markdown)


if __name__ == '__main__':
  app.run(main)
