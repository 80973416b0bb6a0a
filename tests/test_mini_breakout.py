"""MiniBreakout (seed 001 spec Sec. 6): interface, the ball's size, bricks, lives, paddle bounces, episode ends,
determinism, and that a scripted tracker clears far more bricks than a random agent."""

import json

import numpy as np
import pytest

from rlcv_tf.datasets import atari_frames
from rlcv_tf.envs import mini_breakout as mb
from rlcv_tf.envs import registry

NOOP, FIRE, RIGHT, LEFT = 0, 1, 2, 3


def _step(env, action):
  return env.step(np.array([action], np.int32))


def _play(env, policy, rng):
  ts = env.reset()
  while not ts.last():
    ts = _step(env, policy(env, rng))
  return env.episode_info()


def _tracker(env, rng):
  return atari_frames.tracker_action(env.object_positions(), env.geometry, rng, 0.05)


def _random(env, rng):
  return int(rng.integers(0, 4))


@pytest.mark.parametrize('name,size', [('mini_breakout', 42), ('mini_breakout_tiny', 21), ('mini_breakout_84', 84)])
def test_registry_entries_and_interface(name, size):
  e = registry.entry(name)
  assert not e.real and e.chapter == 0 and e.default_frames == 2
  assert name in registry.names(chapter=0) and name not in registry.names(chapter=2)
  env = registry.make_env(name, seed=0)
  ts = env.reset()
  assert ts.first() and ts.observation.shape == (1, size, size, 2) and ts.observation.dtype == np.uint8
  assert env.num_actions == 4 and env.unwrapped.action_names == ('NOOP', 'FIRE', 'RIGHT', 'LEFT')
  assert env.unwrapped.observation_spec().shape == (1, size, size, 1)
  ts = env.step(np.array([FIRE]))
  assert ts.reward.shape == (1,) and ts.reward.dtype == np.float32 and ts.discount == 1.0
  pos = env.unwrapped.object_positions()
  assert set(pos) == {'ball_x', 'ball_y', 'paddle_x', 'lives', 'ball_col', 'ball_row', 'paddle_col'}
  assert (pos['ball_col'], pos['ball_row'], pos['paddle_col']) == (pos['ball_x'], pos['ball_y'], pos['paddle_x'])
  assert json.loads(json.dumps(env.unwrapped.settings))['size'] == size
  info = env.episode_info()
  assert info['steps'] == info['frames'] == 1 and info['lives'] == 5 and info['bricks_left'] == 72


def test_the_frame_shows_walls_bricks_and_paddle_with_their_greys():
  env = mb.make_mini_breakout(size=84)
  frame = env.reset().observation[0, :, :, 0]
  assert (frame[:2, :] == mb.WALL_GREY).all() and (frame[2:, :2] == mb.WALL_GREY).all()
  assert (frame[2:, -2:] == mb.WALL_GREY).all() and (frame[-1, 2:-2] == 0).all()   # no bottom wall
  # Six brick rows of 2 px, one grey per row (0.9 .. 0.5 of 255), wall to wall.
  for r, grey in enumerate(mb.BRICK_GREYS):
    rows = frame[12 + 2 * r:14 + 2 * r, 2:82]
    assert (rows == grey).all(), r
  assert len(set(mb.BRICK_GREYS)) == 6 and mb.BRICK_GREYS[0] == round(0.9 * 255) and mb.BRICK_GREYS[-1] == 128
  paddle = np.argwhere(frame == mb.PADDLE_GREY)
  assert len(paddle) == 24 and set(paddle[:, 0]) == {76, 77}          # 12 x 2
  assert (frame == 255).sum() == 0                                     # no ball before FIRE
  assert env.object_positions()['ball_x'] == -1 and env.object_positions()['ball_y'] == -1


@pytest.mark.parametrize('size,ball_pixels', [(84, 4), (42, 1), (21, 1)])
def test_the_ball_occupies_exactly_its_pixels(size, ball_pixels):
  env = mb.make_mini_breakout(seed=3, size=size)
  rng = np.random.default_rng(0)
  env.reset()
  seen = 0
  for _ in range(400):
    ts = _step(env, atari_frames.tracker_action(env.object_positions(), env.geometry, rng, 0.1))
    frame = ts.observation[0, :, :, 0]
    pos = env.object_positions()
    if pos['ball_x'] < 0:
      assert (frame == 255).sum() == 0
      continue
    if pos['ball_y'] + env.geometry['ball'] > size:
      continue                                                         # leaving the screen at the bottom
    seen += 1
    assert (frame == 255).sum() == ball_pixels
    b = env.geometry['ball']
    assert (frame[pos['ball_y']:pos['ball_y'] + b, pos['ball_x']:pos['ball_x'] + b] == 255).all()
    if ts.last():
      break
  assert seen > 100
  if size == 42:
    assert ball_pixels / size ** 2 == pytest.approx(0.0006, abs=0.0001)   # spec: about 0.06 %


