"""`make_image_dataset(name, ...)`: the tf.data pipeline shared by Chapters 5 and 6 (spec ch5_6 §A5.1, §B5).

Names are looked up in `registry.py`: real data sets read from the user's disk in their published layout (`celeba`,
`cub`, `lsun`, ...; `data_dir` required) or procedurally generated stand-ins (`synth_faces`, `synth_birds`,
`synth_rooms`). A missing or incomplete real data set raises `DatasetUnavailableError` naming the expected path,
the expected files and where to get them; it is never replaced by a stand-in. This module knows no data set: a
reader hands it `records.Records` (paths, labels, attributes and each image's crop) or `records.Generated`.

Each element is a dict:
  * 'image': float32 [B, R, R, 3] in [-1, 1] (x / 127.5 - 1, spec §0);
  * 'label': int64 [B] (CUB species, synthetic class / identity; CelebA identity if `identity_CelebA.txt` is
    present, else -1; LSUN 0);
  * 'attributes': float32 [B, N] in {-1, +1} (celeba: the 40 attributes in file order; synth_faces), or the
    columns `attributes=` names, in its order;
  * 'hires': float32 [B, H, H, 3] when `hires=H`: the same crop (same random crop and flip) resized to H, the
    aligned (x_64, S(x)_128) pairs Stage 2 needs (T:L5006-5016);
  * 'epoch', 'position': int64 [B], where each example sits in the data stream (epoch number, 0-based place in
    that epoch's order); a training run stores the last ones it consumed to resume the stream there.

Pipeline order (spec §A5.1), per epoch e:
  index of epoch e -> parallel [read -> decode (only the crop window of a JPEG when it lies inside the image) ->
  crop] -> parallel [resize (bilinear, antialias) -> random h-flip (train) -> x / 127.5 - 1] ->
  batch(drop_remainder=True); epochs follow each other, then prefetch.
The index of epoch e is a permutation of the examples drawn statelessly from (seed, e) (training) or file order,
and every example carries its own augmentation seed drawn from (seed, e, example) before any parallel map. So an
epoch is a function of (seed, e) alone: two builds with one seed give identical epochs at any parallelism, and a
stream can start at any (epoch, position) (`start_epoch`, `skip`) and continue exactly as an uninterrupted one.
With `deterministic=True` (the default) the parallel maps keep this order; `deterministic=False` lets them deliver
in completion order (each example keeps its crop and flip, only the order within the in-flight window changes).

Crops: a window (y0, x0, h, w) that leaves the image is first shifted back inside it; border pixels are repeated
only along a side where the window is larger than the image. Shorter-side rules (LSUN) are squares placed at
random (training, from the example's seed) or centred.

Unreadable images never stop an epoch. Files are checked on the host when the index is built (missing, empty,
not an image by its magic bytes; `verify='decode'` fully decodes with Pillow) and skipped with a warning
(`DatasetInfo.skipped_files`). Files that still fail to decode at run time (a truncated copy) are dropped and
recorded once per file, however many passes see them (`DatasetInfo.runtime_skipped_files()`). Both together
are held to `max_skipped_fraction` of the listed images: past it the split is an incomplete copy, an error (at
build time for the file check; for decode failures the iterator raises tf.errors.InvalidArgumentError and
`DatasetInfo.incomplete_error()` gives the full message with the file names).
"""

import concurrent.futures
import dataclasses
import logging
import math
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from rlcv_tf.datasets import image_cache
from rlcv_tf.datasets import jpeg_crop
from rlcv_tf.datasets import records as records_lib
from rlcv_tf.datasets import registry

AUTOTUNE = tf.data.AUTOTUNE
SPLITS = ('train', 'val', 'test')

# Re-exported so callers need one import (readers import `records` directly, never this module).
DatasetError = records_lib.DatasetError
DatasetUnavailableError = records_lib.DatasetUnavailableError
unavailable = records_lib.unavailable
Records = records_lib.Records
Generated = records_lib.Generated
ShorterSideCrop = records_lib.ShorterSideCrop
names = registry.names
entry = registry.entry
describe = registry.describe
SYNTHETIC_SIZES = registry.SYNTHETIC_SIZES

# Salts that keep the epoch order and the augmentation seeds independent streams of one user seed.
_ORDER_SALT = 0x0DE5
_AUGMENT_SALT = 0xA5EED


# ------------------------------------------------------------------------------------------------ file checks


_MAGIC = (
    (b'\xff\xd8\xff', 'jpeg'),
    (b'\x89PNG\r\n\x1a\n', 'png'),
    (b'GIF87a', 'gif'),
    (b'GIF89a', 'gif'),
    (b'BM', 'bmp'),
)
VERIFY_MODES = ('header', 'decode', 'none')


