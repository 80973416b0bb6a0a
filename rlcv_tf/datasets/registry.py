"""The image data sets by name: which reader serves each, what it is, and how to open one split of it.

Real data sets are read from the user's disk in their published layout (`data_dir` required); the procedurally
generated stand-ins (`synthetic.py`) are served under their own names only and never replace a missing real set.
`pipeline.make_image_dataset(name, ...)` looks names up here; the pipeline itself knows no data set.

Attributes (Chapter 6, spec ch5_6 §B5): `open_split(..., attributes=...)` keeps the attribute columns asked for by
name ('all', or names in the order wanted; `records.resolve_attributes`), and `attribute_matrix` reads a split's
attributes without touching an image (CelebA: the two annotation files; synth_faces: the sampled attributes, nothing
rendered), e.g. for the attribute statistics of a split or the conditions of a test-set evaluation.
"""

import dataclasses
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from rlcv_tf.datasets import birds
from rlcv_tf.datasets import birdsnap
from rlcv_tf.datasets import celeba
from rlcv_tf.datasets import cub
from rlcv_tf.datasets import lsun
from rlcv_tf.datasets import nabirds
from rlcv_tf.datasets import records
from rlcv_tf.datasets import synthetic


@dataclasses.dataclass(frozen=True)
class Entry:
  reader: object           # a module with DISPLAY_NAME, LAYOUT, SOURCE, STAND_IN and load_records(data_dir, split)
  real: bool               # False for the generated stand-ins
  description: str
  crop: str = 'box'        # 'box' (a window per image) | 'shorter_side' (the LSUN-style square); for tools

  @property
  def module(self) -> str:
    """The reader's module name under rlcv_tf.datasets (e.g. 'cub')."""
    return self.reader.__name__.rsplit('.', 1)[-1]


_ENTRIES: Dict[str, Entry] = {
    'celeba': Entry(celeba, True, 'CelebA aligned faces, 40 binary attributes, ROI 148x148 at (40, 15) '
                    '(spec §A5.1, §B5)'),
    'cub': Entry(cub, True, 'CUB-200-2011 birds, 200 species, square ROI of 1.5 x the bbox (spec §A5.1)'),
    'nabirds': Entry(nabirds, True, 'NABirds, 555 visual categories, bird ROI as CUB (spec §A5.1)'),
    'birdsnap': Entry(birdsnap, True, 'Birdsnap, 500 species, bird ROI as CUB (spec §A5.1)'),
    'birds': Entry(birds, True, "the thesis' Birds set: CUB-200-2011 + NABirds + Birdsnap, whichever are under "
                   'data_dir, labels offset per set, bird ROI (spec §A5.1)'),
    'lsun': Entry(lsun, True, 'LSUN (bedroom) as an image folder; square crop of 64/72 of the shorter side, '
                  'random in training, centred otherwise (spec §A5.1)', crop='shorter_side'),
    'synth_birds': Entry(synthetic, False, 'SynthBirds stand-in: 10 species on a 96x96 cluttered canvas, cropped '
                         'with the CUB ROI rule (spec §A5.2)'),
    'synth_faces': Entry(synthetic, False, 'SynthFaces stand-in: 12 CelebA-named attributes, 20 identities '
                         '(spec §B5)'),
    'synth_rooms': Entry(synthetic, False, 'SynthRooms stand-in: perspective bedrooms, 6 layout classes, cropped '
                         'like LSUN (spec §A5.2)', crop='shorter_side'),
}

# Default sizes of the generated splits (spec §B4 small preset: 10k training images).
SYNTHETIC_SIZES = {'train': 10_000, 'val': 1_000, 'test': 1_000}


def names() -> List[str]:
  return sorted(_ENTRIES)


def entry(name: str) -> Entry:
  if name not in _ENTRIES:
    raise ValueError(f'unknown image data set {name!r}; valid names: {", ".join(names())}')
  return _ENTRIES[name]


def describe(name: str) -> str:
  """One paragraph: what the data set is and, for real ones, the expected layout and where to get it."""
  e = entry(name)
  text = f'{name}: {e.description}.'
  if e.real:
    text += f' Expected layout: {e.reader.LAYOUT}. Source: {e.reader.SOURCE}.'
  else:
    text += ' Generated on the fly (no data_dir); a stand-in, not the thesis data.'
  return text


def _check_generated(name: str, data_dir: Optional[str], split: str) -> None:
  if data_dir is not None:
    raise ValueError(f'{name} is generated; data_dir must be None (got {data_dir!r})')
  if split not in SYNTHETIC_SIZES:
    raise records.DatasetError(f'split must be one of {tuple(SYNTHETIC_SIZES)}, got {split!r}')


