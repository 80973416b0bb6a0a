"""The phase-1 run: Alg. 6 for `iterations` (or to an accuracy plateau), then the world graph, with everything a run
leaves behind. `launchers/world_graph.py` calls `train_world_graph`.

What a logdir holds:
  config.json            every setting (checked on resume: the architecture fields must match)
  checkpoints/           VAE, pi_g, both optimisers, the multipliers, V_p, visited cells, the iteration; saved every
                         `checkpoint_interval_s`, at the end, and on Ctrl-C / SIGTERM; re-running resumes
  events.out.tfevents.*  TensorBoard: vae/{nll, nll_per_step, recon_accuracy, kl, expected_l0, expected_switches,
                         lambda_kl, lambda_l0, lambda_lt, ...}, pi_g/{success, steps, loss_*}, explore/{visited, ...}
  waypoints_iter_0000100.png, waypoints_final.png   V_p in blue (Fig. 3.D.1) over the prior means, shaded from the
                         lowest (light) to the highest (dark) prior mean
  graph.png, graph.json  the world graph (graph.py documents graph.json)
  phase1.json            the final numbers, the graph's size and the learning check's verdict
  saved_model/vae, saved_model/pi_g   SavedModels (worldgraph/export.py)
"""

import collections
import dataclasses
import json
import os
import time
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from rlcv_tf.core import checkpointing
from rlcv_tf.core import progress
from rlcv_tf.core import quiet
from rlcv_tf.core import runs
from rlcv_tf.envs import maze_layouts
from rlcv_tf.worldgraph import config as config_lib
from rlcv_tf.worldgraph import exploration
from rlcv_tf.worldgraph import graph as graph_lib

PREFIX = '[world_graph] '
PICTURE_ITERATION = 100          # Fig. 3.D.1 shows V_p at iterations 100 and 1,200
CHECK_WINDOW = 20                # the learning check reads the mean of the last 20 iterations' numbers


@dataclasses.dataclass
class Phase1Result:
  iterations: int
  logs: Dict[str, float]
  graph: graph_lib.WorldGraph
  check: Dict[str, object]
  logdir: str


def fixed_waypoints(cfg: config_lib.WorldGraphConfig, walls: np.ndarray) -> Optional[np.ndarray]:
  """None for learned waypoints; V_rand (seeded, |V_p| cells) or the cells of a given JSON file."""
  mode, path = graph_lib.parse_waypoints_flag(cfg.waypoints)
  if mode == 'learned':
    return None
  if mode == 'random':
    count = exploration.waypoints_lib.waypoint_count(int((~walls).sum()), cfg.waypoint_fraction)
    return graph_lib.random_waypoints(walls, count, rng=runs.derived_seed(cfg.seed, 11))
  return graph_lib.load_waypoints(path, walls)


def decision_cells(walls: np.ndarray) -> np.ndarray:
  """bool [H, W]: the free cells where a walk has a choice or a turn: junctions (3-4 free neighbours), corners (2,
  not opposite) and dead ends (1). The rest are straight corridor cells."""
  free = ~walls
  padded = np.pad(free, 1, constant_values=False)
  up, down = padded[:-2, 1:-1], padded[2:, 1:-1]
  left, right = padded[1:-1, :-2], padded[1:-1, 2:]
  count = up.astype(int) + down + left + right
  straight = (count == 2) & ((up & down) | (left & right))
  return free & ~straight


