"""Pure-TF training steps of Chapter 5: Stage 1 (VAE-GAN / crVAE-GAN / cVAE), MNIST (ELBO / IWAE), Stage 2.

Thesis Sec. 5.3.3 and App. 5.D (T:L5339-5399, L5400-5498); spec ch5 §A3.1-A3.3, §A3.5, §8. No file I/O and no
logging: every `train_step` returns a dict of scalar tensors that the training loop writes as summaries.

Stage 1 (`Stage1Trainer`), one `tf.function` per step, a simultaneous version of the authors' module-by-module
updates (spec A3.2, §8-A23): all gradients are taken at the current weights, then applied.
  L_rec   = mean (x~_q - x)^2                                  (pixel; recon_mode 'disc_feature' = Larsen's
                                                                 0.5 * mean (F(x) - F(x~_q))^2, off by default)
  L_prior = sum_t w_t KL_t, w_t = alpha1 for the first n_early blocks, alpha2 after (thesis Eq. 5.4 / App. 5.D)
  L_advG  = BCE(D(x~_q), 1) + BCE(D(x~_p), 1)                  (non-saturating, spec §8-A26)
  L_MI    = mse(q_psi(F(x~_q)), sg(u_q)) + mse(q_psi(F(x~_p)), sg(u_p))      (crVAE-GAN with MI)
  L_G     = L_rec + L_prior + beta L_advG + kappa L_MI          -> E, heads, LSTMs, Dec
  L_Q     = L_MI (weight 1; kappa scales only the generator side)  -> q_psi and F
  L_D     = BCE(D(x_mix), y) on the 2:1:1 mixed batch           -> D head and F, gated
Optimisers: one Adam (eps 1e-8, 0.9, 0.999) per group with R5's learning-rate multipliers: enc, dec x1; lstm_inf,
lstm_gen x1/T with element-wise gradient clipping +-5; q_head x1; trunk F x1/2; D head x1 (crVAE-GAN) or x1/2
(VAE-GAN). D gate (T:L5341-5343): when D's accuracy on the mixed batch exceeds 0.9 the D update is skipped, no
apply_gradients, Adam moments and iterations untouched; with gate_scope 'head+trunk' (Ch5 default, R5) F's L_D
gradient is dropped too, F's L_Q gradient is always applied. D warm-up (R5 adam_gan, flag): D-head LR x1/50 for its
first 10 calls and x1/5 to call 30; the call counter advances even when the gate skips.

With an MI head, F receives its L_Q and (gated) L_D gradients as one sum through one Adam step per train step;
without one (VAE-GAN) F's L_D step is gated like the D head's. The D forward on the mixed batch uses the F weights from before this step's L_Q
update (the simultaneous form); the spec's sequential pseudo-code updates F from L_Q first.

Structure (shared with the models that build on Chapter 5): a step is a model-specific loss builder
(`Stage1Losses`, `MNISTLosses`: the loss terms under a gradient tape, and `Route`s saying which loss trains which
parameter group and which routes the D gate controls) plus a generic update applier (`UpdateApplier` over a
`GroupedAdam` of `ParamGroup`s: per-group Adam settings, LR multipliers, clipping, the gate and the warm-up). The prior
is a component (`networks.StandardNormalPrior` = N(0, I) for Chapter 5; a learned prior brings a 'prior' group).

MNIST (`MNISTTrainer`, spec A3.5): the exact Bernoulli ELBO, E_q[log p(x|z)] - KL (default), R5's per-pixel BCE +
alpha KL (`mnist_objective='repo_alpha'`), or the k-sample IWAE bound (crIWAE, k = 5).

Stage 2 (`Stage2Trainer`, A3.3): frozen Stage-1 VAE in inference mode feeds G2 with reconstructions and prior
samples; D2 is trained with the thesis' three-term loss and G2 with the non-saturating BCE plus the optional
perceptual term gamma * mean (f(S(x)) - f(G2(x~_q)))^2 on reconstructions only.
"""

