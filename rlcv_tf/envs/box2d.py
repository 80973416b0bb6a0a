"""BipedalWalker and CarRacing (gymnasium 1.4.0's Box2D environments) for Chapter 2's DDPG and ACER families.

Engine (issue 10 Sec. 1): `gymnasium[box2d]==1.4.0` installs, on Python 3.11, the binary wheel `box2d==2.3.10`
and pygame-ce: no swig and no compiler (never `box2d-py`, which is source only). `BipedalWalker-v3` and
`CarRacing-v3` stand in for the thesis's `BipedalWalker-v2` and `CarRacing-v0` (physics and reward fixes since).
Both run headless: pygame draws CarRacing's frames into an off-screen surface (`SDL_VIDEODRIVER=dummy` is set
unless the caller set it). Box2D and pygame are imported lazily; if either is missing every factory raises
`base.EnvironmentUnavailableError` with our install command (gymnasium's own hint, `pip install swig`, is wrong
for Python 3.11).

`bipedal_walker` (T:L1098-1103, App. 2.E): no preprocessing; the 24 state numbers as float32 [1, 24, 1], so the
registry's default `FrameStack(4)` gives the 1-D encoder's [1, 24, 4] (length 24, 4 channels). Actions float32
[1, 4] in [-1, 1]. 1,600 steps per episode (a truncation), -100 and the end for falling (a termination).

`car_racing` (App. 2.D, T:L1577-1637):
  * 12 discrete actions: {brake, gas, right, left} x intensities {1/3, 2/3, 1} ("soft, medium, and
    full-throttle"), index = 3 * category + intensity, each a fixed [steer, gas, brake] vector (`CAR_ACTIONS`).
    Full braking is 1.0 as the thesis and issue say; gymnasium's wheels lock above 0.9 (its own 5-action mode
    brakes at 0.8: pass `brake_scale=0.8` for that, spec Sec. 10's proposal).
  * each action is repeated for 4 physics steps (50 -> 12.5 decisions per second) and their rewards summed;
    CarRacing's time limit of 1,000 physics steps is 250 decisions;
  * static zoom: the game opens with a zoom animation over its first second ("irrelevant to our task, we set the
    zoom to a static value"); every observation here is drawn at the final zoom (the engine's clock is set past
    the animation after each reset: the clock only drives the zoom);
  * the 96x96 RGB frame, info bar kept, turned to gray (BT.601), normalised by the running scalar mean/std of
    `preprocessing` (alpha 0.9999, taken at 96x96) and area-resized to 80x80: float32 [1, 80, 80, 1]
    (`grayscale=False` keeps the 3 colour channels: [1, 80, 80, 3]);
  * only the last physics step of a repeat is drawn (the engine draws every step, and drawing is about two thirds
    of a step's cost); the observation is the same pixels (tests/test_envs_box2d.py checks it).
"""

import os
import warnings
from typing import Any, Dict, Optional, Tuple

import numpy as np
from dm_env import specs

from rlcv_tf.envs import base
from rlcv_tf.envs import gymnasium_env
from rlcv_tf.envs import preprocessing

GYMNASIUM_VERSION = '1.4.0'
INSTALL_BOX2D = f'pip install "gymnasium[box2d]=={GYMNASIUM_VERSION}"'

CAR_REPEAT = 4                                  # T:L1630-1632
CAR_FRAME_HW = (80, 80)
CAR_CATEGORIES = ('brake', 'gas', 'right', 'left')
CAR_INTENSITIES = (1.0 / 3.0, 2.0 / 3.0, 1.0)


def car_actions(brake_scale: float = 1.0) -> np.ndarray:
  """float32 [12, 3] table of [steer, gas, brake] (gymnasium's order; steer +1 is right) per discrete action."""
  rows = []
  for category in CAR_CATEGORIES:
    for i in CAR_INTENSITIES:
      rows.append({'brake': (0.0, 0.0, brake_scale * i), 'gas': (0.0, i, 0.0), 'right': (i, 0.0, 0.0),
                   'left': (-i, 0.0, 0.0)}[category])
  return np.array(rows, np.float32)


CAR_ACTIONS = car_actions()
CAR_ACTION_NAMES = tuple(f'{c}_{k}of3' for c in CAR_CATEGORIES for k in (1, 2, 3))


def _import_box2d():
  os.environ.setdefault('SDL_VIDEODRIVER', 'dummy')
  os.environ.setdefault('PYGAME_HIDE_SUPPORT_PROMPT', '1')
  try:
    with warnings.catch_warnings():
      # box2d 2.3.10's SWIG types warn on Python 3.11 about their own `__module__`: nothing a user can act on.
      warnings.filterwarnings('ignore', message=r'builtin type \w+ has no __module__ attribute',
                              category=DeprecationWarning)
      import Box2D  # pylint: disable=g-import-not-at-top,unused-import
      import pygame  # pylint: disable=g-import-not-at-top,unused-import
      import gymnasium  # pylint: disable=g-import-not-at-top
      from gymnasium.envs import box2d as gym_box2d  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise base.EnvironmentUnavailableError(
        f'Box2D and pygame are needed for BipedalWalker and CarRacing ({e}): run `{INSTALL_BOX2D}` (the binary '
        'wheel box2d==2.3.10 and pygame-ce; no swig or compiler on Python 3.11) or `bash scripts/setup.sh`'
    ) from None
  return gymnasium, gym_box2d


def check_available() -> None:
  _import_box2d()


