"""rlcv_tf.video.export (issue 13 §5): the SavedModel of a Chapter 7 model against the Keras models it came from.

Tiny MMNIST (sigmoid, 1 channel, K = 2) and Weizmann (tanh, 3 channels, K = 4) models, with their weights and
batch-norm moving statistics moved off their initial values (so a missed variable or a training-mode batch norm
shows), are exported and reloaded with tf.saved_model.load. Every endpoint must match the models called with
training=False to 1e-5 at batch sizes 1 and 3; the per-frame endpoints are checked against an explicit loop over the
frames (not the models' own fold/unfold). The same outputs with training=True must differ (the check can fail). A
separate plain-TensorFlow process serves the MMNIST model without importing rlcv_tf
(started beside the in-process tests).
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.video import export
from rlcv_tf.video import models as models_lib
from rlcv_tf.video import presets

ATOL = 1e-5
RTOL = 1e-5      # graph vs eager float32 rounding on S values of ~20
PRESETS = (('mmnist', 'tiny'), ('weizmann', 'tiny'))


# Runs in a fresh interpreter: plain TensorFlow only.
SERVE_SCRIPT = r'''
import json, sys
import numpy as np
import tensorflow as tf
m = tf.saved_model.load(sys.argv[1])
video = np.load(sys.argv[2])
out = m.signatures['serving_default'](video=tf.constant(video))
np.save(sys.argv[3], out['statics'].numpy())
print('RESULT ' + json.dumps(any(n == 'rlcv_tf' or n.startswith('rlcv_tf.') for n in sys.modules)))
'''


def _perturb(models, seed):
  rng = np.random.default_rng(seed)
  for model in models.values():
    for w in model.weights:
      value = np.asarray(w.numpy())
      name = w.name.split('/')[-1]
      if name == 'moving_variance':
        w.assign(rng.uniform(0.5, 1.5, size=value.shape).astype(np.float32))
      elif name == 'moving_mean':
        w.assign(rng.normal(scale=0.2, size=value.shape).astype(np.float32))
      elif w.trainable:
        w.assign((value + rng.normal(scale=0.05, size=value.shape)).astype(np.float32))


def _video(config, batch, seed):
  lo, hi = (0.0, 1.0) if config.output_activation == 'sigmoid' else (-1.0, 1.0)
  rng = np.random.default_rng(seed)
  return rng.uniform(lo, hi, size=(batch,) + config.video_shape).astype(np.float32)


@pytest.fixture(scope='module', params=PRESETS, ids=lambda p: p[0])
def exported(request, tmp_path_factory):
  dataset, preset = request.param
  config = presets.get_preset(dataset, preset)
  keras.utils.set_random_seed(3)
  models = models_lib.build_models(config)
  _perturb(models, 7)
  root = tmp_path_factory.mktemp(f'video_export_{dataset}')
  path = str(root / 'saved_model')
  assert export.export_model(models, config, path) == path
  serving = None
  if dataset == 'mmnist':
    # The plain-TensorFlow process starts now and runs beside the in-process tests (2 cores; saves ~6 s).
    np.save(root / 'video.npy', _video(config, 2, seed=5))
    proc = subprocess.Popen([sys.executable, '-c', SERVE_SCRIPT, path, str(root / 'video.npy'),
                             str(root / 'statics.npy')], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=str(root), env=dict(os.environ, PYTHONPATH=''))
    request.addfinalizer(lambda: proc.poll() is None and proc.kill())
    serving = (proc, root)
  return config, models, export.load_exported(path), path, serving


def _np(x):
  return np.asarray(x.numpy() if hasattr(x, 'numpy') else x)


@pytest.mark.parametrize('batch', [1, 3])
def test_every_endpoint_matches_the_keras_models_in_inference_mode(exported, batch):
  config, models, loaded, _, _ = exported
  ae, stn_model, enc_v = models['frame_autoencoder'], models['block_stn'], models['video_encoder']
  dyn, predictor = models['frame_dynamics'], models['predictor']
  video = _video(config, batch, seed=batch)
  t = config.num_frames
  h, w, c = config.latent_shape

  out = loaded.encode(video)
  assert sorted(out) == ['dynamics', 'statics']
  statics, dynamics = (_np(v) for v in enc_v(video, training=False))
  assert out['statics'].shape == (batch, h, w, c) and out['dynamics'].shape == (batch, config.dynamics_dim)
  np.testing.assert_allclose(_np(out['statics']), statics, atol=ATOL, rtol=RTOL)
  np.testing.assert_allclose(_np(out['dynamics']), dynamics, atol=ATOL, rtol=RTOL)
  assert np.abs(statics).max() > 1e-3, 'S is all zeros: the comparison would prove nothing'

  # f_enc(x_t, S), one frame at a time.
  p = _np(loaded.frame_dynamics(video, statics)['p'])
  p_ref = np.stack([_np(dyn.encode(video[:, i], statics, training=False)) for i in range(t)], axis=1)
  assert p.shape == (batch, t, config.frame_code_dim)
  np.testing.assert_allclose(p, p_ref, atol=ATOL, rtol=RTOL)

  images = _np(loaded.decode_statics(statics)['images'])
  assert images.shape == (batch,) + config.frame_shape
  np.testing.assert_allclose(images, _np(ae.decode(statics, training=False)), atol=ATOL, rtol=RTOL)

  # f_dec(p_t, S), one frame at a time; with S from another clip (the swap).
  other = statics[::-1].copy()
  composed = _np(loaded.compose(other, p)['video'])
  frames_ref = np.stack([_np(dyn.decode(p[:, i], other, training=False)) for i in range(t)], axis=1)
  assert composed.shape == (batch,) + config.video_shape
  np.testing.assert_allclose(composed, frames_ref, atol=ATOL, rtol=RTOL)
  assert _np(loaded.compose(statics, p[:, :3])['video']).shape == (batch, 3) + config.frame_shape

  p_hat = _np(loaded.predict(dynamics, p[:, 0])['p_hat'])
  assert p_hat.shape == (batch, t - 1, config.frame_code_dim)
  p_hat_ref = _np(predictor(dynamics, p[:, 0], steps=t - 1, training=False))
  np.testing.assert_allclose(p_hat, p_hat_ref, atol=ATOL, rtol=RTOL)

  latents = _np(loaded.encode_frames(video[:, 0])['latents'])
  np.testing.assert_allclose(latents, _np(ae.encode(video[:, 0], training=False)), atol=ATOL, rtol=RTOL)
  target = _np(ae.encode(video[:, -1], training=False))
  moved = loaded.transform(latents, target)
  warped, theta = (_np(v) for v in stn_model(latents, target))
  assert theta.shape == (batch, config.num_blocks, 2, 3)
  np.testing.assert_allclose(_np(moved['warped']), warped, atol=ATOL, rtol=RTOL)
  np.testing.assert_allclose(_np(moved['theta']), theta, atol=ATOL, rtol=RTOL)

  # The check can fail: batch norm in training mode (batch statistics) gives other outputs. (Those calls move the
  # BN moving statistics, so the weights are put back afterwards.)
  if batch == 3:
    saved = {id(w): w.numpy() for m in models.values() for w in m.weights}
    assert np.abs(_np(enc_v(video, training=True)[0]) - statics).max() > 1e-3
    assert np.abs(_np(ae.decode(statics, training=True)) - images).max() > 1e-3
    p_train = _np(dyn.encode(video[:, 0], statics, training=True))
    assert np.abs(p_train - p[:, 0]).max() > 1e-3
    assert np.abs(_np(dyn.decode(p[:, 0], other, training=True)) - composed[:, 0]).max() > 1e-3
    for m in models.values():
      for w in m.weights:
        w.assign(saved[id(w)])


def test_signatures_names_and_shapes(exported):
  config, _, loaded, _, _ = exported
  sigs = loaded.signatures
  assert set(sigs) == set(export.SIGNATURES) | {'serving_default'}
  h, w, c = config.latent_shape
  inputs = {name: {k: v.shape.as_list() for k, v in fn.structured_input_signature[1].items()}
            for name, fn in sigs.items()}
  outputs = {name: sorted(fn.structured_outputs) for name, fn in sigs.items()}
  video = [None] + list(config.video_shape)
  assert inputs['serving_default'] == inputs['encode'] == {'video': video}
  assert outputs['serving_default'] == ['dynamics', 'statics']
  assert inputs['frame_dynamics'] == {'video': video, 'statics': [None, h, w, c]}
  assert outputs['frame_dynamics'] == ['p']
  assert inputs['decode_statics'] == {'statics': [None, h, w, c]} and outputs['decode_statics'] == ['images']
  assert inputs['compose'] == {'statics': [None, h, w, c], 'p': [None, None, config.frame_code_dim]}
  assert outputs['compose'] == ['video']
  assert inputs['predict'] == {'dynamics': [None, config.dynamics_dim], 'p1': [None, config.frame_code_dim]}
  assert outputs['predict'] == ['p_hat']
  assert inputs['config'] == {} and outputs['config'] == ['config_json']
  # The signature path (keyword inputs, as a server calls it) gives what the functions give.
  v = _video(config, 2, seed=11)
  served = sigs['serving_default'](video=tf.constant(v))
  np.testing.assert_allclose(served['statics'].numpy(), loaded.encode(v)['statics'].numpy(), atol=ATOL, rtol=RTOL)


def test_the_config_round_trips(exported):
  config, _, loaded, _, _ = exported
  assert export.exported_config(loaded) == config
  assert presets.VideoConfig.from_json(loaded.config_json.numpy().decode()) == config
  assert json.loads(loaded.signatures['config']()['config_json'].numpy().decode()) == json.loads(config.to_json())


def test_the_export_leaves_no_partial_copy_and_refuses_bad_input(exported, tmp_path):
  config, models, _, path, _ = exported
  assert not os.path.exists(path + '.partial') and not os.path.exists(path + '.old')
  with pytest.raises(ValueError, match='missing'):
    export.export_model({k: v for k, v in models.items() if k != 'predictor'}, config, str(tmp_path / 'a'))
  with pytest.raises(ValueError, match='built with config'):
    export.export_model(models, config.replace(latent_channels=16), str(tmp_path / 'b'))
  assert not os.path.exists(tmp_path / 'a') and not os.path.exists(tmp_path / 'b')


def test_plain_tensorflow_serves_it(exported):
  _, models, _, _, serving = exported
  if serving is None:
    pytest.skip('one plain-TensorFlow process is enough (time budget): the MMNIST model')
  proc, root = serving
  stdout, stderr = proc.communicate(timeout=180)
  assert proc.returncode == 0, stderr[-3000:]
  line = [l for l in stdout.splitlines() if l.startswith('RESULT ')][-1]
  assert json.loads(line[len('RESULT '):]) is False, 'the serving process imported rlcv_tf'
  video = np.load(root / 'video.npy')
  np.testing.assert_allclose(np.load(root / 'statics.npy'), _np(models['video_encoder'](video, training=False)[0]),
                             atol=ATOL, rtol=RTOL)
