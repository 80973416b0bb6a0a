"""Auxiliary objectives of Chapter 4 (Eq. 4.4, Sec. 4.4.5; spec ch4 §2.6, §2.7, §3.3, §7.1 item 26, §7.2 "Aux CE",
"Observe-all BCE"): the losses against slow NumPy loops with masks, targets taken from step t+1 and masked at
episode ends, gradients that reach the torso but never the value head, and the learner's total loss and logs."""

import numpy as np
import pytest
import tensorflow as tf

import marl_test_helpers
from rlcv_tf.marl import config as config_lib
from rlcv_tf.marl import learner as learner_lib
from rlcv_tf.marl import learning
from rlcv_tf.marl import networks

T, B, N, H, W = 4, 3, 5, 6, 8


def _log_softmax(x):
  x = x - x.max(-1, keepdims=True)
  return x - np.log(np.exp(x).sum(-1, keepdims=True))


def numpy_predict(row_logits, col_logits, positions, done, max_jump=0):
  """Eq. 4.4 by loops: step s predicts positions[s+1]; pairs with done[s+1] are skipped, and with max_jump > 0
  so are pairs whose target lies more than max_jump pixels (either axis) from positions[s]."""
  tot = nr = nc = ar = ac = 0.0
  count = 0
  for s in range(row_logits.shape[0] - 1):
    for b in range(row_logits.shape[1]):
      if done[s + 1, b]:
        continue
      for i in range(row_logits.shape[2]):
        r, c = positions[s + 1, b, i]
        if max_jump and max(abs(r - positions[s, b, i, 0]), abs(c - positions[s, b, i, 1])) > max_jump:
          continue
        lr, lc = _log_softmax(row_logits[s, b, i]), _log_softmax(col_logits[s, b, i])
        nr += -lr[r]
        nc += -lc[c]
        ar += float(np.argmax(row_logits[s, b, i]) == r)
        ac += float(np.argmax(col_logits[s, b, i]) == c)
        count += 1
  count = max(count, 1)
  return (nr + nc) / count, nr / count, nc / count, ar / count, ac / count


