r"""Seeds 003-004 evidence: Nature DQN on real ALE Breakout, bounded for 2 CPU cores (issue 15 Sec. 7).

  python examples/dqn_breakout.py                         # 25,000 agent steps (100,000 frames), one seed (~15 min)

The Nature 2015 network and learner (`--variant=nature2015`: target network, Huber, centred RMSProp 2.5e-4) on the
`atari_breakout_nature` preset (max of two RGB frames, Y, 84x84, 4 stacked, 1-30 no-ops, sign-clipped training
rewards), one update every 4 agent steps (replay ratio 0.25), batch 32. The paper trains for 50 million agent steps
(200 million frames) with a replay memory of 1 million, epsilon annealed over 1 million steps and C = 10,000
updates; here every length is cut to fit minutes (the table in the output lists them). Evaluation: episodes at
epsilon 0.05 on held-out seeds, beside uniformly random play on the same preset. Outputs (--out, default
docs/dqn_breakout): .md, .json, .png (training scores). The run lives under --root (a re-run resumes / re-reads it).
"""

import json
import os
import shutil
import sys
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=g-import-not-at-top

flags.DEFINE_integer('steps', 25_000, 'Agent steps (4 frames each).')
flags.DEFINE_integer('learning_starts', 5_000, 'Random-policy transitions before the first update.')
flags.DEFINE_integer('buffer_size', 25_000, 'Replay memory (frames).')
flags.DEFINE_integer('eps_steps', 20_000, 'Agent steps over which epsilon falls from 1 to 0.05.')
flags.DEFINE_integer('target_update_period', 1_000, 'C, in updates.')
flags.DEFINE_integer('eval_episodes', 10, 'Evaluation episodes (epsilon 0.05) and random-play episodes.')
flags.DEFINE_integer('seed', 0, 'Seed.')
flags.DEFINE_string('root', 'runs/examples/dqn_breakout', 'Where the run goes.')
flags.DEFINE_string('out', 'docs/dqn_breakout', 'Output prefix.')
FLAGS = flags.FLAGS
ENV = 'atari_breakout_nature'
PAPER = {'agent steps': '50,000,000', 'replay memory': '1,000,000', 'epsilon annealed over': '1,000,000 steps',
         'learning starts': '50,000', 'C (updates)': '10,000', 'evaluation': '30 episodes, epsilon 0.05, 5 min cap'}


def _random_play(episodes: int) -> list:
  from rlcv_tf.envs import random_policy  # pylint: disable=g-import-not-at-top
  return random_policy.random_play_scores(ENV, episodes, seed_base=3_000_000)


def main(argv):
  del argv
  from rlcv_tf.core import quiet  # pylint: disable=g-import-not-at-top
  quiet.import_tensorflow()
  from rlcv_tf.core import episode_log  # pylint: disable=g-import-not-at-top
  from rlcv_tf.rl_basics import dqn_training  # pylint: disable=g-import-not-at-top
  start = time.monotonic()
  cfg = dqn_training.DQNRunConfig(
      env=ENV, variant='nature2015', total_steps=FLAGS.steps, replay_ratio=0.25, batch_size=32,
      learning_starts=FLAGS.learning_starts, buffer_size=FLAGS.buffer_size, learning_rate=2.5e-4,
      target_update_period=FLAGS.target_update_period, eps_steps=FLAGS.eps_steps, num_frames=4, reward_clip=True,
      eval_episodes=FLAGS.eval_episodes, seed=FLAGS.seed, log_interval_s=60.0)
  logdir = os.path.join(FLAGS.root, f'nature2015_s{FLAGS.seed}')
  print(f'[example] Nature DQN on {ENV}: {FLAGS.steps:,} agent steps into {logdir}', flush=True)
  result = dqn_training.train(cfg, logdir, print_fn=lambda line: print('  ' + line, flush=True))
  print('[example] random play ...', flush=True)
  random_scores = _random_play(FLAGS.eval_episodes)
  episodes = episode_log.load(logdir, name='episodes.jsonl')
  wall = time.monotonic() - start
  os.makedirs(os.path.dirname(FLAGS.out) or '.', exist_ok=True)
  shutil.copyfile(os.path.join(logdir, 'returns.png'), FLAGS.out + '.png')
  first = [e['score'] for e in episodes[:20]]
  last = [e['score'] for e in episodes[-20:]]
  summary = {'config': cfg.to_dict(), 'eval': result, 'random_scores': random_scores,
             'training_episodes': len(episodes), 'first20_mean': float(np.mean(first)) if first else None,
             'last20_mean': float(np.mean(last)) if last else None, 'wall_s': wall}
  with open(FLAGS.out + '.json', 'w') as f:
    json.dump(summary, f, indent=1)
  lines = [
      '# Nature DQN on real ALE Breakout, bounded (seeds 003-004)', '',
      f'`python examples/dqn_breakout.py`: {FLAGS.steps:,} agent steps ({4 * FLAGS.steps:,} frames), seed '
      f'{FLAGS.seed}, {wall / 60:.1f} min on 2 CPU cores (a shared machine). One seed: a description of one run, not '
      'a measurement of the method.', '',
      '| setting | this run | Mnih et al. 2015 |', '|---|---:|---:|',
      f'| agent steps | {FLAGS.steps:,} | {PAPER["agent steps"]} |',
      f'| replay memory | {FLAGS.buffer_size:,} | {PAPER["replay memory"]} |',
      f'| epsilon 1 -> 0.05 (paper: 0.1) over | {FLAGS.eps_steps:,} steps | {PAPER["epsilon annealed over"]} |',
      f'| learning starts | {FLAGS.learning_starts:,} | {PAPER["learning starts"]} |',
      f'| C (updates) | {FLAGS.target_update_period:,} | {PAPER["C (updates)"]} |',
      f'| evaluation | {FLAGS.eval_episodes} episodes, epsilon 0.05, no cap | {PAPER["evaluation"]} |', '',
      '| | score |', '|---|---:|',
      f'| uniformly random play ({len(random_scores)} episodes) | {np.mean(random_scores):.2f} +- '
      f'{np.std(random_scores):.2f} |',
      f'| trained, epsilon 0.05 ({result["eval_episodes"]} episodes) | {result["eval_mean"]:.2f} +- '
      f'{result["eval_std"]:.2f} |',
      f'| training, first 20 episodes (epsilon near 1) | {summary["first20_mean"]:.2f} |',
      f'| training, last 20 episodes | {summary["last20_mean"]:.2f} |',
      f'| Mnih et al. 2015 (50M steps) | 401.2 +- 26.9 |', '',
      f'![training scores]({os.path.basename(FLAGS.out)}.png)', '',
      f'{len(episodes)} training episodes, {result["updates"]:,} updates. At 0.05 % of the paper\'s budget the '
      'paper\'s result is not expected and does not appear; what this run can show is whether the pipeline '
      '(preset, stacking, replay, target network, RMSProp) moves the score off random play at all: '
      + ('it does (evaluation above random play by more than one standard deviation of random play).'
         if result['eval_mean'] > np.mean(random_scores) + np.std(random_scores) else
         'it does not, at this budget (evaluation within or below random play\'s spread; the greedy network also '
         'has to learn to press FIRE to serve, which random play does by chance).')]
  with open(FLAGS.out + '.md', 'w') as f:
    f.write('\n'.join(lines) + '\n')
  print(f'[example] done in {wall / 60:.1f} min: {FLAGS.out}.md, .json, .png', flush=True)


if __name__ == '__main__':
  app.run(main)
