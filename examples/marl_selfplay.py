r"""The thesis's self-play procedure (App. 4.C, Sec. 4.5) end to end at stand-in scale, with its evidence.

1. Self-play AIs by mixed self-play: CNN-v1 with 2 right field players driven (and trained) by the learning
   policy, CNN-v2 with 1; the other right players are the built-in AI.
2. CNN and ACNN trained against v1 / v2 frozen (one drawn per episode), and a CNN against the built-in AI.
3. Every agent plays the built-in AI, then all play a round robin rated with App. 4.F's ELO (Table 4.1's
   procedure).
Writes a learning-curve PNG, a JSON of every number and a Markdown summary.

  python examples/marl_selfplay.py --total_frames=40000 --out=docs/marl_selfplay   # about 30 min on 2 cores
"""

import json
import os
import sys
import tempfile
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=g-import-not-at-top

from rlcv_tf.marl import agents as agents_lib  # pylint: disable=g-import-not-at-top
from rlcv_tf.marl import config as config_lib  # pylint: disable=g-import-not-at-top
from rlcv_tf.marl import evaluation  # pylint: disable=g-import-not-at-top
from rlcv_tf.marl import training  # pylint: disable=g-import-not-at-top

flags.DEFINE_string('env', 'mini_5v5_small', 'A two-team environment (mini_5v5_small, mini_5v5, grf_5v5).')
flags.DEFINE_integer('total_frames', 40_000, 'Frames per training run (5 runs).')
flags.DEFINE_integer('num_actors', 2, 'Actor processes per run.')
flags.DEFINE_integer('batch_size', 8, 'Unrolls per update.')
flags.DEFINE_float('learning_rate', 5e-4, 'Adam learning rate (higher than the thesis for a short run).')
flags.DEFINE_float('entropy_cost', 3e-3, 'Entropy cost (higher than the thesis for a short run).')
flags.DEFINE_integer('eval_games', 10, 'Games of each agent against the built-in AI.')
flags.DEFINE_integer('games_per_pair', 4, 'Tournament games per ordered pair (each pair meets twice as often).')
flags.DEFINE_bool('tiny', False, 'A tiny network (for a quick check of the script, not for results).')
flags.DEFINE_integer('seed', 0, 'Seed.')
flags.DEFINE_string('logdir', '', 'Root of the training logdirs (default: a temporary directory).')
flags.DEFINE_string('out', 'docs/marl_selfplay', 'Output prefix: <out>.png, <out>.json, <out>.md.')
FLAGS = flags.FLAGS

# name -> (model, opponent setting); in training order (the fixed runs need v1 and v2).
RUNS = (
    ('cnn_v1', 'cnn', dict(opponent='selfplay_mixed', selfplay_agents=2)),
    ('cnn_v2', 'cnn', dict(opponent='selfplay_mixed', selfplay_agents=1)),
    ('cnn_vs_selfplay', 'cnn', dict(opponent='selfplay_fixed')),
    ('acnn_vs_selfplay', 'acnn', dict(opponent='selfplay_fixed')),
    ('cnn_vs_builtin', 'cnn', dict(opponent='builtin', env_kwargs={'num_agents': 4})),
)


def run_config(model, setting, root):
  setting = dict(setting)
  if setting.get('opponent') == 'selfplay_fixed':
    setting['opponent_agents'] = (os.path.join(root, 'cnn_v1'), os.path.join(root, 'cnn_v2'))
  arch = dict(stack_channels=((8, 1), (16, 1)), feature_dim=64) if FLAGS.tiny else {}
  return config_lib.MarlConfig(
      env=FLAGS.env, model=model, total_frames=FLAGS.total_frames, num_actors=FLAGS.num_actors,
      batch_size=FLAGS.batch_size, learning_rate=FLAGS.learning_rate, entropy_cost=FLAGS.entropy_cost,
      seed=FLAGS.seed, log_interval_s=30, **arch, **setting)


def curve(episodes, key='return'):
  """(frames, team return) per episode; key 'opponent_return' gives the right team's."""
  return ([int(e['frames']) for e in episodes], [float(np.sum(e[key])) for e in episodes if key in e])


