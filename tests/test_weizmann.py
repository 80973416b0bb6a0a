"""Weizmann reader: the published layout (93 names), classification_masks.mat, the crop and the trimming.

The 93 published file names are written out here from the data set's listing (9 actors x 10 actions, plus Lena's
second takes of run, skip and walk), independently of the reader. Median-background scores are checked against a
per-pixel loop; the resize against 2x2 block means.
"""

import os
import statistics

import numpy as np
import pytest
import scipy.io

from rlcv_tf.datasets import records
from rlcv_tf.datasets import video_files
from rlcv_tf.datasets import video_standins
from rlcv_tf.datasets import weizmann

REAL_ACTORS = ('daria', 'denis', 'eli', 'ido', 'ira', 'lena', 'lyova', 'moshe', 'shahar')
REAL_ACTIONS = ('bend', 'jack', 'jump', 'pjump', 'run', 'side', 'skip', 'walk', 'wave1', 'wave2')


def _published_names():
  names = []
  for action in REAL_ACTIONS:
    for actor in REAL_ACTORS:
      if actor == 'lena' and action in ('run', 'skip', 'walk'):
        names += [(action, f'lena_{action}1'), (action, f'lena_{action}2')]
      else:
        names.append((action, f'{actor}_{action}'))
  return names


def _touch(path):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  open(path, 'wb').close()


@pytest.mark.parametrize('stem,action,expected', [
    ('lena_run1', 'run', ('lena', 1)), ('lena_walk2', 'walk', ('lena', 2)), ('daria_wave1', 'wave1', ('daria', 0)),
    ('shahar_pjump', 'pjump', ('shahar', 0)), ('eli_bend', 'bend', ('eli', 0))])
def test_parse_stem(stem, action, expected):
  assert weizmann.parse_stem(stem, action) == expected


@pytest.mark.parametrize('stem,action', [('daria_run', 'walk'), ('daria-run', 'run'), ('daria_runx', 'run'),
                                         ('daria_jump', 'pjump'), ('_run', 'run'), ('daria_wave1', 'wave2')])
def test_parse_stem_rejects(stem, action):
  with pytest.raises(ValueError):
    weizmann.parse_stem(stem, action)


def test_published_layout_listing(tmp_path):
  root = str(tmp_path)
  names = _published_names()
  assert len(names) == 93
  for action, stem in names:
    _touch(os.path.join(root, action, stem + '.avi'))
  _touch(os.path.join(root, 'backgrounds', 'bg_x.avi'))     # not an action folder
  _touch(os.path.join(root, 'walk', 'daria_run.avi'))       # name disagrees with its folder
  _touch(os.path.join(root, weizmann.MASKS_FILE))
  videos, skipped = weizmann.scan(root)
  assert len(videos) == weizmann.NUM_VIDEOS == 93
  assert sorted(p for p, _ in skipped) == sorted([os.path.join(root, 'backgrounds', 'bg_x.avi'),
                                                 os.path.join(root, 'walk', 'daria_run.avi')])
  assert {v.action for v in videos} == set(REAL_ACTIONS) and {v.actor for v in videos} == set(REAL_ACTORS)
  assert sorted((v.action, v.name) for v in videos) == sorted(names)
  lena_runs = [v for v in videos if v.actor == 'lena' and v.action == 'run']
  assert [v.take for v in lena_runs] == [1, 2]
  assert all(v.take == 0 for v in videos if v.actor != 'lena')
  assert all(v.label == REAL_ACTIONS.index(v.action) for v in videos)
  assert all(os.path.basename(v.path) == v.name + '.avi' for v in videos)
  assert len(weizmann.list_videos(root)) == 93


def test_missing_root_names_path_layout_and_source(tmp_path):
  missing = str(tmp_path / 'weizmann')
  with pytest.raises(records.DatasetUnavailableError) as info:
    weizmann.list_videos(missing)
  message = str(info.value)
  assert os.path.abspath(missing) in message
  assert '<root>/<action>/<actor>_<action>' in message and 'classification_masks.mat' in message
  assert 'weizmann.ac.il' in message
  os.makedirs(os.path.join(missing, 'run'))
  _touch(os.path.join(missing, 'run', 'readme.txt'))
  with pytest.raises(records.DatasetUnavailableError, match='no <actor>_<action>.avi videos'):
    weizmann.scan(missing)


def test_load_masks_published_format(tmp_path):
  rng = np.random.default_rng(0)
  original = {'lena_run1': rng.random((6, 8, 5)) > 0.5, 'eli_bend': rng.random((6, 8, 3)) > 0.5}
  aligned = {'lena_run1': rng.random((4, 3, 5)) > 0.5, 'eli_bend': rng.random((4, 3, 3)) > 0.5}
  path = str(tmp_path / 'classification_masks.mat')
  scipy.io.savemat(path, {'original_masks': original, 'aligned_masks': aligned})
  masks = weizmann.load_masks(path)
  assert sorted(masks) == ['eli_bend', 'lena_run1']
  for name, m in original.items():
    assert masks[name].dtype == bool and masks[name].shape == (m.shape[2], 6, 8)
    for t in range(m.shape[2]):
      np.testing.assert_array_equal(masks[name][t], m[:, :, t])
  assert weizmann.load_masks(path, key='aligned_masks')['lena_run1'].shape == (5, 4, 3)
  with pytest.raises(records.DatasetError, match="no 'other' variable"):
    weizmann.load_masks(path, key='other')
  with pytest.raises(records.DatasetUnavailableError):
    weizmann.load_masks(str(tmp_path / 'missing.mat'))
  bad = str(tmp_path / 'bad.mat')
  with open(bad, 'wb') as f:
    f.write(b'not a mat file at all' * 10)
  with pytest.raises(records.DatasetError):
    weizmann.load_masks(bad)


