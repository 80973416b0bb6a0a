"""`python -m launchers.video_eval`: bad input (unknown task, a directory without a run, another launcher's run, a
run of the wrong kind or data set, per-fold pretraining that saw the test people) gives one `error:` line, exit 2 and
writes nothing; retrieval runs end to end on tiny runs and writes eval.json (numbers, chance levels, the thesis table)
and its PNGs. The slow tests train real tiny runs with `launchers.video` (and prepare stand-in shards), evaluate them,
and check the restored features against the run's own SavedModel."""

import dataclasses
import json
import os

import numpy as np
import pytest

from launcher_test_helpers import one_error_line, run_module  # pylint: disable=g-bad-import-order


def run_eval(*args, timeout=600):
  return run_module('launchers.video_eval', *args, timeout=timeout)


def config_only_run(path, dataset='mmnist', model='video', stage=2, **run_fields):
  """config.json + a checkpoint state file: enough for the flag checks, which run before TensorFlow loads."""
  from rlcv_tf.video import presets, run_config  # pylint: disable=g-import-not-at-top  (no TensorFlow)
  os.makedirs(os.path.join(path, 'checkpoints'), exist_ok=True)
  run = run_config.RunConfig(dataset=dataset, model=model, stage=stage, **run_fields)
  with open(os.path.join(path, 'config.json'), 'w') as f:
    json.dump({'model': presets.get_preset(dataset, 'tiny').to_dict(), 'run': dataclasses.asdict(run)}, f)
  with open(os.path.join(path, 'checkpoints', 'checkpoint'), 'w') as f:
    f.write('model_checkpoint_path: "ckpt-1"\n')
  return str(path)


@pytest.fixture(scope='module')
def fake_dirs(tmp_path_factory):
  root = tmp_path_factory.mktemp('eval_flags')
  other = root / 'other'
  other.mkdir()
  (other / 'config.json').write_text(json.dumps({'env': 'maze', 'steps': 10}))
  (root / 'empty').mkdir()
  return {'root': str(root), 'other': str(other), 'empty': str(root / 'empty'),
          's1': config_only_run(str(root / 's1'), stage=1), 's2': config_only_run(str(root / 's2')),
          'ae': config_only_run(str(root / 'ae'), model='autoencoder', stage=1),
          'wz': config_only_run(str(root / 'wz'), dataset='weizmann'),
          'rv': config_only_run(str(root / 'rv'), dataset='ravdess')}


CASES = [
    (['--task=bogus'], ['--task=bogus', 'unknown', 'probe, retrieval, attentive, finetune']),
    ([], ['--task', 'missing']),
    (['--task=probe'], ['--logdir is required']),
    (['--task=probe', '--logdir={empty}'], ['no run there', 'launchers.video']),
    (['--task=probe', '--logdir={root}/nowhere'], ['no run there']),
    (['--task=retrieval', '--logdir={other}'], ['another launcher']),
    (['--task=probe', '--logdir={s1}'], ['stage1 run', 'needs a stage2 run', '--stage=2 --stage1_logdir=']),
    (['--task=probe', '--logdir={wz}'], ['weizmann', 'needs a mmnist run']),
    (['--task=attentive', '--logdir={s2}'], ['mmnist', 'needs a weizmann run']),
    (['--task=finetune', '--logdir={wz}', '--cv_pretrain=shared'], ['needs a ravdess run']),
    (['--task=retrieval', '--logdir={s2}', '--classifier_logdir={ae}'], ['--classifier_logdir', 'autoencoder run',
                                                                           'needs a classifier run']),
    (['--task=finetune', '--logdir={rv}'], ['saw each fold\'s test people', '--pretrain_logdir_pattern',
                                            '--cv_pretrain=shared']),
    (['--task=finetune', '--pretrain_logdir_pattern={rv}'], ['no {{fold}}']),
    (['--task=finetune', '--logdir={rv}', '--cv_pretrain=shared', '--pretrain_logdir_pattern={root}/f{{fold}}'],
     ['drop --pretrain_logdir_pattern']),
    (['--task=finetune', '--cv_pretrain=everything'], ['--cv_pretrain=everything', 'per_fold, shared']),
    (['--task=finetune', '--init=random'], ['--data_dir', 'video_prepare']),
    (['--task=attentive', '--logdir={wz}', '--data_dir={root}/no_shards'], ['--data_dir=', 'not prepared',
                                                                             'video_prepare']),
    (['--task=probe', '--logdir={s2}', '--num_train=0'], ['--num_train=0', 'positive']),
    (['--task=retrieval', '--logdir={s2}', '--num_queries=1'], ['--num_queries=1', 'at least 2']),
    (['--task=probe', '--logdir={s2}', 'extra'], ['unexpected arguments']),
    (['--task=retrieval', '--logdir={wz}'], ['--data_dir', 'weizmann', 'video_prepare']),
    (['--task=retrieval', '--logdir={wz}', '--autoencoder_logdir={ae}'], ['--autoencoder_logdir', 'mmnist',
                                                                          'needs a weizmann run']),
]


