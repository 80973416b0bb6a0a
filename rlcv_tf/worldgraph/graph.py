"""World-graph edges and the planner over them (thesis Sec. 3.3.3, 3.4; spec ch3 Sec. 3.8, 4.7, 4.8, 5.5, 5.6).

Pure NumPy (no TensorFlow): the graph is built once per maze after phase 1 and read by the Chapter 3 tasks.

Edge formation (T:L2372-2387, spec Sec. 4.7). From every waypoint s_p, `walks_per_node` random walks of
`walk_length` moves (flags --edge_walks, default 64 [P], and --edge_walk_length, default 2T = 50 [P]), uniform over
the valid moves (spec Sec. 5.5). A walk claims the directed edge s_p -> s_q when s_q is the first waypoint other
than s_p that it reaches; its candidate path is the segment from the walk's last visit of s_p to that first arrival
at s_q, so no third waypoint lies on it ("a random walk trajectory from s_p to s_q that does not intersect a third
waypoint", T:L2378-2379). Walks that reach no other waypoint claim nothing. For each claimed edge a caller may add
pi_g's paths (s_p as start, s_q as goal; T:L2380-2381) through the `policy_paths` hook; they are replayed in the
maze, cut at their first arrival at s_q, and dropped if they never get there (only successful paths count). Every
candidate is loop-erased (a cycle, i.e. a cell visited twice, is cut out; valid because the world is deterministic
[P]) and the shortest one is kept (ties: the first found, walks before pi_g paths); its number of actions is the
edge's weight (T:L2382-2383). The graph is directed: s_p -> s_q and s_q -> s_p are claimed separately.
Learned (V_p), random (V_rand, T:L2638-2642, spec Sec. 3.7) and given waypoints (--waypoints=FILE.json) all get
this same edge formation.

Planning (T:L2384-2387, T:L2475-2478, spec Sec. 4.8): all-pairs shortest paths by Floyd-Warshall in NumPy over the
edge weights, giving the distance matrix D (inf where unreachable) and next_hop (-1 where unreachable), computed once
per graph. `route(i, j)` follows next_hop; `actions_along(route)` concatenates the edge actions, which a
deterministic maze replays exactly (T:L2481-2482).

graph.json (`WorldGraph.save` / `WorldGraph.load`; JSON, no pickle). Keys:
  "format":    "rlcv_tf.world_graph/1"
  "maze":      the maze rows as strings, '#' wall and '.' floor (the graph is valid only on this maze)
  "maze_name": the layout's name (informational)
  "nodes":     [[r, c], ...], the waypoint cells; a node's index is its position in this list
  "edges":     [{"src": i, "dst": j, "actions": [a, ...], "cells": [[r, c], ...], "weight": w}, ...], sorted by
               (src, dst); actions 0 up, 1 down, 2 left, 3 right; cells include both end points, so
               len(cells) = len(actions) + 1 and weight = len(actions)
  "distances": the |V| x |V| shortest-path lengths, null where j cannot be reached from i
`load` re-checks everything (each edge is replayed in the maze, distances recomputed) and refuses, with one
ValueError naming the file and the fix, a missing file, a file that is not such a graph, and (given `expect_maze`)
a graph made on another maze.

Also here: random and given waypoints (`random_waypoints`, `load_waypoints`, `parse_waypoints_flag`), random walks,
maze BFS helpers and `replay_prefix`, the spec Sec. 5.6 action sequences that reach every cell from the start.
"""

import collections
import dataclasses
import json
import os
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from rlcv_tf.envs import maze_layouts
from rlcv_tf.worldgraph.waypoints import waypoint_count  # noqa: F401  (k = round(0.2 |S_free|), re-exported)

Cell = Tuple[int, int]
Path = Tuple[Tuple[int, ...], Tuple[Cell, ...]]          # (actions, cells incl. both end points)
PolicyPaths = Union[Mapping[Tuple[int, int], Iterable[Sequence[int]]],
                    Callable[[Cell, Cell], Iterable[Sequence[int]]]]

GRAPH_FILE = 'graph.json'
FORMAT = 'rlcv_tf.world_graph/1'
LAUNCHER = 'python -m launchers.world_graph'
EDGE_WALKS = 64                  # K_rw, random walks per waypoint [P]
EDGE_WALK_LENGTH = 50            # L_rw = 2T moves per walk [P]
WAYPOINT_MODES = ('learned', 'random')
MOVES = np.array(maze_layouts.MOVES, np.int64)
NUM_MOVES = len(MOVES)


