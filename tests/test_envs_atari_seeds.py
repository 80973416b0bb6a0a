"""The companion seeds' presets of the ALE adapter on the real engine (issue 14 Sec. 1; seed 001 spec Sec. 2.1,
seed 002 S:L841-862): the frame pipelines against slow NumPy references on real frames, the two-frame max, the
luminance weights, FIRE after a lost life, the seeded no-ops, the step cap, and Breakout's RAM positions against
the ball's and paddle's pixels."""

import functools
import json

import cv2
import numpy as np
import pytest

from rlcv_tf.envs import atari
from rlcv_tf.envs import registry

SEED_ENVS = {
    'atari_breakout_seed001': ((1, 84, 84, 4), 4), 'atari_pong_seed002': ((1, 84, 84, 1), 1),
    'atari_breakout_seed002': ((1, 84, 84, 1), 1), 'atari_space_invaders_seed002': ((1, 84, 84, 1), 1),
    'atari_pong_seed002_rgb': ((1, 84, 84, 3), 1), 'atari_breakout_seed002_rgb': ((1, 84, 84, 3), 1),
    'atari_space_invaders_seed002_rgb': ((1, 84, 84, 3), 1),
    'atari_breakout_nature': ((1, 84, 84, 4), 4), 'atari_pong_nature': ((1, 84, 84, 4), 4),
}
BALL_RED = (200, 72, 72)   # Breakout's ball (and paddle, and top brick row) colour on the NTSC palette
BT601 = np.array([0.299, 0.587, 0.114])       # ALE's greyscale
BT709 = np.array([0.2126, 0.7152, 0.0722])    # seed 002's luminance, Eq. (4.1)


@functools.lru_cache(maxsize=None)
def _area_weights(n_in, n_out):
  """Row i: the share of input pixel r inside output pixel i's interval [i s, (i + 1) s), s = n_in / n_out."""
  s = n_in / n_out
  w = np.zeros((n_out, n_in))
  for i in range(n_out):
    lo, hi = i * s, (i + 1) * s
    for r in range(int(np.floor(lo)), min(n_in, int(np.ceil(hi)))):
      w[i, r] = (min(hi, r + 1) - max(lo, r)) / s
  return w


def _area_resize(img, hw=(84, 84)):
  """Exact area average written out (float64), per channel when img is [H, W, C]."""
  wy, wx = _area_weights(img.shape[0], hw[0]), _area_weights(img.shape[1], hw[1])
  x = np.asarray(img, np.float64)
  if x.ndim == 2:
    return wy @ x @ wx.T
  return np.stack([wy @ x[..., c] @ wx.T for c in range(x.shape[-1])], axis=-1)


def _record_engine_frames(env, monkeypatch):
  """Every RGB screen the engine produces from now on, in order (wraps the gymnasium env's step)."""
  frames = []
  inner = env.gym_env
  step = inner.step

  def recording_step(action):
    out = step(action)
    frames.append(env.ale.getScreenRGB().copy())
    return out
  monkeypatch.setattr(inner, 'step', recording_step)
  return frames


@pytest.mark.parametrize('name', sorted(SEED_ENVS))
def test_registry_entries_build_the_presets(name):
  shape, frames = SEED_ENVS[name]
  e = registry.entry(name)
  assert e.chapter == 0 and e.real and e.default_frames == frames and name in registry.names(chapter=0)
  env = registry.make_env(name, seed=0)
  try:
    ts = env.reset()
    assert ts.observation.shape == shape and ts.observation.dtype == np.uint8
    settings = json.loads(json.dumps(env.unwrapped.ale_settings))
    preset = dict(e.kwargs)['preset']
    assert settings['preset'] == preset and settings['frameskip'] == 1 and settings['action_repeat'] == 4
    assert settings == json.loads(json.dumps(atari.seed_settings(dict(e.kwargs)['game'], preset)))
    assert env.unwrapped.gym_env.spec.kwargs['frameskip'] == 1
    sticky = env.unwrapped.ale.getFloat('repeat_action_probability')
    assert sticky == pytest.approx(0.0 if preset in ('seed001', 'nature_dqn') else 0.25)
  finally:
    env.close()
  assert 'atari_breakout' in registry.names(chapter=2)          # the Chapter 2 names are unchanged
  assert 'preset' not in atari.ale_settings('breakout')


