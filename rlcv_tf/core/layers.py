"""Keras layers that more than one chapter uses.

* `CReLU`: concatenated ReLU, concat([relu(x), relu(-x)], axis=-1) (= relu(concat([x, -x]))); doubles the last
  axis. Chapter 2's slim encoder and HPA3C (Table 2.G.2, T:L2068-2072) and Chapter 5's encoder trunk (spec A2.2)
  use it.
* `leaky_relu`: LeakyReLU whose gradient reads its output (Chapter 2's encoders and heads, Chapter 3's grid encoder
  and heads): the same numbers as `tf.nn.leaky_relu`, without TensorFlow 2.21's "remapper failed" line.
"""

import keras
from keras import ops
import tensorflow as tf


class CReLU(keras.layers.Layer):
  """Concatenated ReLU: concat([relu(x), relu(-x)], axis=-1); doubles the last axis. relu(x) - relu(-x) = x."""

  def call(self, x):
    return ops.concatenate([ops.relu(x), ops.relu(-x)], axis=-1)

  def compute_output_shape(self, input_shape):
    last = None if input_shape[-1] is None else 2 * input_shape[-1]
    return tuple(input_shape[:-1]) + (last,)


def leaky_relu(x, slope: float):
  """LeakyReLU, max(x, slope * x) for slope >= 0, whose gradient is computed from its output instead of its input.

  Values and gradients are those of `tf.nn.leaky_relu` bit for bit: the gradient is `LeakyReluGrad` (dy where the
  input is > 0, slope * dy elsewhere, 0 included), and for slope >= 0 the output is > 0 exactly where the input is
  (TensorFlow flushes denormal floats to zero in both).
  Why: on CPU, TensorFlow 2.21's grappler remapper fuses conv + BiasAdd + LeakyRelu into one op even when the
  gradient's `LeakyReluGrad` still reads the BiasAdd output; the pass then fails on the conv encoders' training
  graph, printing "remapper failed: ... fanout '.../LeakyReluGrad' exist for missing node '.../BiasAdd'", and is
  dropped for that graph. Reading the output, as ReluGrad does, leaves the fusion valid: no error line, the same
  results, and the remapper's fusions kept (Seaquest train step, 8 envs x t_max 20, interleaved on the loaded
  2-core CPU: A3C median 1312 ms vs 1458 ms before, SA3C 1337 vs 1353 ms; the equivalent
  `tf.maximum(slope * x, x)` also avoids the error but took 1490 ms against 1316 ms).
  """
  slope = float(slope)
  if not slope >= 0.0:
    raise ValueError(f'leaky_slope must be >= 0, got {slope}')

  @tf.custom_gradient
  def _leaky_relu(inputs):
    outputs = tf.nn.leaky_relu(inputs, alpha=slope)

    def grad(dy):
      return tf.raw_ops.LeakyReluGrad(gradients=dy, features=outputs, alpha=slope)

    return outputs, grad

  return _leaky_relu(x)
