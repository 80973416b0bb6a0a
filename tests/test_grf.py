"""The Google Research Football adapter against the real engine (skipped where gfootball is not built)."""

import sys

import numpy as np
import pytest

from rlcv_tf.envs import base
from rlcv_tf.envs import registry

GK_ROLE = 0  # gfootball e_PlayerRole_GK


@pytest.fixture(scope='module')
def gfootball():
  return pytest.importorskip('gfootball')


@pytest.fixture(scope='module')
def env5(gfootball):
  env = registry.make_env('grf_5v5', seed=1, episode_length=40)
  yield env
  env.close()


@pytest.mark.grf
def test_5v5_with_goalie_controlled(env5):
  ts = env5.reset()
  assert ts.first()
  assert ts.observation.shape == (5, 72, 96, 16) and ts.observation.dtype == np.uint8
  assert env5.num_actions == 19 and env5.action_spec().shape == (5,)
  raw = env5.unwrapped.raw_observations()
  roles = [r['left_team_roles'][r['active']] for r in raw]
  assert GK_ROLE in roles, 'thesis setting: the goalie is one of the 5 controlled agents'
  # Frame stack: 4 identical SMMs after reset, each with the 4 gfootball planes.
  np.testing.assert_array_equal(ts.observation[..., :4], ts.observation[..., 12:])


@pytest.mark.grf
def test_step_reward_positions_and_episode_end(env5):
  ts = env5.reset()
  rng = np.random.default_rng(0)
  steps = 0
  while True:
    ts = env5.step(rng.integers(0, 19, size=5))
    steps += 1
    assert ts.reward.shape == (5,) and ts.reward.dtype == np.float32
    newest_active = ts.observation[..., -1]  # the newest frame's `active` plane
    for i, (r, c) in enumerate(env5.agent_positions()):
      assert newest_active[i, r, c] == 255
      assert newest_active[i].sum() == 255, 'exactly one pixel marks the agent itself'
    if ts.last():
      break
    assert steps < 100
  assert steps in (40, 41)  # gfootball plays game_duration steps plus the kick-off frame
  assert ts.discount == 0.0
  info = env5.episode_info()
  assert set(info) == {'score_home', 'score_away'}


@pytest.mark.grf
def test_bad_actions_are_rejected(env5):
  env5.reset()
  with pytest.raises(ValueError, match='one action per agent'):
    env5.step(np.zeros(4, np.int32))
  with pytest.raises(ValueError, match=r'\[0, 18\]'):
    env5.step(np.full(5, 19))


@pytest.mark.grf
def test_4_agents_leave_the_goalie_to_the_builtin_ai_and_small_smm(gfootball):
  env = registry.make_env('grf_5v5', num_agents=4, smm_hw=(36, 48), episode_length=10)
  try:
    ts = env.reset()
    assert ts.observation.shape == (4, 36, 48, 16)
    roles = [r['left_team_roles'][r['active']] for r in env.unwrapped.raw_observations()]
    assert GK_ROLE not in roles
    assert env.map_hw == (36, 48)
  finally:
    env.close()


@pytest.mark.grf
@pytest.mark.parametrize('name', ['grf_11v11_hard', 'grf_academy_empty_goal_close'])
def test_single_agent_scenarios_keep_the_agent_axis(gfootball, name):
  env = registry.make_env(name)
  try:
    ts = env.reset()
    assert ts.observation.shape == (1, 72, 96, 16)
    ts = env.step(np.array([5]))
    assert ts.reward.shape == (1,)
    assert env.agent_positions().shape == (1, 2)
  finally:
    env.close()


def test_missing_gfootball_is_a_clear_error(monkeypatch):
  monkeypatch.setitem(sys.modules, 'gfootball', None)
  monkeypatch.setitem(sys.modules, 'gfootball.env', None)
  with pytest.raises(base.EnvironmentUnavailableError, match='scripts/setup.sh'):
    registry.make_env('grf_5v5')
  with pytest.raises(base.EnvironmentUnavailableError, match='gfootball'):
    registry.check_available('grf_5v5')
