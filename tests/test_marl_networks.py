"""Chapter 4 networks (spec ch4 §2.3–2.6, §7.1 items 12–19, §7.2): exact parameter counts, Eq. 4.3 against a
NumPy reference, permutation equivariance (ACNN), agent independence (CNN), masking, one weight set for any N,
tf.function with unknown B and N, and a SavedModel round trip through keras.export.ExportArchive.

Behavioural tests use the thesis torso (default stacks, D = 256, 2 heads) on an 18x24 map so they stay fast on
2 CPU cores; the parameter-count tests build at 72x96 but only run one zero batch.
"""

import numpy as np
import pytest
import tensorflow as tf

import keras

from rlcv_tf.marl import attention
from rlcv_tf.marl import networks

N, H, W, C = 4, 18, 24, 16
OBS = (N, H, W, C)


def random_obs(batch, n=N, seed=0, hwc=(H, W, C)):
  # Sparse {0, 255} planes, like the SMM.
  rng = np.random.default_rng(seed)
  return ((rng.random((batch, n) + tuple(hwc)) < 0.05) * 255).astype(np.uint8)


def randomise(layer, seed):
  """Gives every variable (LN scale/offset and biases included) non-trivial values, so a misplaced LN or a
  dropped bias would show in the NumPy comparison."""
  rng = np.random.default_rng(seed)
  for v in layer.weights:
    v.assign(rng.normal(scale=0.3, size=v.shape).astype(np.float32))


# ---------------------------------------------------------------------------------------- parameter counts
@pytest.mark.parametrize('kind,shape,actions,kw,expected', [
    ('cnn', (5, 72, 96, 16), 19, {}, 396_868),
    ('acnn', (5, 72, 96, 16), 19, {}, 595_268),
    ('cnn', (5, 72, 96, 16), 19, dict(prediction_heads=True), 396_868 + 43_176),
    ('acnn', (5, 72, 96, 16), 19, dict(prediction_heads=True), 595_268 + 43_176),
    ('cnn', (4, 72, 96, 12), 60, {}, 406_829),   # DMLab2D Cleanup: RGB x 4 frames, 60 actions
])
def test_parameter_counts_match_spec_table(kind, shape, actions, kw, expected):
  net = networks.build_network(kind, actions, shape, **kw)
  assert net.count_params() == expected


def test_component_sizes_at_thesis_scale():
  torso = networks.ResidualTorso()
  z = torso(tf.zeros((1, 72, 96, 16)))
  assert z.shape == (1, 256)
  assert torso.fc.kernel.shape == (960, 256)          # 5 x 6 x 32 after four stride-2 pools
  assert torso.count_params() == 391_728
  assert torso.count_params() - torso.fc.count_params() == 145_712   # conv stacks
  # No recurrent state anywhere (temporal information comes from the frame stack only).
  assert not any(isinstance(l, keras.layers.RNN) for l in torso._flatten_layers())
  att = attention.AgentCentricAttention()
  att(tf.zeros((1, 5, 256)))
  assert att.count_params() == 198_400
  net = networks.build_network('acnn', 19, (5, 72, 96, 16), prediction_heads=True)
  assert net.row_head.kernel.shape == (256, 72) and net.col_head.kernel.shape == (256, 96)


def test_unknown_kind_is_rejected():
  with pytest.raises(ValueError):
    networks.MarlNetwork('lstm', 19)


# -------------------------------------------------------------------------------------- Eq. 4.3 in NumPy
def _ln(x, gamma, beta, eps=1e-6):
  mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
  return (x - mu) / np.sqrt(var + eps) * gamma + beta


