"""Fig. 4.2-style attention pictures: the overlay is drawn from the weights it is given (known weights give known
pixel alphas; different weights give different pictures), and an ACNN checkpoint yields PNGs, a GIF and the npz
of its real attention weights."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from rlcv_tf.marl import agents as agents_lib
from rlcv_tf.marl import attention_viz as viz
from rlcv_tf.marl import config as config_lib
from rlcv_tf.marl import training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
S = 8  # pixels per cell in the synthetic tests


def _team_frame(positions, hw=(18, 24), ball=(0, 0), opponents=((17, 23),)):
  """Synthetic newest-frame SMMs [N, H, W, 4] for home agents at `positions`."""
  n = len(positions)
  f = np.zeros((n,) + hw + (4,), np.uint8)
  for i, (r, c) in enumerate(positions):
    f[:, r, c, 0] = 255
    f[i, r, c, 3] = 255
  for r, c in opponents:
    f[:, r, c, 1] = 255
  f[:, ball[0], ball[1], 2] = 255
  return f


def _blend(alpha):
  a = alpha / 255.0
  return np.array(viz.PITCH) * (1 - a) + np.array(viz.ATTENTION) * a


def _bottom_border_pixel(rc):
  r, c = rc
  b = viz.border_width(S)
  return np.array([(r + 1) * S + b - 1, c * S + S // 2])  # (y, x): last row of the ring under the cell


@pytest.mark.parametrize('n', [2, 4])
def test_uniform_weights_give_the_expected_alphas(n):
  # Agents on one row far apart (the focus at the left end), the rest below: no mark overlaps another.
  positions = [(5, 2), (5, 14)] + [(12, 4 + 6 * k) for k in range(n - 2)]
  frame = _team_frame(positions)
  weights = np.full(n, 1.0 / n)
  panel = np.asarray(viz.draw_panel(frame[0], np.array(positions), weights, 0, S)).astype(float)
  expected = _blend(viz.weight_alpha(1.0 / n))
  assert viz.weight_alpha(1.0 / n) == round(255 / n)
  for j in range(n):
    y, x = _bottom_border_pixel(positions[j])
    np.testing.assert_allclose(panel[y, x], expected, atol=1.5, err_msg=f'border of agent {j}')
  # The middle of the line from agent 0 to agent 1, away from every cell.
  y, x = 5 * S + S // 2, 8 * S + S // 2
  np.testing.assert_allclose(panel[y, x], expected, atol=1.5)
  # Colours of Fig. 4.2: the focus agent green, the other home agents yellow, opponents blue, the ball white.
  assert tuple(panel[5 * S + 1, 2 * S + 1]) == viz.ACTIVE
  assert tuple(panel[5 * S + 1, 14 * S + 1]) == viz.HOME
  assert tuple(panel[17 * S + 1, 23 * S + 1]) == viz.OPPONENT
  assert tuple(panel[1, 1]) == viz.BALL


def test_weights_change_the_picture_and_zero_weight_draws_nothing():
  positions = np.array([(5, 2), (5, 14), (12, 6)])
  frame = _team_frame(positions)
  a = np.asarray(viz.draw_panel(frame[0], positions, np.array([0.1, 0.8, 0.1]), 0, S)).astype(float)
  b = np.asarray(viz.draw_panel(frame[0], positions, np.array([0.1, 0.1, 0.8]), 0, S)).astype(float)
  assert np.abs(a - b).sum() > 0
  y, x = _bottom_border_pixel(positions[1])
  assert a[y, x, 0] > b[y, x, 0], 'more weight on agent 1: a redder border'
  z = np.asarray(viz.draw_panel(frame[0], positions, np.array([1.0, 0.0, 0.0]), 0, S)).astype(float)
  np.testing.assert_allclose(z[y, x], viz.PITCH, atol=0.5)
  # relative=True: the row's largest weight is drawn fully opaque; the bars keep the raw weights.
  rel = np.asarray(viz.draw_panel(frame[0], positions, np.array([0.1, 0.6, 0.3]), 0, S, relative=True))
  np.testing.assert_allclose(rel[y, x], viz.ATTENTION, atol=0.5)
  # A full grid: rows = focus agents, columns = heads.
  att = np.stack([np.eye(3), np.full((3, 3), 1 / 3)])
  grid = viz.draw_frame(frame, att, S, focus_agents=[0, 2])
  pw, ph = viz.draw_panel(frame[0], positions, att[0, 0], 0, S).size
  assert grid.size == (2 * pw + 4, 2 * ph + 4)


def test_positions_come_from_each_agents_active_plane():
  positions = [(3, 4), (10, 20), (0, 0)]
  np.testing.assert_array_equal(viz.agent_positions(_team_frame(positions)), positions)
  assert viz.default_scale(96) == 4 and viz.default_scale(24) == 16


@pytest.fixture(scope='module')
def acnn_run(tmp_path_factory):
  logdir = str(tmp_path_factory.mktemp('att') / 'acnn')
  cfg = config_lib.MarlConfig(env='mini_5v5_small', model='acnn', num_actors=1, batch_size=2, unroll_length=8,
                              total_frames=16, checkpoint_interval_s=1e9, log_interval_s=1e9,
                              stack_channels=((8, 1), (8, 1)), feature_dim=32)
  training.train(cfg, logdir, print_fn=lambda s: None)
  return logdir


def test_episode_from_a_checkpoint_uses_the_networks_weights(acnn_run, tmp_path):
  policy = agents_lib.load_agent(acnn_run, prefer='checkpoint')
  ep = viz.record_episode(policy, steps=4, seed=0)
  assert ep['attention'].shape == (4, 2, 5, 5) and ep['frames'].shape == (4, 5, 18, 24, 4)
  np.testing.assert_allclose(ep['attention'].sum(-1), 1.0, atol=1e-5)
  # The recorded weights are the model's own for the recorded observation (the newest frame is its last 4
  # planes; re-run the restored Keras model on a rebuilt stack of the first step, where all 4 frames are equal).
  first = np.concatenate([ep['frames'][0]] * 4, axis=-1)[None]
  out = policy.model(first, training=False)
  np.testing.assert_allclose(ep['attention'][0], out['attention'].numpy()[0], atol=1e-5)
  paths = viz.save_episode(ep, str(tmp_path / 'viz'), scale=4)
  pngs = sorted(p for p in os.listdir(tmp_path / 'viz') if p.endswith('.png'))
  assert pngs == [f'frame_{t:04d}.png' for t in range(4)]
  gif = Image.open(paths['gif'])
  assert gif.n_frames == 4
  saved = np.load(paths['npz'])
  np.testing.assert_array_equal(saved['attention'], ep['attention'])
  # The picture depends on the weights: redraw step 0 with the other head's weights in both columns.
  img = np.asarray(viz.draw_frame(ep['frames'][0], ep['attention'][0], 4))
  swapped = np.asarray(viz.draw_frame(ep['frames'][0], ep['attention'][0][::-1], 4))
  if not np.allclose(ep['attention'][0][0], ep['attention'][0][1], atol=1e-3):
    assert np.abs(img.astype(int) - swapped).sum() > 0


def test_attention_launcher(acnn_run, tmp_path):
  out = tmp_path / 'pics'
  proc = subprocess.run([sys.executable, '-m', 'launchers.marl_attention', f'--agent={acnn_run}', '--steps=3',
                         '--focus=0,1', f'--outdir={out}', '--png=false'], cwd=ROOT, capture_output=True, text=True,
                        timeout=240)
  assert proc.returncode == 0, proc.stderr
  assert (out / 'attention.gif').exists() and (out / 'attention.npz').exists()
  assert not list(out.glob('*.png'))
  bad = subprocess.run([sys.executable, '-m', 'launchers.marl_attention', f'--agent={acnn_run}', '--focus=9',
                        '--steps=1', f'--outdir={out}'], cwd=ROOT, capture_output=True, text=True, timeout=240)
  assert bad.returncode == 2 and '--focus=9' in bad.stderr and 'Traceback' not in bad.stderr
