"""Decode-once shards (`video_shards`): prepare Weizmann / RAVDESS stand-ins with broken files mixed in, read them
back, resume, and the tf.data reader's windows and flips.

References are independent of the module: frames are re-decoded and preprocessed here and compared bit for bit
(PNG is lossless); the Weizmann mask keypoints come from a per-frame loop over the .mat file read with scipy; the
RAVDESS keypoints from the sidecar CSV read with `csv` and the FFHQ recipe written out below with NumPy.
"""

import csv
import os
import shutil

import numpy as np
import pytest
import scipy.io

from rlcv_tf.datasets import ravdess
from rlcv_tf.datasets import records
from rlcv_tf.datasets import video_files
from rlcv_tf.datasets import video_shards
from rlcv_tf.datasets import video_standins
from rlcv_tf.datasets import weizmann

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Broken fixture -> (its name in the Weizmann layout, the skip kind it must get).
WEIZMANN_BROKEN = {'random.avi': ('bend/zulu_bend.avi', 'container'),
                   'truncated.avi': ('bend/yankee_bend.avi', 'short'), 'bitflip.avi': ('run/zulu_run.avi', 'decode'),
                   'no_video.mp4': ('run/yankee_run.mp4', 'no_video'),
                   'empty.mp4': ('walk/zulu_walk.avi', 'empty'), 'truncated.mp4': ('walk/yankee_walk.mp4', 'container')}
TOO_SHORT = 'walk/xray_walk.avi'
NUM_GOOD = 7  # alpha: bend, run1, run2, walk; bravo: bend, run, walk


@pytest.fixture(scope='module')
def weizmann_root(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('weizmann'))
  video_standins.write_weizmann(root, num_actors=2, num_frames=14, actions=('bend', 'run', 'walk'))
  broken = video_standins.write_broken(str(tmp_path_factory.mktemp('broken')))
  for name, (rel, _) in WEIZMANN_BROKEN.items():
    shutil.copy(broken[name], os.path.join(root, rel))
  video_files.write_video(os.path.join(root, TOO_SHORT), video_standins.moving_square(6, (144, 180)))
  shutil.copy(broken['random.avi'], os.path.join(root, 'bend', 'notes.avi'))  # outside the naming scheme
  return root


@pytest.fixture(scope='module')
def weizmann_out(weizmann_root, tmp_path_factory):
  out = str(tmp_path_factory.mktemp('weizmann_shards'))
  lines = []
  video_shards.prepare('weizmann', weizmann_root, out, num_workers=2, max_skipped_fraction=0.5, videos_per_shard=4,
                       print_fn=lines.append, progress_interval_s=0)
  assert lines and 'frames/s' in lines[-1]
  return out


def test_weizmann_report_counts_and_reasons(weizmann_root, weizmann_out):
  report = video_shards.read_report(weizmann_out)
  counts = report['counts']
  assert report['status'] == 'complete'
  assert counts['listed'] == NUM_GOOD + len(WEIZMANN_BROKEN) + 1 == 14
  assert counts['written'] == NUM_GOOD and counts['skipped'] == 7
  assert counts['skipped_by_kind'] == {'container': 2, 'short': 1, 'decode': 1, 'no_video': 1, 'empty': 1,
                                       'too_short': 1}
  kinds = {os.path.relpath(s['path'], weizmann_root): s['kind'] for s in report['skipped']}
  assert kinds == dict(list(WEIZMANN_BROKEN.values()) + [(TOO_SHORT, 'too_short')])
  assert all(s['reason'] for s in report['skipped'])
  assert counts['listing_skipped'] == 1 and report['listing_skipped'][0]['path'].endswith('notes.avi')
  assert counts['shards'] == counts['shards_complete'] == 4   # ceil(14 / 4)
  assert sorted(os.listdir(weizmann_out)) == sorted(
      [f'all-0000{i}-of-00004.tfrecord' for i in range(4)] + ['prepare_report.json', 'prepare_state.json'])
  assert 'mask keypoints' in report['keypoints']['source'] and report['num_keypoints'] == 3
  assert report['image_shape'] == [96, 96, 3]
  assert counts['frames_decoded'] >= NUM_GOOD * 14 and report['timing']['decode_frames_per_s'] > 0
  assert report['settings']['min_frames'] == 8 and report['settings']['max_skipped_fraction'] == 0.5


