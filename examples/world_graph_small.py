r"""Chapter 3 evidence on CPU (issue 11 §7): phase 1 on the small maze, then A2C vs FN vs WN + pi_g-init + traversal
on small MultiGoal, several training seeds each, against Table 3.2's small MultiGoal row.

  python examples/world_graph_small.py                    # 1 phase-1 run + 3 models x 3 seeds: about 50 min on 2 cores
  python examples/world_graph_small.py --seeds=0 --feudal_iterations=50 --phase1_iterations=100 --out=/tmp/wg_quick

What it reports (--out, default docs/world_graph_small; <out>.md and <out>.json):
  phase 1: E||z||_0, switches, action NLL, the multipliers against the thesis's 0.067 / 0.070 / 0.051 (medium maze),
    the share of waypoints on junctions / corners / dead ends, and route lengths over the graph against the maze's
    BFS distances between the same waypoints (ratio 1 = the graph's routes are shortest paths);
  phase 2: per model the test score (100 seeds, best validation weights) as mean +- std over the training seeds
    (spec A16), the untrained agent's score and uniformly random play, next to Table 3.2 (A2C 2.04, FN 2.93,
    Ours 5.05). Absolute values cannot match (unpublished mazes, a tiny fraction of the thesis's budget); the
    ordering is the claim, and it is read only if the seed spreads allow.
Runs live under --root and are reused when finished (their eval.json / phase1.json exist).
"""

import json
import os
import sys

from absl import app
from absl import flags
from absl import logging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=g-import-not-at-top

from rlcv_tf.core import quiet  # pylint: disable=g-import-not-at-top

flags.DEFINE_string('root', 'runs/world_graph_small', 'Where the runs go (reused when finished).')
flags.DEFINE_string('out', 'docs/world_graph_small', 'Report path without extension (.md and .json are written).')
flags.DEFINE_list('seeds', ['0', '1', '2'], 'Training seeds of each phase-2 model.')
flags.DEFINE_list('models', ['a2c', 'fn', 'wn'], 'Phase-2 models (wn runs with pi_g-init and traversal).')
flags.DEFINE_integer('phase1_iterations', 1200, 'Phase-1 iterations (the cpu default).')
flags.DEFINE_integer('feudal_iterations', 300, 'Phase-2 iterations per run (the cpu default).')

FLAGS = flags.FLAGS
THESIS_SMALL_MULTIGOAL = {'a2c': (2.04, 0.05), 'fn': (2.93, 0.74), 'wn': (5.05, 0.03)}
THESIS_LAMBDAS = (0.067, 0.070, 0.051)


