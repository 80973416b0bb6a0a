"""Weizmann human actions ("Actions as Space-Time Shapes"): listing, masks, crop and empty-frame trimming.

Thesis (T:L6652-6655, T:L6961-6963): "93 sequences of 9 actors performing 10 actions. We crop and normalize each
frame from resolution 180x144 to 96x96 as done in (Tulyakov et al., 2018)", pixels mapped to [-1, 1]; and
(T:L6977-6980) "simple median-based background subtraction to automatically cut frames at the beginning or the end
if there are no humans in them".

Published layout (the per-action archives `bend.zip` .. `wave2.zip` of the classification database, each unpacked
into a folder of its name, plus `classification_masks.mat` beside them):

  <root>/<action>/<actor>_<action>[<take>].avi     e.g. bend/daria_bend.avi, run/lena_run2.avi, wave1/eli_wave1.avi
  <root>/classification_masks.mat

Actions: bend jack jump pjump run side skip walk wave1 wave2. Actors: daria denis eli ido ira lena lyova moshe
shahar. Lena has two takes of run, skip and walk (`lena_run1.avi`, `lena_run2.avi`), which makes 90 + 3 = 93. A
trailing digit after the folder's action is a take number (`take` 1, 2; 0 when absent); in `wave1` / `wave2` the
digit belongs to the action. The reader does not insist on the nine actor names, so the generated stand-ins
(`video_standins.py`) and any re-recording in this layout read the same way.

`classification_masks.mat` (assumed, not checked against the file: public MATLAB code reads it as
`m = load('classification_masks.mat'); m.original_masks.lena_run1` and `aligned_masks.daria_jump`): top-level structs
`original_masks` (full-frame foreground masks) and `aligned_masks` (centred crops), each with one field per video
named like the video's stem, holding an [H, W, T] logical / uint8 array. `load_masks` returns them as bool
[T, H, W]. MATLAB v7.3 (HDF5) files are not read (scipy cannot); the published file is an older version.
"""

import dataclasses
import logging
import os
import re
from typing import Dict, List, Optional, Tuple

import numpy as np

from rlcv_tf.datasets import records as records_lib
from rlcv_tf.datasets import video_files

DISPLAY_NAME = 'Weizmann actions'
SOURCE = ('http://www.wisdom.weizmann.ac.il/~vision/SpaceTimeActions.html (classification database: '
          '<action>.zip for the 10 actions, unpacked into <root>/<action>/, and classification_masks.mat)')
LAYOUT = '<root>/<action>/<actor>_<action>[<take>].avi and <root>/classification_masks.mat'
ACTIONS = ('bend', 'jack', 'jump', 'pjump', 'run', 'side', 'skip', 'walk', 'wave1', 'wave2')
ACTORS = ('daria', 'denis', 'eli', 'ido', 'ira', 'lena', 'lyova', 'moshe', 'shahar')
NUM_VIDEOS = 93
FRAME_SIZE = (144, 180)  # (height, width) of the published videos
MASKS_FILE = 'classification_masks.mat'
MASK_KEYS = ('original_masks', 'aligned_masks')
EXTENSIONS = ('.avi', '.mp4')
# Preprocessing (issue 13 §1): a centred 144x144 square of the 180x144 frame, resized to 96x96.
CROP = 144
SIZE = 96
# Empty-frame trimming [proposal; the thesis names the method, not its constants]: a pixel is foreground when
# some channel differs from the per-pixel temporal median by more than PIXEL_THRESHOLD grey levels; a frame is
# empty when under MIN_FOREGROUND of its pixels are (0.2% of 180x144 is 52 pixels; a whole actor is 1-4%).
# A pixel the actor covers in more than half the frames becomes background, so for actions in place the score
# sees only the moving limbs; `mask_scores` on the published masks has no such bias.
PIXEL_THRESHOLD = 30
MIN_FOREGROUND = 0.002

_STEM = re.compile(r'^(?P<actor>[A-Za-z]+)_(?P<rest>[A-Za-z0-9]+)$')


