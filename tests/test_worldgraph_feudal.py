"""Phase 2 of Chapter 3 (worldgraph/feudal.py, worldgraph/traversal.py; spec ch3 Sec. 4.9-4.11, Sec. 9 tests 13-15
and 17, A11-A12) on the tiny 7x7 maze with tiny networks:

  traversal: the trigger rules, replay against the maze engine and SciPy's shortest paths, the position check that
    aborts on Door-Key's divider, pi_g mode's step limit;
  the rollout state machine with scripted Manager/Worker: Worker rewards (first arrival at g^w only, g^n ends the
    horizon, k >= c ends it), a traversal as one macro transition credited R_w with no Worker step cost while every
    env step goes to the Manager, Alg. 7's return over the traversal steps, an abort asking for a new pair,
    truncation bootstraps;
  the trainer: one iteration of a2c / fn / wn (with and without traversal, pi_g-init) updates the weights, WN goals
    lie in the window on free cells, same seed same numbers, a checkpoint resumes identically; evaluation.

    tiny maze           hand graph (nodes 0..4, edges 0<->1, 1<->2, 0->4; node 3 isolated)
    #######             0 = (1, 2), 1 = (1, 5), 2 = (3, 5), 3 = (5, 1), 4 = (3, 3)
    #.....#
    #.#.#.#
    #.#...#
    #.###.#
    #.....#
    #######
"""

import numpy as np
import pytest
import tensorflow as tf
from scipy.sparse import csgraph

from rlcv_tf.envs import maze as maze_lib
from rlcv_tf.envs import maze_layouts
from rlcv_tf.worldgraph import config as config_lib
from rlcv_tf.worldgraph import feudal
from rlcv_tf.worldgraph import graph as graph_lib
from rlcv_tf.worldgraph import networks
from rlcv_tf.worldgraph import traversal as traversal_lib

UP, DOWN, LEFT, RIGHT = range(4)
WALLS = maze_layouts.get_layout('tiny').walls
TINY = dict(filters=(4, 4, 4, 4), dense=16, lstm=16, fc=8, narrow_hidden=8, waypoint_embedding=4)
HAND_NODES = [(1, 2), (1, 5), (3, 5), (5, 1), (3, 3)]


def _edge(src, dst, actions):
  cells = graph_lib.simulate(WALLS, HAND_NODES[src], actions)
  return graph_lib.Edge(src, dst, actions, cells, len(actions))


def hand_graph():
  edges = [_edge(0, 1, [RIGHT] * 3), _edge(1, 0, [LEFT] * 3), _edge(1, 2, [DOWN] * 2), _edge(2, 1, [UP] * 2),
           _edge(0, 4, [RIGHT, DOWN, DOWN])]
  return graph_lib.WorldGraph(WALLS, HAND_NODES, edges, maze_name='tiny')


@pytest.fixture(scope='module')
def walk_graph():
  """Edges by random walks on five waypoints (graph.form_edges)."""
  return graph_lib.form_edges(WALLS, [(1, 1), (1, 5), (5, 5), (5, 1), (3, 3)], walks_per_node=32, walk_length=30,
                              rng=0, maze_name='tiny')


def _cfg(**kw):
  fields = dict(maze='tiny', num_envs=4, worker_steps=12, horizon=5, **TINY)
  fields.update(kw)
  return config_lib.FeudalConfig.for_profile('cpu', **fields)


def _pi_g(cfg, seed=11):
  tf.keras.utils.set_random_seed(seed)
  return networks.GoalPolicy(WALLS.shape, 4, cfg.network_sizes).build_network()


# ----------------------------------------------------------------------------------------------------- traversal

def test_trigger_needs_a_waypoint_an_unreached_wide_goal_and_a_path():
  trav = traversal_lib.Traversals(hand_graph(), 6)
  cells = np.array([(1, 2), (1, 3), (1, 2), (1, 2), (1, 5), (1, 2)])
  wide = np.array([2, 2, 2, 3, 1, 2])            # g^w node indices
  reached = np.array([False, False, True, False, False, False])
  eligible = np.array([True, True, True, True, True, False])
  got = trav.trigger(cells, wide, reached, eligible)
  # env 0: waypoint 0 -> node 2 (route 0-1-2): yes; 1: (1, 3) is no waypoint; 2: g^w already reached; 3: node 3 has
  # no edges (no path); 4: standing on g^w is an arrival, not a traversal; 5: not a Worker step (not eligible).
  np.testing.assert_array_equal(got, [True, False, False, False, False, False])
  one = traversal_lib.Traversals(hand_graph(), 1)
  assert one.trigger([(1, 5)], [0], [False])[0]                              # 1 -> 0 is an edge
  assert not one.trigger([(3, 3)], [0], [False])[0]                          # node 4 has no way out
  assert not one.trigger([(1, 2)], [-1], [False])[0]                         # no wide goal
  trav.start(got, cells, wide)
  np.testing.assert_array_equal(trav.active, got)
  assert not trav.trigger(cells, wide, reached)[0]                           # already traversing
  with pytest.raises(ValueError, match='not a waypoint with a path'):
    trav.start([False, True, False, False, False, False], cells, wide)