def route_ratios(graph, walls):
  """Route length over the graph / BFS distance in the maze, for every connected ordered pair of waypoints."""
  from rlcv_tf.worldgraph import graph as graph_lib  # pylint: disable=g-import-not-at-top
  ratios = []
  for i, src in enumerate(graph.nodes):
    bfs = graph_lib.bfs_distances(walls, src)
    for j, dst in enumerate(graph.nodes):
      if i != j and graph.has_path(i, j) and bfs[dst] > 0:
        ratios.append(graph.distances[i, j] / bfs[dst])
  return np.array(ratios)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)      # the project's lines, not TensorFlow's INFO ones
  quiet.import_tensorflow()
  from rlcv_tf.worldgraph import config as config_lib  # pylint: disable=g-import-not-at-top
  from rlcv_tf.worldgraph import graph as graph_lib  # pylint: disable=g-import-not-at-top
  from rlcv_tf.worldgraph import training  # pylint: disable=g-import-not-at-top
  say = lambda s: print(s, flush=True)
  p1_dir = os.path.join(FLAGS.root, 'phase1')
  if not os.path.exists(os.path.join(p1_dir, 'phase1.json')):
    training.train_world_graph(config_lib.WorldGraphConfig.for_profile('cpu', iterations=FLAGS.phase1_iterations),
                               p1_dir, print_fn=say)
  with open(os.path.join(p1_dir, 'phase1.json')) as f:
    phase1 = json.load(f)
  graph = graph_lib.WorldGraph.load(p1_dir)
  walls = graph.walls
  decision = training.decision_cells(walls)
  final = phase1.get('mean_of_last_20') or phase1['final']
  ratios = route_ratios(graph, walls)
  p1 = {'iterations': phase1['iterations'], 'expected_l0': final.get('vae/expected_l0'),
        'expected_switches': final.get('vae/expected_switches'), 'nll_per_step': final.get('vae/nll_per_step'),
        'lambdas': [final.get(f'vae/lambda_{k}') for k in ('kl', 'l0', 'lt')],
        'decision_share': float(np.mean([decision[r, c] for r, c in graph.nodes])),
        'decision_base': float(decision.sum() / (~walls).sum()), 'waypoints': graph.num_nodes,
        'edges': len(graph.edges), 'route_over_bfs_mean': float(ratios.mean()) if len(ratios) else None,
        'route_over_bfs_max': float(ratios.max()) if len(ratios) else None,
        'route_is_shortest_fraction': float(np.mean(np.isclose(ratios, 1.0))) if len(ratios) else None}

  runs = {}
  for model in FLAGS.models:
    for seed in FLAGS.seeds:
      run_dir = os.path.join(FLAGS.root, f'{model}_seed{seed}')
      if not os.path.exists(os.path.join(run_dir, 'eval.json')):
        cfg = config_lib.FeudalConfig.for_profile('cpu', model=model, seed=int(seed),
                                                  iterations=FLAGS.feudal_iterations,
                                                  graph_from=p1_dir if model == 'wn' else '')
        training.train_feudal(cfg, run_dir, print_fn=say)
      with open(os.path.join(run_dir, 'eval.json')) as f:
        runs[(model, seed)] = json.load(f)

  rows = []
  for model in FLAGS.models:
    scores = np.array([runs[(model, s)]['test_score'] for s in FLAGS.seeds])
    untrained = np.array([runs[(model, s)].get('untrained_score', np.nan) for s in FLAGS.seeds], np.float64)
    random = np.array([runs[(model, s)]['random_score'] for s in FLAGS.seeds])
    rows.append((model, scores, untrained, random))
  lines = ['# Chapter 3 on the small maze: phase 1 and Table 3.2\'s small MultiGoal row, on CPU', '',
           f'Written by `python examples/world_graph_small.py` (seeds {", ".join(FLAGS.seeds)}; phase 1 '
           f'{p1["iterations"]} iterations, phase 2 {FLAGS.feudal_iterations} iterations per run, cpu profile).', '',
           '## Phase 1', '',
           f'- E||z||_0 {p1["expected_l0"]:.2f} (target 5), switches {p1["expected_switches"]:.2f} (target 10), '
           f'action NLL {p1["nll_per_step"]:.3f} nats/step (uniform 1.386)',
           f'- multipliers KL / L0 / LT: ' + ' / '.join(f'{v:.3f}' for v in p1['lambdas']) +
           f' (thesis, medium maze: {" / ".join(str(v) for v in THESIS_LAMBDAS)})',
           f'- {p1["waypoints"]} waypoints, {100 * p1["decision_share"]:.0f}% on junctions, corners or dead ends '
           f'({100 * p1["decision_base"]:.0f}% of the free cells); {p1["edges"]} edges',
           f'- routes over the graph / BFS distance: mean {p1["route_over_bfs_mean"]:.2f}, max '
           f'{p1["route_over_bfs_max"]:.2f}; shortest for {100 * p1["route_is_shortest_fraction"]:.0f}% of the '
           'connected waypoint pairs', '',
           '## Phase 2: small MultiGoal (test return on 100 seeds, mean +- std over training seeds)', '',
           '| model | test return | per seed | untrained | random play | Table 3.2 |', '|---|---|---|---|---|---|']
  for model, scores, untrained, random in rows:
    thesis = THESIS_SMALL_MULTIGOAL.get(model)
    lines.append(f'| {model} | {scores.mean():.2f} +- {scores.std():.2f} | '
                 f'{", ".join(f"{v:.2f}" for v in scores)} | {np.nanmean(untrained):.2f} | {random.mean():.2f} | '
                 f'{f"{thesis[0]} +- {thesis[1]}" if thesis else "-"} |')
  order = [m for m, *_ in sorted(rows, key=lambda r: r[1].mean())]
  lines += ['', f'Order here (lowest first): {" < ".join(order)}; Table 3.2: a2c < fn < wn. With '
            f'{len(FLAGS.seeds)} seed(s) per model, read an order only where the mean gap exceeds the stds.']
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
  with open(FLAGS.out + '.md', 'w') as f:
    f.write('\n'.join(lines) + '\n')
  with open(FLAGS.out + '.json', 'w') as f:
    json.dump({'phase1': p1, 'runs': {f'{m}_seed{s}': r for (m, s), r in runs.items()}}, f, indent=1,
              default=float)
  say('\n'.join(lines))


if __name__ == '__main__':
  app.run(main)
