"""Chapter 4 losses: per-agent V-trace actor-critic (Sec. 4.2.1, App. 4.A; spec ch4 §3.2-3.3).

Every agent is its own V-trace problem: its importance weight uses only its own action, its reward is its own
(shaped) reward, and its value is its own head's output; the weights are shared. With time-major tensors
`[T+1, B, N]` from an unroll (step t holds the reward and done of the transition INTO observation t):

    L = L_pg + L_baseline + L_entropy
    L_pg       = -mean[ log pi(a_s|x_s) * A^pg_s ]                (A^pg from V-trace, gradient stopped)
    L_baseline = baseline_cost * 0.5 * mean[ (v_s - V(x_s))^2 ]   (v_s the V-trace target)
    L_entropy  = -entropy_cost * mean[ H(pi(.|x_s)) ]

Means run over all (t, b, agent) entries of the replica's batch; the caller divides by the replica count.
"""

from typing import Dict, Tuple

import tensorflow as tf
import tensorflow_probability as tfp

from rlcv_tf.core import vtrace

tfd = tfp.distributions


def vtrace_loss(policy_logits, baseline, actions, behaviour_logits, rewards, done, *, discounting: float,
                baseline_cost: float, entropy_cost: float, lambda_: float = 1.0,
                clip_rho_threshold: float = 1.0, clip_pg_rho_threshold: float = 1.0, clip_c_threshold: float = 1.0,
                discount=None, truncated=None) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
  """Total loss and its parts for one batch of unrolls.

  Args:
    policy_logits: learner (target) logits, [T+1, B, N, A].
    baseline: learner values, [T+1, B, N].
    actions: actions taken, int [T+1, B, N].
    behaviour_logits: the acting policy's logits, [T+1, B, N, A].
    rewards: per-agent reward of the transition into step t, [T+1, B, N].
    done: episode ended on the transition into step t, bool [T+1, B].
    discount: dm_env discount of the transition into step t, [T+1, B] (0 at a termination and at the reset
      after any episode end, 1 otherwise, also at a time-limit end). None: 1 - done (every end terminal).
    truncated: bool [T+1, B], step t is the last observation of an episode cut by a time limit
      (`runtime/env_runner.py`). Its value bootstraps the transition into it; its own transition (to the reset)
      is not real, so it adds nothing to the V-trace targets (rho = c = 0 there) and its policy, value and
      entropy terms are masked out of the means. None: no truncations.
  """
  target = tfd.Categorical(logits=policy_logits[:-1])
  behaviour = tfd.Categorical(logits=tf.cast(behaviour_logits[:-1], tf.float32))
  taken = tf.cast(actions[:-1], tf.int32)
  target_log_prob = target.log_prob(taken)
  log_rhos = target_log_prob - behaviour.log_prob(taken)

  values = baseline[:-1]
  vt, valid = vtrace_targets(log_rhos, baseline, rewards, done, discounting=discounting, discount=discount,
                             truncated=truncated, lambda_=lambda_, clip_rho_threshold=clip_rho_threshold,
                             clip_pg_rho_threshold=clip_pg_rho_threshold, clip_c_threshold=clip_c_threshold)
  count = tf.maximum(tf.reduce_sum(valid), 1.0)

  def mean(x):
    return tf.reduce_sum(x * valid) / count

  pg_loss = -mean(target_log_prob * vt.pg_advantages)
  baseline_loss = baseline_cost * 0.5 * mean(tf.square(vt.vs - values))
  entropy = mean(target.entropy())
  entropy_loss = -entropy_cost * entropy
  total = pg_loss + baseline_loss + entropy_loss
  rhos = tf.exp(log_rhos)
  logs = {
      'loss/total': total,
      'loss/policy_gradient': pg_loss,
      'loss/baseline': baseline_loss,
      'loss/entropy': entropy_loss,
      'policy/entropy': entropy,
      # Means over the same valid entries as the loss (a bootstrap-only step has no transition of its own).
      'vtrace/value_target_mean': mean(vt.vs),
      'vtrace/pg_advantage_mean': mean(vt.pg_advantages),
      'vtrace/rho_mean': mean(rhos),
      'vtrace/rho_clipped_fraction': mean(tf.cast(rhos > clip_rho_threshold, tf.float32)),
      'value/mean': mean(values),
      'value/explained_variance': _explained_variance(vt.vs, values),
  }
  return total, logs


