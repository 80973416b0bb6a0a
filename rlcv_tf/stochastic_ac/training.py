"""Training the A3C family (thesis Alg. 1-3, T:L869-892 and T:L1846-1912; spec ch2 §4.1): the thesis's synchronous
batch A3C, rollouts of t_max steps of every environment, then one update, on-policy.

Each iteration (`train`):
  1. act: `runtime.sync_rollouts.SyncRollouts.collect` steps every environment t_max times; at each step one
     batched network step (`a3c.ActorCriticLSTM.step`) over all environments with noise drawn here (SA3C's eps new
     every step per environment, NoisyNet's held for the rollout; `layers.next_noise`) and actions drawn from pi
     (Boltzmann exploration on top of the activation noise). The rollout stores the initial state (h, c; HPA3C's
     z_{t-1} too), every step's noise, the episode-start flags and the acting logits.
  2. learn (`Learner.update`): `unroll` recomputes the rollout from its initial state with the stored noise and
     flags (the acting logits and values again, to float rounding; logged as `replay/max_logit_diff`), the
     bootstrap value V(o_T) comes from one fresh noise sample, `losses.a3c_loss` gives
     lambda_v (R - V)^2 - log pi(a) A - beta H(pi) (+ psi KL for HPA3C) with rewards clipped in the learner, and
     Adam (lr 5e-4, eps 1e-3) applies the gradients clipped to global norm 40.
  3. every `validate_every_frames`: play `validation_episodes` on held-out seeds with the run's evaluation mode
     (vote-5, Freeway vote-1; MAP for A3C and NoisyNet) and keep the best-scoring weights in `<logdir>/best`.

`--total_frames` counts agent steps (actions applied); TensorBoard also gets emulator frames and iterations.

Adam: Keras's Adam adds eps to sqrt(v_t) and folds the bias corrections into the step size (the "epsilon hat"
form of Kingma & Ba, Sec. 2, as the PyTorch Adam of 2018 did); the thesis gives eps = 1e-3 without the form.

`train(cfg, logdir)` writes under `logdir`:
  config.json, config_history.jsonl   the settings (a re-run with the same logdir resumes; `core.runs`)
  checkpoints/                        network, Adam state, counters (`core.checkpointing`; also on SIGINT/SIGTERM)
  best/                               the best-validated weights (`best.json`: frames, score, mode)
  snapshots/iteration_NNNNNNN/        the weights at `resolved_snapshot_iterations` (`snapshot.json`: iteration,
                                      agent steps) for the Figs. 2.5 / 2.6 analysis (`analysis.py`)
  learning_check.json, returns.png    the check against random play (calibrated presets) and the returns curve
                                      (`learning_check.py`)
  events.*                            TensorBoard: raw and clipped episode returns, losses, entropy, HPA3C KL,
                                      V variance over 5 samples, gradient norm, frames/s
  saved_model/                        the policy (`export.py`, signature `serve`)
Resuming with another model (or network size) is refused before anything is written (`config.check_resume`).
"""

import collections
import dataclasses
import json
import os
import time
from typing import Callable, Deque, Dict, List, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

from rlcv_tf.core import checkpointing
from rlcv_tf.core import progress
from rlcv_tf.core import runs
from rlcv_tf.envs import registry
from rlcv_tf.stochastic_ac import a3c
from rlcv_tf.stochastic_ac import config as config_lib
from rlcv_tf.stochastic_ac import evaluation
from rlcv_tf.stochastic_ac import export
from rlcv_tf.stochastic_ac import learning_check
from rlcv_tf.stochastic_ac import layers as layers_lib
from rlcv_tf.stochastic_ac import losses

VARIANCE_SAMPLES = 5      # Fig. 2.5: the variance of V over 5 activation samples
PREFIX = '[stochastic_ac] '
NOISE_PREFIX = 'noise/'


ResumeMismatchError = runs.ResumeMismatchError


env_layout = evaluation.env_layout
build_model = evaluation.build_model


def numpy_state(model: a3c.ActorCriticLSTM, batch: int) -> Dict[str, np.ndarray]:
  return {k: np.asarray(v, np.float32) for k, v in model.initial_state(batch).items()}


# ---------------------------------------------------------------------------------------------------- learner


