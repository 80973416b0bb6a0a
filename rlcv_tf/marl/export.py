"""SavedModel export of a trained Chapter 4 policy, for serving.

The endpoint `serve` (also the `serving_default` signature) takes a batch of stacked observations for N agents, uint8 [batch, N, H, W, C] (N may
differ from training: the weights are shared across agents), and returns
  actions [batch, N] (sampled, as the agents act in training), greedy_actions [batch, N],
  policy_logits [batch, N, A] and baseline [batch, N] (the value estimate).
"""

import keras
import tensorflow as tf


def export_policy(model: keras.Model, path: str, map_hwc) -> str:
  h, w, c = map_hwc
  archive = keras.export.ExportArchive()
  archive.track(model)

  def serve(observations):
    out = model(observations, training=False)
    logits = out['policy_logits']
    num_actions = tf.shape(logits)[-1]
    sampled = tf.random.categorical(tf.reshape(logits, [-1, num_actions]), 1, dtype=tf.int32)
    return {
        'actions': tf.reshape(sampled, tf.shape(logits)[:-1]),
        'greedy_actions': tf.argmax(logits, axis=-1, output_type=tf.int32),
        'policy_logits': logits,
        'baseline': out['baseline'],
    }

  archive.add_endpoint('serve', serve,
                       input_signature=[tf.TensorSpec([None, None, h, w, c], tf.uint8, name='observations')])
  archive.write_out(path, verbose=False)
  return path
