"""Observation replays without actions, for learning from observations (thesis Sec. 4.4.2, App. 4.D; spec ch4
§3.4 item 1, §7.1 item 33).

The thesis pre-trains on ~300K frames per task recorded "from early training to convergence" of an RL run, and
from saved agents playing each other; no action labels are kept. `ReplayRecorder` records the actors' episodes
during RL (`launchers/marl.py --record_dir`); `GameRecorder` records a game loop, as `record_env_episodes` (any
policy playing an environment) and `evaluation.play_games` (saved agents vs the built-in AI or each other,
`launchers/marl_eval.py --record_dir`) do. `ReplayReader` reads a directory; `EpisodeShuffleBuffer` samples it
with at most a fixed number of episodes decoded at once, for replays larger than memory.

On-disk format (no pickle anywhere; `np.load(..., allow_pickle=False)` reads it):

  <dir>/index.json                 {"format": "rlcv_marl_replay", "version": 1, "episodes": [entry, ...]}
  <dir>/ep_<source>_<k>.npz        one episode, np.savez_compressed

  entry = {"file": "ep_rl_000000.npz", "length": L, "num_agents": N, "map_hw": [H, W], "num_frames": F,
           "channels_per_frame": c, "layout": "smm" | "frames", "num_actions": A, "source": "rl", ...}

  layout "smm" (c == 4, GRF / mini_football super-mini-map):
    planes     uint8 [L, H, W, 3]   the shared planes (left team, right team, ball) of the newest frame, {0, 255}
    positions  int16 [L, N, 2]      each agent's (row, col) at step t
  layout "frames" (any other observation, e.g. RGB):
    frames     uint8 [L, N, H, W, c] each agent's newest frame
    positions  int16 [L, N, 2]

  Only the newest frame of each step is stored; the F-frame stack is rebuilt at load time exactly as
  `envs.frame_stack.FrameStack` builds it (at the episode's first step all slots hold the first frame). In the SMM
  layout the per-agent `active` plane is one 255 pixel at the agent's position, so it is rebuilt from
  `positions`; a test checks the rebuilt stacks equal the environment's observations bit for bit. Step t of an
  episode is the observation after t actions; there is no terminal observation (actors reset at once), so the
  last step has no next-step target.
"""

import json
import os
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

FORMAT = 'rlcv_marl_replay'
VERSION = 1
INDEX = 'index.json'
SMM_PLANES = 4


class ReplayError(ValueError):
  """A replay directory is missing, empty or malformed; the message names the path."""


def _layout(channels_per_frame: int) -> str:
  return 'smm' if channels_per_frame == SMM_PLANES else 'frames'


def newest_frame(observation: np.ndarray, num_frames: int) -> Dict[str, Any]:
  """What one step of a stacked observation uint8 [N, H, W, F*c] leaves on disk (see the module docstring).

  Only this is buffered while an episode runs: for a 3000-step GRF game it is 3000 x 72 x 96 x 3 bytes (62 MB)
  instead of the 1.6 GB of the stacked per-agent observations.
  """
  n, h, w, c_total = observation.shape
  c = c_total // num_frames
  newest = observation[..., c_total - c:]
  if _layout(c) == 'smm':
    step = {'planes': np.array(newest[0, :, :, :3], np.uint8)}      # shared by all agents
  else:
    step = {'frames': np.array(newest, np.uint8)}
  step['meta'] = (int(n), int(h), int(w), int(c))
  return step


