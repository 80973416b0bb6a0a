"""Compact observations on the actor/learner wire: only the newest frame travels, a team's shared planes once.

A STEP used to carry every agent's whole frame stack: at N=5, 72x96 and 4 frames, 5 x 16 planes = 553 KB per env
step, although 3 of the 4 stacked frames were sent at earlier steps and 3 of the 4 SMM planes of a frame are drawn
the same for every agent of a team (`base.MultiAgentEnv.shared_channels`). Here the actor sends what is new, in one
of `transport`'s observation encodings, and the learner rebuilds the stack:

  actor    `FrameEncoder.encode(frame)`: the newest frame uint8 [N, H, W, C] -> `Encoded(encoding, num_frames,
           arrays)`. With shared channels it checks at every step that they are equal within each team (the
           declaration is verified, not trusted: about 10 us at N=5, 72x96); a step where they differ travels
           whole (FRAME) and is counted in `fallbacks`, so a wrong declaration costs bytes, never a wrong
           observation. Binary planes (every byte 0 or 255, as the SMM draws them) travel as bits (SHARED_BITS,
           8x fewer bytes; at 72x96 unpacking costs the learner less than receiving the bytes would).
  learner  `FrameStacker.observation(actor_id, run_id, step)` -> the stacked observation [N, H, W, k*C], by
           `envs.frame_stack.FrameStack`'s rule: k copies of the frame at the first step of a run and at every
           `done` step (the first observation of a new episode; a `truncated` step is an ordinary step), else the
           previous stack's last k-1 frames and the new one, oldest first. A step of a new run id (a restarted
           actor) starts a new stack and the old run's is dropped. An actor that steps K environments
           (`actors.ActorConfig.num_envs`) has one stack per environment, keyed (actor id, environment index).

Frames of any dtype in `transport.DTYPES` travel (Chapter 2's float32 normalised frames and state vectors): they go
as FRAME and are stacked as their bytes, so the rebuilt stack is bit for bit `FrameStack`'s. The shared-plane
encodings are for uint8 frames.

Sizes per env step (GRF 5v5, N=5, 72x96, 4 frames): FULL 553 KB, FRAME 138 KB, SHARED 55 KB, SHARED_BITS 7 KB;
`benchmarks/marl_transport.py` measures them and the CPU time per step (docs/marl_transport.md). NumPy only
(actors never import TensorFlow).
"""

import dataclasses
import functools
import math
from typing import Dict, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from rlcv_tf.runtime import transport

# Frames whose C channels make one machine word are interleaved word by word (4x to 15x faster than per byte).
_WORDS = {1: np.dtype(np.uint8), 2: np.dtype(np.uint16), 4: np.dtype(np.uint32), 8: np.dtype(np.uint64)}


class Encoded(NamedTuple):
  """One observation as it travels: `transport.encode_step(arrays, ..., encoding=..., num_frames=...)`."""
  encoding: int
  num_frames: int
  arrays: Tuple[np.ndarray, ...]


def _contiguous_run(channels: np.ndarray):
  """A slice for channel indices that form one ascending run (a cheap view), else the index array."""
  if len(channels) and np.array_equal(channels, np.arange(channels[0], channels[0] + len(channels))):
    return slice(int(channels[0]), int(channels[0]) + len(channels))
  return channels


def _binary(x: np.ndarray) -> bool:
  """Every value is 0 or 255 (255 + 1 wraps to 0 in uint8, so x + 1 <= 1 exactly then)."""
  return x.size == 0 or int(np.max(x + np.uint8(1))) <= 1


