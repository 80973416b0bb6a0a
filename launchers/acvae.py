r"""Chapter 6: attribute-conditioned faces: acVAE-GAN, conditional crVAE-GAN, cVAE-GAN, cVAE.

  python -m launchers.acvae                          # small acVAE-GAN on generated faces, 32x32, 8 attributes (CPU)
  python -m launchers.acvae --model=cvaegan          # the cVAE-GAN baseline on the same data
  python -m launchers.acvae --dataset=celeba --data_dir=~/data/celeba --scale=full64 --steps=205000   # thesis scale
  tensorboard --logdir=DIR

Writes checkpoints, TensorBoard events, sample sheets (DIR/samples: step_*.png, attribute_swap.png, attention.png),
the attribute classifier of the evaluation, eval.json (Table 6.3 / 6.1 analogues and the learning check) and a
SavedModel (DIR/saved_model: generate / sample / encode / decode / edit / attribute_names / attention). Re-running
with the same --logdir resumes; Ctrl-C saves first.
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')

from absl import app
from absl import flags

from launchers import common

DATASETS = ('synth_faces', 'celeba')
MODELS = ('acvaegan', 'crvaegan', 'cvaegan', 'cvae')
SCALES = ('tiny', 'small32', 'full64')

flags.DEFINE_string('dataset', 'synth_faces', f'Data: {", ".join(DATASETS)} (CelebA in its published layout under '
                    '--data_dir; synth_faces is the generated stand-in with 12 CelebA-named attributes).')
flags.DEFINE_string('data_dir', '', 'CelebA root: list_attr_celeba.txt, list_eval_partition.txt, img_align_celeba/.')
flags.DEFINE_string('model', 'acvaegan', f'Model: {", ".join(MODELS)}.')
flags.DEFINE_string('scale', '', f'{", ".join(SCALES)}; default small32 (synth_faces) or full64 (celeba).')
flags.DEFINE_string('attributes', '', 'Attributes to condition on: all, or comma-separated names (kept in the order '
                    'given); default the preset\'s (small32: the first 8 of synth_faces; full64: all 40 of CelebA).')
flags.DEFINE_integer('num_blocks', 0, 'Latent blocks / attention steps T; 0 = the preset (thesis 8; small32 4).')
flags.DEFINE_integer('steps', 1200, 'Optimizer steps (a resumed run continues up to this).')
flags.DEFINE_integer('batch_size', 0, 'Images per step; 0 = the preset (a multiple of 6 with --d_mix=thirds, of 4 '
                     'with quarters).')
flags.DEFINE_float('learning_rate', 0.0, 'Adam learning rate; 0 = the thesis value (3e-4 cVAE-GAN, 1e-3 others).')
flags.DEFINE_string('d_mix', '', 'D minibatch: thirds (the thesis: real, mismatched, generated) or quarters (the '
                    'authors\' code: real, mismatched, prior, reconstruction); default the preset\'s (thirds).')
flags.DEFINE_string('grow_from', '', 'Progressive growing (Sec. 6.4.3): the logdir of a finished run at resolution R; '
                    'this run grows its latest weights to 2R (new layers faded in) and trains on 2R images. Model, '
                    'attributes and loss weights come from that run.')
flags.DEFINE_integer('fade_steps', 0, 'With --grow_from: steps of the fade-in; 0 = the first half of --steps (the '
                     'thesis: 75 of 150 epochs). Fixed when the stage starts; a resume continues the same ramp.')
flags.DEFINE_string('classifier', '', 'An attribute_classifier.keras (with its .json) to evaluate with; default: '
                    'one is trained on the training split and saved in the logdir.')
flags.DEFINE_integer('classifier_images', 4000, 'Training images of the attribute classifier trained here (when '
                     'no --classifier is given).')
flags.DEFINE_integer('classifier_epochs', 5, 'Epochs of the attribute classifier trained here (best on val).')
flags.DEFINE_string('is_classifier', '', 'A .keras identity classifier for the inception score (CelebA: the thesis '
                    'used a CASIA VGG11, not available here).')
flags.DEFINE_integer('is_epochs', 0, 'synth_faces without --is_classifier: train an identity classifier (20 '
                     'identities) for this many epochs and report the IS; 0 = no IS.')
flags.DEFINE_integer('num_eval_images', 500, 'Held-out images for the evaluation.')
flags.DEFINE_bool('cache', False, 'Decode, crop and resize the training images once and keep them in memory (only when '
                  'the split fits in RAM).')
flags.DEFINE_integer('image_every', 250, 'Steps between sample sheets.')
flags.DEFINE_float('log_interval_s', 10.0, 'Seconds between progress lines.')
flags.DEFINE_float('checkpoint_interval_s', 600.0, 'Seconds between checkpoints (and one at the end).')
flags.DEFINE_integer('seed', -1, 'Random seed; -1 = the preset (196, the authors\').')
flags.DEFINE_string('logdir', '', 'Where everything goes; an existing run there is resumed. Default: '
                    'runs/acvae/<dataset>_<preset>.')

FLAGS = flags.FLAGS


class FlagError(ValueError):
  pass


def _celeba_header(data_dir: str):
  """CelebA's attribute names, read without TensorFlow: from an image cache's manifest (scripts/make_image_cache.py)
  when `data_dir` is one, else from list_attr_celeba.txt's second line."""
  import glob  # pylint: disable=g-import-not-at-top
  import json  # pylint: disable=g-import-not-at-top
  from rlcv_tf.datasets import celeba  # pylint: disable=g-import-not-at-top  (no TensorFlow)
  manifests = sorted(glob.glob(os.path.join(data_dir, '*.manifest.json')),
                     key=lambda p: not p.endswith('train.manifest.json'))
  if manifests:
    try:
      with open(manifests[0]) as f:
        manifest = json.load(f)
    except (OSError, ValueError) as e:
      raise FlagError(f'--data_dir={data_dir}: cannot read the image cache manifest {manifests[0]} ({e}); '
                      're-make the cache with scripts/make_image_cache.py') from None
    if manifest.get('dataset') != 'celeba':
      raise FlagError(f'--data_dir={data_dir} is an image cache of {manifest.get("dataset")!r}, not celeba; '
                      'point --data_dir at a CelebA folder or a cache made with --dataset=celeba')
    return tuple(manifest.get('attribute_names', ()))
  for sub in ('', 'Anno'):
    path = os.path.join(data_dir, sub, celeba.ATTR_FILE)
    if os.path.exists(path):
      with open(path) as f:
        f.readline()
        return tuple(f.readline().split())
  raise FlagError(f'--data_dir={data_dir}: no {celeba.ATTR_FILE} there (CelebA layout: {celeba.LAYOUT}) and no '
                  'image cache (scripts/make_image_cache.py)')


