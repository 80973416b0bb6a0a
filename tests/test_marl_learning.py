"""Chapter 4 loss: scaling of each term, stopped gradients, per-agent independence, entropy values."""

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.core import vtrace
from rlcv_tf.marl import learning

T, B, N, A = 5, 3, 4, 19
KW = dict(discounting=0.99, baseline_cost=0.5, entropy_cost=5e-4)


def random_batch(seed=0):
  rng = np.random.default_rng(seed)
  return dict(
      policy_logits=tf.constant(rng.normal(size=(T + 1, B, N, A)), tf.float32),
      baseline=tf.constant(rng.normal(size=(T + 1, B, N)), tf.float32),
      actions=tf.constant(rng.integers(0, A, size=(T + 1, B, N)), tf.int32),
      behaviour_logits=tf.constant(rng.normal(size=(T + 1, B, N, A)), tf.float32),
      rewards=tf.constant(rng.normal(size=(T + 1, B, N)), tf.float32),
      done=tf.constant(rng.random((T + 1, B)) < 0.2))


def test_terms_match_a_direct_computation():
  x = random_batch()
  total, logs = learning.vtrace_loss(**x, **KW)
  logits = x['policy_logits'].numpy()[:-1]
  log_pi = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  beh = x['behaviour_logits'].numpy()[:-1]
  log_mu = beh - np.log(np.exp(beh).sum(-1, keepdims=True))
  a = x['actions'].numpy()[:-1]
  lp = np.take_along_axis(log_pi, a[..., None], -1)[..., 0]
  lm = np.take_along_axis(log_mu, a[..., None], -1)[..., 0]
  disc = 0.99 * (1 - x['done'].numpy()[1:].astype(np.float32))[..., None] * np.ones((T, B, N))
  vt = vtrace.from_importance_weights(lp - lm, disc, x['rewards'].numpy()[1:], x['baseline'].numpy()[:-1],
                                      x['baseline'].numpy()[-1])
  pg = -np.mean(lp * vt.pg_advantages.numpy())
  base = 0.5 * 0.5 * np.mean((vt.vs.numpy() - x['baseline'].numpy()[:-1]) ** 2)
  ent = -(np.exp(log_pi) * log_pi).sum(-1).mean()
  np.testing.assert_allclose(logs['loss/policy_gradient'], pg, rtol=1e-4)
  np.testing.assert_allclose(logs['loss/baseline'], base, rtol=1e-4)
  np.testing.assert_allclose(logs['policy/entropy'], ent, rtol=1e-4)
  np.testing.assert_allclose(logs['loss/entropy'], -5e-4 * ent, rtol=1e-4)
  np.testing.assert_allclose(total, pg + base - 5e-4 * ent, rtol=1e-4)


def test_uniform_logits_entropy_is_log_num_actions():
  x = random_batch()
  x['policy_logits'] = tf.zeros_like(x['policy_logits'])
  _, logs = learning.vtrace_loss(**x, **KW)
  np.testing.assert_allclose(logs['policy/entropy'], np.log(19), rtol=1e-6)  # 2.944439


def test_policy_gradient_wrt_logits_uses_stopped_advantages():
  x = random_batch(1)
  logits = tf.Variable(x.pop('policy_logits'))
  with tf.GradientTape() as tape:
    _, logs = learning.vtrace_loss(logits, **x, discounting=0.99, baseline_cost=0.0, entropy_cost=0.0)
    pg = logs['loss/policy_gradient']
  grad = tape.gradient(pg, logits).numpy()
  # d/dlogits of -mean(log pi(a) * A) = -A * (onehot(a) - softmax) / count, with A a constant.
  lg = logits.numpy()[:-1]
  probs = np.exp(lg) / np.exp(lg).sum(-1, keepdims=True)
  onehot = np.eye(A)[x['actions'].numpy()[:-1]]
  lp = np.log((probs * onehot).sum(-1))
  beh = x['behaviour_logits'].numpy()[:-1]
  lm = np.log(((np.exp(beh) / np.exp(beh).sum(-1, keepdims=True)) * onehot).sum(-1))
  disc = 0.99 * (1 - x['done'].numpy()[1:].astype(np.float32))[..., None] * np.ones((T, B, N))
  adv = vtrace.from_importance_weights(lp - lm, disc, x['rewards'].numpy()[1:], x['baseline'].numpy()[:-1],
                                       x['baseline'].numpy()[-1]).pg_advantages.numpy()
  expected = -adv[..., None] * (onehot - probs) / (T * B * N)
  np.testing.assert_allclose(grad[:-1], expected, atol=1e-6)
  np.testing.assert_allclose(grad[-1], 0.0)  # the bootstrap step's logits get no policy gradient


def test_value_gradient_flows_only_through_the_baseline_term():
  x = random_batch(2)
  baseline = tf.Variable(x.pop('baseline'))
  with tf.GradientTape(persistent=True) as tape:
    _, logs = learning.vtrace_loss(baseline=baseline, **x, **KW)
  assert tape.gradient(logs['loss/policy_gradient'], baseline) is None
  assert np.abs(tape.gradient(logs['loss/baseline'], baseline).numpy()).sum() > 0


def test_agents_are_separate_vtrace_problems():
  """The N-agent loss is the mean of N one-agent losses: each agent's importance weight uses only its own
  action (a joint-product weight would couple the agents and break this)."""
  x = random_batch(3)
  total, _ = learning.vtrace_loss(**x, **KW)
  singles = []
  for i in range(N):
    xi = {k: (v if k == 'done' else v[:, :, i:i + 1]) for k, v in x.items()}
    singles.append(learning.vtrace_loss(**xi, **KW)[0].numpy())
  np.testing.assert_allclose(total.numpy(), np.mean(singles), rtol=1e-5)
