"""Chapter 3's maze tasks (Table 3.1) as one batched NumPy engine, `BatchMaze`, and its N = 1 house adapter.

The thesis's mazes and tasks are the authors' own and unpublished (sizes and reward sizes are not given); this is
our engine after spec ch3 Sec. 5 and issue 11 Sec. 1, which overrides the spec where they differ. Not MiniGrid: its
agent has a heading (the thesis's states are cells), it has none of these tasks, and it steps one Python object at
a time. Here B mazes live in arrays ((B, 2) agent cells, (B, H, W) object planes) and one `step` moves all of them
with array operations; each env still has its own random generator, so env i of a batch behaves exactly as a single
env built with env i's seed (tests/test_maze_env.py checks this against a plain Python reference).

Maze: a `maze_layouts.Layout` (tiny 7x7, small 13x13, medium 21x21, large 29x29, or any checked text); start (1, 1),
exit (H-2, W-2). A cell is a (row, column) pair, 0-based from the top left.

Observation, uint8 [H, W, 9] per env, one 0/1 plane per thing (networks add their own coordinate planes):
  0 wall (in Door-Key including the episode's divider), 1 agent, 2 ball, 3 exit (absent in GoalReach), 4 lava,
  5 key (on the floor), 6 locked door, 7 open door, 8 carrying the key (the whole plane).
Actions: 0 up (r-1), 1 down (r+1), 2 left (c-1), 3 right (c+1); Door-Key adds 4 pick and 5 toggle. A move into a
wall or a locked door leaves the agent in place; it still costs a step (the wall ring keeps moves inside the grid).

Tasks (defaults are the spec's proposals [P]; every action costs `step_penalty`):
  goalreach             phase 1 (Fig. 3.D.2): no objects. +1 and terminal on reaching the goal; no step penalty;
                        horizon 25. The agent starts at (1, 1) and the goal is the exit cell unless the caller moves
                        them (`set_agent`, `set_goal`). The goal is not drawn: pi_g adds it as an extra plane.
  multigoal             6 balls on distinct uniform free cells other than the start and the exit. Stepping onto a
                        ball: +1, the ball is removed. Stepping onto the exit ends the episode (no bonus). -0.01/step.
  multigoal_sparse      as multigoal, but balls pay nothing when collected; on the exit the agent gets
                        n_collected / n_balls.
  multigoal_stochastic  multigoal plus lava: n_lava = max(1, round(0.03 |S_free|)) lava cells, drawn at reset and
                        re-drawn after every step among the free cells that are not the agent's, a ball or the exit.
                        Order within a step: move -> check lava (the lava the agent saw) -> re-draw. Moving onto
                        lava ends the episode (no extra penalty, no success).
  doorkey               per episode: a divider column c_d among the even columns in [W/3, 2W/3] becomes wall except a
                        locked door at row r_d, where (r_d, c_d-1) is reachable from the start and the exit from
                        (r_d, c_d+1); a key on a free cell of the start's side (not the start). pick on the key ->
                        carrying; toggle while carrying next to (4-adjacent) the locked door -> the door opens for
                        good, +1 (so only the first toggle pays). Exit: +1, terminal, success. The exit cannot be
                        reached while the door is locked. -0.01/step.
Episodes are cut (truncation, not termination) after `max_steps` actions: 25 in goalreach, else 100 / 200 / 500 /
1000 for tiny / small / medium / large.

Within a step the rules are applied to every env at once, in this order: move (or pick / toggle); then the cell
the agent stands on: ball, lava, exit/goal; then truncation; then the lava re-draw of the envs that go on; then
auto-reset of the envs that ended. The cell rules use the agent's cell after the action, so an agent placed on a
ball or the goal by `set_agent` collects or reaches it with its next action, whatever that action is.

Random draws, per env, from that env's own `np.random.Generator` (this order is the contract that makes a batched
env equal a single one; a per-env loop draws the numbers, array operations use them):
  reset, multigoal*: `rng.random(H*W)` priorities; the balls are the n_balls free candidates with the smallest;
  reset and every continuing step, multigoal_stochastic: `rng.random(H*W)` again; the lava cells are the n_lava
    candidates with the smallest priority (at reset after the balls);
  reset, doorkey: `rng.integers(len(columns))` for c_d among the columns that have a valid door row (uniform over
    them, which is what re-drawing a column without one gives), `rng.integers(len(rows))` for r_d, then
    `rng.integers(len(key_cells))` for the key among the start side's free cells (row-major, start excluded).
A generator is `np.random.default_rng(seed)`; `seeds=s` gives env i the seed s + i (gymnasium's convention).

Info (a dict of (B,) arrays; for an env whose episode ended this step they describe the episode that ended):
  episode_return, episode_length, balls_collected, door_opened: the episode so far;
  success: this step reached the exit (the goal in goalreach); lava: this step ended on lava;
  final_obs: (B, H, W, 9) observations before the auto-reset (Table 3.2 reads the mean return per episode for the
  MultiGoal tasks and the success rate for Door-Key).

`MazeEnv` is the house interface (`base.MultiAgentEnv`, N = 1) behind the registry names
`maze_{tiny,small,medium,large}_{task}`; `maze_gym` wraps the engine for gymnasium.
"""

