"""Birdsnap reader (Berg et al., CVPR 2014), part of the thesis' Birds set (T:L4948-4951; spec ch5_6 §A5.1).

Published layout (`birdsnap.tgz` v1.1 extracts to `birdsnap/`; the images are fetched from Flickr by its
`get_birdsnap.py`, which saves them under `download/images/` by default):
  * `images.txt`: tab-separated with a header line; the columns used here are `path` (e.g.
    `Acadian_Flycatcher/0.jpg`), `species_id` (1..500) and the box corners `bb_x1, bb_y1, bb_x2, bb_y2`
    (top-left and bottom-right, pixels); the others (url, md5, part locations) are ignored;
  * `test_images.txt`: a header line (`path`), then the path of each of the 2,443 test images;
  * `download/images/<path>`: the images.
Flickr no longer serves every image, so a copy usually lacks some. Images that were never downloaded are left
out of the index (with one warning naming how many), not counted as unreadable: `download/success.txt` (written by
`get_birdsnap.py`) lists the ones it fetched; without it, the files present are used.

'label' is species_id - 1. The split is the published one: `test_images.txt` is the test split, every other image
trains; there is no validation split, so 'val' reads the test split [P]. The box is (x1, y1, x2 - x1, y2 - y1)
[P: the readme does not say whether x2, y2 are inclusive]. Crops: the bird ROI (`roi.bird_roi`), as for CUB.
"""

import logging
import os

import numpy as np

from rlcv_tf.datasets import records as records_lib
from rlcv_tf.datasets import roi

DISPLAY_NAME = 'Birdsnap'
FILES = ('images.txt', 'test_images.txt')
IMAGE_DIR = os.path.join('download', 'images')
COLUMNS = ('path', 'species_id', 'bb_x1', 'bb_y1', 'bb_x2', 'bb_y2')
LAYOUT = ('<data_dir>/images.txt (tab-separated with a header: url, md5, path, species_id, bb_x1, bb_y1, bb_x2, '
          'bb_y2, ...), <data_dir>/test_images.txt (header "path", one path per line) and the images where '
          'get_birdsnap.py saves them, <data_dir>/download/images/<path> (data_dir may also be the folder that '
          'contains birdsnap/)')
SOURCE = ('http://thomasberg.org/datasets/birdsnap/1.1/birdsnap.tgz (annotations; its get_birdsnap.py fetches the '
          'images from Flickr)')
STAND_IN = 'synth_birds'
SPLITS = ('train', 'val', 'test')
NUM_CLASSES = 500


def find_root(data_dir: str) -> str:
  """data_dir itself, or data_dir/birdsnap when that holds the files."""
  return records_lib.find_root(data_dir, 'birdsnap', FILES[0])


def read_images(path: str):
  """Parses `images.txt` -> (paths [N], species ids int [N], boxes float32 [N, 4] (x1, y1, x2, y2))."""
  with open(path) as f:
    lines = [line.rstrip('\n').rstrip('\r') for line in f]
  if not lines:
    raise records_lib.DatasetError(f'{path}: empty file (expected a header line naming the columns)')
  header = lines[0].split('\t')
  lacking = [c for c in COLUMNS if c not in header]
  if lacking:
    raise records_lib.DatasetError(f'{path}: the header line lacks the columns {", ".join(lacking)} (got '
                                   f'{lines[0][:120]!r}); expected the tab-separated Birdsnap images.txt')
  col = [header.index(c) for c in COLUMNS]
  paths, species, boxes = [], [], []
  for i, line in enumerate(lines[1:]):
    if not line.strip():
      continue
    fields = line.split('\t')
    if len(fields) != len(header):
      raise records_lib.DatasetError(f'{path}: line {i + 2} has {len(fields)} tab-separated fields, the header '
                                     f'{len(header)}')
    try:
      paths.append(fields[col[0]])
      species.append(int(fields[col[1]]))
      boxes.append([float(fields[c]) for c in col[2:]])
    except ValueError as e:
      raise records_lib.DatasetError(f'{path}: line {i + 2} is malformed ({e})') from e
  return np.array(paths, dtype=object), np.array(species, np.int64), np.array(boxes, np.float32).reshape(-1, 4)


def read_test_images(path: str):
  """Parses `test_images.txt` -> the set of test image paths (the first line is the header `path`)."""
  with open(path) as f:
    lines = [line.strip() for line in f if line.strip()]
  if not lines or lines[0] != 'path':
    raise records_lib.DatasetError(f'{path}: expected the header line "path" first')
  return set(lines[1:])


def _downloaded(root: str, paths) -> np.ndarray:
  """bool [N]: which listed images get_birdsnap.py fetched (download/success.txt), else which files exist."""
  success = os.path.join(root, 'download', 'success.txt')
  if os.path.isfile(success):
    with open(success) as f:
      fetched = {line.rstrip('\n').split('\t')[-1] for line in f if line.strip()}
    return np.array([p in fetched for p in paths], bool)
  return np.array([os.path.exists(os.path.join(root, IMAGE_DIR, p)) for p in paths], bool)


def read_all(data_dir: str) -> roi.BirdTable:
  """Every downloaded listed image with its species, box and split."""
  root = find_root(data_dir)
  missing = [f for f in FILES if not os.path.isfile(os.path.join(root, f))]
  if not os.path.isdir(os.path.join(root, IMAGE_DIR)):
    missing.append(IMAGE_DIR + '/ (run get_birdsnap.py)')
  if missing:
    raise records_lib.unavailable(DISPLAY_NAME, data_dir, 'missing ' + ', '.join(missing), LAYOUT, SOURCE, STAND_IN)
  paths, species, corners = read_images(os.path.join(root, FILES[0]))
  test = read_test_images(os.path.join(root, FILES[1]))
  unknown = sorted(test - set(paths))
  if unknown:
    raise records_lib.DatasetError(f'{os.path.join(root, FILES[1])} lists {len(unknown)} paths that images.txt does '
                                   f'not, e.g. {unknown[0]}')
  if len(species) and (species.min() < 1 or species.max() > NUM_CLASSES):
    raise records_lib.DatasetError(f'{os.path.join(root, FILES[0])}: species_id must be in 1..{NUM_CLASSES}')
  present = _downloaded(root, paths)
  if not present.any():
    raise records_lib.unavailable(DISPLAY_NAME, data_dir, f'none of the {len(paths)} images listed in images.txt is '
                                  f'under {IMAGE_DIR}/ (run get_birdsnap.py)', LAYOUT, SOURCE, STAND_IN)
  if not present.all():
    logging.warning('Birdsnap: %d of %d listed images were never downloaded (see download/fail.txt); using the %d '
                    'present', (~present).sum(), len(paths), present.sum())
  x1, y1, x2, y2 = corners.T
  table = roi.BirdTable(
      paths=np.array([os.path.join(root, IMAGE_DIR, p) for p in paths], dtype=object),
      labels=species - 1, bboxes=np.stack([x1, y1, x2 - x1, y2 - y1], 1).astype(np.float32),
      is_train=np.array([p not in test for p in paths], bool), num_classes=NUM_CLASSES, display_name=DISPLAY_NAME)
  keep = np.flatnonzero(present)
  return roi.BirdTable(table.paths[keep], table.labels[keep], table.bboxes[keep], table.is_train[keep],
                       NUM_CLASSES, DISPLAY_NAME)


def load_records(data_dir: str, split: str) -> records_lib.Records:
  if split not in SPLITS:
    raise records_lib.DatasetError(f'Birdsnap split must be one of {list(SPLITS)}, got {split!r}')
  return read_all(data_dir).records(split)