def _grow_base():
  """The stored config (dict) of the --grow_from run, checked against the flags given (no TensorFlow)."""
  import json  # pylint: disable=g-import-not-at-top
  base_dir = os.path.expanduser(FLAGS.grow_from)
  path = os.path.join(base_dir, 'config.json')
  if not os.path.exists(path) or not os.path.isdir(os.path.join(base_dir, 'checkpoints')):
    raise FlagError(f'--grow_from={FLAGS.grow_from}: no finished run there (expected config.json and checkpoints/ '
                    'written by launchers.acvae)')
  with open(path) as f:
    saved = json.load(f)
  model = saved.get('model', {})
  if model.get('model') not in MODELS:
    raise FlagError(f'--grow_from={FLAGS.grow_from}: holds a run of another launcher, not a Chapter 6 model')
  if FLAGS['model'].present and FLAGS.model != model['model']:
    raise FlagError(f'--grow_from={FLAGS.grow_from} holds a {model["model"]} run; --model={FLAGS.model} cannot grow '
                    f'it (drop --model, or grow a {FLAGS.model} run)')
  if FLAGS['dataset'].present and FLAGS.dataset != saved['run']['dataset']:
    raise FlagError(f'--grow_from={FLAGS.grow_from} was trained on {saved["run"]["dataset"]}, not '
                    f'--dataset={FLAGS.dataset}')
  if FLAGS.attributes:
    wanted = [a.strip() for a in FLAGS.attributes.split(',') if a.strip()]
    if FLAGS.attributes != 'all' and wanted != list(model['attribute_names']):
      raise FlagError(f'--attributes={FLAGS.attributes}: the --grow_from run conditions on '
                      f'{",".join(model["attribute_names"])}; drop --attributes to grow it')
  if FLAGS.scale:
    from rlcv_tf.acvae import presets  # pylint: disable=g-import-not-at-top
    want = presets.get_preset(f'{FLAGS.scale}_{model["model"]}').resolution if FLAGS.scale in SCALES else None
    if want != 2 * int(model['resolution']):
      raise FlagError(f'--scale={FLAGS.scale}: growing makes {2 * int(model["resolution"])}px from the '
                      f'{model["resolution"]}px run in --grow_from, not {want}px; drop --scale')
  if FLAGS.fade_steps < 0 or FLAGS.fade_steps > FLAGS.steps:
    raise FlagError(f'--fade_steps={FLAGS.fade_steps}: must be in [0, --steps={FLAGS.steps}] (0 = half of --steps)')
  return saved


