"""Helpers shared by the launcher tests: run `python -m launchers.NAME` from the repository root, the check that
bad input gives one `error:` line, exit 2, no traceback, and Ctrl-C in the middle of a run."""

import os
import signal
import subprocess
import sys
import time

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


def interrupt_after_progress(module: str, *args, marker: str = 'steps/s', timeout: float = 300):
  """Starts `python -m module args...`, sends SIGINT once a progress line (holding `marker`) is printed, and
  returns (exit code, everything it printed)."""
  env = dict(os.environ, PYTHONUNBUFFERED='1')     # a pipe is block-buffered: the progress line must arrive now
  proc = subprocess.Popen([sys.executable, '-m', module, *args], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, env=env)
  deadline = time.monotonic() + timeout
  lines = []
  for line in proc.stdout:
    lines.append(line)
    if marker in line or time.monotonic() > deadline:
      break
  proc.send_signal(signal.SIGINT)
  rest, _ = proc.communicate(timeout=timeout)
  return proc.returncode, ''.join(lines) + rest
