"""Phase 1: waypoint discovery with the goal-conditioned policy pi_g (thesis Alg. 6, Sec. 3.3.1-3.3.2, App. 3.C.1).

One iteration (`Explorer.iteration`), for B agents at once (spec Sec. 4.5):

  1. each agent restarts at a waypoint s_p drawn uniformly from V_p (`BatchMaze.set_agent`: the thesis replays the
     actions that reach s_p, T:L2341-2345, which in this deterministic world lands on the same cell);
  2. a T-step random walk from s_p, uniform over the moves that change the cell (spec Sec. 5.5); its end is g;
  3. back at s_p, pi_g(. | s, g) acts for at most T steps in the maze engine and stops on reaching g;
  4. pi_g's rewards are relabelled with the current VAE, r_t = 1[s_{t+1} = g] - lambda p_theta(a_t | s, z), a
     probability, not a log (T:L2353-2357; lambda = 0.05 [P]): actions the VAE already reconstructs pay less, which
     pushes pi_g toward behaviour the VAE cannot yet explain;
  5. one A2C step on pi_g's B rollouts (`core.actor_critic`, Ch. 2's values: gamma 0.95, tau 1, beta 0.01; lambda_v
     0.5 [P]; Adam 5e-4, eps 1e-3, clip 40; the loss averaged over the counted steps, spec Sec. 4.3), bootstrapping
     from V at the T-step cut;
  6. one VAE step and one multiplier step on the 2B sequences, walks and pi_g rollouts (`vae.VAETrainer`);
  7. the visited cells are recorded; every `waypoint_every` iterations V_p is re-selected: the 20% of the states
     with the largest prior mean, among the visited cells (`waypoints.select`, spec A13).

V_p starts as {(1, 1)} (Alg. 6). With `waypoints='random'` or a given list, V_p is fixed from the start and the VAE
is not trained (T:L2638-2642: V_rand is "the same pipeline" with random waypoints); pi_g still learns, since the
edges and the Chapter 3 Manager/Worker use it.

After the last iteration, `build_graph` forms the edges from the final V_p (graph.py: random walks claim edges, pi_g
adds `edge_policy_tries` paths per claimed edge, the shortest is kept).
"""

import dataclasses
from typing import Dict, Optional

import keras
import numpy as np
import tensorflow as tf

from rlcv_tf.core import actor_critic
from rlcv_tf.envs import maze as maze_lib
from rlcv_tf.envs import maze_layouts
from rlcv_tf.worldgraph import config as config_lib
from rlcv_tf.worldgraph import graph as graph_lib
from rlcv_tf.worldgraph import networks
from rlcv_tf.worldgraph import vae as vae_lib
from rlcv_tf.worldgraph import waypoints as waypoints_lib


def vae_config(cfg: config_lib.WorldGraphConfig, layout: maze_layouts.Layout) -> vae_lib.VAEConfig:
  h, w = layout.walls.shape
  return vae_lib.VAEConfig(height=h, width=w, num_actions=4, horizon=cfg.horizon, mu0=cfg.mu0,
                           state_embedding=cfg.state_embedding, state_hidden=cfg.state_hidden,
                           lstm_units=cfg.lstm_units, learning_rate=cfg.vae_learning_rate,
                           kl_terms=cfg.kl_num_terms, lagrange_mode=cfg.lagrange_mode)


@dataclasses.dataclass
class Rollouts:
  """pi_g's B rollouts of one iteration, time-major, padded to T steps."""
  observations: np.ndarray      # uint8 [T, B, H, W, 9]
  goals: np.ndarray             # int [B, 2]
  cells: np.ndarray             # int [B, T + 1, 2]: s_0..s_T (after the end: the last cell repeated)
  actions: np.ndarray           # int [T, B]
  reached: np.ndarray           # bool [T, B]: s_{t+1} = g
  live: np.ndarray              # bool [T, B]: step t was taken (the goal not reached before it)
  lengths: np.ndarray           # int [B]: steps taken (T_n)
  bootstrap_value: np.ndarray   # [B]: V(o_T) for rollouts cut at T (0 for those that reached g)


