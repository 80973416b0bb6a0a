"""Chapter 2's replay-based trainers: the ACER family (acer, sacer, nn_acer) and the DDPG family (ddpg, sddpg,
pn_ddpg) (thesis Sec. 2.4.2, Alg. 4-5, App. 2.D-2.E; issue 10 Sec. 3).

    cfg = offpolicy_training.make_config('car_racing', 'sacer')        # or ('bipedal_walker', 'sddpg')
    result = offpolicy_training.train(cfg, logdir)

`train(cfg, logdir, print_fn=print)` writes under `logdir`:
  config.json, config_history.jsonl   the settings (a re-run with the same logdir resumes; `check_resume` refuses
                                      another env, model or network shape in one line)
  checkpoints/                        networks, optimisers, counters (every `checkpoint_interval_s`, at the end,
                                      and on SIGINT/SIGTERM, after which `runs.Interrupted` is raised)
  replay.npz                          the replay memory at the last checkpoint (`save_replay`), restored on resume
  saved_model/                        signature `serve`: ACER family `export.export_policy` (with `q_values`),
                                      DDPG family `offpolicy_export.export_ddpg` (stacked state in, MAP action out)
  best/                               the best weights of validation on held-out seeds (`best.json`: agent steps,
                                      score, mode), every `validate_every_frames`
  events.*                            TensorBoard: episode returns, losses, ACER's importance weights and trust
                                      region, PN's sigma and distance, validation scores, agent steps per second
and prints a progress line every `log_interval_s`. `make_config` builds either config from an environment, a model,
a preset and overrides; `from_run_config` takes the fields a `config.StochasticACConfig` (the launcher's flags)
shares with them.

The environments are stepped synchronously through `runtime.sync_rollouts` on an actor pool (inline or actor
processes: `runtime`), so each batch of actions is chosen by the current weights.

ACER family (one iteration): an on-policy rollout of t_max = 20 steps of every environment (8 on CarRacing,
T:L1707), stored in the `runtime.replay.SequenceReplay` (15,000 transitions, T:L1735) with the behaviour
probabilities, the noise and the rollout's initial LSTM state; one update on it (rho = 1, the acting noise replayed);
then, once the memory holds 5,000 transitions (T:L1735-1736), Poisson(1) off-policy updates on batches of `num_envs`
stored segments replayed from their stored LSTM state (replay ratio 1, T:L1735). SACER draws fresh eps for every
off-policy pass (T:L1057-1059); NN-ACER fresh weight noise per replayed batch (spec PROPOSAL); `offpolicy_noise=
'stored'` replays the stored noise instead. The loss is `losses.acer_loss`: Retrace with min(1, rho), truncation
c = 10 with bias correction, the trust region delta = 1 against the average network (T:L1736-1737), or the printed
Alg. 4/5 (`printed_algorithm`). After every update theta_a <- 0.99 theta_a + 0.01 theta (T:L1736-1737). Adam
5e-4, eps 1e-3, global norm 40, gamma 0.95, beta 0.01, lambda 5, rewards clipped to +-1: the Seaquest values ACER
follows (T:L1733-1734). Agent steps count the actions applied (CarRacing: 4 physics steps each).

DDPG family: every agent step stores the transition in a `runtime.replay.TransitionReplay` (10^6, frames stored
once and re-stacked: the thesis is silent, Lillicrap et al.), and after `warmup` transitions each agent step brings
`updates_per_step` updates on batches of 128 with Adam 5e-4 (T:L1739): the critic on r + gamma (1 - done)
Q'(s', mu'(s')), then the actor on -Q(s, mu(s)), then theta' <- tau theta + (1 - tau) theta' (gamma 0.99, tau
0.001: not stated, Lillicrap et al.). Behaviour: `ddpg` adds Ornstein-Uhlenbeck noise (theta 0.15, sigma 0.2,
time step 1) reset at episode starts; `sddpg` samples the actor's stochastic units (log sigma^2 -5, T:L1742) with
new eps every step, and trains and targets with the MAP actor (T:L1051-1052); `pn_ddpg` acts with a copy of the
actor whose Dense weights get N(0, sigma^2), redrawn whenever an environment starts an episode, sigma adapting
every 50 agent steps from 0.05 by 1.05 towards an action distance of 0.3 on a replayed batch (T:L1740-1741;
Plappert et al. 2017; the conv encoder is never perturbed, T:L1049-1050). Actions live in [-1, 1] (tanh) and are
scaled to the environment's bounds when applied; the memory holds the [-1, 1] actions.

Validation plays `validation_episodes` (10) held-out seeds (`config.validation_seeds`, never trained on) with the
evaluation policy (`evaluation.EvalPolicy`: vote over 5 sampled activations for SACER, MAP for ACER and NN-ACER;
the MAP actor for the DDPG family); CarRacing counts as solved at a mean >= 900 (T:L1641-1645), which the
validation line says. BipedalWalker's "first episode whose 10-episode mean return >= 300" (issue 10 Sec. 4) is
reported in the progress line and the result (`solved_at_episode`), from the training episodes.
"""

import dataclasses
import json
import math
import os
import time
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np

from rlcv_tf.core import runs
from rlcv_tf.stochastic_ac import config as config_lib

ACER_MODELS = ('acer', 'sacer', 'nn_acer')
DDPG_MODELS = ('ddpg', 'sddpg', 'pn_ddpg')
MODELS = ACER_MODELS + DDPG_MODELS
BIPEDAL_SOLVED_RETURN = 300.0     # issue 10 Sec. 4 (OpenAI Gym's threshold)
CAR_RACING_SOLVED = 900.0         # mean over 10 held-out tracks (T:L1641-1645)
SOLVED_WINDOW = 10


# Raised by `check_resume` / `train` (one line naming the field): the shared class of `core.runs`.
ResumeMismatchError = runs.ResumeMismatchError


# ------------------------------------------------------------------------------------------------------ configs


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Common(config_lib.RunSettings):
  """Fields every off-policy run has (the same names as `config.StochasticACConfig`'s); the run-level ones
  (validation, runtime, checkpoints, logging) and their checks are `config.RunSettings`'s."""
  env: str
  model: str
  preset: str = 'laptop'
  num_envs: int = 1
  total_frames: int = 20_000          # agent steps (actions applied)
  save_replay: bool = True            # replay.npz beside each checkpoint, restored on resume
  # Validation defaults of the off-policy families (`config.RunSettings`).
  validate_every_frames: int = 0      # agent steps between validations; 0: none
  validation_episodes: int = 10       # CarRacing: "10 randomly generated games" (T:L1644-1645)
  eval_max_steps: int = 0             # agent steps per validation episode before it is cut; 0: the env's own end

  def to_dict(self) -> Dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(self)))

  @classmethod
  def from_dict(cls, data: Dict[str, Any]):
    names = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for k, v in data.items():
      if k in names:
        kwargs[k] = tuple(v) if isinstance(v, list) else v
    return cls(**kwargs)

  @property
  def algorithm(self) -> str:
    return 'acer' if self.model in ACER_MODELS else 'ddpg'

  def _validate_common(self, models):
    if self.model not in models:
      raise ValueError(f'model: {self.model!r} is not a {self.algorithm.upper()}-family model; valid values: '
                       f'{", ".join(models)}')
    for name in ('num_envs', 'total_frames'):
      value = getattr(self, name)
      if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f'{name}: must be an integer >= 1, got {value!r}')
    self.validate_run_settings()


def _positive(cfg, name, allow_zero=False):
  value = getattr(cfg, name)
  ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and (
      value >= 0 if allow_zero else value > 0)
  if not ok:
    raise ValueError(f'{name}: must be a finite number {">=" if allow_zero else ">"} 0, got {value!r}')


def _fraction(cfg, name, closed=True):
  value = getattr(cfg, name)
  if not (isinstance(value, (int, float)) and (0 <= value <= 1 if closed else 0 <= value < 1)):
    raise ValueError(f'{name}: must lie in [0, 1{"]" if closed else ")"}, got {value!r}')