def test_replay_walks_the_stored_cells_of_a_shortest_route(walk_graph):
  g = walk_graph
  weights = np.where(np.isfinite(g.weights), g.weights, 0.0)
  dist = csgraph.shortest_path(weights, method='D', directed=True)
  pairs = [(i, j) for i in range(g.num_nodes) for j in range(g.num_nodes) if i != j and g.has_path(i, j)]
  assert len(pairs) >= 10
  env = maze_lib.BatchMaze(len(pairs), 'tiny', 'multigoal', seeds=5)
  env.set_agent(np.arange(len(pairs)), [g.nodes[i] for i, _ in pairs])
  trav = traversal_lib.Traversals(g, len(pairs))
  starts = np.array([g.nodes[i] for i, _ in pairs])
  wide = np.array([j for _, j in pairs])
  assert trav.trigger(starts, wide, np.zeros(len(pairs), bool)).all()
  trav.start(np.ones(len(pairs), bool), starts, wide)
  expected = [list(trav.planned_cells(k)) for k in range(len(pairs))]
  visited = [[] for _ in pairs]
  arrived_at = np.full(len(pairs), -1)
  obs = env.observe()
  for t in range(40):
    going = trav.active
    if not going.any():
      break
    obs, _, term, trunc, info = env.step(trav.actions(obs))
    cells = feudal.agent_cells(info['final_obs'])
    for k in np.nonzero(going)[0]:
      visited[k].append(tuple(cells[k]))
    arrived, aborted = trav.advance(cells, term | trunc)
    assert not aborted.any()
    arrived_at[arrived] = t + 1
  for k, (i, j) in enumerate(pairs):
    if arrived_at[k] < 0:                        # the episode ended under way (the exit is on the route)
      assert visited[k][-1] == maze_layouts.get_layout('tiny').exit
      continue
    assert visited[k] == expected[k]
    assert visited[k][-1] == g.nodes[j]
    assert arrived_at[k] == dist[i, j] == g.distances[i, j]
    # The moves are the engine's: each visited cell is one move from the last.
    path = [g.nodes[i]] + visited[k]
    assert all(abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1 for a, b in zip(path[:-1], path[1:]))


def test_replay_aborts_where_the_door_key_divider_blocks_an_edge():
  g = hand_graph()                                # made on the base maze: 0 -> 1 crosses column 4 on row 1
  env = maze_lib.BatchMaze(3, 'tiny', 'doorkey', seeds=[0, 1, 2])
  assert env.door_columns == (4,)
  env.set_agent(np.arange(3), [(1, 2)] * 3)
  trav = traversal_lib.Traversals(g, 3)
  trav.start(np.ones(3, bool), np.array([(1, 2)] * 3), np.array([1, 1, 1]))
  obs = env.observe()
  steps = []
  for _ in range(2):
    obs, _, term, trunc, info = env.step(trav.actions(obs))
    cells = feudal.agent_cells(info['final_obs'])
    steps.append((cells, trav.advance(cells, term | trunc)))
  (cells1, (arr1, ab1)), (cells2, (arr2, ab2)) = steps
  np.testing.assert_array_equal(cells1, [(1, 3)] * 3)
  assert not ab1.any() and not arr1.any()
  np.testing.assert_array_equal(cells2, [(1, 3)] * 3)          # (1, 4) is the divider or the locked door
  assert ab2.all() and not arr2.any() and not trav.active.any()
  # On the base maze (multigoal) the same replay arrives.
  env = maze_lib.BatchMaze(1, 'tiny', 'multigoal', seeds=0)
  env.set_agent([0], [(1, 2)])
  trav = traversal_lib.Traversals(g, 1)
  trav.start([True], [(1, 2)], [1])
  for _ in range(3):
    _, _, term, trunc, info = env.step(trav.actions(env.observe()))
    arrived, aborted = trav.advance(feudal.agent_cells(info['final_obs']), term | trunc)
  assert arrived[0] and not aborted[0] and tuple(env.agent[0]) == (1, 5)


