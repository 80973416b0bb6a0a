"""Pre-training CNN / ACNN predictors from observations without actions, and transfer to RL (thesis Sec. 4.2.3,
Sec. 4.4.2, App. 4.D, Sec. 4.4.5; spec ch4 §2.6-2.8, §3.4).

Objective: Eq. 4.4, every agent predicts its own next-step row (softmax over H) and column (softmax over W) with
cross-entropy (`objective='predict'`), or the agent-agnostic observe-all occupancy masks with sigmoid BCE
(`objective='observe_all'`). Input is exactly the RL input (the same stacked per-agent observation), so the
weights transfer. App. 4.D: Adam (beta1 0.9, beta2 0.999, eps 1e-7), lr 0.002, batch 32, 1/15 of the data held
out, training until the validation NLL plateaus. We split by EPISODE (so near-identical neighbouring frames never
straddle the split), evaluate every `eval_every` steps and stop after `patience` evaluations without a new best
(spec §4.3 [P]: 500 / 5), keeping the best checkpoint.

Reported NLLs are per axis and per agent (mean over agents), next to the uniform bounds log H and log W; the
agent-summed values (x N) are logged as well, since Table 4.D.1's GRF numbers (~8 > log 96) can only be sums
over agents (spec §8 row 11).

A pre-training logdir holds:
  pretrain_config.json   {"config": PretrainConfig, "observation_shape": [N, H, W, C], "num_actions": A}
  best/ckpt-<step>       tf.train.Checkpoint(model=...) of the best validation NLL: what --init_from and
                         --progressive_from load (the logdir or that checkpoint prefix)
  checkpoints/ckpt-<step> tf.train.Checkpoint(model, optimizer, step, state): the resume point (Adam state, best
                         validation NLL, patience counter, history, sampler states), written at every evaluation;
                         re-running with the same logdir continues from it (`pretrain`)
  events.*               TensorBoard: train/* and val/* NLL, accuracy, uniform bounds
  saved_model/           the predictor as a SavedModel (`export.export_policy`, with pred_row / pred_col)
"""

import dataclasses
import json
import os
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

from rlcv_tf.core import progress
from rlcv_tf.marl import config as config_lib
from rlcv_tf.marl import learning
from rlcv_tf.marl import networks
from rlcv_tf.marl import replays

CONFIG_FILE = 'pretrain_config.json'
OBJECTIVES = config_lib.PRETRAIN_OBJECTIVES


class TransferError(ValueError):
  """A pre-trained model cannot be used as asked (missing, other architecture, other observations)."""


# The configuration lives in `config` (no TensorFlow import), so the launcher validates flags in a second.
PretrainConfig = config_lib.PretrainConfig


def _config_from_dict(d: Dict[str, Any]) -> PretrainConfig:
  known = {f.name for f in dataclasses.fields(PretrainConfig)}
  d = {k: v for k, v in d.items() if k in known}
  d['stack_channels'] = tuple(tuple(x) for x in d.get('stack_channels', networks.DEFAULT_STACKS))
  return PretrainConfig(**d)


def write_meta(logdir: str, cfg: PretrainConfig, observation_shape, num_actions: int):
  os.makedirs(logdir, exist_ok=True)
  meta = {'config': dataclasses.asdict(cfg), 'observation_shape': [int(d) for d in observation_shape],
          'num_actions': int(num_actions)}
  with open(os.path.join(logdir, CONFIG_FILE), 'w') as f:
    json.dump(meta, f, indent=2, sort_keys=True)


def save_pretrained(model: networks.MarlNetwork, cfg: PretrainConfig, logdir: str, observation_shape,
                    step: int = 0) -> str:
  """Writes a model in the pre-training logdir format (what training does at every new best); for tools/tests."""
  write_meta(logdir, cfg, observation_shape, model.num_actions)
  return tf.train.Checkpoint(model=model).save(os.path.join(logdir, 'best', f'ckpt-{step}'))


