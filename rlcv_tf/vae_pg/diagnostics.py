"""Seed-001 diagnostics: the gradients of the two losses at U (S:L560-567, R5), what the VAE keeps of the ball (R6,
Fig. 1), and a linear probe mu -> ball position (spec Sec. 7, a proposal: "the representation contains the ball").

  grad_norms_at_u     ||d(kappa L_PPO)/dU|| and ||dL_VAE/dU|| on one batch, U = the posterior means (the paper:
                      "evaluate gradient magnitudes of the different losses at the point where they are combined";
                      kappa > 1 because the PPO gradients there are much smaller). Norms over the whole batch
                      (Frobenius) and their ratio; L_VAE as in training (Bernoulli summed over pixels, all n frames).
  ball_pixel_error    mean squared error of the VAE's reconstruction (Bernoulli means) on the ball's pixels and on
                      the whole frame; a VAE that "drops the ball" has a ball error near the ball's own intensity
                      squared while its whole-frame error is small.
  ball_probe_r2       ridge regression from features to (ball_x, ball_y) fitted on one split, R^2 on another.
"""

from typing import Dict, Optional

import numpy as np
import tensorflow as tf

from rlcv_tf.vae_pg import policy as policy_lib
from rlcv_tf.vae_pg import ppo as ppo_lib
from rlcv_tf.vae_pg import vae as vae_lib


def grad_norms_at_u(learner, batch: ppo_lib.Batch, max_samples: int = 256, seed: int = 0) -> Dict[str, float]:
  """The gradient norms of kappa L_PPO and L_VAE with respect to U on up to `max_samples` samples (module
  docstring). kappa is the run's (1 for fixed/adapt); `kappa_needed` is the kappa that would equalise the two."""
  cfg = learner.cfg
  idx = np.arange(min(batch.size, max_samples))
  frames = tf.constant(batch.frames[idx])
  weights = tf.constant(batch.weights[idx])
  x = policy_lib.frames_to_units(frames)
  with tf.GradientTape(persistent=True) as tape:
    mu, logvar = learner.model.encoder(x)
    tape.watch(mu)
    u = tf.reshape(mu, (-1, cfg.num_frames * cfg.latent_dim))
    logits, values = learner.model.heads(u)
    terms = ppo_lib.ppo_loss(logits, values, tf.constant(batch.actions[idx]), tf.constant(batch.log_prob_old[idx]),
                             tf.constant(batch.advantages[idx]), tf.constant(batch.returns[idx]), weights,
                             cfg.clip_eps, cfg.c1, cfg.c2, cfg.c3, cfg.normalize_advantages)
    ppo = learner.kappa * terms['loss']
    eps = tf.random.stateless_normal(tf.shape(mu), (seed, 1))
    recon = learner.vae.decoder(mu + tf.exp(0.5 * logvar) * eps)
    nll, kl = vae_lib.vae_terms(x, recon, mu, logvar)
    vae = tf.reduce_mean(nll + cfg.beta * kl)
  g_ppo = tape.gradient(ppo, mu)
  g_vae = tape.gradient(vae, mu)
  del tape
  n_ppo = float(tf.norm(g_ppo))
  n_vae = float(tf.norm(g_vae))
  ppo_unscaled = n_ppo / learner.kappa
  return {'grad_u/ppo': n_ppo, 'grad_u/vae': n_vae, 'grad_u/vae_over_ppo': n_vae / max(n_ppo, 1e-30),
          'grad_u/kappa_needed': n_vae / max(ppo_unscaled, 1e-30)}


def reconstruct(vae: vae_lib.VAE, frames: np.ndarray, batch_size: int = 256) -> np.ndarray:
  """Bernoulli means of the reconstructions from the posterior means, float32 [N, S, S, 1] in [0, 1]."""
  out = []
  for i in range(0, len(frames), batch_size):
    x = vae_lib.frames_to_float(frames[i:i + batch_size])
    mu, _ = vae.encoder(x)
    out.append(tf.sigmoid(vae.decoder(mu)).numpy())
  return np.concatenate(out) if out else np.zeros((0,) + frames.shape[1:], np.float32)


def ball_masks(ball_x: np.ndarray, ball_y: np.ndarray, image_size: int, ball_box=(1, 1)) -> np.ndarray:
  """bool [N, S, S]: a (width, height) box whose top-left pixel is (floor(ball_x), floor(ball_y)) in the stored
  frame's pixels; rows with a negative position (no ball in play) are all False."""
  n = len(ball_x)
  w, h = int(ball_box[0]), int(ball_box[1])
  masks = np.zeros((n, image_size, image_size), bool)
  for i in range(n):
    if ball_x[i] < 0 or ball_y[i] < 0:
      continue
    x, y = int(np.floor(ball_x[i])), int(np.floor(ball_y[i]))
    masks[i, max(y, 0):min(y + h, image_size), max(x, 0):min(x + w, image_size)] = True
  return masks


def ball_pixel_error(frames: np.ndarray, recon: np.ndarray, masks: np.ndarray) -> Dict[str, float]:
  """MSE on the ball's pixels and on the whole frame (frames uint8 or [0, 1], recon in [0, 1]), over frames with a
  ball; also the ball's mean intensity (what a reconstruction without the ball would get wrong, squared)."""
  x = vae_lib.frames_to_float(frames).numpy()[..., 0]
  r = np.asarray(recon, np.float32)[..., 0]
  has = masks.reshape(len(masks), -1).any(axis=1)
  if not has.any():
    return {'frames_with_ball': 0}
  x, r, m = x[has], r[has], masks[has]
  sq = (x - r) ** 2
  return {'frames_with_ball': int(has.sum()), 'mse_ball': float(sq[m].mean()), 'mse_frame': float(sq.mean()),
          'ball_intensity': float(x[m].mean()), 'ball_fraction_of_pixels': float(m.mean()),
          'recon_at_ball': float(r[m].mean())}


def ridge_fit(features: np.ndarray, targets: np.ndarray, l2: float = 1e-3):
  """Weights [D + 1, K] of ridge regression with an unpenalised bias (closed form)."""
  f = np.concatenate([features, np.ones((len(features), 1))], axis=1).astype(np.float64)
  reg = l2 * np.eye(f.shape[1])
  reg[-1, -1] = 0.0
  return np.linalg.solve(f.T @ f + reg, f.T @ targets.astype(np.float64))


def ball_probe_r2(train_features, train_targets, test_features, test_targets, l2: float = 1e-3) -> Optional[float]:
  """R^2 (averaged over the target columns) of a ridge probe fitted on train and scored on test."""
  if len(train_features) < 2 or len(test_features) < 2:
    return None
  w = ridge_fit(train_features, train_targets, l2)
  pred = np.concatenate([test_features, np.ones((len(test_features), 1))], axis=1) @ w
  resid = ((test_targets - pred) ** 2).sum(axis=0)
  total = ((test_targets - test_targets.mean(axis=0)) ** 2).sum(axis=0)
  return float(np.mean(1.0 - resid / np.maximum(total, 1e-12)))
