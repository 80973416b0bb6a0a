"""Chapter 7 evaluation protocols on runs (rlcv_tf/video/protocols.py): loading a run's checkpoint, the features,
the MMNIST probe and retrieval with the controlled swap, the Weizmann attentive classifier, the RAVDESS fine-tuning.

Runs here are written the way `training.train` writes them (config.json + a CheckpointManager checkpoint of the
trainer's `checkpoint_objects()`), from untrained but perturbed models, so a restore that silently kept the fresh
initialisation fails. References: direct model calls, NumPy block means, features that encode the answer by
construction (labels, trajectories, digits) and pure noise.
"""

import dataclasses
import json
import os
import shutil

import numpy as np
import pytest

from rlcv_tf.video import protocols

N_TRAIN_PROBE = 600   # covers all 55 digit pairs with probability > 0.97


# ------------------------------------------------------------------------------------------------ helpers
def write_run(logdir, dataset='mmnist', kind='stage2', seed=0, **run_fields):
  """A run as training.train leaves it (perturbed untrained weights); returns {name: model}."""
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from rlcv_tf.video import classifiers, models, presets, run_config, train_steps  # pylint: disable=g-import-not-at-top
  cfg = presets.get_preset(dataset, 'tiny')
  model, stage = (kind, 1) if kind in ('classifier', 'autoencoder') else ('video', int(kind[-1]))
  run = run_config.RunConfig(dataset=dataset, model=model, stage=stage, **run_fields)
  keras.utils.set_random_seed(seed)
  if model == 'video':
    built = models.build_models(cfg)
    if stage == 1:
      trainer = train_steps.Stage1Trainer(cfg, built['frame_autoencoder'], built['block_stn'])
    else:
      trainer = train_steps.Stage2Trainer(cfg, *(built[k] for k in ('frame_autoencoder', 'block_stn',
                                                                    'video_encoder', 'frame_dynamics',
                                                                    'predictor')), ablation=run.ablation)
  else:
    net = (classifiers.SupervisedVideoClassifier(cfg, 55) if kind == 'classifier'
           else classifiers.VideoAutoencoderBaseline(cfg))
    trainer = classifiers.BaselineTrainer(cfg, net, kind)
  objects = trainer.checkpoint_objects()
  nets = {k: v for k, v in objects.items() if isinstance(v, keras.Model)}
  rng = np.random.default_rng(seed + 100)
  for net in nets.values():
    for v in net.variables:
      value = np.asarray(v.numpy())
      if not np.issubdtype(value.dtype, np.floating):
        continue
      value = value + 0.05 * rng.normal(size=value.shape).astype(value.dtype)
      v.assign(np.abs(value) if 'variance' in v.path else value)
  os.makedirs(logdir, exist_ok=True)
  tf.train.CheckpointManager(tf.train.Checkpoint(**objects), os.path.join(logdir, 'checkpoints'), 3).save()
  with open(os.path.join(logdir, 'config.json'), 'w') as f:
    json.dump({'model': cfg.to_dict(), 'run': dataclasses.asdict(run)}, f)
  return nets


def _weights(model):
  """Float variables (weights, BN statistics); Keras's integer seed-generator states are not model state."""
  values = [np.asarray(v.numpy()) for v in model.variables]
  return [v for v in values if np.issubdtype(v.dtype, np.floating)]


@pytest.fixture(scope='module')
def mmnist_runs(tmp_path_factory):
  root = tmp_path_factory.mktemp('mmnist_runs')
  saved = {}
  saved['stage1'] = write_run(str(root / 's1'), kind='stage1', seed=1)
  saved['stage2'] = write_run(str(root / 's2'), kind='stage2', seed=2, stage1_logdir=str(root / 's1'))
  saved['classifier'] = write_run(str(root / 'cls'), kind='classifier', seed=3)
  saved['autoencoder'] = write_run(str(root / 'ae'), kind='autoencoder', seed=4)
  dirs = {'stage1': root / 's1', 'stage2': root / 's2', 'classifier': root / 'cls', 'autoencoder': root / 'ae'}
  return {k: str(v) for k, v in dirs.items()}, saved


@pytest.fixture(scope='module')
def loaded(mmnist_runs):
  dirs, _ = mmnist_runs
  return {kind: protocols.load_run(d) for kind, d in dirs.items()}


