"""Chapter 7 stage 1: frame-pair sampling and the training step of the transformation module (g_enc, g_dec, BlockSTN)
(thesis 7.4.1 Eq. 7.2, T:L6535-6552; appendix 7.B, T:L6937-6999; spec ch7 §4 (7.2), §5 stage 1, §6).

Stage 1 trains the frame autoencoder and the BlockSTN T on pairs of frames (x_i, x_j) of one video:

  L_T^{i,j} = lambda_r ||x_i - g_dec(s_i)||^2 + lambda_t ||x_j - g_dec(G_ij(s_i))||^2,
  s_i = g_enc(x_i), s_j = g_enc(x_j), G_ij = T(s_i, s_j)                                         (7.2)

The thesis prints "g_dec((s_i))", a typo for g_dec(s_i) (spec §4). MMNIST: lambda_r = 0.1, lambda_t = 1.0 (stated,
T:L6952-6958); the other data sets reuse them (spec A16). The squared norms are reduced by `losses.reconstruction`
with the config's `reduction` (mean over all elements by default, spec A6). The thesis lists no other stage-1 term
(no latent-consistency loss). Gradients reach g_enc, g_dec and the localisation nets, including through s_j, the
loc-nets' second input (spec §4). All of them are updated by one Adam(stage1_lr, 0.9, 0.999, 1e-8) (T:L6937-6939;
the x0.5 per 50 epochs decay is the training loop's: pass an optimizer with a schedule to get it).

Pairs (spec §5, §6): per clip, i != j with min_pair_gap <= |i - j| <= max_pair_gap (<= 25 frames; RAVDESS 5..25),
drawn uniformly over the allowed ordered pairs of the clip, statelessly from a seed (`sample_pair_indices`).

`Stage1Trainer.warp_error` / `identity_warp_error` measure what the warp buys: the target MSE of g_dec(G_ij(s_i))
against that of g_dec(s_i) (the identity warp), both with the same autoencoder in inference mode.
"""

from typing import Dict, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

from rlcv_tf.video import losses
from rlcv_tf.video import models
from rlcv_tf.video import presets


# ------------------------------------------------------------------------------------------------ pairs
def allowed_pairs(num_frames: int, max_gap: int, min_gap: int = 1) -> np.ndarray:
  """int32 [P, 2]: every ordered (i, j), 0 <= i, j < num_frames, with min_gap <= |i - j| <= max_gap (i != j)."""
  if min_gap < 1 or max_gap < min_gap:
    raise ValueError(f'pair gaps: need 1 <= min_gap <= max_gap, got min_gap={min_gap}, max_gap={max_gap}')
  pairs = [(i, j) for i in range(num_frames) for j in range(num_frames) if min_gap <= abs(i - j) <= max_gap]
  if not pairs:
    raise ValueError(f'no frame pair of a {num_frames}-frame clip is {min_gap}..{max_gap} frames apart')
  return np.asarray(pairs, np.int32)


def _seed_pair(seed) -> tf.Tensor:
  """An int seed or a [2] seed -> the [2] int32 seed of TF's stateless ops."""
  seed = tf.convert_to_tensor(seed)
  if seed.shape.rank == 0:
    return tf.stack([tf.cast(seed, tf.int32), tf.constant(0x5eed, tf.int32)])
  return tf.cast(seed, tf.int32)


def sample_pair_indices(num_clips, num_frames: int, max_gap: int, seed, min_gap: int = 1) -> tf.Tensor:
  """int32 [num_clips, 2]: per clip a (source i, target j) index pair, uniform over `allowed_pairs`; a function of
  (num_clips, num_frames, gaps, seed) only (stateless)."""
  table = tf.constant(allowed_pairs(int(num_frames), int(max_gap), int(min_gap)))
  pick = tf.random.stateless_uniform(tf.reshape(num_clips, [1]), _seed_pair(seed), minval=0,
                                     maxval=table.shape[0], dtype=tf.int32)
  return tf.gather(table, pick)


def sample_pairs(video, max_gap: int, seed, min_gap: int = 1) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """video [B, T, ...] -> (source [B, ...] = video[b, i_b], target [B, ...] = video[b, j_b], indices [B, 2] (i, j)).

  The frame count T must be static. Stateless: the same seed gives the same pairs.
  """
  video = tf.convert_to_tensor(video)
  if video.shape.rank is None or video.shape.rank < 2 or video.shape[1] is None:
    raise ValueError(f'video: expected [B, T, ...] with a static T, got shape {video.shape}')
  indices = sample_pair_indices(tf.shape(video)[0], video.shape[1], max_gap, seed, min_gap)
  source = tf.gather(video, indices[:, 0], axis=1, batch_dims=1)
  target = tf.gather(video, indices[:, 1], axis=1, batch_dims=1)
  return source, target, indices