def check_image_file(path: str, verify: str = 'header') -> Optional[str]:
  """Returns None if `path` looks decodable, else the reason it is not.

  'header' reads 16 bytes (missing, empty, or not JPEG/PNG/GIF/BMP/WebP by magic bytes: cheap enough for 200k
  files); 'decode' also fully decodes with Pillow (catches truncation, ~100x slower); 'none' skips the check.
  """
  if verify not in VERIFY_MODES:
    raise ValueError(f"verify must be one of {VERIFY_MODES}, got {verify!r}")
  if verify == 'none':
    return None
  try:
    with open(path, 'rb') as f:
      head = f.read(16)
  except FileNotFoundError:
    return 'missing'
  except OSError as e:
    return f'unreadable ({e.strerror or e})'
  if not head:
    return 'empty file'
  if not (any(head.startswith(m) for m, _ in _MAGIC) or (head[:4] == b'RIFF' and head[8:12] == b'WEBP')):
    return 'not a JPEG/PNG/GIF/BMP/WebP file'
  if verify == 'decode':
    try:
      from PIL import Image  # pylint: disable=g-import-not-at-top
      with Image.open(path) as im:
        im.load()
    except Exception as e:  # pylint: disable=broad-except  (any decoder failure means "skip this file")
      return f'does not decode ({type(e).__name__}: {e})'
  return None


def check_files(paths: Sequence[str], verify: str = 'header', num_threads: int = 8) -> List[Optional[str]]:
  """`check_image_file` over many paths with a thread pool (the checks wait on I/O, not the GIL)."""
  if verify not in VERIFY_MODES:
    raise ValueError(f"verify must be one of {VERIFY_MODES}, got {verify!r}")
  if verify == 'none' or len(paths) == 0:
    return [None] * len(paths)
  with concurrent.futures.ThreadPoolExecutor(num_threads) as pool:
    return list(pool.map(lambda p: check_image_file(p, verify), paths, chunksize=256))


def max_skipped(num_listed: int, max_skipped_fraction: float) -> int:
  """How many of `num_listed` images may be skipped before a split counts as an incomplete copy."""
  return int(math.floor(max_skipped_fraction * num_listed + 1e-9))


def filter_unreadable(records: Records, verify: str, dataset: str, max_skipped_fraction: float) -> Records:
  """Drops images that fail the file check, records them in `records.skipped` and warns once.

  More than `max_skipped_fraction` unreadable images means an incomplete copy (e.g. an unfinished unzip), which is
  an error, not something to train through.
  """
  reasons = check_files(list(records.paths), verify)
  bad = np.array([r is not None for r in reasons], bool)
  if not bad.any():
    return records
  skipped = [(p, r) for p, r in zip(records.paths[bad], np.asarray(reasons, object)[bad])]
  frac = bad.mean()
  examples = '; '.join(f'{p}: {r}' for p, r in skipped[:3])
  if bad.sum() > max_skipped(len(bad), max_skipped_fraction) or bad.all():
    raise DatasetUnavailableError(
        f'{dataset} looks incomplete: {bad.sum()} of {len(bad)} listed images are missing or unreadable '
        f'({100 * frac:.1f}% > max_skipped_fraction={100 * max_skipped_fraction:g}%), e.g. {examples}. '
        'Re-extract the image archive, or raise max_skipped_fraction to train on what is there.')
  logging.warning('%s: skipping %d of %d images that are missing or unreadable, e.g. %s', dataset, bad.sum(),
                  len(bad), examples)
  out = records.select(~bad)
  out.skipped = list(records.skipped) + skipped
  return out


# ------------------------------------------------------------------------------------------------ info


