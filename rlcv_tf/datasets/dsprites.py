"""dSprites (Matthey et al. 2017) read safely, a generated stand-in on the same factor grid, and the DSRL toy world of
seed 002 (S = seed 002 line). NumPy only: launchers check data before TensorFlow loads.

The published file `dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz` holds
  imgs             uint8 [737280, 64, 64], values 0 / 1
  latents_values   float64 [737280, 6]   (color, shape, scale, orientation, posX, posY)
  latents_classes  int64 [737280, 6]     the index of each value on its grid
  metadata         a pickled dict
and image i has the classes whose mixed-radix number (sizes 1, 3, 6, 40, 32, 32; `LATENT_BASES`) is i.
`load_npz` reads it with `allow_pickle=False` and never touches 'metadata' (unpickling a file from a user's disk
can run code); an array stored as a pickle is refused with one message.

`synth_dsprites` renders the same grid (1 colour x 3 shapes x 6 scales x 40 orientations x 32 x 32 positions,
64x64 binary images) with the same keys, factor order and index order, for any subset of indices: square, ellipse
(2:1) and heart, half-size 10 * scale px, centre 14 + 36 * pos px (posX the column, posY the row), rotated by the
orientation. The values are dSprites' published grid (scale linspace(0.5, 1, 6), orientation linspace(0, 2 pi, 40),
positions linspace(0, 1, 32)); the drawing is this module's own, not pixel-identical to the published images.

`split_indices` fixes a train / val / test split of the 737,280 grid indices (a permutation with a constant seed,
the same for every run): val and test 5,000 each, train the rest.

The DSRL toy world (S:L335-349, Fig. 1.4, Table 1.1; spec 4 [proposal]): a 2x2 grid of cells in an 84x84 image,
each cell empty (0), a circle (type 1) or a square (type 2), jittered in size and position inside the cell; the
ground truth is the list of (type, [row, col]) of Table 1.1. `table_1_1()` is the table's own scene.
"""

import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from rlcv_tf.datasets import records

FILE_NAME = 'dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz'
SOURCE = 'https://github.com/deepmind/dsprites-dataset'
KEYS = ('imgs', 'latents_values', 'latents_classes')
LATENT_NAMES = ('color', 'shape', 'scale', 'orientation', 'posX', 'posY')
LATENT_SIZES = (1, 3, 6, 40, 32, 32)
LATENT_BASES = tuple(int(np.prod(LATENT_SIZES[i + 1:])) for i in range(len(LATENT_SIZES)))
NUM_IMAGES = int(np.prod(LATENT_SIZES))
IMAGE_SIZE = 64
LATENT_GRID = (np.array([1.0]), np.array([1.0, 2.0, 3.0]), np.linspace(0.5, 1.0, 6),
               np.linspace(0.0, 2 * np.pi, 40), np.linspace(0.0, 1.0, 32), np.linspace(0.0, 1.0, 32))
SHAPES = ('square', 'ellipse', 'heart')
SPLIT_SEED = 2017                  # the one split of the grid (a protocol constant, not a run seed)
HELD_OUT = 5_000                   # val and test images each
SPLITS = ('train', 'val', 'test')


# ------------------------------------------------------------------------------------------------ the file
def find_npz(data_dir: Optional[str]) -> Optional[str]:
  """The dSprites file: `data_dir` itself if it is the .npz, else data_dir/FILE_NAME; None if absent."""
  if not data_dir:
    return None
  if os.path.isfile(data_dir) and data_dir.endswith('.npz'):
    return data_dir
  path = os.path.join(data_dir, FILE_NAME)
  return path if os.path.isfile(path) else None


def load_npz(data_dir: Optional[str]) -> Dict[str, np.ndarray]:
  """{imgs, latents_values, latents_classes} of the published file, read with allow_pickle=False ('metadata' is
  never read). DatasetUnavailableError when the file is absent; DatasetError when a needed array is a pickle or the
  arrays disagree."""
  path = find_npz(data_dir)
  if path is None:
    raise records.unavailable('dSprites', data_dir, f'no {FILE_NAME}', f'<data_dir>/{FILE_NAME}', SOURCE,
                              'synth_dsprites')
  out = {}
  with np.load(path, allow_pickle=False) as archive:
    missing = [k for k in KEYS if k not in archive.files]
    if missing:
      raise records.DatasetError(f'{path}: missing the arrays {missing}; a dSprites file holds {list(KEYS)}')
    for key in KEYS:
      try:
        out[key] = archive[key]
      except ValueError as e:      # numpy: "Object arrays cannot be loaded when allow_pickle=False"
        raise records.DatasetError(f'{path}: the array {key!r} is stored as a pickle; refusing to unpickle a file '
                                   f'from disk (it can run code). Use the published file ({SOURCE}).') from e
  n = len(out['imgs'])
  if (out['imgs'].ndim != 3 or out['imgs'].shape[1:] != (IMAGE_SIZE, IMAGE_SIZE)
      or out['latents_values'].shape != (n, 6) or out['latents_classes'].shape != (n, 6)):
    raise records.DatasetError(f'{path}: expected imgs [N, 64, 64] and latents [N, 6], got '
                               f'{[out[k].shape for k in KEYS]}')
  return out


