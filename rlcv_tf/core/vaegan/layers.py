"""Building blocks of the Chapter 5 networks (thesis Sec. 5.3, App. 5.A; spec ch5 §0 and §A2.1).

* `CReLU`: relu(concat([x, -x])) (Shang et al. 2016), doubling the channels; the encoder activation.
* `AddBias`: a learnable tensor added to its input, initialised U(-0.01, 0.01). It is the "mean addition" of
  App. 5.A: mu_0 on the crVAE mean path and the bias added back after the generation LSTM (T:L5225-5235).
* `MinibatchDiscrimination`: Salimans et al. 2016, B kernels of C dimensions; o_b(i) = sum_{j != i} exp(-L1).
* `L2Normalize`: per-example x / max(||x||_2, 1e-12) (Torch `nn.Normalize(2)`).
* `torch_bn(eps, mom)`: Keras batch norm with the Torch meaning of momentum (Keras momentum = 1 - Torch momentum).
* Initialisers of the authors' Torch code (spec §0): conv kernels U(+-sqrt(1/(k_h k_w C_out))), Dense kernels
  U(+-1/sqrt(fan_in)), zero biases.
"""

import keras
from keras import ops

from rlcv_tf.core.layers import CReLU  # pylint: disable=unused-import  (re-exported: layers.CReLU)


def conv_initializer():
  """U(+-sqrt(1/(k_h*k_w*C_out))) for `Conv2D` kernels [k, k, C_in, C_out] (VarianceScaling fan_out, 1/3)."""
  return keras.initializers.VarianceScaling(scale=1.0 / 3.0, mode='fan_out', distribution='uniform')


def conv_transpose_initializer():
  """The same bound for `Conv2DTranspose`, whose kernel is stored [k, k, C_out, C_in]: Keras' fan_in is k*k*C_out."""
  return keras.initializers.VarianceScaling(scale=1.0 / 3.0, mode='fan_in', distribution='uniform')


def dense_initializer():
  """Torch's default Linear init U(+-1/sqrt(fan_in))."""
  return keras.initializers.VarianceScaling(scale=1.0 / 3.0, mode='fan_in', distribution='uniform')


def torch_bn(eps: float = 1e-5, mom: float = 0.1, **kwargs) -> keras.layers.BatchNormalization:
  """`BatchNormalization` matching Torch's BN(eps, momentum=mom).

  Torch updates running = (1 - mom) * running + mom * batch; Keras updates moving = momentum * moving +
  (1 - momentum) * batch, hence momentum = 1 - mom (spec §0, §8-A21). Ch5 Birds uses eps=1e-6, mom=0.9; MNIST uses
  the Torch defaults eps=1e-5, mom=0.1. gamma starts at 1 and beta at 0.
  """
  return keras.layers.BatchNormalization(epsilon=eps, momentum=1.0 - mom, gamma_initializer='ones',
                                         beta_initializer='zeros', **kwargs)


class AddBias(keras.layers.Layer):
  """x + b with b a learnable tensor of the input's non-batch shape (Torch `nn.Add(size)`), init U(-0.01, 0.01).

  Args:
    shape: shape of b (without the batch axis); default: the input's shape at build time.
  """

  def __init__(self, shape=None, **kwargs):
    super().__init__(**kwargs)
    self.bias_shape = None if shape is None else tuple(int(d) for d in shape)

  def build(self, input_shape):
    shape = self.bias_shape or tuple(int(d) for d in input_shape[1:])
    self.bias_shape = shape
    self.bias = self.add_weight(shape=shape, name='bias', trainable=True,
                                initializer=keras.initializers.RandomUniform(-0.01, 0.01))

  def call(self, x):
    return x + self.bias

  def get_config(self):
    return dict(super().get_config(), shape=self.bias_shape)


class L2Normalize(keras.layers.Layer):
  """Per-example L2 normalisation over the last axis: x / max(||x||_2, 1e-12) (Torch `nn.Normalize(2)`)."""

  def __init__(self, epsilon: float = 1e-12, **kwargs):
    super().__init__(**kwargs)
    self.epsilon = float(epsilon)

  def call(self, x):
    norm = ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True))
    return x / ops.maximum(norm, self.epsilon)

  def get_config(self):
    return dict(super().get_config(), epsilon=self.epsilon)


class MinibatchDiscrimination(keras.layers.Layer):
  """Minibatch discrimination (Salimans et al. 2016), the last hidden layer of the Ch5 D head (R5: 100 x 5).

  For features x_i in R^A: M_i = reshape(x_i W, (B, C)) with W in R^{A x B x C} (stored [A, B*C]),
  c_b(i, j) = exp(-sum_c |M_{i,b,c} - M_{j,b,c}|) and o_b(i) = sum_{j != i} c_b(i, j). The output is
  concat([x, o]) of width A + B. Every example is compared with the whole minibatch, so the layer is
  permutation-equivariant over the batch; the diagonal term (exp(0) = 1) is masked out rather than subtracted so
  the result is exactly the j != i sum. W starts N(0, 0.05^2) [orig].

  Args:
    num_kernels: B.
    kernel_dim: C.
  """

  def __init__(self, num_kernels: int = 100, kernel_dim: int = 5, **kwargs):
    super().__init__(**kwargs)
    self.num_kernels = int(num_kernels)
    self.kernel_dim = int(kernel_dim)

  def build(self, input_shape):
    self.kernel = self.add_weight(shape=(int(input_shape[-1]), self.num_kernels * self.kernel_dim), name='kernel',
                                  initializer=keras.initializers.RandomNormal(stddev=0.05))

  def call(self, x):
    m = ops.reshape(ops.matmul(x, self.kernel), (-1, self.num_kernels, self.kernel_dim))
    l1 = ops.sum(ops.abs(ops.expand_dims(m, 1) - ops.expand_dims(m, 0)), axis=-1)     # [N, N, B]
    batch = ops.shape(x)[0]
    not_self = 1.0 - ops.eye(batch, dtype=x.dtype)
    o = ops.sum(ops.exp(-l1) * ops.expand_dims(not_self, -1), axis=1)                 # [N, B]
    return ops.concatenate([x, o], axis=-1)

  def compute_output_shape(self, input_shape):
    return tuple(input_shape[:-1]) + (int(input_shape[-1]) + self.num_kernels,)

  def get_config(self):
    return dict(super().get_config(), num_kernels=self.num_kernels, kernel_dim=self.kernel_dim)