def _mask_points_reference(mask_hwt, t):
  """Centroid, top and bottom points of frame t, in the 96x96 crop of a 180x144 frame (loop, from the definition)."""
  ys, xs = np.nonzero(mask_hwt[:, :, t])
  top, bottom = ys.min(), ys.max()
  full = [(xs.mean(), ys.mean()), (xs[ys == top].mean(), top), (xs[ys == bottom].mean(), bottom)]
  # 144x144 centred square of a 180-wide frame starts at x = 18; 144 -> 96 is a 2/3 resize.
  return np.array([((x - 18 + 0.5) * 96 / 144 - 0.5, (y + 0.5) * 96 / 144 - 0.5) for x, y in full])


def test_weizmann_frames_keypoints_round_trip(weizmann_root, weizmann_out):
  videos = video_shards.load_videos(weizmann_out, value_range=None)
  assert len(videos) == NUM_GOOD
  mat = scipy.io.loadmat(os.path.join(weizmann_root, 'classification_masks.mat'), squeeze_me=True,
                         struct_as_record=False)['original_masks']
  trimmed = 0
  for v in videos:
    action, stem = v['path'].split('/')
    assert v['label'] == weizmann.ACTIONS.index(action) and v['label_name'] == action
    assert v['actor'] == stem.split('_')[0] and v['video_id'] == os.path.splitext(stem)[0]
    frames = video_files.read_video(os.path.join(weizmann_root, v['path']))
    scores = weizmann.foreground_scores(frames)
    start, stop = weizmann.trim_bounds(scores)
    np.testing.assert_array_equal(v['source_frames'], np.arange(start, stop))
    trimmed += len(frames) - (stop - start)
    expected = np.rint((weizmann.preprocess(frames[start:stop]) + 1) * 127.5).astype(np.uint8)
    assert v['video'].dtype == np.uint8
    np.testing.assert_array_equal(v['video'], expected)     # PNG is lossless
    np.testing.assert_allclose(v['foreground'], scores[start:stop])
    mask = np.asarray(getattr(mat, v['video_id']))
    for i, t in enumerate(range(start, stop)):
      np.testing.assert_allclose(v['keypoints'][i], _mask_points_reference(mask, t), atol=1e-4)
  assert trimmed > 0   # the stand-ins' empty ends were cut
  as_float = video_shards.load_videos(weizmann_out, video_ids=[videos[0]['video_id']])[0]['video']
  np.testing.assert_allclose(as_float, videos[0]['video'] / 127.5 - 1, atol=1e-6)


def test_skip_limit_stops_with_one_message(weizmann_root, tmp_path):
  out = str(tmp_path / 'shards')
  with pytest.raises(video_shards.SkipLimitError) as info:
    video_shards.prepare('weizmann', weizmann_root, out, num_workers=0, videos_per_shard=4)
  msg = str(info.value)
  # Listing order is (action, actor, take): bend/alpha, bend/bravo, bend/yankee (the first broken file), ...
  first = os.path.join(weizmann_root, 'bend', 'yankee_bend.avi')
  assert '1 of 14 listed videos' in msg and '7.1%' in msg and '--max_skipped_fraction=0.05' in msg and first in msg
  assert '\n' not in msg
  assert video_shards.read_report(out)['status'] == 'stopped'
  with pytest.raises(video_shards.NotPreparedError, match='python -m launchers.video_prepare --dataset=weizmann'):
    video_shards.check_prepared(out, 'weizmann')


