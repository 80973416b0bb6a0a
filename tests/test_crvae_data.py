"""Chapter 5 runs and their data (issue 9 §1): a resumed run continues the data stream, skipped images reach the
console, TensorBoard and eval.json, and bad data is one `error:` line from the launcher."""

import glob
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.crvae import presets
from rlcv_tf.crvae import training

from dataset_test_helpers import write_celeba  # pylint: disable=g-bad-import-order

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(steps, **kw):
  # expost_images: the ex-post Gaussian fitted after each run from 64 training images, not the default 2,048 (~20 s
  # of eager encoding per run); the data stream checked here is the training batches', which it does not touch.
  fields = dict(dataset='synth_birds', steps=steps, summary_every=2, image_every=100, num_eval_images=16,
                grid_size=16, log_interval_s=0.0, nll_samples=8, expost_images=64)
  fields.update(kw)
  return training.RunConfig(**fields)


_MAKE_TRAINER = training.train_steps.make_trainer


def _recording_trainer(seen):
  """make_trainer whose trainer records a fingerprint of every batch it trains on."""
  make = _MAKE_TRAINER

  class Recording:
    def __init__(self, trainer):
      self._trainer = trainer

    def __getattr__(self, name):
      return getattr(self._trainer, name)

    def train_step(self, *batch):
      seen.append(hashlib.sha1(np.asarray(batch[0]).tobytes()).hexdigest())
      return self._trainer.train_step(*batch)

  return lambda *a, **kw: Recording(make(*a, **kw))


@pytest.mark.slow   # three short training runs with their exports (~40 s on 2 free cores)
def test_k_steps_then_resume_to_2k_sees_the_batches_of_an_uninterrupted_2k_run(tmp_path, monkeypatch):
  cfg = presets.get_preset('tiny_synthbirds_crvaegan')
  resumed, straight = [], []
  monkeypatch.setattr(training.train_steps, 'make_trainer', _recording_trainer(resumed))
  training.train(cfg, _run(3), str(tmp_path / 'a'), print_fn=lambda s: None)
  assert training.data_start(str(tmp_path / 'a')) == (0, 3 * cfg.batch_size)
  lines = []
  training.train(cfg, _run(6), str(tmp_path / 'a'), print_fn=lines.append)
  assert any('resumed from' in l for l in lines)
  monkeypatch.setattr(training.train_steps, 'make_trainer', _recording_trainer(straight))
  training.train(cfg, _run(6), str(tmp_path / 'b'), print_fn=lambda s: None)
  assert len(resumed) == len(straight) == 6
  assert resumed == straight            # the resumed run did not start the stream at epoch 0 again
  assert len(set(straight)) == 6


def test_make_data_keeps_labels_and_attributes():
  cfg = presets.get_preset('tiny_synthfaces_crvaegan')
  data = training.make_data(cfg, _run(1, dataset='synth_faces'))
  batch = next(iter(data.train))
  assert batch['image'].shape == (cfg.batch_size, 16, 16, 3)
  assert batch['attributes'].shape[0] == cfg.batch_size and set(np.unique(batch['attributes'])) <= {-1.0, 1.0}
  assert batch['label'].dtype == tf.int64 and 'position' in batch and 'epoch' in batch
  assert data.held['attributes'].shape == (16, batch['attributes'].shape[1]) and data.held['label'].shape == (16,)
  assert len(data.info.attribute_names) == batch['attributes'].shape[1]


# ------------------------------------------------------------------------------------------------ launcher


