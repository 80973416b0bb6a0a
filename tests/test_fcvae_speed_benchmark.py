"""benchmarks/fcvae_speed.py end to end with --quick: exit 0, the saved row's ratio recomputed from its rounds, the
report written; bad flags are one line and exit 2."""

import json
import os
import subprocess
import sys

import numpy as np

from launcher_test_helpers import ROOT, one_error_line  # pylint: disable=g-bad-import-order

SCRIPT = os.path.join(ROOT, 'benchmarks', 'fcvae_speed.py')


def _run(*args):
  return subprocess.run([sys.executable, SCRIPT, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_quick_run_reports_the_ratio(tmp_path):
  out = tmp_path / 'speed'
  proc = _run('--quick', f'--out={out}')
  assert proc.returncode == 0, proc.stdout + proc.stderr
  row = json.loads(open(f'{out}.jsonl').read().strip().splitlines()[-1])
  assert len(row['pipeline_rounds']) == len(row['train_rounds']) == 3
  assert row['ratio'] == np.median(row['pipeline_rounds']) / np.median(row['train_rounds'])
  assert row['settings']['num'] == 200
  assert 'pipeline / train' in open(f'{out}.md').read()


def test_bad_flags():
  assert '--rounds=0' in one_error_line(_run('--rounds=0'))
  assert '--frames_dir=/nowhere' in one_error_line(_run('--frames_dir=/nowhere'))