def test_resume_keeps_complete_shards_and_rewrites_a_deleted_one(weizmann_root, weizmann_out):
  names = sorted(n for n in os.listdir(weizmann_out) if n.endswith('.tfrecord'))
  before = {n: (os.stat(os.path.join(weizmann_out, n)).st_mtime_ns, open(os.path.join(weizmann_out, n), 'rb').read())
            for n in names}
  kwargs = dict(num_workers=0, max_skipped_fraction=0.5, videos_per_shard=4)
  report = video_shards.prepare('weizmann', weizmann_root, weizmann_out, **kwargs)
  assert report['timing']['this_run']['videos_processed'] == 0 and report['counts']['written'] == NUM_GOOD
  assert {n: os.stat(os.path.join(weizmann_out, n)).st_mtime_ns for n in names} == {n: b[0] for n, b in before.items()}
  os.remove(os.path.join(weizmann_out, names[1]))
  report = video_shards.prepare('weizmann', weizmann_root, weizmann_out, **kwargs)
  assert report['timing']['this_run']['videos_processed'] == 4
  assert report['counts'] == video_shards.read_report(weizmann_out)['counts']
  assert report['counts']['written'] == NUM_GOOD and report['counts']['skipped'] == 7
  with open(os.path.join(weizmann_out, names[1]), 'rb') as f:
    assert f.read() == before[names[1]][1]
  with pytest.raises(records.DatasetError, match='another listing or with other settings'):
    video_shards.prepare('weizmann', weizmann_root, weizmann_out, num_workers=0, max_skipped_fraction=0.5,
                         videos_per_shard=5)
  assert video_shards.check_prepared(weizmann_out, 'weizmann')['status'] == 'complete'


def _take(ds, n):
  return [{k: v.numpy() for k, v in batch.items()} for batch in ds.take(n)]


def test_reader_windows_are_seeded_and_match_the_stored_frames(weizmann_out):
  full = {v['video_id']: v for v in video_shards.load_videos(weizmann_out)}
  a = _take(video_shards.make_dataset(weizmann_out, batch_size=3, seed=7), 4)
  b = _take(video_shards.make_dataset(weizmann_out, batch_size=3, seed=7), 4)
  c = _take(video_shards.make_dataset(weizmann_out, batch_size=3, seed=8), 4)
  key = lambda batches: [(i, s) for x in batches for i, s in zip(x['video_id'], x['start'])]
  assert key(a) == key(b)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x['video'], y['video'])
  assert key(a) != key(c)
  starts = set()
  for batch in a:
    assert batch['video'].shape == (3, 8, 96, 96, 3) and batch['video'].dtype == np.float32
    assert batch['keypoints'].shape == (3, 8, 3, 2)
    for i, vid in enumerate(batch['video_id']):
      v, s = full[vid.decode()], int(batch['start'][i])
      starts.add(s)
      np.testing.assert_allclose(batch['video'][i], v['video'][s:s + 8], atol=1e-6)
      np.testing.assert_array_equal(batch['frame_index'][i], v['source_frames'][s:s + 8])
      np.testing.assert_allclose(batch['keypoints'][i], v['keypoints'][s:s + 8])
      assert batch['label'][i] == v['label'] and batch['actor'][i].decode() == v['actor']
      assert not batch['flipped'][i]
  assert len(starts) > 1
  # Without shuffling the same videos come in the same order: the windows alone depend on the seed.
  d = _take(video_shards.make_dataset(weizmann_out, batch_size=3, seed=7, shuffle=False), 4)
  e = _take(video_shards.make_dataset(weizmann_out, batch_size=3, seed=8, shuffle=False), 4)
  assert [i for x in d for i in x['video_id']] == [i for x in e for i in x['video_id']]
  assert [s for x in d for s in x['start']] != [s for x in e for s in x['start']]


def test_hflip_mirrors_the_whole_clip_and_its_keypoints(weizmann_out):
  plain = _take(video_shards.make_dataset(weizmann_out, batch_size=4, seed=3), 3)
  flip = _take(video_shards.make_dataset(weizmann_out, batch_size=4, seed=3, hflip=True), 3)
  flags = np.concatenate([x['flipped'] for x in flip])
  assert flags.any() and not flags.all()
  for p, f in zip(plain, flip):
    np.testing.assert_array_equal(p['video_id'], f['video_id'])
    np.testing.assert_array_equal(p['start'], f['start'])
    for i in range(4):
      if f['flipped'][i]:
        np.testing.assert_array_equal(f['video'][i], p['video'][i][:, :, ::-1])
        np.testing.assert_allclose(f['keypoints'][i][..., 0], 95 - p['keypoints'][i][..., 0], atol=1e-5)
        np.testing.assert_array_equal(f['keypoints'][i][..., 1], p['keypoints'][i][..., 1])
      else:
        np.testing.assert_array_equal(f['video'][i], p['video'][i])


