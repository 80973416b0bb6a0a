r"""Chapter 4 learning comparison on CPU: CNN vs ACNN, with and without the auxiliary objective (thesis Fig. 4.5),
and training from scratch vs initialised from pre-training vs progressive networks (Fig. 4.6).

Every variant is trained for the same frame budget with the same short-run hyper-parameters for each seed, one
run after another. The script writes a PNG (panel A: the aux comparison; panel B, split into a CNN and an ACNN
half: scratch / init / progressive), each curve the mean over seeds of the per-agent episode return binned by
frames, with the min-max band across seeds and the random-policy return, and a JSON with every run's raw
curve, config and wall time and the per-variant summaries. It records each finished run in the JSON at once, so
a re-run with the same --out skips those runs and trains only the missing ones.

The pre-trained models (init / progressive) come from launchers/marl_pretrain.py on observation replays
recorded on mini_5v5_small (see docs/marl_pretraining_nll.md):
  python -m launchers.marl --env=mini_5v5_small --model=cnn --total_frames=24000 --num_actors=2 \
      --batch_size=4 --record_dir=/tmp/ev/replays --logdir=/tmp/ev/rl
  python -m launchers.marl_pretrain --replay_dir=/tmp/ev/replays --model=cnn --logdir=/tmp/ev/pre_cnn \
      --max_steps=2500 --eval_every=250 --patience=4
  python -m launchers.marl_pretrain --replay_dir=/tmp/ev/replays --model=acnn --logdir=/tmp/ev/pre_acnn \
      --max_steps=2500 --eval_every=250 --patience=4

The comparison in docs/marl_learning_comparison.md (about 75 minutes on 2 CPU cores; mini_5v5_small showed no
learning at this budget, so it runs on the academy stand-in at the pre-trained models' 18x24 map):
  python examples/marl_comparison.py --env=mini_academy_3v1 --smm_size=18x24 --total_frames=16384 \
      --batch_size=4 --learning_rate=2e-3 --seeds=0,1,2 --time_budget_s=4500 \
      --pretrained_cnn=/tmp/ev/pre_cnn --pretrained_acnn=/tmp/ev/pre_acnn --logdir=/tmp/marl_cmp

Flags shared with examples/marl_learning_curve.py (env, smm_size, num_agents, rewards, num_actors, batch_size,
unroll_length, learning_rate, entropy_cost, random_episodes, out, logdir) come from that script, whose
environment and random-baseline helpers this one reuses; only their defaults are changed here.
"""

import json
import os
import shutil
import sys
import tempfile
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # pylint: disable=g-import-not-at-top

import marl_learning_curve as curve_lib  # pylint: disable=g-import-not-at-top
from rlcv_tf.marl import config as config_lib  # pylint: disable=g-import-not-at-top
from rlcv_tf.marl import training  # pylint: disable=g-import-not-at-top

# name -> (model, aux objective, kind of pre-trained model it needs ('' for none), 'init' or 'progressive').
VARIANTS = {
    'cnn': ('cnn', 'none', '', ''),
    'cnn+aux': ('cnn', 'predict', '', ''),
    'acnn': ('acnn', 'none', '', ''),
    'acnn+aux': ('acnn', 'predict', '', ''),
    'cnn init': ('cnn', 'none', 'cnn', 'init'),
    'prcnn': ('prcnn', 'none', 'cnn', 'progressive'),
    'acnn init': ('acnn', 'none', 'acnn', 'init'),
    'pracnn': ('pracnn', 'none', 'acnn', 'progressive'),
}
# Panel title -> (variant, colour, line style). Panel A colours by network and dashes the +aux runs; the two
# halves of panel B colour by treatment, so that each half's three seed bands stay apart.
PANELS = (
    ('A: auxiliary objective (Fig. 4.5)', (('cnn', 'tab:blue', '-'), ('cnn+aux', 'tab:blue', '--'),
                                           ('acnn', 'tab:red', '-'), ('acnn+aux', 'tab:red', '--'))),
    ('B, CNN: scratch / init / progressive (Fig. 4.6)', (('cnn', 'tab:blue', '-'), ('cnn init', 'tab:orange', '--'),
                                                         ('prcnn', 'tab:green', ':'))),
    ('B, ACNN: scratch / init / progressive (Fig. 4.6)', (('acnn', 'tab:red', '-'),
                                                          ('acnn init', 'tab:orange', '--'),
                                                          ('pracnn', 'tab:green', ':'))),
)

