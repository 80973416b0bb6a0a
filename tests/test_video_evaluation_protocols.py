"""Chapter 7 evaluation protocols (issue 13 §4): the controlled swap rate, digit-pair agreement, the retrieval
report and its random floor, leave-one-actor-out and identity folds, and the per-frame probe with votes.

References are hand examples and explicit loops written from the protocol text, not the code under test.
"""

import numpy as np
import pytest

from rlcv_tf.video import evaluation


# ------------------------------------------------------------------------------------------------ controlled swap
def test_controlled_swap_rate_hand_example():
  query = np.zeros((5, 2))
  same_trajectory = np.array([[1, 0], [3, 0], [2, 0], [0, 0], [0, 0.5]])
  same_digits = np.array([[2, 0], [1, 0], [0, 2], [0, 0], [0, 0.6]])
  # Trajectory clip nearer: yes, no, tie, tie, yes -> (1 + 0 + 0.5 + 0.5 + 1) / 5.
  assert evaluation.controlled_swap_rates(query, same_trajectory, same_digits) == pytest.approx(0.6)
  assert evaluation.controlled_swap_rates(query, same_digits, same_trajectory) == pytest.approx(0.4)


def test_controlled_swap_rate_uses_euclidean_distance():
  query = np.zeros((1, 2))
  # (4, 4) vs (6, 0): Euclidean 5.66 < 6 (trajectory clip nearer), L1 8 > 6 (it would be farther).
  assert evaluation.controlled_swap_rates(query, [[4.0, 4.0]], [[6.0, 0.0]]) == 1.0
  assert evaluation.controlled_swap_rates(query, [[4.0, 4.0]], [[5.5, 0.0]]) == 0.0  # 5.66 > 5.5


def test_controlled_swap_rate_rejects_mismatched_shapes():
  with pytest.raises(ValueError):
    evaluation.controlled_swap_rates(np.zeros((3, 2)), np.zeros((3, 2)), np.zeros((2, 2)))


# ------------------------------------------------------------------------------------------------ agreement
def test_digit_pair_agreement():
  assert evaluation.digit_pair_agreement([3, 7, 7, 1], [3, 7, 8, 2]) == pytest.approx(0.5)
  query = np.array([[3, 7], [1, 1], [2, 5]])
  retrieved = np.array([[7, 3], [1, 2], [5, 2]])  # unordered: agree, differ, agree
  assert evaluation.digit_pair_agreement(query, retrieved) == pytest.approx(2 / 3)
  with pytest.raises(ValueError):
    evaluation.digit_pair_agreement([1, 2], [1, 2, 3])


# ------------------------------------------------------------------------------------------------ retrieval report
def _loop_distance(ref, ret):
  """min over the two digit orders of (1/M) sum_m sum_t |dref - dret|_1, M = 2, by loops."""
  best = np.inf
  for perm in ((0, 1), (1, 0)):
    total = 0.0
    for m in range(2):
      for t in range(ref.shape[0] - 1):
        total += np.abs((ref[t + 1, m] - ref[t, m]) - (ret[t + 1, perm[m]] - ret[t, perm[m]])).sum()
    best = min(best, total / 2)
  return best


def test_retrieval_report_hand_example():
  db_feats = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
  query_feats = np.array([[9.0, 1.0], [1.0, 8.0]])        # nearest: rows 1 and 2
  steps = np.arange(3, dtype=float)[:, None, None]
  still = np.zeros((3, 2, 2))
  right = still + steps * np.array([1.0, 0.0])             # both digits move +1 px in x per frame
  db_kp = np.stack([still, right, still])
  query_kp = np.stack([right, right])                       # query 0 matches row 1 exactly; query 1 gets a still clip
  report = evaluation.retrieval_report(query_feats, db_feats, query_kp, db_kp, [4, 9], [4, 4, 5])
  np.testing.assert_array_equal(report['indices'], [1, 2])
  # Query 1 vs a still clip: per digit |1| + |1| over 2 steps = 2; mean over digits 2; query mean (0 + 2) / 2 = 1.
  np.testing.assert_allclose(report['keypoint_distances'], [0.0, 2.0])
  assert report['keypoint_distance'] == pytest.approx(1.0)
  assert report['keypoint_distance_per_step'] == pytest.approx(0.5)
  assert report['label_agreement'] == pytest.approx(0.5)   # 4 == 4, 9 != 5
  assert report['num_queries'] == 2
  assert evaluation.retrieval_report(query_feats, db_feats, query_kp, db_kp)['label_agreement'] is None


