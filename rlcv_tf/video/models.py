"""Chapter 7 networks: frame autoencoder, BlockSTN, video encoder Enc_v, frame-dynamics autoencoder and the
autoregressive predictor (thesis 7.4.2-7.4.3, T:L6527-6572, appendix 7.A, T:L6894-6934; spec ch7 §3, §10).

What the thesis states, and the [proposal] choices (spec §3) where it is silent:

  FrameAutoencoder (g_enc, g_dec)  "a stack of 4 basic residual blocks" whose last output s is 64x8x8 (MMNIST),
      64x12x12 (Weizmann), 128x16x16 (RAVDESS); the decoder is "symmetric to the encoder, with the additional
      transposed convolution layers for upsampling" (T:L6896-6899, T:L6905-6908).
      [proposal] g_enc: stem Conv3x3(ae_stem)+BN+ReLU, BasicBlock2D(w1, s1), (w2, s2), (w3, s2), (c_T, s2) -> s >= 0.
      g_dec: BasicBlock2D(c_T), then 3 x [ConvT4x4(c, s2)+BN+ReLU, BasicBlock2D(c)] for c in dec_widths, then
      Conv3x3(C) and sigmoid ([0, 1], MMNIST) or tanh ([-1, 1], Weizmann and RAVDESS; `output_activation`).
  BlockSTN T  channels split into K blocks, "each block is connected to a localization network to output the 6
      affine-transformation parameters, a grid generator ..., and a final step that transfers each block"
      (T:L6899-6905); G_ij = T(s_i, s_j) warps the source s_i towards the target s_j (T:L6540-6543).
      [proposal] K separate localisation nets, each reading concat(source block k, target block k) (`loc_input=
      'block'`; 'full' gives every net all channels of both maps): Conv3x3(f1)-ReLU, Conv3x3(f2, s2)-ReLU, Flatten
      (no pooling: it would discard the position a translation needs), Dense(units)-ReLU, Dense(6) with zero kernel
      and bias [1, 0, 0, 0, 1, 0], so T is the identity at initialisation. Sampling: `stn.warp` (PyTorch
      semantics, align_corners=False, zero padding). With 'block', block k of the output depends on block k of
      the inputs only.
  VideoEncoder Enc_v  Res3D-18 (Hara et al. 2018); "after the first three 3D residual layers, the network branches
      out to output S and P. The former is done via merging features along time dimension then applying 2D
      convolutional layers. The latter first goes through more 3D layers, followed by fully connected layers"
      (T:L6911-6916); dim P = 32 / 512 (T:L6917-6918).
      [proposal] conv1 Conv3D(w, conv1_kernel, strides (1, 2, 2))+BN+ReLU, no max-pool (so layer3 is at x8 and S
      has exactly the shape of s, spec A5); layer1-4 = 2 BasicBlock3D each with widths w, 2w, 4w, 8w, layers 2-4
      starting with stride (2, 2, 2). S head: time folded into channels, Conv2D(statics_head_filters, 3)+BN+ReLU,
      Conv2D(c_T, 3)+ReLU (the ReLU matches s >= 0, spec A10). P head: layer4, global average pool,
      Dense(dynamics_hidden)+ReLU, Dense(dim P) linear.
  FrameDynamicsAE (f_enc, f_dec)  f_enc copies g_enc's architecture "up to the transformation step", concatenates
      S, then "additional convolutional layers and, finally, an FC layer outputting p" of 16 / 128 numbers; the
      decoder reverses it; S conditions both (T:L6920-6927, T:L6451).
      [proposal] separate weights from g_enc (spec A11). f_enc: g_enc architecture -> concat S -> Conv3x3(c_T, s2)
      -ReLU x2 -> Flatten -> Dense(dim p) linear. f_dec: Dense(h/4 * w/4 * c_T)-ReLU -> reshape -> ConvT4x4(c_T,
      s2)-ReLU x2 -> concat S -> Conv3x3(c_T)-ReLU -> g_dec architecture (frame, sigmoid / tanh).
  AutoregressivePredictor f_auto  "a one-layer LSTM with 1024 hidden units. At the first step, the input is a
      combination of p1 and P. For the remaining time steps, the input is p_hat_{t-1} and P, where p_hat_{t-1} is
      the predicted previous time step" (T:L6931-6934): open loop, never fed the true p_2..p_T.
      [proposal] combination = concatenation [p, P]; zero initial state; readout Dense(dim p), linear, on the LSTM
      output at every step.

All models are channels-last Keras 3 models on TensorFlow. The configured ones (`FrameAutoencoder`, `VideoEncoder`,
`FrameDynamicsAE`) take a `presets.VideoConfig` and carry it in get_config; `BlockSTN` and
`AutoregressivePredictor` take plain arguments (`from_video_config` builds them from a config). Layers kept in
lists are also given attributes of their own (`core.tracking`), so tf.train.Checkpoint sees every variable, BN
statistics included. `build_models(config)` builds the five models symbolically (no forward pass) and
`count_params` counts their weights.
"""