# ------------------------------------------------------------------------------------------------ the grid
def index_of(classes: np.ndarray) -> np.ndarray:
  """Image index of latent classes [..., 6] on the published grid."""
  return np.asarray(classes, np.int64) @ np.asarray(LATENT_BASES, np.int64)


def classes_of(index) -> np.ndarray:
  """Latent classes [..., 6] of image indices (inverse of `index_of`)."""
  index = np.asarray(index, np.int64)
  return np.stack([(index // b) % s for b, s in zip(LATENT_BASES, LATENT_SIZES)], axis=-1)


def values_of(classes: np.ndarray) -> np.ndarray:
  """Latent values [..., 6] (float64) of latent classes."""
  classes = np.asarray(classes, np.int64)
  return np.stack([LATENT_GRID[i][classes[..., i]] for i in range(6)], axis=-1)


def render(classes: np.ndarray, chunk: int = 1024) -> np.ndarray:
  """uint8 [N, 64, 64] binary sprites of latent classes [N, 6] (module docstring)."""
  classes = np.asarray(classes, np.int64).reshape(-1, 6)
  values = values_of(classes)
  out = np.zeros((len(classes), IMAGE_SIZE, IMAGE_SIZE), np.uint8)
  centres = np.arange(IMAGE_SIZE, dtype=np.float64) + 0.5
  rows, cols = np.meshgrid(centres, centres, indexing='ij')
  for start in range(0, len(classes), chunk):
    v = values[start:start + chunk, :, None, None]
    shape, scale, angle = classes[start:start + chunk, 1, None, None], v[:, 2], v[:, 3]
    cx, cy = 14.0 + 36.0 * v[:, 4], 14.0 + 36.0 * v[:, 5]
    dx, dy = cols[None] - cx, rows[None] - cy
    cos, sin = np.cos(angle), np.sin(angle)
    half = 10.0 * scale
    u, w = (cos * dx + sin * dy) / half, (-sin * dx + cos * dy) / half
    square = (np.abs(u) <= 1) & (np.abs(w) <= 1)
    ellipse = u ** 2 + (w / 0.5) ** 2 <= 1
    a, b = 1.15 * u, -1.15 * w + 0.15          # the heart (a^2 + b^2 - 1)^3 <= a^2 b^3, point down, fitted in +-1
    heart = (a ** 2 + b ** 2 - 1) ** 3 - a ** 2 * b ** 3 <= 0
    out[start:start + chunk] = np.where(shape == 0, square, np.where(shape == 1, ellipse, heart))
  return out


def synth_dsprites(num: Optional[int] = None, seed: int = 0,
                   indices: Optional[Sequence[int]] = None) -> Dict[str, np.ndarray]:
  """The stand-in for the images at `indices` of the grid, or at `num` indices drawn without replacement with
  `seed` (sorted): {imgs uint8 [N, 64, 64], latents_values float64 [N, 6], latents_classes int64 [N, 6]}, the
  published keys in their order. The whole grid (num=NUM_IMAGES) is 3 GB; ask for what you need."""
  if indices is None:
    if num is None:
      raise ValueError('synth_dsprites: give num or indices')
    indices = np.sort(np.random.default_rng(seed).choice(NUM_IMAGES, size=int(num), replace=False))
  classes = classes_of(np.asarray(indices, np.int64))
  return {'imgs': render(classes), 'latents_values': values_of(classes), 'latents_classes': classes}


def split_indices(split: str) -> np.ndarray:
  """The grid indices of a split (sorted): a fixed permutation (SPLIT_SEED); val and test HELD_OUT each."""
  if split not in SPLITS:
    raise records.DatasetError(f'dSprites split must be one of {SPLITS}, got {split!r}')
  perm = np.random.default_rng(SPLIT_SEED).permutation(NUM_IMAGES)
  parts = {'val': perm[:HELD_OUT], 'test': perm[HELD_OUT:2 * HELD_OUT], 'train': perm[2 * HELD_OUT:]}
  return np.sort(parts[split])


def load_split(source: str, data_dir: Optional[str], split: str, num: Optional[int] = None,
               seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
  """(float32 [N, 64, 64, 1] in {0, 1}, latent classes int64 [N, 6]) of a split of 'dsprites' (the file) or
  'synth_dsprites' (rendered); `num` keeps a random subset of that many (drawn with `seed`)."""
  indices = split_indices(split)
  if num is not None and num < len(indices):
    indices = np.sort(np.random.default_rng(seed).choice(indices, size=int(num), replace=False))
  if source == 'synth_dsprites':
    data = synth_dsprites(indices=indices)
  elif source == 'dsprites':
    full = load_npz(data_dir)
    if len(full['imgs']) != NUM_IMAGES:
      raise records.DatasetError(f'{find_npz(data_dir)}: holds {len(full["imgs"])} images, not the grid\'s '
                                 f'{NUM_IMAGES}')
    data = {k: full[k][indices] for k in KEYS}
  else:
    raise ValueError(f'unknown dSprites source {source!r}; valid: dsprites, synth_dsprites')
  return data['imgs'].astype(np.float32)[..., None], data['latents_classes']


# ------------------------------------------------------------------------------------------------ DSRL world
DSRL_SIZE = 84
DSRL_TYPES = ('empty', 'circle', 'square')


def dsrl_symbols(cells: np.ndarray) -> List[Tuple[int, List[int]]]:
  """The symbolic representation of one scene (Table 1.1): [(type, [row, col]), ...] in row-major order."""
  return [(int(cells[r, c]), [r, c]) for r in range(cells.shape[0]) for c in range(cells.shape[1]) if cells[r, c]]


def table_1_1() -> np.ndarray:
  """The scene of Table 1.1: type 1 at [0, 0], type 2 at [0, 1] and [1, 1]."""
  return np.array([[1, 2], [0, 2]], np.int64)


def render_dsrl(cells: np.ndarray, seed: int = 0, size: int = DSRL_SIZE, jitter: bool = True) -> np.ndarray:
  """float32 [N, size, size] in {0, 1} of scenes `cells` [N, 2, 2] (0 empty, 1 circle, 2 square). Circles have
  radius 0.21-0.29 of a cell, squares half-side 0.17-0.25, centres within +-0.1 cell of the cell's centre
  (`jitter`; otherwise the middle sizes at the centres)."""
  cells = np.asarray(cells, np.int64).reshape(-1, 2, 2)
  rng = np.random.default_rng(seed)
  cell = size / 2.0
  centres = np.arange(size, dtype=np.float64) + 0.5
  rows, cols = np.meshgrid(centres, centres, indexing='ij')
  out = np.zeros((len(cells), size, size), np.float32)
  for i in range(len(cells)):
    for r in range(2):
      for c in range(2):
        kind = cells[i, r, c]
        if not kind:
          continue
        size_u = rng.uniform(0, 1) if jitter else 0.5
        off = rng.uniform(-0.1, 0.1, size=2) if jitter else np.zeros(2)
        cy, cx = (r + 0.5 + off[0]) * cell, (c + 0.5 + off[1]) * cell
        if kind == 1:
          radius = (0.21 + 0.08 * size_u) * cell
          mask = (rows - cy) ** 2 + (cols - cx) ** 2 <= radius ** 2
        else:
          half = (0.17 + 0.08 * size_u) * cell
          mask = (np.abs(rows - cy) <= half) & (np.abs(cols - cx) <= half)
        out[i][mask] = 1.0
  return out


def dsrl_world(num: int, seed: int = 0, size: int = DSRL_SIZE) -> Dict[str, object]:
  """`num` random scenes (each cell empty, circle or square with probability 1/3, drawn with `seed`):
  {'imgs': float32 [N, size, size, 1], 'cells': int64 [N, 2, 2], 'symbols': [Table 1.1 list per scene]}."""
  rng = np.random.default_rng(seed)
  cells = rng.integers(0, 3, size=(int(num), 2, 2))
  imgs = render_dsrl(cells, seed=seed + 1, size=size)
  return {'imgs': imgs[..., None], 'cells': cells, 'symbols': [dsrl_symbols(c) for c in cells]}


DSRL_SPLIT_SEEDS = {'train': 0, 'val': 1, 'test': 2}   # protocol constants: the same scenes for every run


def dsrl_split(split: str, num: int) -> Dict[str, object]:
  """The fixed scenes of a split (`dsrl_world` with the split's constant seed)."""
  if split not in DSRL_SPLIT_SEEDS:
    raise records.DatasetError(f'DSRL split must be one of {tuple(DSRL_SPLIT_SEEDS)}, got {split!r}')
  return dsrl_world(num, seed=1000 * DSRL_SPLIT_SEEDS[split] + 7)
