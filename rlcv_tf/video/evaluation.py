"""Chapter 7 evaluation maths: the keypoint displacement distance, Euclidean retrieval, linear probes, video votes.

Keypoint displacement distance (Table 7.1; T:L6699-6712). "We calculate the displacements of keypoints between
frames instead of directly using their absolute locations for both reference and retrieved video sequences. Finally,
Table 7.1 reports the L1 norm of the keypoint displacement distance between reference and retrieved videos averaged
over all key points." The aggregation over time, the keypoint correspondence and the unit are not stated (spec A8);
issue 13 §4 fixes them as

  D(ref, ret) = min_pi (1/M) sum_m sum_{t=1..T-1} || dref_{t,m} - dret_{t,pi(m)} ||_1,   d_{t,m} = k_{t+1,m} - k_{t,m}

with keypoints k [T, M, 2] in pixels. The minimum over permutations pi of the M keypoints matters for MMNIST, where
the two digits of two clips have no natural correspondence; it is an assignment problem over the [M, M] cost matrix
C[m, m'] = sum_t ||dref_{t,m} - dret_{t,m'}||_1, solved exactly (`scipy.optimize.linear_sum_assignment`). For
landmarks with fixed identities (faces, OpenPose joints) pass match_permutations=False. Displacements make the
distance invariant to a constant offset of either clip's keypoints.

Retrieval: "searching for the nearest neighbors in the feature space of P" (T:L6614-6616): top-k Euclidean
neighbours, computed in float64 chunks so 10,000 queries x 10,000 database rows fit in ~64 MB at a time.

Linear probe: "a simple linear classifier directly on S" (T:L6584-6586): softmax regression on standardised
(train-set mean and std) features, fitted by full-batch L-BFGS (scipy) from zero weights with a small L2 penalty on
the weights. No randomness: the same inputs give the same probe. The per-frame baseline "aggregate[s] votes from each
frame" (T:L6611) and RAVDESS "all sequences within a video vote together" (T:L6819): `vote` and `group_vote` take
the mean of logits (default), the mean of softmax probabilities (spec A14), or a majority of per-frame argmaxes.
`frame_probe_votes` is the per-frame s_t baseline of 7.4.4 (T:L6605-6612): one probe on every frame, then votes.

Retrieval protocol (issue 13 §4 [proposal]): `retrieval_report` scores top-1 Euclidean retrieval by the mean keypoint
displacement distance (the sum over the T-1 steps, and the per-step mean, i.e. divided by T-1) and by top-1 label
agreement (`digit_pair_agreement`); `random_retrieval_report` gives the same numbers for a uniformly random database
row, the floor every feature should beat. `controlled_swap_rates` is Fig. 7.1 as a number: per query the database
holds one clip with the query's trajectories but other digits and one with its digits but other trajectories; the
rate is the fraction of queries whose same-trajectory clip is nearer (ties count half, chance 50 %). Features
carrying motion (P) should score near 1, features carrying appearance (S) near 0.

Cross-validation folds: Weizmann is leave-one-actor-out (T:L6760; `leave_one_actor_out_folds`); RAVDESS uses 5
splits (T:L6820) whose composition is not stated: `identity_folds` splits the *people* into k seeded, near-equal
groups, so no person is in both the training and the test part of a fold, and every person is tested exactly once
(spec A17).
"""

import dataclasses
import itertools
import math
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from scipy import optimize

VOTE_METHODS = ('mean_logits', 'mean_softmax', 'majority')
_NN_CHUNK_ELEMENTS = 8 * 1024 * 1024  # float64 distance entries per chunk (64 MB)
_MAX_ENUMERATED_PERMUTATIONS = 720   # M <= 6: enumerate permutations vectorised; above: one assignment per pair


# ------------------------------------------------------------------------------------------------ keypoint distance


def _displacements(keypoints: np.ndarray, name: str) -> np.ndarray:
  k = np.asarray(keypoints, np.float64)
  if k.ndim < 3 or k.shape[-3] < 2:
    raise ValueError(f'{name} must be [..., T, M, D] keypoints with T >= 2, got shape {k.shape}')
  return np.diff(k, axis=-3)


