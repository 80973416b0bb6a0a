r"""Chapter 6 compute cost (issue 12 §5): cVAE-GAN, conditional crVAE-GAN and acVAE-GAN side by side in one run,
the grown 2R acVAE-GAN step, and whether the 2R input pipeline keeps up; writes docs/acvae_speed.{md,jsonl}.

Built at one `--scale` (tiny, small32 or full64: the `acvae.presets` of the three models, so equal resolution R,
latent H x W x n_z and batch), with random weights:

models    For each model: trainable parameters of the VAE (encoder, prior, attention, generator: the groups L_G
          trains), of what `encode` reads, of what `generate` reads (prior sample + decode) and of the conditional D;
          the wall time of one `AcVAETrainer.train_step` (its tf.function, after `--warmup_steps` untimed steps), of
          `generate(a)` and of `encode(x, a)` per batch (tf.functions, inference mode, after one untimed call). Each
          as a ratio to cVAE-GAN.
grown     The same acVAE-GAN preset grown to 2R by `progressive.grow` (every R weight copied, new layers at 2R) with
          the fade-in at alpha = 0.5 (set before every step, as training's fade trainer does), trained by its own
          AcVAETrainer: the 2R step time, the ratio 2R / R step and the cost per image of each (same batch).
pipeline  tf.data batches/s at 2R from `datasets.pipeline.make_image_dataset` with the training run's settings
          (`acvae.training`: train=True, seed, endless epochs, verify 'header', deterministic order,
          examples_per_epoch, the preset's attributes; `--cache` and `--threads` change them): synth_faces, or
          CelebA with `--data_dir`. Each round takes a fresh iterator, pulls one untimed batch, then times
          `--pipeline_batches`. Compared with the batches/s the 2R train step consumes (1 / its time); below 1 the
          report says what would fix it.

Every round times every variant (the three R models, the grown model, the pipeline) once, in an order that rotates
from round to round, so that load changes on a shared machine hit them alike; the report gives medians over the
rounds and, as a second estimate, the ratios of the fastest rounds. The thesis gives no timings and the issue sets
no goal here: the ratios are reported, nothing is claimed. Each run appends one JSON line to OUT.jsonl and rewrites
OUT.md (this run in full, then every run of the file in a table).

  python benchmarks/acvae_speed.py                              # small32 (32 -> 64 px), docs/acvae_speed.*
  python benchmarks/acvae_speed.py --scale=tiny --rounds=2 --out=/tmp/as    # smoke test
  python benchmarks/acvae_speed.py --scale=full64 --data_dir=~/data/celeba  # thesis scale, CelebA at 128 px
"""

import math
import os
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags  # pylint: disable=g-import-not-at-top
from absl import logging  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

import machine_state  # pylint: disable=g-import-not-at-top  (this folder)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCALES = ('tiny', 'small32', 'full64')
MODELS = ('cvaegan', 'crvaegan', 'acvaegan')        # the first is the baseline of the ratios
NAMES = {'cvaegan': 'cVAE-GAN', 'crvaegan': 'crVAE-GAN', 'acvaegan': 'acVAE-GAN'}
GROWN = 'acvaegan_2R'
PIPELINE = 'pipeline'
TIMED = ('train_step', 'generate', 'encode')
PARAMS = ('vae_params', 'encode_params', 'generate_params', 'discriminator_params')
PARAM_LABELS = dict(vae_params='VAE (E, prior, attention, G)', encode_params='encode path',
                    generate_params='generate path (prior + decode)', discriminator_params='discriminator')
TIME_LABELS = dict(train_step='train step', generate='generate (prior sample + decode)', encode='encode')
FADE_ALPHA = 0.5

flags.DEFINE_string('scale', 'small32', f'Preset scale of the three models: {", ".join(SCALES)}.')
flags.DEFINE_integer('batch_size', 0, '0 = the presets\' (tiny 12, small32 60, full64 120); a multiple of 6.')
flags.DEFINE_integer('rounds', 9, 'Interleaved timing rounds (the defaults take about 3 minutes at small32 on 2 '
                     'shared cores).')
