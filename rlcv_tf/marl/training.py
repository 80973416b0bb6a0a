"""Chapter 4 training run, SEED-style on one machine: actor processes step environments, the learner runs
central inference in one thread and V-trace updates in the main thread.

`train(cfg, logdir)` writes under `logdir`:
  config.json          the resolved configuration (a re-run checks it and resumes)
  checkpoints/         tf.train.CheckpointManager: network, Adam state, frame and update counters
  events.*             TensorBoard: episode return per agent and team, frames/s, losses, V-trace statistics
  saved_model/         the policy as a SavedModel with a serving signature (see `export.py`)
  <record_dir>/        with `record_dir`: observation replays of the actors' episodes (`replays.py` format)
`init_from` (a pre-training logdir or checkpoint) initialises torso and attention of a FRESH run only; a resumed
run restores its own checkpoint instead.
Re-running with the same `logdir` resumes from the latest checkpoint, e.g. with a larger `total_frames`.
"""

import dataclasses
import json
import logging
import os
import time
from typing import Callable, Dict, List, Optional

import numpy as np
import tensorflow as tf

from rlcv_tf.core import checkpointing
from rlcv_tf.core import progress
from rlcv_tf.core import runs
from rlcv_tf.marl import agents as agents_lib
from rlcv_tf.marl import config as config_lib
from rlcv_tf.marl import export
from rlcv_tf.marl import learner as learner_lib
from rlcv_tf.marl import replays
from rlcv_tf.marl import selfplay
from rlcv_tf.runtime import actors as actors_lib
from rlcv_tf.runtime import inference as inference_lib
from rlcv_tf.runtime import pools
from rlcv_tf.runtime import unrolls as unrolls_lib

# Fields that fix the shapes of the saved variables: a resumed run must not change them.
# `aux` decides whether the row/column heads exist; `progressive_from` defines the frozen column's architecture.
_ARCHITECTURE_FIELDS = ('env', 'model', 'env_kwargs', 'num_frames', 'stack_channels', 'feature_dim', 'num_heads',
                        'aux', 'progressive_from')


ResumeMismatchError = runs.ResumeMismatchError   # the launcher prints it as one error line


@dataclasses.dataclass
class TrainResult:
  frames: int
  updates: int
  episodes: List[Dict]
  saved_model: str
  actor_restarts: int
  wall_s: float
  steady_frames_per_second: float  # from the end of the first update (compilation, start-up) to the last
  losses: List[float] = dataclasses.field(default_factory=list)   # loss/total of every update of this session


def check_resume(cfg: config_lib.MarlConfig, logdir: str):
  runs.check_same_settings(logdir, config_lib.MarlConfig.load(logdir), cfg, _ARCHITECTURE_FIELDS)


def actor_configs(cfg: config_lib.MarlConfig, start_frames: int = 0) -> List[actors_lib.ActorConfig]:
  """One config per actor. Env seeds derive from (seed, frames at the start of this session, actor), so a
  resumed run plays new episodes instead of replaying the first session's."""
  return [actors_lib.ActorConfig(cfg.env, cfg.effective_env_kwargs, seed=runs.derived_seed(cfg.seed, start_frames, i),
                                 num_frames=cfg.num_frames) for i in range(cfg.env_count)]


def make_actor_pool(cfg: config_lib.MarlConfig, start_frames: int = 0) -> actors_lib.ActorPool:
  """The run's actors: in this process (runtime=inline), one process each here (backend=local; a unix socket,
  or TCP when --learner_host / --learner_port are given) or on a Ray cluster's nodes (backend=ray)."""
  return pools.make_pool(actor_configs(cfg, start_frames), runtime=cfg.runtime, backend=cfg.backend,
                         ray_address=cfg.ray_address, learner_host=cfg.learner_host, learner_port=cfg.learner_port,
                         actor_timeout_s=cfg.actor_timeout_s, max_restarts=cfg.max_actor_restarts)


