"""Regenerates the tiny text fixtures under testdata/ (deterministic; a few KB in all).

  python scripts/make_testdata.py   # writes testdata/celeba/, testdata/cub/, testdata/nabirds/, testdata/birdsnap/

The fixtures follow the published formats (spec ch5_6 §A5.3): a 3-image CelebA `list_attr_celeba.txt` (count line,
40 names, rows with runs of spaces) with its `list_eval_partition.txt`; 3-line CUB-200-2011 annotation files;
3-image NABirds annotation files (the CUB format with UUID image ids and taxonomy class ids); a 3-image Birdsnap
`images.txt` (tab-separated, header line, every published column) with its `test_images.txt`. The UUIDs, paths and
boxes are made up. No images are checked in: tests write them into a temporary directory.
"""

import argparse
import os

# The 40 CelebA attribute names in file order.
CELEBA_NAMES = (
    '5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair '
    'Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup '
    'High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose '
    'Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat '
    'Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young').split()
# One sign string per image ('+' = 1, '-' = -1); tests/test_datasets.py holds its own copy.
CELEBA_SIGNS = (
    '-++-------+--------++-+--+--+---++-+-+--',
    '--+-----------------+-+-++--+---+-+----+',
    '--+-++++--+-++++--+-+++-++++++++--++++--',
)
CELEBA_SPLITS = (0, 1, 2)

CUB_IMAGES = ('001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg',
              '001.Black_footed_Albatross/Black_Footed_Albatross_0009_34.jpg',
              '002.Laysan_Albatross/Laysan_Albatross_0002_1027.jpg')
CUB_BOXES = ('60.0 27.0 325.0 304.0', '139.0 30.0 153.0 264.0', '14.0 112.0 388.0 186.0')
CUB_IS_TRAIN = (0, 1, 0)
CUB_CLASSES = (1, 1, 2)


NABIRDS_IDS = ('00000001-0000-4000-8000-00000000aaaa', '00000002-0000-4000-8000-00000000bbbb',
               '00000003-0000-4000-8000-00000000cccc')
NABIRDS_IMAGES = ('0817/0000000100004000800000000000aaaa.jpg', '0860/0000000200004000800000000000bbbb.jpg',
                  '0817/0000000300004000800000000000cccc.jpg')
NABIRDS_BOXES = ('83 59 128 228', '10 20 300 150', '150 100 90 60')   # integer x y w h, as published
NABIRDS_IS_TRAIN = (1, 0, 1)
NABIRDS_CLASSES = (817, 860, 817)   # taxonomy node ids, not contiguous

BIRDSNAP_PARTS = ('back', 'beak', 'belly', 'breast', 'crown', 'forehead', 'left_cheek', 'left_eye', 'left_leg',
                  'left_wing', 'nape', 'right_cheek', 'right_eye', 'right_leg', 'right_wing', 'tail', 'throat')
BIRDSNAP_ROWS = (   # path, species_id, bb_x1, bb_y1, bb_x2, bb_y2
    ('Acadian_Flycatcher/0.jpg', 1, 120, 80, 320, 260),
    ('Acadian_Flycatcher/1.jpg', 1, 5, 10, 205, 300),
    ('Blue_Jay/2.jpg', 2, 300, 150, 480, 300),
)
BIRDSNAP_TEST = ('Acadian_Flycatcher/1.jpg',)


def _celeba_row(signs: str) -> str:
  # The real file right-aligns each value in a 2-character field, so 1 is preceded by two spaces and -1 by one.
  return ''.join(' 1' if s == '+' else '-1' for s in signs).replace(' 1', '  1').replace('-1', ' -1')


def write_celeba(out: str) -> None:
  os.makedirs(out, exist_ok=True)
  with open(os.path.join(out, 'list_attr_celeba.txt'), 'w') as f:
    f.write(f'{len(CELEBA_SIGNS)}\n')
    f.write(' '.join(CELEBA_NAMES) + ' \n')
    for i, signs in enumerate(CELEBA_SIGNS):
      assert len(signs) == 40, (i, len(signs))
      f.write(f'{i + 1:06d}.jpg{_celeba_row(signs)}\n')
  with open(os.path.join(out, 'list_eval_partition.txt'), 'w') as f:
    for i, split in enumerate(CELEBA_SPLITS):
      f.write(f'{i + 1:06d}.jpg {split}\n')


def write_cub(out: str) -> None:
  os.makedirs(out, exist_ok=True)
  tables = {
      'images.txt': CUB_IMAGES,
      'bounding_boxes.txt': CUB_BOXES,
      'train_test_split.txt': CUB_IS_TRAIN,
      'image_class_labels.txt': CUB_CLASSES,
  }
  for name, values in tables.items():
    with open(os.path.join(out, name), 'w') as f:
      for i, value in enumerate(values):
        f.write(f'{i + 1} {value}\n')


def write_nabirds(out: str) -> None:
  os.makedirs(out, exist_ok=True)
  tables = {
      'images.txt': NABIRDS_IMAGES,
      'bounding_boxes.txt': NABIRDS_BOXES,
      'train_test_split.txt': NABIRDS_IS_TRAIN,
      'image_class_labels.txt': NABIRDS_CLASSES,
  }
  for name, values in tables.items():
    with open(os.path.join(out, name), 'w') as f:
      for image_id, value in zip(NABIRDS_IDS, values):
        f.write(f'{image_id} {value}\n')


def write_birdsnap(out: str) -> None:
  os.makedirs(out, exist_ok=True)
  columns = ['url', 'md5', 'path', 'species_id', 'bb_x1', 'bb_y1', 'bb_x2', 'bb_y2']
  columns += [f'{part}_{axis}' for part in BIRDSNAP_PARTS for axis in ('x', 'y')]
  with open(os.path.join(out, 'images.txt'), 'w') as f:
    f.write('\t'.join(columns) + '\n')
    for i, (path, species, x1, y1, x2, y2) in enumerate(BIRDSNAP_ROWS):
      parts = ['-1'] * (2 * len(BIRDSNAP_PARTS))
      row = [f'http://example.invalid/{i}.jpg', f'{i:032x}', path, str(species), str(x1), str(y1), str(x2), str(y2)]
      f.write('\t'.join(row + parts) + '\n')
  with open(os.path.join(out, 'test_images.txt'), 'w') as f:
    f.write('path\n' + ''.join(f'{p}\n' for p in BIRDSNAP_TEST))


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'testdata')
  parser.add_argument('--out', default=root, help='the testdata/ directory')
  args = parser.parse_args()
  write_celeba(os.path.join(args.out, 'celeba'))
  write_cub(os.path.join(args.out, 'cub'))
  write_nabirds(os.path.join(args.out, 'nabirds'))
  write_birdsnap(os.path.join(args.out, 'birdsnap'))
  print(f'wrote {args.out}/celeba, cub, nabirds and birdsnap')


if __name__ == '__main__':
  main()
