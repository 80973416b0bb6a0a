"""Seed-001 training: VAE pre-training (Table 1) and PPO with the three variants of Fig. 2 (Tables 2/3).

`pretrain(cfg, logdir, frames_dir)`: the VAE on single preprocessed frames (`datasets.atari_frames`: PNG + index,
split by episode). With no frames_dir, `cfg.pretrain_frames` frames are first collected into `<logdir>/frames` with
`cfg.collect_policy` (the paper's "already trained policy" is not available: the scripted ball tracker with
epsilon 0.05 stands in, spec A13). Adam(1e-4), batch 128, `pretrain_epochs` epochs of -ELBO (beta = 1). Writes
vae/vae.weights.h5 (what the RL stage loads), checkpoints (resume; saved on SIGINT/SIGTERM), TensorBoard,
reconstructions.png (validation frames over their reconstructions), eval.json (validation NLL / KL, what the VAE
keeps of the ball: `diagnostics.ball_pixel_error`, the mu -> ball probe R^2) and saved_model/ (`export.export_vae`).

`train_rl(cfg, logdir, pretrain_logdir)`: PPO on `cfg.env` (`variant` fixed / adapt from the pre-trained VAE,
joint from random initialisation). Each iteration: `runtime.sync_rollouts` steps `num_envs` environments (actor
processes, or inline) t_max times, the learner acting in one batched call (actions drawn from pi; the behaviour
log-probability and value stored with each step); GAE; `ppo.PPOLearner.update`. Logs raw episode scores against agent
steps (training rewards are sign-clipped), the gradient norms at U (`diagnostics.grad_norms_at_u`, R5) at the first
iteration and at every log line, checkpoints (resume, SIGINT/SIGTERM), TensorBoard, returns.png, eval.json (the
learning check against uniformly random play on the same environment) and saved_model/ (`export.export_policy`).
"""

import collections
import dataclasses
import json
import os
import time
from typing import Callable, Dict, List, Optional

import keras
import numpy as np
import tensorflow as tf

from rlcv_tf.core import checkpointing
from rlcv_tf.core import episode_log
from rlcv_tf.core import images as images_lib
from rlcv_tf.core import progress
from rlcv_tf.core import runs
from rlcv_tf.envs import registry
from rlcv_tf.vae_pg import diagnostics
from rlcv_tf.vae_pg import export
from rlcv_tf.vae_pg import learning_check
from rlcv_tf.vae_pg import ppo as ppo_lib
from rlcv_tf.vae_pg import presets
from rlcv_tf.vae_pg import vae as vae_lib

PREFIX = '[vae_pg] '
VAE_WEIGHTS = os.path.join('vae', 'vae.weights.h5')


def check_resume(cfg: presets.VaePgConfig, logdir: str, stage: str) -> None:
  """`runs.ResumeMismatchError` (one line) if `logdir` holds another stage's run or different networks."""
  saved = runs.load_config(logdir)
  if saved is None:
    return
  saved = {k: runs.tuplify(v) for k, v in saved.items()}
  current = {k: runs.tuplify(v) for k, v in dict(cfg.to_dict(), stage=stage).items()}
  runs.check_same_settings(logdir, saved, current, ('stage',) + presets.ARCHITECTURE_FIELDS)
  if stage == 'rl':
    runs.check_same_settings(logdir, saved, current, ('variant',))


def env_layout(cfg: presets.VaePgConfig):
  """(observation shape [S, S, n], number of actions, what the environment records about itself: the ALE presets'
  `ale_settings`) of `cfg.env` with cfg.num_frames stacked; ValueError (one line) when its frames are not
  cfg.image_size square grey frames."""
  layout = registry.probe(cfg.env, num_frames=cfg.num_frames)
  shape, num_actions, settings = layout.observation_shape, layout.num_actions, layout.settings
  want = (cfg.image_size, cfg.image_size, cfg.num_frames)
  if shape != want:
    raise ValueError(f'{cfg.env} gives observations {shape} with num_frames={cfg.num_frames}; this configuration '
                     f'needs {want} (image_size={cfg.image_size}): pick the preset made for {cfg.env} or set '
                     '--image_size')
  return shape, num_actions, dict(settings)


