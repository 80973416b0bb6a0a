"""The headline command against the real Google Research Football engine: trains, checkpoints, writes
TensorBoard events and a SavedModel, resumes; and a missing engine is one clear line, not a stand-in."""

import glob
import json
import os
import subprocess
import sys

import pytest

import marl_test_helpers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def launcher(*args, env=None, timeout=900):
  return subprocess.run([sys.executable, '-m', 'launchers.marl', *args], cwd=ROOT, capture_output=True, text=True,
                        timeout=timeout, env=env)


@pytest.mark.grf
def test_headline_runs_real_grf_and_resumes(tmp_path):
  pytest.importorskip('gfootball')
  logdir = str(tmp_path / 'acnn')
  common = ['--env=grf_5v5', '--model=acnn', '--num_actors=2', '--batch_size=2', '--unroll_length=16',
            f'--logdir={logdir}']
  first = launcher(*common, '--total_frames=128')
  assert first.returncode == 0, first.stderr[-3000:]
  assert 'frames 128/128' in first.stdout
  assert glob.glob(os.path.join(logdir, 'checkpoints', 'ckpt-128*'))
  assert glob.glob(os.path.join(logdir, 'events.out.tfevents.*'))
  assert os.path.exists(os.path.join(logdir, 'saved_model', 'saved_model.pb'))
  with open(os.path.join(logdir, 'config.json')) as f:
    assert json.load(f)['env'] == 'grf_5v5'

  second = launcher(*common, '--total_frames=192')
  assert second.returncode == 0, second.stderr[-3000:]
  assert 'resumed from' in second.stdout and 'at 128 frames' in second.stdout
  assert glob.glob(os.path.join(logdir, 'checkpoints', 'ckpt-192*'))

  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  served = tf.saved_model.load(os.path.join(logdir, 'saved_model'))
  out = served.signatures['serving_default'](observations=tf.zeros([1, 5, 72, 96, 16], tf.uint8))
  assert out['policy_logits'].shape == (1, 5, 19)
  assert np.all(out['actions'].numpy() < 19)


def test_missing_gfootball_is_one_clear_line(tmp_path):
  # A `gfootball` package that fails to import, first on the path: what a machine without the engine sees.
  fake = tmp_path / 'shadow' / 'gfootball'
  fake.mkdir(parents=True)
  (fake / '__init__.py').write_text("raise ImportError('No module named gfootball (test shadow)')\n")
  env = dict(os.environ, PYTHONPATH=f'{tmp_path / "shadow"}{os.pathsep}{ROOT}')
  proc = launcher('--env=grf_5v5', '--model=acnn', f'--logdir={tmp_path / "run"}', env=env, timeout=300)
  line = marl_test_helpers.error_line(proc)
  assert 'gfootball' in line and 'scripts/setup.sh' in line
  assert not glob.glob(str(tmp_path / 'run' / 'checkpoints' / '*')), 'no stand-in may train in its place'
