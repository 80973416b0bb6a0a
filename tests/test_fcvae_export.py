"""SavedModel export of the seed-002 models: every endpoint of the reloaded model matches Keras in inference mode
(BN statistics moved off their initial values first, so a model exported in training mode would differ). The
Table 3.2 autoencoder's export is reloaded in test_fcvae_training.py."""

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.fcvae import export
from rlcv_tf.fcvae import models
from rlcv_tf.fcvae import presets

CASES = {
    'fcvae': presets.get_config('fcvae', 'mnist', 'tiny').replace(bn='both', depth='deep'),
    'vae': presets.get_config('vae', 'mnist', 'tiny'),
    'ae_fc': presets.get_config('ae_fc', 'frey', 'tiny'),
}


@pytest.fixture(scope='module', params=sorted(CASES))
def exported(request, tmp_path_factory):
  tf.keras.utils.set_random_seed(0)
  cfg = CASES[request.param]
  model = models.build_model(cfg)
  rng = np.random.default_rng(0)
  x = rng.uniform(size=(5,) + cfg.image_shape).astype(np.float32)
  for _ in range(3):
    model(x * 2.0, training=True)                          # BN moving statistics away from (0, 1)
  if not model.variational:
    model.fit_code_gaussian(x)
  path = str(tmp_path_factory.mktemp(request.param) / 'saved_model')
  export.export_model(model, path)
  return model, tf.saved_model.load(path), x


def test_endpoints_match_keras(exported):
  model, served, x = exported
  if model.variational:
    mean, log_variance = model.encode(x, training=False)
    enc = served.encode(x)
    np.testing.assert_allclose(enc['mean'].numpy(), mean.numpy(), atol=1e-5)
    np.testing.assert_allclose(enc['log_variance'].numpy(), log_variance.numpy(), atol=1e-5)
  else:
    mean = model.encode(x, training=False)
    np.testing.assert_allclose(served.encode(x)['code'].numpy(), mean.numpy(), atol=1e-5)
  np.testing.assert_allclose(served.reconstruct(x)['images'].numpy(),
                             tf.sigmoid(model.decode(mean, training=False)).numpy(), atol=1e-5)
  z = np.random.default_rng(1).normal(size=(4,) + tuple(model.latent_shape)).astype(np.float32)
  np.testing.assert_allclose(served.generate(z)['images'].numpy(),
                             tf.sigmoid(model.decode(z, training=False)).numpy(), atol=1e-5)
  out = served.sample(tf.constant(3))
  assert out['images'].shape == (3,) + tuple(model.image_shape) and out['z'].shape == (3,) + tuple(model.latent_shape)
  np.testing.assert_allclose(out['images'].numpy(), tf.sigmoid(model.decode(out['z'], training=False)).numpy(),
                             atol=1e-5)
  if not model.variational:                              # AE samples come from the fitted code Gaussian
    codes = served.sample(tf.constant(2000))['z'].numpy()
    np.testing.assert_allclose(codes.mean(axis=0), model.code_mean.numpy(),
                               atol=5 * model.code_std.numpy().max() / np.sqrt(2000))
  images = out['images'].numpy()
  assert images.min() >= 0.0 and images.max() <= 1.0
  assert 'serving_default' in served.signatures
