"""Chapter 2 DDPG-family networks (issue 10 §3, §6; spec ch2 §2.8, §3.4, §11 item 19): the 1-D encoder actor and
critic, SDDPG's activation noise only on the behaviour (sampling) path, after the LayerNorm and on the last 200
units only; parameter noise never on the conv encoder nor the LayerNorm, and its adaptation rule (0.05, 0.3, 1.05);
LayerNorm statistics; the soft target update."""

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.stochastic_ac import ddpg


def test_registry():
  assert set(ddpg.MODELS) == {'ddpg', 'sddpg', 'pn_ddpg'}
  with pytest.raises(ValueError, match='unknown model'):
    ddpg.MODELS['ddpg'].func('td3', 4)
  with pytest.raises(ValueError, match='log_var'):
    ddpg.build_networks('sddpg', 4, log_var=float('nan'))


def test_ddpg_networks_and_sddpg_noise_only_when_sampling():
  rng = np.random.default_rng(8)
  actor, critic = ddpg.MODELS['sddpg'](4)
  obs = rng.normal(size=(5, 24, 4)).astype(np.float32)
  a_map = actor(obs).numpy()
  assert a_map.shape == (5, 4) and np.all(np.abs(a_map) <= 1)
  np.testing.assert_array_equal(actor(obs).numpy(), a_map)                          # training path: MAP
  assert critic(obs, a_map).shape == (5,)
  tf.random.set_seed(9)
  s1, s2 = actor(obs, mode='sample').numpy(), actor(obs, mode='sample').numpy()
  assert np.max(np.abs(s1 - s2)) > 1e-6 and np.max(np.abs(s1 - a_map)) > 1e-6       # behaviour path: noisy
  eps = rng.normal(size=(5, 200)).astype(np.float32)
  np.testing.assert_array_equal(actor(obs, {'z1': eps}, mode='sample').numpy(),
                                actor(obs, {'z1': eps}, mode='sample').numpy())
  np.testing.assert_allclose(actor(obs, {'z1': 0 * eps}, mode='sample').numpy(), a_map, atol=1e-6)
  # The noise enters after the LayerNorm, on the last 200 of the 400 units only.
  hidden = actor.ln1(actor.fc1(actor.encoder(obs))).numpy()
  np.testing.assert_allclose(hidden.mean(-1), 0.0, atol=1e-5)
  np.testing.assert_allclose(hidden.std(-1), 1.0, rtol=1e-3)
  sigma = np.exp(-2.5)                                                               # log sigma^2 = -5
  z = np.concatenate([hidden[:, :200], hidden[:, 200:] + sigma * eps], -1)
  leaky = lambda x: np.where(x > 0, x, 0.1 * x)
  x2 = actor.ln2(actor.fc2(leaky(z))).numpy()
  expected = np.tanh(actor.action(leaky(x2)).numpy())
  np.testing.assert_allclose(actor(obs, {'z1': eps}, mode='sample').numpy(), expected, atol=1e-5)
  plain, _ = ddpg.MODELS['ddpg'](4)
  assert not plain.noise_specs()
  tf.random.set_seed(10)
  np.testing.assert_array_equal(plain(obs, mode='sample').numpy(), plain(obs).numpy())


def test_param_noise_perturbs_dense_layers_only():
  rng = np.random.default_rng(11)
  actor, _ = ddpg.MODELS['pn_ddpg'](4)
  perturbed = ddpg.clone_actor(actor, 'perturbed')
  ddpg.perturb_actor(actor, perturbed, 0.05, rng)
  dense = {id(v) for layer in perturbed.dense_layers() for v in (layer.kernel, layer.bias)}
  changed = 0
  for src, dst in zip(actor.weights, perturbed.weights):
    diff = dst.numpy() - src.numpy()
    if id(dst) in dense:
      changed += 1
      if diff.size > 1000:
        assert abs(diff.std() - 0.05) < 0.005
    else:
      np.testing.assert_array_equal(diff, 0.0)          # conv encoder and LayerNorm untouched
  assert changed == 6
  assert all(np.array_equal(s.numpy(), d.numpy()) for s, d in
             zip(actor.encoder.weights, perturbed.encoder.weights))

  adapt = ddpg.ParamNoiseAdaptation()
  assert (adapt.stddev, adapt.desired_distance, adapt.coefficient) == (0.05, 0.3, 1.05)
  assert adapt.adapt(0.1) == pytest.approx(0.05 * 1.05)
  assert adapt.adapt(0.3) == pytest.approx(0.05 * 1.05 ** 2)
  assert adapt.adapt(0.5) == pytest.approx(0.05 * 1.05)
  assert ddpg.action_distance([[0.0, 0.0]], [[0.3, 0.4]]) == pytest.approx(np.sqrt(0.125))


def test_soft_update_and_target_copies():
  actor, critic = ddpg.MODELS['ddpg'](2, (3, 4))
  target = ddpg.clone_critic(critic, 'target')
  for w in critic.weights:
    w.assign(w + 0.5)
  ddpg.soft_update(target, critic, 1.0)
  for t, s in zip(target.weights, critic.weights):
    np.testing.assert_array_equal(t.numpy(), s.numpy())
  before = [t.numpy().copy() for t in target.weights]
  for w in critic.weights:
    w.assign(w + 1.0)
  ddpg.soft_update(target, critic, 0.001)
  for b, t, s in zip(before, target.weights, critic.weights):
    np.testing.assert_allclose(t.numpy(), 0.001 * s.numpy() + 0.999 * b, rtol=1e-5, atol=1e-6)
  assert actor(np.zeros((1, 3, 4), np.float32)).shape == (1, 2)