def displacement_cost_matrix(ref, ret) -> np.ndarray:
  """[..., T, M, D] reference and retrieved keypoints -> [..., M, M] C[m, m'] = sum_t ||dref_{t,m} - dret_{t,m'}||_1."""
  dref = _displacements(ref, 'ref')
  dret = _displacements(ret, 'ret')
  if dref.shape != dret.shape:
    raise ValueError(f'ref and ret keypoints must have the same shape, got {np.shape(ref)} and {np.shape(ret)}')
  diff = dref[..., :, :, np.newaxis, :] - dret[..., :, np.newaxis, :, :]  # [..., T-1, M, M, D]
  return np.abs(diff).sum(axis=(-1, -4))


def keypoint_displacement_distance(ref, ret, match_permutations: bool = True) -> float:
  """Table 7.1's distance between reference and retrieved keypoint tracks ref, ret [T, M, D] (module docstring).

  match_permutations=True: the minimum over keypoint correspondences (MMNIST digits); False: keypoint m to m.
  """
  if np.ndim(ref) != 3:
    raise ValueError(f'ref must be [T, M, D], got shape {np.shape(ref)}; use keypoint_displacement_distances')
  return float(keypoint_displacement_distances(np.asarray(ref)[np.newaxis], np.asarray(ret)[np.newaxis],
                                               match_permutations)[0])


def keypoint_displacement_distances(refs, rets, match_permutations: bool = True) -> np.ndarray:
  """Batched distance: refs, rets [n, T, M, D] -> [n] float64, pair i compares refs[i] with rets[i]."""
  cost = displacement_cost_matrix(refs, rets)  # [n, M, M]
  if cost.ndim != 3:
    raise ValueError(f'refs and rets must be [n, T, M, D], got shape {np.shape(refs)}')
  m = cost.shape[-1]
  if not match_permutations:
    return np.trace(cost, axis1=-2, axis2=-1) / m
  if math.factorial(m) <= _MAX_ENUMERATED_PERMUTATIONS:
    perms = np.array(list(itertools.permutations(range(m))), np.int64)  # [P, M]
    totals = cost[:, np.arange(m)[np.newaxis, :], perms].sum(axis=-1)   # [n, P]
    return totals.min(axis=-1) / m
  out = np.empty(cost.shape[0])
  for i, c in enumerate(cost):
    rows, cols = optimize.linear_sum_assignment(c)
    out[i] = c[rows, cols].sum() / m
  return out


# ------------------------------------------------------------------------------------------------ retrieval


