"""Chapter 6 networks: cVAE-GAN, cVAE, conditional crVAE-GAN, acVAE-GAN and the conditional discriminator
(thesis Sec. 6.3-6.4.2, T:L5700-5897, Fig. 6.2; spec ch5_6 Part B2 tables, B3, §8-A16, A19, A20).

Every model conditions on an attribute vector a in {-1, +1}^N and is built from the Chapter 5 pieces of
`core.vaegan.networks` (imported, not copied): `EncoderTrunk` with the from-RGB stem (input CReLU -> Conv 1x1 -> b, BN,
ReLU), `DecoderTrunk` with the 1x1 to-RGB head, `ChannelRecurrentPath` (LSTM_inf; LSTM_gen with a side input),
`PerBlockCondition`, `CausalLSTMPrior` and the `Discriminator` with a from-RGB stem and a condition. Widths at full64
(spec B2; `presets` derives them for the other scales):

  cVAE-GAN / cVAE (`CVAEGAN`; Sec. 6.3.1, 6.3.3)
    q(z|x,a): [LReLU(Dense(a -> 1024)) || Flatten(h) 4096] -> Dense(1024), LReLU -> mu, logvar = Dense(1024) each
    p(x|z,a): [LReLU(Dense(a -> 1024)) || z 1024] -> Dense(4096) -> 4x4x256 -> Dec -> to-RGB 1x1 -> tanh
    p(z|a)  : LReLU(Dense(a -> 1024), kernel U(+-1e-4)) -> mu_p, logvar_p = Dense(1024) each       (`FCPrior`)
    (the 1024-d latents are reshaped to the 4x4xn_z grid, so every model has the same latent layout)
  conditional crVAE-GAN (`CrVAEGAN`; Sec. 6.4.1)
    q(z|x,a): e = LReLU(Dense(a -> 128)) as 4x4x8 in front of every encoder block: [e || h_t] -> 4x4x320;
              mu = AddBias(Conv3x3(320 -> 64)); logvar = LSTM_inf over the 8 blocks of 640 -> BN -> Dense(128)
    p(x|z,a): d = LReLU(Dense(a -> 128)) in front of every z_t: LSTM_gen([d || z_t]) -> Dense(128) -> u;
              AddBias -> Conv3x3(64 -> 256), BN -> Dec -> to-RGB 1x1 -> tanh
    p(z|a)  : FC prior as cVAE-GAN (default init)
  acVAE-GAN (`AcVAEGAN`; Sec. 6.4.2)
    a_t = a * M[t], M = softmax_T(W) (`attention.AttributeAttention`); e_t, d_t = LReLU(Dense(a_t)) (the same
    Dense at every step) in place of e, d; p(z|a) = `CausalLSTMPrior` over a_1..a_T (2-layer LSTM(128), per-step
    Dense(128) for mu_p,t and logvar_p,t). Prior block t and u_t depend on a_1..a_t (and z_1..z_t) only.
  Conditional D (`ConditionalDiscriminator`), always on the raw a (spec B2), never on a_t:
    from-RGB Conv 1x1 3 -> 32 + ReLU; F: (conv, MaxPool, ReLU, SpatialDropout .5) x4 with 32, 64, 128, 256 channels
    cVAE-GAN : [LReLU(Dense(a -> 2048)) || ReLU(Dense(Flatten F -> 512))] (`FlatCondition`) -> D head; no MI head
    cr / ac  : [g || F_t] per block, g = LReLU(Dense(a -> 128)) as 4x4x8 (`PerBlockCondition`) -> f 4x4x320;
               D head on f; MI head q_psi on f (Conv3x3 -> 64, BN, LReLU .2, Conv1x1 -> 64, BN, LReLU .1,
               Dense(1024), AddBias) regressing u
    D head: Flatten -> Dense(512) -> L2Normalize -> Dropout .5 -> ReLU -> MinibatchDiscrimination(100, 5) -> Dense(1).

Uniform model API (what the trainers, tools and evaluation call). `a` is the attribute vector [B, N]; the recurrent
models also take per-step attributes [B, T, N] (for acVAE: the attended a_t, e.g. with later steps zeroed for
progressive generation; for crVAE: a per step):
  per_step(a) -> [B, T, N]: a_t = a * M[t] (acVAE) or a repeated (crVAE); raw a of rank 2 only
  encode(x, a, training=False) -> (mu_q, logvar_q), each [B, 4, 4, n_z]
  prior_params(a, training=False) -> (mu_p, logvar_p), each [B, 4, 4, n_z]
  decode(z, a, training=False) -> (u, x): u = LSTM_gen output before the AddBias (the MI target; None for
    cVAE-GAN), x = tanh image [B, R, R, 3]; decode_logits(z, a) -> (u, pre-tanh logits)
  reparameterize(mu, logvar) -> z;  sample_prior(a) -> z ~ p(z|a);  generate(a) -> x from a prior sample
  call(x, a, training=False) -> dict(mu, logvar, z, u, logits, x_tilde, mu_p, logvar_p)
  attention -> the AttributeAttention layer (acVAE) or None;  prior -> the prior component (`FCPrior` /
    `CausalLSTMPrior`, a `GaussianPriorMixin`: params, sample, kl_per_block, log_prob)
  variable_groups() -> {'enc', 'from_rgb', 'lstm_inf', 'lstm_gen', 'dec', 'to_rgb', 'prior', 'attention'} (those
    that exist): enc = E after the stem + encoder attribute embedding + mean path (+ cVAE FC heads); from_rgb = the
    encoder's from-RGB stem; lstm_inf = LSTM_inf + BN + Dense; lstm_gen = the decoder attribute embedding d +
    LSTM_gen + Dense (R6's var_decoder); dec = (cVAE: d + FC; cr: AddBias + conv + BN) + Dec; to_rgb; prior;
    attention = W.
  Discriminator: features(x, a) -> f; logits(f) -> [B, 1]; mi(f) -> u_hat or None; variable_groups() ->
    trunk (from-RGB + F + the condition layer), d_head, q_head.
"""

