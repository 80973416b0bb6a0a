"""What the multi-step example scripts share: run one project command in a subprocess with its log, and read the
JSON it leaves. Imported by examples/video_mmnist.py and examples/video_standins.py (run as scripts, so this folder
is on sys.path)."""

import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(tag: str, name: str, args, log: str, module: bool = True) -> float:
  """`python [-m] args...` from the repository root: every line goes to `log`, the project's own lines (those
  starting with '[') also to the console; exits the example with one line naming the log if the command fails.
  Returns the wall time in seconds."""
  cmd = [sys.executable] + (['-m'] if module else []) + list(args)
  shown = ' '.join((['python', '-m'] if module else ['python']) + list(args))
  print(f'[{tag}] {name}: {shown}', flush=True)
  start = time.monotonic()
  with open(log, 'a') as f:
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
      f.write(line)
      if line.startswith('['):          # the project's own lines; library noise stays in the log
        print('  ' + line, end='', flush=True)
    proc.wait()
  if proc.returncode:
    sys.exit(f'[{tag}] {name} failed (exit {proc.returncode}); its output is in {log}')
  return time.monotonic() - start


def read_json(path: str):
  """The JSON file at `path`, or None if there is none."""
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)
