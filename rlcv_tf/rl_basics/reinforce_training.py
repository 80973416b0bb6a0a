"""REINFORCE on one environment of the registry, with or without a learned value baseline (issue 15 Sec. 4).

Each update plays `episodes_per_update` whole episodes with the current policy (actions sampled from
softmax(logits), a tfp Categorical), computes G_t = sum_k gamma^k r_{t+k} within each episode (a time-limit cut is
treated as the end: CartPole's 500-step cap), and takes one Adam step on `reinforce.reinforce_loss` (baseline:
V(s_t) from a separate value network, held fixed in the policy loss, fitted by (G - V)^2). Returns are not
normalised (plain REINFORCE).

A run writes config.json, checkpoints (also on Ctrl-C / SIGTERM; re-running resumes), TensorBoard, returns.png,
eval.json (greedy and sampled evaluation on held-out seeds) and a SavedModel: `serve(observation)` -> {'action'
(sampled), 'greedy_action', 'logits'} (serving_default).
"""

import collections
import dataclasses
import json
import os
import time
from typing import Callable, Dict, List, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from rlcv_tf.core import checkpointing
from rlcv_tf.core import curves
from rlcv_tf.core import episode_log
from rlcv_tf.core import progress
from rlcv_tf.core import runs
from rlcv_tf.envs import registry
from rlcv_tf.rl_basics import reinforce

PREFIX = '[reinforce] '
EPISODES_FILE = 'episodes.jsonl'


@dataclasses.dataclass(frozen=True)
class ReinforceConfig(runs.ConfigRecord):
  env: str = 'cartpole'
  baseline: bool = True
  updates: int = 60
  episodes_per_update: int = 8
  gamma: float = 0.99
  learning_rate: float = 1e-2
  value_learning_rate: float = 1e-2
  hidden: Tuple[int, ...] = (64,)
  eval_episodes: int = 20
  seed: int = 0
  log_interval_s: float = 10.0
  checkpoint_interval_s: float = 600.0

  def validate(self) -> 'ReinforceConfig':
    if not 0.0 <= self.gamma <= 1.0:
      raise ValueError(f'gamma: must lie in [0, 1], got {self.gamma}')
    for name in ('updates', 'episodes_per_update'):
      if int(getattr(self, name)) < 1:
        raise ValueError(f'{name}: must be >= 1, got {getattr(self, name)}')
    if not self.learning_rate > 0 or not self.value_learning_rate > 0:
      raise ValueError(f'learning_rate: must be > 0, got {self.learning_rate} / {self.value_learning_rate}')
    return self


def _mlp(shape, out: int, hidden, name: str) -> keras.Model:
  inputs = keras.Input(tuple(shape))
  x = keras.layers.Flatten()(inputs)
  for i, h in enumerate(hidden):
    x = keras.layers.Dense(h, activation='tanh', name=f'{name}_fc{i}')(x)
  return keras.Model(inputs, keras.layers.Dense(out, name=f'{name}_out')(x), name=name)


def discounted_returns(rewards: np.ndarray, gamma: float) -> np.ndarray:
  """G_t of one finished episode (backwards)."""
  out = np.zeros(len(rewards), np.float32)
  g = 0.0
  for t in range(len(rewards) - 1, -1, -1):
    g = float(rewards[t]) + gamma * g
    out[t] = g
  return out


def check_env(cfg: ReinforceConfig):
  registry.check_available(cfg.env)
  layout = registry.probe(cfg.env, num_frames=1)
  if layout.continuous_actions:
    raise ValueError(f'env: {cfg.env} has continuous actions; this REINFORCE uses a categorical policy (try '
                     'cartpole, acrobot, mini_chain)')
  return layout.observation_shape, layout.num_actions


