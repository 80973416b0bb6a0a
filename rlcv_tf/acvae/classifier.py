"""The independent attribute classifier of Chapter 6 (thesis Sec. 6.5.2, T:L6033-6040; spec ch5_6 B3 "Attribute
classifier"): the judge of Table 6.3, which scores real test images and the generations conditioned on the test-set
attribute vectors.

Network (`build_attribute_classifier`): "a standard convolutional encoder and a fully connected layer ending with
40 dimension binary predictions" (the thesis); the spec's E6-like trunk, written with stock Keras layers only so the
saved `.keras` archive loads without this package's custom objects:

  x [B, R, R, 3] in [-1, 1] -> CReLU (6 ch) -> from-RGB Conv 1x1 -> c_0, BN, ReLU
    -> (R = 128 only: Conv 3x3 stride 2 -> c_0, BN, ReLU, i.e. one extra stride-2 conv first, spec B3)
    -> the Chapter 5 encoder table of the resolution (`core.vaegan.config.ENCODER_16/32/64`; rows ZeroPad, Conv k/s, BN,
       CReLU | LeakyReLU(0.1)) -> 4x4xC -> Flatten -> Dense(N) logits, one per attribute in the run's order.

CReLU(h) = [ReLU(h) || ReLU(-h)] (as `core.vaegan.layers.CReLU`), built from Rescaling(-1), Concatenate and ReLU. BN uses
Keras momentum 0.9 so short runs get usable inference statistics.

Training (`train_attribute_classifier`): sigmoid cross-entropy of each logit against (a + 1) / 2, Adam 1e-3, by
Chapter 5's `core.vaegan.evaluation.train_classifier(multi_label=True)` (one training loop for both chapters); after
every epoch the mean accuracy on the validation split is measured and the best epoch's weights are kept (model
selection on val, spec B3; `BestEpoch`).

Accuracy (`attribute_accuracy`, `report`): the mean over images and attributes of 1[sign(logit) = a] with
a in {-1, +1}, sign(0) counted as -1 (a logit > 0 predicts +1, as `core.vaegan.evaluation.classifier_accuracy`). The
majority baseline (`majority_values`, `majority_baseline`) predicts, per attribute, the value more frequent in the
TRAIN split (ties: -1) for every test image; its accuracy on the test split is the chance level the classifier is
read against.

Files (`save_attribute_classifier`, `load_attribute_classifier`): `attribute_classifier.keras` (input [B, R, R, 3] in
[-1, 1], logits in the run's attribute order) and the sidecar `attribute_classifier.keras.json` with the attribute
names (in logit order), the resolution, the train-split majority values and the selection record. Loading with
`expected_names` refuses a classifier trained on other attributes or another order.
"""

import dataclasses
import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from rlcv_tf.core.vaegan import evaluation as vaegan_evaluation
from rlcv_tf.core.vaegan import config as vaegan_config
from rlcv_tf.datasets import pipeline

FILE_NAME = 'attribute_classifier.keras'
SIDECAR_SUFFIX = '.json'
SIDECAR_FORMAT = 'rlcv_tf.acvae.attribute_classifier/1'
# The encoder table per input side (Chapter 5's, spec A2.2 / B2); 128 = one stride-2 conv, then the 64 table.
ENCODER_TABLES = {16: vaegan_config.ENCODER_16, 32: vaegan_config.ENCODER_32, 64: vaegan_config.ENCODER_64}
RESOLUTIONS = (16, 32, 64, 128)
LRELU_SLOPE = 0.1
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-6


# ------------------------------------------------------------------------------------------------ network


def _crelu(h, name):
  """[ReLU(h) || ReLU(-h)] with stock layers (doubles the channels)."""
  negated = keras.layers.Rescaling(-1.0, name=f'{name}_neg')(h)
  return keras.layers.ReLU(name=f'{name}_relu')(keras.layers.Concatenate(name=f'{name}_cat')([h, negated]))


def _conv_bn(h, filters, kernel, stride, pad, name):
  if pad:
    h = keras.layers.ZeroPadding2D(pad, name=f'{name}_pad')(h)
  h = keras.layers.Conv2D(filters, kernel, strides=stride, padding='valid', use_bias=False, name=f'{name}_conv')(h)
  return keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f'{name}_bn')(h)


