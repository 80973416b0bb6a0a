"""Chapter 6 conditional D minibatch (rlcv_tf.core.gan: COND_THIRDS_MIX, COND_QUARTERS_MIX, mismatched_attributes,
conditional_mix_batch; thesis Eq. 6.1, T:L5997-5999; spec ch5_6 Part B3, §8-A6) against hand-written tables and
a NumPy loop."""

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.core import gan

# B = 12 by hand. Images are tagged real 100 + j, recon 200 + j, prior 300 + j (j the position).
THIRDS_SOURCES = ['real', 'mismatched', 'recon', 'real', 'mismatched', 'prior'] * 2
THIRDS_IMAGES = [100, 101, 202, 103, 104, 305, 106, 107, 208, 109, 110, 311]
THIRDS_LABELS = [1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0]
QUARTERS_SOURCES = ['real', 'mismatched', 'prior', 'recon'] * 3
QUARTERS_IMAGES = [100, 101, 302, 203, 104, 105, 306, 207, 108, 109, 310, 211]
QUARTERS_LABELS = [1, 0, 0, 0] * 3
# With 12 distinct attribute vectors the deterministic mismatch of example j is example j + 1: the row of the
# attribute matrix each position's condition comes from.
THIRDS_CONDITION_ROWS = [0, 2, 2, 3, 5, 5, 6, 8, 8, 9, 11, 11]
QUARTERS_CONDITION_ROWS = [0, 2, 2, 3, 4, 6, 6, 7, 8, 10, 10, 11]


def tagged(batch_size, base):
  return np.broadcast_to((base + np.arange(batch_size, dtype=np.float32))[:, None, None, None],
                         (batch_size, 2, 2, 3)).copy()


def distinct_attributes(batch_size, n=4):
  """Row j: the n-bit binary code of j as +-1 (distinct rows for batch_size <= 2**n)."""
  bits = (np.arange(batch_size)[:, None] >> np.arange(n)[None, :]) & 1
  return (2.0 * bits - 1.0).astype(np.float32)


def np_mismatched(a):
  """The deterministic rule, as a loop: the first example after i (cyclically) whose vector differs, else a_i with
  attribute i mod N negated."""
  b, n = a.shape
  out = np.empty_like(a)
  for i in range(b):
    for d in range(1, b):
      k = (i + d) % b
      if np.any(a[k] != a[i]):
        out[i] = a[k]
        break
    else:
      out[i] = a[i]
      out[i, i % n] = -a[i, i % n]
  return out


def repeated_batches():
  rng = np.random.default_rng(7)
  pool = np.array([[1, 1, -1, 1, -1], [1, 1, -1, 1, 1], [-1, 1, -1, 1, -1]], np.float32)   # close vectors
  batches = [pool[rng.integers(0, 3, size=b)] for b in (2, 6, 12, 13, 30)]
  batches.append(pool[[0, 0, 0, 0, 0, 1, 0, 0]])      # one odd example out: every other row must take it
  batches.append(pool[[2] * 12])                      # all identical: flips
  batches.append(pool[[1]])                           # B = 1: a flip
  return batches


# ----------------------------------------------------------------------------------------- the two mixes


@pytest.mark.parametrize('mode,sources,images,labels,rows', [
    ('thirds', THIRDS_SOURCES, THIRDS_IMAGES, THIRDS_LABELS, THIRDS_CONDITION_ROWS),
    ('quarters', QUARTERS_SOURCES, QUARTERS_IMAGES, QUARTERS_LABELS, QUARTERS_CONDITION_ROWS),
])
def test_positions_labels_and_conditions_match_the_hand_written_table_at_b12(mode, sources, images, labels, rows):
  attributes = distinct_attributes(12)
  x, cond, y, source = gan.conditional_mix_batch(tagged(12, 100), attributes, tagged(12, 200), tagged(12, 300),
                                                 mode=mode)
  mix = gan.conditional_mix(mode)
  assert [mix.sources[i] for i in source.numpy()] == sources
  np.testing.assert_array_equal(x.numpy()[:, 0, 0, 0], images)
  np.testing.assert_array_equal(x.numpy(), np.broadcast_to(np.array(images, np.float32)[:, None, None, None],
                                                           (12, 2, 2, 3)))
  np.testing.assert_array_equal(y.numpy(), labels)
  np.testing.assert_array_equal(cond.numpy(), attributes[rows])
  assert y.dtype == tf.float32 and source.dtype == tf.int32 and cond.shape == (12, 4)


