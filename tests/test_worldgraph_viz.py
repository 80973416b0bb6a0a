"""worldgraph/viz.py (issue 11, PNGs): picture shapes, the colour of known cells (a waypoint is blue, a wall dark, the
prior-mean shading, edge paths, episode goals and objects) read back pixel by pixel, refusals of bad input, and
PNG files written and read back with PIL."""

import numpy as np
import pytest
from PIL import Image

from rlcv_tf.envs import maze
from rlcv_tf.envs import maze_layouts
from rlcv_tf.worldgraph import graph as graph_lib
from rlcv_tf.worldgraph import viz

S = 12
TINY = np.array(maze_layouts.get_layout('tiny').walls)


def colour_at(img, cell, scale=S):
  return tuple(int(v) for v in img[viz.cell_centre(cell, scale)])


def test_waypoints_image_colours():
  waypoints = [(1, 1), (3, 4), (5, 5)]
  img = viz.waypoints_image(TINY, waypoints, scale=S)
  assert img.shape == (7 * S, 7 * S, 3) and img.dtype == np.uint8
  for cell in waypoints:
    assert colour_at(img, cell) == viz.WAYPOINT
  assert colour_at(img, (0, 0)) == viz.WALL and colour_at(img, (2, 2)) == viz.WALL
  assert colour_at(img, (1, 3)) == viz.FLOOR
  # Every pixel of a wall cell is the wall colour; a floor cell has its grid line in its top-left row.
  assert np.all(img[2 * S:3 * S, 2 * S:3 * S] == viz.WALL)
  assert tuple(img[1 * S, 3 * S + 5]) == viz.GRID_LINE


def test_prior_mean_shading_and_visited():
  means = np.zeros(TINY.shape)
  means[1, 2], means[1, 3], means[1, 4] = 0.0, 0.5, 1.0
  means[TINY] = np.nan                                   # walls are ignored
  img = viz.waypoints_image(TINY, [(5, 5)], prior_means=means, scale=S)
  assert colour_at(img, (1, 2)) == viz.FLOOR
  assert colour_at(img, (1, 4)) == viz.PRIOR_HIGH
  half = tuple(int(round((a + b) / 2)) for a, b in zip(viz.FLOOR, viz.PRIOR_HIGH))
  assert np.all(np.abs(np.subtract(colour_at(img, (1, 3)), half)) <= 1)
  visited = np.zeros(TINY.shape, bool)
  visited[1, 1:4] = True
  img = viz.waypoints_image(TINY, [], visited=visited, scale=S)
  assert colour_at(img, (1, 2)) == viz.FLOOR and colour_at(img, (5, 3)) == viz.UNVISITED


def test_graph_image_draws_edge_paths():
  # Edges (1,1) <-> (1,5) along row 1 (both ways) and (1,5) -> (5,5) down column 5 (one way).
  edges = [graph_lib.Edge(0, 1, (3,) * 4, [(1, c) for c in range(1, 6)], 4),
           graph_lib.Edge(1, 0, (2,) * 4, [(1, c) for c in range(5, 0, -1)], 4),
           graph_lib.Edge(1, 2, (1,) * 4, [(r, 5) for r in range(1, 6)], 4)]
  graph = graph_lib.WorldGraph('tiny', [(1, 1), (1, 5), (5, 5)], edges)
  img = viz.graph_image(None, graph, scale=S)
  assert img.shape == (7 * S, 7 * S, 3)
  for cell in graph.nodes:
    assert colour_at(img, cell) == viz.WAYPOINT
  for cell in [(1, 2), (1, 3), (1, 4)]:
    assert colour_at(img, cell) == viz.EDGE
  for cell in [(2, 5), (3, 5), (4, 5)]:
    assert colour_at(img, cell) == viz.ONE_WAY_EDGE
  # No edge reaches (5,1): it stays floor; walls stay walls.
  assert colour_at(img, (5, 1)) == viz.FLOOR and colour_at(img, (2, 2)) == viz.WALL
  with pytest.raises(ValueError, match='another maze'):
    viz.graph_image('small', graph)


