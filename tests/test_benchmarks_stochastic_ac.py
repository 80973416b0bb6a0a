"""The Chapter 2 benchmark scripts run end to end at their smallest settings on the real cartpole_masked engine.

Not timings (benchmarks are not tests): each script exits 0, writes its JSON line and Markdown report, and the
figures it derives agree with the measurements it saved, recomputed here independently (the serial bound
1 / (1/env + 1/infer + 1/learn), the ratios, the medians over rounds, the goals). Bad flags give one `error:` line
and exit 2.
"""

import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THROUGHPUT = os.path.join(ROOT, 'benchmarks', 'stochastic_ac_throughput.py')
OVERHEAD = os.path.join(ROOT, 'benchmarks', 'stochastic_ac_overhead.py')


def _run(script, *args, timeout=240):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run([sys.executable, script, *args], capture_output=True, text=True, timeout=timeout, env=env,
                        cwd=ROOT)


def _rows(out):
  with open(out + '.jsonl') as f:
    return [json.loads(line) for line in f if line.strip()]


def test_throughput_smallest_run(tmp_path):
  out = str(tmp_path / 'tp')
  with open(out + '.jsonl', 'w') as f:      # an earlier run's line stays and shows in the report's history
    f.write(json.dumps({'earlier': True}) + '\n')
  res = _run(THROUGHPUT, '--env=cartpole_masked', '--num_envs=2', '--unroll_length=3', '--component_s=0.3',
             '--learner_updates=1', '--warmup_iterations=1', '--system_iterations=2', '--runtimes=inline,actors',
             f'--out={out}')
  assert res.returncode == 0, res.stderr[-3000:]
  earlier, row = _rows(out)
  assert earlier == {'earlier': True}
  assert row['settings']['env'] == 'cartpole_masked' and row['settings']['num_envs'] == 2
  assert list(row['runtimes']) == ['inline', 'actors']
  infer = row['inference_only']['agent_steps_per_s']
  learn = row['learner_only']['agent_steps_per_s']
  assert infer > 0 and learn > 0
  assert row['learner_only']['updates'] == 1
  # learner-only: agent steps per update / time per update.
  np.testing.assert_allclose(learn, 2 * 3 / (row['learner_only']['ms_per_update'] / 1e3), rtol=1e-9)
  for runtime, r in row['runtimes'].items():
    env = r['env_only']['agent_steps_per_s']
    system = r['system']['agent_steps_per_s']
    assert env > 0 and system > 0, runtime
    assert r['env_only']['agent_steps'] % 2 == 0     # whole steps of both environments
    bound = 1.0 / (1.0 / env + 1.0 / infer + 1.0 / learn)
    np.testing.assert_allclose(r['serial_bound'], bound, rtol=1e-9)
    np.testing.assert_allclose(r['system_over_serial_bound'], system / bound, rtol=1e-9)
    np.testing.assert_allclose(r['system_over_env_only'], system / env, rtol=1e-9)
    assert r['goal_met'] == (system / bound >= 0.9)
    # One whole iteration (2 envs x 3 steps) in the window.
    assert r['system']['window_iterations'] == 1
    np.testing.assert_allclose(system, 6 / r['system']['window_s'], rtol=1e-9)
    assert 0 < r['system']['env_side_ms_per_iteration'] < r['system']['ms_per_iteration']
    np.testing.assert_allclose(r['predicted_ms']['learner'], row['learner_only']['ms_per_update'], rtol=1e-9)
    np.testing.assert_allclose(r['predicted_ms']['env'], 1e3 * 6 / env, rtol=1e-9)
    fps = r['env_only']['emulator_frames_per_agent_step']
    if fps is not None:
      np.testing.assert_allclose(r['env_only']['emulator_frames_per_s'], env * fps, rtol=1e-9)
  with open(out + '.md') as f:
    report = f.read()
  assert '| runtime | env-only |' in report and '| inline |' in report and '| actors |' in report
  assert 'system / serial bound' in report and 'load average' in report


def test_overhead_smallest_run(tmp_path):
  out = str(tmp_path / 'oh')
  res = _run(OVERHEAD, '--env=cartpole_masked', '--models=sa3c,hpa3c', '--num_envs=2', '--unroll_length=3',
             '--rounds=3', '--acting_iters=2', '--acting_batch=3', '--vote_samples=5,50', f'--out={out}')
  assert res.returncode == 0, res.stderr[-3000:]
  (row,) = _rows(out)
  train = row['train_step']
  assert list(train) == ['a3c', 'sa3c', 'hpa3c']      # A3C added first: the ratios are to it
  base = np.median(train['a3c']['ms_all'])
  for model, r in train.items():
    assert len(r['ms_all']) == 3 and min(r['ms_all']) > 0, model
    np.testing.assert_allclose(r['ms_median'], np.median(r['ms_all']), rtol=1e-9)
    np.testing.assert_allclose(r['ratio_to_a3c'], np.median(r['ms_all']) / base, rtol=1e-9)
    np.testing.assert_allclose(r['agent_steps_per_s'], 6 / (r['ms_median'] / 1e3), rtol=1e-9)
  assert train['hpa3c']['parameters'] > train['sa3c']['parameters'] == train['a3c']['parameters']
  acting = row['acting']['sa3c']
  assert list(acting) == ['map', 'vote-5', 'vote-50']
  for mode, r in acting.items():
    np.testing.assert_allclose(r['ratio_to_map'], np.median(r['ms_all']) / np.median(acting['map']['ms_all']),
                               rtol=1e-9)
    np.testing.assert_allclose(r['decisions_per_s'], 3 / (r['ms_median'] / 1e3), rtol=1e-9)
  goals = {g['goal']: g for g in row['goals']}
  sa3c_goal = goals['SA3C train step <= 1.1x A3C']
  assert sa3c_goal['met'] == (train['sa3c']['ratio_to_a3c'] <= 1.10)
  vote_goal = goals['sa3c vote-5 acting <= 1.5x MAP']
  assert vote_goal['met'] == (acting['vote-5']['ratio_to_map'] <= 1.5)
  fastest = min(acting['vote-5']['ms_all']) / min(acting['map']['ms_all'])
  np.testing.assert_allclose(vote_goal['fastest_round_value'], fastest, rtol=1e-9)
  assert vote_goal['met_fastest_round'] == (fastest <= 1.5)
  np.testing.assert_allclose(sa3c_goal['fastest_round_value'],
                             min(train['sa3c']['ms_all']) / min(train['a3c']['ms_all']), rtol=1e-9)
  with open(out + '.md') as f:
    report = f.read()
  assert '| hpa3c |' in report and '| sa3c | vote-50 |' in report and 'load average' in report
  assert '(fastest rounds)' in report


def test_bad_flags_give_one_error_line(tmp_path):
  for script, flag, words in ((THROUGHPUT, '--model=acer', 'not an A3C-family model'),
                              (THROUGHPUT, '--runtimes=threads', 'valid values are inline, actors'),
                              (OVERHEAD, '--vote_samples=5,x', 'integers >= 1 expected'),
                              (OVERHEAD, '--env=atari_pong', 'env: unknown Chapter 2 environment')):
    res = _run(script, flag, f'--out={tmp_path / "x"}', timeout=120)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith('error: ') and words in lines[0], (
        flag, res.stderr[-2000:])
    assert not os.path.exists(str(tmp_path / 'x.jsonl'))
