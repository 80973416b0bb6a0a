"""Generation tools of Chapter 6: attribute swaps, cos^2 interpolation in the conditional prior, progressive
generation, the 2-stage generation tool and 3-way preference sheets (thesis Sec. 6.5-6.6, T:L6002-6175; spec ch5_6
Part B3 "Generation tools", §7 item 46).

The models are `networks.AttributeVAE`s: `encode(x, a) -> (mu, logvar)`, `prior_params(a) -> (mu_p, logvar_p)`,
`decode(z, a) -> (u, x)` with per-step attributes [B, T, N] accepted by the recurrent models, `per_step(a)`,
`num_blocks`, `config`. Images are float32 in [-1, 1], attribute vectors +-1 [B, N], latents [B, H, W, n_z] cut into T
channel blocks **numbered t = 1..T as in the thesis** (block t = channels [(t-1) n_z/T, t n_z/T), the convention of
`core.vaegan.latent_tools`, whose block helpers are used here). Every network call is in inference mode.

* Attribute swap (Sec. 6.5, the `edit` endpoint of `export`): `attribute_swap_grid` encodes real faces and decodes the
  posterior mean under the attribute vector with one attribute flipped (a_n -> -a_n) per column; `prior_swap_grid`
  does the same for prior samples with fixed noise, z = mu_p(a') + sigma_p(a') * noise.
* Content interpolation (Sec. 6.5.3, Fig. 6.6, T:L6072-6075): `interp_cos2` gives Z(psi) = cos^2(psi) Z1 +
  (1 - cos^2(psi)) Z2 for psi evenly spaced in [0, pi/2]; `prior_interpolation_sheet` draws two modes Z1, Z2 from
  p(z|a) for the same a (the thesis's figure) and decodes the path; with `attributes_end` the second mode comes from
  p(z|a') and the attribute vector is interpolated with the same weights (an extension, not in the thesis).
* Progressive generation (Sec. 6.5.4, Fig. 6.7, T:L6112-6118): step i decodes [(z_1, a_1) ... (z_i, a_i), (0, 0) ...
  (0, 0)]: the later steps get zero latents **and** zero attended attributes. Recurrent models only (cVAE-GAN's FC
  latent has no steps). `attribute_appearance_steps` reads the progression with an attribute classifier to find the
  step at which each attribute appears, for comparison with the attention's argmax step (Table 6.1).
* 2-stage tool (Sec. 6.6, Fig. 6.8, T:L6158-6175): sample candidates from p(z|a), keep the picked one, resample one
  latent block from p(z_t|a) with every other block fixed. The thesis locates the block "that performs a minor
  adjustment on the content of the generation" by trial and error (z_5 of 8 for its model). `block=None` automates
  that trial: every block is resampled a few times, the mean absolute pixel change against the picked image is
  measured per block, and the block with the **smallest** change that is still at least `min_change_fraction` of
  the largest block's change is taken: a minor adjustment (not a block that redraws the face) that still changes
  something (not a block the decoder ignores). The measured changes are returned so the choice can be checked.
  (The prior blocks are independent given a: the FC prior is a diagonal Gaussian, and the LSTM prior's block t
  depends on a_1..a_t only, so resampling z_t from N(mu_p,t, sigma_p,t) is exact.)
* Human preference (Table 6.2's 3-way test): `preference_sheets` writes one PNG per tuple with the models' images in
  a shuffled column order and a JSON key; `tally` counts a CSV of answers against the key.

Sheets are uint8 images (`core.images.make_grid`, which has no text): each tool returns a `Sheet` whose `columns`
(and `rows`) name what the grid's columns (rows) show, and whose `images` hold the float images.
"""

import csv
import json
import math
import os
from typing import Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from rlcv_tf.acvae import attention as attention_lib
from rlcv_tf.core import images as images_lib
from rlcv_tf.core.vaegan import latent_tools

# The 2-stage tool's automatic block choice: the smallest change that is at least this fraction of the largest.
MIN_CHANGE_FRACTION = 0.25
KEY_VERSION = 1