def vtrace_targets(log_rhos, baseline, rewards, done, *, discounting: float, discount=None, truncated=None,
                   lambda_: float = 1.0, clip_rho_threshold: float = 1.0, clip_pg_rho_threshold: float = 1.0,
                   clip_c_threshold: float = 1.0):
  """Per-agent V-trace targets for an unroll: (`vtrace.VTraceReturns` [T, B, N], valid float [T, B, N]).

  `log_rhos` [T, B, N] for steps 0..T-1, `baseline` [T+1, B, N] (its last step bootstraps), `rewards` [T+1, B, N],
  `done`, `discount`, `truncated` [T+1, B] as in `vtrace_loss`. `valid` is 0 at bootstrap-only steps.
  """
  baseline = tf.convert_to_tensor(baseline, tf.float32)
  log_rhos = tf.convert_to_tensor(log_rhos, tf.float32)
  not_done = 1.0 - tf.cast(done[1:], tf.float32)                    # [T, B]
  if discount is not None:
    not_done = not_done * tf.cast(discount[1:], tf.float32)
  discounts = discounting * not_done[..., tf.newaxis] * tf.ones_like(baseline[1:])  # broadcast over agents
  valid = tf.ones_like(baseline[:-1])
  if truncated is not None:
    valid = (1.0 - tf.cast(truncated[:-1], tf.float32))[..., tf.newaxis] * valid
    # rho = c = 0 at a bootstrap-only step: its delta is 0 and the trace stops, so v_s = V(x_s) there and the
    # step before it bootstraps from V(x_s), the value of the episode's last observation.
    log_rhos = tf.where(valid > 0, log_rhos, tf.fill(tf.shape(log_rhos), -1e30))
  vt = vtrace.from_importance_weights(log_rhos, discounts, tf.convert_to_tensor(rewards, tf.float32)[1:],
                                      baseline[:-1], baseline[-1], clip_rho_threshold=clip_rho_threshold,
                                      clip_c_threshold=clip_c_threshold, clip_pg_rho_threshold=clip_pg_rho_threshold,
                                      lambda_=lambda_)
  return vt, valid


def _explained_variance(targets, predictions):
  var = tf.math.reduce_variance(targets)
  return 1.0 - tf.math.reduce_variance(targets - predictions) / tf.maximum(var, 1e-8)


# ------------------------------------------------------------------------------- auxiliary objectives
AUX_OBJECTIVES = ('none', 'predict', 'observe_all')


def next_step_mask(done) -> tf.Tensor:
  """float [T, B]: 1 where step s+1 continues the episode of step s (its target is valid), 0 at episode ends.

  `done[s+1]` means obs_{s+1} is the first observation of a new episode, so it says nothing about where the
  agents of obs_s went (spec ch4 §2.6: masked at `done_{t+1}`).
  """
  return 1.0 - tf.cast(done[1:], tf.float32)


