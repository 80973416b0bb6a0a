"""A second way to sample a trained VAE: a full-covariance Gaussian fitted to its aggregate posterior.

Not in the thesis. The thesis samples z ~ N(0, I), the prior the model was trained with. After a short run that
prior and the aggregate posterior q(z) = E_x q(z|x) disagree: the posterior means of the default small32 run
(1,500 steps on synth_birds) vary together across images along a few directions (the largest eigenvalues of their
covariance are 30-40, against 1 under the prior). The decoder has learned to read those joint directions, so
independent N(0, I) draws decode to one average bird, while the real posterior means decode to images as varied
as the data (docs/crvae_default_diagnosis.md).

Fitting a density to the latent codes after training and sampling from it is "ex-post density estimation"
(Ghosh et al., "From variational to deterministic autoencoders", ICLR 2020, who fit a Gaussian or a mixture to
the codes). Here the density is the single Gaussian with the aggregate posterior's own first two moments:

  m = E_x[mu(x)],    S = Cov_x[mu(x)] + E_x[diag sigma^2(x)]

(the mixture of the per-image Gaussians q(z|x) has exactly this mean and covariance), computed on training
images, so held-out numbers stay held out. It changes nothing in training; it is a diagnostic and a demo sampler:
the training run writes its samples beside the N(0, I) ones, the learning check reads them, and the SavedModel
serves them as `sample_expost`.
"""

from typing import Iterable, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


class ExPostGaussian(tf.Module):
  """N(loc, scale_tril scale_tril^T) over the flattened latent; `sample` returns latent-shaped z.

  Variables (saved with a SavedModel that tracks this module): loc [D], scale_tril [D, D] (lower triangular),
  num_images (how many training images the moments came from; 0 = not fitted, then it is N(0, I)).
  """

  def __init__(self, latent_shape: Sequence[int], name: str = 'expost_prior'):
    super().__init__(name=name)
    self.latent_shape = tuple(int(d) for d in latent_shape)
    dim = int(np.prod(self.latent_shape))
    self.loc = tf.Variable(tf.zeros([dim]), trainable=False, name='loc')
    self.scale_tril = tf.Variable(tf.eye(dim), trainable=False, name='scale_tril')
    self.num_images = tf.Variable(0, dtype=tf.int64, trainable=False, name='num_images')

  @property
  def dim(self) -> int:
    return int(self.loc.shape[0])

  def set_moments(self, mean: np.ndarray, covariance: np.ndarray, num_images: int, jitter: float = 1e-6):
    """Sets loc = mean and scale_tril = cholesky(covariance + jitter I) (float64 factorisation)."""
    mean = np.asarray(mean, np.float64).reshape(-1)
    covariance = np.asarray(covariance, np.float64)
    if mean.shape != (self.dim,) or covariance.shape != (self.dim, self.dim):
      raise ValueError(f'moments: want mean [{self.dim}] and covariance [{self.dim}, {self.dim}], got '
                       f'{mean.shape} and {covariance.shape}')
    tril = np.linalg.cholesky(0.5 * (covariance + covariance.T) + jitter * np.eye(self.dim))
    self.loc.assign(mean.astype(np.float32))
    self.scale_tril.assign(tril.astype(np.float32))
    self.num_images.assign(int(num_images))

  def distribution(self) -> tfd.Distribution:
    return tfd.MultivariateNormalTriL(loc=self.loc, scale_tril=self.scale_tril)

  def sample(self, num, seed=None) -> tf.Tensor:
    """[num, *latent_shape] draws; `seed` a stateless (int, int) seed or None."""
    z = self.distribution().sample(num, seed=seed)
    return tf.reshape(z, tf.concat([[num], self.latent_shape], axis=0))


def aggregate_moments(means: np.ndarray, log_variances: np.ndarray):
  """(mean [D], covariance [D, D]) of the mixture (1/N) sum_i N(means[i], diag exp(log_variances[i])), float64.

  The covariance is the spread of the component means (ddof 0: the mixture's own moments) plus the average
  component variance on the diagonal.
  """
  mu = np.asarray(means, np.float64).reshape(len(means), -1)
  var = np.exp(np.asarray(log_variances, np.float64).reshape(len(mu), -1))
  mean = mu.mean(axis=0)
  centred = mu - mean
  covariance = centred.T @ centred / len(mu) + np.diag(var.mean(axis=0))
  return mean, covariance


def fit(vae, image_batches: Iterable, num_images: int) -> ExPostGaussian:
  """Encodes (inference mode) up to `num_images` images from `image_batches` (arrays or tensors [B, R, R, C], or
  dicts with an 'image' entry) and returns the moment-matched `ExPostGaussian` of their posteriors.

  Raises ValueError with fewer than 2 images.
  """
  means, log_variances, count = [], [], 0
  for batch in image_batches:
    images = batch['image'] if isinstance(batch, dict) else batch
    images = images[:num_images - count]
    mu, logvar = vae.encode(tf.convert_to_tensor(images), training=False)
    means.append(np.asarray(mu))
    log_variances.append(np.asarray(logvar))
    count += int(mu.shape[0])
    if count >= num_images:
      break
  if count < 2:
    raise ValueError(f'ex-post prior: need at least 2 training images to fit a covariance, got {count}')
  prior = ExPostGaussian(vae.latent_shape)
  prior.set_moments(*aggregate_moments(np.concatenate(means), np.concatenate(log_variances)), num_images=count)
  return prior
