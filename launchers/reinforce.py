r"""Seeds 003-004: REINFORCE with or without a learned value baseline.

  python -m launchers.reinforce                             # CartPole-v1 with a baseline, 60 updates x 8 episodes
  python -m launchers.reinforce --nobaseline                # plain REINFORCE
  python -m launchers.reinforce --env=acrobot --updates=200

Writes config.json, checkpoints (also on Ctrl-C / SIGTERM; re-running resumes), TensorBoard, returns.png, eval.json
and a SavedModel (`serve(observation)` -> action, greedy_action, logits).
"""

from absl import app
from absl import flags

from launchers import common

flags.DEFINE_string('env', 'cartpole', 'cartpole, acrobot, mountaincar or mini_chain (discrete actions).')
flags.DEFINE_bool('baseline', True, 'Subtract a learned V(s) (the advantage form); --nobaseline: plain REINFORCE.')
flags.DEFINE_integer('updates', 60, 'Policy updates.')
flags.DEFINE_integer('episodes_per_update', 8, 'Whole episodes per update.')
flags.DEFINE_float('gamma', 0.99, 'Discount in [0, 1].')
flags.DEFINE_float('learning_rate', 1e-2, 'Adam learning rate of the policy (and the value network).')
flags.DEFINE_integer('eval_episodes', 20, 'Held-out evaluation episodes (greedy and sampled).')
flags.DEFINE_integer('seed', 0, 'Seed.')
flags.DEFINE_string('logdir', '', 'Where the run goes (resumed if it exists). Default: runs/reinforce/<env>[_baseline].')
FLAGS = flags.FLAGS


def main(argv):
  common.start(argv)
  import os  # pylint: disable=g-import-not-at-top
  from rlcv_tf.envs import base  # pylint: disable=g-import-not-at-top
  from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
  if FLAGS.env not in registry.names():
    common.fail(f'--env={FLAGS.env}: unknown environment; e.g. cartpole, acrobot, mountaincar, mini_chain')
  from rlcv_tf.rl_basics import reinforce_training  # pylint: disable=g-import-not-at-top
  cfg = reinforce_training.ReinforceConfig(
      env=FLAGS.env, baseline=FLAGS.baseline, updates=FLAGS.updates, episodes_per_update=FLAGS.episodes_per_update,
      gamma=FLAGS.gamma, learning_rate=FLAGS.learning_rate, value_learning_rate=FLAGS.learning_rate,
      eval_episodes=FLAGS.eval_episodes, seed=FLAGS.seed)
  try:
    cfg.validate()
    reinforce_training.check_env(cfg)
  except ValueError as e:
    common.fail(common.flag_message(e))
  except base.EnvironmentUnavailableError as e:
    common.fail(str(e))
  logdir = FLAGS.logdir or os.path.join('runs', 'reinforce', f'{FLAGS.env}{"_baseline" if FLAGS.baseline else ""}')
  common.run_to_the_end(lambda: reinforce_training.train(cfg, logdir), user_errors=(ValueError,))


if __name__ == '__main__':
  app.run(main)
