"""The actor transport (`runtime/transport.py`): every frame round-trips, bad bytes are a `ProtocolError` and nothing
else, and a learner drops and counts peers that are not its actors (garbage, wrong key, other version, silence)
while its real actors keep stepping, over AF_UNIX and TCP. No TensorFlow here."""

import os
import socket
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

from rlcv_tf.runtime import actors
from rlcv_tf.runtime import transport

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _payload(frame_bytes, expected_type):
  decoder = transport.FrameDecoder()
  [(frame_type, payload)] = decoder.feed(frame_bytes)
  assert frame_type == expected_type and decoder.pending == 0
  return payload


def _step_args(rng, n=3, episode=None, done=False, truncated=False, discount=0.97):
  return dict(observation=rng.integers(0, 256, size=(n, 5, 7, 4)).astype(np.uint8),
              reward=rng.normal(size=n).astype(np.float32), done=done,
              agent_positions=rng.integers(0, 50, size=(n, 2)).astype(np.int32), episode=episode,
              discount=discount, truncated=truncated)


# --------------------------------------------------------------------------------------------------- frames
def test_hello_round_trip_and_the_version_checks():
  key = bytes(range(16))
  hello = transport.decode_hello(_payload(transport.encode_hello(key, 7, 3), transport.HELLO))
  assert hello == transport.Hello(transport.VERSION, key, 7, 3)
  with pytest.raises(transport.VersionMismatch, match='version 9') as e:
    transport.decode_hello(_payload(transport.encode_hello(key, 7, 3, version=9), transport.HELLO))
  assert e.value.version == 9
  bad_magic = b'HTTP' + _payload(transport.encode_hello(key, 7, 3), transport.HELLO)[4:]
  with pytest.raises(transport.VersionMismatch, match='not an rlcv_tf actor') as e:
    transport.decode_hello(bad_magic)
  assert e.value.version is None


@pytest.mark.parametrize('episode', [
    None,
    {'return': np.array([1.5, -2.0, 0.25], np.float32), 'length': 3000, 'score_home': np.int64(2),
     'score_away': 1, 'opponent_return': np.array([0.5], np.float64), 'opponent': 'runs/v1',
     'ratio': np.float32(0.5), 'goals': [np.int64(1), 2]},
])
@pytest.mark.parametrize('done,truncated,discount', [(False, False, 1.0), (True, False, 0.0), (False, True, 0.99)])
def test_step_round_trip(episode, done, truncated, discount):
  args = _step_args(np.random.default_rng(0), episode=episode, done=done, truncated=truncated, discount=discount)
  s = transport.decode_step(_payload(transport.encode_step(**args), transport.STEP))
  np.testing.assert_array_equal(s.observation, args['observation'])
  np.testing.assert_array_equal(s.reward, args['reward'])
  np.testing.assert_array_equal(s.agent_positions, args['agent_positions'])
  assert (s.observation.dtype, s.reward.dtype, s.agent_positions.dtype) == (np.uint8, np.float32, np.int32)
  assert (s.done, s.truncated, s.discount) == (done, truncated, discount)
  if episode is None:
    assert s.episode is None
    return
  assert s.episode['return'].dtype == np.float32 and s.episode['return'].tolist() == [1.5, -2.0, 0.25]
  assert s.episode['opponent_return'].dtype == np.float32 and s.episode['opponent_return'].tolist() == [0.5]
  assert s.episode['length'] == 3000 and s.episode['score_home'] == 2 and s.episode['score_away'] == 1
  assert s.episode['opponent'] == 'runs/v1' and s.episode['ratio'] == 0.5 and s.episode['goals'] == [1, 2]


def test_step_refuses_what_cannot_travel():
  args = _step_args(np.random.default_rng(0))
  with pytest.raises(ValueError, match='complex64 cannot travel'):
    transport.encode_step(**dict(args, observation=args['observation'].astype(np.complex64)))
  with pytest.raises(TypeError, match='cannot travel'):
    transport.encode_step(**dict(args, episode={'return': np.zeros(3), 'thing': object()}))