def plot(runs, path):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
  for ax, names, title in ((axes[0], ('cnn_v1', 'cnn_v2'), 'mixed self-play (making the self-play AIs)'),
                           (axes[1], ('cnn_vs_selfplay', 'acnn_vs_selfplay', 'cnn_vs_builtin'),
                            'training against frozen v1/v2 (and a built-in-AI baseline)')):
    for name in names:
      f, r = np.array(runs[name]['frames'], float), np.array(runs[name]['team_return'])
      if not len(r):
        continue
      w = max(1, len(r) // 10)
      smooth = np.convolve(r, np.ones(w) / w, mode='valid')
      line, = ax.plot(f[w - 1:], smooth, label=f'{name} home team (mean of {w})')
      ax.plot(f, r, '.', alpha=0.2, color=line.get_color())
      if runs[name]['opponent_team_return']:
        o = np.array(runs[name]['opponent_team_return'])
        ax.plot(f[w - 1:], np.convolve(o, np.ones(w) / w, mode='valid'), ls=':', color=line.get_color(),
                label=f'{name} right-team agents')
    ax.set_xlabel('frames (env steps)')
    ax.set_ylabel('episode return, summed over a team')
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
  fig.suptitle(f'{FLAGS.env}: self-play (App. 4.C), {FLAGS.total_frames:,} frames per run, seed {FLAGS.seed}')
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def markdown(result) -> str:
  lines = [
      '# Self-play at stand-in scale (thesis App. 4.C and Sec. 4.5)', '',
      f'Environment `{FLAGS.env}`, {FLAGS.total_frames:,} frames per run, one seed ({FLAGS.seed}), '
      f'{FLAGS.num_actors} actors, batch {FLAGS.batch_size}x32, Adam {FLAGS.learning_rate:g}, entropy '
      f'{FLAGS.entropy_cost:g}. Made by `python examples/marl_selfplay.py --total_frames={FLAGS.total_frames}`. '
      'Home = the 4 field players, goalies built-in.', '',
      '## Runs', '', '| run | model | opponent | home team return, first / last 20% of episodes | wall |',
      '|---|---|---|---|---|']
  for name, r in result['runs'].items():
    tr = np.array(r['team_return'])
    k = max(1, len(tr) // 5)
    lines.append(f'| {name} | {r["model"]} | {r["opponent"]} | {tr[:k].mean():+.2f} / {tr[-k:].mean():+.2f} '
                 f'({len(tr)} episodes) | {r["wall_s"] / 60:.1f} min |')
  lines += ['', f'## Against the built-in AI ({FLAGS.eval_games} games each, sampled actions)', '',
            '| agent | W/T/L | goals for-against | goal difference per game |', '|---|---|---|---|']
  for name, s in result['vs_builtin'].items():
    lines.append(f'| {name} | {s["wins"]}/{s["ties"]}/{s["losses"]} | {s["goals_for"]}-{s["goals_against"]} | '
                 f'{s["goal_difference_per_game"]:+.2f} |')
  t = result['tournament']
  lines += ['', f'## Round robin ({FLAGS.games_per_pair} games per ordered pair) and ELO (App. 4.F)', '',
            '| home \\ away | ' + ' | '.join(t['agents']) + ' |', '|---' * (len(t['agents']) + 1) + '|']
  for name, row in zip(t['agents'], t['table']):
    lines.append(f'| {name} | ' + ' | '.join('-' if c is None else '/'.join(map(str, c)) for c in row) + ' |')
  elo_stats = t['elo']
  lines += ['', f'| agent | ELO, mean over {elo_stats["num_shuffles"]} match orders | std |', '|---|---|---|']
  for name in t['agents']:
    lines.append(f'| {name} | {elo_stats["mean"][name]:.0f} | {elo_stats["std"][name]:.0f} |')
  lines += ['', '![curves](' + os.path.basename(FLAGS.out) + '.png)', '']
  return '\n'.join(lines)


def main(_):
  root = FLAGS.logdir or tempfile.mkdtemp(prefix='rlcv_selfplay_')
  start = time.monotonic()
  runs = {}
  for name, model, setting in RUNS:
    cfg = run_config(model, setting, root)
    print(f'[selfplay] training {name}: {model} vs {cfg.opponent}', flush=True)
    res = training.train(cfg, os.path.join(root, name), print_fn=lambda s: print(s, flush=True))
    frames, team = curve(res.episodes)
    runs[name] = {'model': model, 'opponent': cfg.opponent if cfg.opponent != 'selfplay_mixed' else
                  f'selfplay_mixed(k={cfg.selfplay_agents})', 'frames': frames, 'team_return': team,
                  'opponent_team_return': curve(res.episodes, 'opponent_return')[1],
                  'per_opponent': {}, 'wall_s': res.wall_s, 'frames_per_s': res.steady_frames_per_second}
    for e in res.episodes:
      if 'opponent' in e:
        runs[name]['per_opponent'].setdefault(e['opponent'], []).append(float(np.sum(e['return'])))
  agents = [agents_lib.load_agent(os.path.join(root, name), name=name) for name, _, _ in RUNS]
  vs_builtin = {}
  for agent in agents:
    r = evaluation.play_games(agent, None, FLAGS.eval_games, env_name=FLAGS.env, seed=FLAGS.seed,
                              print_fn=lambda s: print(s, flush=True))
    vs_builtin[agent.name] = r['summary']
  tour = evaluation.tournament(agents, FLAGS.games_per_pair, env_name=FLAGS.env, seed=FLAGS.seed,
                               print_fn=lambda s: print(s, flush=True))
  result = {'env': FLAGS.env, 'total_frames': FLAGS.total_frames, 'seed': FLAGS.seed, 'runs': runs,
            'vs_builtin': vs_builtin, 'tournament': tour, 'wall_s': time.monotonic() - start}
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
  plot(runs, FLAGS.out + '.png')
  with open(FLAGS.out + '.json', 'w') as f:
    json.dump(result, f, default=lambda o: o.tolist() if hasattr(o, 'tolist') else str(o))
  with open(FLAGS.out + '.md', 'w') as f:
    f.write(markdown(result))
  print(f'[selfplay] wrote {FLAGS.out}.png / .json / .md in {(time.monotonic() - start) / 60:.1f} min', flush=True)


if __name__ == '__main__':
  app.run(main)
