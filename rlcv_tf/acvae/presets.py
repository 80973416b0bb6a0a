"""Configuration and named presets of the Chapter 6 models (thesis Sec. 6.3-6.5, T:L5700-6000; spec ch5_6 Part B2
tables, B3, B4 values, §8-A6, A7, A16, A17, A36).

Four models, one `AcVAEConfig` each:

  cvaegan    cVAE-GAN (Sec. 6.3.3): FC latent of H*W*n_z (1024 at full64), attribute embeddings in front of the
             encoder's and the decoder's FC layers, FC prior p(z|a); conditional D without MI head.
  cvae       cVAE (Sec. 6.3.1, Fig. 6.1): cVAE-GAN without D.
  crvaegan   conditional crVAE-GAN (Sec. 6.4.1): the attribute embedding in front of every encoder block and of every
             LSTM_gen step, FC prior; conditional D with MI head.
  acvaegan   acVAE-GAN (Sec. 6.4.2): the attended attributes a_t = a * M[t] instead of a at every step, and a causal
             LSTM prior over a_1..a_T; D and MI head as crVAE-GAN.

`AcVAEConfig` extends Chapter 5's `core.vaegan.config.CrVAEConfig` (the layer tables, LSTM, D, optimiser and schedule
fields keep their meaning, so the shared trunks and the D of `core.vaegan.networks` read it directly) with the Chapter 6
fields: the attributes (N, their names), the attention regularisers, the D minibatch mix, the D-side Adam beta1, the
LSTM prior's width, the FC prior's init and the epoch size. Everything else is derived from the spec B2 tables,
which are written in R6's terms (b = `base_channels`, w = 4, per-block latent H*W*n_z/T):

  encoder / D per-block attribute channels  n_z / T           (8 at full64: e, g = Dense(N -> 128) -> 4x4x8)
  decoder per-step attribute embedding d    H*W*n_z/T         (128 at full64)
  LSTM prior width                          H*W*n_z/T         (128 at full64; `prior_lstm_hidden` overrides)
  cVAE-GAN FC widths                        H*W*n_z           (1024: attribute embeddings, encoder FC, prior)
  cVAE-GAN D attribute embedding            2*H*W*n_z         (2048)
  D dense (both kinds)                      `d_dense` = H*W*b_D (512 at full64, b_D = d_channels[0] = 32)
  MI head                                   (2*b_D, n_z)      (64, 64)

Values (spec B4 and the thesis T:L5993-5999): Adam eps 1e-8, beta1 0.9, beta2 0.999 for every group (the thesis;
R6's scripts use beta1 0.5 on the D side, which only the `repo_` presets set, §8-A7); learning rate 3e-4 for
cVAE-GAN (and cVAE) and 1e-3 for crVAE-GAN and acVAE-GAN; KL weights alpha = 3e-4 (cVAE-GAN), alpha1 = 3e-4 on the
first 3 of 8 (2 of 4) blocks and alpha2 = 2e-4 after (crVAE, acVAE); beta 0.0025; kappa 0.01; lambda_ent 0.05;
lambda_ds 0 (the thesis: no load-balancing term is needed, T:L5885-5889; R6 uses 0.05, `repo_` presets); D gate at
90 % accuracy on the mixed batch with gate scope 'head' (R6, §8-A36); the D minibatch in thirds as the thesis says
(real, mismatched, and fake split equally into prior samples and reconstructions: period 6, so the batch is 120 at
full64 and 60 at small32 instead of 128 / 64), or R6's quarters (`d_mix='quarters'`, §8-A6); LR / T on the LSTM
groups and the prior, LR / 2 on the D head, trunk, MI head and D from-RGB, LR on the attention; BN eps 1e-6, Torch
momentum 0.9; LR x0.5 every 60 epochs; 150 epochs; seed 196.

Scales:
  full64   spec B2: CelebA 64x64, b = 32, n_z = 64 (latent 4x4x64), N = 40, T = 8.
  small32  spec B4's CPU preset: SynthFaces 32x32 with its first 8 attributes, T = 4, b = 16, n_z = 32, 20 epochs of
           10k images; alpha, beta, kappa x4 (the spec §A4 rule, 12288 / D pixels, that keeps the Gaussian sigma^2 of
           the 64x64 models). Batch 60 (thirds).
  tiny     for tests: SynthFaces 16x16, N = 5, T = 4, b = 4, n_z = 8 (weights by the same rule, x16). Batch 12.
"""