@pytest.mark.parametrize('actions,dtype', [
    (np.array([0, 18, 3, 7], np.int32), np.int32),
    (np.array([1, 2, 3], np.int64), np.int32),            # integer actions travel as int32
    (np.array([[0.5, -1.25], [3.0, 1e-3]], np.float32), np.float32),   # Chapter 2: continuous actions
    (np.array([0.1, 0.2], np.float64), np.float32),
])
def test_actions_round_trip(actions, dtype):
  got = transport.decode_actions(_payload(transport.encode_actions(actions), transport.ACTIONS))
  assert got.dtype == dtype and got.shape == actions.shape
  np.testing.assert_array_equal(got, actions.astype(dtype))


def test_actions_of_another_dtype_are_refused():
  with pytest.raises(ValueError, match='integers or floats'):
    transport.encode_actions(np.array(['a', 'b']))
  step_like = transport.frame(transport.ACTIONS, bytes([1, 1]) + struct.pack('<I', 2) + b'\x01\x02')   # uint8
  with pytest.raises(transport.ProtocolError, match='int32 or float32'):
    transport.decode_actions(_payload(step_like, transport.ACTIONS))


@pytest.mark.parametrize('dtype', ['<f4', '>f4', '<f8', '<f2', '<i1', '<i2', '<u2', '<i4', '<u4', '<i8', '<u8', '<u1',
                                   '?'])
def test_observations_of_any_dtype_round_trip_bit_for_bit(dtype):
  """Chapter 2's float32 frames and state vectors (and any other fixed-size number): the bytes that arrive are the
  values that left, in native byte order (a big-endian array travels little-endian)."""
  rng = np.random.default_rng(5)
  obs = (rng.normal(size=(1, 80, 80, 1)) * 300).astype(dtype)
  if np.dtype(dtype).kind == 'f':
    obs.reshape(-1)[:3] = [np.nan, np.inf, -0.0]
  for encoding, arrays in ((transport.FULL, obs), (transport.FRAME, (obs,))):
    args = dict(_step_args(rng, n=1), observation=arrays, encoding=encoding,
                num_frames=1 if encoding == transport.FULL else 4)
    s = transport.decode_step(_payload(transport.encode_step(**args), transport.STEP))
    got = s.arrays[0]
    assert got.dtype == np.dtype(dtype).newbyteorder('=') and got.shape == obs.shape
    assert got.tobytes() == obs.astype(got.dtype).tobytes()


def test_decoded_booleans_are_0_or_1_whatever_byte_arrived():
  good = transport.encode_step(np.ones((1, 2, 1), bool), np.zeros(1, np.float32), False, np.zeros((1, 2), np.int32))
  payload = bytearray(_payload(good, transport.STEP))
  at = 9 + 3 + 2 + 4 * 3   # flags and discount, the observation head, the array's code, ndim and 3 dimensions
  assert payload[at:at + 2] == bytes([1, 1])
  payload[at:at + 2] = bytes([7, 255])
  got = transport.decode_step(bytes(payload)).observation
  assert got.dtype == np.bool_ and got.view(np.uint8).tolist() == [[[1], [1]]]


def test_steps_of_a_k_env_actor_round_trip_in_order():
  rng = np.random.default_rng(6)
  steps = [dict(_step_args(rng, n=1, episode={'return': [float(k)], 'length': k} if k == 1 else None, done=k == 1,
                           truncated=k == 2, discount=0.5 * k),
                observation=rng.normal(size=(1, 3, 1)).astype(np.float32)) for k in range(3)]
  order = ('observation', 'reward', 'done', 'agent_positions', 'episode', 'discount', 'truncated')
  payload = _payload(transport.encode_steps([tuple(s[f] for f in order) for s in steps]), transport.STEPS)
  got = transport.decode_steps(payload)
  assert len(got) == 3
  for k, (s, want) in enumerate(zip(got, steps)):
    np.testing.assert_array_equal(s.observation, want['observation'])
    np.testing.assert_array_equal(s.reward, want['reward'])
    assert (s.done, s.truncated, s.discount) == (k == 1, k == 2, 0.5 * k)
    assert (s.episode is None) == (k != 1)
  assert got[1].episode['length'] == 1 and got[1].episode['return'].tolist() == [1.0]
  for cut in range(len(payload)):   # every truncation is a ProtocolError, never another exception
    with pytest.raises(transport.ProtocolError):
      transport.decode_steps(payload[:cut])
  with pytest.raises(transport.ProtocolError, match='too many'):
    transport.decode_steps(payload + b'\x00')
  with pytest.raises(transport.ProtocolError, match='no step'):
    transport.decode_steps(struct.pack('<H', 0))
  with pytest.raises(ValueError, match='1 to 65535 steps'):
    transport.encode_steps([])


