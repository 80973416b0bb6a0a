"""Named presets of the Chapter 5 models (thesis Sec. 5.4, App. 5.B, 5.D; spec ch5 §A2, §A4).

The configuration record itself, `CrVAEConfig` with its layer tables (tiny 16x16, small32, full64 = the authors' Birds
network of spec §A2.2, the MNIST ablation networks of §A2.3) and its sub-configs, is
`rlcv_tf.core.vaegan.config`: Chapter 6 builds on it too. This module names the Chapter 5 presets.

Hyper-parameters are those of the thesis (T:L5339-5399, L5475; spec §A4). The thesis writes one alpha for VAE-GAN;
here alpha1 = alpha2 = alpha. How the loss weights are set for a scale is the preset's `loss_balance`:

  thesis     (full64, tiny) the thesis values, and for reduced images the spec §A4 rule that keeps the effective
             Gaussian sigma^2 = alpha * D / 2 of the 64x64x3 models (alpha, beta, kappa multiplied by 12288 / D for
             D pixels per image): sigma^2 = 1.84 in [-1, 1] units, about 20x the per-pixel variance of the data.
  cpu_short  (small32, the CPU default) NOT the thesis: sigma^2 = 0.02 (alpha2 = 2 * 0.02 / D, alpha1 / alpha2 as in
             the thesis), beta and kappa the thesis values / 4, the LSTM groups at the full learning rate (not 1/T).
             With the thesis balance a 1,500-step CPU run learns nothing visible: with sigma^2 far above the data's
             variance the KL term removes what the decoder does not yet use, the encoder's information collapses and
             the adversarial term draws one plausible image for every input (docs/crvae_default_diagnosis.md: held-out
             reconstructions at 1.03-1.31x the mean image's error). The thesis ran 150 epochs of real birds on a GPU.
"""

from typing import Tuple

from rlcv_tf.core.vaegan.config import (ADVERSARIAL_KINDS, DECODER_16, DECODER_32, DECODER_64, DECODER_MNIST,
                                        DECODER_MNIST_TINY, ENCODER_16, ENCODER_32, ENCODER_64, ENCODER_MNIST_CR,
                                        ENCODER_MNIST_PLAIN, ENCODER_MNIST_TINY_CR, ENCODER_MNIST_TINY_PLAIN,
                                        FULL_PIXELS, GENERATION_HEADS, INFERENCE_HEADS, CrVAEConfig)


# ------------------------------------------------------------------------------------------------ presets
# Thesis hyper-parameters at 64x64 (T:L5346-5348, L5394-5399, L5475): (learning rate, alpha1, alpha2, beta, kappa).
DATASET_HPARAMS = {
    ('birds', 'vaegan'): (3e-4, 0.0002, 0.0002, 0.0125, 0.0),
    ('birds', 'crvaegan'): (3e-4, 0.0003, 0.0002, 0.0125, 0.02),
    ('celeba', 'vaegan'): (3e-3, 0.0003, 0.0003, 0.01, 0.0),
    ('celeba', 'crvaegan'): (1e-3, 0.0003, 0.0002, 0.01, 0.01),
    ('lsun', 'vaegan'): (3e-4, 0.0002, 0.0002, 0.025, 0.0),
    ('lsun', 'crvaegan'): (1e-4, 0.0003, 0.0002, 0.0125, 0.01),
}
# The generated stand-ins (spec A5.2) borrow the hyper-parameters of the dataset they replace.
STAND_INS = {'synthbirds': 'birds', 'synthfaces': 'celeba', 'synthrooms': 'lsun'}
DATASETS = ('birds', 'celeba', 'lsun') + tuple(STAND_INS)
SEEDS = {('birds', 'crvaegan'): 96, ('birds', 'vaegan'): 1196}     # R5 README

