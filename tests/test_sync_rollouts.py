"""Synchronous rollouts (`runtime/sync_rollouts.py`) on the real engines (gymnasium's CartPole and Pendulum, ALE):
rollouts equal the environments stepped by hand with the same seeds and a deterministic policy, in this process and
through actor processes; K environments per actor equal K one-environment actors; the state is reset where an
episode begins; stored extras are exactly what the policy returned; agent steps and emulator frames are counted as
the environments count them; replaced actor processes cut their transitions; runs are deterministic. No TensorFlow.
"""

import os
import signal
import time

import numpy as np
import pytest

from rlcv_tf.envs import registry
from rlcv_tf.runtime import actors
from rlcv_tf.runtime import pools
from rlcv_tf.runtime import sync_rollouts as sr

FIELDS = ('observations', 'actions', 'rewards', 'discounts', 'first', 'bootstrap_only')


def _cartpole_act(obs, t):
  """Deterministic: push towards the pole's lean, flipped every 7th step (episodes end after ~10-60 steps)."""
  return ((obs[:, 1, 0] > 0) ^ (t % 7 == 0)).astype(np.int64)


def _pendulum_act(obs, t):
  """Deterministic torque from the newest stacked state, in [-2, 2]: floats [E, 1]."""
  return np.clip(-1.5 * obs[:, 2, -1:] + 0.3 * np.sin(0.1 * t), -2.0, 2.0).astype(np.float64)


ACTS = {'cartpole_masked': _cartpole_act, 'pendulum': _pendulum_act}


def _stateless(act):
  counter = {'t': 0}

  def policy(obs, state, first):
    del first
    a = act(obs, counter['t'])
    counter['t'] += 1
    return a, state, {}
  return policy


def _run(name, num_envs, runtime='inline', envs_per_actor=1, seed=11, steps=20, iterations=5, policy=None,
         initial_state=None):
  cfgs = sr.actor_configs(name, num_envs, envs_per_actor=envs_per_actor, seed=seed)
  pool = pools.make_pool(cfgs, runtime=runtime)
  policy = policy or _stateless(ACTS[name])
  with sr.SyncRollouts(pool, steps, initial_state=initial_state) as rollouts:
    out = [rollouts.collect(policy) for _ in range(iterations)]
    counts = dict(agent_steps=rollouts.agent_steps, iterations=rollouts.iterations, episodes=rollouts.episodes,
                  emulator_frames=rollouts.emulator_frames, restarted_envs=rollouts.restarted_envs)
  return out, counts


def _joined(rollouts):
  """The rollouts as one stream: per-step fields concatenated over time, observations o_0 .. o_{nT}."""
  out = {f: np.concatenate([getattr(r, f)[:-1] if f in ('observations', 'first') else getattr(r, f)
                            for r in rollouts]) for f in FIELDS}
  out['observations'] = np.concatenate([out['observations'], rollouts[-1].observations[-1:]])
  out['first'] = np.concatenate([out['first'], rollouts[-1].first[-1:]])
  return out


def _by_hand(name, num_envs, seed, steps, act):
  """Steps environments seed, seed + 1, ... one after the other with `act`, building the rollout fields as the
  module docstring defines them: a termination resets at once (discount 0, next observation first); a time-limit
  truncation keeps the last observation for one more step, whose action is not applied (bootstrap_only, reward and
  discount 0), then resets. An episode's statistics are reported with the observation that starts the next one."""
  envs = [registry.make_env(name, seed=seed + e) for e in range(num_envs)]
  obs = [env.reset().observation[0] for env in envs]
  cut = [False] * num_envs
  rec = {f: [] for f in FIELDS}
  rec['observations'].append(np.stack(obs))
  rec['first'].append(np.ones(num_envs, bool))
  ends = []
  for t in range(steps):
    actions = act(np.stack(obs), t)
    reward, discount, boot, first = (np.zeros(num_envs, np.float32), np.zeros(num_envs, np.float32),
                                     np.zeros(num_envs, bool), np.zeros(num_envs, bool))
    for e, env in enumerate(envs):
      if cut[e]:
        ends.append((t, e, cut[e]))
        ts = env.reset()
        boot[e] = first[e] = True
        cut[e] = False
      else:
        ts = env.step(np.asarray(actions[e])[None])
        reward[e], discount[e] = ts.reward[0], ts.discount
        if ts.last():
          if ts.discount == 0:
            ends.append((t, e, env.episode_info()))
            ts = env.reset()
            first[e] = True
          else:
            cut[e] = env.episode_info()
      obs[e] = ts.observation[0]
    for f, v in (('actions', actions), ('rewards', reward), ('discounts', discount), ('bootstrap_only', boot),
                 ('first', first), ('observations', np.stack(obs))):
      rec[f].append(v)
  for env in envs:
    env.close()
  return {f: np.stack(v) for f, v in rec.items()}, ends