from typing import Dict, Optional, Sequence

import keras
from keras import ops
import tensorflow as tf

from rlcv_tf.acvae import attention as attention_lib
from rlcv_tf.acvae import presets
from rlcv_tf.core.vaegan import layers as vaegan_layers
from rlcv_tf.core.vaegan import networks as vaegan_networks

# Chapter 5's layer helpers (the authors' Torch initialisers, zero biases, Torch BN), shared rather than copied.
_dense = vaegan_networks._dense  # pylint: disable=protected-access
_conv = vaegan_networks._conv  # pylint: disable=protected-access
_latent_conv_head = vaegan_networks._latent_conv_head  # pylint: disable=protected-access
_trainable = vaegan_networks._trainable  # pylint: disable=protected-access
count_params = vaegan_networks.count_params


def _prod(shape) -> int:
  total = 1
  for d in shape:
    total *= int(d)
  return total


def _without(layer, excluded) -> list:
  """`layer`'s trainable variables except those of `excluded` (a sub-layer with its own group)."""
  if excluded is None:
    return list(layer.trainable_variables)
  skip = {id(v) for v in excluded.trainable_variables}
  return [v for v in layer.trainable_variables if id(v) not in skip]


# ------------------------------------------------------------------------------------------------ layers
class AttributeEmbedding(keras.layers.Layer):
  """LReLU(Dense(a)) on the last axis: [B, N] -> [B, units] or [B, T, N] -> [B, T, units] (one Dense shared over
  steps). The attribute embeddings of spec B2 (e, d, the cVAE-GAN FC inputs, the D's attribute branch).

  Args:
    units: output width.
    slope: LeakyReLU slope (0.1).
    init_scale: > 0: kernel U(+-init_scale) (the cVAE-GAN prior's 1e-4); 0: the Torch default U(+-1/sqrt(N)).
  """

  def __init__(self, units: int, slope: float = 0.1, init_scale: float = 0.0, **kwargs):
    super().__init__(**kwargs)
    self.units = int(units)
    self.slope = float(slope)
    self.init_scale = float(init_scale)
    self.dense = _dense(self.units, 'dense')
    if self.init_scale > 0:
      self.dense.kernel_initializer = keras.initializers.RandomUniform(-self.init_scale, self.init_scale)

  def call(self, a):
    return ops.leaky_relu(self.dense(a), negative_slope=self.slope)

  def get_config(self):
    return dict(super().get_config(), units=self.units, slope=self.slope, init_scale=self.init_scale)


