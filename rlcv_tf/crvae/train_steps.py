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

MNIST (`MNISTTrainer`, spec A3.5): the exact Bernoulli ELBO, E_q[log p(x|z)] - KL (default), R5's per-pixel BCE +
alpha KL (`mnist_objective='repo_alpha'`), or the k-sample IWAE bound (crIWAE, k = 5).

Stage 2 (`Stage2Trainer`, A3.3): frozen Stage-1 VAE in inference mode feeds G2 with reconstructions and prior
samples; D2 is trained with the thesis' three-term loss and G2 with the non-saturating BCE plus the optional
perceptual term gamma * mean (f(S(x)) - f(G2(x~_q)))^2 on reconstructions only.
"""

from typing import Dict, Optional

import keras
import numpy as np
import tensorflow as tf

from rlcv_tf.core import gan
from rlcv_tf.crvae import losses
from rlcv_tf.crvae import presets

_LSTM_GROUPS = ('lstm_inf', 'lstm_gen')


def _adam(learning_rate, config):
  return keras.optimizers.Adam(learning_rate=float(learning_rate), beta_1=config.adam_beta1,
                               beta_2=config.adam_beta2, epsilon=config.adam_epsilon)


class _GroupedOptimisation:
  """One Adam per variable group, built up front (so gated / conditional applies never create slots)."""

  def __init__(self, config: presets.CrVAEConfig, groups: Dict[str, list], multipliers: Dict[str, float]):
    self.config = config
    self.groups = groups
    self.multipliers = {name: float(multipliers[name]) for name in groups}
    self.base_learning_rate = tf.Variable(float(config.learning_rate), trainable=False, dtype=tf.float32,
                                          name='base_learning_rate')
    self.optimizers = {}
    for name, variables in groups.items():
      optimizer = _adam(config.learning_rate * self.multipliers[name], config)
      optimizer.build(variables)
      self.optimizers[name] = optimizer

  def clip(self, name, grads):
    if name in _LSTM_GROUPS and self.config.grad_clip > 0:
      clip = float(self.config.grad_clip)
      return [None if g is None else tf.clip_by_value(g, -clip, clip) for g in grads]
    return grads

  def apply(self, name, grads):
    self.optimizers[name].apply_gradients(zip(self.clip(name, grads), self.groups[name]))

  def set_learning_rate(self, learning_rate, skip=()):
    self.base_learning_rate.assign(float(learning_rate))
    for name, optimizer in self.optimizers.items():
      if name not in skip:
        optimizer.learning_rate = float(learning_rate) * self.multipliers[name]


def _kl_metrics(kl_blocks, num_blocks):
  return {f'loss/kl_block_{t}': kl_blocks[t] for t in range(num_blocks)}


# ------------------------------------------------------------------------------------------------ Stage 1
class _GroupedTrainer:
  """What the Stage-1 and MNIST trainers share: per-group Adam (`self.opt`) and one compiled step (`_train_step`)."""

  @property
  def optimizers(self):
    return self.opt.optimizers

  def train_step(self, x) -> Dict[str, tf.Tensor]:
    return self._compiled_step(tf.convert_to_tensor(x, tf.float32))


class Stage1Trainer(_GroupedTrainer):
  """Stage-1 training of VAE-GAN / crVAE-GAN (with a discriminator) or a plain RGB VAE / cVAE / crVAE (disc None).

  Args:
    vae: a built `networks.ImageVAE` with likelihood 'gaussian'.
    disc: the built `networks.Discriminator`, or None for the models without D.
    cfg: the config (default `vae.config`).

  `train_step(x)` (x float32 [B, R, R, C] in [-1, 1], B % 4 == 0 with D) returns scalar tensors:
    loss/rec, loss/kl_total (unweighted sum of the KL_t), loss/kl_weighted (L_prior), loss/kl_block_{t} (t 0-based),
    loss/total (L_G); with D also loss/adv_g, loss/d, d/accuracy, d/updated (1 applied, 0 gated), d/lr_head (the
    D-head learning rate of this call), d/warmup (its multiplier); with MI also loss/mi.
  """

  def __init__(self, vae, disc=None, cfg: Optional[presets.CrVAEConfig] = None):
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
    self.kl_weights = tf.constant(
        losses.block_kl_weights(cfg.num_blocks, cfg.alpha1, cfg.alpha2, cfg.resolved_n_early), tf.float32)
    groups = dict(vae.variable_groups())
    self.gen_group_names = tuple(groups)
    self.has_mi = bool(disc is not None and cfg.has_mi and disc.q_head is not None)
    if disc is not None:
      disc_groups = disc.variable_groups()
      groups['trunk'] = disc_groups['trunk']
      groups['d_head'] = disc_groups['d_head']
      if self.has_mi:
        groups['q_head'] = disc_groups['q_head']
    lstm = cfg.resolved_lr_mult_lstm
    multipliers = dict(enc=cfg.lr_mult_enc, dec=cfg.lr_mult_dec, lstm_inf=lstm, lstm_gen=lstm,
                       trunk=cfg.lr_mult_trunk, d_head=cfg.resolved_lr_mult_dhead, q_head=cfg.lr_mult_qpsi)
    self.opt = _GroupedOptimisation(cfg, groups, multipliers)
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
    self.d_calls = tf.Variable(0, dtype=tf.int64, trainable=False, name='d_calls')
    mi_weights = cfg.mi_block_weights
    self.mi_channel_weights = None
    if mi_weights is not None:
      per_block = cfg.n_z // cfg.num_blocks
      self.mi_channel_weights = tf.constant(np.repeat(np.asarray(mi_weights, np.float32), per_block), tf.float32)
    self._compiled_step = tf.function(self._train_step)

  # ---------------------------------------------------------------------------------------- public
  def set_learning_rate(self, learning_rate: float):
    """Sets the base LR (step decay); every group keeps its multiplier, the D head also its warm-up."""
    self.opt.set_learning_rate(learning_rate, skip=('d_head',))

  def checkpoint_objects(self) -> Dict[str, object]:
    objects = dict(vae=self.vae, step=self.step, d_calls=self.d_calls, base_learning_rate=self.opt.base_learning_rate)
    if self.disc is not None:
      objects['discriminator'] = self.disc
    objects.update({f'optimizer_{name}': optimizer for name, optimizer in self.optimizers.items()})
    return objects

  def mi_loss(self, u, u_hat):
    """L_MI for one path: mean (u_hat - sg(u))^2, block-weighted with `repo_mi_weights` (spec A3.1, §8-A4)."""
    if self.mi_channel_weights is None:
      return losses.mi_loss(u, u_hat)
    return tf.reduce_mean(self.mi_channel_weights * tf.square(u_hat - tf.stop_gradient(u)))

  def d_head_learning_rate(self, call_index):
    """The D-head LR at D call `call_index`: base * multiplier * (warm-up multiplier when d_warmup)."""
    lr = self.opt.base_learning_rate * self.opt.multipliers.get('d_head', 1.0)
    if self.cfg.d_warmup:
      lr = lr * gan.warmup_multiplier(call_index)
    return lr

  # ---------------------------------------------------------------------------------------- the step
  def _reconstruction(self, x, x_q):
    if self.cfg.recon_mode == 'pixel':
      return losses.reconstruction_mse(x, x_q)
    # Larsen et al.'s learned similarity on F's last conv block; F is not trained by it (spec A3.1).
    f_x = self.disc.features(x, training=False)
    f_q = self.disc.features(x_q, training=False)
    return 0.5 * tf.reduce_mean(tf.square(f_q - tf.stop_gradient(f_x)))

  def _train_step(self, x):
    cfg, vae, disc = self.cfg, self.vae, self.disc
    gen_vars = {name: self.opt.groups[name] for name in self.gen_group_names}
    with tf.GradientTape(persistent=True) as tape:
      out = vae(x, training=True)
      mu, logvar, u_q, x_q = out['mu'], out['logvar'], out['u'], out['x_tilde']
      kl_blocks = losses.gaussian_kl_per_block(mu, logvar, self.num_blocks)
      l_prior = losses.weighted_kl(kl_blocks, self.kl_weights)
      l_rec = self._reconstruction(x, x_q)
      l_g = l_rec + l_prior
      metrics = {}
      if disc is not None:
        z_p = tf.random.normal(tf.shape(mu), dtype=mu.dtype)
        u_p = vae.transform(z_p, training=True)
        x_p = vae.output_activation(vae.decode_transformed(u_p, training=True))
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
    flat_gen = [v for name in self.gen_group_names for v in gen_vars[name]]
    gen_grads = tape.gradient(l_g, flat_gen)
    q_grads = trunk_q_grads = None
    if self.has_mi:
      q_grads = tape.gradient(l_mi, self.opt.groups['q_head'])
      trunk_q_grads = tape.gradient(l_mi, self.opt.groups['trunk'])
    del tape

    if disc is not None:
      x_mix, labels = gan.mix_batch(x, tf.stop_gradient(x_q), tf.stop_gradient(x_p))
      with tf.GradientTape() as tape_d:
        d_logits = disc.discriminate(x_mix, training=True)
        l_d = gan.discriminator_loss(d_logits, labels)
      d_head_grads, trunk_d_grads = tape_d.gradient(l_d, [self.opt.groups['d_head'], self.opt.groups['trunk']])
      d_accuracy = gan.accuracy(d_logits, labels)

    # ---- apply: generator groups (always), q_psi (always), F and the D head (gated).
    start = 0
    for name in self.gen_group_names:
      n = len(gen_vars[name])
      self.opt.apply(name, gen_grads[start:start + n])
      start += n
    if disc is not None:
      threshold = float(cfg.d_gate_threshold)
      gate_open = d_accuracy <= threshold
      call_index = self.d_calls.read_value()
      lr_head = self.d_head_learning_rate(call_index)
      applied = gan.gated_apply(self.optimizers['d_head'], d_head_grads, self.opt.groups['d_head'], d_accuracy,
                                threshold, learning_rate=lr_head)
      if self.has_mi:
        self.opt.apply('q_head', q_grads)
        if cfg.gate_scope == 'head+trunk':
          trunk_d_grads = [tf.where(gate_open, g, tf.zeros_like(g)) for g in trunk_d_grads]
        self.opt.apply('trunk', [gq + gd for gq, gd in zip(trunk_q_grads, trunk_d_grads)])
      elif cfg.gate_scope == 'head+trunk':
        gan.gated_apply(self.optimizers['trunk'], trunk_d_grads, self.opt.groups['trunk'], d_accuracy, threshold)
      else:
        self.opt.apply('trunk', trunk_d_grads)
      self.d_calls.assign_add(1)
      metrics.update({'loss/d': l_d, 'd/accuracy': d_accuracy, 'd/updated': tf.cast(applied, tf.float32),
                      'd/lr_head': lr_head,
                      'd/warmup': gan.warmup_multiplier(call_index) if cfg.d_warmup else tf.constant(1.0)})
    self.step.assign_add(1)
    metrics.update({'loss/rec': l_rec, 'loss/kl_total': tf.reduce_sum(kl_blocks), 'loss/kl_weighted': l_prior,
                    'loss/total': l_g})
    metrics.update(_kl_metrics(kl_blocks, self.num_blocks))
    return {name: tf.cast(value, tf.float32) for name, value in metrics.items()}


# ------------------------------------------------------------------------------------------------ MNIST
class MNISTTrainer(_GroupedTrainer):
  """MNIST ablations of Table 5.B.1 (spec A3.5): Bernoulli likelihood on {0, 1} images, no discriminator.

  mnist_objective:
    'elbo'       (default) loss = -E_q[log p(x|z)] + sum_t w_t KL_t with w_t = alpha (1 in the presets): the exact
                 negative ELBO in nats per image;
    'repo_alpha' R5: per-pixel mean BCE + alpha KL (alpha = 0.001; effective beta 0.784, spec §8-A33);
    'iwae'       crIWAE: loss = -mean_b log (1/K) sum_k p(x, z_k) / q(z_k | x), K = iwae_k (Burda et al. 2015).

  `train_step(x)` (x float32 [B, 28, 28, 1] in {0, 1}) returns loss/total (the minimised loss), loss/rec
  (-E log p(x|z), nats per image), loss/kl_total, loss/kl_block_{t}, loss/neg_elbo (rec + kl_total) and, for
  'iwae', loss/iwae (the negative K-sample bound).
  """

  def __init__(self, vae, cfg: Optional[presets.CrVAEConfig] = None):
    cfg = (cfg or vae.config).validate()
    if cfg.likelihood != 'bernoulli':
      raise ValueError(f"likelihood: MNISTTrainer needs 'bernoulli'; valid values are 'bernoulli' "
                       f"(use Stage1Trainer for {cfg.likelihood!r})")
    self.vae, self.cfg = vae, cfg
    self.num_blocks = cfg.num_blocks
    self.kl_weights = tf.constant(
        losses.block_kl_weights(cfg.num_blocks, cfg.alpha1, cfg.alpha2, cfg.resolved_n_early), tf.float32)
    groups = dict(vae.variable_groups())
    lstm = cfg.resolved_lr_mult_lstm
    self.opt = _GroupedOptimisation(cfg, groups, dict(enc=cfg.lr_mult_enc, dec=cfg.lr_mult_dec, lstm_inf=lstm,
                                                      lstm_gen=lstm))
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
    self._compiled_step = tf.function(self._train_step)

  def set_learning_rate(self, learning_rate: float):
    self.opt.set_learning_rate(learning_rate)

  def checkpoint_objects(self) -> Dict[str, object]:
    objects = dict(vae=self.vae, step=self.step, base_learning_rate=self.opt.base_learning_rate)
    objects.update({f'optimizer_{name}': optimizer for name, optimizer in self.optimizers.items()})
    return objects

  def losses(self, x, training=True):
    """The loss terms of one batch (differentiable); used by the step and by tests."""
    cfg, vae = self.cfg, self.vae
    metrics = {}
    if cfg.mnist_objective == 'iwae':
      k = int(cfg.iwae_k)
      mu, logvar = vae.encode(x, training=training)
      mu_k, logvar_k = tf.tile(mu, [k, 1, 1, 1]), tf.tile(logvar, [k, 1, 1, 1])    # row k*B + b
      z = vae.reparameterize(mu_k, logvar_k)
      logits = vae.decode_logits(z, training=training)
      log_px = losses.bernoulli_log_likelihood(tf.tile(x, [k, 1, 1, 1]), logits)
      log_w = log_px + losses.gaussian_log_prob_std(z) - losses.diag_gaussian_log_prob(z, mu_k, logvar_k)
      bound = losses.iwae_bound(tf.reshape(log_w, (k, -1)))
      rec = -tf.reduce_mean(log_px)
      kl_blocks = losses.gaussian_kl_per_block(mu, logvar, self.num_blocks)
      total = -tf.reduce_mean(bound)
      metrics['loss/iwae'] = total
    else:
      out = vae(x, training=training)
      rec = -tf.reduce_mean(losses.bernoulli_log_likelihood(x, out['logits']))
      kl_blocks = losses.gaussian_kl_per_block(out['mu'], out['logvar'], self.num_blocks)
      rec_term = rec / float(np.prod(cfg.image_shape)) if cfg.mnist_objective == 'repo_alpha' else rec
      total = rec_term + losses.weighted_kl(kl_blocks, self.kl_weights)
    kl_total = tf.reduce_sum(kl_blocks)
    metrics.update({'loss/total': total, 'loss/rec': rec, 'loss/kl_total': kl_total, 'loss/neg_elbo': rec + kl_total})
    metrics.update(_kl_metrics(kl_blocks, self.num_blocks))
    return metrics

  def _train_step(self, x):
    names = tuple(self.opt.groups)
    with tf.GradientTape() as tape:
      metrics = self.losses(x, training=True)
    grads = tape.gradient(metrics['loss/total'], [self.opt.groups[name] for name in names])
    for name, group_grads in zip(names, grads):
      self.opt.apply(name, group_grads)
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
    z_p = tf.random.normal(tf.shape(out['z']), dtype=out['z'].dtype)
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
