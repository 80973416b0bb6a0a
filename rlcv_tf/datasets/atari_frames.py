"""Frames of Breakout-like games for VAE training and probes: a collector writing PNG + an index, and readers.

Source. Seed 001 pre-trains its VAE on "25,000 frames" (about 50 episodes) collected with "an already trained
policy" (seed 001 S:L210; spec Sec. 4 A, R8); that policy is not available, so the default collector is a scripted RAM /
state ball tracker with epsilon 0.05 random actions (spec A13, a proposal: it changes the state distribution
somewhat). Seed 002 stores its Atari frames as PNG, because "using JPEG often resulted in distortions near the
perimeter of objects" (seed 002 S:L861); frames are never written as JPEG here (tests/test_atari_frames.py shows JPEG
smearing a 1-pixel ball).

Collector: `collect(env_name, output_dir, make_env=registry.make_env, num_frames, policy, seed, ...)` plays a
frame environment of the companion seeds (registry chapter 0: `mini_breakout*`, `atari_<game>_seed001`,
`atari_<game>_seed002[_rgb]`; any environment with uint8 [1, H, W, 1 or 3] observations), unstacked, and writes
every observation (the reset one included) as one single-frame PNG. The caller passes the registry's `make_env`:
data sets sit below environments in the house's layers. Policies:
  random          uniform actions;
  tracker         `tracker_action`: FIRE with no ball in play, else the paddle's centre towards the ball's (from
                  `object_positions()`: MiniBreakout's state, ALE Breakout's RAM), epsilon random actions
                  (`epsilon`, default 0.05);
  saved:<dir>     a SavedModel whose `serving_default` takes `frames` uint8 [B, H, W, n*C] (the last n frames,
                  oldest first; at reset n copies of the first, as `envs.frame_stack` does) and returns `action`.
Episode e is played with the environment re-seeded from (seed, e) and its own policy generator, so it does not
depend on the episodes before it. An episode ends with the game, or is cut after `max_episode_steps` agent steps
(default 500: the paper's 25,000 frames in about 50 episodes; 0 keeps the game's own end). Collection stops after
`num_frames` frames, possibly inside an episode ('cut').

Layout of `output_dir`:
  frames/ep<EEEEE>/<SSSSSS>.png   uint8 grey (H, W) or RGB (H, W, 3) PNG of step S of episode E;
  index.csv                       one row per frame (`INDEX_COLUMNS`): env, episode, step, file (relative path),
                                  split, action (taken on this frame; -1 on an episode's last), reward (of the step
                                  into this frame), lives, ball_x, ball_y, paddle_x (the env's `object_positions()`:
                                  pixels for MiniBreakout, AtariARI RAM values for ALE Breakout, -1 where there is
                                  no ball or no annotation), and frame_ball_x, frame_ball_y, frame_paddle_x (the
                                  ball's top-left and the paddle's left edge in the stored frame's pixels, floats,
                                  -1 without a ball: what ball masks and probes on the frames want);
  collect_report.json             the settings, the environment's own settings record, frame shape, per-episode
                                  records (split, frames, score, how it ended), split counts, timing, `complete`.
Split by episode (never inside one): with k = round(1 / val_fraction), episodes 1, 1 + k, 1 + 2k, ... are 'val' (10 %
by default), the rest 'train'; the second episode is the first val one, so a short collection already has one.
Rows reach index.csv only when their episode has ended (or at the end of the run, for the cut last one).

Re-running with the same output_dir resumes: the settings must match (else `CollectError`, one line naming the
difference); episodes that ended are kept, a cut or unfinished episode is deleted and replayed from its seed, and
collection goes on up to the new `num_frames` (a larger count extends a finished collection; resuming gives the
same frames as one uninterrupted run for the random and tracker policies).

Readers:
  `frames_dataset(data_dir, split, batch_size, shuffle, seed)` -> tf.data.Dataset of float32 [B, H, W, C] in [0, 1]
      (with `with_positions=True`: (images, {column: [B]})). Unreadable PNGs are found by a decode pass over the
      split's files when the dataset is built, skipped and counted (`dataset.skipped_files`, a list of (path,
      reason)); more than `max_skipped_fraction` of them raises `FramesError`.
  `load_frames(data_dir, split)` -> (uint8 [N, H, W, C], `FrameIndex`): the split in memory for probes; the index
      is a list of row dicts whose `column(name)` (or `index['name']`) is a NumPy array.
A directory with no PNG raises `FramesError` (a ValueError) whose one-line text a launcher prints as is. A folder
of PNGs without index.csv (frames from elsewhere) is read whole as split 'all' (also 'train').
"""