# ---------------------------------------------------------------------------------------------------------------
# Mazes, moves, walks.

def as_walls(maze) -> np.ndarray:
  """bool [H, W] walls from a `maze_layouts.Layout`, a size name, maze text, rows of '#'/'.' or a bool array."""
  if isinstance(maze, maze_layouts.Layout):
    return np.asarray(maze.walls, bool)
  if isinstance(maze, str):
    return np.asarray(maze_layouts.as_layout(maze).walls, bool)
  if isinstance(maze, (list, tuple)) and maze and all(isinstance(row, str) for row in maze):
    return walls_from_rows(maze)
  walls = np.asarray(maze)
  if walls.ndim != 2 or walls.dtype != bool:
    raise ValueError(f'a maze must be a Layout, a size name, maze text, rows of "#"/"." or a 2-D bool wall array; '
                     f'got {type(maze).__name__} {getattr(walls, "shape", "")}')
  return walls


def walls_from_rows(rows: Sequence[str], where: str = 'maze') -> np.ndarray:
  """bool [H, W] from rows of '#' (wall) and '.' (floor), e.g. graph.json's "maze"."""
  if not rows or not all(isinstance(row, str) for row in rows):
    raise ValueError(f'{where}: expected a non-empty list of row strings of "#" and ".", got {rows!r:.80}')
  width = len(rows[0])
  for r, row in enumerate(rows):
    if len(row) != width:
      raise ValueError(f'{where}: row {r} has {len(row)} characters but row 0 has {width}: make the rows equally long')
    bad = [c for c, ch in enumerate(row) if ch not in '#.']
    if bad:
      raise ValueError(f'{where}: row {r}, column {bad[0]} holds {row[bad[0]]!r}: use "#" for a wall and "." for floor')
  return np.array([[ch == '#' for ch in row] for row in rows], bool)


def maze_rows(walls: np.ndarray) -> List[str]:
  """The rows of `walls` as strings of '#' and '.'."""
  return [''.join('#' if w else '.' for w in row) for row in np.asarray(walls, bool)]


def _padded(walls: np.ndarray) -> np.ndarray:
  """`walls` with an extra wall ring, so that every move from a grid cell stays inside the array."""
  return np.pad(np.asarray(walls, bool), 1, constant_values=True)


def valid_moves(walls: np.ndarray) -> np.ndarray:
  """bool [H, W, 4]: move a (0 up, 1 down, 2 left, 3 right) from (r, c) changes the cell (the target is floor)."""
  pad = _padded(walls)
  h, w = walls.shape
  out = np.zeros((h, w, NUM_MOVES), bool)
  for a, (dr, dc) in enumerate(MOVES):
    out[..., a] = ~pad[1 + dr:1 + dr + h, 1 + dc:1 + dc + w]
  return out & ~np.asarray(walls, bool)[..., None]


def step_cells(walls: np.ndarray, cells: np.ndarray, actions: np.ndarray) -> np.ndarray:
  """int64 [N, 2]: the cells after `actions` [N] from `cells` [N, 2]; a move into a wall (or off the grid) stays."""
  cells = np.asarray(cells, np.int64).reshape(-1, 2)
  target = cells + MOVES[np.asarray(actions, np.int64).reshape(-1)]
  blocked = _padded(walls)[target[:, 0] + 1, target[:, 1] + 1]
  return np.where(blocked[:, None], cells, target)


def simulate(walls: np.ndarray, start: Cell, actions: Sequence[int]) -> List[Cell]:
  """The cells visited by replaying `actions` (moves 0-3) from `start` in the deterministic maze, start included."""
  cell = np.array([start], np.int64)
  out = [tuple(int(v) for v in start)]
  for k, a in enumerate(actions):
    if not (isinstance(a, (int, np.integer)) and 0 <= int(a) < NUM_MOVES):
      raise ValueError(f'action {k} of a path from {tuple(start)} is {a!r}: actions must be integer moves 0-3 '
                       '(up, down, left, right)')
    cell = step_cells(walls, cell, np.array([int(a)]))
    out.append((int(cell[0, 0]), int(cell[0, 1])))
  return out


