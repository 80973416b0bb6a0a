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
])
def test_bad_flags_give_one_clear_line(args, needle, tmp_path):
  assert needle in marl_test_helpers.error_line(run_launcher(*args, f'--logdir={tmp_path}'))


def test_unknown_env_lists_valid_values(tmp_path):
  proc = run_launcher('--env=nope', f'--logdir={tmp_path}')
  assert 'grf_5v5' in proc.stderr and 'mini_5v5' in proc.stderr


def test_unknown_model_lists_valid_values(tmp_path):
  proc = run_launcher('--model=x', f'--logdir={tmp_path}')
  assert 'cnn, acnn' in proc.stderr
