"""dSprites read without unpickling, the generated stand-in on the published grid, and the DSRL toy world."""

import numpy as np
import pytest

from rlcv_tf.datasets import dsprites
from rlcv_tf.datasets import records


class _Boom:
  """Unpickling this writes a file: proof that something unpickled it."""

  def __init__(self, path):
    self.path = path

  def __reduce__(self):
    return (open, (self.path, 'w'))


def _write_npz(path, imgs_as_pickle=False, marker=None):
  data = dsprites.synth_dsprites(indices=[0, 1, 40_000, 737_279])
  imgs = data['imgs']
  if imgs_as_pickle:
    obj = np.empty(len(imgs), dtype=object)
    for i, im in enumerate(imgs):
      obj[i] = im
    imgs = obj
  metadata = np.array({'date': 'April 2017', 'boom': _Boom(marker)}, dtype=object)
  np.savez_compressed(path, metadata=metadata, imgs=imgs, latents_classes=data['latents_classes'],
                      latents_values=data['latents_values'])
  return data


def test_reads_the_published_keys_without_touching_the_pickled_metadata(tmp_path):
  marker = tmp_path / 'unpickled'
  data = _write_npz(tmp_path / dsprites.FILE_NAME, marker=str(marker))
  out = dsprites.load_npz(str(tmp_path))
  assert list(out) == list(dsprites.KEYS)
  for key in dsprites.KEYS:
    np.testing.assert_array_equal(out[key], data[key])
  assert not marker.exists()
  # The same file read with pickles allowed runs the payload: the test would notice an unpickling reader.
  with np.load(tmp_path / dsprites.FILE_NAME, allow_pickle=True) as f:
    f['metadata']
  assert marker.exists()


def test_refuses_an_array_stored_as_a_pickle(tmp_path):
  _write_npz(tmp_path / dsprites.FILE_NAME, imgs_as_pickle=True, marker=str(tmp_path / 'm'))
  with pytest.raises(records.DatasetError, match="'imgs' is stored as a pickle"):
    dsprites.load_npz(str(tmp_path))


def test_a_file_that_is_not_the_whole_grid_is_refused_for_splits(tmp_path):
  _write_npz(tmp_path / dsprites.FILE_NAME, marker=str(tmp_path / 'm'))
  with pytest.raises(records.DatasetError, match='holds 4 images'):
    dsprites.load_split('dsprites', str(tmp_path), 'val')


def test_missing_file_names_the_file_and_the_stand_in(tmp_path):
  with pytest.raises(records.DatasetUnavailableError) as e:
    dsprites.load_npz(str(tmp_path))
  assert dsprites.FILE_NAME in str(e.value) and 'synth_dsprites' in str(e.value)


def test_grid_indices_follow_the_published_order():
  assert dsprites.NUM_IMAGES == 737_280 and dsprites.LATENT_BASES == (737_280, 245_760, 40_960, 1_024, 32, 1)
  # Mixed radix by hand: image i has classes (0, s, c, o, x, y) with i = ((s*6 + c)*40 + o)*1024 + x*32 + y.
  rng = np.random.default_rng(0)
  for _ in range(20):
    s, c, o, x, y = rng.integers(0, (3, 6, 40, 32, 32))
    i = ((s * 6 + c) * 40 + o) * 1024 + x * 32 + y
    np.testing.assert_array_equal(dsprites.classes_of(i), [0, s, c, o, x, y])
    assert dsprites.index_of([0, s, c, o, x, y]) == i
  values = dsprites.values_of(dsprites.classes_of(dsprites.NUM_IMAGES - 1))
  np.testing.assert_allclose(values, [1, 3, 1.0, 2 * np.pi, 1.0, 1.0])


def test_synth_stand_in_renders_the_factors():
  data = dsprites.synth_dsprites(indices=dsprites.index_of(
      [[0, s, 5, 0, x, y] for s in range(3) for x, y in ((0, 0), (31, 31), (0, 31))]))
  assert list(data) == list(dsprites.KEYS)
  imgs = data['imgs']
  assert imgs.shape == (9, 64, 64) and imgs.dtype == np.uint8 and set(np.unique(imgs)) <= {0, 1}
  rows, cols = np.arange(64)[None, :, None], np.arange(64)[None, None, :]
  mass = imgs.sum(axis=(1, 2))
  cy, cx = (imgs * rows).sum(axis=(1, 2)) / mass, (imgs * cols).sum(axis=(1, 2)) / mass
  # posX moves the sprite right, posY down; the square is the biggest of the three shapes at one scale.
  assert np.all(cx[1::3] > cx[0::3] + 30) and np.all(cy[1::3] > cy[0::3] + 30)
  assert np.all(cx[2::3] < 20) and np.all(cy[2::3] > 44)
  assert mass[0] > mass[3] and mass[0] > mass[6]
  small = dsprites.synth_dsprites(indices=[dsprites.index_of([0, 0, 0, 0, 16, 16])])['imgs'].sum()
  assert small < mass[0] / 2                          # scale 0.5 vs 1


def test_splits_are_disjoint_and_fixed():
  val, test = dsprites.split_indices('val'), dsprites.split_indices('test')
  assert len(val) == len(test) == dsprites.HELD_OUT and not set(val) & set(test)
  np.testing.assert_array_equal(val, dsprites.split_indices('val'))
  images, factors = dsprites.load_split('synth_dsprites', None, 'val', num=16, seed=1)
  assert images.shape == (16, 64, 64, 1) and images.dtype == np.float32
  assert set(dsprites.index_of(factors)) <= set(val)


def test_dsrl_ground_truth_matches_the_rendered_cells():
  world = dsprites.dsrl_world(40, seed=3)
  imgs, cells = world['imgs'][..., 0], world['cells']
  for img, cell, symbols in zip(imgs, cells, world['symbols']):
    for r in range(2):
      for c in range(2):
        patch = img[42 * r:42 * (r + 1), 42 * c:42 * (c + 1)]
        area = patch.sum()
        if cell[r, c] == 0:
          assert area == 0
        else:
          # A square fills its bounding box; a circle fills pi/4 of it.
          ys, xs = np.nonzero(patch)
          fill = area / ((ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1))
          assert (fill > 0.95) if cell[r, c] == 2 else (0.7 < fill < 0.85), (cell, fill)
    assert symbols == [(int(cell[r, c]), [r, c]) for r in range(2) for c in range(2) if cell[r, c]]
  assert dsprites.dsrl_symbols(dsprites.table_1_1()) == [(1, [0, 0]), (2, [0, 1]), (2, [1, 1])]
