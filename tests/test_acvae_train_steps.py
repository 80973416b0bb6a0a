"""Chapter 6 training step (thesis Eq. 6.1, T:L5993-5999; spec ch5_6 Part B3, B4, §8-A6, A19, A36).

One compiled step of every model at the tiny presets (finite metrics, every trainable variable of every routed group
moves); L_G against a hand assembly from the networks' own outputs with the KL, BCE, MSE and attention terms written
out in NumPy; the D gate with an oracle conditional D (a skipped head changes no weight, Adam slot or iteration; the
trunk keeps its L_D gradient under gate scope 'head' and loses it under 'head+trunk'), which also checks the D
minibatch the trainer feeds (positions, labels, mismatched vectors); gradients into the prior and the attention W;
the prior-sample pass leaving the generation path's moving statistics alone; a checkpoint round trip that resumes
the same step; and (slow) tiny acVAE-GAN on SynthFaces 16 px lowering L_rec.
"""

import numpy as np
import pytest
import tensorflow as tf

import keras

from rlcv_tf.acvae import networks
from rlcv_tf.acvae import presets
from rlcv_tf.acvae import train_steps
from rlcv_tf.datasets import synthetic

MODELS = presets.MODELS
PLAIN, ORACLE, ALL_REAL = 0, 1, 2


def build(model, seed=0, **overrides):
  keras.utils.set_random_seed(seed)
  config = presets.get_preset(f'tiny_{model}', **overrides)
  vae, disc = networks.build_models(config)
  return config, vae, disc


def batch(config, seed=0, batch_size=None):
  rng = np.random.default_rng(seed)
  b = batch_size or config.batch_size
  coarse = rng.uniform(-1, 1, size=(b, 4, 4, 3)).astype(np.float32)
  x = tf.image.resize(coarse, config.image_shape[:2], method='bilinear').numpy()
  a = np.where(rng.random((b, config.num_attributes)) < 0.5, -1.0, 1.0).astype(np.float32)
  return x, a


def snapshot(variables):
  return [np.array(v.numpy(), copy=True) for v in variables]


def moved(before, variables):
  """Per variable: did it change?"""
  return [not np.array_equal(b, v.numpy()) for b, v in zip(before, variables)]


# ------------------------------------------------------------------------------------------- every model
class OneStep:
  """A model after one compiled step: its parts, the variables before the step, and what the step left."""

  def __init__(self, model):
    self.config, self.vae, self.disc = build(model)
    self.trainer = train_steps.AcVAETrainer(self.vae, self.disc, self.config)
    self.trainer.applier.gate_threshold = 1.0     # the D head updates whatever D's first accuracy
    self.before = {name: snapshot(vs) for name, vs in self.trainer.opt.groups.items()}
    self.metrics = {k: float(v) for k, v in self.trainer.train_step(*batch(self.config)).items()}
    self.moved = {name: moved(self.before[name], vs) for name, vs in self.trainer.opt.groups.items()}
    self.counters = dict(step=int(self.trainer.step), d_calls=int(self.trainer.d_calls),
                         iterations={n: int(o.iterations) for n, o in self.trainer.optimizers.items()})


@pytest.fixture(scope='module')
def one_step():
  """Every model after one compiled step (gate forced open). Later tests may step the acVAE-GAN trainer further
  (the checkpoint round trip), so what the first step left is recorded here."""
  return {model: OneStep(model) for model in MODELS}


EXPECTED_GROUPS = {
    'cvae': {'from_rgb', 'to_rgb', 'enc', 'dec', 'prior'},
    'cvaegan': {'from_rgb', 'to_rgb', 'enc', 'dec', 'prior', 'trunk', 'd_head'},
    'crvaegan': {'from_rgb', 'to_rgb', 'enc', 'dec', 'lstm_inf', 'lstm_gen', 'prior', 'trunk', 'd_head', 'q_head'},
    'acvaegan': {'from_rgb', 'to_rgb', 'enc', 'dec', 'lstm_inf', 'lstm_gen', 'prior', 'attention', 'trunk', 'd_head',
                 'q_head'},
}


