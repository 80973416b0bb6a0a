"""`make_image_dataset(name, ...)`: the tf.data pipeline shared by Chapters 5 and 6 (spec ch5_6 §A5.1, §B5).

Names are either real data sets read from the user's disk in their published layout (`celeba`, `cub`, `lsun`;
`data_dir` required) or procedurally generated stand-ins (`synth_faces`, `synth_birds`, `synth_rooms`; see
`synthetic.py`). A missing or incomplete real data set raises `DatasetUnavailableError` naming the expected path,
the expected files and where to get them; it is never replaced by a stand-in.

Each element is a dict:
  * 'image': float32 [B, R, R, 3] in [-1, 1] (x / 127.5 - 1, spec §0);
  * 'label': int64 [B] (CUB species, synthetic class / identity; CelebA identity if `identity_CelebA.txt` is
    present, else -1; LSUN 0);
  * 'attributes': float32 [B, N] in {-1, +1} (celeba: the 40 attributes in file order; synth_faces);
  * 'hires': float32 [B, H, H, 3] when `hires=H`: the same crop (same random crop and flip) resized to H, the
    aligned (x_64, S(x)_128) pairs Stage 2 needs (T:L5006-5016).

Pipeline order (spec §A5.1):
  index -> shuffle (train; the whole index, reshuffled each epoch) -> parallel [decode -> ROI crop -> resize
  (bilinear, antialias)] -> random h-flip (train) -> x / 127.5 - 1 -> batch(drop_remainder=True) -> prefetch.
The LSUN random crop (shorter side -> 72, random 64 crop) is done as the equivalent crop of the decoded image
(a square of side 64/72 of the shorter side at a random position) before resizing, so the hires copy gets the
same window. Randomness is stateless, seeded per element from `Dataset.random(seed)` re-randomised each epoch:
results are reproducible for a seed and independent of parallelism.

Unreadable images never stop an epoch. Files are checked on the host when the index is built (missing, empty,
not an image by its magic bytes; `verify='decode'` fully decodes with Pillow), and are skipped and counted in
`DatasetInfo.num_skipped` with a warning. Anything that still fails to decode at run time is dropped by
`ignore_errors` and counted in `DatasetInfo.runtime_skipped()` (exact once an epoch has finished).
"""

import concurrent.futures
import dataclasses
import importlib
import logging
import math
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from rlcv_tf.datasets import synthetic

AUTOTUNE = tf.data.AUTOTUNE
SPLITS = ('train', 'val', 'test')
LSUN_CROP_FRACTION = 64.0 / 72.0  # spec §A5.1: shorter side -> 72, crop 64


class DatasetError(RuntimeError):
  """A data set cannot be used as asked (unknown split, malformed annotation file, ...)."""


class DatasetUnavailableError(DatasetError):
  """A real data set is missing or incomplete on disk. The message names the path, the layout and the source."""


def unavailable(dataset: str, data_dir: Optional[str], problem: str, layout: str, source: str,
                stand_in: Optional[str] = None) -> DatasetUnavailableError:
  """Builds the one-message error used by every reader (what path, what layout, where to get it)."""
  where = 'no data_dir was given' if data_dir is None else f'looked in {os.path.abspath(data_dir)!r}'
  msg = (f'{dataset} is not available: {problem} ({where}). Expected layout: {layout}. Get it from {source}; '
         'nothing is downloaded at run time.')
  if stand_in:
    msg += f' For a procedurally generated stand-in ask for {stand_in!r} explicitly.'
  return DatasetUnavailableError(msg)


# ------------------------------------------------------------------------------------------------ records