import dataclasses
from typing import Dict, Optional, Tuple

from rlcv_tf.core.vaegan import config as vaegan_config
from rlcv_tf.datasets import celeba
from rlcv_tf.datasets import synthetic

MODELS = ('cvaegan', 'cvae', 'crvaegan', 'acvaegan')
RECURRENT_MODELS = ('crvaegan', 'acvaegan')
ADVERSARIAL_MODELS = ('cvaegan', 'crvaegan', 'acvaegan')
# The Chapter 5 kind with the same heads and D-presence, under which the shared fields are validated.
CHAPTER5_KINDS = {'cvaegan': 'vaegan', 'cvae': 'vae', 'crvaegan': 'crvaegan', 'acvaegan': 'crvaegan'}
D_MIXES = ('thirds', 'quarters')
D_MIX_PERIODS = {'thirds': 6, 'quarters': 4}
SCALES = ('tiny', 'small32', 'full64')

# Spec B4 at 64x64: (learning rate, alpha1, alpha2, beta, kappa).
THESIS_HPARAMS = {
    'cvaegan': (3e-4, 0.0003, 0.0003, 0.0025, 0.0),
    'cvae': (3e-4, 0.0003, 0.0003, 0.0, 0.0),
    'crvaegan': (1e-3, 0.0003, 0.0002, 0.0025, 0.01),
    'acvaegan': (1e-3, 0.0003, 0.0002, 0.0025, 0.01),
}
LAMBDA_ENT = 0.05
REPO_LAMBDA_DS = 0.05          # R6's doubly-stochastic weight (spec §8-A17)
REPO_D_ADAM_BETA1 = 0.5        # R6's scripts on the D head, trunk, MI head and D from-RGB (spec §8-A7)
SEED = 196                     # R6 script.md


