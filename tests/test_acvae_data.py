"""Chapter 6 attribute selection (rlcv_tf.datasets: registry.open_split(attributes=...), registry.attribute_matrix,
pipeline.make_image_dataset(attributes=...); spec ch5_6 §B5) against a hand-written CelebA folder and SynthFaces."""

import os
import shutil

import numpy as np
import pytest

from rlcv_tf.datasets import cache_writer
from rlcv_tf.datasets import celeba
from rlcv_tf.datasets import pipeline
from rlcv_tf.datasets import registry
from rlcv_tf.datasets import synthetic

from dataset_test_helpers import jpeg  # pylint: disable=g-bad-import-order

# The hand-written annotation: (split 0 train | 1 val | 2 test, the attributes that are +1; every other one is -1).
ROWS = (
    (0, ('Smiling', 'Young')),
    (0, ('Male',)),
    (1, ('Male', 'Smiling', 'Eyeglasses')),
    (0, ()),
    (0, ('Young', '5_o_Clock_Shadow', 'Male')),
    (2, ('Eyeglasses',)),
    (0, ('Smiling', 'Male', 'Young')),
    (0, ('Wearing_Hat',)),
)
PICK = ['Young', 'Smiling', 'Male']
# The training rows (images 1, 2, 4, 5, 7, 8) in the columns PICK, read off ROWS by hand.
TRAIN_PICK = np.array([[1, 1, -1],
                       [-1, -1, 1],
                       [-1, -1, -1],
                       [1, -1, 1],
                       [1, 1, 1],
                       [-1, -1, -1]], np.float32)
TRAIN_SHADOW = np.array([-1, -1, -1, 1, -1, -1], np.float32)   # 5_o_Clock_Shadow of the training rows
TRAIN_HAT = np.array([-1, -1, -1, -1, -1, 1], np.float32)      # Wearing_Hat


def write_tiny_celeba(root, names=celeba.ATTRIBUTE_NAMES):
  """A CelebA-layout folder: 8 real 178x218 JPEGs, `list_attr_celeba.txt` with the 40 `names` in that order and the
  values of ROWS, `list_eval_partition.txt` with ROWS' splits."""
  os.makedirs(os.path.join(root, celeba.IMAGE_DIR))
  rng = np.random.default_rng(0)
  with open(os.path.join(root, celeba.ATTR_FILE), 'w') as f:
    f.write(f'{len(ROWS)}\n{" ".join(names)}\n')
    for i, (_, on) in enumerate(ROWS):
      f.write(f'{i + 1:06d}.jpg  ' + ' '.join('1' if n in on else '-1' for n in names) + '\n')
  with open(os.path.join(root, celeba.PARTITION_FILE), 'w') as f:
    f.writelines(f'{i + 1:06d}.jpg {split}\n' for i, (split, _) in enumerate(ROWS))
  for i in range(len(ROWS)):
    with open(os.path.join(root, celeba.IMAGE_DIR, f'{i + 1:06d}.jpg'), 'wb') as f:
      f.write(jpeg(rng.integers(0, 256, (218, 178, 3))))
  return root


@pytest.fixture(name='data_dir')
def fixture_data_dir(tmp_path):
  return write_tiny_celeba(str(tmp_path / 'celeba'))


def _all_batches(ds):
  batches = [{k: v.numpy() for k, v in b.items()} for b in ds]
  return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


# ----------------------------------------------------------------------------------------------- CelebA


def test_celeba_selection_keeps_the_order_given_and_the_file_values(data_dir):
  records = registry.open_split('celeba', data_dir, 'train', attributes=PICK)
  assert records.attribute_names == tuple(PICK)
  np.testing.assert_array_equal(records.attributes, TRAIN_PICK)
  # Another order gives the same columns permuted.
  records = registry.open_split('celeba', data_dir, 'train', attributes=['Male', 'Wearing_Hat', 'Young'])
  np.testing.assert_array_equal(records.attributes, np.stack([TRAIN_PICK[:, 2], TRAIN_HAT, TRAIN_PICK[:, 0]], 1))
  # The validation row 3 and the test row 6.
  np.testing.assert_array_equal(registry.open_split('celeba', data_dir, 'val', attributes=PICK).attributes,
                                [[-1, 1, 1]])
  np.testing.assert_array_equal(
      registry.open_split('celeba', data_dir, 'test', attributes=['Eyeglasses', 'Smiling']).attributes, [[1, -1]])