class Sheet(NamedTuple):
  """A labelled image sheet.

  image: uint8 [H, W, 3], the grid (row-major, white padding).
  columns: what each grid column shows, left to right.
  rows: what each grid row shows, top to bottom.
  images: the float images in [-1, 1], [rows, columns, R, R, 3].
  """
  image: np.ndarray
  columns: Tuple[str, ...]
  rows: Tuple[str, ...]
  images: np.ndarray


def _sheet(images: np.ndarray, columns: Sequence[str], rows: Sequence[str]) -> Sheet:
  images = np.asarray(images, np.float32)
  n_rows, n_cols = images.shape[:2]
  grid = images_lib.make_grid(images.reshape((n_rows * n_cols,) + images.shape[2:]), rows=n_rows, cols=n_cols)
  return Sheet(grid, tuple(columns), tuple(rows), images)


# ------------------------------------------------------------------------------------------------ helpers
def _num_attributes(vae) -> int:
  return int(vae.num_attributes)


def _attributes(vae, a, name: str = 'attributes') -> np.ndarray:
  """a as float32 [B, N] (a single vector [N] becomes [1, N]); the width is checked."""
  a = np.asarray(a, np.float32)
  if a.ndim == 1:
    a = a[None]
  n = _num_attributes(vae)
  if a.ndim != 2 or a.shape[1] != n:
    raise ValueError(f'{name}: got shape {a.shape}; valid shapes are [B, {n}] (or [{n}] for one vector): one +-1 '
                     f'entry per attribute of the model')
  return a


def _latents(vae, z, batch: int, name: str = 'z') -> np.ndarray:
  z = np.asarray(z, np.float32)
  shape = (batch,) + tuple(int(d) for d in vae.latent_shape)
  if z.shape != shape:
    raise ValueError(f'{name}: got shape {z.shape}; the valid shape is {shape} (batch, latent grid)')
  return z


def _decode(vae, z, a) -> np.ndarray:
  return np.asarray(vae.decode(tf.convert_to_tensor(z, tf.float32), tf.convert_to_tensor(a, tf.float32),
                               training=False)[1], np.float32)


def _prior_latent(vae, a, noise) -> np.ndarray:
  """z = mu_p(a) + exp(logvar_p(a) / 2) * noise."""
  mu_p, logvar_p = vae.prior_params(tf.convert_to_tensor(a, tf.float32), training=False)
  return np.asarray(mu_p) + np.exp(0.5 * np.asarray(logvar_p)) * np.asarray(noise, np.float32)


def _names(vae, names) -> List[str]:
  if names is None:
    config = getattr(vae, 'config', None)
    names = getattr(config, 'attribute_names', None) or [f'attr_{n}' for n in range(_num_attributes(vae))]
  names = [str(name) for name in names]
  if len(names) != _num_attributes(vae):
    raise ValueError(f'names: {len(names)} attribute names for a model of {_num_attributes(vae)} attributes; pass '
                     f'one name per attribute in the model\'s order (config.attribute_names)')
  return names


def _columns(names: Sequence[str], columns) -> List[int]:
  """Attribute indices from `columns` (None = all; ints or attribute names)."""
  if columns is None:
    return list(range(len(names)))
  out = []
  for column in columns:
    if isinstance(column, (int, np.integer)):
      if not 0 <= int(column) < len(names):
        raise ValueError(f'columns: attribute index {column} out of range; valid values are 0..{len(names) - 1} '
                         f'or attribute names {list(names)}')
      out.append(int(column))
    elif column in names:
      out.append(list(names).index(column))
    else:
      raise ValueError(f'columns: unknown attribute {column!r}; valid values are {list(names)} or their indices')
  return out


def flip_attribute(a, n: int) -> np.ndarray:
  """A copy of a [B, N] with attribute n negated (a_n -> -a_n)."""
  a = np.array(a, np.float32, copy=True)
  a[:, n] = -a[:, n]
  return a


