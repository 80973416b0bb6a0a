"""Affine grid generator and bilinear sampler of the BlockSTN (thesis 7.4.2 and 7.b; spec ch7 §3.2, item 1).

The thesis's transformer T is a BlockSTN: the channels are split into blocks and "each block is processed following
the original STN (Jaderberg et al., 2015)" (T:L6527-6540, L6897-6906): a localisation net outputs the 6 affine
parameters, a grid generator builds the sampling grid, and a sampler warps the block. The thesis does not fix the
coordinate convention; spec §3.2 takes PyTorch's `affine_grid` / `grid_sample` semantics with `align_corners=False`
and zero padding:

  * Normalised coordinates: x, y in [-1, 1] span the *edges* of the image, so output pixel i of n has its centre at
    (2i + 1)/n - 1 (`normalized_coordinates`). Pixel (row r, column c) of the output reads the source point
    (x_s, y_s) = theta @ [x_c, y_r, 1]; theta [B, 2, 3], grid [B, h, w, 2] holding (x, y) in that order.
  * A normalised source point maps to the continuous pixel index u = ((x + 1) W - 1) / 2 (column) and
    v = ((y + 1) H - 1) / 2 (row), where integer u, v are pixel centres (`grid_to_pixels`).
  * Bilinear sampling with zero padding: the four neighbours floor/ceil of (v, u) are blended with the usual
    weights, and a neighbour outside the image counts as 0. So near the border the output fades towards 0 (it is
    `scipy.ndimage.map_coordinates(order=1, mode='grid-constant', cval=0)`, not mode='constant').

Everything is plain TF (`tf.gather` on a flattened map; tensorflow-addons is deprecated), differentiable w.r.t. the
image and theta (the gradient w.r.t. theta flows through the bilinear weights; it is zero where all four neighbours
are outside), and shape-polymorphic in the batch, so it runs inside `tf.function` with a dynamic batch. Coordinates
and weights are computed in float32 (float64 when the grid or image is float64) and the output has the image's
dtype, so float16 / bfloat16 feature maps are sampled without losing sub-pixel precision in the coordinates.
"""

from typing import Union

import tensorflow as tf

IntLike = Union[int, tf.Tensor]


def _coordinate_dtype(*dtypes) -> tf.DType:
  """float64 if any input is float64, else float32 (half-precision coordinates lose sub-pixel accuracy)."""
  return tf.float64 if any(tf.as_dtype(d) == tf.float64 for d in dtypes) else tf.float32


