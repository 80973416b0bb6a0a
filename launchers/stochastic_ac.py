r"""Chapter 2: stochastic-activation actor-critic (A3C-LSTM, SA3C/FSA3C/HPA3C, NoisyNet, dropout units; ACER/SACER;
DDPG/SDDPG/PN-DDPG) on ALE, Box2D and the classic-control stand-ins. The model picks the algorithm.

  python -m launchers.stochastic_ac          # SA3C on the cartpole_masked stand-in: learns in minutes, checked
  python -m launchers.stochastic_ac --env=atari_seaquest --model=sa3c          # laptop-sized Atari run
  python -m launchers.stochastic_ac --env=atari_seaquest --model=sa3c --preset=thesis   # App. 2.E scale
  python -m launchers.stochastic_ac --env=car_racing --model=sacer               # ACER family
  python -m launchers.stochastic_ac --env=bipedal_walker --model=sddpg           # DDPG family
  python -m launchers.stochastic_ac_eval --runs=DIR1,DIR2,DIR3                   # the 3-run x 10-seed protocol
  python -m launchers.stochastic_ac_analysis --runs=A3C_DIR,SA3C_DIR            # Figs. 2.5 / 2.6 analogues
  tensorboard --logdir=DIR

Re-running with the same --logdir resumes (e.g. with a larger --total_frames). Writes DIR/config.json,
checkpoints, TensorBoard events, DIR/best (the best-validated weights), DIR/snapshots (weights for the analysis),
DIR/returns.png and DIR/saved_model (signature `serve`).

The flagless run is the CPU stand-in (CartPole-v1 seeing only position and angle, actions held 2-4 physics steps;
not a thesis task) under its learning check's preset: about a minute on 2 idle cores, ending with its returns against
uniformly random play (`rlcv_tf.stochastic_ac.learning_check`). Atari runs at laptop scale show the pipeline, not
learning: 20,000 agent steps is 1/10,000 of a thesis run.
"""

import dataclasses
import os
import types

# TensorFlow's C++ start-up banner is noise on the console; warnings and errors still show.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')

from absl import app
from absl import flags

from launchers import common

from rlcv_tf.stochastic_ac import config as config_lib

_D = config_lib.StochasticACConfig()

flags.DEFINE_string('env', 'cartpole_masked', 'Chapter 2 environment: atari_<game> (seaquest, beam_rider, '
                    'ms_pacman, boxing, breakout, qbert, freeway), car_racing, bipedal_walker, cartpole_masked, '
                    'pendulum (cartpole_masked and pendulum are CPU stand-ins, not thesis tasks).')
flags.DEFINE_string('model', 'sa3c', 'A3C family: ' + ', '.join(config_lib.A3C_MODELS) + '; ACER family: '
                    + ', '.join(config_lib.ACER_MODELS) + '; DDPG family: ' + ', '.join(config_lib.DDPG_MODELS) + '.')
flags.DEFINE_string('preset', '', 'laptop (A3C family: 8 envs, 20,000 agent steps), thesis (App. 2.E; A3C family: '
                    '64 envs x 150K iterations, actor processes) or a learning check\'s settings (cartpole_check for '
                    'the A3C family, pendulum_check for the DDPG family). Empty: the check\'s preset on its stand-in '
                    '(cartpole_masked, pendulum), laptop elsewhere. The game\'s App. 2.E values apply under every '
                    'preset; explicit flags win.')
flags.DEFINE_string('logdir', '', 'Where the run goes; an existing run there is resumed. Default: '
                    'runs/stochastic_ac/<env>_<model>.')
flags.DEFINE_integer('total_frames', _D.total_frames, 'Agent steps to train for (actions applied; 2-4 emulator '
                     'frames each on Atari).')
