"""SavedModel export of Chapter 3's trained parts, the agent directory, and a player that needs no training code.

Issue 11 (export): the waypoint VAE, pi_g, the Worker, the Manager (Wide-then-Narrow or the FN baseline's) and the
flat A2C baseline as SavedModels with serving signatures, the world graph as an asset, and `play_exported`, which
plays BatchMaze episodes from an exported agent directory with `tf.saved_model.load` alone (the Python classes of
networks.py / vae.py are not needed to run them). Thesis Ch. 3 (T:L2071-3108); spec ch3 Sec. 3.2-3.8, 4.9, 4.11.

Every SavedModel is a `tf.Module` that holds the Keras network's variables and `tf.function`s over its methods, so a
reloaded signature computes what the Keras network computes (tests/test_worldgraph_export.py compares them).
Shapes below: B is any batch size, H x W the maze grid, U the LSTM size, T the VAE horizon. Cells are (row, col)
int32 pairs; integer outputs are int32. The first signature listed is also `serving_default`.

VAE (`export_vae`; thesis Sec. 3.3.1, spec Sec. 3.2):
  prior(cells [N, 2]) -> alpha [N], beta [N], mean [N]       p_psi(z | s) = Beta(alpha, beta); mean = the waypoint
                                                             score alpha / (alpha + beta) (T:L2253-2256)
  infer(cells [B, T+1, 2], actions [B, T], lengths [B])     q_phi(z_t | a, s) = HardKuma(a~_t, 1), l = -0.1, r = 1.1:
      -> concentration [B, T+1]   a~_t (every token, padding included)
         prob_zero [B, T+1]       P(z_t = 0) = (1/12)^a~ on the free gates 1..T_n - 1; 0 on the fixed gates z_0,
                                  z_{T_n} (always 1) and on padding (t > T_n)
         prob_one [B, T+1]        P(z_t = 1) = 1 - (11/12)^a~ on the free gates; 1 on the fixed gates; 0 on padding
  reconstruct(cells, actions, lengths)                       the generator with the median gates (test time, [P])
      -> gates [B, T+1]           HardKuma medians on the free gates, 1 on the fixed ones, 0 on padding
         logits [B, T, A]         p_theta(a_t | s, z) logits
         actions [B, T]           argmax of the logits; -1 after T_n (padding)
  info() -> height, width, horizon, num_actions

Recurrent policies (`export_policy`; pi_g spec Sec. 3.3, Worker Sec. 3.5, flat A2C Sec. 3.7):
  act(observation uint8 [B, H, W, 9], extra float32 [B, H, W, k], h [B, U], c [B, U], seed int32 [2])
      -> action [B] (sampled from pi with the stateless `seed`), greedy_action [B] (argmax), logits [B, A],
         value [B], h [B, U], c [B, U] (the state after this step: feed it back with the next observation)
      `extra` is pi_g's goal plane (k = 1), the Worker's (wide goal, narrow goal) planes (k = 2), and absent for the
      flat A2C (k = 0). The reloaded object's `act` may also be called without `seed` (stateful sampling).
  initial_state(batch_size int32 scalar) -> h, c zeros (an episode start, or the Worker's new subgoal pair)
  info() -> kind, height, width, num_actions, k_extra, lstm_units

Managers (`export_policy`; Wide-then-Narrow spec Sec. 3.6, FN Sec. 3.7). Call `act` only at decision steps: the
Manager's LSTM advances once per decision (Alg. 7).
  WN act(observation, h, c, seed) -> waypoint [B] (g^w's index in V_p), narrow_index [B] (g^n's index in the N x N
      window around g^w), wide_cell [B, 2] (g^w), narrow_cell [B, 2] (g^n, the Worker's goal), log_prob [B], value
      [B], h, c, wide_logits [B, |V_p|], narrow_logits [B, N^2] (of the sampled g^w), and the greedy pair
      greedy_waypoint, greedy_narrow_index, greedy_wide_cell, greedy_narrow_cell (argmax pi^w, then argmax
      pi^n(. | that g^w)). The waypoint cells V_p are stored in the model: `waypoints() -> cells [|V_p|, 2]`.
  FN act(observation, h, c, seed) -> cell_index [B] (r W + c), cell [B, 2], logits [B, H W], log_prob, value, h, c,
      greedy_cell_index, greedy_cell, and, so a player treats both Managers alike, wide_cell = narrow_cell = cell
      and greedy_wide_cell = greedy_narrow_cell = greedy_cell (the FN Worker gets g^w = g^n).
  initial_state(batch_size), info() as above (WN adds window and num_waypoints).
A WN Manager exported with a graph carries it as the asset `graph.json` (`loaded.graph_json.asset_path`).

Agent directory (`export_agent`), one per trained Chapter 3 agent:
  agent.json    {"format": "rlcv_tf.feudal_agent/1", "model": "ours" | "wn" | "fn" | "a2c" | ... (the run's name for
                 the variant), "task", "maze" (rows of '#' and '.'), "maze_name", "num_actions", "horizon" (c, the
                 Worker's steps per subgoal, T:L3089-3091), "traversal" (whether the agent traverses the graph),
                 "window" (N, WN only), "waypoints" ([[r, c], ...], WN only), "graph" ("graph.json" or null),
                 "parts" {name: {"dir", "kind", "lstm_units", "k_extra", "num_actions"}}, "config" (the run's
                 settings as given, for information)}
  graph.json    the world graph (graph.py's format), when there is one
  manager/      SavedModel (wn_manager or fn_manager), with graph.json as an asset when there is a graph
  worker/       SavedModel (worker)
  pi_g/         SavedModel (pi_g), optional
  a2c/          SavedModel (a2c) for the flat baseline, instead of manager/ and worker/
`load_agent(dir)` reads and checks it; `play_exported(dir, ...)` plays it.

Play (`play_exported`, spec Sec. 4.9 at test time). Flat A2C: one action per step. Feudal: per env, the Manager
emits (g^w, g^n) at the episode start, when the agent stands on g^n after a Worker step (or a traversal), after c
Worker steps, and after an aborted traversal; the Worker's LSTM state is zeroed at every new pair, the Manager's at
every episode start. Traversal (`traversal=True`, needs graph.json): when a Worker step lands on a waypoint s' other
than g^w, before g^w was reached in this subgoal, and the graph has a path s' -> g^w, the agent replays the planned
route's edge actions (T:L2475-2482), one env step each, checking its cell after every action; a mismatch (Door-Key's
locked door) aborts the traversal and asks for a new pair. The replayed steps do not count toward c, and reaching g^w
this way marks it reached. Decided differently from training: the spec runs pi_g toward each waypoint instead of
replaying in the stochastic (lava) task; this player replays in every task (moves are never blocked by lava, so a
replay there only ends early when the agent steps on lava and the episode ends), so it needs no pi_g. Actions are
sampled (spec Sec. 4.11 [P]) unless `greedy`; the sampling seeds derive from `sample_seed`, so a play is repeatable.
"""