from typing import Dict, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from rlcv_tf.core import gan
from rlcv_tf.core.vaegan import losses
from rlcv_tf.core.vaegan.optim import GroupedTrainer, Route, UpdateApplier, batch_norm_moving_statistics
from rlcv_tf.core.vaegan.optim import grouped_adam, keeping_moving_statistics, route_gradients
from rlcv_tf.crvae import presets

def _kl_metrics(kl_blocks, num_blocks):
  return {f'loss/kl_block_{t}': kl_blocks[t] for t in range(num_blocks)}


# ------------------------------------------------------------------------------------------ loss builders
class Stage1Losses:
  """The model-specific half of a Stage-1 step (VAE-GAN / crVAE-GAN / RGB VAE): loss terms and their routes.

  generator_phase(x) -> ({'g': L_G[, 'mi': L_MI]}, metrics, context), taken under one tape;
  discriminator_phase(x, context) -> ({'d': L_D}, metrics, gate accuracy) on the 2:1:1 mix, under a second tape
  (None without D); routes(): which loss trains which group, and which routes are gated.
  The prior is a component (`prior.kl_per_block`, `prior.sample`): the VAE's N(0, I) unless another is given.
  """

  def __init__(self, vae, disc, cfg: presets.CrVAEConfig, gen_group_names: Sequence[str], prior=None,
               mix: gan.MinibatchMix = gan.THESIS_MIX):
    self.vae, self.disc, self.cfg = vae, disc, cfg
    self.prior = prior if prior is not None else vae.prior
    self.num_blocks = cfg.num_blocks
    self.gen_group_names = tuple(gen_group_names)
    self.has_mi = bool(disc is not None and cfg.has_mi and disc.q_head is not None)
    self.mix = mix
    self._generation_bn_statistics = None
    self.kl_weights = tf.constant(
        losses.block_kl_weights(cfg.num_blocks, cfg.alpha1, cfg.alpha2, cfg.resolved_n_early), tf.float32)
    self.mi_channel_weights = None
    if cfg.mi_block_weights is not None:
      per_block = cfg.n_z // cfg.num_blocks
      self.mi_channel_weights = tf.constant(np.repeat(np.asarray(cfg.mi_block_weights, np.float32), per_block),
                                            tf.float32)

  def routes(self) -> Tuple[Route, ...]:
    routes = [Route('g', name) for name in self.gen_group_names]
    if self.disc is not None:
      if self.has_mi:
        routes += [Route('mi', 'q_head'), Route('mi', 'trunk')]
      routes += [Route('d', 'd_head', gated=True), Route('d', 'trunk', gated=self.cfg.gate_scope == 'head+trunk')]
    return tuple(routes)

  def mi_loss(self, u, u_hat):
    """L_MI for one path: mean (u_hat - sg(u))^2, block-weighted with `repo_mi_weights` (spec A3.1, §8-A4)."""
    if self.mi_channel_weights is None:
      return losses.mi_loss(u, u_hat)
    return tf.reduce_mean(self.mi_channel_weights * tf.square(u_hat - tf.stop_gradient(u)))

  def reconstruction(self, x, x_q):
    if self.cfg.recon_mode == 'pixel':
      return losses.reconstruction_mse(x, x_q)
    # Larsen et al.'s learned similarity on F's last conv block; F is not trained by it (spec A3.1).
    f_x = self.disc.features(x, training=False)
    f_q = self.disc.features(x_q, training=False)
    return 0.5 * tf.reduce_mean(tf.square(f_q - tf.stop_gradient(f_x)))

  @property
  def generation_bn_statistics(self):
    """Moving means and variances of every batch norm on the generation path (LSTM_gen, FC/conv head, decoder)."""
    if self._generation_bn_statistics is None:
      self._generation_bn_statistics = batch_norm_moving_statistics(
          (self.vae.transform_path, self.vae.to_trunk, self.vae.decoder_trunk))
    return self._generation_bn_statistics

  def generator_phase(self, x):
    cfg, vae, disc = self.cfg, self.vae, self.disc
    out = vae(x, training=True)
    mu, logvar, u_q, x_q = out['mu'], out['logvar'], out['u'], out['x_tilde']
    kl_blocks = self.prior.kl_per_block(mu, logvar, self.num_blocks)
    l_prior = losses.weighted_kl(kl_blocks, self.kl_weights)
    l_rec = self.reconstruction(x, x_q)
    l_g = l_rec + l_prior
    loss_values, metrics, context = {}, {}, dict(x_q=x_q)
    if disc is not None:
      z_p = self.prior.sample(like=mu)
      # The prior pass normalises with its own batch statistics but leaves the moving statistics (what inference
      # mode uses) to the reconstruction pass: with Torch momentum 0.9 they are ~90% the newest batch, and prior
      # samples' statistics made inference-mode reconstructions up to 3x worse than training mode's
      # (docs/crvae_default_diagnosis.md).
      def prior_pass():
        u = vae.transform(z_p, training=True)
        return u, vae.output_activation(vae.decode_transformed(u, training=True))
      u_p, x_p = keeping_moving_statistics(self.generation_bn_statistics, prior_pass)
      context['x_p'] = x_p
      # D stays in training mode (dropout active) during the generator update (spec §0).
      f_q = disc.features(x_q, training=True)
      f_p = disc.features(x_p, training=True)
      l_adv = (gan.generator_loss(disc.logits(f_q, training=True)) +
               gan.generator_loss(disc.logits(f_p, training=True)))
      l_g = l_g + cfg.beta * l_adv
      metrics['loss/adv_g'] = l_adv
      if self.has_mi:
        l_mi = (self.mi_loss(u_q, disc.mi(f_q, training=True)) + self.mi_loss(u_p, disc.mi(f_p, training=True)))
        l_g = l_g + cfg.kappa * l_mi
        metrics['loss/mi'] = l_mi
        loss_values['mi'] = l_mi
    loss_values['g'] = l_g
    context['metrics_after'] = {'loss/rec': l_rec, 'loss/kl_total': tf.reduce_sum(kl_blocks),
                                'loss/kl_weighted': l_prior, 'loss/total': l_g}
    context['metrics_after'].update(_kl_metrics(kl_blocks, self.num_blocks))
    return loss_values, metrics, context

  def discriminator_phase(self, x, context):
    if self.disc is None:
      return None
    x_mix, labels, _ = self.mix.mix({'real': x, 'recon': tf.stop_gradient(context['x_q']),
                                     'prior': tf.stop_gradient(context['x_p'])})
    d_logits = self.disc.discriminate(x_mix, training=True)
    l_d = gan.discriminator_loss(d_logits, labels)
    d_accuracy = gan.accuracy(d_logits, labels)
    return {'d': l_d}, {'loss/d': l_d, 'd/accuracy': d_accuracy}, d_accuracy


