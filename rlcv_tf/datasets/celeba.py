"""CelebA reader (spec ch5_6 §A5.1, §B5; thesis T:L4951-4952, L5956-5963).

Published layout of the "Align&Cropped Images" release:
  * `list_attr_celeba.txt`: line 1 the image count, line 2 the 40 attribute names, then `000001.jpg` followed by 40
    values in {-1, 1}, separated by runs of spaces;
  * `list_eval_partition.txt`: `000001.jpg 0|1|2` = train / val / test (the official split: 162,770 / 19,867 /
    19,962; the thesis' 163,770 is a typo, spec §8-A9);
  * `img_align_celeba/000001.jpg` ... (178x218 JPEGs);
  * optionally `identity_CelebA.txt` (`000001.jpg 2880`), used for the 'label' when present.
The Google-Drive archive nests these as `Anno/`, `Eval/` and `Img/img_align_celeba/`; both layouts are accepted.

ROI [P, spec §A5.1]: a loose face crop, the 148x148 box with top = 40, left = 15, resized (antialiased) to 64/128.
"""

import os
from typing import Dict, List, Optional, Tuple

import numpy as np

from rlcv_tf.datasets import records as records_lib

DISPLAY_NAME = 'CelebA'
ATTR_FILE = 'list_attr_celeba.txt'
PARTITION_FILE = 'list_eval_partition.txt'
IDENTITY_FILE = 'identity_CelebA.txt'
IMAGE_DIR = 'img_align_celeba'
LAYOUT = (f'<data_dir>/{ATTR_FILE}, <data_dir>/{PARTITION_FILE} and <data_dir>/{IMAGE_DIR}/000001.jpg ... '
          f'(the aligned 178x218 JPEGs; the Google-Drive nesting Anno/{ATTR_FILE}, Eval/{PARTITION_FILE}, '
          f'Img/{IMAGE_DIR}/ also works)')
SOURCE = ('https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (img_align_celeba.zip, list_attr_celeba.txt, '
          'list_eval_partition.txt)')
STAND_IN = 'synth_faces'
ROI = (40.0, 15.0, 148.0, 148.0)  # (top, left, height, width) in the 178x218 aligned image
SPLIT_IDS = {'train': 0, 'val': 1, 'test': 2}
NUM_ATTRIBUTES = 40
# The 40 attribute names in file order (what a correct list_attr_celeba.txt has on line 2), for tables like 6.1.
ATTRIBUTE_NAMES = tuple(
    '5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair '
    'Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup '
    'High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose '
    'Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat '
    'Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young'.split())


def read_attributes(path: str) -> Tuple[List[str], Tuple[str, ...], np.ndarray]:
  """Parses `list_attr_celeba.txt` -> (file names [N], the 40 attribute names, int8 [N, 40] in {-1, +1}).

  Raises records_lib.DatasetError on a malformed file (wrong count, wrong number of values, a value not in {-1, 1}).
  """
  with open(path) as f:
    lines = [line for line in f.read().splitlines() if line.strip()]
  if len(lines) < 2:
    raise records_lib.DatasetError(f'{path}: expected a count line and a names line, got {len(lines)} lines')
  try:
    count = int(lines[0].split()[0])
  except ValueError as e:
    raise records_lib.DatasetError(f'{path}: line 1 should be the image count, got {lines[0]!r}') from e
  names = tuple(lines[1].split())
  if len(names) != NUM_ATTRIBUTES:
    raise records_lib.DatasetError(f'{path}: line 2 should hold {NUM_ATTRIBUTES} attribute names, got {len(names)}')
  rows = [line.split() for line in lines[2:]]
  if len(rows) != count:
    raise records_lib.DatasetError(f'{path}: line 1 announces {count} images but {len(rows)} follow (truncated?)')
  files = []
  values = np.zeros((len(rows), NUM_ATTRIBUTES), np.int8)
  for i, row in enumerate(rows):
    if len(row) != NUM_ATTRIBUTES + 1:
      raise records_lib.DatasetError(f'{path}: line {i + 3} has {len(row) - 1} values, expected {NUM_ATTRIBUTES}')
    files.append(row[0])
    values[i] = [int(v) for v in row[1:]]
  if not np.isin(values, (-1, 1)).all():
    raise records_lib.DatasetError(f'{path}: attribute values must be -1 or 1')
  return files, names, values