@dataclasses.dataclass(frozen=True, kw_only=True)
class ACERConfig(_Common):
  """An ACER-family run. Defaults: the thesis's CarRacing values (module docstring) at laptop scale."""
  env: str = 'car_racing'
  model: str = 'acer'
  num_envs: int = 8                   # T:L1707
  unroll_length: int = 20             # t_max (Seaquest's, T:L1722-1723, T:L1733-1734)
  # Replay (T:L1735-1736).
  replay_capacity: int = 15_000       # transitions (750 segments of 20)
  replay_start: int = 5_000           # transitions stored before off-policy updates begin
  replay_ratio: float = 1.0           # mean of the Poisson number of off-policy updates per on-policy one
  offpolicy_noise: str = 'fresh'      # fresh | stored: the noise of off-policy passes (SACER: fresh, T:L1057-1059)
  # ACER (T:L1736-1737; Wang et al. 2016).
  truncation: float = 10.0            # c
  trust_region_delta: float = 1.0     # delta; 0 switches the trust region off
  average_decay: float = 0.99         # alpha of the average network
  printed_algorithm: bool = False     # the printed Alg. 4/5 instead of full ACER (losses.acer_loss)
  # Optimisation: Seaquest's (T:L1716-1724, T:L1733-1734).
  learning_rate: float = 5e-4
  adam_epsilon: float = 1e-3
  adam_beta1: float = 0.9
  adam_beta2: float = 0.999
  grad_clip_norm: float = 40.0
  gamma: float = 0.95
  value_weight: float = 5.0
  entropy_weight: float = 0.01
  reward_clip: Optional[float] = 1.0
  # Network (Table 2.G.2; `a3c.NetworkConfig`).
  encoder: str = 'default'
  mlp_units: Tuple[int, ...] = (64,)
  lstm_units: int = 512
  fc_units: int = 512
  log_var: float = -6.0               # SACER: not printed; Seaquest's (spec §12-21)
  activation_noise: str = 'per_step'
  weight_noise: str = 'per_rollout'
  # Validation (see _Common): vote over 5 sampled activations for SACER, MAP for ACER and NN-ACER (mean weights).
  validate_every_frames: int = 16_000     # 100 iterations of 8 envs x 20 steps (spec §6 PROPOSAL)
  eval_mode: str = ''                 # '' : 'vote' for sacer, 'map' otherwise; or map | vote | mean_prob | sample
  num_samples: int = 5

  @property
  def resolved_eval_mode(self) -> str:
    return self.eval_mode or ('vote' if self.model == 'sacer' else 'map')

  def network_kwargs(self) -> Dict[str, Any]:
    return dict(encoder=self.encoder, mlp_units=tuple(self.mlp_units), lstm_units=self.lstm_units,
                fc_units=self.fc_units, log_var=self.log_var, activation_noise=self.activation_noise,
                weight_noise=self.weight_noise)

  def validate(self) -> 'ACERConfig':
    self._validate_common(ACER_MODELS)
    for name in ('unroll_length', 'replay_capacity', 'lstm_units', 'fc_units'):
      value = getattr(self, name)
      if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f'{name}: must be an integer >= 1, got {value!r}')
    if self.replay_capacity < self.unroll_length * self.num_envs:
      raise ValueError(f'replay_capacity: must hold at least one rollout (unroll_length x num_envs = '
                       f'{self.unroll_length * self.num_envs} transitions), got {self.replay_capacity}')
    if not isinstance(self.replay_start, int) or self.replay_start < 0:
      raise ValueError(f'replay_start: must be an integer >= 0, got {self.replay_start!r}')
    if self.replay_start > self.replay_capacity:
      raise ValueError(f'replay_start: at most replay_capacity ({self.replay_capacity}), got {self.replay_start}')
    for name in ('learning_rate', 'adam_epsilon', 'grad_clip_norm', 'truncation'):
      _positive(self, name)
    for name in ('replay_ratio', 'trust_region_delta', 'value_weight', 'entropy_weight'):
      _positive(self, name, allow_zero=True)
    for name in ('gamma', 'average_decay'):
      _fraction(self, name)
    for name in ('adam_beta1', 'adam_beta2'):
      _fraction(self, name, closed=False)
    if self.reward_clip is not None:
      _positive(self, 'reward_clip')
    if not (isinstance(self.log_var, (int, float)) and math.isfinite(self.log_var)):
      raise ValueError(f'log_var: must be a finite number (log sigma^2, e.g. -6), got {self.log_var!r}')
    if not isinstance(self.num_samples, int) or self.num_samples < 1:
      raise ValueError(f'num_samples: must be an integer >= 1, got {self.num_samples!r}')
    if self.eval_mode and self.eval_mode not in ('map', 'vote', 'mean_prob', 'sample'):
      raise ValueError(f'eval_mode: unknown value {self.eval_mode!r}; valid values: map, vote, mean_prob, sample '
                       '(or empty: vote for sacer, map otherwise)')
    for name, valid in (('offpolicy_noise', ('fresh', 'stored')), ('encoder', ('default', 'slim', 'mlp')),
                        ('activation_noise', ('per_step', 'per_rollout')),
                        ('weight_noise', ('per_step', 'per_rollout'))):
      if getattr(self, name) not in valid:
        raise ValueError(f'{name}: unknown value {getattr(self, name)!r}; valid values: {", ".join(valid)}')
    return self


@dataclasses.dataclass(frozen=True, kw_only=True)
class DDPGConfig(_Common):
  """A DDPG-family run. Defaults: the thesis's BipedalWalker values (module docstring) at laptop scale."""
  env: str = 'bipedal_walker'
  model: str = 'ddpg'
  num_envs: int = 1
  batch_size: int = 128               # T:L1739
  learning_rate: float = 5e-4         # T:L1739, actor and critic
  adam_epsilon: float = 1e-7          # not stated: Keras' default
  gamma: float = 0.99                 # not stated: Lillicrap et al.
  tau: float = 0.001                  # not stated: Lillicrap et al.
  replay_capacity: int = 1_000_000    # not stated: Lillicrap et al.
  warmup: int = 10_000                # transitions stored before updates begin (spec §6 PROPOSAL)
  updates_per_step: float = 1.0       # updates per agent step after the warm-up
  grad_clip_norm: float = 0.0         # 0: no clipping (Lillicrap et al.)
  # Exploration.
  ou_theta: float = 0.15              # ddpg (Lillicrap et al.)
  ou_sigma: float = 0.2
  pn_initial_stddev: float = 0.05     # pn_ddpg (T:L1740-1741)
  pn_desired_distance: float = 0.3
  pn_adaptation: float = 1.05
  pn_adapt_every: int = 50            # agent steps (Plappert et al.'s interval)
  # Network (`ddpg.DDPGNetworkConfig`).
  encoder: str = 'conv1d'
  mlp_units: Tuple[int, ...] = (64,)
  hidden: Tuple[int, ...] = (400, 300)
  stochastic_units: int = 200
  log_var: float = -5.0               # sddpg (T:L1742)
  layer_norm: bool = True
  validate_every_frames: int = 20_000     # the MAP actor on held-out seeds (spec §6: every ~20 episodes)

  def network_kwargs(self) -> Dict[str, Any]:
    return dict(encoder=self.encoder, mlp_units=tuple(self.mlp_units), hidden=tuple(self.hidden),
                stochastic_units=self.stochastic_units, log_var=self.log_var, layer_norm=self.layer_norm)

  def validate(self) -> 'DDPGConfig':
    self._validate_common(DDPG_MODELS)
    for name in ('batch_size', 'replay_capacity', 'pn_adapt_every', 'stochastic_units'):
      value = getattr(self, name)
      if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f'{name}: must be an integer >= 1, got {value!r}')
    if not isinstance(self.warmup, int) or self.warmup < 1:
      raise ValueError(f'warmup: must be an integer >= 1, got {self.warmup!r}')
    if self.warmup > self.replay_capacity:
      raise ValueError(f'warmup: at most replay_capacity ({self.replay_capacity}), got {self.warmup}')
    for name in ('learning_rate', 'adam_epsilon', 'pn_initial_stddev', 'pn_desired_distance'):
      _positive(self, name)
    for name in ('updates_per_step', 'grad_clip_norm', 'ou_theta', 'ou_sigma'):
      _positive(self, name, allow_zero=True)
    for name in ('gamma', 'tau'):
      _fraction(self, name)
    if not (isinstance(self.pn_adaptation, (int, float)) and self.pn_adaptation > 1):
      raise ValueError(f'pn_adaptation: must be a number > 1, got {self.pn_adaptation!r}')
    if not (isinstance(self.log_var, (int, float)) and math.isfinite(self.log_var)):
      raise ValueError(f'log_var: must be a finite number (log sigma^2, e.g. -5), got {self.log_var!r}')
    if len(self.hidden) != 2 or any(not isinstance(h, int) or h < 1 for h in self.hidden):
      raise ValueError(f'hidden: must be two positive integers, got {self.hidden!r}')
    if self.stochastic_units > self.hidden[0]:
      raise ValueError(f'stochastic_units: at most hidden[0] ({self.hidden[0]}), got {self.stochastic_units}')
    if self.encoder not in ('conv1d', 'mlp'):
      raise ValueError(f'encoder: unknown value {self.encoder!r}; valid values: conv1d, mlp')
    return self


