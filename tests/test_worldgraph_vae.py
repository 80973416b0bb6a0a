"""The waypoint VAE (worldgraph/vae.py): masks, padding, the constraint terms against a NumPy reading of Eq. 3.9-3.11,
gradients into all three networks, the multiplier step, and a toy it must learn (spec Sec. 9.7-9.8)."""

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.worldgraph import vae as vae_lib

H = W = 7
T = 6


def _cfg(**kw):
  fields = dict(height=H, width=W, horizon=T, mu0=2.0, state_embedding=8, state_hidden=16, lstm_units=16,
                head_hidden=16)
  fields.update(kw)
  return vae_lib.VAEConfig(**fields)


def _batch(rng, batch=5, lengths=None):
  cells = rng.integers(1, H - 1, size=(batch, T + 1, 2))
  actions = rng.integers(0, 4, size=(batch, T))
  lengths = np.array(lengths if lengths is not None else rng.integers(2, T + 1, size=batch))
  return cells, actions, lengths


def test_masks_follow_the_fixed_end_gates_and_free_middle():
  lengths = tf.constant([T, 3, 1])
  free = vae_lib.free_gate_mask(lengths, T).numpy()
  fixed = vae_lib.fixed_gate_mask(lengths, T).numpy()
  np.testing.assert_array_equal(free[0], [0, 1, 1, 1, 1, 1, 0])
  np.testing.assert_array_equal(fixed[0], [1, 0, 0, 0, 0, 0, 1])
  np.testing.assert_array_equal(free[1], [0, 1, 1, 0, 0, 0, 0])
  np.testing.assert_array_equal(fixed[1], [1, 0, 0, 1, 0, 0, 0])
  np.testing.assert_array_equal(free[2], [0] * 7)
  np.testing.assert_array_equal(fixed[2], [1, 1, 0, 0, 0, 0, 0])
  tokens = vae_lib.end_padded_actions(tf.constant([[0, 1, 2, 3, 0, 1]] * 2), tf.constant([6, 2]), 4).numpy()
  np.testing.assert_array_equal(tokens, [[0, 1, 2, 3, 0, 1, 4], [0, 1, 4, 4, 4, 4, 4]])


def test_padding_content_changes_nothing_and_gates_are_fixed_at_the_ends():
  rng = np.random.default_rng(0)
  model = vae_lib.WaypointVAE(_cfg())
  cells, actions, lengths = _batch(rng, lengths=[6, 4, 3, 2, 5])
  terms = model.loss_terms(cells, actions, lengths, seed=tf.constant([1, 2]))
  other_cells, other_actions = cells.copy(), actions.copy()
  for i, n in enumerate(lengths):            # scramble everything after token T_n / action T_n - 1
    other_cells[i, n + 1:] = rng.integers(1, H - 1, size=(T - n, 2))
    other_actions[i, n:] = rng.integers(0, 4, size=T - n)
  again = model.loss_terms(other_cells, other_actions, lengths, seed=tf.constant([1, 2]))
  for key in ('nll', 'kl', 'l0', 'lt'):
    np.testing.assert_allclose(again[key].numpy(), terms[key].numpy(), rtol=1e-5, atol=1e-6, err_msg=key)
  gates = terms['gates'].numpy()
  for i, n in enumerate(lengths):
    assert gates[i, 0] == 1.0 and gates[i, n] == 1.0
    assert np.all(gates[i, n + 1:] == 0.0)
    assert np.all((gates[i] >= 0) & (gates[i] <= 1))


def test_constraint_terms_match_a_numpy_reading_of_the_equations():
  rng = np.random.default_rng(1)
  cfg = _cfg()
  model = vae_lib.WaypointVAE(cfg)
  cells, actions, lengths = _batch(rng)
  terms = model.loss_terms(cells, actions, lengths, seed=tf.constant([3, 4]))
  a = model.inference_concentration(cells, actions, lengths).numpy()
  for i, n in enumerate(lengths):
    p0 = np.zeros(T + 1)
    p0[1:n] = (1.0 / 12.0) ** a[i, 1:n]                    # P(z = 0) of HardKuma(a, 1) with l = -0.1, r = 1.1
    mu0 = cfg.mu0 * (n - 1) / (T - 1)
    l0 = (np.sum(1 - p0[1:n]) - mu0) ** 2                  # Eq. 3.9 over the free gates
    switches = sum(p0[t] * (1 - p0[t + 1]) + (1 - p0[t]) * p0[t + 1] for t in range(1, n))   # Eq. 3.11
    lt = (switches - 2 * mu0) ** 2
    assert terms['l0'].numpy()[i] == pytest.approx(l0, rel=1e-4, abs=1e-5)
    assert terms['lt'].numpy()[i] == pytest.approx(lt, rel=1e-4, abs=1e-5)


