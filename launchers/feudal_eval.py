r"""Plays an exported Chapter 3 agent (launchers.feudal's agent/ directory) from its SavedModels alone.

  python -m launchers.feudal_eval --agent=runs/feudal/small_multigoal_wn/agent            # 100 test seeds
  python -m launchers.feudal_eval --agent=DIR --seeds=1000-1009 --episodes=3 --greedy

Prints the score (mean return per episode on the MultiGoal tasks, success rate on Door-Key), traversal counts, and
writes DIR/../play.json. No training code is used (rlcv_tf/worldgraph/export.play_exported).
"""

import json
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')

from absl import app
from absl import flags

from launchers import common

flags.DEFINE_string('agent', '', 'An exported agent directory (agent.json, manager/, worker/ or a2c/, graph.json).')
flags.DEFINE_string('seeds', '2000-2099', 'Env seeds: FIRST-LAST (inclusive) or a comma list (test: 2000-2099).')
flags.DEFINE_integer('episodes', 1, 'Episodes per env seed.')
flags.DEFINE_boolean('greedy', False, 'Argmax actions and goals instead of sampled ones (the thesis samples).')
flags.DEFINE_string('task', '', 'Play another task than the one trained on (same number of actions).')

FLAGS = flags.FLAGS


def parse_seeds(text: str):
  try:
    if '-' in text:
      first, last = (int(v) for v in text.split('-'))
      if last < first:
        raise ValueError
      return list(range(first, last + 1))
    return [int(v) for v in text.split(',') if v.strip()]
  except ValueError:
    common.fail(f'--seeds={text}: use FIRST-LAST (e.g. 2000-2099) or a comma-separated list of integers')


def main(argv):
  common.start(argv)
  if not FLAGS.agent:
    common.fail('--agent is required: an agent directory written by python -m launchers.feudal (<logdir>/agent)')
  if not os.path.isfile(os.path.join(FLAGS.agent, 'agent.json')):
    common.fail(f'--agent={FLAGS.agent}: no agent.json there; pass the agent/ directory of a launchers.feudal run')
  seeds = parse_seeds(FLAGS.seeds)
  if not seeds or FLAGS.episodes < 1:
    common.fail('--seeds must name at least one seed and --episodes must be >= 1')
  from rlcv_tf.core import quiet  # pylint: disable=g-import-not-at-top
  quiet.import_tensorflow()
  from rlcv_tf.worldgraph import export  # pylint: disable=g-import-not-at-top
  try:
    result = export.play_exported(FLAGS.agent, task=FLAGS.task or None, seeds=seeds, episodes=FLAGS.episodes,
                                  greedy=FLAGS.greedy)
  except ValueError as e:
    common.fail(f'--agent={FLAGS.agent}: {e}')
  with open(os.path.join(FLAGS.agent, 'agent.json')) as f:
    task = FLAGS.task or json.load(f).get('task')
  score = result['success_rate'] if task == 'doorkey' else result['mean_return']
  metric = 'success rate' if task == 'doorkey' else 'mean return per episode'
  print(f'[feudal_eval] {task}: {metric} {score:.3f} over {len(seeds)} seeds x {FLAGS.episodes} episode(s) '
        f'({"greedy" if FLAGS.greedy else "sampled"} actions); traversals {result.get("traversals", 0)}, aborted '
        f'{result.get("aborted", 0)}', flush=True)
  out = os.path.join(os.path.dirname(os.path.abspath(FLAGS.agent)), 'play.json')
  with open(out, 'w') as f:
    json.dump({k: v for k, v in result.items() if isinstance(v, (int, float, str))}, f, indent=1)
  print(f'[feudal_eval] wrote {out}', flush=True)


if __name__ == '__main__':
  app.run(main)
