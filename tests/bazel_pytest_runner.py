"""Runs one pytest file as a Bazel `py_test` (see `pytest_test` in tools/bazel/pytest.bzl and the top-level BUILD).

    bazel test //:test_vtrace          # what Bazel runs: bazel_pytest_runner.py [--markers=EXPR] tests/test_vtrace.py

`--markers=EXPR` is handed to pytest as `-m EXPR`: the default targets deselect tests marked `grf` (needs the real
football engine) or `slow`, which the full pytest suite (`bash scripts/run_tests.sh`) runs.

The library is imported from Bazel's runfiles, i.e. only the files the target's `deps` declare: the editable
install in .venv (which would resolve anything from the source tree) is switched off for this process.
Exit status is pytest's, except that "no tests collected" (5) is a failure with a line saying why.
"""

import os
import sys

PROJECT_PACKAGES = ('rlcv_tf', 'launchers')


def _drop_editable_install():
  """Removes setuptools' editable-install finder for this project from sys.meta_path."""
  sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, '__module__', '').startswith('__editable___rlcv_tf')]


def main(argv):
  markers = None
  args = list(argv)
  if args and args[0].startswith('--markers='):
    markers = args.pop(0).split('=', 1)[1]
  if not args:
    sys.exit('usage: bazel_pytest_runner.py [--markers=EXPR] tests/test_FILE.py [pytest args]')
  test_file, extra = args[0], args[1:]

  # Bazel runs the test from the main repository's runfiles directory, which holds the declared sources,
  # setup.cfg (pytest configuration and markers) and the test files.
  here = os.getcwd()
  if not os.path.exists(test_file):
    sys.exit(f'bazel_pytest_runner: {test_file} is not in the runfiles of this target (cwd {here})')
  _drop_editable_install()
  if here not in sys.path:
    sys.path.insert(0, here)
  # Subprocesses (launchers, actor processes) must import the same runfiles copy.
  os.environ['PYTHONPATH'] = os.pathsep.join([here] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep)
                                                       if p and p != here])

  # The sandbox's HOME is read-only: matplotlib (which TensorFlow imports when installed) would log a warning on
  # every start-up, to stderr, including in launcher subprocesses whose stderr the tests read.
  if os.environ.get('TEST_TMPDIR'):
    os.environ.setdefault('MPLCONFIGDIR', os.path.join(os.environ['TEST_TMPDIR'], 'matplotlib'))

  import pytest  # pylint: disable=g-import-not-at-top

  pytest_args = [test_file, '-q', '-p', 'no:cacheprovider', '--rootdir', here]
  tmp = os.environ.get('TEST_TMPDIR')
  if tmp:
    pytest_args += ['--basetemp', os.path.join(tmp, 'pytest')]
  if markers:
    pytest_args += ['-m', markers]
  pytest_args += extra
  code = pytest.main(pytest_args)

  for package in PROJECT_PACKAGES:
    module = sys.modules.get(package)
    # abspath, not realpath: runfiles are symlinks into the source tree.
    if module is not None and not os.path.abspath(module.__file__).startswith(here + os.sep):
      print(f'bazel_pytest_runner: {package} was imported from {module.__file__}, not from the runfiles: '
            'a Bazel dependency is missing', file=sys.stderr)
      return 1
  if code == pytest.ExitCode.NO_TESTS_COLLECTED:
    why = f' with -m "{markers}"' if markers else ''
    print(f'bazel_pytest_runner: no tests ran in {test_file}{why}; if every test there is marked grf/slow, tag the '
          'target "manual" in BUILD (pytest_test(..., manual=True))', file=sys.stderr)
    return 1
  return int(code)


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