def test_celeba_all_and_the_default_are_the_40_columns_in_file_order(data_dir, tmp_path):
  for attributes in ('all', None):
    records = registry.open_split('celeba', data_dir, 'train', attributes=attributes)
    assert records.attribute_names == celeba.ATTRIBUTE_NAMES and records.attributes.shape == (6, 40)
    np.testing.assert_array_equal(records.attributes[:, 0], TRAIN_SHADOW)        # 5_o_Clock_Shadow is first
    np.testing.assert_array_equal(records.attributes[:, 39], TRAIN_PICK[:, 0])   # Young is last
  # 'all' is the file's order, whatever it is: a file listing the names back to front.
  reversed_dir = write_tiny_celeba(str(tmp_path / 'reversed'), names=celeba.ATTRIBUTE_NAMES[::-1])
  names, matrix = registry.attribute_matrix('celeba', reversed_dir, 'train', 'all')
  assert names == celeba.ATTRIBUTE_NAMES[::-1]
  np.testing.assert_array_equal(matrix[:, 0], TRAIN_PICK[:, 0])
  np.testing.assert_array_equal(matrix[:, 39], TRAIN_SHADOW)
  np.testing.assert_array_equal(registry.attribute_matrix('celeba', reversed_dir, 'train', PICK)[1], TRAIN_PICK)


def test_celeba_selection_reaches_the_pipeline_batches_and_info(data_dir):
  ds, info = pipeline.make_image_dataset('celeba', data_dir, 'train', resolution=8, batch_size=3, train=False,
                                         attributes=PICK, with_info=True)
  out = _all_batches(ds)
  assert info.attribute_names == tuple(PICK)
  np.testing.assert_array_equal(out['attributes'], TRAIN_PICK)
  assert out['image'].shape == (6, 8, 8, 3)
  # Unchanged default: all 40 columns.
  out = _all_batches(pipeline.make_image_dataset('celeba', data_dir, 'train', resolution=8, batch_size=3,
                                                 train=False))
  assert out['attributes'].shape == (6, 40)
  np.testing.assert_array_equal(out['attributes'][:, 15], [-1, -1, -1, -1, -1, -1])    # Eyeglasses


def test_celeba_selection_from_an_image_cache(data_dir, tmp_path):
  cache_dir = str(tmp_path / 'cache')
  cache_writer.write_cache(cache_writer.load_split('celeba', data_dir, 'train'), 'celeba', 'train', cache_dir, 8)
  ds, info = pipeline.make_image_dataset('celeba', cache_dir, 'train', resolution=8, batch_size=2, train=False,
                                         attributes=PICK, with_info=True)
  assert info.attribute_names == tuple(PICK)
  np.testing.assert_array_equal(_all_batches(ds)['attributes'], TRAIN_PICK)
  with pytest.raises(ValueError, match='Smilling.*Wearing_Hat'):
    pipeline.make_image_dataset('celeba', cache_dir, 'train', resolution=8, batch_size=2, attributes=['Smilling'])


@pytest.mark.parametrize('damage', ['delete_folder', 'corrupt_files'])
def test_attribute_matrix_reads_no_image(data_dir, damage):
  image_dir = os.path.join(data_dir, celeba.IMAGE_DIR)
  if damage == 'delete_folder':
    shutil.rmtree(image_dir)
  else:
    for name in os.listdir(image_dir):
      with open(os.path.join(image_dir, name), 'wb') as f:
        f.write(b'not an image')
  names, matrix = registry.attribute_matrix('celeba', data_dir, 'train', PICK)
  assert names == tuple(PICK) and matrix.dtype == np.float32
  np.testing.assert_array_equal(matrix, TRAIN_PICK)
  names, matrix = registry.attribute_matrix('celeba', data_dir, 'train', num_examples=4)
  assert names == celeba.ATTRIBUTE_NAMES and matrix.shape == (4, 40)
  np.testing.assert_array_equal(matrix[:, 0], TRAIN_SHADOW[:4])
  if damage == 'delete_folder':   # the images really are gone: the image pipeline cannot open the split
    with pytest.raises(pipeline.DatasetUnavailableError, match='img_align_celeba'):
      registry.open_split('celeba', data_dir, 'train')


@pytest.mark.parametrize('attributes,needles', [
    (['Smiling', 'Smilling'], ['unknown names Smilling']),
    (['Male', 'Young', 'Male'], ['repeated names Male']),
    ('Male', ["['Male']"]),
    ([], ['empty']),
])
def test_bad_celeba_selections_are_one_value_error_listing_the_valid_names(data_dir, attributes, needles):
  for call in (lambda: registry.open_split('celeba', data_dir, 'train', attributes=attributes),
               lambda: registry.attribute_matrix('celeba', data_dir, 'train', attributes),
               lambda: pipeline.make_image_dataset('celeba', data_dir, 'train', batch_size=2, attributes=attributes)):
    with pytest.raises(ValueError) as err:
      call()
    message = str(err.value)
    assert message.startswith('attributes:')
    for needle in needles + ["'all'", '5_o_Clock_Shadow', 'Wearing_Hat', 'Young']:   # the valid names are listed
      assert needle in message, (needle, message)


