"""Helpers shared by the launcher tests: run `python -m launchers.NAME` from the repository root, and the check that
bad input gives one `error:` line, exit 2, no traceback."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START_UP_NOISE = ('WARNING: All log', 'I0000')       # absl / TensorFlow start-up lines, not the launcher's


def run_module(module: str, *args, timeout: float = 300):
  """`python -m module args...` in the repository root; the completed process (text output)."""
  return subprocess.run([sys.executable, '-m', module, *args], cwd=ROOT, capture_output=True, text=True,
                        timeout=timeout)


def one_error_line(proc) -> str:
  """Asserts exit 2, no traceback and exactly one `error: ...` line on stderr; returns that line."""
  assert proc.returncode == 2, proc.stdout + proc.stderr
  assert 'Traceback' not in proc.stderr
  lines = [l for l in proc.stderr.splitlines() if l.strip() and not l.startswith(START_UP_NOISE)]
  assert len(lines) == 1, proc.stderr
  assert lines[0].startswith('error: ')
  return lines[0]
