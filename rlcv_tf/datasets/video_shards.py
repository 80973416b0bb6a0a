"""Decode once: Weizmann / RAVDESS videos -> TFRecord shards, and the pure tf.data reader of them (issue 13 §1).

`python -m launchers.video_prepare --dataset=weizmann|ravdess --data_dir=ROOT --out=DIR` calls `prepare`. Worker
processes (spawned; no TensorFlow in them) decode each video with PyAV (`video_files.read_video`, strict), apply the
data set's preprocessing and PNG-encode the frames; the parent writes one `tf.train.Example` per video into
`<out>/all-NNNNN-of-MMMMM.tfrecord` shards and `<out>/prepare_report.json`. Training then reads the shards with
`make_dataset` (interleave, `decode_png` of the chosen window only, a seeded 8-frame window, an optional
whole-clip flip); evaluation loads whole videos with `load_videos`.

What the thesis states:
  * Weizmann (T:L6652-6655, T:L6961-6963, T:L6977-6980): 180x144 frames "cropped and normalized" to 96x96 (the
    centred 144x144 square, `weizmann.preprocess`), pixels in [-1, 1]; median-background subtraction cuts empty
    frames at the ends (`weizmann.foreground_scores` / `trim_bounds`).
  * RAVDESS (T:L6658-6666): faces aligned from detected landmarks (MTCNN, Zhang 2016b) and every 3rd frame kept.

[proposal] choices made here:
  * Frames are stored as 8-bit PNG (lossless): Weizmann's float area-resize output is rounded to the nearest grey
    level once, here, so a stored frame is `rint((preprocess(x) + 1) * 127.5)`.
  * RAVDESS alignment (spec A1, 128x128): ONE FFHQ-style similarity crop per video (Karras et al. 2019's
    recipe on 5 points: the crop centre is the eye midpoint moved 0.1 of the way to the mouth midpoint; the
    crop side is max(4 x eye distance, 3.6 x eye-to-mouth distance); the crop's x axis is eye_to_eye minus
    eye_to_mouth turned by 90 degrees) from the per-video median of the landmarks over the kept frames, so detector
    jitter does not become fake motion. Outside the frame the crop reflects (cv2.BORDER_REFLECT_101); a crop that
    shrinks by 2x or more is first area-averaged by an integer factor (anti-aliasing). The 5 landmarks of each
    kept frame, mapped into the crop, are the keypoints [n, 5, 2] (NaN where a frame has no detection).
  * Weizmann keypoints ('mask keypoints', a different metric from the thesis's OpenPose points): when
    classification_masks.mat is present, per frame the mask centroid, its top point and its bottom point (the mean
    x of the mask's first / last row), mapped into the 96x96 crop: K = 3, NaN on an empty mask or a video without
    a mask of matching size. Without the file K = 0. With `openpose_dir` (a user's OpenPose --write_json output,
    `datasets/openpose.py`) the joints are stored instead, mapped the same way: the thesis's keypoints.
  * Coordinates are pixels (x right, y down) with pixel centres at integers: a crop/resize maps x to
    (x + 0.5) * scale - 0.5.
  * A clip shorter than `min_frames` (default 8, the model's T) after trimming / subsampling is skipped.
  * Skipped videos (VideoReadError kinds, 'too_short', 'landmarks' for a malformed sidecar, 'no_face', 'keypoints'
    for a malformed OpenPose file) are counted per kind in the report; past `max_skipped_fraction` of the listed
    videos the run stops with `SkipLimitError`.
  * Resume: a shard is written under a temporary name and renamed when complete; `prepare_state.json` records the
    done shards (size, videos, skips). A re-run redoes only the missing shards; a different listing or settings in
    the same `out` is refused.
  * Reader: the window start is uniform over the valid starts and the flip a fair coin, both drawn with
    `tf.random.stateless_uniform` keyed on (seed, element index after repeat), so a seed fixes every epoch. A flip
    mirrors x (x -> W - 1 - x) and permutes the keypoints (RAVDESS: the two eyes and the two mouth corners swap,
    keeping 'left' = smaller x). Evaluation (training=False) takes the centred window, no flip, no shuffle.
"""

import collections
import concurrent.futures
import dataclasses
import glob
import hashlib
import itertools
import json
import logging
import math
import multiprocessing
import os
import re
import time
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from rlcv_tf.datasets import openpose
from rlcv_tf.datasets import ravdess
from rlcv_tf.datasets import records as records_lib
from rlcv_tf.datasets import video_files
from rlcv_tf.datasets import weizmann

DATASETS = ('weizmann', 'ravdess')
PREPARE_COMMAND = 'python -m launchers.video_prepare'
REPORT_FILE = 'prepare_report.json'
STATE_FILE = 'prepare_state.json'
SPLIT = 'all'
SHARD_SUFFIX = '.tfrecord'
MIN_FRAMES = 8
VIDEOS_PER_SHARD = 32
RAVDESS_STRIDE = 3          # T:L6664-6665
RAVDESS_SIZE = 128          # spec A1
DETECTION_SIZE = (360, 640)  # (height, width) the detector sees (issue 13 §1)
MTCNN_PIP = 'pip install mtcnn==1.0.0'
PNG_COMPRESSION = 3
# FFHQ alignment constants (see the module docstring).
FFHQ_EYE_SCALE = 2.0
FFHQ_MOUTH_SCALE = 1.8
FFHQ_CENTRE_SHIFT = 0.1

MASK_KEYPOINT_NAMES = ('centroid', 'top', 'bottom')
SKIP_KINDS = video_files.READ_ERROR_KINDS + ('too_short', 'landmarks', 'no_face', 'keypoints')
_SHARD_NAME = re.compile(r'^(?P<split>[a-z0-9_]+)-(?P<index>\d{5})-of-(?P<total>\d{5})\.tfrecord$')


class SkipLimitError(records_lib.DatasetError):
  """More videos could not be used than `max_skipped_fraction` allows (an incomplete or damaged copy)."""


class NotPreparedError(records_lib.DatasetError):
  """No complete shards of the data set in a folder; the message names the prepare command."""


class DetectorUnavailableError(records_lib.DatasetError):
  """RAVDESS videos without landmark sidecars and no MTCNN to detect faces with."""


# ------------------------------------------------------------------------------------------------ alignment