@dataclasses.dataclass
class Records:
  """What a reader found on disk: one row per usable image (after the file check).

  Attributes:
    paths: str [N] absolute image paths.
    labels: int64 [N].
    boxes: float32 [N, 4] crop windows (y0, x0, height, width) in pixels of the original image, or None when the
      crop is computed from the decoded image size (LSUN).
    attributes: float32 [N, K] in {-1, +1}, or None.
    attribute_names: the K names, in file order.
    num_classes: number of distinct labels, or None when labels are not classes (CelebA without identities).
    skipped: (path, reason) of the images that failed the file check.
  """
  paths: np.ndarray
  labels: np.ndarray
  boxes: Optional[np.ndarray] = None
  attributes: Optional[np.ndarray] = None
  attribute_names: Tuple[str, ...] = ()
  num_classes: Optional[int] = None
  skipped: List[Tuple[str, str]] = dataclasses.field(default_factory=list)

  def select(self, keep: np.ndarray) -> 'Records':
    return dataclasses.replace(
        self, paths=self.paths[keep], labels=self.labels[keep],
        boxes=None if self.boxes is None else self.boxes[keep],
        attributes=None if self.attributes is None else self.attributes[keep])


_MAGIC = (
    (b'\xff\xd8\xff', 'jpeg'),
    (b'\x89PNG\r\n\x1a\n', 'png'),
    (b'GIF87a', 'gif'),
    (b'GIF89a', 'gif'),
    (b'BM', 'bmp'),
)


def check_image_file(path: str, verify: str = 'header') -> Optional[str]:
  """Returns None if `path` looks decodable, else the reason it is not.

  'header' reads 16 bytes (missing, empty, or not JPEG/PNG/GIF/BMP/WebP by magic bytes: cheap enough for 200k
  files); 'decode' also fully decodes with Pillow (catches truncation, ~100x slower); 'none' skips the check.
  """
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
  elif verify != 'header':
    raise ValueError(f"verify must be 'header', 'decode' or 'none', got {verify!r}")
  return None


def check_files(paths: Sequence[str], verify: str = 'header', num_threads: int = 8) -> List[Optional[str]]:
  """`check_image_file` over many paths with a thread pool (the checks wait on I/O, not the GIL)."""
  if verify == 'none' or len(paths) == 0:
    return [None] * len(paths)
  with concurrent.futures.ThreadPoolExecutor(num_threads) as pool:
    return list(pool.map(lambda p: check_image_file(p, verify), paths, chunksize=256))


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
  if frac > max_skipped_fraction or bad.all():
    raise DatasetUnavailableError(
        f'{dataset} looks incomplete: {bad.sum()} of {len(bad)} listed images are missing or unreadable '
        f'({100 * frac:.1f}% > max_skipped_fraction={100 * max_skipped_fraction:g}%), e.g. {examples}. '
        'Re-extract the image archive, or raise max_skipped_fraction to train on what is there.')
  logging.warning('%s: skipping %d of %d images that are missing or unreadable, e.g. %s', dataset, bad.sum(),
                  len(bad), examples)
  out = records.select(~bad)
  out.skipped = list(records.skipped) + skipped
  return out


# ------------------------------------------------------------------------------------------------ registry


@dataclasses.dataclass(frozen=True)
class DatasetEntry:
  module: str              # rlcv_tf.datasets.<module>, imported lazily
  real: bool               # False for the generated stand-ins
  description: str
  has_attributes: bool = False
  crop: str = 'box'        # 'box' (per-image window) | 'shorter_side' (LSUN-style square crop)
  num_classes: Optional[int] = None


_REGISTRY: Dict[str, DatasetEntry] = {
    'celeba': DatasetEntry('celeba', True, 'CelebA aligned faces, 40 binary attributes, ROI 148x148 at (40, 15) '
                           '(spec §A5.1, §B5)', has_attributes=True),
    'cub': DatasetEntry('cub', True, 'CUB-200-2011 birds, 200 species, square ROI of 1.5 x the bbox (spec §A5.1)',
                        num_classes=200),
    'lsun': DatasetEntry('lsun', True, 'LSUN (bedroom) as an image folder; square crop of 64/72 of the shorter '
                         'side, random in training, centred otherwise (spec §A5.1)', crop='shorter_side',
                         num_classes=1),
    'synth_birds': DatasetEntry('synthetic', False, 'SynthBirds stand-in: 10 species on a 96x96 cluttered canvas, '
                                'cropped with the CUB ROI rule (spec §A5.2)', num_classes=synthetic.NUM_BIRD_SPECIES),
    'synth_faces': DatasetEntry('synthetic', False, 'SynthFaces stand-in: 12 CelebA-named attributes, 20 '
                                'identities (spec §B5)', has_attributes=True,
                                num_classes=synthetic.NUM_FACE_IDENTITIES),
    'synth_rooms': DatasetEntry('synthetic', False, 'SynthRooms stand-in: perspective bedrooms, 6 layout classes, '
                                'cropped like LSUN (spec §A5.2)', crop='shorter_side',
                                num_classes=synthetic.NUM_ROOM_LAYOUTS),
}

