r"""Chapter 4: agent-centric multi-agent RL (CNN / ACNN) with V-trace, SEED-style, on Google Research Football.

  python -m launchers.marl --env=grf_5v5 --model=acnn                # laptop-sized default run
  python -m launchers.marl --env=grf_5v5 --model=acnn --logdir=DIR --total_frames=4000   # resume DIR further
  tensorboard --logdir=DIR
  python -m launchers.marl --model=cnn --aux=predict                     # + agent-centric auxiliary loss (Eq. 4.4)
  python -m launchers.marl --model=acnn --record_dir=replays/acnn        # also save observation replays
  python -m launchers.marl --model=acnn --init_from=runs/pretrain/acnn   # init from launchers/marl_pretrain.py
  python -m launchers.marl --model=pracnn --progressive_from=runs/pretrain/acnn   # progressive (Fig. 4.1c)
  # Self-play (App. 4.C): make self-play AIs with 2 / 1 right players driven by the trained policy, then train
  # against them frozen, one drawn per episode:
  python -m launchers.marl --model=cnn --opponent=selfplay_mixed --selfplay_agents=2 --logdir=runs/cnn_v1
  python -m launchers.marl --model=cnn --opponent=selfplay_mixed --selfplay_agents=1 --logdir=runs/cnn_v2
  python -m launchers.marl --model=acnn --opponent=selfplay_fixed --opponent_agents=runs/cnn_v1,runs/cnn_v2

Writes checkpoints, TensorBoard events and a SavedModel (DIR/saved_model) with a serving signature.
"""

import dataclasses
import os

# TensorFlow's C++ start-up banner is noise on the console; warnings and errors still show.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')

from absl import app
from absl import flags

from launchers import common

from rlcv_tf.marl import config as config_lib

_D = config_lib.MarlConfig()

flags.DEFINE_string('env', 'grf_5v5', 'Environment name (see rlcv_tf.envs.registry); grf_* need gfootball.')
flags.DEFINE_string('model', 'acnn', 'Network: cnn (independent agents), acnn (agent-centric attention, Eq. 4.3), '
                    'or the progressive prcnn / pracnn (Fig. 4.1c; need --progressive_from).')
flags.DEFINE_string('aux', _D.aux, 'Auxiliary objective: none, predict (each agent predicts its own next row and '
                    'column, Eq. 4.4) or observe_all (occupancy of all home players, Sec. 4.4.5).')
flags.DEFINE_float('aux_coef', _D.aux_coef, 'Weight of the auxiliary loss (thesis sweep 0.0001, 0.0005).')
flags.DEFINE_integer('aux_max_jump_px', _D.aux_max_jump_px, 'aux=predict: skip targets more than this many '
                     'pixels from the agent\'s position (active-player switch, kick-off reset); 0 keeps all.')
flags.DEFINE_bool('observe_all_opponents', _D.observe_all_opponents, 'observe_all masks also cover the opponents.')
flags.DEFINE_string('init_from', '', 'Pre-training logdir or checkpoint (launchers/marl_pretrain.py): initialise '
                    'torso and attention (and matching prediction heads) of a new run from it.')
flags.DEFINE_string('progressive_from', '', 'Pre-training logdir or checkpoint: the frozen column of '
                    '--model=prcnn / pracnn.')
flags.DEFINE_string('record_dir', '', 'Also save observation replays (no actions) of the actors\' episodes here, '
                    'for launchers/marl_pretrain.py.')
flags.DEFINE_integer('record_every', _D.record_every, 'With --record_dir: record every k-th episode (counted as '
                     'they start, over all actors).')
flags.DEFINE_enum('opponent', _D.opponent, config_lib.OPPONENTS, 'Who plays the right team: builtin (the '
                  'built-in AI), selfplay_mixed (--selfplay_agents right field players driven by the trained '
                  'policy and trained on, the rest built-in; App. 4.C) or selfplay_fixed (frozen '
                  '--opponent_agents, one per episode). Self-play controls 4 home field players unless '
                  '--num_agents says otherwise.')
flags.DEFINE_integer('selfplay_agents', _D.selfplay_agents, 'selfplay_mixed: right field players driven by the '
                     'trained policy (thesis CNN-v1: 2, CNN-v2: 1).')
flags.DEFINE_list('opponent_agents', [], 'selfplay_fixed: frozen opponents, comma-separated run logdirs, '
                  'SavedModels or checkpoints (e.g. of selfplay_mixed runs).')
flags.DEFINE_string('stack_channels', '', 'Torso conv stacks as CHANNELSxBLOCKS,..., e.g. 16x2,32x2,32x2,32x2 '
                    '(the default, SEED RL / thesis).')
flags.DEFINE_integer('feature_dim', _D.feature_dim, 'Width of the torso feature z and of the attention (thesis: '
                     '256).')
