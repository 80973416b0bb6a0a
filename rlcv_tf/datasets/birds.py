"""The thesis' Birds set: CUB-200-2011 + NABirds + Birdsnap together (T:L4948-4951; spec ch5_6 §A5.1).

Layout: one folder holding any of the three in its published layout,
  <data_dir>/CUB_200_2011/   (cub.py)
  <data_dir>/nabirds/        (nabirds.py)
  <data_dir>/birdsnap/       (birdsnap.py; images under download/images/)
Whichever are there are used; one warning line names the missing ones and where they were expected.

Labels are offset per source so that the sets' classes stay apart: CUB 0..199, NABirds 200..754, Birdsnap
755..1254. The offsets are fixed, so a label means the same class whichever sets are present; species that two
sets share are not merged [P]. Each set keeps its own train / test split ('val' = test, as for each set).

Manifest: the first use writes every set's images once to `<data_dir>/birds_manifest.csv` with the columns
`path,x0,y0,x1,y1,label,split,source` (path relative to data_dir, the bird's box corners in pixels, split train or
test, source cub / nabirds / birdsnap); later uses read it instead of the annotation files. It is rewritten when
the sets present change; delete it to rebuild it after adding images (e.g. more Birdsnap downloads). If data_dir
is read-only the manifest is kept in memory only (with a warning).

Thesis size for orientation: 106,474 training / 5,974 validation images (T:L4948-4951), how the thesis split the
merged set is not stated; these are the sets' published splits.
"""

import csv
import logging
import os
from typing import Dict, List, Optional

import numpy as np

from rlcv_tf.datasets import birdsnap
from rlcv_tf.datasets import cub
from rlcv_tf.datasets import nabirds
from rlcv_tf.datasets import records as records_lib
from rlcv_tf.datasets import roi

DISPLAY_NAME = 'Birds'
# (source name, folder under data_dir, reader, label offset, classes reserved)
SOURCES = (('cub', 'CUB_200_2011', cub, 0, cub.NUM_CLASSES),
           ('nabirds', 'nabirds', nabirds, 200, nabirds.NUM_CLASSES),
           ('birdsnap', 'birdsnap', birdsnap, 755, birdsnap.NUM_CLASSES))
NUM_CLASSES = 1255
MANIFEST = 'birds_manifest.csv'
HEADER = ('path', 'x0', 'y0', 'x1', 'y1', 'label', 'split', 'source')
LAYOUT = ('any of <data_dir>/CUB_200_2011/ (CUB-200-2011 layout), <data_dir>/nabirds/ (NABirds layout), '
          '<data_dir>/birdsnap/ (Birdsnap layout with its images under download/images/)')
SOURCE = f'{cub.SOURCE}; {nabirds.SOURCE}; {birdsnap.SOURCE}'
STAND_IN = 'synth_birds'
SPLITS = ('train', 'val', 'test')


def present(data_dir: str) -> List[str]:
  """The sources whose folder under data_dir holds their first annotation file."""
  return [name for name, folder, reader, _, _ in SOURCES
          if os.path.isfile(os.path.join(data_dir, folder, reader.FILES[0]))]


def _rows_from_readers(data_dir: str, names: List[str]) -> List[Dict[str, str]]:
  rows = []
  for name, folder, reader, offset, reserved in SOURCES:
    if name not in names:
      continue
    table = reader.read_all(os.path.join(data_dir, folder))
    if table.num_classes > reserved:
      raise records_lib.DatasetError(f'{reader.DISPLAY_NAME} in {os.path.join(data_dir, folder)} has '
                                     f'{table.num_classes} classes, more than the {reserved} the Birds labels '
                                     'reserve for it')
    for path, label, (x, y, w, h), is_train in zip(table.paths, table.labels, table.bboxes, table.is_train):
      rows.append({'path': os.path.relpath(path, data_dir), 'x0': f'{x:g}', 'y0': f'{y:g}', 'x1': f'{x + w:g}',
                   'y1': f'{y + h:g}', 'label': str(int(label) + offset), 'split': 'train' if is_train else 'test',
                   'source': name})
  return rows


def write_manifest(path: str, rows: List[Dict[str, str]]) -> bool:
  """Writes the manifest atomically; False (and a warning) when the folder is not writable."""
  try:
    with open(path + '.tmp', 'w', newline='') as f:
      writer = csv.DictWriter(f, fieldnames=HEADER)
      writer.writeheader()
      writer.writerows(rows)
    os.replace(path + '.tmp', path)
    return True
  except OSError as e:
    logging.warning('Birds: cannot write the manifest %s (%s); it is rebuilt on every start', path, e)
    return False


def read_manifest(path: str) -> Optional[List[Dict[str, str]]]:
  """The manifest's rows, or None when there is none; DatasetError when it is malformed."""
  if not os.path.isfile(path):
    return None
  with open(path, newline='') as f:
    reader = csv.DictReader(f)
    if tuple(reader.fieldnames or ()) != HEADER:
      raise records_lib.DatasetError(f'{path}: the header should be {",".join(HEADER)}; delete the file to rebuild '
                                     'it')
    rows = list(reader)
  for i, row in enumerate(rows):
    if row['split'] not in ('train', 'test') or row['source'] not in [s[0] for s in SOURCES] or None in row.values():
      raise records_lib.DatasetError(f'{path}: line {i + 2} is malformed; delete the file to rebuild it')
  return rows


def load_records(data_dir: str, split: str) -> records_lib.Records:
  if split not in SPLITS:
    raise records_lib.DatasetError(f'Birds split must be one of {list(SPLITS)}, got {split!r}')
  names = present(data_dir)
  if not names:
    raise records_lib.unavailable(DISPLAY_NAME, data_dir, 'none of CUB_200_2011/, nabirds/, birdsnap/ holds its '
                                  'annotation files', LAYOUT, SOURCE, STAND_IN)
  missing = [f'{folder}/ ({reader.DISPLAY_NAME})' for name, folder, reader, _, _ in SOURCES if name not in names]
  if missing:
    logging.warning('Birds: reading %s from %s; missing %s', ', '.join(names), data_dir, ', '.join(missing))
  path = os.path.join(data_dir, MANIFEST)
  rows = read_manifest(path)
  if rows is None or {r['source'] for r in rows} != set(names):
    rows = _rows_from_readers(data_dir, names)
    write_manifest(path, rows)
  want = 'train' if split == 'train' else 'test'
  rows = [r for r in rows if r['split'] == want]
  try:
    corners = np.array([[float(r[k]) for k in ('x0', 'y0', 'x1', 'y1')] for r in rows], np.float32).reshape(-1, 4)
    labels = np.array([int(r['label']) for r in rows], np.int64)
  except ValueError as e:
    raise records_lib.DatasetError(f'{path}: a malformed number ({e}); delete the file to rebuild it') from e
  bboxes = np.concatenate([corners[:, :2], corners[:, 2:] - corners[:, :2]], 1)
  table = roi.BirdTable(paths=np.array([os.path.join(data_dir, r['path']) for r in rows], dtype=object),
                        labels=labels, bboxes=bboxes, is_train=np.full(len(rows), split == 'train'),
                        num_classes=NUM_CLASSES, display_name=DISPLAY_NAME)
  return table.records(split)
