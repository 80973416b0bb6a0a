"""The actor/learner wire protocol: length-prefixed binary frames over a stream socket, no pickle.

The same bytes travel over AF_UNIX (local actors, `actors.LocalActorPool`) and TCP (actors on other machines
dialling the learner): everything the learner needs is in the frames, nothing in the socket family. NumPy only,
no TensorFlow. Every integer and float is little-endian.

A frame is `length u32 | type u8 | payload`, where `length` counts the type byte and the payload. Readers refuse a
frame longer than their limit as soon as its header arrives (`FrameTooLarge`), so a peer cannot make the learner
allocate or wait for an arbitrary amount of data.

  type     direction        payload
  HELLO    actor -> learner magic b'RLCV' | version u16 | key length u16 | key | actor id u32 | run id u32
  WELCOME  learner -> actor (empty): the hello was accepted; the actor now builds its environment
  STEP     actor -> learner flags u8 (1 done, 2 truncated, 4 has episode) | discount f64 | observation |
                            reward array | agent_positions array | [episode JSON length u32 | UTF-8 JSON]
  STEPS    actor -> learner the steps of an actor that steps K > 1 environments (`actors.ActorConfig.num_envs`):
                            K u16 | K x (STEP payload length u32 | STEP payload), environment order
  ACTIONS  learner -> actor one array (int32 or float32): the joint action [N, ...] of a one-environment actor;
                            [K, N, ...], one joint action per environment in order, for a K-environment actor
  ERROR    both ways        actor id i32 (-1: the learner) | UTF-8 text
  CLOSE    learner -> actor (empty): close the environment and exit 0

A STEP's observation is `encoding u8 | num_frames u8 | array count u8 | arrays`, in one of the `ENCODINGS`:

  FULL         the observation array [N, ...] exactly as the learner uses it (num_frames 1), of any dtype in
               `DTYPES` (uint8 pixels in Chapter 4, float32 normalised frames and state vectors in Chapter 2);
  FRAME        the newest frame [N, ..., C] (any dtype in `DTYPES`) of a stack of num_frames frames that the learner
               rebuilds;
  SHARED       the newest frame with the channels a team shares sent once per team: agents per team int32 [G],
               shared channels uint8 [S], shared planes uint8 [G, H, W, S], every agent's own channels
               uint8 [N, H, W, C-S];
  SHARED_BITS  SHARED with binary planes (0 or 255) bit-packed: agents per team, shared channels, frame shape
               int32 [4] (N, H, W, C), then the shared and the own planes each as `np.packbits` of their C-order
               bytes.

`compact.py` writes and reads them (the learner rebuilds the stacks bit for bit as `envs.frame_stack` stacks
them); this module only frames the arrays.

An array is `dtype code u8 | ndim u8 (<= 32) | ndim x u32 dims | raw C-order bytes` with the codes in `DTYPES`
(booleans, signed and unsigned integers of 8 to 64 bits, floats of 16 to 64 bits, little-endian). The
episode statistics (`env_runner.StepOutput.episode`) travel as JSON with arrays as lists; 'return' and
'opponent_return' come back as float32 arrays, every other key as its JSON value.

Frozen across protocol versions, so that peers of different versions can still tell each other so: the frame
header, the HELLO prefix (magic, version) and the ERROR frame. A learner answers a HELLO of another version with an
ERROR and closes; the actor prints it and exits with `EXIT_REFUSED`.
"""

import json
import math
import socket
import struct
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import numpy as np

MAGIC = b'RLCV'
# 3: observations of any dtype in `DTYPES`, STEPS frames (K environments per actor); 2: a STEP carries the
# observation in one of the `ENCODINGS`; 1: the whole stacked array.
VERSION = 3

HELLO, WELCOME, STEP, ACTIONS, ERROR, CLOSE, STEPS = 1, 2, 3, 4, 5, 6, 7
FRAME_NAMES = {HELLO: 'HELLO', WELCOME: 'WELCOME', STEP: 'STEP', ACTIONS: 'ACTIONS', ERROR: 'ERROR', CLOSE: 'CLOSE',
               STEPS: 'STEPS'}

