"""LagrangeMultipliers against a hand-written NumPy Adam (thesis App. 3.C.1, Eq. 3.12; spec Sec. 4.1, A4)."""

import math
import os

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.core import lagrangian


class HandAdam:
  """Kingma & Ba (2015), Algorithm 1 with the Sec. 2 ordering: lr_t = lr sqrt(1 - b2^t) / (1 - b1^t),
  theta <- theta - lr_t m_t / (sqrt(v_t) + eps); one float64 element at a time."""

  def __init__(self, theta, lr=5e-4, beta_1=0.9, beta_2=0.999, eps=1e-3):
    self.theta = [float(v) for v in theta]
    self.m = [0.0] * len(theta)
    self.v = [0.0] * len(theta)
    self.t = 0
    self.lr, self.beta_1, self.beta_2, self.eps = lr, beta_1, beta_2, eps

  def step(self, grads):
    self.t += 1
    lr_t = self.lr * math.sqrt(1.0 - self.beta_2 ** self.t) / (1.0 - self.beta_1 ** self.t)
    for i, g in enumerate(grads):
      self.m[i] = self.beta_1 * self.m[i] + (1.0 - self.beta_1) * g
      self.v[i] = self.beta_2 * self.v[i] + (1.0 - self.beta_2) * g * g
      self.theta[i] -= lr_t * self.m[i] / (math.sqrt(self.v[i]) + self.eps)
    return self.theta


def hand_projected_ascent(initial, term_sequence, tolerances=(0.0, 0.0, 0.0)):
  """Ascend J = sum_i lambda_i (term_i - eps_i): Adam on -J (gradient -(term_i - eps_i)), then max(lambda, 0)."""
  adam = HandAdam(initial)
  out = []
  for terms in term_sequence:
    theta = adam.step([-(t - e) for t, e in zip(terms, tolerances)])
    adam.theta = [max(v, 0.0) for v in theta]
    out.append(list(adam.theta))
  return out


TERMS = [[2.5, 0.7, 9.0], [1.0, 0.0, 4.0], [0.3, 2.0, 0.1]]


def test_defaults_are_the_thesis_values():
  multipliers = lagrangian.LagrangeMultipliers()
  np.testing.assert_allclose(multipliers.values(), [0.01, 0.06, 0.02], rtol=1e-7)
  assert multipliers.names == ('kl', 'l0', 'lt') and multipliers.mode == 'ascent'
  config = multipliers.optimizer.get_config()
  assert math.isclose(config['learning_rate'], 5e-4, rel_tol=1e-6) and config['epsilon'] == 1e-3
  assert config['beta_1'] == 0.9 and config['beta_2'] == 0.999


def test_steps_match_a_hand_written_adam():
  multipliers = lagrangian.LagrangeMultipliers()
  expected = hand_projected_ascent([0.01, 0.06, 0.02], TERMS)
  for terms, want in zip(TERMS, expected):
    got = multipliers.update(terms)
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-9)
  # Positive terms: every multiplier rose (Adam's first step moves each by about lr).
  assert np.all(np.asarray(expected[0]) > [0.01, 0.06, 0.02])


def test_update_in_tf_function_and_by_name_equals_eager():
  eager = lagrangian.LagrangeMultipliers()
  graph = lagrangian.LagrangeMultipliers()
  step = tf.function(graph.update)
  for terms in TERMS:
    want = eager.update(terms)
    got = step(tf.constant(terms))
    np.testing.assert_allclose(got, want, rtol=1e-7)
  by_name = lagrangian.LagrangeMultipliers()
  for terms in TERMS:
    by_name.update(dict(zip(('lt', 'kl', 'l0'), (terms[2], terms[0], terms[1]))))
  np.testing.assert_allclose(by_name.values(), eager.values(), rtol=1e-7)
  assert set(by_name.as_dict()) == {'kl', 'l0', 'lt'}