flags.DEFINE_integer('warmup_steps', 2, 'Untimed train steps per model first (the first traces).')
flags.DEFINE_integer('train_iters', 2, 'Train steps per round and model.')
flags.DEFINE_integer('eval_iters', 3, 'generate / encode calls per round and model.')
flags.DEFINE_integer('pipeline_batches', 20, 'Batches timed per round from a fresh iterator (after one untimed).')
flags.DEFINE_string('data_dir', '', 'CelebA root (or an image cache of it) for the pipeline part; empty: synth_faces.')
flags.DEFINE_bool('cache', False, 'Pipeline with cache=True (render / decode every image once, serve from memory); '
                  'the training run\'s default is False.')
flags.DEFINE_integer('threads', 0, 'tf.data private_threadpool_size of the pipeline; 0 = the run\'s (all cores).')
flags.DEFINE_string('out', os.path.join(ROOT, 'docs', 'acvae_speed'),
                    'Appends a JSON line to OUT.jsonl and writes OUT.md; empty: print only.')
FLAGS = flags.FLAGS


def rotated(items, r):
  k = r % len(items)
  return items[k:] + items[:k]


def _count(variables) -> int:
  return int(sum(int(np.prod(v.shape)) for v in variables))


def _path_count(tf, fn) -> int:
  """Trainable parameters read by fn() (each variable once)."""
  with tf.GradientTape() as tape:
    fn()
  return _count(list({id(v): v for v in tape.watched_variables()}.values()))


def _wait(out):
  while isinstance(out, (dict, tuple, list)):
    out = next(iter(out.values())) if isinstance(out, dict) else out[0]
  _ = out.numpy()


def _time(fn, iters):
  """(seconds per call of fn over `iters` calls, the last result); the last result is read back, so the work is
  done (each call depends on the one before through the model's variables)."""
  t0 = time.perf_counter()
  out = None
  for _ in range(iters):
    out = fn()
  _wait(out)
  return (time.perf_counter() - t0) / iters, out


# ------------------------------------------------------------------------------------------------- set-up


def _inputs(tf, cfg, seed):
  rng = np.random.default_rng(seed)
  x = np.tanh(rng.normal(size=(cfg.batch_size,) + tuple(cfg.image_shape))).astype(np.float32)
  a = np.where(rng.random((cfg.batch_size, cfg.num_attributes)) < 0.5, -1.0, 1.0).astype(np.float32)
  return tf.constant(x), tf.constant(a)


def model_setup(tf, cfg, vae, disc, warmup_steps, before_step=None):
  """Trainer, inputs, compiled generate / encode of (vae, disc), warmed up; parameter counts."""
  from rlcv_tf.acvae import train_steps  # pylint: disable=g-import-not-at-top
  t0 = time.perf_counter()
  trainer = train_steps.AcVAETrainer(vae, disc, cfg)
  x, a = _inputs(tf, cfg, seed=cfg.resolution)
  generate = tf.function(lambda a, vae=vae: vae.generate(a, training=False))
  encode = tf.function(lambda x, a, vae=vae: vae.encode(x, a, training=False))

  def step():
    if before_step is not None:
      before_step()
    return trainer.train_step(x, a)

  for _ in range(warmup_steps):
    _wait(step())
  for _ in range(2):                          # the first call traces, the second settles the kernels' caches
    _wait(generate(a))
    _wait(encode(x, a))
  params = dict(vae_params=_count(vae.trainable_variables),
                encode_params=_path_count(tf, lambda: vae.encode(x[:2], a[:2], training=False)),
                generate_params=_path_count(tf, lambda: vae.generate(a[:2], training=False)),
                discriminator_params=_count(disc.trainable_variables) if disc is not None else 0)
  calls = dict(train_step=step, generate=lambda: generate(a), encode=lambda: encode(x, a))
  return dict(cfg=cfg, calls=calls, params=params, setup_s=time.perf_counter() - t0, d_updated=[])


