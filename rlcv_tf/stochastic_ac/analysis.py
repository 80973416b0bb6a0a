"""The analysis tools of thesis Sec. 2.6.2-2.6.3 (Figs. 2.5 and 2.6, T:L1233-1350; spec ch2 §5): how uncertain
the value is under the stochastic activations, and how spread the sampled actions are, along one episode, at
several points of training.

For one set of weights and one episode, at every step t = 1..T (the thesis: T = 700):
  value variance  sigma_v^2(t) = 1/(N-1) sum_i (f_V(k_t, z_t^(i)) - mean_i f_V)^2 over N = 5 fresh activation
                  samples z^(i) at the same LSTM output (the thesis's formula, T:L1240-1262; Fig. 2.5);
  action entropy  H(t) = -sum_a p_a ln p_a of the histogram of 50 actions, each drawn from pi under its own fresh
                  activation sample (SA3C: Boltzmann exploration plus stochastic activations; A3C-LSTM: from pi
                  alone, T:L1335-1345; Fig. 2.6).
The episode is played by the weights' own MAP policy from a fixed held-out seed (spec §5 PROPOSAL: the thesis does
not say which policy drives the trajectory), so every snapshot of a run sees the same starting state and the
statistics, not the trajectory, carry the randomness. The noise comes from a seeded NumPy generator.

Snapshots: `training.train` keeps the weights at `cfg.resolved_snapshot_iterations` (the thesis's figures use
iterations 100, 2K, 6K, 75K and 150K) in <logdir>/snapshots; `run_snapshots` lists them (or the latest checkpoint
when a run has none). `analyse_runs` covers several runs (A3C beside SA3C, as Fig. 2.6 does), `plot_figures`
draws the two figures as PNG files and `write_result` the numbers as JSON.
"""

import dataclasses
import glob
import json
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from rlcv_tf.envs import registry
from rlcv_tf.stochastic_ac import config as config_lib
from rlcv_tf.stochastic_ac import evaluation
from rlcv_tf.stochastic_ac import layers as layers_lib

THESIS_STEPS = 700           # t = 1..700 (T:L1241-1262, T:L1345)
THESIS_VALUE_SAMPLES = 5     # N = 5 (T:L1239)
THESIS_ACTION_SAMPLES = 50   # 50 sampled actions per step (T:L1341)
PREFIX = '[stochastic_ac_analysis] '


def empirical_entropy(actions: np.ndarray, num_actions: int) -> float:
  """Natural-log entropy of the histogram of `actions` (ints in [0, num_actions))."""
  counts = np.bincount(np.asarray(actions, np.int64).ravel(), minlength=int(num_actions)).astype(np.float64)
  p = counts[counts > 0] / counts.sum()
  return float(-(p * np.log(p)).sum())


@dataclasses.dataclass
class TrajectoryStats:
  """Per-step statistics of one episode (arrays over the steps played, at most `steps`)."""
  value_variance: np.ndarray    # sigma_v^2(t), ddof = 1 over the value samples
  action_entropy: np.ndarray    # entropy of the sampled actions' histogram (nats)
  map_value: np.ndarray         # V under the MAP activations
  map_action: np.ndarray        # the action played
  rewards: np.ndarray           # raw rewards
  ended: bool                   # the episode ended before `steps`

  def summary(self) -> Dict[str, float]:
    v, h = self.value_variance, self.action_entropy
    return {'steps': int(v.size), 'value_variance_mean': float(v.mean()), 'value_variance_median': float(np.median(v)),
            'action_entropy_mean': float(h.mean()), 'action_entropy_std': float(h.std()),
            'action_entropy_q10': float(np.quantile(h, 0.1)), 'action_entropy_q90': float(np.quantile(h, 0.9)),
            'score': float(self.rewards.sum()), 'ended': bool(self.ended)}