@pytest.mark.parametrize('model', MODELS)
def test_one_step_moves_every_routed_variable(one_step, model):
  run = one_step[model]
  assert all(np.isfinite(v) for v in run.metrics.values()), run.metrics
  assert set(run.trainer.optimizers) == EXPECTED_GROUPS[model]
  routed = {r.group for r in run.trainer.loss_builder.routes()}
  assert routed == EXPECTED_GROUPS[model]
  # Not expected to move: nothing (every trainable variable of every group gets a nonzero gradient in one step).
  still = [v.path for name in routed for v, m in zip(run.trainer.opt.groups[name], run.moved[name]) if not m]
  assert not still
  assert run.counters['step'] == 1
  assert run.counters['d_calls'] == (1 if run.config.adversarial else 0)
  assert run.counters['iterations'] == {name: 1 for name in EXPECTED_GROUPS[model]}


@pytest.mark.parametrize('model', MODELS)
def test_metric_names(one_step, model):
  config, metrics = one_step[model].config, one_step[model].metrics
  blocks = config.num_blocks if config.recurrent else 1
  expected = {'loss/rec', 'loss/kl_total', 'loss/kl_weighted', 'loss/total'} | {
      f'loss/kl_block_{t}' for t in range(blocks)}
  if config.adversarial:
    expected |= {'loss/adv_g', 'loss/d', 'd/accuracy', 'd/updated', 'd/lr_head', 'd/warmup'}
  if config.has_mi:
    expected |= {'loss/mi'}
  if config.attentive:
    expected |= {'attention/entropy', 'attention/even_load', 'loss/attention'}
  assert set(metrics) == expected
  assert metrics['loss/kl_total'] == pytest.approx(sum(metrics[f'loss/kl_block_{t}'] for t in range(blocks)),
                                                   rel=1e-5)
  if config.adversarial:   # first D call: base LR x 1/2 (D head) x 1/50 (warm-up)
    assert metrics['d/lr_head'] == pytest.approx(config.learning_rate * 0.5 / 50, rel=1e-5)
    assert metrics['d/updated'] == 1.0


def test_group_adam_settings_and_learning_rates():
  config, vae, disc = build('acvaegan', d_adam_beta1=0.5, lr_mult_attention=2.0)
  trainer = train_steps.AcVAETrainer(vae, disc, config)
  lr, t = config.learning_rate, config.num_blocks
  expected = dict(enc=lr, from_rgb=lr, to_rgb=lr, dec=lr, lstm_inf=lr / t, lstm_gen=lr / t, prior=lr / t,
                  attention=2 * lr, trunk=lr / 2, q_head=lr / 2)
  for name, rate in expected.items():
    assert float(trainer.optimizers[name].learning_rate) == pytest.approx(rate, rel=1e-6), name
  for name, spec in trainer.opt.specs.items():
    assert spec.beta_1 == (0.5 if name in ('trunk', 'd_head', 'q_head') else 0.9), name
    assert (spec.beta_2, spec.epsilon) == (0.999, 1e-8)
    assert spec.clip == (5.0 if name in ('lstm_inf', 'lstm_gen', 'prior') else 0.0), name
  assert float(trainer.optimizers['trunk'].beta_1) == 0.5 and float(trainer.optimizers['enc'].beta_1) == 0.9
  # The thesis default: beta1 0.9 everywhere.
  config, vae, disc = build('cvaegan')
  trainer = train_steps.AcVAETrainer(vae, disc, config)
  assert {spec.beta_1 for spec in trainer.opt.specs.values()} == {0.9}
  trainer.set_learning_rate(1e-4)
  assert float(trainer.optimizers['trunk'].learning_rate) == pytest.approx(5e-5)
  assert set(trainer.checkpoint_objects()) == {'vae', 'step', 'd_calls', 'base_learning_rate', 'discriminator'} | {
      f'optimizer_{name}' for name in trainer.optimizers}


def test_trainer_argument_errors():
  config, vae, disc = build('cvaegan')
  with pytest.raises(ValueError, match='disc: .*needs'):
    train_steps.AcVAETrainer(vae, None, config)
  config_cvae, vae_cvae, _ = build('cvae')
  with pytest.raises(ValueError, match='disc: .*has no discriminator'):
    train_steps.AcVAETrainer(vae_cvae, disc, config_cvae)
  from rlcv_tf.core.vaegan import config as vaegan_config  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match='cfg: .*AcVAEConfig'):
    train_steps.AcVAETrainer(vae, disc, vaegan_config.CrVAEConfig())


# ------------------------------------------------------------------------------------ L_G by hand (NumPy)
def _np(t):
  return np.asarray(t, np.float64)


def _softplus(v):
  return np.log1p(np.exp(-np.abs(v))) + np.maximum(v, 0.0)


def _bce_real(logits):
  """mean -log sigmoid(l) = mean softplus(-l)."""
  return float(np.mean(_softplus(-_np(logits))))