def test_seed001_is_ale_grey_of_the_whole_frame_area_resized(monkeypatch):
  """Real Breakout frames: the observation after each step is the LAST engine frame's grey (no max over frames),
  with no crop, area-resized to 84x84; grey from the RGB screen by BT.601 weights (ALE's own greyscale)."""
  env = atari.make_atari(game='breakout', seed=2, preset='seed001')
  frames = _record_engine_frames(env, monkeypatch)
  rng = np.random.default_rng(0)
  ts = env.reset()
  checked = max_would_differ = 0
  for t in range(60):
    if t:
      ts = env.step(rng.integers(0, 4, 1))
    rgb = frames[-1].astype(np.float64)
    grey = np.rint(rgb @ BT601)
    np.testing.assert_array_equal(grey, env.ale.getScreenGrayscale())       # ALE's grey is BT.601 luma
    ref = np.rint(_area_resize(grey))
    obs = ts.observation[0, :, :, 0].astype(np.float64)
    assert np.abs(obs - ref).max() <= 1 and (obs != ref).mean() < 0.01
    np.testing.assert_array_equal(ts.observation[0, :, :, 0],
                                  cv2.resize(env.ale.getScreenGrayscale(), (84, 84), interpolation=cv2.INTER_AREA))
    # A max over the last two frames would leave the moving ball's trail: not this preset.
    two = np.rint(np.maximum(frames[-1], frames[-2]).astype(np.float64) @ BT601)
    max_would_differ += int(np.abs(obs - np.rint(_area_resize(two))).max() > 1)
    checked += 1
  # No crop: the score digits in rows 5-14 of the screen show in the observation's top rows.
  assert ts.observation[0, 2:6].max() > 0 and checked == 60 and max_would_differ > 20
  env.close()


def test_seed002_is_the_max_of_the_last_two_frames_in_luminance(monkeypatch):
  env = atari.make_atari(game='space_invaders', seed=1, preset='seed002')
  frames = _record_engine_frames(env, monkeypatch)
  rng = np.random.default_rng(1)
  env.reset()
  differs_from_last_frame = 0
  for _ in range(40):
    ts = env.step(rng.integers(0, env.num_actions, 1))
    assert env.last_repeat == 4
    ref = np.rint(_area_resize(np.maximum(frames[-1], frames[-2]).astype(np.float64) @ BT709))
    obs = ts.observation[0, :, :, 0].astype(np.float64)
    assert np.abs(obs - ref).max() <= 1 and (obs != ref).mean() < 0.01
    only_last = np.rint(_area_resize(frames[-1].astype(np.float64) @ BT709))
    differs_from_last_frame += int(np.abs(obs - only_last).max() > 1)
  assert differs_from_last_frame > 3           # the max matters on real Space Invaders frames
  env.close()


def test_nature_dqn_is_the_max_of_two_frames_in_y_with_noops_and_no_fire(monkeypatch):
  """Mnih et al. 2015's preprocessing on real Breakout frames: max of the last two RGB frames, Y = BT.601 luma,
  area-resized to 84x84; 1..30 no-ops at reset, no automatic FIRE (the ball is not served without the agent's)."""
  env = atari.make_atari(game='breakout', seed=3, preset='nature_dqn')
  frames = _record_engine_frames(env, monkeypatch)
  settings = env.ale_settings
  assert settings['noop_max'] == 30 and not settings['fire_on_reset'] and settings['max_of_last_two_frames']
  noops = set()
  for _ in range(3):
    env.reset()
    noops.add(env.noops)
    assert 1 <= env.noops <= 30 and len(frames) >= env.noops
  assert len(noops) > 1
  rng = np.random.default_rng(3)
  ball_seen = differs_from_last_frame = 0
  for t in range(40):
    action = 0 if t < 20 else int(rng.integers(0, 4))     # 20 NOOPs first: nothing serves the ball
    ts = env.step(np.array([action]))
    ref = np.rint(_area_resize(np.maximum(frames[-1], frames[-2]).astype(np.float64) @ BT601))
    obs = ts.observation[0, :, :, 0].astype(np.float64)
    assert np.abs(obs - ref).max() <= 1 and (obs != ref).mean() < 0.01
    only_last = np.rint(_area_resize(frames[-1].astype(np.float64) @ BT601))
    differs_from_last_frame += int(np.abs(obs - only_last).max() > 1)
    if t < 20:
      ball_seen += int(env.object_positions()['ball_y'] != 0)
  assert ball_seen == 0 and differs_from_last_frame > 0
  env.close()


