"""Pixel likelihoods of the autoregressive models (seed 004 S4:L50-54, L68, L137-147, L203-205; spec §3.1).

p(x) = prod_i p(x_i | x_<i) in raster order (S4:L50-54), each sub-pixel a `levels`-way softmax (S4:L137-147; [orig]
for RGB: R, then G given R, then B given R and G). Training maximises the likelihood (S4:L203-205), i.e. minimises

  NLL(x) = - sum_{r, c, ch} log softmax(logits[r, c, ch])[x[r, c, ch]]        (nats per image)
  bits/dim = NLL / (H * W * C * ln 2)                                         (a uniform model scores log2(levels))

Network inputs are the integer levels scaled to [-1, 1] (`scale`), so zero padding differs from every pixel value
(spec §7.6 T-SAMPLE-2); targets stay integers.
"""

import math

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


def scale(x, levels: int):
  """Integer levels in [0, levels) -> float32 in [-1, 1]: 2 x / (levels - 1) - 1."""
  return 2.0 * tf.cast(x, tf.float32) / float(levels - 1) - 1.0


def nll_nats(logits, x):
  """Negative log-likelihood in nats per image: logits [B, H, W, C, levels], x int [B, H, W, C] -> [B]."""
  log_prob = tfd.Categorical(logits=logits).log_prob(tf.cast(x, tf.int32))
  return -tf.reduce_sum(log_prob, axis=[1, 2, 3])


def bits_per_dim(nll, num_dims: int):
  """Nats per image -> bits per sub-pixel: nll / (num_dims * ln 2), num_dims = H * W * C."""
  return nll / (float(num_dims) * math.log(2.0))


def independent_baseline_nats(train_x, test_x, levels: int, alpha: float = 1.0):
  """NLL (nats per image, mean over test_x) of the independent model with one Categorical per sub-pixel, fitted by
  counting on train_x with add-`alpha` smoothing: the 'independent Bernoulli' baseline for binarised digits."""
  train_x = tf.cast(train_x, tf.int32)
  counts = tf.reduce_sum(tf.one_hot(train_x, levels), axis=0) + alpha           # [H, W, C, levels]
  logits = tf.math.log(counts / tf.reduce_sum(counts, axis=-1, keepdims=True))
  test_x = tf.cast(test_x, tf.int32)
  batch_logits = tf.broadcast_to(logits, tf.concat([tf.shape(test_x), [levels]], 0))
  return float(tf.reduce_mean(nll_nats(batch_logits, test_x)))
