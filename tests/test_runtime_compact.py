"""Compact observations (`runtime/compact.py`): the learner's rebuilt stacks equal `FrameStack`'s bit for bit across
episode ends, truncations and actor restarts; shared planes reassemble the whole frame; "shared" channels that
differ between agents travel whole instead of wrongly; a real actor process through `LocalActorPool` equals an
in-process stacked environment; preallocated unrolls equal the old per-step stacking. No TensorFlow here."""

import os
import signal
import time

import dm_env
import numpy as np
import pytest
from dm_env import specs

from rlcv_tf.envs import base
from rlcv_tf.envs import frame_stack
from rlcv_tf.envs import registry
from rlcv_tf.runtime import actors
from rlcv_tf.runtime import compact
from rlcv_tf.runtime import env_runner
from rlcv_tf.runtime import transport
from rlcv_tf.runtime import unrolls


class _PlanesEnv(base.MultiAgentEnv):
  """Random frames [N, H, W, C]: `shared` channels drawn once per team, the others per agent; binary (0/255) or
  any byte; with another `dtype` than uint8 (no shared channels), normal draws of that dtype (Chapter 2's float
  frames). Episodes of `length` steps end in a termination or, with `truncate`, a time limit. With `lie_every`,
  agent 1's first shared channel differs from its team's at every such step (a wrong declaration)."""

  def __init__(self, seed, channels=4, shared=(0, 1, 2), teams=(3, 0), hw=(6, 8), binary=True, length=7,
               truncate=False, lie_every=0, dtype=np.uint8):
    self._rng = np.random.default_rng(seed)
    self._dtype = np.dtype(dtype)
    self._c, self._shared, self._teams, self._hw = channels, tuple(shared), tuple(teams), hw
    self._binary, self._length, self._truncate, self._lie = binary, length, truncate, lie_every
    self._t = 0
    self._steps = 0

  num_actions = 3

  @property
  def num_agents(self):
    return sum(self._teams)

  @property
  def team_sizes(self):
    return self._teams

  @property
  def map_hw(self):
    return self._hw

  @property
  def shared_channels(self):
    return self._shared

  def agent_positions(self):
    return np.zeros((self.num_agents, 2), np.int32)

  def observation_spec(self):
    return specs.Array((self.num_agents,) + self._hw + (self._c,), self._dtype)

  def _draw(self, shape):
    if self._dtype != np.uint8:
      return (self._rng.normal(size=shape) * 100).astype(self._dtype)
    if self._binary:
      return (self._rng.random(shape) < 0.2).astype(np.uint8) * 255
    return self._rng.integers(0, 256, shape).astype(np.uint8)

  def _frame(self):
    frame = self._draw((self.num_agents,) + self._hw + (self._c,))
    start = 0
    for size in self._teams:
      frame[start:start + size, ..., list(self._shared)] = self._draw(self._hw + (len(self._shared),))
      start += size
    self._steps += 1
    if self._lie and self._steps % self._lie == 0:
      frame[1, 0, 0, self._shared[0]] ^= 255
    return frame

  def reset(self):
    self._t = 0
    return dm_env.restart(self._frame())

  def step(self, actions):
    self._t += 1
    reward = np.asarray(actions, np.float32)
    if self._t < self._length:
      return dm_env.transition(reward, self._frame())
    return (dm_env.truncation if self._truncate else dm_env.termination)(reward, self._frame())

  def close(self):
    pass


def _round_trip(encoder, stacker, out, run_id, actor_id=0):
  """One `env_runner` output of an unstacked env, as the actor sends it and the learner rebuilds it."""
  e = encoder.encode(out.observation)
  payload = transport.encode_step(e.arrays, out.reward, out.done, out.agent_positions, out.episode, out.discount,
                                  out.truncated, e.encoding, e.num_frames)[5:]
  step = transport.decode_step(payload)
  return stacker.observation(actor_id, run_id, step), e.encoding, len(payload)


