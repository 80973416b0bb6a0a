"""benchmarks/dqn_throughput.py end to end at smoke settings (CartPole only, short windows): exit 0, one JSON line and
the Markdown report, the ratios it derives recomputed here from the rates it saved, and the system window counted
in whole training-loop steps; a bad flag is one error line and exit 2. Not timings: benchmarks are not tests."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'benchmarks', 'dqn_throughput.py')


def _run(*args, timeout=400):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=timeout, env=env,
                        cwd=ROOT)


def test_smoke_run_writes_consistent_ratios(tmp_path):
  out = str(tmp_path / 'dq')
  proc = _run('--settings=cartpole', '--component_s=0.3', '--system_steps=120', '--learning_starts=64',
              f'--out={out}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(out + '.jsonl') as f:
    rows = [json.loads(line) for line in f]
  assert len(rows) == 1 and len(rows[0]['settings']) == 1
  s = rows[0]['settings'][0]
  assert s['env'] == 'cartpole' and s['variant'] == 'mlp' and s['parameters'] == 4 * 64 + 64 + 64 * 64 + 64 + 64 * 2 + 2
  r = s['replay_ratio']
  per_step = (1 / s['env_steps_per_s'] + 1 / s['inference_calls_per_s']
              + r * (1 / s['replay_samples_per_s'] + 1 / s['learner_updates_per_s']))
  assert s['serial_bound_steps_per_s'] == pytest.approx(1 / per_step, rel=1e-9)
  assert s['system_over_serial_bound'] == pytest.approx(s['system_steps_per_s'] * per_step, rel=1e-9)
  assert s['system_steps'] == 120 and s['system_steps_per_s'] == pytest.approx(120 / s['system_s'], rel=1e-9)
  assert s['system_updates'] == 120          # ratio 1, every step of the timed session past learning_starts
  report = open(out + '.md').read()
  assert 'cartpole mlp (batch 64)' in report and 'bound' in proc.stdout


def test_unknown_setting_is_one_error_line():
  proc = _run('--settings=pong')
  assert proc.returncode == 2
  lines = [l for l in proc.stderr.splitlines() if l.startswith('error:')]
  assert len(lines) == 1 and 'unknown pong' in lines[0]
