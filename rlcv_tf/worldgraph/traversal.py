"""World-graph traversal (thesis Sec. 3.4.3, T:L2460-2487; App. 3.C.2 step 2, T:L2979-2986; spec ch3 Sec. 4.9, A11)
as a batched macro action: each env in a traversal takes one traversal action per env step, so that all B envs of
a `BatchMaze` still step together (envs under way take their traversal action, the others their Worker's action).

When (T:L2466-2469, T:L2981-2983; `Traversals.trigger`): a Worker step has put the agent on a waypoint s' in V_p,
the wide goal g^w has not been reached yet in this horizon, s' != g^w (standing on g^w is an arrival) and G_w has a
path s' -> g^w.
Plan (T:L2473-2478): the shortest route over the edge weights (`WorldGraph.route`, Floyd-Warshall next hops).
Execute (T:L2480-2487), `mode`:
  replay   deterministic tasks: the route's stored edge actions, one per env step; after every action the agent's
           cell is compared with the stored cell and a mismatch aborts [T: replay; P: the check]. In Door-Key the
           graph, learned on the base maze, knows neither the divider nor the locked door (spec A15), so an edge
           that crosses them aborts at the first blocked move.
  policy   stochastic task (lava): pi_g(. | s, next waypoint) acts (sampled, its LSTM reset at each new target) until
           the agent stands on that waypoint, then aims at the next one; more than
           limit_scale * w(edge) + limit_extra steps on one edge (2 w + 5 [P]) aborts ("if the agent fails to reach
           the next waypoint state within a certain time limit, it stops", T:L2485-2487). Standing on g^w at any
           point is an arrival. pi_g sees the task's observation (balls, lava) although phase 1 trained it on the
           empty maze; it is not fine-tuned here (the thesis does it "where applicable"; not done).
A traversal ends `arrived` (the agent stands on g^w), `aborted`, or, when the episode ends under way (exit, lava,
time limit), neither: the caller sees the episode end. An arrival on the step that also ends the episode counts.

Reward bookkeeping is the caller's (feudal.py, spec A11): traversal env steps pay their env reward to the Manager's
stream, pay the Worker nothing (no bonus, no step cost) and do not count toward the horizon c; the whole traversal
is one Worker transition, credited the wide-goal bonus on arrival.

Caller protocol, per env step:
    going = traversals.active                                    # before the step
    actions = np.where(going, traversals.actions(observations, seed), worker_actions)
    observations, reward, terminated, truncated, info = env.step(actions)
    arrived, aborted = traversals.advance(agent_cells_after_the_step, terminated | truncated)
    ... traversals.start(trigger_mask, cells, wide_goal_indices) for Worker steps that trigger one.
"""

from typing import Callable, Optional, Tuple

import numpy as np
import tensorflow as tf

from rlcv_tf.worldgraph import graph as graph_lib
from rlcv_tf.worldgraph import networks

MODES = ('replay', 'policy')
LIMIT_SCALE = 2.0               # pi_g traversal: at most 2 w(edge) + 5 steps per edge [P]
LIMIT_EXTRA = 5


def edge_limit(weight: int, scale: float = LIMIT_SCALE, extra: int = LIMIT_EXTRA) -> int:
  """Steps pi_g may take on an edge of `weight` moves before the traversal aborts."""
  return int(np.ceil(scale * weight)) + int(extra)


