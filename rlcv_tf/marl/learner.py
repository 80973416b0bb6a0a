"""The Chapter 4 learner: one shared network for all agents, batched central inference, V-trace updates.

Owns every variable (network, Adam, frame counter) inside the `tf.distribute` strategy's scope, the
checkpoint that saves them, and two compiled functions:
  * `infer(observations uint8 [b, N, H, W, C])` -> sampled actions [b, N], logits [b, N, A], values [b, N];
  * `train(batch of [T+1, B, ...] unrolls)` -> loss and V-trace statistics, after one Adam step.
"""

import os
from typing import Dict, Tuple

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from rlcv_tf.core import distribute
from rlcv_tf.marl import config as config_lib
from rlcv_tf.marl import learning
from rlcv_tf.marl import networks

tfd = tfp.distributions


class Learner:

  def __init__(self, cfg: config_lib.MarlConfig, observation_shape: Tuple[int, int, int, int], num_actions: int,
               strategy: tf.distribute.Strategy = None):
    self.config = cfg
    self.observation_shape = tuple(observation_shape)  # (N, H, W, C)
    self.num_actions = num_actions
    self.strategy = strategy or distribute.make_strategy(cfg.strategy)
    if cfg.batch_size % self.strategy.num_replicas_in_sync:
      raise ValueError(f'batch_size: {cfg.batch_size} must be divisible by the {self.strategy.num_replicas_in_sync} '
                       'replicas of the distribution strategy')
    keras.utils.set_random_seed(cfg.seed)
    with self.strategy.scope():
      self.model = networks.build_network(cfg.model, num_actions, self.observation_shape,
                                          stack_channels=cfg.stack_channels, feature_dim=cfg.feature_dim,
                                          num_heads=cfg.num_heads)
      self.optimizer = keras.optimizers.Adam(learning_rate=cfg.learning_rate, epsilon=cfg.adam_epsilon)
      # Create Adam's slots now, so a checkpoint restores them before the first update.
      self.optimizer.build(self.model.trainable_variables)
      self.frames = tf.Variable(0, dtype=tf.int64, trainable=False, name='frames')
      self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name='updates')
    self.checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer, frames=self.frames,
                                          updates=self.updates)
    self._sample_seed = tf.random.Generator.from_seed(cfg.seed)
    n, h, w, c = self.observation_shape
    self.infer = tf.function(self._infer, input_signature=[tf.TensorSpec([None, n, h, w, c], tf.uint8)],
                             jit_compile=False)
    self._train = tf.function(self._train_step)

  # ------------------------------------------------------------------------------------------ inference
  def _infer(self, observations):
    out = self.model(observations, training=False)
    logits = out['policy_logits']
    flat = tf.reshape(logits, [-1, self.num_actions])
    seeds = self._sample_seed.make_seeds(1)[:, 0]
    actions = tf.random.stateless_categorical(flat, 1, seed=seeds, dtype=tf.int32)
    actions = tf.reshape(actions, tf.shape(logits)[:-1])
    return actions, logits, out['baseline']

  # ------------------------------------------------------------------------------------------- training
  def _replica_step(self, batch):
    cfg = self.config
    obs = batch['observation']                               # [T+1, B, N, H, W, C]
    shape = tf.shape(obs)
    t1, b = shape[0], shape[1]
    with tf.GradientTape() as tape:
      # Fold time into the batch: attention still only mixes the N agents of one (t, b) team.
      out = self.model(tf.reshape(obs, tf.concat([[t1 * b], shape[2:]], 0)), training=True)
      logits = tf.reshape(out['policy_logits'], [t1, b, -1, self.num_actions])
      baseline = tf.reshape(out['baseline'], [t1, b, -1])
      loss, logs = learning.vtrace_loss(
          logits, baseline, batch['action'], batch['behaviour_logits'], batch['reward'], batch['done'],
          discounting=cfg.discounting, baseline_cost=cfg.baseline_cost, entropy_cost=cfg.entropy_cost,
          lambda_=cfg.lambda_, clip_rho_threshold=cfg.clip_rho_threshold,
          clip_pg_rho_threshold=cfg.clip_pg_rho_threshold)
      scaled = loss / self.strategy.num_replicas_in_sync
    variables = self.model.trainable_variables
    grads = tape.gradient(scaled, variables)
    logs['optimizer/grad_norm'] = tf.linalg.global_norm(grads)
    self.optimizer.apply_gradients(zip(grads, variables))
    return logs

  def _train_step(self, batch):
    per_replica = self.strategy.run(self._replica_step, args=(batch,))
    logs = {k: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in per_replica.items()}
    # A frame is one environment step (not times N agents): B * T per update (spec ch4 §8, row 6).
    self.frames.assign_add(self.config.frames_per_update)
    self.updates.assign_add(1)
    return logs

  def train(self, batch: Dict[str, np.ndarray]) -> Dict[str, float]:
    """One update on a time-major batch of unrolls (numpy arrays [T+1, B, ...])."""
    tensors = {k: tf.convert_to_tensor(v) for k, v in batch.items()}
    dist = distribute.split_batch(self.strategy, tensors, axis=1)
    logs = self._train(dist)
    return {k: float(v) for k, v in logs.items()}
