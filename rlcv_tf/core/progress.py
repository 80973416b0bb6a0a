"""Console progress lines and rate/ETA bookkeeping shared by long-running jobs.

  rate = progress.RateMeter()
  rate.update(frames)                      # after every update
  print(progress.line('[marl] ', frames, total, rate, ['return/agent +0.12', 'loss 0.31']))
  # [marl] frames 1,200/5,000 (24%) | 310 frames/s | return/agent +0.12 | loss 0.31 | ETA 12s
"""

import collections
import time
from typing import Deque, Optional, Sequence, Tuple


def format_duration(seconds: float) -> str:
  if seconds != seconds or seconds == float('inf'):  # NaN or unknown
    return '?'
  seconds = int(seconds)
  if seconds < 60:
    return f'{seconds}s'
  if seconds < 3600:
    return f'{seconds // 60}m{seconds % 60:02d}s'
  return f'{seconds // 3600}h{(seconds % 3600) // 60:02d}m'


class RateMeter:
  """Rate of a growing counter over a sliding time window (robust to the slow first steps)."""

  def __init__(self, window_s: float = 60.0):
    self._window = window_s
    self._points: Deque[Tuple[float, float]] = collections.deque()

  def update(self, value: float, now: Optional[float] = None) -> float:
    now = time.monotonic() if now is None else now
    self._points.append((now, value))
    while len(self._points) > 2 and now - self._points[0][0] > self._window:
      self._points.popleft()
    return self.rate

  @property
  def rate(self) -> float:
    if len(self._points) < 2:
      return 0.0
    (t0, v0), (t1, v1) = self._points[0], self._points[-1]
    return (v1 - v0) / (t1 - t0) if t1 > t0 else 0.0

  def eta(self, value: float, target: float) -> float:
    r = self.rate
    return max(0.0, target - value) / r if r > 0 else float("inf")


def line(prefix: str, done: int, total: int, rate: RateMeter, parts: Sequence[str] = (), unit: str = 'frames') -> str:
  """A job's one-line progress: '<prefix><unit> done/total (pct%) | rate <unit>/s | parts... | ETA t'."""
  out = [f'{prefix}{unit} {done:,}/{total:,} ({100.0 * done / max(1, total):.0f}%)', f'{rate.rate:,.0f} {unit}/s']
  out += list(parts)
  out.append(f'ETA {format_duration(rate.eta(done, total))}')
  return ' | '.join(out)
