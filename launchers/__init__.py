"""absl entry points, one per task: `python -m launchers.NAME --help`.

Importing the package installs `rlcv_tf.core.quiet.quiet_tensorflow_import()`, so each launcher's console shows
its own lines and not TensorFlow's C++ start-up lines, whichever module imports TensorFlow first.
"""

from rlcv_tf.core import quiet as _quiet

_quiet.quiet_tensorflow_import()
