"""Writes generated stand-in videos in the published Weizmann / RAVDESS layouts, and broken-file fixtures.

  python scripts/make_video_testdata.py --out=/tmp/video_standins                 # all three kinds
  python scripts/make_video_testdata.py --out=/tmp/wz --kind=weizmann --actors=9 --frames=48
  python scripts/make_video_testdata.py --out=/tmp/rv --kind=ravdess --ravdess_size=320x180 --recordings=all

--kind=weizmann writes <out>/<action>/<actor>_<action>.avi and <out>/classification_masks.mat; --kind=ravdess writes
<out>/Actor_NN/MM-VV-EE-II-SS-RR-NN.mp4 with <stem>.landmarks.csv sidecars; --kind=broken writes truncated.mp4,
truncated.avi, random.avi, empty.mp4, bitflip.avi and no_video.mp4; --kind=all writes <out>/{weizmann,ravdess,broken}.
The pictures are stick figures and cartoon faces (rlcv_tf/datasets/video_standins.py): stand-ins for running the real
readers and the pipeline end to end, never a substitute for the real data.
"""

import argparse
import os
import sys
from typing import Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rlcv_tf.datasets import video_standins  # pylint: disable=g-import-not-at-top,wrong-import-position

KINDS = ('weizmann', 'ravdess', 'broken', 'all')


def parse_size(text: str) -> Tuple[int, int]:
  """'WIDTHxHEIGHT' -> (height, width); both even (yuv420p video)."""
  try:
    width, height = (int(v) for v in text.lower().split('x'))
  except ValueError:
    raise argparse.ArgumentTypeError(f'expected WIDTHxHEIGHT (e.g. 640x360), got {text!r}') from None
  if width < 16 or height < 16 or width % 2 or height % 2:
    raise argparse.ArgumentTypeError(f'{text}: width and height must be even and at least 16')
  return height, width


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--out', required=True, help='output folder (created)')
  parser.add_argument('--kind', choices=KINDS, default='all')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--actors', type=int, default=3, help='Weizmann stand-in actors (1..9)')
  parser.add_argument('--frames', type=int, default=20, help='frames per Weizmann stand-in video')
  parser.add_argument('--weizmann_size', type=parse_size, default=(144, 180), help='WIDTHxHEIGHT (180x144)')
  parser.add_argument('--ravdess_actors', type=int, default=2, help='RAVDESS stand-in actors (1..24)')
  parser.add_argument('--ravdess_frames', type=int, default=24, help='frames per RAVDESS stand-in video')
  parser.add_argument('--ravdess_size', type=parse_size, default=(360, 640), help='WIDTHxHEIGHT (640x360)')
  parser.add_argument('--recordings', choices=('default', 'all'), default='default',
                      help="RAVDESS names per actor: 'default' (8 emotions spoken, 1 song, 1 video-only copy) "
                           "or 'all' (every valid name: 60 speech + 44 song)")
  args = parser.parse_args(argv)
  kinds = ('weizmann', 'ravdess', 'broken') if args.kind == 'all' else (args.kind,)
  for kind in kinds:
    out = os.path.join(args.out, kind) if args.kind == 'all' else args.out
    if kind == 'weizmann':
      videos = video_standins.write_weizmann(out, num_actors=args.actors, num_frames=args.frames,
                                             size=args.weizmann_size, seed=args.seed)
      print(f'weizmann: {len(videos)} videos and classification_masks.mat in {out}')
    elif kind == 'ravdess':
      videos = video_standins.write_ravdess(out, num_actors=args.ravdess_actors, num_frames=args.ravdess_frames,
                                            size=args.ravdess_size, seed=args.seed, recordings=args.recordings)
      print(f'ravdess: {len(videos)} videos with landmark sidecars in {out}')
    else:
      paths = video_standins.write_broken(out, seed=args.seed)
      print(f'broken: {", ".join(sorted(os.path.basename(p) for p in paths.values()))} in {out}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
