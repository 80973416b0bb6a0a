"""StackGAN pieces (rlcv_tf/gans/stackgan.py, rlcv_tf/core/vaegan/refiner.py; spec seeds003_004 §7.3): the
Conditioning Augmentation KL vs TFP and closed form, gradients through the sample, the conditional Stage-II refiner
(shapes, up-block count, range, the condition matters), the unconditional refiner unchanged for Chapter 5, a
StackGAN step and its export."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from rlcv_tf.core.vaegan import refiner
from rlcv_tf.gans import data as data_lib
from rlcv_tf.gans import export
from rlcv_tf.gans import stackgan
from rlcv_tf.gans import training

tfd = tfp.distributions


def test_ca_kl_matches_tfp_and_the_closed_form():
  rng = np.random.default_rng(0)
  mu, log_sigma = rng.normal(size=(4, 6)), rng.normal(size=(4, 6)) * 0.5
  expected = tfd.kl_divergence(tfd.MultivariateNormalDiag(mu, np.exp(log_sigma)),
                               tfd.MultivariateNormalDiag(np.zeros(6), np.ones(6))).numpy()
  np.testing.assert_allclose(stackgan.ca_kl(mu, log_sigma).numpy(), expected, rtol=1e-10)
  assert float(stackgan.ca_kl(np.zeros((1, 1)), np.zeros((1, 1)))[0]) == pytest.approx(0.0)
  # mu = 1, sigma = 0.5: ln 2 + (0.25 + 1 - 1) / 2 = 0.818147.
  assert float(stackgan.ca_kl(np.ones((1, 1)), np.log(np.full((1, 1), 0.5)))[0]) == pytest.approx(0.818147, abs=1e-6)


def test_ca_layer_samples_with_gradients_to_mu_and_log_sigma():
  keras.utils.set_random_seed(0)
  ca = stackgan.ConditioningAugmentation(ca_dim=5)
  c = tf.constant(np.eye(3, dtype=np.float32))
  noise = tf.random.normal((3, 5))
  with tf.GradientTape(persistent=True) as tape:
    c_hat, kl = ca(c, training=True, noise=noise)
    mu, log_sigma = ca.moments(c)
    total = tf.reduce_sum(c_hat)
  assert c_hat.shape == (3, 5)
  np.testing.assert_allclose(c_hat.numpy(), (mu + tf.exp(log_sigma) * noise).numpy(), rtol=1e-6)
  assert float(kl) == pytest.approx(float(tf.reduce_mean(stackgan.ca_kl(mu, log_sigma))), rel=1e-6)
  # d sum(c^) / d mu = 1, d sum(c^) / d log sigma = sigma * eps: both reach the layer's weights.
  kernel_grad = tape.gradient(total, ca.fc.kernel).numpy()
  assert np.any(kernel_grad[:, :5] != 0) and np.any(kernel_grad[:, 5:] != 0)
  # inference: c^ = mu + sigma * eps with eps from the fixed table, the same on every call
  eps = (ca(c, training=False)[0] - mu) / tf.exp(log_sigma)
  np.testing.assert_allclose(eps.numpy(), ca.inference_noise(3).numpy(), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(ca(c, training=False)[0].numpy(), ca(c, training=False)[0].numpy())


def test_inference_ca_draws_like_training_not_mu():
  """The Stage-II collapse (issue 15 §7): with c^ = mu at inference, every z of one condition met the same,
  never-trained-on c^. Now a fixed condition repeated over a batch gets per-row eps ~ N(0, I): standardised
  c^ has mean ~0 and sd ~1 over the rows, rows differ, row i is the same for any batch size, and the two CA
  layers use different tables."""
  keras.utils.set_random_seed(0)
  ca, ca2 = stackgan.ConditioningAugmentation(ca_dim=16), stackgan.ConditioningAugmentation(ca_dim=16, seed=1)
  c = tf.constant(np.tile(np.where(np.arange(12) % 3, 1.0, -1.0)[None], (512, 1)), tf.float32)
  mu, log_sigma = ca.moments(c)
  c_hat = ca(c, training=False)[0]
  eps = ((c_hat - mu) / tf.exp(log_sigma)).numpy()
  assert not np.allclose(c_hat.numpy(), mu.numpy())
  assert abs(eps.mean()) < 0.05 and abs(eps.std() - 1.0) < 0.05
  assert np.all(eps.std(axis=0) > 0.8)                                     # every dimension varies over rows
  assert len(np.unique(np.round(eps[:, 0], 6))) == 512
  np.testing.assert_allclose(ca(c[:7], training=False)[0].numpy(), c_hat.numpy()[:7], rtol=1e-5, atol=1e-6)
  assert not np.allclose(ca.inference_noise(4).numpy(), ca2.inference_noise(4).numpy())
  # the whole StackGAN: one condition, different z -> different Stage-II images even when Stage-II ignores s1
  g, _ = training.build_models(training.GANConfig(model='stackgan', dataset='synth_faces', gf=8, df=8, ca_dim=8,
                                                  z_dim=8).resolved(), data_lib.load('synth_faces', 32, 4, 4))
  z = tf.zeros((4, 8))                                          # same z: only the CA table separates the rows
  _, s2 = g.generate(z, tf.constant(np.tile(c.numpy()[:1], (4, 1))))
  assert float(tf.reduce_max(tf.abs(s2[0] - s2[1]))) > 1e-4


@pytest.mark.parametrize('num_down, scale, upsample', [(2, 4, 'nearest'), (1, 2, 'nearest'), (2, 4, 'convT'),
                                                       (1, 2, 'convT')])
@pytest.mark.parametrize('condition_dim', [0, 4])
def test_stage2_refiner_shapes_range_and_up_blocks(num_down, scale, upsample, condition_dim):
  keras.utils.set_random_seed(0)
  config = refiner.Stage2Config(name='t', in_resolution=16, out_resolution=16 * scale, gf=8, num_down=num_down,
                                num_residual=1, upsample=upsample, d_channels=(8,), d_extra_channels=8)
  g = refiner.Stage2Generator(config, condition_dim=condition_dim)
  c = tf.random.normal((2, condition_dim)) if condition_dim else None
  out = g(tf.random.uniform((2, 16, 16, 3), -1, 1), c)
  assert out.shape == (2, 16 * scale, 16 * scale, 3)
  assert float(tf.reduce_max(tf.abs(out))) <= 1.0
  assert len(g.ups) == num_down + int(np.log2(scale))
  assert (g.joint is not None) == bool(condition_dim)


def test_the_condition_changes_the_refined_image_and_is_checked():
  keras.utils.set_random_seed(1)
  config = stackgan.stage2_config(16, 32, 8)
  g = refiner.Stage2Generator(config, condition_dim=3)
  x = tf.random.uniform((2, 16, 16, 3), -1, 1)
  a, b = g(x, tf.one_hot([0, 0], 3)), g(x, tf.one_hot([2, 2], 3))
  assert not np.allclose(a.numpy(), b.numpy())
  with pytest.raises(ValueError, match='condition'):
    g(x)
  with pytest.raises(ValueError, match='condition'):
    refiner.Stage2Generator(config)(x, tf.one_hot([0, 0], 3))


def test_the_unconditional_refiner_is_chapter_5s():
  """Same variables (names and shapes) as before the move: no joint layer, the crVAE import path still works."""
  from rlcv_tf.crvae import stage2  # pylint: disable=g-import-not-at-top
  assert stage2.Stage2Generator is refiner.Stage2Generator
  g, _ = stage2.build_stage2_models(stage2.get_stage2_preset('stage2_tiny'))
  names = sorted(v.path for v in g.variables)
  assert not any('joint' in n for n in names)
  cond = refiner.Stage2Generator(stage2.get_stage2_preset('stage2_tiny'), condition_dim=2)
  cond(tf.zeros((1, 16, 16, 3)), tf.zeros((1, 2)))
  assert len(cond.variables) == len(g.variables) + 6       # joint conv (kernel, bias) + its BN (4)


def test_a_stackgan_step_and_export(tmp_path):
  keras.utils.set_random_seed(0)
  cfg = training.GANConfig(model='stackgan', dataset='synth_faces', gf=8, df=8, ca_dim=8, z_dim=8,
                           batch_size=4).resolved().validate()
  assert (cfg.resolution, cfg.stage2_resolution, cfg.cgan_weights) == (16, 32, 'stackgan')
  source = data_lib.load('synth_faces', 32, num_test=8, num_train=16)
  generator, discriminators = training.build_models(cfg, source)
  trainer = training.make_trainer(cfg, generator, discriminators)
  g1_before = [v.numpy().copy() for v in generator.stage1.trainable_variables]
  out = trainer.train_step(source.train_x[:4], source.train_c[:4])
  assert all(np.isfinite(float(v)) for v in out.values())
  assert float(out['loss/kl']) > 0
  assert not all(np.array_equal(a, v.numpy()) for a, v in zip(g1_before, generator.stage1.trainable_variables))
  z, c = tf.random.normal((3, 8)), tf.constant(source.test_c[:3])
  s1, s2 = generator.generate(z, c)
  assert s1.shape == (3, 16, 16, 3) and s2.shape == (3, 32, 32, 3)
  loaded = tf.saved_model.load(export.export_generator(cfg, generator, source.condition_dim, str(tmp_path / 'sm')))
  got = loaded.generate(z, c)
  np.testing.assert_allclose(got['samples'].numpy(), s2.numpy(), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(got['stage1'].numpy(), s1.numpy(), rtol=1e-4, atol=1e-5)


def test_stage1_steps_schedule_trains_one_stage_at_a_time():
  """stage1_steps = 2: steps 0-1 move Stage-I and D1 only; steps 2+ move Stage-II (with its CA) and D2 only,
  leaving Stage-I bit-identical, BN moving statistics included (the paper's schedule)."""
  keras.utils.set_random_seed(0)
  cfg = training.GANConfig(model='stackgan', dataset='synth_faces', gf=8, df=8, ca_dim=8, z_dim=8, batch_size=4,
                           stage1_steps=2).resolved().validate()
  source = data_lib.load('synth_faces', 32, num_test=4, num_train=8)
  g, ds = training.build_models(cfg, source)
  trainer = training.make_trainer(cfg, g, ds)
  assert [trainer.stages_at(i) for i in (0, 1, 2, 50)] == [(True, False)] * 2 + [(False, True)] * 2
  parts = {'stage1': g.stage1.variables, 'stage2': g.stage2.variables + g.ca2.variables,
           'd1': ds.d1.variables, 'd2': ds.d2.variables}
  snap = lambda: {k: [v.numpy().copy() for v in vs] for k, vs in parts.items()}
  same = lambda a, b, k: all(np.array_equal(x, y) for x, y in zip(a[k], b[k]))
  before = snap()
  out = trainer.train_step(source.train_x[:4], source.train_c[:4])
  after1 = snap()
  assert set(out) == {'loss/d', 'd/accuracy', 'loss/g', 'loss/kl'}
  assert not same(before, after1, 'stage1') and not same(before, after1, 'd1')
  assert same(before, after1, 'stage2') and same(before, after1, 'd2')
  trainer.train_step(source.train_x[4:], source.train_c[4:])
  after2 = snap()
  out = trainer.train_step(source.train_x[:4], source.train_c[:4])
  after3 = snap()
  assert set(out) == {'loss/d2', 'd2/accuracy', 'loss/g2', 'loss/kl2'}
  assert same(after2, after3, 'stage1') and same(after2, after3, 'd1')
  assert not same(after2, after3, 'stage2') and not same(after2, after3, 'd2')
  with pytest.raises(ValueError, match='stage1_steps'):
    training.GANConfig(model='stackgan', dataset='synth_faces', stage1_steps=-1).resolved().validate()
