"""Chapter 6 attribute classifier (rlcv_tf/acvae/classifier.py; thesis Sec. 6.5.2, spec ch5_6 B3): accuracy and the
majority baseline against hand computations, the report against a NumPy loop, the saved file with its attribute
names, and (slow) that it learns SynthFaces' attributes well above the majority baseline."""

import json
import time

import numpy as np
import pytest

from rlcv_tf.acvae import classifier
from rlcv_tf.datasets import synthetic

# 4 images x 3 attributes, and logits whose signs are read off by hand below.
ATTRS = np.array([[1, -1, -1],
                  [1, 1, -1],
                  [-1, -1, -1],
                  [1, -1, 1]], np.float32)
LOGITS = np.array([[2.0, -1.0, 0.5],      # right, right, wrong
                   [-0.3, 0.2, -4.0],     # wrong, right, right
                   [-1.0, 0.0, -0.1],     # right, right (sign(0) = -1), right
                   [0.0, 3.0, 1.0]],      # wrong (sign(0) = -1), wrong, right
                  np.float32)
# Hits per attribute: column 0: 1, 0, 1, 0 -> 2/4; column 1: 1, 1, 1, 0 -> 3/4; column 2: 0, 1, 1, 1 -> 3/4.
HAND_ACCURACY = [0.5, 0.75, 0.75]


def test_attribute_accuracy_matches_the_hand_count():
  np.testing.assert_allclose(classifier.attribute_accuracy(LOGITS, ATTRS), HAND_ACCURACY)
  # The thesis' single number: mean over images and attributes = 8 hits of 12.
  assert np.mean(classifier.attribute_accuracy(LOGITS, ATTRS)) == pytest.approx(8 / 12)


def test_majority_baseline_uses_the_train_split_majority_on_test():
  train = np.array([[1, -1, 1],
                    [1, -1, -1],
                    [-1, 1, 1],
                    [1, -1, -1]], np.float32)        # +1 counts 3, 1, 2 of 4 -> majority +1, -1, tie (-1)
  np.testing.assert_array_equal(classifier.majority_values(train), [1, -1, -1])
  # On ATTRS: column 0 is +1 in 3 of 4, column 1 is -1 in 3 of 4, column 2 is -1 in 3 of 4.
  np.testing.assert_allclose(classifier.majority_baseline(train, ATTRS), [0.75, 0.75, 0.75])
  # Not the test split's own majority: a train split whose majority is -1 in column 0 scores 1/4 there.
  flipped = train.copy()
  flipped[:, 0] *= -1
  np.testing.assert_allclose(classifier.majority_baseline(flipped, ATTRS), [0.25, 0.75, 0.75])
  # The stored majority values give the same numbers.
  np.testing.assert_allclose(classifier.majority_baseline(None, ATTRS, majority=np.array([1, -1, -1])),
                             [0.75, 0.75, 0.75])


def test_bad_attribute_values_and_shapes_are_refused():
  with pytest.raises(ValueError, match='-1 or \\+1'):
    classifier.attribute_accuracy(LOGITS, (ATTRS + 1) / 2)
  with pytest.raises(ValueError, match='does not match'):
    classifier.attribute_accuracy(LOGITS[:, :2], ATTRS)
  with pytest.raises(ValueError, match='resolution'):
    classifier.build_attribute_classifier(48, 3)


@pytest.mark.parametrize('resolution', [16, 32, 64, 128])
def test_network_shapes(resolution):
  model = classifier.build_attribute_classifier(resolution, 5)
  assert model.input_shape == (None, resolution, resolution, 3)
  assert model.output_shape == (None, 5)
  # 128 px: one stride-2 conv more than the 64 px trunk (spec B3); otherwise the same 4x4 flatten.
  assert any(layer.name == 'down_conv' for layer in model.layers) == (resolution == 128)
  assert model.get_layer('flatten').output.shape[-1] % 16 == 0