from typing import Dict, Optional, Sequence

import keras
import tensorflow as tf

from rlcv_tf.core import tracking
from rlcv_tf.video import blocks
from rlcv_tf.video import presets
from rlcv_tf.video import stn

IDENTITY_BIAS = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


# ------------------------------------------------------------------------------------------------ helpers
def fold_time(video) -> tf.Tensor:
  """[B, T, ...] -> [B*T, ...] (frames of a video one after another)."""
  video = tf.convert_to_tensor(video)
  return tf.reshape(video, tf.concat([[-1], tf.shape(video)[2:]], 0))


def unfold_time(frames, num_frames: int) -> tf.Tensor:
  """[B*T, ...] -> [B, T, ...]; the inverse of `fold_time`."""
  frames = tf.convert_to_tensor(frames)
  return tf.reshape(frames, tf.concat([[-1, int(num_frames)], tf.shape(frames)[1:]], 0))


def repeat_per_frame(x, num_frames: int) -> tf.Tensor:
  """[B, ...] -> [B*T, ...]: each example repeated T times in a row (matches `fold_time`'s order)."""
  x = tf.convert_to_tensor(x)
  return fold_time(tf.repeat(x[:, tf.newaxis], int(num_frames), axis=1))


def _activation(name: str):
  if name == 'sigmoid':
    return keras.ops.sigmoid
  if name == 'tanh':
    return keras.ops.tanh
  raise ValueError(f'output_activation: got {name!r}; valid values are {presets.OUTPUT_ACTIVATIONS}')


def _pair(first, second):
  """Accepts call(first, second) and call((first, second))."""
  if second is None:
    if not isinstance(first, (tuple, list)) or len(first) != 2:
      raise ValueError('expected two inputs, as call(a, b) or call((a, b))')
    first, second = first
  return first, second


def _check_rank(x, rank: int, what: str) -> None:
  if x.shape.rank is not None and x.shape.rank != rank:
    raise ValueError(f'{what}: expected rank {rank}, got shape {tuple(x.shape)}')


def count_params(layer: keras.layers.Layer) -> int:
  """Number of scalars in the layer's weights, trainable or not (BN statistics included; it must be built)."""
  return int(sum(int(tf.size(w)) for w in layer.weights))


class _Configured(keras.Model):
  """A model built from one `VideoConfig`, which its Keras config carries (get_config / from_config)."""

  def __init__(self, config: presets.VideoConfig, **kwargs):
    super().__init__(**kwargs)
    if not isinstance(config, presets.VideoConfig):
      raise ValueError(f'config: expected a VideoConfig, got {type(config).__name__}')
    self._config = config.validate()

  @property
  def config(self) -> presets.VideoConfig:
    return self._config

  def get_config(self):
    return dict(super().get_config(), config=self._config.to_dict())

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    return cls(presets.VideoConfig.from_dict(config.pop('config')), name=config.get('name'))


