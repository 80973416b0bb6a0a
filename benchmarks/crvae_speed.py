r"""Chapter 5 compute cost (thesis Sec. 5.5) and whether the input pipeline keeps up; writes docs/crvae_speed.*.

Two parts (--parts), each saved as rows of docs/crvae_speed.jsonl; the Markdown report is rebuilt from all rows, so
the parts can run at different times (each row carries its run's date, machine and load average).

models    For VAE-GAN and crVAE-GAN at --scale (default full64, the thesis's 64x64 configuration) with the preset's
          batch (128): parameters of the encoder (what `encode` reads), the generator (what `decode` reads) and the
          discriminator; the wall time of one training step, of `encode` and of `generate` per batch, interleaved
          round by round so that drift on a shared machine hits both models alike; with a GPU also the peak GPU
          memory of building the model and training (tf.config.experimental.get_memory_info).
pipeline  On a CelebA-layout folder of real JPEGs that the benchmark writes (178x218, --num_images, Pillow at
          --jpeg_quality; a synthetic face pasted into the face ROI on a smooth, grainy background): images/s of
            * decode the whole JPEG, crop the ROI, resize (what pipeline.make_image_dataset did before
              decode_and_crop),
            * decode_and_crop_jpeg of the ROI, resize, with and without a tf.cond per image (the same pixels:
              the benchmark checks every image),
            * pipeline.make_image_dataset('celeba', train=True) as training uses it (shuffle, flip, batches),
            * writing the TFRecord cache (scripts/make_image_cache.py's library code), and
            * reading the cache for training (image_cache.make_cached_dataset, train=True),
          and the ratios against what a training step consumes (goal: >= 3x), here and on the thesis's GPU.

  python benchmarks/crvae_speed.py                                   # both parts, full64, CPU
  python benchmarks/crvae_speed.py --parts=pipeline --num_images=2000
  python benchmarks/crvae_speed.py --parts=models --require_gpu      # on a GPU: times and peak memory

The JPEGs sit in the OS page cache after being written, so the pipeline rows measure decoding, not disk reads.
"""

import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

flags.DEFINE_list('parts', ['models', 'pipeline', 'fed'], 'Which parts to run: models, pipeline, fed.')
flags.DEFINE_string('out', os.path.join(ROOT, 'docs', 'crvae_speed'), 'Writes OUT.jsonl and OUT.md.')
flags.DEFINE_string('scale', 'full64', 'tiny, small32 or full64 (models part).')
flags.DEFINE_string('preset_dataset', 'celeba', 'Data set of the presets (celeba, birds, lsun).')
flags.DEFINE_list('models', ['vaegan', 'crvaegan'], 'Models to time.')
flags.DEFINE_integer('batch_size', 0, '0 = the preset (128 at full64).')
flags.DEFINE_integer('rounds', 3, 'Interleaved timing rounds.')
flags.DEFINE_integer('train_iters', 1, 'Training steps per round and model.')
flags.DEFINE_integer('eval_iters', 2, 'encode / generate calls per round and model.')
flags.DEFINE_boolean('require_gpu', False, 'Fail unless TensorFlow sees a GPU (for the GPU measurements).')
flags.DEFINE_boolean('report_only', False, 'Rebuild OUT.md from OUT.jsonl without measuring.')
flags.DEFINE_integer('num_images', 2000, 'JPEGs in the CelebA-layout folder (pipeline part).')
flags.DEFINE_integer('jpeg_quality', 90, 'Pillow JPEG quality of the written images.')
flags.DEFINE_string('image_dir', '', 'Reuse (or keep) the CelebA-layout folder here; empty: a temporary one.')
flags.DEFINE_integer('resolution', 64, 'Pipeline output resolution.')
flags.DEFINE_integer('pipeline_batch', 128, 'Batch of the pipeline measurements.')
flags.DEFINE_integer('pipeline_epochs', 1, 'Passes over the folder per pipeline measurement and round (after a '
                     'warm-up); the report gives the median over --rounds.')
