"""Chapter 6 networks and presets (thesis Sec. 6.3-6.4.2; spec ch5_6 Part B2 tables, B4, §7.2 items 34-39, §7.3
items 4, 7).

Shapes of every model at the tiny and small32 presets; causality of the acVAE prior, LSTM_gen and variance path over
steps by perturbation (exact zeros on the earlier blocks); the attention a_t = a * softmax_T(W) against NumPy; the D
sees the raw a only; the cVAE-GAN FC paths against a NumPy forward pass; full64 parameter counts by hand from the
spec B2 tables; variable groups; presets, validation and a checkpoint round trip.
"""

import numpy as np
import pytest
import tensorflow as tf

import keras

from rlcv_tf.acvae import networks
from rlcv_tf.acvae import presets
from rlcv_tf.core.vaegan import layers as vaegan_layers

MODELS = presets.MODELS


def images(config, batch=4, seed=0):
  return np.tanh(np.random.default_rng(seed).normal(size=(batch,) + config.image_shape)).astype(np.float32)


def attributes(config, batch=4, seed=0):
  return np.sign(np.random.default_rng(seed).normal(size=(batch, config.num_attributes)) + 1e-3).astype(np.float32)


def latents(config, batch=4, seed=0):
  return np.random.default_rng(seed).normal(size=(batch,) + config.latent_shape).astype(np.float32)


def block_of(x, t, num_blocks):
  """Channel block t of [B, H, W, C] (channels [tC/T, (t+1)C/T))."""
  per = x.shape[-1] // num_blocks
  return x[..., t * per:(t + 1) * per]


def build(name, seed=0):
  keras.utils.set_random_seed(seed)
  return networks.build_models(presets.get_preset(name))


@pytest.fixture(scope='module')
def tiny():
  return {model: build(f'tiny_{model}') for model in MODELS}


def lstm_params(inputs, units):
  """Keras LSTM: 4 gates x (input and recurrent kernels + one bias)."""
  return 4 * units * (inputs + units) + 4 * units


def dense_params(inputs, units):
  return inputs * units + units


def conv_params(kernel, inputs, filters):
  return kernel * kernel * inputs * filters + filters


