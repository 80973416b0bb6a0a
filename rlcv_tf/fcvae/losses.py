"""Seed 002 losses in minimisation form: reconstruction terms, the KL "decoupling" modes over a spatial latent, the
competitive winner-takes-all entropy and the optional orthogonality penalty (S = seed 002 line).

What the source says:
  * Euclidean distance sqrt(sum_i (x_i - y_i)^2) (S:L373-379) and per-pixel binary cross-entropy
    H(p, q) = -c log c^ - (1 - c) log(1 - c^), combined over pixels by a sum or a mean (S:L400-412).
  * The closed-form KL of a diagonal Gaussian to N(0, I), 1/2 sum(sigma^2 + mu^2 - 1 - log sigma^2) (Eq. 3.27,
    S:L636). Eq. 3.29 (S:L646) adds this KL to the quantity to be maximised: a sign slip. The ELBO is
    -KL + E[log p(x|z)] (Eq. 3.22 / 3.23, S:L614-618), so the loss minimised here is recon + beta * KL.
  * beta-VAE: E[log p(x|z)] - beta KL (Eq. 3.37, S:L768); beta = 1 is the ELBO, beta = 0 maximum likelihood
    (S:L770).
  * Over a (k, m, n) latent map (NHWC here: [B, m, n, k]): neuron-level decoupling flattens the map and pressures
    all k*m*n units (S:L948-949, L984-986); naive filter-level decoupling averages each filter's activations into
    z_bar (a k-vector) and pressures z_bar towards N(0, I) (S:L995-1001); weighted filter-level decoupling averages
    both terms instead of summing them, to balance them (S:L1010-1016); winner-takes-all sums, over positions, the
    KL of the k-vector at each position (Eq. 5.1 / 5.2, S:L1082-1092).

Every KL here is `rlcv_tf.core.vaegan.losses.standard_normal_kl`, the one per-unit KL tensor of the project (the
crVAE's per-block KL reduces the same tensor):
  neuron       sum over all units                                  -> [B]
  wta          sum over filters at each position, then over positions: the same number as neuron (a diagonal
               posterior's KL is additive), so `wta` is an alias kept for the draft's name; a test checks equality
  filter_avg   [proposal, spec 3.4] the exact law of the average of independent Gaussians, z_bar_f ~
               N(mean_ij mu, sum_ij sigma^2 / (mn)^2), then the same per-unit KL on it, summed over filters
  filter_avg_weighted  the mean over pixels of the reconstruction + beta * the mean over filters of filter_avg's
               KL_f (spec 6 default reading of S:L1015-1016; the draft leaves the final loss blank)
  wta_competitive [proposal, spec 3.4] neuron + lambda * mean over positions of the entropy of
               softmax_f(|mu_ijf| / tau): the draft's stated intent ("no more than one filter has a high activation
               in any given position", S:L1062), which Eq. 5.1 does not enforce
  ortho        [proposal] lambda_o * ||W^T W - I||_F^2 on a latent-head kernel flattened to columns = filters (the
               draft's Sec. 5.5 is lorem ipsum; it cites OrthoReg, S:L829-831)

Reconstruction uses logits (the decoders end without the sigmoid, which lives in the loss: numerically stable); the
BCE is `core.vaegan.losses.bernoulli_log_likelihood` negated (TFP Bernoulli, the continuous relaxation for
intensities in [0, 1]). Every function returns per-example values [B]; `beta_vae_loss` averages over the batch.
"""

from typing import Dict

import tensorflow as tf

from rlcv_tf.core.vaegan import losses as vae_losses
from rlcv_tf.fcvae import presets

KL_MODES = presets.KL_MODES
RECON_LOSSES = presets.RECON_LOSSES
REDUCTIONS = presets.REDUCTIONS

kl_per_unit = vae_losses.standard_normal_kl


def _flat(x):
  return tf.reshape(x, (tf.shape(x)[0], -1))


def _num_pixels(x):
  return tf.cast(tf.reduce_prod(tf.shape(x)[1:]), tf.float32)


# ------------------------------------------------------------------------------------------ reconstruction
def bce(x, logits, reduction: str = 'sum'):
  """Per-image binary cross-entropy of targets x in [0, 1] against Bernoulli(sigmoid(logits)), [B]: the sum over
  pixels ('sum') or its mean ('mean') (S:L412)."""
  nll = -vae_losses.bernoulli_log_likelihood(x, logits)
  return nll / _num_pixels(x) if reduction == 'mean' else nll


def squared_euclid(x, images, reduction: str = 'sum'):
  """Per-image squared Euclidean distance sum_i (x_i - y_i)^2 (the training form of S:L377), [B]; 'mean' divides
  by the number of pixels."""
  x = tf.convert_to_tensor(x, tf.float32)
  sq = tf.reduce_sum(_flat(tf.square(tf.convert_to_tensor(images, tf.float32) - x)), axis=1)
  return sq / _num_pixels(x) if reduction == 'mean' else sq


def euclid(x, images):
  """The Euclidean distance of S:L377, [B] (for reporting; training uses `squared_euclid`)."""
  return tf.sqrt(squared_euclid(x, images, 'sum'))


def reconstruction(x, logits, loss: str = 'bce', reduction: str = 'sum'):
  """'bce' from logits or 'euclid' (squared, on sigmoid(logits)), per image [B]."""
  if loss == 'bce':
    return bce(x, logits, reduction)
  if loss == 'euclid':
    return squared_euclid(x, tf.sigmoid(logits), reduction)
  raise ValueError(f'unknown reconstruction loss {loss!r}; valid: {", ".join(RECON_LOSSES)}')


