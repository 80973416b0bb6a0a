r"""Chapter 6 evidence on CPU (issue 12 §7): acVAE-GAN, conditional crVAE-GAN and cVAE-GAN on synth_faces 32x32
(8 attributes, T = 4, the small32 presets) for equal steps, then acVAE-GAN grown 32 -> 64 (thesis Sec. 6.4.3).

  python examples/acvae_synthfaces.py                         # 3 x 1200 steps at 32 px + 600 grown steps at 64 px
  python examples/acvae_synthfaces.py --steps=6 --grow_steps=4 --classifier_images=120 --classifier_epochs=1 \
      --is_epochs=1 --num_eval_images=40 --appearance_images=8 --outdir=/tmp/acvae_ex --doc=/tmp/acvae_ex/report

Judges (one seed, the presets' 196):
  * one attribute classifier for all three 32 px models: the first run (acVAE-GAN) trains it, the others get its path
    (RunConfig.classifier), so every Table 6.3 row is read by the same classifier on the same held-out vectors;
  * one identity classifier (synth_faces' 20 identities) for the inception score: the first run trains it
    (--is_epochs), the others and the analysis load it (RunConfig.is_classifier);
  * the grown 64 px stage trains its own 64 px attribute and identity classifiers (its eval.json), and this script
    also scores its generations, downsampled to 32 px (bilinear, antialiased), with the shared 32 px classifiers, so
    "before vs after growing" is also read by one classifier.

What it reports (--doc, default docs/acvae_synthfaces; <doc>.md and <doc>.json, PNGs beside them as
<doc>_<model>_*.png):
  Table 6.3 analogue: per-attribute accuracy of the shared classifier on real held-out images, on each model's
    generations for the same attribute vectors, and the majority baseline; paired per-image differences
    acVAE-GAN - other (mean +- s.e.) to read "acVAE best" against the noise of the held-out set;
  Table 6.1 analogue: acVAE-GAN's attention M (argmax step and max M per attribute, attributes per step) and the
    attention entropy over training (TensorBoard scalar attention/entropy);
  Table 6.2 analogue: identity IS mean +- std (10 splits) at 32 px and after growing (64 px), real images' IS for
    scale (not comparable with the thesis's CASIA VGG11 values);
  Fig. 6.7 analogue: `tools.attribute_appearance_steps` (step from which each attribute stays readable in the
    progressive generation vs its attended step), crVAE-GAN (no attention) beside it, `tools.progressive_sheet`;
  reconstruction MSE / mean image MSE, parameter counts, wall time and steps/s per run.
Runs live under --outdir and are reused when finished (eval.json at >= the steps asked for); a shorter one resumes.
"""

import glob
import json
import os
import shutil
import sys

from absl import app
from absl import flags
from absl import logging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # pylint: disable=g-import-not-at-top

import example_steps  # pylint: disable=g-import-not-at-top  (this folder)

from rlcv_tf.core import quiet  # pylint: disable=g-import-not-at-top

flags.DEFINE_string('outdir', 'runs/acvae_synthfaces', 'Where the runs go (one logdir per model; reused when '
                    'finished).')
flags.DEFINE_string('doc', 'docs/acvae_synthfaces', 'Report path without extension (.md and .json are written; the '
                    'PNGs go beside them as <doc>_<model>_*.png).')
flags.DEFINE_integer('steps', 1200, 'Optimizer steps of each 32 px model (equal for all three).', lower_bound=1)
flags.DEFINE_integer('grow_steps', 600, 'Steps of the grown 64 px acVAE-GAN stage (its first half is the fade-in); '
                     '0 = no growing.', lower_bound=0)
flags.DEFINE_integer('classifier_images', 4000, 'Training images of the attribute and identity classifiers.',
                     lower_bound=1)
flags.DEFINE_integer('classifier_epochs', 5, 'Epochs of the attribute classifiers (best on val).', lower_bound=1)
flags.DEFINE_integer('is_epochs', 8, 'Epochs of the identity classifiers of the inception score; 0 = no IS.',
                     lower_bound=0)
flags.DEFINE_integer('num_eval_images', 500, 'Held-out (val) images and attribute vectors of the evaluation.',
                     lower_bound=10)
