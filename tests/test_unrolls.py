"""Unroll stores: T+1 steps, one-step overlap between consecutive unrolls, reset on actor restart."""

import numpy as np
import pytest

from rlcv_tf.runtime import unrolls


def step(i, n=2):
  return {'observation': np.full((n, 3, 4, 1), i, np.uint8), 'reward': np.full(n, i, np.float32),
          'done': np.bool_(i % 5 == 0), 'discount': np.float32(i % 5 != 0), 'truncated': np.bool_(False),
          'agent_positions': np.zeros((n, 2), np.int32),
          'action': np.full(n, i, np.int32), 'behaviour_logits': np.zeros((n, 19), np.float32)}


def test_consecutive_unrolls_share_one_boundary_step():
  b = unrolls.UnrollBuilder(unroll_length=3)
  out = [b.append(0, 0, step(i)) for i in range(10)]
  finished = [(i, u) for i, u in enumerate(out) if u is not None]
  assert [i for i, _ in finished] == [3, 6, 9]  # T+1 = 4 steps, then every T = 3 new steps
  first, second = finished[0][1], finished[1][1]
  np.testing.assert_array_equal(first['action'][:, 0], [0, 1, 2, 3])
  np.testing.assert_array_equal(second['action'][:, 0], [3, 4, 5, 6])
  assert first['observation'].shape == (4, 2, 3, 4, 1) and first['observation'].dtype == np.uint8
  assert first['done'].shape == (4,)


def test_actors_are_kept_apart_and_a_restart_drops_the_partial_unroll():
  b = unrolls.UnrollBuilder(unroll_length=2)
  assert b.append(0, 0, step(1)) is None
  assert b.append(1, 0, step(100)) is None
  assert b.append(0, 0, step(2)) is None
  assert b.append(0, 1, step(50)) is None  # actor 0 restarted: steps 1, 2 belong to a dead process
  assert b.append(0, 1, step(51)) is None
  u = b.append(0, 1, step(52))
  np.testing.assert_array_equal(u['action'][:, 0], [50, 51, 52])


def test_stack_batch_is_time_major():
  b = unrolls.UnrollBuilder(unroll_length=2)
  us = []
  for actor in range(3):
    for i in range(3):
      u = b.append(actor, 0, step(10 * actor + i))
    us.append(u)
  batch = unrolls.stack_batch(us)
  assert batch['observation'].shape == (3, 3, 2, 3, 4, 1)
  np.testing.assert_array_equal(batch['action'][:, :, 0], [[0, 10, 20], [1, 11, 21], [2, 12, 22]])


def test_bad_length():
  with pytest.raises(ValueError, match='unroll_length'):
    unrolls.UnrollBuilder(0)