def test_error_welcome_and_close_round_trip():
  text = 'Traceback (most recent call last):\n  RuntimeError: caf\u00e9 crashed'
  assert transport.decode_error(_payload(transport.encode_error(4, text), transport.ERROR)) == (4, text)
  assert transport.decode_error(_payload(transport.encode_error(transport.LEARNER_ID, 'no'), transport.ERROR)) == \
      (-1, 'no')
  assert _payload(transport.encode_welcome(), transport.WELCOME) == b''
  assert _payload(transport.encode_close(), transport.CLOSE) == b''


def test_decoder_reassembles_frames_from_any_pieces():
  rng = np.random.default_rng(1)
  stream = b''.join([transport.encode_hello(b'k' * 16, 1, 0), transport.encode_step(**_step_args(rng)),
                     transport.encode_actions(np.arange(5)), transport.encode_close()])
  decoder = transport.FrameDecoder()
  frames = []
  pos = 0
  while pos < len(stream):
    n = int(rng.integers(1, 40))
    frames += decoder.feed(stream[pos:pos + n])
    pos += n
  assert [f[0] for f in frames] == [transport.HELLO, transport.STEP, transport.ACTIONS, transport.CLOSE]
  assert decoder.pending == 0


def test_decoder_refuses_oversized_and_empty_frames_from_their_header():
  decoder = transport.FrameDecoder(max_bytes=1000)
  with pytest.raises(transport.FrameTooLarge, match='1,001 bytes'):
    decoder.feed(struct.pack('<IB', 1001, transport.STEP))   # refused before any of the body arrives
  with pytest.raises(transport.ProtocolError, match='empty'):
    transport.FrameDecoder().feed(struct.pack('<I', 0) + b'\x03')


def test_damaged_step_payloads_raise_protocol_errors_only():
  """Every truncation and random corruption of a valid STEP payload either decodes or raises ProtocolError."""
  rng = np.random.default_rng(2)
  payload = _payload(transport.encode_step(**_step_args(rng, episode={'return': [1.0, 2.0, 3.0], 'length': 2})),
                     transport.STEP)
  for cut in range(len(payload)):
    with pytest.raises(transport.ProtocolError):
      transport.decode_step(payload[:cut])
  with pytest.raises(transport.ProtocolError, match='too many'):
    transport.decode_step(payload + b'\x00')
  decoded = 0
  for _ in range(3000):
    damaged = bytearray(payload)
    for i in rng.integers(0, len(damaged), size=int(rng.integers(1, 4))):
      damaged[i] = int(rng.integers(0, 256))
    try:
      transport.decode_step(bytes(damaged))
      decoded += 1   # e.g. a changed pixel: still a valid frame
    except transport.ProtocolError:
      pass
  assert decoded > 0


def test_step_with_inconsistent_agents_is_refused():
  args = _step_args(np.random.default_rng(0))
  bad = transport.encode_step(**dict(args, agent_positions=args['agent_positions'][:2]))
  with pytest.raises(transport.ProtocolError, match='same N agents'):
    transport.decode_step(_payload(bad, transport.STEP))


def test_addresses():
  assert transport.parse_address('unix:/tmp/x/learner.sock') == ('unix', '/tmp/x/learner.sock')
  assert transport.parse_address(transport.format_address('tcp', ('10.0.0.2', 5000))) == ('tcp', ('10.0.0.2', 5000))
  assert transport.parse_address(transport.format_address('tcp', ('::1', 7, 0, 0))) == ('tcp', ('::1', 7))
  for bad in ('/tmp/learner.sock', 'tcp:host', 'tcp::80x', 'http://x'):
    with pytest.raises(ValueError, match='unix:PATH or tcp:HOST:PORT'):
      transport.parse_address(bad)


# ------------------------------------------------------------------------------------------ a learner's peers
def _scripted(n=2, **kw):
  return [actors.ActorConfig('test_scripted', dict(kw), seed=10 * i, num_frames=1) for i in range(n)]


