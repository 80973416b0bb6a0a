"""Truncation is not termination: at a time-limit end V-trace bootstraps from the last observation's value.

A scripted one-agent environment gives rewards 1, 2, 3 and ends after 3 steps, either by a time limit
(dm_env.truncation) or by termination. Its observation is the step index, and the value function is a table, so
the on-policy V-trace targets can be written by hand with gamma = 0.5:

  truncation:  v_0 = 1 + 0.5*2 + 0.25*3 + 0.125*V(x_3) = 2.75 + 0.125*10 = 4.0,  v_1 = 6.0,  v_2 = 8.0
  termination: v_0 = 2.75,  v_1 = 3.5,  v_2 = 3.0
"""

import dm_env
import numpy as np
import pytest

from rlcv_tf.envs import base
from rlcv_tf.runtime import env_runner
from rlcv_tf.runtime import unrolls

GAMMA = 0.5
VALUES = {0: 0.5, 1: 0.7, 2: 0.9, 3: 10.0}   # V(x) by step index; V(x_3) only matters for the bootstrap


class _TimeLimitEnv(base.MultiAgentEnv):
  """One agent; observation = step index in the episode; reward k on step k; ends after 3 steps."""

  def __init__(self, truncate: bool):
    self._truncate = truncate
    self._t = 0

  num_agents = 1
  num_actions = 2
  map_hw = (1, 1)

  def agent_positions(self):
    return np.zeros((1, 2), np.int32)

  def observation_spec(self):
    return dm_env.specs.Array((1, 1, 1, 1), np.uint8)

  def _obs(self):
    return np.full((1, 1, 1, 1), self._t, np.uint8)

  def reset(self):
    self._t = 0
    return dm_env.restart(self._obs())

  def step(self, actions):
    self._t += 1
    reward = np.full(1, self._t, np.float32)
    if self._t < 3:
      return dm_env.transition(reward, self._obs())
    end = dm_env.truncation if self._truncate else dm_env.termination
    return end(reward, self._obs())


def _stream(truncate: bool, length: int):
  runner = env_runner.EnvRunner(_TimeLimitEnv(truncate))
  outs = [runner.reset()]
  while len(outs) < length:
    outs.append(runner.step(np.zeros(1, np.int32)))
  return outs


def test_runner_sends_the_last_observation_of_a_truncated_episode_then_resets():
  outs = _stream(truncate=True, length=9)
  assert [int(o.observation.ravel()[0]) for o in outs] == [0, 1, 2, 3, 0, 1, 2, 3, 0]
  assert [o.truncated for o in outs] == [False, False, False, True, False, False, False, True, False]
  assert [o.done for o in outs] == [False, False, False, False, True, False, False, False, True]
  assert [o.discount for o in outs] == [1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0]
  assert [float(o.reward[0]) for o in outs] == [0, 1, 2, 3, 0, 1, 2, 3, 0]
  assert outs[4].episode['return'].tolist() == [6.0] and outs[4].episode['length'] == 3


def test_runner_sends_no_extra_step_at_a_termination():
  outs = _stream(truncate=False, length=7)
  assert [int(o.observation.ravel()[0]) for o in outs] == [0, 1, 2, 0, 1, 2, 0]
  assert not any(o.truncated for o in outs)
  assert [o.done for o in outs] == [False, False, False, True, False, False, True]
  assert [o.discount for o in outs] == [1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0]
  assert outs[3].episode['return'].tolist() == [6.0]


