"""SavedModel export of a trained seed-002 model (FCVAE, dense VAE, Table 3.1 / 3.2 autoencoder) for serving.

Endpoints (concrete functions of one SavedModel, all in inference mode; `serving_default` is `generate`):
  generate(z)          float32 [batch, *latent_shape]            -> {'images': Bernoulli means in [0, 1]}
  sample(num)          int32 scalar                              -> {'images', 'z'}: decodes z ~ N(0, I) (VAEs) or
                       a draw from the Gaussian fitted to the training codes (AEs, `models._AE`)
  encode(images)       float32 [batch, H, W, C] in [0, 1]        -> VAEs {'mean', 'log_variance'} of q(z|x);
                                                                    AEs {'code'}
  reconstruct(images)                                            -> {'images'}: decodes the posterior mean / code
"""

import keras
import tensorflow as tf


def export_model(model: keras.Model, path: str) -> str:
  """Writes `model` (the `models.SeedModel` interface) as a SavedModel at `path`; returns path."""
  latent_shape = tuple(int(d) for d in model.latent_shape)
  image_shape = tuple(int(d) for d in model.image_shape)
  archive = keras.export.ExportArchive()
  archive.track(model)

  def generate(z):
    return {'images': model.decode_images(z, training=False)}

  def sample(num):
    if model.variational:
      z = tf.random.normal(tf.concat([[num], latent_shape], axis=0))
    else:
      z = model.sample_codes(num)
    return {'images': model.decode_images(z, training=False), 'z': z}

  def encode(images):
    if model.variational:
      mean, log_variance = model.encode(images, training=False)
      return {'mean': mean, 'log_variance': log_variance}
    return {'code': model.encode(images, training=False)}

  def reconstruct(images):
    z = model.encode(images, training=False)
    z = z[0] if model.variational else z
    return {'images': model.decode_images(z, training=False)}

  images_spec = tf.TensorSpec((None,) + image_shape, tf.float32, name='images')
  archive.add_endpoint('generate', generate,
                       input_signature=[tf.TensorSpec((None,) + latent_shape, tf.float32, name='z')])
  archive.add_endpoint('sample', sample, input_signature=[tf.TensorSpec([], tf.int32, name='num')])
  archive.add_endpoint('encode', encode, input_signature=[images_spec])
  archive.add_endpoint('reconstruct', reconstruct, input_signature=[images_spec])
  archive.write_out(path, verbose=False)
  return path
