"""SavedModel export of seed-001 models (issue 14 Sec. 4).

The PPO policy (`export_policy`; `serving_default` is `serve`):
  serve(frames uint8 [B, S, S, n], the frame stack oldest first) ->
      action [B] int32          drawn from pi (the behaviour policy; seeded by the graph's random state)
      greedy_action [B] int32   argmax pi
      logits [B, A]             policy logits
      value [B]                 V(s)
  and, for joint runs (the decoder was trained too):
  reconstruct(frames uint8 [B, S, S, n]) -> {'images' [B, S, S, n]}: Bernoulli means decoded from each frame's mu.

The pre-trained VAE (`export_vae`; `serving_default` is `generate`), frames float32 in [0, 1] [B, S, S, 1]:
  generate(z [B, d]) -> {'images'};  sample(num int32) -> {'images', 'z'} with z ~ N(0, I);
  encode(images) -> {'mean', 'log_variance'};  reconstruct(images) -> {'images'} (decoded from the mean).
"""

import keras
import tensorflow as tf

from rlcv_tf.vae_pg import policy as policy_lib


def export_policy(model: policy_lib.ActorCritic, path: str, image_size: int, decoder=None) -> str:
  """Writes the policy SavedModel (module docstring) to `path`; returns `path`."""
  archive = keras.export.ExportArchive()
  archive.track(model)
  n = model.num_frames

  def serve(frames):
    logits, value, _ = model(frames)
    return {'action': tf.random.categorical(logits, 1, dtype=tf.int32)[:, 0],
            'greedy_action': tf.argmax(logits, axis=-1, output_type=tf.int32), 'logits': logits, 'value': value}

  spec = tf.TensorSpec((None, image_size, image_size, n), tf.uint8, name='frames')
  archive.add_endpoint('serve', serve, input_signature=[spec])
  if decoder is not None:
    archive.track(decoder)

    def reconstruct(frames):
      x = policy_lib.frames_to_units(frames)
      mu, _ = model.encoder(x)
      images = tf.sigmoid(decoder(mu))
      images = tf.reshape(images, tf.stack([-1, n, image_size, image_size]))
      return {'images': tf.transpose(images, (0, 2, 3, 1))}

    archive.add_endpoint('reconstruct', reconstruct, input_signature=[spec])
  archive.write_out(path, verbose=False)
  return path


def export_vae(vae, path: str) -> str:
  """Writes the pre-trained VAE SavedModel (module docstring) to `path`; returns `path`."""
  archive = keras.export.ExportArchive()
  archive.track(vae)
  s, d = vae.image_size, vae.latent_dim

  def generate(z):
    return {'images': tf.sigmoid(vae.decoder(z))}

  def sample(num):
    z = tf.random.normal(tf.stack([num, d]))
    return {'images': tf.sigmoid(vae.decoder(z)), 'z': z}

  def encode(images):
    mean, log_variance = vae.encoder(images)
    return {'mean': mean, 'log_variance': log_variance}

  def reconstruct(images):
    mean, _ = vae.encoder(images)
    return {'images': tf.sigmoid(vae.decoder(mean))}

  archive.add_endpoint('generate', generate, input_signature=[tf.TensorSpec((None, d), tf.float32, name='z')])
  archive.add_endpoint('sample', sample, input_signature=[tf.TensorSpec([], tf.int32, name='num')])
  image_spec = tf.TensorSpec((None, s, s, 1), tf.float32, name='images')
  archive.add_endpoint('encode', encode, input_signature=[image_spec])
  archive.add_endpoint('reconstruct', reconstruct, input_signature=[image_spec])
  archive.write_out(path, verbose=False)
  return path
