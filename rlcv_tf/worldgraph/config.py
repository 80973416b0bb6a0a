"""Chapter 3 run settings: phase 1 (the world graph, `WorldGraphConfig`) and phase 2 (the Feudal HRL,
`FeudalConfig`) as dataclasses, with the thesis's values and a CPU profile.

Values the thesis gives are cited (T:Lnnnn, lines of shared/seeds/000_c47052dd0852ee6d.txt); the rest are the
spec's proposals (spec ch3 Sec. 6, [P]). `profile='full'` is the thesis's scale (128 agents, 3,600 iterations,
spec Sec. 3.2-3.4 sizes); `profile='cpu'` the spec's CPU column (16 agents, smaller networks), the launcher's
default. Every field is recorded in config.json; the fields in ARCHITECTURE_FIELDS (phase 1) and
FEUDAL_ARCHITECTURE_FIELDS (phase 2) must match on resume.
"""

import dataclasses
from typing import Optional

PROFILES = ('cpu', 'full')
WAYPOINT_MODES = ('learned', 'random')        # or a path to a JSON list of [r, c]
ARCHITECTURE_FIELDS = ('maze', 'profile', 'horizon', 'state_embedding', 'state_hidden', 'lstm_units', 'filters',
                       'dense', 'policy_lstm', 'policy_fc', 'waypoints')


