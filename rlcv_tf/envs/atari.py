"""The seven Atari 2600 games of Chapter 2 on the real Arcade Learning Environment (ale-py 0.12.1).

Registry names `atari_<rom_id>`: `atari_seaquest`, `atari_beam_rider`, `atari_ms_pacman`, `atari_boxing`,
`atari_breakout`, `atari_qbert`, `atari_freeway` (thesis Table 2.C.1, T:L1588-1620, played as `<Game>-v4`).

Engine (issue 10 Sec. 1). gymnasium's `ALE/<Game>-v5` built with `frameskip=(2, 5)`, `repeat_action_probability=0.0`,
`full_action_space=False`, `obs_type="grayscale"`: each action is held for a number of frames drawn uniformly from
{2, 3, 4} by the environment's seeded generator (the thesis's stochastic frame skip, T:L1080-1082), no sticky
actions, the game's minimal action set. These are exactly ale-py's `<Game>-v4` settings. The ROMs ship inside
the ale-py wheel; nothing is downloaded. Differences from the thesis's set-up (2019, gym's `-v4` on atari-py): ALE
0.12 instead of the ALE of then, and ALE's episode cap of 108,000 emulator frames (30 minutes of play) where gym's
`-v4` then stopped an episode at 100,000 agent steps. Freeway keeps ALE's 3 actions (the thesis says 2).

Observation (T:L1095-1097; spec Sec. 2.1): the 210x160 grayscale screen, rows 34:194 (the 160x160 playing area),
normalised by a per-environment running scalar mean/std (`preprocessing`, alpha 0.9999), area-resized to 80x80:
float32 [1, 80, 80, 1]. Rewards are the game's raw score changes (clipping to [-1, 1] is the learner's, and not
for Freeway). `episode_info()` has the episode's `score`, its emulator `frames` (ALE's counter) and agent
`steps`; `ale_settings` (also `ale_settings(game)` without an engine) is the dict a run writes to config.json.

ale_py is imported lazily. A missing engine, a missing ROM or an unknown game raises
`base.EnvironmentUnavailableError` with one line saying what to do.

Presets (`preset=`; all through this one class and `make_atari`). 'thesis' (the default) is everything above,
unchanged. The companion seeds' presets (registry chapter 0, issue 14) build the engine with `frameskip=1`; the
adapter repeats each action 4 times (deterministic frame skip), observations are uint8 and `ale_settings` has a
`preset` key and says what the preset did (the thesis dict is as before, without that key):
  seed001      (seed 001 spec Sec. 2.1; the paper states only "grey, 84x84, no crop"; the rest are the spec's
               proposals, A11): the last frame of each repeat (no max over frames), the whole 210x160 screen in
               ALE's own greyscale (`obs_type='grayscale'`, which is what gymnasium's
               `AtariPreprocessing(grayscale_obs=True)` reads; on the NTSC palette it equals
               round(0.299 R + 0.587 G + 0.114 B), tests/test_envs_atari_seeds.py checks this on real frames),
               area-resized with cv2.INTER_AREA to uint8 [1, 84, 84, 1]. No sticky actions. At reset, 1..30 NOOP
               engine frames (uniform, from the adapter's seeded generator, as AtariPreprocessing's `noop_max=30`),
               then FIRE for one agent step; after a step in which ALE's lives counter fell (and the game goes on),
               FIRE is held for 4 more frames inside that step, so the ball is served again without the agent's
               FIRE (spec: "fire-on-reset / fire-after-life-loss", as the entropy bonus is 0). Truncation after
               27,000 agent steps (ALE's own frame cap is off). Rewards raw: sign clipping is the learner's; the
               raw score stays in `episode_info()['score']`. gymnasium's AtariPreprocessing would also take the
               max of the last two frames; the paper does not mention it and this preset does not do it.
  seed002      (seed 002 S:L841-862; spec seed002 Sec. 4): the per-channel max of the last two RGB frames of each
               repeat (sprites flicker), luminance Y = 0.2126 R + 0.7152 G + 0.0722 B (S:L855, Eq. 4.1), the whole
               screen (or `crop_rows`, the draft's "cropped" as an option) area-resized (cv2.INTER_AREA, on the
               float luminance, then rounded) to uint8 [1, 84, 84, 1]. Sticky actions 0.25 (ALE v5's default; the
               spec's proposal), no no-ops, no automatic FIRE, ALE's 108,000-frame cap, raw rewards.
  seed002_rgb  seed002 keeping the max-pooled RGB: uint8 [1, 84, 84, 3].
  nature_dqn   (seeds 003-004, issue 15; Mnih et al. 2015, Methods "Preprocessing" [orig]: the slides give only
               "84x84, last 4 frames"): the per-channel max of the last two RGB frames of each repeat, the Y channel
               (0.299 R + 0.587 G + 0.114 B), the whole screen area-resized to uint8 [1, 84, 84, 1]; 1..30 no-ops
               at reset, no sticky actions, no automatic FIRE, ALE's 108,000-frame cap, raw rewards (the DQN
               learner sign-clips them); the 4-frame stack is the learner's (registry default_frames = 4). Not
               done: ending training episodes at a lost life (a habit of DeepMind's code, not in the paper).
Breakout in any preset: `object_positions()` gives the AtariARI RAM annotations (ball_x = RAM[99], ball_y = RAM[101],
paddle_x = RAM[72]), the lives, and where they are on the 210x160 screen. Measured on ALE 0.12.1 (the test checks
it on real frames): the ball is 2 columns x 4 rows with its top-left pixel at (row RAM[101] + 9, column
RAM[99] - 49); the paddle's leftmost column is RAM[72] - 47; RAM[101] is 0 while no ball is in play. The seed
presets also put these numbers in `episode_info()`.
"""

