"""The acVAE-GAN attention over attributes, its regularisers and its Table-6.1 read-out (thesis Sec. 6.4.2; spec B2-B3).

The model learns a T x N mask M = softmax over the T axis of a free weight W in R^{T x N}: for every attribute n the
column M[:, n] is a probability vector over the T LSTM steps (the thesis calls it a "row vector", spec §8-A20; R6
applies `SoftMax` over the step axis). Step t receives the attended attributes a_t = a * M[t, :] (elementwise), so
sum_t a_t = a. R6 implements W as a Torch `CMul(T, N)` fed ones, so M depends only on W; its default init is
U(+-1/sqrt(T N)), used here.

Regularisers (spec B3, §8-A17):

* `entropy_loss`: lambda_ent * (1/N) sum_n H(M[:, n]), H(p) = -sum_t p_t log max(p_t, 1e-7). The thesis minimises the
  entropy so that each attribute attends mainly to one step but gives no weight; 0.05 is the R6 script's value.
* `even_load_loss`: lambda_ds * sum_t (sum_n M[t, n] - N/T)^2, pushing every step to take about N/T attributes. The
  issue asks for the sum over t (the spec writes a mean over t, i.e. this divided by T; the issue governs). The thesis
  found no such term necessary (T:L5885-5889), so its default weight is 0; the `repo_` preset uses 0.05 (R6).

Read-outs: `attention_table` (Table 6.1: the 1-based argmax step of every attribute and its weight, and the attributes
per step), `format_attention_table` (the same as text) and `mask_image` / `save_mask_png` (M as a T x N heat map for
`samples/attention.png`).
"""

import math
from typing import Dict, List, Optional, Sequence

import keras
from keras import ops
import numpy as np
import tensorflow as tf

from rlcv_tf.core import images

# Clamp inside the log of the attention entropy (spec B3).
ENTROPY_CLAMP = 1e-7


def attention_mask(w):
  """M = softmax of W over the step axis (axis 0): [T, N] -> [T, N], each column sums to 1."""
  return ops.softmax(w, axis=0)


class AttributeAttention(keras.layers.Layer):
  """a [B, N] -> a_t [B, T, N] with a_t = a * M[t], M = softmax_T(W) (thesis Sec. 6.4.2; spec B2 "Attention").

  Args:
    num_steps: T, the number of LSTM steps (channel blocks).
    num_attributes: N, the length of the attribute vector.
    seed: seed of W's initialiser U(+-1/sqrt(T N)); None draws from Keras' global seed.

  The weight is created at construction (it does not depend on the input), so `mask()` works before any call.
  """

  def __init__(self, num_steps: int, num_attributes: int, seed: Optional[int] = None, **kwargs):
    super().__init__(**kwargs)
    if int(num_steps) < 1 or int(num_attributes) < 1:
      raise ValueError(f'AttributeAttention: num_steps (T) and num_attributes (N) must be >= 1, got '
                       f'T={num_steps}, N={num_attributes}')
    self.num_steps = int(num_steps)
    self.num_attributes = int(num_attributes)
    self.seed = seed
    bound = 1.0 / math.sqrt(self.num_steps * self.num_attributes)
    self.w = self.add_weight(shape=(self.num_steps, self.num_attributes), name='w', trainable=True,
                             initializer=keras.initializers.RandomUniform(-bound, bound, seed=seed))
    self.built = True

  def mask(self):
    """M [T, N]: softmax of W over the steps."""
    return attention_mask(self.w)

  def call(self, a):
    if a.shape[-1] is not None and a.shape[-1] != self.num_attributes:
      raise ValueError(f'AttributeAttention: attributes a must be [B, {self.num_attributes}] (num_attributes), got '
                       f'shape {tuple(a.shape)}; pass the N-attribute vector the layer was built for')
    a = ops.cast(a, self.w.dtype)
    return ops.expand_dims(a, 1) * ops.expand_dims(self.mask(), 0)

  def compute_output_shape(self, input_shape):
    return (input_shape[0], self.num_steps, self.num_attributes)

  def get_config(self):
    config = super().get_config()
    config.update(num_steps=self.num_steps, num_attributes=self.num_attributes, seed=self.seed)
    return config


def _as_mask(m):
  m = tf.convert_to_tensor(m, tf.float32)
  if m.shape.rank != 2:
    raise ValueError(f'the attention mask M must be [T, N] (steps x attributes), got shape {tuple(m.shape)}')
  return m


