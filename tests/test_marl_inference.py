"""Central inference compiles once: one trace for any batch size, or (XLA / TPU: static shapes) one per padded
power-of-two bucket, and none after warm-up; padding does not change the answers."""

import numpy as np

from rlcv_tf.marl import config as config_lib
from rlcv_tf.marl import learner as learner_lib

OBS = (3, 12, 16, 8)


def _learner(**kw):
  cfg = config_lib.MarlConfig(env='x', model='acnn', stack_channels=((4, 1), (4, 1)), feature_dim=16, seed=1, **kw)
  return learner_lib.Learner(cfg, OBS, 19)


def _obs(b, seed=0):
  return (np.random.default_rng(seed).random((b,) + OBS) < 0.2).astype(np.uint8) * 255


def test_dynamic_batch_traces_once():
  learner = _learner()
  for b in (1, 3, 7, 16, 2):
    actions, logits, values = learner.infer(_obs(b))
    assert actions.shape == (b, 3) and logits.shape == (b, 3, 19) and values.shape == (b, 3)
  assert learner.infer_traces == 1


def test_static_shapes_trace_once_per_bucket_and_padding_changes_nothing():
  xla, plain = _learner(jit_compile=True), _learner()
  sizes = (1, 3, 4, 7, 16, 5, 2)
  for b in sizes:
    _, logits, values = xla.infer(_obs(b, seed=b))
    _, ref_logits, ref_values = plain.infer(_obs(b, seed=b))
    assert logits.shape == (b, 3, 19)
    np.testing.assert_allclose(logits.numpy(), ref_logits.numpy(), atol=1e-5)
    np.testing.assert_allclose(values.numpy(), ref_values.numpy(), atol=1e-5)
  buckets = {learner_lib.Learner.inference_bucket(b) for b in sizes}
  assert buckets == {1, 2, 4, 8, 16}
  assert xla.infer_traces == len(buckets)
  for b in sizes:   # warm: no new traces
    xla.infer(_obs(b))
  assert xla.infer_traces == len(buckets)


def test_bucket_sizes():
  assert [learner_lib.Learner.inference_bucket(b) for b in (1, 2, 3, 5, 8, 9, 120)] == [1, 2, 4, 8, 8, 16, 128]