def random_walks(maze, starts, length: int, rng=None,
                 valid_moves_only: bool = True) -> Tuple[np.ndarray, np.ndarray]:
  """N random walks of `length` moves at once: (cells int64 [N, length + 1, 2], actions int64 [N, length]).

  Args:
    maze: anything `as_walls` takes.
    starts: int [N, 2] start cells (floor).
    length: moves per walk.
    rng: a np.random.Generator or a seed.
    valid_moves_only: draw uniformly among the moves that change the cell (spec Sec. 5.5, switch
      rw_valid_moves_only); if False, uniformly among all 4 (a move into a wall stays in place).
  """
  walls = as_walls(maze)
  rng = np.random.default_rng(rng)
  cells = np.asarray(starts, np.int64).reshape(-1, 2)
  _check_floor(walls, cells, 'random walk start')
  n = len(cells)
  out_cells = np.empty((n, int(length) + 1, 2), np.int64)
  out_actions = np.empty((n, int(length)), np.int64)
  out_cells[:, 0] = cells
  valid = valid_moves(walls)
  for t in range(int(length)):
    if valid_moves_only:
      # Argmax of i.i.d. uniforms over the valid moves is a uniform draw among them (a cell with none bumps).
      u = rng.random((n, NUM_MOVES))
      u[~valid[cells[:, 0], cells[:, 1]]] = -1.0
      actions = np.argmax(u, axis=1)
    else:
      actions = rng.integers(NUM_MOVES, size=n)
    cells = step_cells(walls, cells, actions)
    out_actions[:, t] = actions
    out_cells[:, t + 1] = cells
  return out_cells, out_actions


def loop_erase(actions: Sequence[int], cells: Sequence[Cell]) -> Path:
  """Cuts every cycle out of a path (a cell seen again rewinds the path to its first visit); bumps vanish too.

  In a deterministic world the result is a valid path with the same end points that visits each cell once.
  """
  if len(cells) != len(actions) + 1:
    raise ValueError(f'a path needs one more cell than actions, got {len(cells)} cells and {len(actions)} actions')
  out_cells = [tuple(int(v) for v in cells[0])]
  out_actions: List[int] = []
  seen = {out_cells[0]: 0}
  for a, cell in zip(actions, cells[1:]):
    cell = (int(cell[0]), int(cell[1]))
    if cell in seen:
      k = seen[cell]
      for dropped in out_cells[k + 1:]:
        del seen[dropped]
      del out_cells[k + 1:]
      del out_actions[k:]
    else:
      seen[cell] = len(out_cells)
      out_cells.append(cell)
      out_actions.append(int(a))
  return tuple(out_actions), tuple(out_cells)


def bfs_distances(maze, source: Cell) -> np.ndarray:
  """int64 [H, W]: the fewest moves from `source` to each cell, -1 for walls and unreachable cells."""
  walls = as_walls(maze)
  dist = np.full(walls.shape, -1, np.int64)
  source = (int(source[0]), int(source[1]))
  _check_floor(walls, np.array([source]), 'BFS source')
  dist[source] = 0
  queue = collections.deque([source])
  valid = valid_moves(walls)
  while queue:
    r, c = queue.popleft()
    for a in range(NUM_MOVES):
      if valid[r, c, a]:
        nr, nc = r + int(MOVES[a, 0]), c + int(MOVES[a, 1])
        if dist[nr, nc] < 0:
          dist[nr, nc] = dist[r, c] + 1
          queue.append((nr, nc))
  return dist


def replay_prefix(maze, start: Cell = maze_layouts.START) -> Dict[Cell, Tuple[int, ...]]:
  """{cell: actions}: a shortest action sequence from `start` to each reachable floor cell (spec Sec. 5.6).

  The thesis restarts at a waypoint by replaying the actions that reached it (T:L2481-2482); in this deterministic
  maze replaying these from `start` lands on the cell (equivalent to `BatchMaze.set_agent`). Breadth-first, moves in
  action order, so the sequences are deterministic.
  """
  walls = as_walls(maze)
  start = (int(start[0]), int(start[1]))
  _check_floor(walls, np.array([start]), 'replay start')
  prefix = {start: ()}
  queue = collections.deque([start])
  valid = valid_moves(walls)
  while queue:
    r, c = queue.popleft()
    for a in range(NUM_MOVES):
      if valid[r, c, a]:
        nxt = (r + int(MOVES[a, 0]), c + int(MOVES[a, 1]))
        if nxt not in prefix:
          prefix[nxt] = prefix[(r, c)] + (a,)
          queue.append(nxt)
  return prefix


def _name_of(maze) -> str:
  """A layout's name, or the size name passed as the maze, else ''."""
  if isinstance(maze, maze_layouts.Layout):
    return maze.name
  return maze if isinstance(maze, str) and '\n' not in maze else ''


