"""Settings of a Chapter 2 run (thesis App. 2.E, T:L1705-1742; spec ch2 §6), as one dataclass.

No TensorFlow here: launchers validate flags with it before TensorFlow loads.

Defaults are the thesis's Atari values (T:L1716-1727):
  Adam lr 5e-4, eps 1e-3, beta1 0.9, beta2 0.999; gradients "over 40 clipped to 40" (read as global-norm 40);
  gamma 0.95; value weight lambda_v 5 (Freeway 0.5); entropy beta 0.01; rewards clipped to [-1, 1] in the learner
  (Freeway unclipped); rollout t_max 20 (Freeway 30); GAE tau 1.0 (Freeway 0.92); log sigma^2 -6 for Seaquest,
  MsPacman and Breakout, -4 for the rest (also HPA3C's prior variance); HPA3C KL weight psi 1e-4; 64 agents
  (T:L1706-1707); 150K iterations (T:L1727). The slimmer encoder for Boxing, Breakout and Freeway (T:L1121-1122).
  Evaluation votes over 5 sampled activations, 1 for Freeway (T:L1164-1167, footnote T:L1194-1195).

`GAME_SETTINGS` holds the per-game values; `make_config(env, model, preset, **overrides)` layers them: the field
defaults, then the environment's settings, then the preset's, then explicit overrides (the launcher's flags).

Presets (`PRESETS`):
  laptop          the default: the thesis network and per-game values with 8 environments and 20,000 agent steps
                  (a run that shows the whole pipeline on a laptop in minutes, not one that learns Atari);
  thesis          App. 2.E's scale: 64 environments and 150K iterations (150K x 64 x t_max agent steps: 192M, 288M
                  for Freeway), actor processes;
  cartpole_check  the learning checks' settings on `cartpole_masked` (small network, calibrated budget).

The frame budget `total_frames` counts agent steps (actions applied, one per environment and step): each is 2-4
emulator frames on Atari. An iteration is one rollout of t_max steps of every environment plus one update.

Models (`--model=`): the A3C family (`A3C_MODELS`, trained on-policy by `training.py`), the ACER family
(`ACER_MODELS`) and the DDPG family (`DDPG_MODELS`), the last two trained by `offpolicy_training.py`. The A3C and
ACER families need discrete actions, the DDPG family continuous ones (`ACTION_KINDS`).
"""

import dataclasses
import json
import math
import os
from typing import Any, Dict, Optional, Tuple

A3C_MODELS = ('a3c', 'sa3c', 'fsa3c', 'hpa3c', 'dropout_sa3c', 'nn_a3c', 'nn_a3c_v2', 'nn_a3c_v3', 'nn_sa3c',
              'sa3c_value_only', 'sa3c_policy_only')
ACER_MODELS = ('acer', 'sacer', 'nn_acer')
DDPG_MODELS = ('ddpg', 'sddpg', 'pn_ddpg')
MODELS = A3C_MODELS + ACER_MODELS + DDPG_MODELS
# Models with no noise at all, or whose noise the thesis switches off at evaluation (NoisyNet: the mean weights,
# T:L1154-1156): evaluated with MAP by default. The others vote over sampled activations (T:L1164-1167).
MAP_EVAL_MODELS = ('a3c', 'nn_a3c', 'nn_a3c_v2', 'nn_a3c_v3')

EVAL_MODES = ('map', 'vote', 'mean_prob', 'sample')
RUNTIMES = ('inline', 'actors')
BACKENDS = ('local', 'ray')
ENCODERS = ('default', 'slim', 'mlp')
NOISE_SCHEDULES = ('per_step', 'per_rollout')

THESIS_NUM_ENVS = 64              # T:L1706-1707 "mini-batches of size 64, thus spawning 64 asynchronous agents"
THESIS_ITERATIONS = 150_000       # T:L1727 "The maximum training iteration is 150K"
THESIS_VALIDATE_EVERY_ITERATIONS = 1000   # not stated; spec §5 PROPOSAL
THESIS_SNAPSHOT_ITERATIONS = (100, 2000, 6000, 75_000, 150_000)   # Figs. 2.5 / 2.6 (T:L1293-1321)


def algorithm(model: str) -> str:
  """'a3c', 'acer' or 'ddpg': the family of `model` (ValueError for an unknown name)."""
  if model in A3C_MODELS:
    return 'a3c'
  if model in ACER_MODELS:
    return 'acer'
  if model in DDPG_MODELS:
    return 'ddpg'
  raise ValueError(f'model: unknown value {model!r}; valid values: {", ".join(MODELS)}')


