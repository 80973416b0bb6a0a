"""The Stage-II refiner generator shared by Chapter 5's Stage 2 and seed 003's StackGAN (moved here from
rlcv_tf/crvae/stage2.py, which imports it, so that chapter packages need not import each other).

Chapter 5 (thesis Sec. 5.4.2, App. 5.C.2-5.C.4; spec ch5 §A2.4, §A3.3, §8-A13, §8-A14) uses it without any
condition: "similar to StackGAN, without the text encoding parts" (Birds), "nearest-neighbour + 3x3 conv replaced
by a 4x4 stride-2 deconvolution" (CelebA, crVAE-GAN input), "downsample only once, 64 -> 32" (CelebA, VAE-GAN
input). The layer choices are therefore [P] / StackGAN:

  G2: [bilinear resize (LSUN: 64 -> 56)] -> conv3x3 gf, ReLU -> num_down x (conv4x4 s2 p1, BN, ReLU; channels
      doubling) -> [conditional: concat the condition tiled over the map -> conv3x3 -> BN -> ReLU]
      -> num_residual x ReLU(x + BN(conv3(ReLU(BN(conv3 x))))) -> up-blocks with halving channels,
      each 'nearest' (x2 nearest -> conv3x3 -> BN -> ReLU) or 'convT' (ConvT 4x4 s2 p1 -> BN -> ReLU)
      -> conv3x3 -> tanh.

The optional condition (`Stage2Generator(config, condition_dim=N)`, seed 003's StackGAN Stage-II, Zhang et al.
ICCV 2017 [orig]): a [B, N] vector (StackGAN: the Stage-II Conditioning Augmentation's c^) is replicated over the
bottleneck map, concatenated on channels and fused by a 3x3 conv (residual_channels) -> BN -> ReLU before the
residual blocks, as StackGAN's Stage-II G does. With condition_dim = 0 (the default) the network, its variables and
its outputs are exactly Chapter 5's.
"""

import dataclasses
import math
from typing import Optional, Tuple

import keras
from keras import ops

from rlcv_tf.core import tracking
from rlcv_tf.core.vaegan import layers as vaegan_layers

UPSAMPLE_KINDS = ('nearest', 'convT')
# [P] feature layers (spec A2.4): VGG11-A after its 4th block; ResNet50's conv4 stage.
DEFAULT_FEATURE_LAYERS = {'vgg11': 'block4_pool', 'resnet50': 'conv4_block6_out'}


