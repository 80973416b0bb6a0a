"""Chapter 3's world graph (rlcv_tf/worldgraph/graph.py): edge formation, the planner, graph.json, waypoints.

Spec ch3 Sec. 9 tests 9-10 and issue 11. References are independent of the code under test: SciPy's
`csgraph.shortest_path` (Dijkstra) for the planner, a plain breadth-first search and a plain step function written
here for the maze, the tree path between waypoints for the edge rule, and the batched maze engine
(rlcv_tf/envs/maze.py) for replaying routes and replay prefixes.
"""

import collections
import json
import os

import numpy as np
import pytest
from scipy.sparse import csgraph

from rlcv_tf.envs import maze
from rlcv_tf.envs import maze_layouts
from rlcv_tf.worldgraph import graph as wg

DELTAS = {0: (-1, 0), 1: (1, 0), 2: (0, -1), 3: (0, 1)}

# A corridor with one side branch: waypoints A = (1, 1), B = (1, 4), C = (3, 7) lie on one line; (3, 1) is off it.
CORRIDOR = """
#########
#.......#
#.#####.#
#.#####.#
#########
"""
A, B, C, OFF_ROUTE = (1, 1), (1, 4), (3, 7), (3, 1)

# A comb: no loops, so between two cells there is exactly one path without repeated cells.
COMB = """
#########
#.......#
#.#.#.#.#
#.#.#.#.#
#.#.#.#.#
#.#.#.#.#
#.#.#.#.#
#.#.#.#.#
#########
"""


def walls_of(text):
  return maze_layouts.parse_layout(text).walls


def bfs_parents(walls, source):
  """{cell: (previous cell, action)} of a plain breadth-first search from `source`."""
  parents = {tuple(source): None}
  queue = collections.deque([tuple(source)])
  while queue:
    r, c = queue.popleft()
    for a, (dr, dc) in DELTAS.items():
      n = (r + dr, c + dc)
      if not walls[n] and n not in parents:
        parents[n] = ((r, c), a)
        queue.append(n)
  return parents


def bfs_path(walls, source, target):
  """(actions, cells) of a shortest path by plain BFS."""
  parents = bfs_parents(walls, source)
  cells, actions = [tuple(target)], []
  while parents[cells[-1]] is not None:
    prev, a = parents[cells[-1]]
    cells.append(prev)
    actions.append(a)
  return actions[::-1], cells[::-1]


def replay(walls, start, actions):
  """Cells visited from `start` under `actions` (a move into a wall stays), plain Python."""
  cells = [tuple(start)]
  for a in actions:
    r, c = cells[-1]
    dr, dc = DELTAS[a]
    cells.append((r, c) if walls[r + dr, c + dc] else (r + dr, c + dc))
  return cells


def scipy_distances(weights):
  dense = np.where(np.isfinite(weights), weights, 0.0)
  np.fill_diagonal(dense, 0.0)
  return csgraph.shortest_path(dense, method='D', directed=True)


# --------------------------------------------------------------------------------------------------------------
# Planner (spec Sec. 9 test 9).

def test_floyd_warshall_matches_scipy_on_random_graphs():
  rng = np.random.default_rng(0)
  for trial in range(20):
    n = int(rng.integers(2, 41))
    density = rng.uniform(0.02, 0.3)
    weights = np.where(rng.random((n, n)) < density, rng.uniform(1.0, 10.0, (n, n)), np.inf)
    if trial % 2:
      weights = np.where(np.isfinite(weights), np.ceil(weights), np.inf)     # integer weights, many ties
    np.fill_diagonal(weights, np.inf)
    dist, nxt = wg.floyd_warshall(weights)
    want = scipy_distances(weights)
    np.testing.assert_allclose(dist, want, rtol=1e-12, err_msg=f'graph {trial}')
    for i in range(n):
      for j in range(n):
        if np.isfinite(want[i, j]):
          route = wg.follow_next_hop(nxt, i, j)
          assert route[0] == i and route[-1] == j and len(set(route)) == len(route)
          cost = sum(weights[a, b] for a, b in zip(route[:-1], route[1:]))
          assert cost == pytest.approx(want[i, j], rel=1e-12)
        else:
          assert nxt[i, j] == -1
          with pytest.raises(ValueError, match='no path'):
            wg.follow_next_hop(nxt, i, j)