def _compare_with_framestack(make, num_frames, runs=3, steps_per_run=25, seed=0):
  """Steps `make(seed)` stacked by FrameStack and unstacked through encoder -> wire -> stacker, with the same
  actions, over `runs` runs of one actor (each a restart: new env, new run id) whose last episode is cut short.
  Returns the encodings seen and how many steps were compared, done and truncated."""
  rng = np.random.default_rng(seed)
  stacker = compact.FrameStacker()
  seen, counts = set(), {'steps': 0, 'done': 0, 'truncated': 0}
  for run_id in range(runs):
    ref_env = frame_stack.FrameStack(make(100 + run_id), num_frames)
    env = make(100 + run_id)
    encoder = compact.FrameEncoder(num_frames, env.shared_channels, env.team_sizes)
    ref, mine = env_runner.EnvRunner(ref_env), env_runner.EnvRunner(env)
    a, b = ref.reset(), mine.reset()
    for t in range(steps_per_run + 3 * run_id):
      got, encoding, _ = _round_trip(encoder, stacker, b, run_id)
      seen.add(encoding)
      assert (a.done, a.truncated) == (b.done, b.truncated)
      assert got.shape == a.observation.shape and got.dtype == a.observation.dtype
      np.testing.assert_array_equal(got, a.observation, err_msg=f'run {run_id} step {t}')
      counts['steps'] += 1
      counts['done'] += a.done
      counts['truncated'] += a.truncated
      actions = rng.integers(0, 3, env.num_agents).astype(np.int32)
      a, b = ref.step(actions), mine.step(actions)
  return seen, counts


@pytest.mark.parametrize('kw,num_frames,encodings', [
    (dict(), 4, {transport.SHARED_BITS}),                                                    # the SMM's layout
    (dict(teams=(3, 2), truncate=True), 4, {transport.SHARED_BITS}),                         # two teams
    (dict(channels=3, shared=(0, 2), teams=(2, 0), binary=False, truncate=True), 3, {transport.SHARED}),
    (dict(channels=1, shared=(), teams=(2, 0), binary=False, truncate=True), 2, {transport.FRAME}),
    (dict(channels=6, shared=(1,), teams=(1, 1), binary=False, length=4), 5, {transport.SHARED}),
    (dict(lie_every=3, truncate=True), 4, {transport.SHARED_BITS, transport.FRAME}),        # a wrong declaration
    # Chapter 2: frames of other dtypes travel whole and are stacked as bytes.
    (dict(channels=1, shared=(), teams=(1, 0), truncate=True, dtype=np.float32), 4, {transport.FRAME}),
    (dict(channels=3, shared=(), teams=(2, 0), dtype=np.float64), 3, {transport.FRAME}),
    (dict(channels=2, shared=(), teams=(1, 0), truncate=True, dtype=np.int16), 2, {transport.FRAME}),
])
def test_rebuilt_stacks_equal_framestack_across_episode_ends_truncations_and_restarts(kw, num_frames, encodings):
  make = lambda seed: _PlanesEnv(seed, **kw)
  seen, counts = _compare_with_framestack(make, num_frames)
  assert seen == encodings
  assert counts['done'] >= 6 and counts['steps'] == 84
  if kw.get('truncate'):
    assert counts['truncated'] >= 6


def test_rebuilt_stacks_equal_framestack_on_the_football_stand_in():
  make = lambda seed: registry.make_env('mini_5v5_small', seed=seed, num_frames=1, episode_length=9, right_agents=2)
  seen, counts = _compare_with_framestack(make, 4, runs=2, steps_per_run=30)
  assert seen == {transport.SHARED_BITS} and counts['done'] >= 5


def test_a_restart_starts_a_new_stack_and_drops_the_old_run():
  """The first step of a new run is k copies of its frame, whatever the old run's stack held."""
  stacker = compact.FrameStacker()
  frames = [np.full((2, 3, 4, 1), v, np.uint8) for v in range(5)]
  step = lambda f, done=False: transport.Step((f,), np.zeros(2, np.float32), done, np.zeros((2, 2), np.int32), None,
                                              1.0, False, transport.FRAME, 3)
  assert stacker.observation(0, 0, step(frames[0]))[0, 0, 0].tolist() == [0, 0, 0]
  assert stacker.observation(0, 0, step(frames[1]))[0, 0, 0].tolist() == [0, 0, 1]
  assert stacker.observation(1, 0, step(frames[4]))[0, 0, 0].tolist() == [4, 4, 4]   # another actor: its own
  assert stacker.observation(0, 0, step(frames[2]))[0, 0, 0].tolist() == [0, 1, 2]
  assert stacker.observation(0, 1, step(frames[3]))[0, 0, 0].tolist() == [3, 3, 3]   # restarted
  assert stacker.observation(0, 1, step(frames[4], done=True))[0, 0, 0].tolist() == [4, 4, 4]   # a new episode
  assert stacker.observation(0, 1, step(frames[0]))[0, 0, 0].tolist() == [4, 4, 0]


