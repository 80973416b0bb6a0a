"""A TFRecord cache of cropped, resized images for large data sets (spec ch5_6 §A5.1 "TFRecord cache"), and its reader.

Decoding a 178x218 CelebA JPEG, cropping and resizing it costs far more than decoding the 64x64 PNG of the result.
`scripts/make_image_cache.py` (library code: `cache_writer.py`) does that work once per split and writes

  <cache_dir>/<split>-00000-of-000NN.tfrecord ...   tf.train.Example records, in the reader's index order:
      'image'      bytes  PNG of the uint8 crop at the cache's resolution (exactly what the uncached pipeline
                          computes before its flip and x / 127.5 - 1);
      'hires'      bytes  PNG of the same crop at the hires resolution (Stage-2 pairs), when the cache has one;
      'label'      int64;
      'attributes' float  list (empty when the data set has none);
      'index'      int64  the row of the image in the reader's records (the uncached pipeline's index);
  <cache_dir>/<split>.manifest.json    what the shards hold (JSON; written last, so a cache without it is
                                       incomplete).

For data sets cropped with a per-image box (CelebA, CUB) the cached image is the final crop. For LSUN-style
shorter-side crops the cache stores the whole image with its shorter side resized to resolution / fraction (72 for
64 with LSUN's 64/72), and the reader takes the 64 crop: random in training, centred otherwise (spec §A5.1 "shorter
side -> 72, random crop 64"). That matches the uncached pipeline in distribution, not bit for bit (it crops before
resizing).

`make_cached_dataset(cache_dir, split, ...)` yields the same elements as `pipeline.make_image_dataset`
('image' float32 [B, R, R, 3] in [-1, 1], 'label', 'epoch', 'position', 'attributes' when present, 'hires' when
asked) and takes the same stream arguments (epochs, start_epoch, skip). With train=False the batches equal the
uncached pipeline's bit for bit (box crops, no decode failures). In training the order differs from the uncached
pipeline's (a shuffle buffer over the shards, not a permutation of the whole index) and so do the flip decisions;
epoch e is a function of (seed, e) alone, so two builds with one seed yield the same epochs and a stream can resume
at (epoch, position).

This module imports nothing from rlcv_tf (so the generic pipeline may call it); no pickle anywhere.
"""

import dataclasses
import glob
import json
import os
from typing import List, Optional, Tuple

import numpy as np
import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE
FORMAT = 'rlcv_tf.image_cache'
FORMAT_VERSION = 1
MANIFEST_SUFFIX = '.manifest.json'
# Salts that keep the shard order, the shuffle buffer and the augmentation seeds independent streams of one seed.
_SHARD_SALT, _BUFFER_SALT, _AUGMENT_SALT = 0x5A4D, 0xB0FF, 0xF11B


class CacheError(RuntimeError):
  """A cache directory cannot be read as asked (missing split, wrong format, resolution not in the cache)."""


@dataclasses.dataclass
class CacheManifest:
  """What one split of a cache holds (the JSON file `<split>.manifest.json`).

  Attributes:
    dataset: the data set the cache was made from ('celeba', 'cub', 'lsun').
    split: 'train' | 'val' | 'test'.
    crop: 'box' (stored images are the final crops) or 'shorter_side' (stored with the shorter side at
      `stored_resolution`; the reader crops `resolution`).
    resolution: R of the 'image' the reader yields.
    hires: H of 'hires', or None.
    stored_resolution / stored_hires: the side (box) or shorter side (shorter_side) of the stored PNGs.
    num_examples: records written (after skipping unreadable images).
    shards: the shard file names, in index order.
    attribute_names, num_classes: as `pipeline.DatasetInfo`.
    skipped_files: [path, reason] of the images left out (file check or failed decode).
    source_dir: the data_dir the cache was made from (for the record only).
  """
  dataset: str
  split: str
  crop: str
  resolution: int
  hires: Optional[int]
  stored_resolution: int
  stored_hires: Optional[int]
  num_examples: int
  shards: List[str]
  attribute_names: Tuple[str, ...] = ()
  num_classes: Optional[int] = None
  skipped_files: List[Tuple[str, str]] = dataclasses.field(default_factory=list)
  source_dir: str = ''
  format: str = FORMAT
  format_version: int = FORMAT_VERSION

  def to_json(self) -> str:
    values = dataclasses.asdict(self)
    values['attribute_names'] = list(self.attribute_names)
    values['skipped_files'] = [list(s) for s in self.skipped_files]
    return json.dumps(values, indent=1)

  @classmethod
  def from_json(cls, text: str) -> 'CacheManifest':
    values = json.loads(text)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
      raise CacheError(f'unknown manifest fields {unknown} (made by a newer rlcv_tf?)')
    values['attribute_names'] = tuple(values.get('attribute_names', ()))
    values['skipped_files'] = [tuple(s) for s in values.get('skipped_files', [])]
    return cls(**values)


