"""Pictures of Chapter 3's world graphs: waypoints (Fig. 3.D.1), the graph, and an HRL episode with its goals.

Issue 11 (PNGs): the learned waypoints at iteration 100 and at the end of phase 1 (thesis Fig. 3.D.1, T:L3095-3103:
"the 2D grid environments ... with the learned waypoints in blue"), the world graph (Sec. 3.3.3), and an HRL episode
with the Manager's goals drawn (Sec. 3.4); spec ch3 Sec. 8 item 22. Pure NumPy drawing into uint8 RGB arrays (no
plotting library); `save` writes PNGs through core/images.save_png.

Every picture is a uint8 [H * scale, W * scale, 3] array: maze cell (r, c) covers the pixel rows r*scale ..
(r+1)*scale - 1 and columns c*scale .. (c+1)*scale - 1, so the pixel at (r*scale + scale//2, c*scale + scale//2) is
the cell's centre (`cell_centre`). Walls are dark, floor light; with scale >= 6 a one-pixel light-grey line marks
the floor cells' borders.

  waypoints_image   walls dark; free cells shaded from floor white (prior mean 0) to orange (prior mean 1) by the
                    VAE's prior mean alpha / (alpha + beta) (the waypoint score, T:L2253-2256) when given; cells
                    the exploration never visited light grey when `visited` is given (and no prior means);
                    waypoints as blue squares.
  graph_image       the waypoints as blue squares and each edge as a line through the centres of its path's cells:
                    orange where both directions are edges, grey-violet with a dot near the destination where only
                    one is.
  episode_image     the episode's start objects (balls green, exit purple, lava red, key yellow, locked door brown,
                    open door tan), the agent's path as a line from light to dark teal (start: a green ring, end: a
                    dark disk), and each Manager decision (t, g^w, g^n) as a blue square outline around g^w and a
                    magenta disk on g^n.
"""

from typing import Iterable, Optional, Sequence, Tuple

import numpy as np

from rlcv_tf.core import images
from rlcv_tf.envs import maze as maze_env
from rlcv_tf.worldgraph import graph as graph_lib

DEFAULT_SCALE = 16

WALL = (38, 38, 46)
FLOOR = (246, 246, 246)
GRID_LINE = (214, 214, 214)
UNVISITED = (200, 200, 200)
PRIOR_HIGH = (250, 160, 30)          # prior mean 1
WAYPOINT = (25, 85, 230)             # Fig. 3.D.1: waypoints in blue
EDGE = (235, 110, 40)
ONE_WAY_EDGE = (150, 120, 190)
PATH_START = (150, 220, 215)
PATH_END = (0, 95, 90)
START_RING = (40, 170, 60)
END_DISK = (20, 20, 20)
WIDE_GOAL = WAYPOINT
NARROW_GOAL = (225, 30, 160)
OBJECTS = {                          # observation plane -> colour (envs/maze.py PLANES)
    maze_env.BALL_PLANE: (40, 170, 60),
    maze_env.EXIT_PLANE: (130, 60, 170),
    maze_env.LAVA_PLANE: (220, 40, 40),
    maze_env.KEY_PLANE: (235, 200, 30),
    maze_env.LOCKED_PLANE: (140, 85, 35),
    maze_env.OPEN_PLANE: (205, 175, 125),
}


# ------------------------------------------------------------------------------------------------ checks

def _walls(walls, name: str = 'walls') -> np.ndarray:
  try:
    out = graph_lib.as_walls(walls)
  except ValueError as e:
    raise ValueError(f'{name}: {e}') from None
  if out.shape[0] < 2 or out.shape[1] < 2:
    raise ValueError(f'{name}: a maze of at least 2 x 2 cells is needed, got {out.shape}')
  return out


def _scale(scale) -> int:
  if int(scale) < 1:
    raise ValueError(f'scale must be >= 1 pixel per cell, got {scale}')
  return int(scale)


