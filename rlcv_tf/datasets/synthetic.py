"""Procedurally generated stand-ins for Birds, CelebA and LSUN bedrooms (spec ch5_6 §A5.2 and §B5) [P].

The thesis data sets (T:L4948-4953, L5956-5963) cannot be downloaded here, so tests and CPU runs use these
NumPy renderers. They are stand-ins only: `rlcv_tf.datasets.pipeline` serves them under their own names
(`synth_birds`, `synth_faces`, `synth_rooms`) and never substitutes them for a missing real data set.

* Every image is a deterministic function of (seed, split, index): the random parameters of image i come from
  `np.random.default_rng([seed, split_id, i])`, so any subset, order or chunking of indices gives the same pixels.
* Shapes are rasterised from signed distances with a one-pixel soft edge (coverage = clip(0.5 - d, 0, 1)). This
  anti-aliases like the spec's "render at 2x and area-downsample" at a quarter of the cost.
* Rendering is vectorised over the batch: per-image parameters are [N, 1, 1] arrays broadcast against the pixel
  grid, so 512 images at 64x64 take well under 2 s on one core.

Generators return uint8 [N, S, S, 3] images plus labels (and the bird bbox / face attributes).
"""

import dataclasses
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from rlcv_tf.datasets import records
from rlcv_tf.datasets import roi

SPLIT_IDS = {'train': 0, 'val': 1, 'test': 2}


# ------------------------------------------------------------------------------------------------ raster helpers


def _rngs(seed: int, split: str, indices: np.ndarray):
  split_id = SPLIT_IDS[split]
  return [np.random.default_rng([int(seed), split_id, int(i)]) for i in indices]


def _col(values) -> np.ndarray:
  """Per-image scalars [N] -> [N, 1, 1] float32 for broadcasting against the [1, S, S] pixel grid."""
  return np.asarray(values, np.float32).reshape(-1, 1, 1)


def _grid(size: int) -> Tuple[np.ndarray, np.ndarray]:
  """Pixel-centre coordinates (y, x), each [1, S, S] float32."""
  c = np.arange(size, dtype=np.float32) + 0.5
  return c[None, :, None] * np.ones((1, 1, size), np.float32), c[None, None, :] * np.ones((1, size, 1), np.float32)


def _coverage(sdf: np.ndarray) -> np.ndarray:
  """Signed distance in pixels (negative inside) -> soft coverage in [0, 1]."""
  return np.clip(0.5 - sdf, 0.0, 1.0)


def _ellipse_sdf(y, x, cy, cx, ry, rx, angle=0.0):
  """Approximate signed distance (pixels) to a rotated ellipse; exact for circles, good near the boundary."""
  dy, dx = y - cy, x - cx
  ca, sa = np.cos(angle), np.sin(angle)
  u = dx * ca + dy * sa
  v = -dx * sa + dy * ca
  r = np.sqrt((u / rx) ** 2 + (v / ry) ** 2)
  return (r - 1.0) * np.minimum(rx, ry)


def _polygon_sdf(y, x, verts_y, verts_x):
  """Signed distance to the convex polygon with counter-clockwise-or-clockwise vertices [K] of [N, 1, 1] arrays.

  The maximum over the edges' signed line distances: exact inside and along edges, a slight under-estimate near
  corners, which is all a one-pixel soft edge needs.
  """
  k = len(verts_y)
  # Orientation from the signed area so callers may list vertices either way round.
  area = sum(verts_x[i] * verts_y[(i + 1) % k] - verts_x[(i + 1) % k] * verts_y[i] for i in range(k))
  sign = np.where(area > 0, 1.0, -1.0).astype(np.float32)
  d = None
  for i in range(k):
    y0, x0, y1, x1 = verts_y[i], verts_x[i], verts_y[(i + 1) % k], verts_x[(i + 1) % k]
    ey, ex = y1 - y0, x1 - x0
    norm = np.sqrt(ey * ey + ex * ex) + 1e-6
    # Outward normal distance: positive outside this edge.
    di = sign * ((x - x0) * ey - (y - y0) * ex) / norm
    d = di if d is None else np.maximum(d, di)
  return d


def _segment_sdf(y, x, y0, x0, y1, x1, width):
  """Signed distance to a thick line segment (a stroke of the given full width)."""
  py, px = y - y0, x - x0
  ey, ex = y1 - y0, x1 - x0
  t = np.clip((py * ey + px * ex) / (ey * ey + ex * ex + 1e-6), 0.0, 1.0)
  return np.sqrt((py - t * ey) ** 2 + (px - t * ex) ** 2) - 0.5 * width


