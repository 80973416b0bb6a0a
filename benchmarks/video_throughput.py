r"""Chapter 7 throughput (issue 13 §7): input, training steps and Enc_v, side by side in one run; writes
docs/video_throughput.{md,json}.

The thesis gives no timings; the issue sets one goal: end-to-end clips/s >= 0.9 x train-only clips/s. Everything
else is reported, not claimed. One `--preset` (small by default) of the MMNIST models, one batch size, one clip
length per stage, for every variant (like with like):

input     clips/s of the training streams alone, as the training loop builds them (`video.training.training_stream`):
          the Moving MNIST generator (`moving_mnist.make_dataset`: pure tf.data) at the stage-1 clip length
          (`RunConfig.stage1_clip_length`, the training run's default) and at the stage-2 length (T = 8); and the
          Weizmann shard reader (`video_shards.make_dataset`: interleave, parse, `decode_png` of the 8-frame window,
          flip, area resize to the preset's frame size) on stick-figure stand-ins (`video_standins.write_weizmann`,
          the published layout) prepared by `video_shards.prepare` in a temporary folder. Each round takes a fresh
          iterator, pulls one untimed batch, then times `--input_batches`.
decode    frames/s of `video_shards.prepare` on those stand-ins (PyAV decode, trimming, crop and resize, PNG encode
          in `--prepare_workers` spawned processes, TFRecord writing): its report's `decode_frames_per_s` (frames
          over the wall time, worker start-up included) and `per_worker_frames_per_s` (frames over the seconds
          spent inside the workers). One preparation per `--prepare_repeats`, each into a fresh folder.
train     clips/s of `Stage1Trainer.train_clips` (one frame pair drawn per clip) and `Stage2Trainer.train_step` on a
          fixed in-memory batch (MMNIST clips), `--train_batches` steps per round after `--warmup_steps` untimed
          ones (the first traces). After every step the step counter is read back, as the training loop does.
end2end   the same steps fed from the MMNIST stream (a fresh iterator per round, one untimed step, then
          `--train_batches` timed ones): `for batch in ds: trainer.train_clips(batch[0]); int(trainer.step)`,
          the training loop's work without its summaries, checkpoints and sheets.
Enc_v     `models.VideoEncoder` of `--encv_presets` (small and paper: widths 16-128 vs 64-512, conv1 3x7x7 vs
          7x7x7) on [--encv_batch, 8, 64, 64, 1]: forward in inference mode, and forward + backward (training mode,
          gradient of mean(S^2) + mean(P^2) w.r.t. every trainable variable, no optimiser update), ms per clip;
          parameter counts (`models.count_params`: all weights, BN statistics included; and the trainable ones).

Ratios (medians over the rounds; the ratio of the fastest rounds as a second estimate): input / train per stage
(MMNIST stream at that stage's clip length), Weizmann shards / stage-2 train (the MMNIST step of the same preset:
the Weizmann step has 3 colour channels, larger P / p and the best-warp term, so it is slower and this ratio
understates its margin), and end-to-end / train per stage (goal >= 0.9). Every round times every variant once, in
an order that rotates from round to round, so load changes on a shared machine hit them alike. The load average
is recorded at the start, after the set-up, after every round and at the end; a 1-minute load above 1 marks the
numbers as rough.

  python benchmarks/video_throughput.py                      # small preset, docs/video_throughput.{md,json}
  python benchmarks/video_throughput.py --quick --out=/tmp/vt # smoke test: tiny preset, batch 2, 3 rounds
  python benchmarks/video_throughput.py --preset=paper --batch_size=4 --repeats=3
"""

import json
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
PRESETS = ('tiny', 'small', 'paper')
GOAL_END_TO_END_OVER_TRAIN = 0.9    # issue 13 §7
ROUGH_LOAD = 1.0                    # a 1-minute load above this marks the numbers as rough
STAGES = ('stage1', 'stage2')
# The timed variants of the rounds, in their base order, with the report's labels.
INPUTS = ('mmnist_input_stage1', 'mmnist_input_stage2', 'shards_input')
TRAINS = ('stage1_train', 'stage2_train', 'stage1_end_to_end', 'stage2_end_to_end')
VARIANTS = INPUTS + TRAINS
ENCV_MODES = ('forward', 'forward_backward')
QUICK = dict(preset='tiny', batch_size=2, repeats=3, warmup_steps=2, train_batches=1, input_batches=2,
             encv_presets=['tiny', 'small'], encv_batch=1, encv_repeats=1, encv_iters=1, standin_actors=1,
             standin_frames=14, prepare_workers=0, prepare_repeats=1)

flags.DEFINE_string('preset', 'small', f'MMNIST preset of the trainers and streams: {", ".join(PRESETS)}.')
flags.DEFINE_integer('batch_size', 0, 'Clips per batch of every variant; 0 = the preset\'s (small 32).')
flags.DEFINE_integer('repeats', 7, 'Interleaved timing rounds (medians over them).')
flags.DEFINE_integer('warmup_steps', 2, 'Untimed steps per trainer before the rounds (the first traces, the second '
                     'settles the kernels\' caches).')