def learning_check(logs: Dict[str, float], graph: graph_lib.WorldGraph, cfg: config_lib.WorldGraphConfig,
                   learned: bool) -> Dict[str, object]:
  """Did phase 1 do what it should? One line naming each number (the mean of the run's last CHECK_WINDOW
  iterations) and its threshold.

  - the gates meet their target: |E||z||_0 - mu0| <= 1.5 (spec Sec. 7: E||z||_0 ~ 5 of 25). An untrained inference
    net opens 13-16 of the 24 free gates; the CPU default (small maze) is at 7.8 after 600 iterations and 5.2
    after 1,200 (docs/world_graph_evidence.md);
  - the waypoints sit where routes branch or turn: the share of V_p on junctions, corners and dead ends
    (`decision_cells`) is at least 0.15 above their share of the free cells (36% on small; measured: 40% of V_p
    after 600 iterations, 87% after 1,200). Skipped when such cells are over 80% of the maze;
  - the decoder uses the open gates: NLL per action below ln 4 - 0.02 (uniform over the 4 moves). A random walk's
    actions cannot be recovered from ~5 of its 26 states, so this bar is low on purpose: it fails a decoder that
    ignores its input, not one that is merely short of the thesis's training;
  - the graph connects: every waypoint reaches every other through the edges.
  Random or given waypoints check only the graph (no VAE is trained).
  """
  parts = []
  if learned:
    l0, nll = logs.get('vae/expected_l0', 0.0), logs.get('vae/nll_per_step', float('inf'))
    bar = float(np.log(4.0)) - 0.02
    parts.append((abs(l0 - cfg.mu0) <= 1.5, f'E||z||_0 {l0:.2f} (want {cfg.mu0:g} +- 1.5)'))
    parts.append((nll < bar, f'action NLL {nll:.3f} nats/step (want < ln 4 - 0.02 = {bar:.3f})'))
    decision = decision_cells(graph.walls)
    base = float(decision.sum()) / float((~graph.walls).sum())
    if base <= 0.8 and graph.num_nodes:
      share = float(np.mean([decision[r, c] for r, c in graph.nodes]))
      parts.append((share >= base + 0.15, f'{100 * share:.0f}% of the waypoints on junctions, corners or dead ends '
                                          f'(want >= {100 * (base + 0.15):.0f}%: {100 * base:.0f}% of the free '
                                          'cells are)'))
  d = graph.distances
  reach = float(np.isfinite(d).mean()) if d.size else 0.0
  parts.append((reach == 1.0, f'{graph.num_nodes} waypoints, {len(graph.edges)} edges, '
                              f'{100 * reach:.0f}% of waypoint pairs connected (want 100%)'))
  passed = all(ok for ok, _ in parts)
  if passed:
    line = 'learning check passed: ' + '; '.join(t for _, t in parts)
  else:
    line = ('learning check FAILED: ' + '; '.join(t for ok, t in parts if not ok) + '. Passed: ' +
            ('; '.join(t for ok, t in parts if ok) or 'none'))
  return {'passed': passed, 'line': line}


def _progress_parts(logs: Dict[str, float]):
  parts = []
  if 'vae/nll_per_step' in logs:
    parts += [f'nll/step {logs["vae/nll_per_step"]:.3f}', f'acc {logs["vae/recon_accuracy"]:.2f}',
              f'L0 {logs["vae/expected_l0"]:.1f}', f'switches {logs["vae/expected_switches"]:.1f}',
              f'lambda {logs["vae/lambda_kl"]:.3f}/{logs["vae/lambda_l0"]:.3f}/{logs["vae/lambda_lt"]:.3f}']
  parts += [f'pi_g success {logs["pi_g/success"]:.2f}', f'visited {int(logs["explore/visited"])}',
            f'V_p {int(logs["explore/waypoints"])}']
  return parts


def _save_waypoints_picture(explorer, path):
  from rlcv_tf.worldgraph import viz  # pylint: disable=g-import-not-at-top
  prior = explorer.prior_means() if explorer.learned else None
  if prior is not None:                 # shaded from the lowest to the highest prior mean (they span ~0.05-0.16)
    low, high = np.nanmin(prior), np.nanmax(prior)
    prior = (prior - low) / max(high - low, 1e-9)
  viz.save(viz.waypoints_image(explorer.walls, explorer.waypoints, prior_means=prior,
                                   visited=explorer.visited), path)


def _export(explorer, path):
  from rlcv_tf.worldgraph import export  # pylint: disable=g-import-not-at-top
  os.makedirs(path, exist_ok=True)
  export.export_vae(explorer.vae, os.path.join(path, 'vae'))
  export.export_policy(explorer.pi_g, os.path.join(path, 'pi_g'), kind='pi_g')


