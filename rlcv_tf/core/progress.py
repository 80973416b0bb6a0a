"""Console progress lines and rate/ETA bookkeeping shared by long-running jobs."""

import collections
import time
from typing import Deque, Optional, Tuple


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
