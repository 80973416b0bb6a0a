"""Stage-2 refinement (spec ch5 §A2.4, §A3.3, §7.1 items 23-25): G2 / D2 shapes for every variant at reduced size,
the thesis-size layer plans, the perceptual feature net from a saved file or an in-house classifier, and a Stage-2
step that trains G2 / D2 while leaving the frozen Stage-1 VAE untouched."""

import numpy as np
import pytest
import tensorflow as tf

import keras

from rlcv_tf.core.vaegan import classifier as classifier_lib
from rlcv_tf.core.vaegan import evaluation
from rlcv_tf.core.vaegan import networks
from rlcv_tf.crvae import presets
from rlcv_tf.crvae import stage2
from rlcv_tf.crvae import train_steps


@pytest.mark.parametrize('name,bottleneck,ups', [
    ('stage2_tiny', 4, 3), ('stage2_tiny_convt', 4, 3), ('stage2_tiny_single_down', 8, 2), ('stage2_tiny_lsun', 7, 2)])
def test_generator_and_discriminator_shapes(name, bottleneck, ups):
  config = stage2.get_stage2_preset(name)
  generator, discriminator = stage2.build_stage2_models(config)
  x = np.random.default_rng(0).uniform(-1, 1, (3, 16, 16, 3)).astype(np.float32)
  y = generator(x).numpy()
  assert y.shape == (3, config.out_resolution, config.out_resolution, 3) and np.all(np.abs(y) <= 1)
  assert tuple(discriminator(y).shape) == (3, 1)
  assert config.generator_input_size // 2 ** config.num_down == bottleneck and config.num_up == ups
  if config.upsample == 'convT':
    assert any('convt' in v.path for v in generator.trainable_variables)


def test_thesis_size_plans():
  birds = stage2.get_stage2_preset('stage2_birds')
  assert (birds.residual_channels, birds.up_channels, birds.d_final_kernel) == (512, (256, 128, 64), 4)
  single = stage2.get_stage2_preset('stage2_celeba_vaegan')
  assert (single.residual_channels, single.up_channels) == (256, (128, 64))
  lsun = stage2.get_stage2_preset('stage2_lsun')
  assert (lsun.up_channels, lsun.d_final_kernel, lsun.gamma) == ((256, 128, 64, 32), 7, 10.0)
  assert stage2.get_stage2_preset('stage2_celeba_crvaegan').upsample == 'convT'
  with pytest.raises(ValueError, match='^out_resolution:'):
    stage2.get_stage2_preset('stage2_birds', out_resolution=96)
  with pytest.raises(ValueError, match='^upsample:'):
    stage2.get_stage2_preset('stage2_birds', upsample='bicubic')


def test_full_size_birds_generator_builds():
  generator = stage2.Stage2Generator(stage2.get_stage2_preset('stage2_birds'))
  assert tuple(generator(np.zeros((1, 64, 64, 3), np.float32)).shape) == (1, 128, 128, 3)


def test_perceptual_feature_net_sources(tmp_path):
  with pytest.raises(ValueError, match='^weights_path:'):
    stage2.perceptual_feature_net()
  classifier = classifier_lib.vgg11((32, 32, 3), num_classes=5, width=4, head='gap')
  f = stage2.perceptual_feature_net(classifier=classifier)         # default layer: block4_pool
  assert f.layer_name == 'block4_pool'
  x = np.random.default_rng(1).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)   # resized to 32
  assert tuple(f(x).shape) == (2, 2, 2, 32)
  assert not f.trainable_variables
  path = str(tmp_path / 'classifier.keras')
  classifier.save(path)
  f2 = stage2.perceptual_feature_net(weights_path=path, layer_name='block3_pool')
  assert tuple(f2(x).shape) == (2, 4, 4, 16)
  with pytest.raises(ValueError, match="^layer_name: 'nope' is not a layer of vgg11; its layers are: images, "
                                       "block1_conv1, "):
    stage2.perceptual_feature_net(classifier=classifier, layer_name='nope')