@dataclasses.dataclass
class WorldGraphConfig:
  """Phase 1 (Alg. 6) and edge formation."""
  maze: str = 'small'                   # tiny | small | medium | large | a maze text file
  profile: str = 'cpu'
  seed: int = 0
  num_envs: int = 16                    # B: parallel agents (T:L2953 "128 asynchronous agents"; cpu 16)
  iterations: int = 1200                # Alg. 6 iterations (T:L2957-2958: 3,600, converging near 2,400). cpu: on small,
                                        # E||z||_0 is 7.8 at 600 and 5.2 at 1,200 (one seed, measured)
  horizon: int = 25                     # T, walk and pi_g rollout length (T:L2957 "maximum sequence length 25")
  mu0: float = 5.0                      # target open gates (T:L2270-2272)
  waypoints: str = 'learned'            # learned | random | FILE.json (given ones skip the VAE)
  waypoint_every: int = 25              # K_vp: V_p refresh period ("once every few iterations", T:L2255; [P] 50/25)
  waypoint_fraction: float = 0.2        # |V_p| = 20% of the states (T:L2967-2968)
  curiosity_weight: float = 0.05        # lambda in r = 1[s' = g] - lambda p_theta(a | s, z) [P] (spec A9)
  plateau_patience: int = 0             # stop when recon accuracy has not improved by plateau_delta over this many
  plateau_delta: float = 0.005          #   iterations (0 = run all `iterations`; the thesis stops on a plateau)
  # VAE (App. 3.C.1; sizes [P]).
  state_embedding: int = 16
  state_hidden: int = 32
  lstm_units: int = 64
  vae_learning_rate: float = 1e-3       # cpu; the thesis's 1e-4 (T:L2954) is the full profile's: with 1/6 of the
                                        # iterations and 1/8 of the batch, 1e-4 leaves E||z||_0 at 7 after 200
                                        # iterations on small where 1e-3 reaches 5 (measured, one seed)
  kl_terms: Optional[int] = 5           # Eq. 3.5 with 5 terms (T); 0/None = accurate (spec A5)
  lagrange_mode: str = 'ascent'
  # pi_g (A2C with Ch. 2's values, T-inh; spec Sec. 6).
  filters: tuple = (16, 16, 32, 32)
  dense: int = 128
  policy_lstm: int = 128
  policy_fc: int = 64
  policy_learning_rate: float = 5e-4
  policy_epsilon: float = 1e-3
  policy_clip: float = 40.0
  gamma: float = 0.95
  gae_lambda: float = 1.0
  entropy_weight: float = 0.01
  value_weight: float = 0.5
  # Edges (Sec. 3.3.3; spec Sec. 4.7 [P]).
  edge_walks: int = 32
  edge_walk_length: int = 50
  edge_policy_tries: int = 2
  # Run plumbing.
  log_interval_s: float = 10.0
  checkpoint_interval_s: float = 600.0
  summary_every: int = 10

  @classmethod
  def for_profile(cls, profile: str = 'cpu', **overrides) -> 'WorldGraphConfig':
    """The profile's values, then `overrides` (flags the user set)."""
    if profile not in PROFILES:
      raise ValueError(f'--profile={profile}: one of {", ".join(PROFILES)}')
    base = {}
    if profile == 'full':
      # networks.FULL_SIZES (spec Sec. 3.4); kept literal so that flags are checked before TensorFlow loads.
      base = dict(num_envs=128, iterations=3600, waypoint_every=50, vae_learning_rate=1e-4, state_embedding=32,
                  state_hidden=64,
                  lstm_units=128, filters=(32, 32, 64, 64), dense=256, policy_lstm=256, policy_fc=128,
                  edge_walks=64, edge_policy_tries=4)
    base.update(overrides)
    return cls(profile=profile, **base).validate()

  @property
  def kl_num_terms(self) -> Optional[int]:
    return None if not self.kl_terms else int(self.kl_terms)

  @property
  def network_sizes(self):
    """pi_g's `networks.NetworkSizes`."""
    from rlcv_tf.worldgraph import networks  # pylint: disable=g-import-not-at-top  (TensorFlow)
    return networks.NetworkSizes(filters=tuple(self.filters), dense=self.dense, lstm=self.policy_lstm,
                                 fc=self.policy_fc)

  def validate(self) -> 'WorldGraphConfig':
    def need(ok, flag, value, fix):
      if not ok:
        raise ValueError(f'--{flag}={value}: {fix}')
    need(self.profile in PROFILES, 'profile', self.profile, f'one of {", ".join(PROFILES)}')
    for name in ('num_envs', 'iterations', 'horizon', 'waypoint_every', 'edge_walks', 'edge_walk_length',
                 'summary_every'):
      need(int(getattr(self, name)) >= 1, name, getattr(self, name), 'must be a positive integer')
    need(self.horizon >= 3, 'horizon', self.horizon, 'must be at least 3 (two fixed gates and a free one)')
    need(0 < self.mu0 < self.horizon - 1, 'mu0', self.mu0, f'must lie in (0, horizon - 1) = (0, {self.horizon - 1})')
    need(0 < self.waypoint_fraction <= 1, 'waypoint_fraction', self.waypoint_fraction, 'must lie in (0, 1]')
    need(self.edge_policy_tries >= 0, 'edge_policy_tries', self.edge_policy_tries, 'must be >= 0')
    need(self.kl_terms is None or int(self.kl_terms) >= 0, 'kl_terms', self.kl_terms,
         'a number of series terms >= 1, or 0 for the accurate KL')
    need(self.lagrange_mode in ('ascent', 'constraint'), 'lagrange_mode', self.lagrange_mode,
         'ascent (projected gradient ascent, spec A4) or constraint')
    need(self.waypoints in WAYPOINT_MODES or str(self.waypoints).endswith('.json'), 'waypoints', self.waypoints,
         'learned (the VAE\'s V_p), random (V_rand) or the path of a .json file listing [row, column] cells')
    need(self.plateau_patience >= 0, 'plateau_patience', self.plateau_patience, 'must be >= 0 (0 = off)')
    self.filters = tuple(int(f) for f in self.filters)
    return self


# ---------------------------------------------------------------------------------------------------------------
# Phase 2: the Feudal HRL (Alg. 7; spec Sec. 4.9-4.11 and Sec. 6).

MODELS = ('a2c', 'fn', 'wn')                  # flat A2C, Feudal Network (one goal over S_free), Wide-then-Narrow
HRL_TASKS = ('multigoal', 'multigoal_sparse', 'multigoal_stochastic', 'doorkey')
TRAVERSAL_MODES = ('auto', 'replay', 'policy')
LOSS_REDUCTIONS = ('sum_time', 'mean')
FEUDAL_ARCHITECTURE_FIELDS = ('maze', 'task', 'profile', 'model', 'narrow_window', 'filters', 'dense', 'lstm', 'fc',
                              'narrow_hidden', 'waypoint_embedding')


