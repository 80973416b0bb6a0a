"""Frame preprocessing shared by the Chapter 2 pixel environments (Atari, CarRacing): NumPy only, no engine.

Thesis (T:L1095-1097, Atari): "we crop Atari games to display only the game playing region, subtract estimated
mean and divide standard deviation, and rescale to 80x80"; CarRacing (T:L1582-1584): "normalized by subtracting
mean and dividing by standard deviation and then resized to 80x80". How the mean and standard deviation are
estimated is not stated; spec Sec. 2.1 (a proposal following the A3C-LSTM code base the thesis builds on):

  * pixels scaled to [0, 1] (divided by 255);
  * one scalar mean and one scalar standard deviation per frame, mu_t = mean(x_t) and sigma_t = std(x_t) over all
    its pixels, averaged exponentially with alpha = 0.9999 and bias-corrected like Adam's moments:
        m_t = alpha m_{t-1} + (1 - alpha) mu_t,   s_t = alpha s_{t-1} + (1 - alpha) sigma_t,   m_0 = s_0 = 0,
        m^_t = m_t / (1 - alpha^t),               s^_t = s_t / (1 - alpha^t);
  * output (x_t - m^_t) / (s^_t + 1e-8).

The statistics are kept per environment (one `RunningFrameNormalizer` per env instance: per agent, as in the
thesis's A3C workers), are never learned, and carry over from one episode to the next. They are taken from the
frame at the resolution the thesis normalises at (after the crop, before the resize). The resize is an area
average (each output pixel a weighted mean of input pixels, weights summing to 1), so it commutes with the affine
normalisation: we resize first and normalise the small frame with the large frame's statistics, which is the
thesis's order (crop, normalise, rescale) computed on 4x fewer pixels.
"""

from typing import Tuple

import numpy as np

NORM_ALPHA = 0.9999   # spec Sec. 2.1 (proposal)
NORM_EPS = 1e-8


class RunningFrameNormalizer:
  """The exponentially averaged, bias-corrected scalar mean/std of the module docstring."""

  def __init__(self, alpha: float = NORM_ALPHA, eps: float = NORM_EPS):
    if not 0.0 < alpha < 1.0:
      raise ValueError(f'alpha must lie in (0, 1), got {alpha}')
    self.alpha = float(alpha)
    self.eps = float(eps)
    self.mean = 0.0    # m_t (biased)
    self.std = 0.0     # s_t (biased)
    self.count = 0     # t

  def update(self, frame: np.ndarray) -> Tuple[float, float]:
    """Folds in one frame's mean and std and returns the bias-corrected (m^_t, s^_t)."""
    x = np.asarray(frame)
    if x.dtype != np.float32:   # float32 frames keep float32 (NumPy's pairwise sums: ~1e-7 relative), others float64
      x = x.astype(np.float64)
    self.count += 1
    self.mean = self.alpha * self.mean + (1.0 - self.alpha) * float(x.mean())
    self.std = self.alpha * self.std + (1.0 - self.alpha) * float(x.std())
    correction = 1.0 - self.alpha ** self.count
    return self.mean / correction, self.std / correction

  def apply(self, frame: np.ndarray, mean: float, std: float) -> np.ndarray:
    """(frame - mean) / (std + eps) as float32."""
    return ((np.asarray(frame, np.float32) - np.float32(mean)) / np.float32(std + self.eps)).astype(np.float32)

  def state(self):
    """The statistics, for logging or a checkpoint: {'mean', 'std', 'count'} (biased, before correction)."""
    return {'mean': self.mean, 'std': self.std, 'count': self.count}


def area_resize(frame: np.ndarray, hw: Tuple[int, int]) -> np.ndarray:
  """Area-average resize of a 2-D float frame to `hw`: an exact block mean when the sizes divide (Atari's 160 ->
  80), OpenCV's INTER_AREA otherwise (CarRacing's 96 -> 80)."""
  h, w = frame.shape
  oh, ow = int(hw[0]), int(hw[1])
  if (h, w) == (oh, ow):
    return np.asarray(frame, np.float32)
  if h % oh == 0 and w % ow == 0:
    fh, fw = h // oh, w // ow
    x = np.asarray(frame, np.float32)
    # Strided sums of the block's pixels: about 20x faster than a reshape-mean on Atari's 160x160.
    total = sum(x[i::fh, j::fw] for i in range(fh) for j in range(fw))
    return total * np.float32(1.0 / (fh * fw))
  import cv2  # pylint: disable=g-import-not-at-top
  return cv2.resize(np.asarray(frame, np.float32), (ow, oh), interpolation=cv2.INTER_AREA)


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
  """uint8 [H, W, 3] -> float32 [H, W] luma in [0, 255] (ITU-R BT.601 weights, as OpenCV and PIL use)."""
  x = np.asarray(rgb, np.float32)
  return x[..., 0] * np.float32(0.299) + x[..., 1] * np.float32(0.587) + x[..., 2] * np.float32(0.114)


def normalise_frame(gray: np.ndarray, normalizer: RunningFrameNormalizer, hw: Tuple[int, int]) -> np.ndarray:
  """One gray frame in [0, 255] at the resolution the statistics are taken at -> float32 [hw] normalised:
  scale to [0, 1], update the statistics on it, area-resize, apply (module docstring)."""
  x = np.asarray(gray, np.float32) * np.float32(1.0 / 255.0)
  mean, std = normalizer.update(x)
  return normalizer.apply(area_resize(x, hw), mean, std)