import json
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import dm_env
import numpy as np
from dm_env import specs

from rlcv_tf.envs import base
from rlcv_tf.envs import maze_layouts

TASKS = ('goalreach', 'multigoal', 'multigoal_sparse', 'multigoal_stochastic', 'doorkey')
PLANES = ('wall', 'agent', 'ball', 'exit', 'lava', 'key', 'locked_door', 'open_door', 'carrying')
(WALL_PLANE, AGENT_PLANE, BALL_PLANE, EXIT_PLANE, LAVA_PLANE, KEY_PLANE, LOCKED_PLANE, OPEN_PLANE,
 CARRY_PLANE) = range(len(PLANES))
NUM_PLANES = len(PLANES)
UP, DOWN, LEFT, RIGHT, PICK, TOGGLE = range(6)
ACTION_NAMES = ('up', 'down', 'left', 'right', 'pick', 'toggle')
MOVES = np.array(maze_layouts.MOVES, np.int64)

STEP_PENALTY = -0.01
NUM_BALLS = 6
LAVA_FRACTION = 0.03
GOALREACH_HORIZON = 25
MAX_STEPS = {'tiny': 100, 'small': 200, 'medium': 500, 'large': 1000}

Cells = Union[Sequence[Sequence[int]], np.ndarray]


def default_num_lava(num_free: int) -> int:
  """n_lava = max(1, round(0.03 |S_free|)) (spec Sec. 5.4 [P]; Python's round)."""
  return max(1, round(LAVA_FRACTION * num_free))


def divider_columns(width: int) -> Tuple[int, ...]:
  """The even columns c with W/3 <= c <= 2W/3, where Door-Key may put its divider."""
  return tuple(c for c in range(0, width, 2) if width / 3 <= c <= 2 * width / 3)


def door_rows(walls: np.ndarray, column: int) -> Tuple[Tuple[int, ...], np.ndarray]:
  """(rows, start side) for a Door-Key divider in `column` of the base maze `walls`.

  rows: the rows r whose (r, column-1) the start reaches and from whose (r, column+1) the exit is reached, with the
  divider (every interior cell of the column a wall) in place; start side: bool [H, W], the floor cells the start
  reaches with the divider in place (where the key may go).
  """
  h, w = walls.shape
  divided = walls.copy()
  divided[1:h - 1, column] = True
  start_side = maze_layouts.reachable(divided, maze_layouts.START)
  exit_side = maze_layouts.reachable(divided, (h - 2, w - 2))
  rows = tuple(r for r in range(1, h - 1) if start_side[r, column - 1] and exit_side[r, column + 1])
  return rows, start_side


def _as_seeds(seeds, count: int) -> list:
  """One seed (or None) per env: None -> fresh entropy each; an int s -> s + i; a sequence -> itself."""
  if seeds is None:
    return [None] * count
  if isinstance(seeds, (int, np.integer)):
    return [int(seeds) + i for i in range(count)]
  seeds = list(seeds)
  if len(seeds) != count:
    raise ValueError(f'expected {count} seeds (one per env), got {len(seeds)}: pass one int s (env i gets s + i) or '
                     f'a list of {count}')
  return seeds


