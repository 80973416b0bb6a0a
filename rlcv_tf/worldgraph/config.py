"""Chapter 3 run settings: phase 1 (the world graph) as one dataclass, with the thesis's values and a CPU profile.

Values the thesis gives are cited (T:Lnnnn, lines of shared/seeds/000_c47052dd0852ee6d.txt); the rest are the
spec's proposals (spec ch3 Sec. 6, [P]). `profile='full'` is the thesis's scale (128 agents, 3,600 iterations,
spec Sec. 3.2-3.4 sizes); `profile='cpu'` the spec's CPU column (16 agents, smaller networks), the launcher's
default. Every field is recorded in config.json; the fields in ARCHITECTURE_FIELDS must match on resume.
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
  iterations: int = 600                 # Alg. 6 iterations (T:L2957-2958: 3,600, converging near 2,400; cpu 400-800)
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
  vae_learning_rate: float = 1e-4       # T:L2954
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
      base = dict(num_envs=128, iterations=3600, waypoint_every=50, state_embedding=32, state_hidden=64,
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
