"""DeepMind Lab 2D "Cleanup" (real `dmlab2d==1.0.2` engine, level `clean_up`) behind `base.MultiAgentEnv`.

Thesis Sec. 4.3.2 (lines 3472-3489) and App. 4.B (lines 4149-4155); spec Sec. 2.1, 2.2, 5.2 and Sec. 8 items 7,
19 and 23:

  * 4 agents; mud spawns in the river at the top, apples grow at the bottom at a rate that falls with the amount
    of mud (the level's own dynamics, untouched).
  * Reward: +1 for each apple an agent eats, to that agent (thesis line 3484: "rewarded +1 for each apple
    eaten"). The level also charges -1 for firing the fine beam and -50 for being fined; those are set to 0 by
    default so the reward is exactly the thesis's (`fine_rewards` restores them). `shared_reward=True` gives
    every agent the team total (spec Sec. 8 item 19).
  * 1000 steps per episode (thesis line 3486). The level has no other ending, so the last step is a time-limit
    truncation (`discount == 1`, see `base`), unlike GRF's end of game.
  * Observation: a 72x96 RGB frame per agent in which "the state input for each agent colors itself blue and
    the others red" (thesis line 3487). Stacking 4 frames (done by `frame_stack.FrameStack`) gives the
    network input [N, 72, 96, 12] uint8.
  * Actions: the four categories of App. 4.B, chosen together, as one `Discrete(60)` (see `compose_action`).

Observation design. The level's own per-player view (`<i>.RGB`) is egocentric, 11x11 cells, rotates with the
player and draws the other players in their own colours (mint, carrot, pink), so it is neither 72x96 nor
blue/red. Following spec Sec. 5.2 we build a GLOBAL view instead from `WORLD.RGB`: the level's 21x30-cell map
rendered at 3 px per cell (the largest integer scale that fits: 63x90 px), centred on a black 72x96 canvas
(4 rows of padding above, 5 below, 3 columns left and right; black is the level's own out-of-bounds colour).
Integer scaling keeps every cell a clean 3x3 block, so the position target of the prediction objective is a
well-defined pixel. Each agent's 3x3 cell is then painted solid per observer: pure blue (0, 0, 255) for the
observer itself, pure red (255, 0, 0) for every other agent. At 3 px the level's 16x16 avatar sprite is an
unreadable blob, and no other sprite of the level uses these two colours, so the identity of every avatar is
unambiguous. Avatars' sprites do not rotate (`noRotate` in the level); the direction an avatar faces is shown,
as in the level, by the translucent grey cell the engine draws in front of it every step.

Fine beam. The thesis (line 4154) says the fine beam "freeze[s] other agents". The bundled level does that
only with `playerResetsAfterFined = true` (off by default): a fined avatar leaves the map and respawns at a
spawn point about 10 steps later. We turn it on (`fined_agents_respawn=True`), otherwise, with the thesis's
apple-only reward, the fine beam would do nothing at all. While an agent is out of the map it is drawn nowhere
(no blue in its own frame), and `agent_positions()` keeps its last cell; the engine reports an out-of-map
avatar through its egocentric layer view, which is then uniformly "out of view" (used to detect it).

`agent_positions()` (the Ch. 4 prediction target, spec Sec. 2.6 / Sec. 8 item 23) is the centre pixel of each
agent's cell in the 72x96 frame.

dmlab2d is imported lazily; without it every factory raises `base.EnvironmentUnavailableError` naming the pip
command. There is no stand-in fallback (shared/README).
"""

from typing import Dict, Optional, Sequence, Tuple

import dm_env
import numpy as np
from dm_env import specs

from rlcv_tf.envs import base

LEVEL = 'clean_up'
FRAME_HW = (72, 96)       # thesis line 3486
SPRITE_PX = 3             # 21x30 cells * 3 px = 63x90, the largest integer scale inside 72x96
EPISODE_LENGTH = 1000     # thesis line 3486
NUM_AGENTS = 4            # thesis line 3484
SELF_RGB = (0, 0, 255)    # "colors itself blue ..."
OTHER_RGB = (255, 0, 0)   # "... and the others red"