def test_a_saved_evaluation_classifier_gives_pooling_features_not_logits(tmp_path):
  """Review finding 2: the model `evaluation.save_classifier` writes (what the launcher tells users to pass) must give
  Stage 2 the pooled conv features of its 4th block by default, not its class logits."""
  keras.utils.set_random_seed(0)
  model = evaluation.build_classifier((32, 32, 3), num_classes=10, width=8)
  path = evaluation.save_classifier(model, str(tmp_path / 'clf.keras'))
  f = stage2.perceptual_feature_net(weights_path=path)
  assert f.layer_name == 'block4_pool'
  x = np.random.default_rng(2).uniform(-1, 1, (3, 32, 32, 3)).astype(np.float32)
  features = f(x).numpy()
  assert features.shape == (3, 2, 2, 64)                            # 32 px after 4 poolings, 512 * 8 / 64 channels
  # The same numbers as the 4th block's pooling output of the original model, computed layer by layer.
  h = x
  for layer in model.layers[1:]:
    h = layer(h, training=False)
    if layer.name == 'block4_pool':
      break
  np.testing.assert_allclose(features, h.numpy(), rtol=1e-5, atol=1e-6)
  assert features.shape[-1] != 10 and features.ndim == 4                          # not the logits


def test_default_feature_layer_is_the_last_pooling_layer_or_refused():
  inputs = keras.Input((8, 8, 3))
  h = keras.layers.Conv2D(4, 3, name='c1')(inputs)
  h = keras.layers.MaxPooling2D(2, name='first_pool')(h)
  h = keras.layers.Conv2D(6, 1, name='c2')(h)
  pooled = keras.layers.AveragePooling2D(3, name='second_pool')(h)
  logits = keras.layers.Dense(5, name='out')(keras.layers.Flatten(name='flat')(pooled))
  net = keras.Model(inputs, logits, name='custom')
  f = stage2.perceptual_feature_net(classifier=net)
  assert f.layer_name == 'second_pool' and tuple(f(np.zeros((2, 8, 8, 3), np.float32)).shape) == (2, 1, 1, 6)
  no_pool = keras.Model(inputs, keras.layers.Dense(5, name='out')(keras.layers.Flatten(name='flat')(
      keras.layers.Conv2D(4, 3, name='c1')(inputs))), name='flat_net')
  with pytest.raises(ValueError, match="^layer_name: flat_net has no 'block4_pool' layer and no pooling layer.*"
                                       "c1, flat, out$"):
    stage2.perceptual_feature_net(classifier=no_pool)
  assert stage2.perceptual_feature_net(classifier=no_pool, layer_name='c1').layer_name == 'c1'


def test_stage2_step_trains_g2_d2_and_freezes_stage1():
  keras.utils.set_random_seed(0)
  stage1_config = presets.get_preset('tiny_vaegan')
  vae, _ = networks.build_models(stage1_config)
  config = stage2.get_stage2_preset('stage2_tiny', gamma=1.0)
  generator, discriminator = stage2.build_stage2_models(config)
  f = stage2.perceptual_feature_net(classifier=classifier_lib.vgg11((32, 32, 3), width=4),
                                    layer_name='block2_pool')
  trainer = train_steps.Stage2Trainer(vae, generator, discriminator, config, feature_net=f)
  rng = np.random.default_rng(2)
  x_high = np.tanh(rng.normal(size=(8, 32, 32, 3))).astype(np.float32)
  x_low = tf.image.resize(x_high, (16, 16), antialias=True).numpy()
  stage1_before = [v.numpy().copy() for v in vae.weights]
  g_before = [v.numpy().copy() for v in generator.trainable_variables]
  d_before = [v.numpy().copy() for v in discriminator.trainable_variables]
  metrics = [trainer.train_step(x_low, x_high) for _ in range(3)][-1]
  assert {'loss/d2', 'loss/g2', 'loss/g2_adv', 'loss/perceptual', 'd2/accuracy', 'd2/updated'} <= set(metrics)
  assert all(np.isfinite(float(v)) for v in metrics.values()) and float(metrics['loss/perceptual']) > 0
  assert all(np.array_equal(b, v.numpy()) for b, v in zip(stage1_before, vae.weights))   # BN stats too
  assert any(not np.array_equal(b, v.numpy()) for b, v in zip(g_before, generator.trainable_variables))
  assert any(not np.array_equal(b, v.numpy()) for b, v in zip(d_before, discriminator.trainable_variables))
  assert int(trainer.g_optimizer.iterations) == 3 and not f.trainable_variables
  with pytest.raises(ValueError, match='^feature_net:'):
    train_steps.Stage2Trainer(vae, generator, discriminator, config)
