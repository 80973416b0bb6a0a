"""Chapter 5 Stage-1 networks: VAE-GAN, cVAE, crVAE(-GAN) and the MNIST ablation family (thesis Sec. 5.3,
App. 5.A, 5.B; spec ch5 §A2.2, §A2.3, §A2.6).

The thesis leaves the Stage-1 architecture to the authors' repository (T:L5290-5292); the layer tables come from
spec §A2.2/§A2.3 and are data in `CrVAEConfig`. Every model shares the latent layout z in R^{4 x 4 x n_z}
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

Pieces for the models that build on these (Chapter 6), all off by default so the Chapter 5 models, their parameter
counts and their checkpoint keys are unchanged:
  BlockLSTM             the generic causal block LSTM: [B, T, D] (+ an optional per-step side input, concatenated in
                        front of each step) -> stacked LSTMs -> [BN] -> [Dense shared over t]
  ChannelRecurrentPath  image blocks -> sequence (`blocks.split_blocks`) -> BlockLSTM -> image (`merge_blocks`)
  CausalLSTMPrior       a sequence-only learned prior p(z | s_1..s_T) built from BlockLSTM (acVAE's LSTM prior)
  StandardNormalPrior   N(0, I), the Chapter 5 prior, as a component with the learned priors' interface
  EncoderTrunk / DecoderTrunk take an optional from-RGB stem / to-RGB head (`from_rgb_stem`, `to_rgb_conv`; the
                        input CReLU and the 3x3 output conv are the defaults) and named growth stages (progressive
                        growing) whose checkpoint keys do not depend on the other stages (`tracking.track_named`)
  Discriminator         optional from-RGB stem and an optional per-block condition (`PerBlockCondition`)
"""

from typing import Dict, List, Mapping, Optional, Sequence

import keras
from keras import ops
import tensorflow as tf

from rlcv_tf.core import tracking
from rlcv_tf.core.vaegan import blocks
from rlcv_tf.core.vaegan import layers as vaegan_layers
from rlcv_tf.core.vaegan import losses
from rlcv_tf.core.vaegan.config import CrVAEConfig

_conv_init = vaegan_layers.conv_initializer
_convt_init = vaegan_layers.conv_transpose_initializer
_dense_init = vaegan_layers.dense_initializer


def _conv(filters, kernel, name, strides=1, padding='valid'):
  return keras.layers.Conv2D(filters, kernel, strides=strides, padding=padding, kernel_initializer=_conv_init(),
                             bias_initializer='zeros', name=name)


def _dense(units, name):
  return keras.layers.Dense(units, kernel_initializer=_dense_init(), bias_initializer='zeros', name=name)


def _bn(config: CrVAEConfig, name):
  return vaegan_layers.torch_bn(config.bn_epsilon, config.bn_momentum_torch, name=name)


def _run_stages(stages, x, training):
  for stage in stages:
    x = stage(x, training=training)
  return x


# ------------------------------------------------------------------------------------ stems and heads
def from_rgb_stem(filters: int, config: CrVAEConfig, name: str = 'from_rgb', batch_norm: bool = True,
                  activation: str = 'relu') -> keras.Sequential:
  """A from-RGB stage: Conv 1x1 -> filters, [BN], ReLU (spec B2: the encoder's Conv 1x1 -> 32, BN, ReLU after the
  input CReLU; the discriminator's Conv 1x1 3 -> 32 + ReLU without BN). Pass it as `from_rgb` to EncoderTrunk or
  Discriminator; the Chapter 5 models have none (their default stem is the input CReLU alone)."""
  stages = [_conv(filters, 1, 'conv')]
  if batch_norm:
    stages.append(_bn(config, 'bn'))
  stages.append(keras.layers.ReLU(name='relu') if activation == 'relu' else
                keras.layers.LeakyReLU(config.lrelu_slope, name='lrelu'))
  return keras.Sequential(stages, name=name)


