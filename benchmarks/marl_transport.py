r"""Bytes on the actor/learner wire and the learner's CPU time per env step, before and after compact observations.

Before (protocol version 1): every STEP carried each agent's whole frame stack, and the unroll store kept a list of
step dicts that it stacked once an unroll was full. After (version 2, `runtime/compact.py`): the actor sends the
newest frame only, the planes its team shares once per team, bit-packed where binary, the learner rebuilds the
stack per actor, and the unroll store writes every step into preallocated buffers.

For every environment it records a stream of real steps (random actions, episode ends included) from two copies
of the environment with one seed, one stacked by `FrameStack` (before) and one unstacked (after), then measures,
side by side in one run:

  bytes/step   the STEP frame of each encoding: FULL (the whole stack; v1's frame was 3 bytes shorter), FRAME
               (newest frame), SHARED (shared planes once per team), SHARED_BITS (the same, bit-packed);
  learner us   CPU time of the receiving thread per env step, over AF_UNIX from a sender process: receive, decode,
               rebuild the stack (after only), and the unroll store's append (T = `--unroll_length`); the median
               of `--repeats` alternating runs of `--steps` steps;
  actor us     CPU time per env step of what the actor does besides stepping the engine: before, FrameStack's
               shift and copy plus framing the stack; after, `FrameEncoder.encode` plus framing.

Actors send SHARED_BITS wherever the planes are binary (`actor_process.py`): measured on an idle machine at
72x96, unpacking costs the learner less than receiving the 8x larger SHARED frame does (the tables show both).

  python benchmarks/marl_transport.py                      # grf_5v5 N=5 and N=4 (72x96), mini_5v5_small
  python benchmarks/marl_transport.py --envs=mini_5v5_small:5 --steps=200 --output=''
"""

import json
import multiprocessing
import os
import selectors
import socket
import statistics
import sys
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import dm_env  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from rlcv_tf.envs import base  # pylint: disable=g-import-not-at-top
from rlcv_tf.envs import frame_stack  # pylint: disable=g-import-not-at-top
from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
from rlcv_tf.runtime import compact  # pylint: disable=g-import-not-at-top
from rlcv_tf.runtime import env_runner  # pylint: disable=g-import-not-at-top
from rlcv_tf.runtime import transport  # pylint: disable=g-import-not-at-top
from rlcv_tf.runtime import unrolls  # pylint: disable=g-import-not-at-top

flags.DEFINE_list('envs', ['grf_5v5:5', 'grf_5v5:4', 'mini_5v5_small:5'], 'Environments as name:num_agents.')
flags.DEFINE_integer('num_frames', 4, 'Frames per stacked observation.')
flags.DEFINE_integer('steps', 400, 'Env steps recorded per environment, and measured per run.')
flags.DEFINE_integer('episode_length', 150, 'Episode length (so the stream has episode ends); 0 = the default.')
flags.DEFINE_integer('unroll_length', 32, 'T of the unroll store.')
flags.DEFINE_integer('repeats', 5, 'Alternating before/after runs; the median is reported.')
flags.DEFINE_integer('batch_size', 4, 'Unrolls per update, for the batch stacking measurement.')
flags.DEFINE_string('output', 'docs/marl_transport.md', 'Markdown report to write (empty: print only).')
FLAGS = flags.FLAGS

NUM_ACTIONS = 19


class _ListUnrollBuilder:
  """The unroll store before this change: a list of step dicts per actor, stacked when T+1 steps are in."""

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


class _Replay(base.MultiAgentEnv):
  """Plays recorded unstacked frames back (to time FrameStack's own work without the engine's)."""

  def __init__(self, frames):
    self._frames = frames
    self._t = 0

  num_actions = NUM_ACTIONS
  map_hw = (1, 1)

  @property
  def num_agents(self):
    return self._frames[0].shape[0]

  def agent_positions(self):
    return np.zeros((self.num_agents, 2), np.int32)

  def observation_spec(self):
    return dm_env.specs.Array(self._frames[0].shape, np.uint8)

  def reset(self):
    self._t = 0
    return dm_env.restart(self._frames[0])

  def step(self, actions):
    self._t = (self._t + 1) % len(self._frames)
    return dm_env.transition(np.zeros(self.num_agents, np.float32), self._frames[self._t])