class _Pump:
  """Answers every step with action (t mod 5) for every agent, and checks the actor got it (reward = action)."""

  def __init__(self, pool):
    self.pool = pool
    self.sent = {}
    self.steps = {i: 0 for i in range(pool.num_actors)}

  def run(self, seconds=0.0, rounds=0, more_steps=0):
    """Pumps for `seconds`, `rounds` receive calls, and until every actor has stepped `more_steps` more times."""
    deadline = time.monotonic() + seconds
    target = {i: n + more_steps for i, n in self.steps.items()}
    done = 0
    while done < rounds or time.monotonic() < deadline or any(self.steps[i] < target[i] for i in target):
      assert time.monotonic() < deadline + 30, f'the actors stopped stepping: {self.steps}, wanted {target}'
      got = self.pool.receive(0.2)
      actions = []
      for s in got:
        if (s.actor_id, s.run_id) in self.sent:
          np.testing.assert_array_equal(s.reward, self.sent[s.actor_id, s.run_id])
        a = np.full(2, self.steps[s.actor_id] % 5, np.int32)
        self.sent[s.actor_id, s.run_id] = a.astype(np.float32)
        self.steps[s.actor_id] += 1
        actions.append(a)
      if got:
        self.pool.send_actions([s.actor_id for s in got], np.stack(actions))
      done += 1


def _connect(pool):
  family, addr = transport.parse_address(pool.address)
  if family == 'unix':
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(addr)
  else:
    sock = socket.create_connection(addr)
  sock.settimeout(10.0)
  return sock


def _answer(sock):
  """What the learner says before hanging up: the ERROR text, or None if it closed without a word."""
  try:
    frame_type, payload = transport.read_frame(sock)
  except (EOFError, ConnectionResetError):
    return None
  assert frame_type == transport.ERROR
  text = transport.decode_error(payload)[1]
  with pytest.raises(EOFError):
    transport.read_frame(sock)
  return text


@pytest.mark.parametrize('family', ['unix', 'tcp'])
def test_strangers_are_dropped_and_counted_while_actors_keep_stepping(family, caplog):
  pool = actors.LocalActorPool(_scripted(), family=family, handshake_timeout_s=1.0)
  with pool:
    assert pool.address.startswith(family + ':')
    pump = _Pump(pool)
    pump.run(more_steps=5)
    key = pool._key  # pylint: disable=protected-access
    strangers = {
        'garbage': b'GET / HTTP/1.1\r\nHost: learner\r\n\r\n',
        'empty frame': struct.pack('<IB', 0, 0),
        'step before hello': transport.encode_step(**_step_args(np.random.default_rng(0))),
        'wrong key': transport.encode_hello(b'x' * 16, 0, 0),
        'other version': transport.encode_hello(key, 0, 0, version=transport.VERSION + 1),
        'unknown actor': transport.encode_hello(key, 9, 0),
        'already connected': transport.encode_hello(key, 1, 0),
        'truncated hello': transport.encode_hello(key, 0, 0)[:12],   # then the stranger hangs up
        'silent': b'',                                                # connects and says nothing
    }
    socks = {}
    for name, data in strangers.items():
      socks[name] = _connect(pool)
      socks[name].sendall(data)
      if name == 'truncated hello':
        socks[name].shutdown(socket.SHUT_WR)
    pump.run(seconds=1.5, more_steps=20)   # past the handshake timeout of the silent one
    answers = {name: _answer(s) for name, s in socks.items()}
    for s in socks.values():
      s.close()
    assert pool.rejected_peers == len(strangers), caplog.text
    assert pool.restarts == 0
    pump.run(more_steps=5)   # both actors keep stepping
  assert 'wrong key' in answers['wrong key']
  assert f'version {transport.VERSION + 1}' in answers['other version']
  assert 'no actor 9' in answers['unknown actor']
  for name in ('garbage', 'empty frame', 'step before hello', 'truncated hello', 'silent', 'already connected'):
    assert answers[name] is None, name
  dropped = [r.getMessage() for r in caplog.records if 'dropped' in r.getMessage()]
  assert len(dropped) == len(strangers), 'one log line per dropped peer'


def _actor_cmd(pool, *extra):
  return [sys.executable, '-m', 'rlcv_tf.runtime.actor_process', '--address', pool.address, '--actor_id', '0',
          '--run_id', '0', '--seed', '0', *extra]


