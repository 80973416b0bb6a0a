"""`python -m launchers.feudal` and `launchers.feudal_eval`: bad input is one line and exit 2; a short WN run on the
tiny maze with a phase-1 graph leaves its files, and the exported agent plays from its SavedModels alone."""

import json
import os

import pytest

from launcher_test_helpers import one_error_line, run_module

PHASE1 = ['--maze=tiny', '--num_envs=4', '--horizon=8', '--mu0=2', '--edge_walks=8', '--edge_walk_length=12',
          '--iterations=2', '--log_interval_s=0']
PHASE2 = ['--maze=tiny', '--num_envs=4', '--iterations=2', '--eval_every=1', '--log_interval_s=0']


def run(module, *args, timeout=600):
  return run_module(module, *args, timeout=timeout)


@pytest.fixture(scope='module')
def phase1(tmp_path_factory):
  logdir = str(tmp_path_factory.mktemp('phase1') / 'run')
  proc = run('launchers.world_graph', *PHASE1, f'--logdir={logdir}')
  assert proc.returncode == 0, proc.stdout + proc.stderr
  return logdir


@pytest.mark.parametrize('args,needles', [
    (['--model=ppo'], ['--model=ppo', 'a2c', 'fn', 'wn']),
    (['--task=goalreach', '--model=a2c'], ['--task=goalreach', 'multigoal']),
    (['--narrow_window=4', '--model=fn'], ['--narrow_window=4', 'odd']),
    (['--num_envs=0', '--model=a2c'], ['--num_envs=0', 'positive']),
    (['--model=fn', '--traversal'], ['--traversal', 'wn']),
    (['--maze=nowhere', '--model=a2c'], ['--maze=nowhere']),
    (['--graph_from=/nonexistent'], ['/nonexistent', 'graph.json', 'launchers.world_graph']),
])
def test_bad_flags_give_one_clear_line(args, needles, tmp_path):
  line = one_error_line(run('launchers.feudal', *args, f'--logdir={tmp_path}', timeout=120))
  for needle in needles:
    assert needle in line, line


def test_wn_without_a_phase1_run_says_how_to_make_one(tmp_path):
  maze = tmp_path / 'nophase1maze.txt'
  maze.write_text('#######\n#.....#\n#.###.#\n#.....#\n#######\n')
  line = one_error_line(run('launchers.feudal', f'--maze={maze}', f'--logdir={tmp_path / "run"}', timeout=120))
  assert 'launchers.world_graph' in line and '--graph_from' in line and 'nophase1maze_learned' in line


def test_a_graph_of_another_maze_is_refused(phase1, tmp_path):
  line = one_error_line(run('launchers.feudal', '--maze=small', f'--graph_from={phase1}', f'--logdir={tmp_path}'))
  assert phase1 in line or 'graph.json' in line


def test_a_short_wn_run_exports_an_agent_that_plays(phase1, tmp_path):
  logdir = str(tmp_path / 'wn')
  proc = run('launchers.feudal', *PHASE2, f'--graph_from={phase1}', f'--logdir={logdir}')
  assert proc.returncode == 0, proc.stdout + proc.stderr
  assert 'Traceback' not in proc.stderr and 'oneDNN supports' not in proc.stderr
  assert '[feudal] iteration 2/2' in proc.stdout and 'learning check' in proc.stdout
  assert 'validation at iteration 1' in proc.stdout
  with open(os.path.join(logdir, 'eval.json')) as f:
    result = json.load(f)
  assert result['iterations'] == 2 and 'random_score' in result
  assert 'episode picture not written' not in proc.stdout
  for name in ('config.json', 'best/ckpt.index', 'agent/agent.json', 'agent/graph.json', 'episode.png'):
    assert os.path.exists(os.path.join(logdir, name)), name
  played = run('launchers.feudal_eval', f'--agent={os.path.join(logdir, "agent")}', '--seeds=2000-2003')
  assert played.returncode == 0, played.stdout + played.stderr
  assert '[feudal_eval] multigoal: mean return per episode' in played.stdout
  line = one_error_line(run('launchers.feudal_eval', f'--agent={tmp_path}'))
  assert 'agent.json' in line
  line = one_error_line(run('launchers.feudal_eval', f'--agent={os.path.join(logdir, "agent")}', '--seeds=9-1'))
  assert '--seeds=9-1' in line


def test_the_a2c_baseline_runs_without_a_graph(tmp_path):
  logdir = str(tmp_path / 'a2c')
  proc = run('launchers.feudal', *PHASE2, '--model=a2c', f'--logdir={logdir}')
  assert proc.returncode == 0, proc.stdout + proc.stderr
  assert os.path.exists(os.path.join(logdir, 'agent', 'a2c', 'saved_model.pb'))