flags.DEFINE_integer('train_batches', 3, 'Train steps timed per round and variant (train-only and end-to-end).')
flags.DEFINE_integer('input_batches', 10, 'Batches timed per round and input stream (after one untimed).')
flags.DEFINE_integer('stage1_clip_length', 0, 'Frames per stage-1 clip; 0 = the training run\'s default '
                     '(RunConfig.stage1_clip_length).')
flags.DEFINE_list('encv_presets', ['small', 'paper'], 'The two presets whose Enc_v widths are compared (the '
                  'first is the baseline of the ratios).')
flags.DEFINE_integer('encv_batch', 2, 'Clips per Enc_v call (the paper width is heavy on 2 CPU cores).')
flags.DEFINE_integer('encv_repeats', 3, 'Interleaved Enc_v rounds.')
flags.DEFINE_integer('encv_iters', 2, 'Enc_v calls timed per round, preset and mode.')
flags.DEFINE_integer('standin_actors', 3, 'Weizmann stand-in actors (10 actions each, one extra take).')
flags.DEFINE_integer('standin_frames', 48, 'Frames per stand-in video (180x144, as Weizmann\'s).')
flags.DEFINE_integer('prepare_workers', 2, 'Decoding processes of video_shards.prepare (0 = in this process).')
flags.DEFINE_integer('prepare_repeats', 2, 'Preparations of the stand-ins, each into a fresh folder.')
flags.DEFINE_bool('quick', False, 'Smoke test: ' + ', '.join(
    f'--{k}={",".join(v) if isinstance(v, list) else v}' for k, v in QUICK.items()) + ' (unless given).')
flags.DEFINE_string('out', os.path.join(ROOT, 'docs', 'video_throughput'),
                    'Writes OUT.json (this run) and OUT.md; empty: print only.')
FLAGS = flags.FLAGS


def rotated(items, r):
  k = r % len(items)
  return items[k:] + items[:k]


def _median(values) -> float:
  return float(np.median(np.asarray(values, np.float64)))


# ------------------------------------------------------------------------------------------------- set-up


def standin_shards(tmp: str, cfg_w, num_frames: int) -> dict:
  """Writes the Weizmann stand-ins and prepares them `--prepare_repeats` times (fresh folders); returns the decode
  figures and the last shard folder."""
  from rlcv_tf.datasets import video_shards  # pylint: disable=g-import-not-at-top
  from rlcv_tf.datasets import video_standins  # pylint: disable=g-import-not-at-top
  root = os.path.join(tmp, 'weizmann')
  t0 = time.perf_counter()
  written = video_standins.write_weizmann(root, num_actors=FLAGS.standin_actors, num_frames=FLAGS.standin_frames)
  write_s = time.perf_counter() - t0
  runs = []
  for i in range(FLAGS.prepare_repeats):
    out = os.path.join(tmp, f'shards_{i}')
    report = video_shards.prepare('weizmann', root, out, num_workers=FLAGS.prepare_workers, min_frames=num_frames)
    t = report['timing']
    runs.append(dict(decode_frames_per_s=t['decode_frames_per_s'],
                     per_worker_frames_per_s=t['per_worker_frames_per_s'],
                     frames_decoded=report['counts']['frames_decoded'], wall_s=t['this_run']['wall_s'],
                     seconds_in_workers=t['this_run']['seconds_in_workers'], out=out))
  last = runs[-1]
  return dict(
      shard_dir=last['out'], videos_listed=len(written), videos_written=report['counts']['written'],
      videos_skipped=report['counts']['skipped'], frames_per_video=FLAGS.standin_frames,
      source_frame_size=[144, 180], stored_image_shape=report['image_shape'], read_image_size=cfg_w.image_size,
      frames_written=report['counts']['frames_written'], num_workers=FLAGS.prepare_workers, write_standins_s=write_s,
      decode_frames_per_s=_median([r['decode_frames_per_s'] for r in runs]),
      decode_frames_per_s_all=[r['decode_frames_per_s'] for r in runs],
      per_worker_frames_per_s=_median([r['per_worker_frames_per_s'] for r in runs]),
      per_worker_frames_per_s_all=[r['per_worker_frames_per_s'] for r in runs],
      frames_decoded=last['frames_decoded'], wall_s_all=[r['wall_s'] for r in runs])


def _input_timer(ds, batches: int):
  """Seconds for `batches` batches of a fresh iterator of ds, after one untimed batch."""

  def run_once() -> float:
    it = iter(ds)
    _ = next(it)[0].numpy()
    t = time.perf_counter()
    for _ in range(batches):
      batch = next(it)
    _ = batch[0].numpy()
    t = time.perf_counter() - t
    del it
    return t
  return run_once