def to_rgb_conv(channels: int, kernel: int = 1, name: str = 'to_rgb') -> keras.layers.Layer:
  """A to-RGB head: Conv k x k (k = 1 in Chapter 6, spec B2; 'same' padding) to `channels`, pre-activation (the
  model's tanh / sigmoid follows). Pass it as `to_rgb` to DecoderTrunk; the default is Chapter 5's padded 3x3 conv."""
  return _conv(channels, kernel, name, padding='same')


def _trainable(layers_) -> List:
  variables = []
  for layer in layers_:
    if layer is not None:
      variables.extend(layer.trainable_variables)
  return variables


# ---------------------------------------------------------------------------------------------- trunks
class EncoderTrunk(keras.layers.Layer):
  """E: [input CReLU] -> [from-RGB stem] -> [growth stages] -> (ZeroPadding(p), conv k/s valid, BN, CReLU | LeakyReLU)
  per table row.

  Args:
    config: the layer table (`encoder_layers`) and `input_crelu` (the default stem).
    from_rgb: optional layer after the input CReLU (e.g. `from_rgb_stem`, Chapter 6); None in Chapter 5.
    growth: optional named stages {name: layer} run in the given order between the stem and the table (progressive
      growing: each maps a 2R image-resolution map to R). Checkpoint keys `grow_<name>[_<i>]`, independent of the
      other stages; the table's keys (`stages_<i>`) do not change when growth stages are added.
  """

  def __init__(self, config: CrVAEConfig, from_rgb: Optional[keras.layers.Layer] = None,
               growth: Optional[Mapping[str, keras.layers.Layer]] = None, **kwargs):
    super().__init__(**kwargs)
    self.input_crelu = vaegan_layers.CReLU(name='input_crelu') if config.input_crelu else None
    self.stages = []
    for i, (kernel, stride, filters, activation, pad) in enumerate(config.encoder_layers):
      padding = keras.layers.ZeroPadding2D(pad, name=f'pad{i}') if pad else None
      act = (vaegan_layers.CReLU(name=f'crelu{i}') if activation == 'crelu' else
             keras.layers.LeakyReLU(config.lrelu_slope, name=f'lrelu{i}'))
      self.stages.append((padding, _conv(filters, kernel, f'conv{i}', strides=stride), _bn(config, f'bn{i}'), act))
    tracking.track_containers(self)   # so tf.train.Checkpoint saves the BN moving statistics too
    self.from_rgb = from_rgb          # None adds nothing to the checkpoint
    self._growth = dict(growth or {})
    tracking.track_named(self, 'grow', self._growth)

  @property
  def growth(self) -> Dict[str, keras.layers.Layer]:
    return dict(self._growth)

  def stem(self, x, training=False):
    """The image side up to the table: input CReLU, from-RGB and growth stages."""
    if self.input_crelu is not None:
      x = self.input_crelu(x)
    if self.from_rgb is not None:
      x = self.from_rgb(x, training=training)
    return _run_stages(self._growth.values(), x, training)

  def call(self, x, training=False):
    x = self.stem(x, training=training)
    for padding, conv, bn, act in self.stages:
      if padding is not None:
        x = padding(x)
      x = act(bn(conv(x), training=training))
    return x


