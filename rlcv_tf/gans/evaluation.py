"""How well a GAN learned (issue 15 §2, §7): exact W1 and mode coverage for the 2-D toys, inception score and class
consistency for digits, with the in-house classifier of `core/vaegan/evaluation.py`.

* `w1_exact(x, y)`: the Wasserstein-1 distance between two equal-size empirical measures in R^d. For n points each
  with mass 1/n an optimal coupling is a permutation (Birkhoff-von Neumann), so W1 = min over assignments of the
  mean Euclidean distance, solved exactly by the Hungarian method (scipy's `linear_sum_assignment`). This is the
  slides' earth mover distance [S3:L288-300] between the samples, not a critic's estimate.
* `ring_coverage(samples)`: the ring of 8 Gaussians' usual scores (Metz et al. 2017; Srivastava et al. 2017, VEEGAN
  [orig]): a sample is "high quality" when it lies within 3 std of its nearest mode mean; a mode is covered when at
  least `min_share` (default a quarter) of its fair share 1/8 of all samples are high-quality samples of that mode.
* `class_consistency`: the share of cGAN samples G(z, onehot(y)) that the classifier assigns to y.
* `inception_score_of` / `train_digit_classifier`: the IS of generated digits under the VGG11-shaped classifier
  (reused, not re-implemented).
"""

from typing import Dict

import numpy as np
from scipy import optimize
from scipy.spatial import distance

from rlcv_tf.core.vaegan import evaluation as vaegan_eval
from rlcv_tf.gans import data as data_lib


