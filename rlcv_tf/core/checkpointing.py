"""A training job's checkpoints and SavedModel in one object, for every chapter's run loop.

  ckpt = checkpointing.RunCheckpointer(tf.train.Checkpoint(...), logdir, interval_s=600,
                                       export_fn=lambda path: export.export_policy(model, path, hwc))
  ckpt.restore_latest()              # resume: the latest checkpoint's path, or None for a new run
  with runs.StopOnSignal(print) as stop:
    while ... and not stop.requested:
      ...one update...
      ckpt.maybe_save(step)          # every interval_s seconds
  where = ckpt.save_all(step)        # checkpoint + SavedModel; also what a run does on a signal or an exception

Checkpoints go to `logdir/checkpoints` (the last `max_to_keep`), the SavedModel to `logdir/saved_model`, written
to a temporary directory and swapped in (`runs.write_saved_model`), so an interrupted export never leaves a broken
model where a good one was.
"""

import os
import time
from typing import Callable, Optional

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