def random_unroll(seed=0, c=8):
  rng = np.random.default_rng(seed)
  row = rng.normal(size=(T + 1, B, N, H)).astype(np.float32) * 2
  col = rng.normal(size=(T + 1, B, N, W)).astype(np.float32) * 2
  pos = np.stack([rng.integers(0, H, (T + 1, B, N)), rng.integers(0, W, (T + 1, B, N))], -1).astype(np.int32)
  done = rng.random((T + 1, B)) < 0.3
  obs = ((rng.random((T + 1, B, N, H, W, c)) < 0.1) * 255).astype(np.uint8)
  return row, col, pos, done, obs


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_predict_loss_matches_numpy_loop_with_episode_masks(seed):
  row, col, pos, done, obs = random_unroll(seed)
  loss, logs = learning.unroll_aux_loss('predict', row, col, obs, pos, done)
  ref = numpy_predict(row, col, pos, done)
  np.testing.assert_allclose(float(loss), ref[0], rtol=1e-5)
  for key, r in zip(('aux/nll_row', 'aux/nll_col', 'aux/accuracy_row', 'aux/accuracy_col'), ref[1:]):
    np.testing.assert_allclose(float(logs[key]), r, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('max_jump', [2, 4])
def test_jumped_targets_are_masked_like_a_numpy_loop(max_jump):
  """An active-player switch (spec §2.9): a target far from where the agent is cannot be predicted and is
  dropped. Random positions jump often, so the mask matters here (the unmasked loss differs)."""
  row, col, pos, done, obs = random_unroll(4)
  pos[:, 0, 0] = np.arange(T + 1)[:, None]    # one agent walks diagonally, so some pairs survive a tight mask
  loss, logs = learning.unroll_aux_loss('predict', row, col, obs, pos, done, max_jump=max_jump)
  ref = numpy_predict(row, col, pos, done, max_jump=max_jump)
  np.testing.assert_allclose(float(loss), ref[0], rtol=1e-5)
  assert abs(ref[0] - numpy_predict(row, col, pos, done)[0]) > 1e-3
  assert 0 < float(logs['aux/valid_fraction']) < float(np.mean(~done[1:]))


def test_targets_come_from_the_next_step_and_done_steps_contribute_nothing():
  row, col, pos, done, obs = random_unroll(3)
  done[:] = False
  done[2, 1] = True                      # obs 2 of env 1 starts a new episode: pair (s=1, b=1) is invalid
  base = float(learning.unroll_aux_loss('predict', row, col, obs, pos, done)[0])
  # Changing the prediction at the masked pair, or the target it would use, changes nothing ...
  row2, pos2 = row.copy(), pos.copy()
  row2[1, 1] += 50.0
  pos2[2, 1] = (pos2[2, 1] + 1) % H
  pos2[0] = 0                            # ... nor do the positions at step 0 (no step predicts them)
  masked = float(learning.unroll_aux_loss('predict', row2, col, obs, pos2, done)[0])
  np.testing.assert_allclose(masked, base, rtol=1e-6)
  # ... while changing the t+1 target of a valid pair does.
  pos3 = pos.copy()
  pos3[1, 0, 0, 0] = (pos3[1, 0, 0, 0] + 1) % H
  assert abs(float(learning.unroll_aux_loss('predict', row, col, obs, pos3, done)[0]) - base) > 1e-4


def test_uniform_logits_give_log_h_plus_log_w_and_confident_targets_give_zero():
  pos = np.zeros((2, 1, 3, 2), np.int32)
  pos[1, 0, :, 0], pos[1, 0, :, 1] = (5, 40, 71), (0, 50, 95)
  done = np.zeros((2, 1), bool)
  zeros = learning.unroll_aux_loss('predict', np.zeros((2, 1, 3, 72), np.float32),
                                   np.zeros((2, 1, 3, 96), np.float32), None, pos, done)[0]
  np.testing.assert_allclose(float(zeros), np.log(72) + np.log(96), rtol=1e-6)   # 8.841014
  np.testing.assert_allclose(float(zeros), 8.841014, atol=1e-5)
  row, col = np.zeros((2, 1, 3, 72), np.float32), np.zeros((2, 1, 3, 96), np.float32)
  for i in range(3):
    row[0, 0, i, pos[1, 0, i, 0]] = 100.0
    col[0, 0, i, pos[1, 0, i, 1]] = 100.0
  loss, logs = learning.unroll_aux_loss('predict', row, col, None, pos, done)
  assert float(loss) < 1e-6
  assert float(logs['aux/accuracy_row']) == 1.0 and float(logs['aux/accuracy_col']) == 1.0
  # Everything masked: 0, not NaN.
  all_done = np.ones((2, 1), bool)
  assert float(learning.unroll_aux_loss('predict', row, col, None, pos, all_done)[0]) == 0.0


@pytest.mark.parametrize('opponents', [False, True])
def test_occupancy_targets_read_the_newest_frames_team_planes(opponents):
  _, _, _, _, obs = random_unroll(4, c=8)      # two SMM frames: newest planes are channels 4..7
  rows, cols = learning.occupancy_targets(tf.constant(obs), include_opponents=opponents)
  occ = obs[..., 4] > 0
  if opponents:
    occ = occ | (obs[..., 5] > 0)
  for idx in np.ndindex(obs.shape[:3]):
    np.testing.assert_array_equal(rows.numpy()[idx], [float(occ[idx][h].any()) for h in range(H)])
    np.testing.assert_array_equal(cols.numpy()[idx], [float(occ[idx][:, w].any()) for w in range(W)])
  with pytest.raises(ValueError, match='SMM'):
    learning.occupancy_targets(tf.constant(obs[..., :6]))


def test_observe_all_loss_matches_summed_sigmoid_bce():
  row, col, pos, done, obs = random_unroll(5)
  loss, logs = learning.unroll_aux_loss('observe_all', row, col, obs, pos, done)
  sig = lambda x: 1.0 / (1.0 + np.exp(-x.astype(np.float64)))
  tot_r = tot_c = 0.0
  count = 0
  for s in range(T):
    for b in range(B):
      if done[s + 1, b]:
        continue
      for i in range(N):
        occ = obs[s + 1, b, i, ..., 4] > 0      # (in the SMM every agent sees the same team planes)
        tr, tc = occ.any(1).astype(float), occ.any(0).astype(float)
        pr, pc = sig(row[s, b, i]), sig(col[s, b, i])
        tot_r += -(tr * np.log(pr) + (1 - tr) * np.log(1 - pr)).sum()
        tot_c += -(tc * np.log(pc) + (1 - tc) * np.log(1 - pc)).sum()
        count += 1
  np.testing.assert_allclose(float(logs['aux/nll_row']), tot_r / count, rtol=1e-5)
  np.testing.assert_allclose(float(logs['aux/nll_col']), tot_c / count, rtol=1e-5)
  np.testing.assert_allclose(float(loss), (tot_r + tot_c) / count, rtol=1e-5)
  # And against TF's own op, summed over bins (spec §7.2).
  rows, cols = learning.occupancy_targets(tf.constant(obs[1:]))
  valid = (1 - done[1:].astype(np.float32))[..., None]
  tf_ref = (tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(rows, row[:-1]), -1) +
            tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(cols, col[:-1]), -1)).numpy()
  np.testing.assert_allclose(float(loss), (tf_ref * valid).sum() / (valid * np.ones_like(tf_ref)).sum(), rtol=1e-5)


