"""Seed 001 maths against slow references: the VAE terms, GAE, the clipped surrogate, kappa's linearity, which
variables each variant trains, both KL-constraint modes, the shared encoder, the Jacobian overlay, the probes."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from rlcv_tf.vae_pg import diagnostics
from rlcv_tf.vae_pg import jacobian
from rlcv_tf.vae_pg import ppo
from rlcv_tf.vae_pg import presets
from rlcv_tf.vae_pg import vae as vae_lib

tfd = tfp.distributions
TINY = presets.TINY


def test_vae_kl_matches_closed_form_and_monte_carlo():
  rng = np.random.default_rng(0)
  mu = rng.normal(size=(3, 5)).astype(np.float32)
  logvar = rng.normal(scale=0.5, size=(3, 5)).astype(np.float32)
  x = (rng.random((3, 4, 4, 1)) > 0.5).astype(np.float32)
  logits = rng.normal(size=(3, 4, 4, 1)).astype(np.float32)
  nll, kl = vae_lib.vae_terms(x, logits, mu, logvar)
  var = np.exp(logvar)
  closed = 0.5 * (mu ** 2 + var - logvar - 1.0).sum(axis=1)
  np.testing.assert_allclose(kl.numpy(), closed, rtol=1e-5)
  # Monte Carlo: E_q[log q(z) - log p(z)] with 200k samples.
  z = mu[None] + np.sqrt(var)[None] * rng.normal(size=(200_000,) + mu.shape)
  log_q = -0.5 * (((z - mu) ** 2) / var + logvar + np.log(2 * np.pi))
  log_p = -0.5 * (z ** 2 + np.log(2 * np.pi))
  np.testing.assert_allclose(kl.numpy(), (log_q - log_p).sum(-1).mean(0), rtol=1e-2)
  # Bernoulli NLL = sigmoid cross-entropy summed over pixels.
  p = 1 / (1 + np.exp(-logits))
  bce = -(x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(3, -1).sum(1)
  np.testing.assert_allclose(nll.numpy(), bce, rtol=1e-5)
  _, kl0 = vae_lib.vae_terms(x, logits, np.zeros_like(mu), np.zeros_like(logvar))
  np.testing.assert_allclose(kl0.numpy(), 0.0, atol=1e-7)


def _gae_loop(rewards, dones, values, bootstrap, gamma, lam):
  """GAE written from Schulman et al. 2016, one environment at a time, backwards."""
  t_len, e_len = rewards.shape
  adv = np.zeros_like(rewards)
  for e in range(e_len):
    running = 0.0
    for t in reversed(range(t_len)):
      next_v = bootstrap[e] if t == t_len - 1 else values[t + 1, e]
      nonterminal = 1.0 - dones[t, e]
      delta = rewards[t, e] + gamma * next_v * nonterminal - values[t, e]
      running = delta + gamma * lam * nonterminal * running
      adv[t, e] = running
  return adv


def test_gae_matches_a_numpy_loop_and_its_limits():
  rng = np.random.default_rng(1)
  t_len, e_len, gamma = 7, 3, 0.9
  rewards = rng.normal(size=(t_len, e_len)).astype(np.float32)
  values = rng.normal(size=(t_len, e_len)).astype(np.float32)
  bootstrap = rng.normal(size=(e_len,)).astype(np.float32)
  dones = np.zeros((t_len, e_len), np.float32)
  dones[2, 0] = dones[5, 1] = 1.0
  discounts = 1.0 - dones            # dm_env's discount
  no_cut = np.zeros_like(dones, bool)
  for lam in (0.0, 0.95, 1.0):
    adv, ret = ppo.gae(rewards, discounts, values, bootstrap, no_cut, gamma, lam)
    np.testing.assert_allclose(adv, _gae_loop(rewards, dones, values, bootstrap, gamma, lam), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret, adv + values, rtol=1e-5, atol=1e-5)
  adv0, _ = ppo.gae(rewards, discounts, values, bootstrap, no_cut, gamma, 0.0)
  next_v = np.concatenate([values[1:], bootstrap[None]], 0)
  np.testing.assert_allclose(adv0, rewards + gamma * next_v * discounts - values, rtol=1e-5, atol=1e-5)
  adv1, _ = ppo.gae(rewards, discounts, values, bootstrap, no_cut, gamma, 1.0)
  returns = np.zeros_like(rewards)
  running = bootstrap.copy()
  for t in reversed(range(t_len)):
    running = rewards[t] + gamma * discounts[t] * running
    returns[t] = running
  np.testing.assert_allclose(adv1, returns - values, rtol=1e-5, atol=1e-5)
  # The episode end at step 2 of env 0 cuts the bootstrap: steps 0..2 do not see rewards after it.
  changed = rewards.copy()
  changed[3:, 0] += 100.0
  adv_c, _ = ppo.gae(changed, discounts, values, bootstrap, no_cut, gamma, 1.0)
  np.testing.assert_allclose(adv_c[:3, 0], adv1[:3, 0], rtol=1e-6)


def test_clipped_surrogate_on_hand_set_ratios():
  ratios = np.array([0.5, 1.0, 1.5, 0.5, 1.0, 1.5], np.float32)
  adv = np.array([1, 1, 1, -1, -1, -1], np.float32)
  eps = 0.2
  ref = np.minimum(ratios * adv, np.clip(ratios, 1 - eps, 1 + eps) * adv)
  np.testing.assert_allclose(ref, [0.5, 1.0, 1.2, -0.8, -1.0, -1.5])
  log_old = np.zeros(6, np.float32)
  log_new = tf.Variable(np.log(ratios))
  with tf.GradientTape() as tape:
    per = [ppo.clipped_surrogate(log_new[i:i + 1], log_old[i:i + 1], adv[i:i + 1], eps) for i in range(6)]
  np.testing.assert_allclose([float(p) for p in per], ref, rtol=1e-6)
  with tf.GradientTape() as tape:
    j = ppo.clipped_surrogate(log_new, log_old, adv, eps)
  grad = tape.gradient(j, log_new).numpy()
  np.testing.assert_allclose(float(j), ref.mean(), rtol=1e-6)
  # Zero where clipped (A > 0 and o > 1 + eps; A < 0 and o < 1 - eps), o * A / N elsewhere.
  assert grad[2] == 0.0 and grad[3] == 0.0
  np.testing.assert_allclose(grad[[0, 1, 4, 5]], (ratios * adv)[[0, 1, 4, 5]] / 6, rtol=1e-6)


def _learner(variant, **overrides):
  cfg = TINY.replace(variant=variant, **overrides).validate()
  return ppo.PPOLearner(cfg, num_actions=4, seed=0)


def _batch(cfg, n=8, seed=0):
  rng = np.random.default_rng(seed)
  s, k = cfg.image_size, cfg.num_frames
  return ppo.Batch(frames=rng.integers(0, 256, (n, s, s, k)).astype(np.uint8),
                   actions=rng.integers(0, 4, n).astype(np.int32),
                   log_prob_old=np.full(n, np.log(0.25), np.float32) + rng.normal(0, 0.1, n).astype(np.float32),
                   advantages=rng.normal(size=n).astype(np.float32), returns=rng.normal(size=n).astype(np.float32),
                   weights=np.ones(n, np.float32))


def _grads(learner, batch, kappa_scale, seed=(3, 4)):
  variables = (learner.model.encoder.trainable_variables + learner.vae.decoder.trainable_variables
               + learner.model.head_variables())
  args = [tf.constant(x) for x in (batch.frames, batch.actions, batch.log_prob_old, batch.advantages, batch.returns,
                                   batch.weights)]
  with tf.GradientTape(persistent=True) as tape:
    out = learner.losses(*args, seed=tf.constant(seed, tf.int64))
    ppo_loss = out['ppo/loss']
    vae_loss, _ = learner.vae_loss(args[0], args[5], tf.constant(seed, tf.int64))
  g_total = tape.gradient(out['loss/total'], variables)
  g_ppo = tape.gradient(ppo_loss, variables, unconnected_gradients=tf.UnconnectedGradients.NONE)
  g_vae = tape.gradient(vae_loss, variables)
  return variables, g_total, g_ppo, g_vae


def test_joint_loss_is_kappa_linear_and_routes_gradients():
  learner = _learner('joint', kappa=7.0)
  batch = _batch(learner.cfg)
  variables, g_total, g_ppo, g_vae = _grads(learner, batch, 7.0)
  n_enc = len(learner.model.encoder.trainable_variables)
  n_dec = len(learner.vae.decoder.trainable_variables)
  for i, v in enumerate(variables):
    if i < n_enc:      # encoder: kappa g_PPO + g_VAE (PPO reads mu only: no gradient to the log-variance head)
      if g_ppo[i] is None:
        assert 'logvar' in v.path, v.path
      ppo_part = 0.0 if g_ppo[i] is None else 7.0 * g_ppo[i].numpy()
      np.testing.assert_allclose(g_total[i].numpy(), ppo_part + g_vae[i].numpy(), rtol=1e-4, atol=1e-5)
    elif i < n_enc + n_dec:   # decoder: dL_VAE only; L_PPO does not reach it
      assert g_ppo[i] is None, v.name
      np.testing.assert_allclose(g_total[i].numpy(), g_vae[i].numpy(), rtol=1e-5, atol=1e-6)
    else:               # MLP: kappa dL_PPO only
      assert g_vae[i] is None, v.name
      np.testing.assert_allclose(g_total[i].numpy(), 7.0 * g_ppo[i].numpy(), rtol=1e-5, atol=1e-7)


def test_variants_train_the_right_variables():
  batch_cfg = TINY
  rng = np.random.default_rng(0)
  fixed = _learner('fixed')
  before = [v.numpy().copy() for v in fixed.model.encoder.variables]
  heads_before = [v.numpy().copy() for v in fixed.model.head_variables()]
  fixed.update(_batch(batch_cfg, n=16), rng)
  for b, v in zip(before, fixed.model.encoder.variables):
    np.testing.assert_array_equal(b, v.numpy())
  assert any(not np.array_equal(b, v.numpy()) for b, v in zip(heads_before, fixed.model.head_variables()))

  adapt = _learner('adapt')
  dec_ids = {id(v) for v in adapt.vae.decoder.variables}
  assert not any(id(v) in dec_ids for v in adapt.variables)
  trained = {id(v) for v in adapt.variables}
  for v in adapt.model.encoder.trainable_variables:     # every encoder variable but the unread log-variance head
    assert (id(v) in trained) == ('/logvar/' not in v.path), v.path
  enc_before = [v.numpy().copy() for v in adapt.model.encoder.trainable_variables]
  dec_before = [v.numpy().copy() for v in adapt.vae.decoder.variables]
  adapt.update(_batch(batch_cfg, n=16), rng)
  assert any(not np.array_equal(b, v.numpy()) for b, v in zip(enc_before, adapt.model.encoder.trainable_variables))
  for b, v in zip(dec_before, adapt.vae.decoder.variables):
    np.testing.assert_array_equal(b, v.numpy())

  joint = _learner('joint')
  dec_before = [v.numpy().copy() for v in joint.vae.decoder.variables]
  joint.update(_batch(batch_cfg, n=16), rng)
  assert any(not np.array_equal(b, v.numpy()) for b, v in zip(dec_before, joint.vae.decoder.variables))


def test_kl_constraint_modes():
  # A huge learning rate moves the policy far in one minibatch update: delta_MB > delta_target.
  rng = np.random.default_rng(0)
  early = _learner('adapt', learning_rate=0.5, epochs=3, num_minibatches=2, delta_target=1e-4)
  logs = early.update(_batch(TINY, n=16), rng)
  assert logs['ppo/last_delta_mb'] > 1e-4
  assert logs['ppo/early_stopped'] == 1.0 and logs['ppo/minibatch_updates'] < 3 * 2
  revert = _learner('adapt', learning_rate=0.5, epochs=3, num_minibatches=2, delta_target=1e-4,
                    kl_mode='revert')
  snapshot = [v.numpy().copy() for v in revert.variables]
  logs = revert.update(_batch(TINY, n=16), rng)
  assert logs['ppo/minibatch_updates'] == 6 and logs['ppo/reverted'] == 1.0
  for b, v in zip(snapshot, revert.variables):
    np.testing.assert_array_equal(b, v.numpy())
  # Within the target nothing is reverted.
  calm = _learner('adapt', learning_rate=1e-6, kl_mode='revert')
  batch = _batch(TINY, n=16)
  logits, _ = calm.act(batch.frames)    # pi_old = the current policy
  batch.log_prob_old = tfd.Categorical(logits=logits).log_prob(batch.actions).numpy()
  snapshot = [v.numpy().copy() for v in calm.variables]
  logs = calm.update(batch, rng)
  assert logs['ppo/reverted'] == 0.0
  assert any(not np.array_equal(b, v.numpy()) for b, v in zip(snapshot, calm.variables))


def test_shared_encoder_and_means_only():
  learner = _learner('adapt')
  frames = _batch(TINY, n=3).frames
  u = learner.model.features(frames).numpy()
  per_frame = [learner.model.encoder(vae_lib.frames_to_float(frames[..., i:i + 1]))[0].numpy()
               for i in range(frames.shape[-1])]
  np.testing.assert_allclose(u, np.concatenate(per_frame, axis=1), atol=1e-6)
  assert len([v for v in learner.model.variables if 'conv1' in v.path and 'kernel' in v.path]) == 1
  a = learner.model(frames)[0].numpy()
  b = learner.model(frames)[0].numpy()
  np.testing.assert_array_equal(a, b)   # no sampling inside the policy


def test_jacobian_overlay_changes_only_blue_above_the_mean():
  rng = np.random.default_rng(0)
  frame = rng.integers(0, 200, (6, 6, 2)).astype(np.uint8)
  jac = rng.normal(size=(6, 6, 2)).astype(np.float32)
  out = jacobian.overlay(frame, jac)
  grey = np.round(frame[..., -1] / 255.0 * 255).astype(np.uint8)
  np.testing.assert_array_equal(out[..., 0], grey)
  np.testing.assert_array_equal(out[..., 1], grey)
  above = np.abs(jac[..., -1]) > np.abs(jac[..., -1]).mean()
  np.testing.assert_array_equal(out[..., 2][~above], grey[~above])
  assert (out[..., 2][above] >= grey[above]).all() and (out[..., 2][above] > grey[above]).any()
  learner = _learner('adapt')
  j = jacobian.value_jacobian(learner.model, _batch(TINY, n=2).frames)
  assert j.shape == (2, 21, 21, 2) and np.abs(j).sum() > 0


def test_ball_error_and_probe():
  frames = np.zeros((2, 5, 5, 1), np.uint8)
  frames[0, 1, 2, 0] = 255
  recon = np.zeros((2, 5, 5, 1), np.float32)
  masks = diagnostics.ball_masks(np.array([2.4, -1]), np.array([1.0, -1]), 5, (1, 1))
  out = diagnostics.ball_pixel_error(frames, recon, masks)
  assert out['frames_with_ball'] == 1
  np.testing.assert_allclose(out['mse_ball'], 1.0)
  np.testing.assert_allclose(out['mse_frame'], 1.0 / 25)
  rng = np.random.default_rng(0)
  f = rng.normal(size=(200, 6))
  t = f[:, :2] @ np.array([[1.0, 2.0], [0.5, -1.0]]) + 3.0
  assert diagnostics.ball_probe_r2(f[:100], t[:100], f[100:], t[100:]) > 0.999
  noise = rng.normal(size=(200, 2))
  assert diagnostics.ball_probe_r2(f[:100], noise[:100], f[100:], noise[100:]) < 0.1


def test_config_refuses_bad_settings():
  with pytest.raises(ValueError, match='kappa'):
    TINY.replace(kappa=0.0).validate()
  with pytest.raises(ValueError, match='variant'):
    TINY.replace(variant='frozen').validate()
  with pytest.raises(ValueError, match='num_minibatches'):
    TINY.replace(num_minibatches=5).validate()


def test_actor_critic_checkpoint_holds_the_trunk_and_restores_the_same_policy(tmp_path):
  """The 64-64 trunk is a list of layers, which tf.train.Checkpoint does not see by itself (core/tracking.py): a
  checkpoint of the model alone must hold every variable, and a fresh model restored from it acts the same."""
  from rlcv_tf.vae_pg import policy as policy_lib  # pylint: disable=g-import-not-at-top

  def make(seed):
    tf.keras.utils.set_random_seed(seed)
    enc = vae_lib.Encoder(filters=(4, 8), fc=16, latent_dim=3)
    model = policy_lib.ActorCritic(enc, num_actions=4, num_frames=2, latent_dim=3, hidden=(8, 8))
    model(tf.zeros((1, 21, 21, 2)))
    return model

  frames = tf.constant(np.random.default_rng(0).uniform(size=(5, 21, 21, 2)), tf.float32)
  model = make(0)
  path = tf.train.Checkpoint(model=model).write(str(tmp_path / 'ck'))
  saved = [n for n, _ in tf.train.list_variables(path) if n.startswith('model/')]
  assert len(saved) == len(model.variables)
  fresh = make(1)
  tf.train.Checkpoint(model=fresh).read(path).assert_existing_objects_matched()
  for a, b in zip(tf.nest.flatten(model(frames)), tf.nest.flatten(fresh(frames))):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
