"""Chapter 5 Stage-1 networks: VAE-GAN, cVAE, crVAE(-GAN) and the MNIST ablation family (thesis Sec. 5.3,
App. 5.A, 5.B; spec ch5 §A2.2, §A2.3, §A2.6).

The thesis leaves the Stage-1 architecture to the authors' repository (T:L5290-5292); the layer tables come from
spec §A2.2/§A2.3 and are data in `presets.CrVAEConfig`. Every model shares the latent layout z in R^{4 x 4 x n_z}
(1024-d at full64, MNIST included), cut along channels into T blocks (`blocks.split_blocks`):

  ImageVAE
    encoder trunk E: [CReLU on the input] -> (pad, conv, BN, CReLU | LReLU(0.1)) x L      -> h [B, 4, 4, C_h]
    inference head (config.inference_head):
      fc   : mu, logvar = Dense(flatten h) each, reshaped to 4x4xn_z        (VAE-GAN, MNIST VAE)
      conv : mu, logvar = conv3x3(h) each                                   (cVAE)
      cr   : mu = conv3x3(h) (MNIST: Dense(flatten h)) -> AddBias;          (crVAE, Sec. 5.3.2)
             logvar = merge(Dense(BN(LSTM_inf(split(h, T)))))   -- causal over blocks, BN only on RGB
    z = mu + exp(logvar / 2) * eps
    generation head (config.generation_head):
      fc   : u = z; Dense(flatten u) -> reshape 4x4xC_h                      (no BN, no activation)
      conv : u = z; conv3x3 -> BN
      cr   : u = merge(Dense(LSTM_gen(split(z, T)))) -- causal over blocks; AddBias -> conv3x3 -> BN
    decoder trunk: ((ConvT 4x4 s2, crop) | (pad, conv3x3)) -> BN -> LReLU(0.1), then the output conv; tanh for
    RGB images in [-1, 1], sigmoid for MNIST (Bernoulli means).
  Discriminator (VAE-GAN, crVAE-GAN)
    trunk F: (conv k 'same' -> MaxPool 2 -> ReLU -> SpatialDropout2D(0.5)) x 4           -> [B, 4, 4, 256]
    D head: Flatten -> Dense(1024) -> L2Normalize -> Dropout(0.5) -> ReLU -> MinibatchDisc(100, 5) -> Dense(1)
            logits (the thesis' sigmoid lives in the BCE, spec A2.2 [P])
    MI head q_psi (crVAE-GAN): conv3x3 -> BN -> LReLU(0.2) -> conv1x1 -> BN -> LReLU(0.1) -> Flatten ->
            Dense(16 n_z) -> reshape 4x4xn_z -> AddBias = u_hat, the regression of u (Sec. 5.3.3, App. 5.D).

The two LSTMs are plain stacked unidirectional `keras.layers.LSTM`s (2 layers, unit_forget_bias=True, spec §0),
so u_t depends only on z_1..z_t and logvar_t only on the encoder blocks h_1..h_t (the order dependence that gives
coarse-to-fine semantics, Sec. 5.4.5); `transform` returns u before the AddBias, the MI target (spec §8-A3).
The BN after LSTM_inf pools statistics over batch and time in training mode, so causality of the variance path
holds in inference mode (spec §7.3-4).

`variable_groups()` on both models gives the optimiser groups of spec A3.2 (enc, lstm_inf, lstm_gen, dec;
trunk, d_head, q_head).
"""

from typing import Dict, List, Optional

import keras
from keras import ops
import tensorflow as tf

from rlcv_tf.core import tracking
from rlcv_tf.crvae import blocks
from rlcv_tf.crvae import layers as crvae_layers
from rlcv_tf.crvae import presets

_conv_init = crvae_layers.conv_initializer
_convt_init = crvae_layers.conv_transpose_initializer
_dense_init = crvae_layers.dense_initializer


def _conv(filters, kernel, name, strides=1, padding='valid'):
  return keras.layers.Conv2D(filters, kernel, strides=strides, padding=padding, kernel_initializer=_conv_init(),
                             bias_initializer='zeros', name=name)


def _dense(units, name):
  return keras.layers.Dense(units, kernel_initializer=_dense_init(), bias_initializer='zeros', name=name)


def _bn(config: presets.CrVAEConfig, name):
  return crvae_layers.torch_bn(config.bn_epsilon, config.bn_momentum_torch, name=name)