import concurrent.futures
import csv
import dataclasses
import json
import os
import shutil
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

INDEX_FILE = 'index.csv'
REPORT_FILE = 'collect_report.json'
FRAMES_DIR = 'frames'
INDEX_COLUMNS = ('env', 'episode', 'step', 'file', 'split', 'action', 'reward', 'lives', 'ball_x', 'ball_y',
                 'paddle_x', 'frame_ball_x', 'frame_ball_y', 'frame_paddle_x')
_INT_COLUMNS = ('episode', 'step', 'action', 'lives', 'ball_x', 'ball_y', 'paddle_x')
_FLOAT_COLUMNS = ('reward', 'frame_ball_x', 'frame_ball_y', 'frame_paddle_x')
POSITION_COLUMNS = ('ball_x', 'ball_y', 'paddle_x', 'frame_ball_x', 'frame_ball_y', 'frame_paddle_x', 'lives')
POLICIES = ('random', 'tracker', 'saved:<dir>')
SPLITS = ('train', 'val', 'all')
DEFAULT_MAX_EPISODE_STEPS = 500
DEFAULT_EPSILON = 0.05
POLICY_NOTE = ('the paper\'s "already trained policy" is not available: frames come from the policy named here '
               '(seed 001 spec A13)')


class FramesError(ValueError):
  """A frames directory or a collection request cannot be used as given; the message is one line with the fix."""


class CollectError(FramesError):
  """A collection cannot start or resume (unknown environment or policy, other settings in output_dir, ...)."""


# ------------------------------------------------------------------------------------------------- collector
@dataclasses.dataclass
class _Policy:
  kind: str
  act: Callable[[Any, np.ndarray, np.random.Generator], int]
  num_frames: int = 1     # the stack a saved policy reads
  reset: Callable[[np.ndarray], None] = lambda obs: None   # an episode's first observation
  push: Callable[[np.ndarray], None] = lambda obs: None    # each later observation


def check_request(env_name: str, policy: str, num_frames: int, val_fraction: float = 0.1,
                  epsilon: float = DEFAULT_EPSILON, max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS,
                  valid_envs: Optional[Sequence[str]] = None) -> None:
  """`CollectError` (one line) for a bad request, before anything is built; `valid_envs` (the frame environments'
  names, e.g. `registry.names(chapter=0)`) also checks the name."""
  if valid_envs is not None and env_name not in valid_envs:
    raise CollectError(f'--env={env_name}: not a frame environment; valid values: {", ".join(valid_envs)}')
  if not (policy in ('random', 'tracker') or (policy.startswith('saved:') and len(policy) > len('saved:'))):
    raise CollectError(f'--policy={policy}: unknown policy; valid values: random, tracker, saved:<SavedModel dir>')
  if policy.startswith('saved:') and not os.path.isdir(os.path.expanduser(policy[len('saved:'):])):
    raise CollectError(f'--policy={policy}: {policy[len("saved:"):]} is not a directory (give the SavedModel folder '
                       'a policy export wrote)')
  if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) or num_frames < 1:
    raise CollectError(f'--num_frames={num_frames}: must be a whole number >= 1 (e.g. 25000)')
  if not 0.0 <= val_fraction <= 0.5:
    raise CollectError(f'--val_fraction={val_fraction:g}: must be in [0, 0.5] (e.g. 0.1)')
  if not 0.0 <= epsilon <= 1.0:
    raise CollectError(f'--epsilon={epsilon:g}: must be in [0, 1] (e.g. 0.05)')
  if max_episode_steps < 0:
    raise CollectError(f'--max_episode_steps={max_episode_steps}: must be >= 0 (0: the game\'s own end)')


def split_of(episode: int, val_fraction: float) -> str:
  """'val' for episodes 1, 1 + k, 1 + 2k, ... (k = round(1 / val_fraction)), else 'train' (module docstring)."""
  if val_fraction <= 0.0:
    return 'train'
  k = max(2, int(round(1.0 / val_fraction)))
  return 'val' if episode % k == 1 else 'train'


