"""Chapter 4 networks: exact parameter counts, Eq. 4.3 against NumPy, permutation equivariance (ACNN),
agent independence (CNN), masking, one weight set for any N, SavedModel round trip."""

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.marl import attention
from rlcv_tf.marl import export
from rlcv_tf.marl import networks

SMALL = dict(stack_channels=((8, 1), (8, 1)), feature_dim=32)
OBS = (4, 18, 24, 16)


def random_obs(batch, n=4, seed=0):
  rng = np.random.default_rng(seed)
  return (rng.random((batch, n) + OBS[1:]) < 0.05).astype(np.uint8) * 255


@pytest.mark.parametrize('kind,shape,actions,expected', [
    ('cnn', (5, 72, 96, 16), 19, 396_868),
    ('acnn', (5, 72, 96, 16), 19, 595_268),
    ('cnn', (4, 72, 96, 12), 60, 406_829),   # DMLab2D Cleanup: RGB x 4 frames, 60 actions
])
def test_parameter_counts(kind, shape, actions, expected):
  assert networks.build_network(kind, actions, shape).count_params() == expected


def test_torso_sizes_at_thesis_scale():
  torso = networks.ResidualTorso()
  z = torso(tf.zeros((1, 72, 96, 16)))
  assert z.shape == (1, 256)
  assert torso.fc.kernel.shape == (960, 256)  # 5 x 6 x 32 after four stride-2 pools
  assert torso.count_params() == 391_728


def test_attention_matches_numpy_eq_4_3():
  rng = np.random.default_rng(1)
  layer = attention.AgentCentricAttention(num_heads=2)
  z = rng.normal(size=(3, 5, 8)).astype(np.float32)
  layer(z)
  # Non-trivial LayerNorm parameters so a misplaced LN shows.
  for ln in (layer.ln_in, layer.ln_out):
    ln.gamma.assign(rng.normal(size=8).astype(np.float32))
    ln.beta.assign(rng.normal(size=8).astype(np.float32))
  out, weights = layer(z)

  def ln(x, p):
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-6) * p.gamma.numpy() + p.beta.numpy()

  def dense(x, d):
    return x @ d.kernel.numpy() + d.bias.numpy()

  u = ln(z, layer.ln_in)
  q, k, v = dense(u, layer.query), dense(u, layer.key), dense(u, layer.value)
  heads, ws = [], []
  for h in range(2):
    sl = slice(4 * h, 4 * h + 4)
    logits = q[..., sl] @ np.swapaxes(k[..., sl], 1, 2) / np.sqrt(4)
    a = np.exp(logits - logits.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    ws.append(a)
    heads.append(a @ v[..., sl])
  expected = ln(z + np.concatenate(heads, -1), layer.ln_out)
  np.testing.assert_allclose(out.numpy(), expected, atol=1e-5)
  np.testing.assert_allclose(weights.numpy(), np.stack(ws, 1), atol=1e-6)


def test_single_agent_attention_is_a_residual_value_path():
  layer = attention.AgentCentricAttention()
  z = np.random.default_rng(2).normal(size=(4, 1, 16)).astype(np.float32)
  out, w = layer(z)
  np.testing.assert_allclose(w.numpy(), 1.0)
  expected = layer.ln_out(z + layer.value(layer.ln_in(z)))
  np.testing.assert_allclose(out.numpy(), expected.numpy(), atol=1e-5)


def test_attention_rows_sum_to_one_and_masked_agents_get_zero_weight():
  layer = attention.AgentCentricAttention()
  z = np.random.default_rng(3).normal(size=(2, 4, 16)).astype(np.float32)
  mask = np.array([[True, True, False, True], [True, False, False, False]])
  _, w = layer(z, agent_mask=mask)
  w = w.numpy()
  np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-6)
  np.testing.assert_allclose(w[0, :, :, 2], 0.0)
  np.testing.assert_allclose(w[1, :, :, 1:], 0.0)
  assert np.all(np.isfinite(w))


def test_acnn_is_permutation_equivariant():
  net = networks.build_network('acnn', 19, OBS, **SMALL)
  obs = random_obs(2)
  perm = np.array([2, 0, 3, 1])
  a, b = net(obs), net(obs[:, perm])
  np.testing.assert_allclose(b['policy_logits'].numpy(), a['policy_logits'].numpy()[:, perm], atol=1e-5)
  np.testing.assert_allclose(b['baseline'].numpy(), a['baseline'].numpy()[:, perm], atol=1e-5)
  np.testing.assert_allclose(b['attention'].numpy(), a['attention'].numpy()[:, :, perm][:, :, :, perm], atol=1e-5)


def test_cnn_agents_are_independent_and_acnn_agents_are_not():
  obs = random_obs(2, seed=4)
  changed = obs.copy()
  changed[:, 2] = random_obs(2, seed=5)[:, 2]
  cnn = networks.build_network('cnn', 19, OBS, **SMALL)
  diff = np.abs(cnn(obs)['policy_logits'].numpy() - cnn(changed)['policy_logits'].numpy())
  assert diff[:, 0].max() == 0.0 and diff[:, 2].max() > 0
  acnn = networks.build_network('acnn', 19, OBS, **SMALL)
  diff = np.abs(acnn(obs)['policy_logits'].numpy() - acnn(changed)['policy_logits'].numpy())
  assert diff[:, 0].max() > 0


def test_one_weight_set_serves_any_number_of_agents():
  net = networks.build_network('acnn', 19, OBS, **SMALL)
  count = net.count_params()
  for n in (1, 4, 5):
    out = net(random_obs(3, n=n))
    assert out['policy_logits'].shape == (3, n, 19) and out['baseline'].shape == (3, n)
    assert out['attention'].shape == (3, 2, n, n)
  assert net.count_params() == count


def test_runs_in_tf_function_with_unknown_batch_and_agents():
  net = networks.build_network('acnn', 19, OBS, **SMALL)
  fn = tf.function(lambda x: net(x)['policy_logits'],
                   input_signature=[tf.TensorSpec([None, None] + list(OBS[1:]), tf.uint8)])
  assert fn(random_obs(2, n=3)).shape == (2, 3, 19)
  assert fn(random_obs(1, n=5)).shape == (1, 5, 19)


@pytest.mark.parametrize('kind', ['cnn', 'acnn'])
def test_savedmodel_round_trip(kind, tmp_path):
  net = networks.build_network(kind, 19, OBS, **SMALL)
  path = export.export_policy(net, str(tmp_path / 'sm'), OBS[1:])
  loaded = tf.saved_model.load(path)
  obs = random_obs(2)
  got = loaded.signatures['serving_default'](observations=tf.constant(obs))
  ref = net(obs)
  np.testing.assert_allclose(got['policy_logits'].numpy(), ref['policy_logits'].numpy(), atol=1e-5)
  np.testing.assert_allclose(got['baseline'].numpy(), ref['baseline'].numpy(), atol=1e-5)
  np.testing.assert_array_equal(got['greedy_actions'].numpy(), np.argmax(ref['policy_logits'].numpy(), -1))