def _trainable(layers_) -> List:
  variables = []
  for layer in layers_:
    if layer is not None:
      variables.extend(layer.trainable_variables)
  return variables


# ---------------------------------------------------------------------------------------------- trunks
class EncoderTrunk(keras.layers.Layer):
  """E: optional input CReLU, then (ZeroPadding(p), conv k/s valid, BN, CReLU | LeakyReLU) per table row."""

  def __init__(self, config: presets.CrVAEConfig, **kwargs):
    super().__init__(**kwargs)
    self.input_crelu = crvae_layers.CReLU(name='input_crelu') if config.input_crelu else None
    self.stages = []
    for i, (kernel, stride, filters, activation, pad) in enumerate(config.encoder_layers):
      padding = keras.layers.ZeroPadding2D(pad, name=f'pad{i}') if pad else None
      act = (crvae_layers.CReLU(name=f'crelu{i}') if activation == 'crelu' else
             keras.layers.LeakyReLU(config.lrelu_slope, name=f'lrelu{i}'))
      self.stages.append((padding, _conv(filters, kernel, f'conv{i}', strides=stride), _bn(config, f'bn{i}'), act))
    tracking.track_containers(self)   # so tf.train.Checkpoint saves the BN moving statistics too

  def call(self, x, training=False):
    if self.input_crelu is not None:
      x = self.input_crelu(x)
    for padding, conv, bn, act in self.stages:
      if padding is not None:
        x = padding(x)
      x = act(bn(conv(x), training=training))
    return x


class DecoderTrunk(keras.layers.Layer):
  """Dec: ('convT' = ConvT 4x4 s2 valid + Cropping(crop) | 'conv' = pad + conv3x3) -> BN -> LReLU, then the output
  conv (3x3, pad `decoder_out_padding`) to `channels`. Returns pre-activation logits."""

  def __init__(self, config: presets.CrVAEConfig, **kwargs):
    super().__init__(**kwargs)
    self.stages = []
    for i, (kind, filters, pad_or_crop) in enumerate(config.decoder_layers):
      if kind == 'convT':
        # Torch SpatialFullConvolution(4, 4, 2, 2, p): (n - 1) * 2 + 4 - 2p; valid ConvT + symmetric crop p.
        ops_ = [keras.layers.Conv2DTranspose(filters, 4, strides=2, padding='valid', kernel_initializer=_convt_init(),
                                             bias_initializer='zeros', name=f'convt{i}')]
        if pad_or_crop:
          ops_.append(keras.layers.Cropping2D(pad_or_crop, name=f'crop{i}'))
      else:
        ops_ = [keras.layers.ZeroPadding2D(pad_or_crop, name=f'pad{i}')] if pad_or_crop else []
        ops_.append(_conv(filters, 3, f'conv{i}'))
      self.stages.append((ops_, _bn(config, f'bn{i}'), keras.layers.LeakyReLU(config.lrelu_slope, name=f'lrelu{i}')))
    self.out_pad = (keras.layers.ZeroPadding2D(config.decoder_out_padding, name='out_pad')
                    if config.decoder_out_padding else None)
    self.out_conv = _conv(config.channels, 3, 'out_conv')
    tracking.track_containers(self)

  def call(self, x, training=False):
    for ops_, bn, act in self.stages:
      for op in ops_:
        x = op(x)
      x = act(bn(x, training=training))
    if self.out_pad is not None:
      x = self.out_pad(x)
    return self.out_conv(x)


