"""Scores of how well a latent separates the factors of a scene (NumPy / SciPy only; S = seed 002 line).

MIG (mutual information gap, Chen et al. 2018; not in the draft, issue 14 section 3): for each ground-truth factor
v_k, the gap between the two latents with the largest mutual information with it, divided by H(v_k), averaged over
factors:
    MIG = 1/K sum_k (I(z_j1; v_k) - I(z_j2; v_k)) / H(v_k)
Latents are discretised into `num_bins` equal-width bins per dimension (20, the usual choice); factors are
discrete already (dSprites classes). Factors with one value (dSprites' colour) have H = 0 and are left out. MI and
entropies are plug-in estimates in nats from the joint histogram.

DSRL symbol accuracy [proposal, spec 5 dsrl_toy]: the draft wants the neural back end to give "the object type and
its location" (S:L916-918, Table 1.1). With a spatial latent of k filters, each of the 2x2 cells gets a score per
filter, the mean |mu| over the cell's part of the map (`cell_scores`); a cell is empty when its largest score is
below a threshold (default: Otsu's threshold of the largest scores of all cells, i.e. the best split of them into
two groups), else it holds the type of its largest filter. Filters carry no type names, so the predicted labels
{empty, filter 1..k} are matched to the true types {empty, circle, square} by the assignment that maximises the
number of agreeing cells (Hungarian method, scipy.optimize.linear_sum_assignment) with empty matched to empty;
the accuracy is the fraction of cells labelled right under that matching. Every cell labelled 'circle' scores about
1/3; but a latent that finds every object and gives them all one type scores 1/3 + 2/3 x 1/2 = 2/3 (empty cells
right, half the objects right), so an accuracy near 0.67 says "objects found, types not told apart".
`type_accuracy` separates the two: among the cells that hold an object and are predicted occupied, the fraction
whose type is right under the matching (1/2 when the types are not told apart, 1 when they are).
"""

from typing import Dict, Optional, Tuple

import numpy as np
from scipy import optimize


# ------------------------------------------------------------------------------------------------ MIG
def discretize(codes: np.ndarray, num_bins: int = 20) -> np.ndarray:
  """Each column of codes [N, d] into num_bins equal-width bins over its range -> int [N, d]."""
  codes = np.asarray(codes, np.float64)
  out = np.zeros(codes.shape, np.int64)
  for j in range(codes.shape[1]):
    edges = np.histogram_bin_edges(codes[:, j], bins=num_bins)
    out[:, j] = np.digitize(codes[:, j], edges[1:-1])
  return out


def entropy(labels: np.ndarray) -> float:
  """Plug-in entropy (nats) of a discrete variable."""
  _, counts = np.unique(np.asarray(labels), return_counts=True)
  p = counts / counts.sum()
  return float(-np.sum(p * np.log(p)))


def mutual_information(a: np.ndarray, b: np.ndarray) -> float:
  """Plug-in I(a; b) in nats of two discrete variables [N] from their joint histogram."""
  _, ia = np.unique(np.asarray(a), return_inverse=True)
  _, ib = np.unique(np.asarray(b), return_inverse=True)
  joint = np.zeros((ia.max() + 1, ib.max() + 1))
  np.add.at(joint, (ia, ib), 1.0)
  joint /= joint.sum()
  pa, pb = joint.sum(axis=1, keepdims=True), joint.sum(axis=0, keepdims=True)
  nz = joint > 0
  return float(np.sum(joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])))


def mig(codes: np.ndarray, factors: np.ndarray, num_bins: int = 20,
        factor_names: Optional[Tuple[str, ...]] = None) -> Dict[str, object]:
  """MIG of latent codes [N, d] (e.g. posterior means, flattened) against discrete factors [N, K].

  Returns {'mig': float, 'per_factor': {name: gap / H}, 'mi': [K', d] nats, 'entropy': {name: H},
  'factors': the names used} (K' = factors with more than one value). Needs d >= 2.
  """
  codes = np.asarray(codes).reshape(len(codes), -1)
  factors = np.asarray(factors).reshape(len(factors), -1)
  if codes.shape[1] < 2:
    raise ValueError(f'MIG needs at least 2 latent dimensions, got {codes.shape[1]}')
  names = factor_names or tuple(f'factor_{k}' for k in range(factors.shape[1]))
  binned = discretize(codes, num_bins)
  per_factor, entropies, rows, used = {}, {}, [], []
  for k, name in enumerate(names):
    h = entropy(factors[:, k])
    if h <= 0:
      continue
    mi = np.array([mutual_information(binned[:, j], factors[:, k]) for j in range(binned.shape[1])])
    top = np.sort(mi)[::-1]
    per_factor[name] = float((top[0] - top[1]) / h)
    entropies[name] = h
    rows.append(mi)
    used.append(name)
  if not used:
    raise ValueError('every factor is constant: MIG is undefined')
  return {'mig': float(np.mean(list(per_factor.values()))), 'per_factor': per_factor, 'mi': np.array(rows),
          'entropy': entropies, 'factors': tuple(used)}


