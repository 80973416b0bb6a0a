"""Chapter 7 losses: the InfoNCE latent-prediction loss (thesis Eq. 7.5) and the reconstruction error (spec A6).

InfoNCE (T:L6466-6493; background CPC, Eq. 1.8, T:L440-470). For a batch of N videos the predicted frame codes
p_hat_{v,t} = f_auto(P, p_1)[t] and the true codes p_{v,t} = f_enc(x_t, S), t = 2..T, give

  L_pred = - sum_{v,t} log [ exp(p_hat_{v,t}^T p_{v,t}) / sum_{n,i} exp(p_hat_{v,t}^T p_{n,i}) ]          (7.5)

"the loss encourages the predicted p_hat_{v,t} to be only close to the true frame-level representation for v at t,
p_{v,t}, but far away from the rest. That is, distant from frame representations in either a different video
(p_{n,i} for n != v), or at a different time step (p_{v,i} with i != t)" (T:L6470-6474). So every one of the N(T-1)
predictions is an anchor, its positive is the single true code at the same (v, t), and the candidate set is *all*
N(T-1) true codes of the batch (the positive counted once in the denominator). The score is the raw dot product:
the thesis states no normalisation or temperature. That is softmax cross-entropy over logits P_hat P^T with labels
arange(N(T-1)) after flattening both to [N(T-1), d] in the same (v, t) order. The thesis sums over anchors; here the
default is the mean (spec §4 [proposal], `reduction='sum'` gives the thesis's sum), so an all-zero p_hat scores
exactly log(N(T-1)). The stop-gradient on the true codes (p-bar = sg(p), spec §3.7) is the caller's: this function
differentiates w.r.t. both arguments.

Reconstruction: the thesis writes ||x - x_tilde||^2 without saying how it is reduced. Spec A6: the mean over every
element (MSE) by default; `reduction='sum'` sums over the last `event_rank` axes (H, W, C of a frame) and averages
the rest (batch, and time for [B, T, H, W, C] videos: the (1/T) sum_t of Eq. 7.3 and 7.4).
"""

import tensorflow as tf

REDUCTIONS = ('mean', 'sum')


def _compute_dtype(*tensors) -> tf.DType:
  """float64 if any input is float64, else float32 (half-precision logits overflow exp/logsumexp too early)."""
  return tf.float64 if any(t.dtype == tf.float64 for t in tensors) else tf.float32


def _check_reduction(reduction: str) -> None:
  if reduction not in REDUCTIONS:
    raise ValueError(f'reduction must be one of {REDUCTIONS}, got {reduction!r}')


def info_nce_logits(p_hat, p_true) -> tf.Tensor:
  """[N, T-1, d] predicted and true codes -> [N(T-1), N(T-1)] logits p_hat_a^T p_b, anchors a in (v, t) row order."""
  p_hat = tf.convert_to_tensor(p_hat)
  p_true = tf.convert_to_tensor(p_true)
  for name, p in (('p_hat', p_hat), ('p_true', p_true)):
    if p.shape.rank is not None and p.shape.rank != 3:
      raise ValueError(f'{name} must be [N, T-1, d], got shape {tuple(p.shape)}')
  if p_hat.shape.is_fully_defined() and p_true.shape.is_fully_defined() and p_hat.shape != p_true.shape:
    raise ValueError(f'p_hat {tuple(p_hat.shape)} and p_true {tuple(p_true.shape)} must have the same shape')
  dtype = _compute_dtype(p_hat, p_true)
  d = tf.shape(p_hat)[-1]
  anchors = tf.reshape(tf.cast(p_hat, dtype), tf.stack([-1, d]))
  candidates = tf.reshape(tf.cast(p_true, dtype), tf.stack([-1, d]))
  return tf.matmul(anchors, candidates, transpose_b=True)


def info_nce(p_hat, p_true, reduction: str = 'mean') -> tf.Tensor:
  """Eq. 7.5: scalar InfoNCE over all N(T-1) true codes of the batch; mean (default) or sum over the anchors.

  Args:
    p_hat: [N, T-1, d] predicted codes p_hat_{v,t}, t = 2..T.
    p_true: [N, T-1, d] true codes p_{v,t} in the same order (detach them before calling, spec §3.7).
    reduction: 'mean' over the N(T-1) anchors or 'sum' (the thesis's sum).

  Returns:
    float32 scalar (float64 if an input is float64).
  """
  _check_reduction(reduction)
  logits = info_nce_logits(p_hat, p_true)
  per_anchor = tf.reduce_logsumexp(logits, axis=1) - tf.linalg.diag_part(logits)
  return tf.reduce_mean(per_anchor) if reduction == 'mean' else tf.reduce_sum(per_anchor)


def info_nce_accuracy(p_hat, p_true) -> tf.Tensor:
  """Top-1 accuracy of Eq. 7.5's classification: the fraction of anchors whose positive has the largest score.

  Ties go to the lowest candidate index (tf.argmax), so an all-zero p_hat scores 1/(N(T-1)).
  """
  logits = info_nce_logits(p_hat, p_true)
  target = tf.range(tf.shape(logits)[0], dtype=tf.int64)
  return tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, axis=1), target), tf.float32))


def reconstruction(x, y, reduction: str = 'mean', event_rank: int = 3) -> tf.Tensor:
  """Squared error between x and y (same shape): 'mean' over all elements (MSE, spec A6 default), or 'sum' over the
  last `event_rank` axes (a frame's H, W, C) averaged over the leading axes. Scalar in float32 (float64 inputs stay
  float64); half-precision inputs are cast up before squaring."""
  _check_reduction(reduction)
  x = tf.convert_to_tensor(x)
  y = tf.convert_to_tensor(y)
  dtype = _compute_dtype(x, y)
  sq = tf.math.squared_difference(tf.cast(x, dtype), tf.cast(y, dtype))
  if reduction == 'mean':
    return tf.reduce_mean(sq)
  rank = sq.shape.rank
  if rank is None:
    raise ValueError("reduction='sum' needs inputs of known rank")
  if not 0 < event_rank <= rank:
    raise ValueError(f'event_rank must be in [1, {rank}] for rank-{rank} inputs, got {event_rank}')
  return tf.reduce_mean(tf.reduce_sum(sq, axis=list(range(rank - event_rank, rank))))