def test_policy_mode_aims_at_each_waypoint_and_aborts_after_the_step_limit():
  g = hand_graph()
  pi_g = _pi_g(_cfg())
  calls = []

  def scripted(moves):
    moves = list(moves)

    def act_fn(obs, goal_cells, h, c, reset, seed):
      calls.append((tuple(goal_cells.numpy()[0]), bool(reset.numpy()[0])))
      return tf.constant([moves.pop(0) if len(moves) > 1 else moves[0]], tf.int32), h, c
    return act_fn

  # A pi_g that goes right then down reaches node 1 (a new target: its LSTM is reset) and then node 2 = g^w.
  env = maze_lib.BatchMaze(1, 'tiny', 'multigoal', seeds=0)
  env.set_agent([0], [(1, 2)])
  trav = traversal_lib.Traversals(g, 1, mode='policy', pi_g=pi_g, act_fn=scripted([RIGHT] * 3 + [DOWN] * 2))
  trav.start([True], [(1, 2)], [2])
  for t in range(5):
    _, _, term, trunc, info = env.step(trav.actions(env.observe(), seed=tf.constant([0, t])))
    arrived, aborted = trav.advance(feudal.agent_cells(info['final_obs']), term | trunc)
  assert arrived[0] and not aborted[0] and not trav.active[0]
  assert calls == [((1, 5), True), ((1, 5), False), ((1, 5), False), ((3, 5), True), ((3, 5), False)]
  # A pi_g that bumps into the wall forever gives up after 2 w + 5 steps on the first edge (w = 3).
  trav = traversal_lib.Traversals(g, 1, mode='policy', pi_g=pi_g, act_fn=scripted([UP]))
  env.set_agent([0], [(1, 2)])
  trav.start([True], [(1, 2)], [2])
  limit = traversal_lib.edge_limit(3)
  assert limit == 11
  for t in range(limit):
    _, _, term, trunc, info = env.step(trav.actions(env.observe(), seed=tf.constant([1, t])))
    arrived, aborted = trav.advance(feudal.agent_cells(info['final_obs']), term | trunc)
    assert aborted[0] == (t == limit - 1) and not arrived[0]
  with pytest.raises(ValueError, match='needs pi_g'):
    traversal_lib.Traversals(g, 1, mode='policy')


# ----------------------------------------------------------------------------------------------- scripted rollouts

class Script:
  """Scripted Manager decisions and Worker actions for one env (B = 1), patched onto a Policies instance."""

  def __init__(self, policies, decisions, actions):
    self.p, self.decisions, self.actions = policies, list(decisions), list(actions)
    self.made = 0
    policies.manager_act = self.manager_act
    policies.worker_act = self.worker_act

  def manager_act(self, obs, state, reset, commit, seed):
    wide, narrow_cell = self.decisions.pop(0)
    wide_cell = np.array(self.p.graph.nodes[wide])
    d = np.asarray(narrow_cell) - wide_cell
    r = (self.p.cfg.window - 1) // 2
    narrow = (d[0] + r) * self.p.cfg.window + d[1] + r
    self.made += 1
    return np.array([wide]), np.array([narrow]), wide_cell[None], np.array([narrow_cell]), state

  def worker_act(self, obs, wide_cells, narrow_cells, state, reset, commit, seed):
    return np.array([self.actions.pop(0)]), state


def _scripted_runner(task, decisions, actions, graph=None, max_steps=None, **cfg_kw):
  cfg = _cfg(num_envs=1, **dict(dict(pig_init=False), **cfg_kw))
  graph = graph or hand_graph()
  layout = maze_layouts.get_layout('tiny')
  env = maze_lib.BatchMaze(1, layout, task, seeds=[3], max_steps=max_steps)
  policies = feudal.Policies(cfg, layout, env.num_actions, graph, None)
  script = Script(policies, decisions, actions)
  runner = feudal.Runner(policies, env, lambda step, stream: tf.constant([step, stream]))
  return runner, script, env


def _expected_env_rewards(obs_before, cells_after, penalty=-0.01):
  """The multigoal reward from the observations alone: the step penalty plus 1 for a ball on the cell moved to."""
  return [penalty + float(o[0, r, c, maze_lib.BALL_PLANE]) for o, (r, c) in zip(obs_before, cells_after)]


