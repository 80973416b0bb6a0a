"""Pure-TF training step of Chapter 6: cVAE-GAN, cVAE, conditional crVAE-GAN and acVAE-GAN (thesis Eq. 6.1,
Sec. 6.3-6.5.1, T:L5790-5810, T:L5993-5999; spec ch5_6 Part B3, B4, §8-A6, A7, A17, A19, A36).

Built the way Chapter 5's Stage-1 step is (`crvae.train_steps`): a model-specific loss builder (`ConditionalLosses`:
the loss terms under a gradient tape and the `Route`s saying which loss trains which parameter group) plus the
generic `UpdateApplier` over a `GroupedAdam` (per-group Adam settings, LR multipliers, clipping, the D gate and the D
warm-up). No file I/O and no logging: `train_step` returns scalar tensors that the training loop writes.

Per step, on a batch (x, a), x in [-1, 1], a in {-1, +1}^N (Eq. 6.1 read as spec §8-A19: its D(z, a) is
D(G(z, a), a) and its q(z|x) is q(z|x, a)):

  mu_q, lv_q = E(x, a);  mu_p, lv_p = p(z|a);  z_q = mu_q + sigma_q eps;  (u_q, x~_q) = G(z_q, a)
  z_p = mu_p + sigma_p eps';  (u_p, x~_p) = G(z_p, a)                              (models with D)
  KL_t   = KL(q(z|x,a) || p(z|a)) in channel block t (`acvae.losses.conditional_kl_per_block`; cVAE(-GAN): one block)
  L_G    = mean (x~_q - x)^2 + sum_t w_t KL_t + beta [BCE(D(x~_q, a), 1) + BCE(D(x~_p, a), 1)] + kappa L_MI + L_attn
  L_MI   = mse(q_psi(f(x~_q, a)), sg(u_q)) + mse(q_psi(f(x~_p, a)), sg(u_p))        (crVAE-GAN, acVAE-GAN)
  L_attn = lambda_ent mean_n H(M[:, n]) + lambda_ds sum_t (sum_n M[t, n] - N/T)^2    (acVAE-GAN)
  L_D    = BCE(D(x_mix, a_mix), y) on the conditional minibatch (`core.gan.conditional_mix_batch`): real pairs
           (x, a) labelled 1, mismatched pairs (x, a(x')) with a(x') another example's vector that differs from a
           in at least one attribute, reconstructions (x~_q, a) and prior samples (x~_p, a), all labelled 0; in
           thirds (the thesis, `d_mix='thirds'`, period 6) or R6's quarters (`d_mix='quarters'`, period 4).
The D always sees the raw a (never the attended a_t). Routes: L_G -> every generator group (E, the from-RGB stem,
LSTM_inf, LSTM_gen, Dec, to-RGB, the prior, the attention W), so gradients reach the prior through the KL and the
prior-sample pass; L_MI (weight 1) -> q_psi and the D trunk F; L_D -> the D head (gated) and F (gated only with
gate_scope 'head+trunk'; Chapter 6's 'head', R6, keeps F's L_D gradient when the head is skipped, spec §8-A36).

D gate (T:L5996-5999): when D's accuracy on the mixed batch exceeds `d_gate_threshold` (0.9) the gated updates are
skipped entirely (no variable, Adam moment or iteration changes). D warm-up (`d_warmup`, R5/R6's adam_gan): D-head LR
x1/50 for its first 10 calls, x1/5 to call 30.

Optimisers (spec B4): one Adam per group, eps 1e-8, beta1 0.9, beta2 0.999 (the thesis, T:L5993-5995); R6's beta1
0.5 on the D side (D head, trunk with the D from-RGB, MI head) only when `d_adam_beta1` is set. Learning-rate
multipliers: enc, from_rgb, to_rgb x1 (`lr_mult_enc` on enc, `lr_mult_dec` on dec); lstm_inf, lstm_gen x1/T and the
prior x`resolved_lr_mult_prior` (1/T), all three clipped element-wise at +-`grad_clip` (5); attention
x`lr_mult_attention` (1); trunk x`lr_mult_trunk`, D head x`resolved_lr_mult_dhead`, q_psi x`lr_mult_qpsi` (1/2 each).

Randomness: eps, eps', the mismatched choice and the D's dropout masks are stateless draws from (seed, step)
(`ConditionalLosses.noise`; the dropout layers' seed generators, which Keras does not checkpoint, are reseeded at
every step), so a restored run replays the same step. The prior-sample pass normalises with its own batch
statistics but leaves the generation path's batch-norm moving statistics to the reconstruction pass
(`core.vaegan.optim.keeping_moving_statistics`).
"""