def test_episode_image_goals_objects_and_path():
  env = maze.BatchMaze(1, 'tiny', 'multigoal', seeds=0, num_balls=2)
  frames = [env.observe()[0]]
  for a in (3, 3, 1, 1):                                  # right, right, down, down (blocked moves stay)
    frames.append(env.step([a])[0][0])
  frames = np.stack(frames)
  cells = viz.trajectory_cells(frames)
  np.testing.assert_array_equal(cells[0], (1, 1))
  balls = [tuple(c) for c in np.argwhere(frames[0][..., maze.BALL_PLANE] > 0)]
  img = viz.episode_image(None, frames, goals=[(0, (1, 5), (1, 4)), (2, (5, 5), (4, 5))], scale=S)
  assert img.shape == (7 * S, 7 * S, 3)
  assert colour_at(img, (1, 4)) == viz.NARROW_GOAL and colour_at(img, (4, 5)) == viz.NARROW_GOAL
  r0, c0 = 1 * S, 5 * S                                   # g^w (1,5): its border is blue
  assert tuple(img[r0, c0 + S // 2]) == viz.WIDE_GOAL and tuple(img[r0 + S // 2, c0 + S - 1]) == viz.WIDE_GOAL
  assert colour_at(img, (5, 5)) == viz.OBJECTS[maze.EXIT_PLANE]
  for ball in balls:
    if ball not in [tuple(c) for c in cells] and ball not in [(1, 4), (4, 5)]:
      assert colour_at(img, ball) == viz.OBJECTS[maze.BALL_PLANE]
  # The path passes through the cell centre of (1,2) in the path colours (teal, between start and end).
  path_pixel = np.asarray(colour_at(img, (1, 2)), float)
  lo = np.minimum(viz.PATH_START, viz.PATH_END)
  hi = np.maximum(viz.PATH_START, viz.PATH_END)
  assert np.all(path_pixel >= lo) and np.all(path_pixel <= hi)
  assert colour_at(img, tuple(cells[-1])) == viz.END_DISK
  # Cells as the trajectory give the same picture without objects, with the walls given.
  plain = viz.episode_image(TINY, cells, scale=S)
  assert colour_at(plain, (5, 5)) == viz.FLOOR


def test_bad_input_is_one_clear_error():
  with pytest.raises(ValueError, match=r'waypoints\[1\] = \(2, 2\) is a wall'):
    viz.waypoints_image(TINY, [(1, 1), (2, 2)])
  with pytest.raises(ValueError, match=r'waypoints\[0\] = \(9, 1\) lies outside the 7x7'):
    viz.waypoints_image(TINY, [(9, 1)])
  with pytest.raises(ValueError, match=r'prior_means must be one value per maze cell, shape \(7, 7\)'):
    viz.waypoints_image(TINY, [], prior_means=np.zeros((5, 5)))
  with pytest.raises(ValueError, match=r'prior_means\[1, 1\]'):
    means = np.zeros((7, 7))
    means[1, 1] = np.nan
    viz.waypoints_image(TINY, [], prior_means=means)
  with pytest.raises(ValueError, match='scale'):
    viz.waypoints_image(TINY, [], scale=0)
  with pytest.raises(ValueError, match=r'goals\[0\]: t = 9'):
    viz.episode_image(TINY, [(1, 1), (1, 2)], goals=[(9, (1, 1), (1, 1))])
  with pytest.raises(ValueError, match='walls=None'):
    viz.episode_image(None, [(1, 1)])


def test_pngs_written(tmp_path):
  graph = graph_lib.form_edges('tiny', [(1, 1), (1, 5), (5, 1), (5, 5)], walks_per_node=8, rng=0)
  early = viz.waypoints_image(TINY, graph.nodes, scale=S)
  late = viz.waypoints_image(TINY, graph.nodes[:2], scale=S)
  both = viz.side_by_side([early, late], pad=4)
  assert both.shape == (7 * S, 14 * S + 4, 3)
  paths = [viz.save(both, str(tmp_path / 'fig' / 'waypoints.png')),
           viz.save_waypoints(str(tmp_path / 'w.png'), TINY, graph.nodes, scale=S),
           viz.save_graph(str(tmp_path / 'graph.png'), graph, scale=S),
           viz.save_episode(str(tmp_path / 'episode.png'), TINY, [(1, 1), (1, 2), (1, 3)],
                            goals=[(0, (1, 5), (1, 3))], scale=S)]
  for path in paths:
    with Image.open(path) as im:
      back = np.asarray(im.convert('RGB'))
    assert back.shape[2] == 3 and back.shape[0] == 7 * S
  with Image.open(paths[0]) as im:
    np.testing.assert_array_equal(np.asarray(im.convert('RGB')), both)
  with pytest.raises(ValueError, match='uint8'):
    viz.save(both.astype(np.float32), str(tmp_path / 'x.png'))