@pytest.mark.parametrize('args,needles', CASES)
def test_bad_input_gives_one_error_line_and_writes_nothing(args, needles, fake_dirs):
  before = sorted(os.walk(fake_dirs['root']))
  line = one_error_line(run_eval(*(a.format(**fake_dirs) for a in args), timeout=60))
  for needle in needles:
    assert needle.format(**fake_dirs) in line, line
  assert sorted(os.walk(fake_dirs['root'])) == before


# ------------------------------------------------------------------------------------------------ end to end
def write_run(logdir, dataset='mmnist', kind='stage2', **run_fields):
  """A tiny untrained run saved as training.train saves it: config.json and a CheckpointManager checkpoint of the
  trainer's checkpoint_objects()."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from rlcv_tf.video import classifiers, models, presets, run_config, train_steps  # pylint: disable=g-import-not-at-top
  cfg = presets.get_preset(dataset, 'tiny')
  if kind == 'stage2':
    built = models.build_models(cfg)
    trainer = train_steps.Stage2Trainer(cfg, *(built[k] for k in ('frame_autoencoder', 'block_stn', 'video_encoder',
                                                                  'frame_dynamics', 'predictor')))
    run = run_config.RunConfig(dataset=dataset, model='video', stage=2, **run_fields)
  else:
    model = (classifiers.SupervisedVideoClassifier(cfg, 55) if kind == 'classifier'
             else classifiers.VideoAutoencoderBaseline(cfg))
    trainer = classifiers.BaselineTrainer(cfg, model, kind)
    run = run_config.RunConfig(dataset=dataset, model=kind, **run_fields)
  tf.train.CheckpointManager(tf.train.Checkpoint(**trainer.checkpoint_objects()),
                             os.path.join(logdir, 'checkpoints'), 3).save()
  with open(os.path.join(logdir, 'config.json'), 'w') as f:
    json.dump({'model': cfg.to_dict(), 'run': dataclasses.asdict(run)}, f)
  return logdir


def test_retrieval_writes_eval_json_with_chance_levels_the_thesis_table_and_pngs(tmp_path):
  dirs = {kind: write_run(str(tmp_path / kind), kind=kind) for kind in ('stage2', 'classifier', 'autoencoder')}
  proc = run_eval('--task=retrieval', f'--logdir={dirs["stage2"]}', f'--classifier_logdir={dirs["classifier"]}',
                  f'--autoencoder_logdir={dirs["autoencoder"]}', '--num_queries=6', '--num_database=12')
  assert proc.returncode == 0, proc.stdout + proc.stderr
  out = os.path.join(dirs['stage2'], 'eval_retrieval')
  record = json.load(open(os.path.join(out, 'eval.json')))
  assert record['task'] == 'retrieval' and record['chance']['swap_rate'] == 0.5
  assert record['thesis'] == {'P': 24.0, 'classifier': 61.0, 'autoencoder': 24.0}
  results = record['results']
  assert set(results['features']) == {'P', 'S', 'classifier', 'autoencoder'}
  assert (results['num_queries'], results['num_database']) == (6, 12)
  assert record['settings']['runs']['classifier'] == dirs['classifier']
  table = record['table_markdown']
  assert '| P |' in table and '| random |' in table and '| 61 |' in table and table in proc.stdout
  for name in ('retrieval_montage', 'controlled_swap'):
    assert os.path.getsize(os.path.join(out, f'{name}.png')) > 0
    assert record['images'][name] == os.path.join(out, f'{name}.png')


@pytest.mark.slow
def test_trained_runs_probe_and_features_match_their_saved_model(tmp_path):
  """launchers.video stage 1 -> stage 2 (tiny, 2 steps each), then the probe; the restored S and P equal the
  run's own SavedModel `encode`."""
  s1, s2 = str(tmp_path / 's1'), str(tmp_path / 's2')
  fast = ['--preset=tiny', '--steps=2', '--num_eval_clips=8', '--image_every=100']
  for args in ([f'--logdir={s1}'], ['--stage=2', f'--stage1_logdir={s1}', f'--logdir={s2}']):
    proc = run_module('launchers.video', *fast, *args, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
  out = str(tmp_path / 'probe_out')
  proc = run_eval('--task=probe', f'--logdir={s2}', '--num_train=16', '--num_test=8', f'--out={out}')
  assert proc.returncode == 0, proc.stdout + proc.stderr
  record = json.load(open(os.path.join(out, 'eval.json')))
  assert record['chance'] == {'accuracy': pytest.approx(1 / 55)}
  assert (record['results']['num_train'], record['results']['num_test']) == (16, 8)
  assert '69.1 %' in record['table_markdown'] and '63.0 %' in record['table_markdown']
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from rlcv_tf.video import protocols  # pylint: disable=g-import-not-at-top
  run = protocols.load_run(s2)
  video = np.random.default_rng(0).uniform(size=(3,) + run.cfg.video_shape).astype(np.float32)
  saved_model = tf.saved_model.load(os.path.join(s2, 'saved_model'))  # keep it: its functions own the variables
  exported = saved_model.encode(tf.constant(video))
  np.testing.assert_allclose(run.statics(video), exported['statics'].numpy().reshape(3, -1), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(run.dynamics(video), exported['dynamics'].numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_weizmann_attentive_and_ravdess_finetune_on_stand_ins(tmp_path):
  """Stand-in shards, tiny stage-2 runs written as training.train writes them, the two shard tasks end to end,
  and per-fold runs that saw their test people refused."""
  from rlcv_tf.datasets import video_shards, video_standins  # pylint: disable=g-import-not-at-top
  from rlcv_tf.video import protocols  # pylint: disable=g-import-not-at-top
  video_standins.write_weizmann(str(tmp_path / 'wz_raw'), num_actors=2, num_frames=16, actions=('walk', 'jack'),
                                extra_take=False)
  video_shards.prepare('weizmann', str(tmp_path / 'wz_raw'), str(tmp_path / 'wz'), num_workers=0)
  video_standins.write_ravdess(str(tmp_path / 'rv_raw'), num_actors=2, num_frames=24, size=(180, 320))
  video_shards.prepare('ravdess', str(tmp_path / 'rv_raw'), str(tmp_path / 'rv'), num_workers=0)
  write_run(str(tmp_path / 'wz_s2'), 'weizmann', 'stage2', data_dir=str(tmp_path / 'wz'))
  proc = run_eval('--task=attentive', f'--logdir={tmp_path / "wz_s2"}', '--epochs=2')
  assert proc.returncode == 0, proc.stdout + proc.stderr
  record = json.load(open(tmp_path / 'wz_s2' / 'eval_attentive' / 'eval.json'))
  assert record['results']['num_folds'] == 2 and '96 %' in record['table_markdown']
  proc = run_eval('--task=retrieval', f'--logdir={tmp_path / "wz_s2"}')          # Table 7.1's Weizmann row
  assert proc.returncode == 0, proc.stdout + proc.stderr
  record = json.load(open(tmp_path / 'wz_s2' / 'eval_retrieval' / 'eval.json'))
  assert record['results']['dataset'] == 'weizmann' and 'mask keypoints' in record['table_markdown']
  assert set(record['chance']) == {'label_agreement', 'same_actor'}
  assert os.path.exists(tmp_path / 'wz_s2' / 'eval_retrieval' / 'retrieval_montage.png')
  plan = protocols.fold_plan(str(tmp_path / 'rv'), 2)
  for i, fold in enumerate(plan):  # each fold's run excludes the *other* fold's people: refused
    write_run(str(tmp_path / f'rv_f{i}'), 'ravdess', 'stage2', data_dir=str(tmp_path / 'rv'),
              exclude_actors=','.join(plan[1 - i]['test_people']))
  pattern = str(tmp_path / 'rv_f{fold}')
  line = one_error_line(run_eval('--task=finetune', f'--pretrain_logdir_pattern={pattern}', '--num_folds=2'))
  assert f'--exclude_actors={",".join(plan[0]["test_people"])}' in line and 'fold 0' in line
  proc = run_eval('--task=finetune', f'--logdir={tmp_path / "rv_f0"}', '--cv_pretrain=shared', '--num_folds=2',
                  '--epochs=1', '--windows_per_video=1')
  assert proc.returncode == 0, proc.stdout + proc.stderr
  record = json.load(open(tmp_path / 'rv_f0' / 'eval_finetune_shared' / 'eval.json'))
  assert record['results']['transductive'] and '(transductive)' in record['table_markdown']
  assert record['chance'] == {'accuracy': pytest.approx(1 / 8)}
