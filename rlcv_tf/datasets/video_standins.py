"""Generated stand-in videos in the *published layouts* of Weizmann and RAVDESS, and broken-file fixtures.

Issue 13 §1: "scripts/make_video_testdata.py writes generated videos in the published layouts. Stick figures, 10
actions (avi + masks .mat); cartoon faces, 8 expressions (mp4 + landmark sidecars). The real readers run on them
unchanged. Tests make tiny ones plus a truncated mp4, random bytes, an empty file, a bit-flipped avi. Never
substituted for missing data." The pictures follow the spec's StickActions / ToyFaces proposals (spec ch7 §7) at
the real data's frame sizes by default (Weizmann 180x144; RAVDESS detection size 640x360), in few, short videos.

  * `write_weizmann(out, ...)`: `<out>/<action>/<actor>_<action>.avi` (mpeg4) for the 10 actions and every actor,
    a second take of `run` for the first actor (`<actor>_run1.avi`, `<actor>_run2.avi`, as Lena's in the real
    set), and `<out>/classification_masks.mat` with `original_masks.<stem>` = the rendered figure's mask
    (uint8 [H, W, T], MATLAB order). Translating actions of every other actor have empty frames at both ends
    (the figure is out of view), so median-background trimming has something to cut. Actor names are NATO
    letters (alpha, bravo, ...), never the real actors'.
  * `write_ravdess(out, ...)`: `<out>/Actor_NN/01-VV-EE-II-SS-RR-NN.mp4` (libx264) cartoon faces, each expression
    an onset-apex-offset course with a little head motion, plus `<stem>.landmarks.csv` (5 landmarks per frame,
    `ravdess.write_landmarks`). By default per actor: the 8 emotions spoken once (normal intensity, statement 1,
    repetition 1), one song, and a video-only (02) copy of the first recording so that de-duplication is
    exercised; `recordings='all'` writes every valid name (60 speech + 44 song per actor).
  * `write_broken(out)`: `truncated.mp4` (cut before its moov index), `truncated.avi` (cut after half its frame
    chunks, header intact), `random.avi` (random bytes), `empty.mp4` (0 bytes), `bitflip.avi` (bits flipped in
    the frame data), `no_video.mp4` (an audio-only MP4).

Every output is a function of the arguments (seeded NumPy generators); encoders may differ across FFmpeg builds.
"""

import dataclasses
import os
import struct
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from rlcv_tf.datasets import ravdess
from rlcv_tf.datasets import video_files
from rlcv_tf.datasets import weizmann

STANDIN_ACTORS = ('alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india')
KEYPOINT_NAMES = ('head', 'hand_a', 'hand_b', 'foot_a', 'foot_b', 'hip')
TRANSLATING = ('jump', 'run', 'side', 'skip', 'walk')
WEIZMANN_FPS = 25
RAVDESS_FPS = 30


def _rng(seed: int, *keys: int) -> np.random.Generator:
  return np.random.default_rng([seed, *keys])


# ------------------------------------------------------------------------------------------------ stick figures


@dataclasses.dataclass(frozen=True)
class Pose:
  """One frame of a stick figure. Angles in radians from straight down, positive towards the facing side.
  arms / legs: two (upper, lower) pairs, the lower angle absolute (not relative to the upper)."""
  dx: float
  bob: float
  torso: float
  arms: Tuple[Tuple[float, float], Tuple[float, float]]
  legs: Tuple[Tuple[float, float], Tuple[float, float]]


# (period in frames, speed in figure heights per frame) of each action.
# Fast enough that no pixel is covered in half a 20-frame clip (else the median background holds the figure).
_ACTION_MOTION = {'bend': (24, 0.0), 'jack': (14, 0.0), 'jump': (12, 0.05), 'pjump': (12, 0.0),
                  'run': (10, 0.075), 'side': (12, 0.055), 'skip': (12, 0.055), 'walk': (14, 0.045),
                  'wave1': (12, 0.0), 'wave2': (12, 0.0)}