@dataclasses.dataclass
class DatasetInfo:
  """What `make_image_dataset(..., with_info=True)` built.

  Attributes:
    num_examples: images in the split after the file check.
    num_skipped: images dropped by the host-side file check; `skipped_files` lists (path, reason).
    num_listed: images the split lists (before any check); the skip limit is a fraction of it.
    steps_per_epoch: num_examples // batch_size (the last partial batch is dropped; an epoch with decode
      failures can have fewer).
  """
  name: str
  split: str
  resolution: int
  hires: Optional[int]
  batch_size: int
  num_examples: int
  num_skipped: int = 0
  skipped_files: List[Tuple[str, str]] = dataclasses.field(default_factory=list)
  attribute_names: Tuple[str, ...] = ()
  num_classes: Optional[int] = None
  num_listed: Optional[int] = None
  max_skipped_fraction: float = 0.01
  start_epoch: int = 0
  skip: int = 0
  _paths: Optional[np.ndarray] = dataclasses.field(default=None, repr=False)
  _failed: Optional[tf.Variable] = dataclasses.field(default=None, repr=False)
  _num_failed: Optional[tf.Variable] = dataclasses.field(default=None, repr=False)
  _failed_cached: Optional[List[Tuple[str, str]]] = dataclasses.field(default=None, repr=False)

  @property
  def steps_per_epoch(self) -> int:
    return self.num_examples // self.batch_size

  def runtime_skipped(self) -> int:
    """Distinct files that failed to decode inside tf.data so far (each counted once, whatever the passes)."""
    if self._failed_cached is not None:
      return len(self._failed_cached)
    return 0 if self._num_failed is None else int(self._num_failed.numpy())

  def runtime_skipped_files(self) -> List[Tuple[str, str]]:
    """(path, reason) of the files that failed to decode inside tf.data so far, in index order."""
    if self._failed_cached is not None:
      return list(self._failed_cached)
    if self._failed is None or not self.runtime_skipped():
      return []
    return [(str(p), 'does not decode') for p in self._paths[self._failed.numpy()]]

  @property
  def total_skipped(self) -> int:
    return self.num_skipped + self.runtime_skipped()

  def all_skipped_files(self) -> List[Tuple[str, str]]:
    return list(self.skipped_files) + self.runtime_skipped_files()

  @property
  def max_skipped(self) -> int:
    return max_skipped(self.num_listed if self.num_listed is not None else self.num_examples,
                       self.max_skipped_fraction)

  def incomplete(self) -> bool:
    """True once more images were skipped (file check + decode failures) than `max_skipped_fraction` allows, or
    none of the split's files decodes."""
    return self.total_skipped > self.max_skipped or 0 < self.num_examples <= self.runtime_skipped()

  def incomplete_error(self) -> DatasetUnavailableError:
    """The one-message error for a split found incomplete while decoding (names the files)."""
    listed = self.num_listed if self.num_listed is not None else self.num_examples
    files = self.all_skipped_files()
    examples = '; '.join(f'{p}: {r}' for p, r in files[:3])
    return DatasetUnavailableError(
        f'{self.name} looks incomplete: {self.total_skipped} of {listed} listed images are missing or do not '
        f'decode ({self.num_skipped} at the file check, {self.runtime_skipped()} while decoding; more than '
        f'max_skipped_fraction={100 * self.max_skipped_fraction:g}%), e.g. {examples}. Re-extract the image '
        'archive, or raise max_skipped_fraction to train on what is there.')


# ------------------------------------------------------------------------------------------------ graph pieces


def place_window(box: tf.Tensor, shape: tf.Tensor) -> tf.Tensor:
  """Window `box` = (y0, x0, h, w) (pixels, float) -> int32 (y0, x0, h, w) moved inside an image of `shape`.

  Along each axis the window is shifted by the least amount that puts it inside the image; where it is larger
  than the image it is shifted by the least amount that makes it cover the whole image (so padding is needed only
  there, and no more than the size difference).
  """
  box = tf.cast(tf.round(tf.cast(box, tf.float32)), tf.int32)
  h, w = tf.maximum(box[2], 1), tf.maximum(box[3], 1)
  height, width = tf.cast(shape[0], tf.int32), tf.cast(shape[1], tf.int32)
  y0 = tf.clip_by_value(box[0], tf.minimum(0, height - h), tf.maximum(0, height - h))
  x0 = tf.clip_by_value(box[1], tf.minimum(0, width - w), tf.maximum(0, width - w))
  return tf.stack([y0, x0, h, w])


def _gather_window(image: tf.Tensor, window: tf.Tensor) -> tf.Tensor:
  """Pixels of the int window (y0, x0, h, w); rows / columns outside the image repeat the border ones."""
  shape = tf.shape(image)
  rows = tf.clip_by_value(window[0] + tf.range(window[2]), 0, shape[0] - 1)
  cols = tf.clip_by_value(window[1] + tf.range(window[3]), 0, shape[1] - 1)
  return tf.gather(tf.gather(image, rows, axis=0), cols, axis=1)


def crop_box(image: tf.Tensor, box: tf.Tensor) -> tf.Tensor:
  """Crops window `box` = (y0, x0, h, w) (pixels, may reach outside) from `image` [H, W, C].

  The window is first moved inside the image (`place_window`); only along an axis where it is larger than the
  image are border pixels repeated (edge padding, spec §A5.1). The result is always an undistorted h x w window.
  """
  return _gather_window(image, place_window(box, tf.shape(image)))


def shorter_side_box(shape: tf.Tensor, fraction: float, seed: Optional[tf.Tensor]) -> tf.Tensor:
  """Square window of side `fraction` x shorter side: uniformly placed if `seed` is given, else centred."""
  h, w = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
  side = tf.floor(tf.minimum(h, w) * fraction)
  if seed is None:
    y0, x0 = tf.floor((h - side) / 2), tf.floor((w - side) / 2)
  else:
    u = tf.random.stateless_uniform([2], seed)
    y0, x0 = tf.floor(u[0] * (h - side + 1)), tf.floor(u[1] * (w - side + 1))
    y0, x0 = tf.minimum(y0, h - side), tf.minimum(x0, w - side)
  return tf.stack([y0, x0, side, side])


