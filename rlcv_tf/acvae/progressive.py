"""Progressive growing of the Chapter 6 models from R to 2R pixels (thesis Sec. 6.4.3, T:L5898-5937, Fig. 6.4 and
T:L5999-6000; spec ch5_6 Part B2.1, §7.3 item 19, §8-A29).

A trained R-pixel generator, encoder and conditional D get new layers at 2R; every pretrained weight is kept. Where
`fade` (alpha) in [0, 1] blends an old branch (weight 1 - alpha) with a new one (weight alpha), with widths from the
config (full64 -> 128: b = 32, the decoder's last map c = 64, the D's from-RGB width d = 32):

  generator  new: nearest x2 -> Conv 3x3 c -> c/2, BN, LReLU(.1) -> Conv 3x3 -> c, BN, LReLU(.1) -> to-RGB (the
                  pretrained 1x1)
             old: nearest x2 of the last R map -> to-RGB (a copy of the pretrained one)
  encoder    new: from-RGB-encoder (input CReLU -> Conv 1x1 -> b, BN, ReLU; the pretrained weights, now at 2R) ->
                  Conv 3x3 b -> b/2, BN, ReLU -> Conv 3x3 -> b, BN -> AvgPool 2
             old: AvgPool 2 -> from-RGB-encoder (a copy: CReLU -> Conv 1x1, BN, ReLU)
  D          new: from-RGB (Conv 1x1 -> d + ReLU, pretrained) -> Conv 3x3 d -> d/2, ReLU -> Conv 3x3 -> d, ReLU ->
                  AvgPool 2
             old: AvgPool 2 -> from-RGB (a copy)
  output = (1 - alpha) * old + alpha * new at each of the three places.

At alpha = 0 the grown models compute exactly the R models on 2x2-average-pooled images and the nearest x2 of the R
generator's output (a 1x1 conv commutes with nearest upsampling, and so does the output tanh); at alpha = 1 the old
branches are weighted 0.

Schedule: alpha rises linearly in the stage's step over its first half, then stays 1 (`fade_alpha`); R6's per-epoch
staircase `fade = min((e - 1) / (E / 2), 1)` (`epoch_fade`) is `fade_alpha` with `steps_per_epoch`. The fade length is
fixed when the stage starts and stored in the grown config (`GrownConfig.fade_steps`, written to config.json with the
rest), so alpha follows from the checkpointed step alone: a resume, even with more --steps, continues the same ramp.
Each grown model holds alpha as a non-trainable variable per blend point (`set_alpha`), so one tf.function serves
every alpha.

Growing again (2R -> 4R) is the same operation on a grown model whose fade-in has finished (alpha = 1): its blend
points and old-branch copies are dropped and its grown layers become ordinary pretrained layers (spec B2.1 grows once,
64 -> 128; the tables of `presets` stay those of the base resolution R0, `GrownConfig.base_resolution`).

Stable checkpoint names (`tf.train.Checkpoint`): every pretrained layer keeps the key it had in the R model (the
grown models are subclasses of the R classes with the same attributes); the layers of the level that doubles to r
pixels are `grow_r<r>` (in `encoder_trunk`, `decoder_trunk` and the D), the blend point with its old-branch copy and
alpha is `fade_r<r>` (`FadeIn`: `old`, `alpha`). `grow` copies the R weights by these keys through a checkpoint
round trip and checks that every R value arrived (all but the finished `fade_*` parts of an R model that was itself
grown).

Public API:
  fade_alpha(step, fade_steps, steps_per_epoch=0, start_step=0) -> alpha (float, or a tensor for a tensor step)
  epoch_fade(epoch, epochs) -> R6's per-epoch fade (epoch 1-based)
  GrownConfig(AcVAEConfig): + base_resolution, fade_steps, fade_start_step, fade_steps_per_epoch,
    lr_mult_pretrained; .fade_alpha(step), .level_resolutions, .newest_level, .base_config()
  grow_config(cfg, total_steps=None, fade_steps=None, ...) -> GrownConfig at 2 * cfg.resolution
  config_from_dict(values) -> AcVAEConfig or GrownConfig (config.json)
  build_grown_models(cfg) -> (vae, disc or None), built, fresh weights (for a resume: restore the checkpoint next)
  grow(vae, disc, cfg=None, total_steps=None, fade_steps=None, ...) -> (vae2R, disc2R or None, cfg2R), alpha = 0
  copy_pretrained(vae, disc, vae2R, disc2R) -> dict(copied=, dropped=, fresh=) numbers of checkpoint values
  set_alpha(alpha, *models);  the grown models: .alpha, .set_alpha(alpha), .fade_layers()
  grown models keep the R API: encode(x, a), prior_params(a), decode(z, a) -> (u, x), ...; D: features(x, a),
    logits(f), mi(f), call(x, a); variable_groups() adds 'grow_enc', 'grow_gen' (VAE) and 'grow_d' (D): the new
    convolutions, BNs and old-branch copies (GROW_GROUPS; learning-rate multiplier 1, `learning_rate_multipliers`)
"""

