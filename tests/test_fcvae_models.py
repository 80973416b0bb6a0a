"""Seed-002 networks: the layer shapes of Tables 3.1 / 3.2 and of the FCVAE (k in {1, 8}, 84x84 and 28x28, grey
and RGB, every BN placement, shallow and deep), linear latent heads, the dense VAE at 64x64, and checkpoints that
keep the BN statistics."""

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.fcvae import models
from rlcv_tf.fcvae import presets


def _cfg(model='fcvae', dataset='mnist', **kw):
  return presets.get_config(model, dataset, 'small').replace(**kw)


@pytest.mark.parametrize('dataset,latent', [('atari_frames', (21, 21)), ('mnist', (7, 7)), ('frey', (7, 5))])
@pytest.mark.parametrize('k', [1, 8])
def test_fcvae_shapes(dataset, latent, k):
  cfg = _cfg(dataset=dataset, filters=k)
  model = models.build_model(cfg)
  x = tf.random.uniform((2,) + cfg.image_shape)
  out = model(x, training=True)
  assert model.latent_shape == latent + (k,)
  for key in ('mu', 'logvar', 'z'):
    assert out[key].shape == (2,) + latent + (k,)
  assert out['logits'].shape == (2,) + cfg.image_shape
  # The encoder's intermediate maps: 84 -> 42 -> 21 (spec 3.3).
  assert model.enc1(x).shape[1:3] == (cfg.height // 2, cfg.width // 2)


def test_rgb_deep_fcvae_and_linear_heads():
  cfg = _cfg(dataset='atari_frames', channels=3, depth='deep', filters=4)
  model = models.build_model(cfg)
  assert model(tf.zeros((1, 84, 84, 3)))['logits'].shape == (1, 84, 84, 3)
  assert model.enc3 is not None and model.dec1 is not None
  shallow = models.build_model(cfg.replace(depth='shallow'))
  assert shallow.enc3 is None and shallow.count_params() < model.count_params()
  for head in (model.mu_head, model.logvar_head):
    assert head.activation.__name__ == 'linear'          # S:L894-895
  # Negative means are reachable (a ReLU head could not give them).
  mu, _ = model.encode(tf.random.uniform((4, 84, 84, 3)))
  assert float(tf.reduce_min(mu)) < 0 < float(tf.reduce_max(mu))


@pytest.mark.parametrize('bn,before,after', [('none', False, False), ('before', True, False),
                                             ('after', False, True), ('both', True, True)])
def test_bn_placement(bn, before, after):
  model = models.build_model(_cfg(bn=bn, filters=4))
  assert (model.bn_before is not None) == before and (model.bn_after is not None) == after
  if after:
    # BN after the latent acts on z: decoding two different z with one repeated keeps inference mode batch-independent.
    z = tf.random.normal((3,) + model.latent_shape)
    one = model.decode(z[:1], training=False)
    np.testing.assert_allclose(model.decode(z, training=False)[:1].numpy(), one.numpy(), atol=1e-5)
    assert model.bn_after.moving_mean.shape == (4,)


def test_table_3_1_and_3_2_shapes():
  fc = models.build_model(_cfg('ae_fc'))
  x = tf.random.uniform((2, 28, 28, 1))
  assert fc.encode(x).shape == (2, 32) and fc(x)['logits'].shape == (2, 28, 28, 1)
  assert fc.count_params() == (784 * 32 + 32) + (32 * 784 + 784) + 2 * 32   # + the code Gaussian's 2 x 32
  conv = models.build_model(_cfg('ae_conv'))
  h = conv.conv1(x)
  assert h.shape == (2, 28, 28, 32)
  h = conv.pool1(h)
  assert h.shape == (2, 14, 14, 32)
  h = conv.pool2(conv.conv2(h))
  assert h.shape == (2, 7, 7, 4)                        # Table 3.2's (4, 7, 7) code
  h = conv.deconv1(conv.up1(h))
  assert h.shape == (2, 14, 14, 32)
  assert conv.deconv2(conv.up2(h)).shape == (2, 28, 28, 1)


def test_dense_vae_at_64():
  cfg = presets.get_config('vae', 'synth_dsprites', 'small')
  model = models.build_model(cfg)
  out = model(tf.zeros((2, 64, 64, 1)), training=True)
  assert out['mu'].shape == (2, 10) and out['logits'].shape == (2, 64, 64, 1)
  assert model.enc_fc.units == 512 and model.dec_fc.units == 512      # Table 1's FC 512


def test_checkpoint_keeps_bn_statistics(tmp_path):
  cfg = _cfg(bn='both', filters=2)
  model = models.build_model(cfg)
  model(tf.random.uniform((8, 28, 28, 1)) * 3.0, training=True)      # moves the moving statistics
  path = tf.train.Checkpoint(model=model).save(str(tmp_path / 'ck'))
  again = models.build_model(cfg)
  tf.train.Checkpoint(model=again).restore(path).assert_existing_objects_matched()
  np.testing.assert_allclose(again.bn_before.moving_mean.numpy(), model.bn_before.moving_mean.numpy())
  x = tf.random.uniform((2, 28, 28, 1))
  np.testing.assert_allclose(again(x)['logits'].numpy(), model(x)['logits'].numpy(), atol=1e-6)


def test_config_refuses_bad_values():
  with pytest.raises(ValueError, match='beta'):
    _cfg(beta=-1.0).validate()
  with pytest.raises(ValueError, match='kl_mode'):
    _cfg(kl_mode='winner').validate()
  with pytest.raises(ValueError, match='colour'):
    presets.get_config('fcvae', 'mnist', 'small', colour='rgb')