def test_worker_rewards_first_wide_arrival_narrow_goal_and_horizon():
  # Pair 1: g^w = node 1 (1, 5), g^n = (2, 5). Right x4 reaches g^w (+1), left and right again (no second bonus),
  # down reaches g^n (+1, the horizon ends). Pair 2: g^w = node 3, g^n = (5, 1); 8 bumps into the wall use up
  # c = 8 (the horizon ends, no bonus). Then a third pair is asked for.
  actions = [RIGHT] * 4 + [LEFT, RIGHT, DOWN] + [LEFT] * 8 + [LEFT]
  runner, script, _ = _scripted_runner('multigoal', [(1, (2, 5)), (3, (5, 1)), (0, (1, 1))], actions,
                                       horizon=8, traversal=False)
  rec = feudal.Recorder(1)
  for _ in range(15):
    runner.step(rec)
  assert script.made == 2
  runner.step(rec)
  assert script.made == 3
  tr = rec.worker[0][:15]
  want = [-0.01] * 3 + [0.99, -0.01, -0.01, 0.99] + [-0.01] * 8
  np.testing.assert_allclose([x.reward for x in tr], want, atol=1e-6)
  np.testing.assert_array_equal([x.done for x in tr], [False] * 6 + [True] + [False] * 7 + [True])
  np.testing.assert_array_equal([x.reset for x in tr], [True] + [False] * 6 + [True] + [False] * 7)
  assert all(x.counted and x.wide == ((1, 5) if t < 7 else (5, 1)) for t, x in enumerate(tr))
  assert rec.counts['wide_reached'] == 1 and rec.counts['narrow_reached'] == 1 and rec.counts['timeouts'] == 1
  # The Manager's stream holds the env reward of every step (balls included), decisions at steps 0, 7 and 15.
  cells = [tuple(feudal.agent_cells(o)[0]) for o in rec.obs[1:]] + [tuple(runner.env.agent[0])]
  np.testing.assert_allclose(np.concatenate(rec.rewards), _expected_env_rewards(rec.obs, cells), atol=1e-6)
  np.testing.assert_array_equal(np.nonzero(np.concatenate(rec.decisions))[0], [0, 7, 15])


def test_a_traversal_is_one_worker_transition_and_every_step_reaches_the_manager():
  # g^w = node 2 (3, 5), g^n = (3, 4). The Worker's step right lands on waypoint 0 = (1, 2): a traversal replays
  # 0 -> 1 -> 2 (5 env steps) and arrives (+R_w on the triggering transition); the Worker's step left reaches g^n.
  runner, script, env = _scripted_runner('multigoal', [(2, (3, 4)), (0, (1, 1))], [RIGHT, LEFT, UP])
  rec = feudal.Recorder(1)
  positions = []
  for _ in range(7):
    runner.step(rec)
    positions.append(tuple(env.agent[0]))
  assert positions == [(1, 2), (1, 3), (1, 4), (1, 5), (2, 5), (3, 5), (3, 4)]
  np.testing.assert_array_equal(np.concatenate(rec.traversing), [False] + [True] * 5 + [False])
  tr = rec.worker[0]
  assert len(tr) == 2 and rec.made[0] == 2 and runner.k[0] == 2      # traversal steps do not count toward c
  np.testing.assert_allclose([x.reward for x in tr], [-0.01 + 1.0, -0.01 + 1.0], atol=1e-6)
  assert [x.done for x in tr] == [False, True] and tr[0].traversal == 5 and tr[1].traversal == 0
  assert rec.counts['traversals'] == 1 and rec.counts['arrived'] == 1 and rec.counts['traversal_steps'] == 5
  env_rewards = np.concatenate(rec.rewards)
  np.testing.assert_allclose(env_rewards, _expected_env_rewards(rec.obs, positions), atol=1e-6)
  # Alg. 7's return at the decision covers all 7 env steps, traversal included (a plain loop vs manager_loss).
  gamma, boot = 0.95, 0.3
  want = boot
  for r in env_rewards[::-1]:
    want = r + gamma * want
  rewards, done = feudal.manager_targets(np.stack(rec.rewards), np.stack(rec.terminated), np.stack(rec.truncated),
                                         np.stack(rec.truncation_values), gamma)
  zeros = tf.zeros_like(rewards)
  _, logs = feudal.manager_loss(rewards, done, np.stack(rec.decisions), zeros, zeros, zeros, tf.constant([boot]),
                                gamma=gamma, value_weight=0.5, entropy_weight=0.01)
  assert float(logs['manager/return_mean']) == pytest.approx(want, abs=1e-5)
  assert float(logs['manager/decisions_per_env']) == 1.0