def _train_timer(step_fn, counter, batches: int, fixed=None, ds=None):
  """Seconds for `batches` steps: on the fixed batch (train-only), or fed from a fresh iterator of ds (one untimed
  step first). The step counter is read back after every step, as the training loop does."""

  def run_once() -> float:
    if ds is None:
      t = time.perf_counter()
      for _ in range(batches):
        step_fn(fixed)
        _ = int(counter.numpy())
      return time.perf_counter() - t
    it = iter(ds)
    step_fn(next(it)[0])
    _ = int(counter.numpy())
    t = time.perf_counter()
    for _ in range(batches):
      step_fn(next(it)[0])
      _ = int(counter.numpy())
    t = time.perf_counter() - t
    del it
    return t
  return run_once


def setup(tf, tmp: str):
  """The timed callables of every variant, and what the report says about them."""
  from rlcv_tf.video import models  # pylint: disable=g-import-not-at-top
  from rlcv_tf.video import presets  # pylint: disable=g-import-not-at-top
  from rlcv_tf.video import run_config  # pylint: disable=g-import-not-at-top
  from rlcv_tf.video import train_steps  # pylint: disable=g-import-not-at-top
  from rlcv_tf.video import training  # pylint: disable=g-import-not-at-top
  overrides = {'batch_size': FLAGS.batch_size} if FLAGS.batch_size else {}
  cfg = presets.get_preset('mmnist', FLAGS.preset, **overrides)
  cfg_w = presets.get_preset('weizmann', FLAGS.preset, **overrides)
  run = run_config.RunConfig(dataset='mmnist', seed=0)
  if FLAGS.stage1_clip_length:
    run.stage1_clip_length = FLAGS.stage1_clip_length
  run.validate()
  b, t1, t2 = cfg.batch_size, run.stage1_clip_length, cfg.num_frames
  timings = {}

  t0 = time.perf_counter()
  decode = standin_shards(tmp, cfg_w, t2)
  run_w = run_config.RunConfig(dataset='weizmann', data_dir=decode['shard_dir'], seed=0).validate()
  print(f'[bench] Weizmann stand-ins: {decode["videos_written"]} videos prepared {FLAGS.prepare_repeats}x in '
        f'{time.perf_counter() - t0:.1f} s ({decode["decode_frames_per_s"]:,.0f} frames/s)', flush=True)

  stream1, _ = training.training_stream(cfg, run, t1, 0)
  stream2, _ = training.training_stream(cfg, run, t2, 0)
  shards, _ = training.training_stream(cfg_w, run_w, t2, 0)
  timings['mmnist_input_stage1'] = _input_timer(stream1, FLAGS.input_batches)
  timings['mmnist_input_stage2'] = _input_timer(stream2, FLAGS.input_batches)
  timings['shards_input'] = _input_timer(shards, FLAGS.input_batches)
  for name in INPUTS:
    timings[name]()                                   # traces the maps, loads the digits
  print(f'[bench] input streams built ({time.perf_counter() - t0:.1f} s)', flush=True)

  t0 = time.perf_counter()
  # The trainers build the weights by one inference-mode call (no symbolic traces of build_models: a faster start).
  built = dict(frame_autoencoder=models.FrameAutoencoder(cfg), block_stn=models.BlockSTN.from_video_config(cfg),
               video_encoder=models.VideoEncoder(cfg), frame_dynamics=models.FrameDynamicsAE(cfg),
               predictor=models.AutoregressivePredictor.from_video_config(cfg))
  trainer1 = train_steps.Stage1Trainer(cfg, built['frame_autoencoder'], built['block_stn'], seed=run.seed)
  trainer2 = train_steps.Stage2Trainer(cfg, built['frame_autoencoder'], built['block_stn'], built['video_encoder'],
                                       built['frame_dynamics'], built['predictor'])
  fixed1 = tf.constant(next(iter(stream1))[0].numpy())
  fixed2 = tf.constant(next(iter(stream2))[0].numpy())
  for _ in range(FLAGS.warmup_steps):
    trainer1.train_clips(fixed1)
    _ = int(trainer1.step.numpy())
    trainer2.train_step(fixed2)
    _ = int(trainer2.step.numpy())
  n = FLAGS.train_batches
  timings['stage1_train'] = _train_timer(trainer1.train_clips, trainer1.step, n, fixed=fixed1)
  timings['stage2_train'] = _train_timer(trainer2.train_step, trainer2.step, n, fixed=fixed2)
  timings['stage1_end_to_end'] = _train_timer(trainer1.train_clips, trainer1.step, n, ds=stream1)
  timings['stage2_end_to_end'] = _train_timer(trainer2.train_step, trainer2.step, n, ds=stream2)
  for name in ('stage1_end_to_end', 'stage2_end_to_end'):
    timings[name]()                                   # a retrace if the stream's batch shape is less static
  print(f'[bench] trainers built and warmed up ({time.perf_counter() - t0:.1f} s)', flush=True)

  batches = {name: FLAGS.input_batches if name in INPUTS else n for name in VARIANTS}
  frames = dict(mmnist_input_stage1=t1, mmnist_input_stage2=t2, shards_input=t2, stage1_train=t1, stage2_train=t2,
                stage1_end_to_end=t1, stage2_end_to_end=t2)
  shapes = {name: [b, frames[name]] + list(cfg_w.frame_shape if name == 'shards_input' else cfg.frame_shape)
            for name in VARIANTS}
  info = dict(config=cfg, run=run, batches=batches, frames=frames, shapes=shapes,
              params=dict(stage1=sum(models.count_params(m) for m in (built['frame_autoencoder'], built['block_stn'])),
                          stage2=sum(models.count_params(built[k])
                                     for k in ('video_encoder', 'frame_dynamics', 'predictor'))))
  return timings, info, decode


