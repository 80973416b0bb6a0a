"""V-trace against slow NumPy references written like the paper's formulas."""

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.core import vtrace


def reference_vtrace(log_rhos, discounts, rewards, values, bootstrap, rho_bar=1.0, c_bar=1.0, pg_rho_bar=1.0,
                     lam=1.0):
  """v_s = V_s + sum_{t=s}^{T-1} (prod_{k=s}^{t-1} gamma_k c_k) delta_t, one element at a time."""
  rhos = np.exp(log_rhos)
  rho = rhos if rho_bar is None else np.minimum(rho_bar, rhos)
  cs = lam * (rhos if c_bar is None else np.minimum(c_bar, rhos))
  T = values.shape[0]
  values_ext = np.concatenate([values, bootstrap[None]], 0)
  vs = np.zeros_like(values)
  for idx in np.ndindex(values.shape[1:]):
    for s in range(T):
      total = values[(s,) + idx]
      for t in range(s, T):
        prod = 1.0
        for k in range(s, t):
          prod *= discounts[(k,) + idx] * cs[(k,) + idx]
        delta = rho[(t,) + idx] * (rewards[(t,) + idx] + discounts[(t,) + idx] * values_ext[(t + 1,) + idx]
                                   - values[(t,) + idx])
        total += prod * delta
      vs[(s,) + idx] = total
  vs_ext = np.concatenate([vs, bootstrap[None]], 0)
  pg_rho = rhos if pg_rho_bar is None else np.minimum(pg_rho_bar, rhos)
  pg = pg_rho * (rewards + discounts * vs_ext[1:] - values)
  return vs, pg


def random_inputs(rng, shape=(7, 3, 4), gamma=0.9):
  T, B = shape[:2]
  done = rng.random((T, B)) < 0.2
  discounts = np.broadcast_to((gamma * (1 - done))[..., None], shape).astype(np.float64).copy()
  return dict(log_rhos=rng.normal(size=shape), discounts=discounts, rewards=rng.normal(size=shape),
              values=rng.normal(size=shape), bootstrap=rng.normal(size=shape[1:]))


@pytest.mark.parametrize('rho_bar,c_bar,lam', [(1.0, 1.0, 1.0), (None, None, 1.0), (1.0, 1.0, 0.5),
                                               (2.0, 0.7, 0.9)])
def test_matches_slow_reference(rho_bar, c_bar, lam):
  rng = np.random.default_rng(0)
  x = random_inputs(rng)
  ref_vs, ref_pg = reference_vtrace(x['log_rhos'], x['discounts'], x['rewards'], x['values'], x['bootstrap'],
                                    rho_bar, c_bar, rho_bar, lam)
  out = vtrace.from_importance_weights(x['log_rhos'], x['discounts'], x['rewards'], x['values'], x['bootstrap'],
                                       clip_rho_threshold=rho_bar, clip_c_threshold=c_bar,
                                       clip_pg_rho_threshold=rho_bar, lambda_=lam)
  np.testing.assert_allclose(out.vs.numpy(), ref_vs, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(out.pg_advantages.numpy(), ref_pg, rtol=1e-4, atol=1e-4)


def test_on_policy_equals_n_step_return_cut_at_episode_ends():
  rng = np.random.default_rng(1)
  x = random_inputs(rng, shape=(9, 2, 3), gamma=0.97)
  zeros = np.zeros_like(x['log_rhos'])
  out = vtrace.from_importance_weights(zeros, x['discounts'], x['rewards'], x['values'], x['bootstrap'])
  T = zeros.shape[0]
  expected = np.zeros_like(x['values'])
  for s in range(T):
    ret, scale = 0.0, 1.0
    for k in range(s, T):
      ret = ret + scale * x['rewards'][k]
      scale = scale * x['discounts'][k]
    expected[s] = ret + scale * x['bootstrap']
  np.testing.assert_allclose(out.vs.numpy(), expected, rtol=1e-4, atol=1e-4)
  vs_next = np.concatenate([expected[1:], x['bootstrap'][None]], 0)
  np.testing.assert_allclose(out.pg_advantages.numpy(), x['rewards'] + x['discounts'] * vs_next - x['values'],
                             rtol=1e-4, atol=1e-4)


def test_hand_example():
  # T=2, one agent, gamma 0.9, rho=c=1: v_1 = 2 + 0.9*0.3, v_0 = 1 + 0.9*v_1.
  out = vtrace.from_importance_weights([[0.0], [0.0]], [[0.9], [0.9]], [[1.0], [2.0]], [[0.5], [0.4]], [0.3])
  np.testing.assert_allclose(out.vs.numpy()[:, 0], [3.043, 2.27], atol=1e-5)
  np.testing.assert_allclose(out.pg_advantages.numpy()[:, 0], [2.543, 1.87], atol=1e-5)


def test_clipping_extremes():
  rng = np.random.default_rng(2)
  x = random_inputs(rng, shape=(5, 2, 2))
  on = vtrace.from_importance_weights(np.zeros_like(x['values']), x['discounts'], x['rewards'], x['values'],
                                      x['bootstrap'])
  high = vtrace.from_importance_weights(np.full_like(x['values'], 5.0), x['discounts'], x['rewards'],
                                        x['values'], x['bootstrap'])
  np.testing.assert_allclose(high.vs.numpy(), on.vs.numpy(), atol=1e-5)
  np.testing.assert_allclose(high.pg_advantages.numpy(), on.pg_advantages.numpy(), atol=1e-5)
  never = vtrace.from_importance_weights(np.full_like(x['values'], -np.inf), x['discounts'], x['rewards'],
                                         x['values'], x['bootstrap'])
  np.testing.assert_allclose(never.pg_advantages.numpy(), 0.0, atol=1e-7)
  np.testing.assert_allclose(never.vs.numpy(), x['values'], atol=1e-5)  # no correction at all


def test_agent_axis_equals_separate_calls():
  rng = np.random.default_rng(3)
  x = random_inputs(rng, shape=(6, 3, 4))
  joint = vtrace.from_importance_weights(x['log_rhos'], x['discounts'], x['rewards'], x['values'],
                                         x['bootstrap'])
  for i in range(4):
    single = vtrace.from_importance_weights(x['log_rhos'][..., i], x['discounts'][..., i],
                                            x['rewards'][..., i], x['values'][..., i], x['bootstrap'][..., i])
    np.testing.assert_allclose(joint.vs.numpy()[..., i], single.vs.numpy(), atol=1e-6)
    np.testing.assert_allclose(joint.pg_advantages.numpy()[..., i], single.pg_advantages.numpy(), atol=1e-6)


def test_targets_stop_gradients():
  values = tf.Variable(np.ones((4, 2), np.float32))
  with tf.GradientTape(persistent=True) as tape:
    out = vtrace.from_importance_weights(tf.zeros((4, 2)), tf.fill((4, 2), 0.9), tf.ones((4, 2)), values,
                                         tf.zeros(2))
    a = tf.reduce_sum(out.vs)
    b = tf.reduce_sum(out.pg_advantages)
  for target in (a, b):
    g = tape.gradient(target, values)
    assert g is None or np.allclose(g.numpy(), 0.0)


def test_rank_mismatch_is_a_clear_error():
  with pytest.raises(ValueError, match='bootstrap_value'):
    vtrace.from_importance_weights(np.zeros((3, 2)), np.zeros((3, 2)), np.zeros((3, 2)), np.zeros((3, 2)),
                                   np.zeros((3, 2)))
