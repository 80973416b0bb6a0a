"""SavedModels of the GAN generators (issue 15 §5).

Endpoints (inference mode: BatchNorm uses its moving statistics):
  generate(z[, condition]) -> {'samples': G(z[, c])}                           (serving_default)
  sample(num[, condition]) -> {'samples': G(z[, c])} with z ~ N(0, I) drawn inside
z is float32 [B, z_dim]; condition float32 [B, condition_dim] (one-hot class or {-1, +1} attributes) for cGAN and
StackGAN. In `sample`, a condition with one row is used for all `num` samples; otherwise it must have `num` rows.
StackGAN also returns 'stage1' (the Stage-I image); 'samples' is the Stage-II image.
Samples are 2-D points for the toy and images in [-1, 1] otherwise.
"""

import keras
import tensorflow as tf

from rlcv_tf.core import runs


def export_generator(cfg, generator, condition_dim: int, path: str) -> str:
  """Writes `generator` (a networks.* generator, or a stackgan.StackGAN) as a SavedModel at `path`."""
  is_stack = cfg.model == 'stackgan'
  z_dim = int(cfg.z_dim)

  def run(z, condition):
    if is_stack:
      stage1, stage2 = generator.generate(z, condition, training=False)
      return {'samples': stage2, 'stage1': stage1}
    return {'samples': generator(z, condition, training=False)}

  def conditions_for(num, condition):
    rows = tf.shape(condition)[0]
    check = tf.debugging.assert_equal(tf.logical_or(tf.equal(rows, 1), tf.equal(rows, num)), True,
                                      message='sample: condition needs 1 row or num rows')
    with tf.control_dependencies([check]):       # checked before the generator reads it
      return tf.cond(tf.equal(rows, 1), lambda: tf.repeat(condition, num, axis=0), lambda: tf.identity(condition))

  def write(tmp):
    archive = keras.export.ExportArchive()
    archive.track(generator)
    z_spec = tf.TensorSpec([None, z_dim], tf.float32, name='z')
    num_spec = tf.TensorSpec([], tf.int32, name='num')
    if condition_dim:
      c_spec = tf.TensorSpec([None, condition_dim], tf.float32, name='condition')
      archive.add_endpoint('generate', lambda z, condition: run(z, condition), input_signature=[z_spec, c_spec])
      archive.add_endpoint('sample', lambda num, condition: run(tf.random.normal([num, z_dim]),
                                                                conditions_for(num, condition)),
                           input_signature=[num_spec, c_spec])
    else:
      archive.add_endpoint('generate', lambda z: run(z, None), input_signature=[z_spec])
      archive.add_endpoint('sample', lambda num: run(tf.random.normal([num, z_dim]), None),
                           input_signature=[num_spec])
    archive.write_out(tmp, verbose=False)

  return runs.write_saved_model(path, write)