class Agent:

  def __init__(self, cfg: ReinforceConfig, shape, num_actions: int):
    keras.utils.set_random_seed(cfg.seed)
    self.cfg = cfg
    self.policy = _mlp(shape, num_actions, cfg.hidden, 'policy')
    self.value = _mlp(shape, 1, cfg.hidden, 'value') if cfg.baseline else None
    self.opt = keras.optimizers.Adam(cfg.learning_rate)
    self.opt.build(self.policy.trainable_variables)
    self.value_opt = keras.optimizers.Adam(cfg.value_learning_rate) if cfg.baseline else None
    if self.value_opt is not None:
      self.value_opt.build(self.value.trainable_variables)
    self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name='updates')
    self.sample_seed = tf.Variable([cfg.seed, 0], dtype=tf.int64, trainable=False, name='sample_seed')
    self._logits = tf.function(lambda obs: self.policy(obs), reduce_retracing=True)
    self._step = tf.function(self._step_impl, reduce_retracing=True)

  def checkpoint(self, **extra) -> tf.train.Checkpoint:
    parts = dict(policy=self.policy, opt=self.opt, updates=self.updates, sample_seed=self.sample_seed, **extra)
    if self.value is not None:
      parts.update(value=self.value, value_opt=self.value_opt)
    return tf.train.Checkpoint(**parts)

  def act(self, obs, rng: np.random.Generator, greedy: bool = False) -> int:
    logits = self._logits(tf.convert_to_tensor(obs)).numpy()[0]
    if greedy:
      return int(np.argmax(logits))
    p = np.exp(logits - logits.max())
    return int(rng.choice(len(p), p=p / p.sum()))

  def _step_impl(self, obs, actions, returns):
    out = {}
    baseline = None
    if self.value is not None:
      with tf.GradientTape() as tape:
        v = tf.squeeze(self.value(obs), -1)
        value_loss = tf.reduce_mean(tf.square(returns - v))
      grads = tape.gradient(value_loss, self.value.trainable_variables)
      self.value_opt.apply_gradients(zip(grads, self.value.trainable_variables))
      baseline = v
      out['value_loss'] = value_loss
    with tf.GradientTape() as tape:
      logits = self.policy(obs)
      loss = reinforce.reinforce_loss(logits, actions, returns, baseline)
    grads = tape.gradient(loss, self.policy.trainable_variables)
    self.opt.apply_gradients(zip(grads, self.policy.trainable_variables))
    self.updates.assign_add(1)
    out['policy_loss'] = loss
    out['entropy'] = tf.reduce_mean(reinforce.categorical_entropy(logits))
    return out


def _export(agent: Agent, shape, path: str) -> str:
  archive = keras.export.ExportArchive()
  archive.track(agent.policy)

  def serve(observation):
    logits = agent.policy(observation)
    return {'action': tfp.distributions.Categorical(logits=logits).sample(),
            'greedy_action': tf.argmax(logits, axis=-1, output_type=tf.int32), 'logits': logits}

  archive.add_endpoint('serve', serve, input_signature=[tf.TensorSpec((None,) + tuple(shape), tf.float32,
                                                                      name='observation')])
  archive.write_out(path, verbose=False)
  return path


def play(agent: Agent, env, rng, greedy: bool = False):
  ts = env.reset()
  obs, actions, rewards = [], [], []
  while True:
    a = agent.act(ts.observation, rng, greedy)
    obs.append(np.asarray(ts.observation[0], np.float32))
    actions.append(a)
    ts = env.step(np.array([a]))
    rewards.append(float(np.sum(ts.reward)))
    if ts.last():
      return np.stack(obs), np.array(actions, np.int32), np.array(rewards, np.float32)