def predict_loss(pred_row, pred_col, positions, valid) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
  """Agent-centric prediction objective of Eq. 4.4 (thesis Sec. 4.2.3; spec ch4 §2.6, §3.3).

  Each agent predicts its OWN next location: softmax over the H rows and, separately, over the W columns.

  Args:
    pred_row: row logits [T', ..., N, H] for the observations that predict (e.g. steps 0..T-1 of an unroll).
    pred_col: column logits [T', ..., N, W].
    positions: int (row, col) targets [T', ..., N, 2] (the agents' positions one step later).
    valid: float/bool mask broadcastable to [T', ..., N] (0 drops a pair).

  Returns `(loss, logs)`: loss = mean over valid (t, b, i) of [-log sigma_h[h] - log sigma_w[w]]; logs hold the
  per-axis NLLs and top-1 accuracies over the same entries.
  """
  rows = tf.cast(positions[..., 0], tf.int32)
  cols = tf.cast(positions[..., 1], tf.int32)
  pred_row = tf.cast(pred_row, tf.float32)
  pred_col = tf.cast(pred_col, tf.float32)
  nll_row = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=rows, logits=pred_row)
  nll_col = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=cols, logits=pred_col)
  valid = tf.cast(valid, tf.float32) * tf.ones_like(nll_row)
  count = tf.maximum(tf.reduce_sum(valid), 1.0)   # an all-masked batch gives 0, not NaN

  def mean(x):
    return tf.reduce_sum(x * valid) / count

  acc_row = tf.cast(tf.equal(tf.argmax(pred_row, -1, output_type=tf.int32), rows), tf.float32)
  acc_col = tf.cast(tf.equal(tf.argmax(pred_col, -1, output_type=tf.int32), cols), tf.float32)
  loss = mean(nll_row + nll_col)
  return loss, {'aux/nll_row': mean(nll_row), 'aux/nll_col': mean(nll_col), 'aux/accuracy_row': mean(acc_row),
                'aux/accuracy_col': mean(acc_col), 'aux/valid_fraction': tf.reduce_mean(valid)}


def occupancy_targets(observation, channels_per_frame: int = 4,
                      include_opponents: bool = False) -> Tuple[tf.Tensor, tf.Tensor]:
  """Observe-all targets (Sec. 4.4.5; spec ch4 §2.7) read off the newest SMM frame of a stacked observation.

  Args:
    observation: uint8 [..., N, H, W, C] stacked SMM (planes left team, right team, ball, active per frame; the
      newest frame last, as `envs.frame_stack` builds it).
    channels_per_frame: planes per frame (4 for the SMM).
    include_opponents: OR the opponents' plane into the masks (default: the home team's players only, the
      "agents" of the thesis's "taking over all agents").

  Returns float {0, 1} masks `(rows [..., N, H], cols [..., N, W])`; every agent of a team gets the same target.
  """
  c = observation.shape[-1]
  if c is None or c % channels_per_frame:
    raise ValueError(f'observe_all needs SMM observations ({channels_per_frame} planes per frame), got {c} channels')
  newest = c - channels_per_frame
  occupied = observation[..., newest] > 0                      # home team plane of the newest frame
  if include_opponents:
    occupied = tf.logical_or(occupied, observation[..., newest + 1] > 0)
  rows = tf.cast(tf.reduce_any(occupied, axis=-1), tf.float32)    # [..., H]
  cols = tf.cast(tf.reduce_any(occupied, axis=-2), tf.float32)    # [..., W]
  return rows, cols


def observe_all_loss(pred_row, pred_col, row_targets, col_targets,
                     valid) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
  """Observe-all objective: sigmoid BCE summed over the bins of each axis, averaged over valid (t, b, i).

  Args as `predict_loss`, with multi-label {0, 1} targets [..., N, H] and [..., N, W] instead of indices. Logs the
  per-axis BCE (summed over bins) and the per-bin accuracy of thresholding the sigmoid at 1/2.
  """
  pred_row = tf.cast(pred_row, tf.float32)
  pred_col = tf.cast(pred_col, tf.float32)
  bce_row = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=row_targets, logits=pred_row), -1)
  bce_col = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=col_targets, logits=pred_col), -1)
  valid = tf.cast(valid, tf.float32) * tf.ones_like(bce_row)
  count = tf.maximum(tf.reduce_sum(valid), 1.0)

  def mean(x):
    return tf.reduce_sum(x * valid) / count

  acc_row = tf.reduce_mean(tf.cast(tf.equal(tf.cast(pred_row > 0, tf.float32), row_targets), tf.float32), -1)
  acc_col = tf.reduce_mean(tf.cast(tf.equal(tf.cast(pred_col > 0, tf.float32), col_targets), tf.float32), -1)
  loss = mean(bce_row + bce_col)
  return loss, {'aux/nll_row': mean(bce_row), 'aux/nll_col': mean(bce_col), 'aux/accuracy_row': mean(acc_row),
                'aux/accuracy_col': mean(acc_col), 'aux/valid_fraction': tf.reduce_mean(valid)}


