"""Chapter 2 networks (issue 10 §3, §6; spec ch2 §10, §11 items 3-5, 14, 17, 19).

* Exact parameter counts of Table 2.G.2 as read in spec §12: conv 174,240 (default) / 133,296 (slim), 1-D encoder
  11,840, A3C-LSTM 3,866,803 with 18 actions; the layer output sizes.
* MAP SA3C / FSA3C / dropout SA3C and NoisyNet with its mean weights equal A3C with copied weights.
* Noise replay: a rollout acted step by step with stored noise and episode starts is recomputed by `unroll` from
  the stored initial state to 1e-5 (every model; the thesis-sized SA3C and HPA3C on 80x80 inputs), and differs
  with fresh noise.
* Gradients reach every part; the vote path (core once, heads on tiled h) equals the step.
* ACER: V = sum pi Q, the average network. (DDPG family: tests/test_stochastic_ac_ddpg.py.)
"""

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.stochastic_ac import a3c
from rlcv_tf.stochastic_ac import acer
from rlcv_tf.stochastic_ac import encoders
from rlcv_tf.stochastic_ac import layers

SMALL = dict(encoder='mlp', mlp_units=(12,), lstm_units=16, fc_units=8)


def _count(weights):
  return int(sum(np.prod(w.shape) for w in weights))


# ------------------------------------------------------------------------------------------- encoders, counts


def _layer_outputs(encoder, x):
  shapes = []
  for pad, conv, act in encoder.stack:
    x = act(conv(pad(x)))
    shapes.append(tuple(x.shape[1:]))
  return shapes


def test_encoder_parameter_counts_and_shapes():
  default = encoders.build_encoder('default')
  shapes = _layer_outputs(default, np.zeros((1, 80, 80, 1), np.float32))
  assert shapes == [(80, 80, 32), (40, 40, 32), (40, 40, 32), (20, 20, 32), (20, 20, 64), (10, 10, 64),
                    (8, 8, 64), (4, 4, 64)]
  assert encoders.count_params(default) == encoders.PARAMS_DEFAULT_1CH == 174_240

  slim = encoders.build_encoder('slim')
  shapes = _layer_outputs(slim, np.zeros((1, 80, 80, 1), np.float32))
  assert shapes == [(80, 80, 32), (40, 40, 32), (40, 40, 32), (20, 20, 32), (20, 20, 64), (10, 10, 64),
                    (8, 8, 64), (4, 4, 64)]
  assert [c.filters for c in slim.conv_layers()] == [16, 32, 16, 32, 32, 64, 32, 64]
  assert encoders.count_params(slim) == encoders.PARAMS_SLIM_1CH == 133_296

  conv1d = encoders.build_encoder('conv1d')
  shapes = _layer_outputs(conv1d, np.zeros((1, 24, 4), np.float32))
  assert shapes == [(24, 32), (24, 32), (25, 64), (25, 64)]
  assert conv1d(np.zeros((2, 24, 4), np.float32)).shape == (2, 1600)
  assert encoders.count_params(conv1d) == encoders.PARAMS_CONV1D_4CH == 11_840

  # conv7 padding is a setting (spec §12-1): padding 1 gives the printed 10x10 and 5x5 = 1600 features.
  assert encoders.build_encoder('default', conv7_padding=1)(np.zeros((1, 80, 80, 1), np.float32)).shape == (1, 1600)


def test_a3c_lstm_parameter_count():
  net = a3c.MODELS['a3c'](18)
  assert net.count_params() == 3_866_803
  assert encoders.count_params(net.encoder) == 174_240
  assert _count(net.lstm.weights) == 3_147_776
  np.testing.assert_array_equal(net.lstm.bias.numpy(), 0.0)          # zero LSTM biases, no forget-gate offset
  assert _count(net.fc1.weights) + _count(net.fc2.weights) == 525_312
  assert _count(net.policy.weights) + _count(net.value.weights) == 1024 * 18 + 18 + 1025
  # SA3C replaces FC1 by the mean map of the same size; HPA3C adds the log-variance map, the prior and CReLU's
  # wider heads (1536 inputs).
  assert a3c.MODELS['sa3c'](18).count_params() == 3_866_803
  hp = a3c.MODELS['hpa3c'](18)
  assert hp.count_params() == 3_866_803 + (512 * 512 + 512) * 2 + 512 * (18 + 1)
  slim = a3c.MODELS['a3c'](4, encoder='slim')
  assert slim.count_params() == 133_296 + 3_147_776 + 525_312 + 1024 * 4 + 4 + 1025


