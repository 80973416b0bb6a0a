"""The pure-NumPy football stand-in: interface, determinism, rules, and that its easy task is learnable."""

import hashlib

import numpy as np
import pytest

from rlcv_tf.envs import frame_stack
from rlcv_tf.envs import mini_football
from rlcv_tf.envs import registry


def run_random(env, steps, seed=0):
  rng = np.random.default_rng(seed)
  ts = env.reset()
  digest = hashlib.sha1()
  for _ in range(steps):
    ts = env.step(rng.integers(0, env.num_actions, size=env.num_agents))
    digest.update(ts.observation.tobytes())
    if ts.last():
      ts = env.reset()
  return digest.hexdigest()


@pytest.mark.parametrize('name,shape', [('mini_5v5', (5, 72, 96, 16)), ('mini_5v5_small', (5, 18, 24, 16)),
                                        ('mini_academy_3v1', (3, 72, 96, 16)),
                                        ('mini_run_to_score', (2, 72, 96, 16))])
def test_interface(name, shape):
  env = registry.make_env(name)
  ts = env.reset()
  assert ts.first() and ts.observation.shape == shape and ts.observation.dtype == np.uint8
  assert env.num_actions == 19 and env.action_spec().shape == (shape[0],)
  ts = env.step(np.zeros(shape[0], np.int32))
  assert ts.reward.shape == (shape[0],) and ts.reward.dtype == np.float32
  active = ts.observation[..., -1]
  for i, (r, c) in enumerate(env.agent_positions()):
    assert active[i, r, c] == 255 and active[i].sum() == 255


def test_deterministic_for_a_seed():
  a = run_random(registry.make_env('mini_5v5_small', seed=3), 500)
  b = run_random(registry.make_env('mini_5v5_small', seed=3), 500)
  c = run_random(registry.make_env('mini_5v5_small', seed=4), 500)
  assert a == b and a != c


def test_episode_ends_at_its_length_with_discount_zero():
  env = mini_football.make_mini_football(scenario='5v5', num_agents=4, smm_hw=(18, 24), episode_length=25)
  ts = env.reset()
  n = 0
  while not ts.last():
    ts = env.step(np.zeros(4, np.int32))
    n += 1
  assert n == 25 and ts.discount == 0.0
  assert env.step(np.zeros(4, np.int32)).first()  # stepping after the end starts a new episode


def test_a_goal_pays_every_controlled_agent():
  env = mini_football.make_mini_football(scenario='5v5', num_agents=5, smm_hw=(18, 24), rewards='scoring')
  env.reset()
  # Put the ball, moving fast, just in front of the opponent goal with nobody near it.
  env._owner = None                                      # pylint: disable=protected-access
  env._ball = np.array([0.97, 0.0])                      # pylint: disable=protected-access
  env._ball_vel = np.array([0.06, 0.0])                  # pylint: disable=protected-access
  env._away[0] = np.array([0.5, 0.3])                    # pylint: disable=protected-access
  ts = env.step(np.zeros(5, np.int32))
  np.testing.assert_allclose(ts.reward, np.ones(5))
  assert env.episode_info() == {'score_home': 1, 'score_away': 0}


def test_bad_arguments_and_actions():
  env = registry.make_env('mini_5v5_small')
  env.reset()
  with pytest.raises(ValueError, match='one action per agent'):
    env.step(np.zeros(3, np.int32))
  with pytest.raises(ValueError, match=r'\[0, 18\]'):
    env.step(np.full(5, 19))
  with pytest.raises(ValueError, match='num_agents'):
    mini_football.make_mini_football(scenario='5v5', num_agents=3)
  with pytest.raises(ValueError, match='scenario'):
    mini_football.make_mini_football(scenario='7v7')


def test_frame_stack_keeps_the_newest_frame_last():
  env = frame_stack.FrameStack(mini_football.make_mini_football(scenario='run_to_score', num_agents=1,
                                                                smm_hw=(18, 24)), 4)
  ts = env.reset()
  for k in range(1, 4):
    np.testing.assert_array_equal(ts.observation[..., :4], ts.observation[..., 4 * k:4 * k + 4])
  before = ts.observation.copy()
  ts = env.step(np.array([5]))  # run right: the agent moves
  np.testing.assert_array_equal(ts.observation[..., :12], before[..., 4:])
  inner = env.unwrapped
  assert ts.observation[0, ..., -1].sum() == 255
  r, c = env.agent_positions()[0]
  assert ts.observation[0, r, c, -1] == 255 and inner.num_agents == 1


def scripted_run_to_score(env):
  """Sprint right with the ball and shoot near the goal."""
  ts, total, first = env.reset(), 0.0, True
  while not ts.last():
    x = env.raw()['left_team'][0][0]
    a = 13 if first else (12 if x > 0.75 else 5)
    first = False
    ts = env.step(np.full(env.num_agents, a))
    total += float(ts.reward.mean())
  return total


def test_run_to_score_separates_a_good_policy_from_chance():
  env = mini_football.make_mini_football(scenario='run_to_score', num_agents=1, smm_hw=(18, 24), seed=0,
                                         rewards='scoring')
  good = np.mean([scripted_run_to_score(env) for _ in range(20)])
  rng = np.random.default_rng(0)
  rand = []
  for _ in range(20):
    ts, total = env.reset(), 0.0
    while not ts.last():
      ts = env.step(rng.integers(0, 19, size=1))
      total += float(ts.reward.mean())
    rand.append(total)
  assert good >= 0.8, good
  assert np.mean(rand) < good - 0.4, (np.mean(rand), good)