flags.DEFINE_integer('fed_steps', 2, 'fed part: crVAE-GAN steps per round fed by a constant batch, the uncached '
                     'and the cached pipeline.')
FLAGS = flags.FLAGS

# Thesis Sec. 5.5 (Titan X, batch 128, 64x64, Stage 1).
THESIS = {
    'vaegan': dict(params_m=164, memory_gb=6.2, encode_ms=2.6, generate_ms=2.2),
    'crvaegan': dict(params_m=130, memory_gb=4.5, encode_ms=5.8, generate_ms=4.0),
}
NAMES = {'vaegan': 'VAE-GAN', 'crvaegan': 'crVAE-GAN'}
# A training step (forward and backward through E, G and D on the 2:1:1 mix) is assumed to cost this many times the
# thesis's forward encode + generate; the thesis gives no step time. Stated in the report.
STEP_OVER_FORWARD = 3.0


def _load_average() -> str:
  try:
    return ' '.join(f'{v:.2f}' for v in os.getloadavg())
  except OSError:
    return 'n/a'


def _git_state() -> str:
  try:
    head = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True, text=True,
                          timeout=10).stdout.strip()
    dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no', '--', 'rlcv_tf', 'benchmarks'],
                           cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.split('\n')
    dirty = [line[3:] for line in dirty if line.strip()]
  except (OSError, subprocess.SubprocessError):
    return 'unknown'
  return head + (f' with uncommitted changes in {len(dirty)} file(s) of rlcv_tf/ and benchmarks/' if dirty else '')


def _run_info(tf):
  gpus = tf.config.list_physical_devices('GPU')
  device = 'GPU: ' + ', '.join(tf.config.experimental.get_device_details(g).get('device_name', g.name)
                               for g in gpus) if gpus else f'CPU only ({os.cpu_count()} cores)'
  return dict(date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
              host=platform.node(), code=_git_state(), device=device, cpu_count=os.cpu_count(),
              tf_version=tf.__version__,
              load_average_at_start=_load_average(),
              shared_machine_note=('the machine was shared with other work during this run; the load average at '
                                   'start is recorded'))


# ------------------------------------------------------------------------------------------------ models


def _count(variables) -> int:
  return int(sum(int(np.prod(v.shape)) for v in variables))


def _path_variables(tf, fn):
  """Trainable variables read by fn() (the encoder = what encode reads, the generator = what decode reads)."""
  with tf.GradientTape() as tape:
    fn()
  seen, out = set(), []
  for v in tape.watched_variables():
    if id(v) not in seen:
      seen.add(id(v))
      out.append(v)
  return out


def _wait(out):
  while isinstance(out, (dict, tuple, list)):
    out = next(iter(out.values())) if isinstance(out, dict) else out[0]
  _ = out.numpy()


def _time(fn, iters):
  t0 = time.perf_counter()
  out = None
  for _ in range(iters):
    out = fn()
  _wait(out)
  return (time.perf_counter() - t0) / iters


