"""Configuration and named presets of the Chapter 7 video statics / dynamics models (thesis Ch. 7 appendix 7.A /
7.B, T:L6894-6999; spec ch7 §3, §6, §10).

One frozen `VideoConfig` per (dataset, preset) in `PRESETS[dataset][preset]`; `get_preset(dataset, preset)` returns
it validated. What the thesis states (T = thesis line):

  * frames per clip T = 8, batch 64, Adam(0.9, 0.999, 1e-8) for every data set (T:L6937-6939);
  * the frame autoencoder is 4 basic residual blocks and its last output s is 64x8x8 (MMNIST), 64x12x12 (Weizmann),
    128x16x16 (RAVDESS) (T:L6896-6899): an x8 reduction of 64, 96 and 128 pixel frames (RAVDESS at 128x128,
    T:L6663, not 7.b.3's 96x96: spec A1);
  * BlockSTN blocks K = 2 / 4 / 8 (T:L6899-6900), 6 affine numbers per block (T:L6901-6903);
  * dim P = 32 (MMNIST) / 512 (others) (T:L6916-6918); dim p = 16 / 128 (T:L6926-6927); LSTM of 1024 units
    (T:L6931);
  * learning rates, decay x0.5 every 50 epochs, epochs and loss weights of 7.b.1-7.b.3 (T:L6952-6999);
  * Weizmann and RAVDESS pixels in [-1, 1] (T:L6961-6962, T:L6984), so their decoders end in tanh.

[proposal] (spec §3, §6, §10): the layer widths (stem 32, RB widths 32-64-64-c_T, decoder widths 64-32-32,
localisation nets Conv(32)-Conv(32, s2)-Dense(64)-Dense(6), Enc_v base width 64 with conv1 7x7x7, the S head's
Conv2D(256), the P head's Dense(512)); MMNIST in [0, 1] with a sigmoid; lambda_r / lambda_t = 0.1 / 1.0, lambda_f
= 1.0 and lambda_statics = 1.0 where only MMNIST's are stated (A16); mean reductions (A6).

Presets:
  paper  the thesis numbers above, at 64 / 96 / 128 pixels.
  small  CPU demo (spec §6): 64x64 frames for every data set, c_T = 32 (g_enc widths 16, 32, 32, 32), Enc_v width 16
         (16-32-64-128) with conv1 (3, 7, 7), S head 64, P head 128, LSTM 256, batch 32. The data sets' stated P / p
         sizes are kept. Weizmann and RAVDESS run at 64 rather than the spec's 48 because the frame-dynamics
         encoder halves the latent map twice, so the frame size must be a multiple of 32 (see `validate`).
  tiny   unit tests: 32x32 frames, c_T = 8, widths 4-8, LSTM 16, P 32, p 16, batch 4; each data set's K and colour
         channels are kept so that K = 2, 4 and 8 are all exercised.
"""

import dataclasses
from typing import Dict, Tuple

from rlcv_tf.core import runs

DATASETS = ('mmnist', 'weizmann', 'ravdess')
PRESET_NAMES = ('paper', 'small', 'tiny')
OUTPUT_ACTIVATIONS = ('sigmoid', 'tanh')
LOC_INPUTS = ('block', 'full')
REDUCTIONS = ('mean', 'sum')
# Spatial reduction of g_enc (3 stride-2 residual blocks, T:L6898-6899) times the two stride-2 convs of f_enc.
DOWNSAMPLE = 8
FRAME_CODE_DOWNSAMPLE = 4