class Traversals:
  """The traversal state of B envs (module docstring). Cells are (row, col); node indices are the graph's."""

  def __init__(self, graph: graph_lib.WorldGraph, num_envs: int, *, mode: str = 'replay',
               pi_g: Optional[networks.GoalPolicy] = None, act_fn: Optional[Callable] = None,
               limit_scale: float = LIMIT_SCALE, limit_extra: int = LIMIT_EXTRA):
    """B envs' traversals over `graph` (module docstring).

    Args:
      graph: the world graph (its maze is the base maze).
      num_envs: B.
      mode: 'replay' or 'policy'.
      pi_g: phase 1's GoalPolicy (policy mode).
      act_fn: optional shared tf.function (obs, goal_cells, h, c, reset, seed) -> (action, h, c) of pi_g (saves a
        trace per Traversals); default: one built here.
      limit_scale, limit_extra: pi_g's step limit per edge, scale * w(edge) + extra.
    """
    if mode not in MODES:
      raise ValueError(f'traversal mode must be one of {MODES}, got {mode!r}')
    if mode == 'policy' and pi_g is None:
      raise ValueError('traversal mode "policy" needs pi_g (phase 1\'s goal-conditioned policy); pass pi_g or use '
                       'mode "replay"')
    if int(num_envs) < 1:
      raise ValueError(f'num_envs must be >= 1, got {num_envs}')
    self.graph = graph
    self.mode = mode
    self.pi_g = pi_g if mode == 'policy' else None
    self.limit_scale, self.limit_extra = float(limit_scale), int(limit_extra)
    self._b = int(num_envs)
    h, w = graph.walls.shape
    self._grid = (h, w)
    self._node_map = np.full((h, w), -1, np.int64)
    nodes = np.array(graph.nodes, np.int64).reshape(-1, 2)
    self._node_map[nodes[:, 0], nodes[:, 1]] = np.arange(len(nodes))
    self._nodes = nodes
    self._connected = np.isfinite(graph.distances)
    b = self._b
    self._active = np.zeros(b, bool)
    self._goal = np.full(b, -1, np.int64)          # g^w node index
    self._taken = np.zeros(b, np.int64)            # env steps of the current traversal
    # replay
    self._plan_actions: list = [()] * b
    self._plan_cells: list = [()] * b              # the cell expected after each action
    self._pos = np.zeros(b, np.int64)
    # policy
    self._targets: list = [()] * b                 # waypoint cells after the start, g^w last
    self._limits: list = [()] * b
    self._edge = np.zeros(b, np.int64)
    self._edge_steps = np.zeros(b, np.int64)
    self._pig_reset = np.ones(b, bool)
    self._pig_state = None
    if self.pi_g is not None:
      if tuple(self.pi_g.grid_shape) != self._grid:
        raise ValueError(f'pi_g is built for a {self.pi_g.grid_shape} grid but the world graph\'s maze is '
                         f'{self._grid}: use pi_g from the same maze')
      self._pig_state = self.pi_g.initial_state(b)
      self._pig_act = act_fn or tf.function(self._pig_step, reduce_retracing=True)

  # ------------------------------------------------------------------------------------------------ state
  @property
  def num_envs(self) -> int:
    return self._b

  @property
  def active(self) -> np.ndarray:
    """bool [B]: envs in the middle of a traversal."""
    return self._active.copy()

  @property
  def steps_taken(self) -> np.ndarray:
    """int [B]: env steps of each env's current (or last) traversal."""
    return self._taken.copy()

  def node_at(self, cells) -> np.ndarray:
    """int [B]: the node index of each cell, -1 where the cell is not a waypoint."""
    cells = np.asarray(cells, np.int64).reshape(-1, 2)
    return self._node_map[cells[:, 0], cells[:, 1]]

  def planned_cells(self, env_id: int) -> Tuple[Tuple[int, int], ...]:
    """Replay: the cells still to be visited by env `env_id`'s traversal (one per remaining action)."""
    i = int(env_id)
    return tuple(self._plan_cells[i][self._pos[i]:]) if self._active[i] else ()

  # ------------------------------------------------------------------------------------------------ trigger
  def trigger(self, cells, wide_goals, reached, eligible=None) -> np.ndarray:
    """bool [B]: where a traversal starts (module docstring): cells [B, 2] after a Worker step, wide_goals [B] the
    g^w node indices (-1: none), reached [B] g^w already reached this horizon, eligible [B] (default all) the envs
    whose step was a Worker step and did not end the episode or the horizon."""
    node = self.node_at(cells)
    wide = np.asarray(wide_goals, np.int64).reshape(-1)
    ok = (node >= 0) & (wide >= 0) & (node != wide) & ~np.asarray(reached, bool)
    if eligible is not None:
      ok &= np.asarray(eligible, bool)
    ok &= ~self._active
    idx = np.nonzero(ok)[0]
    ok[idx] = self._connected[node[idx], wide[idx]]
    return ok

  def start(self, mask, cells, wide_goals) -> None:
    """Plans and starts traversals in the envs of `mask` (each must stand on a waypoint connected to its g^w)."""
    node = self.node_at(cells)
    wide = np.asarray(wide_goals, np.int64).reshape(-1)
    for i in np.nonzero(np.asarray(mask, bool))[0]:
      if self._active[i]:
        raise ValueError(f'env {i} is already traversing')
      if node[i] < 0 or not self._connected[node[i], wide[i]] or node[i] == wide[i]:
        raise ValueError(f'env {i}: cell {tuple(np.asarray(cells)[i])} is not a waypoint with a path to node '
                         f'{wide[i]}; start traversals where `trigger` says')
      route = self.graph.route(int(node[i]), int(wide[i]))
      self._active[i] = True
      self._goal[i] = wide[i]
      self._taken[i] = 0
      if self.mode == 'replay':
        self._plan_actions[i] = tuple(self.graph.actions_along(route))
        self._plan_cells[i] = tuple(self.graph.cells_along(route)[1:])
        self._pos[i] = 0
      else:
        edges = self.graph.edges
        self._targets[i] = tuple(self.graph.nodes[j] for j in route[1:])
        self._limits[i] = tuple(edge_limit(edges[(a, b)].weight, self.limit_scale, self.limit_extra)
                                for a, b in zip(route[:-1], route[1:]))
        self._edge[i] = 0
        self._edge_steps[i] = 0
        self._pig_reset[i] = True

  def cancel(self, mask) -> None:
    """Drops the traversals of `mask` (e.g. when the caller resets those envs)."""
    self._active &= ~np.asarray(mask, bool)

  # ------------------------------------------------------------------------------------------------ acting
  def _pig_step(self, observation, goal_cells, h, c, reset, seed):
    out = self.pi_g.step(observation, networks.goal_planes(goal_cells, self._grid), {'h': h, 'c': c}, reset)
    action = networks.categorical(out.logits).sample(seed=seed)
    return tf.cast(action, tf.int32), out.state['h'], out.state['c']

  def actions(self, observations, seed=None) -> np.ndarray:
    """int64 [B]: the traversal action of every active env (0 elsewhere) for the current observations [B, H, W, 9].
    `seed`: a stateless seed (int32 [2]) for pi_g's sampling in policy mode."""
    out = np.zeros(self._b, np.int64)
    act = np.nonzero(self._active)[0]
    if not len(act):
      return out
    if self.mode == 'replay':
      for i in act:
        out[i] = self._plan_actions[i][self._pos[i]]
      return out
    goals = np.zeros((self._b, 2), np.int64)
    for i in act:
      goals[i] = self._targets[i][self._edge[i]]
    if seed is None:
      seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
    action, h, c = self._pig_act(tf.constant(observations), tf.constant(goals, tf.int32), self._pig_state['h'],
                                 self._pig_state['c'], tf.constant(self._pig_reset), tf.cast(seed, tf.int32))
    keep = tf.constant(self._active)[:, None]
    self._pig_state = {'h': tf.where(keep, h, self._pig_state['h']), 'c': tf.where(keep, c, self._pig_state['c'])}
    self._pig_reset[act] = False
    action = action.numpy().astype(np.int64)
    out[act] = action[act]
    return out

  def advance(self, cells, ended) -> Tuple[np.ndarray, np.ndarray]:
    """After the env step of the active envs' traversal actions: (arrived [B], aborted [B]).

    cells [B, 2]: the agents' cells after the step (before any auto-reset); ended [B]: the step ended the episode.
    Traversals that arrive, abort or meet an episode end become inactive.
    """
    cells = np.asarray(cells, np.int64).reshape(-1, 2)
    ended = np.asarray(ended, bool).reshape(-1)
    arrived = np.zeros(self._b, bool)
    aborted = np.zeros(self._b, bool)
    for i in np.nonzero(self._active)[0]:
      self._taken[i] += 1
      cell = (int(cells[i, 0]), int(cells[i, 1]))
      if self.mode == 'replay':
        if cell != self._plan_cells[i][self._pos[i]]:
          aborted[i] = True                                   # blocked (door, divider): stop where it stands
        else:
          self._pos[i] += 1
          arrived[i] = self._pos[i] == len(self._plan_cells[i])
      else:
        self._edge_steps[i] += 1
        if cell == self.graph.nodes[self._goal[i]]:
          arrived[i] = True
        elif cell == self._targets[i][self._edge[i]]:
          self._edge[i] += 1
          self._edge_steps[i] = 0
          self._pig_reset[i] = True
        elif self._edge_steps[i] >= self._limits[i][self._edge[i]]:
          aborted[i] = True
      if arrived[i] or ended[i]:
        aborted[i] = False
      if arrived[i] or aborted[i] or ended[i]:
        self._active[i] = False
    return arrived, aborted