def numpy_eq_4_3(z, w, num_heads, mask=None, out_proj=False):
  """Eq. 4.3 written out per sample, per head and per agent pair, in float64, from copied weights `w`."""
  z = z.astype(np.float64)
  b, n, d = z.shape
  dk = d // num_heads
  u = _ln(z, w['ln_in_g'], w['ln_in_b'])
  q, k, v = (u @ w[p + '_k'] + w[p + '_b'] for p in ('q', 'k', 'v'))
  att = np.zeros((b, num_heads, n, n))
  vt = np.zeros_like(z)
  for s in range(b):
    for h in range(num_heads):
      sl = slice(h * dk, (h + 1) * dk)
      for i in range(n):
        logits = np.array([q[s, i, sl] @ k[s, j, sl] / np.sqrt(dk) for j in range(n)])
        valid = np.ones(n, bool) if mask is None else mask[s]
        if valid.any():
          e = np.where(valid, np.exp(logits - logits[valid].max()), 0.0)
          att[s, h, i] = e / e.sum()
        vt[s, i, sl] = att[s, h, i] @ v[s, :, sl]
  if out_proj:
    vt = vt @ w['o_k'] + w['o_b']
  return _ln(z + vt, w['ln_out_g'], w['ln_out_b']), att


def copy_weights(layer):
  w = {'ln_in_g': layer.ln_in.gamma, 'ln_in_b': layer.ln_in.beta, 'ln_out_g': layer.ln_out.gamma,
       'ln_out_b': layer.ln_out.beta}
  for p, dense in (('q', layer.query), ('k', layer.key), ('v', layer.value), ('o', layer.output_dense)):
    if dense is not None:
      w[p + '_k'], w[p + '_b'] = dense.kernel, dense.bias
  return {key: np.array(val.numpy(), np.float64) for key, val in w.items()}


@pytest.mark.parametrize('out_proj', [False, True])
@pytest.mark.parametrize('masked', [False, True])
def test_attention_matches_numpy_eq_4_3(out_proj, masked):
  rng = np.random.default_rng(1)
  layer = attention.AgentCentricAttention(num_heads=2, out_proj=out_proj)
  z = rng.normal(size=(3, 5, 256)).astype(np.float32)
  layer(z)
  randomise(layer, seed=2)
  mask = np.array([[1, 1, 0, 1, 1], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]], bool) if masked else None
  out, weights = layer(z, agent_mask=mask)
  assert out.shape == (3, 5, 256) and weights.shape == (3, 2, 5, 5)
  expected, att = numpy_eq_4_3(z, copy_weights(layer), 2, mask, out_proj)
  np.testing.assert_allclose(weights.numpy(), att, atol=1e-5)
  np.testing.assert_allclose(out.numpy(), expected, atol=1e-5)


def test_single_agent_attention_is_ln_out_of_residual_value_path():
  # N = 1 (single-agent GRF, spec §2.9): softmax over one key is 1, so z~ = LN_out(z + v(LN_in(z))).
  layer = attention.AgentCentricAttention()
  z = np.random.default_rng(2).normal(size=(4, 1, 256)).astype(np.float32)
  layer(z)
  randomise(layer, seed=3)
  out, w = layer(z)
  np.testing.assert_array_equal(w.numpy(), 1.0)
  p = copy_weights(layer)
  vt = _ln(z.astype(np.float64), p['ln_in_g'], p['ln_in_b']) @ p['v_k'] + p['v_b']
  np.testing.assert_allclose(out.numpy(), _ln(z + vt, p['ln_out_g'], p['ln_out_b']), atol=1e-5)
  np.testing.assert_allclose(out.numpy(), layer.ln_out(z + layer.value(layer.ln_in(z))).numpy(), atol=1e-5)


