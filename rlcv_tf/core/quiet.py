"""A console that shows the project's lines, not library noise, without hiding warnings that matter.

Each rule below names one known message, why it is noise for a user of this project, and removes only that
message; every other warning or log line still shows.

* `filter_known_warnings()`: Python warnings raised by dependencies about their own dependencies:
  - TensorFlow Probability's `distutils Version classes are deprecated` (TFP's own version check);
  - gym 0.26's `Initializing wrapper in old step API` (gfootball builds its env with the old gym API; the
    adapter converts to dm_env, so the user can do nothing about it).
* `silence_gym_notice()`: gym prints a banner to stderr on import ("Gym has been unmaintained since 2022 ...").
  Google Research Football needs gym; our adapters expose dm_env, so the banner is wrong advice here. It comes
  from the optional `gym_notices` package, which is replaced by an empty table before gym is imported.
* `import_tensorflow()`: imports TensorFlow with its C++ start-up lines filtered: absl's
  "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR" and oneDNN's
  "oneDNN custom operations are on" INFO line (both written before TF_CPP_MIN_LOG_LEVEL takes effect). Every
  other line written during the import is passed through to stderr unchanged.
* `quiet_tensorflow_import()`: the same filter for a TensorFlow import that happens anywhere later (a library
  module's top-level `import tensorflow as tf`): a meta-path hook wraps the first execution of the `tensorflow`
  module in `filtered_native_stderr` and removes itself (`import_tensorflow` is this hook plus the import). `launchers/__init__.py` installs it, so every
  `python -m launchers.NAME` starts without the two lines, whichever module imports TensorFlow first.
* `ONEDNN_FALLBACK`: oneDNN's "oneDNN supports DT_BOOL (DT_INT32, ...) only on platforms with AVX-512. Falling back
  to the default Eigen-based implementation" line, logged at ERROR level when a graph with boolean or integer ops
  (masks, cell indices) is first optimised on a CPU without AVX-512. Nothing failed: the op runs on Eigen. A run
  loop passes `filtered_native_stderr(NATIVE_NOISE_AT_FIRST_STEP)` around its first update only.
"""

import contextlib
import importlib.abc
import os
import re
import sys
import tempfile
import types
import warnings

_NATIVE_NOISE = (
    re.compile(r'^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$'),
    re.compile(r'^I\d{4} [\d:. ]+\d+ port\.cc:\d+\] oneDNN custom operations are on\.'),
)

ONEDNN_FALLBACK = re.compile(r'^E\d{4} [\d:. ]+\d+ util\.cc:\d+\] oneDNN supports DT_\w+ only on platforms with '
                             r'AVX-512\. Falling back to the default Eigen-based implementation if present\.$')
NATIVE_NOISE_AT_FIRST_STEP = _NATIVE_NOISE + (ONEDNN_FALLBACK,)


def filter_known_warnings() -> None:
  """Hides the dependency warnings listed in the module docstring (and no other)."""
  warnings.filterwarnings('ignore', message=r'distutils Version classes are deprecated', category=DeprecationWarning)
  warnings.filterwarnings('ignore', message=r'.*Initializing wrapper in old step API', category=DeprecationWarning)


def silence_gym_notice() -> None:
  """Makes `import gym` print no banner (see module docstring). Call before gym (gfootball) is imported."""
  if 'gym' in sys.modules:
    return
  package = types.ModuleType('gym_notices')
  notices = types.ModuleType('gym_notices.notices')
  notices.notices = {}
  package.notices = notices
  sys.modules.setdefault('gym_notices', package)
  sys.modules.setdefault('gym_notices.notices', notices)


@contextlib.contextmanager
def filtered_native_stderr(patterns=_NATIVE_NOISE):
  """Captures what C/C++ code writes to file descriptor 2 inside the block, then writes it back to stderr
  without the lines matching `patterns`. For short, synchronous blocks (an import), never around training."""
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile(mode='w+b') as capture:
    os.dup2(capture.fileno(), 2)
    try:
      yield
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      capture.seek(0)
      kept = [line for line in capture.read().decode(errors='replace').splitlines(keepends=True)
              if not any(p.search(line.rstrip('\n')) for p in patterns)]
      if kept:
        sys.stderr.write(''.join(kept))
        sys.stderr.flush()


def import_tensorflow():
  """`import tensorflow` with its known start-up noise removed (see module docstring); returns the module."""
  filter_known_warnings()
  quiet_tensorflow_import()
  import tensorflow  # pylint: disable=g-import-not-at-top
  return tensorflow


class _QuietTensorFlowLoader(importlib.abc.Loader):
  """Runs the real loader of `tensorflow` inside `filtered_native_stderr`."""

  def __init__(self, loader):
    self._loader = loader

  def create_module(self, spec):
    return self._loader.create_module(spec)

  def exec_module(self, module):
    with filtered_native_stderr():
      self._loader.exec_module(module)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
  """Finds `tensorflow` once through the other finders, wraps its loader, then leaves `sys.meta_path`."""

  def find_spec(self, fullname, path=None, target=None):
    if fullname != 'tensorflow':
      return None
    _remove_finder()
    for finder in sys.meta_path:
      find = getattr(finder, 'find_spec', None)
      spec = find(fullname, path, target) if find else None
      if spec is not None:
        if spec.loader is not None:
          spec.loader = _QuietTensorFlowLoader(spec.loader)
        return spec
    return None


def _remove_finder():
  sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _QuietTensorFlowFinder)]


def quiet_tensorflow_import() -> None:
  """Makes the process's first `import tensorflow`, wherever it happens, drop the start-up noise (see module
  docstring). Does nothing once TensorFlow is imported."""
  if 'tensorflow' in sys.modules or any(isinstance(f, _QuietTensorFlowFinder) for f in sys.meta_path):
    return
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')
  filter_known_warnings()
  sys.meta_path.insert(0, _QuietTensorFlowFinder())