OffPolicyConfig = Union[ACERConfig, DDPGConfig]

# Fields that fix the saved variables or what was trained: a resumed run must keep them.
ARCHITECTURE_FIELDS = {
    'acer': ('model', 'env', 'encoder', 'mlp_units', 'lstm_units', 'fc_units'),
    'ddpg': ('model', 'env', 'encoder', 'mlp_units', 'hidden', 'stochastic_units', 'layer_norm'),
}


def _acer_thesis(fields):
  n = fields.get('num_envs', 8)
  return dict(total_frames=10_000 * n * fields.get('unroll_length', 20), runtime='actors', envs_per_actor=4,
              checkpoint_interval_s=1800.0, summary_interval_s=60.0, log_interval_s=60.0)


PRESETS: Dict[str, Dict[str, Callable[[Dict[str, Any]], Dict[str, Any]]]] = {
    'acer': {
        'laptop': lambda fields: {},
        # 10K iterations x 8 envs x t_max 20 = 1.6M agent steps (T:L1734: "train 10K iterations").
        'thesis': _acer_thesis,
    },
    'ddpg': {
        'laptop': lambda fields: {},
        # BipedalWalker: the thesis counts ~3,500-6,300 "iterations" to solve (Table 2.4), read as episodes (spec
        # §12-15): 6,300 episodes of up to 1,600 steps is ~10M agent steps.
        'thesis': lambda fields: dict(total_frames=10_000_000, checkpoint_interval_s=1800.0,
                                      summary_interval_s=60.0, log_interval_s=60.0),
        # The learning check on `pendulum` (tests/test_offpolicy_training.py), calibrated on the 2-core CPU: the
        # Dense encoder for its 3-number state (with the 1-D conv encoder over [3, 4] SDDPG was still at -1,450
        # after 6,000 steps, the Dense one at -180), small layers, gamma 0.98 and tau 0.01 (shorter horizon, faster
        # targets), a short warm-up; validation every 1,000 steps on 5 held-out seeds keeps the best weights (the
        # swing-up is found after 2,000-5,000 steps depending on the seed, and the policy can still fail from some
        # starts for a while after).
        'pendulum_check': lambda fields: dict(total_frames=7_000, warmup=500, batch_size=64, encoder='mlp',
                                              mlp_units=(64,), hidden=(64, 64), stochastic_units=32, gamma=0.98,
                                              tau=0.01, learning_rate=1e-3, replay_capacity=100_000,
                                              summary_interval_s=5.0, checkpoint_interval_s=3600.0,
                                              save_replay=False, validate_every_frames=1_000,
                                              validation_episodes=5),
    },
}


def make_config(env: str, model: str, preset: str = 'laptop', **overrides) -> OffPolicyConfig:
  """The field defaults of `model`'s family, then the preset, then `overrides`. Not validated (`.validate()`);
  unknown override names raise TypeError, an unknown model or preset ValueError."""
  if model in ACER_MODELS:
    cls, family = ACERConfig, 'acer'
  elif model in DDPG_MODELS:
    cls, family = DDPGConfig, 'ddpg'
  else:
    raise ValueError(f'model: unknown value {model!r}; valid values: {", ".join(MODELS)}')
  if preset not in PRESETS[family]:
    raise ValueError(f'preset: unknown value {preset!r} for the {family.upper()} family; valid values: '
                     f'{", ".join(PRESETS[family])}')
  fields = {f.name: f.default for f in dataclasses.fields(cls)}
  unknown = sorted(set(overrides) - set(fields))
  if unknown:
    raise TypeError(f'unknown {cls.__name__} fields {unknown}')
  fields.update(env=env, model=model, preset=preset)
  fields.update(PRESETS[family][preset](dict(fields, **overrides)))
  fields.update(overrides)
  return cls(**fields)


# What `from_run_config` copies from a `config.StochasticACConfig`. The ACER family follows the Seaquest values
# (T:L1733), which are that config's defaults, so its optimisation fields carry over; the DDPG family's differ
# (gamma 0.99, no reward clipping, 1 environment), so only the run-level fields and the ones both agree on do.
_SHARED_RUN_FIELDS = ('env', 'model', 'total_frames', 'runtime', 'envs_per_actor', 'backend', 'ray_address',
                      'actor_timeout_s', 'max_actor_restarts', 'seed', 'checkpoint_interval_s', 'summary_interval_s',
                      'log_interval_s', 'log_var', 'learning_rate')
_SHARED_ACER_FIELDS = _SHARED_RUN_FIELDS + (
    'num_envs', 'unroll_length', 'adam_epsilon', 'adam_beta1', 'adam_beta2', 'grad_clip_norm', 'gamma',
    'value_weight', 'entropy_weight', 'reward_clip', 'encoder', 'mlp_units', 'lstm_units', 'fc_units',
    'activation_noise', 'weight_noise')


def from_run_config(run_config, **overrides) -> OffPolicyConfig:
  """The off-policy config of a `config.StochasticACConfig` (any object with its field names): the fields listed
  in `_SHARED_RUN_FIELDS` / `_SHARED_ACER_FIELDS` are copied, the rest keep this family's defaults, then
  `overrides` (e.g. the launcher's replay flags)."""
  model = run_config.model
  names = _SHARED_ACER_FIELDS if model in ACER_MODELS else _SHARED_RUN_FIELDS
  fields = {n: getattr(run_config, n) for n in names if hasattr(run_config, n)}
  fields.pop('env', None)
  fields.pop('model', None)
  if 'mlp_units' in fields:
    fields['mlp_units'] = tuple(fields['mlp_units'])
  preset = getattr(run_config, 'preset', 'laptop')
  family = 'acer' if model in ACER_MODELS else 'ddpg'
  if preset not in PRESETS[family]:
    preset = 'laptop'
  fields.update(overrides)
  return make_config(run_config.env, model, preset, **fields)


def load_config(logdir: str) -> Optional[OffPolicyConfig]:
  """The config.json of an off-policy run in `logdir` (None when there is none or it is another trainer's)."""
  data = runs.load_config(logdir)
  if data is None:
    return None
  model = data.get('model')
  if model in ACER_MODELS:
    return ACERConfig.from_dict(data)
  if model in DDPG_MODELS:
    return DDPGConfig.from_dict(data)
  return None


def check_resume(cfg: OffPolicyConfig, logdir: str) -> None:
  """`runs.ResumeMismatchError` (one line) when `logdir` holds a run of another env, model or network shape.
  Reads only."""
  saved = runs.load_config(logdir)
  if saved is not None:
    runs.check_same_settings(logdir, saved, cfg.to_dict(), ARCHITECTURE_FIELDS[cfg.algorithm])


# ------------------------------------------------------------------------------------------------------ result


@dataclasses.dataclass
class TrainResult:
  frames: int                         # agent steps
  updates: int
  iterations: int                     # ACER: rollouts; DDPG: vector steps
  episodes: List[Dict[str, Any]]      # this session's finished training episodes
  saved_model: str
  wall_s: float
  losses: List[float] = dataclasses.field(default_factory=list)   # this session's loss per update (ACER: total;
  #                                                                 DDPG: critic)
  solved_at_episode: Optional[int] = None   # DDPG on BipedalWalker: first episode whose 10-episode mean >= 300
  emulator_frames: int = 0
  # ACER: 'offpolicy_updates', and 'onpolicy_rho_max_error', the largest |mean rho - 1| of an on-policy update
  # (0 to float rounding when the update replays the acting noise from the stored state). PN-DDPG: 'pn_stddev'.
  diagnostics: Dict[str, float] = dataclasses.field(default_factory=dict)
  validations: List[Tuple[int, float]] = dataclasses.field(default_factory=list)   # (agent steps, mean score)


# ------------------------------------------------------------------------------------------------------ shared


def _episode_return(e) -> float:
  return float(np.sum(e['return']))