def _check_recurrent(vae, tool: str):
  config = getattr(vae, 'config', None)
  if not getattr(config, 'recurrent', False):
    model = getattr(config, 'model', type(vae).__name__)
    raise ValueError(f'model: {tool} needs a channel-recurrent model (crvaegan or acvaegan), got {model!r}; '
                     f'cVAE(-GAN)\'s FC latent has no steps to fill in one at a time')


# ------------------------------------------------------------------------------------- attribute swaps
def attribute_swap_images(vae, images, attributes, columns: Sequence[int]) -> np.ndarray:
  """[B, 2 + K, R, R, 3]: per face, the real image, its reconstruction (the posterior mean of q(z|x, a) decoded
  under a) and, for each attribute index n in `columns`, the posterior mean decoded under a with a_n -> -a_n."""
  a = _attributes(vae, attributes)
  x = np.asarray(images, np.float32)
  if x.shape[0] != a.shape[0]:
    raise ValueError(f'images: {x.shape[0]} images for {a.shape[0]} attribute vectors; pass one vector per image')
  mu, _ = vae.encode(tf.convert_to_tensor(x), tf.convert_to_tensor(a), training=False)
  panels = [x, _decode(vae, mu, a)] + [_decode(vae, mu, flip_attribute(a, n)) for n in columns]
  return np.stack(panels, axis=1)


def attribute_swap_grid(vae, images, attributes, names: Optional[Sequence[str]] = None,
                        columns: Optional[Sequence[Union[int, str]]] = None) -> Sheet:
  """One face per row: real, reconstruction, then one flipped attribute per column (Sec. 6.5).

  Args:
    vae: the generator.
    images: real faces [B, R, R, 3] in [-1, 1].
    attributes: their attribute vectors [B, N] (+-1).
    names: the N attribute names (None: `vae.config.attribute_names`).
    columns: the attributes to flip, as indices or names (None: all N).

  Returns:
    Sheet with columns ('real', 'reconstruction', 'flip <name>', ...) and rows ('face 0', ...).
  """
  names = _names(vae, names)
  cols = _columns(names, columns)
  panels = attribute_swap_images(vae, images, attributes, cols)
  return _sheet(panels, ['real', 'reconstruction'] + [f'flip {names[n]}' for n in cols],
                [f'face {b}' for b in range(panels.shape[0])])


def prior_swap_images(vae, attributes, noise, columns: Sequence[int]) -> np.ndarray:
  """[B, 1 + K, R, R, 3]: per row the prior sample z = mu_p(a) + sigma_p(a) noise decoded under a, then for each n
  in `columns` the sample with the same noise under a' = a with a_n -> -a_n (z' = mu_p(a') + sigma_p(a') noise)."""
  a = _attributes(vae, attributes)
  noise = _latents(vae, noise, a.shape[0], 'noise')
  vectors = [a] + [flip_attribute(a, n) for n in columns]
  return np.stack([_decode(vae, _prior_latent(vae, v, noise), v) for v in vectors], axis=1)


def prior_swap_grid(vae, attributes, noise, names: Optional[Sequence[str]] = None,
                    columns: Optional[Sequence[Union[int, str]]] = None) -> Sheet:
  """Prior samples with fixed noise: per row the sample for a, then one flipped attribute per column.

  Args:
    attributes: [B, N]; noise: [B, H, W, n_z] (e.g. N(0, I) draws, fixed across the columns).
    names, columns: as `attribute_swap_grid`.

  Returns:
    Sheet with columns ('prior sample', 'flip <name>', ...).
  """
  names = _names(vae, names)
  cols = _columns(names, columns)
  panels = prior_swap_images(vae, attributes, noise, cols)
  return _sheet(panels, ['prior sample'] + [f'flip {names[n]}' for n in cols],
                [f'sample {b}' for b in range(panels.shape[0])])