# code -> dtype. Codes 1-3 (uint8, int32, float32) are those of versions 1 and 2.
DTYPES = {1: np.dtype('<u1'), 2: np.dtype('<i4'), 3: np.dtype('<f4'), 4: np.dtype('<i1'), 5: np.dtype('<i2'),
          6: np.dtype('<u2'), 7: np.dtype('<i8'), 8: np.dtype('<u4'), 9: np.dtype('<u8'), 10: np.dtype('<f2'),
          11: np.dtype('<f8'), 12: np.dtype('?')}
MAX_STEPS_PER_FRAME = 0xFFFF   # environments of one actor (the count of a STEPS frame is a u16)
_CODES = {dt: code for code, dt in DTYPES.items()}
FLOAT_EPISODE_KEYS = ('return', 'opponent_return')
MAX_NDIM = 32

FULL, FRAME, SHARED, SHARED_BITS = 0, 1, 2, 3
ENCODINGS = {FULL: 'FULL', FRAME: 'FRAME', SHARED: 'SHARED', SHARED_BITS: 'SHARED_BITS'}
MAX_OBSERVATION_ARRAYS = 8

MAX_FRAME_BYTES = 64 << 20     # default limit of a frame after the handshake (a 72x96x16 stack of 11 agents: 1.2 MB)
MAX_HELLO_BYTES = 4096         # limit of the first frame of a connection, before the peer is authenticated
LEARNER_ID = -1                # actor id of ERROR frames the learner sends
EXIT_REFUSED = 3               # exit code of an actor the learner refused (another version, wrong key)
KEY_ENV = 'RLCV_ACTOR_KEY'     # environment variable that hands an actor process the per-run key (hex)

_HEADER = struct.Struct('<IB')
_HELLO_PREFIX = struct.Struct('<4sH')
_HELLO_IDS = struct.Struct('<II')
_STEP_HEAD = struct.Struct('<Bd')
_OBSERVATION_HEAD = struct.Struct('<BBB')
_U16 = struct.Struct('<H')
_U32 = struct.Struct('<I')
_I32 = struct.Struct('<i')
_DONE, _TRUNCATED, _HAS_EPISODE = 1, 2, 4


class ProtocolError(ValueError):
  """Bytes that are not a valid frame of this protocol (malformed, truncated or too large)."""


class FrameTooLarge(ProtocolError):
  pass


class VersionMismatch(ProtocolError):
  """A HELLO of another protocol version (or another program altogether, if the magic differs)."""

  def __init__(self, message: str, version: Optional[int]):
    super().__init__(message)
    self.version = version


class Hello(NamedTuple):
  version: int
  key: bytes
  actor_id: int
  run_id: int


class Step(NamedTuple):
  """The fields of `actors.EnvStep` that travel (the actor and run id belong to the connection); the observation
  as it travelled: `encoding` (one of `ENCODINGS`), the `num_frames` of the stack and the encoding's `arrays`
  (`compact.FrameStacker` turns them into the observation)."""
  arrays: Tuple[np.ndarray, ...]
  reward: np.ndarray             # float32 [N]
  done: bool
  agent_positions: np.ndarray    # int32 [N, 2]
  episode: Optional[Dict[str, Any]]
  discount: float
  truncated: bool
  encoding: int = FULL
  num_frames: int = 1

  @property
  def observation(self) -> np.ndarray:
    """The observation of a FULL step (the others need `compact.FrameStacker` and the actor's earlier steps)."""
    if self.encoding != FULL:
      raise ValueError(f'a {ENCODINGS[self.encoding]} step holds the newest frame only; rebuild it with '
                       'compact.FrameStacker')
    return self.arrays[0]


# ------------------------------------------------------------------------------------------------------ encoding
def frame(frame_type: int, *parts) -> bytes:
  """One whole frame: header then payload parts (bytes-like, each of itemsize 1)."""
  size = 1 + sum(len(p) for p in parts)
  return b''.join((_HEADER.pack(size, frame_type),) + parts)


