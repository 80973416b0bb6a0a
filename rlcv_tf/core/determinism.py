"""TensorFlow's op determinism for a stretch of code, then off again.

TensorFlow's CPU reductions are not deterministic by default, and a long RL or GAN run amplifies the last-bit
differences: the seed-001 learning check scored 2.1x and 8.1x random play at the same seed in two runs. Learning
checks in tests run inside `op_determinism()`, so the same seed gives the same run and a threshold's margin is the
margin measured. The flag is process-wide; this restores "off" when the block ends.
"""

import contextlib

import tensorflow as tf


@contextlib.contextmanager
def op_determinism():
  """Enables tf.config.experimental.enable_op_determinism inside the block (slower on some ops), disables it after."""
  from tensorflow.python.framework import config as tf_config  # pylint: disable=g-import-not-at-top  (no public off)
  tf.config.experimental.enable_op_determinism()
  try:
    yield
  finally:
    tf_config.disable_op_determinism()