def jump_mask(positions, max_jump: int) -> tf.Tensor:
  """float [T, ..., N]: 1 where an agent's marked pixel moves at most `max_jump` pixels (Chebyshev) from step s
  to s+1. A bigger jump is no move a player can make in one step: the agent now drives another player (the
  active player switched, e.g. in single-agent 11v11; spec ch4 §2.9) or the players were reset for a kick-off,
  and "where will I be next" has no answer in the observation."""
  step = tf.reduce_max(tf.abs(tf.cast(positions[1:] - positions[:-1], tf.int32)), axis=-1)
  return tf.cast(step <= max_jump, tf.float32)


def unroll_aux_loss(objective: str, pred_row, pred_col, observation, positions, done,
                    include_opponents: bool = False, max_jump: int = 0) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
  """The auxiliary loss on a time-major unroll batch: predictions at steps 0..T-1, targets from steps 1..T.

  Args:
    objective: 'predict' (Eq. 4.4) or 'observe_all' (Sec. 4.4.5).
    pred_row, pred_col: head logits [T+1, B, N, H] and [T+1, B, N, W].
    observation: uint8 [T+1, B, N, H, W, C] (only read by observe_all).
    positions: int [T+1, B, N, 2], each agent's (row, col) in observation t.
    done: bool [T+1, B] (done[t]: observation t starts a new episode).
    max_jump: predict only: also mask pairs whose target is more than this many pixels away (`jump_mask`);
      0 keeps every pair within an episode.
  """
  valid = next_step_mask(done)[..., tf.newaxis]                  # [T, B, 1], broadcast over agents
  if objective == 'predict':
    if max_jump:
      valid = valid * jump_mask(positions, max_jump)
    return predict_loss(pred_row[:-1], pred_col[:-1], positions[1:], valid)
  if objective == 'observe_all':
    rows, cols = occupancy_targets(observation[1:], include_opponents=include_opponents)
    return observe_all_loss(pred_row[:-1], pred_col[:-1], rows, cols, valid)
  raise ValueError(f'aux: unknown objective {objective!r}; valid values: predict, observe_all')


def micro_batch_counts(batch, num_micro: int, *, aux: str, max_jump: int, num_agents: int) -> Dict[str, tf.Tensor]:
  """The valid entries of each of `num_micro` equal slices of a batch along B: {'vtrace': [m], 'aux': [m]}.

  `vtrace_loss` and the auxiliary losses are masked means over (t, b, agent) entries; weighting micro-batch m's
  mean by count_m / sum(count) makes the sum over micro-batches equal to the whole batch's mean (gradient
  accumulation gives the same update). The counts depend on the data only (truncation, episode ends, jumps).
  """
  done = batch['done']
  t1, b = tf.shape(done)[0], tf.shape(done)[1]
  size = b // num_micro

  def per_micro(x):   # [T, B] or [T, B, N] -> [m]
    x = tf.reshape(x, tf.concat([tf.shape(x)[:1], [num_micro, size], tf.shape(x)[2:]], 0))
    axes = [0] + list(range(2, x.shape.rank))
    return tf.reduce_sum(x, axis=axes)

  valid = 1.0 - tf.cast(batch['truncated'][:-1], tf.float32)       # [T, B]
  out = {'vtrace': per_micro(valid) * float(num_agents)}
  if aux == 'none':
    out['aux'] = tf.ones([num_micro], tf.float32)
  else:
    aux_valid = next_step_mask(done)[..., tf.newaxis] * tf.ones([t1 - 1, b, num_agents], tf.float32)
    if aux == 'predict' and max_jump:
      aux_valid = aux_valid * jump_mask(batch['agent_positions'], max_jump)
    out['aux'] = per_micro(aux_valid)
  return out