@pytest.fixture(scope='module')
def standins(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('weizmann'))
  return root, video_standins.write_weizmann(root, num_actors=2, num_frames=18)


def test_standins_read_with_the_real_reader(standins):
  root, written = standins
  videos = weizmann.list_videos(root)
  assert len(videos) == len(written) == 21  # 2 actors x 10 actions + the first actor's second run
  assert sorted(v.path for v in videos) == sorted(w.path for w in written)
  assert {(v.action, v.take) for v in videos if v.action == 'run'} == {('run', 0), ('run', 1), ('run', 2)}
  masks = weizmann.load_masks(weizmann.masks_path(root))
  assert set(masks) == {v.name for v in videos}
  frames = video_files.read_video(videos[0].path)
  assert frames.shape == (18, 144, 180, 3)
  assert masks[videos[0].name].shape == (18, 144, 180)


def test_trimming_finds_the_empty_ends_of_standins(standins):
  _, written = standins
  with_empty_ends = [w for w in written if w.visible != (0, w.num_frames)]
  assert len(with_empty_ends) >= 5
  masks = weizmann.load_masks(weizmann.masks_path(os.path.dirname(os.path.dirname(written[0].path))))
  for w in written:
    frames = video_files.read_video(w.path)
    scores = weizmann.foreground_scores(frames)
    assert weizmann.trim_bounds(scores) == w.visible, (w.path, np.round(scores, 4))
    name = os.path.splitext(os.path.basename(w.path))[0]
    assert weizmann.trim_bounds(weizmann.mask_scores(masks[name])) == w.visible
    trimmed = weizmann.trim_empty(frames, scores)
    np.testing.assert_array_equal(trimmed, frames[w.visible[0]:w.visible[1]])


def _slow_scores(frames, threshold):
  t_len, height, width, channels = frames.shape
  out = []
  for t in range(t_len):
    count = 0
    for y in range(height):
      for x in range(width):
        diffs = []
        for c in range(channels):
          median = statistics.median(float(frames[s, y, x, c]) for s in range(t_len))
          diffs.append(abs(float(frames[t, y, x, c]) - median))
        count += max(diffs) > threshold
    out.append(count / (height * width))
  return np.array(out)


@pytest.mark.parametrize('num_frames', [5, 6])
def test_foreground_scores_match_a_per_pixel_loop(num_frames):
  rng = np.random.default_rng(num_frames)
  frames = rng.integers(0, 256, (num_frames, 4, 3, 3)).astype(np.uint8)
  for threshold in (10, 60):
    np.testing.assert_allclose(weizmann.foreground_scores(frames, threshold), _slow_scores(frames, threshold),
                               atol=1e-7)


def test_trim_bounds_only_cuts_the_ends():
  assert weizmann.trim_bounds([0, 0.001, 0.5, 0, 0.3, 0.0019], 0.002) == (2, 5)
  assert weizmann.trim_bounds([0.01, 0, 0.01], 0.002) == (0, 3)
  assert weizmann.trim_bounds([0, 0, 0], 0.002) == (0, 0)
  frames = np.zeros((3, 4, 5, 3), np.uint8)
  assert weizmann.trim_empty(frames, np.zeros(3)).shape == (0, 4, 5, 3)
  with pytest.raises(ValueError):
    weizmann.trim_empty(frames, np.zeros(2))


def test_preprocess_crop_resize_and_range():
  frames = np.full((3, 144, 180, 3), 255, np.uint8)
  frames[:, :, 18:162] = 0  # the centred 144x144 square is black, the 18-px side margins white
  out = weizmann.preprocess(frames)
  assert out.shape == (3, 96, 96, 3) and out.dtype == np.float32
  np.testing.assert_allclose(out, -1.0)
  rng = np.random.default_rng(1)
  frames = rng.integers(0, 256, (2, 144, 180, 3)).astype(np.uint8)
  out = weizmann.preprocess(frames)
  assert out.min() >= -1.0 and out.max() <= 1.0
  # At an integer factor (144 -> 72) area resizing is the 2x2 block mean: check against it.
  half = weizmann.preprocess(frames, size=72)
  crop = frames[:, :, 18:162].astype(np.float64)
  blocks = crop.reshape(2, 72, 2, 72, 2, 3).mean(axis=(2, 4))
  np.testing.assert_allclose(half, blocks / 127.5 - 1, atol=1e-5)
  with pytest.raises(ValueError):
    weizmann.preprocess(frames.astype(np.float32))
