"""The configuration record of the channel-recurrent VAE-GAN model family (thesis Ch. 5 and Ch. 6; spec ch5 §A2, §A4).

`CrVAEConfig` holds every architectural and optimisation choice of one model built by `core.vaegan.networks`. The
architecture is written as explicit layer tables, so that every scale (tiny 16x16, small32, full64 = the authors'
Birds network of spec §A2.2, the MNIST ablation networks of §A2.3) is data, not code:

  encoder_layers: ((kernel, stride, filters, activation, pad), ...), activation 'crelu' (doubles the channels)
                  or 'lrelu'; every conv is followed by batch norm. Padding is explicit (Torch convention).
  decoder_layers: (('convT', filters, crop) | ('conv', filters, pad), ...); 'convT' is a 4x4 stride-2
                  transposed conv cropped by `crop` on every side (Torch SpatialFullConvolution(4,4,2,2,crop)),
                  'conv' a 3x3 stride-1 conv; each is followed by batch norm and LeakyReLU(0.1). The output conv
                  (3x3, `decoder_out_padding`) maps to `channels` and ends in tanh (RGB) or sigmoid (MNIST).

Model kinds (the latent heads used on the inference and generation paths):
  vaegan           fc / fc, with D                       crvaegan         cr / cr, with D (+ MI head if use_mi)
  vae              fc / fc                               cvae             conv / conv
  crvae            cr / cr                               crvae_inference  cr / conv   crvae_generation conv / cr

The flat CrVAEConfig is the stored form; `cfg.architecture`, `cfg.loss_weights` and `cfg.optimisation` are its three
concerns as frozen sub-configs (`ArchitectureConfig`, `LossWeights`, `OptimisationConfig`), and
`CrVAEConfig.from_parts` puts them back together. Chapter 5's named presets are `rlcv_tf.crvae.presets`; Chapter 6's
`AcVAEConfig` (`rlcv_tf.acvae.presets`) extends this class.
"""

import dataclasses
from typing import Optional, Tuple

from rlcv_tf.core import runs

MODEL_KINDS = ('vaegan', 'crvaegan', 'vae', 'cvae', 'crvae', 'crvae_inference', 'crvae_generation')
INFERENCE_HEADS = {'vaegan': 'fc', 'vae': 'fc', 'cvae': 'conv', 'crvae': 'cr', 'crvaegan': 'cr',
                   'crvae_inference': 'cr', 'crvae_generation': 'conv'}
GENERATION_HEADS = {'vaegan': 'fc', 'vae': 'fc', 'cvae': 'conv', 'crvae': 'cr', 'crvaegan': 'cr',
                    'crvae_inference': 'conv', 'crvae_generation': 'cr'}
ADVERSARIAL_KINDS = ('vaegan', 'crvaegan')
LIKELIHOODS = ('gaussian', 'bernoulli')
RECON_MODES = ('pixel', 'disc_feature')
GATE_SCOPES = ('head+trunk', 'head')
MEAN_PATHS = ('conv', 'dense')
MNIST_OBJECTIVES = ('elbo', 'repo_alpha', 'iwae')
LOSS_BALANCES = ('thesis', 'cpu_short', 'custom')
ENCODER_ACTIVATIONS = ('crelu', 'lrelu')
DECODER_KINDS = ('convT', 'conv')
FULL_PIXELS = 64 * 64 * 3    # 12288: the image size the thesis alpha, beta, kappa were tuned for

# R5 per-block MI gradient weights (not in the thesis; spec A3.1, §8-A4).
REPO_MI_WEIGHTS = {8: (0.1, 1.5, 1.5, 1.25, 0.1, 0.1, 1.0, 1.0), 4: (0.1, 1.0, 0.1, 1.0)}