def _kl_blocks(mu_q, lv_q, mu_p, lv_p, num_blocks):
  """KL_t per channel block of [B, H, W, C] latents (a flat [B, D] latent is one block), batch-averaged."""
  var_p = np.maximum(np.exp(lv_p), 1e-5)
  per_unit = 0.5 * (np.log(var_p) - lv_q + (np.exp(lv_q) + (mu_q - mu_p) ** 2) / var_p - 1.0)
  if per_unit.ndim == 2:
    return np.array([np.mean(np.sum(per_unit, axis=1))])
  c = per_unit.shape[-1] // num_blocks
  return np.array([np.mean(np.sum(per_unit[..., t * c:(t + 1) * c], axis=(1, 2, 3))) for t in range(num_blocks)])


@pytest.mark.parametrize('model', MODELS)
def test_generator_loss_matches_a_hand_assembly(model):
  # Dropout 0 makes the D deterministic in training mode, so the reference can recompute its outputs.
  config, vae, disc = build(model, d_dropout=0.0, lambda_ds=0.3 if model == 'acvaegan' else 0.0)
  trainer = train_steps.AcVAETrainer(vae, disc, config)
  x, a = batch(config, seed=1)
  rng = np.random.default_rng(2)
  eps_q = rng.normal(size=(config.batch_size,) + config.latent_shape).astype(np.float32)
  eps_p = rng.normal(size=eps_q.shape).astype(np.float32)
  loss_values, metrics, _ = trainer.loss_builder.generator_phase(x, a, noise=dict(eps_q=eps_q, eps_p=eps_p))

  mu_q, lv_q = (_np(v) for v in vae.encode(x, a, training=True))
  mu_p, lv_p = (_np(v) for v in vae.prior_params(a, training=True))
  z_q = (mu_q + np.exp(0.5 * lv_q) * eps_q).astype(np.float32)
  z_p = (mu_p + np.exp(0.5 * lv_p) * eps_p).astype(np.float32)
  u_q, x_q = vae.decode(z_q, a, training=True)
  rec = np.mean((_np(x_q) - x) ** 2)
  if config.recurrent:
    kl = _kl_blocks(mu_q, lv_q, mu_p, lv_p, config.num_blocks)
    weights = np.array([config.alpha1] * 2 + [config.alpha2] * (config.num_blocks - 2))   # first 2 of 4 (spec B4)
  else:
    flat = lambda v: v.reshape(v.shape[0], -1)
    kl = _kl_blocks(flat(mu_q), flat(lv_q), flat(mu_p), flat(lv_p), 1)
    weights = np.array([config.alpha1])
  total = rec + np.sum(weights * kl)
  if config.adversarial:
    u_p, x_p = vae.decode(z_p, a, training=True)
    f_q, f_p = disc.features(x_q, a, training=True), disc.features(x_p, a, training=True)
    adv = _bce_real(disc.logits(f_q, training=True)) + _bce_real(disc.logits(f_p, training=True))
    total += config.beta * adv
    assert float(metrics['loss/adv_g']) == pytest.approx(adv, rel=1e-4)
    if config.has_mi:
      mi = (np.mean((_np(disc.mi(f_q, training=True)) - _np(u_q)) ** 2) +
            np.mean((_np(disc.mi(f_p, training=True)) - _np(u_p)) ** 2))
      total += config.kappa * mi
      assert float(loss_values['mi']) == pytest.approx(mi, rel=1e-4)
  if config.attentive:
    w = _np(vae.attention.w)
    m = np.exp(w - w.max(0)) / np.exp(w - w.max(0)).sum(0)
    entropy = np.mean(-np.sum(m * np.log(np.maximum(m, 1e-7)), axis=0))
    load = np.sum((m.sum(1) - config.num_attributes / config.num_blocks) ** 2)
    total += config.lambda_ent * entropy + 0.3 * load
    assert float(metrics['attention/entropy']) == pytest.approx(entropy, rel=1e-5)
    assert float(metrics['attention/even_load']) == pytest.approx(load, rel=1e-4, abs=1e-7)
  assert float(metrics['loss/rec']) == pytest.approx(rec, rel=1e-5)
  np.testing.assert_allclose([float(metrics[f'loss/kl_block_{t}']) for t in range(len(kl))], kl, rtol=1e-4)
  assert set(loss_values) == ({'g', 'mi'} if config.has_mi else {'g'})
  assert float(loss_values['g']) == pytest.approx(total, rel=1e-5)
  assert float(metrics['loss/total']) == float(loss_values['g'])