def encv_setup(tf):
  """Per Enc_v preset: the compiled forward / forward+backward calls on a fixed batch, warmed up; parameters."""
  from rlcv_tf.video import models  # pylint: disable=g-import-not-at-top
  from rlcv_tf.video import presets  # pylint: disable=g-import-not-at-top
  out = {}
  for name in FLAGS.encv_presets:
    cfg = presets.get_preset('mmnist', name)
    t0 = time.perf_counter()
    enc = models.VideoEncoder(cfg)
    video = tf.constant(np.random.default_rng(0).random((FLAGS.encv_batch,) + cfg.video_shape, np.float32))
    forward = tf.function(lambda v, enc=enc: enc(v, training=False), autograph=False)

    def forward_backward(v, enc=enc):
      with tf.GradientTape() as tape:
        statics, dynamics = enc(v, training=True)
        loss = tf.reduce_mean(tf.square(statics)) + tf.reduce_mean(tf.square(dynamics))
      return tf.linalg.global_norm(tape.gradient(loss, enc.trainable_variables))

    calls = dict(forward=lambda f=forward, v=video: f(v)[1].numpy(),
                 forward_backward=lambda f=tf.function(forward_backward, autograph=False), v=video: f(v).numpy())
    for call in calls.values():
      call()
      call()                                      # the first traces, the second settles the kernels' caches
    out[name] = dict(calls=calls, setup_s=time.perf_counter() - t0, width=cfg.video_width,
                     widths=list(cfg.video_widths), conv1_kernel=list(cfg.conv1_kernel),
                     statics_head_filters=cfg.statics_head_filters, dynamics_hidden=cfg.dynamics_hidden,
                     video_shape=list(cfg.video_shape), params=models.count_params(enc),
                     trainable_params=int(sum(int(np.prod(v.shape)) for v in enc.trainable_variables)))
    print(f'[bench] Enc_v {name}: {out[name]["params"]:,d} parameters, built and traced in '
          f'{out[name]["setup_s"]:.1f} s', flush=True)
  return out


# ------------------------------------------------------------------------------------------------- rounds


def measure(tf, tmp: str):
  timings, info, decode = setup(tf, tmp)
  encv = encv_setup(tf)
  load_after_setup = machine_state.load_average()
  seconds = {name: [] for name in VARIANTS}
  load_by_round = []
  for r in range(FLAGS.repeats):
    for name in rotated(list(VARIANTS), r):
      seconds[name].append(timings[name]())
    load_by_round.append(machine_state.load_average())
    print(f'[bench] round {r + 1}/{FLAGS.repeats} done (load {load_by_round[-1]})', flush=True)
  encv_ms = {name: {mode: [] for mode in ENCV_MODES} for name in encv}
  keys = [(name, mode) for name in encv for mode in ENCV_MODES]
  for r in range(FLAGS.encv_repeats):
    for name, mode in rotated(keys, r):
      call = encv[name]['calls'][mode]
      t = time.perf_counter()
      for _ in range(FLAGS.encv_iters):
        call()
      encv_ms[name][mode].append(1e3 * (time.perf_counter() - t) / FLAGS.encv_iters / FLAGS.encv_batch)
    print(f'[bench] Enc_v round {r + 1}/{FLAGS.encv_repeats} done (load {machine_state.load_average()})', flush=True)
  return seconds, info, decode, encv, encv_ms, load_after_setup, load_by_round


def _ratio(a: dict, b: dict, label: str) -> dict:
  """a / b of two rate entries: by the medians and by the fastest rounds."""
  return dict(label=label, numerator=a['name'], denominator=b['name'], value=a['clips_per_s'] / b['clips_per_s'],
              fastest_round_value=max(a['clips_per_s_all']) / max(b['clips_per_s_all']))


