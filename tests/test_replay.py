"""The replay memory (rlcv_tf/runtime/replay.py) against a naive list-based reference written independently: full
stacked observations kept per record, popped from the front at capacity; stacks rebuilt from real FrameStack
observations of the pendulum engine; uniform sampling (chi-square); seeding; ACER's segment store; Poisson(1)."""

import numpy as np
import pytest
from scipy import stats

from rlcv_tf.envs import registry
from rlcv_tf.runtime import replay


class NaiveReplay:
  """Every record keeps its own stacked observation and next observation (built with FrameStack's rule from the
  episode's frames), in a Python list whose head is dropped at capacity."""

  def __init__(self, capacity, num_frames):
    self.capacity, self.k = capacity, num_frames
    self.records = []
    self.episode = {}     # stream -> [(id, frame), ...] of the current episode
    self.next_id = 0

  def _stack(self, frames):
    ids = [i for i, _ in frames][-self.k:]
    fr = [f for _, f in frames][-self.k:]
    while len(fr) < self.k:
      ids.insert(0, ids[0])
      fr.insert(0, fr[0])
    return ids, np.concatenate(fr, axis=-1)

  def _push(self, record):
    self.records.append(record)
    self.next_id += 1
    if len(self.records) > self.capacity:
      self.records.pop(0)

  def begin(self, stream, frame):
    self.episode[stream] = [(self.next_id, frame)]
    self._push({'id': self.next_id, 'transition': None})

  def add(self, stream, action, reward, discount, next_frame, next_first):
    obs_ids, obs = self._stack(self.episode[stream])
    if next_first:
      self.episode[stream] = [(self.next_id, next_frame)]
    else:
      self.episode[stream].append((self.next_id, next_frame))
    _, nxt = self._stack(self.episode[stream])
    self._push({'id': self.next_id, 'transition': dict(observation=obs, next_observation=nxt, action=action,
                                                       reward=reward, discount=discount), 'needs': obs_ids})

  def sampleable(self):
    oldest = self.records[0]['id']
    return {r['id']: r['transition'] for r in self.records
            if r['transition'] is not None and min(r['needs']) >= oldest}


def _random_feed(buf, naive, rng, steps, streams, frame_shape):
  for s in range(streams):
    f = rng.integers(0, 256, size=frame_shape, dtype=np.uint8)
    buf.begin(s, f)
    naive.begin(s, f)
  for _ in range(steps):
    s = int(rng.integers(streams))
    u = rng.random()
    f = rng.integers(0, 256, size=frame_shape, dtype=np.uint8)
    if u < 0.08:      # a time-limit end: the stream starts a new episode with no transition into it
      buf.begin(s, f)
      naive.begin(s, f)
      continue
    terminal = u < 0.2
    a, r, d = int(rng.integers(5)), float(rng.normal()), 0.0 if terminal else 1.0
    buf.add(s, a, r, d, f, next_first=terminal)
    naive.add(s, a, r, d, f, terminal)


@pytest.mark.parametrize('num_frames', [1, 3])
def test_transitions_match_the_naive_reference(num_frames):
  rng = np.random.default_rng(0)
  shape = (3, 2)          # 2 channels per frame: stacks interleave [f0c0, f0c1, f1c0, ...] on the last axis
  buf = replay.TransitionReplay(37, shape, np.uint8, num_frames=num_frames, num_streams=3, seed=1)
  naive = NaiveReplay(37, num_frames)
  checked = 0
  for _ in range(12):
    _random_feed(buf, naive, rng, 23, 3, shape)
    expected = naive.sampleable()
    ids = buf.sampleable_ids()
    assert sorted(expected) == ids.tolist()
    assert len(buf) == min(naive.next_id, 37) and buf.num_added == naive.next_id
    assert buf.num_transitions == sum(r['transition'] is not None for r in naive.records)
    got = buf.get(ids)
    assert got['observation'].dtype == np.uint8
    assert got['observation'].shape == (len(ids), 3, 2 * num_frames)
    for j, i in enumerate(ids):
      for key in ('observation', 'next_observation', 'action', 'reward', 'discount'):
        np.testing.assert_array_equal(got[key][j], np.asarray(expected[i][key], got[key].dtype), err_msg=key)
      checked += 1
    for x in buf.sample(64)['id']:
      assert x in expected
  assert checked > 200


