"""core.runs and core.checkpointing: signal flag, atomic SavedModel swap, timed and on-demand saves."""

import os
import signal

import pytest
import tensorflow as tf

from rlcv_tf.core import checkpointing
from rlcv_tf.core import runs


class _Module(tf.Module):

  def __init__(self):
    super().__init__()
    self.v = tf.Variable(1.0)

  @tf.function(input_signature=[tf.TensorSpec([], tf.float32)])
  def serve(self, x):
    return x * self.v


def test_stop_on_signal_sets_a_flag_then_a_second_signal_raises():
  lines = []
  with runs.StopOnSignal(lines.append) as stop:
    os.kill(os.getpid(), signal.SIGTERM)
    assert stop.requested == 'SIGTERM' and stop.signum == signal.SIGTERM
    with pytest.raises(KeyboardInterrupt):
      os.kill(os.getpid(), signal.SIGINT)
  assert 'SIGTERM received' in lines[0]
  assert signal.getsignal(signal.SIGTERM) is not None and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_failed_export_leaves_the_previous_saved_model(tmp_path):
  module = _Module()
  path = str(tmp_path / 'saved_model')
  runs.write_saved_model(path, lambda p: tf.saved_model.save(module, p))

  def broken(p):
    os.makedirs(p)
    raise RuntimeError('disk full')

  with pytest.raises(RuntimeError):
    runs.write_saved_model(path, broken)
  assert float(tf.saved_model.load(path).serve(tf.constant(2.0))) == 2.0


def test_run_checkpointer_saves_on_time_and_on_demand(tmp_path):
  module = _Module()
  ckpt = checkpointing.RunCheckpointer(tf.train.Checkpoint(m=module), str(tmp_path), interval_s=1e9,
                                       export_fn=lambda p: tf.saved_model.save(module, p))
  assert ckpt.restore_latest() is None
  assert ckpt.maybe_save(1) is None, 'the interval has not passed'
  where = ckpt.save_all(7)
  assert where.endswith(f'and SavedModel {ckpt.saved_model_dir}') and ckpt.latest.endswith('ckpt-7')
  ckpt.interval_s = 0.0
  assert ckpt.maybe_save(8).endswith('ckpt-8')
  module.v.assign(5.0)
  again = checkpointing.RunCheckpointer(tf.train.Checkpoint(m=module), str(tmp_path))
  assert again.restore_latest().endswith('ckpt-8') and float(module.v.numpy()) == 1.0
