"""The default run's console shows the project's lines only; the filters remove the named noise and nothing else."""

import os
import subprocess
import sys
import warnings

import pytest

from rlcv_tf.core import quiet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run_launcher(tmp_path, *flags):
  cmd = [sys.executable, '-m', 'launchers.marl', '--model=acnn', '--log_interval_s=0', f'--logdir={tmp_path}/run',
         *flags]
  env = {k: v for k, v in os.environ.items() if k not in ('TF_CPP_MIN_LOG_LEVEL', 'PYTHONWARNINGS')}
  return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)


def _foreign_lines(proc):
  assert proc.returncode == 0, proc.stdout + proc.stderr
  return [l for l in (proc.stdout + proc.stderr).splitlines() if l.strip() and not l.startswith('[marl]')]


def test_stand_in_run_prints_only_project_lines(tmp_path):
  proc = _run_launcher(tmp_path, '--env=mini_5v5_small', '--num_actors=2', '--batch_size=2', '--unroll_length=8',
                       '--total_frames=32')
  assert _foreign_lines(proc) == []
  assert '[marl] done' in proc.stdout


@pytest.mark.grf
def test_real_football_run_prints_only_project_lines(tmp_path):
  """No gym banner or old-step-API warning per actor, no TF start-up lines, no grappler remapper error."""
  proc = _run_launcher(tmp_path, '--env=grf_5v5', '--num_actors=2', '--batch_size=2', '--unroll_length=16',
                       '--total_frames=64', '--smm_size=36x48')
  assert _foreign_lines(proc) == []
  assert 'no finished episode yet; return/agent so far' in proc.stdout


def test_native_filter_drops_only_the_named_lines(capfd):
  noise = ('WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n'
           'I0000 00:00:1796290505.695052   11803 port.cc:153] oneDNN custom operations are on. You may see\n')
  kept = 'E0000 00:00:17 something.cc:1] a real error\n'
  with quiet.filtered_native_stderr():
    os.write(2, (noise + kept).encode())
  err = capfd.readouterr().err
  assert err == kept


def test_warning_filters_are_specific():
  with warnings.catch_warnings(record=True) as caught:
    warnings.resetwarnings()
    warnings.simplefilter('always')
    quiet.filter_known_warnings()
    warnings.warn('distutils Version classes are deprecated. Use packaging.version instead.', DeprecationWarning)
    warnings.warn('WARN: Initializing wrapper in old step API which returns one bool', DeprecationWarning)
    warnings.warn('something else is deprecated', DeprecationWarning)
  assert [str(w.message) for w in caught] == ['something else is deprecated']


def _import_output(code):
  env = {k: v for k, v in os.environ.items() if k not in ('TF_CPP_MIN_LOG_LEVEL', 'PYTHONWARNINGS')}
  proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
  assert proc.returncode == 0, proc.stderr
  return [l for l in (proc.stdout + proc.stderr).splitlines() if l.strip()]


def test_the_launchers_package_makes_the_first_tensorflow_import_quiet():
  """`import launchers` (what `python -m launchers.NAME` does first) makes a later `import tensorflow`, from any
  module, print none of the start-up lines; the same import without it does (so the check can fail)."""
  plain = _import_output('import tensorflow')
  if not any(p.search(line) for line in plain for p in quiet.NATIVE_NOISE_AT_FIRST_STEP):
    pytest.skip('this TensorFlow build prints no start-up lines: nothing to filter')
  assert _import_output('import launchers; import tensorflow as tf; print(tf.constant(2).numpy() + 1)') == ['3']