class FlatCondition(keras.layers.Layer):
  """cVAE-GAN's D conditioning (spec B2): [LReLU(Dense(a -> attr_units)) || ReLU(Dense(Flatten(F) -> image_units))]
  ([B, attr_units + image_units], the attribute part first); the D head's Dense follows. Interface of
  `core.vaegan.networks.PerBlockCondition`: call(features [B, H, W, C], condition [B, N])."""

  def __init__(self, image_units: int, attr_units: int, slope: float = 0.1, **kwargs):
    super().__init__(**kwargs)
    self.image_dense = _dense(int(image_units), 'image_dense')
    self.attribute = AttributeEmbedding(attr_units, slope, name='attribute')

  def call(self, features, condition):
    condition = ops.convert_to_tensor(condition, dtype=features.dtype)
    if len(condition.shape) != 2:
      raise ValueError(f'{self.name}: condition of shape {tuple(condition.shape)}; the valid shape is [B, N]')
    image = ops.relu(self.image_dense(ops.reshape(features, (-1, int(_prod(features.shape[1:]))))))
    return ops.concatenate([self.attribute(condition), image], axis=-1)


class FCPrior(vaegan_networks.GaussianPriorMixin, keras.layers.Layer):
  """The FC prior p(z|a) of cVAE-GAN and crVAE-GAN (spec B2): h = LReLU(Dense(a -> hidden)); mu_p, logvar_p =
  Dense(h -> H*W*n_z) each, reshaped to the latent grid. `params(a)` / `call(a)` -> (mu_p, logvar_p); `sample`,
  `kl_per_block`, `log_prob` as every prior (`GaussianPriorMixin`).

  Args:
    latent_shape: (H, W, n_z).
    hidden: the hidden width (1024 at full64).
    init_scale: > 0: the first Dense kernel starts U(+-init_scale) (cVAE-GAN: 1e-4).
    slope: LeakyReLU slope.
  """

  conditional = True

  def __init__(self, latent_shape: Sequence[int], hidden: int, init_scale: float = 0.0, slope: float = 0.1,
               **kwargs):
    keras.layers.Layer.__init__(self, **kwargs)
    self.latent_shape = tuple(int(d) for d in latent_shape)
    units = _prod(self.latent_shape)
    self.hidden = AttributeEmbedding(hidden, slope, init_scale, name='hidden')
    self.mu_dense = _dense(units, 'mu')
    self.logvar_dense = _dense(units, 'logvar')

  def call(self, condition, training=False):
    condition = ops.convert_to_tensor(condition)
    if len(condition.shape) != 2:
      raise ValueError(f'{self.name}: the FC prior takes the attribute vector [B, N], got shape '
                       f'{tuple(condition.shape)}')
    h = self.hidden(condition)
    shape = (-1,) + self.latent_shape
    return ops.reshape(self.mu_dense(h), shape), ops.reshape(self.logvar_dense(h), shape)

  def params(self, condition=None, batch_size=None, like=None, training=False):
    if condition is None:
      raise ValueError(f'{self.name}: a conditional prior needs the attribute vector [B, N]')
    return self(condition, training=training)