flags.DEFINE_integer('num_envs', _D.num_envs, 'Environments stepped in lock-step (thesis: 64; CarRacing 8).')
flags.DEFINE_integer('unroll_length', _D.unroll_length, 'Rollout length t_max (thesis 20, Freeway 30).')
flags.DEFINE_float('learning_rate', _D.learning_rate, 'Adam learning rate (thesis 5e-4).')
flags.DEFINE_float('adam_epsilon', _D.adam_epsilon, 'Adam epsilon (thesis 1e-3).')
flags.DEFINE_float('grad_clip_norm', _D.grad_clip_norm, 'Global gradient-norm clip (thesis 40).')
flags.DEFINE_float('gamma', _D.gamma, 'Discount (thesis 0.95).')
flags.DEFINE_float('gae_lambda', _D.gae_lambda, 'GAE trace decay tau (thesis 1.0, Freeway 0.92).')
flags.DEFINE_float('value_weight', _D.value_weight, 'Value-loss weight lambda_v (thesis 5, Freeway 0.5).')
flags.DEFINE_float('entropy_weight', _D.entropy_weight, 'Entropy weight beta (thesis 0.01).')
flags.DEFINE_float('kl_weight', _D.kl_weight, 'HPA3C KL weight psi (thesis 1e-4).')
flags.DEFINE_string('reward_clip', '', 'Clip rewards to +-this in the learner; "none" leaves them unclipped; empty: '
                    'the game\'s value (1, Freeway none).')
flags.DEFINE_float('log_var', _D.log_var, 'log sigma^2 of the stochastic units (thesis -6 for Seaquest, MsPacman, '
                   'Breakout; -4 for the others; SDDPG -5); default: the game\'s value.')
flags.DEFINE_integer('lstm_units', _D.lstm_units, 'LSTM width (thesis 512).')
flags.DEFINE_integer('fc_units', _D.fc_units, 'Width of each of the two FC channels (thesis 512).')
flags.DEFINE_string('activation_noise', _D.activation_noise, 'Stochastic units\' noise: per_step (thesis) or '
                    'per_rollout (Table 2.5).')
flags.DEFINE_string('weight_noise', _D.weight_noise, 'NoisyNet weight noise: per_rollout (thesis) or per_step.')
flags.DEFINE_string('eval_mode', _D.eval_mode, 'Validation/evaluation mode: map, vote, mean_prob or sample; '
                    'empty: map for a3c and NoisyNet, vote for the stochastic-activation models.')
flags.DEFINE_integer('num_samples', _D.num_samples, 'Samples N of vote / mean_prob (thesis 5, Freeway 1).')
flags.DEFINE_integer('validate_every_frames', _D.validate_every_frames, 'Validate on held-out seeds every this many '
                     'agent steps and keep the best weights (0: never).')
flags.DEFINE_integer('validation_episodes', _D.validation_episodes, 'Held-out episodes per validation.')
flags.DEFINE_integer('eval_max_steps', _D.eval_max_steps, 'Cut validation episodes after this many agent steps (0: '
                     'play to the end; ALE caps episodes at 108,000 emulator frames).')
flags.DEFINE_list('snapshot_iterations', [], 'A3C family: iterations whose weights are kept in <logdir>/snapshots '
                  'for launchers.stochastic_ac_analysis (Figs. 2.5 / 2.6); empty: 1 and a quarter, half and all '
                  'of the run (thesis preset: 100,2000,6000,75000,150000).')
flags.DEFINE_string('runtime', _D.runtime, 'inline (environments in this process) or actors (actor processes).')
flags.DEFINE_integer('envs_per_actor', _D.envs_per_actor, '--runtime=actors: environments per actor process.')
flags.DEFINE_string('backend', _D.backend, '--runtime=actors: local or ray.')
flags.DEFINE_string('ray_address', _D.ray_address, '--backend=ray: HOST:PORT of the Ray head.')
flags.DEFINE_integer('seed', _D.seed, 'Random seed (network, noise, actions, environments).')
flags.DEFINE_float('checkpoint_interval_s', _D.checkpoint_interval_s, 'Seconds between checkpoints (and one at '
                   'the end, and on SIGINT/SIGTERM).')
flags.DEFINE_float('log_interval_s', _D.log_interval_s, 'Seconds between progress lines.')