def test_gradients_reach_the_prior_and_the_attention(one_step):
  run = one_step['acvaegan']
  config, vae, builder = run.config, run.vae, run.trainer.loss_builder
  x, a = batch(config)
  variables = list(vae.prior.trainable_variables) + [vae.attention.w]
  with tf.GradientTape() as tape:
    loss_values, _, _ = builder.generator_phase(x, a, seed=tf.constant([1, 2], tf.int64))
  grads = tape.gradient(loss_values['g'], variables)
  assert len(vae.prior.trainable_variables) >= 6      # 2 LSTMs + mu / logvar Dense
  for v, g in zip(variables, grads):
    assert g is not None and np.any(np.asarray(g) != 0), v.path
  # The attention W also gets L_attn's gradient alone (lambda_ent > 0).
  with tf.GradientTape() as tape:
    _, metrics, _ = builder.generator_phase(x, a, seed=tf.constant([1, 2], tf.int64))
  assert np.any(np.asarray(tape.gradient(metrics['loss/attention'], vae.attention.w)) != 0)


def test_prior_pass_leaves_the_generation_moving_statistics_alone(one_step):
  config, builder = one_step['acvaegan'].config, one_step['acvaegan'].trainer.loss_builder
  stats = builder.generation_bn_statistics
  assert len(stats) >= 4                          # the conv head's BN and Dec's
  start = snapshot(stats)
  x, a = batch(config)
  eps_q = np.random.default_rng(3).normal(size=(config.batch_size,) + config.latent_shape).astype(np.float32)
  after = []
  for value in (3.0, -3.0):                       # prior samples that differ wildly
    for v, s in zip(stats, start):
      v.assign(s)
    builder.generator_phase(x, a, noise=dict(eps_q=eps_q, eps_p=np.full_like(eps_q, value)))
    after.append(snapshot(stats))
  assert any(moved(start, stats))                 # the reconstruction pass did update them
  for s, t in zip(*after):
    np.testing.assert_array_equal(s, t)


# ----------------------------------------------------------------------------------- D gate and minibatch
class OracleDiscriminator(networks.ConditionalDiscriminator):
  """A conditional D that can be made confidently right: a pair is real iff its image is a real one (the test's real
  images are all ones; the tanh decoder of an untrained model cannot reach a mean of 0.95) and its condition is that
  example's own vector (`own`, set by the test). ORACLE adds +-10 to the logits (accuracy 1 exactly when the trainer's
  labels are right; a margin small enough to leave F real gradients), ALL_REAL +10 everywhere. It records the
  minibatch it discriminates (images, conditions)."""

  def __init__(self, config, **kwargs):
    super().__init__(config, **kwargs)
    b, n = config.batch_size, config.num_attributes
    self.mode = tf.Variable(PLAIN, trainable=False, dtype=tf.int32)
    self.own = tf.Variable(tf.zeros((b, n)), trainable=False)
    self.seen_images = tf.Variable(tf.zeros((b,) + config.image_shape), trainable=False)
    self.seen_conditions = tf.Variable(tf.zeros((b, n)), trainable=False)

  def discriminate(self, x, condition=None, training=False):
    self.seen_images.assign(x)
    self.seen_conditions.assign(condition)
    logits = super().discriminate(x, condition, training=training)
    real = (tf.reduce_mean(x, axis=[1, 2, 3]) > 0.95) & tf.reduce_all(tf.equal(condition, self.own), axis=1)
    oracle = tf.where(real[:, None], 10.0, -10.0)
    return logits + tf.where(self.mode == ORACLE, oracle, tf.where(self.mode == ALL_REAL, 10.0, 0.0))


def _oracle_trainer(model, **overrides):
  config, vae, _ = build(model, **overrides)
  disc = OracleDiscriminator(config)
  disc(np.zeros((4,) + config.image_shape, np.float32), np.zeros((4, config.num_attributes), np.float32))
  return config, vae, disc, train_steps.AcVAETrainer(vae, disc, config)


def _repeating_attributes(config):
  """Attribute vectors with repeats (rows 0-2 equal, rows 3 and 4 equal), so a mismatch must look past neighbours."""
  rng = np.random.default_rng(5)
  a = np.where(rng.random((config.batch_size, config.num_attributes)) < 0.5, -1.0, 1.0).astype(np.float32)
  a[1] = a[2] = a[0]
  a[4] = a[3]
  return a


