"""SavedModel export of a trained Chapter 4 policy, for serving.

The endpoint `serve` (also the `serving_default` signature) takes a batch of stacked observations for N agents,
uint8 [batch, N, H, W, C] (N may differ from training: the weights are shared across agents), and returns
  actions [batch, N] (sampled, as the agents act in training), greedy_actions [batch, N],
  policy_logits [batch, N, A] and baseline [batch, N] (the value estimate),
  and, for models with the auxiliary heads, pred_row [batch, N, H] and pred_col [batch, N, W] (logits: softmax for
  the agent-centric objective, per-bin sigmoid for observe-all).
Works for every model kind (CNN, ACNN, PrCNN, PrACNN): only the output dict of `model(observations)` is used.
The export never computes shared planes once (`networks.py`, `shared_channels`): a serving client may send agents
from different games or steps in one call, and the answer must not depend on that. The served function computes
every agent's first conv in full (the same weights; a few percent slower than training's shared path).
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
        **{k: out[k] for k in ('pred_row', 'pred_col') if k in out},
    }

  archive.add_endpoint('serve', serve,
                       input_signature=[tf.TensorSpec([None, None, h, w, c], tf.uint8, name='observations')])
  # The serving graph is traced while writing: trace it with the per-agent first conv (module docstring).
  shared = getattr(model, 'shared_channels', ())
  try:
    if shared:
      model.shared_channels = ()
    archive.write_out(path, verbose=False)
  finally:
    if shared:
      model.shared_channels = shared
  return path
