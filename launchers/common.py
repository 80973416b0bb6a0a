"""What every launcher does the same way: quiet logging by default, and bad input as one line and exit 2."""

import sys
from typing import NoReturn, Sequence

from absl import flags
from absl import logging

from rlcv_tf.core import quiet


def fail(message: str) -> NoReturn:
  """Prints `error: message` (one line naming the flag or file and the fix) and exits with status 2."""
  print(f'error: {message}', file=sys.stderr, flush=True)
  sys.exit(2)


def start(argv: Sequence[str]) -> None:
  """Call first in `main(argv)`: WARNING verbosity unless --verbosity is given (TensorFlow's INFO lines would drown
  the progress report), and positional arguments are refused (every option is a --flag)."""
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  quiet.filter_known_warnings()
  if len(argv) > 1:
    fail(f'unexpected arguments {list(argv[1:])}; all options are --flags (see --helpshort)')
