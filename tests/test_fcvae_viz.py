"""The pictures of the results chapter: best-of-10 by self-consistency, traversals and noise strips set what they
say, mean |mu| maps, the curves and the beta-sweep plot."""

import csv
import os

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.fcvae import models
from rlcv_tf.fcvae import presets
from rlcv_tf.fcvae import viz


@pytest.fixture(scope='module')
def fcvae():
  tf.keras.utils.set_random_seed(0)
  return models.build_model(presets.get_config('fcvae', 'mnist', 'tiny'))


@pytest.fixture(scope='module')
def images():
  return np.random.default_rng(0).uniform(size=(6, 28, 28, 1)).astype(np.float32)


def test_best_of_prior_keeps_the_most_self_consistent_draw(fcvae):
  best = viz.best_of_prior(fcvae, num=3, candidates=10, seed=1)
  np.testing.assert_allclose(best['errors'], best['all_errors'].min(axis=1), rtol=1e-6)
  # The error by hand for the chosen z: decode, encode (mean), decode again.
  z = best['z'][:1]
  x = tf.sigmoid(fcvae.decode(z)).numpy()
  again = tf.sigmoid(fcvae.decode(fcvae.encode(x)[0])).numpy()
  assert best['errors'][0] == pytest.approx(np.sqrt(((again - x) ** 2).sum()), rel=1e-4)
  np.testing.assert_allclose(best['images'][:1], x, atol=1e-6)


def test_traversals_set_the_unit_or_the_filter(fcvae, images):
  mu = fcvae.encode(images[:1])[0].numpy()[0]
  out = viz.traversal(fcvae, images[0], unit=(1, 2, 0), values=(-3.0, 3.0))
  z = np.stack([mu, mu])
  z[0, 1, 2, 0], z[1, 1, 2, 0] = -3.0, 3.0
  np.testing.assert_allclose(out, tf.sigmoid(fcvae.decode(z)).numpy(), atol=1e-6)
  out = viz.traversal(fcvae, images[0], filter_index=1, values=(2.0,))
  z = mu.copy()[None]
  z[..., 1] = 2.0
  np.testing.assert_allclose(out, tf.sigmoid(fcvae.decode(z)).numpy(), atol=1e-6)
  k = fcvae.latent_shape[-1]
  sheet = viz.traversal_sheet(fcvae, images[0], values=np.linspace(-3, 3, 5))
  assert sheet.shape == (k * 29 + 1, 5 * 29 + 1, 3)
  assert viz.noise_strip(fcvae, images[0], scales=(0, 1)).shape == (k * 29 + 1, 2 * 29 + 1, 3)


def test_noise_strip_zero_noise_is_the_reconstruction(fcvae, images):
  sheet = viz.noise_strip(fcvae, images[0], scales=(0.0,))
  recon = viz.reconstruct(fcvae, images[:1])[0, :, :, 0]
  expected = np.clip(np.round(recon * 255), 0, 255).astype(np.uint8)
  np.testing.assert_array_equal(sheet[1:29, 1:29, 0], expected)


def test_mean_abs_mu_and_latent_maps(fcvae, images):
  mean_map = viz.mean_abs_mu(fcvae, images, batch=4)
  np.testing.assert_allclose(mean_map, np.abs(fcvae.encode(images)[0].numpy()).mean(axis=0), rtol=1e-5)
  k = fcvae.latent_shape[-1]
  assert viz.latent_map_sheet(fcvae, images[:2]).shape == (2 * 29 + 1, (1 + k) * 29 + 1, 3)
  assert viz.mean_activation_sheet(mean_map, size=28).shape == (29 + 1, k * 29 + 1, 3)


def test_curves_and_beta_sweep(tmp_path):
  rows = [{'epoch': e, 'step': 10 * e, 'learning_rate': 1e-3, 'train_recon': 100 - e, 'train_kl': 5 + e,
           'val_recon': 101 - e, 'val_kl': 5 + e, 'val_loss': 106.0} for e in (1, 2, 3)]
  png = viz.write_curves(rows, str(tmp_path / 'curves.csv'), str(tmp_path / 'curves.png'))
  with open(tmp_path / 'curves.csv') as f:
    read = list(csv.DictReader(f))
  assert [float(r['train_recon']) for r in read] == [99, 98, 97]
  pytest.importorskip('matplotlib')
  assert png and os.path.getsize(png) > 1000
  path = viz.plot_beta_sweep([{'beta': b, 'recon': 100 / (1 + b), 'kl': 10 / (1 + b)} for b in (0, 1, 4)],
                             str(tmp_path / 'sweep.png'))
  assert os.path.getsize(path) > 1000


def test_write_sheets_for_an_autoencoder(tmp_path, images):
  ae = models.build_model(presets.get_config('ae_conv', 'mnist', 'tiny'))
  ae.fit_code_gaussian(images)
  codes = ae.encode(images).numpy()
  np.testing.assert_allclose(ae.code_mean.numpy(), codes.mean(axis=0), rtol=1e-5, atol=1e-6)
  out = viz.write_sheets(ae, images, str(tmp_path), num_mean=6)
  assert 'mcmc' not in out and 'latent_maps' in out
  assert all(os.path.exists(p) for p in out.values())
