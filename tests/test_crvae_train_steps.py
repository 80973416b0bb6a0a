"""Chapter 5 training steps (spec ch5 §A3.1-A3.2, §A3.5, §7.1 items 13-17, §7.3 items 10-12, 15, 23).

D gate with an oracle discriminator (confidently right -> D head / F / Adam untouched; constant 'real' -> updated),
which also checks the 2:1:1 positions the trainer feeds to D (a wrong mix would not give accuracy 1), the D warm-up
learning rates as applied by the trainer, per-group learning rates and clipping, the stop-gradient on the MI target,
and short smoke runs of tiny crVAE-GAN (L_rec falls) and tiny MNIST crVAE (the ELBO improves).
"""

import numpy as np
import pytest
import tensorflow as tf

import keras

from rlcv_tf.crvae import networks
from rlcv_tf.crvae import presets
from rlcv_tf.crvae import train_steps


PLAIN, ORACLE, ALL_REAL = 0, 1, 2


class OracleDiscriminator(networks.Discriminator):
  """D whose mixed-batch logits can be pushed to +-50 by an input marker: real images are all ones (mean 1), the
  tanh decoder of an untrained VAE cannot produce a mean above 0.95. Mode ORACLE is confidently right (accuracy 1);
  ALL_REAL calls everything real (accuracy 0.5, the fakes still give gradients); PLAIN is the D itself. The trained
  D head sits underneath, so its gradients are genuine. The mode is a variable, so one compiled step serves all."""

  def __init__(self, config, **kwargs):
    super().__init__(config, **kwargs)
    self.mode = tf.Variable(PLAIN, trainable=False, dtype=tf.int32)

  def discriminate(self, x, training=False):
    logits = super().discriminate(x, training=training)
    is_real = tf.reduce_mean(x, axis=[1, 2, 3])[:, None] > 0.95
    oracle = tf.where(is_real, 50.0, -50.0)
    offset = tf.where(self.mode == ORACLE, oracle, tf.where(self.mode == ALL_REAL, 50.0, 0.0))
    return logits + offset


def build(preset, oracle=False, **overrides):
  keras.utils.set_random_seed(0)
  config = presets.get_preset(preset, **overrides)
  vae, disc = networks.build_models(config)
  if oracle:
    disc = OracleDiscriminator(config)
    disc(np.zeros((4,) + config.image_shape, np.float32))
  return config, vae, disc


@pytest.fixture(scope='module', params=['tiny_vaegan', 'tiny'])
def gated(request):
  """A trainer per model kind with a switchable oracle D, shared by the gate tests and the smoke run."""
  config, vae, disc = build(request.param, oracle=True)
  return config, vae, disc, train_steps.Stage1Trainer(vae, disc, config)


def real_batch(config):
  return np.ones((config.batch_size,) + config.image_shape, np.float32)


def smooth_images(config, seed=0):
  """Low-frequency random colour fields in [-1, 1] (learnable, unlike white noise)."""
  rng = np.random.default_rng(seed)
  coarse = rng.uniform(-1, 1, size=(config.batch_size, 4, 4, config.channels)).astype(np.float32)
  return tf.image.resize(coarse, config.image_shape[:2], method='bilinear').numpy()


def snapshot(variables):
  return [v.numpy().copy() for v in variables]


def changed(before, variables):
  return any(not np.array_equal(b, v.numpy()) for b, v in zip(before, variables))