import hashlib
import importlib.metadata
import json
import os
from typing import Any, Dict, Optional, Tuple

import dm_env
import numpy as np
from dm_env import specs

from rlcv_tf.envs import base
from rlcv_tf.envs import gymnasium_env
from rlcv_tf.envs import preprocessing

# Thesis order (Table 2.1). Minimal action-set sizes as ale-py 0.12.1 reports them (tests/test_envs_atari.py
# checks them against the engine); the thesis gives Freeway 2.
THESIS_GAMES = ('seaquest', 'beam_rider', 'ms_pacman', 'boxing', 'breakout', 'qbert', 'freeway')
MINIMAL_ACTIONS = {'seaquest': 18, 'beam_rider': 9, 'ms_pacman': 9, 'boxing': 18, 'breakout': 4, 'qbert': 6,
                   'freeway': 3}
ALE_PY_VERSION = '0.12.1'
FRAMESKIP = (2, 5)                      # gymnasium's half-open range: {2, 3, 4}
MAX_FRAMES_PER_EPISODE = 108_000
CROP_ROWS = (34, 194)
FRAME_HW = (80, 80)

# Companion-seed presets (module docstring). 'thesis' is the Chapter 2 adapter above.
PRESETS = ('thesis', 'seed001', 'seed002', 'seed002_rgb', 'nature_dqn')
SEED_ACTION_REPEAT = 4
SEED_FRAME_HW = (84, 84)
SEED001_NOOP_MAX = 30
SEED001_MAX_AGENT_STEPS = 27_000
SEED002_STICKY = 0.25
LUMINANCE = (0.2126, 0.7152, 0.0722)     # seed 002 Eq. (4.1), S:L855
LUMA_Y = (0.299, 0.587, 0.114)           # the Y of YUV (BT.601): Nature DQN's "luminance" (Mnih et al. 2015)
NATURE_NOOP_MAX = 30
# Breakout's AtariARI RAM annotations and where they land on the 210x160 screen (measured; module docstring).
BREAKOUT_RAM = {'ball_x': 99, 'ball_y': 101, 'paddle_x': 72}
BREAKOUT_BALL_OFFSET = (9, -49)          # (row, column) = (RAM[101] + 9, RAM[99] - 49)
BREAKOUT_PADDLE_OFFSET = -47             # column = RAM[72] - 47
BREAKOUT_GEOMETRY = {'ball': 2, 'ball_h': 4, 'paddle_w': 16, 'paddle_row': 189, 'size': 160}