# ------------------------------------------------------------------------------------------ layer tables
# full64 = spec A2.2 (b = 32): h = 4x4x256.
ENCODER_64 = ((5, 2, 32, 'crelu', 2), (3, 2, 64, 'crelu', 1), (3, 2, 128, 'crelu', 1), (3, 1, 256, 'lrelu', 1),
              (3, 2, 256, 'crelu', 1), (3, 1, 256, 'lrelu', 1))
DECODER_64 = (('convT', 256, 1), ('conv', 256, 1), ('convT', 128, 1), ('convT', 64, 1), ('convT', 64, 1),
              ('conv', 64, 1))
# small32 (b = 16): layer 2 of E and layer 3 of Dec dropped; h = 4x4x64.
ENCODER_32 = ((5, 2, 16, 'crelu', 2), (3, 2, 32, 'crelu', 1), (3, 1, 64, 'lrelu', 1), (3, 2, 64, 'crelu', 1),
              (3, 1, 64, 'lrelu', 1))
DECODER_32 = (('convT', 64, 1), ('conv', 64, 1), ('convT', 32, 1), ('convT', 32, 1), ('conv', 32, 1))
# tiny (b = 4): h = 4x4x8.
ENCODER_16 = ((5, 2, 4, 'crelu', 2), (3, 2, 8, 'crelu', 1), (3, 1, 8, 'lrelu', 1))
DECODER_16 = (('convT', 8, 1), ('convT', 8, 1))
# MNIST (spec A2.3): 28 -> 15 -> 8 -> 4, no input CReLU. VAE / cVAE use a 5x5 p2 conv at layer 3a.
ENCODER_MNIST_CR = ((5, 2, 32, 'crelu', 3), (3, 1, 64, 'lrelu', 1), (3, 2, 64, 'crelu', 1),
                    (3, 1, 128, 'lrelu', 1), (3, 2, 128, 'crelu', 1), (3, 1, 256, 'lrelu', 1))
ENCODER_MNIST_PLAIN = ENCODER_MNIST_CR[:4] + ((5, 2, 128, 'crelu', 2), (3, 1, 256, 'lrelu', 1))
# 4 -> 8 -> 16 -> 30 (ConvT p2) -> 28 (valid 3x3 output conv).
DECODER_MNIST = (('convT', 256, 1), ('conv', 256, 1), ('convT', 128, 1), ('conv', 128, 1), ('convT', 64, 2),
                 ('conv', 64, 1))
# A reduced MNIST network for unit tests (same strides, 1/16 of the channels): h = 4x4x16.
ENCODER_MNIST_TINY_CR = ((5, 2, 4, 'crelu', 3), (3, 1, 8, 'lrelu', 1), (3, 2, 8, 'crelu', 1), (3, 1, 16, 'lrelu', 1),
                         (3, 2, 16, 'crelu', 1), (3, 1, 16, 'lrelu', 1))
ENCODER_MNIST_TINY_PLAIN = ENCODER_MNIST_TINY_CR[:4] + ((5, 2, 16, 'crelu', 2), (3, 1, 16, 'lrelu', 1))
DECODER_MNIST_TINY = (('convT', 16, 1), ('conv', 16, 1), ('convT', 8, 1), ('conv', 8, 1), ('convT', 8, 2),
                      ('conv', 8, 1))