class Learner:
  """The network, its optimiser and the update of one rollout (module docstring, step 2).

  `update(batch)` takes the arrays of a `sync_rollouts.Rollout` (`rollout_batch`) and returns the logs as floats.
  `checkpoint` holds the network, Adam's state and the counters `frames` (agent steps), `iterations`,
  `emulator_frames`, `episodes` and `best_score` (of validation).
  """

  def __init__(self, cfg: config_lib.StochasticACConfig, observation_shape, num_actions: int, seed: int = 0):
    self.cfg = cfg
    keras.utils.set_random_seed(int(seed))
    self.model = build_model(cfg, observation_shape, num_actions)
    self.specs = self.model.noise_specs()
    self.optimizer = keras.optimizers.Adam(learning_rate=cfg.learning_rate, beta_1=cfg.adam_beta1,
                                           beta_2=cfg.adam_beta2, epsilon=cfg.adam_epsilon)
    self.optimizer.build(self.model.trainable_variables)
    self.frames = tf.Variable(0, dtype=tf.int64, trainable=False, name='frames')
    self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name='iterations')
    self.emulator_frames = tf.Variable(0, dtype=tf.int64, trainable=False, name='emulator_frames')
    self.episodes = tf.Variable(0, dtype=tf.int64, trainable=False, name='episodes')
    self.best_score = tf.Variable(-np.inf, dtype=tf.float64, trainable=False, name='best_score')
    self.checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer, frames=self.frames,
                                          iterations=self.iterations, emulator_frames=self.emulator_frames,
                                          episodes=self.episodes, best_score=self.best_score)
    self.noise_rng = np.random.default_rng(seed)
    self._act = tf.function(self._act_impl)
    self._train_step = tf.function(self._train_step_impl)

  def reseed(self, seed: int) -> None:
    """The learner's noise stream (bootstrap and V-variance samples) restarts from `seed`."""
    self.noise_rng = np.random.default_rng(seed)

  # ------------------------------------------------------------------------------------------------ acting
  def _act_impl(self, observation, state, noise, first):
    out = self.model.step(observation, state, noise, first, mode='sample')
    return out.logits, out.value, out.state

  def act(self, observation, state, noise, first):
    """One batched acting step: (logits, values, new state) as NumPy."""
    logits, value, new_state = self._act(np.asarray(observation, np.float32), state, noise, np.asarray(first, bool))
    return logits.numpy(), value.numpy(), {k: v.numpy() for k, v in new_state.items()}

  # ------------------------------------------------------------------------------------------------ learning
  def _loss_kwargs(self):
    c = self.cfg
    return dict(gamma=c.gamma, gae_lambda=c.gae_lambda, value_weight=c.value_weight,
                entropy_weight=c.entropy_weight, reward_clip=c.reward_clip, kl_weight=c.kl_weight)

  def _forward(self, batch):
    """The loss of a rollout batch and its logs (inside the tape).

    The unroll covers o_0 .. o_T: steps 0..T-1 replay the acting noise, step T (the bootstrap observation) uses
    `last_noise` (fresh per-step noise, the rollout's per-rollout noise; spec §3.1 PROPOSAL: V(o_T) under a new
    sample), so V(o_T) comes from the same pass. The V variance (Fig. 2.5) is the heads on VARIANCE_SAMPLES fresh
    draws at h_T."""
    t = tf.shape(batch['actions'])[0]
    noise = {k: tf.concat([v, batch['last_noise'][k][None]], axis=0) for k, v in batch['noise'].items()}
    out = self.model.unroll(batch['observations'], batch['initial_state'], noise, batch['first'], mode='sample')
    bootstrap_value = tf.stop_gradient(out.values[t])
    _, sampled_values, _ = evaluation.sampled_heads(self.model, tf.stop_gradient(out.state['h']), VARIANCE_SAMPLES,
                                                     batch['variance_noise'])
    done = tf.equal(batch['discounts'], 0.0)
    kl = out.extras.get('kl')
    total, logs = losses.a3c_loss(out.logits[:t], out.values[:t], batch['actions'], batch['rewards'], done,
                                  bootstrap_value, kl=None if kl is None else kl[:t],
                                  bootstrap_only=batch['bootstrap_only'], **self._loss_kwargs())
    logs = dict(logs)
    logs['value/bootstrap_mean'] = tf.reduce_mean(bootstrap_value)
    logs['value/variance_5_samples'] = tf.reduce_mean(evaluation.value_variance_tf(sampled_values))
    if 'acting_logits' in batch:
      valid = 1.0 - tf.cast(batch['bootstrap_only'], tf.float32)
      diff = tf.reduce_max(tf.abs(out.logits[:t] - batch['acting_logits']), axis=-1) * valid
      logs['replay/max_logit_diff'] = tf.reduce_max(diff)
    return total, logs

  def _train_step_impl(self, batch):
    variables = self.model.trainable_variables
    with tf.GradientTape() as tape:
      total, logs = self._forward(batch)
    grads = tape.gradient(total, variables)
    grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]
    clipped, norm = tf.clip_by_global_norm(grads, self.cfg.grad_clip_norm)
    self.optimizer.apply(clipped, variables)
    logs['optimizer/grad_norm'] = norm
    return logs

  def learner_noise(self, noise: Dict[str, np.ndarray]) -> Dict[str, Dict[str, np.ndarray]]:
    """The noise the update draws itself, from the learner's stream: 'last_noise' for the bootstrap step o_T
    ({name: [B, ...]}: fresh for per-step inputs, the rollout's last for per-rollout ones) and 'variance_noise'
    ({name: [VARIANCE_SAMPLES * B, ...]}, fresh)."""
    batch = next(iter(noise.values())).shape[1] if noise else 0
    last = layers_lib.next_noise(self.specs, {k: v[-1] for k, v in noise.items()}, batch, self.noise_rng,
                                 rollout_start=False) if noise else {}
    variance = layers_lib.draw_noise(self.specs, VARIANCE_SAMPLES * batch, self.noise_rng) if noise else {}
    return {'last_noise': last, 'variance_noise': variance}

  def update(self, batch: Dict) -> Dict[str, float]:
    """One Adam step on a rollout batch (`rollout_batch`); advances `iterations` (not `frames`)."""
    batch = dict(batch)
    if 'last_noise' not in batch:
      batch.update(self.learner_noise(batch['noise']))
    logs = self._train_step(batch)
    self.iterations.assign_add(1)
    return {k: float(v) for k, v in logs.items()}


