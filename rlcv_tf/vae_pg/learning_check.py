"""Did a seed-001 PPO run learn? The best mean raw score of `BEST_WINDOW` consecutive training episodes against
uniformly random play on the same environment (`RANDOM_EPISODES` held-out seeds), and the score curve as returns.png.
The last `WINDOW` episodes' mean is reported beside it, not judged.

Why the best window and not the last episodes: on the stand-in, PPO (with or without the entropy bonus) can learn
and then collapse to a deterministic policy at random play's score, and a policy still learning swings by 5x over
20 episodes; both made the end of the run a coin toss on the seed. Measured on the `check` preset (200,000 agent
steps; x random play): best 100-episode mean of runs that learned 2.8 / 3.8 / 4.6 / 5.2 / 6.4 (joint) / 7.4 / 8.1,
of runs that did not 1.3 (joint at 3e-4, c3 0) / 1.5 / 1.6 (fixed) / 1.8 (learning rate 1e-9) / 2.0 (c3 0); the
last 20 episodes of the learned runs 1.7-9x (seed 1 had risen to 22 bricks at 250,000 steps and fell back to 1 by
325,000 when run on); the second half's mean 1.4-4.7x. The threshold 2.5x lies between the two groups.

Calibrated only where the budget is known to learn (`CALIBRATED`, measured on the 2-core machine); elsewhere the
scores are reported, not judged (the paper's ALE runs are 10^7 agent steps; laptop-sized ALE runs show the
pipeline). The check can fail: a run with the learning rate near zero stays at random play's level.
"""

import dataclasses
import json
import os
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from rlcv_tf.core import curves
from rlcv_tf.envs import random_policy

WINDOW = 20
BEST_WINDOW = 100
RANDOM_EPISODES = 100                # short episodes (~80 steps at 21x21): 100 cost well under a second
RANDOM_SEED_BASE = 1_000_003       # held-out seeds: training uses seed + env index
CURVE_FILE = 'returns.png'
RESULT_FILE = 'learning_check.json'
# (env, preset) -> minimum ratio trained / random. Measured: see the README's seed-001 section.
CALIBRATED = {('mini_breakout_tiny', 'check'): 2.5}


@dataclasses.dataclass
class CheckResult:
  passed: bool
  trained: float
  random: float
  factor: float
  window: int
  line: str


def random_play_score(env: str, num_frames: int, episodes: int = RANDOM_EPISODES, seed: int = 0) -> float:
  """Mean raw score of `episodes` episodes of uniformly random actions (seeds RANDOM_SEED_BASE + i)."""
  return float(np.mean(random_policy.random_play_scores(env, episodes, RANDOM_SEED_BASE, seed=seed,
                                                         num_frames=num_frames)))


def check(env: str, preset: str, scores, random_mean: float, window: int = WINDOW,
          best_window: int = BEST_WINDOW) -> Optional[CheckResult]:
  """`scores`: the raw scores of the run's training episodes in the order they ended."""
  factor = CALIBRATED.get((env, preset))
  if factor is None:
    return None
  scores = np.asarray(scores, np.float64)
  if scores.size < best_window:
    return CheckResult(False, float(scores.mean()) if scores.size else float('nan'), random_mean, factor,
                       int(scores.size), f'learning check FAILED: only {scores.size} training episodes finished '
                       f'(want {best_window}); run the preset\'s whole budget')
  best = float(np.convolve(scores, np.ones(best_window) / best_window, mode='valid').max())
  last = float(scores[-window:].mean())
  passed = best >= factor * random_mean
  line = (f'learning check {"passed" if passed else "FAILED"}: the best {best_window} consecutive training episodes '
          f'score {best:.2f}, {best / max(random_mean, 1e-9):.1f}x uniformly random play ({random_mean:.2f} over '
          f'{RANDOM_EPISODES} held-out episodes; want >= {factor:g}x); the last {window}: {last:.2f}')
  return CheckResult(passed, best, random_mean, factor, best_window, line)


def finish(cfg, logdir: str, episodes: List[Dict[str, Any]], num_actions: int,
           print_fn: Callable[[str], None], prefix: str) -> Optional[Dict]:
  """The check (calibrated runs; learning_check.json) and returns.png; returns the check as a dict or None."""
  del num_actions
  random_mean = None
  result = None
  if (cfg.env, cfg.preset) in CALIBRATED:
    random_mean = random_play_score(cfg.env, cfg.num_frames, seed=cfg.seed)
    result = check(cfg.env, cfg.preset, [e['score'] for e in episodes], random_mean)
    with open(os.path.join(logdir, RESULT_FILE), 'w') as f:
      json.dump(dataclasses.asdict(result), f, indent=2)
    print_fn(prefix + result.line)
  if episodes:
    curve = [{'return': e['score'], 'agent_steps_total': e['agent_steps']} for e in episodes]
    path = curves.plot_returns(curve, os.path.join(logdir, CURVE_FILE),
                               f'PPO {cfg.variant} on {cfg.env} ({cfg.preset})', random_mean)
    if path is None:
      print_fn(f'{prefix}no returns.png: matplotlib is missing (pip install "matplotlib>=3.8")')
  return None if result is None else dataclasses.asdict(result)
