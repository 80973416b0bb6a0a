r"""Table 5.1 (64x64 rows) on data that can be had here: VAE-GAN vs crVAE-GAN without and with MI, 3 seeds.

Every model trains for the same --steps with the same seeds on --dataset (default the generated synth_birds; CUB
with --dataset=cub --data_dir=...), is scored by `rlcv_tf.crvae.run_eval` with ONE classifier shared by all runs
(trained on the data set's labels at the first evaluation, saved under <logdir>/classifiers/), and the numbers go to
<out>.json and <out>.md: inception score and held-out reconstruction MSE as mean +- std over seeds, with the
held-out ELBO (one pixel sigma for every model) and the mean KL of the early vs the late blocks.

  python examples/crvae_table51.py                                     # small32, 1,500 steps, 3 seeds (CPU: hours)
  python examples/crvae_table51.py --scale=tiny --steps=4 --seeds=1 --is_samples=200 --classifier_epochs=1 \
      --classifier_images=640 --num_eval_images=32 --out=/tmp/t51 --logdir=/tmp/t51_runs     # smoke check

A finished run (eval.json with the asked IS sample count at the asked step) is not trained or scored again, so an
interrupted table continues where it stopped. The in-house classifier ranks the models against each other; its
scores are not comparable with the thesis's (ImageNet VGG11 fine-tuned on birds).
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

from rlcv_tf.core.vaegan import evaluation  # pylint: disable=g-import-not-at-top
from rlcv_tf.core import quiet  # pylint: disable=g-import-not-at-top
from rlcv_tf.crvae import presets  # pylint: disable=g-import-not-at-top
from rlcv_tf.crvae import run_eval  # pylint: disable=g-import-not-at-top
from rlcv_tf.crvae import training  # pylint: disable=g-import-not-at-top

# Thesis Table 5.1, 64x64 (T:L4900-4922): inception score on Birds (Birdsnap + NABirds + CUB) and CelebA.
THESIS_IS = {'vaegan': ('5.81 +- 0.09', '21.70 +- 0.15'), 'crvaegan_nomi': ('10.62 +- 0.12', '24.16 +- 0.33'),
             'crvaegan': ('11.07 +- 0.12', '26.20 +- 0.19')}
LABELS = {'vaegan': 'VAE-GAN', 'crvaegan_nomi': 'crVAE-GAN', 'crvaegan': 'crVAE-GAN + MI'}
FAMILY = {'synth_birds': 'synthbirds', 'cub': 'birds', 'synth_faces': 'synthfaces', 'celeba': 'celeba'}

flags.DEFINE_string('dataset', 'synth_birds', f'One of {", ".join(FAMILY)} (the real ones need --data_dir).')
flags.DEFINE_string('data_dir', '', 'Root of a real data set.')
flags.DEFINE_string('scale', 'small32', 'Preset scale: tiny (smoke checks), small32 (CPU), full64 (the thesis).')
flags.DEFINE_list('models', list(LABELS), f'Models ({", ".join(LABELS)}).')
flags.DEFINE_list('seeds', ['1', '2', '3'], 'Training seeds; every model trains once per seed.')
flags.DEFINE_integer('steps', 1500, 'Optimizer steps per run (the same for every model).')
flags.DEFINE_integer('is_samples', 10_000, 'Generated images per run for the inception score.')
flags.DEFINE_integer('is_splits', 10, 'Splits of the IS samples.')
flags.DEFINE_integer('num_eval_images', 1000, 'Held-out images for the reconstruction error, ELBO and block KLs.')
flags.DEFINE_integer('classifier_epochs', 10, 'Epochs of the shared classifier.')
flags.DEFINE_integer('classifier_images', 0, 'Training images of the shared classifier (0 = the whole split).')
flags.DEFINE_string('logdir', 'runs/crvae_table51', 'Root of the runs (one subfolder per model and seed) and of the '
                    'shared classifier.')
flags.DEFINE_string('out', 'docs/crvae_table51', 'Output prefix (.md, .json).')
FLAGS = flags.FLAGS


def _finished(logdir, steps, is_samples):
  path = os.path.join(logdir, 'eval.json')
  if not os.path.exists(path):
    return None
  with open(path) as f:
    saved = json.load(f)
  if saved.get('step') == steps and saved.get('eval/is_samples') == is_samples and 'eval/inception_score' in saved:
    return saved
  return None


def _mean_std(values):
  values = np.asarray(values, np.float64)
  return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)     # TensorFlow's INFO lines (SavedModel assets, ...) would drown the table
  quiet.filter_known_warnings()
  if FLAGS.dataset not in FAMILY:
    sys.exit(f'error: --dataset={FLAGS.dataset}: valid values: {", ".join(FAMILY)}')
  unknown = [m for m in FLAGS.models if m not in LABELS]
  if unknown:
    sys.exit(f'error: --models: unknown {unknown}; valid values: {", ".join(LABELS)}')
  seeds = [int(s) for s in FLAGS.seeds]
  family = FAMILY[FLAGS.dataset]
  # One pixel sigma for every model's ELBO: the one the crVAE-GAN's late-block KL weight implies.
  reference = presets.get_preset(f'{FLAGS.scale}_{family}_crvaegan')
  sigma = evaluation.objective_sigma(reference.alpha2, reference.image_shape)
  ecfg = run_eval.EvalConfig(is_samples=FLAGS.is_samples, is_splits=FLAGS.is_splits,
                             num_eval_images=FLAGS.num_eval_images, elbo_sigma=sigma,
                             classifier_epochs=FLAGS.classifier_epochs, classifier_images=FLAGS.classifier_images,
                             data_dir=FLAGS.data_dir)
  runs = {m: [] for m in FLAGS.models}
  for seed in seeds:
    for model in FLAGS.models:
      cfg = presets.get_preset(f'{FLAGS.scale}_{family}_{model}', seed=seed)
      logdir = os.path.join(FLAGS.logdir, f'{FLAGS.dataset}_{cfg.name}_seed{seed}')
      result = _finished(logdir, FLAGS.steps, FLAGS.is_samples)
      if result is None:
        print(f'[table51] {LABELS[model]} seed {seed}: {cfg.name}, {FLAGS.steps:,} steps, logdir {logdir}',
              flush=True)
        run = training.RunConfig(dataset=FLAGS.dataset, data_dir=FLAGS.data_dir, steps=FLAGS.steps,
                                 image_every=max(1, FLAGS.steps // 4), log_interval_s=60.0,
                                 num_eval_images=min(FLAGS.num_eval_images, 256))
        trained = training.train(cfg, run, logdir, print_fn=lambda s: print(s, flush=True))
        run_eval.evaluate_run(logdir, ecfg, print_fn=lambda s: print(s, flush=True))
        result = _finished(logdir, FLAGS.steps, FLAGS.is_samples)
        result['wall_s'] = trained.wall_s
      else:
        print(f'[table51] {LABELS[model]} seed {seed}: done before ({logdir}/eval.json)', flush=True)
      result['seed'] = seed
      runs[model].append(result)

  images = run_eval.held_out_images(FLAGS.dataset, FLAGS.data_dir or None, reference.resolution,
                                    FLAGS.num_eval_images)
  mean_image_mse = float(np.mean((images - images.mean(axis=0, keepdims=True)) ** 2))
  rows = {}
  for model, results in runs.items():
    rows[model] = {
        'label': LABELS[model],
        'inception_score': _mean_std([r['eval/inception_score'] for r in results]),
        'inception_score_split_std': float(np.mean([r['eval/inception_score_std'] for r in results])),
        'reconstruction_mse': _mean_std([r['eval/reconstruction_mse'] for r in results]),
        'elbo_nats': _mean_std([r['eval/elbo_nats'] for r in results]),
        'kl_early_mean': _mean_std([r.get('eval/kl_early_mean', np.nan) for r in results]),
        'kl_late_mean': _mean_std([r.get('eval/kl_late_mean', np.nan) for r in results]),
        'runs': results,
    }
  classifier = runs[FLAGS.models[0]][0].get('eval/classifier', '')
  accuracy = runs[FLAGS.models[0]][0].get('eval/classifier_accuracy')
  meta = {'dataset': FLAGS.dataset, 'scale': FLAGS.scale, 'steps': FLAGS.steps, 'seeds': seeds,
          'is_samples': FLAGS.is_samples, 'is_splits': FLAGS.is_splits, 'num_eval_images': FLAGS.num_eval_images,
          'elbo_sigma': sigma, 'mean_image_mse': mean_image_mse, 'classifier': classifier,
          'classifier_accuracy': accuracy, 'models': rows}
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
  with open(f'{FLAGS.out}.json', 'w') as f:
    json.dump(meta, f, indent=1, default=float)

  def fmt(pair, digits=3):
    return f'{pair[0]:.{digits}f} +- {pair[1]:.{digits}f}'

  lines = [f'Table 5.1 (64x64 rows) on {FLAGS.dataset} at scale {FLAGS.scale}: {FLAGS.steps:,} steps per run, seeds '
           f'{", ".join(map(str, seeds))}; mean +- std over the seeds (sample std). IS over {FLAGS.is_samples:,} prior '
           f'samples in {FLAGS.is_splits} splits under one in-house classifier (held-out accuracy '
           f'{accuracy if accuracy is None else f"{accuracy:.3f}"}); reconstruction MSE and ELBO on '
           f'{len(images):,} held-out images (predicting the mean image: MSE {mean_image_mse:.4f}; ELBO pixel sigma '
           f'{sigma:.3g} for every model).', '',
           '| model | IS here | IS split std (mean) | recon. MSE | ELBO (nats) | KL early / late blocks | thesis IS '
           'Birds | thesis IS CelebA |',
           '|---|---|---|---|---|---|---|---|']
  for model, r in rows.items():
    lines.append(f'| {r["label"]} | {fmt(r["inception_score"], 2)} | {r["inception_score_split_std"]:.2f} | '
                 f'{fmt(r["reconstruction_mse"], 4)} | {fmt(r["elbo_nats"], 1)} | '
                 f'{r["kl_early_mean"][0]:.2f} / {r["kl_late_mean"][0]:.2f} | {THESIS_IS[model][0]} | '
                 f'{THESIS_IS[model][1]} |')
  lines += ['', 'Differences of mean IS between models, against the seed std of each (a difference smaller than '
            'either std is not resolved by these runs):', '']
  for a, b in (('crvaegan_nomi', 'vaegan'), ('crvaegan', 'crvaegan_nomi'), ('crvaegan', 'vaegan')):
    if a in rows and b in rows:
      ia, ib = rows[a]['inception_score'], rows[b]['inception_score']
      resolved = abs(ia[0] - ib[0]) > max(ia[1], ib[1])
      lines.append(f'* {LABELS[a]} - {LABELS[b]}: {ia[0] - ib[0]:+.2f} (std {ia[1]:.2f} / {ib[1]:.2f}; '
                   f'{"larger" if resolved else "not larger"} than both)')
  with open(f'{FLAGS.out}.md', 'w') as f:
    f.write('\n'.join(lines) + '\n')
  print('\n'.join(lines))


if __name__ == '__main__':
  app.run(main)
