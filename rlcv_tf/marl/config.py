"""Hyper-parameters of Chapter 4 training (thesis App. 4.E; spec ch4 §4), as one dataclass.

Defaults are the thesis's where it states them; the frame budget, batch and actor count default to a run
that fits a laptop (see `THESIS_SCALE` for the paper's). The resolved config is written next to the
checkpoints (`config.json`) so a run can be reproduced and resumed.
"""

import dataclasses
import json
import os
from typing import Any, Dict, Optional, Tuple

# prcnn / pracnn: progressive networks (Fig. 4.1c, spec §2.8), a frozen pre-trained column (`progressive_from`)
# plus a trainable CNN / ACNN column with lateral connections.
MODELS = ('cnn', 'acnn', 'prcnn', 'pracnn')
PROGRESSIVE_MODELS = {'prcnn': 'cnn', 'pracnn': 'acnn'}   # progressive kind -> the kind of both columns
AUX_OBJECTIVES = ('none', 'predict', 'observe_all')
THESIS_AUX_COEF = 5e-4   # App. 4.E sweeps {1e-4, 5e-4}; the best is not stated, spec §4.3 proposes 5e-4
STRATEGIES = ('default', 'one_device', 'mirrored', 'tpu')
# actors: one OS process per environment and an inference thread (SEED RL); inline: the learner's process steps
# every environment itself, one batched inference at a time, then trains (deterministic for a seed).
RUNTIMES = ('actors', 'inline')
BACKENDS = ('local', 'ray')            # where actor processes run (runtime=actors)
DEFAULT_LEARNER_HOST = '127.0.0.1'
PRECISIONS = ('float32', 'bfloat16')
# Who plays the right team (thesis Sec. 4.3.1, App. 4.C; spec §3.6):
#   builtin         the environment's built-in AI (GRF's rule-based bot, the stand-in's scripted AI);
#   selfplay_mixed  `selfplay_agents` right field players are driven by the policy being trained (their
#                   trajectories are trained on too, as a second attention group), the rest by the built-in AI;
#                   how the thesis made its self-play AIs (CNN-v1: 2 agents, CNN-v2: 1 agent);
#   selfplay_fixed  the right field players are driven by frozen saved agents (`opponent_agents`), one drawn
#                   uniformly for each episode; only the home team is trained.
OPPONENTS = ('builtin', 'selfplay_mixed', 'selfplay_fixed')
# Environments whose adapter supports `right_agents` (two-team control), needed by the self-play opponents.
TWO_TEAM_ENVS = ('grf_5v5', 'mini_5v5', 'mini_5v5_small')
SELFPLAY_HOME_AGENTS = 4      # spec §3.6: against a self-play AI the home goalie is left to the built-in AI
FROZEN_OPPONENT_AGENTS = 4    # a frozen opponent drives the right field players; its goalie is built-in

# The thesis's settings (App. 4.E) for 5v5 against the built-in AI; printed by the launcher.
THESIS_SCALE = {
    'total_frames': 500_000_000, 'batch_size': 120, 'unroll_length': 32, 'learning_rate': 1.4e-4,
    'entropy_cost': 5e-4, 'baseline_cost': 0.5, 'discounting': 0.99,
}


# --preset: values a preset sets unless the flag is given explicitly. cpu_small is the laptop default (the field
# defaults below); gpu and thesis use App. 4.E's hyper-parameters (batch 120 x unroll 32, 500M frames vs the
# built-in AI). At 72x96 with N=5 a batch of 120 x 33 steps is 19,800 images of ~3.2 MB of float32 activations
# each (63 GB; about twice that at the backward pass's peak, as training prints before the first update), so gpu
# splits each update into 2 micro-batches (the same update, half the memory).
PRESETS = {
    'cpu_small': {},
    'gpu': dict(THESIS_SCALE, strategy='one_device', micro_batches=2),
    'thesis': dict(THESIS_SCALE),
}


def parse_stacks(text: str) -> Tuple[Tuple[int, int], ...]:
  """'16x2,32x2' -> ((16, 2), (32, 2)) (torso conv stacks as CHANNELSxBLOCKS); ValueError otherwise."""
  try:
    stacks = tuple(tuple(int(v) for v in part.lower().split('x')) for part in text.split(','))
  except ValueError:
    stacks = ()
  if not stacks or any(len(s) != 2 or min(s) < 1 for s in stacks):
    raise ValueError(f'{text}: expected CHANNELSxBLOCKS,... with positive integers, e.g. 16x2,32x2,32x2')
  return stacks


