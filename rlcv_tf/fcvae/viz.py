"""The pictures and curves of the draft's results chapter (S = seed 002 line; spec 3.6), as arrays and PNG files.

  reconstruction_sheet   originals in odd columns, reconstructions to their right (Figs. 3.3 / 3.5, S:L467)
  latent_map_sheet       each frame beside its k posterior-mean maps (Figs. 6.26-6.29, 6.57), one shared
                         symmetric scale [-a, a] -> [0, 1] so maps compare
  mean_abs_mu            the mean |mu| map per filter over a test set (Figs. 6.39 / 6.74 / 6.78: 10,000 frames)
  best_of_prior          best-of-10 prior samples (Figs. 6.30 / 6.61). The draft picks "best" by eye; here
                         [proposal, spec 3.6] the candidate with the lowest self-consistency error
                         ||Dec(mu(Dec(z))) - Dec(z)||_2 (a sample the model re-encodes and decodes to itself)
  traversal              one unit, or one whole filter, set to each value of [-3, 3] on a frame's posterior mean
                         (S:L865, L1129 "alter latent space variable and show reconstruction"; the Tkinter slider
                         of S:L877 is replaced by these strips)
  noise_strip            N(0, s^2) noise added to one filter at a time (S:L1213 "add noise to filters")
  mcmc_sheet             the recorded steps of an MCMC chain (Figs. 6.35, 6.62-6.73)
  write_curves           per-epoch reconstruction and KL (train / validation) as CSV, and PNG with matplotlib
                         (S:L1126 "plot reconstruction loss and KL divergence")
  plot_beta_sweep        final reconstruction vs KL over beta (Sec. 6.9 "no free lunch", S:L1428-1433)

Images are Bernoulli means in [0, 1]. Functions take the model (the `models` interface) and NumPy arrays; the
matplotlib figures import it lazily (the library runs without it).
"""

import csv
import os
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np
from rlcv_tf.core import images as images_lib

UNIT_RANGE = (0.0, 1.0)
TRAVERSAL_VALUES = tuple(np.linspace(-3.0, 3.0, 9))
NOISE_SCALES = (0.0, 0.5, 1.0, 2.0, 4.0)


def _batched(fn, x: np.ndarray, batch: int = 64) -> np.ndarray:
  return np.concatenate([np.asarray(fn(x[i:i + batch])) for i in range(0, len(x), batch)])


def encode_means(model, images: np.ndarray, batch: int = 64) -> np.ndarray:
  """Posterior means (VAEs) or codes (AEs) of `images`, inference mode."""
  if model.variational:
    return _batched(lambda x: model.encode(x, training=False)[0].numpy(), images, batch)
  return _batched(lambda x: model.encode(x, training=False).numpy(), images, batch)


def decode_images(model, z: np.ndarray, batch: int = 64) -> np.ndarray:
  return _batched(lambda v: model.decode_images(v, training=False).numpy(), np.asarray(z, np.float32), batch)


def reconstruct(model, images: np.ndarray, batch: int = 64) -> np.ndarray:
  """Decoded posterior means (VAEs) / codes (AEs)."""
  return decode_images(model, encode_means(model, images, batch), batch)