flags.DEFINE_list('variants', list(VARIANTS), f'Variants to train, of: {", ".join(VARIANTS)}.')
flags.DEFINE_list('seeds', ['0', '1', '2'], 'Seeds; runs go seed by seed so that a cut-short grid has whole seeds.')
flags.DEFINE_float('aux_coef', config_lib.THESIS_AUX_COEF, 'Weight of the auxiliary loss (the +aux variants).')
flags.DEFINE_string('pretrained_cnn', '/tmp/ev/pre_cnn', 'marl_pretrain logdir of a CNN (cnn init, prcnn).')
flags.DEFINE_string('pretrained_acnn', '/tmp/ev/pre_acnn', 'marl_pretrain logdir of an ACNN (acnn init, pracnn).')
flags.DEFINE_integer('num_bins', 10, 'Frame bins of the plotted curves.')
flags.DEFINE_float('final_fraction', 0.25, 'The final window: episodes reported in the last this much of frames.')
flags.DEFINE_float('time_budget_s', 0.0,
                   'If > 0, start no run expected (from the mean wall time so far) to end past this many seconds.')
FLAGS = flags.FLAGS

for _name, _value in (('env', 'mini_5v5_small'), ('smm_size', ''), ('total_frames', 20_480), ('num_actors', 2),
                      ('random_episodes', 100), ('out', 'docs/marl_learning_comparison.png')):
  FLAGS.set_default(_name, _value)


def make_config(variant: str, seed: int) -> config_lib.MarlConfig:
  model, aux, pretrained_kind, use = VARIANTS[variant]
  pretrained = {'cnn': FLAGS.pretrained_cnn, 'acnn': FLAGS.pretrained_acnn}.get(pretrained_kind, '')
  if pretrained_kind and not os.path.isdir(pretrained):
    raise FileNotFoundError(f'{variant} needs a pre-trained {pretrained_kind} logdir; {pretrained!r} is not a '
                            'directory (see this script\'s docstring for the commands that make it)')
  return config_lib.MarlConfig(
      env=FLAGS.env, model=model, env_kwargs=curve_lib.env_kwargs(), total_frames=FLAGS.total_frames,
      num_actors=FLAGS.num_actors, batch_size=FLAGS.batch_size, unroll_length=FLAGS.unroll_length,
      learning_rate=FLAGS.learning_rate, entropy_cost=FLAGS.entropy_cost, aux=aux, aux_coef=FLAGS.aux_coef,
      init_from=pretrained if use == 'init' else '', progressive_from=pretrained if use == 'progressive' else '',
      seed=seed, log_interval_s=30, checkpoint_interval_s=1e9)  # checkpoints only at the end: runs are short


def run_key(variant: str, seed: int) -> str:
  return f'{variant}/seed{seed}'


def binned_curve(frames, returns, edges):
  """Mean return of the episodes reported inside each frame bin (NaN for a bin without episodes)."""
  frames, returns = np.asarray(frames, float), np.asarray(returns, float)
  out = np.full(len(edges) - 1, np.nan)
  for i in range(len(edges) - 1):
    inside = (frames > edges[i]) & (frames <= edges[i + 1])
    if inside.any():
      out[i] = returns[inside].mean()
  return out


def run_summary(run, total_frames):
  """Final-window mean and whole-run mean (the area under the curve divided by its length) of one run."""
  frames, returns = np.asarray(run['frames'], float), np.asarray(run['returns'], float)
  final = returns[frames > (1.0 - FLAGS.final_fraction) * total_frames]
  edges = np.linspace(0, total_frames, FLAGS.num_bins + 1)
  return {'final_mean': float(final.mean()) if final.size else float('nan'),
          'auc_mean': float(np.nanmean(binned_curve(frames, returns, edges))),
          'episodes': int(returns.size)}


