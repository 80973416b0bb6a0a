"""Did an RGB Stage-1 run learn something a user can see? Held-out numbers against trivial baselines.

A model can pass every maths test and still learn nothing visible: the posterior collapses (KL near zero), the
decoder outputs one average bird, and with an adversarial term it outputs a sharp bird unrelated to its input, whose
reconstruction error is then worse than predicting the mean image. These diagnostics compare the model with those
failure modes on held-out images:

  reconstruction_ratio   MSE(Dec(mu(x)), x) / MSE(mean image, x): 1.0 = no better than the mean image.
  kl_nats                held-out posterior KL to N(0, I) per image, summed over the latent (and per block).
  sample_spread          mean over pixels of the std across N(0, I) prior samples, divided by the same for held-out
                         images: near 0 = every sample is the same picture.
  sample_colour_distance total-variation distance between the colour histograms (`colour_histogram`) of the prior
                         samples and of the held-out images: 0 = the same mix of colours, 1 = none in common.
  expost_spread,         the same two for samples of the ex-post Gaussian (`expost_prior`: the aggregate
  expost_colour_distance posterior's mean and covariance, fitted on training images), when one is given.

Why two samplers: after a short run the N(0, I) samples of crVAE-GAN are one bird in a few tints (spread 0.21,
colour distance 0.59 on the default), while samples that follow the aggregate posterior's correlations are varied
birds (0.78, 0.15) (docs/crvae_default_diagnosis.md). So the check asks whether the latent space holds varied
images, which the ex-post samples show, and reports the N(0, I) samples beside it without failing on them
(`Thresholds.check_prior_samples` makes them count). Without an ex-post sampler the prior samples are checked.

`check` turns the numbers into a pass/fail line with the thresholds named, written into eval.json and printed by
the run. The thresholds are loose: they separate "learned" from "collapsed", not good from better. The colour
threshold was set on synth_birds (docs/crvae_default_diagnosis.md): two sets of 256 real images differ by about
0.1, the default's ex-post samples by 0.15, its N(0, I) samples by 0.59.
"""

import dataclasses
from typing import Dict, Tuple

import numpy as np
import tensorflow as tf

from rlcv_tf.core.vaegan import losses

GREY_BIN = 12                       # the colour histogram's last bin: unsaturated (grey, white, black) subjects


@dataclasses.dataclass(frozen=True)
class Thresholds:
  max_reconstruction_ratio: float = 0.6     # held-out reconstruction at most this fraction of the mean-image error
  min_kl_nats: float = 20.0                 # posterior KL per image at least this (a collapsed posterior is ~0-10)
  min_sample_spread: float = 0.3            # samples vary at least this fraction of the data's spread
  max_colour_distance: float = 0.3          # samples' colour mix at most this far from the data's (0..1)
  check_prior_samples: bool = False         # also fail on the N(0, I) samples when ex-post ones are measured


