"""The seed-001 convolutional VAE (Table 1, S:L522-524) and its loss (Eq. 2, S:L176-184), in minimisation form.

Table 1: input (84, 84, 1); encoder Conv2D 32x4x4 stride 2 - 64x4x4 stride 2 - FC 512 (ReLU); 20 linear latents;
decoder FC 512 (ReLU) - 64x4x4 stride 2 - 32x4x4 stride 2 Conv2D transpose. What the table does not say (spec
Sec. 2.2, proposals): ReLU on the convolutions, "same" padding, the encoder's two linear heads mu and log sigma^2,
a decoder Dense back to the (S/4, S/4, 64) map, and a last stride-1 4x4 transpose convolution to one channel of
Bernoulli logits. For S not divisible by 4 (the 42- and 21-pixel stand-ins) the decoder works at ceil(S/4) and
crops its output to S x S.

    L_VAE(x) = -log p(x | z) + beta * KL(q(z | x) || N(0, I)),    z = mu + sigma * eps (one sample)

-log p(x | z): Bernoulli log-likelihood of the grey frame in [0, 1] summed over pixels (spec A7: "per-pixel" in
the paper; the sum is what makes the VAE's gradients at U much larger than PPO's, S:L561-567); KL: the closed form
of core.vaegan.losses.standard_normal_kl (tfp's kl_divergence) summed over latents. Both are averaged over frames.
"""

import math
from typing import Dict, Sequence, Tuple

import keras
import tensorflow as tf

from rlcv_tf.core.vaegan import losses as vae_losses
from rlcv_tf.core.vaegan import networks as vae_networks


class Encoder(keras.Model):
  """x [B, S, S, 1] float in [0, 1] -> (mu, logvar) [B, latent_dim] each."""

  def __init__(self, filters: Sequence[int] = (32, 64), fc: int = 512, latent_dim: int = 20, name: str = 'encoder'):
    super().__init__(name=name)
    self.conv1 = keras.layers.Conv2D(filters[0], 4, strides=2, padding='same', activation='relu', name='conv1')
    self.conv2 = keras.layers.Conv2D(filters[1], 4, strides=2, padding='same', activation='relu', name='conv2')
    self.flatten = keras.layers.Flatten()
    self.fc = keras.layers.Dense(fc, activation='relu', name='fc')
    self.mu = keras.layers.Dense(latent_dim, name='mu')
    self.logvar = keras.layers.Dense(latent_dim, name='logvar')

  def call(self, x):
    h = self.fc(self.flatten(self.conv2(self.conv1(x))))
    return self.mu(h), self.logvar(h)


class Decoder(keras.Model):
  """z [B, latent_dim] -> Bernoulli logits [B, S, S, 1]."""

  def __init__(self, image_size: int = 84, filters: Sequence[int] = (32, 64), fc: int = 512, name: str = 'decoder'):
    super().__init__(name=name)
    self.image_size = int(image_size)
    self.base = int(math.ceil(image_size / 4))
    self.fc = keras.layers.Dense(fc, activation='relu', name='fc')
    self.fc_map = keras.layers.Dense(self.base * self.base * filters[1], activation='relu', name='fc_map')
    self.reshape = keras.layers.Reshape((self.base, self.base, filters[1]))
    self.deconv1 = keras.layers.Conv2DTranspose(filters[1], 4, strides=2, padding='same', activation='relu',
                                                name='deconv1')
    self.deconv2 = keras.layers.Conv2DTranspose(filters[0], 4, strides=2, padding='same', activation='relu',
                                                name='deconv2')
    self.out = keras.layers.Conv2DTranspose(1, 4, strides=1, padding='same', name='logits')

  def call(self, z):
    h = self.deconv2(self.deconv1(self.reshape(self.fc_map(self.fc(z)))))
    logits = self.out(h)
    s = self.image_size
    return logits[:, :s, :s, :]


class VAE(keras.Model):
  """Encoder + decoder of Table 1 (module docstring)."""

  def __init__(self, image_size: int = 84, filters: Sequence[int] = (32, 64), fc: int = 512, latent_dim: int = 20,
               name: str = 'vae'):
    super().__init__(name=name)
    self.image_size = int(image_size)
    self.latent_dim = int(latent_dim)
    self.encoder = Encoder(filters, fc, latent_dim)
    self.decoder = Decoder(image_size, filters, fc)

  def build_all(self) -> 'VAE':
    self(tf.zeros((1, self.image_size, self.image_size, 1)), sample=False)
    return self

  def call(self, x, sample: bool = True):
    mu, logvar = self.encoder(x)
    z = vae_networks.reparameterize(mu, logvar) if sample else mu
    return self.decoder(z), mu, logvar


def vae_terms(x, logits, mu, logvar) -> Tuple[tf.Tensor, tf.Tensor]:
  """Per-frame terms [B]: the negative log-likelihood (Bernoulli, summed over pixels) and KL (summed over latents)."""
  nll = -vae_losses.bernoulli_log_likelihood(x, logits)
  kl = tf.reduce_sum(vae_losses.standard_normal_kl(mu, logvar), axis=-1)
  return nll, kl


def vae_loss(vae: VAE, x, beta: float = 1.0) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
  """Mean over frames of -log p(x|z) + beta KL (one reparameterised sample), and its parts for logging."""
  logits, mu, logvar = vae(x, sample=True)
  nll, kl = vae_terms(x, logits, mu, logvar)
  loss = tf.reduce_mean(nll + beta * kl)
  return loss, {'vae/nll': tf.reduce_mean(nll), 'vae/kl': tf.reduce_mean(kl), 'vae/loss': loss}


def frames_to_float(frames) -> tf.Tensor:
  """uint8 frames -> float32 in [0, 1]; floats pass through."""
  frames = tf.convert_to_tensor(frames)
  if frames.dtype == tf.uint8:
    return tf.cast(frames, tf.float32) / 255.0
  return tf.cast(frames, tf.float32)