def run_launcher(*args, timeout=300):
  return subprocess.run([sys.executable, '-m', 'launchers.crvae', *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=timeout)


def one_error_line(proc):
  assert proc.returncode == 2, proc.stdout + proc.stderr
  assert 'Traceback' not in proc.stderr
  # libjpeg's own report of a truncated file ("Premature end of JPEG data"), printed by TensorFlow's C++ logging
  # when the file is decoded, is not a line of ours.
  # When the data set is found incomplete while training, tf.data's own C++ warning that the iterator is aborting
  # ("W0000 ... local_rendezvous.cc ...", with a continuation line) is printed too, unless TF_CPP_MIN_LOG_LEVEL >= 2:
  # also not a line of ours (known console noise at this error, issue 9 notes).
  lines = [l for l in proc.stderr.splitlines() if l.strip() and not l.startswith(('WARNING: All log', 'I0000'))
           and 'jpeg_mem.cc' not in l and 'local_rendezvous.cc' not in l and not l.startswith('\t [[{{')]
  assert len(lines) == 1, proc.stderr
  assert lines[0].startswith('error: ')
  return lines[0]


def _celeba(root, n=12, val=2, **kw):
  write_celeba(str(root), n, splits=[0] * (n - val) + [1] * val, **kw)
  return str(root)


def test_malformed_annotation_file_is_one_error_line(tmp_path):
  data = _celeba(tmp_path / 'celeba')
  path = os.path.join(data, 'list_attr_celeba.txt')
  lines = open(path).read().splitlines()
  with open(path, 'w') as f:
    f.write('\n'.join(lines[:-3]) + '\n')   # an interrupted copy: the count line announces more rows
  line = one_error_line(run_launcher('--dataset=celeba', f'--data_dir={data}', '--scale=tiny',
                                     f'--logdir={tmp_path / "run"}'))
  assert 'list_attr_celeba.txt' in line and 'announces 12 images but 9' in line


def test_split_smaller_than_one_batch_is_one_error_line(tmp_path):
  data = _celeba(tmp_path / 'celeba', n=6, val=1)
  line = one_error_line(run_launcher('--dataset=celeba', f'--data_dir={data}', '--scale=tiny',
                                     f'--logdir={tmp_path / "run"}'))
  assert 'train split has 5 usable images, fewer than one batch of 8' in line


@pytest.mark.parametrize('flag,needle', [('--verify=full', '--verify=full'),
                                         ('--max_skipped_fraction=1.5', '--max_skipped_fraction=1.5')])
def test_bad_data_flags_are_one_error_line(tmp_path, flag, needle):
  assert needle in one_error_line(run_launcher(flag, f'--logdir={tmp_path}', timeout=120))


def test_truncated_copies_past_the_limit_stop_the_run_with_one_error_line(tmp_path):
  # A truncated JPEG passes the header check; decoding finds it: 1 of 20 > 1% (the default).
  data = _celeba(tmp_path / 'celeba', n=22, truncated=(4,))
  line = one_error_line(run_launcher('--dataset=celeba', f'--data_dir={data}', '--scale=tiny', '--steps=4',
                                     f'--logdir={tmp_path / "run"}'))
  assert 'looks incomplete: 1 of 20 listed images' in line and '000005.jpg' in line
  assert glob.glob(str(tmp_path / 'run' / 'checkpoints' / 'ckpt-*')), 'a checkpoint is saved before stopping'


@pytest.mark.slow   # a 6-step run with its export
def test_skipped_images_reach_console_tensorboard_and_eval_json(tmp_path):
  # 36 training images: one fails the header check, one only decoding; 2 <= 6% of 36, so the run trains through.
  data = _celeba(tmp_path / 'celeba', n=40, val=4, corrupt=(2,), truncated=(5,))
  logdir = tmp_path / 'run'
  proc = run_launcher('--dataset=celeba', f'--data_dir={data}', '--scale=tiny', '--steps=6', '--image_every=6',
                      '--num_eval_images=4', '--max_skipped_fraction=0.06', '--verify=header',
                      f'--logdir={logdir}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert '[crvae] data: 2 of 36 training images skipped' in proc.stdout
  assert '000003.jpg' in proc.stdout and '000006.jpg' in proc.stdout
  report = json.load(open(logdir / 'eval.json'))
  assert report['data/skipped_images'] == 2
  assert [os.path.basename(f.split(':')[0]) for f in report['data/skipped_files']] == ['000003.jpg', '000006.jpg']
  tags = set()
  for path in glob.glob(str(logdir / 'events.out.tfevents.*')):
    for event in tf.compat.v1.train.summary_iterator(path):
      tags.update(v.tag for v in event.summary.value)
  assert {'data/skipped_images', 'data/skipped_files'} <= tags
