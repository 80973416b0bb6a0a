"""Chapter 2 SavedModel export (issue 10 §5): the reloaded `serve` signature equals the Keras network (MAP logits,
value, next LSTM state, MAP action), votes like `evaluation.vote_actions`, samples valid actions, has
`initial_state`, and refuses num_samples < 1."""

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.stochastic_ac import a3c
from rlcv_tf.stochastic_ac import export

SMALL = dict(encoder='mlp', mlp_units=(12,), lstm_units=16, fc_units=8)


def _randomised(model_name, **kw):
  model = a3c.build_network(model_name, 5, (3, 1), **dict(SMALL, **kw))
  rng = np.random.default_rng(0)
  model.set_weights([rng.normal(scale=0.5, size=w.shape).astype(np.float32) for w in model.get_weights()])
  return model


@pytest.mark.parametrize('model_name', ['a3c', 'sa3c', 'hpa3c', 'nn_a3c', 'dropout_sa3c'])
def test_saved_model_round_trip(model_name, tmp_path):
  model = _randomised(model_name)
  path = export.export_policy(model, str(tmp_path / 'saved_model'))
  loaded = tf.saved_model.load(path)
  assert {'serve', 'serving_default', 'initial_state'} <= set(loaded.signatures)
  rng = np.random.default_rng(1)
  obs = rng.normal(size=(6, 3, 1)).astype(np.float32)
  state = loaded.signatures['initial_state'](batch_size=tf.constant(6))
  assert state['h'].shape == (6, 16) and not np.any(state['h'].numpy()) and not np.any(state['c'].numpy())
  keras_state = model.initial_state(6)
  for step in range(3):                       # a few steps, feeding the state back
    out = loaded.signatures['serve'](observation=tf.constant(obs), h=state['h'], c=state['c'],
                                     num_samples=tf.constant(5))
    ref = model.step(obs, keras_state, mode='map')
    np.testing.assert_allclose(out['policy_logits'].numpy(), ref.logits.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out['value'].numpy(), ref.value.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out['h'].numpy(), ref.state['h'].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out['c'].numpy(), ref.state['c'].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out['map_action'].numpy(), ref.logits.numpy().argmax(-1))
    for key in ('vote_action', 'sampled_action'):
      assert out[key].dtype == tf.int32 and out[key].shape == (6,)
      assert np.all((out[key].numpy() >= 0) & (out[key].numpy() < 5))
    state = {'h': out['h'], 'c': out['c']}
    keras_state = dict(ref.state)
    obs = rng.normal(size=(6, 3, 1)).astype(np.float32)


def test_vote_and_sampling_of_the_served_policy(tmp_path):
  # Without noise (log sigma^2 = -30) every vote is the MAP action; with large noise votes move off it.
  quiet = _randomised('sa3c', log_var=-30.0)
  loaded = tf.saved_model.load(export.export_policy(quiet, str(tmp_path / 'quiet')))
  obs = np.random.default_rng(2).normal(size=(64, 3, 1)).astype(np.float32)
  zeros = tf.zeros((64, 16))
  out = loaded.serve(tf.constant(obs), zeros, zeros, tf.constant(5))
  np.testing.assert_array_equal(out['vote_action'].numpy(), out['map_action'].numpy())
  noisy = _randomised('sa3c', log_var=4.0)
  loaded = tf.saved_model.load(export.export_policy(noisy, str(tmp_path / 'noisy')))
  out = loaded.serve(tf.constant(obs), zeros, zeros, tf.constant(1))
  assert np.mean(out['vote_action'].numpy() != out['map_action'].numpy()) > 0.2
  # sampled_action draws from pi: a flat policy gives every action.
  flat = _randomised('a3c')
  flat.policy.set_weights([np.zeros_like(w) for w in flat.policy.get_weights()])
  loaded = tf.saved_model.load(export.export_policy(flat, str(tmp_path / 'flat')))
  many = np.repeat(obs[:1], 500, axis=0)
  out = loaded.serve(tf.constant(many), tf.zeros((500, 16)), tf.zeros((500, 16)), tf.constant(1))
  assert np.bincount(out['sampled_action'].numpy(), minlength=5).min() > 60
  with pytest.raises(tf.errors.InvalidArgumentError, match='num_samples must be >= 1'):
    loaded.serve(tf.constant(obs), zeros, zeros, tf.constant(0))
