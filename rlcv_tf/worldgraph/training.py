"""The phase-1 run: Alg. 6 for `iterations` (or to an accuracy plateau), then the world graph, with everything a run
leaves behind. `launchers/world_graph.py` calls `train_world_graph`.

What a logdir holds:
  config.json            every setting (checked on resume: the architecture fields must match)
  checkpoints/           VAE, pi_g, both optimisers, the multipliers, V_p, visited cells, the iteration; saved every
                         `checkpoint_interval_s`, at the end, and on Ctrl-C / SIGTERM; re-running resumes
  events.out.tfevents.*  TensorBoard: vae/{nll, nll_per_step, recon_accuracy, kl, expected_l0, expected_switches,
                         lambda_kl, lambda_l0, lambda_lt, ...}, pi_g/{success, steps, loss_*}, explore/{visited, ...}
  waypoints_iter_0000100.png, waypoints_final.png   V_p over the prior means (Fig. 3.D.1); V_p in blue
  graph.png, graph.json  the world graph (graph.py documents graph.json)
  phase1.json            the final numbers, the graph's size and the learning check's verdict
  saved_model/vae, saved_model/pi_g   SavedModels (worldgraph/export.py)
"""

import dataclasses
import json
import os
import time
from typing import Callable, Dict, Optional

import numpy as np
import tensorflow as tf

from rlcv_tf.core import checkpointing
from rlcv_tf.core import progress
from rlcv_tf.core import quiet
from rlcv_tf.core import runs
from rlcv_tf.worldgraph import config as config_lib
from rlcv_tf.worldgraph import exploration
from rlcv_tf.worldgraph import graph as graph_lib

PREFIX = '[world_graph] '
PICTURE_ITERATION = 100          # Fig. 3.D.1 shows V_p at iterations 100 and 1,200


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


def learning_check(logs: Dict[str, float], graph: graph_lib.WorldGraph, cfg: config_lib.WorldGraphConfig,
                   learned: bool) -> Dict[str, object]:
  """Did phase 1 do what it should? One line naming each number and its threshold.

  - the gates meet their target: |E||z||_0 - mu0| <= 1.5 (spec Sec. 7: E||z||_0 ~ 5 of 25); an untrained inference
    net opens about 13-16 of 24 free gates (measured on small);
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
  layout = exploration.load_layout(cfg.maze)
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
  check = learning_check(logs, graph, cfg, explorer.learned) if logs else {'passed': None, 'line': 'not run'}
  where = ckpt.save_all(it)
  with open(os.path.join(logdir, 'phase1.json'), 'w') as f:
    json.dump({'iterations': it, 'final': logs, 'waypoints': graph.nodes, 'num_edges': len(graph.edges),
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