@dataclasses.dataclass(frozen=True)
class CrVAEConfig(runs.ConfigRecord):
  """All choices of one Chapter 5 Stage-1 model and its training (see the module docstring for the tables).

  Fields left None are derived (the `resolved_*` properties): n_early (losses.num_early_blocks), lstm_hidden
  (H*W*C_h/T, = 512 at full64), lr_mult_lstm (1/T), lr_mult_dhead (1 for crVAE-GAN, 1/2 for VAE-GAN, R5).
  """
  name: str = 'custom'
  model: str = 'crvaegan'
  dataset: str = 'birds'
  # Images.
  resolution: int = 64
  channels: int = 3
  likelihood: str = 'gaussian'
  # Encoder / decoder trunks.
  input_crelu: bool = True
  encoder_layers: Tuple = ENCODER_64
  decoder_layers: Tuple = DECODER_64
  decoder_out_padding: int = 1
  base_channels: int = 32
  lrelu_slope: float = 0.1
  bn_epsilon: float = 1e-6
  bn_momentum_torch: float = 0.9      # Torch momentum; Keras momentum = 1 - this (layers.torch_bn)
  # Latent.
  n_z: int = 64
  latent_size: int = 4
  num_blocks: int = 8
  n_early: Optional[int] = None
  lstm_hidden: Optional[int] = None
  lstm_layers: int = 2
  lstm_unroll: bool = False           # unrolled LSTMs: same maths, faster tf.function tracing for short T on CPU
  mean_path: str = 'conv'             # crVAE mean path: 'conv' (RGB, A2.2) or 'dense' (MNIST, A2.3)
  variance_bn: bool = True            # BN over (B*T, hidden) after LSTM_inf (RGB yes, MNIST no)
  # Discriminator F, D head, MI head.
  d_channels: Tuple = (64, 128, 256, 256)
  d_kernels: Tuple = (5, 5, 5, 3)
  d_dense: int = 1024
  d_dropout: float = 0.5
  mbd_kernels: int = 100
  mbd_dims: int = 5
  use_mi: bool = True
  mi_channels: Tuple = (64, 64)
  # Loss weights.
  alpha1: float = 0.0003
  alpha2: float = 0.0002
  beta: float = 0.0125
  kappa: float = 0.02
  recon_mode: str = 'pixel'
  loss_balance: str = 'thesis'        # how alpha, beta, kappa (and the LSTM LR) were set: see LOSS_BALANCES
  repo_mi_weights: bool = False
  mnist_objective: str = 'elbo'
  iwae_k: int = 5
  # Optimisation (Adam per variable group, spec A3.2).
  learning_rate: float = 3e-4
  lr_mult_enc: float = 1.0
  lr_mult_dec: float = 1.0
  lr_mult_lstm: Optional[float] = None
  lr_mult_qpsi: float = 1.0
  lr_mult_trunk: float = 0.5
  lr_mult_dhead: Optional[float] = None
  adam_beta1: float = 0.9
  adam_beta2: float = 0.999
  adam_epsilon: float = 1e-8
  grad_clip: float = 5.0              # element-wise, LSTM groups only; 0 disables
  batch_size: int = 128
  d_gate_threshold: float = 0.9
  gate_scope: str = 'head+trunk'
  d_warmup: bool = True
  epochs: int = 150
  lr_step_epochs: int = 60
  lr_decay: float = 0.5
  seed: int = 0

  # ---------------------------------------------------------------------------------------- derived
  @property
  def inference_head(self) -> str:
    return INFERENCE_HEADS[self.model]

  @property
  def generation_head(self) -> str:
    return GENERATION_HEADS[self.model]

  @property
  def adversarial(self) -> bool:
    return self.model in ADVERSARIAL_KINDS

  @property
  def has_mi(self) -> bool:
    return self.adversarial and self.use_mi

  @property
  def alpha(self) -> float:
    """The single KL weight of the non-recurrent models (alpha1 == alpha2 there)."""
    return self.alpha1

  @property
  def hidden_channels(self) -> int:
    """Channels of the encoder output h (and of the decoder input)."""
    _, _, filters, act, _ = self.encoder_layers[-1]
    return filters * (2 if act == 'crelu' else 1)

  @property
  def latent_shape(self) -> Tuple[int, int, int]:
    return (self.latent_size, self.latent_size, self.n_z)

  @property
  def latent_dim(self) -> int:
    return self.latent_size * self.latent_size * self.n_z

  @property
  def image_shape(self) -> Tuple[int, int, int]:
    return (self.resolution, self.resolution, self.channels)

  @property
  def resolved_lstm_hidden(self) -> int:
    if self.lstm_hidden is not None:
      return self.lstm_hidden
    return self.latent_size * self.latent_size * self.hidden_channels // self.num_blocks

  @property
  def resolved_n_early(self) -> int:
    if self.n_early is not None:
      return self.n_early
    from rlcv_tf.core.vaegan import losses   # local import: the config stays importable without TF
    return losses.num_early_blocks(self.num_blocks)

  @property
  def resolved_lr_mult_lstm(self) -> float:
    return 1.0 / self.num_blocks if self.lr_mult_lstm is None else self.lr_mult_lstm

  @property
  def resolved_lr_mult_dhead(self) -> float:
    if self.lr_mult_dhead is not None:
      return self.lr_mult_dhead
    return 0.5 if self.model == 'vaegan' else 1.0

  @property
  def mi_block_weights(self) -> Optional[Tuple[float, ...]]:
    return REPO_MI_WEIGHTS.get(self.num_blocks) if self.repo_mi_weights else None

  # ---------------------------------------------------------------------------------------- sub-configs
  @property
  def architecture(self) -> 'ArchitectureConfig':
    """The architecture fields (`ARCHITECTURE_FIELDS`) as their own frozen config."""
    return ArchitectureConfig(**{f: getattr(self, f) for f in ARCHITECTURE_FIELDS})

  @property
  def loss_weights(self) -> 'LossWeights':
    """The objective's fields (`LOSS_FIELDS`: KL, adversarial and MI weights, reconstruction and MNIST objective)."""
    return LossWeights(**{f: getattr(self, f) for f in LOSS_FIELDS})

  @property
  def optimisation(self) -> 'OptimisationConfig':
    """The optimisation fields (`OPTIMISATION_FIELDS`: LR and multipliers, Adam, clipping, batch, D gate and
    warm-up, schedule, seed)."""
    return OptimisationConfig(**{f: getattr(self, f) for f in OPTIMISATION_FIELDS})

  @classmethod
  def from_parts(cls, architecture: Optional['ArchitectureConfig'] = None,
                 loss_weights: Optional['LossWeights'] = None, optimisation: Optional['OptimisationConfig'] = None,
                 **fields) -> 'CrVAEConfig':
    """The flat config from its sub-configs (each defaults to the flat defaults) and the remaining fields
    (name, dataset) or overrides."""
    values = {}
    for part in (architecture, loss_weights, optimisation):
      if part is not None:
        values.update(dataclasses.asdict(part))
    values.update(fields)
    return cls().replace(**values)

  # ---------------------------------------------------------------------------------------- checks
  def encoder_output_size(self) -> int:
    size = self.resolution
    for kernel, stride, _, _, pad in self.encoder_layers:
      size = (size + 2 * pad - kernel) // stride + 1
    return size

  def decoder_output_size(self) -> int:
    size = self.latent_size
    for kind, _, pad_or_crop in self.decoder_layers:
      size = (size - 1) * 2 + 4 - 2 * pad_or_crop if kind == 'convT' else size + 2 * pad_or_crop - 2
    return size + 2 * self.decoder_out_padding - 2

  def discriminator_output_size(self) -> int:
    return self.resolution // (2 ** len(self.d_channels))

  def validate(self) -> 'CrVAEConfig':
    """Raises ValueError('field: problem; valid values ...') on the first inconsistency; returns self."""

    def fail(field, problem, valid):
      raise ValueError(f'{field}: {problem}; valid values {valid}')

    def choice(field, options):
      if getattr(self, field) not in options:
        fail(field, f'got {getattr(self, field)!r}', f'are {options}')

    for field, options in (('model', MODEL_KINDS), ('likelihood', LIKELIHOODS), ('recon_mode', RECON_MODES),
                           ('gate_scope', GATE_SCOPES), ('mean_path', MEAN_PATHS),
                           ('mnist_objective', MNIST_OBJECTIVES), ('loss_balance', LOSS_BALANCES)):
      choice(field, options)
    for field in ('resolution', 'channels', 'n_z', 'latent_size', 'num_blocks', 'lstm_layers', 'batch_size',
                  'd_dense', 'mbd_kernels', 'mbd_dims', 'iwae_k', 'epochs', 'lr_step_epochs'):
      if int(getattr(self, field)) < 1:
        fail(field, f'got {getattr(self, field)}', 'are integers >= 1')
    for field in ('alpha1', 'alpha2', 'beta', 'kappa', 'grad_clip', 'lr_mult_enc', 'lr_mult_dec', 'lr_mult_qpsi',
                  'lr_mult_trunk'):
      if float(getattr(self, field)) < 0:
        fail(field, f'got {getattr(self, field)}', 'are >= 0')
    for field in ('learning_rate', 'adam_epsilon', 'bn_epsilon'):
      if float(getattr(self, field)) <= 0:
        fail(field, f'got {getattr(self, field)}', 'are > 0')
    for field in ('lr_mult_lstm', 'lr_mult_dhead', 'lstm_hidden'):
      value = getattr(self, field)
      if value is not None and value <= 0:
        fail(field, f'got {value}', 'are None (derived) or > 0')
    for field in ('adam_beta1', 'adam_beta2', 'bn_momentum_torch', 'd_dropout', 'lr_decay'):
      if not 0.0 <= float(getattr(self, field)) <= 1.0:
        fail(field, f'got {getattr(self, field)}', 'are in [0, 1]')
    if not 0.0 <= self.d_gate_threshold <= 1.0:
      fail('d_gate_threshold', f'got {self.d_gate_threshold}', 'are in [0, 1] (a D accuracy)')
    if self.likelihood == 'bernoulli' and self.adversarial:
      fail('likelihood', "'bernoulli' (MNIST) is only implemented for the VAE family, not for " + self.model,
           "are 'gaussian' for vaegan/crvaegan")
    if self.recon_mode == 'disc_feature' and not self.adversarial:
      fail('recon_mode', "'disc_feature' needs a discriminator", f"are 'pixel' for model {self.model!r}")
    for i, layer in enumerate(self.encoder_layers):
      if len(layer) != 5 or layer[3] not in ENCODER_ACTIVATIONS or min(layer[0], layer[1], layer[2]) < 1:
        fail('encoder_layers', f'entry {i} = {layer!r}',
             f'are (kernel, stride, filters, activation in {ENCODER_ACTIVATIONS}, pad) tuples')
    for i, layer in enumerate(self.decoder_layers):
      if len(layer) != 3 or layer[0] not in DECODER_KINDS or layer[1] < 1 or layer[2] < 0:
        fail('decoder_layers', f'entry {i} = {layer!r}', "are ('convT', filters, crop) or ('conv', filters, pad)")
    if self.encoder_output_size() != self.latent_size:
      fail('encoder_layers', f'map {self.resolution}px to {self.encoder_output_size()}px, not the '
           f'{self.latent_size}px latent grid', 'are layer tables whose strides reach latent_size')
    if self.decoder_output_size() != self.resolution:
      fail('decoder_layers', f'map the {self.latent_size}px latent to {self.decoder_output_size()}px, not '
           f'{self.resolution}px', 'are layer tables whose upsampling reaches resolution')
    if self.n_z % self.num_blocks:
      fail('num_blocks', f'{self.num_blocks} does not divide n_z = {self.n_z}', 'are divisors of n_z')
    if self.inference_head == 'cr' and self.hidden_channels % self.num_blocks:
      fail('num_blocks', f'{self.num_blocks} does not divide the {self.hidden_channels} encoder channels',
           'are divisors of the encoder output channels')
    if self.n_early is not None and not 0 <= self.n_early <= self.num_blocks:
      fail('n_early', f'got {self.n_early}', f'are None or 0..{self.num_blocks}')
    if self.adversarial:
      if len(self.d_channels) != len(self.d_kernels) or not self.d_channels:
        fail('d_kernels', f'{len(self.d_kernels)} kernels for {len(self.d_channels)} trunk blocks',
             'are one kernel size per d_channels entry')
      if self.discriminator_output_size() * 2 ** len(self.d_channels) != self.resolution:
        fail('d_channels', f'{len(self.d_channels)} pooling blocks do not divide {self.resolution}px evenly',
             'are trunks with resolution divisible by 2**len(d_channels)')
      if self.has_mi and len(self.mi_channels) != 2:
        fail('mi_channels', f'got {self.mi_channels!r}', 'are (conv3x3 channels, conv1x1 channels)')
      if self.batch_size % 4:
        fail('batch_size', f'{self.batch_size} is not divisible by 4 (2:1:1 D minibatch)', 'are multiples of 4')
    if self.repo_mi_weights and self.num_blocks not in REPO_MI_WEIGHTS:
      fail('repo_mi_weights', f'R5 gives MI weights only for T in {tuple(REPO_MI_WEIGHTS)}, not {self.num_blocks}',
           'are False for this T')
    return self