def _array(a: np.ndarray) -> Tuple[bytes, memoryview]:
  """(header, data) of one array; the data is a view of `a` itself (copied once, when the frame is joined)."""
  a = np.asarray(a)
  code = _CODES.get(a.dtype.newbyteorder('<'))
  if code is None:
    raise ValueError(f'dtype {a.dtype} cannot travel; valid: {", ".join(str(d) for d in DTYPES.values())}')
  if a.ndim > MAX_NDIM:
    raise ValueError(f'{a.ndim} dimensions cannot travel (at most {MAX_NDIM})')
  head = struct.pack(f'<BB{a.ndim}I', code, a.ndim, *a.shape)
  data = np.ascontiguousarray(a, DTYPES[code]).reshape(-1).view(np.uint8)
  return head, memoryview(data)


def _json_value(o):
  if isinstance(o, np.ndarray):
    return o.tolist()
  if isinstance(o, np.generic):
    return o.item()
  raise TypeError(f'episode statistic {o!r} ({type(o).__name__}) cannot travel as JSON')


def encode_hello(key: bytes, actor_id: int, run_id: int, version: int = VERSION) -> bytes:
  return frame(HELLO, _HELLO_PREFIX.pack(MAGIC, version), _U16.pack(len(key)), bytes(key),
               _HELLO_IDS.pack(actor_id, run_id))


def encode_welcome() -> bytes:
  return frame(WELCOME)


def encode_step(observation, reward, done: bool, agent_positions, episode: Optional[Dict[str, Any]] = None,
                discount: float = 1.0, truncated: bool = False, encoding: int = FULL, num_frames: int = 1) -> bytes:
  """`observation`: the array for `encoding` FULL, else the encoding's arrays (`compact.FrameEncoder`)."""
  return frame(STEP, *_step_parts(observation, reward, done, agent_positions, episode, discount, truncated, encoding,
                                  num_frames))


def encode_steps(steps: List[Tuple[Any, ...]]) -> bytes:
  """One STEPS frame for a K-environment actor: `steps[k]` holds `encode_step`'s arguments for environment k, in
  its order (observation, reward, done, agent_positions, episode, discount, truncated, encoding, num_frames)."""
  if not 1 <= len(steps) <= MAX_STEPS_PER_FRAME:
    raise ValueError(f'a STEPS frame holds 1 to {MAX_STEPS_PER_FRAME} steps, got {len(steps)}')
  parts = [_U16.pack(len(steps))]
  for args in steps:
    payload = b''.join(_step_parts(*args))
    parts += [_U32.pack(len(payload)), payload]
  return frame(STEPS, *parts)


def _step_parts(observation, reward, done: bool, agent_positions, episode: Optional[Dict[str, Any]] = None,
                discount: float = 1.0, truncated: bool = False, encoding: int = FULL, num_frames: int = 1) -> List:
  if encoding not in ENCODINGS:
    raise ValueError(f'encoding: unknown value {encoding!r}; valid values: {sorted(ENCODINGS)}')
  arrays = [np.asarray(observation)] if encoding == FULL else [np.asarray(a) for a in observation]
  if encoding == FULL and num_frames != 1:
    raise ValueError(f'a FULL observation is the whole stack: num_frames must be 1, got {num_frames}')
  if not 1 <= num_frames <= 255 or not 1 <= len(arrays) <= MAX_OBSERVATION_ARRAYS:
    raise ValueError(f'num_frames {num_frames} or {len(arrays)} observation arrays cannot travel')
  flags = (_DONE if done else 0) | (_TRUNCATED if truncated else 0) | (_HAS_EPISODE if episode is not None else 0)
  parts = [_STEP_HEAD.pack(flags, float(discount)), _OBSERVATION_HEAD.pack(encoding, num_frames, len(arrays))]
  for a in arrays:
    parts += _array(a)
  parts += [*_array(np.asarray(reward, np.float32)), *_array(np.asarray(agent_positions, np.int32))]
  if episode is not None:
    text = json.dumps(episode, default=_json_value).encode()
    parts += [_U32.pack(len(text)), text]
  return parts


def encode_actions(actions) -> bytes:
  """int32 (discrete, Chapter 4) or float32 (continuous) actions; other integer / float dtypes are converted."""
  a = np.asarray(actions)
  if np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_:
    a = a.astype(np.int32)
  elif np.issubdtype(a.dtype, np.floating):
    a = a.astype(np.float32)
  else:
    raise ValueError(f'actions must be integers or floats, got dtype {a.dtype}')
  return frame(ACTIONS, *_array(a))


