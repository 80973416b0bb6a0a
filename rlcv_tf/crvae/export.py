"""SavedModel export of trained Chapter 5 models (Stage 1: generator and encoder; Stage 1 + 2), for serving.

Endpoints (concrete functions of one SavedModel; `serving_default` is `generate`):
  generate(z)      float32 [batch, 4, 4, n_z] latent            -> {'images': [batch, R, R, C]}
                   (images in [-1, 1] for RGB models, Bernoulli means in [0, 1] for MNIST models)
  sample(num)      int32 scalar                                  -> {'images', 'z'}: decodes z ~ N(0, I)
  encode(images)   float32 [batch, R, R, C] in the training range -> {'mean', 'log_variance'} of q(z|x)
  reconstruct(images)                                            -> {'images'}: decodes the posterior mean
Everything runs in inference mode (batch-norm moving statistics, no dropout).
"""

import keras
import tensorflow as tf


def export_vae(vae: keras.Model, path: str) -> str:
  """Writes `vae` (the ImageVAE interface: encode, decode, latent_shape) as a SavedModel at `path`."""
  latent_shape = tuple(int(d) for d in vae.latent_shape)
  image_shape = tuple(int(d) for d in vae.image_shape)
  archive = keras.export.ExportArchive()
  archive.track(vae)

  def generate(z):
    return {'images': vae.decode(z, training=False)}

  def sample(num):
    z = tf.random.normal(tf.concat([[num], latent_shape], axis=0))
    return {'images': vae.decode(z, training=False), 'z': z}

  def encode(images):
    mean, log_variance = vae.encode(images, training=False)
    return {'mean': mean, 'log_variance': log_variance}

  def reconstruct(images):
    mean, _ = vae.encode(images, training=False)
    return {'images': vae.decode(mean, training=False)}

  archive.add_endpoint('generate', generate,
                       input_signature=[tf.TensorSpec((None,) + latent_shape, tf.float32, name='z')])
  archive.add_endpoint('sample', sample, input_signature=[tf.TensorSpec([], tf.int32, name='num')])
  archive.add_endpoint('encode', encode,
                       input_signature=[tf.TensorSpec((None,) + image_shape, tf.float32, name='images')])
  archive.add_endpoint('reconstruct', reconstruct,
                       input_signature=[tf.TensorSpec((None,) + image_shape, tf.float32, name='images')])
  archive.write_out(path, verbose=False)
  return path



def export_two_stage(vae: keras.Model, refiner: keras.Model, path: str) -> str:
  """Writes Stage 1 + Stage 2 as one SavedModel (all endpoints in inference mode; `serving_default` = generate):

    generate(z)      [batch, 4, 4, n_z]     -> {'images': G2(Dec(z)) at the high resolution, 'stage1_images'}
    sample(num)      int32 scalar           -> {'images', 'stage1_images', 'z'}, z ~ N(0, I)
    refine(images)   [batch, r, r, C] Stage-1-resolution images in [-1, 1] -> {'images'}
  """
  latent_shape = tuple(int(d) for d in vae.latent_shape)
  low_shape = tuple(int(d) for d in vae.image_shape)
  archive = keras.export.ExportArchive()
  archive.track(vae)
  archive.track(refiner)

  def generate(z):
    low = vae.decode(z, training=False)
    return {'images': refiner(low, training=False), 'stage1_images': low}

  def sample(num):
    z = tf.random.normal(tf.concat([[num], latent_shape], axis=0))
    out = generate(z)
    out['z'] = z
    return out

  def refine(images):
    return {'images': refiner(images, training=False)}

  archive.add_endpoint('generate', generate,
                       input_signature=[tf.TensorSpec((None,) + latent_shape, tf.float32, name='z')])
  archive.add_endpoint('sample', sample, input_signature=[tf.TensorSpec([], tf.int32, name='num')])
  archive.add_endpoint('refine', refine,
                       input_signature=[tf.TensorSpec((None,) + low_shape, tf.float32, name='images')])
  archive.write_out(path, verbose=False)
  return path
