"""Seed-002 networks: the MNIST autoencoders of Tables 3.1 / 3.2, the fully-convolutional VAE and a dense beta-VAE
(layer tables in `presets`; S = seed 002 line).

Every model maps images [B, H, W, C] in [0, 1] to logits of the same shape (the sigmoid of S:L443 lives in the
loss and in `decode_images`) and offers:
  encode(x, training)  VAEs: (mu, logvar) of q(z|x), linear heads (S:L884-896); AEs: the code
  decode(z, training)  logits
  decode_images(z)     sigmoid(decode(z)): Bernoulli means in [0, 1]
  call(x, training)    {'logits', 'z'} (+ 'mu', 'logvar' for VAEs; z is sampled in training mode and is the
                       posterior mean otherwise)
  latent_shape, image_shape, variational
The FCVAE's latent is a map [B, m, n, k] (NHWC; the draft's (k, m, n)); the dense VAE's a vector [B, d].

The autoencoders have no prior. For their `sample` export they keep a diagonal Gaussian fitted to the training
codes (`code_mean`, `code_std`, set by `fit_code_gaussian` after training; [proposal]): an AE sample is a decoded
draw from it.
"""

from typing import Dict

import keras
import numpy as np
import tensorflow as tf

from rlcv_tf.core.vaegan import networks as vae_networks
from rlcv_tf.fcvae import presets


def _conv(filters, kernel, strides=1, activation=None, name=None):
  return keras.layers.Conv2D(filters, kernel, strides=strides, padding='same', activation=activation, name=name)


def _convt(filters, kernel, strides=1, activation=None, name=None):
  return keras.layers.Conv2DTranspose(filters, kernel, strides=strides, padding='same', activation=activation,
                                      name=name)


class SeedModel(keras.Model):
  """Shared interface of the seed-002 models (module docstring)."""

  variational = True

  def __init__(self, config: presets.FCVAEConfig, **kwargs):
    super().__init__(name=kwargs.pop('name', config.model), **kwargs)
    self._config = config

  @property
  def config(self) -> presets.FCVAEConfig:
    return self._config

  @property
  def image_shape(self):
    return self._config.image_shape

  def decode_images(self, z, training=False):
    return tf.sigmoid(self.decode(z, training=training))

  def build_all(self):
    """Creates every variable (one call on zeros)."""
    self(tf.zeros((1,) + tuple(self.image_shape)), training=False)
    return self


class _VAE(SeedModel):

  def call(self, x, training=False) -> Dict[str, tf.Tensor]:
    mu, logvar = self.encode(x, training=training)
    z = vae_networks.reparameterize(mu, logvar) if training else mu
    return {'logits': self.decode(z, training=training), 'mu': mu, 'logvar': logvar, 'z': z}

  def latent_head_kernels(self):
    return []