class MNISTLosses:
  """The model-specific half of an MNIST step (spec A3.5): one loss, 'total', to every group (see MNISTTrainer)."""

  def __init__(self, vae, cfg: presets.CrVAEConfig, group_names: Sequence[str], prior=None):
    self.vae, self.cfg = vae, cfg
    self.prior = prior if prior is not None else vae.prior
    self.num_blocks = cfg.num_blocks
    self.group_names = tuple(group_names)
    self.kl_weights = tf.constant(
        losses.block_kl_weights(cfg.num_blocks, cfg.alpha1, cfg.alpha2, cfg.resolved_n_early), tf.float32)

  def routes(self) -> Tuple[Route, ...]:
    return tuple(Route('total', name) for name in self.group_names)

  def losses(self, x, training=True):
    """The loss terms of one batch (differentiable)."""
    cfg, vae = self.cfg, self.vae
    metrics = {}
    if cfg.mnist_objective == 'iwae':
      k = int(cfg.iwae_k)
      mu, logvar = vae.encode(x, training=training)
      mu_k, logvar_k = tf.tile(mu, [k, 1, 1, 1]), tf.tile(logvar, [k, 1, 1, 1])    # row k*B + b
      z = vae.reparameterize(mu_k, logvar_k)
      logits = vae.decode_logits(z, training=training)
      log_px = losses.bernoulli_log_likelihood(tf.tile(x, [k, 1, 1, 1]), logits)
      log_w = log_px + self.prior.log_prob(z) - losses.diag_gaussian_log_prob(z, mu_k, logvar_k)
      bound = losses.iwae_bound(tf.reshape(log_w, (k, -1)))
      rec = -tf.reduce_mean(log_px)
      kl_blocks = self.prior.kl_per_block(mu, logvar, self.num_blocks)
      total = -tf.reduce_mean(bound)
      metrics['loss/iwae'] = total
    else:
      out = vae(x, training=training)
      rec = -tf.reduce_mean(losses.bernoulli_log_likelihood(x, out['logits']))
      kl_blocks = self.prior.kl_per_block(out['mu'], out['logvar'], self.num_blocks)
      rec_term = rec / float(np.prod(cfg.image_shape)) if cfg.mnist_objective == 'repo_alpha' else rec
      total = rec_term + losses.weighted_kl(kl_blocks, self.kl_weights)
    kl_total = tf.reduce_sum(kl_blocks)
    metrics.update({'loss/total': total, 'loss/rec': rec, 'loss/kl_total': kl_total, 'loss/neg_elbo': rec + kl_total})
    metrics.update(_kl_metrics(kl_blocks, self.num_blocks))
    return metrics