from typing import Optional, Sequence, Tuple

import keras
import tensorflow as tf

from rlcv_tf.acvae import attention as attention_lib
from rlcv_tf.acvae import losses
from rlcv_tf.acvae import presets
from rlcv_tf.core import gan
from rlcv_tf.core.vaegan import optim
from rlcv_tf.core.vaegan.optim import GroupedAdam, GroupedTrainer, ParamGroup, Route, UpdateApplier, route_gradients

# Groups clipped element-wise at +-grad_clip (spec B4).
CLIPPED_GROUPS = ('lstm_inf', 'lstm_gen', 'prior')
# D-side groups: R6's beta1 0.5 applies to them when `d_adam_beta1` is set.
D_GROUPS = ('trunk', 'd_head', 'q_head')
# The generator's layers on the path z -> x~ (those that hold batch norms: the conv head and Dec).
_GENERATION_PARTS = ('gen_attr', 'gen_fc', 'transform_path', 'to_trunk', 'decoder_trunk')


def _reparameterize(mu, logvar, eps):
  return mu + tf.exp(0.5 * logvar) * eps


def seed_generator_states(models) -> list:
  """The state variables of every Keras SeedGenerator inside `models` (the dropout layers' random streams)."""
  found, seen = [], set()
  for model in models:
    if model is None:
      continue
    for layer in model._flatten_layers(include_self=True):  # pylint: disable=protected-access
      for value in vars(layer).values():
        if isinstance(value, keras.random.SeedGenerator) and id(value.state) not in seen:
          seen.add(id(value.state))
          found.append(value.state)
  return found