def nearest_neighbours(queries, database, k: int = 1, exclude_self: bool = False,
                       return_distances: bool = False, chunk_elements: int = _NN_CHUNK_ELEMENTS):
  """Indices [q, k] of each query's k nearest database rows by Euclidean distance, nearest first.

  Args:
    queries: [q, d] features.
    database: [n, d] features.
    k: neighbours per query (k <= n, or n - 1 with exclude_self).
    exclude_self: the queries are the database itself (q == n): row i never returns i (leave-one-out retrieval).
    return_distances: also return the [q, k] Euclidean distances.
    chunk_elements: how many float64 distances to hold at once (query rows per chunk = chunk_elements // n).

  Returns:
    int64 [q, k] indices, and [q, k] float64 distances if return_distances.
  """
  q = np.asarray(queries, np.float64)
  db = np.asarray(database, np.float64)
  if q.ndim != 2 or db.ndim != 2 or q.shape[1] != db.shape[1]:
    raise ValueError(f'queries [q, d] and database [n, d] must share d, got {q.shape} and {db.shape}')
  n = db.shape[0]
  if exclude_self and q.shape[0] != n:
    raise ValueError(f'exclude_self needs the queries to be the database, got {q.shape[0]} queries and {n} rows')
  available = n - 1 if exclude_self else n
  if not 1 <= k <= available:
    raise ValueError(f'k must be in [1, {available}], got {k}')
  db_sq = np.einsum('ij,ij->i', db, db)
  rows = max(1, int(chunk_elements) // max(n, 1))
  indices = np.empty((q.shape[0], k), np.int64)
  distances = np.empty((q.shape[0], k), np.float64)
  for start in range(0, q.shape[0], rows):
    block = q[start:start + rows]
    d2 = np.einsum('ij,ij->i', block, block)[:, np.newaxis] - 2.0 * block @ db.T + db_sq[np.newaxis, :]
    np.maximum(d2, 0.0, out=d2)
    if exclude_self:
      local = np.arange(block.shape[0])
      d2[local, start + local] = np.inf
    if k == 1:
      idx = np.argmin(d2, axis=1)[:, np.newaxis]
    else:
      part = np.argpartition(d2, k - 1, axis=1)[:, :k] if k < n else np.broadcast_to(np.arange(n), d2.shape)
      part_d = np.take_along_axis(d2, part, axis=1)
      order = np.lexsort((part, part_d), axis=1)  # by distance, then by index
      idx = np.take_along_axis(part, order, axis=1)
    indices[start:start + block.shape[0]] = idx
    distances[start:start + block.shape[0]] = np.sqrt(np.take_along_axis(d2, idx, axis=1))
  return (indices, distances) if return_distances else indices


# ------------------------------------------------------------------------------------------------ linear probe


@dataclasses.dataclass
class LinearProbe:
  """A fitted softmax-regression probe: logits = ((x - mean) / std) @ weights + bias."""
  weights: np.ndarray  # [d, C]
  bias: np.ndarray     # [C]
  mean: np.ndarray     # [d]
  std: np.ndarray      # [d]
  train_loss: float
  iterations: int

  def logits(self, x) -> np.ndarray:
    z = (np.asarray(x, np.float64).reshape(len(x), -1) - self.mean) / self.std
    return z @ self.weights + self.bias

  def predict(self, x) -> np.ndarray:
    return np.argmax(self.logits(x), axis=-1)

  def accuracy(self, x, y) -> float:
    return float(np.mean(self.predict(x) == np.asarray(y).reshape(-1)))


def _log_softmax(logits: np.ndarray) -> np.ndarray:
  shifted = logits - logits.max(axis=-1, keepdims=True)
  return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def fit_linear_probe(train_x, train_y, num_classes: int, l2: float = 1e-4, max_iterations: int = 500,
                     tolerance: float = 1e-6) -> LinearProbe:
  """Fits softmax regression on standardised features by full-batch L-BFGS.

  Objective: mean cross-entropy + (l2 / 2) ||W||^2 (no penalty on the bias). Features [n, ...] are flattened;
  constant features (std < 1e-6) are left centred at 0 instead of being divided by ~0.
  """
  x = np.asarray(train_x, np.float64)
  x = x.reshape(x.shape[0], -1)
  y = np.asarray(train_y).reshape(-1).astype(np.int64)
  if x.shape[0] != y.shape[0] or x.shape[0] == 0:
    raise ValueError(f'need matching, non-empty features and labels, got {x.shape[0]} and {y.shape[0]}')
  if y.min() < 0 or y.max() >= num_classes:
    raise ValueError(f'labels must lie in [0, {num_classes}), got range [{y.min()}, {y.max()}]')
  mean = x.mean(axis=0)
  std = x.std(axis=0)
  std = np.where(std < 1e-6, 1.0, std)
  z = (x - mean) / std
  n, d = z.shape
  onehot = np.zeros((n, num_classes))
  onehot[np.arange(n), y] = 1.0

  def objective(params):
    w = params[:d * num_classes].reshape(d, num_classes)
    b = params[d * num_classes:]
    logp = _log_softmax(z @ w + b)
    loss = -np.sum(onehot * logp) / n + 0.5 * l2 * np.sum(w * w)
    dlogits = (np.exp(logp) - onehot) / n
    grad_w = z.T @ dlogits + l2 * w
    return loss, np.concatenate([grad_w.ravel(), dlogits.sum(axis=0)])

  result = optimize.minimize(objective, np.zeros(d * num_classes + num_classes), jac=True, method='L-BFGS-B',
                             options={'maxiter': int(max_iterations), 'gtol': tolerance})
  w = result.x[:d * num_classes].reshape(d, num_classes)
  return LinearProbe(weights=w, bias=result.x[d * num_classes:], mean=mean, std=std,
                     train_loss=float(result.fun), iterations=int(result.nit))


def linear_probe(train_x, train_y, test_x, test_y, num_classes: int, **fit_kwargs) -> float:
  """Test accuracy of a softmax-regression probe fitted on (train_x, train_y) (`fit_linear_probe` kwargs)."""
  probe = fit_linear_probe(train_x, train_y, num_classes, **fit_kwargs)
  return probe.accuracy(test_x, test_y)


# ------------------------------------------------------------------------------------------------ votes


def _vote_rows(rows: np.ndarray, method: str, num_classes: Optional[int]) -> int:
  """One video's [T, C] logits (or [T] integer predictions with method 'majority') -> class."""
  if rows.ndim == 1:
    if method != 'majority':
      raise ValueError(f'integer predictions [T] can only be voted by majority, not {method!r}')
    return int(np.argmax(np.bincount(rows.astype(np.int64), minlength=num_classes or 0)))
  if method == 'mean_logits':
    return int(np.argmax(rows.mean(axis=0)))
  if method == 'mean_softmax':
    return int(np.argmax(np.exp(_log_softmax(rows)).mean(axis=0)))
  return int(np.argmax(np.bincount(np.argmax(rows, axis=-1), minlength=rows.shape[-1])))


def vote(frame_outputs, method: str = 'mean_logits', num_classes: Optional[int] = None) -> np.ndarray:
  """Video-level decisions from per-frame (or per-clip) outputs.

  Args:
    frame_outputs: [n_videos, T, C] logits, or [n_videos, T] integer predictions (method 'majority' only).
    method: 'mean_logits' (argmax of the mean logit), 'mean_softmax' (argmax of the mean probability) or
      'majority' (most frequent per-frame argmax; ties go to the lowest class).
    num_classes: only for integer predictions (the bincount length; optional).

  Returns:
    int64 [n_videos] classes.
  """
  if method not in VOTE_METHODS:
    raise ValueError(f'method must be one of {VOTE_METHODS}, got {method!r}')
  x = np.asarray(frame_outputs)
  if x.ndim not in (2, 3) or (x.ndim == 2 and not np.issubdtype(x.dtype, np.integer)):
    raise ValueError(f'expected [n, T, C] logits or [n, T] integer predictions, got {x.dtype} {x.shape}')
  if x.ndim == 3:
    x = x.astype(np.float64)
  return np.array([_vote_rows(rows, method, num_classes) for rows in x], np.int64)


def group_vote(clip_outputs, group_ids, method: str = 'mean_logits',
               num_classes: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
  """Votes clips of unequal count per video: clip_outputs [n_clips, C] (or [n_clips] ints), group_ids [n_clips].

  Returns (sorted unique group ids, int64 class per group).
  """
  if method not in VOTE_METHODS:
    raise ValueError(f'method must be one of {VOTE_METHODS}, got {method!r}')
  x = np.asarray(clip_outputs)
  ids = np.asarray(group_ids).reshape(-1)
  if x.shape[0] != ids.shape[0]:
    raise ValueError(f'{x.shape[0]} clip outputs but {ids.shape[0]} group ids')
  if x.ndim == 2:
    x = x.astype(np.float64)
  elif x.ndim != 1 or not np.issubdtype(x.dtype, np.integer):
    raise ValueError(f'expected [n, C] logits or [n] integer predictions, got {x.dtype} {x.shape}')
  unique = np.unique(ids)
  return unique, np.array([_vote_rows(x[ids == g], method, num_classes) for g in unique], np.int64)


def frame_probe_votes(train_frames, train_labels, test_frames, test_labels, num_classes: int,
                      methods: Sequence[str] = VOTE_METHODS, **fit_kwargs) -> Dict[str, float]:
  """The per-frame baseline: one linear probe fitted on every frame feature, then the frames of a clip vote.

  Args:
    train_frames, test_frames: [n, T, ...] per-frame features (s_t); every frame is a probe example labelled with
      its clip's label.
    train_labels, test_labels: [n] clip labels.
    num_classes: probe classes.
    methods: the `vote` methods to report.
    fit_kwargs: `fit_linear_probe` options.

  Returns:
    {'frame_accuracy': per-frame test accuracy, 'vote_<method>': clip accuracy of each vote method}.
  """
  for name, frames, labels in (('train', train_frames, train_labels), ('test', test_frames, test_labels)):
    if np.ndim(frames) < 3 or np.shape(frames)[0] != np.size(labels):
      raise ValueError(f'{name}_frames must be [n, T, ...] with one label per clip, got {np.shape(frames)} and '
                       f'{np.size(labels)} labels')
  train = np.asarray(train_frames, np.float64)
  test = np.asarray(test_frames, np.float64)
  n, t = train.shape[:2]
  m, t_test = test.shape[:2]
  train_y = np.repeat(np.asarray(train_labels).reshape(-1), t)
  test_y = np.asarray(test_labels).reshape(-1).astype(np.int64)
  probe = fit_linear_probe(train.reshape(n * t, -1), train_y, num_classes, **fit_kwargs)
  logits = probe.logits(test.reshape(m * t_test, -1)).reshape(m, t_test, -1)
  report = {'frame_accuracy': float(np.mean(np.argmax(logits, axis=-1) == test_y[:, np.newaxis]))}
  for method in methods:
    report[f'vote_{method}'] = float(np.mean(vote(logits, method) == test_y))
  return report


# ------------------------------------------------------------------------------------------------ retrieval protocol


def controlled_swap_rates(query_feats, same_trajectory_feats, same_digits_feats) -> float:
  """Fraction of queries whose same-trajectory / other-digits clip is nearer (Euclidean) than their same-digits /
  other-trajectory clip; rows i of the three [q, d] arrays belong together. Ties count 1/2 (chance: 0.5)."""
  q = np.asarray(query_feats, np.float64)
  traj = np.asarray(same_trajectory_feats, np.float64)
  digits = np.asarray(same_digits_feats, np.float64)
  if q.ndim != 2 or q.shape[0] == 0 or traj.shape != q.shape or digits.shape != q.shape:
    raise ValueError(f'expected three equal [q, d] feature arrays with q >= 1, got {q.shape}, {traj.shape} and '
                     f'{digits.shape}')
  d_traj = np.sqrt(((q - traj) ** 2).sum(axis=1))
  d_digits = np.sqrt(((q - digits) ** 2).sum(axis=1))
  return float(np.mean((d_traj < d_digits) + 0.5 * (d_traj == d_digits)))


def _canonical_labels(labels) -> np.ndarray:
  """[n] labels, or [n, k] label sets (e.g. the two digits of a clip) compared as unordered multisets."""
  x = np.asarray(labels)
  if x.ndim == 1:
    return x[:, np.newaxis]
  if x.ndim == 2:
    return np.sort(x, axis=1)
  raise ValueError(f'labels must be [n] or [n, k], got shape {x.shape}')


def digit_pair_agreement(query_labels, retrieved_labels) -> float:
  """Fraction of queries whose retrieved clip has the same label: [n] labels (e.g. MMNIST pair labels) compare
  exactly, [n, k] digit sets as unordered multisets ((3, 7) agrees with (7, 3))."""
  q = _canonical_labels(query_labels)
  r = _canonical_labels(retrieved_labels)
  if q.shape != r.shape or q.shape[0] == 0:
    raise ValueError(f'query and retrieved labels must have the same non-empty shape, got {np.shape(query_labels)} '
                     f'and {np.shape(retrieved_labels)}')
  return float(np.mean(np.all(q == r, axis=1)))


def _score_retrieval(indices, query_keypoints, db_keypoints, query_labels, db_labels,
                     match_permutations: bool) -> Dict[str, object]:
  qk = np.asarray(query_keypoints, np.float64)
  dk = np.asarray(db_keypoints, np.float64)
  if qk.ndim != 4 or dk.ndim != 4 or qk.shape[1:] != dk.shape[1:]:
    raise ValueError(f'keypoints must be [n, T, M, 2] with the same T, M for queries and database, got {qk.shape} '
                     f'and {dk.shape}')
  if qk.shape[0] != len(indices):
    raise ValueError(f'{len(indices)} queries but {qk.shape[0]} query keypoint tracks')
  distances = keypoint_displacement_distances(qk, dk[indices], match_permutations)
  report = {'indices': np.asarray(indices, np.int64),
            'keypoint_distances': distances,
            'keypoint_distance': float(distances.mean()),
            'keypoint_distance_per_step': float(distances.mean() / (qk.shape[1] - 1)),
            'label_agreement': None,
            'num_queries': int(qk.shape[0])}
  if query_labels is not None and db_labels is not None:
    report['label_agreement'] = digit_pair_agreement(query_labels, np.asarray(db_labels)[indices])
  return report


def retrieval_report(query_feats, db_feats, query_keypoints, db_keypoints, query_labels=None, db_labels=None,
                     match_permutations: bool = True, exclude_self: bool = False) -> Dict[str, object]:
  """Top-1 Euclidean retrieval scored against keypoints and labels (Table 7.1 protocol).

  Args:
    query_feats [q, d], db_feats [n, d]: features (P, S flattened, a baseline's feature, ...).
    query_keypoints [q, T, M, 2], db_keypoints [n, T, M, 2]: keypoint tracks in model-input pixels.
    query_labels, db_labels: optional [q] / [n] labels or [q, k] / [n, k] digit sets (`digit_pair_agreement`).
    match_permutations: minimise over keypoint correspondences (MMNIST digits) or not (landmarks, joints).
    exclude_self: the queries are the database (leave-one-out).

  Returns:
    {'indices' [q], 'keypoint_distances' [q], 'keypoint_distance' (mean over queries of the sum over the T-1
    steps), 'keypoint_distance_per_step' (the same / (T-1)), 'label_agreement' (None without labels),
    'num_queries'}.
  """
  indices = nearest_neighbours(query_feats, db_feats, k=1, exclude_self=exclude_self)[:, 0]
  return _score_retrieval(indices, query_keypoints, db_keypoints, query_labels, db_labels, match_permutations)


def random_retrieval_report(query_keypoints, db_keypoints, query_labels=None, db_labels=None,
                            match_permutations: bool = True, seed: int = 0,
                            exclude_self: bool = False) -> Dict[str, object]:
  """`retrieval_report`'s numbers for a database row drawn uniformly at random per query (seeded)."""
  q = np.shape(query_keypoints)[0]
  n = np.shape(db_keypoints)[0]
  if n < (2 if exclude_self else 1):
    raise ValueError(f'the database needs at least {2 if exclude_self else 1} rows, got {n}')
  rng = np.random.default_rng(seed)
  if exclude_self:
    if q != n:
      raise ValueError(f'exclude_self needs the queries to be the database, got {q} queries and {n} rows')
    draw = rng.integers(0, n - 1, size=q)
    indices = draw + (draw >= np.arange(q))  # skip row i for query i
  else:
    indices = rng.integers(0, n, size=q)
  return _score_retrieval(indices, query_keypoints, db_keypoints, query_labels, db_labels, match_permutations)


# ------------------------------------------------------------------------------------------------ folds


class Fold(NamedTuple):
  """One cross-validation fold: the people held out, and the example indices of its two parts."""
  test_people: Tuple
  train: np.ndarray
  test: np.ndarray


def _people(actors) -> Tuple[np.ndarray, np.ndarray]:
  a = np.asarray(actors)
  if a.ndim != 1 or a.size == 0:
    raise ValueError(f'actors must be a non-empty [n] array of person ids (one per example), got shape {a.shape}')
  return a, np.unique(a)


def _fold(a: np.ndarray, held_out) -> Fold:
  mask = np.isin(a, held_out)
  return Fold(tuple(held_out.tolist()), np.flatnonzero(~mask), np.flatnonzero(mask))


def leave_one_actor_out_folds(actors) -> List[Fold]:
  """One fold per person (sorted ids): test = that person's examples, train = everyone else's (Weizmann)."""
  a, people = _people(actors)
  if people.size < 2:
    raise ValueError(f'leave-one-actor-out needs at least 2 people, got {people.size}')
  return [_fold(a, people[i:i + 1]) for i in range(people.size)]


def identity_folds(actors, k: int = 5, seed: int = 0) -> List[Fold]:
  """k person-disjoint folds (RAVDESS, spec A17): the people, shuffled by `seed`, are cut into k near-equal groups;
  fold i tests group i and trains on the rest. No person is in both parts of a fold; each is tested once."""
  a, people = _people(actors)
  if isinstance(k, bool) or int(k) != k or not 2 <= k <= people.size:
    raise ValueError(f'k: got {k!r}; valid values are integers in [2, {people.size}] (the number of people)')
  order = np.random.default_rng(seed).permutation(people)
  return [_fold(a, np.sort(group)) for group in np.array_split(order, int(k))]
