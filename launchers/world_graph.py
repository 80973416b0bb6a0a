r"""Chapter 3, phase 1: learn a world graph of a maze (waypoints by the binary recurrent VAE, pi_g, edges; Alg. 6).

  python -m launchers.world_graph                         # small maze, CPU profile: minutes, with a learning check
  python -m launchers.world_graph --maze=medium --profile=full --iterations=3600      # the thesis's scale (App. 3.C.1)
  python -m launchers.world_graph --waypoints=random      # V_rand (Table 3.3): random waypoints, same edges, no VAE
  python -m launchers.world_graph --waypoints=my_cells.json   # given waypoints: a JSON list of [row, col]
  python -m launchers.feudal --graph_from=runs/world_graph/small_learned            # phase 2 on the graph
  tensorboard --logdir=runs/world_graph

Re-running with the same --logdir resumes (e.g. with a larger --iterations). The logdir holds config.json,
checkpoints, TensorBoard events, waypoint and graph pictures, graph.json and SavedModels of the VAE and pi_g
(rlcv_tf/worldgraph/training.py lists them).
"""

import dataclasses
import os

# TensorFlow's C++ start-up banner is noise on the console; warnings and errors still show.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')

from absl import app
from absl import flags

from launchers import common

from rlcv_tf.worldgraph import config as config_lib

_D = config_lib.WorldGraphConfig()

flags.DEFINE_string('maze', _D.maze, 'tiny (7x7), small (13x13), medium (21x21), large (29x29), or a maze text file '
                    '(rows of # wall and . floor; start (1,1), exit (H-2,W-2)).')
flags.DEFINE_string('profile', 'cpu', 'cpu (16 agents, small networks; the default) or full (the thesis: 128 agents, '
                    '3,600 iterations; spec network sizes).')
flags.DEFINE_string('logdir', '', 'Where the run goes; an existing run there is resumed. Default: '
                    'runs/world_graph/<maze>_<waypoints>.')
flags.DEFINE_integer('seed', _D.seed, 'Seed of the networks, the walks and the edges.')
flags.DEFINE_integer('iterations', None, 'Alg. 6 iterations (cpu 600; full 3,600).')
flags.DEFINE_integer('num_envs', None, 'Parallel agents B (cpu 16; full 128).')
flags.DEFINE_integer('horizon', _D.horizon, 'T, the walk and pi_g rollout length (thesis 25).')
flags.DEFINE_float('mu0', _D.mu0, 'Target number of open gates per T-step sequence (thesis 5 of 25).')
flags.DEFINE_string('waypoints', _D.waypoints, 'learned (the VAE\'s prior), random (V_rand, Table 3.3) or a JSON '
                    'file with a list of [row, col] cells; random and given waypoints skip the VAE.')
flags.DEFINE_integer('waypoint_every', None, 'Iterations between V_p refreshes (cpu 25; full 50).')
flags.DEFINE_integer('kl_terms', 5, 'Terms of the KL series of Eq. 3.5 (the thesis: 5); 0 = the accurate KL.')
flags.DEFINE_integer('edge_walks', None, 'Random walks per waypoint for the edges (cpu 32; full 64).')
flags.DEFINE_integer('edge_walk_length', _D.edge_walk_length, 'Moves per edge random walk (2T = 50).')
flags.DEFINE_integer('plateau_patience', _D.plateau_patience, 'Stop when the reconstruction accuracy has not '
                     'improved for this many iterations (0: run all --iterations).')
flags.DEFINE_float('log_interval_s', _D.log_interval_s, 'Seconds between progress lines.')
flags.DEFINE_float('checkpoint_interval_s', _D.checkpoint_interval_s, 'Seconds between checkpoints.')

FLAGS = flags.FLAGS
_PROFILE_FLAGS = ('iterations', 'num_envs', 'waypoint_every', 'edge_walks')


def config_from_flags() -> config_lib.WorldGraphConfig:
  overrides = {name: FLAGS[name].value for name in _PROFILE_FLAGS if FLAGS[name].value is not None}
  for name in ('maze', 'seed', 'horizon', 'mu0', 'waypoints', 'kl_terms', 'edge_walk_length', 'plateau_patience',
               'log_interval_s', 'checkpoint_interval_s'):
    overrides[name] = FLAGS[name].value
  return config_lib.WorldGraphConfig.for_profile(FLAGS.profile, **overrides)


def _check_maze_and_waypoints(cfg):
  """The maze and a waypoint file, checked before TensorFlow loads (NumPy only)."""
  from rlcv_tf.envs import maze_layouts  # pylint: disable=g-import-not-at-top
  from rlcv_tf.worldgraph import graph as graph_lib  # pylint: disable=g-import-not-at-top
  try:
    walls = maze_layouts.load_maze(cfg.maze).walls
  except ValueError as e:
    common.fail(str(e))
  mode, path = graph_lib.parse_waypoints_flag(cfg.waypoints)
  if mode == 'file':
    try:
      graph_lib.load_waypoints(path, walls)
    except ValueError as e:
      common.fail(f'--waypoints={cfg.waypoints}: {e}')


def main(argv):
  common.start(argv)
  try:
    cfg = config_from_flags()
  except ValueError as e:
    common.fail(str(e))
  _check_maze_and_waypoints(cfg)
  name = os.path.splitext(os.path.basename(cfg.maze))[0]
  mode = cfg.waypoints if cfg.waypoints in config_lib.WAYPOINT_MODES else 'given'
  logdir = FLAGS.logdir or os.path.join('runs', 'world_graph', f'{name}_{mode}')
  from rlcv_tf.core import runs  # pylint: disable=g-import-not-at-top
  try:
    saved = runs.load_config(logdir)
    current = dict(dataclasses.asdict(cfg), filters=list(cfg.filters))
    runs.check_same_settings(logdir, saved, current, config_lib.ARCHITECTURE_FIELDS)
  except runs.ResumeMismatchError as e:
    common.fail(str(e))
  from rlcv_tf.core import quiet  # pylint: disable=g-import-not-at-top
  quiet.import_tensorflow()
  from rlcv_tf.worldgraph import training  # pylint: disable=g-import-not-at-top
  print_fn = lambda s: print(s, flush=True)
  common.run_to_the_end(lambda: training.train_world_graph(cfg, logdir, print_fn=print_fn),
                        user_errors=(runs.ResumeMismatchError,))


if __name__ == '__main__':
  app.run(main)