def pipeline_setup(cfg2):
  """The 2R training dataset as acvae.training builds it (with --cache / --threads / --data_dir)."""
  from rlcv_tf.acvae import run_config  # pylint: disable=g-import-not-at-top
  from rlcv_tf.datasets import celeba  # pylint: disable=g-import-not-at-top
  from rlcv_tf.datasets import pipeline  # pylint: disable=g-import-not-at-top
  run = run_config.RunConfig()
  dataset = 'celeba' if FLAGS.data_dir else 'synth_faces'
  data_dir = os.path.expanduser(FLAGS.data_dir) or None
  # The launcher's attribute choice: the preset's names on synth_faces, CelebA's first N (file order) below full64.
  names = list(cfg2.attribute_names) if dataset == 'synth_faces' else list(celeba.ATTRIBUTE_NAMES[:cfg2.num_attributes])
  settings = dict(dataset=dataset, data_dir=data_dir or '', resolution=cfg2.resolution, batch_size=cfg2.batch_size,
                  train=True, seed=cfg2.seed, epochs=None, cache=bool(FLAGS.cache), verify=run.verify,
                  deterministic=run.deterministic, max_skipped_fraction=run.max_skipped_fraction,
                  num_examples=cfg2.examples_per_epoch or None, attributes=names,
                  private_threadpool_size=FLAGS.threads or None)
  t0 = time.perf_counter()
  ds, info = pipeline.make_image_dataset(
      dataset, data_dir, 'train', cfg2.resolution, cfg2.batch_size, train=True, seed=cfg2.seed, epochs=None,
      cache=bool(FLAGS.cache), verify=run.verify, deterministic=run.deterministic,
      max_skipped_fraction=run.max_skipped_fraction, num_examples=cfg2.examples_per_epoch or None, attributes=names,
      private_threadpool_size=FLAGS.threads or None, with_info=True)
  settings['num_examples_in_split'] = int(info.num_examples)
  batches = FLAGS.pipeline_batches

  def run_once():
    it = iter(ds)
    _wait(next(it)['image'])                  # the iterator's start-up, untimed
    t = time.perf_counter()
    for _ in range(batches):
      batch = next(it)
    _wait(batch['image'])
    t = time.perf_counter() - t
    del it
    return t / batches

  run_once()                                  # first pass: traces the maps
  return dict(settings=settings, run_once=run_once, setup_s=time.perf_counter() - t0)


# ------------------------------------------------------------------------------------------------- rounds


def measure(tf):
  from rlcv_tf.acvae import networks  # pylint: disable=g-import-not-at-top
  from rlcv_tf.acvae import presets  # pylint: disable=g-import-not-at-top
  from rlcv_tf.acvae import progressive  # pylint: disable=g-import-not-at-top
  overrides = {'batch_size': FLAGS.batch_size} if FLAGS.batch_size else {}
  setups = {}
  for model in MODELS:
    cfg = presets.get_preset(f'{FLAGS.scale}_{model}', **overrides)
    vae, disc = networks.build_models(cfg)
    setups[model] = model_setup(tf, cfg, vae, disc, FLAGS.warmup_steps)
    if model == 'acvaegan':
      r_models = (vae, disc, cfg)
    print(f'[bench] {cfg.name}: built and warmed up in {setups[model]["setup_s"]:.1f} s '
          f'(load {machine_state.load_average()})', flush=True)
  vae, disc, cfg = r_models
  t0 = time.perf_counter()
  vae2, disc2, cfg2 = progressive.grow(vae, disc, cfg, fade_steps=1000.0)
  grow_s = time.perf_counter() - t0
  setups[GROWN] = model_setup(tf, cfg2, vae2, disc2, FLAGS.warmup_steps,
                              before_step=lambda: progressive.set_alpha(FADE_ALPHA, vae2, disc2))
  setups[GROWN]['grow_s'] = grow_s
  print(f'[bench] {cfg2.name}: grown in {grow_s:.1f} s, warmed up in {setups[GROWN]["setup_s"]:.1f} s', flush=True)
  pipe = pipeline_setup(cfg2)
  print(f'[bench] pipeline ({pipe["settings"]["dataset"]}, {cfg2.resolution} px): built in {pipe["setup_s"]:.1f} s',
        flush=True)
  load_after_setup = machine_state.load_average()

  times = {name: {k: [] for k in TIMED} for name in setups}
  times[PIPELINE] = {'batch': []}
  variants = list(setups) + [PIPELINE]
  for r in range(FLAGS.rounds):
    for name in rotated(variants, r):
      if name == PIPELINE:
        times[PIPELINE]['batch'].append(pipe['run_once']())
        continue
      calls = setups[name]['calls']
      seconds, metrics = _time(calls['train_step'], FLAGS.train_iters)
      times[name]['train_step'].append(seconds)
      setups[name]['d_updated'].append(float(metrics['d/updated'].numpy()))
      times[name]['generate'].append(_time(calls['generate'], FLAGS.eval_iters)[0])
      times[name]['encode'].append(_time(calls['encode'], FLAGS.eval_iters)[0])
    print(f'[bench] round {r + 1}/{FLAGS.rounds} done (load {machine_state.load_average()})', flush=True)
  return setups, pipe, times, load_after_setup