def test_evaluation_pass_filters_and_centred_windows(weizmann_out):
  batches = _take(video_shards.make_dataset(weizmann_out, batch_size=3, training=False, value_range=(0.0, 1.0)), 10)
  assert [len(x['video_id']) for x in batches] == [3, 3, 1]
  full = {v['video_id']: v for v in video_shards.load_videos(weizmann_out, value_range=(0.0, 1.0))}
  for x in batches:
    for vid, start, video in zip(x['video_id'], x['start'], x['video']):
      v = full[vid.decode()]
      assert start == (len(v['video']) - 8) // 2
      np.testing.assert_allclose(video, v['video'][start:start + 8], atol=1e-6)
  only = _take(video_shards.make_dataset(weizmann_out, batch_size=8, training=False, actors=['bravo']), 1)[0]
  assert sorted(only['actor']) == [b'bravo'] * 3
  small = _take(video_shards.make_dataset(weizmann_out, batch_size=2, image_size=48), 1)[0]
  assert small['video'].shape == (2, 8, 48, 48, 3)
  with pytest.raises(ValueError, match='unknown actor'):
    video_shards.make_dataset(weizmann_out, batch_size=2, actors=['zulu'])


def test_missing_roots_and_unprepared_folders(tmp_path, weizmann_out):
  for dataset, layout in (('weizmann', weizmann.LAYOUT), ('ravdess', ravdess.LAYOUT)):
    with pytest.raises(records.DatasetUnavailableError) as info:
      video_shards.prepare(dataset, str(tmp_path / 'nowhere'), str(tmp_path / 'out'), num_workers=0)
    assert str(tmp_path / 'nowhere') in str(info.value) and layout in str(info.value)
  for folder, dataset in ((str(tmp_path / 'empty'), 'weizmann'), (weizmann_out, 'ravdess')):
    with pytest.raises(video_shards.NotPreparedError) as info:
      video_shards.check_prepared(folder, dataset)
    assert f'python -m launchers.video_prepare --dataset={dataset}' in str(info.value)


# ------------------------------------------------------------------------------------------------ RAVDESS


@pytest.fixture(scope='module')
def ravdess_root(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('ravdess'))
  video_standins.write_ravdess(root, num_actors=1, num_frames=24, size=(180, 320))
  broken = video_standins.write_broken(str(tmp_path_factory.mktemp('broken_r')))
  cut = os.path.join(root, 'Actor_01', '01-01-01-01-02-01-01.mp4')
  shutil.copy(broken['truncated.mp4'], cut)
  # With a sidecar: a recording without one needs MTCNN (checked before any decoding; see the last test).
  shutil.copy(os.path.join(root, 'Actor_01', '01-01-01-01-01-01-01' + ravdess.LANDMARK_SUFFIX),
              ravdess.landmarks_path(cut))
  shutil.copy(broken['random.avi'], os.path.join(root, 'Actor_01', 'clip.mp4'))   # a bad name
  return root


@pytest.fixture(scope='module')
def ravdess_out(ravdess_root, tmp_path_factory):
  out = str(tmp_path_factory.mktemp('ravdess_shards'))
  video_shards.prepare('ravdess', ravdess_root, out, num_workers=0, max_skipped_fraction=0.2, videos_per_shard=4)
  return out


def _ffhq_reference(p):
  """The FFHQ recipe on 5 points, written out: returns (centre, side, unit x axis)."""
  eye_l, eye_r, _, mouth_l, mouth_r = p
  eye_mid, mouth_mid = (eye_l + eye_r) / 2, (mouth_l + mouth_r) / 2
  e2e, e2m = eye_r - eye_l, mouth_mid - eye_mid
  axis = e2e - np.array([-e2m[1], e2m[0]])
  axis = axis / np.linalg.norm(axis)
  half = max(2.0 * np.linalg.norm(e2e), 1.8 * np.linalg.norm(e2m))
  return eye_mid + 0.1 * e2m, 2 * half, axis


def _to_crop(points, centre, side, axis, size=128):
  """Crop coordinates of source points: project on the crop axes, scale, shift (pixel centres at integers)."""
  down = np.array([-axis[1], axis[0]])
  d = np.asarray(points, np.float64) - centre
  return np.stack([d @ axis, d @ down], -1) * (size / side) + (size - 1) / 2


