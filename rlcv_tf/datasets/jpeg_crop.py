"""Decode only the crop window of a JPEG when the window is known before decoding (CelebA's fixed face ROI, the CUB
bird ROI from its bounding box).

`tf.image.decode_and_crop_jpeg` skips most of the per-pixel work (inverse DCT, upsampling, colour conversion) for
the rows above and below the window and the MCU columns left and right of it (the compressed data before the window
must still be entropy-decoded), so it does less work than decoding the whole image and cropping afterwards;
CelebA's 148x148 face window covers 56% of the 178x218 image (benchmarks/crvae_speed.py measures the gain). It can
only crop inside the image. `decode_jpeg_window` and `decode_and_crop` use it for JPEGs, on the part of the
(rounded, optionally placed) window that lies inside the image, whose size is read from the JPEG header without
decoding (`tf.image.extract_jpeg_shape`), and repeat border pixels for any part outside; other formats (PNG, GIF,
BMP, WebP) are decoded whole and cut by the caller's crop function.

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


def decode_jpeg_window(contents: tf.Tensor, box: tf.Tensor,
                       place_fn: Optional[Callable[[tf.Tensor, tf.Tensor], tf.Tensor]] = None) -> tf.Tensor:
  """The window of a JPEG, decoding only the part of it inside the image; uint8 [h, w, 3]. JPEG bytes only.

  The window is `box` = (y0, x0, h, w), or `place_fn(shape, box)` (the image shape read from the header), rounded by
  `crop_window`. Rows and columns of it outside the image repeat the border ones, exactly as slicing the whole
  decoded image with clipped indices (`pipeline.crop_box` after its placement) would. No tf.cond: inside a tf.data
  map a conditional costs about half the throughput on a 2-core CPU (benchmarks/crvae_speed.py), so a split whose
  files are all JPEGs should call this directly.
  """
  box = tf.convert_to_tensor(box, tf.float32)
  shape = tf.image.extract_jpeg_shape(contents)
  window = crop_window(box if place_fn is None else place_fn(shape, box))
  height, width = shape[0], shape[1]
  # The part of the window inside the image (at least its nearest border row / column).
  y0 = tf.clip_by_value(window[0], 0, height - 1)
  x0 = tf.clip_by_value(window[1], 0, width - 1)
  y1 = tf.clip_by_value(window[0] + window[2], y0 + 1, height)
  x1 = tf.clip_by_value(window[1] + window[3], x0 + 1, width)
  region, offset = jpeg_region(tf.stack([y0, x0, y1 - y0, x1 - x0]), shape)
  decoded = tf.image.decode_and_crop_jpeg(contents, region, channels=3)
  rows = tf.clip_by_value(window[0] + tf.range(window[2]), y0, y1 - 1) - y0
  cols = tf.clip_by_value(window[1] + tf.range(window[3]), x0, x1 - 1) - x0 + offset
  image = tf.gather(tf.gather(decoded, rows, axis=0), cols, axis=1)
  image.set_shape([None, None, 3])
  return image


def decode_and_crop(contents: tf.Tensor, box: tf.Tensor,
                    crop_fn: Callable[[tf.Tensor, tf.Tensor], tf.Tensor],
                    place_fn: Optional[Callable[[tf.Tensor, tf.Tensor], tf.Tensor]] = None) -> tf.Tensor:
  """The crop window `box` = (y0, x0, h, w) of the encoded image `contents` (any format), uint8 [h, w, 3].

  A JPEG goes through `decode_jpeg_window` (only the window's part inside the image is decoded); other formats are
  decoded whole and cut by `crop_fn`. One tf.cond chooses.

  Args:
    contents: scalar string, the file's bytes.
    box: float32 [4], the window in pixels of the original image (as in `pipeline.Records.boxes`).
    crop_fn: fn(decoded uint8 [H, W, 3], box) -> uint8 [h, w, 3] for the other formats. It must cut what
      `decode_jpeg_window` cuts: the window placed by `place_fn` (or `box` itself), border pixels repeated outside
      the image (`pipeline.crop_box` with `place_fn` = its placement rule does).
    place_fn: optional fn(image shape int32 [3], box) -> box, the window really cut (e.g. a box moved inside the
      image).
  """
  box = tf.convert_to_tensor(box, tf.float32)
  image = tf.cond(tf.io.is_jpeg(contents), lambda: decode_jpeg_window(contents, box, place_fn),
                  lambda: crop_fn(decode_image(contents), box))
  image.set_shape([None, None, 3])
  return image