import dataclasses
import json
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

from rlcv_tf.core import hardkuma
from rlcv_tf.core import runs
from rlcv_tf.envs import maze as maze_env
from rlcv_tf.envs import maze_layouts
from rlcv_tf.worldgraph import graph as graph_lib

AGENT_FORMAT = 'rlcv_tf.feudal_agent/1'
AGENT_FILE = 'agent.json'
POLICY_KINDS = ('pi_g', 'worker', 'a2c')
MANAGER_KINDS = ('wn_manager', 'fn_manager')
PART_DIRS = {'manager': 'manager', 'worker': 'worker', 'pi_g': 'pi_g', 'flat': 'a2c'}
DEFAULT_HORIZON = 20      # c (T:L3089-3091)


# ------------------------------------------------------------------------------------------------ helpers

def _kind_of(net) -> str:
  from rlcv_tf.worldgraph import networks  # pylint: disable=g-import-not-at-top
  for cls, kind in ((networks.GoalPolicy, 'pi_g'), (networks.Worker, 'worker'), (networks.FlatA2C, 'a2c'),
                    (networks.WideNarrowManager, 'wn_manager'), (networks.FullManager, 'fn_manager')):
    if isinstance(net, cls):
      return kind
  raise ValueError(f'export_policy: {type(net).__name__} is not a Chapter 3 network; pass a GoalPolicy, Worker, '
                   'FlatA2C, WideNarrowManager or FullManager (worldgraph/networks.py)')


def _tracked_variables(net) -> List[Any]:
  if not net.variables:
    raise ValueError(f'{net.name}: the network has no variables yet; call build_network() (or train it) first')
  return list(net.variables)


def _int(x):
  return tf.cast(x, tf.int32)


def _categorical_sample(logits, seed):
  import tensorflow_probability as tfp  # pylint: disable=g-import-not-at-top
  return _int(tfp.distributions.Categorical(logits=logits).sample(seed=seed))


def _write(module: tf.Module, path: str, signatures: Dict[str, Any]) -> str:
  """Saves `module` with `signatures` (the first one is also `serving_default`) at `path`, atomically."""
  signatures = dict(signatures)
  signatures['serving_default'] = next(iter(signatures.values()))

  def write_fn(tmp):
    tf.saved_model.save(module, tmp, signatures=signatures)
  return runs.write_saved_model(path, write_fn)


def _state_specs(units: int):
  return (tf.TensorSpec((None, units), tf.float32, name='h'), tf.TensorSpec((None, units), tf.float32, name='c'))


def _initial_state_fn(units: int):
  @tf.function(input_signature=[tf.TensorSpec((), tf.int32, name='batch_size')])
  def initial_state(batch_size):
    zeros = tf.zeros(tf.stack([batch_size, units]), tf.float32)
    return {'h': zeros, 'c': zeros}
  return initial_state


