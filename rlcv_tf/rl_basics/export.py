"""SavedModels of the seeds 003-004 agents (issue 15 Sec. 5).

DQN (`export_q_network`): `q_values(observation)` -> {'q' [B, A], 'greedy_action' [B]} (serving_default) and
`act(observation, epsilon)` -> {'action' [B]}: epsilon-greedy (uniform random action with probability epsilon).
Observations are what the network was trained on, batch first: uint8 [B, 84, 84, 4] frames or float32 [B, D, 1]
state vectors.
"""

import keras
import tensorflow as tf


def export_q_network(model: keras.Model, path: str, observation_shape, num_actions: int) -> str:
  archive = keras.export.ExportArchive()
  archive.track(model)
  dtype = tf.uint8 if len(observation_shape) == 3 and observation_shape[0] > 16 else tf.float32
  spec = tf.TensorSpec((None,) + tuple(observation_shape), dtype, name='observation')

  def q_values(observation):
    q = model(observation)
    return {'q': q, 'greedy_action': tf.argmax(q, axis=-1, output_type=tf.int32)}

  def act(observation, epsilon):
    q = model(observation)
    greedy = tf.argmax(q, axis=-1, output_type=tf.int32)
    batch = tf.shape(q)[0]
    explore = tf.random.uniform([batch]) < epsilon
    random = tf.random.uniform([batch], 0, num_actions, dtype=tf.int32)
    return {'action': tf.where(explore, random, greedy)}

  archive.add_endpoint('q_values', q_values, input_signature=[spec])
  archive.add_endpoint('act', act, input_signature=[spec, tf.TensorSpec((), tf.float32, name='epsilon')])
  archive.write_out(path, verbose=False)
  return path
