"""The phase-1 learning check (worldgraph/training.py): decision cells counted by hand on a small maze, and each
part of the verdict able to fail on its own."""

import numpy as np

from rlcv_tf.envs import maze_layouts
from rlcv_tf.worldgraph import config as config_lib
from rlcv_tf.worldgraph import graph as graph_lib
from rlcv_tf.worldgraph import training

MAZE = """
#######
#.....#
#.###.#
#.#...#
#.#.###
#.....#
#######
"""


def test_decision_cells_are_junctions_corners_and_dead_ends():
  walls = maze_layouts.parse_layout(MAZE).walls
  got = {tuple(c) for c in np.argwhere(training.decision_cells(walls))}
  # Corners (1,1), (1,5), (5,1), (5,5)... counted by hand: every free cell whose free neighbours are not a straight
  # pair. (3,3): neighbours (3,4) and (4,3) -> a corner; (3,5): dead end; (4,3): up and down -> corridor.
  want = {(1, 1), (1, 5), (5, 1), (3, 3), (3, 5), (5, 3), (5, 5)}
  assert got == want, sorted(got ^ want)
  assert training.decision_cells(maze_layouts.get_layout('small').walls).sum() == 27


def _graph(nodes):
  walls = maze_layouts.get_layout('small').walls
  return graph_lib.form_edges(walls, np.array(nodes), walks_per_node=64, walk_length=60, rng=0)


def test_each_part_of_the_check_can_fail_alone():
  cfg = config_lib.WorldGraphConfig.for_profile('cpu')
  good_nodes = [(1, 1), (1, 5), (3, 5), (5, 1), (3, 9), (5, 9)]
  graph = _graph(good_nodes)
  assert np.isfinite(graph.distances).all()
  logs = {'vae/expected_l0': 5.2, 'vae/nll_per_step': 1.0}
  ok = training.learning_check(logs, graph, cfg, learned=True)
  assert ok['passed'], ok['line']
  assert not training.learning_check(dict(logs, **{'vae/expected_l0': 7.8}), graph, cfg, True)['passed']
  assert not training.learning_check(dict(logs, **{'vae/nll_per_step': 1.38}), graph, cfg, True)['passed']
  corridor = _graph([(1, 2), (1, 3), (1, 4), (3, 2), (3, 3), (3, 4)])
  line = training.learning_check(logs, corridor, cfg, True)['line']
  assert 'FAILED' in line and 'junctions, corners or dead ends' in line.split('. Passed:')[0]
  # Random waypoints: only the graph is checked.
  assert training.learning_check({}, corridor, cfg, learned=False)['passed']
