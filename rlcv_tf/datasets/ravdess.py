"""RAVDESS (Livingstone & Russo 2018): file-name parser, recording listing and landmark sidecars (issue 13 §1).

The thesis uses "2452 audio-visual sequences of 24 actors singing and speaking with 8 facial expressions", video
channel only (T:L6658-6660), faces aligned from detected landmarks (T:L6661-6663), every 3rd frame (T:L6664-6665).

Published layout (Zenodo record 1188976, `Video_Speech_Actor_NN.zip` and `Video_Song_Actor_NN.zip` each unpack to
`Actor_NN/`): `<root>/Actor_NN/MM-VV-EE-II-SS-RR-AA.mp4`, seven two-digit fields (the data set's README):

  MM modality       01 full audio-video, 02 video-only, 03 audio-only (.wav, in the Audio_* archives)
  VV vocal channel  01 speech, 02 song
  EE emotion        01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06 fearful, 07 surprise, 08 disgust
  II intensity      01 normal, 02 strong (neutral has no strong intensity)
  SS statement      01 "Kids are talking by the door", 02 "Dogs are sitting by the door"
  RR repetition     01, 02
  AA actor          01..24; odd numbers male, even female

Song has no surprise or disgust (emotions 01-06) and no actor 18. Each recording exists twice as video, once with
audio (01) and once without (02), with identical pictures, so a listing keeps ONE of them per recording (the
video-only copy by default). That gives 24 x (4 + 7 x 8) = 1,440 speech and 23 x (4 + 5 x 8) = 1,012 song
recordings: the thesis's 2,452.

Names that break these rules (wrong field count or range, song with emotion 07/08, neutral at strong intensity,
an actor field that disagrees with its Actor_NN folder) are skipped and counted, never guessed at.

Landmark sidecars: `<stem>.landmarks.csv` next to a video (`landmarks_path`) holds 5 facial landmarks per decoded
frame, in pixels of the stored video (x right, y down), MTCNN's order: the eye with the smaller x ('left_eye'),
the other eye, the nose tip, the mouth corner with the smaller x, the other corner. With a sidecar present the
prepare step skips face detection. Header `frame,left_eye_x,left_eye_y,...,mouth_right_y`; `frame` is the 0-based
index among all decoded frames (before any temporal subsampling); frames without a detection are simply absent.
"""

import collections
import csv
import dataclasses
import os
import re
from typing import Dict, List, Optional, Tuple

import numpy as np

from rlcv_tf.datasets import records as records_lib

DISPLAY_NAME = 'RAVDESS'
SOURCE = ('https://zenodo.org/record/1188976 (Video_Speech_Actor_01..24.zip and Video_Song_Actor_01..24.zip; '
          'the Audio_* archives are not needed)')
LAYOUT = '<root>/Actor_NN/MM-VV-EE-II-SS-RR-AA.mp4 (NN = 01..24)'

MODALITIES = {1: 'audio-video', 2: 'video-only', 3: 'audio-only'}
VOCAL_CHANNELS = {1: 'speech', 2: 'song'}
EMOTIONS = ('neutral', 'calm', 'happy', 'sad', 'angry', 'fearful', 'surprise', 'disgust')  # codes 01..08
SONG_EMOTIONS = (1, 2, 3, 4, 5, 6)
INTENSITIES = {1: 'normal', 2: 'strong'}
STATEMENTS = {1: 'Kids are talking by the door', 2: 'Dogs are sitting by the door'}
NUM_ACTORS = 24
ACTOR_WITHOUT_SONG = 18
EXTENSIONS = ('.mp4', '.wav')
# The counts the thesis's 2,452 is made of (speech, song), one video per recording.
EXPECTED_COUNTS = {'speech': 1440, 'song': 1012}

LANDMARK_NAMES = ('left_eye', 'right_eye', 'nose', 'mouth_left', 'mouth_right')
LANDMARK_SUFFIX = '.landmarks.csv'

_NAME = re.compile(r'^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$')
_ACTOR_DIR = re.compile(r'^Actor_(\d{2})$')


