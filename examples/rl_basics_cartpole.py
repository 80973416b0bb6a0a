r"""Seeds 003-004 evidence on CartPole-v1 (issue 15 Sec. 7): DQN (the flagless MLP variant) and REINFORCE with and
without a value baseline, several seeds each, beside uniformly random play.

  python examples/rl_basics_cartpole.py                     # 3 seeds: DQN 30,000 steps, REINFORCE 40 updates (~12 min)

DQN is evaluated over --dqn_eval_episodes episodes at epsilon 0.05 on held-out seeds; REINFORCE's sampled policy
over 20. Outputs (--out, default docs/rl_basics_cartpole): .md (table, mean +- std over seeds), .json, .png (training
scores: DQN against agent steps, REINFORCE against episodes). Runs live under --root (a re-run re-reads finished ones).
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
flags.DEFINE_integer('dqn_steps', 30_000, 'DQN agent steps per run.')
flags.DEFINE_integer('dqn_eval_episodes', 100, 'DQN evaluation episodes (epsilon 0.05).')
flags.DEFINE_integer('reinforce_updates', 40, 'REINFORCE updates (8 episodes each) per run.')
flags.DEFINE_string('root', 'runs/examples/rl_basics_cartpole', 'Where the runs go.')
flags.DEFINE_string('out', 'docs/rl_basics_cartpole', 'Output prefix.')
FLAGS = flags.FLAGS


def _random_play(episodes: int = 100) -> float:
  from rlcv_tf.envs import random_policy  # pylint: disable=g-import-not-at-top
  return float(np.mean(random_policy.random_play_scores('cartpole', episodes, seed_base=2_000_000, num_frames=1)))


def main(argv):
  del argv
  from rlcv_tf.core import quiet  # pylint: disable=g-import-not-at-top
  quiet.import_tensorflow()
  from rlcv_tf.core import episode_log  # pylint: disable=g-import-not-at-top
  from rlcv_tf.rl_basics import dqn_training  # pylint: disable=g-import-not-at-top
  from rlcv_tf.rl_basics import reinforce_training  # pylint: disable=g-import-not-at-top
  start = time.monotonic()
  os.makedirs(os.path.dirname(FLAGS.out) or '.', exist_ok=True)
  say = lambda line: print('  ' + line, flush=True) if 'done' in line else None
  runs_ = []
  for seed in map(int, FLAGS.seeds):
    logdir = os.path.join(FLAGS.root, f'dqn_s{seed}')
    print(f'[example] DQN seed {seed}: {FLAGS.dqn_steps:,} agent steps into {logdir}', flush=True)
    t0 = time.monotonic()
    r = dqn_training.train(dqn_training.DQNRunConfig(total_steps=FLAGS.dqn_steps, seed=seed,
                                                     eval_episodes=FLAGS.dqn_eval_episodes, log_interval_s=1e9),
                           logdir, print_fn=say)
    runs_.append({'method': 'DQN (mlp)', 'seed': seed, 'eval': r['eval_mean'], 'eval_std': r['eval_std'],
                  'wall_s': time.monotonic() - t0, 'episodes': episode_log.load(logdir, name='episodes.jsonl'),
                  'x': 'agent_steps'})
    for baseline in (True, False):
      name = f'reinforce_{"baseline" if baseline else "plain"}_s{seed}'
      logdir = os.path.join(FLAGS.root, name)
      print(f'[example] REINFORCE{" + baseline" if baseline else ""} seed {seed}: {FLAGS.reinforce_updates} updates',
            flush=True)
      t0 = time.monotonic()
      r = reinforce_training.train(reinforce_training.ReinforceConfig(
          baseline=baseline, updates=FLAGS.reinforce_updates, seed=seed, log_interval_s=1e9), logdir, print_fn=say)
      runs_.append({'method': f'REINFORCE{" + baseline" if baseline else ""}', 'seed': seed,
                    'eval': r['eval_sampled_mean'], 'eval_greedy': r['eval_greedy_mean'],
                    'wall_s': time.monotonic() - t0,
                    'episodes': episode_log.load(logdir, key='update', name='episodes.jsonl'), 'x': 'episode'})
  random_mean = _random_play()
  _write(runs_, random_mean, time.monotonic() - start)
  print(f'[example] done in {(time.monotonic() - start) / 60:.1f} min: {FLAGS.out}.md, .json, .png', flush=True)


def _write(runs_, random_mean, wall_s):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  methods = []
  for r in runs_:
    if r['method'] not in methods:
      methods.append(r['method'])
  lines = ['# Seeds 003-004 on CartPole-v1: DQN and REINFORCE with / without a baseline', '',
           f'`python examples/rl_basics_cartpole.py`: seeds {",".join(FLAGS.seeds)}; DQN {FLAGS.dqn_steps:,} agent '
           f'steps (the flagless `launchers.dqn`), evaluated over {FLAGS.dqn_eval_episodes} episodes at epsilon 0.05; '
           f'REINFORCE {FLAGS.reinforce_updates} updates x 8 episodes (Adam 1e-2, one 64-unit tanh layer), its '
           f'sampled policy evaluated over 20 episodes; all on held-out seeds. Uniformly random play: '
           f'{random_mean:.1f} (100 episodes). Wall time {wall_s / 60:.1f} min on 2 cores. CartPole-v1 caps episodes '
           'at 500.', '',
           '| method | evaluation per seed | mean +- std over seeds | training episodes per run | wall per run |',
           '|---|---|---:|---:|---:|']
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
  for m in methods:
    rs = [r for r in runs_ if r['method'] == m]
    ev = [r['eval'] for r in rs]
    lines.append(f'| {m} | {", ".join(f"{v:.1f}" for v in ev)} | {np.mean(ev):.1f} +- {np.std(ev):.1f} | '
                 f'{np.mean([len(r["episodes"]) for r in rs]):.0f} | {np.mean([r["wall_s"] for r in rs]) / 60:.1f} min |')
    ax = axes[0] if m.startswith('DQN') else axes[1]
    for i, r in enumerate(rs):
      s = np.array([e['score'] for e in r['episodes']], np.float64)
      k = 20
      smooth = np.convolve(s, np.ones(k) / k, mode='valid') if len(s) >= k else s
      x = (np.array([e['agent_steps'] for e in r['episodes']])[k - 1:] if r['x'] == 'agent_steps'
           else np.arange(len(smooth)) + k)
      ax.plot(x, smooth, color='C0' if 'baseline' in m or m.startswith('DQN') else 'C1', alpha=0.8,
              label=m if i == 0 else None)
  for ax, xl in zip(axes, ('agent steps', 'episodes')):
    ax.axhline(random_mean, color='grey', ls='--', lw=1, label='random play')
    ax.set_xlabel(xl)
    ax.set_ylabel('training score (mean of 20 episodes)')
    ax.legend(fontsize=7)
  axes[0].set_title('DQN (epsilon-greedy training)', fontsize=9)
  axes[1].set_title('REINFORCE (sampled policy)', fontsize=9)
  fig.tight_layout()
  fig.savefig(FLAGS.out + '.png', dpi=100)
  plt.close(fig)
  lines += ['', '![training curves](rl_basics_cartpole.png)', '',
            'One configuration per method, not tuned per method; 3 seeds. DQN is judged at epsilon 0.05, REINFORCE by '
            'its sampled policy, so the two columns are not the same measurement.']
  with open(FLAGS.out + '.md', 'w') as f:
    f.write('\n'.join(lines) + '\n')
  with open(FLAGS.out + '.json', 'w') as f:
    json.dump({'random': random_mean, 'wall_s': wall_s,
               'runs': [dict({k: v for k, v in r.items() if k != 'episodes'},
                             scores=[e['score'] for e in r['episodes']]) for r in runs_]}, f, indent=1)


if __name__ == '__main__':
  app.run(main)