# ------------------------------------------------------------------------------------------------ runs
def test_read_run_refuses_empty_foreign_and_unfinished_dirs(tmp_path):
  with pytest.raises(protocols.RunError, match='no run there'):
    protocols.read_run(str(tmp_path))
  other = tmp_path / 'other'
  other.mkdir()
  (other / 'config.json').write_text(json.dumps({'env': 'maze', 'lr': 1e-3}))
  with pytest.raises(protocols.RunError, match='another launcher') as e:
    protocols.read_run(str(other))
  assert '\n' not in str(e.value)
  unfinished = tmp_path / 'unfinished'
  unfinished.mkdir()
  from rlcv_tf.video import presets, run_config  # pylint: disable=g-import-not-at-top
  (unfinished / 'config.json').write_text(json.dumps({'model': presets.get_preset('mmnist', 'tiny').to_dict(),
                                                      'run': dataclasses.asdict(run_config.RunConfig())}))
  with pytest.raises(protocols.RunError, match='no checkpoint yet'):
    protocols.read_run(str(unfinished))


def test_load_run_restores_every_saved_weight(mmnist_runs, loaded):
  from rlcv_tf.video import models  # pylint: disable=g-import-not-at-top
  dirs, saved = mmnist_runs
  for kind, nets in saved.items():
    run = loaded[kind]
    assert run.kind == kind and run.logdir == dirs[kind]
    for name, net in nets.items():
      got = _weights(run.models[name])
      assert len(got) == len(_weights(net)) > 0
      for a, b in zip(got, _weights(net)):
        np.testing.assert_array_equal(a, b)
  fresh = models.build_models(loaded['stage2'].cfg)['video_encoder']
  assert any(not np.array_equal(a, b) for a, b in zip(_weights(fresh), _weights(loaded['stage2'].video_encoder)))
  assert loaded['classifier'].baseline.num_classes == 55


def test_load_run_refuses_the_wrong_kind_or_data_set(mmnist_runs):
  dirs, _ = mmnist_runs
  with pytest.raises(protocols.RunError, match='needs a stage2 run.*--stage=2 --stage1_logdir='):
    protocols.load_run(dirs['stage1'], ('stage2',), 'mmnist')
  with pytest.raises(protocols.RunError, match='needs a weizmann run'):
    protocols.load_run(dirs['stage2'], ('stage2',), 'weizmann')
  with pytest.raises(protocols.RunError, match='needs a classifier run'):
    protocols.load_run(dirs['autoencoder'], ('classifier',), flag='--classifier_logdir')


def test_load_run_refuses_a_checkpoint_of_another_architecture(mmnist_runs, tmp_path):
  dirs, _ = mmnist_runs
  swapped = tmp_path / 'swapped'
  shutil.copytree(os.path.join(dirs['stage1'], 'checkpoints'), str(swapped / 'checkpoints'))
  config = json.load(open(os.path.join(dirs['stage2'], 'config.json')))
  (swapped / 'config.json').write_text(json.dumps(config))  # a stage-2 config over a stage-1 checkpoint
  with pytest.raises(protocols.RunError, match='does not hold every weight'):
    protocols.load_run(str(swapped))