def _probe_env(cfg: OffPolicyConfig, num_frames: Optional[int]):
  """(observation shape without the agent axis, action spec, num_actions, continuous) of the run's env."""
  from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
  env = registry.make_env(cfg.env, seed=cfg.seed, num_frames=num_frames)
  try:
    return (tuple(env.observation_spec().shape[1:]), env.action_spec(), int(env.num_actions),
            bool(env.continuous_actions))
  finally:
    env.close()


def _check_env(cfg: OffPolicyConfig):
  from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
  if cfg.env not in registry.names(chapter=2):
    raise ValueError(f'env: unknown Chapter 2 environment {cfg.env!r}; valid values: '
                     f'{", ".join(registry.names(chapter=2))}')
  registry.check_available(cfg.env)


class _Run:
  """What both trainers share: logdir, config record, TensorBoard writer, checkpoints + replay file, progress."""

  def __init__(self, cfg: OffPolicyConfig, logdir: str, checkpoint, export_fn, counters: Dict[str, Any],
               replay_buffer, print_fn):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from rlcv_tf.core import checkpointing  # pylint: disable=g-import-not-at-top
    from rlcv_tf.runtime import replay as replay_lib  # pylint: disable=g-import-not-at-top
    self.tf = tf
    self.replay_lib = replay_lib
    self.cfg = cfg
    self.logdir = logdir
    self.print = print_fn
    self.prefix = f'[{cfg.model}] '
    self.counters = counters
    self.replay = replay_buffer
    self.replay_path = os.path.join(logdir, 'replay.npz')
    self.ckpt = checkpointing.RunCheckpointer(checkpoint, logdir, interval_s=cfg.checkpoint_interval_s,
                                              export_fn=export_fn)
    restored = self.ckpt.restore_latest()
    self.start_frames = int(counters['agent_steps'].numpy())
    if restored:
      self.print(f'{self.prefix}resumed from {restored} at {self.start_frames:,} agent steps')
      self._restore_replay()
    self.writer = checkpointing.open_writer(logdir, cfg.to_dict(), self.start_frames, print_fn, self.prefix)
    self._next_validation = None
    self.validations = []

  def _restore_replay(self):
    if not self.cfg.save_replay:
      return
    if not os.path.exists(self.replay_path):
      self.print(f'{self.prefix}no replay memory saved in {self.logdir}: it refills from empty')
      return
    state = self.replay_lib.load(self.replay_path)
    step = int(state.pop('saved_at_agent_steps', -1))
    if step != self.start_frames:
      self.print(f'{self.prefix}the saved replay memory is from agent step {step:,}, the checkpoint from '
                 f'{self.start_frames:,}: not restored; it refills from empty')
      return
    self.replay.load_state_dict(state)
    self.print(f'{self.prefix}restored the replay memory ({self.replay.num_transitions:,} transitions)')

  def enable_validation(self, evaluate: Callable[[], List[float]], best_checkpoint, best_score, mode: str,
                        solved_score: Optional[float] = None):
    """Validation every `validate_every_frames` agent steps: `evaluate()` gives the held-out episodes' scores;
    a better mean than `best_score` (a checkpointed variable) writes `best_checkpoint` to best/ckpt and
    best/best.json."""
    self._evaluate, self._best_ckpt, self._best_score = evaluate, best_checkpoint, best_score
    self._eval_mode, self._solved_score = mode, solved_score
    every = self.cfg.validate_every_frames
    self._next_validation = (self.start_frames // every + 1) * every if every else None
    self.validations: List[Tuple[int, float]] = []

  def maybe_validate(self, frames: int) -> None:
    if self._next_validation is None or frames < self._next_validation:
      return
    every = self.cfg.validate_every_frames
    self._next_validation = (frames // every + 1) * every
    start = time.monotonic()
    scores = [float(x) for x in self._evaluate()]
    score = float(np.mean(scores))
    self.validations.append((frames, score))
    best_dir = os.path.join(self.logdir, 'best')
    improved = score > float(self._best_score.numpy())
    if improved:
      self._best_score.assign(score)
      os.makedirs(best_dir, exist_ok=True)
      self._best_ckpt.write(os.path.join(best_dir, 'ckpt'))
      with open(os.path.join(best_dir, 'best.json'), 'w') as f:
        json.dump({'agent_steps': frames, 'score': score, 'scores': scores, 'mode': self._eval_mode}, f, indent=2)
    self.scalars(frames, {'validation/score': score, 'validation/best_score': float(self._best_score.numpy())})
    solved = self._solved_score is not None and score >= self._solved_score
    self.print(f'{self.prefix}validation at {frames:,} agent steps: {score:.1f} over {len(scores)} held-out '
               f'episodes ({self._eval_mode}, {time.monotonic() - start:.0f} s)'
               f'{f"; solved (>= {self._solved_score:g})" if solved else ""}'
               f'{"; best so far, saved to " + best_dir if improved else ""}')

  def save(self, frames: int) -> str:
    path = self.ckpt.save(frames)
    self.save_replay(frames)
    return path

  def save_replay(self, frames: int):
    if self.cfg.save_replay:
      state = self.replay.state_dict()
      state['saved_at_agent_steps'] = np.array(frames)
      self.replay_lib.save(self.replay_path, state)

  def maybe_save(self, frames: int):
    if self.ckpt.maybe_save(frames):
      self.save_replay(frames)

  def scalars(self, step: int, values: Dict[str, float]):
    with self.writer.as_default(step=step):
      for k, v in values.items():
        self.tf.summary.scalar(k, float(v))


def _solved_at(returns: List[float], threshold: float = BIPEDAL_SOLVED_RETURN, window: int = SOLVED_WINDOW):
  """1-based index of the first episode whose mean over the last `window` episodes (itself included) is >=
  threshold, or None."""
  r = np.asarray(returns, np.float64)
  for i in range(window - 1, len(r)):
    if r[i - window + 1:i + 1].mean() >= threshold:
      return i + 1
  return None


def _train_and_export(run: _Run, cfg: OffPolicyConfig, rollouts, iterate: Callable[[], None], progress_parts,
                      learner, logdir: str, print_fn, start: float,
                      updates_detail: Callable[[], str] = lambda: '') -> int:
  """The end both trainers share: run the loop unless the logdir already holds total_frames, save, export, and
  print the closing line (`updates_detail()`, read after training, adds to its update count). Returns the agent
  steps done."""
  frames_fn = lambda: int(learner.agent_steps.numpy())
  if frames_fn() >= cfg.total_frames:
    print_fn(f'{run.prefix}{logdir} already holds {frames_fn():,} agent steps >= total_frames={cfg.total_frames:,};'
             ' nothing to train (raise total_frames to continue)')
  else:
    _run_loop(run, cfg, rollouts, iterate, progress_parts, frames_fn)
    run.save(frames_fn())
  run.ckpt.export()
  frames = frames_fn()
  print_fn(f'{run.prefix}done: {frames:,} agent steps, {int(learner.updates.numpy()):,} updates{updates_detail()} in '
           f'{time.monotonic() - start:.0f} s; checkpoint {run.ckpt.latest}; SavedModel {run.ckpt.saved_model_dir}; '
           f'TensorBoard: tensorboard --logdir={logdir}')
  return frames


def _run_loop(run: _Run, cfg: OffPolicyConfig, rollouts, iterate: Callable[[], None],
              progress_parts: Callable[[float], List[str]], frames_fn: Callable[[], int]):
  """Iterates until total_frames, a signal or an error. On a signal or an error: the replay memory, the
  checkpoint and the SavedModel are saved and the run says where, then re-raises (`runs.Interrupted` for a
  signal; `RunCheckpointer.save_and_stop`)."""
  from rlcv_tf.core import progress  # pylint: disable=g-import-not-at-top
  stop = runs.StopOnSignal(run.print, prefix=run.prefix)
  rate = progress.RateMeter()
  failure = None
  last_log = time.monotonic()
  with stop:
    try:
      rollouts.start()
      rate.update(frames_fn())
      while frames_fn() < cfg.total_frames and not stop.requested:
        iterate()
        frames = frames_fn()
        rate.update(frames)
        now = time.monotonic()
        if now - last_log >= cfg.log_interval_s or frames >= cfg.total_frames:
          run.print(progress.line(run.prefix, frames, cfg.total_frames, rate, progress_parts(rate.rate),
                                  unit='agent steps'))
          last_log = now
        run.maybe_validate(frames)
        run.maybe_save(frames)
    except Exception as e:  # pylint: disable=broad-except
      failure = e
    finally:
      rollouts.close()
      run.writer.flush()
    if failure is not None or stop.requested:
      frames = frames_fn()
      run.save_replay(frames)
      run.ckpt.save_and_stop(frames, failure, stop, run.print, run.prefix, unit='agent steps')


def _make_rollouts(cfg: OffPolicyConfig, start_frames: int, unroll_length: int, initial_state=None):
  from rlcv_tf.runtime import pools  # pylint: disable=g-import-not-at-top
  from rlcv_tf.runtime import sync_rollouts  # pylint: disable=g-import-not-at-top
  # A resumed session plays new episodes: the environments' seeds derive from (seed, agent steps at its start).
  base = runs.derived_seed(cfg.seed, start_frames) % (2 ** 30 - 2 ** 20)
  configs = sync_rollouts.actor_configs(cfg.env, cfg.num_envs, envs_per_actor=cfg.envs_per_actor, seed=base)
  pool = pools.make_pool(configs, runtime=cfg.runtime, backend=cfg.backend, ray_address=cfg.ray_address,
                         actor_timeout_s=cfg.actor_timeout_s, max_restarts=cfg.max_actor_restarts)
  return sync_rollouts.SyncRollouts(pool, unroll_length, initial_state=initial_state)


def train(cfg: OffPolicyConfig, logdir: str, print_fn: Callable[[str], None] = print) -> TrainResult:
  """Trains `cfg` (ACERConfig or DDPGConfig) in `logdir` (module docstring); resumes what `logdir` holds."""
  cfg.validate()
  _check_env(cfg)
  check_resume(cfg, logdir)
  os.makedirs(logdir, exist_ok=True)
  if isinstance(cfg, ACERConfig):
    return _train_acer(cfg, logdir, print_fn)
  return _train_ddpg(cfg, logdir, print_fn)


# ------------------------------------------------------------------------------------------------------ ACER


def _softmax(logits: np.ndarray) -> np.ndarray:
  x = logits.astype(np.float64)
  x = np.exp(x - x.max(axis=-1, keepdims=True))
  return x / x.sum(axis=-1, keepdims=True)


def sample_categorical(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """One action per row of `probs` [B, A] (inverse CDF with one uniform per row)."""
  cdf = np.cumsum(probs, axis=-1)
  cdf[:, -1] = 1.0
  return (rng.random((probs.shape[0], 1)) < cdf).argmax(axis=-1).astype(np.int32)


class ACERLearner:
  """The ACER-family network, its average network, Adam, the update and the acting step."""

  def __init__(self, cfg: ACERConfig, observation_shape, num_actions: int):
    import keras  # pylint: disable=g-import-not-at-top
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from rlcv_tf.stochastic_ac import acer  # pylint: disable=g-import-not-at-top
    from rlcv_tf.stochastic_ac import losses  # pylint: disable=g-import-not-at-top
    self.tf, self.acer, self.losses = tf, acer, losses
    self.cfg = cfg
    self.num_actions = int(num_actions)
    self.observation_shape = tuple(observation_shape)
    keras.utils.set_random_seed(int(cfg.seed))   # the initial weights (and TF's own draws) follow the seed
    self.net = acer.build_network(cfg.model, num_actions, observation_shape, **cfg.network_kwargs())
    self.average = acer.make_average_network(self.net)
    self.optimizer = keras.optimizers.Adam(cfg.learning_rate, beta_1=cfg.adam_beta1, beta_2=cfg.adam_beta2,
                                           epsilon=cfg.adam_epsilon)
    self.optimizer.build(self.net.trainable_variables)
    self.specs = self.net.noise_specs()
    self.agent_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name='agent_steps')
    self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name='updates')
    self.offpolicy_updates = tf.Variable(0, dtype=tf.int64, trainable=False, name='offpolicy_updates')
    self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name='iterations')
    self.episodes = tf.Variable(0, dtype=tf.int64, trainable=False, name='episodes')
    self.best_score = tf.Variable(-np.inf, dtype=tf.float64, trainable=False, name='best_score')
    self.checkpoint = tf.train.Checkpoint(network=self.net, average=self.average, optimizer=self.optimizer,
                                          agent_steps=self.agent_steps, updates=self.updates,
                                          offpolicy_updates=self.offpolicy_updates, iterations=self.iterations,
                                          episodes=self.episodes, best_score=self.best_score)
    self._step_fn = tf.function(self._step, reduce_retracing=True)
    self._update_fn = tf.function(self._update, reduce_retracing=True)
    # NN-ACER's average network uses its mean weights; SACER's the current network's eps (spec §3.3).
    self.average_mode = 'map' if cfg.model == 'nn_acer' else 'sample'

  def counters(self):
    return {'agent_steps': self.agent_steps, 'updates': self.updates, 'iterations': self.iterations}

  def initial_state(self, batch: int) -> Dict[str, np.ndarray]:
    units = self.cfg.lstm_units
    return {'h': np.zeros((batch, units), np.float32), 'c': np.zeros((batch, units), np.float32)}

  def _step(self, observation, h, c, first, noise):
    out = self.net.step(observation, {'h': h, 'c': c}, noise if noise else None, first, mode='sample')
    return out.logits, out.state['h'], out.state['c']

  def act(self, observation, state, first, noise):
    """(logits [B, A], new state) of one acting step, as NumPy."""
    tf = self.tf
    logits, h, c = self._step_fn(tf.convert_to_tensor(observation, tf.float32), tf.convert_to_tensor(state['h']),
                                 tf.convert_to_tensor(state['c']), tf.convert_to_tensor(first),
                                 {k: tf.convert_to_tensor(v) for k, v in noise.items()})
    return logits.numpy(), {'h': h.numpy(), 'c': c.numpy()}

  def _update(self, batch):
    """One ACER update on segments [T+1, B, ...] (observations, first, noise) / [T, B, ...] (the rest)."""
    tf, cfg = self.tf, self.cfg
    noise = {k[len('noise/'):]: v for k, v in batch.items() if k.startswith('noise/')}
    state = {'h': batch['state/h'], 'c': batch['state/c']}
    bootstrap_only = batch['bootstrap_only']
    done = tf.logical_and(tf.equal(batch['discounts'], 0.0), tf.logical_not(bootstrap_only))
    average = self.average.unroll(batch['observations'], state,
                                  noise if (noise and self.average_mode == 'sample') else None, batch['first'],
                                  mode=self.average_mode)
    with tf.GradientTape() as tape:
      out = self.net.unroll(batch['observations'], state, noise if noise else None, batch['first'], mode='sample')
      q_values = out.extras['q_values']
      loss, logs = self.losses.acer_loss(
          out.logits[:-1], q_values[:-1], batch['actions'], batch['rewards'], done, batch['behaviour_probs'],
          tf.stop_gradient(out.values[-1]), tf.stop_gradient(average.logits[:-1]), gamma=cfg.gamma,
          truncation=cfg.truncation, trust_region_delta=cfg.trust_region_delta or None,
          entropy_weight=cfg.entropy_weight, value_weight=cfg.value_weight, reward_clip=cfg.reward_clip,
          printed_algorithm=cfg.printed_algorithm, bootstrap_only=bootstrap_only)
    variables = self.net.trainable_variables
    grads = tape.gradient(loss, variables)
    grads, norm = tf.clip_by_global_norm(grads, cfg.grad_clip_norm)
    self.optimizer.apply_gradients(zip(grads, variables))
    self.acer.update_average_network(self.average, self.net, cfg.average_decay)
    self.updates.assign_add(1)
    logs['optimizer/grad_norm'] = norm
    return logs

  def update(self, batch: Dict[str, np.ndarray]) -> Dict[str, float]:
    tf = self.tf
    tensors = {k: tf.convert_to_tensor(v) for k, v in batch.items() if k != 'id'}
    logs = self._update_fn(tensors)
    return {k: float(v) for k, v in logs.items()}


