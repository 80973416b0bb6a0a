"""PPO-Clip with a hard KL constraint (seed 001 Eqs. 4-7 and Algorithm 1, S:L440-520) and the three variants' update.

Minimisation form (spec Sec. 3; the paper writes Eq. 5 as an objective to maximise and Eq. 3 adds losses):

    o = pi(a|s) / pi_old(a|s)      (pi_old: the behaviour policy, its log-probability recorded with each step)
    J_clip = E[min(o A, clip(o, 1 - eps, 1 + eps) A)]        (Eq. 4; A > 0: min(o, 1 + eps) A, Eq. 6;
                                                               A < 0: max(o, 1 - eps) A, Eq. 7)
    L_V = E[(V(s) - R)^2],   R = A + V_old(s)               (GAE returns; core.returns)
    L_PPO = -c1 J_clip + c2 L_V - c3 H[pi]                  (c1 = 1, c2 = 0.5, c3 = 0: Tables 2/3)
    L = kappa L_PPO + L_VAE                                  (joint, Eq. 3; fixed and adapt: L = L_PPO)

Which variables each variant trains (Fig. 2; spec Sec. 2.5):
  fixed   the MLP only; U is gradient-stopped, the pre-trained encoder never changes, the decoder is dropped;
  adapt   the pre-trained encoder and the MLP, by L_PPO alone; no decoder variable (nor the encoder's log-variance
          head, which U = mu never reads) is in the optimiser;
  joint   everything from random initialisation: the decoder gets dL_VAE only, the MLP kappa dL_PPO only, the
          encoder the sum of both at its output (kappa dL_PPO through U = mu, dL_VAE through mu, sigma -> z).
One Adam (3e-4) over the variant's variables; no gradient clipping (a global-norm clip would partly undo kappa).

KL constraint (Algorithm 1 "s.t. delta_MB < delta_target", S:L452, S:L509-519; spec A5): after each minibatch
update delta_MB = mean(log pi_old(a|s) - log pi(a|s)) on that minibatch under the updated weights (the paper:
"checked after each mini-batch update"). kl_mode='early_stop' (default) ends the iteration's remaining updates once
delta_MB > delta_target; kl_mode='revert' is lines 11-13 read literally: the K epochs run, and if the last
delta_MB exceeds delta_target the network weights go back to those before the iteration (Adam's moments are kept).

Samples whose transition is not real (`bootstrap_only`: a time-limit cut's last observation, or a restarted
actor's lost step) have weight 0 in every mean, so minibatches keep one shape (no retracing).
"""

import dataclasses
from typing import Dict, List, Optional

import keras
import numpy as np
import tensorflow as tf

from rlcv_tf.core import returns as returns_lib
from rlcv_tf.vae_pg import policy as policy_lib
from rlcv_tf.vae_pg import vae as vae_lib


def _weighted_mean(x, w):
  return tf.reduce_sum(x * w) / tf.maximum(tf.reduce_sum(w), 1e-8)


