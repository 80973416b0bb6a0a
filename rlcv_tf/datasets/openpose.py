"""Body keypoints a user made with OpenPose (Cao et al., 2019), read from its `--write_json` output.

The thesis scores Weizmann retrieval (Table 7.1) with OpenPose joints. OpenPose's weights cannot be had here, so
this project does not run it; a user who has run it gives its JSON folder to `launchers.video_prepare
--openpose_dir`, and the shards store those joints instead of the mask keypoints.

Layout (what `openpose --video <stem>.avi --write_json DIR` writes): one file per frame,
`DIR/<stem>_<frame>_keypoints.json` with the frame number as the last digit group (OpenPose writes 12 digits), or
the same files in `DIR/<stem>/`. Each file is `{"people": [{"pose_keypoints_2d": [x0, y0, c0, x1, y1, c1, ...]},
...]}`; the person with the highest mean confidence is kept, and a joint with confidence 0 (OpenPose's "not found")
is NaN. A frame without a file or without people is NaN throughout. BODY_25 (25 joints) and COCO (18) get their
left/right flip permutations; another joint count keeps the order on a flip (noted in the shard report).
"""

import glob
import json
import os
import re
from typing import Dict, List, Optional

import numpy as np

_FRAME = re.compile(r'(\d+)_keypoints\.json$')

BODY_25_NAMES = ('nose', 'neck', 'r_shoulder', 'r_elbow', 'r_wrist', 'l_shoulder', 'l_elbow', 'l_wrist', 'mid_hip',
                 'r_hip', 'r_knee', 'r_ankle', 'l_hip', 'l_knee', 'l_ankle', 'r_eye', 'l_eye', 'r_ear', 'l_ear',
                 'l_big_toe', 'l_small_toe', 'l_heel', 'r_big_toe', 'r_small_toe', 'r_heel')
COCO_18_NAMES = ('nose', 'neck', 'r_shoulder', 'r_elbow', 'r_wrist', 'l_shoulder', 'l_elbow', 'l_wrist', 'r_hip',
                 'r_knee', 'r_ankle', 'l_hip', 'l_knee', 'l_ankle', 'r_eye', 'l_eye', 'r_ear', 'l_ear')


class OpenPoseError(ValueError):
  """An OpenPose JSON file or folder that cannot be used (one line naming the file and what is wrong)."""


def joint_names(num_joints: int) -> List[str]:
  if num_joints == 25:
    return list(BODY_25_NAMES)
  if num_joints == 18:
    return list(COCO_18_NAMES)
  return [f'joint_{i:02d}' for i in range(num_joints)]


def flip_permutation(num_joints: int) -> List[int]:
  """Index map that swaps each left joint with its right one (identity for an unknown joint set)."""
  names = joint_names(num_joints)
  index = {n: i for i, n in enumerate(names)}
  out = []
  for n in names:
    twin = 'l_' + n[2:] if n.startswith('r_') else 'r_' + n[2:] if n.startswith('l_') else n
    out.append(index.get(twin, index[n]))
  return out


def read_frame(path: str) -> Optional[np.ndarray]:
  """[K, 3] (x, y, confidence) of the most confident person in one OpenPose JSON file; None without people."""
  try:
    with open(path) as f:
      data = json.load(f)
    people = data.get('people', [])
    poses = [np.asarray(p['pose_keypoints_2d'], np.float64) for p in people]
  except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
    raise OpenPoseError(f'{path}: not an OpenPose keypoint file ({type(e).__name__}: {e}); expected '
                        '{"people": [{"pose_keypoints_2d": [x, y, c, ...]}]}') from None
  poses = [p for p in poses if p.size]
  if not poses:
    return None
  for p in poses:
    if p.ndim != 1 or p.size % 3:
      raise OpenPoseError(f'{path}: pose_keypoints_2d has {p.size} numbers, not a multiple of 3 (x, y, c)')
  if len({p.size for p in poses}) != 1:
    raise OpenPoseError(f'{path}: people with different joint counts ({sorted({p.size // 3 for p in poses})})')
  best = max(poses, key=lambda p: p.reshape(-1, 3)[:, 2].mean())
  return best.reshape(-1, 3)


def frame_files(openpose_dir: str, stem: str) -> Dict[int, str]:
  """{frame index: path} of a video's JSON files (module docstring layout)."""
  found = {}
  patterns = (os.path.join(glob.escape(openpose_dir), f'{glob.escape(stem)}_*_keypoints.json'),
              os.path.join(glob.escape(openpose_dir), glob.escape(stem), '*_keypoints.json'))
  for pattern in patterns:
    for path in glob.glob(pattern):
      m = _FRAME.search(os.path.basename(path))
      if m:
        found.setdefault(int(m.group(1)), path)
  return found


def num_joints(openpose_dir: str) -> int:
  """The joint count of the first readable file with people under `openpose_dir` (OpenPoseError if none)."""
  if not os.path.isdir(openpose_dir):
    raise OpenPoseError(f'--openpose_dir={openpose_dir}: no such folder; give the folder of OpenPose\'s '
                        '--write_json output (<video stem>_<frame>_keypoints.json)')
  paths = sorted(glob.glob(os.path.join(glob.escape(openpose_dir), '*_keypoints.json')) +
                 glob.glob(os.path.join(glob.escape(openpose_dir), '*', '*_keypoints.json')))
  for path in paths:
    frame = read_frame(path)
    if frame is not None:
      return int(frame.shape[0])
  raise OpenPoseError(f'--openpose_dir={openpose_dir}: no *_keypoints.json file with a person in it '
                      f'({len(paths)} file(s) found)')


def video_keypoints(openpose_dir: str, stem: str, num_frames: int, joints: int) -> np.ndarray:
  """float32 [num_frames, joints, 2] (x, y) in the video's pixels; NaN for a frame without a file or person and
  for joints with confidence 0."""
  out = np.full((num_frames, joints, 2), np.nan, np.float32)
  for t, path in frame_files(openpose_dir, stem).items():
    if not 0 <= t < num_frames:
      continue
    frame = read_frame(path)
    if frame is None:
      continue
    if frame.shape[0] != joints:
      raise OpenPoseError(f'{path}: {frame.shape[0]} joints, but the other files have {joints}')
    found = frame[:, 2] > 0
    out[t, found] = frame[found, :2]
  return out
