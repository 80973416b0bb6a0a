r"""Chapter 3, phase 2: Feudal HRL with Wide-then-Narrow goals and world-graph traversal (Alg. 7), and its baselines.

  python -m launchers.world_graph                                             # phase 1 first: the graph and pi_g
  python -m launchers.feudal                     # WN + pi_g-init + traversal ("Ours") on runs/world_graph/small_learned
  python -m launchers.feudal --graph_from=runs/world_graph/small_learned --nopig_init     # WN + traversal
  python -m launchers.feudal --graph_from=runs/world_graph/small_learned --notraversal    # WN + pi_g-init
  python -m launchers.feudal --model=fn          # the Feudal Network baseline (no graph needed)
  python -m launchers.feudal --model=a2c         # the flat A2C baseline
  python -m launchers.feudal_eval --agent=runs/feudal/small_multigoal_wn/agent         # play the exported agent

Re-running with the same --logdir resumes. The logdir holds config.json, checkpoints, TensorBoard, best/ (the best
validation weights), eval.json (test score on 100 seeds against random play) and agent/ (SavedModels + graph.json).
"""

import dataclasses
import os

# TensorFlow's C++ start-up banner is noise on the console; warnings and errors still show.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')

from absl import app
from absl import flags

from launchers import common

from rlcv_tf.worldgraph import config as config_lib

_D = config_lib.FeudalConfig()

flags.DEFINE_string('graph_from', '', 'The phase-1 logdir (graph.json and pi_g); needed by --model=wn, --pig_init '
                    'and --traversal. Default: runs/world_graph/<maze>_learned, where launchers.world_graph writes.')
flags.DEFINE_string('maze', _D.maze, 'tiny, small, medium, large or a maze text file (the phase-1 maze).')
flags.DEFINE_string('task', _D.task, 'multigoal, multigoal_sparse, multigoal_stochastic or doorkey (Table 3.1).')
flags.DEFINE_string('model', _D.model, 'wn (Wide-then-Narrow Manager + Worker), fn (Feudal Network: one goal over '
                    'the free cells) or a2c (flat).')
flags.DEFINE_boolean('pig_init', None, 'Initialise the state encoders from pi_g (default: on for wn, off for the '
                     'baselines).')
flags.DEFINE_boolean('traversal', None, 'World-graph traversal (wn only; default on for wn).')
flags.DEFINE_string('profile', 'cpu', 'cpu (16 envs, small networks) or full (the thesis scale; 64 envs).')
flags.DEFINE_string('logdir', '', 'Default: runs/feudal/<maze>_<task>_<model>.')
flags.DEFINE_integer('seed', _D.seed, 'Training seed (networks, sampling, env seeds >= 10^6).')
flags.DEFINE_integer('iterations', None, 'Iterations of 60 Worker decisions per env (cpu 3,000).')
flags.DEFINE_integer('num_envs', None, 'Parallel envs (cpu 16; full 64).')
flags.DEFINE_integer('narrow_window', None, 'N of the narrow window (odd; default 5, 7 on large).')
flags.DEFINE_integer('eval_every', _D.eval_every, 'Iterations between validations on the 10 validation seeds.')
flags.DEFINE_float('log_interval_s', _D.log_interval_s, 'Seconds between progress lines.')
flags.DEFINE_float('checkpoint_interval_s', _D.checkpoint_interval_s, 'Seconds between checkpoints.')

FLAGS = flags.FLAGS


def config_from_flags() -> config_lib.FeudalConfig:
  overrides = {name: FLAGS[name].value for name in ('pig_init', 'traversal', 'iterations', 'num_envs',
                                                    'narrow_window') if FLAGS[name].value is not None}
  for name in ('graph_from', 'maze', 'task', 'model', 'seed', 'eval_every', 'log_interval_s', 'checkpoint_interval_s'):
    overrides[name] = FLAGS[name].value
  return config_lib.FeudalConfig.for_profile(FLAGS.profile, **overrides)


def main(argv):
  common.start(argv)
  try:
    cfg = config_from_flags()
  except ValueError as e:
    common.fail(str(e))
  needs_graph = cfg.model == 'wn' or cfg.pig_init or cfg.traversal
  if needs_graph and not cfg.graph_from:
    name = os.path.splitext(os.path.basename(cfg.maze))[0]
    default = os.path.join('runs', 'world_graph', f'{name}_learned')      # where launchers.world_graph writes
    if not os.path.isfile(os.path.join(default, 'graph.json')):
      common.fail(f'--model={cfg.model} with pi_g-init {cfg.pig_init} and traversal {cfg.traversal} needs a phase-1 '
                  f'run: python -m launchers.world_graph{"" if name == "small" else " --maze=" + cfg.maze} (writes '
                  f'{default}), or --graph_from=<phase-1 logdir>; the baselines run without: --model=fn or a2c')
    cfg.graph_from = default
    print(f'[feudal] --graph_from={default} (phase 1\'s default logdir)', flush=True)
  from rlcv_tf.envs import maze_layouts  # pylint: disable=g-import-not-at-top  (NumPy only)
  try:
    walls = maze_layouts.load_maze(cfg.maze).walls
    if cfg.graph_from:
      from rlcv_tf.worldgraph import graph as graph_lib  # pylint: disable=g-import-not-at-top
      graph_lib.WorldGraph.load(cfg.graph_from, expect_maze=walls, flag='--graph_from')
  except ValueError as e:
    common.fail(str(e))
  name = os.path.splitext(os.path.basename(cfg.maze))[0]
  logdir = FLAGS.logdir or os.path.join('runs', 'feudal', f'{name}_{cfg.task}_{cfg.model}')
  from rlcv_tf.core import runs  # pylint: disable=g-import-not-at-top
  try:
    current = dict(dataclasses.asdict(cfg), filters=list(cfg.filters))
    runs.check_same_settings(logdir, runs.load_config(logdir), current, config_lib.FEUDAL_ARCHITECTURE_FIELDS)
  except runs.ResumeMismatchError as e:
    common.fail(str(e))
  from rlcv_tf.core import quiet  # pylint: disable=g-import-not-at-top
  quiet.import_tensorflow()
  from rlcv_tf.worldgraph import training  # pylint: disable=g-import-not-at-top
  print_fn = lambda s: print(s, flush=True)
  common.run_to_the_end(lambda: training.train_feudal(cfg, logdir, print_fn=print_fn),
                        user_errors=(runs.ResumeMismatchError, ValueError))


if __name__ == '__main__':
  app.run(main)
