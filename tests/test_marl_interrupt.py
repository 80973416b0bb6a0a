"""Never lose work: Ctrl-C, SIGTERM and an exception in training save a checkpoint and the SavedModel, say where,
and leave no actor process behind; a resumed run starts new random streams and records changed settings."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest
import tensorflow as tf

from rlcv_tf.core import runs
from rlcv_tf.marl import config as config_lib
from rlcv_tf.marl import training
from rlcv_tf.runtime import actors

import marl_test_helpers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def small_config(**kw):
  return marl_test_helpers.small_config(**dict(dict(model='cnn'), **kw))


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_checkpoint_and_saved_model_and_leaves_no_actor(tmp_path, sig):
  logdir = str(tmp_path / 'run')
  cmd = [sys.executable, '-m', 'launchers.marl', '--env=mini_5v5_small', '--model=cnn', '--num_actors=2',
         '--batch_size=2', '--unroll_length=8', '--total_frames=100000000', '--stack_channels=8x1,8x1',
         '--feature_dim=32', '--log_interval_s=0', '--checkpoint_interval_s=1e9', f'--logdir={logdir}']
  proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  lines = []
  try:
    deadline = time.monotonic() + 240
    # Wait for two progress lines: at least two updates are done, none checkpointed (the timed save is off).
    while sum('[marl] frames' in l for l in lines) < 2:
      line = proc.stdout.readline()
      assert line and time.monotonic() < deadline, ''.join(lines)
      lines.append(line)
    children = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    assert len(children) >= 2, 'the actor processes should be running'
    assert not glob.glob(os.path.join(logdir, 'checkpoints', '*.index'))
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=120)
  finally:
    if proc.poll() is None:
      proc.kill()
  lines.append(out)
  text = ''.join(lines)
  assert proc.returncode == 128 + sig, text
  name = 'SIGINT' if sig == signal.SIGINT else 'SIGTERM'
  assert f'stopped by {name}: saved checkpoint' in text, text
  assert 'Traceback' not in text, text
  ckpt = tf.train.latest_checkpoint(os.path.join(logdir, 'checkpoints'))
  assert ckpt and int(ckpt.rsplit('-', 1)[1]) >= 32, 'the checkpoint holds the updates made before the signal'
  served = tf.saved_model.load(os.path.join(logdir, 'saved_model'))
  assert served.serve(tf.zeros((1, 5, 18, 24, 16), tf.uint8))['policy_logits'].shape == (1, 5, 19)
  time.sleep(0.5)
  alive = [p for p in children if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
  assert not alive, f'actor processes outlived the launcher: {alive}'


class _FailingPool(actors.LocalActorPool):
  """Raises inside the inference thread after `fail_after` env steps (a bug or a broken engine mid-run)."""
  fail_after = 80

  def __init__(self, *a, **kw):
    super().__init__(*a, **kw)
    self.steps = 0

  def receive(self, timeout):
    got = super().receive(timeout)
    self.steps += len(got)
    if self.steps >= self.fail_after:
      raise ValueError('scripted failure')
    return got


def test_exception_in_training_saves_then_reraises(tmp_path):
  logdir = str(tmp_path / 'run')
  lines = []
  pools = []

  def factory(cfg, start_frames=0):
    pools.append(_FailingPool(training.actor_configs(cfg, start_frames)))
    return pools[-1]

  with pytest.raises(RuntimeError, match='inference thread failed'):
    training.train(small_config(total_frames=10_000), logdir, pool_factory=factory, print_fn=lines.append)
  assert any('training failed' in l and 'saved checkpoint' in l for l in lines), lines
  assert tf.train.latest_checkpoint(os.path.join(logdir, 'checkpoints'))
  assert os.path.exists(os.path.join(logdir, 'saved_model', 'saved_model.pb'))
  assert all(p is None or p.poll() is not None for p in pools[0]._procs)  # pylint: disable=protected-access


def test_resumed_session_derives_new_seeds_and_records_changed_settings(tmp_path):
  cfg = small_config()
  first = [c.seed for c in training.actor_configs(cfg, 0)]
  assert first == [c.seed for c in training.actor_configs(cfg, 0)], 'the same (seed, frames) gives the same seeds'
  resumed = [c.seed for c in training.actor_configs(cfg, 32)]
  assert len(set(first) | set(resumed)) == 4, 'a resumed session must not replay the first session\'s episodes'

  logdir = str(tmp_path / 'run')
  training.train(small_config(total_frames=16), logdir, print_fn=lambda s: None)
  lines = []
  training.train(small_config(total_frames=32, learning_rate=5e-4), logdir, print_fn=lines.append)
  assert any('settings changed' in l and 'learning_rate' in l and 'total_frames' in l for l in lines), lines
  with open(os.path.join(logdir, 'config_history.jsonl')) as f:
    history = [json.loads(l) for l in f]
  assert 'config' in history[0] and history[0]['step'] == 0
  assert history[1]['step'] == 16
  assert history[1]['changes']['learning_rate'] == {'old': 1.4e-4, 'new': 5e-4}
  assert config_lib.MarlConfig.load(logdir).learning_rate == 5e-4, 'config.json holds the current settings'
  texts = []
  for path in glob.glob(os.path.join(logdir, 'events.out.tfevents.*')):
    for event in tf.compat.v1.train.summary_iterator(path):
      for v in event.summary.value:
        if v.tag == 'config/changes':
          texts.append(tf.make_ndarray(v.tensor).item().decode())
  assert texts and 'learning_rate' in texts[0]


def test_sampler_stream_depends_on_the_session_start():
  from rlcv_tf.marl import learner as learner_lib
  cfg = small_config()
  learner = learner_lib.Learner(cfg, (5, 18, 24, 16), 19)
  obs = tf.zeros((64, 5, 18, 24, 16), tf.uint8)

  def sample(seed):
    learner.reseed_sampler(seed)
    return learner.infer(obs)[0].numpy()

  a, b, c = sample(runs.derived_seed(0, 0, 1 << 20)), sample(runs.derived_seed(0, 0, 1 << 20)), \
      sample(runs.derived_seed(0, 32, 1 << 20))
  np.testing.assert_array_equal(a, b)
  assert (a != c).mean() > 0.5


def test_record_config_and_derived_seed_units(tmp_path):
  d = str(tmp_path)
  assert runs.record_config(d, {'a': 1, 'b': (1, 2)}, 0) == {}
  assert runs.record_config(d, {'a': 1, 'b': [1, 2]}, 5) == {}, 'a tuple and the list it was saved as are equal'
  assert runs.record_config(d, {'a': 2, 'b': [1, 2]}, 9) == {'a': (1, 2)}
  assert runs.derived_seed(3, 0, 1) != runs.derived_seed(3, 1, 0)
  assert 0 <= runs.derived_seed(2**40, 2**62) < 2**31
