"""The project's replay memory: FIFO, uniform, seeded; NumPy only (no TensorFlow).

Two stores share one ring discipline (a fixed number of slots, the oldest overwritten first, every slot named by a
global id that only grows):

* `TransitionReplay` (DDPG family; issue 15's value-based agents): one slot per stored observation frame, so a
  frame is stored once however many stacks and transitions use it. A stream (one environment) feeds it in order:
  `begin(stream, frame)` for an observation no transition led to (an episode's first), then
  `add(stream, action, reward, discount, next_frame, next_first)` for each transition from the stream's current
  frame. Stacks of `num_frames` frames are rebuilt at sampling time with `envs/frame_stack.FrameStack`'s rule
  (oldest first on the last axis; at an episode start the first frame is repeated), so a buffer fed with the newest
  frame of each stacked observation gives back exactly the stacked observations the agent saw. Frames keep the
  dtype they are given (uint8 for pixels, float32 for state vectors).

  A transition into a new episode (`next_first`, the environment was reset after a termination) must have
  discount 0: its next observation belongs to the new episode and is never bootstrapped from. Capacity counts
  slots: the transitions plus one first frame per episode. A transition can be sampled while every frame of its
  observation stack is still stored (the oldest `num_frames - 1` transitions of a stream may lose their oldest
  frames before they leave the buffer themselves; they are then skipped).

* `SequenceReplay` (ACER family, Wang et al. 2016; thesis T:L1733-1737): whole on-policy segments of `length`
  (t_max) steps, each with the behaviour policy's probabilities, the noise the behaviour network drew, and the
  recurrent state it started from (`acer_fields` lists them). Capacity is given in transitions ("buffer size
  15000", T:L1735) and holds capacity // length segments (750 of 20). A segment's observations are
  [length + 1, ...]: the last one bootstraps, and is also the next segment's first.

Sampling is uniform with replacement over what can be sampled (rejection sampling over the slots, exact), from the
buffer's own `numpy.random.Generator` seeded at construction, so one seed and one sequence of calls give one
sequence of samples. `poisson_replay_count` draws ACER's number of off-policy replays per on-policy update
(Poisson(replay ratio); ratio 1, T:L1735).

`state_dict` / `load_state_dict` give the contents (and the generator's state) as plain arrays for `np.savez`
(no pickle), so a run can resume with its replay memory.
"""

import dataclasses
import json
import os
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

# How many rounds of rejection sampling before falling back to listing every sampleable slot (only reached when
# very few slots can be sampled, e.g. just after the first episode starts).
_REJECTION_ROUNDS = 64


def poisson_replay_count(rng: np.random.Generator, ratio: float = 1.0) -> int:
  """The number of off-policy updates after one on-policy update: a Poisson(ratio) draw (ACER's replay ratio)."""
  if not ratio >= 0:
    raise ValueError(f'replay ratio must be >= 0, got {ratio!r}')
  return int(rng.poisson(ratio))


@dataclasses.dataclass(frozen=True)
class FieldSpec:
  """One stored array per slot: `shape` (no batch or time axis) and `dtype`. For `SequenceReplay`, `time` says
  how many steps a segment holds: 'steps' (length), 'steps_plus_one' (length + 1: observations, episode-start
  flags) or 'none' (one per segment: the initial recurrent state)."""
  shape: Tuple[int, ...] = ()
  dtype: Any = np.float32
  time: str = 'steps'

  def __post_init__(self):
    object.__setattr__(self, 'shape', tuple(int(d) for d in self.shape))
    object.__setattr__(self, 'dtype', np.dtype(self.dtype))
    if self.time not in ('steps', 'steps_plus_one', 'none'):
      raise ValueError(f"time must be 'steps', 'steps_plus_one' or 'none', got {self.time!r}")


def _json_state(rng: np.random.Generator) -> np.ndarray:
  return np.array(json.dumps(rng.bit_generator.state))


def _load_rng(rng: np.random.Generator, state: np.ndarray):
  rng.bit_generator.state = json.loads(str(state))