@dataclasses.dataclass
class FeudalConfig:
  """Phase 2: Manager/Worker (or flat A2C) on a maze task, with world-graph traversal (worldgraph/feudal.py).

  `pig_init` and `traversal` left at None take the ablation table's defaults (spec Sec. 4.10, A10): on for wn
  ("Ours"), off for the a2c and fn baselines. `narrow_window` None is N = 7 on the large maze and 5 otherwise.
  """
  maze: str = 'small'                   # tiny | small | medium | large | a maze text file
  task: str = 'multigoal'               # one of HRL_TASKS
  profile: str = 'cpu'
  seed: int = 0
  model: str = 'wn'                     # a2c | fn | wn (Table 3.2's columns, spec Sec. 4.10)
  pig_init: Optional[bool] = None       # state encoders <- pi_g's (T:L2432-2435); None: wn yes, a2c/fn no (A10)
  traversal: Optional[bool] = None      # world-graph traversal (T:L2460-2487); None: wn yes, else no (wn only)
  traversal_mode: str = 'auto'          # auto: pi_g in multigoal_stochastic (when given), else replay with check
  waypoints: str = 'learned'            # which phase-1 graph: learned V_p | random V_rand | FILE.json (recorded)
  graph_from: str = ''                  # the phase-1 run directory (graph.json, pi_g)
  num_envs: int = 16                    # parallel envs (not stated -> 64 full [P]; cpu 16)
  iterations: int = 300                 # 100K max in the thesis (T:L3087-3089); cpu default 300 (about 5 minutes;
                                        # the spec's 2K-4K take 30-70 minutes here)
  worker_steps: int = 60                # Worker decisions per env and iteration ("rollout steps 60", T:L3089) [P]
  horizon: int = 20                     # c, the subgoal horizon (T:L3090)
  narrow_window: Optional[int] = None   # N: 5 small/medium, 7 large (T:L3090-3092)
  gamma: float = 0.95                   # T-inh (Ch. 2)
  manager_gamma: Optional[float] = None  # None: gamma; 0.99 is spec A8's switch for medium/large
  gae_lambda: float = 1.0
  entropy_weight: float = 0.01
  value_weight: float = 0.5
  learning_rate: float = 5e-4           # Adam, eps 1e-3, clip 40 (T-inh); separate optimisers per network [P]
  adam_epsilon: float = 1e-3
  grad_clip: float = 40.0
  loss_reduction: str = 'sum_time'      # Alg. 1 / Alg. 7 "loss +=" over the rollout, mean over envs; or 'mean'
  wide_reward: float = 1.0              # Worker: first arrival at g^w (T:L2988) [P size]
  narrow_reward: float = 1.0            # Worker: arrival at g^n, ends the horizon (T:L2990-2991) [P size]
  worker_step_cost: float = 0.01        # Worker: -cost per own action, none in traversal (T:L2993-2995) [P size]
  traversal_limit_scale: float = 2.0    # pi_g traversal: at most scale * w(edge) + extra steps per edge [P]
  traversal_limit_extra: int = 5
  # Networks (spec Sec. 3.4-3.6; cpu column of Sec. 6). They must match pi_g's for --pig_init.
  filters: tuple = (16, 16, 32, 32)
  dense: int = 128
  lstm: int = 128
  fc: int = 64
  narrow_hidden: int = 128
  waypoint_embedding: int = 32
  # Evaluation (Sec. 3.5.1; spec Sec. 4.11): env seed ranges train >= 10^6, validation, test.
  eval_every: int = 100
  val_seed_start: int = 1000
  num_val_seeds: int = 10
  test_seed_start: int = 2000
  num_test_seeds: int = 100
  train_seed_base: int = 1_000_000
  # Run plumbing.
  log_interval_s: float = 10.0
  checkpoint_interval_s: float = 600.0
  summary_every: int = 10

  @classmethod
  def for_profile(cls, profile: str = 'cpu', **overrides) -> 'FeudalConfig':
    """The profile's values, then `overrides` (flags the user set)."""
    if profile not in PROFILES:
      raise ValueError(f'--profile={profile}: one of {", ".join(PROFILES)}')
    base = {}
    if profile == 'full':
      base = dict(num_envs=64, iterations=100_000, eval_every=500, filters=(32, 32, 64, 64), dense=256, lstm=256,
                  fc=128)
    base.update(overrides)
    return cls(profile=profile, **base).validate()

  @property
  def window(self) -> int:
    """N, the narrow window (resolved by validate)."""
    return int(self.narrow_window)

  @property
  def manager_discount(self) -> float:
    return float(self.gamma if self.manager_gamma is None else self.manager_gamma)

  @property
  def network_sizes(self):
    """`networks.NetworkSizes` of every phase-2 network."""
    from rlcv_tf.worldgraph import networks  # pylint: disable=g-import-not-at-top  (TensorFlow)
    return networks.NetworkSizes(filters=tuple(self.filters), dense=self.dense, lstm=self.lstm, fc=self.fc,
                                 narrow_hidden=self.narrow_hidden, waypoint_embedding=self.waypoint_embedding)

  def validate(self) -> 'FeudalConfig':
    """Checks every field (one ValueError naming the flag and the fix) and resolves the None defaults."""
    def need(ok, flag, value, fix):
      if not ok:
        raise ValueError(f'--{flag}={value}: {fix}')
    need(self.profile in PROFILES, 'profile', self.profile, f'one of {", ".join(PROFILES)}')
    need(self.model in MODELS, 'model', self.model, 'a2c (flat), fn (Feudal, one goal over the free cells) or wn '
         '(Wide-then-Narrow)')
    need(self.task in HRL_TASKS, 'task', self.task, f'one of {", ".join(HRL_TASKS)}')
    need(bool(self.maze), 'maze', self.maze, 'tiny, small, medium, large or a maze text file')
    for name in ('num_envs', 'iterations', 'worker_steps', 'horizon', 'eval_every', 'num_val_seeds',
                 'num_test_seeds', 'summary_every'):
      value = getattr(self, name)
      need(isinstance(value, (int,)) and not isinstance(value, bool) and value >= 1, name, value,
           'must be a positive integer')
    if self.narrow_window is None:
      self.narrow_window = 7 if self.maze == 'large' else 5
    need(int(self.narrow_window) >= 1 and int(self.narrow_window) % 2 == 1, 'narrow_window', self.narrow_window,
         'must be a positive odd number, a window centred on g^w (5 on small/medium, 7 on large)')
    if self.pig_init is None:
      self.pig_init = self.model == 'wn'
    if self.traversal is None:
      self.traversal = self.model == 'wn'
    need(not self.traversal or self.model == 'wn', 'traversal', self.traversal,
         f'traversal needs --model=wn (its wide goals are the graph\'s waypoints); use --notraversal with '
         f'--model={self.model}')
    need(self.traversal_mode in TRAVERSAL_MODES, 'traversal_mode', self.traversal_mode,
         'auto (pi_g in multigoal_stochastic, replay elsewhere), replay or policy')
    need(0.0 < self.gamma <= 1.0, 'gamma', self.gamma, 'must lie in (0, 1]')
    need(self.manager_gamma is None or 0.0 < self.manager_gamma <= 1.0, 'manager_gamma', self.manager_gamma,
         'must lie in (0, 1] (or be unset: --gamma)')
    need(0.0 <= self.gae_lambda <= 1.0, 'gae_lambda', self.gae_lambda, 'must lie in [0, 1]')
    for name in ('entropy_weight', 'value_weight', 'worker_step_cost', 'traversal_limit_extra'):
      need(getattr(self, name) >= 0, name, getattr(self, name), 'must be >= 0')
    for name in ('learning_rate', 'adam_epsilon', 'grad_clip', 'traversal_limit_scale'):
      need(getattr(self, name) > 0, name, getattr(self, name), 'must be > 0')
    need(self.loss_reduction in LOSS_REDUCTIONS, 'loss_reduction', self.loss_reduction,
         f'one of {", ".join(LOSS_REDUCTIONS)}')
    need(self.waypoints in WAYPOINT_MODES or str(self.waypoints).endswith('.json'), 'waypoints', self.waypoints,
         'learned (the VAE\'s V_p), random (V_rand) or the .json file of given waypoints')
    self.filters = tuple(int(f) for f in self.filters)
    need(len(self.filters) == 4 and min(self.filters) >= 1, 'filters', self.filters, 'four positive filter counts')
    for name in ('dense', 'lstm', 'fc', 'narrow_hidden', 'waypoint_embedding'):
      need(int(getattr(self, name)) >= 1, name, getattr(self, name), 'must be a positive size')
    return self