def _episode_seed(seed: int, episode: int) -> int:
  return int(np.random.SeedSequence([int(seed), int(episode)]).generate_state(1)[0])


# Breakout's minimal action set (ALE) and MiniBreakout's: NOOP, FIRE, RIGHT, LEFT.
NOOP, FIRE, RIGHT, LEFT = range(4)


def tracker_action(positions: Dict[str, int], geometry: Dict[str, int], rng: Optional[np.random.Generator] = None,
                   epsilon: float = 0.0) -> int:
  """The scripted ball tracker (seed 001 spec Sec. 4 A, a proposal): FIRE with no ball in play, else move the
  paddle's centre towards the ball's centre (NOOP within 1 pixel); with probability `epsilon` a uniform random
  action of the 4 instead (drawn from `rng`).

  `positions` is an environment's `object_positions()` with the screen columns `ball_col` (-1: no ball) and
  `paddle_col`; `geometry` has the `ball` and `paddle_w` widths: MiniBreakout and ALE Breakout give both."""
  if epsilon > 0.0 and rng is not None and rng.random() < epsilon:
    return int(rng.integers(0, 4))
  if positions['ball_col'] < 0:
    return FIRE
  error = (positions['ball_col'] + geometry['ball'] / 2) - (positions['paddle_col'] + geometry['paddle_w'] / 2)
  if error > 1:
    return RIGHT
  if error < -1:
    return LEFT
  return NOOP


def _make_policy(policy: str, env, epsilon: float) -> _Policy:
  inner = env.unwrapped
  if policy == 'random':
    return _Policy('random', lambda e, obs, rng: int(rng.integers(0, e.num_actions)))
  if policy == 'tracker':
    if not getattr(inner, 'has_object_positions', False) or not hasattr(inner, 'object_positions'):
      raise CollectError(f'--policy=tracker needs ball and paddle positions, which {type(inner).__name__} '
                         f'({getattr(inner, "game", "")}) has not: use Breakout or mini_breakout, or --policy=random')
    return _Policy('tracker', lambda e, obs, rng: tracker_action(inner.object_positions(), inner.geometry, rng,
                                                                 epsilon))
  return _saved_policy(policy[len('saved:'):], env)


def _saved_policy(directory: str, env) -> _Policy:
  """A SavedModel's `serving_default(frames uint8 [B, H, W, n*C]) -> action`, fed the last n frames."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top  (only the reader and saved policies need it)
  directory = os.path.expanduser(directory)
  try:
    loaded = tf.saved_model.load(directory)
  except (OSError, ValueError, tf.errors.OpError) as e:
    raise CollectError(f'--policy=saved:{directory}: not a readable SavedModel ({type(e).__name__}: '
                       f'{str(e).splitlines()[0] if str(e) else ""})') from None
  signature = getattr(loaded, 'signatures', {}).get('serving_default')
  if signature is None:
    raise CollectError(f'--policy=saved:{directory}: the SavedModel has no serving_default signature')
  inputs = signature.structured_input_signature[1]
  if 'frames' not in inputs or 'action' not in signature.structured_outputs:
    raise CollectError(f'--policy=saved:{directory}: serving_default must take `frames` and return `action`; it '
                       f'takes {sorted(inputs)} and returns {sorted(signature.structured_outputs)}')
  spec = inputs['frames']
  obs_shape = env.observation_spec().shape        # (1, H, W, C)
  h, w, c = obs_shape[1:]
  shape = spec.shape.as_list()
  if spec.dtype != tf.uint8 or len(shape) != 4 or shape[1:3] != [h, w] or not shape[3] or shape[3] % c:
    raise CollectError(f'--policy=saved:{directory}: its `frames` input is {spec.dtype.name} {shape}; the '
                       f'environment gives uint8 frames {h}x{w}x{c} (stacked n times on the last axis)')
  n = shape[3] // c
  stack = {'frames': None}

  def reset(obs):
    stack['frames'] = np.concatenate([obs] * n, axis=-1)

  def act(e, obs, rng):
    del e, rng
    frames = stack['frames']
    if frames is None:
      reset(obs)
      frames = stack['frames']
    out = signature(frames=tf.constant(frames))
    return int(np.asarray(out['action']).reshape(-1)[0])

  def push(obs):
    frames = stack['frames']
    frames[..., :-c] = frames[..., c:]
    frames[..., -c:] = obs

  return _Policy(f'saved:{directory}', act, n, reset, push)


def _frame_geometry(inner, frame_hw: Tuple[int, int]) -> Tuple[float, float, float, str]:
  """(row offset, row scale, column scale, kind) mapping the env's screen pixels (`ball_row`, `ball_col`,
  `paddle_col` of `object_positions()`) to the stored frame's pixels."""
  settings = getattr(inner, 'ale_settings', None)
  if settings is None:
    return 0.0, 1.0, 1.0, 'identity'
  crop = settings.get('crop_rows') or [0, 210]
  return float(crop[0]), frame_hw[0] / float(crop[1] - crop[0]), frame_hw[1] / 160.0, 'ale'


