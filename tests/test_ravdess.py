"""RAVDESS: the file-name parser, the one-video-per-recording listing (the thesis's 2,452), landmark sidecars.

The full published name set is generated here from the data set's facts (24 actors; song without actor 18 and
without surprise/disgust; neutral without strong intensity; 2 statements x 2 repetitions; every video recording
both as 01 audio-video and 02 video-only), written as empty files, and counted by the reader.
"""

import dataclasses
import os

import numpy as np
import pytest

from rlcv_tf.datasets import ravdess
from rlcv_tf.datasets import records
from rlcv_tf.datasets import video_files
from rlcv_tf.datasets import video_standins


def _touch(path):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  open(path, 'wb').close()


def _published_recordings():
  """(vocal, emotion, intensity, statement, repetition, actor) of every RAVDESS recording."""
  out = []
  for actor in range(1, 25):
    for vocal in (1, 2):
      if vocal == 2 and actor == 18:
        continue
      for emotion in range(1, 9 if vocal == 1 else 7):
        for intensity in (1, 2):
          if emotion == 1 and intensity == 2:
            continue
          for statement in (1, 2):
            for repetition in (1, 2):
              out.append((vocal, emotion, intensity, statement, repetition, actor))
  return out


def _name(modality, vocal, emotion, intensity, statement, repetition, actor):
  return f'{modality:02d}-{vocal:02d}-{emotion:02d}-{intensity:02d}-{statement:02d}-{repetition:02d}-{actor:02d}.mp4'


def test_parse_every_field():
  name = ravdess.parse_name('/data/Actor_12/02-01-06-01-02-01-12.mp4')
  assert (name.modality, name.vocal_channel, name.emotion, name.intensity, name.statement, name.repetition,
          name.actor) == (2, 1, 6, 1, 2, 1, 12)
  assert name.modality_name == 'video-only' and name.vocal_channel_name == 'speech'
  assert name.emotion_name == 'fearful' and name.label == 5
  assert name.intensity_name == 'normal' and name.statement_text == 'Dogs are sitting by the door'
  assert name.gender == 'female' and name.recording == (12, 1, 6, 1, 2, 1)
  assert name.stem == '02-01-06-01-02-01-12'
  other = ravdess.parse_name('01-02-05-02-01-02-07.mp4')
  assert other.gender == 'male' and other.vocal_channel_name == 'song' and other.emotion_name == 'angry'
  assert other.intensity_name == 'strong' and other.statement_text == 'Kids are talking by the door'
  assert other.modality_name == 'audio-video'
  assert ravdess.parse_name('03-01-08-02-02-02-24.wav').emotion_name == 'disgust'
  assert [ravdess.parse_name(_name(1, 1, e, 1, 1, 1, 1)).emotion_name for e in range(1, 9)] == [
      'neutral', 'calm', 'happy', 'sad', 'angry', 'fearful', 'surprise', 'disgust']
  with pytest.raises(dataclasses.FrozenInstanceError):
    name.actor = 3


@pytest.mark.parametrize('bad', [
    '02-01-06-01-02-01.mp4',        # six fields
    '02-01-06-01-02-01-12-01.mp4',  # eight fields
    '2-01-06-01-02-01-12.mp4',      # one-digit field
    '02_01_06_01_02_01_12.mp4',     # wrong separator
    '02-01-06-01-02-01-12.avi',     # wrong extension
    '02-01-06-01-02-01-12',         # no extension
    '04-01-06-01-02-01-12.mp4',     # modality
    '00-01-06-01-02-01-12.mp4',
    '02-03-06-01-02-01-12.mp4',     # vocal channel
    '02-01-09-01-02-01-12.mp4',     # emotion
    '02-01-00-01-02-01-12.mp4',
    '02-01-06-03-02-01-12.mp4',     # intensity
    '02-01-06-01-03-01-12.mp4',     # statement
    '02-01-06-01-02-03-12.mp4',     # repetition
    '02-01-06-01-02-01-25.mp4',     # actor
    '02-01-06-01-02-01-00.mp4',
    '02-02-07-01-02-01-12.mp4',     # song has no surprise
    '02-02-08-01-02-01-12.mp4',     # nor disgust
    '02-01-01-02-02-01-12.mp4',     # neutral has no strong intensity
    'Video_Speech_Actor_01.zip',
])
def test_parse_rejects(bad):
  with pytest.raises(ValueError):
    ravdess.parse_name(bad)