PIP_ALE = f'pip install ale-py=={ALE_PY_VERSION}'
PIP_ALE_REINSTALL = f'pip install --force-reinstall ale-py=={ALE_PY_VERSION}'
LIST_ROMS = 'python -c "import ale_py.roms as r; print(r.get_all_rom_ids())"'


def env_id(game: str) -> str:
  """'beam_rider' -> 'ALE/BeamRider-v5' (ale-py's id for a ROM id)."""
  return 'ALE/' + ''.join(part.capitalize() for part in game.split('_')) + '-v5'


def ale_settings(game: str, max_num_frames_per_episode: int = MAX_FRAMES_PER_EPISODE,
                 crop_rows: Tuple[int, int] = CROP_ROWS, frame_hw: Tuple[int, int] = FRAME_HW,
                 norm_alpha: float = preprocessing.NORM_ALPHA) -> Dict[str, Any]:
  """What a run records about the engine and the preprocessing (JSON-ready; needs no engine)."""
  try:
    version = importlib.metadata.version('ale-py')
  except importlib.metadata.PackageNotFoundError:
    version = None
  return {
      'env_id': env_id(game), 'game': game, 'ale_py': version,
      'frameskip': list(FRAMESKIP), 'frameskip_values': list(range(*FRAMESKIP)),
      'repeat_action_probability': 0.0, 'full_action_space': False, 'obs_type': 'grayscale',
      'max_num_frames_per_episode': int(max_num_frames_per_episode),
      'crop_rows': list(crop_rows), 'frame_hw': list(frame_hw), 'normalizer_alpha': float(norm_alpha),
      'rewards': 'raw',
  }


def seed_settings(game: str, preset: str, crop_rows: Optional[Tuple[int, int]] = None,
                  frame_hw: Tuple[int, int] = SEED_FRAME_HW, max_agent_steps: Optional[int] = None,
                  noop_max: Optional[int] = None, repeat_action_probability: Optional[float] = None,
                  max_num_frames_per_episode: Optional[int] = None) -> Dict[str, Any]:
  """What a companion-seed preset does (JSON-ready, needs no engine); None arguments take the preset's value."""
  if preset not in PRESETS[1:]:
    raise ValueError(f'unknown Atari preset {preset!r}; valid: {", ".join(PRESETS)}')
  try:
    version = importlib.metadata.version('ale-py')
  except importlib.metadata.PackageNotFoundError:
    version = None
  seed001 = preset == 'seed001'
  nature = preset == 'nature_dqn'
  if max_agent_steps is None:
    max_agent_steps = SEED001_MAX_AGENT_STEPS if seed001 else 0
  if max_num_frames_per_episode is None:
    max_num_frames_per_episode = 0 if seed001 else MAX_FRAMES_PER_EPISODE
  if noop_max is None:
    noop_max = SEED001_NOOP_MAX if seed001 else NATURE_NOOP_MAX if nature else 0
  if repeat_action_probability is None:
    repeat_action_probability = 0.0 if (seed001 or nature) else SEED002_STICKY
  channels = 3 if preset == 'seed002_rgb' else 1
  return {
      'env_id': env_id(game), 'game': game, 'ale_py': version, 'preset': preset,
      'frameskip': 1, 'action_repeat': SEED_ACTION_REPEAT, 'frame_skip_kind': 'deterministic (adapter repeats)',
      'max_of_last_two_frames': not seed001,
      'repeat_action_probability': float(repeat_action_probability), 'full_action_space': False,
      'obs_type': 'grayscale' if seed001 else 'rgb',
      'colour': ('ALE greyscale (round(0.299 R + 0.587 G + 0.114 B) on the NTSC palette)' if seed001 else
                 'luminance Y = 0.299 R + 0.587 G + 0.114 B' if nature else
                 'luminance 0.2126 R + 0.7152 G + 0.0722 B' if channels == 1 else 'RGB'),
      'crop_rows': list(crop_rows) if crop_rows else None, 'resize': 'cv2.INTER_AREA',
      'frame_hw': list(frame_hw), 'observation': f'uint8 [1, {frame_hw[0]}, {frame_hw[1]}, {channels}]',
      'noop_max': int(noop_max), 'noops': 'uniform 1..noop_max NOOP engine frames at reset' if noop_max else 'none',
      'fire_on_reset': seed001, 'fire_after_life_loss': seed001,
      'max_agent_steps': int(max_agent_steps) or None,
      'max_num_frames_per_episode': int(max_num_frames_per_episode) or None,
      'rewards': ('raw (the learner sign-clips; the raw score is episode_info score)' if (seed001 or nature)
                  else 'raw'),
  }