def _positions(inner, geometry) -> Dict[str, Any]:
  if not hasattr(inner, 'object_positions'):
    return {'lives': -1, 'ball_x': -1, 'ball_y': -1, 'paddle_x': -1, 'frame_ball_x': -1.0, 'frame_ball_y': -1.0,
            'frame_paddle_x': -1.0}
  pos = inner.object_positions()
  row0, sy, sx, _ = geometry
  has = getattr(inner, 'has_object_positions', False)
  ball = has and pos.get('ball_col', -1) >= 0
  return {
      'lives': int(pos.get('lives', -1)), 'ball_x': int(pos['ball_x']), 'ball_y': int(pos['ball_y']),
      'paddle_x': int(pos['paddle_x']),
      'frame_ball_x': round(pos['ball_col'] * sx, 3) if ball else -1.0,
      'frame_ball_y': round((pos['ball_row'] - row0) * sy, 3) if ball else -1.0,
      'frame_paddle_x': round(pos['paddle_col'] * sx, 3) if has else -1.0,
  }


def _write_png(path: str, frame: np.ndarray) -> None:
  import cv2  # pylint: disable=g-import-not-at-top
  img = frame[..., 0] if frame.shape[-1] == 1 else cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
  ok, buf = cv2.imencode('.png', img)
  if not ok:
    raise OSError(f'could not encode a PNG for {path}')
  tmp = path + '.tmp'
  with open(tmp, 'wb') as f:
    f.write(buf.tobytes())
  os.replace(tmp, path)


def _config(env_name, policy, seed, val_fraction, epsilon, max_episode_steps) -> Dict[str, Any]:
  return {'env': env_name, 'policy': policy, 'seed': int(seed), 'val_fraction': float(val_fraction),
          'epsilon': float(epsilon) if policy == 'tracker' else None, 'max_episode_steps': int(max_episode_steps)}


def _read_index(path: str) -> List[Dict[str, Any]]:
  with open(path, newline='') as f:
    reader = csv.DictReader(f)
    if reader.fieldnames is None or 'file' not in reader.fieldnames:
      raise FramesError(f'{path}: not a frames index (expected a CSV with the columns {", ".join(INDEX_COLUMNS)})')
    rows = []
    for row in reader:
      for k in _INT_COLUMNS:
        if k in row:
          row[k] = int(row[k])
      for k in _FLOAT_COLUMNS:
        if k in row:
          row[k] = float(row[k])
      rows.append(row)
  return rows


def _write_rows(path: str, rows: Sequence[Dict[str, Any]], mode: str = 'a') -> None:
  new = mode == 'w' or not os.path.exists(path)
  with open(path, mode, newline='') as f:
    writer = csv.DictWriter(f, fieldnames=INDEX_COLUMNS)
    if new:
      writer.writeheader()
    for row in rows:
      writer.writerow({k: row[k] for k in INDEX_COLUMNS})
    f.flush()
    os.fsync(f.fileno())


def _write_report(output_dir: str, report: Dict[str, Any]) -> None:
  tmp = os.path.join(output_dir, REPORT_FILE + '.tmp')
  with open(tmp, 'w') as f:
    json.dump(report, f, indent=1)
  os.replace(tmp, os.path.join(output_dir, REPORT_FILE))


def read_report(data_dir: str) -> Optional[Dict[str, Any]]:
  """collect_report.json of a frames directory, or None."""
  path = os.path.join(data_dir, REPORT_FILE)
  if not os.path.isfile(path):
    return None
  with open(path) as f:
    return json.load(f)