def test_ascent_never_lowers_and_constraint_mode_lowers_to_exactly_zero():
  ascent = lagrangian.LagrangeMultipliers()
  previous = ascent.values().numpy()
  for terms in ([0.0, 0.0, 0.0], [1e-3, 5.0, 0.0], [0.0, 0.0, 0.0]):
    now = ascent.update(terms).numpy()
    assert np.all(now >= previous)
    previous = now
  # Constraint mode: term below its tolerance -> lambda falls; a step past 0 is projected to exactly 0.
  constraint = lagrangian.LagrangeMultipliers(initial=(1e-4, 0.5, 0.02), mode='constraint', tolerances=(1.0, 1.0, 4.0))
  sequence = [[0.0, 0.2, 9.0], [0.0, 0.2, 9.0]]
  expected = hand_projected_ascent([1e-4, 0.5, 0.02], sequence, tolerances=(1.0, 1.0, 4.0))
  for terms, want in zip(sequence, expected):
    got = constraint.update(terms).numpy()
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-9)
    assert got[0] == 0.0 and got[1] < 0.5 and got[2] > 0.02
  assert lagrangian.LagrangeMultipliers(mode='constraint').tolerances == lagrangian.DEFAULT_TOLERANCES


def test_checkpoint_restores_multipliers_and_adam_state(tmp_path):
  original = lagrangian.LagrangeMultipliers()
  for terms in TERMS[:2]:
    original.update(terms)
  path = tf.train.Checkpoint(multipliers=original).write(os.path.join(tmp_path, 'ckpt'))
  restored = lagrangian.LagrangeMultipliers()
  tf.train.Checkpoint(multipliers=restored).read(path).assert_existing_objects_matched()
  np.testing.assert_array_equal(restored.values(), original.values())
  assert int(restored.optimizer.iterations) == 2
  want = hand_projected_ascent([0.01, 0.06, 0.02], TERMS)[2]
  np.testing.assert_allclose(restored.update(TERMS[2]), want, rtol=2e-6)     # the third step, as if never stopped
  np.testing.assert_allclose(original.update(TERMS[2]), want, rtol=2e-6)
  # Without the optimizer's state the third step would differ (bias correction and moments restart).
  fresh = lagrangian.LagrangeMultipliers(initial=hand_projected_ascent([0.01, 0.06, 0.02], TERMS)[1])
  assert not np.allclose(fresh.update(TERMS[2]), want, rtol=1e-4)


def test_bad_arguments():
  with pytest.raises(ValueError, match=r"initial multipliers for \['l0'\] are negative"):
    lagrangian.LagrangeMultipliers(initial=(0.01, -0.1, 0.02))
  with pytest.raises(ValueError, match='initial has 2 values but there are 3 terms'):
    lagrangian.LagrangeMultipliers(initial=(0.01, 0.02))
  with pytest.raises(ValueError, match="mode='dual' is not one of"):
    lagrangian.LagrangeMultipliers(mode='dual')
  with pytest.raises(ValueError, match="tolerances are used only with mode='constraint'"):
    lagrangian.LagrangeMultipliers(tolerances=(1.0, 1.0, 1.0))
  with pytest.raises(ValueError, match='2 tolerances for 3 terms'):
    lagrangian.LagrangeMultipliers(mode='constraint', tolerances=(1.0, 1.0))
  with pytest.raises(ValueError, match='needs tolerances'):
    lagrangian.LagrangeMultipliers(initial=(0.1,), names=('kl',), mode='constraint')
  multipliers = lagrangian.LagrangeMultipliers()
  with pytest.raises(ValueError, match=r"expected one scalar per term \['kl', 'l0', 'lt'\]"):
    multipliers.update([1.0, 2.0])
  with pytest.raises(ValueError, match=r"missing \['lt'\], unknown \['l1'\]"):
    multipliers.update({'kl': 1.0, 'l0': 1.0, 'l1': 1.0})