def encode_error(actor_id: int, text: str) -> bytes:
  return frame(ERROR, _I32.pack(actor_id), text.encode('utf-8', 'replace'))


def encode_close() -> bytes:
  return frame(CLOSE)


# ------------------------------------------------------------------------------------------------------ decoding
class _Cursor:
  """Reads a payload front to back; running past its end is a `ProtocolError` (a truncated frame)."""

  def __init__(self, payload: bytes, what: str):
    self.buf = memoryview(payload)
    self.pos = 0
    self.what = what

  def take(self, n: int) -> memoryview:
    if n < 0 or self.pos + n > len(self.buf):
      raise ProtocolError(f'{self.what} frame is truncated ({len(self.buf)} bytes)')
    out = self.buf[self.pos:self.pos + n]
    self.pos += n
    return out

  def unpack(self, st: struct.Struct):
    return st.unpack(self.take(st.size))

  def array(self, name: str) -> np.ndarray:
    code, ndim = struct.unpack('<BB', self.take(2))
    if code not in DTYPES:
      raise ProtocolError(f'{self.what} frame: {name} has unknown dtype code {code}')
    if ndim > MAX_NDIM:
      raise ProtocolError(f'{self.what} frame: {name} has {ndim} dimensions, more than {MAX_NDIM}')
    shape = struct.unpack(f'<{ndim}I', self.take(4 * ndim))
    dtype = DTYPES[code]
    count = math.prod(shape)
    data = self.take(count * dtype.itemsize)
    try:
      if dtype == np.bool_:   # any byte other than 0 or 1 would be an invalid NumPy bool: normalise
        array = np.frombuffer(data, np.uint8).reshape(shape).astype(bool)
      else:
        array = np.frombuffer(data, dtype).reshape(shape)
    except ValueError:   # an empty array whose other dimensions are too large for NumPy
      raise ProtocolError(f'{self.what} frame: {name} has an impossible shape {shape}') from None
    return array if dtype.isnative else array.astype(dtype.newbyteorder('='))

  def end(self):
    if self.pos != len(self.buf):
      raise ProtocolError(f'{self.what} frame has {len(self.buf) - self.pos} bytes too many')


def decode_hello(payload: bytes) -> Hello:
  """Raises `VersionMismatch` for another magic or version (before reading the rest), `ProtocolError` else."""
  c = _Cursor(payload, 'HELLO')
  magic, version = c.unpack(_HELLO_PREFIX)
  if magic != MAGIC:
    raise VersionMismatch(f'not an rlcv_tf actor (magic {bytes(magic)!r})', None)
  if version != VERSION:
    raise VersionMismatch(f'actor protocol version {version}, but this learner speaks version {VERSION}', version)
  (key_len,) = c.unpack(_U16)
  key = bytes(c.take(key_len))
  actor_id, run_id = c.unpack(_HELLO_IDS)
  c.end()
  return Hello(version, key, actor_id, run_id)


def decode_step(payload: bytes) -> Step:
  c = _Cursor(payload, 'STEP')
  flags, discount = c.unpack(_STEP_HEAD)
  if flags & ~(_DONE | _TRUNCATED | _HAS_EPISODE):
    raise ProtocolError(f'STEP frame has unknown flags {flags:#x}')
  encoding, num_frames, count = c.unpack(_OBSERVATION_HEAD)
  if encoding not in ENCODINGS:
    raise ProtocolError(f'STEP frame: unknown observation encoding {encoding}')
  if num_frames < 1 or (encoding == FULL and (num_frames, count) != (1, 1)) or \
      not 1 <= count <= MAX_OBSERVATION_ARRAYS:
    raise ProtocolError(f'STEP frame: a {ENCODINGS[encoding]} observation of {num_frames} frames in {count} '
                        'arrays')
  arrays = tuple(c.array('observation') for _ in range(count))
  reward = c.array('reward')
  positions = c.array('agent_positions')
  obs = arrays[0]
  if reward.dtype != np.float32 or positions.dtype != np.int32:
    raise ProtocolError(f'STEP frame: reward/agent_positions dtypes {reward.dtype}/{positions.dtype}, expected '
                        'float32/int32')
  n = reward.shape[0] if reward.ndim == 1 else -1
  if n < 0 or (encoding == FULL and (obs.ndim < 1 or obs.shape[0] != n)) or positions.shape != (n, 2):
    raise ProtocolError(f'STEP frame: shapes observation {obs.shape}, reward {reward.shape}, agent_positions '
                        f'{positions.shape} do not describe the same N agents')
  episode = None
  if flags & _HAS_EPISODE:
    (size,) = c.unpack(_U32)
    try:
      episode = json.loads(bytes(c.take(size)).decode('utf-8'))
    except (UnicodeDecodeError, ValueError) as e:
      raise ProtocolError(f'STEP frame: episode statistics are not JSON ({e})') from None
    if not isinstance(episode, dict):
      raise ProtocolError('STEP frame: episode statistics are not a JSON object')
    for k in FLOAT_EPISODE_KEYS:
      if k in episode:
        try:
          episode[k] = np.asarray(episode[k], np.float32)
        except (TypeError, ValueError):
          raise ProtocolError(f'STEP frame: episode {k!r} is not a list of numbers') from None
  c.end()
  return Step(arrays, reward, bool(flags & _DONE), positions, episode, discount, bool(flags & _TRUNCATED), encoding,
              num_frames)