@pytest.mark.parametrize('kind', ['cnn', 'acnn'])
def test_aux_gradient_reaches_the_torso_and_never_the_value_or_policy_head(kind):
  obs_shape = (3, 12, 16, 8)
  net = networks.build_network(kind, 19, obs_shape, stack_channels=((8, 1), (8, 1)), feature_dim=32,
                               prediction_heads=True)
  rng = np.random.default_rng(0)
  obs = ((rng.random((T + 1, 2) + obs_shape) < 0.1) * 255).astype(np.uint8)
  pos = np.stack([rng.integers(0, 12, (T + 1, 2, 3)), rng.integers(0, 16, (T + 1, 2, 3))], -1)
  done = np.zeros((T + 1, 2), bool)
  with tf.GradientTape(persistent=True) as tape:
    out = net(obs.reshape((-1,) + obs_shape))
    row = tf.reshape(out['pred_row'], [T + 1, 2, 3, 12])
    col = tf.reshape(out['pred_col'], [T + 1, 2, 3, 16])
    loss, _ = learning.unroll_aux_loss('predict', row, col, obs, pos, done)
  g_torso = tape.gradient(loss, net.torso.trainable_variables)
  assert all(g is not None for g in g_torso) and sum(float(tf.reduce_sum(tf.abs(g))) for g in g_torso) > 0
  for head in (net.value_head, net.policy_head):
    for g in tape.gradient(loss, head.trainable_variables):
      assert g is None or float(tf.reduce_max(tf.abs(g))) == 0.0
  if kind == 'acnn':
    assert all(g is not None for g in tape.gradient(loss, net.attention.trainable_variables))


@pytest.mark.parametrize('model,aux', [('cnn', 'predict'), ('acnn', 'predict'), ('acnn', 'observe_all')])
def test_learner_adds_weighted_aux_loss_and_logs_it(model, aux):
  obs_shape = (3, 12, 16, 8)
  kw = dict(model=model, batch_size=2, unroll_length=T, stack_channels=((8, 1), (8, 1)), feature_dim=32)
  batch = marl_test_helpers.synthetic_unroll_batch(obs_shape, t1=T + 1)
  lrn = learner_lib.Learner(config_lib.MarlConfig(aux=aux, aux_coef=0.25, **kw), obs_shape, 19)
  assert lrn.model.row_head is not None
  # The same weights without the aux term give the RL part of the loss.
  plain = learner_lib.Learner(config_lib.MarlConfig(aux='none', **kw), obs_shape, 19)
  assert plain.model.row_head is None
  for a, b in zip(plain.model.weights, [v for v in lrn.model.weights if 'pred_' not in v.path]):
    a.assign(b)
  logs = lrn.train(batch)
  rl = plain.train(batch)
  for key in ('loss/aux', 'aux/nll_row', 'aux/nll_col', 'aux/accuracy_row', 'aux/accuracy_col'):
    assert key in logs and np.isfinite(logs[key])
  np.testing.assert_allclose(logs['loss/aux'], 0.25 * logs['aux/objective'], rtol=1e-5)
  np.testing.assert_allclose(logs['loss/total'], rl['loss/total'] + logs['loss/aux'], rtol=1e-4, atol=1e-5)
  if aux == 'predict':
    np.testing.assert_allclose(logs['aux/objective'], logs['aux/nll_row'] + logs['aux/nll_col'], rtol=1e-5)


def test_config_rejects_bad_aux_values():
  with pytest.raises(ValueError, match='aux: unknown value'):
    config_lib.MarlConfig(aux='both').validate()
  with pytest.raises(ValueError, match='aux_coef'):
    config_lib.MarlConfig(aux_coef=-1.0).validate()
  assert config_lib.MarlConfig().aux_coef == 5e-4          # App. 4.E sweep {1e-4, 5e-4}; spec §4.3 default


def test_training_run_with_aux_writes_tensorboard_scalars(tmp_path):
  from rlcv_tf.marl import training  # pylint: disable=g-import-not-at-top
  cfg = config_lib.MarlConfig(env='mini_5v5_small', model='cnn', aux='predict', num_actors=2, batch_size=2,
                              unroll_length=8, total_frames=16, checkpoint_interval_s=1e9, log_interval_s=0.0,
                              stack_channels=((8, 1), (8, 1)), feature_dim=32)
  lines = []
  logdir = str(tmp_path / 'run')
  res = training.train(cfg, logdir, print_fn=lines.append)
  assert any('aux row' in l for l in lines)
  tags = set()
  for path in tf.io.gfile.glob(logdir + '/events.out.tfevents.*'):
    for event in tf.compat.v1.train.summary_iterator(path):
      tags.update(v.tag for v in event.summary.value)
  assert {'loss/aux', 'aux/nll_row', 'aux/nll_col', 'aux/accuracy_row', 'aux/accuracy_col'} <= tags
  served = tf.saved_model.load(res.saved_model)     # keep a reference: its variables die with the object
  out = served.serve(tf.zeros((1, 5, 18, 24, 16), tf.uint8))
  assert out['pred_row'].shape == (1, 5, 18) and out['pred_col'].shape == (1, 5, 24)