def is_complete(data_dir: str, num_frames: Optional[int] = None) -> bool:
  """Whether `data_dir` holds a finished collection (of at least `num_frames` frames when given)."""
  report = read_report(data_dir) if os.path.isdir(data_dir) else None
  if not report or not report.get('complete'):
    return False
  return num_frames is None or report['frames'] >= num_frames


def _resume_state(output_dir: str, config: Dict[str, Any]):
  """(kept rows, kept episode records) of an earlier collection in output_dir with the same settings."""
  report = read_report(output_dir)
  index_path = os.path.join(output_dir, INDEX_FILE)
  if report is None:
    if os.path.isdir(output_dir) and os.listdir(output_dir):
      leftovers = sorted(os.listdir(output_dir))
      if set(leftovers) - {FRAMES_DIR, INDEX_FILE}:
        raise CollectError(f'--output_dir={output_dir} is not empty and holds no {REPORT_FILE} (found '
                           f'{", ".join(leftovers[:5])}): give a new or empty directory')
    return [], []
  old = report.get('config', {})
  diffs = [f'{k} {old.get(k)!r} (now {v!r})' for k, v in config.items() if old.get(k) != v]
  if diffs:
    raise CollectError(f'--output_dir={output_dir} holds frames collected with other settings: {"; ".join(diffs)}. '
                       'Use a new --output_dir, or the same settings to resume')
  episodes = [e for e in report.get('episodes', []) if e.get('end') in ('terminated', 'truncated', 'max_steps')]
  keep = {e['episode'] for e in episodes}
  rows = _read_index(index_path) if os.path.isfile(index_path) else []
  kept = [r for r in rows if r['episode'] in keep]
  for e in episodes:     # an episode is kept only whole
    n = sum(1 for r in kept if r['episode'] == e['episode'])
    if n != e['frames']:
      raise CollectError(f'{index_path} has {n} rows of episode {e["episode"]}, {REPORT_FILE} says {e["frames"]}: '
                         'the directory was changed by hand; give a new --output_dir')
  # Episodes must be 0..k-1 (each is seeded by its number); drop anything after a gap.
  episodes.sort(key=lambda e: e['episode'])
  contiguous = []
  for i, e in enumerate(episodes):
    if e['episode'] != i:
      break
    contiguous.append(e)
  keep = {e['episode'] for e in contiguous}
  kept = [r for r in kept if r['episode'] in keep]
  frames_root = os.path.join(output_dir, FRAMES_DIR)
  if os.path.isdir(frames_root):
    for name in os.listdir(frames_root):
      if not (name.startswith('ep') and name[2:].isdigit() and int(name[2:]) in keep):
        shutil.rmtree(os.path.join(frames_root, name), ignore_errors=True)
  _write_rows(index_path, kept, mode='w')
  return kept, contiguous