class DecoderTrunk(keras.layers.Layer):
  """Dec: ('convT' = ConvT 4x4 s2 valid + Cropping(crop) | 'conv' = pad + conv3x3) -> BN -> LReLU, then [growth
  stages], then the to-RGB head: by default the output conv (3x3, pad `decoder_out_padding`) to `channels`.
  Returns pre-activation logits.

  Args:
    config: the layer table (`decoder_layers`), `decoder_out_padding`, `channels`.
    to_rgb: optional head replacing the default output conv (e.g. `to_rgb_conv`, the 1x1 of Chapter 6).
    growth: optional named stages {name: layer} run in the given order between the table and the head (progressive
      growing: each maps an R map to 2R). Checkpoint keys `grow_<name>[_<i>]`; the table's keys do not change.
  """

  def __init__(self, config: CrVAEConfig, to_rgb: Optional[keras.layers.Layer] = None,
               growth: Optional[Mapping[str, keras.layers.Layer]] = None, **kwargs):
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
    self.out_pad = self.out_conv = None
    if to_rgb is None:
      self.out_pad = (keras.layers.ZeroPadding2D(config.decoder_out_padding, name='out_pad')
                      if config.decoder_out_padding else None)
      self.out_conv = _conv(config.channels, 3, 'out_conv')
    self.to_rgb = to_rgb
    tracking.track_containers(self)
    self._growth = dict(growth or {})
    tracking.track_named(self, 'grow', self._growth)

  @property
  def growth(self) -> Dict[str, keras.layers.Layer]:
    return dict(self._growth)

  def features(self, x, training=False):
    """The last feature map before the to-RGB head (after any growth stages)."""
    for ops_, bn, act in self.stages:
      for op in ops_:
        x = op(x)
      x = act(bn(x, training=training))
    return _run_stages(self._growth.values(), x, training)

  def head(self, x, training=False):
    """The to-RGB head on a feature map: pre-activation logits."""
    if self.out_conv is None:
      return self.to_rgb(x, training=training)
    if self.out_pad is not None:
      x = self.out_pad(x)
    return self.out_conv(x)

  def call(self, x, training=False):
    return self.head(self.features(x, training=training), training=training)


class BlockLSTM(keras.layers.Layer):
  """The generic causal block LSTM: [B, T, D] -> stacked unidirectional LSTMs -> [BN over (B*T, hidden)] -> [Dense
  shared over t] -> [B, T, out_dim] (or the last LSTM's [B, T, hidden] without a Dense).

  Step t of the output depends only on input steps 1..t (and side inputs 1..t): the LSTMs run forward only and the
  Dense acts per step. BN in training mode pools statistics over B and T, so causality holds in inference mode.

  Optional per-step side input (off by default): `call(sequence, side)` with side [B, T, S] (one vector per step) or
  [B, S] (the same vector at every step) concatenates [side_t || x_t] as step t's LSTM input (the side part first,
  spec B2's [d || z_t]). Chapter 6 feeds the attribute embedding d (or d_t) this way.

  Args:
    num_blocks: T.
    hidden: LSTM width.
    num_layers: stacked LSTMs.
    batch_norm: BN after the LSTMs.
    out_dim: width of the per-step Dense; None for no Dense (the caller adds its own heads, e.g. CausalLSTMPrior).
    side_input: accept a side input (and require one at every call).
    bn_epsilon, bn_momentum_torch: the BN's settings (Torch momentum, `layers.torch_bn`).
    unroll: unrolled LSTMs (same maths; faster tracing for short T).
  """

  def __init__(self, num_blocks: int, hidden: int, num_layers: int = 2, batch_norm: bool = False,
               out_dim: Optional[int] = None, side_input: bool = False, bn_epsilon: float = 1e-5,
               bn_momentum_torch: float = 0.1, unroll: bool = False, **kwargs):
    super().__init__(**kwargs)
    self.num_blocks = int(num_blocks)
    if self.num_blocks < 1 or int(num_layers) < 1 or int(hidden) < 1:
      raise ValueError(f'BlockLSTM needs num_blocks, num_layers and hidden >= 1, got {num_blocks}, {num_layers}, '
                       f'{hidden}')
    self.side_input = bool(side_input)
    self.lstms = [keras.layers.LSTM(hidden, return_sequences=True, unit_forget_bias=True, unroll=unroll,
                                    name=f'lstm{i}') for i in range(num_layers)]
    self.bn = vaegan_layers.torch_bn(bn_epsilon, bn_momentum_torch, name='bn') if batch_norm else None
    self.dense = None if out_dim is None else _dense(int(out_dim), 'dense')
    tracking.track_containers(self)

  def with_side(self, sequence, side=None):
    """[side_t || x_t] per step ([B, T, S + D]), or the sequence itself without a side input."""
    if side is None:
      if self.side_input:
        raise ValueError(f'{self.name}: built with side_input=True, so every call needs a side input [B, T, S] or '
                         f'[B, S]')
      return sequence
    if not self.side_input:
      raise ValueError(f'{self.name}: got a side input but was built without one; build it with side_input=True')
    side = ops.convert_to_tensor(side, dtype=sequence.dtype)
    if len(side.shape) == 2:
      side = ops.repeat(ops.expand_dims(side, 1), self.num_blocks, axis=1)
    if len(side.shape) != 3 or (side.shape[1] is not None and side.shape[1] != self.num_blocks):
      raise ValueError(f'{self.name}: side input of shape {tuple(side.shape)}; valid shapes are [B, S] or '
                       f'[B, {self.num_blocks}, S]')
    return ops.concatenate([side, sequence], axis=-1)

  def run_sequence(self, sequence, side=None, training=False):
    """The block LSTM on a sequence [B, T, D] (see the class docstring)."""
    y = self.with_side(ops.convert_to_tensor(sequence), side)
    for lstm in self.lstms:
      y = lstm(y, training=training)
    if self.bn is not None:
      y = self.bn(y, training=training)                                   # statistics over B and T
    if self.dense is not None:
      y = self.dense(y)                                                   # shared over t
    return y

  def call(self, sequence, side=None, training=False):
    return self.run_sequence(sequence, side, training=training)