def test_full_published_set_counts_2452(tmp_path):
  root = str(tmp_path)
  recordings = _published_recordings()
  for rec in recordings:
    for modality in (1, 2):
      _touch(os.path.join(root, f'Actor_{rec[-1]:02d}', _name(modality, *rec)))
  kept, report = ravdess.list_recordings(root)
  assert len(kept) == report.num_kept == 2452
  assert report.kept_by_vocal_channel == {'speech': 1440, 'song': 1012}
  assert report.num_files == 2 * 2452 and report.num_duplicates == 2452 and report.skipped == []
  assert all(r.name.modality == 2 for r in kept)
  assert len({r.name.recording for r in kept}) == 2452
  assert not [r for r in kept if r.actor == 18 and r.name.vocal_channel == 2]
  speech = [r for r in kept if r.name.vocal_channel == 1]
  song = [r for r in kept if r.name.vocal_channel == 2]
  assert sum(r.name.emotion == 1 for r in speech) == 24 * 4
  assert all(sum(r.name.emotion == e for r in speech) == 24 * 8 for e in range(2, 9))
  assert sum(r.name.emotion == 1 for r in song) == 23 * 4
  assert all(sum(r.name.emotion == e for r in song) == 23 * 8 for e in range(2, 7))
  assert {r.actor for r in kept} == set(range(1, 25))
  assert kept == sorted(kept, key=lambda r: r.name.recording)
  assert all(os.path.basename(os.path.dirname(r.path)) == f'Actor_{r.actor:02d}' for r in kept)
  prefer_av, _ = ravdess.list_recordings(root, prefer_modality=1)
  assert len(prefer_av) == 2452 and all(r.name.modality == 1 for r in prefer_av)


def test_listing_skips_and_counts_bad_names(tmp_path):
  root = str(tmp_path)
  good = [(1, 3, 1, 1, 1, 5), (1, 3, 1, 1, 2, 5), (2, 4, 2, 2, 1, 5)]
  for rec in good:
    _touch(os.path.join(root, 'Actor_05', _name(1, *rec)))
  _touch(os.path.join(root, 'Actor_05', _name(2, *good[0])))   # the video-only copy of the first: kept instead
  _touch(os.path.join(root, 'Actor_05', _name(3, *good[1])))   # audio-only: counted, left out
  bad = ['01-02-07-01-01-01-05.mp4', '01-01-01-02-01-01-05.mp4', 'clip.mp4', '01-01-03-01-01-01-06.mp4']
  for name in bad:
    _touch(os.path.join(root, 'Actor_05', name))
  _touch(os.path.join(root, 'Actor_05', '03-01-03-01-01-01-05.wav'))  # not an mp4: not listed
  _touch(os.path.join(root, 'Actor_05', 'notes.txt'))
  _touch(os.path.join(root, 'misc', '01-01-03-01-01-01-07.mp4'))    # not an Actor_NN folder
  kept, report = ravdess.list_recordings(root)
  assert [r.name.recording for r in kept] == [(5,) + r[:-1] for r in good]
  assert kept[0].name.modality == 2 and kept[1].name.modality == 1
  assert report.num_files == 9 and report.num_audio_only == 1 and report.num_duplicates == 1
  assert sorted(os.path.basename(p) for p, _ in report.skipped) == sorted(bad)
  assert report.num_skipped == 4 and all(reason for _, reason in report.skipped)
  assert any('Actor_05' in reason for _, reason in report.skipped)   # actor 06 in Actor_05
  assert report.as_dict()['num_skipped'] == 4


