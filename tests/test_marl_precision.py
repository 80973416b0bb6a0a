"""--precision=bfloat16: the torso and attention compute in bfloat16, the heads, logits, values and V-trace in
float32; variables stay float32, so checkpoints move between precisions unchanged."""

import os

import keras
import numpy as np
import tensorflow as tf

from rlcv_tf.marl import config as config_lib
from rlcv_tf.marl import learner as learner_lib

import marl_test_helpers

OBS = (3, 12, 16, 8)


def _learner(precision, model='acnn', aux='predict'):
  cfg = config_lib.MarlConfig(env='x', model=model, aux=aux, batch_size=2, unroll_length=4, precision=precision,
                              stack_channels=((4, 1), (4, 1)), feature_dim=16, seed=3, learning_rate=1e-3)
  return learner_lib.Learner(cfg, OBS, 19)


def test_bfloat16_computes_torso_in_bf16_and_heads_in_float32():
  bf = _learner('bfloat16')
  assert keras.config.dtype_policy().name == 'float32', 'the global policy is restored after building'
  assert bf.model.torso.compute_dtype == 'bfloat16'
  assert all(v.dtype == 'float32' for v in bf.model.variables)
  obs = marl_test_helpers.synthetic_unroll_batch(OBS, t1=1, b=4)['observation'][0]
  out = bf.model(obs)
  assert out['policy_logits'].dtype == tf.float32 and out['baseline'].dtype == tf.float32
  assert out['pred_row'].dtype == tf.float32
  logs = bf.train(marl_test_helpers.synthetic_unroll_batch(OBS, t1=5, b=2))
  assert np.isfinite(logs['loss/total'])


def test_bfloat16_is_close_to_float32_and_checkpoints_are_interchangeable(tmp_path):
  f32, bf = _learner('float32'), _learner('bfloat16')
  for a, b in zip(f32.model.variables, bf.model.variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())   # same seed, same float32 initial weights
  obs = marl_test_helpers.synthetic_unroll_batch(OBS, t1=1, b=8, seed=1)['observation'][0]
  l32 = f32.model(obs)['policy_logits'].numpy()
  l16 = bf.model(obs)['policy_logits'].numpy()
  largest = float(np.abs(l32 - l16).max())
  assert 0 < largest < 0.05, largest          # bfloat16 has an 8-bit mantissa: close, not equal
  batch = marl_test_helpers.synthetic_unroll_batch(OBS, t1=5, b=2, seed=2)
  bf.train(batch)
  path = bf.checkpoint.save(os.path.join(str(tmp_path), 'ckpt'))
  f32.checkpoint.restore(path).assert_existing_objects_matched()
  for a, b in zip(f32.model.variables, bf.model.variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