def _targets(truncate: bool, length: int, use_flags: bool = True):
  from rlcv_tf.marl import learning
  outs = _stream(truncate, length)
  builder = unrolls.UnrollBuilder(length - 1)
  unroll = None
  for o in outs:
    unroll = builder.append(0, 0, {
        'observation': o.observation, 'reward': o.reward, 'done': np.bool_(o.done),
        'discount': np.float32(o.discount), 'truncated': np.bool_(o.truncated),
        'agent_positions': o.agent_positions, 'action': np.zeros(1, np.int32),
        'behaviour_logits': np.zeros((1, 2), np.float32)})
  assert unroll is not None
  add_b = lambda x: np.asarray(x)[:, np.newaxis]   # [T+1, ...] -> [T+1, B=1, ...]
  baseline = add_b([[VALUES[int(x)]] for x in unroll['observation'].reshape(length)])
  log_rhos = np.zeros((length - 1, 1, 1), np.float32)   # on-policy
  kw = dict(discount=add_b(unroll['discount']), truncated=add_b(unroll['truncated'])) if use_flags else {}
  vt, valid = learning.vtrace_targets(log_rhos, baseline, add_b(unroll['reward']), add_b(unroll['done']),
                                      discounting=GAMMA, **kw)
  return vt.vs.numpy()[:, 0, 0], valid.numpy()[:, 0, 0], vt.pg_advantages.numpy()[:, 0, 0]


def test_vtrace_bootstraps_a_truncated_episode_from_its_last_observation():
  vs, valid, adv = _targets(truncate=True, length=9)
  np.testing.assert_allclose(vs[[0, 1, 2]], [4.0, 6.0, 8.0], atol=1e-6)
  np.testing.assert_allclose(vs[[4, 5, 6]], [4.0, 6.0, 8.0], atol=1e-6)
  np.testing.assert_array_equal(valid, [1, 1, 1, 0, 1, 1, 1, 0])
  assert vs[3] == pytest.approx(VALUES[3]) and adv[3] == 0.0   # the reset transition adds nothing
  # Advantage of the step into the last observation: r + gamma * V(x_3) - V(x_2).
  assert adv[2] == pytest.approx(3 + GAMMA * VALUES[3] - VALUES[2])


def test_vtrace_treats_a_termination_as_terminal():
  vs, valid, _ = _targets(truncate=False, length=7)
  np.testing.assert_allclose(vs[[0, 1, 2]], [2.75, 3.5, 3.0], atol=1e-6)
  np.testing.assert_allclose(vs[[3, 4, 5]], [2.75, 3.5, 3.0], atol=1e-6)
  np.testing.assert_array_equal(valid, np.ones(6))


def test_without_the_flags_a_truncation_would_be_wrong():
  # The test can fail: ignoring discount/truncated leaks the fake reset transition into the targets.
  vs, _, _ = _targets(truncate=True, length=9, use_flags=False)
  assert abs(vs[0] - 4.0) > 0.1


def test_masked_step_adds_nothing_to_the_loss():
  """The loss at a bootstrap-only step is excluded: changing that step's logits and value beyond the
  bootstrap role leaves the policy/entropy terms unchanged."""
  from rlcv_tf.marl import learning
  rng = np.random.default_rng(0)
  t1, b, n, a = 5, 1, 2, 3
  logits = rng.normal(size=(t1, b, n, a)).astype(np.float32)
  baseline = rng.normal(size=(t1, b, n)).astype(np.float32)
  actions = rng.integers(0, a, (t1, b, n)).astype(np.int32)
  rewards = rng.normal(size=(t1, b, n)).astype(np.float32)
  done = np.array([[0], [0], [0], [1], [0]], bool)
  truncated = np.array([[0], [0], [1], [0], [0]], bool)
  discount = np.array([[1], [1], [1], [0], [1]], np.float32)
  kw = dict(discounting=0.9, baseline_cost=0.5, entropy_cost=0.01, discount=discount, truncated=truncated)
  loss1, _ = learning.vtrace_loss(logits, baseline, actions, logits, rewards, done, **kw)
  logits2 = logits.copy()
  logits2[2] = rng.normal(size=logits2[2].shape)   # the truncated step's own policy (behaviour = target)
  loss2, _ = learning.vtrace_loss(logits2, baseline, actions, logits2, rewards, done, **kw)
  assert float(loss1) == pytest.approx(float(loss2), abs=1e-6)