def collect(env_name: str, output_dir: str, *, make_env: Callable[..., Any], num_frames: int = 2000,
            policy: str = 'tracker', seed: int = 0, val_fraction: float = 0.1, epsilon: float = DEFAULT_EPSILON,
            max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS, print_fn: Callable[[str], None] = print,
            progress_interval_s: float = 10.0) -> Dict[str, Any]:
  """Plays `env_name` with `policy` and writes PNG frames + index.csv + collect_report.json into `output_dir`
  (module docstring); resumes a collection there. Returns the report.

  `make_env(env_name, seed=..., num_frames=1)` builds the environment: pass `rlcv_tf.envs.registry.make_env` (data
  sets sit below the environments in the house's layers, so this module does not import them)."""
  check_request(env_name, policy, num_frames, val_fraction, epsilon, max_episode_steps)
  output_dir = os.path.expanduser(output_dir)
  config = _config(env_name, policy, seed, val_fraction, epsilon, max_episode_steps)
  previous = read_report(output_dir) if os.path.isdir(output_dir) else None
  if (previous and previous.get('complete') and previous.get('config') == config
      and previous['frames'] >= num_frames):
    print_fn(f'[atari_frames] {output_dir} already holds {previous["frames"]:,} frames of {env_name} '
             f'({len(previous["episodes"])} episodes) with these settings: nothing to do')
    return previous
  rows, episodes = _resume_state(output_dir, config)
  print_fn(f'[atari_frames] collecting {num_frames:,} frames of {env_name} with the {policy} policy into '
           f'{output_dir}' + (f' (resuming: {len(rows):,} frames of {len(episodes)} finished episodes kept)'
                              if rows else ''))
  env = make_env(env_name, seed=seed, num_frames=1)
  inner = env.unwrapped
  spec = env.observation_spec()
  try:
    if spec.dtype != np.uint8 or len(spec.shape) != 4 or spec.shape[0] != 1 or spec.shape[-1] not in (1, 3):
      raise CollectError(f'--env={env_name}: observations are {spec.dtype} {spec.shape}, not uint8 frames '
                         '[1, H, W, 1 or 3]')
    pol = _make_policy(policy, env, epsilon)
  except CollectError:
    env.close()
    raise
  frame_shape = [int(d) for d in spec.shape[1:]]
  geometry = _frame_geometry(inner, spec.shape[1:3])
  settings = getattr(inner, 'ale_settings', None) or getattr(inner, 'settings', None) or {}
  os.makedirs(os.path.join(output_dir, FRAMES_DIR), exist_ok=True)
  index_path = os.path.join(output_dir, INDEX_FILE)
  if not rows:
    _write_rows(index_path, [], mode='w')
  start = time.monotonic()
  resumed_frames = len(rows)
  total = len(rows)
  report = {
      'config': config, 'num_frames': int(num_frames), 'env_settings': settings, 'frame_shape': frame_shape,
      'format': 'PNG (lossless; never JPEG, which smears 1-pixel sprites: seed 002 S:L861)',
      'policy_note': POLICY_NOTE, 'index_columns': list(INDEX_COLUMNS),
      'position_units': {'ball_x/ball_y/paddle_x': 'RAM (AtariARI) for ALE Breakout, pixels for mini_breakout',
                         'frame_*': 'pixels of the stored frame (top-left of the ball, left edge of the paddle)'},
      'split_rule': 'by episode: episodes 1, 1+k, 1+2k, ... are val, k = round(1 / val_fraction)',
      'episodes': list(episodes), 'complete': False,
  }
  last_print = time.monotonic()
  episode = len(episodes)
  try:
    while total < num_frames:
      ep_seed = _episode_seed(seed, episode)
      if hasattr(inner, 'reseed'):
        inner.reseed(ep_seed)
      rng = np.random.default_rng([int(seed), episode, 1])
      ep_dir = os.path.join(output_dir, FRAMES_DIR, f'ep{episode:05d}')
      if os.path.isdir(ep_dir):
        shutil.rmtree(ep_dir)
      os.makedirs(ep_dir)
      split = split_of(episode, val_fraction)
      ts = env.reset()
      pol.reset(ts.observation)
      ep_rows, step, reward, end, score = [], 0, 0.0, None, 0.0
      while True:
        frame = ts.observation[0]
        rel = os.path.join(FRAMES_DIR, f'ep{episode:05d}', f'{step:06d}.png')
        _write_png(os.path.join(output_dir, rel), frame)
        row = {'env': env_name, 'episode': episode, 'step': step, 'file': rel, 'split': split, 'action': -1,
               'reward': reward}
        row.update(_positions(inner, geometry))
        ep_rows.append(row)
        total += 1
        now = time.monotonic()
        if now - last_print >= progress_interval_s:
          rate = (total - resumed_frames) / max(now - start, 1e-9)
          print_fn(f'[atari_frames] {total:,}/{num_frames:,} frames, episode {episode}, {rate:,.0f} frames/s')
          last_print = now
        if ts.last():
          end = 'truncated' if ts.discount > 0 else 'terminated'
          break
        if max_episode_steps and step >= max_episode_steps:
          end = 'max_steps'
          break
        if total >= num_frames:
          end = 'cut'
          break
        action = pol.act(env, ts.observation, rng)
        row['action'] = action
        ts = env.step(np.array([action], np.int32))
        pol.push(ts.observation)
        reward = float(ts.reward[0])
        score += reward
        step += 1
      _write_rows(index_path, ep_rows)
      info = env.episode_info()
      episodes.append({'episode': episode, 'split': split, 'frames': len(ep_rows), 'steps': step, 'score': score,
                       'end': end, 'seed': ep_seed, 'env_score': float(info.get('score', score))})
      report['episodes'] = episodes
      report['frames'] = total
      _write_report(output_dir, report)
      episode += 1
  finally:
    env.close()
  elapsed = time.monotonic() - start
  report.update(_summary(episodes))
  report['frames'] = total
  report['complete'] = True
  report['timing'] = {'seconds': round(elapsed, 2), 'frames_this_run': total - resumed_frames,
                      'frames_per_s': round((total - resumed_frames) / max(elapsed, 1e-9), 1),
                      'resumed_from_frames': resumed_frames}
  _write_report(output_dir, report)
  s = report['splits']
  print_fn(f'[atari_frames] done: {total:,} frames of {env_name} ({len(episodes)} episodes; train '
           f'{s["train"]["frames"]:,} frames / {s["train"]["episodes"]} episodes, val {s["val"]["frames"]:,} / '
           f'{s["val"]["episodes"]}; mean score {report["mean_score"]:.2f}) in {output_dir}')
  if s['val']['episodes'] == 0 and val_fraction > 0:
    print_fn('[atari_frames] note: no val episode yet (the second episode is the first): collect more frames or '
             'lower --max_episode_steps')
  return report