@dataclasses.dataclass(frozen=True)
class AcVAEConfig(vaegan_config.CrVAEConfig):
  """All choices of one Chapter 6 model and its training (see the module docstring for the derived widths).

  The Chapter 5 fields keep their meaning; the defaults here are full64 acVAE-GAN. New fields:
    num_attributes: N.
    attribute_names: the N attribute names (file order), for attention tables.
    lambda_ent: weight of the attention entropy term (acVAE).
    lambda_ds: weight of the doubly-stochastic (even load over steps) term (acVAE).
    d_mix: 'thirds' (the thesis) or 'quarters' (R6): the D minibatch composition.
    d_adam_beta1: Adam beta1 of the D-side groups (D head, trunk, MI head); None = `adam_beta1`.
    lr_mult_attention: LR multiplier of the attention W.
    lr_mult_prior: LR multiplier of the prior; None = the LSTM groups' (1/T).
    prior_lstm_hidden: acVAE's LSTM prior width; None = H*W*n_z/T (128 at full64).
    prior_init_scale: > 0: the FC prior's first Dense kernel starts U(+-scale) (cVAE-GAN: 1e-4, spec B2); 0 = the
      default Dense init.
    examples_per_epoch: training images per epoch; 0 = the whole training split.
  """
  name: str = 'custom'
  model: str = 'acvaegan'
  dataset: str = 'celeba'
  d_channels: Tuple = (32, 64, 128, 256)
  d_kernels: Tuple = (5, 5, 5, 3)
  d_dense: int = 512
  mi_channels: Tuple = (64, 64)
  alpha1: float = 0.0003
  alpha2: float = 0.0002
  beta: float = 0.0025
  kappa: float = 0.01
  learning_rate: float = 1e-3
  lr_mult_qpsi: float = 0.5
  lr_mult_trunk: float = 0.5
  lr_mult_dhead: Optional[float] = 0.5
  batch_size: int = 120
  gate_scope: str = 'head'
  seed: int = SEED
  # Chapter 6.
  num_attributes: int = celeba.NUM_ATTRIBUTES
  attribute_names: Tuple = celeba.ATTRIBUTE_NAMES
  lambda_ent: float = LAMBDA_ENT
  lambda_ds: float = 0.0
  d_mix: str = 'thirds'
  d_adam_beta1: Optional[float] = None
  lr_mult_attention: float = 1.0
  lr_mult_prior: Optional[float] = None
  prior_lstm_hidden: Optional[int] = None
  prior_init_scale: float = 0.0
  examples_per_epoch: int = 0

  # ---------------------------------------------------------------------------------------- model kind
  @property
  def inference_head(self) -> str:
    return 'cr' if self.model in RECURRENT_MODELS else 'fc'

  @property
  def generation_head(self) -> str:
    return self.inference_head

  @property
  def adversarial(self) -> bool:
    return self.model in ADVERSARIAL_MODELS

  @property
  def recurrent(self) -> bool:
    """Channel-recurrent (crVAE-GAN, acVAE-GAN)."""
    return self.model in RECURRENT_MODELS

  @property
  def attentive(self) -> bool:
    """acVAE-GAN: attended attributes and the LSTM prior."""
    return self.model == 'acvaegan'

  @property
  def has_mi(self) -> bool:
    """The MI head q_psi (crVAE-GAN, acVAE-GAN with use_mi)."""
    return self.recurrent and self.use_mi

  # ---------------------------------------------------------------------------------------- derived widths
  @property
  def latent_block_channels(self) -> int:
    """n_z / T: latent channels per block, and the attribute channels per block of the encoder and D (8)."""
    return self.n_z // self.num_blocks

  @property
  def latent_block_dim(self) -> int:
    """H*W*n_z/T: numbers per latent block (128); the decoder's per-step attribute embedding d."""
    return self.latent_size * self.latent_size * self.latent_block_channels

  @property
  def resolved_prior_lstm_hidden(self) -> int:
    return self.latent_block_dim if self.prior_lstm_hidden is None else int(self.prior_lstm_hidden)

  @property
  def fc_dim(self) -> int:
    """cVAE-GAN's FC width H*W*n_z (1024): attribute embeddings, encoder FC, prior hidden layer."""
    return self.latent_dim

  @property
  def d_attribute_dim(self) -> int:
    """cVAE-GAN's D attribute embedding 2*H*W*n_z (2048)."""
    return 2 * self.latent_dim

  @property
  def d_mix_period(self) -> int:
    return D_MIX_PERIODS[self.d_mix]

  @property
  def resolved_d_adam_beta1(self) -> float:
    return self.adam_beta1 if self.d_adam_beta1 is None else float(self.d_adam_beta1)

  @property
  def resolved_lr_mult_prior(self) -> float:
    return self.resolved_lr_mult_lstm if self.lr_mult_prior is None else float(self.lr_mult_prior)

  @property
  def alpha(self) -> float:
    """cVAE-GAN's single KL weight (alpha1 == alpha2 in its presets)."""
    return self.alpha1

  # ---------------------------------------------------------------------------------------- checks
  def chapter5_view(self) -> vaegan_config.CrVAEConfig:
    """The shared fields as a Chapter 5 config of the kind with the same heads (CHAPTER5_KINDS), for its checks."""
    shared = {f.name: getattr(self, f.name) for f in dataclasses.fields(vaegan_config.CrVAEConfig)}
    # The D minibatch period is checked here (d_mix), not by Chapter 5's 2:1:1 rule.
    shared.update(model=CHAPTER5_KINDS.get(self.model, 'crvaegan'), batch_size=4)
    return vaegan_config.CrVAEConfig(**shared)

  def validate(self) -> 'AcVAEConfig':
    """Raises ValueError('field: problem; valid values ...') on the first inconsistency; returns self."""

    def fail(field, problem, valid):
      raise ValueError(f'{field}: {problem}; valid values {valid}')

    if self.model not in MODELS:
      fail('model', f'got {self.model!r}', f'are {MODELS}')
    if self.d_mix not in D_MIXES:
      fail('d_mix', f'got {self.d_mix!r}', f'are {D_MIXES}')
    if self.likelihood != 'gaussian':
      fail('likelihood', f'got {self.likelihood!r}', "are 'gaussian' (RGB faces in [-1, 1])")
    self.chapter5_view().validate()
    if int(self.batch_size) < 1:
      fail('batch_size', f'got {self.batch_size}', 'are integers >= 1')
    if int(self.num_attributes) < 1:
      fail('num_attributes', f'got {self.num_attributes}', 'are integers >= 1')
    if len(self.attribute_names) != self.num_attributes:
      fail('attribute_names', f'{len(self.attribute_names)} names for num_attributes = {self.num_attributes}',
           'are one name per attribute')
    for field in ('lambda_ent', 'lambda_ds', 'lr_mult_attention', 'prior_init_scale', 'examples_per_epoch'):
      if float(getattr(self, field)) < 0:
        fail(field, f'got {getattr(self, field)}', 'are >= 0')
    for field in ('lr_mult_prior', 'prior_lstm_hidden'):
      value = getattr(self, field)
      if value is not None and value <= 0:
        fail(field, f'got {value}', 'are None (derived) or > 0')
    if self.d_adam_beta1 is not None and not 0.0 <= float(self.d_adam_beta1) <= 1.0:
      fail('d_adam_beta1', f'got {self.d_adam_beta1}', 'are None (= adam_beta1) or in [0, 1]')
    if self.adversarial and self.batch_size % self.d_mix_period:
      fail('batch_size', f'{self.batch_size} is not divisible by {self.d_mix_period} (d_mix {self.d_mix!r})',
           f'are multiples of {self.d_mix_period}')
    if self.recurrent and self.adversarial and self.d_channels[-1] % self.num_blocks:
      fail('num_blocks', f'{self.num_blocks} does not divide the {self.d_channels[-1]} D trunk channels',
           'are divisors of d_channels[-1]')
    return self

  # ---------------------------------------------------------------------------------------- I/O
  def replace(self, **overrides) -> 'AcVAEConfig':
    unknown = set(overrides) - {f.name for f in dataclasses.fields(self)}
    if unknown:
      raise ValueError(f'{sorted(unknown)[0]}: unknown AcVAEConfig field; valid values are '
                       f'{[f.name for f in dataclasses.fields(self)]}')
    return super().replace(**overrides)