def decode_steps(payload: bytes) -> List[Step]:
  """The K steps of a STEPS frame, in environment order (each checked as `decode_step` checks a STEP)."""
  c = _Cursor(payload, 'STEPS')
  (count,) = c.unpack(_U16)
  if count < 1:
    raise ProtocolError('STEPS frame holds no step')
  steps = []
  for _ in range(count):
    (size,) = c.unpack(_U32)
    steps.append(decode_step(c.take(size)))
  c.end()
  return steps


def decode_actions(payload: bytes) -> np.ndarray:
  c = _Cursor(payload, 'ACTIONS')
  a = c.array('actions')
  c.end()
  if a.dtype not in (np.int32, np.float32):
    raise ProtocolError(f'ACTIONS frame: dtype {a.dtype}, expected int32 or float32')
  return a


def decode_error(payload: bytes) -> Tuple[int, str]:
  c = _Cursor(payload, 'ERROR')
  (actor_id,) = c.unpack(_I32)
  return actor_id, bytes(c.take(len(c.buf) - c.pos)).decode('utf-8', 'replace')


class FrameDecoder:
  """Splits a byte stream into (type, payload) frames, whatever pieces it arrives in (non-blocking readers).

  `read_from` receives straight into each frame's own buffer (the payload comes back as a bytearray that decoded
  arrays share, no further copy); `feed` takes bytes from elsewhere. Both raise `FrameTooLarge` as soon as a header
  announces more than `max_bytes`, `ProtocolError` for an empty frame. `pending` is how many bytes of an incomplete
  frame it holds (a connection closed then was truncated)."""

  def __init__(self, max_bytes: int = MAX_FRAME_BYTES):
    self.max_bytes = max_bytes
    self._head = bytearray(_HEADER.size)
    self._head_n = 0
    self._type = 0
    self._body: Optional[bytearray] = None
    self._body_n = 0
    self.received = 0   # bytes taken in so far

  @property
  def pending(self) -> int:
    return self._head_n + self._body_n

  def _header_done(self, frames):
    length, self._type = _HEADER.unpack(self._head)
    if length < 1:
      raise ProtocolError('empty frame')
    if length > self.max_bytes:
      raise FrameTooLarge(f'a frame of {length:,} bytes announced, more than the limit of {self.max_bytes:,}')
    self._body, self._body_n = bytearray(length - 1), 0
    self._body_done_if_full(frames)

  def _body_done_if_full(self, frames):
    if self._body_n == len(self._body):
      frames.append((self._type, self._body))
      self._body, self._body_n, self._head_n = None, 0, 0

  def feed(self, data) -> List[Tuple[int, bytearray]]:
    view = memoryview(data).cast('B')
    self.received += len(view)
    frames = []
    while len(view):
      if self._body is None:
        n = min(len(view), _HEADER.size - self._head_n)
        self._head[self._head_n:self._head_n + n] = view[:n]
        self._head_n += n
        view = view[n:]
        if self._head_n == _HEADER.size:
          self._header_done(frames)
      else:
        n = min(len(view), len(self._body) - self._body_n)
        self._body[self._body_n:self._body_n + n] = view[:n]
        self._body_n += n
        view = view[n:]
        self._body_done_if_full(frames)
    return frames

  def read_from(self, sock: socket.socket, limit: int = 8 << 20) -> Tuple[List[Tuple[int, bytearray]], bool]:
    """(frames, closed): what a non-blocking socket has ready, up to about `limit` bytes, and whether the peer has
    closed it (or reset it)."""
    frames = []
    total = 0
    while total < limit:
      try:
        if self._body is None:
          n = sock.recv_into(memoryview(self._head)[self._head_n:])
        else:
          n = sock.recv_into(memoryview(self._body)[self._body_n:])
      except (BlockingIOError, InterruptedError):
        return frames, False
      except OSError:
        return frames, True
      if n == 0:
        return frames, True
      total += n
      self.received += n
      if self._body is None:
        self._head_n += n
        if self._head_n == _HEADER.size:
          self._header_done(frames)
      else:
        self._body_n += n
        self._body_done_if_full(frames)
    return frames, False


