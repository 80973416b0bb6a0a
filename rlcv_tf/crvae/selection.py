"""Model selection on a validation split (spec ch5 §A3.5, §8-A35) for the MNIST NLL protocol of Table 5.B.1.

The authors' code picks the best epoch on the test set (R5); here the weights are scored on the validation split
during training, the best-scoring weights are kept in `<logdir>/best/` (a checkpoint of the VAE alone, plus
`selection.json` with every score so far), and the reported test NLL is that of the selected weights. The test set
is never looked at before the end.

`ValidationSelector` is generic (any `score_fn`, lower is better); `mnist_selector` builds the one used by
`training.train` for Bernoulli models: the importance-sampled NLL with K = `run.select_samples` on the first
`run.select_images` digits of the fixed binary validation split, with fixed sampling noise, so that two scores
differ only through the weights.
"""

import json
import os
from typing import Callable, Dict, List, Optional

import numpy as np
import tensorflow as tf

from rlcv_tf.core.vaegan import evaluation

BEST_DIR = 'best'
RECORD_FILE = 'selection.json'


class ValidationSelector:
  """Scores the model every `every` steps and keeps the weights with the lowest score.

  Args:
    model: the trackable whose weights are selected (saved as `tf.train.Checkpoint(vae=model)`).
    score_fn: () -> float, the validation score of the model's current weights; lower is better.
    directory: where the best weights and `selection.json` go; an existing record there is continued (resume).
    every: steps between scores (>= 1).
    describe: what the score is, for logs (e.g. 'validation NLL (K=10, 500 digits)').
    writer: optional tf.summary writer; each score is written as `select/score`.
    extra: numbers describing the score (e.g. its sample count), added to what `finish` returns.
  """

  def __init__(self, model, score_fn: Callable[[], float], directory: str, every: int, describe: str = 'score',
               writer=None, print_fn: Callable[[str], None] = print, extra: Optional[Dict[str, float]] = None):
    if every < 1:
      raise ValueError(f'every: must be >= 1, got {every}')
    self.model, self.score_fn, self.directory, self.every = model, score_fn, directory, int(every)
    self.describe, self.writer, self.print_fn = describe, writer, print_fn
    self.extra = dict(extra or {})
    self.checkpoint = tf.train.Checkpoint(vae=model)
    self.manager = tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep=1, checkpoint_name='best')
    self.history: List[Dict[str, float]] = []
    self.best: Optional[Dict[str, float]] = None
    path = os.path.join(directory, RECORD_FILE)
    if os.path.exists(path) and self.manager.latest_checkpoint:
      with open(path) as f:
        saved = json.load(f)
      self.history, self.best = saved['history'], saved['best']

  def maybe_score(self, step: int) -> None:
    """Scores at multiples of `every` (call after every optimiser step)."""
    if step % self.every == 0:
      self.score(step)

  def score(self, step: int) -> float:
    """Scores the current weights as those of `step`; saves them if they are the best so far."""
    if self.history and self.history[-1]['step'] == step:
      return self.history[-1]['score']
    value = float(self.score_fn())
    if not np.isfinite(value):
      raise FloatingPointError(f'{self.describe} is {value} at step {step}')
    self.history.append({'step': int(step), 'score': value})
    if self.best is None or value < self.best['score']:
      self.best = {'step': int(step), 'score': value}
      self.manager.save(checkpoint_number=step)
    self._write_record()
    if self.writer is not None:
      with self.writer.as_default(step=step):
        tf.summary.scalar('select/score', value)
    return value

  def restore_best(self) -> Dict[str, float]:
    """Loads the best weights into the model; returns {'step', 'score'} of them."""
    if self.best is None:
      raise ValueError('nothing has been scored yet')
    self.checkpoint.restore(self.manager.latest_checkpoint).expect_partial().assert_existing_objects_matched()
    return dict(self.best)

  def _write_record(self):
    os.makedirs(self.directory, exist_ok=True)
    tmp = os.path.join(self.directory, RECORD_FILE + '.tmp')
    with open(tmp, 'w') as f:
      json.dump({'what': self.describe, 'lower_is_better': True, 'best': self.best, 'history': self.history}, f,
                indent=1)
    os.replace(tmp, os.path.join(self.directory, RECORD_FILE))


def mnist_selector(vae, cfg, run, logdir: str, steps_per_epoch: int, writer=None,
                   print_fn: Callable[[str], None] = print) -> Optional[ValidationSelector]:
  """The validation-NLL selector of a Bernoulli (MNIST) run, or None when `run.select_every` is -1 (off).

  Scores every `run.select_every` steps (0: once per epoch, as the authors' per-epoch selection).
  """
  if run.select_every < 0:
    return None
  from rlcv_tf.datasets import mnist as mnist_lib  # pylint: disable=g-import-not-at-top
  images, _, what = mnist_lib.fixed_binary_split(run.dataset, run.data_dir or None, 'val', run.select_images)
  every = run.select_every or max(1, steps_per_epoch)
  describe = f'validation NLL (K={run.select_samples}, {len(images):,} digits)'
  print_fn(f'[crvae] model selection: {describe} every {every:,} steps on {what}')
  _, _, test_set = mnist_lib.fixed_binary_split(run.dataset, run.data_dir or None, 'test', run.num_eval_images)
  amat = test_set.find('.amat') >= 0
  print_fn(f'[crvae] test set (K={run.nll_samples} at the end): {test_set}')

  def score():
    return float(np.mean(evaluation.model_nll(vae, images, num_samples=run.select_samples, seed=0)))

  return ValidationSelector(vae, score, os.path.join(logdir, BEST_DIR), every, describe, writer, print_fn,
                            extra={'eval/val_nll_samples': float(run.select_samples),
                                   'eval/num_val_images': float(len(images)),
                                   # -1: Larochelle's .amat test set; else the seed of its one fixed draw.
                                   'eval/test_binarization_seed': float(
                                       -1 if amat else mnist_lib.FIXED_BINARIZATION_SEEDS['test'])})


def finish(selector: Optional[ValidationSelector], step: int, print_fn: Callable[[str], None] = print
           ) -> Dict[str, float]:
  """At the end of training: scores the last weights, loads the best ones, returns eval.json entries."""
  if selector is None:
    return {}
  last = selector.score(step)
  best = selector.restore_best()
  print_fn(f'[crvae] model selection: best {selector.describe} {best["score"]:.4g} nats at step {best["step"]:,} '
           f'(last step {step:,}: {last:.4g}); the test numbers, sheets and SavedModel below are of the step '
           f'{best["step"]:,} weights')
  return {'eval/selected_step': float(best['step']), 'eval/val_nll_nats': best['score'],
          'eval/val_nll_nats_last': last, 'eval/num_val_scores': float(len(selector.history)),
          **selector.extra}
