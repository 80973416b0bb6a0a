"""DQN training on one environment of the registry (seed 003 Algorithm 1 and its Nature 2015 form; spec Sec. 4.5).

Each agent step: an epsilon-greedy action (epsilon from `LinearSchedule(eps_start, eps_end, eps_steps)`), the
transition into `runtime.replay.TransitionReplay` (frames stored once; a termination has discount 0, a time-limit
cut keeps its last observation and discount 1), and, once `learning_starts` steps are stored, `replay_ratio`
learner updates per agent step on uniform minibatches (a ratio of 0.25 is one update every 4 steps, Nature's
setting; the fractional part is carried, so the ratio is exact over the run). Training rewards are sign-clipped
where `reward_clip` (Atari); raw scores are logged. Evaluation: `eval_episodes` episodes at epsilon `eval_epsilon`
(0.05) on held-out seeds, at the end of the run.

Variants (`VARIANTS`): 'slides' (Algorithm 1 as the slides show it: replay, no target network, squared error;
the MLP on state vectors), 'nips2013' (the same on pixels, the 2013 network), 'nature2015' (target network every
C = `target_update_period` updates, Huber, Nature's RMSProp, its network), 'mlp' (state vectors with a target
network and Huber: the usual small-task DQN). `double` swaps in double-DQN targets.

A run writes config.json, checkpoints (the networks, the optimiser, the counters and the replay memory as .npz;
also on Ctrl-C / SIGTERM; re-running resumes), TensorBoard, returns.png, eval.json and a SavedModel (`q_values`,
`act`; rlcv_tf/rl_basics/export.py).
"""

import collections
import dataclasses
import json
import os
import time
from typing import Callable, Dict, List, Optional

import numpy as np
import tensorflow as tf

from rlcv_tf.core import checkpointing
from rlcv_tf.core import curves
from rlcv_tf.core import episode_log
from rlcv_tf.core import progress
from rlcv_tf.core import runs
from rlcv_tf.envs import registry
from rlcv_tf.rl_basics import dqn
from rlcv_tf.rl_basics import exploration
from rlcv_tf.rl_basics import export
from rlcv_tf.runtime import replay as replay_lib

PREFIX = '[dqn] '
VARIANTS = ('slides', 'nips2013', 'nature2015', 'mlp')
PIXEL_VARIANTS = ('nips2013', 'nature2015')
EPISODES_FILE = 'episodes.jsonl'
REPLAY_FILE = 'replay.npz'


@dataclasses.dataclass(frozen=True)
class DQNRunConfig(runs.ConfigRecord):
  env: str = 'cartpole'
  variant: str = 'mlp'
  double: bool = False
  total_steps: int = 30_000
  replay_ratio: float = 1.0
  learning_starts: int = 1_000
  buffer_size: int = 50_000
  batch_size: int = 64
  gamma: float = 0.99
  learning_rate: float = 1e-3
  target_update_period: int = 500
  eps_start: float = 1.0
  eps_end: float = 0.05
  eps_steps: int = 10_000
  eval_epsilon: float = 0.05
  eval_episodes: int = 20
  num_frames: int = 1
  reward_clip: bool = False
  hidden: tuple = (64, 64)
  seed: int = 0
  log_interval_s: float = 10.0
  checkpoint_interval_s: float = 600.0

  def validate(self) -> 'DQNRunConfig':
    if self.variant not in VARIANTS:
      raise ValueError(f'variant: unknown value {self.variant!r}; valid values: {", ".join(VARIANTS)}')
    if not 0.0 <= self.gamma <= 1.0:
      raise ValueError(f'gamma: must lie in [0, 1], got {self.gamma}')
    if not self.replay_ratio > 0:
      raise ValueError(f'replay_ratio: learner updates per agent step must be > 0, got {self.replay_ratio}')
    for name in ('total_steps', 'buffer_size', 'batch_size', 'eps_steps', 'num_frames'):
      if int(getattr(self, name)) < 1:
        raise ValueError(f'{name}: must be >= 1, got {getattr(self, name)}')
    if self.learning_starts < self.batch_size:
      raise ValueError(f'learning_starts: must be >= batch_size={self.batch_size}, got {self.learning_starts}')
    for name in ('eps_start', 'eps_end', 'eval_epsilon'):
      if not 0.0 <= getattr(self, name) <= 1.0:
        raise ValueError(f'{name}: must lie in [0, 1], got {getattr(self, name)}')
    return self

  def learner_config(self) -> dqn.DQNConfig:
    v = self.variant
    return dqn.DQNConfig(
        network='mlp' if v in ('slides', 'mlp') else v, gamma=self.gamma,
        loss='mse' if v in ('slides', 'nips2013') else 'huber',
        target_update_period=0 if v in ('slides', 'nips2013') else self.target_update_period,
        double=self.double, optimizer='rmsprop' if v == 'nature2015' else 'adam',
        learning_rate=self.learning_rate, hidden=tuple(self.hidden))


