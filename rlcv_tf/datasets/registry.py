"""The image data sets by name: which reader serves each, what it is, and how to open one split of it.

Real data sets are read from the user's disk in their published layout (`data_dir` required); the procedurally
generated stand-ins (`synthetic.py`) are served under their own names only and never replace a missing real set.
`pipeline.make_image_dataset(name, ...)` looks names up here; the pipeline itself knows no data set.
"""

import dataclasses
from typing import Dict, List, Optional, Union

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


def open_split(name: str, data_dir: Optional[str], split: str, *, num_examples: Optional[int] = None,
               max_resolution: int = 64, data_seed: int = 0,
               num_attributes: Optional[int] = None) -> Union[records.Records, records.Generated]:
  """The listed images of one split (real: `Records`, before any file check) or a generated split."""
  e = entry(name)
  if e.real:
    if data_dir is None:
      raise records.unavailable(e.reader.DISPLAY_NAME, None, 'data_dir is required for a real data set',
                                e.reader.LAYOUT, e.reader.SOURCE, e.reader.STAND_IN)
    out = e.reader.load_records(data_dir, split)
    out.display_name = out.display_name or e.reader.DISPLAY_NAME
    return out
  if data_dir is not None:
    raise ValueError(f'{name} is generated; data_dir must be None (got {data_dir!r})')
  if split not in SYNTHETIC_SIZES:
    raise records.DatasetError(f'split must be one of {tuple(SYNTHETIC_SIZES)}, got {split!r}')
  n = SYNTHETIC_SIZES[split] if num_examples is None else int(num_examples)
  return synthetic.make_source(name, split, n, max_resolution, data_seed, num_attributes)