def test_an_abort_ends_the_horizon_and_asks_for_a_new_pair():
  runner, script, env = _scripted_runner('doorkey', [(1, (2, 5)), (0, (1, 1))], [RIGHT, LEFT, LEFT])
  rec = feudal.Recorder(1)
  for _ in range(3):
    runner.step(rec)
  # Worker: right onto waypoint 0; traversal: right to (1, 3), right into the divider/door: abort.
  assert tuple(env.agent[0]) == (1, 3) and rec.counts['aborted'] == 1 and script.made == 1
  tr = rec.worker[0]
  assert len(tr) == 1 and tr[0].done and tr[0].reward == pytest.approx(-0.01)
  np.testing.assert_allclose(np.concatenate(rec.rewards), [-0.01] * 3, atol=1e-6)
  runner.step(rec)
  assert script.made == 2 and rec.worker[0][1].reset


def test_truncation_bootstraps_worker_and_manager():
  # Episodes of 3 steps: the Worker bumps (left at (1, 1)); the time limit cuts the first pair's horizon.
  runner, script, env = _scripted_runner('multigoal', [(0, (1, 3)), (0, (1, 3))], [LEFT] * 4, max_steps=3,
                                         traversal=False)
  runner.p.manager_value = lambda obs, state: np.array([0.7], np.float32)
  rec = feudal.Recorder(1)
  for _ in range(4):
    runner.step(rec)
  tr = rec.worker[0]
  assert [x.counted for x in tr] == [True, True, True, False, True]
  assert [x.done for x in tr] == [False] * 5
  assert tr[3].obs[1, 1, maze_lib.AGENT_PLANE] == 1 and tr[4].reset     # the last observation, then a new pair
  np.testing.assert_array_equal(np.concatenate(rec.truncated), [False, False, True, False])
  rewards, done = feudal.manager_targets(np.stack(rec.rewards), np.stack(rec.terminated), np.stack(rec.truncated),
                                         np.stack(rec.truncation_values), 0.9)
  np.testing.assert_allclose(rewards[:, 0], [-0.01, -0.01, -0.01 + 0.9 * 0.7, -0.01], atol=1e-6)
  np.testing.assert_array_equal(done[:, 0], [False, False, True, False])
  np.testing.assert_array_equal(np.concatenate(rec.manager_reset), [True, False, False, True])
  # A termination stays a plain terminal step.
  rewards, done = feudal.manager_targets([[1.0]], [[True]], [[False]], [[5.0]], 0.9)
  assert rewards[0, 0] == 1.0 and done[0, 0]


# ----------------------------------------------------------------------------------------------------- the trainer

def _changed(before, net):
  return [not np.array_equal(b, v.numpy()) for b, v in zip(before, net.trainable_variables)]


@pytest.mark.parametrize('model,kw', [('a2c', {}), ('fn', {}), ('wn', dict(traversal=False, pig_init=False)),
                                      ('wn', dict(traversal=True, pig_init=True))],
                         ids=['a2c', 'fn', 'wn', 'wn_traversal_pig_init'])
def test_one_iteration_of_each_model_updates_its_networks(model, kw, walk_graph):
  cfg = _cfg(model=model, **kw)
  pi_g = _pi_g(cfg)
  trainer = feudal.HRLTrainer(cfg, graph=walk_graph if model == 'wn' else None, pi_g=pi_g if cfg.pig_init else None)
  if cfg.pig_init:                  # the state encoders are pi_g's, bitwise; the rest is not
    for net in (trainer.worker, trainer.manager):
      for key, layer in pi_g.encoder.state_encoder_layers().items():
        other = net.encoder.state_encoder_layers()[key]
        assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(layer.weights, other.weights)), key
      assert not np.array_equal(net.lstm.weights[0].numpy(), pi_g.lstm.weights[0].numpy())
    np.testing.assert_array_equal(trainer.worker.encoder.conv_e.kernel.numpy()[:, :, 1],
                                  pi_g.encoder.conv_e.kernel.numpy()[:, :, 0])
  nets = [trainer.worker] + ([trainer.manager] if trainer.manager is not None else [])
  before = [[v.numpy().copy() for v in net.trainable_variables] for net in nets]
  logs = trainer.iteration()
  assert trainer.iteration_count == 1
  for net, b in zip(nets, before):
    assert sum(_changed(b, net)) >= len(b) - 2, net.name   # (the narrow head sees no gradient without decisions)
  assert all(np.isfinite(v) for v in logs.values())
  rec = trainer.last_rollout
  assert (rec.made >= cfg.worker_steps).all() and not trainer.runner.traversing.any()
  if model == 'a2c':
    assert rec.env_steps == cfg.worker_steps and logs['a2c/loss/total'] != 0
    return
  assert logs['manager/decisions_per_env'] >= 1 and 'worker/loss/total' in logs
  if cfg.traversal:
    assert logs['traversal/started'] > 0 and rec.env_steps > cfg.worker_steps
    assert rec.counts['traversal_steps'] == logs['traversal/env_steps']
  else:
    assert rec.counts['traversals'] == 0
  r = (cfg.window - 1) // 2
  nodes = set(walk_graph.nodes)
  for _, wide, narrow, walls in rec.decision_cells:
    assert not walls[narrow]                                   # g^n on a free cell
    if model == 'wn':                                          # g^w in V_p, g^n in the N x N window round it
      assert wide in nodes and max(abs(wide[0] - narrow[0]), abs(wide[1] - narrow[1])) <= r
    else:
      assert wide == narrow