def _info_fn(values: Mapping[str, Any]):
  @tf.function(input_signature=[])
  def info():
    return {k: tf.constant(v) for k, v in values.items()}
  return info


# ------------------------------------------------------------------------------------------------ VAE

class _VAEModule(tf.Module):
  """prior / infer / reconstruct / info over a `vae.WaypointVAE` (module docstring)."""

  def __init__(self, model):
    super().__init__(name='waypoint_vae')
    from rlcv_tf.worldgraph import vae as vae_lib  # pylint: disable=g-import-not-at-top
    cfg = model.cfg
    horizon = cfg.horizon
    self._variables = _tracked_variables(model)
    cells_spec = tf.TensorSpec((None, horizon + 1, 2), tf.int32, name='cells')
    actions_spec = tf.TensorSpec((None, horizon), tf.int32, name='actions')
    lengths_spec = tf.TensorSpec((None,), tf.int32, name='lengths')

    @tf.function(input_signature=[tf.TensorSpec((None, 2), tf.int32, name='cells')])
    def prior(cells):
      alpha, beta = model.prior_params(cells)
      return {'alpha': alpha, 'beta': beta, 'mean': alpha / (alpha + beta)}

    @tf.function(input_signature=[cells_spec, actions_spec, lengths_spec])
    def infer(cells, actions, lengths):
      concentration = model.inference_concentration(cells, actions, lengths)
      gate = hardkuma.HardKumaraswamy(concentration, tf.ones_like(concentration), low=vae_lib.STRETCH_LOW,
                                      high=vae_lib.STRETCH_HIGH)
      free = vae_lib.free_gate_mask(lengths, horizon)
      fixed = vae_lib.fixed_gate_mask(lengths, horizon)
      return {'concentration': concentration, 'prob_zero': gate.prob_zero() * free,
              'prob_one': gate.prob_one() * free + fixed}

    @tf.function(input_signature=[cells_spec, actions_spec, lengths_spec])
    def reconstruct(cells, actions, lengths):
      concentration = model.inference_concentration(cells, actions, lengths)
      gates = vae_lib.median_gates(concentration, lengths, horizon)
      logits = model.action_logits(cells, gates, lengths)
      greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)
      real = tf.sequence_mask(lengths, horizon)
      return {'gates': gates, 'logits': logits, 'actions': tf.where(real, greedy, -tf.ones_like(greedy))}

    self.prior, self.infer, self.reconstruct = prior, infer, reconstruct
    self.info = _info_fn({'height': cfg.height, 'width': cfg.width, 'horizon': horizon,
                          'num_actions': cfg.num_actions})


def export_vae(vae, path: str) -> str:
  """Writes the waypoint VAE (`vae.WaypointVAE`) as a SavedModel at `path` (module docstring); returns `path`."""
  cfg = vae.cfg
  if not all(layer.built for layer in vae.layers):      # build the three networks on a one-sequence batch
    cells = np.zeros((1, cfg.horizon + 1, 2), np.int32)
    vae.loss_terms(cells, np.zeros((1, cfg.horizon), np.int32), np.full((1,), cfg.horizon, np.int32),
                   seed=tf.constant([0, 0]))
  module = _VAEModule(vae)
  return _write(module, path, {'prior': module.prior, 'infer': module.infer, 'reconstruct': module.reconstruct,
                               'info': module.info})


# ------------------------------------------------------------------------------------------------ policies

class _PolicyModule(tf.Module):
  """act / initial_state / info over a GoalPolicy, Worker or FlatA2C (module docstring)."""

  def __init__(self, net, kind: str):
    super().__init__(name=kind)
    net.build_network()
    self._variables = _tracked_variables(net)
    height, width = net.grid_shape
    units = int(net.sizes.lstm)
    k = int(net.k_extra)
    obs_spec = tf.TensorSpec((None, height, width, 9), tf.uint8, name='observation')
    extra_spec = tf.TensorSpec((None, height, width, k), tf.float32, name='extra')
    h_spec, c_spec = _state_specs(units)
    seed_spec = tf.TensorSpec((2,), tf.int32, name='seed')

    def outputs(observation, extra, h, c, seed):
      step = net.step(observation, extra, {'h': h, 'c': c})
      return {'action': _categorical_sample(step.logits, seed),
              'greedy_action': tf.argmax(step.logits, axis=-1, output_type=tf.int32),
              'logits': step.logits, 'value': step.value, 'h': step.state['h'], 'c': step.state['c']}

    if k:
      @tf.function
      def act(observation, extra, h, c, seed=None):
        return outputs(observation, extra, h, c, seed)
      specs = (obs_spec, extra_spec, h_spec, c_spec)
    else:
      @tf.function
      def act(observation, h, c, seed=None):
        return outputs(observation, None, h, c, seed)
      specs = (obs_spec, h_spec, c_spec)
    self.act = act
    self.act_signature = act.get_concrete_function(*specs, seed_spec)
    act.get_concrete_function(*specs)               # the unseeded call of the reloaded object
    self.initial_state = _initial_state_fn(units)
    self.info = _info_fn({'kind': kind, 'height': height, 'width': width, 'num_actions': net.num_actions,
                          'k_extra': k, 'lstm_units': units})