class FrameEncoder:
  """The actor's half (see the module docstring).

  `num_frames`: the k of the stack the learner rebuilds; `shared_channels`: the environment's channels (of one
  frame) that every agent of a team sees the same; `team_sizes`: agents per team on the agent axis, left first
  (`base.MultiAgentEnv.team_sizes`; empty: one team of all N). `pack_bits=False` never bit-packs.
  """

  def __init__(self, num_frames: int, shared_channels: Sequence[int] = (), team_sizes: Sequence[int] = (),
               pack_bits: bool = True):
    shared = sorted({int(c) for c in shared_channels})
    if shared and shared[0] < 0:
      raise ValueError(f'shared_channels must be non-negative channel indices, got {tuple(shared_channels)}')
    if any(int(t) < 0 for t in team_sizes):
      raise ValueError(f'team_sizes must be >= 0, got {tuple(team_sizes)}')
    self.num_frames = max(1, int(num_frames))
    self._shared = np.array(shared, np.int64)
    self._teams = tuple(int(t) for t in team_sizes if int(t) > 0)
    self._pack = pack_bits
    self._layout: Optional[Tuple] = None   # (C, N) -> derived indices, built at the first frame
    self.fallbacks = 0   # steps sent whole because their "shared" channels differed within a team

  def _derive(self, c: int, n: int):
    if self._layout is not None and self._layout[0] == (c, n):
      return self._layout
    if len(self._shared) and self._shared[-1] >= min(c, 256):
      raise ValueError(f'shared_channels {tuple(self._shared.tolist())} name channels a {c}-channel frame lacks '
                       '(or beyond the 256 a STEP can name)')
    teams = self._teams or (n,)
    if sum(teams) != n:
      raise ValueError(f'team_sizes {teams} do not add up to the {n} agents of the frame')
    ends = np.cumsum(teams)
    starts = ends - np.asarray(teams)
    own = np.array([i for i in range(c) if i not in set(self._shared.tolist())], np.int64)
    word = _WORDS.get(c)
    mask = None
    if word is not None:
      keep = np.zeros(c, np.uint8)
      keep[self._shared] = 255
      mask = keep.view(word)[0]   # the shared channels' bytes of one pixel word
    self._layout = ((c, n), np.asarray(teams, np.int32), starts, ends, _contiguous_run(self._shared),
                    _contiguous_run(own), word, mask)
    return self._layout

  def _shared_equal(self, frame: np.ndarray, starts, ends, word, mask) -> bool:
    for a, b in zip(starts, ends):
      if b - a < 2:
        continue
      if word is not None:
        w = frame[a:b].view(word)[..., 0] & mask     # one word per pixel, own channels masked out
        if not np.array_equal(w[1:], np.broadcast_to(w[0], w[1:].shape)):
          return False
      elif np.any((frame[a + 1:b] != frame[a])[..., self._shared]):
        return False
    return True

  def encode(self, frame: np.ndarray) -> Encoded:
    """The newest frame [N, ..., C] (an unstacked observation) -> what travels. Frames of any dtype in
    `transport.DTYPES` travel whole (FRAME); the shared-plane encodings are for uint8 [N, H, W, C] frames."""
    frame = np.ascontiguousarray(frame)
    if frame.ndim < 2:
      raise ValueError(f'frames travel as [N, ..., C], got shape {frame.shape}')
    if not len(self._shared):
      return Encoded(transport.FRAME, self.num_frames, (frame,))
    if frame.dtype != np.uint8:
      raise ValueError(f'shared channels are sent once per team for uint8 frames only, got {frame.dtype}')
    _, teams, starts, ends, shared, own, word, mask = self._derive(frame.shape[-1], frame.shape[0])
    if not self._shared_equal(frame, starts, ends, word, mask):
      self.fallbacks += 1
      return Encoded(transport.FRAME, self.num_frames, (frame,))
    planes = np.ascontiguousarray(frame[starts][..., shared])       # [G, H, W, S]
    mine = np.ascontiguousarray(frame[..., own])                     # [N, H, W, C-S]
    channels = self._shared.astype(np.uint8)
    if self._pack and _binary(planes) and _binary(mine):
      return Encoded(transport.SHARED_BITS, self.num_frames,
                     (teams, channels, np.asarray(frame.shape, np.int32), np.packbits(planes), np.packbits(mine)))
    return Encoded(transport.SHARED, self.num_frames, (teams, channels, planes, mine))


# ------------------------------------------------------------------------------------------------ the learner
def _fail(what: str):
  raise transport.ProtocolError(f'STEP frame: {what}')


def _check(arrays, dtypes, what: str):
  if len(arrays) != len(dtypes):
    _fail(f'{what} observation has {len(arrays)} arrays, expected {len(dtypes)}')
  for a, dt in zip(arrays, dtypes):
    if a.dtype != dt:
      _fail(f'{what} observation array of dtype {a.dtype}, expected {np.dtype(dt)}')


def _unpack(bits: np.ndarray, shape: Tuple[int, ...], what: str) -> np.ndarray:
  size = math.prod(shape)
  if bits.ndim != 1 or len(bits) != (size + 7) // 8:
    _fail(f'{what} holds {bits.size} bytes, {(size + 7) // 8} expected for planes {shape}')
  out = np.unpackbits(bits, count=size)
  np.multiply(out, np.uint8(255), out=out)
  return out.reshape(shape)


