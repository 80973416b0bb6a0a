"""Converts an official LSUN LMDB database (e.g. bedroom_train_lmdb/) into the image folder rlcv_tf reads.

  pip install lmdb                      # optional dependency, only this script needs it
  python scripts/lsun_lmdb_to_folder.py --lmdb /data/bedroom_train_lmdb --out /data/lsun_bedroom --split train
  python scripts/lsun_lmdb_to_folder.py --lmdb /data/bedroom_val_lmdb   --out /data/lsun_bedroom --split val

Then `make_image_dataset('lsun', data_dir='/data/lsun_bedroom', ...)` (rlcv_tf/datasets/lsun.py). Each LMDB value
is an encoded image (WebP in the official release); by default the bytes are written unchanged (tf.io.decode_image
reads WebP) to <out>/<split>/<first two key characters>/<key>.<ext>, so three million files are spread over
sub-folders. `--format jpg` re-encodes with Pillow instead. Existing files are kept, so an interrupted run resumes.
"""

import argparse
import io
import os
import sys

_EXT = ((b'RIFF', 'webp'), (b'\xff\xd8\xff', 'jpg'), (b'\x89PNG', 'png'))


def _ext(data: bytes) -> str:
  for magic, ext in _EXT:
    if data.startswith(magic):
      return ext
  return 'img'


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--lmdb', required=True, help='the LMDB directory, e.g. bedroom_train_lmdb')
  parser.add_argument('--out', required=True, help='the data_dir to write (gets a <split>/ folder)')
  parser.add_argument('--split', required=True, choices=('train', 'val'))
  parser.add_argument('--format', default='keep', choices=('keep', 'jpg', 'png'),
                      help='keep the stored bytes (default) or re-encode with Pillow')
  parser.add_argument('--limit', type=int, default=0, help='stop after this many images (0: all)')
  args = parser.parse_args(argv)
  try:
    import lmdb  # pylint: disable=g-import-not-at-top
  except ImportError:
    sys.exit('error: this script needs the optional package `lmdb`; install it with `pip install lmdb`')
  if args.format != 'keep':
    try:
      from PIL import Image  # pylint: disable=g-import-not-at-top
    except ImportError:
      sys.exit('error: --format jpg/png needs Pillow (`pip install pillow`)')
  if not os.path.isdir(args.lmdb):
    sys.exit(f'error: {args.lmdb} is not an LMDB directory (expected data.mdb and lock.mdb inside)')
  env = lmdb.open(args.lmdb, readonly=True, lock=False, readahead=False, max_readers=1)
  root = os.path.join(args.out, args.split)
  written = kept = 0
  with env.begin(write=False) as txn:
    for i, (key, value) in enumerate(txn.cursor()):
      if args.limit and i >= args.limit:
        break
      name = key.decode('ascii', 'replace')
      ext = _ext(value) if args.format == 'keep' else args.format
      folder = os.path.join(root, name[:2])
      path = os.path.join(folder, f'{name}.{ext}')
      if os.path.exists(path):
        kept += 1
        continue
      os.makedirs(folder, exist_ok=True)
      if args.format != 'keep':
        buf = io.BytesIO()
        Image.open(io.BytesIO(value)).convert('RGB').save(buf, format='JPEG' if ext == 'jpg' else 'PNG', quality=95)
        value = buf.getvalue()
      with open(path + '.tmp', 'wb') as f:
        f.write(value)
      os.replace(path + '.tmp', path)  # never leave a half-written image behind
      written += 1
      if written % 10000 == 0:
        print(f'{written} images written', flush=True)
  print(f'done: {written} written, {kept} already present, under {root}')


if __name__ == '__main__':
  main()