def train_world_graph(cfg: config_lib.WorldGraphConfig, logdir: str, print_fn: Callable[[str], None] = print,
                      max_iterations: Optional[int] = None) -> Phase1Result:
  """Runs (or resumes) phase 1 into `logdir` and builds the world graph; see the module docstring.

  `max_iterations` stops this session after that many iterations (tests), saving as at the end.
  """
  cfg.validate()
  cfg_dict = dataclasses.asdict(cfg)
  cfg_dict['filters'] = list(cfg.filters)
  runs.check_same_settings(logdir, runs.load_config(logdir), cfg_dict, config_lib.ARCHITECTURE_FIELDS)
  layout = maze_layouts.load_maze(cfg.maze)
  fixed = fixed_waypoints(cfg, layout.walls)
  explorer = exploration.Explorer(cfg, fixed_waypoints=fixed)
  ckpt = checkpointing.RunCheckpointer(tf.train.Checkpoint(**explorer.checkpoint_objects()), logdir,
                                       interval_s=cfg.checkpoint_interval_s,
                                       export_fn=lambda path: _export(explorer, path))
  if ckpt.restore_latest():
    print_fn(f'{PREFIX}resumed from {ckpt.latest} at iteration {explorer.iteration_count:,}')
  writer = checkpointing.open_writer(logdir, cfg_dict, explorer.iteration_count, print_fn, PREFIX)
  what = 'learned waypoints (VAE + pi_g)' if explorer.learned else f'{cfg.waypoints} waypoints (pi_g only, no VAE)'
  print_fn(f'{PREFIX}{layout.name} maze {layout.walls.shape[0]}x{layout.walls.shape[1]} ({explorer.num_free} free '
           f'cells, |V_p| = {explorer.num_waypoints}), {what}: {cfg.iterations:,} iterations of {cfg.num_envs} '
           f'agents x {cfg.horizon} steps, profile {cfg.profile}, KL with '
           f'{cfg.kl_num_terms or "accurate"}{" terms" if cfg.kl_num_terms else ""}; logdir {logdir}')
  if cfg.profile == 'cpu':
    print_fn(f'{PREFIX}thesis scale (App. 3.C.1): --profile=full (128 agents, 3,600 iterations, full-size networks)')

  rate = progress.RateMeter()
  rate.update(explorer.iteration_count)
  stop = runs.StopOnSignal(print_fn, prefix=PREFIX)
  failure: Optional[BaseException] = None
  logs: Dict[str, float] = {}
  recent = collections.deque(maxlen=CHECK_WINDOW)          # the last iterations' logs, averaged for the check
  best_acc, best_at = -1.0, explorer.iteration_count
  session = 0
  last_log = time.monotonic()
  with stop:
    try:
      while explorer.iteration_count < cfg.iterations and not stop.requested:
        if max_iterations is not None and session >= max_iterations:
          break
        if session == 0:       # the first update optimises the graphs: drop oneDNN's fallback notice (core/quiet)
          with quiet.filtered_native_stderr(quiet.NATIVE_NOISE_AT_FIRST_STEP):
            logs = explorer.iteration()
        else:
          logs = explorer.iteration()
        session += 1
        recent.append(logs)
        it = explorer.iteration_count
        rate.update(it)
        if it % cfg.summary_every == 0 or it == cfg.iterations:
          with writer.as_default(step=it):
            for k, v in logs.items():
              tf.summary.scalar(k, v)
            tf.summary.scalar('throughput/iterations_per_second', rate.rate)
        if it == PICTURE_ITERATION:
          _save_waypoints_picture(explorer, os.path.join(logdir, f'waypoints_iter_{it:07d}.png'))
        now = time.monotonic()
        if now - last_log >= cfg.log_interval_s or it == cfg.iterations or session == 1:
          last_log = now
          per = 1.0 / rate.rate if rate.rate > 0 else float('nan')
          print_fn(' | '.join([f'{PREFIX}iteration {it:,}/{cfg.iterations:,} ({100 * it / cfg.iterations:.0f}%)',
                               f'{per:.2f} s/iteration'] + _progress_parts(logs) +
                              [f'ETA {progress.format_duration(rate.eta(it, cfg.iterations))}']))
        ckpt.maybe_save(it)
        acc = logs.get('vae/recon_accuracy')
        if cfg.plateau_patience and acc is not None:
          if acc > best_acc + cfg.plateau_delta:
            best_acc, best_at = acc, it
          elif it - best_at >= cfg.plateau_patience:
            print_fn(f'{PREFIX}reconstruction accuracy plateaued at {best_acc:.3f} (no gain of '
                     f'{cfg.plateau_delta:g} in {cfg.plateau_patience} iterations): stopping at iteration {it:,}')
            break
    except Exception as e:  # pylint: disable=broad-except
      failure = e
  if failure is not None or stop.requested:
    ckpt.save_and_stop(explorer.iteration_count, failure, stop, print_fn, PREFIX, unit='iterations')

  it = explorer.iteration_count
  if explorer.learned:
    explorer.refresh_waypoints()                   # the final V_p from the final prior
  if not logs:                                     # nothing trained this session (already finished)
    print_fn(f'{PREFIX}{logdir} already holds {it:,} iterations >= --iterations={cfg.iterations:,}; building the '
             'graph from it (raise --iterations to train further)')
  _save_waypoints_picture(explorer, os.path.join(logdir, 'waypoints_final.png'))
  graph = explorer.build_graph()
  graph.save(logdir)
  from rlcv_tf.worldgraph import viz  # pylint: disable=g-import-not-at-top
  viz.save(viz.graph_image(explorer.walls, graph), os.path.join(logdir, 'graph.png'))
  averaged = {k: float(np.mean([r[k] for r in recent if k in r])) for k in logs}
  check = learning_check(averaged, graph, cfg, explorer.learned) if logs else {'passed': None, 'line': 'not run'}
  where = ckpt.save_all(it)
  with open(os.path.join(logdir, 'phase1.json'), 'w') as f:
    json.dump({'iterations': it, 'final': logs, f'mean_of_last_{CHECK_WINDOW}': averaged if logs else {},
               'waypoints': graph.nodes, 'num_edges': len(graph.edges),
               'learning_check': check}, f, indent=1, default=float)
  with writer.as_default(step=it):
    tf.summary.scalar('graph/waypoints', graph.num_nodes)
    tf.summary.scalar('graph/edges', len(graph.edges))
  writer.flush()
  if logs:
    print_fn(f'{PREFIX}{check["line"]}')
  print_fn(f'{PREFIX}done: iteration {it:,}; {graph.num_nodes} waypoints, {len(graph.edges)} edges -> '
           f'{os.path.join(logdir, graph_lib.GRAPH_FILE)}; pictures waypoints_final.png, graph.png; {where}; next: '
           f'python -m launchers.feudal --graph_from={logdir}')
  return Phase1Result(it, logs, graph, check, logdir)