class EpisodeWriter:
  """Appends episodes to a replay directory and keeps its `index.json` current (written atomically)."""

  def __init__(self, directory: str, source: str = 'rl'):
    self.directory = directory
    self.source = source
    os.makedirs(directory, exist_ok=True)
    self._lock = threading.Lock()
    self._index = read_index(directory) if os.path.exists(os.path.join(directory, INDEX)) else {
        'format': FORMAT, 'version': VERSION, 'episodes': []}

  @property
  def num_episodes(self) -> int:
    return len(self._index['episodes'])

  def write(self, observations: List[np.ndarray], positions: List[np.ndarray], num_frames: int,
            num_actions: int, **extra: Any) -> str:
    """Saves one episode from its per-step stacked observations uint8 [N, H, W, C] and positions [N, 2]."""
    return self.write_steps([newest_frame(o, num_frames) for o in observations], positions, num_frames,
                            num_actions, **extra)

  def write_steps(self, steps: List[Dict[str, Any]], positions: List[np.ndarray], num_frames: int,
                  num_actions: int, **extra: Any) -> str:
    """Saves one episode from `newest_frame` records and positions [N, 2] per step."""
    n, h, w, c = steps[0]['meta']
    layout = _layout(c)
    key = 'planes' if layout == 'smm' else 'frames'
    arrays = {'positions': np.stack(positions).astype(np.int16), key: np.stack([s[key] for s in steps])}
    with self._lock:
      k = sum(1 for e in self._index['episodes'] if e.get('source') == self.source)
      name = f'ep_{self.source}_{k:06d}.npz'
      np.savez_compressed(os.path.join(self.directory, name), **arrays)
      entry = dict(file=name, length=len(steps), num_agents=n, map_hw=[h, w], num_frames=int(num_frames),
                   channels_per_frame=c, layout=layout, num_actions=int(num_actions), source=self.source, **extra)
      self._index['episodes'].append(entry)
      tmp = os.path.join(self.directory, INDEX + '.tmp')
      with open(tmp, 'w') as f:
        json.dump(self._index, f, indent=1)
      os.replace(tmp, os.path.join(self.directory, INDEX))
    return name


class ReplayRecorder:
  """Records the actors' episodes during RL from the stream of env steps (an `InferenceServer` step hook).

  Every `every`-th episode that STARTS (over all actors; the choice is made at its first step, so skipped
  episodes cost no memory) is buffered and written when it finishes; partial episodes of a restarted actor (new
  run id) and the unfinished episodes at the end of training are dropped. Call `add_step` with each
  `runtime.actors.EnvStep`.
  """

  def __init__(self, directory: str, num_frames: int, num_actions: int, every: int = 1, source: str = 'rl',
               frames_fn: Optional[Callable[[], int]] = None):
    self.writer = EpisodeWriter(directory, source)
    self.num_frames = num_frames
    self.num_actions = num_actions
    self.every = max(1, int(every))
    self.frames_fn = frames_fn     # the learner's frame count, stored per episode ("early training to end")
    self._buffers: Dict[int, Dict[str, Any]] = {}
    self._started = 0
    self.episodes_written = 0

  def add_step(self, step) -> None:
    buf = self._buffers.get(step.actor_id)
    if buf is not None and buf['run_id'] != step.run_id:
      buf = None                                  # restarted actor: its partial episode is gone
    if buf is not None and step.done:
      # `step.observation` is the first of the NEXT episode: the buffered one is complete.
      if buf['record']:
        extra = {'learner_frames': int(self.frames_fn())} if self.frames_fn else {}
        self.writer.write_steps(buf['steps'], buf['pos'], self.num_frames, self.num_actions, **extra)
        self.episodes_written += 1
      buf = None
    if buf is None:
      self._started += 1
      buf = self._buffers[step.actor_id] = {'run_id': step.run_id, 'steps': [], 'pos': [],
                                            'record': (self._started - 1) % self.every == 0}
    if buf['record']:
      buf['steps'].append(newest_frame(np.asarray(step.observation), self.num_frames))
      buf['pos'].append(np.array(step.agent_positions, np.int16))


class GameRecorder:
  """Records episodes from a game loop that sees every observation (as opposed to `ReplayRecorder`'s stream of
  actor steps): `begin_game()`, then `add_step(observation, positions)` for every observation that is not the
  terminal one, then `end_game(**extra)`. Every `every`-th game (counted from 0) is kept; the others cost nothing.
  Used by `record_env_episodes` and by `evaluation.play_games` (`launchers/marl_eval.py --record_dir`).
  """

  def __init__(self, directory: str, num_frames: int, num_actions: int, every: int = 1, source: str = 'play'):
    self.writer = EpisodeWriter(directory, source)
    self.num_frames = int(num_frames)
    self.num_actions = int(num_actions)
    self.every = max(1, int(every))
    self.games_seen = 0
    self.episodes_written = 0
    self._steps: Optional[List[Dict[str, Any]]] = None
    self._positions: List[np.ndarray] = []

  @property
  def directory(self) -> str:
    return self.writer.directory

  def check(self, observation_shape) -> None:
    """Raises ReplayError unless observations [N, H, W, F*c] may join the episodes already in the directory
    (`ReplayReader` needs one kind of observation per directory); call before playing, to fail fast."""
    episodes = self.writer._index['episodes']  # pylint: disable=protected-access  (one module)
    if not episodes:
      return
    e = episodes[0]
    have = (e['num_agents'], *e['map_hw'], e['num_frames'] * e['channels_per_frame'])
    want = tuple(int(d) for d in observation_shape)
    if have != want or e['num_frames'] != self.num_frames:
      raise ReplayError(f'{self.directory} already holds replays of observations {have} (N, H, W, C; '
                        f'{e["num_frames"]} frames), these games give {want} ({self.num_frames} frames); record '
                        'them to another directory')

  def begin_game(self) -> bool:
    """Starts a game; returns whether it is recorded."""
    recorded = self.games_seen % self.every == 0
    self.games_seen += 1
    self._steps, self._positions = ([], []) if recorded else (None, [])
    return recorded

  def add_step(self, observation: np.ndarray, positions: np.ndarray) -> None:
    """One step: the stacked observation uint8 [N, H, W, F*c] and the agents' (row, col) [N, 2]."""
    if self._steps is not None:
      self._steps.append(newest_frame(np.asarray(observation), self.num_frames))
      self._positions.append(np.array(positions, np.int16))

  def end_game(self, **extra: Any) -> Optional[str]:
    """Writes the game if it is recorded (and has a step); returns the file name or None."""
    steps, positions = self._steps, self._positions
    self._steps, self._positions = None, []
    if not steps:
      return None
    self.episodes_written += 1
    return self.writer.write_steps(steps, positions, self.num_frames, self.num_actions, **extra)


