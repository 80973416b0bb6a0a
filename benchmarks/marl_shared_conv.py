r"""The shared first conv (networks.py, `shared_channels`) against the plain one, measured side by side in one run.

Measures the Chapter 4 learner's own functions at 72x96 with 4 stacked SMM frames (16 channels):
  inference  `Learner.infer` on B envs x N = 5 agents (B = 4 and 16): sampled actions, logits and values;
  training   one `Learner.train` update on B = 4 unrolls x 33 steps x N = 4 agents (V-trace loss, gradients, Adam);
each for the plain and the shared model (same weights), under TF intra/inter-op thread pools 1/1, 2/1 and 2/2
(one child process each: the pools are fixed when TensorFlow starts), without and with XLA (the learner's
`jit_compile`: the inference function and the gradient computation compiled). Plain and shared calls alternate
and the median of each is kept, so load from other processes hits both alike. It also checks the two models agree
(max abs difference of the logits and values on SMM-like observations whose team and ball planes are shared).

Prints the table and writes it, with the machine and the settings, to docs/marl_shared_conv.md:

  .venv/bin/python benchmarks/marl_shared_conv.py            # about 15 minutes on 2 cores
  .venv/bin/python benchmarks/marl_shared_conv.py --models=acnn --repeats=3 --out=''   # shorter, no file
"""

import json
import os
import platform
import subprocess
import sys
import time

from absl import app
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # pylint: disable=g-import-not-at-top

flags.DEFINE_list('models', ['cnn', 'acnn'], 'Models to measure.')
flags.DEFINE_list('threads', ['1/1', '2/1', '2/2'], 'TF intra/inter-op thread pool sizes, one child process each.')
flags.DEFINE_list('xla', ['off', 'on'], 'XLA settings to measure (the learner\'s jit_compile).')
flags.DEFINE_list('infer_batches', ['4', '16'], 'Inference batches (envs; N = 5 agents each).')
flags.DEFINE_integer('repeats', 7, 'Timed calls of each model per measurement (after warm-up); the median counts.')
flags.DEFINE_integer('train_repeats', 4, 'Timed updates of each model per measurement (after warm-up).')
flags.DEFINE_string('out', os.path.join(ROOT, 'docs', 'marl_shared_conv.md'), 'Markdown report; empty: none.')
flags.DEFINE_string('child', '', 'Internal: measure under these intra/inter threads and print one JSON line.')
FLAGS = flags.FLAGS

H, W, FRAMES = 72, 96, 4
C = 4 * FRAMES
INFER_N, TRAIN_N, TRAIN_B, UNROLL = 5, 4, 4, 32
NUM_ACTIONS = 19


# ------------------------------------------------------------------------------------------------- child
def _smm_obs(rng, lead, n, shared_channels):
  """SMM-like uint8 [*lead, n, H, W, C]: sparse planes, the shared ones equal across the n agents."""
  obs = ((rng.random(tuple(lead) + (n, H, W, C)) < 0.02) * 255).astype(np.uint8)
  idx = list(shared_channels)
  obs[..., 1:, :, :, :][..., idx] = obs[..., :1, :, :, :][..., idx]
  return obs


def _batch(rng, shared_channels):
  t1 = UNROLL + 1
  return {
      'observation': _smm_obs(rng, (t1, TRAIN_B), TRAIN_N, shared_channels),
      'reward': rng.normal(size=(t1, TRAIN_B, TRAIN_N)).astype(np.float32),
      'done': np.zeros((t1, TRAIN_B), bool),
      'discount': np.ones((t1, TRAIN_B), np.float32),
      'truncated': np.zeros((t1, TRAIN_B), bool),
      'agent_positions': np.zeros((t1, TRAIN_B, TRAIN_N, 2), np.int32),
      'action': rng.integers(0, NUM_ACTIONS, size=(t1, TRAIN_B, TRAIN_N)).astype(np.int32),
      'behaviour_logits': rng.normal(size=(t1, TRAIN_B, TRAIN_N, NUM_ACTIONS)).astype(np.float32),
  }


