"""Shared helpers of the pixel-model tests: the dependency field of a model by gradients."""

import numpy as np
import tensorflow as tf


def dependency(model, shape, seed=0, condition=None):
  """|d sum(logits[r, c, ch, :]) / d x[r', c', ch']| for every output (r, c, ch) -> array [H, W, C, H, W, C].

  One backward pass: batch element b holds the same random input and its loss picks output position b, so the
  gradient of element b is that position's row of the Jacobian (the models mix nothing across the batch)."""
  h, w, c = shape
  n = h * w * c
  x = tf.constant(np.tile(np.random.default_rng(seed).uniform(-1, 1, (1, h, w, c)), (n, 1, 1, 1)), tf.float32)
  pick = tf.reshape(tf.one_hot(tf.range(n), n), (n, h, w, c, 1))
  kwargs = {} if condition is None else {'condition': tf.repeat(condition, n, axis=0)}
  with tf.GradientTape() as tape:
    tape.watch(x)
    logits = model(x, **kwargs)
    loss = tf.reduce_sum(logits * pick)
  g = np.abs(tape.gradient(loss, x).numpy())
  return g.reshape(h, w, c, h, w, c)


def raster_index(h, w, c):
  """Index of (r, col, ch) in the sub-pixel order (raster, then R, G, B) as an array [H, W, C]."""
  return np.arange(h * w * c).reshape(h, w, c)
