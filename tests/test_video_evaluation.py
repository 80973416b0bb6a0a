"""Chapter 7 evaluation maths: keypoint displacement distance, retrieval, linear probe and votes (issue 13 §4, §6)."""

import itertools

import numpy as np
import pytest

from rlcv_tf.video import evaluation


def brute_distance(ref, ret, match):
  """min over permutations of (1/M) sum_m sum_t ||dref_{t,m} - dret_{t,pi(m)}||_1, by explicit loops."""
  t_len, m_len, _ = ref.shape
  perms = itertools.permutations(range(m_len)) if match else [tuple(range(m_len))]
  best = np.inf
  for perm in perms:
    total = 0.0
    for m in range(m_len):
      for t in range(t_len - 1):
        d_ref = ref[t + 1, m] - ref[t, m]
        d_ret = ret[t + 1, perm[m]] - ret[t, perm[m]]
        total += np.abs(d_ref - d_ret).sum()
    best = min(best, total / m_len)
  return best


# ------------------------------------------------------------------------------------------------ keypoint distance


def test_hand_computed_example():
  ref = np.array([[[0, 0], [10, 10]], [[1, 0], [10, 12]], [[3, 1], [10, 13]]], float)
  ret = np.array([[[5, 5], [0, 0]], [[5, 7], [1, 1]], [[5, 7], [3, 1]]], float)
  # Displacements: ref m0 (1,0),(2,1); m1 (0,2),(0,1). ret m0 (0,2),(0,0); m1 (1,1),(2,0).
  # Identity pairing: (3 + 3) + (2 + 3) = 11 -> 5.5. Swapped: (1 + 1) + (0 + 1) = 3 -> 1.5.
  assert evaluation.keypoint_displacement_distance(ref, ret, match_permutations=False) == pytest.approx(5.5)
  assert evaluation.keypoint_displacement_distance(ref, ret, match_permutations=True) == pytest.approx(1.5)


def test_zero_on_identical_clips_and_offset_invariant():
  rng = np.random.default_rng(0)
  clip = rng.uniform(0, 64, size=(8, 2, 2))
  assert evaluation.keypoint_displacement_distance(clip, clip) == 0.0
  other = rng.uniform(0, 64, size=(8, 2, 2))
  base = evaluation.keypoint_displacement_distance(clip, other)
  assert base > 0
  shifted = evaluation.keypoint_displacement_distance(clip + np.array([7.5, -3.0]), other)
  assert shifted == pytest.approx(base, rel=1e-12)
  assert evaluation.keypoint_displacement_distance(clip, other - 11.0) == pytest.approx(base, rel=1e-12)


def test_swap_invariance_only_with_matching():
  rng = np.random.default_rng(1)
  ref = rng.uniform(0, 64, size=(8, 2, 2))
  ret = rng.uniform(0, 64, size=(8, 2, 2))
  swapped = ret[:, ::-1]
  matched = evaluation.keypoint_displacement_distance(ref, ret, True)
  assert evaluation.keypoint_displacement_distance(ref, swapped, True) == pytest.approx(matched, rel=1e-12)
  assert evaluation.keypoint_displacement_distance(ref, ref[:, ::-1], True) == 0.0
  assert evaluation.keypoint_displacement_distance(ref, ref[:, ::-1], False) > 0.0
  unmatched = evaluation.keypoint_displacement_distance(ref, ret, False)
  assert unmatched != pytest.approx(evaluation.keypoint_displacement_distance(ref, swapped, False))


@pytest.mark.parametrize('m', [1, 3, 7])
def test_batched_matches_brute_force(m):
  rng = np.random.default_rng(m)
  n = 3 if m == 7 else 6
  refs = rng.normal(size=(n, 5, m, 2)) * 4
  rets = rng.normal(size=(n, 5, m, 2)) * 4
  for match in (True, False):
    got = evaluation.keypoint_displacement_distances(refs, rets, match)
    assert got.shape == (n,)
    want = [brute_distance(refs[i], rets[i], match) for i in range(n)]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_distance_rejects_bad_shapes():
  with pytest.raises(ValueError):
    evaluation.keypoint_displacement_distance(np.zeros((1, 2, 2)), np.zeros((1, 2, 2)))  # T = 1
  with pytest.raises(ValueError):
    evaluation.keypoint_displacement_distance(np.zeros((4, 2, 2)), np.zeros((4, 3, 2)))


# ------------------------------------------------------------------------------------------------ retrieval


def brute_neighbours(queries, database, k, exclude_self):
  out = []
  for i, q in enumerate(queries):
    dists = [np.sqrt(((q - row) ** 2).sum()) for row in database]
    if exclude_self:
      dists[i] = np.inf
    out.append(sorted(range(len(database)), key=lambda j: (dists[j], j))[:k])
  return np.array(out)