def test_similarity_crop_hand_examples():
  upright = np.array([[100, 100], [140, 100], [120, 125], [105, 150], [135, 150]], np.float64)
  centre, side, angle = video_shards.similarity_crop_params(upright)
  # e2e = (40, 0), e2m = (0, 50): axis = (40 + 50, 0) -> side 2 * max(80, 90) = 180, centre (120, 100 + 5).
  np.testing.assert_allclose(centre, [120, 105])
  assert side == pytest.approx(180) and angle == pytest.approx(0)
  m = video_shards.face_crop_matrix(upright, 128)
  k = 128 / 180
  np.testing.assert_allclose(m, [[k, 0, 63.5 - 120 * k], [0, k, 63.5 - 105 * k]], atol=1e-9)
  # The same face turned by 30 degrees about (50, 70): same side, centre turned, x axis at 30 degrees.
  a = np.deg2rad(30)
  rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
  turned = (upright - [50, 70]) @ rot.T + [50, 70]
  centre2, side2, angle2 = video_shards.similarity_crop_params(turned)
  np.testing.assert_allclose(centre2, rot @ (np.array([120, 105]) - [50, 70]) + [50, 70], atol=1e-9)
  assert side2 == pytest.approx(180) and angle2 == pytest.approx(a)
  m2 = video_shards.face_crop_matrix(turned, 128)
  np.testing.assert_allclose(video_shards.transform_points(turned, m2), video_shards.transform_points(upright, m),
                             atol=1e-4)


@pytest.mark.parametrize('scale_up', [1.0, 3.0])   # 3x: a 540-pixel crop, area-shrunk by 4 before the warp
def test_apply_crop_moves_a_dot_to_its_mapped_point(scale_up):
  landmarks = np.array([[100, 100], [140, 100], [120, 125], [105, 150], [135, 150]], np.float64) * scale_up
  a = np.deg2rad(-20)
  rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
  landmarks = (landmarks - landmarks.mean(0)) @ rot.T + landmarks.mean(0)
  image = np.zeros((1, int(260 * scale_up), int(300 * scale_up), 3), np.uint8)
  dot = landmarks[2] + np.array([7, -4]) * scale_up
  r = int(3 * scale_up)
  x, y = np.round(dot).astype(int)
  image[0, y - r:y + r + 1, x - r:x + r + 1] = 255
  m = video_shards.face_crop_matrix(landmarks, 128)
  crop = video_shards.apply_crop(image, m, 128)[0, ..., 0].astype(np.float64)
  ys, xs = np.mgrid[:128, :128]
  found = np.array([(crop * xs).sum(), (crop * ys).sum()]) / crop.sum()
  centre, side, axis = _ffhq_reference(landmarks)
  np.testing.assert_allclose(found, _to_crop(np.round(dot), centre, side, axis), atol=0.3)


def _sidecar(path):
  with open(ravdess.landmarks_path(path), newline='') as f:
    rows = list(csv.reader(f))[1:]
  return {int(r[0]): np.array(r[1:], np.float64).reshape(5, 2) for r in rows}


