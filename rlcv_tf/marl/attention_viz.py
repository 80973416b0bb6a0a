"""Attention pictures of an ACNN agent over a played episode, like thesis Fig. 4.2 (lines 3205-3220, 3578-3582;
spec ch4 §6.1 row "4.2", §7.1 item 38).

Fig. 4.2 draws the super-mini-map with "green the active agent being controlled, yellow the other home agents,
blue the opponents, white the ball", and "the red borders signify attention intensity": one row per agent whose
attention is shown. Here every panel is one (agent i, head h) pair of one frame: the newest SMM of agent i's
observation rendered in those colours and upscaled, then for every home agent j a red border and a red line from
i to j whose opacity is A^h_ij (alpha = 255 * weight, so weights are comparable across panels and frames) and
whose line width grows with it, and a bar strip under the pitch with the row A^h_i. (Fig. 4.2's exact drawing
is not recoverable from the text; the borders follow its legend, the lines and bars are additions.)

The weights are the network's own (`MarlNetwork(...)['attention']`, [B, heads, N, N], Eq. 4.3). The SavedModel's
`serve` endpoint does not return them, so the agent is restored from its checkpoint through the learner's
checkpoint layout (`agents.load_policy`, kind 'checkpoint').

Outputs (`save_episode`): frame_XXXX.png per step, attention.gif (Pillow, animated), attention.npz (weights
[T, heads, N, N], agent positions [T, N, 2], actions [T, N]).
"""

import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from PIL import ImageDraw

from rlcv_tf.envs import registry

PITCH = (18, 18, 18)
ACTIVE = (40, 220, 70)        # Fig. 4.2: green, the agent whose attention is shown
HOME = (240, 210, 40)         # yellow, the other home agents
OPPONENT = (50, 110, 255)     # blue
BALL = (255, 255, 255)        # white
ATTENTION = (230, 30, 30)     # red borders / lines
STRIP_H = 36                  # height of the bar strip under each panel
SMM_PLANES = 4