def record_env_episodes(env, directory: str, num_episodes: int, policy: Optional[Callable] = None,
                        seed: int = 0, source: str = 'play') -> List[str]:
  """Plays `num_episodes` of a (frame-stacked) `MultiAgentEnv` with `policy(obs [N, ...]) -> actions [N]`
  (uniform random actions by default; see `saved_model_policy` for a trained agent) and records them; no
  actions are stored. Returns the file names. (`evaluation.play_games(recorder=...)` records evaluation games.)"""
  rng = np.random.default_rng(seed)
  recorder = GameRecorder(directory, getattr(env, 'num_frames', 1), env.num_actions, source=source)
  names = []
  for _ in range(num_episodes):
    recorder.begin_game()
    ts = env.reset()
    while not ts.last():
      recorder.add_step(ts.observation, env.agent_positions())
      if policy is None:
        actions = rng.integers(0, env.num_actions, size=env.num_agents).astype(np.int32)
      else:
        actions = np.asarray(policy(ts.observation), np.int32)
      ts = env.step(actions)
    names.append(recorder.end_game())
  return names


def saved_model_policy(path: str, greedy: bool = False) -> Callable[[np.ndarray], np.ndarray]:
  """A policy for `record_env_episodes` from a SavedModel written by `export.export_policy` (a saved agent)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top  (actors and readers need no TensorFlow)
  served = tf.saved_model.load(path)
  key = 'greedy_actions' if greedy else 'actions'

  def policy(observation):
    out = served.serve(tf.constant(observation[np.newaxis], tf.uint8))
    return out[key].numpy()[0]

  policy.saved_model = served    # keeps the loaded object (and its variables) alive
  return policy


def read_index(directory: str) -> Dict[str, Any]:
  path = os.path.join(directory, INDEX)
  if not os.path.isdir(directory):
    raise ReplayError(f'replay directory {directory} does not exist')
  if not os.path.exists(path):
    raise ReplayError(f'{directory} holds no replays ({INDEX} missing); record some with launchers/marl.py '
                      'or launchers/marl_eval.py --record_dir')
  with open(path) as f:
    index = json.load(f)
  if index.get('format') != FORMAT or index.get('version') != VERSION:
    raise ReplayError(f'{path} is not a {FORMAT} v{VERSION} index')
  return index


class Episode:
  """One loaded episode; `stacked(t)` rebuilds the exact stacked observations uint8 [len(t), N, H, W, F*c]."""

  def __init__(self, entry: Dict[str, Any], arrays: Dict[str, np.ndarray]):
    self.entry = entry
    self.length = int(entry['length'])
    self.num_frames = int(entry['num_frames'])
    self.layout = entry['layout']
    self.positions = arrays['positions'].astype(np.int32)        # [L, N, 2]
    self.n = self.positions.shape[1]
    self.hw = tuple(entry['map_hw'])
    if self.layout == 'smm':
      self.planes = arrays['planes']
    else:
      self.frames = arrays['frames']

  def newest(self, t: np.ndarray) -> np.ndarray:
    """Each agent's newest frame at steps t: uint8 [len(t), N, H, W, c]."""
    if self.layout != 'smm':
      return self.frames[t]
    h, w = self.hw
    shared = self.planes[t]                                       # [k, H, W, 3]
    out = np.zeros((len(t), self.n, h, w, SMM_PLANES), np.uint8)
    out[..., :3] = shared[:, None]
    pos = self.positions[t]                                      # [k, N, 2]
    kk, ii = np.meshgrid(np.arange(len(t)), np.arange(self.n), indexing='ij')
    out[kk, ii, pos[..., 0], pos[..., 1], 3] = 255
    return out

  def stacked(self, t) -> np.ndarray:
    t = np.asarray(t, np.int64)
    # Slot j of the stack holds step t - (F-1) + j, clamped at the episode start (FrameStack's reset fill).
    steps = [np.maximum(t - (self.num_frames - 1) + j, 0) for j in range(self.num_frames)]
    if self.layout != 'smm':
      return np.concatenate([self.newest(s) for s in steps], axis=-1)
    # SMM: written straight into the stack (no per-slot arrays and concatenation; this is the batch
    # assembly's hot loop: 4x faster for a 32-step batch at 72x96).
    h, w = self.hw
    out = np.zeros((len(t), self.n, h, w, self.num_frames * SMM_PLANES), np.uint8)
    kk, ii = np.meshgrid(np.arange(len(t)), np.arange(self.n), indexing='ij')
    for j, s in enumerate(steps):
      c = j * SMM_PLANES
      out[..., c:c + 3] = self.planes[s][:, None]
      pos = self.positions[s]
      out[kk, ii, pos[..., 0], pos[..., 1], c + 3] = 255
    return out

  def occupancy(self, t, include_opponents: bool = False):
    """Observe-all masks of step t (home team plane, optionally OR the opponents): ([k, H], [k, W]) float32."""
    if self.layout != 'smm':
      raise ReplayError('observe_all targets need SMM replays (layout "smm")')
    occ = self.planes[np.asarray(t)][..., 0] > 0
    if include_opponents:
      occ |= self.planes[np.asarray(t)][..., 1] > 0
    return occ.any(axis=2).astype(np.float32), occ.any(axis=1).astype(np.float32)


