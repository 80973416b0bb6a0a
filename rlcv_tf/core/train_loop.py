"""The step-counted training loop of the image models (Chapter 5's crVAE-GAN family, Chapter 6's acVAE family).

A trainer object offers `train_step(*batch) -> {name: scalar tensor}`, `step` (a tf.Variable counting steps),
`set_learning_rate(lr)` and `checkpoint_objects()`. Around it:

* `DataPosition` / `data_start`: the stream position of the last batch handed out is saved in every checkpoint
  (as 'data'), so a resumed run continues the data stream right after it.
* `DataFeed`: the loop's batches, recording that position, reporting images skipped as unreadable (console,
  TensorBoard, eval.json) and ending a run whose split turns out incomplete with the pipeline's one error.
* `restore_or_start`: the CheckpointManager, restored from the latest checkpoint when there is one.
* `train_loop`: up to `run.steps` (a resumed run continues), scalars every `summary_every`, picture sheets every
  `image_every`, progress lines, interval checkpoints, a final checkpoint; non-finite losses stop with a checkpoint
  and one message. SIGINT / SIGTERM (Ctrl-C, preemption) finish the step in flight, save a checkpoint and, given
  `export_fn`, the SavedModel, say where, and raise `runs.Interrupted` (launchers exit with 128 + the signal).
* `sheet_writer`, `progress_line`; `TrainResult`, what a chapter's `train(...)` returns; `save_run_config`.

`run` is any object with the fields of `crvae.run_config.RunConfig` that the loop reads: steps, summary_every,
image_every, log_interval_s, checkpoint_interval_s.
"""

import dataclasses
import json
import os
import time
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from rlcv_tf.core import images as images_lib
from rlcv_tf.core import progress
from rlcv_tf.core import runs

# What the progress line shows when a step reports it: (metric, label).
DEFAULT_LINE_METRICS = (('loss/rec', 'rec'), ('loss/kl_total', 'kl'), ('loss/mi', 'mi'), ('loss/d', 'D'),
                        ('d/accuracy', 'D acc'), ('loss/g2', 'G2'), ('loss/d2', 'D2'), ('d2/accuracy', 'D2 acc'))


@dataclasses.dataclass
class TrainResult:
  """What a training run built on `train_loop` returns: its final step, last logged metrics, end-of-run evaluation,
  SavedModel path, wall time and training speed."""
  steps: int
  metrics: Dict[str, float]
  evaluation: Dict
  saved_model: str
  wall_s: float
  steps_per_second: float


def save_run_config(logdir: str, model_config, run) -> None:
  """Writes logdir/config.json = {'model': model_config.to_dict(), 'run': the run dataclass as a dict}, the record a
  re-run checks before resuming."""
  os.makedirs(logdir, exist_ok=True)
  with open(os.path.join(logdir, 'config.json'), 'w') as f:
    json.dump({'model': model_config.to_dict(), 'run': dataclasses.asdict(run)}, f, indent=1, sort_keys=True)


class DataPosition(tf.Module):
  """The stream position of the last training batch handed out: its epoch and its last example's place in that
  epoch's order. Saved in every checkpoint as 'data'; `data_start` reads it back."""

  def __init__(self, start=(0, 0)):
    super().__init__(name='data_position')
    self.epoch = tf.Variable(int(start[0]), dtype=tf.int64, trainable=False, name='epoch')
    self.position = tf.Variable(int(start[1]) - 1, dtype=tf.int64, trainable=False, name='position')


def data_start(logdir: str) -> Tuple[int, int]:
  """(start_epoch, skip) that continue the training stream of the run in `logdir` right after the batch of its
  latest checkpoint; (0, 0) for a new run, or for a checkpoint saved before data positions were."""
  latest = tf.train.latest_checkpoint(os.path.join(logdir, 'checkpoints'))
  if not latest:
    return 0, 0
  reader = tf.train.load_checkpoint(latest)
  keys = ('data/epoch/.ATTRIBUTES/VARIABLE_VALUE', 'data/position/.ATTRIBUTES/VARIABLE_VALUE')
  if not all(reader.has_tensor(k) for k in keys):
    return 0, 0
  epoch, position = (int(reader.get_tensor(k)) for k in keys)
  return epoch, position + 1


