"""Video decoding/encoding with PyAV, the broken-file fixtures, and the <root>/<class>/*.avi|mp4 listing.

Every broken fixture must raise VideoReadError (never a silent short read); round trips are checked against the
frames that were written (a moving rectangle, located independently in the decoded pixels).
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from rlcv_tf.datasets import records
from rlcv_tf.datasets import video_files
from rlcv_tf.datasets import video_standins

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T, H, W = 12, 48, 64
BACKGROUND, BOX = (40, 90, 160), (230, 200, 20)


def _clip():
  """A yellow 12x16 box moving 3 px per frame on blue; also returns each frame's box left edge."""
  frames = np.zeros((T, H, W, 3), np.uint8)
  frames[:] = BACKGROUND
  lefts = [4 + 3 * t for t in range(T)]
  for t, x in enumerate(lefts):
    frames[t, 18:30, x:x + 16] = BOX
  return frames, lefts


def _box_left(frame):
  # Pixels closer to the box colour than to the background, found column by column.
  yellow = (np.abs(frame.astype(int) - BOX).sum(-1) < np.abs(frame.astype(int) - BACKGROUND).sum(-1))
  columns = np.flatnonzero(yellow[18:30].sum(0) >= 6)
  return columns[0]


@pytest.fixture(scope='module')
def broken(tmp_path_factory):
  return video_standins.write_broken(str(tmp_path_factory.mktemp('broken')))


@pytest.mark.parametrize('ext,codecs', [('.avi', ('mpeg4',)), ('.mp4', ('h264', 'mpeg4'))])
def test_round_trip(tmp_path, ext, codecs):
  frames, lefts = _clip()
  path = str(tmp_path / f'clip{ext}')
  used = video_files.write_video(path, frames, fps=25)
  assert not os.path.exists(path + '.part')
  out = video_files.read_video(path)
  assert out.shape == frames.shape and out.dtype == np.uint8
  assert np.abs(out.astype(float) - frames).mean() < 4.0
  assert [_box_left(f) for f in out] == lefts
  info = video_files.video_info(path)
  assert (info.frames, info.width, info.height) == (T, W, H)
  assert info.fps == pytest.approx(25.0)
  assert info.codec in codecs
  assert used == ('mpeg4' if ext == '.avi' else video_files.default_codec(path))
  # stride / max_frames pick decoded frames by index (decoding is deterministic).
  np.testing.assert_array_equal(video_files.read_video(path, stride=3), out[::3])
  np.testing.assert_array_equal(video_files.read_video(path, max_frames=2, stride=5), out[[0, 5]])


def test_mp4_default_codec_is_libx264_when_available():
  import av  # pylint: disable=g-import-not-at-top
  try:
    av.codec.Codec('libx264', 'w')
    expected = 'libx264'
  except Exception:  # pylint: disable=broad-except
    expected = 'mpeg4'
  assert video_files.default_codec('x.mp4') == expected
  assert video_files.default_codec('x.AVI') == 'mpeg4'
  with pytest.raises(ValueError, match='unsupported video extension'):
    video_files.default_codec('x.gif')


@pytest.mark.parametrize('frames,match', [
    (np.zeros((2, 9, 16, 3), np.uint8), 'even'),
    (np.zeros((2, 8, 16, 3), np.float32), 'uint8'),
    (np.zeros((2, 8, 16), np.uint8), 'uint8'),
    (np.zeros((0, 8, 16, 3), np.uint8), 'T >= 1'),
])
def test_write_video_rejects_bad_frames(tmp_path, frames, match):
  with pytest.raises(ValueError, match=match):
    video_files.write_video(str(tmp_path / 'x.avi'), frames)
  assert not os.listdir(tmp_path)


# fixture name -> the kind of VideoReadError it must raise (strict and lenient decoding alike)
EXPECTED_KINDS = {'truncated.mp4': 'container', 'truncated.avi': 'short', 'random.avi': 'container',
                  'empty.mp4': 'empty', 'no_video.mp4': 'no_video'}


@pytest.mark.parametrize('strict', [True, False])
@pytest.mark.parametrize('name', sorted(EXPECTED_KINDS))
def test_broken_fixtures_raise(broken, name, strict):
  with pytest.raises(video_files.VideoReadError) as info:
    video_files.read_video(broken[name], strict=strict)
  err = info.value
  assert err.kind == EXPECTED_KINDS[name], err
  assert err.path == broken[name] and err.reason and broken[name] in str(err)
  assert isinstance(err, ValueError)


