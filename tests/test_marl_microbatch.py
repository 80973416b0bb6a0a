"""Micro-batching (gradient accumulation) makes the same update as the whole batch, masks included."""

import numpy as np
import pytest

from rlcv_tf.marl import config as config_lib
from rlcv_tf.marl import learner as learner_lib

import marl_test_helpers

OBS = (3, 12, 16, 8)


def _batch(seed=0):
  b = marl_test_helpers.synthetic_unroll_batch(OBS, t1=6, b=4, seed=seed)
  rng = np.random.default_rng(seed + 1)
  # Truncations at different places in different unrolls, so the micro-batches hold different valid counts.
  b['truncated'] = rng.random(b['done'].shape) < 0.25
  b['discount'] = np.where(b['done'], 0.0, 1.0).astype(np.float32)
  return b


@pytest.mark.parametrize('aux', ['none', 'predict'])
@pytest.mark.parametrize('micro', [2, 4])
def test_micro_batches_equal_the_full_batch(aux, micro):
  results = []
  for m in (1, micro):
    cfg = config_lib.MarlConfig(env='x', model='acnn', batch_size=4, unroll_length=5, micro_batches=m, aux=aux,
                                aux_coef=0.1, stack_channels=((4, 1), (4, 1)), feature_dim=16, learning_rate=1e-3,
                                seed=7)
    learner = learner_lib.Learner(cfg, OBS, 19)
    logs = [learner.train(_batch(s)) for s in range(3)]
    results.append(([v.numpy() for v in learner.model.trainable_variables], logs))
  (w1, l1), (wm, lm) = results
  for a, b in zip(w1, wm):
    np.testing.assert_allclose(a, b, atol=1e-5)
  for x, y in zip(l1, lm):
    assert x['loss/total'] == pytest.approx(y['loss/total'], abs=1e-5)
    assert x['loss/policy_gradient'] == pytest.approx(y['loss/policy_gradient'], abs=1e-5)


def test_unweighted_micro_means_would_differ():
  """The weighting matters (the test above can fail): an unweighted mean of micro-batch means is another loss."""
  from rlcv_tf.marl import learning
  counts = learning.micro_batch_counts(_batch(), 4, aux='predict', max_jump=3, num_agents=3)
  v = counts['vtrace'].numpy()
  assert v.sum() > 0 and len(set(v.tolist())) > 1, 'micro-batches with different valid counts'


def test_micro_batches_must_divide_the_batch():
  with pytest.raises(ValueError, match='micro_batches'):
    config_lib.MarlConfig(batch_size=6, micro_batches=4).validate()
