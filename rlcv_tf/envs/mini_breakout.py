"""MiniBreakout: a small pure-NumPy Breakout, the CPU stand-in of seed 001 (spec seed001 Sec. 6, a proposal).

Not Atari. The paper's claim (a pre-trained VAE drops the ball, about 0.1 % of an 84x84 Breakout frame; S:L201 of
seed 001) needs a game whose ball is a few pixels of a grey frame; this one keeps that and is cheap enough for
CPU runs. Used only when asked for by name (`mini_breakout*`); a missing ALE is never replaced by it.

Screen S x S, S in {84, 42, 21} (84 paper-like, 42 the `small` preset, 21 the `tiny` one). Observation uint8
[1, S, S, 1], grey levels 0..255 (spec Sec. 6's values x 255): background 0; walls (top, left, right; no bottom)
0.4; 6 brick rows x 12 columns, one grey per row from 0.9 (top) to 0.5 (bottom); paddle 0.7; ball 1.0.

Geometry (pixels of the S grid; rows from the top, columns from the left):
  S     wall  brick rows (height)  serve row  paddle row (height x width)  ball   paddle speed  ball speed (x; y)
  84    2     12..23 (2 px)        32         76 (2 x 12)                  2x2    3 px/step     1 or 2; 2
  42    1      6..11 (1 px)        16         38 (1 x 6)                   1x1    1.5           0.5 or 1; 1
  21    1      3..8  (1 px)        11         19 (1 x 4)                   1x1    2             0.5 or 1; 1
The 12 brick columns split the space between the walls as evenly as whole pixels allow (`np.linspace`): 6-7 px
wide at 84 (spec: 6), 3-4 at 42, 1-2 at 21. At 42 the 1x1 ball is 1/1764 = 0.057 % of the pixels (spec: about
0.06 %, Atari about 0.1 %); at 84 the 2x2 ball is the same fraction. At 21 the ball is twice as fast relative to the
screen as at 42 and the paddle relatively wider and faster (4 of 19 columns, 2 px/step), so the `tiny` preset's short
flights give a learning signal in seconds: a ball served at a random column pays a brick soon after the agent moves
under it (the scripted tracker clears the wall; a random agent breaks about 2 bricks a game).

Dynamics, per agent step (one frame; `frames` = `steps`):
  * Actions 0 NOOP, 1 FIRE, 2 RIGHT, 3 LEFT (ALE Breakout's minimal set, in its order). RIGHT/LEFT move the paddle
    by its speed, kept between the walls; the paddle also moves while no ball is in play.
  * FIRE with no ball in play serves one: it appears on the serve row at a column drawn uniformly between the
    walls, moving down at the ball speed with a horizontal speed drawn from {-2, -1, +1, +2} x the x unit (the
    environment's seeded generator: the only randomness). FIRE with a ball in play does nothing.
  * The ball moves in sub-steps of at most 1 px per axis (so it never jumps over a 1-px brick or the paddle). It
    reflects off the walls. Where its pixels touch bricks, those bricks are removed (+1 each) and its vertical
    speed reverses. Moving down onto the paddle's top row with any column in common, it bounces up; where it hit
    sets the new horizontal speed: the offset of the ball's centre from the paddle's, as a fraction of
    (paddle + ball width) / 2, in 4 zones [-1, -0.5), [-0.5, 0), [0, 0.5), [0.5, 1] -> -2, -1, +1, +2 x the x unit.
  * Once the ball's top row leaves the screen at the bottom, a life is lost and the ball is out of play.
  * 5 lives. The episode terminates (discount 0) at 0 lives or when every brick is gone, and is truncated
    (discount 1) after `max_steps` agent steps.
  * Reward +1 per brick (spec Sec. 6; Atari's 1/4/7 by row is not used).
  * `auto_serve=True` (the registry's `mini_breakout*` entries, the stand-in of the seed-001 ALE preset's "FIRE on
    reset and after a lost life"): a ball is served at reset and right after each lost life, so no episode waits
    for FIRE (the entropy bonus is 0 in seed 001, and a policy that never fires would otherwise sit out the
    10,000-step cap). `make_mini_breakout` keeps it off: FIRE then serves, as in the game.

`object_positions()` -> {'ball_x', 'ball_y', 'paddle_x', 'lives'}: the ball's top-left pixel (column, row) or -1,
-1 with no ball in play, and the paddle's leftmost column (the same ints as the rendered frame: the ball's pixels
are frame[ball_y:ball_y + b, ball_x:ball_x + b]); also as `ball_col`, `ball_row`, `paddle_col`, the names under
which the ALE adapter gives Breakout's screen pixels, so one scripted tracker (`datasets.atari_frames
.tracker_action`) plays both. `geometry` holds the sizes (ball and paddle width, rows) so a
scripted tracker can centre the paddle under the ball. `episode_info()` has the raw `score`, `steps`, `frames`
(= steps), `lives` and `bricks_left`.

Internals are arrays: bricks are a bool [6, 12] grid; a precomputed [S, S] map from pixel to brick index renders
them and finds the bricks under the ball's pixels in one indexing operation; the walls are a cached background.
Deterministic under a seed: `np.random.default_rng(seed)` draws the serves, and the same seed and actions give the
same frames and rewards. Later resets continue the generator (one seed, one reproducible sequence of episodes);
`reseed(s)` makes the next reset start over from seed `s`, as the ALE adapter's does.
"""