def _resolve(path: str, flag: str) -> Tuple[str, str]:
  """(config file, checkpoint prefix) for a pre-training logdir or one of its checkpoint prefixes."""
  if os.path.isdir(path):
    cfg_path = os.path.join(path, CONFIG_FILE)
    if not os.path.exists(cfg_path):
      raise TransferError(f'--{flag}={path}: not a pre-training logdir ({CONFIG_FILE} missing); train one with '
                          'launchers/marl_pretrain.py')
    ckpt = tf.train.latest_checkpoint(os.path.join(path, 'best'))
    if ckpt is None:
      raise TransferError(f'--{flag}={path}: holds no checkpoint yet (best/ is empty)')
    return cfg_path, ckpt
  if os.path.exists(path + '.index'):
    for d in (os.path.dirname(path), os.path.dirname(os.path.dirname(path))):
      if os.path.exists(os.path.join(d, CONFIG_FILE)):
        return os.path.join(d, CONFIG_FILE), path
    raise TransferError(f'--{flag}={path}: no {CONFIG_FILE} next to this checkpoint or one directory up')
  raise TransferError(f'--{flag}={path}: no such pre-training logdir or checkpoint')


def load_pretrained(path: str, observation_shape, kind: Optional[str] = None,
                    flag: str = 'init_from') -> Tuple[networks.MarlNetwork, Dict[str, Any]]:
  """Builds the pre-trained network for observations (N, H, W, C) and restores its checkpoint.

  N may differ from pre-training (weights are shared across agents); H, W, C may not. The restore is asserted
  (`assert_existing_objects_matched`), so a checkpoint that lacks any of the model's variables is an error, never
  a silent no-op. Returns the network and a dict with its `objective`, `config`, `checkpoint`.
  """
  cfg_path, ckpt = _resolve(path, flag)
  with open(cfg_path) as f:
    meta = json.load(f)
  cfg = _config_from_dict(meta['config'])
  if kind is not None and cfg.model != kind:
    raise TransferError(f'--{flag}={path}: holds a pre-trained {cfg.model}, but this run needs a {kind}')
  pre_hwc = tuple(meta['observation_shape'][1:])
  if tuple(observation_shape[1:]) != pre_hwc:
    raise TransferError(f'--{flag}={path}: was pre-trained on observations HxWxC={pre_hwc}, this run has '
                        f'{tuple(observation_shape[1:])}')
  net = networks.build_network(cfg.model, int(meta['num_actions']), tuple(observation_shape),
                               stack_channels=cfg.stack_channels, feature_dim=cfg.feature_dim,
                               num_heads=cfg.num_heads, prediction_heads=True)
  tf.train.Checkpoint(model=net).restore(ckpt).assert_existing_objects_matched().expect_partial()
  return net, {'objective': cfg.objective, 'config': cfg, 'checkpoint': ckpt}


def copy_pretrained(source: networks.MarlNetwork, target: keras.Model, copy_heads: bool,
                    expect: Optional[Dict[str, Any]] = None) -> List[str]:
  """Weight-initialisation transfer (spec §2.8 "init"): torso (convs + FC), attention and, with `copy_heads`,
  the row/column heads go from `source` to `target`; policy and value heads are left as they are."""
  for name, want in (expect or {}).items():
    have = getattr(source, name)
    have = tuple(tuple(x) for x in have) if name == 'stack_channels' else have
    want = tuple(tuple(x) for x in want) if name == 'stack_channels' else want
    if have != want:
      raise TransferError(f'init_from: the pre-trained model has {name}={have!r}, this run {name}={want!r}; '
                          'use the same architecture for both')
  pairs = [('torso', source.torso, target.torso)]
  if (source.attention is None) != (target.attention is None):
    raise TransferError('init_from: the pre-trained and the RL model differ in having attention')
  if source.attention is not None:
    pairs.append(('attention', source.attention, target.attention))
  if copy_heads and getattr(target, 'row_head', None) is not None:
    pairs += [('pred_row', source.row_head, target.row_head), ('pred_col', source.col_head, target.col_head)]
  for name, src, dst in pairs:
    if len(src.weights) != len(dst.weights):
      raise TransferError(f'init_from: {name} has {len(src.weights)} weights pre-trained, {len(dst.weights)} here')
    for a, b in zip(src.weights, dst.weights):
      if tuple(a.shape) != tuple(b.shape):
        raise TransferError(f'init_from: {name} weight {b.path} has shape {tuple(b.shape)}, pre-trained '
                            f'{tuple(a.shape)}')
      b.assign(a)
  return [p[0] for p in pairs]