def _check_floor(walls: np.ndarray, cells: np.ndarray, what: str) -> None:
  h, w = walls.shape
  for r, c in np.asarray(cells).reshape(-1, 2):
    if not (0 <= r < h and 0 <= c < w) or walls[r, c]:
      raise ValueError(f'{what}: row {r}, column {c} is not a floor cell of the {h}x{w} maze: choose a floor cell')


# ---------------------------------------------------------------------------------------------------------------
# Waypoints: random (V_rand), given (--waypoints=FILE.json), checked.

def check_waypoints(maze, cells, where: str = 'waypoints') -> np.ndarray:
  """int64 [K, 2] after checking: K >= 1 distinct floor cells, each an integer [row, column] pair."""
  walls = as_walls(maze)
  h, w = walls.shape
  try:
    raw = list(cells)
  except TypeError:
    raise ValueError(f'{where}: expected a list of [row, column] cells, got {cells!r:.80}') from None
  if not raw:
    raise ValueError(f'{where}: the list of waypoints is empty: give at least one [row, column] floor cell')
  out, seen = [], {}
  for k, entry in enumerate(raw):
    pair = list(entry) if isinstance(entry, (list, tuple, np.ndarray)) else None
    if (pair is None or len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer))
                                              for v in pair)):
      raise ValueError(f'{where}: entry {k} is {entry!r}: each waypoint must be a [row, column] pair of integers')
    r, c = int(pair[0]), int(pair[1])
    if not (0 <= r < h and 0 <= c < w):
      raise ValueError(f'{where}: entry {k} [{r}, {c}] lies outside the {h}x{w} maze: use 0 <= row < {h}, '
                       f'0 <= column < {w}')
    if walls[r, c]:
      raise ValueError(f'{where}: entry {k} [{r}, {c}] is a wall: choose a floor cell')
    if (r, c) in seen:
      raise ValueError(f'{where}: entry {k} [{r}, {c}] repeats entry {seen[(r, c)]}: list each waypoint once')
    seen[(r, c)] = k
    out.append((r, c))
  return np.array(out, np.int64)


def random_waypoints(maze, count: int, rng=None) -> np.ndarray:
  """V_rand: `count` floor cells drawn uniformly without replacement (seeded), int64 [count, 2] in row-major order."""
  walls = as_walls(maze)
  free = np.argwhere(~walls)
  count = int(count)
  if not 1 <= count <= len(free):
    raise ValueError(f'random waypoints: count must be 1-{len(free)} (the floor cells), got {count}')
  pick = np.random.default_rng(rng).choice(len(free), size=count, replace=False)
  return free[np.sort(pick)].astype(np.int64)


def load_waypoints(path: str, maze) -> np.ndarray:
  """Given waypoints (--waypoints=FILE.json): a JSON list of [row, column] floor cells, int64 [K, 2] in file order."""
  where = f'--waypoints={path}'
  if not os.path.isfile(path):
    raise ValueError(f'{where}: no such file: write a JSON list of [row, column] cells there, e.g. [[1, 1], [3, 5]]')
  try:
    with open(path, encoding='utf-8') as f:
      cells = json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ValueError(f'{where}: not valid JSON ({e}): write a JSON list of [row, column] cells, e.g. '
                     '[[1, 1], [3, 5]]') from None
  if not isinstance(cells, list):
    raise ValueError(f'{where}: expected a JSON list of [row, column] cells, got a {type(cells).__name__}: write e.g. '
                     '[[1, 1], [3, 5]]')
  return check_waypoints(maze, cells, where=where)


def parse_waypoints_flag(value: str) -> Tuple[str, Optional[str]]:
  """--waypoints=learned|random|FILE.json -> ('learned', None), ('random', None) or ('file', FILE.json)."""
  if value in WAYPOINT_MODES:
    return value, None
  if isinstance(value, str) and value.endswith('.json'):
    return 'file', value
  raise ValueError(f'--waypoints={value!r}: use learned (the VAE\'s V_p), random (V_rand) or the path of a .json '
                   'file listing [row, column] cells')


# ---------------------------------------------------------------------------------------------------------------
# Edge formation.