def test_stacks_equal_the_frame_stack_observations_of_a_real_engine():
  """Pendulum through FrameStack(4): the buffer, fed only the newest [3, 1] frame of each observation, gives back
  the [3, 4] stacks the engine produced, across time-limit ends (200 steps) and a cut-short episode."""
  env = registry.make_env('pendulum', seed=3, num_frames=4)
  rng = np.random.default_rng(4)
  buf = replay.TransitionReplay(10_000, (3, 1), np.float32, num_frames=4, action_shape=(1,),
                                action_dtype=np.float32, seed=0)
  seen = {}
  ts = env.reset()
  obs = ts.observation[0]
  buf.begin(0, obs[..., -1:])
  for step in range(520):
    a = rng.uniform(-2, 2, size=(1, 1)).astype(np.float32)
    ts = env.step(a)
    nxt = ts.observation[0]
    i = buf.add(0, a[0], float(ts.reward[0]), float(ts.discount), nxt[..., -1:])
    seen[i] = (obs, a[0], nxt)
    obs = nxt
    if ts.last() or step == 300:
      ts = env.reset()
      obs = ts.observation[0]
      buf.begin(0, obs[..., -1:])
  ids = buf.sampleable_ids()
  assert len(ids) == 520
  got = buf.get(ids)
  for j, i in enumerate(ids):
    np.testing.assert_array_equal(got['observation'][j], seen[i][0])
    np.testing.assert_array_equal(got['next_observation'][j], seen[i][2])
    np.testing.assert_array_equal(got['action'][j], seen[i][1])


def test_fifo_uniform_and_seeded():
  rng = np.random.default_rng(5)
  buf = replay.TransitionReplay(50, (2,), np.uint8, num_frames=2, num_streams=2, seed=7)
  naive = NaiveReplay(50, 2)
  _random_feed(buf, naive, rng, 400, 2, (2,))
  ids = buf.sampleable_ids()
  assert ids.min() >= buf.num_added - 50           # FIFO: only the newest 50 slots
  draws = np.concatenate([buf.sample(500)['id'] for _ in range(120)])
  counts = np.array([np.sum(draws == i) for i in ids])
  assert counts.sum() == draws.size               # nothing outside the sampleable set
  assert stats.chisquare(counts).pvalue > 1e-3
  again = replay.TransitionReplay(50, (2,), np.uint8, num_frames=2, num_streams=2, seed=7)
  other = replay.TransitionReplay(50, (2,), np.uint8, num_frames=2, num_streams=2, seed=8)
  rng2, rng3 = np.random.default_rng(5), np.random.default_rng(5)
  _random_feed(again, NaiveReplay(50, 2), rng2, 400, 2, (2,))
  _random_feed(other, NaiveReplay(50, 2), rng3, 400, 2, (2,))
  first = replay.TransitionReplay(50, (2,), np.uint8, num_frames=2, num_streams=2, seed=7)
  _random_feed(first, NaiveReplay(50, 2), np.random.default_rng(5), 400, 2, (2,))
  a, b, c = first.sample(32)['id'], again.sample(32)['id'], other.sample(32)['id']
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)