class ChannelRecurrentPath(keras.layers.Layer):
  """split_blocks -> stacked unidirectional LSTMs -> [BN over (B*T, hidden)] -> Dense shared over t -> merge_blocks.

  The channel-recurrent transformation of Sec. 5.3.2: LSTM_inf on the variance path (input h, output logvar) and
  LSTM_gen on the generation path (input z, output u). Causal over blocks: output block t depends only on input
  blocks 0..t (in inference mode when `batch_norm`, whose training-mode statistics span all steps).

  Args:
    num_blocks: T.
    out_channels: channels of the merged output (n_z); out_channels / T per block.
    hidden: LSTM width (512 at full64).
    num_layers: stacked LSTMs (2).
    batch_norm: BN after the LSTMs (RGB variance path).
    config: for the BN epsilon / momentum.
  """

  def __init__(self, num_blocks: int, out_channels: int, hidden: int, num_layers: int, batch_norm: bool,
               config: presets.CrVAEConfig, **kwargs):
    super().__init__(**kwargs)
    self.num_blocks = int(num_blocks)
    self.out_channels = int(out_channels)
    blocks.check_divisible(self.out_channels, self.num_blocks)
    self.lstms = [keras.layers.LSTM(hidden, return_sequences=True, unit_forget_bias=True, unroll=config.lstm_unroll,
                                    name=f'lstm{i}') for i in range(num_layers)]
    self.bn = _bn(config, 'bn') if batch_norm else None
    self.per_block = None
    self.dense = None
    self.spatial = None
    tracking.track_containers(self)

  def build(self, input_shape):
    _, h, w, _ = input_shape
    self.spatial = (int(h), int(w))
    self.per_block = int(h) * int(w) * self.out_channels // self.num_blocks
    self.dense = _dense(self.per_block, 'dense')

  def call(self, x, training=False):
    y = blocks.split_blocks(x, self.num_blocks)                          # [B, T, H*W*C_in/T]
    for lstm in self.lstms:
      y = lstm(y, training=training)
    if self.bn is not None:
      y = self.bn(y, training=training)                                   # statistics over B and T
    y = self.dense(y)                                                     # shared over t
    return blocks.merge_blocks(y, self.num_blocks, *self.spatial)


def _latent_dense_head(config, name):
  """Flatten -> Dense(16 n_z) -> reshape 4x4xn_z."""
  return keras.Sequential([keras.layers.Flatten(name='flatten'), _dense(config.latent_dim, 'dense'),
                           keras.layers.Reshape(config.latent_shape, name='reshape')], name=name)


def _latent_conv_head(filters, name, config=None, batch_norm=False, add_bias_shape=None):
  """[AddBias] -> pad 1 -> conv3x3 -> [BN]."""
  stages = []
  if add_bias_shape is not None:
    stages.append(crvae_layers.AddBias(add_bias_shape, name='add_bias'))
  stages += [keras.layers.ZeroPadding2D(1, name='pad'), _conv(filters, 3, 'conv')]
  if batch_norm:
    stages.append(_bn(config, 'bn'))
  return keras.Sequential(stages, name=name)


# --------------------------------------------------------------------------------------------- the VAEs
class _ConfiguredModel(keras.Model):
  """A model built from one CrVAEConfig, which its Keras config carries (for get_config / from_config)."""

  @property
  def config(self) -> presets.CrVAEConfig:
    return self._config

  def get_config(self):
    return dict(super().get_config(), config=self._config.to_dict())

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    model_config = presets.CrVAEConfig.from_dict(config.pop('config'))
    return cls(model_config, name=config.get('name'))