flags.DEFINE_integer('num_heads', _D.num_heads, 'Attention heads of ACNN (thesis: 2); must divide --feature_dim.')
flags.DEFINE_float('lambda', _D.lambda_, 'V-trace lambda (1 = plain V-trace, as SEED RL and the thesis).')
flags.DEFINE_float('clip_rho_threshold', _D.clip_rho_threshold, 'V-trace rho-bar of the value targets.')
flags.DEFINE_float('clip_c_threshold', _D.clip_c_threshold, 'V-trace c-bar of the traces.')
flags.DEFINE_float('clip_pg_rho_threshold', _D.clip_pg_rho_threshold, 'V-trace rho-bar of the policy-gradient '
                   'advantages.')
flags.DEFINE_integer('max_queued_unrolls', _D.max_queued_unrolls, 'Finished unrolls waiting for the learner; when '
                     'full, inference and actors wait (bounds the policy lag). 0: 2 x --batch_size.')
flags.DEFINE_float('actor_timeout_s', _D.actor_timeout_s, 'An actor that has been sent actions and has not answered '
                   'for this many seconds is killed and restarted (a hung engine); 0 never times an actor out. '
                   'Environment builds and first steps are not timed by it.')
flags.DEFINE_integer('max_actor_restarts', _D.max_actor_restarts, 'Actor restarts allowed over the whole run (all '
                     'actors together); one more failure stops the run with that actor\'s own error. 0: stop at the '
                     'first failure.')
flags.DEFINE_integer('total_frames', _D.total_frames, 'Environment steps to train for (B*T per update).')
flags.DEFINE_integer('num_actors', _D.num_actors, 'Actor processes, one environment each.')
flags.DEFINE_enum('runtime', _D.runtime, config_lib.RUNTIMES, 'actors: one process per environment and central '
                  'inference in a thread (SEED RL); inline: this process steps --num_envs environments, runs one '
                  'batched inference, and trains every --batch_size unrolls (no actor processes; two runs with '
                  'the same --seed give the same losses).')
flags.DEFINE_integer('num_envs', _D.num_envs, '--runtime=inline: environments stepped in process (0: '
                     '--num_actors).')
flags.DEFINE_enum('backend', _D.backend, config_lib.BACKENDS, 'Where actor processes run: local (this machine) or '
                  'ray (one Ray actor per actor, spread over a Ray cluster\'s nodes; they dial the learner over TCP '
                  'and inference stays here, batched over all of them). README: "Many machines (Ray)".')
flags.DEFINE_string('ray_address', _D.ray_address, '--backend=ray: HOST:PORT of the Ray head (`ray start --head '
                    '--port=PORT` on this machine); empty starts a private Ray on this machine (127.0.0.1).')
flags.DEFINE_string('learner_host', _D.learner_host, 'The address the learner listens on for actors. Actors on '
                    'other machines need one they can reach: this machine\'s IP on their network (or 0.0.0.0: every '
                    'interface).')
flags.DEFINE_integer('learner_port', _D.learner_port, 'The learner\'s TCP port for actors; 0 picks a free one (the '
                     'learner prints its address).')
flags.DEFINE_string('logdir', '', 'Where checkpoints, summaries and the SavedModel go; an existing run there '
                    'is resumed. Default: runs/marl/<env>_<model>.')
flags.DEFINE_integer('seed', _D.seed, 'Random seed (network init, action sampling, environments).')
flags.DEFINE_float('learning_rate', _D.learning_rate, 'Adam learning rate (thesis sweep 7e-5, 1.4e-4, 2.8e-4).')
flags.DEFINE_integer('batch_size', _D.batch_size, 'Unrolls per update (thesis: 120).')
flags.DEFINE_integer('micro_batches', _D.micro_batches, 'Split each update into this many micro-batches (gradient '
                     'accumulation: the same update with 1/k of the activation memory); must divide --batch_size.')
flags.DEFINE_enum('preset', 'cpu_small', list(config_lib.PRESETS), 'Defaults for the run\'s scale; explicit flags '
                  'win. cpu_small: a laptop run (20K frames, batch 4). thesis: App. 4.E (500M frames, batch 120 x '
                  '32, lr 1.4e-4, entropy 5e-4, value 0.5, gamma 0.99). gpu: thesis values on one GPU with 2 '
                  'micro-batches.')
flags.DEFINE_integer('unroll_length', _D.unroll_length, 'Unroll length T (thesis: 32).')
flags.DEFINE_float('entropy_cost', _D.entropy_cost, 'Entropy regularisation coefficient (thesis: 0.0005).')
flags.DEFINE_float('baseline_cost', _D.baseline_cost, 'Value loss coefficient (thesis: 0.5).')
flags.DEFINE_float('discounting', _D.discounting, 'Discount gamma (thesis: 0.99).')
flags.DEFINE_integer('num_agents', 0, 'Controlled agents; 0 = the environment default (grf_5v5: 5, goalie '
                     'included as in the thesis; 4 leaves the goalie to the built-in AI).')