def newest_frame(step: transport.Step) -> np.ndarray:
  """The newest frame uint8 [N, H, W, C] of a FRAME, SHARED or SHARED_BITS step; `transport.ProtocolError` if its
  arrays do not describe one."""
  n = len(step.reward)
  a = step.arrays
  if step.encoding == transport.FRAME:
    if len(a) != 1:
      _fail(f'a FRAME observation has {len(a)} arrays, expected 1')
    if a[0].ndim < 2 or a[0].shape[0] != n:
      _fail(f'a FRAME of shape {a[0].shape} for {n} agents')
    return a[0]
  if step.encoding == transport.SHARED:
    _check(a, (np.int32, np.uint8, np.uint8, np.uint8), 'a SHARED')
    teams, channels, planes, mine = a
    hw = mine.shape[1:-1]
    if mine.ndim < 2 or planes.shape[1:-1] != hw:
      _fail(f'SHARED planes {planes.shape} and own planes {mine.shape} of different sizes')
    c = planes.shape[-1] + mine.shape[-1]
  elif step.encoding == transport.SHARED_BITS:
    _check(a, (np.int32, np.uint8, np.int32, np.uint8, np.uint8), 'a SHARED_BITS')
    teams, channels, shape, shared_bits, own_bits = a
    if shape.ndim != 1 or teams.ndim != 1 or channels.ndim != 1:
      _fail('a SHARED_BITS observation of frame shape, teams or channels that are not lists')
    shape = tuple(shape.tolist())
    if len(shape) < 2 or min(shape) < 1 or shape[-1] < len(channels):
      _fail(f'a SHARED_BITS frame shape {list(shape)} for {len(channels)} shared channels')
    hw, c = shape[1:-1], shape[-1]
    planes = _unpack(shared_bits, (len(teams),) + hw + (len(channels),), 'SHARED_BITS shared planes')
    mine = _unpack(own_bits, (shape[0],) + hw + (c - len(channels),), 'SHARED_BITS own planes')
  else:
    _fail(f'no frame in a {transport.ENCODINGS.get(step.encoding, step.encoding)} observation')
  # A few small arrays: checked as Python lists, cheaper than NumPy calls at this size.
  if teams.ndim != 1 or channels.ndim != 1:
    _fail(f'teams {teams.shape} and shared channels {channels.shape} are not lists')
  team_sizes, shared_list = teams.tolist(), channels.tolist()
  if min(team_sizes, default=0) < 1 or sum(team_sizes) != n or \
      planes.shape[0] != len(team_sizes) or mine.shape[0] != n:
    _fail(f'teams {team_sizes}, shared planes {planes.shape} and own planes {mine.shape} for {n} agents')
  if len(shared_list) != planes.shape[-1] or \
      any(y <= x for x, y in zip(shared_list, shared_list[1:])) or (shared_list and shared_list[-1] >= c):
    _fail(f'shared channels {shared_list} of a {c}-channel frame')
  shared, own = _channel_split(bytes(shared_list), c)
  word = _WORDS.get(c)
  if word is not None:
    # One machine word per pixel: the agents' own channels in a zeroed frame, then each team's planes OR-ed in.
    frame = np.zeros((n,) + hw + (c,), np.uint8)
    team = np.zeros((len(teams),) + hw + (c,), np.uint8)
    team[..., shared] = planes
    if len(own):
      frame[..., own] = mine
    words, team_words = frame.view(word), team.view(word)
    start = 0
    for g, size in enumerate(team_sizes):
      np.bitwise_or(words[start:start + size], team_words[g], out=words[start:start + size])
      start += size
    return frame
  frame = np.empty((n,) + hw + (c,), np.uint8)
  start = 0
  for g, size in enumerate(team_sizes):
    frame[start:start + size, ..., shared] = planes[g]
    start += size
  if len(own):
    frame[..., own] = mine
  return frame


@functools.lru_cache(maxsize=64)
def _channel_split(shared: bytes, c: int) -> Tuple[np.ndarray, np.ndarray]:
  """(shared, own) channel index arrays of a c-channel frame, for the bytes of the shared channels' indices."""
  shared_set = set(shared)
  return np.array(sorted(shared_set), np.int64), np.array([i for i in range(c) if i not in shared_set], np.int64)


def _as_bytes(a: np.ndarray) -> np.ndarray:
  """A frame [..., C] of any dtype as its bytes [..., C * itemsize] (a view of a C-contiguous copy)."""
  return np.ascontiguousarray(a).view(np.uint8)