def _episode_scalars(episodes: List[Dict]) -> Dict[str, float]:
  returns = np.stack([e['return'] for e in episodes])          # [E, N]
  out = {'episode/return_mean_agent': float(returns.mean()),
         'episode/return_team': float(returns.sum(axis=1).mean()),
         'episode/length': float(np.mean([e['length'] for e in episodes]))}
  for i in range(returns.shape[1]):
    out[f'episode/return_agent_{i}'] = float(returns[:, i].mean())
  for key in ('score_home', 'score_away'):
    if all(key in e for e in episodes):
      out[f'episode/{key}'] = float(np.mean([e[key] for e in episodes]))
  if 'episode/score_home' in out and 'episode/score_away' in out:
    out['episode/goal_difference'] = out['episode/score_home'] - out['episode/score_away']
  if all('opponent_return' in e for e in episodes):   # self-play: the right team's agents
    out['episode/opponent_return_team'] = float(np.mean([np.sum(e['opponent_return']) for e in episodes]))
  # selfplay_fixed: the same per frozen opponent, so progress against each one can be read apart.
  for name in sorted({e['opponent'] for e in episodes if 'opponent' in e}):
    group = [e for e in episodes if e.get('opponent') == name]
    out[f'opponents/{name}/return_team'] = float(np.mean([np.sum(e['return']) for e in group]))
    if all('score_home' in e and 'score_away' in e for e in group):
      out[f'opponents/{name}/goal_difference'] = float(np.mean([e['score_home'] - e['score_away'] for e in group]))
  return out


