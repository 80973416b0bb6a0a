"""core/retrace.py against slow NumPy references written from Wang et al. (2016): Retrace as an explicit sum of
traced TD errors, the truncated importance-sampling gradient and its bias correction as explicit sums over actions,
and the trust-region projection (its constraint, identity inside, optimality, and k = grad_f KL by autodiff)."""

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.core import retrace
from rlcv_tf.core import returns


def retrace_reference(rewards, discounts, q_taken, values, bootstrap, rhos, lam=1.0, c_bar=1.0, bootstrap_only=None):
  """Q^ret_t = Q_t + sum_{s>=t} (prod_{j=t}^{s-1} d_j c_{j+1}) (r_s + d_s V_{s+1} - Q_s), V_T = bootstrap;
  the sum stops before a bootstrap-only step s > t (its c is 0) and Q^ret_t = V_t at one (s = t)."""
  T, B = rewards.shape
  cs = lam * (rhos if c_bar is None else np.minimum(c_bar, rhos))
  cut = np.zeros((T, B), bool) if bootstrap_only is None else bootstrap_only
  values_ext = np.concatenate([values, bootstrap[None]], 0)
  out = np.zeros((T, B))
  for b in range(B):
    for t in range(T):
      if cut[t, b]:
        out[t, b] = values[t, b]
        continue
      total = q_taken[t, b]
      for s in range(t, T):
        if s > t and cut[s, b]:
          break
        prod = 1.0
        for j in range(t, s):
          prod *= discounts[j, b] * cs[j + 1, b]
        total += prod * (rewards[s, b] + discounts[s, b] * values_ext[s + 1, b] - q_taken[s, b])
      out[t, b] = total
  return out


def acer_gradient_reference(f, mu, a_t, q, q_ret, v, c):
  """g = min(c, rho(a_t)) grad_f log f(a_t) (Q^ret - V) + sum_a [1 - c/rho(a)]_+ f(a) grad_f log f(a) (Q(a) - V),
  with grad_f log f(a) = e_a / f(a), for one step; returns (g, truncated part, correction part)."""
  num_actions = f.shape[0]
  rho = f / mu
  truncated = np.zeros(num_actions)
  correction = np.zeros(num_actions)
  for a in range(num_actions):
    grad_log = np.zeros(num_actions)
    grad_log[a] = 1.0 / f[a]
    if a == a_t:
      truncated += min(c, rho[a]) * grad_log * (q_ret - v)
    correction += max(0.0, 1.0 - c / rho[a]) * f[a] * grad_log * (q[a] - v)
  return truncated + correction, truncated, correction


def trust_region_reference(g, k, delta):
  dot = sum(k[a] * g[a] for a in range(len(g)))
  norm2 = sum(k[a] * k[a] for a in range(len(g)))
  scale = max(0.0, (dot - delta) / norm2)
  return np.array([g[a] - scale * k[a] for a in range(len(g))]), scale