def stack_frames(frames: Sequence[np.ndarray]) -> np.ndarray:
  """k frames [..., C], oldest first -> a new array [..., k*C]: `np.concatenate(frames, axis=-1)`, faster.
  Frames of another dtype than uint8 are stacked as their bytes (each pixel's C values are C * itemsize
  consecutive bytes, so stacking the bytes stacks the values)."""
  first = frames[0]
  if first.dtype != np.uint8:
    return stack_frames([_as_bytes(f) for f in frames]).view(first.dtype)
  c = first.shape[-1]
  out = np.empty(first.shape[:-1] + (len(frames) * c,), np.uint8)
  word = _WORDS.get(c)
  if word is not None:
    words = out.view(word)   # [..., k]: one word per frame and pixel
    for f, frame in enumerate(frames):
      words[..., f] = np.ascontiguousarray(frame).view(word)[..., 0]
  else:
    for f, frame in enumerate(frames):
      out[..., np.arange(f * c, (f + 1) * c)] = frame   # an index array: numpy's fast path for strided writes
  return out


def shift_in(stack: np.ndarray, frame: np.ndarray) -> np.ndarray:
  """A new stack [..., k*C]: `stack`'s last k-1 frames and `frame` [..., C], as `FrameStack.step` shifts them.

  One flat copy moves every pixel's frames down by one (each pixel's newest slot briefly holds the next pixel's
  oldest frame) and the new frame is written over those slots. The copy's destination is placed at the source's
  offset within a 4 KiB page: a destination a few bytes above its source modulo 4 KiB makes the CPU stall every
  load on the stores just before it ("4K aliasing"), 3x slower than the same copy placed this way."""
  if stack.dtype != np.uint8:   # shifted as bytes, as `stack_frames` stacks them
    return shift_in(_as_bytes(stack), _as_bytes(frame.astype(stack.dtype, copy=False))).view(stack.dtype)
  if not stack.flags.c_contiguous:
    stack = np.ascontiguousarray(stack)
  c = frame.shape[-1]
  raw = np.empty(stack.nbytes + 4096, np.uint8)
  offset = (stack.ctypes.data - raw.ctypes.data) % 4096
  out = raw[offset:offset + stack.nbytes].reshape(stack.shape)
  out.reshape(-1)[:-c] = stack.reshape(-1)[c:]
  word = _WORDS.get(c)
  if word is not None:
    out.view(word)[..., -1] = np.ascontiguousarray(frame).view(word)[..., 0]
  else:
    out[..., np.arange(stack.shape[-1] - c, stack.shape[-1])] = frame
  return out


@dataclasses.dataclass
class _Stack:
  run_id: int
  num_frames: int                # 0: a run of FULL observations
  frame_shape: Tuple[int, ...]   # with the frames' dtype string last
  last: Optional[np.ndarray]     # the last observation returned


class FrameStacker:
  """The learner's half: one frame stack per actor, for its current run (see the module docstring).

  Every observation it returns is an array of its own (with k = 1, the frame itself) that it only ever reads
  again, so callers may keep them."""

  def __init__(self):
    self._stacks: Dict[int, _Stack] = {}

  def observation(self, actor_id, run_id: int, step: transport.Step) -> np.ndarray:
    """Actor `actor_id`'s (run `run_id`) observation for `step`; `transport.ProtocolError` if the step does not
    fit the run's earlier steps (another frame shape, dtype or number of frames, or a switch to FULL). `actor_id` is
    any hashable key: the actor id, or (actor id, environment index) for an actor of several environments."""
    stack = self._stacks.get(actor_id)
    if stack is not None and stack.run_id != run_id:
      stack = None   # a restarted actor: its old run's frames are of no use
      del self._stacks[actor_id]
    if step.encoding == transport.FULL:   # the whole observation: nothing to rebuild
      if stack is not None and stack.num_frames:
        _fail(f'actor {actor_id} switched to FULL observations within a run')
      self._stacks[actor_id] = _Stack(run_id, 0, (), None)
      return step.arrays[0]
    frame = newest_frame(step)
    k = step.num_frames
    shape = frame.shape + (frame.dtype.str,)
    if stack is not None and (stack.num_frames, stack.frame_shape) != (k, shape):
      _fail(f'actor {actor_id} changed its frames from {stack.num_frames} x {stack.frame_shape} to {k} x '
            f'{shape} within a run')
    if k == 1:
      out = frame
    elif stack is None or step.done:
      out = stack_frames([frame] * k)   # a new run or episode: k copies of its first frame
    else:
      out = shift_in(stack.last, frame)
    self._stacks[actor_id] = _Stack(run_id, k, shape, out)
    return out

  def forget(self, actor_id) -> None:
    """Drops actor `actor_id`'s stack (its run is over)."""
    self._stacks.pop(actor_id, None)