def summarise(setups, pipe, times) -> dict:
  """The row's measurement fields: per model, the ratios to cVAE-GAN, the grown step, the pipeline."""
  models = {}
  for name, s in setups.items():
    cfg = s['cfg']
    ms_all = {k: [1e3 * t for t in times[name][k]] for k in TIMED}
    ms = {k: float(np.median(v)) for k, v in ms_all.items()}
    models[name] = dict(preset=cfg.name, model=cfg.model, resolution=cfg.resolution, batch_size=cfg.batch_size,
                        latent_shape=list(cfg.latent_shape), num_blocks=cfg.num_blocks,
                        num_attributes=cfg.num_attributes, setup_s=s['setup_s'], times_ms_all=ms_all,
                        ms_median=ms, train_images_per_s=cfg.batch_size / (ms['train_step'] / 1e3),
                        train_ms_per_image=ms['train_step'] / cfg.batch_size,
                        d_updated_last_step_of_round=s['d_updated'], **s['params'])
  base = models[MODELS[0]]
  ratios = []
  for name in MODELS:
    m = models[name]
    entry = dict(model=name)
    for k in TIMED:
      entry[k] = m['ms_median'][k] / base['ms_median'][k]
      entry[f'{k}_fastest_round'] = min(m['times_ms_all'][k]) / min(base['times_ms_all'][k])
    for k in PARAMS:
      entry[k] = m[k] / base[k] if base[k] else float('nan')
    ratios.append(entry)
  g, r = models[GROWN], models['acvaegan']
  grown = dict(preset=g['preset'], resolution=g['resolution'], base_resolution=r['resolution'], alpha=FADE_ALPHA,
               grow_s=setups[GROWN]['grow_s'], step_ms=g['ms_median']['train_step'],
               r_step_ms=r['ms_median']['train_step'],
               ratio=g['ms_median']['train_step'] / r['ms_median']['train_step'],
               fastest_round_ratio=min(g['times_ms_all']['train_step']) / min(r['times_ms_all']['train_step']),
               ms_per_image=g['ms_median']['train_step'] / g['batch_size'],
               r_ms_per_image=r['ms_median']['train_step'] / r['batch_size'],
               pixel_ratio=(g['resolution'] / r['resolution']) ** 2,
               vae_params_ratio=g['vae_params'] / r['vae_params'],
               discriminator_params_ratio=g['discriminator_params'] / r['discriminator_params'])
  batch_s = times[PIPELINE]['batch']
  rates = [1.0 / t for t in batch_s]
  step_rate = 1e3 / g['ms_median']['train_step']
  fastest_step_rate = 1e3 / min(g['times_ms_all']['train_step'])
  ratio = float(np.median(rates)) / step_rate
  pipeline_row = dict(pipe['settings'], setup_s=pipe['setup_s'], batches_per_round=FLAGS.pipeline_batches,
                      batches_per_s_all=rates, batches_per_s=float(np.median(rates)),
                      images_per_s=float(np.median(rates)) * g['batch_size'], step_batches_per_s=step_rate,
                      ratio=ratio, fastest_round_ratio=max(rates) / fastest_step_rate)
  pipeline_row['fixes'] = fixes(pipeline_row) if min(ratio, pipeline_row['fastest_round_ratio']) < 1 else []
  return dict(models=models, ratios=ratios, grown=grown, pipeline=pipeline_row)