def test_world_graph_planner_on_medium_maze():
  layout = maze_layouts.get_layout('medium')
  walls = layout.walls
  nodes = wg.random_waypoints(layout, wg.waypoint_count(layout.num_free), rng=3)
  graph = wg.form_edges(layout, nodes, rng=4)
  k = graph.num_nodes
  weights = np.full((k, k), np.inf)
  for (i, j), edge in graph.edges.items():
    weights[i, j] = len(edge.actions)
  want = scipy_distances(weights)
  np.testing.assert_array_equal(graph.distances, want)
  for i in range(k):
    for j in range(k):
      assert graph.has_path(i, j) == bool(np.isfinite(want[i, j]))
      if graph.has_path(i, j):
        route = graph.route(i, j)
        actions = graph.actions_along(route)
        assert sum(graph.edges[(a, b)].weight for a, b in zip(route[:-1], route[1:])) == want[i, j]
        assert len(actions) == want[i, j]
        cells = replay(walls, graph.nodes[i], actions)
        assert cells[-1] == graph.nodes[j]
        assert cells == graph.cells_along(route)
  for i in range(k):
    assert graph.neighbours(i) == sorted(j for (s, j) in graph.edges if s == i)
    assert graph.index_of(graph.nodes[i]) == i


def test_unreachable_nodes_have_no_path():
  walls = walls_of(CORRIDOR)
  graph = wg.form_edges(walls, [A, C], walks_per_node=8, walk_length=1, rng=0)   # one move never gets there
  assert not graph.edges
  assert not graph.has_path(0, 1) and not graph.has_path(1, 0) and graph.has_path(0, 0)
  assert graph.route(0, 0) == [0] and graph.actions_along([0]) == []
  with pytest.raises(ValueError, match='no path from node 0 to node 1'):
    graph.route(0, 1)


# --------------------------------------------------------------------------------------------------------------
# Edge rule (spec Sec. 9 test 10).

def test_corridor_edges_skip_the_middle_waypoint():
  walls = walls_of(CORRIDOR)
  graph = wg.form_edges(walls, [A, B, C], walks_per_node=64, walk_length=50, rng=0)
  assert set(graph.edges) == {(0, 1), (1, 0), (1, 2), (2, 1)}         # no A->C or C->A: B is in the way
  for (i, j), edge in graph.edges.items():
    actions, cells = bfs_path(walls, graph.nodes[i], graph.nodes[j])
    assert edge.weight == len(actions)
    assert list(edge.cells) == cells and list(edge.actions) == actions
  assert graph.route(0, 2) == [0, 1, 2]
  assert graph.distances[0, 2] == 3 + 5


def tree_path(walls, source, target):
  return bfs_path(walls, source, target)[1]


def test_loop_free_maze_edges_and_weights_equal_bfs():
  walls = walls_of(COMB)
  nodes = [tuple(c) for c in wg.random_waypoints(walls, 7, rng=5)]
  graph = wg.form_edges(walls, nodes, walks_per_node=400, walk_length=150, rng=6)
  # On a tree the one simple path from p to q is the shortest; i -> j is an edge iff it holds no third waypoint.
  expected = set()
  for i, p in enumerate(nodes):
    for j, q in enumerate(nodes):
      if i != j and not set(tree_path(walls, p, q)[1:-1]) & set(nodes):
        expected.add((i, j))
  assert set(graph.edges) == expected
  dist = {}
  for (i, j), edge in graph.edges.items():
    assert list(edge.cells) == tree_path(walls, nodes[i], nodes[j])
    assert edge.weight == len(tree_path(walls, nodes[i], nodes[j])) - 1
    dist[(i, j)] = edge.weight
  # Graph distances equal maze BFS distances between waypoints (a tree: routes through waypoints are shortest).
  for i, p in enumerate(nodes):
    for j, q in enumerate(nodes):
      assert graph.distances[i, j] == len(tree_path(walls, p, q)) - 1