class ReplayReader:
  """Reads a replay directory; every episode must share N, H, W, the frame stack and the layout."""

  def __init__(self, directory: str):
    self.directory = directory
    self.index = read_index(directory)
    self.entries = self.index['episodes']
    if not self.entries:
      raise ReplayError(f'{directory} holds no episodes yet')
    first = self.entries[0]
    keys = ('num_agents', 'map_hw', 'num_frames', 'channels_per_frame', 'layout')
    for e in self.entries:
      for k in keys:
        if e[k] != first[k]:
          raise ReplayError(f'{directory}: episode {e["file"]} has {k}={e[k]!r}, the first has {first[k]!r}; '
                            'one directory must hold one kind of observation')
    n, (h, w) = first['num_agents'], first['map_hw']
    self.observation_shape = (n, h, w, first['num_frames'] * first['channels_per_frame'])
    self.num_actions = int(first['num_actions'])
    self.layout = first['layout']

  def __len__(self):
    return len(self.entries)

  def load(self, i: int) -> Episode:
    e = self.entries[i]
    path = os.path.join(self.directory, e['file'])
    if not os.path.exists(path):
      raise ReplayError(f'{path} is listed in {INDEX} but missing')
    with np.load(path, allow_pickle=False) as z:
      return Episode(e, {k: z[k] for k in z.files})

  def sample_counts(self, horizon: int = 1) -> np.ndarray:
    """Samples per episode (steps t whose step t + horizon exists), from the index alone (nothing decoded)."""
    return np.array([max(0, int(e['length']) - horizon) for e in self.entries], np.int64)