@dataclasses.dataclass(frozen=True)
class Stage2Config:
  """G2 / D2 and their optimisation (spec A2.4, A3.3; Adam lr 2e-4 from T:L5348, beta1 0.5 from StackGAN [P])."""
  name: str = 'stage2_birds'
  in_resolution: int = 64
  out_resolution: int = 128
  channels: int = 3
  resize_to: Optional[int] = None          # LSUN: 56 (then x4 down, x16 up -> 224)
  gf: int = 128
  num_down: int = 2
  num_residual: int = 4
  upsample: str = 'nearest'
  d_channels: Tuple[int, ...] = (64, 128, 256, 512, 1024)
  d_extra_channels: int = 512
  bn_epsilon: float = 1e-5                 # PyTorch / StackGAN defaults [P]
  bn_momentum_torch: float = 0.1
  gamma: float = 0.0                       # perceptual weight: 0 ("no Perc."), 1 Birds / CelebA, 10 LSUN
  feature_net: str = 'vgg11'               # which pretrained net the thesis used (for the default layer name)
  learning_rate: float = 2e-4
  adam_beta1: float = 0.5
  adam_beta2: float = 0.999
  adam_epsilon: float = 1e-8
  batch_size: int = 64
  epochs: int = 100

  @property
  def generator_input_size(self) -> int:
    return self.resize_to or self.in_resolution

  @property
  def residual_channels(self) -> int:
    return self.gf * 2 ** self.num_down

  @property
  def num_up(self) -> int:
    bottleneck = self.generator_input_size // 2 ** self.num_down
    return int(round(math.log2(self.out_resolution / bottleneck)))

  @property
  def up_channels(self) -> Tuple[int, ...]:
    return tuple(max(self.residual_channels // 2 ** (i + 1), 1) for i in range(self.num_up))

  @property
  def d_final_kernel(self) -> int:
    return self.out_resolution // 2 ** len(self.d_channels)

  def validate(self) -> 'Stage2Config':
    def fail(field, problem, valid):
      raise ValueError(f'{field}: {problem}; valid values {valid}')

    if self.upsample not in UPSAMPLE_KINDS:
      fail('upsample', f'got {self.upsample!r}', f'are {UPSAMPLE_KINDS}')
    if self.feature_net not in DEFAULT_FEATURE_LAYERS:
      fail('feature_net', f'got {self.feature_net!r}', f'are {tuple(DEFAULT_FEATURE_LAYERS)}')
    size = self.generator_input_size
    if size % 2 ** self.num_down:
      fail('num_down', f'{self.num_down} stride-2 convs do not divide {size}px', 'are with size % 2**num_down == 0')
    bottleneck = size // 2 ** self.num_down
    if self.num_up < 1 or bottleneck * 2 ** self.num_up != self.out_resolution:
      fail('out_resolution', f'{self.out_resolution} is not {bottleneck} x a power of two >= 2',
           f'are {bottleneck} * 2**k, k >= 1')
    if self.d_final_kernel < 1 or self.d_final_kernel * 2 ** len(self.d_channels) != self.out_resolution:
      fail('d_channels', f'{len(self.d_channels)} stride-2 convs do not divide {self.out_resolution}px',
           'are trunks with out_resolution divisible by 2**len(d_channels)')
    for field in ('gf', 'num_residual', 'd_extra_channels', 'batch_size', 'epochs', 'channels'):
      if getattr(self, field) < (0 if field == 'num_residual' else 1):
        fail(field, f'got {getattr(self, field)}', 'are positive integers')
    if self.gamma < 0:
      fail('gamma', f'got {self.gamma}', 'are >= 0')
    return self

  def replace(self, **overrides) -> 'Stage2Config':
    unknown = set(overrides) - {f.name for f in dataclasses.fields(self)}
    if unknown:
      raise ValueError(f'{sorted(unknown)[0]}: unknown Stage2Config field; valid values are '
                       f'{[f.name for f in dataclasses.fields(self)]}')
    return dataclasses.replace(self, **overrides)


_STAGE2_PRESETS = {
    # Birds: StackGAN Stage-II without text (App. 5.C.2); gamma = 1 with the perceptual loss.
    'stage2_birds': Stage2Config(name='stage2_birds', gamma=1.0),
    # CelebA, crVAE-GAN input: deconvolution up-blocks (App. 5.C.3).
    'stage2_celeba_crvaegan': Stage2Config(name='stage2_celeba_crvaegan', upsample='convT', gamma=1.0),
    # CelebA, VAE-GAN input: a single 64 -> 32 downsampling, 2 up-blocks (App. 5.C.3).
    'stage2_celeba_vaegan': Stage2Config(name='stage2_celeba_vaegan', num_down=1, gamma=1.0),
    # LSUN 224 [P]: resize to 56, 56 -> 14, 4 up-blocks; ResNet50 features with gamma = 10.
    'stage2_lsun': Stage2Config(name='stage2_lsun', out_resolution=224, resize_to=56, gamma=10.0,
                                feature_net='resnet50'),
    # Reduced versions with the same structure, for tests.
    'stage2_tiny': Stage2Config(name='stage2_tiny', in_resolution=16, out_resolution=32, gf=8, num_residual=2,
                                d_channels=(8, 16, 32), d_extra_channels=16, batch_size=8),
    'stage2_tiny_convt': Stage2Config(name='stage2_tiny_convt', in_resolution=16, out_resolution=32, gf=8,
                                      num_residual=2, upsample='convT', d_channels=(8, 16, 32), d_extra_channels=16,
                                      batch_size=8),
    'stage2_tiny_single_down': Stage2Config(name='stage2_tiny_single_down', in_resolution=16, out_resolution=32, gf=8,
                                            num_down=1, num_residual=2, d_channels=(8, 16, 32), d_extra_channels=16,
                                            batch_size=8),
    'stage2_tiny_lsun': Stage2Config(name='stage2_tiny_lsun', in_resolution=16, out_resolution=28, resize_to=14, gf=8,
                                     num_down=1, num_residual=2, d_channels=(8, 16), d_extra_channels=16, batch_size=8,
                                     feature_net='resnet50'),
}


def stage2_preset_names() -> Tuple[str, ...]:
  return tuple(sorted(_STAGE2_PRESETS))


def get_stage2_preset(name: str, **overrides) -> Stage2Config:
  if name not in _STAGE2_PRESETS:
    raise ValueError(f'name: unknown Stage-2 preset {name!r}; valid values are {stage2_preset_names()}')
  config = _STAGE2_PRESETS[name]
  return (config.replace(**overrides) if overrides else config).validate()


def _bn(config, name):
  return vaegan_layers.torch_bn(config.bn_epsilon, config.bn_momentum_torch, name=name)


def _conv(filters, kernel, name, strides=1):
  return keras.layers.Conv2D(filters, kernel, strides=strides, padding='valid',
                             kernel_initializer=vaegan_layers.conv_initializer(), name=name)


class ResidualBlock(keras.layers.Layer):
  """relu(x + BN(conv3(relu(BN(conv3(x)))))) (StackGAN Stage-II residual block)."""

  def __init__(self, channels: int, config: Stage2Config, **kwargs):
    super().__init__(**kwargs)
    self.pad = keras.layers.ZeroPadding2D(1)
    self.conv1, self.bn1 = _conv(channels, 3, 'conv1'), _bn(config, 'bn1')
    self.conv2, self.bn2 = _conv(channels, 3, 'conv2'), _bn(config, 'bn2')

  def call(self, x, training=False):
    y = ops.relu(self.bn1(self.conv1(self.pad(x)), training=training))
    y = self.bn2(self.conv2(self.pad(y)), training=training)
    return ops.relu(x + y)


class Stage2Generator(keras.Model):
  """G2: Stage-1 image [B, in, in, 3] in [-1, 1] (+ an optional condition [B, condition_dim]) -> refined image
  [B, out, out, 3] in [-1, 1]."""

  def __init__(self, config: Stage2Config, condition_dim: int = 0, **kwargs):
    kwargs.setdefault('name', 'stage2_generator')
    super().__init__(**kwargs)
    self._config = config.validate()
    if condition_dim < 0:
      raise ValueError(f'condition_dim: got {condition_dim}; valid values are 0 (unconditional) or positive')
    self.condition_dim = int(condition_dim)
    self.resize = (keras.layers.Resizing(config.resize_to, config.resize_to, interpolation='bilinear', name='resize')
                   if config.resize_to else None)
    self.pad = keras.layers.ZeroPadding2D(1, name='pad')
    self.stem = _conv(config.gf, 3, 'stem')
    self.downs = [(_conv(config.gf * 2 ** (i + 1), 4, f'down{i}', strides=2), _bn(config, f'down{i}_bn'))
                  for i in range(config.num_down)]
    self.joint = self.joint_bn = None
    if self.condition_dim:      # StackGAN Stage-II: fuse the tiled condition with the encoded image [orig]
      self.joint, self.joint_bn = _conv(config.residual_channels, 3, 'joint'), _bn(config, 'joint_bn')
    self.residuals = [ResidualBlock(config.residual_channels, config, name=f'res{i}')
                      for i in range(config.num_residual)]
    self.ups = []
    for i, channels in enumerate(config.up_channels):
      if config.upsample == 'nearest':
        ops_ = [keras.layers.UpSampling2D(2, interpolation='nearest', name=f'up{i}_nearest'),
                keras.layers.ZeroPadding2D(1, name=f'up{i}_pad'), _conv(channels, 3, f'up{i}_conv')]
      else:
        ops_ = [keras.layers.Conv2DTranspose(channels, 4, strides=2, padding='valid', name=f'up{i}_convt',
                                             kernel_initializer=vaegan_layers.conv_transpose_initializer()),
                keras.layers.Cropping2D(1, name=f'up{i}_crop')]
      self.ups.append((ops_, _bn(config, f'up{i}_bn')))
    self.out_conv = _conv(config.channels, 3, 'out_conv')
    tracking.track_containers(self)   # so tf.train.Checkpoint saves the BN moving statistics too

  @property
  def config(self) -> Stage2Config:
    return self._config

  @property
  def _default_save_signature(self):
    # Keras traces a one-input serving function for every tracked model; a conditional refiner has two inputs, and
    # its exporter declares the endpoints itself. Unconditional: unchanged.
    return None if self.condition_dim else super()._default_save_signature

  def call(self, x, condition=None, training=False):
    if (condition is None) != (self.condition_dim == 0):
      raise ValueError(f'{self.name}: condition_dim={self.condition_dim}, but the condition is '
                       f'{"missing" if condition is None else "given"}')
    if self.resize is not None:
      x = self.resize(x)
    x = ops.relu(self.stem(self.pad(x)))
    for conv, bn in self.downs:
      x = ops.relu(bn(conv(self.pad(x)), training=training))
    if condition is not None:
      condition = ops.cast(condition, x.dtype)
      if condition.shape[-1] is not None and condition.shape[-1] != self.condition_dim:
        raise ValueError(f'{self.name}: condition of size {condition.shape[-1]}, expected {self.condition_dim}')
      side_h, side_w = ops.shape(x)[1], ops.shape(x)[2]
      tiled = ops.tile(condition[:, None, None, :], (1, side_h, side_w, 1))
      x = ops.relu(self.joint_bn(self.joint(self.pad(ops.concatenate([x, tiled], axis=-1))), training=training))
    for block in self.residuals:
      x = block(x, training=training)
    for ops_, bn in self.ups:
      for op in ops_:
        x = op(x)
      x = ops.relu(bn(x, training=training))
    return ops.tanh(self.out_conv(self.pad(x)))