# ---------------------------------------------------------------------------------------- interpolation
def cos2_weights(n: int) -> np.ndarray:
  """cos^2(psi) for n values of psi evenly spaced in [0, pi/2] (both ends included): [n], from 1 to 0."""
  if int(n) < 2:
    raise ValueError(f'n: got {n}; valid values are integers >= 2 (both end points)')
  weights = np.cos(np.linspace(0.0, math.pi / 2, int(n))) ** 2
  weights[-1] = 0.0          # cos(pi/2)^2 is 3.7e-33 in floating point; the end point is Z2 exactly
  return weights


def interp_cos2(z1, z2, n: int) -> np.ndarray:
  """Z(psi) = cos^2(psi) Z1 + (1 - cos^2(psi)) Z2, psi evenly spaced in [0, pi/2] (T:L6072-6075): [n, *z1.shape],
  Z(0) = Z1, Z(pi/2) = Z2."""
  z1 = np.asarray(z1, np.float64)
  z2 = np.asarray(z2, np.float64)
  if z1.shape != z2.shape:
    raise ValueError(f'z2: shape {z2.shape} differs from z1 {z1.shape}; interpolate latents of one shape')
  w = cos2_weights(n).reshape((-1,) + (1,) * z1.ndim)
  return (w * z1 + (1.0 - w) * z2).astype(np.float32)


def prior_interpolation_sheet(vae, attributes, n: int = 8, seed: int = 0, attributes_end=None, noise1=None,
                              noise2=None) -> Sheet:
  """Fig. 6.6: per row two modes Z1, Z2 of the conditional prior and the cos^2 path between them, decoded.

  Args:
    attributes: [B, N], one attribute combination per row.
    n: images per row (psi evenly spaced in [0, pi/2]).
    seed: draws noise1, noise2 ~ N(0, I) when they are not given.
    attributes_end: None (the thesis): both modes from p(z|a), decoded under a. Given [B, N]: Z2 from p(z|a') and
      the decoder's attribute vector interpolated with the same weights, cos^2 a + (1 - cos^2) a'.
    noise1, noise2: [B, H, W, n_z], the standard-normal noise of the two modes.

  Returns:
    Sheet [B rows, n columns] with columns 'psi=<degrees>'.
  """
  a = _attributes(vae, attributes)
  b = a.shape[0]
  a_end = a if attributes_end is None else _attributes(vae, attributes_end, 'attributes_end')
  if a_end.shape != a.shape:
    raise ValueError(f'attributes_end: shape {a_end.shape}; the valid shape is {a.shape} (one per row)')
  rng = np.random.default_rng(seed)
  latent = (b,) + tuple(int(d) for d in vae.latent_shape)
  noise1 = rng.standard_normal(latent).astype(np.float32) if noise1 is None else _latents(vae, noise1, b, 'noise1')
  noise2 = rng.standard_normal(latent).astype(np.float32) if noise2 is None else _latents(vae, noise2, b, 'noise2')
  z_path = interp_cos2(_prior_latent(vae, a, noise1), _prior_latent(vae, a_end, noise2), n)     # [n, B, ...]
  a_path = interp_cos2(a, a_end, n)                                                            # [n, B, N]
  frames = np.stack([_decode(vae, z_path[i], a_path[i]) for i in range(n)], axis=1)
  degrees = np.degrees(np.linspace(0.0, math.pi / 2, n))
  return _sheet(frames, [f'psi={d:.0f}' for d in degrees], [f'row {r}' for r in range(b)])


# ----------------------------------------------------------------------------------- progressive generation
def progressive_step_inputs(vae, a, z, i: int) -> Tuple[np.ndarray, np.ndarray]:
  """What step i (1..T) decodes: (z with blocks i+1..T zeroed, the per-step attributes [B, T, N] with steps
  i+1..T zeroed), i.e. [(z_1, a_1) ... (z_i, a_i), (0, 0) ... (0, 0)] (T:L6112-6118)."""
  _check_recurrent(vae, 'progressive generation')
  a = _attributes(vae, a, 'a')
  z = _latents(vae, z, a.shape[0])
  t_total = int(vae.num_blocks)
  if not 1 <= int(i) <= t_total:
    raise ValueError(f'i: step {i} out of range; valid values are 1..{t_total} (steps numbered as in the thesis)')
  z_i = z * np.asarray(latent_tools.leading_blocks_mask(z.shape[-1], int(i), t_total))
  steps = np.asarray(vae.per_step(tf.convert_to_tensor(a)), np.float32)
  keep = (np.arange(t_total) < int(i)).astype(np.float32)
  return z_i.astype(np.float32), steps * keep[None, :, None]


