r"""Seed 003 evidence on the ring of 8 Gaussians (issue 15 §7): GAN (non-saturating) vs WGAN (the slides' clipping
and RMSProp) vs WGAN-GP, with modes covered and the exact W1 to real samples over training.

  python examples/gans_ring.py                      # 3 models x 20,000 generator steps, seed 0 (~15 min on 2 cores)
  python examples/gans_ring.py --steps=2000 --seeds=0,1

Every model runs with its paper's defaults (GAN: Adam 1e-3, beta1 0.5; WGAN: RMSProp 5e-5, c = 0.01, n_critic 5;
WGAN-GP: Adam(1e-4, 0.5, 0.9), lambda 10, n_critic 5), the same batch (256), the same generator and D / critic MLPs
(2 x 128), and equal numbers of generator updates. Outputs (--out, default docs/gans_ring/): ring.json (per model
and seed: the W1 / modes history and the final scores), curves.png (W1 and modes covered against generator steps),
samples.png (final samples of each model over the real points). Runs live under --root (re-running resumes them).
"""

import json
import os
import sys
import time

from absl import app
from absl import flags
from absl import logging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

flags.DEFINE_list('models', ['gan', 'wgan', 'wgan_gp'], 'Models to compare.')
flags.DEFINE_list('seeds', ['0'], 'Seeds.')
flags.DEFINE_integer('steps', 20_000, 'Generator updates per run.')
flags.DEFINE_integer('eval_every', 500, 'Steps between W1 / modes evaluations.')
flags.DEFINE_string('root', 'runs/examples/gans_ring', 'Where the runs go.')
flags.DEFINE_string('out', 'docs/gans_ring', 'Output folder.')
flags.DEFINE_bool('report_only', False, 'Rewrite ring.md from an existing ring.json (no training).')
FLAGS = flags.FLAGS


