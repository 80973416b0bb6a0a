"""Chapter 5 (and Chapter 6) VAE losses: KL terms, reconstruction, likelihoods, MI, IWAE (thesis Sec. 5.3, 5.4.1).

Normalisation follows spec ch5 §0 (thesis T:L5386-5391 and the Torch `sizeAverage` defaults), which is why the
loss weights alpha, beta, kappa of the thesis are much smaller than 1:

* L_rec   = mean over all B*H*W*C elements of (x~ - x)^2                            (`reconstruction_mse`)
* KL_t    = (1/B) sum_b sum_{i in block t} KL(N(mu_i, exp(lv_i)) || N(0, 1))      (`gaussian_kl_per_block`)
* L_prior = sum_t w_t KL_t, w_t = alpha1 on the first n_early blocks, alpha2 after  (`block_kl_weights`, `weighted_kl`)
* L_MI    = mean over all elements of (u^ - stop_gradient(u))^2                     (`mi_loss`, spec A3.1)

Thesis Eq. 5.1 writes the per-step KL weight as (1 - alpha_t); the authors' code (and this module) uses alpha1 > alpha2
as direct multipliers (spec §8-A2). n_early is 3 of 8 steps (T:L5366-5369), 2 of 4 and 1 of 2 (R6); for other T the
spec proposes round(3T/8).

Every distribution is a `tfp.distributions` object (shared/README.md). Latents use the channel-block convention of
`rlcv_tf.core.vaegan.blocks`: block t holds channels [t*C/T, (t+1)*C/T).
"""

import math

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from rlcv_tf.core.vaegan import blocks

tfd = tfp.distributions

# Floor on the learned prior's variance in the Chapter 6 generalised KL (R6 GKLDCriterion; spec B3, line 689).
PRIOR_VARIANCE_FLOOR = 1e-5

# n_early for the block counts fixed by the thesis (T=8) and the Chapter 6 code (T=4, T=2).
_N_EARLY = {8: 3, 4: 2, 2: 1}


def _scale_from_logvar(logvar):
  """Standard deviation exp(lv / 2), the parameterisation the networks output (spec §0 reparameterisation)."""
  return tf.exp(0.5 * logvar)


def _sum_non_batch(x):
  """Sum over every axis but the first: [B, ...] -> [B]."""
  return tf.reduce_sum(tf.reshape(x, (tf.shape(x)[0], -1)), axis=1)


def standard_normal_kl(mu, logvar):
  """Elementwise KL(N(mu, exp(logvar)) || N(0, 1)), same shape as mu."""
  mu = tf.convert_to_tensor(mu, tf.float32)
  logvar = tf.convert_to_tensor(logvar, tf.float32)
  posterior = tfd.Normal(loc=mu, scale=_scale_from_logvar(logvar))
  prior = tfd.Normal(loc=tf.zeros_like(mu), scale=tf.ones_like(mu))
  return tfd.kl_divergence(posterior, prior)


def gaussian_kl_per_block(mu, logvar, num_blocks: int):
  """KL of the diagonal posterior to N(0, I), summed within each channel block and averaged over the batch.

  Args:
    mu: posterior mean, [B, H, W, C].
    logvar: posterior log-variance, [B, H, W, C].
    num_blocks: T, the number of channel blocks; must divide C.

  Returns:
    [T] float32, KL_t = (1/B) sum_b sum_{i in block t} KL_i. Their sum is the usual total KL (batch mean).
  """
  per_unit = standard_normal_kl(mu, logvar)
  return tf.reduce_mean(blocks.block_sums(per_unit, num_blocks), axis=0)


def num_early_blocks(num_blocks: int) -> int:
  """How many leading blocks get alpha1: 3 of 8, 2 of 4, 1 of 2; round(3T/8) otherwise (spec A3.1 [P])."""
  if num_blocks < 1:
    raise ValueError(f'num_blocks must be >= 1, got {num_blocks}')
  if num_blocks in _N_EARLY:
    return _N_EARLY[num_blocks]
  # Round halves up (T=12 -> 5); Python's round() would round 4.5 to even (4).
  return int(math.floor(3 * num_blocks / 8 + 0.5))


def block_kl_weights(num_blocks: int, alpha1: float, alpha2: float, n_early=None) -> np.ndarray:
  """Direct per-block KL weights w_t: alpha1 for the first n_early blocks, alpha2 afterwards (spec §8-A2).

  Args:
    num_blocks: T.
    alpha1: weight of the early (coarse) blocks.
    alpha2: weight of the remaining blocks.
    n_early: number of early blocks; default `num_early_blocks(num_blocks)`.

  Returns:
    float32 array of shape [T]. VAE-GAN (one weight alpha) is `block_kl_weights(T, alpha, alpha)`.
  """
  if n_early is None:
    n_early = num_early_blocks(num_blocks)
  if not 0 <= n_early <= num_blocks:
    raise ValueError(f'n_early must be in [0, {num_blocks}], got {n_early}')
  weights = np.full((num_blocks,), alpha2, dtype=np.float32)
  weights[:n_early] = alpha1
  return weights