def decode_window(data: tf.Tensor, box_fn) -> tf.Tensor:
  """Decodes encoded image bytes and returns the window `box_fn(shape)` (placed as `crop_box` places it), uint8
  [h, w, 3].

  For a JPEG whose placed window lies inside the image only the window is decoded (`jpeg_crop.decode_and_crop`:
  `decode_and_crop_jpeg` with the shape read from the header), the same pixels as decoding the whole image and
  cropping; other formats (PNG, GIF, BMP, WebP) and windows that need padding are decoded whole, then cropped.
  """
  return jpeg_crop.decode_and_crop(
      data, tf.zeros([4], tf.float32),
      crop_fn=lambda image, _: crop_box(image, box_fn(tf.shape(image))),
      place_fn=lambda shape, _: tf.cast(place_window(box_fn(shape), shape), tf.float32))


def resize_uint8(image: tf.Tensor, size: int) -> tf.Tensor:
  """Antialiased bilinear resize to size x size, rounded back to uint8 (what a PNG cache would hold)."""
  out = tf.image.resize(image, [size, size], method='bilinear', antialias=True)
  return tf.cast(tf.clip_by_value(tf.round(out), 0, 255), tf.uint8)


def normalise(image: tf.Tensor) -> tf.Tensor:
  """uint8 -> float32 in [-1, 1] (spec §0: x / 127.5 - 1)."""
  return tf.cast(image, tf.float32) / 127.5 - 1.0


def _key(seed: int, salt: int, epoch: tf.Tensor) -> tf.Tensor:
  return tf.random.experimental.stateless_fold_in(tf.constant([seed, salt], tf.int64), tf.cast(epoch, tf.int64))


def epoch_index(num_examples: int, seed: int, epoch, shuffle: bool, skip=0) -> tf.data.Dataset:
  """The examples of epoch `epoch` in their order, as {'index', 'position', 'epoch', 'seed'} (int64 scalars and
  an augmentation seed [2]).

  The order is a permutation drawn statelessly from (seed, epoch) when `shuffle`, else 0..N-1; the augmentation
  seed of an example is drawn from (seed, epoch, index). Nothing depends on how the dataset is iterated, so any
  (epoch, position) can be started from (`skip` leaves out the first positions) and later epochs are unchanged.
  """
  epoch = tf.cast(epoch, tf.int64)
  skip = tf.cast(skip, tf.int64)
  order = tf.range(num_examples, dtype=tf.int64)
  if shuffle:
    order = tf.random.experimental.stateless_shuffle(order, _key(seed, _ORDER_SALT, epoch))
  seeds = tf.random.stateless_uniform([num_examples, 2], _key(seed, _AUGMENT_SALT, epoch), minval=None,
                                      maxval=None, dtype=tf.int64)   # row i: the seed of example i
  order = order[skip:]
  return tf.data.Dataset.from_tensor_slices({
      'index': order, 'position': tf.range(skip, num_examples, dtype=tf.int64),
      'epoch': tf.fill(tf.shape(order), epoch), 'seed': tf.gather(seeds, order)})


def _seeds(row):
  """(crop seed, flip seed) of an example."""
  pair = tf.random.experimental.stateless_split(row['seed'], 2)
  return pair[0], pair[1]


# ------------------------------------------------------------------------------------------------ loaders
#
# A loader maps a dataset of epoch_index rows to rows with 'label' (+ 'attributes') and either 'window' (the crop,
# uint8 [h, w, 3], not yet resized) or 'small' / 'large' (already resized, from the in-memory cache).


class _Crop:
  """Which window of an image an example gets: a shorter-side rule, its box (a row's 'box' or the table's), or
  the whole image (`whole=True`, or when there is neither)."""

  def __init__(self, boxes: Optional[np.ndarray], rule: Optional[ShorterSideCrop], random: bool,
               whole: bool = False):
    self.boxes = None if boxes is None else tf.constant(np.asarray(boxes, np.float32))
    self.rule, self.random, self.whole = rule, random, whole

  def box_fn(self, row):
    def fn(shape):
      if not self.whole:
        if self.rule is not None:
          return shorter_side_box(shape, self.rule.fraction, _seeds(row)[0] if self.random else None)
        if 'box' in row:
          return row['box']
        if self.boxes is not None:
          return tf.gather(self.boxes, row['index'])
      return tf.cast(tf.stack([0, 0, shape[0], shape[1]]), tf.float32)
    return fn


def _table(records: Records):
  table = {'label': tf.constant(records.labels.astype(np.int64))}
  if records.attributes is not None:
    table['attributes'] = tf.constant(records.attributes.astype(np.float32))
  return table