class BatchMaze:
  """B mazes of one layout and task, stepped together in arrays (module docstring)."""

  def __init__(self, num_envs: int = 1, maze: Union[str, maze_layouts.Layout] = 'small', task: str = 'multigoal',
               seeds=None, max_steps: Optional[int] = None, step_penalty: Optional[float] = None,
               num_balls: int = NUM_BALLS, num_lava: Optional[int] = None, autoreset: bool = True):
    """Builds and resets `num_envs` envs.

    Args:
      num_envs: B.
      maze: a size ('tiny', 'small', 'medium', 'large'), maze text for `maze_layouts.parse_layout`, or a Layout.
      task: one of TASKS.
      seeds: None (fresh entropy), an int s (env i gets s + i) or one int per env.
      max_steps: actions per episode before truncation (default: 25 in goalreach, else MAX_STEPS of the size; 200
        for a custom maze).
      step_penalty: reward of every action (default 0 in goalreach, else -0.01).
      num_balls: balls of the multigoal tasks.
      num_lava: lava cells of multigoal_stochastic (default `default_num_lava(|S_free|)`).
      autoreset: reset an env inside `step` when its episode ends (its last observation is in info['final_obs']);
        if False, stepping an env whose episode ended raises until it is `reset`.
    """
    if task not in TASKS:
      raise ValueError(f'unknown maze task {task!r}; valid: {", ".join(TASKS)}')
    if int(num_envs) < 1:
      raise ValueError(f'num_envs must be >= 1, got {num_envs}')
    self._layout = maze_layouts.as_layout(maze)
    self._task = task
    self._b = int(num_envs)
    h, w = self._layout.height, self._layout.width
    self._hw = (h, w)
    self._exit = self._layout.exit
    self._base_walls = np.array(self._layout.walls)
    free = ~self._base_walls
    if max_steps is None:
      max_steps = GOALREACH_HORIZON if task == 'goalreach' else MAX_STEPS.get(self._layout.name, 200)
    if int(max_steps) < 1:
      raise ValueError(f'max_steps must be >= 1, got {max_steps}')
    self._max_steps = int(max_steps)
    if step_penalty is None:
      step_penalty = 0.0 if task == 'goalreach' else STEP_PENALTY
    self._step_penalty = float(step_penalty)
    self._num_balls = int(num_balls) if task.startswith('multigoal') else 0
    if task.startswith('multigoal'):
      # Balls go on free cells other than the start and the exit.
      self._ball_candidates = free.copy()
      self._ball_candidates[maze_layouts.START] = False
      self._ball_candidates[self._exit] = False
      room = int(self._ball_candidates.sum())
      if not 1 <= self._num_balls <= room:
        raise ValueError(f'num_balls must be in 1..{room} (free cells other than the start and the exit of maze '
                         f'{self._layout.name!r}), got {num_balls}')
    self._num_lava = 0
    if task == 'multigoal_stochastic':
      self._num_lava = default_num_lava(self._layout.num_free) if num_lava is None else int(num_lava)
      room = self._layout.num_free - 2 - self._num_balls       # not the agent's cell, a ball or the exit
      if not 1 <= self._num_lava <= room:
        raise ValueError(f'num_lava must be in 1..{room} (free cells other than the agent, {self._num_balls} balls '
                         f'and the exit of maze {self._layout.name!r}), got {num_lava}')
    if task == 'doorkey':
      self._init_doorkey()
    self._autoreset = bool(autoreset)
    self._rngs = [np.random.default_rng(s) for s in _as_seeds(seeds, self._b)]
    b = self._b
    self._agent = np.zeros((b, 2), np.int64)
    self._goal = np.tile(np.array(self._exit, np.int64), (b, 1))
    self._walls = np.broadcast_to(self._base_walls, (b, h, w)).copy()
    self._balls = np.zeros((b, h, w), bool)
    self._lava = np.zeros((b, h, w), bool)
    self._key = np.zeros((b, h, w), bool)
    self._locked = np.zeros((b, h, w), bool)
    self._open = np.zeros((b, h, w), bool)
    self._carrying = np.zeros(b, bool)
    self._t = np.zeros(b, np.int64)
    self._return = np.zeros(b, np.float64)
    self._collected = np.zeros(b, np.int64)
    self._door_opened = np.zeros(b, bool)
    self._ended = np.zeros(b, bool)
    self._rows = np.arange(b)
    self._reset_ids(self._rows)

  def _init_doorkey(self):
    """Precomputes, per divider column with a valid door row: its walls, door rows and key cells."""
    columns, self._dk_walls, self._dk_rows, self._dk_keys = [], [], [], []
    for c in divider_columns(self._hw[1]):
      rows, start_side = door_rows(self._base_walls, c)
      if not rows:
        continue
      walls = self._base_walls.copy()
      walls[1:self._hw[0] - 1, c] = True
      key_cells = start_side.copy()
      key_cells[maze_layouts.START] = False
      if not key_cells.any():
        continue
      columns.append(c)
      self._dk_walls.append(walls)
      self._dk_rows.append(np.array(rows, np.int64))
      self._dk_keys.append(np.argwhere(key_cells))
    if not columns:
      raise ValueError(f'maze {self._layout.name!r} has no Door-Key divider: no even column in [W/3, 2W/3] '
                       f'({divider_columns(self._hw[1])}) has a door row joining the start side to the exit side; '
                       'use another maze')
    self._dk_columns = np.array(columns, np.int64)
    self._dk_walls = np.stack(self._dk_walls)

  # ---------------------------------------------------------------------------------------------------- properties

  @property
  def num_envs(self) -> int:
    return self._b

  @property
  def layout(self) -> maze_layouts.Layout:
    return self._layout

  @property
  def task(self) -> str:
    return self._task

  @property
  def num_actions(self) -> int:
    return 6 if self._task == 'doorkey' else 4

  @property
  def observation_shape(self) -> Tuple[int, int, int]:
    return self._hw + (NUM_PLANES,)

  @property
  def max_steps(self) -> int:
    return self._max_steps

  @property
  def step_penalty(self) -> float:
    return self._step_penalty

  @property
  def num_balls(self) -> int:
    return self._num_balls

  @property
  def num_lava(self) -> int:
    return self._num_lava

  @property
  def door_columns(self) -> Tuple[int, ...]:
    """Door-Key: the divider columns that can be drawn (those with a valid door row)."""
    return tuple(int(c) for c in self._dk_columns) if self._task == 'doorkey' else ()

  @property
  def agent(self) -> np.ndarray:
    """int64 [B, 2]: each env's agent cell (a copy)."""
    return self._agent.copy()

  @property
  def goals(self) -> np.ndarray:
    """int64 [B, 2]: each env's goal cell (the exit, except where `set_goal` moved a GoalReach goal)."""
    return self._goal.copy()

  @property
  def steps(self) -> np.ndarray:
    """int64 [B]: actions taken in each env's current episode."""
    return self._t.copy()

  @property
  def rngs(self) -> Tuple[np.random.Generator, ...]:
    return tuple(self._rngs)

  def set_rngs(self, env_ids, generators: Sequence[np.random.Generator]) -> None:
    """Makes envs `env_ids` draw from `generators` from now on (the gymnasium wrapper hands in its np_random)."""
    ids = self._check_ids(env_ids)
    if len(generators) != len(ids):
      raise ValueError(f'expected {len(ids)} generators (one per env id), got {len(generators)}')
    for i, g in zip(ids, generators):
      if not isinstance(g, np.random.Generator):
        raise ValueError(f'env {i}: expected a numpy.random.Generator, got {type(g).__name__}')
      self._rngs[i] = g

  # ------------------------------------------------------------------------------------------------ state

  # The arrays that make up the engine's state between steps (with the generators' states): `get_state` /
  # `set_state` keys, also the checkpoint names a trainer stores them under.
  STATE_ARRAYS = ('agent', 'goal', 'walls', 'balls', 'lava', 'key', 'locked', 'open', 'carrying', 't', 'return',
                  'collected', 'door_opened', 'ended')

  def get_state(self) -> Dict[str, Any]:
    """A copy of the whole engine state: {name: array} for `STATE_ARRAYS` and 'rngs', a JSON string of the B
    generators' bit-generator states. `set_state` of it makes the engine continue exactly as this one would."""
    state = {name: getattr(self, f'_{name}').copy() for name in self.STATE_ARRAYS}
    state['rngs'] = json.dumps([g.bit_generator.state for g in self._rngs])
    return state

  def set_state(self, state: Dict[str, Any]) -> None:
    """Restores a `get_state` result (of an engine with the same B, maze and task).

    Raises:
      ValueError: a missing or unknown key, or an array whose shape or dtype differs from this engine's.
    """
    keys = set(self.STATE_ARRAYS) | {'rngs'}
    missing, unknown = sorted(keys - set(state)), sorted(set(state) - keys)
    if missing or unknown:
      raise ValueError(f'BatchMaze.set_state: missing keys {missing}, unknown keys {unknown}; a state comes from '
                       f'get_state() and has keys {sorted(keys)}')
    arrays = {}
    for name in self.STATE_ARRAYS:
      own, new = getattr(self, f'_{name}'), np.asarray(state[name])
      if new.shape != own.shape or new.dtype != own.dtype:
        raise ValueError(f'BatchMaze.set_state: {name!r} is {new.dtype}{list(new.shape)}, this engine needs '
                         f'{own.dtype}{list(own.shape)} (a state of an engine with the same num_envs, maze and task)')
      arrays[name] = new.copy()
    rng_states = json.loads(state['rngs'])
    if len(rng_states) != self._b:
      raise ValueError(f'BatchMaze.set_state: {len(rng_states)} generator states for {self._b} envs')
    for name, value in arrays.items():
      setattr(self, f'_{name}', value)
    for g, s in zip(self._rngs, rng_states):
      g.bit_generator.state = s

  # ------------------------------------------------------------------------------------------------ reset / moves

  def reset(self, env_ids=None, seeds=None) -> np.ndarray:
    """Starts new episodes in `env_ids` (default all) and returns all B observations, uint8 [B, H, W, 9].

    `seeds` re-seeds those envs first: an int s gives the k-th listed env s + k, or one int per listed env.
    """
    ids = self._rows if env_ids is None else self._check_ids(env_ids)
    if seeds is not None:
      for i, s in zip(ids, _as_seeds(seeds, len(ids))):
        self._rngs[i] = np.random.default_rng(s)
    self._reset_ids(ids)
    return self.observe()

  def set_agent(self, env_ids, cells: Cells) -> np.ndarray:
    """Puts the agents of `env_ids` on `cells` ([n, 2] rows, columns) and returns all observations.

    A cell must be floor and not a locked door. Nothing else changes (the step count goes on); lava on the cell is
    removed, so lava never shares the agent's cell. This is the spec's restart at a waypoint (Sec. 5.6), equivalent
    to replaying the actions that reach it in this deterministic world.
    """
    ids, cells = self._check_cells(env_ids, cells, 'set_agent')
    locked = self._locked[ids, cells[:, 0], cells[:, 1]]
    if locked.any():
      k = int(np.argmax(locked))
      raise ValueError(f'set_agent: env {ids[k]}, row {cells[k, 0]}, column {cells[k, 1]} is the locked door: '
                       'choose a floor cell')
    self._agent[ids] = cells
    self._lava[ids, cells[:, 0], cells[:, 1]] = False
    return self.observe()

  def set_goal(self, env_ids, cells: Cells) -> None:
    """GoalReach only: makes `cells` ([n, 2]) the goals of `env_ids` until their next reset (which restores the
    exit cell)."""
    if self._task != 'goalreach':
      raise ValueError(f'set_goal: task {self._task!r} has a fixed exit; goals can be set only in goalreach')
    ids, cells = self._check_cells(env_ids, cells, 'set_goal')
    self._goal[ids] = cells

  def _check_ids(self, env_ids) -> np.ndarray:
    ids = np.atleast_1d(np.asarray(env_ids))
    if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
      raise ValueError(f'env ids must be a 1-D list of integers, got {env_ids!r}')
    ids = ids.astype(np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= self._b):
      raise ValueError(f'env ids must lie in 0..{self._b - 1}, got {ids.tolist()}')
    if len(np.unique(ids)) != len(ids):
      raise ValueError(f'env ids must not repeat, got {ids.tolist()}')
    return ids

  def _check_cells(self, env_ids, cells, what: str) -> Tuple[np.ndarray, np.ndarray]:
    ids = self._check_ids(env_ids)
    cells = np.asarray(cells)
    if cells.shape == (2,) and len(ids) == 1:
      cells = cells[None]
    if cells.shape != (len(ids), 2) or (cells.size and not np.issubdtype(cells.dtype, np.integer)):
      raise ValueError(f'{what}: expected integer cells of shape ({len(ids)}, 2) (row, column per env id), got '
                       f'{cells.tolist()}')
    cells = cells.astype(np.int64)
    h, w = self._hw
    for k, (r, c) in enumerate(cells):
      if not (0 <= r < h and 0 <= c < w) or self._walls[ids[k], r, c]:
        raise ValueError(f'{what}: env {ids[k]}, row {r}, column {c} is not a floor cell of the {h}x{w} maze: '
                         'choose a floor cell')
    return ids, cells

  def _reset_ids(self, ids: np.ndarray) -> None:
    """New episodes in envs `ids` (draws in the order of the module docstring)."""
    if not len(ids):
      return
    self._agent[ids] = maze_layouts.START
    self._goal[ids] = self._exit
    self._walls[ids] = self._base_walls
    for plane in (self._balls, self._lava, self._key, self._locked, self._open):
      plane[ids] = False
    self._carrying[ids] = False
    self._t[ids] = 0
    self._return[ids] = 0.0
    self._collected[ids] = 0
    self._door_opened[ids] = False
    self._ended[ids] = False
    if self._task.startswith('multigoal'):
      n = len(ids)
      size = self._hw[0] * self._hw[1]
      stochastic = self._task == 'multigoal_stochastic'
      ball_keys = np.empty((n, size))
      lava_keys = np.empty((n, size)) if stochastic else None
      for k, i in enumerate(ids):
        ball_keys[k] = self._rngs[i].random(size)
        if stochastic:
          lava_keys[k] = self._rngs[i].random(size)
      self._balls[ids] = self._smallest(ball_keys, np.broadcast_to(self._ball_candidates, (n,) + self._hw),
                                        self._num_balls)
      if stochastic:
        self._draw_lava(ids, lava_keys)
    elif self._task == 'doorkey':
      draws = []
      for i in ids:
        rng = self._rngs[i]
        col = int(rng.integers(len(self._dk_columns)))
        row = int(self._dk_rows[col][rng.integers(len(self._dk_rows[col]))])
        key = self._dk_keys[col][rng.integers(len(self._dk_keys[col]))]
        draws.append((col, row, key[0], key[1]))
      col, row, key_r, key_c = np.array(draws, np.int64).T
      door_c = self._dk_columns[col]
      self._walls[ids] = self._dk_walls[col]
      self._walls[ids, row, door_c] = False
      self._locked[ids, row, door_c] = True
      self._key[ids, key_r, key_c] = True

  def _smallest(self, keys: np.ndarray, candidates: np.ndarray, count: int) -> np.ndarray:
    """bool [n, H, W]: per row of `keys` ([n, H*W] priorities), the `count` candidate cells with the smallest."""
    n = keys.shape[0]
    keys = np.where(candidates.reshape(n, -1), keys, np.inf)
    chosen = np.argpartition(keys, count - 1, axis=1)[:, :count]
    out = np.zeros(keys.shape, bool)
    out[np.arange(n)[:, None], chosen] = True
    return out.reshape((n,) + self._hw)

  def _draw_lava(self, ids: np.ndarray, keys: np.ndarray) -> None:
    """Places the lava of envs `ids` from priorities `keys` [n, H*W] on cells that are free and not the agent's, a
    ball or the exit."""
    candidates = ~self._walls[ids] & ~self._balls[ids]
    candidates[:, self._exit[0], self._exit[1]] = False
    candidates[np.arange(len(ids)), self._agent[ids, 0], self._agent[ids, 1]] = False
    self._lava[ids] = self._smallest(keys, candidates, self._num_lava)

  # ---------------------------------------------------------------------------------------------------- stepping

  def observe(self, env_ids=None) -> np.ndarray:
    """uint8 [n, H, W, 9]: the observations of `env_ids` (default all), planes as in PLANES."""
    if env_ids is None:                  # all envs: read the state arrays in place (no fancy-index copies)
      n, pick = self.num_envs, slice(None)
    else:
      ids = self._check_ids(env_ids)
      n, pick = len(ids), ids
    obs = np.zeros((n,) + self._hw + (NUM_PLANES,), np.uint8)
    # Booleans are written through a uint8 view of the same bytes (no conversion pass).
    obs[..., WALL_PLANE] = self._walls[pick].view(np.uint8)
    agent = self._agent[pick]
    obs[np.arange(n), agent[:, 0], agent[:, 1], AGENT_PLANE] = 1
    obs[..., BALL_PLANE] = self._balls[pick].view(np.uint8)
    if self._task != 'goalreach':
      obs[:, self._exit[0], self._exit[1], EXIT_PLANE] = 1
    if self._task == 'multigoal_stochastic':
      obs[..., LAVA_PLANE] = self._lava[pick].view(np.uint8)
    if self._task == 'doorkey':
      obs[..., KEY_PLANE] = self._key[pick].view(np.uint8)
      obs[..., LOCKED_PLANE] = self._locked[pick].view(np.uint8)
      obs[..., OPEN_PLANE] = self._open[pick].view(np.uint8)
      obs[..., CARRY_PLANE] = self._carrying[pick, None, None]
    return obs

  def text(self, env_id: int = 0) -> str:
    """Env `env_id`'s maze as text: # wall, A agent, o ball, E exit (the goal in goalreach), ~ lava, k key, D locked
    door, d open door, . floor; a last line says whether the agent carries the key."""
    i = int(self._check_ids([env_id])[0])
    grid = np.where(self._walls[i], '#', '.').astype('<U1')
    grid[tuple(self._goal[i])] = 'E'
    for plane, ch in ((self._balls, 'o'), (self._lava, '~'), (self._key, 'k'), (self._locked, 'D'),
                      (self._open, 'd')):
      grid[plane[i]] = ch
    grid[tuple(self._agent[i])] = 'A'
    rows = [''.join(row) for row in grid]
    if self._task == 'doorkey':
      rows.append(f'carrying: {bool(self._carrying[i])}')
    return '\n'.join(rows)

  def step(self, actions) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Dict[str, np.ndarray]]:
    """One action per env (int [B]) -> (obs uint8 [B, H, W, 9], reward float32 [B], terminated bool [B],
    truncated bool [B], info); envs whose episode ended are reset (autoreset) and show their new episode in obs.

    info (module docstring) holds (B,) arrays and info['final_obs'], the observations before the auto-reset (the
    same array as obs when no env ended).
    """
    a = base.check_actions(actions, self._b, self.num_actions).astype(np.int64)
    if self._ended.any():
      ids = np.flatnonzero(self._ended).tolist()
      raise ValueError(f'envs {ids} ended their episodes at the last step: call reset({ids}) first (or build '
                       'BatchMaze with autoreset=True)')
    b = self._rows
    self._t += 1
    reward = np.full(self._b, self._step_penalty)

    # Moves: into a wall or a locked door leaves the agent in place.
    is_move = a < 4
    target = self._agent + np.where(is_move[:, None], MOVES[np.minimum(a, 3)], 0)
    blocked = self._walls[b, target[:, 0], target[:, 1]] | self._locked[b, target[:, 0], target[:, 1]]
    self._agent = np.where(blocked[:, None], self._agent, target)
    r, c = self._agent[:, 0], self._agent[:, 1]

    if self._task == 'doorkey':
      picks = (a == PICK) & self._key[b, r, c] & ~self._carrying
      self._carrying |= picks
      self._key[b, r, c] &= ~picks
      around = self._agent[:, None, :] + MOVES[None]                               # [B, 4, 2]
      next_to_door = self._locked[b[:, None], around[..., 0], around[..., 1]].any(axis=1)
      toggles = (a == TOGGLE) & self._carrying & next_to_door
      self._open |= self._locked & toggles[:, None, None]
      self._locked &= ~toggles[:, None, None]
      self._door_opened |= toggles
      reward += toggles

    balls = self._balls[b, r, c]
    self._balls[b, r, c] = False
    self._collected += balls
    if self._task in ('multigoal', 'multigoal_stochastic'):
      reward += balls
    lava = self._lava[b, r, c]
    success = (r == self._goal[:, 0]) & (c == self._goal[:, 1])
    if self._task == 'multigoal_sparse':
      reward += np.where(success, self._collected / max(self._num_balls, 1), 0.0)
    elif self._task in ('goalreach', 'doorkey'):
      reward += success
    terminated = success | lava
    truncated = ~terminated & (self._t >= self._max_steps)
    ended = terminated | truncated
    self._return += reward

    if self._task == 'multigoal_stochastic':
      going_on = np.flatnonzero(~ended)
      if len(going_on):
        size = self._hw[0] * self._hw[1]
        self._draw_lava(going_on, np.stack([self._rngs[i].random(size) for i in going_on]))

    info = {'episode_return': self._return.copy(), 'episode_length': self._t.copy(),
            'balls_collected': self._collected.copy(), 'door_opened': self._door_opened.copy(),
            'success': success, 'lava': lava}
    obs = self.observe()
    info['final_obs'] = obs
    if ended.any():
      if self._autoreset:
        ids = np.flatnonzero(ended)
        self._reset_ids(ids)
        obs = obs.copy()
        obs[ids] = self.observe(ids)
      else:
        self._ended |= ended
    return obs, reward.astype(np.float32), terminated, truncated, info