def _run(trainer, n):
  return [trainer.iteration() for _ in range(n)]


def test_same_seed_same_numbers_and_a_checkpoint_resumes_identically(tmp_path, walk_graph):
  cfg = dict(task='multigoal_stochastic', seed=3, traversal=True, pig_init=True)     # pi_g traversal under lava
  a = feudal.HRLTrainer(_cfg(**cfg), walk_graph, _pi_g(_cfg()))
  assert a.policies.traversal_mode == 'policy'
  b = feudal.HRLTrainer(_cfg(**cfg), walk_graph, _pi_g(_cfg()))
  logs_a, logs_b = _run(a, 2), _run(b, 2)
  assert logs_a == logs_b
  path = tf.train.Checkpoint(**a.checkpoint_objects()).save(str(tmp_path / 'ckpt'))
  continued = _run(a, 1)[0]
  c = feudal.HRLTrainer(_cfg(**cfg), walk_graph, _pi_g(_cfg()))
  tf.train.Checkpoint(**c.checkpoint_objects()).restore(path).assert_existing_objects_matched()
  assert c.iteration_count == 2
  resumed = _run(c, 1)[0]
  assert resumed == continued
  np.testing.assert_array_equal(c.env.agent, a.env.agent)
  other = feudal.HRLTrainer(_cfg(**dict(cfg, seed=4)), walk_graph, _pi_g(_cfg()))
  assert _run(other, 1)[0] != logs_a[0]


def test_evaluate_plays_whole_episodes_per_seed(walk_graph):
  cfg = _cfg(traversal=True, pig_init=False)
  trainer = feudal.HRLTrainer(cfg, walk_graph)
  first = feudal.evaluate(trainer, [1000, 1001, 1002], episodes=2)
  again = feudal.evaluate(trainer.policies, [1000, 1001, 1002], episodes=2)
  for key in ('returns', 'lengths', 'balls', 'successes'):
    assert first[key].shape == (3, 2)
    np.testing.assert_array_equal(first[key], again[key])
  # MultiGoal: +1 per ball, -0.01 per step; the episode ends at the exit (success) or the time limit (100 steps).
  np.testing.assert_allclose(first['returns'], first['balls'] - 0.01 * first['lengths'], atol=1e-9)
  assert np.all((first['successes'] == 1) | (first['lengths'] == 100))
  assert first['score'] == pytest.approx(first['returns'].mean())
  # Door-Key scores the success rate (flat A2C, no graph needed).
  dk = feudal.Policies(_cfg(model='a2c', task='doorkey'), maze_layouts.get_layout('tiny'), 6)
  out = feudal.evaluate(dk, [2000, 2001], episodes=1)
  assert out['score'] == out['success_rate'] == pytest.approx(out['successes'].mean())
  assert feudal.across_seeds([5.0, 5.1, 4.9]) == pytest.approx((5.0, np.sqrt(0.02 / 3)))


def test_config_and_construction_errors(walk_graph):
  for kw, flag in ((dict(narrow_window=4), '--narrow_window=4'), (dict(num_envs=0), '--num_envs=0'),
                   (dict(model='hrl'), '--model=hrl'), (dict(model='a2c', traversal=True), '--traversal=True'),
                   (dict(task='goalreach'), '--task=goalreach'), (dict(traversal_mode='teleport'), '--traversal_mode')):
    with pytest.raises(ValueError, match=flag):
      _cfg(**kw)
  assert _cfg(maze='large').narrow_window == 7 and _cfg().narrow_window == 5
  assert _cfg(model='wn').pig_init and not _cfg(model='fn').pig_init and not _cfg(model='a2c').traversal
  with pytest.raises(ValueError, match='needs the world graph'):
    feudal.HRLTrainer(_cfg(pig_init=False))
  with pytest.raises(ValueError, match='--pig_init needs pi_g'):
    feudal.HRLTrainer(_cfg(), walk_graph)
  small = graph_lib.form_edges('small', [(1, 1), (1, 5)], 4, 10, rng=0)
  with pytest.raises(ValueError, match='not on --maze=tiny'):
    feudal.HRLTrainer(_cfg(pig_init=False), small)


