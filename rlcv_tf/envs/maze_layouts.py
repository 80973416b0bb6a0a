"""The persistent mazes of Chapter 3 (world graphs) and their checking loader (spec ch3 Sec. 5.2, issue 11 Sec. 1).

The thesis shows its mazes only as pictures (Fig. 3.D.1) and gives no sizes, so the layouts are ours [P]: the spec's
small 13x13, medium 21x21 and large 29x29 (recursive-backtracker mazes with some loops, seeds 0, 1, 2), plus a
`tiny` 7x7 for unit tests. One maze per size is shared by phase 1 and every task: the world graph "is shared among
all tasks".

Text format (`parse_layout`): one line per row, `#` wall and `.` floor; surrounding blank lines and leading/trailing
spaces of each line are ignored. The start is (1, 1), the exit (H-2, W-2) (row, column, 0-based from the top left).
The loader refuses, with one ValueError naming the row, the column and the fix:
  * a side outside 5-64 cells, ragged rows, characters other than `#` and `.`;
  * a border cell that is not a wall (the wall ring keeps every move inside the grid);
  * a wall at the start or at the exit;
  * a free cell that cannot be reached from the start (4-connectivity);
  * a free cell that can be reached only through the exit. Stepping on the exit ends a MultiGoal episode, so a ball
    on such a cell could never be collected; the check is a breadth-first search from the start with the exit
    blocked, which must reach every other free cell.

The spec's small and large layouts fail the last check (the exit cuts off 28 and 38 cells), so each ships with one
wall cell opened, named in its comment. Free cells: tiny 19, small 75 (spec 74 + 1), medium 213 (unchanged),
large 413 (spec 412 + 1).
"""

import collections
import dataclasses
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np

MIN_SIDE, MAX_SIDE = 5, 64
WALL, FLOOR = '#', '.'
START = (1, 1)
SIZES = ('tiny', 'small', 'medium', 'large')
# Moves in action order: 0 up (r-1), 1 down (r+1), 2 left (c-1), 3 right (c+1).
MOVES = ((-1, 0), (1, 0), (0, -1), (0, 1))

Cell = Tuple[int, int]


@dataclasses.dataclass(frozen=True, eq=False)
class Layout:
  """One checked maze. `walls` is a read-only bool [H, W] array, True on walls."""
  name: str
  walls: np.ndarray

  @property
  def height(self) -> int:
    return self.walls.shape[0]

  @property
  def width(self) -> int:
    return self.walls.shape[1]

  @property
  def start(self) -> Cell:
    return START

  @property
  def exit(self) -> Cell:
    return (self.height - 2, self.width - 2)

  @property
  def num_free(self) -> int:
    """|S_free|, the number of floor cells (the states of the world graph)."""
    return int((~self.walls).sum())

  def free_cells(self) -> List[Cell]:
    """Floor cells in row-major order."""
    return [(int(r), int(c)) for r, c in zip(*np.nonzero(~self.walls))]

  def text(self) -> str:
    """The layout in the loader's format (`parse_layout(layout.text())` gives the same walls)."""
    return '\n'.join(''.join(WALL if w else FLOOR for w in row) for row in self.walls)


def reachable(walls: np.ndarray, source: Cell, blocked: Iterable[Cell] = ()) -> np.ndarray:
  """bool [H, W]: the floor cells reachable from `source` by 4-neighbour moves, never entering `blocked` cells.

  A breadth-first search; `walls` must have a wall ring (every neighbour of a floor cell is inside the grid).
  `source` itself is reachable when it is a floor cell and not blocked.
  """
  walls = np.asarray(walls, bool)
  closed = walls.copy()
  for r, c in blocked:
    closed[r, c] = True
  seen = np.zeros_like(closed)
  if closed[source]:
    return seen
  seen[source] = True
  queue = collections.deque([tuple(source)])
  while queue:
    r, c = queue.popleft()
    for dr, dc in MOVES:
      n = (r + dr, c + dc)
      if not closed[n] and not seen[n]:
        seen[n] = True
        queue.append(n)
  return seen