def summarise(seconds, info, decode, encv, encv_ms) -> dict:
  cfg = info['config']
  rates = {}
  for name in VARIANTS:
    per_round = [info['batches'][name] * cfg.batch_size / s for s in seconds[name]]
    rates[name] = dict(name=name, clips_per_s=_median(per_round), clips_per_s_all=per_round,
                       seconds_all=list(seconds[name]), batches_per_round=info['batches'][name],
                       batch_size=cfg.batch_size, frames=info['frames'][name], clip_shape=info['shapes'][name],
                       frames_per_s=_median(per_round) * info['frames'][name])
  input_over_train = dict(
      stage1=_ratio(rates['mmnist_input_stage1'], rates['stage1_train'],
                    f'MMNIST generator ({info["frames"]["stage1_train"]} frames) / stage-1 train-only'),
      stage2=_ratio(rates['mmnist_input_stage2'], rates['stage2_train'],
                    f'MMNIST generator ({info["frames"]["stage2_train"]} frames) / stage-2 train-only'),
      shards_stage2=_ratio(rates['shards_input'], rates['stage2_train'],
                           'Weizmann stand-in shards / stage-2 train-only (MMNIST step; conservative)'))
  end_to_end_over_train = {
      s: _ratio(rates[f'{s}_end_to_end'], rates[f'{s}_train'], f'stage {s[-1]} end-to-end / train-only')
      for s in STAGES}
  goals = [dict(goal=f'stage {s[-1]} end-to-end / train-only >= {GOAL_END_TO_END_OVER_TRAIN}',
                value=e['value'], met=e['value'] >= GOAL_END_TO_END_OVER_TRAIN,
                fastest_round_value=e['fastest_round_value'],
                met_fastest_round=e['fastest_round_value'] >= GOAL_END_TO_END_OVER_TRAIN)
           for s, e in end_to_end_over_train.items()]
  encoder = {}
  for name, e in encv.items():
    entry = {k: v for k, v in e.items() if k not in ('calls', 'setup_s')}
    entry.update(batch=FLAGS.encv_batch, setup_s=e['setup_s'])
    for mode in ENCV_MODES:
      entry[f'{mode}_ms_per_clip'] = _median(encv_ms[name][mode])
      entry[f'{mode}_ms_per_clip_all'] = list(encv_ms[name][mode])
    encoder[name] = entry
  base, other = FLAGS.encv_presets
  encoder_ratios = dict(
      label=f'{other} / {base}',
      params=encoder[other]['params'] / encoder[base]['params'],
      trainable_params=encoder[other]['trainable_params'] / encoder[base]['trainable_params'],
      **{f'{mode}_ms_per_clip': encoder[other][f'{mode}_ms_per_clip'] / encoder[base][f'{mode}_ms_per_clip']
         for mode in ENCV_MODES})
  return dict(rates=rates, decode={k: v for k, v in decode.items() if k != 'shard_dir'},
              input_over_train=input_over_train, end_to_end_over_train=end_to_end_over_train, goals=goals,
              encoder=encoder, encoder_ratios=encoder_ratios, trainer_params=info['params'])


# ------------------------------------------------------------------------------------------------- report

LABELS = dict(mmnist_input_stage1='MMNIST generator alone, stage-1 clips',
              mmnist_input_stage2='MMNIST generator alone, stage-2 clips',
              shards_input='Weizmann stand-in shards alone (tf.data reader)',
              stage1_train='stage 1 train-only (fixed batch)', stage2_train='stage 2 train-only (fixed batch)',
              stage1_end_to_end='stage 1 end-to-end (fed from the stream)',
              stage2_end_to_end='stage 2 end-to-end (fed from the stream)')


def rates_table(row) -> str:
  lines = ['| variant | clip [B, T, H, W, C] | clips/s (median) | frames/s | clips/s, all rounds |',
           '|---|---|---|---|---|']
  for name in VARIANTS:
    r = row['rates'][name]
    lines.append(f'| {LABELS[name]} | {"x".join(map(str, r["clip_shape"]))} | {r["clips_per_s"]:.2f} | '
                 f'{r["frames_per_s"]:,.0f} | {", ".join(f"{v:.2f}" for v in r["clips_per_s_all"])} |')
  return '\n'.join(lines)


def ratio_lines(row) -> list:
  """The lines the test reads: each ratio with the two rates it divides."""
  rates = row['rates']
  lines = []
  for key, e in row['input_over_train'].items():
    lines.append(f'input/train {key}: {rates[e["numerator"]]["clips_per_s"]:.2f} / '
                 f'{rates[e["denominator"]]["clips_per_s"]:.2f} clips/s = {e["value"]:.3f} '
                 f'({e["fastest_round_value"]:.3f} fastest rounds; {e["label"]})')
  for (key, e), g in zip(row['end_to_end_over_train'].items(), row['goals']):
    lines.append(f'end_to_end/train {key}: {rates[e["numerator"]]["clips_per_s"]:.2f} / '
                 f'{rates[e["denominator"]]["clips_per_s"]:.2f} clips/s = {e["value"]:.3f} '
                 f'({e["fastest_round_value"]:.3f} fastest rounds); goal >= {GOAL_END_TO_END_OVER_TRAIN}: '
                 f'{"met" if g["met"] else "NOT met"} by the medians, '
                 f'{"met" if g["met_fastest_round"] else "NOT met"} by the fastest rounds')
  return lines