def record(name, num_agents):
  """(stacked outputs, unstacked outputs, shared channels, team sizes) of `--steps` steps of one seed."""
  kw = {'num_agents': num_agents}
  if FLAGS.episode_length:
    kw['episode_length'] = FLAGS.episode_length
  try:
    stacked = registry.make_env(name, seed=1, num_frames=FLAGS.num_frames, **kw)
  except TypeError:   # an engine without an episode length of ours (GRF: 3000-step games)
    kw.pop('episode_length')
    stacked = registry.make_env(name, seed=1, num_frames=FLAGS.num_frames, **kw)
  flat = registry.make_env(name, seed=1, num_frames=1, **kw)
  rng = np.random.default_rng(0)
  before, after = env_runner.EnvRunner(stacked), env_runner.EnvRunner(flat)
  outs = [(before.reset(), after.reset())]
  while len(outs) < FLAGS.steps:
    actions = rng.integers(0, flat.num_actions, flat.num_agents).astype(np.int32)
    outs.append((before.step(actions), after.step(actions)))
  info = (tuple(flat.shared_channels), tuple(flat.team_sizes))
  before.close()
  after.close()
  return [o[0] for o in outs], [o[1] for o in outs], info


def _frame_bytes(out, encoded):
  return transport.encode_step(encoded.arrays, out.reward, out.done, out.agent_positions, out.episode, out.discount,
                               out.truncated, encoded.encoding, encoded.num_frames)


def _sender(sock, frames, count):
  try:
    for i in range(count):
      sock.sendall(frames[i % len(frames)])
  except OSError:
    pass
  sock.close()


def learner_us(frames, compact_frames: bool, num_agents: int) -> float:
  """CPU time (us) of the receiving thread per env step: receive, decode, stack, unroll append."""
  a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
  sender = multiprocessing.get_context('fork').Process(target=_sender, args=(a, frames, FLAGS.steps), daemon=True)
  sender.start()
  a.close()
  b.setblocking(False)
  decoder = transport.FrameDecoder()
  stacker = compact.FrameStacker()
  builder = unrolls.UnrollBuilder(FLAGS.unroll_length) if compact_frames else _ListUnrollBuilder(FLAGS.unroll_length)
  action = np.zeros(num_agents, np.int32)
  logits = np.zeros((num_agents, NUM_ACTIONS), np.float32)
  received = 0
  with selectors.DefaultSelector() as sel:
    sel.register(b, selectors.EVENT_READ)
    t0 = time.thread_time()
    while received < FLAGS.steps:
      sel.select(1.0)
      got, closed = decoder.read_from(b)
      for _, payload in got:
        s = transport.decode_step(payload)
        obs = stacker.observation(0, 0, s) if compact_frames else s.observation
        builder.append(0, 0, {'observation': obs[:num_agents], 'reward': s.reward, 'done': np.bool_(s.done),
                              'discount': np.float32(s.discount), 'truncated': np.bool_(s.truncated),
                              'agent_positions': s.agent_positions, 'action': action, 'behaviour_logits': logits})
        received += 1
      if closed:
        break
    cpu = time.thread_time() - t0
  b.close()
  sender.join()
  assert received == FLAGS.steps, received
  return cpu / received * 1e6