def _paint(canvas: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> np.ndarray:
  """Alpha-composites `colour` [N, 3] over `canvas` [N, 3, S, S] (in place) with coverage `alpha` [N, S, S].

  Channels-first while rendering: NumPy broadcasting with a trailing axis of 3 runs ~3x slower.
  """
  canvas += alpha[:, None] * (np.asarray(colour, np.float32)[:, :, None, None] - canvas)
  return canvas


def _smooth_fields(rngs, size: int, cells: int, channels: int) -> np.ndarray:
  """Low-frequency random fields [N, C, S, S] in [0, 1]: a cells x cells grid bilinearly upsampled."""
  grids = np.stack([r.random((channels, cells, cells)) for r in rngs]).astype(np.float32)
  # Separable linear interpolation matrix [S, cells] (cell centres spread over the canvas).
  pos = (np.arange(size, dtype=np.float32) + 0.5) / size * cells - 0.5
  lo = np.clip(np.floor(pos).astype(int), 0, cells - 1)
  hi = np.clip(lo + 1, 0, cells - 1)
  w = np.clip(pos - lo, 0.0, 1.0)
  m = np.zeros((size, cells), np.float32)
  m[np.arange(size), lo] += 1.0 - w
  m[np.arange(size), hi] += w
  return m @ grids @ m.T


def _to_uint8(canvas: np.ndarray) -> np.ndarray:
  """[N, 3, S, S] float in [0, 1] -> uint8 [N, S, S, 3]."""
  return np.clip(np.round(canvas.transpose(0, 2, 3, 1) * 255.0), 0, 255).astype(np.uint8)


def _chunked(fn, indices, split, chunk=64):
  """Runs `fn(indices_chunk, split) -> dict` on chunks and concatenates: small chunks stay in cache (~3x faster)."""
  indices = np.asarray(indices, np.int64).reshape(-1)
  parts = [fn(indices[i:i + chunk], split) for i in range(0, len(indices), chunk)] or [fn(indices, split)]
  return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


# ------------------------------------------------------------------------------------------------ SynthBirds

# Five body palettes (body, head, wing, beak), loosely cardinal / jay / goldfinch / sparrow / magpie.
BIRD_PALETTES = np.array([
    [[0.80, 0.10, 0.10], [0.65, 0.05, 0.05], [0.55, 0.08, 0.08], [0.95, 0.55, 0.10]],
    [[0.25, 0.45, 0.85], [0.15, 0.30, 0.70], [0.10, 0.20, 0.55], [0.15, 0.15, 0.15]],
    [[0.95, 0.85, 0.15], [0.20, 0.20, 0.20], [0.30, 0.30, 0.25], [0.90, 0.60, 0.30]],
    [[0.60, 0.45, 0.30], [0.50, 0.35, 0.25], [0.40, 0.28, 0.18], [0.35, 0.30, 0.25]],
    [[0.92, 0.92, 0.92], [0.08, 0.08, 0.08], [0.12, 0.12, 0.14], [0.25, 0.25, 0.25]],
], np.float32)
NUM_BIRD_SPECIES = 10  # 5 palettes x wing stripe on/off


@dataclasses.dataclass(frozen=True)
class SynthBirds:
  """Birds stand-in (spec §A5.2): species label = 2 * palette + stripe; returns the bird's tight bbox.

  Attributes:
    size: canvas side in pixels (the spec's 96; geometry scales with it).
    seed: content seed; image i of split s is a function of (seed, s, i) only.
  """
  size: int = 96
  seed: int = 0

  def generate(self, indices: Sequence[int], split: str = 'train') -> Dict[str, np.ndarray]:
    """Returns {'image': uint8 [N,S,S,3], 'label': int64 [N], 'bbox': float32 [N,4] (x, y, w, h) in pixels}.

    The bbox is the tight box of every pixel the bird covers (coverage > 0), so an ROI crop built from it
    contains the whole bird.
    """
    return _chunked(self._generate, indices, split)

  def _generate(self, indices, split):
    rngs = _rngs(self.seed, split, indices)
    n, s = len(indices), self.size
    k = s / 96.0  # geometry is specified on the 96x96 canvas
    species = np.array([r.integers(NUM_BIRD_SPECIES) for r in rngs])
    palette, stripe = species // 2, species % 2
    angle = np.array([np.deg2rad(r.uniform(-30, 30)) for r in rngs], np.float32)
    flip = np.array([r.random() < 0.5 for r in rngs])
    scale = np.array([r.uniform(0.8, 1.2) for r in rngs], np.float32) * k
    cy = s / 2 + np.array([r.uniform(-6, 6) for r in rngs], np.float32) * k
    cx = s / 2 + np.array([r.uniform(-6, 6) for r in rngs], np.float32) * k
    tint = np.stack([r.uniform(-0.06, 0.06, 3) for r in rngs]).astype(np.float32)

    y, x = _grid(s)
    # Pixel -> bird frame: translate, rotate by -angle, undo scale, mirror for flipped birds.
    ca, sa = _col(np.cos(angle)), _col(np.sin(angle))
    dy, dx = y - _col(cy), x - _col(cx)
    u = (dx * ca + dy * sa) / _col(scale)
    v = (-dx * sa + dy * ca) / _col(scale)
    u = np.where(_col(flip) > 0, -u, u)
    px = _col(scale)  # bird-frame distances are multiplied by this to get pixels

    # Background clutter: three colour fields mixed by smooth weights, plus 0-3 branch strokes.
    colours = np.stack([r.uniform(0.15, 0.85, (3, 3)) for r in rngs]).astype(np.float32)  # [N, field, rgb]
    weights = _smooth_fields(rngs, s, 4, 3) + 1e-3  # [N, field, S, S]
    weights /= weights.sum(1, keepdims=True)
    canvas = sum(weights[:, f, None] * colours[:, f, :, None, None] for f in range(3))
    for b in range(3):
      on = np.array([r.random() < 0.45 for r in rngs])
      ends = np.stack([r.uniform(0, s, 4) for r in rngs]).astype(np.float32)
      width = np.array([r.uniform(1.5, 3.5) for r in rngs], np.float32) * k
      alpha = _coverage(_segment_sdf(y, x, _col(ends[:, 0]), _col(ends[:, 1]), _col(ends[:, 2]),
                                     _col(ends[:, 3]), _col(width))) * _col(on)
      canvas = _paint(canvas, alpha, np.tile([[0.35, 0.24, 0.12]], (n, 1)).astype(np.float32))

    pal = BIRD_PALETTES[palette] + tint[:, None, :]  # [N, 4, 3]
    shapes = [
        # (sdf in pixels, colour [N,3]); drawn back to front.
        (_polygon_sdf(v, u, [-1.0, -5.0, 5.0], [-14.0, -31.0, -29.0]) * px, pal[:, 2]),  # tail
        (_ellipse_sdf(v, u, 0.0, 0.0, 11.0, 18.0) * px, pal[:, 0]),                                      # body
        (_ellipse_sdf(v, u, -10.0, 15.0, 8.0, 8.0) * px, pal[:, 1]),                                     # head
        (_polygon_sdf(v, u, [-13.0, -7.0, -10.0], [21.0, 21.0, 30.0]) * px, pal[:, 3]),  # beak
        (_ellipse_sdf(v, u, -1.0, -3.0, 6.0, 12.0, np.deg2rad(12.0)) * px, pal[:, 2]),                   # wing
    ]
    union = np.zeros((n, s, s), np.float32)
    for sdf, colour in shapes:
      alpha = _coverage(sdf)
      canvas = _paint(canvas, alpha, colour)
      union = np.maximum(union, alpha)
    # Wing stripe: a pale band across the wing for odd species.
    band = np.maximum(_ellipse_sdf(v, u, -1.0, -3.0, 6.0, 12.0, np.deg2rad(12.0)), (np.abs(u + 2.0) - 1.6)) * px
    canvas = _paint(canvas, _coverage(band) * _col(stripe), np.tile([[0.97, 0.97, 0.90]], (n, 1)).astype(np.float32))
    canvas = _paint(canvas, _coverage(_ellipse_sdf(v, u, -11.5, 18.0, 1.8, 1.8) * px),
                    np.tile([[0.02, 0.02, 0.02]], (n, 1)).astype(np.float32))  # eye

    bbox = np.zeros((n, 4), np.float32)
    rows, cols = union.max(2) > 0, union.max(1) > 0
    for i in range(n):
      ry, rx = np.flatnonzero(rows[i]), np.flatnonzero(cols[i])
      if len(ry) == 0:  # bird entirely off-canvas cannot happen with the jitter above; keep the box sane anyway
        bbox[i] = (0, 0, s, s)
        continue
      bbox[i] = (rx[0], ry[0], rx[-1] + 1 - rx[0], ry[-1] + 1 - ry[0])
    return {'image': _to_uint8(canvas), 'label': species.astype(np.int64), 'bbox': bbox,
            'mask': union}


# ------------------------------------------------------------------------------------------------ SynthFaces

FACE_ATTRIBUTE_NAMES = ('Male', 'Smiling', 'Eyeglasses', 'Wearing_Hat', 'Bangs', 'Black_Hair', 'Blond_Hair',
                        'Pale_Skin', 'Mouth_Slightly_Open', 'Mustache', 'Wearing_Earrings', 'Narrow_Eyes')
# Independent attributes' probabilities (spec §B5).
FACE_INDEPENDENT_P = {'Male': 0.45, 'Smiling': 0.5, 'Eyeglasses': 0.25, 'Wearing_Hat': 0.2, 'Bangs': 0.25,
                      'Pale_Skin': 0.2, 'Mouth_Slightly_Open': 0.4, 'Narrow_Eyes': 0.2}
FACE_HAIR_P = {'black': 0.3, 'blond': 0.2, 'brown': 0.5}
FACE_MUSTACHE_P_MALE = 0.3        # never for non-Male
FACE_EARRINGS_P = {False: 0.2, True: 0.05}  # keyed by Male; "mostly non-Male" [P] for the Male rate
FACE_WIDTHS = (14.0, 15.5, 17.0, 18.5, 20.0)   # half-widths at 64 px
FACE_EYE_SPACINGS = (6.0, 7.0, 8.0, 9.0)       # half-distance between the eyes at 64 px
NUM_FACE_IDENTITIES = len(FACE_WIDTHS) * len(FACE_EYE_SPACINGS)
_HAIR_COLOURS = {'black': (0.08, 0.07, 0.07), 'blond': (0.92, 0.80, 0.42), 'brown': (0.42, 0.27, 0.14)}


def face_attribute_marginals() -> Dict[str, float]:
  """P(attribute = +1) implied by the sampling rules, for checking samples against."""
  p = dict(FACE_INDEPENDENT_P)
  p['Black_Hair'] = FACE_HAIR_P['black']
  p['Blond_Hair'] = FACE_HAIR_P['blond']
  p['Mustache'] = FACE_INDEPENDENT_P['Male'] * FACE_MUSTACHE_P_MALE
  p['Wearing_Earrings'] = (FACE_INDEPENDENT_P['Male'] * FACE_EARRINGS_P[True]
                           + (1 - FACE_INDEPENDENT_P['Male']) * FACE_EARRINGS_P[False])
  return {name: p[name] for name in FACE_ATTRIBUTE_NAMES}


@dataclasses.dataclass(frozen=True)
class SynthFaces:
  """CelebA stand-in (spec §B5): 12 CelebA-named binary attributes in {-1, +1} and 20 identities.

  Identity = 4 * width_index + eye_spacing_index (5 face widths x 4 eye spacings). Nuisances: position +-2 px,
  scale +-8 %, inner-feature shift +-2 px and a background colour gradient (all at 64 px, scaled with size).
  """
  size: int = 64
  seed: int = 0
  num_attributes: int = len(FACE_ATTRIBUTE_NAMES)

  def __post_init__(self):
    if not 1 <= self.num_attributes <= len(FACE_ATTRIBUTE_NAMES):
      raise ValueError(f'num_attributes must be in [1, {len(FACE_ATTRIBUTE_NAMES)}], got {self.num_attributes}')

  @property
  def attribute_names(self) -> Tuple[str, ...]:
    return FACE_ATTRIBUTE_NAMES[:self.num_attributes]

  def sample_attributes(self, indices: Sequence[int], split: str = 'train') -> Tuple[np.ndarray, np.ndarray]:
    """Returns (attributes float32 [N, 12] in {-1, +1}, identity int64 [N]) without rendering."""
    attrs, ident, _ = self._sample(_rngs(self.seed, split, np.asarray(indices).reshape(-1)))
    return attrs, ident

  def _sample(self, rngs):
    n = len(rngs)
    a = {name: np.zeros(n, bool) for name in FACE_ATTRIBUTE_NAMES}
    ident = np.zeros(n, np.int64)
    hair = []
    for i, r in enumerate(rngs):
      # A fixed draw order keeps each image's attributes a function of its own generator only.
      for name, p in FACE_INDEPENDENT_P.items():
        a[name][i] = r.random() < p
      h = r.choice(list(FACE_HAIR_P), p=list(FACE_HAIR_P.values()))
      hair.append(h)
      a['Black_Hair'][i], a['Blond_Hair'][i] = h == 'black', h == 'blond'
      a['Mustache'][i] = a['Male'][i] and r.random() < FACE_MUSTACHE_P_MALE
      a['Wearing_Earrings'][i] = r.random() < FACE_EARRINGS_P[bool(a['Male'][i])]
      ident[i] = r.integers(len(FACE_WIDTHS)) * len(FACE_EYE_SPACINGS) + r.integers(len(FACE_EYE_SPACINGS))
    attrs = np.stack([np.where(a[name], 1.0, -1.0) for name in FACE_ATTRIBUTE_NAMES], 1).astype(np.float32)
    return attrs, ident, hair

  def generate(self, indices: Sequence[int], split: str = 'train',
               overrides: Optional[Dict[str, bool]] = None) -> Dict[str, np.ndarray]:
    """Returns {'image': uint8 [N,S,S,3], 'label': int64 identity [N], 'attributes': float32 [N, num_attributes]}.

    `overrides` ({name: bool}) forces attributes while keeping every other random choice (identity, nuisances,
    colours) of each index: the same faces with and without e.g. 'Smiling'. 'Black_Hair' / 'Blond_Hair' set the
    hair colour (False gives brown).
    """
    unknown = set(overrides or {}) - set(FACE_ATTRIBUTE_NAMES)
    if unknown:
      raise ValueError(f'unknown attributes {sorted(unknown)}; valid: {FACE_ATTRIBUTE_NAMES}')
    return _chunked(lambda i, sp: self._generate(i, sp, overrides or {}), indices, split)

  def _generate(self, indices, split, overrides):
    rngs = _rngs(self.seed, split, indices)
    attrs, ident, hair = self._sample(rngs)
    for name, value in overrides.items():
      attrs[:, FACE_ATTRIBUTE_NAMES.index(name)] = 1.0 if value else -1.0
      if name in ('Black_Hair', 'Blond_Hair'):
        other = 6 if name == 'Black_Hair' else 5
        if value:
          attrs[:, other] = -1.0
        hair = ['black' if a[5] > 0 else 'blond' if a[6] > 0 else 'brown' for a in attrs]
    on = {name: _col(attrs[:, j] > 0) for j, name in enumerate(FACE_ATTRIBUTE_NAMES)}
    n, s = len(indices), self.size
    k = s / 64.0
    # Nuisances (drawn after the attributes, so adding nuisances never changes attributes).
    jit = np.stack([r.uniform(-2, 2, 2) for r in rngs]).astype(np.float32) * k
    scale = np.array([r.uniform(0.92, 1.08) for r in rngs], np.float32) * k
    pose = np.stack([r.uniform(-2, 2, 2) for r in rngs]).astype(np.float32) * k
    bg = np.stack([r.uniform(0.2, 0.9, (2, 3)) for r in rngs]).astype(np.float32)
    bg_dir = np.array([r.uniform(0, 2 * np.pi) for r in rngs], np.float32)
    skin = np.stack([r.uniform(0.55, 0.75) * np.array([1.0, 0.78, 0.62]) for r in rngs]).astype(np.float32)
    hat_colour = np.stack([r.uniform(0.1, 0.9, 3) for r in rngs]).astype(np.float32)
    skin = np.where(attrs[:, 7:8] > 0, 0.35 + 0.65 * np.array([[0.98, 0.90, 0.86]], np.float32) * 1.0, skin)

    y, x = _grid(s)
    cy, cx = _col(34 * k + jit[:, 0]), _col(32 * k + jit[:, 1])
    sc = _col(scale)
    width = np.array([FACE_WIDTHS[i // len(FACE_EYE_SPACINGS)] for i in ident], np.float32)
    spacing = np.array([FACE_EYE_SPACINGS[i % len(FACE_EYE_SPACINGS)] for i in ident], np.float32)
    a_, b_ = _col(width) * sc, 22.0 * sc
    male = on['Male']

    # Background: a linear gradient between two colours along a random direction.
    t = ((x - s / 2) * _col(np.cos(bg_dir)) + (y - s / 2) * _col(np.sin(bg_dir))) / s + 0.5
    t = np.clip(t, 0, 1)[:, None]
    canvas = bg[:, 0, :, None, None] * (1 - t) + bg[:, 1, :, None, None] * t

    hair_rgb = np.array([_HAIR_COLOURS[h] for h in hair], np.float32)
    brow = cy - 0.38 * b_
    # Hair behind the head (slightly larger ellipse), then the face.
    canvas = _paint(canvas, _coverage(_ellipse_sdf(y, x, cy - 2 * sc, cx, b_ + 3 * sc, a_ + 3 * sc)), hair_rgb)
    # Face: an ellipse, or a squarer superellipse (p = 4) for Male.
    dyn, dxn = np.abs(y - cy) / b_, np.abs(x - cx) / a_
    p = np.where(male > 0, 4.0, 2.0)
    face_sdf = ((dyn ** p + dxn ** p) ** (1.0 / p) - 1.0) * np.minimum(a_, b_)
    canvas = _paint(canvas, _coverage(face_sdf), skin)
    # Hair cap above the brow line; bangs extend it over the forehead.
    cap_line = np.where(on['Bangs'] > 0, brow + 0.05 * b_, brow - 0.22 * b_)
    cap = np.maximum(_ellipse_sdf(y, x, cy - 2 * sc, cx, b_ + 3 * sc, a_ + 3 * sc), y - cap_line)
    canvas = _paint(canvas, _coverage(cap), hair_rgb)
    # Hat: a crown over the top of the head plus a brim band.
    crown = np.maximum(np.maximum(np.abs(x - cx) - (a_ + 2 * sc), y - (cy - 0.62 * b_)), (cy - 1.25 * b_) - y)
    brim = np.maximum(np.abs(x - cx) - (a_ + 6 * sc), np.abs(y - (cy - 0.62 * b_)) - 1.5 * sc)
    canvas = _paint(canvas, _coverage(np.minimum(crown, brim)) * on['Wearing_Hat'], hat_colour)

    fy, fx = cy + _col(pose[:, 0]), cx + _col(pose[:, 1])  # inner features move together ("pose")
    eye_y = fy - 0.15 * b_
    dark = np.tile([[0.05, 0.04, 0.04]], (n, 1)).astype(np.float32)
    sp = _col(spacing) * sc
    for side in (-1.0, 1.0):
      ex = fx + side * sp
      round_eye = _ellipse_sdf(y, x, eye_y, ex, 2.2 * sc, 2.2 * sc)
      narrow_eye = _ellipse_sdf(y, x, eye_y, ex, 0.8 * sc, 2.6 * sc)
      canvas = _paint(canvas, _coverage(np.where(on['Narrow_Eyes'] > 0, narrow_eye, round_eye)), dark)
      ring = np.abs(np.sqrt((y - eye_y) ** 2 + (x - ex) ** 2) - 4.2 * sc) - 0.8 * sc
      canvas = _paint(canvas, _coverage(ring) * on['Eyeglasses'], dark)
      ear = _ellipse_sdf(y, x, cy + 0.05 * b_, cx + side * (a_ + 0.5 * sc), 1.4 * sc, 1.4 * sc)
      canvas = _paint(canvas, _coverage(ear) * on['Wearing_Earrings'],
                      np.tile([[0.98, 0.82, 0.15]], (n, 1)).astype(np.float32))
    bridge = _segment_sdf(y, x, eye_y, fx - sp + 4.2 * sc, eye_y, fx + sp - 4.2 * sc, 1.4 * sc)
    canvas = _paint(canvas, _coverage(bridge) * on['Eyeglasses'], dark)

    # Mouth: open mouth is a dark ellipse; then an upward arc (smile) or a straight line.
    mouth_y, mouth_w = fy + 0.45 * b_, 0.42 * a_
    canvas = _paint(canvas, _coverage(_ellipse_sdf(y, x, mouth_y + 1.2 * sc, fx, 2.6 * sc, 0.7 * mouth_w))
                    * on['Mouth_Slightly_Open'], np.tile([[0.25, 0.02, 0.05]], (n, 1)).astype(np.float32))
    rel = np.clip((x - fx) / mouth_w, -1.0, 1.0)
    curve = mouth_y + np.where(on['Smiling'] > 0, 4.0 * sc * (1 - rel ** 2) - 2.0 * sc, 0.0)
    lip = np.maximum(np.abs(y - curve) - 0.8 * sc, np.abs(x - fx) - mouth_w)
    canvas = _paint(canvas, _coverage(lip), np.tile([[0.45, 0.05, 0.10]], (n, 1)).astype(np.float32))
    stache = np.maximum(np.abs(y - (mouth_y - 3.6 * sc)) - 1.3 * sc, np.abs(x - fx) - 0.9 * mouth_w)
    canvas = _paint(canvas, _coverage(stache) * on['Mustache'], hair_rgb * 0.6)
    nose = _segment_sdf(y, x, fy - 0.05 * b_, fx, fy + 0.22 * b_, fx + 0.5 * sc, 1.2 * sc)
    canvas = _paint(canvas, _coverage(nose) * 0.5, skin * 0.7)
    return {'image': _to_uint8(canvas), 'label': ident,
            'attributes': attrs[:, :self.num_attributes]}


# ------------------------------------------------------------------------------------------------ SynthRooms

NUM_ROOM_LAYOUTS = 6  # bed left / centre / right x window yes / no


@dataclasses.dataclass(frozen=True)
class SynthRooms:
  """LSUN-bedroom stand-in (spec §A5.2): a one-point-perspective room with a bed, a lamp and maybe a window.

  Label = 2 * bed_position + has_window, bed_position in {0: left, 1: centre, 2: right}.
  """
  size: int = 72
  seed: int = 0

  def generate(self, indices: Sequence[int], split: str = 'train') -> Dict[str, np.ndarray]:
    """Returns {'image': uint8 [N,S,S,3], 'label': int64 [N]}."""
    return _chunked(self._generate, indices, split)

  def _generate(self, indices, split):
    rngs = _rngs(self.seed, split, indices)
    n, s = len(indices), self.size
    label = np.array([r.integers(NUM_ROOM_LAYOUTS) for r in rngs], np.int64)
    bed_pos, window = label // 2, label % 2
    vy = _col([s * r.uniform(0.38, 0.5) for r in rngs])
    vx = _col([s * r.uniform(0.4, 0.6) for r in rngs])
    hh = _col([s * r.uniform(0.16, 0.24) for r in rngs])  # back-wall half height
    hw = _col([s * r.uniform(0.2, 0.3) for r in rngs])    # back-wall half width
    wall = np.stack([r.uniform(0.45, 0.9, 3) for r in rngs]).astype(np.float32)
    floor = np.stack([r.uniform(0.2, 0.6) * np.array([1.0, 0.75, 0.5]) for r in rngs]).astype(np.float32)
    ceiling = np.clip(wall + 0.12, 0, 1)
    blanket = np.stack([r.uniform(0.1, 0.95, 3) for r in rngs]).astype(np.float32)
    illum = _col([r.uniform(0.6, 1.1) for r in rngs])[:, None]

    y, x = _grid(s)
    # One-point perspective: the normalised "box distance" t from the vanishing point decides the surface. t <= 1
    # is the back wall; otherwise the dominant axis picks a side wall (|dx|) or floor/ceiling (|dy|).
    ty, tx = np.abs(y - vy) / hh, np.abs(x - vx) / hw
    t = np.maximum(ty, tx)
    shade = (0.55 + 0.45 / np.maximum(t, 1.0))[:, None]  # nearer (larger t) is darker: a lamp-lit far wall
    side = tx >= ty
    c4 = lambda rgb: rgb[:, :, None, None]  # noqa: E731  [N, 3] -> [N, 3, 1, 1]
    canvas = np.where((t <= 1)[:, None], c4(wall) * 0.95,
                      np.where(side[:, None], c4(wall) * 0.8 * shade,
                               np.where((y > vy)[:, None], c4(floor) * shade, c4(ceiling) * shade)))
    canvas = canvas.astype(np.float32)
    # Window on the back wall: sky gradient plus a frame cross.
    wy0, wy1 = vy - 0.75 * hh, vy + 0.05 * hh
    wx0 = vx + _col([r.uniform(-0.8, 0.1) for r in rngs]) * hw
    wx1 = wx0 + 0.6 * hw
    win = np.maximum(np.maximum(wy0 - y, y - wy1), np.maximum(wx0 - x, x - wx1))
    sky_t = np.clip((y - wy0) / (wy1 - wy0), 0, 1)[:, None]
    sky = (np.array([0.45, 0.7, 1.0], np.float32)[None, :, None, None] * (1 - sky_t)
           + np.array([0.85, 0.92, 1.0], np.float32)[None, :, None, None] * sky_t)
    a_win = (_coverage(win) * _col(window))[:, None]
    canvas = canvas * (1 - a_win) + sky * a_win
    frame = np.minimum(np.abs(x - 0.5 * (wx0 + wx1)), np.abs(y - 0.5 * (wy0 + wy1))) - 0.6
    canvas = _paint(canvas, _coverage(np.maximum(frame, win)) * _col(window),
                    np.tile([[0.95, 0.95, 0.95]], (n, 1)).astype(np.float32))

    # Bed: a top face (trapezoid narrowing towards the vanishing point) and a darker front face.
    bx = _col(np.array([0.24, 0.5, 0.76], np.float32)[bed_pos]) * s + _col([r.uniform(-2, 2) for r in rngs])
    half = _col([r.uniform(0.17, 0.22) for r in rngs]) * s
    front_y = _col([r.uniform(0.78, 0.86) for r in rngs]) * s
    back_y = vy + 1.05 * hh
    depth_k = (back_y - vy) / (front_y - vy)  # perspective shrink of the far edge
    far_l, far_r = vx + (bx - half - vx) * depth_k, vx + (bx + half - vx) * depth_k
    top = _polygon_sdf(y, x, [front_y, front_y, back_y, back_y], [bx - half, bx + half, far_r, far_l])
    canvas = _paint(canvas, _coverage(top), blanket)
    pillow_y = back_y + 0.25 * (front_y - back_y)
    pillow = np.maximum(top, y - pillow_y)
    canvas = _paint(canvas, _coverage(pillow), np.tile([[0.96, 0.96, 0.93]], (n, 1)).astype(np.float32))
    front = np.maximum(np.maximum(front_y - y, y - (front_y + 0.09 * s)), np.abs(x - bx) - half)
    canvas = _paint(canvas, _coverage(front), blanket * 0.55)
    # Lamp beside the bed: stem and a glowing shade.
    lamp_x = np.where(_col(bed_pos) == 2, bx - half - 0.07 * s, bx + half + 0.07 * s)
    lamp_y = back_y + 0.1 * (front_y - back_y)
    stem = _segment_sdf(y, x, lamp_y, lamp_x, lamp_y - 0.12 * s, lamp_x, 1.0)
    canvas = _paint(canvas, _coverage(stem), np.tile([[0.2, 0.2, 0.2]], (n, 1)).astype(np.float32))
    shade_poly = _polygon_sdf(y, x, [lamp_y - 0.12 * s, lamp_y - 0.12 * s, lamp_y - 0.2 * s, lamp_y - 0.2 * s],
                              [lamp_x - 0.05 * s, lamp_x + 0.05 * s, lamp_x + 0.03 * s, lamp_x - 0.03 * s])
    canvas = _paint(canvas, _coverage(shade_poly), np.tile([[1.0, 0.9, 0.6]], (n, 1)).astype(np.float32))
    canvas = canvas * illum
    return {'image': _to_uint8(canvas), 'label': label}


def make_generator(name: str, size: int, seed: int = 0, num_attributes: Optional[int] = None):
  """The generator object for a stand-in name ('synth_birds' | 'synth_faces' | 'synth_rooms')."""
  if name == 'synth_birds':
    return SynthBirds(size=size, seed=seed)
  if name == 'synth_faces':
    return SynthFaces(size=size, seed=seed, num_attributes=num_attributes or len(FACE_ATTRIBUTE_NAMES))
  if name == 'synth_rooms':
    return SynthRooms(size=size, seed=seed)
  raise ValueError(f'unknown stand-in {name!r}; valid: synth_birds, synth_faces, synth_rooms')


# Canvas side at 64 px output and the crop each stand-in gets (spec §A5.2): birds the CUB ROI on a 96 canvas, faces
# the whole 64 canvas, rooms the LSUN shorter-side square on a 72 canvas.
_BASE_CANVAS = {'synth_birds': 96, 'synth_faces': 64, 'synth_rooms': 72}
_NUM_CLASSES = {'synth_birds': NUM_BIRD_SPECIES, 'synth_faces': NUM_FACE_IDENTITIES, 'synth_rooms': NUM_ROOM_LAYOUTS}
ROOM_CROP = records.ShorterSideCrop(64.0 / 72.0)


def make_source(name: str, split: str, num_examples: int, max_resolution: int = 64, data_seed: int = 0,
                num_attributes: Optional[int] = None) -> records.Generated:
  """The stand-in `name` as a `records.Generated` split for the pipeline.

  The canvas grows with the largest output side (`max_resolution`) so a 128-px copy is rendered, not upsampled.
  """
  if name not in _BASE_CANVAS:
    raise ValueError(f'unknown stand-in {name!r}; valid: {", ".join(sorted(_BASE_CANVAS))}')
  if split not in SPLIT_IDS:
    raise records.DatasetError(f'split must be one of {tuple(SPLIT_IDS)}, got {split!r}')
  base = _BASE_CANVAS[name]
  canvas = max(base, int(np.ceil(base * max_resolution / 64)))
  gen = make_generator(name, canvas, data_seed, num_attributes)
  names = gen.attribute_names if name == 'synth_faces' else ()

  def generate(indices):
    out = gen.generate(np.asarray(indices, np.int64), split)
    n = len(indices)
    row = {'image': out['image'], 'label': out['label'].astype(np.int64)}
    if 'bbox' in out:
      row['box'] = roi.bird_roi(out['bbox'])
    else:
      row['box'] = np.tile(np.array([[0, 0, canvas, canvas]], np.float32), (n, 1))
    if names:
      row['attributes'] = out['attributes'].astype(np.float32)
    return row

  return records.Generated(generate=generate, size=canvas, num_examples=int(num_examples),
                           crop=ROOM_CROP if name == 'synth_rooms' else None, attribute_names=tuple(names),
                           num_classes=_NUM_CLASSES[name], display_name=name)
