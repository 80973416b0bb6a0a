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

from rlcv_tf.core.vaegan import networks
from rlcv_tf.crvae import presets
from rlcv_tf.crvae import train_steps
from rlcv_tf.core.vaegan import optim


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


# ------------------------------------------------------------- the update applier and the loss builder
def np_adam(grads, lr, beta_1, beta_2, epsilon, start):
  """Keras Adam (bias-corrected step size, epsilon outside the sqrt) from `start`, one step per gradient."""
  x, m, v = np.array(start, np.float64), 0.0, 0.0
  for t, g in enumerate(grads, 1):
    m = beta_1 * m + (1 - beta_1) * g
    v = beta_2 * v + (1 - beta_2) * g * g
    alpha = lr * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
    x = x - alpha * m / (np.sqrt(v) + epsilon)
  return x


def test_param_groups_use_their_own_adam_settings():
  a, b = tf.Variable([0.5, -1.0]), tf.Variable([2.0])
  opt = optim.GroupedAdam([optim.ParamGroup('a', [a], lr_multiplier=1.0),
                                 optim.ParamGroup('b', [b], lr_multiplier=0.5, beta_1=0.5, beta_2=0.99,
                                                        epsilon=1e-3, clip=1.0)], learning_rate=0.1)
  grads_a = [np.array([0.3, -0.2]), np.array([0.1, 0.4]), np.array([-0.5, 0.2])]
  grads_b = [np.array([3.0]), np.array([-0.2]), np.array([0.7])]
  for ga, gb in zip(grads_a, grads_b):
    opt.apply('a', [tf.constant(ga, tf.float32)])
    opt.apply('b', [tf.constant(gb, tf.float32)])
  np.testing.assert_allclose(a.numpy(), np_adam(grads_a, 0.1, 0.9, 0.999, 1e-8, [0.5, -1.0]), rtol=1e-5)
  clipped = [np.clip(g, -1.0, 1.0) for g in grads_b]              # b's clip at +-1 before Adam
  np.testing.assert_allclose(b.numpy(), np_adam(clipped, 0.05, 0.5, 0.99, 1e-3, [2.0]), rtol=1e-5)


def _applier(per_call=False, warmup=False):
  v = tf.Variable([1.0, 2.0])
  opt = optim.GroupedAdam([optim.ParamGroup('g', [v], per_call_lr=per_call, warmup=warmup)], 0.01)
  return v, optim.UpdateApplier(opt, gate_threshold=0.9)


def test_update_applier_gates_only_the_gated_contributions():
  g_free, g_gated = [tf.constant([0.2, -0.1])], [tf.constant([0.5, 0.5])]
  # Closed gate: a group with free + gated parts is updated by the free part alone.
  v1, applier1 = _applier()
  v2, applier2 = _applier()
  applier1.apply({'g': [(g_free, False), (g_gated, True)]}, gate_accuracy=1.0)
  applier2.apply({'g': [(g_free, False)]})
  np.testing.assert_array_equal(v1.numpy(), v2.numpy())
  # Open gate: by the sum.
  v3, applier3 = _applier()
  v4, applier4 = _applier()
  applier3.apply({'g': [(g_free, False), (g_gated, True)]}, gate_accuracy=0.5)
  applier4.apply({'g': [([g_free[0] + g_gated[0]], False)]})
  np.testing.assert_array_equal(v3.numpy(), v4.numpy())
  assert not np.array_equal(v1.numpy(), v3.numpy())
  # Only gated parts and a closed gate: nothing changes, not even Adam's iteration count; the call still counts.
  v5, applier5 = _applier()
  out = applier5.apply({'g': [(g_gated, True)]}, gate_accuracy=0.95)
  assert not bool(out['applied']['g']) and int(applier5.opt.optimizers['g'].iterations) == 0
  np.testing.assert_array_equal(v5.numpy(), [1.0, 2.0])
  assert int(applier5.calls) == 1
  with pytest.raises(ValueError, match='gate accuracy'):
    applier5.apply({'g': [(g_gated, True)]})


def test_update_applier_warmup_rates_per_call():
  _, applier = _applier(per_call=True, warmup=True)
  rates = []
  for _ in range(12):
    out = applier.apply({'g': [([tf.constant([0.1, 0.1])], True)]}, gate_accuracy=0.5)
    rates.append(float(out['learning_rate']['g']))
  np.testing.assert_allclose(rates, [0.01 / 50] * 10 + [0.01 / 5] * 2, rtol=1e-6)
  applier.opt.set_learning_rate(0.02)             # a per-call group picks the base LR up at its next apply
  out = applier.apply({'g': [([tf.constant([0.1, 0.1])], True)]}, gate_accuracy=0.5)
  assert float(out['learning_rate']['g']) == pytest.approx(0.02 / 5, rel=1e-6)
  with pytest.raises(ValueError, match='per_call_lr'):
    optim.ParamGroup('x', [], warmup=True)