# ------------------------------------------------------------------------------------- frame autoencoder
class FrameEncoder(keras.layers.Layer):
  """g_enc's architecture: stem + 4 basic residual blocks, x8 down: [B, H, W, C] -> [B, H/8, W/8, c_T] (>= 0)."""

  def __init__(self, config: presets.VideoConfig, **kwargs):
    super().__init__(**kwargs)
    c = config
    self.stem_conv = blocks.conv2d(c.ae_stem, 3, name='stem_conv')
    self.stem_bn = blocks.batch_norm(c.bn_momentum, c.bn_epsilon, 'stem_bn')
    widths = tuple(c.ae_widths) + (c.latent_channels,)
    self.res_blocks = [blocks.BasicBlock2D(width, 1 if i == 0 else 2, c.bn_momentum, c.bn_epsilon,
                                           name=f'rb{i + 1}') for i, width in enumerate(widths)]
    tracking.track_sublayers(self, 'rb', self.res_blocks)

  def call(self, x, training=False):
    x = keras.ops.relu(self.stem_bn(self.stem_conv(x), training=training))
    for block in self.res_blocks:
      x = block(x, training=training)
    return x


class FrameDecoder(keras.layers.Layer):
  """g_dec's architecture: [B, h, w, c] -> [B, 8h, 8w, C] in [0, 1] (sigmoid) or [-1, 1] (tanh)."""

  def __init__(self, config: presets.VideoConfig, **kwargs):
    super().__init__(**kwargs)
    c = config
    self.output_activation = c.output_activation
    self.entry = blocks.BasicBlock2D(c.latent_channels, 1, c.bn_momentum, c.bn_epsilon, name='entry')
    self.stages = []
    for i, width in enumerate(c.dec_widths):
      self.stages.append((
          keras.layers.Conv2DTranspose(width, 4, strides=2, padding='same', use_bias=False,
                                       kernel_initializer='he_normal', name=f'up{i + 1}'),
          blocks.batch_norm(c.bn_momentum, c.bn_epsilon, f'up{i + 1}_bn'),
          blocks.BasicBlock2D(width, 1, c.bn_momentum, c.bn_epsilon, name=f'rb{i + 1}'),
      ))
    tracking.track_sublayers(self, 'stage', self.stages)
    # Glorot (Keras's default) rather than He here: no BN follows, and He-scaled logits saturate the sigmoid / tanh
    # at initialisation [proposal].
    self.to_pixels = keras.layers.Conv2D(c.channels, 3, padding='same', name='to_pixels')

  def logits(self, s, training=False):
    """The output before the sigmoid / tanh."""
    x = self.entry(s, training=training)
    for up, bn, block in self.stages:
      x = block(keras.ops.relu(bn(up(x), training=training)), training=training)
    return self.to_pixels(x)

  def call(self, s, training=False):
    return _activation(self.output_activation)(self.logits(s, training=training))


class FrameAutoencoder(_Configured):
  """g_enc / g_dec of the transformation module (module docstring).

  encode(x [B, H, W, C]) -> s [B, h, w, c_T]; decode(s) -> frame [B, H, W, C]; call(x) -> (s, g_dec(s)).
  encode_video(video [B, T, H, W, C]) -> [B, T, h, w, c_T] (frames folded into the batch).
  """

  def __init__(self, config: presets.VideoConfig, **kwargs):
    kwargs.setdefault('name', 'frame_autoencoder')
    super().__init__(config, **kwargs)
    self.encoder = FrameEncoder(self._config, name='g_enc')
    self.decoder = FrameDecoder(self._config, name='g_dec')

  def encode(self, x, training=False):
    return self.encoder(x, training=training)

  def decode(self, s, training=False):
    return self.decoder(s, training=training)

  def encode_video(self, video, training=False):
    video = tf.convert_to_tensor(video)
    _check_rank(video, 5, 'video')
    return unfold_time(self.encode(fold_time(video), training=training), video.shape[1] or tf.shape(video)[1])

  def call(self, x, training=False):
    s = self.encode(x, training=training)
    return s, self.decode(s, training=training)


