r"""Chapter 7 evaluation of trained runs (python -m launchers.video): probes, retrieval, Tables 7.1-7.3.

  python -m launchers.video_eval --task=probe --logdir=STAGE2                    # 7.4.4: S probe vs s_t votes
  python -m launchers.video_eval --task=retrieval --logdir=STAGE2 \
      --classifier_logdir=CLS --autoencoder_logdir=AE                            # Table 7.1 + the controlled swap
  python -m launchers.video_eval --task=retrieval --logdir=WEIZMANN_OR_RAVDESS_STAGE2 \
      --classifier_logdir=CLS --autoencoder_logdir=AE                            # Table 7.1's other rows
  python -m launchers.video_eval --task=attentive --logdir=WEIZMANN_STAGE2       # Table 7.2, leave one actor out
  python -m launchers.video_eval --task=finetune --pretrain_logdir_pattern=runs/ravdess_fold{fold}_stage2
  python -m launchers.video_eval --task=finetune --logdir=RAVDESS_STAGE2 --cv_pretrain=shared   # transductive
  python -m launchers.video_eval --task=finetune --init=random --data_dir=RAVDESS_SHARDS        # supervised 3DCNN

probe needs a Moving MNIST stage-2 run, retrieval a stage-2 run of any of the three (Weizmann / RAVDESS: every
prepared video, leave one out, scored on the keypoints the shards store), attentive a Weizmann one, finetune RAVDESS
ones. For finetune the
default (--cv_pretrain=per_fold) wants one stage-2 run per fold, each trained (stages 1 and 2) with
--exclude_actors=<that fold's test people>; a run that saw them is refused with the flag to use. Writes
<out>/eval.json (the numbers, the settings, chance levels and a markdown table beside the thesis) and PNGs (default
out: <logdir>/eval_<task>). See rlcv_tf/video/protocols.py for the protocols.
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags  # pylint: disable=g-import-not-at-top

from launchers import common  # pylint: disable=g-import-not-at-top

TASKS = ('probe', 'retrieval', 'attentive', 'finetune')
INITS = ('pretrained', 'random')

flags.DEFINE_string('task', '', f'One of {", ".join(TASKS)}.')
flags.DEFINE_string('logdir', '', 'The stage-2 run (python -m launchers.video --stage=2): MMNIST for probe, any '
                    'data set for retrieval, Weizmann for attentive, RAVDESS for finetune (with --cv_pretrain=shared).')
flags.DEFINE_string('classifier_logdir', '', 'retrieval: a --model=classifier run on the --logdir run\'s data '
                    '(Table 7.1 baseline).')
flags.DEFINE_string('autoencoder_logdir', '', 'retrieval: a --model=autoencoder run on the --logdir run\'s data '
                    '(Table 7.1 baseline).')
flags.DEFINE_string('out', '', 'Output folder; default <logdir>/eval_<task> (finetune without --logdir: '
                    'runs/video/eval_finetune_<init>).')
flags.DEFINE_integer('num_train', 2000, 'probe: training clips (train split).')
flags.DEFINE_integer('num_test', 2000, 'probe: test clips, the first of the thesis\'s 10,000-clip test set.')
flags.DEFINE_integer('num_queries', 500, 'MMNIST retrieval: query clips (val split).')
flags.DEFINE_integer('num_database', 2000, 'MMNIST retrieval: database clips (the test set).')
flags.DEFINE_integer('epochs', None, 'attentive: epochs of the attention head (default 100); finetune: epochs of '
                     'fine-tuning (default 10; the thesis: up to 200).')
flags.DEFINE_string('cv_pretrain', 'per_fold', 'finetune: per_fold (fold i uses the run of '
                    '--pretrain_logdir_pattern trained without its test people) or shared (one --logdir for every '
                    'fold: transductive, and marked so).')
flags.DEFINE_string('pretrain_logdir_pattern', '', 'finetune: the per-fold stage-2 runs, with {fold} for 0..4.')
flags.DEFINE_string('init', 'pretrained', 'finetune: pretrained (the stage-2 runs; their --ablation decides S-only '
                    'or S + P) or random (the supervised 3DCNN; needs --data_dir).')
flags.DEFINE_string('data_dir', '', 'attentive / finetune / Weizmann or RAVDESS retrieval: the prepared shards; '
                    'default the run\'s --data_dir.')
flags.DEFINE_string('preset', 'small', 'finetune --init=random: the model preset (paper, small, tiny).')
flags.DEFINE_integer('num_folds', 5, 'finetune: identity folds.')
flags.DEFINE_integer('windows_per_video', None, 'attentive / finetune: evaluated 8-frame windows per video, evenly '
                     'spaced (1 = centred); default 1 (attentive), 3 (finetune).')
flags.DEFINE_integer('batch_size', None, 'Clips per batch of feature extraction (default 32) and of fine-tuning '
                     '(default the config\'s).')
flags.DEFINE_integer('seed', 0, 'Seed of the probe\'s training clips, the swap donors, random retrieval, head '
                     'initialisation and fine-tuning.')

FLAGS = flags.FLAGS


class FlagError(ValueError):
  pass


def _path(value: str) -> str:
  return os.path.expanduser(value) if value else ''


def _positive(*names) -> None:
  for name in names:
    value = getattr(FLAGS, name)
    if value is not None and value < 1:
      raise FlagError(f'--{name}={value}: must be a positive integer')


def _run(protocols, flag: str, kinds, dataset: str, purpose: str):
  value = _path(getattr(FLAGS, flag))
  if not value:
    raise FlagError(f'--{flag} is required for --task={FLAGS.task}: {purpose}')
  return protocols.check_run(protocols.read_run(value, f'--{flag}'), kinds, dataset, f'--{flag}', purpose)


def _shards(protocols, dataset: str, run_data_dir: str) -> str:
  from rlcv_tf.datasets import video_shards  # pylint: disable=g-import-not-at-top  (no TensorFlow)
  data_dir = _path(FLAGS.data_dir) or run_data_dir
  if not data_dir:
    raise FlagError(f'--data_dir: give the prepared {dataset} shards (python -m launchers.video_prepare '
                    f'--dataset={dataset} --data_dir=<videos> --out=<shards>)')
  try:
    video_shards.check_prepared(data_dir, dataset)
  except video_shards.NotPreparedError as e:
    raise FlagError(f'--data_dir={data_dir}: {e}') from None
  del protocols
  return data_dir


def plan():
  """Checks the flags and the runs' config files (no TensorFlow); returns the task's settings dict."""
  from rlcv_tf.video import protocols  # pylint: disable=g-import-not-at-top  (no TensorFlow at import)
  task = FLAGS.task
  if task not in TASKS:
    raise FlagError(f'--task={task}: {"unknown" if task else "missing"}; valid values: {", ".join(TASKS)}')
  _positive('num_train', 'num_test', 'num_queries', 'num_database', 'epochs', 'num_folds', 'windows_per_video',
            'batch_size')
  settings = {'task': task, 'seed': FLAGS.seed}
  if task in ('probe', 'retrieval'):
    purpose = ('the probe uses S of an MMNIST stage-2 run' if task == 'probe' else
               'Table 7.1 retrieves with P / S of a stage-2 run')
    # Table 7.1 has a row per data set: retrieval takes the run's.
    info = _run(protocols, 'logdir', ('stage2',), 'mmnist' if task == 'probe' else None, purpose)
    dataset = info.run.dataset
    settings['runs'] = {'P': info.logdir, 'S': info.logdir}
    if task == 'probe':
      settings.update(num_train=FLAGS.num_train, num_test=FLAGS.num_test)
    else:
      if dataset == 'mmnist' and FLAGS.num_queries < 2:
        raise FlagError(f'--num_queries={FLAGS.num_queries}: the controlled swap needs at least 2 queries')
      for flag, kind in (('classifier_logdir', 'classifier'), ('autoencoder_logdir', 'autoencoder')):
        if getattr(FLAGS, flag):
          settings['runs'][kind] = _run(protocols, flag, (kind,), dataset, f'the Table 7.1 {kind} baseline').logdir
      settings['dataset'] = dataset
      if dataset == 'mmnist':
        settings.update(num_queries=FLAGS.num_queries, num_database=FLAGS.num_database)
      else:   # every prepared video, leave one out
        settings['data_dir'] = _shards(protocols, dataset, info.run.data_dir)
    out = os.path.join(info.logdir, f'eval_{task}')
  elif task == 'attentive':
    info = _run(protocols, 'logdir', ('stage2',), 'weizmann', 'Table 7.2 reads S and P of a Weizmann stage-2 run')
    settings.update(run=info.logdir, data_dir=_shards(protocols, 'weizmann', info.run.data_dir),
                    epochs=FLAGS.epochs or protocols.ATTENTIVE_EPOCHS, windows_per_video=FLAGS.windows_per_video or 1)
    out = os.path.join(info.logdir, 'eval_attentive')
  else:
    out = _plan_finetune(protocols, settings)
  settings['out'] = _path(FLAGS.out) or out
  settings['batch_size'] = FLAGS.batch_size
  return settings


def _plan_finetune(protocols, settings) -> str:
  if FLAGS.init not in INITS:
    raise FlagError(f'--init={FLAGS.init}: valid values: {", ".join(INITS)}')
  if FLAGS.cv_pretrain not in protocols.CV_PRETRAIN:
    raise FlagError(f'--cv_pretrain={FLAGS.cv_pretrain}: valid values: {", ".join(protocols.CV_PRETRAIN)}')
  settings.update(init=FLAGS.init, epochs=FLAGS.epochs or 10, num_folds=FLAGS.num_folds,
                  windows_per_video=FLAGS.windows_per_video or 3, cv_pretrain=FLAGS.cv_pretrain)
  purpose = 'Table 7.3 fine-tunes the Enc_v of a RAVDESS stage-2 run'
  if FLAGS.init == 'random':
    if FLAGS.logdir or FLAGS.pretrain_logdir_pattern:
      raise FlagError('--init=random trains from scratch; drop --logdir / --pretrain_logdir_pattern (or use '
                      '--init=pretrained)')
    if FLAGS.preset not in ('paper', 'small', 'tiny'):
      raise FlagError(f'--preset={FLAGS.preset}: valid values: paper, small, tiny')
    settings.update(data_dir=_shards(protocols, 'ravdess', ''), preset=FLAGS.preset, runs=[])
    return os.path.join('runs', 'video', 'eval_finetune_random')
  if FLAGS.cv_pretrain == 'shared':
    if FLAGS.pretrain_logdir_pattern:
      raise FlagError('--cv_pretrain=shared uses one run for every fold (--logdir); drop --pretrain_logdir_pattern or '
                      'use --cv_pretrain=per_fold')
    info = _run(protocols, 'logdir', ('stage2',), 'ravdess', purpose)
    settings.update(runs=[info.logdir], data_dir=_shards(protocols, 'ravdess', info.run.data_dir))
    return os.path.join(info.logdir, 'eval_finetune_shared')
  if not FLAGS.pretrain_logdir_pattern:
    if FLAGS.logdir:
      _run(protocols, 'logdir', ('stage2',), 'ravdess', purpose)
      raise FlagError(f'--logdir={FLAGS.logdir}: one pretrained run for every fold saw each fold\'s test people; '
                      'pass --pretrain_logdir_pattern=DIR{fold} (runs trained with --exclude_actors=<the fold\'s '
                      'people>), or --cv_pretrain=shared to accept it (marked transductive)')
    raise FlagError('--pretrain_logdir_pattern is required for --task=finetune (per-fold stage-2 runs, {fold} = '
                    '0..num_folds-1), or pass --logdir with --cv_pretrain=shared, or --init=random')
  try:
    dirs = protocols.fold_logdirs(_path(FLAGS.pretrain_logdir_pattern), FLAGS.num_folds)
  except ValueError as e:
    raise FlagError(f'--{e}') from None
  infos = [protocols.check_run(protocols.read_run(d, '--pretrain_logdir_pattern'), ('stage2',), 'ravdess',
                               '--pretrain_logdir_pattern', purpose) for d in dirs]
  data_dir = _shards(protocols, 'ravdess', infos[0].run.data_dir)
  try:
    folds = protocols.fold_plan(data_dir, FLAGS.num_folds, FLAGS.seed, 'ravdess', infos[0].cfg.num_frames)
  except ValueError as e:
    raise FlagError(f'--num_folds={FLAGS.num_folds}: {e}') from None
  for i, (info, fold) in enumerate(zip(infos, folds)):
    protocols.check_pretraining(info, fold['test_people'], i, '--pretrain_logdir_pattern')
  settings.update(runs=dirs, data_dir=data_dir)
  return os.path.join(os.path.dirname(dirs[0]) or '.', 'eval_finetune_per_fold')


def evaluate(settings, print_fn=print):
  """Loads the runs, runs the task, writes eval.json and the PNGs; returns the eval.json dict."""
  import json  # pylint: disable=g-import-not-at-top
  from rlcv_tf.video import presets  # pylint: disable=g-import-not-at-top
  from rlcv_tf.video import protocols  # pylint: disable=g-import-not-at-top
  from rlcv_tf.video import viz  # pylint: disable=g-import-not-at-top
  task, seed = settings['task'], settings['seed']
  batch = settings['batch_size'] or 32
  if task in ('probe', 'retrieval'):
    dataset = settings.get('dataset', 'mmnist')
    s2 = protocols.load_run(settings['runs']['P'], ('stage2',), dataset)
    if task == 'probe':
      result = protocols.probe(s2, settings['num_train'], settings['num_test'], seed, batch)
    else:
      runs = {'P': s2, 'S': s2}
      for kind, flag in (('classifier', '--classifier_logdir'), ('autoencoder', '--autoencoder_logdir')):
        if kind in settings['runs']:
          runs[kind] = protocols.load_run(settings['runs'][kind], (kind,), dataset, flag)
      if dataset == 'mmnist':
        result = protocols.retrieval(runs, settings['num_queries'], settings['num_database'], seed, batch)
      else:
        result = protocols.shard_retrieval(runs, settings['data_dir'], seed, batch)
  elif task == 'attentive':
    run = protocols.load_run(settings['run'], ('stage2',), 'weizmann')
    result = protocols.attentive(run, settings['data_dir'], settings['windows_per_video'], settings['epochs'],
                                 seed=seed, feature_batch_size=batch)
  else:
    flag = '--pretrain_logdir_pattern' if settings['cv_pretrain'] == 'per_fold' else '--logdir'
    runs = [protocols.load_run(d, ('stage2',), 'ravdess', flag) for d in settings['runs']]
    cfg = presets.get_preset('ravdess', settings['preset']) if settings['init'] == 'random' else None
    result = protocols.finetune(settings['data_dir'], runs or None, cfg, settings['cv_pretrain'],
                                settings['num_folds'], seed, settings['epochs'], settings['batch_size'],
                                windows_per_video=settings['windows_per_video'], seed=seed, print_fn=print_fn)
  out = settings['out']
  os.makedirs(out, exist_ok=True)
  images = {name: viz.save(image, os.path.join(out, f'{name}.png'), scale=2) for name, image in result.images.items()}
  table = protocols.markdown_table(result.report)
  record = protocols.json_ready({'task': task, 'settings': settings, 'results': result.report,
                                 'chance': _chance(result.report), 'thesis': protocols.THESIS[task],
                                 'table_markdown': table, 'images': images})
  path = os.path.join(out, 'eval.json')
  with open(path, 'w') as f:
    json.dump(record, f, indent=1, sort_keys=True)
  print_fn(table)
  print_fn(f'[video_eval] {task}: wrote {path}' + (f' and {len(images)} PNG(s)' if images else ''))
  return record


def _chance(report):
  if report['task'] == 'retrieval':
    return report['chance']
  return {'accuracy': report['chance']}


def main(argv):
  common.start(argv)
  from rlcv_tf.video import protocols  # pylint: disable=g-import-not-at-top  (no TensorFlow at import)
  try:
    settings = plan()
  except (FlagError, protocols.RunError) as e:
    common.fail(str(e))
  print(f'[video_eval] {settings["task"]} -> {settings["out"]}', flush=True)
  from rlcv_tf.datasets import records  # pylint: disable=g-import-not-at-top
  try:
    evaluate(settings, print_fn=lambda s: print(s, flush=True))
  except (protocols.RunError, records.DatasetError) as e:
    common.fail(str(e))


if __name__ == '__main__':
  app.run(main)
