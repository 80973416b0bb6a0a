"""`python -m launchers.marl`: bad flags give one clear line and a non-zero exit, never a traceback."""

import os
import subprocess
import sys

import pytest

import marl_test_helpers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_launcher(*args, timeout=120):
  return subprocess.run([sys.executable, '-m', 'launchers.marl', *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=timeout)


@pytest.mark.parametrize('args,needle', [
    (['--env=nope'], '--env=nope'),
    (['--model=transformer'], '--model=transformer'),
    (['--total_frames=-5'], '--total_frames=-5'),
    (['--unroll_length=0'], '--unroll_length=0'),
    (['--batch_size=0'], '--batch_size=0'),
    (['--smm_size=72by96'], '--smm_size=72by96'),
    (['--discounting=1.5'], '--discounting=1.5'),
    (['--micro_batches=3'], '--micro_batches=3'),
    (['--lambda=1.5'], '--lambda=1.5'),
    (['--clip_c_threshold=0'], '--clip_c_threshold=0'),
    (['--num_envs=3'], '--num_envs=3'),
])
def test_bad_flags_give_one_clear_line(args, needle, tmp_path):
  assert needle in marl_test_helpers.error_line(run_launcher(*args, f'--logdir={tmp_path}'))


def test_unknown_env_lists_valid_values(tmp_path):
  proc = run_launcher('--env=nope', f'--logdir={tmp_path}')
  assert 'grf_5v5' in proc.stderr and 'mini_5v5' in proc.stderr
  assert 'pendulum' not in proc.stderr and 'atari_' not in proc.stderr   # Chapter 2's envs are not valid here


@pytest.mark.parametrize('launcher,extra', [('launchers.marl', ['--logdir={tmp}']),
                                            ('launchers.marl_eval', ['--agent={tmp}/x']),
                                            ('launchers.marl_attention', ['--agent={tmp}/x'])])
def test_a_chapter_2_env_is_refused_in_one_line_naming_its_launcher(launcher, extra, tmp_path):
  extra = [a.format(tmp=tmp_path) for a in extra]
  proc = subprocess.run([sys.executable, '-m', launcher, '--env=pendulum', *extra], cwd=ROOT, capture_output=True,
                        text=True, timeout=120)
  line = marl_test_helpers.error_line(proc)
  assert proc.returncode == 2, proc.stderr
  assert line.startswith('error: --env=pendulum: a Chapter 2 environment') and 'launchers.stochastic_ac' in line
  valid = line.split('valid values: ')[1].split(', ')
  assert 'grf_5v5' in valid and 'mini_5v5' in valid
  assert not {'pendulum', 'cartpole_masked', 'atari_breakout', 'car_racing'} & set(valid)
  assert os.listdir(tmp_path) == []


def test_unknown_model_lists_valid_values(tmp_path):
  proc = run_launcher('--model=x', f'--logdir={tmp_path}')
  assert 'cnn, acnn' in proc.stderr


def test_presets_fill_in_what_is_not_given_explicitly():
  """--preset=thesis takes App. 4.E's values except where a flag says otherwise (checked in a subprocess, as the
  launcher's flags live in absl's global registry)."""
  code = ("import sys; from absl import flags; import launchers.marl as m; "
          "flags.FLAGS(['marl', '--preset=thesis', '--batch_size=8', '--lambda=0.9']); c = m.config_from_flags(); "
          "print(c.total_frames, c.batch_size, c.learning_rate, c.unroll_length, c.lambda_, c.micro_batches)")
  proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr
  assert proc.stdout.split() == ['500000000', '8', '0.00014', '32', '0.9', '1']
  code = code.replace("'--preset=thesis', '--batch_size=8', '--lambda=0.9'", "'--preset=gpu'")
  proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert proc.stdout.split() == ['500000000', '120', '0.00014', '32', '1.0', '2'], proc.stderr