@pytest.mark.parametrize('model', ['a2c', 'wn'])
def test_the_updates_replay_exactly_what_acted(model, walk_graph):
  """The Worker's and the Manager's training unrolls (stored initial LSTM states, reset and decision flags, padding)
  reproduce, step for step, the logits / log-probs / values the networks produced while acting."""
  cfg = _cfg(model=model, traversal=model == 'wn', pig_init=False, worker_steps=20)
  trainer = feudal.HRLTrainer(cfg, walk_graph if model == 'wn' else None)
  trainer.iteration()                       # start from a state with history (LSTM states, open episodes)
  p = trainer.policies
  acted, decided = [], []

  def worker_act(obs, wide, narrow, h, c, reset, commit, seed):
    extra = networks.worker_planes(wide, narrow, p.grid_shape) if p.hierarchical else None
    out = p.worker.step(obs, extra, {'h': h, 'c': c}, reset)
    acted.append((out.logits.numpy(), out.value.numpy(), commit.numpy()))
    keep = commit[:, None]
    action = networks.categorical(out.logits).sample(seed=seed)
    return tf.cast(action, tf.int32), tf.where(keep, out.state['h'], h), tf.where(keep, out.state['c'], c)

  def manager_act(obs, h, c, reset, commit, seed):
    d = p.manager.step(obs, {'h': h, 'c': c}, reset, seed=seed)
    decided.append((d.log_prob.numpy(), d.value.numpy(), commit.numpy()))
    keep = commit[:, None]
    return (d.action, d.narrow_index, d.goal_cells, d.narrow_cells, tf.where(keep, d.state['h'], h),
            tf.where(keep, d.state['c'], c))

  p._worker_act, p._manager_act = worker_act, manager_act      # pylint: disable=protected-access
  trainer._load_state()                                          # pylint: disable=protected-access
  r = trainer.runner
  worker0 = dict(r.worker_state)
  manager0 = None if r.manager_state is None else dict(r.manager_state)
  rec = trainer.rollout()
  wb = trainer.worker_batch(rec)
  extras = None
  if p.hierarchical:
    k, b = wb['wide'].shape[:2]
    planes = networks.worker_planes(wb['wide'].reshape(-1, 2), wb['narrow'].reshape(-1, 2), p.grid_shape)
    extras = tf.reshape(planes, (k, b) + p.grid_shape + (2,))
  out = p.worker.unroll(wb['obs'], extras, worker0, wb['reset'])
  for i in range(cfg.num_envs):
    rows = np.nonzero(wb['mask'][:, i])[0]
    mine = [a for a in acted if a[2][i]]
    assert len(mine) == len(rows) == rec.made[i]
    np.testing.assert_allclose(np.array([a[0][i] for a in mine]), out.logits.numpy()[rows, i], atol=1e-5)
    np.testing.assert_allclose(np.array([a[1][i] for a in mine]), out.values.numpy()[rows, i], atol=1e-5)
  if model == 'wn':
    # Alg. 7 in env time: the Manager's LSTM advances only at the decisions S_m.
    advance = np.stack(rec.decisions)
    mout = p.manager.unroll(np.stack(rec.obs), manager0, advance, np.stack(rec.wide), np.stack(rec.narrow),
                            np.stack(rec.manager_reset))
    steps = np.nonzero(np.any(advance, axis=1))[0]
    assert len(steps) == len(decided) and rec.counts['decisions'] == advance.sum() > 0
    for t, (log_prob, value, commit) in zip(steps, decided):
      np.testing.assert_array_equal(commit, advance[t])
      np.testing.assert_allclose(log_prob[commit], mout.log_probs.numpy()[t][commit], atol=1e-4)
      np.testing.assert_allclose(value[commit], mout.values.numpy()[t][commit], atol=1e-5)
    # The update's decision-only unroll, scattered back to env time, gives the same numbers at the decisions.
    mb = trainer.manager_batch(rec)
    np.testing.assert_array_equal(mb['decisions'], advance)
    compact = trainer.manager_unroll(mb['decision_obs'], mb['decision_valid'], mb['decision_wide'],
                                     mb['decision_narrow'], mb['decision_reset'], manager0)
    to_env = feudal.scatter_to_env_time(mb['decision_time'], mb['decision_valid'], advance.shape)
    for name in ('log_probs', 'entropies', 'values'):
      np.testing.assert_allclose(to_env(getattr(compact, name)).numpy()[advance],
                                 getattr(mout, name).numpy()[advance], atol=1e-4, err_msg=name)
      assert not to_env(getattr(compact, name)).numpy()[~advance].any()