# Action space of each Chapter 2 environment (tests/test_stochastic_ac_config.py checks it on the engines).
ACTION_KINDS = {
    'atari_seaquest': 'discrete', 'atari_beam_rider': 'discrete', 'atari_ms_pacman': 'discrete',
    'atari_boxing': 'discrete', 'atari_breakout': 'discrete', 'atari_qbert': 'discrete',
    'atari_freeway': 'discrete', 'car_racing': 'discrete', 'cartpole_masked': 'discrete',
    'bipedal_walker': 'continuous', 'pendulum': 'continuous',
}
FAMILY_ACTIONS = {'a3c': 'discrete', 'acer': 'discrete', 'ddpg': 'continuous'}


def env_names() -> Tuple[str, ...]:
  """The Chapter 2 environments of the registry."""
  from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top  (NumPy only)
  return tuple(registry.names(chapter=2))


# Per-environment values (App. 2.E, T:L1716-1727; Table 2.G.2 and T:L1121-1122 for the encoders). Fields of
# `StochasticACConfig`; an environment not listed uses the field defaults.
_ATARI_DEFAULT = dict(encoder='default', log_var=-4.0)
GAME_SETTINGS: Dict[str, Dict[str, Any]] = {
    'atari_seaquest': dict(_ATARI_DEFAULT, log_var=-6.0),
    'atari_beam_rider': dict(_ATARI_DEFAULT),
    'atari_ms_pacman': dict(_ATARI_DEFAULT, log_var=-6.0),
    'atari_boxing': dict(_ATARI_DEFAULT, encoder='slim'),
    'atari_breakout': dict(_ATARI_DEFAULT, encoder='slim', log_var=-6.0),
    'atari_qbert': dict(_ATARI_DEFAULT),
    # Freeway: T:L1718-1724 and footnote 6 (T:L1729): lambda_v 0.5, rewards unclipped, t_max 30, tau 0.92;
    # one sample at evaluation (T:L1194-1195).
    'atari_freeway': dict(_ATARI_DEFAULT, encoder='slim', value_weight=0.5, reward_clip=None, unroll_length=30,
                          gae_lambda=0.92, num_samples=1),
    # ACER on CarRacing: the Seaquest values and network (T:L1733, T:L1664-1667), 8 agents (T:L1707); SACER's
    # log sigma^2 is not printed: the Seaquest -6 (spec §12-21).
    'car_racing': dict(encoder='default', log_var=-6.0, num_envs=8),
    # DDPG family: log sigma^2 -5 (T:L1741-1742); the 1-D encoder is the DDPG networks' own.
    'bipedal_walker': dict(log_var=-5.0),
    'pendulum': dict(log_var=-5.0),
    # Stand-in (not a thesis task): vector observations, so a Dense encoder and a small LSTM.
    'cartpole_masked': dict(encoder='mlp', mlp_units=(64,), lstm_units=64, fc_units=32, log_var=-4.0),
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunSettings:
  """How a Chapter 2 run validates, runs its environments, checkpoints and logs: the fields every trainer's config
  has (`StochasticACConfig`; `offpolicy_training.ACERConfig` and `DDPGConfig`), declared and checked here once.
  The defaults are the A3C family's; the off-policy configs set their own validation defaults."""
  # Validation on held-out seeds (`validation_seeds`; never trained on), the best weights kept in best/.
  validate_every_frames: int = 5_000  # agent steps between validations; 0: no validation during training
  validation_episodes: int = 1        # on held-out seeds (the thesis: one non-training seed)
  eval_max_steps: int = 4_500         # agent steps per evaluation episode before it is cut (0: the env's own end)
  # Runtime.
  runtime: str = 'inline'             # inline: environments in this process; actors: actor processes
  envs_per_actor: int = 1
  backend: str = 'local'
  ray_address: str = ''
  actor_timeout_s: float = 60.0       # 0: wait for a slow actor without limit
  max_actor_restarts: int = 100
  seed: int = 0
  checkpoint_interval_s: float = 600.0
  summary_interval_s: float = 10.0    # 0: every iteration
  log_interval_s: float = 10.0        # 0: every iteration

  def validate_run_settings(self) -> None:
    """Raises ValueError 'field: problem; valid values' for the first bad field of the ones above."""
    ints = (('envs_per_actor', 1), ('validation_episodes', 1), ('validate_every_frames', 0), ('eval_max_steps', 0),
            ('max_actor_restarts', 0), ('seed', 0))
    for name, low in ints:
      value = getattr(self, name)
      if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f'{name}: must be an integer >= {low}, got {value!r}')
    if self.validation_episodes > TEST_SEED_OFFSET:
      raise ValueError(f'validation_episodes: at most {TEST_SEED_OFFSET}, got {self.validation_episodes}')
    value = self.checkpoint_interval_s
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0):
      raise ValueError(f'checkpoint_interval_s: must be a finite number > 0, got {value!r}')
    for name in ('actor_timeout_s', 'summary_interval_s', 'log_interval_s'):
      value = getattr(self, name)
      if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
              and value >= 0):
        raise ValueError(f'{name}: must be a finite number >= 0, got {value!r}')
    for name, valid in (('runtime', RUNTIMES), ('backend', BACKENDS)):
      if getattr(self, name) not in valid:
        raise ValueError(f'{name}: unknown value {getattr(self, name)!r}; valid values: {", ".join(valid)}')