_SCALES = {
    'tiny': dict(resolution=16, base_channels=4, encoder_layers=ENCODER_16, decoder_layers=DECODER_16, n_z=8,
                 num_blocks=4, lstm_hidden=32, d_channels=(8, 16), d_kernels=(5, 3), d_dense=32, mbd_kernels=10,
                 mbd_dims=3, mi_channels=(8, 8), batch_size=8, lstm_unroll=True),
    'small32': dict(resolution=32, base_channels=16, encoder_layers=ENCODER_32, decoder_layers=DECODER_32, n_z=32,
                    num_blocks=8, lstm_hidden=128, d_channels=(32, 64, 128), d_kernels=(5, 5, 3), d_dense=256,
                    mbd_kernels=100, mbd_dims=5, mi_channels=(16, 32), batch_size=64),
    'full64': dict(resolution=64, base_channels=32, encoder_layers=ENCODER_64, decoder_layers=DECODER_64, n_z=64,
                   num_blocks=8, lstm_hidden=512, d_channels=(64, 128, 256, 256), d_kernels=(5, 5, 5, 3),
                   d_dense=1024, mbd_kernels=100, mbd_dims=5, mi_channels=(64, 64), batch_size=128),
}
_VAEGAN_FULL64_TRUNK = (32, 64, 128, 256)    # spec A2.2: VAE-GAN's F is narrower at 64x64


# The loss balance of each image scale (module docstring). cpu_short's pixel variance and its beta / kappa factor.
SCALE_LOSS_BALANCE = {'tiny': 'thesis', 'small32': 'cpu_short', 'full64': 'thesis'}
CPU_SHORT_SIGMA2 = 0.02
CPU_SHORT_ADVERSARIAL_FACTOR = 0.25


def image_loss_weights(dataset: str, model: str, resolution: int, loss_balance: str, use_mi: bool = True) -> dict:
  """alpha1, alpha2, beta, kappa (and lr_mult_lstm) of an RGB model under `loss_balance` (module docstring).

  Args:
    dataset: a data-set family of DATASET_HPARAMS or a stand-in of STAND_INS ('birds', 'synthbirds', ...).
    model: 'vaegan', 'crvaegan' or 'crvaegan_nomi'.
    resolution: image side (3 channels), which gives D = 3 * resolution^2.
    loss_balance: 'thesis' or 'cpu_short'.
    use_mi: whether kappa is used (0 otherwise).
  """
  if loss_balance not in ('thesis', 'cpu_short'):
    raise ValueError(f'loss_balance: got {loss_balance!r}; valid values are thesis, cpu_short')
  base_model = 'vaegan' if model == 'vaegan' else 'crvaegan'
  _, alpha1, alpha2, beta, kappa = DATASET_HPARAMS[(STAND_INS.get(dataset, dataset), base_model)]
  pixels = resolution ** 2 * 3
  if loss_balance == 'thesis':
    rescale = FULL_PIXELS / pixels
    weights = dict(alpha1=alpha1 * rescale, alpha2=alpha2 * rescale, beta=beta * rescale,
                   kappa=kappa * rescale if use_mi else 0.0)
  else:
    late = 2.0 * CPU_SHORT_SIGMA2 / pixels
    weights = dict(alpha1=late * alpha1 / alpha2, alpha2=late, beta=beta * CPU_SHORT_ADVERSARIAL_FACTOR,
                   kappa=kappa * CPU_SHORT_ADVERSARIAL_FACTOR if use_mi else 0.0, lr_mult_lstm=1.0)
  weights['loss_balance'] = loss_balance
  return weights


def rebalance(config: CrVAEConfig, loss_balance: str) -> CrVAEConfig:
  """An RGB preset with its loss weights set by `loss_balance` instead of its own (e.g. thesis weights at small32)."""
  if config.channels != 3 or config.model not in ADVERSARIAL_KINDS:
    raise ValueError(f'loss_balance: applies to the RGB VAE-GAN / crVAE-GAN presets, not {config.name!r}')
  weights = image_loss_weights(config.dataset, config.model, config.resolution, loss_balance, config.use_mi)
  weights.setdefault('lr_mult_lstm', None)
  return config.replace(**weights).validate()


