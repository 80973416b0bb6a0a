"""worldgraph/networks.py and feudal.manager_loss (spec ch3 §3.3-3.7, §4.4; §9 tests 13, 14 (Manager half), 16):
shapes on the small 13x13 maze at the cpu sizes, the split first convolution against one convolution over the
concatenated planes, the WN Manager's window mask and samples against the layout's walls cell by cell, the joint
log-prob and entropy surrogate against NumPy, the state-encoder transfer, LSTM resets and decision-only advances
against step-by-step loops, and Alg. 7's Manager loss against a plain loop on a trace with a 5-step traversal."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.envs import maze
from rlcv_tf.worldgraph import feudal
from rlcv_tf.worldgraph import networks

SIZES = networks.CPU_SIZES
GRID = (13, 13)


@pytest.fixture(scope='module')
def small():
  """Observations [T=6, B=3] of the small maze (multigoal, random actions) and its walls."""
  env = maze.BatchMaze(3, 'small', 'multigoal', seeds=0)
  rng = np.random.default_rng(0)
  obs = [env.reset()]
  for _ in range(5):
    obs.append(env.step(rng.integers(0, 4, size=3))[0])
  return np.stack(obs), np.array(env.layout.walls), env.layout.free_cells()


def log_softmax(z):
  z = z - z.max(-1, keepdims=True)
  return z - np.log(np.exp(z).sum(-1, keepdims=True))


def entropy_of(logits):
  logp = log_softmax(logits.astype(np.float64))
  p = np.exp(logp)
  return -np.sum(np.where(p > 0, p * logp, 0.0), axis=-1)


# ------------------------------------------------------------------------------------------------ encoder

def test_encoder_shapes_and_coordinate_planes(small):
  obs = small[0][0]
  planes = networks.state_planes(obs).numpy()
  assert planes.shape == (3, 13, 13, 11)
  np.testing.assert_array_equal(planes[..., :9], obs)
  np.testing.assert_allclose(planes[0, :, 4, 9], np.arange(13) / 12, rtol=1e-6)
  np.testing.assert_allclose(planes[2, 7, :, 10], np.arange(13) / 12, rtol=1e-6)
  enc = networks.GridEncoder(SIZES.filters, SIZES.dense, k_extra=2, name='enc')
  out = enc(obs, tf.zeros((3, 13, 13, 2)))
  assert out.shape == (3, 128)
  assert enc.conv_s.kernel.shape == (3, 3, 11, 16) and enc.conv_s.use_bias
  assert enc.conv_e.kernel.shape == (3, 3, 2, 16) and not enc.conv_e.use_bias and len(enc.conv_e.weights) == 1
  assert enc.conv4.kernel.shape == (3, 3, 32, 32)
  assert enc.dense.kernel.shape == (4 * 4 * 32, 128)        # 13 -> 13 -> 7 -> 4 (strides 1, 1, 2, 2, same)
  with pytest.raises(ValueError, match='extra plane'):
    enc(obs)
  with pytest.raises(ValueError, match=r'\[B, H, W, 9\]'):
    enc(obs[..., :8], tf.zeros((3, 13, 13, 2)))


def test_split_first_conv_is_one_conv_over_the_concatenated_planes(small):
  """conv1 = Conv_s(X_s) + Conv_e(X_e) equals a single 3x3 convolution of [X_s || X_e] with the stacked kernels
  plus Conv_s's bias, then LeakyReLU(0.01); the rest of the encoder is applied by hand to the same tensor."""
  obs = small[0][1]
  extra = np.random.default_rng(1).random((3, 13, 13, 1)).astype(np.float32)
  enc = networks.GridEncoder(SIZES.filters, SIZES.dense, k_extra=1, name='enc')
  got = enc(obs, extra).numpy()
  x = np.concatenate([networks.state_planes(obs).numpy(), extra], axis=-1)
  kernel = np.concatenate([enc.conv_s.kernel.numpy(), enc.conv_e.kernel.numpy()], axis=2)
  y = tf.nn.conv2d(x, kernel, 1, 'SAME') + enc.conv_s.bias.numpy()
  leaky = lambda v: np.where(v > 0, v, 0.01 * v)
  y = leaky(y.numpy())
  for conv, stride in ((enc.conv2, 1), (enc.conv3, 2), (enc.conv4, 2)):
    y = leaky((tf.nn.conv2d(y, conv.kernel, stride, 'SAME') + conv.bias).numpy())
  y = leaky(y.reshape(3, -1) @ enc.dense.kernel.numpy() + enc.dense.bias.numpy())
  np.testing.assert_allclose(got, y, rtol=1e-4, atol=1e-5)
  # The same under tf.function (TF 2.21's oneDNN fusion of Conv2D + BiasAdd + Add + LeakyRelu applies slope 0.2 in
  # graph mode; the encoder must not hit it).
  graph = tf.function(lambda o, e: enc(o, e))(obs, extra).numpy()
  np.testing.assert_allclose(graph, y, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------------------ actor-critics

@pytest.mark.parametrize('cls,k,actions', [(networks.GoalPolicy, 1, 4), (networks.Worker, 2, 6),
                                            (networks.FlatA2C, 0, 4)])
def test_actor_critic_shapes(small, cls, k, actions):
  obs = small[0]
  net = cls(GRID, num_actions=actions, sizes=SIZES).build_network()
  assert net.encoder.k_extra == k
  extra = None if k == 0 else tf.zeros((3, 13, 13, k))
  out = net.step(obs[0], extra, net.initial_state(3))
  assert out.logits.shape == (3, actions) and out.value.shape == (3,) and out.state['h'].shape == (3, 128)
  extras = None if k == 0 else tf.zeros((6, 3, 13, 13, k))
  roll = net.unroll(obs, extras, net.initial_state(3))
  assert roll.logits.shape == (6, 3, actions) and roll.values.shape == (6, 3)
  assert {v.path.split('/')[0] for v in net.weights} == {'encoder', 'lstm', 'fc1', 'fc2', 'policy', 'value'}
  with pytest.raises(ValueError, match='num_actions'):
    cls(GRID, num_actions=5, sizes=SIZES)


def test_goal_and_worker_planes():
  planes = networks.worker_planes([[1, 2], [3, 4]], [[5, 6], [3, 4]], GRID).numpy()
  assert planes.shape == (2, 13, 13, 2) and planes.sum() == 4
  assert planes[0, 1, 2, 0] == 1 and planes[0, 5, 6, 1] == 1 and planes[1, 3, 4, 0] == planes[1, 3, 4, 1] == 1
  with pytest.raises(ValueError, match=r'\(13, 1\) lies outside'):
    networks.goal_planes([[13, 1]], GRID)


def test_unroll_replays_steps_and_resets_the_lstm(small):
  """unroll == a loop of `step` (zeroing the state where reset); a reset step's output equals a step from the zero
  state, and without the reset it differs."""
  keras.utils.set_random_seed(3)
  obs = small[0]
  worker = networks.Worker(GRID, num_actions=4, sizes=SIZES).build_network()
  rng = np.random.default_rng(2)
  goals = rng.integers(1, 12, size=(6, 3, 2, 2))
  extras = np.stack([networks.worker_planes(goals[t, :, 0], goals[t, :, 1], GRID).numpy() for t in range(6)])
  reset = np.zeros((6, 3), bool)
  reset[2, 0] = reset[4, 2] = True
  init = {'h': tf.constant(rng.normal(size=(3, 128)), tf.float32), 'c': tf.constant(rng.normal(size=(3, 128)),
                                                                                     tf.float32)}
  roll = worker.unroll(obs, extras, init, reset)
  state = init
  for t in range(6):
    out = worker.step(obs[t], extras[t], state, reset[t])
    np.testing.assert_allclose(roll.logits[t].numpy(), out.logits.numpy(), atol=1e-5)
    np.testing.assert_allclose(roll.values[t].numpy(), out.value.numpy(), atol=1e-5)
    state = out.state
  np.testing.assert_allclose(roll.state['h'].numpy(), state['h'].numpy(), atol=1e-5)
  fresh = worker.step(obs[2, :1], extras[2, :1], worker.initial_state(1))
  np.testing.assert_allclose(roll.logits[2, 0].numpy(), fresh.logits[0].numpy(), atol=1e-6)
  no_reset = worker.unroll(obs, extras, init)
  assert np.abs(no_reset.logits[2, 0].numpy() - roll.logits[2, 0].numpy()).max() > 1e-5
  np.testing.assert_allclose(no_reset.logits[:2].numpy(), roll.logits[:2].numpy(), atol=1e-6)
  # Also under tf.function (fixed shapes), as the training loop will run it.
  fn = tf.function(lambda o, e, h, c, r: worker.unroll(o, e, {'h': h, 'c': c}, r).logits)
  np.testing.assert_allclose(fn(obs, extras, init['h'], init['c'], reset).numpy(), roll.logits.numpy(), atol=1e-5)


# ------------------------------------------------------------------------------------------------ transfer

def test_transfer_copies_the_state_encoder_bitwise_and_nothing_else(small):
  keras.utils.set_random_seed(4)
  pig = networks.GoalPolicy(GRID, sizes=SIZES).build_network()
  worker = networks.Worker(GRID, num_actions=6, sizes=SIZES).build_network()
  manager = networks.WideNarrowManager(8, 5, grid_shape=GRID, sizes=SIZES,
                                       waypoint_cells=small[2][:8]).build_network()
  copied = {'conv_s/kernel', 'conv_s/bias', 'conv2/kernel', 'conv2/bias', 'conv3/kernel', 'conv3/bias',
            'conv4/kernel', 'conv4/bias', 'dense/kernel', 'dense/bias'}
  before = {dst.name: {v.path: v.numpy().copy() for v in dst.weights} for dst in (worker, manager)}
  before_worker_ce = worker.encoder.conv_e.kernel.numpy().copy()
  networks.transfer_state_encoder(pig, worker, goal_plane=networks.Worker.NARROW_PLANE)
  written = networks.transfer_state_encoder(pig, manager)
  assert len(written) == 10
  source = {v.path: v.numpy() for v in pig.weights}
  checked = 0
  for dst in (worker, manager):
    for v in dst.weights:
      key = v.path
      if key.startswith('encoder/') and key[len('encoder/'):] in copied:
        assert source[key].tobytes() == v.numpy().tobytes(), key     # bitwise
        assert not np.array_equal(before[dst.name][key], v.numpy()) or 'bias' in key, key
      elif key != 'encoder/conv_e/kernel':
        # LSTM, FC, heads: not written, and (random kernels) not equal to pi_g's.
        assert v.numpy().tobytes() == before[dst.name][key].tobytes(), key
        if key in source and source[key].shape == v.shape and 'kernel' in key:
          assert not np.array_equal(source[key], v.numpy()), key
          checked += 1
  assert checked == 8   # worker: lstm (2), fc1, fc2, value (its 6-action policy has another shape); manager: lstm (2),
                        # value
  # Conv_e: the Worker's narrow-goal slice is pi_g's goal kernel; its wide-goal slice is untouched (Glorot).
  pig_goal = pig.encoder.conv_e.kernel.numpy()[:, :, 0]
  worker_ce = worker.encoder.conv_e.kernel.numpy()
  assert worker_ce[:, :, 1].tobytes() == pig_goal.tobytes()
  assert worker_ce[:, :, 0].tobytes() == before_worker_ce[:, :, 0].tobytes()
  assert not np.array_equal(worker_ce[:, :, 0], pig_goal)
  assert not np.array_equal(manager.encoder.conv_e.kernel.numpy()[:, :, 0], pig_goal)
  # With zero extra planes the encoders now compute the same features, to the bit.
  obs = small[0][3]
  a = pig.encoder(obs, tf.zeros((3, 13, 13, 1))).numpy()
  b = worker.encoder(obs, tf.zeros((3, 13, 13, 2))).numpy()
  assert a.tobytes() == b.tobytes()


def test_transfer_refuses_other_sizes_and_unbuilt_networks():
  pig = networks.GoalPolicy(GRID, sizes=SIZES).build_network()
  with pytest.raises(ValueError, match='layer conv_s'):
    networks.transfer_state_encoder(pig, networks.Worker(GRID, sizes=networks.FULL_SIZES).build_network())
  with pytest.raises(ValueError, match='layer dense'):
    networks.transfer_state_encoder(pig, networks.Worker((11, 11), sizes=SIZES).build_network())
  with pytest.raises(ValueError, match='build both'):
    networks.transfer_state_encoder(pig, networks.Worker(GRID, sizes=SIZES))
  with pytest.raises(ValueError, match='goal_plane 2'):
    networks.transfer_state_encoder(pig, networks.Worker(GRID, sizes=SIZES).build_network(), goal_plane=2)


# ------------------------------------------------------------------------------------------------ WN Manager

def make_manager(small, seed=5, num=10):
  keras.utils.set_random_seed(seed)
  free = small[2]
  # Waypoints at the corners of the grid's free area (windows reaching outside) and some inner cells.
  cells = [(1, 1), (11, 11), (1, 11), (11, 1)] + [c for c in free if c not in {(1, 1), (11, 11), (1, 11), (11, 1)}]
  cells = cells[:num]
  for c in cells:
    assert not small[1][c]
  return networks.WideNarrowManager(num, 5, grid_shape=GRID, sizes=SIZES, waypoint_cells=cells).build_network(), cells


def expected_free_window(walls, center, n=5):
  """[n*n] bool by brute force: inside the grid and not a wall, row-major over offsets -(n-1)/2..(n-1)/2."""
  p = (n - 1) // 2
  out = []
  for dr, dc in itertools.product(range(-p, p + 1), repeat=2):
    r, c = center[0] + dr, center[1] + dc
    out.append(0 <= r < walls.shape[0] and 0 <= c < walls.shape[1] and not walls[r, c])
  return np.array(out)


def test_wn_narrow_logits_mask_walls_and_outside_cells(small):
  obs, walls, _ = small
  manager, cells = make_manager(small)
  o = np.repeat(obs[0, :1], len(cells), axis=0)
  h, _ = manager.core(o, manager.initial_state(len(cells)))
  logits = manager.narrow_logits(h, o, tf.range(len(cells))).numpy()
  crop = manager.crop(o, np.array(cells)).numpy()
  for i, center in enumerate(cells):
    free = expected_free_window(walls, center)
    assert np.all(logits[i][~free] == networks.MASKED_LOGIT), center
    assert np.all(logits[i][free] > -1e3), center
    # The crop: the observation's planes inside the grid, wall (only) outside; coordinates continued.
    for k, (dr, dc) in enumerate(manager.window_offsets()):
      r, c = center[0] + dr, center[1] + dc
      got = crop[i, k // 5, k % 5]
      if 0 <= r < 13 and 0 <= c < 13:
        np.testing.assert_array_equal(got[:9], o[i, r, c])
      else:
        np.testing.assert_array_equal(got[:9], np.eye(9)[maze.WALL_PLANE])
      np.testing.assert_allclose(got[9:], [r / 12, c / 12], rtol=1e-6)
  assert (manager.cell_to_window_index(np.array(cells), np.array(cells)).numpy() == 12).all()   # centre = 12
  far = np.array(cells) + 3
  assert (manager.cell_to_window_index(np.array(cells), far).numpy() == -1).all()


def test_wn_samples_lie_on_free_cells_within_the_window(small):
  """Even with the narrow head pushed hard towards the window's top row (outside the grid for the waypoints on row
  1), every sampled g^n is a free cell within Chebyshev distance 2 of g^w, and g^w is in V_p."""
  obs, walls, _ = small
  manager, cells = make_manager(small)
  bias = np.zeros(25, np.float32)
  bias[:5] = 30.0
  manager.narrow.bias.assign(bias)
  tf.random.set_seed(0)
  o = np.repeat(obs[:, :1].reshape(-1, 13, 13, 9), 50, axis=0)        # 300 decisions
  decision = manager.step(o, manager.initial_state(len(o)))
  gw = decision.goal_cells.numpy()
  gn = decision.narrow_cells.numpy()
  assert set(map(tuple, gw)) <= set(cells)
  np.testing.assert_array_equal(gw, np.array(cells)[decision.action.numpy()])
  assert np.abs(gn - gw).max() <= 2
  assert not walls[gn[:, 0], gn[:, 1]].any()
  assert (gn >= 0).all() and (gn < 13).all()
  np.testing.assert_array_equal(manager.cell_to_window_index(gw, gn).numpy(), decision.narrow_index.numpy())
  assert len(set(map(tuple, gw))) > 3   # the wide policy (near uniform at init) is really sampled


def test_wn_joint_log_prob_and_entropy_surrogate(small):
  obs = small[0]
  manager, cells = make_manager(small, seed=6)
  o = obs[2]
  h, _ = manager.core(o, manager.initial_state(3))
  waypoint = np.array([0, 5, 3])
  narrow = np.array([12, 7, 17])
  joint, ent, parts = manager.log_prob_and_entropy(h, o, waypoint, narrow)
  wide_logits = manager.wide_logits(h).numpy().astype(np.float64)
  narrow_logits = manager.narrow_logits(h, o, waypoint).numpy().astype(np.float64)
  want_w = log_softmax(wide_logits)[np.arange(3), waypoint]
  want_n = log_softmax(narrow_logits)[np.arange(3), narrow]
  np.testing.assert_allclose(joint.numpy(), want_w + want_n, rtol=1e-5)
  np.testing.assert_allclose(parts['log_prob_wide'].numpy() + parts['log_prob_narrow'].numpy(), joint.numpy(),
                             rtol=1e-6)
  np.testing.assert_allclose(ent.numpy(), entropy_of(wide_logits) + entropy_of(narrow_logits), rtol=1e-5)
  # The narrow distribution puts all its mass on the free window cells of each g^w.
  probs = np.exp(log_softmax(narrow_logits))
  for i, w in enumerate(waypoint):
    free = expected_free_window(small[1], cells[w])
    assert probs[i][free].sum() == pytest.approx(1.0, abs=1e-6) and probs[i][~free].max() == 0.0
  # A decision's log-prob and entropy are these quantities for the sampled pair.
  d = manager.decide(h, o, waypoint, narrow)
  np.testing.assert_allclose(d.log_prob.numpy(), joint.numpy(), rtol=1e-6)


def test_wn_manager_lstm_advances_only_at_decisions(small):
  """unroll(advance) == calling `step` only at the decision steps (the state is held in between)."""
  obs = small[0]
  manager, _ = make_manager(small, seed=7)
  advance = np.zeros((6, 3), bool)
  advance[[0, 3, 4], 0] = True
  advance[[0, 1, 5], 1] = True
  advance[[0, 2], 2] = True
  reset = np.zeros((6, 3), bool)
  reset[0] = True
  rng = np.random.default_rng(0)
  waypoints = rng.integers(0, 10, size=(6, 3))
  narrow = np.full((6, 3), 12)
  roll = manager.unroll(obs, manager.initial_state(3), advance, waypoints, narrow, reset)
  for b in range(3):
    state = {k: v[b:b + 1] for k, v in manager.initial_state(3).items()}
    for t in range(6):
      if advance[t, b]:
        h, state = manager.core(obs[t, b:b + 1], state, reset[t, b:b + 1])
        d = manager.decide(h, obs[t, b:b + 1], waypoints[t, b:b + 1], narrow[t, b:b + 1])
        np.testing.assert_allclose(roll.log_probs[t, b].numpy(), d.log_prob.numpy()[0], atol=1e-5)
        np.testing.assert_allclose(roll.entropies[t, b].numpy(), d.entropy.numpy()[0], atol=1e-5)
        np.testing.assert_allclose(roll.values[t, b].numpy(), d.value.numpy()[0], atol=1e-5)
    np.testing.assert_allclose(roll.state['h'][b].numpy(), state['h'][0].numpy(), atol=1e-5)
  # Advancing at every step gives other values at the later decisions.
  every = manager.unroll(obs, manager.initial_state(3), np.ones((6, 3), bool), waypoints, narrow, reset)
  assert np.abs(every.values[3, 0].numpy() - roll.values[3, 0].numpy()) > 1e-6
  # Under tf.function (as the training loop runs it) the same numbers, and the loss reaches every variable.
  fn = tf.function(lambda o, h, c: manager.unroll(o, {'h': h, 'c': c}, advance, waypoints, narrow, reset).log_probs)
  init = manager.initial_state(3)
  np.testing.assert_allclose(fn(obs, init['h'], init['c']).numpy(), roll.log_probs.numpy(), atol=1e-5)
  with tf.GradientTape() as tape:
    out = manager.unroll(obs, init, advance, waypoints, narrow, reset)
    total = tf.reduce_sum(out.log_probs + out.entropies + out.values)
  grads = tape.gradient(total, manager.trainable_variables)
  assert all(g is not None for g in grads)
  # The bootstrap value V_m(s_T) is the value after a tentative LSTM step on s_T from the rollout's last state.
  h, _ = manager.core(obs[5], roll.state)
  np.testing.assert_allclose(manager.bootstrap_value(obs[5], roll.state).numpy(), manager.value_head(h).numpy())


def test_wn_manager_waypoint_cells_survive_a_checkpoint(small, tmp_path):
  manager, cells = make_manager(small, seed=10)
  path = tf.train.Checkpoint(model=manager).write(str(tmp_path / 'ckpt'))
  fresh = networks.WideNarrowManager(10, 5, grid_shape=GRID, sizes=SIZES).build_network()
  obs = small[0][0]
  with pytest.raises(ValueError, match='set the waypoint cells'):
    fresh.step(obs, fresh.initial_state(3))
  tf.train.Checkpoint(model=fresh).read(path).assert_consumed()
  np.testing.assert_array_equal(fresh.waypoint_cells.numpy(), cells)
  a = manager.step(obs, manager.initial_state(3), seed=1)
  b = fresh.step(obs, fresh.initial_state(3), seed=1)
  np.testing.assert_array_equal(a.log_prob.numpy(), b.log_prob.numpy())
  np.testing.assert_array_equal(fresh.waypoint_map().numpy(), manager.waypoint_map().numpy())
  assert fresh.waypoint_map().numpy().sum() == 10 and all(fresh.waypoint_map().numpy()[c] == 1 for c in cells)


def test_wn_manager_refuses_bad_arguments():
  with pytest.raises(ValueError, match=r'\[3, 2\]'):
    networks.WideNarrowManager(3, 5, grid_shape=GRID, sizes=SIZES, waypoint_cells=[(1, 1)])
  with pytest.raises(ValueError, match='distinct'):
    networks.WideNarrowManager(2, 5, grid_shape=GRID, sizes=SIZES, waypoint_cells=[(1, 1), (1, 1)])
  with pytest.raises(ValueError, match='odd'):
    networks.WideNarrowManager(3, 4, grid_shape=GRID, sizes=SIZES)


def test_fn_manager_masks_walls_and_samples_free_cells(small):
  obs, walls, _ = small
  keras.utils.set_random_seed(8)
  fn = networks.FullManager(grid_shape=GRID, sizes=SIZES).build_network()
  bias = np.where(walls.reshape(-1), 30.0, 0.0).astype(np.float32)     # push towards walls: the mask must win
  fn.cells.bias.assign(bias)
  o = np.repeat(obs[0], 40, axis=0)
  d = fn.step(o, fn.initial_state(len(o)))
  h, _ = fn.core(o[:1], fn.initial_state(1))
  logits = fn.cell_logits(h, o[:1]).numpy()[0]
  assert np.all(logits[walls.reshape(-1)] == networks.MASKED_LOGIT) and np.all(logits[~walls.reshape(-1)] > -1e3)
  cells = d.goal_cells.numpy()
  assert not walls[cells[:, 0], cells[:, 1]].any()
  np.testing.assert_array_equal(cells, d.narrow_cells.numpy())
  np.testing.assert_array_equal(fn.cell_to_index(cells).numpy(), d.action.numpy())
  roll = fn.unroll(obs, fn.initial_state(3), np.ones((6, 3), bool), np.full((6, 3), 14))
  assert roll.log_probs.shape == (6, 3)


# ------------------------------------------------------------------------------------------------ Manager loss

def manager_reference(rewards, done, decisions, log_probs, entropies, values, bootstrap, gamma, lam_v, beta):
  """Alg. 7 per env, backwards over every env step: R <- r_t + gamma R (R <- 0 first at an episode end); at a
  decision step loss += lam_v (R - V)^2 - A log pi - beta H with A = R - V. Mean over envs. Also returns A."""
  T, B = rewards.shape
  total = 0.0
  adv = np.zeros((T, B))
  for b in range(B):
    big_r = bootstrap[b]
    for t in reversed(range(T)):
      if done[t, b]:
        big_r = 0.0
      big_r = rewards[t, b] + gamma * big_r
      if decisions[t, b]:
        a = big_r - values[t, b]
        adv[t, b] = a
        total += lam_v * a ** 2 - a * log_probs[t, b] - beta * entropies[t, b]
  return total / B, adv


def traversal_trace():
  """T = 12, B = 2. Env 0: decision at t = 0, Worker steps 0-2, a traversal over env steps 3-7 (5 steps, no decision;
  a ball +1 is collected at step 5), decision at 8, Worker steps 8-11. Env 1: decisions at 0 and 4, its episode
  ends after step 6, a decision at 7 opens the next one."""
  T, B = 12, 2
  rewards = np.full((T, B), -0.01)
  rewards[5, 0] += 1.0
  rewards[2, 1] += 1.0
  done = np.zeros((T, B), bool)
  done[6, 1] = True
  decisions = np.zeros((T, B), bool)
  decisions[[0, 8], 0] = True
  decisions[[0, 4, 7], 1] = True
  rng = np.random.default_rng(9)
  garbage = 1e3
  log_probs = np.where(decisions, -rng.random((T, B)) * 3, garbage)
  entropies = np.where(decisions, rng.random((T, B)) * 2, garbage)
  values = np.where(decisions, rng.normal(size=(T, B)), garbage)
  return rewards, done, decisions, log_probs, entropies, values, np.array([0.7, -0.3])


def test_manager_loss_matches_alg7_on_a_trace_with_a_traversal():
  rewards, done, decisions, log_probs, entropies, values, boot = traversal_trace()
  gamma, lam_v, beta = 0.95, 0.5, 0.01
  want, adv = manager_reference(rewards, done, decisions, log_probs, entropies, values, boot, gamma, lam_v, beta)
  lp, ent, v = tf.Variable(log_probs), tf.Variable(entropies), tf.Variable(values)
  with tf.GradientTape() as tape:
    total, logs = feudal.manager_loss(rewards, done, decisions, lp, ent, v, boot, gamma=gamma, value_weight=lam_v,
                                      entropy_weight=beta)
  assert float(total) == pytest.approx(want, rel=1e-10)
  # The first decision of env 0 is credited with every reward of the 12 env steps, the traversal's ball included.
  r0 = sum(gamma ** k * rewards[k, 0] for k in range(12)) + gamma ** 12 * boot[0]
  assert adv[0, 0] == pytest.approx(r0 - values[0, 0])
  # Env 1's first decisions see only their episode (it ends after step 6).
  r4 = sum(gamma ** k * rewards[4 + k, 1] for k in range(3))
  assert adv[4, 1] == pytest.approx(r4 - values[4, 1])
  g_lp, g_ent, g_v = tape.gradient(total, [lp, ent, v])
  # Advantages and value targets exist only at the decision steps.
  np.testing.assert_allclose(g_lp.numpy(), np.where(decisions, -adv / 2, 0.0), rtol=1e-10, atol=1e-14)
  np.testing.assert_allclose(g_v.numpy(), np.where(decisions, -2 * lam_v * adv / 2, 0.0), rtol=1e-10, atol=1e-14)
  np.testing.assert_allclose(g_ent.numpy(), np.where(decisions, -beta / 2, 0.0), rtol=1e-10)
  assert float(logs['manager/decisions_per_env']) == pytest.approx(2.5)
  # 'mean' averages over the 5 decisions instead.
  mean, _ = feudal.manager_loss(rewards, done, decisions, log_probs, entropies, values, boot, gamma=gamma,
                                value_weight=lam_v, entropy_weight=beta, reduction='mean')
  assert float(mean) == pytest.approx(want * 2 / 5, rel=1e-10)


def test_manager_loss_bad_input():
  rewards, done, decisions, log_probs, entropies, values, boot = traversal_trace()
  with pytest.raises(ValueError, match='decision_mask'):
    feudal.manager_loss(rewards, done, decisions[:-1], log_probs, entropies, values, boot, gamma=0.95,
                        value_weight=0.5, entropy_weight=0.01)
  with pytest.raises(ValueError, match='bootstrap_value'):
    feudal.manager_loss(rewards, done, decisions, log_probs, entropies, values, boot[:1], gamma=0.95,
                        value_weight=0.5, entropy_weight=0.01)
