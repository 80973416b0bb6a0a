"""NABirds reader (Van Horn et al., CVPR 2015), part of the thesis' Birds set (T:L4948-4951; spec ch5_6 §A5.1).

Published layout (`nabirds.tar.gz` extracts to `nabirds/`), the CUB-200-2011 format with string image ids:
  * `images.txt`: `<image id> <relative path>`, the id a UUID (e.g. `0000139e-21dc-4d0c-bfe1-4cae3c85c829
    0817/0000139e21dc4d0cbfe14cae3c85c829.jpg`);
  * `bounding_boxes.txt`: `<image id> <x> <y> <width> <height>`, integer pixels, (x, y) the top-left corner;
  * `train_test_split.txt`: `<image id> <is_training_image>` (1 = train, 0 = test);
  * `image_class_labels.txt`: `<image id> <class id>`; the ids are nodes of the taxonomy in `classes.txt` /
    `hierarchy.txt` (not contiguous; images carry the 555 leaf "visual categories");
  * `images/<class dir>/<file>.jpg`.
(`classes.txt`, `hierarchy.txt`, `sizes.txt`, `photographers.txt` and `parts/` are not needed here.)

'label' numbers the class ids that occur in `image_class_labels.txt` in increasing order (0..K-1, K = 555 for the
published file). NABirds has no validation split: 'val' reads the test split [P]. Crops: the bird ROI
(`roi.bird_roi`), as for CUB.
"""

import os
from typing import Dict, Tuple

import numpy as np

from rlcv_tf.datasets import records as records_lib
from rlcv_tf.datasets import roi

DISPLAY_NAME = 'NABirds'
FILES = ('images.txt', 'bounding_boxes.txt', 'train_test_split.txt', 'image_class_labels.txt')
LAYOUT = ('<data_dir>/{images.txt, bounding_boxes.txt, train_test_split.txt, image_class_labels.txt} and '
          '<data_dir>/images/<class dir>/<file>.jpg, image ids being UUIDs (data_dir may also be the folder that '
          'contains nabirds/)')
SOURCE = 'https://dl.allaboutbirds.org/nabirds (nabirds.tar.gz, after accepting its terms of use)'
STAND_IN = 'synth_birds'
SPLITS = ('train', 'val', 'test')
NUM_CLASSES = 555   # leaf categories of the published release (the reader counts them from the file)


def _read_table(path: str, num_fields: int, cast) -> Dict[str, Tuple]:
  return records_lib.read_id_table(path, num_fields, cast, key=str)


def find_root(data_dir: str) -> str:
  """data_dir itself, or data_dir/nabirds when that holds the files."""
  return records_lib.find_root(data_dir, 'nabirds', FILES[0])


def read_all(data_dir: str) -> roi.BirdTable:
  """Every listed image with its class, box and split (raises DatasetUnavailableError / DatasetError)."""
  root = find_root(data_dir)
  missing = [f for f in FILES if not os.path.isfile(os.path.join(root, f))]
  if not os.path.isdir(os.path.join(root, 'images')):
    missing.append('images/')
  if missing:
    raise records_lib.unavailable(DISPLAY_NAME, data_dir, 'missing ' + ', '.join(missing), LAYOUT, SOURCE, STAND_IN)
  images = {k: v[0] for k, v in _read_table(os.path.join(root, FILES[0]), 1, str).items()}
  boxes = _read_table(os.path.join(root, FILES[1]), 4, float)
  is_train = _read_table(os.path.join(root, FILES[2]), 1, int)
  classes = _read_table(os.path.join(root, FILES[3]), 1, int)
  ids = sorted(images)
  for table, fname in ((boxes, FILES[1]), (is_train, FILES[2]), (classes, FILES[3])):
    lacking = [i for i in ids if i not in table]
    if lacking:
      raise records_lib.DatasetError(f'{os.path.join(root, fname)} has no entry for image id {lacking[0]} '
                                     f'({len(lacking)} ids missing)')
  class_ids = sorted({classes[i][0] for i in ids})
  index = {c: k for k, c in enumerate(class_ids)}
  return roi.BirdTable(
      paths=np.array([os.path.join(root, 'images', images[i]) for i in ids], dtype=object),
      labels=np.array([index[classes[i][0]] for i in ids], np.int64),
      bboxes=np.array([boxes[i] for i in ids], np.float32).reshape(-1, 4),
      is_train=np.array([is_train[i][0] == 1 for i in ids], bool), num_classes=len(class_ids),
      display_name=DISPLAY_NAME)


def load_records(data_dir: str, split: str) -> records_lib.Records:
  if split not in SPLITS:
    raise records_lib.DatasetError(f'NABirds split must be one of {list(SPLITS)}, got {split!r}')
  return read_all(data_dir).records(split)