# ---------------------------------------------------------------------------------------------- D gate
def test_d_gate_skips_when_d_is_confidently_right(gated):
  config, vae, disc, trainer = gated
  disc.mode.assign(ORACLE)
  head, trunk = disc.variable_groups()['d_head'], disc.variable_groups()['trunk']
  head_opt, trunk_opt = trainer.optimizers['d_head'], trainer.optimizers['trunk']
  head0, trunk0, gen0 = snapshot(head), snapshot(trunk), snapshot(vae.trainable_variables)
  head_slots0, head_iterations0 = snapshot(head_opt.variables), int(head_opt.iterations)
  trunk_iterations0, calls0 = int(trunk_opt.iterations), int(trainer.d_calls)
  if config.has_mi:
    # F gets its L_Q step (weight 1) and nothing of L_D. With q_psi's first conv zeroed for this step, L_Q's gradient
    # into F is exactly zero, and Adam from zero moments (F's optimiser has not stepped yet: this is the module's
    # first step) moves nothing with a zero gradient; so F must stay bit for bit unchanged while its optimiser
    # counts the step. Any L_D gradient reaching F would move it.
    assert trunk_iterations0 == 0
    q_conv = next(layer for layer in disc.q_head.layers if isinstance(layer, keras.layers.Conv2D))
    q_kernel0 = q_conv.kernel.numpy()
    q_conv.kernel.assign(np.zeros_like(q_kernel0))
  metrics = trainer.train_step(real_batch(config))
  assert float(metrics['d/accuracy']) == 1.0 and float(metrics['d/updated']) == 0.0
  assert not changed(head0, head)
  assert not changed(head_slots0, head_opt.variables)          # moments, iterations, learning rate
  assert int(head_opt.iterations) == head_iterations0
  if config.has_mi:
    q_conv.kernel.assign(q_kernel0)
    assert float(metrics['loss/mi']) > 0
    assert not changed(trunk0, trunk) and int(trunk_opt.iterations) == trunk_iterations0 + 1
  else:
    assert not changed(trunk0, trunk) and int(trunk_opt.iterations) == trunk_iterations0
  assert changed(gen0, vae.trainable_variables)               # the generator step is never gated
  assert int(trainer.d_calls) == calls0 + 1                     # the warm-up counter advances anyway


def test_d_gate_updates_at_accuracy_one_half(gated):
  config, _, disc, trainer = gated
  disc.mode.assign(ALL_REAL)
  head, trunk = disc.variable_groups()['d_head'], disc.variable_groups()['trunk']
  head0, trunk0 = snapshot(head), snapshot(trunk)
  head_iterations0 = int(trainer.optimizers['d_head'].iterations)
  metrics = trainer.train_step(real_batch(config))
  assert float(metrics['d/accuracy']) == 0.5 and float(metrics['d/updated']) == 1.0
  assert changed(head0, head) and changed(trunk0, trunk)
  assert int(trainer.optimizers['d_head'].iterations) == head_iterations0 + 1


def test_smoke_50_steps(gated):
  """Spec §7.3-23: 50 steps on synthetic images give finite losses and L_rec below its step-0 value."""
  config, _, disc, trainer = gated
  disc.mode.assign(PLAIN)
  x = smooth_images(config)
  step0 = int(trainer.step)
  history = [trainer.train_step(x) for _ in range(50)]
  names = {'loss/rec', 'loss/kl_total', 'loss/kl_weighted', 'loss/adv_g', 'loss/d', 'd/accuracy', 'd/updated',
           'd/lr_head', 'loss/total'} | {f'loss/kl_block_{t}' for t in range(config.num_blocks)}
  if config.has_mi:
    names.add('loss/mi')
  assert names <= set(history[0])
  for metrics in history:
    assert all(np.isfinite(float(v)) for v in metrics.values())
  kl_sum = sum(float(history[-1][f'loss/kl_block_{t}']) for t in range(config.num_blocks))
  assert kl_sum == pytest.approx(float(history[-1]['loss/kl_total']), rel=1e-5)
  rec = [float(m['loss/rec']) for m in history]
  assert np.mean(rec[-5:]) < rec[0]
  assert int(trainer.step) == step0 + 50


def test_gate_scope_head_still_updates_trunk():
  config, vae, disc = build('tiny_vaegan', oracle=True, gate_scope='head')
  disc.mode.assign(ORACLE)
  trainer = train_steps.Stage1Trainer(vae, disc, config)
  trunk = disc.variable_groups()['trunk']
  trunk0 = snapshot(trunk)
  assert float(trainer.train_step(real_batch(config))['d/updated']) == 0.0
  assert changed(trunk0, trunk) and int(trainer.optimizers['d_head'].iterations) == 0


