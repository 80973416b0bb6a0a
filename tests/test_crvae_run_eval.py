"""Table 5.1 end to end (run_eval.py, launchers/crvae_eval.py): the held-out ELBO and block KLs against closed forms,
the inception score of a trained tiny run against a recomputation, the saved classifier reused, LSUN's missing
classifier, and the launcher's one-line errors."""

import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.core.vaegan import evaluation
from rlcv_tf.crvae import presets
from rlcv_tf.crvae import run_eval
from rlcv_tf.crvae import training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------------------- ELBO and KL per block


class LinearGaussianVAE:
  """q(z|x) = N(W x, diag(exp(lv))) with latents [B, 2, 2, 4] (T = 2 blocks of 2 channels); the decoder mean is
  A z + b on 4x4x1 images. With an identity output activation, E_q log N(x; A z + b, s^2 I) has a closed form."""

  likelihood = 'gaussian'

  def __init__(self, seed=0):
    rng = np.random.default_rng(seed)
    self.w = rng.normal(scale=0.3, size=(16, 16))
    self.lv = rng.normal(scale=0.5, size=16) - 1.0
    self.a = rng.normal(scale=0.4, size=(16, 16))
    self.b = rng.normal(scale=0.1, size=16)

  def posterior(self, x):
    mu = x.reshape(len(x), 16) @ self.w.T
    return mu, np.tile(self.lv, (len(x), 1))

  def encode(self, x, training=False):
    mu, lv = self.posterior(np.asarray(x, np.float64))
    return (tf.constant(mu.reshape(-1, 2, 2, 4), tf.float32), tf.constant(lv.reshape(-1, 2, 2, 4), tf.float32))

  def decode_logits(self, z, training=False):
    z = tf.reshape(tf.cast(z, tf.float64), (-1, 16))
    return tf.cast(tf.reshape(z @ self.a.T + self.b, (-1, 4, 4, 1)), tf.float32)