class _FileLoader:
  """Reads and decodes files, a chunk of consecutive positions per parallel worker, and drops those that fail.

  Within a chunk the files are decoded in order, so a failure shows as a gap in the positions of the decoded rows
  (an end marker after the chunk's last position closes the last gap). The consumer's sequential stage records
  each failed example once in `failed` / `num_failed` and raises InvalidArgumentError (`message`) past the skip
  limit: exact whatever the parallel order of the chunks (`deterministic`), and nothing is recorded for chunks the
  stream never reached.
  """

  CHUNK = 16

  def __init__(self, records: Records, crop: _Crop, allowed_failures: int, message: str):
    n = len(records.paths)
    self.paths = tf.constant(records.paths.astype(str))
    self.table = _table(records)
    self.crop = crop
    self.failed = tf.Variable(tf.zeros([n], tf.bool), trainable=False)
    self.num_failed = tf.Variable(tf.constant(0, tf.int64), trainable=False)
    self.allowed = tf.constant(allowed_failures, tf.int64)
    self.message = message

  def _row(self, row, window, ok):
    out = dict(row, window=window, ok=ok)
    out.update({k: tf.gather(v, row['index']) for k, v in self.table.items()})
    return out

  def _decode(self, row):
    data = tf.io.read_file(tf.gather(self.paths, row['index']))
    return self._row(row, decode_window(data, self.crop.box_fn(row)), tf.constant(True))

  def _load_chunk(self, rows):
    first = rows['position'][0]
    end = self._row({k: v[-1] for k, v in rows.items()}, tf.zeros([0, 0, 3], tf.uint8), tf.constant(False))
    end['position'] = rows['position'][-1] + 1

    def gaps(expected, row):
      # The examples at positions expected..row.position-1 of this chunk did not decode.
      missing = tf.gather(rows['index'], tf.range(expected, row['position']) - first)
      return row['position'] + 1, dict(row, missing=missing)

    decoded = tf.data.Dataset.from_tensor_slices(rows).map(self._decode).ignore_errors()
    return decoded.concatenate(tf.data.Dataset.from_tensors(end)).scan(first, gaps)

  def _account(self, row):
    # Sequential, in the consumer's order: a file is recorded when the stream reaches it (never by a worker whose
    # chunk was cut short because the iterator stopped).
    missing = row.pop('missing')
    was = tf.gather(self.failed, missing)
    with tf.control_dependencies([was]):
      update = self.failed.scatter_nd_update(missing[:, None], tf.ones_like(was))
    with tf.control_dependencies([update]):
      count = self.num_failed.assign_add(tf.reduce_sum(tf.cast(tf.logical_not(was), tf.int64)))
    check = tf.debugging.assert_less_equal(count, self.allowed, message=self.message)
    with tf.control_dependencies([check]):
      return {k: tf.identity(v) for k, v in row.items()}

  def __call__(self, index: tf.data.Dataset) -> tf.data.Dataset:
    ds = index.batch(self.CHUNK).interleave(self._load_chunk, block_length=self.CHUNK, num_parallel_calls=AUTOTUNE)
    return ds.map(self._account).filter(lambda row: row['ok'])


class _GeneratedLoader:
  """Renders stand-in images with the source's NumPy function, in chunks, in parallel; crops them."""

  CHUNK = 32

  def __init__(self, source: Generated, crop: _Crop):
    self.source, self.crop = source, crop
    self.has_attributes = bool(source.attribute_names)

  def _generate(self, indices):
    def fn(ix):
      out = self.source.generate(np.asarray(ix, np.int64))
      attrs = out.get('attributes', np.zeros((len(ix), 1), np.float32)).astype(np.float32)
      return (out['image'].astype(np.uint8), out['label'].astype(np.int64), out['box'].astype(np.float32), attrs)
    image, label, box, attrs = tf.numpy_function(fn, [indices], [tf.uint8, tf.int64, tf.float32, tf.float32],
                                                 stateful=False)
    s = self.source.size
    image.set_shape([None, s, s, 3])
    label.set_shape([None])
    box.set_shape([None, 4])
    attrs.set_shape([None, max(len(self.source.attribute_names), 1)])
    return image, label, box, attrs

  def _chunk(self, rows):
    image, label, box, attrs = self._generate(rows['index'])
    out = dict(rows, image=image, label=label, box=box)
    if self.has_attributes:
      out['attributes'] = attrs
    return out

  def _window(self, row):
    image = row.pop('image')
    box_fn = self.crop.box_fn(row)
    row['window'] = crop_box(image, box_fn(tf.shape(image)))
    row.pop('box')
    return row

  def __call__(self, index: tf.data.Dataset) -> tf.data.Dataset:
    ds = index.batch(self.CHUNK).map(self._chunk, num_parallel_calls=AUTOTUNE).unbatch()
    return ds.map(self._window, num_parallel_calls=AUTOTUNE)


class _MemoryLoader:
  """Serves examples from images held in memory: resized crops (fixed crops) or whole images (random crops)."""

  def __init__(self, arrays: dict, crop: _Crop):
    self.arrays = {k: tf.constant(v) for k, v in arrays.items() if k not in ('flat', 'starts', 'shapes')}
    self.ragged = 'flat' in arrays
    if self.ragged:
      self.flat = tf.constant(arrays['flat'])
      self.starts = tf.constant(arrays['starts'])
      self.shapes = tf.constant(arrays['shapes'])
    self.crop = crop

  def _load(self, row):
    i = row['index']
    out = dict(row)
    out.update({k: tf.gather(v, i) for k, v in self.arrays.items()})
    if self.ragged:
      shape = tf.gather(self.shapes, i)
      size = tf.cast(tf.reduce_prod(shape), tf.int64)
      image = tf.reshape(self.flat[tf.gather(self.starts, i):tf.gather(self.starts, i) + size], shape)
      image.set_shape([None, None, 3])
      out['window'] = crop_box(image, self.crop.box_fn(row)(tf.shape(image)))
    return out

  def __call__(self, index: tf.data.Dataset) -> tf.data.Dataset:
    return index.map(self._load, num_parallel_calls=AUTOTUNE)