def test_registry_and_bad_names():
  assert set(a3c.MODELS) == {'a3c', 'sa3c', 'fsa3c', 'hpa3c', 'dropout_sa3c', 'nn_a3c', 'nn_a3c_v2', 'nn_a3c_v3',
                             'nn_sa3c', 'sa3c_value_only', 'sa3c_policy_only'}
  assert set(acer.MODELS) == {'acer', 'sacer', 'nn_acer'}
  with pytest.raises(ValueError, match='unknown model'):
    a3c.build_network('sa4c', 6, (4,), **SMALL)
  with pytest.raises(ValueError, match='activation_noise'):
    a3c.build_network('sa3c', 6, (4,), activation_noise='per_episode', **SMALL)
  with pytest.raises(ValueError, match='log_var'):
    a3c.build_network('sa3c', 6, (4,), log_var=float('nan'), **SMALL)


# ------------------------------------------------------------------------------------------ MAP = A3C


def _random_inputs(net, batch, rng):
  obs = rng.normal(size=(batch,) + net.config.observation_shape).astype(np.float32)
  state = {k: rng.normal(size=v.shape).astype(np.float32) * 0.5 for k, v in net.initial_state(batch).items()}
  return obs, state


@pytest.mark.parametrize('model', ['sa3c', 'fsa3c', 'dropout_sa3c', 'sa3c_value_only', 'nn_a3c', 'nn_a3c_v3'])
def test_map_equals_a3c_with_copied_weights(model):
  rng = np.random.default_rng(0)
  base = a3c.MODELS['a3c'](5, (6,), **SMALL)
  net = a3c.MODELS[model](5, (6,), **SMALL)
  a3c.copy_weights(base, net, ['encoder', 'lstm'])
  for name in ('fc1', 'fc2', 'policy', 'value'):
    src, dst = getattr(base, name), getattr(net, name)
    if isinstance(dst, layers.NoisyDense):
      dst.kernel_mean.assign(src.kernel)
      dst.bias_mean.assign(src.bias)
    else:
      dst.set_weights(src.get_weights())
  obs, state = _random_inputs(base, 3, rng)
  ref = base.step(obs, state, mode='map')
  out = net.step(obs, state, mode='map')
  np.testing.assert_allclose(out.logits.numpy(), ref.logits.numpy(), atol=1e-6)
  np.testing.assert_allclose(out.value.numpy(), ref.value.numpy(), atol=1e-6)
  # Zero Gaussian noise is MAP too; non-zero noise changes the output.
  specs = net.noise_specs()
  if all(s.kind == 'normal' for s in specs.values()):       # f(0) = 0: NoisyNet's weights are the means too
    zero = {k: np.zeros((3,) + s.shape, np.float32) for k, s in specs.items()}
    np.testing.assert_allclose(net.step(obs, state, zero).logits.numpy(), ref.logits.numpy(), atol=1e-6)
  noisy = layers.draw_noise({k: s for k, s in specs.items()}, 3, rng)
  if model == 'dropout_sa3c':
    noisy = {k: np.zeros_like(v) for k, v in noisy.items()}   # u = 0 < rate drops every unit of channel 1
  moved = net.step(obs, state, noisy)
  assert max(np.max(np.abs(moved.logits.numpy() - ref.logits.numpy())),
             np.max(np.abs(moved.value.numpy() - ref.value.numpy()))) > 1e-4


def test_map_equals_a3c_thesis_size():
  rng = np.random.default_rng(1)
  base = a3c.MODELS['a3c'](18)
  net = a3c.MODELS['sa3c'](18)
  net.set_weights(base.get_weights())
  obs, state = _random_inputs(base, 2, rng)
  ref, out = base.step(obs, state, mode='map'), net.step(obs, state, mode='map')
  np.testing.assert_allclose(out.logits.numpy(), ref.logits.numpy(), atol=1e-6)
  np.testing.assert_allclose(out.value.numpy(), ref.value.numpy(), atol=1e-6)


# ------------------------------------------------------------------------------------------ noise replay


