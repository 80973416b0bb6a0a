"""Chapter 6 evaluation (thesis Sec. 6.5-6.6, T:L6003-6060; spec ch5_6 B1 "Evaluation", B3, B6).

* `generate_for_attributes`: one generation per test-set attribute vector, x = Dec(z, a) with z ~ p(z|a) (the
  conditions of Tables 6.2 and 6.3: "we generate images conditioning on all attribute combinations from the testing
  set"). The noise comes from a NumPy generator seeded by `seed`, so a generation set is a function of (model, a, seed).
* `attribute_accuracy_table`: Table 6.3's analogue. The independent attribute classifier (`acvae.classifier`) scores
  the real test images against their attributes (the benchmark) and every model's generations against the
  attributes they were conditioned on; per attribute and mean, with the majority baseline beside them. The thesis'
  numbers were an image and are not in the text (spec B6): there is nothing to match, only the ordering to read.
* `identity_inception_score`: IS = exp(E_x KL(p(y|x) || p(y))) with an identity classifier over 10 random splits,
  mean +- std (Table 6.2; Chapter 5's `core.vaegan.evaluation.inception_score`). The thesis uses a VGG11 trained on CASIA
  faces at 128 px, which cannot be obtained here (spec §8-A15): on synth_faces `train_identity_classifier` trains
  Chapter 5's in-house VGG11 on the 20 identities; for CelebA the user supplies one (`--is_classifier=PATH`,
  `core.vaegan.evaluation.load_classifier`). Scores rank models against each other; they are not the thesis' numbers.
"""

import dataclasses
from typing import Dict, Mapping, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from rlcv_tf.acvae import classifier as classifier_lib
from rlcv_tf.core.vaegan import evaluation as vaegan_evaluation
from rlcv_tf.datasets import synthetic

REAL = 'real'
IS_SPLITS = 10


# ------------------------------------------------------------------------------------------------ generation


def generate_for_attributes(vae, attributes, batch_size: int = 100, seed: int = 0) -> np.ndarray:
  """One image per attribute vector: x = tanh(Dec(z, a)), z = mu_p(a) + exp(logvar_p(a) / 2) * eps, in inference mode.

  Args:
    vae: an `acvae.networks.AttributeVAE` (prior_params(a), decode(z, a) -> (u, x)).
    attributes: [M, N] in {-1, +1}, e.g. the test split's attribute matrix (`registry.attribute_matrix`).
    batch_size: vectors per forward pass.
    seed: seed of eps ~ N(0, I) (NumPy; the same seed gives the same images).

  Returns:
    float32 [M, R, R, 3] in [-1, 1], row i generated from attributes[i].
  """
  a = np.asarray(attributes, np.float32)
  if a.ndim != 2 or a.shape[1] != vae.num_attributes:
    raise ValueError(f'attributes: expected [M, {vae.num_attributes}] (the model\'s attributes), got shape {a.shape}')
  if int(batch_size) < 1:
    raise ValueError(f'batch_size: got {batch_size}; valid values are integers >= 1')
  rng = np.random.default_rng(seed)
  out = []
  for start in range(0, len(a), batch_size):
    batch = tf.convert_to_tensor(a[start:start + batch_size])
    mu_p, logvar_p = vae.prior_params(batch, training=False)
    eps = rng.standard_normal(tuple(mu_p.shape)).astype(np.float32)
    z = mu_p + tf.exp(0.5 * logvar_p) * eps
    out.append(np.asarray(vae.decode(z, batch, training=False)[1], np.float32))
  if not out:
    raise ValueError('attributes: no attribute vectors')
  return np.concatenate(out)


# ------------------------------------------------------------------------------------------------ Table 6.3


@dataclasses.dataclass
class AccuracyTable:
  """Table 6.3's analogue: per-attribute accuracy (fractions) of the attribute classifier on each image set.

  names: attribute names; rows: {'real': [N], model name: [N], ...} in insertion order; baseline: [N] or None (the
  majority baseline on the real test attributes).
  """
  names: Tuple[str, ...]
  rows: Dict[str, np.ndarray]
  baseline: Optional[np.ndarray] = None

  def mean(self, row: str) -> float:
    return float(np.mean(self.rows[row]))

  @property
  def baseline_mean(self) -> Optional[float]:
    return None if self.baseline is None else float(np.mean(self.baseline))

  def to_dict(self) -> Dict:
    out = {'names': list(self.names),
           'accuracy': {k: [float(x) for x in v] for k, v in self.rows.items()},
           'mean': {k: self.mean(k) for k in self.rows}}
    if self.baseline is not None:
      out.update(baseline=[float(x) for x in self.baseline], baseline_mean=self.baseline_mean)
    return out

  def markdown(self) -> str:
    return format_accuracy_table(self)