def manifest_path(cache_dir: str, split: str) -> str:
  return os.path.join(cache_dir, split + MANIFEST_SUFFIX)


def shard_name(split: str, shard: int, num_shards: int) -> str:
  return f'{split}-{shard:05d}-of-{num_shards:05d}.tfrecord'


def is_cache(path: Optional[str]) -> bool:
  """True when `path` is a directory holding at least one split's manifest."""
  return bool(path) and os.path.isdir(path) and bool(glob.glob(os.path.join(path, '*' + MANIFEST_SUFFIX)))


def stored_size(size: int, fraction: Optional[float] = None) -> int:
  """The side at which images of output size `size` are stored: `size` for box crops, the shorter side
  round(size / fraction) for a shorter-side rule of that fraction (72 for 64 with LSUN's 64/72)."""
  return int(size) if fraction is None else int(round(size / fraction))


def read_manifest(cache_dir: str, split: str) -> CacheManifest:
  """The manifest of `split`; CacheError naming the problem and the fix when it is missing or not ours."""
  path = manifest_path(cache_dir, split)
  if not os.path.exists(path):
    have = sorted(os.path.basename(p)[:-len(MANIFEST_SUFFIX)]
                  for p in glob.glob(os.path.join(cache_dir, '*' + MANIFEST_SUFFIX)))
    raise CacheError(f'{cache_dir!r} has no {split!r} split in its image cache (it has {have or "none"}); make it '
                     f'with scripts/make_image_cache.py --splits={split}')
  with open(path) as f:
    text = f.read()
  try:
    manifest = CacheManifest.from_json(text)
  except (ValueError, TypeError) as e:
    raise CacheError(f'{path} is not an image-cache manifest ({e}); remake the cache with '
                     'scripts/make_image_cache.py') from e
  if manifest.format != FORMAT or manifest.format_version != FORMAT_VERSION:
    raise CacheError(f'{path}: format {manifest.format!r} version {manifest.format_version}, this reader reads '
                     f'{FORMAT!r} version {FORMAT_VERSION}; remake the cache with scripts/make_image_cache.py')
  missing = [s for s in manifest.shards if not os.path.exists(os.path.join(cache_dir, s))]
  if missing:
    raise CacheError(f'{cache_dir!r} is missing {len(missing)} of the {len(manifest.shards)} shards of {split!r}, '
                     f'e.g. {missing[0]}; copy them back or remake the cache')
  return manifest


def serialize_example(image_png: bytes, label: int, index: int, attributes=(), hires_png: Optional[bytes] = None
                      ) -> bytes:
  """One record of the format above."""
  feature = {
      'image': tf.train.Feature(bytes_list=tf.train.BytesList(value=[image_png])),
      'label': tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
      'index': tf.train.Feature(int64_list=tf.train.Int64List(value=[int(index)])),
      'attributes': tf.train.Feature(float_list=tf.train.FloatList(value=[float(a) for a in attributes])),
  }
  if hires_png is not None:
    feature['hires'] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[hires_png]))
  return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _normalise(image: tf.Tensor) -> tf.Tensor:
  return tf.cast(image, tf.float32) / 127.5 - 1.0      # pipeline.normalise (the round-trip test compares them)


