"""Writes the image cache that `image_cache.make_cached_dataset` reads (the library half of
`scripts/make_image_cache.py`; the format is described in image_cache.py).

The cropped images are computed with the pipeline's own pieces (`pipeline.crop_box`, `pipeline.resize_uint8`) on
the records the data set's reader lists, after the same file check (`pipeline.filter_unreadable`). Box crops whose
window lies inside a JPEG are decoded with `tf.image.decode_and_crop_jpeg` (`jpeg_crop.decode_and_crop`), which gives
the same pixels as decoding the whole image. Images that fail to decode are left out, named in the manifest and
count towards `max_skipped_fraction` with the ones the file check dropped.
"""

import concurrent.futures
import os
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from rlcv_tf.datasets import image_cache
from rlcv_tf.datasets import jpeg_crop
from rlcv_tf.datasets import pipeline
from rlcv_tf.datasets import registry

AUTOTUNE = tf.data.AUTOTUNE


def load_split(name: str, data_dir: str, split: str, verify: str = 'header', max_skipped_fraction: float = 0.01,
               num_examples: Optional[int] = None) -> pipeline.Records:
  """The records of one split of a real data set, after the file check (as `make_image_dataset` lists them)."""
  if not registry.entry(name).real:
    raise pipeline.DatasetError(f'{name} is generated on the fly; there is nothing to cache (the cache is for data '
                                'sets read from disk: ' + ', '.join(n for n in registry.names()
                                                                     if registry.entry(n).real) + ')')
  records = registry.open_split(name, data_dir, split)
  if num_examples is not None:
    records = records.select(np.arange(len(records.paths)) < num_examples)
  return pipeline.filter_unreadable(records, verify, records.display_name or name, max_skipped_fraction)


def crop_kind(records: pipeline.Records) -> str:
  """'shorter_side' for a shorter-side rule (LSUN), else 'box' (a window per image, or the whole image)."""
  return 'box' if records.crop is None else 'shorter_side'


def resize_shorter_side(image: tf.Tensor, side: int) -> tf.Tensor:
  """uint8 [H, W, 3] -> uint8 with the shorter side `side` (antialiased bilinear, aspect ratio kept)."""
  shape = tf.cast(tf.shape(image)[:2], tf.float32)
  size = tf.cast(tf.round(shape * side / tf.reduce_min(shape)), tf.int32)
  size = tf.maximum(size, side)
  out = tf.image.resize(image, size, method='bilinear', antialias=True)
  return tf.cast(tf.clip_by_value(tf.round(out), 0, 255), tf.uint8)


def stored_sizes(records: pipeline.Records, resolution: int, hires: Optional[int] = None):
  """(stored side of 'image', of 'hires' or None) for these records (see `image_cache.stored_size`)."""
  fraction = None if records.crop is None else records.crop.fraction
  return (image_cache.stored_size(resolution, fraction),
          image_cache.stored_size(hires, fraction) if hires else None)


def all_jpeg(paths, num_threads: int = 8) -> bool:
  """True when every file starts with the JPEG magic bytes (3 bytes read per file; unreadable files count as not)."""
  def is_jpeg(path):
    try:
      with open(path, 'rb') as f:
        return f.read(3) == b'\xff\xd8\xff'
    except OSError:
      return False
  with concurrent.futures.ThreadPoolExecutor(num_threads) as pool:
    return all(pool.map(is_jpeg, list(paths), chunksize=256))


def cropped_images(records: pipeline.Records, resolution: int, hires: Optional[int] = None,
                   decode_and_crop: bool = True, deterministic: bool = True,
                   jpeg_only: Optional[bool] = None) -> tf.data.Dataset:
  """Dataset of {'index': int64, 'image': uint8, 'hires': uint8 (when asked)} in index order, decode failures dropped.

  Box crops (a window per image, or the whole image when the records have neither boxes nor a rule): 'image' is the
  window resized to resolution x resolution, the uncached pipeline's uint8 before its flip (`pipeline.decode_window`,
  `pipeline.resize_uint8`). A shorter-side rule: the whole image with its shorter side at the stored size.
  decode_and_crop=False decodes whole images first and crops them (`pipeline.crop_box`), for comparison.
  jpeg_only: every file is a JPEG (None: check the magic bytes); then the crop is decoded without a tf.cond
  (`jpeg_crop.decode_jpeg_window`), about twice as fast in a tf.data map on 2 cores; same pixels.
  """
  if decode_and_crop and jpeg_only is None and crop_kind(records) == 'box':
    jpeg_only = all_jpeg(records.paths)
  shorter = crop_kind(records) == 'shorter_side'
  paths = tf.constant(records.paths.astype(str))
  boxes = None if records.boxes is None else tf.constant(records.boxes.astype(np.float32))
  stored = stored_sizes(records, resolution, hires)
  sizes = [('image', stored[0])] + ([('hires', stored[1])] if hires else [])

  def load(index):
    contents = tf.io.read_file(tf.gather(paths, index))
    out = {'index': index}
    if shorter:
      image = jpeg_crop.decode_image(contents)
      for key, size in sizes:
        out[key] = resize_shorter_side(image, size)
      return out

    def box_fn(shape):
      if boxes is not None:
        return tf.gather(boxes, index)
      return tf.cast(tf.stack([0, 0, shape[0], shape[1]]), tf.float32)

    if decode_and_crop and jpeg_only:
      # pipeline.decode_window's placement, without its JPEG-or-not conditional.
      window = jpeg_crop.decode_jpeg_window(
          contents, tf.zeros([4]), lambda shape, _: tf.cast(pipeline.place_window(box_fn(shape), shape), tf.float32))
    elif decode_and_crop:
      window = pipeline.decode_window(contents, box_fn)
    else:
      image = jpeg_crop.decode_image(contents)
      window = pipeline.crop_box(image, box_fn(tf.shape(image)))
    for key, size in sizes:
      out[key] = pipeline.resize_uint8(window, size)
    return out

  ds = tf.data.Dataset.range(len(records.paths))
  return ds.map(load, num_parallel_calls=AUTOTUNE, deterministic=deterministic).ignore_errors()