class FCVAE(_VAE):
  """The fully-convolutional VAE (spec 3.3 [proposal]; single latent filter k = 1, S:L923-956; multiple filters,
  S:L957-994). `bn`: 'before' = BN on the trunk output the mu / logvar convs read, 'after' = BN on the sampled z
  before the decoder, 'both', 'none' (S:L1434-1437)."""

  def __init__(self, config: presets.FCVAEConfig, **kwargs):
    super().__init__(config, **kwargs)
    c = config
    self.enc1 = _conv(32, 4, 2, 'relu', name='enc1')
    self.enc2 = _conv(64, 4, 2, 'relu', name='enc2')
    deep = c.depth == 'deep'
    self.enc3 = _conv(64, 3, 1, 'relu', name='enc3') if deep else None
    self.enc4 = _conv(64, 3, 1, 'relu', name='enc4') if deep else None
    self.bn_before = keras.layers.BatchNormalization(name='bn_before') if c.bn in ('before', 'both') else None
    self.mu_head = _conv(c.filters, 3, name='mu')            # linear (S:L894)
    self.logvar_head = _conv(c.filters, 3, name='logvar')    # linear (S:L895)
    self.bn_after = keras.layers.BatchNormalization(name='bn_after') if c.bn in ('after', 'both') else None
    self.dec1 = _conv(64, 3, 1, 'relu', name='dec1') if deep else None
    self.dec2 = _conv(64, 3, 1, 'relu', name='dec2') if deep else None
    self.dec3 = _convt(64, 4, 2, 'relu', name='dec3')
    self.dec4 = _convt(c.channels, 4, 2, name='dec4')

  @property
  def latent_shape(self):
    c = self.config
    return (c.height // 4, c.width // 4, c.filters)

  def encode(self, x, training=False):
    h = self.enc2(self.enc1(x))
    if self.enc3 is not None:
      h = self.enc4(self.enc3(h))
    if self.bn_before is not None:
      h = self.bn_before(h, training=training)
    return self.mu_head(h), self.logvar_head(h)

  def decode(self, z, training=False):
    h = z
    if self.bn_after is not None:
      h = self.bn_after(h, training=training)
    if self.dec1 is not None:
      h = self.dec2(self.dec1(h))
    return self.dec4(self.dec3(h))

  def latent_head_kernels(self):
    return [self.mu_head.kernel]


class DenseVAE(_VAE):
  """The dense beta-VAE of seed 001 Table 1 (encoder Conv 32x4x4 s2 - 64x4x4 s2 - FC 512, latents linear, decoder FC
  512 - 64x4x4 s2 - 32x4x4 s2 ConvT), at any size divisible by 4; the output ConvT C 4x4 s1 (logits) is not stated
  in Table 1 (seed-001 spec 2.2 [proposal])."""

  def __init__(self, config: presets.FCVAEConfig, **kwargs):
    super().__init__(config, **kwargs)
    c = config
    self.enc1 = _conv(32, 4, 2, 'relu', name='enc1')
    self.enc2 = _conv(64, 4, 2, 'relu', name='enc2')
    self.flatten = keras.layers.Flatten(name='flatten')
    self.enc_fc = keras.layers.Dense(512, activation='relu', name='enc_fc')
    self.mu_head = keras.layers.Dense(c.latent_dim, name='mu')
    self.logvar_head = keras.layers.Dense(c.latent_dim, name='logvar')
    self.dec_fc = keras.layers.Dense(512, activation='relu', name='dec_fc')
    self.dec_map = keras.layers.Dense((c.height // 4) * (c.width // 4) * 64, activation='relu', name='dec_map')
    self.reshape = keras.layers.Reshape((c.height // 4, c.width // 4, 64), name='reshape')
    self.dec1 = _convt(64, 4, 2, 'relu', name='dec1')
    self.dec2 = _convt(32, 4, 2, 'relu', name='dec2')
    self.out = _convt(c.channels, 4, 1, name='out')

  @property
  def latent_shape(self):
    return (self.config.latent_dim,)

  def encode(self, x, training=False):
    h = self.enc_fc(self.flatten(self.enc2(self.enc1(x))))
    return self.mu_head(h), self.logvar_head(h)

  def decode(self, z, training=False):
    h = self.reshape(self.dec_map(self.dec_fc(z)))
    return self.out(self.dec2(self.dec1(h)))

  def latent_head_kernels(self):
    return [self.mu_head.kernel[None, None]]


class _AE(SeedModel):
  """A deterministic autoencoder with a diagonal Gaussian over its codes for sampling (module docstring)."""

  variational = False

  def __init__(self, config: presets.FCVAEConfig, **kwargs):
    super().__init__(config, **kwargs)
    shape = self.latent_shape
    self.code_mean = self.add_weight(shape=shape, initializer='zeros', trainable=False, name='code_mean')
    self.code_std = self.add_weight(shape=shape, initializer='ones', trainable=False, name='code_std')

  def call(self, x, training=False) -> Dict[str, tf.Tensor]:
    z = self.encode(x, training=training)
    return {'logits': self.decode(z, training=training), 'z': z}

  def fit_code_gaussian(self, images: np.ndarray, batch: int = 256) -> None:
    """Sets code_mean / code_std to the per-unit mean and standard deviation of the codes of `images`."""
    codes = np.concatenate([self.encode(images[i:i + batch]).numpy() for i in range(0, len(images), batch)])
    self.code_mean.assign(codes.mean(axis=0))
    self.code_std.assign(codes.std(axis=0) + 1e-6)

  def sample_codes(self, num):
    noise = tf.random.normal(tf.concat([[num], tf.constant(self.latent_shape, tf.int32)], axis=0))
    return self.code_mean + self.code_std * noise


class AEFC(_AE):
  """Table 3.1: Flatten -> Dense(code_size, ReLU) -> Dense(H*W*C) -> Reshape (logits)."""

  def __init__(self, config: presets.FCVAEConfig, **kwargs):
    c = config
    self._shape = (c.code_size,)
    super().__init__(config, **kwargs)
    self.flatten = keras.layers.Flatten(name='flatten')
    self.hidden = keras.layers.Dense(c.code_size, activation='relu', name='hidden')
    self.out = keras.layers.Dense(c.height * c.width * c.channels, name='out')
    self.reshape = keras.layers.Reshape(c.image_shape, name='reshape')

  @property
  def latent_shape(self):
    return self._shape

  def encode(self, x, training=False):
    return self.hidden(self.flatten(x))

  def decode(self, z, training=False):
    return self.reshape(self.out(z))


class AEConv(_AE):
  """Table 3.2 with 3x3 'same' kernels [proposal]: code (H/4, W/4, 4)."""

  def __init__(self, config: presets.FCVAEConfig, **kwargs):
    c = config
    self._shape = (c.height // 4, c.width // 4, 4)
    super().__init__(config, **kwargs)
    self.conv1 = _conv(32, 3, 1, 'relu', name='conv1')
    self.pool1 = keras.layers.MaxPooling2D(2, name='pool1')
    self.conv2 = _conv(4, 3, 1, 'relu', name='conv2')
    self.pool2 = keras.layers.MaxPooling2D(2, name='pool2')
    self.up1 = keras.layers.UpSampling2D(2, name='up1')
    self.deconv1 = _convt(32, 3, 1, 'relu', name='deconv1')
    self.up2 = keras.layers.UpSampling2D(2, name='up2')
    self.deconv2 = _convt(c.channels, 3, 1, name='deconv2')

  @property
  def latent_shape(self):
    return self._shape

  def encode(self, x, training=False):
    return self.pool2(self.conv2(self.pool1(self.conv1(x))))

  def decode(self, z, training=False):
    return self.deconv2(self.up2(self.deconv1(self.up1(z))))


_CLASSES = {'ae_fc': AEFC, 'ae_conv': AEConv, 'vae': DenseVAE, 'fcvae': FCVAE}


def build_model(config: presets.FCVAEConfig) -> SeedModel:
  """The model `config.model` names, with every variable created."""
  config = config.validate()
  return _CLASSES[config.model](config).build_all()