def make_cached_dataset(cache_dir: str,
                        split: str = 'train',
                        batch_size: int = 64,
                        train: Optional[bool] = None,
                        seed: int = 0,
                        resolution: Optional[int] = None,
                        hires: Optional[int] = None,
                        deterministic: bool = True,
                        *,
                        epochs: Optional[int] = 1,
                        start_epoch: int = 0,
                        skip: int = 0,
                        shuffle_buffer: Optional[int] = None,
                        private_threadpool_size: Optional[int] = None,
                        with_info: bool = False):
  """The batched pipeline over one split of an image cache (elements as `pipeline.make_image_dataset`'s).

  Elements: 'image' float32 [B, R, R, 3] in [-1, 1], 'label' int64 [B], 'epoch' and 'position' int64 [B] (where
  the example sits in the stream), 'attributes' float32 [B, K] when the data set has them, 'hires' when asked.

  Args:
    cache_dir: the directory `scripts/make_image_cache.py` wrote.
    split: 'train' | 'val' | 'test'.
    batch_size: B; the last partial batch of each epoch is dropped.
    train: shuffle + random flip (+ random crop for shorter-side caches). Defaults to split == 'train'.
    seed: epoch e's order and every example's flip / crop are functions of (seed, e) only (shard order and the
      shuffle buffer's seed are drawn statelessly from them), so two builds give the same stream.
    resolution: must equal the cache's resolution when given (a cache holds one).
    hires: must equal the cache's hires when given; None leaves 'hires' out even if the cache has it.
    deterministic: element order fixed under parallel work (`tf.data.Options.deterministic`).
    epochs: epochs in the stream; None = endless.
    start_epoch: the first epoch (0-based); skip: leave out its first `skip` positions (resume after (e, p) with
      start_epoch=e, skip=p + 1).
    shuffle_buffer: serialized records held for shuffling (default min(N, 10000)); training order mixes the
      shards (4 at a time, 16 records per turn) through this buffer, it is not a permutation of the whole index.
    private_threadpool_size: e.g. 2 on a 2-core machine.
    with_info: return (dataset, CacheManifest).
  """
  manifest = read_manifest(cache_dir, split)
  if resolution is not None and int(resolution) != manifest.resolution:
    raise CacheError(f'the {split!r} cache in {cache_dir!r} holds {manifest.resolution}-pixel images, not '
                     f'{resolution}; make another cache with --resolution={resolution}')
  if hires is not None and int(hires) != (manifest.hires or 0):
    raise CacheError(f'the {split!r} cache in {cache_dir!r} holds hires={manifest.hires}, not {hires}; make '
                     f'another cache with --hires={hires}')
  if batch_size < 1:
    raise ValueError('batch_size must be positive')
  if epochs is not None and epochs < 1:
    raise ValueError(f'epochs must be None or >= 1, got {epochs}')
  if start_epoch < 0 or not 0 <= skip <= manifest.num_examples:
    raise ValueError(f'start_epoch must be >= 0 and skip in [0, {manifest.num_examples}], got {start_epoch}, {skip}')
  if manifest.num_examples < batch_size:
    raise CacheError(f'the {split!r} cache in {cache_dir!r} has {manifest.num_examples} images, fewer than one '
                     f'batch of {batch_size}')
  train = (split == 'train') if train is None else bool(train)
  res, shorter = manifest.resolution, manifest.crop == 'shorter_side'
  num_attr = len(manifest.attribute_names)
  spec = {
      'image': tf.io.FixedLenFeature([], tf.string),
      'label': tf.io.FixedLenFeature([], tf.int64),
      'index': tf.io.FixedLenFeature([], tf.int64),
      'attributes': tf.io.VarLenFeature(tf.float32),
  }
  if hires:
    spec['hires'] = tf.io.FixedLenFeature([], tf.string)
  paths = tf.constant([os.path.join(cache_dir, s) for s in manifest.shards])
  num_shards = len(manifest.shards)
  buffer = min(manifest.num_examples, 10_000) if shuffle_buffer is None else int(shuffle_buffer)

  def key(salt, epoch):
    return tf.random.experimental.stateless_fold_in(tf.constant([seed, salt], tf.int64), epoch)

  def crop(image, size, offset):
    if shorter:
      image = tf.slice(image, tf.concat([offset, [0]], 0), [size, size, 3])
    image.set_shape([size, size, 3])
    return image

  def parse(epoch, position, record):
    ex = tf.io.parse_single_example(record, spec)
    # The example's own augmentation seed: from (seed, epoch, its index), whatever order it arrives in.
    s = tf.random.experimental.stateless_fold_in(key(_AUGMENT_SALT, epoch), ex['index'])
    image = tf.io.decode_png(ex['image'], channels=3)
    offset = tf.zeros([2], tf.int32)
    if shorter:
      room = tf.shape(image)[:2] - res
      if train:
        u = tf.random.stateless_uniform([2], tf.random.experimental.stateless_fold_in(s, 1))
        offset = tf.minimum(tf.cast(tf.floor(u * tf.cast(room + 1, tf.float32)), tf.int32), room)
      else:
        offset = room // 2
    out = {'image': crop(image, res, offset), 'label': ex['label'], 'epoch': epoch, 'position': position}
    if hires:
      big = tf.io.decode_png(ex['hires'], channels=3)
      # The same window at the hires scale (to within half a hires pixel for shorter-side caches).
      hoffset = tf.cast(tf.round(tf.cast(offset, tf.float32) * hires / res), tf.int32)
      hoffset = tf.minimum(hoffset, tf.shape(big)[:2] - hires)
      out['hires'] = crop(big, hires, hoffset)
    if train:
      flip = tf.random.stateless_uniform([], tf.random.experimental.stateless_fold_in(s, 0)) < 0.5
      for k in ('image', 'hires'):
        if k in out:
          out[k] = tf.where(flip, tf.reverse(out[k], axis=[1]), out[k])
    for k in ('image', 'hires'):
      if k in out:
        out[k] = _normalise(out[k])
    if num_attr:
      attributes = tf.sparse.to_dense(ex['attributes'])
      attributes.set_shape([num_attr])
      out['attributes'] = attributes
    return out

  def one_epoch(epoch):
    if train:
      order = tf.random.experimental.stateless_shuffle(tf.range(num_shards, dtype=tf.int64), key(_SHARD_SALT, epoch))
      files = tf.data.Dataset.from_tensor_slices(tf.gather(paths, order))
      records = files.interleave(tf.data.TFRecordDataset, cycle_length=min(num_shards, 4), block_length=16,
                                 num_parallel_calls=AUTOTUNE, deterministic=True)
      shuffle_seed = tf.random.stateless_uniform([], key(_BUFFER_SALT, epoch), minval=None, maxval=None,
                                                 dtype=tf.int64)
      records = records.shuffle(buffer, seed=shuffle_seed, reshuffle_each_iteration=False)
    else:
      records = tf.data.TFRecordDataset(paths)     # shards in order: the index order of the uncached pipeline
    skip_here = tf.where(tf.equal(epoch, start_epoch), tf.constant(skip, tf.int64), tf.constant(0, tf.int64))
    ds = records.enumerate().skip(skip_here)
    ds = ds.map(lambda position, record: parse(epoch, position, record), num_parallel_calls=AUTOTUNE)
    return ds.batch(batch_size, drop_remainder=True)

  end = np.iinfo(np.int64).max if epochs is None else start_epoch + epochs
  ds = tf.data.Dataset.range(start_epoch, end).flat_map(one_epoch).prefetch(AUTOTUNE)
  options = tf.data.Options()
  options.deterministic = bool(deterministic)
  if private_threadpool_size:
    options.threading.private_threadpool_size = int(private_threadpool_size)
  ds = ds.with_options(options)
  return (ds, manifest) if with_info else ds