def test_breaking_a_brick_gives_one_and_removes_it():
  env = mb.make_mini_breakout(size=42)
  before = env.reset().observation[0, :, :, 0].copy()
  # Bottom brick row is row 11; column 5 of the 12 spans pixels edges[5]:edges[6]. Ball just below it, moving up.
  edges = np.round(np.linspace(1, 41, 13)).astype(int)
  x = edges[5] + 1
  env.place_ball(x, 13, 0.0, -1.0)
  ts = _step(env, NOOP)          # row 12 (no brick)
  assert float(ts.reward[0]) == 0.0
  ts = _step(env, NOOP)          # row 11: the brick
  assert float(ts.reward[0]) == 1.0
  bricks = env.bricks
  assert not bricks[5, 5] and bricks.sum() == 71 and env.episode_info()['score'] == 1.0
  after = ts.observation[0, :, :, 0]
  changed = np.argwhere(after != before)
  brick_pixels = {(11, c) for c in range(edges[5], edges[6])}
  ball = (env.object_positions()['ball_y'], env.object_positions()['ball_x'])
  assert {tuple(p) for p in changed} - {ball} == brick_pixels
  assert all(after[p] == 0 for p in brick_pixels)
  assert env.object_positions()['ball_y'] == 12             # bounced: it stays below the row, now moving down
  ts = _step(env, NOOP)
  assert float(ts.reward[0]) == 0.0 and env.object_positions()['ball_y'] > 12


def test_losing_the_ball_costs_a_life_and_fire_serves_again():
  env = mb.make_mini_breakout(seed=1, size=42)
  env.reset()
  env.place_paddle(1)
  env.place_ball(35, 30, 0.0, 1.0)          # falls far right of the paddle
  lives = []
  for _ in range(20):
    ts = _step(env, LEFT)
    lives.append(env.object_positions()['lives'])
  assert lives[0] == 5 and lives[-1] == 4 and not env.ball_in_play
  assert env.object_positions()['ball_x'] == -1 and (ts.observation == 255).sum() == 0
  assert not ts.last() and ts.discount == 1.0
  for _ in range(5):
    _step(env, NOOP)
  assert not env.ball_in_play                   # NOOP never serves
  _step(env, FIRE)
  pos = env.object_positions()
  assert env.ball_in_play and pos['ball_y'] == env.geometry['serve_row'] + 1   # served, then moved one step down


def test_zero_lives_terminates():
  env = mb.make_mini_breakout(seed=2, size=21)
  ts = env.reset()
  steps = 0
  while not ts.last():
    # Serve, then keep the paddle at the left wall: every ball served right of it is lost.
    ts = _step(env, FIRE if not env.ball_in_play else LEFT)
    steps += 1
  assert env.episode_info()['lives'] == 0 and ts.discount == 0.0 and steps < 500
  assert env.step(np.array([NOOP])).first()      # the next step starts a new game


def test_clearing_the_wall_terminates_and_the_cap_truncates():
  env = mb.make_mini_breakout(size=21)
  env.reset()
  env._bricks[:] = False                      # pylint: disable=protected-access
  env._bricks[5, 0] = True                    # pylint: disable=protected-access   one brick left: row 8, column 1
  env.place_ball(1, 10, 0.0, -1.0)
  rewards = []
  ts = None
  for _ in range(3):
    ts = _step(env, NOOP)
    rewards.append(float(ts.reward[0]))
    if ts.last():
      break
  assert rewards[-1] == 1.0 and ts.last() and ts.discount == 0.0 and env.episode_info()['bricks_left'] == 0
  capped = mb.make_mini_breakout(size=42, max_steps=30)
  ts = capped.reset()
  n = 0
  while not ts.last():
    ts = _step(capped, NOOP)
    n += 1
  assert n == 30 and ts.discount == 1.0


@pytest.mark.parametrize('hit,expected', [('left_edge', -2), ('left_centre', -1), ('right_centre', 1),
                                          ('right_edge', 2)])