@dataclasses.dataclass(frozen=True)
class StochasticACConfig(RunSettings):
  """One Chapter 2 run. Field defaults: the thesis's Atari values (module docstring) at laptop scale. The run-level
  fields (validation, runtime, checkpoints, logging) come from `RunSettings`."""
  env: str = 'atari_seaquest'
  model: str = 'sa3c'
  preset: str = 'laptop'
  # Scale.
  num_envs: int = 8                   # thesis 64 (Atari), 8 (CarRacing)
  total_frames: int = 20_000          # agent steps
  unroll_length: int = 20             # t_max (Freeway 30)
  # Optimisation (App. 2.E).
  learning_rate: float = 5e-4
  adam_epsilon: float = 1e-3
  adam_beta1: float = 0.9
  adam_beta2: float = 0.999
  grad_clip_norm: float = 40.0        # global norm (the thesis: "gradients over 40 are clipped to 40")
  gamma: float = 0.95
  gae_lambda: float = 1.0             # the thesis's tau (Freeway 0.92)
  value_weight: float = 5.0           # lambda_v (Freeway 0.5)
  entropy_weight: float = 0.01        # beta
  kl_weight: float = 1e-4             # psi (HPA3C)
  reward_clip: Optional[float] = 1.0  # None: unclipped (Freeway)
  # Network (Table 2.G.2; `a3c.NetworkConfig`).
  encoder: str = 'default'            # default | slim | mlp (vector stand-ins)
  mlp_units: Tuple[int, ...] = (64,)
  lstm_units: int = 512
  fc_units: int = 512
  log_var: float = -6.0               # SA3C/FSA3C sigma^2, HPA3C prior sigma_p^2 (per game)
  activation_noise: str = 'per_step'  # Gaussian / dropout units: new every step (Table 2.5: 'per_rollout')
  weight_noise: str = 'per_rollout'   # NoisyNet: held for a rollout (Table 2.5: 'per_step')
  # Evaluation (T:L1129-1146; validation: `RunSettings`).
  eval_mode: str = ''                 # '' : 'map' for MAP_EVAL_MODELS, else 'vote'
  num_samples: int = 5                # N of vote / mean_prob (Freeway 1)
  # Weights kept at these iterations in <logdir>/snapshots for the Figs. 2.5 / 2.6 analysis (`analysis.py`);
  # empty: iteration 1 and a quarter, half and all of the run (`resolved_snapshot_iterations`).
  snapshot_iterations: Tuple[int, ...] = ()

  # --------------------------------------------------------------------------------------------- derived
  @property
  def algorithm(self) -> str:
    return algorithm(self.model)

  @property
  def resolved_eval_mode(self) -> str:
    if self.eval_mode:
      return self.eval_mode
    return 'map' if self.model in MAP_EVAL_MODELS else 'vote'

  @property
  def total_iterations(self) -> int:
    """Updates of the whole run: total_frames / (num_envs x t_max), rounded up."""
    return -(-int(self.total_frames) // (int(self.num_envs) * int(self.unroll_length)))

  @property
  def resolved_snapshot_iterations(self) -> Tuple[int, ...]:
    """The iterations whose weights go to <logdir>/snapshots (the field, or 1, n/4, n/2, n of n iterations)."""
    if self.snapshot_iterations:
      return tuple(sorted(set(int(i) for i in self.snapshot_iterations)))
    n = self.total_iterations
    return tuple(sorted({1, max(1, n // 4), max(1, n // 2), n}))

  def network_kwargs(self) -> Dict[str, Any]:
    """`a3c.NetworkConfig` keyword arguments (the A3C and ACER families)."""
    return dict(encoder=self.encoder, mlp_units=tuple(self.mlp_units), lstm_units=self.lstm_units,
                fc_units=self.fc_units, log_var=self.log_var, activation_noise=self.activation_noise,
                weight_noise=self.weight_noise)

  # ------------------------------------------------------------------------------------------ validation
  def validate(self) -> 'StochasticACConfig':
    """Raises ValueError 'field: problem; valid values' for the first bad field; returns self."""
    envs = env_names()
    if self.env not in envs:
      raise ValueError(f'env: unknown Chapter 2 environment {self.env!r}; valid values: {", ".join(envs)}')
    family = algorithm(self.model)
    need, have = FAMILY_ACTIONS[family], ACTION_KINDS.get(self.env, 'discrete')
    if need != have:
      fits = [m for m in MODELS if FAMILY_ACTIONS[algorithm(m)] == have]
      fit_envs = [e for e in envs if ACTION_KINDS.get(e, 'discrete') == need]
      article = 'a' if family == 'ddpg' else 'an'
      raise ValueError(f'model: {self.model} is {article} {family.upper()}-family model for {need} actions, but '
                       f'{self.env} has {have} actions; valid values with this env: {", ".join(fits)} (or an env '
                       f'with {need} actions: {", ".join(fit_envs)})')
    for name in ('num_envs', 'total_frames', 'unroll_length', 'num_samples', 'lstm_units', 'fc_units'):
      value = getattr(self, name)
      if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f'{name}: must be an integer >= 1, got {value!r}')
    self.validate_run_settings()
    for name in ('learning_rate', 'adam_epsilon', 'grad_clip_norm'):
      value = getattr(self, name)
      if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f'{name}: must be a finite number > 0, got {value!r}')
    for name in ('adam_beta1', 'adam_beta2'):
      value = getattr(self, name)
      if not (isinstance(value, (int, float)) and 0 <= value < 1):
        raise ValueError(f'{name}: must lie in [0, 1), got {value!r}')
    for name in ('gamma', 'gae_lambda'):
      value = getattr(self, name)
      if not (isinstance(value, (int, float)) and 0 <= value <= 1):
        raise ValueError(f'{name}: must lie in [0, 1], got {value!r}')
    for name in ('value_weight', 'entropy_weight', 'kl_weight'):
      value = getattr(self, name)
      if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ValueError(f'{name}: must be a finite number >= 0, got {value!r}')
    if self.reward_clip is not None and not (math.isfinite(self.reward_clip) and self.reward_clip > 0):
      raise ValueError(f'reward_clip: must be a finite number > 0 (or none: unclipped), got {self.reward_clip!r}')
    if not (isinstance(self.log_var, (int, float)) and math.isfinite(self.log_var)):
      raise ValueError(f'log_var: must be a finite number (log sigma^2, e.g. -6 or -4), got {self.log_var!r}')
    choices = (('encoder', ENCODERS), ('activation_noise', NOISE_SCHEDULES), ('weight_noise', NOISE_SCHEDULES),
               ('preset', tuple(PRESETS)))
    for name, valid in choices:
      if getattr(self, name) not in valid:
        raise ValueError(f'{name}: unknown value {getattr(self, name)!r}; valid values: {", ".join(valid)}')
    if self.eval_mode and self.eval_mode not in EVAL_MODES:
      raise ValueError(f'eval_mode: unknown value {self.eval_mode!r}; valid values: {", ".join(EVAL_MODES)} (or '
                       'empty: map for A3C and NoisyNet, vote for the stochastic-activation models)')
    if not self.mlp_units or any(not isinstance(u, int) or u < 1 for u in self.mlp_units):
      raise ValueError(f'mlp_units: must be positive integers, got {self.mlp_units!r}')
    if any(not isinstance(i, int) or isinstance(i, bool) or i < 1 for i in self.snapshot_iterations):
      raise ValueError(f'snapshot_iterations: must be integers >= 1 (iterations of the run), got '
                       f'{self.snapshot_iterations!r}')
    return self

  # ---------------------------------------------------------------------------------------------- JSON
  def to_dict(self) -> Dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(self)))

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), indent=2, sort_keys=True)

  @classmethod
  def from_dict(cls, data: Dict[str, Any]) -> 'StochasticACConfig':
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in data.items() if k in names}
    for name in ('mlp_units', 'snapshot_iterations'):
      if name in kwargs:
        kwargs[name] = tuple(kwargs[name])
    return cls(**kwargs)

  @classmethod
  def load(cls, logdir: str) -> Optional['StochasticACConfig']:
    """The config.json of a run in `logdir`, or None when there is none."""
    from rlcv_tf.core import runs  # pylint: disable=g-import-not-at-top  (NumPy only)
    data = runs.load_config(logdir)
    return None if data is None else cls.from_dict(data)


