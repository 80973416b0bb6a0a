"""Run settings of a Chapter 5 training job: what it trains on, for how long, how often it reports.

Kept apart from `training` (and free of TensorFlow) so that the launcher validates its flags in a fraction of a
second, before TensorFlow loads. The model itself is a `presets.CrVAEConfig`.
"""

import dataclasses


@dataclasses.dataclass
class RunConfig:
  """What a run trains on and for how long."""
  dataset: str = 'synth_birds'        # a rlcv_tf.datasets name
  data_dir: str = ''
  steps: int = 2000
  lr_step_every: int = 0              # optimizer steps between x lr_decay; 0 = cfg.lr_step_epochs epochs
  log_interval_s: float = 10.0
  summary_every: int = 25
  image_every: int = 250
  checkpoint_interval_s: float = 600.0
  num_eval_images: int = 256
  nll_samples: int = 100              # importance samples per image for MNIST models (thesis: 10,000)
  # MNIST model selection on the validation split (selection.py): steps between scores (0 = once per epoch,
  # -1 = off: report the last weights), validation digits scored, importance samples per digit.
  select_every: int = 0
  select_images: int = 1000
  select_samples: int = 10
  grid_size: int = 64                 # images per sample sheet
  # RGB models: training images whose posteriors fix the ex-post Gaussian (expost_prior.py) after training.
  expost_images: int = 2048
  # Image data (rlcv_tf.datasets.pipeline): host-side file check ('header' | 'decode' | 'none'), the fraction of
  # unreadable images (file check and decode failures) past which a split is an incomplete copy, in-memory cache
  # of the decoded crops, element order kept under parallel decoding.
  verify: str = 'header'
  max_skipped_fraction: float = 0.01
  cache: bool = False
  deterministic: bool = True

  def validate(self) -> 'RunConfig':
    for name in ('steps', 'summary_every', 'image_every', 'num_eval_images', 'nll_samples', 'grid_size',
                 'select_images', 'select_samples'):
      if int(getattr(self, name)) < 1:
        raise ValueError(f'{name}: must be a positive integer, got {getattr(self, name)!r}')
    if int(self.expost_images) < 2:
      raise ValueError(f'expost_images: a covariance needs at least 2 images, got {self.expost_images!r}')
    for name in ('lr_step_every', 'log_interval_s', 'checkpoint_interval_s'):
      if getattr(self, name) < 0:
        raise ValueError(f'{name}: must be >= 0, got {getattr(self, name)!r}')
    if int(self.select_every) < -1:
      raise ValueError(f'select_every: must be >= -1 (0 = once per epoch, -1 = off), got {self.select_every!r}')
    if self.verify not in ('header', 'decode', 'none'):
      raise ValueError(f'verify: must be header, decode or none, got {self.verify!r}')
    if not 0.0 <= float(self.max_skipped_fraction) < 1.0:
      raise ValueError(f'max_skipped_fraction: must be in [0, 1), got {self.max_skipped_fraction!r}')
    return self