def run_models(tf, info):
  from rlcv_tf.core.vaegan import networks  # pylint: disable=g-import-not-at-top
  from rlcv_tf.crvae import presets  # pylint: disable=g-import-not-at-top
  from rlcv_tf.crvae import train_steps  # pylint: disable=g-import-not-at-top
  gpus = tf.config.list_physical_devices('GPU')
  rows, setups = [], {}
  for model in FLAGS.models:
    overrides = {'batch_size': FLAGS.batch_size} if FLAGS.batch_size else {}
    cfg = presets.get_preset(f'{FLAGS.scale}_{FLAGS.preset_dataset}_{model}', **overrides)
    if gpus:
      tf.config.experimental.reset_memory_stats('GPU:0')
      base = tf.config.experimental.get_memory_info('GPU:0')['current']
    t0 = time.perf_counter()
    vae, disc = networks.build_models(cfg)
    trainer = train_steps.make_trainer(vae, disc, cfg)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(-1, 1, (cfg.batch_size,) + cfg.image_shape).astype(np.float32))
    z = tf.constant(rng.normal(size=(cfg.batch_size,) + cfg.latent_shape).astype(np.float32))
    encode = tf.function(lambda x, vae=vae: vae.encode(x, training=False))
    generate = tf.function(lambda z, vae=vae: vae.decode(z, training=False))
    _wait(trainer.train_step(x))     # trace, build the optimiser slots
    _wait(trainer.train_step(x))
    _wait(encode(x))
    _wait(generate(z))
    peak = None
    if gpus:
      peak = tf.config.experimental.get_memory_info('GPU:0')['peak'] - base
    enc_vars = _path_variables(tf, lambda vae=vae, x=x: vae.encode(x[:2], training=False))
    gen_vars = _path_variables(tf, lambda vae=vae, z=z: vae.decode(z[:2], training=False))
    row = dict(part='models', kind='model', model=model, preset=cfg.name, scale=FLAGS.scale,
               batch_size=cfg.batch_size, resolution=cfg.resolution, latent_shape=list(cfg.latent_shape),
               encoder_params=_count(enc_vars), generator_params=_count(gen_vars),
               vae_params=_count(vae.trainable_variables),
               discriminator_params=_count(disc.trainable_variables) if disc is not None else 0,
               setup_s=time.perf_counter() - t0, peak_gpu_memory_bytes=peak, **info)
    setups[model] = dict(trainer=trainer, x=x, z=z, encode=encode, generate=generate, row=row,
                         times={'train_step': [], 'encode': [], 'generate': []})
    print(f'{model}: built and warmed up in {row["setup_s"]:.1f} s', flush=True)
  for r in range(FLAGS.rounds):
    for s in setups.values():
      s['times']['train_step'].append(_time(lambda s=s: s['trainer'].train_step(s['x']), FLAGS.train_iters))
      s['times']['encode'].append(_time(lambda s=s: s['encode'](s['x']), FLAGS.eval_iters))
      s['times']['generate'].append(_time(lambda s=s: s['generate'](s['z']), FLAGS.eval_iters))
    print(f'round {r + 1}/{FLAGS.rounds} done', flush=True)
  for model, s in setups.items():
    row = s['row']
    for key, times in s['times'].items():
      row[f'{key}_ms'] = 1e3 * float(np.median(times))
      row[f'{key}_ms_all'] = [1e3 * t for t in times]
    row['train_images_per_s'] = row['batch_size'] / (row['train_step_ms'] / 1e3)
    row['rounds'], row['train_iters'], row['eval_iters'] = FLAGS.rounds, FLAGS.train_iters, FLAGS.eval_iters
    rows.append(row)
  return rows


# ------------------------------------------------------------------------------------------------ pipeline