# ------------------------------------------------------------------------------------------------ pre-training
@dataclasses.dataclass
class PretrainResult:
  epochs: int
  train_loss: float
  eval: Dict
  weights: str
  saved_model: str


def _collect_frames(cfg: presets.VaePgConfig, out_dir: str, print_fn) -> None:
  from rlcv_tf.datasets import atari_frames  # pylint: disable=g-import-not-at-top
  print_fn(f'{PREFIX}pre-training frames: {cfg.pretrain_frames:,} of {cfg.env} from the {cfg.collect_policy} policy '
           f'in episodes of up to {max(50, cfg.pretrain_frames // 50)} steps (the paper: 25,000 frames, about 50 '
           'episodes, from "an already trained policy", which is not available; spec A13)')
  atari_frames.collect(cfg.env, out_dir, make_env=registry.make_env, num_frames=cfg.pretrain_frames, policy=cfg.collect_policy, seed=cfg.seed,
                       val_fraction=cfg.val_fraction, print_fn=print_fn,
                       max_episode_steps=max(50, cfg.pretrain_frames // 50))


def load_frame_splits(frames_dir: str):
  """(train uint8 [N, S, S, 1], val uint8, train index, val index) from a `datasets.atari_frames` directory."""
  from rlcv_tf.datasets import atari_frames  # pylint: disable=g-import-not-at-top
  train, train_index = atari_frames.load_frames(frames_dir, 'train')
  val, val_index = atari_frames.load_frames(frames_dir, 'val')
  return train, val, train_index, val_index


def _positions(index) -> np.ndarray:
  """The ball's top-left pixel in the stored frames ([N, 2]: x, y; -1 without a ball)."""
  return np.asarray([[float(r.get('frame_ball_x', -1)), float(r.get('frame_ball_y', -1))] for r in index],
                    np.float64).reshape(-1, 2)


def evaluate_vae(vae: vae_lib.VAE, cfg: presets.VaePgConfig, train, val, train_index, val_index,
                 ball_box=(1, 1), max_frames: int = 2000) -> Dict:
  """Validation -ELBO parts, the ball-pixel error (R6) and the mu -> ball probe R^2 (module docstring)."""
  val = val[:max_frames]
  val_index = val_index[:max_frames]
  x = vae_lib.frames_to_float(val)
  nll, kl = [], []
  for i in range(0, len(val), 256):
    logits, mu, logvar = vae(x[i:i + 256], sample=True)
    a, b = vae_lib.vae_terms(x[i:i + 256], logits, mu, logvar)
    nll.append(a.numpy())
    kl.append(b.numpy())
  result = {'val_frames': int(len(val)), 'val_nll': float(np.mean(np.concatenate(nll))) if nll else None,
            'val_kl': float(np.mean(np.concatenate(kl))) if kl else None}
  recon = diagnostics.reconstruct(vae, val)
  pos = _positions(val_index)
  masks = diagnostics.ball_masks(pos[:, 0], pos[:, 1], cfg.image_size, ball_box)
  result['ball'] = diagnostics.ball_pixel_error(val, recon, masks)
  result['mean_frame_mse'] = float(np.mean((vae_lib.frames_to_float(val).numpy()
                                            - vae_lib.frames_to_float(train[:max_frames]).numpy().mean(0)) ** 2))
  tr = train[:max_frames]
  tr_pos = _positions(train_index[:max_frames])
  has_tr, has_val = tr_pos[:, 0] >= 0, pos[:, 0] >= 0
  if has_tr.sum() > 10 and has_val.sum() > 10:
    f_tr = vae.encoder(vae_lib.frames_to_float(tr[has_tr]))[0].numpy()
    f_val = vae.encoder(vae_lib.frames_to_float(val[has_val]))[0].numpy()
    result['ball_probe_r2'] = diagnostics.ball_probe_r2(f_tr, tr_pos[has_tr], f_val, pos[has_val])
  return result


def pretrain(cfg: presets.VaePgConfig, logdir: str, frames_dir: Optional[str] = None,
             print_fn: Callable[[str], None] = print, max_steps: Optional[int] = None) -> PretrainResult:
  """Pre-trains the Table 1 VAE into `logdir` (module docstring); resumes a run there."""
  cfg.validate()
  check_resume(cfg, logdir, 'pretrain')
  start = time.monotonic()
  os.makedirs(logdir, exist_ok=True)
  if not frames_dir:
    frames_dir = os.path.join(logdir, 'frames')
    from rlcv_tf.datasets import atari_frames  # pylint: disable=g-import-not-at-top
    if not atari_frames.is_complete(frames_dir, cfg.pretrain_frames):
      _collect_frames(cfg, frames_dir, print_fn)
  train, val, train_index, val_index = load_frame_splits(frames_dir)
  if train.shape[1:] != (cfg.image_size, cfg.image_size, 1):
    raise ValueError(f'the frames in {frames_dir} are {train.shape[1:]}, this VAE takes '
                     f'({cfg.image_size}, {cfg.image_size}, 1): collect frames of the preset\'s environment or set '
                     '--image_size')
  keras.utils.set_random_seed(cfg.seed)
  vae = vae_lib.VAE(cfg.image_size, cfg.enc_filters, cfg.enc_fc, cfg.latent_dim).build_all()
  optimizer = keras.optimizers.Adam(cfg.pretrain_lr)
  optimizer.build(vae.trainable_variables)
  step = tf.Variable(0, dtype=tf.int64, trainable=False)
  epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
  ckpt = checkpointing.RunCheckpointer(tf.train.Checkpoint(vae=vae, optimizer=optimizer, step=step, epoch=epoch),
                                       logdir, interval_s=cfg.checkpoint_interval_s,
                                       export_fn=lambda path: export.export_vae(vae, path))
  if ckpt.restore_latest():
    print_fn(f'{PREFIX}resumed from {ckpt.latest} at epoch {int(epoch.numpy())}')
  writer = checkpointing.open_writer(logdir, dict(cfg.to_dict(), stage='pretrain', frames_dir=frames_dir),
                                     int(step.numpy()), print_fn, PREFIX)

  @tf.function(reduce_retracing=True)
  def train_step(x):
    with tf.GradientTape() as tape:
      loss, terms = vae_lib.vae_loss(vae, x, cfg.beta)
    grads = tape.gradient(loss, vae.trainable_variables)
    optimizer.apply_gradients(zip(grads, vae.trainable_variables))
    return terms

  steps_per_epoch = max(1, int(np.ceil(len(train) / cfg.pretrain_batch)))
  total_steps = steps_per_epoch * cfg.pretrain_epochs
  rate = progress.RateMeter()
  last_log = time.monotonic()
  losses: List[float] = []
  stop = runs.StopOnSignal(print_fn, prefix=PREFIX)
  failure = None
  session = 0
  with stop:
    try:
      rate.update(int(step.numpy()))
      while int(epoch.numpy()) < cfg.pretrain_epochs and not stop.requested:
        ep = int(epoch.numpy())
        order = np.random.default_rng(runs.derived_seed(cfg.seed, ep)).permutation(len(train))
        done_in_epoch = int(step.numpy()) - ep * steps_per_epoch
        for i in range(max(0, done_in_epoch), steps_per_epoch):
          if stop.requested or (max_steps is not None and session >= max_steps):
            break
          idx = np.sort(order[i * cfg.pretrain_batch:(i + 1) * cfg.pretrain_batch])
          terms = train_step(vae_lib.frames_to_float(train[idx]))
          step.assign_add(1)
          session += 1
          losses.append(float(terms['vae/loss']))
          now = time.monotonic()
          s = int(step.numpy())
          rate.update(s)
          if now - last_log >= cfg.log_interval_s or s == total_steps:
            with writer.as_default(step=s):
              for k, v in terms.items():
                tf.summary.scalar(k, v)
            print_fn(progress.line(PREFIX, s, total_steps, rate, [
                f'epoch {ep + 1}/{cfg.pretrain_epochs}', f'-ELBO {float(terms["vae/loss"]):.1f} '
                f'(NLL {float(terms["vae/nll"]):.1f}, KL {float(terms["vae/kl"]):.1f})'], unit='steps'))
            last_log = now
          ckpt.maybe_save(s)
        else:
          epoch.assign_add(1)
          continue
        break
    except Exception as e:  # pylint: disable=broad-except
      failure = e
    if failure is not None or stop.requested:
      ckpt.save_and_stop(int(step.numpy()), failure, stop, print_fn, PREFIX, unit='steps')
  ckpt.save(int(step.numpy()))
  weights = os.path.join(logdir, VAE_WEIGHTS)
  os.makedirs(os.path.dirname(weights), exist_ok=True)
  vae.save_weights(weights)
  ckpt.export()
  result = evaluate_vae(vae, cfg, train, val, train_index, val_index, ball_box=ball_box(cfg.env))
  result.update({'epochs': int(epoch.numpy()), 'steps': int(step.numpy()), 'train_frames': int(len(train)),
                 'frames_dir': frames_dir})
  with writer.as_default(step=int(step.numpy())):
    tf.summary.scalar('eval/val_nll', result['val_nll'] or 0.0)
    if 'mse_ball' in result['ball']:
      tf.summary.scalar('eval/mse_ball', result['ball']['mse_ball'])
      tf.summary.scalar('eval/mse_frame', result['ball']['mse_frame'])
  sheet = reconstruction_sheet(vae, val[:16], os.path.join(logdir, 'reconstructions.png'))
  with open(os.path.join(logdir, 'eval.json'), 'w') as f:
    json.dump(result, f, indent=1)
  writer.flush()
  ball = result['ball']
  ball_text = (f'; ball-pixel MSE {ball["mse_ball"]:.3f} vs whole-frame {ball["mse_frame"]:.4f} (ball intensity '
               f'{ball["ball_intensity"]:.2f})' if 'mse_ball' in ball else '')
  print_fn(f'{PREFIX}pre-training done in {progress.format_duration(time.monotonic() - start)}: validation NLL '
           f'{result["val_nll"]:.1f}, KL {result["val_kl"]:.1f}{ball_text}; {sheet}; weights {weights}; SavedModel '
           f'{ckpt.saved_model_dir}')
  return PretrainResult(int(epoch.numpy()), float(np.mean(losses[-50:])) if losses else float('nan'), result,
                        weights, ckpt.saved_model_dir)


def ball_box(env: str):
  """(width, height) in stored-frame pixels of the ball's box: MiniBreakout's 2x2 at 84 and 1x1 below; ALE
  Breakout's 2x4 screen pixels area-resized from 160x210 to 84x84 (about 1.05 x 1.6) rounded up to 2x2."""
  if env.startswith('mini_breakout'):
    return (2, 2) if env == 'mini_breakout_84' else (1, 1)
  return (2, 2)


def reconstruction_sheet(vae: vae_lib.VAE, frames: np.ndarray, path: str) -> str:
  """Frames (top row) over their reconstructions from mu (bottom row), both in [0, 1] (black 0, white 1), upscaled
  to about 168 px a frame, as a PNG."""
  if not len(frames):
    return 'no validation frames'
  recon = diagnostics.reconstruct(vae, frames)
  orig = vae_lib.frames_to_float(frames).numpy()
  grid = np.concatenate([orig, recon], axis=0)
  images_lib.save_grid(grid, path, rows=2, value_range=(0.0, 1.0), scale=max(2, 168 // int(orig.shape[1])))
  return f'reconstructions {path}'


# -------------------------------------------------------------------------------------------------------- PPO
class ActingPolicy:
  """The `sync_rollouts` policy: one batched network call, actions drawn from pi with a seeded generator; stores the
  behaviour log-probability and value of each step."""

  def __init__(self, learner: ppo_lib.PPOLearner, seed: int):
    self.learner = learner
    self.rng = np.random.default_rng(seed)

  def __call__(self, observations, state, first):
    del first
    logits, values = self.learner.act(observations)
    z = logits - logits.max(axis=1, keepdims=True)
    logp_all = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    probs = np.exp(logp_all)
    u = self.rng.random((len(probs), 1))
    actions = np.minimum((probs.cumsum(axis=1) < u).sum(axis=1), probs.shape[1] - 1).astype(np.int32)
    return actions, state, {'log_prob': logp_all[np.arange(len(actions)), actions].astype(np.float32),
                            'value': values.astype(np.float32)}


def _pool_factory(cfg: presets.VaePgConfig, seed_base: int):
  from rlcv_tf.runtime import pools  # pylint: disable=g-import-not-at-top
  from rlcv_tf.runtime import sync_rollouts  # pylint: disable=g-import-not-at-top
  configs = sync_rollouts.actor_configs(cfg.env, cfg.num_envs, cfg.envs_per_actor, seed=seed_base,
                                        num_frames=cfg.num_frames)
  return pools.make_pool(configs, runtime=cfg.runtime)


@dataclasses.dataclass
class RLResult:
  agent_steps: int
  iterations: int
  episodes: List[Dict]
  logs: Dict[str, float]
  grad_norms: List[Dict]
  saved_model: str
  wall_s: float
  learning_check: Optional[Dict] = None


def train_rl(cfg: presets.VaePgConfig, logdir: str, pretrain_logdir: Optional[str] = None,
             print_fn: Callable[[str], None] = print, pool_factory=_pool_factory,
             max_iterations: Optional[int] = None) -> RLResult:
  """PPO with `cfg.variant` into `logdir` (module docstring); resumes a run there."""
  cfg.validate()
  check_resume(cfg, logdir, 'rl')
  if cfg.variant in ('fixed', 'adapt'):
    if not pretrain_logdir:
      raise ValueError(f'variant {cfg.variant} starts from a pre-trained VAE: pass --pretrain_logdir=DIR of a '
                       'finished `--stage=pretrain` run (or use --variant=joint, which starts from scratch)')
    presets.check_pretrain_logdir(cfg, pretrain_logdir)
  registry.check_available(cfg.env)
  start = time.monotonic()
  _, num_actions, env_settings = env_layout(cfg)
  learner = ppo_lib.PPOLearner(cfg, num_actions, seed=cfg.seed)
  ckpt = checkpointing.RunCheckpointer(
      learner.checkpoint(), logdir, interval_s=cfg.checkpoint_interval_s,
      export_fn=lambda path: export.export_policy(learner.model, path, cfg.image_size,
                                                  learner.vae.decoder if cfg.variant == 'joint' else None))
  if ckpt.restore_latest():
    print_fn(f'{PREFIX}resumed from {ckpt.latest} at {int(learner.agent_steps.numpy()):,} agent steps')
  elif pretrain_logdir and cfg.variant != 'joint':
    learner.load_pretrained(os.path.join(pretrain_logdir, VAE_WEIGHTS))
    print_fn(f'{PREFIX}{cfg.variant}: encoder from the pre-trained VAE in {pretrain_logdir}'
             f'{" (frozen)" if cfg.variant == "fixed" else " (trained by PPO; decoder dropped)"}')
  steps = int(learner.agent_steps.numpy())
  record = dict(cfg.to_dict(), stage='rl', pretrain_logdir=pretrain_logdir or '',
                env_settings=env_settings)
  writer = checkpointing.open_writer(logdir, record, steps, print_fn, PREFIX)
  acting = ActingPolicy(learner, runs.derived_seed(cfg.seed, steps, 1))
  update_rng = np.random.default_rng(runs.derived_seed(cfg.seed, steps, 2))
  episodes_all: List[Dict] = load_episodes(logdir, up_to=steps)
  grad_norms: List[Dict] = load_grad_norms(logdir, up_to=steps)     # earlier sessions' (a resumed run keeps them)
  logs: Dict[str, float] = {}
  session = 0
  stop = runs.StopOnSignal(print_fn, prefix=PREFIX)
  failure = None
  if steps >= cfg.total_steps:
    print_fn(f'{PREFIX}{logdir} already holds {steps:,} agent steps >= total_steps={cfg.total_steps:,}; nothing to '
             'train (raise --total_steps to continue)')
  else:
    from rlcv_tf.runtime import sync_rollouts  # pylint: disable=g-import-not-at-top
    pool = pool_factory(cfg, runs.derived_seed(cfg.seed, steps, 3))
    rollouts = sync_rollouts.SyncRollouts(pool, cfg.t_max)
    rate = progress.RateMeter()
    recent = collections.deque(maxlen=10)
    recent.extend(episodes_all[-10:])
    last_log = time.monotonic()
    with stop:
      try:
        rollouts.start()
        rate.update(steps)
        while steps < cfg.total_steps and not stop.requested:
          if max_iterations is not None and session >= max_iterations:
            break
          rollout = rollouts.collect(acting)
          bootstrap = learner.values(rollout.observations[-1])
          batch = ppo_lib.flatten_rollout(rollout, rollout.extras['log_prob'], rollout.extras['value'], bootstrap,
                                          cfg)
          now = time.monotonic()
          log_now = session == 0 or now - last_log >= cfg.log_interval_s
          if log_now:
            norms = diagnostics.grad_norms_at_u(learner, batch, seed=int(learner.iterations.numpy()))
            grad_norms.append(dict(norms, agent_steps=steps))
          logs = learner.update(batch, update_rng)
          session += 1
          learner.agent_steps.assign_add(rollout.agent_steps)
          learner.episodes.assign_add(len(rollout.episodes))
          steps = int(learner.agent_steps.numpy())
          rate.update(steps)
          for e in rollout.episodes:
            e = {'score': float(np.sum(e['return'])), 'length': int(e.get('steps', e.get('length', 0))),
                 'agent_steps': steps, 'iteration': int(learner.iterations.numpy())}
            episodes_all.append(e)
            recent.append(e)
          with writer.as_default(step=steps):
            if rollout.episodes:
              tf.summary.scalar('episode/score_raw', np.mean([e['score'] for e in episodes_all[-len(rollout.episodes):]]))
            for k, v in logs.items():
              tf.summary.scalar(k, v)
            if log_now:
              for k, v in grad_norms[-1].items():
                if k != 'agent_steps':
                  tf.summary.scalar(k, v)
              tf.summary.scalar('throughput/agent_steps_per_second', rate.rate)
          if log_now or steps >= cfg.total_steps:
            score = (f'score {np.mean([e["score"] for e in recent]):.2f} (last {len(recent)} episodes)' if recent
                     else 'no finished episode yet')
            parts = [f'iteration {int(learner.iterations.numpy()):,}', score,
                     f'loss {logs["loss/total"]:.3f}', f'{int(logs["ppo/minibatch_updates"])} minibatch updates']
            if log_now:
              parts.append(f'|dL_VAE/dU| / |d(kappa L_PPO)/dU| {grad_norms[-1]["grad_u/vae_over_ppo"]:.1f}')
            print_fn(progress.line(PREFIX, steps, cfg.total_steps, rate, parts, unit='agent steps'))
            last_log = now
          episode_log.append(logdir, rollout.episodes and episodes_all[-len(rollout.episodes):] or [])
          ckpt.maybe_save(steps)
      except Exception as e:  # pylint: disable=broad-except
        failure = e
      finally:
        rollouts.close()
        writer.flush()
      if failure is not None or stop.requested:
        ckpt.save_and_stop(steps, failure, stop, print_fn, PREFIX, unit='agent steps')
    ckpt.save(steps)
  ckpt.export()
  check = None
  if session:
    check = learning_check.finish(cfg, logdir, episodes_all, num_actions, print_fn, PREFIX)
  with open(os.path.join(logdir, GRAD_NORMS_FILE), 'w') as f:
    json.dump(grad_norms, f, indent=1)
  writer.flush()
  print_fn(f'{PREFIX}done: {steps:,} agent steps, {int(learner.iterations.numpy()):,} iterations in '
           f'{progress.format_duration(time.monotonic() - start)}; checkpoint {ckpt.latest}; SavedModel '
           f'{ckpt.saved_model_dir}; TensorBoard: tensorboard --logdir={logdir}')
  return RLResult(steps, int(learner.iterations.numpy()), episodes_all, logs, grad_norms, ckpt.saved_model_dir,
                  time.monotonic() - start, None if check is None else check)


def restore_learner(cfg: presets.VaePgConfig, logdir: str) -> ppo_lib.PPOLearner:
  """The learner of the RL run in `logdir` at its latest checkpoint (for diagnostics: probes, Jacobians)."""
  _, num_actions, _ = env_layout(cfg)
  learner = ppo_lib.PPOLearner(cfg, num_actions, seed=cfg.seed)
  path = tf.train.latest_checkpoint(os.path.join(logdir, 'checkpoints'))
  if path is None:
    raise FileNotFoundError(f'{logdir} has no checkpoint: train it first')
  learner.checkpoint().restore(path).expect_partial()
  return learner


def encoder_ball_probe(cfg: presets.VaePgConfig, logdir: str, frames_dir: str, max_frames: int = 2000) -> Optional[float]:
  """R^2 of the mu -> ball (x, y) ridge probe for the encoder of the RL run in `logdir` (its latest checkpoint, after
  PPO), fitted on `frames_dir`'s train split and scored on its val split: does the policy's representation carry the
  ball? (For fixed runs it equals the pre-trained VAE's probe.) None without enough frames showing the ball."""
  learner = restore_learner(cfg, logdir)
  train, val, train_index, val_index = load_frame_splits(frames_dir)
  tr_pos, val_pos = _positions(train_index[:max_frames]), _positions(val_index[:max_frames])
  has_tr, has_val = tr_pos[:, 0] >= 0, val_pos[:, 0] >= 0
  if has_tr.sum() <= 10 or has_val.sum() <= 10:
    return None
  encode = lambda frames: learner.model.encoder(vae_lib.frames_to_float(frames))[0].numpy()
  return diagnostics.ball_probe_r2(encode(train[:max_frames][has_tr]), tr_pos[has_tr],
                                   encode(val[:max_frames][has_val]), val_pos[has_val])


EPISODES_FILE = 'episodes.jsonl'
GRAD_NORMS_FILE = 'grad_norms.json'


def load_grad_norms(logdir: str, up_to: Optional[int] = None) -> List[Dict]:
  """The R5 gradient norms a run in `logdir` recorded (those at agent steps <= `up_to`: a resumed run drops what it
  re-does); [] without the file."""
  path = os.path.join(logdir, GRAD_NORMS_FILE)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    norms = json.load(f)
  return [n for n in norms if up_to is None or n.get('agent_steps', 0) <= up_to]


def load_episodes(logdir: str, up_to: Optional[int] = None) -> List[Dict]:
  """The run's finished episodes; with `up_to` (a resumed run's restored agent steps) those recorded after the
  checkpoint are dropped from the file too (they will be played again)."""
  return episode_log.load(logdir, up_to, key='agent_steps', name=EPISODES_FILE)