# ------------------------------------------------------------------------------------------------ stage 1
def stage1_optimizer(config: presets.VideoConfig, learning_rate=None) -> keras.optimizers.Optimizer:
  """Adam(stage1_lr or `learning_rate` (a float or a schedule), adam_beta1, adam_beta2, adam_epsilon)."""
  return keras.optimizers.Adam(config.stage1_lr if learning_rate is None else learning_rate,
                               beta_1=config.adam_beta1, beta_2=config.adam_beta2, epsilon=config.adam_epsilon)


class Stage1Trainer:
  """One tf.function step of Eq. 7.2 on a batch of frame pairs (module docstring).

  Args:
    config: the VideoConfig (lambda_r, lambda_t, reduction, stage1_lr, Adam settings).
    autoencoder: `models.FrameAutoencoder` (g_enc, g_dec).
    stn: `models.BlockSTN` (T).
    optimizer: defaults to `stage1_optimizer(config)`; it updates the trainable variables of both models.
  """

  def __init__(self, config: presets.VideoConfig, autoencoder: models.FrameAutoencoder, stn: models.BlockSTN,
               optimizer: Optional[keras.optimizers.Optimizer] = None):
    self.config = config.validate()
    self.autoencoder = autoencoder
    self.stn = stn
    self.optimizer = stage1_optimizer(self.config) if optimizer is None else optimizer
    self._build()
    self.variables = list(self.autoencoder.trainable_variables) + list(self.stn.trainable_variables)
    self.optimizer.build(self.variables)
    self.train_step = tf.function(self._train_step)
    self._warp_error = tf.function(lambda s, t: self._target_error(s, t, warp=True))
    self._identity_error = tf.function(lambda s, t: self._target_error(s, t, warp=False))

  def _build(self) -> None:
    """Creates the models' weights (inference-mode call on zeros: no BN statistic moves)."""
    if not (self.autoencoder.built and self.stn.built):
      frame = tf.zeros((1,) + self.config.frame_shape)
      s = self.autoencoder.encode(frame, training=False)
      self.autoencoder.decode(s, training=False)
      self.stn(s, s)

  def loss_terms(self, source, target, training: bool = True) -> Dict[str, tf.Tensor]:
    """Eq. 7.2 on frames source = x_i, target = x_j ([B, H, W, C]): 'recon_source' ||x_i - g_dec(s_i)||^2,
    'recon_target' ||x_j - g_dec(G_ij(s_i))||^2, 'loss' = lambda_r recon_source + lambda_t recon_target, and
    'theta_offset', the mean |theta - identity| of G_ij (a diagnostic)."""
    c = self.config
    s_src = self.autoencoder.encode(source, training=training)
    s_tgt = self.autoencoder.encode(target, training=training)
    warped, theta = self.stn(s_src, s_tgt)
    recon_source = losses.reconstruction(source, self.autoencoder.decode(s_src, training=training), c.reduction)
    recon_target = losses.reconstruction(target, self.autoencoder.decode(warped, training=training), c.reduction)
    identity = tf.reshape(tf.constant(models.IDENTITY_BIAS, theta.dtype), (2, 3))
    return {'loss': c.lambda_r * recon_source + c.lambda_t * recon_target,
            'recon_source': recon_source,
            'recon_target': recon_target,
            'theta_offset': tf.reduce_mean(tf.abs(theta - identity))}

  def _train_step(self, source_frames, target_frames) -> Dict[str, tf.Tensor]:
    with tf.GradientTape() as tape:
      terms = self.loss_terms(source_frames, target_frames, training=True)
    grads = tape.gradient(terms['loss'], self.variables)
    self.optimizer.apply_gradients(zip(grads, self.variables))
    terms['grad_norm'] = tf.linalg.global_norm(grads)
    return terms

  def _target_error(self, source, target, warp: bool) -> tf.Tensor:
    s_src = self.autoencoder.encode(source, training=False)
    if warp:
      s_src = self.stn(s_src, self.autoencoder.encode(target, training=False))[0]
    return losses.reconstruction(target, self.autoencoder.decode(s_src, training=False), 'mean')

  def warp_error(self, source, target) -> tf.Tensor:
    """MSE of x_j against g_dec(G_ij(s_i)) over the batch (inference mode)."""
    return self._warp_error(tf.convert_to_tensor(source, tf.float32), tf.convert_to_tensor(target, tf.float32))

  def identity_warp_error(self, source, target) -> tf.Tensor:
    """MSE of x_j against g_dec(s_i): the target error of the identity warp, same autoencoder (inference mode)."""
    return self._identity_error(tf.convert_to_tensor(source, tf.float32), tf.convert_to_tensor(target, tf.float32))

  def checkpoint_objects(self) -> Dict[str, object]:
    """Objects for tf.train.Checkpoint(**...): both models (BN statistics included) and the optimizer."""
    return {'frame_autoencoder': self.autoencoder, 'block_stn': self.stn, 'stage1_optimizer': self.optimizer}