@dataclasses.dataclass
class MarlConfig:
  env: str = 'grf_5v5'
  model: str = 'acnn'
  env_kwargs: Dict[str, Any] = dataclasses.field(default_factory=dict)
  num_frames: int = 4                  # frame stack (thesis: 4)
  total_frames: int = 20_000           # env steps, counted B*T per update (not times N agents)
  num_actors: int = 4
  runtime: str = 'actors'              # see RUNTIMES
  num_envs: int = 0                    # runtime=inline: environments stepped in process; 0 = num_actors
  backend: str = 'local'               # actor processes on this machine (local) or a Ray cluster's nodes (ray)
  ray_address: str = ''                # backend=ray: HOST:PORT of the cluster's head; '' starts a private Ray here
  learner_host: str = DEFAULT_LEARNER_HOST   # where the learner listens for actors; others need a reachable one
  learner_port: int = 0                # the learner's TCP port for actors; 0 picks a free one
  batch_size: int = 4                  # unrolls per update (thesis: 120)
  unroll_length: int = 32              # T (thesis: 32)
  micro_batches: int = 1               # split each update's batch into this many parts (gradient accumulation)
  learning_rate: float = 1.4e-4        # thesis sweep {7e-5, 1.4e-4, 2.8e-4}; middle value
  adam_epsilon: float = 1e-7           # TF/Keras default, as the thesis ("Adam, TF defaults")
  discounting: float = 0.99
  baseline_cost: float = 0.5           # thesis "value loss coefficient"
  entropy_cost: float = 5e-4
  aux: str = 'none'                    # auxiliary objective: none, predict (Eq. 4.4) or observe_all (Sec. 4.4.5)
  aux_coef: float = THESIS_AUX_COEF    # weight c_aux of the auxiliary loss (spec §3.3)
  observe_all_opponents: bool = False  # observe_all masks also cover the opponents (spec §2.7 [P] flag)
  # predict: drop targets more than this many pixels from the agent's current position (the active player
  # switched, or a kick-off reset; spec §2.9 proposes 3 px at 72x96); 0 keeps every target.
  aux_max_jump_px: int = 3
  init_from: str = ''                  # pre-train logdir / checkpoint: initialise torso + attention (+ heads)
  progressive_from: str = ''           # pre-train logdir / checkpoint: the frozen column of prcnn / pracnn
  record_dir: str = ''                 # save observation replays (no actions) of the actors' episodes here
  record_every: int = 1                # record every k-th episode to start (over all actors)
  opponent: str = 'builtin'            # builtin, selfplay_mixed or selfplay_fixed (see OPPONENTS)
  selfplay_agents: int = 2             # selfplay_mixed: right field players driven by the trained policy (1-4)
  opponent_agents: Tuple[str, ...] = ()  # selfplay_fixed: saved agents (logdir, SavedModel or checkpoint)
  lambda_: float = 1.0                 # V-trace lambda (1 = plain V-trace; SEED RL / thesis)
  clip_rho_threshold: float = 1.0      # rho-bar of the value targets
  clip_c_threshold: float = 1.0        # c-bar of the traces
  clip_pg_rho_threshold: float = 1.0   # rho-bar of the policy-gradient advantages
  stack_channels: Tuple[Tuple[int, int], ...] = ((16, 2), (32, 2), (32, 2), (32, 2))
  feature_dim: int = 256
  num_heads: int = 2
  seed: int = 0
  strategy: str = 'default'
  tpu: str = 'local'                   # strategy=tpu: the TPU to use ('local' on a Cloud TPU VM, or grpc://HOST:PORT)
  jit_compile: bool = False            # XLA for inference (padded to power-of-two batches) and the gradients
  precision: str = 'float32'           # float32 or bfloat16 (torso/attention; heads, logits, V-trace in float32)
  max_queued_unrolls: int = 0          # 0: 2 * batch_size. Bounds how stale an unroll can get.
  actor_timeout_s: float = 60.0        # an actor that does not answer its actions this long is restarted; 0: never
  max_actor_restarts: int = 100        # actor restarts (over all actors) before the run stops with the last error
  checkpoint_interval_s: float = 600.0
  summary_interval_s: float = 10.0
  log_interval_s: float = 10.0

  def validate(self):
    """Raises ValueError naming the first bad field and its valid values."""
    if self.model not in MODELS:
      raise ValueError(f'model: unknown value {self.model!r}; valid values: {", ".join(MODELS)}')
    if self.aux not in AUX_OBJECTIVES:
      raise ValueError(f'aux: unknown value {self.aux!r}; valid values: {", ".join(AUX_OBJECTIVES)}')
    if not isinstance(self.aux_max_jump_px, int) or self.aux_max_jump_px < 0:
      raise ValueError(f'aux_max_jump_px: must be an integer >= 0, got {self.aux_max_jump_px!r}')
    if not self.aux_coef >= 0:
      raise ValueError(f'aux_coef: must be >= 0, got {self.aux_coef!r}')
    if self.model in PROGRESSIVE_MODELS and not self.progressive_from:
      raise ValueError(f'progressive_from: model={self.model} needs the pre-trained frozen column (a '
                       'launchers/marl_pretrain.py logdir or checkpoint)')
    if self.progressive_from and self.model not in PROGRESSIVE_MODELS:
      raise ValueError(f'progressive_from: only used by the progressive models '
                       f'{", ".join(PROGRESSIVE_MODELS)}, not model={self.model}')
    if self.init_from and self.model in PROGRESSIVE_MODELS:
      raise ValueError(f'init_from: initialises cnn / acnn; model={self.model} takes its pre-trained column '
                       'from progressive_from')
    if not isinstance(self.record_every, int) or self.record_every < 1:
      raise ValueError(f'record_every: must be a positive integer, got {self.record_every!r}')
    if self.opponent not in OPPONENTS:
      raise ValueError(f'opponent: unknown value {self.opponent!r}; valid values: {", ".join(OPPONENTS)}')
    if self.opponent != 'builtin' and self.env not in TWO_TEAM_ENVS:
      raise ValueError(f'opponent: {self.opponent} needs an environment with two-team control '
                       f'({", ".join(TWO_TEAM_ENVS)}), not env={self.env}')
    if self.opponent == 'selfplay_mixed' and self.selfplay_agents not in (1, 2, 3, 4):
      raise ValueError(f'selfplay_agents: must be 1-4 right field players, got {self.selfplay_agents!r}')
    if self.opponent == 'selfplay_fixed' and not self.opponent_agents:
      raise ValueError('opponent_agents: opponent=selfplay_fixed needs at least one saved agent (a run logdir, '
                       'SavedModel or checkpoint, e.g. of a selfplay_mixed run)')
    if self.opponent_agents and self.opponent != 'selfplay_fixed':
      raise ValueError(f'opponent_agents: only used by opponent=selfplay_fixed, not opponent={self.opponent}')
    if 'right_agents' in self.env_kwargs:
      raise ValueError('env_kwargs: right_agents is set by the opponent setting (opponent=selfplay_mixed / '
                       'selfplay_fixed), not by hand')
    if not isinstance(self.micro_batches, int) or self.micro_batches < 1 or self.batch_size % self.micro_batches:
      raise ValueError(f'micro_batches: must be a positive integer dividing batch_size={self.batch_size}, got '
                       f'{self.micro_batches!r}')
    if self.precision not in PRECISIONS:
      raise ValueError(f'precision: unknown value {self.precision!r}; valid values: {", ".join(PRECISIONS)}')
    if self.runtime not in RUNTIMES:
      raise ValueError(f'runtime: unknown value {self.runtime!r}; valid values: {", ".join(RUNTIMES)}')
    if not isinstance(self.num_envs, int) or self.num_envs < 0:
      raise ValueError(f'num_envs: must be an integer >= 0 (0: num_actors), got {self.num_envs!r}')
    if self.backend not in BACKENDS:
      raise ValueError(f'backend: unknown value {self.backend!r}; valid values: {", ".join(BACKENDS)}')
    if self.ray_address and self.backend != 'ray':
      raise ValueError(f'ray_address: only used by backend=ray, not backend={self.backend} (add --backend=ray to '
                       'run the actors on that cluster, or drop --ray_address)')
    if self.backend == 'ray' and self.runtime == 'inline':
      raise ValueError('backend: ray places actor processes on a cluster, and runtime=inline has none; use '
                       'runtime=actors')
    if not isinstance(self.learner_port, int) or not 0 <= self.learner_port < 65536:
      raise ValueError(f'learner_port: must be a TCP port (0 picks a free one), got {self.learner_port!r}')
    if not self.learner_host:
      raise ValueError('learner_host: must be an address of this machine, e.g. 127.0.0.1 or 0.0.0.0')
    if self.num_envs and self.runtime != 'inline':
      raise ValueError(f'num_envs: only used by runtime=inline (runtime=actors runs num_actors environments)')
    if self.strategy not in STRATEGIES:
      raise ValueError(f'strategy: unknown value {self.strategy!r}; valid values: {", ".join(STRATEGIES)}')
    positive_ints = ('total_frames', 'num_actors', 'batch_size', 'unroll_length', 'num_frames', 'feature_dim',
                     'num_heads')
    for name in positive_ints:
      v = getattr(self, name)
      if not isinstance(v, int) or v < 1:
        raise ValueError(f'{name}: must be a positive integer, got {v!r}')
    for name in ('learning_rate', 'adam_epsilon'):
      if not getattr(self, name) > 0:
        raise ValueError(f'{name}: must be > 0, got {getattr(self, name)!r}')
    for name in ('entropy_cost', 'baseline_cost', 'checkpoint_interval_s'):
      if getattr(self, name) < 0:
        raise ValueError(f'{name}: must be >= 0, got {getattr(self, name)!r}')
    if not 0 <= self.discounting <= 1:
      raise ValueError(f'discounting: must lie in [0, 1], got {self.discounting!r}')
    if not 0 <= self.lambda_ <= 1:
      raise ValueError(f'lambda_: must lie in [0, 1], got {self.lambda_!r}')
    if self.feature_dim % self.num_heads:
      raise ValueError(f'num_heads: must divide feature_dim={self.feature_dim}, got {self.num_heads}')
    for name in ('clip_rho_threshold', 'clip_c_threshold', 'clip_pg_rho_threshold'):
      if not getattr(self, name) > 0:
        raise ValueError(f'{name}: must be > 0, got {getattr(self, name)!r}')
    if not isinstance(self.max_queued_unrolls, int) or self.max_queued_unrolls < 0:
      raise ValueError(f'max_queued_unrolls: must be >= 0, got {self.max_queued_unrolls}')
    if not self.actor_timeout_s >= 0:
      raise ValueError(f'actor_timeout_s: must be >= 0 (0: never time an actor out), got {self.actor_timeout_s!r}')
    if not isinstance(self.max_actor_restarts, int) or self.max_actor_restarts < 0:
      raise ValueError(f'max_actor_restarts: must be an integer >= 0 (0: stop at the first actor failure), '
                       f'got {self.max_actor_restarts!r}')
    return self

  @property
  def base_kind(self) -> str:
    """'cnn' or 'acnn': the network kind (of both columns, for a progressive model)."""
    return PROGRESSIVE_MODELS.get(self.model, self.model)

  @property
  def effective_env_kwargs(self) -> Dict[str, Any]:
    """`env_kwargs` plus what the opponent setting implies: the right agents handed to the caller and, against
    a self-play opponent, 4 home agents (goalie built-in) unless `num_agents` is given."""
    kwargs = dict(self.env_kwargs)
    if self.opponent == 'builtin':
      return kwargs
    kwargs.setdefault('num_agents', SELFPLAY_HOME_AGENTS)
    kwargs['right_agents'] = self.selfplay_agents if self.opponent == 'selfplay_mixed' else FROZEN_OPPONENT_AGENTS
    return kwargs

  @property
  def home_env_kwargs(self) -> Dict[str, Any]:
    """The environment as this run's own team played it, without the right team it trained against: how many
    players its agents drove (4 against self-play unless set), map size, episode length (for evaluation)."""
    kwargs = self.effective_env_kwargs
    kwargs.pop('right_agents', None)
    return kwargs

  @property
  def env_count(self) -> int:
    """Environments stepped at once: one per actor process, or num_envs (default num_actors) inline."""
    return self.num_envs or self.num_actors if self.runtime == 'inline' else self.num_actors

  @property
  def frames_per_update(self) -> int:
    return self.batch_size * self.unroll_length

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

  @classmethod
  def from_json(cls, text: str) -> 'MarlConfig':
    d = json.loads(text)
    # Configs written before a field existed load with that field's default (older runs stay resumable).
    known = {f.name for f in dataclasses.fields(cls)}
    d = {k: v for k, v in d.items() if k in known}
    d['stack_channels'] = tuple(tuple(x) for x in d['stack_channels'])
    d['env_kwargs'] = {k: tuple(v) if isinstance(v, list) else v for k, v in d['env_kwargs'].items()}
    if 'opponent_agents' in d:
      d['opponent_agents'] = tuple(d['opponent_agents'])
    return cls(**d)

  def save(self, logdir: str):
    os.makedirs(logdir, exist_ok=True)
    with open(os.path.join(logdir, 'config.json'), 'w') as f:
      f.write(self.to_json())

  @classmethod
  def load(cls, logdir: str) -> Optional['MarlConfig']:
    path = os.path.join(logdir, 'config.json')
    if not os.path.exists(path):
      return None
    with open(path) as f:
      return cls.from_json(f.read())


