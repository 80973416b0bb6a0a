r"""Chapter 2 evaluation protocol (thesis Sec. 2.5, T:L1129-1146) for A3C-family runs of launchers.stochastic_ac.

  python -m launchers.stochastic_ac_eval --runs=DIR1,DIR2,DIR3                 # 10 unseen seeds each, run's mode
  python -m launchers.stochastic_ac_eval --runs=DIR1,DIR2,DIR3 --mode=vote --num_samples=50
  python -m launchers.stochastic_ac_eval --runs=DIR --mode=map --checkpoint=latest

Each run's best-validated weights (or, with --checkpoint=latest or when it never validated, its latest checkpoint)
play the same --episodes unseen seeds; prints Best / Avg. beside the thesis's Table 2.2 / 2.G.1 numbers for the
same game, model and mode, and writes the result as JSON (--output; default <first run>/protocol_<mode>.json).
"""

import json
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')

from absl import app
from absl import flags

from launchers import common

from rlcv_tf.stochastic_ac import config as config_lib

flags.DEFINE_list('runs', [], 'Run logdirs of one game and model (the thesis: 3 independent runs).')
flags.DEFINE_string('mode', '', 'map, vote, mean_prob or sample; empty: the runs\' own (map for a3c and NoisyNet, '
                    'vote for the stochastic-activation models).')
flags.DEFINE_integer('num_samples', 0, 'N of vote / mean_prob (thesis 5, Freeway 1); 0: the runs\' own.')
flags.DEFINE_integer('episodes', 10, 'Unseen test seeds per run (thesis 10).')
flags.DEFINE_string('checkpoint', 'best', 'best (the best-validated weights) or latest.')
flags.DEFINE_integer('max_steps', -1, 'Cut test episodes after this many agent steps; 0 plays them to the end '
                     '(ALE: 108,000 emulator frames); -1: the runs\' eval_max_steps.')
flags.DEFINE_integer('seed', 0, 'Seed of the evaluation\'s noise and action sampling.')
flags.DEFINE_string('output', '', 'JSON file for the result; default <first run>/protocol_<mode>.json.')

FLAGS = flags.FLAGS


def _check_flags():
  if not FLAGS.runs:
    common.fail('--runs: give one or more run logdirs (comma-separated), e.g. --runs=runs/a,runs/b,runs/c')
  if FLAGS.mode and FLAGS.mode not in config_lib.EVAL_MODES:
    common.fail(f'--mode={FLAGS.mode}: unknown mode; valid values: {", ".join(config_lib.EVAL_MODES)}')
  if FLAGS.num_samples < 0 or (FLAGS['num_samples'].present and FLAGS.num_samples == 0):
    common.fail(f'--num_samples={FLAGS.num_samples}: must be an integer >= 1')
  if FLAGS.episodes < 1:
    common.fail(f'--episodes={FLAGS.episodes}: must be an integer >= 1')
  if FLAGS.checkpoint not in ('best', 'latest'):
    common.fail(f'--checkpoint={FLAGS.checkpoint}: valid values: best, latest')
  if FLAGS.max_steps < -1:
    common.fail(f'--max_steps={FLAGS.max_steps}: must be >= 0 (or -1: the runs\' own)')
  common.check_run_dirs(FLAGS.runs, config_lib.check_trained_run)


def main(argv):
  common.start(argv)
  _check_flags()
  from rlcv_tf.core import quiet  # pylint: disable=g-import-not-at-top
  quiet.import_tensorflow()
  from rlcv_tf.envs import base  # pylint: disable=g-import-not-at-top
  from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
  from rlcv_tf.stochastic_ac import evaluation  # pylint: disable=g-import-not-at-top
  try:
    for d in FLAGS.runs:
      cfg, _ = evaluation.find_checkpoint(d, FLAGS.checkpoint)
      registry.check_available(cfg.env)
    result = evaluation.evaluate_runs(FLAGS.runs, mode=FLAGS.mode, num_samples=FLAGS.num_samples,
                                      episodes=FLAGS.episodes, which=FLAGS.checkpoint,
                                      max_steps=None if FLAGS.max_steps < 0 else FLAGS.max_steps, seed=FLAGS.seed,
                                      print_fn=lambda s: print(s, flush=True))
  except (evaluation.NoCheckpointError, base.EnvironmentUnavailableError, ValueError) as e:
    common.fail(f'--runs: {e}' if isinstance(e, evaluation.NoCheckpointError) else str(e))
  output = FLAGS.output or os.path.join(FLAGS.runs[0], f'protocol_{result["mode"]}.json')
  with open(output, 'w') as f:
    json.dump({k: v for k, v in result.items() if k != 'table'}, f, indent=2)
  print(result['table'], flush=True)
  print(f'[stochastic_ac_eval] wrote {output}', flush=True)


if __name__ == '__main__':
  app.run(main)
