"""The frame collector and readers (rlcv_tf/datasets/atari_frames.py) and launchers/atari_frames.py: PNGs that
replay to the environment's frames, positions on the stored pixels, the split by episode, resume, the tf.data
reader with a corrupt file, the no-PNG error, a saved policy fed stacked frames, and why never JPEG."""

import filecmp
import json
import os

import cv2
import numpy as np
import pytest

import launcher_test_helpers as helpers
from rlcv_tf.datasets import atari_frames as af
from rlcv_tf.envs import atari
from rlcv_tf.envs import mini_breakout as mb
from rlcv_tf.envs import registry


def _collect(env_name, output_dir, *args, **kwargs):
  return af.collect(env_name, output_dir, *args, make_env=registry.make_env, **kwargs)


def _png(path):
  img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
  return img[..., None] if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope='module')
def tiny_dir(tmp_path_factory):
  out = str(tmp_path_factory.mktemp('frames') / 'tiny')
  _collect('mini_breakout_tiny', out, num_frames=400, policy='tracker', seed=3, max_episode_steps=60,
             print_fn=lambda s: None)
  return out


def test_layout_index_and_report(tiny_dir):
  report = json.load(open(os.path.join(tiny_dir, af.REPORT_FILE)))
  assert report['complete'] and report['frames'] == 400 and report['frame_shape'] == [21, 21, 1]
  assert report['config']['policy'] == 'tracker' and report['config']['epsilon'] == 0.05
  assert report['env_settings']['size'] == 21 and 'JPEG' in report['format']
  rows = af._read_index(os.path.join(tiny_dir, af.INDEX_FILE))   # pylint: disable=protected-access
  assert len(rows) == 400 and list(rows[0]) == list(af.INDEX_COLUMNS)
  pngs = [os.path.join(r, f) for r, _, fs in os.walk(tiny_dir) for f in fs if f.endswith('.png')]
  assert len(pngs) == 400 and not any(f.lower().endswith(('.jpg', '.jpeg')) for _, _, fs in os.walk(tiny_dir)
                                      for f in fs)
  assert sum(e['frames'] for e in report['episodes']) == 400
  # Episodes are cut at 60 steps (61 frames) unless the game ended first; the last one is cut by the budget.
  assert all(e['frames'] <= 61 for e in report['episodes']) and report['episodes'][-1]['end'] == 'cut'
  assert af.is_complete(tiny_dir) and af.is_complete(tiny_dir, 400) and not af.is_complete(tiny_dir, 401)


def test_pngs_replay_to_the_environment_frames_and_positions(tiny_dir):
  """An independent replay: the env re-seeded with each episode's recorded seed and fed the recorded actions
  gives exactly the stored PNGs, and the recorded positions are the ball's pixels in them."""
  report = json.load(open(os.path.join(tiny_dir, af.REPORT_FILE)))
  rows = af._read_index(os.path.join(tiny_dir, af.INDEX_FILE))   # pylint: disable=protected-access
  balls = 0
  for ep in report['episodes'][:3]:
    env = mb.make_mini_breakout(size=21, auto_serve=True)     # as the registry's mini_breakout_tiny
    env.reseed(ep['seed'])
    ts = env.reset()
    ep_rows = [r for r in rows if r['episode'] == ep['episode']]
    assert [r['step'] for r in ep_rows] == list(range(len(ep_rows)))
    for r in ep_rows:
      img = _png(os.path.join(tiny_dir, r['file']))
      np.testing.assert_array_equal(img, ts.observation[0])
      pos = env.object_positions()
      assert (r['ball_x'], r['ball_y'], r['paddle_x'], r['lives']) == (pos['ball_x'], pos['ball_y'],
                                                                        pos['paddle_x'], pos['lives'])
      if r['frame_ball_x'] >= 0 and r['frame_ball_y'] < 21:
        assert img[int(r['frame_ball_y']), int(r['frame_ball_x']), 0] == 255
        balls += 1
      if r['action'] >= 0:
        ts = env.step(np.array([r['action']]))
        assert float(ts.reward[0]) == rows[rows.index(r) + 1]['reward']
  assert balls > 50