class DataFeed:
  """The training loop's batches: `args(batch)` of each batch of `train` (a tf.data.Dataset), and on the way
  * the stream position of each batch handed out goes into `position` (a checkpoint saved after step k then holds
    the batch of step k, and `data_start` resumes right after it);
  * the images skipped so far (file check and decode failures, each file once) are printed when their number
    changes and written to TensorBoard ('data/skipped_images', 'data/skipped_files'), checked every `every` batches;
  * a split found incomplete while decoding (past max_skipped_fraction) ends the run with the pipeline's one-message
    error naming the files, after a checkpoint.
  `info` is the training split's pipeline.DatasetInfo (None for data sets that keep no such record).
  """

  def __init__(self, train: tf.data.Dataset, info, args, position: DataPosition, manager, writer, step,
               print_fn, every: int, prefix: str = ''):
    self.train, self.info, self.args, self.position = train, info, args, position
    self.manager, self.writer, self.step, self.print_fn = manager, writer, step, print_fn
    self.every, self.reported, self.prefix = max(1, int(every)), -1, prefix

  def __iter__(self):
    tracked = 'position' in self.train.element_spec
    iterator = iter(self.train if tracked else self.train.repeat())
    count = 0
    while True:
      try:
        batch = next(iterator)
      except StopIteration:
        return
      except tf.errors.InvalidArgumentError:
        if self.info is not None and self.info.incomplete():
          self.manager.save(checkpoint_number=int(self.step.numpy()))
          raise self.info.incomplete_error() from None
        raise
      if tracked:
        self.position.epoch.assign(tf.reduce_max(batch['epoch']))
        self.position.position.assign(tf.reduce_max(batch['position']))
      if count % self.every == 0:
        self._check_skipped()
      count += 1
      yield self.args(batch)

  def _check_skipped(self):
    info = self.info
    if info is None or info.total_skipped == self.reported:
      return
    total, files = info.total_skipped, info.all_skipped_files()
    with self.writer.as_default(step=int(self.step.numpy())):
      tf.summary.scalar('data/skipped_images', total)
      if files:
        tf.summary.text('data/skipped_files', '\n'.join(f'{p}: {r}' for p, r in files))
    if total:
      shown = ', '.join(f'{p} ({r})' for p, r in files[:10]) + (f', ... ({total - 10} more)' if total > 10 else '')
      self.print_fn(f'{self.prefix}data: {total} of {info.num_listed} training images skipped so far '
                    f'({info.num_skipped} by the file check, {info.runtime_skipped()} that do not decode): {shown}')
    self.reported = total

  def report(self) -> dict:
    """The skipped images for eval.json ({} when the data set keeps no such record)."""
    if self.info is None:
      return {}
    self._check_skipped()
    return {'data/skipped_images': self.info.total_skipped,
            'data/skipped_files': [f'{p}: {r}' for p, r in self.info.all_skipped_files()]}


def restore_or_start(trainer, logdir: str, print_fn, extra=None, prefix: str = '') -> tf.train.CheckpointManager:
  """The run's CheckpointManager over `trainer.checkpoint_objects()` (+ `extra`, saved from now on and restored by
  their owners, e.g. `data_start`), restored from the latest checkpoint in logdir/checkpoints when there is one."""
  checkpoint = tf.train.Checkpoint(**trainer.checkpoint_objects())
  manager = tf.train.CheckpointManager(checkpoint, os.path.join(logdir, 'checkpoints'), max_to_keep=3)
  if manager.latest_checkpoint:
    checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    print_fn(f'{prefix}resumed from {manager.latest_checkpoint} at step {int(trainer.step.numpy()):,}')
  for name, obj in (extra or {}).items():
    setattr(checkpoint, name, obj)
  return manager


def progress_line(prefix: str, done: int, total: int, rate: progress.RateMeter, out, steps_per_epoch,
                  metrics: Sequence[Tuple[str, str]] = DEFAULT_LINE_METRICS) -> str:
  parts = [f'{prefix}step {done:,}/{total:,} ({100.0 * done / total:.0f}%)']
  if steps_per_epoch:
    parts.append(f'epoch {done / steps_per_epoch:.2f}')
  parts.append(f'{rate.rate:.2f} steps/s')
  for key, label in metrics:
    if key in out:
      parts.append(f'{label} {float(out[key]):.4g}')
  parts.append(f'ETA {progress.format_duration(rate.eta(done, total))}')
  return ' | '.join(parts)


def sheet_writer(logdir: str, writer, make_grid: Callable[[], np.ndarray], tag: str, name: str = 'step'):
  """write_images(step): the sheet `make_grid()` as samples/<name>_<step>.png and as TensorBoard image `tag`."""
  def write_images(at_step):
    grid = make_grid()
    images_lib.save_png(grid, os.path.join(logdir, 'samples', f'{name}_{at_step:07d}.png'), scale=2)
    with writer.as_default(step=at_step):
      tf.summary.image(tag, grid[None], max_outputs=1)
  return write_images


