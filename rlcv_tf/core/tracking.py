"""Checkpoint tracking of sub-layers kept in Python containers (Keras 3 on TensorFlow).

Keras 3 layers list their sub-layers' weights wherever they are stored, but `tf.train.Checkpoint` only follows
sub-layers held in plain attributes: a layer kept in a list, tuple or dict attribute is missing from the checkpoint's
object graph. Its trainable variables may still be saved by accident (through an optimizer that holds them), but
non-trainable state such as batch-norm moving statistics is then lost on restore, and restoring a model without its
optimizer silently restores nothing. `track_sublayers` gives every such layer an attribute of its own as well.
"""

from typing import Any

import keras


def _layers_in(nested: Any):
  if isinstance(nested, keras.layers.Layer):
    yield nested
  elif isinstance(nested, dict):
    for key in sorted(nested):
      yield from _layers_in(nested[key])
  elif isinstance(nested, (list, tuple)):
    for item in nested:
      yield from _layers_in(item)


def track_sublayers(owner: keras.layers.Layer, prefix: str, nested: Any) -> None:
  """Sets `owner.<prefix>_<i>` to the i-th layer found in `nested` (lists, tuples, dicts; None is skipped).

  Call it at the end of `__init__`, after the container is complete; the attribute names, and so the checkpoint
  keys, follow the containers' order. Weights are not counted twice.
  """
  for i, layer in enumerate(_layers_in(nested)):
    setattr(owner, f'{prefix}_{i}', layer)


def track_containers(owner: keras.layers.Layer) -> None:
  """`track_sublayers` for every public list / tuple / dict attribute of `owner` that holds layers.

  The attribute `stages = [(conv, bn), ...]` gives `stages_0 = conv`, `stages_1 = bn`, ... Call it last in
  `__init__` (and again at the end of `build` if `build` creates layers in containers).
  """
  for name, value in sorted(vars(owner).items()):
    if not name.startswith('_') and isinstance(value, (list, tuple, dict)):
      track_sublayers(owner, name, value)