# --------------------------------------------------------------------------------------------- the VAEs
class AttributeVAE(vaegan_networks.ConfiguredModel):
  """The shared part and the uniform API of the Chapter 6 generators (module docstring); subclasses add the heads.

  Encoder trunk: input CReLU -> from-RGB stem (Conv 1x1 -> b, BN, ReLU; `encoder.from_rgb`) -> the E table -> h.
  Decoder trunk: the Dec table -> to-RGB Conv 1x1 (`decoder.to_rgb`); tanh outside.
  """

  def __init__(self, config: presets.AcVAEConfig, **kwargs):
    kwargs.setdefault('name', f'{config.model}_vae')
    super().__init__(**kwargs)
    config.validate()
    self._config = config
    stem = vaegan_networks.from_rgb_stem(config.base_channels, config, name='from_rgb')
    self.encoder_trunk = vaegan_networks.EncoderTrunk(config, from_rgb=stem, name='encoder')
    self.decoder_trunk = vaegan_networks.DecoderTrunk(config, to_rgb=vaegan_networks.to_rgb_conv(config.channels),
                                                     name='decoder')

  config_class = presets.AcVAEConfig

  # ------------------------------------------------------------------------------------ properties
  @property
  def num_attributes(self) -> int:
    return self._config.num_attributes

  @property
  def attention(self) -> Optional[keras.layers.Layer]:
    """The AttributeAttention layer (acVAE-GAN) or None."""
    return None

  @property
  def prior(self):
    """The prior component p(z|a) (`FCPrior` or `CausalLSTMPrior`)."""
    return self._prior

  # ------------------------------------------------------------------------------------ attributes
  def check_attributes(self, a, per_step: bool = False):
    """a as a float32 tensor, checked: [B, N], or (with per_step, recurrent models) also [B, T, N]."""
    a = ops.convert_to_tensor(a, dtype='float32')
    n, t = self.num_attributes, self.num_blocks
    rank = len(a.shape)
    ok = rank == 2 or (per_step and rank == 3 and a.shape[1] in (None, t))
    if not ok or a.shape[-1] not in (None, n):
      valid = f'[B, {n}] or [B, {t}, {n}] (per step)' if per_step else f'[B, {n}]'
      raise ValueError(f'a: {self.name} got attributes of shape {tuple(a.shape)}; valid shapes are {valid}')
    return a

  def per_step(self, a):
    """[B, N] -> [B, T, N], the attributes step t sees (recurrent models)."""
    raise ValueError(f'a: {self.name} has no steps; per-step attributes exist for crvaegan and acvaegan')

  # ------------------------------------------------------------------------------------ paths
  def encode(self, x, a, training=False):
    raise NotImplementedError

  def prior_params(self, a, training=False):
    raise NotImplementedError

  def decode_logits(self, z, a, training=False):
    raise NotImplementedError

  def decode(self, z, a, training=False):
    u, logits = self.decode_logits(z, a, training=training)
    return u, ops.tanh(logits)

  reparameterize = staticmethod(vaegan_networks.reparameterize)

  def sample_prior(self, a, training=False):
    mu_p, logvar_p = self.prior_params(a, training=training)
    return self.reparameterize(mu_p, logvar_p)

  def generate(self, a, training=False):
    """x from z ~ p(z|a) (tanh image)."""
    return self.decode(self.sample_prior(a, training=training), a, training=training)[1]

  def call(self, x, a, training=False):
    mu, logvar = self.encode(x, a, training=training)
    mu_p, logvar_p = self.prior_params(a, training=training)
    z = self.reparameterize(mu, logvar)
    u, logits = self.decode_logits(z, a, training=training)
    return dict(mu=mu, logvar=logvar, z=z, u=u, logits=logits, x_tilde=ops.tanh(logits), mu_p=mu_p,
                logvar_p=logvar_p)

  # ------------------------------------------------------------------------------------ groups
  def _group_layers(self) -> Dict[str, list]:
    raise NotImplementedError

  def variable_groups(self) -> Dict[str, list]:
    """Trainable variables per optimiser group (module docstring); empty groups are omitted."""
    groups = {}
    for name, parts in self._group_layers().items():
      variables = []
      for part in parts:
        variables.extend(part if isinstance(part, list) else _trainable([part]))
      if variables:
        groups[name] = variables
    return groups

  def _trunk_groups(self) -> Dict[str, list]:
    return dict(from_rgb=[self.encoder_trunk.from_rgb], to_rgb=[self.decoder_trunk.to_rgb],
                enc=[_without(self.encoder_trunk, self.encoder_trunk.from_rgb)],
                dec=[_without(self.decoder_trunk, self.decoder_trunk.to_rgb)])


