"""Seed-002 training runs: what a run writes, resume, the resume guard, the held-out scores against NumPy, the
learning check failing on an untrained model, MIG / symbol accuracy in eval.json, and (slow) a short run that learns."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.core import runs
from rlcv_tf.fcvae import data as data_lib
from rlcv_tf.fcvae import models
from rlcv_tf.fcvae import presets
from rlcv_tf.fcvae import training


def _run(**kw):
  defaults = dict(steps=6, num_train=64, num_eval=32, num_curve=16, summary_every=2, image_every=3,
                  log_interval_s=0.0)
  defaults.update(kw)
  return presets.RunConfig(**defaults)


def test_tiny_run_writes_everything_resumes_and_guards_its_architecture(tmp_path):
  cfg = presets.get_config('fcvae', 'synth_dsprites', 'tiny')
  logdir = str(tmp_path / 'run')
  lines = []
  result = training.train(cfg, _run(), logdir, print_fn=lines.append)
  assert result.steps == 6
  for name in ('config.json', 'eval.json', 'curves.csv', 'saved_model/saved_model.pb', 'samples/step_0000006.png',
               'samples/final_recon.png', 'samples/final_latent_maps.png', 'samples/final_mcmc.png'):
    assert os.path.exists(os.path.join(logdir, name)), name
  with open(os.path.join(logdir, 'eval.json')) as f:
    ev = json.load(f)
  assert ev['step'] == 6 and 'learning_check_passed' in ev and 0.0 <= ev['mig'] <= 1.0
  assert set(ev['mig_per_factor']) == {'shape', 'scale', 'orientation', 'posX', 'posY'}
  # 16 steps per epoch of 4 images: no epoch ended in 6 steps, so one row at the end.
  assert len(open(os.path.join(logdir, 'curves.csv')).read().strip().splitlines()) == 2
  # Resume: continues from step 6 to 20 (an epoch row at 16 and one at 20).
  result = training.train(cfg, _run(steps=20), logdir, print_fn=lines.append)
  assert result.steps == 20 and any('resumed from' in l for l in lines)
  rows = open(os.path.join(logdir, 'curves.csv')).read().strip().splitlines()[1:]
  assert [float(r.split(',')[1]) for r in rows] == [6, 16, 20]
  with pytest.raises(runs.ResumeMismatchError, match='filters'):
    training.train(cfg.replace(filters=3), _run(steps=30), logdir, print_fn=lines.append)


def test_held_out_scores_match_numpy_and_the_check_fails_untrained():
  cfg = presets.get_config('fcvae', 'synth_dsprites', 'tiny')
  tf.keras.utils.set_random_seed(1)
  model = models.build_model(cfg)
  images = data_lib.load_split('synth_dsprites', None, 'val', 24).images
  mean_image = images.mean(axis=0)
  results = training.evaluate(cfg, model, images, mean_image, batch=10)
  out = model(images, training=False)
  p = tf.sigmoid(out['logits']).numpy().astype(np.float64)
  bce = -(images * np.log(p) + (1 - images) * np.log(1 - p)).reshape(24, -1).sum(axis=1)
  assert results['bce_sum'] == pytest.approx(bce.mean(), rel=1e-4)
  mu, lv = out['mu'].numpy(), out['logvar'].numpy()
  kl = 0.5 * (np.exp(lv) + mu ** 2 - 1 - lv).reshape(24, -1).sum(axis=1)
  assert results['kl_neuron'] == pytest.approx(kl.mean(), rel=1e-4)
  q = np.clip(mean_image, 1e-7, 1 - 1e-7)
  ref = -(images * np.log(q) + (1 - images) * np.log(1 - q)).reshape(24, -1).sum(axis=1).mean()
  assert results['mean_image_bce'] == pytest.approx(ref, rel=1e-6)
  assert results['entropy_floor'] == pytest.approx(0.0)            # binary images: no floor
  passed, line = training.learning_check(results)
  assert not passed and 'FAILED' in line


def test_objective_adds_the_weighted_ortho_penalty():
  cfg = presets.get_config('fcvae', 'mnist', 'tiny').replace(kl_mode='wta_competitive')
  model = models.build_model(cfg)
  x = tf.random.uniform((3, 28, 28, 1))
  plain = training.objective(cfg, model, x, training=False)
  with_ortho = training.objective(cfg.replace(ortho_weight=0.5), model, x, training=False)
  w = model.mu_head.kernel.numpy().reshape(-1, cfg.filters).astype(np.float64)
  penalty = np.sum((w.T @ w - np.eye(cfg.filters)) ** 2)
  assert with_ortho['ortho'].numpy() == pytest.approx(penalty, rel=1e-4)
  assert with_ortho['loss'].numpy() == pytest.approx(plain['loss'].numpy() + 0.5 * penalty, rel=1e-5)
  assert 'entropy' in plain


def test_entropy_floor_of_intensities():
  x = np.full((1, 2, 2, 1), 0.5, np.float32)
  results = training._binary_entropy_sum(x)
  assert results[0] == pytest.approx(4 * np.log(2))


def test_symbol_accuracy_reaches_eval_for_spatial_latents():
  cfg = presets.get_config('fcvae', 'dsrl', 'tiny')
  model = models.build_model(cfg)
  split = data_lib.load_split('dsrl', None, 'val', 12)
  scores = training.disentanglement_scores(cfg, model, split)
  assert 0.0 <= scores['symbol_accuracy'] <= 1.0 and 'symbol_mapping' in scores
  dense = models.build_model(presets.get_config('vae', 'dsrl', 'tiny'))
  assert 'symbol_accuracy' not in training.disentanglement_scores(cfg, dense, split)


def test_autoencoder_run_reports_summed_bce_and_exports(tmp_path):
  cfg = presets.get_config('ae_conv', 'dsrl', 'tiny')
  result = training.train(cfg, _run(steps=4, num_train=16), str(tmp_path / 'ae'), print_fn=lambda s: None)
  assert 'bce_sum' in result.evaluation and 'kl_neuron' not in result.evaluation
  served = tf.saved_model.load(result.saved_model)
  assert served.encode(np.zeros((1, 84, 84, 1), np.float32))['code'].shape == (1, 21, 21, 4)


def test_atari_frames_folder_streams_through_the_frame_reader(tmp_path):
  """A folder of 84x84 grey PNGs without the collector's index (so no val split): the run reads it through
  datasets.atari_frames, scores in-sample and says so; --colour=rgb on grey frames is refused."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from rlcv_tf.datasets import dsprites  # pylint: disable=g-import-not-at-top
  frames = tmp_path / 'frames'
  frames.mkdir()
  for i, img in enumerate(dsprites.dsrl_world(12, seed=4)['imgs'][..., 0]):
    Image.fromarray((img * 255).astype(np.uint8)).save(frames / f'{i:03d}.png')
  cfg = presets.get_config('fcvae', 'atari_frames', 'tiny')
  lines = []
  result = training.train(cfg, _run(steps=3, data_dir=str(frames), num_eval=8), str(tmp_path / 'run'),
                          print_fn=lines.append)
  assert result.steps == 3 and 'in-sample' in result.evaluation['held_out_split']
  assert any('12 training images' in l for l in lines)
  with pytest.raises(data_lib.DataError, match='colour'):
    training.train(cfg.replace(channels=3), _run(steps=3, data_dir=str(frames), num_eval=8), str(tmp_path / 'rgb'),
                   print_fn=lines.append)