class Explorer:
  """Alg. 6's state (maze engine, VAE, pi_g, V_p, visited cells) and one iteration of it; see the module docstring.

  `checkpoint_objects()` lists what a tf.train.Checkpoint must hold to resume (networks, optimisers, multipliers,
  V_p, visited, the iteration; random draws are functions of (seed, iteration)).
  """

  def __init__(self, cfg: config_lib.WorldGraphConfig, fixed_waypoints: Optional[np.ndarray] = None):
    self.cfg = cfg
    self.layout = maze_layouts.load_maze(cfg.maze)
    self.walls = self.layout.walls
    self.grid_shape = self.walls.shape
    self.num_free = int((~self.walls).sum())
    self.num_waypoints = waypoints_lib.waypoint_count(self.num_free, cfg.waypoint_fraction)
    self.env = maze_lib.BatchMaze(cfg.num_envs, self.layout, 'goalreach', seeds=cfg.seed, max_steps=cfg.horizon)
    self.learned = fixed_waypoints is None
    keras.utils.set_random_seed(cfg.seed)             # the networks' initial weights follow the run's seed
    self.vae = vae_lib.WaypointVAE(vae_config(cfg, self.layout))
    self.vae_trainer = vae_lib.VAETrainer(self.vae, self.vae.cfg)
    self.pi_g = networks.GoalPolicy(self.grid_shape, 4, cfg.network_sizes).build_network()
    self.pi_g_optimizer = keras.optimizers.Adam(cfg.policy_learning_rate, epsilon=cfg.policy_epsilon)
    self.pi_g_optimizer.build(self.pi_g.trainable_variables)
    # Run state kept in variables so that a checkpoint restores it exactly.
    self.iteration_var = tf.Variable(0, dtype=tf.int64, trainable=False, name='iteration')
    start = np.array([maze_layouts.START], np.int64) if self.learned else np.asarray(fixed_waypoints, np.int64)
    self.waypoints_var = tf.Variable(np.zeros((0, 2), np.int64), shape=tf.TensorShape([None, 2]), trainable=False,
                                     name='waypoints')
    self.waypoints_var.assign(start)
    visited = np.zeros(self.grid_shape, bool)
    visited[maze_layouts.START] = True
    self.visited_var = tf.Variable(visited, trainable=False, name='visited')
    self._act = tf.function(self._act_step, reduce_retracing=True)
    self._train_pi_g = tf.function(self._pi_g_step, reduce_retracing=True)
    self._relabel = tf.function(lambda cells, actions, lengths, seed: vae_lib.relabel_probabilities(
        self.vae, cells, actions, lengths, seed), reduce_retracing=True)

  # ----------------------------------------------------------------- state
  @property
  def waypoints(self) -> np.ndarray:
    return self.waypoints_var.numpy()

  @property
  def visited(self) -> np.ndarray:
    return self.visited_var.numpy()

  @property
  def iteration_count(self) -> int:
    return int(self.iteration_var.numpy())

  def checkpoint_objects(self) -> Dict[str, object]:
    return dict(vae=self.vae, vae_optimizer=self.vae_trainer.optimizer, multipliers=self.vae_trainer.multipliers,
                pi_g=self.pi_g, pi_g_optimizer=self.pi_g_optimizer, iteration=self.iteration_var,
                waypoints=self.waypoints_var, visited=self.visited_var)

  def _rng(self) -> np.random.Generator:
    """This iteration's generator: a function of (seed, iteration), so a resumed run draws what it would have."""
    return np.random.default_rng([self.cfg.seed, self.iteration_count, 7])

  def _seed(self, *parts) -> tf.Tensor:
    return tf.constant([self.cfg.seed * 100_003 + self.iteration_count, sum((i + 1) * p for i, p in
                                                                            enumerate(parts))], tf.int32)

  # ----------------------------------------------------------------- pi_g
  def _act_step(self, observation, goal_plane, state, reset, seed):
    out = self.pi_g.step(observation, goal_plane, state, reset)
    action = networks.categorical(out.logits).sample(seed=seed)
    return action, out.value, out.state

  def rollout_policy(self, starts: np.ndarray, goals: np.ndarray, seed_offset: int = 0,
                     horizon: Optional[int] = None) -> Rollouts:
    """pi_g from `starts` toward `goals` (int [B, 2], start != goal) for at most `horizon` steps in the engine."""
    horizon = horizon or self.cfg.horizon
    n = len(starts)
    env = self.env if n == self.cfg.num_envs else maze_lib.BatchMaze(n, self.layout, 'goalreach', seeds=0,
                                                                      max_steps=horizon)
    ids = np.arange(n)
    env.reset(ids)
    env.set_goal(ids, goals)
    obs = env.set_agent(ids, starts)
    goal_plane = networks.goal_planes(goals, self.grid_shape)
    state = self.pi_g.initial_state(n)
    reset = tf.ones([n], tf.bool)
    h, w = self.grid_shape
    observations = np.zeros((horizon, n, h, w, maze_lib.NUM_PLANES), np.uint8)
    actions = np.zeros((horizon, n), np.int64)
    reached = np.zeros((horizon, n), bool)
    live = np.zeros((horizon, n), bool)
    cells = np.zeros((n, horizon + 1, 2), np.int64)
    cells[:, 0] = starts
    alive = np.ones(n, bool)
    for t in range(horizon):
      observations[t] = obs
      action, _, state = self._act(tf.constant(obs), goal_plane, state, reset, self._seed(seed_offset, t, 1))
      reset = tf.zeros([n], tf.bool)
      action = action.numpy().astype(np.int64)
      before = env.agent.copy()
      obs, _, _, _, _ = env.step(action)
      after = graph_lib.step_cells(self.walls, before, action)        # the move itself (auto-reset hides it)
      live[t] = alive
      actions[t] = np.where(alive, action, 0)
      hit = alive & np.all(after == goals, axis=1)
      reached[t] = hit
      cells[:, t + 1] = np.where(alive[:, None], after, cells[:, t])
      alive &= ~hit
      if not alive.any():
        break
    lengths = live.sum(axis=0)
    # V(o_T) of the rollouts cut at T: one more step of pi_g on the observation reached (its LSTM state carried).
    bootstrap = np.zeros(n, np.float32)
    if alive.any():
      _, value, _ = self._act(tf.constant(obs), goal_plane, state, tf.zeros([n], tf.bool), self._seed(seed_offset, 99))
      bootstrap = np.where(alive, value.numpy(), 0.0).astype(np.float32)
    return Rollouts(observations, np.asarray(goals, np.int64), cells, actions, reached, live, lengths, bootstrap)

  def _pi_g_step(self, observations, goal_plane, actions, rewards, done, mask, bootstrap_value):
    t = tf.shape(observations)[0]
    goal_planes = tf.repeat(goal_plane[None], t, axis=0)
    with tf.GradientTape() as tape:
      n = tf.shape(observations)[1]
      reset = tf.concat([tf.ones([1, n], tf.bool), tf.zeros([t - 1, n], tf.bool)], axis=0)
      out = self.pi_g.unroll(observations, goal_planes, self.pi_g.initial_state(n), reset)
      loss, logs = actor_critic.actor_critic_loss(
          out.logits, out.values, actions, rewards, done, bootstrap_value, gamma=self.cfg.gamma,
          gae_lambda=self.cfg.gae_lambda, value_weight=self.cfg.value_weight, entropy_weight=self.cfg.entropy_weight,
          mask=mask, reduction='mean')
    grads = tape.gradient(loss, self.pi_g.trainable_variables)
    grads, norm = tf.clip_by_global_norm(grads, self.cfg.policy_clip)
    self.pi_g_optimizer.apply_gradients(zip(grads, self.pi_g.trainable_variables))
    logs = {f'pi_g/{k.replace("/", "_")}': v for k, v in logs.items()}
    logs['pi_g/grad_norm'] = norm
    return logs

  # ----------------------------------------------------------------- one iteration of Alg. 6
  def iteration(self) -> Dict[str, float]:
    cfg, rng = self.cfg, self._rng()
    b, horizon = cfg.num_envs, cfg.horizon
    vp = self.waypoints
    starts = vp[rng.integers(len(vp), size=b)]
    walk_cells, walk_actions = graph_lib.random_walks(self.walls, starts, horizon, rng)
    goals = walk_cells[:, -1].copy()
    # A walk that ends where it started gives pi_g nothing to do: its goal is the last cell it stood on that differs.
    same = np.all(goals == starts, axis=1)
    for i in np.nonzero(same)[0]:
      other = np.nonzero(np.any(walk_cells[i] != starts[i], axis=1))[0]
      goals[i] = walk_cells[i, other[-1]]
    rollouts = self.rollout_policy(starts, goals)

    # Curiosity relabelling with the current VAE (no gradient), then the A2C step.
    lengths = np.maximum(rollouts.lengths, 1)
    if self.learned:
      probs = self._relabel(tf.constant(rollouts.cells, tf.int32), tf.constant(rollouts.actions.T, tf.int32),
                            tf.constant(lengths, tf.int32), self._seed(2)).numpy()
    else:
      probs = np.zeros((b, horizon), np.float32)
    rewards = rollouts.reached.astype(np.float32) - cfg.curiosity_weight * probs.T * rollouts.live
    logs = self._train_pi_g(tf.constant(rollouts.observations), networks.goal_planes(goals, self.grid_shape),
                            tf.constant(rollouts.actions), tf.constant(rewards), tf.constant(rollouts.reached),
                            tf.constant(rollouts.live), tf.constant(rollouts.bootstrap_value))
    logs = {k: float(v) for k, v in logs.items()}
    logs['pi_g/success'] = float(rollouts.reached.any(axis=0).mean())
    logs['pi_g/steps'] = float(rollouts.lengths.mean())

    if self.learned:
      cells = np.concatenate([walk_cells, rollouts.cells])
      actions = np.concatenate([walk_actions, rollouts.actions.T])
      seq_lengths = np.concatenate([np.full(b, horizon), lengths])
      vae_logs = self.vae_trainer.step(cells, actions, seq_lengths, seed=self._seed(3))
      logs.update({k: float(v) for k, v in vae_logs.items()})

    visited = self.visited
    visited[walk_cells[..., 0], walk_cells[..., 1]] = True
    visited[rollouts.cells[..., 0], rollouts.cells[..., 1]] = True
    self.visited_var.assign(visited)
    self.iteration_var.assign_add(1)
    if self.learned and self.iteration_count % cfg.waypoint_every == 0:
      self.refresh_waypoints()
    logs['explore/visited'] = float(visited.sum())
    logs['explore/visited_fraction'] = float(visited.sum()) / self.num_free
    logs['explore/waypoints'] = float(len(self.waypoints))
    return logs

  def refresh_waypoints(self) -> np.ndarray:
    """V_p <- the top 20% of the visited cells by prior mean (spec Sec. 4.6)."""
    chosen = waypoints_lib.select(lambda cells: self.vae.prior_mean(tf.constant(cells)).numpy(), self.walls,
                                  self.visited, self.num_waypoints)
    self.waypoints_var.assign(chosen)
    return chosen

  def prior_means(self) -> np.ndarray:
    """float [H, W]: the prior mean of every free cell (NaN on walls), for the waypoint pictures."""
    cells = np.argwhere(~self.walls)
    out = np.full(self.grid_shape, np.nan, np.float32)
    out[cells[:, 0], cells[:, 1]] = self.vae.prior_mean(tf.constant(cells)).numpy()
    return out

  # ----------------------------------------------------------------- edges
  def build_graph(self) -> graph_lib.WorldGraph:
    """Edges over the current V_p: random-walk claims, pi_g paths for the claimed pairs, shortest kept."""
    cfg, nodes = self.cfg, self.waypoints
    edge_seed = [cfg.seed, 1_000_003]
    policy_paths = {}
    if cfg.edge_policy_tries > 0:
      claims = graph_lib.claim_edges(self.walls, nodes, cfg.edge_walks, cfg.edge_walk_length,
                                     np.random.default_rng(edge_seed))
      pairs = [pair for pair in claims for _ in range(cfg.edge_policy_tries)]
      if pairs:
        starts = np.array([nodes[i] for i, _ in pairs])
        goals = np.array([nodes[j] for _, j in pairs])
        rollouts = self.rollout_policy(starts, goals, seed_offset=17)
        for k, pair in enumerate(pairs):
          if rollouts.reached[:, k].any():
            policy_paths.setdefault(pair, []).append(list(rollouts.actions[:rollouts.lengths[k], k]))
    return graph_lib.form_edges(self.walls, nodes, cfg.edge_walks, cfg.edge_walk_length,
                                np.random.default_rng(edge_seed), policy_paths=policy_paths,
                                maze_name=self.layout.name)
