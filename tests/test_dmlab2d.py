"""The DeepMind Lab 2D "Cleanup" adapter against the real dmlab2d engine (thesis Sec. 4.3.2, App. 4.B;
spec Sec. 2.1, 2.2, 5.2). dmlab2d is a hard dependency (setup.cfg), so these tests just import it."""

import os
import subprocess
import sys

import numpy as np
import pytest

from rlcv_tf.envs import base
from rlcv_tf.envs import dmlab2d_cleanup as cleanup
from rlcv_tf.envs import registry

# Apples everywhere quickly, whatever the mud: the stock level grows none until the agents clean the river.
APPLES_EVERYWHERE = {'simulation.appleRespawnProbability': '1.0', 'simulation.thresholdDepletion': '1.0'}
UP, IDLE_MOVE = 0, 4
TURN_RIGHT, IDLE_TURN = 1, 2
NO_FIRE = 1
FORWARD = cleanup.compose_action(UP, IDLE_TURN, NO_FIRE, NO_FIRE)
TURN = cleanup.compose_action(IDLE_MOVE, TURN_RIGHT, NO_FIRE, NO_FIRE)
NOOP = cleanup.NOOP
ORCHARD_FIRST_ROW = 15  # the level's map: rows 15-19 hold the apple cells


def _colour_mask(frames, rgb):
  return np.all(frames == np.array(rgb, np.uint8), axis=-1)


def _random_actions(rng, n=4):
  return rng.integers(0, cleanup.NUM_ACTIONS, size=n)


def test_registered_and_specs():
  assert 'dmlab2d_cleanup' in registry.names() and registry.entry('dmlab2d_cleanup').real
  registry.check_available('dmlab2d_cleanup')
  env = registry.make_env('dmlab2d_cleanup', seed=0, num_frames=1)
  assert env.num_agents == 4 and env.num_actions == 60 and env.map_hw == (72, 96)
  assert env.observation_spec().shape == (4, 72, 96, 3) and env.observation_spec().dtype == np.uint8
  assert env.action_spec().shape == (4,) and env.action_spec().maximum == 59
  ts = env.reset()
  assert ts.first() and ts.observation.shape == (4, 72, 96, 3) and ts.observation.dtype == np.uint8
  assert env.map_cells == (21, 30)
  env.close()

  stacked = registry.make_env('dmlab2d_cleanup', seed=0)
  assert stacked.observation_spec().shape == (4, 72, 96, 12)
  ts = stacked.reset()
  assert ts.observation.shape == (4, 72, 96, 12) and ts.observation.dtype == np.uint8
  np.testing.assert_array_equal(ts.observation[..., :3], ts.observation[..., 9:])
  ts = stacked.step(np.full(4, NOOP))
  assert ts.observation.shape == (4, 72, 96, 12)
  stacked.close()


def test_action_set_is_the_thesis_product():
  # App. 4.B: move {up, down, right, left, idle} x turn {left, right, idle} x clean {fire, no} x fine {fire, no}.
  assert [m for m, _ in cleanup.MOVES] == ['up', 'down', 'right', 'left', 'idle']
  assert [t for t, _ in cleanup.TURNS] == ['left', 'right', 'idle']
  assert cleanup.NUM_ACTIONS == 5 * 3 * 2 * 2 == 60
  combos = {cleanup.decompose_action(a) for a in range(60)}
  assert len(combos) == 60
  for a in range(60):
    assert cleanup.compose_action(*cleanup.decompose_action(a)) == a
  assert cleanup.decompose_action(NOOP) == (4, 2, 1, 1)
  engine = cleanup._ENGINE_VALUES  # pylint: disable=protected-access
  assert len({tuple(r) for r in engine}) == 60
  assert set(engine[:, 0]) == {0, 1, 2, 3, 4} and set(engine[:, 1]) == {-1, 0, 1}
  np.testing.assert_array_equal(engine[NOOP], [0, 0, 0, 0])
  env = cleanup.make_cleanup(seed=0)
  env.reset()
  with pytest.raises(ValueError):
    env.step(np.full(4, 60))
  env.close()


