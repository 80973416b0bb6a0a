"""Chapter 7 stage 2 (Eqs. 7.3-7.5): gradient routing per spec §4's table, the frozen stage-1 module bit-identical
after training (BN statistics included), the loss terms against per-frame loops and a NumPy Eq. 7.5, Weizmann's
best-warp frame against a double loop, the statics-only ablation, and the stage-1 clip step's seeded pairs.

References avoid the trainer's batching: L_statics is rebuilt one frame at a time, InfoNCE from a NumPy loop over
anchors, j* from a loop over (j, t).
"""

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.video import models
from rlcv_tf.video import presets
from rlcv_tf.video import train_steps


def _perturb_localisation(stn, seed=3, scale=0.05):
  rng = np.random.default_rng(seed)
  for net in stn.loc_nets:
    net.theta.kernel.assign(rng.normal(0.0, scale, net.theta.kernel.shape).astype(np.float32))


def _trainer(dataset='weizmann', ablation='', seed=0, **overrides):
  tf.keras.utils.set_random_seed(seed)
  config = presets.get_preset(dataset, 'tiny', **overrides)
  built = models.build_models(config)
  _perturb_localisation(built['block_stn'])
  trainer = train_steps.Stage2Trainer(config, built['frame_autoencoder'], built['block_stn'], built['video_encoder'],
                                      built['frame_dynamics'], built['predictor'], ablation=ablation)
  return trainer


def _video(config, batch=3, seed=1):
  low = 0.0 if config.output_activation == 'sigmoid' else -1.0
  return np.random.default_rng(seed).uniform(low, 1.0, (batch,) + config.video_shape).astype(np.float32)


@pytest.fixture(scope='module')
def weizmann():
  return _trainer('weizmann')


def _is_zero(grads):
  return all(g is None or not np.any(g.numpy()) for g in grads)


def _is_nonzero(grads):
  return all(g is not None for g in grads) and any(np.any(g.numpy()) for g in grads)


def test_gradient_routing_follows_the_spec_table(weizmann):
  trainer = weizmann
  assert trainer.config.lambda_reg > 0          # the Weizmann preset has the best-warp regulariser
  groups = dict(trainer.video_encoder.variable_groups())
  groups['frame_dynamics'] = trainer.frame_dynamics.trainable_variables
  groups['predictor'] = trainer.predictor.trainable_variables
  video = _video(trainer.config)
  with tf.GradientTape(persistent=True) as tape:
    terms = trainer.loss_terms(video, training=True)
  expected = {  # term -> groups that must receive gradient (all others none)
      'statics': {'trunk', 'statics_head'},
      'reg': {'trunk', 'statics_head'},
      'frame': {'frame_dynamics'},
      'pred': {'trunk', 'dynamics_branch', 'predictor'},
  }
  for term, receivers in expected.items():
    for group, variables in groups.items():
      grads = tape.gradient(terms[term], variables)
      if group in receivers:
        assert _is_nonzero(grads), f'{term} should reach {group}'
      else:
        assert _is_zero(grads), f'{term} must not reach {group}'
  del tape


def test_frozen_stage1_module_is_bit_identical_and_the_rest_trains(weizmann):
  trainer = weizmann
  frozen = train_steps.variable_snapshot(trainer.autoencoder, trainer.stn)
  trained = train_steps.variable_snapshot(trainer.video_encoder, trainer.frame_dynamics, trainer.predictor)
  assert any('moving_mean' in k for k in frozen)         # BN statistics are part of the check
  for seed in range(3):
    out = trainer.train_step(_video(trainer.config, seed=10 + seed))
    assert np.isfinite(float(out['loss']))
  assert int(trainer.step.numpy()) == 3
  after = train_steps.variable_snapshot(trainer.autoencoder, trainer.stn)
  for name, value in frozen.items():
    np.testing.assert_array_equal(after[name], value, err_msg=name)
  moved = train_steps.variable_snapshot(trainer.video_encoder, trainer.frame_dynamics, trainer.predictor)
  changed = {k for k, v in trained.items() if not np.array_equal(moved[k], v)}
  for module in ('video_encoder', 'frame_dynamics', 'predictor'):
    assert any(k.startswith(module) for k in changed), module
  # None of the frozen variables is in the optimizer.
  frozen_ids = {id(v) for v in trainer.autoencoder.variables + trainer.stn.variables}
  assert not any(id(v) in frozen_ids for v in trainer.variables)


def _info_nce_loop(p_hat, p_true):
  """Eq. 7.5 as written: per anchor (v, t), -log exp(a.b+) / sum over every (n, i) of exp(a.b), mean over anchors."""
  n, t, _ = p_true.shape
  total = []
  for v in range(n):
    for s in range(t):
      scores = np.array([[float(np.dot(p_hat[v, s], p_true[m, i])) for i in range(t)] for m in range(n)])
      top = scores.max()
      total.append(-(scores[v, s] - top - np.log(np.exp(scores - top).sum())))
  return float(np.mean(total))