def progressive_generation(vae, a, z) -> np.ndarray:
  """Fig. 6.7: images [T, B, R, R, 3]; image i (0-based i-1) decodes `progressive_step_inputs(vae, a, z, i)`.

  Args:
    vae: a crVAE-GAN or acVAE-GAN (ValueError for cVAE(-GAN)).
    a: attribute vectors [B, N].
    z: latents [B, H, W, n_z], e.g. a sample of p(z|a).
  """
  _check_recurrent(vae, 'progressive generation')
  out = []
  for i in range(1, int(vae.num_blocks) + 1):
    z_i, a_i = progressive_step_inputs(vae, a, z, i)
    out.append(_decode(vae, z_i, a_i))
  return np.stack(out)


def progressive_sheet(vae, a, z) -> Sheet:
  """Fig. 6.7 as a sheet: one example per row, step 1..T per column."""
  frames = progressive_generation(vae, a, z)
  return _sheet(np.swapaxes(frames, 0, 1), [f'step {t}' for t in range(1, frames.shape[0] + 1)],
                [f'example {b}' for b in range(frames.shape[1])])


def attribute_appearance_steps(vae, classifier_fn: Callable, a, z, names: Optional[Sequence[str]] = None) -> Dict:
  """When each attribute appears in the progressive generation, read by an attribute classifier (Sec. 6.5.4).

  Args:
    vae: a crVAE-GAN or acVAE-GAN.
    classifier_fn: images [B, R, R, 3] -> logits [B, N] (positive = attribute present, the order of a).
    a: attribute vectors [B, N] (+-1); z: latents [B, H, W, n_z].
    names: attribute names (None: the model's).

  Returns:
    dict with
      agree: bool [T, B, N], classifier sign == sign(a_n) on the step-t image;
      first_agree: int [B, N], the first step (1-based) at which it agrees, 0 = never;
      settled: int [B, N], the first step from which it agrees at every later step through T, 0 = not at step T
        (a blurry early image may agree by chance; `settled` is the step from which the attribute stays);
      attention_step: int [N] (acVAE: the 1-based argmax_t M[t, n]) or None;
      rows: one dict per attribute: attribute, attention_step, first_agree_median and settled_median (over the
        examples where they exist, None if none), agree_at_T (fraction of examples).
  """
  a = _attributes(vae, a, 'a')
  names = _names(vae, names)
  frames = progressive_generation(vae, a, z)
  t_total, batch = frames.shape[:2]
  logits = np.stack([np.asarray(classifier_fn(tf.convert_to_tensor(frames[t])), np.float32)
                     for t in range(t_total)])
  if logits.shape != (t_total, batch, a.shape[1]):
    raise ValueError(f'classifier_fn: returned logits of shape {logits.shape[1:]} per step; the valid shape is '
                     f'{(batch, a.shape[1])} (one logit per attribute)')
  agree = (logits > 0) == (a[None] > 0)
  first_agree = np.where(agree.any(axis=0), np.argmax(agree, axis=0) + 1, 0)
  suffix = np.flip(np.logical_and.accumulate(np.flip(agree, axis=0), axis=0), axis=0)   # agrees from t to T
  settled = np.where(suffix[-1], np.argmax(suffix, axis=0) + 1, 0)
  attention_step = None
  if getattr(vae, 'attention', None) is not None:
    assignment = attention_lib.attribute_assignment(np.asarray(vae.attention.mask()), names)
    attention_step = np.array([row['step'] for row in assignment], np.int64)

  def median(values):
    values = values[values > 0]
    return float(np.median(values)) if values.size else None

  rows = [{'attribute': names[n],
           'attention_step': None if attention_step is None else int(attention_step[n]),
           'first_agree_median': median(first_agree[:, n]), 'settled_median': median(settled[:, n]),
           'agree_at_T': float(agree[-1, :, n].mean())} for n in range(a.shape[1])]
  return dict(agree=agree, first_agree=first_agree, settled=settled, attention_step=attention_step, rows=rows)


