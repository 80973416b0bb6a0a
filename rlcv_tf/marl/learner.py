"""The Chapter 4 learner: one shared network for all agents, batched central inference, V-trace updates.

Owns every variable (network, Adam, frame counter) inside the `tf.distribute` strategy's scope, the
checkpoint that saves them, and two compiled functions:
  * `infer(observations uint8 [b, N, H, W, C])` -> sampled actions [b, N], logits [b, N, A], values [b, N];
  * `train(batch of [T+1, B, ...] unrolls)` -> loss and V-trace statistics, after one Adam step.

With `aux` = predict / observe_all the network gets the row/column heads and the loss adds c_aux times the
auxiliary objective (Eq. 4.4 / Sec. 4.4.5; spec §3.3). Progressive models (prcnn, pracnn) load their frozen
column from `progressive_from` here; `init_from` weights are copied by `initialise_from` (the caller does it only
for a fresh run, so a resumed run keeps its own weights).

`agent_groups` (mixed self-play, App. 4.C) splits the agent axis into teams, e.g. (4, 2): the 4 home agents and
the 2 right-team agents driven by the same policy. Each group is a separate pass of the network, so attention
stays within a team (spec §8 row 4), and the loss covers every group: the opponents' trajectories produce policy
gradients like the home team's.
"""

import contextlib
import os
from typing import Dict, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from rlcv_tf.core import distribute
from rlcv_tf.marl import config as config_lib
from rlcv_tf.marl import learning
from rlcv_tf.marl import networks
from rlcv_tf.marl import pretraining
from rlcv_tf.marl import progressive

tfd = tfp.distributions


def activation_floats_per_image(observation_hwc, stack_channels) -> int:
  """Float32 activations the torso keeps for the backward pass, per agent image (an analytic count: the input
  cast, each stack's entry conv and pool outputs, and five tensors per residual block). 72x96x16 with the
  default stacks: ~0.8M floats (3.2 MB)."""
  h, w, c = observation_hwc
  total = h * w * c
  for channels, blocks in stack_channels:
    total += h * w * channels                      # entry conv, before the pool
    h, w = (h + 1) // 2, (w + 1) // 2              # 3x3 max-pool, stride 2, 'same'
    total += h * w * channels * (1 + 5 * blocks)   # pool output; relu, conv, relu, conv, add per block
  return int(total)


