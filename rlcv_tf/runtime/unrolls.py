"""Unroll stores: per-actor trajectories of T+1 steps with a one-step overlap (SEED RL's layout).

Step t of an unroll holds the env output (observation_t, reward_t and done_t for the transition into it,
agent positions in observation_t) and the behaviour policy's output at observation_t (action_t, logits_t).
Consecutive unrolls of one actor share a boundary step, so every transition is trained on exactly once and
the last step's value bootstraps the unroll.
"""

import dataclasses
from typing import Dict, List, Optional

import numpy as np

# The fields an unroll carries, with their per-step dtype. Shapes are per step: [N, ...].
UNROLL_FIELDS = {
    'observation': np.uint8,       # [N, H, W, C]
    'reward': np.float32,          # [N]
    'done': np.bool_,              # []
    'discount': np.float32,        # [] dm_env discount of the transition into the observation
    'truncated': np.bool_,         # [] the observation ends a time-limited episode: bootstrap only, no loss
    'agent_positions': np.int32,   # [N, 2]
    'action': np.int32,            # [N]
    'behaviour_logits': np.float32,  # [N, A]
}


@dataclasses.dataclass
class _Store:
  run_id: int
  buffers: Optional[Dict[str, np.ndarray]] = None   # field -> [T+1, ...], allocated at the run's first step
  count: int = 0                                     # steps written into the buffers


class UnrollBuilder:
  """Collects steps per actor and emits finished unrolls of `unroll_length + 1` steps.

  Each actor's steps are written straight into preallocated [T+1, ...] buffers (one copy per step, nothing
  stacked later). A full set of buffers is handed out as the unroll, and the actor continues in new buffers
  whose slot 0 is the boundary step, so an unroll is never copied again and is the caller's to keep."""

  def __init__(self, unroll_length: int):
    if unroll_length < 1:
      raise ValueError(f'unroll_length must be >= 1, got {unroll_length}')
    self._length = unroll_length + 1
    self._stores: Dict[int, _Store] = {}

  @property
  def unroll_length(self) -> int:
    return self._length - 1

  def append(self, actor_id: int, run_id: int, step: Dict[str, np.ndarray]) -> Optional[Dict[str, np.ndarray]]:
    """Adds one step; returns a finished unroll (dict of [T+1, ...] arrays) or None."""
    store = self._stores.get(actor_id)
    if store is None or store.run_id != run_id:
      # A new actor, or a restarted one: its partial unroll came from a different process and is dropped.
      store = self._stores[actor_id] = _Store(run_id)
    if store.buffers is None:
      store.buffers = {k: np.empty((self._length,) + np.shape(step[k]), dt) for k, dt in UNROLL_FIELDS.items()}
    i = store.count
    for k, buf in store.buffers.items():
      value = step[k]
      if np.shape(value) != buf.shape[1:]:
        raise ValueError(f'actor {actor_id}: step field {k!r} has shape {np.shape(value)}, earlier steps of this '
                         f'unroll {buf.shape[1:]}')
      buf[i] = value
    store.count = i + 1
    if store.count < self._length:
      return None
    unroll = store.buffers
    store.buffers = {k: np.empty_like(buf) for k, buf in unroll.items()}
    for k, buf in store.buffers.items():
      buf[0] = unroll[k][-1]   # the boundary step opens the next unroll
    store.count = 1
    return unroll


def stack_batch(unrolls: List[Dict[str, np.ndarray]],
                out: Optional[Dict[str, np.ndarray]] = None) -> Dict[str, np.ndarray]:
  """B unrolls of [T+1, ...] -> one time-major batch of [T+1, B, ...].

  `out`: a batch an earlier call returned and the caller is done with (`Learner.train` converts its batch to
  tensors and has finished with it when it returns). Its arrays are written over where shapes and dtypes match, so
  no update allocates (and page-faults in) a new batch: at B=4, T=32, N=5 and 72x96 that halves the time this
  takes (`benchmarks/marl_transport.py`); at the thesis batch (B=120) the uint8 observations alone are 2.2 GB."""
  batch = {}
  for k in UNROLL_FIELDS:
    arrays = [u[k] for u in unrolls]
    first = arrays[0]
    target = None if out is None else out.get(k)
    if target is None or target.shape != (first.shape[0], len(arrays)) + first.shape[1:] or \
        target.dtype != first.dtype:
      target = None
    batch[k] = np.stack(arrays, axis=1, out=target)
  return batch
