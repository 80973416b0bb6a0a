"""The value Jacobian overlay of seed 001 Fig. 4 (R7: high around the ball and at missing bricks).

J = dV(s)/dx with respect to the input frames (float, in [0, 1]). The paper adds J "to the blue channel where it
exceeds its mean"; what is not stated (spec A14, proposals): |J| of the newest frame (option: summed over the n
frames), scaled by its maximum, clipped to [0, 1], added to the blue channel of the grey frame only at pixels where
|J| > mean(|J|). Everything else is the frame in grey.
"""

import numpy as np
import tensorflow as tf

from rlcv_tf.vae_pg import vae as vae_lib


def value_jacobian(model, frames) -> np.ndarray:
  """dV/dx for frames [B, S, S, n] (uint8 or [0, 1]): float32 [B, S, S, n]."""
  x = vae_lib.frames_to_float(frames)
  with tf.GradientTape() as tape:
    tape.watch(x)
    _, value, _ = model(x)
    total = tf.reduce_sum(value)
  return tape.gradient(total, x).numpy()


def overlay(frame, jacobian, which: str = 'newest') -> np.ndarray:
  """uint8 RGB [S, S, 3]: the newest grey frame with the scaled |J| added to blue where |J| > mean(|J|).

  frame: [S, S, n] (uint8 or [0, 1]); jacobian: [S, S, n]; which: 'newest' or 'sum' (over the n frames).
  """
  grey = vae_lib.frames_to_float(np.asarray(frame)[np.newaxis]).numpy()[0, ..., -1]
  j = np.abs(np.asarray(jacobian, np.float32))
  j = j[..., -1] if which == 'newest' else j.sum(axis=-1)
  scaled = np.clip(j / max(float(j.max()), 1e-12), 0.0, 1.0)
  rgb = np.stack([grey, grey, grey], axis=-1)
  above = j > j.mean()
  rgb[..., 2] = np.where(above, np.clip(grey + scaled, 0.0, 1.0), grey)
  return np.round(rgb * 255.0).astype(np.uint8)