def claim_edges(maze, waypoints, walks_per_node: int = EDGE_WALKS, walk_length: int = EDGE_WALK_LENGTH,
                rng=None, valid_moves_only: bool = True) -> Dict[Tuple[int, int], List[Path]]:
  """The random-walk half of edge formation: {(i, j): [loop-erased candidate paths]} for every claimed edge.

  From each waypoint i, `walks_per_node` walks of `walk_length` moves; a walk whose first other waypoint is j
  claims i -> j with the segment from its last visit of i to that arrival (module docstring). The walks of all
  waypoints are drawn together (waypoint order, then walk order), so a seed gives the same claims.
  """
  walls = as_walls(maze)
  nodes = check_waypoints(walls, waypoints)
  if int(walks_per_node) < 1:
    raise ValueError(f'--edge_walks (random walks per waypoint) must be >= 1, got {walks_per_node}')
  if int(walk_length) < 1:
    raise ValueError(f'--edge_walk_length (moves per edge random walk) must be >= 1, got {walk_length}')
  k = len(nodes)
  node_map = np.full(walls.shape, -1, np.int64)
  node_map[nodes[:, 0], nodes[:, 1]] = np.arange(k)
  src = np.repeat(np.arange(k), int(walks_per_node))
  cells, actions = random_walks(walls, nodes[src], int(walk_length), rng, valid_moves_only)
  visit = node_map[cells[..., 0], cells[..., 1]]                     # [N, L+1] node index or -1
  other = (visit >= 0) & (visit != src[:, None])
  hit = other.any(axis=1)
  first = np.argmax(other, axis=1)                                  # first arrival at another waypoint
  claims: Dict[Tuple[int, int], List[Path]] = {}
  for n in np.nonzero(hit)[0]:
    j = int(first[n])
    i = int(np.nonzero(visit[n, :j] == src[n])[0][-1])              # last visit of the source before it
    key = (int(src[n]), int(visit[n, j]))
    claims.setdefault(key, []).append(loop_erase(actions[n, i:j], cells[n, i:j + 1]))
  return dict(sorted(claims.items()))


def policy_candidates(maze, src_cell: Cell, dst_cell: Cell, paths: Iterable[Sequence[int]]) -> List[Path]:
  """pi_g's paths for one edge, replayed from `src_cell`, cut at the first arrival at `dst_cell`, loop-erased;
  paths that never reach `dst_cell` (failed rollouts) are dropped."""
  walls = as_walls(maze)
  dst_cell = (int(dst_cell[0]), int(dst_cell[1]))
  out = []
  for actions in paths:
    actions = [int(a) if isinstance(a, (int, np.integer)) else a for a in actions]
    cells = simulate(walls, src_cell, actions)
    if dst_cell not in cells:
      continue
    end = cells.index(dst_cell)
    out.append(loop_erase(actions[:end], cells[:end + 1]))
  return out


def form_edges(maze, waypoints, walks_per_node: int = EDGE_WALKS, walk_length: int = EDGE_WALK_LENGTH, rng=None,
               policy_paths: Optional[PolicyPaths] = None, valid_moves_only: bool = True,
               maze_name: str = '') -> 'WorldGraph':
  """The world graph over `waypoints` (spec Sec. 4.7): claims by random walks, pi_g paths added, shortest kept.

  Args:
    maze: anything `as_walls` takes (the base maze of phase 1).
    waypoints: int [K, 2] distinct floor cells (V_p, V_rand or a given list); node i is waypoints[i].
    walks_per_node: K_rw (--edge_walks).
    walk_length: L_rw (--edge_walk_length).
    rng: a np.random.Generator or a seed.
    policy_paths: extra (pi_g) paths for the claimed edges, either a mapping {(i, j): [action sequence, ...]} (node
      indices; entries for unclaimed pairs are ignored, so a caller may batch pi_g over `claim_edges`'s keys) or a
      function (src_cell, dst_cell) -> [action sequence, ...] called once per claimed edge in (i, j) order.
    valid_moves_only: the random-walk policy (spec Sec. 5.5).
    maze_name: stored in graph.json for information.
  """
  walls = as_walls(maze)
  nodes = check_waypoints(walls, waypoints)
  claims = claim_edges(walls, nodes, walks_per_node, walk_length, rng, valid_moves_only)
  edges = []
  for (i, j), candidates in claims.items():
    src_cell, dst_cell = tuple(map(int, nodes[i])), tuple(map(int, nodes[j]))
    if policy_paths is not None:
      extra = policy_paths(src_cell, dst_cell) if callable(policy_paths) else policy_paths.get((i, j), ())
      candidates = candidates + policy_candidates(walls, src_cell, dst_cell, extra)
    actions, cells = min(candidates, key=lambda path: len(path[0]))   # min keeps the first of equal lengths
    edges.append(Edge(i, j, actions, cells, len(actions)))
  return WorldGraph(walls, nodes, edges, maze_name=maze_name or _name_of(maze))