@pytest.mark.parametrize('pack_bits', [True, False])
@pytest.mark.parametrize('teams', [(5, 0), (4, 1), (2, 3)])
def test_shared_planes_reassemble_the_whole_frame(pack_bits, teams):
  env = _PlanesEnv(0, teams=teams, hw=(72, 96))
  encoder = compact.FrameEncoder(4, env.shared_channels, env.team_sizes, pack_bits=pack_bits)
  for _ in range(3):
    frame = env.reset().observation
    e = encoder.encode(frame)
    assert e.encoding == (transport.SHARED_BITS if pack_bits else transport.SHARED)
    size = sum(a.nbytes for a in e.arrays)
    if not pack_bits:   # 3 planes per team + 1 per agent, instead of 4 per agent
      assert size < frame.nbytes * (sum(1 for t in teams if t) * 3 + 5) / (4 * 5) + 64
    step = transport.decode_step(transport.encode_step(e.arrays, np.zeros(5, np.float32), False,
                                                       np.zeros((5, 2), np.int32), None, 1.0, False, e.encoding,
                                                       e.num_frames)[5:])
    np.testing.assert_array_equal(compact.newest_frame(step), frame)
  assert encoder.fallbacks == 0


def test_shared_channels_that_differ_between_agents_travel_whole():
  """The encoder compares the declared channels at every step: where they differ within a team the frame goes
  whole (FRAME) and is counted; differences between teams or in the agents' own channels are as declared."""
  frame = _PlanesEnv(1, teams=(3, 2)).reset().observation
  encoder = compact.FrameEncoder(4, (0, 1, 2), (3, 2))
  assert encoder.encode(frame).encoding == transport.SHARED_BITS
  frame[0, ..., 3] ^= 255            # own channel: still shared
  frame[3:, ..., 0] ^= 255           # the right team differs from the left one: still shared within each team
  assert encoder.encode(frame).encoding == transport.SHARED_BITS and encoder.fallbacks == 0
  for team_agent in (1, 4):
    bad = frame.copy()
    bad[team_agent, 5, 7, 2] ^= 1    # one byte of one shared plane of one agent
    e = encoder.encode(bad)
    assert e.encoding == transport.FRAME and e.arrays[0] is not None
    np.testing.assert_array_equal(e.arrays[0], bad)
  assert encoder.fallbacks == 2
  generic = compact.FrameEncoder(2, (0, 2), (3,))  # 3 channels: no machine-word path
  rgb = np.zeros((3, 4, 5, 3), np.uint8)
  assert generic.encode(rgb).encoding == transport.SHARED_BITS
  rgb[2, 0, 0, 2] = 7
  assert generic.encode(rgb).encoding == transport.FRAME and generic.fallbacks == 1
  rgb[2, 0, 0, 2], rgb[2, 0, 0, 1] = 0, 7    # channel 1 is its own
  assert generic.encode(rgb).encoding == transport.SHARED and generic.fallbacks == 1


def test_declared_channels_a_frame_lacks_are_refused():
  with pytest.raises(ValueError, match='lacks'):
    compact.FrameEncoder(4, (0, 4), (2,)).encode(np.zeros((2, 3, 3, 4), np.uint8))
  with pytest.raises(ValueError, match='add up'):
    compact.FrameEncoder(4, (0,), (2, 1)).encode(np.zeros((2, 3, 3, 4), np.uint8))


def test_damaged_compact_steps_raise_protocol_errors_only():
  env = _PlanesEnv(2, teams=(3, 2))
  rng = np.random.default_rng(3)
  for pack_bits in (True, False):
    e = compact.FrameEncoder(4, env.shared_channels, env.team_sizes, pack_bits).encode(env.reset().observation)
    payload = transport.encode_step(e.arrays, np.zeros(5, np.float32), False, np.zeros((5, 2), np.int32), None,
                                    1.0, False, e.encoding, e.num_frames)[5:]
    decoded = 0
    for trial in range(1500):
      damaged = bytearray(payload)
      if trial < 300:   # the headers, where a change matters most
        damaged[int(rng.integers(0, 120))] = int(rng.integers(0, 256))
      else:
        for i in rng.integers(0, len(damaged), size=int(rng.integers(1, 4))):
          damaged[i] = int(rng.integers(0, 256))
      try:
        compact.FrameStacker().observation(0, 0, transport.decode_step(bytes(damaged)))
        decoded += 1
      except transport.ProtocolError:
        pass
    assert decoded > 0