def _act(net, obs, rng, first_prob=0.15, mode='sample'):
  """Acts T steps like the synchronous learner: per-step / per-rollout noise, episode starts at random."""
  t_max, batch = obs.shape[:2]
  specs = net.noise_specs()
  state0 = {k: v + 0.3 for k, v in net.initial_state(batch).items()}      # a non-zero carried state
  state, noise = state0, None
  logits, values, kls, noises, firsts = [], [], [], [], []
  for t in range(t_max):
    noise = layers.next_noise(specs, noise, batch, rng, rollout_start=(t == 0))
    first = rng.random(batch) < first_prob
    out = net.step(obs[t], state, noise, first, mode=mode)
    state = out.state
    logits.append(out.logits.numpy())
    values.append(out.value.numpy())
    kls.append(out.extras['kl'].numpy() if 'kl' in out.extras else np.zeros(batch))
    noises.append(noise)
    firsts.append(first)
  stored = {}
  for key, spec in specs.items():
    if spec.schedule == 'per_rollout':
      stored[key] = noises[0][key]                                        # held: stored once per env
      assert all(np.array_equal(n[key], noises[0][key]) for n in noises)
    else:
      stored[key] = np.stack([n[key] for n in noises])
  return state0, stored, np.stack(firsts), np.stack(logits), np.stack(values), np.stack(kls), state


@pytest.mark.parametrize('model', list(a3c.MODEL_NAMES) + list(acer.MODEL_NAMES))
def test_noise_replay_reproduces_acting(model):
  rng = np.random.default_rng(2)
  builder = a3c.MODELS.get(model) or acer.MODELS[model]
  net = builder(5, (6,), **SMALL)
  obs = rng.normal(size=(20, 4, 6)).astype(np.float32)
  state0, noise, first, logits, values, kls, final = _act(net, obs, rng)
  assert first.any()
  out = net.unroll(obs, state0, noise, first)
  np.testing.assert_allclose(out.logits.numpy(), logits, atol=1e-5)
  np.testing.assert_allclose(out.values.numpy(), values, atol=1e-5)
  for key in final:
    np.testing.assert_allclose(out.state[key].numpy(), final[key].numpy(), atol=1e-5)
  if net.variant.hierarchical:
    np.testing.assert_allclose(out.extras['kl'].numpy(), kls, rtol=1e-4, atol=1e-5)
  if net.noise_specs():
    fresh = layers.draw_noise(net.noise_specs(), 4, rng) if model.startswith('nn_a3c') else {
        k: rng.random(v.shape).astype(np.float32) if net.noise_specs()[k].kind == 'uniform'
        else rng.normal(size=v.shape).astype(np.float32) for k, v in noise.items()}
    other = net.unroll(obs, state0, fresh, first)
    moved = np.abs(other.logits.numpy() - logits).max(-1), np.abs(other.values.numpy() - values)
    if model == 'sa3c_value_only':       # the policy reads phi(mu): only V moves with the noise
      assert moved[0].max() < 1e-6 and moved[1].max() > 1e-4
    elif model == 'sa3c_policy_only':    # and the other way round
      assert moved[1].max() < 1e-6 and moved[0].max() > 1e-4
    else:
      assert moved[0].max() > 1e-4 and moved[1].max() > 1e-4
  # Without the episode-start flags the replay is wrong (the flags are part of what a rollout stores).
  assert np.max(np.abs(net.unroll(obs, state0, noise).logits.numpy() - logits)) > 1e-4


@pytest.mark.parametrize('model', ['sa3c', 'hpa3c'])
def test_noise_replay_thesis_size(model):
  rng = np.random.default_rng(3)
  net = a3c.MODELS[model](18)
  obs = rng.normal(size=(20, 4, 80, 80, 1)).astype(np.float32)
  state0, noise, first, logits, values, kls, _ = _act(net, obs, rng, first_prob=0.05)
  step_fn = tf.function(lambda o, s, n, f: net.unroll(o, s, n, f))
  out = step_fn(obs, state0, noise, first)
  np.testing.assert_allclose(out.logits.numpy(), logits, atol=1e-5)
  np.testing.assert_allclose(out.values.numpy(), values, atol=1e-5)
  if model == 'hpa3c':
    np.testing.assert_allclose(out.extras['kl'].numpy(), kls, rtol=1e-4, atol=1e-5)


def test_replay_noise_missing_is_an_error():
  net = a3c.MODELS['fsa3c'](5, (6,), **SMALL)
  obs = np.zeros((1, 2, 6), np.float32)
  with pytest.raises(KeyError, match='z2'):
    net.unroll(obs, net.initial_state(2), {'z1': np.zeros((1, 2, 8), np.float32)})


# ------------------------------------------------------------------------------------------ gradients, voting


def _grad_norms(net, model):
  rng = np.random.default_rng(4)
  obs = rng.normal(size=(3, 2) + net.config.observation_shape).astype(np.float32)
  noise = {k: np.stack([v] * 3) for k, v in layers.draw_noise(net.noise_specs(), 2, rng).items()}
  with tf.GradientTape() as tape:
    out = net.unroll(obs, net.initial_state(2), noise)
    loss = tf.reduce_sum(out.logits * rng.normal(size=out.logits.shape)) + tf.reduce_sum(out.values ** 2)
    if 'kl' in out.extras:
      loss += tf.reduce_sum(out.extras['kl'])
  grads = tape.gradient(loss, net.trainable_variables)
  return {v.path: float(tf.norm(g)) if g is not None else 0.0 for v, g in zip(net.trainable_variables, grads)}