def check_env(cfg: DQNRunConfig):
  """(observation shape, num_actions) of cfg.env; ValueError for continuous actions or a network that does not fit."""
  registry.check_available(cfg.env)
  layout = registry.probe(cfg.env, num_frames=cfg.num_frames)
  if layout.continuous_actions:
    raise ValueError(f'{cfg.env} has continuous actions; DQN needs discrete ones (try cartpole, acrobot, '
                     'mountaincar, mini_chain or an atari_* game)')
  shape = layout.observation_shape
  pixels = len(shape) == 3 and shape[-1] >= 1 and shape[0] > 16
  if cfg.variant in PIXEL_VARIANTS and not pixels:
    raise ValueError(f'variant {cfg.variant} is a convolutional network for 84x84 frames; {cfg.env} gives '
                     f'{shape}: use --variant=mlp or slides')
  if cfg.variant in PIXEL_VARIANTS and shape[:2] != (84, 84):
    raise ValueError(f'variant {cfg.variant} expects 84x84 frames, {cfg.env} gives {shape}')
  return shape, layout.num_actions


def _flat(obs) -> np.ndarray:
  return np.asarray(obs)[0]                       # agent axis off: [*shape]


def reset_into(env, replay, frame_shape):
  """Starts an episode: env.reset() and the replay's first frame (the newest of the stack; frames are stored once)."""
  ts = env.reset()
  replay.begin(0, _flat(ts.observation)[..., -frame_shape[-1]:])
  return ts


def step_into(env, replay, action: int, cfg: 'DQNRunConfig', frame_shape):
  """One agent step stored in the replay: (timestep, raw reward). The stored reward is sign-clipped when
  cfg.reward_clip; the stored discount is gamma (0 at a terminal step)."""
  ts = env.step(np.array([action]))
  reward = float(np.sum(ts.reward))
  replay.add(0, action, float(np.sign(reward)) if cfg.reward_clip else reward, float(ts.discount) * cfg.gamma,
             _flat(ts.observation)[..., -frame_shape[-1]:])
  return ts, reward


def evaluate(learner: dqn.DQNLearner, cfg: DQNRunConfig, episodes: int, seed_base: int = 1_000_003) -> List[float]:
  """Raw scores of `episodes` episodes at epsilon `cfg.eval_epsilon` on held-out seeds."""
  rng = np.random.default_rng(cfg.seed + 7)
  scores = []
  for i in range(episodes):
    env = registry.make_env(cfg.env, seed=seed_base + i, num_frames=cfg.num_frames)
    ts = env.reset()
    total = 0.0
    while True:
      a = exploration.epsilon_greedy(learner.q_values(ts.observation)[0], cfg.eval_epsilon, rng)
      ts = env.step(np.array([a]))
      total += float(np.sum(ts.reward))
      if ts.last():
        break
    scores.append(total)
    close = getattr(env, 'close', None)
    if close:
      close()
  return scores


