"""`python -m launchers.world_graph`: bad input is one line and exit 2; a short run on the tiny maze leaves every file
the issue lists, resumes, and stops cleanly on SIGTERM; the SavedModels it writes reload."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from launcher_test_helpers import ROOT, one_error_line, run_module

SMALL_NETS = ['--maze=tiny', '--num_envs=4', '--horizon=8', '--mu0=2', '--edge_walks=8', '--edge_walk_length=12',
              '--log_interval_s=0']


def run_launcher(*args, timeout=300):
  return run_module('launchers.world_graph', *args, timeout=timeout)


@pytest.fixture(scope='module')
def bad_files(tmp_path_factory):
  d = tmp_path_factory.mktemp('bad')
  (d / 'ragged.txt').write_text('#####\n#..#\n#####\n')
  (d / 'wall.json').write_text('[[0, 0]]')
  (d / 'notjson.json').write_text('[[1, 1]')
  return d


@pytest.mark.parametrize('args,needles', [
    (['--maze=huge'], ['--maze=huge', 'tiny', 'small']),
    (['--profile=gpu'], ['--profile=gpu', 'cpu', 'full']),
    (['--num_envs=0'], ['--num_envs=0', 'positive']),
    (['--mu0=30'], ['--mu0=30', 'horizon']),
    (['--waypoints=best'], ['--waypoints', 'learned', 'random', '.json']),
    (['--kl_terms=-1'], ['--kl_terms=-1']),
    (['extra'], ['unexpected arguments']),
])
def test_bad_flags_give_one_clear_line(args, needles, tmp_path):
  line = one_error_line(run_launcher(*args, f'--logdir={tmp_path}', timeout=120))
  for needle in needles:
    assert needle in line, line


def test_bad_files_give_one_clear_line(bad_files, tmp_path):
  line = one_error_line(run_launcher(f'--maze={bad_files / "ragged.txt"}', f'--logdir={tmp_path}'))
  assert 'ragged.txt' in line and 'row' in line
  line = one_error_line(run_launcher('--maze=tiny', f'--waypoints={bad_files / "wall.json"}', f'--logdir={tmp_path}'))
  assert 'wall.json' in line and 'wall' in line
  line = one_error_line(run_launcher('--maze=tiny', f'--waypoints={bad_files / "notjson.json"}',
                                     f'--logdir={tmp_path}'))
  assert 'notjson.json' in line


def test_a_short_run_leaves_its_files_resumes_and_exports(tmp_path):
  logdir = str(tmp_path / 'run')
  proc = run_launcher(*SMALL_NETS, '--iterations=4', f'--logdir={logdir}')
  assert proc.returncode == 0, proc.stdout + proc.stderr
  assert 'Traceback' not in proc.stderr and 'remapper failed' not in proc.stderr
  assert 'oneDNN supports' not in proc.stderr
  assert '[world_graph] iteration 4/4' in proc.stdout and 'learning check' in proc.stdout
  for name in ('config.json', 'graph.json', 'graph.png', 'waypoints_final.png', 'phase1.json',
               'saved_model/vae/saved_model.pb', 'saved_model/pi_g/saved_model.pb'):
    assert os.path.exists(os.path.join(logdir, name)), name
  assert any(f.startswith('events.out.tfevents') for f in os.listdir(logdir))
  with open(os.path.join(logdir, 'phase1.json')) as f:
    assert json.load(f)['iterations'] == 4
  # Resume with more iterations: continues from 4.
  proc = run_launcher(*SMALL_NETS, '--iterations=6', f'--logdir={logdir}')
  assert proc.returncode == 0, proc.stderr
  assert 'resumed from' in proc.stdout and 'at iteration 4' in proc.stdout
  assert '[world_graph] iteration 6/6' in proc.stdout
  # Another architecture in the same logdir is refused, nothing written.
  line = one_error_line(run_launcher('--maze=small', f'--logdir={logdir}'))
  assert 'maze' in line and logdir in line
  # The VAE's prior reloads without the training code.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  served = tf.saved_model.load(os.path.join(logdir, 'saved_model', 'vae'))
  out = served.prior(tf.constant([[1, 1], [1, 2]], tf.int32))
  mean = out['mean'].numpy()
  np.testing.assert_allclose(mean, out['alpha'].numpy() / (out['alpha'].numpy() + out['beta'].numpy()), rtol=1e-5)


def test_sigterm_saves_and_a_rerun_resumes(tmp_path):
  logdir = str(tmp_path / 'run')
  proc = subprocess.Popen([sys.executable, '-m', 'launchers.world_graph', *SMALL_NETS, '--iterations=100000',
                           f'--logdir={logdir}'], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
  deadline = time.monotonic() + 240
  seen = ''
  while time.monotonic() < deadline:
    line = proc.stdout.readline()
    seen += line
    if '[world_graph] iteration 3/' in line or '[world_graph] iteration 4/' in line:
      break
  proc.send_signal(signal.SIGTERM)
  out, err = proc.communicate(timeout=240)
  assert proc.returncode == 128 + signal.SIGTERM, seen + out + err
  assert 'saved checkpoint' in out and 'run the same command again to resume' in out
  proc = run_launcher(*SMALL_NETS, '--iterations=6', f'--logdir={logdir}')
  assert proc.returncode == 0 and 'resumed from' in proc.stdout, proc.stdout + proc.stderr