def test_the_mixes_are_minibatch_mix_instances_with_their_shares():
  assert gan.COND_THIRDS_MIX.period == 6 and gan.COND_QUARTERS_MIX.period == 4
  assert gan.COND_THIRDS_MIX.describe() == '2 real : 2 mismatched : 1 prior : 1 recon per 6'
  assert gan.COND_QUARTERS_MIX.describe() == '1 real : 1 mismatched : 1 prior : 1 recon per 4'
  assert gan.conditional_mix() is gan.COND_THIRDS_MIX        # the thesis is the default
  assert gan.THESIS_MIX.pattern == (0, 0, 1, 2)               # Chapter 5's mix is untouched


def test_errors_name_the_valid_modes_and_the_divisor():
  with pytest.raises(ValueError, match="'halves'.*'thirds', 'quarters'"):
    gan.conditional_mix('halves')
  a8, a6 = distinct_attributes(8), distinct_attributes(6)
  with pytest.raises(ValueError, match='divisible by 6'):
    gan.conditional_mix_batch(tagged(8, 100), a8, tagged(8, 200), tagged(8, 300), mode='thirds')
  with pytest.raises(ValueError, match='divisible by 4'):
    gan.conditional_mix_batch(tagged(6, 100), a6, tagged(6, 200), tagged(6, 300), mode='quarters')
  with pytest.raises(ValueError, match='6 images but 8 attribute vectors'):
    gan.conditional_mix_batch(tagged(6, 100), a8, tagged(6, 200), tagged(6, 300))
  with pytest.raises(ValueError, match='sources'):
    gan.conditional_mix_batch(tagged(4, 100), distinct_attributes(4), tagged(4, 200), tagged(4, 300),
                              mode=gan.THESIS_MIX)
  with pytest.raises(ValueError, match=r'\[B, N\]'):
    gan.mismatched_attributes(np.ones(4, np.float32))


# ----------------------------------------------------------------------------------------- mismatched vectors


def test_deterministic_mismatch_equals_the_numpy_loop_and_never_the_own_vector():
  for a in repeated_batches() + [distinct_attributes(12)]:
    got = gan.mismatched_attributes(a).numpy()
    np.testing.assert_array_equal(got, np_mismatched(a))
    assert np.all(np.any(got != a, axis=1)), a


def test_all_identical_batch_flips_exactly_one_attribute():
  a = np.tile(np.array([[1, -1, 1]], np.float32), (5, 1))
  got = gan.mismatched_attributes(a).numpy()
  np.testing.assert_array_equal(got, [[-1, -1, 1], [1, 1, 1], [1, -1, -1], [-1, -1, 1], [1, 1, 1]])
  seeded = gan.mismatched_attributes(a, seed=[5, 6]).numpy()
  np.testing.assert_array_equal(np.sum(seeded != a, axis=1), np.ones(5))
  np.testing.assert_array_equal(np.abs(seeded), np.ones_like(a))


