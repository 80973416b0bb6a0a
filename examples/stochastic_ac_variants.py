r"""Chapter 2 evidence on CPU (issue 10 §8): A3C-family variants on one environment, several seeds each, tested with
MAP and vote-N, and the Figs. 2.5 / 2.6 analogues.

  python examples/stochastic_ac_variants.py          # cartpole_masked: 6 models x 3 seeds, about 15-30 min on 2 cores
  python examples/stochastic_ac_variants.py --env=atari_breakout --preset=laptop --models=a3c,sa3c --seeds=0,1 \
      --overrides='{"total_frames": 100000}' --modes=map,vote-5 --episodes=5 --random_episodes=20

Every run of one invocation uses the same preset and overrides and differs only in the model and the seed (the
default: `cartpole_check`, 8 envs, t_max 10, lr 3e-3, lambda_v 0.5, 60,000 agent steps, the learning check's
settings). For each run: the mean return of its last 100 training episodes against uniformly random play on the same
engine (with the learning check's verdict where it is calibrated), and the protocol's test (unseen seeds,
`evaluation.evaluate_runs`, the run's latest weights) under each --modes. Per model: mean +- std over seeds.
Outputs (--out, default docs/stochastic_ac_<env>):
  <out>.md     the tables;                     <out>.json   every run's numbers and settings;
  <out>.png    training returns vs agent steps, mean over seeds with the min-max band, random play dashed;
  <out>_value_variance.png, <out>_action_entropy.png   the analysis (first seed of A3C and SA3C).
Runs live under --root; a re-run skips the runs already recorded in <out>.json.

`cartpole_masked` (CartPole-v1 seeing only position and angle, each action held 2-4 physics steps) is a CPU
stand-in, not a thesis task; its budget is 1/3,000 of a thesis run, and the thesis's Atari numbers (Tables
2.1-2.5) cannot be read from it.
"""

import json
import os
import sys
import textwrap
import time
import warnings

from absl import app
from absl import flags
from absl import logging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=g-import-not-at-top

from rlcv_tf.core import quiet  # pylint: disable=g-import-not-at-top

flags.DEFINE_list('models', ['a3c', 'sa3c', 'fsa3c', 'hpa3c', 'dropout_sa3c', 'nn_a3c'], 'A3C-family models.')
flags.DEFINE_list('seeds', ['0', '1', '2'], 'Seeds.')
flags.DEFINE_list('modes', ['map', 'vote-1', 'vote-5', 'vote-50'], 'Test modes (map, vote-N, mean_prob-N, sample).')
flags.DEFINE_integer('episodes', 10, 'Unseen test seeds per run (thesis 10).')
flags.DEFINE_string('env', 'cartpole_masked', 'Chapter 2 environment with discrete actions.')
flags.DEFINE_string('preset', '', 'Preset of every run; empty: config.default_preset (cartpole_check on the stand-in).')
flags.DEFINE_string('overrides', '{}', 'JSON object of config fields set for every run, e.g. {"total_frames": 1000}.')
flags.DEFINE_integer('random_episodes', 100, 'Episodes of uniformly random play for the baseline.')
flags.DEFINE_string('root', '', 'Where the runs go; default runs/examples/stochastic_ac_<env>.')
flags.DEFINE_string('out', '', 'Output prefix (.md, .json, .png); default docs/stochastic_ac_<env>.')
flags.DEFINE_integer('analysis_steps', 700, 'Steps of the analysed episode (thesis 700).')
FLAGS = flags.FLAGS



def _settings():
  from rlcv_tf.stochastic_ac import config as config_lib  # pylint: disable=g-import-not-at-top
  preset = FLAGS.preset or config_lib.default_preset(FLAGS.env, 'a3c')
  return FLAGS.env, preset, json.loads(FLAGS.overrides)


def _mode(text):
  name, _, n = text.partition('-')
  return name, int(n) if n else 1


def _load(path):
  if os.path.exists(path):
    with open(path) as f:
      return json.load(f)
  return {'runs': {}}


def _save(record, path):
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(record, f)
  os.replace(tmp, path)