def rollout_batch(rollout, specs) -> Dict:
  """The learner's inputs from a `sync_rollouts.Rollout` whose policy stored its noise as extras 'noise/<name>'
  and its logits as 'logits'."""
  batch = {
      'observations': rollout.observations.astype(np.float32),
      'actions': rollout.actions.astype(np.int32),
      'rewards': rollout.rewards.astype(np.float32),
      'discounts': rollout.discounts.astype(np.float32),
      'first': rollout.first.astype(bool),
      'bootstrap_only': rollout.bootstrap_only.astype(bool),
      'initial_state': {k: np.asarray(v, np.float32) for k, v in rollout.initial_state.items()},
      'noise': {name: rollout.extras[NOISE_PREFIX + name] for name in specs},
  }
  if 'logits' in rollout.extras:
    batch['acting_logits'] = rollout.extras['logits'].astype(np.float32)
  return batch


class ActingPolicy:
  """The `sync_rollouts` policy of a learner: noise per `layers.next_noise` (per-rollout noise drawn at the first
  step after `begin_rollout`), actions drawn from pi by the Gumbel-max trick from a seeded NumPy generator; extras:
  every noise input ('noise/<name>'), the logits and the values."""

  def __init__(self, learner: Learner, seed: int):
    self.learner = learner
    self.rng = np.random.default_rng(seed)
    self._noise = None
    self._rollout_start = True

  def begin_rollout(self) -> None:
    self._rollout_start = True

  def __call__(self, observation, state, first):
    batch = observation.shape[0]
    self._noise = layers_lib.next_noise(self.learner.specs, self._noise, batch, self.rng, self._rollout_start)
    self._rollout_start = False
    logits, values, new_state = self.learner.act(observation, state, self._noise, first)
    actions = np.argmax(logits + self.rng.gumbel(size=logits.shape), axis=-1).astype(np.int32)
    extras = {NOISE_PREFIX + k: v for k, v in self._noise.items()}
    extras.update(logits=logits, values=values)
    return actions, new_state, extras


