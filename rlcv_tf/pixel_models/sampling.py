"""Sequential sampling of the autoregressive models (seed 004 S4:L177-220: "sampling remains sequential and slow";
the loop is spec §3.3's).

For every sub-pixel in raster order (rows, columns, then R, G, B) the network is run on the image so far and the
sub-pixel is drawn from Categorical(logits / T). The draw uses the Gumbel-max form argmax(logits + T * g) with
g ~ Gumbel(0, 1) (= argmax(logits / T + g) for T > 0, the exact Categorical(logits / T) sample); T = 0 gives the
argmax. g of sub-pixel i comes from a stateless draw keyed on (seed, i), so two samplers that compute the same logits
draw the same images for the same seed.

* naive (`fast=False`): the whole image goes through the network at each of the H * W * C steps;
* fast (`fast=True`): receptive-field windows. The logits of row r read only input rows r - R .. r (R =
  `model.receptive_rows`, the model's vertical reach), so each step runs the network on that band of rows only.
  With zero padding above the band the logits of row r are unchanged: every feature they read is computed from
  rows inside the band. For PixelRNN models R is the image height (their field is unbounded upwards), so fast
  equals naive there.
"""

import tensorflow as tf

from rlcv_tf.pixel_models import likelihood


def sample(model, num, temperature=1.0, seed=0, condition=None, fast: bool = True):
  """int32 images [num, H, W, C] in [0, levels) drawn from `model` (see the module docstring).

  Args:
    model: a pixel model with image_shape, levels, receptive_rows and call(x, condition=None).
    num: how many images (int or scalar tensor).
    temperature: T >= 0 (0: argmax).
    seed: int (scalar tensor) keying the Gumbel draws.
    condition: one-hot labels [num, num_classes] for class-conditional models.
  """
  h, w, c = model.image_shape
  levels = model.levels
  reach = int(getattr(model, 'receptive_rows', h)) if fast else h
  num = tf.convert_to_tensor(num, tf.int32)
  temperature = tf.cast(temperature, tf.float32)
  seed = tf.cast(seed, tf.int64)
  x = tf.zeros(tf.stack([num, h, w, c]), tf.int32)
  kwargs = {}
  if condition is not None:
    condition = tf.cast(condition, tf.float32)
    check = tf.debugging.assert_equal(tf.shape(condition)[0], num,
                                      message='condition must hold one row per image [num, K]')
    with tf.control_dependencies([check]):       # checked before the model reads it
      kwargs['condition'] = tf.identity(condition)
  for i in tf.range(h * w * c):
    r, col, ch = i // (w * c), (i // c) % w, i % c
    lo = tf.maximum(0, r - reach) if fast else 0
    hi = r + 1 if fast else h
    logits = model(likelihood.scale(x[:, lo:hi], levels), **kwargs)
    logits = tf.gather(tf.gather(tf.gather(logits, r - lo, axis=1), col, axis=1), ch, axis=1)  # [num, levels]
    u = tf.random.stateless_uniform(tf.stack([num, levels]), seed=tf.stack([seed, tf.cast(i, tf.int64)]),
                                    minval=1e-20, maxval=1.0)
    gumbel = -tf.math.log(-tf.math.log(u))
    choice = tf.argmax(logits + temperature * gumbel, axis=-1, output_type=tf.int32)
    where = tf.reshape(tf.one_hot(i, h * w * c, dtype=tf.int32), (1, h, w, c))
    x = x + where * choice[:, None, None, None]
  return x


def sampler(model, fast: bool = True):
  """A tf.function (num, temperature, seed[, condition]) -> images, for training sheets and the SavedModel."""
  if getattr(model, 'num_classes', 0):
    @tf.function(input_signature=[tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.float32),
                                  tf.TensorSpec([], tf.int64), tf.TensorSpec([None, model.num_classes], tf.float32)])
    def run_conditional(num, temperature, seed, condition):
      return sample(model, num, temperature, seed, condition, fast=fast)
    return run_conditional

  @tf.function(input_signature=[tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.float32),
                                tf.TensorSpec([], tf.int64)])
  def run(num, temperature, seed):
    return sample(model, num, temperature, seed, fast=fast)
  return run