# ------------------------------------------------------------------------------------------------ Hungarian
def hungarian_accuracy(true: np.ndarray, pred: np.ndarray,
                       fixed: Optional[Dict[int, int]] = None) -> Tuple[float, Dict[int, int]]:
  """Accuracy of predicted cluster ids against true labels under the one-to-one mapping cluster -> label that
  maximises the agreeing count (linear_sum_assignment on the negated contingency table). `fixed` pins some
  clusters to labels (e.g. {0: 0}: empty is empty) before the rest are matched. Clusters left unmatched (more
  clusters than labels) count as wrong. Returns (accuracy, mapping)."""
  true = np.asarray(true).ravel()
  pred = np.asarray(pred).ravel()
  fixed = dict(fixed or {})
  clusters = [c for c in np.unique(pred) if c not in fixed]
  labels = [l for l in np.unique(true) if l not in fixed.values()]
  mapping = dict(fixed)
  if clusters and labels:
    table = np.array([[np.sum((pred == c) & (true == l)) for l in labels] for c in clusters], np.float64)
    rows, cols = optimize.linear_sum_assignment(-table)
    mapping.update({int(clusters[r]): int(labels[c]) for r, c in zip(rows, cols)})
  mapped = np.array([mapping.get(int(c), -1) for c in pred])
  return float(np.mean(mapped == true)), mapping


# ------------------------------------------------------------------------------------------------ DSRL
def cell_scores(mu: np.ndarray, grid: int = 2) -> np.ndarray:
  """Mean |mu| over each cell of a grid x grid partition of a latent map [N, m, n, k] -> [N, grid, grid, k]
  (np.array_split: an odd map gives the middle row / column to the lower cell)."""
  mu = np.abs(np.asarray(mu, np.float64))
  row_parts = np.array_split(np.arange(mu.shape[1]), grid)
  col_parts = np.array_split(np.arange(mu.shape[2]), grid)
  out = np.zeros((mu.shape[0], grid, grid, mu.shape[3]))
  for r, rows in enumerate(row_parts):
    for c, cols in enumerate(col_parts):
      out[:, r, c] = mu[:, rows][:, :, cols].mean(axis=(1, 2))
  return out


def otsu_threshold(values: np.ndarray, num_candidates: int = 256) -> float:
  """The threshold that splits values into two groups with the largest between-group variance (Otsu)."""
  values = np.asarray(values, np.float64).ravel()
  lo, hi = values.min(), values.max()
  if hi <= lo:
    return float(hi)
  best, best_t = -1.0, lo
  for t in np.linspace(lo, hi, num_candidates)[1:]:
    below = values < t
    w0 = below.mean()
    if w0 in (0.0, 1.0):
      continue
    between = w0 * (1 - w0) * (values[below].mean() - values[~below].mean()) ** 2
    if between > best:
      best, best_t = between, t
  return float(best_t)


def cell_predictions(scores: np.ndarray, threshold: Optional[float] = None) -> Tuple[np.ndarray, float]:
  """Cluster ids [N, grid, grid] from cell scores [N, grid, grid, k]: 0 (empty) where the largest score is below
  the threshold (default Otsu's), else 1 + the index of the largest filter. Returns (ids, threshold)."""
  scores = np.asarray(scores)
  peak = scores.max(axis=-1)
  threshold = otsu_threshold(peak) if threshold is None else float(threshold)
  return np.where(peak < threshold, 0, 1 + scores.argmax(axis=-1)), threshold


def symbol_accuracy(mu: np.ndarray, cells: np.ndarray, threshold: Optional[float] = None) -> Dict[str, object]:
  """DSRL symbol accuracy of latent means mu [N, m, n, k] against true cells [N, 2, 2] (0 empty, 1 circle,
  2 square), module docstring. Returns {'accuracy', 'occupancy_accuracy' (empty vs not, no types), 'type_accuracy'
  (the types of the objects found),
  'mapping' (cluster -> type), 'threshold', 'scenes_all_right' (fraction of scenes whose 4 cells are all right)}."""
  cells = np.asarray(cells)
  pred, threshold = cell_predictions(cell_scores(mu, cells.shape[1]), threshold)
  accuracy, mapping = hungarian_accuracy(cells, pred, fixed={0: 0})
  mapped = np.vectorize(lambda c: mapping.get(int(c), -1))(pred)
  found = (cells > 0) & (pred > 0)
  type_accuracy = float(np.mean(mapped[found] == cells[found])) if found.any() else float('nan')
  return {'accuracy': accuracy, 'occupancy_accuracy': float(np.mean((pred > 0) == (cells > 0))),
          'type_accuracy': type_accuracy,
          'mapping': {int(k): int(v) for k, v in mapping.items()}, 'threshold': threshold,
          'scenes_all_right': float(np.mean(np.all(mapped == cells, axis=(1, 2))))}