# ---------------------------------------------------------------------------------------------- BlockSTN
class LocalisationNet(keras.layers.Layer):
  """[B, h, w, c_in] -> theta [B, 2, 3]: Conv3x3(f1)-ReLU, Conv3x3(f2, s2)-ReLU, Flatten, Dense(units)-ReLU,
  Dense(6) with zero kernel and identity bias (theta = [[1, 0, 0], [0, 1, 0]] at initialisation)."""

  def __init__(self, filters: Sequence[int] = (32, 32), units: int = 64, **kwargs):
    super().__init__(**kwargs)
    self.filters = tuple(int(f) for f in filters)
    self.units = int(units)
    self.conv1 = blocks.conv2d(self.filters[0], 3, 1, use_bias=True, activation='relu', name='conv1')
    self.conv2 = blocks.conv2d(self.filters[1], 3, 2, use_bias=True, activation='relu', name='conv2')
    self.flatten = keras.layers.Flatten()
    self.hidden = keras.layers.Dense(self.units, activation='relu', name='hidden')
    self.theta = keras.layers.Dense(6, kernel_initializer='zeros',
                                    bias_initializer=keras.initializers.Constant(list(IDENTITY_BIAS)), name='theta')

  def call(self, x):
    h = self.hidden(self.flatten(self.conv2(self.conv1(x))))
    return keras.ops.reshape(self.theta(h), (-1, 2, 3))

  def get_config(self):
    return dict(super().get_config(), filters=self.filters, units=self.units)


