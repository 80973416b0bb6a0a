"""Next-frame prediction losses of the GAN lecture: L1 / L2 and the gradient-difference loss.

The slides show three predictions labelled "Mean Squared Error", "Mean Absolute Error" and "Adversarial"
[S3:L38-49] and say no more; the formulas are Mathieu, Couprie & LeCun, ICLR 2016 (Eq. 1 and 5) [orig], as in spec
seeds003_004 §2.7:

  L_p(Y^, Y)  = ||Y^ - Y||_p^p, p in {1, 2}
  L_gdl(Y^, Y) = sum_{i,j} | |Y_{i,j} - Y_{i-1,j}| - |Y^_{i,j} - Y^_{i-1,j}| |^alpha
                         + | |Y_{i,j-1} - Y_{i,j}| - |Y^_{i,j-1} - Y^_{i,j}| |^alpha

Images are [B, H, W, C]. `reduction`: 'sum' (default: sum over pixels and channels, mean over the batch, the
thesis' frame reconstruction ||x_t - x^_t||^2, T:L6457) or 'mean' (mean over everything). The adversarial
predictor is out of scope (issue 15 §8: Chapter 7 owns video); its G term is `core.gan.generator_loss`.
"""

import tensorflow as tf

REDUCTIONS = ('sum', 'mean')


def _reduce(per_pixel, reduction: str):
  if reduction not in REDUCTIONS:
    raise ValueError(f'reduction: got {reduction!r}; valid values are {REDUCTIONS}')
  if reduction == 'mean':
    return tf.reduce_mean(per_pixel)
  axes = tf.range(1, tf.rank(per_pixel))
  return tf.reduce_mean(tf.reduce_sum(per_pixel, axis=axes))


def _pair(prediction, target):
  prediction = tf.convert_to_tensor(prediction, tf.float32)
  target = tf.convert_to_tensor(target, tf.float32)
  if not prediction.shape.is_compatible_with(target.shape):
    raise ValueError(f'prediction {prediction.shape} and target {target.shape} must have the same shape')
  return prediction, target


def lp_loss(prediction, target, p: int = 2, reduction: str = 'sum'):
  """||Y^ - Y||_p^p (p = 1: absolute, p = 2: squared error) reduced by `reduction`."""
  if p not in (1, 2):
    raise ValueError(f'p: got {p}; valid values are 1 and 2')
  prediction, target = _pair(prediction, target)
  diff = tf.abs(prediction - target)
  return _reduce(diff if p == 1 else tf.square(diff), reduction)


def l1_loss(prediction, target, reduction: str = 'sum'):
  """Mean absolute error form: sum |Y^ - Y| per image, mean over the batch (or 'mean')."""
  return lp_loss(prediction, target, 1, reduction)


def l2_loss(prediction, target, reduction: str = 'sum'):
  """Squared error: sum (Y^ - Y)^2 per image, mean over the batch (or 'mean')."""
  return lp_loss(prediction, target, 2, reduction)


def gdl_loss(prediction, target, alpha: float = 1.0, reduction: str = 'sum'):
  """Mathieu et al.'s gradient-difference loss: |(|dY| - |dY^|)|^alpha over vertical and horizontal neighbours.

  0 when Y^ = Y + const (same image gradients); positive for a blurred Y^ (smaller gradients). With 'sum' the two
  difference maps are summed over pixels and channels and averaged over the batch; 'mean' averages each map over its
  elements and adds the two."""
  if alpha <= 0:
    raise ValueError(f'alpha: got {alpha}; valid values are > 0')
  prediction, target = _pair(prediction, target)
  dy_t = tf.abs(target[:, 1:, :, :] - target[:, :-1, :, :])
  dy_p = tf.abs(prediction[:, 1:, :, :] - prediction[:, :-1, :, :])
  dx_t = tf.abs(target[:, :, 1:, :] - target[:, :, :-1, :])
  dx_p = tf.abs(prediction[:, :, 1:, :] - prediction[:, :, :-1, :])
  vertical = tf.pow(tf.abs(dy_t - dy_p), alpha)
  horizontal = tf.pow(tf.abs(dx_t - dx_p), alpha)
  return _reduce(vertical, reduction) + _reduce(horizontal, reduction)
