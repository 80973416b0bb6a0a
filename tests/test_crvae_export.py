"""SavedModel export with a condition input (rlcv_tf.crvae.export; off for the Chapter 5 models).

A small conditional model (encoder and decoder see the condition, a learned causal LSTM prior p(z | c)) is
exported with `condition_shape`, reloaded, and every endpoint is compared with the Keras model. The unconditional
export of the Chapter 5 models is checked end to end in test_crvae_training.py.
"""

import keras
from keras import ops
import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.crvae import export
from rlcv_tf.core.vaegan import networks

LATENT, IMAGE, N = (2, 2, 4), (4, 4, 3), 3


class TinyConditionalVAE(keras.Model):
  """encode(x, c) -> (mu, logvar); decode(z, c) -> tanh image; prior = CausalLSTMPrior over c repeated per step."""

  latent_shape, image_shape = LATENT, IMAGE

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    self.enc = keras.layers.Dense(2 * int(np.prod(LATENT)), name='enc')
    self.dec = keras.layers.Dense(int(np.prod(IMAGE)), name='dec')
    self.bn = keras.layers.BatchNormalization(name='bn')
    self.prior = networks.CausalLSTMPrior(LATENT, num_blocks=2, hidden=8, name='prior')

  def encode(self, x, condition, training=False):
    h = self.enc(ops.concatenate([ops.reshape(x, (-1, int(np.prod(IMAGE)))), condition], -1))
    mu, logvar = ops.split(h, 2, axis=-1)
    return ops.reshape(mu, (-1,) + LATENT), ops.reshape(logvar, (-1,) + LATENT)

  def decode(self, z, condition, training=False):
    h = self.bn(self.dec(ops.concatenate([ops.reshape(z, (-1, int(np.prod(LATENT)))), condition], -1)),
                training=training)
    return ops.reshape(ops.tanh(h), (-1,) + IMAGE)

  def call(self, x, condition, training=False):
    mu, _ = self.encode(x, condition, training=training)
    return self.decode(mu, condition, training=training)


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
  keras.utils.set_random_seed(0)
  model = TinyConditionalVAE()
  rng = np.random.default_rng(0)
  c = np.sign(rng.normal(size=(5, N))).astype(np.float32)
  x = rng.uniform(-1, 1, size=(5,) + IMAGE).astype(np.float32)
  model(x, c)
  model.prior.params(c)
  for i, w in enumerate(model.weights):      # non-trivial BN statistics and prior
    w.assign(w.numpy() + 0.01 * (i + 1))
  path = str(tmp_path_factory.mktemp('export') / 'saved_model')
  export.export_vae(model, path, condition_shape=(N,), condition_name='attributes')
  return model, tf.saved_model.load(path), c, x


def test_conditional_endpoints_match_the_keras_model(exported):
  model, served, c, x = exported
  noise = np.random.default_rng(1).normal(size=(5,) + LATENT).astype(np.float32)
  mu_p, logvar_p = model.prior.params(c)
  z = mu_p + tf.exp(0.5 * logvar_p) * noise
  out = served.generate(c, noise)
  np.testing.assert_allclose(out['z'].numpy(), z.numpy(), atol=1e-5)
  np.testing.assert_allclose(out['images'].numpy(), model.decode(z, c).numpy(), atol=1e-5)
  np.testing.assert_allclose(served.decode(z, c)['images'].numpy(), model.decode(z, c).numpy(), atol=1e-5)
  mean, log_variance = model.encode(x, c)
  enc = served.encode(x, c)
  np.testing.assert_allclose(enc['mean'].numpy(), mean.numpy(), atol=1e-5)
  np.testing.assert_allclose(enc['log_variance'].numpy(), log_variance.numpy(), atol=1e-5)
  np.testing.assert_allclose(served.reconstruct(x, c)['images'].numpy(), model.decode(mean, c).numpy(), atol=1e-5)
  # The condition matters (a model that ignored it would pass the checks above only by accident).
  assert np.abs(served.decode(z, -c)['images'].numpy() - out['images'].numpy()).max() > 1e-3
  sample = served.sample(c)
  assert sample['images'].shape == (5,) + IMAGE and sample['z'].shape == (5,) + LATENT
  signature = served.signatures['serving_default']
  assert set(signature.structured_input_signature[1]) == {'attributes', 'noise'}


def test_a_wrong_condition_width_is_refused(exported):
  _, served, c, _ = exported
  noise = np.zeros((5,) + LATENT, np.float32)
  with pytest.raises((ValueError, TypeError)):
    served.generate(np.concatenate([c, c], -1), noise)