def entropy_per_attribute(m):
  """H(M[:, n]) = -sum_t M[t, n] log max(M[t, n], 1e-7) for every attribute: [T, N] -> [N]."""
  m = _as_mask(m)
  return -tf.reduce_sum(m * tf.math.log(tf.maximum(m, ENTROPY_CLAMP)), axis=0)


def entropy_loss(m, weight: float = 0.0):
  """weight * (1/N) sum_n H(M[:, n]), a scalar (lambda_ent; the R6 script and `repo_` presets use 0.05)."""
  return tf.cast(weight, tf.float32) * tf.reduce_mean(entropy_per_attribute(m))


def even_load_loss(m, weight: float = 0.0):
  """weight * sum_t (sum_n M[t, n] - N/T)^2, a scalar (lambda_ds; default 0, the thesis needs none)."""
  m = _as_mask(m)
  shape = tf.cast(tf.shape(m), tf.float32)
  load = tf.reduce_sum(m, axis=1)
  return tf.cast(weight, tf.float32) * tf.reduce_sum(tf.square(load - shape[1] / shape[0]))


def _mask_and_names(m, names: Optional[Sequence[str]]):
  m = np.asarray(m, dtype=np.float64)
  if m.ndim != 2:
    raise ValueError(f'the attention mask M must be [T, N] (steps x attributes), got shape {m.shape}')
  if names is None:
    names = [f'attr_{n}' for n in range(m.shape[1])]
  names = list(names)
  if len(names) != m.shape[1]:
    raise ValueError(f'names: {len(names)} attribute names for a mask of {m.shape[1]} attributes; pass one name per '
                     f'column of M (the N attributes in file order)')
  return m, names


def attribute_assignment(m, names: Optional[Sequence[str]] = None) -> List[Dict]:
  """One row per attribute (in column order): {'attribute', 'step' (1-based argmax_t M[t, n]), 'max_weight'}.

  Ties go to the earliest step (NumPy argmax).
  """
  m, names = _mask_and_names(m, names)
  steps = np.argmax(m, axis=0)
  return [{'attribute': names[n], 'step': int(steps[n]) + 1, 'max_weight': float(m[steps[n], n])}
          for n in range(m.shape[1])]


def attention_table(m, names: Optional[Sequence[str]] = None) -> List[Dict]:
  """Table 6.1 for all N attributes: one row per step t = 1..T (empty steps included).

  Returns:
    [{'step': t, 'attributes': [names whose argmax step is t, in column order], 'max_weights': [their max M],
      'count': len(attributes)}, ...]; every attribute appears exactly once.
  """
  m, names = _mask_and_names(m, names)
  rows = [{'step': t + 1, 'attributes': [], 'max_weights': [], 'count': 0} for t in range(m.shape[0])]
  for entry in attribute_assignment(m, names):
    row = rows[entry['step'] - 1]
    row['attributes'].append(entry['attribute'])
    row['max_weights'].append(entry['max_weight'])
    row['count'] += 1
  return rows


def format_attention_table(m, names: Optional[Sequence[str]] = None) -> str:
  """Table 6.1 as text: 'Step | Attributes (max M)' with one line per step, then the count per step."""
  lines = ['Step | Attributes (max_t M[t, n])']
  rows = attention_table(m, names)
  for row in rows:
    cells = ', '.join(f'{name} ({w:.2f})' for name, w in zip(row['attributes'], row['max_weights']))
    lines.append(f'{row["step"]:>4} | {cells if cells else "-"}')
  lines.append('attributes per step: ' + '/'.join(str(row['count']) for row in rows))
  return '\n'.join(lines)


def mask_image(m, scale: int = 1) -> np.ndarray:
  """M as a grey heat map: uint8 [T*scale, N*scale, 3], row t = step t, column n = attribute n, 0 black, 1 white."""
  m = np.asarray(m, dtype=np.float32)
  if m.ndim != 2:
    raise ValueError(f'the attention mask M must be [T, N] (steps x attributes), got shape {m.shape}')
  grey = images.to_uint8(m, value_range=(0.0, 1.0))
  rgb = np.repeat(grey[:, :, None], 3, axis=-1)
  if scale > 1:
    rgb = np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)
  return rgb


def save_mask_png(m, path: str, scale: int = 16) -> str:
  """Writes `mask_image(M)` (each cell scale x scale pixels) as a PNG, e.g. samples/attention.png."""
  return images.save_png(mask_image(m), path, scale=scale)