def random_probs(rng, shape, temperature=1.0):
  logits = rng.normal(size=shape) * temperature
  e = np.exp(logits - logits.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def random_segment(seed, T=8, B=3, A=5):
  rng = np.random.default_rng(seed)
  f = random_probs(rng, (T, B, A), 2.0)
  mu = random_probs(rng, (T, B, A), 2.0)
  actions = np.array([[rng.choice(A, p=mu[t, b]) for b in range(B)] for t in range(T)])
  q = rng.normal(size=(T, B, A))
  done = rng.random((T, B)) < 0.2
  return dict(f=f, mu=mu, actions=actions, q=q, v=(f * q).sum(-1), rewards=rng.normal(size=(T, B)),
              discounts=np.where(done, 0.0, 0.95), bootstrap=rng.normal(size=B))


def taken(x, actions):
  return np.take_along_axis(x, actions[..., None], -1)[..., 0]


@pytest.mark.parametrize('lam,c_bar', [(1.0, 1.0), (0.9, 1.0), (1.0, None), (1.0, 2.0)])
def test_retrace_matches_explicit_sum(lam, c_bar):
  x = random_segment(0)
  rhos = taken(x['f'] / x['mu'], x['actions'])
  q_a = taken(x['q'], x['actions'])
  ref = retrace_reference(x['rewards'], x['discounts'], q_a, x['v'], x['bootstrap'], rhos, lam, c_bar)
  got = retrace.retrace_targets(x['rewards'], x['discounts'], q_a, x['v'], x['bootstrap'], rhos, lambda_=lam,
                                c_bar=c_bar)
  np.testing.assert_allclose(got.numpy(), ref, rtol=1e-10, atol=1e-10)
  assert (rhos > 1).any() and (rhos < 1).any()  # both sides of the truncation are exercised


def test_retrace_bootstrap_only_cuts_the_trace():
  x = random_segment(1, T=10, B=4)
  rng = np.random.default_rng(2)
  cut = rng.random(x['discounts'].shape) < 0.2
  cut[5, 0] = True
  rewards = np.where(cut, 0.0, x['rewards'])
  discounts = np.where(cut, 0.0, x['discounts'])
  rhos = taken(x['f'] / x['mu'], x['actions'])
  q_a = taken(x['q'], x['actions'])
  ref = retrace_reference(rewards, discounts, q_a, x['v'], x['bootstrap'], rhos, bootstrap_only=cut)
  got = retrace.retrace_targets(rewards, discounts, q_a, x['v'], x['bootstrap'], rhos, bootstrap_only=cut)
  np.testing.assert_allclose(got.numpy(), ref, atol=1e-10)
  np.testing.assert_allclose(got.numpy()[4, 0], rewards[4, 0] + discounts[4, 0] * x['v'][5, 0])


def test_retrace_special_cases():
  """c = 1 with Q(a_t) = V_t (Q equal over actions): Q^ret_t is the discounted return R_t. lambda = 0: the
  one-step target r_t + d_t V_{t+1}. rho = 1 with a general Q: Q^ret_t - R_t follows the telescoped sum
  sum_{s>t} (prod_{j=t}^{s-1} d_j) (V_s - Q_s(a_s))."""
  x = random_segment(3)
  ones = np.ones_like(x['v'])
  got = retrace.retrace_targets(x['rewards'], x['discounts'], x['v'], x['v'], x['bootstrap'], ones)
  big_r = returns.discounted_returns(x['rewards'], x['discounts'], x['v'], x['bootstrap']).numpy()
  np.testing.assert_allclose(got.numpy(), big_r, atol=1e-10)
  q_a = taken(x['q'], x['actions'])
  got0 = retrace.retrace_targets(x['rewards'], x['discounts'], q_a, x['v'], x['bootstrap'], ones, lambda_=0.0)
  np.testing.assert_allclose(got0.numpy(), returns.n_step_returns(x['rewards'], x['discounts'], x['v'],
                                                                  x['bootstrap'], 1).numpy(), atol=1e-10)
  got1 = retrace.retrace_targets(x['rewards'], x['discounts'], q_a, x['v'], x['bootstrap'], ones).numpy()
  T, B = x['v'].shape
  for b in range(B):
    for t in range(T):
      extra = sum(np.prod(x['discounts'][t:s, b]) * (x['v'][s, b] - q_a[s, b]) for s in range(t + 1, T))
      assert got1[t, b] == pytest.approx(big_r[t, b] + extra, abs=1e-10)


@pytest.mark.parametrize('c', [10.0, 1.0, 0.5])
def test_truncated_gradient_and_bias_correction_match_sums_over_actions(c):
  x = random_segment(4, T=6, B=3, A=6)
  q_ret = np.random.default_rng(5).normal(size=x['v'].shape)
  out = retrace.truncated_policy_gradient(x['f'], x['mu'], x['actions'], x['q'], q_ret, x['v'], truncation=c)
  T, B = x['v'].shape
  active = 0
  for t in range(T):
    for b in range(B):
      g, trunc, corr = acer_gradient_reference(x['f'][t, b], x['mu'][t, b], x['actions'][t, b], x['q'][t, b],
                                               q_ret[t, b], x['v'][t, b], c)
      np.testing.assert_allclose(out.gradient.numpy()[t, b], g, rtol=1e-9, atol=1e-12)
      np.testing.assert_allclose(out.truncated.numpy()[t, b], trunc, rtol=1e-9, atol=1e-12)
      np.testing.assert_allclose(out.bias_correction.numpy()[t, b], corr, rtol=1e-9, atol=1e-12)
      active += int(np.any(corr != 0))
  assert active > 0  # some rho(a) > c, so the correction is exercised


def test_on_policy_bias_correction_is_zero_and_gradient_is_the_advantage_gradient():
  x = random_segment(6)
  q_ret = np.random.default_rng(7).normal(size=x['v'].shape)
  out = retrace.truncated_policy_gradient(x['f'], x['f'], x['actions'], x['q'], q_ret, x['v'], truncation=10.0)
  assert not out.bias_correction.numpy().any()
  np.testing.assert_allclose(out.rhos.numpy(), 1.0)
  onehot = np.eye(x['f'].shape[-1])[x['actions']]
  want = ((q_ret - x['v']) / taken(x['f'], x['actions']))[..., None] * onehot
  np.testing.assert_allclose(out.gradient.numpy(), want, rtol=1e-10)


def test_kl_gradient_matches_autodiff():
  rng = np.random.default_rng(8)
  f = tf.constant(random_probs(rng, (4, 7)))
  fa = tf.constant(random_probs(rng, (4, 7)))
  with tf.GradientTape() as tape:
    tape.watch(f)
    kl = tf.reduce_sum(fa * (tf.math.log(fa) - tf.math.log(f)))  # f treated as free coordinates
  np.testing.assert_allclose(retrace.kl_gradient(fa, f).numpy(), tape.gradient(kl, f).numpy(), rtol=1e-12)


def test_trust_region_matches_loop_and_satisfies_its_constraint():
  rng = np.random.default_rng(9)
  f = random_probs(rng, (400, 6), 2.0)
  fa = random_probs(rng, (400, 6), 2.0)
  k = -fa / f
  g = rng.normal(size=(400, 6)) * rng.choice([0.1, 1.0, 10.0], size=(400, 1))
  out = retrace.trust_region_projection(g, k, 1.0)
  z = out.gradient.numpy()
  projected = 0
  for i in range(400):
    ref_z, ref_scale = trust_region_reference(g[i], k[i], 1.0)
    np.testing.assert_allclose(z[i], ref_z, rtol=1e-10, atol=1e-12)
    assert out.scale.numpy()[i] == pytest.approx(ref_scale, rel=1e-10, abs=1e-14)
    dot = float(k[i] @ z[i])
    assert dot <= 1.0 + 1e-9
    if ref_scale > 0:
      projected += 1
      assert dot == pytest.approx(1.0, abs=1e-9)  # the constraint binds
    else:
      np.testing.assert_array_equal(z[i], g[i])  # already inside: identity
  assert 50 < projected < 350  # both cases occur


def test_trust_region_is_the_closest_point_of_the_half_space():
  rng = np.random.default_rng(10)
  for _ in range(50):
    k = -random_probs(rng, (5,)) / random_probs(rng, (5,))
    g = rng.normal(size=5) * 5
    z = retrace.trust_region_projection(g, k, 1.0).gradient.numpy()
    candidates = z + rng.normal(size=(2000, 5)) * rng.choice([1e-3, 1e-1, 1.0], size=(2000, 1))
    feasible = candidates[candidates @ k <= 1.0]
    assert len(feasible) > 0
    assert np.all(np.linalg.norm(feasible - g, axis=1) >= np.linalg.norm(z - g) - 1e-12)


def test_trust_region_is_identity_when_inside():
  rng = np.random.default_rng(11)
  k = -random_probs(rng, (20, 4)) / random_probs(rng, (20, 4))
  g = rng.normal(size=(20, 4))
  g -= np.maximum(0.0, (np.sum(k * g, -1, keepdims=True) - 0.5)) / np.sum(k * k, -1, keepdims=True) * k  # k.g <= 0.5
  out = retrace.trust_region_projection(g, k, 1.0)
  np.testing.assert_array_equal(out.gradient.numpy(), g)
  assert not out.scale.numpy().any()