class BlockSTN(keras.Model):
  """T(source, target) -> (warped [B, h, w, c], theta [B, K, 2, 3]) (module docstring).

  Channel block k = channels [k c/K, (k+1) c/K) of `source` is warped by theta[:, k] (`stn.warp`: output point
  (x, y) reads the source at theta[:, k] @ [x, y, 1], normalised coordinates, zero padding); theta[:, k] comes from
  localisation net k. Call as `stn_model(source, target)` or `stn_model((source, target))`.

  Args:
    num_blocks: K; the latent channels must be divisible by it.
    loc_filters, loc_units: localisation-net widths (`LocalisationNet`).
    loc_input: 'block' (net k reads concat(source block k, target block k)) or 'full' (every net reads
      concat(source, target); blocks are then no longer independent).
  """

  def __init__(self, num_blocks: int, loc_filters: Sequence[int] = (32, 32), loc_units: int = 64,
               loc_input: str = 'block', **kwargs):
    kwargs.setdefault('name', 'block_stn')
    super().__init__(**kwargs)
    if isinstance(num_blocks, bool) or int(num_blocks) != num_blocks or num_blocks < 1:
      raise ValueError(f'num_blocks: got {num_blocks!r}; valid values are integers >= 1')
    if loc_input not in presets.LOC_INPUTS:
      raise ValueError(f'loc_input: got {loc_input!r}; valid values are {presets.LOC_INPUTS}')
    self.num_blocks = int(num_blocks)
    self.loc_filters = tuple(int(f) for f in loc_filters)
    self.loc_units = int(loc_units)
    self.loc_input = loc_input
    self.loc_nets = [LocalisationNet(self.loc_filters, self.loc_units, name=f'loc{k + 1}')
                     for k in range(self.num_blocks)]
    tracking.track_sublayers(self, 'loc', self.loc_nets)

  @classmethod
  def from_video_config(cls, config: presets.VideoConfig, **kwargs) -> 'BlockSTN':
    return cls(config.num_blocks, config.loc_filters, config.loc_units, config.loc_input, **kwargs)

  def _check(self, x, what: str) -> None:
    _check_rank(x, 4, what)
    if x.shape[-1] is not None and x.shape[-1] % self.num_blocks:
      raise ValueError(f'{what}: {x.shape[-1]} channels cannot be cut into {self.num_blocks} equal BlockSTN '
                       f'blocks; choose a num_blocks that divides {x.shape[-1]}')

  def localise(self, source, target) -> tf.Tensor:
    """theta [B, K, 2, 3] of T(source, target)."""
    source, target = tf.convert_to_tensor(source), tf.convert_to_tensor(target)
    self._check(source, 'source')
    self._check(target, 'target')
    if self.loc_input == 'full':
      both = tf.concat([source, target], axis=-1)
      thetas = [net(both) for net in self.loc_nets]
    else:
      src_blocks = tf.split(source, self.num_blocks, axis=-1)
      tgt_blocks = tf.split(target, self.num_blocks, axis=-1)
      thetas = [net(tf.concat([s, t], axis=-1)) for net, s, t in zip(self.loc_nets, src_blocks, tgt_blocks)]
    return tf.stack(thetas, axis=1)

  def warp_blocks(self, source, theta) -> tf.Tensor:
    """Warps channel block k of source [B, h, w, c] by theta[:, k] ([B, K, 2, 3]) -> [B, h, w, c]."""
    source = tf.convert_to_tensor(source)
    self._check(source, 'source')
    k = self.num_blocks
    _, h, w, c = source.shape
    shape = tf.shape(source)
    batch = shape[0]
    h = shape[1] if h is None else h
    w = shape[2] if w is None else w
    c = shape[3] if c is None else c
    per = c // k
    x = tf.reshape(source, tf.stack([batch, h, w, k, per]))
    x = tf.reshape(tf.transpose(x, (0, 3, 1, 2, 4)), tf.stack([batch * k, h, w, per]))  # [B*K, h, w, c/K]
    theta = tf.reshape(tf.cast(theta, x.dtype), tf.stack([batch * k, 2, 3]))
    warped = stn.warp(x, theta)
    warped = tf.transpose(tf.reshape(warped, tf.stack([batch, k, h, w, per])), (0, 2, 3, 1, 4))
    return tf.reshape(warped, tf.shape(source))

  def call(self, source, target=None):
    source, target = _pair(source, target)
    theta = self.localise(source, target)
    return self.warp_blocks(source, theta), theta

  def get_config(self):
    return dict(super().get_config(), num_blocks=self.num_blocks, loc_filters=self.loc_filters,
                loc_units=self.loc_units, loc_input=self.loc_input)

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    return cls(config.pop('num_blocks'), config.pop('loc_filters'), config.pop('loc_units'),
               config.pop('loc_input'), name=config.get('name'))