class _ManagerModule(tf.Module):
  """act / waypoints / initial_state / info over a WideNarrowManager or FullManager (module docstring)."""

  def __init__(self, net, kind: str, graph_file: Optional[str] = None):
    super().__init__(name=kind)
    net.build_network()
    height, width = net.grid_shape
    units = int(net.sizes.lstm)
    obs_spec = tf.TensorSpec((None, height, width, 9), tf.uint8, name='observation')
    h_spec, c_spec = _state_specs(units)
    seed_spec = tf.TensorSpec((2,), tf.int32, name='seed')
    info = {'kind': kind, 'height': height, 'width': width, 'lstm_units': units}
    if kind == 'wn_manager':
      cells = net.waypoint_cells.numpy()
      if np.any(cells < 0):
        raise ValueError(f'{net.name}: its waypoint cells are not set; call set_waypoint_cells(V_p) (the world '
                         'graph\'s nodes, in index order) before exporting')
      info.update(window=net.window, num_waypoints=net.num_waypoints)

      def outputs(observation, h, c, seed):
        hm, state = net.core(observation, {'h': h, 'c': c})
        decision = net.decide(hm, observation, seed=seed)
        wide_logits = net.wide_logits(hm)
        greedy_w = tf.argmax(wide_logits, axis=-1, output_type=tf.int32)
        greedy_n = tf.argmax(net.narrow_logits(hm, observation, greedy_w), axis=-1, output_type=tf.int32)
        greedy_wide = _int(net.waypoint_to_cell(greedy_w))
        return {'waypoint': _int(decision.action), 'narrow_index': _int(decision.narrow_index),
                'wide_cell': _int(decision.goal_cells), 'narrow_cell': _int(decision.narrow_cells),
                'log_prob': decision.log_prob, 'value': decision.value, 'h': state['h'], 'c': state['c'],
                'wide_logits': wide_logits, 'narrow_logits': net.narrow_logits(hm, observation, decision.action),
                'greedy_waypoint': greedy_w, 'greedy_narrow_index': greedy_n, 'greedy_wide_cell': greedy_wide,
                'greedy_narrow_cell': _int(net.window_index_to_cell(greedy_wide, greedy_n))}

      @tf.function(input_signature=[])
      def waypoints():
        return {'cells': tf.identity(net.waypoint_cells)}
      self.waypoints = waypoints
    else:
      def outputs(observation, h, c, seed):
        hm, state = net.core(observation, {'h': h, 'c': c})
        decision = net.decide(hm, observation, seed=seed)
        logits = net.cell_logits(hm, observation)
        greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)
        greedy_cell = _int(net.index_to_cell(greedy))
        cell = _int(decision.goal_cells)
        return {'cell_index': _int(decision.action), 'cell': cell, 'wide_cell': cell, 'narrow_cell': cell,
                'logits': logits, 'log_prob': decision.log_prob, 'value': decision.value, 'h': state['h'],
                'c': state['c'], 'greedy_cell_index': greedy, 'greedy_cell': greedy_cell,
                'greedy_wide_cell': greedy_cell, 'greedy_narrow_cell': greedy_cell}
    self._variables = _tracked_variables(net)

    @tf.function
    def act(observation, h, c, seed=None):
      return outputs(observation, h, c, seed)
    self.act = act
    self.act_signature = act.get_concrete_function(obs_spec, h_spec, c_spec, seed_spec)
    act.get_concrete_function(obs_spec, h_spec, c_spec)
    self.initial_state = _initial_state_fn(units)
    self.info = _info_fn(info)
    if graph_file is not None:
      self.graph_json = tf.saved_model.Asset(graph_file)


def export_policy(net, path: str, kind: Optional[str] = None, graph_file: Optional[str] = None) -> str:
  """Writes one Chapter 3 network as a SavedModel at `path` (module docstring); returns `path`.

  Args:
    net: a GoalPolicy, Worker, FlatA2C, WideNarrowManager (waypoint cells set) or FullManager.
    path: the SavedModel directory (replaced atomically).
    kind: optional check: 'pi_g', 'worker', 'a2c', 'wn_manager' or 'fn_manager'; it must match `net`'s class.
    graph_file: a graph.json to carry as the asset `graph_json` (Managers only).
  """
  actual = _kind_of(net)
  if kind is not None and kind != actual:
    raise ValueError(f'export_policy: kind={kind!r} but the network is a {type(net).__name__} ({actual!r}); pass '
                     f'kind={actual!r} or the network you meant')
  if actual in MANAGER_KINDS:
    module = _ManagerModule(net, actual, graph_file)
    signatures = {'act': module.act_signature, 'initial_state': module.initial_state, 'info': module.info}
    if actual == 'wn_manager':
      signatures['waypoints'] = module.waypoints
  else:
    if graph_file is not None:
      raise ValueError(f'export_policy: graph_file is carried by a Manager, not by a {actual}; drop it')
    module = _PolicyModule(net, actual)
    signatures = {'act': module.act_signature, 'initial_state': module.initial_state, 'info': module.info}
  return _write(module, path, signatures)


