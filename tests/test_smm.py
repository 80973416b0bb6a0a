"""The SMM rasteriser and checkpoint reward against gfootball's definitions."""

import numpy as np
import pytest

from rlcv_tf.envs import smm


def test_position_to_rc_corners_and_centre():
  hw = (72, 96)
  np.testing.assert_array_equal(smm.position_to_rc([0.0, 0.0], hw), [36, 48])
  np.testing.assert_array_equal(smm.position_to_rc([-1.0, -1 / 2.25], hw), [0, 0])
  np.testing.assert_array_equal(smm.position_to_rc([1.0, 1 / 2.25], hw), [71, 95])  # clipped
  np.testing.assert_array_equal(smm.position_to_rc([[5.0, -5.0]], (18, 24)), [[0, 23]])


def test_position_to_rc_matches_gfootball_when_installed():
  pre = pytest.importorskip('gfootball.env.observation_preprocessing')
  rng = np.random.default_rng(0)
  for _ in range(50):
    x, y = rng.uniform(-1, 1), rng.uniform(-0.44, 0.44)
    frame = np.zeros((72, 96), np.uint8)
    pre.mark_points(frame, np.array([x, y]))
    r, c = np.argwhere(frame == 255)[0]
    np.testing.assert_array_equal(smm.position_to_rc([x, y], (72, 96)), [r, c])


def test_render_planes():
  raw = {'left_team': np.array([[-1.0, 0.0], [0.5, 0.1]]), 'right_team': np.array([[0.9, -0.2]]),
         'ball': np.array([0.0, 0.0, 0.1])}
  obs = smm.render_smm(raw, (72, 96), active_indices=[1, 0])
  assert obs.shape == (2, 72, 96, 4) and obs.dtype == np.uint8
  assert set(np.unique(obs)) == {0, 255}
  assert (obs[..., 0] == 255).sum() == 4 and (obs[..., 1] == 255).sum() == 2
  assert obs[0, 36, 48, 2] == 255
  r, c = smm.position_to_rc([0.5, 0.1], (72, 96))
  assert obs[0, r, c, 3] == 255 and obs[0, ..., 3].sum() == 255
  r, c = smm.position_to_rc([-1.0, 0.0], (72, 96))
  assert obs[1, r, c, 3] == 255


def test_action_names_are_gfootballs_default_set():
  assert len(smm.GRF_ACTION_NAMES) == 19
  assert smm.GRF_ACTION_NAMES[0] == 'idle' and smm.GRF_ACTION_NAMES[12] == 'shot'
  assert smm.GRF_ACTION_NAMES[18] == 'release_dribble'


def test_checkpoints_pay_the_owner_once_and_settle_on_a_goal():
  cp = smm.CheckpointReward(num_agents=2)
  # Owner at distance 0.5 from the goal: thresholds 0.99 - 0.8/9*k >= 0.5 for k = 0..5.
  r = cp(0, np.array([0.5, 0.0]), scored=False)
  np.testing.assert_allclose(r, [0.6, 0.0], atol=1e-6)
  np.testing.assert_allclose(cp(0, np.array([0.5, 0.0]), scored=False), [0.0, 0.0])  # at most once
  np.testing.assert_allclose(cp(None, None, scored=False), [0.0, 0.0])               # nobody controlled owns it
  r = cp(1, np.array([0.0, 0.0]), scored=False)  # distance 1.0 > 0.99: nothing yet
  np.testing.assert_allclose(r, [0.0, 0.0])
  np.testing.assert_allclose(cp(None, None, scored=True), [0.4, 1.0], atol=1e-6)    # the rest on a goal
  cp.reset()
  np.testing.assert_allclose(cp(1, np.array([0.95, 0.0]), scored=False), [0.0, 1.0], atol=1e-6)
