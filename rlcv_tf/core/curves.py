"""Learning curves as pictures: raw episode returns against agent steps (Chapter 2, seed 001). NumPy + matplotlib."""

from typing import Any, Dict, Optional, Sequence

import numpy as np


def episode_returns(episodes: Sequence[Dict[str, Any]]) -> np.ndarray:
  """Each episode's raw return (its 'return' summed over agents), float64 [len(episodes)]."""
  return np.asarray([float(np.sum(e['return'])) for e in episodes], np.float64)


def plot_returns(episodes: Sequence[Dict[str, Any]], path: str, title: str,
                 random_mean: Optional[float] = None, window: int = 20) -> Optional[str]:
  """Training returns against agent steps (each episode a dot, a moving mean of `window` as a line, random play as
  a dashed line when given) as a PNG. Returns the path, or None without matplotlib (the caller says so)."""
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  returns = episode_returns(episodes)
  steps = np.asarray([int(e.get('agent_steps_total', i)) for i, e in enumerate(episodes)])
  fig, ax = plt.subplots(figsize=(6.4, 3.6))
  ax.plot(steps, returns, '.', ms=2, alpha=0.35, color='tab:blue', label='episode return')
  if returns.size >= window:
    kernel = np.ones(window) / window
    ax.plot(steps[window - 1:], np.convolve(returns, kernel, mode='valid'), color='tab:blue',
            label=f'mean of {window}')
  if random_mean is not None:
    ax.axhline(random_mean, color='grey', ls='--', lw=1, label=f'uniformly random play ({random_mean:.1f})')
  ax.set_xlabel('agent steps')
  ax.set_ylabel('raw episode return')
  ax.set_title(title, fontsize=9)
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path
