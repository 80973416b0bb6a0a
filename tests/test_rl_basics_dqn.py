"""DQN pieces (spec Sec. 7.7 T-DQN-1..5, T-QL-2-like checks): TD targets on hand arrays (plain and double), the
gradient reaching only Q(s, a_taken), the target network untouched by a step and synced every C updates, Polyak's
midpoint, Huber's value and gradient, the networks' shapes and parameter counts."""

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.rl_basics import dqn


def test_td_target_on_hand_arrays():
  r = np.array([1.0, 0.0, -1.0])
  done = np.array([0.0, 1.0, 0.0])
  q_next = np.array([[1.0, 3.0], [5.0, 2.0], [-2.0, -4.0]])
  y = dqn.td_target(r, 0.9 * (1 - done), q_next).numpy()
  np.testing.assert_allclose(y, [1 + 0.9 * 3, 0.0, -1 + 0.9 * -2])
  online_next = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 1.0]])          # double: online picks, target values
  y2 = dqn.td_target(r, 0.9 * (1 - done), q_next, online_next).numpy()
  np.testing.assert_allclose(y2, [1 + 0.9 * 1, 0.0, -1 + 0.9 * -4])


def test_huber_value_and_gradient():
  e = tf.Variable([-3.0, -0.5, 0.0, 0.7, 2.0])
  with tf.GradientTape() as tape:
    h = dqn.huber(e)
    total = tf.reduce_sum(h)
  np.testing.assert_allclose(h.numpy(), [2.5, 0.125, 0.0, 0.245, 1.5], atol=1e-6)
  np.testing.assert_allclose(tape.gradient(total, e).numpy(), [-1.0, -0.5, 0.0, 0.7, 1.0], atol=1e-6)


@pytest.mark.parametrize('kind,maps,params', [
    ('nips2013', [(20, 20, 16), (9, 9, 32)], 677_172),
    ('nature2015', [(20, 20, 32), (9, 9, 64), (7, 7, 64)], 1_686_180)])
def test_network_shapes_and_parameter_counts(kind, maps, params):
  net = dqn.build_network(kind, (84, 84, 4), 4)
  assert net.count_params() == params
  convs = [l for l in net.layers if isinstance(l, tf.keras.layers.Conv2D) or 'conv' in l.name]
  assert [tuple(l.output.shape[1:]) for l in convs] == maps
  out = net(np.zeros((2, 84, 84, 4), np.uint8))
  assert out.shape == (2, 4)


def test_gradient_reaches_only_the_taken_action_and_the_target_net_is_left_alone():
  learner = dqn.DQNLearner(dqn.DQNConfig(network='mlp', target_update_period=3, loss='mse'), (3,), 4, seed=0)
  rng = np.random.default_rng(0)
  batch = {'observation': rng.normal(size=(5, 3)).astype(np.float32), 'action': np.array([0, 1, 2, 3, 1]),
           'reward': rng.normal(size=5).astype(np.float32), 'discount': np.full(5, 0.9, np.float32),
           'next_observation': rng.normal(size=(5, 3)).astype(np.float32)}
  with tf.GradientTape() as tape:
    terms = learner.loss_terms(*(tf.constant(batch[k]) for k in ('observation', 'action', 'reward', 'discount',
                                                                  'next_observation')))
  g = tape.gradient(terms['loss'], terms['q_values']).numpy()
  taken = np.eye(4, dtype=bool)[batch['action']]
  assert np.all(g[~taken] == 0.0) and np.all(g[taken] != 0.0)
  target_before = [v.numpy().copy() for v in learner.target.variables]
  online_before = [v.numpy().copy() for v in learner.online.variables]
  learner.train_step(batch)
  for b, v in zip(target_before, learner.target.variables):
    np.testing.assert_array_equal(b, v.numpy())
  assert any(not np.array_equal(b, v.numpy()) for b, v in zip(online_before, learner.online.variables))
  learner.train_step(batch)
  assert any(not np.array_equal(t.numpy(), o.numpy()) for t, o in zip(learner.target.variables,
                                                                     learner.online.variables))
  learner.train_step(batch)                                             # update 3: the sync fires
  for t, o in zip(learner.target.variables, learner.online.variables):
    np.testing.assert_array_equal(t.numpy(), o.numpy())


def test_soft_update_midpoint_and_config_errors():
  a = dqn.build_network('mlp', (2,), 2, name='a')
  b = dqn.build_network('mlp', (2,), 2, name='b')
  before = [v.numpy().copy() for v in a.variables]
  dqn.soft_update(a, b, 0.5)
  for x, y, v in zip(before, b.variables, a.variables):
    np.testing.assert_allclose(v.numpy(), (x + y.numpy()) / 2, atol=1e-7)
  with pytest.raises(ValueError, match='double DQN needs a target network'):
    dqn.DQNConfig(double=True, target_update_period=0).validate()
  with pytest.raises(ValueError, match='gamma'):
    dqn.DQNConfig(gamma=1.2).validate()