# ------------------------------------------------------------------------------------------------ presets
_SCALES = {
    'tiny': dict(dataset='synth_faces', resolution=16, base_channels=4, encoder_layers=vaegan_config.ENCODER_16,
                 decoder_layers=vaegan_config.DECODER_16, n_z=8, num_blocks=4, num_attributes=5, d_channels=(4, 8),
                 d_kernels=(5, 3), d_dense=64, mbd_kernels=10, mbd_dims=3, mi_channels=(8, 8), batch_size=12,
                 lstm_unroll=True),
    'small32': dict(dataset='synth_faces', resolution=32, base_channels=16, encoder_layers=vaegan_config.ENCODER_32,
                    decoder_layers=vaegan_config.DECODER_32, n_z=32, num_blocks=4, num_attributes=8,
                    d_channels=(16, 32, 64), d_kernels=(5, 5, 3), d_dense=256, mbd_kernels=100, mbd_dims=5,
                    mi_channels=(32, 32), batch_size=60, lstm_unroll=True, epochs=20, examples_per_epoch=10_000),
    'full64': dict(dataset='celeba', resolution=64, base_channels=32, encoder_layers=vaegan_config.ENCODER_64,
                   decoder_layers=vaegan_config.DECODER_64, n_z=64, num_blocks=8, num_attributes=40,
                   d_channels=(32, 64, 128, 256), d_kernels=(5, 5, 5, 3), d_dense=512, mbd_kernels=100, mbd_dims=5,
                   mi_channels=(64, 64), batch_size=120, epochs=150),
}


