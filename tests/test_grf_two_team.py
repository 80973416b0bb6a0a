"""Two-team control of the real Google Research Football engine (`right_agents`), and agent-vs-agent evaluation
on it. Every test needs gfootball (marked grf).

Findings pinned here (see grf.py's docstring): a right-team agent's observation is gfootball's
`flip_observation`, the pitch rotated by 180 degrees (x -> -x and y -> -y) with the teams swapped, so its SMM
plane 0 is its own team and it attacks towards +x; its direction actions are rotated back by the engine.
"""

import numpy as np
import pytest

from rlcv_tf.envs import registry

GK_ROLE = 0
pytestmark = pytest.mark.grf


@pytest.fixture(scope='module')
def env(request):
  pytest.importorskip('gfootball')
  e = registry.make_env('grf_5v5', seed=2, num_frames=1, episode_length=60, right_agents=5)
  yield e
  e.close()


def _near(a_pts, b_pts, tol=1):
  """Every point of a has a point of b within `tol` pixels (Chebyshev): SMM rounding moves rotated points by 1."""
  return all(np.min(np.max(np.abs(b_pts - p), axis=1)) <= tol for p in a_pts)


def test_both_teams_controlled_goalies_included(env):
  ts = env.reset()
  assert env.team_sizes == (5, 5) and env.num_agents == 10
  assert ts.observation.shape == (10, 72, 96, 4) and env.action_spec().shape == (10,)
  raw = env.raw_observations()
  roles = [r['left_team_roles'][r['active']] for r in raw]   # each agent's own (possibly rotated) view
  assert roles[:5].count(GK_ROLE) == 1 and roles[5:].count(GK_ROLE) == 1


def test_right_team_sees_the_pitch_rotated_with_teams_swapped(env):
  ts = env.reset()
  raw = env.raw_observations()
  left, right = raw[0], raw[5]
  np.testing.assert_allclose(right['left_team'], -left['right_team'], atol=1e-6)
  np.testing.assert_allclose(right['right_team'], -left['left_team'], atol=1e-6)
  np.testing.assert_allclose(right['ball'][:2], -left['ball'][:2], atol=1e-6)
  smm_l, smm_r = ts.observation[0], ts.observation[5]
  rot = np.rot90(smm_l, 2, axes=(0, 1))   # 180 degrees: rows and columns reversed
  for plane_r, plane_l in ((0, 1), (1, 0), (2, 2)):
    a, b = np.argwhere(smm_r[..., plane_r]), np.argwhere(rot[..., plane_l])
    assert len(a) and _near(a, b) and _near(b, a), plane_r
  # Not a left-right mirror: that would keep rows, and the players off the centre line would not match.
  mirror = np.argwhere(smm_l[:, ::-1, 1])
  assert not (_near(np.argwhere(smm_r[..., 0]), mirror, tol=0) and _near(mirror, np.argwhere(smm_r[..., 0]), tol=0))
  for i, (r, c) in enumerate(env.agent_positions()):
    assert ts.observation[i, r, c, 3] == 255


def test_right_team_actions_are_in_its_own_frame(env):
  env.reset()
  raw = env.raw_observations()
  agent = 5 + 3
  player = raw[agent]['active']          # index into the right team
  x0 = raw[0]['right_team'][player][0]    # world x, from the left team's (unrotated) view
  actions = np.zeros(10, np.int32)
  actions[agent] = 5                      # 'right' in the agent's own view = towards the left goal in the world
  for _ in range(15):
    env.step(actions)
  x1 = env.raw_observations()[0]['right_team'][player][0]
  assert x1 < x0 - 0.03, (x0, x1)


def test_agent_vs_agent_on_grf(tmp_path):
  pytest.importorskip('gfootball')
  from rlcv_tf.marl import agents as agents_lib
  from rlcv_tf.marl import config as config_lib
  from rlcv_tf.marl import evaluation
  from rlcv_tf.marl import training
  # mini_5v5 has grf_5v5's observation (72x96 SMM, 4 stacked frames, 5 agents), so a stand-in agent can play
  # the real engine.
  cfg = config_lib.MarlConfig(env='mini_5v5', model='acnn', num_actors=1, batch_size=2, unroll_length=8,
                              total_frames=16, checkpoint_interval_s=1e9, log_interval_s=1e9,
                              stack_channels=((8, 1), (8, 1)), feature_dim=32)
  training.train(cfg, str(tmp_path / 'a'), print_fn=lambda s: None)
  agent = agents_lib.load_agent(str(tmp_path / 'a'))
  other = agents_lib.load_agent(str(tmp_path / 'a'), prefer='checkpoint', name='a_ckpt')
  vs_ai = evaluation.play_games(agent, None, 1, env_name='grf_5v5', episode_length=30, print_fn=lambda s: None)
  assert vs_ai['summary']['games'] == 1 and vs_ai['games'][0]['length'] in (30, 31)
  vs = evaluation.play_games(agent, other, 1, env_name='grf_5v5', episode_length=30, print_fn=lambda s: None)
  assert vs['env_kwargs']['right_agents'] == 5 and vs['summary']['games'] == 1


def test_mixed_self_play_hands_k_right_players_to_the_caller():
  """App. 4.C mixed self-play on the engine: 4 home field players and k = 2 right players driven by the caller,
  the rest of the right team (goalie included) built-in. Each right agent sees the rotated pitch with itself
  marked."""
  pytest.importorskip('gfootball')
  e = registry.make_env('grf_5v5', seed=4, num_frames=1, num_agents=4, right_agents=2, episode_length=40)
  try:
    ts = e.reset()
    assert e.team_sizes == (4, 2) and ts.observation.shape == (6, 72, 96, 4)
    rng = np.random.default_rng(0)
    for _ in range(10):
      ts = e.step(rng.integers(0, 19, size=6).astype(np.int32))
    assert ts.reward.shape == (6,)
    for i, (r, c) in enumerate(e.agent_positions()):
      assert ts.observation[i, r, c, 3] == 255
    raw = e.raw_observations()
    # Every controlled player is a field player (each raw view is from its own side: its team is 'left').
    assert all(raw[i]['left_team_roles'][raw[i]['active']] != GK_ROLE for i in range(6))
  finally:
    e.close()


def test_mixed_self_play_training_on_grf(tmp_path):
  pytest.importorskip('gfootball')
  from rlcv_tf.marl import config as config_lib
  from rlcv_tf.marl import training
  cfg = config_lib.MarlConfig(env='grf_5v5', model='acnn', env_kwargs={'smm_hw': (36, 48), 'episode_length': 30},
                              total_frames=80, num_actors=1, batch_size=1, unroll_length=20,
                              stack_channels=((4, 1),), feature_dim=16, opponent='selfplay_mixed',
                              selfplay_agents=1, log_interval_s=60.0)
  r = training.train(cfg, str(tmp_path), print_fn=lambda s: None)
  assert r.frames == 80 and r.episodes
  assert all(ep['return'].shape == (4,) and ep['opponent_return'].shape == (1,) for ep in r.episodes)