def test_each_agent_sees_itself_blue_and_the_others_red():
  env = cleanup.make_cleanup(seed=3)
  ts = env.reset()
  rng = np.random.default_rng(0)
  saw_out_of_map = False
  for t in range(400):
    frames = ts.observation
    pos = env.agent_positions()
    on_map = env.agents_on_map()
    assert pos.shape == (4, 2) and pos.dtype == np.int32
    assert np.all((pos >= 0) & (pos < np.array(env.map_hw)))
    blue, red = _colour_mask(frames, cleanup.SELF_RGB), _colour_mask(frames, cleanup.OTHER_RGB)
    for i in range(4):
      # Exactly one 3x3 blue cell (itself) and one red cell per other agent on the map, nothing else.
      assert blue[i].sum() == 9 * on_map[i]
      assert red[i].sum() == 9 * (on_map.sum() - on_map[i])
      for j in np.flatnonzero(on_map):
        r, c = pos[j]
        colour = tuple(frames[i, r, c])
        assert colour == (cleanup.SELF_RGB if i == j else cleanup.OTHER_RGB), (t, i, j)
    if on_map.all():
      # The views differ, and only where the agents stand.
      for i in range(1, 4):
        diff = np.any(frames[0] != frames[i], axis=-1)
        assert diff.sum() == 18
        assert diff[tuple(pos[0])] and diff[tuple(pos[i])]
    saw_out_of_map |= not on_map.all()
    ts = env.step(_random_actions(rng))
  # Random play fines someone (half the actions fire the fine beam); the fined agent leaves the map for a while.
  assert saw_out_of_map and env.episode_info()['fined_team'] > 0
  env.close()


def test_rewards_match_the_engine_per_player_reward():
  env = cleanup.make_cleanup(seed=1, level_settings=APPLES_EVERYWHERE)
  env.reset()
  rng = np.random.default_rng(1)
  total = np.zeros(4)
  for _ in range(300):
    ts = env.step(_random_actions(rng))
    raw = env.raw_observation()
    engine = np.array([raw[f'{i}.REWARD'] for i in range(1, 5)], np.float32)
    assert ts.reward.dtype == np.float32 and ts.reward.shape == (4,)
    np.testing.assert_array_equal(ts.reward, engine)
    assert np.all(ts.reward >= 0) and np.all(ts.reward == np.round(ts.reward)), 'only +1 per apple, no fines'
    total += ts.reward
  assert total.sum() > 0
  assert env.episode_info()['apples_team'] == total.sum()
  env.close()

  # The level's own fine penalties come back on request (and random play does get fined).
  env = cleanup.make_cleanup(seed=3, fine_rewards=(-1.0, -50.0))
  env.reset()
  rewards = np.stack([env.step(_random_actions(rng)).reward for _ in range(300)])
  assert (rewards == -50).any() and (rewards == -1).any()
  env.close()


def test_walking_onto_an_apple_pays_that_agent_one():
  env = cleanup.make_cleanup(seed=2, level_settings=APPLES_EVERYWHERE)
  env.reset()
  others = [NOOP] * 3
  for _ in range(200):
    before = env.agent_positions()[0]
    ts = env.step([FORWARD] + others)
    after = env.agent_positions()[0]
    if ts.reward[0] > 0:
      break
    assert not ts.reward.any()
    if after[0] <= before[0]:   # not heading south (or blocked): turn and try again
      ts = env.step([TURN] + others)
      assert not ts.reward.any()
  else:
    pytest.fail('agent 0 never reached an apple')
  np.testing.assert_array_equal(ts.reward, [1, 0, 0, 0])
  assert after[0] == before[0] + cleanup.SPRITE_PX, 'the apple was eaten while heading south'
  row = (after[0] - env.cell_to_pixel([[0, 0]])[0, 0]) // cleanup.SPRITE_PX
  assert row >= ORCHARD_FIRST_ROW
  # Moves are relative to the facing (the level's `moveRel`); agent 0 now faces south (+row).
  for move, delta in ((1, (-1, 0)), (3, (0, 1)), (2, (0, -1))):  # down = back, left = east, right = west
    before = env.agent_positions()[0]
    env.step([cleanup.compose_action(move, IDLE_TURN, NO_FIRE, NO_FIRE)] + others)
    np.testing.assert_array_equal(env.agent_positions()[0] - before, np.array(delta) * cleanup.SPRITE_PX)
  env.close()