def _side_by_side(fns, repeats, warmup):
  """Median seconds of each zero-argument function; calls alternate between them."""
  for fn in fns:
    for _ in range(warmup):
      fn()
  times = [[] for _ in fns]
  for _ in range(repeats):
    for k, fn in enumerate(fns):
      t0 = time.perf_counter()
      fn()
      times[k].append(time.perf_counter() - t0)
  return [float(np.median(t)) for t in times]


def _first_layer(torso, shared_channels):
  """Stack 0's entry conv and pool of `torso` on observations [B, N, H, W, C], plain or shared, as a tf.function."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from rlcv_tf.marl import networks  # pylint: disable=g-import-not-at-top
  entry, pool, _ = torso.stacks[0]

  def fn(observations):
    x, skip, _, _ = networks.torso_input(torso, observations, shared_channels, 'float32')
    return pool(x if skip else entry(x))

  return tf.function(fn)


def _child(intra, inter):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.threading.set_intra_op_parallelism_threads(intra)
  tf.config.threading.set_inter_op_parallelism_threads(inter)
  from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
  from rlcv_tf.marl import config as config_lib  # pylint: disable=g-import-not-at-top
  from rlcv_tf.marl import learner as learner_lib  # pylint: disable=g-import-not-at-top
  env = registry.make_env('mini_5v5', num_frames=FRAMES)     # the stand-in declares what GRF declares
  shared_channels = env.shared_channels
  env.close()
  rng = np.random.default_rng(0)
  batch = _batch(rng, shared_channels)
  rows = []
  for model in FLAGS.models:
    for xla in FLAGS.xla:
      cfg = config_lib.MarlConfig(model=model, batch_size=TRAIN_B, unroll_length=UNROLL, jit_compile=xla == 'on')
      row = dict(model=model, xla=xla, threads=f'{intra}/{inter}', tensorflow=tf.__version__)
      # Inference: N = 5.
      pair = [learner_lib.Learner(cfg, (INFER_N, H, W, C), NUM_ACTIONS, shared_channels=s)
              for s in ((), shared_channels)]
      pair[1].model.set_weights(pair[0].model.get_weights())
      probe = _smm_obs(rng, (16,), INFER_N, shared_channels)
      outs = [lrn.infer(probe) for lrn in pair]
      row['max_abs_diff_infer'] = max(float(np.max(np.abs(outs[0][k].numpy() - outs[1][k].numpy()))) for k in (1, 2))
      for b in FLAGS.infer_batches:
        obs = _smm_obs(rng, (int(b),), INFER_N, shared_channels)
        row[f'infer_{b}'] = _side_by_side([lambda l=l: [t.numpy() for t in l.infer(obs)] for l in pair],
                                          FLAGS.repeats, warmup=2)
      # Stack 0's entry conv and pool alone (B = 16, N = 5; never under XLA): what the sharing changes.
      obs = tf.constant(_smm_obs(rng, (16,), INFER_N, shared_channels))
      layer = [_first_layer(pair[0].model.torso, s) for s in ((), shared_channels)]
      row['first_layer_16'] = _side_by_side([lambda f=f: f(obs).numpy() for f in layer], FLAGS.repeats, warmup=2)
      # Training: N = 4, B = 4 unrolls of 33 steps.
      pair = [learner_lib.Learner(cfg, (TRAIN_N, H, W, C), NUM_ACTIONS, shared_channels=s)
              for s in ((), shared_channels)]
      pair[1].model.set_weights(pair[0].model.get_weights())
      logs = [lrn.train(batch) for lrn in pair]                 # the first update, same weights: same loss
      row['loss_diff_first_update'] = abs(logs[0]['loss/total'] - logs[1]['loss/total'])
      row['train'] = _side_by_side([lambda l=l: l.train(batch) for l in pair], FLAGS.train_repeats, warmup=1)
      row['load'] = os.getloadavg()[0]
      rows.append(row)
      print(f'[child {intra}/{inter}] {json.dumps(row)}', file=sys.stderr, flush=True)
  print('RESULT ' + json.dumps(rows), flush=True)


# ------------------------------------------------------------------------------------------------ parent
def _run_child(threads):
  args = [sys.executable, os.path.abspath(__file__), f'--child={threads}',
          f'--models={",".join(FLAGS.models)}', f'--xla={",".join(FLAGS.xla)}',
          f'--infer_batches={",".join(FLAGS.infer_batches)}', f'--repeats={FLAGS.repeats}',
          f'--train_repeats={FLAGS.train_repeats}']
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env=env)
  for line in proc.stdout.splitlines():
    if line.startswith('RESULT '):
      return json.loads(line[len('RESULT '):])
  raise RuntimeError(f'child {threads} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}')


def _ratio(pair):
  return pair[0] / pair[1]


def _geomean(values):
  return float(np.exp(np.mean(np.log(values))))


def _table(rows):
  batches = FLAGS.infer_batches
  head = ['threads', 'XLA', 'model']
  for b in batches:
    head += [f'infer B={b} plain ms', 'shared ms', 'speed-up']
  head += ['train plain s', 'shared s', 'speed-up']
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for r in rows:
    cells = [r['threads'], r['xla'], r['model']]
    for b in batches:
      p, s = r[f'infer_{b}']
      cells += [f'{1e3 * p:.1f}', f'{1e3 * s:.1f}', f'{p / s:.2f}x']
    p, s = r['train']
    cells += [f'{p:.2f}', f'{s:.2f}', f'{p / s:.2f}x']
    lines.append('| ' + ' | '.join(cells) + ' |')
  return lines


def _first_layer_table(rows):
  lines = ['| threads | model | first layer B=16 plain ms | shared ms | speed-up |', '|---|---|---|---|---|']
  for r in rows:
    if r['xla'] == FLAGS.xla[0]:
      p, s = r['first_layer_16']
      lines.append(f'| {r["threads"]} | {r["model"]} | {1e3 * p:.1f} | {1e3 * s:.1f} | {p / s:.2f}x |')
  return lines


def _summary(rows):
  """Geometric means over the rows: shared vs plain, XLA on vs off, each thread setting vs the last one."""
  keys = [f'infer_{b}' for b in FLAGS.infer_batches] + ['train']
  names = {k: k.replace('infer_', 'inference B=') for k in keys}
  lines = []
  for key in keys + ['first_layer_16']:
    ratios = [_ratio(r[key]) for r in rows]
    lines.append(f'* shared vs plain, {names.get(key, "first layer alone, B=16")}: {_geomean(ratios):.2f}x '
                 f'(geometric mean over {len(ratios)} settings; {min(ratios):.2f}x to {max(ratios):.2f}x)')
  if len(FLAGS.xla) == 2:
    for key in keys:
      ratios = [r_off[key][k] / r_on[key][k] for r_off in rows if r_off['xla'] == 'off' for r_on in rows
                if r_on['xla'] == 'on' and (r_on['threads'], r_on['model']) == (r_off['threads'], r_off['model'])
                for k in (0, 1)]
      lines.append(f'* XLA on vs off, {names[key]}: {_geomean(ratios):.2f}x ({min(ratios):.2f}x to '
                   f'{max(ratios):.2f}x; below 1: XLA is slower)')
  ref = FLAGS.threads[-1]
  for threads in FLAGS.threads[:-1]:
    for key in keys:
      ratios = [o[key][k] / t[key][k] for t in rows if t['threads'] == threads for o in rows
                if o['threads'] == ref and (o['xla'], o['model']) == (t['xla'], t['model']) for k in (0, 1)]
      lines.append(f'* threads {threads} vs {ref}, {names[key]}: {_geomean(ratios):.2f}x ({min(ratios):.2f}x to '
                   f'{max(ratios):.2f}x; below 1: slower than {ref})')
  return lines


def _fastest(rows):
  """The fastest (threads, XLA, plain/shared) per measurement and model."""
  lines = []
  for model in FLAGS.models:
    mine = [r for r in rows if r['model'] == model]
    for key, unit, scale in [(f'infer_{b}', 'ms', 1e3) for b in FLAGS.infer_batches] + [('train', 's', 1.0)]:
      options = sorted((r[key][k], r['threads'], r['xla'], name) for r in mine
                       for k, name in enumerate(('plain', 'shared')))
      best, runner = options[0], options[1]
      lines.append(f'* {model} {key.replace("infer_", "inference B=")}: fastest {best[3]}, threads {best[1]}, XLA '
                   f'{best[2]} ({scale * best[0]:.2f} {unit}); next {runner[3]}, threads {runner[1]}, XLA '
                   f'{runner[2]} ({scale * runner[0]:.2f} {unit})')
  return lines


def main(_):
  if FLAGS.child:
    intra, inter = (int(x) for x in FLAGS.child.split('/'))
    _child(intra, inter)
    return
  start = time.time()
  load = os.getloadavg()
  print(f'[bench] shared first conv: inference B={",".join(FLAGS.infer_batches)} x N={INFER_N}, training '
        f'{TRAIN_B} x {UNROLL + 1} x N={TRAIN_N}, {H}x{W}x{C}; models {",".join(FLAGS.models)}; threads '
        f'{",".join(FLAGS.threads)}; XLA {",".join(FLAGS.xla)}; load average {load[0]:.2f}', flush=True)
  rows = []
  for threads in FLAGS.threads:
    t0 = time.time()
    got = _run_child(threads)
    rows.extend(got)
    print(f'[bench] threads {threads}: {time.time() - t0:.0f} s', flush=True)
    for line in _table(got)[2:]:
      print(line, flush=True)
  table, layer, summary, fastest = _table(rows), _first_layer_table(rows), _summary(rows), _fastest(rows)
  diff_infer = max(r['max_abs_diff_infer'] for r in rows)
  diff_loss = max(r['loss_diff_first_update'] for r in rows)
  loads = [load[0]] + [r['load'] for r in rows] + [os.getloadavg()[0]]
  print('\n' + '\n'.join(table + [''] + layer + [''] + summary + [''] + fastest))
  print(f'max abs difference shared vs plain: logits/values {diff_infer:.2e}, first-update loss {diff_loss:.2e}; '
        f'load average {min(loads):.2f} to {max(loads):.2f}')
  if not FLAGS.out:
    return
  cpu = platform.machine()
  try:
    with open('/proc/cpuinfo') as f:
      cpu = next(l.split(':', 1)[1].strip() for l in f if l.startswith('model name'))
  except (OSError, StopIteration):
    pass
  text = [
      '# The shared first conv: measured',
      '',
      'Written by `benchmarks/marl_shared_conv.py` (its docstring says what is timed). Plain: stack 0\'s entry conv '
      'on all 16 channels of every agent. Shared: the response to the 12 team and ball planes computed once per '
      '(t, env) from agent 0, plus each agent\'s own `active`-plane term (`networks.shared_entry_conv`). Times are '
      'medians of alternating plain / shared calls; speed-up = plain time / shared time.',
      '',
      f'Machine: {cpu}, {os.cpu_count()} cores; TensorFlow {rows[0]["tensorflow"]}; '
      f'{time.strftime("%Y-%m-%d %H:%M", time.localtime(start))}, {(time.time() - start) / 60:.0f} minutes. '
      f'Load average {min(loads):.2f} to {max(loads):.2f} during the run (other processes share the cores: '
      'compare the plain and shared columns of a row, measured side by side, more than rows with each other).',
      f'Inference: B envs x N = {INFER_N} agents at {H}x{W}x{C}, {FLAGS.repeats} timed calls each. Training: one '
      f'update on {TRAIN_B} unrolls x {UNROLL + 1} steps x N = {TRAIN_N} agents, {FLAGS.train_repeats} timed '
      'updates each. XLA: the learner\'s `jit_compile` (inference function and gradient computation). Threads: '
      'TensorFlow intra-op / inter-op pool sizes.',
      '',
      *table,
      '',
      *layer,
      '',
      *summary,
      '',
      *fastest,
      '',
      f'Shared vs plain, same weights: max abs difference of logits and values {diff_infer:.2e}; of the first '
      f'update\'s loss {diff_loss:.2e}.',
      '',
  ]
  with open(FLAGS.out, 'w') as f:
    f.write('\n'.join(text))
  print(f'[bench] wrote {FLAGS.out}')


if __name__ == '__main__':
  app.run(main)