def _worker_reach_rate(policies, steps=300, seed=0):
  """The Worker's arrival rates at g^w and g^n under uniformly random subgoal pairs (a scripted Manager: a random
  waypoint, then a random free cell of its window), on 16 tiny multigoal mazes."""
  env = maze_lib.BatchMaze(16, 'tiny', 'multigoal', seeds=50_000 + seed)
  rng = np.random.default_rng(seed)
  nodes = np.array(policies.graph.nodes)
  offsets = policies.manager.window_offsets()

  def manager_act(obs, state, reset, commit, seed_):
    wide = rng.integers(len(nodes), size=len(obs))
    narrow = np.zeros(len(obs), np.int64)
    for i, w in enumerate(wide):
      cells = nodes[w] + offsets
      ok = np.nonzero(np.all((cells >= 0) & (cells < WALLS.shape), axis=1))[0]
      ok = ok[obs[i, cells[ok, 0], cells[ok, 1], maze_lib.WALL_PLANE] == 0]
      narrow[i] = rng.choice(ok)
    return wide, narrow, nodes[wide], nodes[wide] + offsets[narrow], state

  policies.manager_act = manager_act
  try:
    runner = feudal.Runner(policies, env, lambda step, stream: feudal.stateless_seed(seed, step, stream))
    rec = feudal.Recorder(16, store=False)
    for _ in range(steps):
      runner.step(rec)
  finally:
    del policies.manager_act
  c = rec.counts
  return c['wide_reached'] / c['decisions'], c['narrow_reached'] / c['decisions']


@pytest.mark.slow
def test_worker_learns_to_reach_subgoals():
  """Learning check (about 2 minutes): WN without traversal on tiny multigoal, 16 envs, 400 iterations, a test-only
  learning rate of 3e-3 (the run default 5e-4 needs far more iterations). The Worker's arrival rate at random
  subgoal pairs (a scripted random Manager, so the Manager's choices cannot help; 1,000 steps of 16 envs) must rise
  clearly, averaged over the policies after 350 and 400 iterations.

  One checkpoint is not enough: at this learning rate the policy swings between checkpoints. Measured (g^w, g^n)
  from (0.217, 0.267): seed 0 (0.342, 0.283) at 300, (0.429, 0.460) at 350, (0.410, 0.428) at 400; seed 1 (0.399,
  0.376), (0.372, 0.388), (0.412, 0.411). A single 300-iteration check with a 300-step measurement failed CI once
  after a Keras upgrade (g^n 0.267 -> 0.218) with the code unchanged. With the goal rewards off (wide_reward =
  narrow_reward = 0) the check fails."""
  graph = graph_lib.form_edges(WALLS, [(1, 1), (1, 5), (5, 5), (5, 1), (3, 3)], walks_per_node=32, walk_length=30,
                               rng=0, maze_name='tiny')
  cfg = _cfg(num_envs=16, worker_steps=60, horizon=20, traversal=False, pig_init=False, learning_rate=3e-3,
             filters=(8, 8, 16, 16), dense=64, lstm=64, fc=32, narrow_hidden=32, waypoint_embedding=8)
  trainer = feudal.HRLTrainer(cfg, graph)
  wide0, narrow0 = _worker_reach_rate(trainer.policies, steps=1000)
  late, logs = [], []
  for done in (350, 400):
    logs += [trainer.iteration() for _ in range(done - len(logs))]
    late.append(_worker_reach_rate(trainer.policies, steps=1000))
  wide1, narrow1 = np.mean(late, axis=0)
  recent = np.nanmean([x.get('episode/return', np.nan) for x in logs[-20:]])
  print(f'Worker arrival under random subgoals: g^w {wide0:.3f} -> {wide1:.3f}, g^n {narrow0:.3f} -> {narrow1:.3f} '
        f'(mean after 350 and 400 iterations: {late}); episode return (train, last 20 iterations) {recent:.2f}')
  assert wide1 >= wide0 + 0.12 and narrow1 >= narrow0 + 0.08
