r"""Throughput of DQN training (seeds 003-004, issue 15 Sec. 6), every number measured in one run on one machine.

DQN here is one process, one environment, no overlap (`rl_basics.dqn_training.train`): each agent step is one greedy
evaluation of the online network (batch 1), one environment step, one replay insertion and, past `learning_starts`,
`replay_ratio` learner updates on uniform minibatches. So the best a run can do is the serial bound below.
Measured per setting, in agent steps (or updates) per second:

  env-only        the registry environment (frame stack included) stepped with uniformly random actions;
  inference-only  `DQNLearner.q_values` on one stored observation (the acting call of every step);
  replay-only     `TransitionReplay.sample(batch)` on a replay filled by random play (frames stacked at sampling);
  learner-only    `DQNLearner.train_step` on stored minibatches, after one untimed step (tracing);
  system          `dqn_training.train`'s step loop (`loop_steps_session / loop_s_session` of eval.json) in a second
                  session resumed past `learning_starts`, so every step of the window pays the replay ratio;
                  start-up, tracing, the final checkpoint, the export and the evaluation lie outside the window;
  serial bound    1 / (1/env + 1/inference + ratio x (1/replay + 1/learner));
and the ratios system / serial bound and learner time per step / env time per step.

Settings: `cartpole` with the `mlp` variant (64-64, replay ratio 1, batch 64: the launcher's default) and real ALE
Breakout (`atari_breakout_nature`: max of two frames, Y, 84x84, 4 frames stacked) with `nature2015` (1,686,180
parameters, RMSProp, replay ratio 0.25 = one update every 4 steps, batch 32: the paper's settings). Each run appends
one JSON line to OUT.jsonl and writes OUT.md (every run of the file). The machine is usually shared: the load
average and the busiest other processes are kept with the numbers.

  python benchmarks/dqn_throughput.py                          # both settings, ~3 minutes on 2 cores
  python benchmarks/dqn_throughput.py --settings=cartpole --component_s=1 --system_steps=300 --out=/tmp/dq  # smoke
"""

import os
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging

from benchmarks import machine_state

# name -> (env, variant, replay_ratio, batch_size, learning_rate)
SETTINGS = {
    'cartpole': ('cartpole', 'mlp', 1.0, 64, 1e-3),
    'breakout': ('atari_breakout_nature', 'nature2015', 0.25, 32, 2.5e-4),
}

flags.DEFINE_list('settings', ['cartpole', 'breakout'], f'Which of {", ".join(SETTINGS)}.')
flags.DEFINE_float('component_s', 5.0, 'Seconds per component measurement (env, inference, replay, learner).')
flags.DEFINE_integer('learning_starts', 1_000, 'Transitions stored before the first update (the warm-up session).')
flags.DEFINE_integer('system_steps', 2_000, 'Agent steps in the timed system session.')
flags.DEFINE_string('out', os.path.join(machine_state.ROOT, 'docs', 'dqn_throughput'),
                    'Output prefix: appends OUT.jsonl, writes OUT.md.')
FLAGS = flags.FLAGS
BENCHMARK = 'dqn_throughput'


def _rate(fn, seconds: float):
  """Calls of `fn` per second over about `seconds` (at least 3 calls), and CPU % of one core."""
  meter = machine_state.CpuMeter()
  meter.start()
  n, t0 = 0, time.monotonic()
  while n < 3 or time.monotonic() - t0 < seconds:
    fn()
    n += 1
  wall = time.monotonic() - t0
  return n / wall, meter.stop()


def _config(name: str, total_steps: int, seed: int = 0):
  from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
  from rlcv_tf.rl_basics import dqn_training  # pylint: disable=g-import-not-at-top
  env, variant, ratio, batch, lr = SETTINGS[name]
  return dqn_training.DQNRunConfig(
      env=env, variant=variant, replay_ratio=ratio, batch_size=batch, learning_rate=lr, total_steps=total_steps,
      learning_starts=FLAGS.learning_starts, buffer_size=max(10_000, total_steps), eps_steps=total_steps,
      num_frames=registry.entry(env).default_frames, reward_clip=env.startswith('atari'), eval_episodes=1,
      log_interval_s=1e9, seed=seed)