def _materialise(loader, num_examples: int, resolution: int, hires: Optional[int], keep_whole: bool,
                 options: tf.data.Options) -> dict:
  """One pass of `loader` over all examples in file order, held as NumPy arrays for `_MemoryLoader`.

  keep_whole: keep the whole decoded images (random crops are drawn from them later); otherwise keep the crops
  resized to `resolution` (and `hires`). Examples that fail to decode are left out ('index' lists the kept ones).
  """
  ds = loader(epoch_index(num_examples, 0, 0, shuffle=False))

  def shrink(row):
    out = {'index': row['index'], 'label': row['label']}
    if 'attributes' in row:
      out['attributes'] = row['attributes']
    if keep_whole:
      out['window'] = row['window']
    else:
      out['small'] = resize_uint8(row['window'], resolution)
      if hires:
        out['large'] = resize_uint8(row['window'], hires)
    return out

  ds = ds.map(shrink, num_parallel_calls=AUTOTUNE).with_options(options)
  parts = {}
  for row in ds.as_numpy_iterator():
    for k, v in row.items():
      parts.setdefault(k, []).append(v)
  if not parts:
    return {}
  out = {k: np.stack(v) for k, v in parts.items() if k != 'window'}
  if keep_whole:
    windows = parts['window']
    sizes = np.array([w.size for w in windows], np.int64)
    out['starts'] = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    out['shapes'] = np.array([w.shape for w in windows], np.int32)
    out['flat'] = np.concatenate([w.reshape(-1) for w in windows]).astype(np.uint8)
  return out


# ------------------------------------------------------------------------------------------------ builder


def make_image_dataset(name: str,
                       data_dir: Optional[str] = None,
                       split: str = 'train',
                       resolution: int = 64,
                       batch_size: int = 64,
                       train: Optional[bool] = None,
                       seed: int = 0,
                       hires: Optional[int] = None,
                       deterministic: bool = True,
                       *,
                       epochs: Optional[int] = 1,
                       start_epoch: int = 0,
                       skip: int = 0,
                       cache: bool = False,
                       verify: str = 'header',
                       max_skipped_fraction: float = 0.01,
                       num_examples: Optional[int] = None,
                       data_seed: int = 0,
                       num_attributes: Optional[int] = None,
                       attributes: records_lib.AttributeSelection = None,
                       private_threadpool_size: Optional[int] = None,
                       with_info: bool = False):
  """Builds the batched tf.data pipeline for image data set `name` (see the module docstring).

  Args:
    name: one of `names()`.
    data_dir: the data set's root on disk (real data sets only; must be None for stand-ins), or an image cache
      of it made by scripts/make_image_cache.py (read by `image_cache.make_cached_dataset`; `cache` and `verify`
      do not apply, the cache's own file check did).
    split: 'train' | 'val' | 'test' (CUB has no validation split: 'val' reads its test split).
    resolution: R, the side of 'image'.
    batch_size: B; the last partial batch of each epoch is dropped (the 2:1:1 batch mix of §A3.2 needs
      B % 4 == 0).
    train: shuffle + random flip (+ random shorter-side crop). Defaults to split == 'train'.
    seed: order / augmentation seed; epoch e's order and every example's crop and flip are functions of
      (seed, e) only.
    hires: H, also yield 'hires' [B, H, H, 3] from the same crop, or None.
    deterministic: keep the element order under parallel maps (`tf.data.Options.deterministic`); False
      delivers in completion order (faster when decode times vary; the (example, augmentation) pairs of an
      epoch stay the same, and a resumed stream can then repeat or miss a few in-flight examples).
    epochs: epochs in the stream (each one iteration of the dataset yields them all); None = endless, what a
      training loop wants. Iterating the dataset again restarts at `start_epoch`: the same batches again.
    start_epoch: the first epoch of the stream (0-based).
    skip: leave out the first `skip` positions of `start_epoch` (0 <= skip <= N). A run that consumed batches up
      to (epoch e, position p) resumes with start_epoch=e, skip=p + 1.
    cache: decode, crop and resize every image once, before the first batch, and serve them from memory (with a
      random shorter-side crop the whole decoded images are held). Only when the split fits in RAM.
    verify: host-side file check, 'header' | 'decode' | 'none' (see `check_image_file`).
    max_skipped_fraction: more unreadable files (file check and decode failures together) than this fraction
      of the listed images makes the split an incomplete copy: an error.
    num_examples: size of a generated split (stand-ins; default SYNTHETIC_SIZES) or a cap on a real one.
    data_seed: content seed of the stand-ins (image i of a split is fixed by (data_seed, split, i)).
    num_attributes: synth_faces only: keep the first N <= 12 attributes.
    attributes: 'attributes' columns by name: 'all' (file order) or a list of names kept in the order given
      (any of synth_faces' 12); None keeps the default above. Not together with num_attributes. Also applies to
      an image cache (selecting among the attributes it holds).
    private_threadpool_size: e.g. 2 on a 2-core machine (spec §A5.1).
    with_info: return (dataset, DatasetInfo) instead of the dataset.
  """
  if split not in SPLITS:
    raise DatasetError(f'split must be one of {SPLITS}, got {split!r}')
  if image_cache.is_cache(data_dir):
    return _from_cache(name, data_dir, split, resolution, batch_size, train, seed, hires, deterministic, epochs,
                       start_epoch, skip, max_skipped_fraction, private_threadpool_size, with_info, attributes)
  source = registry.open_split(name, data_dir, split, num_examples=num_examples,
                               max_resolution=max([resolution] + ([hires] if hires else [])),
                               data_seed=data_seed, num_attributes=num_attributes, attributes=attributes)
  return build_image_dataset(
      source, name=name, split=split, resolution=resolution, batch_size=batch_size, train=train, seed=seed,
      hires=hires, deterministic=deterministic, epochs=epochs, start_epoch=start_epoch, skip=skip, cache=cache,
      verify=verify, max_skipped_fraction=max_skipped_fraction, num_examples=num_examples,
      private_threadpool_size=private_threadpool_size, with_info=with_info)