def test_an_actor_of_another_protocol_version_is_refused_and_exits(caplog):
  pool = actors.LocalActorPool(_scripted())
  with pool:
    pump = _Pump(pool)
    pump.run(rounds=3)
    env = dict(os.environ, **{transport.KEY_ENV: pool._key.hex()})  # pylint: disable=protected-access
    proc = subprocess.Popen(_actor_cmd(pool, f'--protocol_version={transport.VERSION + 1}'), cwd=ROOT, env=env,
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdin.write('{"env_name": "test_scripted", "env_kwargs": {}, "seed": 0, "num_frames": 1}')
    proc.stdin.close()
    while proc.poll() is None:
      pump.run(rounds=1)
    err = proc.stderr.read()
    assert proc.returncode == transport.EXIT_REFUSED, err
    assert err.count('\n') == 1 and 'refused by the learner' in err and \
        f'protocol version {transport.VERSION + 1}' in err, err
    assert pool.rejected_peers == 1 and pool.restarts == 0
    pump.run(more_steps=5)
    refused = [r for r in caplog.records if 'refused' in r.getMessage()]
    assert len(refused) == 1, 'the learner logs one line'


def test_an_unreachable_learner_is_one_line_and_exit_2(tmp_path):
  env = dict(os.environ, **{transport.KEY_ENV: '00' * 16})
  out = subprocess.run([sys.executable, '-m', 'rlcv_tf.runtime.actor_process', '--address',
                        f'unix:{tmp_path}/nobody.sock', '--actor_id', '3', '--run_id', '0', '--seed', '0'],
                       cwd=ROOT, env=env, input='{}', capture_output=True, text=True, timeout=60)
  assert out.returncode == 2 and out.stderr.count('\n') == 1 and 'cannot reach the learner' in out.stderr, out


class _OtherVersionPool(actors.LocalActorPool):
  """Its own actors speak another protocol version (as if the code on disk changed under a long run)."""

  def _actor_command(self, actor_id, run_id, seed):
    return super()._actor_command(actor_id, run_id, seed) + [f'--protocol_version={transport.VERSION + 1}']


def test_own_actors_of_another_version_stop_the_pool_without_a_restart_loop():
  pool = _OtherVersionPool(_scripted(), max_restarts=100)
  t0 = time.monotonic()
  with pytest.raises(actors.ActorFailedError, match='refused'):
    pool.start()
  assert pool.restarts == 0 and time.monotonic() - t0 < 30
  assert all(p is None or p.poll() is not None for p in pool._procs)  # pylint: disable=protected-access


_BAD_ACTOR = '''
import json, os, sys
sys.path.insert(0, {root!r})
import numpy as np
from rlcv_tf.runtime import actor_process, transport
args = sys.argv[1:]
arg = lambda name: args[args.index(name) + 1]
if arg('--run_id') != '0':
  sys.exit(actor_process.main(args))          # the replacement is a real actor
json.loads(sys.stdin.read())
sock = transport.connect(arg('--address'))
sock.sendall(transport.encode_hello(bytes.fromhex(os.environ[transport.KEY_ENV]), int(arg('--actor_id')), 0))
assert transport.read_frame(sock)[0] == transport.WELCOME
obs = np.zeros((2, 3, 4, 1), np.uint8)
sock.sendall(transport.encode_step(obs, np.zeros(2, np.float32), False, np.zeros((2, 2), np.int32)))
transport.read_frame(sock)                     # its actions; then an oversized frame
sock.sendall((2 ** 31).to_bytes(4, 'little') + bytes([transport.STEP]))
sock.recv(1)
'''


class _BadFramePool(actors.LocalActorPool):
  """Actor 0's first run sends one good step, then a frame far over the size limit."""
  script = ''

  def _actor_command(self, actor_id, run_id, seed):
    cmd = super()._actor_command(actor_id, run_id, seed)
    return [sys.executable, self.script] + cmd[3:] if actor_id == 0 else cmd


def test_a_bad_frame_from_an_actor_is_counted_and_the_actor_replaced(tmp_path):
  script = tmp_path / 'bad_actor.py'
  script.write_text(_BAD_ACTOR.format(root=ROOT))
  pool = _BadFramePool(_scripted())
  pool.script = str(script)
  with pool:
    pump = _Pump(pool)
    deadline = time.monotonic() + 60
    runs = set()
    while 1 not in runs and time.monotonic() < deadline:
      got = pool.receive(0.2)
      runs |= {s.run_id for s in got if s.actor_id == 0}
      pool.send_actions([s.actor_id for s in got], np.zeros((len(got), 2), np.int32))
    assert runs == {0, 1}
    assert pool.rejected_peers == 1 and pool.restarts == 1
    pump.run(more_steps=5)
