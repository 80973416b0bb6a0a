"""Wasserstein GAN as the slides give it, and WGAN-GP as an option (issue 15 §2; spec §2.5; errata §8.3).

The slides' algorithm [S3:L487-505] (Arjovsky, Chintala & Bottou 2017, Alg. 1):

  while theta has not converged:
    for t = 0, ..., n_critic:                       <- the slide's loop runs n_critic + 1 times (errata §8.3);
      x ~ P_r, z ~ p(z)                                here EXACTLY n_critic critic steps per generator step
      g_w <- grad_w [mean f_w(x) - mean f_w(g_theta(z))]
      w <- w + alpha RMSProp(w, g_w)
      w <- clip(w, -c, c)                           <- every critic variable, after each critic step
    z ~ p(z)
    g_theta <- -grad_theta mean f_w(g_theta(z))
    theta <- theta - alpha RMSProp(theta, g_theta)

Defaults [orig: the paper's]: alpha = 5e-5, c = 0.01, m = 64, n_critic = 5, RMSProp (Keras defaults rho 0.9,
epsilon 1e-7). The critic is unbounded (no sigmoid): `networks.MLPDiscriminator` / `DCGANDiscriminator` end in a
linear unit. "Every critic variable" is every trainable one (weights, biases, BN scale / offset); BN moving
statistics are not parameters and are not clipped.

WGAN-GP (Gulrajani et al. 2017 [orig], not on the slides): no clipping; the critic loss adds
lambda E[(||grad f(x_hat)|| - 1)^2] (`core.gan.gradient_penalty`, lambda = 10) and both nets use
Adam(1e-4, beta1 0.5, beta2 0.9); the paper drops BatchNorm in the critic (norm='none' in `networks`).

The thesis' D gate (core.gan.gated_apply) needs a probability of "real"; an unbounded critic has none, so WGAN
runs refuse `d_gate` (the launcher says so).
"""

from typing import Dict, Optional

import keras
import tensorflow as tf

from rlcv_tf.core import gan
from rlcv_tf.gans import config
from rlcv_tf.gans import networks

RMSPROP_LR = config.RMSPROP_LR
CLIP = config.CLIP
N_CRITIC = config.N_CRITIC
GP_WEIGHT = config.GP_WEIGHT
GP_ADAM = config.GP_ADAM


class WGANTrainer(tf.Module):
  """One `train_step(x)` = n_critic critic updates (one per chunk of the [n_critic * B, ...] batch x) then one
  generator update. `step` counts generator updates; `critic_optimizer.iterations` counts critic updates.

  Args:
    generator, critic: models with call(input, condition=None, training=...).
    z_dim, batch_size: p(z) = N(0, I) of size z_dim; m = batch_size per critic step.
    n_critic: critic steps per generator step (>= 1).
    learning_rate: alpha (RMSProp) or Adam's rate for WGAN-GP.
    clip: c; 0 turns clipping off (WGAN-GP).
    gp_weight: lambda of the gradient penalty; 0 = the slides' clipped WGAN.
    optimizer: 'rmsprop' (the slides) or 'adam' (WGAN-GP's (beta1, beta2) = `adam_betas`).
    seed: seeds the z generator (saved in checkpoints).
  """

  def __init__(self, generator: keras.Model, critic: keras.Model, z_dim: int, batch_size: int,
               n_critic: int = N_CRITIC, learning_rate: float = RMSPROP_LR, clip: float = CLIP,
               gp_weight: float = 0.0, optimizer: str = 'rmsprop', adam_betas=GP_ADAM[1:], seed: int = 0):
    super().__init__(name='wgan_trainer')
    if n_critic < 1:
      raise ValueError(f'n_critic: got {n_critic}; valid values are integers >= 1')
    if clip < 0 or gp_weight < 0:
      raise ValueError(f'clip / gp_weight: got {clip} / {gp_weight}; valid values are >= 0')
    if optimizer not in ('rmsprop', 'adam'):
      raise ValueError(f'optimizer: got {optimizer!r}; valid values are rmsprop, adam')
    self.generator, self.critic = generator, critic
    self.z_dim, self.batch_size, self.n_critic = int(z_dim), int(batch_size), int(n_critic)
    self.clip, self.gp_weight = float(clip), float(gp_weight)
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
    self.rng = tf.random.Generator.from_seed(seed)

    def make():
      if optimizer == 'rmsprop':
        return keras.optimizers.RMSprop(learning_rate)
      return keras.optimizers.Adam(learning_rate, beta_1=adam_betas[0], beta_2=adam_betas[1])

    self.g_optimizer, self.critic_optimizer = make(), make()
    self.g_optimizer.build(generator.trainable_variables)
    self.critic_optimizer.build(critic.trainable_variables)
    self._train = tf.function(self._train_impl)

  def checkpoint_objects(self) -> Dict[str, object]:
    return {'generator': self.generator, 'discriminator': self.critic, 'g_optimizer': self.g_optimizer,
            'd_optimizer': self.critic_optimizer, 'step': self.step, 'rng': self.rng}

  def set_learning_rate(self, lr: float) -> None:
    self.g_optimizer.learning_rate = lr
    self.critic_optimizer.learning_rate = lr

  def critic_step(self, real, condition=None):
    """One critic update on `real` [B, ...] (and the clipping). Returns (critic loss, W estimate, penalty)."""
    z = self.rng.normal([tf.shape(real)[0], self.z_dim])
    with networks.statistics_kept(self.generator):
      fake = self.generator(z, condition, training=True)
    variables = self.critic.trainable_variables
    with tf.GradientTape() as tape:
      real_scores = self.critic(real, condition, training=True)
      fake_scores = self.critic(fake, condition, training=True)
      loss = gan.wgan_critic_loss(real_scores, fake_scores)
      penalty = tf.constant(0.0)
      if self.gp_weight > 0:
        penalty = gan.gradient_penalty(lambda x: self.critic(x, condition, training=True), real, fake,
                                       self.gp_weight, seed=self.rng.make_seeds(1)[:, 0])
      total = loss + penalty
    self.critic_optimizer.apply_gradients(zip(tape.gradient(total, variables), variables))
    if self.clip > 0:
      gan.clip_weights(variables, self.clip)
    return total, -loss, penalty

  def generator_step(self, condition=None, batch_size: Optional[int] = None):
    """One generator update: descend -mean f_w(g_theta(z)). Leaves the critic bit-identical."""
    z = self.rng.normal([self.batch_size if batch_size is None else batch_size, self.z_dim])
    variables = self.generator.trainable_variables
    with networks.statistics_kept(self.critic):
      with tf.GradientTape() as tape:
        loss = gan.wgan_generator_loss(self.critic(self.generator(z, condition, training=True), condition,
                                                   training=True))
      self.g_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    return loss

  def _train_impl(self, x):
    chunks = tf.reshape(x, tf.concat([[self.n_critic, -1], tf.shape(x)[1:]], 0))
    total = w_est = penalty = tf.constant(0.0)
    for i in range(self.n_critic):           # exactly n_critic critic steps (the slide's loop has n_critic + 1)
      total, w_est, penalty = self.critic_step(chunks[i])
    g_loss = self.generator_step(batch_size=tf.shape(chunks)[1])
    self.step.assign_add(1)
    return {'loss/d': total, 'loss/g': g_loss, 'critic/w_estimate': w_est, 'critic/gradient_penalty': penalty}

  def train_step(self, x, condition=None):
    if condition is not None:
      raise ValueError('condition: the WGAN models here are unconditional')
    return self._train(tf.convert_to_tensor(x, tf.float32))