def _from_cache(name, cache_dir, split, resolution, batch_size, train, seed, hires, deterministic, epochs,
                start_epoch, skip, max_skipped_fraction, private_threadpool_size, with_info, attributes=None):
  """`make_image_dataset` over an image cache written by scripts/make_image_cache.py (`image_cache.py`): the
  same elements and stream arguments; the file check and the skip limit were applied when the cache was made.
  `attributes` selects among the attribute columns the cache holds."""
  try:
    manifest = image_cache.read_manifest(cache_dir, split)
    if manifest.dataset != name:
      raise DatasetError(f'the image cache in {cache_dir!r} was made from {manifest.dataset}, not {name}; pass '
                         f'--dataset={manifest.dataset}, or the folder of {name} itself')
    attribute_names = tuple(manifest.attribute_names)
    if attributes is not None:
      attribute_names, columns = records_lib.resolve_attributes(
          attribute_names, attributes, f'the {name} image cache in {cache_dir!r}')
    ds = image_cache.make_cached_dataset(
        cache_dir, split, batch_size, train, seed, resolution, hires, deterministic, epochs=epochs,
        start_epoch=start_epoch, skip=skip, private_threadpool_size=private_threadpool_size)
  except image_cache.CacheError as e:
    raise DatasetError(str(e)) from None
  if attributes is not None:
    columns = tf.constant(columns, tf.int32)
    ds = ds.map(lambda row: dict(row, attributes=tf.gather(row['attributes'], columns, axis=1)))
  if not with_info:
    return ds
  skipped = [tuple(f) for f in manifest.skipped_files]
  return ds, DatasetInfo(name=name, split=split, resolution=resolution, hires=hires, batch_size=batch_size,
                         num_examples=manifest.num_examples, num_skipped=len(skipped), skipped_files=skipped,
                         attribute_names=attribute_names, num_classes=manifest.num_classes,
                         num_listed=manifest.num_examples + len(skipped),
                         max_skipped_fraction=max_skipped_fraction, start_epoch=start_epoch, skip=skip)