@pytest.mark.parametrize('k,exclude_self', [(1, False), (1, True), (4, False), (5, True)])
def test_nearest_neighbours_match_brute_force(k, exclude_self):
  rng = np.random.default_rng(k)
  database = rng.normal(size=(37, 6))
  queries = database if exclude_self else rng.normal(size=(23, 6))
  want = brute_neighbours(queries, database, k, exclude_self)
  for chunk in (37 * 5, 10**7):  # 5 query rows per chunk, and everything at once
    got, dist = evaluation.nearest_neighbours(queries, database, k, exclude_self, return_distances=True,
                                              chunk_elements=chunk)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(dist, np.linalg.norm(queries[:, None] - database[want], axis=-1), atol=1e-9)
  if not exclude_self:
    assert (evaluation.nearest_neighbours(database, database, 1)[:, 0] == np.arange(37)).all()


def test_nearest_neighbours_bad_arguments():
  with pytest.raises(ValueError):
    evaluation.nearest_neighbours(np.zeros((3, 2)), np.zeros((4, 2)), exclude_self=True)
  with pytest.raises(ValueError):
    evaluation.nearest_neighbours(np.zeros((3, 2)), np.zeros((3, 2)), k=3, exclude_self=True)


# ------------------------------------------------------------------------------------------------ linear probe


def test_probe_separates_separable_data():
  rng = np.random.default_rng(0)
  centres = rng.normal(size=(5, 12)) * 6.0
  y_train = rng.integers(0, 5, 500)
  y_test = rng.integers(0, 5, 1000)
  x_train = centres[y_train] + rng.normal(size=(500, 12))
  x_test = centres[y_test] + rng.normal(size=(1000, 12))
  x_train, x_test = x_train * 100.0 + 40.0, x_test * 100.0 + 40.0  # standardisation handles the scale
  acc = evaluation.linear_probe(x_train, y_train, x_test, y_test, num_classes=5)
  assert acc >= 0.99
  a = evaluation.fit_linear_probe(x_train, y_train, 5)
  b = evaluation.fit_linear_probe(x_train, y_train, 5)
  np.testing.assert_array_equal(a.weights, b.weights)  # deterministic
  assert a.logits(x_test).shape == (1000, 5)


def test_probe_is_at_chance_on_random_labels():
  rng = np.random.default_rng(1)
  x_train, x_test = rng.normal(size=(400, 20)), rng.normal(size=(3000, 20))
  y_train, y_test = rng.integers(0, 4, 400), rng.integers(0, 4, 3000)
  probe = evaluation.fit_linear_probe(x_train, y_train, 4)
  assert probe.accuracy(x_train, y_train) > 0.3  # it does fit the training noise somewhat
  assert 0.19 < probe.accuracy(x_test, y_test) < 0.31


def test_probe_handles_constant_features_and_images():
  rng = np.random.default_rng(2)
  y = np.arange(40) % 2
  x = np.zeros((40, 2, 2, 3))
  x[..., 0, 0, 0] = y * 2.0 - 1.0 + 0.1 * rng.normal(size=40)  # one informative feature; the rest constant
  probe = evaluation.fit_linear_probe(x, y, 2)
  assert np.isfinite(probe.weights).all() and probe.accuracy(x, y) == 1.0
  with pytest.raises(ValueError):
    evaluation.fit_linear_probe(x, y + 1, 2)


# ------------------------------------------------------------------------------------------------ votes


def test_vote_methods():
  logits = np.array([[[20.0, 0.0], [0.0, 2.0], [0.0, 2.0], [0.0, 2.0]],
                     [[1.0, 0.0], [2.0, 0.0], [0.0, 0.5], [3.0, 0.0]]])
  # video 0: mean logits (5, 1.5) -> 0; mean softmax (0.34, 0.66) -> 1; per-frame argmaxes 0,1,1,1 -> 1.
  np.testing.assert_array_equal(evaluation.vote(logits), [0, 0])
  np.testing.assert_array_equal(evaluation.vote(logits, 'mean_softmax'), [1, 0])
  np.testing.assert_array_equal(evaluation.vote(logits, 'majority'), [1, 0])
  preds = np.array([[2, 2, 0, 1], [0, 1, 1, 0]])
  np.testing.assert_array_equal(evaluation.vote(preds, 'majority', num_classes=3), [2, 0])  # tie -> lowest
  with pytest.raises(ValueError):
    evaluation.vote(preds, 'mean_logits')


def test_group_vote_matches_vote_on_equal_groups_and_handles_ragged():
  rng = np.random.default_rng(3)
  logits = rng.normal(size=(4, 3, 5))
  order = rng.permutation(12)
  ids = np.repeat(np.array([7, 3, 9, 1]), 3)
  for method in evaluation.VOTE_METHODS:
    groups, preds = evaluation.group_vote(logits.reshape(12, 5)[order], ids[order], method)
    np.testing.assert_array_equal(groups, [1, 3, 7, 9])
    want = evaluation.vote(logits, method)
    np.testing.assert_array_equal(preds, want[[3, 1, 0, 2]])
  groups, preds = evaluation.group_vote(np.array([[0.0, 1.0], [5.0, 0.0], [1.0, 0.0]]), [0, 1, 1])
  np.testing.assert_array_equal(preds, [1, 0])
