"""The learning check separates a model that uses its latent from a collapsed one (crvae/learning_check.py).

Two hand-made models on data that is exactly linear in a Gaussian latent, x = W z: a perfect one (encoder = the
pseudo-inverse, decoder = W, so reconstructions are exact and prior samples are distributed like the data) and a
collapsed one (posterior = prior, decoder = the mean image). Every number is checked against NumPy.
"""

import types

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.crvae import learning_check

R, C, N_Z, T = 4, 3, 4, 2


def _data(n=200, seed=0):
  rng = np.random.default_rng(seed)
  w = rng.normal(size=(N_Z, R * R * C)).astype(np.float32) * 0.3
  z = rng.normal(size=(n, N_Z)).astype(np.float32)
  return w, z, (z @ w).reshape(n, R, R, C)


class _LinearVAE:
  """encode/decode of a 1x1xN_Z latent; `collapsed` ignores the input and decodes the mean image."""

  def __init__(self, w, mean_image=None, logvar=0.0):
    self.w, self.mean_image, self.logvar = w, mean_image, logvar
    self.num_blocks = T
    self.config = types.SimpleNamespace(latent_shape=(1, 1, N_Z))

  def encode(self, x, training=False):
    del training
    x = np.asarray(x).reshape(len(x), -1)
    if self.mean_image is not None:
      mu = np.zeros((len(x), N_Z), np.float32)
    else:
      mu = x @ np.linalg.pinv(self.w)
    mu = tf.constant(mu.reshape(-1, 1, 1, N_Z), tf.float32)
    return mu, tf.fill(tf.shape(mu), tf.constant(self.logvar, tf.float32))

  def decode(self, z, training=False):
    del training
    z = np.asarray(z).reshape(len(z), N_Z)
    if self.mean_image is not None:
      return tf.constant(np.repeat(self.mean_image[None], len(z), axis=0))
    return tf.constant((z @ self.w).reshape(len(z), R, R, C))


def test_a_model_that_uses_its_latent_passes_with_numpy_values():
  w, z, x = _data()
  diag = learning_check.diagnostics(_LinearVAE(w, logvar=-1.0), x, num_samples=400)
  assert diag['reconstruction_mse'] == pytest.approx(0.0, abs=1e-8)
  assert diag['mean_image_mse'] == pytest.approx(np.mean((x - x.mean(0)) ** 2), rel=1e-5)
  assert diag['reconstruction_ratio'] == pytest.approx(0.0, abs=1e-6)
  mu = z  # the pseudo-inverse recovers z exactly (W has full row rank)
  kl_units = 0.5 * (mu ** 2 + np.exp(-1.0) - 1.0 + 1.0)              # KL(N(mu, e^-1) || N(0, 1)) per unit
  assert diag['kl_nats'] == pytest.approx(kl_units.sum(1).mean(), rel=1e-4)
  half = N_Z // T
  assert diag['kl_block_0'] == pytest.approx(kl_units[:, :half].sum(1).mean(), rel=1e-4)
  assert diag['kl_block_1'] == pytest.approx(kl_units[:, half:].sum(1).mean(), rel=1e-4)
  assert diag['sample_spread'] == pytest.approx(1.0, abs=0.15)     # prior samples are distributed like the data
  # A 4-unit latent holds a few nats, so the KL floor is lowered for this toy (the default, 20, is for images).
  passed, line = learning_check.check(diag, learning_check.Thresholds(min_kl_nats=1.0))
  assert passed, line
  assert line.startswith('learning check passed')


def test_a_collapsed_model_fails_every_part_and_the_line_names_them():
  w, _, x = _data()
  diag = learning_check.diagnostics(_LinearVAE(w, mean_image=x.mean(0)), x)
  assert diag['reconstruction_ratio'] == pytest.approx(1.0, rel=1e-5)
  assert diag['kl_nats'] == pytest.approx(0.0, abs=1e-6)
  assert diag['sample_spread'] == pytest.approx(0.0, abs=1e-6)
  passed, line = learning_check.check(diag)
  assert not passed
  assert 'FAILED' in line and '1.00x the mean-image error' in line and 'KL 0.0 nats' in line
  assert 'vary 0.00x' in line


def test_thresholds_are_applied_one_by_one():
  diag = dict(reconstruction_ratio=0.5, kl_nats=25.0, sample_spread=0.4)
  assert learning_check.check(diag)[0]
  for key, bad in (('reconstruction_ratio', 0.7), ('kl_nats', 5.0), ('sample_spread', 0.1)):
    passed, line = learning_check.check(dict(diag, **{key: bad}))
    assert not passed, key
  strict = learning_check.Thresholds(max_reconstruction_ratio=0.4)
  assert not learning_check.check(diag, strict)[0]


def test_needs_two_held_out_images():
  w, _, x = _data(n=3)
  with pytest.raises(ValueError, match='at least 2 images'):
    learning_check.diagnostics(_LinearVAE(w), x[:1])