flags.DEFINE_string('smm_size', '', 'Super-mini-map size HxW, e.g. 36x48; default: the environment default '
                    '(72x96 for GRF).')
flags.DEFINE_integer('episode_length', 0, 'Steps per game; 0 = the environment default (GRF 5v5: 3000).')
flags.DEFINE_string('strategy', _D.strategy, 'tf.distribute strategy of the learner: default, one_device, '
                    'mirrored or tpu.')
flags.DEFINE_string('tpu', _D.tpu, '--strategy=tpu: the TPU system (local on a Cloud TPU VM, or grpc://HOST:PORT).')
flags.DEFINE_enum('precision', _D.precision, config_lib.PRECISIONS, 'float32, or bfloat16 for the torso and '
                  'attention (heads, logits and V-trace stay float32; checkpoints are interchangeable).')
flags.DEFINE_bool('jit_compile', _D.jit_compile, 'XLA-compile inference (batches padded to powers of two) and the '
                  'loss gradients.')
flags.DEFINE_float('checkpoint_interval_s', _D.checkpoint_interval_s, 'Seconds between checkpoints (and one '
                   'at the end).')
flags.DEFINE_float('log_interval_s', _D.log_interval_s, 'Seconds between console progress lines.')

FLAGS = flags.FLAGS


class FlagError(ValueError):
  pass


def _parse_smm(text: str):
  try:
    h, w = (int(x) for x in text.lower().split('x'))
  except ValueError:
    raise FlagError(f'--smm_size={text}: expected HEIGHTxWIDTH with positive integers, e.g. 72x96 or 36x48')
  if h < 1 or w < 1:
    raise FlagError(f'--smm_size={text}: expected HEIGHTxWIDTH with positive integers, e.g. 72x96 or 36x48')
  return (h, w)


def config_from_flags() -> config_lib.MarlConfig:
  env_error = common.env_error(FLAGS.env, chapter=4)
  if env_error:
    raise FlagError(env_error)
  if FLAGS.model not in config_lib.MODELS:
    raise FlagError(f'--model={FLAGS.model}: unknown model; valid values: {", ".join(config_lib.MODELS)}')
  if FLAGS.aux not in config_lib.AUX_OBJECTIVES:
    raise FlagError(f'--aux={FLAGS.aux}: unknown objective; valid values: {", ".join(config_lib.AUX_OBJECTIVES)}')
  for flag in ('init_from', 'progressive_from'):
    path = getattr(FLAGS, flag)
    if path and not (os.path.isdir(path) or os.path.exists(path + '.index')):
      raise FlagError(f'--{flag}={path}: no such pre-training logdir or checkpoint')
  from rlcv_tf.marl import agents as agents_lib  # pylint: disable=g-import-not-at-top  (no TensorFlow until one loads)
  for path in FLAGS.opponent_agents:
    try:
      agents_lib.resolve_agent(path)
    except agents_lib.AgentLoadError as e:
      raise FlagError(f'--opponent_agents: {e}') from None
  arch = {}
  if FLAGS.stack_channels:
    try:
      arch['stack_channels'] = config_lib.parse_stacks(FLAGS.stack_channels)
    except ValueError as e:
      raise FlagError(f'--stack_channels={e}') from None
  env_kwargs = {}
  if FLAGS.num_agents < 0:
    raise FlagError(f'--num_agents={FLAGS.num_agents}: must be >= 1 (or 0 for the environment default)')
  if FLAGS.num_agents:
    env_kwargs['num_agents'] = FLAGS.num_agents
  if FLAGS.smm_size:
    env_kwargs['smm_hw'] = _parse_smm(FLAGS.smm_size)
  if FLAGS.episode_length < 0:
    raise FlagError(f'--episode_length={FLAGS.episode_length}: must be >= 1 (or 0 for the environment default)')
  if FLAGS.episode_length:
    env_kwargs['episode_length'] = FLAGS.episode_length
  cfg = config_lib.MarlConfig(
      env=FLAGS.env, model=FLAGS.model, env_kwargs=env_kwargs, total_frames=FLAGS.total_frames,
      num_actors=FLAGS.num_actors, runtime=FLAGS.runtime, num_envs=FLAGS.num_envs, batch_size=FLAGS.batch_size,
      backend=FLAGS.backend, ray_address=FLAGS.ray_address, learner_host=FLAGS.learner_host,
      learner_port=FLAGS.learner_port,
      unroll_length=FLAGS.unroll_length,
      learning_rate=FLAGS.learning_rate, entropy_cost=FLAGS.entropy_cost, baseline_cost=FLAGS.baseline_cost,
      discounting=FLAGS.discounting, seed=FLAGS.seed, strategy=FLAGS.strategy,
      checkpoint_interval_s=FLAGS.checkpoint_interval_s, log_interval_s=FLAGS.log_interval_s, aux=FLAGS.aux,
      aux_coef=FLAGS.aux_coef, aux_max_jump_px=FLAGS.aux_max_jump_px,
      observe_all_opponents=FLAGS.observe_all_opponents, init_from=FLAGS.init_from,
      progressive_from=FLAGS.progressive_from, record_dir=FLAGS.record_dir, record_every=FLAGS.record_every,
      feature_dim=FLAGS.feature_dim, opponent=FLAGS.opponent, selfplay_agents=FLAGS.selfplay_agents,
      opponent_agents=tuple(FLAGS.opponent_agents), num_heads=FLAGS.num_heads, lambda_=FLAGS['lambda'].value,
      clip_rho_threshold=FLAGS.clip_rho_threshold, clip_c_threshold=FLAGS.clip_c_threshold,
      clip_pg_rho_threshold=FLAGS.clip_pg_rho_threshold, max_queued_unrolls=FLAGS.max_queued_unrolls,
      actor_timeout_s=FLAGS.actor_timeout_s, max_actor_restarts=FLAGS.max_actor_restarts,
      micro_batches=FLAGS.micro_batches,
      jit_compile=FLAGS.jit_compile, precision=FLAGS.precision, tpu=FLAGS.tpu,
      **arch)
  # A preset fills in the fields whose flag was not given explicitly.
  preset = {k: v for k, v in config_lib.PRESETS[FLAGS.preset].items()
            if not FLAGS['lambda' if k == 'lambda_' else k].present}
  cfg = dataclasses.replace(cfg, **preset)
  try:
    cfg.validate()
  except ValueError as e:
    field, _, problem = str(e).partition(': ')
    flag = 'lambda' if field == 'lambda_' else field
    raise FlagError(f'--{flag}={FLAGS[flag].value if flag in FLAGS else "?"}: {problem}') from None
  return cfg