def test_frey_faces_are_read_from_the_users_mat_file(tmp_path):
  """frey_rawface.mat holds ff [560, N] uint8, one face per column, 20 pixels per row; split in order 80/10/10 %."""
  from scipy import io as scipy_io  # pylint: disable=g-import-not-at-top
  faces = np.random.default_rng(0).integers(0, 256, size=(50, 28, 20)).astype(np.uint8)
  scipy_io.savemat(tmp_path / 'frey_rawface.mat', {'ff': faces.reshape(50, 560).T})
  data_lib.check_data('frey', str(tmp_path))
  train, val, test = (data_lib.load_split('frey', str(tmp_path), s).images for s in ('train', 'val', 'test'))
  assert train.shape == (40, 28, 20, 1) and len(val) == len(test) == 5
  np.testing.assert_allclose(train[3, :, :, 0], faces[3] / 255.0, rtol=1e-6)
  np.testing.assert_allclose(test[-1, :, :, 0], faces[-1] / 255.0, rtol=1e-6)
  with pytest.raises(data_lib.DataError, match='frey_rawface.mat'):
    data_lib.check_data('frey', str(tmp_path / 'nowhere'))


def test_beta_sweep_runs_each_beta_and_writes_the_rows(tmp_path, monkeypatch):
  """The sweep's glue, with `train` replaced by a stand-in that records its calls (real runs are tested above)."""
  calls = []

  def fake_train(cfg, run, logdir, print_fn):
    calls.append((cfg.beta, logdir))
    ev = {'beta': cfg.beta, 'bce_sum': 100.0 + cfg.beta, 'kl_neuron': 50.0 / (1.0 + cfg.beta), 'kl': 0.0}
    return training.TrainResult(1, {}, ev, '', 0.0, 0.0)

  monkeypatch.setattr(training, 'train', fake_train)
  cfg = presets.get_config('fcvae', 'dsrl', 'tiny')
  rows = training.beta_sweep(cfg, _run(), [0, 0.5, 4], str(tmp_path), lambda s: None)
  assert calls == [(b, str(tmp_path / f'beta_{b:g}')) for b in (0.0, 0.5, 4.0)]
  assert rows == [{'beta': b, 'recon': 100.0 + b, 'kl': 50.0 / (1.0 + b)} for b in (0.0, 0.5, 4.0)]
  assert json.load(open(tmp_path / 'beta_sweep.json'))['rows'] == rows
  pytest.importorskip('matplotlib')
  assert os.path.exists(tmp_path / 'beta_sweep.png')


@pytest.mark.slow
def test_a_short_fcvae_run_learns(tmp_path):
  """400 steps of the small shallow FCVAE (k = 8, beta 1) on synth_dsprites: held-out reconstructions must beat the
  mean image's excess BCE by the learning check's margin."""
  cfg = presets.get_config('fcvae', 'synth_dsprites', 'small')
  result = training.train(cfg, _run(steps=400, num_train=3000, num_eval=300, num_curve=100, summary_every=50,
                                    image_every=400), str(tmp_path / 'run'), print_fn=print)
  assert result.evaluation['learning_check_passed'], result.evaluation['learning_check']