def fixes(p) -> list:
  """What would raise the 2R input rate, given how this run read the data."""
  out = []
  image_mb = p['num_examples_in_split'] * p['resolution'] ** 2 * 3 / 2 ** 20
  if not p['cache']:
    out.append(f'cache=True (acvae.run_config.RunConfig.cache; launchers.acvae has no flag for it yet; this benchmark: '
               f'--cache): {"render" if p["dataset"] == "synth_faces" else "decode and crop"} every image once and '
               f'serve it from memory ({p["num_examples_in_split"]:,d} images x {p["resolution"]}^2 x 3 bytes = '
               f'{image_mb:,.0f} MiB)')
  if p['dataset'] == 'celeba' and 'cache' not in os.path.basename(p['data_dir'].rstrip('/')):
    out.append(f'a pre-rendered image cache: python scripts/make_image_cache.py --dataset=celeba --data_dir=... '
               f'--out_dir=... --resolution={p["resolution"]} (datasets.cache_writer), read as make_image_dataset\'s '
               'data_dir: PNG records, no JPEG decode or crop per step (this benchmark\'s --data_dir takes it; '
               'launchers.acvae\'s does not yet: it looks for list_attr_celeba.txt there)')
  pool = (f'a private pool of {p["private_threadpool_size"]} threads' if p['private_threadpool_size']
          else f'all {os.cpu_count()} cores')
  out.append(f'more parallelism: the maps run under tf.data AUTOTUNE on {pool}, which a CPU-only machine shares with '
             'the train step: more cores (or --threads), a GPU for the step, or deterministic=False (delivery in '
             'completion order)')
  if p['dataset'] == 'synth_faces':
    out.append('synth_faces renders each face in Python (tf.numpy_function, one thread at a time): the stand-in, '
               'not a real data set, is what is slow here')
  return out


# ------------------------------------------------------------------------------------------------- report


def _ms(v: float) -> str:
  return f'{v:,.0f}' if v >= 100 else (f'{v:.1f}' if v >= 10 else f'{v:.2f}')


def _x(v: float) -> str:
  return 'n/a' if v is None or not math.isfinite(v) else f'{v:.2f}x'


def ratio_lines(row) -> list:
  """The headline ratios, one line each (printed and in the report)."""
  out = []
  base = NAMES[MODELS[0]]
  for e in row['ratios'][1:]:
    out.append(f'{NAMES[e["model"]]} / {base}: train step {e["train_step"]:.2f}x (fastest rounds '
               f'{e["train_step_fastest_round"]:.2f}x), generate {e["generate"]:.2f}x '
               f'({e["generate_fastest_round"]:.2f}x), encode {e["encode"]:.2f}x ({e["encode_fastest_round"]:.2f}x), '
               f'VAE parameters {e["vae_params"]:.2f}x, D parameters {e["discriminator_params"]:.2f}x')
  g = row['grown']
  out.append(f'grown acVAE-GAN {g["resolution"]} px / {g["base_resolution"]} px: train step {g["ratio"]:.2f}x '
             f'(fastest rounds {g["fastest_round_ratio"]:.2f}x; {g["pixel_ratio"]:g}x the pixels), '
             f'{_ms(g["ms_per_image"])} vs {_ms(g["r_ms_per_image"])} ms per image')
  p = row['pipeline']
  out.append(f'pipeline {p["dataset"]} {p["resolution"]} px: {p["batches_per_s"]:.2f} batches/s vs '
             f'{p["step_batches_per_s"]:.3f} the 2R step consumes: ratio {p["ratio"]:.2f} (fastest rounds '
             f'{p["fastest_round_ratio"]:.2f})')
  return out


def models_table(row) -> str:
  models = row['models']
  cols = list(MODELS)
  lines = ['| | ' + ' | '.join(NAMES[m] for m in cols) + ' | ' + ' | '.join(f'{NAMES[m]} / {NAMES[MODELS[0]]}'
                                                                          for m in cols[1:]) + ' |',
           '|---|' + '---|' * (2 * len(cols) - 1)]
  ratios = {e['model']: e for e in row['ratios']}
  for k in PARAMS:
    lines.append(f'| {PARAM_LABELS[k]} parameters | ' + ' | '.join(f'{models[m][k]:,d}' for m in cols) + ' | '
                 + ' | '.join(_x(ratios[m][k]) for m in cols[1:]) + ' |')
  for k in TIMED:
    lines.append(f'| {TIME_LABELS[k]} (ms / batch, median) | ' + ' | '.join(_ms(models[m]['ms_median'][k])
                                                                         for m in cols) + ' | '
                 + ' | '.join(f'{_x(ratios[m][k])} ({_x(ratios[m][k + "_fastest_round"])} fastest rounds)'
                              for m in cols[1:]) + ' |')
  lines.append('| train step (images / s) | ' + ' | '.join(f'{models[m]["train_images_per_s"]:,.1f}' for m in cols)
               + ' |' + ' |' * (len(cols) - 1))
  return '\n'.join(lines)


