"""SavedModel export of a trained A3C-family (or ACER-family) policy (issue 10 §5).

`export_policy(model, path)` writes `path` (a run writes `<logdir>/saved_model`) with two signatures:

  serve(observation [B, *obs_shape] float32, h [B, U], c [B, U], num_samples int32 scalar) ->
      map_action [B] int32        argmax pi with z = mu (NoisyNet: mean weights)
      vote_action [B] int32       majority of `num_samples` sampled activations' argmax, ties by mean probability
      sampled_action [B] int32    an action drawn from pi under one sampled activation (training's behaviour)
      policy_logits [B, A]        MAP logits
      value [B]                   MAP value V(o) (ACER: sum_a pi(a) Q(a); its MAP `q_values` [B, A] as well)
      h [B, U], c [B, U]          the LSTM state after this observation (feed it back with the next one)
  initial_state(batch_size int32 scalar) -> h [B, U], c [B, U]   zeros: the state at an episode start

`serve` is also `serving_default`. The encoder and LSTM run once per call; only the heads run `num_samples` times
(`evaluation.sampled_heads`). Noise is drawn inside the graph. HPA3C's previous sample z_{t-1} only feeds the
prior's KL (a training term), so it is not part of the served state. `num_samples` < 1 fails the call.
"""

import keras
import tensorflow as tf

from rlcv_tf.stochastic_ac import evaluation


def export_policy(model, path: str) -> str:
  """Writes the SavedModel of an `a3c.ActorCriticLSTM` to `path` (module docstring); returns `path`."""
  model.build_network()
  cfg = model.config
  units = cfg.lstm_units
  archive = keras.export.ExportArchive()
  archive.track(model)
  q_head = model.variant.q_head

  def serve(observation, h, c, num_samples):
    # The heads read num_samples only after the check (a bare assert in a tf.function may run after an op
    # that fails on zero samples with a less useful message).
    check = tf.debugging.assert_positive(num_samples, message='num_samples must be >= 1')
    with tf.control_dependencies([check]):
      num_samples = tf.identity(num_samples)
    state = {'h': h, 'c': c}
    core_h, new_state = model.core(observation, state)
    logits, value, extras = model.head(core_h, None, None, 'map')
    sample_logits, _, _ = evaluation.sampled_heads(model, core_h, num_samples)
    sampled = tf.random.categorical(sample_logits[0], 1, dtype=tf.int32)[:, 0]
    out = {
        'map_action': tf.argmax(logits, axis=-1, output_type=tf.int32),
        'vote_action': evaluation.vote_actions(sample_logits),
        'sampled_action': sampled,
        'policy_logits': logits,
        'value': value,
        'h': new_state['h'],
        'c': new_state['c'],
    }
    if q_head:
      out['q_values'] = extras['q_values']
    return out

  def initial_state(batch_size):
    zeros = tf.zeros(tf.stack([batch_size, units]), tf.float32)
    return {'h': zeros, 'c': zeros}

  archive.add_endpoint('serve', serve, input_signature=[
      tf.TensorSpec((None,) + tuple(cfg.observation_shape), tf.float32, name='observation'),
      tf.TensorSpec((None, units), tf.float32, name='h'),
      tf.TensorSpec((None, units), tf.float32, name='c'),
      tf.TensorSpec((), tf.int32, name='num_samples'),
  ])
  archive.add_endpoint('initial_state', initial_state,
                       input_signature=[tf.TensorSpec((), tf.int32, name='batch_size')])
  archive.write_out(path, verbose=False)
  return path
