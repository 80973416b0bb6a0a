r"""Seed 001: VAE representations guided by policy gradients (a pre-trained VAE + PPO, fixed / adapt / joint).

  python -m launchers.vae_pg                      # pre-train + PPO adapt on the 21x21 stand-in, checked (~3 min)
  python -m launchers.vae_pg --stage=pretrain --logdir=runs/vae_pg/pre         # VAE pre-training (Table 1)
  python -m launchers.vae_pg --stage=rl --variant=fixed --pretrain_logdir=runs/vae_pg/pre --logdir=runs/vae_pg/fixed
  python -m launchers.vae_pg --stage=rl --variant=joint --kappa=20 --logdir=runs/vae_pg/joint
  python -m launchers.vae_pg --preset=paper --env=atari_breakout_seed001 ...   # the paper's scale (GPU-days)
  tensorboard --logdir=runs/vae_pg

Stages: `pretrain` collects frames (or reads --frames_dir, `python -m launchers.atari_frames`) and trains the VAE;
`rl` runs PPO (fixed and adapt need --pretrain_logdir; joint starts from random weights); `all` (the default) does
both, the pre-training into <logdir>/pretrain. Re-running with the same --logdir resumes. Every run writes
config.json, checkpoints (also on Ctrl-C / SIGTERM), TensorBoard events, PNGs, eval.json or learning_check.json and
a SavedModel.

The flagless run is the `check` preset on the CPU stand-in (mini_breakout_tiny, 21x21 with a 1-pixel ball: not
Atari): 2,000 tracker frames and 10 epochs of VAE pre-training, then 200,000 agent steps of PPO adapt, ending with
its learning check against uniformly random play (the best 100 consecutive episodes at >= 2.5x; measured
2.8-8.1x over the runs that learned, 1.3-2.0x over those that did not).
`--preset=small` (mini_breakout 42x42) does not learn within 300,000 steps on this machine (the README).
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')

from absl import app
from absl import flags

from launchers import common

from rlcv_tf.vae_pg import presets

_D = presets.CHECK

flags.DEFINE_enum('stage', 'all', ('all',) + presets.STAGES, 'pretrain: the VAE; rl: PPO; all: both (the '
                  'pre-training into <logdir>/pretrain).')
flags.DEFINE_string('variant', 'adapt', 'fixed (pre-trained encoder frozen), adapt (pre-trained encoder trained by '
                    'PPO), joint (random init, kappa L_PPO + L_VAE).')
flags.DEFINE_string('preset', 'check', 'paper (Tables 1-3, ALE Breakout), small (mini_breakout 42x42), check '
                    '(mini_breakout_tiny 21x21 with its learning check), tiny (tests).')
flags.DEFINE_string('env', '', 'Environment (default: the preset\'s): atari_breakout_seed001, mini_breakout, '
                    'mini_breakout_tiny, mini_breakout_84.')
flags.DEFINE_float('kappa', _D.kappa, 'Weight of the PPO loss in joint training (paper 20; searched 1, 10, 20).')
flags.DEFINE_string('kl_mode', _D.kl_mode, 'early_stop (stop the iteration\'s updates once delta_MB > '
                    'delta_target) or revert (Algorithm 1 lines 11-13: undo the iteration).')
flags.DEFINE_integer('total_steps', None, 'Agent steps over all environments (default: the preset\'s; check '
                     '200,000, small 200,000, paper 10^7).')
flags.DEFINE_integer('num_actors', None, 'Actor processes (num_envs spread over them); 0: environments in the '
                     'learner\'s process.')
flags.DEFINE_integer('num_envs', None, 'Environments (paper 16).')
flags.DEFINE_string('pretrain_logdir', '', 'A finished --stage=pretrain run (fixed and adapt).')
flags.DEFINE_string('frames_dir', '', 'Frames for pre-training (`python -m launchers.atari_frames`); empty: '
                    'collect them with the scripted ball tracker.')
flags.DEFINE_integer('image_size', None, 'Frame size (default: the preset\'s).')
flags.DEFINE_float('learning_rate', None, 'PPO Adam learning rate (paper 3e-4).')
flags.DEFINE_integer('pretrain_epochs', None, 'VAE pre-training epochs (paper 100).')
flags.DEFINE_integer('seed', 0, 'Seed of everything random.')
flags.DEFINE_string('logdir', '', 'Where the run goes (resumed if it exists). Default: runs/vae_pg/<stage>_<variant>.')

FLAGS = flags.FLAGS


def config_from_flags() -> presets.VaePgConfig:
  """The run's config from the flags; ValueError with the flag's one line."""
  if FLAGS.preset not in presets.PRESETS:
    raise ValueError(f'--preset={FLAGS.preset}: unknown preset; valid values: {", ".join(presets.PRESETS)}')
  if FLAGS.variant not in presets.VARIANTS:
    raise ValueError(f'--variant={FLAGS.variant}: unknown variant; valid values: {", ".join(presets.VARIANTS)}')
  if FLAGS.kl_mode not in presets.KL_MODES:
    raise ValueError(f'--kl_mode={FLAGS.kl_mode}: unknown mode; valid values: {", ".join(presets.KL_MODES)}')
  if not FLAGS.kappa > 0:
    raise ValueError(f'--kappa={FLAGS.kappa}: must be > 0 (it multiplies the PPO loss; the paper uses 20)')
  overrides = {'variant': FLAGS.variant, 'kappa': FLAGS.kappa, 'kl_mode': FLAGS.kl_mode, 'seed': FLAGS.seed}
  if FLAGS.env:
    from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top  (light: no engine)
    valid = [n for n in registry.names(chapter=0) if 'breakout' in n]
    if FLAGS.env not in valid:
      raise ValueError(f'--env={FLAGS.env}: not a seed-001 environment; valid values: {", ".join(valid)}')
    overrides['env'] = FLAGS.env
  for name in ('total_steps', 'num_envs', 'image_size', 'learning_rate', 'pretrain_epochs'):
    if FLAGS[name].value is not None:
      overrides[name] = FLAGS[name].value
  if FLAGS.num_actors is not None:
    if FLAGS.num_actors < 0:
      raise ValueError(f'--num_actors={FLAGS.num_actors}: must be >= 0 (0: environments in the learner process)')
    if FLAGS.num_actors == 0:
      overrides['runtime'] = 'inline'
    else:
      envs = overrides.get('num_envs', presets.preset(FLAGS.preset).num_envs)
      overrides['runtime'] = 'actors'
      overrides['envs_per_actor'] = max(1, -(-envs // FLAGS.num_actors))
  try:
    return presets.preset(FLAGS.preset, **overrides)
  except ValueError as e:
    raise ValueError(common.flag_message(e)) from None


def check_inputs(cfg: presets.VaePgConfig, stage: str) -> None:
  """File checks before TensorFlow loads: --frames_dir has PNGs, --pretrain_logdir fits."""
  if stage in ('pretrain', 'all') and FLAGS.frames_dir:
    import glob  # pylint: disable=g-import-not-at-top
    if not os.path.isdir(FLAGS.frames_dir) or not glob.glob(os.path.join(FLAGS.frames_dir, '**', '*.png'),
                                                             recursive=True):
      raise ValueError(f'--frames_dir={FLAGS.frames_dir}: no PNG frames there; collect some with python -m '
                       'launchers.atari_frames --output_dir=DIR')
  if stage == 'rl' and cfg.variant in ('fixed', 'adapt'):
    if not FLAGS.pretrain_logdir:
      raise ValueError(f'--variant={cfg.variant} starts from a pre-trained VAE: pass --pretrain_logdir=DIR of a '
                       '--stage=pretrain run (or --stage=all, or --variant=joint)')
    presets.check_pretrain_logdir(cfg, FLAGS.pretrain_logdir)


def main(argv):
  common.start(argv)
  try:
    cfg = config_from_flags()
    check_inputs(cfg, FLAGS.stage)
  except ValueError as e:
    common.fail(str(e))
  logdir = FLAGS.logdir or os.path.join('runs', 'vae_pg', f'{FLAGS.stage}_{cfg.variant}')
  from rlcv_tf.core import runs  # pylint: disable=g-import-not-at-top
  from rlcv_tf.envs import base  # pylint: disable=g-import-not-at-top
  from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
  try:
    registry.check_available(cfg.env)
  except base.EnvironmentUnavailableError as e:
    common.fail(str(e))
  from rlcv_tf.vae_pg import training  # pylint: disable=g-import-not-at-top

  def run():
    if FLAGS.stage == 'pretrain':
      training.pretrain(cfg, logdir, FLAGS.frames_dir or None)
      return
    pretrain_logdir = FLAGS.pretrain_logdir or None
    if FLAGS.stage == 'all' and cfg.variant != 'joint':
      pretrain_logdir = os.path.join(logdir, 'pretrain')
      if not os.path.exists(os.path.join(pretrain_logdir, training.VAE_WEIGHTS)):
        training.pretrain(cfg, pretrain_logdir, FLAGS.frames_dir or None)
    training.train_rl(cfg, logdir, pretrain_logdir)

  common.run_to_the_end(run, user_errors=(runs.ResumeMismatchError, ValueError))


if __name__ == '__main__':
  app.run(main)