def clipped_surrogate(log_prob, log_prob_old, advantages, clip_eps: float, weights=None) -> tf.Tensor:
  """J_clip = E[min(o A, clip(o, 1 - eps, 1 + eps) A)], o = exp(log_prob - log_prob_old) (Eq. 4)."""
  ratio = tf.exp(log_prob - log_prob_old)
  surrogate = tf.minimum(ratio * advantages, tf.clip_by_value(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages)
  if weights is None:
    return tf.reduce_mean(surrogate)
  return _weighted_mean(surrogate, weights)


def normalize(advantages, weights):
  """Advantages standardised over the minibatch's real samples (weights 1)."""
  mean = _weighted_mean(advantages, weights)
  var = _weighted_mean(tf.square(advantages - mean), weights)
  return (advantages - mean) / (tf.sqrt(var) + 1e-8)


def ppo_loss(logits, values, actions, log_prob_old, advantages, returns, weights, clip_eps: float, c1: float,
             c2: float, c3: float, normalize_advantages: bool = True) -> Dict[str, tf.Tensor]:
  """L_PPO and its parts on one minibatch (module docstring); every input [M] except logits [M, A]."""
  dist = policy_lib.distribution(logits)
  log_prob = dist.log_prob(actions)
  adv = normalize(advantages, weights) if normalize_advantages else advantages
  j_clip = clipped_surrogate(log_prob, log_prob_old, adv, clip_eps, weights)
  value_loss = _weighted_mean(tf.square(values - returns), weights)
  entropy = _weighted_mean(dist.entropy(), weights)
  loss = -c1 * j_clip + c2 * value_loss
  if c3:
    loss = loss - c3 * entropy
  ratio = tf.exp(log_prob - log_prob_old)
  clipped = tf.cast(tf.abs(ratio - 1.0) > clip_eps, tf.float32)
  return {'loss': loss, 'j_clip': j_clip, 'value_loss': value_loss, 'entropy': entropy,
          'approx_kl': _weighted_mean(log_prob_old - log_prob, weights), 'clip_fraction': _weighted_mean(clipped, weights)}


def gae(rewards, discounts, values, bootstrap_value, bootstrap_only, gamma: float, lam: float):
  """(advantages, returns) [T, E] by core.returns' GAE; `discounts` are dm_env's (1 mid-episode, 0 at an end)."""
  out = returns_lib.generalized_advantage_estimation(
      np.asarray(rewards, np.float32), gamma * np.asarray(discounts, np.float32), np.asarray(values, np.float32),
      np.asarray(bootstrap_value, np.float32), lam, bootstrap_only=np.asarray(bootstrap_only, bool))
  return out.advantages.numpy(), out.lambda_returns.numpy()


@dataclasses.dataclass
class Batch:
  """One iteration's samples, flattened over (time, environment): frames uint8 [N, S, S, n], the rest [N]."""
  frames: np.ndarray
  actions: np.ndarray
  log_prob_old: np.ndarray
  advantages: np.ndarray
  returns: np.ndarray
  weights: np.ndarray

  @property
  def size(self) -> int:
    return int(self.actions.shape[0])


class PPOLearner:
  """The network of one variant and its PPO update (module docstring).

  `model` is the actor-critic; `vae` (joint only) shares its encoder and adds the decoder.
  """

  def __init__(self, cfg, num_actions: int, seed: int = 0):
    self.cfg = cfg
    keras.utils.set_random_seed(int(seed))
    self.vae = vae_lib.VAE(cfg.image_size, cfg.enc_filters, cfg.enc_fc, cfg.latent_dim).build_all()
    self.model = policy_lib.ActorCritic(self.vae.encoder, num_actions, cfg.num_frames, cfg.latent_dim,
                                        cfg.hidden).build_all(cfg.image_size)
    self.optimizer = keras.optimizers.Adam(cfg.learning_rate)
    self.variables = self.trained_variables()
    self.optimizer.build(self.variables)
    self.kappa = float(cfg.effective_kappa)
    self._seed = tf.Variable([int(seed), 0], dtype=tf.int64, trainable=False, name='vae_noise_seed')
    self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name='iterations')
    self.agent_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name='agent_steps')
    self.episodes = tf.Variable(0, dtype=tf.int64, trainable=False, name='episodes')
    self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name='updates')
    self._train_step = tf.function(self._train_step_impl, reduce_retracing=True)
    self._act = tf.function(self._act_impl, reduce_retracing=True)

  # ------------------------------------------------------------------------------------------------- variables
  def trained_variables(self) -> List[tf.Variable]:
    variant = self.cfg.variant
    heads = self.model.head_variables()
    if variant == 'fixed':
      return heads
    encoder = list(self.model.encoder.trainable_variables)
    if variant == 'adapt':
      # PPO reads the posterior means only: the log-variance head gets no gradient from L_PPO, so it stays out.
      return [v for v in encoder if '/logvar/' not in v.path] + heads
    return encoder + list(self.vae.decoder.trainable_variables) + heads

  def checkpoint(self, **extra) -> tf.train.Checkpoint:
    parts = dict(encoder=self.model.encoder, model=self.model, optimizer=self.optimizer, iterations=self.iterations,
                 agent_steps=self.agent_steps, episodes=self.episodes, updates=self.updates, noise_seed=self._seed)
    if self.cfg.variant == 'joint':
      parts['decoder'] = self.vae.decoder
    parts.update(extra)
    return tf.train.Checkpoint(**parts)

  def load_pretrained(self, weights_path: str) -> None:
    """Loads a pre-trained VAE (`training.pretrain`'s vae/vae.weights.h5) into the encoder (and the decoder, which
    only joint runs would use; fixed and adapt drop it)."""
    self.vae.load_weights(weights_path)

  # ---------------------------------------------------------------------------------------------------- acting
  def _act_impl(self, frames):
    logits, value, _ = self.model(frames)
    return logits, value

  def act(self, frames: np.ndarray):
    logits, value = self._act(tf.convert_to_tensor(frames))
    return logits.numpy(), value.numpy()

  def values(self, frames: np.ndarray) -> np.ndarray:
    return self.act(frames)[1]

  # --------------------------------------------------------------------------------------------------- learning
  def losses(self, frames, actions, log_prob_old, advantages, returns, weights, seed=None) -> Dict[str, tf.Tensor]:
    """The variant's total loss and its parts on one minibatch (differentiable; used by the step and by tests)."""
    cfg = self.cfg
    logits, values, _ = self.model(frames, freeze_encoder=cfg.variant == 'fixed')
    terms = ppo_loss(logits, values, actions, log_prob_old, advantages, returns, weights, cfg.clip_eps, cfg.c1,
                     cfg.c2, cfg.c3, cfg.normalize_advantages)
    out = {f'ppo/{k}': v for k, v in terms.items()}
    total = self.kappa * terms['loss']
    if cfg.variant == 'joint':
      vae_total, vae_terms = self.vae_loss(frames, weights, seed)
      out.update(vae_terms)
      total = total + vae_total
    out['loss/total'] = total
    return out

  def vae_loss(self, frames, weights, seed=None):
    """L_VAE over the minibatch's frames: all n of each sample (spec A10) or the newest only; weight-0 samples out."""
    cfg = self.cfg
    if cfg.vae_loss_frames == 'newest':
      frames = frames[..., -1:]
    x = policy_lib.frames_to_units(frames)
    n = tf.shape(frames)[-1]
    w = tf.repeat(tf.cast(weights, tf.float32), n)
    mu, logvar = self.vae.encoder(x)
    eps = (tf.random.stateless_normal(tf.shape(mu), seed) if seed is not None
           else tf.random.normal(tf.shape(mu)))
    z = mu + tf.exp(0.5 * logvar) * eps
    logits = self.vae.decoder(z)
    nll, kl = vae_lib.vae_terms(x, logits, mu, logvar)
    loss = _weighted_mean(nll + cfg.beta * kl, w)
    return loss, {'vae/nll': _weighted_mean(nll, w), 'vae/kl': _weighted_mean(kl, w), 'vae/loss': loss}

  def _train_step_impl(self, frames, actions, log_prob_old, advantages, returns, weights, seed):
    with tf.GradientTape() as tape:
      out = self.losses(frames, actions, log_prob_old, advantages, returns, weights, seed)
    grads = tape.gradient(out['loss/total'], self.variables)
    self.optimizer.apply_gradients(zip(grads, self.variables))
    out['grad_norm'] = tf.linalg.global_norm(grads)
    # delta_MB under the updated weights, on the same minibatch (policy path only).
    logits, _ = self._act_impl(frames)
    out['delta_mb'] = _weighted_mean(log_prob_old - policy_lib.distribution(logits).log_prob(actions), weights)
    return out

  def update(self, batch: Batch, rng: np.random.Generator) -> Dict[str, float]:
    """K epochs of minibatch updates with the KL constraint (module docstring); returns the iteration's logs."""
    cfg = self.cfg
    mb = batch.size // cfg.num_minibatches
    snapshot = [v.numpy() for v in self.variables] if cfg.kl_mode == 'revert' else None
    logs: Dict[str, List[float]] = {}
    steps = 0
    stopped = False
    delta = 0.0
    for _ in range(cfg.epochs):
      order = rng.permutation(batch.size)
      for i in range(cfg.num_minibatches):
        idx = order[i * mb:(i + 1) * mb]
        self._seed.assign_add([0, 1])
        out = self._train_step(tf.constant(batch.frames[idx]), tf.constant(batch.actions[idx]),
                               tf.constant(batch.log_prob_old[idx]), tf.constant(batch.advantages[idx]),
                               tf.constant(batch.returns[idx]), tf.constant(batch.weights[idx]),
                               tf.identity(self._seed))
        steps += 1
        for k, v in out.items():
          logs.setdefault(k, []).append(float(v))
        delta = float(out['delta_mb'])
        if cfg.kl_mode == 'early_stop' and delta > cfg.delta_target:
          stopped = True
          break
      if stopped:
        break
    reverted = False
    if snapshot is not None and delta > cfg.delta_target:
      for v, old in zip(self.variables, snapshot):
        v.assign(old)
      reverted = True
    self.updates.assign_add(steps)
    self.iterations.assign_add(1)
    result = {k: float(np.mean(v)) for k, v in logs.items()}
    result.update({'ppo/minibatch_updates': float(steps), 'ppo/early_stopped': float(stopped),
                   'ppo/reverted': float(reverted), 'ppo/last_delta_mb': delta})
    return result


def flatten_rollout(rollout, log_prob_old: np.ndarray, values: np.ndarray, bootstrap_value: np.ndarray,
                    cfg) -> Batch:
  """A `runtime.sync_rollouts.Rollout` -> `Batch`: rewards sign-clipped (cfg.reward_clip), GAE(gamma, lambda)."""
  rewards = np.asarray(rollout.rewards, np.float32)
  if cfg.reward_clip == 'sign':
    rewards = np.sign(rewards)
  adv, ret = gae(rewards, rollout.discounts, values, bootstrap_value, rollout.bootstrap_only, cfg.gamma,
                 cfg.gae_lambda)
  t, e = rollout.rewards.shape
  frames = np.asarray(rollout.observations[:t])
  frames = frames.reshape((t * e,) + frames.shape[2:])
  return Batch(frames=frames, actions=np.asarray(rollout.actions, np.int32).reshape(-1),
               log_prob_old=np.asarray(log_prob_old, np.float32).reshape(-1),
               advantages=adv.reshape(-1).astype(np.float32), returns=ret.reshape(-1).astype(np.float32),
               weights=(~np.asarray(rollout.bootstrap_only)).reshape(-1).astype(np.float32))