def w1_exact(x, y) -> float:
  """Exact W1 between the empirical measures of x [n, d] and y [n, d] (equal n) by optimal assignment."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if x.ndim == 1:
    x, y = x[:, None], y[:, None]
  if x.shape != y.shape:
    raise ValueError(f'w1_exact: equal-size samples of the same dimension needed, got {x.shape} and {y.shape}')
  cost = distance.cdist(x, y)
  rows, cols = optimize.linear_sum_assignment(cost)
  return float(cost[rows, cols].mean())


def ring_coverage(samples, std: float = data_lib.RING_STD, min_share: float = 0.25) -> Dict[str, float]:
  """{'modes_covered': k in 0..8, 'high_quality': fraction within 3 std of a mode mean}.

  A mode is covered when at least min_share / 8 of all samples lie within 3 std of its mean."""
  samples = np.asarray(samples, np.float64)
  centers = data_lib.ring_centers()
  d = distance.cdist(samples, centers)
  nearest = d.argmin(axis=1)
  close = d[np.arange(len(samples)), nearest] <= 3 * std
  counts = np.bincount(nearest[close], minlength=len(centers))
  covered = int(np.sum(counts >= min_share * len(samples) / len(centers)))
  return {'modes_covered': float(covered), 'high_quality': float(close.mean())}


def scatter_image(points, size: int = 160, extent: float = 3.0, reference=None) -> np.ndarray:
  """A uint8 [size, size, 3] picture of 2-D points on [-extent, extent]^2: `reference` (e.g. real samples) in
  light blue, `points` in black, the mode means as red crosses (for the PNG sheets and TensorBoard)."""
  image = np.full((size, size, 3), 255, np.uint8)

  def pixels(p):
    p = np.asarray(p, np.float64)
    ij = np.round((p + extent) / (2 * extent) * (size - 1)).astype(int)
    keep = np.all((ij >= 0) & (ij < size), axis=1)
    return (size - 1 - ij[keep, 1]), ij[keep, 0]

  if reference is not None:
    r, c = pixels(reference)
    image[r, c] = (150, 190, 255)
  r, c = pixels(points)
  image[r, c] = (0, 0, 0)
  r, c = pixels(data_lib.ring_centers())
  for dr, dc in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)):
    image[np.clip(r + dr, 0, size - 1), np.clip(c + dc, 0, size - 1)] = (220, 0, 0)
  return image


def toy_scores(generate_fn, num: int = 500, seed: int = 0) -> Dict[str, float]:
  """W1 (exact) between `num` samples of generate_fn(num) and `num` fresh ring samples, and the ring coverage."""
  real, _ = data_lib.sample_ring(num, np.random.default_rng([seed, 1234]))
  fake = np.asarray(generate_fn(num))
  return {'w1': w1_exact(fake, real), **ring_coverage(fake)}


def train_digit_classifier(source, epochs: int = 3, seed: int = 0):
  """The VGG11-shaped in-house classifier (`core/vaegan/evaluation.build_classifier`) trained on the source's
  training digits ([-1, 1]); returns (model, held-out accuracy)."""
  import keras  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(seed)
  model = vaegan_eval.build_classifier(source.shape, 10)
  labels = source.train_c.argmax(axis=1)
  accuracy = vaegan_eval.train_classifier(model, (source.train_x, labels), epochs=epochs,
                                          validation=(source.test_x, source.test_labels), seed=seed)
  return model, accuracy


def class_consistency(generate_fn, classifier, num_classes: int = 10, per_class: int = 50) -> float:
  """Share of G(z, onehot(y)) classified as y, over `per_class` samples of each class."""
  labels = np.repeat(np.arange(num_classes), per_class)
  images = np.asarray(generate_fn(len(labels), data_lib.one_hot(labels, num_classes)))
  probs = vaegan_eval.classifier_probs(classifier, images)
  return float(np.mean(probs.argmax(axis=1) == labels))


def inception_score_of(images, classifier, num_splits: int = 5) -> Dict[str, float]:
  """IS (mean, std over splits) and the mean top-class confidence of `images` under `classifier`."""
  probs = vaegan_eval.classifier_probs(classifier, np.asarray(images))
  mean, std = vaegan_eval.inception_score(probs, num_splits=num_splits, shuffle_seed=0)   # random splits: sets may be class-sorted
  return {'inception_score': mean, 'inception_score_std': std, 'confidence': float(probs.max(axis=1).mean())}


def digits_learning_check(results: Dict[str, float], min_score: float = 2.0, min_ratio: float = 2.0):
  """Did a digits run learn? (passed, one line): the inception score under the in-house classifier at least
  `min_score` (of 10 classes; real test digits score about 8.5) and `min_ratio` x the untrained generator's (about
  1: one blob in one class). The slide's saturating G loss in docs/gans_digits scored 1.00 and fails it."""
  score, score_0 = results['eval/inception_score'], results['eval/inception_score_untrained']
  real = results.get('eval/inception_score_real', float('nan'))
  passed = score >= min_score and score >= min_ratio * score_0
  line = (f'learning check {"passed" if passed else "FAILED"}: inception score {score:.2f} under the in-house digit '
          f'classifier vs the untrained generator\'s {score_0:.2f} and real test digits\' {real:.2f} (needs >= '
          f'{min_score:g} and >= {min_ratio:g}x untrained)')
  return passed, line


def toy_learning_check(results: Dict[str, float], max_w1_ratio: float = 0.5, min_modes: int = 6):
  """Did a ring8 run learn? (passed, one line): W1 below `max_w1_ratio` x the untrained generator's and at least
  `min_modes` of the 8 modes covered. (A mode-collapsed GAN can pass the W1 half and fail the modes.)"""
  w1, w1_0, modes = results['eval/w1'], results['eval/w1_untrained'], results['eval/modes_covered']
  passed = w1 < max_w1_ratio * w1_0 and modes >= min_modes
  line = (f'learning check {"passed" if passed else "FAILED"}: W1 {w1:.3f} vs the untrained generator\'s {w1_0:.3f} '
          f'(needs < {max_w1_ratio:g}x), modes covered {modes:.0f}/8 (needs >= {min_modes})')
  return passed, line