class _Stepper:
  """One tf.function per network: the LSTM step, the MAP heads, N value samples and M action samples."""

  def __init__(self, model, value_samples: int, action_samples: int):
    self.model = model
    self.value_samples = int(value_samples)
    self.action_samples = int(action_samples)
    self.step = tf.function(self._step)

  def _step(self, observation, state, first, value_noise, action_noise, gumbel):
    model = self.model
    h, new_state = model.core(observation, state, first)
    map_logits, map_value, extras = model.head(h, None, None, 'map')
    _, values, _ = evaluation.sampled_heads(model, h, self.value_samples, value_noise)
    logits, _, _ = evaluation.sampled_heads(model, h, self.action_samples, action_noise)
    sampled = tf.argmax(logits[:, 0] + gumbel, axis=-1, output_type=tf.int32)     # one action per sample
    if 'z_prev' in state:
      new_state['z_prev'] = extras['z']      # HPA3C: the MAP z (= mu) feeds the next step's prior
    return (tf.argmax(map_logits[0], output_type=tf.int32), map_value[0], values[:, 0], sampled, new_state)


def trajectory_statistics(model, env_name: str, seed: int, steps: int = THESIS_STEPS,
                          value_samples: int = THESIS_VALUE_SAMPLES, action_samples: int = THESIS_ACTION_SAMPLES,
                          noise_seed: int = 0, stepper: Optional['_Stepper'] = None) -> TrajectoryStats:
  """The module docstring's statistics along one episode of `env_name` from `seed`, played by `model`'s MAP policy
  for at most `steps` agent steps. `value_samples` >= 2 (a sample variance), `action_samples` >= 1. `stepper`: a
  `_Stepper` of `model` with the same sample counts, reused across calls (one trace for every snapshot)."""
  if int(value_samples) < 2:
    raise ValueError(f'value_samples: must be >= 2 for a sample variance, got {value_samples}')
  if int(action_samples) < 1 or int(steps) < 1:
    raise ValueError(f'action_samples and steps: must be >= 1, got {action_samples}, {steps}')
  if stepper is None:
    stepper = _Stepper(model, value_samples, action_samples)
  specs = model.noise_specs()
  num_actions = int(model.config.num_actions)
  rng = np.random.default_rng(noise_seed)
  env = registry.make_env(env_name, seed=int(seed))
  out: Dict[str, List[Any]] = {'var': [], 'ent': [], 'value': [], 'action': [], 'reward': []}
  ended = False
  try:
    observation = np.asarray(env.reset().observation, np.float32)
    state = {k: np.asarray(v) for k, v in model.initial_state(1).items()}
    first = np.ones(1, bool)
    for _ in range(int(steps)):
      value_noise = layers_lib.draw_noise(specs, value_samples, rng)
      action_noise = layers_lib.draw_noise(specs, action_samples, rng)
      gumbel = rng.gumbel(size=(action_samples, num_actions)).astype(np.float32)
      action, value, values, sampled, state = stepper.step(observation, state, first, value_noise, action_noise,
                                                           gumbel)
      first = np.zeros(1, bool)
      state = {k: v.numpy() for k, v in state.items()}
      values = values.numpy().astype(np.float64)
      out['var'].append(float(np.var(values, ddof=1)))
      out['ent'].append(empirical_entropy(sampled.numpy(), num_actions))
      out['value'].append(float(value))
      out['action'].append(int(action))
      ts = env.step(np.asarray([int(action)]))
      out['reward'].append(float(np.sum(ts.reward)))
      observation = np.asarray(ts.observation, np.float32)
      if ts.last():
        ended = True
        break
  finally:
    env.close()
  return TrajectoryStats(np.asarray(out['var']), np.asarray(out['ent']), np.asarray(out['value']),
                         np.asarray(out['action'], np.int32), np.asarray(out['reward']), ended)


# ---------------------------------------------------------------------------------------------------- runs