def _assert_streams_equal(got, want, what):
  for f in FIELDS:
    assert got[f].shape == want[f].shape, (what, f, got[f].shape, want[f].shape)
    np.testing.assert_array_equal(got[f], want[f].astype(got[f].dtype), err_msg=f'{what}: {f}')


# --------------------------------------------------------------------------------------------- vs by hand
@pytest.mark.parametrize('name,runtime,envs_per_actor', [
    ('cartpole_masked', 'inline', 1),
    ('cartpole_masked', 'actors', 2),
    ('pendulum', 'inline', 1),
    ('pendulum', 'actors', 2),     # float observations stacked by the learner, float actions over the wire
])
def test_rollouts_equal_the_envs_stepped_by_hand(name, runtime, envs_per_actor):
  steps, iterations = (20, 5) if name == 'cartpole_masked' else (50, 5)   # pendulum: a truncation at 200 steps
  rollouts, counts = _run(name, 3, runtime, envs_per_actor, steps=steps, iterations=iterations)
  want, ends = _by_hand(name, 3, 11, steps * iterations, ACTS[name])
  got = _joined(rollouts)
  _assert_streams_equal(got, want, f'{name} {runtime} K={envs_per_actor}')
  assert got['first'][1:].sum() == len(ends) >= 3
  if name == 'pendulum':
    assert got['actions'].dtype == np.float32 and got['actions'].shape == (250, 3, 1)
    assert got['bootstrap_only'].sum() == 3 and got['observations'].shape[2:] == (3, 4)
    assert not np.array_equal(got['actions'], np.round(got['actions']))   # the floats travelled as floats
  else:
    assert got['actions'].dtype == np.int32 and got['discounts'].min() == 0.0
  # The episodes a rollout reports are those that ended in it, in the environments' own statistics.
  reported = sorted((ep['iteration'], ep['env'], ep['steps'], ep['frames']) for r in rollouts for ep in r.episodes)
  assert reported == sorted((t // steps + 1, e, info['steps'], info['frames']) for t, e, info in ends)
  assert counts['iterations'] == iterations and counts['restarted_envs'] == 0


def test_k_envs_per_actor_equal_k_one_env_actors():
  one, _ = _run('cartpole_masked', 4, 'actors', envs_per_actor=1, steps=15, iterations=2)
  four, _ = _run('cartpole_masked', 4, 'actors', envs_per_actor=4, steps=15, iterations=2)
  uneven, _ = _run('cartpole_masked', 4, 'inline', envs_per_actor=3, steps=15, iterations=2)   # actors of 3 + 1
  _assert_streams_equal(_joined(four), _joined(one), 'K=4 vs K=1')
  _assert_streams_equal(_joined(uneven), _joined(one), 'K=3+1 inline vs K=1')
  assert [r.episodes for r in four] == [r.episodes for r in one]


def test_actor_configs_lay_out_envs_and_seeds():
  cfgs = sr.actor_configs('pendulum', 5, envs_per_actor=2, seed=7)
  assert [(c.seed, c.num_envs, c.num_frames) for c in cfgs] == [(7, 2, 4), (9, 2, 4), (11, 1, 4)]
  assert sr.actor_configs('atari_breakout', 1)[0].num_frames == 1   # the registry's default stack
  with pytest.raises(ValueError, match='num_envs'):
    sr.actor_configs('pendulum', 0)
  with pytest.raises(ValueError, match='num_envs must be an integer in 1..65535'):
    pools.make_pool([actors.ActorConfig('pendulum', {}, 0, num_envs=0)], runtime='inline')


# ------------------------------------------------------------------------------------------------- the state
class _RecordingPolicy:
  """A deterministic recurrent policy that records what it was given and what it returned. State: (h [E, 2],
  {'z': [E, 1]}); the new state depends on the observation, so rows differ between environments and steps. Extras:
  'eps' float32 [E, 3] written into ONE buffer every step (a policy that reuses its arrays), 'z' float64 [E, 1]."""

  def __init__(self, act, seed=0):
    self.act = act
    self.rng = np.random.default_rng(seed)
    self.t = 0
    self.given, self.returned, self.extras = [], [], []
    self._buffer = None

  def __call__(self, obs, state, first):
    h, d = state
    self.given.append((h.copy(), d['z'].copy(), first.copy()))
    new_h = 0.5 * h + obs.reshape(len(obs), -1)[:, :2] + 1.0
    new_z = d['z'] - 1.0
    if self._buffer is None:
      self._buffer = np.zeros((len(obs), 3), np.float32)
    self._buffer[:] = self.rng.normal(size=self._buffer.shape)
    extras = {'eps': self._buffer, 'z': new_z * 2.0}
    self.returned.append((new_h.copy(), new_z.copy()))
    self.extras.append({k: np.array(v) for k, v in extras.items()})
    actions = self.act(obs, self.t)
    self.t += 1
    return actions, (new_h, {'z': new_z}), extras


def _initial_state(num_envs):
  return (np.arange(2 * num_envs, dtype=np.float64).reshape(num_envs, 2) - 10.0,
          {'z': np.full((num_envs, 1), 5.0)})


@pytest.mark.parametrize('runtime', ['inline', 'actors'])
def test_state_is_carried_and_reset_to_the_initial_state_where_an_episode_begins(runtime):
  policy = _RecordingPolicy(_cartpole_act)
  rollouts, _ = _run('cartpole_masked', 3, runtime, steps=20, iterations=4, policy=policy,
                     initial_state=_initial_state)
  init_h, init_z = _initial_state(3)[0], _initial_state(3)[1]['z']
  first = _joined(rollouts)['first']
  assert first[1:].sum() >= 4 and (~first[1:]).sum() > 40
  for t, (h, z, given_first) in enumerate(policy.given):
    np.testing.assert_array_equal(given_first, first[t])
    for e in range(3):
      if first[t, e]:
        # The first step of an episode: exactly the initial state, whatever the last episode left.
        np.testing.assert_array_equal(h[e], init_h[e])
        np.testing.assert_array_equal(z[e], init_z[e])
      else:
        np.testing.assert_array_equal(h[e], policy.returned[t - 1][0][e])
        np.testing.assert_array_equal(z[e], policy.returned[t - 1][1][e])
  for i, r in enumerate(rollouts):
    h0, z0, _ = policy.given[20 * i]
    np.testing.assert_array_equal(r.initial_state[0], h0)
    np.testing.assert_array_equal(r.initial_state[1]['z'], z0)
    if i + 1 < len(rollouts):   # the state the next rollout starts from
      np.testing.assert_array_equal(r.final_state[0], rollouts[i + 1].initial_state[0])
      np.testing.assert_array_equal(r.final_state[1]['z'], policy.given[20 * (i + 1)][1])


def test_stored_extras_are_exactly_what_the_policy_returned():
  policy = _RecordingPolicy(_cartpole_act, seed=3)
  rollouts, _ = _run('cartpole_masked', 3, 'inline', steps=10, iterations=3, policy=policy,
                     initial_state=_initial_state)
  for i, r in enumerate(rollouts):
    assert sorted(r.extras) == ['eps', 'z']
    assert r.extras['eps'].shape == (10, 3, 3) and r.extras['eps'].dtype == np.float32
    assert r.extras['z'].shape == (10, 3, 1) and r.extras['z'].dtype == np.float64
    for t in range(10):
      for k in ('eps', 'z'):
        np.testing.assert_array_equal(r.extras[k][t], policy.extras[10 * i + t][k])
  assert len({r.extras['eps'][t].tobytes() for r in rollouts for t in range(10)}) == 30   # fresh noise each step


# ------------------------------------------------------------------------------------------------- counting
@pytest.mark.parametrize('name,steps', [('cartpole_masked', 20), ('pendulum', 50)])
def test_agent_steps_and_emulator_frames_are_counted_as_the_envs_count_them(name, steps):
  cfgs = sr.actor_configs(name, 2, seed=4)
  pool = pools.make_pool(cfgs, runtime='inline')
  finished = []
  policy = _stateless(ACTS[name])
  with sr.SyncRollouts(pool, steps) as rollouts:
    for _ in range(5):
      finished += rollouts.collect(policy).episodes
    envs = [env.unwrapped for env in pool.envs]
    running_steps = sum(env.episode_info()['steps'] for env in envs)
    running_frames = sum(env.episode_info()['frames'] for env in envs)
    assert rollouts.iterations == 5 and rollouts.episodes == len(finished) >= 1
    assert rollouts.agent_steps == sum(ep['steps'] for ep in finished) + running_steps
    assert rollouts.emulator_frames == sum(ep['frames'] for ep in finished)
    assert sum(env.total_frames for env in envs) == rollouts.emulator_frames + running_frames
    if name == 'pendulum':   # one truncation per env: its extra step applies no action
      assert rollouts.agent_steps == 5 * steps * 2 - 2
    else:                    # each action is held for 2-4 engine steps
      assert 2 * rollouts.agent_steps < sum(env.total_frames for env in envs) < 4 * rollouts.agent_steps


# ---------------------------------------------------------------------------------------------- determinism
def test_determinism_over_5_iterations():
  def stochastic(seed):
    rng = np.random.default_rng(seed)

    def policy(obs, state, first):
      (h,) = state
      eps = rng.normal(size=(len(obs), 4)).astype(np.float32)
      logits = np.stack([obs[:, 1, 0], -obs[:, 1, 0]], 1) * 5 + h[:, :2] + eps[:, :2]
      a = np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)
      return a, (0.9 * h + eps,), {'eps': eps}
    return policy

  init = lambda e: (np.zeros((e, 4), np.float32),)
  runs = [_run('cartpole_masked', 4, runtime, envs_per_actor=k, seed=seed, steps=20, iterations=5,
               policy=stochastic(seed), initial_state=init)[0]
          for runtime, k, seed in (('inline', 1, 1), ('inline', 1, 1), ('actors', 2, 1), ('inline', 1, 2))]
  for other in runs[1:3]:
    for a, b in zip(runs[0], other):
      _assert_streams_equal(vars(a), vars(b), 'same seed')
      np.testing.assert_array_equal(a.extras['eps'], b.extras['eps'])
      np.testing.assert_array_equal(a.final_state[0], b.final_state[0])
  assert not np.array_equal(runs[0][-1].observations, runs[3][-1].observations)


# ---------------------------------------------------------------------------------------------------- Atari
def test_atari_frames_travel_as_float32_and_equal_the_inline_envs():
  rng_actions = np.random.default_rng(0).integers(0, 4, size=(12, 2))
  act = lambda obs, t: rng_actions[t]
  inline, c1 = _run('atari_breakout', 2, 'inline', seed=5, steps=4, iterations=3, policy=_stateless(act))
  remote, c2 = _run('atari_breakout', 2, 'actors', envs_per_actor=2, seed=5, steps=4, iterations=3,
                    policy=_stateless(act))
  _assert_streams_equal(_joined(remote), _joined(inline), 'atari actors vs inline')
  obs = _joined(inline)['observations']
  assert obs.shape == (13, 2, 80, 80, 1) and obs.dtype == np.float32
  assert not np.array_equal(obs[:, 0], obs[:, 1])   # seeds 5 and 6: two different streams
  assert c1 == c2 and c1['agent_steps'] == 24


# ---------------------------------------------------------------------------------------- replaced actors
def test_a_crashed_actor_cuts_its_transition_and_its_env_starts_over():
  seed = 21
  cfgs = [actors.ActorConfig('test_scripted', {'num_agents': 1, 'episode_length': 1000, 'crash_at_step': 7,
                                               'only_seeds': (seed,)}, seed=seed, num_frames=1),
          actors.ActorConfig('test_scripted', {'num_agents': 1, 'episode_length': 1000}, seed=seed + 1, num_frames=1)]
  pool = actors.LocalActorPool(cfgs, max_restarts=1)
  policy = _RecordingPolicy(lambda obs, t: np.full(len(obs), 3), seed=0)
  with sr.SyncRollouts(pool, 5, initial_state=_initial_state) as rollouts:
    got = [rollouts.collect(policy) for _ in range(3)]
    assert pool.restarts == 1 and rollouts.restarted_envs == 1
  s = _joined(got)
  # Step 6 (the 7th step call) crashed actor 0: its outcome is lost, and the replacement starts a new episode.
  want_boot = np.zeros((15, 2), bool)
  want_boot[6, 0] = True
  np.testing.assert_array_equal(s['bootstrap_only'], want_boot)
  assert s['rewards'][6, 0] == 0 and s['discounts'][6, 0] == 0 and s['rewards'][5, 0] == 3
  assert s['first'][7].tolist() == [True, False] and s['first'][1:7].sum() == 0
  assert s['observations'][7, 0].max() == 0 and s['observations'][6, 0].max() == 6   # t since reset
  np.testing.assert_array_equal(policy.given[7][0][0], _initial_state(2)[0][0])   # the state starts over
  assert rollouts.agent_steps == 29


class _KillingPool(actors.LocalActorPool):
  """Kills actor 0 right after `receive` hands out its 4th step that came alone (actor 1 steps slowly), then holds
  back every step until the replacement's first has arrived: the caller holds a step of the replaced run unanswered
  and then sees a second step from actor 0, the case `SyncRollouts` must answer in order."""

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    self.killed = False
    self._alone = 0
    self._held = []

  def receive(self, timeout):
    if self.killed and self._held is not None:
      deadline = time.monotonic() + 60
      while not any(s.actor_id == 0 and s.run_id == 1 for s in self._held):
        assert time.monotonic() < deadline, 'no replacement within 60 s'
        self._held += super().receive(0.5)
      steps, self._held = self._held, None
      return steps
    steps = super().receive(timeout)
    if not self.killed and {s.actor_id for s in steps} == {0}:
      self._alone += 1
      if self._alone == 4:
        proc = self._slots[0].proc   # pylint: disable=protected-access
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        self.killed = True
    return steps


def test_a_step_of_a_replaced_run_is_answered_first_so_the_replacement_gets_its_own():
  cfgs = [actors.ActorConfig('test_scripted', {'num_agents': 1, 'episode_length': 1000}, seed=30, num_frames=1),
          actors.ActorConfig('test_scripted', {'num_agents': 1, 'episode_length': 1000, 'step_delay_s': 0.3},
                             seed=31, num_frames=1)]
  # An answer the pool swallows as the dead run's leaves the replacement waiting for ever: max_wait_s ends that.
  pool = _KillingPool(cfgs, max_restarts=1, actor_timeout_s=5.0)
  with sr.SyncRollouts(pool, 4, max_wait_s=30.0) as rollouts:
    policy = _stateless(lambda obs, t: np.full(len(obs), 2))
    got = [rollouts.collect(policy) for _ in range(3)]
    assert pool.killed and pool.restarts == 1 and rollouts.restarted_envs == 1 and rollouts.superseded_steps == 1
  s = _joined(got)
  assert s['bootstrap_only'][:, 1].sum() == 0 and s['bootstrap_only'][:, 0].sum() == 1
  t = int(np.argmax(s['bootstrap_only'][:, 0]))
  assert s['first'][t + 1, 0] and s['observations'][t + 1, 0].max() == 0
  assert s['observations'][-1, 0].max() == 12 - (t + 1)   # the replacement stepped every step since


# --------------------------------------------------------------------------------------------------- errors
def test_bad_policy_outputs_and_multi_agent_envs_are_named():
  def run_with(policy, name='cartpole_masked', **kw):
    pool = pools.make_pool(sr.actor_configs(name, 2, num_frames=1, **kw), runtime='inline')
    with sr.SyncRollouts(pool, 3, initial_state=lambda e: (np.zeros((e, 2)),)) as rollouts:
      rollouts.collect(policy)

  ok = lambda obs, state: np.zeros(len(obs), np.int64)
  with pytest.raises(ValueError, match=r'actions of shape \(3,\)'):
    run_with(lambda obs, state, first: (np.zeros(3, np.int64), state, {}))
  with pytest.raises(ValueError, match='actions of dtype'):
    run_with(lambda obs, state, first: (np.array(['a', 'b']), state, {}))
  with pytest.raises(ValueError, match='another structure'):
    run_with(lambda obs, state, first: (ok(obs, state), state[0], {}))
  with pytest.raises(ValueError, match='state array of shape'):
    run_with(lambda obs, state, first: (ok(obs, state), (np.zeros((2, 3)),), {}))
  with pytest.raises(ValueError, match="extra 'eps' has shape"):
    run_with(lambda obs, state, first: (ok(obs, state), state, {'eps': np.zeros((5, 1))}))
  with pytest.raises(ValueError, match='one-agent environments'):
    run_with(lambda obs, state, first: (ok(obs, state), state, {}), name='test_scripted',
             env_kwargs={'num_agents': 2})
  with pytest.raises(ValueError, match='leading axis of the 2 environments'):
    with sr.SyncRollouts(pools.make_pool(sr.actor_configs('pendulum', 2), runtime='inline'), 3,
                         initial_state=(np.zeros((3, 1)),)):
      pass