# -------------------------------------------------------------------------------------------- 2-stage tool
class TwoStageResult(NamedTuple):
  """What `two_stage_tool` returns.

  candidates: the first-stage images [n_candidates, R, R, 3]; candidate_latents their z.
  pick: the kept candidate's index; block: the resampled block (1-based).
  refinements: the second-stage images [n_refine, R, R, 3]; refinement_latents their z (block `block` redrawn, the
    other blocks those of the picked candidate).
  block_changes: [T] mean absolute pixel change per resampled block (measured when block=None; else None).
  sheet: Sheet with two rows: the candidates, then the picked candidate followed by its refinements.
  """
  candidates: np.ndarray
  candidate_latents: np.ndarray
  pick: int
  block: int
  refinements: np.ndarray
  refinement_latents: np.ndarray
  block_changes: Optional[np.ndarray]
  sheet: Sheet


def choose_minor_block(changes, min_change_fraction: float = MIN_CHANGE_FRACTION) -> int:
  """The 1-based block with the smallest mean pixel change among those with at least `min_change_fraction` of the
  largest change (the module docstring's reading of "a minor adjustment", T:L6161-6165)."""
  changes = np.asarray(changes, np.float64)
  if changes.ndim != 1 or changes.size < 1:
    raise ValueError(f'changes: got shape {changes.shape}; the valid shape is [T], one change per block')
  if not 0.0 <= float(min_change_fraction) <= 1.0:
    raise ValueError(f'min_change_fraction: got {min_change_fraction}; valid values are in [0, 1]')
  eligible = changes >= float(min_change_fraction) * changes.max()
  return int(np.argmin(np.where(eligible, changes, np.inf))) + 1


def _resample_block(z, t: int, mu_p, logvar_p, noise, num_blocks: int) -> np.ndarray:
  """z [1, ...] repeated over noise [K, ...] with block t replaced by mu_p + sigma_p * noise."""
  drawn = mu_p + np.exp(0.5 * logvar_p) * noise
  base = np.repeat(z, noise.shape[0], axis=0)
  return np.asarray(latent_tools.replace_block(base, t, drawn, num_blocks), np.float32)