def test_seed002_rgb_keeps_the_colours(monkeypatch):
  env = atari.make_atari(game='breakout', seed=0, preset='seed002_rgb')
  frames = _record_engine_frames(env, monkeypatch)
  rng = np.random.default_rng(2)
  env.reset()
  for _ in range(10):
    ts = env.step(rng.integers(0, 4, 1))
    ref = np.rint(_area_resize(np.maximum(frames[-1], frames[-2])))
    obs = ts.observation[0].astype(np.float64)
    assert obs.shape == (84, 84, 3) and np.abs(obs - ref).max() <= 1
  # The red top brick row stays red: R > G = B.
  r, g, b = ts.observation[0, 23, 20:60].reshape(-1, 3).mean(0)        # screen rows 57.5-60: the red row
  assert r > g + 50 and abs(g - b) < 5
  env.close()


def test_crop_rows_option():
  env = atari.make_atari(game='pong', seed=0, preset='seed002', crop_rows=(34, 194))
  ts = env.reset()
  ref = np.rint(_area_resize(atari.luminance(env.ale.getScreenRGB())[34:194].astype(np.float64)))
  assert np.abs(ts.observation[0, :, :, 0] - ref).max() <= 1
  assert env.ale_settings['crop_rows'] == [34, 194]
  env.close()


def test_max_of_two_keeps_both_flickering_sprites():
  a = np.zeros((6, 8, 3), np.uint8)
  b = np.zeros((6, 8, 3), np.uint8)
  a[1:3, 1:3] = (200, 72, 72)     # a sprite drawn on even frames only
  b[3:5, 5:7] = (66, 72, 200)     # another drawn on odd frames only
  m = atari.max_of_last_two(a, b)
  np.testing.assert_array_equal(m[1:3, 1:3], a[1:3, 1:3])
  np.testing.assert_array_equal(m[3:5, 5:7], b[3:5, 5:7])
  assert ((m.sum(-1) > 0) == ((a.sum(-1) > 0) | (b.sum(-1) > 0))).all()
  np.testing.assert_array_equal(atari.max_of_last_two(b, a), m)


def test_real_space_invaders_frames_flicker_and_the_max_keeps_both():
  """Space Invaders draws some objects on alternate frames (seed 002 Fig. 4.1): consecutive engine frames each
  have lit pixels the other lacks, and the max of the pair has all of them."""
  env = atari.make_atari(game='space_invaders', seed=0, preset='seed002_rgb')
  env.reset()
  rng = np.random.default_rng(0)
  found = 0
  for _ in range(100):
    env.gym_env.step(int(rng.integers(0, 6)))
    first = env.ale.getScreenRGB().copy()
    env.gym_env.step(int(rng.integers(0, 6)))
    second = env.ale.getScreenRGB().copy()
    lit1, lit2 = first.any(-1), second.any(-1)
    if (lit1 & ~lit2).sum() > 4 and (lit2 & ~lit1).sum() > 4:
      found += 1
      m = atari.max_of_last_two(first, second)
      assert (m.any(-1) == (lit1 | lit2)).all()
      assert (m[lit1 & ~lit2] == first[lit1 & ~lit2]).all() and (m[lit2 & ~lit1] == second[lit2 & ~lit1]).all()
  assert found > 10
  env.close()


def test_luminance_of_pure_red_green_blue():
  pure = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [0, 0, 0]], np.uint8)
  y = atari.luminance(pure)
  np.testing.assert_allclose(y / 255.0, [0.2126, 0.7152, 0.0722, 1.0, 0.0], atol=1e-6)


def _ball_in_play(env):
  return env.object_positions()['ball_y'] != 0


def test_seed001_fires_on_reset_and_after_each_lost_life():
  """An agent that only ever sends NOOP: every life's ball is served by the adapter, so the game ends (0 lives)."""
  env = atari.make_atari(game='breakout', seed=0, preset='seed001')
  env.reset()
  assert _ball_in_play(env) and env.object_positions()['lives'] == 5
  lives_seen, served_after_loss = [5], 0
  ts = None
  for _ in range(2000):
    before = env.ale.lives()
    ts = env.step(np.array([0]))
    if ts.last():
      break
    if env.ale.lives() < before:
      lives_seen.append(env.ale.lives())
      assert env.last_repeat == 8                      # the step's 4 frames and 4 frames of FIRE
      for _ in range(3):                               # served: the ball comes back into play
        if _ball_in_play(env):
          break
        ts = env.step(np.array([0]))
      served_after_loss += int(_ball_in_play(env))
  assert ts.last() and ts.discount == 0.0 and env.ale.lives() == 0
  assert lives_seen == [5, 4, 3, 2, 1] and served_after_loss == 4
  # The thesis preset does not fire for the agent: NOOP alone never serves.
  thesis = atari.make_atari(game='breakout', seed=0)
  thesis.reset()
  for _ in range(50):
    thesis.step(np.array([0]))
  assert not _ball_in_play(thesis)
  thesis.close()
  env.close()