def train(cfg: config_lib.MarlConfig, logdir: str,
          pool_factory: Callable[[config_lib.MarlConfig, int], actors_lib.ActorPool] = make_actor_pool,
          print_fn: Callable[[str], None] = print) -> TrainResult:
  cfg.validate()
  start = time.monotonic()
  check_resume(cfg, logdir)
  observation_shape, num_actions, (num_home, num_right) = agents_lib.env_layout(cfg)
  opponents, agent_groups = None, None
  if cfg.opponent == 'selfplay_fixed':
    # Frozen opponents act in the inference thread; the learner sees (and trains) the home team only.
    policies = selfplay.load_opponents(cfg.opponent_agents, observation_shape[1:])
    opponents = selfplay.FrozenOpponents(policies, num_right, seed=cfg.seed)
    observation_shape = (num_home,) + tuple(observation_shape[1:])
    print_fn(f'[marl] selfplay_fixed: {num_home} home agents vs {num_right} right field players driven by one of '
             f'{", ".join(opponents.names)} per episode (goalies built-in)')
  elif cfg.opponent == 'selfplay_mixed':
    agent_groups = (num_home, num_right)
    print_fn(f'[marl] selfplay_mixed: {num_home} home agents and {num_right} right-team agents share the trained '
             'policy (two attention groups, both trained on); the other right players are built-in')
  os.makedirs(logdir, exist_ok=True)

  estimate = learner_lib.estimate_update_bytes(cfg, observation_shape)
  line = (f'[marl] learner memory per update: ~{estimate / 2**30:.1f} GB of activations, forward and backward '
          f'(batch {cfg.batch_size} x {cfg.unroll_length + 1} steps x {observation_shape[0]} agents at {observation_shape[1]}x'
          f'{observation_shape[2]}, {cfg.micro_batches} micro-batch{"es" if cfg.micro_batches > 1 else ""})')
  available = _available_memory_bytes()
  if available and estimate > 0.8 * available:
    line += (f'; only {available / 2**30:.1f} GB is free: raise --micro_batches (a divisor of --batch_size) to '
             'split the update, at no change to the result')
  print_fn(line)
  learner = learner_lib.Learner(cfg, observation_shape, num_actions, agent_groups=agent_groups,
                                shared_channels=agents_lib.env_shared_channels(cfg))
  ckpt = checkpointing.RunCheckpointer(
      learner.checkpoint, logdir, interval_s=cfg.checkpoint_interval_s,
      export_fn=lambda path: export.export_policy(learner.model, path, observation_shape[1:]))
  if ckpt.restore_latest():
    print_fn(f'[marl] resumed from {ckpt.latest} at {int(learner.frames.numpy()):,} frames')
  elif cfg.init_from:
    print_fn(f'[marl] {learner.initialise_from(cfg.init_from)}')
  if cfg.model in config_lib.PROGRESSIVE_MODELS:
    print_fn(f'[marl] {cfg.model}: frozen column from {learner.pretrained_meta["checkpoint"]} '
             f'({learner.pretrained_meta["objective"]} pre-training)')
  start_frames = int(learner.frames.numpy())
  # The action sampler, like the actors' environments, starts a new stream in every session.
  learner.reseed_sampler(runs.derived_seed(cfg.seed, start_frames, 1 << 20))
  writer = checkpointing.open_writer(logdir, json.loads(cfg.to_json()), start_frames, print_fn, '[marl] ')
  saved_model_dir = ckpt.saved_model_dir

  episodes_all: List[Dict] = []
  losses: List[float] = []
  restarts = 0
  steady = (None, None)  # (time, frames) after the first update of this session
  steady_end = None
  frames = start_frames
  stop = runs.StopOnSignal(print_fn, prefix='[marl] ')
  failure: Optional[BaseException] = None
  if frames >= cfg.total_frames:
    print_fn(f'[marl] {logdir} already holds {frames:,} frames >= total_frames={cfg.total_frames:,}; '
             'nothing to train (raise --total_frames to continue)')
  else:
    pool = pool_factory(cfg, start_frames)
    recorder = None
    if cfg.record_dir:
      recorder = replays.ReplayRecorder(cfg.record_dir, cfg.num_frames, num_actions, every=cfg.record_every,
                                        frames_fn=lambda: int(learner.frames.numpy()))
    server = inference_lib.InferenceServer(
        pool, lambda obs: learner.infer(obs)[:2], cfg.unroll_length,
        max_queued_unrolls=cfg.max_queued_unrolls or 2 * cfg.batch_size,
        step_hook=recorder.add_step if recorder else None, opponent=opponents, inline=cfg.runtime == 'inline')
    rate = progress.RateMeter()
    last_log = last_summary = time.monotonic()
    recent: List[Dict] = []
    logs: Dict[str, float] = {}
    wait_s = train_s = 0.0  # learner time waiting for unrolls vs. updating
    stacked = None          # the batch arrays, reused by every update
    with stop:
      try:
        pool.start()
        if getattr(pool, 'address', '').startswith('tcp:'):
          print_fn(f'[marl] learner listening on {pool.address}')
        server.start()
        rate.update(frames)
        while frames < cfg.total_frames and not stop.requested:
          t0 = time.monotonic()
          batch = server.get_unrolls(cfg.batch_size, should_stop=lambda: stop.requested is not None)
          if batch is None:
            break
          t1 = time.monotonic()
          stacked = unrolls_lib.stack_batch(batch, out=stacked)   # into the last batch's arrays: train is done
          logs = learner.train(stacked)
          losses.append(logs['loss/total'])
          wait_s += t1 - t0
          train_s += time.monotonic() - t1
          frames = int(learner.frames.numpy())
          rate.update(frames)
          if steady[0] is None:
            steady = (time.monotonic(), frames)
          new_eps = server.pop_episodes()
          for e in new_eps:
            e['frames'] = frames  # learner frame count when the episode was reported (for learning curves)
            selfplay.split_team_returns(e, num_home)
          episodes_all.extend(new_eps)
          recent = (recent + new_eps)[-20:]
          now = time.monotonic()
          with writer.as_default(step=frames):
            if new_eps:
              for k, v in _episode_scalars(new_eps).items():
                tf.summary.scalar(k, v)
            if now - last_summary >= cfg.summary_interval_s or frames >= cfg.total_frames:
              for k, v in logs.items():
                tf.summary.scalar(k, v)
              tf.summary.scalar('throughput/frames_per_second', rate.rate)
              tf.summary.scalar('runtime/actor_restarts', pool.restarts)
              tf.summary.scalar('runtime/queued_unrolls', server.unrolls.qsize())
              tf.summary.scalar('runtime/learner_wait_fraction', wait_s / max(1e-9, wait_s + train_s))
              tf.summary.scalar('runtime/inference_seconds_per_env_step',
                                server.infer_seconds / max(1, server.env_steps))
              if recorder is not None:
                tf.summary.scalar('replays/episodes_written', recorder.episodes_written)
              last_summary = now
          if now - last_log >= cfg.log_interval_s or frames >= cfg.total_frames:
            print_fn(_progress_line(frames, cfg.total_frames, rate, recent, logs, pool.restarts,
                                    server.running_episodes(), num_home))
            last_log = now
          ckpt.maybe_save(frames)
      except Exception as e:  # pylint: disable=broad-except
        failure = e
      finally:
        server.stop()
        pool.close()
        writer.flush()
      steady_end = time.monotonic()
      restarts = pool.restarts
      if recorder is not None:
        print_fn(f'[marl] recorded {recorder.episodes_written} episodes to {cfg.record_dir} '
                 f'({recorder.writer.num_episodes} there in all)')
      frames = int(learner.frames.numpy())
      if failure is not None or stop.requested:
        # Keep what was learned: checkpoint and SavedModel first, then say where, then stop.
        ckpt.save_and_stop(frames, failure, stop, print_fn, '[marl] ')
    ckpt.save(frames)
  if frames < cfg.total_frames:
    raise RuntimeError('training stopped before total_frames was reached')
  ckpt.export()
  print_fn(f'[marl] done: {frames:,} frames, {int(learner.updates.numpy()):,} updates in '
           f'{progress.format_duration(time.monotonic() - start)}; checkpoint {ckpt.latest}; '
           f'SavedModel {saved_model_dir}; TensorBoard: tensorboard --logdir={logdir}')
  steady_fps = 0.0
  if steady[0] is not None and frames > steady[1]:
    steady_fps = (frames - steady[1]) / max(1e-9, steady_end - steady[0])
  return TrainResult(frames, int(learner.updates.numpy()), episodes_all, saved_model_dir, restarts,
                     time.monotonic() - start, steady_fps, losses)