# ------------------------------------------------------------------------------------ learning rates
def test_warmup_learning_rates_as_applied():
  config, vae, disc = build('tiny_vaegan', oracle=True)
  disc.mode.assign(ALL_REAL)     # keeps the gate open, so every call applies
  trainer = train_steps.Stage1Trainer(vae, disc, config)
  head_lr = config.learning_rate * 0.5          # VAE-GAN: D head at LR/2 (R5)
  expected = {0: head_lr / 50, 9: head_lr / 50, 10: head_lr / 5, 29: head_lr / 5, 30: head_lr}
  x = real_batch(config)
  for call in range(31):
    metrics = trainer.train_step(x)
    assert float(metrics['d/updated']) == 1.0
    if call in expected:
      assert float(metrics['d/lr_head']) == pytest.approx(expected[call], rel=1e-6)
      # The optimiser really used it (gated_apply sets it before applying).
      assert float(trainer.optimizers['d_head'].learning_rate) == pytest.approx(expected[call], rel=1e-6)
  # The trunk has no warm-up.
  assert float(trainer.optimizers['trunk'].learning_rate) == pytest.approx(config.learning_rate / 2)


def test_group_learning_rates_clipping_and_step_decay():
  config, vae, disc = build('tiny')
  trainer = train_steps.Stage1Trainer(vae, disc, config)
  lr, t = config.learning_rate, config.num_blocks
  expected = dict(enc=lr, dec=lr, lstm_inf=lr / t, lstm_gen=lr / t, q_head=lr, trunk=lr / 2, d_head=lr)
  assert set(trainer.optimizers) == set(expected)
  for name, value in expected.items():
    assert float(trainer.optimizers[name].learning_rate) == pytest.approx(value, rel=1e-6), name
    assert trainer.optimizers[name].built
  clipped = trainer.opt.clip('lstm_gen', [tf.constant([-7.0, 0.3, 9.0])])[0].numpy()
  np.testing.assert_allclose(clipped, [-5.0, 0.3, 5.0], rtol=1e-7)
  np.testing.assert_array_equal(trainer.opt.clip('enc', [tf.constant([9.0])])[0].numpy(), [9.0])
  trainer.set_learning_rate(lr / 2)
  assert float(trainer.optimizers['lstm_inf'].learning_rate) == pytest.approx(lr / 2 / t, rel=1e-6)
  assert float(trainer.d_head_learning_rate(40)) == pytest.approx(lr / 2, rel=1e-6)
  objects = trainer.checkpoint_objects()
  assert {'vae', 'discriminator', 'step', 'd_calls', 'optimizer_d_head', 'optimizer_lstm_gen'} <= set(objects)
  tf.train.Checkpoint(**objects)          # every entry is trackable


# ----------------------------------------------------------------------------------------------- MI
def test_mi_target_is_stop_gradient():
  config, vae, disc = build('tiny')
  trainer = train_steps.Stage1Trainer(vae, disc, config)
  lstm_gen = vae.variable_groups()['lstm_gen']
  z = tf.random.normal((4,) + config.latent_shape)
  with tf.GradientTape(persistent=True) as tape:
    u = vae.transform(z, training=True)
    x_tilde = vae.output_activation(vae.decode_transformed(u, training=True))
    # Target path only: the image reaching q_psi is cut off from the generator.
    target_only = trainer.mi_loss(u, disc.mi(disc.features(tf.stop_gradient(x_tilde), training=True), training=True))
    full = trainer.mi_loss(u, disc.mi(disc.features(x_tilde, training=True), training=True))
  grads = tape.gradient(target_only, lstm_gen)
  assert all(g is None or np.all(g.numpy() == 0) for g in grads)
  grads = tape.gradient(full, lstm_gen)
  assert any(g is not None and np.abs(g.numpy()).max() > 0 for g in grads)


def test_repo_mi_weights_weight_blocks():
  config, vae, disc = build('small32', repo_mi_weights=True)
  trainer = train_steps.Stage1Trainer(vae, disc, config)
  u = tf.zeros((1,) + config.latent_shape)
  per = config.n_z // config.num_blocks
  # Unit error only in block 1 (weight 1.5): loss = 1.5 * (per channels) / n_z.
  u_hat = np.zeros((1,) + config.latent_shape, np.float32)
  u_hat[..., per:2 * per] = 1.0
  assert float(trainer.mi_loss(u, u_hat)) == pytest.approx(1.5 * per / config.n_z, rel=1e-6)