def weighted_kl(kl_per_block, weights):
  """L_prior = sum_t w_t KL_t, a scalar."""
  kl_per_block = tf.convert_to_tensor(kl_per_block, tf.float32)
  weights = tf.convert_to_tensor(weights, tf.float32)
  if kl_per_block.shape.rank != 1 or weights.shape.rank != 1 or (
      kl_per_block.shape[0] is not None and weights.shape[0] is not None and kl_per_block.shape[0] != weights.shape[0]):
    raise ValueError(f'kl_per_block {kl_per_block.shape} and weights {weights.shape} must both be [T]')
  return tf.reduce_sum(kl_per_block * weights)


def reconstruction_mse(x, x_tilde):
  """L_rec: mean over all B*H*W*C elements of (x~ - x)^2, a scalar."""
  x = tf.convert_to_tensor(x, tf.float32)
  x_tilde = tf.convert_to_tensor(x_tilde, tf.float32)
  return tf.reduce_mean(tf.square(x_tilde - x))


def bernoulli_log_likelihood(x, logits):
  """log p(x | z) under independent Bernoulli(sigmoid(logits)) pixels, summed over pixels: [B].

  x may hold intensities in [0, 1] (the continuous relaxation x*log p + (1-x)*log(1-p)); for MNIST NLL it is binary.
  """
  logits = tf.convert_to_tensor(logits, tf.float32)
  x = tf.convert_to_tensor(x, tf.float32)
  return _sum_non_batch(tfd.Bernoulli(logits=logits, dtype=tf.float32).log_prob(x))


def gaussian_log_likelihood(x, mean, sigma):
  """log p(x | z) under N(mean, sigma^2) pixels with a fixed scalar sigma, summed over pixels: [B]."""
  x = tf.convert_to_tensor(x, tf.float32)
  mean = tf.convert_to_tensor(mean, tf.float32)
  return _sum_non_batch(tfd.Normal(loc=mean, scale=tf.cast(sigma, tf.float32)).log_prob(x))


def gaussian_log_prob_std(z):
  """log N(z; 0, I) summed over all non-batch axes: [B]."""
  z = tf.convert_to_tensor(z, tf.float32)
  return _sum_non_batch(tfd.Normal(loc=tf.zeros_like(z), scale=tf.ones_like(z)).log_prob(z))


def diag_gaussian_log_prob(z, mu, logvar):
  """log N(z; mu, diag(exp(logvar))) summed over all non-batch axes: [B]."""
  z = tf.convert_to_tensor(z, tf.float32)
  mu = tf.convert_to_tensor(mu, tf.float32)
  logvar = tf.convert_to_tensor(logvar, tf.float32)
  return _sum_non_batch(tfd.Normal(loc=mu, scale=_scale_from_logvar(logvar)).log_prob(z))


def mi_loss(u, u_hat):
  """L_MI: MSE between the MI head's regression u^ and the gradient-stopped transformed latent u (spec A3.1, §8-A3).

  The target u = LSTM_gen(z) is held constant, so the MI gradient reaches the generator only through x~ -> u^.
  """
  u = tf.stop_gradient(tf.convert_to_tensor(u, tf.float32))
  u_hat = tf.convert_to_tensor(u_hat, tf.float32)
  return tf.reduce_mean(tf.square(u_hat - u))


def iwae_bound(log_weights):
  """log (1/K) sum_k exp(log_weights[k]), per example: [K, B] -> [B] (a stable logsumexp)."""
  log_weights = tf.convert_to_tensor(log_weights, tf.float32)
  num_samples = tf.cast(tf.shape(log_weights)[0], tf.float32)
  return tf.reduce_logsumexp(log_weights, axis=0) - tf.math.log(num_samples)


def gaussian_kl(mu_q, lv_q, mu_p, lv_p):
  """Elementwise KL(N(mu_q, exp(lv_q)) || N(mu_p, max(exp(lv_p), 1e-5))) for a learned prior (Chapter 6, spec B3).

  The floor keeps the KL finite when the learned prior collapses (lv_p -> -inf). It is applied to the prior variance
  everywhere it appears, so the value is always a true KL (>= 0, zero iff q == floored p). R6's GKLDCriterion floors
  only the denominator and keeps 0.5*lv_p unfloored; below the floor that variant is unbounded below in lv_p (it keeps
  rewarding a smaller prior variance), which this version avoids. Above the floor (lv_p > log 1e-5 = -11.5) the two
  agree exactly. Gradients flow to mu_p and lv_p (the prior is trained).
  """
  mu_q = tf.convert_to_tensor(mu_q, tf.float32)
  lv_q = tf.convert_to_tensor(lv_q, tf.float32)
  mu_p = tf.convert_to_tensor(mu_p, tf.float32)
  lv_p = tf.convert_to_tensor(lv_p, tf.float32)
  prior_variance = tf.maximum(tf.exp(lv_p), PRIOR_VARIANCE_FLOOR)
  posterior = tfd.Normal(loc=mu_q, scale=_scale_from_logvar(lv_q))
  prior = tfd.Normal(loc=mu_p, scale=tf.sqrt(prior_variance))
  return tfd.kl_divergence(posterior, prior)