def read_partition(path: str) -> Dict[str, int]:
  """Parses `list_eval_partition.txt` -> {file name: 0 (train) | 1 (val) | 2 (test)}."""
  out = {}
  with open(path) as f:
    for i, line in enumerate(f):
      parts = line.split()
      if not parts:
        continue
      if len(parts) != 2 or parts[1] not in ('0', '1', '2'):
        raise records_lib.DatasetError(f'{path}: line {i + 1} should be "<file> 0|1|2", got {line.strip()!r}')
      out[parts[0]] = int(parts[1])
  return out


def read_identities(path: str) -> Dict[str, int]:
  """Parses `identity_CelebA.txt` -> {file name: identity id}."""
  out = {}
  with open(path) as f:
    for line in f:
      parts = line.split()
      if len(parts) == 2:
        out[parts[0]] = int(parts[1])
  return out


def _find(data_dir: str, name: str, subdirs) -> Optional[str]:
  for sub in subdirs:
    path = os.path.join(data_dir, sub, name)
    if os.path.exists(path):
      return path
  return None


def _locate(data_dir: str, need_images: bool) -> Tuple[str, str, Optional[str]]:
  """(attribute file, partition file, image folder or None) under `data_dir`; the unavailable error otherwise."""
  attr_path = _find(data_dir, ATTR_FILE, ('', 'Anno'))
  part_path = _find(data_dir, PARTITION_FILE, ('', 'Eval', 'Anno'))
  image_dir = _find(data_dir, IMAGE_DIR, ('', 'Img'))
  wanted = [(ATTR_FILE, attr_path), (PARTITION_FILE, part_path)]
  if need_images:
    wanted.append((IMAGE_DIR + '/', image_dir))
  missing = [n for n, p in wanted if p is None]
  if not os.path.isdir(data_dir):
    missing = ['the directory itself']
  if missing:
    raise records_lib.unavailable(DISPLAY_NAME, data_dir, 'missing ' + ', '.join(missing), LAYOUT, SOURCE, STAND_IN)
  return attr_path, part_path, image_dir


def _split_rows(files: List[str], part_path: str, split: str) -> np.ndarray:
  """bool [N]: which rows of the attribute file belong to `split` (a checked name) by `list_eval_partition.txt`."""
  partition = read_partition(part_path)
  unknown = [f for f in files if f not in partition]
  if unknown:
    raise records_lib.DatasetError(f'{part_path} has no split for {len(unknown)} images, e.g. {unknown[0]}')
  return np.array([partition[f] == SPLIT_IDS[split] for f in files], bool)


def split_attributes(data_dir: str, split: str) -> Tuple[List[str], Tuple[str, ...], np.ndarray]:
  """The attributes of one split read from the two annotation files only (no image is opened, and the image
  folder need not exist): (file names [n], the 40 names in file order, float32 [n, 40] in {-1, +1}), rows in file
  order, the rows `load_records` lists."""
  if split not in SPLIT_IDS:
    raise records_lib.DatasetError(f'CelebA split must be one of {list(SPLIT_IDS)}, got {split!r}')
  attr_path, part_path, _ = _locate(data_dir, need_images=False)
  files, names, values = read_attributes(attr_path)
  keep = _split_rows(files, part_path, split)
  return [f for f, k in zip(files, keep) if k], names, values[keep].astype(np.float32)


def load_records(data_dir: str, split: str) -> records_lib.Records:
  """The records of one split, with the fixed face ROI as every image's crop window."""
  if split not in SPLIT_IDS:
    raise records_lib.DatasetError(f'CelebA split must be one of {list(SPLIT_IDS)}, got {split!r}')
  attr_path, part_path, image_dir = _locate(data_dir, need_images=True)
  files, names, values = read_attributes(attr_path)
  keep = _split_rows(files, part_path, split)
  id_path = _find(data_dir, IDENTITY_FILE, ('', 'Anno'))
  if id_path is not None:
    ids = read_identities(id_path)
    labels = np.array([ids.get(f, -1) for f in files], np.int64)
    num_classes = len(set(ids.values()))
  else:
    labels = np.full(len(files), -1, np.int64)
    num_classes = None
  paths = np.array([os.path.join(image_dir, f) for f in files], dtype=object)
  records = records_lib.Records(
      paths=paths, labels=labels, boxes=np.tile(np.array([ROI], np.float32), (len(files), 1)),
      attributes=values.astype(np.float32), attribute_names=names, num_classes=num_classes,
      display_name=DISPLAY_NAME)
  return records.select(keep)