def main(argv):
  common.start(argv)
  try:
    cfg = config_from_flags()
  except FlagError as e:
    common.fail(str(e))
  logdir = FLAGS.logdir or os.path.join('runs', 'marl', f'{cfg.env}_{cfg.model}')
  from rlcv_tf.envs import base  # pylint: disable=g-import-not-at-top
  from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
  try:
    registry.check_available(cfg.env)  # before TensorFlow loads: a missing engine fails in a second
  except base.EnvironmentUnavailableError as e:
    common.fail(str(e))
  if cfg.backend == 'ray':
    # Also before TensorFlow: Ray installed, the cluster reachable, a CPU per actor, the engine on every node.
    from rlcv_tf.runtime import ray_pool  # pylint: disable=g-import-not-at-top  (--backend=local never loads Ray)
    try:
      ray_pool.preflight(cfg.ray_address, cfg.env, cfg.num_actors)
    except ray_pool.RayError as e:
      common.fail(str(e))
  from rlcv_tf.core import quiet  # pylint: disable=g-import-not-at-top
  quiet.import_tensorflow()   # without its C++ start-up noise
  from rlcv_tf.marl import pretraining  # pylint: disable=g-import-not-at-top
  from rlcv_tf.marl import replays  # pylint: disable=g-import-not-at-top
  from rlcv_tf.marl import selfplay  # pylint: disable=g-import-not-at-top
  from rlcv_tf.marl import training  # pylint: disable=g-import-not-at-top
  thesis = ' '.join(f'--{k}={v}' for k, v in config_lib.THESIS_SCALE.items())
  aux = f', aux {cfg.aux} x {cfg.aux_coef:g}' if cfg.aux != 'none' else ''
  aux += f', vs {cfg.opponent}' if cfg.opponent != 'builtin' else ''
  where = f'{cfg.env_count} envs inline' if cfg.runtime == 'inline' else f'{cfg.num_actors} actors'
  if cfg.backend == 'ray':
    where += f' on Ray ({cfg.ray_address or "private, this machine"})'
  print(f'[marl] {cfg.env} / {cfg.model}{aux}: {cfg.total_frames:,} frames, {where}, batch '
        f'{cfg.batch_size}x{cfg.unroll_length}, logdir {logdir}', flush=True)
  print(f'[marl] thesis scale (App. 4.E; needs many actor machines and accelerators): {thesis} '
        '--num_actors=<thousands>', flush=True)
  common.run_to_the_end(lambda: training.train(cfg, logdir, print_fn=lambda s: print(s, flush=True)),
                        user_errors=(base.EnvironmentUnavailableError, training.ResumeMismatchError,
                                     pretraining.TransferError, replays.ReplayError, selfplay.SelfPlayError))


if __name__ == '__main__':
  app.run(main)
