r"""Seeds 003-004: solve a small MDP exactly (or by tabular Q-learning) and look at the answer.

  python -m launchers.mdp                                   # FrozenLake-v1 by value iteration, played 1,000 times
  python -m launchers.mdp --env=two_state --method=evaluate # the spec's worked example: V^pi = [7.25, 7.75]
  python -m launchers.mdp --env=cliffwalking --method=policy_iteration --gamma=1
  python -m launchers.mdp --env=frozenlake --method=q_learning --steps=500000

Writes <output_dir>/solution.json ({V, Q, policy, V_start, ...}) and, for the grid worlds, values.png (V as colour,
the greedy action per cell). The grid worlds are gymnasium's real tables (episode ends made absorbing), and their
greedy policy is played on the real environment without its time limit (rlcv_tf/rl_basics/solve.py).
"""

from absl import app
from absl import flags

from launchers import common

flags.DEFINE_string('env', 'frozenlake', 'two_state, frozenlake (FrozenLake-v1, slippery 4x4) or cliffwalking '
                    '(CliffWalking-v1).')
flags.DEFINE_string('method', 'value_iteration', 'evaluate (the uniformly random policy), value_iteration, '
                    'policy_iteration or q_learning.')
flags.DEFINE_float('gamma', 0.95, 'Discount in [0, 1] (1 only where every episode ends).')
flags.DEFINE_integer('episodes', 1000, 'Grid worlds: episodes of the greedy policy played on the real environment.')
flags.DEFINE_integer('steps', 200_000, 'q_learning: sampled transitions.')
flags.DEFINE_float('alpha', 0.1, 'q_learning: step size.')
flags.DEFINE_float('epsilon', 0.2, 'q_learning: exploration rate.')
flags.DEFINE_integer('seed', 0, 'Seed of the sampling and the played episodes.')
flags.DEFINE_string('output_dir', 'runs/mdp', 'Where solution.json and values.png go.')
FLAGS = flags.FLAGS


def main(argv):
  common.start(argv)
  from rlcv_tf.rl_basics import solve  # pylint: disable=g-import-not-at-top  (NumPy, gymnasium; no TensorFlow)
  try:
    solve.check_request(FLAGS.env, FLAGS.method, FLAGS.gamma)
    if FLAGS.episodes < 0 or FLAGS.steps < 1:
      raise ValueError(f'--episodes={FLAGS.episodes} / --steps={FLAGS.steps}: want episodes >= 0 and steps >= 1')
    if not 0.0 <= FLAGS.epsilon <= 1.0 or FLAGS.alpha <= 0:
      raise ValueError(f'--epsilon={FLAGS.epsilon:g} must lie in [0, 1] and --alpha={FLAGS.alpha:g} be > 0')
  except ValueError as e:
    common.fail(str(e))
  solve.solve(FLAGS.env, FLAGS.method, FLAGS.gamma, FLAGS.output_dir, episodes=FLAGS.episodes, steps=FLAGS.steps,
              alpha=FLAGS.alpha, epsilon=FLAGS.epsilon, seed=FLAGS.seed)


if __name__ == '__main__':
  app.run(main)
