"""SavedModel export of the Chapter 6 models (rlcv_tf.acvae.export; thesis Sec. 6.5-6.6, spec ch5_6 B3).

Every model kind (tiny presets, weights and batch-norm statistics moved off their initial values) is exported, then
reloaded in a separate Python process that imports plain TensorFlow and never rlcv_tf (checked on sys.modules). That
process runs every endpoint on inputs written here and sends the outputs back; they must match the Keras model's own
paths (prior + decode, encode, decode, encode-then-decode-under-new-attributes, the attention mask) to 1e-5. An
attribute vector of the wrong length must be refused by every endpoint that takes one.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from rlcv_tf.acvae import export
from rlcv_tf.acvae import networks
from rlcv_tf.acvae import presets

MODELS = presets.MODELS
BATCH = 3
ATOL = 1e-5

# Runs in a fresh interpreter: plain TensorFlow only.
SERVE_SCRIPT = r'''
import json, sys
import numpy as np
import tensorflow as tf

out = {}
for kind, path in json.loads(sys.argv[1]).items():
  inputs = np.load(path + '.inputs.npz')
  m = tf.saved_model.load(path)
  a, a2, x, z, noise = (inputs[k] for k in ('a', 'a2', 'x', 'z', 'noise'))
  res = {}
  g = m.generate(a, noise)
  res['generate_images'], res['generate_z'] = g['images'].numpy(), g['z'].numpy()
  res['serving_images'] = m.signatures['serving_default'](attributes=a, noise=noise)['images'].numpy()
  e = m.encode(x, a)
  res['encode_mu'], res['encode_logvar'] = e['mu'].numpy(), e['logvar'].numpy()
  res['decode_images'] = m.decode(z, a)['images'].numpy()
  res['edit_images'] = m.edit(x, a, a2)['images'].numpy()
  res['edit_same'] = m.edit(x, a, a)['images'].numpy()
  s = m.sample(a)
  res['sample_images'], res['sample_z'] = s['images'].numpy(), s['z'].numpy()
  if hasattr(m, 'attention'):
    res['attention'] = m.attention()['mask'].numpy()
  np.savez(path + '.served.npz', **res)
  wrong = np.concatenate([a, a[:, :1]], axis=1)
  refused = {}
  for name, call in (('generate', lambda: m.generate(wrong, noise)), ('sample', lambda: m.sample(wrong)),
                     ('encode', lambda: m.encode(x, wrong)), ('decode', lambda: m.decode(z, wrong)),
                     ('edit_old', lambda: m.edit(x, wrong, a)), ('edit_new', lambda: m.edit(x, a, wrong)),
                     ('signature', lambda: m.signatures['generate'](attributes=wrong, noise=noise))):
    try:
      call()
      refused[name] = False
    except (ValueError, TypeError, tf.errors.InvalidArgumentError):
      refused[name] = True
  sig = m.signatures['serving_default'].structured_input_signature[1]
  out[kind] = dict(
      names=[n.decode() for n in m.attribute_names()['names'].numpy()],
      config=json.loads(m.config()['config_json'].numpy().decode()),
      signatures=sorted(m.signatures), serving_inputs=sorted(sig),
      attribute_spec=sig['attributes'].shape.as_list(), refused=refused, has_attention=hasattr(m, 'attention'))
out['rlcv_tf_imported'] = any(name == 'rlcv_tf' or name.startswith('rlcv_tf.') for name in sys.modules)
print('RESULT ' + json.dumps(out))
'''


def _perturb(vae, seed):
  """Weights, batch-norm statistics and the attention away from their initial values (so a missed variable or a
  training-mode BN would show)."""
  rng = np.random.default_rng(seed)
  for w in vae.weights:
    value = np.asarray(w.numpy())
    if w.name == 'moving_variance':
      w.assign(rng.uniform(0.5, 1.5, size=value.shape).astype(value.dtype))
    elif w.name == 'moving_mean':
      w.assign((value + rng.normal(scale=0.1, size=value.shape)).astype(value.dtype))
    elif w.trainable:
      w.assign((value + rng.normal(scale=0.02, size=value.shape)).astype(value.dtype))
  if vae.attention is not None:
    vae.attention.w.assign(rng.normal(scale=1.0, size=vae.attention.w.shape).astype(np.float32))


def _inputs(cfg, seed):
  rng = np.random.default_rng(seed)
  a = np.sign(rng.normal(size=(BATCH, cfg.num_attributes)) + 1e-3).astype(np.float32)
  a2 = a.copy()
  a2[:, 0] *= -1
  a2[:, -1] *= -1
  return dict(a=a, a2=a2, x=np.tanh(rng.normal(size=(BATCH,) + cfg.image_shape)).astype(np.float32),
              z=rng.normal(size=(BATCH,) + cfg.latent_shape).astype(np.float32),
              noise=rng.normal(size=(BATCH,) + cfg.latent_shape).astype(np.float32))


@pytest.fixture(scope='module')
def served(tmp_path_factory):
  """Exports every kind, serves them all from one plain-TensorFlow process; returns per kind (cfg, vae, inputs,
  served outputs, report) and the process's import check."""
  root = tmp_path_factory.mktemp('acvae_export')
  models, paths = {}, {}
  for i, kind in enumerate(MODELS):
    cfg = presets.get_preset(f'tiny_{kind}')
    keras.utils.set_random_seed(i)
    vae, _ = networks.build_models(cfg)
    _perturb(vae, i)
    path = str(root / kind)
    assert export.export_model(vae, cfg, path) == path
    inputs = _inputs(cfg, 10 + i)
    np.savez(path + '.inputs.npz', **inputs)
    models[kind], paths[kind] = (cfg, vae, inputs), path
  env = dict(os.environ, PYTHONPATH='')
  proc = subprocess.run([sys.executable, '-c', SERVE_SCRIPT, json.dumps(paths)], capture_output=True, text=True,
                        cwd=str(root), env=env, timeout=300, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  line = [l for l in proc.stdout.splitlines() if l.startswith('RESULT ')][-1]
  report = json.loads(line[len('RESULT '):])
  out = {kind: models[kind] + (dict(np.load(paths[kind] + '.served.npz')), report[kind], paths[kind])
         for kind in MODELS}
  return out, report['rlcv_tf_imported']


def test_the_serving_process_never_imports_rlcv_tf(served):
  _, imported = served
  assert imported is False


@pytest.mark.parametrize('kind', MODELS)
def test_endpoints_match_the_keras_model(served, kind):
  cfg, vae, inputs, res, _, _ = served[0][kind]
  a, a2, x, z, noise = (inputs[k] for k in ('a', 'a2', 'x', 'z', 'noise'))
  # generate: z = mu_p + sigma_p * noise under the prior of a, decoded under a.
  mu_p, logvar_p = (np.asarray(t) for t in vae.prior_params(a))
  z_gen = mu_p + np.exp(0.5 * logvar_p) * noise
  np.testing.assert_allclose(res['generate_z'], z_gen, atol=ATOL)
  np.testing.assert_allclose(res['generate_images'], np.asarray(vae.decode(z_gen, a)[1]), atol=ATOL)
  np.testing.assert_allclose(res['serving_images'], res['generate_images'], atol=ATOL)
  mu, logvar = (np.asarray(t) for t in vae.encode(x, a))
  np.testing.assert_allclose(res['encode_mu'], mu, atol=ATOL)
  np.testing.assert_allclose(res['encode_logvar'], logvar, atol=ATOL)
  np.testing.assert_allclose(res['decode_images'], np.asarray(vae.decode(z, a)[1]), atol=ATOL)
  # edit: encode with the old vector, decode the posterior mean with the new one.
  np.testing.assert_allclose(res['edit_images'], np.asarray(vae.decode(mu, a2)[1]), atol=ATOL)
  np.testing.assert_allclose(res['edit_same'], np.asarray(vae.decode(mu, a)[1]), atol=ATOL)
  mu_new, _ = vae.encode(x, a2)
  assert np.abs(res['edit_images'] - np.asarray(vae.decode(mu_new, a2)[1])).max() > 1e-4, 'edit encoded with a2'
  assert np.abs(res['edit_images'] - res['edit_same']).max() > 1e-4, 'the new attributes changed nothing'
  # sample: shapes and range (its noise is drawn inside).
  assert res['sample_images'].shape == (BATCH,) + cfg.image_shape
  assert res['sample_z'].shape == (BATCH,) + cfg.latent_shape
  assert np.all(np.abs(res['generate_images']) <= 1.0)
  if cfg.attentive:
    m = np.asarray(vae.attention.mask())
    w = np.asarray(vae.attention.w.numpy(), np.float64)
    np.testing.assert_allclose(m, np.exp(w) / np.exp(w).sum(axis=0, keepdims=True), atol=1e-6)   # NumPy softmax_T
    np.testing.assert_allclose(res['attention'], m, atol=ATOL)


@pytest.mark.parametrize('kind', MODELS)
def test_signatures_names_config_and_attention(served, kind):
  cfg, _, _, _, report, path = served[0][kind]
  base = {'generate', 'sample', 'encode', 'decode', 'edit', 'attribute_names', 'config', 'serving_default'}
  expected = base | ({'attention'} if kind == 'acvaegan' else set())
  assert set(report['signatures']) == expected
  assert report['has_attention'] == (kind == 'acvaegan')
  assert report['serving_inputs'] == ['attributes', 'noise']
  assert report['attribute_spec'] == [None, cfg.num_attributes]
  assert report['names'] == list(cfg.attribute_names)
  assert report['config'] == json.loads(cfg.to_json())
  with open(os.path.join(path, 'assets', export.CONFIG_ASSET)) as f:
    assert json.load(f) == json.loads(cfg.to_json())
  assert presets.AcVAEConfig.from_dict(report['config']) == cfg


@pytest.mark.parametrize('kind', MODELS)
def test_a_wrong_attribute_count_is_refused(served, kind):
  refused = served[0][kind][4]['refused']
  assert refused == {name: True for name in refused} and len(refused) == 7


def test_export_refuses_a_config_of_another_width(tmp_path):
  cfg = presets.get_preset('tiny_cvae')
  vae, _ = networks.build_models(cfg)
  other = cfg.replace(num_attributes=4, attribute_names=cfg.attribute_names[:4])
  with pytest.raises(ValueError, match='num_attributes'):
    export.export_model(vae, other, str(tmp_path / 'x'))
