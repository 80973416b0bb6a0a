"""Keras layers that more than one chapter uses.

* `CReLU`: concatenated ReLU, concat([relu(x), relu(-x)], axis=-1) (= relu(concat([x, -x]))); doubles the last
  axis. Chapter 2's slim encoder and HPA3C (Table 2.G.2, T:L2068-2072) and Chapter 5's encoder trunk (spec A2.2)
  use it.
"""

import keras
from keras import ops


class CReLU(keras.layers.Layer):
  """Concatenated ReLU: concat([relu(x), relu(-x)], axis=-1); doubles the last axis. relu(x) - relu(-x) = x."""

  def call(self, x):
    return ops.concatenate([ops.relu(x), ops.relu(-x)], axis=-1)

  def compute_output_shape(self, input_shape):
    last = None if input_shape[-1] is None else 2 * input_shape[-1]
    return tuple(input_shape[:-1]) + (last,)