def variant_table(results):
  """Per variant: mean and std over seeds of the run summaries, and the mean wall time."""
  table = {}
  for variant in VARIANTS:
    runs = [r for r in results['runs'].values() if r['variant'] == variant]
    if not runs:
      continue
    sums = [run_summary(r, results['total_frames']) for r in runs]
    finals = np.array([s['final_mean'] for s in sums])
    aucs = np.array([s['auc_mean'] for s in sums])
    table[variant] = {
        'seeds': sorted(r['seed'] for r in runs),
        'final_mean': float(finals.mean()), 'final_std': float(finals.std(ddof=1)) if len(runs) > 1 else 0.0,
        'final_per_seed': finals.tolist(),
        'auc_mean': float(aucs.mean()), 'auc_std': float(aucs.std(ddof=1)) if len(runs) > 1 else 0.0,
        'wall_s_mean': float(np.mean([r['wall_s'] for r in runs])),
        'frames_per_s_mean': float(np.mean([r['frames_per_s'] for r in runs])),
    }
  return table


def print_table(results, table):
  print(f'[cmp] random policy: {results["random_mean"]:+.3f} +- {results["random_se"]:.3f} (s.e.)', flush=True)
  print('| variant | seeds | final-window return (mean ± std over seeds) | whole-run mean (AUC) | wall / run |')
  print('|---|---|---|---|---|')
  for variant, row in table.items():
    print(f'| {variant} | {len(row["seeds"])} | {row["final_mean"]:+.3f} ± {row["final_std"]:.3f} | '
          f'{row["auc_mean"]:+.3f} ± {row["auc_std"]:.3f} | {row["wall_s_mean"]:.0f} s |', flush=True)


def plot(results, path):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  total = results['total_frames']
  edges = np.linspace(0, total, FLAGS.num_bins + 1)
  centres = 0.5 * (edges[1:] + edges[:-1])
  fig, axes = plt.subplots(1, len(PANELS), figsize=(16, 4.8), sharey=True)
  for ax, (title, lines) in zip(axes, PANELS):
    for variant, colour, style in lines:
      runs = [r for r in results['runs'].values() if r['variant'] == variant]
      if not runs:
        continue
      curves = np.stack([binned_curve(r['frames'], r['returns'], edges) for r in runs])
      ax.plot(centres, np.nanmean(curves, axis=0), color=colour, ls=style, lw=2,
              label=f'{variant} ({len(runs)} seeds)')
      if len(runs) > 1:
        ax.fill_between(centres, np.nanmin(curves, axis=0), np.nanmax(curves, axis=0), color=colour, alpha=0.12)
    ax.axhline(results['random_mean'], color='k', ls='-.', lw=1, label='uniform random policy')
    ax.set_title(title)
    ax.set_xlabel('frames (env steps)')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc='upper left')
  axes[0].set_ylabel('episode return per agent (mean over seeds)')
  fig.suptitle(f'{results["env"]}: {total:,} frames per run; band = min to max over seeds; '
               f'bins of {total // FLAGS.num_bins:,} frames', fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=110)


def save(results, path):
  results['table'] = variant_table(results)
  with open(path, 'w') as f:
    json.dump(results, f)  # one line: the raw curves are long


