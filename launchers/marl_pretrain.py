r"""Chapter 4 pre-training from observations without actions (thesis Sec. 4.4.2, App. 4.D; spec ch4 §3.4).

  python -m launchers.marl --model=acnn --record_dir=replays/5v5         # 1. record replays during an RL run
  python -m launchers.marl_pretrain --replay_dir=replays/5v5 --model=acnn --logdir=runs/pretrain/acnn
  python -m launchers.marl --model=acnn --init_from=runs/pretrain/acnn   # 3a. weight-initialisation transfer
  python -m launchers.marl --model=pracnn --progressive_from=runs/pretrain/acnn   # 3b. progressive column
  tensorboard --logdir=runs/pretrain/acnn
  python -m launchers.marl_eval --agent=runs/marl/acnn --games=50 --record_dir=replays/5v5   # 1b. saved agents

Re-running with the same --logdir resumes from its latest checkpoint (written at every validation pass), e.g.
with a larger --max_steps; the model, objective and architecture flags must match the saved run's.
--max_resident_episodes bounds memory for thesis-scale replays (300K frames of 72x96 SMM): at most that many
episodes are decoded at once (a rotating shuffle buffer of training episodes, validation streamed one episode at
a time); 0 keeps every episode in memory.

Every agent predicts its own next-step row and column (Eq. 4.4, `--objective=predict`) or, as the ablation of
Sec. 4.4.5, the occupancy of all home players (`--objective=observe_all`). Adam lr 0.002, batch 32, 1/15 of the
EPISODES held out for validation, early stopping on the validation NLL; the best checkpoint is kept for transfer.
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')

from absl import app
from absl import flags

from launchers import common


flags.DEFINE_string('replay_dir', '', 'Directory of recorded observation replays (launchers/marl.py or '
                    'launchers/marl_eval.py --record_dir).')
flags.DEFINE_string('logdir', '', 'Where checkpoints, summaries and the SavedModel go; a logdir that holds a run '
                    'is resumed. Default: runs/pretrain/<model>_<objective>.')
flags.DEFINE_string('model', 'acnn', 'Predictor network: cnn or acnn (the RL model it will initialise).')
flags.DEFINE_string('objective', 'predict', 'predict (agent-centric, Eq. 4.4) or observe_all (Sec. 4.4.5).')
flags.DEFINE_integer('max_jump_px', 3, 'predict: skip targets more than this many pixels from the agent\'s '
                     'position (a switched player or a kick-off reset; as launchers.marl --aux_max_jump_px).')
flags.DEFINE_bool('observe_all_opponents', False, 'observe_all masks also cover the opponents.')
flags.DEFINE_integer('batch_size', 32, 'Samples (time steps, all agents each) per update (App. 4.D: 32).')
flags.DEFINE_float('learning_rate', 0.002, 'Adam learning rate (App. 4.D: 0.002).')
flags.DEFINE_integer('max_steps', 20_000, 'Upper bound on updates (early stopping usually ends sooner).')
flags.DEFINE_integer('eval_every', 500, 'Updates between validation passes.')
flags.DEFINE_integer('patience', 5, 'Stop after this many validation passes without a new best NLL.')
flags.DEFINE_float('validation_fraction', 1.0 / 15.0, 'Fraction of the episodes held out (App. 4.D: 1/15).')
flags.DEFINE_integer('max_eval_batches', 0, 'Cap on validation batches per pass; 0 = the whole split.')
flags.DEFINE_string('stack_channels', '', 'Torso conv stacks CHANNELSxBLOCKS,...; default 16x2,32x2,32x2,32x2. '
                    'Must match the RL run that will load it.')
flags.DEFINE_integer('feature_dim', 256, 'Width of the torso feature z (thesis: 256).')
flags.DEFINE_integer('num_heads', 2, 'Attention heads (thesis: 2).')
flags.DEFINE_integer('seed', 0, 'Random seed (initialisation, validation split, batches).')
flags.DEFINE_float('log_interval_s', 10.0, 'Seconds between console progress lines.')
flags.DEFINE_integer('max_resident_episodes', 0, 'Most episodes decoded in memory at once (>= 2: a rotating '
                     'shuffle buffer of training episodes plus one validation episode at a time); 0 = all.')

FLAGS = flags.FLAGS



def main(argv):
  common.start(argv)
  if not FLAGS.replay_dir:
    common.fail('--replay_dir: required (a directory recorded with launchers/marl.py --record_dir)')
  if not os.path.isdir(FLAGS.replay_dir):
    common.fail(f'--replay_dir={FLAGS.replay_dir}: no such directory')
  if not os.path.exists(os.path.join(FLAGS.replay_dir, 'index.json')):
    common.fail(f'--replay_dir={FLAGS.replay_dir}: holds no replays (index.json missing); record some with '
          'launchers/marl.py --record_dir')
  from rlcv_tf.marl import config as config_lib  # pylint: disable=g-import-not-at-top  (no TensorFlow)
  arch = {}
  if FLAGS.stack_channels:
    try:
      arch['stack_channels'] = config_lib.parse_stacks(FLAGS.stack_channels)
    except ValueError as e:
      common.fail(f'--stack_channels={e}')
  cfg = config_lib.PretrainConfig(
      replay_dir=FLAGS.replay_dir, model=FLAGS.model, objective=FLAGS.objective,
      observe_all_opponents=FLAGS.observe_all_opponents, max_jump_px=FLAGS.max_jump_px, batch_size=FLAGS.batch_size,
      learning_rate=FLAGS.learning_rate, max_steps=FLAGS.max_steps, eval_every=FLAGS.eval_every,
      patience=FLAGS.patience, validation_fraction=FLAGS.validation_fraction,
      max_eval_batches=FLAGS.max_eval_batches, feature_dim=FLAGS.feature_dim, num_heads=FLAGS.num_heads,
      seed=FLAGS.seed, log_interval_s=FLAGS.log_interval_s, max_resident_episodes=FLAGS.max_resident_episodes,
      **arch)
  try:
    cfg.validate()
  except ValueError as e:
    field, _, problem = str(e).partition(': ')
    common.fail(f'--{field}={getattr(FLAGS, field, "?")}: {problem}')
  # Only now load TensorFlow: every flag error above is reported in well under a second.
  from rlcv_tf.marl import pretraining  # pylint: disable=g-import-not-at-top
  from rlcv_tf.marl import replays  # pylint: disable=g-import-not-at-top
  logdir = FLAGS.logdir or os.path.join('runs', 'pretrain', f'{cfg.model}_{cfg.objective}')
  try:
    pretraining.pretrain(cfg, logdir, print_fn=lambda s: print(s, flush=True))
  except pretraining.ResumeError as e:
    common.fail(str(e))                   # names --logdir and the differing flags itself
  except replays.ReplayError as e:
    common.fail(f'--replay_dir={FLAGS.replay_dir}: {e}')


if __name__ == '__main__':
  app.run(main)
