r"""What the stochastic activations cost (issue 10 Sec. 7), measured side by side in one run on one machine.

Two parts, each timed in interleaved rounds (every round times every variant once, in an order that rotates from
round to round, so load changes on a shared machine hit all variants alike); the report gives each variant's
median over the rounds. Every tf.function is traced and run twice before the first round.

train step  `training.Learner.update` of each A3C-family model (`--models`, default all of `config.A3C_MODELS`) on
            the same stored rollout: E environments x t_max steps of uniformly random play on the real engine, the
            model's own noise drawn once for it (per-step noise every step, per-rollout noise held; as
            `training.ActingPolicy` draws it), the initial state zero. The update includes what it draws itself
            (the bootstrap step's noise and the 5 value-variance samples). Ratio to A3C; goal SA3C <= 1.10x A3C.
acting      `evaluation.EvalPolicy` of `--acting_models` (default SA3C) on batches of `--acting_batch` stored
            observations, the LSTM state carried from call to call: MAP, and vote over N sampled activations for each
            N of `--vote_samples` (default 5 and 50). Decisions per second and the ratio to MAP; goal vote-5 <= 1.5x
            MAP. The encoder and the LSTM run once per step for any N; only the heads run on N copies.

Each run appends one JSON line to OUT.jsonl and writes OUT.md: this run in full, then, once the file holds several,
every run of OUT.jsonl in a table.
The thesis gives no timings for these (issue 10 Sec. 7).

  python benchmarks/stochastic_ac_overhead.py                                   # Seaquest, thesis network
  python benchmarks/stochastic_ac_overhead.py --models=a3c,sa3c,hpa3c --rounds=9
  python benchmarks/stochastic_ac_overhead.py --env=cartpole_masked --acting_models=sa3c,hpa3c
"""

import dataclasses
import os
import sys
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
GOAL_SA3C_OVER_A3C = 1.10   # issue 10 Sec. 7
GOAL_VOTE5_OVER_MAP = 1.5

flags.DEFINE_string('env', 'atari_seaquest', 'Chapter 2 environment with discrete actions.')
flags.DEFINE_list('models', list(config_lib.A3C_MODELS), 'A3C-family models whose train step is timed (a3c first '
                  'is added when missing: the ratios are to it).')
flags.DEFINE_string('preset', 'laptop', 'Config preset whose network and per-game values are used.')
flags.DEFINE_integer('num_envs', 8, 'Environments of the stored rollout (the thesis: 64).')
flags.DEFINE_integer('unroll_length', 20, 't_max of the stored rollout.')
flags.DEFINE_integer('rounds', 5, 'Interleaved timing rounds (the report takes medians).')
flags.DEFINE_integer('train_iters', 1, 'Updates per model and round.')
flags.DEFINE_list('acting_models', ['sa3c'], 'Models whose acting modes are timed (empty: skip acting).')
flags.DEFINE_integer('acting_batch', 8, 'Observations per acting call (environments stepped in lock-step).')
flags.DEFINE_list('vote_samples', ['5', '50'], 'N of the vote modes timed beside MAP.')
flags.DEFINE_integer('acting_iters', 20, 'Acting calls per mode and round.')
flags.DEFINE_string('out', os.path.join(ROOT, 'docs', 'stochastic_ac_overhead'),
                    'Appends a JSON line to OUT.jsonl and writes OUT.md; empty: print only.')
FLAGS = flags.FLAGS


# ----------------------------------------------------------------------------------------------- parts


def random_rollout(cfg, num_actions: int):
  """E x t_max steps of uniformly random play on inline environments (a `sync_rollouts.Rollout`, no extras)."""
  from rlcv_tf.runtime import pools  # pylint: disable=g-import-not-at-top
  from rlcv_tf.runtime import sync_rollouts  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)

  def policy(observation, state, first):
    del first
    return rng.integers(0, num_actions, observation.shape[0]).astype(np.int32), state, {}

  pool = pools.make_pool(sync_rollouts.actor_configs(cfg.env, cfg.num_envs, seed=3000), runtime='inline')
  with sync_rollouts.SyncRollouts(pool, cfg.unroll_length) as rollouts:
    return rollouts.collect(policy)