# ---------------------------------------------------------------------------------------------------------------
# Phase 2: the Feudal HRL run (launchers/feudal.py).

FEUDAL_PREFIX = '[feudal] '


def load_phase1(graph_from: str, walls: np.ndarray, need_pi_g: bool, sizes=None):
  """(graph or None, pi_g or None) from a phase-1 logdir: graph.json checked against the maze, pi_g restored from
  the run's latest checkpoint with the sizes its config.json records (which must equal `sizes` for pig_init)."""
  graph = graph_lib.WorldGraph.load(graph_from, expect_maze=walls, flag='--graph_from')
  pi_g = None
  if need_pi_g:
    saved = runs.load_config(graph_from)
    from rlcv_tf.worldgraph import networks  # pylint: disable=g-import-not-at-top
    phase1_sizes = networks.NetworkSizes(filters=tuple(saved['filters']), dense=saved['dense'],
                                         lstm=saved['policy_lstm'], fc=saved['policy_fc'])
    if sizes is not None and (tuple(sizes.filters), sizes.dense, sizes.lstm, sizes.fc) != (
        phase1_sizes.filters, phase1_sizes.dense, phase1_sizes.lstm, phase1_sizes.fc):
      raise ValueError(f'--graph_from={graph_from}: its pi_g has filters {phase1_sizes.filters}, dense '
                       f'{phase1_sizes.dense}, LSTM {phase1_sizes.lstm}, fc {phase1_sizes.fc}, but this run\'s '
                       f'networks are {tuple(sizes.filters)}, {sizes.dense}, {sizes.lstm}, {sizes.fc}: --pig_init '
                       'copies weights, so use the same --profile as phase 1 (or --nopig_init)')
    pi_g = networks.GoalPolicy(walls.shape, 4, phase1_sizes).build_network()
    latest = tf.train.latest_checkpoint(os.path.join(graph_from, 'checkpoints'))
    if latest is None:
      raise ValueError(f'--graph_from={graph_from}: no checkpoint of pi_g in {graph_from}/checkpoints; finish phase '
                       '1 there first (python -m launchers.world_graph)')
    tf.train.Checkpoint(pi_g=pi_g).restore(latest).expect_partial()
  return graph, pi_g