import dataclasses
import math
import os
import tempfile
from typing import Dict, Optional, Tuple

import keras
from keras import ops
import tensorflow as tf

from rlcv_tf.acvae import networks
from rlcv_tf.acvae import presets
from rlcv_tf.core import tracking
from rlcv_tf.core.vaegan import layers as vaegan_layers
from rlcv_tf.core.vaegan import networks as vaegan_networks

_conv = vaegan_networks._conv  # pylint: disable=protected-access
_bn = vaegan_networks._bn  # pylint: disable=protected-access
_trainable = vaegan_networks._trainable  # pylint: disable=protected-access

GROW_GROUPS = ('grow_enc', 'grow_gen', 'grow_d')
FADE_FRACTION = 0.5        # the fade-in lasts the first half of the stage (T:L5999-6000: 75 of 150 epochs)
_FADE_PREFIX = 'fade_'


# ------------------------------------------------------------------------------------------------ schedule
def fade_alpha(step, fade_steps: float, steps_per_epoch: int = 0, start_step: int = 0):
  """alpha at `step`: 0 at `start_step`, linear up to 1 at `start_step + fade_steps`, 1 after.

  With `steps_per_epoch` > 0 alpha only changes at epoch boundaries (R6's staircase, `epoch_fade` with epoch
  e = (step - start_step) // steps_per_epoch + 1 and fade_steps = (E / 2) * steps_per_epoch). A tensor `step` gives a
  float32 tensor (for use inside a tf.function), a number gives a float.
  """
  if not fade_steps > 0:
    raise ValueError(f'fade_steps: got {fade_steps}; valid values are > 0 (the fade-in length in steps)')
  if steps_per_epoch < 0 or start_step < 0:
    raise ValueError(f'steps_per_epoch / start_step: got {steps_per_epoch} / {start_step}; valid values are >= 0')
  if tf.is_tensor(step):
    s = tf.maximum(tf.cast(step, tf.float64) - float(start_step), 0.0)
    if steps_per_epoch:
      s = tf.floor(s / steps_per_epoch) * steps_per_epoch
    return tf.cast(tf.minimum(s / float(fade_steps), 1.0), tf.float32)
  s = max(float(step) - float(start_step), 0.0)
  if steps_per_epoch:
    s = math.floor(s / steps_per_epoch) * steps_per_epoch
  return min(s / float(fade_steps), 1.0)


def epoch_fade(epoch: int, epochs: int) -> float:
  """R6's per-epoch schedule: fade = min((epoch - 1) / (epochs / 2), 1), epoch 1-based (spec B2.1)."""
  if epoch < 1 or epochs < 1:
    raise ValueError(f'epoch / epochs: got {epoch} / {epochs}; valid values are epoch >= 1 (1-based), epochs >= 1')
  return min((epoch - 1) / (epochs * FADE_FRACTION), 1.0)