def attribute_names(dataset: str, num_attributes: int) -> Tuple[str, ...]:
  """The first `num_attributes` names of the data set's attribute list (CelebA file order / SynthFaces order)."""
  names = {'celeba': celeba.ATTRIBUTE_NAMES, 'synth_faces': synthetic.FACE_ATTRIBUTE_NAMES}
  if dataset not in names:
    raise ValueError(f'dataset: no attribute names for {dataset!r}; valid values are {tuple(names)}')
  if not 1 <= num_attributes <= len(names[dataset]):
    raise ValueError(f'num_attributes: {dataset} has {len(names[dataset])} attributes, got {num_attributes}')
  return tuple(names[dataset][:num_attributes])


def loss_weights(model: str, resolution: int) -> Dict[str, float]:
  """alpha1, alpha2, beta, kappa and the learning rate of `model` at `resolution` x `resolution` RGB: the spec B4
  values at 64x64, alpha, beta, kappa x 12288 / D for D pixels (spec §A4's rule; x4 at 32x32, x16 at 16x16)."""
  if model not in MODELS:
    raise ValueError(f'model: got {model!r}; valid values are {MODELS}')
  lr, alpha1, alpha2, beta, kappa = THESIS_HPARAMS[model]
  rescale = vaegan_config.FULL_PIXELS / (3 * resolution ** 2)
  return dict(learning_rate=lr, alpha1=alpha1 * rescale, alpha2=alpha2 * rescale, beta=beta * rescale,
              kappa=kappa * rescale)


def make_preset(scale: str, model: str, **overrides) -> AcVAEConfig:
  """The `model` at `scale` (module docstring), with `overrides` applied; validated."""
  if scale not in _SCALES:
    raise ValueError(f'scale: got {scale!r}; valid values are {SCALES}')
  if model not in MODELS:
    raise ValueError(f'model: got {model!r}; valid values are {MODELS}')
  fields = dict(_SCALES[scale])
  fields.update(loss_weights(model, fields['resolution']))
  fields.update(
      name=f'{scale}_{model}', model=model,
      attribute_names=attribute_names(fields['dataset'], fields['num_attributes']),
      use_mi=model in RECURRENT_MODELS,
      lambda_ent=LAMBDA_ENT if model == 'acvaegan' else 0.0,
      prior_init_scale=1e-4 if model in ('cvaegan', 'cvae') else 0.0,
      d_warmup=model in ADVERSARIAL_MODELS)
  fields.update(overrides)
  return AcVAEConfig(**fields).validate()


def _repo_preset(model: str) -> AcVAEConfig:
  """full64 with R6's scripts' choices where they differ from the thesis: quarters (batch 128), beta1 0.5 on the D
  side, and (acVAE) the doubly-stochastic attention term."""
  return make_preset('full64', model, name=f'repo_full64_{model}', d_mix='quarters', batch_size=128,
                     d_adam_beta1=REPO_D_ADAM_BETA1, lambda_ds=REPO_LAMBDA_DS if model == 'acvaegan' else 0.0)


def _build_registry() -> Dict[str, AcVAEConfig]:
  registry = {}
  for scale in SCALES:
    for model in MODELS:
      preset = make_preset(scale, model)
      registry[preset.name] = preset
  for model in ADVERSARIAL_MODELS:
    preset = _repo_preset(model)
    registry[preset.name] = preset
  return registry


_PRESETS = _build_registry()


def preset_names() -> Tuple[str, ...]:
  return tuple(sorted(_PRESETS))


def get_preset(name: str, **overrides) -> AcVAEConfig:
  """The named preset (`<scale>_<model>` or `repo_full64_<model>`) with `overrides` applied; validated."""
  if name not in _PRESETS:
    raise ValueError(f'name: unknown Chapter 6 preset {name!r}; valid values are {preset_names()}')
  config = _PRESETS[name]
  if overrides:
    config = config.replace(**overrides)
  return config.validate()
