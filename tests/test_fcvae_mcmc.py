"""The MCMC re-encoding sampler (Eq. 3.45): a fixed point with identity maps, the recurrence on a linear pair, the
early stop, and a chain through a real model."""

import numpy as np
import tensorflow as tf

from rlcv_tf.fcvae import mcmc
from rlcv_tf.fcvae import models
from rlcv_tf.fcvae import presets


def test_identity_encoder_and_decoder_are_a_fixed_point():
  z0 = np.random.default_rng(0).uniform(size=(3, 4, 4, 2)).astype(np.float32)
  identity_decode = lambda z: z
  identity_encode = lambda x: (x, tf.fill(tf.shape(x), -60.0))     # sigma = e^-30: a draw is the mean
  for sample_z in (True, False):
    result = mcmc.run_chain(identity_decode, identity_encode, z0, steps=30, record=(1, 7, 19), sample_z=sample_z)
    assert sorted(result['images']) == [0, 1, 7, 19] and result['steps'] == 30
    for image in result['images'].values():
      np.testing.assert_allclose(image, z0, atol=1e-6)
    assert max(result['changes']) < 1e-6
  np.testing.assert_allclose(result['z'], z0, atol=1e-6)


def test_chain_follows_the_recurrence():
  """Decoder x = z / 2, encoder mean x: x_t = z0 / 2^(t+1) (x_0 = Dec(z_0))."""
  z0 = np.ones((1, 3), np.float32)
  result = mcmc.run_chain(lambda z: 0.5 * z, lambda x: (x, tf.zeros_like(x) - 60.0), z0, steps=5, record=(1, 2, 5))
  for t in (0, 1, 2, 5):
    np.testing.assert_allclose(result['images'][t], z0 / 2 ** (t + 1), rtol=1e-6)
  # Stop once a step changes x by less than the tolerance: |x_t - x_{t-1}| = 2^-(t+1) < 0.01 at t = 6.
  stopped = mcmc.run_chain(lambda z: 0.5 * z, lambda x: (x, tf.zeros_like(x) - 60.0), z0, steps=50, record=(),
                           tolerance=0.01)
  assert stopped['steps'] == 6 and 6 in stopped['images']


def test_posterior_noise_moves_the_chain():
  z0 = np.zeros((2, 5), np.float32)
  result = mcmc.run_chain(lambda z: z, lambda x: (x, tf.zeros_like(x)), z0, steps=3, record=(3,), seed=1)
  assert np.abs(result['images'][3]).mean() > 0.3            # three unit-variance draws accumulated


def test_model_chain_records_the_draft_steps():
  cfg = presets.get_config('fcvae', 'mnist', 'tiny')
  model = models.build_model(cfg)
  result = mcmc.model_chain(model, num=2, steps=7, record=(1, 2, 7))
  assert sorted(result['images']) == [0, 1, 2, 7]
  assert result['images'][7].shape == (2, 28, 28, 1)
  assert mcmc.chain_strip(result).shape == (4, 2, 28, 28, 1)
  assert 0.0 <= result['images'][7].min() and result['images'][7].max() <= 1.0