# ------------------------------------------------------------------------------------------ video encoder
class VideoEncoder(_Configured):
  """Enc_v, the Res3D-18 variant (module docstring): video [B, T, H, W, C] -> (S [B, H/8, W/8, c_T], P [B, dim P]).

  Pieces, for the baselines and the gradient-routing checks:
    trunk(video) -> layer3 features [B, T', H/8, W/8, 4w] (conv1, layer1-3: shared by S and P);
    statics_from(h3) -> S;  layer4_features(h3) -> global-average-pooled layer4 [B, 8w];
    dynamics_from(h3) -> P;  variable_groups() -> {'trunk', 'statics_head', 'dynamics_branch'}.
  """

  def __init__(self, config: presets.VideoConfig, **kwargs):
    kwargs.setdefault('name', 'video_encoder')
    super().__init__(config, **kwargs)
    c = self._config
    w1, w2, w3, w4 = c.video_widths
    self.conv1 = blocks.conv3d(w1, c.conv1_kernel, (1, 2, 2), name='conv1')
    self.conv1_bn = blocks.batch_norm(c.bn_momentum, c.bn_epsilon, 'conv1_bn')
    self.layer1 = blocks.ResidualStage3D(w1, 1, 2, c.bn_momentum, c.bn_epsilon, name='layer1')
    self.layer2 = blocks.ResidualStage3D(w2, 2, 2, c.bn_momentum, c.bn_epsilon, name='layer2')
    self.layer3 = blocks.ResidualStage3D(w3, 2, 2, c.bn_momentum, c.bn_epsilon, name='layer3')
    self.statics_conv1 = blocks.conv2d(c.statics_head_filters, 3, name='statics_conv1')
    self.statics_bn = blocks.batch_norm(c.bn_momentum, c.bn_epsilon, 'statics_bn')
    self.statics_conv2 = blocks.conv2d(c.latent_channels, 3, use_bias=True, name='statics_conv2')
    self.layer4 = blocks.ResidualStage3D(w4, 2, 2, c.bn_momentum, c.bn_epsilon, name='layer4')
    self.dynamics_hidden = keras.layers.Dense(c.dynamics_hidden, activation='relu', name='dynamics_hidden')
    self.dynamics_out = keras.layers.Dense(c.dynamics_dim, name='dynamics_out')

  def _check_video(self, video) -> None:
    _check_rank(video, 5, 'video')
    expected = self._config.video_shape
    got = tuple(video.shape[1:])
    if any(g is not None and g != e for g, e in zip(got, expected)):
      raise ValueError(f'video: expected [B, {", ".join(map(str, expected))}], got shape {tuple(video.shape)}')

  def trunk(self, video, training=False):
    video = tf.convert_to_tensor(video)
    self._check_video(video)
    x = keras.ops.relu(self.conv1_bn(self.conv1(video), training=training))
    x = self.layer1(x, training=training)
    x = self.layer2(x, training=training)
    return self.layer3(x, training=training)

  def statics_from(self, h3, training=False):
    """Folds time into channels ([B, T', h, w, C] -> [B, h, w, T' C]) and applies the S head."""
    _, t, h, w, c = h3.shape
    x = tf.reshape(tf.transpose(h3, (0, 2, 3, 1, 4)), (-1, h, w, t * c))
    x = keras.ops.relu(self.statics_bn(self.statics_conv1(x), training=training))
    return keras.ops.relu(self.statics_conv2(x))

  def layer4_features(self, h3, training=False):
    x = self.layer4(h3, training=training)
    return keras.ops.mean(x, axis=(1, 2, 3))

  def dynamics_from(self, h3, training=False):
    return self.dynamics_out(self.dynamics_hidden(self.layer4_features(h3, training=training)))

  def call(self, video, training=False):
    h3 = self.trunk(video, training=training)
    return self.statics_from(h3, training=training), self.dynamics_from(h3, training=training)

  def variable_groups(self) -> Dict[str, list]:
    """Trainable variables by branch: trunk (conv1, layer1-3), statics_head, dynamics_branch (layer4 + FCs)."""
    def collect(layers):
      return [v for layer in layers for v in layer.trainable_variables]
    return dict(trunk=collect([self.conv1, self.conv1_bn, self.layer1, self.layer2, self.layer3]),
                statics_head=collect([self.statics_conv1, self.statics_bn, self.statics_conv2]),
                dynamics_branch=collect([self.layer4, self.dynamics_hidden, self.dynamics_out]))


