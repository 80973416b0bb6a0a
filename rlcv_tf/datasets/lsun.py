"""LSUN (bedroom) as an image folder (spec ch5_6 §A5.1; thesis T:L4952-4953).

The official release is LMDB databases of WebP images (`bedroom_train_lmdb/`, `bedroom_val_lmdb/`). Convert them
once into folders with `scripts/lsun_lmdb_to_folder.py` (needs the optional `lmdb` package); this reader then globs
`<data_dir>/<split>/**` recursively for .jpg/.jpeg/.png/.webp files, in sorted order.

Crops (a `ShorterSideCrop` rule the pipeline applies to the decoded size): a square of side 64/72 of the shorter
side, which is the spec's "shorter side -> 72, random crop 64" [P] at any resolution R (shorter side
round(72 R / 64)). Training places it at
random, evaluation centres it. For R = 224 the spec's "shorter side 256, crop 224" is ~1.6 % looser; the ratio is
kept fixed here so the hires copy comes from the same window.
"""

import os

import numpy as np

from rlcv_tf.datasets import records as records_lib

DISPLAY_NAME = 'LSUN'
EXTENSIONS = ('.jpg', '.jpeg', '.png', '.webp')
LAYOUT = ('<data_dir>/train/**/*.jpg|png|webp and <data_dir>/val/**/*.jpg|png|webp (image folders; convert the '
          'official LMDB release with scripts/lsun_lmdb_to_folder.py --split train|val, which needs `pip install '
          'lmdb`)')
SOURCE = 'https://github.com/fyu/lsun (download.py -c bedroom; bedroom_train_lmdb.zip, bedroom_val_lmdb.zip)'
STAND_IN = 'synth_rooms'
CROP_FRACTION = 64.0 / 72.0  # spec §A5.1: shorter side -> 72, crop 64
SPLIT_DIRS = {'train': 'train', 'val': 'val', 'test': 'val'}  # LSUN has no public test labels: test = val [P]


def list_images(folder: str):
  """All image files under `folder` (recursive, sorted, so the index is the same on every run)."""
  out = []
  for root, dirs, files in os.walk(folder, followlinks=True):
    dirs.sort()
    out.extend(os.path.join(root, f) for f in sorted(files) if f.lower().endswith(EXTENSIONS))
  return out


def load_records(data_dir: str, split: str) -> records_lib.Records:
  if split not in SPLIT_DIRS:
    raise records_lib.DatasetError(f'LSUN split must be one of {list(SPLIT_DIRS)}, got {split!r}')
  folder = os.path.join(data_dir, SPLIT_DIRS[split])
  if not os.path.isdir(folder):
    raise records_lib.unavailable(DISPLAY_NAME, data_dir, f'missing folder {SPLIT_DIRS[split]}/', LAYOUT, SOURCE,
                               STAND_IN)
  paths = list_images(folder)
  if not paths:
    raise records_lib.unavailable(DISPLAY_NAME, data_dir, f'no {"/".join(EXTENSIONS)} files under '
                               f'{SPLIT_DIRS[split]}/', LAYOUT, SOURCE, STAND_IN)
  return records_lib.Records(paths=np.array(paths, dtype=object), labels=np.zeros(len(paths), np.int64),
                             crop=records_lib.ShorterSideCrop(CROP_FRACTION), num_classes=1,
                             display_name=DISPLAY_NAME)