def test_ravdess_prepare_counts_and_keypoints_in_the_crop(ravdess_root, ravdess_out):
  report = video_shards.read_report(ravdess_out)
  assert report['counts']['listed'] == 10 and report['counts']['written'] == 9
  assert report['counts']['skipped_by_kind'] == {'container': 1} and report['counts']['listing_skipped'] == 1
  assert report['image_shape'] == [128, 128, 3] and report['keypoints']['names'] == list(ravdess.LANDMARK_NAMES)
  videos = video_shards.load_videos(ravdess_out, value_range=None)
  assert len(videos) == 9 and {v['actor'] for v in videos} == {'01'}
  for v in videos:
    path = os.path.join(ravdess_root, v['path'])
    name = ravdess.parse_name(path)
    assert v['label'] == name.emotion - 1 and v['label_name'] == ravdess.EMOTIONS[name.emotion - 1]
    np.testing.assert_array_equal(v['source_frames'], np.arange(0, 24, 3))
    landmarks = _sidecar(path)
    kept = np.stack([landmarks[int(t)] for t in v['source_frames']])
    centre, side, axis = _ffhq_reference(np.median(kept, axis=0))
    expected = _to_crop(kept, centre, side, axis)
    np.testing.assert_allclose(v['keypoints'], expected, atol=2e-3)
    # The eye keypoints sit on the dark pupils of the cropped pictures.
    for t in range(len(v['video'])):
      for x, y in v['keypoints'][t, :2]:
        assert v['video'][t, int(round(y)), int(round(x))].mean() < 90
  batch = _take(video_shards.make_dataset(ravdess_out, batch_size=2, seed=1, hflip=True), 3)
  flips = [(x, i) for x in batch for i in range(2) if x['flipped'][i]]
  assert flips
  for x, i in flips:   # left/right swap on a flip keeps 'left' = smaller x
    kp = x['keypoints'][i]
    assert np.all(kp[:, 0, 0] < kp[:, 1, 0]) and np.all(kp[:, 3, 0] < kp[:, 4, 0])


def test_ravdess_without_sidecars_names_mtcnn(ravdess_root, tmp_path, monkeypatch):
  monkeypatch.setattr(video_shards, 'mtcnn_available', lambda: False)    # as where `mtcnn` is not installed
  root = str(tmp_path / 'ravdess')
  shutil.copytree(ravdess_root, root)
  stem = os.path.join(root, 'Actor_01', '01-01-03-01-01-01-01')
  os.remove(stem + ravdess.LANDMARK_SUFFIX)
  with pytest.raises(video_shards.DetectorUnavailableError) as info:
    video_shards.prepare('ravdess', root, str(tmp_path / 'out'), num_workers=0)
  assert 'pip install mtcnn==1.0.0' in str(info.value) and stem + '.mp4' in str(info.value)
  assert '.landmarks.csv' in str(info.value) and '1 of 10' in str(info.value)


def _shift(a, b):
  """(dx, dy) that moves grey image a onto b, by phase correlation (the pictures' own motion, no landmarks)."""
  import cv2  # pylint: disable=g-import-not-at-top
  (dx, dy), _ = cv2.phaseCorrelate(a.mean(-1).astype(np.float64), b.mean(-1).astype(np.float64))
  return np.array([dx, dy])


def test_mtcnn_landmarks_of_a_real_face_follow_the_face(tmp_path):
  """Without sidecars, prepare runs the thesis's MTCNN: a real face (testdata/faces) moving 6 px per frame across a
  1280x720 RAVDESS-layout video (detected at 640x360) gets 5 landmarks in every kept frame, in face order, moving in the fixed per-video
  crop as the picture itself moves (phase correlation of consecutive crops)."""
  if not video_shards.mtcnn_available():
    pytest.skip('mtcnn is not installed (scripts/setup.sh installs it)')
  from PIL import Image  # pylint: disable=g-import-not-at-top
  face = Image.open(os.path.join(ROOT, 'testdata', 'faces', 'astronaut_face.jpg')).convert('RGB')
  face = np.asarray(face.resize((320, 320), Image.BICUBIC))
  frames = np.full((24, 720, 1280, 3), 200, np.uint8)
  for t in range(len(frames)):
    frames[t, 200:520, 400 + 6 * t:720 + 6 * t] = face
  root = tmp_path / 'ravdess'
  os.makedirs(root / 'Actor_01')
  video_files.write_video(str(root / 'Actor_01' / '01-01-05-01-01-01-01.mp4'), frames, fps=30)
  out = str(tmp_path / 'out')
  video_shards.prepare('ravdess', str(root), out, num_workers=0)
  assert video_shards.read_report(out)['counts']['written'] == 1
  (v,) = video_shards.load_videos(out, value_range=None)
  kp = v['keypoints']                                                       # [8, 5, 2] in the 128x128 crop
  assert kp.shape == (8, 5, 2) and np.all(np.isfinite(kp))
  eye_l, eye_r, nose, mouth_l, mouth_r = np.moveaxis(kp, 1, 0)
  assert np.all(eye_l[:, 0] < nose[:, 0]) and np.all(nose[:, 0] < eye_r[:, 0])
  assert np.all(np.maximum(eye_l[:, 1], eye_r[:, 1]) < nose[:, 1])
  assert np.all(nose[:, 1] < np.minimum(mouth_l[:, 1], mouth_r[:, 1]))
  picture = np.array([_shift(v['video'][t], v['video'][t + 1]) for t in range(len(kp) - 1)])
  landmarks = np.diff(kp.mean(axis=1), axis=0)
  assert np.all(picture[:, 0] > 3)                                          # the face does move right in the crop
  np.testing.assert_allclose(landmarks, picture, atol=1.0)