def closed_form_elbo(model, x, sigma):
  """Per-block KL and the ELBO by hand, in float64, for a flattened latent whose index i is (h, w, c) row-major."""
  mu, lv = model.posterior(x)
  kl_units = 0.5 * (mu ** 2 + np.exp(lv) - lv - 1.0)                        # [N, 16]
  channel = np.arange(16) % 4                                                # the c of unit (h, w, c)
  kl_blocks = np.stack([kl_units[:, channel // 2 == t].sum(1) for t in range(2)], axis=1).mean(0)
  mean = mu @ model.a.T + model.b                                            # E_q[A z + b]
  trace = np.einsum('ij,j,ij->', model.a, np.exp(lv[0]), model.a)            # tr(A Sigma A^T)
  sq = ((x.reshape(len(x), 16) - mean) ** 2).sum(1) + trace                  # E_q ||x - A z - b||^2
  ll = -0.5 * sq / sigma ** 2 - 8.0 * np.log(2 * np.pi * sigma ** 2)
  return ll.mean() - kl_blocks.sum(), ll.mean(), kl_blocks


def test_held_out_elbo_and_block_kls_match_closed_forms():
  model = LinearGaussianVAE()
  x = np.random.default_rng(1).normal(size=(40, 4, 4, 1))
  sigma = 0.7
  elbo, ll, kl_blocks = closed_form_elbo(model, x, sigma)
  got = evaluation.held_out_elbo(model, x.astype(np.float32), num_blocks=2, sigma=sigma, num_samples=4000,
                                 batch_size=16, output_activation=tf.identity)
  np.testing.assert_allclose(got['kl_per_block'], kl_blocks, rtol=1e-4)        # exact
  assert got['kl'] == pytest.approx(kl_blocks.sum(), rel=1e-4)
  assert got['log_likelihood'] == pytest.approx(ll, abs=0.02 * abs(ll))      # Monte Carlo, 4000 draws
  assert got['elbo'] == pytest.approx(elbo, abs=0.02 * abs(ll))
  assert got['elbo'] == pytest.approx(got['log_likelihood'] - got['kl'])
  with pytest.raises(ValueError, match='sigma'):
    evaluation.held_out_elbo(model, x, num_blocks=2)


def test_objective_sigma_makes_the_elbo_the_scaled_training_objective():
  """alpha * D = 2 sigma^2: -ELBO * alpha equals mse + alpha * KL up to a constant (spec §0)."""
  alpha, shape = 3e-4, (16, 16, 3)
  sigma = evaluation.objective_sigma(alpha, shape)
  d = np.prod(shape)
  assert alpha * d == pytest.approx(2 * sigma ** 2)
  sq = np.random.default_rng(0).random(d)
  neg_ll = 0.5 * sq.sum() / sigma ** 2 + 0.5 * d * np.log(2 * np.pi * sigma ** 2)
  assert alpha * (neg_ll - 0.5 * d * np.log(2 * np.pi * sigma ** 2)) == pytest.approx(sq.mean())


# ----------------------------------------------------------------------------------------- a tiny run, scored


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
  root = tmp_path_factory.mktemp('runs')
  logdir = str(root / 'birds_tiny')
  cfg = presets.get_preset('tiny_synthbirds_crvaegan')
  # expost_images=64: the ex-post Gaussian fitted after training from 64 images, not 2,048 (~20 s of encoding); the
  # scores below sample the N(0, I) prior and the two-stage model, not the ex-post one.
  run = training.RunConfig(dataset='synth_birds', steps=2, summary_every=1, image_every=2, num_eval_images=16,
                           grid_size=4, log_interval_s=0.0, expost_images=64)
  training.train(cfg, run, logdir, print_fn=lambda s: None)
  return logdir


def small_eval(**kw):
  fields = dict(is_samples=200, is_splits=4, num_eval_images=24, classifier_epochs=2, classifier_images=640,
                classifier_width=8, classifier_batch_size=32, batch_size=50, seed=3)
  fields.update(kw)
  return run_eval.EvalConfig(**fields)


@pytest.mark.slow      # trains a tiny run and a classifier (about 1 min on 2 idle cores)
def test_tiny_run_is_scored_and_the_classifier_is_reused(tiny_run):
  lines = []
  out = run_eval.evaluate_run(tiny_run, small_eval(), print_fn=lines.append)
  cfg = presets.get_preset('tiny_synthbirds_crvaegan')
  path = run_eval.default_classifier_path(tiny_run, 'synth_birds', cfg.resolution)
  assert path == os.path.join(os.path.dirname(tiny_run), 'classifiers', 'synth_birds_16px.keras')
  assert os.path.exists(path) and any('training the synth_birds classifier' in l for l in lines)
  with open(path[:-len('.keras')] + '.json') as f:
    note = json.load(f)
  assert note['dataset'] == 'synth_birds' and note['resolution'] == 16 and note['num_outputs'] == 10
  assert note['num_holdout'] == 64 and note['num_train'] == 576

  with open(os.path.join(tiny_run, 'eval.json')) as f:
    saved = json.load(f)
  assert 'step' in saved and 'eval/reconstruction_mse' in saved, 'the training entries are kept'
  for key in ('eval/inception_score', 'eval/inception_score_std', 'eval/elbo_nats', 'eval/kl_nats',
              'eval/classifier_accuracy', 'eval/elbo_sigma', 'eval/kl_early_mean', 'eval/kl_late_mean'):
    assert key in saved, key
  assert saved['eval/is_samples'] == 200 and saved['eval/is_splits'] == 4
  blocks = [saved[f'eval/kl_block_{t:02d}'] for t in range(1, 5)]
  assert sum(blocks) == pytest.approx(saved['eval/kl_nats'], rel=1e-6)
  assert saved['eval/elbo_sigma'] == pytest.approx(np.sqrt(cfg.alpha2 * 16 * 16 * 3 / 2))
  assert 1.0 <= saved['eval/inception_score'] <= 10.0

  # The IS recomputed outside run_eval: the same z draws, the restored decoder, softmax of the saved classifier.
  vae, _, _ = training.load_stage1(tiny_run)
  classifier = keras.models.load_model(path)
  z = [tf.random.stateless_normal((50,) + cfg.latent_shape, seed=(3, i)) for i in range(4)]
  images = np.concatenate([vae.decode(zi, training=False).numpy() for zi in z])
  probs = tf.nn.softmax(classifier(images, training=False)).numpy()
  mean, std = evaluation.inception_score(probs, num_splits=4)
  assert saved['eval/inception_score'] == pytest.approx(mean, rel=1e-4)
  assert saved['eval/inception_score_std'] == pytest.approx(std, rel=1e-3, abs=1e-6)

  # A second evaluation loads the saved classifier (no training) and reproduces the score.
  lines = []
  again = run_eval.evaluate_run(tiny_run, small_eval(), print_fn=lines.append)
  assert any('(loaded' in l for l in lines) and not any('training the' in l for l in lines)
  assert again['eval/inception_score'] == pytest.approx(out['eval/inception_score'], rel=1e-6)
  # A classifier of another data set or resolution is refused by name.
  with open(path[:-len('.keras')] + '.json', 'w') as f:
    json.dump({**note, 'resolution': 32}, f)
  with pytest.raises(run_eval.RunError, match='32 px'):
    run_eval.evaluate_run(tiny_run, small_eval(), print_fn=lambda s: None)
  with open(path[:-len('.keras')] + '.json', 'w') as f:
    json.dump(note, f)


@pytest.mark.slow
def test_stage2_run_is_scored_on_its_refined_images(tiny_run, tmp_path):
  from rlcv_tf.crvae import stage2
  run_dir = str(tmp_path / 'birds_tiny')
  shutil.copytree(tiny_run, run_dir)
  run = training.RunConfig(dataset='synth_birds', steps=2, summary_every=1, image_every=2, num_eval_images=16,
                           grid_size=4, log_interval_s=0.0)
  training.train_stage2(stage2.get_stage2_preset('stage2_tiny', batch_size=4), run, run_dir,
                        os.path.join(run_dir, 'stage2'), print_fn=lambda s: None)
  lines = []
  out = run_eval.evaluate_run(run_dir, small_eval(), stage=2, print_fn=lines.append)   # finds RUN/stage2
  assert out['eval/stage'] == 2 and any('at 32 px' in l for l in lines)
  assert os.path.exists(os.path.join(tmp_path, 'classifiers', 'synth_birds_32px.keras'))
  with open(os.path.join(run_dir, 'stage2', 'eval.json')) as f:
    saved = json.load(f)
  assert 'eval/stage2_reconstruction_mse' in saved and 'eval/inception_score' in saved
  # Recomputed from the two-stage SavedModel's refined images.
  served = tf.saved_model.load(os.path.join(run_dir, 'stage2', 'saved_model'))
  classifier = keras.models.load_model(os.path.join(tmp_path, 'classifiers', 'synth_birds_32px.keras'))
  cfg = presets.get_preset('tiny_synthbirds_crvaegan')
  images = np.concatenate([served.generate(tf.random.stateless_normal((50,) + cfg.latent_shape, seed=(3, i)))[
      'images'].numpy() for i in range(4)])
  assert images.shape[1:] == (32, 32, 3)
  mean, _ = evaluation.inception_score(tf.nn.softmax(classifier(images, training=False)).numpy(), num_splits=4)
  assert saved['eval/inception_score'] == pytest.approx(mean, rel=1e-4)


def _write_lsun_folder(root):
  rng = np.random.default_rng(0)
  for split in ('train', 'val'):
    os.makedirs(os.path.join(root, split))
    for i in range(3):
      image = rng.integers(0, 256, (24, 30, 3)).astype(np.uint8)
      tf.io.write_file(os.path.join(root, split, f'{i}.png'), tf.io.encode_png(image))


@pytest.mark.slow
def test_lsun_run_gets_elbo_and_a_one_line_reason_instead_of_an_is(tiny_run, tmp_path):
  run_dir = str(tmp_path / 'lsun_run')
  shutil.copytree(tiny_run, run_dir)
  _write_lsun_folder(str(tmp_path / 'lsun'))
  with open(os.path.join(run_dir, 'config.json')) as f:
    config = json.load(f)
  config['run'].update(dataset='lsun', data_dir=str(tmp_path / 'lsun'))
  with open(os.path.join(run_dir, 'config.json'), 'w') as f:
    json.dump(config, f)
  lines = []
  out = run_eval.evaluate_run(run_dir, small_eval(), print_fn=lines.append)
  assert [l for l in lines if 'no inception score' in l and 'user study' in l]
  assert 'eval/inception_score' not in out and out['eval/elbo_images'] == 3
  assert not os.path.exists(os.path.join(tmp_path, 'classifiers'))


def test_eval_config_and_run_errors(tmp_path):
  with pytest.raises(ValueError, match='is_samples'):
    run_eval.EvalConfig(is_samples=0).validate()
  with pytest.raises(ValueError, match='classifier_path'):
    run_eval.EvalConfig(classifier_path='clf.h5').validate()
  with pytest.raises(run_eval.RunError, match='no training run'):
    run_eval.evaluate_run(str(tmp_path / 'nothing'), small_eval(), print_fn=lambda s: None)
  os.makedirs(tmp_path / 'stage1')
  with open(tmp_path / 'stage1' / 'config.json', 'w') as f:
    json.dump({'model': {}, 'run': {'dataset': 'synth_birds'}}, f)
  with pytest.raises(run_eval.RunError, match='Stage-1 run and no stage2'):
    run_eval.evaluate_run(str(tmp_path / 'stage1'), small_eval(), stage=2, print_fn=lambda s: None)
  with pytest.raises(run_eval.RunError, match='no finished Stage-1 run'):
    run_eval.evaluate_run(str(tmp_path / 'stage1'), small_eval(), stage=1, print_fn=lambda s: None)
  with pytest.raises(run_eval.RunError, match='identity_CelebA.txt'):
    run_eval.num_logits('celeba', None)
  assert run_eval.num_logits('celeba', 10_177) == 10_178 and run_eval.num_logits('cub', 200) == 200


# ----------------------------------------------------------------------------------------- the launcher


def run_launcher(*args, timeout=300):
  return subprocess.run([sys.executable, '-m', 'launchers.crvae_eval', *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=timeout)


@pytest.mark.parametrize('args,needle', [
    ([], '--run is required'),
    (['--run=/nonexistent/run'], 'no training run there'),
    (['--stage=3', '--run=x'], '--stage=3'),
    (['extra'], 'unexpected arguments'),
])
def test_launcher_bad_input_is_one_line(args, needle):
  proc = run_launcher(*args, timeout=120)
  assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr
  lines = [l for l in proc.stderr.splitlines() if l.strip()]
  assert len(lines) == 1 and lines[0].startswith('error: ') and needle in lines[0], proc.stderr


@pytest.mark.slow
def test_launcher_scores_a_run_with_project_lines_only(tiny_run, tmp_path):
  classifier = str(tmp_path / 'clf.keras')
  proc = run_launcher(f'--run={tiny_run}', '--is_samples=100', '--is_splits=2', '--num_eval_images=16',
                      '--classifier_epochs=1', '--classifier_images=320', '--classifier_width=8',
                      f'--classifier={classifier}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'inception score' in proc.stdout and 'KL per block' in proc.stdout and os.path.exists(classifier)
  noise = [l for l in (proc.stdout + proc.stderr).splitlines()
           if l.strip() and not l.startswith(('[crvae_eval]', 'WARNING: All log', 'I0000'))]
  assert not noise, noise
  proc = run_launcher(f'--run={tiny_run}', '--is_samples=5', '--is_splits=10')
  assert proc.returncode == 2 and '--is_splits=10' in proc.stderr