class CVAEGAN(AttributeVAE):
  """cVAE-GAN's and cVAE's generator (FC latent; spec B2 row cVAE-GAN). `u` is None (no LSTM_gen)."""

  def __init__(self, config: presets.AcVAEConfig, **kwargs):
    super().__init__(config, **kwargs)
    if config.recurrent:
      raise ValueError(f'model: CVAEGAN builds cvaegan / cvae, got {config.model!r}; use build_model')
    fc, slope = config.fc_dim, config.lrelu_slope
    self.enc_attr = AttributeEmbedding(fc, slope, name='enc_attr')
    self.enc_fc = AttributeEmbedding(fc, slope, name='enc_fc')          # LReLU(Dense([e || h]))
    self.mu_fc = _dense(config.latent_dim, 'mu_fc')
    self.logvar_fc = _dense(config.latent_dim, 'logvar_fc')
    self.gen_attr = AttributeEmbedding(fc, slope, name='gen_attr')
    s, c_h = config.latent_size, config.hidden_channels
    self.gen_fc = _dense(s * s * c_h, 'gen_fc')
    self._prior = FCPrior(config.latent_shape, fc, config.prior_init_scale, slope, name='prior')

  def encode(self, x, a, training=False):
    a = self.check_attributes(a)
    h = self.encoder_trunk(x, training=training)
    f = self.enc_fc(ops.concatenate([self.enc_attr(a), ops.reshape(h, (-1, _prod(h.shape[1:])))], axis=-1))
    shape = (-1,) + tuple(self.latent_shape)
    return ops.reshape(self.mu_fc(f), shape), ops.reshape(self.logvar_fc(f), shape)

  def prior_params(self, a, training=False):
    return self._prior.params(self.check_attributes(a), training=training)

  def decode_logits(self, z, a, training=False):
    a = self.check_attributes(a)
    z = ops.convert_to_tensor(z)
    y = self.gen_fc(ops.concatenate([self.gen_attr(a), ops.reshape(z, (-1, self._config.latent_dim))], axis=-1))
    s, c_h = self._config.latent_size, self._config.hidden_channels
    return None, self.decoder_trunk(ops.reshape(y, (-1, s, s, c_h)), training=training)

  def _group_layers(self):
    groups = self._trunk_groups()
    groups['enc'] += [self.enc_attr, self.enc_fc, self.mu_fc, self.logvar_fc]
    groups['dec'] = [self.gen_attr, self.gen_fc] + groups['dec']
    groups['prior'] = [self._prior]
    return groups