# ------------------------------------------------------------------------------------------------ OpenPose
def _write_openpose(folder, stem, frame, people):
  """One OpenPose --write_json file: people = list of [K, 3] (x, y, confidence)."""
  os.makedirs(folder, exist_ok=True)
  import json  # pylint: disable=g-import-not-at-top
  with open(os.path.join(folder, f'{stem}_{frame:012d}_keypoints.json'), 'w') as f:
    json.dump({'version': 1.3, 'people': [{'person_id': [-1], 'pose_keypoints_2d': np.ravel(p).tolist()}
                                          for p in people]}, f)


def test_openpose_joints_become_the_weizmann_keypoints(tmp_path):
  """OpenPose JSON written from the stand-ins' true joints (plus a less confident second person, a joint OpenPose
  did not find and a frame without a file) replaces the mask keypoints, mapped into the crop like them."""
  from rlcv_tf.datasets import openpose  # pylint: disable=g-import-not-at-top
  raw, pose = str(tmp_path / 'raw'), str(tmp_path / 'pose')
  videos = video_standins.write_weizmann(raw, num_actors=1, num_frames=16, actions=('walk', 'wave1'),
                                         extra_take=False)
  rng = np.random.default_rng(0)
  truth = {}
  for v in videos:
    stem = os.path.splitext(os.path.basename(v.path))[0]
    want = v.keypoints.astype(np.float64).copy()
    for t, joints in enumerate(v.keypoints):
      if t == 5:
        want[t] = np.nan                            # no file for frame 5
        continue
      main = np.concatenate([joints, np.full((len(joints), 1), 0.9)], axis=1)
      if t == 2:
        main[3, 2] = 0.0                            # joint 3 not found in frame 2
        want[t, 3] = np.nan
      other = np.concatenate([rng.uniform(0, 100, joints.shape), np.full((len(joints), 1), 0.3)], axis=1)
      _write_openpose(pose, stem, t, [other, main])
    truth[stem] = want
  out = str(tmp_path / 'out')
  video_shards.prepare('weizmann', raw, out, num_workers=0, openpose_dir=pose)
  report = video_shards.read_report(out)
  assert report['num_keypoints'] == 6 and 'OpenPose' in report['keypoints']['source']
  assert report['keypoints']['names'] == [f'joint_{i:02d}' for i in range(6)]
  for v in video_shards.load_videos(out, value_range=None):
    stem = os.path.splitext(os.path.basename(v['path']))[0]
    want = video_shards.weizmann_crop_points(truth[stem][v['source_frames']], (144, 180))
    np.testing.assert_allclose(v['keypoints'], want, atol=1e-3)
    assert np.isnan(v['keypoints']).any()
  # BODY_25's flip swaps each right joint with its left twin.
  perm = openpose.flip_permutation(25)
  assert perm[2] == 5 and perm[4] == 7 and perm[9] == 12 and perm[19] == 22 and perm[0] == 0 and perm[8] == 8
  assert sorted(perm) == list(range(25)) and all(perm[perm[i]] == i for i in range(25))
  # A malformed file skips its video with the reason.
  first = os.path.splitext(os.path.basename(videos[0].path))[0]
  with open(os.path.join(pose, f'{first}_000000000003_keypoints.json'), 'w') as f:
    f.write('{"people": [{"pose_keypoints_2d": [1, 2]}]}')
  bad = str(tmp_path / 'bad')
  video_shards.prepare('weizmann', raw, bad, num_workers=0, openpose_dir=pose, max_skipped_fraction=0.5)
  skipped = video_shards.read_report(bad)['skipped']
  assert [s['kind'] for s in skipped] == ['keypoints'] and 'multiple of 3' in skipped[0]['reason']