def _cells_text(cells: List[Cell], limit: int = 8) -> str:
  shown = ', '.join(f'({r},{c})' for r, c in cells[:limit])
  return shown + (f' and {len(cells) - limit} more' if len(cells) > limit else '')


def parse_layout(text: str, name: str = 'custom') -> Layout:
  """Parses and checks a maze written with `#` (wall) and `.` (floor); see the module docstring for the rules."""
  rows = [line.strip() for line in text.strip().splitlines()]
  where = f'maze {name!r}'
  height = len(rows)
  if not MIN_SIDE <= height <= MAX_SIDE:
    raise ValueError(f'{where} has {height} rows; a side must be {MIN_SIDE}-{MAX_SIDE} cells: add or remove rows')
  width = len(rows[0])
  for r, row in enumerate(rows):
    if len(row) != width:
      raise ValueError(f'{where}: row {r} has {len(row)} characters but row 0 has {width}: make every row '
                       f'{width} characters long')
  if not MIN_SIDE <= width <= MAX_SIDE:
    raise ValueError(f'{where} has {width} columns; a side must be {MIN_SIDE}-{MAX_SIDE} cells: add or remove '
                     'columns')
  for r, row in enumerate(rows):
    for c, ch in enumerate(row):
      if ch not in (WALL, FLOOR):
        raise ValueError(f'{where}: row {r}, column {c} holds {ch!r}: use {WALL!r} for a wall and {FLOOR!r} for '
                         'floor')
  walls = np.array([[ch == WALL for ch in row] for row in rows], bool)
  for r in range(height):
    for c in range(width):
      if (r in (0, height - 1) or c in (0, width - 1)) and not walls[r, c]:
        raise ValueError(f'{where}: row {r}, column {c} is floor on the border: the maze needs a ring of walls, '
                         f'make it {WALL!r}')
  exit_cell = (height - 2, width - 2)
  for label, (r, c) in (('start', START), ('exit', exit_cell)):
    if walls[r, c]:
      raise ValueError(f'{where}: row {r}, column {c} is a wall but it is the {label}: make it {FLOOR!r}')
  floor = ~walls
  unreachable = [(int(r), int(c)) for r, c in zip(*np.nonzero(floor & ~reachable(walls, START)))]
  if unreachable:
    r, c = unreachable[0]
    raise ValueError(f'{where}: row {r}, column {c} cannot be reached from the start {START} ({len(unreachable)} '
                     f'such cells: {_cells_text(unreachable)}): open a wall to connect it or make it {WALL!r}')
  around_exit = reachable(walls, START, blocked=[exit_cell])
  around_exit[exit_cell] = True
  cut_off = [(int(r), int(c)) for r, c in zip(*np.nonzero(floor & ~around_exit))]
  if cut_off:
    r, c = cut_off[0]
    raise ValueError(f'{where}: row {r}, column {c} can be reached from the start only through the exit '
                     f'{exit_cell} ({len(cut_off)} such cells: {_cells_text(cut_off)}), where episodes end: open a '
                     'wall so that the start reaches it another way, or make those cells walls')
  walls.setflags(write=False)
  return Layout(name=name, walls=walls)


# 19 free cells; the exit (5,5) is a dead end. Door-Key's divider column is 4, with door rows {1, 2, 3, 5}.
TINY = """
#######
#.....#
#.#.#.#
#.#...#
#.###.#
#.....#
#######
"""

# Spec Sec. 5.2 small (seed 0) with the wall at row 6, column 1 opened (75 free cells): in the spec's layout the
# 28 cells in rows 7-11 hang off the exit (11,11) and could be reached only through it.
SMALL = """
#############
#.....#.....#
#####.#.###.#
#.......#...#
#.#######.#.#
#.........#.#
#.#########.#
#.......#...#
#.#.#####.###
#.......#...#
#.#.#.#.###.#
#.#...#.....#
#############
"""