class CrVAEGAN(AttributeVAE):
  """The conditional crVAE-GAN generator (spec B2 row crVAE-GAN): the attributes in front of every encoder block and
  every LSTM_gen step; FC prior."""

  def __init__(self, config: presets.AcVAEConfig, **kwargs):
    super().__init__(config, **kwargs)
    if not config.recurrent:
      raise ValueError(f'model: CrVAEGAN builds crvaegan / acvaegan, got {config.model!r}; use build_model')
    t, n_z, slope = config.num_blocks, config.n_z, config.lrelu_slope
    hidden = config.resolved_lstm_hidden
    self.enc_attr = vaegan_networks.PerBlockCondition(t, config.latent_block_channels, slope, name='enc_attr')
    self.mu_head = keras.Sequential([keras.layers.ZeroPadding2D(1, name='pad'), _conv(n_z, 3, 'conv'),
                                     vaegan_layers.AddBias(config.latent_shape, name='add_bias')], name='mu_cr')
    self.logvar_path = vaegan_networks.ChannelRecurrentPath(t, n_z, hidden, config.lstm_layers, config.variance_bn,
                                                           config, name='lstm_inf')
    self.gen_attr = AttributeEmbedding(config.latent_block_dim, slope, name='gen_attr')
    self.transform_path = vaegan_networks.ChannelRecurrentPath(t, n_z, hidden, config.lstm_layers, False, config,
                                                              side_input=True, name='lstm_gen')
    self.to_trunk = _latent_conv_head(config.hidden_channels, 'gen_cr', config, batch_norm=True,
                                      add_bias_shape=config.latent_shape)
    self._prior = self._build_prior(config)

  def _build_prior(self, config):
    return FCPrior(config.latent_shape, config.fc_dim, config.prior_init_scale, config.lrelu_slope, name='prior')

  def per_step(self, a):
    a = self.check_attributes(a)
    return ops.repeat(ops.expand_dims(a, 1), self.num_blocks, axis=1)

  def condition(self, a):
    """What the encoder blocks and LSTM_gen steps see: a [B, N] (repeated inside) or per-step [B, T, N]."""
    return self.check_attributes(a, per_step=True)

  def encode(self, x, a, training=False):
    condition = self.condition(a)
    h = self.enc_attr(self.encoder_trunk(x, training=training), condition)     # [e_t || h_t] per block
    return self.mu_head(h, training=training), self.logvar_path(h, training=training)

  def prior_params(self, a, training=False):
    a = self.check_attributes(a, per_step=True)
    if len(a.shape) == 3:
      raise ValueError(f'a: the FC prior of {self.name} takes the attribute vector [B, {self.num_attributes}], not '
                       f'per-step attributes of shape {tuple(a.shape)}')
    return self._prior.params(a, training=training)

  def transform(self, z, a, training=False):
    """u = LSTM_gen([d_t || z_t]) -> Dense -> merge, before the AddBias (the MI target)."""
    side = self.gen_attr(self.condition(a))                                      # [B, S] or [B, T, S]
    return self.transform_path(ops.convert_to_tensor(z), side=side, training=training)

  def decode_transformed(self, u, training=False):
    return self.decoder_trunk(self.to_trunk(u, training=training), training=training)

  def decode_logits(self, z, a, training=False):
    u = self.transform(z, a, training=training)
    return u, self.decode_transformed(u, training=training)

  def _group_layers(self):
    groups = self._trunk_groups()
    groups['enc'] += [self.enc_attr, self.mu_head]
    groups['lstm_inf'] = [self.logvar_path]
    groups['lstm_gen'] = [self.gen_attr, self.transform_path]
    groups['dec'] = [self.to_trunk] + groups['dec']
    groups['prior'] = [self._prior]
    return groups


class AcVAEGAN(CrVAEGAN):
  """The acVAE-GAN generator (spec B2 row acVAE-GAN): a_t = a * M[t] at every step, the causal LSTM prior."""

  def __init__(self, config: presets.AcVAEConfig, **kwargs):
    if not config.attentive:
      raise ValueError(f'model: AcVAEGAN builds acvaegan, got {config.model!r}; use build_model')
    super().__init__(config, **kwargs)
    self._attention = attention_lib.AttributeAttention(config.num_blocks, config.num_attributes, name='attention')

  def _build_prior(self, config):
    return vaegan_networks.CausalLSTMPrior(config.latent_shape, config.num_blocks, config.resolved_prior_lstm_hidden,
                                          num_layers=config.lstm_layers, unroll=config.lstm_unroll, name='prior')

  @property
  def attention(self):
    return self._attention

  def per_step(self, a):
    """a_t = a * M[t]: [B, N] -> [B, T, N]."""
    return self._attention(self.check_attributes(a))

  def condition(self, a):
    """The attended attributes [B, T, N]: computed from a [B, N], or given per step [B, T, N] (taken as is)."""
    a = self.check_attributes(a, per_step=True)
    return a if len(a.shape) == 3 else self._attention(a)

  def prior_params(self, a, training=False):
    return self._prior.params(self.condition(a), training=training)

  def _group_layers(self):
    groups = super()._group_layers()
    groups['attention'] = [self._attention]
    return groups