# ------------------------------------------------------------------------------------------------ Stage 1
class Stage1Trainer(GroupedTrainer):
  """Stage-1 training of VAE-GAN / crVAE-GAN (with a discriminator) or a plain RGB VAE / cVAE / crVAE (disc None).

  The step is `Stage1Losses` (the model-specific loss terms and their routes) + `UpdateApplier` (the parameter
  groups with their Adam settings, the D gate and warm-up); `self.loss_builder` and `self.applier` are public.

  Args:
    vae: a built `networks.ImageVAE` with likelihood 'gaussian'.
    disc: the built `networks.Discriminator`, or None for the models without D.
    cfg: the config (default `vae.config`).
    prior: the prior component (default `vae.prior`, N(0, I)); a learned prior's variables form group 'prior'.

  `train_step(x)` (x float32 [B, R, R, C] in [-1, 1], B % 4 == 0 with D) returns scalar tensors:
    loss/rec, loss/kl_total (unweighted sum of the KL_t), loss/kl_weighted (L_prior), loss/kl_block_{t} (t 0-based),
    loss/total (L_G); with D also loss/adv_g, loss/d, d/accuracy, d/updated (1 applied, 0 gated), d/lr_head (the
    D-head learning rate of this call), d/warmup (its multiplier); with MI also loss/mi.
  """

  def __init__(self, vae, disc=None, cfg: Optional[presets.CrVAEConfig] = None, prior=None):
    cfg = (cfg or vae.config).validate()
    if cfg.likelihood != 'gaussian':
      raise ValueError(f"likelihood: Stage1Trainer trains RGB models; valid values are 'gaussian' "
                       f"(use MNISTTrainer for {cfg.likelihood!r})")
    if cfg.adversarial and disc is None:
      raise ValueError(f'disc: model {cfg.model!r} needs a Discriminator; valid values are a built Discriminator')
    if not cfg.adversarial:
      disc = None
    self.vae, self.disc, self.cfg = vae, disc, cfg
    self.num_blocks = cfg.num_blocks
    groups = dict(vae.variable_groups())
    prior = prior if prior is not None else vae.prior
    if prior.trainable_variables:
      groups['prior'] = list(prior.trainable_variables)
    self.gen_group_names = tuple(groups)
    self.loss_builder = Stage1Losses(vae, disc, cfg, self.gen_group_names, prior)
    self.has_mi = self.loss_builder.has_mi
    self.kl_weights = self.loss_builder.kl_weights
    self.mi_channel_weights = self.loss_builder.mi_channel_weights
    if disc is not None:
      disc_groups = disc.variable_groups()
      groups['trunk'] = disc_groups['trunk']
      groups['d_head'] = disc_groups['d_head']
      if self.has_mi:
        groups['q_head'] = disc_groups['q_head']
    lstm = cfg.resolved_lr_mult_lstm
    multipliers = dict(enc=cfg.lr_mult_enc, dec=cfg.lr_mult_dec, lstm_inf=lstm, lstm_gen=lstm, prior=lstm,
                       trunk=cfg.lr_mult_trunk, d_head=cfg.resolved_lr_mult_dhead, q_head=cfg.lr_mult_qpsi)
    self.opt = grouped_adam(cfg, groups, multipliers, per_call=('d_head',),
                                    warmup=('d_head',) if cfg.d_warmup else ())
    self.applier = UpdateApplier(self.opt, cfg.d_gate_threshold)
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
    self.d_calls = self.applier.calls
    self._compiled_step = tf.function(self._train_step)

  # ---------------------------------------------------------------------------------------- public
  def mi_loss(self, u, u_hat):
    """L_MI for one path: mean (u_hat - sg(u))^2, block-weighted with `repo_mi_weights` (spec A3.1, §8-A4)."""
    return self.loss_builder.mi_loss(u, u_hat)

  def d_head_learning_rate(self, call_index):
    """The D-head LR at D call `call_index`: base * multiplier * (warm-up multiplier when d_warmup)."""
    return self.opt.learning_rate_at('d_head', call_index)

  # ---------------------------------------------------------------------------------------- the step
  def _train_step(self, x):
    builder, groups = self.loss_builder, self.opt.groups
    routes = builder.routes()
    contributions = {}
    with tf.GradientTape(persistent=True) as tape:
      loss_values, metrics, context = builder.generator_phase(x)
    route_gradients(tape, loss_values, routes, groups, contributions)
    del tape
    gate_accuracy = None
    if self.disc is not None:
      with tf.GradientTape() as tape_d:
        d_losses, d_metrics, gate_accuracy = builder.discriminator_phase(x, context)
      route_gradients(tape_d, d_losses, routes, groups, contributions)
    # Apply: generator groups (always), q_psi (always), F and the D head (gated).
    update = self.applier.apply(contributions, gate_accuracy)
    if self.disc is not None:
      call_index = update['call_index']
      metrics.update(d_metrics)
      metrics.update({'d/updated': tf.cast(update['applied']['d_head'], tf.float32),
                      'd/lr_head': update['learning_rate']['d_head'],
                      'd/warmup': gan.warmup_multiplier(call_index) if self.cfg.d_warmup else tf.constant(1.0)})
    self.step.assign_add(1)
    metrics.update(context['metrics_after'])
    return {name: tf.cast(value, tf.float32) for name, value in metrics.items()}