# App. 4.B (thesis lines 4149-4153), in the thesis's order. Values are the level's own action values:
#   move: 0 none, 1..4 = forward, right, backward, left relative to the avatar's facing (the level uses
#         `moveRel`; "up" is therefore "forward", a reading the thesis leaves open);
#   turn: -1 = turn left (counter-clockwise), +1 = right; fireClean / fireFine: 1 = fire.
MOVES = (('up', 1), ('down', 3), ('right', 2), ('left', 4), ('idle', 0))
TURNS = (('left', -1), ('right', 1), ('idle', 0))
FIRE = (('fire', 1), ('no_fire', 0))
NUM_ACTIONS = len(MOVES) * len(TURNS) * len(FIRE) * len(FIRE)  # 60, as the thesis says
_ENGINE_ACTION_NAMES = ('move', 'turn', 'fireClean', 'fireFine')

_INSTALL_HINT = ('DeepMind Lab 2D (the `dmlab2d` engine) is not installed in this Python environment. Install it '
                 'with `pip install dmlab2d==1.0.2` (a binary wheel that ships the `clean_up` level).')


def compose_action(move: int, turn: int, clean: int, fine: int) -> int:
  """Flat index of a (move, turn, fireClean, fireFine) choice, each an index into MOVES / TURNS / FIRE.

  Spec Sec. 2.2 proposal: ((move * 3 + turn) * 2 + clean) * 2 + fine. Index 59 is the no-op
  (idle, idle, no fire, no fire).
  """
  return ((move * len(TURNS) + turn) * len(FIRE) + clean) * len(FIRE) + fine


def decompose_action(action: int) -> Tuple[int, int, int, int]:
  """Inverse of `compose_action`: (move, turn, clean, fine) indices."""
  action, fine = divmod(int(action), len(FIRE))
  action, clean = divmod(action, len(FIRE))
  move, turn = divmod(action, len(TURNS))
  return move, turn, clean, fine


NOOP = compose_action(4, 2, 1, 1)

# [60, 4] table: flat action -> the level's values of (move, turn, fireClean, fireFine).
_ENGINE_VALUES = np.array([[MOVES[m][1], TURNS[t][1], FIRE[c][1], FIRE[f][1]]
                           for m, t, c, f in map(decompose_action, range(NUM_ACTIONS))], np.int32)


def _import_dmlab2d():
  try:
    import dmlab2d  # pylint: disable=g-import-not-at-top
    from dmlab2d import runfiles_helper  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise base.EnvironmentUnavailableError(f'{_INSTALL_HINT} (import failed: {e})') from None
  return dmlab2d, runfiles_helper


def check_available():
  _import_dmlab2d()