def test_gradients_reach_all_three_networks_and_the_multipliers_rise():
  rng = np.random.default_rng(2)
  cfg = _cfg()
  model = vae_lib.WaypointVAE(cfg)
  trainer = vae_lib.VAETrainer(model, cfg)
  cells, actions, lengths = _batch(rng, batch=8)
  with tf.GradientTape() as tape:
    terms = model.loss_terms(cells, actions, lengths, seed=tf.constant([5, 6]))
    objective = tf.reduce_mean(terms['nll'] + terms['kl'] + terms['l0'] + terms['lt'])
  grads = tape.gradient(objective, model.trainable_variables)
  for v, g in zip(model.trainable_variables, grads):
    if 'embed' in v.path:                   # embeddings get gradient rows only for the cells in the batch
      continue
    assert g is not None and float(tf.reduce_max(tf.abs(tf.convert_to_tensor(g)))) > 0, v.path
  assert {id(v) for v in model.clipped_variables} | {id(v) for v in model.prior_variables} == {
      id(v) for v in model.trainable_variables}
  before = trainer.multipliers.values().numpy()
  logs = trainer.step(cells, actions, lengths, seed=[7, 8])
  after = trainer.multipliers.values().numpy()
  np.testing.assert_allclose(before, cfg.multipliers_init, rtol=1e-6)
  assert np.all(after >= before) and np.all(after > 0)
  assert float(logs['vae/lambda_kl']) == pytest.approx(after[0])


HOLD_STEPS = 50


@pytest.mark.slow
def test_learns_a_corridor_with_about_mu0_open_gates():
  """Spec Sec. 9.8: a 1-wide corridor walked right; lr 1e-3 (test-only); NLL < 0.05 per step within 500 steps and
  |E||z||_0 - mu0| < 1.5.

  The run stops once both have held for HOLD_STEPS consecutive steps (a reading of "within 500 steps" that still
  asks the model to stay there, not just pass through): measured, NLL 0.04 at step 75 and 0.01 at 100 falling to
  0.0002 at 500, E||z||_0 4.9 at 75, 3.9 at 100 and 3.4-3.7 from 125 to 500, so it stops after about 145 steps
  (~35 s) instead of running all 500 (~2 minutes on 2 cores). A model that does not learn (the NLL term taken out
  of the objective, say) runs the 500 steps and fails."""
  horizon = 10
  cfg = vae_lib.VAEConfig(height=3, width=horizon + 3, horizon=horizon, mu0=3.0, state_embedding=8,
                          state_hidden=16, lstm_units=16, head_hidden=16, learning_rate=1e-3)
  model = vae_lib.WaypointVAE(cfg)
  trainer = vae_lib.VAETrainer(model, cfg)
  cells = np.stack([np.ones(horizon + 1, int), np.arange(1, horizon + 2)], axis=-1)[None].repeat(32, 0)
  actions = np.full((32, horizon), 3)
  lengths = np.full(32, horizon)
  held = 0
  for step in range(500):
    logs = trainer.step(cells, actions, lengths, seed=[step, 0])
    learned = float(logs['vae/nll_per_step']) < 0.05 and abs(float(logs['vae/expected_l0']) - cfg.mu0) < 1.5
    held = held + 1 if learned else 0
    if held == HOLD_STEPS:
      break
  print(f'corridor VAE: stopped after {step + 1} steps, NLL/step {float(logs["vae/nll_per_step"]):.4f}, '
        f'E||z||_0 {float(logs["vae/expected_l0"]):.2f}')
  assert float(logs['vae/nll_per_step']) < 0.05, (step, logs)
  assert abs(float(logs['vae/expected_l0']) - cfg.mu0) < 1.5, (step, logs)