def test_seed001_noops_are_seeded_and_counted_in_frames():
  def noops(seed, resets=6):
    env = atari.make_atari(game='breakout', seed=seed, preset='seed001')
    out = []
    for _ in range(resets):
      env.reset()
      out.append(env.noops)
      # NOOP frames, then 4 frames of FIRE, all on ALE's episode frame counter.
      assert env.ale.getEpisodeFrameNumber() == env.noops + 4 == env.episode_info()['frames']
      assert env.episode_info()['noops'] == env.noops
    env.close()
    return out
  a, b, c = noops(3), noops(3), noops(4)
  assert a == b and a != c
  assert all(1 <= n <= 30 for n in a + c) and len(set(a + c)) > 3


def test_seed001_cap_truncates_and_the_frame_skip_is_4():
  env = atari.make_atari(game='breakout', seed=0, preset='seed001', max_agent_steps=40)
  assert env.ale_settings['max_agent_steps'] == 40
  ts = env.reset()
  n = 0
  while not ts.last():
    ts = env.step(np.array([n % 4]))
    n += 1
    assert env.last_repeat in (4, 8)
  assert n == 40 and ts.discount == 1.0 and env.episode_info()['steps'] == 40
  assert atari.seed_settings('breakout', 'seed001')['max_agent_steps'] == 27_000
  assert env.ale.getInt('max_num_frames_per_episode') == 0        # ALE's own frame cap is off
  env.close()


def test_breakout_ram_positions_match_the_ball_pixels():
  """AtariARI RAM[99], RAM[101], RAM[72] vs the red pixels of the real screen: the ball is the 2x4 block with
  top-left (RAM[101] + 9, RAM[99] - 49) whenever it is between the bricks and the paddle, and the paddle's left
  column is RAM[72] - 47."""
  env = atari.make_atari(game='breakout', seed=0, preset='seed001')
  env.reset()
  rng = np.random.default_rng(0)
  checked, xs, ys = 0, set(), set()
  for _ in range(400):
    ts = env.step(rng.integers(0, 4, 1))
    if ts.last():
      env.reset()
      continue
    pos = env.object_positions()
    red = np.all(env.ale.getScreenRGB() == BALL_RED, axis=-1)
    row, col = pos['ball_row'], pos['ball_col']
    assert (row, col) == ((pos['ball_y'] + 9, pos['ball_x'] - 49) if pos['ball_y'] else (-1, -1))
    # Below the bricks, above the paddle and clear of the grey side walls (columns 0-7, 152-159, drawn over the
    # ball): only the ball is red there.
    if 93 <= row <= 180 and 8 <= col <= 150:
      area = red[93:189]
      rows, cols = np.nonzero(area)
      assert rows.min() + 93 == row and cols.min() == col and len(rows) == 8
      assert area[row - 93:row - 93 + 4, col:col + 2].all()
      pcols = np.nonzero(red[189:193].any(0))[0]
      assert pcols.min() == pos['paddle_col'] == pos['paddle_x'] - 47
      checked += 1
      xs.add(col)
      ys.add(row)
  assert checked > 150 and len(xs) > 30 and len(ys) > 30             # a ball that moves
  info = env.episode_info()
  assert {'ball_x', 'ball_y', 'paddle_x'} <= set(info)
  env.close()


def test_other_games_have_no_ram_positions_and_bad_presets_fail():
  env = atari.make_atari(game='pong', seed=0, preset='seed002')
  env.reset()
  assert not env.has_object_positions and env.object_positions()['ball_x'] == -1
  assert 'ball_x' not in env.episode_info()
  env.close()
  with pytest.raises(ValueError, match='unknown Atari preset'):
    atari.make_atari(game='breakout', preset='seed003')
  with pytest.raises(ValueError, match='thesis preset is fixed'):
    atari.make_atari(game='breakout', noop_max=5)
  with pytest.raises(ValueError, match='the seed presets are .*atari_breakout_seed001'):
    registry.make_env('atari_breakout_seed003')