class DMLab2DCleanup(base.MultiAgentEnv):
  """`clean_up` with N players; observations uint8 [N, 72, 96, 3], self blue and others red in each frame."""

  def __init__(self, num_agents: int = NUM_AGENTS, episode_length: int = EPISODE_LENGTH, seed: int = 0,
               fined_agents_respawn: bool = True, fine_rewards: Tuple[float, float] = (0.0, 0.0),
               shared_reward: bool = False, level_settings: Optional[Dict[str, str]] = None):
    """Builds the engine.

    Args:
      num_agents: players, all controlled (thesis: 4).
      episode_length: steps per episode (thesis: 1000).
      seed: seeds the sequence of per-episode engine seeds, so a seed fixes every episode.
      fined_agents_respawn: the level's `playerResetsAfterFined` (see the module docstring).
      fine_rewards: (reward for firing a fine that hits, reward for being fined); the level's own are (-1, -50).
      shared_reward: give each agent the team's total apple reward instead of its own.
      level_settings: extra engine settings (dotted keys as the level reads them, e.g.
        `{'simulation.appleRespawnProbability': '0.1'}`), applied last.
    """
    dmlab2d, runfiles_helper = _import_dmlab2d()
    if num_agents < 1:
      raise ValueError(f'num_agents must be >= 1, got {num_agents}')
    if episode_length < 1:
      raise ValueError(f'episode_length must be >= 1, got {episode_length}')
    self._n = int(num_agents)
    self._shared = bool(shared_reward)
    self._track_out = bool(fined_agents_respawn)
    settings = {'levelName': LEVEL, 'numPlayers': str(self._n), 'spriteSize': str(SPRITE_PX),
                'episodeLengthFrames': str(int(episode_length))}
    for i in range(1, self._n + 1):
      prefix = f'avatars.player.{i}.'
      settings[prefix + 'rewardForFining'] = repr(float(fine_rewards[0]))
      settings[prefix + 'rewardForBeingFined'] = repr(float(fine_rewards[1]))
      settings[prefix + 'playerResetsAfterFined'] = 'true' if fined_agents_respawn else 'false'
    settings.update({str(k): str(v) for k, v in (level_settings or {}).items()})
    lab = dmlab2d.Lab2d(runfiles_helper.find(), settings)

    ids = range(1, self._n + 1)
    self._pos_names = [f'{i}.POSITION' for i in ids]
    self._reward_names = [f'{i}.REWARD' for i in ids]
    self._contrib_names = [f'{i}.CONTRIB' for i in ids]
    self._layer_names = [f'{i}.LAYER' for i in ids] if self._track_out else []
    names = (['WORLD.RGB'] + self._pos_names + self._reward_names + self._contrib_names + self._layer_names)
    self._env = dmlab2d.Environment(lab, names, seed=int(seed) % (2**31))
    self._action_keys = [[f'{i}.{a}' for a in _ENGINE_ACTION_NAMES] for i in ids]

    world_h, world_w = self._env.observation_spec()['WORLD.RGB'].shape[:2]
    if world_h > FRAME_HW[0] or world_w > FRAME_HW[1]:
      raise RuntimeError(f'{LEVEL} renders {world_h}x{world_w} px at {SPRITE_PX} px per cell, larger than the '
                         f'{FRAME_HW[0]}x{FRAME_HW[1]} frame of the thesis')
    self._map_cells = (world_h // SPRITE_PX, world_w // SPRITE_PX)
    self._top = (FRAME_HW[0] - world_h) // 2
    self._left = (FRAME_HW[1] - world_w) // 2
    self._canvas = np.zeros(FRAME_HW + (3,), np.uint8)
    self._cells = np.zeros((self._n, 2), np.int32)    # (row, col) of each avatar's cell on the map
    self._on_map = np.ones(self._n, bool)
    self._raw = None
    self._needs_reset = True
    self._stats = {}

  # ---------------------------------------------------------------------------------------------- interface
  @property
  def num_agents(self) -> int:
    return self._n

  @property
  def num_actions(self) -> int:
    return NUM_ACTIONS

  @property
  def map_hw(self) -> Tuple[int, int]:
    return FRAME_HW

  @property
  def map_cells(self) -> Tuple[int, int]:
    """(rows, cols) of the level's cell grid (21, 30)."""
    return self._map_cells

  def observation_spec(self) -> specs.Array:
    return specs.Array((self._n,) + FRAME_HW + (3,), np.uint8, name='rgb')

  def cell_to_pixel(self, cells: np.ndarray) -> np.ndarray:
    """Map cells (row, col) -> the centre pixel of that cell in the 72x96 frame."""
    offset = np.array([self._top, self._left], np.int32)
    return (offset + SPRITE_PX * np.asarray(cells, np.int32) + SPRITE_PX // 2).astype(np.int32)

  def agent_positions(self) -> np.ndarray:
    """int32 [N, 2]: centre pixel of each agent's cell (an out-of-map agent keeps its last cell)."""
    return self.cell_to_pixel(self._cells)

  def agents_on_map(self) -> np.ndarray:
    """bool [N]: False while an agent is out of the map after being fined."""
    return self._on_map.copy()

  def episode_info(self):
    return dict(self._stats)

  def raw_observation(self) -> Dict[str, np.ndarray]:
    """The engine's observations of the last step (WORLD.RGB, <i>.POSITION, <i>.REWARD, ...), for tests."""
    return self._raw

  def reset(self) -> dm_env.TimeStep:
    ts = self._env.reset()
    self._needs_reset = False
    self._on_map[:] = True
    self._stats = {'apples_team': 0.0, 'mud_cleaned_team': 0.0, 'fined_team': 0}
    return dm_env.restart(self._observe(ts.observation))

  def step(self, actions) -> dm_env.TimeStep:
    if self._needs_reset:
      return self.reset()
    actions = base.check_actions(actions, self._n, NUM_ACTIONS)
    values = _ENGINE_VALUES[actions]
    ts = self._env.step({key: int(v) for keys, row in zip(self._action_keys, values) for key, v in zip(keys, row)})
    obs = self._observe(ts.observation)
    reward = np.array([ts.observation[k] for k in self._reward_names], np.float32)
    self._stats['apples_team'] += float(reward.sum())
    self._stats['mud_cleaned_team'] += float(sum(ts.observation[k] for k in self._contrib_names))
    if self._shared:
      reward = np.full(self._n, reward.sum(), np.float32)
    if ts.last():
      self._needs_reset = True
      return dm_env.truncation(reward, obs)
    return dm_env.transition(reward, obs)

  def close(self):
    self._env.close()

  # ------------------------------------------------------------------------------------------------ drawing
  def _observe(self, raw) -> np.ndarray:
    """Builds the N recoloured 72x96 frames from the engine's world view and avatar positions."""
    self._raw = raw
    # The engine reports POSITION as (x, y) = (col, row); it keeps the last cell while an avatar is off the map.
    self._cells = np.array([raw[k][::-1] for k in self._pos_names], np.int32)
    if self._track_out:
      # An avatar without a piece on the map (fined, waiting to respawn) sees a uniform "out of view" layer.
      on_map = np.array([raw[k].min() != raw[k].max() for k in self._layer_names])
      self._stats['fined_team'] += int(np.sum(self._on_map & ~on_map))
      self._on_map = on_map
    world = raw['WORLD.RGB']
    canvas = self._canvas
    canvas[self._top:self._top + world.shape[0], self._left:self._left + world.shape[1]] = world
    top_left = np.array([self._top, self._left], np.int32) + SPRITE_PX * self._cells
    for j in np.flatnonzero(self._on_map):       # every avatar is an "other" (red) for someone
      r, c = top_left[j]
      canvas[r:r + SPRITE_PX, c:c + SPRITE_PX] = OTHER_RGB
    frames = np.repeat(canvas[np.newaxis], self._n, axis=0)
    for i in np.flatnonzero(self._on_map):       # ... and blue to itself
      r, c = top_left[i]
      frames[i, r:r + SPRITE_PX, c:c + SPRITE_PX] = SELF_RGB
    return frames


def make_cleanup(seed: int = 0, num_agents: int = NUM_AGENTS, episode_length: int = EPISODE_LENGTH,
                 fined_agents_respawn: bool = True, fine_rewards: Sequence[float] = (0.0, 0.0),
                 shared_reward: bool = False, level_settings: Optional[Dict[str, str]] = None) -> DMLab2DCleanup:
  """The thesis's Cleanup: 4 agents, 60 actions, +1 per apple, 1000 steps, self-blue/others-red 72x96 frames."""
  return DMLab2DCleanup(num_agents=num_agents, episode_length=episode_length, seed=seed,
                        fined_agents_respawn=fined_agents_respawn, fine_rewards=tuple(fine_rewards),
                        shared_reward=shared_reward, level_settings=level_settings)