# Fields that fix the saved variables' shapes or what was trained: a resumed run must keep them.
ARCHITECTURE_FIELDS = ('env', 'model', 'encoder', 'mlp_units', 'lstm_units', 'fc_units')


def check_resume(cfg: StochasticACConfig, logdir: str) -> None:
  """Raises `core.runs.ResumeMismatchError` (one line naming the field, both values and the fix) when `logdir` holds
  a run that differs from `cfg` in a field that fixes what was trained (`ARCHITECTURE_FIELDS`); any trainer's run
  is compared on env and model. Reads only; no TensorFlow."""
  from rlcv_tf.core import runs  # pylint: disable=g-import-not-at-top  (NumPy only)
  saved = runs.load_config(logdir)
  if saved is None:
    return
  runs.check_same_settings(logdir, saved, cfg.to_dict(), ('env', 'model'))
  if saved.get('model') in A3C_MODELS:
    runs.check_same_settings(logdir, StochasticACConfig.from_dict(saved), cfg, ARCHITECTURE_FIELDS)


def check_trained_run(logdir: str) -> 'StochasticACConfig':
  """The config of the A3C-family run in `logdir` if it holds a checkpoint to evaluate (best/ or checkpoints/);
  ValueError with one line saying what is missing otherwise. Files only, no TensorFlow (launchers call it first)."""
  cfg = StochasticACConfig.load(logdir)
  if cfg is None:
    raise ValueError(f'{logdir} holds no Chapter 2 run (no config.json); train one with python -m '
                     f'launchers.stochastic_ac --logdir={logdir}')
  if cfg.algorithm != 'a3c':
    raise ValueError(f'{logdir} holds an {cfg.algorithm.upper()}-family run ({cfg.model}); this evaluates the A3C '
                     f'family ({", ".join(A3C_MODELS)})')
  if not (os.path.exists(os.path.join(logdir, 'best', 'ckpt.index'))
          or os.path.exists(os.path.join(logdir, 'checkpoints', 'checkpoint'))):
    raise ValueError(f'{logdir} holds no checkpoint yet ({os.path.join(logdir, "checkpoints")} is empty); train '
                     'longer or wait for the run\'s first checkpoint')
  return cfg