@dataclasses.dataclass(frozen=True)
class WeizmannVideo:
  """One listed video. name: the file stem, the key of its masks in classification_masks.mat."""
  path: str
  action: str
  actor: str
  take: int
  name: str

  @property
  def label(self) -> int:
    """The action as a 0-based class index in ACTIONS order."""
    return ACTIONS.index(self.action)


def parse_stem(stem: str, action: str) -> Tuple[str, int]:
  """`<actor>_<action>[<take>]` in the folder `action` -> (actor, take). Raises ValueError otherwise."""
  match = _STEM.match(stem)
  if not match:
    raise ValueError(f'{stem!r}: expected <actor>_<action>[<take>]')
  rest = match.group('rest')
  if rest == action:
    return match.group('actor'), 0
  if rest.startswith(action) and rest[len(action):].isdigit():
    return match.group('actor'), int(rest[len(action):])
  raise ValueError(f'{stem!r}: the action part {rest!r} does not match its folder {action!r}')


def scan(root: str) -> Tuple[List[WeizmannVideo], List[Tuple[str, str]]]:
  """Every video of the published layout under `root`, sorted by (action, actor, take), and the (path, reason)
  of every video file whose name or folder does not fit the layout (skipped).

  Raises:
    DatasetUnavailableError: root is missing or holds no video in an action folder.
  """
  if not root or not os.path.isdir(root):
    raise records_lib.unavailable(DISPLAY_NAME, root, 'the root folder does not exist', LAYOUT, SOURCE)
  videos, skipped = [], []
  try:
    listed = video_files.list_videos(root, EXTENSIONS, DISPLAY_NAME)
  except records_lib.DatasetUnavailableError:
    listed = []
  for path, folder in listed:
    if folder not in ACTIONS:
      skipped.append((path, f'folder {folder!r} is not one of the actions {", ".join(ACTIONS)}'))
      continue
    stem = os.path.splitext(os.path.basename(path))[0]
    try:
      actor, take = parse_stem(stem, folder)
    except ValueError as e:
      skipped.append((path, str(e)))
      continue
    videos.append(WeizmannVideo(path=path, action=folder, actor=actor, take=take, name=stem))
  if not videos:
    found = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    raise records_lib.unavailable(DISPLAY_NAME, root, f'no <actor>_<action>.avi videos in action folders (folders '
                                  f'found: {", ".join(found) or "none"})', LAYOUT, SOURCE)
  videos.sort(key=lambda v: (ACTIONS.index(v.action), v.actor, v.take))
  return videos, skipped


def list_videos(root: str) -> List[WeizmannVideo]:
  """`scan(root)`'s videos; skipped files are logged in one warning."""
  videos, skipped = scan(root)
  if skipped:
    examples = '; '.join(f'{p}: {r}' for p, r in skipped[:3])
    logging.warning('%s: skipped %d file(s) outside the layout %s, e.g. %s', DISPLAY_NAME, len(skipped), LAYOUT,
                    examples)
  return videos


def masks_path(root: str) -> str:
  return os.path.join(root, MASKS_FILE)


def load_masks(path: str, key: str = 'original_masks') -> Dict[str, np.ndarray]:
  """classification_masks.mat -> {video stem: bool [T, H, W]} from its `key` struct (see the module docstring).

  Raises DatasetUnavailableError when the file is missing, DatasetError when it cannot be read or has no `key`.
  """
  if not os.path.isfile(path):
    raise records_lib.unavailable(f'{DISPLAY_NAME} masks', os.path.dirname(path) or '.',
                                  f'missing {os.path.basename(path)}', LAYOUT, SOURCE)
  import scipy.io  # pylint: disable=g-import-not-at-top
  try:
    data = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
  except NotImplementedError as e:
    raise records_lib.DatasetError(f'{path}: a MATLAB v7.3 (HDF5) file; save it with -v7 to read it') from e
  except (ValueError, OSError, TypeError) as e:
    raise records_lib.DatasetError(f'{path}: not a readable MATLAB file ({e})') from e
  if key not in data:
    present = sorted(k for k in data if not k.startswith('__'))
    raise records_lib.DatasetError(f'{path}: no {key!r} variable (it has {", ".join(present) or "none"})')
  struct = data[key]
  fields = getattr(struct, '_fieldnames', None)
  if fields is None:
    raise records_lib.DatasetError(f'{path}: {key!r} is not a struct of per-video masks')
  out = {}
  for name in fields:
    mask = np.asarray(getattr(struct, name))
    if mask.ndim == 2:
      mask = mask[:, :, None]
    if mask.ndim != 3:
      raise records_lib.DatasetError(f'{path}: {key}.{name} has shape {mask.shape}, expected [H, W, T]')
    out[name] = np.transpose(mask != 0, (2, 0, 1))
  return out


