"""The interface extensions for Chapter 2 (continuous actions, optional agent positions, per-entry frame stacks)
and `envs.batch.EnvBatch`, which steps K environments in lock-step for a synchronous batched actor-critic."""

import numpy as np
import pytest

from rlcv_tf.envs import base
from rlcv_tf.envs import batch
from rlcv_tf.envs import classic
from rlcv_tf.envs import frame_stack
from rlcv_tf.envs import registry
from rlcv_tf.runtime import env_runner


def _independent_run(seeds, actions):
  """Each env stepped on its own, reset by hand after its episode ends (the reference for EnvBatch)."""
  rows = []
  for i, seed in enumerate(seeds):
    env = classic.make_cartpole_masked(seed=seed)
    ts = env.reset()
    out = [(ts.observation, 0.0, 1.0, True)]
    for t in range(actions.shape[0]):
      ts = env.step(actions[t, i])
      if ts.last():
        reward, discount = float(ts.reward[0]), float(ts.discount)
        ts = env.reset()
        out.append((ts.observation, reward, discount, True))
      else:
        out.append((ts.observation, float(ts.reward[0]), float(ts.discount), False))
    rows.append(out)
  return rows


def test_env_batch_equals_stepping_each_env_alone():
  seeds = (0, 1, 2)
  actions = np.random.default_rng(0).integers(0, 2, (80, 3, 1))
  reference = _independent_run(seeds, actions)
  envs = batch.EnvBatch([classic.make_cartpole_masked(seed=s) for s in seeds])
  assert envs.num_envs == 3 and envs.observation_spec().shape == (1, 2, 1)
  outs = [envs.reset()]
  for t in range(actions.shape[0]):
    outs.append(envs.step(actions[t]))
  ended = 0
  for t, out in enumerate(outs):
    assert out.observation.shape == (3, 1, 2, 1) and out.reward.shape == (3, 1)
    for i in range(3):
      obs, reward, discount, first = reference[i][t]
      np.testing.assert_array_equal(out.observation[i], obs)
      assert (float(out.reward[i, 0]), float(out.discount[i]), bool(out.first[i])) == (reward, discount, first)
      if t > 0 and first:
        ended += 1
        assert out.episodes[i]['truncated'] is False and discount == 0.0
        assert out.episodes[i]['return'][0] == out.episodes[i]['score']
        assert out.final_observation[i].shape == (1, 2, 1)
  assert ended >= 3          # random CartPole falls in well under 80 decisions


def test_env_batch_keeps_the_final_observation_of_a_truncation():
  envs = batch.make_batch('pendulum', 2, seed=10, num_frames=1)
  envs.reset()
  zeros = np.zeros((2, 1, 1), np.float32)
  for _ in range(199):
    out = envs.step(zeros)
    assert not out.first.any()
  out = envs.step(zeros)
  assert out.first.all() and out.ended.all()
  np.testing.assert_array_equal(out.discount, 1.0)            # a time limit: bootstrap from the final state
  assert all(e['truncated'] and e['steps'] == 200 for e in out.episodes)
  assert all(f.shape == (1, 3, 1) for f in out.final_observation)
  assert not np.array_equal(out.final_observation[0], out.observation[0])
  with pytest.raises(ValueError, match='leading axis 2'):
    envs.step(np.zeros((3, 1, 1), np.float32))


def test_optional_agent_positions_and_forwarding():
  env = registry.make_env('cartpole_masked', seed=0, num_frames=2)
  assert isinstance(env, frame_stack.FrameStack) and env.observation_spec().shape == (1, 2, 2)
  assert not env.has_agent_positions and env.map_hw == (0, 0)
  env.reset()
  np.testing.assert_array_equal(env.agent_positions(), np.zeros((1, 2), np.int32))
  assert env.unwrapped.unwrapped is env.unwrapped
  football = registry.make_env('mini_run_to_score', seed=0)
  assert football.has_agent_positions and not football.continuous_actions
  assert football.observation_spec().shape[-1] == 4 * 4     # Chapter 4 entries still stack 4 frames by default
  walker = registry.make_env('pendulum', seed=0)
  assert walker.continuous_actions and walker.action_spec().dtype == np.float32


def test_registry_defaults_and_chapters():
  assert set(registry.names(chapter=2)) == {
      'atari_seaquest', 'atari_beam_rider', 'atari_ms_pacman', 'atari_boxing', 'atari_breakout', 'atari_qbert',
      'atari_freeway', 'bipedal_walker', 'car_racing', 'cartpole_masked', 'pendulum'}
  assert 'grf_5v5' in registry.names(chapter=4) and 'pendulum' not in registry.names(chapter=4)
  assert {registry.entry(n).default_frames for n in ('bipedal_walker', 'pendulum')} == {4}
  assert {registry.entry(n).default_frames for n in registry.names(chapter=2)
          if n not in ('bipedal_walker', 'pendulum')} == {1}


def test_continuous_action_spec_checks():
  spec = base.continuous_action_spec(2, [-1.0, 0.0], [1.0, 2.0])
  assert spec.shape == (2, 2)
  np.testing.assert_array_equal(base.check_continuous_actions([[3, -1], [0.5, 1.5]], spec),
                                [[1.0, 0.0], [0.5, 1.5]])
  with pytest.raises(ValueError, match='shape'):
    base.check_continuous_actions([1.0, 2.0], spec)
  with pytest.raises(ValueError, match='finite'):
    base.check_continuous_actions([[np.inf, 0], [0, 0]], spec)
  with pytest.raises(ValueError, match='minimum < maximum'):
    base.continuous_action_spec(1, [1.0], [0.0])


def test_the_actor_runner_steps_a_chapter_2_env():
  """The Chapter 4 runtime's per-env stepper takes float observations and the default positions unchanged."""
  runner = env_runner.EnvRunner(registry.make_env('pendulum', seed=0))
  out = runner.reset()
  assert out.observation.dtype == np.float32 and out.observation.shape == (1, 3, 4)
  np.testing.assert_array_equal(out.agent_positions, np.zeros((1, 2), np.int32))
  for _ in range(200):
    out = runner.step(np.zeros((1, 1), np.float32))
  assert out.truncated and out.discount == 1.0
  out = runner.step(np.zeros((1, 1), np.float32))
  assert out.done and out.episode['steps'] == 200 and out.episode['length'] == 200
