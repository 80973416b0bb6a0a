"""Chapter 7 baselines and heads (Tables 7.1-7.3; issue 13 §3-4): shapes and feature sizes with the tiny presets,
parameter counts against closed forms, the attentive classifier against a NumPy recomputation from its weights,
FinetuneClassifier.load_from copying Enc_v's trunk exactly, and the trainers learning a trivially separable task.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.video import classifiers
from rlcv_tf.video import models
from rlcv_tf.video import presets

MMNIST = presets.get_preset('mmnist', 'tiny')
WEIZMANN = presets.get_preset('weizmann', 'tiny')
NUM_CLASSES = 55


def _video(config, batch=2, seed=0):
  return tf.random.stateless_uniform((batch,) + config.video_shape, (seed, 1))


def _randomise(layer, seed=1, scale=0.3):
  rng = np.random.default_rng(seed)
  for w in layer.weights:
    value = rng.normal(0.0, scale, w.shape)
    if 'moving_variance' in w.path:
      value = rng.uniform(0.5, 1.5, w.shape)
    w.assign(value.astype(np.float32))


def _trunk_layer4(encoder):
  return [getattr(encoder, name) for name in classifiers.TRUNK_LAYERS + classifiers.LAYER4]


@pytest.fixture(scope='module')
def encoder():
  """A fully built tiny MMNIST Enc_v (S head and P FCs too) with random weights and BN statistics."""
  tf.keras.utils.set_random_seed(0)
  enc = models.VideoEncoder(MMNIST)
  tf.function(lambda v: enc(v)).get_concrete_function(tf.TensorSpec((1,) + MMNIST.video_shape, tf.float32))
  _randomise(enc, seed=5)
  return enc


def _trunk_layer4_params(encoder):
  """Scalars in a fully built Enc_v's conv1..layer4 (the reference trunk every baseline must share)."""
  return sum(models.count_params(layer) for layer in _trunk_layer4(encoder))


def _dense(n_in, n_out):
  return n_in * n_out + n_out


# ------------------------------------------------------------------------------------------------ shapes
@pytest.mark.parametrize('config', [MMNIST, WEIZMANN], ids=['mmnist', 'weizmann'])
def test_shapes_feature_dims_and_output_range(config):
  video = _video(config)
  clf = classifiers.SupervisedVideoClassifier(config, NUM_CLASSES)
  assert tuple(clf(video).shape) == (2, NUM_CLASSES)
  assert tuple(clf.features(video).shape) == (2, config.dynamics_dim)
  ae = classifiers.VideoAutoencoderBaseline(config)
  recon = ae(video).numpy()
  assert recon.shape == (2,) + config.video_shape
  assert tuple(ae.features(video).shape) == (2, config.dynamics_dim)
  low = 0.0 if config.output_activation == 'sigmoid' else -1.0
  assert recon.min() >= low and recon.max() <= 1.0
  if config.output_activation == 'tanh':
    assert recon.min() < 0  # tanh, not sigmoid
  fine = classifiers.FinetuneClassifier(config, 10)
  assert tuple(fine(video).shape) == (2, 10)
  assert tuple(fine.features(video).shape) == (2, config.video_widths[-1])


