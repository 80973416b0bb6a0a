r"""Chapter 5 compute cost (thesis Sec. 5.5), measured side by side in one run (these machines are noisy).

For VAE-GAN and crVAE-GAN at the same 4x4xn_z latent it prints parameter counts (generator side and
discriminator), the mean wall time of one training step, of `encode` and of `generate` per batch, and the ratios
crVAE-GAN / VAE-GAN. Timings interleave the two models round by round, so drift on a shared machine hits both.
It also measures tf.data throughput (decoded, augmented batches per second, no training) against the training
step rate, to show whether the input pipeline keeps up.

The thesis (Titan X, batch 128, 64x64): crVAE-GAN 130M vs VAE-GAN 164M parameters; encode 5.8 vs 2.6 ms, generate
4.0 vs 2.2 ms per batch.

  python benchmarks/crvae_speed.py --scale=small32 --batch_size=64
  python benchmarks/crvae_speed.py --scale=full64 --batch_size=128      # the thesis configuration (GPU)
"""

import os
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from rlcv_tf.crvae import networks  # pylint: disable=g-import-not-at-top
from rlcv_tf.crvae import presets  # pylint: disable=g-import-not-at-top
from rlcv_tf.crvae import train_steps  # pylint: disable=g-import-not-at-top

flags.DEFINE_string('scale', 'small32', 'tiny, small32 or full64.')
flags.DEFINE_string('dataset', 'synth_birds', 'Data source for the tf.data measurement.')
flags.DEFINE_string('data_dir', '', 'For real data sets.')
flags.DEFINE_integer('batch_size', 0, '0 = the preset.')
flags.DEFINE_integer('rounds', 5, 'Interleaved timing rounds.')
flags.DEFINE_integer('iters', 5, 'Calls per round and model.')
flags.DEFINE_integer('pipeline_batches', 30, 'Batches for the tf.data throughput measurement.')
FLAGS = flags.FLAGS


def _count(model):
  return int(sum(np.prod(v.shape) for v in model.trainable_variables)) if model is not None else 0


def _time(fn, iters):
  fn()  # one untimed call per round: the first after a switch can pay for cache effects
  t0 = time.perf_counter()
  for _ in range(iters):
    out = fn()
  if isinstance(out, dict):
    out = next(iter(out.values()))
  if isinstance(out, (tuple, list)):
    out = out[0]
  _ = np.asarray(out)  # wait for the result
  return (time.perf_counter() - t0) / iters


def main(argv):
  del argv
  setups = {}
  for model in ('vaegan', 'crvaegan'):
    overrides = {'batch_size': FLAGS.batch_size} if FLAGS.batch_size else {}
    cfg = presets.get_preset(f'{FLAGS.scale}_birds_{model}', **overrides)
    vae, disc = networks.build_models(cfg)
    trainer = train_steps.Stage1Trainer(vae, disc, cfg)
    x = tf.random.uniform((cfg.batch_size,) + cfg.image_shape, -1.0, 1.0)
    z = tf.random.normal((cfg.batch_size,) + cfg.latent_shape)
    encode = tf.function(lambda x, vae=vae: vae.encode(x, training=False))
    generate = tf.function(lambda z, vae=vae: vae.decode(z, training=False))
    trainer.train_step(x)  # trace and compile
    encode(x)
    generate(z)
    setups[model] = dict(cfg=cfg, vae=vae, disc=disc, trainer=trainer, x=x, z=z, encode=encode, generate=generate,
                         times={'train_step': [], 'encode': [], 'generate': []})
  for _ in range(FLAGS.rounds):
    for s in setups.values():
      s['times']['train_step'].append(_time(lambda s=s: s['trainer'].train_step(s['x']), FLAGS.iters))
      s['times']['encode'].append(_time(lambda s=s: s['encode'](s['x']), FLAGS.iters))
      s['times']['generate'].append(_time(lambda s=s: s['generate'](s['z']), FLAGS.iters))

  cfg = setups['crvaegan']['cfg']
  print(f'Chapter 5 compute, {FLAGS.scale} ({cfg.resolution}x{cfg.resolution}, latent {cfg.latent_shape}), batch '
        f'{cfg.batch_size}, {tf.config.list_logical_devices()[-1].device_type}; median of {FLAGS.rounds} '
        f'interleaved rounds of {FLAGS.iters} calls')
  print(f'{"":24s}{"VAE-GAN":>14s}{"crVAE-GAN":>14s}{"ratio cr/vae":>14s}')
  for label, fn in (('generator params', lambda s: _count(s['vae'])),
                    ('discriminator params', lambda s: _count(s['disc']))):
    a, b = fn(setups['vaegan']), fn(setups['crvaegan'])
    print(f'{label:24s}{a:>14,d}{b:>14,d}{b / a:>14.3f}')
  for key in ('train_step', 'encode', 'generate'):
    a = 1e3 * float(np.median(setups['vaegan']['times'][key]))
    b = 1e3 * float(np.median(setups['crvaegan']['times'][key]))
    print(f'{key + " (ms/batch)":24s}{a:>14.2f}{b:>14.2f}{b / a:>14.3f}')
  print('thesis (Titan X, full64, batch 128): params 164M vs 130M (0.79); encode 2.6 vs 5.8 ms (2.23); '
        'generate 2.2 vs 4.0 ms (1.82)')

  from rlcv_tf.datasets import pipeline  # pylint: disable=g-import-not-at-top
  ds = pipeline.make_image_dataset(FLAGS.dataset, FLAGS.data_dir or None, 'train', cfg.resolution,
                                   cfg.batch_size, train=True, seed=0)
  it = iter(ds.repeat())
  next(it)
  t0 = time.perf_counter()
  for _ in range(FLAGS.pipeline_batches):
    next(it)
  pipe = FLAGS.pipeline_batches / (time.perf_counter() - t0)
  train_rate = 1.0 / float(np.median(setups['crvaegan']['times']['train_step']))
  print(f'tf.data ({FLAGS.dataset}): {pipe:.2f} batches/s alone; crVAE-GAN consumes {train_rate:.2f} batches/s; '
        f'pipeline / consumption = {pipe / train_rate:.2f} (>= 1: the input keeps up)')


if __name__ == '__main__':
  app.run(main)