def encoder_table(row) -> str:
  enc, rat = row['encoder'], row['encoder_ratios']
  names = list(enc)
  lines = [f'| Enc_v | {" | ".join(names)} | {rat["label"]} |', '|---|' + '---|' * (len(names) + 1)]
  lines.append('| widths (layer1-4) | ' + ' | '.join('-'.join(map(str, enc[n]['widths'])) for n in names) + ' | |')
  lines.append('| conv1 kernel (t, h, w) | ' + ' | '.join('x'.join(map(str, enc[n]['conv1_kernel'])) for n in names)
               + ' | |')
  lines.append('| parameters (all weights) | ' + ' | '.join(f'{enc[n]["params"]:,d}' for n in names)
               + f' | {rat["params"]:.1f}x |')
  lines.append('| trainable parameters | ' + ' | '.join(f'{enc[n]["trainable_params"]:,d}' for n in names)
               + f' | {rat["trainable_params"]:.1f}x |')
  for mode, label in (('forward', 'forward, inference (ms / clip)'),
                      ('forward_backward', 'forward + backward, training (ms / clip)')):
    lines.append(f'| {label} | ' + ' | '.join(f'{enc[n][f"{mode}_ms_per_clip"]:.1f}' for n in names)
                 + f' | {rat[f"{mode}_ms_per_clip"]:.1f}x |')
  return '\n'.join(lines)


def _work(entries) -> str:
  """Other processes as one Markdown-safe line (command lines can hold newlines and pipes)."""
  return '; '.join(f'{" ".join(w["command"].split()).replace("|", "/")} ({w["cpu_percent"]}% CPU)'
                   for w in entries) or 'none seen'