def two_stage_tool(vae, a, n_candidates: int, pick: int, n_refine: int, block: Optional[int] = None, seed: int = 0,
                   min_change_fraction: float = MIN_CHANGE_FRACTION, n_probe: Optional[int] = None) -> TwoStageResult:
  """Sec. 6.6's general-to-specific generation (Fig. 6.8).

  Stage 1 draws `n_candidates` latents from p(z|a) and decodes them; the user keeps candidate `pick`. Stage 2 redraws
  block `block` of its latent `n_refine` times from p(z_block|a), every other block fixed, and decodes.

  Args:
    vae: the generator (every model kind; the block structure means most for the channel-recurrent ones).
    a: one attribute vector [N] or [1, N].
    n_candidates, n_refine: images per stage (>= 1).
    pick: the kept candidate, 0-based (< n_candidates).
    block: the block to resample, 1..T; None: chosen by `choose_minor_block` from each block's mean absolute pixel
      change over `n_probe` (default n_refine) trial resamples of the picked latent.
    seed: seeds the candidates, the trial resamples and the refinements (separate streams, so the refinements of a
      given block are the same whether it was named or chosen).
    min_change_fraction: the automatic choice's floor (module docstring).
  """
  a = _attributes(vae, a, 'a')
  if a.shape[0] != 1:
    raise ValueError(f'a: got {a.shape[0]} attribute vectors; the 2-stage tool takes one vector [N] or [1, N]')
  for name, value in (('n_candidates', n_candidates), ('n_refine', n_refine)):
    if int(value) < 1:
      raise ValueError(f'{name}: got {value}; valid values are integers >= 1')
  if not 0 <= int(pick) < int(n_candidates):
    raise ValueError(f'pick: got {pick}; valid values are 0..{int(n_candidates) - 1} (a candidate index)')
  t_total = int(vae.num_blocks)
  if block is not None and not 1 <= int(block) <= t_total:
    raise ValueError(f'block: got {block}; valid values are 1..{t_total} (blocks numbered as in the thesis) or None '
                     f'(chosen by the measured pixel change)')
  latent = tuple(int(d) for d in vae.latent_shape)
  mu_p, logvar_p = (np.asarray(p, np.float32) for p in vae.prior_params(tf.convert_to_tensor(a), training=False))
  # Stage 1: candidates from p(z|a).
  noise = np.random.default_rng([seed, 0]).standard_normal((int(n_candidates),) + latent).astype(np.float32)
  candidate_z = (mu_p + np.exp(0.5 * logvar_p) * noise).astype(np.float32)
  a_rep = lambda k: np.repeat(a, k, axis=0)
  candidates = _decode(vae, candidate_z, a_rep(int(n_candidates)))
  kept = candidate_z[int(pick)][None]
  kept_image = candidates[int(pick)]
  # The block: named, or the minor-adjustment block by measurement.
  changes = None
  if block is None:
    probes = int(n_probe or n_refine)
    changes = np.zeros((t_total,), np.float64)
    for t in range(1, t_total + 1):
      probe_noise = np.random.default_rng([seed, 2, t]).standard_normal((probes,) + latent).astype(np.float32)
      probe_images = _decode(vae, _resample_block(kept, t, mu_p, logvar_p, probe_noise, t_total), a_rep(probes))
      changes[t - 1] = float(np.mean(np.abs(probe_images - kept_image[None])))
    block = choose_minor_block(changes, min_change_fraction)
  block = int(block)
  # Stage 2: redraw block `block` only.
  refine_noise = np.random.default_rng([seed, 1]).standard_normal((int(n_refine),) + latent).astype(np.float32)
  refinement_z = _resample_block(kept, block, mu_p, logvar_p, refine_noise, t_total)
  refinements = _decode(vae, refinement_z, a_rep(int(n_refine)))
  width = max(int(n_candidates), int(n_refine) + 1)
  blank = np.ones_like(kept_image)          # white filler for the shorter row

  def row(panels):
    return list(panels) + [blank] * (width - len(panels))

  grid = np.stack([np.stack(row(candidates)), np.stack(row([kept_image] + list(refinements)))])
  sheet = _sheet(grid, [f'column {c}' for c in range(width)],
                 ('stage 1: candidates 0.. from p(z|a)',
                  f'stage 2: candidate {int(pick)}, then its resamples of z_{block} (other blocks fixed)'))
  return TwoStageResult(candidates, candidate_z, int(pick), block, refinements, refinement_z, changes, sheet)