def write_report(results: dict, out: str) -> str:
  """ring.md: per run the final W1 / modes / high-quality share and the first step with all 8 modes."""
  models = sorted({row['model'] for row in results.values()}, key=FLAGS.models.index)
  settings = {'gan': 'GAN: Adam 1e-3, beta1 0.5', 'gan_saturating': 'GAN with the slide\'s saturating G loss: '
              'Adam 1e-3, beta1 0.5', 'wgan': 'WGAN: RMSProp 5e-5, c = 0.01, n_critic 5',
              'wgan_gp': 'WGAN-GP: Adam(1e-4, 0.5, 0.9), lambda 10, n_critic 5'}
  lines = [f'# Ring of 8 Gaussians: {" vs ".join(models)} (seed 003)', '',
           f'`python examples/gans_ring.py --models={",".join(models)}`: seeds {", ".join(FLAGS.seeds)}; '
           f'{max(h["step"] for row in results.values() for h in row["history"]):,} generator steps; each model with its paper\'s optimiser and learning rate '
           f'({"; ".join(settings.get(m, m) for m in models)}), the same MLPs and batch, equal '
           'generator updates. Exact W1 by optimal assignment between 1,000 generated and 1,000 real points; a mode '
           'is covered when enough samples fall within 3 std of its centre; high quality = the share of samples that '
           'do. Ring std 0.05.', '',
           '| run | W1 (untrained) | modes covered | high quality | first step with 8 modes | steps/s |',
           '|---|---:|---:|---:|---:|---:|']
  for name, row in results.items():
    f = row['final']
    full = [h['step'] for h in row['history'] if h['modes_covered'] >= 8]
    lines.append(f'| {name} | {f["eval/w1"]:.3f} ({f["eval/w1_untrained"]:.3f}) | {f["eval/modes_covered"]:.0f} / 8 | '
                 f'{f["eval/high_quality"]:.2f} | {full[0] if full else "never"} | {row["steps_per_second"]:.0f} |')
  lines += ['', '![W1 and modes over training](curves.png)', '',
            f'![final samples, one row per model: {", ".join(models)} (black), real points (blue / red)](samples.png)',
            '', 'Reading: one seed per model, so this describes runs, not methods.'
            + (' The learning rates differ by model (each paper\'s own), which confounds any speed comparison: '
               'WGAN\'s 5e-5 is 20x smaller than the GAN\'s 1e-3. The clipped WGAN\'s critic (every weight in '
               '[-0.01, 0.01]) is a weak critic at this budget.' if 'wgan' in models else '')]
  path = os.path.join(out, 'ring.md')
  with open(path, 'w') as fh:
    fh.write('\n'.join(lines) + '\n')
  return path


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)      # the SavedModel writer's INFO lines
  if FLAGS.report_only:
    with open(os.path.join(FLAGS.out, 'ring.json')) as f:
      print(f'[gans_ring] wrote {write_report(json.load(f), FLAGS.out)}')
    return
  from rlcv_tf.core import quiet  # pylint: disable=g-import-not-at-top
  quiet.import_tensorflow()
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from rlcv_tf.core import images as images_lib  # pylint: disable=g-import-not-at-top
  from rlcv_tf.gans import data as data_lib  # pylint: disable=g-import-not-at-top
  from rlcv_tf.gans import evaluation  # pylint: disable=g-import-not-at-top
  from rlcv_tf.gans import training  # pylint: disable=g-import-not-at-top
  os.makedirs(FLAGS.out, exist_ok=True)
  results, pictures = {}, []
  for model in FLAGS.models:
    for seed in map(int, FLAGS.seeds):
      logdir = os.path.join(FLAGS.root, f'{model}_s{seed}')
      print(f'[gans_ring] {model} seed {seed}: {FLAGS.steps:,} generator steps into {logdir}', flush=True)
      cfg = training.GANConfig(model=model, dataset='ring8', seed=seed)
      run = training.RunConfig(steps=FLAGS.steps, eval_every=FLAGS.eval_every, image_every=FLAGS.steps,
                               summary_every=100, log_interval_s=30)
      start = time.monotonic()
      out = training.train(cfg, run, logdir, print_fn=lambda line: print('  ' + line, flush=True))
      history = []
      with open(os.path.join(logdir, 'eval_history.jsonl')) as f:
        for line in f:
          history.append(json.loads(line))
      history = sorted({row['step']: row for row in history}.values(), key=lambda row: row['step'])
      results[f'{model}_s{seed}'] = {'model': model, 'seed': seed, 'final': out.evaluation, 'history': history,
                                     'wall_s': time.monotonic() - start, 'steps_per_second': out.steps_per_second}
      if seed == int(FLAGS.seeds[0]):
        import tensorflow as tf  # pylint: disable=g-import-not-at-top
        loaded = tf.saved_model.load(os.path.join(logdir, 'saved_model'))
        z = tf.random.stateless_normal((1000, cfg.resolved().z_dim), seed=(seed, 5))
        points = loaded.generate(z)['samples'].numpy()
        real, _ = data_lib.sample_ring(1000, np.random.default_rng(seed))
        pictures.append(evaluation.scatter_image(points, size=200, reference=real))
  with open(os.path.join(FLAGS.out, 'ring.json'), 'w') as f:
    json.dump(results, f, indent=1, sort_keys=True)
  images_lib.save_png(images_lib.stack_rows(pictures) if len(pictures) > 1 else pictures[0],
                      os.path.join(FLAGS.out, 'samples.png'), scale=2)
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
  for name, row in results.items():
    steps = [h['step'] for h in row['history']]
    axes[0].plot(steps, [h['w1'] for h in row['history']], label=name)
    axes[1].plot(steps, [h['modes_covered'] for h in row['history']], label=name)
  axes[0].set(xlabel='generator steps', ylabel='exact W1 to real samples', yscale='log')
  axes[1].set(xlabel='generator steps', ylabel='modes covered (of 8)', ylim=(-0.3, 8.3))
  axes[0].legend()
  fig.tight_layout()
  fig.savefig(os.path.join(FLAGS.out, 'curves.png'), dpi=100)
  for name, row in results.items():
    final = row['final']
    print(f'[gans_ring] {name}: W1 {final["eval/w1"]:.3f} (untrained {final["eval/w1_untrained"]:.3f}), modes '
          f'{final["eval/modes_covered"]:.0f}/8, high quality {final["eval/high_quality"]:.2f}, '
          f'{row["wall_s"]:.0f} s', flush=True)
  write_report(results, FLAGS.out)
  print(f'[gans_ring] wrote {FLAGS.out}/ring.json, ring.md, curves.png, samples.png (samples: rows in the order '
        f'{", ".join(FLAGS.models)})', flush=True)


if __name__ == '__main__':
  app.run(main)