class BipedalWalker(gymnasium_env.GymnasiumEnv):
  """BipedalWalker-v3, N = 1: observations float32 [1, 24, 1], actions float32 [1, 4] in [-1, 1]."""

  def __init__(self, seed: int = 0, hardcore: bool = False):
    gymnasium, _ = _import_box2d()
    env = gymnasium.make('BipedalWalker-v3', hardcore=bool(hardcore), disable_env_checker=True)
    space = env.action_space
    super().__init__(env, seed=seed, action_bounds=(space.low, space.high))
    dim = int(np.prod(env.observation_space.shape))
    self._observation_spec = specs.Array((1, dim, 1), np.float32, name='state')

  def _observe(self, raw) -> np.ndarray:
    return np.asarray(raw, np.float32).reshape(1, -1, 1)


_CAR_RACING_CLASS = None


def _car_racing_class():
  """gymnasium's CarRacing whose state frame can be left undrawn for the inner steps of an action repeat."""
  global _CAR_RACING_CLASS
  if _CAR_RACING_CLASS is None:
    _, gym_box2d = _import_box2d()

    class _CarRacing(gym_box2d.CarRacing):
      skip_state_pixels = False

      def _render(self, mode: str):
        if mode == 'state_pixels' and self.skip_state_pixels and getattr(self, 'state', None) is not None:
          return self.state   # this frame is never observed; the next drawn one is
        return super()._render(mode)

    _CAR_RACING_CLASS = _CarRacing
  return _CAR_RACING_CLASS


class CarRacing(gymnasium_env.GymnasiumEnv):
  """CarRacing-v3 with 12 discrete actions, repeat 4, static zoom, 80x80 normalised frames (module docstring)."""

  def __init__(self, seed: int = 0, repeat: int = CAR_REPEAT, frame_hw: Tuple[int, int] = CAR_FRAME_HW,
               grayscale: bool = True, brake_scale: float = 1.0, static_zoom: bool = True,
               skip_hidden_frames: bool = True, norm_alpha: float = preprocessing.NORM_ALPHA,
               max_episode_steps: Optional[int] = None):
    gymnasium, _ = _import_box2d()
    if repeat < 1:
      raise ValueError(f'repeat must be >= 1, got {repeat}')
    registered = gymnasium.spec('CarRacing-v3')
    limit = int(max_episode_steps or registered.max_episode_steps)
    core = _car_racing_class()(continuous=True)
    env = gymnasium.wrappers.TimeLimit(core, max_episode_steps=limit)
    super().__init__(env, seed=seed, num_actions=len(CAR_ACTIONS))
    self._core = core
    self._repeat = int(repeat)
    self._hw = (int(frame_hw[0]), int(frame_hw[1]))
    self._gray = bool(grayscale)
    self._static_zoom = bool(static_zoom)
    self._skip = bool(skip_hidden_frames)
    self.actions_table = car_actions(brake_scale)
    self._normalizer = preprocessing.RunningFrameNormalizer(norm_alpha)
    self._observation_spec = specs.Array((1,) + self._hw + (1 if self._gray else 3,), np.float32, name='frame')
    self.max_episode_steps = limit

  @property
  def normalizer(self) -> preprocessing.RunningFrameNormalizer:
    return self._normalizer

  @property
  def last_frame(self) -> np.ndarray:
    """The engine's last drawn 96x96 RGB frame (uint8), the source of the current observation."""
    return self._core.state

  @property
  def car(self):
    """The engine's car (Box2D bodies: hull position, angle, velocity), for tests and tools."""
    return self._core.car

  def _repeat_count(self) -> int:
    return self._repeat

  def _engine_action(self, action):
    return self.actions_table[int(action)].copy()

  def _engine_step(self, action, last_of_repeat: bool):
    self._core.skip_state_pixels = self._skip and not last_of_repeat
    try:
      out = self._env.step(action)
    finally:
      self._core.skip_state_pixels = False
    raw, reward, terminated, truncated, info = out
    if (terminated or truncated) and not last_of_repeat and self._skip:
      raw = self._core.state = self._core._render('state_pixels')  # pylint: disable=protected-access
    return raw, reward, terminated, truncated, info

  def _after_reset(self, raw):
    if not self._static_zoom:
      return raw
    # Past the opening zoom animation (zoom = 0.1 S max(1 - t, 0) + ZOOM S min(t, 1) in gymnasium): the first
    # frame redrawn at the final zoom; later frames keep it, as the clock only grows.
    self._core.t = max(float(self._core.t), 1.0)
    self._core.state = self._core._render('state_pixels')  # pylint: disable=protected-access
    return self._core.state

  def _observe(self, raw) -> np.ndarray:
    rgb = np.asarray(raw)
    if self._gray:
      frame = preprocessing.normalise_frame(preprocessing.rgb_to_gray(rgb), self._normalizer, self._hw)
      return frame[np.newaxis, :, :, np.newaxis]
    x = rgb.astype(np.float32) * np.float32(1.0 / 255.0)
    mean, std = self._normalizer.update(x)
    channels = [preprocessing.area_resize(x[..., c], self._hw) for c in range(3)]
    return self._normalizer.apply(np.stack(channels, axis=-1), mean, std)[np.newaxis]

  def episode_info(self) -> Dict[str, Any]:
    info = super().episode_info()
    info['tiles_visited'] = int(getattr(self._core, 'tile_visited_count', 0))
    info['tiles_total'] = int(len(getattr(self._core, 'track', ()) or ()))
    return info


def make_bipedal_walker(seed: int = 0, **kwargs) -> BipedalWalker:
  return BipedalWalker(seed=seed, **kwargs)


def make_car_racing(seed: int = 0, **kwargs) -> CarRacing:
  return CarRacing(seed=seed, **kwargs)