flags.DEFINE_integer('appearance_images', 200, 'Prior samples of the Fig. 6.7 analogue (attribute appearance steps).',
                     lower_bound=1)
flags.DEFINE_integer('summary_every', 25, 'Steps between TensorBoard scalars (the attention-entropy curve).',
                     lower_bound=1)
flags.DEFINE_integer('image_every', 250, 'Steps between sample sheets.', lower_bound=1)

FLAGS = flags.FLAGS
MODELS = ('acvaegan', 'crvaegan', 'cvaegan')   # acVAE-GAN first: it trains the shared classifiers
SCALE = 'small32'
TIMING_FILE = 'example_timing.json'
ATTRIBUTE_CLASSIFIER = 'attribute_classifier.keras'
IDENTITY_CLASSIFIER = 'identity_classifier.keras'
# Reading rules of the thesis's claims (stated in the report).
COMPETITIVE_GAIN = 0.08       # each model >= majority baseline + 8 points (the learning check's bar) ...
COMPETITIVE_SPREAD = 0.05     # ... and within 5 points of the best model's mean accuracy
THESIS_TABLE_62 = {'cvaegan': ('37.48 +- 0.96', '93.74 +- 2.25'), 'crvaegan': ('54.66 +- 0.67', '87.51 +- 1.46'),
                   'acvaegan': ('55.12 +- 0.64', '102.23 +- 1.81')}   # 64x64 / 128x128, CASIA VGG11


def _read_json(path):
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def _run_config(steps, **overrides):
  from rlcv_tf.acvae import run_config  # pylint: disable=g-import-not-at-top
  return run_config.RunConfig(dataset='synth_faces', steps=steps, num_eval_images=FLAGS.num_eval_images,
                              classifier_images=FLAGS.classifier_images, classifier_epochs=FLAGS.classifier_epochs,
                              summary_every=FLAGS.summary_every, image_every=FLAGS.image_every,
                              **overrides).validate()


def train_or_reuse(cfg, run, logdir, say, grow_from=None):
  """Trains (or resumes) the run unless its eval.json is at >= run.steps; returns the timing record of the logdir
  (with a grown stage, also the step of the `grow_from` run it was grown from)."""
  from rlcv_tf.acvae import training  # pylint: disable=g-import-not-at-top
  evaluated = _read_json(os.path.join(logdir, 'eval.json'))
  timing_path = os.path.join(logdir, TIMING_FILE)
  timing = _read_json(timing_path) or {'sessions': []}
  if evaluated is not None and evaluated['step'] >= run.steps:
    say(f'[example] reusing {logdir} (step {evaluated["step"]:,})')
    return timing
  say(f'[example] training {cfg.name} for {run.steps:,} steps in {logdir}')
  result = training.train(cfg, run, logdir, print_fn=say, grow_from=grow_from)
  timing['sessions'].append({'to_step': result.steps, 'wall_s': result.wall_s,
                             'steps_per_second': result.steps_per_second})
  if grow_from is not None and 'grown_from_step' not in timing:
    timing['grown_from_step'] = _read_json(os.path.join(grow_from, 'eval.json'))['step']
  with open(timing_path, 'w') as f:
    json.dump(timing, f, indent=1)
  return timing


def grown_config(base_dir, grown_dir, steps):
  """The grown stage's config: the stored one on a resume (its fade length is fixed), else the acVAE run's grown."""
  from rlcv_tf.acvae import progressive  # pylint: disable=g-import-not-at-top
  from rlcv_tf.core import runs  # pylint: disable=g-import-not-at-top
  stored = runs.load_config(grown_dir)
  if stored is not None and 'base_resolution' in stored.get('model', {}):
    return progressive.config_from_dict(stored['model'])
  base_cfg = progressive.config_from_dict(runs.load_config(base_dir)['model'])
  return progressive.grow_config(base_cfg, total_steps=steps, name=f'{base_cfg.name}_grown{2 * base_cfg.resolution}')