# ------------------------------------------------------------------------------------------------ training
RESUME_DIR = 'checkpoints'
# What a resumed run must share with the saved one: the network and what it learns to predict. Schedule
# fields (max_steps, eval_every, patience, batch_size, learning_rate, ...) may change between sessions.
RESUME_FIELDS = ('model', 'objective', 'observe_all_opponents', 'stack_channels', 'feature_dim', 'num_heads')


class ResumeError(ValueError):
  """A logdir holds a pre-training run that these settings cannot continue; the message names what differs."""


@dataclasses.dataclass
class PretrainResult:
  steps: int
  best_step: int
  best_val_nll: float                 # row + col, per agent
  best_val: Dict[str, float]
  checkpoint: str
  saved_model: str
  history: List[Dict[str, float]]
  train_episodes: List[int]
  val_episodes: List[int]
  resumed_from: int = 0               # the step this session started from (0: a fresh run)
  peak_resident_episodes: int = 0     # most episodes decoded at once (all of them without streaming)


def split_episodes(num_episodes: int, fraction: float, seed: int) -> Tuple[List[int], List[int]]:
  """Validation split BY EPISODE: a seeded shuffle, round(fraction * E) (at least 1) episodes held out."""
  if num_episodes < 2:
    raise replays.ReplayError(f'need at least 2 recorded episodes to hold out a validation episode, have '
                              f'{num_episodes}')
  order = np.random.default_rng(seed).permutation(num_episodes)
  n_val = min(num_episodes - 1, max(1, int(round(fraction * num_episodes))))
  return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


def _assemble(pieces, objective: str, include_opponents: bool):
  """A batch from [(episode, steps t)]: inputs the stacked observations at t, targets at t+1 (predict: the
  positions at t+1, then those at t for the jump mask)."""
  obs, a, b = [], [], []
  for ep, ts in pieces:
    obs.append(ep.stacked(ts))
    if objective == 'predict':
      a.append(ep.positions[ts + 1])                                  # [k, N, 2]
      b.append(ep.positions[ts])
    else:
      rows, cols = ep.occupancy(ts + 1, include_opponents)           # [k, H], [k, W]
      a.append(np.repeat(rows[:, None], ep.n, axis=1))
      b.append(np.repeat(cols[:, None], ep.n, axis=1))
  out = [np.concatenate(obs), np.concatenate(a)]
  if b:
    out.append(np.concatenate(b))
  return out


class _Samples:
  """(episode, t) pairs whose step t+1 exists, with batch assembly (inputs at t, targets at t+1)."""

  def __init__(self, episodes: List[replays.Episode], objective: str, include_opponents: bool):
    self.episodes = episodes
    self.objective = objective
    self.include_opponents = include_opponents
    pairs = [(e, t) for e, ep in enumerate(episodes) for t in range(ep.length - 1)]
    self.ep = np.array([p[0] for p in pairs], np.int64)
    self.t = np.array([p[1] for p in pairs], np.int64)

  def __len__(self):
    return len(self.t)

  def batch(self, idx: np.ndarray):
    pieces = [(self.episodes[e], self.t[idx][self.ep[idx] == e]) for e in np.unique(self.ep[idx])]
    return _assemble(pieces, self.objective, self.include_opponents)


def objective_loss(objective: str, model, observations, targets, max_jump: int = 0):
  """The pre-training loss on a batch: Eq. 4.4 CE (targets = (positions at t+1, positions at t)) or observe-all
  BCE (row, col masks). `max_jump` > 0 drops predict targets that far from the current position, as the RL
  auxiliary loss does (`learning.jump_mask`: a switched player or a kick-off reset)."""
  out = model(observations, training=True)
  ones = tf.ones(tf.shape(out['pred_row'])[:-1])
  if objective == 'predict':
    valid = ones
    if max_jump:
      valid = learning.jump_mask(tf.stack([targets[1], targets[0]]), max_jump)[0]
    return learning.predict_loss(out['pred_row'], out['pred_col'], targets[0], valid)
  return learning.observe_all_loss(out['pred_row'], out['pred_col'], targets[0], targets[1], ones)