@dataclasses.dataclass(frozen=True)
class VideoConfig(runs.ConfigRecord):
  """Every architectural and training choice of one Chapter 7 model (defaults: MMNIST, paper).

  Architecture:
    image_size, channels: square frames of image_size^2 x channels (multiple of 32, see `validate`).
    num_frames: T, frames per clip of stage 2 (8).
    output_activation: 'sigmoid' (pixels in [0, 1]) or 'tanh' (pixels in [-1, 1]) at the end of g_dec and f_dec.
    latent_channels: c_T, channels of s = g_enc(x) and of S.
    num_blocks: K, BlockSTN channel blocks; must divide latent_channels.
    ae_stem: channels of g_enc's stem conv (not in the thesis).
    ae_widths: widths of residual blocks 1-3 of g_enc (block 4 has latent_channels).
    dec_widths: widths of g_dec's three upsampling stages (x2 each).
    loc_filters, loc_units, loc_input: localisation nets: two Conv2D(loc_filters[i], 3x3), the second of stride 2,
      then Dense(loc_units), then Dense(6); loc_input 'block' (own block of source and target) or 'full' (all
      channels of both).
    video_width: Enc_v base width; layer1-4 have 1, 2, 4, 8 times it.
    conv1_kernel: Enc_v's conv1 kernel (t, h, w).
    statics_head_filters: the S head's first Conv2D width.
    dynamics_hidden: the P head's hidden Dense width.
    dynamics_dim: dim P.
    frame_code_dim: dim p.
    lstm_units: units of the predictor's single LSTM layer.
    bn_momentum, bn_epsilon: Keras BatchNormalization settings (PyTorch's 0.1 / 1e-5).
  Training (used by the trainers; 7.B):
    batch_size; stage1_lr / stage1_epochs, stage2_lr / stage2_epochs; lr_decay every lr_step_epochs epochs;
    adam_beta1, adam_beta2, adam_epsilon; lambda_r, lambda_t (7.2); lambda_statics (7.3); lambda_reg (Weizmann's
    S -> s_j* term, 0 = off); lambda_frame (7.4); lambda_pred (7.5); reduction of the reconstruction terms;
    min_pair_gap / max_pair_gap of stage-1 frame pairs; frame_stride (temporal subsampling); hflip (whole-clip
    horizontal flips).
  """
  name: str = 'mmnist_paper'
  dataset: str = 'mmnist'
  # ----------------------------------------------------------------------------------------- architecture
  image_size: int = 64
  channels: int = 1
  num_frames: int = 8
  output_activation: str = 'sigmoid'
  latent_channels: int = 64
  num_blocks: int = 2
  ae_stem: int = 32
  ae_widths: Tuple[int, int, int] = (32, 64, 64)
  dec_widths: Tuple[int, int, int] = (64, 32, 32)
  loc_filters: Tuple[int, int] = (32, 32)
  loc_units: int = 64
  loc_input: str = 'block'
  video_width: int = 64
  conv1_kernel: Tuple[int, int, int] = (7, 7, 7)
  statics_head_filters: int = 256
  dynamics_hidden: int = 512
  dynamics_dim: int = 32
  frame_code_dim: int = 16
  lstm_units: int = 1024
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5
  # ----------------------------------------------------------------------------------------- training
  batch_size: int = 64
  stage1_lr: float = 0.005
  stage1_epochs: int = 250
  stage2_lr: float = 0.001
  stage2_epochs: int = 150
  lr_decay: float = 0.5
  lr_step_epochs: int = 50
  adam_beta1: float = 0.9
  adam_beta2: float = 0.999
  adam_epsilon: float = 1e-8
  lambda_r: float = 0.1
  lambda_t: float = 1.0
  lambda_statics: float = 1.0
  lambda_reg: float = 0.0
  lambda_frame: float = 1.0
  lambda_pred: float = 0.25
  reduction: str = 'mean'
  min_pair_gap: int = 1
  max_pair_gap: int = 25
  frame_stride: int = 1
  hflip: bool = False

  # ------------------------------------------------------------------------------------------- derived
  @property
  def latent_size(self) -> int:
    """h_T = w_T of s and S (image_size / 8)."""
    return self.image_size // DOWNSAMPLE

  @property
  def latent_shape(self) -> Tuple[int, int, int]:
    return (self.latent_size, self.latent_size, self.latent_channels)

  @property
  def frame_shape(self) -> Tuple[int, int, int]:
    return (self.image_size, self.image_size, self.channels)

  @property
  def video_shape(self) -> Tuple[int, int, int, int]:
    return (self.num_frames,) + self.frame_shape

  @property
  def block_channels(self) -> int:
    """c_T / K: channels of one BlockSTN block."""
    return self.latent_channels // self.num_blocks

  @property
  def video_widths(self) -> Tuple[int, int, int, int]:
    """Enc_v layer1-4 widths."""
    return tuple(self.video_width * m for m in (1, 2, 4, 8))

  # -------------------------------------------------------------------------------------------- checks
  def validate(self) -> 'VideoConfig':
    """Raises ValueError with a one-line message on the first inconsistency; returns self."""

    def fail(message):
      raise ValueError(message)

    if self.dataset not in DATASETS:
      fail(f'dataset: got {self.dataset!r}; valid values are {DATASETS}')
    for field, options in (('output_activation', OUTPUT_ACTIVATIONS), ('loc_input', LOC_INPUTS),
                           ('reduction', REDUCTIONS)):
      if getattr(self, field) not in options:
        fail(f'{field}: got {getattr(self, field)!r}; valid values are {options}')
    for field in ('image_size', 'channels', 'num_frames', 'latent_channels', 'num_blocks', 'ae_stem', 'loc_units',
                  'video_width', 'statics_head_filters', 'dynamics_hidden', 'dynamics_dim', 'frame_code_dim',
                  'lstm_units', 'batch_size', 'stage1_epochs', 'stage2_epochs', 'lr_step_epochs', 'frame_stride',
                  'min_pair_gap', 'max_pair_gap'):
      value = getattr(self, field)
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        fail(f'{field}: got {value!r}; valid values are integers >= 1')
    for field, length in (('ae_widths', 3), ('dec_widths', 3), ('loc_filters', 2), ('conv1_kernel', 3)):
      value = getattr(self, field)
      if (not isinstance(value, tuple) or len(value) != length
          or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)):
        fail(f'{field}: got {value!r}; valid values are {length} integers >= 1')
    if self.latent_channels % self.num_blocks:
      fail(f'num_blocks: {self.latent_channels} latent channels cannot be cut into {self.num_blocks} equal '
           f'BlockSTN blocks; choose a num_blocks that divides {self.latent_channels}')
    multiple = DOWNSAMPLE * FRAME_CODE_DOWNSAMPLE
    if self.image_size % multiple:
      fail(f'image_size: got {self.image_size}; it must be a multiple of {multiple} (g_enc reduces x{DOWNSAMPLE} '
           f'and the frame-dynamics encoder x{FRAME_CODE_DOWNSAMPLE} more)')
    for field in ('stage1_lr', 'stage2_lr', 'adam_epsilon', 'bn_epsilon'):
      if not float(getattr(self, field)) > 0:
        fail(f'{field}: got {getattr(self, field)}; valid values are > 0')
    for field in ('lr_decay', 'adam_beta1', 'adam_beta2', 'bn_momentum'):
      if not 0 < float(getattr(self, field)) <= 1:
        fail(f'{field}: got {getattr(self, field)}; valid values are in (0, 1]')
    for field in ('lambda_r', 'lambda_t', 'lambda_statics', 'lambda_reg', 'lambda_frame', 'lambda_pred'):
      if not float(getattr(self, field)) >= 0:
        fail(f'{field}: got {getattr(self, field)}; valid values are >= 0')
    if self.min_pair_gap > self.max_pair_gap:
      fail(f'min_pair_gap: got {self.min_pair_gap} > max_pair_gap {self.max_pair_gap}; valid values are '
           f'<= max_pair_gap')
    return self