# --------------------------------------------------------------------------------------------- smoke
def test_smoke_rgb_cvae_without_discriminator():
  config, vae, disc = build('tiny', model='cvae')
  assert disc is None
  trainer = train_steps.Stage1Trainer(vae, None, config)
  x = smooth_images(config, seed=1)
  history = [trainer.train_step(x) for _ in range(10)]
  assert 'loss/d' not in history[0]
  assert float(history[-1]['loss/rec']) < float(history[0]['loss/rec'])


def binary_strokes(batch, seed):
  """Digit-like binary images: a few thick random horizontal / vertical bars on 28x28."""
  rng = np.random.default_rng(seed)
  x = np.zeros((batch, 28, 28, 1), np.float32)
  for image in x:
    for _ in range(2):
      r, c = rng.integers(4, 20, size=2)
      if rng.random() < 0.5:
        image[r:r + 3, c:c + 8] = 1.0
      else:
        image[r:r + 8, c:c + 3] = 1.0
  return x


def test_smoke_tiny_mnist_elbo_improves():
  config, vae, _ = build('tiny_mnist_crvae')
  trainer = train_steps.make_trainer(vae, None, config)
  assert isinstance(trainer, train_steps.MNISTTrainer)
  x = binary_strokes(config.batch_size, 0)
  history = [trainer.train_step(x) for _ in range(25)]
  assert all(np.isfinite(float(v)) for m in history for v in m.values())
  neg_elbo = [float(m['loss/neg_elbo']) for m in history]
  assert np.mean(neg_elbo[-5:]) < neg_elbo[0] - 10          # nats per image; the first step is ~550
  # The exact ELBO: loss = -log p(x|z) + sum_t KL_t (w_t = 1).
  m = history[-1]
  assert float(m['loss/total']) == pytest.approx(float(m['loss/rec']) + float(m['loss/kl_total']), rel=1e-5)


def test_iwae_bound_pairs_samples_with_their_images(monkeypatch):
  """With every z_k = mu (a deterministic 'sampler'), the K-sample bound equals log w(mu) per image; a wrong
  tiling of x against z (or of the [K, B] reshape) would pair images with other images' latents."""
  config, vae, _ = build('tiny_mnist_criwae')
  trainer = train_steps.MNISTTrainer(vae, config)
  monkeypatch.setattr(vae, 'reparameterize', lambda mu, logvar: mu)
  x = binary_strokes(4, 3)
  got = float(trainer.losses(x, training=False)['loss/iwae'])
  mu, logvar = vae.encode(x, training=False)
  logits = vae.decode_logits(mu, training=False).numpy()
  log_px = (x * -np.logaddexp(0, -logits) + (1 - x) * -np.logaddexp(0, logits)).sum(axis=(1, 2, 3))
  mu, logvar = mu.numpy().reshape(4, -1), logvar.numpy().reshape(4, -1)
  log_pz = (-0.5 * mu ** 2 - 0.5 * np.log(2 * np.pi)).sum(-1)
  log_qz = (-0.5 * logvar - 0.5 * np.log(2 * np.pi)).sum(-1)         # z = mu: the quadratic term is 0
  assert got == pytest.approx(-np.mean(log_px + log_pz - log_qz), rel=1e-4)


def test_repo_mnist_alpha_objective():
  config, vae, _ = build('tiny_mnist_crvae', mnist_objective='repo_alpha', alpha1=0.001, alpha2=0.001)
  trainer = train_steps.MNISTTrainer(vae, config)
  m = trainer.losses(binary_strokes(4, 1), training=False)
  assert float(m['loss/total']) == pytest.approx(float(m['loss/rec']) / 784 + 0.001 * float(m['loss/kl_total']),
                                                 rel=1e-5)


def test_trainer_argument_errors():
  config, vae, disc = build('tiny')
  with pytest.raises(ValueError, match='^disc:'):
    train_steps.Stage1Trainer(vae, None, config)
  mnist_config, mnist_vae, _ = build('tiny_mnist_crvae')
  with pytest.raises(ValueError, match='^likelihood:'):
    train_steps.Stage1Trainer(mnist_vae, None, mnist_config)
  with pytest.raises(ValueError, match='^likelihood:'):
    train_steps.MNISTTrainer(vae, config)