class MazeEnv(base.MultiAgentEnv):
  """One maze behind the house interface (N = 1): observations uint8 [1, H, W, 9], actions int32 [1].

  `reset()` starts a new episode (the first draws from `np.random.default_rng(seed)`, later ones continue that
  generator); a step that ends the episode is a termination (discount 0) or, at `max_steps`, a truncation
  (discount 1), after which the caller resets.
  """

  def __init__(self, seed: int = 0, size: str = 'small', task: str = 'multigoal', **kwargs):
    self._engine = BatchMaze(1, maze=size, task=task, seeds=[seed], autoreset=False, **kwargs)
    self._needs_reset = True
    self._last_info: Dict[str, Any] = {}

  @property
  def engine(self) -> BatchMaze:
    return self._engine

  @property
  def num_agents(self) -> int:
    return 1

  @property
  def num_actions(self) -> int:
    return self._engine.num_actions

  @property
  def map_hw(self) -> Tuple[int, int]:
    return self._engine.observation_shape[:2]

  def observation_spec(self) -> specs.BoundedArray:
    return specs.BoundedArray((1,) + self._engine.observation_shape, np.uint8, 0, 1, name='maze')

  def agent_positions(self) -> np.ndarray:
    return self._engine.agent.astype(np.int32)

  def episode_info(self) -> Dict[str, Any]:
    """The last step's episode statistics (return, length, balls collected, door opened, success)."""
    return {k: v[0].item() for k, v in self._last_info.items() if k != 'final_obs'}

  def reset(self) -> dm_env.TimeStep:
    obs = self._engine.reset()
    self._needs_reset = False
    self._last_info = {}
    return dm_env.restart(obs)

  def text(self, env_id: int = 0) -> str:
    """The maze as text (`BatchMaze.text`)."""
    return self._engine.text(env_id)

  def step(self, actions) -> dm_env.TimeStep:
    if self._needs_reset:
      return self.reset()
    actions = base.check_actions(actions, 1, self.num_actions)
    obs, reward, terminated, truncated, info = self._engine.step(actions)
    self._last_info = info
    if terminated[0]:
      self._needs_reset = True
      return dm_env.termination(reward, obs)
    if truncated[0]:
      self._needs_reset = True
      return dm_env.truncation(reward, obs, np.float32(1.0))
    return dm_env.transition(reward, obs, np.float32(1.0))

  def close(self):
    pass


def make_maze(seed: int = 0, size: str = 'small', task: str = 'multigoal', **kwargs) -> MazeEnv:
  """Registry factory: `maze_{size}_{task}` (kwargs go to BatchMaze: max_steps, step_penalty, num_balls, num_lava)."""
  return MazeEnv(seed=seed, size=size, task=task, **kwargs)