def _cells(cells, shape, name: str, walls: Optional[np.ndarray] = None) -> np.ndarray:
  """int [N, 2] (row, col) cells inside the grid (and, given walls, on floor)."""
  arr = np.asarray(cells, dtype=np.int64)
  if arr.size == 0:
    return np.zeros((0, 2), np.int64)
  if arr.ndim != 2 or arr.shape[1] != 2:
    raise ValueError(f'{name} must be (row, col) pairs [N, 2], got shape {arr.shape}')
  for n, (r, c) in enumerate(arr.tolist()):
    if not (0 <= r < shape[0] and 0 <= c < shape[1]):
      raise ValueError(f'{name}[{n}] = ({r}, {c}) lies outside the {shape[0]}x{shape[1]} maze; cells are (row, col) '
                       f'with 0 <= row < {shape[0]} and 0 <= col < {shape[1]}')
    if walls is not None and walls[r, c]:
      raise ValueError(f'{name}[{n}] = ({r}, {c}) is a wall cell; give floor cells (is the maze the right one?)')
  return arr


def _grid_array(values, shape, name: str) -> np.ndarray:
  arr = np.asarray(values)
  if arr.shape != tuple(shape):
    raise ValueError(f'{name} must be one value per maze cell, shape {tuple(shape)}, got {arr.shape}')
  return arr


# ------------------------------------------------------------------------------------------------ primitives

def cell_centre(cell, scale: int = DEFAULT_SCALE) -> Tuple[int, int]:
  """Pixel (row, col) of a cell's centre."""
  return int(cell[0]) * scale + scale // 2, int(cell[1]) * scale + scale // 2


def _centre_f(cell, scale: int) -> np.ndarray:
  return np.array(cell_centre(cell, scale), np.float64)


def _fill_cell(img: np.ndarray, cell, colour, scale: int, inset: int = 0) -> None:
  r0, c0 = int(cell[0]) * scale + inset, int(cell[1]) * scale + inset
  r1, c1 = (int(cell[0]) + 1) * scale - inset, (int(cell[1]) + 1) * scale - inset
  if r1 > r0 and c1 > c0:
    img[r0:r1, c0:c1] = colour


