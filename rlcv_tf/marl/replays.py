"""Observation replays without actions, for learning from observations (thesis Sec. 4.4.2, App. 4.D; spec ch4
§3.4 item 1, §7.1 item 33).

The thesis pre-trains on ~300K frames per task recorded "from early training to convergence" of an RL run, and
from saved agents playing each other; no action labels are kept. `ReplayRecorder` records the actors' episodes
during RL (`launchers/marl.py --record_dir`); `record_env_episodes` records any policy playing an environment.

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
from typing import Any, Callable, Dict, List, Optional

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


def record_env_episodes(env, directory: str, num_episodes: int, policy: Optional[Callable] = None,
                        seed: int = 0, source: str = 'play') -> List[str]:
  """Plays `num_episodes` of a (frame-stacked) `MultiAgentEnv` with `policy(obs [N, ...]) -> actions [N]`
  (uniform random actions by default; see `saved_model_policy` for a trained agent) and records them; no
  actions are stored. Returns the file names."""
  rng = np.random.default_rng(seed)
  writer = EpisodeWriter(directory, source)
  num_frames = getattr(env, 'num_frames', 1)
  names = []
  for _ in range(num_episodes):
    ts = env.reset()
    steps, pos = [newest_frame(ts.observation, num_frames)], [env.agent_positions().copy()]
    while True:
      if policy is None:
        actions = rng.integers(0, env.num_actions, size=env.num_agents).astype(np.int32)
      else:
        actions = np.asarray(policy(ts.observation), np.int32)
      ts = env.step(actions)
      if ts.last():
        break
      steps.append(newest_frame(ts.observation, num_frames))
      pos.append(env.agent_positions().copy())
    names.append(writer.write_steps(steps, pos, num_frames, env.num_actions))
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
                      '--record_dir')
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
    slots = [self.newest(np.maximum(t - (self.num_frames - 1) + j, 0)) for j in range(self.num_frames)]
    return np.concatenate(slots, axis=-1)

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
