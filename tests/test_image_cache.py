"""Decode-and-crop of known JPEG windows (jpeg_crop.py) and the TFRecord image cache (image_cache.py, cache_writer.py,
scripts/make_image_cache.py).

References are independent of the code under test: the whole-image decode of `tf.io.decode_image` sliced with NumPy
for the crop, and the uncached `pipeline.make_image_dataset` for the cache (bit for bit: uint8 crops through PNG).
"""

import io
import json
import os
import shutil
import subprocess
import sys
import zlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from rlcv_tf.datasets import cache_writer
from rlcv_tf.datasets import celeba
from rlcv_tf.datasets import cub
from rlcv_tf.datasets import image_cache
from rlcv_tf.datasets import jpeg_crop
from rlcv_tf.datasets import pipeline

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTDATA = os.path.join(ROOT, 'testdata')
SCRIPT = os.path.join(ROOT, 'scripts', 'make_image_cache.py')


def _structured(rng, h, w):
  """Smooth colours plus grain and a few sharp edges: JPEG blocks with real AC content."""
  low = Image.fromarray(rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)).resize((w, h), Image.BILINEAR)
  image = np.asarray(low, np.float32) + rng.normal(0, 12, (h, w, 3))
  image[h // 3:h // 2, w // 4:3 * w // 4] = rng.integers(0, 256, 3)
  return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _jpeg(array, **kwargs):
  buf = io.BytesIO()
  mode = 'L' if array.ndim == 2 else 'RGB'
  Image.fromarray(array, mode).save(buf, format='JPEG', **kwargs)
  return buf.getvalue()


def _png(array):
  buf = io.BytesIO()
  Image.fromarray(array).save(buf, format='PNG')
  return buf.getvalue()


def _reference_crop(contents, window):
  """Whole-image decode (the pipeline's tf.io.decode_image, 3 channels), then a NumPy slice."""
  image = tf.io.decode_image(contents, channels=3, expand_animations=False).numpy()
  y, x, h, w = window
  return image[y:y + h, x:x + w]


def _sentinel_crop(image, box):
  """A crop_fn whose output is recognisable: shows when decode_and_crop did not take the fast path."""
  del image
  window = jpeg_crop.crop_window(box)
  return tf.fill(tf.stack([window[2], window[3], 3]), tf.constant(7, tf.uint8))


# ------------------------------------------------------------------------------------------------ decode_and_crop

ENCODINGS = {
    '420_q90': dict(quality=90),                        # Pillow's default subsampling, as most photo JPEGs
    '444_q95': dict(quality=95, subsampling=0),
    '422_q75': dict(quality=75, subsampling=1),
    'progressive': dict(quality=85, progressive=True),
    'grayscale': dict(quality=90),
}
SIZES = [(218, 178), (53, 37)]


def _windows(h, w):
  # Odd right ends, a left end on an MCU boundary, windows narrower than 5 pixels, the image edges.
  out = [(0, 0, h, w), (1, 1, h - 2, w - 2), (h - 1, w - 1, 1, 1), (7, 9, 20, 21), (h - 20, w - 30, 20, 30),
         (16, 16, 16, 16), (8, 15, h // 2, w // 2), (5, 3, 4, 1), (0, 2, 3, 2), (h - 3, w - 2, 3, 2)]
  if (h, w) == (218, 178):
    out.append(tuple(int(v) for v in celeba.ROI))      # (40, 15, 148, 148)
  return out


@pytest.mark.parametrize('encoding', sorted(ENCODINGS))
@pytest.mark.parametrize('size', SIZES)
def test_decode_and_crop_jpeg_equals_decode_then_crop_exactly(encoding, size):
  rng = np.random.default_rng(zlib.crc32(f'{encoding} {size}'.encode()))
  h, w = size
  image = _structured(rng, h, w)
  if encoding == 'grayscale':
    image = np.ascontiguousarray(image[..., 0])
  contents = tf.constant(_jpeg(image, **ENCODINGS[encoding]))
  fast = tf.function(lambda c, b: jpeg_crop.decode_and_crop(c, b, _sentinel_crop))
  for window in _windows(h, w):
    ref = _reference_crop(contents, window)
    assert ref.shape == (window[2], window[3], 3)
    # jpeg_crop takes the fast path (not the sentinel) and returns the same pixels, eagerly and traced.
    box = tf.constant(window, tf.float32)
    np.testing.assert_array_equal(jpeg_crop.decode_and_crop(contents, box, _sentinel_crop).numpy(), ref)
    np.testing.assert_array_equal(fast(contents, box).numpy(), ref)


@pytest.mark.parametrize('encoding', ['420_q90', '422_q75'])
def test_decode_and_crop_is_exact_over_a_sweep_of_windows(encoding):
  # Every left end, several widths (the chroma-upsampling edge cases), a few rows; chroma-subsampled files only.
  rng = np.random.default_rng(zlib.crc32(encoding.encode()))
  h, w = 37, 45
  contents = tf.constant(_jpeg(_structured(rng, h, w), **ENCODINGS[encoding]))
  full = tf.io.decode_image(contents, channels=3).numpy()
  fast = tf.function(lambda c, b: jpeg_crop.decode_and_crop(c, b, _sentinel_crop))
  for y0, hh in [(0, 1), (20, 17)]:
    for x0 in range(w):
      for ww in (1, 2, 3, 17):
        if x0 + ww <= w:
          got = fast(contents, tf.constant([y0, x0, hh, ww], tf.float32)).numpy()
          np.testing.assert_array_equal(got, full[y0:y0 + hh, x0:x0 + ww], err_msg=f'{(y0, x0, hh, ww)}')


def test_decode_and_crop_rounds_boxes_like_pipeline_crop_box():
  rng = np.random.default_rng(3)
  contents = tf.constant(_jpeg(_structured(rng, 60, 50), quality=90))
  decoded = tf.io.decode_image(contents, channels=3)
  for box in [(3.4, 2.6, 20.5, 10.49), (0.49, 0.5, 0.2, 1.51), (10.5, 11.5, 12.5, 13.5)]:
    box = tf.constant(box, tf.float32)
    np.testing.assert_array_equal(jpeg_crop.decode_and_crop(contents, box, _sentinel_crop).numpy(),
                                  pipeline.crop_box(decoded, box).numpy())


def _reference_clipped(contents, window):
  """Whole decode, then the window with clipped indices (border pixels repeated outside the image)."""
  image = tf.io.decode_image(contents, channels=3, expand_animations=False).numpy()
  y, x, h, w = window
  rows = np.clip(np.arange(y, y + h), 0, image.shape[0] - 1)
  cols = np.clip(np.arange(x, x + w), 0, image.shape[1] - 1)
  return image[rows][:, cols]


@pytest.mark.parametrize('encoding', ['420_q90', '444_q95'])
def test_jpeg_windows_partly_or_wholly_outside_repeat_the_border_exactly(encoding):
  rng = np.random.default_rng(zlib.crc32(encoding.encode()))
  h, w = 40, 30
  jpeg = tf.constant(_jpeg(_structured(rng, h, w), **ENCODINGS[encoding]))
  windows = [(-4, 25, 10, 10), (-3, -5, 50, 45), (35, 20, 12, 3), (10, -7, 3, 9), (-2, 3, 1, 1), (45, 40, 2, 2),
             (5, 29, 4, 6)]
  for window in windows:
    box = tf.constant(window, tf.float32)
    ref = _reference_clipped(jpeg, window)
    np.testing.assert_array_equal(jpeg_crop.decode_jpeg_window(jpeg, box).numpy(), ref, err_msg=str(window))
    # decode_and_crop takes the JPEG path (never the sentinel) for any window.
    np.testing.assert_array_equal(jpeg_crop.decode_and_crop(jpeg, box, _sentinel_crop).numpy(), ref)


def test_decode_and_crop_uses_the_crop_function_for_other_formats_and_the_placement_for_jpegs():
  rng = np.random.default_rng(4)
  image = _structured(rng, 40, 30)
  jpeg, png = tf.constant(_jpeg(image, quality=90)), tf.constant(_png(image))
  inside, outside = tf.constant([2, 3, 10, 10], tf.float32), tf.constant([-4, 25, 10, 10], tf.float32)
  assert (jpeg_crop.decode_and_crop(png, inside, _sentinel_crop).numpy() == 7).all()
  np.testing.assert_array_equal(jpeg_crop.decode_and_crop(png, inside, pipeline.crop_box).numpy(), image[2:12, 3:13])

  # place_fn: the window moved inside the image by the caller's rule (here: shifted) is what a JPEG yields.
  def place(shape, box):
    y0 = tf.clip_by_value(box[0], 0.0, tf.cast(shape[0], tf.float32) - box[2])
    x0 = tf.clip_by_value(box[1], 0.0, tf.cast(shape[1], tf.float32) - box[3])
    return tf.stack([y0, x0, box[2], box[3]])

  placed = jpeg_crop.decode_and_crop(jpeg, outside, _sentinel_crop, place).numpy()
  np.testing.assert_array_equal(placed, _reference_crop(jpeg, (0, 20, 10, 10)))
  # The pipeline's own placement (shift inside, pad only where larger than the image) through decode_window.
  for box in ([-4, 25, 10, 10], [-3, -5, 50, 45], [30, -2, 8, 33]):
    box = tf.constant(box, tf.float32)
    np.testing.assert_array_equal(pipeline.decode_window(jpeg, lambda shape, box=box: box).numpy(),
                                  pipeline.crop_box(tf.io.decode_image(jpeg, channels=3), box).numpy())


# ------------------------------------------------------------------------------------------------ cache


def write_celeba_jpegs(root, n, truncated=(), seed=0):
  """A CelebA-layout folder of n real 178x218 JPEGs (4:2:0, quality 90)."""
  rng = np.random.default_rng(seed)
  os.makedirs(os.path.join(root, celeba.IMAGE_DIR), exist_ok=True)
  signs = rng.choice([-1, 1], size=(n, 40))
  with open(os.path.join(root, celeba.ATTR_FILE), 'w') as f:
    f.write(f'{n}\n{" ".join(celeba.ATTRIBUTE_NAMES)}\n')
    for i in range(n):
      f.write(f'{i + 1:06d}.jpg ' + ' '.join(f'{v:2d}' for v in signs[i]) + '\n')
  with open(os.path.join(root, celeba.PARTITION_FILE), 'w') as f:
    f.writelines(f'{i + 1:06d}.jpg 0\n' for i in range(n))
  with open(os.path.join(root, celeba.IDENTITY_FILE), 'w') as f:
    f.writelines(f'{i + 1:06d}.jpg {i % 4 + 1}\n' for i in range(n))
  for i in range(n):
    data = _jpeg(_structured(rng, 218, 178), quality=90)
    if i in truncated:
      data = data[:len(data) // 2]        # a valid header, cut short: fails only when decoded
    with open(os.path.join(root, celeba.IMAGE_DIR, f'{i + 1:06d}.jpg'), 'wb') as f:
      f.write(data)
  return signs


def write_cub_jpegs(data_dir):
  """The CUB fixture (testdata/cub) with JPEG images; every bird ROI there pokes out of its 400x500 image."""
  root = os.path.join(data_dir, 'CUB_200_2011')
  shutil.copytree(os.path.join(TESTDATA, 'cub'), root)
  rng = np.random.default_rng(5)
  for _, rel in cub.read_images(os.path.join(root, 'images.txt')).items():
    path = os.path.join(root, 'images', rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
      f.write(_jpeg(_structured(rng, 400, 500), quality=90))


def _batches(ds):
  return [{k: v.numpy() for k, v in b.items()} for b in ds]


@pytest.mark.parametrize('name,split,n,hires', [('celeba', 'train', 7, 32), ('cub', 'test', 2, 24)])
def test_cache_round_trip_equals_the_uncached_pipeline_bit_for_bit(tmp_path, name, split, n, hires):
  data_dir = str(tmp_path / 'data')
  if name == 'celeba':
    write_celeba_jpegs(data_dir, n)
  else:
    write_cub_jpegs(data_dir)
  batch = 2 if name == 'celeba' else 1
  uncached = _batches(pipeline.make_image_dataset(name, data_dir, split, resolution=16, batch_size=batch,
                                                  train=False, hires=hires, deterministic=True))
  records = cache_writer.load_split(name, data_dir, split)
  cache_dir = str(tmp_path / 'cache')
  manifest = cache_writer.write_cache(records, name, split, cache_dir, 16, hires, examples_per_shard=3)
  assert manifest.num_examples == n and len(manifest.shards) == -(-n // 3) and not manifest.skipped_files
  ds, read = image_cache.make_cached_dataset(cache_dir, split, batch_size=batch, train=False, hires=hires,
                                             with_info=True)
  cached = _batches(ds)
  assert read == manifest
  assert len(cached) == len(uncached) == n // batch
  for a, b in zip(uncached, cached):
    assert set(a) == set(b)
    for key in a:
      assert a[key].dtype == b[key].dtype, key
      np.testing.assert_array_equal(a[key], b[key], err_msg=key)
  if name == 'celeba':
    assert manifest.attribute_names == celeba.ATTRIBUTE_NAMES and manifest.num_classes == 4


def test_cached_training_is_seeded_flips_covers_the_split_and_resumes(tmp_path):
  write_celeba_jpegs(str(tmp_path / 'data'), 8)
  records = cache_writer.load_split('celeba', str(tmp_path / 'data'), 'train')
  cache_writer.write_cache(records, 'celeba', 'train', str(tmp_path / 'c'), 8, examples_per_shard=3)
  (plain,) = _batches(image_cache.make_cached_dataset(str(tmp_path / 'c'), 'train', 8, train=False))

  def stream(seed, **kwargs):
    return _batches(image_cache.make_cached_dataset(str(tmp_path / 'c'), 'train', 4, train=True, seed=seed,
                                                    **kwargs))

  first, again = stream(0, epochs=3), stream(0, epochs=3)
  assert len(first) == 6 and [int(b['epoch'][0]) for b in first] == [0, 0, 1, 1, 2, 2]
  for b1, b2 in zip(first, again):
    assert set(b1) == set(b2) == {'image', 'label', 'attributes', 'epoch', 'position'}
    for key in b1:
      np.testing.assert_array_equal(b1[key], b2[key])
  for k, b in enumerate(first):
    np.testing.assert_array_equal(b['position'], np.arange(4) + 4 * (k % 2))
  # Resume after (epoch 1, position 3): the rest of the stream, exactly.
  resumed = stream(0, epochs=2, start_epoch=1, skip=4)
  assert len(resumed) == 3
  for b1, b2 in zip(first[3:], resumed):
    for key in b1:
      np.testing.assert_array_equal(b1[key], b2[key])
  orders = [[tuple(a) for b in first[2 * e:2 * e + 2] for a in b['attributes']] for e in range(3)]
  assert orders[0] != orders[1] or orders[1] != orders[2]              # reshuffled between epochs
  other_seed = [tuple(a) for b in stream(1, epochs=1) for a in b['attributes']]
  assert orders[0] != other_seed                                        # another seed, another order
  flipped = unflipped = 0
  for e in range(3):
    images = np.concatenate([b['image'] for b in first[2 * e:2 * e + 2]])
    attrs = np.concatenate([b['attributes'] for b in first[2 * e:2 * e + 2]])
    assert len(np.unique(attrs, axis=0)) == 8                           # every image once per epoch
    for image, attr in zip(images, attrs):
      j = int(np.flatnonzero((plain['attributes'] == attr).all(1))[0])   # the same image in the eval order
      if np.array_equal(image, plain['image'][j]):
        unflipped += 1
      else:
        np.testing.assert_array_equal(image, plain['image'][j][:, ::-1])
        flipped += 1
  assert flipped > 0 and unflipped > 0


def test_cache_writer_skips_undecodable_images_and_keeps_existing_caches(tmp_path):
  data_dir, cache_dir = str(tmp_path / 'data'), str(tmp_path / 'cache')
  write_celeba_jpegs(data_dir, 12, truncated=(4,))
  records = cache_writer.load_split('celeba', data_dir, 'train')
  assert len(records.paths) == 12                                     # the header check cannot see truncation
  with pytest.raises(pipeline.DatasetUnavailableError, match=r'1 of 12 .*000005.jpg'):
    cache_writer.write_cache(records, 'celeba', 'train', cache_dir, 8, max_skipped_fraction=0.05)
  assert not os.path.exists(image_cache.manifest_path(cache_dir, 'train'))
  assert not [f for f in os.listdir(cache_dir) if f.endswith('.tfrecord')]   # no partial shards left behind
  manifest = cache_writer.write_cache(records, 'celeba', 'train', cache_dir, 8, max_skipped_fraction=0.1)
  assert manifest.num_examples == 11
  assert [os.path.basename(p) for p, _ in manifest.skipped_files] == ['000005.jpg']
  with pytest.raises(image_cache.CacheError, match='already holds'):
    cache_writer.write_cache(records, 'celeba', 'train', cache_dir, 8, max_skipped_fraction=0.1)
  cache_writer.write_cache(records, 'celeba', 'train', cache_dir, 8, max_skipped_fraction=0.1, overwrite=True,
                           examples_per_shard=4)
  assert len([f for f in os.listdir(cache_dir) if f.endswith('.tfrecord')]) == 3   # old shards removed
  saved = json.loads(open(image_cache.manifest_path(cache_dir, 'train')).read())
  assert saved['num_examples'] == 11 and saved['format'] == image_cache.FORMAT


def test_cache_reader_errors_name_the_problem_and_the_fix(tmp_path):
  write_celeba_jpegs(str(tmp_path / 'data'), 4)
  records = cache_writer.load_split('celeba', str(tmp_path / 'data'), 'train')
  cache_writer.write_cache(records, 'celeba', 'train', str(tmp_path / 'c'), 8)
  assert image_cache.is_cache(str(tmp_path / 'c')) and not image_cache.is_cache(str(tmp_path / 'data'))
  with pytest.raises(image_cache.CacheError, match=r"no 'val' split .*\['train'\].*--splits=val"):
    image_cache.make_cached_dataset(str(tmp_path / 'c'), 'val')
  with pytest.raises(image_cache.CacheError, match='holds 8-pixel images, not 16.*--resolution=16'):
    image_cache.make_cached_dataset(str(tmp_path / 'c'), 'train', 2, resolution=16)
  with pytest.raises(image_cache.CacheError, match='fewer than one batch'):
    image_cache.make_cached_dataset(str(tmp_path / 'c'), 'train', 5)
  with pytest.raises(pipeline.DatasetError, match='generated on the fly'):
    cache_writer.load_split('synth_faces', None, 'train')
  os.remove(tmp_path / 'c' / 'train-00000-of-00001.tfrecord')
  with pytest.raises(image_cache.CacheError, match='missing 1 of the 1 shards'):
    image_cache.make_cached_dataset(str(tmp_path / 'c'), 'train', 2)


def test_shorter_side_cache_stores_72_for_64_and_crops_inside(tmp_path):
  rng = np.random.default_rng(6)
  for i, (h, w) in enumerate([(36, 72), (50, 40), (45, 45)]):
    os.makedirs(tmp_path / 'data' / 'val', exist_ok=True)
    (tmp_path / 'data' / 'val' / f'{i}.png').write_bytes(_png(_structured(rng, h, w)))
  records = cache_writer.load_split('lsun', str(tmp_path / 'data'), 'val')
  manifest = cache_writer.write_cache(records, 'lsun', 'val', str(tmp_path / 'c'), 8, hires=16)
  assert (manifest.stored_resolution, manifest.stored_hires) == (9, 18)
  (b,) = _batches(image_cache.make_cached_dataset(str(tmp_path / 'c'), 'val', 3, train=False, hires=16))
  assert b['image'].shape == (3, 8, 8, 3) and b['hires'].shape == (3, 16, 16, 3)
  for k, path in enumerate(records.paths):
    stored = cache_writer.resize_shorter_side(tf.io.decode_image(tf.io.read_file(path), channels=3), 9).numpy()
    assert min(stored.shape[:2]) == 9
    y, x = (stored.shape[0] - 8) // 2, (stored.shape[1] - 8) // 2
    np.testing.assert_array_equal(b['image'][k], stored[y:y + 8, x:x + 8].astype(np.float32) / np.float32(127.5)
                                  - np.float32(1))
  train = _batches(image_cache.make_cached_dataset(str(tmp_path / 'c'), 'val', 3, train=True, hires=16))[0]
  down = tf.image.resize(train['hires'], [8, 8], antialias=True).numpy()
  assert np.abs(down - train['image']).mean() < 0.1                      # the same window at both scales


def test_make_image_cache_script(tmp_path):
  bad = subprocess.run([sys.executable, SCRIPT, '--dataset=celeba', '--out_dir', str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
  assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
      'error: --data_dir is required (e.g. --dataset=celeba --data_dir=/data/celeba '
      '--out_dir=/data/celeba_cache64)']
  write_celeba_jpegs(str(tmp_path / 'data'), 5)
  args = [sys.executable, SCRIPT, '--dataset=celeba', f'--data_dir={tmp_path / "data"}',
          f'--out_dir={tmp_path / "c"}', '--splits=train', '--resolution=8']
  ok = subprocess.run(args, capture_output=True, text=True, timeout=300)
  assert ok.returncode == 0, ok.stderr
  assert image_cache.read_manifest(str(tmp_path / 'c'), 'train').num_examples == 5
