"""Solve a small MDP and write what a user looks at: `solution.json` ({V, Q, policy, ...}) and a picture.

`solve(env, method, gamma, output_dir)`: env 'two_state' (the spec's worked example), 'frozenlake' or
'cliffwalking' (the real gymnasium tables, `envs.toy_text`); method 'evaluate' (the uniformly random policy),
'value_iteration', 'policy_iteration' or 'q_learning' (tabular, sampled from the MDP). For the grid worlds the
picture is the map with V as colour and the greedy action as an arrow per open cell (`values.png`), and the
greedy policy is played on the real environment (`--episodes`, no time limit) beside V*(start).
"""

import json
import os
import time
from typing import Callable, Dict, Optional

import numpy as np

from rlcv_tf.envs import toy_text
from rlcv_tf.rl_basics import mdp as mdp_lib
from rlcv_tf.rl_basics import tabular

ENVS = ('two_state',) + tuple(toy_text.TOY_TEXT)
METHODS = ('evaluate', 'value_iteration', 'policy_iteration', 'q_learning')
SOLUTION_FILE = 'solution.json'
PICTURE_FILE = 'values.png'


def build(env: str, gamma: float):
  """(TabularMDP, grid or None, action names)."""
  if env == 'two_state':
    return mdp_lib.two_state_mdp(gamma), None, ('stay', 'move')
  if env not in toy_text.TOY_TEXT:
    raise ValueError(f'unknown env {env!r}; valid values: {", ".join(ENVS)}')
  t = toy_text.tables(env)
  return mdp_lib.TabularMDP(t.P, t.R, gamma, start=t.start, terminal=t.terminal), t.grid, tuple(t.action_names)


def check_request(env: str, method: str, gamma: float) -> None:
  if env not in ENVS:
    raise ValueError(f'--env={env}: unknown environment; valid values: {", ".join(ENVS)}')
  if method not in METHODS:
    raise ValueError(f'--method={method}: unknown method; valid values: {", ".join(METHODS)}')
  if not 0.0 <= gamma <= 1.0:
    raise ValueError(f'--gamma={gamma:g}: a discount lies in [0, 1]')
  if gamma == 1.0 and env == 'two_state':
    raise ValueError('--gamma=1 on two_state: its episodes never end, so the undiscounted return is infinite; use '
                     'gamma < 1')


_ARROWS = {'left': (-1, 0), 'right': (1, 0), 'up': (0, 1), 'down': (0, -1)}


def picture(path: str, grid, v: np.ndarray, policy: np.ndarray, actions, terminal: np.ndarray, title: str) -> str:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  rows, cols = grid.shape
  fig, ax = plt.subplots(figsize=(max(4.0, 0.7 * cols + 1.5), max(3.0, 0.7 * rows + 0.8)))
  im = ax.imshow(v.reshape(rows, cols), cmap='viridis')
  fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label='V')
  for s in range(rows * cols):
    r, c = divmod(s, cols)
    cell = grid[r, c]
    if cell in ('H', 'C', 'G') or terminal[s]:
      ax.text(c, r, cell if cell != 'x' else 'T', ha='center', va='center', color='white', fontsize=11,
              fontweight='bold')
      continue
    dx, dy = _ARROWS[actions[int(policy[s])]]
    ax.arrow(c - 0.25 * dx, r + 0.25 * dy, 0.4 * dx, -0.4 * dy, head_width=0.15, color='white',
             length_includes_head=True)
    if cell == 'S':
      ax.text(c - 0.35, r - 0.3, 'S', color='white', fontsize=8)
  ax.set_xticks([])
  ax.set_yticks([])
  ax.set_title(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


def solve(env: str, method: str, gamma: float, output_dir: str, episodes: int = 1000, steps: int = 200_000,
          alpha: float = 0.1, epsilon: float = 0.2, seed: int = 0,
          print_fn: Callable[[str], None] = print) -> Dict:
  """Module docstring; returns what solution.json holds."""
  check_request(env, method, gamma)
  start = time.monotonic()
  mdp, grid, actions = build(env, gamma)
  extra: Dict = {}
  if method == 'evaluate':
    pi = mdp_lib.uniform(mdp)
    v, q = mdp_lib.policy_evaluation(mdp, pi)
    policy = mdp_lib.greedy(q)
    extra['evaluated_policy'] = 'uniformly random'
  elif method == 'value_iteration':
    q, policy, iterations = mdp_lib.q_value_iteration(mdp)
    v = q.max(axis=1)
    extra['iterations'] = iterations
  elif method == 'policy_iteration':
    v, q, policy, iterations = mdp_lib.policy_iteration(mdp)
    extra['iterations'] = iterations
  else:
    q = tabular.q_learning(mdp, steps, alpha=alpha, epsilon=epsilon, seed=seed, max_episode_steps=1000)
    policy = mdp_lib.greedy(q)
    v = q.max(axis=1)
    q_star, _, _ = mdp_lib.q_value_iteration(mdp)
    extra.update(steps=steps, alpha=alpha, epsilon=epsilon,
                 max_abs_error_vs_q_star=float(np.max(np.abs(q - q_star))))
  v_start = float(mdp.start @ v)
  out = {'env': env, 'method': method, 'gamma': gamma, 'V': v.tolist(), 'Q': q.tolist(),
         'policy': [int(a) for a in policy], 'action_names': list(actions), 'V_start': v_start, **extra}
  os.makedirs(output_dir, exist_ok=True)
  if grid is not None:
    if episodes > 0:
      returns = toy_text.play(env, policy, episodes, gamma, seed=seed)
      out['played'] = {'episodes': episodes, 'mean_discounted_return': float(returns.mean()),
                       'standard_error': float(returns.std() / np.sqrt(episodes)),
                       'policy': 'greedy in ' + ('V^pi of the random policy' if method == 'evaluate' else 'Q')}
      print_fn(f'[mdp] played the greedy policy {episodes} times on {toy_text.TOY_TEXT[env]} (no time limit): mean '
               f'discounted return {returns.mean():.4f} +- {returns.std() / np.sqrt(episodes):.4f} (s.e.) vs '
               f'V(start) {v_start:.4f}')
    out['picture'] = picture(os.path.join(output_dir, PICTURE_FILE), grid, v, policy, actions, mdp.terminal,
                             f'{toy_text.TOY_TEXT[env]}: {method}, gamma {gamma:g}')
  out['wall_s'] = time.monotonic() - start
  path = os.path.join(output_dir, SOLUTION_FILE)
  with open(path, 'w') as f:
    json.dump(out, f, indent=1)
  print_fn(f'[mdp] {env} by {method} (gamma {gamma:g}): V(start) = {v_start:.4f}; greedy policy '
           f'{[actions[a] for a in policy] if len(policy) <= 4 else "in " + path}; wrote {path}'
           + (f' and {out["picture"]}' if 'picture' in out else ''))
  return out