# ----------------------------------------------------------------------------------------------- SynthFaces

# Columns of SynthFaces' 12 (Male, Smiling, Eyeglasses, Wearing_Hat, Bangs, Black_Hair, Blond_Hair, Pale_Skin,
# Mouth_Slightly_Open, Mustache, Wearing_Earrings, Narrow_Eyes), counted by hand.
FACE_PICK = ['Narrow_Eyes', 'Male', 'Blond_Hair', 'Wearing_Earrings']
FACE_PICK_COLUMNS = [11, 0, 6, 10]


def test_synth_faces_selection_equals_the_columns_of_the_full_12():
  full, _ = synthetic.SynthFaces(seed=3).sample_attributes(np.arange(40), 'val')
  names, matrix = registry.attribute_matrix('synth_faces', None, 'val', FACE_PICK, num_examples=40, data_seed=3)
  assert names == tuple(FACE_PICK)
  np.testing.assert_array_equal(matrix, full[:, FACE_PICK_COLUMNS])
  names, matrix = registry.attribute_matrix('synth_faces', None, 'val', 'all', num_examples=40, data_seed=3)
  assert names == synthetic.FACE_ATTRIBUTE_NAMES
  np.testing.assert_array_equal(matrix, full)
  assert registry.attribute_matrix('synth_faces', None, 'test')[1].shape == (registry.SYNTHETIC_SIZES['test'], 12)
  # The generated split: rows carry the selected columns; the pixels do not change.
  source = registry.open_split('synth_faces', None, 'val', num_examples=40, data_seed=3, attributes=FACE_PICK)
  plain = registry.open_split('synth_faces', None, 'val', num_examples=40, data_seed=3)
  rows, plain_rows = source.generate(np.arange(5, 9)), plain.generate(np.arange(5, 9))
  assert source.attribute_names == tuple(FACE_PICK) and plain.attribute_names == synthetic.FACE_ATTRIBUTE_NAMES
  np.testing.assert_array_equal(rows['attributes'], full[5:9][:, FACE_PICK_COLUMNS])
  np.testing.assert_array_equal(rows['image'], plain_rows['image'])


def test_synth_faces_selection_reaches_the_pipeline_beyond_the_first_num_attributes():
  full, _ = synthetic.SynthFaces(seed=0).sample_attributes(np.arange(12), 'val')
  ds, info = pipeline.make_image_dataset('synth_faces', None, 'val', resolution=16, batch_size=6, train=False,
                                         num_examples=12, attributes=FACE_PICK, with_info=True)
  out = _all_batches(ds)
  assert info.attribute_names == tuple(FACE_PICK)
  np.testing.assert_array_equal(out['attributes'], full[:, FACE_PICK_COLUMNS])
  # The default is unchanged: the first num_attributes columns.
  out = _all_batches(pipeline.make_image_dataset('synth_faces', None, 'val', resolution=16, batch_size=6,
                                                 train=False, num_examples=12, num_attributes=5))
  np.testing.assert_array_equal(out['attributes'], full[:, :5])


@pytest.mark.parametrize('attributes,needles', [
    (['Male', 'Young'], ['Young is not rendered by synth_faces']),
    (['Male', 'Smilling'], ['unknown names Smilling']),
    (['Bangs', 'Bangs'], ['repeated names Bangs']),
])
def test_bad_synth_faces_selections_name_the_12_rendered_attributes(attributes, needles):
  for call in (lambda: registry.open_split('synth_faces', None, 'val', num_examples=8, attributes=attributes),
               lambda: registry.attribute_matrix('synth_faces', None, 'val', attributes, num_examples=8)):
    with pytest.raises(ValueError) as err:
      call()
    for needle in needles + list(synthetic.FACE_ATTRIBUTE_NAMES):
      assert needle in str(err.value), (needle, str(err.value))


def test_other_misuse_is_one_value_error():
  with pytest.raises(ValueError, match='only attributes.*or only num_attributes'):
    registry.open_split('synth_faces', None, 'val', num_examples=8, num_attributes=4, attributes=['Male'])
  with pytest.raises(ValueError, match='synth_rooms has no attributes'):
    registry.open_split('synth_rooms', None, 'val', num_examples=8, attributes='all')
  with pytest.raises(ValueError, match='synth_birds has no attributes.*celeba, synth_faces'):
    registry.attribute_matrix('synth_birds', None, 'val')
  with pytest.raises(ValueError, match='data_dir must be None'):
    registry.attribute_matrix('synth_faces', '/tmp', 'val')
  with pytest.raises(pipeline.DatasetUnavailableError, match='data_dir is required'):
    registry.attribute_matrix('celeba', None, 'val')