def test_walk_edges_are_valid_simple_paths_without_third_waypoints():
  layout = maze_layouts.get_layout('medium')
  walls = layout.walls
  nodes = [tuple(c) for c in wg.random_waypoints(layout, 43, rng=7)]
  graph = wg.form_edges(layout, nodes, rng=8)
  assert len(graph.edges) > len(nodes)
  for (i, j), edge in graph.edges.items():
    assert replay(walls, nodes[i], edge.actions) == list(edge.cells)
    assert len(set(edge.cells)) == len(edge.cells)                  # loop-erased
    assert not set(edge.cells[1:-1]) & set(nodes)                    # no third waypoint on a walk's segment
    assert edge.weight >= len(bfs_path(walls, nodes[i], nodes[j])[0])


def test_replaying_a_route_in_the_env_visits_the_stored_cells():
  graph = wg.form_edges(walls_of(CORRIDOR), [A, B, C], rng=0)
  route = graph.route(graph.index_of(A), graph.index_of(C))
  stored = [A] + [cell for a, b in zip(route[:-1], route[1:]) for cell in graph.edges[(a, b)].cells[1:]]
  assert graph.cells_along(route) == stored
  env = maze.BatchMaze(1, maze=CORRIDOR, task='goalreach', seeds=0, max_steps=1000, autoreset=False)
  env.set_agent([0], [A])
  env.set_goal([0], [OFF_ROUTE])
  visited = [tuple(env.agent[0])]
  for a in graph.actions_along(route):
    _, _, terminated, truncated, _ = env.step([a])
    assert not terminated[0] and not truncated[0]
    visited.append(tuple(int(v) for v in env.agent[0]))
  assert visited == stored and visited[-1] == C


def test_policy_paths_shorten_edges_and_failures_are_dropped():
  layout = maze_layouts.get_layout('medium')
  walls = layout.walls
  nodes = wg.random_waypoints(layout, 43, rng=9)
  plain = wg.form_edges(layout, nodes, rng=10)
  calls = []

  def pig(src, dst):
    calls.append((src, dst))
    best = bfs_path(walls, src, dst)[0]
    return [[0, 0, 0], best + [1, 2, 3]]            # a failed rollout; a success that goes on past the goal

  helped = wg.form_edges(layout, nodes, rng=10, policy_paths=pig)
  assert set(helped.edges) == set(plain.edges)      # pi_g paths never claim edges
  assert len(calls) == len(plain.edges)
  for (i, j), edge in helped.edges.items():
    assert edge.weight == len(bfs_path(walls, nodes[i], nodes[j])[0])
    assert replay(walls, tuple(nodes[i]), edge.actions)[-1] == tuple(nodes[j])
  # Mapping form: only the named claimed edge changes.
  (i, j), edge = max(plain.edges.items(), key=lambda item: item[1].weight - len(bfs_path(walls, nodes[item[0][0]],
                                                                                            nodes[item[0][1]])[0]))
  best = bfs_path(walls, nodes[i], nodes[j])[0]
  assert len(best) < edge.weight, 'the seed should leave some walk edge longer than the shortest path'
  mapped = wg.form_edges(layout, nodes, rng=10, policy_paths={(i, j): [best], (-5, -6): [[0]]})
  for key, other in plain.edges.items():
    assert mapped.edges[key].weight == (len(best) if key == (i, j) else other.weight)


def test_loop_erase_cuts_cycles_and_bumps():
  cells = [(1, 1), (1, 2), (1, 3), (1, 2), (1, 2), (2, 2), (1, 2), (1, 3), (1, 4)]
  actions = [3, 3, 2, 1, 1, 0, 3, 3]
  out_actions, out_cells = wg.loop_erase(actions, cells)
  assert out_cells == ((1, 1), (1, 2), (1, 3), (1, 4)) and out_actions == (3, 3, 3)


def test_random_walks_are_seeded_uniform_valid_moves():
  layout = maze_layouts.get_layout('small')
  walls = layout.walls
  starts = np.array([[3, 5]] * 4000)                                 # a T-junction: up, left and right are open
  cells, actions = wg.random_walks(layout, starts, 30, rng=11)
  again, _ = wg.random_walks(layout, starts, 30, rng=11)
  np.testing.assert_array_equal(cells, again)
  assert cells.shape == (4000, 31, 2) and actions.shape == (4000, 30)
  for n in range(0, 4000, 97):
    assert replay(walls, tuple(cells[n, 0]), actions[n].tolist()) == [tuple(c) for c in cells[n]]
  assert (np.abs(np.diff(cells, axis=1)).sum(-1) == 1).all()         # every move changes the cell
  counts = np.bincount(actions[:, 0], minlength=4)
  assert walls[4, 5] and not walls[2, 5] and not walls[3, 4] and not walls[3, 6]
  open_moves = [0, 2, 3]
  assert counts[1] == 0 and np.all(np.abs(counts[open_moves] - 4000 / 3) < 5 * np.sqrt(4000 * 2 / 9))
  bumpy, bumpy_actions = wg.random_walks(layout, starts, 30, rng=11, valid_moves_only=False)
  assert (bumpy_actions[:, 0] == 0).any() and (bumpy[:, 1] == bumpy[:, 0]).all(-1).any()