def random_policy_score(cfg, seeds) -> Tuple[float, float]:
  """(score, its standard error) of uniformly random actions on the given env seeds, one episode each: the mean
  return (success rate on Door-Key) and std / sqrt(n)."""
  from rlcv_tf.envs import maze as maze_lib  # pylint: disable=g-import-not-at-top
  env = maze_lib.BatchMaze(len(seeds), maze_layouts.load_maze(cfg.maze), cfg.task, seeds=list(seeds))
  rng = np.random.default_rng(runs.derived_seed(cfg.seed, 77))
  done = np.zeros(len(seeds), bool)
  returns, successes = np.zeros(len(seeds)), np.zeros(len(seeds))
  while not done.all():
    _, _, terminated, truncated, info = env.step(rng.integers(env.num_actions, size=len(seeds)))
    ended = (terminated | truncated) & ~done
    returns[ended] = info['episode_return'][ended]
    successes[ended] = info['success'][ended]
    done |= ended
  values = successes if cfg.task == 'doorkey' else returns
  return float(values.mean()), float(values.std() / np.sqrt(len(values)))


def _score_and_error(result, task: str) -> Tuple[float, float]:
  values = np.asarray(result['successes' if task == 'doorkey' else 'returns'], np.float64).reshape(-1)
  return float(values.mean()), float(values.std() / np.sqrt(len(values)))


def save_episode_picture(trainer, cfg, path: str, seed: int) -> str:
  """Plays one validation episode (env seed `seed`) with the trainer's networks and draws it with the Manager's
  goals (g^w outlined blue, g^n a magenta disk; viz.episode_image)."""
  from rlcv_tf.envs import maze as maze_lib  # pylint: disable=g-import-not-at-top
  from rlcv_tf.worldgraph import feudal  # pylint: disable=g-import-not-at-top
  from rlcv_tf.worldgraph import viz  # pylint: disable=g-import-not-at-top
  env = maze_lib.BatchMaze(1, trainer.policies.layout, cfg.task, seeds=[seed])
  runner = feudal.Runner(trainer.policies, env, lambda step, stream: feudal.stateless_seed(seed, 5, step, stream))
  frames, goals, last = [runner.obs[0].copy()], [], None
  for _ in range(env.max_steps + 1):
    out = runner.step(feudal.Recorder(1, store=False))
    wide = getattr(runner, 'wide_cell', None)
    if wide is not None:
      pair = (tuple(int(v) for v in runner.wide_cell[0]), tuple(int(v) for v in runner.narrow_cell[0]))
      if pair != last:
        goals.append((len(frames) - 1, pair[0], pair[1]))
        last = pair
    if out['terminated'][0] or out['truncated'][0]:
      frames.append(out['info']['final_obs'][0])
      break
    frames.append(runner.obs[0].copy())
  return viz.save_episode(path, trainer.policies.layout.walls, np.stack(frames), goals=goals)