def similarity_crop_params(landmarks5: np.ndarray) -> Tuple[np.ndarray, float, float]:
  """FFHQ-style crop of 5 landmarks [5, 2] (left eye, right eye, nose, mouth left, mouth right; x, y pixels) ->
  (centre [2], side length in source pixels, angle = atan2(x_y, x_x) of the crop's x axis in image coordinates,
  y down). See the module docstring for the recipe."""
  lm = np.asarray(landmarks5, np.float64)
  if lm.shape != (5, 2) or not np.all(np.isfinite(lm)):
    raise ValueError(f'landmarks5 must be 5 finite (x, y) points [5, 2], got shape {lm.shape}')
  eye_avg = (lm[0] + lm[1]) / 2
  eye_to_eye = lm[1] - lm[0]
  eye_to_mouth = (lm[3] + lm[4]) / 2 - eye_avg
  x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
  norm = np.hypot(*x)
  if norm < 1e-6:
    raise ValueError('landmarks5: degenerate face (eyes and mouth coincide); check the landmark order')
  half = max(FFHQ_EYE_SCALE * np.hypot(*eye_to_eye), FFHQ_MOUTH_SCALE * np.hypot(*eye_to_mouth))
  centre = eye_avg + FFHQ_CENTRE_SHIFT * eye_to_mouth
  return centre, float(2 * half), float(np.arctan2(x[1], x[0]))


def crop_matrix(centre: Sequence[float], size: float, angle: float, out_size: int) -> np.ndarray:
  """The 2x3 matrix M (dst = M @ [x, y, 1]) taking the rotated square (centre, side `size`, x axis at `angle`) onto
  an out_size x out_size image, pixel centres at integers (so the square's edges land on -0.5 and out_size - 0.5)."""
  k = out_size / size
  c, s = np.cos(angle), np.sin(angle)
  a = k * np.array([[c, s], [-s, c]])
  t = (out_size - 1) / 2 - a @ np.asarray(centre, np.float64)
  return np.concatenate([a, t[:, None]], axis=1)


def face_crop_matrix(landmarks5: np.ndarray, out_size: int = RAVDESS_SIZE) -> np.ndarray:
  """`crop_matrix` of `similarity_crop_params(landmarks5)`."""
  return crop_matrix(*similarity_crop_params(landmarks5), out_size)


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
  """Applies a 2x3 affine matrix to points [..., 2] (NaN stays NaN); float32."""
  p = np.asarray(points, np.float64)
  m = np.asarray(matrix, np.float64)
  return (p @ m[:, :2].T + m[:, 2]).astype(np.float32)


def apply_crop(frames: np.ndarray, matrix: np.ndarray, size: int = RAVDESS_SIZE) -> np.ndarray:
  """Warps uint8 frames [T, H, W, C] with the 2x3 matrix (dst = M src) into [T, size, size, C] (bilinear,
  reflected border). When M shrinks by 2x or more, each frame is first area-averaged by the integer factor
  f = floor(1 / scale) (its bottom/right remainder rows and columns dropped) and the matrix composed with that."""
  import cv2  # pylint: disable=g-import-not-at-top
  frames = np.asarray(frames)
  if frames.ndim != 4:
    raise ValueError(f'frames must be [T, H, W, C], got shape {frames.shape}')
  m = np.asarray(matrix, np.float64)
  scale = math.sqrt(abs(np.linalg.det(m[:, :2])))
  factor = int(math.floor(1.0 / scale + 1e-9)) if scale > 0 else 1
  _, height, width, channels = frames.shape
  if factor >= 2 and height >= factor and width >= factor:
    # small pixel j covers source pixels f*j .. f*j + f - 1, centred at f*j + (f - 1) / 2.
    m = np.concatenate([factor * m[:, :2], (m[:, 2] + m[:, :2] @ np.full(2, (factor - 1) / 2))[:, None]], axis=1)
    h, w = height // factor, width // factor
    frames = [cv2.resize(f[:h * factor, :w * factor], (w, h), interpolation=cv2.INTER_AREA) for f in frames]
  out = []
  for f in frames:
    warped = cv2.warpAffine(np.ascontiguousarray(f), m, (size, size), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REFLECT_101)
    out.append(warped.reshape(size, size, channels))
  return np.stack(out)


def mask_keypoints(masks: np.ndarray) -> np.ndarray:
  """Per frame of bool masks [T, H, W]: (centroid, top point, bottom point) as (x, y) [T, 3, 2] float32; the top
  (bottom) point is at the first (last) row holding foreground, x the mean of that row's foreground columns. NaN
  for an empty mask."""
  masks = np.asarray(masks, bool)
  out = np.full((len(masks), len(MASK_KEYPOINT_NAMES), 2), np.nan, np.float32)
  for t, m in enumerate(masks):
    ys, xs = np.nonzero(m)
    if not len(ys):
      continue
    top, bottom = ys.min(), ys.max()
    out[t, 0] = xs.mean(), ys.mean()
    out[t, 1] = xs[ys == top].mean(), top
    out[t, 2] = xs[ys == bottom].mean(), bottom
  return out