def _flag_text(name: str, value) -> str:
  if name == 'stack_channels':
    value = ','.join(f'{c}x{b}' for c, b in value)
  return f'--{name}={value}'


def check_resumable(logdir: str, cfg: PretrainConfig, observation_shape=None) -> Optional[Dict[str, Any]]:
  """The saved run's meta (`pretrain_config.json`) if `logdir` holds one, after checking that `cfg` may continue
  it (same RESUME_FIELDS and, when given, the same observation shape); None for a new logdir. Raises
  ResumeError naming the differing settings as flags."""
  path = os.path.join(logdir, CONFIG_FILE)
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      meta = json.load(f)
    saved = _config_from_dict(meta['config'])
  except (OSError, ValueError, TypeError, KeyError) as e:
    raise ResumeError(f'--logdir={logdir}: {CONFIG_FILE} is unreadable ({e}); pass a new --logdir') from None
  def relevant(name):
    # num_heads shapes only the ACNN's attention, the opponents switch only observe_all's targets.
    return not ((name == 'num_heads' and cfg.model != 'acnn') or
                (name == 'observe_all_opponents' and cfg.objective != 'observe_all'))

  def value(c, name):
    v = getattr(c, name)
    return tuple(tuple(int(x) for x in s) for s in v) if name == 'stack_channels' else v

  differ = [k for k in RESUME_FIELDS if relevant(k) and value(saved, k) != value(cfg, k)]
  if differ:
    have = ' '.join(_flag_text(k, getattr(saved, k)) for k in differ)
    want = ' '.join(_flag_text(k, getattr(cfg, k)) for k in differ)
    raise ResumeError(f'--logdir={logdir}: holds a pre-training run with {have}, but the flags ask for {want}; '
                      'resume it with the same settings or pass a new --logdir')
  if observation_shape is not None and tuple(meta['observation_shape']) != tuple(observation_shape):
    raise ResumeError(f'--logdir={logdir}: was pre-trained on observations {tuple(meta["observation_shape"])} '
                      f'(N, H, W, C), --replay_dir={cfg.replay_dir} holds {tuple(observation_shape)}; pass a new '
                      '--logdir')
  return meta


def _check_split(logdir: str, cfg: PretrainConfig, saved: Dict[str, Any], num_episodes: int, train_eps, val_eps):
  """A resumed run must hold out the same episodes, or its best validation NLL would compare different sets."""
  if saved['train'] == train_eps and saved['val'] == val_eps:
    return
  what = []
  if saved['num_episodes'] != num_episodes:
    what.append(f'--replay_dir={cfg.replay_dir} now holds {num_episodes} episodes, the saved run had '
                f'{saved["num_episodes"]}')
  for name in ('seed', 'validation_fraction'):
    if saved[name] != getattr(cfg, name):
      what.append(f'--{name}={getattr(cfg, name)} (saved run: {saved[name]})')
  raise ResumeError(f'--logdir={logdir}: the validation split differs from the saved run\'s '
                    f'({"; ".join(what) or "other episodes held out"}); resume with the same replays and flags '
                    'or pass a new --logdir')