def _image_preset(scale: str, dataset: str, model: str) -> CrVAEConfig:
  base_model = 'vaegan' if model == 'vaegan' else 'crvaegan'
  lr = DATASET_HPARAMS[(STAND_INS.get(dataset, dataset), base_model)][0]
  fields = dict(_SCALES[scale])
  if model == 'vaegan' and scale == 'full64':
    fields['d_channels'] = _VAEGAN_FULL64_TRUNK
  use_mi = model == 'crvaegan'
  fields.update(image_loss_weights(dataset, model, fields['resolution'], SCALE_LOSS_BALANCE[scale], use_mi))
  fields.update(name=f'{scale}_{dataset}_{model}', model=base_model, dataset=dataset, learning_rate=lr,
                use_mi=use_mi, seed=SEEDS.get((STAND_INS.get(dataset, dataset), base_model), 0))
  return CrVAEConfig(**fields)


def _mnist_preset(name: str, model: str, num_blocks: int = 8, tiny: bool = False, **extra) -> CrVAEConfig:
  recurrent_encoder = INFERENCE_HEADS[model] == 'cr'
  if tiny:
    encoder = ENCODER_MNIST_TINY_CR if recurrent_encoder else ENCODER_MNIST_TINY_PLAIN
    decoder, n_z, batch = DECODER_MNIST_TINY, 8, 16
    extra.setdefault('lstm_unroll', True)
  else:
    encoder = ENCODER_MNIST_CR if recurrent_encoder else ENCODER_MNIST_PLAIN
    decoder, n_z, batch = DECODER_MNIST, 64, 128
  uses_lstm = 'cr' in (INFERENCE_HEADS[model], GENERATION_HEADS[model])
  fields = dict(name=name, model=model, dataset='mnist', resolution=28, channels=1, likelihood='bernoulli',
                input_crelu=False, encoder_layers=encoder, decoder_layers=decoder, decoder_out_padding=0,
                base_channels=4 if tiny else 32, n_z=n_z, num_blocks=num_blocks, mean_path='dense',
                # T in {4, 8, 16} "while maintaining other hyperparameters" (App. 5.B): the LSTM width stays at
                # the T = 8 value (512) instead of following H*W*C_h/T.
                lstm_hidden=32 if tiny else 512,
                variance_bn=False, bn_epsilon=1e-5, bn_momentum_torch=0.1, alpha1=1.0, alpha2=1.0, beta=0.0,
                kappa=0.0, use_mi=False, learning_rate=3e-3 if uses_lstm else 3e-4, batch_size=batch, epochs=200,
                lr_step_epochs=50, d_warmup=False)
  fields.update(extra)
  return CrVAEConfig(**fields)