# Spec Sec. 5.2 medium (seed 1), unchanged (213 free cells).
MEDIUM = """
#####################
#.#.....#...........#
#.#####.#.#######.#.#
#.....#.....#.....#.#
#.#.#.#####.#.#####.#
#...#.....#.#.......#
#.#####.#.#.#.#.#.#.#
#.......#.#...#.#.#.#
#.#######.#.#.###.#.#
#...#.....#.#...#...#
#.#.#.#.#.#.###.#.###
#...#.#...#.........#
#.###.#######.###.#.#
#...#.........#...#.#
###.###########.###.#
#.........#...#...#.#
#.###.#.###.#.###.#.#
#.....#...#.#.....#.#
#.#.###.#.#.#######.#
#.......#...........#
#####################
"""

# Spec Sec. 5.2 large (seed 2) with the wall at row 21, column 24 opened (413 free cells): in the spec's layout 38
# cells in rows 21-27, columns 15-26 hang off the exit (27,27) and could be reached only through it.
LARGE = """
#############################
#.#.#.......#.....#.......#.#
#.#.#.#.###.#.#.###.#.###.#.#
#.#.......#...#.#.....#...#.#
#.###########.#.#.#.#.#.#.#.#
#.#...#.....#.#.....#.#.#...#
#.#.#.#.###.#.#.#.#.#.#.###.#
#...#.#.#.......#...#.....#.#
#####.#.#.#.###.###.#.#.###.#
#...#.....#...#.....#.#...#.#
#.#.#####.#.#.###.###.#.#.#.#
#.........#.#...#...#.#.#...#
#.#.#######.#.#.###.#.#.#.###
#.#...........#...#.#.#.....#
#.#########.#.###.#.#.#####.#
#.......#...#.#...#.#...#...#
#######.#.#.#.#.###.#.#.#.###
#.#.....#.#.#.#.#...#.#.#.#.#
#.#.#####.###.###.#.###.#.#.#
#...#.....#...#...#.....#.#.#
#.#####.#.#.###.###.#####.#.#
#.......#.#.....#...#.......#
#######.#.###.###.#####.###.#
#.......#.........#.......#.#
#.#########.#######.#.#.###.#
#.#.......#...#.#...#.....#.#
#.#.#####.###.#.#.###.###.#.#
#...#.........#.........#...#
#############################
"""

_TEXTS = {'tiny': TINY, 'small': SMALL, 'medium': MEDIUM, 'large': LARGE}
_CACHE: Dict[str, Layout] = {}


def get_layout(size: str) -> Layout:
  """The shipped layout of one size: 'tiny', 'small', 'medium' or 'large' (parsed and checked once)."""
  if size not in _TEXTS:
    raise ValueError(f'unknown maze size {size!r}; valid: {", ".join(SIZES)}')
  if size not in _CACHE:
    _CACHE[size] = parse_layout(_TEXTS[size], name=size)
  return _CACHE[size]


def load_maze(maze: str) -> Layout:
  """A shipped size ('tiny', 'small', 'medium', 'large') or a maze text file checked by `parse_layout`; a name that
  is neither, or an unreadable file, is one ValueError naming --maze."""
  if maze in SIZES:
    return get_layout(maze)
  try:
    with open(maze) as f:
      text = f.read()
  except OSError as e:
    raise ValueError(f'--maze={maze}: not one of {", ".join(SIZES)} and not a readable maze file '
                     f'({e.strerror}); a maze file has rows of # (wall) and . (floor)') from None
  try:
    return parse_layout(text, name=maze)
  except ValueError as e:
    raise ValueError(f'--maze={maze}: {e}') from None


def as_layout(maze, name: Optional[str] = None) -> Layout:
  """A `Layout` from a size name, maze text (with at least one newline) or a `Layout` (returned as is)."""
  if isinstance(maze, Layout):
    return maze
  if isinstance(maze, str) and '\n' in maze:
    return parse_layout(maze, name=name or 'custom')
  return get_layout(maze)
