r"""Chapter 5, Table 5.1: scores a finished run with the inception score, the held-out ELBO and each block's KL.

  python -m launchers.crvae_eval --run=runs/crvae/synth_birds_small32_synthbirds_crvaegan
  python -m launchers.crvae_eval --run=RUN/stage2 --stage=2          # a Stage-2 run (128 px / 224 px)
  python -m launchers.crvae_eval --run=MNIST_RUN --nll_samples=10000  # Table 5.B.1's test NLL at K = 10,000

The data set's classifier (CUB: 200 species; CelebA: identities of identity_CelebA.txt; the stand-ins: their
labels; LSUN: none, the thesis used a user study) is trained on first use and saved (default
<parent of the run>/classifiers/<dataset>_<R>px.keras), so every model under one parent is scored by the same net.
Writes the numbers into <run>/eval.json and prints them. See rlcv_tf/crvae/run_eval.py.
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags  # pylint: disable=g-import-not-at-top

from launchers import common  # pylint: disable=g-import-not-at-top

flags.DEFINE_string('run', '', 'The logdir of a finished run of python -m launchers.crvae.')
flags.DEFINE_integer('stage', 1, '1: score the Stage-1 model in --run; 2: --run is a Stage-2 logdir (or a Stage-1 '
                     'run holding one in stage2/): score its refined images.')
flags.DEFINE_integer('is_samples', 50_000, 'Generated images for the inception score (the thesis does not state '
                     'the count; spec §8-A34 proposes 50,000; 1,000 for quick looks).')
flags.DEFINE_integer('is_splits', 10, 'Splits of the samples; the IS is reported as mean +- std over them.')
flags.DEFINE_integer('num_eval_images', 1000, 'Held-out images for the ELBO, the KL per block and the '
                     'reconstruction error (the val split; MNIST: the fixed binary test set).')
flags.DEFINE_integer('elbo_samples', 1, 'Draws of z ~ q(z|x) per held-out image for E_q log p(x|z).')
flags.DEFINE_float('elbo_sigma', 0.0, 'RGB models: pixel sigma of p(x|z) in the ELBO; 0 = from the model\'s KL '
                   'weight alpha2 (alpha2 * C*H*W = 2 sigma^2). Give one value to compare models on one scale.')
flags.DEFINE_integer('nll_samples', 0, 'MNIST runs: importance samples per test digit for the test NLL (thesis: '
                     '10,000); 0 = skip.')
flags.DEFINE_string('classifier', '', 'The .keras classifier to score with; trained and saved there when missing. '
                    'Default <parent of the run>/classifiers/<dataset>_<R>px.keras.')
flags.DEFINE_bool('retrain_classifier', False, 'Train the classifier again even if --classifier exists.')
flags.DEFINE_integer('classifier_epochs', 10, 'Epochs of classifier training.')
flags.DEFINE_integer('classifier_images', 0, 'Training-split images the classifier learns from; 0 = all (stand-ins: '
                     'the 10,000 generated training images).')
flags.DEFINE_integer('classifier_width', 16, 'Width of the VGG11-A classifier\'s first conv (64 = VGG11).')
flags.DEFINE_integer('batch_size', 100, 'Images generated and classified at a time.')
flags.DEFINE_integer('seed', 0, 'Seed of the latent draws and of the classifier training.')
flags.DEFINE_string('data_dir', '', 'Where the run\'s data set is; default: the --data_dir the run trained with.')

FLAGS = flags.FLAGS


def main(argv):
  common.start(argv)
  if not FLAGS.run:
    common.fail('--run is required: the logdir of a finished run of python -m launchers.crvae')
  if FLAGS.stage not in (1, 2):
    common.fail(f'--stage={FLAGS.stage}: valid values: 1 (a Stage-1 run), 2 (a Stage-2 run)')
  if not os.path.exists(os.path.join(os.path.expanduser(FLAGS.run), 'config.json')):
    common.fail(f'--run={FLAGS.run}: no training run there (expected config.json, written by python -m '
                'launchers.crvae)')
  from rlcv_tf.crvae import run_eval  # pylint: disable=g-import-not-at-top  (loads TensorFlow)
  ecfg = run_eval.EvalConfig(
      is_samples=FLAGS.is_samples, is_splits=FLAGS.is_splits, num_eval_images=FLAGS.num_eval_images,
      elbo_samples=FLAGS.elbo_samples, elbo_sigma=FLAGS.elbo_sigma, nll_samples=FLAGS.nll_samples,
      classifier_path=os.path.expanduser(FLAGS.classifier), retrain_classifier=FLAGS.retrain_classifier,
      classifier_epochs=FLAGS.classifier_epochs, classifier_width=FLAGS.classifier_width,
      classifier_images=FLAGS.classifier_images,
      batch_size=FLAGS.batch_size, seed=FLAGS.seed, data_dir=FLAGS.data_dir)
  try:
    ecfg.validate()
  except ValueError as e:
    field, _, problem = str(e).partition(': ')
    flag = {'classifier_path': 'classifier'}.get(field, field)
    common.fail(f'--{flag}={getattr(FLAGS, flag, "?")}: {problem}')
  from rlcv_tf.datasets import pipeline  # pylint: disable=g-import-not-at-top
  try:
    run_eval.evaluate_run(FLAGS.run, ecfg, stage=FLAGS.stage, print_fn=lambda s: print(s, flush=True))
  except (run_eval.RunError, pipeline.DatasetError, FileNotFoundError) as e:
    common.fail(str(e))


if __name__ == '__main__':
  app.run(main)
