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


def _hsv_images(hues, saturation=1.0, size=8):
  """[N, size, size, 3] in [-1, 1]: a grey border and a centre of the given hue (per image), full value."""
  out = np.zeros((len(hues), size, size, 3), np.float32)            # grey (0 in [-1, 1])
  for i, h in enumerate(hues):
    rgb = tf.image.hsv_to_rgb(tf.constant([[[h, saturation, 1.0]]], tf.float32)).numpy()[0, 0]
    out[i, size // 4:size - size // 4, size // 4:size - size // 4] = rgb * 2.0 - 1.0
  return out


def test_colour_histogram_bins_hues_greys_and_wraps_red():
  # 12 bins of 1/12 each: hue 1/3 (green) is bin 4, 0.6 (blue) bin 7; a grey subject goes to the last bin.
  hist = learning_check.colour_histogram(np.concatenate([_hsv_images([1 / 3 + 0.01, 0.6]),
                                                         _hsv_images([0.6], saturation=0.1)]))
  assert hist.shape == (learning_check.GREY_BIN + 1,)
  assert hist[4] == 1 and hist[7] == 1 and hist[learning_check.GREY_BIN] == 1 and hist.sum() == 3
  # Half the subject's pixels at hue 0.98 and half at 0.02 is red (bin 0), not their plain average 0.5 (cyan).
  mixed = _hsv_images([0.98])
  mixed[:, 2:6, 4:6] = _hsv_images([0.02])[:, 2:6, 4:6]
  assert learning_check.colour_histogram(mixed)[0] == 1


def test_colour_distance_is_zero_for_the_same_mix_and_one_for_disjoint_colours():
  a = _hsv_images([0.0, 1 / 3 + 0.01, 0.6, 0.6])
  assert learning_check.colour_distance(a, a[::-1]) == 0.0
  assert learning_check.colour_distance(a, _hsv_images([0.8, 0.8])) == 1.0
  assert learning_check.colour_distance(a, a[2:]) == pytest.approx(0.5)   # {R, G, B, B} vs {B, B}


def test_ex_post_numbers_are_checked_and_prior_numbers_only_shown():
  diag = dict(reconstruction_ratio=0.3, kl_nats=100.0, sample_spread=0.2, sample_colour_distance=0.6,
              expost_spread=0.8, expost_colour_distance=0.15)
  passed, line = learning_check.check(diag)
  assert passed, line
  assert 'ex-post samples colour mix 0.15' in line and 'Not checked: N(0, I) samples vary 0.20x' in line
  assert not learning_check.check(diag, learning_check.Thresholds(check_prior_samples=True))[0]
  for key, bad in (('expost_spread', 0.1), ('expost_colour_distance', 0.5)):
    passed, line = learning_check.check(dict(diag, **{key: bad}))
    assert not passed and 'FAILED: ex-post samples' in line, key
  # Without ex-post numbers the prior samples are what is checked.
  prior_only = {k: v for k, v in diag.items() if not k.startswith('expost')}
  passed, line = learning_check.check(prior_only)
  assert not passed and 'N(0, I) samples vary 0.20x' in line


def test_diagnostics_measure_the_ex_post_sampler_when_given_one():
  from rlcv_tf.crvae import expost_prior  # pylint: disable=g-import-not-at-top
  w, z, x = _data()
  vae = _LinearVAE(w, logvar=-1.0)
  narrow = expost_prior.ExPostGaussian((1, 1, N_Z))
  narrow.set_moments(np.zeros(N_Z), 0.01 * np.eye(N_Z), num_images=2)     # samples 10x narrower than the data
  diag = learning_check.diagnostics(vae, x, num_samples=400, expost=narrow)
  assert diag['sample_spread'] == pytest.approx(1.0, abs=0.15)
  assert diag['expost_spread'] == pytest.approx(0.1, abs=0.02)
  assert 'expost_colour_distance' in diag and 'sample_colour_distance' in diag