def downsample(images, resolution):
  """Bilinear, antialiased resize to resolution x resolution (as crvae.evaluation.classifier_probs resizes)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  out = [tf.image.resize(tf.convert_to_tensor(images[i:i + 100]), (resolution, resolution), method='bilinear',
                         antialias=True).numpy() for i in range(0, len(images), 100)]
  return np.concatenate(out).astype(np.float32)


def per_image_correct(classifier, images, attributes):
  """bool [M, N]: the classifier's sign agrees with the attribute."""
  from rlcv_tf.acvae import classifier as classifier_lib  # pylint: disable=g-import-not-at-top
  return (classifier_lib.predict_logits(classifier, images) > 0) == (np.asarray(attributes) > 0)


def identity_accuracy(model, images, labels):
  from rlcv_tf.core.vaegan import evaluation as vaegan_evaluation  # pylint: disable=g-import-not-at-top
  return float(np.mean(np.argmax(vaegan_evaluation.classifier_probs(model, images), axis=1) == labels))


def prior_latents(vae, a, seed):
  """z = mu_p(a) + sigma_p(a) * eps, eps from a NumPy generator seeded by `seed`."""
  mu_p, logvar_p = (np.asarray(t, np.float32) for t in vae.prior_params(a, training=False))
  eps = np.random.default_rng(seed).standard_normal(mu_p.shape).astype(np.float32)
  return mu_p + np.exp(0.5 * logvar_p) * eps


def copy_sheets(logdir, prefix, key):
  """The run's final samples/step_*.png, attribute_swap.png and attention.png as <prefix>_<key>_*.png."""
  copied = []
  steps = sorted(glob.glob(os.path.join(logdir, 'samples', 'step_*.png')))
  sources = [(steps[-1], 'samples')] if steps else []
  sources += [(os.path.join(logdir, 'samples', f'{n}.png'), n) for n in ('attribute_swap', 'attention')]
  for source, name in sources:
    if os.path.exists(source):
      target = f'{prefix}_{key}_{name}.png'
      shutil.copyfile(source, target)
      copied.append(target)
  return copied