def _run_config(dataset: str, data_dir: str):
  """The validated run_config.RunConfig of these flags; FlagError names the bad flag."""
  from rlcv_tf.acvae import run_config  # pylint: disable=g-import-not-at-top
  for flag in ('classifier', 'is_classifier'):
    if getattr(FLAGS, flag) and not os.path.exists(os.path.expanduser(getattr(FLAGS, flag))):
      raise FlagError(f'--{flag}={getattr(FLAGS, flag)}: no such file')
  run = run_config.RunConfig(dataset=dataset, data_dir=data_dir, steps=FLAGS.steps,
                             log_interval_s=FLAGS.log_interval_s, image_every=FLAGS.image_every,
                             checkpoint_interval_s=FLAGS.checkpoint_interval_s,
                             num_eval_images=FLAGS.num_eval_images, classifier=os.path.expanduser(FLAGS.classifier),
                             classifier_images=FLAGS.classifier_images, classifier_epochs=FLAGS.classifier_epochs,
                             is_classifier=os.path.expanduser(FLAGS.is_classifier), is_epochs=FLAGS.is_epochs,
                             cache=FLAGS.cache)
  try:
    return run.validate()
  except ValueError as e:
    field, _, problem = str(e).partition(': ')
    raise FlagError(f'--{field}={getattr(FLAGS, field, "?")}: {problem}') from None


def config_from_flags():
  """(AcVAEConfig, training.RunConfig) from the flags; FlagError names the bad flag and its valid values."""
  if FLAGS.dataset not in DATASETS:
    raise FlagError(f'--dataset={FLAGS.dataset}: unknown; valid values: {", ".join(DATASETS)}')
  if FLAGS.model not in MODELS:
    raise FlagError(f'--model={FLAGS.model}: unknown; valid values: {", ".join(MODELS)}')
  scale = FLAGS.scale or ('full64' if FLAGS.dataset == 'celeba' else 'small32')
  if scale not in SCALES:
    raise FlagError(f'--scale={scale}: unknown; valid values: {", ".join(SCALES)}')
  data_dir = os.path.expanduser(FLAGS.data_dir)
  if FLAGS.dataset == 'celeba':
    if not data_dir:
      raise FlagError('--dataset=celeba needs --data_dir=<the CelebA root with list_attr_celeba.txt, '
                      'list_eval_partition.txt and img_align_celeba/>')
    available = _celeba_header(data_dir)
  else:
    from rlcv_tf.datasets import synthetic  # pylint: disable=g-import-not-at-top
    available = tuple(synthetic.FACE_ATTRIBUTE_NAMES)
  from rlcv_tf.acvae import presets  # pylint: disable=g-import-not-at-top  (no TensorFlow)
  overrides = {'dataset': FLAGS.dataset}
  if FLAGS.attributes:
    from rlcv_tf.datasets import records  # pylint: disable=g-import-not-at-top
    wanted = 'all' if FLAGS.attributes == 'all' else [a.strip() for a in FLAGS.attributes.split(',') if a.strip()]
    try:
      from rlcv_tf.datasets import celeba  # pylint: disable=g-import-not-at-top
      names, _ = records.resolve_attributes(available, wanted, FLAGS.dataset, known=celeba.ATTRIBUTE_NAMES)
    except ValueError as e:
      raise FlagError(f'--attributes={FLAGS.attributes}: {str(e).partition(": ")[2] or e}') from None
    overrides.update(attribute_names=tuple(names), num_attributes=len(names))
  else:
    preset_names = presets.get_preset(f'{scale}_{FLAGS.model}').attribute_names
    if FLAGS.dataset == 'celeba' and scale != 'full64':
      preset_names = available[:len(preset_names)]
    missing = [n for n in preset_names if n not in available]
    if missing:
      raise FlagError(f'--dataset={FLAGS.dataset} has no attribute {missing[0]} (its header: '
                      f'{", ".join(available)}); pass --attributes=all or a list of its names')
    overrides.update(attribute_names=tuple(preset_names), num_attributes=len(preset_names))
  for flag, field in (('batch_size', 'batch_size'), ('learning_rate', 'learning_rate'),
                      ('num_blocks', 'num_blocks')):
    value = getattr(FLAGS, flag)
    if value < 0:
      raise FlagError(f'--{flag}={value}: must be > 0 (or 0 for the preset value)')
    if value:
      overrides[field] = value
  if FLAGS.d_mix:
    overrides['d_mix'] = FLAGS.d_mix
  if FLAGS.seed >= 0:
    overrides['seed'] = FLAGS.seed
  try:
    cfg = presets.get_preset(f'{scale}_{FLAGS.model}', **overrides)
  except ValueError as e:
    field, _, problem = str(e).partition(': ')
    flag = {'num_attributes': 'attributes', 'attribute_names': 'attributes'}.get(field, field)
    raise FlagError(f'--{flag}: {problem}' if flag in FLAGS else f'preset {scale}_{FLAGS.model}: {e}') from None
  if cfg.adversarial and cfg.batch_size % cfg.d_mix_period:
    raise FlagError(f'--batch_size={cfg.batch_size}: the D minibatch ({cfg.d_mix}) needs a multiple of '
                    f'{cfg.d_mix_period}; e.g. --batch_size={cfg.d_mix_period * max(1, cfg.batch_size // cfg.d_mix_period)}')
  run = _run_config(FLAGS.dataset, data_dir)
  return cfg, run