def test_missing_root(tmp_path):
  missing = str(tmp_path / 'ravdess')
  with pytest.raises(records.DatasetUnavailableError) as info:
    ravdess.list_recordings(missing)
  message = str(info.value)
  assert os.path.abspath(missing) in message and 'Actor_NN' in message and 'zenodo' in message
  os.makedirs(os.path.join(missing, 'Actor_01'))
  with pytest.raises(records.DatasetUnavailableError, match='no .mp4 files'):
    ravdess.list_recordings(missing)
  with pytest.raises(ValueError):
    ravdess.list_recordings(missing, prefer_modality=3)


def test_landmark_sidecar_round_trip(tmp_path):
  video = str(tmp_path / 'Actor_01' / '01-01-03-01-01-01-01.mp4')
  path = ravdess.landmarks_path(video)
  assert path == str(tmp_path / 'Actor_01' / '01-01-03-01-01-01-01.landmarks.csv')
  os.makedirs(os.path.dirname(path))
  assert ravdess.find_landmarks(video) is None
  rng = np.random.default_rng(0)
  frames, points = np.array([4, 0, 2]), rng.uniform(0, 640, (3, 5, 2))
  ravdess.write_landmarks(path, frames, points)
  with open(path) as f:
    assert f.readline().strip() == ('frame,left_eye_x,left_eye_y,right_eye_x,right_eye_y,nose_x,nose_y,'
                                    'mouth_left_x,mouth_left_y,mouth_right_x,mouth_right_y')
  got_frames, got_points = ravdess.find_landmarks(video)
  np.testing.assert_array_equal(got_frames, [0, 2, 4])
  np.testing.assert_allclose(got_points, points[[1, 2, 0]], atol=1e-3)
  with open(path, 'a') as f:
    f.write('2,' + ','.join(['1'] * 10) + '\n')
  with pytest.raises(records.DatasetError, match='twice'):
    ravdess.read_landmarks(path)
  with open(path, 'w') as f:
    f.write('frame,x,y\n0,1,2\n')
  with pytest.raises(records.DatasetError, match='header'):
    ravdess.read_landmarks(path)
  with open(path, 'w') as f:
    f.write(','.join(['frame'] + [f'{n}_{c}' for n in ravdess.LANDMARK_NAMES for c in 'xy']) + '\n0,1,2\n')
  with pytest.raises(records.DatasetError, match='line 2'):
    ravdess.read_landmarks(path)


def test_standins_read_with_the_real_reader(tmp_path):
  root = str(tmp_path)
  written = video_standins.write_ravdess(root, num_actors=2, num_frames=9, size=(90, 160))
  kept, report = ravdess.list_recordings(root)
  assert report.num_files == len(written) == 20
  assert report.num_kept == 18 and report.num_duplicates == 2 and not report.skipped
  assert report.kept_by_vocal_channel == {'speech': 16, 'song': 2}
  assert sorted({r.name.emotion_name for r in kept}) == sorted(ravdess.EMOTIONS)
  for rec in kept[:3]:
    frames = video_files.read_video(rec.path)
    assert frames.shape == (9, 90, 160, 3)
    index, points = ravdess.find_landmarks(rec.path)
    np.testing.assert_array_equal(index, np.arange(9))
    assert points.shape == (9, 5, 2)
    left_eye, right_eye, nose, mouth_left, mouth_right = np.moveaxis(points, 1, 0)
    assert np.all(left_eye[:, 0] < right_eye[:, 0]) and np.all(mouth_left[:, 0] < mouth_right[:, 0])
    assert np.all(left_eye[:, 1] < nose[:, 1]) and np.all(nose[:, 1] < mouth_left[:, 1])
    # The eye landmarks sit on the dark pupils in the decoded pictures.
    for t in range(9):
      for x, y in (left_eye[t], right_eye[t]):
        assert frames[t, int(round(y)), int(round(x))].mean() < 90


def test_standin_all_names_are_valid():
  for actor, expected in ((1, 104), (18, 60)):
    codes = video_standins.ravdess_names(actor, 'all')
    assert len(codes) == len(set(codes)) == expected
    for c in codes:
      ravdess.parse_name(_name(*c))