def test_bad_input():
  buf = replay.TransitionReplay(8, (2, 1), np.float32, num_frames=2)
  with pytest.raises(ValueError, match='begin'):
    buf.add(0, 1, 0.0, 1.0, np.zeros((2, 1)))
  with pytest.raises(ValueError, match='no transition'):
    buf.sample(4)
  buf.begin(0, np.zeros((2, 1)))
  with pytest.raises(ValueError, match='discount 0'):
    buf.add(0, 1, 0.0, 1.0, np.zeros((2, 1)), next_first=True)
  with pytest.raises(ValueError, match='shape'):
    buf.add(0, 1, 0.0, 1.0, np.zeros((3, 1)))
  with pytest.raises(ValueError, match='stream'):
    buf.begin(1, np.zeros((2, 1)))
  with pytest.raises(ValueError, match='capacity'):
    replay.TransitionReplay(0, (2,))


def test_state_dict_round_trip(tmp_path):
  rng = np.random.default_rng(9)
  buf = replay.TransitionReplay(40, (2,), np.uint8, num_frames=3, num_streams=2, seed=3,
                                extras={'logp': replay.FieldSpec((), np.float32)})
  for s in range(2):
    buf.begin(s, rng.integers(0, 9, size=2))
  for _ in range(90):
    buf.add(int(rng.integers(2)), 1, 0.5, 1.0, rng.integers(0, 9, size=2), logp=rng.normal())
  path = str(tmp_path / 'replay.npz')
  replay.save(path, buf.state_dict())
  copy = replay.TransitionReplay(40, (2,), np.uint8, num_frames=3, num_streams=2, seed=99,
                                 extras={'logp': replay.FieldSpec((), np.float32)})
  copy.load_state_dict(replay.load(path))
  a, b = buf.sample(16), copy.sample(16)
  for k in a:
    np.testing.assert_array_equal(a[k], b[k])
  buf.add(0, 2, 1.0, 0.0, np.ones(2), logp=0.0)
  copy.add(0, 2, 1.0, 0.0, np.ones(2), logp=0.0)
  np.testing.assert_array_equal(buf.sampleable_ids(), copy.sampleable_ids())
  with pytest.raises(ValueError, match='num_frames'):
    replay.TransitionReplay(40, (2,), np.uint8, num_frames=2, num_streams=2).load_state_dict(replay.load(path))


def _segments(rng, t, e, start):
  return {
      'observations': rng.normal(size=(t + 1, e, 4, 1)).astype(np.float32),
      'first': rng.random((t + 1, e)) < 0.1,
      'actions': rng.integers(0, 3, size=(t, e)).astype(np.int32),
      'rewards': np.full((t, e), start, np.float32) + np.arange(e, dtype=np.float32),
      'discounts': np.ones((t, e), np.float32),
      'bootstrap_only': np.zeros((t, e), bool),
      'behaviour_probs': rng.dirichlet(np.ones(3), size=(t, e)).astype(np.float32),
      'noise/z1': rng.normal(size=(t, e, 5)).astype(np.float32),
      'state/h': rng.normal(size=(e, 6)).astype(np.float32),
  }


def test_sequence_replay_against_a_list():
  rng = np.random.default_rng(10)
  t, e = 5, 3
  fields = replay.acer_fields((4, 1), 3, {'z1': (5,)}, {'h': (6,)})
  buf = replay.SequenceReplay(capacity=40, length=t, fields=fields, seed=2)   # 40 transitions = 8 segments
  assert buf.capacity == 8
  naive = []
  for it in range(7):
    batch = _segments(rng, t, e, 10 * it)
    buf.add(batch)
    for j in range(e):
      naive.append({k: (v[j] if k.startswith('state/') else v[:, j]) for k, v in batch.items()})
    naive = naive[-8:]
    assert len(buf) == len(naive) and buf.num_transitions == len(naive) * t
  ids = np.arange(buf.num_added - 8, buf.num_added)
  got = buf.get(ids)
  for j, ref in enumerate(naive):
    for k, v in ref.items():
      np.testing.assert_array_equal(got[k][j] if k.startswith('state/') else got[k][:, j], v, err_msg=k)
  draws = np.concatenate([buf.sample(8)['id'] for _ in range(2000)])
  counts = np.bincount(draws - ids[0], minlength=8)
  assert counts.sum() == draws.size and stats.chisquare(counts).pvalue > 1e-3
  sample = buf.sample(4)
  assert sample['observations'].shape == (t + 1, 4, 4, 1) and sample['state/h'].shape == (4, 6)
  np.testing.assert_allclose(sample['behaviour_probs'].sum(-1), 1.0, rtol=1e-5)
  with pytest.raises(ValueError, match='observations'):
    bad = _segments(rng, t, e, 0)
    bad['observations'] = bad['observations'][:-1]
    buf.add(bad)
  state = buf.state_dict()
  copy = replay.SequenceReplay(capacity=40, length=t, fields=fields, seed=0)
  copy.load_state_dict(state)
  a, b = buf.sample(5), copy.sample(5)
  for k in a:
    np.testing.assert_array_equal(a[k], b[k])