# ------------------------------------------------------------------------------------------------ frames


def center_crop(frames: np.ndarray, crop: int = CROP) -> np.ndarray:
  """The centred crop x crop square of [T, H, W, C] frames (the shorter side when it is below `crop`); when
  the margin is odd the extra pixel goes to the right / bottom."""
  _, height, width, _ = frames.shape
  side = min(crop, height, width)
  top, left = (height - side) // 2, (width - side) // 2
  return frames[:, top:top + side, left:left + side]


def preprocess(frames: np.ndarray, crop: int = CROP, size: int = SIZE) -> np.ndarray:
  """uint8 [T, H, W, 3] -> float32 [T, size, size, 3] in [-1, 1]: the centred crop, resized in float32 with
  pixel-area averaging (OpenCV INTER_AREA, no rounding to integers), then x / 127.5 - 1."""
  import cv2  # pylint: disable=g-import-not-at-top
  frames = np.asarray(frames)
  if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
    raise ValueError(f'frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}')
  square = center_crop(frames, crop).astype(np.float32)
  out = np.empty((len(frames), size, size, 3), np.float32)
  for t, image in enumerate(square):
    out[t] = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
  return out / 127.5 - 1.0


def foreground_scores(frames: np.ndarray, pixel_threshold: float = PIXEL_THRESHOLD,
                      background: Optional[np.ndarray] = None) -> np.ndarray:
  """Median-background foreground score of each frame: the fraction of its pixels where some channel differs
  from the background by more than `pixel_threshold` grey levels. background: [H, W, C]; by default the
  per-pixel median over the clip's frames. Returns float32 [T] in [0, 1]."""
  x = np.asarray(frames, np.float32)
  if x.ndim == 3:
    x = x[..., None]
  if background is None:
    background = np.median(x, axis=0)
  diff = np.abs(x - np.asarray(background, np.float32)).max(axis=-1)
  return (diff > pixel_threshold).mean(axis=(1, 2)).astype(np.float32)


def mask_scores(masks: np.ndarray) -> np.ndarray:
  """Foreground fraction of each frame of bool masks [T, H, W] (the same score from classification_masks.mat)."""
  return np.asarray(masks, bool).mean(axis=(1, 2)).astype(np.float32)


def trim_bounds(scores: np.ndarray, threshold: float = MIN_FOREGROUND) -> Tuple[int, int]:
  """(start, stop) such that scores[start] and scores[stop - 1] are the first and last scores >= threshold;
  (0, 0) when no frame reaches it. Only the ends are cut: empty frames in the middle stay."""
  keep = np.flatnonzero(np.asarray(scores) >= threshold)
  if not len(keep):
    return 0, 0
  return int(keep[0]), int(keep[-1]) + 1


def trim_empty(frames: np.ndarray, scores: np.ndarray, threshold: float = MIN_FOREGROUND) -> np.ndarray:
  """frames without their leading and trailing empty frames (score < threshold); an empty array when every
  frame is empty (a caller counts that clip as too short)."""
  if len(frames) != len(scores):
    raise ValueError(f'{len(frames)} frames but {len(scores)} scores')
  start, stop = trim_bounds(scores, threshold)
  return frames[start:stop]