# ---------------------------------------------------------------------------------------------------------------
# The graph and its planner.

def floyd_warshall(weights) -> Tuple[np.ndarray, np.ndarray]:
  """All-pairs shortest paths: (distances float64 [n, n], inf if unreachable; next_hop int64 [n, n], -1 if unreachable).

  weights[i, j] is the length of edge i -> j (inf where there is none; must be >= 0; the diagonal is ignored, a
  node is at distance 0 from itself). next_hop[i, j] is the node after i on a shortest path to j (i itself for
  j = i). Only strict improvements replace a next hop, so the result is deterministic.
  """
  dist = np.array(weights, np.float64)
  if dist.ndim != 2 or dist.shape[0] != dist.shape[1]:
    raise ValueError(f'floyd_warshall: weights must be a square matrix, got shape {dist.shape}')
  if np.isnan(dist).any() or (dist < 0).any():
    raise ValueError('floyd_warshall: weights must be >= 0 (inf for no edge), got NaN or negative entries')
  n = len(dist)
  np.fill_diagonal(dist, 0.0)
  nxt = np.where(np.isfinite(dist), np.arange(n)[None, :], -1).astype(np.int64)
  for k in range(n):
    through = dist[:, k:k + 1] + dist[k:k + 1, :]
    better = through < dist
    dist = np.where(better, through, dist)
    nxt = np.where(better, nxt[:, k:k + 1], nxt)
  return dist, nxt


def follow_next_hop(next_hop: np.ndarray, i: int, j: int) -> List[int]:
  """The node list [i, ..., j] that `next_hop` (from `floyd_warshall`) gives; ValueError if j is unreachable."""
  n = len(next_hop)
  if next_hop[i, j] < 0:
    raise ValueError(f'no path from node {i} to node {j} in the world graph: check has_path(i, j) first')
  route = [int(i)]
  while route[-1] != j:
    route.append(int(next_hop[route[-1], j]))
    if len(route) > n:
      raise ValueError(f'next_hop has a cycle on the way from node {i} to node {j}')
  return route


@dataclasses.dataclass(frozen=True)
class Edge:
  """Directed edge src -> dst (node indices): its moves, the cells they visit (both end points included) and its
  weight, the number of moves."""
  src: int
  dst: int
  actions: Tuple[int, ...]
  cells: Tuple[Cell, ...]
  weight: int

  def __post_init__(self):
    object.__setattr__(self, 'src', int(self.src))
    object.__setattr__(self, 'dst', int(self.dst))
    object.__setattr__(self, 'actions', tuple(int(a) for a in self.actions))
    object.__setattr__(self, 'cells', tuple((int(r), int(c)) for r, c in self.cells))
    object.__setattr__(self, 'weight', int(self.weight))

  def to_json(self) -> dict:
    return {'src': self.src, 'dst': self.dst, 'actions': list(self.actions), 'cells': [list(c) for c in self.cells],
            'weight': self.weight}