def test_loss_terms_match_per_frame_references():
  trainer = _trainer('mmnist')
  c = trainer.config
  video = _video(c, batch=2, seed=4)
  terms = trainer.loss_terms(video, training=False)
  statics, dynamics = trainer.video_encoder(video, training=False)
  per_frame, frame_terms, codes = [], [], []
  for t in range(c.num_frames):
    x_t = video[:, t]
    s_t = trainer.autoencoder.encode(x_t, training=False)
    warped, _ = trainer.stn(statics, s_t)
    per_frame.append(np.mean((x_t - trainer.autoencoder.decode(warped, training=False).numpy()) ** 2))
    p_t = trainer.frame_dynamics.encode(x_t, statics, training=False)
    frame_terms.append(np.mean((x_t - trainer.frame_dynamics.decode(p_t, statics, training=False).numpy()) ** 2))
    codes.append(p_t.numpy())
  codes = np.stack(codes, axis=1)
  np.testing.assert_allclose(float(terms['statics']), np.mean(per_frame), rtol=1e-5)
  np.testing.assert_allclose(float(terms['frame']), np.mean(frame_terms), rtol=1e-5)
  p_hat = trainer.predictor(dynamics, codes[:, 0], steps=c.num_frames - 1).numpy()
  np.testing.assert_allclose(float(terms['pred']), _info_nce_loop(p_hat, codes[:, 1:]), rtol=1e-4)
  expected = c.lambda_statics * np.mean(per_frame) + c.lambda_frame * np.mean(frame_terms) + c.lambda_pred * float(
      terms['pred'])
  np.testing.assert_allclose(float(terms['loss']), expected, rtol=1e-5)
  assert 'reg' not in terms                    # MMNIST: lambda_reg = 0


def test_best_warp_frame_matches_a_double_loop(weizmann):
  trainer = weizmann
  c = trainer.config
  video = _video(c, batch=2, seed=5)
  codes = trainer.frame_codes(video)
  j = trainer.best_warp_frame(video, codes).numpy()
  for b in range(2):
    scores = []
    for src in range(c.num_frames):
      errs = []
      for tgt in range(c.num_frames):
        if tgt == src:
          continue
        warped, _ = trainer.stn(codes[b:b + 1, src], codes[b:b + 1, tgt])
        rebuilt = trainer.autoencoder.decode(warped, training=False).numpy()
        errs.append(np.mean((video[b, tgt] - rebuilt[0]) ** 2))
      scores.append(np.mean(errs))
    assert j[b] == int(np.argmin(scores)), (b, scores)


def test_statics_only_ablation_trains_enc_v_alone():
  trainer = _trainer('mmnist', ablation='statics_only')
  before = train_steps.variable_snapshot(trainer.frame_dynamics, trainer.predictor)
  terms = trainer.train_step(_video(trainer.config, seed=6))
  assert 'frame' not in terms and 'pred' not in terms
  after = train_steps.variable_snapshot(trainer.frame_dynamics, trainer.predictor)
  for name, value in before.items():
    np.testing.assert_array_equal(after[name], value, err_msg=name)
  assert {id(v) for v in trainer.variables} == {id(v) for v in trainer.video_encoder.trainable_variables}


def test_unknown_ablation_is_one_clear_error():
  with pytest.raises(ValueError, match='ablation'):
    _trainer('mmnist', ablation='dynamics_only')


def test_stage1_clip_step_pairs_follow_seed_and_step():
  config = presets.get_preset('mmnist', 'tiny')
  tf.keras.utils.set_random_seed(0)
  first = train_steps.Stage1Trainer(config, models.FrameAutoencoder(config), models.BlockSTN.from_video_config(config),
                                    seed=5)
  tf.keras.utils.set_random_seed(0)
  second = train_steps.Stage1Trainer(config, models.FrameAutoencoder(config),
                                     models.BlockSTN.from_video_config(config), seed=5)
  video = np.random.default_rng(0).uniform(0, 1, (4, 12) + config.frame_shape).astype(np.float32)
  a = [float(first.train_clips(video)['loss']) for _ in range(2)]
  b = [float(second.train_clips(video)['loss']) for _ in range(2)]
  assert a == b and int(first.step.numpy()) == 2


@pytest.mark.parametrize('ablation', ['', 'statics_only'])
def test_evaluate_stage2_ratios_match_a_per_clip_reference(ablation):
  """The held-out ratios of evaluate_stage2 (one forward pass per batch) against a loop over clips and frames:
  squared errors of g_dec(T(S, s_t) o S) and f_dec(p_t, S) summed frame by frame, over the mean frame's error."""
  from rlcv_tf.video import training  # pylint: disable=g-import-not-at-top
  trainer = _trainer('mmnist', ablation=ablation)
  c = trainer.config
  clips = _video(c, batch=4, seed=7)
  out = training.evaluate_stage2(trainer, clips, batch=2)
  frames = clips.reshape((-1,) + clips.shape[2:])
  mean_err = np.mean((frames - frames.mean(axis=0)) ** 2)
  statics_err, frame_err = 0.0, 0.0
  for clip in clips:
    statics, _ = trainer.video_encoder(clip[None], training=False)
    for x in clip:
      warped, _ = trainer.stn(statics, trainer.autoencoder.encode(x[None], training=False))
      statics_err += np.sum((x - trainer.autoencoder.decode(warped, training=False).numpy()[0]) ** 2)
      p_t = trainer.frame_dynamics.encode(x[None], statics, training=False)
      frame_err += np.sum((x - trainer.frame_dynamics.decode(p_t, statics, training=False).numpy()[0]) ** 2)
  np.testing.assert_allclose(out['statics_over_mean'], statics_err / frames.size / mean_err, rtol=1e-4)
  if ablation:
    assert 'frame_over_mean' not in out and 'heldout_pred' not in out
  else:
    np.testing.assert_allclose(out['frame_over_mean'], frame_err / frames.size / mean_err, rtol=1e-4)
    assert out['pred_chance'] == pytest.approx(1.0 / (2 * (c.num_frames - 1)))