def test_load_refuses_another_buffers_state_and_writes_nothing():
  """Each header check of both stores' `load_state_dict` (kind, settings, named arrays; a SequenceReplay field's
  shape) refuses a state saved by a differently built buffer, with the message naming the mismatch, and leaves the
  buffer as it was (still empty, the generator untouched)."""
  rng = np.random.default_rng(11)
  spec = {'logp': replay.FieldSpec((), np.float32)}
  trans = replay.TransitionReplay(40, (2,), np.uint8, num_frames=3, extras=spec)
  trans.begin(0, np.zeros(2))
  for _ in range(5):
    trans.add(0, 1, 0.5, 1.0, np.ones(2), logp=0.0)
  t = 4
  fields = replay.acer_fields((4, 1), 3, {'z1': (5,)}, {'h': (6,)})
  seqs = replay.SequenceReplay(capacity=40, length=t, fields=fields)
  seqs.add(_segments(rng, t, 3, 0))
  seq_state = seqs.state_dict()
  wrong_shape = dict(seq_state, **{'field/state/h': seq_state['field/state/h'][:, :5]})
  cases = [
      (lambda: replay.TransitionReplay(40, (2,), np.uint8, num_frames=3, extras=spec), seq_state,
       'not a TransitionReplay state'),
      (lambda: replay.TransitionReplay(50, (2,), np.uint8, num_frames=3, extras=spec), trans.state_dict(),
       'saved replay has capacity=40, this buffer 50'),
      (lambda: replay.TransitionReplay(40, (2,), np.uint8, num_frames=3), trans.state_dict(),
       'saved replay has other extras than this buffer'),
      (lambda: replay.SequenceReplay(40, t, fields), trans.state_dict(), 'not a SequenceReplay state'),
      (lambda: replay.SequenceReplay(40, 5, fields), seq_state, 'saved replay has length=4, this buffer 5'),
      (lambda: replay.SequenceReplay(40, t, replay.acer_fields((4, 1), 3, {'z2': (5,)}, {'h': (6,)})), seq_state,
       'saved replay has other fields than this buffer'),
      (lambda: replay.SequenceReplay(40, t, fields), wrong_shape,
       "saved field 'state/h' has shape (5,), this buffer (6,)"),
  ]
  for build, state, message in cases:
    buf = build()
    before = buf.rng.bit_generator.state
    with pytest.raises(ValueError) as e:
      buf.load_state_dict(state)
    assert str(e.value) == message
    assert len(buf) == 0 and buf.num_added == 0 and buf.rng.bit_generator.state == before


def test_poisson_replay_count():
  rng = np.random.default_rng(12)
  n = 200_000
  draws = np.array([replay.poisson_replay_count(rng, 1.0) for _ in range(n)])
  assert abs(draws.mean() - 1.0) < 4 / np.sqrt(n)
  assert abs(draws.var() - 1.0) < 0.02
  assert abs(np.mean(draws == 0) - np.exp(-1)) < 4 * np.sqrt(np.exp(-1) * (1 - np.exp(-1)) / n)
  with pytest.raises(ValueError):
    replay.poisson_replay_count(rng, -1.0)
