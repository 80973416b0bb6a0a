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

G2 (`Stage2Generator`), `Stage2Config` and the presets live in rlcv_tf/core/vaegan/refiner.py (shared with seed
003's StackGAN, which adds an optional condition); they are imported here under their old names.
"""

from typing import Callable, Optional, Tuple

import keras
from keras import ops

from rlcv_tf.core import tracking
from rlcv_tf.core.vaegan import refiner
# G2 and its config live in core (seed 003's StackGAN reuses them); these names keep Chapter 5's imports working.
from rlcv_tf.core.vaegan.refiner import DEFAULT_FEATURE_LAYERS
from rlcv_tf.core.vaegan.refiner import ResidualBlock  # pylint: disable=unused-import
from rlcv_tf.core.vaegan.refiner import Stage2Config
from rlcv_tf.core.vaegan.refiner import Stage2Generator
from rlcv_tf.core.vaegan.refiner import UPSAMPLE_KINDS  # pylint: disable=unused-import
from rlcv_tf.core.vaegan.refiner import get_stage2_preset  # pylint: disable=unused-import
from rlcv_tf.core.vaegan.refiner import stage2_preset_names  # pylint: disable=unused-import

_bn = refiner._bn  # pylint: disable=protected-access
_conv = refiner._conv  # pylint: disable=protected-access


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
