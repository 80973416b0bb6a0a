"""`cartpole_masked` and `pendulum` (gymnasium classic control) for Chapter 2's fast learning checks."""

import numpy as np
import pytest

from rlcv_tf.envs import classic
from rlcv_tf.envs import random_policy
from rlcv_tf.envs import registry


def test_cartpole_hides_the_velocities(monkeypatch):
  env = registry.make_env('cartpole_masked', seed=0)          # default: no frame stack (an LSTM's task)
  assert env.observation_spec().shape == (1, 2, 1) and env.num_actions == 2
  states = []
  engine = env.gym_env.unwrapped
  step = env.gym_env.step

  def spy(action):
    out = step(action)
    states.append(np.array(engine.state, np.float64))
    return out

  monkeypatch.setattr(env.gym_env, 'step', spy)
  ts = env.reset()
  np.testing.assert_allclose(ts.observation[0, :, 0], np.asarray(engine.state)[[0, 2]], rtol=1e-6)
  for a in (0, 1, 1, 0):
    ts = env.step(np.array([a]))
    full = states[-1]                      # (x, x_dot, theta, theta_dot) after the last repeated step
    np.testing.assert_allclose(ts.observation[0, :, 0], full[[0, 2]], rtol=1e-6)
    assert abs(full[1]) > 0 and abs(full[3]) > 0          # the velocities exist but are not shown
  env.close()


def test_cartpole_repeat_is_2_3_or_4_each_about_a_third_and_rewards_count_steps():
  env = classic.make_cartpole_masked(seed=1)
  rng = np.random.default_rng(0)
  counts = {}
  ts = env.reset()
  for _ in range(3000):
    ts = env.step(rng.integers(0, 2, 1))
    if ts.last():
      ts = env.reset()
      continue
    counts[env.last_repeat] = counts.get(env.last_repeat, 0) + 1
    assert float(ts.reward[0]) == env.last_repeat          # +1 per balanced physics step, summed
  n = sum(counts.values())
  assert set(counts) == {2, 3, 4}, counts
  se = np.sqrt((1 / 3) * (2 / 3) / n)
  for k in (2, 3, 4):
    assert abs(counts[k] / n - 1 / 3) < 4 * se, counts
  env.close()


def test_cartpole_seeding_is_reproducible():
  def run(seed):
    env = classic.make_cartpole_masked(seed=seed)
    rng = np.random.default_rng(5)
    out = [env.reset().observation]
    for _ in range(200):
      ts = env.step(rng.integers(0, 2, 1))
      out.append((ts.observation, env.last_repeat))
      if ts.last():
        out.append(env.reset().observation)
    return out

  a, b, c = run(3), run(3), run(4)
  assert repr(a) == repr(b)
  assert repr(a) != repr(c)


def test_pendulum_is_continuous_and_stacks_to_3x4():
  env = registry.make_env('pendulum', seed=0)                  # default: 4 stacked states (DDPG's 1-D encoder)
  assert env.observation_spec().shape == (1, 3, 4)
  spec = env.action_spec()
  assert env.continuous_actions and spec.shape == (1, 1)
  np.testing.assert_array_equal(spec.minimum, [[-2.0]])
  np.testing.assert_array_equal(spec.maximum, [[2.0]])
  ts = env.reset()
  steps = 0
  while not ts.last():
    ts = env.step(np.array([[5.0]]))       # clipped to 2
    steps += 1
  assert steps == 200 and ts.discount == 1.0       # the time limit is a truncation
  mean, _ = random_policy.mean_random_return(env, episodes=2, seed=0)
  assert -2000 < mean < 0
  env.close()


def test_cartpole_rejects_bad_arguments():
  with pytest.raises(ValueError, match='repeats'):
    classic.make_cartpole_masked(repeats=(0, 2))
  env = classic.make_cartpole_masked()
  env.reset()
  with pytest.raises(ValueError, match=r'\[0, 1\]'):
    env.step(np.array([2]))


def test_random_play_scores_seed_each_episode_and_sum_its_rewards():
  """random_policy.random_play_scores (the random-play baselines of learning checks and examples) against a loop
  written out: episode i on a fresh environment seeded base + i, actions from one generator, rewards summed."""
  got = random_policy.random_play_scores('cartpole', 4, seed_base=11, seed=3, num_frames=1)
  rng, want = np.random.default_rng(3), []
  for i in range(4):
    env = registry.make_env('cartpole', seed=11 + i, num_frames=1)
    ts, total = env.reset(), 0.0
    while not ts.last():
      ts = env.step(np.array([rng.integers(env.num_actions)]))
      total += float(ts.reward[0])
    want.append(total)
  assert got == want and len(set(got)) > 1          # one generator for all episodes: not the same episode 4 times
