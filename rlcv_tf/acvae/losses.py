"""Chapter 6 generator objective: the conditional KL per latent block and the L_G assembly (thesis Eq. 6.1; spec B3).

The conditional VAE bound (T:L5704-5752) has KL(q(z|x,a) || p(z|a)) between two learned diagonal Gaussians. Its
per-block form uses the channel-block layout of Chapter 5 (`rlcv_tf.core.vaegan.blocks`: block t holds channels
[t*C/T, (t+1)*C/T)) and the elementwise `core.vaegan.losses.gaussian_kl`, which floors the prior variance at 1e-5 (R6
GKLDCriterion; see its docstring for how the floor is applied):

  KL_t = (1/B) sum_b sum_{i in block t} KL(N(mu_q,i, e^{lv_q,i}) || N(mu_p,i, max(e^{lv_p,i}, 1e-5)))

so sum_t KL_t is the batch-mean total KL. Gradients reach both the posterior and the prior parameters. The cVAE-GAN
latent is a flat vector [B, D]; it is one block (T = 1) weighted by alpha: `block_kl_weights(1, alpha, alpha)`.

Generator loss (Eq. 6.1 read as spec §8-A19: the thesis's D(z, a) is D(G(z, a), a) and its q(z|x) is q(z|x, a)):

  L_G = L_rec(x~_q, x) + sum_t w_t KL_t + beta [BCE(D(x~_q, a), 1) + BCE(D(x~_p, a), 1)] + kappa L_MI + L_attn
  L_attn = lambda_ent (1/N) sum_n H(M[:, n]) + lambda_ds sum_t (sum_n M[t, n] - N/T)^2      (acVAE only)

kappa is 0 for cVAE-GAN (no MI head) and L_attn is 0 for cVAE-GAN and conditional crVAE-GAN (no attention). The
weights alpha, beta, kappa follow the Chapter 5 normalisation (`core.vaegan.losses` module docstring).
"""

from typing import Dict

import tensorflow as tf

from rlcv_tf.acvae import attention
from rlcv_tf.core import gan
from rlcv_tf.core.vaegan import blocks
from rlcv_tf.core.vaegan import losses as vaegan_losses

# Re-exported so Chapter 6 code needs one losses module (the objects are Chapter 5's, not copies).
PRIOR_VARIANCE_FLOOR = vaegan_losses.PRIOR_VARIANCE_FLOOR
gaussian_kl = vaegan_losses.gaussian_kl
block_kl_weights = vaegan_losses.block_kl_weights
weighted_kl = vaegan_losses.weighted_kl
reconstruction_mse = vaegan_losses.reconstruction_mse
mi_loss = vaegan_losses.mi_loss


def _as_nhwc(x, name: str):
  """[B, H, W, C] as is; a flat [B, D] latent (cVAE-GAN) as [B, 1, 1, D]."""
  x = tf.convert_to_tensor(x, tf.float32)
  if x.shape.rank == 2:
    return tf.reshape(x, (-1, 1, 1, x.shape[1]))
  if x.shape.rank != 4:
    raise ValueError(f'{name} must be a latent [B, H, W, C] or a flat latent [B, D], got shape {tuple(x.shape)}')
  return x


def conditional_kl_per_block(mu_q, lv_q, mu_p, lv_p, num_blocks: int):
  """KL(q(z|x,a) || p(z|a)) summed within each channel block and averaged over the batch.

  Args:
    mu_q, lv_q: posterior mean and log-variance, [B, H, W, C] (or flat [B, D]).
    mu_p, lv_p: conditional prior mean and log-variance, the same shape; lv_p's variance is floored at 1e-5.
    num_blocks: T; must divide C (D). 1 gives the total KL as a one-element vector (cVAE-GAN).

  Returns:
    [T] float32 KL_t; sum_t KL_t equals `conditional_kl` (the batch-mean total).
  """
  names = ('mu_q', 'lv_q', 'mu_p', 'lv_p')
  tensors = [_as_nhwc(x, n) for x, n in zip((mu_q, lv_q, mu_p, lv_p), names)]
  shapes = {n: tuple(t.shape) for n, t in zip(names, tensors)}
  if len(set(shapes.values())) != 1:
    raise ValueError(f'conditional_kl_per_block: mu_q, lv_q, mu_p, lv_p must share one shape, got {shapes}')
  per_unit = gaussian_kl(*tensors)
  return tf.reduce_mean(blocks.block_sums(per_unit, num_blocks), axis=0)


def conditional_kl(mu_q, lv_q, mu_p, lv_p):
  """The total KL(q(z|x,a) || p(z|a)), summed over latent units and averaged over the batch: a scalar."""
  per_unit = gaussian_kl(mu_q, lv_q, mu_p, lv_p)
  per_example = tf.reduce_sum(tf.reshape(per_unit, (tf.shape(per_unit)[0], -1)), axis=1)
  return tf.reduce_mean(per_example)


def attention_loss(mask, lambda_ent: float = 0.0, lambda_ds: float = 0.0):
  """L_attn = lambda_ent * mean_n H(M[:, n]) + lambda_ds * sum_t (sum_n M[t, n] - N/T)^2 (see `attention`)."""
  return attention.entropy_loss(mask, lambda_ent) + attention.even_load_loss(mask, lambda_ds)


def adversarial_generator_loss(logits_q, logits_p):
  """BCE(D(x~_q, a), 1) + BCE(D(x~_p, a), 1): non-saturating, on the reconstruction and the prior sample."""
  return gan.generator_loss(logits_q) + gan.generator_loss(logits_p)


def generator_loss(rec, kl_per_block, kl_weights, adv=None, beta: float = 0.0, mi=None, kappa: float = 0.0,
                   attn=None) -> Dict[str, tf.Tensor]:
  """Assembles L_G from terms the trainer has already computed (Eq. 6.1 as read in the module docstring).

  Args:
    rec: L_rec, the reconstruction MSE (scalar).
    kl_per_block: [T] KL_t from `conditional_kl_per_block`.
    kl_weights: [T] w_t (`block_kl_weights`; cVAE-GAN: `block_kl_weights(1, alpha, alpha)`).
    adv: the summed generator BCE `adversarial_generator_loss` (scalar), or None without a discriminator.
    beta: its weight.
    mi: L_MI (scalar, the sum over the reconstruction and the prior sample), or None (cVAE-GAN).
    kappa: its weight.
    attn: the already weighted L_attn (`attention_loss`), or None (no attention).

  Returns:
    {'total': L_G, 'rec', 'kl_total' (unweighted sum_t KL_t), 'kl_weighted' (sum_t w_t KL_t), and 'adv', 'mi',
    'attention' for the terms given (unweighted values, except 'attention' which comes weighted)}.
  """
  rec = tf.convert_to_tensor(rec, tf.float32)
  kl_per_block = tf.convert_to_tensor(kl_per_block, tf.float32)
  kl_weighted = weighted_kl(kl_per_block, kl_weights)
  out = {'rec': rec, 'kl_total': tf.reduce_sum(kl_per_block), 'kl_weighted': kl_weighted}
  total = rec + kl_weighted
  if adv is not None:
    out['adv'] = tf.convert_to_tensor(adv, tf.float32)
    total = total + tf.cast(beta, tf.float32) * out['adv']
  if mi is not None:
    out['mi'] = tf.convert_to_tensor(mi, tf.float32)
    total = total + tf.cast(kappa, tf.float32) * out['mi']
  if attn is not None:
    out['attention'] = tf.convert_to_tensor(attn, tf.float32)
    total = total + out['attention']
  out['total'] = total
  return out