def model_batch(rollout, learner, training, seed: int):
  """The learner's batch of `rollout` with this model's noise (drawn as `ActingPolicy` draws it) and zero state."""
  from rlcv_tf.stochastic_ac import layers as layers_lib  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  noise, steps = None, []
  for t in range(rollout.num_steps):
    noise = layers_lib.next_noise(learner.specs, noise, rollout.num_envs, rng, rollout_start=t == 0)
    steps.append(noise)
  extras = {training.NOISE_PREFIX + k: np.stack([s[k] for s in steps]) for k in learner.specs}
  stored = dataclasses.replace(rollout, extras=extras,
                               initial_state=training.numpy_state(learner.model, rollout.num_envs))
  return training.rollout_batch(stored, learner.specs)


def parameter_count(model) -> int:
  return int(sum(int(np.prod(v.shape)) for v in model.trainable_variables))


def rotated(items, r):
  k = r % len(items)
  return items[k:] + items[:k]


class _DropRetracingNotice:
  """A logging filter for one known TensorFlow warning: 'N out of the last M calls to <bound method
  Learner._train_step_impl ...> triggered tf.function retracing'. TensorFlow counts the traces of a method over all
  instances; each of the benchmark's learners traces its own function once, which is not retracing."""

  def filter(self, record):
    return 'triggered tf.function retracing' not in record.getMessage()


def time_train_steps(cfg, models, rollout, observation_shape, num_actions, training, rounds, iters):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top  (already loaded by `training`)
  tf_logger = tf.get_logger()
  drop = _DropRetracingNotice()
  tf_logger.addFilter(drop)
  setups = {}
  # All learners are built before any is warmed up: building one (keras.utils.set_random_seed) resets TensorFlow's
  # global seed, which clears the eager context's caches, so the other learners' next call would instantiate and
  # optimise its graph again (measured: ~0.35 s) inside the first timed round.
  for model in models:
    t0 = time.monotonic()
    c = dataclasses.replace(cfg, model=model)
    learner = training.Learner(c, observation_shape, num_actions, seed=0)
    setups[model] = dict(learner=learner, batch=model_batch(rollout, learner, training, seed=7), times=[],
                         setup_s=time.monotonic() - t0, parameters=parameter_count(learner.model))
  for model, s in setups.items():
    t0 = time.monotonic()
    s['learner'].update(s['batch'])     # trace
    s['learner'].update(s['batch'])
    s['setup_s'] += time.monotonic() - t0
    print(f'[bench] {model}: built and warmed up in {s["setup_s"]:.1f} s ({s["parameters"]:,} parameters)',
          flush=True)
  tf_logger.removeFilter(drop)
  order = list(models)
  for r in range(rounds):
    for model in rotated(order, r):
      s = setups[model]
      t0 = time.perf_counter()
      for _ in range(iters):
        s['learner'].update(s['batch'])   # returns floats: the step has finished
      s['times'].append((time.perf_counter() - t0) / iters)
    print(f'[bench] train-step round {r + 1}/{rounds} done (load {machine_state.load_average()})', flush=True)
  base = float(np.median(setups['a3c']['times']))
  out = {}
  for model, s in setups.items():
    med = float(np.median(s['times']))
    out[model] = dict(ms_median=1e3 * med, ms_all=[1e3 * t for t in s['times']], ratio_to_a3c=med / base,
                      fastest_ratio_to_a3c=min(s['times']) / min(setups['a3c']['times']),
                      agent_steps_per_s=cfg.num_envs * cfg.unroll_length / med, parameters=s['parameters'],
                      setup_s=s['setup_s'])
  return out