def _summary(episodes: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
  splits = {s: {'episodes': 0, 'frames': 0} for s in ('train', 'val')}
  for e in episodes:
    splits[e['split']]['episodes'] += 1
    splits[e['split']]['frames'] += e['frames']
  finished = [e['score'] for e in episodes if e['end'] != 'cut']
  return {'splits': splits, 'mean_score': float(np.mean(finished)) if finished else float('nan')}


# --------------------------------------------------------------------------------------------------- readers
class FrameIndex(list):
  """Index rows (dicts) of a split; `column(name)` / `index[name]` gives one column as a NumPy array."""

  skipped: List[Tuple[str, str]]

  def __init__(self, rows=(), skipped=()):
    super().__init__(rows)
    self.skipped = list(skipped)

  def column(self, name: str) -> np.ndarray:
    if not self:
      return np.zeros(0)
    if name not in self[0]:
      raise KeyError(f'no index column {name!r}; columns: {", ".join(self[0])}')
    return np.asarray([r[name] for r in self])

  def __getitem__(self, key):
    if isinstance(key, str):
      return self.column(key)
    return super().__getitem__(key)


def _no_png(data_dir: str) -> FramesError:
  return FramesError(f'{data_dir}: no PNG frames there; collect them with `python -m launchers.atari_frames '
                     f'--output_dir={data_dir}`')


def _list_rows(data_dir: str, split: str) -> List[Dict[str, Any]]:
  """The index rows of `split` (paths made absolute), or all PNGs of a folder without index.csv."""
  data_dir = os.path.expanduser(data_dir)
  if split not in SPLITS:
    raise FramesError(f'split={split!r}: unknown split; valid values: {", ".join(SPLITS)}')
  if not os.path.isdir(data_dir):
    raise FramesError(f'{data_dir} is not a directory; collect frames with `python -m launchers.atari_frames '
                      f'--output_dir={data_dir}`')
  index_path = os.path.join(data_dir, INDEX_FILE)
  if os.path.isfile(index_path):
    rows = _read_index(index_path)
    if not rows:
      raise _no_png(data_dir)
    chosen = [dict(r, path=os.path.join(data_dir, r['file'])) for r in rows if split == 'all' or r['split'] == split]
    if not chosen:
      raise FramesError(f'{data_dir}: no {split} frames (of {len(rows):,}; the val split takes whole episodes, the '
                        'second being the first): collect more frames')
    return chosen
  paths = []
  for root, _, files in os.walk(data_dir):
    paths += [os.path.join(root, f) for f in files if f.lower().endswith('.png')]
  if not paths:
    raise _no_png(data_dir)
  if split == 'val':
    raise FramesError(f'{data_dir} has PNGs but no {INDEX_FILE}, so no val split: use split "train" or "all", or '
                      'collect with `python -m launchers.atari_frames`')
  return [{'file': os.path.relpath(p, data_dir), 'path': p} for p in sorted(paths)]


def _decode(path: str) -> Tuple[Optional[np.ndarray], Optional[str]]:
  import cv2  # pylint: disable=g-import-not-at-top
  try:
    with open(path, 'rb') as f:
      data = f.read()
  except OSError as e:
    return None, f'unreadable ({e.strerror or e})'
  if not data.startswith(b'\x89PNG\r\n\x1a\n'):
    return None, 'not a PNG file' if data else 'empty file'
  img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
  if img is None:
    return None, 'does not decode (truncated or corrupt PNG)'
  if img.ndim == 2:
    img = img[..., None]
  elif img.shape[-1] == 3:
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
  elif img.shape[-1] == 4:
    img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
  return img, None


def _decode_all(rows, num_threads: int = 4):
  with concurrent.futures.ThreadPoolExecutor(num_threads) as pool:
    return list(pool.map(lambda r: _decode(r['path']), rows, chunksize=64))


def _check_skips(data_dir, split, n, skipped, max_skipped_fraction):
  if len(skipped) > max_skipped_fraction * n:
    first = ', '.join(f'{os.path.basename(p)} ({why})' for p, why in skipped[:3])
    raise FramesError(f'{data_dir}: {len(skipped)} of {n} {split} PNGs are unreadable (more than '
                      f'{max_skipped_fraction:.0%}), e.g. {first}: collect the frames again')


def load_frames(data_dir: str, split: str = 'train', max_skipped_fraction: float = 0.05,
                num_threads: int = 4) -> Tuple[np.ndarray, FrameIndex]:
  """(uint8 [N, H, W, C], FrameIndex) of a split, in index order; unreadable PNGs are skipped (their rows
  dropped) and listed in `index.skipped` as (path, reason)."""
  rows = _list_rows(data_dir, split)
  decoded = _decode_all(rows, num_threads)
  images, kept, skipped = [], [], []
  for row, (img, why) in zip(rows, decoded):
    if img is None:
      skipped.append((row['path'], why))
      continue
    if images and img.shape != images[0].shape:
      raise FramesError(f'{row["path"]}: a {img.shape} frame among {images[0].shape} ones: one frames directory '
                        'holds one environment\'s frames')
    images.append(img)
    kept.append(row)
  _check_skips(data_dir, split, len(rows), skipped, max_skipped_fraction)
  if not images:
    raise _no_png(data_dir)
  return np.stack(images), FrameIndex(kept, skipped)


def frames_dataset(data_dir: str, split: str = 'train', batch_size: int = 64, shuffle: bool = True, seed: int = 0,
                   with_positions: bool = False, drop_remainder: bool = False, repeat: bool = False,
                   max_skipped_fraction: float = 0.05, verify: bool = True):
  """tf.data.Dataset of float32 [B, H, W, C] batches in [0, 1] of a split (module docstring). With `shuffle` the
  order is reshuffled every pass from `seed`. `dataset.skipped_files` lists the unreadable PNGs left out;
  `verify=False` skips the decode pass (a file that fails later is then dropped by `ignore_errors`, uncounted)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top  (only the reader and saved policies need it)
  if batch_size < 1:
    raise FramesError(f'batch_size={batch_size}: must be >= 1')
  rows = _list_rows(data_dir, split)
  skipped = []
  shape = None
  if verify:
    good = []
    for row, (img, why) in zip(rows, _decode_all(rows)):
      if img is None:
        skipped.append((row['path'], why))
      else:
        shape = shape or img.shape
        good.append(row)
    _check_skips(data_dir, split, len(rows), skipped, max_skipped_fraction)
    rows = good
  if not rows:
    raise _no_png(data_dir)
  if shape is None:
    img, why = _decode(rows[0]['path'])
    if img is None:
      raise FramesError(f'{rows[0]["path"]}: {why}')
    shape = img.shape
  channels = int(shape[-1])
  columns = {'path': tf.constant([r['path'] for r in rows])}
  if with_positions:
    for k in POSITION_COLUMNS:
      columns[k] = tf.constant([float(r.get(k, -1)) for r in rows], tf.float32)
  ds = tf.data.Dataset.from_tensor_slices(columns)
  if shuffle:
    ds = ds.shuffle(len(rows), seed=seed, reshuffle_each_iteration=True)
  if repeat:
    ds = ds.repeat()

  def load(row):
    image = tf.io.decode_png(tf.io.read_file(row['path']), channels=channels)
    image = tf.ensure_shape(image, shape)
    image = tf.cast(image, tf.float32) / 255.0
    if with_positions:
      return image, {k: row[k] for k in POSITION_COLUMNS}
    return image

  ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).ignore_errors()
  ds = ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)
  ds.skipped_files = skipped
  ds.num_frames = len(rows)
  return ds