def _full_noise(specs, noise_steps: Dict[str, np.ndarray], bootstrap: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
  """{name: [T+1, B, ...]}: the T steps' noise and the bootstrap step's."""
  return {k: np.concatenate([noise_steps[k], bootstrap[k][None]], axis=0) for k in specs}


def _fresh_noise(specs, steps: int, batch: int, rng) -> Dict[str, np.ndarray]:
  """New noise for a [steps, batch] forward, every input as [steps, batch, ...] (per-rollout inputs held)."""
  from rlcv_tf.stochastic_ac import layers  # pylint: disable=g-import-not-at-top
  drawn = layers.draw_rollout_noise(specs, steps, batch, rng)
  return {k: (v if specs[k].schedule == 'per_step' else np.broadcast_to(v[None], (steps,) + v.shape).copy())
          for k, v in drawn.items()}


def acer_segment(rollout, specs) -> Dict[str, np.ndarray]:
  """A `sync_rollouts.Rollout` of the ACER acting policy as the fields of `replay.acer_fields` (time-major)."""
  segment = {
      'observations': rollout.observations, 'first': rollout.first, 'actions': rollout.actions.astype(np.int32),
      'rewards': rollout.rewards, 'discounts': rollout.discounts, 'bootstrap_only': rollout.bootstrap_only,
      'behaviour_probs': rollout.extras['probs'], 'state/h': rollout.initial_state['h'],
      'state/c': rollout.initial_state['c']}
  for k in specs:
    segment[f'noise/{k}'] = rollout.extras[f'noise/{k}']
  return segment


def _train_acer(cfg: ACERConfig, logdir: str, print_fn) -> TrainResult:
  from rlcv_tf.runtime import replay as replay_lib  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from rlcv_tf.stochastic_ac import evaluation  # pylint: disable=g-import-not-at-top
  from rlcv_tf.stochastic_ac import export  # pylint: disable=g-import-not-at-top
  from rlcv_tf.stochastic_ac import layers  # pylint: disable=g-import-not-at-top
  start = time.monotonic()
  observation_shape, _, num_actions, continuous = _probe_env(cfg, None)
  if continuous:
    raise ValueError(f'model: {cfg.model} needs discrete actions, {cfg.env} has continuous ones')
  learner = ACERLearner(cfg, observation_shape, num_actions)
  specs = learner.specs
  t_max, n_envs = cfg.unroll_length, cfg.num_envs
  memory = replay_lib.SequenceReplay(
      cfg.replay_capacity, t_max,
      replay_lib.acer_fields(observation_shape, num_actions, {k: s.shape for k, s in specs.items()},
                             {'h': (cfg.lstm_units,), 'c': (cfg.lstm_units,)}),
      seed=runs.derived_seed(cfg.seed, 1 << 21))
  run = _Run(cfg, logdir, learner.checkpoint,
             lambda path: export.export_policy(learner.net, path), learner.counters(), memory, print_fn)
  # A new random stream in every session (derived from the agent steps at its start); the replay memory's
  # sampler continues its own saved stream.
  rng = np.random.default_rng(runs.derived_seed(cfg.seed, run.start_frames, 1 << 20))
  if cfg.validate_every_frames:
    eval_policy = evaluation.EvalPolicy(learner.net, cfg.resolved_eval_mode, cfg.num_samples,
                                        seed=runs.derived_seed(cfg.seed, run.start_frames, 1 << 22))
    mode = cfg.resolved_eval_mode
    if mode in ('vote', 'mean_prob'):
      mode = f'{mode}-{cfg.num_samples}'
    run.enable_validation(
        lambda: [r.score for r in evaluation.run_episodes(eval_policy, cfg.env, config_lib.validation_seeds(
            cfg.validation_episodes), max_steps=cfg.eval_max_steps)],
        tf.train.Checkpoint(model=learner.net), learner.best_score, mode,
        solved_score=CAR_RACING_SOLVED if cfg.env == 'car_racing' else None)
  rollouts = _make_rollouts(cfg, run.start_frames, t_max, initial_state=learner.initial_state)
  episodes: List[Dict[str, Any]] = []
  losses_seen: List[float] = []
  recent: List[float] = []
  box = {'noise': None, 'rollout_start': True, 'logs': {}, 'last_summary': 0.0, 'rho_error': 0.0}

  def policy(observation, state, first):
    noise = layers.next_noise(specs, box['noise'], observation.shape[0], rng, box['rollout_start'])
    box['noise'], box['rollout_start'] = noise, False
    logits, new_state = learner.act(observation, state, first, noise)
    probs = _softmax(logits)
    actions = sample_categorical(probs, rng)
    extras = {'probs': probs.astype(np.float32)}
    extras.update({f'noise/{k}': v for k, v in noise.items()})
    return actions, new_state, extras

  def iterate():
    box['rollout_start'] = True
    r = rollouts.collect(policy)
    segment = acer_segment(r, specs)
    memory.add(segment)
    # On-policy update (rho = 1): the acting noise, plus the bootstrap step's (new per-step eps, held
    # per-rollout noise).
    boot = layers.next_noise(specs, box['noise'], n_envs, rng, rollout_start=False)
    batch = dict(segment)
    batch.update({f'noise/{k}': v for k, v in _full_noise(specs, {k: segment[f'noise/{k}'] for k in specs},
                                                            boot).items()})
    logs = learner.update(batch)
    losses_seen.append(logs['loss/total'])
    box['rho_error'] = max(box['rho_error'], abs(logs['acer/rho_mean'] - 1.0))
    learner.agent_steps.assign_add(r.agent_steps)
    learner.iterations.assign_add(1)
    learner.episodes.assign_add(len(r.episodes))
    off_logs = []
    if memory.num_transitions >= cfg.replay_start:
      for _ in range(replay_lib.poisson_replay_count(rng, cfg.replay_ratio)):
        seg = memory.sample(n_envs)
        if cfg.offpolicy_noise == 'fresh':
          noise = _fresh_noise(specs, t_max + 1, n_envs, rng)
        else:
          noise = _full_noise(specs, {k: seg[f'noise/{k}'] for k in specs},
                              {k: v[0] for k, v in _fresh_noise(specs, 1, n_envs, rng).items()})
        seg.update({f'noise/{k}': v for k, v in noise.items()})
        off = learner.update(seg)
        learner.offpolicy_updates.assign_add(1)
        losses_seen.append(off['loss/total'])
        off_logs.append(off)
    frames = int(learner.agent_steps.numpy())
    for e in r.episodes:
      e['agent_steps'] = frames
    episodes.extend(r.episodes)
    recent[:] = (recent + [_episode_return(e) for e in r.episodes])[-20:]
    values = {f'onpolicy/{k}': v for k, v in logs.items()}
    if off_logs:
      values.update({f'offpolicy/{k}': float(np.mean([o[k] for o in off_logs])) for k in off_logs[0]})
    values['replay/transitions'] = memory.num_transitions
    values['replay/offpolicy_updates_this_iteration'] = len(off_logs)
    box['logs'] = values
    if r.episodes:
      run.scalars(frames, {'episode/return': float(np.mean([_episode_return(e) for e in r.episodes])),
                           'episode/length': float(np.mean([e['length'] for e in r.episodes]))})
    now = time.monotonic()
    if now - box['last_summary'] >= cfg.summary_interval_s or frames >= cfg.total_frames:
      values['throughput/agent_steps_per_second'] = box.get('rate', 0.0)
      values['throughput/iterations'] = int(learner.iterations.numpy())
      run.scalars(frames, values)
      box['last_summary'] = now
    return values

  def progress_parts(rate):
    box['rate'] = rate
    parts = [f'iteration {int(learner.iterations.numpy()):,}']
    parts.append(f'return {np.mean(recent):+.1f} (last {len(recent)} episodes)' if recent
                 else 'no finished episode yet')
    logs = box['logs']
    if logs:
      parts.append(f'loss {logs["onpolicy/loss/total"]:.3f} entropy {logs["onpolicy/policy/entropy"]:.3f}')
    parts.append(f'replay {memory.num_transitions:,}/{cfg.replay_capacity:,} '
                 f'({int(learner.offpolicy_updates.numpy()):,} off-policy updates)')
    return parts

  frames = _train_and_export(run, cfg, rollouts, iterate, progress_parts, learner, logdir, print_fn, start,
                             lambda: f' ({int(learner.offpolicy_updates.numpy()):,} off-policy)')
  return TrainResult(frames, int(learner.updates.numpy()), int(learner.iterations.numpy()), episodes,
                     run.ckpt.saved_model_dir, time.monotonic() - start, losses_seen,
                     emulator_frames=rollouts.emulator_frames,
                     diagnostics={'offpolicy_updates': int(learner.offpolicy_updates.numpy()),
                                  'onpolicy_rho_max_error': box['rho_error']},
                     validations=run.validations)


# ------------------------------------------------------------------------------------------------------ DDPG


class OrnsteinUhlenbeck:
  """x <- x + theta (0 - x) + sigma N(0, I) per environment (time step 1), reset to 0 at episode starts."""

  def __init__(self, shape, theta: float, sigma: float, rng: np.random.Generator):
    self.theta, self.sigma, self.rng = float(theta), float(sigma), rng
    self.x = np.zeros(shape, np.float64)

  def reset(self, rows: np.ndarray):
    self.x[np.asarray(rows, bool)] = 0.0

  def sample(self) -> np.ndarray:
    self.x = self.x - self.theta * self.x + self.sigma * self.rng.standard_normal(self.x.shape)
    return self.x.copy()


class DDPGLearner:
  """Actor, critic, their targets (and PN's perturbed actors), two Adams, the update and the behaviour step."""

  def __init__(self, cfg: DDPGConfig, observation_shape, action_dim: int):
    import keras  # pylint: disable=g-import-not-at-top
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from rlcv_tf.stochastic_ac import ddpg  # pylint: disable=g-import-not-at-top
    from rlcv_tf.stochastic_ac import losses  # pylint: disable=g-import-not-at-top
    self.tf, self.ddpg, self.losses = tf, ddpg, losses
    self.cfg = cfg
    keras.utils.set_random_seed(int(cfg.seed))   # the initial weights (and TF's own draws) follow the seed
    self.actor, self.critic = ddpg.build_networks(cfg.model, action_dim, observation_shape, **cfg.network_kwargs())
    self.target_actor = ddpg.clone_actor(self.actor, 'target_actor')
    self.target_critic = ddpg.clone_critic(self.critic, 'target_critic')
    adam = lambda: keras.optimizers.Adam(cfg.learning_rate, epsilon=cfg.adam_epsilon)
    self.actor_optimizer, self.critic_optimizer = adam(), adam()
    self.actor_optimizer.build(self.actor.trainable_variables)
    self.critic_optimizer.build(self.critic.trainable_variables)
    self.agent_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name='agent_steps')
    self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name='updates')
    self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name='iterations')
    self.episodes = tf.Variable(0, dtype=tf.int64, trainable=False, name='episodes')
    self.pn_stddev = tf.Variable(cfg.pn_initial_stddev, dtype=tf.float64, trainable=False, name='pn_stddev')
    self.best_score = tf.Variable(-np.inf, dtype=tf.float64, trainable=False, name='best_score')
    self.checkpoint = tf.train.Checkpoint(
        actor=self.actor, critic=self.critic, target_actor=self.target_actor, target_critic=self.target_critic,
        actor_optimizer=self.actor_optimizer, critic_optimizer=self.critic_optimizer, agent_steps=self.agent_steps,
        updates=self.updates, iterations=self.iterations, episodes=self.episodes, pn_stddev=self.pn_stddev,
        best_score=self.best_score)
    self.perturbed = self.adaptive = None
    if cfg.model == 'pn_ddpg':
      self.perturbed = ddpg.clone_actor(self.actor, 'perturbed_actor')
      self.adaptive = ddpg.clone_actor(self.actor, 'adaptive_actor')
    self.adaptation = ddpg.ParamNoiseAdaptation(cfg.pn_initial_stddev, cfg.pn_desired_distance, cfg.pn_adaptation)
    self._update_fn = tf.function(self._update, reduce_retracing=True)
    self._map_fn = tf.function(lambda obs: self.actor(obs, mode='map'), reduce_retracing=True)
    self._sample_fn = tf.function(lambda obs, eps: self.actor(obs, {'z1': eps}, mode='sample'),
                                  reduce_retracing=True)
    if self.perturbed is not None:
      self._perturbed_fn = tf.function(lambda obs: self.perturbed(obs), reduce_retracing=True)
      self._adaptive_fn = tf.function(lambda obs: self.adaptive(obs), reduce_retracing=True)

  def counters(self):
    return {'agent_steps': self.agent_steps, 'updates': self.updates, 'iterations': self.iterations}

  def _update(self, obs, action, reward, discount, next_obs):
    tf, cfg = self.tf, self.cfg
    next_q = self.target_critic(next_obs, self.target_actor(next_obs, mode='map'))
    done = 1.0 - discount
    with tf.GradientTape() as tape:
      q = self.critic(obs, action)
      critic_loss, logs = self.losses.ddpg_critic_loss(q, reward, done, next_q, gamma=cfg.gamma)
    critic_vars = self.critic.trainable_variables
    grads = tape.gradient(critic_loss, critic_vars)
    if cfg.grad_clip_norm > 0:
      grads, _ = tf.clip_by_global_norm(grads, cfg.grad_clip_norm)
    self.critic_optimizer.apply_gradients(zip(grads, critic_vars))
    with tf.GradientTape() as tape:
      actor_loss = self.losses.ddpg_actor_loss(self.critic(obs, self.actor(obs, mode='map')))
    actor_vars = self.actor.trainable_variables
    grads = tape.gradient(actor_loss, actor_vars)
    if cfg.grad_clip_norm > 0:
      grads, _ = tf.clip_by_global_norm(grads, cfg.grad_clip_norm)
    self.actor_optimizer.apply_gradients(zip(grads, actor_vars))
    for target, source in ((self.target_actor, self.actor), (self.target_critic, self.critic)):
      for t_var, s_var in zip(target.weights, source.weights):
        t_var.assign(cfg.tau * s_var + (1.0 - cfg.tau) * t_var)
    self.updates.assign_add(1)
    logs['loss/actor'] = actor_loss
    return logs

  def update(self, batch: Dict[str, np.ndarray]) -> Dict[str, float]:
    tf = self.tf
    logs = self._update_fn(tf.convert_to_tensor(batch['observation'], tf.float32),
                           tf.convert_to_tensor(batch['action'], tf.float32),
                           tf.convert_to_tensor(batch['reward'], tf.float32),
                           tf.convert_to_tensor(batch['discount'], tf.float32),
                           tf.convert_to_tensor(batch['next_observation'], tf.float32))
    return {k: float(v) for k, v in logs.items()}

  def map_action(self, observation) -> np.ndarray:
    return self._map_fn(self.tf.convert_to_tensor(observation, self.tf.float32)).numpy()

  def perturb(self, rng):
    self.ddpg.perturb_actor(self.actor, self.perturbed, float(self.pn_stddev.numpy()), rng)

  def perturbed_action(self, observation) -> np.ndarray:
    return self._perturbed_fn(self.tf.convert_to_tensor(observation, self.tf.float32)).numpy()

  def sampled_action(self, observation, eps) -> np.ndarray:
    tf = self.tf
    return self._sample_fn(tf.convert_to_tensor(observation, tf.float32), tf.convert_to_tensor(eps)).numpy()

  def adapt_param_noise(self, observation, rng) -> float:
    """Perturbs a scratch copy with the current sigma, measures the action distance to the actor on the batch,
    adapts sigma (x 1.05 when below 0.3, / 1.05 above); returns the distance."""
    self.adaptation.stddev = float(self.pn_stddev.numpy())
    self.ddpg.perturb_actor(self.actor, self.adaptive, self.adaptation.stddev, rng)
    obs = self.tf.convert_to_tensor(observation, self.tf.float32)
    distance = self.ddpg.action_distance(self._map_fn(obs).numpy(), self._adaptive_fn(obs).numpy())
    self.pn_stddev.assign(self.adaptation.adapt(distance))
    return distance