def write_celeba_folder(root, n, quality, seed=0):
  """A CelebA-layout folder: list_attr_celeba.txt, list_eval_partition.txt (all train), img_align_celeba/*.jpg.

  Each 178x218 image is a smooth random colour field with grain (so the JPEG is not trivially compressible) and a
  SynthFaces face rendered at 148x148 in the face ROI (top 40, left 15). Returns the mean file size in bytes.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from rlcv_tf.datasets import celeba  # pylint: disable=g-import-not-at-top
  from rlcv_tf.datasets import synthetic  # pylint: disable=g-import-not-at-top
  top, left, side, _ = (int(v) for v in celeba.ROI)
  image_dir = os.path.join(root, celeba.IMAGE_DIR)
  os.makedirs(image_dir, exist_ok=True)
  faces = synthetic.SynthFaces(size=side, seed=seed)
  rng = np.random.default_rng(seed)
  total = 0
  for start in range(0, n, 64):
    idx = np.arange(start, min(n, start + 64))
    face = faces.generate(idx, 'train')['image']
    for j, i in enumerate(idx):
      low = Image.fromarray(rng.integers(0, 256, (7, 6, 3), dtype=np.uint8))
      canvas = np.asarray(low.resize((178, 218), Image.BILINEAR), np.float32)
      canvas[top:top + side, left:left + side] = face[j]
      canvas += rng.normal(0, 4, canvas.shape)
      path = os.path.join(image_dir, f'{i + 1:06d}.jpg')
      Image.fromarray(np.clip(np.round(canvas), 0, 255).astype(np.uint8)).save(path, format='JPEG',
                                                                                quality=quality)
      total += os.path.getsize(path)
  signs = rng.choice([-1, 1], size=(n, 40))
  with open(os.path.join(root, celeba.ATTR_FILE), 'w') as f:
    f.write(f'{n}\n{" ".join(celeba.ATTRIBUTE_NAMES)}\n')
    for i in range(n):
      f.write(f'{i + 1:06d}.jpg ' + ' '.join(f'{v:2d}' for v in signs[i]) + '\n')
  with open(os.path.join(root, celeba.PARTITION_FILE), 'w') as f:
    f.writelines(f'{i + 1:06d}.jpg 0\n' for i in range(n))
  return total / n


def _rate(tf, ds, images_per_element, epochs, warmup=2):
  """Images/s over `epochs` passes of ds (a finite dataset), after `warmup` elements of an untimed pass."""
  for k, _ in enumerate(ds):
    if k + 1 >= warmup:
      break
  count = 0
  t0 = time.perf_counter()
  for _ in range(epochs):
    for element in ds:
      count += images_per_element(element)
  return count / (time.perf_counter() - t0)


def run_pipeline(tf, info):
  from rlcv_tf.datasets import cache_writer  # pylint: disable=g-import-not-at-top
  from rlcv_tf.datasets import image_cache  # pylint: disable=g-import-not-at-top
  from rlcv_tf.datasets import pipeline  # pylint: disable=g-import-not-at-top
  rows = []
  tmp = tempfile.mkdtemp(prefix='crvae_speed_')
  root = FLAGS.image_dir or os.path.join(tmp, 'celeba')
  try:
    files_present = os.path.isdir(os.path.join(root, 'img_align_celeba'))
    t0 = time.perf_counter()
    if files_present:
      sizes = [os.path.getsize(os.path.join(root, 'img_align_celeba', f))
               for f in os.listdir(os.path.join(root, 'img_align_celeba'))]
      mean_size = float(np.mean(sizes))
    else:
      mean_size = write_celeba_folder(root, FLAGS.num_images, FLAGS.jpeg_quality)
    print(f'CelebA-layout folder {"reused" if files_present else "written"} in {time.perf_counter() - t0:.1f} s, '
          f'mean JPEG {mean_size / 1024:.1f} KiB', flush=True)
    records = cache_writer.load_split('celeba', root, 'train')
    n = len(records.paths)
    res, batch, epochs = FLAGS.resolution, FLAGS.pipeline_batch, FLAGS.pipeline_epochs
    common = dict(part='pipeline', kind='pipeline', num_images=n, mean_jpeg_bytes=mean_size,
                  jpeg_quality=FLAGS.jpeg_quality, resolution=res, batch_size=batch, epochs=epochs, **info)

    cache_dir = os.path.join(tmp, 'cache')
    t0 = time.perf_counter()
    manifest = cache_writer.write_cache(records, 'celeba', 'train', cache_dir, res, examples_per_shard=1000)
    write_rate = manifest.num_examples / (time.perf_counter() - t0)
    cache_bytes = sum(os.path.getsize(os.path.join(cache_dir, s)) for s in manifest.shards)
    print(f'cache written: {write_rate:,.0f} images/s, {cache_bytes / manifest.num_examples / 1024:.1f} KiB/image',
          flush=True)
    if 'fed' in FLAGS.parts:
      rows += run_fed(tf, info, root, cache_dir, common)
    if 'pipeline' not in FLAGS.parts:
      return rows

    # Same pixels both ways: every image of the folder.
    whole = cache_writer.cropped_images(records, res, decode_and_crop=False).batch(256)
    cropped = cache_writer.cropped_images(records, res, jpeg_only=True).batch(256)
    equal = 0
    for a, b in zip(whole, cropped):
      equal += int(np.sum(np.all(a['image'].numpy() == b['image'].numpy(), axis=(1, 2, 3))))
    rows.append(dict(common, kind='decode_and_crop_check', images_equal=equal))
    print(f'decode_and_crop_jpeg vs whole decode + crop: {equal}/{n} images identical', flush=True)

    def uint8_count(element):
      return int(element['image'].shape[0])

    measurements = {
        'decode whole JPEG + crop + resize (uint8, no shuffle / flip / batch work)':
            lambda: cache_writer.cropped_images(records, res, decode_and_crop=False).batch(batch),
        'decode_and_crop_jpeg + resize, one tf.cond per image (pipeline.decode_window)':
            lambda: cache_writer.cropped_images(records, res, jpeg_only=False).batch(batch),
        'decode_and_crop_jpeg + resize, no tf.cond (jpeg_crop.decode_jpeg_window)':
            lambda: cache_writer.cropped_images(records, res, jpeg_only=True).batch(batch),
        'pipeline.make_image_dataset(celeba, train=True), uncached':
            lambda: pipeline.make_image_dataset('celeba', root, 'train', res, batch, train=True, seed=0),
        'image_cache.make_cached_dataset(train=True)':
            lambda: image_cache.make_cached_dataset(cache_dir, 'train', batch, train=True, seed=0),
    }
    rates = {label: [] for label in measurements}
    for r in range(FLAGS.rounds):     # interleaved, so that load from other work hits every path alike
      for label, make in measurements.items():
        rates[label].append(_rate(tf, make(), uint8_count, epochs))
      print(f'pipeline round {r + 1}/{FLAGS.rounds}: ' + ', '.join(f'{v[-1]:,.0f}' for v in rates.values())
            + ' images/s', flush=True)
    for label, values in rates.items():
      rows.append(dict(common, path=label, images_per_s=float(np.median(values)), images_per_s_all=values,
                       rounds=FLAGS.rounds))
    rows.append(dict(common, path=f'write the TFRecord cache (PNG {res}x{res}; one pass over the folder, including a '
                                  'few seconds of one-time graph building)',
                     images_per_s=write_rate, cache_bytes_per_image=cache_bytes / manifest.num_examples))
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  return rows


def run_fed(tf, info, root, cache_dir, common):
  """crVAE-GAN training steps fed by a constant batch, the uncached and the cached pipeline (same cores)."""
  from rlcv_tf.core.vaegan import networks  # pylint: disable=g-import-not-at-top
  from rlcv_tf.crvae import presets  # pylint: disable=g-import-not-at-top
  from rlcv_tf.crvae import train_steps  # pylint: disable=g-import-not-at-top
  from rlcv_tf.datasets import image_cache  # pylint: disable=g-import-not-at-top
  from rlcv_tf.datasets import pipeline  # pylint: disable=g-import-not-at-top
  overrides = {'batch_size': FLAGS.batch_size} if FLAGS.batch_size else {}
  cfg = presets.get_preset(f'{FLAGS.scale}_{FLAGS.preset_dataset}_crvaegan', **overrides)
  if cfg.resolution != FLAGS.resolution:
    print(f'fed steps skipped: the model is {cfg.resolution} px, the cache {FLAGS.resolution} px', flush=True)
    return []
  vae, disc = networks.build_models(cfg)
  trainer = train_steps.make_trainer(vae, disc, cfg)
  const = tf.constant(np.random.default_rng(0).uniform(-1, 1, (cfg.batch_size,) + cfg.image_shape), tf.float32)
  _wait(trainer.train_step(const))
  _wait(trainer.train_step(const))
  feeds = {
      'constant batch (no input work)': lambda: tf.data.Dataset.from_tensors({'image': const}).repeat(),
      'pipeline.make_image_dataset (uncached)': lambda: pipeline.make_image_dataset(
          'celeba', root, 'train', cfg.resolution, cfg.batch_size, train=True, seed=0, epochs=None),
      'image_cache.make_cached_dataset': lambda: image_cache.make_cached_dataset(
          cache_dir, 'train', cfg.batch_size, train=True, seed=0, epochs=None),
  }
  times = {k: [] for k in feeds}
  for r in range(FLAGS.rounds):
    order = list(feeds) if r % 2 == 0 else list(feeds)[::-1]
    for key in order:
      it = iter(feeds[key]())
      next(it)                              # start-up, untimed
      t0 = time.perf_counter()
      out = None
      for _ in range(FLAGS.fed_steps):
        out = trainer.train_step(next(it)['image'])
      _wait(out)
      times[key].append((time.perf_counter() - t0) / FLAGS.fed_steps)
      del it
    print(f'fed round {r + 1}/{FLAGS.rounds} done', flush=True)
  rows = []
  for key, ts in times.items():
    step = float(np.median(ts))
    rows.append(dict(common, part='fed', kind='fed', feed=key, preset=cfg.name, model_batch=cfg.batch_size,
                     step_ms=1e3 * step, step_ms_all=[1e3 * t for t in ts], images_per_s=cfg.batch_size / step,
                     fed_steps=FLAGS.fed_steps, rounds=FLAGS.rounds))
    print(f'train step fed by {key}: {1e3 * step:,.0f} ms', flush=True)
  return rows


# ------------------------------------------------------------------------------------------------ report


def _fmt_ms(v):
  return '-' if v is None else f'{v:,.1f}'


def write_report(rows, path_md):
  models = {r['model']: r for r in rows if r.get('kind') == 'model'}
  pipe = [r for r in rows if r.get('kind') == 'pipeline']
  check = next((r for r in rows if r.get('kind') == 'decode_and_crop_check'), None)
  lines = ['# Chapter 5 compute and input-pipeline speed (benchmarks/crvae_speed.py)', '',
           'Written by `python benchmarks/crvae_speed.py` from the rows of `docs/crvae_speed.jsonl`. '
           'Speed is measured here, never asserted by a test.', '']
  runs = {}
  for r in rows:
    runs.setdefault(r['part'], r)
  for part, r in runs.items():
    lines.append(f'* `{part}` part: run {r["date"]} on {r["device"]}, TensorFlow {r["tf_version"]}, code at '
                 f'{r.get("code", "?")}; load average at start {r["load_average_at_start"]} '
                 f'({r["shared_machine_note"]}).')
  lines.append('')
  if models:
    any_row = next(iter(models.values()))
    lines += [f'## Models ({any_row["scale"]}, {any_row["resolution"]}x{any_row["resolution"]}, latent '
              f'{"x".join(str(v) for v in any_row["latent_shape"])}, batch {any_row["batch_size"]})', '',
              'Encoder = the trainable variables `encode` reads (trunk, mean head, log-variance head or LSTM_inf); '
              'generator = those `decode` reads (LSTM_gen or the fc/conv head, decoder trunk). Times are medians '
              f'over {any_row["rounds"]} interleaved rounds ({any_row["train_iters"]} step(s) and '
              f'{any_row["eval_iters"]} encode / generate calls per round and model), after two warm-up steps.', '',
              '| | ' + ' | '.join(NAMES.get(m, m) for m in models) + ' | thesis (Titan X) |',
              '|---|' + '---|' * (len(models) + 1)]

    def line(label, fn, thesis=''):
      lines.append(f'| {label} | ' + ' | '.join(fn(r) for r in models.values()) + f' | {thesis} |')

    line('encoder parameters', lambda r: f'{r["encoder_params"]:,d}')
    line('generator parameters', lambda r: f'{r["generator_params"]:,d}', '164M VAE-GAN / 130M crVAE-GAN '
         '("Stage1 generations")')
    line('discriminator parameters', lambda r: f'{r["discriminator_params"]:,d}')
    line('train step (ms / batch)', lambda r: _fmt_ms(r['train_step_ms']), 'not given')
    line('train step (images / s)', lambda r: f'{r["train_images_per_s"]:,.1f}')
    line('encode (ms / batch)', lambda r: _fmt_ms(r['encode_ms']), '2.6 / 5.8')
    line('generate (ms / batch)', lambda r: _fmt_ms(r['generate_ms']), '2.2 / 4.0')
    line('peak GPU memory (GB)', lambda r: '-' if r['peak_gpu_memory_bytes'] is None else
         f'{r["peak_gpu_memory_bytes"] / 1e9:.2f}', '6.2 / 4.5')
    lines.append('')
    if all(r['peak_gpu_memory_bytes'] is None for r in models.values()):
      lines += ['No GPU was available to this run (none was lent to the task that made it), so the GPU rows '
                "(peak memory; times comparable with the thesis's Titan X) were not measured. On a machine with a GPU, "
                '`python benchmarks/crvae_speed.py --parts=models --require_gpu` measures them '
                '(`tf.config.experimental.get_memory_info`, peak over building the model and two training steps, '
                'less what was allocated before).', '']
  if pipe:
    p0 = pipe[0]
    lines += [f'## Input pipeline (CelebA layout, {p0["num_images"]:,d} JPEGs of 178x218, Pillow quality '
              f'{p0["jpeg_quality"]}, mean {p0["mean_jpeg_bytes"] / 1024:.1f} KiB; output {p0["resolution"]}x'
              f'{p0["resolution"]}, batch {p0["batch_size"]})', '',
              f'Reading rates are medians over {p0.get("rounds", 1)} interleaved rounds of {p0["epochs"]} pass(es) '
              'over the folder each, after a warm-up.', '',
              'Each image is a synthetic face in the 148x148 face ROI on a smooth, grainy background, written by the '
              'benchmark in the published layout and read by the CelebA reader. The files sit in the page cache, so '
              'disk reads are not measured. Parallelism: tf.data AUTOTUNE on all cores.', '']
    if check is not None:
      lines += [f'`decode_and_crop_jpeg` gave the same pixels as decoding the whole JPEG and cropping for '
                f'{check["images_equal"]:,d} of {check["num_images"]:,d} images.', '']
    lines += ['| path | images / s (median) | each round |', '|---|---|---|']
    for r in pipe:
      extra = (f' ({r["cache_bytes_per_image"] / 1024:.1f} KiB per image on disk)'
               if 'cache_bytes_per_image' in r else '')
      each = ', '.join(f'{v:,.0f}' for v in r.get('images_per_s_all', []))
      lines.append(f'| {r["path"]}{extra} | {r["images_per_s"]:,.0f} | {each} |')
    lines.append('')
    spreads = [max(r['images_per_s_all']) / min(r['images_per_s_all']) for r in pipe
               if len(r.get('images_per_s_all', [])) > 1]
    if spreads and max(spreads) > 1.5:
      lines += [f'The rounds of one path varied by up to {max(spreads):.1f}x (other work on the machine), so '
                'differences between paths smaller than that are not established by this run.', '']
    fed = [r for r in rows if r.get('kind') == 'fed']
    if fed:
      base = next((r['step_ms'] for r in fed if r['feed'].startswith('constant')), None)
      lines += [f'### {fed[0]["preset"]} training steps fed by each input, on the same cores', '',
                f'Median over {fed[0]["rounds"]} rounds of {fed[0]["fed_steps"]} steps (batch {fed[0]["model_batch"]}),'
                ' each round on a fresh iterator after one untimed batch. On a CPU-only machine the input work '
                'competes with the step for the cores, so this is what training here really gets.', '',
                '| input | ms / step | images / s | step time vs constant batch |', '|---|---|---|---|']
      for r in fed:
        rel = f'{r["step_ms"] / base:.3f}x' if base else '-'
        lines.append(f'| {r["feed"]} | {r["step_ms"]:,.0f} | {r["images_per_s"]:,.1f} | {rel} |')
      lines.append('')
    rates = {r['path']: r['images_per_s'] for r in pipe}
    train_pipe = next((v for k, v in rates.items() if k.startswith('pipeline.make_image_dataset')), None)
    cached = next((v for k, v in rates.items() if k.startswith('image_cache.')), None)
    lines += ['## Does the input keep up? (goal: the pipeline delivers >= 3x what a training step consumes)', '']
    cr = models.get('crvaegan')
    if cr is not None and train_pipe is not None:
      need = cr['train_images_per_s']
      lines.append(f'* Here ({cr["device"]}): a {cr["scale"]} crVAE-GAN step consumes {need:,.1f} images/s; the '
                   f'uncached pipeline delivers {train_pipe:,.0f} ({train_pipe / need:,.0f}x)'
                   + (f', the cached one {cached:,.0f} ({cached / need:,.0f}x)' if cached else '')
                   + f'. Goal met: {"yes" if train_pipe >= 3 * need else "NO"}.')
      if cr['device'] != (pipe[0]['device']):
        lines.append('  (The two parts ran on different machines; the ratio compares them as measured.)')
      lines.append(f'  On a CPU-only machine the input shares the cores with the step: at a ratio r it takes about '
                   f'1/r of the core time ({100 * need / train_pipe:.1f}% uncached'
                   + (f', {100 * need / cached:.1f}% cached' if cached else '') + '); the fed-step table measures it.')
    for model in ('vaegan', 'crvaegan'):
      t = THESIS[model]
      fwd = t['encode_ms'] + t['generate_ms']
      upper = 128 / (fwd / 1e3)
      step = 128 / (STEP_OVER_FORWARD * fwd / 1e3)
      text = (f'* Thesis GPU, {NAMES[model]}: encode + generate take {fwd:.1f} ms per 128 images, so a training '
              f'step (which at least runs both forward) consumes at most {upper:,.0f} images/s; assuming a step '
              f'costs {STEP_OVER_FORWARD:g}x that forward pass (forward and backward; the thesis gives no step '
              f'time), {step:,.0f} images/s. The 3x goal then needs {3 * step:,.0f} images/s '
              f'({3 * upper:,.0f} at the bound)')
      if train_pipe is not None:
        best = cached or train_pipe
        per_core = best / pipe[0]['cpu_count']
        text += (f'; this machine\'s uncached pipeline gives {train_pipe / step:.2f}x of one step\'s need'
                 + (f', the cached one {cached / step:.2f}x' if cached else '')
                 + f'. At the {"cached" if cached else "uncached"} rate per core measured here '
                 f'({per_core:,.0f} images/s/core, under the load recorded above) the 3x goal takes about '
                 f'{3 * step / per_core:,.0f} such cores (if throughput scales with cores)')
      lines.append(text + '.')
    lines.append('')
  with open(path_md, 'w') as f:
    f.write('\n'.join(lines))


def main(argv):
  del argv
  bad = [p for p in FLAGS.parts if p not in ('models', 'pipeline', 'fed')]
  if bad:
    print(f'error: --parts: {bad} not valid; valid values are models, pipeline, fed', file=sys.stderr)
    sys.exit(2)
  if FLAGS.report_only:
    with open(FLAGS.out + '.jsonl') as f:
      write_report([json.loads(line) for line in f if line.strip()], FLAGS.out + '.md')
    print(open(FLAGS.out + '.md').read())
    return
  print(f'load average at start: {_load_average()} ({os.cpu_count()} cores; the machine may be shared)', flush=True)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if FLAGS.require_gpu and not tf.config.list_physical_devices('GPU'):
    print('error: --require_gpu but TensorFlow sees no GPU; run on a machine with one or drop --require_gpu',
          file=sys.stderr)
    sys.exit(2)
  info = _run_info(tf)
  path_jsonl = FLAGS.out + '.jsonl'
  old = []
  if os.path.exists(path_jsonl):
    with open(path_jsonl) as f:
      old = [json.loads(line) for line in f if line.strip()]
  rows = [r for r in old if r.get('part') not in FLAGS.parts]
  if 'models' in FLAGS.parts:
    rows += run_models(tf, info)
  if 'pipeline' in FLAGS.parts or 'fed' in FLAGS.parts:
    rows += run_pipeline(tf, info)
  os.makedirs(os.path.dirname(os.path.abspath(path_jsonl)), exist_ok=True)
  with open(path_jsonl, 'w') as f:
    for r in rows:
      f.write(json.dumps(r) + '\n')
  write_report(rows, FLAGS.out + '.md')
  print(open(FLAGS.out + '.md').read())


if __name__ == '__main__':
  app.run(main)