def _available_memory_bytes() -> int:
  """Free host memory (0 if unknown). GPU users compare the estimate with their device's memory."""
  try:
    import psutil  # pylint: disable=g-import-not-at-top
  except ImportError:
    return 0
  return int(psutil.virtual_memory().available)


def _progress_line(frames, total, rate, recent, logs, restarts, running=(), num_home=None) -> str:
  parts = []
  if recent:
    r = np.stack([e['return'] for e in recent])
    parts.append(f'return/agent {r.mean():+.3f} (team {r.sum(axis=1).mean():+.2f}, last {len(recent)} episodes)')
  elif running:
    # Before the first episode ends (GRF 5v5: 3,000 steps), show the running episodes' return so far.
    r = np.stack([np.asarray(ret)[:num_home] for ret, _ in running])
    steps = int(np.mean([length for _, length in running]))
    parts.append(f'no finished episode yet; return/agent so far {r.mean():+.3f} (team '
                 f'{r.sum(axis=1).mean():+.2f}, {len(running)} running episodes, ~{steps:,} steps in)')
  else:
    parts.append('no finished episode yet')
  if logs:
    parts.append(f'loss {logs["loss/total"]:.4f} entropy {logs["policy/entropy"]:.3f}')
    if 'aux/nll_row' in logs:
      parts.append(f'aux row {logs["aux/nll_row"]:.3f} col {logs["aux/nll_col"]:.3f}')
  if restarts:
    parts.append(f'actor restarts {restarts}')
  return progress.line('[marl] ', frames, total, rate, parts)