def test_attention_rows_sum_to_one_and_masked_agents_get_zero_weight():
  layer = attention.AgentCentricAttention()
  z = tf.constant(np.random.default_rng(3).normal(size=(3, 4, 256)).astype(np.float32))
  mask = np.array([[1, 1, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0]], bool)   # last sample: every agent absent
  with tf.GradientTape() as tape:
    tape.watch(z)
    out, w = layer(z, agent_mask=mask)
    loss = tf.reduce_sum(out ** 2)
  grads = tape.gradient(loss, [z] + layer.trainable_variables)
  w = w.numpy()
  np.testing.assert_allclose(w[:2].sum(-1), 1.0, atol=1e-6)
  np.testing.assert_array_equal(w[0, :, :, 2], 0.0)
  np.testing.assert_array_equal(w[1, :, :, 1:], 0.0)
  np.testing.assert_array_equal(w[1, :, :, 0], 1.0)
  np.testing.assert_array_equal(w[2], 0.0)          # fully masked: zero rows, not NaN
  assert np.all(np.isfinite(out.numpy()))
  assert all(np.all(np.isfinite(g.numpy())) for g in grads)
  # Unmasked: rows sum to one too.
  _, w = layer(z)
  np.testing.assert_allclose(w.numpy().sum(-1), 1.0, atol=1e-6)


# --------------------------------------------------------------------------------------------- full models
@pytest.fixture(scope='module')
def acnn():
  return networks.build_network('acnn', 19, OBS, prediction_heads=True)


@pytest.fixture(scope='module')
def cnn():
  return networks.build_network('cnn', 19, OBS, prediction_heads=True)


def test_output_keys_and_shapes(acnn, cnn):
  obs = random_obs(2)
  out = acnn(obs)
  assert set(out) == {'policy_logits', 'baseline', 'attention', 'pred_row', 'pred_col'}
  assert out['policy_logits'].shape == (2, N, 19) and out['baseline'].shape == (2, N)
  assert out['attention'].shape == (2, 2, N, N)
  assert out['pred_row'].shape == (2, N, H) and out['pred_col'].shape == (2, N, W)   # map_hw from obs
  out = cnn(obs)
  assert set(out) == {'policy_logits', 'baseline', 'pred_row', 'pred_col'}   # no attention key for CNN
  plain = networks.build_network('cnn', 19, OBS)
  assert set(plain(obs)) == {'policy_logits', 'baseline'}


def test_uint8_is_scaled_like_float_input(acnn):
  obs = random_obs(2, seed=9)
  a = acnn(obs)
  b = acnn(obs.astype(np.float32) / 255.0)
  for key in a:
    np.testing.assert_allclose(a[key].numpy(), b[key].numpy(), atol=1e-6)


@pytest.mark.parametrize('kind', ['cnn', 'acnn'])
def test_one_weight_set_serves_any_number_of_agents(kind):
  net = networks.build_network(kind, 19, OBS, prediction_heads=True)
  before = [v.numpy().copy() for v in net.weights]
  names = [v.path for v in net.weights]
  for n in (1, 4, 5):
    out = net(random_obs(3, n=n, seed=n))
    assert out['policy_logits'].shape == (3, n, 19) and out['baseline'].shape == (3, n)
    assert out['pred_row'].shape == (3, n, H) and out['pred_col'].shape == (3, n, W)
    if kind == 'acnn':
      assert out['attention'].shape == (3, 2, n, n)
  assert [v.path for v in net.weights] == names      # no variables created for a new N
  for a, v in zip(before, net.weights):
    np.testing.assert_array_equal(a, v.numpy())
  # Agent 0 alone in the team (N = 1) sees the same torso as agent 0 of a larger team: check via the CNN.
  if kind == 'cnn':
    obs = random_obs(2, n=5, seed=7)
    np.testing.assert_allclose(net(obs[:, :1])['policy_logits'].numpy(),
                               net(obs)['policy_logits'].numpy()[:, :1], atol=1e-5)