def test_where_the_ball_hits_the_paddle_sets_its_horizontal_speed(hit, expected):
  env = mb.make_mini_breakout(size=84)
  env.reset()
  env.place_paddle(36)                        # columns 36..47, centre 42
  # Ball 2 px: offset = (ball centre - 42) / 7; zones [-1,-.5) [-.5,0) [0,.5) [.5,1] -> -2 -1 +1 +2 (x unit 1 at 84).
  x = {'left_edge': 35, 'left_centre': 39, 'right_centre': 42, 'right_edge': 46}[hit]
  env.place_ball(x, 70, 0.0, 2.0)
  speeds = []
  for _ in range(4):
    _step(env, NOOP)
    speeds.append((env._vx, env._vy))         # pylint: disable=protected-access
  assert speeds[-1] == (float(expected), -2.0), speeds
  assert env.object_positions()['lives'] == 5


def test_the_ball_stays_between_the_walls_and_the_paddle_too():
  env = mb.make_mini_breakout(seed=5, size=84)
  rng = np.random.default_rng(1)
  ts = env.reset()
  for _ in range(3000):
    ts = _step(env, _tracker(env, rng) if rng.random() < 0.7 else int(rng.integers(0, 4)))
    frame = ts.observation[0, :, :, 0]
    assert (frame[:2] == mb.WALL_GREY).all() and (frame[:, :2] == mb.WALL_GREY).all()
    assert (frame[:, -2:] == mb.WALL_GREY).all()
    p = env.object_positions()['paddle_x']
    assert 2 <= p <= 84 - 2 - 12
    if ts.last():
      ts = env.reset()


def _trajectory(seed, actions, size=42):
  env = mb.make_mini_breakout(seed=seed, size=size)
  ts = env.reset()
  out = [ts.observation.copy()]
  rewards = []
  for a in actions:
    ts = _step(env, int(a))
    out.append(ts.observation.copy())
    rewards.append(float(ts.reward[0]))
    if ts.last():
      ts = env.reset()
  return np.stack(out), rewards


def test_same_seed_and_actions_give_the_same_trajectory():
  actions = np.random.default_rng(7).integers(0, 4, 1500)
  a, ra = _trajectory(4, actions)
  b, rb = _trajectory(4, actions)
  c, _ = _trajectory(5, actions)
  np.testing.assert_array_equal(a, b)
  assert ra == rb
  assert not np.array_equal(a, c)                 # the serve positions differ
  env = mb.make_mini_breakout(seed=4)
  env.reset()
  for x in actions[:40]:
    _step(env, int(x))
  env.reseed(4)
  again = [env.reset().observation.copy()]
  for x in actions[:200]:
    ts = _step(env, int(x))
    again.append(ts.observation.copy())
    if ts.last():
      break
  np.testing.assert_array_equal(np.stack(again), a[:len(again)])


def test_a_scripted_tracker_clears_bricks_a_random_agent_does_not():
  env = mb.make_mini_breakout(seed=0, size=42, max_steps=3000)
  rng = np.random.default_rng(0)
  tracker = [_play(env, _tracker, rng)['score'] for _ in range(4)]
  random = [_play(env, _random, rng)['score'] for _ in range(10)]
  assert np.mean(tracker) >= 5, tracker
  assert np.mean(random) < 3 and np.mean(random) * 5 < np.mean(tracker), (random, tracker)


def test_bad_arguments():
  with pytest.raises(ValueError, match='size must be one of'):
    mb.make_mini_breakout(size=50)
  with pytest.raises(ValueError, match='max_steps'):
    mb.make_mini_breakout(max_steps=0)
  env = mb.make_mini_breakout()
  env.reset()
  with pytest.raises(ValueError, match=r'lie in \[0, 3\]'):
    env.step(np.array([4]))


def test_auto_serve_puts_a_ball_in_play_at_reset_and_after_each_lost_life():
  """The registry's entries serve by themselves (the seed-001 ALE preset's FIRE on reset / after a lost life); the
  factory's default waits for FIRE."""
  manual = mb.make_mini_breakout(seed=0, size=21)
  manual.reset()
  assert not manual.ball_in_play
  for _ in range(30):
    _step(manual, NOOP)
  assert not manual.ball_in_play and manual.episode_info()['lives'] == 5
  env = registry.make_env('mini_breakout_tiny', seed=0, num_frames=1).unwrapped
  assert env.settings['auto_serve'] is True
  env.reset()
  assert env.ball_in_play and env.object_positions()['ball_y'] >= 0
  lives, seen_loss = 5, 0
  ts = None
  for _ in range(2000):                           # NOOP only: every ball is lost, each life starts with a serve
    ts = _step(env, NOOP)
    if ts.last():
      break
    if env.episode_info()['lives'] < lives:
      lives = env.episode_info()['lives']
      seen_loss += 1
      assert env.ball_in_play, 'no ball served after a lost life'
  assert seen_loss == 4 and ts.last() and env.episode_info()['lives'] == 0
