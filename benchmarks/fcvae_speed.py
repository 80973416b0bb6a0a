r"""Seed 002 input speed (issue 14 section 5): can the PNG frame pipeline feed FCVAE training? Measures, side by side
in one run, the images/s of

  pipeline  `datasets.atari_frames.frames_dataset` (the reader `launchers.fcvae --dataset=atari_frames` trains from:
            PNG decode, float [0, 1], shuffled, endless, full batches) on `--frames_dir`, or on `--num_frames` frames
            written to a temporary folder (84x84 grey PNGs of moving sprites) when none is given;
  train     the FCVAE train step (`fcvae.training.Trainer`, the --preset's batch and model, random weights) on one
            batch held in memory: what training consumes when input is free;

and their ratio pipeline / train (>= 1: the input keeps up). Every round times both once, in an order that
alternates, so load changes on a shared machine hit them alike; the report gives medians over the rounds and the
ratio of the fastest rounds as a second estimate. The seed gives no timings; nothing is claimed. Each run appends
one JSON line to OUT.jsonl and rewrites OUT.md.

  python benchmarks/fcvae_speed.py                                 # paper FCVAE (batch 64, shallow, k = 8)
  python benchmarks/fcvae_speed.py --frames_dir=~/frames/breakout --depth=deep
  python benchmarks/fcvae_speed.py --quick --out=                  # smoke test, print only
"""

import os
import shutil
import sys
import tempfile
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
BENCHMARK = 'fcvae_speed'

flags.DEFINE_string('frames_dir', '', 'Frames collected by `python -m launchers.atari_frames` (its train split); '
                    'empty: --num_frames generated PNGs in a temporary folder.')
flags.DEFINE_integer('num_frames', 2000, 'Generated frames when no --frames_dir is given.')
flags.DEFINE_string('preset', 'paper', 'FCVAE preset whose batch / learning rate are timed: paper, small or tiny.')
flags.DEFINE_string('depth', 'shallow', 'FCVAE depth: shallow or deep.')
flags.DEFINE_integer('filters', 8, 'FCVAE latent filters k.')
flags.DEFINE_string('colour', 'grey', 'grey or rgb (generated frames follow it; a --frames_dir must match).')
flags.DEFINE_integer('rounds', 5, 'Interleaved timing rounds.')
flags.DEFINE_integer('train_steps', 10, 'Train steps timed per round (after --warmup_steps untimed ones).')
flags.DEFINE_integer('warmup_steps', 2, 'Untimed train steps first (tracing).')
flags.DEFINE_integer('pipeline_batches', 20, 'Batches timed per round, from a fresh iterator after one untimed.')
flags.DEFINE_bool('quick', False, 'Smoke test: 200 generated frames, tiny preset, 3 rounds of 2 steps / 4 batches.')
flags.DEFINE_string('out', os.path.join(ROOT, 'docs', 'fcvae_speed'),
                    'Appends a JSON line to OUT.jsonl and writes OUT.md; empty: print only.')
FLAGS = flags.FLAGS