def test_an_actor_of_the_whole_stack_protocol_is_refused():
  """Version 1 sent whole stacks in another STEP layout: its HELLO is refused before any STEP is read."""
  assert transport.VERSION == 3
  with pytest.raises(transport.VersionMismatch, match='version 1'):
    transport.decode_hello(transport.encode_hello(b'k' * 16, 0, 0, version=1)[5:])


def test_a_run_that_changes_its_frames_is_a_protocol_error():
  stacker = compact.FrameStacker()
  step = lambda arrays, encoding, k: transport.Step(arrays, np.zeros(2, np.float32), False,
                                                    np.zeros((2, 2), np.int32), None, 1.0, False, encoding, k)
  frame = np.zeros((2, 3, 4, 1), np.uint8)
  stacker.observation(0, 0, step((frame,), transport.FRAME, 4))
  with pytest.raises(transport.ProtocolError, match='within a run'):
    stacker.observation(0, 0, step((np.zeros((2, 3, 5, 1), np.uint8),), transport.FRAME, 4))
  with pytest.raises(transport.ProtocolError, match='within a run'):
    stacker.observation(0, 0, step((frame,), transport.FRAME, 3))
  with pytest.raises(transport.ProtocolError, match='FULL'):
    stacker.observation(0, 0, step((np.zeros((2, 3, 4, 4), np.uint8),), transport.FULL, 1))
  with pytest.raises(transport.ProtocolError, match='agents'):
    stacker.observation(1, 0, step((np.zeros((3, 3, 4, 1), np.uint8),), transport.FRAME, 4))
  assert stacker.observation(0, 1, step((frame,), transport.FRAME, 2)).shape == (2, 3, 4, 2)   # a new run may


# ------------------------------------------------------------------------------------- through actor processes
@pytest.mark.parametrize('family', ['unix', 'tcp'])
def test_actor_processes_equal_in_process_framestack_envs_across_a_restart(family, monkeypatch):
  """Two actors (the football stand-in with two teams, 4 frames; the scripted env with time limits, 3 frames)
  through LocalActorPool; actor 0 is killed mid-episode and comes back as run 1. Every observation equals the one
  an in-process environment stacked by FrameStack gives for that run's seed and the same actions."""
  encodings = []
  decode = transport.decode_step
  monkeypatch.setattr(transport, 'decode_step', lambda payload: encodings.append(decode(payload).encoding) or
                      decode(payload))
  cfgs = [actors.ActorConfig('mini_5v5_small', {'episode_length': 7, 'right_agents': 2}, seed=5, num_frames=4),
          actors.ActorConfig('test_scripted', {'episode_length': 4, 'truncate': True}, seed=9, num_frames=3)]
  rng = np.random.default_rng(0)
  refs = {}        # (actor, run) -> (EnvRunner of the stacked in-process env, its next output)
  compared = {(0, 0): 0, (0, 1): 0, (1, 0): 0}
  flags = {'done': 0, 'truncated': 0}
  with actors.LocalActorPool(cfgs, max_restarts=1, family=family) as pool:
    killed = False
    deadline = time.monotonic() + 120
    while compared[0, 1] < 20 or compared[1, 0] < 20:
      assert time.monotonic() < deadline, compared
      steps = pool.receive(1.0)
      for s in steps:
        key = (s.actor_id, s.run_id)
        if key not in refs:
          cfg = cfgs[s.actor_id]
          env = registry.make_env(cfg.env_name, seed=actors.restart_seed(cfg.seed, s.run_id),
                                  num_frames=cfg.num_frames, **cfg.env_kwargs)
          runner = env_runner.EnvRunner(env)
          refs[key] = [runner, runner.reset()]
        runner, want = refs[key]
        np.testing.assert_array_equal(s.observation, want.observation, err_msg=f'{key} step {compared[key]}')
        assert (s.done, s.truncated, s.discount) == (want.done, want.truncated, want.discount)
        np.testing.assert_array_equal(s.reward, want.reward)
        compared[key] += 1
        flags['done'] += s.done
        flags['truncated'] += s.truncated
        a = rng.integers(0, 5, len(s.reward)).astype(np.int32)
        refs[key][1] = runner.step(a)
        pool.send_actions([s.actor_id], a[np.newaxis])   # one by one: the actors have 7 and 2 agents
      if not killed and compared[0, 0] >= 20 and not refs[0, 0][1].done:
        os.kill(pool.pids()[0], signal.SIGKILL)   # mid-episode: the old run's stack must not leak into run 1
        killed = True
    assert pool.restarts == 1
  assert flags['done'] >= 6 and flags['truncated'] >= 3
  assert set(encodings) == {transport.FRAME, transport.SHARED_BITS}   # the scripted env declares no shared planes