@dataclasses.dataclass
class Snapshot:
  iteration: int           # -1 when unknown (a checkpoint without its counters)
  agent_steps: int
  path: str                # the checkpoint prefix to read the network from
  label: str


def _counter(path: str, name: str) -> int:
  try:
    return int(tf.train.load_checkpoint(path).get_tensor(f'{name}/.ATTRIBUTES/VARIABLE_VALUE'))
  except (tf.errors.NotFoundError, ValueError):
    return -1


def _run_config(logdir: str) -> config_lib.StochasticACConfig:
  cfg = config_lib.StochasticACConfig.load(logdir)
  if cfg is None:
    raise evaluation.NoCheckpointError(f'{logdir} holds no Chapter 2 run (no config.json); train one with python '
                                       f'-m launchers.stochastic_ac --logdir={logdir}')
  if cfg.algorithm != 'a3c':
    raise evaluation.NoCheckpointError(f'{logdir} holds an {cfg.algorithm.upper()}-family run ({cfg.model}); the '
                                       f'analysis covers the A3C family ({", ".join(config_lib.A3C_MODELS)})')
  return cfg


def run_snapshots(logdir: str) -> List[Snapshot]:
  """The weights of a run to analyse, oldest first: every complete <logdir>/snapshots/iteration_*/, or, when there is
  none, the latest checkpoint. Raises evaluation.NoCheckpointError when the run has neither."""
  _run_config(logdir)
  found = []
  for d in sorted(glob.glob(os.path.join(logdir, 'snapshots', 'iteration_*'))):
    meta = os.path.join(d, 'snapshot.json')
    if d.endswith('.partial') or not os.path.exists(meta) or not os.path.exists(os.path.join(d, 'ckpt.index')):
      continue
    with open(meta) as f:
      info = json.load(f)
    found.append(Snapshot(int(info['iteration']), int(info['agent_steps']), os.path.join(d, 'ckpt'),
                          f'iter {int(info["iteration"]):,}'))
  if found:
    return sorted(found, key=lambda s: s.iteration)
  _, path = evaluation.find_checkpoint(logdir, 'latest')
  iteration, frames = _counter(path, 'iterations'), _counter(path, 'frames')
  return [Snapshot(iteration, frames, path, f'iter {iteration:,} (latest checkpoint)')]


def analyse_run(logdir: str, seed: Optional[int] = None, steps: int = THESIS_STEPS,
                value_samples: int = THESIS_VALUE_SAMPLES, action_samples: int = THESIS_ACTION_SAMPLES,
                noise_seed: int = 0, print_fn: Callable[[str], None] = print) -> Dict[str, Any]:
  """The statistics of every snapshot of one run (`run_snapshots`) on the episode from `seed` (default: the first
  unseen test seed, `config.test_seeds`). Returns a JSON-ready dict."""
  cfg = _run_config(logdir)
  seed = config_lib.test_seeds(1)[0] if seed is None else int(seed)
  observation_shape, num_actions = evaluation.env_layout(cfg.env)
  model = evaluation.build_model(cfg, observation_shape, num_actions)
  model.build_network()
  entries = []
  stepper = _Stepper(model, value_samples, action_samples)
  for snap in run_snapshots(logdir):
    tf.train.Checkpoint(model=model).read(snap.path).assert_existing_objects_matched().expect_partial()
    stats = trajectory_statistics(model, cfg.env, seed, steps, value_samples, action_samples, noise_seed, stepper)
    summary = stats.summary()
    print_fn(f'{PREFIX}{logdir} {snap.label}: {summary["steps"]} steps, V variance mean '
             f'{summary["value_variance_mean"]:.3g}, action entropy {summary["action_entropy_mean"]:.3f} +- '
             f'{summary["action_entropy_std"]:.3f} nats (max ln {num_actions} = {np.log(num_actions):.3f})')
    entries.append({'iteration': snap.iteration, 'agent_steps': snap.agent_steps, 'checkpoint': snap.path,
                    'label': snap.label, 'summary': summary,
                    'value_variance': stats.value_variance.tolist(), 'action_entropy': stats.action_entropy.tolist(),
                    'map_value': stats.map_value.tolist(), 'map_action': stats.map_action.tolist()})
  return {'logdir': logdir, 'env': cfg.env, 'model': cfg.model, 'num_actions': num_actions, 'seed': seed,
          'steps': int(steps), 'value_samples': int(value_samples), 'action_samples': int(action_samples),
          'noise_seed': int(noise_seed), 'snapshots': entries}