# ------------------------------------------------------------------------------------------------ config
@dataclasses.dataclass(frozen=True)
class GrownConfig(presets.AcVAEConfig):
  """An `AcVAEConfig` at `resolution` = base_resolution * 2^L, L >= 1 growth levels (see the module docstring).

  The layer tables (`encoder_layers`, `decoder_layers`, `d_channels`) are those of `base_resolution`; the new
  fields:
    base_resolution: R0, the resolution the tables are written for (the first, ungrown model's).
    fade_steps: length of the newest level's fade-in in steps (fixed when the stage starts: half its steps).
    fade_start_step: the stage step at which the fade-in starts (0: the stage's own step counter).
    fade_steps_per_epoch: > 0: R6's per-epoch staircase with this many steps per epoch; 0: linear in the step.
    lr_mult_pretrained: R6's LR_mult on every pretrained group (1); the `GROW_GROUPS` use LR.
  """
  base_resolution: int = 64
  fade_steps: float = 1.0
  fade_start_step: int = 0
  fade_steps_per_epoch: int = 0
  lr_mult_pretrained: float = 1.0

  @property
  def levels(self) -> int:
    """The number of doublings from base_resolution (>= 1 in a valid config)."""
    ratio = self.resolution // max(self.base_resolution, 1)
    return int(round(math.log2(ratio))) if ratio >= 1 else 0

  @property
  def level_resolutions(self) -> Tuple[int, ...]:
    """The output resolution of each level, oldest first: (2 R0, 4 R0, ..., resolution)."""
    return tuple(self.base_resolution * 2 ** (k + 1) for k in range(self.levels))

  @property
  def newest_level(self) -> str:
    """The name (r<resolution>) of the level that is fading in."""
    return level_name(self.resolution)

  @property
  def completed_levels(self) -> Tuple[str, ...]:
    """Names of the older levels (grown and faded in by earlier stages), oldest first."""
    return tuple(level_name(r) for r in self.level_resolutions[:-1])

  def base_config(self) -> presets.AcVAEConfig:
    """The same model as a plain `AcVAEConfig` at base_resolution (what the tables describe)."""
    shared = {f.name: getattr(self, f.name) for f in dataclasses.fields(presets.AcVAEConfig)}
    shared['resolution'] = self.base_resolution
    return presets.AcVAEConfig(**shared)

  def fade_alpha(self, step):
    """alpha of the newest level at stage step `step` (`fade_alpha` with the stored fade fields)."""
    return fade_alpha(step, self.fade_steps, self.fade_steps_per_epoch, self.fade_start_step)

  def validate(self) -> 'GrownConfig':
    """The Chapter 6 checks at base_resolution, then the growth fields; ValueError('field: ...'), returns self."""
    if int(self.base_resolution) < 1:
      raise ValueError(f'base_resolution: got {self.base_resolution}; valid values are the resolution of the model '
                       f'that was grown (>= 1)')
    self.base_config().validate()
    ratio = self.resolution / self.base_resolution
    if ratio < 2 or ratio != 2 ** round(math.log2(ratio)):
      raise ValueError(f'resolution: {self.resolution} is not base_resolution {self.base_resolution} x 2^L, L >= 1; '
                       f'valid values are {tuple(self.base_resolution * 2 ** k for k in range(1, 5))}, ...')
    if not float(self.fade_steps) > 0:
      raise ValueError(f'fade_steps: got {self.fade_steps}; valid values are > 0 (steps of the fade-in)')
    for field in ('fade_start_step', 'fade_steps_per_epoch'):
      if int(getattr(self, field)) < 0:
        raise ValueError(f'{field}: got {getattr(self, field)}; valid values are integers >= 0')
    if not float(self.lr_mult_pretrained) > 0:
      raise ValueError(f'lr_mult_pretrained: got {self.lr_mult_pretrained}; valid values are > 0')
    return self


def level_name(resolution: int) -> str:
  """The stable name of the growth level whose output is `resolution` pixels: 'r128'."""
  return f'r{int(resolution)}'