def train_loop(trainer, batches, run, manager, writer, write_images: Callable[[int], None],
               learning_rate: Callable[[int], float], batch_size: int, steps_per_epoch: Optional[int],
               logdir: str, print_fn: Callable[[str], None], on_step: Optional[Callable[[int], None]] = None,
               prefix: str = '', export_fn: Optional[Callable[[], str]] = None,
               line_metrics: Sequence[Tuple[str, str]] = DEFAULT_LINE_METRICS,
               stop: Optional[runs.StopOnSignal] = None,
               throughput_unit: str = 'images') -> Tuple[int, Dict[str, float], float]:
  """Runs `trainer.train_step(*batch)` up to `run.steps` (counted by `trainer.step`, so a resumed run continues):
  scalars every `summary_every`, sheets every `image_every`, `on_step(step)` after every step (e.g. model
  selection), progress lines, interval and final checkpoints. Returns (final step, last metrics, steps/s).

  On SIGINT / SIGTERM (or `stop.request()`) the step in flight finishes, then a checkpoint is saved and, given
  `export_fn` (returns the SavedModel's path), the SavedModel is written; one line says where, and
  `runs.Interrupted` is raised. `throughput_unit` names what a batch holds (TensorBoard 'throughput/<unit>_per_second',
  e.g. 'clips')."""
  done = int(trainer.step.numpy())
  metrics: Dict[str, float] = {}
  rate = progress.RateMeter()
  if done >= run.steps:
    print_fn(f'{prefix}{logdir} already holds {done:,} steps >= steps={run.steps:,}; nothing to train (raise '
             '--steps to continue)')
    return done, metrics, 0.0
  lr = learning_rate(done)
  trainer.set_learning_rate(lr)
  last_log = last_ckpt = time.monotonic()
  rate.update(done)
  gate_updates = gate_count = 0
  stop = stop if stop is not None else runs.StopOnSignal(print_fn, prefix=prefix)
  with stop:
    for batch in (batches.repeat() if isinstance(batches, tf.data.Dataset) else batches):
      out = trainer.train_step(*batch)
      done = int(trainer.step.numpy())
      rate.update(done)
      if learning_rate(done) != lr:
        lr = learning_rate(done)
        trainer.set_learning_rate(lr)
      for key in ('d/updated', 'd2/updated'):
        if key in out:
          gate_updates += int(out[key])
          gate_count += 1
      if done % run.summary_every == 0 or done == run.steps:
        metrics = {k: float(v) for k, v in out.items()}
        if not all(np.isfinite(v) for v in metrics.values()):
          bad = sorted(k for k, v in metrics.items() if not np.isfinite(v))
          manager.save(checkpoint_number=done)
          raise FloatingPointError(f'non-finite losses {bad} at step {done}; the last checkpoint is in {logdir}. '
                                   'Lower --learning_rate or the loss weights.')
        with writer.as_default(step=done):
          for k, v in metrics.items():
            tf.summary.scalar(k, v)
          tf.summary.scalar('train/learning_rate', lr)
          tf.summary.scalar('throughput/steps_per_second', rate.rate)
          tf.summary.scalar(f'throughput/{throughput_unit}_per_second', rate.rate * batch_size)
          if gate_count:
            tf.summary.scalar('d/update_rate', gate_updates / gate_count)
        gate_updates = gate_count = 0
      if done % run.image_every == 0 or done == run.steps:
        write_images(done)
      if on_step is not None:
        on_step(done)
      now = time.monotonic()
      if now - last_log >= run.log_interval_s or done == run.steps:
        print_fn(progress_line(prefix, done, run.steps, rate, out, steps_per_epoch, line_metrics))
        last_log = now
      if stop.requested:
        path = manager.save(checkpoint_number=done)
        where = f'checkpoint {path}' + (f' and SavedModel {export_fn()}' if export_fn is not None else '')
        writer.flush()
        print_fn(f'{prefix}stopped by {stop.requested}: saved {where} at step {done:,}; run the same command '
                 'again to resume')
        raise runs.Interrupted(stop.signum, f'stopped by {stop.requested} at step {done:,}')
      if now - last_ckpt >= run.checkpoint_interval_s:
        manager.save(checkpoint_number=done)
        last_ckpt = now
      if done >= run.steps:
        break
  manager.save(checkpoint_number=done)
  return done, metrics, rate.rate