# -------------------------------------------------------------------------------------- discriminator
class ConditionalDiscriminator(vaegan_networks.Discriminator):
  """The Chapter 6 D (module docstring): `core.vaegan.networks.Discriminator` with the from-RGB stem (Conv 1x1 -> b_D +
  ReLU) and the attribute condition (`FlatCondition` for cVAE-GAN, `PerBlockCondition` for crVAE-GAN / acVAE-GAN),
  MI head on the recurrent models. It sees the raw attribute vector a [B, N] only.

    features(x, a, training=False) -> f;  logits(f) -> [B, 1];  mi(f) -> u_hat [B, 4, 4, n_z] or None
    call(x, a, training=False) -> dict(logits[, u_hat])
  """

  def __init__(self, config: presets.AcVAEConfig, **kwargs):
    config.validate()
    if not config.adversarial:
      raise ValueError(f'model: {config.model!r} has no discriminator; valid values are {presets.ADVERSARIAL_MODELS}')
    from_rgb = vaegan_networks.from_rgb_stem(config.d_channels[0], config, name='from_rgb', batch_norm=False)
    if config.recurrent:
      condition = vaegan_networks.PerBlockCondition(config.num_blocks, config.latent_block_channels,
                                                   config.lrelu_slope, name='condition')
    else:
      condition = FlatCondition(config.d_dense, config.d_attribute_dim, config.lrelu_slope, name='condition')
    super().__init__(config, from_rgb=from_rgb, condition=condition, **kwargs)
    self.num_attributes = config.num_attributes

  config_class = presets.AcVAEConfig

  def features(self, x, condition=None, training=False):
    a = ops.convert_to_tensor(condition, dtype='float32') if condition is not None else None
    if a is None or len(a.shape) != 2 or a.shape[-1] not in (None, self.num_attributes):
      shape = None if a is None else tuple(a.shape)
      raise ValueError(f'a: {self.name} sees the raw attribute vector [B, {self.num_attributes}], got {shape}')
    return super().features(x, a, training=training)


# ------------------------------------------------------------------------------------------------ build
MODEL_CLASSES = {'cvaegan': CVAEGAN, 'cvae': CVAEGAN, 'crvaegan': CrVAEGAN, 'acvaegan': AcVAEGAN}


def build_model(config: presets.AcVAEConfig) -> AttributeVAE:
  """The generator of `config.model` (unbuilt)."""
  config.validate()
  return MODEL_CLASSES[config.model](config)


def build_models(config: presets.AcVAEConfig, batch_size: int = 4, vae_class=None, disc_class=None):
  """Creates and builds (one call on zeros) the generator and, for the adversarial models, the discriminator.

  `vae_class` / `disc_class` replace the model's own classes (progressive.build_grown_models passes the grown ones).
  """
  config.validate()
  vae = build_model(config) if vae_class is None else vae_class(config)
  images = ops.zeros((batch_size,) + config.image_shape)
  a = ops.zeros((batch_size, config.num_attributes))
  vae(images, a, training=False)
  discriminator = None
  if config.adversarial:
    discriminator = (disc_class or ConditionalDiscriminator)(config)
    discriminator(images, a, training=False)
  return vae, discriminator


def model_parameter_counts(vae: AttributeVAE, discriminator=None) -> Dict[str, int]:
  """Trainable parameters per optimiser group (generator and D), and the totals (all weights incl. BN moving
  statistics): {'enc': ..., ..., 'd_trunk': ..., 'vae_total': ..., 'disc_total': ...}."""
  counts = {name: int(sum(int(tf.size(v)) for v in variables)) for name, variables in vae.variable_groups().items()}
  if discriminator is not None:
    for name, variables in discriminator.variable_groups().items():
      counts[f'd_{name}' if not name.startswith('d_') else name] = int(sum(int(tf.size(v)) for v in variables))
  counts['vae_total'] = count_params(vae)
  counts['disc_total'] = count_params(discriminator)
  return counts
