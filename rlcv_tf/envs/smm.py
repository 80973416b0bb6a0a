"""The Super Mini Map (SMM) of Google Research Football, and its checkpoint reward, as pure NumPy.

Shared by the stand-in (`mini_football`) so it draws exactly what gfootball's `extracted` representation
draws (thesis Sec. 4.3.1; spec ch4 §2.1): four binary planes (left team, right team, ball, this agent), 255
where a point falls, over the field x in [-1, 1], y in [-1/2.25, 1/2.25] (y grows downwards = rows).
"""

from typing import Dict, Optional, Sequence, Tuple

import numpy as np

SMM_LAYERS = ('left_team', 'right_team', 'ball', 'active')
# The planes drawn the same for every controlled agent of a team (all but `active`): `render_smm` copies one base
# to every agent, and gfootball draws each agent's SMM from the same raw observation (rotated for the right team).
SHARED_LAYERS = (0, 1, 2)
FIELD_Y = 1.0 / 2.25  # half-height of the pitch in gfootball's normalised coordinates

# gfootball's default action set (`action_set_v1`), in its order: index i is action i of every agent.
GRF_ACTION_NAMES = ('idle', 'left', 'top_left', 'top', 'top_right', 'right', 'bottom_right', 'bottom',
                    'bottom_left', 'long_pass', 'high_pass', 'short_pass', 'shot', 'sprint', 'release_direction',
                    'release_sprint', 'sliding', 'dribble', 'release_dribble')


def position_to_rc(xy, hw: Tuple[int, int]) -> np.ndarray:
  """(x, y) points [..., 2] -> int (row, col) [..., 2] on an H x W map, with gfootball's rounding and clipping."""
  xy = np.asarray(xy, np.float64)
  h, w = hw
  col = ((xy[..., 0] + 1.0) / 2.0 * w).astype(np.int64)
  row = ((xy[..., 1] + FIELD_Y) / (2.0 * FIELD_Y) * h).astype(np.int64)
  return np.stack([np.clip(row, 0, h - 1), np.clip(col, 0, w - 1)], axis=-1)


def render_smm(raw: Dict[str, np.ndarray], hw: Tuple[int, int], active_indices: Sequence[int]) -> np.ndarray:
  """One SMM per controlled agent, uint8 [N, H, W, 4]; `active_indices` are left-team player indices."""
  h, w = hw
  base = np.zeros((h, w, 3), np.uint8)
  for plane, key in enumerate(('left_team', 'right_team')):
    pts = np.asarray(raw[key], np.float64).reshape(-1, 2)
    if len(pts):
      rc = position_to_rc(pts, hw)
      base[rc[:, 0], rc[:, 1], plane] = 255
  rc = position_to_rc(np.asarray(raw['ball'], np.float64)[:2], hw)
  base[rc[0], rc[1], 2] = 255
  out = np.zeros((len(active_indices), h, w, 4), np.uint8)
  out[..., :3] = base
  left = np.asarray(raw['left_team'], np.float64).reshape(-1, 2)
  rc = position_to_rc(left[list(active_indices)], hw)
  out[np.arange(len(active_indices)), rc[:, 0], rc[:, 1], 3] = 255
  return out


class CheckpointReward:
  """gfootball's `checkpoints` shaping, per controlled agent (spec ch4 §5.1).

  The pitch in front of the opponent goal is cut by 10 distance thresholds thr_k = 0.99 - 0.8/9 * k. A
  controlled agent that owns the ball at distance d from the goal (1, 0) collects +0.1 for every threshold
  thr_k >= d it has not collected yet this episode; when its team scores, it collects all that remain.
  """

  NUM_CHECKPOINTS = 10
  VALUE = 0.1

  def __init__(self, num_agents: int):
    self._thresholds = 0.99 - 0.8 / 9 * np.arange(self.NUM_CHECKPOINTS)
    self._collected = np.zeros(num_agents, np.int64)  # thresholds are collected in order, far to near

  def reset(self):
    self._collected[:] = 0

  def __call__(self, owner_agent: Optional[int], owner_xy, scored: bool) -> np.ndarray:
    """owner_agent: the controlled agent index owning the ball (None if nobody controlled owns it)."""
    reward = np.zeros(len(self._collected), np.float32)
    if scored:
      reward += (self.NUM_CHECKPOINTS - self._collected) * self.VALUE
      self._collected[:] = self.NUM_CHECKPOINTS
      return reward
    if owner_agent is None:
      return reward
    d = float(np.hypot(owner_xy[0] - 1.0, owner_xy[1]))
    reached = int(np.sum(self._thresholds >= d))  # thresholds are decreasing: a prefix of them is reached
    new = max(0, reached - self._collected[owner_agent])
    reward[owner_agent] = new * self.VALUE
    self._collected[owner_agent] += new
    return reward
