"""Checkpoint tracking of sub-layers kept in Python containers (Keras 3 on TensorFlow).

Keras 3 layers list their sub-layers' weights wherever they are stored, but `tf.train.Checkpoint` only follows
sub-layers held in plain attributes: a layer kept in a list, tuple or dict attribute is missing from the checkpoint's
object graph. Its trainable variables may still be saved by accident (through an optimizer that holds them), but
non-trainable state such as batch-norm moving statistics is then lost on restore, and restoring a model without its
optimizer silently restores nothing. These functions give every such layer an attribute of its own as well.

Two ways to name them:
* `track_sublayers` / `track_containers` name by position (`stages_0`, `stages_1`, ...). Fine for a fixed layer table;
  but inserting a layer shifts every later key, so a checkpoint of the old layout no longer loads.
* `track_named` names by a key the caller chooses (`grow_r128_0`, ...): a stage's keys depend only on its own name and
  contents, so stages can be added or removed (progressive growing: a 64-px model's checkpoint loads into the shared
  parts of a 128-px model) without touching the other keys.
"""

import re
from typing import Any, Mapping

import keras

_KEY = re.compile(r'^[A-Za-z][A-Za-z0-9_]*$')


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


def track_containers(owner: keras.layers.Layer, exclude=()) -> None:
  """`track_sublayers` for every public list / tuple / dict attribute of `owner` that holds layers.

  The attribute `stages = [(conv, bn), ...]` gives `stages_0 = conv`, `stages_1 = bn`, ... Call it last in
  `__init__` (and again at the end of `build` if `build` creates layers in containers). Attributes named in
  `exclude` are left out (e.g. a dict of stages tracked by name with `track_named`).
  """
  for name, value in sorted(vars(owner).items()):
    if not name.startswith('_') and name not in exclude and isinstance(value, (list, tuple, dict)):
      track_sublayers(owner, name, value)


def track_named(owner: keras.layers.Layer, prefix: str, stages: Mapping[str, Any]) -> None:
  """Tracks each named stage under keys that do not depend on the other stages.

  A stage that is one layer becomes `owner.<prefix>_<name>`; a stage that is a list / tuple / dict of layers becomes
  `owner.<prefix>_<name>_<i>` for its i-th layer (None skipped), numbered within that stage only. Adding, removing
  or reordering other stages leaves these keys unchanged.

  Raises:
    ValueError: on a name that is not an identifier (letters, digits, '_', starting with a letter) or a key that is
      already an attribute of `owner` holding something else.
  """
  for name, stage in stages.items():
    if not isinstance(name, str) or not _KEY.match(name):
      raise ValueError(f'stage name {name!r}: use letters, digits and _ (starting with a letter) so that it can be '
                       f'a stable checkpoint key')
    if isinstance(stage, keras.layers.Layer):
      keyed = {f'{prefix}_{name}': stage}
    else:
      keyed = {f'{prefix}_{name}_{i}': layer for i, layer in enumerate(_layers_in(stage))}
    for key, layer in keyed.items():
      existing = getattr(owner, key, None)
      if existing is not None and existing is not layer:
        raise ValueError(f'stage {name!r}: checkpoint key {key!r} is already used by {existing!r}; give the stage '
                         f'another name')
      setattr(owner, key, layer)