def grow_config(cfg: presets.AcVAEConfig, total_steps: Optional[int] = None, fade_steps: Optional[float] = None,
                steps_per_epoch: int = 0, start_step: int = 0, lr_mult_pretrained: float = 1.0,
                **overrides) -> GrownConfig:
  """The config of `cfg`'s model grown to 2 * cfg.resolution.

  The fade length is fixed here, at the start of the stage: `fade_steps`, or half of `total_steps` (the stage's
  steps; give exactly one). A resume must reuse the stored config (`config_from_dict`), not call this again.
  `overrides` replace further fields (e.g. name, batch_size, loss weights; the loss weights are kept by default).
  """
  if (total_steps is None) == (fade_steps is None):
    raise ValueError(f'total_steps / fade_steps: got {total_steps} / {fade_steps}; valid values are exactly one of '
                     f'them (the stage steps, whose first half is the fade-in, or the fade-in length itself)')
  if total_steps is not None:
    if int(total_steps) < 1:
      raise ValueError(f'total_steps: got {total_steps}; valid values are the stage steps, >= 1')
    fade_steps = FADE_FRACTION * int(total_steps)
  cfg.validate()
  fields = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(presets.AcVAEConfig)}
  base_resolution = cfg.base_resolution if isinstance(cfg, GrownConfig) else cfg.resolution
  fields.update(name=f'{cfg.name}_{level_name(2 * cfg.resolution)}', resolution=2 * cfg.resolution,
                base_resolution=base_resolution, fade_steps=float(fade_steps), fade_start_step=int(start_step),
                fade_steps_per_epoch=int(steps_per_epoch), lr_mult_pretrained=float(lr_mult_pretrained))
  grown = GrownConfig(**fields)
  if overrides:
    grown = grown.replace(**overrides)
  return grown.validate()


def config_from_dict(values: dict) -> presets.AcVAEConfig:
  """A stored config (config.json): a `GrownConfig` when it has the growth fields, else an `AcVAEConfig`."""
  cls = GrownConfig if 'base_resolution' in values else presets.AcVAEConfig
  return cls.from_dict(values).validate()


def learning_rate_multipliers(base: Dict[str, float], cfg: GrownConfig) -> Dict[str, float]:
  """Group LR multipliers of a grown model: the R model's `base` ones x lr_mult_pretrained, and 1 for each of
  GROW_GROUPS (spec B2.1: the pretrained parts use LR_mult * LR, the fresh parts LR)."""
  out = {name: float(m) * float(cfg.lr_mult_pretrained) for name, m in base.items()}
  out.update({name: 1.0 for name in GROW_GROUPS})
  return out


# ------------------------------------------------------------------------------------------------ layers
class FadeIn(keras.layers.Layer):
  """The blend point of one growth level: call(old_input, new) = (1 - alpha) * old(old_input) + alpha * new.

  `old` is the old branch (e.g. AvgPool 2 -> from-RGB copy); `alpha` a non-trainable scalar weight (0 at first,
  created when the layer is built), set with `assign` / the models' `set_alpha`.
  """

  def __init__(self, old: keras.layers.Layer, **kwargs):
    super().__init__(**kwargs)
    self.old = old
    self.alpha = None

  def build(self, old_input_shape, new_shape=None):
    # Created here (not in __init__) so that its Keras path is nested under the owner's, like every other weight.
    self.alpha = self.add_weight(shape=(), initializer='zeros', trainable=False, name='alpha')
    self.old.build(old_input_shape)

  def call(self, old_input, new, training=False):
    old = self.old(old_input, training=training)
    alpha = ops.cast(self.alpha, new.dtype)
    return (1.0 - alpha) * old + alpha * new


