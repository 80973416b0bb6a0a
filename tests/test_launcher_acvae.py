"""`python -m launchers.acvae`: bad flags and missing data give one clear line and exit 2 with nothing written; the
default command (on the tiny preset) runs to the end on synth_faces and on a CelebA-layout folder, resumes, and a
SIGINT saves a checkpoint and the SavedModel first."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from launcher_test_helpers import ROOT, one_error_line, run_module  # pylint: disable=g-bad-import-order
from dataset_test_helpers import jpeg  # pylint: disable=g-bad-import-order

FAST = ['--scale=tiny', '--num_eval_images=24', '--classifier_images=120', '--classifier_epochs=1',
        '--log_interval_s=0']


def run_launcher(*args, timeout=600):
  return run_module('launchers.acvae', *args, timeout=timeout)


@pytest.mark.parametrize('args,needles', [
    (['--dataset=imagenet'], ['--dataset=imagenet', 'synth_faces', 'celeba']),
    (['--model=pixelcnn'], ['--model=pixelcnn', 'acvaegan', 'cvaegan', 'cvae']),
    (['--scale=huge'], ['--scale=huge', 'small32', 'full64']),
    (['--dataset=celeba'], ['--dataset=celeba', '--data_dir']),
    (['--attributes=Male,Nose'], ['--attributes=Male,Nose', 'Nose', 'Smiling']),
    (['--attributes=Male,Male'], ['Male', 'repeated']),
    (['--attributes=Young'], ['Young', 'not rendered']),
    (['--batch_size=62'], ['batch_size', '6']),
    (['--batch_size=8', '--d_mix=quarters'], []),     # valid: quarters needs a multiple of 4 (checked below)
    (['--d_mix=halves'], ['d_mix', 'thirds', 'quarters']),
    (['--steps=0'], ['--steps=0', 'positive']),
    (['--classifier=/nowhere.keras'], ['--classifier=/nowhere.keras', 'no such file']),
    (['extra_positional'], ['unexpected arguments']),
])
def test_bad_flags_give_one_clear_line_and_write_nothing(args, needles, tmp_path):
  if not needles:
    return
  logdir = tmp_path / 'run'
  proc = run_launcher(*args, f'--logdir={logdir}', timeout=120)
  line = one_error_line(proc)
  for needle in needles:
    assert needle in line, line
  assert not os.path.exists(logdir), 'a refused command writes nothing'


def test_missing_celeba_files_name_the_layout(tmp_path):
  root = tmp_path / 'celeba'
  os.makedirs(root)
  line = one_error_line(run_launcher('--dataset=celeba', f'--data_dir={root}', f'--logdir={tmp_path / "run"}'))
  assert 'list_attr_celeba.txt' in line and 'img_align_celeba' in line
  assert not os.path.exists(tmp_path / 'run')


def _tiny_celeba(root, n=48):
  """A CelebA-layout folder of n random JPEGs: 2/3 train, 1/6 val, 1/6 test; attributes from a fixed generator."""
  from rlcv_tf.datasets import celeba  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  os.makedirs(os.path.join(root, celeba.IMAGE_DIR))
  values = rng.choice([-1, 1], size=(n, 40))
  with open(os.path.join(root, celeba.ATTR_FILE), 'w') as f:
    f.write(f'{n}\n{" ".join(celeba.ATTRIBUTE_NAMES)}\n')
    for i in range(n):
      f.write(f'{i + 1:06d}.jpg ' + ' '.join(str(v) for v in values[i]) + '\n')
  with open(os.path.join(root, celeba.PARTITION_FILE), 'w') as f:
    for i in range(n):
      f.write(f'{i + 1:06d}.jpg {0 if i < 2 * n // 3 else (1 if i < 5 * n // 6 else 2)}\n')
  for i in range(n):
    with open(os.path.join(root, celeba.IMAGE_DIR, f'{i + 1:06d}.jpg'), 'wb') as f:
      f.write(jpeg(rng.integers(0, 256, (218, 178, 3))))
  return str(root)


def test_a_celeba_attribute_missing_from_the_header_is_refused(tmp_path):
  root = _tiny_celeba(tmp_path / 'celeba', n=6)
  line = one_error_line(run_launcher('--dataset=celeba', f'--data_dir={root}', '--attributes=Male,Wearing_Cape',
                                     f'--logdir={tmp_path / "run"}', timeout=120))
  assert 'Wearing_Cape' in line and '5_o_Clock_Shadow' in line


def test_an_image_cache_is_read_for_the_attribute_names(tmp_path):
  """--data_dir may be a CelebA image cache (scripts/make_image_cache.py): its manifest gives the names."""
  cache = tmp_path / 'cache'
  os.makedirs(cache)
  with open(cache / 'train.manifest.json', 'w') as f:
    json.dump({'dataset': 'celeba', 'attribute_names': ['Smiling', 'Male']}, f)
  line = one_error_line(run_launcher('--dataset=celeba', f'--data_dir={cache}', '--attributes=Male,Bald',
                                     f'--logdir={tmp_path / "run"}', timeout=120))
  assert 'Bald' in line and 'Smiling' in line and 'list_attr' not in line
  with open(cache / 'train.manifest.json', 'w') as f:
    json.dump({'dataset': 'cub', 'attribute_names': []}, f)
  line = one_error_line(run_launcher('--dataset=celeba', f'--data_dir={cache}', f'--logdir={tmp_path / "run"}',
                                     timeout=120))
  assert "'cub'" in line and 'not celeba' in line
  assert not os.path.exists(tmp_path / 'run')


def test_default_command_runs_resumes_and_exports(tmp_path):
  logdir = tmp_path / 'run'
  proc = run_launcher(*FAST, '--steps=3', '--image_every=3', f'--logdir={logdir}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = proc.stdout
  assert 'thesis scale' in out and 'step 3/3' in out and 'learning check' in out
  assert 'Table 6.1' in out and 'Table 6.3' in out
  for path in ('config.json', 'eval.json', 'saved_model/saved_model.pb', 'samples/step_0000003.png',
               'samples/attribute_swap.png', 'samples/attention.png', 'attribute_classifier.keras'):
    assert os.path.exists(logdir / path), path
  with open(logdir / 'eval.json') as f:
    results = json.load(f)
  assert 0 <= results['accuracy_generated'] <= 1 and results['step'] == 3
  proc = run_launcher(*FAST, '--steps=5', '--image_every=5', f'--logdir={logdir}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'resumed from' in proc.stdout and 'step 5/5' in proc.stdout
  # Another model in the same logdir is refused before anything is built.
  line = one_error_line(run_launcher(*FAST, '--model=cvaegan', f'--logdir={logdir}', timeout=120))
  assert 'model' in line and 'acvaegan' in line and 'cvaegan' in line


def test_celeba_layout_folder_trains_end_to_end(tmp_path):
  root = _tiny_celeba(tmp_path / 'celeba')
  logdir = tmp_path / 'run'
  proc = run_launcher(*FAST, '--dataset=celeba', f'--data_dir={root}', '--model=cvaegan', '--steps=2',
                      '--image_every=2', '--attributes=Male,Smiling,Young', '--num_eval_images=8',
                      '--classifier_images=32', f'--logdir={logdir}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(logdir / 'config.json') as f:
    assert json.load(f)['model']['attribute_names'] == ['Male', 'Smiling', 'Young']
  assert os.path.exists(logdir / 'saved_model' / 'saved_model.pb')
  # --grow_from: refused for another model or a resolution that is not twice the run's; then grown 16 -> 32 px.
  line = one_error_line(run_launcher(f'--grow_from={logdir}', '--model=acvaegan', f'--logdir={tmp_path / "g0"}',
                                     timeout=120))
  assert 'cvaegan' in line and '--model=acvaegan' in line
  line = one_error_line(run_launcher(f'--grow_from={logdir}', '--scale=full64', f'--logdir={tmp_path / "g0"}',
                                     timeout=120))
  assert '32px' in line and '--scale=full64' in line
  assert not os.path.exists(tmp_path / 'g0')
  grown = tmp_path / 'grown'
  proc = run_launcher(f'--grow_from={logdir}', f'--data_dir={root}', '--steps=2', '--image_every=2',
                      '--num_eval_images=8', '--classifier_images=32', '--classifier_epochs=1', '--log_interval_s=0',
                      f'--logdir={grown}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'grew' in proc.stdout and 'alpha' in proc.stdout
  with open(grown / 'config.json') as f:
    model = json.load(f)['model']
  assert model['resolution'] == 32 and model['base_resolution'] == 16 and model['fade_steps'] == 1.0
  assert os.path.exists(grown / 'saved_model' / 'saved_model.pb')
  proc = run_launcher(f'--grow_from={logdir}', f'--data_dir={root}', '--steps=3', '--image_every=3',
                      '--num_eval_images=8', '--classifier_images=32', '--classifier_epochs=1', '--log_interval_s=0',
                      f'--logdir={grown}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'resumed from' in proc.stdout and 'step 3/3' in proc.stdout


def test_sigint_saves_a_checkpoint_and_the_saved_model_then_exits_130(tmp_path):
  logdir = tmp_path / 'run'
  proc = subprocess.Popen([sys.executable, '-m', 'launchers.acvae', *FAST, '--steps=100000', f'--logdir={logdir}'],
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  deadline = time.monotonic() + 300
  lines = []
  for line in proc.stdout:
    lines.append(line)
    if 'steps/s' in line or time.monotonic() > deadline:
      break
  proc.send_signal(signal.SIGINT)
  rest, _ = proc.communicate(timeout=300)
  text = ''.join(lines) + rest
  assert proc.returncode == 128 + signal.SIGINT, text[-3000:]
  assert 'stopped by SIGINT: saved checkpoint' in text and 'SavedModel' in text
  assert os.path.exists(logdir / 'saved_model' / 'saved_model.pb')
  assert any(name.startswith('ckpt-') for name in os.listdir(logdir / 'checkpoints'))
  assert 'Traceback' not in text