@pytest.mark.parametrize('preset,overrides,expected', [
    ('tiny_vaegan', {}, {('d', 'd_head'): True, ('d', 'trunk'): True}),
    ('tiny_vaegan', dict(gate_scope='head'), {('d', 'd_head'): True, ('d', 'trunk'): False}),
    ('tiny', {}, {('mi', 'q_head'): False, ('mi', 'trunk'): False, ('d', 'd_head'): True, ('d', 'trunk'): True}),
])
def test_stage1_loss_routes(preset, overrides, expected):
  config, vae, disc = build(preset, **overrides)
  trainer = train_steps.Stage1Trainer(vae, disc, config)
  routes = {(r.loss, r.group): r.gated for r in trainer.loss_builder.routes()}
  gen = {('g', name): False for name in vae.variable_groups()}
  assert routes == {**gen, **expected}


class LearnedMeanPrior(networks.GaussianPriorMixin, keras.layers.Layer):
  """An unconditional learned Gaussian prior (a mean and a log-variance per latent unit): a stand-in for the
  learned priors of Chapter 6, enough to check that the trainer treats the prior as a component."""

  def __init__(self, latent_shape, **kwargs):
    keras.layers.Layer.__init__(self, **kwargs)
    self.mu = self.add_weight(shape=latent_shape, initializer='zeros', name='mu')
    self.logvar = self.add_weight(shape=latent_shape, initializer='zeros', name='logvar')

  def params(self, condition=None, batch_size=None, like=None):
    batch = tf.shape(like)[0] if like is not None else batch_size
    ones = tf.ones(tf.stack([batch, 1, 1, 1]))
    return ones * self.mu, ones * self.logvar


def test_the_prior_is_a_component_of_the_step():
  config, vae, disc = build('tiny', model='crvae')          # no D: the prior's role is the same, the step is cheaper
  prior = LearnedMeanPrior(config.latent_shape)
  trainer = train_steps.Stage1Trainer(vae, disc, config, prior=prior)
  assert 'prior' in trainer.optimizers and 'prior' not in train_steps.Stage1Trainer(vae, disc, config).optimizers
  assert float(trainer.optimizers['prior'].learning_rate) == pytest.approx(config.learning_rate / config.num_blocks)
  rng = np.random.default_rng(3)
  prior.mu.assign(rng.normal(scale=0.5, size=config.latent_shape).astype(np.float32))
  prior.logvar.assign(rng.normal(scale=0.3, size=config.latent_shape).astype(np.float32))
  mu_p, lv_p = prior.mu.numpy().astype(np.float64), prior.logvar.numpy().astype(np.float64)
  x = smooth_images(config)
  # The step's KL is against the learned prior (closed form of two diagonal Gaussians), not N(0, I).
  mu, logvar = (v.numpy().astype(np.float64) for v in vae.encode(x, training=True))
  expected_kl = np.mean(np.sum(0.5 * (lv_p - logvar + (np.exp(logvar) + (mu - mu_p) ** 2) / np.exp(lv_p) - 1),
                               axis=(1, 2, 3)))
  metrics = trainer.train_step(x)
  assert float(metrics['loss/kl_total']) == pytest.approx(expected_kl, rel=1e-4)
  # Gradients reach the prior: its variables moved.
  assert not np.array_equal(prior.mu.numpy(), mu_p.astype(np.float32))
  assert not np.array_equal(prior.logvar.numpy(), lv_p.astype(np.float32))


class _ShiftedPrior:
  """The VAE's N(0, I) prior whose samples are replaced by a constant (no random op, so both runs draw alike)."""

  def __init__(self, prior, value):
    self._prior, self._value = prior, value

  def __getattr__(self, name):
    return getattr(self._prior, name)

  def sample(self, batch_size=None, condition=None, like=None):
    del batch_size, condition
    return tf.fill(tf.shape(like), tf.constant(self._value, tf.float32))


def test_prior_pass_leaves_the_generation_moving_statistics_to_the_reconstruction_pass():
  # Inference mode decodes with the moving statistics; with Torch momentum 0.9 they are ~90% the newest batch, so if
  # the prior-sample pass moved them, reconstructions would be decoded with prior-sample statistics (measured: up to
  # 3x the training-mode error, docs/crvae_default_diagnosis.md). Two steps from identical states whose prior
  # samples differ wildly (+3 vs -3 everywhere) must leave identical moving statistics on the generation path.
  cfg = presets.get_preset('tiny_synthbirds_crvaegan')
  x = tf.random.stateless_uniform((cfg.batch_size,) + cfg.image_shape, seed=(5, 6), minval=-1.0, maxval=1.0)
  stats = []
  for value in (3.0, -3.0):
    tf.keras.utils.set_random_seed(7)
    vae, disc = networks.build_models(cfg)
    trainer = train_steps.Stage1Trainer(vae, disc, cfg, prior=_ShiftedPrior(vae.prior, value))
    tf.keras.utils.set_random_seed(8)
    trainer.train_step(x)
    moving = [v for v in vae.non_trainable_variables
              if 'moving' in v.path and not any(part in v.path for part in ('encoder', 'lstm_inf'))]
    assert len(moving) >= 4, [v.path for v in vae.non_trainable_variables]
    stats.append([v.numpy() for v in moving])
  for a, b in zip(*stats):
    np.testing.assert_array_equal(a, b)