def rounds_table(row) -> str:
  lines = ['| variant | train step, all rounds (ms) | generate (ms) | encode (ms) | D updated (last step of each '
           'round) |', '|---|---|---|---|---|']
  for name, m in row['models'].items():
    label = NAMES.get(name, f'acVAE-GAN grown to {m["resolution"]} px (alpha {FADE_ALPHA})')
    lines.append(f'| {label} | ' + ' | '.join(', '.join(_ms(v) for v in m['times_ms_all'][k]) for k in TIMED)
                 + ' | ' + ', '.join(f'{v:g}' for v in m['d_updated_last_step_of_round']) + ' |')
  p = row['pipeline']
  lines.append(f'| pipeline (batches / s) | {", ".join(f"{v:.2f}" for v in p["batches_per_s_all"])} | | | |')
  return '\n'.join(lines)


def markdown(rows) -> str:
  row = rows[-1]
  m, st = row['machine'], row['settings']
  models, g, p = row['models'], row['grown'], row['pipeline']
  r0 = models[MODELS[0]]
  out = [
      '# Chapter 6 compute: cVAE-GAN, crVAE-GAN and acVAE-GAN side by side; the grown 2R step; the 2R input',
      '',
      'Written by `python benchmarks/acvae_speed.py` (issue 12 §5). The thesis gives no timings and the issue sets no '
      'goal for them: ratios are reported, nothing is claimed. Variants were timed in interleaved rounds (the order '
      'rotating each round); medians over the rounds, and the ratios of the fastest rounds as a second estimate. '
      'Random weights: the work of a step does not depend on training, except that the D gate skips the D '
      'update when D is over 90 % accurate (`d/updated` of each round\'s last step is in the JSON line).',
      '',
      '## Latest run',
      '',
      f'- date {m["date"]}, host {m["host"]}, {m["device"]}, {m["cpu_count"]} cores ({m["processor"]}), '
      f'TensorFlow {m["tf_version"]}, code {m["code"]}',
      f'- load average (1, 5, 15 min) at start {row["load_average"]["start"]}, after building '
      f'{row["load_average"]["after_setup"]}, at the end {row["load_average"]["end"]}',
      '- other work on the machine at start: '
      + ('; '.join(f'{w["command"]} ({w["cpu_percent"]}% CPU)' for w in row['other_work']) or 'none seen'),
      '- other work on the machine at the end: '
      + ('; '.join(f'{w["command"]} ({w["cpu_percent"]}% CPU)' for w in row['other_work_end']) or 'none seen'),
      f'- settings: scale {st["scale"]} ({r0["resolution"]}x{r0["resolution"]}, latent '
      f'{"x".join(map(str, r0["latent_shape"]))}, batch {r0["batch_size"]}, {r0["num_attributes"]} attributes, '
      f'T = {models["acvaegan"]["num_blocks"]}); {st["rounds"]} rounds of {st["train_iters"]} train step(s) and '
      f'{st["eval_iters"]} generate / encode call(s) per variant after {st["warmup_steps"]} warm-up steps; '
      f'pipeline {st["pipeline_batches"]} batches per round',
      '',
      '## Headline ratios',
      '',
  ] + [f'- {line}' for line in ratio_lines(row)] + [
      '',
      f'## The three models at {r0["resolution"]} px (ratios to cVAE-GAN; > 1 = more time or parameters)',
      '',
      models_table(row),
      '',
      'Parameters are trainable ones. VAE = every group the generator loss trains (encoder, prior, attention, '
      'decoder); encode path / generate path = the variables `encode(x, a)` / `generate(a)` read (the prior, the '
      'attention and the decoder for generate). Generate and encode run in inference mode on a batch.',
      '',
      f'## Grown acVAE-GAN: {g["base_resolution"]} -> {g["resolution"]} px (`progressive.grow`, alpha = {g["alpha"]})',
      '',
      '| | R step | 2R step | 2R / R |',
      '|---|---|---|---|',
      f'| ms / batch (median) | {_ms(g["r_step_ms"])} | {_ms(g["step_ms"])} | {g["ratio"]:.2f}x '
      f'({g["fastest_round_ratio"]:.2f}x fastest rounds) |',
      f'| ms / image | {_ms(g["r_ms_per_image"])} | {_ms(g["ms_per_image"])} | {g["ratio"]:.2f}x |',
      f'| pixels / image | {g["base_resolution"] ** 2:,d} | {g["resolution"] ** 2:,d} | {g["pixel_ratio"]:g}x |',
      f'| VAE parameters | {models["acvaegan"]["vae_params"]:,d} | {models[GROWN]["vae_params"]:,d} | '
      f'{g["vae_params_ratio"]:.3f}x |',
      f'| D parameters | {models["acvaegan"]["discriminator_params"]:,d} | '
      f'{models[GROWN]["discriminator_params"]:,d} | {g["discriminator_params_ratio"]:.3f}x |',
      '',
      f'Growing (weights copied and checked) took {g["grow_s"]:.1f} s. The 2R step trains both branches of the three '
      'fade-in points (old: pooled / upsampled through the copied from-RGB / to-RGB; new: the added convolutions), '
      'as a step during the fade-in does.',
      '',
      f'## The {p["resolution"]} px input pipeline vs the 2R step',
      '',
      f'`pipeline.make_image_dataset({p["dataset"]!r}, split train, {p["resolution"]} px, batch {p["batch_size"]}, '
      f'train=True, seed {p["seed"]}, endless, cache={p["cache"]}, verify {p["verify"]!r}, deterministic='
      f'{p["deterministic"]}, num_examples {p["num_examples"]}, {len(p["attributes"])} attributes, '
      f'private_threadpool_size {p["private_threadpool_size"]})`; {p["num_examples_in_split"]:,d} images in the '
      f'split. Each round: a fresh iterator, one untimed batch, then {p["batches_per_round"]} timed.',
      '',
      '| | batches / s | images / s |',
      '|---|---|---|',
      f'| pipeline delivers (median) | {p["batches_per_s"]:.2f} | {p["images_per_s"]:,.0f} |',
      f'| 2R train step consumes | {p["step_batches_per_s"]:.3f} | {p["step_batches_per_s"] * p["batch_size"]:,.1f} |',
      f'| ratio | {p["ratio"]:.2f} ({p["fastest_round_ratio"]:.2f} fastest rounds) | |',
      '',
  ]
  if p['fixes']:
    out += ['Below 1 by at least one estimate: the input would hold the step back. What would fix it:', '']
    out += [f'- {f}' for f in p['fixes']] + ['']
  else:
    out += ['Above 1 by both estimates: the input keeps up with the 2R step here. The pipeline was timed alone; in '
            'training on a CPU-only machine it shares the cores with the step (at a ratio r, about 1/r of them).', '']
  out += ['## All rounds', '', rounds_table(row), '',
          '## Reading and confounds', '',
          '- The machine is shared: the load and the other work above ran during the measurement; interleaving '
          'spreads it over the variants, but rounds that straddle a load change are noisier (all rounds are listed).',
          '- The D minibatch of every model is the preset\'s thirds mix; the crVAE-GAN and acVAE-GAN steps also train '
          'the MI head, acVAE-GAN the attention and its LSTM prior, so the step ratios include those terms.',
          '- The pipeline is timed from a fresh iterator after one batch, so a prefetched batch may flatter it by up '
          'to one batch per round.']
  spreads = {NAMES.get(name, 'grown acVAE-GAN'): max(m['times_ms_all']['train_step'])
             / min(m['times_ms_all']['train_step']) for name, m in models.items()}
  worst = max(spreads, key=spreads.get)
  ranges = [(f'{NAMES[e["model"]]} / {NAMES[MODELS[0]]}', e['train_step'], e['train_step_fastest_round'])
            for e in row['ratios'][1:]] + [('2R / R', g['ratio'], g['fastest_round_ratio'])]
  out.append(f'- The train-step rounds of one variant varied by up to {spreads[worst]:.2f}x ({worst}; slowest / '
             'fastest round). The two estimates of each step ratio (medians, fastest rounds) bracket what this run '
             'establishes: ' + ', '.join(f'{label} {min(a, b):.2f}x to {max(a, b):.2f}x' for label, a, b in ranges)
             + '.')
  if len(rows) > 1:
    out += ['', '## All runs in the JSON lines file', '',
            '| date | scale | crVAE-GAN / cVAE-GAN step | acVAE-GAN / cVAE-GAN step | acVAE-GAN generate ratio | '
            '2R / R step | pipeline / 2R step | load at start |', '|---|---|---|---|---|---|---|---|']
    for r in rows:
      rat = {e['model']: e for e in r['ratios']}
      out.append(f'| {r["machine"]["date"]} | {r["settings"]["scale"]} | {rat["crvaegan"]["train_step"]:.2f} | '
                 f'{rat["acvaegan"]["train_step"]:.2f} | {rat["acvaegan"]["generate"]:.2f} | '
                 f'{r["grown"]["ratio"]:.2f} | {r["pipeline"]["ratio"]:.2f} | {r["load_average"]["start"]} |')
  return '\n'.join(out) + '\n'