# ------------------------------------------------------------------------------------------------- KL modes
def kl_neuron(mu, logvar):
  """Neuron-level decoupling: the KL of all units of the latent to N(0, I), [B]."""
  return tf.reduce_sum(_flat(kl_per_unit(mu, logvar)), axis=1)


def kl_per_position(mu, logvar):
  """KL(q^{ij} || N(0, I_k)) of the k-vector at each position of a [B, m, n, k] map, [B, m, n] (Eq. 5.1 terms)."""
  return tf.reduce_sum(kl_per_unit(mu, logvar), axis=-1)


def kl_wta(mu, logvar):
  """Winner-takes-all as written (Eq. 5.1): the sum over positions of the per-position KL, [B]. Equal to
  `kl_neuron` for a diagonal posterior."""
  return tf.reduce_sum(tf.reshape(kl_per_position(mu, logvar), (tf.shape(mu)[0], -1)), axis=1)


def filter_average_law(mu, logvar):
  """(mean, log-variance) [B, k] of z_bar_f = mean_ij z_ijf for independent z_ijf ~ N(mu_ijf, exp(lv_ijf)):
  mean_ij mu and log(sum_ij exp(lv) / (mn)^2)."""
  mu = tf.convert_to_tensor(mu, tf.float32)
  logvar = tf.convert_to_tensor(logvar, tf.float32)
  positions = tf.cast(tf.shape(mu)[1] * tf.shape(mu)[2], tf.float32)
  mean = tf.reduce_mean(mu, axis=(1, 2))
  # log(sum exp(lv)) - 2 log(mn), stable for very negative log-variances.
  log_var = tf.reduce_logsumexp(logvar, axis=(1, 2)) - 2.0 * tf.math.log(positions)
  return mean, log_var


def kl_filter_avg_per_filter(mu, logvar):
  """KL_f = KL(N(mean, var of z_bar_f) || N(0, 1)) per filter, [B, k]."""
  return kl_per_unit(*filter_average_law(mu, logvar))


def kl_filter_avg(mu, logvar):
  """Naive filter-level decoupling: sum_f KL_f, [B]."""
  return tf.reduce_sum(kl_filter_avg_per_filter(mu, logvar), axis=-1)


def kl_term(mu, logvar, mode: str):
  """The KL term of `mode` per example, [B] (before beta). For a dense latent [B, d] every mode but the filter
  averages is the plain KL."""
  if mode in ('neuron', 'wta_competitive'):
    return kl_neuron(mu, logvar)
  if mode == 'wta':
    return kl_wta(mu, logvar) if len(mu.shape) == 4 else kl_neuron(mu, logvar)
  if mode == 'filter_avg':
    return kl_filter_avg(mu, logvar)
  if mode == 'filter_avg_weighted':
    return tf.reduce_mean(kl_filter_avg_per_filter(mu, logvar), axis=-1)
  raise ValueError(f'unknown kl_mode {mode!r}; valid: {", ".join(KL_MODES)}')


def competition_entropy(mu, temperature: float = 1.0):
  """mean over positions of H(softmax_f(|mu_ijf| / temperature)) in nats, [B]: 0 when one filter dominates every
  position, log k when all are equal."""
  logits = tf.abs(tf.convert_to_tensor(mu, tf.float32)) / temperature
  log_p = tf.nn.log_softmax(logits, axis=-1)
  entropy = -tf.reduce_sum(tf.exp(log_p) * log_p, axis=-1)
  return tf.reduce_mean(tf.reshape(entropy, (tf.shape(mu)[0], -1)), axis=1)


def ortho_penalty(kernel):
  """||W^T W - I||_F^2 with W the kernel [kh, kw, c_in, k] flattened to [kh*kw*c_in, k] (columns = filters)."""
  kernel = tf.convert_to_tensor(kernel, tf.float32)
  w = tf.reshape(kernel, (-1, tf.shape(kernel)[-1]))
  gram = tf.matmul(w, w, transpose_a=True)
  return tf.reduce_sum(tf.square(gram - tf.eye(tf.shape(gram)[0])))


def effective_reduction(kl_mode: str, reduction: str) -> str:
  """filter_avg_weighted always averages the reconstruction over pixels (its definition); other modes keep
  `reduction`."""
  return 'mean' if kl_mode == 'filter_avg_weighted' else reduction


def beta_vae_loss(x, logits, mu, logvar, beta: float, kl_mode: str = 'neuron', recon_loss: str = 'bce',
                  reduction: str = 'sum', competition_weight: float = 1.0,
                  temperature: float = 1.0) -> Dict[str, tf.Tensor]:
  """recon + beta * KL (+ competition_weight * entropy for wta_competitive), batch means.

  Returns {'loss', 'recon', 'kl'} (scalars) and, for wta_competitive, 'entropy'. beta = 0 leaves the
  reconstruction alone (and the encoder's log-variance gets no gradient).
  """
  recon = tf.reduce_mean(reconstruction(x, logits, recon_loss, effective_reduction(kl_mode, reduction)))
  kl = tf.reduce_mean(kl_term(mu, logvar, kl_mode))
  terms = {'loss': recon + beta * kl if beta else recon, 'recon': recon, 'kl': kl}
  if kl_mode == 'wta_competitive':
    terms['entropy'] = tf.reduce_mean(competition_entropy(mu, temperature))
    terms['loss'] = terms['loss'] + competition_weight * terms['entropy']
  return terms
