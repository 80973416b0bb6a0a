"""SavedModel export of a trained DDPG-family actor (issue 10 §5: "DDPG: stacked state in, MAP action out").

`export_ddpg(actor, path, observation_shape, low, high)` writes `path` (a run writes `<logdir>/saved_model`) with
the signature `serve` (also `serving_default`):

  serve(observation [B, *observation_shape] float32: the stacked states, e.g. [B, 24, 4] on BipedalWalker) ->
      action [B, D]              the MAP actor's action mu(s) in the environment's units (scaled from tanh's
                                 [-1, 1] to [low, high]; SDDPG with z = mu, PN-DDPG unperturbed)
      action_normalized [B, D]   mu(s) in [-1, 1], as the critic sees it

The ACER family's SavedModel is the A3C family's (`export.export_policy`, with `q_values`).
"""

import keras
import numpy as np
import tensorflow as tf


def export_ddpg(actor, path: str, observation_shape, low, high) -> str:
  """Writes the SavedModel of a `ddpg.DDPGActor` to `path` (module docstring); returns `path`."""
  actor.build_network()
  low = np.asarray(low, np.float32).reshape(-1)
  high = np.asarray(high, np.float32).reshape(-1)
  dim = actor.config.action_dim
  if low.shape != (dim,) or high.shape != (dim,) or not np.all(low < high):
    raise ValueError(f'action bounds must be two vectors of {dim} numbers with low < high, got {low}, {high}')
  archive = keras.export.ExportArchive()
  archive.track(actor)
  low_t, high_t = tf.constant(low), tf.constant(high)

  def serve(observation):
    normalized = actor(observation, mode='map')
    return {'action': low_t + (normalized + 1.0) * 0.5 * (high_t - low_t), 'action_normalized': normalized}

  archive.add_endpoint('serve', serve, input_signature=[
      tf.TensorSpec((None,) + tuple(int(d) for d in observation_shape), tf.float32, name='observation')])
  archive.write_out(path, verbose=False)
  return path
