r"""Seed 001 evidence on the CPU stand-in (issue 14 Sec. 6): PPO fixed vs adapt vs joint on mini_breakout, several
seeds, beside uniformly random play; what the pre-trained VAE keeps of the ball; the gradient norms at U.

  python examples/vae_pg_minibreakout.py                         # check preset (21x21), 3 seeds, 200,000 steps
  python examples/vae_pg_minibreakout.py --preset=small --total_steps=1000000 --kappas=1,10,20   # 42x42, longer

The claim under test (seed 001 Fig. 3, R1-R3): fixed stays at random play's level, adapt and joint learn. Per seed:
one VAE pre-training (the preset's tracker frames and epochs) shared by fixed and adapt; joint starts
from random weights. Every run of one invocation has the same settings except variant, kappa and seed.
Outputs (--out, default docs/vae_pg_minibreakout): <out>.md (tables), <out>.json (every number and setting),
<out>.png (median over seeds of the smoothed raw score vs agent steps, min-max band, random play dashed),
<out>_recon.png (the first seed's validation frames over their reconstructions). Runs live under --root; a re-run
resumes them (finished runs only re-read).

mini_breakout is a NumPy stand-in (21x21 or 42x42, a 1-pixel ball), not Atari; 200,000 steps are 1/50 of the paper's
10^7.
"""

import json
import os
import sys
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=g-import-not-at-top

flags.DEFINE_list('seeds', ['0', '1', '2'], 'Seeds.')
flags.DEFINE_list('variants', ['fixed', 'adapt', 'joint'], 'Variants.')
flags.DEFINE_list('kappas', ['20'], 'kappa values for joint runs (paper 20; searched 1, 10, 20).')
flags.DEFINE_integer('total_steps', 200_000, 'Agent steps per run.')
flags.DEFINE_string('preset', 'check', 'vae_pg preset (check: mini_breakout_tiny 21x21; small: mini_breakout 42x42).')
flags.DEFINE_string('root', 'runs/examples/vae_pg_minibreakout', 'Where the runs go.')
flags.DEFINE_string('out', 'docs/vae_pg_minibreakout', 'Output prefix.')
flags.DEFINE_integer('random_episodes', 50, 'Episodes of uniformly random play for the baseline.')
FLAGS = flags.FLAGS


def _smooth(scores, k=10):
  scores = np.asarray(scores, np.float64)
  return np.array([scores[max(0, i - k + 1):i + 1].mean() for i in range(len(scores))])


def _curve_on_grid(episodes, grid):
  """Smoothed score (mean of the last 10 episodes) at each grid point of agent steps (NaN before the first)."""
  steps = np.array([e['agent_steps'] for e in episodes])
  smooth = _smooth([e['score'] for e in episodes])
  out = np.full(len(grid), np.nan)
  for i, g in enumerate(grid):
    idx = np.searchsorted(steps, g, side='right') - 1
    if idx >= 0:
      out[i] = smooth[idx]
  return out


def main(argv):
  del argv
  from rlcv_tf.core import quiet  # pylint: disable=g-import-not-at-top
  quiet.import_tensorflow()
  from rlcv_tf.vae_pg import learning_check  # pylint: disable=g-import-not-at-top
  from rlcv_tf.vae_pg import presets  # pylint: disable=g-import-not-at-top
  from rlcv_tf.vae_pg import training  # pylint: disable=g-import-not-at-top
  start = time.monotonic()
  os.makedirs(os.path.dirname(FLAGS.out) or '.', exist_ok=True)
  record = {'settings': {'preset': FLAGS.preset, 'total_steps': FLAGS.total_steps, 'seeds': FLAGS.seeds},
            'runs': [], 'pretrain': []}
  quiet_print = lambda line: print('  ' + line, flush=True) if 'done' in line or 'check' in line else None
  for seed in map(int, FLAGS.seeds):
    base = presets.preset(FLAGS.preset, seed=seed, total_steps=FLAGS.total_steps, runtime='inline')
    pre_dir = os.path.join(FLAGS.root, f'pretrain_s{seed}')
    if not os.path.exists(os.path.join(pre_dir, training.VAE_WEIGHTS)):
      print(f'[example] seed {seed}: VAE pre-training into {pre_dir}', flush=True)
      training.pretrain(base, pre_dir, print_fn=quiet_print)
    with open(os.path.join(pre_dir, 'eval.json')) as f:
      record['pretrain'].append(dict(json.load(f), seed=seed))
    for variant in FLAGS.variants:
      for kappa in (map(float, FLAGS.kappas) if variant == 'joint' else [20.0]):
        cfg = base.replace(variant=variant, kappa=kappa)
        name = f'{variant}{"_k%g" % kappa if variant == "joint" else ""}_s{seed}'
        logdir = os.path.join(FLAGS.root, name)
        print(f'[example] {name}: {FLAGS.total_steps:,} agent steps into {logdir}', flush=True)
        t0 = time.monotonic()
        result = training.train_rl(cfg, logdir, pre_dir if variant != 'joint' else None, print_fn=quiet_print)
        episodes = training.load_episodes(logdir)
        scores = [e['score'] for e in episodes]
        with open(os.path.join(logdir, 'grad_norms.json')) as f:
          norms = json.load(f)
        record['runs'].append({
            'name': name, 'variant': variant, 'kappa': kappa if variant == 'joint' else None, 'seed': seed,
            'episodes': episodes, 'last20': float(np.mean(scores[-20:])) if scores else None,
            'grad_norms_first': norms[0] if norms else None, 'grad_norms_last': norms[-1] if norms else None,
            'wall_s': time.monotonic() - t0, 'agent_steps': result.agent_steps,
            'probe_r2': training.encoder_ball_probe(cfg, logdir, os.path.join(pre_dir, 'frames'))})
  env = presets.preset(FLAGS.preset).env
  random_mean = learning_check.random_play_score(env, presets.preset(FLAGS.preset).num_frames,
                                                 episodes=FLAGS.random_episodes)
  record['random'] = random_mean
  record['wall_s'] = time.monotonic() - start
  _write(record, random_mean)
  print(f'[example] done in {(time.monotonic() - start) / 60:.1f} min: {FLAGS.out}.md, .json, .png', flush=True)