def markdown(row) -> str:
  m, st, d, load = row['machine'], row['settings'], row['decode'], row['load_average']
  rough = ('**Rough numbers**: the 1-minute load average reached '
           f'{row["max_load_1min"]:.2f} (> {ROUGH_LOAD:g}) on {m["cpu_count"]} cores during the run, so other work '
           'shared the cores; the interleaved rounds spread it over the variants, but absolute rates are low and '
           'ratios noisy. (The load average also counts this benchmark\'s own threads, up to about the core count '
           'while it runs; the reading at the start, before TensorFlow loads, is the cleaner sign of other work.)'
           if row['rough'] else
           f'The 1-minute load average stayed at or below {ROUGH_LOAD:g} during the run.')
  out = [
      '# Chapter 7 throughput: input, training steps and Enc_v',
      '',
      'Written by `python benchmarks/video_throughput.py` (issue 13 §7). The thesis gives no timings; the issue\'s '
      f'one goal is end-to-end >= {GOAL_END_TO_END_OVER_TRAIN} x train-only clips/s. Every round times every '
      'variant once, in an order rotating each round; medians over the rounds, and the ratio of the fastest rounds '
      'as a second estimate. Random weights (the work of a step does not depend on training).',
      '',
      '## Machine',
      '',
      f'- date {m["date"]}, host {m["host"]}, {m["device"]}, {m["cpu_count"]} cores ({m["processor"]}), '
      f'TensorFlow {m["tf_version"]}, code {m["code"]}',
      f'- load average (1, 5, 15 min) at start {load["start"]}, after the set-up {load["after_setup"]}, after each '
      f'round {"; ".join(map(str, load["by_round"]))}, at the end {load["end"]}',
      f'- other work at start: {_work(row["other_work"])}',
      f'- other work at the end: {_work(row["other_work_end"])}',
      f'- {rough}',
      f'- settings: MMNIST preset {st["preset"]}, batch {st["batch_size"]}, stage-1 clips of '
      f'{st["stage1_clip_length"]} frames, stage-2 clips of {st["num_frames"]}; {st["repeats"]} rounds of '
      f'{st["train_batches"]} step(s) per train variant after {st["warmup_steps"]} warm-up step(s) and '
      f'{st["input_batches"]} batches per input stream' + (' (--quick)' if st['quick'] else ''),
      '',
      '## Ratios',
      '',
  ] + [f'- {line}' for line in ratio_lines(row)] + [
      '',
      '## Clips per second',
      '',
      rates_table(row),
      '',
      'Weights (all, BN statistics included) of the models each step runs: stage 1 (g_enc, g_dec, BlockSTN) '
      f'{row["trainer_params"]["stage1"]:,d}; stage 2 trains Enc_v, f_enc / f_dec, f_auto '
      f'({row["trainer_params"]["stage2"]:,d}) through the frozen stage-1 models.',
      '',
      '## Decoding (video_shards.prepare on the Weizmann stand-ins)',
      '',
      f'{d["videos_written"]} stick-figure videos of {d["frames_per_video"]} frames at 180x144 (the Weizmann layout, '
      f'avi), {d["frames_decoded"]:,d} frames decoded per preparation, stored at '
      f'{"x".join(map(str, d["stored_image_shape"]))} and read at {d["read_image_size"]}x{d["read_image_size"]}; '
      f'{d["num_workers"]} worker process(es), {len(d["decode_frames_per_s_all"])} preparation(s).',
      '',
      '| | frames/s (median) | all preparations |',
      '|---|---|---|',
      f'| decode frames/s (frames / wall time, worker start-up included) | {d["decode_frames_per_s"]:,.0f} | '
      f'{", ".join(f"{v:,.0f}" for v in d["decode_frames_per_s_all"])} |',
      f'| per worker (frames / seconds inside the workers) | {d["per_worker_frames_per_s"]:,.0f} | '
      f'{", ".join(f"{v:,.0f}" for v in d["per_worker_frames_per_s_all"])} |',
      '',
      'The per-video work is decode, median-background trimming, the 144x144 crop and area resize, and PNG '
      'encoding; small stand-ins make worker start-up a large share of the wall time.',
      '',
      f'## Enc_v: {" vs ".join(row["encoder"])} width (batch {st["encv_batch"]}, {st["encv_repeats"]} rounds of '
      f'{st["encv_iters"]} call(s))',
      '',
      encoder_table(row),
      '',
      'Forward: `VideoEncoder(video, training=False)` -> (S, P). Forward + backward: training mode (BN on batch '
      'statistics), gradient of mean(S^2) + mean(P^2) w.r.t. every trainable variable, no optimiser update. '
      'Parameters: all weights (BN moving statistics included) and the trainable ones.',
      '',
      '## Reading and confounds',
      '',
      '- On a CPU-only machine the input pipeline and the step share the same cores: end-to-end includes the '
      'generator\'s (or reader\'s) CPU time unless it overlaps with the step\'s idle time, so input / train above 1 '
      'alone does not guarantee end-to-end ~ train-only.',
      '- Input streams and end-to-end runs start from a fresh iterator each round after one untimed batch (or step); '
      'the parallel map and prefetch may have a batch ready, which flatters those rounds by up to one batch.',
      '- The Weizmann shard ratio divides by the MMNIST stage-2 step of the same preset; the Weizmann step is '
      'heavier (3 channels, P 512 / p 128, the best-warp term), so its own ratio would be higher.',
      '- End-to-end leaves out the training loop\'s summaries (every 25 steps), sheets, checkpoints and log lines.',
  ]
  spread = {name: max(r['clips_per_s_all']) / min(r['clips_per_s_all']) for name, r in row['rates'].items()}
  worst = max(spread, key=spread.get)
  out.append(f'- The rounds of one variant varied by up to {spread[worst]:.2f}x (fastest / slowest round; '
             f'{LABELS[worst]}); every round is in the table above, and the ratios use medians.')
  return '\n'.join(out) + '\n'


def print_table(row) -> None:
  print(f'{"variant":<50} {"clips/s":>10} {"frames/s":>10}')
  for name in VARIANTS:
    r = row['rates'][name]
    print(f'{LABELS[name]:<50} {r["clips_per_s"]:>10.2f} {r["frames_per_s"]:>10.0f}')
  d = row['decode']
  print(f'{"prepare decode (wall), frames/s":<50} {"":>10} {d["decode_frames_per_s"]:>10.0f}')
  print(f'{"prepare decode (per worker), frames/s":<50} {"":>10} {d["per_worker_frames_per_s"]:>10.0f}')
  print()
  for name, e in row['encoder'].items():
    print(f'Enc_v {name}: {e["params"]:,d} parameters ({e["trainable_params"]:,d} trainable); forward '
          f'{e["forward_ms_per_clip"]:.2f} ms/clip, forward+backward {e["forward_backward_ms_per_clip"]:.2f} ms/clip '
          f'(batch {e["batch"]})')
  rat = row['encoder_ratios']
  print(f'Enc_v {rat["label"]}: parameters {rat["params"]:.2f}x, forward {rat["forward_ms_per_clip"]:.2f}x, '
        f'forward+backward {rat["forward_backward_ms_per_clip"]:.2f}x')


# ------------------------------------------------------------------------------------------------- main