def plot_entropy(series, path, max_entropy):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(6, 3.6))
  for label, (steps, values) in series.items():
    if steps:
      ax.plot(steps, values, marker='.' if len(steps) < 20 else None, label=label)
  ax.axhline(max_entropy, color='k', ls='--', lw=1, label=f'uniform over T (log T = {max_entropy:.3f})')
  ax.set_xlabel('step of the stage')
  ax.set_ylabel('mean_n H(M[:, n]) (nats)')
  ax.set_ylim(bottom=0)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def pct(x):
  return '-' if x is None else f'{100 * x:.1f}'


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)      # the project's lines, not TensorFlow's INFO ones
  quiet.import_tensorflow()
  from rlcv_tf.acvae import attention as attention_lib  # pylint: disable=g-import-not-at-top
  from rlcv_tf.acvae import classifier as classifier_lib  # pylint: disable=g-import-not-at-top
  from rlcv_tf.acvae import evaluation  # pylint: disable=g-import-not-at-top
  from rlcv_tf.acvae import networks  # pylint: disable=g-import-not-at-top
  from rlcv_tf.acvae import presets  # pylint: disable=g-import-not-at-top
  from rlcv_tf.acvae import progressive  # pylint: disable=g-import-not-at-top
  from rlcv_tf.acvae import tools  # pylint: disable=g-import-not-at-top
  from rlcv_tf.acvae import training  # pylint: disable=g-import-not-at-top
  from rlcv_tf.core import images as images_lib  # pylint: disable=g-import-not-at-top
  from rlcv_tf.core.vaegan import evaluation as vaegan_evaluation  # pylint: disable=g-import-not-at-top
  say = lambda s: print(s, flush=True)

  # ------------------------------------------------------------------------------------------- training
  dirs = {m: os.path.join(FLAGS.outdir, m) for m in MODELS}
  acvae_dir = dirs['acvaegan']
  attribute_path = os.path.join(acvae_dir, ATTRIBUTE_CLASSIFIER)
  identity_path = os.path.join(acvae_dir, IDENTITY_CLASSIFIER)
  timings, configs = {}, {}
  for model in MODELS:
    cfg = presets.get_preset(f'{SCALE}_{model}')
    if model == 'acvaegan':
      run = _run_config(FLAGS.steps, is_epochs=FLAGS.is_epochs)
    else:
      run = _run_config(FLAGS.steps, classifier=attribute_path,
                        is_classifier=identity_path if FLAGS.is_epochs else '')
    timings[model] = train_or_reuse(cfg, run, dirs[model], say)
    configs[model] = cfg
  grown_key = None
  if FLAGS.grow_steps:
    grown_cfg = grown_config(acvae_dir, os.path.join(FLAGS.outdir, 'acvaegan_grown'), FLAGS.grow_steps)
    grown_key = f'acvaegan_grown{grown_cfg.resolution}'
    dirs[grown_key] = os.path.join(FLAGS.outdir, 'acvaegan_grown')
    # Its own attribute classifier and identity classifier at 64 px (the shared ones are 32 px).
    run = _run_config(FLAGS.grow_steps, is_epochs=FLAGS.is_epochs)
    timings[grown_key] = train_or_reuse(grown_cfg, run, dirs[grown_key], say, grow_from=acvae_dir)
    configs[grown_key] = grown_cfg
  evals = {key: _read_json(os.path.join(d, 'eval.json')) for key, d in dirs.items()}
  keys = list(dirs)

  # ------------------------------------------------------------------------------------------- analysis
  say('[example] analysis: regenerating every model\'s evaluation images under the shared classifiers')
  names = list(configs['acvaegan'].attribute_names)
  res = configs['acvaegan'].resolution
  held = classifier_lib.load_split_arrays('synth_faces', None, 'val', res, attributes=names,
                                          num_examples=FLAGS.num_eval_images)
  attrs = held['attributes']
  classifier = classifier_lib.load_attribute_classifier(attribute_path, expected_names=names)
  identity = vaegan_evaluation.load_classifier(identity_path) if os.path.exists(identity_path) else None
  correct = {'real': per_image_correct(classifier, held['images'], attrs)}
  models, params, generated = {}, {}, {}
  for key in keys:
    cfg, vae, disc = training.load_run_models(dirs[key])
    if isinstance(cfg, progressive.GrownConfig):
      progressive.set_alpha(1.0, *[m for m in (vae, disc) if m is not None])
    models[key] = vae
    params[key] = {'generator': networks.count_params(vae),
                   'discriminator': networks.count_params(disc) if disc is not None else 0}
    images = evaluation.generate_for_attributes(vae, attrs, seed=cfg.seed)
    generated[key] = images
    correct[key] = per_image_correct(classifier, images if images.shape[1] == res else downsample(images, res), attrs)
  consistency = {}       # |accuracy here - eval.json| (the same classifier, vectors and seeds: should be 0)
  for key in MODELS:
    stored = np.asarray(evals[key]['accuracy_table']['accuracy'][key])
    consistency[key] = float(np.max(np.abs(stored - correct[key].mean(axis=0))))
  baseline = np.asarray(evals['acvaegan']['accuracy_table']['baseline'])
  accuracy = {k: [float(x) for x in v.mean(axis=0)] for k, v in correct.items()}
  mean_accuracy = {k: float(v.mean()) for k, v in correct.items()}
  paired = {}
  for key in MODELS[1:]:
    d = correct['acvaegan'].mean(axis=1) - correct[key].mean(axis=1)
    paired[key] = {'mean': float(d.mean()), 'se': float(d.std(ddof=1) / np.sqrt(len(d)))}

  # The thesis's reading of Table 6.3 (rules stated in the report).
  gens = {k: mean_accuracy[k] for k in MODELS}
  best = max(gens, key=gens.get)
  competitive = all(v - float(baseline.mean()) >= COMPETITIVE_GAIN and max(gens.values()) - v <= COMPETITIVE_SPREAD
                    for v in gens.values())
  separated = best == 'acvaegan' and all(p['mean'] > 2 * p['se'] for p in paired.values())
  if best != 'acvaegan':
    acvae_best = f'no: {best} has the highest mean accuracy'
  elif separated:
    acvae_best = 'yes: acVAE-GAN highest, and ahead of each other model by more than 2 s.e. (paired per image)'
  else:
    acvae_best = 'highest mean, but not ahead of every other model by more than 2 s.e. (paired per image)'

  # Table 6.2 analogue.
  inception = {}
  for key in keys:
    e = evals[key]
    if 'inception_score' in e:
      inception[key] = {'resolution': configs[key].resolution, 'own_classifier_is': e['inception_score'],
                        'own_classifier_is_std': e['inception_score_std'], 'real_is': e['inception_score_real']}
  identity_val = {}
  if identity is not None:
    identity_val[f'{res}px'] = identity_accuracy(identity, held['images'], held['labels'])
  held_grown = None
  if grown_key is not None:
    grown_res = configs[grown_key].resolution
    held_grown = classifier_lib.load_split_arrays('synth_faces', None, 'val', grown_res, attributes=names,
                                                  num_examples=FLAGS.num_eval_images)
    if identity is not None and grown_key in inception:
      mean, std = evaluation.identity_inception_score(identity, generated[grown_key])
      real, _ = evaluation.identity_inception_score(identity, held_grown['images'])
      inception[grown_key].update(shared_32px_classifier_is=mean, shared_32px_classifier_is_std=std,
                                  shared_32px_classifier_real_is=real)
      grown_identity = os.path.join(dirs[grown_key], IDENTITY_CLASSIFIER)
      identity_val[f'{grown_res}px'] = identity_accuracy(vaegan_evaluation.load_classifier(grown_identity),
                                                         held_grown['images'], held_grown['labels'])

  # Table 6.1 analogue and the attention entropy over training.
  acvae = models['acvaegan']
  mask = np.asarray(acvae.attention.mask(), np.float64)
  t_steps = mask.shape[0]
  attention = {'mask': mask.tolist(), 'assignment': attention_lib.attribute_assignment(mask, names),
               'per_step': attention_lib.attention_table(mask, names),
               'entropy_per_attribute': [float(x) for x in attention_lib.entropy_per_attribute(mask).numpy()],
               'max_entropy': float(np.log(t_steps))}
  entropy_series = {'acvaegan (32 px)': example_steps.scalar_series(acvae_dir, 'attention/entropy')}
  if grown_key is not None:
    grown_mask = np.asarray(models[grown_key].attention.mask(), np.float64)
    attention['grown_assignment'] = attention_lib.attribute_assignment(grown_mask, names)
    attention['grown_entropy'] = float(np.mean(attention_lib.entropy_per_attribute(grown_mask).numpy()))
    entropy_series[f'{grown_key} (stage steps)'] = example_steps.scalar_series(dirs[grown_key], 'attention/entropy')

  # Fig. 6.7 analogue: when each attribute appears in the progressive generation, acVAE-GAN and crVAE-GAN.
  count = min(FLAGS.appearance_images, len(attrs))
  a = attrs[:count]
  classifier_fn = lambda x: classifier_lib.predict_logits(classifier, x)
  appearance = {}
  for key in ('acvaegan', 'crvaegan'):
    z = prior_latents(models[key], a, seed=configs[key].seed)
    appearance[key] = tools.attribute_appearance_steps(models[key], classifier_fn, a, z, names)['rows']
  z = prior_latents(acvae, a[:8], seed=configs['acvaegan'].seed)

  # ------------------------------------------------------------------------------------------- outputs
  doc = FLAGS.doc
  os.makedirs(os.path.dirname(os.path.abspath(doc)), exist_ok=True)
  pngs = []
  sheet = tools.progressive_sheet(acvae, a[:8], z)
  pngs.append(images_lib.save_png(sheet.image, f'{doc}_acvaegan_progressive.png', scale=2))
  for key in keys:
    pngs += copy_sheets(dirs[key], doc, key)
  entropy_png = f'{doc}_acvaegan_attention_entropy.png'
  plot_entropy(entropy_series, entropy_png, attention['max_entropy'])
  pngs.append(entropy_png)

  def wall(key):
    sessions = timings[key]['sessions']
    if not sessions:
      return None, None
    return sum(s['wall_s'] for s in sessions), sessions[-1]['steps_per_second']

  n_eval = len(attrs)
  lines = ['# Chapter 6 on synth_faces: acVAE-GAN vs crVAE-GAN vs cVAE-GAN (32 px), and acVAE-GAN grown to 64 px',
           '',
           f'Written by `python examples/acvae_synthfaces.py` (--steps={FLAGS.steps}, --grow_steps={FLAGS.grow_steps},'
           f' --classifier_images={FLAGS.classifier_images}, --classifier_epochs={FLAGS.classifier_epochs}, '
           f'--is_epochs={FLAGS.is_epochs}, --num_eval_images={FLAGS.num_eval_images}). synth_faces {res}x{res}, '
           f'N = {len(names)} attributes ({", ".join(names)}), T = {t_steps}, the {SCALE} presets (batch '
           f'{configs["acvaegan"].batch_size}); **one seed** ({configs["acvaegan"].seed}) per model, so no seed '
           'spread is known.', '',
           '## Runs', '',
           '| model | steps | LR | generator / D parameters | recon MSE / mean-image MSE | wall (s) | steps/s |',
           '|---|---:|---:|---:|---:|---:|---:|']
  for key in keys:
    w, sps = wall(key)
    lines.append(f'| {key} | {evals[key]["step"]:,} | {configs[key].learning_rate:g} | '
                 f'{params[key]["generator"]:,} / {params[key]["discriminator"]:,} | '
                 f'{evals[key]["recon_over_mean"]:.3f} | {"-" if w is None else f"{w:.0f}"} | '
                 f'{"-" if sps is None else f"{sps:.2f}"} |')
  lines += ['', 'Wall time is the whole `training.train` call (training, sheets, evaluation, export); the acVAE-GAN '
            'run also trains the shared attribute and identity classifiers, the grown run its own 64 px ones. '
            'steps/s is the training rate over the last minute. "-": the run was made by an earlier invocation '
            'without a timing record.', '',
            f'## Table 6.3 analogue: attribute accuracy (%), one shared {res} px classifier', '',
            f'{n_eval} held-out attribute vectors; each model generates one image per vector (z ~ p(z|a)); "real" is '
            'the classifier on the held-out images themselves.' +
            (f' {grown_key}: its 64 px generations downsampled to {res} px.' if grown_key else ''), '',
            '| attribute | majority baseline | real | ' + ' | '.join(keys) + ' |',
            '|---|' + '---:|' * (2 + len(keys))]
  for n, name in enumerate(names):
    lines.append(f'| {name} | {pct(baseline[n])} | {pct(accuracy["real"][n])} | '
                 + ' | '.join(pct(accuracy[k][n]) for k in keys) + ' |')
  lines.append(f'| **mean** | {pct(float(baseline.mean()))} | {pct(mean_accuracy["real"])} | '
               + ' | '.join(pct(mean_accuracy[k]) for k in keys) + ' |')
  lines += ['', 'Paired per-image difference of the mean attribute accuracy, acVAE-GAN minus (mean +- s.e. over the '
            f'{n_eval} vectors): ' + '; '.join(f'{k} {100 * p["mean"]:+.1f} +- {100 * p["se"]:.1f} points'
                                                for k, p in paired.items()) + '.',
            f'The same numbers as each run\'s eval.json (max |difference| {max(consistency.values()):.1e}).']
  if grown_key:
    g = evals[grown_key]
    lines += ['', f'{grown_key} under its own {configs[grown_key].resolution} px classifier (its eval.json): real '
              f'{pct(g["accuracy_real"])}, generations {pct(g["accuracy_generated"])}, majority baseline '
              f'{pct(g["accuracy_baseline"])}.']
    grown_from = timings[grown_key].get('grown_from_step')
    if grown_from is not None and grown_from != evals['acvaegan']['step']:
      lines.append(f'**Stale:** {grown_key} was grown from acVAE-GAN at step {grown_from:,}, which is now at step '
                   f'{evals["acvaegan"]["step"]:,}; delete {dirs[grown_key]} to grow it again.')
  lines += ['', f'Thesis (Table 6.3, numbers not in the text): "all models perform competitively", acVAE-GAN "has the '
            'highest score". Reading here (rules: competitive = every model >= the majority baseline + '
            f'{100 * COMPETITIVE_GAIN:.0f} points and within {100 * COMPETITIVE_SPREAD:.0f} points of the best; best '
            f'= highest mean and ahead of each other model by > 2 s.e., paired): competitive: '
            f'**{"yes" if competitive else "no"}**; acVAE-GAN best: **{acvae_best}**.', '',
            '## Table 6.2 analogue: identity inception score (10 splits, mean +- std)', '']
  if inception:
    lines += ['| model | px | IS, classifier at that px | real images, same classifier | IS, shared 32 px '
              'classifier | real 64 px images, shared 32 px classifier | thesis (one step up in size) |',
              '|---|---:|---:|---:|---:|---:|---|']
    for key, row in inception.items():
      shared = (f'{row["shared_32px_classifier_is"]:.2f} +- {row["shared_32px_classifier_is_std"]:.2f}'
                if 'shared_32px_classifier_is' in row else
                (f'{row["own_classifier_is"]:.2f} +- {row["own_classifier_is_std"]:.2f}' if row['resolution'] == res
                 else '-'))
      shared_real = f'{row["shared_32px_classifier_real_is"]:.2f}' if 'shared_32px_classifier_real_is' in row else '-'
      thesis = THESIS_TABLE_62[key.split('_')[0]]
      thesis = f'64 px: {thesis[0]}' if key in MODELS else f'128 px: {thesis[1]}'
      lines.append(f'| {key} | {row["resolution"]} | {row["own_classifier_is"]:.2f} +- '
                   f'{row["own_classifier_is_std"]:.2f} | {row["real_is"]:.2f} | {shared} | {shared_real} | '
                   f'{thesis} |')
    lines += ['', 'Identity classifiers (synth_faces\' 20 identities, chance 5%) on held-out images: '
              + ', '.join(f'{k} {100 * v:.1f}%' for k, v in identity_val.items()) +
              f'. Choice for the grown stage: it trains its own {configs[grown_key].resolution if grown_key else 64}'
              ' px '
              'identity classifier (--is_epochs), and the shared 32 px one also scores its generations (resized to '
              '32 px), so before/after growing is compared under one classifier. The thesis\'s values come from a '
              'VGG11 trained on CASIA faces at 128 px scoring CelebA generations: they are **not comparable** with '
              'these numbers; read each IS only against the real images\' IS under the same classifier.']
  else:
    lines.append('No IS (--is_epochs=0).')
  lines += ['', f'## Table 6.1 analogue: acVAE-GAN\'s attention M (T = {t_steps}, N = {len(names)})', '',
            '| attribute | argmax step | max M | H(M[:, n]) (nats) |', '|---|---:|---:|---:|']
  for row, h in zip(attention['assignment'], attention['entropy_per_attribute']):
    lines.append(f'| {row["attribute"]} | {row["step"]} | {row["max_weight"]:.2f} | {h:.3f} |')
  lines += ['', '| step | attributes (max M) |', '|---:|---|']
  for row in attention['per_step']:
    cells = ', '.join(f'{a_} ({w:.2f})' for a_, w in zip(row['attributes'], row['max_weights']))
    lines.append(f'| {row["step"]} | {cells or "-"} |')
  counts = [row['count'] for row in attention['per_step']]
  lines += ['', f'Attributes per step: {"/".join(map(str, counts))} (an even split is {len(names) / t_steps:g} per '
            'step; the thesis, N = 40, T = 8: 3/3/3/6/8/8/4/2, and "no additional regularization is required" for '
            'a spread). Mean attention entropy over training (max log T = '
            f'{attention["max_entropy"]:.3f}; lambda_ent = {configs["acvaegan"].lambda_ent} pushes it down):', '']
  for label, (steps, values) in entropy_series.items():
    if steps:
      picks = sorted(set(np.linspace(0, len(steps) - 1, min(6, len(steps))).round().astype(int)))
      lines.append(f'- {label}: ' + ', '.join(f'step {steps[i]:,}: {values[i]:.3f}' for i in picks))
    else:
      lines.append(f'- {label}: no attention/entropy scalars found')
  if grown_key:
    moved = sum(r['step'] != g['step'] for r, g in zip(attention['assignment'], attention['grown_assignment']))
    lines.append(f'- after growing: mean entropy {attention["grown_entropy"]:.3f}; {moved} of {len(names)} '
                 'attributes changed their argmax step')
  lines += ['', f'![attention entropy]({os.path.basename(entropy_png)})', '',
            '## Fig. 6.7 analogue: when attributes appear in the progressive generation', '',
            f'{count} prior samples for held-out attribute vectors; step i decodes [(z_1, a_1) .. (z_i, a_i), '
            '(0, 0) ..]; '
            'the shared classifier reads every step. "settles" = median of the first step from which the attribute '
            'stays correct through T (over the samples where it does); "at T" = fraction correct at step T. '
            'crVAE-GAN (no attention: every step gets the whole a) for contrast.', '',
            '| attribute | acVAE attended step | acVAE settles | acVAE first correct | acVAE at T | crVAE settles |'
            ' crVAE at T |', '|---|---:|---:|---:|---:|---:|---:|']
  fmt = lambda v: '-' if v is None else f'{v:g}'
  for row, cr in zip(appearance['acvaegan'], appearance['crvaegan']):
    lines.append(f'| {row["attribute"]} | {row["attention_step"]} | {fmt(row["settled_median"])} | '
                 f'{fmt(row["first_agree_median"])} | {pct(row["agree_at_T"])} | {fmt(cr["settled_median"])} | '
                 f'{pct(cr["agree_at_T"])} |')
  rows = [r for r in appearance['acvaegan'] if r['settled_median'] is not None]
  match = sum(abs(r['settled_median'] - r['attention_step']) <= 0.5 for r in rows)
  lines += ['', f'Settling step within half a step of the attended step for {match} of {len(rows)} attributes '
            f'(those that settle at all). The thesis (Sec. 6.5.4) sees the attributes appear at their attended step '
            '"up to a certain degree", the first steps carrying too little content; here T = 4, so a match by chance '
            'is likely (1 in 4 per attribute if unrelated).', '',
            f'![progressive generation]({os.path.basename(doc)}_acvaegan_progressive.png)', '',
            '## Pictures', '']
  for path in pngs:
    lines.append(f'- `{os.path.basename(path)}`')
  lines += ['', '## Reading and confounds', '',
            '- One seed per model: differences between models carry the run-to-run spread, which is not measured. '
            'The paired s.e. above covers only the finite held-out set, not training noise.',
            '- cVAE-GAN trains with LR 3e-4, crVAE-GAN and acVAE-GAN with 1e-3 (the thesis\'s values, kept): at '
            'equal steps the slower-LR model may simply be less trained.',
            f'- Short training: {FLAGS.steps:,} steps of batch {configs["acvaegan"].batch_size} '
            f'(= {FLAGS.steps * configs["acvaegan"].batch_size / 10000:.1f} epochs of 10k images; the thesis trains '
            '150 epochs on CelebA), and the grown stage gets only ' f'{FLAGS.grow_steps:,} steps, half of them '
            'fade-in.',
            '- The models differ in size (parameter counts above) and cVAE-GAN\'s D has no MI head.',
            '- The classifiers are small and briefly trained; their accuracy on real images ("real") bounds what a '
            'generation can score. The IS classifier separates 20 synthetic identities only weakly.',
            '- synth_faces is a procedural stand-in for CelebA (8 of its 12 rendered attributes), not the thesis\'s '
            'data.']
  with open(doc + '.md', 'w') as f:
    f.write('\n'.join(lines) + '\n')
  report = {'flags': {k: getattr(FLAGS, k) for k in ('outdir', 'steps', 'grow_steps', 'classifier_images',
                                                    'classifier_epochs', 'is_epochs', 'num_eval_images',
                                                    'appearance_images', 'summary_every')},
            'seed': configs['acvaegan'].seed, 'attribute_names': names, 'logdirs': dirs,
            'table_6_3': {'baseline': [float(x) for x in baseline], 'accuracy': accuracy, 'mean': mean_accuracy,
                          'paired_acvae_minus': paired, 'consistency_with_eval_json': consistency,
                          'competitive': competitive, 'acvae_best': acvae_best},
            'table_6_2': {'inception': inception, 'identity_classifier_val_accuracy': identity_val,
                          'thesis': THESIS_TABLE_62},
            'table_6_1': attention,
            'attention_entropy_over_training': {k: {'steps': s, 'values': v} for k, (s, v) in entropy_series.items()},
            'fig_6_7': appearance, 'parameters': params, 'timing': timings,
            'eval': {k: {f: v for f, v in e.items() if f != 'accuracy_table_markdown'} for k, e in evals.items()},
            'pngs': pngs}
  with open(doc + '.json', 'w') as f:
    json.dump(report, f, indent=1, default=float)
  say('\n'.join(lines))
  say(f'[example] wrote {doc}.md, {doc}.json and {len(pngs)} PNGs')


if __name__ == '__main__':
  app.run(main)
