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
  steps: List[Dict[str, np.ndarray]]


class UnrollBuilder:
  """Collects steps per actor and emits finished unrolls of `unroll_length + 1` steps."""

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
      store = self._stores[actor_id] = _Store(run_id, [])
    store.steps.append(step)
    if len(store.steps) < self._length:
      return None
    unroll = {k: np.stack([s[k] for s in store.steps]) for k in UNROLL_FIELDS}
    store.steps = store.steps[-1:]
    return unroll


def stack_batch(unrolls: List[Dict[str, np.ndarray]]) -> Dict[str, np.ndarray]:
  """B unrolls of [T+1, ...] -> one time-major batch of [T+1, B, ...]."""
  return {k: np.stack([u[k] for u in unrolls], axis=1) for k in UNROLL_FIELDS}