# ------------------------------------------------------------------------------------------------ agent directory

def _jsonable(value):
  if dataclasses.is_dataclass(value) and not isinstance(value, type):
    value = dataclasses.asdict(value)
  if isinstance(value, Mapping):
    return {str(k): _jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_jsonable(v) for v in value]
  if isinstance(value, np.ndarray):
    return _jsonable(value.tolist())
  if isinstance(value, np.generic):
    return value.item()
  if value is None or isinstance(value, (bool, int, float, str)):
    return value
  return str(value)


def _maze_walls(maze) -> np.ndarray:
  if isinstance(maze, (list, tuple)) and maze and all(isinstance(r, str) for r in maze):
    return graph_lib.walls_from_rows(list(maze), where='config["maze"]')
  if isinstance(maze, str) and '\n' not in maze and maze not in maze_layouts.SIZES and os.path.isfile(maze):
    with open(maze, encoding='utf-8') as f:
      maze = f.read()
  return np.asarray(maze_layouts.as_layout(maze).walls, bool)


def _maze_name(maze, graph) -> str:
  if graph is not None and graph.maze_name:
    return str(graph.maze_name)
  if isinstance(maze, maze_layouts.Layout):
    return maze.name
  return maze if isinstance(maze, str) and maze in maze_layouts.SIZES else ''


def _part_entry(net, kind: str, directory: str) -> Dict[str, Any]:
  entry = {'dir': directory, 'kind': kind, 'lstm_units': int(net.sizes.lstm), 'grid': list(net.grid_shape)}
  if kind in POLICY_KINDS:
    entry.update(k_extra=int(net.k_extra), num_actions=int(net.num_actions))
  return entry