def test_edge_flags_are_checked():
  with pytest.raises(ValueError, match='--edge_walks'):
    wg.form_edges(walls_of(CORRIDOR), [A, C], walks_per_node=0)
  with pytest.raises(ValueError, match='--edge_walk_length'):
    wg.form_edges(walls_of(CORRIDOR), [A, C], walk_length=0)


# --------------------------------------------------------------------------------------------------------------
# graph.json.

def test_save_load_round_trip(tmp_path):
  layout = maze_layouts.get_layout('small')
  nodes = wg.random_waypoints(layout, 15, rng=12)
  graph = wg.form_edges(layout, nodes, walks_per_node=16, walk_length=10, rng=13)
  assert not np.isfinite(graph.distances).all(), 'short walks should leave some pair unreachable'
  file = graph.save(str(tmp_path / 'run'))
  assert file == str(tmp_path / 'run' / 'graph.json')
  with open(file) as f:
    data = json.load(f)
  assert data['maze'] == layout.text().splitlines()
  assert data['nodes'] == nodes.tolist()
  assert set(data['edges'][0]) == {'src', 'dst', 'actions', 'cells', 'weight'}
  assert any(d is None for row in data['distances'] for d in row)
  for row, want in zip(data['distances'], graph.distances):
    assert [np.inf if d is None else d for d in row] == want.tolist()
  for source in (str(tmp_path / 'run'), file):
    loaded = wg.WorldGraph.load(source, expect_maze=layout)
    assert loaded.nodes == graph.nodes and loaded.edges == graph.edges
    np.testing.assert_array_equal(loaded.distances, graph.distances)
    np.testing.assert_array_equal(loaded.next_hop, graph.next_hop)
    np.testing.assert_array_equal(loaded.walls, layout.walls)


def test_load_refuses_a_missing_graph(tmp_path):
  with pytest.raises(ValueError, match=r'--graph_from=.*empty has no graph.json.*launchers.world_graph'):
    wg.WorldGraph.load(str(tmp_path / 'empty'), flag='--graph_from')


def test_load_refuses_a_graph_of_another_maze(tmp_path):
  tiny = maze_layouts.get_layout('tiny')
  graph = wg.form_edges(tiny, wg.random_waypoints(tiny, 4, rng=0), rng=0)
  graph.save(str(tmp_path))
  with pytest.raises(ValueError, match='another maze .*7x7 maze, this run uses 13x13'):
    wg.WorldGraph.load(str(tmp_path), expect_maze='small')
  changed = tiny.walls.copy()
  changed[3, 2] = False                                                # same size, one wall opened
  with pytest.raises(ValueError, match='another maze .*row 3, column 2'):
    wg.WorldGraph.load(str(tmp_path), expect_maze=changed)
  assert wg.WorldGraph.load(str(tmp_path), expect_maze='tiny').nodes == graph.nodes


def test_load_refuses_corrupt_files(tmp_path):
  tiny = maze_layouts.get_layout('tiny')
  graph = wg.form_edges(tiny, wg.random_waypoints(tiny, 4, rng=1), rng=1)
  file = graph.save(str(tmp_path))
  data = graph.to_json()
  (tmp_path / 'bad.json').write_text('{"format": ')
  with pytest.raises(ValueError, match='not valid JSON'):
    wg.WorldGraph.load(str(tmp_path / 'bad.json'))
  edited = json.loads(json.dumps(data))
  edited['distances'][0][1] = 999
  (tmp_path / 'dist.json').write_text(json.dumps(edited))
  with pytest.raises(ValueError, match='"distances" differ'):
    wg.WorldGraph.load(str(tmp_path / 'dist.json'))
  edited = json.loads(json.dumps(data))
  edited['edges'][0]['actions'][0] = (edited['edges'][0]['actions'][0] + 2) % 4
  (tmp_path / 'edge.json').write_text(json.dumps(edited))
  with pytest.raises(ValueError, match=r'edge.*replaying its actions|does not fit'):
    wg.WorldGraph.load(str(tmp_path / 'edge.json'))
  assert os.path.isfile(file)


