"""Progressive growing R -> 2R of the Chapter 6 models (thesis Sec. 6.4.3, Fig. 6.4, T:L5999-6000; spec ch5_6 B2.1,
§7.3 item 19).

References: hand-written schedule tables (R6's per-epoch formula and the spec's values for E = 150); the R models on
2x2-average-pooled images (NumPy pooling) and NumPy nearest upsampling of the R generator's output at alpha = 0; a
NumPy forward pass of both branches and the blend (convolutions by loops over the kernel taps, inference BN) at an
intermediate alpha; perturbing the old branches at alpha = 1; every R weight against the grown model's weight of the
same Keras path; checkpoint round trips (stored fade length, restored step) and growing twice.
"""

import json

import numpy as np
import pytest
import tensorflow as tf

import keras

from rlcv_tf.acvae import networks
from rlcv_tf.acvae import presets
from rlcv_tf.acvae import progressive

TOTAL_STEPS = 40


def images(resolution, batch=4, seed=0):
  return np.tanh(np.random.default_rng(seed).normal(size=(batch, resolution, resolution, 3))).astype(np.float32)


def attributes(config, batch=4, seed=0):
  return np.sign(np.random.default_rng(seed).normal(size=(batch, config.num_attributes)) + 1e-3).astype(np.float32)


def latents(config, batch=4, seed=0):
  return np.random.default_rng(seed).normal(size=(batch,) + config.latent_shape).astype(np.float32)


# ------------------------------------------------------------------------------------ NumPy reference ops
def pool2(x):
  b, h, w, c = x.shape
  return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def up2(x):
  return np.repeat(np.repeat(x, 2, axis=1), 2, axis=2)


def conv_same(x, layer):
  """Stride-1 'same' convolution by a loop over the kernel taps (odd kernels)."""
  kernel, bias = [np.asarray(w, np.float64) for w in layer.get_weights()]
  k = kernel.shape[0]
  p = k // 2
  xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
  h, w = x.shape[1:3]
  out = np.zeros(x.shape[:3] + (kernel.shape[-1],))
  for dy in range(k):
    for dx in range(k):
      out += xp[:, dy:dy + h, dx:dx + w, :] @ kernel[dy, dx]
  return out + bias


def bn(x, layer, eps):
  gamma, beta, mean, var = [np.asarray(w, np.float64) for w in layer.get_weights()]
  return (x - mean) / np.sqrt(var + eps) * gamma + beta


def relu(x):
  return np.maximum(x, 0.0)


def lrelu(x, slope):
  return np.where(x > 0, x, slope * x)


def crelu(x):
  return relu(np.concatenate([x, -x], axis=-1))


def randomize(layer, seed):
  """Random values for every weight of `layer` (moving variances positive), so BN and biases matter."""
  rng = np.random.default_rng(seed)
  for w in layer.weights:
    shape = tuple(w.shape)
    value = rng.uniform(0.5, 1.5, shape) if 'moving_variance' in w.path else 0.3 * rng.normal(size=shape)
    w.assign(value.astype(np.float32))


# ------------------------------------------------------------------------------------------------ fixtures
def make_grown(model, seed=0):
  keras.utils.set_random_seed(seed)
  cfg = presets.get_preset(f'tiny_{model}')
  vae, disc = networks.build_models(cfg)
  vae2, disc2, cfg2 = progressive.grow(vae, disc, cfg, total_steps=TOTAL_STEPS)
  return dict(cfg=cfg, vae=vae, disc=disc, vae2=vae2, disc2=disc2, cfg2=cfg2)


@pytest.fixture(scope='module')
def grown():
  return {model: make_grown(model) for model in ('acvaegan', 'cvaegan')}


# ------------------------------------------------------------------------------------------------ schedule
def test_fade_alpha_is_zero_then_linear_then_one():
  f = 8.0
  table = {0: 0.0, 1: 0.125, 2: 0.25, 4: 0.5, 7: 0.875, 8: 1.0, 9: 1.0, 100: 1.0}
  for step, expected in table.items():
    assert progressive.fade_alpha(step, f) == pytest.approx(expected, abs=1e-12)
    assert float(progressive.fade_alpha(tf.constant(step, tf.int64), f)) == pytest.approx(expected, abs=1e-7)
  # A later start: 0 before it, the same ramp after.
  assert progressive.fade_alpha(3, f, start_step=5) == 0.0
  assert progressive.fade_alpha(9, f, start_step=5) == pytest.approx(0.5)
  # The half of the stage: 40 steps -> 20-step ramp.
  cfg2 = progressive.grow_config(presets.get_preset('tiny_acvaegan'), total_steps=TOTAL_STEPS)
  assert cfg2.fade_steps == 20 and cfg2.fade_alpha(0) == 0.0 and cfg2.fade_alpha(5) == 0.25
  assert cfg2.fade_alpha(20) == 1.0 and cfg2.fade_alpha(39) == 1.0


