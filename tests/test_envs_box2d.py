"""BipedalWalker and CarRacing on the real Box2D engine (gymnasium 1.4.0, box2d 2.3.10; issue 10 Sec. 1, 6).

CarRacing's 12 actions and repeat of 4 are read off the engine's own step calls; the static zoom and the
skipped drawing of hidden frames are checked against the unmodified engine's pixels.
"""

import sys

import numpy as np
import pytest

from rlcv_tf.envs import base
from rlcv_tf.envs import box2d
from rlcv_tf.envs import random_policy
from rlcv_tf.envs import registry

# App. 2.D: {brake, gas, right, left} x {soft, medium, full}; [steer, gas, brake] with steer +1 = right (the
# values written out here, independently of box2d.car_actions).
EXPECTED_CAR_ACTIONS = [
    [0, 0, 1 / 3], [0, 0, 2 / 3], [0, 0, 1],
    [0, 1 / 3, 0], [0, 2 / 3, 0], [0, 1, 0],
    [1 / 3, 0, 0], [2 / 3, 0, 0], [1, 0, 0],
    [-1 / 3, 0, 0], [-2 / 3, 0, 0], [-1, 0, 0],
]


class _Spy:
  """Records every engine step (the action it got, its reward) made through a gymnasium env instance."""

  def __init__(self, monkeypatch, gym_env):
    self.calls = []
    step = gym_env.step

    def spy(action):
      out = step(action)
      self.calls.append((np.array(action, np.float64), float(out[1])))
      return out

    monkeypatch.setattr(gym_env, 'step', spy)


# ------------------------------------------------------------------------------------------------ BipedalWalker
def test_bipedal_walker_state_and_stack_layout():
  env = registry.make_env('bipedal_walker', seed=0)          # default: 4 stacked states
  assert env.observation_spec().shape == (1, 24, 4) and env.observation_spec().dtype == np.float32
  spec = env.action_spec()
  assert env.continuous_actions and env.num_actions == 4
  assert spec.shape == (1, 4) and spec.dtype == np.float32
  np.testing.assert_array_equal(spec.minimum, -1.0)
  np.testing.assert_array_equal(spec.maximum, 1.0)
  ts = env.reset()
  for k in range(4):
    np.testing.assert_array_equal(ts.observation[..., k], ts.observation[..., 0])
  ts = env.step(np.zeros((1, 4), np.float32))
  assert ts.observation.shape == (1, 24, 4)
  assert not np.array_equal(ts.observation[..., 3], ts.observation[..., 2])   # newest state last
  np.testing.assert_array_equal(ts.observation[..., :3], np.repeat(ts.observation[..., :1], 3, axis=-1))
  env.close()


def test_bipedal_walker_clips_actions_and_rejects_bad_ones(monkeypatch):
  env = box2d.make_bipedal_walker(seed=0)
  spy = _Spy(monkeypatch, env.gym_env)
  env.reset()
  env.step(np.array([[2.0, -3.0, 0.5, -0.25]]))
  np.testing.assert_allclose(spy.calls[-1][0], [1.0, -1.0, 0.5, -0.25])
  with pytest.raises(ValueError, match='shape'):
    env.step(np.zeros(4))
  with pytest.raises(ValueError, match='finite'):
    env.step(np.array([[np.nan, 0, 0, 0]]))
  env.close()


def test_bipedal_walker_fall_is_a_termination():
  env = box2d.make_bipedal_walker(seed=0)
  rng = np.random.default_rng(0)
  ts = env.reset()
  rewards = []
  while not ts.last():
    ts = env.step(random_policy.random_actions(env, rng))
    rewards.append(float(ts.reward[0]))
  # Random flailing falls within a few hundred steps; falling costs -100 and is not a time limit.
  assert ts.discount == 0.0 and rewards[-1] <= -100.0
  assert len(rewards) < 1600
  assert env.episode_info()['score'] == pytest.approx(sum(rewards))
  env.close()


# ----------------------------------------------------------------------------------------------------- CarRacing
def test_car_racing_has_the_12_actions_each_held_4_steps(monkeypatch):
  env = registry.make_env('car_racing', seed=0)
  assert env.num_actions == 12 and not env.continuous_actions
  assert env.observation_spec().shape == (1, 80, 80, 1) and env.observation_spec().dtype == np.float32
  np.testing.assert_allclose(box2d.CAR_ACTIONS, EXPECTED_CAR_ACTIONS, atol=1e-7)
  spy = _Spy(monkeypatch, env.unwrapped.gym_env)
  env.reset()
  for a in range(12):
    spy.calls.clear()
    ts = env.step(np.array([a]))
    assert len(spy.calls) == 4
    for sent, _ in spy.calls:
      np.testing.assert_allclose(sent, EXPECTED_CAR_ACTIONS[a], atol=1e-7)
    assert float(ts.reward[0]) == pytest.approx(sum(r for _, r in spy.calls), abs=1e-5)
    assert env.unwrapped.last_repeat == 4
  assert env.episode_info()['frames'] == 48
  env.close()