class ClippedReturns:
  """Per-environment episode sums of the learner's clipped rewards, matched to the rollouts' episode statistics by
  environment and length (an episode cut by an actor restart reports no statistics; its sum is dropped)."""

  def __init__(self, num_envs: int, clip: Optional[float]):
    self.clip = clip
    self._sum = np.zeros(num_envs)
    self._steps = np.zeros(num_envs, np.int64)
    self._closed: List[Deque[Tuple[int, float]]] = [collections.deque(maxlen=64) for _ in range(num_envs)]

  def add(self, rollout) -> None:
    rewards = rollout.rewards if self.clip is None else np.clip(rollout.rewards, -self.clip, self.clip)
    applied = ~rollout.bootstrap_only
    for t in range(rollout.num_steps):
      self._sum += np.where(applied[t], rewards[t], 0.0)
      self._steps += applied[t]
      for e in np.flatnonzero(rollout.first[t + 1]):
        self._closed[e].append((int(self._steps[e]), float(self._sum[e])))
        self._sum[e], self._steps[e] = 0.0, 0

  def match(self, episode) -> Optional[float]:
    queue = self._closed[episode['env']]
    steps = int(episode.get('steps', episode.get('length', -1)))
    while queue:
      n, total = queue.popleft()
      if n == steps:
        return total
    return None


# ---------------------------------------------------------------------------------------------------- training


@dataclasses.dataclass
class TrainResult:
  frames: int
  iterations: int
  episodes: List[Dict]
  losses: List[float]
  validations: List[Dict]
  saved_model: str
  wall_s: float
  frames_per_second: float          # agent steps per second of this session, after its first update
  emulator_frames: int = 0
  last_logs: Dict[str, float] = dataclasses.field(default_factory=dict)
  learning_check: Optional[Dict] = None   # `learning_check.CheckResult.to_dict()` for calibrated presets


def _pool_factory(cfg: config_lib.StochasticACConfig, seed_base: int):
  from rlcv_tf.runtime import pools  # pylint: disable=g-import-not-at-top
  from rlcv_tf.runtime import sync_rollouts  # pylint: disable=g-import-not-at-top
  configs = sync_rollouts.actor_configs(cfg.env, cfg.num_envs, cfg.envs_per_actor, seed=seed_base)
  return pools.make_pool(configs, runtime=cfg.runtime, backend=cfg.backend, ray_address=cfg.ray_address,
                         actor_timeout_s=cfg.actor_timeout_s, max_restarts=cfg.max_actor_restarts)


def validate(learner: Learner, cfg: config_lib.StochasticACConfig, seed: int) -> Dict:
  """Plays `validation_episodes` held-out episodes with the run's evaluation mode; returns the scores."""
  policy = evaluation.EvalPolicy(learner.model, cfg.resolved_eval_mode, cfg.num_samples, seed=seed)
  results = evaluation.run_episodes(policy, cfg.env, config_lib.validation_seeds(cfg.validation_episodes),
                                    max_steps=cfg.eval_max_steps)
  scores = [r.score for r in results]
  return {'frames': int(learner.frames.numpy()), 'score': float(np.mean(scores)), 'scores': scores,
          'cut': sum(r.cut for r in results), 'mode': cfg.resolved_eval_mode, 'num_samples': cfg.num_samples}


SNAPSHOT_DIR = 'snapshots'


def snapshot_path(logdir: str, iteration: int) -> str:
  return os.path.join(logdir, SNAPSHOT_DIR, f'iteration_{int(iteration):07d}')


def write_snapshot(model, logdir: str, iteration: int, frames: int) -> Optional[str]:
  """The network's weights at `iteration` into snapshots/iteration_NNNNNNN/ (ckpt + snapshot.json), written to a
  temporary name and renamed, so a snapshot either exists whole or not at all; an existing one is kept."""
  path = snapshot_path(logdir, iteration)
  if os.path.exists(path):
    return None
  tmp = path + '.partial'
  tf.train.Checkpoint(model=model).write(os.path.join(tmp, 'ckpt'))
  with open(os.path.join(tmp, 'snapshot.json'), 'w') as f:
    json.dump({'iteration': int(iteration), 'agent_steps': int(frames)}, f)
  os.replace(tmp, path)
  return path


def _episode_line(recent: List[Dict]) -> str:
  if not recent:
    return 'no finished episode yet'
  raw = np.mean([float(np.sum(e['return'])) for e in recent])
  return f'return {raw:.1f} (last {len(recent)} episodes)'


