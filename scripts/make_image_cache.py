r"""Writes a TFRecord cache of the cropped, resized images of a real data set (format: rlcv_tf/datasets/image_cache.py).

  python scripts/make_image_cache.py --dataset=celeba --data_dir=/data/celeba --out_dir=/data/celeba_cache64
  python scripts/make_image_cache.py --dataset=cub --data_dir=/data/CUB_200_2011 --out_dir=/data/cub_cache \
      --resolution=64 --hires=128          # Stage-2 pairs

Each split becomes `<out_dir>/<split>-NNNNN-of-NNNNN.tfrecord` shards (PNG bytes of the uint8 crops, label,
attributes, index) and `<out_dir>/<split>.manifest.json`, written last. Read it with
`rlcv_tf.datasets.image_cache.make_cached_dataset(out_dir, split, ...)`. The crops are the pipeline's own (same ROI,
same antialiased resize); with train=False the cached batches equal the uncached ones bit for bit (box crops).
Images that are missing or do not decode are left out and named in the manifest; more than --max_skipped_fraction
of them is an error and writes no manifest for that split. An existing split is kept unless --overwrite.
"""

import os
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags  # pylint: disable=g-import-not-at-top

flags.DEFINE_string('dataset', None, 'A real data set: celeba, cub or lsun.')
flags.DEFINE_string('data_dir', None, 'The data set on disk, in its published layout.')
flags.DEFINE_string('out_dir', None, 'The cache directory to write (may hold other splits already).')
flags.DEFINE_list('splits', ['train', 'val', 'test'], 'Splits to write.')
flags.DEFINE_integer('resolution', 64, "Side of the cached 'image'.")
flags.DEFINE_integer('hires', 0, "Also cache the same crop at this side as 'hires' (Stage 2); 0 = none.")
flags.DEFINE_enum('verify', 'header', ['header', 'decode', 'none'], 'Host-side file check before decoding.')
flags.DEFINE_float('max_skipped_fraction', 0.01, 'More unreadable images than this fraction is an error.')
flags.DEFINE_integer('examples_per_shard', 10_000, 'Records per TFRecord file.')
flags.DEFINE_integer('num_examples', 0, 'Cache only the first N images of each split (0 = all).')
flags.DEFINE_boolean('overwrite', False, 'Replace splits that are already in --out_dir.')
FLAGS = flags.FLAGS


def fail(message: str):
  print(f'error: {message}', file=sys.stderr, flush=True)
  sys.exit(2)


def main(argv):
  if len(argv) > 1:
    fail(f'unexpected arguments {list(argv[1:])}; all options are --flags (see --helpshort)')
  for name in ('dataset', 'data_dir', 'out_dir'):
    if not FLAGS[name].value:
      fail(f'--{name} is required (e.g. --dataset=celeba --data_dir=/data/celeba --out_dir=/data/celeba_cache64)')
  if FLAGS.resolution < 1 or FLAGS.hires < 0 or FLAGS.examples_per_shard < 1 or FLAGS.num_examples < 0:
    fail('--resolution and --examples_per_shard must be positive, --hires and --num_examples >= 0')
  if not 0 <= FLAGS.max_skipped_fraction < 1:
    fail(f'--max_skipped_fraction must be in [0, 1), got {FLAGS.max_skipped_fraction}')
  bad = [s for s in FLAGS.splits if s not in ('train', 'val', 'test')]
  if bad or not FLAGS.splits:
    fail(f'--splits: {bad or "empty"} not valid; valid values are train, val, test (comma separated)')
  if os.path.abspath(FLAGS.out_dir) == os.path.abspath(FLAGS.data_dir):
    fail('--out_dir must not be --data_dir (the cache would sit among the images); choose another directory')

  from rlcv_tf.datasets import cache_writer  # pylint: disable=g-import-not-at-top
  from rlcv_tf.datasets import image_cache  # pylint: disable=g-import-not-at-top
  from rlcv_tf.datasets import pipeline  # pylint: disable=g-import-not-at-top
  if FLAGS.dataset not in pipeline.names():
    fail(f'--dataset={FLAGS.dataset!r} is unknown; valid values are '
         + ', '.join(n for n in pipeline.names() if pipeline.entry(n).real))
  for split in FLAGS.splits:
    if os.path.exists(image_cache.manifest_path(FLAGS.out_dir, split)) and not FLAGS.overwrite:
      fail(f'{FLAGS.out_dir} already holds a {split!r} cache; pass --overwrite to replace it or choose another '
           '--out_dir')
  for split in FLAGS.splits:
    t0 = time.perf_counter()
    try:
      records = cache_writer.load_split(FLAGS.dataset, FLAGS.data_dir, split, FLAGS.verify,
                                        FLAGS.max_skipped_fraction, FLAGS.num_examples or None)
      last = [0.0]

      def progress(done, total, t0=t0, last=last):
        now = time.perf_counter()
        if now - last[0] > 10 or done == total:
          last[0] = now
          print(f'  {split}: {done:,d} / {total:,d} images ({done / max(now - t0, 1e-9):,.0f}/s)', flush=True)

      manifest = cache_writer.write_cache(
          records, FLAGS.dataset, split, FLAGS.out_dir, FLAGS.resolution, FLAGS.hires or None,
          FLAGS.examples_per_shard, FLAGS.overwrite, FLAGS.max_skipped_fraction, source_dir=FLAGS.data_dir,
          progress=progress)
    except (pipeline.DatasetError, image_cache.CacheError, ValueError) as e:
      fail(str(e))
    print(f'{split}: {manifest.num_examples:,d} images in {len(manifest.shards)} shard(s), '
          f'{len(manifest.skipped_files)} skipped, {time.perf_counter() - t0:.1f} s -> '
          f'{image_cache.manifest_path(FLAGS.out_dir, split)}', flush=True)


if __name__ == '__main__':
  app.run(main)