def colour_histogram(images: np.ndarray, bins: int = 12, top: int = 20, grey_saturation: float = 0.25) -> np.ndarray:
  """Counts [bins + 1] of each image's dominant colour: the mean hue of the `top` most saturated pixels
  (saturation x value) of the central crop (the middle half of each side, where the subject sits), in `bins`
  equal hue bins; the last bin counts images whose `top` pixels have mean saturation < `grey_saturation`.

  images: [N, R, R, 3] in [-1, 1].
  """
  x = (np.clip(np.asarray(images, np.float32), -1.0, 1.0) + 1.0) / 2.0
  r = x.shape[1]
  crop = x[:, r // 4:r - r // 4, r // 4:r - r // 4]
  hsv = tf.image.rgb_to_hsv(crop).numpy().reshape(len(x), -1, 3)
  k = min(top, hsv.shape[1])
  strength = hsv[:, :, 1] * hsv[:, :, 2]
  idx = np.argsort(strength, axis=1)[:, -k:]
  chosen = np.take_along_axis(hsv, idx[:, :, None], axis=1)                    # [N, k, 3]
  # The mean hue on the circle, so that reds just below 1.0 and just above 0.0 average to red.
  angle = 2 * np.pi * chosen[:, :, 0]
  hue = (np.arctan2(np.sin(angle).mean(1), np.cos(angle).mean(1)) / (2 * np.pi)) % 1.0
  which = np.minimum((hue * bins).astype(np.int64), bins - 1)
  which[chosen[:, :, 1].mean(axis=1) < grey_saturation] = bins
  return np.bincount(which, minlength=bins + 1)


def colour_distance(a: np.ndarray, b: np.ndarray) -> float:
  """Total-variation distance between the colour histograms of image sets `a` and `b` (see `colour_histogram`)."""
  ha, hb = colour_histogram(a), colour_histogram(b)
  return 0.5 * float(np.abs(ha / ha.sum() - hb / hb.sum()).sum())


def _decode(vae, z, batch_size):
  return np.concatenate([vae.decode(z[i:i + batch_size], training=False).numpy()
                         for i in range(0, int(z.shape[0]), batch_size)])


def diagnostics(vae, held_images: np.ndarray, num_samples: int = 256, seed: int = 0,
                batch_size: int = 100, expost=None) -> Dict[str, float]:
  """Held-out learning diagnostics of an RGB VAE (inference mode): see the module docstring.

  Args:
    vae: a built `networks.ImageVAE` (Gaussian likelihood; images in [-1, 1]).
    held_images: float32 [N, R, R, C] held-out images (N >= 2).
    num_samples: samples of each sampler for the spread and colour measures.
    seed: seed of the samples.
    batch_size: images per forward pass.
    expost: an `expost_prior.ExPostGaussian` fitted on training images, or None.

  Returns:
    dict with reconstruction_mse, mean_image_mse, reconstruction_ratio, kl_nats, kl_block_{t} (0-based),
    sample_spread, sample_colour_distance (RGB only), and with `expost` expost_spread, expost_colour_distance.
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
  data_spread = max(float(np.mean(np.std(held_images, axis=0))), 1e-12)
  rgb = held_images.shape[-1] == 3
  out = {'reconstruction_mse': recon_mse, 'mean_image_mse': mean_image_mse,
         'reconstruction_ratio': recon_mse / max(mean_image_mse, 1e-12), 'kl_nats': float(kl_blocks.sum())}
  samplers = {'sample': tf.random.stateless_normal((num_samples,) + tuple(vae.config.latent_shape),
                                                   seed=(seed, 29))}
  if expost is not None:
    samplers['expost'] = expost.sample(num_samples, seed=(seed, 31))
  for name, z in samplers.items():
    samples = _decode(vae, z, batch_size)
    out[f'{name}_spread'] = float(np.mean(np.std(samples, axis=0))) / data_spread
    if rgb:
      out[f'{name}_colour_distance'] = colour_distance(samples, held_images)
  out.update({f'kl_block_{t}': float(v) for t, v in enumerate(kl_blocks)})
  return out


def check(diag: Dict[str, float], thresholds: Thresholds = Thresholds()) -> Tuple[bool, str]:
  """(passed, one line naming each measured value against its threshold; unchecked numbers after 'Not checked')."""
  t = thresholds
  parts = [
      (diag['reconstruction_ratio'] <= t.max_reconstruction_ratio,
       f'held-out reconstruction {diag["reconstruction_ratio"]:.2f}x the mean-image error (want <= '
       f'{t.max_reconstruction_ratio:g})'),
      (diag['kl_nats'] >= t.min_kl_nats, f'posterior KL {diag["kl_nats"]:.1f} nats/image (want >= {t.min_kl_nats:g})'),
  ]
  shown = []

  def sampler_parts(prefix, label):
    out = [(diag[f'{prefix}_spread'] >= t.min_sample_spread,
            f'{label} vary {diag[f"{prefix}_spread"]:.2f}x as much as the data (want >= {t.min_sample_spread:g})')]
    if f'{prefix}_colour_distance' in diag:
      out.append((diag[f'{prefix}_colour_distance'] <= t.max_colour_distance,
                  f'{label} colour mix {diag[f"{prefix}_colour_distance"]:.2f} from the data\'s (want <= '
                  f'{t.max_colour_distance:g})'))
    return out

  prior = sampler_parts('sample', 'N(0, I) samples')
  if 'expost_spread' in diag:
    parts += sampler_parts('expost', 'ex-post samples')
    if t.check_prior_samples:
      parts += prior
    else:
      shown = [text.split(' (want')[0] for _, text in prior]
  else:
    parts += prior
  passed = all(ok for ok, _ in parts)
  tail = ('. Not checked: ' + '; '.join(shown)) if shown else ''
  if passed:
    return True, 'learning check passed: ' + '; '.join(text for _, text in parts) + tail
  failed = [text for ok, text in parts if not ok]
  return False, ('learning check FAILED: ' + '; '.join(failed) + '. Passed: ' +
                 ('; '.join(text for ok, text in parts if ok) or 'none') + tail)

