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
"""

import hashlib
import importlib.metadata
import json
import os
from typing import Any, Dict, Optional, Tuple

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


class AtariEnv(gymnasium_env.GymnasiumEnv):
  """One ALE game, N = 1; observations float32 [1, 80, 80, 1] (module docstring)."""

  def __init__(self, game: str, seed: int = 0, max_num_frames_per_episode: int = MAX_FRAMES_PER_EPISODE,
               crop_rows: Tuple[int, int] = CROP_ROWS, frame_hw: Tuple[int, int] = FRAME_HW,
               norm_alpha: float = preprocessing.NORM_ALPHA):
    ale_py, gymnasium = _import_ale()
    check_roms((game,))
    if not 0 <= crop_rows[0] < crop_rows[1] <= 210:
      raise ValueError(f'crop_rows must satisfy 0 <= start < stop <= 210, got {crop_rows}')
    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)  # before the first ALEInterface: no banner
    env = gymnasium.make(env_id(game), frameskip=FRAMESKIP, repeat_action_probability=0.0,
                         full_action_space=False, obs_type='grayscale',
                         max_num_frames_per_episode=int(max_num_frames_per_episode), disable_env_checker=True)
    super().__init__(env, seed=seed, num_actions=int(env.action_space.n))
    self.game = game
    self._ale = env.unwrapped.ale
    self._crop = (int(crop_rows[0]), int(crop_rows[1]))
    self._hw = (int(frame_hw[0]), int(frame_hw[1]))
    self._normalizer = preprocessing.RunningFrameNormalizer(norm_alpha)
    self._observation_spec = specs.Array((1,) + self._hw + (1,), np.float32, name='frame')
    self.ale_settings = ale_settings(game, max_num_frames_per_episode, self._crop, self._hw, norm_alpha)

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

  def _observe(self, raw) -> np.ndarray:
    crop = np.asarray(raw)[self._crop[0]:self._crop[1]]
    frame = preprocessing.normalise_frame(crop, self._normalizer, self._hw)
    return frame[np.newaxis, :, :, np.newaxis]

  def _episode_frame_count(self, info, engine_steps: int) -> int:
    del info, engine_steps
    return int(self._ale.getEpisodeFrameNumber())

  def episode_info(self) -> Dict[str, Any]:
    info = super().episode_info()
    info['lives'] = int(self._ale.lives())
    return info


def make_atari(seed: int = 0, game: str = 'seaquest', **kwargs) -> AtariEnv:
  """Any ROM id ale-py ships (the registry names the seven thesis games); keyword arguments as `AtariEnv`."""
  return AtariEnv(game, seed=seed, **kwargs)
