"""CUB-200-2011 reader and the bird ROI rule (spec ch5_6 §A5.1; thesis T:L4948-4951).

Published layout (`CUB_200_2011.tgz` extracts to `CUB_200_2011/`):
  * `images.txt`: `<id> <relative path>` (e.g. `1 001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg`);
  * `bounding_boxes.txt`: `<id> <x> <y> <width> <height>` as floats, pixels, (x, y) the top-left corner;
  * `train_test_split.txt`: `<id> <is_training_image>` (1 = train, 0 = test);
  * `image_class_labels.txt`: `<id> <class id 1..200>` ('label' is class id - 1);
  * `images/<relative path>`.

The thesis' Birds set merges CUB with NABirds and Birdsnap (T:L4948-4951): see `birds.py`. CUB has no validation split, so 'val' reads the test split [P].

Bird ROI [P, StackGAN convention, spec §A5.1]: a square of side 1.5 * max(w, h) centred on the bbox
(`roi.bird_roi`, which the synth_birds stand-in is cropped with too). Where it leaves the image the pipeline shifts
it back inside and repeats border pixels only where the square is larger than the image, so the crop is never
distorted and always contains the whole box.
"""

import os
from typing import Dict, Tuple

import numpy as np

from rlcv_tf.datasets import records as records_lib
from rlcv_tf.datasets import roi

DISPLAY_NAME = 'CUB-200-2011'
FILES = ('images.txt', 'bounding_boxes.txt', 'train_test_split.txt', 'image_class_labels.txt')
LAYOUT = ('<data_dir>/{images.txt, bounding_boxes.txt, train_test_split.txt, image_class_labels.txt} and '
          '<data_dir>/images/<class>/<file>.jpg (data_dir may also be the folder that contains CUB_200_2011/)')
SOURCE = 'https://www.vision.caltech.edu/datasets/cub_200_2011/ (CUB_200_2011.tgz)'
STAND_IN = 'synth_birds'
SPLITS = {'train': 1, 'val': 0, 'test': 0}
NUM_CLASSES = 200


def _read_table(path: str, num_fields: int, cast) -> Dict[int, Tuple]:
  return records_lib.read_id_table(path, num_fields, cast, key=int)


def read_images(path: str) -> Dict[int, str]:
  return {k: v[0] for k, v in _read_table(path, 1, str).items()}


def read_bounding_boxes(path: str) -> Dict[int, np.ndarray]:
  """{id: float32 [4] (x, y, w, h)}."""
  return {k: np.array(v, np.float32) for k, v in _read_table(path, 4, float).items()}


def read_split(path: str) -> Dict[int, int]:
  return {k: v[0] for k, v in _read_table(path, 1, int).items()}


def read_class_labels(path: str) -> Dict[int, int]:
  return {k: v[0] for k, v in _read_table(path, 1, int).items()}


def find_root(data_dir: str) -> str:
  """data_dir itself, or data_dir/CUB_200_2011 when that holds the files."""
  return records_lib.find_root(data_dir, 'CUB_200_2011', FILES[0])


def read_all(data_dir: str) -> roi.BirdTable:
  """Every listed image with its class, box and split (raises DatasetUnavailableError / DatasetError)."""
  root = find_root(data_dir)
  missing = [f for f in FILES if not os.path.isfile(os.path.join(root, f))]
  if not os.path.isdir(os.path.join(root, 'images')):
    missing.append('images/')
  if missing:
    raise records_lib.unavailable(DISPLAY_NAME, data_dir, 'missing ' + ', '.join(missing), LAYOUT, SOURCE, STAND_IN)
  images = read_images(os.path.join(root, FILES[0]))
  boxes = read_bounding_boxes(os.path.join(root, FILES[1]))
  is_train = read_split(os.path.join(root, FILES[2]))
  classes = read_class_labels(os.path.join(root, FILES[3]))
  ids = sorted(images)
  for table, fname in ((boxes, FILES[1]), (is_train, FILES[2]), (classes, FILES[3])):
    lacking = [i for i in ids if i not in table]
    if lacking:
      raise records_lib.DatasetError(f'{os.path.join(root, fname)} has no entry for image id {lacking[0]} '
                                     f'({len(lacking)} ids missing)')
  return roi.BirdTable(
      paths=np.array([os.path.join(root, 'images', images[i]) for i in ids], dtype=object),
      labels=np.array([classes[i] - 1 for i in ids], np.int64),
      bboxes=np.stack([boxes[i] for i in ids]) if ids else np.zeros((0, 4), np.float32),
      is_train=np.array([is_train[i] == 1 for i in ids], bool), num_classes=NUM_CLASSES,
      display_name=DISPLAY_NAME)


def load_records(data_dir: str, split: str) -> records_lib.Records:
  if split not in SPLITS:
    raise records_lib.DatasetError(f'CUB split must be one of {list(SPLITS)}, got {split!r}')
  return read_all(data_dir).records(split)