@dataclasses.dataclass(frozen=True)
class RavdessName:
  """Every field of one RAVDESS file name, as integer codes (see the module docstring)."""
  modality: int
  vocal_channel: int
  emotion: int
  intensity: int
  statement: int
  repetition: int
  actor: int

  @property
  def label(self) -> int:
    """The emotion as a 0-based class index (0 neutral .. 7 disgust)."""
    return self.emotion - 1

  @property
  def emotion_name(self) -> str:
    return EMOTIONS[self.emotion - 1]

  @property
  def modality_name(self) -> str:
    return MODALITIES[self.modality]

  @property
  def vocal_channel_name(self) -> str:
    return VOCAL_CHANNELS[self.vocal_channel]

  @property
  def intensity_name(self) -> str:
    return INTENSITIES[self.intensity]

  @property
  def statement_text(self) -> str:
    return STATEMENTS[self.statement]

  @property
  def gender(self) -> str:
    return 'male' if self.actor % 2 else 'female'

  @property
  def recording(self) -> Tuple[int, int, int, int, int, int]:
    """Every field but the modality: the 01 and 02 files of one recording share it."""
    return (self.actor, self.vocal_channel, self.emotion, self.intensity, self.statement, self.repetition)

  @property
  def stem(self) -> str:
    return '-'.join(f'{v:02d}' for v in (self.modality, self.vocal_channel, self.emotion, self.intensity,
                                          self.statement, self.repetition, self.actor))


def parse_name(filename: str) -> RavdessName:
  """Parses `MM-VV-EE-II-SS-RR-AA.mp4` (a path or a bare name; .mp4 or .wav). Raises ValueError naming the
  problem for any name outside the published scheme (see the module docstring)."""
  base = os.path.basename(filename)
  stem, ext = os.path.splitext(base)
  if ext.lower() not in EXTENSIONS:
    raise ValueError(f'{base!r}: not a RAVDESS file name (extension {ext!r}, expected .mp4 or .wav)')
  match = _NAME.match(stem)
  if not match:
    raise ValueError(f'{base!r}: not a RAVDESS file name (expected seven two-digit fields MM-VV-EE-II-SS-RR-AA)')
  m, v, e, i, s, r, a = (int(g) for g in match.groups())
  ranges = (('modality', m, 1, 3), ('vocal channel', v, 1, 2), ('emotion', e, 1, 8), ('intensity', i, 1, 2),
            ('statement', s, 1, 2), ('repetition', r, 1, 2), ('actor', a, 1, NUM_ACTORS))
  for field, value, lo, hi in ranges:
    if not lo <= value <= hi:
      raise ValueError(f'{base!r}: {field} {value:02d} is outside {lo:02d}..{hi:02d}')
  if v == 2 and e not in SONG_EMOTIONS:
    raise ValueError(f'{base!r}: song has emotions 01-06 only, got {e:02d} ({EMOTIONS[e - 1]})')
  if e == 1 and i == 2:
    raise ValueError(f'{base!r}: neutral (01) has no strong intensity (02)')
  return RavdessName(modality=m, vocal_channel=v, emotion=e, intensity=i, statement=s, repetition=r, actor=a)


@dataclasses.dataclass(frozen=True)
class RavdessRecording:
  """One kept video: its path and parsed name."""
  path: str
  name: RavdessName

  @property
  def label(self) -> int:
    return self.name.label

  @property
  def actor(self) -> int:
    return self.name.actor


@dataclasses.dataclass
class ListingReport:
  """What `list_recordings` saw. skipped: (path, reason) for every bad name; the other copies of kept
  recordings (the other video modality) are counted in num_duplicates, audio-only files in num_audio_only."""
  num_files: int = 0
  num_kept: int = 0
  num_duplicates: int = 0
  num_audio_only: int = 0
  kept_by_vocal_channel: Dict[str, int] = dataclasses.field(default_factory=dict)
  skipped: List[Tuple[str, str]] = dataclasses.field(default_factory=list)

  @property
  def num_skipped(self) -> int:
    return len(self.skipped)

  def as_dict(self) -> Dict:
    out = dataclasses.asdict(self)
    out['skipped'] = [list(s) for s in self.skipped]
    out['num_skipped'] = self.num_skipped
    return out


