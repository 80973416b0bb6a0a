r"""Checks that Chapter 2's engines are installed: ale-py with the ROMs of the seven thesis games, Box2D and pygame.

  python scripts/check_engines.py          # run by scripts/setup.sh as its last step

Prints one line per engine and exits 0 when all are there; otherwise prints one `error:` line per missing piece,
each saying how to get it, and exits 2. Imports no TensorFlow (a few seconds at most) and builds no environment.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rlcv_tf.envs import atari  # pylint: disable=g-import-not-at-top
from rlcv_tf.envs import base  # pylint: disable=g-import-not-at-top
from rlcv_tf.envs import box2d  # pylint: disable=g-import-not-at-top


def main() -> int:
  problems = []
  try:
    atari.check_available()
    print(f'[engines] ale-py {atari.ale_settings(atari.THESIS_GAMES[0])["ale_py"]}: ROMs of '
          f'{", ".join(atari.THESIS_GAMES)} in {atari.rom_dir()}')
  except base.EnvironmentUnavailableError as e:
    problems.append(str(e))
  try:
    box2d.check_available()
    import Box2D  # pylint: disable=g-import-not-at-top
    import pygame  # pylint: disable=g-import-not-at-top
    print(f'[engines] Box2D {Box2D.__version__}, pygame {pygame.version.ver}: BipedalWalker-v3, CarRacing-v3')
  except base.EnvironmentUnavailableError as e:
    problems.append(str(e))
  for problem in problems:
    print(f'error: {problem}', file=sys.stderr)
  return 2 if problems else 0


if __name__ == '__main__':
  sys.exit(main())