def _require_data_dir(e: Entry, data_dir: Optional[str]) -> None:
  if data_dir is None:
    raise records.unavailable(e.reader.DISPLAY_NAME, None, 'data_dir is required for a real data set',
                              e.reader.LAYOUT, e.reader.SOURCE, e.reader.STAND_IN)


def open_split(name: str, data_dir: Optional[str], split: str, *, num_examples: Optional[int] = None,
               max_resolution: int = 64, data_seed: int = 0, num_attributes: Optional[int] = None,
               attributes: records.AttributeSelection = None) -> Union[records.Records, records.Generated]:
  """The listed images of one split (real: `Records`, before any file check) or a generated split.

  Args:
    name, data_dir, split: the data set, its root on disk (real sets; None for stand-ins) and the split.
    num_examples: size of a generated split (default SYNTHETIC_SIZES[split]); real splits are capped later.
    max_resolution: the largest output side (stand-ins render their canvas for it).
    data_seed: content seed of the stand-ins.
    num_attributes: synth_faces only: keep its first N of 12 attributes (None: all 12). Not with `attributes`.
    attributes: None (the reader's columns: CelebA's 40 in file order, synth_faces' first `num_attributes`),
      'all' (every attribute the data set has, file order), or a list of names kept in the order given; any of
      synth_faces' 12 rendered attributes can be chosen. ValueError lists the valid names.
  """
  e = entry(name)
  if attributes is not None and num_attributes is not None:
    raise ValueError(f'num_attributes={num_attributes} and attributes={attributes!r} were both given; pass only '
                     'attributes (the names wanted) or only num_attributes (the first N of synth_faces)')
  if e.real:
    _require_data_dir(e, data_dir)
    out = e.reader.load_records(data_dir, split)
    out.display_name = out.display_name or e.reader.DISPLAY_NAME
    return out if attributes is None else out.select_attributes(attributes)
  _check_generated(name, data_dir, split)
  n = SYNTHETIC_SIZES[split] if num_examples is None else int(num_examples)
  out = synthetic.make_source(name, split, n, max_resolution, data_seed, num_attributes)
  return out if attributes is None else out.select_attributes(attributes, known=celeba.ATTRIBUTE_NAMES)


def attribute_matrix(name: str, data_dir: Optional[str], split: str,
                     attributes: records.AttributeSelection = 'all', *, num_examples: Optional[int] = None,
                     data_seed: int = 0) -> Tuple[Tuple[str, ...], np.ndarray]:
  """A split's attributes without decoding (or even opening) any image.

  celeba reads `list_attr_celeba.txt` and `list_eval_partition.txt` only (the image folder need not exist);
  synth_faces samples each index's attributes (`SynthFaces.sample_attributes`) and renders nothing.

  Args:
    name: 'celeba' or 'synth_faces' (the data sets with attributes).
    data_dir: celeba's root (the same folder `open_split` reads); None for synth_faces.
    split: 'train' | 'val' | 'test'.
    attributes: 'all' (default; file order) or a list of names, kept in the order given (as `open_split`).
    num_examples: the first n rows of the split (celeba: file order, the rows a capped pipeline lists before its
      file check; synth_faces: indices 0..n-1, default SYNTHETIC_SIZES[split]).
    data_seed: synth_faces' content seed (as `open_split`).

  Returns:
    (the selected names, float32 [n, N] in {-1, +1}), row i the attributes of the split's example i.
  """
  e = entry(name)
  if e.real:
    if not hasattr(e.reader, 'split_attributes'):
      raise ValueError(f'attribute_matrix: {name} has no attributes; data sets with attributes: celeba, '
                       'synth_faces')
    _require_data_dir(e, data_dir)
    _, available, values = e.reader.split_attributes(data_dir, split)
    if num_examples is not None:
      values = values[:int(num_examples)]
    known = ()
  else:
    if name != 'synth_faces':
      raise ValueError(f'attribute_matrix: {name} has no attributes; data sets with attributes: celeba, '
                       'synth_faces')
    _check_generated(name, data_dir, split)
    n = SYNTHETIC_SIZES[split] if num_examples is None else int(num_examples)
    values, _ = synthetic.SynthFaces(seed=data_seed).sample_attributes(np.arange(n), split)
    available, known = synthetic.FACE_ATTRIBUTE_NAMES, celeba.ATTRIBUTE_NAMES
  names, columns = records.resolve_attributes(available, attributes, name, known)
  return names, np.ascontiguousarray(values[:, columns], np.float32)