class EpisodeShuffleBuffer:
  """Uniform (episode, step) draws from at most `capacity` decoded episodes of a larger set: bounded memory for
  replays that do not fit (the thesis's ~300K frames of 72x96 SMM for 5 agents per task).

  Episodes enter from a seeded stream (a fresh permutation of `episode_ids` per pass over them) and each stays
  resident until it has been drawn from as often as it has samples (one pass' worth on average), when the next
  episode of the stream replaces it. The first fill is staggered (slot j starts j/capacity of the way through
  its stay), so replacements come one at a time, not all at once. Draws are uniform over the resident samples,
  so over many draws every episode is sampled in proportion to its length, as with everything in memory.

  An evicted episode is dropped before its replacement is decoded, and evictions happen at the start of the
  next `draw`, so the episodes a draw returns stay resident while the caller builds its batch: as long as the
  caller keeps no episode past the next draw, at most `capacity` are ever decoded. Everything is a function of
  `seed`; `state()` / `restore()` carry it across a resumed run.
  """

  def __init__(self, reader: ReplayReader, episode_ids, capacity: int, seed: int, horizon: int = 1):
    counts = reader.sample_counts(horizon)
    self.reader = reader
    self.horizon = horizon
    self.episode_ids = [int(i) for i in episode_ids if counts[int(i)] > 0]
    if not self.episode_ids:
      raise ReplayError(f'{reader.directory}: no episode is long enough to give a sample')
    if capacity < 1:
      raise ValueError(f'capacity must be >= 1, got {capacity}')
    self.capacity = min(int(capacity), len(self.episode_ids))
    # With room for every episode nothing rotates: the same draws as an in-memory sampler of these episodes.
    self.rotates = self.capacity < len(self.episode_ids)
    self._counts = {i: int(counts[i]) for i in self.episode_ids}
    self._rng = np.random.default_rng(seed)
    self._order: List[int] = []
    self._pos = 0
    self._slots: List[Optional[Episode]] = []
    self._ids: List[int] = []
    self._draws: List[int] = []
    self.loads = 0
    self.peak_resident = 0
    for j in range(self.capacity):
      i = self._next_id()
      self._load_into(len(self._slots), i, draws=j * self._counts[i] // self.capacity)

  @property
  def num_resident(self) -> int:
    return sum(ep is not None for ep in self._slots)

  @property
  def resident_ids(self) -> List[int]:
    return list(self._ids)

  def _next_id(self) -> int:
    while True:
      if self._pos >= len(self._order):
        self._order = self._rng.permutation(self.episode_ids).tolist()
        self._pos = 0
      i = self._order[self._pos]
      self._pos += 1
      if i not in self._ids:          # an episode of the new pass may still be resident from the last one
        return i

  def _load_into(self, slot: int, episode_id: int, draws: int = 0):
    if slot == len(self._slots):
      self._slots.append(None)
      self._ids.append(-1)
      self._draws.append(0)
    self._ids[slot], self._draws[slot] = episode_id, draws
    self._slots[slot] = self.reader.load(episode_id)
    self.loads += 1
    self.peak_resident = max(self.peak_resident, self.num_resident)

  def _rotate(self):
    for slot, i in enumerate(self._ids):
      if self.rotates and self._draws[slot] >= self._counts[i]:
        self._slots[slot] = None          # dropped before the replacement is decoded
        self._ids[slot] = -1
        self._load_into(slot, self._next_id())

  def draw(self, batch_size: int) -> List[Tuple[Episode, np.ndarray]]:
    """`batch_size` uniform draws over the resident samples, as [(episode, steps t int64 [k])] (one entry per
    distinct episode, in slot order); every t has a step t + horizon."""
    self._rotate()
    sizes = np.array([self._counts[i] for i in self._ids], np.int64)
    flat = self._rng.integers(0, sizes.sum(), size=batch_size)
    bounds = np.cumsum(sizes)
    slot_of = np.searchsorted(bounds, flat, side='right')
    out = []
    for slot in np.unique(slot_of):
      mask = slot_of == slot
      self._draws[slot] += int(mask.sum())
      out.append((self._slots[slot], flat[mask] - (bounds[slot] - sizes[slot])))
    return out

  def state(self) -> Dict[str, Any]:
    """A JSON-ready snapshot (episode ids, draw counts, the stream's position and generator state)."""
    return {'capacity': self.capacity, 'episode_ids': list(self.episode_ids), 'ids': list(self._ids),
            'draws': list(self._draws), 'order': list(self._order), 'pos': self._pos,
            'rng': self._rng.bit_generator.state}

  def restore(self, state: Dict[str, Any]) -> bool:
    """Continues from `state()` (re-decoding its resident episodes); False, changing nothing, if it was taken
    for another capacity or episode set."""
    if state.get('capacity') != self.capacity or state.get('episode_ids') != self.episode_ids:
      return False
    size = len(state['ids'])
    # Drop the current fill before decoding the saved one, so the bound holds throughout.
    self._slots, self._ids, self._draws = [None] * size, [-1] * size, [0] * size
    for slot, (i, d) in enumerate(zip(state['ids'], state['draws'])):
      self._load_into(slot, int(i), int(d))
    self._order, self._pos = [int(i) for i in state['order']], int(state['pos'])
    self._rng.bit_generator.state = state['rng']
    return True
