"""Gymnasium classic-control tasks: two for Chapter 2's fast learning checks (issue 10 Sec. 2, 6, 8) and the plain
ones seeds 003-004's DQN and REINFORCE use (issue 15).

Not thesis environments: they exercise the same code paths as the thesis tasks at a cost that fits CPU tests.

`cartpole_masked` (spec Sec. 10, stand-in for the partially observed, stochastically frame-skipped Atari games):
CartPole-v1 with the two velocities hidden, so the agent sees float32 [1, 2, 1] = (cart position, pole angle)
and needs memory (the LSTM) to act well. Each action is repeated for a number of physics steps drawn uniformly
from {2, 3, 4} (as ALE's stochastic frame skip, T:L1080-1082) from the adapter's seeded generator, and the +1
rewards of those steps are summed, so the return counts balanced physics steps (at most 500, CartPole-v1's time
limit, a truncation). Two actions: 0 pushes left, 1 right.

`pendulum` (spec Sec. 10, A8: the DDPG family's cheap continuous check): Pendulum-v1, state (cos, sin, angular
velocity) as float32 [1, 3, 1] (`FrameStack(4)` gives [1, 3, 4] for the 1-D encoder), one float action in
[-2, 2] (the torque, as gymnasium bounds it), 200 steps per episode (a truncation).

`cartpole`, `acrobot`, `mountaincar` (CartPole-v1, Acrobot-v1, MountainCar-v0, unchanged): the full state vector as
float32 [1, D, 1] (the project's layout for state vectors, as above), gymnasium's discrete actions and time limits
(500, 500, 200 steps: truncations) and rewards.
"""

from typing import Sequence

import numpy as np
from dm_env import specs

from rlcv_tf.envs import base
from rlcv_tf.envs import gymnasium_env

CARTPOLE_VISIBLE = (0, 2)        # CartPole-v1's state is (x, x_dot, theta, theta_dot): keep x and theta
CARTPOLE_REPEATS = (2, 3, 4)


def _import_gymnasium():
  try:
    import gymnasium  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise base.EnvironmentUnavailableError(
        f'gymnasium is not installed ({e}): run `pip install "gymnasium[classic-control]==1.4.0"` or '
        '`bash scripts/setup.sh`') from None
  return gymnasium


def check_available() -> None:
  _import_gymnasium()


class MaskedCartPole(gymnasium_env.GymnasiumEnv):
  """CartPole-v1 seen through (x, theta) only, each action held for 2, 3 or 4 physics steps (module docstring)."""

  def __init__(self, seed: int = 0, visible: Sequence[int] = CARTPOLE_VISIBLE,
               repeats: Sequence[int] = CARTPOLE_REPEATS):
    gymnasium = _import_gymnasium()
    visible = tuple(int(i) for i in visible)
    repeats = tuple(int(k) for k in repeats)
    if not visible or any(i < 0 or i > 3 for i in visible):
      raise ValueError(f'visible must list state indices in 0..3, got {visible}')
    if not repeats or min(repeats) < 1:
      raise ValueError(f'repeats must be positive integers, got {repeats}')
    env = gymnasium.make('CartPole-v1', disable_env_checker=True)
    super().__init__(env, seed=seed, num_actions=int(env.action_space.n))
    self._visible = np.array(visible)
    self._repeats = np.array(repeats)
    self._observation_spec = specs.Array((1, len(visible), 1), np.float32, name='state')

  def _repeat_count(self) -> int:
    return int(self.np_random.choice(self._repeats))

  def _observe(self, raw) -> np.ndarray:
    return np.asarray(raw, np.float32)[self._visible].reshape(1, -1, 1)


class Pendulum(gymnasium_env.GymnasiumEnv):
  """Pendulum-v1, N = 1: observations float32 [1, 3, 1], actions float32 [1, 1] in [-2, 2]."""

  def __init__(self, seed: int = 0):
    gymnasium = _import_gymnasium()
    env = gymnasium.make('Pendulum-v1', disable_env_checker=True)
    super().__init__(env, seed=seed, action_bounds=(env.action_space.low, env.action_space.high))
    self._observation_spec = specs.Array((1, int(np.prod(env.observation_space.shape)), 1), np.float32,
                                         name='state')

  def _observe(self, raw) -> np.ndarray:
    return np.asarray(raw, np.float32).reshape(1, -1, 1)


def make_cartpole_masked(seed: int = 0, **kwargs) -> MaskedCartPole:
  return MaskedCartPole(seed=seed, **kwargs)


def make_pendulum(seed: int = 0, **kwargs) -> Pendulum:
  return Pendulum(seed=seed, **kwargs)


CLASSIC = {'cartpole': 'CartPole-v1', 'acrobot': 'Acrobot-v1', 'mountaincar': 'MountainCar-v0'}


class ClassicControl(gymnasium_env.GymnasiumEnv):
  """A gymnasium classic-control task as it is: observations float32 [1, D, 1], discrete actions."""

  def __init__(self, game: str = 'cartpole', seed: int = 0):
    gymnasium = _import_gymnasium()
    if game not in CLASSIC:
      raise ValueError(f'unknown classic-control game {game!r}; valid values: {", ".join(CLASSIC)}')
    env = gymnasium.make(CLASSIC[game], disable_env_checker=True)
    super().__init__(env, seed=seed, num_actions=int(env.action_space.n))
    self._observation_spec = specs.Array((1, int(np.prod(env.observation_space.shape)), 1), np.float32,
                                         name='state')

  def _observe(self, raw) -> np.ndarray:
    return np.asarray(raw, np.float32).reshape(1, -1, 1)


def make_classic(seed: int = 0, game: str = 'cartpole') -> ClassicControl:
  return ClassicControl(game=game, seed=seed)