FLAGS = flags.FLAGS

# Flags that map one to one onto config fields (given explicitly, they override the game's and the preset's).
_FIELD_FLAGS = ('total_frames', 'num_envs', 'unroll_length', 'learning_rate', 'adam_epsilon', 'grad_clip_norm',
                'gamma', 'gae_lambda', 'value_weight', 'entropy_weight', 'kl_weight', 'log_var', 'lstm_units',
                'fc_units', 'activation_noise', 'weight_noise', 'eval_mode', 'num_samples', 'validate_every_frames',
                'validation_episodes', 'eval_max_steps', 'runtime', 'envs_per_actor', 'backend', 'ray_address',
                'seed', 'checkpoint_interval_s', 'log_interval_s')


class FlagError(ValueError):
  pass


def _field_error(e: ValueError, cfg) -> FlagError:
  """'field: problem' from a config's validate() as the flag's one line."""
  field, _, problem = str(e).partition(': ')
  value = FLAGS[field].value if field in FLAGS else getattr(cfg, field, '?')
  if isinstance(value, (list, tuple)):
    value = ','.join(str(v) for v in value)
  return FlagError(f'--{field}={value}: {problem}')


def _explicit_overrides():
  overrides = {name: FLAGS[name].value for name in _FIELD_FLAGS if FLAGS[name].present}
  if FLAGS['reward_clip'].present and FLAGS.reward_clip != '':
    text = FLAGS.reward_clip.strip().lower()
    if text == 'none':
      overrides['reward_clip'] = None
    else:
      try:
        overrides['reward_clip'] = float(text)
      except ValueError:
        raise FlagError(f'--reward_clip={FLAGS.reward_clip}: expected a positive number or none') from None
  if FLAGS['snapshot_iterations'].present:
    try:
      overrides['snapshot_iterations'] = tuple(int(v) for v in FLAGS.snapshot_iterations)
    except ValueError:
      raise FlagError(f'--snapshot_iterations={",".join(FLAGS.snapshot_iterations)}: expected comma-separated '
                      'integers >= 1, e.g. 1,50,100') from None
  return overrides


def config_from_flags():
  """(config.StochasticACConfig, the off-policy trainer's config or None) from the flags; FlagError names the flag
  and its valid values. The off-policy config gets the environment, model and preset and only the settings given
  explicitly, so its own family's defaults and presets apply (ACER: App. 2.E's CarRacing values; DDPG: batch 128,
  gamma 0.99, ...). No TensorFlow."""
  problem = common.env_error(FLAGS.env, chapter=2)
  if problem:
    raise FlagError(problem)
  if FLAGS.model not in config_lib.MODELS:
    raise FlagError(f'--model={FLAGS.model}: unknown model; valid values: {", ".join(config_lib.MODELS)}')
  family = config_lib.algorithm(FLAGS.model)
  offpolicy = None
  if family == 'a3c':
    presets = tuple(config_lib.PRESETS)
  else:
    from rlcv_tf.stochastic_ac import offpolicy_training as offpolicy  # pylint: disable=g-import-not-at-top
    presets = tuple(offpolicy.PRESETS[family])
  preset = FLAGS.preset or config_lib.default_preset(FLAGS.env, FLAGS.model)
  if preset not in presets:
    raise FlagError(f'--preset={FLAGS.preset}: unknown preset for the {family.upper()} family; valid values: '
                    f'{", ".join(presets)}')
  overrides = _explicit_overrides()
  # The shared settings (env, model vs action space, budgets, sizes, noise) are validated here for every family.
  cfg = config_lib.make_config(FLAGS.env, FLAGS.model, preset if family == 'a3c' else 'laptop', **overrides)
  try:
    cfg.validate()
  except ValueError as e:
    raise _field_error(e, cfg) from None
  if offpolicy is None:
    return cfg, None
  names = {f.name for f in dataclasses.fields(offpolicy.ACERConfig if family == 'acer' else offpolicy.DDPGConfig)}
  ignored = sorted(k for k in overrides if k not in names)
  if ignored:
    raise FlagError(f'--{ignored[0]}: not a setting of the {family.upper()} family (its settings: see '
                    'rlcv_tf/stochastic_ac/offpolicy_training.py)')
  explicit = types.SimpleNamespace(env=FLAGS.env, model=FLAGS.model, preset=preset, **overrides)
  off_cfg = offpolicy.from_run_config(explicit)
  try:
    off_cfg.validate()
  except ValueError as e:
    raise _field_error(e, off_cfg) from None
  return cfg, off_cfg


