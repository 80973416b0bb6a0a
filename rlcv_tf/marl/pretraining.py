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


def split_episodes(num_episodes: int, fraction: float, seed: int) -> Tuple[List[int], List[int]]:
  """Validation split BY EPISODE: a seeded shuffle, round(fraction * E) (at least 1) episodes held out."""
  if num_episodes < 2:
    raise replays.ReplayError(f'need at least 2 recorded episodes to hold out a validation episode, have '
                              f'{num_episodes}')
  order = np.random.default_rng(seed).permutation(num_episodes)
  n_val = min(num_episodes - 1, max(1, int(round(fraction * num_episodes))))
  return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


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
    obs, a, b = [], [], []
    for e in np.unique(self.ep[idx]):
      ts = self.t[idx][self.ep[idx] == e]
      ep = self.episodes[e]
      obs.append(ep.stacked(ts))
      if self.objective == 'predict':
        a.append(ep.positions[ts + 1])                                  # [k, N, 2]
      else:
        rows, cols = ep.occupancy(ts + 1, self.include_opponents)      # [k, H], [k, W]
        a.append(np.repeat(rows[:, None], ep.n, axis=1))
        b.append(np.repeat(cols[:, None], ep.n, axis=1))
    out = [np.concatenate(obs), np.concatenate(a)]
    if b:
      out.append(np.concatenate(b))
    return out


def objective_loss(objective: str, model, observations, targets):
  """The pre-training loss on a batch: Eq. 4.4 CE (targets = (positions,)) or observe-all BCE (row, col masks)."""
  out = model(observations, training=True)
  ones = tf.ones(tf.shape(out['pred_row'])[:-1])
  if objective == 'predict':
    return learning.predict_loss(out['pred_row'], out['pred_col'], targets[0], ones)
  return learning.observe_all_loss(out['pred_row'], out['pred_col'], targets[0], targets[1], ones)


def pretrain(cfg: PretrainConfig, logdir: str, print_fn: Callable[[str], None] = print) -> PretrainResult:
  """Pre-trains on the replays of `cfg.replay_dir` (see module docstring); raises ReplayError for bad data."""
  from rlcv_tf.marl import export  # pylint: disable=g-import-not-at-top
  cfg.validate()
  start = time.monotonic()
  reader = replays.ReplayReader(cfg.replay_dir)
  if cfg.objective == 'observe_all' and reader.layout != 'smm':
    raise replays.ReplayError(f'{cfg.replay_dir}: observe_all needs SMM replays, these are {reader.layout!r}')
  train_eps, val_eps = split_episodes(len(reader), cfg.validation_fraction, cfg.seed)
  episodes = [reader.load(i) for i in range(len(reader))]
  train_set = _Samples([episodes[i] for i in train_eps], cfg.objective, cfg.observe_all_opponents)
  val_set = _Samples([episodes[i] for i in val_eps], cfg.objective, cfg.observe_all_opponents)
  if not len(train_set) or not len(val_set):
    raise replays.ReplayError(f'{cfg.replay_dir}: episodes too short to give training and validation samples')
  n, h, w, _ = reader.observation_shape
  print_fn(f'[pretrain] {cfg.model} / {cfg.objective}: {len(reader)} episodes ({len(train_set):,} train samples '
           f'in {len(train_eps)} episodes, {len(val_set):,} validation samples in {len(val_eps)} episodes), '
           f'N={n}, map {h}x{w}; uniform NLL bounds log {h} = {np.log(h):.3f}, log {w} = {np.log(w):.3f}')

  keras.utils.set_random_seed(cfg.seed)
  model = networks.build_network(cfg.model, reader.num_actions, reader.observation_shape,
                                 stack_channels=cfg.stack_channels, feature_dim=cfg.feature_dim,
                                 num_heads=cfg.num_heads, prediction_heads=True)
  # Policy and value heads get no gradient from this objective: leave them out (fresh at transfer anyway).
  skip = {id(v) for layer in (model.policy_head, model.value_head) for v in layer.weights}
  variables = [v for v in model.trainable_variables if id(v) not in skip]
  optimizer = keras.optimizers.Adam(learning_rate=cfg.learning_rate, beta_1=0.9, beta_2=0.999,
                                    epsilon=cfg.adam_epsilon)
  optimizer.build(variables)
  write_meta(logdir, cfg, reader.observation_shape, reader.num_actions)
  best_manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), os.path.join(logdir, 'best'),
                                            max_to_keep=1)
  writer = tf.summary.create_file_writer(logdir)

  @tf.function
  def train_step(obs, *targets):
    with tf.GradientTape() as tape:
      loss, logs = objective_loss(cfg.objective, model, obs, targets)
    grads = tape.gradient(loss, variables)
    optimizer.apply_gradients(zip(grads, variables))
    return dict(logs, loss=loss)

  @tf.function
  def eval_step(obs, *targets):
    loss, logs = objective_loss(cfg.objective, model, obs, targets)
    return dict(logs, loss=loss)

  def evaluate() -> Dict[str, float]:
    order = np.arange(len(val_set))
    batches = [order[i:i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
    if cfg.max_eval_batches:
      batches = batches[:cfg.max_eval_batches]
    sums: Dict[str, float] = {}
    total = 0
    for idx in batches:
      logs = eval_step(*val_set.batch(idx))
      for k, v in logs.items():
        sums[k] = sums.get(k, 0.0) + float(v) * len(idx)
      total += len(idx)
    return {k: v / total for k, v in sums.items()}

  rng = np.random.default_rng(cfg.seed + 1)
  history: List[Dict[str, float]] = []
  best = (np.inf, 0, {})
  bad = 0
  last_log = time.monotonic()
  rate = progress.RateMeter()
  train_logs: Dict[str, float] = {}
  step = 0
  for step in range(1, cfg.max_steps + 1):
    idx = rng.integers(0, len(train_set), size=cfg.batch_size)
    train_logs = {k: float(v) for k, v in train_step(*train_set.batch(idx)).items()}
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
           f'TensorBoard: tensorboard --logdir={logdir}')
  return PretrainResult(step, best[1], best[0], best[2], best_manager.latest_checkpoint, saved_model, history,
                        train_eps, val_eps)


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
