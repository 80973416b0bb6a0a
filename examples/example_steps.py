"""What the example scripts share: run one project command in a subprocess with its log, read the JSON it leaves,
time a training once (`timed`), read a TensorBoard scalar back (`scalar_series`). Imported by the examples (run as
scripts, so this folder is on sys.path)."""

import glob
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


def timed(logdir: str, train, finished: bool) -> dict:
  """Runs `train()` unless the run in `logdir` is `finished`; returns {'wall_s', 'steps_per_second', 'reused'}: the
  training's own time, saved as `logdir`/timing.json when it ran, so a table rebuilt later from a finished run
  reports how long the training took, not how long reloading it took (wall_s None when no timing was saved).

  A run that resumes (not finished, timing.json present: more steps asked of a finished run, or a call that
  returned before the end) adds this call's time to the saved one; a call killed before it returned saved none."""
  path = os.path.join(logdir, 'timing.json')
  saved = read_json(path) or {}
  if finished:
    return {'wall_s': None, 'steps_per_second': None, **saved, 'reused': True}
  start = time.monotonic()
  out = train()
  timing = {'wall_s': time.monotonic() - start + (saved.get('wall_s') or 0.0),
            'steps_per_second': getattr(out, 'steps_per_second', None), 'calls': int(saved.get('calls', 0)) + 1}
  with open(path, 'w') as f:
    json.dump(timing, f)
  return {**timing, 'reused': False}


def scalar_series(logdir, tag):
  """(steps, values) of a TensorBoard scalar in logdir's events files (last value per step wins)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  points = {}
  for path in sorted(glob.glob(os.path.join(logdir, 'events.*'))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == tag:
          number = value.simple_value if value.HasField('simple_value') else float(tf.make_ndarray(value.tensor))
          points[int(event.step)] = float(number)
  steps = sorted(points)
  return steps, [points[s] for s in steps]