def _check_count(value, what: str) -> int:
  """`value` as an int; ValueError '<what> must be an integer >= 1, got ...' when it is not a positive integer."""
  if not isinstance(value, (int, np.integer)) or value < 1:
    raise ValueError(f'{what} must be an integer >= 1, got {value!r}')
  return int(value)


def _check_saved_header(state: Mapping[str, np.ndarray], kind: str, class_name: str,
                        settings: Sequence[Tuple[str, int]], prefix: str, names, noun: str) -> None:
  """The checks a `load_state_dict` makes before it writes anything: the state is of `kind`, each (key, value) of
  `settings` equals the saved one, and the saved arrays named `prefix + name` are exactly `names`."""
  if str(state.get('kind', '')) != kind:
    raise ValueError(f'not a {class_name} state')
  for key, mine in settings:
    if int(state[key]) != mine:
      raise ValueError(f'saved replay has {key}={int(state[key])}, this buffer {mine}')
  if sorted(k[len(prefix):] for k in state if k.startswith(prefix)) != sorted(names):
    raise ValueError(f'saved replay has other {noun} than this buffer')


class _Ring:
  """Slot bookkeeping: global ids 0, 1, 2, ... go to slot id % capacity; the last `size` ids are stored."""

  def __init__(self, capacity: int):
    self.capacity = _check_count(capacity, 'replay capacity')
    self.next_id = 0

  @property
  def size(self) -> int:
    return min(self.next_id, self.capacity)

  @property
  def oldest_id(self) -> int:
    return self.next_id - self.size

  def present(self, ids: np.ndarray) -> np.ndarray:
    ids = np.asarray(ids)
    return (ids >= self.oldest_id) & (ids < self.next_id)

  def slot(self, ids):
    return np.asarray(ids) % self.capacity

  def stored_slots(self) -> np.ndarray:
    """The slots of the stored entries, oldest first."""
    return self.slot(np.arange(self.oldest_id, self.next_id))

  def claim(self) -> Tuple[int, int]:
    """(id, slot) of a new entry; the slot's previous entry (the oldest) is dropped."""
    new_id = self.next_id
    self.next_id += 1
    return new_id, new_id % self.capacity