# ----------------------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize('scale', ['tiny', 'small32'])
@pytest.mark.parametrize('model', MODELS)
def test_shapes_of_every_model(scale, model):
  vae, disc = build(f'{scale}_{model}')
  config = vae.config
  b, (h, w, n_z), t, n = 4, config.latent_shape, config.num_blocks, config.num_attributes
  x, a = images(config, b), attributes(config, b)
  out = vae(x, a)
  for key in ('mu', 'logvar', 'z', 'mu_p', 'logvar_p'):
    assert tuple(out[key].shape) == (b, h, w, n_z), key
  assert tuple(out['x_tilde'].shape) == (b,) + config.image_shape
  assert np.abs(out['x_tilde'].numpy()).max() <= 1.0
  u, x_gen = vae.decode(latents(config, b), a)
  assert tuple(x_gen.shape) == (b,) + config.image_shape
  assert tuple(vae.generate(a).shape) == (b,) + config.image_shape
  if config.recurrent:
    assert tuple(u.shape) == (b, h, w, n_z) and tuple(vae.per_step(a).shape) == (b, t, n)
  else:
    assert u is None and out['u'] is None
  assert (vae.attention is not None) == (model == 'acvaegan')
  if model == 'cvae':
    assert disc is None
    return
  f = disc.features(x, a)
  c_f = config.d_channels[-1]
  if config.recurrent:       # [g || F_t] per block: T * (n_z/T + C_F/T) channels (320 at full64)
    assert tuple(f.shape) == (b, h, w, t * (n_z // t + c_f // t))
  else:                      # [attribute embedding || image Dense]
    assert tuple(f.shape) == (b, config.d_attribute_dim + config.d_dense)
  assert tuple(disc.logits(f).shape) == (b, 1)
  u_hat = disc.mi(f)
  assert (u_hat is None) == (model == 'cvaegan')
  if u_hat is not None:
    assert tuple(u_hat.shape) == (b, h, w, n_z)
  # The minibatch-discrimination layer appends its kernels: (B, d_dense + mbd_kernels).
  y = f
  for layer in disc.d_head.layers:
    y = layer(y)
    if isinstance(layer, vaegan_layers.MinibatchDiscrimination):
      assert tuple(y.shape) == (b, config.d_dense + config.mbd_kernels)


# -------------------------------------------------------------------------------------------- causality
def perturb_later_steps(a_steps, z, s, t_blocks):
  """a_t and z_t changed for every step t > s (0-based)."""
  a2, z2 = a_steps.copy(), z.copy()
  a2[:, s + 1:] += np.random.default_rng(s).normal(size=a2[:, s + 1:].shape).astype(np.float32)
  per = z.shape[-1] // t_blocks
  z2[..., (s + 1) * per:] += 1.0
  return a2, z2


@pytest.mark.parametrize('model', ['acvaegan', 'crvaegan'])
def test_generator_u_t_depends_only_on_steps_up_to_t(tiny, model):
  vae, _ = tiny[model]
  config = vae.config
  t_blocks = config.num_blocks
  a_steps = vae.per_step(attributes(config, 3, seed=1)).numpy()
  z = latents(config, 3, seed=1)
  u = vae.decode(z, a_steps)[0].numpy()
  for s in range(t_blocks - 1):
    a2, z2 = perturb_later_steps(a_steps, z, s, t_blocks)
    u2 = vae.decode(z2, a2)[0].numpy()
    for r in range(s + 1):                               # blocks 0..s: bitwise unchanged
      np.testing.assert_array_equal(block_of(u2, r, t_blocks), block_of(u, r, t_blocks))
    assert np.abs(block_of(u2, s + 1, t_blocks) - block_of(u, s + 1, t_blocks)).max() > 0
  # a_t alone (z fixed) reaches u_t, so the attributes do enter every step.
  a3 = a_steps.copy()
  a3[:, -1] += 1.0
  assert np.abs(block_of(vae.decode(z, a3)[0].numpy() - u, t_blocks - 1, t_blocks)).max() > 0


def test_acvae_prior_block_t_depends_only_on_a_1_to_t(tiny):
  vae, _ = tiny['acvaegan']
  config = vae.config
  t_blocks = config.num_blocks
  a_steps = vae.per_step(attributes(config, 3, seed=2)).numpy()
  mu, logvar = (v.numpy() for v in vae.prior_params(a_steps))
  for s in range(t_blocks - 1):
    a2, _ = perturb_later_steps(a_steps, latents(config, 3), s, t_blocks)
    mu2, logvar2 = (v.numpy() for v in vae.prior_params(a2))
    for new, old in ((mu2, mu), (logvar2, logvar)):
      for r in range(s + 1):
        np.testing.assert_array_equal(block_of(new, r, t_blocks), block_of(old, r, t_blocks))
      assert np.abs(block_of(new, s + 1, t_blocks) - block_of(old, s + 1, t_blocks)).max() > 0


def test_acvae_variance_path_is_causal_in_the_attended_attributes_in_inference_mode(tiny):
  vae, _ = tiny['acvaegan']
  config = vae.config
  t_blocks = config.num_blocks
  x = images(config, 3, seed=3)
  a_steps = vae.per_step(attributes(config, 3, seed=3)).numpy()
  _, logvar = vae.encode(x, a_steps, training=False)
  for s in range(t_blocks - 1):
    a2, _ = perturb_later_steps(a_steps, latents(config, 3), s, t_blocks)
    _, logvar2 = vae.encode(x, a2, training=False)
    for r in range(s + 1):
      np.testing.assert_array_equal(block_of(logvar2.numpy(), r, t_blocks), block_of(logvar.numpy(), r, t_blocks))
    assert np.abs(block_of(logvar2.numpy() - logvar.numpy(), s + 1, t_blocks)).max() > 0


# -------------------------------------------------------------------------------------------- attention
def test_acvae_steps_are_a_times_softmax_of_w_and_w_reaches_every_path(tiny):
  keras.utils.set_random_seed(4)
  vae, disc = networks.build_models(presets.get_preset('tiny_acvaegan'))
  config = vae.config
  x, a = images(config, 4, seed=4), attributes(config, 4, seed=4)
  w = vae.attention.trainable_variables[0]
  assert tuple(w.shape) == (config.num_blocks, config.num_attributes)
  w_np = w.numpy().astype(np.float64)
  m = np.exp(w_np - w_np.max(0)) / np.exp(w_np - w_np.max(0)).sum(0)            # softmax over T
  np.testing.assert_allclose(vae.per_step(a).numpy(), a[:, None, :] * m[None], rtol=1e-5, atol=1e-7)
  # Raw a and the precomputed a_t give the same outputs.
  for raw, steps in ((vae.encode(x, a), vae.encode(x, vae.per_step(a))),
                     (vae.prior_params(a), vae.prior_params(vae.per_step(a)))):
    for r, s in zip(raw, steps):
      np.testing.assert_array_equal(r.numpy(), s.numpy())
  z = latents(config, 4, seed=4)
  before = dict(enc=vae.encode(x, a)[1].numpy(), prior=vae.prior_params(a)[0].numpy(),
                gen=vae.decode(z, a)[0].numpy(), d=disc(x, a, training=False)['logits'].numpy(),
                d_mi=disc(x, a, training=False)['u_hat'].numpy())
  w.assign(np.random.default_rng(4).normal(scale=2.0, size=w.shape).astype(np.float32))
  after = dict(enc=vae.encode(x, a)[1].numpy(), prior=vae.prior_params(a)[0].numpy(),
               gen=vae.decode(z, a)[0].numpy(), d=disc(x, a, training=False)['logits'].numpy(),
               d_mi=disc(x, a, training=False)['u_hat'].numpy())
  for key in ('enc', 'prior', 'gen'):                      # W is used by the encoder, prior and generator ...
    assert np.abs(after[key] - before[key]).max() > 0, key
  np.testing.assert_array_equal(after['d'], before['d'])   # ... but the D sees the raw a only
  np.testing.assert_array_equal(after['d_mi'], before['d_mi'])
  # The D does depend on a.
  assert np.abs(disc(x, -a, training=False)['logits'].numpy() - after['d']).max() > 0


@pytest.mark.parametrize('model', ['cvaegan', 'crvaegan', 'acvaegan'])
def test_discriminator_takes_the_raw_attribute_vector_only(tiny, model):
  vae, disc = tiny[model]
  config = vae.config
  x, a = images(config, 4), attributes(config, 4)
  with pytest.raises(ValueError, match='raw attribute vector'):
    disc.features(x, np.repeat(a[:, None], config.num_blocks, 1))
  with pytest.raises(ValueError, match='raw attribute vector'):
    disc.features(x, a[:, :-1])
  with pytest.raises(ValueError, match='raw attribute vector'):
    disc.features(x)


def test_crvae_per_step_attributes_equal_the_repeated_vector(tiny):
  vae, _ = tiny['crvaegan']
  config = vae.config
  x, a, z = images(config, 3, seed=5), attributes(config, 3, seed=5), latents(config, 3, seed=5)
  steps = np.repeat(a[:, None], config.num_blocks, 1)
  np.testing.assert_array_equal(vae.per_step(a).numpy(), steps)
  for r, s in zip(vae.encode(x, a), vae.encode(x, steps)):
    np.testing.assert_allclose(r.numpy(), s.numpy(), rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(vae.decode(z, a)[0].numpy(), vae.decode(z, steps)[0].numpy(), rtol=1e-6, atol=1e-6)
  with pytest.raises(ValueError, match='attribute vector'):       # the FC prior takes a [B, N]
    vae.prior_params(steps)


def test_bad_attribute_shapes_raise_one_clear_error(tiny):
  vae, _ = tiny['cvaegan']
  config = vae.config
  x, a = images(config, 2), attributes(config, 2)
  with pytest.raises(ValueError, match=r'a: .*valid shapes are \[B, 5\]'):
    vae.encode(x, np.repeat(a[:, None], config.num_blocks, 1))
  with pytest.raises(ValueError, match='a: '):
    vae.decode(latents(config, 2), a[:, :3])
  with pytest.raises(ValueError, match='no steps'):
    vae.per_step(a)
  ac, _ = tiny['acvaegan']
  with pytest.raises(ValueError, match=r'\[B, 4, 5\] \(per step\)'):
    ac.encode(x, np.zeros((2, 3, config.num_attributes), np.float32))


# --------------------------------------------------------------------------------------- FC paths (cVAE-GAN)
def lrelu(v, slope=0.1):
  return np.where(v > 0, v, slope * v)


def test_cvaegan_fc_paths_match_a_numpy_forward_pass(tiny):
  vae, _ = tiny['cvaegan']
  config = vae.config
  x, a, z = images(config, 3, seed=6), attributes(config, 3, seed=6), latents(config, 3, seed=6)

  def dense(layer, v):
    return v @ layer.kernel.numpy().astype(np.float64) + layer.bias.numpy()

  h = vae.encoder_trunk(x).numpy().reshape(3, -1)
  e = lrelu(dense(vae.enc_attr.dense, a))
  f = lrelu(dense(vae.enc_fc.dense, np.concatenate([e, h], -1)))               # attribute part first
  mu, logvar = vae.encode(x, a)
  np.testing.assert_allclose(mu.numpy().reshape(3, -1), dense(vae.mu_fc, f), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(logvar.numpy().reshape(3, -1), dense(vae.logvar_fc, f), rtol=1e-4, atol=1e-5)
  d = lrelu(dense(vae.gen_attr.dense, a))
  y = dense(vae.gen_fc, np.concatenate([d, z.reshape(3, -1)], -1)).reshape(3, 4, 4, config.hidden_channels)
  expected = np.tanh(vae.decoder_trunk(y.astype(np.float32)).numpy())
  np.testing.assert_allclose(vae.decode(z, a)[1].numpy(), expected, rtol=1e-4, atol=1e-5)
  hidden = lrelu(dense(vae.prior.hidden.dense, a))
  mu_p, logvar_p = vae.prior_params(a)
  np.testing.assert_allclose(mu_p.numpy().reshape(3, -1), dense(vae.prior.mu_dense, hidden), rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(logvar_p.numpy().reshape(3, -1), dense(vae.prior.logvar_dense, hidden), rtol=1e-4,
                             atol=1e-6)
  # Spec B2: the cVAE-GAN prior's first Dense starts U(+-1e-4); the crVAE-GAN prior keeps the default init.
  assert np.abs(vae.prior.hidden.dense.kernel.numpy()).max() <= 1e-4
  cr, _ = tiny['crvaegan']
  assert np.abs(cr.prior.hidden.dense.kernel.numpy()).max() > 1e-2


def test_cvaegan_discriminator_condition_is_attributes_then_image_dense(tiny):
  _, disc = tiny['cvaegan']
  config = disc.config
  x, a = images(config, 3, seed=7), attributes(config, 3, seed=7)
  trunk = disc.trunk(disc.from_rgb(x)).numpy().reshape(3, -1)
  cond = disc.condition
  g = lrelu(a @ cond.attribute.dense.kernel.numpy() + cond.attribute.dense.bias.numpy())
  image = np.maximum(trunk @ cond.image_dense.kernel.numpy() + cond.image_dense.bias.numpy(), 0)
  np.testing.assert_allclose(disc.features(x, a).numpy(), np.concatenate([g, image], -1), rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------ parameter counts
def conv_bn_params(layers, in_channels):
  """The E table after the from-RGB stem: conv + BN (4 numbers per channel incl. moving statistics) per row."""
  total, channels = 0, in_channels
  for kernel, _, filters, activation, _ in layers:
    total += conv_params(kernel, channels, filters) + 4 * filters
    channels = filters * (2 if activation == 'crelu' else 1)
  return total


def decoder_params(layers, in_channels):
  total, channels = 0, in_channels
  for kind, filters, _ in layers:
    total += conv_params(4 if kind == 'convT' else 3, channels, filters) + 4 * filters
    channels = filters
  return total


@pytest.fixture(scope='module')
def full64():
  return {model: build(f'full64_{model}') for model in ('cvaegan', 'crvaegan', 'acvaegan')}


def test_parameter_counts_full64_by_hand_from_the_spec_b2_tables(full64):
  n, t = 40, 8
  count = networks.count_params
  # Shared trunks (spec B2): CReLU(x) 6 ch -> Conv 1x1 -> 32, BN; E rows with the first conv taking 32 channels;
  # Dec rows ending at 64x64x64, to-RGB Conv 1x1 64 -> 3.
  cv, cv_d = full64['cvaegan']
  cr, cr_d = full64['crvaegan']
  ac, ac_d = full64['acvaegan']
  stem = conv_params(1, 6, 32) + 4 * 32
  encoder = stem + conv_bn_params(cv.config.encoder_layers, 32)
  decoder = decoder_params(cv.config.decoder_layers, 256) + conv_params(1, 64, 3)
  for vae in (cv, cr, ac):
    assert count(vae.encoder_trunk) == encoder == 2_574_528
    assert count(vae.decoder_trunk) == decoder == 2_400_515

  # cVAE-GAN: encoder [Dense(40 -> 1024), LReLU] || Flatten(h) 4096 -> Dense(5120 -> 1024) -> mu, logvar Dense(1024).
  assert count(cv.enc_attr) == 40 * 1024 + 1024 == 41_984
  assert count(cv.enc_fc) == 5120 * 1024 + 1024 == 5_243_904
  assert count(cv.mu_fc) + count(cv.logvar_fc) == 2 * (1024 * 1024 + 1024) == 2_099_200
  # decoder [Dense(40 -> 1024), LReLU] || z 1024 -> Dense(2048 -> 4096) -> 4x4x256.
  assert count(cv.gen_attr) == 41_984
  assert count(cv.gen_fc) == 2048 * 4096 + 4096 == 8_392_704
  # prior Dense(40 -> 1024), LReLU -> mu_p, logvar_p = Dense(1024 -> 1024) each.
  assert count(cv.prior) == 41_984 + 2_099_200 == 2_141_184
  # D: from-RGB 1x1 3 -> 32; F 32 (5x5), 64 (5x5), 128 (5x5), 256 (3x3); Flatten 4096 -> Dense 512, ReLU;
  # [Dense(40 -> 2048), LReLU] || it -> Dense(2560 -> 512) -> ... -> MBD(100, 5) -> Dense(612 -> 1).
  d_trunk = (conv_params(1, 3, 32) + conv_params(5, 32, 32) + conv_params(5, 32, 64) + conv_params(5, 64, 128)
             + conv_params(3, 128, 256))
  assert count(cv_d.from_rgb) + count(cv_d.trunk) == d_trunk == 577_120
  assert count(cv_d.condition) == dense_params(4096, 512) + dense_params(40, 2048) == 2_181_632
  assert count(cv_d.d_head) == dense_params(2560, 512) + 512 * 100 * 5 + dense_params(612, 1) == 1_567_845
  assert cv_d.q_head is None

  # crVAE-GAN: e = Dense(40 -> 128) as 4x4x8 per block; mu = Conv 3x3 320 -> 64 + AddBias 4x4x64;
  # logvar = LSTM(640 -> 512) + LSTM(512 -> 512) -> BN(512) -> Dense(512 -> 128).
  for vae in (cr, ac):
    assert count(vae.enc_attr) == dense_params(n, 128) == 5_248
    assert count(vae.mu_head) == conv_params(3, 320, 64) + 1024 == 185_408
    assert (count(vae.logvar_path) == lstm_params(640, 512) + lstm_params(512, 512) + 4 * 512
            + dense_params(512, 128) == 4_528_256)
    # d = Dense(40 -> 128); LSTM_gen([d || z_t] 256 -> 512) x2 -> Dense(512 -> 128); AddBias -> Conv 64 -> 256, BN.
    assert count(vae.gen_attr) == 5_248
    assert count(vae.transform_path) == lstm_params(256, 512) + lstm_params(512, 512) + dense_params(512, 128)
    assert count(vae.to_trunk) == 1024 + conv_params(3, 64, 256) + 4 * 256 == 149_760
  assert count(cr.prior) == 2_141_184 and cr.attention is None
  # acVAE-GAN: W in R^{8 x 40}; LSTM prior over a_t: LSTM(40 -> 128), LSTM(128 -> 128), Dense(128 -> 128) x2.
  assert count(ac.attention) == t * n == 320
  assert count(ac.prior) == lstm_params(40, 128) + lstm_params(128, 128) + 2 * dense_params(128, 128) == 251_136
  # D (cr / ac): g = Dense(40 -> 128) per block; f 4x4x320 -> Flatten 5120 -> Dense 512 -> MBD -> Dense(612 -> 1);
  # MI: Conv 3x3 320 -> 64, BN, Conv 1x1 64 -> 64, BN, Dense(1024 -> 1024), AddBias.
  for disc in (cr_d, ac_d):
    assert count(disc.from_rgb) + count(disc.trunk) == d_trunk
    assert count(disc.condition) == 5_248
    assert count(disc.d_head) == dense_params(5120, 512) + 512 * 500 + dense_params(612, 1) == 2_878_565
    assert (count(disc.q_head) == conv_params(3, 320, 64) + 4 * 64 + conv_params(1, 64, 64) + 4 * 64
            + dense_params(1024, 1024) + 1024 == 1_239_680)
  # Totals (all weights incl. BN moving statistics), as measured: the numbers the report quotes.
  totals = {model: (count(vae), count(disc)) for model, (vae, disc) in full64.items()}
  assert totals == {'cvaegan': (22_936_003, 4_326_597), 'crvaegan': (15_729_923, 4_700_613),
                    'acvaegan': (13_840_195, 4_700_613)}
  # Each model is the sum of its pieces (nothing unaccounted for).
  assert count(cv) == (encoder + decoder + 41_984 + 5_243_904 + 2_099_200 + 41_984 + 8_392_704 + 2_141_184)
  assert count(ac) == count(cr) - 2_141_184 + 251_136 + 320


# ------------------------------------------------------------------------------------------ groups, I/O
EXPECTED_GROUPS = {
    'cvaegan': {'enc', 'from_rgb', 'dec', 'to_rgb', 'prior'},
    'cvae': {'enc', 'from_rgb', 'dec', 'to_rgb', 'prior'},
    'crvaegan': {'enc', 'from_rgb', 'lstm_inf', 'lstm_gen', 'dec', 'to_rgb', 'prior'},
    'acvaegan': {'enc', 'from_rgb', 'lstm_inf', 'lstm_gen', 'dec', 'to_rgb', 'prior', 'attention'},
}


@pytest.mark.parametrize('model', MODELS)
def test_variable_groups_partition_the_trainable_variables(tiny, model):
  vae, disc = tiny[model]
  groups = vae.variable_groups()
  assert set(groups) == EXPECTED_GROUPS[model]
  ids = [id(v) for variables in groups.values() for v in variables]
  assert len(ids) == len(set(ids)) and set(ids) == {id(v) for v in vae.trainable_variables}
  assert {id(v) for v in groups['from_rgb']} == {id(v) for v in vae.encoder_trunk.from_rgb.trainable_variables}
  assert {id(v) for v in groups['to_rgb']} == {id(v) for v in vae.decoder_trunk.to_rgb.trainable_variables}
  assert {id(v) for v in groups['prior']} == {id(v) for v in vae.prior.trainable_variables}
  if model == 'acvaegan':
    assert [id(v) for v in groups['attention']] == [id(v) for v in vae.attention.trainable_variables]
  if disc is not None:
    d_groups = disc.variable_groups()
    assert set(d_groups) == ({'trunk', 'd_head', 'q_head'} if vae.config.recurrent else {'trunk', 'd_head'})
    d_ids = [id(v) for variables in d_groups.values() for v in variables]
    assert len(d_ids) == len(set(d_ids)) and set(d_ids) == {id(v) for v in disc.trainable_variables}


def test_checkpoint_round_trip_and_unknown_batch(tmp_path):
  vae, disc = build('tiny_acvaegan', seed=8)
  config = vae.config
  x, a, z = images(config, 4, seed=8), attributes(config, 4, seed=8), latents(config, 4, seed=8)
  path = tf.train.Checkpoint(vae=vae, disc=disc).save(str(tmp_path / 'ckpt'))
  vae2, disc2 = build('tiny_acvaegan', seed=9)
  assert np.abs(vae2.decode(z, a)[1].numpy() - vae.decode(z, a)[1].numpy()).max() > 0
  tf.train.Checkpoint(vae=vae2, disc=disc2).restore(path).assert_existing_objects_matched()
  np.testing.assert_array_equal(vae2.attention.mask().numpy(), vae.attention.mask().numpy())
  np.testing.assert_allclose(vae2.decode(z, a)[1].numpy(), vae.decode(z, a)[1].numpy(), atol=1e-6)
  np.testing.assert_allclose(disc2(x, a)['logits'].numpy(), disc(x, a)['logits'].numpy(), atol=1e-6)

  @tf.function(input_signature=[tf.TensorSpec((None,) + config.image_shape), tf.TensorSpec((None, 5))])
  def forward(x_, a_):
    out = vae(x_, a_, training=False)
    return out['u'], disc(out['x_tilde'], a_, training=False)['logits']

  u, logits = forward(x, a)
  assert tuple(u.shape) == (4,) + config.latent_shape and tuple(logits.shape) == (4, 1)
  assert networks.AcVAEGAN.from_config(vae.get_config()).config == config


# ------------------------------------------------------------------------------------------------ presets
def test_presets_carry_the_thesis_and_spec_b4_values():
  full = {model: presets.get_preset(f'full64_{model}') for model in MODELS}
  for model, config in full.items():
    assert (config.resolution, config.n_z, config.latent_shape, config.num_blocks, config.num_attributes) == (
        64, 64, (4, 4, 64), 8, 40)
    assert config.attribute_names[0] == '5_o_Clock_Shadow' and len(config.attribute_names) == 40
    assert (config.adam_epsilon, config.adam_beta1, config.adam_beta2, config.resolved_d_adam_beta1) == (
        1e-8, 0.9, 0.999, 0.9)
    assert (config.d_gate_threshold, config.gate_scope, config.d_mix, config.batch_size) == (0.9, 'head', 'thirds',
                                                                                             120)
    assert (config.bn_epsilon, config.bn_momentum_torch, config.epochs, config.lr_step_epochs, config.lr_decay,
            config.seed) == (1e-6, 0.9, 150, 60, 0.5, 196)
    assert config.resolved_lr_mult_lstm == config.resolved_lr_mult_prior == 1 / 8
    assert (config.lr_mult_trunk, config.resolved_lr_mult_dhead, config.lr_mult_qpsi, config.lr_mult_attention) == (
        0.5, 0.5, 0.5, 1.0)
    assert config.lambda_ds == 0.0 and config.lambda_ent == (0.05 if model == 'acvaegan' else 0.0)
  assert full['cvaegan'].learning_rate == full['cvae'].learning_rate == 3e-4
  assert full['crvaegan'].learning_rate == full['acvaegan'].learning_rate == 1e-3
  assert (full['cvaegan'].alpha1, full['cvaegan'].alpha2, full['cvaegan'].beta, full['cvaegan'].kappa) == (
      0.0003, 0.0003, 0.0025, 0.0)
  assert (full['cvae'].beta, full['cvae'].kappa, full['cvae'].adversarial) == (0.0, 0.0, False)
  for model in ('crvaegan', 'acvaegan'):
    config = full[model]
    assert (config.alpha1, config.alpha2, config.resolved_n_early, config.beta, config.kappa, config.has_mi) == (
        0.0003, 0.0002, 3, 0.0025, 0.01, True)
  assert not full['cvaegan'].has_mi and full['cvaegan'].prior_init_scale == 1e-4
  # small32 (spec B4): SynthFaces 32x32, N = 8, T = 4, b = 16, n_z = 32, 20 epochs of 10k, alpha/beta/kappa x4.
  small = presets.get_preset('small32_acvaegan')
  assert (small.dataset, small.resolution, small.num_attributes, small.num_blocks, small.base_channels, small.n_z,
          small.epochs, small.examples_per_epoch, small.batch_size) == ('synth_faces', 32, 8, 4, 16, 32, 20, 10_000, 60)
  assert small.attribute_names == ('Male', 'Smiling', 'Eyeglasses', 'Wearing_Hat', 'Bangs', 'Black_Hair',
                                   'Blond_Hair', 'Pale_Skin')
  np.testing.assert_allclose((small.alpha1, small.alpha2, small.beta, small.kappa), (0.0012, 0.0008, 0.01, 0.04))
  assert small.resolved_n_early == 2 and small.lambda_ent == 0.05
  # R6's choices only in the repo_ presets: quarters (batch 128), D-side beta1 0.5, lambda_ds 0.05.
  repo = presets.get_preset('repo_full64_acvaegan')
  assert (repo.d_mix, repo.batch_size, repo.resolved_d_adam_beta1, repo.adam_beta1, repo.lambda_ds) == (
      'quarters', 128, 0.5, 0.9, 0.05)
  assert set(presets.preset_names()) == ({f'{s}_{m}' for s in presets.SCALES for m in MODELS}
                                         | {f'repo_full64_{m}' for m in presets.ADVERSARIAL_MODELS})


@pytest.mark.parametrize('overrides, field', [
    (dict(model='vaegan'), 'model'),
    (dict(d_mix='halves'), 'd_mix'),
    (dict(batch_size=8), 'batch_size'),                   # thirds need B % 6 == 0
    (dict(num_attributes=6), 'attribute_names'),
    (dict(lambda_ent=-1.0), 'lambda_ent'),
    (dict(d_adam_beta1=1.5), 'd_adam_beta1'),
    (dict(num_blocks=3), 'num_blocks'),
    (dict(prior_lstm_hidden=0), 'prior_lstm_hidden'),
    (dict(encoder_layers=((5, 2, 4, 'crelu', 2),)), 'encoder_layers'),
])
def test_config_validation_names_the_field(overrides, field):
  with pytest.raises(ValueError, match=f'^{field}: '):
    presets.get_preset('tiny_acvaegan', **overrides)


def test_config_json_round_trip_and_quarters():
  config = presets.get_preset('small32_crvaegan', d_mix='quarters', batch_size=64)
  assert config.d_mix_period == 4
  back = presets.AcVAEConfig.from_json(config.to_json())
  assert back == config and isinstance(back, presets.AcVAEConfig)
  with pytest.raises(ValueError, match='^nonsense: unknown AcVAEConfig field'):
    config.replace(nonsense=1)
  with pytest.raises(ValueError, match='^name: unknown Chapter 6 preset'):
    presets.get_preset('full64')
  assert presets.get_preset('tiny_cvae', batch_size=7).batch_size == 7      # no D, no minibatch mix
