"""Chapter 3, phase 2: the Feudal hierarchy with Wide-then-Narrow goals and world-graph traversal (thesis Sec. 3.4,
App. 3.C.2-3.C.3, Alg. 7; spec ch3 Sec. 4.3-4.4, 4.9-4.11, A8, A10-A12, A16), and its flat A2C / FN baselines.
Thesis citations are T:Lnnnn (lines of shared/seeds/000_c47052dd0852ee6d.txt); [P] marks the spec's proposals.

Variants (`FeudalConfig.model`, spec Sec. 4.10): 'wn' = WideNarrowManager + Worker (g^w in V_p, g^n in the N x N
window round g^w); 'fn' = FullManager + Worker with g^w = g^n (one goal over the free cells; no traversal; the
Worker rules below with g^w = g^n, spec Sec. 3.7, so an arrival pays R_w + R_n); 'a2c' = FlatA2C alone on the env
reward. `pig_init` copies pi_g's state encoder into every network
(`networks.transfer_state_encoder`; for the Worker also pi_g's goal kernel into the narrow-goal plane, spec Sec.
3.4 [P]); `traversal` (wn only) adds the world-graph macro action of traversal.py.

Rollout (`Runner.step`, one env step of all B envs in one BatchMaze.step; spec Sec. 4.9, T:L2979-2998):
  decision     envs that need a subgoal pair and are not traversing: the Manager's LSTM advances (only here, Alg. 7)
               and samples (g^w, g^n); the Worker's LSTM is reset for the new pair [P]; reached_w <- False; k <- 0.
               A pair is needed at an episode start, when g^n was reached, when k >= c, and after an abort.
  Worker step  the Worker (or flat A2C) samples a; the env steps; k += 1; the Worker's reward is -cost (own action,
               T:L2993-2995), + R_w on the first arrival at g^w (T:L2988), + R_n on arrival at g^n, which ends the
               horizon (terminal for the Worker's return, T:L2990-2991, spec A12); k >= c ends the horizon too
               (T:L2997-2998). If instead the step lands on a waypoint with a path to g^w not reached yet (and
               s' != g^n), a traversal starts (T:L2981-2984).
  traversal    traversal.py: one env step per traversal action; env reward to the Manager's stream, nothing to the
               Worker, not counted in k. The whole traversal is ONE Worker transition (macro step) that started
               with the triggering Worker action; on arrival it is credited R_w (spec A11), then g^n and k >= c are
               checked as after a Worker step. An abort ends the horizon (terminal for the Worker) and asks for a new
               pair (T:L2985-2986).
  episode end  (exit, lava, time limit; BatchMaze auto-resets): a new pair follows; the Manager's LSTM is reset for
               the new episode (the flat A2C's too). Termination cuts the returns; truncation (time limit)
               bootstraps: the Worker from V_w(last observation) (a masked transition holding it, see below), the
               Manager from V_m(last observation) by a tentative LSTM step at that env step.

Iteration (`HRLTrainer.iteration`; spec Sec. 4.9): env steps until every env has made `worker_steps` (60,
T:L3089) Worker decisions (a traversal is one decision) and no traversal is under way; envs that reach 60 first go
on deciding (their extra transitions are used too), and once all have 60 no new traversal starts (so an iteration
always ends between macro steps and checkpoints hold no half-done traversal). Episodes carry over between
iterations. Then one Worker A2C update (`core/actor_critic`, spec Sec. 4.3) over each env's Worker transitions
(padded to the longest; the masked entry after an env's last transition holds the observation reached, which gives
V_w of the bootstrap through the LSTM) and one Manager update (`manager_loss`, below) over all env steps with the
decision mask; the Manager network itself runs only on its decisions (`manager_unroll`: its LSTM is held between
decisions, so the env steps in between add nothing but rewards) and its outputs are scattered back to env time
for the loss. Separate Adam optimisers (lr 5e-4, eps 1e-3, global-norm clip 40; T-inh, spec Sec. 6). The flat A2C
takes exactly 60 env steps and one A2C update on the env reward.

Randomness: keras.utils.set_random_seed(seed) before the networks are built; every sample (Manager, Worker, pi_g)
uses a stateless seed made from (seed, iteration, env step, stream); the training envs are seeded
train_seed_base + 10^4 seed + i (spec Sec. 4.11: train seeds >= 10^6). So a seed gives the same run, and a checkpoint
(`checkpoint_objects`: networks, optimisers, the iteration, the LSTM and subgoal state of every env, and the
BatchMaze's arrays and generator states) resumes it exactly.

Evaluation (`evaluate`, spec Sec. 4.11, T:L2596-2601): full episodes with sampled actions on given env seeds
(validation 1000-1009, test 2000-2099); the score is the mean episode return on the MultiGoal tasks and the
success rate (exit reached) on Door-Key. Choosing the best of the validation checks and the mean +- std over
training seeds (spec A16) are the run loop's.

Manager loss (Alg. 7, spec §4.4). S_m = the env-time indices at which the Manager emitted a subgoal pair. Its reward
r_t is the env reward at EVERY env step, Worker steps and traversal steps included [T]. Over a rollout of T env
steps (time-major [T, B] as `core/returns.py`):

    R <- 0 if terminal else V_m(s_T)          # bootstrap: the value head on a tentative LSTM step, not committed
    for t = T-1 .. 0:
        R <- r_t + gamma (1 - done_t) R
        if t in S_m:
            A = R - V_m,t
            loss += lambda_V A^2 - stop_grad(A) [log pi^w(g^w_t) + log pi^n(g^n_t | g^w_t)]
                    - beta_H [H(pi^w_t) + H(pi^n_t(. | g^w_t))]

so the value at a decision regresses on the discounted return over all env steps after it (the Worker's actions
and rewards and any traversal), "the t_m-step discounted return covering all Worker actions and rewards" [T].
An episode end inside the rollout (done_t) cuts R there, as in Alg. 1. log-probs, entropies and values are given in
env time [T, B] and read only at decision steps (other entries may hold anything finite). For the FN baseline the
same loss applies with the one categorical's log-prob and entropy. A time-limit truncation at step t enters as
done_t with r_t + gamma V_m(last observation) (`manager_targets`).

Reduction, as `core/actor_critic` ('sum_time': summed over the decision steps of the rollout, averaged over the B
envs, Alg. 7's "loss +=" per env; 'mean': averaged over all decisions in the batch).
"""