# -------------------------------------------------------------------------------------------------- unrolls
class _OldBuilder:
  """The unroll store before preallocation: a list of step dicts per actor, stacked when full."""

  def __init__(self, unroll_length):
    self._length = unroll_length + 1
    self._stores = {}

  def append(self, actor_id, run_id, step):
    run, steps = self._stores.get(actor_id, (None, None))
    if run != run_id:
      steps = []
      self._stores[actor_id] = (run_id, steps)
    steps.append(step)
    if len(steps) < self._length:
      return None
    unroll = {k: np.stack([s[k] for s in steps]) for k in unrolls.UNROLL_FIELDS}
    del steps[:-1]
    return unroll


def _random_step(rng, n=3):
  return {'observation': rng.integers(0, 256, (n, 4, 5, 8)).astype(np.uint8),
          'reward': rng.normal(size=n).astype(np.float32), 'done': np.bool_(rng.random() < 0.2),
          'discount': np.float32(rng.random()), 'truncated': np.bool_(rng.random() < 0.1),
          'agent_positions': rng.integers(0, 9, (n, 2)).astype(np.int32),
          'action': rng.integers(0, 19, n).astype(np.int32),
          'behaviour_logits': rng.normal(size=(n, 19)).astype(np.float32)}


def test_preallocated_unrolls_equal_the_old_stacking():
  rng = np.random.default_rng(0)
  new, old = unrolls.UnrollBuilder(5), _OldBuilder(5)
  runs = {0: 0, 1: 0, 2: 0}
  emitted, kept = [], []
  for t in range(400):
    actor = int(rng.integers(0, 3))
    if rng.random() < 0.02:
      runs[actor] += 1   # a restart: the partial unroll is dropped by both
    step = _random_step(rng)
    got, want = new.append(actor, runs[actor], step), old.append(actor, runs[actor], step)
    assert (got is None) == (want is None), t
    if got is not None:
      assert set(got) == set(unrolls.UNROLL_FIELDS)
      for k in unrolls.UNROLL_FIELDS:
        assert got[k].dtype == want[k].dtype and got[k].shape == want[k].shape, k
        np.testing.assert_array_equal(got[k], want[k])
      emitted.append(got)
      kept.append({k: v.copy() for k, v in got.items()})
  assert len(emitted) >= 50
  for got, want in zip(emitted, kept):   # later appends never write into an unroll already handed out
    for k in unrolls.UNROLL_FIELDS:
      np.testing.assert_array_equal(got[k], want[k])
  batch = unrolls.stack_batch(emitted[:4])
  for k in unrolls.UNROLL_FIELDS:
    np.testing.assert_array_equal(batch[k], np.stack([u[k] for u in kept[:4]], axis=1))
  arrays = dict(batch)
  again = unrolls.stack_batch(emitted[4:8], out=batch)   # written into the last batch's arrays
  smaller = unrolls.stack_batch(emitted[8:11], out=again)  # another batch size: new arrays
  for k in unrolls.UNROLL_FIELDS:
    assert again[k] is arrays[k] and smaller[k] is not arrays[k]
    np.testing.assert_array_equal(again[k], np.stack([u[k] for u in kept[4:8]], axis=1))
    np.testing.assert_array_equal(smaller[k], np.stack([u[k] for u in kept[8:11]], axis=1))


def test_a_step_of_another_shape_is_refused():
  rng = np.random.default_rng(1)
  b = unrolls.UnrollBuilder(3)
  b.append(0, 0, _random_step(rng))
  with pytest.raises(ValueError, match="'reward'"):
    b.append(0, 0, dict(_random_step(rng), reward=np.float32(1.0)))   # would broadcast silently
