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
"""

import dataclasses
import itertools
import math
from typing import Optional, Tuple

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