from typing import Any, Dict, List, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from rlcv_tf.core import actor_critic
from rlcv_tf.core import returns
from rlcv_tf.envs import maze as maze_lib
from rlcv_tf.envs import maze_layouts
from rlcv_tf.worldgraph import config as config_lib
from rlcv_tf.worldgraph import graph as graph_lib
from rlcv_tf.worldgraph import networks
from rlcv_tf.worldgraph import traversal as traversal_lib


def manager_loss(rewards, done, decision_mask, log_probs, entropies, values_at_decisions, bootstrap_value, *,
                 gamma: float, value_weight: float, entropy_weight: float, reduction: str = 'sum_time'
                 ) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
  """Alg. 7's Manager loss (module docstring) and its parts for logging.

  Args:
    rewards: env rewards r_t at every env step, [T, B].
    done: bool [T, B], the episode terminated right after env step t.
    decision_mask: bool [T, B], t in S_m (the Manager emitted a pair at the observation of step t).
    log_probs: joint log pi^w(g^w_t) + log pi^n(g^n_t | g^w_t) at the decisions, [T, B] (env time).
    entropies: H(pi^w_t) + H(pi^n_t(. | g^w_t)), [T, B].
    values_at_decisions: V_m,t, [T, B].
    bootstrap_value: V_m(s_T), [B] (gradient stopped; ignored where the last step is terminal).
    gamma, value_weight, entropy_weight: gamma, lambda_V, beta_H.
    reduction: 'sum_time' or 'mean'.

  Returns:
    (total loss, {name: scalar}): loss/value, loss/policy, loss/entropy, loss/total, and means over the decisions
    of the entropy, V_m, R and A, and the number of decisions per env.
  """
  actor_critic.check_reduction(reduction)
  values = tf.convert_to_tensor(values_at_decisions)
  if values.shape.rank != 2:
    raise ValueError(f'values_at_decisions must be env-time [T, B], got shape {values.shape}')
  shaped = {'rewards': rewards, 'done': done, 'decision_mask': decision_mask, 'log_probs': log_probs,
            'entropies': entropies}
  for name, x in shaped.items():
    shape = tf.convert_to_tensor(x).shape
    if not shape.is_compatible_with(values.shape):
      raise ValueError(f'{name} has shape {shape}; values_at_decisions has {values.shape}: all must be env-time '
                       f'[T, B]')
  bootstrap_value = tf.convert_to_tensor(bootstrap_value)
  if not bootstrap_value.shape.is_compatible_with(values.shape[1:]):
    raise ValueError(f'bootstrap_value must be V_m(s_T) of shape {values.shape[1:]}, got {bootstrap_value.shape}')
  dtype = values.dtype
  weights = tf.cast(tf.cast(decision_mask, tf.bool), dtype)
  discounts = returns.discounts_from_done(done, gamma, dtype)
  # R over every env step; `values` is not read (no bootstrap-only steps), only shapes and dtype.
  big_r = returns.discounted_returns(tf.cast(rewards, dtype), discounts, values, bootstrap_value)
  # The advantage exists at decision steps only; the mask keeps garbage elsewhere out of it.
  advantages = tf.stop_gradient(tf.where(weights > 0, big_r - values, tf.zeros_like(values)))
  log_probs = tf.cast(log_probs, dtype)
  entropies = tf.cast(entropies, dtype)
  value_loss, policy_loss, entropy_loss, total = actor_critic.loss_terms(
      big_r, values, log_probs, advantages, entropies, weights, value_weight=value_weight,
      entropy_weight=entropy_weight, reduction=reduction)
  count = tf.maximum(tf.reduce_sum(weights), 1.0)
  logs = {
      'manager/loss/value': value_loss,
      'manager/loss/policy': policy_loss,
      'manager/loss/entropy': entropy_loss,
      'manager/loss/total': total,
      'manager/entropy': tf.reduce_sum(entropies * weights) / count,
      'manager/value_mean': tf.reduce_sum(values * weights) / count,
      'manager/return_mean': tf.reduce_sum(big_r * weights) / count,
      'manager/advantage_mean': tf.reduce_sum(advantages * weights) / count,
      'manager/decisions_per_env': tf.reduce_sum(weights) / tf.cast(tf.shape(weights)[1], dtype),
  }
  return total, logs


# ---------------------------------------------------------------------------------------------------------------
# Helpers.

EVAL_SEED_TAG = 7_777_777            # keeps evaluation's sampling seeds apart from training's
_MAX_STEPS_PER_DECISION = 64         # an iteration longer than worker_steps * this is a bug, not a run


