"""benchmarks/vae_pg_throughput.py end to end at its smoke settings (the tiny preset on the NumPy stand-in, no vector
env): exit 0, one JSON line and the Markdown report, and the ratios it derives agree with the measurements it saved,
recomputed here (serial bound, system / bound, learner time over fixed's). Not timings: benchmarks are not tests."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'benchmarks', 'vae_pg_throughput.py')


def _run(*args, timeout=400):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=timeout, env=env,
                        cwd=ROOT)


@pytest.fixture(scope='module')
def smoke(tmp_path_factory):
  out = str(tmp_path_factory.mktemp('bench') / 'vt')
  proc = _run('--preset=tiny', '--env=mini_breakout_tiny', '--num_envs=2', '--t_max=8', '--num_minibatches=2',
              '--component_s=0.5', '--runtimes=inline', '--system_runtime=inline', '--vector_threads=',
              f'--out={out}')
  return proc, out


def test_smoke_run_writes_a_consistent_json_line_and_report(smoke):
  proc, out = smoke
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(out + '.jsonl') as f:
    rows = [json.loads(line) for line in f]
  assert len(rows) == 1
  row = rows[0]
  assert row['settings']['env'] == 'mini_breakout_tiny' and set(row['variants']) == {'fixed', 'adapt', 'joint'}
  inference = row['inference_only']['agent_steps_per_s']
  fixed_ms = row['variants']['fixed']['learner_only']['ms_per_update']
  for name, v in row['variants'].items():
    learner = v['learner_only']['samples_per_s']
    bound = 1.0 / (1.0 / v['env_rate'] + 1.0 / inference + 1.0 / learner)
    assert v['serial_bound'] == pytest.approx(bound, rel=1e-6), name
    assert v['system_over_serial_bound'] == pytest.approx(v['system']['agent_steps_per_s'] / bound, rel=1e-6), name
    assert v['learner_time_over_fixed'] == pytest.approx(v['learner_only']['ms_per_update'] / fixed_ms, rel=1e-6)
  assert os.path.exists(out + '.md') and 'joint' in open(out + '.md').read()
  assert 'system / bound' in proc.stdout or 'bound' in proc.stdout


def test_bad_flag_is_one_error_line():
  proc = _run('--variants=fixed,nonsense', '--out=/tmp/never_written')
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert proc.stderr.strip().splitlines()[-1].startswith('error:'), proc.stderr[-500:]
