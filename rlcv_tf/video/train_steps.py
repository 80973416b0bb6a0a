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

Stage 2 (thesis 7.4.2-7.4.3, Eqs. 7.3-7.5, T:L6553-6572; spec §3.7, §4, §5) trains Enc_v, f_enc / f_dec and f_auto on
T-frame clips V with the stage-1 module (g_enc, g_dec, T) frozen: it is outside the optimizer and always runs with
training=False (BN on its moving statistics, none of which move). One backward pass of

  L2 = lambda_statics L_statics + lambda_reg L_reg + lambda_frame L_frame + lambda_pred L_pred

is the thesis's three passes, because the stop-gradients route each term to its own modules (spec §4's table):
  L_statics = (1/T) sum_t ||x_t - g_dec(T(S, s_t) o S)||^2, s_t = g_enc(x_t) (constant)    -> Enc_v trunk + S head;
  L_reg (Weizmann, lambda_reg 0.5) = mean (S - sg(s_j*))^2, j* the frame whose warps best rebuild the others
      (chosen without gradient; [proposal] a feature MSE for the thesis's perceptual loss, spec A7) -> same;
  L_frame = (1/T) sum_t ||x_t - f_dec(p_t, sg(S))||^2, p_t = f_enc(x_t, sg(S))             -> f_enc, f_dec only;
  L_pred = InfoNCE(f_auto(P, sg(p_1)), sg(p_2..p_T)) (Eq. 7.5, `losses.info_nce`)          -> Enc_v trunk,
      layer4 + P head, f_auto; nothing reaches f_enc (p is detached).
`ablation='statics_only'` (the thesis's S-only stage 2, the Table 7.3 ablation): L_statics (+ L_reg) alone.
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
    seed: the pair-sampling seed of `train_clips` (with the step counter: a resumed run draws the same pairs).

  `train_step(x_i, x_j)` steps on given frame pairs; `train_clips(video [B, L, H, W, C])` draws one pair per clip
  (`sample_pairs`, seeded by (seed, step)) and steps on them. Both count `step`.
  """

  def __init__(self, config: presets.VideoConfig, autoencoder: models.FrameAutoencoder, stn: models.BlockSTN,
               optimizer: Optional[keras.optimizers.Optimizer] = None, seed: int = 0):
    self.config = config.validate()
    self.autoencoder = autoencoder
    self.stn = stn
    self.optimizer = stage1_optimizer(self.config) if optimizer is None else optimizer
    self._build()
    self.variables = list(self.autoencoder.trainable_variables) + list(self.stn.trainable_variables)
    self.optimizer.build(self.variables)
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='stage1_step')
    self.seed = int(seed)
    self.train_step = tf.function(self._train_step)
    self.train_clips = tf.function(self._train_clips)
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
    self.step.assign_add(1)
    terms['grad_norm'] = tf.linalg.global_norm(grads)
    return terms

  def _train_clips(self, video) -> Dict[str, tf.Tensor]:
    c = self.config
    seed = tf.stack([tf.constant(self.seed % 2**31, tf.int32), tf.cast(self.step % 2**31, tf.int32)])
    source, target, _ = sample_pairs(video, c.max_pair_gap, seed, c.min_pair_gap)
    return self._train_step(source, target)

  def set_learning_rate(self, learning_rate: float) -> None:
    self.optimizer.learning_rate.assign(float(learning_rate))

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
    return {'frame_autoencoder': self.autoencoder, 'block_stn': self.stn, 'stage1_optimizer': self.optimizer,
            'stage1_step': self.step}


# ------------------------------------------------------------------------------------------------ stage 2
ABLATIONS = ('', 'statics_only')


def stage2_optimizer(config: presets.VideoConfig, learning_rate=None) -> keras.optimizers.Optimizer:
  """Adam(stage2_lr or `learning_rate`, adam_beta1, adam_beta2, adam_epsilon)."""
  return keras.optimizers.Adam(config.stage2_lr if learning_rate is None else learning_rate,
                               beta_1=config.adam_beta1, beta_2=config.adam_beta2, epsilon=config.adam_epsilon)


def variable_snapshot(*modules) -> Dict[str, np.ndarray]:
  """{path: value} of every variable (trainable or not, BN statistics included) of `modules`, as NumPy copies."""
  out = {}
  for module in modules:
    for v in module.variables:
      out[f'{module.name}/{v.path}'] = np.array(v.numpy(), copy=True)
  return out


class Stage2Trainer:
  """One tf.function step of L2 on a batch of clips (module docstring).

  Args:
    config: the VideoConfig (lambdas, reduction, stage2_lr, Adam settings, num_frames).
    autoencoder, stn: the trained stage-1 module, frozen here.
    video_encoder: `models.VideoEncoder` (Enc_v).
    frame_dynamics: `models.FrameDynamicsAE` (f_enc, f_dec).
    predictor: `models.AutoregressivePredictor` (f_auto).
    optimizer: defaults to `stage2_optimizer(config)`; it updates Enc_v, f_enc / f_dec and f_auto only (with
      `ablation='statics_only'`: Enc_v only).
    ablation: '' (the full model) or 'statics_only'.
  """

  def __init__(self, config: presets.VideoConfig, autoencoder: models.FrameAutoencoder, stn: models.BlockSTN,
               video_encoder: models.VideoEncoder, frame_dynamics: models.FrameDynamicsAE,
               predictor: models.AutoregressivePredictor, optimizer: Optional[keras.optimizers.Optimizer] = None,
               ablation: str = ''):
    if ablation not in ABLATIONS:
      raise ValueError(f'ablation: got {ablation!r}; valid values are {ABLATIONS} ("" = the full model)')
    self.config = config.validate()
    self.autoencoder, self.stn = autoencoder, stn
    self.video_encoder, self.frame_dynamics, self.predictor = video_encoder, frame_dynamics, predictor
    self.ablation = ablation
    self.optimizer = stage2_optimizer(self.config) if optimizer is None else optimizer
    self._build()
    trained = [video_encoder] if ablation == 'statics_only' else [video_encoder, frame_dynamics, predictor]
    self.variables = [v for m in trained for v in m.trainable_variables]
    self.optimizer.build(self.variables)
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='stage2_step')
    self.train_step = tf.function(self._train_step)

  def _build(self) -> None:
    c = self.config
    video = tf.zeros((1,) + c.video_shape)
    frame = tf.zeros((1,) + c.frame_shape)
    s = self.autoencoder.encode(frame, training=False)
    self.autoencoder.decode(s, training=False)
    self.stn(s, s)
    statics, dynamics = self.video_encoder(video, training=False)
    p, _ = self.frame_dynamics(frame, statics, training=False)
    self.predictor(dynamics, p, steps=1)

  # -------------------------------------------------------------------------------------------- pieces
  def frame_codes(self, video) -> tf.Tensor:
    """s_t = g_enc(x_t) of every frame, [B, T, h, w, c], frozen (inference mode, no gradient)."""
    return tf.stop_gradient(self.autoencoder.encode_video(video, training=False))

  def best_warp_frame(self, video, codes) -> tf.Tensor:
    """int32 [B]: j* = argmin_j (1/(T-1)) sum_{t != j} ||x_t - g_dec(T(s_j, s_t) o s_j)||^2 (Weizmann's choice of
    the frame S is pulled toward), computed without gradient."""
    b, t = tf.shape(codes)[0], codes.shape[1]
    h, w, c = codes.shape[2:]
    # Every (j, t): source s_j, target s_t -> [B, j, t, ...] folded to [B*T*T, ...].
    src = tf.reshape(tf.repeat(codes, t, axis=1), (-1, h, w, c))            # [B, j repeated T times]
    tgt = tf.reshape(tf.tile(codes, (1, t, 1, 1, 1)), (-1, h, w, c))        # [B, t cycling]
    rebuilt = self.autoencoder.decode(self.stn(src, tgt)[0], training=False)
    frames = tf.reshape(tf.tile(video, (1, t, 1, 1, 1)), tf.shape(rebuilt))
    err = tf.reshape(tf.reduce_mean(tf.math.squared_difference(frames, tf.cast(rebuilt, frames.dtype)),
                                    axis=(1, 2, 3)), tf.stack([b, t, t]))
    off_diagonal = 1.0 - tf.eye(t, dtype=err.dtype)
    score = tf.reduce_sum(err * off_diagonal, axis=2) / float(t - 1)
    return tf.stop_gradient(tf.argmin(score, axis=1, output_type=tf.int32))

  def loss_terms(self, video, training: bool = True) -> Dict[str, tf.Tensor]:
    """Every term of L2 on clips `video` [B, T, H, W, C] (module docstring) plus 'loss' and diagnostics
    'pred_accuracy' (top-1 of the InfoNCE candidates), 'statics_warp_offset' (mean |theta - identity|)."""
    return self.terms_and_reconstructions(video, training)[0]

  def terms_and_reconstructions(self, video, training: bool = True):
    """(loss_terms(video), {'statics': g_dec(T(S, s_t) o S) [B*T, H, W, C], 'frames': f_dec(p_t, S) [B*T, H, W, C]
    (absent under the statics_only ablation)}): the terms and the frames they compare, from one forward pass."""
    c = self.config
    video = tf.convert_to_tensor(video)
    t = video.shape[1]
    if t is None or t < 2:
      raise ValueError(f'video: expected [B, T, H, W, C] with a static T >= 2, got shape {video.shape}')
    statics, dynamics = self.video_encoder(video, training=training)
    codes = self.frame_codes(video)
    frames = models.fold_time(video)
    warped, theta = self.stn(models.repeat_per_frame(statics, t), models.fold_time(codes))
    rebuilt = self.autoencoder.decode(warped, training=False)
    terms = {'statics': losses.reconstruction(frames, rebuilt, c.reduction)}
    images = {'statics': rebuilt}
    identity = tf.reshape(tf.constant(models.IDENTITY_BIAS, theta.dtype), (2, 3))
    terms['statics_warp_offset'] = tf.reduce_mean(tf.abs(theta - identity))
    loss = c.lambda_statics * terms['statics']
    if c.lambda_reg > 0:
      j = self.best_warp_frame(video, codes)
      anchor = tf.gather(codes, j, axis=1, batch_dims=1)
      terms['reg'] = tf.reduce_mean(tf.math.squared_difference(statics, tf.cast(anchor, statics.dtype)))
      loss += c.lambda_reg * terms['reg']
    if self.ablation != 'statics_only':
      fixed_statics = tf.stop_gradient(statics)
      p = self.frame_dynamics.encode_video(video, fixed_statics, training=training)
      x_hat = self.frame_dynamics.decode_video(p, fixed_statics, training=training)
      images['frames'] = models.fold_time(x_hat)
      terms['frame'] = losses.reconstruction(frames, images['frames'], c.reduction)
      codes_p = tf.stop_gradient(p)
      p_hat = self.predictor(dynamics, codes_p[:, 0], steps=t - 1, training=training)
      terms['pred'] = losses.info_nce(p_hat, codes_p[:, 1:])
      terms['pred_accuracy'] = losses.info_nce_accuracy(p_hat, codes_p[:, 1:])
      loss += c.lambda_frame * terms['frame'] + c.lambda_pred * terms['pred']
    terms['loss'] = loss
    return terms, images

  def _train_step(self, video) -> Dict[str, tf.Tensor]:
    with tf.GradientTape() as tape:
      terms = self.loss_terms(video, training=True)
    grads = tape.gradient(terms['loss'], self.variables)
    grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, self.variables)]
    self.optimizer.apply_gradients(zip(grads, self.variables))
    self.step.assign_add(1)
    terms['grad_norm'] = tf.linalg.global_norm(grads)
    return terms

  def set_learning_rate(self, learning_rate: float) -> None:
    self.optimizer.learning_rate.assign(float(learning_rate))

  def checkpoint_objects(self) -> Dict[str, object]:
    """The trained models, the optimizer and the step counter. The frozen stage-1 module is saved too (so a stage-2
    run is self-contained), but only ever restored, never changed."""
    return {'frame_autoencoder': self.autoencoder, 'block_stn': self.stn, 'video_encoder': self.video_encoder,
            'frame_dynamics': self.frame_dynamics, 'predictor': self.predictor, 'stage2_optimizer': self.optimizer,
            'stage2_step': self.step}
