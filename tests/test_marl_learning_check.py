"""A learning check that can fail: ACNN trained by the full runtime (actor processes, central inference,
V-trace) on the stand-in's run-to-score task must clearly beat a uniform random policy within a fixed frame
budget (about 40K frames, one to two minutes on 2 cores)."""

import numpy as np
import pytest

from rlcv_tf.envs import random_policy
from rlcv_tf.envs import registry
from rlcv_tf.marl import config as config_lib
from rlcv_tf.marl import training

ENV_KWARGS = {'smm_hw': (18, 24), 'speed_scale': 2.0, 'episode_length': 100}


def random_policy_return(episodes=100):
  env = registry.make_env('mini_run_to_score', seed=123, **ENV_KWARGS)
  return random_policy.mean_random_return(env, episodes, seed=0)[0]


@pytest.mark.slow
def test_acnn_learns_run_to_score(tmp_path):
  cfg = config_lib.MarlConfig(
      env='mini_run_to_score', model='acnn', env_kwargs=dict(ENV_KWARGS), stack_channels=((16, 1), (32, 1)),
      feature_dim=64, num_actors=2, batch_size=8, unroll_length=16, learning_rate=1e-3, entropy_cost=0.002,
      total_frames=40_000, seed=0, log_interval_s=1e9, checkpoint_interval_s=1e9)
  result = training.train(cfg, str(tmp_path), print_fn=lambda s: None)
  returns = np.array([float(e['return'].mean()) for e in result.episodes])
  k = max(1, len(returns) // 5)
  first, last = returns[:k].mean(), returns[-k:].mean()
  baseline = random_policy_return()
  print(f'random {baseline:.3f}; first fifth {first:.3f}; last fifth {last:.3f} ({len(returns)} episodes)')
  assert last > baseline + 0.4, (baseline, first, last)
  assert last > first + 0.3, (first, last)
