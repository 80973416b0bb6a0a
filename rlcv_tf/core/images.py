"""Image grids for people to look at: sample sheets saved as PNG and written to TensorBoard.

Images arrive as float arrays in [-1, 1] (tanh generators) or [0, 1] (Bernoulli / MNIST models), NHWC with 1 or 3
channels; `to_uint8` maps either range to uint8 by the `value_range` the caller states, so a grid never silently
rescales per image (which would hide a generator that outputs grey).
"""

import os
from typing import Optional, Sequence, Tuple

import numpy as np


def to_uint8(images, value_range: Tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
  lo, hi = value_range
  x = (np.asarray(images, dtype=np.float32) - lo) / (hi - lo)
  return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


def make_grid(images, rows: Optional[int] = None, cols: Optional[int] = None, pad: int = 1,
              value_range: Tuple[float, float] = (-1.0, 1.0), pad_value: int = 255) -> np.ndarray:
  """[N, H, W, C] -> one uint8 [rows*(H+pad)+pad, cols*(W+pad)+pad, 3] image, row-major, padded in white."""
  x = to_uint8(images, value_range)
  if x.ndim != 4 or x.shape[-1] not in (1, 3):
    raise ValueError(f'make_grid expects [N, H, W, 1 or 3] images, got shape {x.shape}')
  if x.shape[-1] == 1:
    x = np.repeat(x, 3, axis=-1)
  n, h, w, _ = x.shape
  if cols is None:
    cols = int(np.ceil(np.sqrt(n))) if rows is None else int(np.ceil(n / rows))
  if rows is None:
    rows = int(np.ceil(n / cols))
  if rows * cols < n:
    raise ValueError(f'a {rows}x{cols} grid cannot hold {n} images')
  grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), pad_value, np.uint8)
  for i in range(n):
    r, c = divmod(i, cols)
    y0, x0 = pad + r * (h + pad), pad + c * (w + pad)
    grid[y0:y0 + h, x0:x0 + w] = x[i]
  return grid


def save_png(array: np.ndarray, path: str, scale: int = 1) -> str:
  """Writes a uint8 HxWx3 array as PNG (nearest-neighbour upscaled by `scale`, so small images stay crisp)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  if scale > 1:
    array = np.repeat(np.repeat(array, scale, axis=0), scale, axis=1)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  Image.fromarray(array).save(path)
  return path


def save_grid(images, path: str, rows: Optional[int] = None, cols: Optional[int] = None,
              value_range: Tuple[float, float] = (-1.0, 1.0), scale: int = 1) -> str:
  return save_png(make_grid(images, rows, cols, value_range=value_range), path, scale=scale)


def stack_rows(grids: Sequence[np.ndarray], pad: int = 4, pad_value: int = 255) -> np.ndarray:
  """Stacks grids of equal width vertically (e.g. real | reconstruction | sample sheets)."""
  width = max(g.shape[1] for g in grids)
  out = []
  for g in grids:
    if g.shape[1] < width:
      g = np.concatenate([g, np.full((g.shape[0], width - g.shape[1], 3), pad_value, np.uint8)], axis=1)
    out.extend([g, np.full((pad, width, 3), pad_value, np.uint8)])
  return np.concatenate(out[:-1], axis=0)
