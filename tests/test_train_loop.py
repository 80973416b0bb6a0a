"""core/train_loop: the image models' step loop saves and stops on a signal, resumes, and refuses non-finite losses.

The trainer here is a hand-made one (a counter and one weight moved by a known amount per step), so every number the
loop writes can be predicted without the loop.
"""

import os
import signal
import types

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.core import runs
from rlcv_tf.core import train_loop


class CountingTrainer:
  """w += lr per step; reports loss/rec = w (or NaN from step `nan_at`)."""

  def __init__(self, nan_at=None):
    self.step = tf.Variable(0, dtype=tf.int64)
    self.w = tf.Variable(0.0)
    self.lr = None
    self.nan_at = nan_at

  def set_learning_rate(self, lr):
    self.lr = lr

  def checkpoint_objects(self):
    return {'step': self.step, 'w': self.w}

  def train_step(self, x):
    self.w.assign_add(self.lr * float(x))
    self.step.assign_add(1)
    loss = float('nan') if self.nan_at is not None and int(self.step.numpy()) >= self.nan_at else self.w
    return {'loss/rec': tf.constant(loss, tf.float32)}


def _run(steps):
  return types.SimpleNamespace(steps=steps, summary_every=1, image_every=1000, log_interval_s=0.0,
                               checkpoint_interval_s=1e9)


def _go(trainer, logdir, steps, stop=None, on_step=None, export_fn=None, lines=None):
  manager = train_loop.restore_or_start(trainer, logdir, (lines or []).append)
  writer = tf.summary.create_file_writer(logdir)
  batches = tf.data.Dataset.from_tensor_slices([[1.0]]).repeat()
  return train_loop.train_loop(trainer, batches, _run(steps), manager, writer, lambda step: None,
                               lambda step: 0.5, 4, None, logdir, (lines if lines is not None else []).append,
                               on_step=on_step, prefix='[t] ', export_fn=export_fn, stop=stop)


def test_a_signal_saves_a_checkpoint_and_the_model_then_raises_interrupted_and_the_rerun_resumes(tmp_path):
  logdir = str(tmp_path)
  trainer, stop, exported, lines = CountingTrainer(), runs.StopOnSignal(), [], []

  def on_step(step):
    if step == 3:
      stop.request(signal.SIGTERM)

  with pytest.raises(runs.Interrupted) as raised:
    _go(trainer, logdir, 10, stop=stop, on_step=on_step, export_fn=lambda: exported.append(1) or 'SM', lines=lines)
  assert raised.value.exit_code == 128 + signal.SIGTERM
  assert exported == [1]
  assert any('stopped by SIGTERM: saved checkpoint' in l and 'and SavedModel SM at step 3' in l for l in lines)
  # Nothing after step 3 ran, and the checkpoint holds step 3's weight.
  assert int(trainer.step.numpy()) == 3 and float(trainer.w.numpy()) == pytest.approx(1.5)
  fresh = CountingTrainer()
  done, metrics, _ = _go(fresh, logdir, 10)
  assert done == 10
  assert float(fresh.w.numpy()) == pytest.approx(0.5 * 10)      # resumed at 3, not restarted from 0
  assert metrics['loss/rec'] == pytest.approx(5.0)


def test_the_real_signal_handler_is_installed_during_the_loop(tmp_path):
  trainer = CountingTrainer()

  def on_step(step):
    if step == 2:
      os.kill(os.getpid(), signal.SIGINT)     # Ctrl-C: must not raise KeyboardInterrupt out of the step

  with pytest.raises(runs.Interrupted) as raised:
    _go(trainer, str(tmp_path), 10, on_step=on_step)
  assert raised.value.exit_code == 128 + signal.SIGINT
  assert tf.train.latest_checkpoint(os.path.join(str(tmp_path), 'checkpoints')).endswith('ckpt-2')


def test_non_finite_losses_stop_with_a_checkpoint_and_one_message(tmp_path):
  with pytest.raises(FloatingPointError, match=r"non-finite losses \['loss/rec'\] at step 4"):
    _go(CountingTrainer(nan_at=4), str(tmp_path), 10)
  assert tf.train.latest_checkpoint(os.path.join(str(tmp_path), 'checkpoints')).endswith('ckpt-4')


def test_data_start_reads_the_saved_stream_position(tmp_path):
  logdir = str(tmp_path)
  assert train_loop.data_start(logdir) == (0, 0)
  trainer = CountingTrainer()
  position = train_loop.DataPosition((2, 5))
  manager = train_loop.restore_or_start(trainer, logdir, print, extra={'data': position})
  position.position.assign(41)
  manager.save(checkpoint_number=1)
  assert train_loop.data_start(logdir) == (2, 42)
  np.testing.assert_equal(int(position.epoch.numpy()), 2)