def _import_ale():
  try:
    import ale_py  # pylint: disable=g-import-not-at-top
    import gymnasium  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise base.EnvironmentUnavailableError(
        f'the Atari engine ale-py is not installed ({e}): run `{PIP_ALE}` (its wheel ships the ROMs) or '
        '`bash scripts/setup.sh`') from None
  return ale_py, gymnasium


def rom_dir() -> str:
  """Where ale-py loads ROMs from: $ALE_ROMS_DIR if set, else the `roms` folder inside the installed ale-py."""
  override = os.environ.get('ALE_ROMS_DIR')
  if override:
    return os.path.abspath(override)
  ale_py, _ = _import_ale()
  return os.path.join(os.path.dirname(ale_py.__file__), 'roms')


def _expected_md5() -> Dict[str, str]:
  ale_py, _ = _import_ale()
  with open(os.path.join(os.path.dirname(ale_py.__file__), 'roms', 'md5.json')) as f:
    return json.load(f)


def check_roms(games) -> None:
  """`EnvironmentUnavailableError` (one line) if a game is unknown to ale-py, or its ROM file is missing or is not
  the file ale-py expects; the missing ones are named together."""
  expected = _expected_md5()
  unknown = [g for g in games if f'{g}.bin' not in expected]
  if unknown:
    raise base.EnvironmentUnavailableError(
        f'unknown Atari game {", ".join(map(repr, unknown))}: the thesis games are '
        f'{", ".join("atari_" + g for g in THESIS_GAMES)}; list the ROM ids ale-py ships with `{LIST_ROMS}`')
  where = rom_dir()
  missing = [f'{g}.bin' for g in games if not os.path.isfile(os.path.join(where, f'{g}.bin'))]
  if missing:
    via = (' (set by $ALE_ROMS_DIR: unset it to use the ROMs inside ale-py)' if os.environ.get('ALE_ROMS_DIR')
           else '')
    raise base.EnvironmentUnavailableError(
        f'the Atari ROM{"s" if len(missing) > 1 else ""} {", ".join(missing)} {"are" if len(missing) > 1 else "is"} '
        f'missing from {where}{via}; ale-py {ALE_PY_VERSION} ships them in its wheel: reinstall it with '
        f'`{PIP_ALE_REINSTALL}`')
  for g in games:
    path = os.path.join(where, f'{g}.bin')
    with open(path, 'rb') as f:
      md5 = hashlib.md5(f.read()).hexdigest()
    if md5 != expected[f'{g}.bin']:
      raise base.EnvironmentUnavailableError(
          f'the Atari ROM {path} is not the file ale-py expects (md5 {md5}, expected {expected[g + ".bin"]}): '
          f'reinstall with `{PIP_ALE_REINSTALL}`')