class ImageVAE(_ConfiguredModel):
  """The Stage-1 generator of every Chapter 5 model (VAE-GAN, cVAE, crVAE(-GAN), MNIST VAE/cVAE/crVAE variants).

  Interface (used by the training loop, evaluation, latent tools and export):
    encode(x, training=False) -> (mu, logvar), each [B, 4, 4, n_z] (the FC heads reshape their 1024-d output)
    transform(z, training=False) -> u [B, 4, 4, n_z]: LSTM_gen + Dense + merge, before the AddBias (crVAE);
                                    z itself for the fc / conv generation heads
    decode_transformed(u, training=False) -> logits from u
    decode_logits(z, training=False) -> pre-activation output [B, R, R, C]
    decode(z, training=False) -> image: tanh (likelihood 'gaussian', [-1, 1]) or sigmoid ('bernoulli', MNIST)
    call(x, training=False) -> dict(mu, logvar, z, u, logits, x_tilde), z = mu + exp(logvar / 2) * eps
  """

  def __init__(self, config: presets.CrVAEConfig, **kwargs):
    kwargs.setdefault('name', f'{config.model}_vae')
    super().__init__(**kwargs)
    config.validate()
    self._config = config
    n_z, t = config.n_z, config.num_blocks
    self.encoder_trunk = EncoderTrunk(config, name='encoder')

    head = config.inference_head
    self.logvar_path = None          # lstm_inf group (cr only)
    if head == 'fc':
      self.mu_head = _latent_dense_head(config, 'mu_fc')
      self.logvar_head = _latent_dense_head(config, 'logvar_fc')
    elif head == 'conv':
      self.mu_head = _latent_conv_head(n_z, 'mu_conv')
      self.logvar_head = _latent_conv_head(n_z, 'logvar_conv')
    else:
      mean = (_latent_conv_head(n_z, 'mu_conv') if config.mean_path == 'conv' else _latent_dense_head(config, 'mu_fc'))
      self.mu_head = keras.Sequential([mean, crvae_layers.AddBias(config.latent_shape, name='add_bias')],
                                      name='mu_cr')
      self.logvar_head = None
      self.logvar_path = ChannelRecurrentPath(t, n_z, config.resolved_lstm_hidden, config.lstm_layers,
                                              config.variance_bn, config, name='lstm_inf')

    head = config.generation_head
    self.transform_path = None       # lstm_gen group (cr only)
    c_h, s = config.hidden_channels, config.latent_size
    if head == 'fc':
      self.to_trunk = keras.Sequential([keras.layers.Flatten(name='flatten'), _dense(s * s * c_h, 'dense'),
                                        keras.layers.Reshape((s, s, c_h), name='reshape')], name='gen_fc')
    elif head == 'conv':
      self.to_trunk = _latent_conv_head(c_h, 'gen_conv', config, batch_norm=True)
    else:
      self.transform_path = ChannelRecurrentPath(t, n_z, config.resolved_lstm_hidden, config.lstm_layers, False,
                                                 config, name='lstm_gen')
      self.to_trunk = _latent_conv_head(c_h, 'gen_cr', config, batch_norm=True, add_bias_shape=config.latent_shape)
    self.decoder_trunk = DecoderTrunk(config, name='decoder')

  # ------------------------------------------------------------------------------------ properties
  @property
  def latent_shape(self):
    return self._config.latent_shape

  @property
  def image_shape(self):
    return self._config.image_shape

  @property
  def num_blocks(self) -> int:
    return self._config.num_blocks

  @property
  def likelihood(self) -> str:
    return self._config.likelihood

  # ------------------------------------------------------------------------------------ paths
  def encode(self, x, training=False):
    h = self.encoder_trunk(x, training=training)
    mu = self.mu_head(h, training=training)
    if self.logvar_path is not None:
      logvar = self.logvar_path(h, training=training)
    else:
      logvar = self.logvar_head(h, training=training)
    return mu, logvar

  @staticmethod
  def reparameterize(mu, logvar):
    """z = mu + exp(logvar / 2) * eps, eps ~ N(0, I) (Sampler.lua; spec §0)."""
    return mu + tf.exp(0.5 * logvar) * tf.random.normal(tf.shape(mu), dtype=mu.dtype)

  def transform(self, z, training=False):
    if self.transform_path is None:
      return z
    return self.transform_path(z, training=training)

  def decode_transformed(self, u, training=False):
    return self.decoder_trunk(self.to_trunk(u, training=training), training=training)

  def decode_logits(self, z, training=False):
    return self.decode_transformed(self.transform(z, training=training), training=training)

  def output_activation(self, logits):
    return ops.sigmoid(logits) if self._config.likelihood == 'bernoulli' else ops.tanh(logits)

  def decode(self, z, training=False):
    return self.output_activation(self.decode_logits(z, training=training))

  def call(self, x, training=False):
    mu, logvar = self.encode(x, training=training)
    z = self.reparameterize(mu, logvar)
    u = self.transform(z, training=training)
    logits = self.decode_transformed(u, training=training)
    return dict(mu=mu, logvar=logvar, z=z, u=u, logits=logits, x_tilde=self.output_activation(logits))

  # ------------------------------------------------------------------------------------ groups
  def variable_groups(self) -> Dict[str, list]:
    """Trainable variables per optimiser group (spec A3.2); empty groups are omitted.

    enc: E + mean path (+ the fc / conv log-variance head); lstm_inf: LSTM_inf + BN + Dense;
    lstm_gen: LSTM_gen + Dense; dec: AddBias_u / FC_gen / gen conv + BN + Dec.
    """
    groups = {
        'enc': _trainable([self.encoder_trunk, self.mu_head, self.logvar_head]),
        'lstm_inf': _trainable([self.logvar_path]),
        'lstm_gen': _trainable([self.transform_path]),
        'dec': _trainable([self.to_trunk, self.decoder_trunk]),
    }
    return {name: variables for name, variables in groups.items() if variables}