class ChannelRecurrentPath(BlockLSTM):
  """Image blocks -> sequence (split_blocks) -> BlockLSTM (Dense to H*W*out_channels/T per step) -> merge_blocks.

  The channel-recurrent transformation of Sec. 5.3.2: LSTM_inf on the variance path (input h, output logvar) and
  LSTM_gen on the generation path (input z, output u). Causal over blocks: output block t depends only on input
  blocks 0..t (in inference mode when `batch_norm`, whose training-mode statistics span all steps). An optional
  per-step side input (`side_input=True`, off in Chapter 5) is passed on to BlockLSTM.

  Args:
    num_blocks: T.
    out_channels: channels of the merged output (n_z); out_channels / T per block.
    hidden: LSTM width (512 at full64).
    num_layers: stacked LSTMs (2).
    batch_norm: BN after the LSTMs (RGB variance path).
    config: for the BN epsilon / momentum and `lstm_unroll`.
    side_input: accept a per-step side input.
  """

  def __init__(self, num_blocks: int, out_channels: int, hidden: int, num_layers: int, batch_norm: bool,
               config: CrVAEConfig, side_input: bool = False, **kwargs):
    blocks.check_divisible(int(out_channels), int(num_blocks))
    super().__init__(num_blocks, hidden, num_layers, batch_norm=batch_norm, out_dim=None, side_input=side_input,
                     bn_epsilon=config.bn_epsilon, bn_momentum_torch=config.bn_momentum_torch,
                     unroll=config.lstm_unroll, **kwargs)
    self.out_channels = int(out_channels)
    self.per_block = None
    self.spatial = None

  def build(self, input_shape):
    _, h, w, _ = input_shape
    self.spatial = (int(h), int(w))
    self.per_block = int(h) * int(w) * self.out_channels // self.num_blocks
    self.dense = _dense(self.per_block, 'dense')

  def image_to_sequence(self, x):
    """[B, H, W, C] -> [B, T, H*W*C/T] (channel block t is step t)."""
    return blocks.split_blocks(x, self.num_blocks)

  def sequence_to_image(self, y):
    """[B, T, H*W*out_channels/T] -> [B, H, W, out_channels]."""
    return blocks.merge_blocks(y, self.num_blocks, *self.spatial)

  def call(self, x, side=None, training=False):
    y = self.run_sequence(self.image_to_sequence(x), side, training=training)   # [B, T, H*W*C_in/T] in
    return self.sequence_to_image(y)