def pretrain(cfg: PretrainConfig, logdir: str, print_fn: Callable[[str], None] = print) -> PretrainResult:
  """Pre-trains on the replays of `cfg.replay_dir` (see module docstring); raises ReplayError for bad data and
  ResumeError when `logdir` holds a run these settings cannot continue.

  Resuming: `logdir/checkpoints/` holds the model, the Adam state, the step, the best validation NLL so far,
  the early-stopping counter, the evaluation history and the batch samplers' generator states, written at every
  evaluation (and so at the end); a run in a logdir that has one continues from it (e.g. with a larger
  max_steps), drawing the same batches an uninterrupted run would have drawn.

  `cfg.max_resident_episodes`: 0 (or at least the number of episodes) decodes every episode up front. Otherwise at
  most that many are decoded at once: a shuffle buffer of `max_resident_episodes - 1` training episodes that
  rotates as samples are drawn (`replays.EpisodeShuffleBuffer`), and one slot through which the whole
  validation split streams, episode by episode, at every evaluation.
  """
  from rlcv_tf.marl import export  # pylint: disable=g-import-not-at-top
  cfg.validate()
  max_resident_episodes = cfg.max_resident_episodes
  start = time.monotonic()
  saved_meta = check_resumable(logdir, cfg)       # before any replay is read: a wrong --logdir fails at once
  reader = replays.ReplayReader(cfg.replay_dir)
  if saved_meta is not None:
    check_resumable(logdir, cfg, reader.observation_shape)
  if cfg.objective == 'observe_all' and reader.layout != 'smm':
    raise replays.ReplayError(f'{cfg.replay_dir}: observe_all needs SMM replays, these are {reader.layout!r}')
  train_eps, val_eps = split_episodes(len(reader), cfg.validation_fraction, cfg.seed)
  counts = reader.sample_counts(horizon=1)
  num_train, num_val = int(counts[train_eps].sum()), int(counts[val_eps].sum())
  if not num_train or not num_val:
    raise replays.ReplayError(f'{cfg.replay_dir}: episodes too short to give training and validation samples')
  streaming = 0 < max_resident_episodes < len(reader)
  if streaming:
    train_buffer = replays.EpisodeShuffleBuffer(reader, train_eps, max_resident_episodes - 1, seed=cfg.seed + 2)
    memory = (f'streaming: at most {max_resident_episodes} episodes decoded at once ({train_buffer.capacity} in '
              'the training shuffle buffer, validation one episode at a time)')
  else:
    episodes = {i: reader.load(i) for i in range(len(reader))}
    train_set = _Samples([episodes[i] for i in train_eps], cfg.objective, cfg.observe_all_opponents)
    val_set = _Samples([episodes[i] for i in val_eps], cfg.objective, cfg.observe_all_opponents)
    memory = f'all {len(reader)} episodes in memory'
  n, h, w, _ = reader.observation_shape
  print_fn(f'[pretrain] {cfg.model} / {cfg.objective}: {len(reader)} episodes ({num_train:,} train samples '
           f'in {len(train_eps)} episodes, {num_val:,} validation samples in {len(val_eps)} episodes; '
           f'{memory}), N={n}, map {h}x{w}; uniform NLL bounds log {h} = {np.log(h):.3f}, log {w} = '
           f'{np.log(w):.3f}')

  keras.utils.set_random_seed(cfg.seed)
  model = networks.build_network(cfg.model, reader.num_actions, reader.observation_shape,
                                 stack_channels=cfg.stack_channels, feature_dim=cfg.feature_dim,
                                 num_heads=cfg.num_heads, prediction_heads=True)
  # Policy and value heads get no gradient from this objective: leave them out (fresh at transfer anyway).
  skip = {id(v) for layer in (model.policy_head, model.value_head) for v in layer.weights}
  variables = [v for v in model.trainable_variables if id(v) not in skip]
  optimizer = keras.optimizers.Adam(learning_rate=cfg.learning_rate, beta_1=0.9, beta_2=0.999,
                                    epsilon=cfg.adam_epsilon)
  optimizer.build(variables)       # Adam's slots exist before a resume restores them
  step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
  # Everything else a resumed run needs is small and not a tensor: one JSON string inside the same checkpoint,
  # so the weights and the bookkeeping are always written (and restored) together.
  state_var = tf.Variable('{}', dtype=tf.string, trainable=False, name='state')
  resume_manager = tf.train.CheckpointManager(
      tf.train.Checkpoint(model=model, optimizer=optimizer, step=step_var, state=state_var),
      os.path.join(logdir, RESUME_DIR), max_to_keep=2)
  best_manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), os.path.join(logdir, 'best'),
                                            max_to_keep=1)

  rng = np.random.default_rng(cfg.seed + 1)
  history: List[Dict[str, float]] = []
  best = (np.inf, 0, {})
  bad = 0
  resumed_from = 0
  split = {'num_episodes': len(reader), 'seed': cfg.seed, 'validation_fraction': cfg.validation_fraction,
           'train': train_eps, 'val': val_eps}
  if resume_manager.latest_checkpoint:
    resume_manager.checkpoint.restore(resume_manager.latest_checkpoint).assert_existing_objects_matched()
    state = json.loads(state_var.numpy().decode())
    _check_split(logdir, cfg, state['split'], len(reader), train_eps, val_eps)
    resumed_from = int(step_var.numpy())
    best = (float(state['best_nll']), int(state['best_step']), state['best_val'])
    bad, history = int(state['bad']), state['history']
    rng.bit_generator.state = state['train_rng']
    # Adam's learning rate is a checkpointed variable: the flag of this session wins over the saved value.
    optimizer.learning_rate = cfg.learning_rate
    note = ''
    if streaming and not (state.get('stream') and train_buffer.restore(state['stream'])):
      note = ' (the training shuffle buffer starts afresh: --max_resident_episodes changed)'
    print_fn(f'[pretrain] resumed from {resume_manager.latest_checkpoint} at step {resumed_from:,}: best '
             f'validation NLL {best[0]:.4f} at step {best[1]:,}, patience {bad}/{cfg.patience}{note}')
  elif saved_meta is not None:
    print_fn(f'[pretrain] {logdir} holds no resume checkpoint ({RESUME_DIR}/): starting from step 0')
  write_meta(logdir, cfg, reader.observation_shape, reader.num_actions)
  writer = tf.summary.create_file_writer(logdir)

  def save_resume_checkpoint(at_step: int):
    state = {'best_nll': best[0], 'best_step': best[1], 'best_val': best[2], 'bad': bad, 'history': history,
             'train_rng': rng.bit_generator.state, 'stream': train_buffer.state() if streaming else None,
             'split': split}
    step_var.assign(at_step)
    state_var.assign(json.dumps(state))
    resume_manager.save(checkpoint_number=at_step)

  @tf.function
  def train_step(obs, *targets):
    with tf.GradientTape() as tape:
      loss, logs = objective_loss(cfg.objective, model, obs, targets, cfg.max_jump_px)
    grads = tape.gradient(loss, variables)
    optimizer.apply_gradients(zip(grads, variables))
    return dict(logs, loss=loss)

  @tf.function
  def eval_step(obs, *targets):
    loss, logs = objective_loss(cfg.objective, model, obs, targets, cfg.max_jump_px)
    return dict(logs, loss=loss)

  peak_resident = 0 if streaming else len(reader)     # most episodes decoded at once, for the result

  def validation_batches():
    """The validation split in batches; streamed, only one of its episodes is decoded at a time."""
    nonlocal peak_resident
    if not streaming:
      order = np.arange(len(val_set))
      for i in range(0, len(order), cfg.batch_size):
        yield val_set.batch(order[i:i + cfg.batch_size])
      return
    for i in val_eps:
      episode = reader.load(i)
      peak_resident = max(peak_resident, train_buffer.num_resident + 1)
      ts = np.arange(episode.length - 1)
      for j in range(0, len(ts), cfg.batch_size):
        yield _assemble([(episode, ts[j:j + cfg.batch_size])], cfg.objective, cfg.observe_all_opponents)
      del episode                  # freed before the next one is decoded

  def evaluate() -> Dict[str, float]:
    sums: Dict[str, float] = {}
    total = 0
    for k, batch in enumerate(validation_batches()):
      if cfg.max_eval_batches and k >= cfg.max_eval_batches:
        break
      size = len(batch[0])
      logs = eval_step(*batch)
      for key, v in logs.items():
        sums[key] = sums.get(key, 0.0) + float(v) * size
      total += size
    return {k: v / total for k, v in sums.items()}

  def training_batch():
    if streaming:
      return _assemble(train_buffer.draw(cfg.batch_size), cfg.objective, cfg.observe_all_opponents)
    return train_set.batch(rng.integers(0, len(train_set), size=cfg.batch_size))

  last_log = time.monotonic()
  rate = progress.RateMeter()
  train_logs: Dict[str, float] = {}
  step = resumed_from
  if bad >= cfg.patience:
    print_fn(f'[pretrain] the saved run stopped early (no better validation NLL in {bad} evaluations); raise '
             '--patience to continue it')
  elif step >= cfg.max_steps:
    print_fn(f'[pretrain] the saved run is at step {step:,} >= max_steps={cfg.max_steps:,}; raise --max_steps to '
             'continue it')
  else:
    for step in range(resumed_from + 1, cfg.max_steps + 1):
      train_logs = {k: float(v) for k, v in train_step(*training_batch()).items()}
      rate.update(step)
      if step % cfg.eval_every == 0 or step == cfg.max_steps:
        val = evaluate()
        val_nll = val['aux/nll_row'] + val['aux/nll_col']
        improved = val_nll < best[0] - 1e-6
        if improved:
          best = (val_nll, step, val)
          best_manager.save(checkpoint_number=step)
          bad = 0
        else:
          bad += 1
        history.append(dict(step=step, **{f'val/{k}': v for k, v in val.items()},
                            **{f'train/{k}': v for k, v in train_logs.items()}))
        with writer.as_default(step=step):
          for prefix, logs in (('train', train_logs), ('val', val)):
            for k, v in logs.items():
              tf.summary.scalar(f'{prefix}/{k.replace("aux/", "")}', v)
            if cfg.objective == 'predict':
              tf.summary.scalar(f'{prefix}/nll_agent_sum', n * (logs['aux/nll_row'] + logs['aux/nll_col']))
          tf.summary.scalar('val/uniform_nll_row', float(np.log(h)))
          tf.summary.scalar('val/uniform_nll_col', float(np.log(w)))
          tf.summary.scalar('val/best_nll', best[0])
        print_fn(_line(step, cfg, train_logs, val, best, bad, h, w, rate))
        save_resume_checkpoint(step)     # at every evaluation, so also at the end and at an early stop
        last_log = time.monotonic()
        if bad >= cfg.patience:
          print_fn(f'[pretrain] early stop: no better validation NLL in {cfg.patience} evaluations')
          break
      elif time.monotonic() - last_log >= cfg.log_interval_s:
        print_fn(_line(step, cfg, train_logs, None, best, bad, h, w, rate))
        last_log = time.monotonic()
  writer.flush()
  tf.train.Checkpoint(model=model).restore(best_manager.latest_checkpoint).assert_existing_objects_matched()
  saved_model = export.export_policy(model, os.path.join(logdir, 'saved_model'), reader.observation_shape[1:])
  print_fn(f'[pretrain] done in {progress.format_duration(time.monotonic() - start)}: best validation NLL '
           f'{best[0]:.4f} at step {best[1]} (row {best[2]["aux/nll_row"]:.4f}, col {best[2]["aux/nll_col"]:.4f}); '
           f'checkpoint {best_manager.latest_checkpoint} (use --init_from={logdir} or --progressive_from={logdir}); '
           f'resume with the same flags and --logdir={logdir}; TensorBoard: tensorboard --logdir={logdir}')
  if streaming:
    peak_resident = max(peak_resident, train_buffer.peak_resident)
  return PretrainResult(step, best[1], best[0], best[2], best_manager.latest_checkpoint, saved_model, history,
                        train_eps, val_eps, resumed_from, peak_resident)


def _line(step, cfg, train, val, best, bad, h, w, rate) -> str:
  name = 'NLL' if cfg.objective == 'predict' else 'BCE'
  parts = [f'[pretrain] step {step:,}/{cfg.max_steps:,}', f'{rate.rate:.1f} steps/s',
           f'train {name} row {train["aux/nll_row"]:.3f} col {train["aux/nll_col"]:.3f}']
  if val is not None:
    parts.append(f'val {name} row {val["aux/nll_row"]:.3f} col {val["aux/nll_col"]:.3f} '
                 f'acc row {val["aux/accuracy_row"]:.2f} col {val["aux/accuracy_col"]:.2f}')
  if cfg.objective == 'predict':
    parts.append(f'uniform {np.log(h):.3f} / {np.log(w):.3f}')
  if np.isfinite(best[0]):
    parts.append(f'best {best[0]:.3f} @ {best[1]:,} (patience {bad}/{cfg.patience})')
  return ' | '.join(parts)