@pytest.mark.parametrize('model', ['sa3c', 'hpa3c', 'nn_sa3c'])
def test_gradients_reach_every_part(model):
  net = a3c.MODELS[model](5, (6,), **SMALL)
  norms = _grad_norms(net, model)
  zero = [p for p, n in norms.items() if not n > 0]
  assert not zero, zero
  if model == 'hpa3c':
    assert any('log_var_kernel' in p for p in norms) and any('prior' in p for p in norms)


def test_vote_path_runs_core_once_and_matches_step():
  rng = np.random.default_rng(5)
  net = a3c.MODELS['hpa3c'](5, (6,), **SMALL)
  obs, state = _random_inputs(net, 2, rng)
  h, _ = net.core(obs, state)
  n = 5
  noises = [layers.draw_noise(net.noise_specs(), 2, rng) for _ in range(n)]
  tiled = {k: np.concatenate([x[k] for x in noises]) for k in noises[0]}
  logits, values, extras = net.head(tf.tile(h, (n, 1)), tiled, tf.tile(state['z_prev'], (n, 1)))
  for i in range(n):
    ref = net.step(obs, state, noises[i])
    np.testing.assert_allclose(logits[2 * i:2 * i + 2].numpy(), ref.logits.numpy(), atol=1e-6)
    np.testing.assert_allclose(values[2 * i:2 * i + 2].numpy(), ref.value.numpy(), atol=1e-6)
    np.testing.assert_allclose(extras['kl'][2 * i:2 * i + 2].numpy(), ref.extras['kl'].numpy(), rtol=1e-5)


def test_hpa3c_state_and_prior_input():
  rng = np.random.default_rng(6)
  net = a3c.MODELS['hpa3c'](5, (6,), **SMALL)
  obs, state = _random_inputs(net, 3, rng)
  noise = layers.draw_noise(net.noise_specs(), 3, rng)
  out = net.step(obs, state, noise, first=np.array([True, False, False]))
  z = out.extras['z'].numpy()
  np.testing.assert_allclose(z, out.extras['mean'].numpy() + out.extras['stddev'].numpy() * noise['z1'], atol=1e-6)
  np.testing.assert_array_equal(out.state['z_prev'].numpy(), z)
  # The prior reads z_{t-1}; an episode start reads 0 instead.
  prior = net.prior
  np.testing.assert_allclose(out.extras['prior_mean'].numpy()[1:], prior(state['z_prev'][1:]).numpy(), atol=1e-6)
  np.testing.assert_allclose(out.extras['prior_mean'].numpy()[0], prior.bias.numpy(), atol=1e-6)
  # The learned variance starts at the prior's, so the first KL is only the mean term.
  np.testing.assert_allclose(out.extras['stddev'].numpy(), np.exp(-3.0), rtol=1e-5)


# ------------------------------------------------------------------------------------------ ACER


def test_acer_value_is_expected_q_and_average_network():
  rng = np.random.default_rng(7)
  net = acer.MODELS['sacer'](12, (6,), **SMALL)
  assert net.config.log_var == -6.0 and net.variant.q_head
  obs, state = _random_inputs(net, 3, rng)
  noise = layers.draw_noise(net.noise_specs(), 3, rng)
  out = net.step(obs, state, noise)
  q = out.extras['q_values'].numpy()
  assert q.shape == (3, 12)
  pi = tf.nn.softmax(out.logits).numpy()
  np.testing.assert_allclose(out.value.numpy(), (pi * q).sum(-1), rtol=1e-5, atol=1e-6)

  average = acer.make_average_network(net)
  ref = average.step(obs, state, noise)
  np.testing.assert_allclose(ref.extras['q_values'].numpy(), q, atol=1e-6)
  before = [w.numpy().copy() for w in average.weights]
  for w in net.weights:
    w.assign(w + 1.0)
  acer.update_average_network(average, net)
  for b, a, w in zip(before, average.weights, net.weights):
    np.testing.assert_allclose(a.numpy(), 0.99 * b + 0.01 * w.numpy(), rtol=1e-5, atol=1e-6)
  assert acer.MODELS['nn_acer'](12, (6,), **SMALL).noise_specs()['q_out'].shape == (12,)