def _thesis_line(cfg, off_cfg) -> str:
  if off_cfg is None:
    return config_lib.thesis_scale_command(cfg)
  from rlcv_tf.stochastic_ac import offpolicy_training as offpolicy  # pylint: disable=g-import-not-at-top
  thesis = offpolicy.make_config(cfg.env, cfg.model, 'thesis')
  return (f'python -m launchers.stochastic_ac --env={cfg.env} --model={cfg.model} --preset=thesis   # '
          f'{thesis.num_envs} envs, {thesis.total_frames:,} agent steps')


def main(argv):
  common.start(argv)
  try:
    cfg, off_cfg = config_from_flags()
  except FlagError as e:
    common.fail(str(e))
  logdir = FLAGS.logdir or os.path.join('runs', 'stochastic_ac', f'{cfg.env}_{cfg.model}')
  from rlcv_tf.core import runs  # pylint: disable=g-import-not-at-top
  from rlcv_tf.envs import base  # pylint: disable=g-import-not-at-top
  from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
  try:
    config_lib.check_resume(cfg, logdir)   # reads only: a refused run leaves the logdir as it was
    if off_cfg is not None:
      from rlcv_tf.stochastic_ac import offpolicy_training as offpolicy  # pylint: disable=g-import-not-at-top
      offpolicy.check_resume(off_cfg, logdir)
    registry.check_available(cfg.env)   # before TensorFlow loads: a missing engine fails in a second
  except (base.EnvironmentUnavailableError, runs.ResumeMismatchError) as e:
    common.fail(str(e))
  run_cfg = off_cfg or cfg
  family = {'a3c': 'A3C family, synchronous on-policy', 'acer': 'ACER family, replay',
            'ddpg': 'DDPG family, replay'}[cfg.algorithm]
  print(f'[stochastic_ac] {cfg.env} / {cfg.model} ({family}), preset {run_cfg.preset}: {run_cfg.total_frames:,} '
        f'agent steps, {run_cfg.num_envs} envs ({run_cfg.runtime}), logdir {logdir}', flush=True)
  if run_cfg.preset != 'thesis' and cfg.env not in ('cartpole_masked', 'pendulum'):   # stand-ins: no thesis scale
    print(f'[stochastic_ac] thesis scale: {_thesis_line(cfg, off_cfg)}', flush=True)
  if run_cfg.preset == 'laptop' and cfg.env.startswith('atari_') and off_cfg is None:
    print('[stochastic_ac] note: a laptop run shows the pipeline, not learning: Atari policies stay near uniform at '
          'this scale (measured: SA3C on Seaquest, entropy ln 18 = 2.890 and random-level returns over 27,000 agent '
          'steps); a run that learns in minutes: python -m launchers.stochastic_ac', flush=True)
  from rlcv_tf.core import quiet  # pylint: disable=g-import-not-at-top
  quiet.import_tensorflow()   # without its C++ start-up noise
  print_fn = lambda s: print(s, flush=True)

  def train():
    if off_cfg is not None:
      offpolicy.train(off_cfg, logdir, print_fn=print_fn)
    else:
      from rlcv_tf.stochastic_ac import training  # pylint: disable=g-import-not-at-top
      training.train(cfg, logdir, print_fn=print_fn)

  common.run_to_the_end(train, user_errors=(base.EnvironmentUnavailableError, runs.ResumeMismatchError))


if __name__ == '__main__':
  app.run(main)