def _outline_cell(img: np.ndarray, cell, colour, scale: int, thickness: int) -> None:
  r0, c0 = int(cell[0]) * scale, int(cell[1]) * scale
  t = max(1, min(thickness, scale // 2))
  img[r0:r0 + t, c0:c0 + scale] = colour
  img[r0 + scale - t:r0 + scale, c0:c0 + scale] = colour
  img[r0:r0 + scale, c0:c0 + t] = colour
  img[r0:r0 + scale, c0 + scale - t:c0 + scale] = colour


def _disk(img: np.ndarray, centre, radius: float, colour) -> None:
  cy, cx = float(centre[0]), float(centre[1])
  r0, r1 = max(0, int(np.floor(cy - radius))), min(img.shape[0], int(np.ceil(cy + radius)) + 1)
  c0, c1 = max(0, int(np.floor(cx - radius))), min(img.shape[1], int(np.ceil(cx + radius)) + 1)
  yy, xx = np.mgrid[r0:r1, c0:c1]
  img[r0:r1, c0:c1][(yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2] = colour


def _ring(img: np.ndarray, centre, radius: float, width: float, colour) -> None:
  cy, cx = float(centre[0]), float(centre[1])
  r0, r1 = max(0, int(np.floor(cy - radius))), min(img.shape[0], int(np.ceil(cy + radius)) + 1)
  c0, c1 = max(0, int(np.floor(cx - radius))), min(img.shape[1], int(np.ceil(cx + radius)) + 1)
  yy, xx = np.mgrid[r0:r1, c0:c1]
  d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
  img[r0:r1, c0:c1][(d <= radius) & (d >= radius - width)] = colour


def _segment(img: np.ndarray, p0, p1, width: float, colour) -> None:
  """Pixels within width / 2 of the segment p0 -> p1 (pixel (row, col) coordinates)."""
  p0, p1 = np.asarray(p0, np.float64), np.asarray(p1, np.float64)
  half = max(width / 2.0, 0.5)
  r0 = max(0, int(np.floor(min(p0[0], p1[0]) - half)))
  r1 = min(img.shape[0], int(np.ceil(max(p0[0], p1[0]) + half)) + 1)
  c0 = max(0, int(np.floor(min(p0[1], p1[1]) - half)))
  c1 = min(img.shape[1], int(np.ceil(max(p0[1], p1[1]) + half)) + 1)
  yy, xx = np.mgrid[r0:r1, c0:c1]
  d = p1 - p0
  length2 = float(d @ d)
  if length2 == 0.0:
    t = np.zeros_like(yy, np.float64)
  else:
    t = np.clip(((yy - p0[0]) * d[0] + (xx - p0[1]) * d[1]) / length2, 0.0, 1.0)
  dist2 = (yy - (p0[0] + t * d[0])) ** 2 + (xx - (p0[1] + t * d[1])) ** 2
  img[r0:r1, c0:c1][dist2 <= half ** 2] = colour


def _lerp(a, b, t: float) -> Tuple[int, int, int]:
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return tuple(int(v) for v in np.round(a + (b - a) * float(t)))


def _line_width(scale: int) -> float:
  return max(1.0, scale / 6.0)


def _base(walls: np.ndarray, scale: int, floor_colours: Optional[np.ndarray] = None) -> np.ndarray:
  """The maze: walls dark, floor cells in `floor_colours` [H, W, 3] (default FLOOR), grid lines when scale >= 6."""
  h, w = walls.shape
  colours = np.empty((h, w, 3), np.uint8)
  colours[:] = FLOOR if floor_colours is None else floor_colours
  colours[walls] = WALL
  img = np.repeat(np.repeat(colours, scale, axis=0), scale, axis=1)
  if scale >= 6:
    border = np.zeros((scale, scale), bool)
    border[0, :] = border[:, 0] = True
    lines = np.tile(border, (h, w)) & ~np.repeat(np.repeat(walls, scale, axis=0), scale, axis=1)
    img[lines] = GRID_LINE
  return img


# ------------------------------------------------------------------------------------------------ pictures

def waypoints_image(walls, waypoints, prior_means=None, visited=None, scale: int = DEFAULT_SCALE) -> np.ndarray:
  """Fig. 3.D.1: the maze with the waypoints in blue (module docstring); uint8 [H * scale, W * scale, 3].

  Args:
    walls: the maze (bool [H, W], a size name, maze text, rows or a Layout).
    waypoints: int [K, 2] floor cells (V_p).
    prior_means: optional float [H, W] in [0, 1], the prior mean of every cell (values on walls are ignored).
    visited: optional bool [H, W], the cells the exploration visited (drawn when prior_means is None).
    scale: pixels per cell.
  """
  walls = _walls(walls)
  scale = _scale(scale)
  floor = np.empty(walls.shape + (3,), np.float64)
  floor[:] = FLOOR
  if prior_means is not None:
    means = _grid_array(prior_means, walls.shape, 'prior_means').astype(np.float64)
    bad = ~walls & ~np.isfinite(means)
    if np.any(bad):
      r, c = np.argwhere(bad)[0]
      raise ValueError(f'prior_means[{r}, {c}] is {means[r, c]}: give a finite prior mean for every floor cell')
    t = np.clip(np.where(walls, 0.0, means), 0.0, 1.0)[..., None]
    floor = np.asarray(FLOOR, np.float64) * (1.0 - t) + np.asarray(PRIOR_HIGH, np.float64) * t
  elif visited is not None:
    seen = _grid_array(visited, walls.shape, 'visited').astype(bool)
    floor[~seen] = UNVISITED
  img = _base(walls, scale, np.round(floor).astype(np.uint8))
  inset = max(1, scale // 8) if scale >= 6 else 0
  for cell in _cells(waypoints, walls.shape, 'waypoints', walls):
    _fill_cell(img, cell, WAYPOINT, scale, inset)
  return img


def graph_image(walls, graph: graph_lib.WorldGraph, scale: int = DEFAULT_SCALE) -> np.ndarray:
  """The world graph: edges as lines along their cell paths, waypoints in blue (module docstring).

  `walls` may be None (the graph's own maze); otherwise it must be the graph's maze.
  """
  own = np.asarray(graph.walls, bool)
  walls = own if walls is None else _walls(walls)
  if walls.shape != own.shape or not np.array_equal(walls, own):
    raise ValueError('graph_image: the graph was made on another maze than `walls`; pass walls=None (the graph\'s '
                     'own maze) or the graph built for this maze')
  scale = _scale(scale)
  img = _base(walls, scale)
  width = _line_width(scale)
  edges = graph.edges
  for (i, j), edge in edges.items():
    both = (j, i) in edges
    if both and j < i:
      continue                                     # drawn once, with its reverse
    colour = EDGE if both else ONE_WAY_EDGE
    centres = [_centre_f(cell, scale) for cell in edge.cells]
    for p0, p1 in zip(centres[:-1], centres[1:]):
      _segment(img, p0, p1, width, colour)
    if not both and len(centres) >= 2:           # a dot three quarters along the last step: the direction
      _disk(img, centres[-2] + 0.75 * (centres[-1] - centres[-2]), width, colour)
  inset = max(1, scale // 4) if scale >= 6 else 0
  for cell in graph.nodes:
    _fill_cell(img, cell, WAYPOINT, scale, inset)
  return img


def trajectory_cells(frames) -> np.ndarray:
  """int [T + 1, 2]: the agent's cell in each observation of uint8 [T + 1, H, W, 9] frames."""
  frames = np.asarray(frames)
  if frames.ndim != 4 or frames.shape[-1] != maze_env.NUM_PLANES:
    raise ValueError(f'frames must be maze observations [T + 1, H, W, {maze_env.NUM_PLANES}], got {frames.shape}')
  agent = frames[..., maze_env.AGENT_PLANE].reshape(len(frames), -1)
  counts = agent.sum(axis=1)
  if np.any(counts != 1):
    t = int(np.flatnonzero(counts != 1)[0])
    raise ValueError(f'frames[{t}] has {int(counts[t])} agent cells; each observation needs exactly one')
  flat = agent.argmax(axis=1)
  return np.stack([flat // frames.shape[2], flat % frames.shape[2]], axis=-1).astype(np.int64)


def episode_image(walls, trajectory, goals: Iterable[Tuple[int, Sequence[int], Sequence[int]]] = (),
                  objects=None, scale: int = DEFAULT_SCALE) -> np.ndarray:
  """An HRL episode with the Manager's goals drawn (module docstring); uint8 [H * scale, W * scale, 3].

  Args:
    walls: the maze; None to read the wall plane of the first frame (or of `objects`).
    trajectory: the agent's cells int [T + 1, 2], or the episode's observations uint8 [T + 1, H, W, 9].
    goals: (t, g^w cell, g^n cell) per Manager decision (t indexes the trajectory).
    objects: an observation uint8 [H, W, 9] whose balls, exit, lava, key and doors are drawn; default the first
      frame when `trajectory` is frames, else none.
    scale: pixels per cell.
  """
  traj = np.asarray(trajectory)
  if traj.ndim == 4:
    cells = trajectory_cells(traj)
    if objects is None:
      objects = traj[0]
  else:
    cells = traj
  if walls is None:
    if objects is None:
      raise ValueError('episode_image: walls=None needs frames or objects= to read the wall plane from')
    walls = np.asarray(objects)[..., maze_env.WALL_PLANE] > 0
  walls = _walls(walls)
  scale = _scale(scale)
  cells = _cells(cells, walls.shape, 'trajectory')
  if len(cells) == 0:
    raise ValueError('trajectory: give at least one cell (the start)')
  img = _base(walls, scale)
  if objects is not None:
    obs = np.asarray(objects)
    if obs.shape != walls.shape + (maze_env.NUM_PLANES,):
      raise ValueError(f'objects must be one observation {walls.shape + (maze_env.NUM_PLANES,)}, got {obs.shape}')
    inset = max(1, scale // 5) if scale >= 5 else 0
    for plane, colour in OBJECTS.items():
      for cell in np.argwhere(obs[..., plane] > 0):
        if plane in (maze_env.BALL_PLANE, maze_env.KEY_PLANE):
          _disk(img, _centre_f(cell, scale) - 0.5, scale / 2.0 - inset, colour)
        else:
          _fill_cell(img, cell, colour, scale, inset)
  width = _line_width(scale)
  steps = max(len(cells) - 1, 1)
  for t in range(len(cells) - 1):
    _segment(img, _centre_f(cells[t], scale), _centre_f(cells[t + 1], scale), width,
             _lerp(PATH_START, PATH_END, (t + 1) / steps))
  goal_list = list(goals)
  for n, goal in enumerate(goal_list):
    if len(goal) != 3:
      raise ValueError(f'goals[{n}] must be (t, g^w cell, g^n cell), got {goal!r}')
    t, wide, narrow = goal
    if not 0 <= int(t) < len(cells):
      raise ValueError(f'goals[{n}]: t = {t} is outside the trajectory (0..{len(cells) - 1})')
    wide, narrow = _cells([wide, narrow], walls.shape, f'goals[{n}] cells')
    _outline_cell(img, wide, WIDE_GOAL, scale, max(1, scale // 8))
    _disk(img, _centre_f(narrow, scale), max(1.0, scale / 4.0), NARROW_GOAL)
  _ring(img, _centre_f(cells[0], scale), scale * 0.42, max(1.0, scale / 8.0), START_RING)
  _disk(img, _centre_f(cells[-1], scale), max(1.0, scale / 5.0), END_DISK)
  return img


def side_by_side(pictures: Sequence[np.ndarray], pad: int = 8) -> np.ndarray:
  """Pictures of equal height next to each other with `pad` white columns between (e.g. iteration 100 | end)."""
  if not pictures:
    raise ValueError('side_by_side: give at least one picture')
  height = pictures[0].shape[0]
  for n, p in enumerate(pictures):
    if p.ndim != 3 or p.shape[0] != height or p.shape[2] != 3:
      raise ValueError(f'side_by_side: picture {n} has shape {p.shape}; all must be [{height}, W, 3] (same maze '
                       'and scale)')
  parts = []
  for p in pictures:
    parts.extend([p, np.full((height, pad, 3), 255, np.uint8)])
  return np.concatenate(parts[:-1], axis=1).astype(np.uint8)


# ------------------------------------------------------------------------------------------------ files

def save(picture: np.ndarray, path: str) -> str:
  """Writes a picture (uint8 [H', W', 3]) as PNG at `path`; returns the path."""
  picture = np.asarray(picture)
  if picture.dtype != np.uint8 or picture.ndim != 3 or picture.shape[2] != 3:
    raise ValueError(f'save: a picture is uint8 [H, W, 3], got {picture.dtype} {picture.shape}')
  return images.save_png(picture, path)


def save_waypoints(path: str, walls, waypoints, prior_means=None, visited=None, scale: int = DEFAULT_SCALE) -> str:
  """`waypoints_image` written to `path` (e.g. <logdir>/waypoints_iter100.png)."""
  return save(waypoints_image(walls, waypoints, prior_means, visited, scale), path)


def save_graph(path: str, graph: graph_lib.WorldGraph, scale: int = DEFAULT_SCALE) -> str:
  """`graph_image` (on the graph's own maze) written to `path` (e.g. <logdir>/graph.png)."""
  return save(graph_image(None, graph, scale), path)


def save_episode(path: str, walls, trajectory, goals=(), objects=None, scale: int = DEFAULT_SCALE) -> str:
  """`episode_image` written to `path`."""
  return save(episode_image(walls, trajectory, goals, objects, scale), path)