def test_split_is_by_episode(tiny_dir):
  report = json.load(open(os.path.join(tiny_dir, af.REPORT_FILE)))
  val_eps = [e['episode'] for e in report['episodes'] if e['split'] == 'val']
  assert val_eps == [e for e in range(len(report['episodes'])) if e % 10 == 1]
  _, train_index = af.load_frames(tiny_dir, 'train')
  _, val_index = af.load_frames(tiny_dir, 'val')
  assert not set(train_index['episode']) & set(val_index['episode'])
  assert len(train_index) + len(val_index) == 400 and set(val_index['split']) == {'val'}
  assert [af.split_of(e, 0.25) for e in range(6)] == ['train', 'val', 'train', 'train', 'train', 'val']
  assert af.split_of(1, 0.0) == 'train'


def _same_collection(a, b):
  ra, rb = (af._read_index(os.path.join(d, af.INDEX_FILE)) for d in (a, b))   # pylint: disable=protected-access
  assert ra == rb
  for r in ra:
    assert filecmp.cmp(os.path.join(a, r['file']), os.path.join(b, r['file']), shallow=False)


def test_resume_gives_the_frames_of_one_uninterrupted_run(tmp_path, monkeypatch):
  kw = dict(policy='tracker', seed=1, max_episode_steps=40, print_fn=lambda s: None)
  whole = str(tmp_path / 'whole')
  _collect('mini_breakout_tiny', whole, num_frames=200, **kw)
  # A short run extended (its cut last episode is replayed), then a crash in the middle of an episode.
  parts = str(tmp_path / 'parts')
  _collect('mini_breakout_tiny', parts, num_frames=70, **kw)
  calls = {'n': 0}
  write = af._write_png   # pylint: disable=protected-access

  def crash_later(path, frame):
    calls['n'] += 1
    if calls['n'] == 90:
      raise KeyboardInterrupt
    write(path, frame)
  monkeypatch.setattr(af, '_write_png', crash_later)
  with pytest.raises(KeyboardInterrupt):
    _collect('mini_breakout_tiny', parts, num_frames=200, **kw)
  monkeypatch.setattr(af, '_write_png', write)
  assert not af.is_complete(parts)
  messages = []
  _collect('mini_breakout_tiny', parts, num_frames=200, **dict(kw, print_fn=messages.append))
  assert 'resuming' in messages[0]
  _same_collection(whole, parts)
  assert af.is_complete(parts, 200)
  # Again: nothing to do. With other settings: refused, naming the difference.
  messages.clear()
  _collect('mini_breakout_tiny', parts, num_frames=200, **dict(kw, print_fn=messages.append))
  assert 'nothing to do' in messages[0]
  with pytest.raises(af.CollectError, match="policy 'tracker' \\(now 'random'\\)"):
    _collect('mini_breakout_tiny', parts, num_frames=200, **dict(kw, policy='random'))
  (tmp_path / 'other').mkdir()
  (tmp_path / 'other' / 'notes.txt').write_text('x')
  with pytest.raises(af.CollectError, match='not empty'):
    _collect('mini_breakout_tiny', str(tmp_path / 'other'), num_frames=10, **kw)


def test_frames_dataset_reads_the_split_as_float_batches(tiny_dir):
  frames, index = af.load_frames(tiny_dir, 'train')
  assert frames.dtype == np.uint8 and frames.shape == (len(index), 21, 21, 1)
  ds = af.frames_dataset(tiny_dir, 'train', batch_size=32, shuffle=False)
  batches = list(ds.as_numpy_iterator())
  assert batches[0].dtype == np.float32 and batches[0].shape == (32, 21, 21, 1)
  got = np.concatenate(batches)
  np.testing.assert_allclose(got, frames / 255.0, atol=1e-7)
  assert ds.skipped_files == [] and ds.num_frames == len(index)
  # Shuffled: a permutation, the same for the same seed, another for another seed.
  def order(seed):
    return np.concatenate(list(af.frames_dataset(tiny_dir, 'train', 64, True, seed).as_numpy_iterator()))
  a, b, c = order(5), order(5), order(6)
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c) and np.isclose(a.sum(), got.sum())
  images, pos = next(af.frames_dataset(tiny_dir, 'val', 8, False, 0, with_positions=True).as_numpy_iterator())
  _, val_index = af.load_frames(tiny_dir, 'val')
  np.testing.assert_array_equal(pos['ball_x'], val_index['ball_x'][:8])
  assert images.shape == (8, 21, 21, 1)


