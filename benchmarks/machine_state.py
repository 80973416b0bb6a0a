"""What a benchmark records about the machine it ran on, so that its numbers can be read: the load average, the
other processes that shared the cores, the code's git state and the TensorFlow / device set-up. Also the one-line
`error:` exit of the benchmark scripts' flag checks, the goal lines they print, and how they save their rows
(OUT.jsonl, OUT.md); the CPU meter and the uniformly random `sync_rollouts` policy of the throughput benchmarks.
Used by the Chapter 2 and Chapter 3 benchmarks and the seed benchmarks."""

import datetime
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fail(message: str) -> None:
  print(f'error: {message}', file=sys.stderr)
  sys.exit(2)


def load_average() -> list:
  try:
    return [round(v, 2) for v in os.getloadavg()]
  except OSError:
    return []


def other_work(limit: int = 5) -> list:
  """The busiest other processes (this one and its children left out; command line cut to 100 characters, CPU %),
  to say what shared the machine. Empty without psutil."""
  try:
    import psutil  # pylint: disable=g-import-not-at-top
  except ImportError:
    return []
  own = {os.getpid()}
  try:
    own |= {c.pid for c in psutil.Process().children(recursive=True)}
  except psutil.Error:
    pass
  procs = []
  for p in psutil.process_iter(['pid', 'cmdline', 'name']):
    if p.info['pid'] in own:
      continue
    try:
      p.cpu_percent(None)
      procs.append(p)
    except psutil.Error:
      pass
  time.sleep(1.0)
  busy = []
  for p in procs:
    try:
      pct = p.cpu_percent(None)
    except psutil.Error:
      continue
    if pct >= 5.0:
      cmd = ' '.join(p.info['cmdline'] or [p.info['name'] or '?'])
      busy.append({'cpu_percent': round(pct), 'command': cmd[:100]})
  return sorted(busy, key=lambda b: -b['cpu_percent'])[:limit]


def git_state() -> str:
  try:
    head = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True, text=True,
                          timeout=10).stdout.strip()
    dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no', '--', 'rlcv_tf', 'benchmarks'],
                           cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.split('\n')
  except (OSError, subprocess.SubprocessError):
    return 'unknown'
  dirty = [line for line in dirty if line.strip()]
  return head + (f' with uncommitted changes in {len(dirty)} file(s) of rlcv_tf/ and benchmarks/' if dirty else '')


def machine_info(tf) -> dict:
  gpus = tf.config.list_physical_devices('GPU')
  return dict(date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
              host=platform.node(), processor=platform.processor() or platform.machine(), cpu_count=os.cpu_count(),
              device=f'GPU ({len(gpus)})' if gpus else 'CPU only', tf_version=tf.__version__, code=git_state())


def print_goals(goals) -> None:
  """One line per goal row ({'goal', 'value', 'met', 'fastest_round_value', 'met_fastest_round'}): the verdict by
  the medians and by the fastest rounds."""
  for g in goals:
    print(f'{g["goal"]}: {g["value"]:.3f} medians ({"met" if g["met"] else "not met"}), '
          f'{g["fastest_round_value"]:.3f} fastest rounds ({"met" if g["met_fastest_round"] else "not met"})')


def save_report(out: str, row: dict, benchmark: str, markdown) -> None:
  """Appends `row` to OUT.jsonl and rewrites OUT.md as `markdown(rows)` over every row of `benchmark` in the file
  (lines of other benchmarks stay in the file but are not reported)."""
  import json  # pylint: disable=g-import-not-at-top
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  with open(out + '.jsonl', 'a') as f:
    f.write(json.dumps(row) + '\n')
  with open(out + '.jsonl') as f:
    rows = [json.loads(line) for line in f if line.strip()]
  rows = [r for r in rows if r.get('benchmark') == benchmark]
  with open(out + '.md', 'w') as f:
    f.write(markdown(rows))
  print(f'\n[bench] appended to {out}.jsonl, wrote {out}.md')


class CpuMeter:
  """CPU seconds of this process and its children (actor processes) over a window, in % of one core."""

  def __init__(self):
    import psutil  # pylint: disable=g-import-not-at-top
    self._psutil = psutil
    self._proc = psutil.Process()

  def total(self) -> float:
    """CPU seconds so far of this process and its living children."""
    t = self._proc.cpu_times()
    total = t.user + t.system
    for child in self._proc.children(recursive=True):
      try:
        c = child.cpu_times()
        total += c.user + c.system
      except self._psutil.Error:
        pass
    return total

  def start(self) -> None:
    self._t0, self._c0 = time.monotonic(), self.total()

  def stop(self) -> float:
    """CPU use over the window, in % of one core."""
    return 100.0 * (self.total() - self._c0) / max(1e-9, time.monotonic() - self._t0)


class RandomPolicy:
  """Uniformly random actions, no state, no extras (the `sync_rollouts` policy contract)."""

  def __init__(self, num_actions: int, seed: int):
    import numpy as np  # pylint: disable=g-import-not-at-top
    self.num_actions = num_actions
    self.rng = np.random.default_rng(seed)

  def __call__(self, observation, state, first):
    del first
    return self.rng.integers(0, self.num_actions, observation.shape[0]).astype('int32'), state, {}


def frames_per_step(episodes):
  """Emulator frames per agent step over finished episodes (None when none finished)."""
  steps = sum(int(e.get('steps', e.get('length', 0))) for e in episodes if 'frames' in e)
  frames = sum(int(e['frames']) for e in episodes if 'frames' in e)
  return frames / steps if steps else None


def env_only(rollouts, policy, seconds: float) -> dict:
  """Agent steps/s of `SyncRollouts.collect` (`rollouts`, not yet started) with `policy` for `seconds`, after one
  untimed rollout (actor start-up, first observations); CPU of this process and its actors over the window."""
  meter = CpuMeter()
  episodes = []
  with rollouts:
    rollouts.collect(policy)
    steps0 = rollouts.agent_steps
    meter.start()
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
      episodes += rollouts.collect(policy).episodes
    wall = time.monotonic() - t0
    cpu = meter.stop()
    steps = rollouts.agent_steps - steps0
  rate = steps / wall
  fps = frames_per_step(episodes)
  return dict(agent_steps_per_s=rate, emulator_frames_per_agent_step=fps,
              emulator_frames_per_s=None if fps is None else rate * fps, episodes_ended=len(episodes),
              agent_steps=steps, wall_s=wall, cpu_percent=cpu, cpu_ms_per_step=10.0 * cpu * wall / steps)
