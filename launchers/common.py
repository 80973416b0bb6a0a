"""What every launcher does the same way: quiet logging by default, and bad input as one line and exit 2."""

import os
import sys
from typing import Any, Callable, Mapping, NoReturn, Optional, Sequence, Tuple

from absl import flags
from absl import logging

from rlcv_tf.core import quiet


def fail(message: str) -> NoReturn:
  """Prints `error: message` (one line naming the flag or file and the fix) and exits with status 2."""
  print(f'error: {message}', file=sys.stderr, flush=True)
  sys.exit(2)


# The command that trains each thesis chapter's environments (`registry.EnvEntry.chapter`).
CHAPTER_LAUNCHERS = {2: 'python -m launchers.stochastic_ac', 4: 'python -m launchers.marl'}


def flag_message(error: Exception, flag_values: Optional[Mapping[str, Any]] = None) -> str:
  """A config's 'field: problem' ValueError as the flag's line, '--field: problem' ('--field=value: problem' when
  `flag_values`, e.g. FLAGS.flag_values_dict(), has that name); other messages unchanged."""
  field, _, problem = str(error).partition(': ')
  if not problem or ' ' in field:
    return str(error)
  if flag_values is not None and field in flag_values:
    return f'--{field}={flag_values[field]}: {problem}'
  return f'--{field}: {problem}'


def env_error(name: str, chapter: int) -> Optional[str]:
  """None if `name` is a registered environment of thesis chapter `chapter`, else the error line (without
  'error: ') for `--env=name`: an environment of another chapter names that chapter and its launcher; an unknown
  name lists the valid ones."""
  from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top  (light: no engine, no TensorFlow)
  valid = registry.names(chapter=chapter)
  if name in valid:
    return None
  if name in registry.names():
    other = registry.entry(name).chapter
    where = f' (`{CHAPTER_LAUNCHERS[other]}`)' if other in CHAPTER_LAUNCHERS else ''
    return (f'--env={name}: a Chapter {other} environment{where}, not one of Chapter {chapter}\'s; valid values: '
            f'{", ".join(valid)}')
  return f'--env={name}: unknown environment; valid values: {", ".join(valid)}'


def start(argv: Sequence[str]) -> None:
  """Call first in `main(argv)`: WARNING verbosity unless --verbosity is given (TensorFlow's INFO lines would drown
  the progress report), and positional arguments are refused (every option is a --flag)."""
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  quiet.filter_known_warnings()
  if len(argv) > 1:
    fail(f'unexpected arguments {list(argv[1:])}; all options are --flags (see --helpshort)')


def check_run_dirs(dirs: Sequence[str], check: Callable[[str], object], flag: str = 'runs') -> None:
  """Fails (one line naming --flag) at the first of `dirs` that is not a directory or that `check(dir)` refuses
  with a ValueError (a file-only check, before TensorFlow loads). An empty list is the caller's to refuse (its
  message names an example of its own)."""
  for d in dirs:
    if not os.path.isdir(d):
      fail(f'--{flag}: {d} is not a directory')
    try:
      check(d)
    except ValueError as e:
      fail(f'--{flag}: {e}')


def run_to_the_end(train: Callable[[], object], user_errors: Tuple[type, ...] = ()) -> None:
  """Calls `train()` and turns the ways a training run ends early into what a user sees.

  - `runs.Interrupted` (Ctrl-C / SIGTERM; the run saved its checkpoint and SavedModel and said where): exit with
    its code.
  - One of `user_errors` (bad input found once the run started, e.g. a resume with other settings): one `error:`
    line, exit 2.
  - Actors that cannot run (unreachable learner, refused, restart budget spent): their own summary on one line,
    after the run saved its work. It arrives directly (at start) or as a RuntimeError's cause (the inference
    thread). Any other RuntimeError propagates.
  """
  from rlcv_tf.core import runs  # pylint: disable=g-import-not-at-top
  from rlcv_tf.runtime import actors as actors_lib  # pylint: disable=g-import-not-at-top
  try:
    train()
  except runs.Interrupted as e:
    sys.exit(e.exit_code)
  except tuple(user_errors) as e:
    fail(str(e))
  except (actors_lib.ActorFailedError, RuntimeError) as e:
    failed = e if isinstance(e, actors_lib.ActorFailedError) else e.__cause__
    if not isinstance(failed, actors_lib.ActorFailedError):
      raise
    fail(failed.summary)
