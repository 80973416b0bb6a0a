"""A model checkpointed on its own restores every weight, BN moving statistics included (Keras 3 containers)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.core import tracking
from rlcv_tf.crvae import networks
from rlcv_tf.crvae import presets
from rlcv_tf.crvae import stage2


class _Stacked(keras.layers.Layer):

  def __init__(self, track, **kwargs):
    super().__init__(**kwargs)
    self.stages = [(keras.layers.Dense(3), keras.layers.BatchNormalization())]
    if track:
      tracking.track_containers(self)

  def call(self, x, training=False):
    for dense, bn in self.stages:
      x = bn(dense(x), training=training)
    return x


def _perturb(model):
  for i, w in enumerate(model.weights):
    w.assign(w.numpy() + 0.01 * (i + 1))


def _roundtrip(make, tmp_path):
  a, b = make(), make()
  _perturb(a)
  path = tf.train.Checkpoint(model=a).save(str(tmp_path / 'ckpt'))
  tf.train.Checkpoint(model=b).restore(path).assert_existing_objects_matched()
  return a, b


@pytest.mark.parametrize('track', [False, True])
def test_container_layers_are_checkpointed_only_when_tracked(track, tmp_path):
  def make():
    layer = _Stacked(track)
    layer(tf.zeros((2, 4)))
    return layer
  a, b = _roundtrip(make, tmp_path)
  same = [np.array_equal(x.numpy(), y.numpy()) for x, y in zip(a.weights, b.weights)]
  assert len(a.weights) == 6, 'tracking adds no weights'
  # Without tracking the Keras 3 container hides the layers from tf.train.Checkpoint (the failure this fixes).
  assert all(same) if track else not any(same)


@pytest.mark.parametrize('preset', ['tiny_synthbirds_crvaegan', 'tiny_mnist_crvae', 'tiny_synthbirds_vaegan'])
def test_crvae_models_restore_every_weight(preset, tmp_path):
  cfg = presets.get_preset(preset)
  for index in (0, 1):
    def make():
      return networks.build_models(cfg)[index]
    if make() is None:
      continue
    a, b = _roundtrip(make, tmp_path / str(index))
    for x, y in zip(a.weights, b.weights):
      np.testing.assert_array_equal(x.numpy(), y.numpy(), err_msg=x.path)


def test_stage2_models_restore_every_weight(tmp_path):
  cfg = stage2.get_stage2_preset('stage2_tiny')
  for index in (0, 1):
    a, b = _roundtrip(lambda: stage2.build_stage2_models(cfg)[index], tmp_path / str(index))
    for x, y in zip(a.weights, b.weights):
      np.testing.assert_array_equal(x.numpy(), y.numpy(), err_msg=x.path)