def _half(channels: int) -> int:
  return max(1, int(channels) // 2)


def _encoder_level(config, name) -> keras.Sequential:
  """Conv 3x3 b -> b/2, BN, ReLU -> Conv 3x3 -> b, BN -> AvgPool 2 (a 2R map of b channels to R)."""
  b = config.base_channels
  return keras.Sequential([
      _conv(_half(b), 3, 'conv1', padding='same'), _bn(config, 'bn1'), keras.layers.ReLU(name='relu1'),
      _conv(b, 3, 'conv2', padding='same'), _bn(config, 'bn2'), keras.layers.AveragePooling2D(2, name='pool')],
                          name=f'grow_{name}')


def _decoder_level(config, name) -> keras.Sequential:
  """nearest x2 -> Conv 3x3 c -> c/2, BN, LReLU -> Conv 3x3 -> c, BN, LReLU (an R map of c channels to 2R)."""
  c, slope = config.decoder_layers[-1][1], config.lrelu_slope
  return keras.Sequential([
      keras.layers.UpSampling2D(2, interpolation='nearest', name='up'),
      _conv(_half(c), 3, 'conv1', padding='same'), _bn(config, 'bn1'), keras.layers.LeakyReLU(slope, name='lrelu1'),
      _conv(c, 3, 'conv2', padding='same'), _bn(config, 'bn2'), keras.layers.LeakyReLU(slope, name='lrelu2')],
                          name=f'grow_{name}')


def _discriminator_level(config, name) -> keras.Sequential:
  """Conv 3x3 d -> d/2, ReLU -> Conv 3x3 -> d, ReLU -> AvgPool 2 (no BN in the D, spec B2.1)."""
  d = config.d_channels[0]
  return keras.Sequential([
      _conv(_half(d), 3, 'conv1', padding='same'), keras.layers.ReLU(name='relu1'),
      _conv(d, 3, 'conv2', padding='same'), keras.layers.ReLU(name='relu2'),
      keras.layers.AveragePooling2D(2, name='pool')], name=f'grow_{name}')


def _check_image_size(layer, x, resolution):
  size = tuple(x.shape[1:3])
  if None not in size and size != (resolution, resolution):
    raise ValueError(f'x: {layer.name} of the grown model takes {resolution}x{resolution} images, got '
                     f'{size[0]}x{size[1]}; feed images at the grown resolution (config.resolution)')


class _GrownParts:
  """Access to the named growth layers of a grown trunk or D (`grow_<level>`, `fade_<newest>`)."""

  _grown_config: GrownConfig

  @property
  def newest(self) -> keras.layers.Layer:
    """The layers of the level that is fading in (`grow_<newest>`)."""
    return getattr(self, f'grow_{self._grown_config.newest_level}')

  @property
  def fade(self) -> FadeIn:
    """The newest level's blend point (`fade_<newest>`) with the old branch and alpha."""
    return getattr(self, f'{_FADE_PREFIX}{self._grown_config.newest_level}')

  def completed(self):
    """The older levels' layers in the order they run."""
    raise NotImplementedError


class GrownEncoderTrunk(_GrownParts, vaegan_networks.EncoderTrunk):
  """E at 2R (module docstring): blend(AvgPool -> CReLU -> from-RGB copy, CReLU -> from-RGB -> newest level) ->
  the completed levels (the `core.vaegan.networks` trunks' `growth` hook, newest first) -> the table of base_resolution."""

  def __init__(self, config: GrownConfig, **kwargs):
    completed = {name: _encoder_level(config, name) for name in reversed(config.completed_levels)}
    stem = vaegan_networks.from_rgb_stem(config.base_channels, config, name='from_rgb')
    super().__init__(config, from_rgb=stem, growth=completed, **kwargs)
    self._grown_config = config
    newest = config.newest_level
    tracking.track_named(self, 'grow', {newest: _encoder_level(config, newest)})
    old = [keras.layers.AveragePooling2D(2, name='pool')]
    if config.input_crelu:
      old.append(vaegan_layers.CReLU(name='input_crelu'))
    old.append(vaegan_networks.from_rgb_stem(config.base_channels, config, name='from_rgb'))
    setattr(self, f'{_FADE_PREFIX}{newest}', FadeIn(keras.Sequential(old, name='old'), name=f'fade_{newest}'))

  def completed(self):
    return list(self.growth.values())

  @property
  def old_from_rgb(self) -> keras.layers.Layer:
    """The old branch's copy of the from-RGB stem."""
    return self.fade.old.layers[-1]

  def stem(self, x, training=False):
    _check_image_size(self, x, self._grown_config.resolution)
    new = self.input_crelu(x) if self.input_crelu is not None else x
    new = self.newest(self.from_rgb(new, training=training), training=training)
    y = self.fade(x, new, training=training)
    for stage in self.completed():
      y = stage(y, training=training)
    return y


class GrownDecoderTrunk(_GrownParts, vaegan_networks.DecoderTrunk):
  """Dec at 2R (module docstring): the table -> the completed levels (the `core.vaegan.networks` trunks' `growth` hook) -> h; output
  blend(nearest x2 -> to-RGB copy, to-RGB(newest level(h))). `features` is h (the map before the newest level)."""

  def __init__(self, config: GrownConfig, **kwargs):
    completed = {name: _decoder_level(config, name) for name in config.completed_levels}
    super().__init__(config, to_rgb=vaegan_networks.to_rgb_conv(config.channels), growth=completed, **kwargs)
    self._grown_config = config
    newest = config.newest_level
    tracking.track_named(self, 'grow', {newest: _decoder_level(config, newest)})
    old = keras.Sequential([keras.layers.UpSampling2D(2, interpolation='nearest', name='up'),
                            vaegan_networks.to_rgb_conv(config.channels)], name='old')
    setattr(self, f'{_FADE_PREFIX}{newest}', FadeIn(old, name=f'fade_{newest}'))

  def completed(self):
    return list(self.growth.values())

  @property
  def old_to_rgb(self) -> keras.layers.Layer:
    """The old branch's copy of the to-RGB conv."""
    return self.fade.old.layers[-1]

  def call(self, x, training=False):
    h = self.features(x, training=training)
    new = self.head(self.newest(h, training=training), training=training)
    return self.fade(h, new, training=training)


def _replace_sublayer(owner: keras.layers.Layer, name: str, layer: keras.layers.Layer) -> None:
  """Sets owner.<name> = layer before the owner is built, dropping the unbuilt layer it replaces from Keras' layer
  list (so it adds no state and no 'unbuilt' warnings); the checkpoint key stays <name>."""
  old = getattr(owner, name)
  owner._tracker.untrack(old)  # pylint: disable=protected-access
  setattr(owner, name, layer)


class _GrownVAE:
  """Mixin for the R generator classes: the trunks at 2R (`GrownEncoderTrunk`, `GrownDecoderTrunk`) under the same
  attribute names; everything else, and the public API, as the R class."""

  def __init__(self, config: GrownConfig, **kwargs):
    if not isinstance(config, GrownConfig):
      raise ValueError(f'config: grown models take a GrownConfig (grow_config / config_from_dict), got '
                       f'{type(config).__name__}')
    super().__init__(config, **kwargs)
    _replace_sublayer(self, 'encoder_trunk', GrownEncoderTrunk(config, name='encoder'))
    _replace_sublayer(self, 'decoder_trunk', GrownDecoderTrunk(config, name='decoder'))

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    return cls(GrownConfig.from_dict(config.pop('config')), name=config.get('name'))

  def fade_layers(self):
    return [self.encoder_trunk.fade, self.decoder_trunk.fade]

  @property
  def alpha(self):
    """The newest level's alpha (the encoder's and the decoder's are set together)."""
    return self.encoder_trunk.fade.alpha

  def set_alpha(self, alpha) -> None:
    for fade in self.fade_layers():
      fade.alpha.assign(ops.cast(alpha, fade.alpha.dtype))

  def variable_groups(self) -> Dict[str, list]:
    """The R model's groups (now with the completed levels in enc / dec) without the newest level, plus
    grow_enc (newest encoder level + from-RGB copy) and grow_gen (newest decoder level + to-RGB copy)."""
    fresh = dict(grow_enc=_trainable([self.encoder_trunk.newest, self.encoder_trunk.fade]),
                 grow_gen=_trainable([self.decoder_trunk.newest, self.decoder_trunk.fade]))
    return _regroup(super().variable_groups(), fresh)


def _regroup(groups, fresh):
  taken = {id(v) for variables in fresh.values() for v in variables}
  out = {name: [v for v in variables if id(v) not in taken] for name, variables in groups.items()}
  out.update(fresh)
  return {name: variables for name, variables in out.items() if variables}


class GrownCVAEGAN(_GrownVAE, networks.CVAEGAN):
  """cVAE-GAN / cVAE generator at 2R."""


class GrownCrVAEGAN(_GrownVAE, networks.CrVAEGAN):
  """Conditional crVAE-GAN generator at 2R."""


class GrownAcVAEGAN(_GrownVAE, networks.AcVAEGAN):
  """acVAE-GAN generator at 2R."""


GROWN_CLASSES = {'cvaegan': GrownCVAEGAN, 'cvae': GrownCVAEGAN, 'crvaegan': GrownCrVAEGAN,
                 'acvaegan': GrownAcVAEGAN}


class GrownDiscriminator(_GrownParts, networks.ConditionalDiscriminator):
  """The conditional D at 2R (module docstring): blend(AvgPool -> from-RGB copy, from-RGB -> newest level) -> the
  completed levels -> F -> condition -> heads. Same API as `ConditionalDiscriminator`."""

  def __init__(self, config: GrownConfig, **kwargs):
    if not isinstance(config, GrownConfig):
      raise ValueError(f'config: grown models take a GrownConfig (grow_config / config_from_dict), got '
                       f'{type(config).__name__}')
    super().__init__(config, **kwargs)
    self._grown_config = config
    levels = config.completed_levels + (config.newest_level,)
    tracking.track_named(self, 'grow', {name: _discriminator_level(config, name) for name in levels})
    old = keras.Sequential([keras.layers.AveragePooling2D(2, name='pool'),
                            vaegan_networks.from_rgb_stem(config.d_channels[0], config, name='from_rgb',
                                                         batch_norm=False)], name='old')
    newest = config.newest_level
    setattr(self, f'{_FADE_PREFIX}{newest}', FadeIn(old, name=f'fade_{newest}'))

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    return cls(GrownConfig.from_dict(config.pop('config')), name=config.get('name'))

  def completed(self):
    return [getattr(self, f'grow_{name}') for name in reversed(self._grown_config.completed_levels)]

  @property
  def old_from_rgb(self) -> keras.layers.Layer:
    return self.fade.old.layers[-1]

  def fade_layers(self):
    return [self.fade]

  @property
  def alpha(self):
    return self.fade.alpha

  def set_alpha(self, alpha) -> None:
    self.fade.alpha.assign(ops.cast(alpha, self.fade.alpha.dtype))

  def features(self, x, condition=None, training=False):
    a = ops.convert_to_tensor(condition, dtype='float32') if condition is not None else None
    if a is None or len(a.shape) != 2 or a.shape[-1] not in (None, self.num_attributes):
      shape = None if a is None else tuple(a.shape)
      raise ValueError(f'a: {self.name} sees the raw attribute vector [B, {self.num_attributes}], got {shape}')
    x = ops.convert_to_tensor(x)
    _check_image_size(self, x, self._grown_config.resolution)
    new = self.newest(self.from_rgb(x, training=training), training=training)
    y = self.fade(x, new, training=training)
    for stage in self.completed():
      y = stage(y, training=training)
    return self.condition(self.trunk(y, training=training), a)

  def variable_groups(self) -> Dict[str, list]:
    """trunk (with the completed levels), d_head, q_head as the R D, plus grow_d (newest level + from-RGB copy)."""
    groups = super().variable_groups()
    groups['trunk'] = groups.get('trunk', []) + _trainable(self.completed())
    return _regroup(groups, dict(grow_d=_trainable([self.newest, self.fade])))


# ------------------------------------------------------------------------------------------------ build, grow
def build_grown_models(config: GrownConfig, batch_size: int = 4):
  """Creates and builds (one call on zeros at config.resolution) the grown generator and, for the adversarial
  models, the grown D; fresh weights, alpha 0 (restore a grown checkpoint into them to resume a stage)."""
  if not isinstance(config, GrownConfig):
    raise ValueError(f'config: build_grown_models takes a GrownConfig (grow_config / config_from_dict), got '
                     f'{type(config).__name__}; use networks.build_models for an ungrown model')
  return networks.build_models(config, batch_size, vae_class=GROWN_CLASSES[config.model],
                               disc_class=GrownDiscriminator)


def set_alpha(alpha, *models) -> None:
  """Sets the fade alpha of every grown model given (None and ungrown models are skipped)."""
  for model in models:
    if model is not None and hasattr(model, 'set_alpha'):
      model.set_alpha(alpha)


def _checkpoint_objects(vae, disc):
  objects = dict(vae=vae)
  if disc is not None:
    objects['disc'] = disc
  return objects


def _is_fade_key(key: str) -> bool:
  return any(part.startswith(_FADE_PREFIX) for part in key.split('/'))


def _value_keys(reader):
  return {key for key in reader.get_variable_to_shape_map()
          if key != '_CHECKPOINTABLE_OBJECT_GRAPH' and not key.startswith('save_counter')}


def copy_pretrained(vae, disc, vae2, disc2) -> Dict[str, int]:
  """Copies every weight of the R models (`vae`, `disc`) into the grown ones by checkpoint key, and the pretrained
  from-RGB / to-RGB into the old-branch copies; checks that every R value arrived unchanged.

  The finished blend points (`fade_*`) of an R model that was itself grown are dropped. Returns the numbers of
  checkpoint values copied, dropped, and left fresh (the new layers).
  Raises:
    ValueError: when the models do not match (D present in one only), or a value did not arrive.
  """
  if (disc is None) != (disc2 is None):
    raise ValueError(f'disc: the R and the grown models must both have a D or both have none, got '
                     f'{type(disc).__name__} and {type(disc2).__name__}')
  with tempfile.TemporaryDirectory() as directory:
    source = tf.train.Checkpoint(**_checkpoint_objects(vae, disc)).write(os.path.join(directory, 'source'))
    tf.train.Checkpoint(**_checkpoint_objects(vae2, disc2)).read(source).expect_partial()
    pairs = [(vae2.encoder_trunk.from_rgb, vae2.encoder_trunk.old_from_rgb),
             (vae2.decoder_trunk.to_rgb, vae2.decoder_trunk.old_to_rgb)]
    if disc2 is not None:
      pairs.append((disc2.from_rgb, disc2.old_from_rgb))
    for pretrained, copy in pairs:
      copy.set_weights(pretrained.get_weights())
    target = tf.train.Checkpoint(**_checkpoint_objects(vae2, disc2)).write(os.path.join(directory, 'target'))
    old, new = tf.train.load_checkpoint(source), tf.train.load_checkpoint(target)
    old_keys, new_keys = _value_keys(old), _value_keys(new)
    dropped = {key for key in old_keys if _is_fade_key(key)}
    for key in sorted(old_keys - dropped):
      if key not in new_keys:
        raise ValueError(f'grow: the R weight {key!r} has no place in the grown model (checkpoint keys changed)')
      if not (old.get_tensor(key) == new.get_tensor(key)).all():
        raise ValueError(f'grow: the R weight {key!r} was not copied into the grown model')
  for pretrained, copy in pairs:
    for a, b in zip(pretrained.get_weights(), copy.get_weights()):
      if a.shape != b.shape or not (a == b).all():
        raise ValueError(f'grow: the old-branch copy {copy.name!r} differs from {pretrained.name!r}')
  copied = len(old_keys) - len(dropped)
  return dict(copied=copied, dropped=len(dropped), fresh=len(new_keys) - copied)


def grow(vae, disc, cfg: Optional[presets.AcVAEConfig] = None, total_steps: Optional[int] = None,
         fade_steps: Optional[float] = None, steps_per_epoch: int = 0, start_step: int = 0,
         lr_mult_pretrained: float = 1.0, **overrides):
  """The R models (`vae`, `disc`; built, trained) grown to 2R: (vae2R, disc2R or None, cfg2R) with every R weight
  copied (checked), the old branches copies of the pretrained from-RGB / to-RGB, and alpha = 0.

  cfg: the R models' config (default `vae.config`). total_steps / fade_steps, steps_per_epoch, start_step,
  lr_mult_pretrained, overrides: as `grow_config` (the fade length is fixed here and stored in cfg2R). An R model
  that was itself grown must have finished its fade-in (alpha = 1); its blend points are dropped.
  """
  cfg = vae.config if cfg is None else cfg
  if tuple(vae.config.image_shape) != tuple(cfg.image_shape) or vae.config.model != cfg.model:
    raise ValueError(f'cfg: describes a {cfg.resolution}px {cfg.model}, but vae is a {vae.config.resolution}px '
                     f'{vae.config.model}; pass the config the models were built with')
  if cfg.adversarial and disc is None:
    raise ValueError(f'disc: {cfg.model} has a discriminator; pass it to grow (None only for cvae)')
  if not cfg.adversarial and disc is not None:
    raise ValueError(f'disc: {cfg.model} has no discriminator; pass disc=None')
  for model in (vae, disc):
    for fade in (model.fade_layers() if model is not None and hasattr(model, 'fade_layers') else []):
      value = float(fade.alpha.numpy())
      if value != 1.0:
        raise ValueError(f'vae / disc: the fade-in {fade.name} of the R model is at alpha {value:g}, not 1; finish '
                         f'its stage or set_alpha(1.0, vae, disc) before growing again')
  cfg2 = grow_config(cfg, total_steps=total_steps, fade_steps=fade_steps, steps_per_epoch=steps_per_epoch,
                     start_step=start_step, lr_mult_pretrained=lr_mult_pretrained, **overrides)
  vae2, disc2 = build_grown_models(cfg2)
  copy_pretrained(vae, disc, vae2, disc2)
  set_alpha(0.0, vae2, disc2)
  return vae2, disc2, cfg2
