"""The inline runtime: one process steps every environment, runs one batched inference, trains every batch_size
unrolls. Two runs with one seed give bit-identical losses; the stream it trains on is the actor runtime's."""

import os

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.marl import config as config_lib
from rlcv_tf.marl import training
from rlcv_tf.runtime import actors
from rlcv_tf.runtime import inline

import marl_test_helpers


def inline_config(**kw):
  base = dict(model='acnn', runtime='inline', num_envs=3, batch_size=3, total_frames=96, learning_rate=1e-3,
              env_kwargs={'episode_length': 20})
  base.update(kw)
  return marl_test_helpers.small_config(**base)


def test_two_inline_runs_with_one_seed_give_bit_identical_losses(tmp_path):
  a = training.train(inline_config(seed=3), str(tmp_path / 'a'), print_fn=lambda s: None)
  b = training.train(inline_config(seed=3), str(tmp_path / 'b'), print_fn=lambda s: None)
  c = training.train(inline_config(seed=4), str(tmp_path / 'c'), print_fn=lambda s: None)
  assert a.updates == 4 and len(a.losses) == 4 and a.frames == 96
  assert a.losses == b.losses, 'same seed, same losses, bit for bit'
  assert a.losses != c.losses, 'another seed gives another run (the comparison can fail)'
  assert [e['return'].tolist() for e in a.episodes] == [e['return'].tolist() for e in b.episodes]
  assert len(a.episodes) >= 3, 'episodes of 20 steps end and are reported'
  wa = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tmp_path / 'a' / 'checkpoints')))
  wb = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tmp_path / 'b' / 'checkpoints')))
  for name in wa.get_variable_to_shape_map():
    if name == '_CHECKPOINTABLE_OBJECT_GRAPH':
      continue   # holds Keras's per-process layer names (marl_network, marl_network_1), not values
    np.testing.assert_array_equal(wa.get_tensor(name), wb.get_tensor(name))


def test_inline_pool_reports_what_an_actor_process_reports():
  """The same env and seed through an actor process and through the inline pool: identical streams."""
  cfgs = [actors.ActorConfig('mini_5v5_small', {'episode_length': 6}, seed=11)]
  rng = np.random.default_rng(0)
  actions = rng.integers(0, 19, size=(15, 1, 5)).astype(np.int32)
  streams = []
  for pool in (actors.LocalActorPool(cfgs), inline.InlinePool(cfgs)):
    got = []
    with pool:
      for t in range(15):
        steps = []
        while not steps:
          steps = pool.receive(5.0)
        got.append(steps[0])
        pool.send_actions([0], actions[t])
    streams.append(got)
  for x, y in zip(*streams):
    np.testing.assert_array_equal(x.observation, y.observation)
    np.testing.assert_array_equal(x.reward, y.reward)
    np.testing.assert_array_equal(x.agent_positions, y.agent_positions)
    assert (x.done, x.discount, x.truncated) == (y.done, y.discount, y.truncated)
    assert (x.episode is None) == (y.episode is None)
  assert sum(s.done for s in streams[0]) == 2


def test_inline_resume_and_signal(tmp_path):
  logdir = str(tmp_path / 'run')
  first = training.train(inline_config(total_frames=48), logdir, print_fn=lambda s: None)
  second = training.train(inline_config(total_frames=96), logdir, print_fn=lambda s: None)
  assert (first.frames, second.frames, second.updates) == (48, 96, 4)


def test_num_envs_needs_inline():
  with pytest.raises(ValueError, match='num_envs'):
    config_lib.MarlConfig(num_envs=3).validate()
  assert config_lib.MarlConfig(runtime='inline', num_actors=2).env_count == 2
  assert config_lib.MarlConfig(runtime='inline', num_actors=2, num_envs=5).env_count == 5