# ------------------------------------------------------------------------------------ frame dynamics AE
class FrameDynamicsAE(_Configured):
  """f_enc(x_t, S) -> p_t [B, dim p] and f_dec(p_t, S) -> frame [B, H, W, C] (module docstring).

  encode(x, S), decode(p, S); call(x, S) or call((x, S)) -> (p, reconstruction).
  encode_video(video [B, T, ...], S [B, h, w, c]) -> [B, T, dim p]; decode_video(p [B, T, dim p], S) -> video.
  The caller applies stop_gradient to S (spec §3.7): the model does not.
  """

  def __init__(self, config: presets.VideoConfig, **kwargs):
    kwargs.setdefault('name', 'frame_dynamics')
    super().__init__(config, **kwargs)
    c = self._config
    self.encoder_trunk = FrameEncoder(c, name='f_enc_trunk')
    self.enc_conv1 = blocks.conv2d(c.latent_channels, 3, 2, use_bias=True, activation='relu', name='enc_conv1')
    self.enc_conv2 = blocks.conv2d(c.latent_channels, 3, 2, use_bias=True, activation='relu', name='enc_conv2')
    self.enc_flatten = keras.layers.Flatten()
    self.enc_code = keras.layers.Dense(c.frame_code_dim, name='enc_code')
    small = c.latent_size // presets.FRAME_CODE_DOWNSAMPLE
    self._small_shape = (small, small, c.latent_channels)
    self.dec_dense = keras.layers.Dense(small * small * c.latent_channels, activation='relu', name='dec_dense')
    self.dec_up1 = keras.layers.Conv2DTranspose(c.latent_channels, 4, strides=2, padding='same', activation='relu',
                                                kernel_initializer='he_normal', name='dec_up1')
    self.dec_up2 = keras.layers.Conv2DTranspose(c.latent_channels, 4, strides=2, padding='same', activation='relu',
                                                kernel_initializer='he_normal', name='dec_up2')
    self.dec_merge = blocks.conv2d(c.latent_channels, 3, use_bias=True, activation='relu', name='dec_merge')
    self.decoder_trunk = FrameDecoder(c, name='f_dec_trunk')

  def encode(self, x, statics, training=False):
    h = self.encoder_trunk(x, training=training)
    h = tf.concat([h, tf.cast(statics, h.dtype)], axis=-1)
    return self.enc_code(self.enc_flatten(self.enc_conv2(self.enc_conv1(h))))

  def decode(self, p, statics, training=False):
    h = tf.reshape(self.dec_dense(p), (-1,) + self._small_shape)
    h = self.dec_up2(self.dec_up1(h))
    h = self.dec_merge(tf.concat([h, tf.cast(statics, h.dtype)], axis=-1))
    return self.decoder_trunk(h, training=training)

  def encode_video(self, video, statics, training=False):
    video = tf.convert_to_tensor(video)
    _check_rank(video, 5, 'video')
    t = video.shape[1] or tf.shape(video)[1]
    return unfold_time(self.encode(fold_time(video), repeat_per_frame(statics, t), training=training), t)

  def decode_video(self, p, statics, training=False):
    p = tf.convert_to_tensor(p)
    _check_rank(p, 3, 'p')
    t = p.shape[1] or tf.shape(p)[1]
    return unfold_time(self.decode(fold_time(p), repeat_per_frame(statics, t), training=training), t)

  def call(self, x, statics=None, training=False):
    x, statics = _pair(x, statics)
    p = self.encode(x, statics, training=training)
    return p, self.decode(p, statics, training=training)