def test_bit_flipped_avi_raises_invalid_data(broken):
  with pytest.raises(video_files.VideoReadError) as info:
    video_files.read_video(broken['bitflip.avi'])
  assert info.value.kind == 'decode'
  assert 'InvalidDataError' in info.value.reason


def test_strict_decoding_catches_what_ffmpeg_would_conceal(tmp_path):
  # One bit flipped in the key frame's payload: FFmpeg's default error concealment decodes all 24 frames
  # without a word (checked with av 18's FFmpeg); err_detect=explode turns it into an error.
  good = str(tmp_path / 'good.avi')
  video_files.write_video(good, video_standins.moving_square())
  with open(good, 'rb') as f:
    data = bytearray(f.read())
  _, chunks = video_standins.avi_frame_chunks(bytes(data))
  pos, size = chunks[0]
  data[pos + 8 + int(0.3 * (size - 8))] ^= 0x10
  flipped = str(tmp_path / 'flipped.avi')
  with open(flipped, 'wb') as f:
    f.write(bytes(data))
  assert video_files.read_video(flipped, strict=False).shape[0] == 24
  with pytest.raises(video_files.VideoReadError) as info:
    video_files.read_video(flipped)
  assert info.value.kind == 'decode'


def test_truncated_avi_is_a_short_read_not_a_silent_one(broken):
  # The container header still lists 24 frames; only the first half of the frame chunks are there.
  assert video_files.video_info(broken['truncated.avi']).frames == 24
  with pytest.raises(video_files.VideoReadError, match='decoded only 12 of the 24 frames'):
    video_files.read_video(broken['truncated.avi'], strict=False)
  # Asking for fewer frames than survive stops before the damage, by design.
  assert video_files.read_video(broken['truncated.avi'], max_frames=3).shape[0] == 3


def test_missing_and_directory(tmp_path):
  for path in (str(tmp_path / 'nope.avi'), str(tmp_path)):
    with pytest.raises(video_files.VideoReadError) as info:
      video_files.read_video(path)
    assert info.value.kind == 'missing'
  with pytest.raises(video_files.VideoReadError):
    video_files.video_info(str(tmp_path / 'nope.mp4'))


def test_read_video_argument_checks(tmp_path):
  with pytest.raises(ValueError, match='stride'):
    video_files.read_video(str(tmp_path / 'x.avi'), stride=0)
  with pytest.raises(ValueError, match='max_frames'):
    video_files.read_video(str(tmp_path / 'x.avi'), max_frames=0)


def _touch(path):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  open(path, 'wb').close()


def test_list_videos_tree(tmp_path):
  root = str(tmp_path)
  for rel in ('walk/b.avi', 'walk/a.mp4', 'walk/.hidden.avi', 'walk/notes.txt', 'ApplyEyeMakeup/c.AVI',
              'top_level.avi', '.cache/d.avi'):
    _touch(os.path.join(root, rel))
  os.makedirs(os.path.join(root, 'empty_class'))
  assert video_files.list_videos(root) == [
      (os.path.join(root, 'ApplyEyeMakeup', 'c.AVI'), 'ApplyEyeMakeup'),
      (os.path.join(root, 'walk', 'a.mp4'), 'walk'),
      (os.path.join(root, 'walk', 'b.avi'), 'walk'),
  ]
  assert video_files.list_videos(root, extensions=('.mp4',)) == [(os.path.join(root, 'walk', 'a.mp4'), 'walk')]


def test_list_videos_unavailable(tmp_path):
  missing = str(tmp_path / 'ucf101')
  with pytest.raises(records.DatasetUnavailableError) as info:
    video_files.list_videos(missing)
  message = str(info.value)
  assert os.path.abspath(missing) in message and '<root>/<class>/' in message
  os.makedirs(os.path.join(missing, 'walk'))
  with pytest.raises(records.DatasetUnavailableError, match='no .avi/.mp4 files'):
    video_files.list_videos(missing)


def test_script_writes_broken_fixtures(tmp_path):
  script = os.path.join(ROOT, 'scripts', 'make_video_testdata.py')
  out = str(tmp_path / 'b')
  done = subprocess.run([sys.executable, script, f'--out={out}', '--kind=broken'], capture_output=True, text=True,
                        timeout=120, check=False)
  assert done.returncode == 0, done.stderr
  assert sorted(os.listdir(out)) == sorted(list(EXPECTED_KINDS) + ['bitflip.avi'])
  bad = subprocess.run([sys.executable, script, f'--out={out}', '--kind=ravdess', '--ravdess_size=321x180'],
                       capture_output=True, text=True, timeout=120, check=False)
  assert bad.returncode == 2 and 'even' in bad.stderr
