"""SavedModel export of the Chapter 6 attribute-conditioned generators (thesis Sec. 6.3-6.6; spec ch5_6 Part B3, §7).

`export_model(vae, cfg, path)` writes one SavedModel that plain TensorFlow serves without this package
(`tf.saved_model.load(path)`; nothing of rlcv_tf is imported). Every endpoint runs in inference mode (batch-norm moving
statistics, no dropout). Images are float32 in [-1, 1] (tanh decoder), attribute vectors float32 [B, N] with entries
+-1 in the order of `attribute_names()`; N is fixed in every signature, so a vector of another length is refused when
the endpoint is called (not silently broadcast or cut). Latents are [B, H, W, n_z] (4 x 4 x n_z; block t of the
recurrent models is channels [(t-1) n_z/T, t n_z/T)).

  generate(attributes [B, N], noise [B, H, W, n_z]) -> {'images', 'z'}      (`serving_default`)
        z = mu_p(a) + exp(logvar_p(a) / 2) * noise: the conditional prior p(z|a) with the caller's noise, so a fixed
        noise gives the same face under edited attribute vectors (the prior swap of Sec. 6.5).
  sample(attributes [B, N]) -> {'images', 'z'}: as generate with noise ~ N(0, I) drawn inside.
  encode(images [B, R, R, 3], attributes [B, N]) -> {'mu', 'logvar'} of q(z | x, a).
  decode(z [B, H, W, n_z], attributes [B, N]) -> {'images'}.
  edit(images, attributes, new_attributes) -> {'images'}: decodes the posterior mean of q(z | x, a) under the new
        attribute vector (a -> a'), the attribute swap of Sec. 6.5 / `tools.attribute_swap_grid`.
  attribute_names() -> {'names'}: string [N].
  config() -> {'config_json'}: the model's AcVAEConfig as JSON, read from the SavedModel asset `assets/config.json`.
  attention() -> {'mask'}: float32 [T, N], M = softmax over the steps of W (acVAE-GAN only; the Table 6.1 read-out is
        argmax over axis 0). Absent for cVAE(-GAN) and crVAE-GAN.
"""

import json
import os
import shutil
import tempfile

import keras
import tensorflow as tf

from rlcv_tf.acvae import presets

CONFIG_ASSET = 'config.json'


def _config_json(cfg: presets.AcVAEConfig) -> str:
  return json.dumps(json.loads(cfg.to_json()), indent=1, sort_keys=True)


def export_model(vae: keras.Model, cfg: presets.AcVAEConfig, path: str) -> str:
  """Writes `vae` (a built `networks.AttributeVAE` of `cfg`) as a SavedModel at `path` (module docstring); returns
  `path`.

  Args:
    vae: the generator (encode / prior_params / decode / attention, as `networks.AttributeVAE`), built.
    cfg: its configuration; N, the names and the shapes of the signatures come from it, and it is stored as the
      asset config.json.
    path: the SavedModel directory (overwritten).
  """
  n = int(cfg.num_attributes)
  if int(vae.num_attributes) != n:
    raise ValueError(f'cfg: num_attributes = {n} but the model takes {vae.num_attributes} attributes; pass the '
                     f'config the model was built with')
  names = [str(name) for name in cfg.attribute_names]
  latent_shape = tuple(int(d) for d in vae.latent_shape)
  image_shape = tuple(int(d) for d in vae.image_shape)
  archive = keras.export.ExportArchive()
  archive.track(vae)

  # The config as a SavedModel asset: copied into <path>/assets/config.json when written, read by `config()`.
  staging = tempfile.mkdtemp(prefix='acvae_export_')
  config_file = os.path.join(staging, CONFIG_ASSET)
  with open(config_file, 'w') as f:
    f.write(_config_json(cfg))
  asset = tf.saved_model.Asset(config_file)
  # ExportArchive has no public hook for file assets (`track` collects variables and lookup tables): the asset is
  # attached to the archive's root object, which is what tf.saved_model.save walks, so the file is copied into the
  # SavedModel and `config()` reads it from there after a reload.
  archive._tf_trackable.config_asset = asset  # pylint: disable=protected-access

  def prior_latent(attributes, noise):
    mu_p, logvar_p = vae.prior_params(attributes, training=False)
    return mu_p + tf.exp(0.5 * logvar_p) * noise

  def decode_images(z, attributes):
    return vae.decode(z, attributes, training=False)[1]

  def generate(attributes, noise):
    z = prior_latent(attributes, noise)
    return {'images': decode_images(z, attributes), 'z': z}

  def sample(attributes):
    mu_p, logvar_p = vae.prior_params(attributes, training=False)
    z = mu_p + tf.exp(0.5 * logvar_p) * tf.random.normal(tf.shape(mu_p))
    return {'images': decode_images(z, attributes), 'z': z}

  def encode(images, attributes):
    mu, logvar = vae.encode(images, attributes, training=False)
    return {'mu': mu, 'logvar': logvar}

  def decode(z, attributes):
    return {'images': decode_images(z, attributes)}

  def edit(images, attributes, new_attributes):
    mu, _ = vae.encode(images, attributes, training=False)
    return {'images': decode_images(mu, new_attributes)}

  def attribute_names():
    return {'names': tf.constant(names, tf.string)}

  def config():
    return {'config_json': tf.io.read_file(asset.asset_path)}

  def attr_spec(name):
    return tf.TensorSpec((None, n), tf.float32, name=name)

  images_spec = tf.TensorSpec((None,) + image_shape, tf.float32, name='images')
  latent_spec = tf.TensorSpec((None,) + latent_shape, tf.float32, name='z')
  # `generate` first: ExportArchive makes the first endpoint `serving_default`.
  archive.add_endpoint('generate', generate,
                       input_signature=[attr_spec('attributes'),
                                        tf.TensorSpec((None,) + latent_shape, tf.float32, name='noise')])
  archive.add_endpoint('sample', sample, input_signature=[attr_spec('attributes')])
  archive.add_endpoint('encode', encode, input_signature=[images_spec, attr_spec('attributes')])
  archive.add_endpoint('decode', decode, input_signature=[latent_spec, attr_spec('attributes')])
  archive.add_endpoint('edit', edit, input_signature=[images_spec, attr_spec('attributes'),
                                                      attr_spec('new_attributes')])
  archive.add_endpoint('attribute_names', attribute_names, input_signature=[])
  archive.add_endpoint('config', config, input_signature=[])
  if vae.attention is not None:
    layer = vae.attention

    def attention():
      return {'mask': layer.mask()}

    archive.add_endpoint('attention', attention, input_signature=[])
  try:
    archive.write_out(path, verbose=False)
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  return path