import math
from typing import Any, Dict, Optional

import dm_env
import numpy as np
from dm_env import specs

from rlcv_tf.envs import base

NOOP, FIRE, RIGHT, LEFT = range(4)
ACTION_NAMES = ('NOOP', 'FIRE', 'RIGHT', 'LEFT')
SIZES = (84, 42, 21)
BRICK_ROWS, BRICK_COLS = 6, 12
LIVES = 5
MAX_STEPS = 10_000

# Spec Sec. 6 grey values, as uint8.
BACKGROUND = 0
WALL_GREY = round(0.4 * 255)
BRICK_GREYS = tuple(round(v * 255) for v in np.linspace(0.9, 0.5, BRICK_ROWS))   # top row first
PADDLE_GREY = round(0.7 * 255)
BALL_GREY = 255

# Per size: wall, brick_top, brick_h, serve_row, paddle_row, paddle_h, paddle_w, ball, paddle_speed, vx_unit, vy.
_GEOMETRY = {
    84: dict(wall=2, brick_top=12, brick_h=2, serve_row=32, paddle_row=76, paddle_h=2, paddle_w=12, ball=2,
             paddle_speed=3.0, vx_unit=1.0, vy=2.0),
    42: dict(wall=1, brick_top=6, brick_h=1, serve_row=16, paddle_row=38, paddle_h=1, paddle_w=6, ball=1,
             paddle_speed=1.5, vx_unit=0.5, vy=1.0),
    21: dict(wall=1, brick_top=3, brick_h=1, serve_row=11, paddle_row=19, paddle_h=1, paddle_w=4, ball=1,
             paddle_speed=2.0, vx_unit=0.5, vy=1.0),
}


