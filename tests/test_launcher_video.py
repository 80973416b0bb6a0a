"""`python -m launchers.video`: bad flags, a missing or mismatched --stage1_logdir and unprepared data give one clear
line and exit 2 with nothing written; the tiny stage 1 -> stage 2 chain and both baselines run to the end, resume,
evaluate and export; SIGINT saves first."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from launcher_test_helpers import ROOT, one_error_line, run_module  # pylint: disable=g-bad-import-order

FAST = ['--preset=tiny', '--num_eval_clips=8', '--log_interval_s=0', '--image_every=2']


def run_launcher(*args, timeout=600):
  return run_module('launchers.video', *args, timeout=timeout)


def _fake_run(path, model='video', stage=1, dataset='mmnist'):
  os.makedirs(path, exist_ok=True)
  with open(os.path.join(path, 'config.json'), 'w') as f:
    json.dump({'model': {'dataset': dataset, 'name': f'{dataset}_tiny'},
               'run': {'model': model, 'stage': stage, 'dataset': dataset}}, f)
  return str(path)


@pytest.mark.parametrize('args,needles', [
    (['--dataset=ucf101'], ['--dataset=ucf101', 'mmnist', 'weizmann', 'ravdess', 'not supported']),
    (['--dataset=moving'], ['--dataset=moving', 'unknown', 'mmnist']),
    (['--stage=3'], ['--stage=3', '1', '2']),
    (['--stage=2'], ['stage1_logdir', '--stage=1']),
    (['--stage=2', '--stage1_logdir=/nowhere/run'], ['--stage1_logdir=/nowhere/run', 'no run there']),
    (['--num_blocks=3'], ['--num_blocks', '32', '3']),
    (['--batch_size=0'], ['--batch_size=0', 'positive']),
    (['--image_size=48'], ['--image_size', '48', 'multiple of 32']),
    (['--learning_rate=-1'], ['--learning_rate=-1.0', '> 0']),
    (['--steps=0'], ['--steps', '>= 1']),
    (['--model=pixelcnn'], ['--model=pixelcnn', 'video', 'classifier', 'autoencoder']),
    (['--ablation=statics_only'], ['--ablation', 'stage-2']),
    (['--preset=huge'], ['--preset=huge', 'paper', 'small', 'tiny']),
    (['--dataset=weizmann'], ['--dataset=weizmann', '--data_dir', 'launchers.video_prepare']),
    (['--digits=mnist'], ['--digits=mnist', '--data_dir']),
    (['extra_positional'], ['unexpected arguments']),
])
def test_bad_flags_give_one_clear_line_and_write_nothing(args, needles, tmp_path):
  logdir = tmp_path / 'run'
  proc = run_launcher(*args, f'--logdir={logdir}', timeout=120)
  line = one_error_line(proc)
  for needle in needles:
    assert needle in line, line
  assert not os.path.exists(logdir), 'a refused command writes nothing'


def test_unprepared_shard_directory_names_the_prepare_command(tmp_path):
  raw = tmp_path / 'weizmann_raw'
  (raw / 'walk').mkdir(parents=True)
  proc = run_launcher('--dataset=ravdess', f'--data_dir={raw}', f'--logdir={tmp_path / "run"}', timeout=120)
  line = one_error_line(proc)
  assert 'no prepared ravdess shards' in line and 'python -m launchers.video_prepare --dataset=ravdess' in line


@pytest.mark.parametrize('kind,needles', [
    (dict(model='classifier', stage=1), ['classifier', 'not a stage-1 run']),
    (dict(model='video', stage=2), ['stage 2', 'not a stage-1 run']),
    (dict(dataset='weizmann'), ['weizmann', 'same data set']),
])
def test_a_mismatched_stage1_logdir_is_refused(kind, needles, tmp_path):
  stage1 = _fake_run(tmp_path / 'stage1', **kind)
  proc = run_launcher('--stage=2', f'--stage1_logdir={stage1}', f'--logdir={tmp_path / "run"}', timeout=120)
  line = one_error_line(proc)
  for needle in needles:
    assert needle in line, line


def _eval(logdir):
  with open(os.path.join(logdir, 'eval.json')) as f:
    return json.load(f)


def test_stage1_then_stage2_run_resume_evaluate_and_export(tmp_path):
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  first = tmp_path / 'stage1'
  proc = run_launcher(*FAST, '--steps=3', f'--logdir={first}')
  assert proc.returncode == 0, proc.stdout + proc.stderr
  assert 'learning check' in proc.stdout and 'Traceback' not in proc.stderr
  foreign = [l for l in (proc.stdout + proc.stderr).splitlines() if l.strip() and not l.startswith('[video]')]
  assert foreign == [], foreign                    # the console shows the launcher's lines only
  proc = run_launcher(*FAST, '--steps=5', f'--logdir={first}')          # resume: 3 -> 5
  assert proc.returncode == 0, proc.stdout + proc.stderr
  assert 'resumed from' in proc.stdout and 'step 5/5' in proc.stdout and 'step 1/5' not in proc.stdout
  results = _eval(first)
  assert results['step'] == 5 and {'warp_over_identity', 'recon_over_mean', 'learning_check'} <= set(results)
  stage1 = tf.saved_model.load(str(first / 'saved_model'))
  assert stage1.encode_frames(tf.zeros((2, 32, 32, 1)))['latents'].shape == (2, 4, 4, 8)

  second = tmp_path / 'stage2'
  proc = run_launcher('--stage=2', f'--stage1_logdir={first}', '--num_eval_clips=8', '--log_interval_s=0',
                      '--image_every=2', '--steps=2', f'--logdir={second}')
  assert proc.returncode == 0, proc.stdout + proc.stderr
  assert 'stage 1 (frozen)' in proc.stdout
  results = _eval(second)
  assert {'statics_over_mean', 'frame_over_mean', 'heldout_pred_accuracy', 'learning_check'} <= set(results)
  assert os.path.exists(second / 'samples' / 'swap_0000002.png')
  model = tf.saved_model.load(str(second / 'saved_model'))
  out = model.encode(tf.zeros((1, 8, 32, 32, 1)))
  assert out['statics'].shape == (1, 4, 4, 8) and out['dynamics'].shape == (1, 32)
  # The stage-1 module inside stage 2 is the frozen one: its latents equal the stage-1 export's.
  frames = np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 1)).astype(np.float32)
  np.testing.assert_allclose(model.encode_frames(frames)['latents'].numpy(),
                             stage1.encode_frames(frames)['latents'].numpy(), rtol=1e-5, atol=1e-6)
  # Another preset than the stage-1 run's is refused.
  proc = run_launcher('--stage=2', f'--stage1_logdir={first}', '--preset=small', f'--logdir={tmp_path / "x"}')
  assert 'latent_channels' in one_error_line(proc) or 'image_size' in one_error_line(proc)


@pytest.mark.parametrize('model,key', [('classifier', 'heldout_accuracy'), ('autoencoder', 'recon_over_mean')])
def test_baselines_run_and_export(model, key, tmp_path):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  logdir = tmp_path / model
  proc = run_launcher(*FAST, f'--model={model}', '--steps=2', f'--logdir={logdir}')
  assert proc.returncode == 0, proc.stdout + proc.stderr
  assert key in _eval(logdir)
  loaded = tf.saved_model.load(str(logdir / 'saved_model'))
  assert loaded.features(tf.zeros((2, 8, 32, 32, 1)))['features'].shape == (2, 32)


def test_sigint_saves_a_checkpoint_and_the_saved_model_then_exits_130(tmp_path):
  logdir = tmp_path / 'run'
  proc = subprocess.Popen([sys.executable, '-m', 'launchers.video', *FAST, '--steps=100000', f'--logdir={logdir}'],
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  deadline = time.monotonic() + 300
  while time.monotonic() < deadline and not os.path.exists(logdir / 'samples'):
    time.sleep(0.5)
  proc.send_signal(signal.SIGINT)
  out, err = proc.communicate(timeout=300)
  assert proc.returncode == 130, out + err
  assert 'stopped by SIGINT' in out and 'run the same command again to resume' in out
  assert os.path.exists(logdir / 'saved_model' / 'saved_model.pb')
  assert any(name.startswith('ckpt-') for name in os.listdir(logdir / 'checkpoints'))


def test_weizmann_standin_prepares_and_trains_stage1(tmp_path):
  """The real Weizmann reader on generated videos in its published layout: prepare, then a tiny stage 1 that holds
  one actor out for its evaluation."""
  from rlcv_tf.datasets import video_standins  # pylint: disable=g-import-not-at-top
  raw, shards = tmp_path / 'weizmann', tmp_path / 'shards'
  video_standins.write_weizmann(str(raw), num_actors=2, num_frames=16, actions=('walk', 'jack'), extra_take=False)
  proc = run_module('launchers.video_prepare', '--dataset=weizmann', f'--data_dir={raw}', f'--out={shards}',
                    '--num_workers=0', timeout=300)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  actor = sorted(os.listdir(raw / 'walk'))[0].split('_')[0]
  logdir = tmp_path / 'run'
  proc = run_launcher('--dataset=weizmann', f'--data_dir={shards}', f'--exclude_actors={actor}', *FAST, '--steps=2',
                      '--stage1_clip_length=8', f'--logdir={logdir}')
  assert proc.returncode == 0, proc.stdout + proc.stderr
  assert 'weizmann_tiny' in proc.stdout and 'learning check' in proc.stdout
  assert os.path.exists(logdir / 'saved_model' / 'saved_model.pb')