def weizmann_crop_points(points: np.ndarray, frame_shape: Tuple[int, int], crop: int = weizmann.CROP,
                         size: int = weizmann.SIZE) -> np.ndarray:
  """Maps (x, y) points of a full frame [H, W] into `weizmann.preprocess`'s centred crop resized to `size`."""
  height, width = frame_shape
  side = min(crop, height, width)
  offset = np.array([(width - side) // 2, (height - side) // 2], np.float64)
  return ((np.asarray(points, np.float64) - offset + 0.5) * (size / side) - 0.5).astype(np.float32)


# ------------------------------------------------------------------------------------------------ detection

_DETECTOR = None


def mtcnn_available() -> bool:
  import importlib.util  # pylint: disable=g-import-not-at-top
  return importlib.util.find_spec('mtcnn') is not None


def _no_detector_message(num_missing: int, num_total: int, example: str) -> str:
  return (f'RAVDESS: {num_missing} of {num_total} recordings have no landmark sidecar (e.g. {example}) and face '
          f'detection needs MTCNN, which is not installed: {MTCNN_PIP} (weights ship in the wheel), or write a '
          f'<video stem>{ravdess.LANDMARK_SUFFIX} next to each video (header frame,left_eye_x,left_eye_y,...,'
          'mouth_right_y; pixels of the stored video; frame = 0-based index before subsampling)')


def detect_landmarks(frames: np.ndarray) -> np.ndarray:
  """MTCNN's 5 landmarks [T, 5, 2] (NaN where no face) of RGB frames [T, H, W, 3], detected at DETECTION_SIZE
  (the most confident face) and mapped back to the frames' pixels; eyes and mouth corners ordered by x."""
  global _DETECTOR
  import cv2  # pylint: disable=g-import-not-at-top
  if _DETECTOR is None:
    try:
      import mtcnn  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise DetectorUnavailableError(f'RAVDESS face detection needs MTCNN: {MTCNN_PIP}, or landmark sidecars '
                                     f'(<video stem>{ravdess.LANDMARK_SUFFIX})') from e
    _DETECTOR = mtcnn.MTCNN(device='CPU:0')
  out = np.full((len(frames), 5, 2), np.nan, np.float32)
  height, width = frames.shape[1:3]
  dh, dw = DETECTION_SIZE
  sx, sy = dw / width, dh / height
  for t, frame in enumerate(frames):
    small = cv2.resize(frame, (dw, dh), interpolation=cv2.INTER_AREA) if (dh, dw) != (height, width) else frame
    faces = _DETECTOR.detect_faces(small) or []
    if not faces:
      continue
    best = max(faces, key=lambda f: f.get('confidence', 0.0))
    k = best['keypoints']
    pts = np.array([k['left_eye'], k['right_eye'], k['nose'], k['mouth_left'], k['mouth_right']], np.float64)
    pts[0:2] = pts[0:2][np.argsort(pts[0:2, 0])]
    pts[3:5] = pts[3:5][np.argsort(pts[3:5, 0])]
    out[t] = (pts + 0.5) / np.array([sx, sy]) - 0.5
  return out


# ------------------------------------------------------------------------------------------------ workers


class _Skip(Exception):

  def __init__(self, kind: str, reason: str, frames_decoded: int = 0):
    super().__init__(reason)
    self.kind, self.reason, self.frames_decoded = kind, reason, frames_decoded


@dataclasses.dataclass
class _Task:
  """One video to prepare (picklable; sent to a worker)."""
  index: int
  dataset: str
  path: str
  rel: str
  video_id: str
  label: int
  label_name: str
  actor: str
  settings: Dict
  mask: Optional[np.ndarray] = None   # Weizmann: bool [T, H, W] from classification_masks.mat
  has_masks: bool = False             # Weizmann: the masks file exists (K = 3 even without this video's mask)


def _png(image: np.ndarray) -> bytes:
  import cv2  # pylint: disable=g-import-not-at-top
  bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.shape[-1] == 3 else image
  ok, data = cv2.imencode('.png', bgr, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
  if not ok:  # pragma: no cover
    raise RuntimeError('PNG encoding failed')
  return data.tobytes()


def _weizmann_video(task: _Task) -> Dict:
  s = task.settings
  frames = video_files.read_video(task.path)
  decoded = len(frames)
  scores = weizmann.foreground_scores(frames)
  start, stop = weizmann.trim_bounds(scores)
  if stop - start < s['min_frames']:
    raise _Skip('too_short', f'{stop - start} of {decoded} frames left after trimming empty ends '
                f'(min_frames={s["min_frames"]})', decoded)
  kept = frames[start:stop]
  images = np.clip(np.rint((weizmann.preprocess(kept, s['crop'], s['image_size']) + 1.0) * 127.5), 0, 255)
  notes = []
  if s.get('openpose_dir'):
    stem = os.path.splitext(os.path.basename(task.path))[0]
    try:
      points = openpose.video_keypoints(s['openpose_dir'], stem, decoded, s['openpose_joints'])[start:stop]
    except openpose.OpenPoseError as e:
      raise _Skip('keypoints', str(e), decoded) from None
    keypoints = weizmann_crop_points(points, frames.shape[1:3], s['crop'], s['image_size'])
    missing = int(np.sum(~np.all(np.isfinite(points), axis=(1, 2))))
    if missing:
      notes.append(f'{missing} of {stop - start} kept frames without every OpenPose joint (NaN)')
  elif task.mask is not None and task.mask.shape == (decoded,) + frames.shape[1:3]:
    points = mask_keypoints(task.mask[start:stop])
    keypoints = weizmann_crop_points(points, frames.shape[1:3], s['crop'], s['image_size'])
  elif task.has_masks:
    keypoints = np.full((stop - start, len(MASK_KEYPOINT_NAMES), 2), np.nan, np.float32)
    notes.append('no mask in classification_masks.mat' if task.mask is None else
                 f'mask shape {task.mask.shape} does not match the video ({decoded}, {frames.shape[1]}, '
                 f'{frames.shape[2]})')
  else:
    keypoints = np.zeros((stop - start, 0, 2), np.float32)
  return dict(images=images.astype(np.uint8), source_frames=np.arange(start, stop), keypoints=keypoints,
              foreground=scores[start:stop], frames_decoded=decoded, notes=notes)


def _ravdess_video(task: _Task) -> Dict:
  s = task.settings
  stride = s['stride']
  frames = video_files.read_video(task.path, stride=stride)
  source = np.arange(len(frames)) * stride
  decoded = int(source[-1]) + 1
  try:
    decoded = max(decoded, video_files.video_info(task.path).frames)
  except video_files.VideoReadError:  # pragma: no cover (it decoded a moment ago)
    pass
  if len(frames) < s['min_frames']:
    raise _Skip('too_short', f'{len(frames)} frames after keeping every {stride}th of {decoded} '
                f'(min_frames={s["min_frames"]})', decoded)
  try:
    found = ravdess.find_landmarks(task.path)
  except records_lib.DatasetError as e:
    raise _Skip('landmarks', str(e), decoded) from e
  notes = []
  if found is not None:
    index, points = found
    lookup = {int(i): p for i, p in zip(index, points)}
    landmarks = np.stack([lookup.get(int(i), np.full((5, 2), np.nan, np.float32)) for i in source])
    source_of_landmarks = 'sidecar'
  else:
    landmarks = detect_landmarks(frames)
    source_of_landmarks = 'mtcnn'
  valid = np.all(np.isfinite(landmarks), axis=(1, 2))
  if not valid.any():
    raise _Skip('no_face', f'no landmarks on any of the {len(frames)} kept frames ({source_of_landmarks})', decoded)
  if not valid.all():
    notes.append(f'{int((~valid).sum())} of {len(frames)} kept frames without landmarks (keypoints NaN)')
  matrix = face_crop_matrix(np.median(landmarks[valid], axis=0), s['image_size'])
  images = apply_crop(frames, matrix, s['image_size'])
  return dict(images=images, source_frames=source, keypoints=transform_points(landmarks, matrix),
              foreground=np.zeros((0,), np.float32), frames_decoded=decoded, notes=notes,
              landmarks=source_of_landmarks, crop_matrix=matrix.tolist())


def _process(task: _Task) -> Dict:
  """Worker: one video -> {'ok': True, pngs, metadata...} or {'ok': False, kind, reason}."""
  t0 = time.perf_counter()
  base = dict(index=task.index, path=task.path, rel=task.rel, video_id=task.video_id)
  try:
    out = (_weizmann_video if task.dataset == 'weizmann' else _ravdess_video)(task)
  except video_files.VideoReadError as e:
    return dict(base, ok=False, kind=e.kind, reason=e.reason, frames_decoded=0, seconds=time.perf_counter() - t0)
  except _Skip as e:
    return dict(base, ok=False, kind=e.kind, reason=e.reason, frames_decoded=e.frames_decoded,
                seconds=time.perf_counter() - t0)
  images = out.pop('images')
  return dict(base, ok=True, label=task.label, label_name=task.label_name, actor=task.actor,
              pngs=[_png(im) for im in images], shape=list(images.shape[1:]), seconds=time.perf_counter() - t0, **out)


def _init_worker() -> None:
  import cv2  # pylint: disable=g-import-not-at-top
  cv2.setNumThreads(1)


def _ordered_results(tasks: Iterable[_Task], num_workers: int) -> Iterator[Dict]:
  """`_process` over tasks, results in task order; num_workers = 0 runs here, else spawned processes with a
  bounded number of tasks in flight."""
  if num_workers == 0:
    for task in tasks:
      yield _process(task)
    return
  pool = concurrent.futures.ProcessPoolExecutor(num_workers, mp_context=multiprocessing.get_context('spawn'),
                                                initializer=_init_worker)
  pending = collections.deque()
  it = iter(tasks)
  try:
    for task in itertools.islice(it, 4 * num_workers):
      pending.append(pool.submit(_process, task))
    while pending:
      try:
        result = pending.popleft().result()
      except concurrent.futures.process.BrokenProcessPool as e:
        raise RuntimeError('a video decoding worker process died (out of memory, or a __main__ that cannot be '
                           're-imported by a spawned process, e.g. code read from stdin); num_workers=0 decodes in '
                           'this process') from e
      nxt = next(it, None)
      if nxt is not None:
        pending.append(pool.submit(_process, nxt))
      yield result
  finally:
    for f in pending:
      f.cancel()
    pool.shutdown(wait=True, cancel_futures=True)


# ------------------------------------------------------------------------------------------------ listing


def _list(dataset: str, data_dir: str, settings: Dict) -> Tuple[List[_Task], List[Dict], Dict]:
  """(tasks without masks, listing skips [{path, reason}], info) for a data set root."""
  root = os.path.abspath(os.path.expanduser(data_dir))
  tasks, listing_skipped, info = [], [], {}
  if dataset == 'weizmann':
    videos, skipped = weizmann.scan(data_dir)
    listing_skipped = [dict(path=p, kind='name', reason=r) for p, r in skipped]
    info['masks_file'] = os.path.isfile(weizmann.masks_path(data_dir))
    for v in videos:
      tasks.append(_Task(len(tasks), dataset, os.path.abspath(v.path), os.path.relpath(v.path, root), v.name, v.label,
                         v.action, v.actor, settings, has_masks=info['masks_file']))
  elif dataset == 'ravdess':
    kept, report = ravdess.list_recordings(data_dir)
    listing_skipped = [dict(path=p, kind='name', reason=r) for p, r in report.skipped]
    info['listing'] = {k: v for k, v in report.as_dict().items() if k != 'skipped'}
    for r in kept:
      tasks.append(_Task(len(tasks), dataset, os.path.abspath(r.path), os.path.relpath(r.path, root), r.name.stem,
                         r.label, r.name.emotion_name, f'{r.actor:02d}', settings))
  else:
    raise ValueError(f'dataset must be one of {", ".join(DATASETS)}, got {dataset!r}')
  return tasks, listing_skipped, info


def keypoint_info(dataset: str, masks_file: bool, openpose_joints: int = 0) -> Dict:
  """Names, source and flip permutation of the keypoints a prepared data set stores."""
  if openpose_joints:
    known = openpose_joints in (18, 25)
    return dict(names=openpose.joint_names(openpose_joints), flip_permutation=openpose.flip_permutation(
        openpose_joints), source=f'OpenPose joints ({openpose_joints}; --openpose_dir) mapped into the crop, the '
        'thesis\'s keypoints' + ('' if known else '; unknown joint set: a flip keeps the joint order'))
  if dataset == 'ravdess':
    return dict(names=list(ravdess.LANDMARK_NAMES), source='face landmarks (sidecar or MTCNN) mapped into the crop',
                flip_permutation=[1, 0, 2, 4, 3])
  if masks_file:
    return dict(names=list(MASK_KEYPOINT_NAMES), flip_permutation=[0, 1, 2],
                source='mask keypoints: centroid, top and bottom points of classification_masks.mat original_masks '
                       '(not the thesis\'s OpenPose keypoints)')
  return dict(names=[], source='none (no classification_masks.mat)', flip_permutation=[])


# ------------------------------------------------------------------------------------------------ writing


def shard_name(index: int, total: int, split: str = SPLIT) -> str:
  return f'{split}-{index:05d}-of-{total:05d}{SHARD_SUFFIX}'


def _write_json(path: str, data: Dict) -> None:
  tmp = f'{path}.tmp'
  with open(tmp, 'w') as f:
    json.dump(data, f, indent=1, sort_keys=True)
  os.replace(tmp, path)


def _read_json(path: str) -> Optional[Dict]:
  if not os.path.isfile(path):
    return None
  try:
    with open(path) as f:
      return json.load(f)
  except (ValueError, OSError) as e:
    raise records_lib.DatasetError(f'{path}: not readable JSON ({e}); delete it to prepare again') from e


def _example_bytes(tf, r: Dict) -> bytes:
  feature = tf.train.Feature

  def b(values):
    return feature(bytes_list=tf.train.BytesList(value=[v if isinstance(v, bytes) else v.encode() for v in values]))

  def i(values):
    return feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))

  def f(values):
    return feature(float_list=tf.train.FloatList(value=np.asarray(values, np.float32).reshape(-1).tolist()))

  keypoints = np.asarray(r['keypoints'], np.float32)
  height, width, channels = r['shape']
  features = {
      'frames': b(r['pngs']), 'video_id': b([r['video_id']]), 'label': i([r['label']]),
      'label_name': b([r['label_name']]), 'actor': b([r['actor']]), 'path': b([r['rel']]),
      'source_frames': i(r['source_frames']), 'num_frames': i([len(r['pngs'])]), 'keypoints': f(keypoints),
      'num_keypoints': i([keypoints.shape[1]]), 'foreground': f(r['foreground']), 'height': i([height]),
      'width': i([width]), 'channels': i([channels])}
  return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def _write_shard(out: str, name: str, results: List[Dict]) -> Dict:
  """Writes the ok results of one shard (temporary name, then rename); returns its state entry."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  path = os.path.join(out, name)
  tmp = os.path.join(out, f'.{name}.tmp')
  with tf.io.TFRecordWriter(tmp) as writer:
    for r in results:
      if r['ok']:
        writer.write(_example_bytes(tf, r))
  os.replace(tmp, path)
  videos = [dict(id=r['video_id'], path=r['rel'], actor=r['actor'], label=r['label'], label_name=r['label_name'],
                 num_frames=len(r['pngs']), shape=r['shape'], num_keypoints=int(np.asarray(r['keypoints']).shape[1]),
                 shard=name, **({'notes': r['notes']} if r.get('notes') else {}),
                 **({'landmarks': r['landmarks']} if 'landmarks' in r else {}))
            for r in results if r['ok']]
  skipped = [dict(path=r['path'], kind=r['kind'], reason=r['reason']) for r in results if not r['ok']]
  return dict(bytes=os.path.getsize(path), videos=videos, skipped=skipped,
              frames_decoded=int(sum(r['frames_decoded'] for r in results)),
              seconds=float(sum(r['seconds'] for r in results)))


def _max_skipped(num_listed: int, fraction: float) -> int:
  return int(math.floor(fraction * num_listed + 1e-9))


def _skip_message(dataset: str, skipped: List[Dict], num_listed: int, fraction: float, final: bool) -> str:
  n = len(skipped)
  kinds = collections.Counter(s['kind'] for s in skipped)
  examples = '; '.join(f'{s["path"]}: {s["reason"]}' for s in skipped[:3])
  when = '' if final else ' (stopped early)'
  return (f'{dataset}: {n} of {num_listed} listed videos could not be used{when} ({100 * n / max(num_listed, 1):.1f}% '
          f'> --max_skipped_fraction={fraction:g}; {", ".join(f"{k} {c}" for k, c in sorted(kinds.items()))}), '
          f'e.g. {examples}. Check or re-extract the copy, or raise --max_skipped_fraction to prepare what is there.')


def prepare(dataset: str, data_dir: str, out: str, num_workers: int = 2, max_skipped_fraction: float = 0.05,
            min_frames: int = MIN_FRAMES, videos_per_shard: int = VIDEOS_PER_SHARD, image_size: Optional[int] = None,
            stride: Optional[int] = None, print_fn: Optional[Callable[[str], None]] = None,
            progress_interval_s: float = 10.0, openpose_dir: str = '') -> Dict:
  """Decodes, preprocesses and writes a data set's videos into TFRecord shards under `out`; returns the report
  (also `<out>/prepare_report.json`). Re-running resumes: complete shards are kept.

  Args:
    dataset: 'weizmann' or 'ravdess'.
    data_dir: the data set's root in its published layout (`weizmann.LAYOUT`, `ravdess.LAYOUT`).
    out: the shard folder (created).
    num_workers: decoding processes (spawned); 0 decodes in this process.
    max_skipped_fraction: stop (SkipLimitError) once more than this fraction of the listed videos is unusable.
    min_frames: skip clips shorter than this after trimming (Weizmann) or subsampling (RAVDESS).
    videos_per_shard: listed videos per shard (the shard plan depends only on the listing and this).
    image_size: output frame side; default 96 (Weizmann) / 128 (RAVDESS).
    stride: temporal subsampling; default 1 (Weizmann) / 3 (RAVDESS).
    print_fn: progress lines (None: silent).
    progress_interval_s: at most one progress line per this many seconds (and one when the last shard is done).
    openpose_dir: Weizmann: a user's OpenPose --write_json folder; its joints become the keypoints.

  Raises:
    DatasetUnavailableError: data_dir is missing or holds no video of the layout.
    DetectorUnavailableError: RAVDESS videos without landmark sidecars and no `mtcnn`.
    SkipLimitError: too many corrupt / empty / stream-less / too-short videos.
    DatasetError: `out` holds a preparation of another listing or other settings.
  """
  if dataset not in DATASETS:
    raise ValueError(f'dataset must be one of {", ".join(DATASETS)}, got {dataset!r}')
  if not 0.0 <= max_skipped_fraction <= 1.0:
    raise ValueError(f'max_skipped_fraction must be in [0, 1], got {max_skipped_fraction}')
  for name, value, low in (('num_workers', num_workers, 0), ('min_frames', min_frames, 1),
                           ('videos_per_shard', videos_per_shard, 1)):
    if value < low:
      raise ValueError(f'{name} must be >= {low}, got {value}')
  say = print_fn or (lambda s: None)
  t_start = time.perf_counter()
  settings = dict(min_frames=int(min_frames), videos_per_shard=int(videos_per_shard),
                  image_size=int(image_size or (weizmann.SIZE if dataset == 'weizmann' else RAVDESS_SIZE)),
                  stride=int(stride or (1 if dataset == 'weizmann' else RAVDESS_STRIDE)),
                  crop=weizmann.CROP if dataset == 'weizmann' else None)
  if settings['image_size'] < 1 or settings['stride'] < 1:
    raise ValueError(f'image_size and stride must be >= 1, got {image_size}, {stride}')
  if openpose_dir:
    if dataset != 'weizmann':
      raise ValueError('openpose_dir: OpenPose joints are for Weizmann (RAVDESS keypoints are face landmarks)')
    settings['openpose_dir'] = os.path.abspath(os.path.expanduser(openpose_dir))
    settings['openpose_joints'] = openpose.num_joints(settings['openpose_dir'])
  if dataset == 'weizmann' and settings['stride'] != 1:
    raise ValueError('stride: Weizmann keeps every frame (stride 1); the thesis subsamples RAVDESS only')
  tasks, listing_skipped, info = _list(dataset, data_dir, settings)
  num_listed = len(tasks)
  if dataset == 'ravdess':
    missing = [t.path for t in tasks if not os.path.isfile(ravdess.landmarks_path(t.path))]
    if missing and not mtcnn_available():
      raise DetectorUnavailableError(_no_detector_message(len(missing), num_listed, missing[0]))
    info['without_sidecar'] = len(missing)
  keypoints = keypoint_info(dataset, info.get('masks_file', False), settings.get('openpose_joints', 0))
  fingerprint = hashlib.sha256(json.dumps(
      [dataset, {k: v for k, v in settings.items()}, [t.rel for t in tasks]]).encode()).hexdigest()[:16]
  num_shards = max(1, math.ceil(num_listed / videos_per_shard))
  names = [shard_name(i, num_shards) for i in range(num_shards)]

  os.makedirs(out, exist_ok=True)
  state_path = os.path.join(out, STATE_FILE)
  state = _read_json(state_path)
  if state is not None and state.get('fingerprint') != fingerprint:
    raise records_lib.DatasetError(
        f'{out} holds shards prepared from another listing or with other settings ({state.get("dataset")}, '
        f'{state.get("num_listed")} videos, settings {state.get("settings")}); use a new --out or empty this one')
  if state is None:
    state = dict(fingerprint=fingerprint, dataset=dataset, num_listed=num_listed, settings=settings, done={})
  for stale in glob.glob(os.path.join(out, '.*.tmp')):
    os.remove(stale)
  def complete(name, entry):
    path = os.path.join(out, name)
    return name in names and os.path.isfile(path) and os.path.getsize(path) == entry['bytes']

  done = {n: e for n, e in state['done'].items() if complete(n, e)}
  state['done'] = done
  todo = [i for i, n in enumerate(names) if n not in done]
  if done:
    say(f'[video_prepare] resuming: {len(done)} of {num_shards} shards already complete in {out}')

  masks: Dict[str, np.ndarray] = {}
  if dataset == 'weizmann' and info['masks_file'] and todo and not openpose_dir:
    masks = weizmann.load_masks(weizmann.masks_path(data_dir))

  def shard_tasks():
    for i in todo:
      for t in tasks[i * videos_per_shard:(i + 1) * videos_per_shard]:
        if masks:
          t = dataclasses.replace(t, mask=masks.get(t.video_id))
        yield t

  if todo:
    import tensorflow  # pylint: disable=g-import-not-at-top,unused-import  (loaded before the clock starts)
  allowed = _max_skipped(num_listed, max_skipped_fraction)
  skipped_so_far = [s for n in names if n in done for s in done[n]['skipped']]
  run = dict(videos_processed=0, frames_decoded=0, seconds_in_workers=0.0)
  t_run = time.perf_counter()
  last_print = t_run
  status = 'complete'
  error = None
  results_by_shard: Dict[int, List[Dict]] = collections.defaultdict(list)
  results = _ordered_results(shard_tasks(), num_workers)
  try:
    for r in results:
      shard = r['index'] // videos_per_shard
      results_by_shard[shard].append(r)
      run['videos_processed'] += 1
      run['frames_decoded'] += r['frames_decoded']
      run['seconds_in_workers'] += r['seconds']
      if not r['ok']:
        skipped_so_far.append(dict(path=r['path'], kind=r['kind'], reason=r['reason']))
        if len(skipped_so_far) > allowed:
          status, error = 'stopped', SkipLimitError(_skip_message(dataset, skipped_so_far, num_listed,
                                                                   max_skipped_fraction, final=False))
          break
      expected = len(tasks[shard * videos_per_shard:(shard + 1) * videos_per_shard])
      if len(results_by_shard[shard]) == expected:
        done[names[shard]] = _write_shard(out, names[shard], results_by_shard.pop(shard))
        _write_json(state_path, state)
        now = time.perf_counter()
        if now - last_print >= progress_interval_s or len(done) == num_shards:
          last_print = now
          written = sum(len(e['videos']) for e in done.values())
          say(f'[video_prepare] {len(done)}/{num_shards} shards, {written} videos written, {len(skipped_so_far)} '
              f'skipped, {run["frames_decoded"]:,} frames decoded this run '
              f'({run["frames_decoded"] / max(now - t_run, 1e-9):,.0f} frames/s)')
  except KeyboardInterrupt:
    status = 'interrupted'
    raise
  finally:
    wall = time.perf_counter() - t_run
    results.close()
    report = _report(dataset, data_dir, out, state, names, listing_skipped, info, keypoints, settings, status,
                     num_workers, max_skipped_fraction, run, wall, time.perf_counter() - t_start)
    _write_json(os.path.join(out, REPORT_FILE), report)
  if error is not None:
    raise error
  counts = report['counts']
  if counts['written'] == 0:
    report['status'] = 'stopped'
    _write_json(os.path.join(out, REPORT_FILE), report)
    raise SkipLimitError(_skip_message(dataset, report['skipped'], num_listed, max_skipped_fraction, final=True)
                         .replace(' could not be used', ' could not be used (none could)'))
  if counts['skipped']:
    examples = '; '.join(f'{s["path"]}: {s["reason"]}' for s in report['skipped'][:2])
    logging.warning('%s: skipped %d of %d videos (%s), e.g. %s; details in %s', dataset, counts['skipped'],
                    num_listed, ', '.join(f'{k} {v}' for k, v in sorted(counts['skipped_by_kind'].items())), examples,
                    os.path.join(out, REPORT_FILE))
  return report


def _report(dataset, data_dir, out, state, names, listing_skipped, info, keypoints, settings, status, num_workers,
            max_skipped_fraction, run, wall, total_wall) -> Dict:
  done = state['done']
  videos = [v for n in names if n in done for v in done[n]['videos']]
  skipped = [s for n in names if n in done for s in done[n]['skipped']]
  frames_decoded = sum(done[n]['frames_decoded'] for n in names if n in done)
  seconds = sum(done[n]['seconds'] for n in names if n in done)
  shape = videos[0]['shape'] if videos else None
  return dict(
      dataset=dataset, data_dir=os.path.abspath(os.path.expanduser(data_dir)), out=os.path.abspath(out),
      status=status if status != 'complete' or len(done) == len(names) else 'stopped',
      settings=dict(settings, num_workers=num_workers, max_skipped_fraction=max_skipped_fraction,
                    png_compression=PNG_COMPRESSION,
                    alignment=('FFHQ-style similarity crop from the per-video median of 5 landmarks, reflected '
                               'border' if dataset == 'ravdess' else
                               f'centred {settings["crop"]}x{settings["crop"]} crop, area resize, median-background '
                               'trimming of empty end frames')),
      keypoints=keypoints, image_shape=shape, num_keypoints=len(keypoints['names']),
      counts=dict(listed=state['num_listed'], written=len(videos), skipped=len(skipped),
                  skipped_by_kind=dict(collections.Counter(s['kind'] for s in skipped)),
                  listing_skipped=len(listing_skipped), frames_decoded=int(frames_decoded),
                  frames_written=int(sum(v['num_frames'] for v in videos)), shards=len(names),
                  shards_complete=sum(n in done for n in names)),
      timing=dict(decode_frames_per_s=run['frames_decoded'] / wall if wall > 0 and run['frames_decoded'] else None,
                  this_run=dict(run, wall_s=wall, total_wall_s=total_wall),
                  all_runs_seconds_in_workers=seconds,
                  per_worker_frames_per_s=frames_decoded / seconds if seconds else None),
      listing=info, shards=[n for n in names if n in done], videos=videos, skipped=skipped,
      listing_skipped=listing_skipped)


# ------------------------------------------------------------------------------------------------ reading


def _command(dataset: str, shard_dir: str, data_dir: Optional[str] = None) -> str:
  return f'{PREPARE_COMMAND} --dataset={dataset} --data_dir={data_dir or "<root>"} --out={shard_dir}'


def read_report(shard_dir: str) -> Dict:
  """`<shard_dir>/prepare_report.json` as a dict; NotPreparedError when it is missing."""
  report = _read_json(os.path.join(shard_dir, REPORT_FILE))
  if report is None:
    raise NotPreparedError(f'{shard_dir} holds no {REPORT_FILE}: prepare the videos first with '
                           f'{_command("<weizmann|ravdess>", shard_dir)}')
  return report


def check_prepared(shard_dir: str, dataset: str) -> Dict:
  """Returns the report of complete shards of `dataset` in shard_dir; else raises NotPreparedError naming the
  prepare command (missing folder or report, another data set, an unfinished run, a missing shard)."""
  data_dir = None
  problem = None
  report = None
  if not shard_dir or not os.path.isdir(shard_dir):
    problem = 'the folder does not exist'
  else:
    report = _read_json(os.path.join(shard_dir, REPORT_FILE))
    if report is None:
      problem = f'no {REPORT_FILE}'
    else:
      data_dir = report.get('data_dir')
      missing = [n for n in report.get('shards', []) if not os.path.isfile(os.path.join(shard_dir, n))]
      if report.get('dataset') != dataset:
        problem, data_dir = f'it holds {report.get("dataset")!r} shards', None
      elif report.get('status') != 'complete':
        problem = (f'the preparation is {report.get("status")} ({report["counts"]["shards_complete"]} of '
                   f'{report["counts"]["shards"]} shards)')
      elif missing:
        problem = f'{len(missing)} shard(s) are missing, e.g. {missing[0]}'
  if problem:
    raise NotPreparedError(f'{dataset} is not prepared in {shard_dir}: {problem}. Run '
                           f'{_command(dataset, shard_dir, data_dir)} (it resumes a partial run)')
  return report


def select_videos(report: Dict, actors: Optional[Sequence[str]] = None,
                  exclude_actors: Optional[Sequence[str]] = None, video_ids: Optional[Sequence[str]] = None,
                  min_frames: int = 1) -> List[Dict]:
  """The report's video entries kept by the filters (ValueError for an actor or id the report does not hold)."""
  videos = report['videos']
  known_actors = sorted({v['actor'] for v in videos})
  for flag, names in (('actors', actors), ('exclude_actors', exclude_actors)):
    unknown = sorted(set(names or ()) - set(known_actors))
    if unknown:
      raise ValueError(f'{flag}: unknown actor(s) {", ".join(unknown)}; the shards hold {", ".join(known_actors)}')
  if video_ids is not None:
    unknown = sorted(set(video_ids) - {v['id'] for v in videos})
    if unknown:
      raise ValueError(f'video_ids: {len(unknown)} id(s) not in the shards, e.g. {unknown[0]}')
  out = [v for v in videos
         if (actors is None or v['actor'] in actors) and v['actor'] not in (exclude_actors or ())
         and (video_ids is None or v['id'] in video_ids) and v['num_frames'] >= min_frames]
  return out


_FEATURES_CACHE = {}


def _features():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if 'f' not in _FEATURES_CACHE:
    fixed = lambda dtype: tf.io.FixedLenFeature([], dtype)  # pylint: disable=unnecessary-lambda-assignment
    _FEATURES_CACHE['f'] = {
        'frames': tf.io.VarLenFeature(tf.string), 'video_id': fixed(tf.string), 'label': fixed(tf.int64),
        'label_name': fixed(tf.string), 'actor': fixed(tf.string), 'path': fixed(tf.string),
        'source_frames': tf.io.VarLenFeature(tf.int64), 'num_frames': fixed(tf.int64),
        'keypoints': tf.io.VarLenFeature(tf.float32), 'num_keypoints': fixed(tf.int64),
        'foreground': tf.io.VarLenFeature(tf.float32), 'height': fixed(tf.int64), 'width': fixed(tf.int64),
        'channels': fixed(tf.int64)}
  return _FEATURES_CACHE['f']


def make_dataset(shard_dir: str, batch_size: int, num_frames: int = 8, seed: int = 0, training: bool = True,
                 hflip: bool = False, split: str = SPLIT, actors: Optional[Sequence[str]] = None,
                 exclude_actors: Optional[Sequence[str]] = None, video_ids: Optional[Sequence[str]] = None,
                 value_range: Tuple[float, float] = (-1.0, 1.0), image_size: Optional[int] = None,
                 cycle_length: int = 4, shuffle_buffer: int = 256, drop_remainder: Optional[bool] = None,
                 shuffle: Optional[bool] = None):
  """Windows of prepared videos as a tf.data pipeline (pure TF: interleave, parse, decode_png of the window only).

  Elements: dict video float32 [B, T, H, W, C] in `value_range`, label int32 [B], label_name / actor / video_id
  string [B], keypoints float32 [B, T, K, 2] (crop pixels, NaN where missing), frame_index int64 [B, T] (source
  frame indices of the window), start int32 [B] (window start within the stored frames), flipped bool [B].

  training=True: shuffled files and videos, repeated forever, a window start uniform over the valid ones and (with
  hflip) a whole-clip horizontal flip with probability 1/2, both drawn from (seed, element index) statelessly, and
  drop_remainder by default (shuffle=False keeps shard order). training=False: one pass in shard order, the
  centred window, no flip.
  image_size resizes frames (area) and scales the keypoints. Videos shorter than num_frames are left out.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if batch_size < 1 or num_frames < 1:
    raise ValueError(f'batch_size and num_frames must be >= 1, got {batch_size}, {num_frames}')
  if value_range[1] <= value_range[0]:
    raise ValueError(f'value_range must be (low, high) with low < high, got {value_range}')
  report = read_report(shard_dir)
  selected = select_videos(report, actors, exclude_actors, video_ids, min_frames=num_frames)
  if not selected:
    raise records_lib.DatasetError(f'{shard_dir}: no prepared video has >= {num_frames} frames and passes the '
                                   f'filters (actors={actors}, exclude_actors={exclude_actors}); ask for fewer '
                                   'frames or other actors')
  shards = sorted({v['shard'] for v in selected})
  shards = [os.path.join(shard_dir, s) for s in shards if _SHARD_NAME.match(s).group('split') == split]
  missing = [s for s in shards if not os.path.isfile(s)]
  if not shards or missing:
    raise NotPreparedError(f'{shard_dir}: shards of split {split!r} are missing ({missing[:1] or "none listed"}); '
                           f'run {_command(report["dataset"], shard_dir, report.get("data_dir"))}')
  height, width, channels = report['image_shape']
  num_keypoints = int(report['num_keypoints'])
  perm = report['keypoints']['flip_permutation'] or [0]
  ids = tf.constant(sorted(v['id'] for v in selected))
  all_ids = len(selected) == len(report['videos'])
  low, high = float(value_range[0]), float(value_range[1])
  out_size = image_size
  drop = training if drop_remainder is None else drop_remainder
  shuffle = training if shuffle is None else shuffle

  def parse(serialized):
    ex = tf.io.parse_single_example(serialized, _features())
    for key in ('frames', 'source_frames', 'keypoints', 'foreground'):
      ex[key] = tf.sparse.to_dense(ex[key])
    return ex

  def keep(ex):
    long_enough = ex['num_frames'] >= num_frames
    if all_ids:
      return long_enough
    return tf.logical_and(long_enough, tf.reduce_any(tf.equal(ids, ex['video_id'])))

  def window(index, ex):
    n = tf.cast(ex['num_frames'], tf.int32)
    if training:
      u = tf.random.stateless_uniform([2], seed=tf.stack([tf.constant(seed, tf.int64), index]))
      start = tf.minimum(tf.cast(tf.floor(u[0] * tf.cast(n - num_frames + 1, tf.float32)), tf.int32),
                         n - num_frames)
      flip = tf.logical_and(tf.constant(bool(hflip)), u[1] < 0.5)
    else:
      start = (n - num_frames) // 2
      flip = tf.constant(False)
    positions = start + tf.range(num_frames)
    images = tf.map_fn(lambda b: tf.io.decode_png(b, channels=channels), tf.gather(ex['frames'], positions),
                       fn_output_signature=tf.TensorSpec([None, None, channels], tf.uint8))
    images = tf.ensure_shape(images, [num_frames, height, width, channels])
    video = tf.cast(images, tf.float32) * ((high - low) / 255.0) + low
    keypoints = tf.reshape(ex['keypoints'], [-1, num_keypoints, 2])
    keypoints = tf.ensure_shape(tf.gather(keypoints, positions), [num_frames, num_keypoints, 2])
    if num_keypoints:
      flipped_points = tf.gather(keypoints, perm, axis=1) * tf.constant([-1.0, 1.0]) + tf.constant([width - 1.0, 0])
      keypoints = tf.cond(flip, lambda: flipped_points, lambda: keypoints)
    video = tf.cond(flip, lambda: tf.reverse(video, axis=[2]), lambda: video)
    if out_size and (out_size, out_size) != (height, width):
      video = tf.image.resize(video, [out_size, out_size], method='area')
      keypoints = (keypoints + 0.5) * tf.constant([out_size / width, out_size / height]) - 0.5
    return dict(video=video, label=tf.cast(ex['label'], tf.int32), label_name=ex['label_name'], actor=ex['actor'],
                video_id=ex['video_id'], keypoints=keypoints, frame_index=tf.gather(ex['source_frames'], positions),
                start=start, flipped=flip)

  files = tf.data.Dataset.from_tensor_slices(shards)
  if shuffle:
    files = files.shuffle(len(shards), seed=seed, reshuffle_each_iteration=True)
  ds = files.interleave(tf.data.TFRecordDataset, cycle_length=max(1, min(cycle_length, len(shards))),
                        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).filter(keep)
  if shuffle:
    ds = ds.shuffle(shuffle_buffer, seed=seed + 1, reshuffle_each_iteration=True)
  if training:
    ds = ds.repeat()
  ds = ds.enumerate().map(window, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  ds = ds.batch(batch_size, drop_remainder=drop, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  options = tf.data.Options()
  options.deterministic = True
  return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def load_videos(shard_dir: str, split: str = SPLIT, actors: Optional[Sequence[str]] = None,
                exclude_actors: Optional[Sequence[str]] = None, video_ids: Optional[Sequence[str]] = None,
                value_range: Optional[Tuple[float, float]] = (-1.0, 1.0)) -> List[Dict]:
  """Whole prepared videos in NumPy (for evaluation), in shard order: dicts with video [n, H, W, C] (float32 in
  value_range, or the stored uint8 when value_range is None), label, label_name, actor, video_id, path,
  source_frames [n], keypoints [n, K, 2], foreground [n] (Weizmann; empty for RAVDESS)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  report = read_report(shard_dir)
  selected = select_videos(report, actors, exclude_actors, video_ids)
  wanted = {v['id'] for v in selected}
  shards = sorted({v['shard'] for v in selected})
  out = []
  for shard in shards:
    if _SHARD_NAME.match(shard).group('split') != split:
      continue
    for raw in tf.data.TFRecordDataset(os.path.join(shard_dir, shard)).as_numpy_iterator():
      feats = tf.train.Example.FromString(raw).features.feature
      video_id = feats['video_id'].bytes_list.value[0].decode()
      if video_id not in wanted:
        continue
      images = np.stack([tf.io.decode_png(b, channels=int(feats['channels'].int64_list.value[0])).numpy()
                         for b in feats['frames'].bytes_list.value])
      if value_range is not None:
        low, high = value_range
        images = images.astype(np.float32) * np.float32((high - low) / 255.0) + np.float32(low)
      k = int(feats['num_keypoints'].int64_list.value[0])
      out.append(dict(
          video_id=video_id, video=images, label=int(feats['label'].int64_list.value[0]),
          label_name=feats['label_name'].bytes_list.value[0].decode(),
          actor=feats['actor'].bytes_list.value[0].decode(), path=feats['path'].bytes_list.value[0].decode(),
          source_frames=np.asarray(feats['source_frames'].int64_list.value, np.int64),
          keypoints=np.asarray(feats['keypoints'].float_list.value, np.float32).reshape(len(images), k, 2),
          foreground=np.asarray(feats['foreground'].float_list.value, np.float32)))
  return out