def train_feudal(cfg, logdir: str, print_fn: Callable[[str], None] = print,
                 max_iterations: Optional[int] = None) -> Dict[str, object]:
  """Trains phase 2 (`cfg`: config.FeudalConfig) into `logdir`, or resumes it; validates every `eval_every`
  iterations on the validation seeds, keeps the best weights, and at the end tests them on the test seeds (spec
  Sec. 4.11) against uniformly random play and against the untrained agent (scored before the first update).
  Writes config.json, checkpoints, TensorBoard, best/, eval.json and
  agent/ (the exported agent: worldgraph/export.py; `python -m launchers.feudal_eval --agent=DIR` plays it)."""
  from rlcv_tf.worldgraph import export  # pylint: disable=g-import-not-at-top
  from rlcv_tf.worldgraph import feudal  # pylint: disable=g-import-not-at-top
  cfg.validate()
  cfg_dict = dataclasses.asdict(cfg)
  cfg_dict['filters'] = list(cfg.filters)
  runs.check_same_settings(logdir, runs.load_config(logdir), cfg_dict, config_lib.FEUDAL_ARCHITECTURE_FIELDS)
  layout = maze_layouts.load_maze(cfg.maze)
  graph, pi_g = None, None
  if cfg.graph_from:
    graph, pi_g = load_phase1(cfg.graph_from, layout.walls, need_pi_g=cfg.pig_init or cfg.traversal,
                              sizes=cfg.network_sizes if cfg.pig_init else None)
  trainer = feudal.HRLTrainer(cfg, graph=graph if cfg.model == 'wn' else None, pi_g=pi_g)
  best_score = tf.Variable(-np.inf, dtype=tf.float64, trainable=False, name='best_score')
  initial_score = tf.Variable(np.nan, dtype=tf.float64, trainable=False, name='initial_score')
  initial_error = tf.Variable(np.nan, dtype=tf.float64, trainable=False, name='initial_error')
  ckpt = checkpointing.RunCheckpointer(tf.train.Checkpoint(best_score=best_score, initial_score=initial_score,
                                                           initial_error=initial_error,
                                                           **trainer.checkpoint_objects()),
                                       logdir, interval_s=cfg.checkpoint_interval_s, export_fn=None)
  if ckpt.restore_latest():
    print_fn(f'{FEUDAL_PREFIX}resumed from {ckpt.latest} at iteration {trainer.iteration_count:,}')
  if trainer.iteration_count == 0 and np.isnan(float(initial_score.numpy())):
    # The untrained agent on the test seeds: with traversal a WN agent beats random play before any update, so the
    # learning check compares the trained agent with its own start as well as with random play.
    with quiet.filtered_native_stderr(quiet.NATIVE_NOISE_AT_FIRST_STEP):   # the first graphs: oneDNN's notice
      start = _score_and_error(feudal.evaluate(trainer, feudal.test_seeds(cfg), sample_seed=10_000), cfg.task)
    initial_score.assign(start[0])
    initial_error.assign(start[1])
    print_fn(f'{FEUDAL_PREFIX}untrained agent on the {cfg.num_test_seeds} test seeds: score '
             f'{float(initial_score.numpy()):.3f}')
  writer = checkpointing.open_writer(logdir, cfg_dict, trainer.iteration_count, print_fn, FEUDAL_PREFIX)
  parts = {'a2c': 'flat A2C', 'fn': 'FN Manager + Worker', 'wn': f'Wide-then-Narrow Manager (N = {cfg.window}) + '
                                                                f'Worker'}[cfg.model]
  print_fn(f'{FEUDAL_PREFIX}{layout.name} maze, {cfg.task}: {parts}, pi_g-init {"on" if cfg.pig_init else "off"}, '
           f'traversal {trainer.policies.traversal_mode or "off"}; {cfg.iterations:,} iterations of {cfg.num_envs} '
           f'envs x {cfg.worker_steps} Worker decisions, profile {cfg.profile}; logdir {logdir}')
  best_dir = os.path.join(logdir, 'best')
  nets = {'worker': trainer.worker}
  if trainer.manager is not None:
    nets['manager'] = trainer.manager
  best_ckpt = tf.train.Checkpoint(**nets)
  rate = progress.RateMeter()
  rate.update(trainer.iteration_count)
  stop = runs.StopOnSignal(print_fn, prefix=FEUDAL_PREFIX)
  failure: Optional[BaseException] = None
  logs: Dict[str, float] = {}
  recent_returns = []
  session = 0
  last_log = time.monotonic()

  def validate(it):
    result = feudal.evaluate(trainer, feudal.validation_seeds(cfg), sample_seed=it)
    improved = result['score'] > float(best_score.numpy())
    if improved:
      best_score.assign(result['score'])
      best_ckpt.write(os.path.join(best_dir, 'ckpt'))
    with writer.as_default(step=it):
      tf.summary.scalar('validation/score', result['score'])
    print_fn(f'{FEUDAL_PREFIX}validation at iteration {it:,}: score {result["score"]:.3f} on '
             f'{cfg.num_val_seeds} seeds{"; best so far, saved to " + best_dir if improved else ""}')

  with stop:
    try:
      while trainer.iteration_count < cfg.iterations and not stop.requested:
        if max_iterations is not None and session >= max_iterations:
          break
        if session == 0:
          with quiet.filtered_native_stderr(quiet.NATIVE_NOISE_AT_FIRST_STEP):
            logs = trainer.iteration()
        else:
          logs = trainer.iteration()
        session += 1
        it = trainer.iteration_count
        rate.update(it)
        if 'episode/return' in logs:
          recent_returns = (recent_returns + [logs['episode/return']])[-20:]
        if it % cfg.summary_every == 0 or it == cfg.iterations:
          with writer.as_default(step=it):
            for k, v in logs.items():
              tf.summary.scalar(k, v)
        if it % cfg.eval_every == 0 or it == cfg.iterations:
          validate(it)
        now = time.monotonic()
        if now - last_log >= cfg.log_interval_s or it == cfg.iterations or session == 1:
          last_log = now
          per = 1.0 / rate.rate if rate.rate > 0 else float('nan')
          shown = [f'{FEUDAL_PREFIX}iteration {it:,}/{cfg.iterations:,} ({100 * it / cfg.iterations:.0f}%)',
                   f'{per:.2f} s/iteration']
          if recent_returns:
            shown.append(f'episode return {np.mean(recent_returns):.2f}')
          for key, name in (('episode/success', 'success'), ('subgoal/narrow_reached', 'g^n reached'),
                            ('traversal/started', 'traversals')):
            if key in logs:
              shown.append(f'{name} {logs[key]:.2f}')
          shown.append(f'ETA {progress.format_duration(rate.eta(it, cfg.iterations))}')
          print_fn(' | '.join(shown))
        ckpt.maybe_save(it)
    except Exception as e:  # pylint: disable=broad-except
      failure = e
  if failure is not None or stop.requested:
    ckpt.save_and_stop(trainer.iteration_count, failure, stop, print_fn, FEUDAL_PREFIX, unit='iterations')
  it = trainer.iteration_count
  ckpt.save(it)
  if os.path.exists(os.path.join(best_dir, 'ckpt.index')):
    best_ckpt.read(os.path.join(best_dir, 'ckpt')).assert_existing_objects_matched()
  with quiet.filtered_native_stderr(quiet.NATIVE_NOISE_AT_FIRST_STEP):   # first graphs of a session that trained none
    test = feudal.evaluate(trainer, feudal.test_seeds(cfg), sample_seed=10_000)
  score, error = _score_and_error(test, cfg.task)
  baseline, baseline_error = random_policy_score(cfg, feudal.test_seeds(cfg))
  start_score, start_error = float(initial_score.numpy()), float(initial_error.numpy())
  metric = 'success rate' if cfg.task == 'doorkey' else 'mean return per episode'
  # Better than each reference by two standard errors of the difference (100 seeds, one episode each).
  refs = [('uniformly random play', baseline, baseline_error)]
  if np.isfinite(start_score):
    refs.append(('the untrained agent', start_score, start_error))
  verdicts = [(score - value > 2.0 * np.hypot(error, err), name, value, err) for name, value, err in refs]
  passed = all(ok for ok, *_ in verdicts)
  line = (f'learning check {"passed" if passed else "FAILED"}: test {metric} {score:.3f} +- {error:.3f} on '
          f'{cfg.num_test_seeds} seeds (best validation weights) vs ' +
          ', '.join(f'{name} {value:.3f} +- {err:.3f}' for _, name, value, err in verdicts) +
          ' (want each gap > 2 standard errors)')
  try:
    save_episode_picture(trainer, cfg, os.path.join(logdir, 'episode.png'), feudal.validation_seeds(cfg)[0])
  except Exception as e:  # pylint: disable=broad-except  (a picture must not cost the run its results)
    print_fn(f'{FEUDAL_PREFIX}episode picture not written: {type(e).__name__}: {e}')
  agent_dir = os.path.join(logdir, 'agent')
  config = dict(cfg_dict, horizon=cfg.horizon)
  if cfg.model == 'a2c':
    export.export_agent(agent_dir, flat=trainer.worker, config=config)
  else:
    export.export_agent(agent_dir, manager=trainer.manager, worker=trainer.worker, pi_g=pi_g,
                        graph=trainer.graph if cfg.model == 'wn' else None,
                        config=dict(config, traversal=bool(cfg.traversal)))
  result = {'iterations': it, 'test_score': test['score'], 'test_standard_error': error, 'test_mean_return': test['mean_return'],
            'test_success_rate': test['success_rate'], 'random_score': baseline, 'untrained_score': start_score,
            'best_validation_score': float(best_score.numpy()), 'learning_check': {'passed': passed, 'line': line},
            'final_logs': logs}
  with open(os.path.join(logdir, 'eval.json'), 'w') as f:
    json.dump(result, f, indent=1, default=float)
  with writer.as_default(step=it):
    tf.summary.scalar('test/score', test['score'])
    tf.summary.scalar('test/random_score', baseline)
  writer.flush()
  print_fn(f'{FEUDAL_PREFIX}{line}')
  print_fn(f'{FEUDAL_PREFIX}done: iteration {it:,}; eval.json, episode.png, agent {agent_dir} (python -m launchers.feudal_eval '
           f'--agent={agent_dir})')
  return result
