"""Stage-2 refinement of Chapter 5: G2 / D2 lifting frozen Stage-1 outputs from 64x64 to 128x128 or 224x224
(thesis Sec. 5.4.2, App. 5.C.2-5.C.4, App. 5.D "stage2 objective"; spec ch5 §A2.4, §A3.3, §8-A13, §8-A14).

The thesis says only "similar to StackGAN, without the text encoding parts" (Birds), "nearest-neighbour + 3x3 conv
replaced by a 4x4 stride-2 deconvolution" (CelebA, crVAE-GAN input) and "downsample only once, 64 -> 32" (CelebA,
VAE-GAN input); the 224 LSUN network is not described. The layer choices below are therefore [P] / StackGAN:

  G2: [bilinear resize (LSUN: 64 -> 56)] -> conv3x3 gf, ReLU -> num_down x (conv4x4 s2 p1, BN, ReLU; channels
      doubling) -> num_residual x ReLU(x + BN(conv3(ReLU(BN(conv3 x))))) -> up-blocks with halving channels,
      each 'nearest' (x2 nearest -> conv3x3 -> BN -> ReLU) or 'convT' (ConvT 4x4 s2 p1 -> BN -> ReLU)
      -> conv3x3 -> tanh.
  D2: conv4x4 s2 p1 x len(d_channels) (BN + LReLU(0.2) on all but the first) -> conv3x3 (BN, LReLU 0.2)
      -> conv k x k valid -> 1 logit, k the remaining size (4 at 128 px, 7 at 224 px).

Perceptual features f (T:L5491-5496: pretrained VGG11 for Birds / CelebA, ResNet50 for LSUN) cannot be downloaded
here: `perceptual_feature_net` takes a user-supplied `.keras`/`.h5` model file (e.g. the in-house VGG11 classifier
saved by `evaluation.save_classifier`, built by `classifier.vgg11`), or such a model object, and a layer name
(default: `block4_pool`, the 4th VGG11 block, or `conv4_block6_out` for ResNet50 [P] when the net has that layer,
otherwise the net's last pooling layer; a net with neither, or a named layer it lacks, is refused with its layer
names).
"""

import dataclasses
import math
from typing import Callable, Optional, Tuple

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
  """G2: Stage-1 image [B, in, in, 3] in [-1, 1] -> refined image [B, out, out, 3] in [-1, 1]."""

  def __init__(self, config: Stage2Config, **kwargs):
    kwargs.setdefault('name', 'stage2_generator')
    super().__init__(**kwargs)
    self._config = config.validate()
    self.resize = (keras.layers.Resizing(config.resize_to, config.resize_to, interpolation='bilinear', name='resize')
                   if config.resize_to else None)
    self.pad = keras.layers.ZeroPadding2D(1, name='pad')
    self.stem = _conv(config.gf, 3, 'stem')
    self.downs = [(_conv(config.gf * 2 ** (i + 1), 4, f'down{i}', strides=2), _bn(config, f'down{i}_bn'))
                  for i in range(config.num_down)]
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

  def call(self, x, training=False):
    if self.resize is not None:
      x = self.resize(x)
    x = ops.relu(self.stem(self.pad(x)))
    for conv, bn in self.downs:
      x = ops.relu(bn(conv(self.pad(x)), training=training))
    for block in self.residuals:
      x = block(x, training=training)
    for ops_, bn in self.ups:
      for op in ops_:
        x = op(x)
      x = ops.relu(bn(x, training=training))
    return ops.tanh(self.out_conv(self.pad(x)))


class Stage2Discriminator(keras.Model):
  """D2: image [B, out, out, 3] -> logit [B, 1] (StackGAN Stage-II D without the text condition [P])."""

  def __init__(self, config: Stage2Config, **kwargs):
    kwargs.setdefault('name', 'stage2_discriminator')
    super().__init__(**kwargs)
    self._config = config.validate()
    self.pad = keras.layers.ZeroPadding2D(1, name='pad')
    self.downs = [(_conv(channels, 4, f'down{i}', strides=2), _bn(config, f'down{i}_bn') if i else None)
                  for i, channels in enumerate(config.d_channels)]
    self.extra_conv, self.extra_bn = _conv(config.d_extra_channels, 3, 'extra'), _bn(config, 'extra_bn')
    self.logit_conv = _conv(1, config.d_final_kernel, 'logit')
    tracking.track_containers(self)

  @property
  def config(self) -> Stage2Config:
    return self._config

  def call(self, x, training=False):
    for conv, bn in self.downs:
      x = conv(self.pad(x))
      if bn is not None:
        x = bn(x, training=training)
      x = ops.leaky_relu(x, 0.2)
    x = ops.leaky_relu(self.extra_bn(self.extra_conv(self.pad(x)), training=training), 0.2)
    return ops.reshape(self.logit_conv(x), (-1, 1))


def build_stage2_models(config: Stage2Config, batch_size: int = 2):
  """Creates and builds G2 and D2."""
  config.validate()
  generator, discriminator = Stage2Generator(config), Stage2Discriminator(config)
  generator(ops.zeros((batch_size, config.in_resolution, config.in_resolution, config.channels)))
  discriminator(ops.zeros((batch_size, config.out_resolution, config.out_resolution, config.channels)))
  return generator, discriminator