def test_episode_lasts_exactly_1000_steps_and_reset_works():
  env = registry.make_env('dmlab2d_cleanup', seed=0)
  ts = env.reset()
  rng = np.random.default_rng(0)
  steps = 0
  while not ts.last():
    ts = env.step(_random_actions(rng))
    steps += 1
    assert steps <= 1000
    assert ts.last() == (steps == 1000)
  assert steps == 1000
  assert ts.discount == 1.0, 'a time limit, not a terminal state (base.py)'
  info = env.episode_info()
  assert set(info) == {'apples_team', 'mud_cleaned_team', 'fined_team'}
  ts = env.reset()
  assert ts.first() and ts.observation.shape == (4, 72, 96, 12)
  np.testing.assert_array_equal(ts.observation[..., :3], ts.observation[..., 9:])
  assert env.episode_info()['apples_team'] == 0
  assert env.step(np.full(4, NOOP)).mid()
  env.close()

  short = cleanup.make_cleanup(seed=0, episode_length=5)
  short.reset()
  kinds = [short.step(np.full(4, NOOP)).step_type for _ in range(6)]
  assert [k.name for k in kinds] == ['MID', 'MID', 'MID', 'MID', 'LAST', 'FIRST']  # auto-reset after LAST
  short.close()


def _rollout(seed, steps=150, episodes=2):
  env = cleanup.make_cleanup(seed=seed)
  rng = np.random.default_rng(123)
  out = []
  for _ in range(episodes):
    ts = env.reset()
    out.append((ts.observation, env.agent_positions()))
    for _ in range(steps):
      ts = env.step(_random_actions(rng))
      out.append((ts.observation, ts.reward, env.agent_positions()))
  env.close()
  return out


def test_deterministic_per_seed():
  a, b, c = _rollout(7), _rollout(7), _rollout(8)
  for x, y in zip(a, b):
    for u, v in zip(x, y):
      np.testing.assert_array_equal(u, v)
  assert any(not np.array_equal(x[0], y[0]) for x, y in zip(a, c))
  # Episodes of one seed differ from each other (each reset draws a new engine seed).
  assert not np.array_equal(a[0][1], a[151][1]) or not np.array_equal(a[0][0], a[151][0])


def test_missing_engine_is_a_clear_error(monkeypatch):
  monkeypatch.setitem(sys.modules, 'dmlab2d', None)  # makes `import dmlab2d` raise ImportError
  with pytest.raises(base.EnvironmentUnavailableError, match=r'pip install dmlab2d==1\.0\.2'):
    registry.check_available('dmlab2d_cleanup')
  with pytest.raises(base.EnvironmentUnavailableError, match=r'pip install dmlab2d==1\.0\.2'):
    registry.make_env('dmlab2d_cleanup')


@pytest.mark.slow
def test_launcher_end_to_end(tmp_path):
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  cmd = [sys.executable, '-m', 'launchers.marl', '--env=dmlab2d_cleanup', '--model=acnn', '--total_frames=256',
         '--num_actors=2', '--batch_size=2', f'--logdir={tmp_path / "run"}']
  proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  assert os.path.isdir(tmp_path / 'run' / 'saved_model')
