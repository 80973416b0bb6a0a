"""Creating the learner's `tf.distribute` strategy from a name, once per run.

Everything that owns variables (model, optimizer, counters) is built inside `strategy.scope()`; training steps
run through `strategy.run`, and a batch is split across replicas along its batch axis.
"""

import tensorflow as tf

STRATEGY_NAMES = ('default', 'one_device', 'mirrored', 'tpu')


def make_strategy(name: str = 'default', tpu_address: str = '') -> tf.distribute.Strategy:
  """'default': TF's implicit single-device strategy. 'one_device': the first GPU if any, else the CPU.
  'mirrored': all local GPUs (synchronous data parallelism). 'tpu': a TPU system at `tpu_address`."""
  if name == 'default':
    return tf.distribute.get_strategy()
  if name == 'one_device':
    gpus = tf.config.list_logical_devices('GPU')
    return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else '/cpu:0')
  if name == 'mirrored':
    return tf.distribute.MirroredStrategy()
  if name == 'tpu':
    try:
      resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address)
      tf.config.experimental_connect_to_cluster(resolver)
      tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.NotFoundError) as e:
      raise RuntimeError(f'strategy=tpu: no TPU system could be reached ({e}). Run on a TPU VM or pass its '
                         'address; use --strategy=default on CPU/GPU machines.') from e
    return tf.distribute.TPUStrategy(resolver)
  raise ValueError(f'strategy: unknown value {name!r}; valid values: {", ".join(STRATEGY_NAMES)}')


def split_batch(strategy: tf.distribute.Strategy, batch, axis: int):
  """Splits every tensor of `batch` (a nest) evenly across replicas along `axis` (the batch axis)."""
  n = strategy.num_replicas_in_sync
  if n == 1:
    return batch

  def value_fn(ctx):
    idx = ctx.replica_id_in_sync_group
    return tf.nest.map_structure(lambda t: tf.split(t, n, axis=axis)[idx], batch)

  return strategy.experimental_distribute_values_from_function(value_fn)