def test_report_matches_a_numpy_loop():
  rng = np.random.default_rng(0)
  model = classifier.build_attribute_classifier(16, 3)
  images = rng.uniform(-1, 1, (37, 16, 16, 3)).astype(np.float32)
  attrs = rng.choice([-1.0, 1.0], (37, 3)).astype(np.float32)
  logits = np.asarray(model(images, training=False))
  expected = np.zeros(3)
  for i in range(37):
    for j in range(3):
      predicted = 1.0 if logits[i, j] > 0 else -1.0
      expected[j] += predicted == attrs[i, j]
  expected /= 37
  baseline = classifier.majority_baseline(attrs[:20], attrs)
  result = classifier.report(model, images, attrs, ('a', 'b', 'c'), baseline=baseline, batch_size=8)
  np.testing.assert_allclose(result.accuracy, expected, atol=1e-12)
  assert result.mean == pytest.approx(expected.mean())
  assert result.baseline_mean == pytest.approx(np.mean(baseline))
  text = result.markdown()
  assert '| b |' in text and f'{100 * expected.mean():.2f}' in text
  with pytest.raises(ValueError, match='names'):
    classifier.report(model, images, attrs, ('a', 'b'))


def test_save_load_round_trip_keeps_names_and_refuses_another_order(tmp_path):
  names = ('Male', 'Smiling', 'Eyeglasses')
  model = classifier.build_attribute_classifier(16, 3)
  path = str(tmp_path / classifier.FILE_NAME)
  classifier.save_attribute_classifier(model, path, names, {'train_majority': [1.0, -1.0, -1.0]})
  with open(path + '.json') as f:
    assert json.load(f)['attribute_names'] == list(names)
  images = np.random.default_rng(1).uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32)
  loaded = classifier.load_attribute_classifier(path, names)
  np.testing.assert_allclose(np.asarray(loaded(images, training=False)), np.asarray(model(images, training=False)),
                             atol=1e-6)
  assert classifier.load_metadata(path)['train_majority'] == [1.0, -1.0, -1.0]
  with pytest.raises(ValueError, match='another order'):
    classifier.load_attribute_classifier(path, ('Smiling', 'Male', 'Eyeglasses'))
  with pytest.raises(ValueError, match="only in this run: \\['Bangs'\\]"):
    classifier.load_attribute_classifier(path, ('Male', 'Smiling', 'Bangs'))
  with pytest.raises(ValueError, match='2 attribute names'):
    classifier.save_attribute_classifier(model, str(tmp_path / 'x.keras'), names[:2])


def test_missing_sidecar_is_refused(tmp_path):
  model = classifier.build_attribute_classifier(16, 2)
  path = str(tmp_path / classifier.FILE_NAME)
  model.save(path)
  with pytest.raises(FileNotFoundError, match='attribute names'):
    classifier.load_attribute_classifier(path, ('a', 'b'))


def test_best_epoch_is_the_one_kept():
  """The selected weights score the best recorded validation accuracy (tiny run, 3 epochs)."""
  rng = np.random.default_rng(2)
  images = rng.uniform(-1, 1, (48, 16, 16, 3)).astype(np.float32)
  attrs = np.where(images[:, :8, :, 0].mean(axis=(1, 2)) > 0, 1.0, -1.0)[:, None].astype(np.float32)
  trained = classifier.train_attribute_classifier((images[:32], attrs[:32]), (images[32:], attrs[32:]), ('A',),
                                                  epochs=3, batch_size=8)
  assert len(trained.val_accuracies) == 3
  assert trained.val_accuracy == pytest.approx(max(trained.val_accuracies))
  assert trained.best_epoch == 1 + int(np.argmax(trained.val_accuracies))
  np.testing.assert_array_equal(trained.majority, classifier.majority_values(attrs[:32]))


@pytest.mark.slow
def test_classifier_learns_synth_faces_attributes_above_the_majority_baseline():
  """32 px SynthFaces, its first 8 attributes: held-out accuracy well above the train-majority baseline."""
  start = time.time()
  names = synthetic.FACE_ATTRIBUTE_NAMES[:8]
  train = classifier.load_split_arrays('synth_faces', None, 'train', 32, list(names), num_examples=3000)
  val = classifier.load_split_arrays('synth_faces', None, 'val', 32, list(names), num_examples=500)
  test = classifier.load_split_arrays('synth_faces', None, 'test', 32, list(names), num_examples=1000)
  assert train['names'] == names
  trained = classifier.train_attribute_classifier((train['images'], train['attributes']),
                                                  (val['images'], val['attributes']), names, epochs=4, seed=0)
  baseline = classifier.majority_baseline(train['attributes'], test['attributes'])
  result = classifier.report(trained.model, test['images'], test['attributes'], names, baseline=baseline)
  elapsed = time.time() - start
  print(f'\n{result.markdown()}\nbest epoch {trained.best_epoch}, val {trained.val_accuracies}, {elapsed:.1f} s')
  assert result.mean >= result.baseline_mean + 0.1