# ---------------------------------------------------------------------------------------- perceptual f
class PerceptualFeatures(keras.Model):
  """Frozen f: resizes [-1, 1] images to the feature net's input size, applies `preprocess`, returns the features."""

  def __init__(self, features: keras.Model, input_size: Optional[Tuple[int, int]] = None,
               preprocess: Optional[Callable] = None, layer_name: Optional[str] = None, **kwargs):
    kwargs.setdefault('name', 'perceptual_features')
    super().__init__(**kwargs)
    self.features = features
    self.layer_name = layer_name    # the feature layer of the source net, for logs
    self.features.trainable = False
    self.input_size = None if input_size is None else (int(input_size[0]), int(input_size[1]))
    self.preprocess = preprocess

  def call(self, x, training=False):
    del training    # always inference mode (frozen BN statistics, no dropout)
    if self.input_size is not None and tuple(x.shape[1:3]) != self.input_size:
      x = ops.image.resize(x, self.input_size, interpolation='bilinear')
    if self.preprocess is not None:
      x = self.preprocess(x)
    return self.features(x, training=False)


_POOLING_LAYERS = (keras.layers.MaxPooling1D, keras.layers.MaxPooling2D, keras.layers.MaxPooling3D,
                   keras.layers.AveragePooling1D, keras.layers.AveragePooling2D, keras.layers.AveragePooling3D,
                   keras.layers.GlobalMaxPooling1D, keras.layers.GlobalMaxPooling2D, keras.layers.GlobalMaxPooling3D,
                   keras.layers.GlobalAveragePooling1D, keras.layers.GlobalAveragePooling2D,
                   keras.layers.GlobalAveragePooling3D)


def default_feature_layer(model: keras.Model, feature_net: str = 'vgg11') -> str:
  """The feature layer used when none is named: DEFAULT_FEATURE_LAYERS[feature_net] (VGG11 `block4_pool`, ResNet50
  `conv4_block6_out`, spec A2.4 [P]) when `model` has a layer of that name, otherwise its last pooling layer.

  Raises:
    ValueError: 'layer_name: ...' naming the model's layers, when it has neither.
  """
  names = [layer.name for layer in model.layers]
  preferred = DEFAULT_FEATURE_LAYERS.get(feature_net)
  if preferred in names:
    return preferred
  pooling = [layer.name for layer in model.layers if isinstance(layer, _POOLING_LAYERS)]
  if pooling:
    return pooling[-1]
  raise ValueError(f'layer_name: {model.name} has no {preferred!r} layer and no pooling layer to take the '
                   f'perceptual features from; name one of its layers: {", ".join(names)}')


def perceptual_feature_net(weights_path: Optional[str] = None, layer_name: Optional[str] = None,
                           classifier: Optional[keras.Model] = None, preprocess: Optional[Callable] = None,
                           feature_net: str = 'vgg11') -> PerceptualFeatures:
  """The Stage-2 perceptual feature extractor f (spec A2.4, §8-A14). Nothing is downloaded.

  The features are the output of one layer of a functional Keras model, never silently the whole model (which for
  a classifier would be its logits).

  Args:
    weights_path: a saved Keras model (`.keras` / `.h5`), e.g. a classifier saved by `evaluation.save_classifier`
      or an ImageNet VGG11 / ResNet50 exported by the user.
    layer_name: the layer whose output is the feature; None = `default_feature_layer` (`block4_pool` for the
      VGG11 of `classifier.vgg11` / `evaluation.build_classifier`, `conv4_block6_out` for a Keras ResNet50,
      otherwise the model's last pooling layer).
    classifier: an in-house (functional) classifier to use instead of a file (spec A5.4 [P]).
    preprocess: optional map from [-1, 1] images to the net's input convention.
    feature_net: 'vgg11' or 'resnet50', only used for the preferred default layer name.

  Raises:
    ValueError: 'weights_path: ...' if neither a weights path nor a classifier is given; 'layer_name: ...' naming
      the model's layers if the layer does not exist (or, by default, the model has no pooling layer), or if the
      model is not a functional model whose layers can be tapped.
  """
  if weights_path is not None:
    model = keras.models.load_model(weights_path, compile=False)
  elif classifier is not None:
    model = classifier
  else:
    raise ValueError('weights_path: no perceptual feature net given; valid values are a local .keras/.h5 model '
                     'file, or pass classifier= (pretrained VGG11 / ResNet50 weights are not downloaded)')
  names = [layer.name for layer in model.layers]
  if layer_name is None:
    layer_name = default_feature_layer(model, feature_net)
  elif layer_name not in names:
    raise ValueError(f'layer_name: {layer_name!r} is not a layer of {model.name}; its layers are: '
                     f'{", ".join(names)}')
  try:
    inputs = model.inputs
  except (AttributeError, ValueError):
    inputs = None
  if not inputs:
    raise ValueError(f'layer_name: {model.name} is not a functional Keras model, so layer {layer_name!r} cannot be '
                     'tapped; save a functional model (keras.Model(inputs, outputs)) as the feature net')
  features = keras.Model(inputs, model.get_layer(layer_name).output, name=f'{model.name}_{layer_name}')
  input_shape = getattr(model, 'input_shape', None)
  input_size = tuple(input_shape[1:3]) if input_shape and None not in input_shape[1:3] else None
  return PerceptualFeatures(features, input_size=input_size, preprocess=preprocess, layer_name=layer_name)