def components(name: str, seconds: float) -> dict:
  """env-only, inference-only, replay-only and learner-only rates of one setting."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
  from rlcv_tf.rl_basics import dqn  # pylint: disable=g-import-not-at-top
  from rlcv_tf.rl_basics import dqn_training  # pylint: disable=g-import-not-at-top
  from rlcv_tf.runtime import replay as replay_lib  # pylint: disable=g-import-not-at-top
  cfg = _config(name, FLAGS.learning_starts + FLAGS.system_steps)
  shape, num_actions = dqn_training.check_env(cfg)
  env = registry.make_env(cfg.env, seed=5, num_frames=cfg.num_frames)
  rng = np.random.default_rng(5)
  frame_shape = shape[:-1] + (shape[-1] // cfg.num_frames,)
  pixels = len(shape) == 3
  replay = replay_lib.TransitionReplay(cfg.buffer_size, frame_shape, np.uint8 if pixels else np.float32,
                                       num_frames=cfg.num_frames, seed=5)
  state = {'ts': dqn_training.reset_into(env, replay, frame_shape)}

  def env_step():          # what the training loop does per step, less the network: the same replay insertion
    ts, _ = dqn_training.step_into(env, replay, int(rng.integers(0, num_actions)), cfg, frame_shape)
    if ts.last():
      ts = dqn_training.reset_into(env, replay, frame_shape)
    state['ts'] = ts

  env_rate, env_cpu = _rate(env_step, seconds)
  while replay.num_transitions < 2 * cfg.batch_size:
    env_step()
  learner = dqn.DQNLearner(cfg.learner_config(), shape, num_actions, seed=0)
  obs = state['ts'].observation
  learner.q_values(obs)
  inf_rate, inf_cpu = _rate(lambda: learner.q_values(obs), seconds)
  replay_rate, replay_cpu = _rate(lambda: replay.sample(cfg.batch_size), seconds)
  batches = [replay.sample(cfg.batch_size) for _ in range(8)]
  learner.train_step(batches[0])
  counter = {'i': 0}

  def update():
    learner.train_step(batches[counter['i'] % len(batches)])
    counter['i'] += 1
  learn_rate, learn_cpu = _rate(update, seconds)
  close = getattr(env, 'close', None)
  if close:
    close()
  return dict(env=cfg.env, variant=cfg.variant, replay_ratio=cfg.replay_ratio, batch_size=cfg.batch_size,
              observation_shape=list(shape), num_actions=num_actions,
              parameters=int(sum(np.prod(v.shape) for v in learner.online.trainable_variables)),
              env_steps_per_s=env_rate, env_cpu_percent=env_cpu, inference_calls_per_s=inf_rate,
              inference_cpu_percent=inf_cpu, replay_samples_per_s=replay_rate, replay_cpu_percent=replay_cpu,
              learner_updates_per_s=learn_rate, learner_cpu_percent=learn_cpu)


def system(name: str) -> dict:
  """Agent steps/s of train()'s loop in a session resumed after a warm-up session of `learning_starts` steps."""
  from rlcv_tf.rl_basics import dqn_training  # pylint: disable=g-import-not-at-top
  cfg = _config(name, FLAGS.learning_starts + FLAGS.system_steps)
  quiet = lambda line: None  # noqa: E731
  with tempfile.TemporaryDirectory() as logdir:
    warm = dqn_training.train(cfg, logdir, print_fn=quiet, max_steps=FLAGS.learning_starts)
    meter = machine_state.CpuMeter()
    meter.start()
    result = dqn_training.train(cfg, logdir, print_fn=quiet)
    cpu = meter.stop()
  return dict(system_steps=result['loop_steps_session'], system_s=result['loop_s_session'],
              system_steps_per_s=result['loop_steps_session'] / result['loop_s_session'],
              system_updates=result['updates'] - warm['updates'], system_cpu_percent_whole_session=cpu)


def measure(name: str) -> dict:
  print(f'[bench] {name}: components ({FLAGS.component_s:g} s each) ...', flush=True)
  row = components(name, FLAGS.component_s)
  print(f'[bench] {name}: system ({FLAGS.learning_starts:,} warm-up steps, then {FLAGS.system_steps:,} timed) ...',
        flush=True)
  row.update(system(name))
  r = row['replay_ratio']
  per_step = (1 / row['env_steps_per_s'] + 1 / row['inference_calls_per_s']
              + r * (1 / row['replay_samples_per_s'] + 1 / row['learner_updates_per_s']))
  row['serial_bound_steps_per_s'] = 1 / per_step
  row['system_over_serial_bound'] = row['system_steps_per_s'] * per_step
  row['learner_over_env_time_per_step'] = (r / row['learner_updates_per_s']) / (1 / row['env_steps_per_s'])
  row['inference_over_env_time_per_step'] = row['env_steps_per_s'] / row['inference_calls_per_s']
  return row