def thesis_total_frames(unroll_length: int, num_envs: int = THESIS_NUM_ENVS,
                        iterations: int = THESIS_ITERATIONS) -> int:
  """Agent steps of a thesis-scale run: iterations x envs x t_max (150K x 64 x 20 = 192M)."""
  return int(iterations) * int(num_envs) * int(unroll_length)


def _thesis_preset(fields: Dict[str, Any]) -> Dict[str, Any]:
  """App. 2.E's scale; `fields` holds the defaults, the environment's values and the explicit overrides, and the
  budget follows its t_max and number of environments (64, or an environment's own: CarRacing 8)."""
  explicit = fields.get('_explicit', {})
  num_envs = explicit.get('num_envs', GAME_SETTINGS.get(fields.get('env'), {}).get('num_envs', THESIS_NUM_ENVS))
  t_max = fields.get('unroll_length', 20)
  return dict(num_envs=num_envs, total_frames=thesis_total_frames(t_max, num_envs),
              validate_every_frames=THESIS_VALIDATE_EVERY_ITERATIONS * num_envs * t_max, eval_max_steps=0,
              runtime='actors', envs_per_actor=4, checkpoint_interval_s=1800.0, summary_interval_s=60.0,
              log_interval_s=60.0, snapshot_iterations=THESIS_SNAPSHOT_ITERATIONS)