def test_retrieval_report_matches_loops_on_random_data():
  rng = np.random.default_rng(0)
  db_feats, query_feats = rng.normal(size=(30, 5)), rng.normal(size=(12, 5))
  db_kp, query_kp = rng.uniform(0, 64, (30, 8, 2, 2)), rng.uniform(0, 64, (12, 8, 2, 2))
  report = evaluation.retrieval_report(query_feats, db_feats, query_kp, db_kp)
  for i in range(12):
    nearest = int(np.argmin([np.sqrt(((query_feats[i] - row) ** 2).sum()) for row in db_feats]))
    assert report['indices'][i] == nearest
    assert report['keypoint_distances'][i] == pytest.approx(_loop_distance(query_kp[i], db_kp[nearest]))
  loo = evaluation.retrieval_report(db_feats, db_feats, db_kp, db_kp, exclude_self=True)
  assert np.all(loo['indices'] != np.arange(30))


def test_random_retrieval_report():
  rng = np.random.default_rng(1)
  db_kp, query_kp = rng.uniform(0, 64, (40, 8, 2, 2)), rng.uniform(0, 64, (500, 8, 2, 2))
  labels_db, labels_q = rng.integers(0, 4, 40), rng.integers(0, 4, 500)
  a = evaluation.random_retrieval_report(query_kp, db_kp, labels_q, labels_db, seed=3)
  b = evaluation.random_retrieval_report(query_kp, db_kp, labels_q, labels_db, seed=3)
  np.testing.assert_array_equal(a['indices'], b['indices'])
  assert a['indices'].min() >= 0 and a['indices'].max() < 40
  assert len(np.unique(a['indices'])) > 30                 # spread over the database
  for i in range(0, 500, 50):
    assert a['keypoint_distances'][i] == pytest.approx(_loop_distance(query_kp[i], db_kp[a['indices'][i]]))
  assert a['label_agreement'] == pytest.approx(np.mean(labels_q == labels_db[a['indices']]))
  loo = evaluation.random_retrieval_report(db_kp, db_kp, seed=0, exclude_self=True)
  assert np.all(loo['indices'] != np.arange(40)) and loo['indices'].max() < 40


# ------------------------------------------------------------------------------------------------ folds
def _check_person_disjoint(actors, folds):
  actors = np.asarray(actors)
  tested = []
  for fold in folds:
    train_people, test_people = set(actors[fold.train]), set(actors[fold.test])
    assert not train_people & test_people                  # nobody in both parts
    assert test_people == set(fold.test_people)
    assert sorted(np.concatenate([fold.train, fold.test]).tolist()) == list(range(len(actors)))
    tested.extend(test_people)
  assert sorted(tested) == sorted(set(actors.tolist()))    # every person tested exactly once


def test_leave_one_actor_out_folds():
  actors = ['daria', 'eli', 'daria', 'ido', 'eli', 'ido', 'ido']
  folds = evaluation.leave_one_actor_out_folds(actors)
  assert [f.test_people for f in folds] == [('daria',), ('eli',), ('ido',)]
  np.testing.assert_array_equal(folds[0].test, [0, 2])
  np.testing.assert_array_equal(folds[0].train, [1, 3, 4, 5, 6])
  _check_person_disjoint(actors, folds)
  with pytest.raises(ValueError):
    evaluation.leave_one_actor_out_folds(['solo', 'solo'])


def test_identity_folds():
  rng = np.random.default_rng(2)
  actors = np.repeat(np.arange(1, 25), rng.integers(1, 5, 24))  # 24 people, 1-4 videos each
  folds = evaluation.identity_folds(actors, k=5, seed=0)
  assert len(folds) == 5
  _check_person_disjoint(actors, folds)
  assert sorted(len(f.test_people) for f in folds) == [4, 5, 5, 5, 5]
  again = evaluation.identity_folds(actors, k=5, seed=0)
  assert [f.test_people for f in again] == [f.test_people for f in folds]
  other = evaluation.identity_folds(actors, k=5, seed=1)
  assert [f.test_people for f in other] != [f.test_people for f in folds]
  with pytest.raises(ValueError):
    evaluation.identity_folds(actors[:3], k=5)


# ------------------------------------------------------------------------------------------------ frame probe
def test_frame_probe_votes():
  rng = np.random.default_rng(4)
  n, t = 60, 8
  labels = rng.permutation(np.tile([0, 1, 2], n // 3))  # balanced, so a frame showing c is labelled c 5:3
  # Frames 0-4 show the clip's class; frames 5-7 show another class: per-frame accuracy 5/8, every vote right.
  shown = np.repeat(labels[:, None], t, axis=1)
  shown[:, 5:] = (labels[:, None] + 1) % 3
  frames = np.eye(3)[shown] * 3 + rng.normal(0, 0.1, (n, t, 3))
  report = evaluation.frame_probe_votes(frames[:40], labels[:40], frames[40:], labels[40:], 3)
  assert report['frame_accuracy'] == pytest.approx(5 / 8, abs=0.03)
  for method in evaluation.VOTE_METHODS:
    assert report[f'vote_{method}'] == 1.0
  with pytest.raises(ValueError):
    evaluation.frame_probe_votes(frames[:40, 0], labels[:40], frames[40:], labels[40:], 3)