def format_accuracy_table(table: AccuracyTable) -> str:
  """Markdown, all numbers in % (as Table 6.3): one row per attribute and the mean; columns the majority baseline
  (if any), the real images and each model's generations."""
  columns = (['majority baseline'] if table.baseline is not None else []) + list(table.rows)
  values = ([table.baseline] if table.baseline is not None else []) + list(table.rows.values())
  lines = ['| attribute | ' + ' | '.join(columns) + ' |', '|---|' + '---:|' * len(columns)]
  for i, name in enumerate(table.names):
    lines.append(f'| {name} | ' + ' | '.join(f'{100 * v[i]:.2f}' for v in values) + ' |')
  lines.append('| **mean** | ' + ' | '.join(f'{100 * float(np.mean(v)):.2f}' for v in values) + ' |')
  return '\n'.join(lines)


def attribute_accuracy_table(classifier, real_images, real_attributes, generated_by_model: Mapping[str, np.ndarray],
                             attributes_used, names: Sequence[str], baseline: Optional[np.ndarray] = None,
                             batch_size: int = 100) -> AccuracyTable:
  """The attribute classifier's accuracy on the real test images and on each model's generations.

  Args:
    classifier: the attribute classifier (logits in `names`' order; `classifier.load_attribute_classifier` checks).
    real_images, real_attributes: the real test images and their attributes [n, N].
    generated_by_model: {model name: images [M, R, R, 3]}, row i generated from attributes_used[i].
    attributes_used: [M, N], the conditioning vectors (usually real_attributes itself).
    names: the N attribute names.
    baseline: per-attribute majority-baseline accuracy [N] (`classifier.majority_baseline(train, test)`), or None.
  """
  names = tuple(names)
  used = np.asarray(attributes_used, np.float32)
  if REAL in generated_by_model:
    raise ValueError(f'generated_by_model: {REAL!r} names the real images\' row; give the models other names')
  rows = {REAL: classifier_lib.report(classifier, real_images, real_attributes, names, baseline,
                                      batch_size).accuracy}
  for model_name, images in generated_by_model.items():
    if len(images) != len(used):
      raise ValueError(f'generated_by_model[{model_name!r}]: {len(images)} images for {len(used)} attribute vectors '
                       'in attributes_used (one generation per vector, same order)')
    rows[model_name] = classifier_lib.report(classifier, images, used, names, batch_size=batch_size).accuracy
  return AccuracyTable(names, rows, None if baseline is None else np.asarray(baseline, np.float64))


# ------------------------------------------------------------------------------------------------ IS


def identity_inception_score(identity_classifier, images, splits: int = IS_SPLITS, batch_size: int = 100,
                             shuffle_seed: Optional[int] = 0) -> Tuple[float, float]:
  """IS of `images` under an identity classifier (logits out), (mean, std) over `splits` splits.

  The thesis divides the generations "randomly" into 10 subsets: the rows are permuted with `shuffle_seed` first
  (None keeps contiguous splits). Images of another size are resized to the classifier's input
  (`core.vaegan.evaluation.classifier_probs`).
  """
  probs = vaegan_evaluation.classifier_probs(identity_classifier, np.asarray(images, np.float32),
                                            batch_size=batch_size)
  return vaegan_evaluation.inception_score(probs, num_splits=splits, shuffle_seed=shuffle_seed)


def train_identity_classifier(train_data, val_data=None, num_classes: int = synthetic.NUM_FACE_IDENTITIES,
                              epochs: int = 10, width: int = 16, learning_rate: float = 1e-3, batch_size: int = 64,
                              seed: int = 0, verbose: int = 0, callbacks=None):
  """Chapter 5's in-house VGG11 (`core.vaegan.evaluation.build_classifier`) trained on identity labels (synth_faces: the
  20 identities, 'labels' of `classifier.load_split_arrays`); with `val_data`, the best epoch on it is kept.

  Args:
    train_data, val_data: (images [n, R, R, 3], labels [n] int) arrays or tf.data Datasets of such batches.

  Returns:
    (model, accuracy): the classifier (logits [B, num_classes]) and its accuracy on val_data (else on train_data).
  """
  if int(epochs) < 1:
    raise ValueError(f'epochs: got {epochs}; valid values are integers >= 1')
  shape = (tuple(train_data.element_spec[0].shape[1:]) if isinstance(train_data, tf.data.Dataset)
           else tuple(np.shape(train_data[0])[1:]))
  keras.utils.set_random_seed(seed)
  model = vaegan_evaluation.build_classifier(shape, int(num_classes), width=width, name='identity_classifier')
  extra = list(callbacks or [])
  if val_data is not None:
    extra.insert(0, classifier_lib.BestEpoch(val_data, multi_label=False, batch_size=max(batch_size, 100)))
  accuracy = vaegan_evaluation.train_classifier(model, train_data, epochs=int(epochs), validation=val_data,
                                               learning_rate=learning_rate, batch_size=batch_size, seed=seed,
                                               verbose=verbose, callbacks=extra)
  return model, accuracy