def list_recordings(root: str, prefer_modality: int = 2) -> Tuple[List[RavdessRecording], ListingReport]:
  """Every recording under `<root>/Actor_NN/*.mp4`, one video file each, sorted by (actor, vocal channel,
  emotion, intensity, statement, repetition).

  Of a recording's modality-01 and -02 files the `prefer_modality` one is kept (02, video-only, by default; the
  pictures are the same), the other when only it exists. Audio-only (03) files are counted and left out. Bad names
  are skipped and listed in the report with their reason.

  Raises:
    DatasetUnavailableError: root is missing or holds no Actor_NN folder with MP4 files.
  """
  if prefer_modality not in (1, 2):
    raise ValueError(f'prefer_modality must be 1 (audio-video) or 2 (video-only), got {prefer_modality}')
  if not root or not os.path.isdir(root):
    raise records_lib.unavailable(DISPLAY_NAME, root, 'the root folder does not exist', LAYOUT, SOURCE)
  report = ListingReport()
  by_recording: Dict[Tuple, Dict[int, RavdessRecording]] = collections.defaultdict(dict)
  folders = [d for d in sorted(os.listdir(root)) if _ACTOR_DIR.match(d) and os.path.isdir(os.path.join(root, d))]
  for folder in folders:
    folder_actor = int(_ACTOR_DIR.match(folder).group(1))
    for base in sorted(os.listdir(os.path.join(root, folder))):
      path = os.path.join(root, folder, base)
      if base.startswith('.') or not base.lower().endswith('.mp4') or not os.path.isfile(path):
        continue
      report.num_files += 1
      try:
        name = parse_name(base)
      except ValueError as e:
        report.skipped.append((path, str(e)))
        continue
      if name.actor != folder_actor:
        report.skipped.append((path, f'actor {name.actor:02d} in the name but the file is in {folder}'))
        continue
      if name.modality == 3:
        report.num_audio_only += 1
        continue
      by_recording[name.recording][name.modality] = RavdessRecording(path, name)
  if not report.num_files:
    raise records_lib.unavailable(DISPLAY_NAME, root, f'no .mp4 files in Actor_NN folders '
                                  f'({len(folders)} Actor_NN folders found)', LAYOUT, SOURCE)
  kept = []
  for key in sorted(by_recording):
    copies = by_recording[key]
    kept.append(copies.get(prefer_modality) or copies[3 - prefer_modality])
    report.num_duplicates += len(copies) - 1
  report.num_kept = len(kept)
  counts = collections.Counter(r.name.vocal_channel_name for r in kept)
  report.kept_by_vocal_channel = {c: counts.get(c, 0) for c in VOCAL_CHANNELS.values()}
  return kept, report


# ------------------------------------------------------------------------------------------------ landmarks


def landmarks_path(video_path: str) -> str:
  """The sidecar of `video_path`: `<dir>/<stem>.landmarks.csv`."""
  return os.path.splitext(video_path)[0] + LANDMARK_SUFFIX


def _landmark_header() -> List[str]:
  return ['frame'] + [f'{n}_{c}' for n in LANDMARK_NAMES for c in 'xy']


def write_landmarks(path: str, frames: np.ndarray, points: np.ndarray) -> None:
  """Writes a sidecar: frame indices [n] and points [n, 5, 2] (x, y pixels)."""
  frames = np.asarray(frames, np.int64)
  points = np.asarray(points, np.float64)
  if points.shape != (len(frames), len(LANDMARK_NAMES), 2):
    raise ValueError(f'points must be [{len(frames)}, {len(LANDMARK_NAMES)}, 2], got {points.shape}')
  with open(path, 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(_landmark_header())
    for index, p in zip(frames, points):
      writer.writerow([int(index)] + [f'{v:.3f}' for v in p.reshape(-1)])


def read_landmarks(path: str) -> Tuple[np.ndarray, np.ndarray]:
  """Reads a sidecar -> (frame indices int64 [n], increasing; points float32 [n, 5, 2]).

  Raises records.DatasetError naming the file and line for a wrong header, a short row, a non-number or a
  repeated frame.
  """
  with open(path, newline='') as f:
    rows = list(csv.reader(f))
  header = _landmark_header()
  if not rows or [c.strip() for c in rows[0]] != header:
    raise records_lib.DatasetError(f'{path}: the first line must be the header {",".join(header)}')
  frames, points = [], []
  for line, row in enumerate(rows[1:], start=2):
    if not row:
      continue
    if len(row) != len(header):
      raise records_lib.DatasetError(f'{path}: line {line} has {len(row)} fields, expected {len(header)}')
    try:
      frames.append(int(row[0]))
      points.append([float(v) for v in row[1:]])
    except ValueError as e:
      raise records_lib.DatasetError(f'{path}: line {line} is malformed ({e})') from e
  frames = np.asarray(frames, np.int64)
  if len(np.unique(frames)) != len(frames):
    raise records_lib.DatasetError(f'{path}: a frame index appears twice')
  order = np.argsort(frames)
  points = np.asarray(points, np.float32).reshape(-1, len(LANDMARK_NAMES), 2)
  return frames[order], points[order]


def find_landmarks(video_path: str) -> Optional[Tuple[np.ndarray, np.ndarray]]:
  """The sidecar's contents when `video_path` has one, else None."""
  path = landmarks_path(video_path)
  return read_landmarks(path) if os.path.isfile(path) else None