def export_agent(directory: str, manager=None, worker=None, flat=None, pi_g=None, graph=None,
                 config: Optional[Mapping[str, Any]] = None) -> str:
  """Writes an agent directory (module docstring) and returns it; the directory is replaced atomically.

  Args:
    directory: where to write (e.g. <logdir>/agent).
    manager, worker: a WideNarrowManager or FullManager and its Worker (the feudal agents); or
    flat: a FlatA2C (the A2C baseline), instead of manager and worker.
    pi_g: the goal-conditioned policy, optional (stored for other uses; `play_exported` does not need it).
    graph: the WorldGraph (needed for traversal; a WN Manager's waypoints must be its nodes, in order).
    config: the run's settings; read: "task" (required), "maze" (a size name, maze text or file, or rows; default
      the graph's maze), "model" (the variant's name; default "wn", "fn" or "a2c" from the parts), "horizon" (c,
      default 20), "traversal" (default False; True needs a graph). The whole mapping is stored for information.
  """
  config = dict(config or {})
  if flat is not None and (manager is not None or worker is not None):
    raise ValueError('export_agent: give either flat= (the A2C baseline) or manager= and worker= (a feudal agent), '
                     'not both')
  if flat is None and (manager is None or worker is None):
    raise ValueError('export_agent: a feudal agent needs both manager= and worker=; the flat baseline needs flat=')
  task = config.get('task')
  if task not in maze_env.TASKS:
    raise ValueError(f'export_agent: config["task"] = {task!r}; set it to one of {", ".join(maze_env.TASKS)}')
  if config.get('maze') is not None:
    walls = _maze_walls(config['maze'])
  elif graph is not None:
    walls = np.asarray(graph.walls, bool)
  else:
    raise ValueError('export_agent: config["maze"] is missing; set it to the maze the agent was trained on (a size '
                     'name, maze text or rows)')
  if graph is not None and not np.array_equal(np.asarray(graph.walls, bool), walls):
    raise ValueError('export_agent: the graph was made on another maze than config["maze"]; export the graph built '
                     'for this maze')
  horizon = int(config.get('horizon', DEFAULT_HORIZON))
  if horizon < 1:
    raise ValueError(f'export_agent: config["horizon"] = {horizon}; c must be a positive number of Worker steps')
  traversal = bool(config.get('traversal', False))
  if traversal and graph is None:
    raise ValueError('export_agent: config["traversal"] is True but no graph= was given; pass the world graph')
  num_actions = 6 if task == 'doorkey' else 4

  parts = {}
  for name, net in (('manager', manager), ('worker', worker), ('flat', flat), ('pi_g', pi_g)):
    if net is None:
      continue
    kind = _kind_of(net)
    want = {'manager': MANAGER_KINDS, 'worker': ('worker',), 'flat': ('a2c',), 'pi_g': ('pi_g',)}[name]
    if kind not in want:
      raise ValueError(f'export_agent: {name}= is a {type(net).__name__} ({kind}); it must be a {" or ".join(want)}')
    if tuple(net.grid_shape) != walls.shape:
      raise ValueError(f'export_agent: {name}= was built for a {net.grid_shape[0]}x{net.grid_shape[1]} grid but the '
                       f'maze is {walls.shape[0]}x{walls.shape[1]}; export the networks trained on this maze')
    if name in ('worker', 'flat') and net.num_actions != num_actions:
      raise ValueError(f'export_agent: {name}= has {net.num_actions} actions but task {task} has {num_actions}')
    parts[name] = net
  if flat is None:
    if worker.num_actions != num_actions:
      raise ValueError(f'export_agent: worker= has {worker.num_actions} actions, task {task} has {num_actions}')
  model = config.get('model') or ('a2c' if flat is not None else
                                  'wn' if _kind_of(manager) == 'wn_manager' else 'fn')
  meta = {'format': AGENT_FORMAT, 'model': str(model), 'task': task, 'maze': graph_lib.maze_rows(walls),
          'maze_name': _maze_name(config.get('maze'), graph),
          'num_actions': num_actions, 'horizon': horizon, 'traversal': traversal,
          'graph': graph_lib.GRAPH_FILE if graph is not None else None, 'parts': {}}
  if manager is not None and _kind_of(manager) == 'wn_manager':
    cells = manager.waypoint_cells.numpy()
    if np.any(cells < 0):
      raise ValueError('export_agent: the Manager\'s waypoint cells are not set; call set_waypoint_cells(V_p)')
    if graph is not None and [tuple(c) for c in cells.tolist()] != list(graph.nodes):
      raise ValueError('export_agent: the Manager\'s waypoint cells differ from the graph\'s nodes (in index order); '
                       'the Manager\'s g^w index must be the graph\'s node index: set_waypoint_cells(graph.nodes)')
    meta.update(window=int(manager.window), waypoints=cells.tolist())
  if traversal and (flat is not None or _kind_of(manager) != 'wn_manager'):
    raise ValueError('export_agent: config["traversal"] is True but the agent has no Wide-then-Narrow Manager; '
                     'graph traversal goes to g^w, a waypoint (spec Sec. 4.10): set traversal False')
  meta['config'] = _jsonable(config)

  def write_fn(tmp):
    os.makedirs(tmp)
    graph_path = graph.save(os.path.join(tmp, graph_lib.GRAPH_FILE)) if graph is not None else None
    for name, net in parts.items():
      sub = PART_DIRS[name]
      kind = _kind_of(net)
      export_policy(net, os.path.join(tmp, sub), kind, graph_file=graph_path if name == 'manager' else None)
      meta['parts'][name] = _part_entry(net, kind, sub)
    with open(os.path.join(tmp, AGENT_FILE), 'w', encoding='utf-8') as f:
      json.dump(meta, f, indent=1)
      f.write('\n')
  return runs.write_saved_model(directory, write_fn)


@dataclasses.dataclass
class ExportedAgent:
  """An agent directory, loaded: agent.json's contents, the reloaded SavedModels and the graph (or None)."""
  directory: str
  meta: Dict[str, Any]
  parts: Dict[str, Any]
  graph: Optional[graph_lib.WorldGraph]

  @property
  def walls(self) -> np.ndarray:
    return graph_lib.walls_from_rows(self.meta['maze'], where=os.path.join(self.directory, AGENT_FILE))

  @property
  def is_flat(self) -> bool:
    return 'flat' in self.parts


def load_agent(directory: str, flag: str = '--agent') -> ExportedAgent:
  """Reads an `export_agent` directory; one ValueError naming `flag`, the file and the fix if it is not one."""
  prefix = f'{flag}={directory}: '
  file = os.path.join(directory, AGENT_FILE)
  if not os.path.isfile(file):
    raise ValueError(f'{prefix}no {AGENT_FILE} there: point to an agent directory written by '
                     'worldgraph/export.export_agent (a trained agent\'s directory holds agent.json, manager/ and '
                     'worker/ or a2c/)')
  try:
    with open(file, encoding='utf-8') as f:
      meta = json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ValueError(f'{prefix}{file} is not valid JSON ({e}): export the agent again') from None
  if not isinstance(meta, dict) or meta.get('format') != AGENT_FORMAT:
    raise ValueError(f'{prefix}{file} is not a Chapter 3 agent (no "format": "{AGENT_FORMAT}"): export it again')
  for key in ('task', 'maze', 'parts', 'horizon', 'num_actions'):
    if key not in meta:
      raise ValueError(f'{prefix}{file} has no "{key}": export the agent again')
  walls = graph_lib.walls_from_rows(meta['maze'], where=f'{file} "maze"')
  parts = {}
  for name, entry in meta['parts'].items():
    path = os.path.join(directory, entry['dir'])
    if not os.path.isfile(os.path.join(path, 'saved_model.pb')):
      raise ValueError(f'{prefix}{AGENT_FILE} lists the part {name!r} but {path} holds no SavedModel: copy the whole '
                       'agent directory, or export it again')
    parts[name] = tf.saved_model.load(path)
  if 'flat' not in parts and not {'manager', 'worker'} <= set(parts):
    raise ValueError(f'{prefix}{file} has neither the flat A2C (a2c/) nor a Manager and a Worker: export it again')
  graph = None
  if meta.get('graph'):
    graph = graph_lib.WorldGraph.load(os.path.join(directory, meta['graph']), expect_maze=walls, flag=flag)
  return ExportedAgent(directory, meta, parts, graph)


