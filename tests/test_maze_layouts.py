"""Chapter 3's maze layouts and their loader (rlcv_tf/envs/maze_layouts.py; spec ch3 Sec. 5.2, issue 11 Sec. 1).

Connectivity is checked with SciPy's component labelling, not with the module's own search.
"""

import numpy as np
import pytest
from scipy import ndimage

from rlcv_tf.envs import maze_layouts

FOUR = ndimage.generate_binary_structure(2, 1)     # 4-connectivity

# The spec's layouts as published (Sec. 5.2); small and large before their one opened wall cell.
SPEC_SMALL = """
#############
#.....#.....#
#####.#.###.#
#.......#...#
#.#######.#.#
#.........#.#
###########.#
#.......#...#
#.#.#####.###
#.......#...#
#.#.#.#.###.#
#.#...#.....#
#############
"""
SPEC_MEDIUM = """
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
SPEC_LARGE = """
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
#.......#.#.....#...#...#...#
#######.#.###.###.#####.###.#
#.......#.........#.......#.#
#.#########.#######.#.#.###.#
#.#.......#...#.#...#.....#.#
#.#.#####.###.#.#.###.###.#.#
#...#.........#.........#...#
#############################
"""


def grid(text):
  return np.array([[ch == '#' for ch in line.strip()] for line in text.strip().splitlines()])


def component_of(floor, cell):
  labels, _ = ndimage.label(floor, structure=FOUR)
  return labels == labels[cell]


@pytest.mark.parametrize('size, shape, free', [('tiny', (7, 7), 19), ('small', (13, 13), 75),
                                               ('medium', (21, 21), 213), ('large', (29, 29), 413)])
def test_shipped_layouts_are_connected_and_no_cell_hangs_off_the_exit(size, shape, free):
  layout = maze_layouts.get_layout(size)
  floor = ~layout.walls
  h, w = shape
  assert layout.walls.shape == shape and layout.num_free == free == floor.sum()
  assert layout.start == (1, 1) and layout.exit == (h - 2, w - 2) and floor[1, 1] and floor[h - 2, w - 2]
  assert layout.walls[0].all() and layout.walls[-1].all() and layout.walls[:, 0].all() and layout.walls[:, -1].all()
  assert component_of(floor, (1, 1)).sum() == free                        # all free cells 4-connected
  without_exit = floor.copy()
  without_exit[h - 2, w - 2] = False
  assert component_of(without_exit, (1, 1)).sum() == free - 1             # the exit cuts nothing off
  assert not layout.walls.flags.writeable
  assert np.array_equal(maze_layouts.parse_layout(layout.text()).walls, layout.walls)
  assert layout.free_cells() == [tuple(map(int, rc)) for rc in np.argwhere(floor)]


@pytest.mark.parametrize('size, spec_text, opened, cut_off, spec_free',
                         [('small', SPEC_SMALL, (6, 1), 28, 74), ('large', SPEC_LARGE, (21, 24), 38, 412)])
def test_spec_layouts_hang_cells_off_the_exit_and_ours_open_one_wall(size, spec_text, opened, cut_off, spec_free):
  spec = grid(spec_text)
  ours = maze_layouts.get_layout(size).walls
  assert (~spec).sum() == spec_free
  assert np.argwhere(spec != ours).tolist() == [list(opened)] and spec[opened] and not ours[opened]
  floor = ~spec
  h, w = spec.shape
  floor[h - 2, w - 2] = False
  assert (~spec).sum() - 1 - component_of(floor, (1, 1)).sum() == cut_off
  with pytest.raises(ValueError, match=rf'only through the exit \({h - 2}, {w - 2}\) \({cut_off} such cells'):
    maze_layouts.parse_layout(spec_text, name=size)


def test_medium_is_the_spec_layout_unchanged():
  assert np.array_equal(maze_layouts.get_layout('medium').walls, grid(SPEC_MEDIUM))
  assert (~grid(SPEC_MEDIUM)).sum() == 213


def test_small_cut_off_error_names_the_first_cell():
  with pytest.raises(ValueError, match=r"maze 'small': row 7, column 1 can be reached .* only through the exit "
                                       r'\(11, 11\).*open a wall'):
    maze_layouts.parse_layout(SPEC_SMALL, name='small')


GOOD = ['#####', '#...#', '#.#.#', '#...#', '#####']


def text(rows):
  return '\n'.join(rows)


def replaced(rows, r, c, ch):
  rows = list(rows)
  rows[r] = rows[r][:c] + ch + rows[r][c + 1:]
  return rows


@pytest.mark.parametrize('rows, pattern', [
    (GOOD[:4], r'has 4 rows; a side must be 5-64 cells'),
    (['#' * 5] + ['#' + '.' * 63 + '#'] * 63 + ['#' * 5], r'has 65 rows; a side must be 5-64'),
    (replaced(GOOD, 2, 4, '#.'), r'row 2 has 6 characters but row 0 has 5: make every row 5'),
    (['#' * 65] + ['#' + '.' * 63 + '#'] * 3 + ['#' * 65], r'has 65 columns; a side must be 5-64'),
    (replaced(GOOD, 2, 2, 'x'), r"row 2, column 2 holds 'x': use '#' for a wall and '.' for floor"),
    (replaced(GOOD, 0, 2, '.'), r"row 0, column 2 is floor on the border: the maze needs a ring of walls"),
    (replaced(GOOD, 2, 4, '.'), r'row 2, column 4 is floor on the border'),
    (replaced(GOOD, 1, 1, '#'), r"row 1, column 1 is a wall but it is the start: make it '.'"),
    (replaced(GOOD, 3, 3, '#'), r"row 3, column 3 is a wall but it is the exit: make it '.'"),
    (['#######', '#.#...#', '#.#.#.#', '#.#...#', '#.###.#', '#######'],
     r'row 1, column 3 cannot be reached from the start \(1, 1\) \(9 such cells.*open a wall'),
    (['#######', '#.....#', '#####.#', '#.....#', '#######'],
     r'row 3, column 1 can be reached from the start only through the exit \(3, 5\) \(4 such cells: \(3,1\), '
     r'\(3,2\), \(3,3\), \(3,4\)\), where episodes end: open a wall'),
])
def test_loader_refuses_bad_mazes_naming_row_column_and_fix(rows, pattern):
  with pytest.raises(ValueError, match=pattern):
    maze_layouts.parse_layout(text(rows), name='bad')


def test_loader_accepts_indentation_and_blank_lines_and_sizes():
  layout = maze_layouts.parse_layout('\n\n   #####\n   #...#\n   #.#.#\n   #...#\n   #####\n\n')
  assert layout.walls.shape == (5, 5) and layout.num_free == 8
  with pytest.raises(ValueError, match="unknown maze size 'huge'; valid: tiny, small, medium, large"):
    maze_layouts.get_layout('huge')
  assert maze_layouts.as_layout(layout) is layout
  assert maze_layouts.as_layout('small') is maze_layouts.get_layout('small')


def test_reachable_matches_scipy_on_every_layout():
  for size in maze_layouts.SIZES:
    layout = maze_layouts.get_layout(size)
    blocked = layout.free_cells()[len(layout.free_cells()) // 2]
    floor = ~layout.walls
    floor[blocked] = False
    assert np.array_equal(maze_layouts.reachable(layout.walls, (1, 1), blocked=[blocked]),
                          component_of(floor, (1, 1)))