# -------------------------------------------------------------------------------------------- presets
# Per data set, the stated facts (T:L6898-6999) and the spec's §6 training values.
_PAPER = {
    'mmnist': dict(image_size=64, channels=1, output_activation='sigmoid', latent_channels=64, num_blocks=2,
                   ae_widths=(32, 64, 64), dec_widths=(64, 32, 32), dynamics_dim=32, frame_code_dim=16,
                   stage1_lr=0.005, stage1_epochs=250, stage2_lr=0.001, stage2_epochs=150, lambda_pred=0.25,
                   lambda_reg=0.0, min_pair_gap=1, max_pair_gap=25, frame_stride=1, hflip=False),
    'weizmann': dict(image_size=96, channels=3, output_activation='tanh', latent_channels=64, num_blocks=4,
                     ae_widths=(32, 64, 64), dec_widths=(64, 32, 32), dynamics_dim=512, frame_code_dim=128,
                     stage1_lr=1e-4, stage1_epochs=250, stage2_lr=5e-4, stage2_epochs=150, lambda_pred=0.01,
                     lambda_reg=0.5, min_pair_gap=1, max_pair_gap=25, frame_stride=1, hflip=True),
    # RB3 and g_dec's first stage widen to 128 when c_T = 128 (spec §3.1).
    'ravdess': dict(image_size=128, channels=3, output_activation='tanh', latent_channels=128, num_blocks=8,
                    ae_widths=(32, 64, 128), dec_widths=(128, 64, 32), dynamics_dim=512, frame_code_dim=128,
                    stage1_lr=1e-3, stage1_epochs=500, stage2_lr=5e-4, stage2_epochs=500, lambda_pred=0.1,
                    lambda_reg=0.0, min_pair_gap=5, max_pair_gap=25, frame_stride=3, hflip=True),
}

_SMALL = dict(image_size=64, latent_channels=32, ae_stem=16, ae_widths=(16, 32, 32), dec_widths=(32, 16, 16),
              loc_filters=(16, 16), loc_units=32, video_width=16, conv1_kernel=(3, 7, 7), statics_head_filters=64,
              dynamics_hidden=128, lstm_units=256, batch_size=32)

_TINY = dict(image_size=32, latent_channels=8, ae_stem=4, ae_widths=(4, 8, 8), dec_widths=(8, 4, 4),
             loc_filters=(4, 4), loc_units=8, video_width=4, conv1_kernel=(3, 3, 3), statics_head_filters=16,
             dynamics_hidden=16, dynamics_dim=32, frame_code_dim=16, lstm_units=16, batch_size=4)


def _build_presets() -> Dict[str, Dict[str, VideoConfig]]:
  presets = {}
  for dataset, stated in _PAPER.items():
    paper = VideoConfig().replace(name=f'{dataset}_paper', dataset=dataset, **stated)
    presets[dataset] = {
        'paper': paper,
        'small': paper.replace(name=f'{dataset}_small', **_SMALL),
        'tiny': paper.replace(name=f'{dataset}_tiny', **_TINY),
    }
  for by_preset in presets.values():
    for config in by_preset.values():
      config.validate()
  return presets


PRESETS: Dict[str, Dict[str, VideoConfig]] = _build_presets()


def get_preset(dataset: str, preset: str, **overrides) -> VideoConfig:
  """PRESETS[dataset][preset] with `overrides`, validated (one-line ValueError on a bad name or value)."""
  if dataset not in PRESETS:
    raise ValueError(f'dataset: got {dataset!r}; valid values are {DATASETS}')
  if preset not in PRESETS[dataset]:
    raise ValueError(f'preset: got {preset!r}; valid values are {PRESET_NAMES}')
  return PRESETS[dataset][preset].replace(**overrides).validate()
