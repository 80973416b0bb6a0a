"""core.runs, core.checkpointing and core.progress: signal flag, atomic SavedModel swap, timed and on-demand saves,
the resume check, config recording with the TensorBoard writer, save-and-stop, the progress line."""

import os
import signal

import pytest
import tensorflow as tf

from rlcv_tf.core import checkpointing
from rlcv_tf.core import progress
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


# ------------------------------------------------------------------- the plumbing Chapters 2 and 4 share
def test_check_same_settings_names_the_first_differing_field_and_passes_a_new_run(tmp_path):
  logdir = str(tmp_path)
  assert runs.load_config(logdir) is None
  runs.check_same_settings(logdir, runs.load_config(logdir), {'model': 'sa3c'}, ('model',))   # a new run
  runs.record_config(logdir, {'model': 'a3c', 'env': 'pendulum', 'lr': 1e-3, 'shape': (2, 3)}, 0)
  saved = runs.load_config(logdir)
  assert saved == {'model': 'a3c', 'env': 'pendulum', 'lr': 1e-3, 'shape': [2, 3]}
  runs.check_same_settings(logdir, saved, dict(saved, lr=5e-4), ('model', 'env', 'shape'))   # lr may change
  with pytest.raises(runs.ResumeMismatchError) as e:
    runs.check_same_settings(logdir, saved, dict(saved, model='sa3c', env='cartpole_masked'), ('model', 'env'))
  assert str(e.value) == (f"--logdir={logdir} holds a run with model='a3c', but this run asks for model='sa3c'. Use "
                          'the same value to resume it, or a new --logdir to start a new run.')
  assert '\n' not in str(e.value) and isinstance(e.value, ValueError)

  class Cfg:   # objects with the fields as attributes (config dataclasses) compare the same way
    model, env = 'a3c', 'atari_boxing'
  with pytest.raises(runs.ResumeMismatchError, match="env='atari_boxing'"):
    runs.check_same_settings(logdir, saved, Cfg(), ('model', 'env'))


def test_progress_line():
  rate = progress.RateMeter()
  rate.update(0, now=0.0)
  rate.update(500, now=2.0)
  assert progress.line('[x] ', 500, 2000, rate, ['loss 0.5']) == \
      '[x] frames 500/2,000 (25%) | 250 frames/s | loss 0.5 | ETA 6s'
  assert progress.line('', 10, 10, progress.RateMeter(), unit='agent steps') == \
      'agent steps 10/10 (100%) | 0 agent steps/s | ETA ?'


def test_open_writer_records_the_config_and_its_changes(tmp_path):
  logdir = str(tmp_path)
  lines = []
  writer = checkpointing.open_writer(logdir, {'lr': 1e-3, 'env': 'pendulum'}, 0, lines.append, '[job] ')
  writer.flush()
  assert lines == [] and runs.load_config(logdir) == {'lr': 1e-3, 'env': 'pendulum'}
  writer = checkpointing.open_writer(logdir, {'lr': 5e-4, 'env': 'pendulum'}, 40, lines.append, '[job] ')
  writer.flush()
  assert lines == [f'[job] settings changed since the last session (recorded in {logdir}/config_history.jsonl): '
                   'lr 0.001 -> 0.0005']
  texts = [(e.step, v.tensor.string_val[0].decode()) for f in tf.io.gfile.glob(os.path.join(logdir, 'events.*'))
           for e in tf.compat.v1.train.summary_iterator(f) for v in e.summary.value if v.tag == 'config/changes']
  assert texts == [(40, 'lr 0.001 -> 0.0005')]


def test_save_and_stop_saves_says_where_and_raises(tmp_path):
  module = _Module()
  ckpt = checkpointing.RunCheckpointer(tf.train.Checkpoint(m=module), str(tmp_path),
                                       export_fn=lambda p: tf.saved_model.save(module, p))
  lines = []
  stop = runs.StopOnSignal(lines.append)
  with pytest.raises(RuntimeError, match='boom'):
    ckpt.save_and_stop(12, RuntimeError('boom'), stop, lines.append, '[job] ', unit='agent steps')
  assert lines[-1] == (f'[job] training failed (RuntimeError: boom); saved checkpoint {ckpt.latest} and SavedModel '
                       f'{ckpt.saved_model_dir} at 12 agent steps; run the same command again to resume')
  assert ckpt.latest.endswith('ckpt-12') and os.path.exists(os.path.join(ckpt.saved_model_dir, 'saved_model.pb'))
  stop.request(signal.SIGTERM)
  with pytest.raises(runs.Interrupted) as e:
    ckpt.save_and_stop(13, None, stop, lines.append, '[job] ')
  assert e.value.exit_code == 128 + signal.SIGTERM and str(e.value) == 'stopped by SIGTERM at 13 frames'
  assert lines[-1].startswith('[job] stopped by SIGTERM: saved checkpoint') and ckpt.latest.endswith('ckpt-13')


def test_config_record_round_trips_json_and_refuses_unknown_fields():
  import dataclasses

  @dataclasses.dataclass(frozen=True)
  class Example(runs.ConfigRecord):
    widths: tuple = (1, 2)
    rate: float = 0.5

  config = Example().replace(widths=[3, [4, 5]])
  assert config.widths == (3, (4, 5))  # lists from JSON or flags come back as tuples, so configs compare equal
  assert Example.from_json(config.to_json()) == config
  with pytest.raises(ValueError, match=r'^wdiths: unknown Example field'):
    Example().replace(wdiths=(1,))