def test_features_equal_direct_model_calls_and_the_reader_scaling(loaded):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  s2 = loaded['stage2']
  c = s2.cfg
  rng = np.random.default_rng(0)
  video = rng.uniform(size=(5,) + c.video_shape).astype(np.float32)
  statics, dynamics = s2.video_encoder(tf.constant(video), training=False)
  np.testing.assert_allclose(s2.statics(video, batch_size=2), statics.numpy().reshape(5, -1), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(s2.dynamics(video, batch_size=3), dynamics.numpy(), rtol=1e-5, atol=1e-5)
  codes = np.stack([s2.frame_autoencoder.encode(tf.constant(v), training=False).numpy().reshape(c.num_frames, -1)
                    for v in video])
  np.testing.assert_allclose(s2.frame_codes(video, batch_size=4), codes, rtol=1e-5, atol=1e-5)
  feats = loaded['classifier'].baseline.features(tf.constant(video), training=False).numpy()
  np.testing.assert_allclose(loaded['classifier'].features('classifier', video, 2), feats, rtol=1e-5, atol=1e-5)
  # uint8 frames of twice the size: scaled to [0, 1], then 2x2 block means (area resize by an integer factor).
  big = rng.integers(0, 256, size=(2, c.num_frames, 2 * c.image_size, 2 * c.image_size, 1), dtype=np.uint8)
  blocks = (big.astype(np.float64) / 255.0).reshape(2, c.num_frames, c.image_size, 2, c.image_size, 2, 1)
  np.testing.assert_allclose(s2.prepare(big), blocks.mean(axis=(3, 5)), atol=1e-6)
  with pytest.raises(protocols.RunError, match='feature P needs a stage2 run'):
    loaded['classifier'].extractor('P')


# ------------------------------------------------------------------------------------------------ probe
def _digit_counts(clips):
  out = np.zeros((len(clips['digits']), 10))
  for i, (a, b) in enumerate(clips['digits']):
    out[i, a] += 1
    out[i, b] += 1
  return out


@pytest.fixture(scope='module')
def probe_clips(loaded):
  info = loaded['stage2'].info
  return (protocols.mmnist_clips(info, 'train', N_TRAIN_PROBE, protocols.PROBE_TRAIN_SEED),
          protocols.mmnist_clips(info, 'test', 200, 0))


def test_probe_is_perfect_on_a_feature_that_holds_the_digits_and_chance_on_noise(probe_clips):
  train, test = probe_clips
  rng = np.random.default_rng(0)
  digits = lambda clips: _digit_counts(clips) + 0.01 * rng.normal(size=(len(clips['digits']), 10))
  frames = lambda clips: np.repeat(digits(clips)[:, None], 8, axis=1) + 0.3 * rng.normal(size=(len(clips['digits']),
                                                                                               8, 10))
  report = protocols.probe_on_clips(digits, frames, train, test, 55, max_iterations=200)
  assert report['num_classes'] == 55 and report['chance'] == pytest.approx(1 / 55)
  assert (report['num_train'], report['num_test'], report['statics']['dim'], report['frames']['dim']) == (
      N_TRAIN_PROBE, 200, 10, 10)
  assert report['statics']['accuracy'] >= 0.97
  assert report['frames']['vote_accuracy'] >= 0.97
  assert report['frames']['vote_accuracy'] == report['frames'][f'vote_{protocols.HEADLINE_VOTE}']
  noise = lambda clips: rng.normal(size=(len(clips['digits']), 20))
  noise_frames = lambda clips: rng.normal(size=(len(clips['digits']), 8, 20))
  report = protocols.probe_on_clips(noise, noise_frames, train, test, 55, max_iterations=200)
  assert report['statics']['accuracy'] < 0.08 and report['frames']['vote_accuracy'] < 0.08


def test_probe_on_a_run_reports_both_probes_at_the_run_sizes(loaded):
  report = protocols.probe(loaded['stage2'], num_train=24, num_test=12, max_iterations=20).report
  c = loaded['stage2'].cfg
  latent = c.latent_size ** 2 * c.latent_channels
  assert report['task'] == 'probe' and report['test_split'] == 'test' and report['train_split'] == 'train'
  assert (report['num_train'], report['num_test']) == (24, 12)
  assert report['statics']['dim'] == latent and report['frames']['dim'] == latent
  for key in ('frame_accuracy', 'vote_mean_logits', 'vote_mean_softmax', 'vote_majority'):
    assert 0.0 <= report['frames'][key] <= 1.0
  assert report['thesis'] == {'statics': 0.691, 'frame_vote': 0.630}
  table = protocols.markdown_table(report)
  assert '69.1 %' in table and '63.0 %' in table and '1.8 %' in table
  with pytest.raises(protocols.RunError, match='stage2'):
    protocols.probe(loaded['classifier'], 4, 4)


# ------------------------------------------------------------------------------------------------ retrieval
@pytest.fixture(scope='module')
def swap_set(loaded):
  info = loaded['stage2'].info
  queries = protocols.mmnist_clips(info, 'val', 40, 0)
  traj, digits, donors = protocols.swap_clips(queries, 0, 'val', **protocols.mmnist_kwargs(info))
  return queries, traj, digits, donors


def test_swap_clips_keep_one_factor_and_change_the_other(swap_set):
  queries, traj, digits, donors = swap_set
  idx = np.arange(len(queries['digits']))
  assert np.all(donors['digit_donor'] != idx) and np.all(donors['trajectory_donor'] != idx)
  np.testing.assert_array_equal(traj['centres'], queries['centres'])
  assert np.all(traj['pair_label'] != queries['pair_label'])        # 40 queries: another pair always exists
  np.testing.assert_array_equal(digits['digit_index'], queries['digit_index'])
  assert np.all(np.abs(digits['centres'] - queries['centres']).max(axis=(1, 2, 3)) > 0)
  # Re-rendering the query's own digits on its own trajectory gives back its frames.
  from rlcv_tf.datasets import moving_mnist  # pylint: disable=g-import-not-at-top
  same = moving_mnist.recombine(queries, queries, 'val', digit_size=14)
  np.testing.assert_array_equal(same['video'], queries['video'])


def test_controlled_swap_is_100_for_the_trajectory_and_0_for_the_digits(swap_set, loaded):
  queries, traj, digits, _ = swap_set
  database = protocols.mmnist_clips(loaded['stage2'].info, 'test', 60, 0)
  database = {k: np.concatenate([database[k], traj[k], digits[k]]) for k in ('video', 'digits', 'centres',
                                                                             'pair_label')}
  extractors = {'trajectory': lambda c: np.asarray(c['centres']).reshape(len(c['centres']), -1),
                'digits': _digit_counts}
  result = protocols.retrieval_on_clips(extractors, queries, database, traj, digits, seed=0, montage_queries=3)
  feats = result.report['features']
  assert feats['trajectory']['swap_rate'] == 1.0 and feats['digits']['swap_rate'] == 0.0
  # The database holds each query's trajectory (traj) and digits (digits): exact matches.
  assert feats['trajectory']['keypoint_distance'] == 0.0
  assert feats['digits']['digit_agreement'] == 1.0
  assert result.report['random']['keypoint_distance'] > 5.0
  assert result.report['chance']['swap_rate'] == 0.5
  assert (result.report['num_queries'], result.report['num_database']) == (40, 140)
  assert feats['trajectory']['keypoint_distance_per_step'] == 0.0 and feats['digits']['dim'] == 10
  montage = result.images['retrieval_montage']
  assert montage.dtype == np.uint8 and montage.shape[0] > 3 * 32  # 3 query rows + header


def test_retrieval_on_runs_reports_every_feature_and_the_random_floor(loaded):
  runs = {'P': loaded['stage2'], 'S': loaded['stage2'], 'classifier': loaded['classifier'],
          'autoencoder': loaded['autoencoder']}
  result = protocols.retrieval(runs, num_queries=8, num_database=16, montage_queries=2)
  report = result.report
  assert set(report['features']) == {'P', 'S', 'classifier', 'autoencoder'}
  assert (report['query_split'], report['database_split'], report['num_queries'], report['num_database']) == (
      'val', 'test', 8, 16)
  assert report['features']['P']['dim'] == 32 and report['features']['classifier']['dim'] == 32
  for row in list(report['features'].values()) + [report['random']]:
    assert row['keypoint_distance'] >= 0 and 0.0 <= row['digit_agreement'] <= 1.0
    assert row['keypoint_distance_64px'] == pytest.approx(2 * row['keypoint_distance'])  # tiny frames are 32 px
    assert row['keypoint_distance_per_step'] == pytest.approx(row['keypoint_distance'] / 7)
  assert set(result.images) == {'retrieval_montage', 'controlled_swap'}
  json.dumps(protocols.json_ready(report))
  assert '| random |' in protocols.markdown_table(report)
  with pytest.raises(protocols.RunError, match='needs a stage2 run'):
    protocols.retrieval({'P': loaded['classifier']}, 4, 4)


# ------------------------------------------------------------------------------------------------ folds, windows
def test_window_starts():
  np.testing.assert_array_equal(protocols.window_starts(20, 8, 1), [6])
  np.testing.assert_array_equal(protocols.window_starts(21, 8, 1), [6])
  np.testing.assert_array_equal(protocols.window_starts(20, 8, 3), [0, 6, 12])
  np.testing.assert_array_equal(protocols.window_starts(9, 8, 5), [0, 1])
  assert len(protocols.window_starts(7, 8, 1)) == 0
  assert protocols.fold_logdirs('runs/f{fold}', 3) == ['runs/f0', 'runs/f1', 'runs/f2']
  with pytest.raises(ValueError, match='no {fold}'):
    protocols.fold_logdirs('runs/f', 3)


def test_attentive_head_learns_a_label_carried_by_p_and_not_noise():
  rng = np.random.default_rng(0)
  actors = np.repeat(['a', 'b', 'c'], 16)
  labels = np.tile(np.repeat(np.arange(4), 4), 3)
  video_ids = np.array([f'{a}_{i // 2}' for a, i in zip(actors, np.tile(np.arange(16), 3))])
  feats = {'S': rng.normal(size=(48, 12)), 'P': np.eye(4)[labels] * 3 + 0.1 * rng.normal(size=(48, 4)),
           'label': labels, 'actor': actors, 'video_id': video_ids}
  report = protocols.attentive_on_features(feats, 4, epochs=60, batch_size=4, learning_rate=1e-2)
  assert [r['test_actor'] for r in report['folds']] == ['a', 'b', 'c']
  assert report['mean_accuracy'] == 1.0 and report['chance'] == 0.25 and report['num_videos'] == 24
  assert all(0.0 <= r['mean_attention'] <= 1.0 for r in report['folds'])
  feats['P'] = rng.normal(size=(48, 4))
  report = protocols.attentive_on_features(feats, 4, epochs=20, batch_size=4, learning_rate=1e-2)
  assert report['mean_accuracy'] <= 0.6


# ------------------------------------------------------------------------------------------------ shard retrieval
def _loop_retrieval(feats, keypoints, labels, actors):
  """Leave-one-out top-1 retrieval written out: per query a loop over every other clip for the Euclidean
  neighbour, then (1/K) sum_k sum_t |d_ref - d_ret|_1 over the keypoint displacements."""
  n, t, k = keypoints.shape[:3]
  dist, agree, same = [], [], []
  for i in range(n):
    best, best_d = None, np.inf
    for j in range(n):
      d = np.sqrt(np.sum((feats[i] - feats[j]) ** 2))
      if j != i and d < best_d:
        best, best_d = j, d
    total = 0.0
    for m in range(k):
      for step in range(t - 1):
        ref = keypoints[i, step + 1, m] - keypoints[i, step, m]
        ret = keypoints[best, step + 1, m] - keypoints[best, step, m]
        total += np.abs(ref - ret).sum()
    dist.append(total / k)
    agree.append(labels[i] == labels[best])
    same.append(actors[i] == actors[best])
  return np.mean(dist), np.mean(agree), np.mean(same)


def test_shard_retrieval_matches_a_loop_and_leaves_out_clips_without_keypoints():
  rng = np.random.default_rng(0)
  n, t, k = 14, 8, 3
  keypoints = np.cumsum(rng.normal(0, 2, (n, t, k, 2)), axis=1) + 48
  labels, actors = rng.integers(0, 3, n), np.array([f'a{i % 4}' for i in range(n)])
  noise = rng.normal(size=(n, 5))
  moves = np.diff(keypoints, axis=1).reshape(n, -1)          # a feature that is the dynamics itself
  keypoints[3, 5, 1, 0] = np.nan                              # no landmark in one frame of clip 3
  clips = {'keypoints': keypoints, 'label': labels, 'actor': actors}
  report = protocols.shard_retrieval_on_clips({'noise': noise, 'moves': moves}, clips, seed=1)
  keep = np.arange(n) != 3
  assert report['num_clips'] == n - 1 and report['num_without_keypoints'] == 1
  for name, feats in (('noise', noise), ('moves', moves)):
    want = _loop_retrieval(feats[keep], keypoints[keep], labels[keep], actors[keep])
    row = report['features'][name]
    np.testing.assert_allclose([row['keypoint_distance'], row['label_agreement'], row['same_actor']], want,
                               rtol=1e-9)
    assert row['keypoint_distance_per_step'] == pytest.approx(row['keypoint_distance'] / (t - 1))
    assert 3 not in report['retrieved_rows'][name] and 3 not in report['query_rows']
  assert report['features']['moves']['keypoint_distance'] < report['random']['keypoint_distance']
  # Two clips that move alike find each other: distance 0 for the dynamics feature.
  twin = dict(clips, keypoints=np.concatenate([keypoints[keep][:2], keypoints[keep][:2] + 5.0]),
              label=np.array([0, 1, 0, 1]), actor=np.array(['a', 'b', 'c', 'd']))
  twin_moves = np.diff(twin['keypoints'], axis=1).reshape(4, -1)
  out = protocols.shard_retrieval_on_clips({'moves': twin_moves}, twin)
  assert out['features']['moves']['keypoint_distance'] == 0.0 and out['features']['moves']['label_agreement'] == 1.0
  from rlcv_tf.datasets import video_shards  # pylint: disable=g-import-not-at-top
  weizmann = dict(report, task='retrieval', dataset='weizmann', image_size=96,
                  thesis=protocols.THESIS_SHARD_RETRIEVAL['weizmann'])
  for keypoints, name in ((video_shards.keypoint_info('weizmann', True), '(mask keypoints)'),
                          (video_shards.keypoint_info('weizmann', True, 25), '(OpenPose joints)')):
    assert name in protocols.markdown_table(dict(weizmann, keypoints=keypoints))


# ------------------------------------------------------------------------------------------------ shards
@pytest.fixture(scope='module')
def shards(tmp_path_factory):
  """Stand-in Weizmann (3 actors x 2 actions) and RAVDESS (5 actors x 9 recordings of 9 frames) shards, prepared
  in-process."""
  from rlcv_tf.datasets import video_shards, video_standins  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp('shards')
  video_standins.write_weizmann(str(root / 'wz_raw'), num_actors=3, num_frames=16, actions=('walk', 'jack'),
                                extra_take=False)
  video_shards.prepare('weizmann', str(root / 'wz_raw'), str(root / 'wz'), num_workers=0)
  video_standins.write_ravdess(str(root / 'rv_raw'), num_actors=5, num_frames=27, size=(180, 320))  # 9 frames
  video_shards.prepare('ravdess', str(root / 'rv_raw'), str(root / 'rv'), num_workers=0)
  return {'weizmann': str(root / 'wz'), 'ravdess': str(root / 'rv')}


@pytest.mark.slow
def test_shard_clips_equal_the_evaluation_reader(shards):
  from rlcv_tf.datasets import video_shards  # pylint: disable=g-import-not-at-top
  from rlcv_tf.video import presets  # pylint: disable=g-import-not-at-top
  cfg = presets.get_preset('weizmann', 'tiny')
  clips = list(protocols.iter_shard_clips(shards['weizmann'], 'weizmann', 8, windows_per_video=1))
  got = {vid: video for part in clips for vid, video in zip(part['video_id'], protocols.prepare_videos(
      part['video'], cfg))}
  batch = next(iter(video_shards.make_dataset(shards['weizmann'], 100, 8, training=False, image_size=32,
                                              drop_remainder=False)))
  want = dict(zip([v.decode() for v in batch['video_id'].numpy()], batch['video'].numpy()))
  assert set(got) == set(want) and len(want) == 6
  for vid, video in want.items():
    np.testing.assert_allclose(got[vid], video, atol=1e-5)
  several = np.concatenate([p['start'] for p in protocols.iter_shard_clips(shards['weizmann'], 'weizmann', 8, 3)])
  assert len(several) > 6


@pytest.mark.slow
def test_attentive_on_weizmann_shards_leaves_each_actor_out(shards, tmp_path):
  write_run(str(tmp_path / 'wz'), 'weizmann', 'stage2', data_dir=shards['weizmann'])
  run = protocols.load_run(str(tmp_path / 'wz'))
  report = protocols.attentive(run, epochs=2, windows_per_video=2).report
  from rlcv_tf.datasets import video_shards  # pylint: disable=g-import-not-at-top
  videos = video_shards.read_report(shards['weizmann'])['videos']
  actors = sorted({v['actor'] for v in videos})
  assert [r['test_actor'] for r in report['folds']] == actors
  assert report['num_classes'] == 1 + max(v['label'] for v in videos)
  assert report['chance'] == pytest.approx(1 / report['num_classes'])
  assert report['num_videos'] == 6 and report['num_clips'] == 12
  for row in report['folds']:
    assert row['num_test_videos'] == sum(v['actor'] == row['test_actor'] for v in videos)
    assert row['num_train_videos'] == 6 - row['num_test_videos']
    assert 0.0 <= row['accuracy'] <= 1.0 and 0.0 <= row['mean_attention'] <= 1.0
  assert report['pretraining_saw_test_actor'] == [True] * 3
  assert '96 %' in protocols.markdown_table(report)
  with pytest.raises(protocols.RunError, match='needs a weizmann run'):
    protocols.attentive(protocols.LoadedRun(
        dataclasses.replace(run.info, run=dataclasses.replace(run.run, dataset='mmnist')), run.models, ''))


@pytest.mark.slow
def test_finetune_folds_never_mix_people_and_pretraining_must_exclude_them(shards, tmp_path):
  from rlcv_tf.datasets import video_shards  # pylint: disable=g-import-not-at-top
  from rlcv_tf.video import presets  # pylint: disable=g-import-not-at-top
  data = shards['ravdess']
  report = video_shards.read_report(data)
  actor_of = {v['id']: v['actor'] for v in report['videos']}
  plan = protocols.fold_plan(data, 2, seed=0)
  assert sorted(p for fold in plan for p in fold['test_people']) == sorted(set(actor_of.values()))
  for fold in plan:
    assert not set(fold['test_people']) & set(fold['train_people'])
    assert {actor_of[v] for v in fold['test_videos']} == set(fold['test_people'])
    assert {actor_of[v] for v in fold['train_videos']} == set(fold['train_people'])
  runs = []
  for i, fold in enumerate(plan):
    write_run(str(tmp_path / f'f{i}'), 'ravdess', 'stage2', seed=i, data_dir=data,
              exclude_actors=','.join(fold['test_people']))
    runs.append(protocols.load_run(str(tmp_path / f'f{i}')))
  common = dict(num_folds=2, epochs=1, steps_per_epoch=1, windows_per_video=2)
  result = protocols.finetune(data, runs, cv_pretrain='per_fold', **common).report
  assert result['init'] == 'full' and not result['transductive'] and result['num_classes'] == 8
  for row, fold in zip(result['folds'], plan):
    assert row['test_people'] == fold['test_people'] and row['weights_copied'] > 0
    assert row['stage2_excludes_test_people'] and row['num_test_clips'] == 2 * row['num_test_videos']
    assert 0.0 <= row['video_accuracy'] <= 1.0
  with pytest.raises(protocols.RunError, match='--exclude_actors=' + ','.join(plan[0]['test_people'])):
    protocols.finetune(data, runs[::-1], cv_pretrain='per_fold', **common)
  shared = protocols.finetune(data, runs[:1], cv_pretrain='shared', **common).report
  assert shared['transductive'] and 'transductive' in shared['note']
  assert '(transductive)' in protocols.markdown_table(shared)
  random = protocols.finetune(data, None, presets.get_preset('ravdess', 'tiny'), **common).report
  assert random['init'] == 'random' and all(r['weights_copied'] == 0 for r in random['folds'])
  assert random['chance'] == pytest.approx(1 / 8)


@pytest.mark.slow
def test_shard_retrieval_on_runs_reads_the_stored_keypoints(shards, tmp_path):
  """Weizmann (mask keypoints) and RAVDESS (landmarks) retrieval over every prepared video with P / S and the
  baselines; a shard set without keypoints is refused with the fix."""
  from rlcv_tf.datasets import video_shards  # pylint: disable=g-import-not-at-top
  for dataset, num_videos in (('weizmann', 6), ('ravdess', 45)):
    write_run(str(tmp_path / dataset), dataset, 'stage2', data_dir=shards[dataset])
    write_run(str(tmp_path / f'{dataset}_ae'), dataset, 'autoencoder', data_dir=shards[dataset])
    s2 = protocols.load_run(str(tmp_path / dataset))
    runs = {'P': s2, 'S': s2, 'autoencoder': protocols.load_run(str(tmp_path / f'{dataset}_ae'))}
    result = protocols.shard_retrieval(runs, montage_queries=2)
    report = result.report
    assert report['dataset'] == dataset and report['num_clips'] + report['num_without_keypoints'] == num_videos
    assert set(report['features']) == {'P', 'S', 'autoencoder'}
    for row in list(report['features'].values()) + [report['random']]:
      assert np.isfinite(row['keypoint_distance']) and 0.0 <= row['label_agreement'] <= 1.0
    assert report['keypoints']['names'] == video_shards.read_report(shards[dataset])['keypoints']['names']
    assert result.images['retrieval_montage'].ndim == 3
    want = 'Weizmann retrieval (mask keypoints)' if dataset == 'weizmann' else 'RAVDESS retrieval (face landmarks)'
    assert want in protocols.markdown_table(report)
  bare = str(tmp_path / 'wz_bare')
  shutil.copytree(shards['weizmann'], bare)
  path = os.path.join(bare, 'prepare_report.json')
  with open(path) as f:
    saved = json.load(f)
  saved['num_keypoints'] = 0
  with open(path, 'w') as f:
    json.dump(saved, f)
  with pytest.raises(protocols.RunError, match='no keypoints.*classification_masks.mat'):
    protocols.shard_retrieval({'P': protocols.load_run(str(tmp_path / 'weizmann'))}, bare)
