"""Decode only the crop window of a JPEG when the window is known before decoding (CelebA's fixed face ROI, the CUB
bird ROI from its bounding box).

`tf.image.decode_and_crop_jpeg` skips most of the per-pixel work (inverse DCT, upsampling, colour conversion) for
the rows above and below the window and the MCU columns left and right of it (the compressed data before the window
must still be entropy-decoded), so it does less work than decoding the whole image and cropping afterwards; CelebA's 148x148 face window covers 56% of the
178x218 image (benchmarks/crvae_speed.py measures the gain). It can only crop inside the image. `decode_and_crop` uses
it when the file is a JPEG and the (rounded) window lies wholly inside the image, whose size is read from the JPEG
header without decoding (`tf.image.extract_jpeg_shape`); otherwise (PNG, GIF, BMP, WebP, or a window that pokes
out of the image) it decodes the whole image and calls the caller's crop function, so windows outside the image keep
whatever edge rule the caller applies (`pipeline.crop_box`).

Pixels are the same as decoding the whole image with `tf.io.decode_image(channels=3)` and cropping, bit for bit,
because the region handed to `decode_and_crop_jpeg` is slightly wider than the window (`jpeg_region`) and then
sliced. Decoding exactly the window is not exact for chroma-subsampled JPEGs (4:2:0, 4:2:2): libjpeg's "fancy"
chroma upsampling interpolates between neighbouring chroma columns, treats the left and right edges of a cropped
region as image edges (so an edge column of the window can differ by a level or two), and is switched off for
regions narrower than 5 pixels. One column more on each side and a width of at least 16 pixels avoid both; rows
need nothing (libjpeg keeps the vertical context). tests/test_image_cache.py checks this bit for bit.
This module imports nothing from rlcv_tf, so the generic pipeline and the cache writer can both use it.
"""

from typing import Callable, Optional

import tensorflow as tf


def crop_window(box: tf.Tensor) -> tf.Tensor:
  """(y0, x0, h, w) float pixels -> int32 window, rounded as `pipeline.crop_box` rounds it (h, w >= 1)."""
  box = tf.cast(tf.round(tf.convert_to_tensor(box, tf.float32)), tf.int32)
  return tf.stack([box[0], box[1], tf.maximum(box[2], 1), tf.maximum(box[3], 1)])


def window_inside(shape: tf.Tensor, window: tf.Tensor) -> tf.Tensor:
  """True where int32 window (y0, x0, h, w) lies wholly inside an image of int32 shape (H, W, ...)."""
  return tf.logical_and(
      tf.logical_and(window[0] >= 0, window[1] >= 0),
      tf.logical_and(window[0] + window[2] <= shape[0], window[1] + window[3] <= shape[1]))


def jpeg_region(window: tf.Tensor, shape: tf.Tensor):
  """The region to decode for int32 `window` (y0, x0, h, w) inside an image of `shape`, and the window's column
  offset in it: one column more on each side where the image has one, at least 16 columns (or the image width)."""
  width = shape[1]
  x_start = tf.maximum(0, window[1] - 1)
  x_end = tf.minimum(width, window[1] + window[3] + 1)
  narrow = x_end - x_start < 16
  x_end = tf.where(narrow, tf.minimum(width, x_start + 16), x_end)
  x_start = tf.where(narrow, tf.maximum(0, x_end - 16), x_start)
  return tf.stack([window[0], x_start, window[2], x_end - x_start]), window[1] - x_start


def decode_image(contents: tf.Tensor) -> tf.Tensor:
  """Whole-image decode to uint8 [H, W, 3], as the pipeline does it."""
  image = tf.io.decode_image(contents, channels=3, expand_animations=False)
  image.set_shape([None, None, 3])
  return image


def decode_and_crop(contents: tf.Tensor, box: tf.Tensor,
                    crop_fn: Callable[[tf.Tensor, tf.Tensor], tf.Tensor],
                    place_fn: Optional[Callable[[tf.Tensor, tf.Tensor], tf.Tensor]] = None) -> tf.Tensor:
  """The crop window `box` = (y0, x0, h, w) of the encoded image `contents`, uint8 [h, w, 3].

  Args:
    contents: scalar string, the file's bytes.
    box: float32 [4], the window in pixels of the original image (as in `pipeline.Records.boxes`).
    crop_fn: fn(decoded uint8 [H, W, 3], box) -> uint8 [h, w, 3], used when the fast path does not apply.
    place_fn: optional fn(image shape int32 [3], box) -> box, the window crop_fn would really cut (e.g. a box moved
      inside the image); given it, the fast path is taken whenever the placed window lies inside the image, and
      crop_fn must equal crop-after-place_fn there.
  """
  box = tf.convert_to_tensor(box, tf.float32)

  def slow():
    return crop_fn(decode_image(contents), box)

  def jpeg():
    shape = tf.image.extract_jpeg_shape(contents)
    window = crop_window(box if place_fn is None else place_fn(shape, box))

    def fast():
      region, offset = jpeg_region(window, shape)
      decoded = tf.image.decode_and_crop_jpeg(contents, region, channels=3)
      return decoded[:, offset:offset + window[3]]

    return tf.cond(window_inside(shape, window), fast, slow)

  image = tf.cond(tf.io.is_jpeg(contents), jpeg, slow)
  image.set_shape([None, None, 3])
  return image