def actor_us(after_outs, shared, teams) -> dict:
  """CPU time (us) per step the actor spends on observations besides the engine: FrameStack's shift and copy plus
  framing the stack (before), `FrameEncoder.encode` plus framing (after, unpacked and bit-packed)."""
  frames = [o.observation for o in after_outs]
  out = after_outs[1]
  zeros = np.zeros(frames[0].shape[0], np.int32)
  stacked = frame_stack.FrameStack(_Replay(frames), FLAGS.num_frames)
  stacked.reset()
  t0 = time.thread_time()
  for _ in range(len(frames)):
    ts = stacked.step(zeros)
    transport.encode_step(ts.observation, out.reward, out.done, out.agent_positions)
  times = {'before': (time.thread_time() - t0) / len(frames) * 1e6}
  for label, pack in (('SHARED', False), ('SHARED_BITS', True)):
    replay = _Replay(frames)
    encoder = compact.FrameEncoder(FLAGS.num_frames, shared, teams, pack_bits=pack)
    t0 = time.thread_time()
    for _ in range(len(frames)):
      ts = replay.step(zeros)
      _frame_bytes(out, encoder.encode(ts.observation))
    times[label] = (time.thread_time() - t0) / len(frames) * 1e6
  return times


def batch_ms(before_outs, num_agents) -> dict:
  """ms per update of `stack_batch` for `--batch_size` unrolls: into new arrays (before) and into the last
  batch's arrays (after, `out=`)."""
  builder = unrolls.UnrollBuilder(FLAGS.unroll_length)
  made = []
  action = np.zeros(num_agents, np.int32)
  logits = np.zeros((num_agents, NUM_ACTIONS), np.float32)
  for o in before_outs:
    u = builder.append(0, 0, {'observation': o.observation, 'reward': o.reward, 'done': np.bool_(o.done),
                              'discount': np.float32(o.discount), 'truncated': np.bool_(o.truncated),
                              'agent_positions': o.agent_positions, 'action': action, 'behaviour_logits': logits})
    if u is not None:
      made.append(u)
  b = FLAGS.batch_size
  assert len(made) >= 2 * b, f'record at least {2 * b * FLAGS.unroll_length + 1} steps for batches of {b}'
  times = {'before': [], 'after': []}
  out = unrolls.stack_batch(made[b:2 * b])
  for r in range(2 * FLAGS.repeats + 2):
    part = made[:b] if r % 2 else made[b:2 * b]
    t0 = time.perf_counter()
    unrolls.stack_batch(part)
    t1 = time.perf_counter()
    out = unrolls.stack_batch(part, out=out)
    t2 = time.perf_counter()
    if r >= 2:
      times['before'].append((t1 - t0) * 1e3)
      times['after'].append((t2 - t1) * 1e3)
  return {k: statistics.median(v) for k, v in times.items()}


def measure(name, num_agents):
  print(f'{name} N={num_agents}: recording {FLAGS.steps} steps ...', flush=True)
  before_outs, after_outs, (shared, teams) = record(name, num_agents)
  encoders = {
      'FRAME': compact.FrameEncoder(FLAGS.num_frames),
      'SHARED': compact.FrameEncoder(FLAGS.num_frames, shared, teams, pack_bits=False),
      'SHARED_BITS': compact.FrameEncoder(FLAGS.num_frames, shared, teams),
  }
  # Bit for bit: what the learner rebuilds is what FrameStack gives (checked below for every encoding).
  sizes = {'FULL': [len(transport.encode_step(o.observation, o.reward, o.done, o.agent_positions, o.episode,
                                              o.discount, o.truncated)) for o in before_outs]}
  frames = {}
  for label, enc in encoders.items():
    frames[label] = [_frame_bytes(o, enc.encode(o.observation)) for o in after_outs]
    sizes[label] = [len(f) for f in frames[label]]
  for label in encoders:
    stacker = compact.FrameStacker()
    for o_before, f in zip(before_outs, frames[label]):
      obs = stacker.observation(0, 0, transport.decode_step(f[5:]))
      assert np.array_equal(obs, o_before.observation), f'the stack rebuilt from {label} differs from FrameStack'
  full_frames = [transport.encode_step(o.observation, o.reward, o.done, o.agent_positions, o.episode, o.discount,
                                       o.truncated) for o in before_outs]
  runs = {'before': [], 'SHARED': [], 'SHARED_BITS': []}
  for _ in range(FLAGS.repeats):
    runs['before'].append(learner_us(full_frames, False, num_agents))
    runs['SHARED'].append(learner_us(frames['SHARED'], True, num_agents))
    runs['SHARED_BITS'].append(learner_us(frames['SHARED_BITS'], True, num_agents))
  act = [actor_us(after_outs, shared, teams) for _ in range(FLAGS.repeats)]
  batch = batch_ms(before_outs, num_agents)
  n, h, w, c = after_outs[0].observation.shape
  row = {'env': name, 'num_agents': num_agents, 'hw': [h, w], 'frames': FLAGS.num_frames,
         'episode_ends': int(sum(o.done for o in before_outs)),
         'bytes': {k: float(np.mean(v)) for k, v in sizes.items()},
         'learner_us': {k: statistics.median(v) for k, v in runs.items()},
         'actor_us': {k: statistics.median(a[k] for a in act) for k in act[0]},
         'batch_ms': batch, 'batch_size': FLAGS.batch_size,
         'fallbacks': encoders['SHARED_BITS'].fallbacks}
  print('[bench-json] ' + json.dumps(row), flush=True)
  return row