# ------------------------------------------------------------------------------------------------ sub-configs
# The flat CrVAEConfig stays the stored form (config.json, checkpoints' run configs, flags); these groups give its
# three concerns their own frozen configs: `cfg.architecture`, `cfg.loss_weights`, `cfg.optimisation`, and back with
# `CrVAEConfig.from_parts`. Every field is in exactly one group, or in IDENTITY_FIELDS.
IDENTITY_FIELDS = ('name', 'dataset')
ARCHITECTURE_FIELDS = ('model', 'resolution', 'channels', 'likelihood', 'input_crelu', 'encoder_layers',
                       'decoder_layers', 'decoder_out_padding', 'base_channels', 'lrelu_slope', 'bn_epsilon',
                       'bn_momentum_torch', 'n_z', 'latent_size', 'num_blocks', 'lstm_hidden', 'lstm_layers',
                       'lstm_unroll', 'mean_path', 'variance_bn', 'd_channels', 'd_kernels', 'd_dense', 'd_dropout',
                       'mbd_kernels', 'mbd_dims', 'use_mi', 'mi_channels')
LOSS_FIELDS = ('alpha1', 'alpha2', 'n_early', 'beta', 'kappa', 'recon_mode', 'loss_balance', 'repo_mi_weights', 'mnist_objective',
               'iwae_k')