def default_scale(width: int, target: int = 384) -> int:
  """Integer upscale that makes the map about `target` pixels wide (4 for 96, 16 for 24)."""
  return max(1, -(-target // int(width)))


def newest_frame(observation: np.ndarray) -> np.ndarray:
  """[..., H, W, k*4] stacked observation -> its newest 4 SMM planes [..., H, W, 4]."""
  return observation[..., -SMM_PLANES:]


def agent_positions(team_frame: np.ndarray) -> np.ndarray:
  """int [N, 2] (row, col) of every agent from its own `active` plane (the newest frame, [N, H, W, 4])."""
  n, h, w, _ = team_frame.shape
  flat = np.argmax(team_frame[..., 3].reshape(n, -1), axis=1)
  return np.stack(np.unravel_index(flat, (h, w)), axis=1)


def smm_to_rgb(frame: np.ndarray, positions: np.ndarray, focus: int, scale: int) -> Image.Image:
  """One agent's SMM frame [H, W, 4] as an RGB picture, `scale` pixels per cell, in Fig. 4.2's colours."""
  h, w = frame.shape[:2]
  rgb = np.zeros((h, w, 3), np.uint8)
  rgb[:] = PITCH
  rgb[frame[..., 1] > 0] = OPPONENT
  rgb[frame[..., 0] > 0] = HOME
  for j, (r, c) in enumerate(positions):
    if j == focus:
      rgb[r, c] = ACTIVE
  rgb[frame[..., 2] > 0] = BALL   # drawn last: the ball sits on its carrier and must stay visible
  return Image.fromarray(rgb).resize((w * scale, h * scale), Image.NEAREST)


def weight_alpha(weight: float) -> int:
  """Opacity of the red border / line for an attention weight in [0, 1]."""
  return int(round(255 * float(np.clip(weight, 0.0, 1.0))))


def border_width(scale: int) -> int:
  return max(2, scale // 2)


def line_width(weight: float, scale: int) -> int:
  return max(1, int(round(float(np.clip(weight, 0, 1)) * max(2, scale))))


def draw_panel(frame: np.ndarray, positions: np.ndarray, weights: np.ndarray, focus: int, scale: int,
               title: str = '', relative: bool = False) -> Image.Image:
  """One (agent, head) panel: the map, red borders and lines with alpha = weight, and a bar strip.

  Args:
    frame: the focus agent's newest SMM planes, uint8 [H, W, 4].
    positions: int [N, 2] (row, col) of every home agent.
    weights: float [N], the focus agent's attention row A^h_i (sums to 1).
    focus: index i of the agent whose attention is drawn.
    scale: pixels per SMM cell.
    title: text in the bar strip.
    relative: opacity = weight / max of the row instead of the weight itself (near-uniform rows of an untrained
      or weakly trained agent are faint otherwise); the bars and numbers always show the raw weights.
  """
  weights = np.asarray(weights, np.float64)
  shown = weights / max(float(weights.max()), 1e-12) if relative else weights
  base = smm_to_rgb(frame, positions, focus, scale).convert('RGBA')
  overlay = Image.new('RGBA', base.size, (0, 0, 0, 0))
  draw = ImageDraw.Draw(overlay)
  b = border_width(scale)
  centre = lambda rc: (rc[1] * scale + scale / 2.0, rc[0] * scale + scale / 2.0)
  # Each agent j gets its own overlay so overlapping marks add up like separate strokes would, rather than the
  # last one replacing the others' alpha.
  for j, (r, c) in enumerate(positions):
    a = weight_alpha(shown[j])
    layer = Image.new('RGBA', base.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    if j != focus:
      d.line([centre(positions[focus]), centre((r, c))], fill=ATTENTION + (a,), width=line_width(shown[j], scale))
    # Border ring just outside the agent's cell: [c*s - b, (c+1)*s + b) x [r*s - b, (r+1)*s + b), width b.
    d.rectangle([c * scale - b, r * scale - b, (c + 1) * scale + b - 1, (r + 1) * scale + b - 1],
                outline=ATTENTION + (a,), width=b)
    overlay = Image.alpha_composite(overlay, layer)
  del draw
  pitch = Image.alpha_composite(base, overlay).convert('RGB')
  panel = Image.new('RGB', (pitch.width, pitch.height + STRIP_H), (0, 0, 0))
  panel.paste(pitch, (0, 0))
  d = ImageDraw.Draw(panel)
  n = len(weights)
  bar_w = max(8, min(40, pitch.width // (2 * max(1, n))))
  x0 = 4
  for j in range(n):
    height = int(round((STRIP_H - 14) * weights[j]))
    colour = ACTIVE if j == focus else HOME
    d.rectangle([x0, pitch.height + STRIP_H - 2 - height, x0 + bar_w - 2, pitch.height + STRIP_H - 2], fill=colour)
    d.text((x0, pitch.height + 1), f'{weights[j]:.2f}', fill=(200, 200, 200))
    x0 += bar_w + 4
  if title:
    d.text((x0 + 8, pitch.height + 12), title, fill=(220, 220, 220))
  return panel


def draw_frame(team_frame: np.ndarray, attention: np.ndarray, scale: int,
               focus_agents: Optional[Sequence[int]] = None, caption: str = '', relative: bool = False) -> Image.Image:
  """A grid for one step: one row per focus agent (Fig. 4.2's rows), one column per head.

  team_frame: uint8 [N, H, W, 4] (newest SMM of every agent); attention: [heads, N, N].
  """
  attention = np.asarray(attention)
  heads, n, _ = attention.shape
  focus_agents = list(range(n)) if focus_agents is None else list(focus_agents)
  positions = agent_positions(team_frame)
  panels = [[draw_panel(team_frame[i], positions, attention[h, i], i, scale, f'agent {i} head {h}', relative)
             for h in range(heads)] for i in focus_agents]
  pw, ph = panels[0][0].size
  gap, top = 4, 14 if caption else 0
  grid = Image.new('RGB', (heads * pw + (heads - 1) * gap, top + len(focus_agents) * (ph + gap) - gap), (60, 60, 60))
  for r, row in enumerate(panels):
    for c, p in enumerate(row):
      grid.paste(p, (c * (pw + gap), top + r * (ph + gap)))
  if caption:
    ImageDraw.Draw(grid).text((4, 1), caption, fill=(255, 255, 255))
  return grid


def record_episode(policy, env_name: Optional[str] = None, steps: int = 100, greedy: bool = False,
                   seed: int = 0, env_kwargs: Optional[Dict] = None) -> Dict[str, np.ndarray]:
  """Plays up to `steps` steps (or to the episode end) with the ACNN `policy` (an `agents.Policy` loaded from
  a checkpoint) and records each step's newest SMM frames, attention weights, positions and actions."""
  if policy.attention(np.zeros((1, 1) + policy.observation_hwc, np.uint8)) is None:
    raise ValueError(f'agent {policy.name} has no attention weights (a CNN, or a SavedModel: load the ACNN '
                     'checkpoint)')
  cfg = policy.config
  env_name = env_name or cfg.env
  kwargs = cfg.home_env_kwargs if cfg.env == env_name else {}
  kwargs.update(env_kwargs or {})
  env = registry.make_env(env_name, seed=seed, num_frames=policy.num_frames, **kwargs)
  rng = np.random.default_rng(seed)
  frames, weights, actions, positions = [], [], [], []
  try:
    ts = env.reset()
    for _ in range(steps):
      obs = ts.observation[None]
      w = policy.attention(obs)[0]
      a = policy.act(obs, greedy, rng)[0]
      newest = newest_frame(ts.observation)
      frames.append(newest)
      weights.append(w)
      actions.append(a)
      positions.append(agent_positions(newest))
      ts = env.step(a)
      if ts.last():
        break
  finally:
    env.close()
  return {'frames': np.stack(frames), 'attention': np.stack(weights).astype(np.float32),
          'actions': np.stack(actions), 'positions': np.stack(positions)}


def save_episode(episode: Dict[str, np.ndarray], outdir: str, scale: Optional[int] = None,
                 focus_agents: Optional[Sequence[int]] = None, gif_ms: int = 150, png: bool = True,
                 relative: bool = False) -> Dict[str, str]:
  """Writes frame_XXXX.png, attention.gif and attention.npz under `outdir`; returns their paths."""
  os.makedirs(outdir, exist_ok=True)
  frames = episode['frames']
  scale = scale or default_scale(frames.shape[-2])
  images: List[Image.Image] = []
  for t in range(len(frames)):
    img = draw_frame(frames[t], episode['attention'][t], scale, focus_agents, caption=f'step {t}', relative=relative)
    images.append(img)
    if png:
      img.save(os.path.join(outdir, f'frame_{t:04d}.png'))
  gif = os.path.join(outdir, 'attention.gif')
  images[0].save(gif, save_all=True, append_images=images[1:], duration=gif_ms, loop=0)
  npz = os.path.join(outdir, 'attention.npz')
  np.savez_compressed(npz, attention=episode['attention'], positions=episode['positions'],
                      actions=episode['actions'], frames=frames)
  return {'gif': gif, 'npz': npz, 'pngs': outdir if png else ''}