def action_pose(action: str, t: int, phase: float, height: float) -> Pose:
  """The pose of `action` at frame t (parametric, periodic; spec ch7 §7 StickActions)."""
  period, speed = _ACTION_MOTION[action]
  p = 2 * np.pi * t / period + phase
  s, c = np.sin(p), np.cos(p)
  dx = speed * height * t
  if action == 'walk':
    return Pose(dx, 0.015 * height * abs(c), 0.0, ((-0.4 * s, -0.4 * s + 0.3), (0.4 * s, 0.4 * s + 0.3)),
                ((0.45 * s, 0.45 * s - 0.4 * max(0.0, -c)), (-0.45 * s, -0.45 * s - 0.4 * max(0.0, c))))
  if action == 'run':
    return Pose(dx, 0.03 * height * abs(s), 0.15, ((-0.7 * s, -0.7 * s + 1.3), (0.7 * s, 0.7 * s + 1.3)),
                ((0.7 * s, 0.7 * s - 0.9 * max(0.0, -c)), (-0.7 * s, -0.7 * s - 0.9 * max(0.0, c))))
  if action == 'skip':
    return Pose(dx, 0.06 * height * abs(s), 0.05, ((-0.3 * s, 0.2), (0.3 * s, 0.2)),
                ((0.5 * s, 0.5 * s - 0.6 * max(0.0, s)), (-0.2 * s, -0.2 * s)))
  if action == 'side':
    spread = 0.35 * (1 + s) / 2
    return Pose(dx, 0.02 * height * abs(c), 0.0, ((0.2, 0.2), (-0.2, -0.2)),
                ((spread, spread), (-spread, -spread)))
  if action == 'jump':
    lift = max(0.0, s)
    return Pose(dx, 0.09 * height * lift, 0.1, ((-0.6 * c, -0.6 * c + 0.4),) * 2,
                ((0.3 * lift, 0.3 * lift - 0.5 * (1 - lift)),) * 2)
  if action == 'pjump':
    lift = abs(s)  # bouncing without a pause: a figure at rest would become part of the median background
    return Pose(dx, 0.09 * height * lift, 0.0, ((0.15 + 0.5 * lift, 0.6 * lift), (-0.15 - 0.5 * lift, -0.6 * lift)),
                ((0.05, -0.05 - 0.4 * (1 - lift)),) * 2)
  if action == 'jack':
    open_ = (1 - c) / 2
    arm = 0.2 + 2.6 * open_
    leg = 0.05 + 0.35 * open_
    return Pose(dx, 0.03 * height * open_, 0.0, ((arm, arm + 0.2), (-arm, -arm - 0.2)), ((leg, leg), (-leg, -leg)))
  if action in ('wave1', 'wave2'):
    wave = 2.5 + 0.35 * s
    arms = ((wave, wave + 0.5 * s), (-wave, -wave - 0.5 * s) if action == 'wave2' else (-0.15, -0.15))
    return Pose(dx, 0.0, 0.0, arms, ((0.06, 0.06), (-0.06, -0.06)))
  if action == 'bend':
    torso = 1.3 * (1 - c) / 2
    return Pose(dx, 0.0, torso, ((0.05, 0.05), (0.1, 0.1)), ((0.0, 0.0), (0.0, 0.0)))
  raise ValueError(f'unknown action {action!r}; valid: {", ".join(weizmann.ACTIONS)}')


@dataclasses.dataclass(frozen=True)
class Actor:
  """A stick figure's looks and its static background."""
  name: str
  height: float  # figure height as a fraction of the frame height
  thickness: int
  head_color: Tuple[int, int, int]
  shirt_color: Tuple[int, int, int]
  pants_color: Tuple[int, int, int]
  background: np.ndarray  # uint8 [H, W, 3]