def build_attribute_classifier(resolution: int, num_attributes: int,
                               encoder_layers: Optional[Sequence[Tuple]] = None,
                               name: str = 'attribute_classifier') -> keras.Model:
  """The attribute classifier (module docstring): [B, R, R, 3] in [-1, 1] -> logits [B, num_attributes].

  Args:
    resolution: R, one of RESOLUTIONS (128 adds one stride-2 conv in front of the 64 table).
    num_attributes: N, the number of logits.
    encoder_layers: a `core.vaegan.config` encoder table ((kernel, stride, filters, 'crelu' | 'lrelu', pad), ...) to use
      instead of the resolution's.
  """
  if resolution not in RESOLUTIONS:
    raise ValueError(f'resolution: got {resolution}; valid values are {RESOLUTIONS} (the attribute classifier '
                     'reads 16/32/64 px through the Chapter 5 encoder tables, 128 px through one more stride-2 conv)')
  if int(num_attributes) < 1:
    raise ValueError(f'num_attributes: got {num_attributes}; valid values are integers >= 1')
  table = tuple(encoder_layers) if encoder_layers is not None else ENCODER_TABLES[min(resolution, 64)]
  first = int(table[0][2])
  inputs = keras.Input((resolution, resolution, 3), name='images')
  h = _crelu(inputs, 'input_crelu')
  h = keras.layers.ReLU(name='from_rgb_relu')(_conv_bn(h, first, 1, 1, 0, 'from_rgb'))
  if resolution == 128:
    h = keras.layers.ReLU(name='down_relu')(_conv_bn(h, first, 3, 2, 1, 'down'))
  for i, (kernel, stride, filters, activation, pad) in enumerate(table):
    h = _conv_bn(h, int(filters), int(kernel), int(stride), int(pad), f'enc{i}')
    if activation == 'crelu':
      h = _crelu(h, f'enc{i}_crelu')
    else:
      h = keras.layers.LeakyReLU(LRELU_SLOPE, name=f'enc{i}_lrelu')(h)
  h = keras.layers.Flatten(name='flatten')(h)
  logits = keras.layers.Dense(int(num_attributes), name='logits')(h)
  return keras.Model(inputs, logits, name=name)


# ------------------------------------------------------------------------------------------------ accuracy


def _check_attributes(attributes, name: str = 'attributes') -> np.ndarray:
  a = np.asarray(attributes, np.float32)
  if a.ndim != 2:
    raise ValueError(f'{name}: expected an attribute matrix [n, N] in {{-1, +1}}, got shape {a.shape}')
  if not np.isin(a, (-1.0, 1.0)).all():
    raise ValueError(f'{name}: attribute values must be -1 or +1 (CelebA / SynthFaces convention); got '
                     f'{sorted(set(np.unique(a).tolist()) - {-1.0, 1.0})[:5]}')
  return a


def attribute_accuracy(logits, attributes) -> np.ndarray:
  """Per attribute, the fraction of images with sign(logit) = a (sign(0) = -1): float64 [N]."""
  logits = np.asarray(logits, np.float64)
  a = _check_attributes(attributes)
  if logits.shape != a.shape:
    raise ValueError(f'logits: shape {logits.shape} does not match the attributes {a.shape}')
  if not len(a):
    raise ValueError('attributes: no images')
  return np.mean((logits > 0) == (a > 0), axis=0, dtype=np.float64)


def majority_values(train_attributes) -> np.ndarray:
  """Per attribute, the value more frequent in the training split, float32 [N] in {-1, +1} (ties: -1)."""
  a = _check_attributes(train_attributes, 'train_attributes')
  if not len(a):
    raise ValueError('train_attributes: no images')
  return np.where((a > 0).sum(axis=0) > (a < 0).sum(axis=0), 1.0, -1.0).astype(np.float32)


