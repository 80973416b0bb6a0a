"""Hyper-parameters of Chapter 4 training (thesis App. 4.E; spec ch4 §4), as one dataclass.

Defaults are the thesis's where it states them; the frame budget, batch and actor count default to a run
that fits a laptop (see `THESIS_SCALE` for the paper's). The resolved config is written next to the
checkpoints (`config.json`) so a run can be reproduced and resumed.
"""

import dataclasses
import json
import os
from typing import Any, Dict, Optional, Tuple

MODELS = ('cnn', 'acnn')
STRATEGIES = ('default', 'one_device', 'mirrored', 'tpu')

# The thesis's settings (App. 4.E) for 5v5 against the built-in AI; printed by the launcher.
THESIS_SCALE = {
    'total_frames': 500_000_000, 'batch_size': 120, 'unroll_length': 32, 'learning_rate': 1.4e-4,
    'entropy_cost': 5e-4, 'baseline_cost': 0.5, 'discounting': 0.99,
}


@dataclasses.dataclass
class MarlConfig:
  env: str = 'grf_5v5'
  model: str = 'acnn'
  env_kwargs: Dict[str, Any] = dataclasses.field(default_factory=dict)
  num_frames: int = 4                  # frame stack (thesis: 4)
  total_frames: int = 20_000           # env steps, counted B*T per update (not times N agents)
  num_actors: int = 4
  batch_size: int = 4                  # unrolls per update (thesis: 120)
  unroll_length: int = 32              # T (thesis: 32)
  learning_rate: float = 1.4e-4        # thesis sweep {7e-5, 1.4e-4, 2.8e-4}; middle value
  adam_epsilon: float = 1e-7           # TF/Keras default, as the thesis ("Adam, TF defaults")
  discounting: float = 0.99
  baseline_cost: float = 0.5           # thesis "value loss coefficient"
  entropy_cost: float = 5e-4
  lambda_: float = 1.0
  clip_rho_threshold: float = 1.0
  clip_pg_rho_threshold: float = 1.0
  stack_channels: Tuple[Tuple[int, int], ...] = ((16, 2), (32, 2), (32, 2), (32, 2))
  feature_dim: int = 256
  num_heads: int = 2
  seed: int = 0
  strategy: str = 'default'
  max_queued_unrolls: int = 0          # 0: 2 * batch_size. Bounds how stale an unroll can get.
  checkpoint_interval_s: float = 600.0
  summary_interval_s: float = 10.0
  log_interval_s: float = 10.0

  def validate(self):
    """Raises ValueError naming the first bad field and its valid values."""
    if self.model not in MODELS:
      raise ValueError(f'model: unknown value {self.model!r}; valid values: {", ".join(MODELS)}')
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
    if self.max_queued_unrolls < 0:
      raise ValueError(f'max_queued_unrolls: must be >= 0, got {self.max_queued_unrolls}')
    return self

  @property
  def frames_per_update(self) -> int:
    return self.batch_size * self.unroll_length

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

  @classmethod
  def from_json(cls, text: str) -> 'MarlConfig':
    d = json.loads(text)
    d['stack_channels'] = tuple(tuple(x) for x in d['stack_channels'])
    d['env_kwargs'] = {k: tuple(v) if isinstance(v, list) else v for k, v in d['env_kwargs'].items()}
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