# ------------------------------------------------------------------------------------------------ MNIST
class MNISTTrainer(GroupedTrainer):
  """MNIST ablations of Table 5.B.1 (spec A3.5): Bernoulli likelihood on {0, 1} images, no discriminator.

  mnist_objective:
    'elbo'       (default) loss = -E_q[log p(x|z)] + sum_t w_t KL_t with w_t = alpha (1 in the presets): the exact
                 negative ELBO in nats per image;
    'repo_alpha' R5: per-pixel mean BCE + alpha KL (alpha = 0.001; effective beta 0.784, spec §8-A33);
    'iwae'       crIWAE: loss = -mean_b log (1/K) sum_k p(x, z_k) / q(z_k | x), K = iwae_k (Burda et al. 2015).

  `train_step(x)` (x float32 [B, 28, 28, 1] in {0, 1}) returns loss/total (the minimised loss), loss/rec
  (-E log p(x|z), nats per image), loss/kl_total, loss/kl_block_{t}, loss/neg_elbo (rec + kl_total) and, for
  'iwae', loss/iwae (the negative K-sample bound). The step is `MNISTLosses` + `UpdateApplier`.
  """

  def __init__(self, vae, cfg: Optional[presets.CrVAEConfig] = None, prior=None):
    cfg = (cfg or vae.config).validate()
    if cfg.likelihood != 'bernoulli':
      raise ValueError(f"likelihood: MNISTTrainer needs 'bernoulli'; valid values are 'bernoulli' "
                       f"(use Stage1Trainer for {cfg.likelihood!r})")
    self.vae, self.cfg = vae, cfg
    self.num_blocks = cfg.num_blocks
    groups = dict(vae.variable_groups())
    prior = prior if prior is not None else vae.prior
    if prior.trainable_variables:
      groups['prior'] = list(prior.trainable_variables)
    self.loss_builder = MNISTLosses(vae, cfg, tuple(groups), prior)
    self.kl_weights = self.loss_builder.kl_weights
    lstm = cfg.resolved_lr_mult_lstm
    self.opt = grouped_adam(cfg, groups, dict(enc=cfg.lr_mult_enc, dec=cfg.lr_mult_dec, lstm_inf=lstm,
                                                      lstm_gen=lstm, prior=lstm))
    self.applier = UpdateApplier(self.opt, cfg.d_gate_threshold)
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
    self._compiled_step = tf.function(self._train_step)

  def losses(self, x, training=True):
    """The loss terms of one batch (differentiable); used by the step and by tests."""
    return self.loss_builder.losses(x, training=training)

  def _train_step(self, x):
    contributions = {}
    with tf.GradientTape() as tape:
      metrics = self.loss_builder.losses(x, training=True)
    route_gradients(tape, {'total': metrics['loss/total']}, self.loss_builder.routes(), self.opt.groups,
                    contributions)
    self.applier.apply(contributions)
    self.step.assign_add(1)
    return {name: tf.cast(value, tf.float32) for name, value in metrics.items()}