def check_flags():
  if FLAGS.quick:
    for name, value in QUICK.items():
      if not FLAGS[name].present:
        setattr(FLAGS, name, value)
  if FLAGS.preset not in PRESETS:
    machine_state.fail(f'--preset={FLAGS.preset}: one of {", ".join(PRESETS)}')
  bad = [p for p in FLAGS.encv_presets if p not in PRESETS]
  if bad or len(FLAGS.encv_presets) != 2 or len(set(FLAGS.encv_presets)) != 2:
    machine_state.fail(f'--encv_presets={",".join(FLAGS.encv_presets)}: two different presets of '
                       f'{", ".join(PRESETS)}, comma-separated (e.g. small,paper)')
  if FLAGS.batch_size < 0:
    machine_state.fail(f'--batch_size={FLAGS.batch_size}: 0 (the preset\'s) or a clip count >= 1')
  for name in ('repeats', 'warmup_steps', 'train_batches', 'input_batches', 'encv_batch', 'encv_repeats',
               'encv_iters', 'standin_actors', 'prepare_repeats'):
    if getattr(FLAGS, name) < 1:
      machine_state.fail(f'--{name}={getattr(FLAGS, name)}: must be >= 1'
                         + (' (the first step traces)' if name == 'warmup_steps' else ''))
  if FLAGS.standin_actors > 9:
    machine_state.fail(f'--standin_actors={FLAGS.standin_actors}: the stand-ins have at most 9 actors')
  if FLAGS.stage1_clip_length < 0 or FLAGS.stage1_clip_length == 1:
    machine_state.fail(f'--stage1_clip_length={FLAGS.stage1_clip_length}: 0 (the training run\'s default) or >= 2 '
                       'frames')
  if FLAGS.prepare_workers < 0:
    machine_state.fail(f'--prepare_workers={FLAGS.prepare_workers}: 0 (in this process) or a process count >= 1')
  # Weizmann stand-ins lose up to 5 empty end frames to trimming; the reader needs 8-frame windows.
  if FLAGS.standin_frames < 14:
    machine_state.fail(f'--standin_frames={FLAGS.standin_frames}: at least 14 (8-frame windows after trimming up '
                       'to 5 empty end frames)')


def main(argv):
  if len(argv) > 1:
    machine_state.fail(f'unexpected arguments {argv[1:]}; all settings are --flags (see --help)')
  logging.set_verbosity(logging.WARNING)
  check_flags()
  load_start = machine_state.load_average()
  busy = machine_state.other_work()
  print(f'[bench] preset {FLAGS.preset}; load average {load_start} on {os.cpu_count()} cores; other work: '
        + ('; '.join(f'{w["command"][:60]} ({w["cpu_percent"]}%)' for w in busy) or 'none seen'), flush=True)
  from rlcv_tf.core import quiet  # pylint: disable=g-import-not-at-top
  tf = quiet.import_tensorflow()
  info = machine_state.machine_info(tf)
  tmp = tempfile.mkdtemp(prefix='video_throughput_')
  try:
    seconds, setup_info, decode, encv, encv_ms, load_after_setup, load_by_round = measure(tf, tmp)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  cfg = setup_info['config']
  row = dict(benchmark='video_throughput', machine=info, other_work=busy,
             settings=dict(preset=FLAGS.preset, batch_size=cfg.batch_size, image_size=cfg.image_size,
                           num_frames=cfg.num_frames, stage1_clip_length=setup_info['run'].stage1_clip_length,
                           repeats=FLAGS.repeats, warmup_steps=FLAGS.warmup_steps, train_batches=FLAGS.train_batches,
                           input_batches=FLAGS.input_batches, encv_presets=list(FLAGS.encv_presets),
                           encv_batch=FLAGS.encv_batch, encv_repeats=FLAGS.encv_repeats, encv_iters=FLAGS.encv_iters,
                           standin_actors=FLAGS.standin_actors, standin_frames=FLAGS.standin_frames,
                           prepare_workers=FLAGS.prepare_workers, prepare_repeats=FLAGS.prepare_repeats,
                           quick=FLAGS.quick))
  row.update(summarise(seconds, setup_info, decode, encv, encv_ms))
  load_end = machine_state.load_average()
  row['load_average'] = dict(start=load_start, after_setup=load_after_setup, by_round=load_by_round, end=load_end)
  readings = [load_start, load_after_setup, load_end] + load_by_round
  row['max_load_1min'] = max((r[0] for r in readings if r), default=0.0)
  row['rough'] = row['max_load_1min'] > ROUGH_LOAD
  row['other_work_end'] = machine_state.other_work()
  print()
  print_table(row)
  print()
  for line in ratio_lines(row):
    print(line)
  if row['rough']:
    print(f'rough numbers: the 1-minute load average reached {row["max_load_1min"]:.2f} (> {ROUGH_LOAD:g}) on '
          f'{os.cpu_count()} cores')
  if FLAGS.out:
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
    with open(FLAGS.out + '.json', 'w') as f:
      json.dump(row, f, indent=1)
    with open(FLAGS.out + '.md', 'w') as f:
      f.write(markdown(row))
    print(f'\n[bench] wrote {FLAGS.out}.json and {FLAGS.out}.md')


if __name__ == '__main__':
  app.run(main)