# ------------------------------------------------------------------------------------------------- main


def check_flags():
  if FLAGS.scale not in SCALES:
    machine_state.fail(f'--scale={FLAGS.scale}: one of {", ".join(SCALES)}')
  for name in ('rounds', 'warmup_steps', 'train_iters', 'eval_iters', 'pipeline_batches'):
    if getattr(FLAGS, name) < 1:
      machine_state.fail(f'--{name}={getattr(FLAGS, name)}: must be >= 1'
                         + (' (the first step traces)' if name == 'warmup_steps' else ''))
  if FLAGS.batch_size < 0 or FLAGS.batch_size % 6:
    machine_state.fail(f'--batch_size={FLAGS.batch_size}: 0 (the presets\') or a positive multiple of 6 (the D '
                       'minibatch in thirds)')
  if FLAGS.threads < 0:
    machine_state.fail(f'--threads={FLAGS.threads}: 0 (all cores) or a thread count >= 1')
  if FLAGS.data_dir:
    from rlcv_tf.datasets import celeba  # pylint: disable=g-import-not-at-top  (no TensorFlow)
    d = os.path.expanduser(FLAGS.data_dir)
    has_attr = any(os.path.exists(os.path.join(d, sub, celeba.ATTR_FILE)) for sub in ('', 'Anno'))
    # An image cache (datasets.image_cache.is_cache, without importing TensorFlow before the flags are checked).
    is_cache = os.path.isdir(d) and any(f.endswith('.manifest.json') for f in os.listdir(d))
    if not os.path.isdir(d) or not (has_attr or is_cache):
      machine_state.fail(f'--data_dir={FLAGS.data_dir}: no CelebA there ({celeba.ATTR_FILE} or an image cache made by '
                         'scripts/make_image_cache.py); give the CelebA root, or leave it empty for synth_faces')