# -------------------------------------------------------------------------------------- discriminator
class Discriminator(_ConfiguredModel):
  """F + D head (+ q_psi for crVAE-GAN with MI) of spec A2.2.

    features(x, training=False) -> F(x) [B, R/16, R/16, C_F]
    logits(features, training=False) -> [B, 1] (pre-sigmoid)
    mi(features, training=False) -> u_hat [B, 4, 4, n_z], or None without an MI head
    discriminate(x, training=False) -> logits(features(x))
    call(x, training=False) -> dict(logits[, u_hat])  (u_hat only when the MI head exists)
  """

  def __init__(self, config: presets.CrVAEConfig, **kwargs):
    kwargs.setdefault('name', f'{config.model}_discriminator')
    super().__init__(**kwargs)
    config.validate()
    self._config = config
    trunk = []
    for i, (filters, kernel) in enumerate(zip(config.d_channels, config.d_kernels)):
      trunk += [_conv(filters, kernel, f'conv{i}', padding='same'), keras.layers.MaxPooling2D(2, name=f'pool{i}'),
                keras.layers.ReLU(name=f'relu{i}'), keras.layers.SpatialDropout2D(config.d_dropout, name=f'drop{i}')]
    self.trunk = keras.Sequential(trunk, name='trunk')
    self.d_head = keras.Sequential([
        keras.layers.Flatten(name='flatten'), _dense(config.d_dense, 'dense'), crvae_layers.L2Normalize(name='l2norm'),
        keras.layers.Dropout(config.d_dropout, name='dropout'), keras.layers.ReLU(name='relu'),
        crvae_layers.MinibatchDiscrimination(config.mbd_kernels, config.mbd_dims, name='mbd'),
        _dense(1, 'logit')], name='d_head')
    self.q_head = None
    if config.has_mi:
      c1, c2 = config.mi_channels
      self.q_head = keras.Sequential([
          keras.layers.ZeroPadding2D(1, name='pad'), _conv(c1, 3, 'conv3x3'), _bn(config, 'bn1'),
          keras.layers.LeakyReLU(0.2, name='lrelu1'), _conv(c2, 1, 'conv1x1'), _bn(config, 'bn2'),
          keras.layers.LeakyReLU(0.1, name='lrelu2'), keras.layers.Flatten(name='flatten'),
          _dense(config.latent_dim, 'dense'), keras.layers.Reshape(config.latent_shape, name='reshape'),
          crvae_layers.AddBias(config.latent_shape, name='add_bias')], name='q_head')

  def features(self, x, training=False):
    return self.trunk(x, training=training)

  def logits(self, features, training=False):
    return self.d_head(features, training=training)

  def mi(self, features, training=False) -> Optional[tf.Tensor]:
    if self.q_head is None:
      return None
    return self.q_head(features, training=training)

  def discriminate(self, x, training=False):
    return self.logits(self.features(x, training=training), training=training)

  def call(self, x, training=False):
    features = self.features(x, training=training)
    out = dict(logits=self.logits(features, training=training))
    if self.q_head is not None:
      out['u_hat'] = self.mi(features, training=training)
    return out

  def variable_groups(self) -> Dict[str, list]:
    groups = dict(trunk=_trainable([self.trunk]), d_head=_trainable([self.d_head]), q_head=_trainable([self.q_head]))
    return {name: variables for name, variables in groups.items() if variables}


def build_models(config: presets.CrVAEConfig, batch_size: int = 4):
  """Creates and builds (one call on zeros) the VAE and, for the adversarial kinds, the discriminator."""
  config.validate()
  vae = ImageVAE(config)
  images = ops.zeros((batch_size,) + config.image_shape)
  vae(images, training=False)
  discriminator = None
  if config.adversarial:
    discriminator = Discriminator(config)
    discriminator(images, training=False)
  return vae, discriminator


def count_params(model: Optional[keras.Model], trainable_only: bool = False) -> int:
  """Number of scalars in `model`'s weights (trainable only, or including BN moving statistics)."""
  if model is None:
    return 0
  weights = model.trainable_weights if trainable_only else model.weights
  return int(sum(int(tf.size(w)) for w in weights))
