"""worldgraph/export.py (issue 11, SavedModels): every reloaded signature against the Keras network it came from
(logits, values and states to 1e-5, greedy and seeded sampled actions exactly, LSTM state fed back over 3 steps),
the VAE's gate probabilities against the closed forms P0 = (1/12)^a, P1 = 1 - (11/12)^a in NumPy, the agent
directory round trip and its refusals, and `play_exported` against hand-counted episodes on the tiny maze (graph
traversal on and off, an aborted traversal at Door-Key's divider) and against a plain per-seed Keras loop."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from rlcv_tf.envs import maze
from rlcv_tf.worldgraph import export
from rlcv_tf.worldgraph import graph as graph_lib
from rlcv_tf.worldgraph import networks
from rlcv_tf.worldgraph import vae as vae_lib

GRID = (7, 7)
SIZES = networks.NetworkSizes(filters=(4, 4, 4, 4), dense=16, lstm=8, fc=8, narrow_hidden=8, waypoint_embedding=4)
NODES = [(1, 1), (1, 5), (5, 5)]
RIGHT, DOWN = 3, 1


def _randomise(net, seed=0, scale=0.3):
  rng = np.random.default_rng(seed)
  for v in net.trainable_variables:
    v.assign(rng.normal(scale=scale, size=tuple(v.shape)).astype(np.float32))
  return net


def _observations(num_envs, steps, task='multigoal', seed=0):
  env = maze.BatchMaze(num_envs, 'tiny', task, seeds=seed)
  rng = np.random.default_rng(seed)
  obs = [env.observe()]
  for _ in range(steps - 1):
    obs.append(env.step(rng.integers(0, env.num_actions, size=num_envs))[0])
  return obs


def _hand_graph():
  """Nodes (1,1), (1,5), (5,5) of the tiny maze; edges 0 -> 1 (right x4) and 1 -> 2 (down x4)."""
  edges = [graph_lib.Edge(0, 1, (RIGHT,) * 4, [(1, c) for c in range(1, 6)], 4),
           graph_lib.Edge(1, 2, (DOWN,) * 4, [(r, 5) for r in range(1, 6)], 4)]
  return graph_lib.WorldGraph('tiny', NODES, edges)


def _close(a, b, atol=1e-5):
  np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=atol)


# ------------------------------------------------------------------------------------------------ VAE

@pytest.fixture(scope='module')
def vae_and_batch():
  cfg = vae_lib.VAEConfig(height=7, width=7, horizon=6, state_embedding=4, state_hidden=8, lstm_units=8,
                          head_hidden=8)
  model = vae_lib.WaypointVAE(cfg)
  rng = np.random.default_rng(3)
  batch = 4
  lengths = np.array([6, 3, 1, 5], np.int32)
  free = np.argwhere(~np.array(maze.BatchMaze(1, 'tiny', 'goalreach').layout.walls))
  cells = free[rng.integers(0, len(free), size=(batch, cfg.horizon + 1))].astype(np.int32)
  actions = rng.integers(0, 4, size=(batch, cfg.horizon)).astype(np.int32)
  model.loss_terms(cells, actions, lengths, seed=tf.constant([0, 0]))
  _randomise(model, seed=4, scale=0.5)
  return model, cells, actions, lengths


def test_vae_signatures_match_keras_and_closed_forms(vae_and_batch, tmp_path):
  model, cells, actions, lengths = vae_and_batch
  horizon = model.cfg.horizon
  loaded = tf.saved_model.load(export.export_vae(model, str(tmp_path / 'vae')))
  assert {'prior', 'infer', 'reconstruct', 'info', 'serving_default'} <= set(loaded.signatures)
  flat = cells.reshape(-1, 2)
  out = loaded.signatures['prior'](cells=tf.constant(flat))
  alpha, beta = (x.numpy() for x in model.prior_params(flat))
  _close(out['alpha'], alpha)
  _close(out['beta'], beta)
  _close(out['mean'], alpha / (alpha + beta))
  _close(loaded.signatures['serving_default'](cells=tf.constant(flat))['mean'], alpha / (alpha + beta))

  inferred = loaded.signatures['infer'](cells=tf.constant(cells), actions=tf.constant(actions),
                                        lengths=tf.constant(lengths))
  a = model.inference_concentration(cells, actions, lengths).numpy()
  _close(inferred['concentration'], a)
  p0, p1 = np.zeros_like(a), np.zeros_like(a)
  gates = np.zeros_like(a)
  for b, n in enumerate(lengths):                 # a plain loop over the tokens 0..T
    for t in range(horizon + 1):
      if t == 0 or t == n:
        p1[b, t], gates[b, t] = 1.0, 1.0
      elif 1 <= t <= n - 1:
        p0[b, t] = (1.0 / 12.0) ** a[b, t]
        p1[b, t] = 1.0 - (11.0 / 12.0) ** a[b, t]
        gates[b, t] = min(1.0, max(0.0, -0.1 + 1.2 * 0.5 ** (1.0 / a[b, t])))
  _close(inferred['prob_zero'], p0)
  _close(inferred['prob_one'], p1)

  rec = loaded.signatures['reconstruct'](cells=tf.constant(cells), actions=tf.constant(actions),
                                         lengths=tf.constant(lengths))
  _close(rec['gates'], gates)
  logits = model.action_logits(cells, tf.constant(gates, tf.float32), lengths).numpy()
  _close(rec['logits'], logits)
  want = np.where(np.arange(horizon)[None] < lengths[:, None], logits.argmax(-1), -1)
  np.testing.assert_array_equal(rec['actions'].numpy(), want)
  info = loaded.signatures['info']()
  assert int(info['horizon']) == horizon and int(info['height']) == 7 and int(info['num_actions']) == 4


# ------------------------------------------------------------------------------------------------ policies

@pytest.mark.parametrize('cls,kind,k_extra', [(networks.GoalPolicy, 'pi_g', 1), (networks.Worker, 'worker', 2),
                                              (networks.FlatA2C, 'a2c', 0)])
def test_policy_act_matches_keras_over_three_steps(cls, kind, k_extra, tmp_path):
  net = _randomise(cls(GRID, 4, SIZES).build_network(), seed=1)
  path = export.export_policy(net, str(tmp_path / kind), kind)
  loaded = tf.saved_model.load(path)
  assert {'act', 'initial_state', 'info', 'serving_default'} <= set(loaded.signatures)
  act = loaded.signatures['act']
  batch = 5
  state = loaded.signatures['initial_state'](batch_size=tf.constant(batch))
  assert state['h'].shape == (batch, 8) and not np.any(state['h'].numpy()) and not np.any(state['c'].numpy())
  keras_state = net.initial_state(batch)
  rng = np.random.default_rng(2)
  for step, obs in enumerate(_observations(batch, 3)):
    goals = rng.integers(1, 6, size=(batch, k_extra, 2))
    extra = np.zeros((batch,) + GRID + (k_extra,), np.float32)
    for b in range(batch):
      for p in range(k_extra):
        extra[b, goals[b, p, 0], goals[b, p, 1], p] = 1.0
    seed = tf.constant([7, step], tf.int32)
    kwargs = dict(observation=tf.constant(obs), h=state['h'], c=state['c'], seed=seed)
    if k_extra:
      kwargs['extra'] = tf.constant(extra)
    out = act(**kwargs)
    ref = net.step(obs, extra if k_extra else None, keras_state)
    _close(out['logits'], ref.logits)
    _close(out['value'], ref.value)
    _close(out['h'], ref.state['h'])
    _close(out['c'], ref.state['c'])
    np.testing.assert_array_equal(out['greedy_action'].numpy(), ref.logits.numpy().argmax(-1))
    sampled = tfp.distributions.Categorical(logits=ref.logits).sample(seed=seed).numpy()
    np.testing.assert_array_equal(out['action'].numpy(), sampled)
    state, keras_state = {'h': out['h'], 'c': out['c']}, dict(ref.state)
  # The reloaded object's act also runs without a seed (stateful sampling): valid actions.
  kwargs.pop('seed')
  free = loaded.act(**kwargs)['action'].numpy()
  assert free.shape == (batch,) and np.all((free >= 0) & (free < 4))
  info = loaded.signatures['info']()
  assert info['kind'].numpy().decode() == kind and int(info['k_extra']) == k_extra and int(info['lstm_units']) == 8


def test_wn_manager_act_matches_keras(tmp_path):
  manager = _randomise(networks.WideNarrowManager(3, 3, grid_shape=GRID, sizes=SIZES, waypoint_cells=NODES)
                       .build_network(), seed=5, scale=0.5)
  loaded = tf.saved_model.load(export.export_policy(manager, str(tmp_path / 'manager')))
  assert {'act', 'waypoints', 'initial_state', 'info'} <= set(loaded.signatures)
  np.testing.assert_array_equal(loaded.signatures['waypoints']()['cells'].numpy(), NODES)
  batch = 6
  state = loaded.signatures['initial_state'](batch_size=tf.constant(batch))
  keras_state = manager.initial_state(batch)
  for step, obs in enumerate(_observations(batch, 3, seed=4)):
    seed = tf.constant([11, step], tf.int32)
    out = loaded.signatures['act'](observation=tf.constant(obs), h=state['h'], c=state['c'], seed=seed)
    ref = manager.step(obs, keras_state, seed=seed)
    np.testing.assert_array_equal(out['waypoint'].numpy(), ref.action.numpy())
    np.testing.assert_array_equal(out['narrow_index'].numpy(), ref.narrow_index.numpy())
    np.testing.assert_array_equal(out['wide_cell'].numpy(), np.asarray(NODES)[ref.action.numpy()])
    np.testing.assert_array_equal(out['narrow_cell'].numpy(), ref.narrow_cells.numpy())
    _close(out['log_prob'], ref.log_prob)
    _close(out['value'], ref.value)
    _close(out['h'], ref.state['h'])
    _close(out['c'], ref.state['c'])
    # Greedy pair: argmax pi^w, then argmax pi^n given that waypoint, from the Keras heads.
    h_m = ref.state['h']
    wide_logits = manager.wide_logits(h_m).numpy()
    _close(out['wide_logits'], wide_logits)
    greedy_w = wide_logits.argmax(-1)
    narrow_logits = manager.narrow_logits(h_m, obs, greedy_w).numpy()
    greedy_n = narrow_logits.argmax(-1)
    np.testing.assert_array_equal(out['greedy_waypoint'].numpy(), greedy_w)
    np.testing.assert_array_equal(out['greedy_narrow_index'].numpy(), greedy_n)
    offsets = np.stack([greedy_n // 3 - 1, greedy_n % 3 - 1], axis=-1)
    np.testing.assert_array_equal(out['greedy_narrow_cell'].numpy(), np.asarray(NODES)[greedy_w] + offsets)
    state, keras_state = {'h': out['h'], 'c': out['c']}, dict(ref.state)


def test_fn_manager_act_matches_keras(tmp_path):
  manager = _randomise(networks.FullManager(grid_shape=GRID, sizes=SIZES).build_network(), seed=6, scale=0.5)
  loaded = tf.saved_model.load(export.export_policy(manager, str(tmp_path / 'fn'), 'fn_manager'))
  batch = 4
  state = loaded.signatures['initial_state'](batch_size=tf.constant(batch))
  keras_state = manager.initial_state(batch)
  for step, obs in enumerate(_observations(batch, 3, seed=8)):
    seed = tf.constant([3, step], tf.int32)
    out = loaded.signatures['act'](observation=tf.constant(obs), h=state['h'], c=state['c'], seed=seed)
    ref = manager.step(obs, keras_state, seed=seed)
    np.testing.assert_array_equal(out['cell_index'].numpy(), ref.action.numpy())
    index = ref.action.numpy()
    np.testing.assert_array_equal(out['cell'].numpy(), np.stack([index // 7, index % 7], -1))
    np.testing.assert_array_equal(out['wide_cell'].numpy(), out['narrow_cell'].numpy())
    logits = manager.cell_logits(ref.state['h'], obs).numpy()
    _close(out['logits'], logits, atol=1e-3)          # the masked entries are -1e9
    greedy = logits.argmax(-1)
    np.testing.assert_array_equal(out['greedy_cell_index'].numpy(), greedy)
    assert not np.any(np.asarray(maze.BatchMaze(1, 'tiny').layout.walls)[greedy // 7, greedy % 7])
    _close(out['value'], ref.value)
    _close(out['h'], ref.state['h'])
    _close(out['c'], ref.state['c'])
    state, keras_state = {'h': out['h'], 'c': out['c']}, dict(ref.state)


def test_export_refuses_bad_networks(tmp_path):
  manager = networks.WideNarrowManager(3, 3, grid_shape=GRID, sizes=SIZES).build_network()
  with pytest.raises(ValueError, match='set_waypoint_cells'):
    export.export_policy(manager, str(tmp_path / 'm'))
  with pytest.raises(ValueError, match="kind='pi_g'"):
    export.export_policy(networks.Worker(GRID, 4, SIZES).build_network(), str(tmp_path / 'w'), 'pi_g')
  with pytest.raises(ValueError, match='not a Chapter 3 network'):
    export.export_policy(tf.keras.layers.Dense(3), str(tmp_path / 'd'))


# ------------------------------------------------------------------------------------------------ agent directory

def _scripted_feudal(num_actions=4, waypoint=2):
  """A Worker that always moves right and a WN Manager that always picks `waypoint` with g^n = g^w."""
  worker = networks.Worker(GRID, num_actions, SIZES).build_network()
  worker.policy.kernel.assign(np.zeros(worker.policy.kernel.shape, np.float32))
  bias = np.zeros(num_actions, np.float32)
  bias[RIGHT] = 10.0
  worker.policy.bias.assign(bias)
  manager = networks.WideNarrowManager(3, 3, grid_shape=GRID, sizes=SIZES, waypoint_cells=NODES).build_network()
  manager.wide.kernel.assign(np.zeros(manager.wide.kernel.shape, np.float32))
  manager.wide.bias.assign(np.eye(3, dtype=np.float32)[waypoint] * 10.0)
  manager.narrow.kernel.assign(np.zeros(manager.narrow.kernel.shape, np.float32))
  manager.narrow.bias.assign(np.eye(9, dtype=np.float32)[4] * 10.0)   # window centre: g^n = g^w
  return manager, worker


def test_agent_directory_round_trip(tmp_path):
  graph = _hand_graph()
  manager, worker = _scripted_feudal()
  _randomise(worker, seed=9)
  pi_g = _randomise(networks.GoalPolicy(GRID, 4, SIZES).build_network(), seed=10)
  config = {'task': 'multigoal', 'maze': 'tiny', 'model': 'ours', 'horizon': 12, 'traversal': True,
            'filters': (4, 4, 4, 4)}
  directory = export.export_agent(str(tmp_path / 'agent'), manager=manager, worker=worker, pi_g=pi_g, graph=graph,
                                  config=config)
  assert sorted(os.listdir(directory)) == ['agent.json', 'graph.json', 'manager', 'pi_g', 'worker']
  agent = export.load_agent(directory)
  meta = agent.meta
  assert meta['format'] == export.AGENT_FORMAT and meta['model'] == 'ours' and meta['task'] == 'multigoal'
  assert meta['maze'] == graph_lib.maze_rows(graph.walls) and meta['maze_name'] == 'tiny'
  assert meta['horizon'] == 12 and meta['traversal'] is True and meta['window'] == 3 and meta['num_actions'] == 4
  assert meta['waypoints'] == [list(c) for c in NODES] and meta['config']['filters'] == [4, 4, 4, 4]
  assert meta['parts']['worker'] == {'dir': 'worker', 'kind': 'worker', 'lstm_units': 8, 'grid': [7, 7],
                                     'k_extra': 2, 'num_actions': 4}
  assert agent.graph.nodes == graph.nodes and agent.graph.edges == graph.edges
  # graph.json is also an asset of the Manager's SavedModel.
  asset = agent.parts['manager'].graph_json.asset_path.numpy().decode()
  with open(asset, encoding='utf-8') as f, open(os.path.join(directory, 'graph.json'), encoding='utf-8') as g:
    assert json.load(f) == json.load(g)
  # The reloaded parts compute what the networks compute.
  obs = _observations(2, 1)[0]
  zeros = np.zeros((2, 8), np.float32)
  goal = np.zeros((2,) + GRID + (1,), np.float32)
  goal[:, 5, 5, 0] = 1.0
  out = agent.parts['pi_g'].act(observation=tf.constant(obs), extra=tf.constant(goal), h=tf.constant(zeros),
                                c=tf.constant(zeros), seed=tf.constant([0, 0]))
  _close(out['logits'], pi_g.step(obs, goal, pi_g.initial_state(2)).logits)
  out = agent.parts['manager'].act(observation=tf.constant(obs), h=tf.constant(zeros), c=tf.constant(zeros),
                                   seed=tf.constant([0, 0]))
  np.testing.assert_array_equal(out['greedy_wide_cell'].numpy(), [[5, 5], [5, 5]])


def test_agent_directory_refusals(tmp_path):
  graph = _hand_graph()
  manager, worker = _scripted_feudal()
  flat = networks.FlatA2C(GRID, 4, SIZES).build_network()
  good = {'task': 'goalreach', 'maze': 'tiny'}
  with pytest.raises(ValueError, match='not both'):
    export.export_agent(str(tmp_path / 'a'), manager=manager, worker=worker, flat=flat, config=good)
  with pytest.raises(ValueError, match='needs both manager= and worker='):
    export.export_agent(str(tmp_path / 'a'), manager=manager, config=good)
  with pytest.raises(ValueError, match=r'config\["task"\]'):
    export.export_agent(str(tmp_path / 'a'), flat=flat, config={'maze': 'tiny'})
  with pytest.raises(ValueError, match='13x13'):
    export.export_agent(str(tmp_path / 'a'), flat=flat, config={'task': 'goalreach', 'maze': 'small'})
  with pytest.raises(ValueError, match='6'):
    export.export_agent(str(tmp_path / 'a'), flat=flat, config={'task': 'doorkey', 'maze': 'tiny'})
  other = graph_lib.WorldGraph('tiny', [(1, 5), (1, 1), (5, 5)], [])
  with pytest.raises(ValueError, match='differ from the graph'):
    export.export_agent(str(tmp_path / 'a'), manager=manager, worker=worker, graph=other, config=good)
  with pytest.raises(ValueError, match='no graph= was given'):
    export.export_agent(str(tmp_path / 'a'), manager=manager, worker=worker, config=dict(good, traversal=True))
  assert not os.path.exists(tmp_path / 'a')
  with pytest.raises(ValueError, match='--agent=.*no agent.json'):
    export.load_agent(str(tmp_path))
  directory = export.export_agent(str(tmp_path / 'ok'), manager=manager, worker=worker, graph=graph, config=good)
  with open(os.path.join(directory, 'agent.json'), 'w', encoding='utf-8') as f:
    f.write('{"format": "something else"}')
  with pytest.raises(ValueError, match='not a Chapter 3 agent'):
    export.load_agent(directory)


# ------------------------------------------------------------------------------------------------ play

def test_play_traversal_on_and_off(tmp_path):
  """Goal-reach on the tiny maze, g^w = g^n = the exit (5,5), a Worker that always moves right: 4 steps to the
  waypoint (1,5), then the edge 1 -> 2 is replayed (4 steps down) to the goal; without traversal the Worker pushes
  against the wall at (1,5) until the 25-step cut, with a new decision after c = 20 Worker steps."""
  graph = _hand_graph()
  manager, worker = _scripted_feudal()
  directory = export.export_agent(str(tmp_path / 'agent'), manager=manager, worker=worker, graph=graph,
                                  config={'task': 'goalreach', 'maze': 'tiny', 'traversal': True})
  on = export.play_exported(directory, seeds=[0, 1], episodes=2, greedy=True)
  np.testing.assert_array_equal(on['length'], [[8, 8], [8, 8]])
  np.testing.assert_array_equal(on['return'], np.ones((2, 2)))
  assert on['success'].all() and on['success_rate'] == 1.0 and on['mean_return'] == 1.0
  assert on['traversals'] == 4 and on['aborted_traversals'] == 0
  off = export.play_exported(directory, seeds=[0], episodes=1, greedy=True, traversal=False)
  np.testing.assert_array_equal(off['length'], [[25]])
  assert off['return'][0, 0] == 0.0 and not off['success'].any()
  assert off['decisions'] == 2 and off['traversals'] == 0
  # Sampled play (the default) with the near-deterministic scripted nets gives the same episodes.
  sampled = export.play_exported(directory, seeds=[0], episodes=1)
  np.testing.assert_array_equal(sampled['length'], [[8]])


def test_play_aborts_a_traversal_blocked_by_the_door(tmp_path):
  """Door-Key on the tiny maze (divider column 4): nodes (1,1), (1,3), (1,5) with edges along row 1; g^w = (1,5).
  The Worker reaches the waypoint (1,3) in 2 steps and starts the route 1 -> 2, whose first move hits the divider
  (a wall or the locked door): abort, a new decision, and again. With a 20-step cut: traversals start at steps
  2, 4, ..., 18 and abort at 3, 5, ..., 19 (9 each), so 1 + 9 decisions."""
  nodes = [(1, 1), (1, 3), (1, 5)]
  edges = [graph_lib.Edge(0, 1, (RIGHT,) * 2, [(1, 1), (1, 2), (1, 3)], 2),
           graph_lib.Edge(1, 2, (RIGHT,) * 2, [(1, 3), (1, 4), (1, 5)], 2)]
  graph = graph_lib.WorldGraph('tiny', nodes, edges)
  manager, worker = _scripted_feudal(num_actions=6)
  manager.set_waypoint_cells(nodes)
  directory = export.export_agent(str(tmp_path / 'agent'), manager=manager, worker=worker, graph=graph,
                                  config={'task': 'doorkey', 'maze': 'tiny', 'traversal': True})
  out = export.play_exported(directory, seeds=[0, 1, 2], greedy=True, max_steps=20)
  np.testing.assert_array_equal(out['length'], [[20]] * 3)
  assert out['traversals'] == 27 and out['aborted_traversals'] == 27 and out['decisions'] == 30
  assert not out['success'].any()


def test_play_flat_matches_a_plain_keras_loop(tmp_path):
  net = _randomise(networks.FlatA2C(GRID, 4, SIZES).build_network(), seed=12, scale=0.5)
  directory = export.export_agent(str(tmp_path / 'a2c'), flat=net, config={'task': 'multigoal', 'maze': 'tiny'})
  assert export.load_agent(directory).meta['model'] == 'a2c'
  seeds = [5, 6, 7]
  out = export.play_exported(directory, seeds=seeds, episodes=2, greedy=True, max_steps=15)
  for i, seed in enumerate(seeds):                   # one env per seed, the network's argmax, episode by episode
    env = maze.BatchMaze(1, 'tiny', 'multigoal', seeds=[seed], max_steps=15)
    obs, state = env.observe(), net.initial_state(1)
    for e in range(2):
      total, steps, ended = 0.0, 0, False
      while not ended:
        ref = net.step(obs, None, state)
        obs, reward, terminated, truncated, info = env.step(ref.logits.numpy().argmax(-1))
        state, total, steps = ref.state, total + float(reward[0]), steps + 1
        ended = bool(terminated[0] or truncated[0])
      state = net.initial_state(1)
      assert out['length'][i, e] == steps == info['episode_length'][0]
      np.testing.assert_allclose(out['return'][i, e], total, atol=1e-6)
      assert out['balls_collected'][i, e] == info['balls_collected'][0]


def test_play_refusals(tmp_path):
  net = networks.FlatA2C(GRID, 4, SIZES).build_network()
  directory = export.export_agent(str(tmp_path / 'a2c'), flat=net, config={'task': 'multigoal', 'maze': 'tiny'})
  with pytest.raises(ValueError, match='same actions'):
    export.play_exported(directory, task='doorkey')
  with pytest.raises(ValueError, match='traversal=False'):
    export.play_exported(directory, traversal=True)
  with pytest.raises(ValueError, match='episodes'):
    export.play_exported(directory, episodes=0)