def report(rows, load) -> str:
  lines = [
      '# Compact observations on the actor/learner wire (issue 8 section 2, "Move fewer bytes")',
      '',
      'Measured by `python benchmarks/marl_transport.py` (numbers below are from one run; load average at the '
      f'start: {load}). {FLAGS.steps} recorded steps per environment (random actions, episodes of '
      f'{FLAGS.episode_length or "default"} steps where the environment takes a length), {FLAGS.num_frames} frames, '
      f'unrolls of T={FLAGS.unroll_length}; CPU times are medians of {FLAGS.repeats} alternating runs.',
      '',
      '## What changed on the wire',
      '',
      '- Protocol version 1: `STEP = flags | discount | observation array [N, H, W, k*C] | reward | positions | '
      '[episode]`, the whole stack of every agent.',
      '- Protocol version 2 (`runtime/transport.py`, `runtime/compact.py`): `STEP = flags | discount | encoding u8 | '
      'num_frames u8 | array count u8 | arrays | reward | positions | [episode]`. The actor steps its environment '
      'unstacked and sends the newest frame only: FRAME `[N, H, W, C]`; or, where the environment declares '
      'channels a team shares (the SMM\'s left team, right team and ball planes), SHARED: agents per team `[G]`, the '
      'shared channel indices `[S]`, the shared planes once per team `[G, H, W, S]` and every agent\'s own channels '
      '`[N, H, W, C-S]`; SHARED_BITS is SHARED with the binary planes bit-packed. The learner rebuilds the k-frame '
      'stack per (actor, run) with FrameStack\'s rule (k copies at the first step of a run and at every `done`, else '
      'shift by one frame), bit for bit. The encoder checks the declared channels at every step and sends FRAME '
      'where they differ within a team. A version-1 actor is refused at its HELLO.',
      '- Actors send SHARED_BITS wherever the planes are binary (the SMM\'s always are): at 72x96 it costs the '
      'learner less CPU than receiving SHARED, and learner + actor about the same (CPU table); between machines the '
      'bytes are the cost.',
      '- The unroll store writes each step into preallocated per-actor `[T+1, ...]` buffers and hands a full set '
      'out as the unroll (no list of dicts stacked per unroll; the boundary step opens the next buffers).',
      '',
      '## Bytes per env step (one STEP frame)',
      '',
      '| env | N | H x W | before: FULL (whole stacks) | FRAME (newest frame) | SHARED (team planes once) | '
      '**after: SHARED_BITS** (bit-packed) | before / SHARED | **before / after** |',
      '|---|---|---|---|---|---|---|---|---|',
  ]
  for r in rows:
    b = r['bytes']
    lines.append(f"| {r['env']} | {r['num_agents']} | {r['hw'][0]} x {r['hw'][1]} | {b['FULL']:,.0f} | "
                 f"{b['FRAME']:,.0f} | {b['SHARED']:,.0f} | **{b['SHARED_BITS']:,.0f}** | "
                 f"{b['FULL'] / b['SHARED']:.0f}x | **{b['FULL'] / b['SHARED_BITS']:.0f}x** |")
  lines += [
      '',
      '## CPU per env step, microseconds',
      '',
      'Learner: receive + decode + rebuild the stack + unroll append. Actor: what it does to an observation '
      'besides the engine step. After: SHARED_BITS is what actors send; SHARED (unpacked) for comparison. The batch '
      'stacking column adds the per-update `stack_batch` below, per env step.',
      '',
      '| env | N | learner before | learner, SHARED | **learner after, SHARED_BITS** | actor before | '
      'actor, SHARED | **actor after, SHARED_BITS** | learner + batch stacking, **before / after** | '
      'learner + actor, before / SHARED / **SHARED_BITS** |',
      '|---|---|---|---|---|---|---|---|---|---|',
  ]
  for r in rows:
    u, a, m = r['learner_us'], r['actor_us'], r['batch_ms']
    per_step = 1e3 / (r['batch_size'] * FLAGS.unroll_length)
    lines.append(f"| {r['env']} | {r['num_agents']} | {u['before']:.0f} | {u['SHARED']:.0f} | "
                 f"**{u['SHARED_BITS']:.0f}** | {a['before']:.0f} | {a['SHARED']:.0f} | **{a['SHARED_BITS']:.0f}** | "
                 f"{u['before'] + m['before'] * per_step:.0f} / **{u['SHARED_BITS'] + m['after'] * per_step:.0f}** | "
                 f"{u['before'] + a['before']:.0f} / {u['SHARED'] + a['SHARED']:.0f} / "
                 f"**{u['SHARED_BITS'] + a['SHARED_BITS']:.0f}** |")
  lines += [
      '',
      f'## Stacking a batch of {FLAGS.batch_size} unrolls (T={FLAGS.unroll_length}) for an update',
      '',
      '`unrolls.stack_batch` into new arrays (before) and into the previous batch\'s arrays (after: `out=`, as the '
      'training loop now does), ms per update and us per env step of the batch.',
      '',
      '| env | N | before, ms | after, ms | before, us / env step | after, us / env step |',
      '|---|---|---|---|---|---|',
  ]
  for r in rows:
    m = r['batch_ms']
    steps = r['batch_size'] * FLAGS.unroll_length
    lines.append(f"| {r['env']} | {r['num_agents']} | {m['before']:.2f} | **{m['after']:.2f}** | "
                 f"{m['before'] * 1e3 / steps:.0f} | **{m['after'] * 1e3 / steps:.0f}** |")
  lines += [
      '',
      'Before is protocol version 1 (its STEP frame was 3 bytes shorter than FULL here) with the list-of-dicts '
      'unroll store; after is version 2 with `compact.FrameStacker` and the preallocated `UnrollBuilder`. The '
      'learner time is the receiving thread\'s CPU time while a separate process sends the recorded frames over '
      'AF_UNIX (as the actor pool receives them); inference (`np.stack` of the batch) and training are unchanged '
      'and not included. The actor time excludes the engine\'s own step.',
      '',
      'JSON rows:',
      '',
      '```',
  ] + [json.dumps(r) for r in rows] + ['```', '']
  return '\n'.join(lines)


def main(argv):
  del argv
  load = ', '.join(f'{x:.2f}' for x in os.getloadavg())
  rows = []
  for spec in FLAGS.envs:
    name, _, n = spec.partition(':')
    rows.append(measure(name, int(n or 5)))
  text = report(rows, load)
  print(text)
  if FLAGS.output:
    with open(FLAGS.output, 'w') as f:
      f.write(text)
    print(f'wrote {FLAGS.output}')


if __name__ == '__main__':
  app.run(main)