def test_unreadable_pngs_are_skipped_and_counted(tmp_path):
  out = str(tmp_path / 'f')
  _collect('mini_breakout_tiny', out, num_frames=120, policy='random', seed=0, print_fn=lambda s: None)
  _, index = af.load_frames(out, 'all')
  victim = os.path.join(out, index[7]['file'])
  data = open(victim, 'rb').read()
  open(victim, 'wb').write(data[:len(data) // 2])          # truncated
  ds = af.frames_dataset(out, 'all', batch_size=50, shuffle=False)
  got = np.concatenate(list(ds.as_numpy_iterator()))
  assert len(got) == 119 and ds.skipped_files == [(victim, 'does not decode (truncated or corrupt PNG)')]
  frames, index2 = af.load_frames(out, 'all')
  assert len(frames) == 119 and index2.skipped == ds.skipped_files
  assert victim not in {os.path.join(out, r['file']) for r in index2}
  np.testing.assert_allclose(got, frames / 255.0, atol=1e-7)
  for i in range(8, 20):                                   # now 13 of 120: more than 5 %
    open(os.path.join(out, index[i]['file']), 'wb').write(b'')
  with pytest.raises(af.FramesError, match='13 of 120 all PNGs are unreadable'):
    af.frames_dataset(out, 'all', batch_size=50)


def test_no_png_is_one_line_value_error(tmp_path):
  with pytest.raises(ValueError) as e:
    af.frames_dataset(str(tmp_path), 'train', 8)
  assert '\n' not in str(e.value) and 'no PNG frames' in str(e.value) and 'launchers.atari_frames' in str(e.value)
  with pytest.raises(af.FramesError, match='no PNG frames'):
    af.load_frames(str(tmp_path))
  # A folder of PNGs without an index is read whole; it has no val split.
  for i in range(5):
    cv2.imwrite(str(tmp_path / f'{i}.png'), np.full((6, 7), i * 10, np.uint8))
  frames, index = af.load_frames(str(tmp_path), 'all')
  assert frames.shape == (5, 6, 7, 1) and [r['file'] for r in index] == [f'{i}.png' for i in range(5)]
  with pytest.raises(af.FramesError, match='no val split'):
    af.load_frames(str(tmp_path), 'val')


def test_bad_requests_are_refused():
  for kw, match in [(dict(env_name='atari_breakout'), 'not a frame environment'),
                    (dict(policy='greedy'), 'unknown policy'), (dict(num_frames=0), 'num_frames=0'),
                    (dict(policy='saved:/no/such/dir'), 'not a directory'), (dict(val_fraction=0.9), 'val_fraction')]:
    args = dict(env_name='mini_breakout', policy='random', num_frames=10, valid_envs=registry.names(chapter=0))
    args.update(kw)
    with pytest.raises(af.CollectError, match=match):
      af.check_request(**args)
  with pytest.raises(af.CollectError, match='--env=nope: not a frame environment; valid values: mini_breakout'):
    af.check_request('nope', 'random', 10, valid_envs=['mini_breakout'])


def test_jpeg_smears_a_one_pixel_ball_png_does_not():
  """Seed 002 S:L861: JPEG distorts the pixels around small objects. A 42x42 MiniBreakout frame with its 1-pixel
  ball and a real Breakout frame (seed001 preset, the ball about 1x2 pixels at 84x84) survive PNG exactly. JPEG at
  quality 75 (Pillow's default) lights up background pixels around the ball and dims the real ball by a quarter; at
  quality 95 (OpenCV's default) the changes are a few grey levels, smaller but still not the frame."""
  env = mb.make_mini_breakout(seed=0, size=42)
  env.reset()
  env.place_ball(20, 25, 0.5, 1.0)
  frame = env.step(np.array([0])).observation[0, :, :, 0]
  y, x = env.object_positions()['ball_y'], env.object_positions()['ball_x']
  assert frame[y, x] == 255 and (frame == 255).sum() == 1
  ale = atari.make_atari(game='breakout', seed=0, preset='seed001')
  ale.reset()
  for _ in range(5):
    real = ale.step(np.array([0])).observation[0, :, :, 0]
  p = ale.object_positions()
  ry, rx = int(p['ball_row'] * 84 / 210), int(p['ball_col'] * 84 / 160)
  ale.close()
  ball = real[ry:ry + 2, rx:rx + 2].astype(int)
  assert ball.max() > 30 and real[ry - 3:ry + 5, rx - 3:rx + 5].astype(int).sum() == ball.sum()   # black around

  def jpeg(img, quality):
    ok, data = cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED).astype(int)

  for img in (frame, real):
    ok, png = cv2.imencode('.png', img)
    assert ok
    np.testing.assert_array_equal(cv2.imdecode(png, cv2.IMREAD_UNCHANGED), img)
    assert 0 < np.abs(jpeg(img, 95) - img).max()
  back = jpeg(frame, 75)
  around = np.ones((5, 5), bool)
  around[2, 2] = False
  ring = back[y - 2:y + 3, x - 2:x + 3][around]               # background (0) in the frame
  assert (frame[y - 2:y + 3, x - 2:x + 3][around] == 0).all()
  assert (ring > 4).sum() >= 4 and ring.max() >= 8
  back = jpeg(real, 75)
  assert np.abs(back[ry:ry + 2, rx:rx + 2] - ball).max() >= 10   # the ball itself changes by >= 10 of ~60
  halo = back[ry - 1:ry + 3, rx - 1:rx + 3].copy()
  halo[1:3, 1:3] = 0
  assert halo.max() >= 8                                      # and bleeds into the black around it


def test_a_tracker_needs_positions_and_frames_must_be_uint8(tmp_path):
  with pytest.raises(af.CollectError, match='needs ball and paddle positions'):
    _collect('atari_pong_seed002', str(tmp_path / 'a'), num_frames=10, policy='tracker')
  with pytest.raises(af.CollectError, match='not uint8 frames'):
    _collect('atari_breakout', str(tmp_path / 'b'), num_frames=10, policy='random')


def test_ale_frames_and_positions(tmp_path):
  out = str(tmp_path / 'ale')
  report = _collect('atari_breakout_seed001', out, num_frames=80, policy='tracker', seed=0,
                      print_fn=lambda s: None)
  assert report['frame_shape'] == [84, 84, 1] and report['env_settings']['preset'] == 'seed001'
  frames, index = af.load_frames(out, 'all')
  seen = 0
  for img, r in zip(frames, index):
    if r['ball_y'] > 0 and 93 <= r['ball_y'] + 9 <= 180 and 8 <= r['ball_x'] - 49 <= 150:
      # The ball's 2x4 screen pixels land at (row * 84 / 210, col * 84 / 160) in the stored 84x84 frame.
      assert r['frame_ball_x'] == pytest.approx((r['ball_x'] - 49) * 84 / 160, abs=1e-3)
      assert r['frame_ball_y'] == pytest.approx((r['ball_y'] + 9) * 84 / 210, abs=1e-3)
      fy, fx = int(r['frame_ball_y']), int(r['frame_ball_x'])
      assert img[fy:fy + 2, fx:fx + 2, 0].max() > 20           # bright on the black background
      seen += 1
  assert seen > 20


def test_saved_policy_gets_the_stacked_frames(tmp_path):
  """A SavedModel reading its 2 stacked frames [oldest, newest]: FIRE when they are equal, RIGHT when only the
  newest shows the ball, LEFT when only the oldest does, else NOOP. The recorded actions must be what the stored
  PNGs (the previous and the current frame; at reset two copies of the first) imply."""
  from rlcv_tf.core import quiet  # pylint: disable=g-import-not-at-top
  tf = quiet.import_tensorflow()

  class Policy(tf.Module):

    @tf.function(input_signature=[tf.TensorSpec([None, 21, 21, 2], tf.uint8, name='frames')])
    def serve(self, frames):
      same = tf.reduce_all(tf.equal(frames[..., 0], frames[..., 1]), axis=[1, 2])
      old_ball = tf.reduce_any(tf.equal(frames[..., 0], 255), axis=[1, 2])
      new_ball = tf.reduce_any(tf.equal(frames[..., 1], 255), axis=[1, 2])
      action = tf.where(same, 1, tf.where(new_ball & ~old_ball, 2, tf.where(old_ball & ~new_ball, 3, 0)))
      return {'action': action}

  module = Policy()
  path = str(tmp_path / 'policy')
  tf.saved_model.save(module, path, signatures={'serving_default': module.serve})
  out = str(tmp_path / 'saved')
  # FIRE serves here (auto_serve off): the first steps then show the two-frame order (no ball, then a ball).
  af.collect('mini_breakout_tiny', out, num_frames=120, policy=f'saved:{path}', seed=0, print_fn=lambda s: None,
             make_env=lambda name, **kw: registry.make_env(name, auto_serve=False, **kw))
  frames, index = af.load_frames(out, 'all')
  expected = []
  for t, r in enumerate(index):
    if r['action'] < 0:
      continue
    old = frames[t - 1, ..., 0] if r['step'] > 0 else frames[t, ..., 0]
    new = frames[t, ..., 0]
    if np.array_equal(old, new):
      expected.append(1)
    elif (new == 255).any() and not (old == 255).any():
      expected.append(2)
    elif (old == 255).any() and not (new == 255).any():
      expected.append(3)
    else:
      expected.append(0)
  assert [a for a in index['action'] if a >= 0] == expected
  assert expected[:2] == [1, 2] and 3 in expected and 0 in expected
  bad = str(tmp_path / 'bad')

  class Wrong(tf.Module):

    @tf.function(input_signature=[tf.TensorSpec([None, 42, 42, 2], tf.uint8, name='frames')])
    def serve(self, frames):
      return {'action': tf.zeros_like(frames[:, 0, 0, 0], tf.int32)}
  wrong = Wrong()
  tf.saved_model.save(wrong, bad, signatures={'serving_default': wrong.serve})
  with pytest.raises(af.CollectError, match='its `frames` input is uint8 \\[None, 42, 42, 2\\]'):
    _collect('mini_breakout_tiny', str(tmp_path / 'x'), num_frames=5, policy=f'saved:{bad}')


def test_launcher_collects_and_refuses_bad_flags(tmp_path):
  out = str(tmp_path / 'run')
  ok = helpers.run_module('launchers.atari_frames', '--env=mini_breakout_tiny', '--policy=random', '--num_frames=50',
                          f'--output_dir={out}', '--seed=2', timeout=120)
  assert ok.returncode == 0, ok.stderr
  assert '[atari_frames] collecting 50 frames' in ok.stdout and '[atari_frames] done: 50 frames' in ok.stdout
  assert af.is_complete(out, 50)
  for flag, text in [('--env=nope', '--env=nope: not a frame environment; valid values: '),
                     ('--policy=greedy', '--policy=greedy: unknown policy'),
                     ('--num_frames=0', '--num_frames=0: must be a whole number >= 1'),
                     ('--policy=saved:/no/such', 'is not a directory')]:
    line = helpers.one_error_line(helpers.run_module('launchers.atari_frames', flag, f'--output_dir={out}x',
                                                     timeout=120))
    assert line.startswith('error: ' + text) or text in line, line
  line = helpers.one_error_line(helpers.run_module('launchers.atari_frames', '--env=mini_breakout_tiny',
                                                   '--policy=tracker', '--num_frames=50', f'--output_dir={out}',
                                                   '--seed=2', timeout=120))
  assert "policy 'random' (now 'tracker')" in line


def test_the_tracker_follows_the_ball_and_fires_without_one():
  geometry = {'ball': 2, 'paddle_w': 16}
  pos = {'ball_col': 50, 'paddle_col': 30}                  # ball centre 51, paddle centre 38: go right
  assert af.tracker_action(pos, geometry) == af.RIGHT
  assert af.tracker_action(dict(pos, paddle_col=60), geometry) == af.LEFT
  assert af.tracker_action(dict(pos, paddle_col=43), geometry) == af.NOOP
  assert af.tracker_action(dict(pos, ball_col=-1), geometry) == af.FIRE
  rng = np.random.default_rng(0)
  actions = [af.tracker_action(pos, geometry, rng, 0.05) for _ in range(4000)]
  assert 0.03 < np.mean(np.asarray(actions) != af.RIGHT) < 0.05     # epsilon 0.05, a quarter of it RIGHT anyway
