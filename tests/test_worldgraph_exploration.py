"""Phase 1 (Alg. 6, worldgraph/exploration.py) on the tiny maze: what one iteration does, determinism (spec Sec.
9.17), a checkpoint that resumes to the same numbers, waypoint refresh, pi_g rollouts against the maze engine, and the
world graph built from the result."""

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.envs import maze_layouts
from rlcv_tf.worldgraph import config as config_lib
from rlcv_tf.worldgraph import exploration
from rlcv_tf.worldgraph import graph as graph_lib


def _cfg(**kw):
  fields = dict(maze='tiny', num_envs=4, iterations=4, horizon=8, mu0=2.0, waypoint_every=2, state_embedding=4,
                state_hidden=8, lstm_units=8, filters=(4, 4, 4, 4), dense=16, policy_lstm=16, policy_fc=8,
                edge_walks=8, edge_walk_length=12, edge_policy_tries=1)
  fields.update(kw)
  return config_lib.WorldGraphConfig.for_profile('cpu', **fields)


def _run(explorer, n):
  return [explorer.iteration() for _ in range(n)]


def test_an_iteration_trains_everything_and_records_what_it_saw():
  explorer = exploration.Explorer(_cfg())
  np.testing.assert_array_equal(explorer.waypoints, [maze_layouts.START])
  before = [v.numpy().copy() for v in explorer.pi_g.trainable_variables[:2] + explorer.vae.trainable_variables[:2]]
  logs = explorer.iteration()
  after = [v.numpy() for v in explorer.pi_g.trainable_variables[:2] + explorer.vae.trainable_variables[:2]]
  assert all(np.any(a != b) for a, b in zip(after, before))
  for key in ('vae/nll', 'vae/recon_accuracy', 'vae/kl', 'vae/expected_l0', 'vae/expected_switches',
              'vae/lambda_kl', 'vae/lambda_l0', 'vae/lambda_lt', 'pi_g/success', 'explore/visited'):
    assert np.isfinite(logs[key]), key
  visited = explorer.visited
  assert visited[maze_layouts.START] and visited.sum() > 1 and not (visited & explorer.walls).any()
  assert explorer.iteration_count == 1
  # Every second iteration V_p becomes the top 20% of the visited cells by prior mean.
  explorer.iteration()
  vp = explorer.waypoints
  k = round(0.2 * explorer.num_free)
  assert len(vp) == min(k, int(explorer.visited.sum()))
  assert all(explorer.visited[r, c] for r, c in vp)
  prior = explorer.prior_means()
  chosen = prior[vp[:, 0], vp[:, 1]]
  others = prior[explorer.visited & ~np.isin(np.arange(prior.size).reshape(prior.shape),
                                             vp[:, 0] * prior.shape[1] + vp[:, 1])]
  assert chosen.min() >= others.max() - 1e-6


def test_pi_g_rollouts_follow_the_maze_and_stop_at_the_goal():
  explorer = exploration.Explorer(_cfg())
  free = np.argwhere(~explorer.walls)
  rng = np.random.default_rng(0)
  starts = free[rng.integers(len(free), size=4)]
  goals = free[rng.integers(len(free), size=4)]
  goals[np.all(goals == starts, axis=1)] = free[0] if not np.all(free[0] == starts[0]) else free[1]
  rollouts = explorer.rollout_policy(starts, goals)
  for i in range(4):
    n = rollouts.lengths[i]
    cells = graph_lib.simulate(explorer.walls, tuple(starts[i]), list(rollouts.actions[:n, i]))
    np.testing.assert_array_equal(rollouts.cells[i, :n + 1], cells)        # the engine's moves, step by step
    if rollouts.reached[:, i].any():
      assert tuple(cells[-1]) == tuple(goals[i]) and rollouts.reached[n - 1, i]
      assert tuple(goals[i]) not in map(tuple, cells[:-1])
      assert rollouts.bootstrap_value[i] == 0.0
    else:
      assert n == explorer.cfg.horizon
    assert not rollouts.live[n:, i].any() and rollouts.live[:n, i].all()


def test_same_seed_same_numbers_and_a_resume_continues_identically(tmp_path):
  a = exploration.Explorer(_cfg(seed=3))
  b = exploration.Explorer(_cfg(seed=3))
  logs_a, logs_b = _run(a, 2), _run(b, 2)
  for la, lb in zip(logs_a, logs_b):
    for key in la:
      assert la[key] == pytest.approx(lb[key], rel=1e-5, abs=1e-6), key
  ckpt = tf.train.Checkpoint(**a.checkpoint_objects())
  path = ckpt.save(str(tmp_path / 'ckpt'))
  continued = _run(a, 1)[0]
  c = exploration.Explorer(_cfg(seed=3))
  tf.train.Checkpoint(**c.checkpoint_objects()).restore(path).assert_existing_objects_matched()
  assert c.iteration_count == 2
  np.testing.assert_array_equal(c.waypoints, b.waypoints)
  resumed = _run(c, 1)[0]
  # The same draws and data; float sums may differ in the last digits (a fresh process traces the tf.functions with
  # static shapes, a long one with relaxed shapes, which picks other kernels), so 1e-3 here.
  for key in continued:
    assert resumed[key] == pytest.approx(continued[key], rel=1e-3, abs=1e-5), key
  assert resumed['explore/visited'] == continued['explore/visited']
  other = exploration.Explorer(_cfg(seed=4))
  assert _run(other, 1)[0]['explore/visited'] != logs_a[0]['explore/visited'] or \
      _run(other, 1)[0]['vae/nll'] != logs_a[1]['vae/nll']


def test_random_waypoints_skip_the_vae_and_the_graph_is_built_from_v_p():
  walls = maze_layouts.get_layout('tiny').walls
  fixed = graph_lib.random_waypoints(walls, 4, rng=0)
  explorer = exploration.Explorer(_cfg(), fixed_waypoints=fixed)
  vae_before = [v.numpy().copy() for v in explorer.vae.trainable_variables]
  logs = explorer.iteration()
  explorer.iteration()
  assert 'vae/nll' not in logs
  assert all(np.all(v.numpy() == b) for v, b in zip(explorer.vae.trainable_variables, vae_before))
  np.testing.assert_array_equal(explorer.waypoints, fixed)
  graph = explorer.build_graph()
  assert graph.num_nodes == 4
  np.testing.assert_array_equal(np.array(graph.nodes), fixed)
  for (i, j), edge in graph.edges.items():
    cells = graph_lib.simulate(walls, tuple(fixed[i]), list(edge.actions))
    assert tuple(cells[-1]) == tuple(fixed[j])
