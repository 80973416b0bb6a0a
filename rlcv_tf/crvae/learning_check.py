"""Did an RGB Stage-1 run learn something a user can see? Held-out numbers against trivial baselines.

A model can pass every maths test and still learn nothing visible: the posterior collapses (KL near zero), the
decoder outputs one average bird, and with an adversarial term it outputs a sharp bird unrelated to its input, whose
reconstruction error is then worse than predicting the mean image. These diagnostics compare the model with those
failure modes on held-out images:

  reconstruction_ratio   MSE(Dec(mu(x)), x) / MSE(mean image, x): 1.0 = no better than the mean image.
  kl_nats                held-out posterior KL to N(0, I) per image, summed over the latent (and per block).
  sample_spread          mean over pixels of the std across prior samples, divided by the same for held-out images:
                         near 0 = every sample is the same picture.

`check` turns them into a pass/fail line with the thresholds named, written into eval.json and printed by the run.
The default thresholds are deliberately loose (they separate "learned" from "collapsed", not good from better).
"""

import dataclasses
from typing import Dict, Tuple

import numpy as np
import tensorflow as tf

from rlcv_tf.crvae import losses


@dataclasses.dataclass(frozen=True)
class Thresholds:
  max_reconstruction_ratio: float = 0.6     # held-out reconstruction at most this fraction of the mean-image error
  min_kl_nats: float = 20.0                 # posterior KL per image at least this (a collapsed posterior is ~0-10)
  min_sample_spread: float = 0.3            # prior samples vary at least this fraction of the data's spread


def diagnostics(vae, held_images: np.ndarray, num_samples: int = 64, seed: int = 0,
                batch_size: int = 100) -> Dict[str, float]:
  """Held-out learning diagnostics of an RGB VAE (inference mode): see the module docstring.

  Args:
    vae: a built `networks.ImageVAE` (Gaussian likelihood; images in [-1, 1]).
    held_images: float32 [N, R, R, C] held-out images (N >= 2).
    num_samples: prior samples for `sample_spread`.
    seed: seed of the prior samples.
    batch_size: images per forward pass.

  Returns:
    dict with reconstruction_mse, mean_image_mse, reconstruction_ratio, kl_nats, kl_block_{t} (0-based),
    sample_spread.
  """
  held_images = np.asarray(held_images, np.float32)
  if len(held_images) < 2:
    raise ValueError(f'held_images: need at least 2 images for a mean-image baseline, got {len(held_images)}')
  squared, kl_sum = 0.0, None
  for start in range(0, len(held_images), batch_size):
    x = tf.convert_to_tensor(held_images[start:start + batch_size])
    mu, logvar = vae.encode(x, training=False)
    recon = vae.decode(mu, training=False)
    squared += float(tf.reduce_sum(tf.square(recon - x)))
    kl = losses.gaussian_kl_per_block(mu, logvar, vae.num_blocks).numpy() * int(x.shape[0])
    kl_sum = kl if kl_sum is None else kl_sum + kl
  count = held_images.size
  recon_mse = squared / count
  mean_image_mse = float(np.mean(np.square(held_images - held_images.mean(axis=0, keepdims=True))))
  kl_blocks = kl_sum / len(held_images)
  z = tf.random.stateless_normal((num_samples,) + tuple(vae.config.latent_shape), seed=(seed, 29))
  samples = np.concatenate([vae.decode(z[i:i + batch_size], training=False).numpy()
                            for i in range(0, num_samples, batch_size)])
  data_spread = float(np.mean(np.std(held_images, axis=0)))
  out = {'reconstruction_mse': recon_mse, 'mean_image_mse': mean_image_mse,
         'reconstruction_ratio': recon_mse / max(mean_image_mse, 1e-12), 'kl_nats': float(kl_blocks.sum()),
         'sample_spread': float(np.mean(np.std(samples, axis=0))) / max(data_spread, 1e-12)}
  out.update({f'kl_block_{t}': float(v) for t, v in enumerate(kl_blocks)})
  return out


def check(diag: Dict[str, float], thresholds: Thresholds = Thresholds()) -> Tuple[bool, str]:
  """(passed, one line naming each measured value against its threshold)."""
  parts = [
      (diag['reconstruction_ratio'] <= thresholds.max_reconstruction_ratio,
       f'held-out reconstruction {diag["reconstruction_ratio"]:.2f}x the mean-image error (want <= '
       f'{thresholds.max_reconstruction_ratio:g})'),
      (diag['kl_nats'] >= thresholds.min_kl_nats,
       f'posterior KL {diag["kl_nats"]:.1f} nats/image (want >= {thresholds.min_kl_nats:g})'),
      (diag['sample_spread'] >= thresholds.min_sample_spread,
       f'prior samples vary {diag["sample_spread"]:.2f}x as much as the data (want >= '
       f'{thresholds.min_sample_spread:g})'),
  ]
  passed = all(ok for ok, _ in parts)
  failed = [text for ok, text in parts if not ok]
  if passed:
    return True, 'learning check passed: ' + '; '.join(text for _, text in parts)
  return False, ('learning check FAILED: ' + '; '.join(failed) + '. Passed: ' +
                 ('; '.join(text for ok, text in parts if ok) or 'none'))