def majority_baseline(train_attributes, test_attributes, majority: Optional[np.ndarray] = None) -> np.ndarray:
  """Accuracy on the test split of predicting each attribute's training-split majority value: float64 [N].

  `majority` (e.g. the sidecar's `train_majority`) replaces `train_attributes` (then pass None for it)."""
  test = _check_attributes(test_attributes, 'test_attributes')
  values = majority_values(train_attributes) if majority is None else np.asarray(majority, np.float32)
  if values.shape != (test.shape[1],):
    raise ValueError(f'majority / train_attributes: {values.shape[0]} attributes, the test split has {test.shape[1]}')
  return attribute_accuracy(np.broadcast_to(values, test.shape), test)


def predict_logits(model, images, batch_size: int = 100) -> np.ndarray:
  """The classifier's logits [n, N] in inference mode, in batches."""
  images = np.asarray(images, np.float32)
  out = [np.asarray(model(tf.convert_to_tensor(images[i:i + batch_size]), training=False))
         for i in range(0, len(images), batch_size)]
  if not out:
    raise ValueError('images: no images')
  return np.concatenate(out).astype(np.float32)


@dataclasses.dataclass
class AttributeReport:
  """Per-attribute accuracy of one classifier on one image set, with the majority baseline beside it.

  names: the attribute names; accuracy: float64 [N]; baseline: float64 [N] or None.
  """
  names: Tuple[str, ...]
  accuracy: np.ndarray
  baseline: Optional[np.ndarray] = None

  @property
  def mean(self) -> float:
    return float(np.mean(self.accuracy))

  @property
  def baseline_mean(self) -> Optional[float]:
    return None if self.baseline is None else float(np.mean(self.baseline))

  def to_dict(self) -> Dict:
    out = {'names': list(self.names), 'accuracy': [float(v) for v in self.accuracy], 'mean': self.mean}
    if self.baseline is not None:
      out.update(baseline=[float(v) for v in self.baseline], baseline_mean=self.baseline_mean)
    return out

  def markdown(self) -> str:
    """A markdown table in %: attribute | classifier | majority baseline, and the mean row."""
    has_base = self.baseline is not None
    lines = ['| attribute | accuracy (%) |' + (' majority baseline (%) |' if has_base else ''),
             '|---|---:|' + ('---:|' if has_base else '')]
    for i, name in enumerate(self.names):
      lines.append(f'| {name} | {100 * self.accuracy[i]:.2f} |' + (f' {100 * self.baseline[i]:.2f} |'
                                                                  if has_base else ''))
    lines.append(f'| **mean** | {100 * self.mean:.2f} |' + (f' {100 * self.baseline_mean:.2f} |' if has_base else ''))
    return '\n'.join(lines)


def _check_model_names(model, names: Sequence[str], what: str = 'names'):
  outputs = int(model.output_shape[-1])
  if outputs != len(names):
    raise ValueError(f'{what}: {len(names)} attribute names for a classifier with {outputs} logits')


def report(model, test_images, test_attributes, names: Sequence[str], baseline: Optional[np.ndarray] = None,
           batch_size: int = 100) -> AttributeReport:
  """Per-attribute and mean accuracy of `model` on (test_images, test_attributes) (columns in `names`' order), by
  `core.vaegan.evaluation.classifier_accuracy(multi_label=True)`; `baseline` (e.g. `majority_baseline(train, test)`) is
  carried beside it."""
  a = _check_attributes(test_attributes, 'test_attributes')
  names = tuple(names)
  if a.shape[1] != len(names):
    raise ValueError(f'names: {len(names)} names for {a.shape[1]} attribute columns')
  _check_model_names(model, names)
  accuracy = vaegan_evaluation.classifier_accuracy(model, (np.asarray(test_images, np.float32), a), multi_label=True,
                                                  batch_size=batch_size)
  if baseline is not None:
    baseline = np.asarray(baseline, np.float64)
    if baseline.shape != (len(names),):
      raise ValueError(f'baseline: shape {baseline.shape}, expected ({len(names)},), one accuracy per attribute')
  return AttributeReport(names, np.asarray(accuracy, np.float64), baseline)


# ------------------------------------------------------------------------------------------------ training