def main(argv):
  if len(argv) > 1:
    machine_state.fail(f'unexpected arguments {argv[1:]}; all settings are --flags (see --help)')
  logging.set_verbosity(logging.WARNING)
  check_flags()
  load_start = machine_state.load_average()
  busy = machine_state.other_work()
  print(f'[bench] scale {FLAGS.scale}: {", ".join(NAMES[m] for m in MODELS)}, grown acVAE-GAN, pipeline; load average '
        f'{load_start} on {os.cpu_count()} cores; other work: '
        + ('; '.join(f'{w["command"][:60]} ({w["cpu_percent"]}%)' for w in busy) or 'none seen'), flush=True)
  from rlcv_tf.core import quiet  # pylint: disable=g-import-not-at-top
  tf = quiet.import_tensorflow()
  info = machine_state.machine_info(tf)
  setups, pipe, times, load_after_setup = measure(tf)
  row = dict(benchmark='acvae_speed', machine=info, other_work=busy,
             settings=dict(scale=FLAGS.scale, batch_size=FLAGS.batch_size, rounds=FLAGS.rounds,
                           warmup_steps=FLAGS.warmup_steps, train_iters=FLAGS.train_iters,
                           eval_iters=FLAGS.eval_iters, pipeline_batches=FLAGS.pipeline_batches,
                           data_dir=FLAGS.data_dir, cache=FLAGS.cache, threads=FLAGS.threads))
  row.update(summarise(setups, pipe, times))
  row['load_average'] = dict(start=load_start, after_setup=load_after_setup, end=machine_state.load_average())
  row['other_work_end'] = machine_state.other_work()
  print()
  print(models_table(row))
  print()
  for line in ratio_lines(row):
    print(line)
  for f in row['pipeline']['fixes']:
    print(f'  to fix: {f}')
  print('no goal: the thesis gives no timings and issue 12 sets none; ratios only')
  if FLAGS.out:
    machine_state.save_report(FLAGS.out, row, 'acvae_speed', markdown)


if __name__ == '__main__':
  app.run(main)
