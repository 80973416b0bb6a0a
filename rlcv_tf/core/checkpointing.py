"""A training job's checkpoints, SavedModel and TensorBoard log, for every chapter's run loop.

  runs.check_same_settings(logdir, runs.load_config(logdir), cfg, ARCHITECTURE_FIELDS)   # before building anything
  ckpt = checkpointing.RunCheckpointer(tf.train.Checkpoint(...), logdir, interval_s=600,
                                       export_fn=lambda path: export.export_policy(model, path, hwc))
  ckpt.restore_latest()              # resume: the latest checkpoint's path, or None for a new run
  writer = checkpointing.open_writer(logdir, cfg_dict, start_step, print_fn, '[job] ')   # config.json + TensorBoard
  failure = None
  with runs.StopOnSignal(print_fn, prefix='[job] ') as stop:
    try:
      while ... and not stop.requested:
        ...one update...
        ckpt.maybe_save(step)        # every interval_s seconds
    except Exception as e:
      failure = e
    finally:
      ...close actors...
    if failure is not None or stop.requested:
      ckpt.save_and_stop(step, failure, stop, print_fn, '[job] ')   # saves, says where, raises
  ckpt.save(step)
  ckpt.export()                      # the SavedModel of the finished run

Checkpoints go to `logdir/checkpoints` (the last `max_to_keep`), the SavedModel to `logdir/saved_model`, written
to a temporary directory and swapped in (`runs.write_saved_model`), so an interrupted export never leaves a broken
model where a good one was.
"""

import os
import time
from typing import Any, Callable, Dict, Optional

import tensorflow as tf

from rlcv_tf.core import runs


class RunCheckpointer:

  def __init__(self, checkpoint: tf.train.Checkpoint, logdir: str, interval_s: float = 600.0,
               export_fn: Optional[Callable[[str], object]] = None, max_to_keep: int = 3):
    self.checkpoint = checkpoint
    self.manager = tf.train.CheckpointManager(checkpoint, os.path.join(logdir, 'checkpoints'),
                                              max_to_keep=max_to_keep)
    self.saved_model_dir = os.path.join(logdir, 'saved_model')
    self.interval_s = interval_s
    self._export_fn = export_fn
    self._last = time.monotonic()

  @property
  def latest(self) -> Optional[str]:
    return self.manager.latest_checkpoint

  def restore_latest(self) -> Optional[str]:
    """Restores the latest checkpoint (every saved object must match); returns its path, or None if none."""
    path = self.manager.latest_checkpoint
    if path:
      self.checkpoint.restore(path).assert_existing_objects_matched()
    return path

  def save(self, step: int) -> str:
    self._last = time.monotonic()
    return self.manager.save(checkpoint_number=int(step))

  def maybe_save(self, step: int) -> Optional[str]:
    """Saves if `interval_s` has passed since the last save; returns the path if it saved."""
    if time.monotonic() - self._last >= self.interval_s:
      return self.save(step)
    return None

  def export(self) -> str:
    if self._export_fn is None:
      raise ValueError('RunCheckpointer has no export_fn')
    return runs.write_saved_model(self.saved_model_dir, self._export_fn)

  def save_all(self, step: int) -> str:
    """Checkpoint and SavedModel; returns a phrase saying where both are."""
    path = self.save(step)
    if self._export_fn is None:
      return f'checkpoint {path}'
    self.export()
    return f'checkpoint {path} and SavedModel {self.saved_model_dir}'

  def save_and_stop(self, step: int, failure: Optional[BaseException], stop: runs.StopOnSignal,
                    print_fn: Callable[[str], None] = print, prefix: str = '', unit: str = 'frames'):
    """The end of a run loop that stopped early: saves the checkpoint and the SavedModel (`save_all`), prints where
    on one line, then re-raises `failure` (an exception the loop caught) or, after a signal, raises
    `runs.Interrupted` (launchers exit with 128 + the signal). Never returns."""
    where = f'{self.save_all(step)} at {step:,} {unit}; run the same command again to resume'
    if failure is not None:
      print_fn(f'{prefix}training failed ({type(failure).__name__}: {failure}); saved {where}')
      raise failure
    print_fn(f'{prefix}stopped by {stop.requested}: saved {where}')
    raise runs.Interrupted(stop.signum, f'stopped by {stop.requested} at {step:,} {unit}')


def open_writer(logdir: str, config: Dict[str, Any], step: int, print_fn: Callable[[str], None] = print,
                prefix: str = ''):
  """The run's TensorBoard writer, after recording `config` (a JSON-able dict) in `logdir/config.json` and
  `config_history.jsonl` (`runs.record_config`). A resumed run whose settings changed prints them on one line and
  writes them as the text summary 'config/changes' at `step`."""
  writer = tf.summary.create_file_writer(logdir)
  changes = runs.record_config(logdir, config, step)
  if changes:
    text = runs.format_changes(changes)
    print_fn(f'{prefix}settings changed since the last session (recorded in {logdir}/config_history.jsonl): {text}')
    with writer.as_default(step=step):
      tf.summary.text('config/changes', text)
  return writer