def train(cfg: DQNRunConfig, logdir: str, print_fn: Callable[[str], None] = print,
          max_steps: Optional[int] = None) -> Dict:
  """Trains into `logdir` (resumes a run there); returns eval.json's content."""
  cfg.validate()
  shape, num_actions = check_env(cfg)
  saved = runs.load_config(logdir)
  if saved is not None:
    runs.check_same_settings(logdir, {k: runs.tuplify(v) for k, v in saved.items()},
                             {k: runs.tuplify(v) for k, v in cfg.to_dict().items()},
                             ('env', 'variant', 'num_frames', 'hidden'))
  start = time.monotonic()
  learner = dqn.DQNLearner(cfg.learner_config(), shape, num_actions, seed=cfg.seed)
  agent_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name='agent_steps')
  parts = dict(online=learner.online, optimizer=learner.optimizer, updates=learner.updates, agent_steps=agent_steps)
  if learner.target is not None:
    parts['target'] = learner.target
  frame_shape = shape[:-1] + (shape[-1] // cfg.num_frames,)
  replay = replay_lib.TransitionReplay(cfg.buffer_size, frame_shape, np.uint8 if len(shape) == 3 else np.float32,
                                       num_frames=cfg.num_frames, seed=cfg.seed)
  replay_path = os.path.join(logdir, REPLAY_FILE)

  def export_fn(path):
    return export.export_q_network(learner.online, path, shape, num_actions)

  ckpt = checkpointing.RunCheckpointer(tf.train.Checkpoint(**parts), logdir, interval_s=cfg.checkpoint_interval_s,
                                       export_fn=export_fn)

  def save(step):
    replay_lib.save(replay_path, replay.state_dict())
    return ckpt.save(step)

  resumed = ckpt.restore_latest()
  if resumed and os.path.exists(replay_path):
    replay.load_state_dict(replay_lib.load(replay_path))
  steps = int(agent_steps.numpy())
  if resumed:
    print_fn(f'{PREFIX}resumed from {resumed} at {steps:,} agent steps ({len(replay):,} replay slots)')
  writer = checkpointing.open_writer(logdir, cfg.to_dict(), steps, print_fn, PREFIX)
  episodes = episode_log.load(logdir, steps, key='agent_steps', name=EPISODES_FILE)
  schedule = exploration.LinearSchedule(cfg.eps_start, cfg.eps_end, cfg.eps_steps)
  rng = np.random.default_rng(runs.derived_seed(cfg.seed, steps, 1))
  env = registry.make_env(cfg.env, seed=runs.derived_seed(cfg.seed, steps, 2) % (2 ** 31), num_frames=cfg.num_frames)
  stop = runs.StopOnSignal(print_fn, prefix=PREFIX)
  rate = progress.RateMeter()
  recent = collections.deque([e['score'] for e in episodes[-20:]], maxlen=20)
  last_log = time.monotonic()
  owed = 0.0
  logs: Dict[str, float] = {}
  session = 0
  failure = None
  loop_start = time.monotonic()
  with stop:
    try:
      ts = reset_into(env, replay, frame_shape)
      rate.update(steps)
      while steps < cfg.total_steps and not stop.requested:
        if max_steps is not None and session >= max_steps:
          break
        eps = schedule(steps)
        a = exploration.epsilon_greedy(learner.q_values(ts.observation)[0], eps, rng)
        ts, reward = step_into(env, replay, a, cfg, frame_shape)
        steps += 1
        session += 1
        agent_steps.assign(steps)
        if ts.last():
          info = env.episode_info() if hasattr(env, 'episode_info') else {}
          score = float(info.get('score', reward))
          episodes.append({'score': score, 'agent_steps': steps, 'length': int(info.get('steps', 0))})
          episode_log.append(logdir, episodes[-1:], name=EPISODES_FILE)
          recent.append(score)
          with writer.as_default(step=steps):
            tf.summary.scalar('episode/score_raw', score)
          ts = reset_into(env, replay, frame_shape)
        if replay.num_transitions >= cfg.learning_starts:
          owed += cfg.replay_ratio
          while owed >= 1.0:
            logs = learner.train_step(replay.sample(cfg.batch_size))
            owed -= 1.0
        rate.update(steps)
        now = time.monotonic()
        if now - last_log >= cfg.log_interval_s or steps >= cfg.total_steps:
          score = f'score {np.mean(recent):.1f} (last {len(recent)} episodes)' if recent else 'no episode yet'
          print_fn(progress.line(PREFIX, steps, cfg.total_steps, rate,
                                 [score, f'epsilon {eps:.2f}', f'{int(learner.updates.numpy()):,} updates',
                                  f'loss {logs.get("loss", float("nan")):.4f}'], unit='agent steps'))
          with writer.as_default(step=steps):
            for k, v in logs.items():
              tf.summary.scalar(f'dqn/{k}', v)
            tf.summary.scalar('dqn/epsilon', eps)
          last_log = now
        if ckpt.maybe_save(steps):
          replay_lib.save(replay_path, replay.state_dict())
    except Exception as e:  # pylint: disable=broad-except
      failure = e
    loop_s = time.monotonic() - loop_start
    if failure is not None or stop.requested:
      replay_lib.save(replay_path, replay.state_dict())
      ckpt.save_and_stop(steps, failure, stop, print_fn, PREFIX, unit='agent steps')
  save(steps)
  ckpt.export()
  scores = evaluate(learner, cfg, cfg.eval_episodes)
  result = {'agent_steps': steps, 'updates': int(learner.updates.numpy()), 'eval_epsilon': cfg.eval_epsilon,
            'eval_episodes': cfg.eval_episodes, 'eval_mean': float(np.mean(scores)),
            'eval_std': float(np.std(scores)), 'eval_scores': scores,
            'train_last20': float(np.mean([e['score'] for e in episodes[-20:]])) if episodes else None,
            'wall_s_session': time.monotonic() - start,
            # The step loop of this session alone (acting, stepping, replay, updates, logging; not start-up,
            # checkpoints at the end, export or evaluation): benchmarks/dqn_throughput.py reads it.
            'loop_steps_session': session, 'loop_s_session': loop_s}
  with open(os.path.join(logdir, 'eval.json'), 'w') as f:
    json.dump(result, f, indent=1)
  if episodes:
    curves.plot_returns([{'return': e['score'], 'agent_steps_total': e['agent_steps']} for e in episodes],
                        os.path.join(logdir, 'returns.png'), f'DQN {cfg.variant} on {cfg.env}')
  writer.flush()
  print_fn(f'{PREFIX}done: {steps:,} agent steps, {result["updates"]:,} updates; evaluation at epsilon '
           f'{cfg.eval_epsilon:g}: {result["eval_mean"]:.1f} +- {result["eval_std"]:.1f} over {cfg.eval_episodes} '
           f'episodes; checkpoint {ckpt.latest}; SavedModel {ckpt.saved_model_dir}')
  return result