# ------------------------------------------------------------------------------------------------------ sockets
def format_address(family: str, address) -> str:
  """'unix:/path/learner.sock' or 'tcp:HOST:PORT': how an address travels on an actor's command line."""
  if family == 'unix':
    return f'unix:{address}'
  host, port = address[:2]
  return f'tcp:[{host}]:{port}' if ':' in host else f'tcp:{host}:{port}'


def parse_address(text: str) -> Tuple[str, Any]:
  """Inverse of `format_address`: ('unix', path) or ('tcp', (host, port)); ValueError naming the problem."""
  if text.startswith('unix:') and len(text) > 5:
    return 'unix', text[5:]
  if text.startswith('tcp:'):
    host, _, port = text[4:].rpartition(':')
    host = host[1:-1] if host.startswith('[') and host.endswith(']') else host
    if host and port.isdigit():
      return 'tcp', (host, int(port))
  raise ValueError(f'{text!r}: expected unix:PATH or tcp:HOST:PORT')


def listen(family: str = 'unix', address=None, backlog: int = 128) -> socket.socket:
  """A listening socket. family 'unix': `address` is a path; 'tcp': (host, port), port 0 picks a free one (the
  default host is 127.0.0.1: a learner is only reachable from other machines when asked to be)."""
  if family == 'unix':
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(address)
  elif family == 'tcp':
    host, port = address if address is not None else ('127.0.0.1', 0)
    info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(info[0], socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(info[4])
  else:
    raise ValueError(f'family: unknown value {family!r}; valid values: unix, tcp')
  sock.listen(backlog)
  return sock


def tune(sock: socket.socket):
  """Small frames (actions) go out at once on TCP; a no-op on AF_UNIX."""
  if sock.family in (socket.AF_INET, socket.AF_INET6):
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def connect(address: str, timeout: float = 30.0) -> socket.socket:
  """A blocking socket connected to the learner at `address` ('unix:PATH' or 'tcp:HOST:PORT')."""
  family, addr = parse_address(address)
  if family == 'unix':
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(addr)
  else:
    sock = socket.create_connection(addr, timeout=timeout)
  sock.settimeout(None)
  tune(sock)
  return sock


def _read_exact(sock: socket.socket, n: int) -> bytes:
  chunks, got = [], 0
  while got < n:
    chunk = sock.recv(min(n - got, 1 << 20))
    if not chunk:
      raise EOFError('the peer closed the connection' + (' in the middle of a frame' if got else ''))
    chunks.append(chunk)
    got += len(chunk)
  return b''.join(chunks)


def read_frame(sock: socket.socket, max_bytes: int = MAX_FRAME_BYTES) -> Tuple[int, bytes]:
  """Reads one whole frame from a blocking socket (the actor side); EOFError when the peer has gone."""
  length, frame_type = _HEADER.unpack(_read_exact(sock, _HEADER.size))
  if length < 1:
    raise ProtocolError('empty frame')
  if length > max_bytes:
    raise FrameTooLarge(f'a frame of {length:,} bytes announced, more than the limit of {max_bytes:,}')
  return frame_type, _read_exact(sock, length - 1)