def _remove(path: str) -> None:
  if os.path.exists(path):
    os.remove(path)


def write_cache(records: pipeline.Records, name: str, split: str, out_dir: str, resolution: int,
                hires: Optional[int] = None, examples_per_shard: int = 10_000, overwrite: bool = False,
                max_skipped_fraction: float = 0.01, decode_and_crop: bool = True, source_dir: str = '',
                progress: Optional[Callable[[int, int], None]] = None) -> image_cache.CacheManifest:
  """Writes one split's shards and manifest into `out_dir`; returns the manifest.

  Args:
    records: from `load_split` (the file check already applied; its `skipped` go into the manifest).
    name: the data set's registry name (recorded in the manifest).
    split: 'train' | 'val' | 'test'.
    out_dir: the cache directory (created; may hold other splits).
    resolution, hires: output sizes of 'image' and 'hires'.
    examples_per_shard: records per TFRecord file.
    overwrite: replace an existing cache of this split (otherwise CacheError, nothing touched).
    max_skipped_fraction: more unreadable images than this fraction of those listed (file check plus failed
      decodes) raises DatasetUnavailableError and leaves no manifest.
    decode_and_crop: use decode_and_crop_jpeg where it applies (same pixels, less work).
    source_dir: recorded in the manifest.
    progress: fn(written, total) called after each batch.
  """
  crop = crop_kind(records)
  if examples_per_shard < 1:
    raise ValueError('examples_per_shard must be positive')
  os.makedirs(out_dir, exist_ok=True)
  manifest_file = image_cache.manifest_path(out_dir, split)
  if os.path.exists(manifest_file):
    if not overwrite:
      raise image_cache.CacheError(f'{out_dir!r} already holds a {split!r} cache; pass overwrite (the script\'s '
                                   '--overwrite) to replace it, or choose another output directory')
    try:
      old = image_cache.CacheManifest.from_json(open(manifest_file).read())
      old_shards = old.shards
    except (ValueError, TypeError, image_cache.CacheError):
      old_shards = []
    _remove(manifest_file)     # from here on the split reads as incomplete until the new manifest is written
    for s in old_shards:
      _remove(os.path.join(out_dir, os.path.basename(s)))

  n = len(records.paths)
  ds = cropped_images(records, resolution, hires, decode_and_crop=decode_and_crop)

  def encode(row):
    out = {'index': row['index'], 'image': tf.io.encode_png(row['image'])}
    if hires:
      out['hires'] = tf.io.encode_png(row['hires'])
    return out

  ds = ds.map(encode, num_parallel_calls=AUTOTUNE, deterministic=True).batch(64).prefetch(2)
  attrs = records.attributes
  temp_names, writer, written, seen = [], None, 0, []
  try:
    for batch in ds:
      batch = {k: v.numpy() for k, v in batch.items()}
      indices = batch['index']
      for j, index in enumerate(indices):
        if written % examples_per_shard == 0:
          if writer is not None:
            writer.close()
          temp_names.append(os.path.join(out_dir, f'.{split}-partial-{len(temp_names):05d}.tfrecord'))
          writer = tf.io.TFRecordWriter(temp_names[-1])
        writer.write(image_cache.serialize_example(
            batch['image'][j], int(records.labels[index]), int(index),
            () if attrs is None else attrs[index], batch['hires'][j] if hires else None))
        written += 1
      seen.append(indices)
      if progress is not None:
        progress(written, n)
    if writer is not None:
      writer.close()
      writer = None
    done = np.zeros(n, bool)
    if seen:
      done[np.concatenate(seen)] = True
    failed = [(str(p), 'does not decode') for p in records.paths[~done]]
    skipped = list(records.skipped) + failed
    listed = n + len(records.skipped)
    if written == 0 or len(skipped) > pipeline.max_skipped(listed, max_skipped_fraction):
      raise pipeline.DatasetUnavailableError(
          f'{records.display_name or name} looks incomplete: {len(skipped)} of {listed} listed images are missing or '
          f'unreadable '
          f'(> max_skipped_fraction={100 * max_skipped_fraction:g}%), e.g. '
          + '; '.join(f'{p}: {r}' for p, r in skipped[:3]) + '. No cache was written for this split.')
    shards = [image_cache.shard_name(split, k, len(temp_names)) for k in range(len(temp_names))]
    for temp, final in zip(temp_names, shards):
      os.replace(temp, os.path.join(out_dir, final))
    temp_names = []
    manifest = image_cache.CacheManifest(
        dataset=name, split=split, crop=crop, resolution=int(resolution), hires=int(hires) if hires else None,
        stored_resolution=stored_sizes(records, resolution, hires)[0],
        stored_hires=stored_sizes(records, resolution, hires)[1], num_examples=written, shards=shards,
        attribute_names=tuple(records.attribute_names),
        num_classes=None if records.num_classes is None else int(records.num_classes), skipped_files=skipped,
        source_dir=os.path.abspath(source_dir) if source_dir else '')
    with open(manifest_file + '.partial', 'w') as f:
      f.write(manifest.to_json())
    os.replace(manifest_file + '.partial', manifest_file)
    return manifest
  finally:
    if writer is not None:
      writer.close()
    for temp in temp_names:
      _remove(temp)