def make_trainer(vae, disc=None, cfg: Optional[presets.CrVAEConfig] = None):
  """The Stage-1 trainer that fits the model: MNISTTrainer for 'bernoulli', Stage1Trainer otherwise."""
  cfg = cfg or vae.config
  if cfg.likelihood == 'bernoulli':
    return MNISTTrainer(vae, cfg)
  return Stage1Trainer(vae, disc, cfg)


# ------------------------------------------------------------------------------------------------ Stage 2
class Stage2Trainer:
  """Stage-2 refinement (thesis App. 5.D "stage2 objective"; spec A3.3) on a frozen Stage-1 VAE.

  Per batch of aligned pairs (x at the Stage-1 resolution, S(x) at the Stage-2 resolution):
    x~_q = Stage1(x) (a posterior sample, inference mode), x~_p = Stage1.decode(z ~ N(0, I));
    L_D2 = BCE(D2(S(x)), 1) + BCE(D2(G2(x~_p)), 0) + BCE(D2(G2(x~_q)), 0)        (the thesis' three terms)
    L_G2 = BCE(D2(G2(x~_p)), 1) + BCE(D2(G2(x~_q)), 1) + gamma * mean (f(S(x)) - f(G2(x~_q)))^2
  The generator term uses the non-saturating BCE instead of the thesis' log(1 - D) (spec §8-A26). The thesis'
  L_D sums the three expectations with weight 1 each; it is followed here rather than the spec's [P] halves
  (A27). The D gate is off by default for Stage 2 (not stated; `d_gate_threshold=None`).

  Args:
    stage1: the trained `ImageVAE` (never updated here).
    generator: G2 (`stage2.build_stage2_models`).
    discriminator: D2, returning logits.
    config: `stage2.Stage2Config` (learning_rate, adam_beta1, gamma).
    feature_net: f, a Keras model on [-1, 1] images (`stage2.perceptual_feature_net`); required when gamma > 0.
    d_gate_threshold: optional Stage-2 D gate.

  `train_step(x_low, x_high)` returns loss/d2, loss/g2, loss/g2_adv, loss/perceptual, d2/accuracy, d2/updated.
  """

  def __init__(self, stage1, generator, discriminator, config, feature_net=None,
               d_gate_threshold: Optional[float] = None):
    if config.gamma > 0 and feature_net is None:
      raise ValueError(f'feature_net: gamma = {config.gamma} > 0 needs a perceptual feature net; valid values are '
                       f'a Keras model (stage2.perceptual_feature_net) or gamma = 0')
    self.stage1, self.generator, self.discriminator, self.config = stage1, generator, discriminator, config
    self.feature_net = feature_net
    self.d_gate_threshold = d_gate_threshold
    self.g_optimizer = keras.optimizers.Adam(config.learning_rate, beta_1=config.adam_beta1,
                                             beta_2=config.adam_beta2, epsilon=config.adam_epsilon)
    self.d_optimizer = keras.optimizers.Adam(config.learning_rate, beta_1=config.adam_beta1,
                                             beta_2=config.adam_beta2, epsilon=config.adam_epsilon)
    self.g_optimizer.build(generator.trainable_variables)
    self.d_optimizer.build(discriminator.trainable_variables)
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
    self._compiled_step = tf.function(self._train_step)

  def train_step(self, x_low, x_high) -> Dict[str, tf.Tensor]:
    return self._compiled_step(tf.convert_to_tensor(x_low, tf.float32), tf.convert_to_tensor(x_high, tf.float32))

  def set_learning_rate(self, learning_rate: float):
    self.g_optimizer.learning_rate = float(learning_rate)
    self.d_optimizer.learning_rate = float(learning_rate)

  def checkpoint_objects(self) -> Dict[str, object]:
    return dict(stage2_generator=self.generator, stage2_discriminator=self.discriminator, step=self.step,
                optimizer_g2=self.g_optimizer, optimizer_d2=self.d_optimizer)

  def stage1_outputs(self, x_low):
    """(x~_q, x~_p): Stage-1 reconstructions (posterior samples) and prior samples, inference mode, no gradient."""
    out = self.stage1(x_low, training=False)
    prior = getattr(self.stage1, 'prior', None)
    z_p = (prior.sample(like=out['z']) if prior is not None else
           tf.random.normal(tf.shape(out['z']), dtype=out['z'].dtype))
    x_p = self.stage1.decode(z_p, training=False)
    return tf.stop_gradient(out['x_tilde']), tf.stop_gradient(x_p)

  def _train_step(self, x_low, x_high):
    x_q, x_p = self.stage1_outputs(x_low)
    g_vars = self.generator.trainable_variables
    d_vars = self.discriminator.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
      g_q = self.generator(x_q, training=True)
      g_p = self.generator(x_p, training=True)
      real_logits = self.discriminator(x_high, training=True)
      fake_q_logits = self.discriminator(g_q, training=True)
      fake_p_logits = self.discriminator(g_p, training=True)
      l_d = (gan.discriminator_loss(real_logits, tf.ones_like(real_logits)) +
             gan.discriminator_loss(fake_p_logits, tf.zeros_like(fake_p_logits)) +
             gan.discriminator_loss(fake_q_logits, tf.zeros_like(fake_q_logits)))
      l_adv = gan.generator_loss(fake_p_logits) + gan.generator_loss(fake_q_logits)
      l_perc = tf.constant(0.0)
      if self.config.gamma > 0:
        f_real = tf.stop_gradient(self.feature_net(x_high, training=False))
        l_perc = tf.reduce_mean(tf.square(self.feature_net(g_q, training=False) - f_real))
      l_g = l_adv + self.config.gamma * l_perc
    g_grads = tape.gradient(l_g, g_vars)
    d_grads = tape.gradient(l_d, d_vars)
    del tape
    all_logits = tf.concat([real_logits, fake_p_logits, fake_q_logits], axis=0)
    labels = tf.concat([tf.ones_like(real_logits), tf.zeros_like(fake_p_logits), tf.zeros_like(fake_q_logits)], 0)
    d_accuracy = gan.accuracy(all_logits, labels)
    self.g_optimizer.apply_gradients(zip(g_grads, g_vars))
    if self.d_gate_threshold is None:
      self.d_optimizer.apply_gradients(zip(d_grads, d_vars))
      applied = tf.constant(True)
    else:
      applied = gan.gated_apply(self.d_optimizer, d_grads, d_vars, d_accuracy, self.d_gate_threshold)
    self.step.assign_add(1)
    return {'loss/d2': l_d, 'loss/g2': l_g, 'loss/g2_adv': l_adv, 'loss/perceptual': tf.cast(l_perc, tf.float32),
            'd2/accuracy': d_accuracy, 'd2/updated': tf.cast(applied, tf.float32)}
