r"""Seeds 003-004: DQN (the slides' Algorithm 1, the 2013 and 2015 papers' forms) on one environment.

  python -m launchers.dqn                                   # MLP DQN on CartPole-v1, 30,000 steps (~1 min), evaluated
  python -m launchers.dqn --variant=slides                  # Algorithm 1 as the slides show it (no target network)
  python -m launchers.dqn --env=mini_chain --total_steps=3000 --eps_steps=1500     # the 6-state corridor

Writes config.json, checkpoints with the replay memory (also on Ctrl-C / SIGTERM; re-running resumes), TensorBoard,
returns.png, eval.json (episodes at epsilon 0.05 on held-out seeds) and a SavedModel (`q_values`, `act`).
"""

from absl import app
from absl import flags

from launchers import common

flags.DEFINE_string('env', 'cartpole', 'cartpole, acrobot, mountaincar or mini_chain (stand-in).')
flags.DEFINE_string('variant', 'mlp', 'slides (replay, no target network, squared error), nips2013, nature2015 '
                    '(target network, Huber, RMSProp; 84x84 frames) or mlp (state vectors, target network, Huber).')
flags.DEFINE_bool('double', False, 'Double-DQN targets (needs a target network).')
flags.DEFINE_float('replay_ratio', 1.0, 'Learner updates per agent step (Nature: 0.25, one every 4 steps).')
flags.DEFINE_integer('total_steps', 30_000, 'Agent steps.')
flags.DEFINE_integer('learning_starts', 1_000, 'Transitions stored before the first update.')
flags.DEFINE_integer('buffer_size', 50_000, 'Replay capacity (frames).')
flags.DEFINE_integer('target_update_period', 500, 'C: updates between target-network copies.')
flags.DEFINE_integer('eps_steps', 10_000, 'Agent steps over which epsilon falls from 1 to 0.05.')
flags.DEFINE_float('gamma', 0.99, 'Discount in [0, 1].')
flags.DEFINE_float('learning_rate', 1e-3, 'Learning rate (nature2015: 2.5e-4 is the paper\'s).')
flags.DEFINE_integer('num_frames', None, 'Frames stacked (default: the environment\'s; 4 for Atari).')
flags.DEFINE_integer('eval_episodes', 20, 'Evaluation episodes at epsilon 0.05.')
flags.DEFINE_integer('seed', 0, 'Seed.')
flags.DEFINE_string('logdir', '', 'Where the run goes (resumed if it exists). Default: runs/dqn/<env>_<variant>.')
FLAGS = flags.FLAGS


def main(argv):
  common.start(argv)
  import os  # pylint: disable=g-import-not-at-top
  from rlcv_tf.envs import base  # pylint: disable=g-import-not-at-top
  from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
  if FLAGS.env not in registry.names():
    common.fail(f'--env={FLAGS.env}: unknown environment; e.g. cartpole, acrobot, mountaincar, mini_chain')
  num_frames = FLAGS.num_frames or registry.entry(FLAGS.env).default_frames
  from rlcv_tf.rl_basics import dqn_training  # pylint: disable=g-import-not-at-top
  cfg = dqn_training.DQNRunConfig(
      env=FLAGS.env, variant=FLAGS.variant, double=FLAGS.double, replay_ratio=FLAGS.replay_ratio,
      total_steps=FLAGS.total_steps, learning_starts=FLAGS.learning_starts, buffer_size=FLAGS.buffer_size,
      target_update_period=FLAGS.target_update_period, eps_steps=FLAGS.eps_steps, gamma=FLAGS.gamma,
      learning_rate=FLAGS.learning_rate, num_frames=num_frames, eval_episodes=FLAGS.eval_episodes, seed=FLAGS.seed,
      reward_clip=FLAGS.env.startswith('atari'))
  try:
    cfg.validate()
    cfg.learner_config().validate()
    dqn_training.check_env(cfg)
  except ValueError as e:
    common.fail(common.flag_message(e))
  except base.EnvironmentUnavailableError as e:
    common.fail(str(e))
  logdir = FLAGS.logdir or os.path.join('runs', 'dqn', f'{FLAGS.env}_{FLAGS.variant}')
  common.run_to_the_end(lambda: dqn_training.train(cfg, logdir), user_errors=(ValueError,))


if __name__ == '__main__':
  app.run(main)