def check_available(game: Optional[str] = None) -> None:
  """ale-py imports and the ROM of `game` (default: all seven thesis games) is in place (`check_roms`)."""
  check_roms((game,) if game else THESIS_GAMES)


_DEFAULT = object()   # "the preset's value" for AtariEnv arguments whose thesis default differs from the seeds'


class AtariEnv(gymnasium_env.GymnasiumEnv):
  """One ALE game, N = 1; observations float32 [1, 80, 80, 1] ('thesis') or the seed presets' uint8 frames
  (module docstring)."""

  def __init__(self, game: str, seed: int = 0, max_num_frames_per_episode=_DEFAULT, crop_rows=_DEFAULT,
               frame_hw=_DEFAULT, norm_alpha: float = preprocessing.NORM_ALPHA, preset: str = 'thesis',
               max_agent_steps: Optional[int] = None, noop_max: Optional[int] = None,
               repeat_action_probability: Optional[float] = None):
    if preset not in PRESETS:
      raise ValueError(f'unknown Atari preset {preset!r}; valid: {", ".join(PRESETS)}')
    thesis = preset == 'thesis'
    if thesis and (max_agent_steps is not None or noop_max is not None or repeat_action_probability is not None):
      raise ValueError('max_agent_steps, noop_max and repeat_action_probability are for the seed presets; the '
                       'thesis preset is fixed (module docstring)')
    if crop_rows is _DEFAULT:
      crop_rows = CROP_ROWS if thesis else None
    if frame_hw is _DEFAULT:
      frame_hw = FRAME_HW if thesis else SEED_FRAME_HW
    if max_num_frames_per_episode is _DEFAULT:
      max_num_frames_per_episode = MAX_FRAMES_PER_EPISODE if thesis else None
    ale_py, gymnasium = _import_ale()
    check_roms((game,))
    if crop_rows is not None and not 0 <= crop_rows[0] < crop_rows[1] <= 210:
      raise ValueError(f'crop_rows must satisfy 0 <= start < stop <= 210, got {crop_rows}')
    if not thesis and noop_max is not None and noop_max < 0:
      raise ValueError(f'noop_max must be >= 0, got {noop_max}')
    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)  # before the first ALEInterface: no banner
    self.preset = preset
    if thesis:
      env = gymnasium.make(env_id(game), frameskip=FRAMESKIP, repeat_action_probability=0.0,
                           full_action_space=False, obs_type='grayscale',
                           max_num_frames_per_episode=int(max_num_frames_per_episode), disable_env_checker=True)
      settings = ale_settings(game, max_num_frames_per_episode, crop_rows, frame_hw, norm_alpha)
    else:
      settings = seed_settings(game, preset, crop_rows, frame_hw, max_agent_steps, noop_max,
                               repeat_action_probability, max_num_frames_per_episode)
      env = gymnasium.make(env_id(game), frameskip=1,
                           repeat_action_probability=settings['repeat_action_probability'],
                           full_action_space=False, obs_type=settings['obs_type'],
                           max_num_frames_per_episode=settings['max_num_frames_per_episode'] or 0,
                           disable_env_checker=True)
    super().__init__(env, seed=seed, num_actions=int(env.action_space.n))
    self.game = game
    self._ale = env.unwrapped.ale
    self._crop = (int(crop_rows[0]), int(crop_rows[1])) if crop_rows is not None else None
    self._hw = (int(frame_hw[0]), int(frame_hw[1]))
    self.ale_settings = settings
    if thesis:
      self._normalizer = preprocessing.RunningFrameNormalizer(norm_alpha)
      self._observation_spec = specs.Array((1,) + self._hw + (1,), np.float32, name='frame')
      return
    self._normalizer = None
    channels = 3 if preset == 'seed002_rgb' else 1
    self._observation_spec = specs.Array((1,) + self._hw + (channels,), np.uint8, name='frame')
    self._repeat = SEED_ACTION_REPEAT
    self._max_pool = settings['max_of_last_two_frames']
    self._noop_max = settings['noop_max']
    self._max_agent_steps = settings['max_agent_steps'] or 0
    names = [a.name for a in self._ale.getMinimalActionSet()]
    self._fire = names.index('FIRE') if ('FIRE' in names and settings['fire_on_reset']) else None
    self._latest = self._previous = None     # the last two engine frames (the max of seed002)
    self._lives_before = 0
    self.noops = 0                           # NOOP frames of the current episode's reset

  @property
  def ale(self):
    """The engine's `ALEInterface` (frame counters, lives, RAM) for tests and tools."""
    return self._ale

  @property
  def action_names(self) -> Tuple[str, ...]:
    """ALE's names of the minimal action set, in action-index order."""
    return tuple(a.name for a in self._ale.getMinimalActionSet())

  @property
  def normalizer(self) -> preprocessing.RunningFrameNormalizer:
    return self._normalizer

  @property
  def has_object_positions(self) -> bool:
    """Whether `object_positions()` has RAM annotations (Breakout only)."""
    return self.game == 'breakout'

  @property
  def geometry(self) -> Dict[str, int]:
    """Breakout's sprite sizes on the 210x160 screen (ball width/height, paddle width and top row)."""
    return dict(BREAKOUT_GEOMETRY)

  def object_positions(self) -> Dict[str, int]:
    """Breakout's AtariARI RAM annotations `ball_x` (RAM[99]), `ball_y` (RAM[101]), `paddle_x` (RAM[72]), the
    `lives`, and on the 210x160 screen the ball's top-left `ball_row`, `ball_col` (-1, -1 while RAM[101] is 0: no
    ball in play) and the paddle's leftmost `paddle_col`. Other games: only `lives`, the rest -1."""
    lives = int(self._ale.lives())
    if not self.has_object_positions:
      return {'ball_x': -1, 'ball_y': -1, 'paddle_x': -1, 'lives': lives, 'ball_row': -1, 'ball_col': -1,
              'paddle_col': -1}
    ram = self._ale.getRAM()
    bx, by, px = (int(ram[BREAKOUT_RAM[k]]) for k in ('ball_x', 'ball_y', 'paddle_x'))
    in_play = by != 0
    return {'ball_x': bx, 'ball_y': by, 'paddle_x': px, 'lives': lives,
            'ball_row': by + BREAKOUT_BALL_OFFSET[0] if in_play else -1,
            'ball_col': bx + BREAKOUT_BALL_OFFSET[1] if in_play else -1,
            'paddle_col': px + BREAKOUT_PADDLE_OFFSET}

  # ------------------------------------------------------------------------------------------- observations
  def _observe(self, raw) -> np.ndarray:
    if self._normalizer is not None:
      crop = np.asarray(raw)[self._crop[0]:self._crop[1]]
      frame = preprocessing.normalise_frame(crop, self._normalizer, self._hw)
      return frame[np.newaxis, :, :, np.newaxis]
    import cv2  # pylint: disable=g-import-not-at-top
    frame = np.asarray(raw)
    if self._max_pool and self._previous is not None:
      frame = max_of_last_two(self._previous, frame)
    if self.preset == 'seed002':
      frame = luminance(frame)
    elif self.preset == 'nature_dqn':
      frame = luminance(frame, LUMA_Y)
    if self._crop is not None:
      frame = frame[self._crop[0]:self._crop[1]]
    small = cv2.resize(frame, (self._hw[1], self._hw[0]), interpolation=cv2.INTER_AREA)
    if small.dtype != np.uint8:
      small = np.clip(np.rint(small), 0, 255).astype(np.uint8)
    return small.reshape(self._observation_spec.shape)

  # ------------------------------------------------------------------------------ the seed presets' engine loop
  def _repeat_count(self) -> int:
    return 1 if self._normalizer is not None else self._repeat

  def _track(self, raw):
    self._previous, self._latest = self._latest, raw

  def _after_reset(self, raw):
    if self._normalizer is not None:
      return raw
    self._previous, self._latest = None, raw
    self.noops = int(self.np_random.integers(1, self._noop_max + 1)) if self._noop_max else 0
    for _ in range(self.noops):
      raw, _, terminated, truncated, _ = self._env.step(0)
      self._track(raw)
      if terminated or truncated:    # as AtariPreprocessing does: start again
        raw, _ = self._env.reset()
        self._previous, self._latest = None, raw
    if self._fire is not None:
      fired, reward, terminated, truncated, _ = self._hold_fire()
      self._score += reward
      if terminated or truncated:
        raw, _ = self._env.reset()
        self._previous, self._latest = None, raw
      else:
        raw = fired
    self._episode_frames = int(self._ale.getEpisodeFrameNumber())
    return raw

  def _hold_fire(self):
    """FIRE for one agent step's frames (fewer if the episode ends): (last raw, summed reward, terminated,
    truncated, info)."""
    reward, out = 0.0, None
    for _ in range(self._repeat):
      out = self._env.step(self._fire)
      self._track(out[0])
      reward += float(out[1])
      if out[2] or out[3]:
        break
    return out[0], reward, out[2], out[3], out[4]

  def _engine_action(self, action):
    if self._normalizer is None:
      self._lives_before = int(self._ale.lives())
    return action

  def _engine_step(self, action, last_of_repeat: bool):
    out = self._env.step(action)
    if self._normalizer is not None:
      return out
    raw, reward, terminated, truncated, info = out
    self._track(raw)
    if (last_of_repeat and self._fire is not None and not (terminated or truncated)
        and int(self._ale.lives()) < self._lives_before):
      raw, fire_reward, terminated, truncated, info = self._hold_fire()     # serve again
      reward = float(reward) + fire_reward
    return raw, reward, terminated, truncated, info

  def step(self, actions) -> dm_env.TimeStep:
    ts = super().step(actions)
    if (self._normalizer is None and self._max_agent_steps and ts.mid()
        and self._steps >= self._max_agent_steps):
      self._needs_reset = True
      return dm_env.truncation(ts.reward, ts.observation)
    return ts

  def _episode_frame_count(self, info, engine_steps: int) -> int:
    del info, engine_steps
    return int(self._ale.getEpisodeFrameNumber())

  def episode_info(self) -> Dict[str, Any]:
    info = super().episode_info()
    info['lives'] = int(self._ale.lives())
    if self._normalizer is None:
      info['noops'] = int(self.noops)
      if self.has_object_positions:
        positions = self.object_positions()
        info.update({k: positions[k] for k in ('ball_x', 'ball_y', 'paddle_x')})
    return info


def luminance(rgb: np.ndarray, weights: Tuple[float, float, float] = LUMINANCE) -> np.ndarray:
  """uint8 [..., 3] -> float32 [...] luminance in [0, 255]: by default 0.2126 R + 0.7152 G + 0.0722 B (seed 002
  Eq. 4.1); `LUMA_Y` for Nature DQN's Y channel."""
  x = np.asarray(rgb, np.float32)
  r, g, b = (np.float32(w) for w in weights)
  return x[..., 0] * r + x[..., 1] * g + x[..., 2] * b


def max_of_last_two(previous: np.ndarray, latest: np.ndarray) -> np.ndarray:
  """The per-channel maximum of two RGB frames (seed 002 S:L849: a sprite drawn in either is kept)."""
  return np.maximum(previous, latest)


def make_atari(seed: int = 0, game: str = 'seaquest', **kwargs) -> AtariEnv:
  """Any ROM id ale-py ships (the registry names the seven thesis games and the seed presets); keyword arguments
  as `AtariEnv` (`preset='thesis' | 'seed001' | 'seed002' | 'seed002_rgb' | 'nature_dqn'`)."""
  return AtariEnv(game, seed=seed, **kwargs)