OPTIMISATION_FIELDS = ('learning_rate', 'lr_mult_enc', 'lr_mult_dec', 'lr_mult_lstm', 'lr_mult_qpsi', 'lr_mult_trunk',
                       'lr_mult_dhead', 'adam_beta1', 'adam_beta2', 'adam_epsilon', 'grad_clip', 'batch_size',
                       'd_gate_threshold', 'gate_scope', 'd_warmup', 'epochs', 'lr_step_epochs', 'lr_decay', 'seed')


def _sub_config(name: str, field_names: Tuple[str, ...], doc: str):
  """A frozen dataclass with `field_names`, their types and defaults taken from CrVAEConfig (one source of truth)."""
  by_name = {f.name: f for f in dataclasses.fields(CrVAEConfig)}
  specs = [(f, by_name[f].type, dataclasses.field(default=by_name[f].default)) for f in field_names]
  cls = dataclasses.make_dataclass(name, specs, frozen=True)
  cls.__doc__ = doc
  cls.__module__ = __name__
  return cls


ArchitectureConfig = _sub_config('ArchitectureConfig', ARCHITECTURE_FIELDS,
                                 'The networks of one Chapter 5 model (the architecture fields of CrVAEConfig).')
LossWeights = _sub_config('LossWeights', LOSS_FIELDS,
                          'The objective of one Chapter 5 model (the loss fields of CrVAEConfig).')
OptimisationConfig = _sub_config('OptimisationConfig', OPTIMISATION_FIELDS,
                                 'How one Chapter 5 model is optimised (the optimisation fields of CrVAEConfig).')