class WorldGraph:
  """The world graph G_w: waypoint nodes, directed edges with their action paths, and the planner over them."""

  def __init__(self, maze, nodes, edges: Iterable[Edge], maze_name: str = ''):
    """Checks the graph (each edge replays in the maze from its source to its destination) and plans it.

    Args:
      maze: anything `as_walls` takes.
      nodes: int [K, 2] distinct floor cells; node i is nodes[i].
      edges: Edge objects (or a mapping whose values are Edges), at most one per (src, dst), src != dst.
      maze_name: the layout's name (stored in graph.json for information).
    """
    self._walls = as_walls(maze).copy()
    self._walls.setflags(write=False)
    self._maze_name = maze_name or _name_of(maze)
    self._nodes = tuple((int(r), int(c)) for r, c in check_waypoints(self._walls, nodes, 'world graph nodes'))
    self._index = {cell: i for i, cell in enumerate(self._nodes)}
    if isinstance(edges, Mapping):
      edges = edges.values()
    k = len(self._nodes)
    self._edges: Dict[Tuple[int, int], Edge] = {}
    for edge in edges:
      self._check_edge(edge)
      if (edge.src, edge.dst) in self._edges:
        raise ValueError(f'world graph: edge {edge.src}->{edge.dst} is given twice: keep one path per edge')
      self._edges[(edge.src, edge.dst)] = edge
    self._edges = dict(sorted(self._edges.items()))
    self._weights = np.full((k, k), np.inf)
    for (i, j), edge in self._edges.items():
      self._weights[i, j] = edge.weight
    self._dist, self._next = floyd_warshall(self._weights)
    for array in (self._weights, self._dist, self._next):
      array.setflags(write=False)

  def _check_edge(self, edge: Edge) -> None:
    k = len(self._nodes)
    name = f'world graph: edge {edge.src}->{edge.dst}'
    if not (0 <= edge.src < k and 0 <= edge.dst < k) or edge.src == edge.dst:
      raise ValueError(f'{name}: src and dst must be two different node indices in 0..{k - 1}')
    if len(edge.cells) != len(edge.actions) + 1 or edge.weight != len(edge.actions):
      raise ValueError(f'{name}: has {len(edge.actions)} actions, {len(edge.cells)} cells and weight {edge.weight}; '
                       'need len(cells) = len(actions) + 1 = weight + 1')
    if edge.cells[0] != self._nodes[edge.src] or edge.cells[-1] != self._nodes[edge.dst]:
      raise ValueError(f'{name}: its cells run from {edge.cells[0]} to {edge.cells[-1]} but the nodes are '
                       f'{self._nodes[edge.src]} and {self._nodes[edge.dst]}: the cells must start and end on them')
    replayed = simulate(self._walls, edge.cells[0], edge.actions)
    for t, (want, got) in enumerate(zip(edge.cells, replayed)):
      if want != got:
        raise ValueError(f'{name}: replaying its actions in the maze reaches {got} at step {t} but its cells say '
                         f'{want}: the path does not fit this maze')

  # Read-only views.
  @property
  def walls(self) -> np.ndarray:
    return self._walls

  @property
  def maze_name(self) -> str:
    return self._maze_name

  @property
  def nodes(self) -> Tuple[Cell, ...]:
    return self._nodes

  @property
  def num_nodes(self) -> int:
    return len(self._nodes)

  @property
  def edges(self) -> Dict[Tuple[int, int], Edge]:
    return dict(self._edges)

  @property
  def weights(self) -> np.ndarray:
    """float64 [K, K]: edge weights, inf where there is no edge (0 on the diagonal is not an edge)."""
    return self._weights

  @property
  def distances(self) -> np.ndarray:
    """float64 [K, K]: shortest-path lengths D, inf where unreachable."""
    return self._dist

  @property
  def next_hop(self) -> np.ndarray:
    """int64 [K, K]: the node after i on a shortest path to j, -1 where unreachable."""
    return self._next

  def index_of(self, cell) -> int:
    """The node index of a waypoint cell; ValueError if the cell is not a node."""
    key = (int(cell[0]), int(cell[1]))
    if key not in self._index:
      raise ValueError(f'cell {key} is not a waypoint of the world graph')
    return self._index[key]

  def is_node(self, cell) -> bool:
    return (int(cell[0]), int(cell[1])) in self._index

  def neighbours(self, i: int) -> List[int]:
    """The out-neighbours j of node i (edges i -> j), ascending."""
    return [j for (s, j) in self._edges if s == i]

  def has_path(self, i: int, j: int) -> bool:
    return bool(np.isfinite(self._dist[i, j]))

  def route(self, i: int, j: int) -> List[int]:
    """Node indices [i, ..., j] of a shortest path; ValueError if there is none (see `has_path`)."""
    return follow_next_hop(self._next, int(i), int(j))

  def actions_along(self, route: Sequence[int]) -> List[int]:
    """The edge actions along consecutive nodes of `route`, concatenated."""
    return [a for edge in self._route_edges(route) for a in edge.actions]

  def cells_along(self, route: Sequence[int]) -> List[Cell]:
    """The cells visited along `route` from its first node to its last (each joint cell once)."""
    cells = [self._nodes[int(route[0])]] if len(route) else []
    for edge in self._route_edges(route):
      cells.extend(edge.cells[1:])
    return cells

  def _route_edges(self, route: Sequence[int]) -> List[Edge]:
    out = []
    for a, b in zip(route[:-1], route[1:]):
      if (int(a), int(b)) not in self._edges:
        raise ValueError(f'route {list(route)} uses {a}->{b}, which is not an edge of the world graph')
      out.append(self._edges[(int(a), int(b))])
    return out

  # graph.json.
  def to_json(self) -> dict:
    return {
        'format': FORMAT,
        'maze': maze_rows(self._walls),
        'maze_name': self._maze_name,
        'nodes': [list(c) for c in self._nodes],
        'edges': [edge.to_json() for edge in self._edges.values()],
        'distances': [[int(d) if np.isfinite(d) else None for d in row] for row in self._dist],
    }

  def save(self, path: str) -> str:
    """Writes graph.json (into `path` if it is a directory or does not end in .json) and returns the file name."""
    file = graph_file(path)
    os.makedirs(os.path.dirname(file) or '.', exist_ok=True)
    tmp = file + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
      json.dump(self.to_json(), f, separators=(',', ':'))
      f.write('\n')
    os.replace(tmp, file)
    return file

  @classmethod
  def from_json(cls, data, where: str = 'graph.json') -> 'WorldGraph':
    """A graph from `to_json`'s dict; ValueError naming `where`, the entry and the fix if it is not one."""
    fix = f'rebuild it with {LAUNCHER}'
    if not isinstance(data, dict) or data.get('format') != FORMAT:
      raise ValueError(f'{where} is not a world graph (no "format": "{FORMAT}"): {fix}')
    for key in ('maze', 'nodes', 'edges', 'distances'):
      if key not in data:
        raise ValueError(f'{where} has no "{key}": {fix}')
    try:
      walls = walls_from_rows(data['maze'], where=f'{where} "maze"')
      edges = []
      if not isinstance(data['edges'], list):
        raise ValueError('"edges" must be a list of {src, dst, actions, cells, weight}')
      for n, entry in enumerate(data['edges']):
        if not isinstance(entry, dict) or set(entry) != {'src', 'dst', 'actions', 'cells', 'weight'}:
          raise ValueError(f'"edges"[{n}] must be an object with exactly src, dst, actions, cells and weight')
        try:
          edges.append(Edge(**entry))
        except (TypeError, ValueError) as e:
          raise ValueError(f'"edges"[{n}] has a malformed field ({e})') from None
      graph = cls(walls, data['nodes'], edges, maze_name=str(data.get('maze_name', '')))
    except ValueError as e:
      raise ValueError(f'{where}: {e}; {fix}') from None
    stored = data['distances']
    want = graph.to_json()['distances']
    if stored != want:
      raise ValueError(f'{where}: its "distances" differ from the shortest paths over its edges (edited or corrupt '
                       f'file): {fix}')
    return graph

  @classmethod
  def load(cls, path: str, expect_maze=None, flag: str = '') -> 'WorldGraph':
    """Reads graph.json from `path` (a directory, or the file itself).

    Args:
      path: the directory holding graph.json, or the .json file.
      expect_maze: if given (anything `as_walls` takes), the maze this run uses; a graph made on another maze is
        refused.
      flag: the flag that named `path` (e.g. '--graph_from'), to start error messages with.
    """
    file = graph_file(path)
    prefix = f'{flag}={path}: ' if flag else ''
    if not os.path.isfile(file):
      directory = os.path.dirname(file) or '.'
      raise ValueError(f'{prefix}{directory} has no {os.path.basename(file)}: build the world graph first '
                       f'({LAUNCHER} writes it into its output directory) and point to that directory')
    try:
      with open(file, encoding='utf-8') as f:
        data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
      raise ValueError(f'{prefix}{file} is not valid JSON ({e}): rebuild it with {LAUNCHER}') from None
    try:
      graph = cls.from_json(data, where=file)
    except ValueError as e:
      raise ValueError(f'{prefix}{e}') from None
    if expect_maze is not None:
      want = as_walls(expect_maze)
      if want.shape != graph.walls.shape or not np.array_equal(want, graph.walls):
        if want.shape != graph.walls.shape:
          (gh, gw), (wh, ww) = graph.walls.shape, want.shape
          detail = f'a {gh}x{gw} maze, this run uses {wh}x{ww}'
        else:
          r, c = (int(v) for v in np.argwhere(want != graph.walls)[0])
          detail = f'a maze that differs from this run\'s at row {r}, column {c}'
        name = _name_of(expect_maze)
        raise ValueError(f'{prefix}{file} was made on another maze ({graph.maze_name or "unnamed"}: {detail}): '
                         f'use the graph built for this maze{f" ({name})" if name else ""}, or rebuild it with '
                         f'{LAUNCHER} on this maze')
    return graph


def graph_file(path: str) -> str:
  """`path` itself if it names a .json file, else path/graph.json."""
  path = os.fspath(path)
  return path if path.endswith('.json') and not os.path.isdir(path) else os.path.join(path, GRAPH_FILE)
