"""A model checkpointed on its own restores every weight, BN moving statistics included (Keras 3 containers)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.core import tracking
from rlcv_tf.core.vaegan import networks
from rlcv_tf.crvae import presets
from rlcv_tf.crvae import stage2


class _Stacked(keras.layers.Layer):

  def __init__(self, track, **kwargs):
    super().__init__(**kwargs)
    self.stages = [(keras.layers.Dense(3), keras.layers.BatchNormalization())]
    if track:
      tracking.track_containers(self)

  def call(self, x, training=False):
    for dense, bn in self.stages:
      x = bn(dense(x), training=training)
    return x


def _perturb(model):
  for i, w in enumerate(model.weights):
    w.assign(w.numpy() + 0.01 * (i + 1))


def _roundtrip(make, tmp_path):
  a, b = make(), make()
  _perturb(a)
  path = tf.train.Checkpoint(model=a).save(str(tmp_path / 'ckpt'))
  tf.train.Checkpoint(model=b).restore(path).assert_existing_objects_matched()
  return a, b


@pytest.mark.parametrize('track', [False, True])
def test_container_layers_are_checkpointed_only_when_tracked(track, tmp_path):
  def make():
    layer = _Stacked(track)
    layer(tf.zeros((2, 4)))
    return layer
  a, b = _roundtrip(make, tmp_path)
  same = [np.array_equal(x.numpy(), y.numpy()) for x, y in zip(a.weights, b.weights)]
  assert len(a.weights) == 6, 'tracking adds no weights'
  # Without tracking the Keras 3 container hides the layers from tf.train.Checkpoint (the failure this fixes).
  assert all(same) if track else not any(same)


@pytest.mark.parametrize('preset', ['tiny_synthbirds_crvaegan', 'tiny_mnist_crvae', 'tiny_synthbirds_vaegan'])
def test_crvae_models_restore_every_weight(preset, tmp_path):
  cfg = presets.get_preset(preset)
  for index in (0, 1):
    def make():
      return networks.build_models(cfg)[index]
    if make() is None:
      continue
    a, b = _roundtrip(make, tmp_path / str(index))
    for x, y in zip(a.weights, b.weights):
      np.testing.assert_array_equal(x.numpy(), y.numpy(), err_msg=x.path)


def test_stage2_models_restore_every_weight(tmp_path):
  cfg = stage2.get_stage2_preset('stage2_tiny')
  for index in (0, 1):
    a, b = _roundtrip(lambda: stage2.build_stage2_models(cfg)[index], tmp_path / str(index))
    for x, y in zip(a.weights, b.weights):
      np.testing.assert_array_equal(x.numpy(), y.numpy(), err_msg=x.path)


# ------------------------------------------------------------------------- stable names for inserted stages
class _Staged(keras.layers.Layer):
  """Layers in a list (index keys) or in named stages (stable keys)."""

  def __init__(self, names, named, **kwargs):
    super().__init__(**kwargs)
    self._stages = {n: (keras.layers.Dense(3, name=f'{n}_dense'), keras.layers.BatchNormalization(name=f'{n}_bn'))
                    for n in names}
    if named:
      tracking.track_named(self, 'stage', self._stages)
    else:
      tracking.track_sublayers(self, 'stage', list(self._stages.values()))

  def call(self, x, training=False):
    for dense, bn in self._stages.values():
      x = bn(dense(x), training=training)
    return x


def _keys(layer, tmp_path, tag):
  layer(tf.zeros((2, 3)))
  path = tf.train.Checkpoint(model=layer).write(str(tmp_path / tag))
  return {k for k, _ in tf.train.list_variables(path) if k.startswith('model/')}


def test_named_stages_keep_their_keys_when_a_stage_is_inserted(tmp_path):
  small = _keys(_Staged(['a', 'b'], named=True), tmp_path, 'small')
  grown = _keys(_Staged(['new', 'a', 'b'], named=True), tmp_path, 'grown')
  assert small < grown and any('stage_a_0' in k for k in small)
  # Index keys (the old scheme) shift: the first stage of the small model and of the grown one share a key but
  # not a layer, so a restore would load 'a' into 'new'.
  small_index = _keys(_Staged(['a', 'b'], named=False), tmp_path, 'small_index')
  grown_index = _keys(_Staged(['new', 'a', 'b'], named=False), tmp_path, 'grown_index')
  assert small_index < grown_index
  assert any(k.startswith('model/stage_0/') for k in small_index)     # 'a' here, 'new' in the grown model


def test_track_named_rejects_bad_and_clashing_names():
  owner = keras.layers.Layer()
  with pytest.raises(ValueError, match='stable checkpoint key'):
    tracking.track_named(owner, 'grow', {'r 128': keras.layers.Dense(1)})
  tracking.track_named(owner, 'grow', {'r128': keras.layers.Dense(1)})
  with pytest.raises(ValueError, match='already used'):
    tracking.track_named(owner, 'grow', {'r128': keras.layers.Dense(1)})


def _grow_stages(config):
  """A 2R -> R encoder stage and an R -> 2R decoder stage (progressive growing's shape, spec B2.1)."""
  c_in = 2 * config.channels                       # after the input CReLU
  encoder = keras.Sequential([keras.layers.Conv2D(c_in, 3, padding='same', name='conv'),
                              keras.layers.BatchNormalization(name='bn'), keras.layers.AveragePooling2D(2)],
                             name='grow_encoder')
  channels = config.decoder_layers[-1][1]
  decoder = keras.Sequential([keras.layers.UpSampling2D(2), keras.layers.Conv2D(channels, 3, padding='same',
                                                                                name='conv'),
                              keras.layers.BatchNormalization(name='bn')], name='grow_decoder')
  return encoder, decoder


def test_a_smaller_model_loads_into_the_grown_models_shared_parts(tmp_path):
  """A 16-px encoder / decoder pair's checkpoint restores into the 32-px pair that has one growth stage each; the
  growth stages keep their own weights, every shared weight (BN statistics included) is the checkpoint's."""
  cfg = presets.get_preset('tiny')
  r = cfg.resolution

  def pair(grown):
    enc_stage, dec_stage = _grow_stages(cfg) if grown else (None, None)
    encoder = networks.EncoderTrunk(cfg, growth={'r32': enc_stage} if grown else None, name='encoder')
    decoder = networks.DecoderTrunk(cfg, growth={'r32': dec_stage} if grown else None, name='decoder')
    size = 2 * r if grown else r
    h = encoder(tf.zeros((2, size, size, cfg.channels)))
    assert tuple(h.shape) == (2, 4, 4, cfg.hidden_channels)
    assert tuple(decoder(h).shape) == (2, size, size, cfg.channels)
    return encoder, decoder

  small = pair(False)
  for layer in small:
    _perturb(layer)
  path = tf.train.Checkpoint(encoder=small[0], decoder=small[1]).save(str(tmp_path / 'small'))
  small_keys = {k for k, _ in tf.train.list_variables(path) if k.startswith(('encoder/', 'decoder/'))}

  grown = pair(True)
  grow_before = [w.numpy().copy() for layer in grown for w in layer.growth['r32'].weights]
  tf.train.Checkpoint(encoder=grown[0], decoder=grown[1]).restore(path).expect_partial()
  grown_path = tf.train.Checkpoint(encoder=grown[0], decoder=grown[1]).write(str(tmp_path / 'grown'))
  grown_keys = {k for k, _ in tf.train.list_variables(grown_path) if k.startswith(('encoder/', 'decoder/'))}
  assert small_keys < grown_keys
  assert all(k.split('/')[1] == 'grow_r32' for k in grown_keys - small_keys), sorted(grown_keys - small_keys)
  for s_layer, g_layer in zip(small, grown):
    shared = {w.path: w for w in g_layer.weights}
    for w in s_layer.weights:
      np.testing.assert_array_equal(shared[w.path].numpy(), w.numpy(), err_msg=w.path)
  grow_after = [w.numpy() for layer in grown for w in layer.growth['r32'].weights]
  for before, after in zip(grow_before, grow_after):
    np.testing.assert_array_equal(before, after)


def test_chapter5_checkpoint_keys_are_the_index_keys(tmp_path):
  """The Chapter 5 models keep the keys their checkpoints were written with (container-index keys inside the trunks
  and LSTM paths; the optional stems, heads, growth stages and the prior add nothing)."""
  cfg = presets.get_preset('tiny_synthbirds_crvaegan')
  vae, disc = networks.build_models(cfg)
  path = tf.train.Checkpoint(vae=vae, discriminator=disc).write(str(tmp_path / 'ckpt'))
  keys = [k for k, _ in tf.train.list_variables(path)]
  for prefix in ('vae/encoder_trunk/stages_1/', 'vae/encoder_trunk/stages_2/', 'vae/decoder_trunk/out_conv/',
                 'vae/logvar_path/lstms_0/', 'vae/logvar_path/bn/', 'vae/logvar_path/dense/',
                 'vae/transform_path/lstms_1/', 'discriminator/trunk/', 'discriminator/q_head/'):
    assert any(k.startswith(prefix) for k in keys), prefix
  assert not any(word in k for k in keys for word in ('grow_', 'from_rgb', 'to_rgb', 'prior', 'condition'))