def test_parameter_counts_match_closed_forms(encoder):
  c = MMNIST
  trunk = _trunk_layer4_params(encoder)
  assert trunk < models.count_params(encoder)  # the S head and P FCs are not part of it
  w1, w2, w3, w4 = c.video_widths
  clf = classifiers.SupervisedVideoClassifier(c, NUM_CLASSES).build_weights()
  assert models.count_params(clf) == (trunk + _dense(w4, c.dynamics_hidden) + _dense(c.dynamics_hidden, c.dynamics_dim)
                                      + _dense(c.dynamics_dim, NUM_CLASSES))
  # The inner encoder's S head and P FCs are never called, so they hold no weights.
  assert sum(models.count_params(layer) for layer in _trunk_layer4(clf.encoder)) == trunk
  assert models.count_params(clf.encoder) == trunk
  ae = classifiers.VideoAutoencoderBaseline(c).build_weights()
  grid = 1 * (c.image_size // 16) ** 2 * w4  # layer4's [1, H/16, W/16, 8w]
  decoder = (_dense(c.dynamics_dim, grid)
             + 4 ** 3 * w4 * w3 + 4 * w3 + 4 ** 3 * w3 * w2 + 4 * w2 + 4 ** 3 * w2 * w1 + 4 * w1   # up1-3 + BN
             + 3 * 4 * 4 * w1 * w1 + 4 * w1                                                       # up4 + BN
             + 27 * w1 * c.channels + c.channels)                                                 # to_pixels
  assert models.count_params(ae) == (trunk + _dense(w4, c.dynamics_hidden) + _dense(c.dynamics_hidden, c.dynamics_dim)
                                     + decoder)
  fine = classifiers.FinetuneClassifier(c, 8).build_weights()
  assert models.count_params(fine) == trunk + _dense(w4, 8)


# ------------------------------------------------------------------------------------------------ attentive head
def _np_sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def test_attentive_classifier_matches_numpy():
  rng = np.random.default_rng(3)
  statics = rng.normal(size=(5, 3, 3, 4)).astype(np.float32)
  dynamics = rng.normal(size=(5, 6)).astype(np.float32)
  head = classifiers.AttentiveClassifier(7, hidden=9)
  head((statics, dynamics))
  _randomise(head, seed=4, scale=0.5)
  logits, a = (t.numpy() for t in head.logits_and_attention(statics, dynamics))
  w_s, b_s = (v.numpy().astype(np.float64) for v in head.statics_proj.weights)
  w_p, b_p = (v.numpy().astype(np.float64) for v in head.dynamics_proj.weights)
  w_a, b_a = (v.numpy().astype(np.float64) for v in head.gate.weights)
  w_o, b_o = (v.numpy().astype(np.float64) for v in head.classify.weights)
  for i in range(5):
    g_s = statics[i].reshape(-1) @ w_s + b_s        # row-major flatten of [h, w, c]
    g_p = dynamics[i] @ w_p + b_p
    gate = _np_sigmoid(np.concatenate([g_s, g_p]) @ w_a + b_a)[0]
    want = np.concatenate([gate * g_s, (1 - gate) * g_p]) @ w_o + b_o
    np.testing.assert_allclose(logits[i], want, rtol=1e-4, atol=1e-5)
    assert a[i] == pytest.approx(gate, rel=1e-5)
  assert a.shape == (5,) and np.all((a >= 0) & (a <= 1))
  flat = head((statics.reshape(5, -1), dynamics)).numpy()  # S may come flattened
  np.testing.assert_allclose(flat, logits, rtol=1e-6)
  np.testing.assert_allclose(head(statics, dynamics).numpy(), logits, rtol=1e-6)


# ------------------------------------------------------------------------------------------------ fine-tuning
def test_finetune_load_from_copies_trunk_exactly(encoder):
  fine = classifiers.FinetuneClassifier(MMNIST, 8).build_weights()
  head_before = [w.numpy().copy() for w in fine.classify.weights]
  assert not np.array_equal(fine.encoder.conv1.weights[0].numpy(), encoder.conv1.weights[0].numpy())
  copied = fine.load_from(encoder)
  assert copied == _trunk_layer4_params(encoder)
  for source, target in zip(_trunk_layer4(encoder), _trunk_layer4(fine.encoder)):
    assert len(source.weights) == len(target.weights) > 0
    for ws, wt in zip(source.weights, target.weights):
      assert ws.path.split('/')[-1] == wt.path.split('/')[-1]
      np.testing.assert_array_equal(ws.numpy(), wt.numpy())
  for before, w in zip(head_before, fine.classify.weights):
    np.testing.assert_array_equal(before, w.numpy())
  video = _video(MMNIST)
  want = encoder.layer4_features(encoder.trunk(video)).numpy()
  np.testing.assert_allclose(fine.features(video).numpy(), want, rtol=1e-5, atol=1e-6)


def test_finetune_load_from_rejects_mismatches(encoder):
  fine = classifiers.FinetuneClassifier(MMNIST, 8)
  with pytest.raises(ValueError, match='video_width'):
    fine.load_from(models.VideoEncoder(MMNIST.replace(video_width=8)))
  with pytest.raises(ValueError, match='no weights'):
    fine.load_from(models.VideoEncoder(MMNIST))
  with pytest.raises(ValueError, match='layers'):
    fine.load_from(encoder, layers=('statics_conv1',))


# ------------------------------------------------------------------------------------------------ trainers
def _two_class_batch(config):
  """Class 0: dark noisy clips; class 1: bright noisy clips (separable by mean brightness)."""
  rng = np.random.default_rng(0)
  noise = rng.uniform(0, 0.2, (4,) + config.video_shape).astype(np.float32)
  labels = np.array([0, 1, 0, 1])
  video = noise + 0.7 * labels.reshape(4, 1, 1, 1, 1).astype(np.float32)
  return video, labels


def test_classifier_trainer_learns_two_classes():
  tf.keras.utils.set_random_seed(1)
  model = classifiers.SupervisedVideoClassifier(MMNIST, 2)
  trainer = classifiers.BaselineTrainer(MMNIST, model, 'classifier')
  video, labels = _two_class_batch(MMNIST)
  first = trainer.eval_step(video, labels)
  for _ in range(12):
    trainer.train_step(video, labels)
  last = trainer.eval_step(video, labels)
  assert int(trainer.step.numpy()) == 12
  assert float(last['loss']) < 0.5 * float(first['loss'])
  assert float(last['accuracy']) == 1.0
  trainer.set_learning_rate(1e-4)
  assert float(trainer.optimizer.learning_rate.numpy()) == pytest.approx(1e-4)
  assert set(trainer.checkpoint_objects()) == {'classifier', 'classifier_optimizer', 'step'}


def test_autoencoder_trainer_reduces_loss_and_checkpoints_bn(tmp_path):
  tf.keras.utils.set_random_seed(2)
  model = classifiers.VideoAutoencoderBaseline(MMNIST)
  trainer = classifiers.BaselineTrainer(MMNIST, model, 'autoencoder', learning_rate=3e-3)
  video, _ = _two_class_batch(MMNIST)
  first = float(trainer.eval_step(video)['loss'])
  recon = model(video, training=False).numpy()
  assert first == pytest.approx(float(np.mean((recon - video) ** 2)), rel=1e-5)  # MSE over every element
  for _ in range(6):
    trainer.train_step(video)
  assert float(trainer.eval_step(video)['loss']) < first
  path = tf.train.Checkpoint(**trainer.checkpoint_objects()).write(str(tmp_path / 'ckpt'))
  names = [name for name, _ in tf.train.list_variables(path)]
  assert any('up_3' in n and 'moving_mean' in n for n in names), names  # the decoder's BN statistics are saved


def test_trainer_rejects_bad_arguments():
  clf = classifiers.SupervisedVideoClassifier(MMNIST, 2)
  with pytest.raises(ValueError, match='kind'):
    classifiers.BaselineTrainer(MMNIST, clf, 'gan')
  with pytest.raises(ValueError, match='model'):
    classifiers.BaselineTrainer(MMNIST, clf, 'autoencoder')
  with pytest.raises(ValueError, match='num_classes'):
    classifiers.SupervisedVideoClassifier(MMNIST, 1)


# ------------------------------------------------------------------------------------------------ heads
def test_train_head_averages_clip_logits_per_video():
  rng = np.random.default_rng(6)
  statics = rng.normal(size=(7, 2, 2, 3)).astype(np.float32)
  dynamics = rng.normal(size=(7, 4)).astype(np.float32)
  groups = np.array([10, 10, 10, 11, 12, 12, 11])
  labels = np.array([2, 2, 2, 0, 1, 1, 0])
  head = classifiers.AttentiveClassifier(3, hidden=5)
  head((statics, dynamics))
  _randomise(head, seed=7, scale=0.8)
  clip_logits = head((statics, dynamics)).numpy().astype(np.float64)

  def log_softmax(x):
    return x - x.max() - np.log(np.exp(x - x.max()).sum())

  per_video = [-log_softmax(clip_logits[groups == g].mean(axis=0))[labels[groups == g][0]] for g in (10, 11, 12)]
  per_clip = [-log_softmax(row)[y] for row, y in zip(clip_logits, labels)]
  ids, video_logits = classifiers.head_video_logits(head, (statics, dynamics), groups)
  np.testing.assert_array_equal(ids, [10, 11, 12])
  np.testing.assert_allclose(video_logits, [clip_logits[groups == g].mean(axis=0) for g in (10, 11, 12)],
                             rtol=1e-6)
  # One batch holding every video: the first loss is the cross-entropy of the averaged logits before any update.
  history = classifiers.train_head(head, (statics, dynamics), labels, groups, epochs=1, batch_size=8)
  assert history['loss'][0] == pytest.approx(np.mean(per_video), rel=1e-5)
  assert abs(np.mean(per_video) - np.mean(per_clip)) > 1e-3  # the two losses differ here
  with pytest.raises(ValueError, match='labels'):
    classifiers.train_head(head, (statics, dynamics), [2, 2, 1, 0, 1, 1, 0], groups, epochs=1)


def test_train_head_fits_a_linear_probe():
  tf.keras.utils.set_random_seed(3)
  rng = np.random.default_rng(8)
  labels = np.repeat([0, 1, 2], 8)
  feats = (rng.normal(0, 0.3, (24, 4)) + np.eye(3, 4)[labels] * 2).astype(np.float32)
  head = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(3)])
  history = classifiers.train_head(head, feats, labels, epochs=60, batch_size=8, learning_rate=0.05)
  assert history['accuracy'][-1] == 1.0 and history['loss'][-1] < history['loss'][0]
  _, logits = classifiers.head_video_logits(head, feats)
  assert np.mean(np.argmax(logits, axis=1) == labels) == 1.0