# --------------------------------------------------------------------------------------------- sheets
def reconstruction_sheet(model, images: np.ndarray, cols: int = 8) -> np.ndarray:
  """uint8 grid: originals in odd columns, their reconstructions immediately to the right."""
  rebuilt = reconstruct(model, images)
  pairs = np.stack([images, rebuilt], axis=1).reshape((-1,) + images.shape[1:])
  return images_lib.make_grid(pairs, cols=2 * max(1, cols // 2), value_range=UNIT_RANGE)


def _upsample(maps: np.ndarray, height: int, width: int) -> np.ndarray:
  """Nearest-neighbour [N, m, n] -> [N, height, width] (maps beside their frames)."""
  rows = (np.arange(height) * maps.shape[1]) // height
  cols = (np.arange(width) * maps.shape[2]) // width
  return maps[:, rows][:, :, cols]


def latent_map_sheet(model, images: np.ndarray, scale: Optional[float] = None) -> np.ndarray:
  """uint8 grid, one row per frame: the frame (first channel), then its k mu maps upsampled to the frame size,
  mapped from [-scale, scale] (default max |mu|) to [0, 1] (grey 0.5 = 0)."""
  mu = encode_means(model, images)
  if mu.ndim != 4:
    raise ValueError('latent maps need a spatial latent (the FCVAE or the conv AE)')
  if scale is None:
    scale = float(np.abs(mu).max()) or 1.0
  h, w = images.shape[1:3]
  tiles = []
  for i in range(len(images)):
    tiles.append(images[i, :, :, :1])
    maps = _upsample(np.moveaxis(mu[i], -1, 0), h, w)
    tiles.extend(((maps + scale) / (2 * scale))[..., None])
  return images_lib.make_grid(np.clip(np.stack(tiles), 0, 1), cols=1 + mu.shape[-1], value_range=UNIT_RANGE)


def mean_abs_mu(model, images: np.ndarray, batch: int = 64) -> np.ndarray:
  """mean over images of |mu|: [m, n, k] (spatial) or [d] (dense)."""
  total, count = 0.0, 0
  for i in range(0, len(images), batch):
    mu = encode_means(model, images[i:i + batch], batch)
    total = total + np.abs(mu).sum(axis=0)
    count += len(mu)
  return total / max(count, 1)


def mean_activation_sheet(mean_map: np.ndarray, size: int = 84) -> np.ndarray:
  """uint8 grid of the k maps of `mean_abs_mu` ([m, n, k]) on one scale [0, max], upsampled to size x size."""
  maps = np.moveaxis(np.asarray(mean_map), -1, 0)
  top = float(maps.max()) or 1.0
  return images_lib.make_grid(_upsample(maps / top, size, size)[..., None], rows=1, value_range=UNIT_RANGE)


# --------------------------------------------------------------------------------------------- sampling
def self_consistency_error(model, z: np.ndarray) -> np.ndarray:
  """||Dec(mu(Dec(z))) - Dec(z)||_2 per sample [N]."""
  x = decode_images(model, z)
  again = reconstruct(model, x)
  return np.sqrt(np.sum((again - x).reshape(len(x), -1) ** 2, axis=1))


def prior_draws(model, num: int, seed: int) -> np.ndarray:
  """`num` prior draws z ~ N(0, I) (VAEs) or from the code Gaussian (AEs)."""
  rng = np.random.default_rng(seed)
  noise = rng.standard_normal((num,) + tuple(model.latent_shape)).astype(np.float32)
  if model.variational:
    return noise
  return model.code_mean.numpy() + model.code_std.numpy() * noise


def best_of_prior(model, num: int = 8, candidates: int = 10, seed: int = 0) -> Dict[str, np.ndarray]:
  """For each of `num` outputs, the best of `candidates` prior draws by self-consistency error.

  Returns {'images': [num, ...] the chosen samples, 'errors': [num] their errors, 'all_errors': [num, candidates],
  'z': [num, ...]}.
  """
  z = prior_draws(model, num * candidates, seed)
  errors = self_consistency_error(model, z).reshape(num, candidates)
  pick = errors.argmin(axis=1)
  chosen = z.reshape((num, candidates) + z.shape[1:])[np.arange(num), pick]
  return {'images': decode_images(model, chosen), 'errors': errors[np.arange(num), pick], 'all_errors': errors,
          'z': chosen}


# --------------------------------------------------------------------------------------------- traversals
def traversal(model, image: np.ndarray, unit: Optional[Sequence[int]] = None, filter_index: Optional[int] = None,
              values: Iterable[float] = TRAVERSAL_VALUES) -> np.ndarray:
  """Decoded images [V, H, W, C]: the frame's posterior mean with one `unit` (an index into the latent, e.g.
  (i, j, f) or (d,)) or every unit of filter `filter_index` set to each value."""
  if (unit is None) == (filter_index is None):
    raise ValueError('give exactly one of unit and filter_index')
  mu = encode_means(model, image[None])[0]
  zs = []
  for v in values:
    z = mu.copy()
    if unit is not None:
      z[tuple(unit)] = v
    else:
      z[..., filter_index] = v
    zs.append(z)
  return decode_images(model, np.stack(zs))


def traversal_sheet(model, image: np.ndarray, mode: str = 'filter',
                    values: Iterable[float] = TRAVERSAL_VALUES) -> np.ndarray:
  """uint8 grid, one row per latent filter (mode 'filter': the whole filter; 'unit': the unit of that filter with the
  largest |mu| on this frame) or per dense latent dimension, one column per value."""
  values = tuple(values)
  mu = encode_means(model, image[None])[0]
  rows = []
  if mu.ndim == 1:
    for d in range(mu.shape[0]):
      rows.append(traversal(model, image, unit=(d,), values=values))
  else:
    for f in range(mu.shape[-1]):
      if mode == 'filter':
        rows.append(traversal(model, image, filter_index=f, values=values))
      else:
        i, j = np.unravel_index(np.abs(mu[..., f]).argmax(), mu.shape[:2])
        rows.append(traversal(model, image, unit=(i, j, f), values=values))
  return images_lib.make_grid(np.concatenate(rows), cols=len(values), value_range=UNIT_RANGE)


def noise_strip(model, image: np.ndarray, scales: Iterable[float] = NOISE_SCALES, seed: int = 0) -> np.ndarray:
  """uint8 grid, one row per filter (or dense dimension): N(0, s^2) noise added to that filter of the frame's
  posterior mean, one column per scale s."""
  scales = tuple(scales)
  rng = np.random.default_rng(seed)
  mu = encode_means(model, image[None])[0]
  zs = []
  for f in range(mu.shape[-1]):
    noise = rng.standard_normal(mu.shape[:-1]).astype(np.float32)
    for s in scales:
      z = mu.copy()
      z[..., f] += s * noise
      zs.append(z)
  return images_lib.make_grid(decode_images(model, np.stack(zs)), cols=len(scales), value_range=UNIT_RANGE)


def mcmc_sheet(result: Dict[str, object]) -> np.ndarray:
  """uint8 grid of `mcmc.run_chain`'s recorded images: one row per recorded step (0 = Dec(z_0))."""
  steps = sorted(result['images'])
  stacked = np.concatenate([result['images'][t] for t in steps])
  return images_lib.make_grid(stacked, rows=len(steps), value_range=UNIT_RANGE)


# --------------------------------------------------------------------------------------------- curves
def _pyplot():
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ImportError('matplotlib is missing (the figures need it): pip install "matplotlib>=3.8"') from None
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


CURVE_FIELDS = ('epoch', 'step', 'learning_rate', 'train_recon', 'train_kl', 'val_recon', 'val_kl', 'val_loss')


def write_curves(rows: List[Dict[str, float]], csv_path: str, png_path: Optional[str] = None) -> Optional[str]:
  """Writes the per-epoch rows (CURVE_FIELDS) as CSV and, when matplotlib is installed, a PNG of reconstruction
  and KL against epochs; returns the PNG path, or None without matplotlib."""
  os.makedirs(os.path.dirname(os.path.abspath(csv_path)), exist_ok=True)
  with open(csv_path, 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=CURVE_FIELDS, extrasaction='ignore')
    writer.writeheader()
    writer.writerows(rows)
  if png_path is None or not rows:
    return None
  try:
    plt = _pyplot()
  except ImportError:
    return None
  epochs = [r['epoch'] for r in rows]
  fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
  for ax, key, title in ((axes[0], 'recon', 'reconstruction (per image)'), (axes[1], 'kl', 'KL (nats per image)')):
    for split, style in (('train', '-'), ('val', '--')):
      ax.plot(epochs, [r.get(f'{split}_{key}', np.nan) for r in rows], style, label=split)
    ax.set_xlabel('epoch')
    ax.set_title(title)
    ax.legend()
  fig.tight_layout()
  fig.savefig(png_path, dpi=100)
  plt.close(fig)
  return png_path


def plot_beta_sweep(results: Sequence[Dict[str, float]], path: str, title: str = '') -> str:
  """The no-free-lunch plot: final reconstruction against KL, one point per beta (labelled), and both against
  beta. `results`: [{'beta', 'recon', 'kl'}, ...]. Needs matplotlib."""
  plt = _pyplot()
  results = sorted(results, key=lambda r: r['beta'])
  betas = [r['beta'] for r in results]
  fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
  axes[0].plot([r['kl'] for r in results], [r['recon'] for r in results], 'o-')
  for r in results:
    axes[0].annotate(f'beta {r["beta"]:g}', (r['kl'], r['recon']), textcoords='offset points', xytext=(4, 4))
  axes[0].set_xlabel('KL (nats per image)')
  axes[0].set_ylabel('reconstruction BCE (per image)')
  axes[1].plot(betas, [r['recon'] for r in results], 'o-', label='reconstruction')
  axes[1].plot(betas, [r['kl'] for r in results], 's--', label='KL')
  axes[1].set_xlabel('beta')
  axes[1].legend()
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


def save(grid: np.ndarray, path: str, scale: int = 2) -> str:
  return images_lib.save_png(grid, path, scale=scale)


def write_sheets(model, images: np.ndarray, out_dir: str, prefix: str = '', seed: int = 0,
                 num_mean: int = 10_000) -> Dict[str, str]:
  """Every picture of a trained model into out_dir: reconstructions, best-of-10 prior samples, MCMC chain, the
  traversals and noise strips of the first frame, and (spatial latents) latent maps and the mean |mu| maps over
  up to `num_mean` frames. Returns {name: path}."""
  from rlcv_tf.fcvae import mcmc  # pylint: disable=g-import-not-at-top
  out = {}
  shown = images[:8]
  out['reconstructions'] = save(reconstruction_sheet(model, shown), os.path.join(out_dir, f'{prefix}recon.png'))
  best = best_of_prior(model, num=8, seed=seed)
  out['prior_best_of_10'] = save(images_lib.make_grid(best['images'], rows=1, value_range=UNIT_RANGE),
                                 os.path.join(out_dir, f'{prefix}prior_best_of_10.png'))
  out['traversal_filter'] = save(traversal_sheet(model, images[0], 'filter'),
                                 os.path.join(out_dir, f'{prefix}traversal.png'))
  out['noise'] = save(noise_strip(model, images[0], seed=seed), os.path.join(out_dir, f'{prefix}noise.png'))
  if model.variational:
    chain = mcmc.model_chain(model, num=6, steps=20, record=(1, 2, 7, 19), seed=seed)
    out['mcmc'] = save(mcmc_sheet(chain), os.path.join(out_dir, f'{prefix}mcmc.png'))
  if len(model.latent_shape) == 3:
    out['traversal_unit'] = save(traversal_sheet(model, images[0], 'unit'),
                                 os.path.join(out_dir, f'{prefix}traversal_unit.png'))
    out['latent_maps'] = save(latent_map_sheet(model, images[:4]), os.path.join(out_dir, f'{prefix}latent_maps.png'))
    mean_map = mean_abs_mu(model, images[:num_mean])
    out['mean_abs_mu'] = save(mean_activation_sheet(mean_map, size=images.shape[1]),
                              os.path.join(out_dir, f'{prefix}mean_abs_mu.png'))
  return out