def identity_theta(batch: IntLike, dtype=tf.float32) -> tf.Tensor:
  """[batch, 2, 3] identity affine matrices [[1, 0, 0], [0, 1, 0]]."""
  eye = tf.constant([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype)
  return tf.tile(eye[tf.newaxis], tf.stack([batch, 1, 1]))


def shift_theta(dx, dy, height: IntLike, width: IntLike, dtype=tf.float32) -> tf.Tensor:
  """Theta for an integer or fractional pixel shift: out[r, c] = in[r + dy, c + dx] (zero where that is outside).

  dx, dy: scalars or [B] tensors of pixel offsets; returns [B, 2, 3] (B = 1 for scalars). The translation in normalised
  units is 2 dx / W, 2 dy / H (a pixel is 2/W wide in [-1, 1]).
  """
  dx = tf.reshape(tf.cast(dx, dtype), [-1])
  dy = tf.reshape(tf.cast(dy, dtype), [-1])
  tx = 2.0 * dx / tf.cast(width, dtype)
  ty = 2.0 * dy / tf.cast(height, dtype)
  one, zero = tf.ones_like(tx), tf.zeros_like(tx)
  return tf.stack([tf.stack([one, zero, tx], -1), tf.stack([zero, one, ty], -1)], axis=1)


def normalized_coordinates(n: IntLike, dtype=tf.float32) -> tf.Tensor:
  """[n] pixel-centre coordinates (2i + 1)/n - 1 in (-1, 1) (align_corners=False)."""
  n_f = tf.cast(n, dtype)
  return (2.0 * tf.range(tf.cast(n, dtype)) + 1.0) / n_f - 1.0


def affine_grid(theta, height: IntLike, width: IntLike) -> tf.Tensor:
  """theta [B, 2, 3] -> sampling grid [B, height, width, 2] of source points (x, y) = theta @ [x_c, y_r, 1].

  The grid has theta's dtype (float32 if theta is not floating). height and width are the *output* size.
  """
  theta = tf.convert_to_tensor(theta)
  if not theta.dtype.is_floating:
    theta = tf.cast(theta, tf.float32)
  if theta.shape.rank is not None and (theta.shape.rank != 3 or tuple(theta.shape[1:]) not in ((2, 3), (None, None))):
    raise ValueError(f'theta must be [B, 2, 3], got shape {tuple(theta.shape)}')
  dtype = theta.dtype
  xs = normalized_coordinates(width, dtype)                        # [w]
  ys = normalized_coordinates(height, dtype)                       # [h]
  grid_x, grid_y = tf.meshgrid(xs, ys)                             # [h, w] each ('xy' indexing: rows follow y)
  base = tf.stack([grid_x, grid_y, tf.ones_like(grid_x)], axis=-1)  # [h, w, 3]
  return tf.einsum('bij,hwj->bhwi', theta, base)


def grid_to_pixels(grid, height: IntLike, width: IntLike):
  """Normalised (x, y) -> continuous pixel indices (column u, row v): u = ((x + 1) W - 1) / 2, v likewise with H."""
  grid = tf.convert_to_tensor(grid)
  w = tf.cast(width, grid.dtype)
  h = tf.cast(height, grid.dtype)
  u = ((grid[..., 0] + 1.0) * w - 1.0) / 2.0
  v = ((grid[..., 1] + 1.0) * h - 1.0) / 2.0
  return u, v


def bilinear_sample(x, grid) -> tf.Tensor:
  """Samples x [B, H, W, C] at grid [B, h, w, 2] (normalised (x, y)) -> [B, h, w, C], zero padding outside.

  Output dtype = x's dtype; coordinates and weights in float32 (float64 if x or the grid is float64).
  """
  x = tf.convert_to_tensor(x)
  grid = tf.convert_to_tensor(grid)
  if x.shape.rank is not None and x.shape.rank != 4:
    raise ValueError(f'x must be [B, H, W, C], got shape {tuple(x.shape)}')
  if grid.shape.rank is not None and (grid.shape.rank != 4 or grid.shape[-1] not in (2, None)):
    raise ValueError(f'grid must be [B, h, w, 2], got shape {tuple(grid.shape)}')
  cdtype = _coordinate_dtype(x.dtype, grid.dtype)
  grid = tf.cast(grid, cdtype)
  shape_x = tf.shape(x)
  batch, in_h, in_w, channels = shape_x[0], shape_x[1], shape_x[2], shape_x[3]
  shape_g = tf.shape(grid)
  out_h, out_w = shape_g[1], shape_g[2]

  u, v = grid_to_pixels(grid, in_h, in_w)  # [B, h, w]
  # Points further than a pixel outside have all four neighbours outside (weight 0); clipping there keeps the int
  # cast in range for huge or non-finite coordinates without changing any value (indices are clipped below anyway).
  u = tf.clip_by_value(u, -2.0, tf.cast(in_w, cdtype) + 1.0)
  v = tf.clip_by_value(v, -2.0, tf.cast(in_h, cdtype) + 1.0)
  u0f, v0f = tf.floor(u), tf.floor(v)
  wu1, wv1 = u - u0f, v - v0f    # weights of the right / lower neighbours (gradient w.r.t. theta flows here)
  wu0, wv0 = 1.0 - wu1, 1.0 - wv1
  u0, v0 = tf.cast(u0f, tf.int32), tf.cast(v0f, tf.int32)
  u1, v1 = u0 + 1, v0 + 1

  flat = tf.reshape(x, tf.stack([batch, in_h * in_w, channels]))

  def corner(ui, vi, weight):
    inside = (ui >= 0) & (ui < in_w) & (vi >= 0) & (vi < in_h)
    index = tf.clip_by_value(vi, 0, in_h - 1) * in_w + tf.clip_by_value(ui, 0, in_w - 1)  # [B, h, w]
    values = tf.gather(flat, tf.reshape(index, tf.stack([batch, -1])), batch_dims=1)  # [B, h*w, C]
    weight = tf.where(inside, weight, tf.zeros_like(weight))
    return values * tf.cast(tf.reshape(weight, tf.stack([batch, -1, 1])), x.dtype)

  out = (corner(u0, v0, wu0 * wv0) + corner(u1, v0, wu1 * wv0) +
         corner(u0, v1, wu0 * wv1) + corner(u1, v1, wu1 * wv1))
  return tf.reshape(out, tf.stack([batch, out_h, out_w, channels]))


def warp(x, theta, output_size=None) -> tf.Tensor:
  """bilinear_sample(x, affine_grid(theta, H, W)): x [B, H, W, C] warped by theta [B, 2, 3] (output_size = (h, w))."""
  x = tf.convert_to_tensor(x)
  if output_size is None:
    shape = tf.shape(x)
    height = x.shape[1] if x.shape[1] is not None else shape[1]
    width = x.shape[2] if x.shape[2] is not None else shape[2]
  else:
    height, width = output_size
  theta = tf.convert_to_tensor(theta)
  if not theta.dtype.is_floating or theta.dtype in (tf.float16, tf.bfloat16):
    theta = tf.cast(theta, _coordinate_dtype(x.dtype))
  return bilinear_sample(x, affine_grid(theta, height, width))