# ------------------------------------------------------------------------------------------- pre-training
PRETRAIN_MODELS = ('cnn', 'acnn')
PRETRAIN_OBJECTIVES = ('predict', 'observe_all')


@dataclasses.dataclass
class PretrainConfig:
  """Pre-training from observations (App. 4.D; see `pretraining`). Defaults are the thesis's where stated."""
  replay_dir: str = ''
  model: str = 'acnn'
  objective: str = 'predict'
  observe_all_opponents: bool = False
  max_jump_px: int = 3                 # predict: drop targets this far away, as MarlConfig.aux_max_jump_px
  stack_channels: Tuple[Tuple[int, int], ...] = ((16, 2), (32, 2), (32, 2), (32, 2))
  feature_dim: int = 256
  num_heads: int = 2
  batch_size: int = 32                 # App. 4.D
  learning_rate: float = 0.002         # App. 4.D (the main text also mentions a sweep)
  adam_epsilon: float = 1e-7           # TF default, App. 4.D
  max_steps: int = 20_000
  eval_every: int = 500                # spec §4.3 [P]
  patience: int = 5                    # spec §4.3 [P]
  validation_fraction: float = 1.0 / 15.0   # App. 4.D
  max_eval_batches: int = 0            # 0: the whole validation split at every evaluation
  # 0: decode every episode up front. K >= 2: at most K decoded at once (K-1 in a rotating training shuffle
  # buffer, one slot through which the validation split streams), for thesis-scale replays.
  max_resident_episodes: int = 0
  seed: int = 0
  log_interval_s: float = 10.0

  def validate(self):
    if self.model not in PRETRAIN_MODELS:
      raise ValueError(f'model: unknown value {self.model!r}; valid values: {", ".join(PRETRAIN_MODELS)}')
    if self.objective not in PRETRAIN_OBJECTIVES:
      raise ValueError(f'objective: unknown value {self.objective!r}; valid values: '
                       f'{", ".join(PRETRAIN_OBJECTIVES)}')
    if not isinstance(self.max_jump_px, int) or self.max_jump_px < 0:
      raise ValueError(f'max_jump_px: must be an integer >= 0, got {self.max_jump_px!r}')
    for name in ('batch_size', 'max_steps', 'eval_every', 'patience', 'feature_dim', 'num_heads'):
      v = getattr(self, name)
      if not isinstance(v, int) or v < 1:
        raise ValueError(f'{name}: must be a positive integer, got {v!r}')
    if not self.learning_rate > 0:
      raise ValueError(f'learning_rate: must be > 0, got {self.learning_rate!r}')
    if not isinstance(self.max_resident_episodes, int) or self.max_resident_episodes < 0 or \
        self.max_resident_episodes == 1:
      raise ValueError(f'max_resident_episodes: must be 0 (every episode in memory) or >= 2 (training episodes '
                       f'plus one validation episode), got {self.max_resident_episodes!r}')
    if not 0 < self.validation_fraction < 1:
      raise ValueError(f'validation_fraction: must lie in (0, 1), got {self.validation_fraction!r}')
    if self.feature_dim % self.num_heads:
      raise ValueError(f'num_heads: must divide feature_dim={self.feature_dim}, got {self.num_heads}')
    return self
