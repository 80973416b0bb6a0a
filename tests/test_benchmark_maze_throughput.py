"""benchmarks/maze_throughput.py (issue 11, Chapter 3 throughput) run end to end with --quick, and its guards.

Not timings (benchmarks are not tests): the script exits 0, appends its JSON line and writes the Markdown report,
prints the ratios, and the figures it derives agree with the measurements it saved, recomputed here independently
(medians over rounds, env-steps/s from batch steps and times, batched / reference ratios, the sum of the phase-1
parts and sum / iteration, the goals). Its reference loop must agree with BatchMaze step by step, and the check
that says so must catch a difference. Bad flags give one `error:` line and exit 2.
"""

import importlib.util
import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from rlcv_tf.envs import maze_layouts

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'benchmarks', 'maze_throughput.py')
PHASE1_PARTS = ('env', 'inference', 'relabel', 'pi_g_train', 'vae_train', 'waypoints')


def _run(*args, timeout=300):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=timeout, env=env,
                        cwd=ROOT)


@pytest.fixture(scope='module')
def bench_module():
  spec = importlib.util.spec_from_file_location('maze_throughput_under_test', SCRIPT)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_quick_run_writes_report_with_finite_ratios(tmp_path):
  out = str(tmp_path / 'mt')
  with open(out + '.jsonl', 'w') as f:      # an earlier line of another kind stays and is not reported
    f.write(json.dumps({'earlier': True}) + '\n')
  res = _run('--quick', f'--out={out}')
  assert res.returncode == 0, res.stderr[-3000:]
  with open(out + '.jsonl') as f:
    earlier, row = [json.loads(line) for line in f if line.strip()]
  assert earlier == {'earlier': True}
  assert row['benchmark'] == 'maze_throughput' and row['settings']['quick']
  assert row['settings']['batch_sizes'] == [1, 16, 128] and row['settings']['maze'] == 'small'
  for key in ('start', 'after_env', 'end'):
    assert len(row['load_average'][key]) == 3
  assert 'identical' in row['reference_check']

  # Env part: every variant's rates from its own rounds; the ratios from the medians and the fastest rounds.
  rounds = row['settings']['env_rounds']
  pairs = {(r['task'], r['batch_size']): r for r in row['env_ratios']}
  assert set(pairs) == {('multigoal', 1), ('multigoal', 16), ('multigoal', 128), ('multigoal_stochastic', 128)}
  for (task, b), r in pairs.items():
    batched, reference = row['env'][f'{task}/B{b}/batched'], row['env'][f'{task}/B{b}/reference']
    for v in (batched, reference):
      assert len(v['env_steps_per_s_all']) == rounds and min(v['env_steps_per_s_all']) > 0
      np.testing.assert_allclose(v['env_steps_per_s'], np.median(v['env_steps_per_s_all']), rtol=1e-9)
      assert v['batch_steps'] >= 3
    ratio = np.median(batched['env_steps_per_s_all']) / np.median(reference['env_steps_per_s_all'])
    assert math.isfinite(r['ratio']) and r['ratio'] > 0
    np.testing.assert_allclose(r['ratio'], ratio, rtol=1e-9)
    np.testing.assert_allclose(r['fastest_round_ratio'],
                               max(batched['env_steps_per_s_all']) / max(reference['env_steps_per_s_all']), rtol=1e-9)
    # Printed, with the value saved.
    m = re.search(rf'^{task} B={b}: .* ratio ([0-9.]+) ', res.stdout, re.M)
    assert m and abs(float(m.group(1)) - r['ratio']) < 0.006, res.stdout[-3000:]

  # Phase 1: medians of the per-round times, their sum and the ratios.
  p = row['phase1']
  s = p['summary']
  times = p['times_ms']
  assert set(times) == {'iteration', *PHASE1_PARTS}
  assert all(len(v) == row['settings']['phase1_rounds'] and min(v) > 0 for v in times.values())
  medians = {k: np.median(v) for k, v in times.items()}
  parts_sum = sum(medians[k] for k in PHASE1_PARTS)
  np.testing.assert_allclose(s['parts_sum_ms'], parts_sum, rtol=1e-9)
  np.testing.assert_allclose(s['parts_over_iteration'], parts_sum / medians['iteration'], rtol=1e-9)
  np.testing.assert_allclose(s['fastest_round_parts_over_iteration'],
                             sum(min(times[k]) for k in PHASE1_PARTS) / min(times['iteration']), rtol=1e-9)
  np.testing.assert_allclose(s['iterations_per_s'], 1e3 / medians['iteration'], rtol=1e-9)
  np.testing.assert_allclose(s['iteration_rate_over_env_only'], medians['env'] / medians['iteration'], rtol=1e-9)
  assert all(math.isfinite(v) for v in (s['parts_over_iteration'], s['iterations_per_s'],
                                        s['env_only_iterations_per_s']))
  assert p['num_envs'] == 16 and p['horizon'] == 25
  assert p['iterations_done'] == row['settings']['warmup_iterations'] + (row['settings']['phase1_rounds'] *
                                                                       row['settings']['iterations_per_round'])
  for steps in p['steps_per_round']:
    assert 1 <= steps['env'] <= 25 and steps['env'] <= steps['act'] <= steps['env'] + 1
  m = re.search(r'sum / iteration ([0-9.]+) ', res.stdout)
  assert m and abs(float(m.group(1)) - s['parts_over_iteration']) < 0.0006, res.stdout[-3000:]

  goals = {g['goal']: g for g in row['goals']}
  g = goals['BatchMaze >= 10x the reference loop at B = 128 (multigoal)']
  assert g['met'] == (pairs[('multigoal', 128)]['ratio'] >= 10)
  g = goals['phase 1: sum of the parts / iteration >= 0.85']
  assert g['met'] == (s['parts_over_iteration'] >= 0.85)
  assert g['met_fastest_round'] == (s['fastest_round_parts_over_iteration'] >= 0.85)

  with open(out + '.md') as f:
    report = f.read()
  assert '## Headline ratios' in report and '| multigoal_stochastic | 128 |' in report
  assert 'sum of the parts' in report and 'load average' in report and '(fastest rounds)' in report


def test_reference_loop_equals_batchmaze_and_the_check_catches_a_difference(bench_module, monkeypatch):
  layout = maze_layouts.get_layout('tiny')
  for task in ('multigoal', 'multigoal_sparse', 'multigoal_stochastic'):
    assert bench_module.check_reference(layout, task, 3, 250, seed=5) > 0     # episodes ended and restarted
  # A reference that forgets to re-draw the lava no longer does the engine's work: the check must say so.
  monkeypatch.setattr(bench_module.ReferenceMaze, 'draw_lava', lambda self: None)
  with pytest.raises(RuntimeError, match='differ in the observation'):
    bench_module.check_reference(layout, 'multigoal_stochastic', 3, 50, seed=5)


def test_bad_flags_give_one_error_line(tmp_path):
  for flag, words in (('--parts=env,gpu', 'valid values are env, phase1'),
                      ('--batch_sizes=1,x', 'integers >= 1 expected'),
                      ('--maze=huge', 'one of tiny, small, medium, large'),
                      ('--task=doorkey', 'the reference loop covers'),
                      ('--warmup_iterations=0', 'must be >= 1')):
    res = _run(flag, f'--out={tmp_path / "x"}', timeout=120)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith('error: ') and words in lines[0], (
        flag, res.stderr[-2000:])
    assert not os.path.exists(str(tmp_path / 'x.jsonl'))
