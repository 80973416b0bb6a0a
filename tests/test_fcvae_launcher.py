"""`python -m launchers.fcvae`: bad flags and missing data give one `error:` line, exit 2 and write nothing; a tiny
run goes to the end and another architecture on its logdir is refused; SIGINT saves a checkpoint and the
SavedModel, then exits 130."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from launcher_test_helpers import ROOT, one_error_line, run_module  # pylint: disable=g-bad-import-order

TINY = ['--dataset=synth_dsprites', '--preset=tiny', '--num_train=32', '--num_eval=16', '--log_interval_s=0',
        '--image_every=2']


@pytest.mark.parametrize('args,needles', [
    (['--dataset=cifar'], ['--dataset=cifar', 'mnist', 'synth_dsprites', 'atari_frames']),
    (['--model=pixelcnn'], ['--model=pixelcnn', 'ae_fc', 'ae_conv', 'vae', 'fcvae']),
    (['--kl_mode=winner'], ['--kl_mode=winner', 'neuron', 'filter_avg', 'wta_competitive']),
    (['--bn=middle'], ['--bn=middle', 'before', 'after', 'both']),
    (['--depth=medium'], ['--depth=medium', 'shallow', 'deep']),
    (['--preset=huge'], ['--preset=huge', 'paper', 'small', 'tiny']),
    (['--beta=-0.5'], ['--beta=-0.5', '>= 0']),
    (['--filters=0'], ['--filters=0', 'positive']),
    (['--model=ae_conv', '--beta=4'], ['--beta', 'ae_conv']),
    (['--model=vae', '--filters=4'], ['--filters', 'fcvae']),
    (['--colour=rgb'], ['--colour=rgb', 'atari_frames']),
    (['--dataset=frey'], ['frey_rawface.mat', '--data_dir']),
    (['--dataset=atari_frames'], ['--data_dir', 'python -m launchers.atari_frames']),
    (['--steps=0'], ['--steps', '>= 1']),
    (['extra'], ['unexpected arguments']),
])
def test_bad_flags_give_one_line_and_write_nothing(args, needles, tmp_path):
  logdir = tmp_path / 'run'
  line = one_error_line(run_module('launchers.fcvae', *args, f'--logdir={logdir}', timeout=120))
  for needle in needles:
    assert needle in line, line
  assert not logdir.exists()


@pytest.mark.parametrize('dataset', ['dsprites', 'frey', 'atari_frames', 'mnist'])
def test_a_data_dir_without_the_data_is_refused(dataset, tmp_path):
  (tmp_path / 'empty').mkdir()
  (tmp_path / 'empty' / 'notes.txt').write_text('no images here')
  line = one_error_line(run_module('launchers.fcvae', f'--dataset={dataset}', f'--data_dir={tmp_path / "empty"}',
                                   f'--logdir={tmp_path / "run"}', timeout=120))
  assert str(tmp_path / 'empty') in line or 'data_dir' in line
  assert not (tmp_path / 'run').exists()


def test_tiny_run_and_the_resume_guard(tmp_path):
  logdir = tmp_path / 'run'
  proc = run_module('launchers.fcvae', *TINY, '--steps=3', f'--logdir={logdir}', timeout=300)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  assert 'learning check' in proc.stdout and os.path.exists(logdir / 'saved_model' / 'saved_model.pb')
  with open(logdir / 'eval.json') as f:
    assert json.load(f)['step'] == 3
  # Another architecture on the same logdir: refused before anything loads (resuming is tested in
  # test_fcvae_training.py).
  line = one_error_line(run_module('launchers.fcvae', *TINY, '--steps=6', '--bn=both', f'--logdir={logdir}',
                                   timeout=300))
  assert "bn='none'" in line and "bn='both'" in line


def test_sigint_saves_then_exits_130(tmp_path):
  logdir = tmp_path / 'run'
  proc = subprocess.Popen([sys.executable, '-m', 'launchers.fcvae', *TINY, '--steps=1000000', f'--logdir={logdir}'],
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  deadline = time.monotonic() + 300
  while time.monotonic() < deadline and not os.path.exists(logdir / 'samples'):
    time.sleep(0.5)
  proc.send_signal(signal.SIGINT)
  out, err = proc.communicate(timeout=300)
  assert proc.returncode == 130, out + err
  assert 'stopped by SIGINT' in out
  assert os.path.exists(logdir / 'saved_model' / 'saved_model.pb')
  assert any(name.startswith('ckpt-') for name in os.listdir(logdir / 'checkpoints'))