def make_actor(name: str, index: int, size: Tuple[int, int], seed: int = 0) -> Actor:
  """The index-th stand-in actor for frames of `size` (height, width)."""
  import cv2  # pylint: disable=g-import-not-at-top
  rng = _rng(seed, 101, index)
  height, width = size
  top, bottom = rng.uniform(150, 230, 3), rng.uniform(90, 170, 3)
  ramp = np.linspace(0, 1, height)[:, None, None]
  background = np.broadcast_to(top * (1 - ramp) + bottom * ramp, (height, width, 3)).copy()
  for _ in range(6):  # a few soft static blobs, so the background is not flat
    centre = (int(rng.integers(0, width)), int(rng.integers(0, height // 2)))
    radius = int(rng.integers(height // 16, height // 6))
    cv2.circle(background, centre, radius, rng.uniform(100, 220, 3).tolist(), -1, cv2.LINE_AA)
  ground = int(0.92 * height)
  background[ground:] = background[ground:] * 0.7
  return Actor(name=name, height=float(rng.uniform(0.55, 0.66)), thickness=int(rng.integers(3, 6)),
               head_color=tuple(int(v) for v in rng.integers(150, 240, 3)),
               shirt_color=tuple(int(v) for v in rng.integers(0, 110, 3)),
               pants_color=tuple(int(v) for v in rng.integers(0, 90, 3)),
               background=np.clip(background, 0, 255).astype(np.uint8))


def _limb(origin, angles, lengths, facing):
  joint = origin + lengths[0] * np.array([facing * np.sin(angles[0]), np.cos(angles[0])])
  end = joint + lengths[1] * np.array([facing * np.sin(angles[1]), np.cos(angles[1])])
  return joint, end


def render_figure(actor: Actor, pose: Pose, x0: float, facing: int,
                  visible: bool = True) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """One frame: (uint8 RGB [H, W, 3], bool mask [H, W], keypoints float32 [6, 2] (x, y) in KEYPOINT_NAMES order).
  An invisible figure leaves the background and an empty mask (keypoints are still where it would be)."""
  import cv2  # pylint: disable=g-import-not-at-top
  image = actor.background.copy()
  mask = np.zeros(image.shape[:2], np.uint8)
  h = actor.height * image.shape[0]
  leg, torso, arm, head = 0.46 * h, 0.32 * h, 0.34 * h, 0.075 * h
  ground = 0.92 * image.shape[0]
  hip = np.array([x0 + facing * pose.dx, ground - 0.97 * leg - pose.bob])
  up = np.array([facing * np.sin(pose.torso), -np.cos(pose.torso)])
  neck = hip + torso * up
  head_centre = neck + (head + 1) * up
  segments = []  # (start, end, colour)
  feet, hands = [], []
  for angles in pose.legs:
    knee, foot = _limb(hip, angles, (leg / 2, leg / 2), facing)
    segments += [(hip, knee, actor.pants_color), (knee, foot, actor.pants_color)]
    feet.append(foot)
  segments.append((hip, neck, actor.shirt_color))
  for angles in pose.arms:
    elbow, hand = _limb(neck, angles, (arm / 2, arm / 2), facing)
    segments += [(neck, elbow, actor.shirt_color), (elbow, hand, actor.shirt_color)]
    hands.append(hand)
  if visible:
    for target, is_mask in ((image, False), (mask, True)):
      for start, end, colour in segments:
        cv2.line(target, tuple(np.round(start).astype(int)), tuple(np.round(end).astype(int)),
                 255 if is_mask else colour, actor.thickness, cv2.LINE_8 if is_mask else cv2.LINE_AA)
      cv2.circle(target, tuple(np.round(head_centre).astype(int)), int(round(head)),
                 255 if is_mask else actor.head_color, -1, cv2.LINE_8 if is_mask else cv2.LINE_AA)
  keypoints = np.array([head_centre, hands[0], hands[1], feet[0], feet[1], hip], np.float32)
  return image, mask > 0, keypoints


@dataclasses.dataclass
class StandinVideo:
  """What a stand-in writer made: the file, its labels and the ground truth the renderer knows."""
  path: str
  label: str  # Weizmann action or RAVDESS emotion name
  actor: str
  num_frames: int
  visible: Tuple[int, int]  # (first, stop) frames with the subject in view
  keypoints: np.ndarray  # float32 [T, K, 2] (x, y) pixels


def render_action(actor: Actor, action: str, num_frames: int, seed: int,
                  empty_ends: Tuple[int, int] = (0, 0)) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(frames uint8 [T, H, W, 3], masks bool [T, H, W], keypoints [T, 6, 2]) of one stick-figure video, with
  sensor noise (sd 1.5 grey levels) and `empty_ends` = (leading, trailing) frames without the figure."""
  rng = _rng(seed, 202)
  height, width = actor.background.shape[:2]
  facing = int(rng.choice([-1, 1]))
  phase = float(rng.uniform(0, 2 * np.pi))
  travel = _ACTION_MOTION[action][1] * actor.height * height * (num_frames - 1)
  x0 = width / 2 - facing * travel / 2 + float(rng.uniform(-0.05, 0.05)) * width
  frames, masks, points = [], [], []
  for t in range(num_frames):
    visible = empty_ends[0] <= t < num_frames - empty_ends[1]
    pose = action_pose(action, t, phase, actor.height * height)
    image, mask, keypoints = render_figure(actor, pose, x0, facing, visible)
    noise = rng.normal(0, 1.5, image.shape)
    frames.append(np.clip(image + noise, 0, 255).astype(np.uint8))
    masks.append(mask)
    points.append(keypoints)
  return np.stack(frames), np.stack(masks), np.stack(points)


def write_weizmann(out: str, num_actors: int = 3, num_frames: int = 20, size: Tuple[int, int] = (144, 180),
                   actions: Sequence[str] = weizmann.ACTIONS, seed: int = 0, extra_take: bool = True,
                   empty_ends: Tuple[int, int] = (2, 3)) -> List[StandinVideo]:
  """Writes stick-figure videos in the Weizmann layout under `out` (see the module docstring); returns them."""
  import scipy.io  # pylint: disable=g-import-not-at-top
  if not 1 <= num_actors <= len(STANDIN_ACTORS):
    raise ValueError(f'num_actors must be in 1..{len(STANDIN_ACTORS)}, got {num_actors}')
  if num_frames < sum(empty_ends) + 2:
    raise ValueError(f'num_frames={num_frames} leaves no visible frames after empty_ends={empty_ends}')
  written, masks = [], {}
  for a in range(num_actors):
    actor = make_actor(STANDIN_ACTORS[a], a, size, seed)
    for k, action in enumerate(actions):
      takes = (1, 2) if extra_take and a == 0 and action == 'run' else (0,)
      for take in takes:
        ends = empty_ends if action in TRANSLATING and a % 2 == 0 else (0, 0)
        frames, mask, points = render_action(actor, action, num_frames, seed * 1_000_003 + a * 1000 + k * 10 + take,
                                             ends)
        stem = f'{actor.name}_{action}{take or ""}'
        path = os.path.join(out, action, stem + '.avi')
        video_files.write_video(path, frames, fps=WEIZMANN_FPS)
        masks[stem] = np.transpose(mask, (1, 2, 0)).astype(np.uint8)
        written.append(StandinVideo(path, action, actor.name, num_frames, (ends[0], num_frames - ends[1]), points))
  scipy.io.savemat(os.path.join(out, weizmann.MASKS_FILE), {'original_masks': masks}, do_compression=True)
  return written


# ------------------------------------------------------------------------------------------------ faces


# Apex of each emotion (RAVDESS codes 01..08): mouth width, mouth opening, mouth corner lift, brow raise,
# brow tilt (inner end down > 0), eye openness, asymmetry of the corner lift.
_EXPRESSIONS = {
    1: (0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0),     # neutral
    2: (0.05, 0.0, 0.3, 0.0, 0.0, 0.8, 0.0),    # calm
    3: (0.3, 0.35, 1.0, 0.1, 0.0, 0.7, 0.0),    # happy
    4: (-0.1, 0.0, -0.8, 0.2, -0.6, 0.75, 0.0),  # sad
    5: (-0.15, 0.1, -0.4, -0.5, 0.8, 1.0, 0.0),  # angry
    6: (0.15, 0.5, -0.3, 0.8, -0.4, 1.35, 0.0),  # fearful
    7: (-0.2, 1.0, 0.0, 1.0, 0.0, 1.45, 0.0),   # surprise
    8: (0.05, 0.15, -0.5, -0.3, 0.4, 0.65, 0.6),  # disgust
}
_INTENSITY_SCALE = {1: 0.6, 2: 1.0}


@dataclasses.dataclass(frozen=True)
class Face:
  """A cartoon identity."""
  skin: Tuple[int, int, int]
  hair: Tuple[int, int, int]
  background: Tuple[int, int, int]
  aspect: float
  eye_spacing: float
  hair_style: int


def make_face(actor: int, seed: int = 0) -> Face:
  rng = _rng(seed, 303, actor)
  tone = rng.uniform(0.35, 1.0)
  skin = (int(120 + 120 * tone), int(80 + 110 * tone), int(60 + 100 * tone))
  return Face(skin=skin, hair=tuple(int(v) for v in rng.integers(10, 120, 3)),
              background=tuple(int(v) for v in rng.integers(60, 200, 3)), aspect=float(rng.uniform(0.7, 0.85)),
              eye_spacing=float(rng.uniform(0.36, 0.46)), hair_style=int(rng.integers(0, 3)))


def expression_course(num_frames: int, onset: float = 0.25, offset: float = 0.3) -> np.ndarray:
  """Onset-apex-offset weights [T] in [0, 1]: a smooth rise over the first `onset` of the clip, the apex, and a
  smooth fall over the last `offset`."""
  u = (np.arange(num_frames) + 0.5) / num_frames
  def smooth(v):
    v = np.clip(v, 0, 1)
    return v * v * (3 - 2 * v)
  return np.minimum(smooth(u / onset), smooth((1 - u) / offset))


def render_face(face: Face, size: Tuple[int, int], params: np.ndarray,
                offset: Tuple[float, float]) -> Tuple[np.ndarray, np.ndarray]:
  """One frame: (uint8 RGB [H, W, 3], landmarks float32 [5, 2] in ravdess.LANDMARK_NAMES order)."""
  import cv2  # pylint: disable=g-import-not-at-top
  height, width = size
  width_m, open_m, lift, brow_raise, brow_tilt, eye_open, asym = params
  image = np.empty((height, width, 3), np.uint8)
  image[:] = face.background
  b = 0.22 * height
  a = face.aspect * b
  cx, cy = width / 2 + offset[0], height / 2 + offset[1]
  def pt(x, y):
    return (int(round(x * 16)), int(round(y * 16)))  # 4 fractional bits for cv2's shift argument
  aa = cv2.LINE_AA
  if face.hair_style == 0:
    cv2.ellipse(image, pt(cx, cy - 0.15 * b), pt(1.08 * a, 1.02 * b), 0, 180, 360, face.hair, -1, aa, 4)
  elif face.hair_style == 1:
    cv2.ellipse(image, pt(cx, cy), pt(1.15 * a, 1.1 * b), 0, 0, 360, face.hair, -1, aa, 4)
  else:
    cv2.circle(image, pt(cx, cy - 1.05 * b), int(0.35 * a * 16), face.hair, -1, aa, 4)
  cv2.ellipse(image, pt(cx, cy), pt(a, b), 0, 0, 360, face.skin, -1, aa, 4)
  eyes = []
  dark = (30, 25, 25)
  for side in (-1, 1):
    ex, ey = cx + side * face.eye_spacing * a, cy - 0.2 * b
    rx, ry = 0.17 * a, max(0.02, 0.1 * b * eye_open)
    cv2.ellipse(image, pt(ex, ey), pt(rx, ry), 0, 0, 360, (245, 245, 245), -1, aa, 4)
    cv2.circle(image, pt(ex, ey), int(16 * min(0.45 * rx, ry)), dark, -1, aa, 4)
    by = ey - 0.2 * b - 0.09 * b * brow_raise
    inner, outer = ex - side * 0.18 * a, ex + side * 0.2 * a
    cv2.line(image, pt(inner, by + 0.07 * b * brow_tilt), pt(outer, by - 0.02 * b * brow_tilt), face.hair,
             max(2, int(0.025 * height)), aa, 4)
    eyes.append((ex, ey))
  nose = (cx, cy + 0.12 * b)
  cv2.line(image, pt(cx, cy - 0.08 * b), pt(*nose), tuple(int(0.75 * v) for v in face.skin),
           max(2, int(0.015 * height)), aa, 4)
  my, half = cy + 0.48 * b, 0.36 * a * (1 + width_m)
  corners = [(cx - half, my - 0.09 * b * lift * (1 - asym)), (cx + half, my - 0.09 * b * lift * (1 + asym))]
  top = (cx, my - 0.02 * b - 0.03 * b * lift)
  bottom = (cx, my + 0.16 * b * open_m + 0.02 * b)
  def curve(mid, n=12):
    s = np.linspace(0, 1, n)[:, None]
    p0, p2, p1 = np.array(corners[0]), np.array(corners[1]), 2 * np.array(mid) - (np.array(corners[0]) +
                                                                                   np.array(corners[1])) / 2
    return (1 - s) ** 2 * p0 + 2 * s * (1 - s) * p1 + s ** 2 * p2
  upper, lower = curve(top), curve(bottom)
  polygon = np.concatenate([upper, lower[::-1]])
  cv2.fillPoly(image, [np.round(polygon * 16).astype(np.int32)], (120, 30, 40), aa, 4)
  cv2.polylines(image, [np.round(upper * 16).astype(np.int32)], False, (150, 50, 60), max(2, int(0.012 * height)),
                aa, 4)
  landmarks = np.array([eyes[0], eyes[1], nose, corners[0], corners[1]], np.float32)
  return image, landmarks


def render_expression(face: Face, emotion: int, intensity: int, num_frames: int, size: Tuple[int, int],
                      seed: int) -> Tuple[np.ndarray, np.ndarray]:
  """(frames uint8 [T, H, W, 3], landmarks float32 [T, 5, 2]) of one cartoon recording."""
  rng = _rng(seed, 404)
  neutral, apex = np.array(_EXPRESSIONS[1]), np.array(_EXPRESSIONS[emotion])
  weights = expression_course(num_frames) * _INTENSITY_SCALE[intensity]
  phase, amp = rng.uniform(0, 2 * np.pi, 2), rng.uniform(0.005, 0.02, 2) * np.array(size[::-1])
  frames, points = [], []
  for t, w in enumerate(weights):
    offset = amp * np.sin(2 * np.pi * t / max(num_frames, 2) + phase)
    image, landmarks = render_face(face, size, neutral + w * (apex - neutral), (offset[0], offset[1]))
    frames.append(image)
    points.append(landmarks)
  return np.stack(frames), np.stack(points)


def ravdess_names(actor: int, recordings: str = 'default') -> List[Tuple[int, int, int, int, int, int, int]]:
  """The (modality, vocal, emotion, intensity, statement, repetition, actor) codes `write_ravdess` writes."""
  if recordings == 'default':
    out = [(1, 1, e, 1, 1, 1, actor) for e in range(1, 9)] + [(1, 2, 3, 1, 1, 1, actor), (2, 1, 1, 1, 1, 1, actor)]
  elif recordings == 'all':
    out = []
    for vocal, emotions in ((1, range(1, 9)), (2, ravdess.SONG_EMOTIONS)):
      if vocal == 2 and actor == ravdess.ACTOR_WITHOUT_SONG:
        continue
      for e in emotions:
        for i in ((1,) if e == 1 else (1, 2)):
          out += [(1, vocal, e, i, s, r, actor) for s in (1, 2) for r in (1, 2)]
  else:
    raise ValueError(f"recordings must be 'default' or 'all', got {recordings!r}")
  return out


def write_ravdess(out: str, num_actors: int = 2, num_frames: int = 24, size: Tuple[int, int] = (360, 640),
                  seed: int = 0, recordings: str = 'default') -> List[StandinVideo]:
  """Writes cartoon-face videos and landmark sidecars in the RAVDESS layout under `out`; returns them."""
  if not 1 <= num_actors <= ravdess.NUM_ACTORS:
    raise ValueError(f'num_actors must be in 1..{ravdess.NUM_ACTORS}, got {num_actors}')
  written = []
  for actor in range(1, num_actors + 1):
    face = make_face(actor, seed)
    for codes in ravdess_names(actor, recordings):
      modality, vocal, emotion, intensity, statement, repetition, _ = codes
      stem = '-'.join(f'{c:02d}' for c in codes)
      # The 01 and 02 files of one recording show the same pictures, as in the real set.
      recording_seed = int(_rng(seed, 606, actor, vocal, emotion, intensity, statement, repetition).integers(2 ** 31))
      frames, points = render_expression(face, emotion, intensity, num_frames, size, recording_seed)
      path = os.path.join(out, f'Actor_{actor:02d}', stem + '.mp4')
      video_files.write_video(path, frames, fps=RAVDESS_FPS)
      ravdess.write_landmarks(ravdess.landmarks_path(path), np.arange(num_frames), points)
      written.append(StandinVideo(path, ravdess.EMOTIONS[emotion - 1], f'{actor:02d}', num_frames,
                                  (0, num_frames), points))
  return written


# ------------------------------------------------------------------------------------------------ broken files


def moving_square(num_frames: int = 24, size: Tuple[int, int] = (48, 64)) -> np.ndarray:
  frames = np.zeros((num_frames, *size, 3), np.uint8)
  frames[:] = (30, 90, 150)
  for t in range(num_frames):
    x = (2 * t) % (size[1] - 12)
    frames[t, 10:26, x:x + 12] = (240, 210, 40)
  return frames


def avi_frame_chunks(data: bytes) -> Tuple[int, List[Tuple[int, int]]]:
  """(offset of the 'movi' list's payload, [(offset, size incl. 8-byte header) of each chunk in it])."""
  movi = data.find(b'movi')
  if movi < 8 or data[movi - 8:movi - 4] != b'LIST':
    raise ValueError('no movi list in the AVI')
  end = movi - 4 + struct.unpack('<I', data[movi - 4:movi])[0]
  chunks, pos = [], movi + 4
  while pos + 8 <= end:
    size = struct.unpack('<I', data[pos + 4:pos + 8])[0]
    chunks.append((pos, 8 + size + (size & 1)))
    pos += 8 + size + (size & 1)
  return movi + 4, chunks


def write_broken(out: str, seed: int = 0) -> Dict[str, str]:
  """Writes the broken-file fixtures into `out`; returns {fixture name: path} (see the module docstring)."""
  os.makedirs(out, exist_ok=True)
  rng = _rng(seed, 505)
  frames = moving_square()
  paths = {name: os.path.join(out, name) for name in
           ('truncated.mp4', 'truncated.avi', 'random.avi', 'empty.mp4', 'bitflip.avi', 'no_video.mp4')}
  good_mp4, good_avi = os.path.join(out, '.good.mp4'), os.path.join(out, '.good.avi')
  video_files.write_video(good_mp4, frames)
  video_files.write_video(good_avi, frames)
  with open(good_mp4, 'rb') as f:
    mp4 = f.read()
  with open(good_avi, 'rb') as f:
    avi = f.read()
  os.remove(good_mp4)
  os.remove(good_avi)
  # The MP4 muxer writes the moov index last: half the file has frame data and no index.
  with open(paths['truncated.mp4'], 'wb') as f:
    f.write(mp4[:len(mp4) // 2])
  # Cut at a chunk boundary after half the frames: the header still lists every frame.
  _, chunks = avi_frame_chunks(avi)
  with open(paths['truncated.avi'], 'wb') as f:
    f.write(avi[:chunks[len(chunks) // 2][0]])
  with open(paths['random.avi'], 'wb') as f:
    f.write(rng.bytes(4096))
  open(paths['empty.mp4'], 'wb').close()
  # One flipped bit in the payload of every frame chunk (headers left alone, so the container still opens).
  flipped = bytearray(avi)
  for pos, size in chunks:
    if size > 16:
      i = pos + 8 + int(rng.integers(0, size - 8))
      flipped[i] ^= 1 << int(rng.integers(0, 8))
  with open(paths['bitflip.avi'], 'wb') as f:
    f.write(bytes(flipped))
  _write_audio_only(paths['no_video.mp4'])
  return paths


def _write_audio_only(path: str) -> None:
  import av  # pylint: disable=g-import-not-at-top
  with av.open(path, mode='w', format='mp4') as container:
    stream = container.add_stream('aac', rate=16000)
    stream.layout = 'mono'
    tone = np.sin(2 * np.pi * 440 * np.arange(1024) / 16000).astype(np.float32)[None]
    for i in range(8):
      frame = av.AudioFrame.from_ndarray(tone, format='fltp', layout='mono')
      frame.sample_rate, frame.pts = 16000, i * 1024
      for packet in stream.encode(frame):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)


def write_all(out: str, weizmann_kwargs: Optional[dict] = None, ravdess_kwargs: Optional[dict] = None,
              seed: int = 0) -> Dict[str, object]:
  """Writes `<out>/weizmann`, `<out>/ravdess` and `<out>/broken`."""
  return {'weizmann': write_weizmann(os.path.join(out, 'weizmann'), seed=seed, **(weizmann_kwargs or {})),
          'ravdess': write_ravdess(os.path.join(out, 'ravdess'), seed=seed, **(ravdess_kwargs or {})),
          'broken': write_broken(os.path.join(out, 'broken'), seed=seed)}