def test_seeded_mismatch_is_another_differing_example_uniformly():
  fn = tf.function(gan.mismatched_attributes, input_signature=[tf.TensorSpec([None, None], tf.float32),
                                                               tf.TensorSpec([2], tf.int32)])
  for a in repeated_batches():
    for s in range(5):
      got = fn(a, tf.constant([s, 11], tf.int32)).numpy()
      assert np.all(np.any(got != a, axis=1))
      for i in range(len(a)):
        others = a[np.any(a != a[i], axis=1)]
        if len(others):     # one of the batch's vectors that differ from a_i
          assert np.any(np.all(others == got[i], axis=1)), (a, i, got[i])
        else:               # a flip of one attribute
          assert np.sum(got[i] != a[i]) == 1
  # Monte Carlo: row 0 (= row 1) has three candidates, rows 2, 3, 4; each should come up a third of the time.
  a = distinct_attributes(4)[[0, 0, 1, 2, 3]]
  picks = np.array([fn(a, tf.constant([s, 3], tf.int32)).numpy()[0] for s in range(300)])
  counts = [int(np.sum(np.all(picks == a[k], axis=1))) for k in (2, 3, 4)]
  assert sum(counts) == 300 and all(60 <= c <= 140 for c in counts), counts   # mean 100, sd 8.2
  np.testing.assert_array_equal(fn(a, tf.constant([1, 3])), fn(a, tf.constant([1, 3])))   # a seed is a seed
  # The flip attribute of an all-identical batch is drawn from the seed: all N come up.
  same = np.ones((3, 5), np.float32)
  flipped = {int(np.argmax(row != 1)) for s in range(40) for row in fn(same, tf.constant([s, 9])).numpy()}
  assert flipped == set(range(5))


def test_mismatched_positions_of_the_mix_never_pair_an_image_with_its_own_vector():
  for a in repeated_batches():
    b = len(a)
    if b % 6 and b % 4:
      continue
    for mode in ('thirds', 'quarters'):
      if b % gan.conditional_mix(mode).period:
        continue
      for seed in (None, [4, 2]):
        _, cond, y, source = gan.conditional_mix_batch(tagged(b, 100), a, tagged(b, 200), tagged(b, 300), mode,
                                                       seed=seed)
        cond, source = cond.numpy(), source.numpy()
        mismatched = source == gan.CONDITIONAL_SOURCES.index('mismatched')
        assert mismatched.any()
        assert np.all(np.any(cond[mismatched] != a[mismatched], axis=1))
        np.testing.assert_array_equal(cond[~mismatched], a[~mismatched])   # every other position: a_j
        np.testing.assert_array_equal(y.numpy()[mismatched], 0.0)


# ----------------------------------------------------------------------------------------- tf.function


def test_dynamic_batch_under_tf_function():
  image = tf.TensorSpec([None, 2, 2, 3], tf.float32)
  attrs = tf.TensorSpec([None, 4], tf.float32)

  @tf.function(input_signature=[image, attrs, image, image])
  def thirds(real, a, recon, prior):
    return gan.conditional_mix_batch(real, a, recon, prior, 'thirds')

  @tf.function(input_signature=[image, attrs, image, image])
  def quarters(real, a, recon, prior):
    return gan.conditional_mix_batch(real, a, recon, prior, 'quarters')

  for fn, images, labels, rows in ((thirds, THIRDS_IMAGES, THIRDS_LABELS, THIRDS_CONDITION_ROWS),
                                   (quarters, QUARTERS_IMAGES, QUARTERS_LABELS, QUARTERS_CONDITION_ROWS)):
    a = distinct_attributes(12)
    x, cond, y, _ = fn(tagged(12, 100), a, tagged(12, 200), tagged(12, 300))
    np.testing.assert_array_equal(x.numpy()[:, 0, 0, 0], images)
    np.testing.assert_array_equal(y.numpy(), labels)
    np.testing.assert_array_equal(cond.numpy(), a[rows])
  # Another batch size through the same trace, with an all-identical batch (the flip case) in the graph.
  same = np.tile(distinct_attributes(6)[3:4], (6, 1))
  _, cond, y, source = thirds(tagged(6, 100), same, tagged(6, 200), tagged(6, 300))
  np.testing.assert_array_equal(y.numpy(), THIRDS_LABELS[:6])
  np.testing.assert_array_equal(cond.numpy()[[1, 4]], np_mismatched(same)[[1, 4]])
  assert thirds.experimental_get_tracing_count() == 1
  with pytest.raises(tf.errors.InvalidArgumentError, match='divisible by 6'):
    thirds(tagged(8, 100), distinct_attributes(8), tagged(8, 200), tagged(8, 300))
  with pytest.raises(tf.errors.InvalidArgumentError, match='divisible by 4'):
    quarters(tagged(6, 100), distinct_attributes(6), tagged(6, 200), tagged(6, 300))
