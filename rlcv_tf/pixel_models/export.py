"""SavedModel of a trained pixel model (issue 15 §5).

Signatures:
* `serving_default` = `log_prob(images int32 [B, H, W, C])` -> {'log_prob': log p(x) in nats per image [B],
  'bits_per_dim': -log p(x) / (H W C ln 2) [B]}; pixels outside [0, levels) fail with InvalidArgumentError.
* `logits(x float32 [B, H, W, C], scaled to [-1, 1] as in training: 2 level / (levels - 1) - 1)` ->
  {'logits': [B, H, W, C, levels]}; differentiable, so gradients can be taken through it.
* `sample(num int32, temperature float32, seed int64)` -> {'images': int32 [num, H, W, C]} (the fast sampler).
Class-conditional models take one more input, `condition` (one-hot float32 [B, num_classes]), in each.
"""

import keras
import tensorflow as tf

from rlcv_tf.core import runs
from rlcv_tf.pixel_models import likelihood
from rlcv_tf.pixel_models import sampling


def _check_levels(images, levels):
  """The images, checked: every later op reads them after the range check (a bare assert in a tf.function may run
  after an op that fails first with another message)."""
  images = tf.cast(images, tf.int32)
  checks = [tf.debugging.assert_greater_equal(images, 0, message=f'pixels must be in [0, {levels})'),
            tf.debugging.assert_less(images, levels, message=f'pixels must be in [0, {levels})')]
  with tf.control_dependencies(checks):
    return tf.identity(images)


def export(model, path: str) -> str:
  """Writes the SavedModel of `model` (keras.export.ExportArchive; `log_prob` first, so it is also
  serving_default) to `path`, atomically replacing an older one; returns the path."""
  h, w, c = model.image_shape
  levels, classes = model.levels, getattr(model, 'num_classes', 0)
  image_spec = tf.TensorSpec([None, h, w, c], tf.int32, name='images')
  x_spec = tf.TensorSpec([None, h, w, c], tf.float32, name='x')
  cond_spec = tf.TensorSpec([None, classes], tf.float32, name='condition')
  num_spec = [tf.TensorSpec([], tf.int32, name='num'), tf.TensorSpec([], tf.float32, name='temperature'),
              tf.TensorSpec([], tf.int64, name='seed')]

  def log_prob(images, condition=None):
    images = _check_levels(images, levels)
    kwargs = {} if condition is None else {'condition': condition}
    nll = likelihood.nll_nats(model(likelihood.scale(images, levels), **kwargs), images)
    return {'log_prob': -nll, 'bits_per_dim': likelihood.bits_per_dim(nll, h * w * c)}

  def logits(x, condition=None):
    return {'logits': model(x) if condition is None else model(x, condition=condition)}

  def sample(num, temperature, seed, condition=None):
    return {'images': sampling.sample(model, num, temperature, seed, condition)}

  def write(tmp):
    archive = keras.export.ExportArchive()
    archive.track(model)
    extra = [cond_spec] if classes else []
    archive.add_endpoint('log_prob', log_prob, input_signature=[image_spec] + extra)
    archive.add_endpoint('logits', logits, input_signature=[x_spec] + extra)
    # autograph on: the sampler's loop over sub-pixels becomes a tf.while_loop
    archive.add_endpoint('sample', tf.function(sample, input_signature=num_spec + extra, autograph=True))
    archive.write_out(tmp, verbose=False)

  return runs.write_saved_model(path, write)