def _check_d_batch(config, disc, x, a):
  """The recorded D minibatch against the mix written out by hand (spec B3 / core.gan)."""
  pattern = {'thirds': ['real', 'mismatched', 'recon', 'real', 'mismatched', 'prior'],
             'quarters': ['real', 'mismatched', 'prior', 'recon']}[config.d_mix]
  images, conditions = disc.seen_images.numpy(), disc.seen_conditions.numpy()
  rows = {tuple(r) for r in a}
  for j in range(config.batch_size):
    kind = pattern[j % len(pattern)]
    if kind in ('real', 'mismatched'):
      np.testing.assert_array_equal(images[j], x[j])
    else:
      assert not np.allclose(images[j], x[j])
    if kind == 'mismatched':
      assert np.any(conditions[j] != a[j]), j               # differs from its own vector in >= 1 attribute
      assert tuple(conditions[j]) in rows, j                 # and is another example's vector
    else:
      np.testing.assert_array_equal(conditions[j], a[j])     # the raw a, never a_t


@pytest.mark.parametrize('model,scope,mix', [('cvaegan', 'head', 'thirds'), ('cvaegan', 'head+trunk', 'quarters')])
def test_skipped_gate_and_the_d_minibatch(model, scope, mix):
  config, _, disc, trainer = _oracle_trainer(model, gate_scope=scope, d_mix=mix)
  x = np.ones((config.batch_size,) + config.image_shape, np.float32)
  a = _repeating_attributes(config)
  disc.own.assign(a)
  disc.mode.assign(ORACLE)
  head, trunk = trainer.opt.groups['d_head'], trainer.opt.groups['trunk']
  head_opt = trainer.optimizers['d_head']
  head_before, trunk_before = snapshot(head), snapshot(trunk)
  slots_before = snapshot(head_opt.variables)
  metrics = trainer.train_step(x, a)
  # Accuracy 1 exactly: the trainer's labels are 1 on real pairs and 0 on mismatched and generated ones.
  assert float(metrics['d/accuracy']) == 1.0 and float(metrics['d/updated']) == 0.0
  assert not any(moved(head_before, head))
  assert not any(moved(slots_before, head_opt.variables))
  assert int(head_opt.iterations) == 0
  assert int(trainer.d_calls) == 1                          # the warm-up call counter still advances
  if scope == 'head':
    assert all(moved(trunk_before, trunk))                  # R6: F keeps its L_D gradient
    assert int(trainer.optimizers['trunk'].iterations) == 1
  else:
    assert not any(moved(trunk_before, trunk))
    assert int(trainer.optimizers['trunk'].iterations) == 0
  _check_d_batch(config, disc, x, a)
  # A D that calls everything real (accuracy 1/3 or 1/4) is updated.
  disc.mode.assign(ALL_REAL)
  metrics = trainer.train_step(x, a)
  share = 1 / 3 if mix == 'thirds' else 1 / 4
  assert float(metrics['d/accuracy']) == pytest.approx(share) and float(metrics['d/updated']) == 1.0
  assert all(moved(head_before, head)) and int(head_opt.iterations) == 1
  _check_d_batch(config, disc, x, a)


