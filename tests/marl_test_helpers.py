"""Helpers shared by the Chapter 4 tests (imported as `marl_test_helpers`: pytest puts tests/ on sys.path)."""

import numpy as np


def synthetic_unroll_batch(observation_shape, t1: int = 5, b: int = 2, seed: int = 0, num_actions: int = 19):
  """A time-major batch of [t1, b, ...] unrolls in the learner's layout (`runtime.unrolls.UNROLL_FIELDS`), with
  random sparse observations, rewards, dones (terminations), positions inside the map, actions and behaviour logits."""
  n, h, w, _ = observation_shape
  rng = np.random.default_rng(seed)
  done = rng.random((t1, b)) < 0.2
  return {
      'observation': ((rng.random((t1, b) + tuple(observation_shape)) < 0.1) * 255).astype(np.uint8),
      'reward': rng.normal(size=(t1, b, n)).astype(np.float32),
      'done': done,
      'discount': (~done).astype(np.float32),
      'truncated': np.zeros((t1, b), bool),
      'agent_positions': np.stack([rng.integers(0, h, (t1, b, n)), rng.integers(0, w, (t1, b, n))],
                                  -1).astype(np.int32),
      'action': rng.integers(0, num_actions, (t1, b, n)).astype(np.int32),
      'behaviour_logits': rng.normal(size=(t1, b, n, num_actions)).astype(np.float32),
  }


def error_line(proc) -> str:
  """The single stderr line of a launcher that refused its input, after checking that it failed, printed no
  traceback and nothing else."""
  assert proc.returncode != 0, (proc.stdout, proc.stderr)
  assert 'Traceback' not in proc.stderr, proc.stderr
  lines = [l for l in proc.stderr.splitlines() if l.strip()]
  assert len(lines) == 1, proc.stderr
  return lines[0]


SMALL_NET = dict(stack_channels=((8, 1), (8, 1)), feature_dim=32)


def small_config(**kw):
  """A `MarlConfig` for fast end-to-end runs on the stand-in: 2 actors, batch 2 x 8, a small network, no timed
  checkpoints or progress lines; keyword arguments override any field."""
  from rlcv_tf.marl import config as config_lib  # pylint: disable=g-import-not-at-top  (numpy-only otherwise)
  base = dict(env='mini_5v5_small', model='acnn', num_actors=2, batch_size=2, unroll_length=8,
              total_frames=32, checkpoint_interval_s=1e9, log_interval_s=1e9, **SMALL_NET)
  base.update(kw)
  return config_lib.MarlConfig(**base)