class MiniBreakout(base.MultiAgentEnv):
  """One MiniBreakout game, N = 1 (module docstring)."""

  def __init__(self, size: int = 42, seed: int = 0, max_steps: int = MAX_STEPS, lives: int = LIVES,
               auto_serve: bool = False):
    if size not in _GEOMETRY:
      raise ValueError(f'mini_breakout size must be one of {SIZES}, got {size}')
    if max_steps < 1:
      raise ValueError(f'max_steps must be >= 1, got {max_steps}')
    if lives < 1:
      raise ValueError(f'lives must be >= 1, got {lives}')
    self._s = int(size)
    self._g = dict(_GEOMETRY[size])
    self._max_steps = int(max_steps)
    self._lives0 = int(lives)
    self._auto_serve = bool(auto_serve)
    self._next_seed: Optional[int] = int(seed)
    self._rng = np.random.default_rng(int(seed))
    g, s = self._g, self._s
    self._col_edges = np.round(np.linspace(g['wall'], s - g['wall'], BRICK_COLS + 1)).astype(np.int64)
    # Pixel -> brick index (row * 12 + column) or -1, and the brick rows' grey per pixel.
    index = np.full((s, s), -1, np.int64)
    grey = np.zeros((s, s), np.uint8)
    for r in range(BRICK_ROWS):
      rows = slice(g['brick_top'] + r * g['brick_h'], g['brick_top'] + (r + 1) * g['brick_h'])
      for c in range(BRICK_COLS):
        index[rows, self._col_edges[c]:self._col_edges[c + 1]] = r * BRICK_COLS + c
      grey[rows, g['wall']:s - g['wall']] = BRICK_GREYS[r]
    self._brick_index = index
    self._brick_pixels = index >= 0
    self._brick_grey = grey
    background = np.full((s, s), BACKGROUND, np.uint8)
    background[:g['wall'], :] = WALL_GREY
    background[:, :g['wall']] = WALL_GREY
    background[:, s - g['wall']:] = WALL_GREY
    self._background = background
    self.geometry = {k: g[k] for k in ('wall', 'ball', 'paddle_w', 'paddle_h', 'paddle_row', 'serve_row',
                                       'brick_top', 'brick_h')}
    self.geometry['size'] = s
    self._needs_reset = True
    self._observation_spec = specs.Array((1, s, s, 1), np.uint8, name='frame')

  # ------------------------------------------------------------------------------------------------ interface
  @property
  def num_agents(self) -> int:
    return 1

  @property
  def num_actions(self) -> int:
    return len(ACTION_NAMES)

  @property
  def action_names(self):
    return ACTION_NAMES

  @property
  def size(self) -> int:
    return self._s

  def observation_spec(self) -> specs.Array:
    return self._observation_spec

  def reseed(self, seed: int) -> None:
    """The next `reset()` restarts the serve generator from `seed`."""
    self._next_seed = int(seed)

  @property
  def bricks(self) -> np.ndarray:
    """bool [6, 12], True where a brick is still standing (a copy; row 0 is the top row)."""
    return self._bricks.copy()

  @property
  def ball_in_play(self) -> bool:
    return self._in_play

  def object_positions(self) -> Dict[str, int]:
    """Ball top-left (column, row) in pixels or -1, -1 with no ball in play, the paddle's leftmost column, lives.
    `ball_col`, `ball_row`, `paddle_col` repeat them under the names the ALE adapter gives its screen pixels."""
    if self._in_play:
      bx, by = int(math.floor(self._x)), int(math.floor(self._y))
    else:
      bx = by = -1
    p = self._paddle_col()
    return {'ball_x': bx, 'ball_y': by, 'paddle_x': p, 'lives': int(self._lives), 'ball_row': by, 'ball_col': bx,
            'paddle_col': p}

  @property
  def has_object_positions(self) -> bool:
    return True

  @property
  def settings(self) -> Dict[str, Any]:
    """What a run records about this environment (JSON-ready), beside the ALE presets' `ale_settings`."""
    return {'env': 'mini_breakout', 'size': self._s, 'max_steps': self._max_steps, 'lives': self._lives0,
            'auto_serve': self._auto_serve,
            'actions': list(ACTION_NAMES), 'rewards': '+1 per brick', 'observation': f'uint8 [1, {self._s}, '
            f'{self._s}, 1]', 'geometry': dict(self.geometry), 'paddle_speed': self._g['paddle_speed'],
            'ball_speed': {'vx_unit': self._g['vx_unit'], 'vy': self._g['vy']}}

  def place_ball(self, x: float, y: float, vx: float, vy: float) -> None:
    """Puts a ball in play with its top-left at (x, y) (pixels, floats) moving (vx, vy) px/step: for tests and
    tools that need a given situation (a serve is FIRE's job in play)."""
    self._x, self._y, self._vx, self._vy = float(x), float(y), float(vx), float(vy)
    self._in_play = True

  def place_paddle(self, x: float) -> None:
    """Moves the paddle's left edge to column `x` (kept between the walls); for tests and tools."""
    g = self._g
    self._paddle = float(np.clip(x, g['wall'], self._s - g['wall'] - g['paddle_w']))

  def episode_info(self) -> Dict[str, Any]:
    return {'score': float(self._score), 'steps': int(self._steps), 'frames': int(self._steps),
            'lives': int(self._lives), 'bricks_left': int(self._bricks.sum())}

  def reset(self) -> dm_env.TimeStep:
    if self._next_seed is not None:
      self._rng = np.random.default_rng(self._next_seed)
      self._next_seed = None
    g = self._g
    self._bricks = np.ones((BRICK_ROWS, BRICK_COLS), bool)
    self._paddle = float((self._s - g['paddle_w']) // 2)
    self._in_play = False
    self._x = self._y = self._vx = self._vy = 0.0
    self._lives = self._lives0
    self._score = 0.0
    self._steps = 0
    self._needs_reset = False
    if self._auto_serve:
      self._serve()
    return dm_env.restart(self._observe())

  def step(self, actions) -> dm_env.TimeStep:
    if self._needs_reset:
      return self.reset()
    action = int(base.check_actions(actions, 1, self.num_actions)[0])
    g = self._g
    if action in (RIGHT, LEFT):
      move = g['paddle_speed'] if action == RIGHT else -g['paddle_speed']
      self._paddle = float(np.clip(self._paddle + move, g['wall'], self._s - g['wall'] - g['paddle_w']))
    elif action == FIRE and not self._in_play:
      self._serve()
    reward = self._move_ball() if self._in_play else 0
    if self._auto_serve and not self._in_play and self._lives > 0:
      self._serve()                       # the next life starts with a ball in play
    self._steps += 1
    self._score += reward
    r = np.array([reward], np.float32)
    obs = self._observe()
    if self._lives <= 0 or not self._bricks.any():
      self._needs_reset = True
      return dm_env.termination(r, obs)
    if self._steps >= self._max_steps:
      self._needs_reset = True
      return dm_env.truncation(r, obs)
    return dm_env.transition(r, obs)

  def close(self):
    pass

  # --------------------------------------------------------------------------------------------------- game
  def _paddle_col(self) -> int:
    return int(math.floor(self._paddle))

  def _serve(self):
    g = self._g
    self._x = float(self._rng.integers(g['wall'], self._s - g['wall'] - g['ball'] + 1))
    self._y = float(g['serve_row'])
    self._vx = float(self._rng.choice((-2, -1, 1, 2))) * g['vx_unit']
    self._vy = g['vy']
    self._in_play = True

  def _bricks_under(self, x: float, y: float) -> np.ndarray:
    """Indices of the standing bricks under the ball's pixels with its top-left at (x, y)."""
    b = self._g['ball']
    r, c = int(math.floor(y)), int(math.floor(x))
    if r >= self._s or r + b <= 0:
      return np.zeros(0, np.int64)
    ids = self._brick_index[max(r, 0):r + b, c:c + b].ravel()
    ids = ids[ids >= 0]
    return np.unique(ids[self._bricks.ravel()[ids]])

  def _move_ball(self) -> int:
    g, s = self._g, self._s
    b, wall = g['ball'], g['wall']
    substeps = max(1, int(math.ceil(max(abs(self._vx), abs(self._vy)))))
    reward = 0
    for _ in range(substeps):
      dx, dy = self._vx / substeps, self._vy / substeps
      x, y = self._x + dx, self._y + dy
      if x < wall:
        x, self._vx = 2 * wall - x, -self._vx
      elif x + b > s - wall:
        x, self._vx = 2 * (s - wall - b) - x, -self._vx
      if y < wall:
        y, self._vy = 2 * wall - y, -self._vy
      hit = self._bricks_under(x, y)
      if hit.size:
        self._bricks.ravel()[hit] = False
        reward += int(hit.size)
        self._vy = -self._vy
        y = self._y                       # back out of the brick row, now moving the other way
      top = g['paddle_row']
      if self._vy > 0 and math.floor(self._y) + b <= top < math.floor(y) + b:
        p = self._paddle_col()
        c = int(math.floor(x))
        if c + b > p and c < p + g['paddle_w']:
          offset = ((c + b / 2) - (p + g['paddle_w'] / 2)) / ((g['paddle_w'] + b) / 2)
          zone = int(np.clip(np.floor((offset + 1.0) * 2.0), 0, 3))
          self._vx = (-2, -1, 1, 2)[zone] * g['vx_unit']
          self._vy = -self._vy
          y = float(top - b)
      self._x, self._y = x, y
      if math.floor(self._y) >= s:
        self._in_play = False
        self._lives -= 1
        break
      if not self._bricks.any():
        break
    return reward

  def _observe(self) -> np.ndarray:
    frame = self._background.copy()
    alive = self._brick_pixels.copy()
    alive[alive] = self._bricks.ravel()[self._brick_index[alive]]
    frame[alive] = self._brick_grey[alive]
    g = self._g
    p = self._paddle_col()
    frame[g['paddle_row']:g['paddle_row'] + g['paddle_h'], p:p + g['paddle_w']] = PADDLE_GREY
    if self._in_play:
      bx, by = int(math.floor(self._x)), int(math.floor(self._y))
      frame[max(by, 0):by + g['ball'], bx:bx + g['ball']] = BALL_GREY
    return frame[np.newaxis, :, :, np.newaxis]


def make_mini_breakout(seed: int = 0, size: int = 42, max_steps: int = MAX_STEPS, lives: int = LIVES,
                       auto_serve: bool = False) -> MiniBreakout:
  """MiniBreakout at S = `size` (84, 42 or 21); see the module docstring."""
  return MiniBreakout(size=size, seed=seed, max_steps=max_steps, lives=lives, auto_serve=auto_serve)