def test_loss_builder_context_holds_the_d_minibatch():
  config, vae, disc = build('crvaegan')
  builder = train_steps.AcVAETrainer(vae, disc, config).loss_builder
  x, a = batch(config)
  a = _repeating_attributes(config)
  _, _, context = builder.generator_phase(x, a, seed=tf.constant([4, 5], tf.int64))
  builder.discriminator_phase(x, a, context)
  d = {k: v.numpy() for k, v in context['d_batch'].items()}
  np.testing.assert_array_equal(d['labels'], np.tile([1, 0, 0, 1, 0, 0], config.batch_size // 6))
  # Sources ('real', 'mismatched', 'prior', 'recon'): per 6, real, mismatched, recon, real, mismatched, prior.
  np.testing.assert_array_equal(d['source'], np.tile([0, 1, 3, 0, 1, 2], config.batch_size // 6))
  mismatched = np.arange(config.batch_size) % 3 == 1
  assert np.all(np.any(d['conditions'][mismatched] != a[mismatched], axis=1))
  np.testing.assert_array_equal(d['conditions'][~mismatched], a[~mismatched])
  np.testing.assert_array_equal(d['images'][np.arange(config.batch_size) % 3 == 0], x[::3])
  np.testing.assert_array_equal(d['images'][2::6], context['x_q'].numpy()[2::6])
  np.testing.assert_array_equal(d['images'][5::6], context['x_p'].numpy()[5::6])


# ------------------------------------------------------------------------------------------- checkpoint
def test_checkpoint_round_trip_resumes_the_same_step(one_step, tmp_path):
  run = one_step['acvaegan']                             # one step done; a second, then save
  config, vae, disc, trainer = run.config, run.vae, run.disc, run.trainer
  batches = [batch(config, seed=s) for s in range(1, 3)]
  trainer.train_step(*batches[0])
  steps = int(trainer.step)
  path = tf.train.Checkpoint(**trainer.checkpoint_objects()).write(str(tmp_path / 'ckpt'))
  config2, vae2, disc2 = build('acvaegan', seed=1)       # other initial weights and dropout seeds
  fresh = train_steps.AcVAETrainer(vae2, disc2, config2)
  fresh.applier.gate_threshold = trainer.applier.gate_threshold
  tf.train.Checkpoint(**fresh.checkpoint_objects()).read(path).assert_existing_objects_matched()
  assert int(fresh.step) == steps and int(fresh.d_calls) == int(trainer.d_calls)
  expected = {k: float(v) for k, v in trainer.train_step(*batches[1]).items()}
  got = {k: float(v) for k, v in fresh.train_step(*batches[1]).items()}
  assert got == expected
  for name in trainer.opt.groups:
    for v, w in zip(trainer.opt.groups[name], fresh.opt.groups[name]):
      np.testing.assert_array_equal(v.numpy(), w.numpy(), err_msg=v.path)
  for v, w in zip(vae.non_trainable_variables + disc.non_trainable_variables,
                  vae2.non_trainable_variables + disc2.non_trainable_variables):
    np.testing.assert_array_equal(v.numpy(), w.numpy(), err_msg=v.path)


# ---------------------------------------------------------------------------------------------- learning
@pytest.mark.slow
def test_tiny_acvaegan_learns_synth_faces():
  config, vae, disc = build('acvaegan')
  faces = synthetic.SynthFaces(size=16, seed=0, num_attributes=config.num_attributes)
  data = faces.generate(np.arange(600))
  images = data['image'].astype(np.float32) / 127.5 - 1.0
  attrs = data['attributes'].astype(np.float32)
  trainer = train_steps.AcVAETrainer(vae, disc, config)
  b, recs = config.batch_size, []
  for step in range(150):
    i = (step * b) % (len(images) - b + 1)
    metrics = trainer.train_step(images[i:i + b], attrs[i:i + b])
    recs.append(float(metrics['loss/rec']))
    assert all(np.isfinite(float(v)) for v in metrics.values())
  first, last = np.mean(recs[:10]), np.mean(recs[-10:])
  print(f"loss/rec first 10 steps {first:.4f}, last 10 {last:.4f}")
  assert last < 0.6 * first, (first, last)


def test_a_grown_model_trains_its_new_levels_and_keeps_the_rest_routed():
  # After progressive.grow, one step must move the fresh levels (grow_enc, grow_gen, grow_d) as well as the
  # pretrained groups: a group left out of the routes would stay at its initial values.
  from rlcv_tf.acvae import progressive  # pylint: disable=g-import-not-at-top
  cfg = presets.get_preset('tiny_acvaegan')
  vae, disc = networks.build_models(cfg)
  vae2, disc2, cfg2 = progressive.grow(vae, disc, cfg, total_steps=4)
  progressive.set_alpha(0.5, vae2, disc2)
  trainer = train_steps.AcVAETrainer(vae2, disc2, cfg2)
  groups = trainer.opt.groups
  assert {'grow_enc', 'grow_gen', 'grow_d'} <= set(groups)
  before = {name: [v.numpy().copy() for v in variables] for name, variables in groups.items()}
  rng = np.random.default_rng(0)
  x = rng.uniform(-1, 1, (cfg2.batch_size, cfg2.resolution, cfg2.resolution, 3)).astype(np.float32)
  a = rng.choice([-1.0, 1.0], (cfg2.batch_size, cfg2.num_attributes)).astype(np.float32)
  out = trainer.train_step(x, a)
  assert all(np.isfinite(float(v)) for v in out.values())
  for name in ('grow_enc', 'grow_gen', 'grow_d', 'enc', 'dec', 'trunk', 'attention'):
    moved = [not np.array_equal(b, v.numpy()) for b, v in zip(before[name], groups[name])]
    assert any(moved), name