def agent_cells(observations) -> np.ndarray:
  """int64 [B, 2]: the agent's cell in each observation [B, H, W, 9] (its agent plane)."""
  obs = np.asarray(observations)
  b, h, w = obs.shape[:3]
  flat = obs[..., maze_lib.AGENT_PLANE].reshape(b, h * w).argmax(axis=1)
  return np.stack([flat // w, flat % w], axis=1).astype(np.int64)


def stateless_seed(*parts) -> tf.Tensor:
  """An int32 [2] stateless sampling seed made from non-negative integer parts."""
  words = np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint32)
  return tf.constant((words >> 1).astype(np.int32))


def manager_targets(rewards, terminated, truncated, truncation_values, gamma: float) -> Tuple[np.ndarray, np.ndarray]:
  """(rewards, done) for `manager_loss` [T, B]: a time-limit truncation at step t becomes done_t with reward
  r_t + gamma V_m(last observation of that episode); terminations stay done with r_t; other steps pass through."""
  rewards = np.asarray(rewards, np.float32)
  truncated = np.asarray(truncated, bool)
  terminated = np.asarray(terminated, bool)
  cut = truncated & ~terminated
  out = rewards + np.where(cut, np.float32(gamma) * np.asarray(truncation_values, np.float32), 0.0)
  return out.astype(np.float32), terminated | truncated


# ---------------------------------------------------------------------------------------------------------------
# The networks of one variant and their acting steps.

class Policies:
  """One phase-2 variant (cfg.model): its networks, the pi_g transfer, traversal settings and acting steps.

  worker: networks.Worker (fn, wn) or networks.FlatA2C (a2c); manager: WideNarrowManager (wn), FullManager (fn) or
  None; graph: the WorldGraph (wn: its nodes are V_p, in index order); pi_g: phase 1's GoalPolicy or None.
  """

  def __init__(self, cfg: config_lib.FeudalConfig, layout: maze_layouts.Layout, num_actions: int,
               graph: Optional[graph_lib.WorldGraph] = None, pi_g: Optional[networks.GoalPolicy] = None):
    cfg.validate()
    self.cfg = cfg
    self.layout = layout
    self.grid_shape = tuple(int(d) for d in layout.walls.shape)
    self.num_actions = int(num_actions)
    self.graph = graph
    self.pi_g = pi_g
    self.hierarchical = cfg.model != 'a2c'
    if cfg.model == 'wn' and graph is None:
      raise ValueError('--model=wn needs the world graph (phase 1\'s graph.json, --graph_from=...): its waypoints '
                       'are the wide goals')
    if graph is not None and not np.array_equal(graph.walls, np.asarray(layout.walls, bool)):
      raise ValueError(f'the world graph was made on maze {graph.maze_name!r}, not on --maze={cfg.maze}: use the '
                       'phase-1 run of this maze')
    if cfg.pig_init and pi_g is None:
      raise ValueError('--pig_init needs pi_g (phase 1\'s goal-conditioned policy, from --graph_from); pass '
                       '--nopig_init to start from scratch')
    if pi_g is not None and tuple(pi_g.grid_shape) != self.grid_shape:
      raise ValueError(f'pi_g is built for a {pi_g.grid_shape} grid, --maze={cfg.maze} is {self.grid_shape}: use '
                       'pi_g from the same maze')
    sizes = cfg.network_sizes
    keras.utils.set_random_seed(cfg.seed)          # the initial weights follow the run's seed
    if cfg.model == 'a2c':
      self.worker = networks.FlatA2C(self.grid_shape, self.num_actions, sizes).build_network()
      self.manager = None
    else:
      self.worker = networks.Worker(self.grid_shape, self.num_actions, sizes).build_network()
      if cfg.model == 'fn':
        self.manager = networks.FullManager(grid_shape=self.grid_shape, sizes=sizes).build_network()
      else:
        self.manager = networks.WideNarrowManager(graph.num_nodes, cfg.window, grid_shape=self.grid_shape,
                                                  sizes=sizes, waypoint_cells=np.array(graph.nodes)).build_network()
    self.transferred: Tuple[str, ...] = ()
    if cfg.pig_init:
      goal_plane = networks.Worker.NARROW_PLANE if isinstance(self.worker, networks.Worker) else None
      self.transferred = networks.transfer_state_encoder(pi_g, self.worker, goal_plane=goal_plane)
      if self.manager is not None:
        self.transferred += networks.transfer_state_encoder(pi_g, self.manager)
    self.traversal_mode: Optional[str] = None
    if cfg.traversal:
      mode = cfg.traversal_mode
      if mode == 'auto':
        mode = 'policy' if cfg.task == 'multigoal_stochastic' and pi_g is not None else 'replay'
      if mode == 'policy' and pi_g is None:
        raise ValueError('--traversal_mode=policy needs pi_g (from --graph_from); use --traversal_mode=replay')
      self.traversal_mode = mode
    self._manager_act = tf.function(self._manager_act_fn, reduce_retracing=True)
    self._manager_value = tf.function(self._manager_value_fn, reduce_retracing=True)
    self._worker_act = tf.function(self._worker_act_fn, reduce_retracing=True)
    self.pig_act = None
    if pi_g is not None:
      self.pig_act = tf.function(self._pig_act_fn, reduce_retracing=True)

  # tf.function bodies
  def _manager_act_fn(self, obs, h, c, reset, commit, seed):
    d = self.manager.step(obs, {'h': h, 'c': c}, reset, seed=seed)
    narrow = d.action if d.narrow_index is None else d.narrow_index
    keep = commit[:, None]
    return (tf.cast(d.action, tf.int32), tf.cast(narrow, tf.int32), tf.cast(d.goal_cells, tf.int32),
            tf.cast(d.narrow_cells, tf.int32), tf.where(keep, d.state['h'], h), tf.where(keep, d.state['c'], c))

  def _manager_value_fn(self, obs, h, c):
    return self.manager.bootstrap_value(obs, {'h': h, 'c': c})

  def _worker_act_fn(self, obs, wide, narrow, h, c, reset, commit, seed):
    extra = networks.worker_planes(wide, narrow, self.grid_shape) if self.hierarchical else None
    out = self.worker.step(obs, extra, {'h': h, 'c': c}, reset)
    action = networks.categorical(out.logits).sample(seed=seed)
    keep = commit[:, None]
    return tf.cast(action, tf.int32), tf.where(keep, out.state['h'], h), tf.where(keep, out.state['c'], c)

  def _pig_act_fn(self, obs, goal_cells, h, c, reset, seed):
    out = self.pi_g.step(obs, networks.goal_planes(goal_cells, self.grid_shape), {'h': h, 'c': c}, reset)
    action = networks.categorical(out.logits).sample(seed=seed)
    return tf.cast(action, tf.int32), out.state['h'], out.state['c']

  # NumPy-facing acting steps
  def manager_act(self, obs, state, reset, commit, seed):
    """(wide [B] (WN: g^w index; FN: flat cell index), narrow [B] (WN: window index; FN: = wide), g^w cells [B, 2],
    g^n cells [B, 2], state): a decision in every env (the caller keeps the deciders'); the state is advanced
    only where `commit` [B] (the deciders) and kept elsewhere."""
    wide, narrow, wide_cells, narrow_cells, h, c = self._manager_act(
        tf.constant(obs), state['h'], state['c'], tf.constant(np.asarray(reset, bool)),
        tf.constant(np.asarray(commit, bool)), seed)
    return (wide.numpy().astype(np.int64), narrow.numpy().astype(np.int64), wide_cells.numpy().astype(np.int64),
            narrow_cells.numpy().astype(np.int64), {'h': h, 'c': c})

  def manager_value(self, obs, state) -> np.ndarray:
    """V_m [B] after a tentative (not committed) LSTM step on `obs`."""
    return self._manager_value(tf.constant(obs), state['h'], state['c']).numpy()

  def worker_act(self, obs, wide_cells, narrow_cells, state, reset, commit, seed):
    """(actions [B], state): the Worker on (g^w, g^n), or the flat A2C (the cells are ignored); the LSTM state
    is advanced where `commit` [B] (the envs that act) and kept elsewhere."""
    action, h, c = self._worker_act(tf.constant(obs), tf.constant(np.asarray(wide_cells), tf.int32),
                                    tf.constant(np.asarray(narrow_cells), tf.int32), state['h'], state['c'],
                                    tf.constant(np.asarray(reset, bool)), tf.constant(np.asarray(commit, bool)),
                                    seed)
    return action.numpy().astype(np.int64), {'h': h, 'c': c}

  def initial_manager_state(self, batch: int):
    return None if self.manager is None else self.manager.initial_state(batch)


# ---------------------------------------------------------------------------------------------------------------
# The rollout state machine.

class Transition:
  """One Worker transition (a macro step when it holds a traversal); `counted` False = a masked entry that only
  carries an observation for a bootstrap value."""
  __slots__ = ('obs', 'wide', 'narrow', 'action', 'reset', 'reward', 'done', 'counted', 'traversal')

  def __init__(self, obs, wide, narrow, action, reset, reward, counted=True):
    self.obs, self.wide, self.narrow = obs, tuple(int(x) for x in wide), tuple(int(x) for x in narrow)
    self.action, self.reset, self.reward = int(action), bool(reset), float(reward)
    self.done, self.counted, self.traversal = False, bool(counted), 0


class Recorder:
  """What one iteration saw: the Manager's env-time stream, each env's Worker transitions, decisions and counts."""

  COUNTS = ('worker_steps', 'traversal_steps', 'decisions', 'wide_reached', 'narrow_reached', 'timeouts',
            'traversals', 'arrived', 'aborted', 'cut')

  def __init__(self, num_envs: int, store: bool = True):
    self.store = bool(store)      # False: counts and episodes only (evaluation)
    self.obs: List[np.ndarray] = []
    self.rewards: List[np.ndarray] = []
    self.terminated: List[np.ndarray] = []
    self.truncated: List[np.ndarray] = []
    self.truncation_values: List[np.ndarray] = []
    self.decisions: List[np.ndarray] = []
    self.wide: List[np.ndarray] = []
    self.narrow: List[np.ndarray] = []
    self.manager_reset: List[np.ndarray] = []
    self.traversing: List[np.ndarray] = []
    self.worker: List[List[Transition]] = [[] for _ in range(num_envs)]
    self.made = np.zeros(num_envs, np.int64)       # Worker decisions (counted transitions) per env
    self.decision_cells: List[Tuple[int, Tuple[int, int], Tuple[int, int], np.ndarray]] = []
    self.counts = {k: 0 for k in self.COUNTS}
    self.episodes: List[Dict[str, float]] = []

  @property
  def env_steps(self) -> int:
    return len(self.rewards)


class Runner:
  """B envs of one BatchMaze driven by `Policies`, one env step per `step` (module docstring's rollout)."""

  STATE_ARRAYS = ('need_decision', 'manager_reset', 'worker_reset', 'wide', 'narrow', 'wide_cell', 'narrow_cell',
                  'reached', 'k')

  def __init__(self, policies: Policies, env: maze_lib.BatchMaze, seed_fn):
    """seed_fn(step, stream) -> an int32 [2] stateless seed."""
    if tuple(env.observation_shape[:2]) != policies.grid_shape:
      raise ValueError(f'env grid {env.observation_shape[:2]} differs from the networks\' {policies.grid_shape}')
    self.p = policies
    self.env = env
    self.b = env.num_envs
    self.seed_fn = seed_fn
    cfg = policies.cfg
    self.horizon = cfg.horizon
    self.wide_reward, self.narrow_reward, self.step_cost = cfg.wide_reward, cfg.narrow_reward, cfg.worker_step_cost
    self.traversals = None
    if policies.traversal_mode is not None:
      self.traversals = traversal_lib.Traversals(policies.graph, self.b, mode=policies.traversal_mode,
                                                 pi_g=policies.pi_g, act_fn=policies.pig_act,
                                                 limit_scale=cfg.traversal_limit_scale,
                                                 limit_extra=cfg.traversal_limit_extra)
    self.step_count = 0
    self.reset_state()
    self.obs = env.observe()

  def reset_state(self) -> None:
    """Every env needs a new pair and fresh LSTM states (a run's or an evaluation's start)."""
    b = self.b
    self.need_decision = np.ones(b, bool)
    self.manager_reset = np.ones(b, bool)
    self.worker_reset = np.ones(b, bool)
    self.wide = np.full(b, -1, np.int64)
    self.narrow = np.zeros(b, np.int64)
    self.wide_cell = np.zeros((b, 2), np.int64)
    self.narrow_cell = np.zeros((b, 2), np.int64)
    self.reached = np.zeros(b, bool)
    self.k = np.zeros(b, np.int64)
    self.manager_state = self.p.initial_manager_state(b)
    self.worker_state = self.p.worker.initial_state(b)
    self.open: List[Optional[Transition]] = [None] * b
    if self.traversals is not None:
      self.traversals.cancel(np.ones(b, bool))

  @property
  def traversing(self) -> np.ndarray:
    return self.traversals.active if self.traversals is not None else np.zeros(self.b, bool)

  def _seed(self, stream: int):
    return self.seed_fn(self.step_count, stream)

  def _close(self, i: int, tr: Transition, horizon_end: bool, terminated: bool, truncated: bool, final_obs,
             rec: Optional[Recorder]) -> None:
    """Ends env i's open Worker transition: terminal at a horizon end or termination; a truncation adds a masked
    entry with the episode's last observation (the bootstrap V_w)."""
    tr.done = bool(horizon_end or terminated)
    if truncated and not tr.done and rec is not None and rec.store:
      rec.worker[i].append(Transition(final_obs[i], tr.wide, tr.narrow, 0, False, 0.0, counted=False))
    if horizon_end and self.p.hierarchical:
      self.need_decision[i] = True
    self.open[i] = None

  def step(self, rec: Optional[Recorder] = None, allow_traversal: bool = True) -> Dict[str, Any]:
    """One env step of all B envs; records into `rec` when given. Returns the env step's outputs (reward,
    terminated, truncated, info) and which envs acted (Worker) or traversed."""
    p, b = self.p, self.b
    obs = self.obs
    traversing = self.traversing
    acting = ~traversing
    decide = np.zeros(b, bool)
    manager_reset = np.zeros(b, bool)
    if p.hierarchical:
      decide = self.need_decision & acting
      if decide.any():
        manager_reset = decide & self.manager_reset
        wide, narrow, wide_cell, narrow_cell, self.manager_state = p.manager_act(
            obs, self.manager_state, manager_reset, decide, self._seed(0))
        self.wide[decide], self.narrow[decide] = wide[decide], narrow[decide]
        self.wide_cell[decide], self.narrow_cell[decide] = wide_cell[decide], narrow_cell[decide]
        self.reached[decide] = False
        self.k[decide] = 0
        self.worker_reset[decide] = True
        self.need_decision[decide] = False
        self.manager_reset[decide] = False
        if rec is not None:
          rec.counts['decisions'] += int(decide.sum())
          for i in np.nonzero(decide)[0] if rec.store else ():
            rec.decision_cells.append((int(i), tuple(self.wide_cell[i]), tuple(self.narrow_cell[i]),
                                       obs[i, ..., maze_lib.WALL_PLANE]))
    actions = np.zeros(b, np.int64)
    worker_reset = self.worker_reset & acting
    if acting.any():
      worker_actions, self.worker_state = p.worker_act(obs, self.wide_cell, self.narrow_cell, self.worker_state,
                                                       worker_reset, acting, self._seed(1))
      self.worker_reset[acting] = False
      actions = np.where(acting, worker_actions, 0)
    if traversing.any():
      actions = np.where(traversing, self.traversals.actions(obs, self._seed(2)), actions)

    next_obs, reward, terminated, truncated, info = self.env.step(actions)
    ended = terminated | truncated
    final_obs = info['final_obs']
    cells = agent_cells(final_obs)
    if rec is not None and rec.store:
      trunc_values = np.zeros(b, np.float32)
      if p.hierarchical and truncated.any():
        trunc_values = p.manager_value(final_obs, self.manager_state)
      rec.obs.append(obs)
      rec.rewards.append(reward)
      rec.terminated.append(terminated)
      rec.truncated.append(truncated)
      rec.truncation_values.append(trunc_values)
      rec.decisions.append(decide)
      rec.wide.append(np.where(decide, self.wide, 0))
      rec.narrow.append(np.where(decide, self.narrow, 0))
      rec.manager_reset.append(manager_reset)
      rec.traversing.append(traversing)
    if rec is not None:
      rec.counts['traversal_steps'] += int(traversing.sum())
    self.step_count += 1

    arrived = aborted = np.zeros(b, bool)
    if traversing.any():
      arrived, aborted = self.traversals.advance(cells, ended)
    at_wide = acting & np.all(cells == self.wide_cell, axis=1) & ~self.reached
    at_narrow = acting & np.all(cells == self.narrow_cell, axis=1)
    trigger = np.zeros(b, bool)
    if p.hierarchical and self.traversals is not None and allow_traversal:
      trigger = self.traversals.trigger(cells, self.wide, self.reached, eligible=acting & ~ended & ~at_narrow)
      if trigger.any():
        self.traversals.start(trigger, cells, self.wide)

    for i in np.nonzero(acting)[0]:
      tr = Transition(obs[i], self.wide_cell[i], self.narrow_cell[i], actions[i], worker_reset[i],
                      reward[i] if not p.hierarchical else -self.step_cost)
      if rec is not None:
        if rec.store:
          rec.worker[i].append(tr)
        rec.made[i] += 1
        rec.counts['worker_steps'] += 1
      if not p.hierarchical:
        self._close(i, tr, False, terminated[i], truncated[i], final_obs, rec)
        continue
      self.k[i] += 1
      horizon_end = False
      if at_wide[i]:
        tr.reward += self.wide_reward
        self.reached[i] = True
        if rec is not None:
          rec.counts['wide_reached'] += 1
      if at_narrow[i]:
        tr.reward += self.narrow_reward
        horizon_end = True
        if rec is not None:
          rec.counts['narrow_reached'] += 1
      elif trigger[i]:
        self.open[i] = tr                             # a macro step: closed when the traversal ends
        if rec is not None:
          rec.counts['traversals'] += 1
        continue
      elif self.k[i] >= self.horizon:
        horizon_end = True
        if rec is not None:
          rec.counts['timeouts'] += 1
      self._close(i, tr, horizon_end, terminated[i], truncated[i], final_obs, rec)

    for i in np.nonzero(traversing)[0]:
      tr = self.open[i]
      if tr is None:
        raise RuntimeError(f'env {i} traverses without an open Worker transition')
      tr.traversal = int(self.traversals.steps_taken[i])
      if arrived[i]:
        tr.reward += self.wide_reward                 # spec A11: the bonus goes to the triggering transition
        self.reached[i] = True
        horizon_end = False
        if np.all(cells[i] == self.narrow_cell[i]):
          tr.reward += self.narrow_reward
          horizon_end = True
        elif self.k[i] >= self.horizon:
          horizon_end = True
        if rec is not None:
          rec.counts['arrived'] += 1
          rec.counts['wide_reached'] += 1
          rec.counts['narrow_reached'] += int(np.all(cells[i] == self.narrow_cell[i]))
          rec.counts['timeouts'] += int(horizon_end and not np.all(cells[i] == self.narrow_cell[i]))
        self._close(i, tr, horizon_end, terminated[i], truncated[i], final_obs, rec)
      elif aborted[i]:
        if rec is not None:
          rec.counts['aborted'] += 1
        self._close(i, tr, True, terminated[i], truncated[i], final_obs, rec)
      elif ended[i]:
        if rec is not None:
          rec.counts['cut'] += 1
        self._close(i, tr, False, terminated[i], truncated[i], final_obs, rec)

    if ended.any():
      self.need_decision |= ended & p.hierarchical
      self.manager_reset |= ended
      if not p.hierarchical:
        self.worker_reset |= ended
      if rec is not None:
        for i in np.nonzero(ended)[0]:
          rec.episodes.append({'return': float(info['episode_return'][i]), 'length': float(info['episode_length'][i]),
                               'success': float(info['success'][i]), 'balls': float(info['balls_collected'][i]),
                               'door': float(info['door_opened'][i])})
    self.obs = next_obs
    return {'reward': reward, 'terminated': terminated, 'truncated': truncated, 'info': info, 'acting': acting,
            'traversing': traversing, 'decided': decide}


# ---------------------------------------------------------------------------------------------------------------
# Training.

MANAGER_UPDATE_KEYS = ('decision_obs', 'decision_valid', 'decision_wide', 'decision_narrow', 'decision_reset',
                       'decision_time', 'rewards', 'done', 'decisions')


def scatter_to_env_time(times, valid, shape):
  """A function mapping per-decision values [D, B] to env time [T, B] (`shape`): each valid decision's value at
  its env step `times` [D, B], zeros elsewhere."""
  valid = tf.cast(valid, tf.bool)
  b = tf.shape(times)[1]
  envs = tf.broadcast_to(tf.range(b)[tf.newaxis], tf.shape(times))
  index = tf.boolean_mask(tf.stack([tf.cast(times, tf.int32), envs], axis=-1), valid)

  def to_env_time(x):
    return tf.scatter_nd(index, tf.boolean_mask(x, valid), tf.cast(shape, tf.int32))
  return to_env_time


class HRLTrainer:
  """Phase 2's training state and its iteration (module docstring).

  Args:
    cfg: FeudalConfig (validated here).
    graph: the world graph (required for wn; its maze must be cfg.maze).
    pi_g: phase 1's GoalPolicy (required for pig_init and for pi_g traversal; never trained here).
  """

  def __init__(self, cfg: config_lib.FeudalConfig, graph: Optional[graph_lib.WorldGraph] = None,
               pi_g: Optional[networks.GoalPolicy] = None):
    cfg.validate()
    self.cfg = cfg
    self.layout = maze_layouts.load_maze(cfg.maze)
    self.env = maze_lib.BatchMaze(cfg.num_envs, self.layout, cfg.task,
                                  seeds=cfg.train_seed_base + 10_000 * cfg.seed)
    self.policies = Policies(cfg, self.layout, self.env.num_actions, graph, pi_g)
    self.worker, self.manager = self.policies.worker, self.policies.manager
    self.worker_optimizer = keras.optimizers.Adam(cfg.learning_rate, epsilon=cfg.adam_epsilon)
    self.worker_optimizer.build(self.worker.trainable_variables)
    self.manager_optimizer = None
    if self.manager is not None:
      self.manager_optimizer = keras.optimizers.Adam(cfg.learning_rate, epsilon=cfg.adam_epsilon)
      self.manager_optimizer.build(self.manager.trainable_variables)
    self.iteration_var = tf.Variable(0, dtype=tf.int64, trainable=False, name='iteration')
    self.runner = Runner(self.policies, self.env, self._sample_seed)
    self._state_vars = self._make_state_vars()
    self.last_rollout: Optional[Recorder] = None
    h, w = self.policies.grid_shape
    lstm = cfg.lstm
    spec = tf.TensorSpec
    self._train_worker = tf.function(self._worker_update, input_signature=[
        spec([None, None, h, w, maze_lib.NUM_PLANES], tf.uint8), spec([None, None, 2], tf.int32),
        spec([None, None, 2], tf.int32), spec([None, None], tf.int32), spec([None, None], tf.float32),
        spec([None, None], tf.bool), spec([None, None], tf.bool), spec([None, None], tf.bool),
        spec([None, lstm], tf.float32), spec([None, lstm], tf.float32)])
    self._train_manager = None
    if self.manager is not None:
      self._train_manager = tf.function(self._manager_update, input_signature=[
          spec([None, None, h, w, maze_lib.NUM_PLANES], tf.uint8), spec([None, None], tf.bool),
          spec([None, None], tf.int32), spec([None, None], tf.int32), spec([None, None], tf.bool),
          spec([None, None], tf.int32), spec([None, None], tf.float32), spec([None, None], tf.bool),
          spec([None, None], tf.bool), spec([None, lstm], tf.float32), spec([None, lstm], tf.float32),
          spec([None], tf.float32)])

  # ----------------------------------------------------------------- state
  @property
  def iteration_count(self) -> int:
    return int(self.iteration_var.numpy())

  @property
  def graph(self) -> Optional[graph_lib.WorldGraph]:
    return self.policies.graph

  def _sample_seed(self, step: int, stream: int) -> tf.Tensor:
    return stateless_seed(self.cfg.seed, self.iteration_count, step, stream)

  def _make_state_vars(self) -> Dict[str, tf.Variable]:
    r, env = self.runner, self.env
    out = {}
    for name in Runner.STATE_ARRAYS:
      out[f'runner_{name}'] = tf.Variable(getattr(r, name), trainable=False, name=f'runner_{name}')
    states = {'worker': r.worker_state}
    if r.manager_state is not None:
      states['manager'] = r.manager_state
    for net, state in states.items():
      for part in ('h', 'c'):
        out[f'{net}_{part}'] = tf.Variable(state[part], trainable=False, name=f'{net}_{part}')
    for name, value in env.get_state().items():     # checkpoint names env_agent, ..., env_rngs
      dtype = tf.string if name == 'rngs' else None
      out[f'env_{name}'] = tf.Variable(value, dtype=dtype, trainable=False, name=f'env_{name}')
    return out

  def _store_state(self) -> None:
    """The run state (between iterations) -> the checkpointed variables."""
    r, v = self.runner, self._state_vars
    for name in Runner.STATE_ARRAYS:
      v[f'runner_{name}'].assign(getattr(r, name))
    for net, state in (('worker', r.worker_state), ('manager', r.manager_state)):
      if state is not None:
        v[f'{net}_h'].assign(state['h'])
        v[f'{net}_c'].assign(state['c'])
    for name, value in self.env.get_state().items():
      v[f'env_{name}'].assign(value)

  def _load_state(self) -> None:
    """The checkpointed variables -> the run state (so a restore between iterations takes effect)."""
    r, v, env = self.runner, self._state_vars, self.env
    for name in Runner.STATE_ARRAYS:
      setattr(r, name, v[f'runner_{name}'].numpy().copy())
    r.worker_state = {'h': tf.identity(v['worker_h']), 'c': tf.identity(v['worker_c'])}
    if r.manager_state is not None:
      r.manager_state = {'h': tf.identity(v['manager_h']), 'c': tf.identity(v['manager_c'])}
    state = {name: v[f'env_{name}'].numpy() for name in env.STATE_ARRAYS}
    state['rngs'] = v['env_rngs'].numpy().decode()
    env.set_state(state)
    r.open = [None] * r.b
    r.obs = env.observe()

  def checkpoint_objects(self) -> Dict[str, Any]:
    """What a tf.train.Checkpoint must hold to resume exactly (module docstring)."""
    objects = dict(worker=self.worker, worker_optimizer=self.worker_optimizer, iteration=self.iteration_var,
                   **self._state_vars)
    if self.manager is not None:
      objects.update(manager=self.manager, manager_optimizer=self.manager_optimizer)
    return objects

  # ----------------------------------------------------------------- updates
  def _apply(self, tape, loss, net, optimizer):
    grads = tape.gradient(loss, net.trainable_variables)
    grads, norm = tf.clip_by_global_norm(grads, self.cfg.grad_clip)
    optimizer.apply_gradients(zip(grads, net.trainable_variables))
    return norm

  def _worker_update(self, obs, wide, narrow, actions, rewards, done, mask, reset, h0, c0):
    cfg = self.cfg
    t, b = tf.shape(obs)[0], tf.shape(obs)[1]
    h, w = self.policies.grid_shape
    extras = None
    if self.policies.hierarchical:
      planes = networks.worker_planes(tf.reshape(wide, [-1, 2]), tf.reshape(narrow, [-1, 2]), (h, w))
      extras = tf.reshape(planes, tf.stack([t, b, h, w, 2]))
      extras = tf.ensure_shape(extras, [None, None, h, w, 2])
    with tf.GradientTape() as tape:
      out = self.worker.unroll(obs, extras, {'h': h0, 'c': c0}, reset)
      loss, logs = actor_critic.actor_critic_loss(
          out.logits, out.values, actions, rewards, done, tf.zeros([b]), gamma=cfg.gamma, gae_lambda=cfg.gae_lambda,
          value_weight=cfg.value_weight, entropy_weight=cfg.entropy_weight, mask=mask, reduction=cfg.loss_reduction)
    norm = self._apply(tape, loss, self.worker, self.worker_optimizer)
    name = 'worker' if self.policies.hierarchical else 'a2c'
    logs = {f'{name}/{k}': v for k, v in logs.items()}
    logs[f'{name}/grad_norm'] = norm
    return logs

  def manager_unroll(self, obs, valid, wide, narrow, reset, state):
    """The Manager over its decisions only ([D, B], `manager_batch`'s 'decision_*' arrays): its LSTM steps where
    `valid` (padding holds it). Equal to the env-time unroll with the decision mask as `advance`, since between
    decisions the LSTM is held and resets happen only at decisions; the encoder runs on D x B observations instead
    of T x B."""
    if isinstance(self.manager, networks.WideNarrowManager):
      return self.manager.unroll(obs, state, valid, wide, narrow, reset)
    return self.manager.unroll(obs, state, valid, wide, reset)

  def _manager_update(self, obs, valid, wide, narrow, reset, times, rewards, done, decisions, h0, c0, bootstrap):
    cfg = self.cfg
    with tf.GradientTape() as tape:
      out = self.manager_unroll(obs, valid, wide, narrow, reset, {'h': h0, 'c': c0})
      env_time = scatter_to_env_time(times, valid, tf.shape(rewards))
      loss, logs = manager_loss(rewards, done, decisions, env_time(out.log_probs), env_time(out.entropies),
                                env_time(out.values), bootstrap, gamma=cfg.manager_discount,
                                value_weight=cfg.value_weight, entropy_weight=cfg.entropy_weight,
                                reduction=cfg.loss_reduction)
    logs = dict(logs)
    logs['manager/grad_norm'] = self._apply(tape, loss, self.manager, self.manager_optimizer)
    return logs

  def worker_batch(self, rec: Recorder) -> Dict[str, np.ndarray]:
    """Each env's Worker transitions, time-major [K, B], padded; after an env's last entry one masked entry holds
    the observation reached (its bootstrap value)."""
    r = self.runner
    b = r.b
    rows = []
    for i in range(b):
      tail = Transition(r.obs[i], r.wide_cell[i], r.narrow_cell[i], 0, False, 0.0, counted=False)
      rows.append(rec.worker[i] + [tail])
    k = max(len(x) for x in rows)
    h, w = self.policies.grid_shape
    batch = {'obs': np.zeros((k, b, h, w, maze_lib.NUM_PLANES), np.uint8), 'wide': np.zeros((k, b, 2), np.int32),
             'narrow': np.zeros((k, b, 2), np.int32), 'actions': np.zeros((k, b), np.int32),
             'rewards': np.zeros((k, b), np.float32), 'done': np.zeros((k, b), bool), 'mask': np.zeros((k, b), bool),
             'reset': np.zeros((k, b), bool)}
    for i, row in enumerate(rows):
      for t, tr in enumerate(row):
        batch['obs'][t, i] = tr.obs
        batch['wide'][t, i] = tr.wide
        batch['narrow'][t, i] = tr.narrow
        batch['actions'][t, i] = tr.action
        batch['rewards'][t, i] = tr.reward
        batch['done'][t, i] = tr.done
        batch['mask'][t, i] = tr.counted
        batch['reset'][t, i] = tr.reset
    return batch

  def manager_batch(self, rec: Recorder) -> Dict[str, np.ndarray]:
    """The Manager's data: its env-time stream [T, B] ('rewards' and 'done' with truncations folded in by
    `manager_targets`, 'decisions' = S_m) and its decisions [D, B] ('decision_obs', '_wide', '_narrow', '_reset',
    '_time' (the env step of each), '_valid'; padded to the most decisions of an env)."""
    rewards, done = manager_targets(np.stack(rec.rewards), np.stack(rec.terminated), np.stack(rec.truncated),
                                    np.stack(rec.truncation_values), self.cfg.manager_discount)
    decisions = np.stack(rec.decisions)
    t, b = decisions.shape
    counts = decisions.sum(axis=0)
    d = max(int(counts.max()), 1)
    h, w = self.policies.grid_shape
    out = {'rewards': rewards, 'done': done, 'decisions': decisions,
           'decision_obs': np.zeros((d, b, h, w, maze_lib.NUM_PLANES), np.uint8),
           'decision_wide': np.zeros((d, b), np.int32), 'decision_narrow': np.zeros((d, b), np.int32),
           'decision_reset': np.zeros((d, b), bool), 'decision_time': np.zeros((d, b), np.int32),
           'decision_valid': np.zeros((d, b), bool)}
    for i in range(b):
      steps = np.nonzero(decisions[:, i])[0]
      n = len(steps)
      out['decision_obs'][:n, i] = [rec.obs[s][i] for s in steps]
      out['decision_wide'][:n, i] = [rec.wide[s][i] for s in steps]
      out['decision_narrow'][:n, i] = [rec.narrow[s][i] for s in steps]
      out['decision_reset'][:n, i] = [rec.manager_reset[s][i] for s in steps]
      out['decision_time'][:n, i] = steps
      out['decision_valid'][:n, i] = True
    return out

  # ----------------------------------------------------------------- one iteration
  def rollout(self) -> Recorder:
    """Env steps until every env made worker_steps Worker decisions and no traversal is under way."""
    r, target = self.runner, self.cfg.worker_steps
    r.step_count = 0
    rec = Recorder(r.b)
    cap = target * _MAX_STEPS_PER_DECISION
    while True:
      full = bool((rec.made >= target).all())
      if full and not r.traversing.any():
        return rec
      if rec.env_steps >= cap:
        raise RuntimeError(f'iteration {self.iteration_count}: {rec.env_steps} env steps without {target} Worker '
                           'decisions in every env')
      r.step(rec, allow_traversal=not full)

  def iteration(self) -> Dict[str, float]:
    """One rollout (60 Worker decisions per env) and one update of the Worker and of the Manager; returns logs."""
    self._load_state()
    r = self.runner
    worker_state0 = dict(r.worker_state)
    manager_state0 = None if r.manager_state is None else dict(r.manager_state)
    rec = self.rollout()
    wb = self.worker_batch(rec)
    logs = self._train_worker(*(tf.constant(wb[k]) for k in ('obs', 'wide', 'narrow', 'actions', 'rewards', 'done',
                                                              'mask', 'reset')),
                              worker_state0['h'], worker_state0['c'])
    logs = {k: float(v) for k, v in logs.items()}
    if self.manager is not None:
      mb = self.manager_batch(rec)
      bootstrap = self.policies.manager_value(r.obs, r.manager_state).astype(np.float32)
      mlogs = self._train_manager(*(tf.constant(mb[k]) for k in MANAGER_UPDATE_KEYS), manager_state0['h'],
                                  manager_state0['c'], tf.constant(bootstrap))
      logs.update({k: float(v) for k, v in mlogs.items()})
    self.iteration_var.assign_add(1)
    self._store_state()
    self.last_rollout = rec
    logs.update(rollout_logs(rec, r.b))
    return logs


def rollout_logs(rec: Recorder, num_envs: int) -> Dict[str, float]:
  """Episode, subgoal and traversal statistics of one rollout (episode means only when an episode ended)."""
  c = rec.counts
  logs = {'rollout/env_steps': float(rec.env_steps), 'rollout/worker_decisions': float(rec.made.mean()),
          'episode/count': float(len(rec.episodes))}
  if rec.episodes:
    for key in ('return', 'length', 'success', 'balls', 'door'):
      logs[f'episode/{key}'] = float(np.mean([e[key] for e in rec.episodes]))
  if c['decisions']:
    logs['subgoal/decisions_per_env'] = c['decisions'] / num_envs
    for key in ('wide_reached', 'narrow_reached', 'timeouts', 'aborted'):
      logs[f'subgoal/{key}'] = c[key] / c['decisions']
  logs['traversal/started'] = float(c['traversals'])
  logs['traversal/arrived'] = float(c['arrived'])
  logs['traversal/aborted'] = float(c['aborted'])
  logs['traversal/cut_by_episode_end'] = float(c['cut'])
  logs['traversal/env_steps'] = float(c['traversal_steps'])
  return logs


# ---------------------------------------------------------------------------------------------------------------
# Evaluation.

def seed_range(start: int, count: int) -> List[int]:
  return list(range(int(start), int(start) + int(count)))


def validation_seeds(cfg: config_lib.FeudalConfig) -> List[int]:
  return seed_range(cfg.val_seed_start, cfg.num_val_seeds)


def test_seeds(cfg: config_lib.FeudalConfig) -> List[int]:
  return seed_range(cfg.test_seed_start, cfg.num_test_seeds)


def across_seeds(scores: Sequence[float]) -> Tuple[float, float]:
  """(mean, std) over training seeds of their test scores (spec A16: the thesis's +- is read as the spread of the
  training seeds' 100-episode means; population std, ddof 0)."""
  scores = np.asarray(scores, np.float64).reshape(-1)
  if not len(scores):
    raise ValueError('across_seeds needs at least one score')
  return float(scores.mean()), float(scores.std())


def evaluate(trainer_or_policies, seeds: Sequence[int], episodes: int = 1, sample_seed: int = 0) -> Dict[str, Any]:
  """Plays `episodes` full episodes (sampled actions, traversal as in training) on each env seed and scores them.

  Returns {'score': mean return per episode on the MultiGoal tasks, success rate on Door-Key (T:L2596-2597),
  'mean_return', 'success_rate', and per seed and episode [n, episodes] 'returns', 'successes', 'lengths',
  'balls' (collected); 'traversals' (started), 'env_steps'}.
  """
  policies = getattr(trainer_or_policies, 'policies', trainer_or_policies)
  if not isinstance(policies, Policies):
    raise ValueError(f'evaluate needs an HRLTrainer or Policies, got {type(trainer_or_policies).__name__}')
  seeds = [int(s) for s in seeds]
  if not seeds or int(episodes) < 1:
    raise ValueError(f'evaluate needs at least one seed and episodes >= 1, got {len(seeds)} seeds, {episodes} '
                     'episodes')
  cfg = policies.cfg
  env = maze_lib.BatchMaze(len(seeds), policies.layout, cfg.task, seeds=seeds)
  runner = Runner(policies, env, lambda step, stream: stateless_seed(EVAL_SEED_TAG, sample_seed, step, stream))
  n, e = len(seeds), int(episodes)
  results = {key: np.zeros((n, e), np.float64) for key in ('returns', 'successes', 'lengths', 'balls')}
  finished = np.zeros(n, np.int64)
  rec = Recorder(n, store=False)
  while (finished < e).any():
    out = runner.step(rec)
    ended = out['terminated'] | out['truncated']
    info = out['info']
    for i in np.nonzero(ended & (finished < e))[0]:
      results['returns'][i, finished[i]] = info['episode_return'][i]
      results['successes'][i, finished[i]] = info['success'][i]
      results['lengths'][i, finished[i]] = info['episode_length'][i]
      results['balls'][i, finished[i]] = info['balls_collected'][i]
      finished[i] += 1
  mean_return = float(results['returns'].mean())
  success = float(results['successes'].mean())
  return {'score': success if cfg.task == 'doorkey' else mean_return, 'mean_return': mean_return,
          'success_rate': success, 'traversals': rec.counts['traversals'], 'env_steps': runner.step_count,
          **results}