# ------------------------------------------------------------------------------------------ preference test
def preference_sheets(images_by_model: Mapping[str, np.ndarray], out_dir: str, seed: int = 0,
                      scale: int = 2) -> Dict:
  """k-way preference sheets (Table 6.2's 3-way test): trial m shows image m of every model side by side, the columns
  in a random order per trial; the order is written to a key file only.

  Args:
    images_by_model: model name -> images [M, R, R, 3] in [-1, 1], image m of every model generated for the same
      attribute vector (the thesis: 200 tuples from 3 models).
    out_dir: where trial_0000.png ..., key.json and answers_template.csv are written.
    seed: the shuffling seed.
    scale: nearest-neighbour upscaling of the PNGs.

  Returns:
    dict(key_file, sheets (paths), template (the answers CSV to fill in: trial,choice with choice the 1-based column
    a rater picked, or its letter A, B, C ...)).
  """
  models = [str(name) for name in images_by_model]
  if len(models) < 2:
    raise ValueError(f'images_by_model: got {len(models)} model(s); a preference test needs >= 2')
  arrays = {name: np.asarray(images_by_model[name], np.float32) for name in models}
  shapes = {name: x.shape for name, x in arrays.items()}
  if len(set(shapes.values())) != 1 or next(iter(shapes.values()))[0] < 1:
    raise ValueError(f'images_by_model: every model needs the same number of images of one shape (>= 1), got '
                     f'{shapes}')
  os.makedirs(out_dir, exist_ok=True)
  rng = np.random.default_rng(seed)
  trials, sheets = [], []
  for m in range(next(iter(shapes.values()))[0]):
    order = [models[k] for k in rng.permutation(len(models))]
    sheet_name = f'trial_{m:04d}.png'
    grid = images_lib.make_grid(np.stack([arrays[name][m] for name in order]), rows=1, cols=len(order))
    sheets.append(images_lib.save_png(grid, os.path.join(out_dir, sheet_name), scale=scale))
    trials.append({'trial': m, 'sheet': sheet_name, 'order': order})
  key_file = os.path.join(out_dir, 'key.json')
  with open(key_file, 'w') as f:
    json.dump({'version': KEY_VERSION, 'models': models, 'seed': int(seed), 'trials': trials}, f, indent=1)
  template = os.path.join(out_dir, 'answers_template.csv')
  with open(template, 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(['trial', 'choice'])
    for trial in trials:
      writer.writerow([trial['trial'], ''])
  return dict(key_file=key_file, sheets=sheets, template=template)


def _choice_index(choice: str, k: int, line: int) -> int:
  """0-based column from '1'..'k' or 'A'..; ValueError naming the CSV line otherwise."""
  text = choice.strip()
  if text.isdigit() and 1 <= int(text) <= k:
    return int(text) - 1
  if len(text) == 1 and text.isalpha() and 0 <= ord(text.upper()) - ord('A') < k:
    return ord(text.upper()) - ord('A')
  letters = ', '.join(chr(ord('A') + c) for c in range(k))
  raise ValueError(f'answers_csv line {line}: choice {choice!r}; valid values are 1..{k} or {letters} (the column '
                   f'picked, left to right), or empty for no answer')


def tally(key_file: str, answers_csv: str) -> Dict:
  """Counts a CSV of answers (header trial,choice; one row per rating, several raters may rate a trial) against the
  key of `preference_sheets`.

  Returns:
    dict(counts {model: picks}, fractions {model: picks / answered}, answered, blank (rows with an empty choice)).
  """
  with open(key_file) as f:
    key = json.load(f)
  if key.get('version') != KEY_VERSION or 'trials' not in key:
    raise ValueError(f'key_file: {key_file} is not a preference key (version {KEY_VERSION}) written by '
                     f'preference_sheets')
  orders = {int(trial['trial']): trial['order'] for trial in key['trials']}
  counts = {name: 0 for name in key['models']}
  answered = blank = 0
  with open(answers_csv, newline='') as f:
    reader = csv.DictReader(f)
    if reader.fieldnames is None or not {'trial', 'choice'} <= set(reader.fieldnames):
      raise ValueError(f'answers_csv: {answers_csv} needs the header trial,choice, got {reader.fieldnames}')
    for line, row in enumerate(reader, start=2):
      if not (row['choice'] or '').strip():
        blank += 1
        continue
      try:
        trial = int(row['trial'])
      except (TypeError, ValueError):
        trial = None
      if trial not in orders:
        raise ValueError(f'answers_csv line {line}: trial {row["trial"]!r} is not in the key; valid values are '
                         f'0..{len(orders) - 1}')
      order = orders[trial]
      counts[order[_choice_index(row['choice'], len(order), line)]] += 1
      answered += 1
  fractions = {name: (c / answered if answered else 0.0) for name, c in counts.items()}
  return dict(counts=counts, fractions=fractions, answered=answered, blank=blank)