def test_car_racing_right_turns_clockwise_and_left_anticlockwise():
  turned = {}
  for name, action in (('right', 8), ('left', 11)):
    env = box2d.make_car_racing(seed=0)
    env.reset()
    for _ in range(8):
      env.step(np.array([5]))                  # full gas
    angle = env.car.hull.angle
    for _ in range(6):
      env.step(np.array([action]))
    turned[name] = env.car.hull.angle - angle    # Box2D angles grow anticlockwise
    env.close()
  assert turned['right'] < -0.5 and turned['left'] > 0.5


def test_car_racing_zoom_is_static_from_the_first_frame():
  static = box2d.make_car_racing(seed=0)
  animated = box2d.make_car_racing(seed=0, static_zoom=False)
  static.reset()
  animated.reset()
  first_static, first_animated = static.last_frame.copy(), animated.last_frame.copy()
  for _ in range(13):                            # 52 physics steps > 1 s: the animation is over
    animated.step(np.array([0]))                 # soft brake: a car at rest stays at rest
  above_bar = slice(0, 84)                       # the info bar shows the time penalty, which differs
  np.testing.assert_array_equal(first_static[above_bar], animated.last_frame[above_bar])
  assert np.abs(first_static[above_bar].astype(int) - first_animated[above_bar]).max() > 100
  static.close()
  animated.close()


def test_skipping_hidden_frames_leaves_observations_unchanged():
  # A 10-step time limit ends the third decision after 2 of its 4 physics steps (the redraw path).
  envs = [box2d.make_car_racing(seed=4, skip_hidden_frames=skip, max_episode_steps=10) for skip in (True, False)]
  runs = []
  for env in envs:
    ts = env.reset()
    out = [ts.observation]
    for a in (5, 5, 8):
      ts = env.step(np.array([a]))
      out.append(ts.observation)
    assert ts.last() and ts.discount == 1.0 and env.episode_info()['frames'] == 10
    runs.append(out)
    env.close()
  for a, b in zip(*runs):
    np.testing.assert_array_equal(a, b)


def test_car_racing_observation_is_the_normalised_gray_frame():
  env = box2d.make_car_racing(seed=1)
  ts = env.reset()
  rgb = env.last_frame.astype(np.float64)
  gray = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]) / 255.0
  mean, std = gray.mean(), gray.std()                        # first frame: its own statistics
  import cv2  # pylint: disable=g-import-not-at-top
  small = cv2.resize(gray.astype(np.float32), (80, 80), interpolation=cv2.INTER_AREA)
  np.testing.assert_allclose(ts.observation[0, :, :, 0], (small - mean) / (std + 1e-8), atol=1e-4)
  assert env.normalizer.count == 1
  env.close()


def test_car_racing_seeds_give_their_own_tracks():
  a, b, c = (box2d.make_car_racing(seed=s) for s in (3, 3, 4))
  oa, ob, oc = a.reset().observation, b.reset().observation, c.reset().observation
  np.testing.assert_array_equal(oa, ob)
  assert a.episode_info() == b.episode_info()
  tracks = [np.array([t[2:4] for t in env.gym_env.unwrapped.track]) for env in (a, b, c)]
  np.testing.assert_array_equal(tracks[0], tracks[1])
  assert tracks[0].shape != tracks[2].shape or not np.array_equal(tracks[0], tracks[2])
  assert not np.array_equal(oa, oc)
  for env in (a, b, c):
    env.close()


# ------------------------------------------------------------------------------------------------ missing engine
@pytest.mark.parametrize('module', ['Box2D', 'pygame'])
@pytest.mark.parametrize('name', ['bipedal_walker', 'car_racing'])
def test_missing_box2d_or_pygame_names_our_install_command(monkeypatch, module, name):
  monkeypatch.setitem(sys.modules, module, None)
  for call in (lambda: registry.make_env(name), lambda: registry.check_available(name)):
    with pytest.raises(base.EnvironmentUnavailableError) as e:
      call()
    message = str(e.value)
    assert '\n' not in message and module in message
    assert 'pip install "gymnasium[box2d]==1.4.0"' in message and 'pip install swig' not in message