def _build_registry():
  registry = {}
  for scale in _SCALES:
    for dataset in DATASETS:
      for model in ('vaegan', 'crvaegan', 'crvaegan_nomi'):
        preset = _image_preset(scale, dataset, model)
        registry[preset.name] = preset
  for scale in _SCALES:     # short aliases: the Birds crVAE-GAN / VAE-GAN at each scale
    registry[scale] = registry[f'{scale}_birds_crvaegan'].replace(name=scale)
    registry[f'{scale}_vaegan'] = registry[f'{scale}_birds_vaegan'].replace(name=f'{scale}_vaegan')
  mnist = [
      _mnist_preset('mnist_vae', 'vae'),
      _mnist_preset('mnist_cvae', 'cvae'),
      _mnist_preset('mnist_crvae_inference', 'crvae_inference'),
      _mnist_preset('mnist_crvae_generation', 'crvae_generation'),
      _mnist_preset('mnist_crvae_both', 'crvae'),
      _mnist_preset('mnist_crvae_t4', 'crvae', num_blocks=4),
      _mnist_preset('mnist_crvae_t8', 'crvae', num_blocks=8),
      _mnist_preset('mnist_crvae_t16', 'crvae', num_blocks=16),
      _mnist_preset('mnist_criwae', 'crvae', mnist_objective='iwae', iwae_k=5),
      # R5's objective: per-pixel mean BCE + 0.001 KL (effective beta 0.784; spec A3.5, §8-A33).
      _mnist_preset('repo_mnist_alpha', 'crvae', mnist_objective='repo_alpha', alpha1=0.001, alpha2=0.001),
      _mnist_preset('tiny_mnist_vae', 'vae', num_blocks=4, tiny=True),
      _mnist_preset('tiny_mnist_cvae', 'cvae', num_blocks=4, tiny=True),
      _mnist_preset('tiny_mnist_crvae', 'crvae', num_blocks=4, tiny=True),
      _mnist_preset('tiny_mnist_crvae_inference', 'crvae_inference', num_blocks=4, tiny=True),
      _mnist_preset('tiny_mnist_crvae_generation', 'crvae_generation', num_blocks=4, tiny=True),
      _mnist_preset('tiny_mnist_criwae', 'crvae', num_blocks=4, tiny=True, mnist_objective='iwae', iwae_k=5),
      # The T ablation at tiny size: T as in the full presets, with n_z = 16 (the tiny default 8 cannot be cut into
      # 16 blocks), so the three differ only in T.
      _mnist_preset('tiny_mnist_crvae_t4', 'crvae', num_blocks=4, tiny=True, n_z=16),
      _mnist_preset('tiny_mnist_crvae_t8', 'crvae', num_blocks=8, tiny=True, n_z=16),
      _mnist_preset('tiny_mnist_crvae_t16', 'crvae', num_blocks=16, tiny=True, n_z=16),
  ]
  for preset in mnist:
    registry[preset.name] = preset
  return registry


_PRESETS = _build_registry()


def preset_names() -> Tuple[str, ...]:
  return tuple(sorted(_PRESETS))


_BALANCED_FIELDS = frozenset({'alpha1', 'alpha2', 'beta', 'kappa', 'lr_mult_lstm'})


def get_preset(name: str, **overrides) -> CrVAEConfig:
  """The named preset with `overrides` applied (a new config, validated)."""
  if name not in _PRESETS:
    raise ValueError(f'name: unknown preset {name!r}; valid values are {preset_names()}')
  config = _PRESETS[name]
  if overrides:
    if set(overrides) & _BALANCED_FIELDS and 'loss_balance' not in overrides:
      overrides = dict(overrides, loss_balance='custom')     # config.json must not name a rule it no longer follows
    config = config.replace(**overrides)
  return config.validate()


def scale_width(config: CrVAEConfig, factor: float) -> CrVAEConfig:
  """`config` with every encoder / decoder / LSTM width multiplied by `factor` (latent n_z and T unchanged).

  For experiments that must fit a CPU budget at the thesis latent size (e.g. Table 5.B.1 at a quarter width):
  the architecture keeps its shape, strides and latent; only channel counts shrink. Widths are rounded to a
  multiple of T where the channel-recurrent path cuts them into blocks.
  """
  if not factor > 0:
    raise ValueError(f'width: must be > 0, got {factor}')
  if factor == 1:
    return config

  def width(filters):
    return max(config.num_blocks, int(round(filters * factor / config.num_blocks)) * config.num_blocks)

  encoder = tuple((k, s, width(f), act, pad) for k, s, f, act, pad in config.encoder_layers)
  decoder = tuple((kind, width(f), p) for kind, f, p in config.decoder_layers)
  lstm = None if config.lstm_hidden is None else max(1, int(round(config.lstm_hidden * factor)))
  return config.replace(name=f'{config.name}_w{factor:g}', encoder_layers=encoder, decoder_layers=decoder,
                        lstm_hidden=lstm).validate()