def train(cfg: ReinforceConfig, logdir: str, print_fn: Callable[[str], None] = print,
          max_updates: Optional[int] = None) -> Dict:
  cfg.validate()
  shape, num_actions = check_env(cfg)
  saved = runs.load_config(logdir)
  if saved is not None:
    runs.check_same_settings(logdir, {k: runs.tuplify(v) for k, v in saved.items()},
                             {k: runs.tuplify(v) for k, v in cfg.to_dict().items()},
                             ('env', 'baseline', 'hidden'))
  start = time.monotonic()
  agent = Agent(cfg, shape, num_actions)
  ckpt = checkpointing.RunCheckpointer(agent.checkpoint(), logdir, interval_s=cfg.checkpoint_interval_s,
                                       export_fn=lambda p: _export(agent, shape, p))
  resumed = ckpt.restore_latest()
  done_updates = int(agent.updates.numpy())
  if resumed:
    print_fn(f'{PREFIX}resumed from {resumed} at update {done_updates:,}')
  writer = checkpointing.open_writer(logdir, cfg.to_dict(), done_updates, print_fn, PREFIX)
  episodes = episode_log.load(logdir, done_updates, key='update', name=EPISODES_FILE)
  rng = np.random.default_rng(runs.derived_seed(cfg.seed, done_updates, 1))
  env = registry.make_env(cfg.env, seed=runs.derived_seed(cfg.seed, done_updates, 2) % (2 ** 31), num_frames=1)
  stop = runs.StopOnSignal(print_fn, prefix=PREFIX)
  rate = progress.RateMeter()
  recent = collections.deque([e['score'] for e in episodes[-20:]], maxlen=20)
  last_log = time.monotonic()
  session = 0
  failure = None
  with stop:
    try:
      rate.update(done_updates)
      while done_updates < cfg.updates and not stop.requested:
        if max_updates is not None and session >= max_updates:
          break
        batch_obs, batch_act, batch_ret = [], [], []
        for _ in range(cfg.episodes_per_update):
          o, a, r = play(agent, env, rng)
          batch_obs.append(o)
          batch_act.append(a)
          batch_ret.append(discounted_returns(r, cfg.gamma))
          episodes.append({'score': float(r.sum()), 'update': done_updates + 1, 'length': int(len(r))})
          recent.append(float(r.sum()))
        logs = agent._step(tf.constant(np.concatenate(batch_obs)), tf.constant(np.concatenate(batch_act)),  # pylint: disable=protected-access
                           tf.constant(np.concatenate(batch_ret)))
        done_updates += 1
        session += 1
        episode_log.append(logdir, episodes[-cfg.episodes_per_update:], name=EPISODES_FILE)
        with writer.as_default(step=done_updates):
          tf.summary.scalar('episode/score_mean', float(np.mean([e['score'] for e in
                                                                  episodes[-cfg.episodes_per_update:]])))
          for k, v in logs.items():
            tf.summary.scalar(f'reinforce/{k}', float(v))
        rate.update(done_updates)
        now = time.monotonic()
        if now - last_log >= cfg.log_interval_s or done_updates >= cfg.updates:
          print_fn(progress.line(PREFIX, done_updates, cfg.updates, rate,
                                 [f'score {np.mean(recent):.1f} (last {len(recent)} episodes)',
                                  f'entropy {float(logs["entropy"]):.3f}'], unit='updates'))
          last_log = now
        ckpt.maybe_save(done_updates)
    except Exception as e:  # pylint: disable=broad-except
      failure = e
    if failure is not None or stop.requested:
      ckpt.save_and_stop(done_updates, failure, stop, print_fn, PREFIX, unit='updates')
  ckpt.save(done_updates)
  ckpt.export()
  eval_rng = np.random.default_rng(cfg.seed + 11)
  greedy, sampled = [], []
  for i in range(cfg.eval_episodes):
    e = registry.make_env(cfg.env, seed=1_000_003 + i, num_frames=1)
    greedy.append(float(play(agent, e, eval_rng, greedy=True)[2].sum()))
    sampled.append(float(play(agent, e, eval_rng)[2].sum()))
  result = {'updates': done_updates, 'episodes': len(episodes), 'eval_greedy_mean': float(np.mean(greedy)),
            'eval_sampled_mean': float(np.mean(sampled)), 'eval_episodes': cfg.eval_episodes,
            'train_last20': float(np.mean([e['score'] for e in episodes[-20:]])) if episodes else None,
            'wall_s_session': time.monotonic() - start}
  with open(os.path.join(logdir, 'eval.json'), 'w') as f:
    json.dump(result, f, indent=1)
  if episodes:
    curves.plot_returns([{'return': e['score'], 'agent_steps_total': i + 1} for i, e in enumerate(episodes)],
                        os.path.join(logdir, 'returns.png'),
                        f'REINFORCE{" + baseline" if cfg.baseline else ""} on {cfg.env} (x: episodes)')
  writer.flush()
  print_fn(f'{PREFIX}done: {done_updates:,} updates, {len(episodes):,} episodes; evaluation over '
           f'{cfg.eval_episodes} held-out episodes: greedy {result["eval_greedy_mean"]:.1f}, sampled '
           f'{result["eval_sampled_mean"]:.1f}; SavedModel {ckpt.saved_model_dir}')
  return result