# ------------------------------------------------------------------------------------------------ play

def _cell_planes(cells: np.ndarray, grid) -> np.ndarray:
  """float32 [B, H, W, 1], 1 at each row's cell."""
  out = np.zeros((len(cells),) + tuple(grid) + (1,), np.float32)
  out[np.arange(len(cells)), cells[:, 0], cells[:, 1], 0] = 1.0
  return out


class _Seeds:
  """Stateless int32 [2] seeds for the act calls: (sample_seed, n) for n = 0, 1, 2, ..."""

  def __init__(self, seed: int):
    self.seed, self.count = int(seed), 0

  def __call__(self):
    self.count += 1
    return tf.constant([self.seed, self.count], tf.int32)


def play_exported(agent_dir: str, task: Optional[str] = None, seeds: Sequence[int] = tuple(range(2000, 2100)),
                  episodes: int = 1, greedy: bool = False, traversal: Optional[bool] = None,
                  max_steps: Optional[int] = None, sample_seed: int = 0) -> Dict[str, Any]:
  """Plays an exported agent on BatchMaze episodes with the SavedModels alone (module docstring, "Play").

  Args:
    agent_dir: an `export_agent` directory.
    task: the maze task; default agent.json's (a Chapter 3 agent is trained per task; another task must have the
      same number of actions).
    seeds: env seeds; env i of the batch is built with seeds[i] (spec Sec. 4.11: test seeds 2000-2099).
    episodes: episodes per env seed (the env's generator carries on between them).
    greedy: argmax actions and goals instead of sampled ones.
    traversal: override agent.json's "traversal" (True needs the graph).
    max_steps: the env's episode cut (default: BatchMaze's for the maze and task).
    sample_seed: seed of the action and goal sampling.

  Returns:
    {'return', 'length', 'success', 'balls_collected', 'door_opened'}: arrays [len(seeds), episodes];
    'seeds'; 'mean_return', 'success_rate'; 'decisions' and 'traversals' (totals over the play; 0 for the flat
    agent) and 'aborted_traversals'.
  """
  agent = load_agent(agent_dir)
  meta = agent.meta
  task = task or meta['task']
  if task not in maze_env.TASKS:
    raise ValueError(f'task={task!r}: one of {", ".join(maze_env.TASKS)}')
  if (6 if task == 'doorkey' else 4) != meta['num_actions']:
    raise ValueError(f'task={task}: the agent in {agent_dir} acts with {meta["num_actions"]} actions, this task '
                     f'with {6 if task == "doorkey" else 4}: play it on a task with the same actions')
  if int(episodes) < 1:
    raise ValueError(f'episodes={episodes}: must be >= 1')
  seeds = [int(s) for s in seeds]
  if not seeds:
    raise ValueError('seeds: give at least one env seed')
  traversal = bool(meta.get('traversal', False)) if traversal is None else bool(traversal)
  if traversal and (agent.graph is None or agent.is_flat or 'waypoints' not in meta):
    raise ValueError(f'traversal=True: the agent in {agent_dir} has no world graph or no Wide-then-Narrow Manager; '
                     'play it with traversal=False')
  walls = agent.walls
  layout = maze_layouts.parse_layout('\n'.join(meta['maze']), name=meta.get('maze_name') or 'agent')
  b, n_ep = len(seeds), int(episodes)
  env = maze_env.BatchMaze(b, layout, task, seeds=seeds, max_steps=max_steps)
  grid = walls.shape
  draw = _Seeds(sample_seed)
  results = {k: np.zeros((b, n_ep), dt) for k, dt in (('return', np.float64), ('length', np.int64),
                                                      ('success', bool), ('balls_collected', np.int64),
                                                      ('door_opened', bool))}
  done_count = np.zeros(b, np.int64)
  stats = {'decisions': 0, 'traversals': 0, 'aborted_traversals': 0}
  pick = (lambda out, key: out['greedy_' + key]) if greedy else (lambda out, key: out[key])
  obs = env.observe()

  def zeros(part):
    units = meta['parts'][part]['lstm_units']
    return np.zeros((b, units), np.float32)

  def record(ended, info):
    for i in np.flatnonzero(ended):
      e = done_count[i]
      if e < n_ep:
        results['return'][i, e] = info['episode_return'][i]
        results['length'][i, e] = info['episode_length'][i]
        results['success'][i, e] = info['success'][i]
        results['balls_collected'][i, e] = info['balls_collected'][i]
        results['door_opened'][i, e] = info['door_opened'][i]
      done_count[i] += 1

  if agent.is_flat:
    policy = agent.parts['flat']
    h, c = zeros('flat'), zeros('flat')
    while np.any(done_count < n_ep):
      out = policy.act(observation=tf.constant(obs), h=tf.constant(h), c=tf.constant(c), seed=draw())
      actions = pick(out, 'action').numpy()
      h, c = out['h'].numpy(), out['c'].numpy()
      obs, _, terminated, truncated, info = env.step(actions)
      ended = terminated | truncated
      record(ended, info)
      h[ended] = 0.0
      c[ended] = 0.0
  else:
    manager, worker = agent.parts['manager'], agent.parts['worker']
    graph = agent.graph
    horizon = int(meta['horizon'])
    hm, cm, hw, cw = zeros('manager'), zeros('manager'), zeros('worker'), zeros('worker')
    wide = np.zeros((b, 2), np.int64)
    narrow = np.zeros((b, 2), np.int64)
    need = np.ones(b, bool)
    reached = np.zeros(b, bool)
    k = np.zeros(b, np.int64)
    queue: List[List[int]] = [[] for _ in range(b)]          # traversal actions still to replay
    expect: List[List[tuple]] = [[] for _ in range(b)]       # the cells they must reach

    while np.any(done_count < n_ep):
      ids = np.flatnonzero(need)
      if len(ids):
        out = manager.act(observation=tf.constant(obs[ids]), h=tf.constant(hm[ids]), c=tf.constant(cm[ids]),
                          seed=draw())
        hm[ids], cm[ids] = out['h'].numpy(), out['c'].numpy()
        wide[ids] = pick(out, 'wide_cell').numpy()
        narrow[ids] = pick(out, 'narrow_cell').numpy()
        hw[ids], cw[ids] = 0.0, 0.0
        reached[ids] = False
        k[ids] = 0
        need[ids] = False
        stats['decisions'] += len(ids)
      traversing = np.array([bool(q) for q in queue])
      actions = np.zeros(b, np.int64)
      acting = np.flatnonzero(~traversing)
      if len(acting):
        extra = np.concatenate([_cell_planes(wide[acting], grid), _cell_planes(narrow[acting], grid)], axis=-1)
        out = worker.act(observation=tf.constant(obs[acting]), extra=tf.constant(extra), h=tf.constant(hw[acting]),
                         c=tf.constant(cw[acting]), seed=draw())
        hw[acting], cw[acting] = out['h'].numpy(), out['c'].numpy()
        actions[acting] = pick(out, 'action').numpy()
      for i in np.flatnonzero(traversing):
        actions[i] = queue[i].pop(0)
      obs, _, terminated, truncated, info = env.step(actions)
      ended = terminated | truncated
      record(ended, info)
      agent_cells = env.agent
      for i in range(b):
        if ended[i]:                                         # a new episode: new pair, fresh Manager state
          need[i], queue[i], expect[i] = True, [], []
          hm[i], cm[i] = 0.0, 0.0
          continue
        pos = (int(agent_cells[i, 0]), int(agent_cells[i, 1]))
        if traversing[i]:
          if pos != expect[i].pop(0):                       # blocked (a locked door): abort, ask for a new pair
            queue[i], expect[i] = [], []
            need[i] = True
            stats['aborted_traversals'] += 1
            continue
          if queue[i]:
            continue
          reached[i] = True                                  # arrived at g^w: the macro-step ends here
        else:
          k[i] += 1
          if pos == tuple(wide[i]) and not reached[i]:
            reached[i] = True
          elif (traversal and not reached[i] and graph.is_node(pos) and
                graph.has_path(graph.index_of(pos), graph.index_of(wide[i]))):
            route = graph.route(graph.index_of(pos), graph.index_of(wide[i]))
            queue[i] = list(graph.actions_along(route))
            expect[i] = list(graph.cells_along(route)[1:])
            stats['traversals'] += 1
            continue                                         # g^n and c are checked when the traversal ends
        if pos == tuple(narrow[i]) or k[i] >= horizon:
          need[i] = True
  out = dict(results)
  out.update(stats)
  out['seeds'] = seeds
  out['mean_return'] = float(results['return'].mean())
  out['success_rate'] = float(results['success'].mean())
  return out