def build_image_dataset(source: Union[Records, Generated], *, name: str, split: str = 'train',
                        resolution: int = 64, batch_size: int = 64, train: Optional[bool] = None, seed: int = 0,
                        hires: Optional[int] = None, deterministic: bool = True, epochs: Optional[int] = 1,
                        start_epoch: int = 0, skip: int = 0, cache: bool = False, verify: str = 'header',
                        max_skipped_fraction: float = 0.01, num_examples: Optional[int] = None,
                        private_threadpool_size: Optional[int] = None, with_info: bool = False):
  """`make_image_dataset` for a source a reader has already opened (`Records` listed on disk, or `Generated`)."""
  if batch_size < 1 or resolution < 1 or (hires is not None and hires < 1):
    raise ValueError('batch_size, resolution and hires must be positive')
  if epochs is not None and epochs < 1:
    raise ValueError(f'epochs must be None or >= 1, got {epochs}')
  if start_epoch < 0 or skip < 0:
    raise ValueError(f'start_epoch and skip must be >= 0, got {start_epoch}, {skip}')
  if verify not in VERIFY_MODES:
    raise ValueError(f'verify must be one of {VERIFY_MODES}, got {verify!r}')
  if not 0.0 <= max_skipped_fraction <= 1.0:
    raise ValueError(f'max_skipped_fraction must be in [0, 1], got {max_skipped_fraction}')
  train = (split == 'train') if train is None else bool(train)
  display = source.display_name or name
  random_crop = train and source.crop is not None
  options = tf.data.Options()
  options.deterministic = bool(deterministic)
  if private_threadpool_size:
    options.threading.private_threadpool_size = int(private_threadpool_size)

  failed = num_failed = paths = None
  if isinstance(source, Records):
    if num_examples is not None:
      source = source.select(np.arange(len(source.paths)) < num_examples)
    num_listed = len(source.paths)
    source = filter_unreadable(source, verify, display, max_skipped_fraction)
    n = len(source.paths)
    skipped = list(source.skipped)
    # Decode failures allowed on top of the file check's; a split none of whose files decodes is never complete.
    allowed = min(max_skipped(num_listed, max_skipped_fraction) - len(skipped), n - 1)
    crop = _Crop(source.boxes, source.crop, random_crop)
    message = (f'{display} looks incomplete: more than {max_skipped(num_listed, max_skipped_fraction)} of '
               f'{num_listed} listed images are missing or do not decode (max_skipped_fraction='
               f'{100 * max_skipped_fraction:g}%); DatasetInfo.incomplete_error() names them. Re-extract the image '
               'archive, or raise max_skipped_fraction to train on what is there.')
    loader = _FileLoader(source, crop, allowed, message)
    failed, num_failed, paths = loader.failed, loader.num_failed, source.paths
    attribute_names, num_classes = source.attribute_names, source.num_classes
  else:
    n = num_listed = source.num_examples
    skipped = []
    crop = _Crop(None, source.crop, random_crop)
    loader = _GeneratedLoader(source, crop)
    attribute_names, num_classes = source.attribute_names, source.num_classes
  if n < batch_size:
    raise DatasetError(f'{display} {split} split has {n} usable images, fewer than one batch of {batch_size}; use '
                       'a smaller batch size or another split')
  info = DatasetInfo(name=name, split=split, resolution=resolution, hires=hires, batch_size=batch_size,
                     num_examples=n, num_skipped=len(skipped), skipped_files=list(skipped),
                     attribute_names=tuple(attribute_names), num_classes=num_classes, num_listed=num_listed,
                     max_skipped_fraction=max_skipped_fraction, start_epoch=start_epoch, skip=skip, _paths=paths,
                     _failed=failed, _num_failed=num_failed)

  if cache:
    if random_crop:  # hold whole images; the random crops are drawn from them each epoch
      loader.crop = _Crop(None, None, False, whole=True)
    try:
      arrays = _materialise(loader, n, resolution, hires, keep_whole=random_crop, options=options)
    except tf.errors.InvalidArgumentError:
      if info.incomplete():
        raise info.incomplete_error() from None
      raise
    if failed is not None:  # freeze the decode failures of the one pass: the cache never decodes again
      info._failed_cached = info.runtime_skipped_files()  # pylint: disable=protected-access
    kept = arrays.pop('index') if arrays else np.zeros([0], np.int64)
    n = len(kept)
    info.num_examples = n
    if n < batch_size:
      raise DatasetError(f'{display} {split} split has {n} decodable images, fewer than one batch of '
                         f'{batch_size}')
    loader = _MemoryLoader(arrays, crop)
  if skip > n:
    raise ValueError(f'skip={skip} is past the end of an epoch of {n} examples')

  def process(row):
    if 'window' in row:
      small = resize_uint8(row['window'], resolution)
      large = resize_uint8(row['window'], hires) if hires else None
    else:
      small, large = row['small'], row.get('large')
    if train:
      # One flip decision for 'image' and 'hires' keeps Stage-2 pairs aligned.
      flip = tf.random.stateless_uniform([], _seeds(row)[1]) < 0.5
      small = tf.where(flip, tf.reverse(small, axis=[1]), small)
      if large is not None:
        large = tf.where(flip, tf.reverse(large, axis=[1]), large)
    out = {'image': normalise(small), 'label': tf.cast(row['label'], tf.int64), 'epoch': row['epoch'],
           'position': row['position']}
    if 'attributes' in row:
      out['attributes'] = tf.cast(row['attributes'], tf.float32)
    if hires:
      out['hires'] = normalise(large)
    return out

  def one_epoch(epoch):
    skip_here = tf.where(tf.equal(epoch, start_epoch), tf.constant(skip, tf.int64), tf.constant(0, tf.int64))
    ds = loader(epoch_index(n, seed, epoch, shuffle=train, skip=skip_here))
    ds = ds.map(process, num_parallel_calls=AUTOTUNE)
    return ds.batch(batch_size, drop_remainder=True)

  end = np.iinfo(np.int64).max if epochs is None else start_epoch + epochs
  ds = tf.data.Dataset.range(start_epoch, end).flat_map(one_epoch).prefetch(AUTOTUNE).with_options(options)
  return (ds, info) if with_info else ds