def grown_config_from_flags(runs):
  """(GrownConfig, RunConfig, logdir) of a progressive stage (--grow_from): the stored config when the logdir already
  holds this stage, else the --grow_from run's model grown to 2R with the fade length fixed now."""
  base = _grow_base()
  run = _run_config(base['run']['dataset'], os.path.expanduser(FLAGS.data_dir) or base['run']['data_dir'])
  from rlcv_tf.acvae import progressive  # pylint: disable=g-import-not-at-top  (loads Keras: after the cheap checks)
  base_cfg = progressive.config_from_dict(base['model'])
  resolution = 2 * base_cfg.resolution
  logdir = FLAGS.logdir or os.path.join(os.path.expanduser(FLAGS.grow_from), f'grown_{resolution}')
  stored = runs.load_config(logdir)
  if stored is not None and 'base_resolution' in stored.get('model', {}):
    return progressive.config_from_dict(stored['model']), run, logdir
  fade = dict(fade_steps=float(FLAGS.fade_steps)) if FLAGS.fade_steps else dict(total_steps=FLAGS.steps)
  return progressive.grow_config(base_cfg, name=f'{base_cfg.name}_grown{resolution}', **fade), run, logdir


def main(argv):
  common.start(argv)
  from rlcv_tf.core import runs  # pylint: disable=g-import-not-at-top  (no TensorFlow)
  try:
    if FLAGS.grow_from:
      cfg, run, logdir = grown_config_from_flags(runs)
    else:
      cfg, run = config_from_flags()
      logdir = FLAGS.logdir or os.path.join('runs', 'acvae', f'{run.dataset}_{cfg.name}')
  except FlagError as e:
    common.fail(str(e))
  from rlcv_tf.acvae import training  # pylint: disable=g-import-not-at-top
  from rlcv_tf.datasets import records  # pylint: disable=g-import-not-at-top
  try:
    training.check_resume(cfg, run, logdir)
  except runs.ResumeMismatchError as e:
    common.fail(str(e))
  print(f'[acvae] {cfg.name} ({cfg.model}, {cfg.resolution}x{cfg.resolution}, latent {cfg.latent_size}x'
        f'{cfg.latent_size}x{cfg.n_z} in {cfg.num_blocks} blocks, {cfg.num_attributes} attributes: '
        f'{", ".join(cfg.attribute_names)}) on {run.dataset}: {run.steps:,} steps of batch {cfg.batch_size}, D mix '
        f'{cfg.d_mix}, logdir {logdir}', flush=True)
  print('[acvae] thesis scale (Sec. 6.5): --dataset=celeba --data_dir=... --scale=full64 (40 attributes, T = 8, '
        'batch 120), 150 epochs, on a GPU; then --grow_from=<that logdir> for 128x128', flush=True)
  grow_from = os.path.expanduser(FLAGS.grow_from) if FLAGS.grow_from else None
  common.run_to_the_end(
      lambda: training.train(cfg, run, logdir, print_fn=lambda s: print(s, flush=True), grow_from=grow_from),
      (records.DatasetError, runs.ResumeMismatchError, FileNotFoundError))


if __name__ == '__main__':
  app.run(main)
