"""Run settings of a Chapter 6 training job: what it trains on, for how long, how it is evaluated.

Kept apart from `training` (and free of TensorFlow) so that the launcher validates its flags before TensorFlow
loads. The model itself is a `presets.AcVAEConfig`.
"""

import dataclasses


@dataclasses.dataclass
class RunConfig:
  """What a Chapter 6 run trains on, for how long, and how it is evaluated."""
  dataset: str = 'synth_faces'
  data_dir: str = ''
  steps: int = 1200
  log_interval_s: float = 10.0
  summary_every: int = 25
  image_every: int = 250
  checkpoint_interval_s: float = 600.0
  num_eval_images: int = 500          # held-out (val) images: reconstructions, generations, accuracy
  grid_size: int = 16
  classifier: str = ''                # an attribute_classifier.keras to evaluate with; '' = train one here
  classifier_images: int = 4000       # training images of the classifier trained here
  classifier_epochs: int = 5
  # Inception score of the generations (thesis Table 6.2) under an identity classifier: a .keras file (CelebA: the
  # thesis's CASIA VGG11 is not available; pass your own), or on synth_faces one trained here for `is_epochs` epochs
  # on its 20 identities (identity_classifier.keras; 0 = no IS). At 32 px it reaches ~18% (chance 5%) in 8 epochs,
  # so the score separates little: read it beside the real images' score.
  is_classifier: str = ''
  is_epochs: int = 0
  verify: str = 'header'
  max_skipped_fraction: float = 0.01
  cache: bool = False
  deterministic: bool = True

  def validate(self) -> 'RunConfig':
    if int(self.is_epochs) < 0:
      raise ValueError(f'is_epochs: must be >= 0 (0 = no identity classifier), got {self.is_epochs!r}')
    for name in ('steps', 'summary_every', 'image_every', 'num_eval_images', 'grid_size', 'classifier_images',
                 'classifier_epochs'):
      if int(getattr(self, name)) < 1:
        raise ValueError(f'{name}: must be a positive integer, got {getattr(self, name)!r}')
    if self.num_eval_images < 2:
      raise ValueError(f'num_eval_images: needs at least 2 images, got {self.num_eval_images}')
    if self.verify not in ('header', 'decode', 'none'):
      raise ValueError(f'verify: must be header, decode or none, got {self.verify!r}')
    return self