def analyse_runs(logdirs: Sequence[str], **kwargs) -> Dict[str, Any]:
  return {'runs': [analyse_run(d, **kwargs) for d in logdirs]}


# ---------------------------------------------------------------------------------------------------- output


def _pyplot():
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ImportError('matplotlib is missing (the figures need it): pip install "matplotlib>=3.8", or set up with '
                      'bash scripts/setup.sh') from None
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def _run_title(run: Dict[str, Any]) -> str:
  return f'{run["model"]} on {run["env"]}\n{os.path.basename(os.path.normpath(run["logdir"]))}'


def plot_figures(result: Dict[str, Any], out_dir: str) -> Tuple[str, str]:
  """value_variance.png (Fig. 2.5: sigma_v^2 over t, one line per snapshot, one panel per run) and
  action_entropy.png (Fig. 2.6: the distribution over t of the 50-sample entropy, per snapshot and run)."""
  plt = _pyplot()
  runs = result['runs']
  os.makedirs(out_dir, exist_ok=True)
  paths = (os.path.join(out_dir, 'value_variance.png'), os.path.join(out_dir, 'action_entropy.png'))
  fig, axes = plt.subplots(1, len(runs), figsize=(5.5 * len(runs), 3.8), squeeze=False)
  for ax, run in zip(axes[0], runs):
    for snap in run['snapshots']:
      ax.plot(np.arange(1, len(snap['value_variance']) + 1), snap['value_variance'], lw=0.8, label=snap['label'])
    if all(not np.any(snap['value_variance']) for snap in run['snapshots']):
      ax.text(0.5, 0.6, 'no stochastic activations: V has no variance', transform=ax.transAxes, ha='center',
              fontsize=8)
    ax.set_xlabel('time step t')
    ax.set_ylabel(f'variance of V over {run["value_samples"]} samples')
    ax.set_title(_run_title(run), fontsize=9)
    ax.legend(fontsize=7)
  fig.suptitle('Fig. 2.5 analogue: value variance under sampled activations', fontsize=10)
  fig.tight_layout()
  fig.savefig(paths[0], dpi=100)
  plt.close(fig)
  fig, axes = plt.subplots(1, len(runs), figsize=(5.5 * len(runs), 3.8), squeeze=False)
  for ax, run in zip(axes[0], runs):
    data = [snap['action_entropy'] for snap in run['snapshots']]
    ax.violinplot(data, showmedians=True)
    ax.axhline(np.log(run['num_actions']), color='grey', ls='--', lw=0.8)
    ax.set_xticks(np.arange(1, len(data) + 1), [s['label'] for s in run['snapshots']], fontsize=7, rotation=20)
    ax.set_ylabel(f'entropy of {run["action_samples"]} sampled actions (nats)')
    ax.set_title(_run_title(run) + f' (dashed: ln {run["num_actions"]})', fontsize=9)
  fig.suptitle('Fig. 2.6 analogue: entropy of sampled actions over the episode\'s steps', fontsize=10)
  fig.tight_layout()
  fig.savefig(paths[1], dpi=100)
  plt.close(fig)
  return paths


def write_result(result: Dict[str, Any], out_dir: str) -> str:
  os.makedirs(out_dir, exist_ok=True)
  path = os.path.join(out_dir, 'analysis.json')
  with open(path, 'w') as f:
    json.dump(result, f)
  return path