class BestEpoch(keras.callbacks.Callback):
  """Model selection on a validation split: after every epoch measures the validation accuracy (the mean over
  attributes when multi-label) and, at the end of training, restores the weights (BN statistics included) of the
  best epoch (the first one on ties).

  Attributes after training: accuracies (per epoch), best_epoch (1-based), best_accuracy.
  """

  def __init__(self, validation, multi_label: bool, batch_size: int = 100):
    super().__init__()
    self.validation, self.multi_label, self.batch_size = validation, multi_label, batch_size
    self.accuracies: List[float] = []
    self.best_epoch, self.best_accuracy, self._best_weights = 0, -1.0, None

  def on_epoch_end(self, epoch, logs=None):
    accuracy = float(np.mean(vaegan_evaluation.classifier_accuracy(self.model, self.validation, self.multi_label,
                                                                  self.batch_size)))
    self.accuracies.append(accuracy)
    if logs is not None:
      logs['val_selection_accuracy'] = accuracy
    if accuracy > self.best_accuracy:
      self.best_epoch, self.best_accuracy = epoch + 1, accuracy
      self._best_weights = self.model.get_weights()

  def on_train_end(self, logs=None):
    if self._best_weights is not None:
      self.model.set_weights(self._best_weights)


@dataclasses.dataclass
class TrainedClassifier:
  """What `train_attribute_classifier` returns: the selected model and its record.

  names: attribute names in logit order; majority: the training split's majority values [N] (for the baseline);
  val_accuracies: mean validation accuracy per epoch; best_epoch: 1-based selected epoch; val_accuracy: its value.
  """
  model: keras.Model
  names: Tuple[str, ...]
  majority: np.ndarray
  val_accuracies: List[float]
  best_epoch: int
  val_accuracy: float

  def metadata(self) -> Dict:
    return {'train_majority': [float(v) for v in self.majority], 'best_epoch': self.best_epoch,
            'val_accuracy': self.val_accuracy, 'val_accuracies': list(self.val_accuracies)}


def _attributes_of(data) -> np.ndarray:
  """The attribute matrix of (images, attributes) arrays or of a tf.data.Dataset of such batches."""
  if isinstance(data, tf.data.Dataset):
    return np.concatenate([np.asarray(y) for y in data.map(lambda x, y: y).as_numpy_iterator()])
  return np.asarray(data[1])


def _image_shape_of(data) -> Tuple[int, ...]:
  if isinstance(data, tf.data.Dataset):
    return tuple(data.element_spec[0].shape[1:])
  return tuple(np.shape(data[0])[1:])


def train_attribute_classifier(train_data, val_data, names: Sequence[str], epochs: int = 20, *,
                               learning_rate: float = 1e-3, batch_size: int = 64, seed: int = 0,
                               encoder_layers: Optional[Sequence[Tuple]] = None, verbose: int = 0,
                               callbacks=None) -> TrainedClassifier:
  """Trains the attribute classifier on `train_data`, selecting the best epoch on `val_data` (spec B3).

  Args:
    train_data, val_data: (images [n, R, R, 3] in [-1, 1], attributes [n, N] in {-1, +1}) arrays, or tf.data
      Datasets of such batches (a Dataset is read once more for the majority values).
    names: the N attribute names, in the column order (the logit order of the classifier).
    epochs: passes over train_data (spec B3: 20).
    learning_rate, batch_size: Adam's step (1e-3) and the batch of array inputs.
    seed: weight init and shuffling.
    encoder_layers: see `build_attribute_classifier`.
    callbacks: more Keras callbacks for `fit` (e.g. a progress line).
  """
  if int(epochs) < 1:
    raise ValueError(f'epochs: got {epochs}; valid values are integers >= 1')
  names = tuple(names)
  train_attributes = _check_attributes(_attributes_of(train_data), 'train_data attributes')
  if train_attributes.shape[1] != len(names):
    raise ValueError(f'names: {len(names)} names for {train_attributes.shape[1]} attribute columns in train_data')
  shape = _image_shape_of(train_data)
  if len(shape) != 3 or shape[0] != shape[1] or shape[2] != 3:
    raise ValueError(f'train_data: images must be [n, R, R, 3], got per-image shape {shape}')
  keras.utils.set_random_seed(seed)
  model = build_attribute_classifier(int(shape[0]), len(names), encoder_layers)
  selection = BestEpoch(val_data, multi_label=True, batch_size=max(batch_size, 100))
  val_accuracy = vaegan_evaluation.train_classifier(
      model, train_data, epochs=int(epochs), validation=val_data, learning_rate=learning_rate, batch_size=batch_size,
      seed=seed, verbose=verbose, multi_label=True, callbacks=[selection] + list(callbacks or []))
  return TrainedClassifier(model, names, majority_values(train_attributes), selection.accuracies,
                           selection.best_epoch, val_accuracy)