class PerBlockCondition(keras.layers.Layer):
  """A condition put in front of every channel block of a feature map (spec B2: the conditional encoder's [e || h_t]
  and the discriminator's [g || trunk_t]).

  g = LeakyReLU(Dense(condition)) with one Dense shared over steps, reshaped to [H, W, c] per step, is concatenated in
  front of each channel block: [B, H, W, C] -> [B, H, W, T * (c + C/T)], block t = [g_t || x_t] (condition channels
  first). The condition is [B, N] (the same g at every step) or [B, T, N] (one per step, acVAE's a_t).

  Args:
    num_blocks: T.
    channels: c, condition channels per block (the Dense has H*W*c units; 8 at 4x4 gives spec B2's 128).
    slope: the LeakyReLU slope (0.1).
  """

  def __init__(self, num_blocks: int, channels: int, slope: float = 0.1, **kwargs):
    super().__init__(**kwargs)
    self.num_blocks = int(num_blocks)
    self.channels = int(channels)
    self.slope = float(slope)
    self.dense = None

  def build(self, features_shape, condition_shape=None):
    _, h, w, c = features_shape
    blocks.check_divisible(int(c), self.num_blocks)
    self.dense = _dense(int(h) * int(w) * self.channels, 'dense')

  def call(self, features, condition):
    _, h, w, c = features.shape
    condition = ops.convert_to_tensor(condition, dtype=features.dtype)
    if len(condition.shape) == 2:
      condition = ops.repeat(ops.expand_dims(condition, 1), self.num_blocks, axis=1)      # [B, T, N]
    if len(condition.shape) != 3 or condition.shape[1] != self.num_blocks:
      raise ValueError(f'{self.name}: condition of shape {tuple(condition.shape)}; valid shapes are [B, N] or '
                       f'[B, {self.num_blocks}, N]')
    g = ops.leaky_relu(self.dense(condition), negative_slope=self.slope)               # [B, T, H*W*c]
    g = ops.transpose(ops.reshape(g, (-1, self.num_blocks, h, w, self.channels)), (0, 2, 3, 1, 4))
    x = ops.reshape(features, (-1, h, w, self.num_blocks, c // self.num_blocks))
    merged = ops.concatenate([g, x], axis=-1)                                          # [B, H, W, T, c + C/T]
    return ops.reshape(merged, (-1, h, w, self.num_blocks * (self.channels + c // self.num_blocks)))


# ------------------------------------------------------------------------------------------------ priors
class GaussianPriorMixin:
  """What every diagonal-Gaussian prior offers, given `params(condition, batch_size=, like=) -> (mu_p, logvar_p)`
  ([B, H, W, n_z] each): `sample`, `kl_per_block` (against the floored prior variance, `losses.gaussian_kl`) and
  `log_prob`. A learned prior is a Keras layer that mixes this in; its `trainable_variables` form the trainers'
  'prior' group (LR/T, spec B4)."""

  def sample(self, batch_size=None, condition=None, like=None):
    """z ~ p(z | condition): mu_p + exp(logvar_p / 2) * eps."""
    mu, logvar = self.params(condition, batch_size=batch_size, like=like)
    return ImageVAE.reparameterize(mu, logvar)

  def kl_per_block(self, mu, logvar, num_blocks: int, condition=None):
    """[T]: KL_t = (1/B) sum_b sum_{i in block t} KL(q_i || p_i), the prior variance floored at 1e-5
    (`losses.gaussian_kl`); gradients reach the prior's variables."""
    mu_p, logvar_p = self.params(condition, like=mu)
    per_unit = losses.gaussian_kl(mu, logvar, mu_p, logvar_p)
    return tf.reduce_mean(blocks.block_sums(per_unit, num_blocks), axis=0)

  def log_prob(self, z, condition=None):
    """log p(z | condition) summed over the latent: [B]."""
    mu_p, logvar_p = self.params(condition, like=z)
    return losses.diag_gaussian_log_prob(z, mu_p, logvar_p)


class StandardNormalPrior(GaussianPriorMixin):
  """p(z) = N(0, I) over the latent grid: the Chapter 5 prior, as a component with the learned priors' interface
  (`params`, `sample`, `kl_per_block`, `log_prob`, `trainable_variables`).

  A plain Python object (no variables, nothing in a checkpoint). Its KL and log-density are the closed forms used
  throughout Chapter 5 (`losses.gaussian_kl_per_block`, `losses.gaussian_log_prob_std`), and `sample` draws
  `tf.random.normal` of the latent's shape.
  """

  conditional = False

  def __init__(self, latent_shape: Sequence[int]):
    self.latent_shape = tuple(int(d) for d in latent_shape)

  @property
  def trainable_variables(self) -> list:
    return []

  def _shape(self, batch_size=None, like=None):
    if like is not None:
      return tf.shape(like)
    if batch_size is None:
      raise ValueError('StandardNormalPrior: give batch_size or like (a tensor of the latent shape)')
    return tf.concat([tf.reshape(tf.cast(batch_size, tf.int32), [1]), tf.constant(self.latent_shape, tf.int32)], 0)

  def params(self, condition=None, batch_size=None, like=None):
    """(mu_p, logvar_p) = (0, 0), shaped [B, *latent_shape]; `condition` is ignored."""
    zeros = tf.zeros(self._shape(batch_size, like), tf.float32)
    return zeros, zeros

  def sample(self, batch_size=None, condition=None, like=None):
    return tf.random.normal(self._shape(batch_size, like), dtype=tf.float32 if like is None else like.dtype)

  def kl_per_block(self, mu, logvar, num_blocks: int, condition=None):
    return losses.gaussian_kl_per_block(mu, logvar, num_blocks)

  def log_prob(self, z, condition=None):
    return losses.gaussian_log_prob_std(z)


class CausalLSTMPrior(GaussianPriorMixin, keras.layers.Layer):
  """A learned sequence-only prior p(z | s_1..s_T) built from BlockLSTM (acVAE's LSTM_prior, spec B2).

  The per-step inputs s_t ([B, T, S], e.g. the attended attributes a_t; [B, S] is repeated over the T steps) run
  through a causal BlockLSTM without a Dense; per step mu_t = Dense_mu(h_t) and logvar_t = Dense_logvar(h_t) (H*W*n_z/T units each, shared over t) are
  merged into the latent grid [B, H, W, n_z]. Prior block t depends on s_1..s_t only.

  `params(condition)` / `call(condition)` -> (mu_p, logvar_p); `sample`, `kl_per_block`, `log_prob` as every prior.

  Args:
    latent_shape: (H, W, n_z).
    num_blocks: T (divides n_z).
    hidden: LSTM width (128 in spec B2).
    num_layers: stacked LSTMs (2).
    unroll: unrolled LSTMs.
  """

  conditional = True

  def __init__(self, latent_shape: Sequence[int], num_blocks: int, hidden: int = 128, num_layers: int = 2,
               unroll: bool = False, **kwargs):
    keras.layers.Layer.__init__(self, **kwargs)
    self.latent_shape = tuple(int(d) for d in latent_shape)
    h, w, n_z = self.latent_shape
    blocks.check_divisible(n_z, int(num_blocks))
    self.num_blocks = int(num_blocks)
    per_step = h * w * n_z // self.num_blocks
    self.sequence = BlockLSTM(num_blocks, hidden, num_layers, out_dim=None, unroll=unroll, name='lstm')
    self.mu_dense = _dense(per_step, 'mu')
    self.logvar_dense = _dense(per_step, 'logvar')

  def call(self, condition, training=False):
    condition = ops.convert_to_tensor(condition)
    if len(condition.shape) == 2:                      # [B, S]: the same input at every step
      condition = ops.repeat(ops.expand_dims(condition, 1), self.num_blocks, axis=1)
    steps = self.sequence(condition, training=training)
    h, w, _ = self.latent_shape
    return (blocks.merge_blocks(self.mu_dense(steps), self.num_blocks, h, w),
            blocks.merge_blocks(self.logvar_dense(steps), self.num_blocks, h, w))

  def params(self, condition=None, batch_size=None, like=None, training=False):
    if condition is None:
      raise ValueError(f'{self.name}: a conditional prior needs its per-step inputs [B, {self.num_blocks}, S]')
    return self(condition, training=training)


def _latent_dense_head(config, name):
  """Flatten -> Dense(16 n_z) -> reshape 4x4xn_z."""
  return keras.Sequential([keras.layers.Flatten(name='flatten'), _dense(config.latent_dim, 'dense'),
                           keras.layers.Reshape(config.latent_shape, name='reshape')], name=name)


def _latent_conv_head(filters, name, config=None, batch_norm=False, add_bias_shape=None):
  """[AddBias] -> pad 1 -> conv3x3 -> [BN]."""
  stages = []
  if add_bias_shape is not None:
    stages.append(vaegan_layers.AddBias(add_bias_shape, name='add_bias'))
  stages += [keras.layers.ZeroPadding2D(1, name='pad'), _conv(filters, 3, 'conv')]
  if batch_norm:
    stages.append(_bn(config, 'bn'))
  return keras.Sequential(stages, name=name)


# --------------------------------------------------------------------------------------------- the VAEs
def reparameterize(mu, logvar):
  """z = mu + exp(logvar / 2) * eps, eps ~ N(0, I) (Sampler.lua; spec §0)."""
  return mu + tf.exp(0.5 * logvar) * tf.random.normal(tf.shape(mu), dtype=mu.dtype)


class ConfiguredModel(keras.Model):
  """A model built from one config record (`config_class`, CrVAEConfig or a subclass), which its Keras config carries
  (get_config / from_config), with the shapes every VAE of the family exposes."""

  config_class = CrVAEConfig

  @property
  def config(self) -> CrVAEConfig:
    return self._config

  @property
  def latent_shape(self):
    return self._config.latent_shape

  @property
  def image_shape(self):
    return self._config.image_shape

  @property
  def num_blocks(self) -> int:
    return self._config.num_blocks

  def get_config(self):
    return dict(super().get_config(), config=self._config.to_dict())

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    model_config = cls.config_class.from_dict(config.pop('config'))
    return cls(model_config, name=config.get('name'))


class ImageVAE(ConfiguredModel):
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

  def __init__(self, config: CrVAEConfig, **kwargs):
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
      self.mu_head = keras.Sequential([mean, vaegan_layers.AddBias(config.latent_shape, name='add_bias')],
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
    self._prior = StandardNormalPrior(config.latent_shape)   # a plain object: nothing added to checkpoints

  # ------------------------------------------------------------------------------------ properties
  @property
  def likelihood(self) -> str:
    return self._config.likelihood

  @property
  def prior(self) -> StandardNormalPrior:
    """p(z): N(0, I) for every Chapter 5 model (`StandardNormalPrior`)."""
    return self._prior

  # ------------------------------------------------------------------------------------ paths
  def encode(self, x, training=False):
    h = self.encoder_trunk(x, training=training)
    mu = self.mu_head(h, training=training)
    if self.logvar_path is not None:
      logvar = self.logvar_path(h, training=training)
    else:
      logvar = self.logvar_head(h, training=training)
    return mu, logvar

  reparameterize = staticmethod(reparameterize)

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
class Discriminator(ConfiguredModel):
  """F + D head (+ q_psi for crVAE-GAN with MI) of spec A2.2.

    features(x, condition=None, training=False) -> F(x) [B, R/16, R/16, C_F]
    logits(features, training=False) -> [B, 1] (pre-sigmoid)
    mi(features, training=False) -> u_hat [B, 4, 4, n_z], or None without an MI head
    discriminate(x, condition=None, training=False) -> logits(features(x))
    call(x, condition=None, training=False) -> dict(logits[, u_hat])  (u_hat only when the MI head exists)

  Optional parts (none in Chapter 5, so its parameter counts and checkpoint keys are unchanged):
    from_rgb: a layer before the trunk (Chapter 6: `from_rgb_stem(32, config, batch_norm=False)`, Conv 1x1 + ReLU).
    condition: a `PerBlockCondition` applied to the trunk's output, so the D head and the MI head see
      [g_t || F_t] per block (spec B2's f); then every call needs `condition` ([B, N] or [B, T, N]).
  Both belong to the 'trunk' optimiser group (they compute F's features).
  """

  def __init__(self, config: CrVAEConfig, from_rgb: Optional[keras.layers.Layer] = None,
               condition: Optional[PerBlockCondition] = None, **kwargs):
    kwargs.setdefault('name', f'{config.model}_discriminator')
    super().__init__(**kwargs)
    config.validate()
    self._config = config
    self.from_rgb = from_rgb
    trunk = []
    for i, (filters, kernel) in enumerate(zip(config.d_channels, config.d_kernels)):
      trunk += [_conv(filters, kernel, f'conv{i}', padding='same'), keras.layers.MaxPooling2D(2, name=f'pool{i}'),
                keras.layers.ReLU(name=f'relu{i}'), keras.layers.SpatialDropout2D(config.d_dropout, name=f'drop{i}')]
    self.trunk = keras.Sequential(trunk, name='trunk')
    self.d_head = keras.Sequential([
        keras.layers.Flatten(name='flatten'), _dense(config.d_dense, 'dense'), vaegan_layers.L2Normalize(name='l2norm'),
        keras.layers.Dropout(config.d_dropout, name='dropout'), keras.layers.ReLU(name='relu'),
        vaegan_layers.MinibatchDiscrimination(config.mbd_kernels, config.mbd_dims, name='mbd'),
        _dense(1, 'logit')], name='d_head')
    self.q_head = None
    if config.has_mi:
      c1, c2 = config.mi_channels
      self.q_head = keras.Sequential([
          keras.layers.ZeroPadding2D(1, name='pad'), _conv(c1, 3, 'conv3x3'), _bn(config, 'bn1'),
          keras.layers.LeakyReLU(0.2, name='lrelu1'), _conv(c2, 1, 'conv1x1'), _bn(config, 'bn2'),
          keras.layers.LeakyReLU(0.1, name='lrelu2'), keras.layers.Flatten(name='flatten'),
          _dense(config.latent_dim, 'dense'), keras.layers.Reshape(config.latent_shape, name='reshape'),
          vaegan_layers.AddBias(config.latent_shape, name='add_bias')], name='q_head')
    self.condition = condition

  @property
  def conditional(self) -> bool:
    return self.condition is not None

  def features(self, x, condition=None, training=False):
    if self.from_rgb is not None:
      x = self.from_rgb(x, training=training)
    f = self.trunk(x, training=training)
    if self.condition is None:
      if condition is not None:
        raise ValueError(f'{self.name}: got a condition but has no condition layer; build it with condition=')
      return f
    if condition is None:
      raise ValueError(f'{self.name}: a conditional discriminator needs a condition [B, N] or [B, T, N]')
    return self.condition(f, condition)

  def logits(self, features, training=False):
    return self.d_head(features, training=training)

  def mi(self, features, training=False) -> Optional[tf.Tensor]:
    if self.q_head is None:
      return None
    return self.q_head(features, training=training)

  def discriminate(self, x, condition=None, training=False):
    return self.logits(self.features(x, condition, training=training), training=training)

  def call(self, x, condition=None, training=False):
    features = self.features(x, condition, training=training)
    out = dict(logits=self.logits(features, training=training))
    if self.q_head is not None:
      out['u_hat'] = self.mi(features, training=training)
    return out

  def variable_groups(self) -> Dict[str, list]:
    """trunk: [from-RGB] + F [+ condition]; d_head; q_head (with MI)."""
    groups = dict(trunk=_trainable([self.from_rgb, self.trunk, self.condition]), d_head=_trainable([self.d_head]),
                  q_head=_trainable([self.q_head]))
    return {name: variables for name, variables in groups.items() if variables}


def build_models(config: CrVAEConfig, batch_size: int = 4):
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
