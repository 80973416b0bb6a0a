"""Did a Chapter 2 run learn? Its training returns against uniformly random play on the same engine (issue 10 §6;
every default run ends with a check that can fail), and the learning curve as a picture.

Measure: the mean return of the run's last `WINDOW` (100) finished training episodes (the behaviour policy: sampled
actions, sampled activations) against the mean of `RANDOM_EPISODES` (100) episodes of uniformly random actions from
the unseen test seeds (`config.test_seeds`). Pass: at least `factor` x the random mean.

The check is calibrated only where a preset's budget is known to learn (`CALIBRATED`):
  cartpole_masked / cartpole_check   3x random (random ~17; measured on the shared 2-core machine, 60,000 agent
                                     steps: A3C 106.5, SA3C 90.2; with the learning rate at 1e-12, 16.3 / 18.1).
Atari at laptop scale is not: 20,000 agent steps is 1/10,000 of a thesis run (1.9 x 10^8), and the policy stays
near uniform (measured: SA3C on Seaquest kept its entropy at ln 18 = 2.890 over 27,000 agent steps, returns ~100,
random play's level). Returns there are reported, not judged.
"""

import dataclasses
import json
import os
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from rlcv_tf.core import curves

WINDOW = 100
RANDOM_EPISODES = 100
CALIBRATED = {('cartpole_masked', 'cartpole_check'): 3.0}
CURVE_FILE = 'returns.png'
RESULT_FILE = 'learning_check.json'


class UniformPolicy:
  """Uniformly random discrete actions (an `evaluation.run_episodes` policy)."""

  def __init__(self, num_actions: int, seed: int = 0):
    self.num_actions = int(num_actions)
    self.rng = np.random.default_rng(seed)

  def initial_state(self, batch: int) -> Dict[str, np.ndarray]:
    del batch
    return {}

  def __call__(self, observation, state, first):
    return self.rng.integers(0, self.num_actions, len(observation)), state, {}


def random_policy_return(env: str, num_actions: int, episodes: int = RANDOM_EPISODES, seed: int = 0) -> float:
  """Mean raw return of `episodes` uniformly random episodes of `env` from the unseen test seeds."""
  from rlcv_tf.stochastic_ac import config as config_lib  # pylint: disable=g-import-not-at-top
  from rlcv_tf.stochastic_ac import evaluation  # pylint: disable=g-import-not-at-top
  results = evaluation.run_episodes(UniformPolicy(num_actions, seed), env, config_lib.test_seeds(episodes))
  return float(np.mean([r.score for r in results]))


episode_returns = curves.episode_returns


@dataclasses.dataclass
class CheckResult:
  passed: bool
  trained: float          # mean return of the last `window` training episodes
  random: float           # mean return of uniformly random play
  factor: float           # pass threshold: trained >= factor x random
  window: int             # training episodes averaged
  line: str

  def to_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)


def factor_for(env: str, preset: str) -> Optional[float]:
  return CALIBRATED.get((env, preset))


def check(env: str, preset: str, returns: Sequence[float], random_mean: float,
          window: int = WINDOW) -> Optional[CheckResult]:
  """The verdict for a calibrated (env, preset), None otherwise. Fails (with the reason) when the session finished
  fewer than `window` episodes."""
  factor = factor_for(env, preset)
  if factor is None:
    return None
  returns = np.asarray(returns, np.float64)
  if returns.size < window:
    return CheckResult(False, float(returns.mean()) if returns.size else float('nan'), random_mean, factor,
                       int(returns.size), f'learning check FAILED: only {returns.size} training episodes finished in '
                       f'this session (want {window}); run the preset\'s full budget in one session')
  trained = float(returns[-window:].mean())
  passed = trained >= factor * random_mean
  verdict = 'passed' if passed else 'FAILED'
  line = (f'learning check {verdict}: the last {window} training episodes return {trained:.1f}, '
          f'{trained / max(random_mean, 1e-9):.1f}x uniformly random play ({random_mean:.1f} over '
          f'{RANDOM_EPISODES} episodes on the same engine; want >= {factor:g}x)')
  return CheckResult(passed, trained, random_mean, factor, window, line)


def write(result: CheckResult, logdir: str) -> str:
  path = os.path.join(logdir, RESULT_FILE)
  with open(path, 'w') as f:
    json.dump(result.to_dict(), f, indent=2)
  return path


def finish(cfg, logdir: str, episodes: List[Dict[str, Any]], num_actions: int,
           print_fn: Callable[[str], None], prefix: str) -> Optional[CheckResult]:
  """The end of a training session: the check (calibrated runs; written to learning_check.json) and returns.png."""
  random_mean = None
  result = None
  if factor_for(cfg.env, cfg.preset) is not None:
    random_mean = random_policy_return(cfg.env, num_actions)
    result = check(cfg.env, cfg.preset, episode_returns(episodes), random_mean)
    write(result, logdir)
    print_fn(prefix + result.line)
  if episodes:
    path = curves.plot_returns(episodes, os.path.join(logdir, CURVE_FILE),
                               f'{cfg.model} on {cfg.env} ({cfg.preset})', random_mean)
    if path is None:
      print_fn(f'{prefix}no returns.png: matplotlib is missing (pip install "matplotlib>=3.8")')
  return result