# ------------------------------------------------------------------------------------------------ files


def sidecar_path(path: str) -> str:
  return path + SIDECAR_SUFFIX


def save_attribute_classifier(model, path: str, names: Sequence[str], metadata: Optional[Dict] = None) -> str:
  """Saves `model` as a .keras archive and the attribute names (logit order) and `metadata` in `path`.json."""
  names = [str(n) for n in names]
  _check_model_names(model, names)
  vaegan_evaluation.save_classifier(model, path)
  record = dict(metadata or {}, format=SIDECAR_FORMAT, attribute_names=names, resolution=int(model.input_shape[1]))
  with open(sidecar_path(path), 'w') as f:
    json.dump(record, f, indent=1)
  return path


def load_metadata(path: str) -> Dict:
  """The sidecar record of a saved attribute classifier (attribute_names, resolution, train_majority, ...)."""
  side = sidecar_path(path)
  if not os.path.isfile(side):
    raise FileNotFoundError(f'{side!r} is missing: an attribute classifier is saved with its attribute names beside '
                            'it (save_attribute_classifier); without them its logits cannot be matched to attributes')
  with open(side) as f:
    record = json.load(f)
  if record.get('format') != SIDECAR_FORMAT or not isinstance(record.get('attribute_names'), list):
    raise ValueError(f'{side!r} is not an attribute-classifier record (format {SIDECAR_FORMAT!r})')
  return record


def load_attribute_classifier(path: str, expected_names: Optional[Sequence[str]] = None) -> keras.Model:
  """Loads a classifier saved by `save_attribute_classifier`; with `expected_names`, refuses (ValueError) one whose
  logits are other attributes or the same attributes in another order."""
  record = load_metadata(path)
  saved = tuple(record['attribute_names'])
  if expected_names is not None:
    expected = tuple(expected_names)
    if saved != expected:
      if sorted(saved) == sorted(expected):
        problem = 'the same attributes in another order'
      else:
        problem = (f'other attributes (only in the classifier: {sorted(set(saved) - set(expected))}; only in this '
                   f'run: {sorted(set(expected) - set(saved))})')
      raise ValueError(f'attribute classifier {path!r}: its logits are {list(saved)}, this run uses {list(expected)}: '
                       f'{problem}. Run with the classifier\'s attributes in its order, or train a classifier for '
                       'this run\'s attributes')
  model = vaegan_evaluation.load_classifier(path)
  _check_model_names(model, saved, f'{sidecar_path(path)} attribute_names')
  return model


# ------------------------------------------------------------------------------------------------ data


def load_split_arrays(dataset: str, data_dir: Optional[str], split: str, resolution: int,
                      attributes=None, num_examples: Optional[int] = None, data_seed: int = 0) -> Dict:
  """Every image of one split as arrays (file order, no augmentation), through `pipeline.make_image_dataset`.

  Returns:
    {'images': float32 [n, R, R, 3] in [-1, 1], 'attributes': float32 [n, N] (data sets with attributes),
     'labels': int64 [n], 'names': the attribute names}.
  """
  ds, info = pipeline.make_image_dataset(dataset, data_dir, split, resolution, 1, train=False, epochs=1,
                                         num_examples=num_examples, data_seed=data_seed, attributes=attributes,
                                         with_info=True)
  parts = {}
  for batch in ds.unbatch().batch(256).as_numpy_iterator():
    for key in ('image', 'attributes', 'label'):
      if key in batch:
        parts.setdefault(key, []).append(batch[key])
  if not parts:
    raise ValueError(f'{dataset} {split}: no images')
  out = {'images': np.concatenate(parts['image']), 'labels': np.concatenate(parts['label']),
         'names': tuple(info.attribute_names or ())}
  if 'attributes' in parts:
    out['attributes'] = np.concatenate(parts['attributes'])
  return out