# ------------------------------------------------------------------------------------------- loss builder
class ConditionalLosses:
  """The model-specific half of a Chapter 6 step (module docstring): loss terms and their routes.

    generator_phase(x, a, seed=None, noise=None) -> ({'g': L_G[, 'mi': L_MI]}, metrics, context), under one tape;
    discriminator_phase(x, a, context) -> ({'d': L_D}, metrics, gate accuracy) on the conditional mix, under a second
      tape (None without D); context['d_batch'] then holds the D minibatch (images, conditions, labels, source);
    routes(): which loss trains which group and which routes are gated.

  Args:
    vae: a built `acvae.networks.AttributeVAE`.
    disc: its `ConditionalDiscriminator`, or None (cVAE).
    cfg: the `AcVAEConfig`.
    gen_group_names: the generator's parameter groups (those L_G trains).
  """

  def __init__(self, vae, disc, cfg: presets.AcVAEConfig, gen_group_names: Sequence[str]):
    self.vae, self.disc, self.cfg = vae, disc, cfg
    self.gen_group_names = tuple(gen_group_names)
    self.has_mi = bool(disc is not None and cfg.has_mi and disc.q_head is not None)
    self.mix = gan.conditional_mix(cfg.d_mix)
    # The FC latent of cVAE(-GAN) is one block weighted by alpha; the recurrent models have T blocks (alpha1, alpha2).
    self.num_kl_blocks = cfg.num_blocks if cfg.recurrent else 1
    n_early = cfg.resolved_n_early if cfg.recurrent else 1
    self.kl_weights = tf.constant(losses.block_kl_weights(self.num_kl_blocks, cfg.alpha1, cfg.alpha2, n_early),
                                  tf.float32)
    self.base_seed = tf.constant([int(cfg.seed), 0], tf.int64)
    self._generation_bn_statistics = None
    self._dropout_states = None

  def routes(self) -> Tuple[Route, ...]:
    routes = [Route('g', name) for name in self.gen_group_names]
    if self.disc is not None:
      # A grown D's newest level (progressive.py, group grow_d) sits before the trunk and is trained like it.
      d_inputs = ('trunk', 'grow_d') if 'grow_d' in self.disc.variable_groups() else ('trunk',)
      if self.has_mi:
        routes += [Route('mi', 'q_head')] + [Route('mi', name) for name in d_inputs]
      routes += [Route('d', 'd_head', gated=True)]
      routes += [Route('d', name, gated=self.cfg.gate_scope == 'head+trunk') for name in d_inputs]
    return tuple(routes)

  @property
  def generation_bn_statistics(self):
    """Moving means and variances of every batch norm on the path z -> x~ (the conv head and Dec)."""
    if self._generation_bn_statistics is None:
      self._generation_bn_statistics = optim.batch_norm_moving_statistics(
          [getattr(self.vae, name, None) for name in _GENERATION_PARTS])
    return self._generation_bn_statistics

  @property
  def dropout_seed_states(self):
    """The seed-generator states of the models' dropout layers (the D's), reseeded at every seeded step."""
    if self._dropout_states is None:
      self._dropout_states = seed_generator_states((self.vae, self.disc))
    return self._dropout_states

  def step_seed(self, step):
    """The stateless seed [2] of step `step`: (cfg.seed, 0) with the step folded in."""
    return tf.random.experimental.stateless_fold_in(self.base_seed, tf.cast(step, tf.int64))

  def noise(self, seed, like):
    """{'eps_q', 'eps_p'} (standard normals shaped like `like`, the latent), 'mismatch_seed' (for
    `gan.mismatched_attributes`) and 'dropout_seed', all drawn statelessly from `seed` [2]."""
    seeds = tf.random.experimental.stateless_split(seed, 4)
    shape = tf.shape(like)
    return dict(eps_q=tf.random.stateless_normal(shape, seeds[0], dtype=like.dtype),
                eps_p=tf.random.stateless_normal(shape, seeds[1], dtype=like.dtype), mismatch_seed=seeds[2],
                dropout_seed=seeds[3])

  def reseed_dropout(self, seed):
    """Sets every dropout seed generator to a state drawn from `seed` [2], so the step's dropout masks depend on
    (cfg.seed, step) only: Keras does not checkpoint these states, and a resumed run then replays the same step."""
    for i, state in enumerate(self.dropout_seed_states):
      start = tf.math.floormod(tf.random.experimental.stateless_fold_in(seed, i)[0], 2 ** 31 - 1)
      state.assign(tf.cast(tf.stack([start, tf.zeros_like(start)]), state.dtype))

  def generator_phase(self, x, a, seed=None, noise=None):
    """L_G (and L_MI) of one batch.

    Args:
      x: images [B, R, R, 3] in [-1, 1]; a: attributes [B, N] in {-1, +1}.
      seed: a stateless seed [2] for this step's noise and dropout (`step_seed`); None: stateful `tf.random`
        draws, the deterministic mismatched choice and the dropout layers' own seed streams.
      noise: optional explicit {'eps_q', 'eps_p'[, 'mismatch_seed', 'dropout_seed']} (tests); overrides `seed`.

    Returns:
      (loss_values {'g'[, 'mi']}, metrics {name: scalar}, context for `discriminator_phase`).
    """
    cfg, vae, disc = self.cfg, self.vae, self.disc
    x = tf.convert_to_tensor(x, tf.float32)
    a = tf.convert_to_tensor(a, tf.float32)
    mu_q, lv_q = vae.encode(x, a, training=True)
    mu_p, lv_p = vae.prior_params(a, training=True)
    if noise is None:
      if seed is not None:
        noise = self.noise(seed, mu_q)
      else:
        noise = dict(eps_q=tf.random.normal(tf.shape(mu_q)), eps_p=tf.random.normal(tf.shape(mu_q)))
    if noise.get('dropout_seed') is not None:
      self.reseed_dropout(noise['dropout_seed'])
    z_q = _reparameterize(mu_q, lv_q, tf.convert_to_tensor(noise['eps_q'], tf.float32))
    u_q, logits_q = vae.decode_logits(z_q, a, training=True)
    x_q = tf.tanh(logits_q)
    kl_blocks = losses.conditional_kl_per_block(mu_q, lv_q, mu_p, lv_p, self.num_kl_blocks)
    l_rec = losses.reconstruction_mse(x, x_q)
    context = dict(x_q=x_q, mismatch_seed=noise.get('mismatch_seed'))
    metrics, adv, mi, attn = {}, None, None, None
    if disc is not None:
      z_p = _reparameterize(mu_p, lv_p, tf.convert_to_tensor(noise['eps_p'], tf.float32))

      def prior_pass():
        u, logits = vae.decode_logits(z_p, a, training=True)
        return u, tf.tanh(logits)

      u_p, x_p = optim.keeping_moving_statistics(self.generation_bn_statistics, prior_pass)
      context['x_p'] = x_p
      # D in training mode (dropout active) for the generator update, as in Chapter 5 (spec §0); the raw a.
      f_q = disc.features(x_q, a, training=True)
      f_p = disc.features(x_p, a, training=True)
      adv = losses.adversarial_generator_loss(disc.logits(f_q, training=True), disc.logits(f_p, training=True))
      metrics['loss/adv_g'] = adv
      if self.has_mi:
        mi = losses.mi_loss(u_q, disc.mi(f_q, training=True)) + losses.mi_loss(u_p, disc.mi(f_p, training=True))
        metrics['loss/mi'] = mi
    if vae.attention is not None:
      mask = vae.attention.mask()
      attn = losses.attention_loss(mask, cfg.lambda_ent, cfg.lambda_ds)
      metrics.update({'attention/entropy': tf.reduce_mean(attention_lib.entropy_per_attribute(mask)),
                      'attention/even_load': attention_lib.even_load_loss(mask, 1.0), 'loss/attention': attn})
    terms = losses.generator_loss(l_rec, kl_blocks, self.kl_weights, adv=adv, beta=cfg.beta, mi=mi, kappa=cfg.kappa,
                                  attn=attn)
    metrics.update({'loss/rec': terms['rec'], 'loss/kl_total': terms['kl_total'],
                    'loss/kl_weighted': terms['kl_weighted'], 'loss/total': terms['total']})
    metrics.update({f'loss/kl_block_{t}': kl_blocks[t] for t in range(self.num_kl_blocks)})
    loss_values = {'g': terms['total']}
    if mi is not None:
      loss_values['mi'] = mi
    return loss_values, metrics, context

  def discriminator_phase(self, x, a, context):
    """L_D on the conditional minibatch built from x, a and the generator phase's x~_q, x~_p (gradient-stopped)."""
    if self.disc is None:
      return None
    images, conditions, labels, source = gan.conditional_mix_batch(
        tf.convert_to_tensor(x, tf.float32), tf.convert_to_tensor(a, tf.float32), tf.stop_gradient(context['x_q']),
        tf.stop_gradient(context['x_p']), mode=self.mix, seed=context.get('mismatch_seed'))
    context['d_batch'] = dict(images=images, conditions=conditions, labels=labels, source=source)
    d_logits = self.disc.discriminate(images, conditions, training=True)
    l_d = gan.discriminator_loss(d_logits, labels)
    d_accuracy = gan.accuracy(d_logits, labels)
    return {'d': l_d}, {'loss/d': l_d, 'd/accuracy': d_accuracy}, d_accuracy


