"""SavedModel export of trained Chapter 5 models (Stage 1: generator and encoder; Stage 1 + 2), for serving.

Endpoints (concrete functions of one SavedModel; `serving_default` is `generate`):
  generate(z)      float32 [batch, 4, 4, n_z] latent            -> {'images': [batch, R, R, C]}
                   (images in [-1, 1] for RGB models, Bernoulli means in [0, 1] for MNIST models)
  sample(num)      int32 scalar                                  -> {'images', 'z'}: decodes z ~ N(0, I)
  encode(images)   float32 [batch, R, R, C] in the training range -> {'mean', 'log_variance'} of q(z|x)
  reconstruct(images)                                            -> {'images'}: decodes the posterior mean
  sample_expost(num)  (when exported with an ex-post Gaussian)   -> {'images', 'z'}: decodes z from the Gaussian
                   fitted to the aggregate posterior after training (expost_prior.py; not the thesis's sampler)
Everything runs in inference mode (batch-norm moving statistics, no dropout).

With `condition_shape` (a conditional model, Chapter 6; never for the Chapter 5 models) every endpoint also takes a
condition c [batch, *condition_shape] (e.g. attribute vectors):
  generate(condition, noise)   noise [batch, 4, 4, n_z] -> {'images', 'z'}: z = mu_p(c) + sigma_p(c) * noise
                               (`serving_default`)
  decode(z, condition)         -> {'images'}
  sample(condition)            -> {'images', 'z'}: z ~ p(z | c)
  encode(images, condition)    -> {'mean', 'log_variance'} of q(z | x, c)
  reconstruct(images, condition) -> {'images'}: decodes the posterior mean
The model then offers encode(x, condition=, training=), decode(z, condition=, training=) and a `prior` with
params(condition) -> (mu_p, logvar_p) and sample(condition=) (`networks.CausalLSTMPrior` and the like).
"""

from typing import Optional, Sequence

import keras
import tensorflow as tf


def export_vae(vae: keras.Model, path: str, condition_shape: Optional[Sequence[int]] = None,
               condition_name: str = 'condition', expost=None) -> str:
  """Writes `vae` (the ImageVAE interface: encode, decode, latent_shape, image_shape) as a SavedModel at `path`.

  Args:
    vae: the model.
    path: the SavedModel directory.
    condition_shape: the shape of one condition (e.g. (N,) for N attributes) for a conditional model, whose
      endpoints then take it (see the module docstring); None (Chapter 5): the unconditional endpoints.
    condition_name: the name of the condition input in the signatures (e.g. 'attributes').
    expost: an `expost_prior.ExPostGaussian` (unconditional models only): adds the `sample_expost` endpoint.
  """
  if condition_shape is not None:
    if expost is not None:
      raise ValueError('export_vae: an ex-post Gaussian is for unconditional models only')
    return _export_conditional_vae(vae, path, tuple(int(d) for d in condition_shape), condition_name)
  latent_shape = tuple(int(d) for d in vae.latent_shape)
  image_shape = tuple(int(d) for d in vae.image_shape)
  prior = getattr(vae, 'prior', None)
  archive = keras.export.ExportArchive()
  archive.track(vae)

  def generate(z):
    return {'images': vae.decode(z, training=False)}

  def sample(num):
    if prior is not None:
      z = prior.sample(batch_size=num)
    else:
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
  if expost is not None:
    archive.track(expost)

    def sample_expost(num):
      z = expost.sample(num)
      return {'images': vae.decode(z, training=False), 'z': z}

    archive.add_endpoint('sample_expost', sample_expost, input_signature=[tf.TensorSpec([], tf.int32, name='num')])
  archive.write_out(path, verbose=False)
  return path


def _export_conditional_vae(vae, path, condition_shape, condition_name) -> str:
  latent_shape = tuple(int(d) for d in vae.latent_shape)
  image_shape = tuple(int(d) for d in vae.image_shape)
  archive = keras.export.ExportArchive()
  archive.track(vae)
  prior = vae.prior
  tracked = {id(v) for v in vae.variables}
  if isinstance(prior, keras.layers.Layer) and any(id(v) not in tracked for v in prior.variables):
    archive.track(prior)         # a prior kept outside the model

  def decode(z, condition):
    return {'images': vae.decode(z, condition=condition, training=False)}

  def generate(condition, noise):
    mu_p, logvar_p = prior.params(condition)
    z = mu_p + tf.exp(0.5 * logvar_p) * noise
    return {'images': vae.decode(z, condition=condition, training=False), 'z': z}

  def sample(condition):
    mu_p, logvar_p = prior.params(condition)
    z = mu_p + tf.exp(0.5 * logvar_p) * tf.random.normal(tf.shape(mu_p))
    return {'images': vae.decode(z, condition=condition, training=False), 'z': z}

  def encode(images, condition):
    mean, log_variance = vae.encode(images, condition=condition, training=False)
    return {'mean': mean, 'log_variance': log_variance}

  def reconstruct(images, condition):
    mean, _ = vae.encode(images, condition=condition, training=False)
    return {'images': vae.decode(mean, condition=condition, training=False)}

  cond = tf.TensorSpec((None,) + condition_shape, tf.float32, name=condition_name)
  latent = tf.TensorSpec((None,) + latent_shape, tf.float32, name='z')
  images = tf.TensorSpec((None,) + image_shape, tf.float32, name='images')
  archive.add_endpoint('generate', generate,
                       input_signature=[cond, tf.TensorSpec((None,) + latent_shape, tf.float32, name='noise')])
  archive.add_endpoint('decode', decode, input_signature=[latent, cond])
  archive.add_endpoint('sample', sample, input_signature=[cond])
  archive.add_endpoint('encode', encode, input_signature=[images, cond])
  archive.add_endpoint('reconstruct', reconstruct, input_signature=[images, cond])
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