# ---------------------------------------------------------------------------------------------- predictor
class AutoregressivePredictor(keras.Model):
  """f_auto: (P [B, dim P], p1 [B, dim p], steps) -> p_hat [B, steps, dim p], open loop (module docstring).

  h, c = 0;  inp = [p1, P];  for each step: out, (h, c) = LSTMCell(inp, (h, c)); p_hat = Dense(out);
  inp = [p_hat, P].  Output t (0-based) is the prediction of p_{t+2}. It is a function of P and p1 only: the
  true codes p_2..p_T are never inputs, and output t does not depend on later steps (a shorter rollout is a prefix
  of a longer one).

  Args:
    units: LSTM units (1024 in the thesis).
    code_dim: dim p.
    steps: default number of predicted steps (T - 1 = 7).
  """

  def __init__(self, units: int, code_dim: int, steps: int = 7, **kwargs):
    kwargs.setdefault('name', 'predictor')
    super().__init__(**kwargs)
    self.units = int(units)
    self.code_dim = int(code_dim)
    self.steps = int(steps)
    if min(self.units, self.code_dim, self.steps) < 1:
      raise ValueError(f'units, code_dim, steps: got {units}, {code_dim}, {steps}; valid values are integers >= 1')
    self.cell = keras.layers.LSTMCell(self.units, name='lstm')
    self.readout = keras.layers.Dense(self.code_dim, name='readout')

  @classmethod
  def from_video_config(cls, config: presets.VideoConfig, **kwargs) -> 'AutoregressivePredictor':
    return cls(config.lstm_units, config.frame_code_dim, config.num_frames - 1, **kwargs)

  def call(self, dynamics, p1=None, steps: Optional[int] = None, training=False):
    dynamics, p1 = _pair(dynamics, p1)
    dynamics, p1 = tf.convert_to_tensor(dynamics), tf.convert_to_tensor(p1)
    _check_rank(dynamics, 2, 'P')
    _check_rank(p1, 2, 'p1 (the first frame code only, [B, dim p])')
    if p1.shape[-1] is not None and p1.shape[-1] != self.code_dim:
      raise ValueError(f'p1: expected [B, {self.code_dim}], got shape {tuple(p1.shape)}')
    steps = self.steps if steps is None else int(steps)
    if steps < 1:
      raise ValueError(f'steps: got {steps}; valid values are integers >= 1')
    p1 = tf.cast(p1, dynamics.dtype)
    zeros = tf.zeros(tf.stack([tf.shape(dynamics)[0], self.units]), dynamics.dtype)
    state = [zeros, zeros]
    previous, outputs = p1, []
    for _ in range(steps):
      out, state = self.cell(tf.concat([previous, dynamics], axis=-1), state, training=training)
      previous = self.readout(out)
      outputs.append(previous)
    return tf.stack(outputs, axis=1)

  def get_config(self):
    return dict(super().get_config(), units=self.units, code_dim=self.code_dim, steps=self.steps)

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    return cls(config.pop('units'), config.pop('code_dim'), config.pop('steps'), name=config.get('name'))


# ------------------------------------------------------------------------------------------------ builders
def build_models(config: presets.VideoConfig, batch_size: int = 1) -> Dict[str, keras.Model]:
  """The five models of `config`, built by one symbolic trace each (no forward computation):
  frame_autoencoder, block_stn, video_encoder, frame_dynamics, predictor."""
  config = config.validate()
  models = dict(frame_autoencoder=FrameAutoencoder(config), block_stn=BlockSTN.from_video_config(config),
                video_encoder=VideoEncoder(config), frame_dynamics=FrameDynamicsAE(config),
                predictor=AutoregressivePredictor.from_video_config(config))
  frame = tf.TensorSpec((batch_size,) + config.frame_shape, tf.float32)
  latent = tf.TensorSpec((batch_size,) + config.latent_shape, tf.float32)
  video = tf.TensorSpec((batch_size,) + config.video_shape, tf.float32)
  dyn = tf.TensorSpec((batch_size, config.dynamics_dim), tf.float32)
  code = tf.TensorSpec((batch_size, config.frame_code_dim), tf.float32)
  traces = dict(frame_autoencoder=(lambda m, x: m(x), (frame,)),
                block_stn=(lambda m, s, t: m(s, t), (latent, latent)),
                video_encoder=(lambda m, v: m(v), (video,)),
                frame_dynamics=(lambda m, x, s: m(x, s), (frame, latent)),
                predictor=(lambda m, d, p: m(d, p), (dyn, code)))
  for name, (fn, specs) in traces.items():
    model = models[name]
    tf.function(lambda *args, fn=fn, model=model: fn(model, *args)).get_concrete_function(*specs)
  return models