def test_acnn_is_permutation_equivariant(acnn):
  obs = random_obs(2, n=5, seed=11)
  mask = np.array([[1, 1, 1, 0, 1], [1, 1, 1, 1, 1]], bool)
  perm = np.random.default_rng(12).permutation(5)
  for m in (None, mask):
    a = acnn(obs, agent_mask=m)
    b = acnn(obs[:, perm], agent_mask=None if m is None else m[:, perm])
    for key in ('policy_logits', 'baseline', 'pred_row', 'pred_col'):
      np.testing.assert_allclose(b[key].numpy(), a[key].numpy()[:, perm], atol=1e-5)
    np.testing.assert_allclose(b['attention'].numpy(), a['attention'].numpy()[:, :, perm][:, :, :, perm],
                               atol=1e-5)


def test_cnn_agents_are_independent_and_acnn_agents_are_not(cnn, acnn):
  obs = random_obs(2, seed=4)
  changed = obs.copy()
  changed[:, 2] = random_obs(2, seed=5)[:, 2]
  a, b = cnn(obs), cnn(changed)
  for key in ('policy_logits', 'baseline', 'pred_row', 'pred_col'):
    diff = np.abs(a[key].numpy() - b[key].numpy())
    assert diff[:, 0].max() == 0.0, key          # exactly 0: no path from s_2 to agent 0
    assert diff[:, 2].max() > 0, key
  a, b = acnn(obs), acnn(changed)
  for key in ('policy_logits', 'baseline', 'pred_row', 'pred_col'):
    assert np.abs(a[key].numpy() - b[key].numpy())[:, 0].max() > 0, key


def test_acnn_masked_agent_does_not_influence_the_others(acnn):
  obs = random_obs(2, seed=13)
  changed = obs.copy()
  changed[:, 2] = random_obs(2, seed=14)[:, 2]
  mask = np.array([[1, 1, 0, 1]] * 2, bool)
  a, b = acnn(obs, agent_mask=mask), acnn(changed, agent_mask=mask)
  keep = [0, 1, 3]
  np.testing.assert_allclose(a['policy_logits'].numpy()[:, keep], b['policy_logits'].numpy()[:, keep], atol=1e-6)
  np.testing.assert_array_equal(a['attention'].numpy()[..., 2], 0.0)


def test_runs_in_tf_function_with_unknown_batch_and_agents(acnn):
  spec = [tf.TensorSpec([None, None, H, W, C], tf.uint8), tf.TensorSpec([None, None], tf.bool)]

  @tf.function(input_signature=spec)
  def fn(obs, mask):
    out = acnn(obs, agent_mask=mask, training=False)
    return out['policy_logits'], out['attention']

  for b, n in ((2, 3), (1, 5), (3, 1)):
    obs = random_obs(b, n=n, seed=b + n)
    mask = np.ones((b, n), bool)
    logits, att = fn(obs, mask)
    assert logits.shape == (b, n, 19) and att.shape == (b, 2, n, n)
    np.testing.assert_allclose(logits.numpy(), acnn(obs)['policy_logits'].numpy(), atol=1e-5)
  assert fn.experimental_get_tracing_count() == 1


@pytest.mark.parametrize('kind', ['cnn', 'acnn'])
def test_export_archive_savedmodel_round_trip(kind, tmp_path):
  net = networks.build_network(kind, 19, OBS, prediction_heads=True)
  archive = keras.export.ExportArchive()
  archive.track(net)
  archive.add_endpoint(
      'serve', lambda obs: net(obs, training=False),
      input_signature=[tf.TensorSpec([None, None, H, W, C], tf.uint8, name='observations')])
  path = str(tmp_path / 'sm')
  archive.write_out(path, verbose=False)
  loaded = tf.saved_model.load(path)
  for b, n in ((2, 4), (1, 5)):                      # the exported graph keeps B and N dynamic
    obs = random_obs(b, n=n, seed=20 + n)
    ref = net(obs)
    got = loaded.serve(tf.constant(obs))
    assert set(got) == set(ref)
    for key in ref:
      np.testing.assert_allclose(got[key].numpy(), ref[key].numpy(), atol=1e-5)
  sig = loaded.signatures['serve'](observations=tf.constant(random_obs(1)))
  assert set(sig) == set(ref)