def estimate_update_bytes(cfg: config_lib.MarlConfig, observation_shape) -> int:
  """Rough peak activation memory of one update (one micro-batch alive at a time), forward plus backward."""
  n = observation_shape[0]
  images = (cfg.unroll_length + 1) * (cfg.batch_size // cfg.micro_batches) * n
  return 2 * 4 * images * activation_floats_per_image(tuple(observation_shape[1:]), cfg.stack_channels)


@contextlib.contextmanager
def _dtype_policy(name: Optional[str]):
  """Builds the layers made inside with Keras's `name` dtype policy (None: unchanged). `mixed_bfloat16` keeps
  the variables in float32 (checkpoints are interchangeable with float32 runs) and computes in bfloat16."""
  if name is None:
    yield
    return
  previous = keras.config.dtype_policy()
  keras.config.set_dtype_policy(name)
  try:
    yield
  finally:
    keras.config.set_dtype_policy(previous)


def _heads_in_float32(model):
  """The policy, value and prediction heads compute in float32 whatever the torso's precision: logits, values
  and so the V-trace targets and losses are float32 (--precision=bfloat16 affects the torso and attention)."""
  for name in ('policy_head', 'value_head', 'row_head', 'col_head'):
    layer = getattr(model, name, None)
    if layer is not None:
      layer.dtype_policy = 'float32'


def _avoid_remapper_failure(strategy: tf.distribute.Strategy):
  """Turns grappler's remapper pass off when the learner runs on CPUs only.

  On CPU (oneDNN) the remapper tries to fuse each residual block's conv + bias + add (+ the next block's relu)
  and fails on the torso's chained residual adds ("remapper failed: ... fanout 'torso/add_1' exist for missing
  node 'torso/add'", TF 2.21): the pass is then dropped for the inference graph anyway, and an error line is
  printed. Measured on the 2-core CPU machine (ACNN, 72x96, N=5): inference at batch 16 is unchanged and a
  4x32 training step is faster without it (1.6-1.8 s vs 2.5-2.7 s). GPUs and TPUs keep the pass.
  """
  if not tf.config.list_physical_devices('GPU') and not isinstance(strategy, tf.distribute.TPUStrategy):
    tf.config.optimizer.set_experimental_options({'remapping': False})


class Learner:

  def __init__(self, cfg: config_lib.MarlConfig, observation_shape: Tuple[int, int, int, int], num_actions: int,
               strategy: tf.distribute.Strategy = None, agent_groups: Optional[Sequence[int]] = None,
               shared_channels: Sequence[int] = ()):
    self.config = cfg
    self.observation_shape = tuple(observation_shape)  # (N, H, W, C)
    self.num_actions = num_actions
    self.agent_groups = tuple(int(g) for g in agent_groups) if agent_groups else None
    if self.agent_groups and (sum(self.agent_groups) != self.observation_shape[0] or min(self.agent_groups) < 1):
      raise ValueError(f'agent_groups {self.agent_groups} must be positive and add up to the '
                       f'{self.observation_shape[0]} agents of the observations')
    self.strategy = strategy or distribute.make_strategy(cfg.strategy, tpu_address=cfg.tpu)
    _avoid_remapper_failure(self.strategy)
    if cfg.batch_size % (self.strategy.num_replicas_in_sync * cfg.micro_batches):
      raise ValueError(f'batch_size: {cfg.batch_size} must be divisible by the {self.strategy.num_replicas_in_sync} '
                       f'replicas of the distribution strategy times micro_batches={cfg.micro_batches}')
    keras.utils.set_random_seed(cfg.seed)
    with self.strategy.scope(), _dtype_policy('mixed_bfloat16' if cfg.precision == 'bfloat16' else None):
      kw = dict(stack_channels=cfg.stack_channels, feature_dim=cfg.feature_dim, num_heads=cfg.num_heads,
                prediction_heads=cfg.aux != 'none', shared_channels=tuple(shared_channels))
      if cfg.model in config_lib.PROGRESSIVE_MODELS:
        frozen, self.pretrained_meta = pretraining.load_pretrained(
            cfg.progressive_from, self.observation_shape, kind=cfg.base_kind, flag='progressive_from')
        self.model = progressive.build_progressive_network(frozen, cfg.base_kind, num_actions,
                                                           self.observation_shape, **kw)
      else:
        self.model = networks.build_network(cfg.model, num_actions, self.observation_shape, **kw)
      _heads_in_float32(self.model)
      self.optimizer = keras.optimizers.Adam(learning_rate=cfg.learning_rate, epsilon=cfg.adam_epsilon)
      # Create Adam's slots now, so a checkpoint restores them before the first update.
      self.optimizer.build(self.model.trainable_variables)
      self.frames = tf.Variable(0, dtype=tf.int64, trainable=False, name='frames')
      self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name='updates')
    self.checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer, frames=self.frames,
                                          updates=self.updates)
    self._sample_seed = tf.random.Generator.from_seed(cfg.seed)
    n, h, w, c = self.observation_shape
    self.infer_traces = 0    # how often the inference function was traced (each trace compiles a new graph)
    # XLA and TPUs need static shapes: inference batches are then padded up to a few bucket sizes, one trace
    # each. Otherwise one trace with a dynamic batch size serves every batch.
    self._static_inference = cfg.jit_compile or isinstance(self.strategy, tf.distribute.TPUStrategy)
    if self._static_inference:
      self._infer_fn = tf.function(self._infer, jit_compile=cfg.jit_compile)
    else:
      self._infer_fn = tf.function(self._infer, input_signature=[tf.TensorSpec([None, n, h, w, c], tf.uint8)])
    self._gradients_fn = tf.function(self._gradients, jit_compile=True) if cfg.jit_compile else self._gradients
    self._train = tf.function(self._train_step)

  @staticmethod
  def inference_bucket(batch: int) -> int:
    """The padded size of an inference batch under static shapes: the next power of two (1, 2, 4, 8, ...)."""
    return 1 << max(0, int(batch) - 1).bit_length()

  def infer(self, observations):
    """Sampled actions [b, N], logits [b, N, A] and values [b, N] for uint8 observations [b, N, H, W, C]."""
    if not self._static_inference:
      return self._infer_fn(observations)
    b = int(observations.shape[0])
    size = self.inference_bucket(b)
    padded = observations
    if size != b:
      padded = tf.concat([observations, tf.zeros((size - b,) + tuple(observations.shape[1:]), tf.uint8)], 0)
    if isinstance(self.strategy, tf.distribute.TPUStrategy):
      out = self.strategy.experimental_local_results(self.strategy.run(self._infer_fn, args=(padded,)))[0]
    else:
      out = self._infer_fn(tf.convert_to_tensor(padded, tf.uint8))
    return tuple(t[:b] for t in out)

  def reseed_sampler(self, seed: int):
    """Restarts the action sampler's random stream from `seed` (each training session derives its own)."""
    self._sample_seed.reset_from_seed(seed)

  # ------------------------------------------------------------------------------------------ forward
  def _forward(self, observations, training: bool):
    """The network on [B, N, H, W, C], one pass per agent group; outputs concatenated over the agent axis."""
    if not self.agent_groups or len(self.agent_groups) == 1:
      return self.model(observations, training=training)
    outs, start = [], 0
    for size in self.agent_groups:
      outs.append(self.model(observations[:, start:start + size], training=training))
      start += size
    # Attention weights have a per-group shape [B, heads, n, n] and are not needed by inference or the loss.
    return {k: tf.concat([o[k] for o in outs], axis=1) for k in outs[0] if k != 'attention'}

  # ------------------------------------------------------------------------------------------ inference
  def _infer(self, observations):
    self.infer_traces += 1   # Python side effect: runs when tracing, not when the graph runs
    out = self._forward(observations, training=False)
    logits = out['policy_logits']
    flat = tf.reshape(logits, [-1, self.num_actions])
    # int32 seeds: XLA has the stateless categorical kernel for int32 seeds only.
    seeds = tf.cast(self._sample_seed.make_seeds(1)[:, 0] % (2**31 - 1), tf.int32)
    actions = tf.random.stateless_categorical(flat, 1, seed=seeds, dtype=tf.int32)
    actions = tf.reshape(actions, tf.shape(logits)[:-1])
    return actions, logits, out['baseline']

  # ------------------------------------------------------------------------------------------- training
  def _loss(self, batch, vtrace_weight=1.0, aux_weight=1.0):
    """Loss and logs of one (micro-)batch. The weights scale its V-trace and auxiliary terms (micro-batching:
    the micro-batch's share of the valid entries, so the weighted sum over micro-batches is the full batch's
    masked mean)."""
    cfg = self.config
    obs = batch['observation']                               # [T+1, B, N, H, W, C]
    shape = tf.shape(obs)
    t1, b = shape[0], shape[1]
    # Fold time into the batch: attention still only mixes the N agents of one (t, b) team.
    out = self._forward(tf.reshape(obs, tf.concat([[t1 * b], shape[2:]], 0)), training=True)
    logits = tf.reshape(out['policy_logits'], [t1, b, -1, self.num_actions])
    baseline = tf.reshape(out['baseline'], [t1, b, -1])
    loss, logs = learning.vtrace_loss(
        logits, baseline, batch['action'], batch['behaviour_logits'], batch['reward'], batch['done'],
        discounting=cfg.discounting, baseline_cost=cfg.baseline_cost, entropy_cost=cfg.entropy_cost,
        lambda_=cfg.lambda_, clip_rho_threshold=cfg.clip_rho_threshold,
        clip_pg_rho_threshold=cfg.clip_pg_rho_threshold, clip_c_threshold=cfg.clip_c_threshold,
        discount=batch['discount'], truncated=batch['truncated'])
    loss = vtrace_weight * loss
    logs = {k: vtrace_weight * v for k, v in logs.items()}
    if cfg.aux != 'none':
      h, w = self.observation_shape[1:3]
      aux_loss, aux_logs = learning.unroll_aux_loss(
          cfg.aux, tf.reshape(out['pred_row'], [t1, b, -1, h]), tf.reshape(out['pred_col'], [t1, b, -1, w]),
          obs, batch['agent_positions'], batch['done'], include_opponents=cfg.observe_all_opponents,
          max_jump=cfg.aux_max_jump_px)
      loss = loss + cfg.aux_coef * aux_weight * aux_loss
      logs.update({k: aux_weight * v for k, v in aux_logs.items()})
      logs['loss/aux'] = cfg.aux_coef * aux_weight * aux_loss   # weighted, like loss/baseline and loss/entropy
      logs['aux/objective'] = aux_weight * aux_loss             # unweighted NLL (predict) or BCE (observe_all)
      logs['loss/total'] = loss
    return loss, logs

  def _gradients(self, batch, vtrace_weight, aux_weight):
    variables = self.model.trainable_variables
    with tf.GradientTape() as tape:
      loss, logs = self._loss(batch, vtrace_weight, aux_weight)
    return tape.gradient(loss, variables), logs

  def _replica_step(self, batch):
    """One replica's share of the update. Its batch carries `_weights_vtrace` / `_weights_aux` [1, m]: each of its
    m micro-batches' share of the valid entries of the WHOLE batch (all replicas), so the gradients summed over
    micro-batches and replicas (the optimizer all-reduces by sum) are exactly the whole batch's masked mean."""
    cfg = self.config
    batch = dict(batch)
    vtrace_w = batch.pop('_weights_vtrace')[0]
    aux_w = batch.pop('_weights_aux')[0]
    variables = self.model.trainable_variables
    m = cfg.micro_batches
    if m == 1:
      grads, logs = self._gradients_fn(batch, vtrace_w[0], aux_w[0])
    else:
      # Gradient accumulation: the same update as the whole batch, with the activations of one micro-batch of
      # B/m unrolls alive at a time (a tf.range loop runs its iterations one after another).
      size = tf.shape(batch['done'])[1] // m
      part = lambda i: tf.nest.map_structure(lambda t: t[:, i * size:(i + 1) * size], batch)
      grads, logs = self._gradients_fn(part(0), vtrace_w[0], aux_w[0])
      for i in tf.range(1, m):
        g, l = self._gradients_fn(part(i), vtrace_w[i], aux_w[i])
        grads = [a + b for a, b in zip(grads, g)]
        logs = {k: logs[k] + l[k] for k in logs}
    logs['optimizer/grad_norm'] = tf.linalg.global_norm(grads)   # of this replica's share
    self.optimizer.apply_gradients(zip(grads, variables))
    return logs

  def _train_step(self, batch):
    per_replica = self.strategy.run(self._replica_step, args=(batch,))
    # The losses and statistics are weighted shares: their sum over replicas is the whole batch's value.
    logs = {k: self.strategy.reduce(tf.distribute.ReduceOp.MEAN if k == 'optimizer/grad_norm' else
                                    tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in per_replica.items()}
    # A frame is one environment step (not times N agents): B * T per update (spec ch4 §8, row 6).
    self.frames.assign_add(self.config.frames_per_update)
    self.updates.assign_add(1)
    return logs

  def initialise_from(self, path: str) -> str:
    """Copies a pre-trained model's torso and attention (and its heads, if the objectives match) into the
    network (spec §2.8 "init"); policy and value heads keep their fresh initialisation. Returns a summary line."""
    with self.strategy.scope():
      source, meta = pretraining.load_pretrained(path, self.observation_shape, kind=self.config.model,
                                                 flag='init_from')
    copy_heads = self.config.aux != 'none' and meta['objective'] == self.config.aux
    parts = pretraining.copy_pretrained(source, self.model, copy_heads=copy_heads,
                                        expect=dict(stack_channels=self.config.stack_channels,
                                                    feature_dim=self.config.feature_dim,
                                                    num_heads=self.config.num_heads))
    return f'initialised {", ".join(parts)} from {meta["checkpoint"]} ({meta["objective"]} pre-training)'

  def train(self, batch: Dict[str, np.ndarray]) -> Dict[str, float]:
    """One update on a time-major batch of unrolls (numpy arrays [T+1, B, ...])."""
    tensors = {k: tf.convert_to_tensor(v) for k, v in batch.items()}
    parts = self.strategy.num_replicas_in_sync * self.config.micro_batches
    counts = learning.micro_batch_counts(tensors, parts, aux=self.config.aux, max_jump=self.config.aux_max_jump_px,
                                         num_agents=self.observation_shape[0])
    for name in ('vtrace', 'aux'):   # [1, replicas * micro]: split along axis 1 with the batch
      tensors[f'_weights_{name}'] = (counts[name] / tf.maximum(tf.reduce_sum(counts[name]), 1.0))[tf.newaxis]
    dist = distribute.split_batch(self.strategy, tensors, axis=1)
    logs = self._train(dist)
    return {k: float(v) for k, v in logs.items()}