def train(cfg: config_lib.StochasticACConfig, logdir: str, print_fn: Callable[[str], None] = print,
          pool_factory=_pool_factory, max_iterations: Optional[int] = None) -> TrainResult:
  """Trains `cfg` (an A3C-family model) into `logdir`, or resumes the run there (module docstring).

  `max_iterations` stops this session after that many updates (tests), saving as at the end.
  """
  cfg.validate()
  if cfg.algorithm != 'a3c':
    raise ValueError(f'model: {cfg.model} is trained by stochastic_ac.offpolicy_training, not the A3C trainer')
  config_lib.check_resume(cfg, logdir)
  registry.check_available(cfg.env)
  start = time.monotonic()
  observation_shape, num_actions = env_layout(cfg.env)
  learner = Learner(cfg, observation_shape, num_actions, seed=cfg.seed)
  ckpt = checkpointing.RunCheckpointer(learner.checkpoint, logdir, interval_s=cfg.checkpoint_interval_s,
                                       export_fn=lambda path: export.export_policy(learner.model, path))
  if ckpt.restore_latest():
    print_fn(f'{PREFIX}resumed from {ckpt.latest} at {int(learner.frames.numpy()):,} agent steps')
  start_frames = int(learner.frames.numpy())
  learner.reseed(runs.derived_seed(cfg.seed, start_frames, 2))
  acting = ActingPolicy(learner, runs.derived_seed(cfg.seed, start_frames, 1))
  writer = checkpointing.open_writer(logdir, cfg.to_dict(), start_frames, print_fn, PREFIX)
  best_dir = os.path.join(logdir, 'best')
  best_ckpt = tf.train.Checkpoint(model=learner.model)

  episodes_all: List[Dict] = []
  losses_all: List[float] = []
  validations: List[Dict] = []
  frames = start_frames
  next_validation = None
  if cfg.validate_every_frames:
    next_validation = (frames // cfg.validate_every_frames + 1) * cfg.validate_every_frames
  snapshot_iterations = set(cfg.resolved_snapshot_iterations)
  stop = runs.StopOnSignal(print_fn, prefix=PREFIX)
  failure: Optional[BaseException] = None
  session_iterations = 0
  fps = 0.0
  last_logs: Dict[str, float] = {}

  def run_validation():
    result = validate(learner, cfg, runs.derived_seed(cfg.seed, frames, 3))
    validations.append(result)
    improved = result['score'] > float(learner.best_score.numpy())
    if improved:
      learner.best_score.assign(result['score'])
      best_ckpt.write(os.path.join(best_dir, 'ckpt'))
      with open(os.path.join(best_dir, 'best.json'), 'w') as f:
        json.dump(result, f, indent=2)
    with writer.as_default(step=frames):
      tf.summary.scalar('validation/score', result['score'])
      tf.summary.scalar('validation/best_score', float(learner.best_score.numpy()))
    print_fn(f'{PREFIX}validation at {frames:,} agent steps: {result["mode"]} score {result["score"]:.1f} '
             f'on {len(result["scores"])} held-out episode(s){" (cut at eval_max_steps)" if result["cut"] else ""}'
             f'{"; best so far, saved to " + best_dir if improved else ""}')

  if frames >= cfg.total_frames:
    print_fn(f'{PREFIX}{logdir} already holds {frames:,} agent steps >= total_frames={cfg.total_frames:,}; '
             'nothing to train (raise --total_frames to continue)')
  else:
    from rlcv_tf.runtime import sync_rollouts  # pylint: disable=g-import-not-at-top
    pool = pool_factory(cfg, config_lib.training_seed_base(cfg.seed, start_frames))
    rollouts = sync_rollouts.SyncRollouts(pool, cfg.unroll_length,
                                          initial_state=lambda e: numpy_state(learner.model, e))
    rate = progress.RateMeter()
    emulator_rate = progress.RateMeter()
    clipped = None
    recent: Deque[Dict] = collections.deque(maxlen=20)
    logs: Dict[str, float] = {}
    last_log = last_summary = time.monotonic()
    session_start = None
    with stop:
      try:
        rollouts.start()
        clipped = ClippedReturns(rollouts.num_envs, cfg.reward_clip)
        rate.update(frames)
        emulator_rate.update(int(learner.emulator_frames.numpy()))
        while frames < cfg.total_frames and not stop.requested:
          if max_iterations is not None and session_iterations >= max_iterations:
            break
          acting.begin_rollout()
          rollout = rollouts.collect(acting)
          logs = learner.update(rollout_batch(rollout, learner.specs))
          last_logs = logs
          session_iterations += 1
          losses_all.append(logs['loss/total'])
          learner.frames.assign_add(rollout.agent_steps)
          learner.episodes.assign_add(len(rollout.episodes))
          learner.emulator_frames.assign_add(sum(int(e.get('frames', 0)) for e in rollout.episodes))
          frames = int(learner.frames.numpy())
          if int(learner.iterations.numpy()) in snapshot_iterations:
            write_snapshot(learner.model, logdir, int(learner.iterations.numpy()), frames)
          if session_start is None:
            session_start = (time.monotonic(), frames)
          rate.update(frames)
          emulator_rate.update(int(learner.emulator_frames.numpy()))
          clipped.add(rollout)
          for e in rollout.episodes:
            e = dict(e, agent_steps_total=frames)
            c = clipped.match(e)
            if c is not None:
              e['clipped_return'] = c
            episodes_all.append(e)
            recent.append(e)
          now = time.monotonic()
          with writer.as_default(step=frames):
            if rollout.episodes:
              tf.summary.scalar('episode/return_raw', np.mean([float(np.sum(e['return'])) for e in rollout.episodes]))
              cl = [e['clipped_return'] for e in episodes_all[-len(rollout.episodes):] if 'clipped_return' in e]
              if cl:
                tf.summary.scalar('episode/return_clipped', np.mean(cl))
              tf.summary.scalar('episode/length', np.mean([e.get('steps', e.get('length', 0))
                                                           for e in rollout.episodes]))
            if now - last_summary >= cfg.summary_interval_s or frames >= cfg.total_frames:
              for k, v in logs.items():
                tf.summary.scalar(k, v)
              tf.summary.scalar('throughput/agent_steps_per_second', rate.rate)
              tf.summary.scalar('throughput/emulator_frames_per_second', emulator_rate.rate)
              tf.summary.scalar('progress/iterations', int(learner.iterations.numpy()))
              tf.summary.scalar('progress/emulator_frames', int(learner.emulator_frames.numpy()))
              tf.summary.scalar('runtime/policy_seconds', rollouts.policy_seconds)
              tf.summary.scalar('runtime/env_wait_seconds', rollouts.wait_seconds)
              last_summary = now
          if now - last_log >= cfg.log_interval_s or frames >= cfg.total_frames:
            print_fn(progress.line(PREFIX, frames, cfg.total_frames, rate, [
                f'iteration {int(learner.iterations.numpy()):,}', f'{emulator_rate.rate:,.0f} emulator frames/s',
                _episode_line(list(recent)), f'loss {logs["loss/total"]:.3f} entropy {logs["policy/entropy"]:.3f}'],
                unit='agent steps'))
            last_log = now
          if next_validation is not None and frames >= next_validation:
            run_validation()
            next_validation = (frames // cfg.validate_every_frames + 1) * cfg.validate_every_frames
          ckpt.maybe_save(frames)
      except Exception as e:  # pylint: disable=broad-except
        failure = e
      finally:
        rollouts.close()
        writer.flush()
      if session_start is not None and frames > session_start[1]:
        fps = (frames - session_start[1]) / max(1e-9, time.monotonic() - session_start[0])
      if failure is not None or stop.requested:
        ckpt.save_and_stop(frames, failure, stop, print_fn, PREFIX, unit='agent steps')
    if cfg.validate_every_frames and (not validations or validations[-1]['frames'] != frames) and \
        frames >= cfg.total_frames:
      run_validation()
    ckpt.save(frames)
  ckpt.export()
  writer.flush()
  check = None
  if session_iterations:
    check = learning_check.finish(cfg, logdir, episodes_all, num_actions, print_fn, PREFIX)
  curve = os.path.join(logdir, learning_check.CURVE_FILE)
  print_fn(f'{PREFIX}done: {frames:,} agent steps, {int(learner.iterations.numpy()):,} iterations, '
           f'{int(learner.emulator_frames.numpy()):,} emulator frames in '
           f'{progress.format_duration(time.monotonic() - start)}; checkpoint {ckpt.latest}; SavedModel '
           f'{ckpt.saved_model_dir}; {"returns " + curve + "; " if os.path.exists(curve) else ""}TensorBoard: '
           f'tensorboard --logdir={logdir}')
  return TrainResult(frames, int(learner.iterations.numpy()), episodes_all, losses_all, validations,
                     ckpt.saved_model_dir, time.monotonic() - start, fps, int(learner.emulator_frames.numpy()),
                     last_logs, None if check is None else check.to_dict())