def _run_one(model, seed, record, json_path):
  from rlcv_tf.stochastic_ac import config as config_lib  # pylint: disable=g-import-not-at-top
  from rlcv_tf.stochastic_ac import evaluation  # pylint: disable=g-import-not-at-top
  from rlcv_tf.stochastic_ac import learning_check  # pylint: disable=g-import-not-at-top
  from rlcv_tf.stochastic_ac import training  # pylint: disable=g-import-not-at-top
  key = f'{model}/seed{seed}'
  if key in record['runs']:
    return record['runs'][key]
  env, preset, extra = _settings()
  overrides = {'log_interval_s': 1e9, 'checkpoint_interval_s': 1e9, **extra, 'seed': int(seed)}
  cfg = config_lib.make_config(env, model, preset, **overrides)
  logdir = os.path.join(FLAGS.root or f'runs/examples/stochastic_ac_{env}', f'{model}_seed{seed}')
  if os.path.exists(os.path.join(logdir, 'config.json')):
    import shutil  # pylint: disable=g-import-not-at-top
    shutil.rmtree(logdir)    # a run cut before it was recorded: start it again, so every run is one session
  start = time.time()
  result = training.train(cfg, logdir, print_fn=lambda s: None)
  wall = time.time() - start
  returns = learning_check.episode_returns(result.episodes)
  steps = [int(e['agent_steps_total']) for e in result.episodes]
  tests = {}
  for text in FLAGS.modes:
    mode, n = _mode(text)
    out = evaluation.evaluate_runs([logdir], mode=mode, num_samples=n, episodes=FLAGS.episodes, which='latest',
                                   seed=int(seed), print_fn=lambda s: None)
    tests[text] = {'mean': out['runs'][0]['mean'], 'std': out['runs'][0]['std'], 'scores': out['runs'][0]['scores']}
  entry = {'model': model, 'seed': int(seed), 'logdir': logdir, 'wall_s': wall, 'agent_steps': result.frames,
           'check': result.learning_check, 'curve': _curve(steps, returns, result.frames), 'tests': tests,
           'config': cfg.to_dict()}
  record['runs'][key] = entry
  check = result.learning_check
  last = float(returns[-100:].mean()) if returns.size else float('nan')
  entry['trained'] = last
  _save(record, json_path)
  _save(record, json_path)
  print(f'{key}: {check["line"] if check else f"last 100 training episodes return {last:.1f}"}; test ' +
        ', '.join(f'{k} {v["mean"]:.1f}' for k, v in tests.items()) + f'; {wall:.0f} s', flush=True)
  return entry


def _mean_std(values):
  values = np.asarray(values, np.float64)
  return float(values.mean()), float(values.std())


CURVE_BINS = 30


def _curve(steps, returns, total):
  """Mean training return per bin of agent steps (CURVE_BINS equal bins of the run; NaN where no episode ended);
  the JSON keeps this, not every episode."""
  steps, returns = np.asarray(steps), np.asarray(returns, np.float64)
  edges = np.linspace(0, total, CURVE_BINS + 1)
  means = []
  for i in range(CURVE_BINS):
    inside = (steps > edges[i]) & (steps <= edges[i + 1])
    means.append(round(float(returns[inside].mean()), 3) if inside.any() else None)
  return {'bin_centres': ((edges[1:] + edges[:-1]) / 2).tolist(), 'mean_return': means}


def _binned(entry):
  return np.asarray([np.nan if v is None else v for v in entry['curve']['mean_return']], np.float64)