def _write(record, random_mean):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  groups = {}
  for r in record['runs']:
    key = r['variant'] if r['variant'] != 'joint' else f'joint (kappa {r["kappa"]:g})'
    groups.setdefault(key, []).append(r)
  grid = np.linspace(0, FLAGS.total_steps, 61)
  fig, ax = plt.subplots(figsize=(6.4, 3.8))
  from rlcv_tf.vae_pg import presets  # pylint: disable=g-import-not-at-top
  env = presets.preset(FLAGS.preset).env
  lines = [f'# Seed 001 on {env} (CPU stand-in): fixed vs adapt vs joint', '',
           f'Preset `{FLAGS.preset}`, {FLAGS.total_steps:,} agent steps per run, seeds {",".join(FLAGS.seeds)}; '
           f'uniformly random play scores {random_mean:.2f} (mean of {FLAGS.random_episodes} episodes). '
           f'This invocation took {record["wall_s"] / 60:.1f} min on this machine (runs already finished under --root '
           'are only re-read; training all 9 runs of the default took 29 min on 2 shared cores).', '',
           '| variant | last-20-episode score per seed | median | x random | probe R^2 mu -> ball after training, per '
           'seed | ‖dL_VAE/dU‖ / ‖d(kappa L_PPO)/dU‖ at start -> end (first seed) |', '|---|---|---:|---:|---|---|']
  for key, runs_ in groups.items():
    curves = np.stack([_curve_on_grid(r['episodes'], grid) for r in runs_])
    med = np.nanmedian(curves, axis=0)
    ax.plot(grid, med, label=key)
    ax.fill_between(grid, np.nanmin(curves, 0), np.nanmax(curves, 0), alpha=0.15)
    last = [r['last20'] for r in runs_]
    g0, g1 = runs_[0]['grad_norms_first'], runs_[0]['grad_norms_last']
    ratio = (f'{g0["grad_u/vae_over_ppo"]:.3g} -> {g1["grad_u/vae_over_ppo"]:.3g}' if g0 and g1 else '-')
    probes = ', '.join('-' if r.get('probe_r2') is None else f'{r["probe_r2"]:.2f}' for r in runs_)
    lines.append(f'| {key} | {", ".join(f"{v:.2f}" for v in last)} | {np.median(last):.2f} | '
                 f'{np.median(last) / max(random_mean, 1e-9):.1f} | {probes} | {ratio} |')
  ax.axhline(random_mean, color='grey', ls='--', lw=1, label='random play')
  ax.set_xlabel('agent steps')
  ax.set_ylabel('raw score (mean of last 10 episodes)')
  ax.set_title(f'{env}: median over seeds, min-max band', fontsize=9)
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(FLAGS.out + '.png', dpi=100)
  plt.close(fig)
  lines += ['', '## What the pre-trained VAE keeps of the ball (R6)', '',
            '| seed | val NLL | val KL | ball-pixel MSE | whole-frame MSE | ball intensity | recon at ball | probe R^2 '
            'mu -> ball (x, y) |', '|---|---:|---:|---:|---:|---:|---:|---:|']
  for p in record['pretrain']:
    b = p.get('ball', {})
    lines.append(f'| {p["seed"]} | {p["val_nll"]:.1f} | {p["val_kl"]:.1f} | {b.get("mse_ball", float("nan")):.3f} | '
                 f'{b.get("mse_frame", float("nan")):.4f} | {b.get("ball_intensity", float("nan")):.2f} | '
                 f'{b.get("recon_at_ball", float("nan")):.2f} | {p.get("ball_probe_r2") or float("nan"):.2f} |')
  with open(FLAGS.out + '.md', 'w') as f:
    f.write('\n'.join(lines) + '\n')
  slim = dict(record, runs=[{k: v for k, v in r.items() if k != 'episodes'} for r in record['runs']])
  with open(FLAGS.out + '.json', 'w') as f:
    json.dump(slim, f, indent=1)
  first = os.path.join(FLAGS.root, f'pretrain_s{FLAGS.seeds[0]}', 'reconstructions.png')
  if os.path.exists(first):
    import shutil  # pylint: disable=g-import-not-at-top
    shutil.copy(first, FLAGS.out + '_recon.png')


if __name__ == '__main__':
  app.run(main)