def write_frames(directory: str, num: int, channels: int, seed: int = 0) -> str:
  """`num` 84x84 PNGs of a few moving sprites on a dark field (uint8), in the collector's folder layout."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  frames = os.path.join(directory, 'frames', 'ep00000')
  os.makedirs(frames, exist_ok=True)
  pos = rng.uniform(10, 74, size=(4, 2))
  vel = rng.uniform(-2, 2, size=(4, 2))
  for i in range(num):
    img = np.full((84, 84, channels), 20, np.uint8)
    img[70:72, :] = 140                                             # a static floor
    pos = pos + vel
    vel = np.where((pos < 4) | (pos > 80), -vel, vel)
    pos = np.clip(pos, 4, 80)
    for j, (y, x) in enumerate(pos.astype(int)):
      img[y - 2:y + 2, x - 3:x + 3] = 90 + 40 * j
    Image.fromarray(img[..., 0] if channels == 1 else img).save(os.path.join(frames, f'{i:06d}.png'))
  return directory


def time_pipeline(ds, batches: int) -> float:
  """images/s of `batches` batches from a fresh iterator (one untimed batch first)."""
  iterator = iter(ds)
  first = next(iterator)
  size = int(first.shape[0])
  start = time.perf_counter()
  for _ in range(batches):
    next(iterator)
  return batches * size / (time.perf_counter() - start)


def time_train(trainer, batch, steps: int) -> float:
  start = time.perf_counter()
  for _ in range(steps):
    out = trainer._step_fn(batch)  # pylint: disable=protected-access
  float(out['loss'])                                              # wait for the last step
  return steps * int(batch.shape[0]) / (time.perf_counter() - start)


def markdown(rows) -> str:
  out = ['# Seed 002 input speed: PNG frames vs FCVAE training', '',
         'Written by `python benchmarks/fcvae_speed.py` (issue 14 section 5). images/s of the PNG tf.data reader '
         '(`datasets.atari_frames.frames_dataset`) and of the FCVAE train step on a batch in memory; ratio >= 1 '
         'means the input keeps up. Medians over interleaved rounds; the fastest rounds as a second estimate.', '',
         '| date | machine | frames | model | batch | pipeline img/s | train img/s | pipeline / train (fastest) | '
         'load start / end |', '|---|---|---|---|---|---|---|---|---|']
  for r in rows:
    m, s = r['machine'], r['settings']
    out.append(f'| {m["date"]} | {m["device"]}, {m["cpu_count"]} cores | {s["frames"]} | FCVAE {s["depth"]} k='
               f'{s["filters"]} {s["colour"]} | {s["batch_size"]} | {r["pipeline_images_per_s"]:.0f} | '
               f'{r["train_images_per_s"]:.0f} | {r["ratio"]:.2f} ({r["ratio_fastest"]:.2f}) | '
               f'{r["load_average"]["start"]} / {r["load_average"]["end"]} |')
  last = rows[-1]
  out += ['', f'Latest run: {last["verdict"]}', '']
  return '\n'.join(out)


def main(argv):
  if len(argv) > 1:
    machine_state.fail(f'unexpected arguments {argv[1:]}; all settings are --flags (see --help)')
  logging.set_verbosity(logging.WARNING)
  if FLAGS.quick:
    FLAGS.num_frames, FLAGS.preset, FLAGS.rounds, FLAGS.train_steps, FLAGS.pipeline_batches = 200, 'tiny', 3, 2, 4
  for name in ('num_frames', 'rounds', 'train_steps', 'pipeline_batches', 'filters'):
    if getattr(FLAGS, name) < 1:
      machine_state.fail(f'--{name}={getattr(FLAGS, name)}: must be >= 1')
  from rlcv_tf.fcvae import presets  # pylint: disable=g-import-not-at-top  (no TensorFlow)
  for name, options in (('preset', presets.PRESETS), ('depth', presets.DEPTHS), ('colour', presets.COLOURS)):
    if getattr(FLAGS, name) not in options:
      machine_state.fail(f'--{name}={getattr(FLAGS, name)}: one of {", ".join(options)}')
  frames_dir = os.path.expanduser(FLAGS.frames_dir)
  if frames_dir and not os.path.isdir(frames_dir):
    machine_state.fail(f'--frames_dir={frames_dir} is not a directory; collect frames with '
                       '`python -m launchers.atari_frames`')
  load_start = machine_state.load_average()
  work_start = machine_state.other_work()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from rlcv_tf.datasets import atari_frames  # pylint: disable=g-import-not-at-top
  from rlcv_tf.fcvae import models  # pylint: disable=g-import-not-at-top
  from rlcv_tf.fcvae import training  # pylint: disable=g-import-not-at-top
  cfg = presets.get_config('fcvae', 'atari_frames', FLAGS.preset, FLAGS.colour).replace(
      depth=FLAGS.depth, filters=FLAGS.filters).validate()
  temp = None
  if not frames_dir:
    temp = tempfile.mkdtemp(prefix='fcvae_speed_')
    frames_dir = write_frames(temp, FLAGS.num_frames, cfg.channels)
  try:
    try:
      ds = atari_frames.frames_dataset(frames_dir, 'train', cfg.batch_size, shuffle=True, seed=0, repeat=True,
                                       drop_remainder=True)
    except atari_frames.FramesError as e:
      machine_state.fail(str(e))
    trainer = training.Trainer(cfg, models.build_model(cfg))
    batch = tf.random.uniform((cfg.batch_size,) + cfg.image_shape)
    time_train(trainer, batch, FLAGS.warmup_steps)
    pipe, train = [], []
    for r in range(FLAGS.rounds):
      order = ('pipeline', 'train') if r % 2 == 0 else ('train', 'pipeline')
      for what in order:
        if what == 'pipeline':
          pipe.append(time_pipeline(ds, FLAGS.pipeline_batches))
        else:
          train.append(time_train(trainer, batch, FLAGS.train_steps))
      print(f'[bench] round {r + 1}/{FLAGS.rounds}: pipeline {pipe[-1]:.0f} img/s, train {train[-1]:.0f} img/s '
            f'(load {machine_state.load_average()})', flush=True)
    num = int(getattr(ds, 'num_frames', 0))
  finally:
    if temp:
      shutil.rmtree(temp, ignore_errors=True)
  p_med, t_med = float(np.median(pipe)), float(np.median(train))
  ratio, ratio_fast = p_med / t_med, max(pipe) / max(train)
  verdict = (f'the PNG pipeline delivers {p_med:.0f} images/s, training consumes {t_med:.0f}: ratio {ratio:.2f} '
             f'(fastest rounds {ratio_fast:.2f}); ' + ('the input keeps up.' if ratio >= 1 else
                                                        'the input is the bottleneck: more tf.data threads, frames '
                                                        'cached in memory, or a smaller --batch would help.'))
  print(f'[bench] {verdict}')
  row = {'benchmark': BENCHMARK, 'machine': machine_state.machine_info(tf),
         'settings': {'frames': frames_dir if FLAGS.frames_dir else f'{FLAGS.num_frames} generated', 'num': num,
                      'preset': FLAGS.preset, 'depth': cfg.depth, 'filters': cfg.filters, 'colour': FLAGS.colour,
                      'batch_size': cfg.batch_size, 'rounds': FLAGS.rounds, 'train_steps': FLAGS.train_steps,
                      'pipeline_batches': FLAGS.pipeline_batches, 'quick': FLAGS.quick},
         'pipeline_rounds': pipe, 'train_rounds': train, 'pipeline_images_per_s': p_med, 'train_images_per_s': t_med,
         'ratio': ratio, 'ratio_fastest': ratio_fast, 'verdict': verdict,
         'load_average': {'start': load_start, 'end': machine_state.load_average()}, 'other_work': work_start}
  print('[bench] ' + __import__('json').dumps({k: row[k] for k in ('pipeline_images_per_s', 'train_images_per_s',
                                                                     'ratio', 'ratio_fastest')}))
  if FLAGS.out:
    machine_state.save_report(FLAGS.out, row, BENCHMARK, markdown)


if __name__ == '__main__':
  app.run(main)