def test_epoch_staircase_is_r6s_formula():
  # Spec §7.3-19: E = 150 gives fade(1) = 0, fade(38) = 37/75, fade(76) = 1.
  assert progressive.epoch_fade(1, 150) == 0.0
  assert progressive.epoch_fade(38, 150) == pytest.approx(37 / 75)
  assert progressive.epoch_fade(76, 150) == 1.0 and progressive.epoch_fade(150, 150) == 1.0
  # E = 4 epochs of 3 steps: the fade is fixed within an epoch, (e - 1) / 2 (hand table), from the step alone.
  expected = [0, 0, 0, .5, .5, .5, 1, 1, 1, 1, 1, 1]
  got = [progressive.fade_alpha(step, fade_steps=2 * 3, steps_per_epoch=3) for step in range(12)]
  assert got == expected
  assert got == [progressive.epoch_fade(step // 3 + 1, 4) for step in range(12)]


def test_fade_length_is_fixed_at_stage_start_and_a_resume_continues_the_ramp(grown, tmp_path):
  g = grown['acvaegan']
  cfg2 = g['cfg2']
  step = tf.Variable(0, dtype=tf.int64)
  step.assign(13)
  progressive.set_alpha(cfg2.fade_alpha(int(step.numpy())), g['vae2'], g['disc2'])
  alpha_before = float(g['vae2'].alpha.numpy())
  assert alpha_before == pytest.approx(13 / 20)
  path = tf.train.Checkpoint(vae=g['vae2'], disc=g['disc2'], step=step).write(str(tmp_path / 'ckpt'))
  (tmp_path / 'config.json').write_text(cfg2.to_json())

  # A resumed run: the stored config (not a new grow_config), a larger step budget, the restored step.
  stored = progressive.config_from_dict(json.loads((tmp_path / 'config.json').read_text()))
  assert isinstance(stored, progressive.GrownConfig) and stored == cfg2 and stored.fade_steps == 20
  resumed = stored.replace(epochs=4 * stored.epochs)          # e.g. --steps raised: the fade fields are untouched
  vae3, disc3 = progressive.build_grown_models(resumed)
  step3 = tf.Variable(0, dtype=tf.int64)
  tf.train.Checkpoint(vae=vae3, disc=disc3, step=step3).read(path).assert_consumed()
  progressive.set_alpha(resumed.fade_alpha(int(step3.numpy())), vae3, disc3)
  assert float(vae3.alpha.numpy()) == alpha_before and float(disc3.alpha.numpy()) == alpha_before
  assert [resumed.fade_alpha(s) for s in range(0, 60, 7)] == [cfg2.fade_alpha(s) for s in range(0, 60, 7)]
  # A new stage fixes its own length from its own steps.
  assert progressive.grow_config(g['cfg'], total_steps=4 * TOTAL_STEPS).fade_steps == 80


# ------------------------------------------------------------------------------------------------ alpha = 0
@pytest.mark.parametrize('model', presets.MODELS)
def test_at_alpha_zero_the_grown_models_are_the_r_models_on_pooled_and_upsampled_images(grown, model):
  g = grown[model] if model in grown else make_grown(model, seed=1)
  cfg, vae, disc, vae2, disc2 = g['cfg'], g['vae'], g['disc'], g['vae2'], g['disc2']
  progressive.set_alpha(0.0, vae2, disc2)
  x2 = images(2 * cfg.resolution, seed=3)
  a, z = attributes(cfg, seed=3), latents(cfg, seed=3)
  x = pool2(x2.astype(np.float64)).astype(np.float32)
  for got, want in zip(vae2.encode(x2, a), vae.encode(x, a)):
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-5)
  (u2, y2), (u, y) = vae2.decode(z, a), vae.decode(z, a)
  assert tuple(y2.shape) == (4, 2 * cfg.resolution, 2 * cfg.resolution, 3)
  np.testing.assert_allclose(y2.numpy(), up2(y.numpy()), atol=1e-5)
  if u is not None:
    np.testing.assert_allclose(u2.numpy(), u.numpy(), atol=1e-5)
  if disc is not None:
    out2, out = disc2(x2, a), disc(x, a)
    assert set(out2) == set(out)
    for key in out:
      np.testing.assert_allclose(out2[key].numpy(), out[key].numpy(), atol=1e-5)


# ------------------------------------------------------------------------------------------------ alpha = 1
@pytest.mark.parametrize('model', ['acvaegan', 'cvaegan'])
def test_at_alpha_one_only_the_new_branch_acts(grown, model):
  g = grown[model]
  cfg, vae2, disc2 = g['cfg'], g['vae2'], g['disc2']
  x2, a, z = images(2 * cfg.resolution, seed=4), attributes(cfg, seed=4), latents(cfg, seed=4)
  copies = [vae2.encoder_trunk.old_from_rgb, vae2.decoder_trunk.old_to_rgb, disc2.old_from_rgb]
  saved = [c.get_weights() for c in copies]

  def outputs():
    return [vae2.encode(x2, a)[0].numpy(), vae2.decode(z, a)[1].numpy(), disc2(x2, a)['logits'].numpy()]

  try:
    progressive.set_alpha(1.0, vae2, disc2)
    before = outputs()
    for i, copy in enumerate(copies):
      randomize(copy, seed=10 + i)
    for got, want in zip(outputs(), before):
      np.testing.assert_array_equal(got, want)
    progressive.set_alpha(0.5, vae2, disc2)          # the perturbation is visible when the old branch has weight
    half = outputs()
    for copy, weights in zip(copies, saved):
      copy.set_weights(weights)
    for got, want in zip(half, outputs()):
      assert np.abs(got - want).max() > 1e-4
  finally:
    for copy, weights in zip(copies, saved):
      copy.set_weights(weights)
    progressive.set_alpha(0.0, vae2, disc2)


# ------------------------------------------------------------------------------------------ NumPy branches
@pytest.mark.parametrize('model', ['acvaegan', 'cvaegan'])
def test_both_branches_and_the_blend_match_a_numpy_forward_pass(model):
  g = make_grown(model, seed=5)
  cfg, vae, disc, vae2, disc2 = g['cfg'], g['vae'], g['disc'], g['vae2'], g['disc2']
  eps, slope, alpha = cfg.bn_epsilon, cfg.lrelu_slope, 0.3
  enc, dec = vae2.encoder_trunk, vae2.decoder_trunk
  for i, layer in enumerate([enc.newest, enc.old_from_rgb, dec.newest, dec.old_to_rgb, disc2.newest,
                             disc2.old_from_rgb]):
    randomize(layer, seed=20 + i)
  progressive.set_alpha(alpha, vae2, disc2)
  x2 = images(2 * cfg.resolution, seed=6).astype(np.float64)
  a = attributes(cfg, seed=6)

  # Encoder: new = CReLU -> from-RGB -> [conv, BN, ReLU, conv, BN] -> pool; old = pool -> CReLU -> from-RGB copy.
  def from_rgb(x, stem):
    return relu(bn(conv_same(crelu(x), stem.get_layer('conv')), stem.get_layer('bn'), eps))

  level = enc.newest
  h = from_rgb(x2, enc.from_rgb)
  h = relu(bn(conv_same(h, level.get_layer('conv1')), level.get_layer('bn1'), eps))
  new = pool2(bn(conv_same(h, level.get_layer('conv2')), level.get_layer('bn2'), eps))
  old = from_rgb(pool2(x2), enc.old_from_rgb)
  assert level.get_layer('conv1').get_weights()[0].shape == (3, 3, cfg.base_channels, cfg.base_channels // 2)
  np.testing.assert_allclose(enc.stem(x2.astype(np.float32)).numpy(), (1 - alpha) * old + alpha * new, atol=1e-5)

  # Generator: new = up -> [conv, BN, LReLU] x 2 -> to-RGB; old = to-RGB copy of up(h), h the R decoder's last map.
  t = np.random.default_rng(7).normal(size=(4, cfg.latent_size, cfg.latent_size, cfg.hidden_channels))
  t = t.astype(np.float32)
  h = vae.decoder_trunk.features(t).numpy().astype(np.float64)
  level = dec.newest
  y = lrelu(bn(conv_same(up2(h), level.get_layer('conv1')), level.get_layer('bn1'), eps), slope)
  y = lrelu(bn(conv_same(y, level.get_layer('conv2')), level.get_layer('bn2'), eps), slope)
  new = conv_same(y, dec.to_rgb)
  old = conv_same(up2(h), dec.old_to_rgb)
  c = cfg.decoder_layers[-1][1]
  assert level.get_layer('conv1').get_weights()[0].shape == (3, 3, c, c // 2)
  np.testing.assert_allclose(dec(t).numpy(), (1 - alpha) * old + alpha * new, atol=1e-5)

  # D: new = from-RGB -> [conv, ReLU] x 2 -> pool; old = pool -> from-RGB copy; then the R D's F and condition.
  level = disc2.newest
  stem = lambda x, s: relu(conv_same(x, s.get_layer('conv')))  # pylint: disable=unnecessary-lambda-assignment
  y = relu(conv_same(stem(x2, disc2.from_rgb), level.get_layer('conv1')))
  new = pool2(relu(conv_same(y, level.get_layer('conv2'))))
  old = stem(pool2(x2), disc2.old_from_rgb)
  blended = ((1 - alpha) * old + alpha * new).astype(np.float32)
  want = disc.condition(disc.trunk(blended, training=False), a)
  np.testing.assert_allclose(disc2.features(x2.astype(np.float32), a).numpy(), want.numpy(), atol=1e-5)


def test_full64_widths_are_the_spec_b21_table():
  cfg = progressive.grow_config(presets.get_preset('full64_acvaegan'), total_steps=2)
  assert cfg.resolution == 128 and cfg.base_resolution == 64 and cfg.newest_level == 'r128'
  enc = progressive.GrownEncoderTrunk(cfg, name='encoder')
  enc.stem(np.zeros((1, 128, 128, 3), np.float32))
  dec = progressive.GrownDecoderTrunk(cfg, name='decoder')
  dec.head(dec.newest(np.zeros((1, 64, 64, 64), np.float32)))
  dec.fade.build((1, 64, 64, 64))
  d_level = progressive._discriminator_level(cfg, 'r128')  # pylint: disable=protected-access
  d_level.build((1, 128, 128, 32))

  def kernels(layer):
    return [tuple(w.shape) for w in layer.weights if w.path.endswith('kernel')]

  assert kernels(enc.newest) == [(3, 3, 32, 16), (3, 3, 16, 32)]
  assert kernels(enc.old_from_rgb) == [(1, 1, 6, 32)]                  # CReLU doubles the 3 channels
  assert kernels(dec.newest) == [(3, 3, 64, 32), (3, 3, 32, 64)]
  assert kernels(dec.old_to_rgb) == [(1, 1, 64, 3)]
  assert kernels(d_level) == [(3, 3, 32, 16), (3, 3, 16, 32)]
  assert not any('gamma' in w.path for w in d_level.weights)          # no BN in the D's new layers


# ------------------------------------------------------------------------------------------ copies, groups
@pytest.mark.parametrize('model', ['acvaegan', 'cvaegan'])
def test_every_pretrained_weight_is_copied(grown, model):
  g = grown[model]
  for r_model, big in ((g['vae'], g['vae2']), (g['disc'], g['disc2'])):
    big_by_path = {w.path: w for w in big.weights}
    assert len(big_by_path) == len(big.weights)
    for w in r_model.weights:
      assert w.path in big_by_path, w.path
      np.testing.assert_array_equal(big_by_path[w.path].numpy(), w.numpy())
      assert big_by_path[w.path] is not w
    new_paths = set(big_by_path) - {w.path for w in r_model.weights}
    assert new_paths and all('/grow_r32/' in p or '/fade_r32/' in p for p in new_paths)
  # The old branches start as copies (separate variables) of the pretrained from-RGB / to-RGB.
  vae2, disc2 = g['vae2'], g['disc2']
  for pretrained, copy in ((vae2.encoder_trunk.from_rgb, vae2.encoder_trunk.old_from_rgb),
                           (vae2.decoder_trunk.to_rgb, vae2.decoder_trunk.old_to_rgb),
                           (disc2.from_rgb, disc2.old_from_rgb)):
    assert len(pretrained.weights) == len(copy.weights) > 0
    for p, c in zip(pretrained.weights, copy.weights):
      np.testing.assert_array_equal(p.numpy(), c.numpy())
      assert p is not c


@pytest.mark.parametrize('model', ['acvaegan', 'cvaegan'])
def test_variable_groups_add_the_grow_groups_and_partition_the_variables(grown, model):
  g = grown[model]
  vae, disc, vae2, disc2 = g['vae'], g['disc'], g['vae2'], g['disc2']
  for r_model, big, fresh in ((vae, vae2, {'grow_enc', 'grow_gen'}), (disc, disc2, {'grow_d'})):
    groups = big.variable_groups()
    assert set(groups) == set(r_model.variable_groups()) | fresh
    ids = [id(v) for variables in groups.values() for v in variables]
    assert len(ids) == len(set(ids)) and set(ids) == {id(v) for v in big.trainable_variables}
    r_paths = {name: [v.path for v in variables] for name, variables in r_model.variable_groups().items()}
    assert {name: [v.path for v in variables] for name, variables in groups.items() if name in r_paths} == r_paths
  assert {v.path for v in vae2.variable_groups()['grow_gen']} == {
      v.path for v in vae2.decoder_trunk.newest.trainable_variables + vae2.decoder_trunk.old_to_rgb.trainable_variables}
  assert not any(w.trainable for f in vae2.fade_layers() + disc2.fade_layers() for w in [f.alpha])
  multipliers = progressive.learning_rate_multipliers({'enc': 1.0, 'lstm_inf': 0.25}, g['cfg2'].replace(
      lr_mult_pretrained=0.1))
  assert multipliers == pytest.approx(dict(enc=0.1, lstm_inf=0.025, grow_enc=1, grow_gen=1, grow_d=1))


# ------------------------------------------------------------------------------------------ checkpoints
def test_grown_checkpoint_round_trip_with_stable_names(grown, tmp_path):
  g = grown['acvaegan']
  vae2, disc2, cfg2 = g['vae2'], g['disc2'], g['cfg2']
  x2, a, z = images(32, seed=8), attributes(cfg2, seed=8), latents(cfg2, seed=8)
  progressive.set_alpha(0.4, vae2, disc2)
  path = tf.train.Checkpoint(vae=vae2, disc=disc2).write(str(tmp_path / 'grown'))
  keys = {k for k, _ in tf.train.list_variables(path)}
  r_path = tf.train.Checkpoint(vae=g['vae'], disc=g['disc']).write(str(tmp_path / 'r'))
  r_keys = {k for k, _ in tf.train.list_variables(r_path)}
  assert r_keys <= keys                                    # every R key keeps its name in the grown model
  for prefix in ('vae/encoder_trunk/grow_r32/', 'vae/encoder_trunk/fade_r32/old/', 'vae/decoder_trunk/grow_r32/',
                 'vae/decoder_trunk/fade_r32/old/', 'disc/grow_r32/', 'disc/fade_r32/old/'):
    assert any(k.startswith(prefix) for k in keys), prefix
  assert {k for k in keys - r_keys if 'fade_r32/alpha' in k} == {
      'vae/encoder_trunk/fade_r32/alpha/.ATTRIBUTES/VARIABLE_VALUE',
      'vae/decoder_trunk/fade_r32/alpha/.ATTRIBUTES/VARIABLE_VALUE', 'disc/fade_r32/alpha/.ATTRIBUTES/VARIABLE_VALUE'}

  keras.utils.set_random_seed(99)
  vae3, disc3 = progressive.build_grown_models(cfg2)
  assert np.abs(vae3.decode(z, a)[1].numpy() - vae2.decode(z, a)[1].numpy()).max() > 0
  tf.train.Checkpoint(vae=vae3, disc=disc3).read(path).assert_consumed()
  np.testing.assert_allclose(vae3.decode(z, a)[1].numpy(), vae2.decode(z, a)[1].numpy(), atol=1e-6)
  np.testing.assert_allclose(vae3.encode(x2, a)[1].numpy(), vae2.encode(x2, a)[1].numpy(), atol=1e-6)
  np.testing.assert_allclose(disc3(x2, a)['logits'].numpy(), disc2(x2, a)['logits'].numpy(), atol=1e-6)
  assert type(vae3).from_config(vae2.get_config()).config == cfg2
  progressive.set_alpha(0.0, vae2, disc2)


def test_one_tf_function_serves_every_alpha(grown):
  g = grown['acvaegan']
  vae2, cfg2 = g['vae2'], g['cfg2']
  a, z = attributes(cfg2, seed=9), latents(cfg2, seed=9)

  @tf.function
  def generate(step):
    vae2.set_alpha(cfg2.fade_alpha(step))
    return vae2.decode(z, a)[1]

  outs = [generate(tf.constant(s, tf.int64)).numpy() for s in (0, 5, 20)]
  assert generate.experimental_get_tracing_count() == 1
  assert float(vae2.alpha.numpy()) == 1.0
  assert np.abs(outs[0] - outs[1]).max() > 1e-4 and np.abs(outs[1] - outs[2]).max() > 1e-4
  progressive.set_alpha(0.0, vae2)


def test_growing_twice_16_to_32_to_64(grown):
  g = grown['acvaegan']
  vae2, disc2 = g['vae2'], g['disc2']
  with pytest.raises(ValueError, match='alpha 0, not 1'):
    progressive.grow(vae2, disc2, total_steps=10)
  progressive.set_alpha(1.0, vae2, disc2)          # the 32-px stage finished
  try:
    vae4, disc4, cfg4 = progressive.grow(vae2, disc2, total_steps=10)
    assert cfg4.resolution == 64 and cfg4.base_resolution == 16 and cfg4.level_resolutions == (32, 64)
    assert cfg4.fade_steps == 5 and float(vae4.alpha.numpy()) == 0.0
    x4, a, z = images(64, seed=10), attributes(cfg4, seed=10), latents(cfg4, seed=10)
    x2 = pool2(x4.astype(np.float64)).astype(np.float32)
    np.testing.assert_allclose(vae4.encode(x4, a)[1].numpy(), vae2.encode(x2, a)[1].numpy(), atol=1e-5)
    np.testing.assert_allclose(vae4.decode(z, a)[1].numpy(), up2(vae2.decode(z, a)[1].numpy()), atol=1e-5)
    np.testing.assert_allclose(disc4(x4, a)['logits'].numpy(), disc2(x2, a)['logits'].numpy(), atol=1e-5)
  finally:
    progressive.set_alpha(0.0, vae2, disc2)
  # The 32-px level is now an ordinary pretrained part (enc / dec / trunk); grow_* hold the 64-px level only.
  assert vae4.encoder_trunk.growth.keys() == {'r32'} and vae4.decoder_trunk.growth.keys() == {'r32'}
  paths = {name: {v.path for v in variables} for name, variables in vae4.variable_groups().items()}
  assert any('/grow_r32/' in p for p in paths['enc']) and any('/grow_r32/' in p for p in paths['dec'])
  assert all('r64' in p for p in paths['grow_enc'] | paths['grow_gen'])


# ------------------------------------------------------------------------------------------------ errors
def test_bad_input_raises_one_clear_error(grown):
  g = grown['acvaegan']
  cfg = g['cfg']
  with pytest.raises(ValueError, match='total_steps / fade_steps'):
    progressive.grow_config(cfg)
  with pytest.raises(ValueError, match='total_steps / fade_steps'):
    progressive.grow_config(cfg, total_steps=10, fade_steps=5)
  with pytest.raises(ValueError, match='resolution: 48'):
    progressive.grow_config(cfg, total_steps=10).replace(resolution=48).validate()
  with pytest.raises(ValueError, match='fade_steps'):
    progressive.fade_alpha(3, 0)
  with pytest.raises(ValueError, match='epoch'):
    progressive.epoch_fade(0, 150)
  with pytest.raises(ValueError, match='GrownConfig'):
    progressive.build_grown_models(cfg)
  with pytest.raises(ValueError, match='x: .* 32x32 images, got 16x16'):
    g['vae2'].encode(images(16), attributes(cfg))
  with pytest.raises(ValueError, match='x: .* 32x32 images, got 16x16'):
    g['disc2'](images(16), attributes(cfg))
  with pytest.raises(ValueError, match='disc: acvaegan has a discriminator'):
    progressive.grow(g['vae'], None, total_steps=10)
  with pytest.raises(ValueError, match='cfg: describes a 32px'):
    progressive.grow(g['vae'], g['disc'], g['cfg2'], total_steps=10)