# --------------------------------------------------------------------------------------------------------------
# Waypoints: V_rand, given files, the flag.

def test_random_waypoints_are_seeded_distinct_floor_cells():
  layout = maze_layouts.get_layout('medium')
  count = wg.waypoint_count(layout.num_free)
  assert count == 43                                                  # round(0.2 * 213)
  first = wg.random_waypoints(layout, count, rng=21)
  np.testing.assert_array_equal(first, wg.random_waypoints(layout, count, rng=np.random.default_rng(21)))
  assert not np.array_equal(first, wg.random_waypoints(layout, count, rng=22))
  assert first.shape == (count, 2) and len({tuple(c) for c in first}) == count
  assert not layout.walls[first[:, 0], first[:, 1]].any()
  with pytest.raises(ValueError, match='count must be 1-213'):
    wg.random_waypoints(layout, 214, rng=0)


@pytest.mark.parametrize('content, match', [
    ('[[1, 1], [3, 3', 'not valid JSON'),
    ('{"cells": [[1, 1]]}', 'expected a JSON list'),
    ('[]', 'empty'),
    ('[[1, 1], [2, 2]]', r'entry 1 \[2, 2\] is a wall'),
    ('[[1, 1], [9, 1]]', r'entry 1 \[9, 1\] lies outside the 7x7 maze'),
    ('[[1, 1], [1, 3], [1, 1]]', r'entry 2 \[1, 1\] repeats entry 0'),
    ('[[1, 1], [1.5, 3]]', 'entry 1 .* pair of integers'),
    ('[[1, 1], [1, 3, 5]]', 'entry 1 .* pair of integers'),
])
def test_load_waypoints_refuses_bad_files(tmp_path, content, match):
  path = tmp_path / 'wp.json'
  path.write_text(content)
  with pytest.raises(ValueError, match=match):
    wg.load_waypoints(str(path), 'tiny')


def test_load_waypoints_reads_a_good_file(tmp_path):
  path = tmp_path / 'wp.json'
  path.write_text('[[1, 1], [5, 5], [3, 3]]')
  np.testing.assert_array_equal(wg.load_waypoints(str(path), 'tiny'), [[1, 1], [5, 5], [3, 3]])
  with pytest.raises(ValueError, match='no such file'):
    wg.load_waypoints(str(tmp_path / 'missing.json'), 'tiny')


def test_parse_waypoints_flag():
  assert wg.parse_waypoints_flag('learned') == ('learned', None)
  assert wg.parse_waypoints_flag('random') == ('random', None)
  assert wg.parse_waypoints_flag('runs/wp.json') == ('file', 'runs/wp.json')
  with pytest.raises(ValueError, match='--waypoints'):
    wg.parse_waypoints_flag('vae')


# --------------------------------------------------------------------------------------------------------------
# Replay prefixes (spec Sec. 5.6).

def test_replay_prefix_lands_on_every_cell_in_the_env():
  layout = maze_layouts.get_layout('medium')
  prefix = wg.replay_prefix(layout)
  assert set(prefix) == set(layout.free_cells())
  parents = bfs_parents(layout.walls, maze_layouts.START)
  env = maze.BatchMaze(1, maze=layout, task='goalreach', seeds=0, max_steps=10000, autoreset=False)
  for cell, actions in prefix.items():
    depth, at = 0, cell
    while parents[at] is not None:
      at, depth = parents[at][0], depth + 1
    assert len(actions) == depth                                       # a shortest sequence
    env.reset()
    env.set_goal([0], [cell])
    for t, a in enumerate(actions):
      _, _, terminated, _, _ = env.step([a])
      assert terminated[0] == (t == len(actions) - 1)                  # reaches the cell at the last action only
    assert tuple(int(v) for v in env.agent[0]) == cell