# Each preset maps the fields resolved so far (defaults + environment) to the values it sets.
PRESETS = {
    'laptop': lambda fields: {},
    'thesis': _thesis_preset,
    # Learning checks (tests/test_stochastic_ac_learning.py): the cartpole_masked network (GAME_SETTINGS), t_max 10
    # and 8 environments for more updates per agent step, lr 3e-3 and lambda_v 0.5, 60,000 agent steps
    # (calibrated on the shared 2-core CPU: A3C and SA3C go from ~17 to ~100 physics steps per episode).
    'cartpole_check': lambda fields: dict(num_envs=8, total_frames=60_000, unroll_length=10, value_weight=0.5,
                                          learning_rate=3e-3, validate_every_frames=0, eval_max_steps=1000,
                                          summary_interval_s=5.0),
}


def default_preset(env: str, model: str) -> str:
  """The preset a run gets when none is named: the learning check's settings on the CPU stand-ins (runs that learn
  in minutes and say so), `laptop` elsewhere."""
  family = algorithm(model)
  if env == 'cartpole_masked' and family == 'a3c':
    return 'cartpole_check'
  if env == 'pendulum' and family == 'ddpg':
    return 'pendulum_check'
  return 'laptop'


def make_config(env: str = 'atari_seaquest', model: str = 'sa3c', preset: str = 'laptop',
                **overrides) -> StochasticACConfig:
  """Field defaults, then the environment's `GAME_SETTINGS`, then the preset, then `overrides` (module docstring).
  Not validated: call `.validate()`. Unknown override names raise TypeError; an unknown preset ValueError."""
  if preset not in PRESETS:
    raise ValueError(f'preset: unknown value {preset!r}; valid values: {", ".join(PRESETS)}')
  fields = {f.name: f.default for f in dataclasses.fields(StochasticACConfig)}
  unknown = sorted(set(overrides) - set(fields))
  if unknown:
    raise TypeError(f'unknown config fields {unknown}')
  fields.update(env=env, model=model, preset=preset)
  fields.update(GAME_SETTINGS.get(env, {}))
  # A preset sees the environment's values and the explicit ones (e.g. an explicit --unroll_length scales the
  # thesis budget), then explicit overrides win.
  fields.update(PRESETS[preset](dict(fields, _explicit=dict(overrides), **overrides)))
  fields.update(overrides)
  return StochasticACConfig(**fields)


def thesis_scale_command(cfg: StochasticACConfig) -> str:
  """The command line of this run at the thesis's scale."""
  thesis = make_config(cfg.env, cfg.model, 'thesis')
  return (f'python -m launchers.stochastic_ac --env={cfg.env} --model={cfg.model} --preset=thesis   '
          f'# {thesis.num_envs} envs, {THESIS_ITERATIONS:,} iterations x t_max {thesis.unroll_length} = '
          f'{thesis.total_frames:,} agent steps, actor processes')


# ------------------------------------------------------------------------------------------------------ seeds
# Training environments get seeds below HELD_OUT_SEED_BASE; validation and test episodes at or above it, so the
# protocol's "non-training" / "unseen" seeds (T:L1134-1138) are never trained on, whatever --seed is.
HELD_OUT_SEED_BASE = 2 ** 30
TEST_SEED_OFFSET = 10_000
_TRAIN_SEED_SPAN = HELD_OUT_SEED_BASE - 2 ** 20   # room for 2^20 environments above a base


def training_seed_base(seed: int, start_frames: int) -> int:
  """Environment e of a session trains on seed base + e; the base derives from (seed, frames at the session's
  start), so a resumed run plays new episodes (`core.runs.derived_seed`)."""
  from rlcv_tf.core import runs  # pylint: disable=g-import-not-at-top  (NumPy only)
  return runs.derived_seed(seed, start_frames) % _TRAIN_SEED_SPAN


def validation_seeds(count: int) -> Tuple[int, ...]:
  """The held-out seeds validation plays during training (one per validation episode)."""
  if not 0 <= int(count) <= TEST_SEED_OFFSET:
    raise ValueError(f'validation_episodes: at most {TEST_SEED_OFFSET}, got {count}')
  return tuple(HELD_OUT_SEED_BASE + i for i in range(int(count)))


def test_seeds(count: int = 10) -> Tuple[int, ...]:
  """The protocol's unseen test seeds (the same for every run, apart from validation's)."""
  return tuple(HELD_OUT_SEED_BASE + TEST_SEED_OFFSET + i for i in range(int(count)))
