"""Waypoint selection (thesis Sec. 3.3.1, App. 3.C.1; spec Sec. 4.6 and A13).

V_p is the 20% of the state space with the largest prior mean alpha / (alpha + beta) (T:L2253-2256, T:L2967-2968):
k = round(0.2 |S_free|). The candidates are the cells visited so far [P]: an untrained prior on cells no
trajectory has reached says nothing, and while fewer than k cells have been visited V_p is all of them, which grows
the exploration frontier ("starting points expand as the agent discovers more"). `candidates='all'` scores every
free cell instead. Ties are broken by cell index (row-major), so the selection is deterministic.
"""

from typing import Callable, Optional

import numpy as np

WAYPOINT_FRACTION = 0.2          # |V_p| = 20% of the full state space (T:L2967-2968)


def waypoint_count(num_free: int, fraction: float = WAYPOINT_FRACTION) -> int:
  """k = round(fraction |S_free|), at least 1."""
  return max(1, int(round(fraction * num_free)))


def select(scores_fn: Callable[[np.ndarray], np.ndarray], walls: np.ndarray, visited: Optional[np.ndarray],
           count: int, candidates: str = 'visited') -> np.ndarray:
  """The top-`count` candidate cells by score, int [k, 2] in descending score (ties: lower cell index first).

  Args:
    scores_fn: cells int [N, 2] -> scores [N] (the prior mean).
    walls: bool [H, W].
    visited: bool [H, W] of the cells visited so far (needed for candidates='visited').
    count: k.
    candidates: 'visited' (spec A13) or 'all' free cells.
  """
  if candidates not in ('visited', 'all'):
    raise ValueError(f"candidates: 'visited' or 'all', got {candidates!r}")
  pool = ~walls if candidates == 'all' else (np.asarray(visited, bool) & ~walls)
  cells = np.argwhere(pool)                                   # row-major: ascending cell index
  if len(cells) == 0:
    raise ValueError('waypoint selection: no candidate cells (nothing visited yet?)')
  scores = np.asarray(scores_fn(cells), np.float64).reshape(-1)
  order = np.lexsort((np.arange(len(cells)), -scores))        # by score descending, then index ascending
  return cells[order[:min(count, len(cells))]]


def as_map(cells: np.ndarray, shape) -> np.ndarray:
  """float32 [H, W] with 1 on the given cells (the Manager's waypoint-map plane s_V)."""
  out = np.zeros(shape, np.float32)
  cells = np.asarray(cells, np.int64).reshape(-1, 2)
  out[cells[:, 0], cells[:, 1]] = 1.0
  return out