# ------------------------------------------------------------------------------------------------ trainer
class AcVAETrainer(GroupedTrainer):
  """Training of the four Chapter 6 models: `ConditionalLosses` + `UpdateApplier` (module docstring).

  Args:
    vae: a built `acvae.networks.AttributeVAE` (`networks.build_models`).
    disc: its `ConditionalDiscriminator` (cvaegan, crvaegan, acvaegan), or None (cvae).
    cfg: the `AcVAEConfig` (default `vae.config`).

  `train_step(x, a)` (x float32 [B, R, R, 3] in [-1, 1], a float32 [B, N] in {-1, +1}; with D, B a multiple of the
  D-mix period, 6 for thirds, 4 for quarters) runs one `tf.function` and returns scalar float32 tensors:
    loss/rec, loss/kl_total (sum_t KL_t), loss/kl_weighted (sum_t w_t KL_t), loss/kl_block_{t} (t 0-based; one
    block for cVAE(-GAN)), loss/total (L_G);
    with D: loss/adv_g, loss/d, d/accuracy, d/updated (1 applied, 0 gated), d/lr_head (the D head's LR this call),
    d/warmup (its warm-up multiplier); with MI: loss/mi;
    acVAE-GAN: attention/entropy (mean_n H(M[:, n])), attention/even_load (sum_t (sum_n M[t, n] - N/T)^2,
    unweighted), loss/attention (the weighted L_attn in L_G).
  Public state: `step` (int64 variable), `d_calls` (the D-call counter of the warm-up), `opt` (GroupedAdam),
  `optimizers` ({group: Adam}), `applier`, `loss_builder`; `set_learning_rate(lr)`, `checkpoint_objects()`.
  """

  def __init__(self, vae, disc=None, cfg: Optional[presets.AcVAEConfig] = None):
    cfg = cfg if cfg is not None else vae.config
    if not isinstance(cfg, presets.AcVAEConfig):
      raise ValueError(f'cfg: AcVAETrainer trains Chapter 6 models; valid values are an acvae.presets.AcVAEConfig, '
                       f'got {type(cfg).__name__} (use crvae.train_steps for Chapter 5)')
    cfg = cfg.validate()
    if cfg.adversarial and disc is None:
      raise ValueError(f'disc: model {cfg.model!r} needs its ConditionalDiscriminator; valid values are the '
                       f'discriminator from acvae.networks.build_models')
    if not cfg.adversarial and disc is not None:
      raise ValueError(f'disc: model {cfg.model!r} has no discriminator; valid values are None')
    if cfg.recon_mode != 'pixel':
      raise ValueError(f"recon_mode: Chapter 6 trains with the pixel MSE; valid values are 'pixel', got "
                       f'{cfg.recon_mode!r}')
    if cfg.mi_block_weights is not None:
      raise ValueError('mi_block_weights: not used in Chapter 6; valid values are None')
    self.vae, self.disc, self.cfg = vae, disc, cfg
    groups = dict(vae.variable_groups())
    gen_group_names = tuple(groups)
    self.loss_builder = ConditionalLosses(vae, disc, cfg, gen_group_names)
    self.has_mi = self.loss_builder.has_mi
    if disc is not None:
      disc_groups = disc.variable_groups()
      groups['trunk'] = disc_groups['trunk']
      groups['d_head'] = disc_groups['d_head']
      if self.has_mi:
        groups['q_head'] = disc_groups['q_head']
      if 'grow_d' in disc_groups:
        groups['grow_d'] = disc_groups['grow_d']
    self.opt = GroupedAdam([self._param_group(name, variables) for name, variables in groups.items()],
                           cfg.learning_rate)
    self.applier = UpdateApplier(self.opt, cfg.d_gate_threshold)
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
    self.d_calls = self.applier.calls
    self._compiled_step = tf.function(self._train_step)

  def _param_group(self, name, variables) -> ParamGroup:
    cfg = self.cfg
    multipliers = dict(enc=cfg.lr_mult_enc, from_rgb=1.0, to_rgb=1.0, dec=cfg.lr_mult_dec,
                       lstm_inf=cfg.resolved_lr_mult_lstm, lstm_gen=cfg.resolved_lr_mult_lstm,
                       prior=cfg.resolved_lr_mult_prior, attention=cfg.lr_mult_attention, trunk=cfg.lr_mult_trunk,
                       d_head=cfg.resolved_lr_mult_dhead, q_head=cfg.lr_mult_qpsi)
    # A grown model (progressive.py): its pretrained groups x lr_mult_pretrained, the fresh levels at LR (spec B2.1).
    pretrained = float(getattr(cfg, 'lr_mult_pretrained', 1.0))
    multipliers = {group: m * pretrained for group, m in multipliers.items()}
    multipliers.update(grow_enc=1.0, grow_gen=1.0, grow_d=1.0)
    if name not in multipliers:
      raise ValueError(f'parameter group {name!r}: no learning-rate multiplier; valid groups are {tuple(multipliers)}')
    return ParamGroup(name, variables, lr_multiplier=multipliers[name],
                      beta_1=cfg.resolved_d_adam_beta1 if name in D_GROUPS + ('grow_d',) else cfg.adam_beta1,
                      beta_2=cfg.adam_beta2, epsilon=cfg.adam_epsilon,
                      clip=float(cfg.grad_clip) if name in CLIPPED_GROUPS else 0.0,
                      per_call_lr=name == 'd_head', warmup=name == 'd_head' and bool(cfg.d_warmup))

  # ---------------------------------------------------------------------------------------- the step
  def _train_step(self, x, a):
    builder, groups = self.loss_builder, self.opt.groups
    routes = builder.routes()
    contributions = {}
    with tf.GradientTape(persistent=True) as tape:
      loss_values, metrics, context = builder.generator_phase(x, a, seed=builder.step_seed(self.step))
    route_gradients(tape, loss_values, routes, groups, contributions)
    del tape
    gate_accuracy = None
    if self.disc is not None:
      with tf.GradientTape() as tape_d:
        d_losses, d_metrics, gate_accuracy = builder.discriminator_phase(x, a, context)
      route_gradients(tape_d, d_losses, routes, groups, contributions)
      metrics.update(d_metrics)
    update = self.applier.apply(contributions, gate_accuracy)
    if self.disc is not None:
      metrics.update({'d/updated': tf.cast(update['applied']['d_head'], tf.float32),
                      'd/lr_head': update['learning_rate']['d_head'],
                      'd/warmup': (gan.warmup_multiplier(update['call_index']) if self.cfg.d_warmup
                                   else tf.constant(1.0))})
    self.step.assign_add(1)
    return {name: tf.cast(value, tf.float32) for name, value in metrics.items()}