def _fmt(v, digits=1):
  return '-' if v is None else f'{v:,.{digits}f}'


def markdown(rows: list) -> str:
  lines = ['# DQN throughput (benchmarks/dqn_throughput.py)', '',
           'Agent steps (or calls / updates) per second, one process, one environment; serial bound = '
           '1 / (1/env + 1/inference + ratio x (1/replay + 1/learner)). Each row one setting of one run.', '',
           '| run | setting | params | env steps/s | inference/s | replay samples/s | learner updates/s | ratio | '
           'system steps/s | serial bound | system / bound | learner / env time per step | load before |',
           '|---|---|---|---|---|---|---|---|---|---|---|---|---|']
  for row in rows:
    for s in row['settings']:
      lines.append(f'| {row["machine"]["date"]} | {s["env"]} {s["variant"]} (batch {s["batch_size"]}) | '
                   f'{s["parameters"]:,} | {_fmt(s["env_steps_per_s"])} | {_fmt(s["inference_calls_per_s"])} | '
                   f'{_fmt(s["replay_samples_per_s"])} | {_fmt(s["learner_updates_per_s"])} | {s["replay_ratio"]:g} | '
                   f'{_fmt(s["system_steps_per_s"])} | {_fmt(s["serial_bound_steps_per_s"])} | '
                   f'{s["system_over_serial_bound"]:.2f} | {s["learner_over_env_time_per_step"]:.2f} | '
                   f'{row["load_before"]} |')
  last = rows[-1]
  lines += ['', f'Last run: {last["machine"]["date"]} on {last["machine"]["processor"]} '
                f'({last["machine"]["cpu_count"]} cores, {last["machine"]["device"]}, TF {last["machine"]["tf_version"]}, '
                f'code {last["machine"]["code"]}); load average before {last["load_before"]}, after '
                f'{last["load_after"]}; other work: {last["other_work"] or "none seen"}.', '',
            'Reading: the system window is whole steps of the training loop (acting, env step, replay insertion, '
            'updates at the ratio, episode bookkeeping); system / bound near 1 means the loop adds little beyond '
            'its parts. On a shared machine the parts and the system are measured minutes apart, so the ratio '
            'carries the load change between them (see the load average).', '']
  return '\n'.join(lines)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)       # the SavedModel writer's INFO lines of each system session
  unknown = [s for s in FLAGS.settings if s not in SETTINGS]
  if unknown:
    machine_state.fail(f'--settings: unknown {", ".join(unknown)}; valid: {", ".join(SETTINGS)}')
  if FLAGS.component_s <= 0 or FLAGS.system_steps < 1 or FLAGS.learning_starts < 64:
    machine_state.fail('--component_s must be > 0, --system_steps >= 1 and --learning_starts >= 64 (a batch)')
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
  from rlcv_tf.envs import base  # pylint: disable=g-import-not-at-top
  for name in FLAGS.settings:
    try:
      registry.check_available(SETTINGS[name][0])
    except base.EnvironmentUnavailableError as e:
      machine_state.fail(str(e))
  row = dict(benchmark=BENCHMARK, machine=machine_state.machine_info(tf), load_before=machine_state.load_average(),
             other_work=machine_state.other_work(), component_s=FLAGS.component_s,
             learning_starts=FLAGS.learning_starts, system_steps_timed=FLAGS.system_steps, settings=[])
  for name in FLAGS.settings:
    s = measure(name)
    row['settings'].append(s)
    print(f'[bench] {name}: env {s["env_steps_per_s"]:,.0f} steps/s, inference {s["inference_calls_per_s"]:,.0f}/s, '
          f'replay {s["replay_samples_per_s"]:,.0f}/s, learner {s["learner_updates_per_s"]:,.1f} updates/s, '
          f'system {s["system_steps_per_s"]:,.1f} steps/s = {s["system_over_serial_bound"]:.2f} x serial bound '
          f'({s["serial_bound_steps_per_s"]:,.1f}); learner / env time per step '
          f'{s["learner_over_env_time_per_step"]:.2f}', flush=True)
  row['load_after'] = machine_state.load_average()
  machine_state.save_report(FLAGS.out, row, BENCHMARK, markdown)


if __name__ == '__main__':
  app.run(main)
