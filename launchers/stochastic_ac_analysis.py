r"""Chapter 2 analysis (thesis Sec. 2.6.2-2.6.3, Figs. 2.5 and 2.6) of A3C-family runs of launchers.stochastic_ac.

  python -m launchers.stochastic_ac_analysis --runs=runs/a3c,runs/sa3c        # 700 steps, 5 / 50 samples
  python -m launchers.stochastic_ac_analysis --runs=DIR --steps=300 --out=figs

For every weight snapshot a run kept (<logdir>/snapshots, by default iteration 1 and a quarter, half and all of the
run; the thesis preset keeps iterations 100, 2K, 6K, 75K, 150K), one episode from a held-out seed, played by the
snapshot's MAP policy: the variance of V over 5 activation samples at each step (value_variance.png, Fig. 2.5) and
the entropy of 50 sampled actions at each step (action_entropy.png, Fig. 2.6), with the numbers in analysis.json.
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')

from absl import app
from absl import flags

from launchers import common

from rlcv_tf.stochastic_ac import config as config_lib

flags.DEFINE_list('runs', [], 'Run logdirs (A3C family; several side by side, e.g. A3C and SA3C as in Fig. 2.6).')
flags.DEFINE_integer('steps', 700, 'Agent steps of the analysed episode (thesis: t = 1..700).')
flags.DEFINE_integer('value_samples', 5, 'Activation samples per step for the variance of V (thesis 5; >= 2).')
flags.DEFINE_integer('action_samples', 50, 'Sampled actions per step for the entropy (thesis 50).')
flags.DEFINE_integer('seed', -1, 'Environment seed of the episode; -1: the first unseen test seed.')
flags.DEFINE_integer('noise_seed', 0, 'Seed of the activation noise and action sampling.')
flags.DEFINE_string('out', '', 'Folder for value_variance.png, action_entropy.png and analysis.json; default '
                    '<first run>/analysis.')

FLAGS = flags.FLAGS


def _check_flags():
  if not FLAGS.runs:
    common.fail('--runs: give one or more run logdirs (comma-separated), e.g. --runs=runs/a3c,runs/sa3c')
  if FLAGS.steps < 1:
    common.fail(f'--steps={FLAGS.steps}: must be an integer >= 1 (thesis 700)')
  if FLAGS.value_samples < 2:
    common.fail(f'--value_samples={FLAGS.value_samples}: must be >= 2 (a sample variance; thesis 5)')
  if FLAGS.action_samples < 1:
    common.fail(f'--action_samples={FLAGS.action_samples}: must be >= 1 (thesis 50)')
  if FLAGS.seed < -1:
    common.fail(f'--seed={FLAGS.seed}: must be >= 0 (or -1: the first unseen test seed)')
  common.check_run_dirs(FLAGS.runs, config_lib.check_trained_run)


def main(argv):
  common.start(argv)
  _check_flags()
  from rlcv_tf.core import quiet  # pylint: disable=g-import-not-at-top
  quiet.import_tensorflow()
  from rlcv_tf.envs import base  # pylint: disable=g-import-not-at-top
  from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
  from rlcv_tf.stochastic_ac import analysis  # pylint: disable=g-import-not-at-top
  from rlcv_tf.stochastic_ac import evaluation  # pylint: disable=g-import-not-at-top
  out = FLAGS.out or os.path.join(FLAGS.runs[0], 'analysis')
  try:
    for d in FLAGS.runs:
      registry.check_available(config_lib.StochasticACConfig.load(d).env)
    result = analysis.analyse_runs(FLAGS.runs, seed=None if FLAGS.seed < 0 else FLAGS.seed, steps=FLAGS.steps,
                                   value_samples=FLAGS.value_samples, action_samples=FLAGS.action_samples,
                                   noise_seed=FLAGS.noise_seed, print_fn=lambda s: print(s, flush=True))
    figures = analysis.plot_figures(result, out)
  except (evaluation.NoCheckpointError, base.EnvironmentUnavailableError, ImportError, ValueError) as e:
    common.fail(f'--runs: {e}' if isinstance(e, evaluation.NoCheckpointError) else str(e))
  path = analysis.write_result(result, out)
  print(f'{analysis.PREFIX}wrote {", ".join(figures)} and {path}', flush=True)


if __name__ == '__main__':
  app.run(main)