def _plot(record, models, seeds, random_mean, path):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  centres = np.asarray(record['runs'][f'{models[0]}/seed{seeds[0]}']['curve']['bin_centres'])
  fig, ax = plt.subplots(figsize=(7.5, 4.2))
  for model in models:
    curves = np.stack([_binned(record['runs'][f'{model}/seed{s}']) for s in seeds])
    with np.errstate(all='ignore'), warnings.catch_warnings():
      warnings.simplefilter('ignore', RuntimeWarning)     # bins no episode ended in (early, short budgets)
      mean, low, high = np.nanmean(curves, 0), np.nanmin(curves, 0), np.nanmax(curves, 0)
    ax.plot(centres, mean, label=model)
    ax.fill_between(centres, low, high, alpha=0.15)
  ax.axhline(random_mean, color='grey', ls='--', lw=1, label=f'uniformly random ({random_mean:.1f})')
  ax.set_xlabel('agent steps')
  ax.set_ylabel('training episode return')
  env, preset, extra = _settings()
  ax.set_title(textwrap.fill(f'{env}, preset {preset} {json.dumps(extra) if extra else ""}: mean over seeds '
                             f'{",".join(seeds)} (band: min-max)', 120), fontsize=7)
  ax.legend(fontsize=7, ncol=2)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def _markdown(record, models, seeds, random_mean, wall):
  env, preset, extra = _settings()
  cfg = record['runs'][f'{models[0]}/seed{seeds[0]}']['config']
  lines = [
      f'# Chapter 2 on `{env}`: {len(models)} A3C-family variants, {len(seeds)} seed(s)',
      '',
      f'Written by `examples/stochastic_ac_variants.py` ({time.strftime("%Y-%m-%d")}; {wall / 60:.0f} min of runs '
      f'on the shared 2-core CPU machine). Every run: preset `{preset}`'
      f'{", overrides " + json.dumps(extra) if extra else ""} ({cfg["num_envs"]} envs, t_max {cfg["unroll_length"]}, '
      f'lr {cfg["learning_rate"]:g}, lambda_v {cfg["value_weight"]:g}, {cfg["total_frames"]:,} agent steps), '
      'differing only in the model and the seed.',
      '',
      f'Uniformly random play: {random_mean:.1f} ({FLAGS.random_episodes} episodes from the unseen test seeds).',
      '',
      f'## Training (last 100 training episodes; behaviour policy) and test ({FLAGS.episodes} unseen seeds, latest '
      'weights)',
      '',
      '| model | train: last 100 | check passed | ' + ' | '.join(f'test {m}' for m in FLAGS.modes) + ' |',
      '|---|---|---|' + '---|' * len(FLAGS.modes),
  ]
  for model in models:
    runs = [record['runs'][f'{model}/seed{s}'] for s in seeds]
    train = _mean_std([r['trained'] for r in runs])
    passed = (f'{sum(bool(r["check"]["passed"]) for r in runs)}/{len(runs)}' if all(r['check'] for r in runs)
              else 'not calibrated')
    cells = []
    for m in FLAGS.modes:
      mean, std = _mean_std([r['tests'][m]['mean'] for r in runs])
      cells.append(f'{mean:.1f} +- {std:.1f}')
    lines.append(f'| {model} | {train[0]:.1f} +- {train[1]:.1f} | {passed} | ' + ' | '.join(cells) + ' |')
  lines += [
      '',
      f'Mean +- std over the seeds (population std; per seed, a run\'s test score is its mean over the {FLAGS.episodes} '
      'unseen seeds).',
      '',
      f'![training returns]({os.path.basename(FLAGS.out)}.png)',
      '',
  ]
  return lines


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)   # TensorFlow's SavedModel INFO lines are not this script's output
  quiet.import_tensorflow()
  from rlcv_tf.stochastic_ac import analysis  # pylint: disable=g-import-not-at-top
  from rlcv_tf.stochastic_ac import learning_check  # pylint: disable=g-import-not-at-top
  models, seeds = list(FLAGS.models), list(FLAGS.seeds)
  env, _, _ = _settings()
  FLAGS.out = FLAGS.out or f'docs/stochastic_ac_{env}'
  json_path = FLAGS.out + '.json'
  os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
  record = _load(json_path)
  for entry in record['runs'].values():       # records written before the JSON kept curves, not episodes
    if 'returns' in entry:
      entry['trained'] = float(np.mean(entry['returns'][-100:]))
      entry['curve'] = _curve(entry.pop('steps'), entry.pop('returns'), entry['agent_steps'])
  if 'random' not in record:
    from rlcv_tf.stochastic_ac import evaluation  # pylint: disable=g-import-not-at-top
    record['random'] = learning_check.random_policy_return(env, evaluation.env_layout(env)[1], FLAGS.random_episodes)
  start = time.time()
  for seed in seeds:
    for model in models:
      _run_one(model, seed, record, json_path)
  wall = sum(record['runs'][f'{m}/seed{s}']['wall_s'] for m in models for s in seeds)
  _plot(record, models, seeds, record['random'], FLAGS.out + '.png')
  lines = _markdown(record, models, seeds, record['random'], wall)
  analysed = [m for m in ('a3c', 'sa3c') if m in models]
  if analysed:
    result = analysis.analyse_runs([record['runs'][f'{m}/seed{seeds[0]}']['logdir'] for m in analysed],
                                   steps=FLAGS.analysis_steps, print_fn=lambda s: None)
    out_dir = os.path.dirname(os.path.abspath(FLAGS.out))
    paths = analysis.plot_figures(result, out_dir)
    renamed = []
    for p in paths:
      target = f'{FLAGS.out}_{os.path.basename(p)}'
      os.replace(p, target)
      renamed.append(target)
    record['analysis'] = {r['model']: [dict(label=s['label'], **s['summary']) for s in r['snapshots']]
                          for r in result['runs']}
    lines += ['## Figs. 2.5 / 2.6 analogues (seed ' + seeds[0] + ', one held-out episode by each snapshot\'s MAP '
              'policy, at most ' + str(FLAGS.analysis_steps) + ' steps)', '',
              '| model | snapshot | steps played | mean V variance (5 samples) | action entropy (50 samples) mean '
              '+- std |', '|---|---|---|---|---|']
    for model, snaps in record['analysis'].items():
      for s in snaps:
        lines.append(f'| {model} | {s["label"]} | {s["steps"]} | {s["value_variance_mean"]:.3g} | '
                     f'{s["action_entropy_mean"]:.3f} +- {s["action_entropy_std"]:.3f} |')
    lines += ['', *(f'![{os.path.basename(p)}]({os.path.basename(p)})' for p in renamed), '']
  _save(record, json_path)
  with open(FLAGS.out + '.md', 'w') as f:
    f.write('\n'.join(lines))
  print(f'wrote {FLAGS.out}.md, .json, .png in {time.time() - start:.0f} s', flush=True)


if __name__ == '__main__':
  app.run(main)