def time_acting(cfg, model, rollout, observation_shape, num_actions, training, evaluation, vote_samples, batch,
                rounds, iters):
  c = dataclasses.replace(cfg, model=model)
  net = training.build_model(c, observation_shape, num_actions)
  modes = [('map', 'map', 1)] + [(f'vote-{n}', 'vote', n) for n in vote_samples]
  obs = rollout.observations.reshape((-1,) + rollout.observations.shape[2:])
  reps = -(-batch // obs.shape[0]) if batch > obs.shape[0] else 1
  obs = np.concatenate([obs] * reps)
  batches = [obs[i:i + batch] for i in range(0, obs.shape[0] - batch + 1, batch)]
  setups = {}
  for name, mode, n in modes:
    policy = evaluation.EvalPolicy(net, mode, n, seed=0)
    state = policy.initial_state(batch)
    first = np.ones(batch, bool)
    for i in range(2):
      _, state, _ = policy(batches[i % len(batches)], state, first)
      first = np.zeros(batch, bool)
    setups[name] = dict(policy=policy, state=state, times=[], k=0)
  names = [m[0] for m in modes]
  no_first = np.zeros(batch, bool)
  for r in range(rounds):
    for name in rotated(names, r):
      s = setups[name]
      t0 = time.perf_counter()
      for _ in range(iters):
        _, s['state'], _ = s['policy'](batches[s['k'] % len(batches)], s['state'], no_first)   # NumPy out: done
        s['k'] += 1
      s['times'].append((time.perf_counter() - t0) / iters)
  base = float(np.median(setups['map']['times']))
  out = {}
  for name, s in setups.items():
    med = float(np.median(s['times']))
    out[name] = dict(ms_median=1e3 * med, ms_all=[1e3 * t for t in s['times']], ratio_to_map=med / base,
                     fastest_ratio_to_map=min(s['times']) / min(setups['map']['times']),
                     decisions_per_s=batch / med)
  print(f'[bench] acting {model}: ' + ', '.join(f'{k} {v["ms_median"]:.2f} ms ({v["ratio_to_map"]:.2f}x)'
                                                for k, v in out.items()), flush=True)
  return out


# ----------------------------------------------------------------------------------------------- report


def _ms(v: float) -> str:
  return f'{v:.0f}' if v >= 100 else (f'{v:.1f}' if v >= 10 else f'{v:.2f}')


def _fastest_ratio(times, base_times) -> float:
  """Ratio of the fastest rounds (a second estimate beside the medians; computed from the saved times)."""
  return min(times) / min(base_times)


def train_table(row) -> str:
  lines = ['| model | parameters | train step (ms, median) | agent steps/s | ratio to A3C | fastest-round ratio | '
           'all rounds (ms) |', '|---|---|---|---|---|---|---|']
  base = row['train_step']['a3c']['ms_all']
  for model, r in row['train_step'].items():
    lines.append(f'| {model} | {r["parameters"]:,} | {_ms(r["ms_median"])} | {r["agent_steps_per_s"]:.1f} | '
                 f'{r["ratio_to_a3c"]:.3f} | {_fastest_ratio(r["ms_all"], base):.3f} | '
                 f'{", ".join(_ms(t) for t in r["ms_all"])} |')
  return '\n'.join(lines)


def acting_table(row) -> str:
  lines = ['| model | mode | ms per call (median) | decisions/s | ratio to MAP | fastest-round ratio | '
           'all rounds (ms) |', '|---|---|---|---|---|---|---|']
  for model, modes in row['acting'].items():
    base = modes['map']['ms_all']
    for name, r in modes.items():
      lines.append(f'| {model} | {name} | {_ms(r["ms_median"])} | {r["decisions_per_s"]:.0f} | '
                   f'{r["ratio_to_map"]:.3f} | {_fastest_ratio(r["ms_all"], base):.3f} | '
                   f'{", ".join(_ms(t) for t in r["ms_all"])} |')
  return '\n'.join(lines)


def spread(times) -> float:
  """max / min over the rounds: how much one variant's time moved during the run."""
  return max(times) / min(times)


def goals(row) -> list:
  """Each goal the run can judge: the median ratio, the fastest-round ratio, and whether each meets the goal."""
  out = []
  ts = row['train_step']
  checks = []
  if 'sa3c' in ts:
    checks.append((f'SA3C train step <= {GOAL_SA3C_OVER_A3C}x A3C', ts['sa3c'], ts['a3c'], 'ratio_to_a3c',
                   GOAL_SA3C_OVER_A3C))
  for model, modes in row['acting'].items():
    if 'vote-5' in modes:
      checks.append((f'{model} vote-5 acting <= {GOAL_VOTE5_OVER_MAP}x MAP', modes['vote-5'], modes['map'],
                     'ratio_to_map', GOAL_VOTE5_OVER_MAP))
  for goal, r, base, key, limit in checks:
    fastest = _fastest_ratio(r['ms_all'], base['ms_all'])
    out.append(dict(goal=goal, limit=limit, value=r[key], met=bool(r[key] <= limit), fastest_round_value=fastest,
                    met_fastest_round=bool(fastest <= limit)))
  return out


def verdict(g) -> str:
  if g['met'] != g['met_fastest_round']:
    return 'not settled by this run (the two estimates disagree)'
  margin = min(abs(g['limit'] - g['value']), abs(g['limit'] - g['fastest_round_value']))
  noise = abs(g['value'] - g['fastest_round_value'])
  return ('met' if g['met'] else 'not met') + (' by both estimates, but closer to the limit than they are to each '
                                               'other' if margin < noise else ' by both estimates')


def markdown(rows) -> str:
  row = rows[-1]
  s, m = row['settings'], row['machine']
  ts = row['train_step']
  base = ts['a3c']['ms_all']
  disagreement = max(abs(r['ratio_to_a3c'] - _fastest_ratio(r['ms_all'], base)) for r in ts.values())
  out = [
      '# Chapter 2 overhead of stochastic activations: train steps and acting modes',
      '',
      'Written by `python benchmarks/stochastic_ac_overhead.py` (issue 10 Sec. 7). The thesis gives no timings; '
      f'the goals are the issue\'s (SA3C <= {GOAL_SA3C_OVER_A3C}x A3C, vote-5 <= {GOAL_VOTE5_OVER_MAP}x MAP). '
      'Variants were timed in interleaved rounds (the order rotating each round), medians over the rounds.',
      '',
      '## Latest run',
      '',
      f'- date {m["date"]}, host {m["host"]}, {m["device"]}, {m["cpu_count"]} cores ({m["processor"]}), '
      f'TensorFlow {m["tf_version"]}, code {m["code"]}',
      f'- load average (1, 5, 15 min) at start {row["load_average"]["start"]}, after the train steps '
      f'{row["load_average"]["after_train"]}, at the end {row["load_average"]["end"]}',
      '- other work on the machine at start: '
      + ('; '.join(f'{w["command"]} ({w["cpu_percent"]}% CPU)' for w in row['other_work']) or 'none seen'),
      f'- settings: {s["env"]} ({s["preset"]} preset network: encoder {s["encoder"]}, LSTM {s["lstm_units"]}, FC '
      f'{s["fc_units"]}, observations {s["observation_shape"]}, {s["num_actions"]} actions); train step on one '
      f'stored rollout of {s["num_envs"]} environments x t_max {s["unroll_length"]}, {s["rounds"]} rounds of '
      f'{s["train_iters"]} update(s); acting on batches of {s["acting_batch"]} observations, {s["rounds"]} rounds '
      f'of {s["acting_iters"]} calls',
      '',
      '### Train step (`Learner.update`)',
      '',
      train_table(row),
      '',
      '### Acting (`EvalPolicy`, one call = one decision for each observation of the batch)',
      '',
      acting_table(row) if row['acting'] else '(not measured)',
      '',
      '## Goals',
      '',
  ]
  for g in goals(row):
    out.append(f'- {g["goal"]}: {g["value"]:.3f} (medians), {g["fastest_round_value"]:.3f} (fastest rounds): '
               f'{verdict(g)}')
  out += [
      '',
      '## Reading and confounds',
      '',
      '- The machine is shared: the load and the other work above ran during the measurement; interleaving spreads '
      'it over the variants, but rounds that straddle a load change are noisier (all rounds are listed). Round to '
      f'round, one variant\'s train step moved by a factor of {min(spread(r["ms_all"]) for r in ts.values()):.2f} '
      f'to {max(spread(r["ms_all"]) for r in ts.values()):.2f} (max / min). The medians and the fastest-round '
      f'ratios of one model differ by up to {disagreement:.2f}'
      ' (train step): differences between models smaller than that are not resolved by this run; where the two '
      'estimates disagree on a goal, the run does not settle it.',
      '- Train-step ratios compare whole `Learner.update` calls: the replayed unroll (encoder on all E x (t_max+1) '
      'frames, the LSTM through time), the loss, the gradient, Adam, and the NumPy noise the update draws itself. '
      'The stochastic models change one 512-unit channel (Gaussian noise, dropout or NoisyNet layers; HPA3C adds '
      'the learned variance, the prior\'s Dense layer and a KL term) and share the encoder and the LSTM, which hold '
      'most of the parameters (see the table).',
      '- Acting ratios include the NumPy noise draw (N x batch rows per call) and the vote; on a CPU the per-call '
      'fixed cost of a tf.function call is part of every mode.',
  ]
  if len(rows) > 1:
    out += ['', '## All runs in the JSON lines file', '',
            '| date | env | envs x t_max | SA3C / A3C | vote-5 / MAP | vote-50 / MAP | load at start |',
            '|---|---|---|---|---|---|---|']
    for r in rows:
      ts = r['train_step']
      acting = next(iter(r['acting'].values()), {})
      cell = lambda d, k, key: f'{d[k][key]:.2f}' if k in d else '-'  # pylint: disable=unnecessary-lambda-assignment
      out.append(f'| {r["machine"]["date"]} | {r["settings"]["env"]} | {r["settings"]["num_envs"]} x '
                 f'{r["settings"]["unroll_length"]} | {cell(ts, "sa3c", "ratio_to_a3c")} | '
                 f'{cell(acting, "vote-5", "ratio_to_map")} | {cell(acting, "vote-50", "ratio_to_map")} | '
                 f'{r["load_average"]["start"]} |')
  return '\n'.join(out) + '\n'


# ----------------------------------------------------------------------------------------------- main


def check_flags():
  bad = [m for m in FLAGS.models + FLAGS.acting_models if m not in config_lib.A3C_MODELS]
  if bad:
    machine_state.fail(f'--models / --acting_models: {", ".join(bad)} not A3C-family models; valid values: '
          f'{", ".join(config_lib.A3C_MODELS)}')
  models = ['a3c'] + [m for m in dict.fromkeys(FLAGS.models) if m != 'a3c']
  try:
    votes = [int(n) for n in FLAGS.vote_samples]
  except ValueError:
    machine_state.fail(f'--vote_samples={",".join(FLAGS.vote_samples)}: comma-separated integers >= 1 expected, '
                       'e.g. 5,50')
  if any(n < 1 for n in votes):
    machine_state.fail(f'--vote_samples={",".join(FLAGS.vote_samples)}: every N must be >= 1')
  for name in ('rounds', 'train_iters', 'acting_batch', 'acting_iters'):
    if getattr(FLAGS, name) < 1:
      machine_state.fail(f'--{name}={getattr(FLAGS, name)}: must be >= 1')
  try:
    cfg = config_lib.make_config(FLAGS.env, 'a3c', FLAGS.preset, num_envs=FLAGS.num_envs,
                                 unroll_length=FLAGS.unroll_length)
    cfg.validate()
  except ValueError as e:
    machine_state.fail(f'{e} (set it with the matching flag)')
  from rlcv_tf.envs import base  # pylint: disable=g-import-not-at-top
  from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
  try:
    registry.check_available(cfg.env)
  except base.EnvironmentUnavailableError as e:
    machine_state.fail(str(e))
  return cfg, models, votes


def main(argv):
  if len(argv) > 1:
    machine_state.fail(f'unexpected arguments {argv[1:]}; all settings are --flags (see --help)')
  logging.set_verbosity(logging.WARNING)
  cfg, models, votes = check_flags()
  load_start = machine_state.load_average()
  busy = machine_state.other_work()
  print(f'[bench] {cfg.env}: train steps of {", ".join(models)}; acting of {", ".join(FLAGS.acting_models) or "-"}; '
        f'load average {load_start} on {os.cpu_count()} cores; other work: '
        + ('; '.join(f'{w["command"][:60]} ({w["cpu_percent"]}%)' for w in busy) or 'none seen'), flush=True)
  from rlcv_tf.core import quiet  # pylint: disable=g-import-not-at-top
  tf = quiet.import_tensorflow()
  from rlcv_tf.stochastic_ac import evaluation  # pylint: disable=g-import-not-at-top
  from rlcv_tf.stochastic_ac import training  # pylint: disable=g-import-not-at-top
  info = machine_state.machine_info(tf)
  observation_shape, num_actions = training.env_layout(cfg.env)
  rollout = random_rollout(cfg, num_actions)
  train = time_train_steps(cfg, models, rollout, observation_shape, num_actions, training, FLAGS.rounds,
                           FLAGS.train_iters)
  load_after_train = machine_state.load_average()
  acting = {}
  for model in dict.fromkeys(FLAGS.acting_models):
    acting[model] = time_acting(cfg, model, rollout, observation_shape, num_actions, training, evaluation, votes,
                                FLAGS.acting_batch, FLAGS.rounds, FLAGS.acting_iters)
  row = dict(benchmark='stochastic_ac_overhead', machine=info,
             load_average=dict(start=load_start, after_train=load_after_train, end=machine_state.load_average()),
             other_work=busy,
             settings=dict(env=cfg.env, preset=cfg.preset, encoder=cfg.encoder, lstm_units=cfg.lstm_units,
                           fc_units=cfg.fc_units, num_envs=cfg.num_envs, unroll_length=cfg.unroll_length,
                           rounds=FLAGS.rounds, train_iters=FLAGS.train_iters, acting_batch=FLAGS.acting_batch,
                           acting_iters=FLAGS.acting_iters, vote_samples=votes,
                           observation_shape=list(observation_shape), num_actions=num_actions),
             train_step=train, acting=acting)
  row['goals'] = goals(row)
  print()
  print(train_table(row))
  if acting:
    print()
    print(acting_table(row))
  print()
  machine_state.print_goals(row['goals'])
  if FLAGS.out:
    machine_state.save_report(FLAGS.out, row, 'stochastic_ac_overhead', markdown)


if __name__ == '__main__':
  app.run(main)