# Default sizes of the generated splits (spec §B4 small preset: 10k training images).
SYNTHETIC_SIZES = {'train': 10_000, 'val': 1_000, 'test': 1_000}


def names() -> List[str]:
  return sorted(_REGISTRY)


def entry(name: str) -> DatasetEntry:
  if name not in _REGISTRY:
    raise ValueError(f'unknown image data set {name!r}; valid names: {", ".join(names())}')
  return _REGISTRY[name]


def describe(name: str) -> str:
  """One paragraph: what the data set is and, for real ones, the expected layout and where to get it."""
  e = entry(name)
  text = f'{name}: {e.description}.'
  if e.real:
    module = importlib.import_module(f'rlcv_tf.datasets.{e.module}')
    text += f' Expected layout: {module.LAYOUT}. Source: {module.SOURCE}.'
  else:
    text += ' Generated on the fly (no data_dir); a stand-in, not the thesis data.'
  return text


# ------------------------------------------------------------------------------------------------ info


@dataclasses.dataclass
class DatasetInfo:
  """What `make_image_dataset(..., with_info=True)` built.

  Attributes:
    num_examples: images in the split after skipping unreadable files.
    num_skipped: images dropped by the host-side file check; `skipped_files` lists (path, reason).
    steps_per_epoch: num_examples // batch_size (the last partial batch is dropped).
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
  _attempted: Optional[tf.Variable] = dataclasses.field(default=None, repr=False)
  _decoded: Optional[tf.Variable] = dataclasses.field(default=None, repr=False)

  @property
  def steps_per_epoch(self) -> int:
    return self.num_examples // self.batch_size

  def runtime_skipped(self) -> int:
    """Images dropped because decoding failed inside tf.data, summed over all passes so far.

    Counted as (elements sent to decode) - (elements decoded); exact whenever no pass is midway.
    """
    if self._attempted is None:
      return 0
    return int(self._attempted.numpy() - self._decoded.numpy())

  @property
  def total_skipped(self) -> int:
    return self.num_skipped + self.runtime_skipped()


# ------------------------------------------------------------------------------------------------ graph pieces


ROI_SCALE = 1.5   # bird ROI: side = 1.5 x the longer bbox side (StackGAN convention, spec §A5.1)


def bird_roi(bbox: np.ndarray, scale: float = ROI_SCALE) -> np.ndarray:
  """The bird ROI of CUB and of its stand-in synth_birds: (x, y, w, h) boxes [N, 4] -> square crop windows
  (y0, x0, side, side) [N, 4], side = scale * max(w, h), centred on the box."""
  bbox = np.asarray(bbox, np.float32).reshape(-1, 4)
  x, y, w, h = bbox.T
  side = scale * np.maximum(w, h)
  cy, cx = y + h / 2, x + w / 2
  return np.stack([cy - side / 2, cx - side / 2, side, side], 1).astype(np.float32)


def crop_box(image: tf.Tensor, box: tf.Tensor) -> tf.Tensor:
  """Crops window `box` = (y0, x0, h, w) (pixels, may reach outside) from `image` [H, W, C].

  Outside the image the border pixels are repeated (edge padding, spec §A5.1) by clipping the gathered row and
  column indices, so a box that pokes out of the image still yields an undistorted h x w window.
  """
  shape = tf.shape(image)
  box = tf.cast(tf.round(box), tf.int32)
  h, w = tf.maximum(box[2], 1), tf.maximum(box[3], 1)
  rows = tf.clip_by_value(box[0] + tf.range(h), 0, shape[0] - 1)
  cols = tf.clip_by_value(box[1] + tf.range(w), 0, shape[1] - 1)
  return tf.gather(tf.gather(image, rows, axis=0), cols, axis=1)


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


def resize_uint8(image: tf.Tensor, size: int) -> tf.Tensor:
  """Antialiased bilinear resize to size x size, rounded back to uint8 (what a PNG cache would hold)."""
  out = tf.image.resize(image, [size, size], method='bilinear', antialias=True)
  return tf.cast(tf.clip_by_value(tf.round(out), 0, 255), tf.uint8)


def normalise(image: tf.Tensor) -> tf.Tensor:
  """uint8 -> float32 in [-1, 1] (spec §0: x / 127.5 - 1)."""
  return tf.cast(image, tf.float32) / 127.5 - 1.0


def _decode(path: tf.Tensor) -> tf.Tensor:
  image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
  image.set_shape([None, None, 3])
  return image


# ------------------------------------------------------------------------------------------------ builder


def _load_records(e: DatasetEntry, name: str, data_dir, split, verify, max_skipped_fraction) -> Records:
  module = importlib.import_module(f'rlcv_tf.datasets.{e.module}')
  records = module.load_records(data_dir, split)
  return filter_unreadable(records, verify, name, max_skipped_fraction)


def _synthetic_loader(name: str, split: str, canvas: int, data_seed: int, num_attributes: Optional[int],
                      num_attr_out: int) -> Callable:
  """Returns fn(indices int64 [n]) -> (image uint8 [n,S,S,3], label, attributes [n,K], box [n,4]) via numpy."""
  gen = synthetic.make_generator(name, canvas, data_seed, num_attributes)

  def fn(indices):
    out = gen.generate(indices, split)
    n = len(indices)
    attrs = out.get('attributes', np.zeros((n, num_attr_out), np.float32)).astype(np.float32)
    if 'bbox' in out:
      box = bird_roi(out['bbox'])
    else:
      box = np.tile(np.array([[0, 0, canvas, canvas]], np.float32), (n, 1))
    return out['image'], out['label'].astype(np.int64), attrs, box.astype(np.float32)

  return fn


def make_image_dataset(name: str,
                       data_dir: Optional[str] = None,
                       split: str = 'train',
                       resolution: int = 64,
                       batch_size: int = 64,
                       train: Optional[bool] = None,
                       seed: int = 0,
                       hires: Optional[int] = None,
                       deterministic: bool = False,
                       *,
                       shuffle_buffer: Optional[int] = None,
                       cache: bool = False,
                       verify: str = 'header',
                       max_skipped_fraction: float = 0.01,
                       num_examples: Optional[int] = None,
                       data_seed: int = 0,
                       num_attributes: Optional[int] = None,
                       private_threadpool_size: Optional[int] = None,
                       with_info: bool = False):
  """Builds the batched tf.data pipeline for image data set `name` (see the module docstring).

  Args:
    name: one of `names()`.
    data_dir: the data set's root on disk (real data sets only; must be None for stand-ins).
    split: 'train' | 'val' | 'test' (CUB has no validation split: 'val' reads its test split).
    resolution: R, the side of 'image'.
    batch_size: B; partial batches are dropped (the 2:1:1 batch mix of §A3.2 needs B % 4 == 0).
    train: shuffle + random flip (+ LSUN random crop). Defaults to split == 'train'.
    seed: shuffle / augmentation seed (each epoch still differs).
    hires: H, also yield 'hires' [B, H, H, 3] from the same crop, or None.
    deterministic: keep element order fixed under parallel map (`tf.data.Options.deterministic`).
    shuffle_buffer: None shuffles the whole index (cheap: it holds indices); with cache=True it holds images
      and defaults to min(N, 10000).
    cache: cache the decoded, cropped, resized uint8 images in memory after the first pass (the random LSUN crop
      then moves after the cache: the full decoded image is cached). Only when the split fits in RAM.
    verify: host-side file check, 'header' | 'decode' | 'none' (see `check_image_file`).
    max_skipped_fraction: more unreadable files than this fraction raises DatasetUnavailableError.
    num_examples: size of a generated split (stand-ins; default SYNTHETIC_SIZES) or a cap on a real one.
    data_seed: content seed of the stand-ins (image i of a split is fixed by (data_seed, split, i)).
    num_attributes: synth_faces only: keep the first N <= 12 attributes.
    private_threadpool_size: e.g. 2 on a 2-core machine (spec §A5.1).
    with_info: return (dataset, DatasetInfo) instead of the dataset.
  """
  e = entry(name)
  if split not in SPLITS:
    raise DatasetError(f'split must be one of {SPLITS}, got {split!r}')
  if batch_size < 1 or resolution < 1 or (hires is not None and hires < 1):
    raise ValueError('batch_size, resolution and hires must be positive')
  train = (split == 'train') if train is None else bool(train)
  random_crop = train and e.crop == 'shorter_side'

  # ---- the index: records (real) or a range of generated indices (stand-ins)
  if e.real:
    if data_dir is None:
      module = importlib.import_module(f'rlcv_tf.datasets.{e.module}')
      raise unavailable(module.DISPLAY_NAME, None, 'data_dir is required for a real data set', module.LAYOUT,
                        module.SOURCE, module.STAND_IN)
    records = _load_records(e, name, data_dir, split, verify, max_skipped_fraction)
    if num_examples is not None:
      records = records.select(np.arange(len(records.paths)) < num_examples)
    n = len(records.paths)
    attribute_names, num_classes = records.attribute_names, records.num_classes
    skipped = records.skipped
  else:
    if data_dir is not None:
      raise ValueError(f'{name} is generated; data_dir must be None (got {data_dir!r})')
    n = SYNTHETIC_SIZES[split] if num_examples is None else int(num_examples)
    records = None
    attribute_names = (synthetic.SynthFaces(num_attributes=num_attributes or 12).attribute_names
                       if name == 'synth_faces' else ())
    num_classes, skipped = e.num_classes, []
  if n < batch_size:
    raise DatasetError(f'{name}/{split} has {n} images, fewer than one batch of {batch_size}')
  has_attr = e.has_attributes
  num_attr = len(attribute_names)
  out_sizes = [resolution] + ([hires] if hires else [])

  attempted = tf.Variable(0, dtype=tf.int64, trainable=False) if e.real else None
  decoded = tf.Variable(0, dtype=tf.int64, trainable=False) if e.real else None

  # ---- stage 1: index -> (uint8 image, label, attributes, box) where box is the crop window or unused
  if e.real:
    table = {'path': records.paths.astype(str), 'label': records.labels.astype(np.int64)}
    if records.boxes is not None:
      table['box'] = records.boxes.astype(np.float32)
    if has_attr:
      table['attributes'] = records.attributes.astype(np.float32)
    table = {k: tf.constant(v) for k, v in table.items()}

    def load(index):
      attempted.assign_add(1)
      row = {k: tf.gather(v, index) for k, v in table.items()}
      row['image'] = _decode(row.pop('path'))
      return row

    def loaded(ds):
      ds = ds.map(load, num_parallel_calls=AUTOTUNE).ignore_errors(log_warning=True)
      def count(row):
        decoded.assign_add(1)
        return row
      return ds.map(count)
  else:
    # Canvas big enough for the largest output (birds: the spec's 96 at 64 px; rooms: 72 at 64).
    base = {'synth_birds': 96, 'synth_faces': 64, 'synth_rooms': 72}[name]
    canvas = max(base, int(math.ceil(base * max(out_sizes) / 64)))
    gen_fn = _synthetic_loader(name, split, canvas, data_seed, num_attributes, max(num_attr, 1))
    chunk = 32

    def gen_chunk(indices):
      image, label, attrs, box = tf.numpy_function(gen_fn, [indices], [tf.uint8, tf.int64, tf.float32, tf.float32],
                                                   stateful=False)
      image.set_shape([None, canvas, canvas, 3])
      label.set_shape([None])
      attrs.set_shape([None, max(num_attr, 1)])
      box.set_shape([None, 4])
      row = {'image': image, 'label': label, 'box': box}
      if has_attr:
        row['attributes'] = attrs
      return row

    def loaded(ds):
      return ds.batch(chunk).map(gen_chunk, num_parallel_calls=AUTOTUNE).unbatch()

  # ---- stage 2: ROI crop + resize (seeded when the crop is random); also the flip
  def crop_resize(row, seed=None):
    image = row.pop('image')
    if e.crop == 'shorter_side':
      box = shorter_side_box(tf.shape(image), LSUN_CROP_FRACTION, seed)
    else:
      box = row.pop('box')
    row.pop('box', None)
    window = crop_box(image, box)
    row['image'] = resize_uint8(window, resolution)
    if hires:
      row['hires'] = resize_uint8(window, hires)
    return row

  def augment(row, seed):
    # The same flip decision for 'image' and 'hires' keeps Stage-2 pairs aligned.
    flip = tf.random.stateless_uniform([], seed) < 0.5
    for key in ('image', 'hires'):
      if key in row:
        row[key] = tf.where(flip, tf.reverse(row[key], axis=[1]), row[key])
    return row

  def finish(row):
    out = {'image': normalise(row['image']), 'label': tf.cast(row['label'], tf.int64)}
    if has_attr:
      out['attributes'] = tf.cast(row['attributes'][..., :num_attr], tf.float32)
    if hires:
      out['hires'] = normalise(row['hires'])
    return out

  def with_seeds(ds, offset):
    # Per-element stateless seeds, re-drawn every epoch (rerandomize_each_iteration) yet fixed by `seed`.
    seeds = tf.data.Dataset.random(seed=seed + offset, rerandomize_each_iteration=True).batch(2)
    return tf.data.Dataset.zip((ds, seeds))

  def split_seed(row, s):
    pair = tf.random.experimental.stateless_split(s, 2)
    return row, pair[0], pair[1]

  index = tf.data.Dataset.range(n)
  if not cache:
    if train:
      index = index.shuffle(n if shuffle_buffer is None else shuffle_buffer, seed=seed,
                            reshuffle_each_iteration=True)
    ds = loaded(index)
    if train:
      ds = with_seeds(ds, 1).map(split_seed)
      ds = ds.map(lambda row, s_crop, s_flip: augment(crop_resize(row, s_crop if random_crop else None), s_flip),
                  num_parallel_calls=AUTOTUNE)
    else:
      ds = ds.map(crop_resize, num_parallel_calls=AUTOTUNE)
  else:
    # Deterministic work before the cache, randomness after it.
    ds = loaded(index)
    if not random_crop:
      ds = ds.map(crop_resize, num_parallel_calls=AUTOTUNE)
    ds = ds.cache()
    if train:
      ds = ds.shuffle(min(n, 10_000) if shuffle_buffer is None else shuffle_buffer, seed=seed,
                      reshuffle_each_iteration=True)
      ds = with_seeds(ds, 1).map(split_seed)
      ds = ds.map(lambda row, s_crop, s_flip: augment(crop_resize(row, s_crop) if random_crop else row, s_flip),
                  num_parallel_calls=AUTOTUNE)
  ds = ds.map(finish, num_parallel_calls=AUTOTUNE)
  ds = ds.batch(batch_size, drop_remainder=True).prefetch(AUTOTUNE)

  options = tf.data.Options()
  options.deterministic = bool(deterministic)
  if private_threadpool_size:
    options.threading.private_threadpool_size = int(private_threadpool_size)
  ds = ds.with_options(options)

  if not with_info:
    return ds
  info = DatasetInfo(name=name, split=split, resolution=resolution, hires=hires, batch_size=batch_size,
                     num_examples=n, num_skipped=len(skipped), skipped_files=list(skipped),
                     attribute_names=tuple(attribute_names), num_classes=num_classes,
                     _attempted=attempted, _decoded=decoded)
  return ds, info