class MapActorPolicy:
  """The MAP actor as an `evaluation.run_episodes` policy: actions in the environment's units, no state."""

  def __init__(self, learner: DDPGLearner, low: np.ndarray, high: np.ndarray):
    self.learner, self.low, self.high = learner, low, high

  def initial_state(self, batch: int):
    del batch
    return {}

  def __call__(self, observation, state, first):
    del first
    return scale_actions(self.learner.map_action(observation), self.low, self.high), state, {}


def scale_actions(actions: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
  """[-1, 1] -> [low, high] per component."""
  return (low + (np.clip(actions, -1.0, 1.0) + 1.0) * 0.5 * (high - low)).astype(np.float32)


def unscale_actions(actions: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
  """[low, high] -> [-1, 1] per component (the inverse of `scale_actions`)."""
  return (2.0 * (np.asarray(actions, np.float32) - low) / (high - low) - 1.0).astype(np.float32)


def store_transitions(memory, rollout, frame_channels: int, begin: bool = False,
                      action_fn: Callable[[np.ndarray], np.ndarray] = lambda a: a) -> None:
  """Feeds a `sync_rollouts.Rollout` of E environments into a `replay.TransitionReplay` of E streams: the newest
  `frame_channels` channels of each observation, one transition per applied action. `begin`: the rollout's first
  observations begin the streams (the first rollout of a session). A bootstrap-only step (the last observation of
  an episode cut by a time limit, or an actor restart) stores no transition; the next observation begins a new
  episode. A termination (discount 0) leads into the next episode's first observation (`next_first`).
  `action_fn` maps the applied actions to the stored ones (e.g. back to [-1, 1])."""
  obs = rollout.observations
  c = int(frame_channels)
  for e in range(rollout.num_envs):
    if begin:
      memory.begin(e, obs[0, e][..., -c:])
    for t in range(rollout.num_steps):
      if rollout.bootstrap_only[t, e]:
        memory.begin(e, obs[t + 1, e][..., -c:])
        continue
      memory.add(e, action_fn(rollout.actions[t, e]), float(rollout.rewards[t, e]), float(rollout.discounts[t, e]),
                 obs[t + 1, e][..., -c:], next_first=bool(rollout.first[t + 1, e]))


def _train_ddpg(cfg: DDPGConfig, logdir: str, print_fn) -> TrainResult:
  from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
  from rlcv_tf.runtime import replay as replay_lib  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from rlcv_tf.stochastic_ac import evaluation  # pylint: disable=g-import-not-at-top
  from rlcv_tf.stochastic_ac import offpolicy_export  # pylint: disable=g-import-not-at-top
  start = time.monotonic()
  observation_shape, action_spec, action_dim, continuous = _probe_env(cfg, None)
  if not continuous:
    raise ValueError(f'model: {cfg.model} needs continuous actions, {cfg.env} has discrete ones')
  low = np.asarray(action_spec.minimum, np.float32)[0]
  high = np.asarray(action_spec.maximum, np.float32)[0]
  num_frames = registry.entry(cfg.env).default_frames
  frame_shape = observation_shape[:-1] + (observation_shape[-1] // num_frames,)
  learner = DDPGLearner(cfg, observation_shape, action_dim)
  memory = replay_lib.TransitionReplay(cfg.replay_capacity, frame_shape, np.float32, num_frames=num_frames,
                                       action_shape=(action_dim,), action_dtype=np.float32,
                                       num_streams=cfg.num_envs, seed=runs.derived_seed(cfg.seed, 1 << 21))
  run = _Run(cfg, logdir, learner.checkpoint,
             lambda path: offpolicy_export.export_ddpg(learner.actor, path, observation_shape, low, high),
             learner.counters(), memory, print_fn)
  rng = np.random.default_rng(runs.derived_seed(cfg.seed, run.start_frames, 1 << 20))
  if cfg.validate_every_frames:
    eval_policy = MapActorPolicy(learner, low, high)
    run.enable_validation(
        lambda: [r.score for r in evaluation.run_episodes(eval_policy, cfg.env, config_lib.validation_seeds(
            cfg.validation_episodes), max_steps=cfg.eval_max_steps)],
        tf.train.Checkpoint(actor=learner.actor), learner.best_score, 'map')
  learner.adaptation.stddev = float(learner.pn_stddev.numpy())
  rollouts = _make_rollouts(cfg, run.start_frames, 1)
  n_envs = cfg.num_envs
  ou = OrnsteinUhlenbeck((n_envs, action_dim), cfg.ou_theta, cfg.ou_sigma, rng)
  c = frame_shape[-1]
  episodes: List[Dict[str, Any]] = []
  all_returns: List[float] = []   # this session's episodes, for `solved_at_episode`
  losses_seen: List[float] = []
  box = {'began': False, 'credit': 0.0, 'logs': {}, 'last_summary': 0.0, 'since_adapt': 0, 'distance': float('nan'),
         'solved': None}
  episode_offset = int(learner.episodes.numpy())

  def policy(observation, state, first):
    if cfg.model == 'ddpg':
      ou.reset(first)
      actions = learner.map_action(observation) + ou.sample()
    elif cfg.model == 'sddpg':
      eps = rng.standard_normal((observation.shape[0], cfg.stochastic_units), dtype=np.float32)
      actions = learner.sampled_action(observation, eps)
    else:
      if first.any():
        learner.perturb(rng)
      actions = learner.perturbed_action(observation)
    return scale_actions(actions, low, high), state, {}

  def iterate():
    r = rollouts.collect(policy)
    store_transitions(memory, r, c, begin=not box['began'], action_fn=lambda a: unscale_actions(a, low, high))
    box['began'] = True
    learner.agent_steps.assign_add(r.agent_steps)
    learner.iterations.assign_add(1)
    learner.episodes.assign_add(len(r.episodes))
    frames = int(learner.agent_steps.numpy())
    logs = box['logs']
    if memory.num_transitions >= cfg.warmup:
      box['credit'] += cfg.updates_per_step * r.agent_steps
      while box['credit'] >= 1.0:
        box['credit'] -= 1.0
        logs = learner.update(memory.sample(cfg.batch_size))
        losses_seen.append(logs['loss/critic'])
      box['logs'] = logs
      if cfg.model == 'pn_ddpg':
        box['since_adapt'] += r.agent_steps
        if box['since_adapt'] >= cfg.pn_adapt_every:
          box['since_adapt'] = 0
          box['distance'] = learner.adapt_param_noise(memory.sample(cfg.batch_size)['observation'], rng)
    for e in r.episodes:
      e['agent_steps'] = frames
      all_returns.append(_episode_return(e))
      if box['solved'] is None and cfg.env == 'bipedal_walker':
        solved = _solved_at(all_returns)
        if solved is not None:
          box['solved'] = episode_offset + solved
          print_fn(f'{run.prefix}solved: the 10-episode mean return reached {BIPEDAL_SOLVED_RETURN:g} at episode '
                   f'{box["solved"]:,} ({frames:,} agent steps)')
    episodes.extend(r.episodes)
    if r.episodes:
      run.scalars(frames, {'episode/return': float(np.mean([_episode_return(e) for e in r.episodes])),
                           'episode/length': float(np.mean([e['length'] for e in r.episodes]))})
    now = time.monotonic()
    if now - box['last_summary'] >= cfg.summary_interval_s or frames >= cfg.total_frames:
      values = dict(logs)
      values['replay/transitions'] = memory.num_transitions
      values['throughput/agent_steps_per_second'] = box.get('rate', 0.0)
      if cfg.model == 'pn_ddpg':
        values['param_noise/stddev'] = float(learner.pn_stddev.numpy())
        if math.isfinite(box['distance']):
          values['param_noise/distance'] = box['distance']
      run.scalars(frames, values)
      box['last_summary'] = now

  def progress_parts(rate):
    box['rate'] = rate
    parts = [f'episodes {int(learner.episodes.numpy()):,}']
    recent = all_returns[-SOLVED_WINDOW:]
    parts.append(f'return {np.mean(recent):+.1f} (last {len(recent)} episodes)' if recent
                 else 'no finished episode yet')
    logs = box['logs']
    if logs:
      parts.append(f'critic {logs["loss/critic"]:.4f} actor {logs["loss/actor"]:+.3f}')
    elif memory.num_transitions < cfg.warmup:
      parts.append(f'warm-up {memory.num_transitions:,}/{cfg.warmup:,}')
    if cfg.model == 'pn_ddpg':
      parts.append(f'PN sigma {float(learner.pn_stddev.numpy()):.4f} distance {box["distance"]:.3f}')
    if box['solved'] is not None:
      parts.append(f'solved at episode {box["solved"]:,}')
    return parts

  frames = _train_and_export(run, cfg, rollouts, iterate, progress_parts, learner, logdir, print_fn, start)
  return TrainResult(frames, int(learner.updates.numpy()), int(learner.iterations.numpy()), episodes,
                     run.ckpt.saved_model_dir, time.monotonic() - start, losses_seen,
                     solved_at_episode=box['solved'], emulator_frames=rollouts.emulator_frames,
                     diagnostics={'pn_stddev': float(learner.pn_stddev.numpy())}, validations=run.validations)