class TransitionReplay:
  """Transitions with frame-stack-aware storage (module docstring).

  Args:
    capacity: slots (stored frames: transitions plus one first frame per episode).
    frame_shape: one frame, e.g. (84, 84, 1) or (24, 1); stacks concatenate `num_frames` frames on the last axis.
    frame_dtype: stored as is (uint8 pixels are stored as uint8).
    num_frames: frames per stacked observation (1: no stacking).
    action_shape, action_dtype: () int32 for a discrete action, (D,) float32 for a continuous one.
    extras: {name: FieldSpec} stored with each transition (e.g. the behaviour policy's log-probability).
    num_streams: environments feeding the buffer, each with its own episode.
    seed: the sampling generator's seed.
  """

  def __init__(self, capacity: int, frame_shape: Sequence[int], frame_dtype=np.float32, num_frames: int = 1,
               action_shape: Sequence[int] = (), action_dtype=np.int32,
               extras: Optional[Mapping[str, FieldSpec]] = None, num_streams: int = 1, seed: int = 0):
    _check_count(num_frames, 'num_frames')
    _check_count(num_streams, 'num_streams')
    self._ring = _Ring(capacity)
    self.frame_shape = tuple(int(d) for d in frame_shape)
    if not self.frame_shape:
      raise ValueError('frame_shape needs at least one axis (the channel axis frames are stacked on)')
    self.num_frames = int(num_frames)
    self.num_streams = int(num_streams)
    self.action_shape = tuple(int(d) for d in action_shape)
    cap = self._ring.capacity
    # np.zeros: the pages of a large buffer are only touched (and counted) as slots fill.
    self._frames = np.zeros((cap,) + self.frame_shape, frame_dtype)
    self._episode_prev = np.full(cap, -1, np.int64)   # id of the previous frame of the same episode, -1 at a start
    self._source = np.full(cap, -1, np.int64)         # id of the frame the transition into this slot started from
    self._action = np.zeros((cap,) + self.action_shape, action_dtype)
    self._reward = np.zeros(cap, np.float32)
    self._discount = np.zeros(cap, np.float32)
    self.extras = dict(extras or {})
    self._extras = {k: np.zeros((cap,) + s.shape, s.dtype) for k, s in self.extras.items()}
    self._current = np.full(self.num_streams, -1, np.int64)   # each stream's newest frame id (-1: none yet)
    self._num_transitions = 0
    self.rng = np.random.default_rng(seed)

  # ------------------------------------------------------------------------------------------------- sizes
  @property
  def capacity(self) -> int:
    return self._ring.capacity

  def __len__(self) -> int:
    """Stored slots (frames)."""
    return self._ring.size

  @property
  def num_transitions(self) -> int:
    """Stored transitions (slots that a transition led to)."""
    return self._num_transitions

  @property
  def num_added(self) -> int:
    """Slots ever written (the next slot's id)."""
    return self._ring.next_id

  @property
  def stacked_shape(self) -> Tuple[int, ...]:
    return self.frame_shape[:-1] + (self.frame_shape[-1] * self.num_frames,)

  # --------------------------------------------------------------------------------------------------- adding
  def _check_stream(self, stream: int) -> int:
    stream = int(stream)
    if not 0 <= stream < self.num_streams:
      raise ValueError(f'stream must be in [0, {self.num_streams - 1}], got {stream}')
    return stream

  def _write(self, frame, episode_prev: int, source: int) -> int:
    frame = np.asarray(frame)
    if frame.shape != self.frame_shape:
      raise ValueError(f'expected a frame of shape {self.frame_shape}, got {frame.shape}')
    new_id, slot = self._ring.claim()
    if new_id >= self.capacity and self._source[slot] >= 0:
      self._num_transitions -= 1     # the overwritten slot held a transition
    self._frames[slot] = frame
    self._episode_prev[slot] = episode_prev
    self._source[slot] = source
    return new_id

  def begin(self, stream: int, frame) -> int:
    """Stores `frame` as the first of a new episode in `stream` (no transition led to it); returns its id."""
    stream = self._check_stream(stream)
    new_id = self._write(frame, -1, -1)
    slot = new_id % self.capacity
    self._action[slot] = 0
    self._reward[slot] = 0.0
    self._discount[slot] = 0.0
    for arr in self._extras.values():
      arr[slot] = 0
    self._current[stream] = new_id
    return new_id

  def add(self, stream: int, action, reward: float, discount: float, next_frame, next_first: bool = False,
          **extras) -> int:
    """Stores the transition (stream's current frame, action, reward, discount, next_frame); returns its id.

    `discount` is the environment's (0 at a termination); `next_first` marks a `next_frame` that begins a new
    episode (the environment was reset after a termination), which requires discount 0.
    """
    stream = self._check_stream(stream)
    source = int(self._current[stream])
    if source < 0:
      raise ValueError(f'stream {stream} has no current frame: call begin(stream, first_frame) first')
    if next_first and float(discount) != 0.0:
      raise ValueError('a transition into a new episode must have discount 0 (its next observation is never '
                       'bootstrapped from); a time-limit end keeps the last observation as next_frame instead')
    if set(extras) != set(self.extras):
      raise ValueError(f'expected extras {sorted(self.extras)}, got {sorted(extras)}')
    new_id = self._write(next_frame, -1 if next_first else source, source)
    slot = new_id % self.capacity
    self._action[slot] = action
    self._reward[slot] = reward
    self._discount[slot] = discount
    for k, v in extras.items():
      self._extras[k][slot] = v
    self._num_transitions += 1
    self._current[stream] = new_id
    return new_id

  # ------------------------------------------------------------------------------------------------- reading
  def _chain(self, ids: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """ids [B] -> ([B, num_frames] frame ids oldest first, valid [B]): the stack ending at each id."""
    ring = self._ring
    out = np.empty(ids.shape + (self.num_frames,), np.int64)
    valid = ring.present(ids)
    cur = ids.copy()
    out[:, -1] = cur
    for j in range(self.num_frames - 2, -1, -1):
      link = self._episode_prev[ring.slot(np.where(valid, cur, 0))]
      cur = np.where(link >= 0, link, cur)
      valid &= ring.present(cur)
      out[:, j] = cur
    return out, valid

  def _stack(self, chain: np.ndarray) -> np.ndarray:
    frames = self._frames[self._ring.slot(chain)]                 # [B, k, *frame_shape]
    frames = np.moveaxis(frames, 1, -2)                            # [B, *frame_shape[:-1], k, C]
    return frames.reshape(frames.shape[:-2] + (-1,))

  def sampleable(self, ids) -> np.ndarray:
    """bool per id: a stored transition whose observation stack is stored whole."""
    ids = np.asarray(ids, np.int64).reshape(-1)
    ok = self._ring.present(ids)
    source = np.where(ok, self._source[self._ring.slot(np.where(ok, ids, 0))], -1)
    ok &= source >= 0
    _, chain_ok = self._chain(np.where(ok, source, self._ring.oldest_id))
    return ok & chain_ok

  def sampleable_ids(self) -> np.ndarray:
    """Every id that `sample` can return, ascending."""
    ids = np.arange(self._ring.oldest_id, self._ring.next_id, dtype=np.int64)
    return ids[self.sampleable(ids)]

  def get(self, ids) -> Dict[str, np.ndarray]:
    """The transitions with these ids (each must be sampleable): observation / next_observation stacked
    [B, *stacked_shape], action, reward, discount, the extras, and 'id'."""
    ids = np.asarray(ids, np.int64).reshape(-1)
    if not np.all(self.sampleable(ids)):
      raise ValueError(f'ids {ids[~self.sampleable(ids)].tolist()} are not sampleable transitions')
    slots = self._ring.slot(ids)
    obs_chain, _ = self._chain(self._source[slots])
    next_chain, _ = self._chain(ids)
    out = {'observation': self._stack(obs_chain), 'next_observation': self._stack(next_chain),
           'action': self._action[slots].copy(), 'reward': self._reward[slots].copy(),
           'discount': self._discount[slots].copy(), 'id': ids}
    for k, arr in self._extras.items():
      out[k] = arr[slots].copy()
    return out

  def sample(self, batch_size: int) -> Dict[str, np.ndarray]:
    """`batch_size` transitions drawn uniformly with replacement over the sampleable ones (see `get`)."""
    _check_count(batch_size, 'batch_size')
    if self._num_transitions == 0:
      raise ValueError('the replay buffer holds no transition yet')
    ring = self._ring
    ids = np.empty(batch_size, np.int64)
    todo = np.arange(batch_size)
    for _ in range(_REJECTION_ROUNDS):
      draw = ring.oldest_id + self.rng.integers(0, ring.size, size=todo.size)
      ok = self.sampleable(draw)
      ids[todo[ok]] = draw[ok]
      todo = todo[~ok]
      if not todo.size:
        break
    if todo.size:
      candidates = self.sampleable_ids()
      if not candidates.size:
        raise ValueError('the replay buffer holds no sampleable transition yet')
      ids[todo] = candidates[self.rng.integers(0, candidates.size, size=todo.size)]
    return self.get(ids)

  # ------------------------------------------------------------------------------------------------- saving
  def state_dict(self) -> Dict[str, np.ndarray]:
    """The stored slots (oldest first), the streams' current frames and the generator's state, as arrays."""
    ring = self._ring
    slots = ring.stored_slots()
    out = {'kind': np.array('transitions'), 'capacity': np.array(self.capacity), 'next_id': np.array(ring.next_id),
           'num_frames': np.array(self.num_frames), 'current': self._current.copy(), 'rng': _json_state(self.rng),
           'frames': self._frames[slots], 'episode_prev': self._episode_prev[slots], 'source': self._source[slots],
           'action': self._action[slots], 'reward': self._reward[slots], 'discount': self._discount[slots]}
    for k, arr in self._extras.items():
      out[f'extra/{k}'] = arr[slots]
    return out

  def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
    """Restores `state_dict()` output into a buffer built with the same settings; ValueError names a mismatch."""
    _check_saved_header(state, 'transitions', 'TransitionReplay',
                        (('capacity', self.capacity), ('num_frames', self.num_frames)), 'extra/', self.extras, 'extras')
    if state['frames'].shape[1:] != self.frame_shape or np.asarray(state['current']).shape != self._current.shape:
      raise ValueError(f'saved replay holds frames {state["frames"].shape[1:]} for {len(state["current"])} streams; '
                       f'this buffer {self.frame_shape} for {self.num_streams}')
    self._ring.next_id = int(state['next_id'])
    slots = self._ring.stored_slots()
    self._frames[slots] = state['frames']
    self._episode_prev[slots] = state['episode_prev']
    self._source[slots] = state['source']
    self._action[slots] = state['action']
    self._reward[slots] = state['reward']
    self._discount[slots] = state['discount']
    for k in self._extras:
      self._extras[k][slots] = state[f'extra/{k}']
    self._current[:] = state['current']
    self._num_transitions = int(np.sum(self._source[slots] >= 0))
    _load_rng(self.rng, state['rng'])


class SequenceReplay:
  """Fixed-length segments (module docstring), e.g. ACER's: `fields` {name: FieldSpec} with a time layout each.

  `add(batch)` stores E segments given time-major ([length (+1), E, ...]; 'none' fields [E, ...]); `sample(B)`
  returns B segments in the same layout, drawn uniformly with replacement, plus 'id' [B].
  """

  def __init__(self, capacity: int, length: int, fields: Mapping[str, FieldSpec], seed: int = 0):
    _check_count(length, 'segment length')
    if not isinstance(capacity, (int, np.integer)) or capacity < length:
      raise ValueError(f'replay capacity (transitions) must be an integer >= the segment length {length}, '
                       f'got {capacity!r}')
    self.length = int(length)
    self.capacity_transitions = int(capacity)
    self._ring = _Ring(int(capacity) // self.length)
    self.fields = dict(fields)
    if not self.fields:
      raise ValueError('a SequenceReplay needs at least one field')
    self._arrays = {k: np.zeros((self._ring.capacity,) + self._time(s) + s.shape, s.dtype)
                    for k, s in self.fields.items()}
    self.rng = np.random.default_rng(seed)

  def _time(self, spec: FieldSpec) -> Tuple[int, ...]:
    return {'steps': (self.length,), 'steps_plus_one': (self.length + 1,), 'none': ()}[spec.time]

  @property
  def capacity(self) -> int:
    """Segments held at most (capacity in transitions // length)."""
    return self._ring.capacity

  def __len__(self) -> int:
    """Stored segments."""
    return self._ring.size

  @property
  def num_transitions(self) -> int:
    return self._ring.size * self.length

  @property
  def num_added(self) -> int:
    return self._ring.next_id

  def add(self, batch: Mapping[str, Any]) -> np.ndarray:
    """Stores the E segments of `batch` (every field, time-major); returns their ids [E]."""
    if set(batch) != set(self.fields):
      raise ValueError(f'expected fields {sorted(self.fields)}, got {sorted(batch)}')
    arrays = {k: np.asarray(v) for k, v in batch.items()}
    num = None
    for k, spec in self.fields.items():
      a = arrays[k]
      time = self._time(spec)
      if spec.time == 'none':
        expected_tail, env_axis = spec.shape, 0
      else:
        expected_tail, env_axis = spec.shape, 1
      if a.ndim != len(time) + 1 + len(spec.shape) or a.shape[:len(time)] != time or \
          a.shape[len(time) + 1:] != expected_tail:
        raise ValueError(f'field {k!r}: expected shape {time + ("E",) + spec.shape}, got {a.shape}')
      if num is None:
        num = a.shape[env_axis]
      elif a.shape[env_axis] != num:
        raise ValueError(f'field {k!r} holds {a.shape[env_axis]} segments, others {num}')
    ids = []
    for e in range(num):
      new_id, slot = self._ring.claim()
      for k, spec in self.fields.items():
        self._arrays[k][slot] = arrays[k][e] if spec.time == 'none' else arrays[k][:, e]
      ids.append(new_id)
    return np.array(ids, np.int64)

  def get(self, ids) -> Dict[str, np.ndarray]:
    ids = np.asarray(ids, np.int64).reshape(-1)
    if not np.all(self._ring.present(ids)):
      raise ValueError(f'segments {ids[~self._ring.present(ids)].tolist()} are not stored')
    slots = self._ring.slot(ids)
    out = {}
    for k, spec in self.fields.items():
      a = self._arrays[k][slots]
      out[k] = a if spec.time == 'none' else np.swapaxes(a, 0, 1)
    out['id'] = ids
    return out

  def sample(self, batch_size: int) -> Dict[str, np.ndarray]:
    _check_count(batch_size, 'batch_size')
    if not len(self):
      raise ValueError('the replay buffer holds no segment yet')
    ring = self._ring
    return self.get(ring.oldest_id + self.rng.integers(0, ring.size, size=batch_size))

  def state_dict(self) -> Dict[str, np.ndarray]:
    ring = self._ring
    slots = ring.stored_slots()
    out = {'kind': np.array('sequences'), 'capacity': np.array(self.capacity_transitions),
           'length': np.array(self.length), 'next_id': np.array(ring.next_id), 'rng': _json_state(self.rng)}
    for k, a in self._arrays.items():
      out[f'field/{k}'] = a[slots]
    return out

  def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
    """Restores `state_dict()` output into a buffer built with the same settings; ValueError names a mismatch
    (checked before anything is written)."""
    _check_saved_header(state, 'sequences', 'SequenceReplay',
                        (('capacity', self.capacity_transitions), ('length', self.length)), 'field/', self.fields,
                        'fields')
    for k, a in self._arrays.items():
      saved = state[f'field/{k}']
      if saved.shape[1:] != a.shape[1:]:
        raise ValueError(f'saved field {k!r} has shape {saved.shape[1:]}, this buffer {a.shape[1:]}')
    self._ring.next_id = int(state['next_id'])
    slots = self._ring.stored_slots()
    for k, a in self._arrays.items():
      a[slots] = state[f'field/{k}']
    _load_rng(self.rng, state['rng'])


def acer_fields(observation_shape: Sequence[int], num_actions: int,
                noise_shapes: Optional[Mapping[str, Sequence[int]]] = None,
                state_shapes: Optional[Mapping[str, Sequence[int]]] = None,
                observation_dtype=np.float32) -> Dict[str, FieldSpec]:
  """The fields of an ACER segment: observations and episode-start flags [length + 1]; actions, raw rewards,
  discounts, bootstrap-only flags and the behaviour probabilities mu(.|o_t) [length]; the behaviour network's
  noise per step ('noise/<name>'); and its recurrent state at the segment's start ('state/<name>')."""
  fields = {
      'observations': FieldSpec(observation_shape, observation_dtype, 'steps_plus_one'),
      'first': FieldSpec((), np.bool_, 'steps_plus_one'),
      'actions': FieldSpec((), np.int32, 'steps'),
      'rewards': FieldSpec((), np.float32, 'steps'),
      'discounts': FieldSpec((), np.float32, 'steps'),
      'bootstrap_only': FieldSpec((), np.bool_, 'steps'),
      'behaviour_probs': FieldSpec((int(num_actions),), np.float32, 'steps'),
  }
  for name, shape in (noise_shapes or {}).items():
    fields[f'noise/{name}'] = FieldSpec(shape, np.float32, 'steps')
  for name, shape in (state_shapes or {}).items():
    fields[f'state/{name}'] = FieldSpec(shape, np.float32, 'none')
  return fields


def save(path: str, state: Mapping[str, np.ndarray]) -> None:
  """Writes a `state_dict()` to `path` (.npz, no pickle), through a temporary file so a crash leaves the old one."""
  tmp = f'{path}.partial.npz'
  with open(tmp, 'wb') as f:
    np.savez(f, **state)
  os.replace(tmp, path)


def load(path: str) -> Dict[str, np.ndarray]:
  """Reads what `save` wrote (pickle disabled)."""
  with np.load(path, allow_pickle=False) as data:
    return {k: data[k] for k in data.files}
