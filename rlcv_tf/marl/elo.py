"""ELO ratings of a tournament, as the thesis computes them (App. 4.F, thesis lines 4437-4466; spec ch4 §6.3,
§7.2 "ELO", §8 rows 15-16).

The procedure of App. 4.F:
  1. every agent starts at 1000;
  2. the order of the matches is shuffled;
  3. for each match between A and B, in that order: E_A = 1 / (1 + 10^((R_B - R_A) / 400)), E_B likewise, then
     R_A += k (S_A - E_A) and R_B += k (S_B - E_B), both from the ratings *before* the match, with k = 16 and
     the thesis's scores win = 1, loss = -1, tie = 0 (`scoring='thesis'`). `scoring='standard'` gives the usual
     1 / 0.5 / 0.

How the match list is read from Table 4.1 (left): the table prints every pair twice, once in each agent's row
(row i vs column j holds W/T/L, row j vs column i holds the same matches as L/T/W), and each pair played 20
matches (thesis line 3820: "each play 20 matches against another"). So the 8 agents played 28 x 20 = 560
matches, one list per unordered pair (`mirrored=True`). With thesis scoring every match lowers the rating sum by
exactly k (S_A + S_B = 0 while E_A + E_B = 1), so the sum is 8 * 1000 - 16 * 560 = -960 in any order: the sum of
the thesis's reported ratings. Counting all 56 printed entries as separate matches would give -9920, and standard
scoring would keep the sum at 8000, so this reading is the one the thesis used. Where the two printings of a
pair disagree (Table 4.1 has one such pair, spec §8 row 15) the row of the lower index wins.

A tournament we play ourselves (`launchers/marl_tournament.py`) has distinct home and away games, so there every
ordered entry is its own set of matches (`mirrored=False`).
"""

import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

INITIAL_RATING = 1000.0   # App. 4.F step 1
K_FACTOR = 16.0           # App. 4.F: "k is the k-factor for ELO, which we set to be 16"
SCORINGS = ('thesis', 'standard')
# Actual score S of (win, tie, loss) for each scoring.
_SCORES = {'thesis': (1.0, 0.0, -1.0), 'standard': (1.0, 0.5, 0.0)}

WTL = Tuple[int, int, int]


@dataclasses.dataclass(frozen=True)
class Match:
  """One game: `result` is +1 if `a` won, 0 for a tie, -1 if `b` won."""
  a: int
  b: int
  result: int


def expected_score(r_a: float, r_b: float) -> float:
  """E_A of App. 4.F."""
  return 1.0 / (1.0 + 10.0 ** ((r_b - r_a) / 400.0))


def update(r_a: float, r_b: float, result: int, k: float = K_FACTOR, scoring: str = 'thesis') -> Tuple[float, float]:
  """Both players' ratings after one match (`result` from A's side: +1 win, 0 tie, -1 loss)."""
  if scoring not in SCORINGS:
    raise ValueError(f'scoring must be one of {SCORINGS}, got {scoring!r}')
  win, tie, loss = _SCORES[scoring]
  s_a, s_b = {1: (win, loss), 0: (tie, tie), -1: (loss, win)}[int(result)]
  e_a, e_b = expected_score(r_a, r_b), expected_score(r_b, r_a)   # both from the pre-match ratings
  return r_a + k * (s_a - e_a), r_b + k * (s_b - e_b)


def check_table(table: Sequence[Sequence[Optional[WTL]]]) -> List[Tuple[int, int]]:
  """Validates a square W/T/L table (None on the diagonal) and returns the pairs (i < j) whose two printings
  are not mirror images (row i vs j = W/T/L but row j vs i != L/T/W)."""
  m = len(table)
  bad = []
  for i, row in enumerate(table):
    if len(row) != m:
      raise ValueError(f'table row {i} has {len(row)} entries, expected {m}')
    for j, cell in enumerate(row):
      if i == j:
        continue
      if cell is None or len(cell) != 3 or any(int(x) < 0 for x in cell):
        raise ValueError(f'table[{i}][{j}] must be a (wins, ties, losses) triple of counts, got {cell!r}')
      if i < j:
        w, t, l = table[i][j]
        if tuple(table[j][i]) != (l, t, w):
          bad.append((i, j))
  return bad


def matches_from_table(table: Sequence[Sequence[Optional[WTL]]], mirrored: bool = True) -> List[Match]:
  """The match list of a W/T/L table, `table[i][j]` = (wins, ties, losses) of row agent i vs column agent j.

  mirrored=True: both printings of a pair are the same games (thesis Table 4.1); each unordered pair's games
    are read once, from the row of the lower index.
  mirrored=False: every ordered entry is its own games (home/away tournaments, `marl_tournament`).
  """
  check_table(table)
  out = []
  m = len(table)
  for i in range(m):
    for j in range(m):
      if i == j or (mirrored and j < i):
        continue
      w, t, l = (int(x) for x in table[i][j])
      out += [Match(i, j, 1)] * w + [Match(i, j, 0)] * t + [Match(i, j, -1)] * l
  return out


def ratings(matches: Sequence[Match], num_players: int, k: float = K_FACTOR, scoring: str = 'thesis',
            initial: float = INITIAL_RATING, rng: Optional[np.random.Generator] = None,
            shuffle: bool = True) -> np.ndarray:
  """App. 4.F: start everyone at `initial`, shuffle the matches (with `rng`; unshuffled if `shuffle=False`),
  then update sequentially. Returns float64 [num_players]."""
  r = np.full(num_players, float(initial))
  order = np.arange(len(matches))
  if shuffle:
    (rng if rng is not None else np.random.default_rng()).shuffle(order)
  for idx in order:
    m = matches[idx]
    r[m.a], r[m.b] = update(r[m.a], r[m.b], m.result, k, scoring)
  return r


def shuffle_statistics(matches: Sequence[Match], num_players: int, num_shuffles: int = 200, seed: int = 0,
                       k: float = K_FACTOR, scoring: str = 'thesis') -> Dict[str, np.ndarray]:
  """Ratings over `num_shuffles` seeded match orders: 'all' [S, M], 'mean' [M], 'std' [M].

  A single shuffle (App. 4.F) has an order-dependent spread of about 45 points per agent on Table 4.1 (spec
  §6.3), so a report should show the mean and spread, not only one draw.
  """
  rng = np.random.default_rng(seed)
  all_r = np.stack([ratings(matches, num_players, k, scoring, rng=rng) for _ in range(num_shuffles)])
  return {'all': all_r, 'mean': all_r.mean(axis=0), 'std': all_r.std(axis=0)}


def table_from_results(names: Sequence[str], results: Dict[Tuple[str, str], WTL]) -> List[List[Optional[WTL]]]:
  """A square table from {(home, away): (w, t, l)}; missing ordered pairs count as (0, 0, 0)."""
  idx = {n: i for i, n in enumerate(names)}
  table: List[List[Optional[WTL]]] = [[None if i == j else (0, 0, 0) for j in range(len(names))]
                                      for i in range(len(names))]
  for (home, away), wtl in results.items():
    table[idx[home]][idx[away]] = tuple(int(x) for x in wtl)
  return table