def main(_):
  unknown = sorted(set(FLAGS.variants) - set(VARIANTS))
  if unknown:
    raise app.UsageError(f'unknown variants {unknown}; valid: {", ".join(VARIANTS)}')
  start = time.monotonic()
  root = FLAGS.logdir or tempfile.mkdtemp(prefix='rlcv_cmp_')
  json_path = os.path.splitext(FLAGS.out)[0] + '.json'
  os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
  settings = {'env': FLAGS.env, 'env_kwargs': {k: list(v) if isinstance(v, tuple) else v
                                               for k, v in curve_lib.env_kwargs().items()},
              'total_frames': FLAGS.total_frames, 'num_actors': FLAGS.num_actors, 'batch_size': FLAGS.batch_size,
              'unroll_length': FLAGS.unroll_length, 'learning_rate': FLAGS.learning_rate,
              'entropy_cost': FLAGS.entropy_cost, 'aux_coef': FLAGS.aux_coef}
  results = None
  if os.path.exists(json_path):
    with open(json_path) as f:
      results = json.load(f)
    if results.get('settings') != settings:
      print(f'[cmp] {json_path} holds runs with other settings; starting afresh', flush=True)
      results = None
  if results is None:
    rand_mean, rand_se = curve_lib.random_policy_return(FLAGS.random_episodes)
    results = {'env': FLAGS.env, 'total_frames': FLAGS.total_frames, 'settings': settings,
               'random_mean': rand_mean, 'random_se': rand_se, 'random_episodes': FLAGS.random_episodes,
               'final_fraction': FLAGS.final_fraction, 'runs': {}}
  print(f'[cmp] random policy: mean return per agent {results["random_mean"]:+.3f} '
        f'+- {results["random_se"]:.3f}', flush=True)

  todo = [(v, int(s)) for s in FLAGS.seeds for v in FLAGS.variants if run_key(v, int(s)) not in results['runs']]
  print(f'[cmp] {len(todo)} runs to train ({len(results["runs"])} already in {json_path})', flush=True)
  walls = []
  for i, (variant, seed) in enumerate(todo):
    elapsed = time.monotonic() - start
    if FLAGS.time_budget_s > 0 and walls and elapsed + np.mean(walls) > FLAGS.time_budget_s:
      print(f'[cmp] time budget: stopping before {run_key(variant, seed)} ({len(todo) - i} runs left)', flush=True)
      break
    cfg = make_config(variant, seed)
    logdir = os.path.join(root, variant.replace(' ', '_').replace('+', '_'), f'seed{seed}')
    # A run that is not in the JSON did not finish: start it afresh rather than resume a partial curve.
    shutil.rmtree(logdir, ignore_errors=True)
    print(f'[cmp] run {i + 1}/{len(todo)}: {run_key(variant, seed)} ({cfg.model}, aux={cfg.aux}, '
          f'init_from={cfg.init_from or "-"}, progressive_from={cfg.progressive_from or "-"}), '
          f'{elapsed / 60:.1f} min elapsed', flush=True)
    res = training.train(cfg, logdir, print_fn=lambda s: print(s, flush=True))
    walls.append(res.wall_s)
    run = {'variant': variant, 'seed': seed, 'config': json.loads(cfg.to_json()), 'wall_s': res.wall_s,
           'frames_per_s': res.steady_frames_per_second,
           'frames': [int(e['frames']) for e in res.episodes],
           'returns': [round(float(np.mean(e['return'])), 5) for e in res.episodes],  # float32 noise off
           'lengths': [int(e['length']) for e in res.episodes]}
    for key in ('score_home', 'score_away'):
      if res.episodes and all(key in e for e in res.episodes):
        run[key] = [float(e[key]) for e in res.episodes]
    results['runs'][run_key(variant, seed)] = run
    s = run_summary(run, FLAGS.total_frames)
    print(f'[cmp] {run_key(variant, seed)}: {s["episodes"]} episodes, final-window return {s["final_mean"]:+.3f}, '
          f'whole-run mean {s["auc_mean"]:+.3f} (random {results["random_mean"]:+.3f}); {res.wall_s:.0f} s, '
          f'{res.steady_frames_per_second:.0f} frames/s', flush=True)
    save(results, json_path)
    plot(results, FLAGS.out)

  save(results, json_path)
  plot(results, FLAGS.out)
  print_table(results, results['table'])
  print(f'[cmp] wrote {FLAGS.out} and {json_path} in {(time.monotonic() - start) / 60:.1f} min', flush=True)


if __name__ == '__main__':
  app.run(main)
