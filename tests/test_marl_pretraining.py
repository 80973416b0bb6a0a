"""Learning from observations without actions (thesis Sec. 4.4.2, App. 4.D; spec ch4 §3.4, §7.1 items 33-35):
the replay format (no actions, no pickle, stacks rebuilt bit for bit), the recorder's episode bookkeeping, the
validation split by episode, pre-training with early stopping and per-axis NLL, the RL run's --record_dir, and
launchers/marl_pretrain.py's one-line errors and end-to-end run."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import marl_test_helpers
from rlcv_tf.envs import registry
from rlcv_tf.marl import pretraining
from rlcv_tf.marl import replays
from rlcv_tf.runtime import actors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = dict(stack_channels=((8, 1), (8, 1)), feature_dim=32)


def make_env(seed=0, length=12):
  return registry.make_env('mini_5v5_small', seed=seed, num_frames=4, episode_length=length)


def record(directory, episodes=4, length=12, seed=0):
  seen = []
  env = make_env(seed, length)
  rng = np.random.default_rng(seed)

  def policy(obs):
    seen.append((obs.copy(), env.agent_positions().copy()))
    return rng.integers(0, env.num_actions, env.num_agents)

  replays.record_env_episodes(env, directory, episodes, policy=policy)
  env.close()
  return seen


def test_replays_hold_no_actions_and_rebuild_the_exact_stacked_observations(tmp_path):
  d = str(tmp_path / 'rep')
  seen = record(d, episodes=2, length=12)
  index = json.load(open(os.path.join(d, 'index.json')))
  assert index['format'] == 'rlcv_marl_replay' and len(index['episodes']) == 2
  reader = replays.ReplayReader(d)
  assert reader.observation_shape == (5, 18, 24, 16) and reader.layout == 'smm'
  k = 0
  for i in range(len(reader)):
    with np.load(os.path.join(d, reader.entries[i]['file']), allow_pickle=False) as z:
      assert sorted(z.files) == ['planes', 'positions']                  # frames and positions only
      assert z['planes'].dtype == np.uint8 and z['positions'].dtype == np.int16
    ep = reader.load(i)
    stacked = ep.stacked(np.arange(ep.length))
    for t in range(ep.length):
      obs, pos = seen[k]
      np.testing.assert_array_equal(stacked[t], obs, err_msg=f'episode {i} step {t}')
      np.testing.assert_array_equal(ep.positions[t], pos)
      k += 1
  assert k == len(seen)


def _step(actor, run, t, done=False, n=2):
  obs = np.full((n, 4, 5, 8), t % 256, np.uint8)
  return actors.EnvStep(actor, run, obs, np.zeros(n, np.float32), done, np.full((n, 2), t % 4, np.int32))


def test_recorder_writes_finished_episodes_and_drops_partial_ones(tmp_path):
  d = str(tmp_path / 'rec')
  rec = replays.ReplayRecorder(d, num_frames=4, num_actions=19, every=1, frames_fn=lambda: 123)
  # Actor 0: 3 steps, then done (that step starts episode 2), 2 more steps (unfinished at the end).
  # Actor 1: 2 steps, restarted (run 1) -> partial dropped; then 2 steps, done.
  stream = [_step(0, 0, 0), _step(1, 0, 10), _step(0, 0, 1), _step(1, 0, 11), _step(0, 0, 2),
            _step(1, 1, 20), _step(0, 0, 3, done=True), _step(1, 1, 21), _step(0, 0, 4), _step(1, 1, 22, done=True)]
  for s in stream:
    rec.add_step(s)
  reader = replays.ReplayReader(d)
  assert [e['length'] for e in reader.entries] == [3, 2]
  assert reader.entries[0]['learner_frames'] == 123 and reader.entries[0]['layout'] == 'frames'
  # c = 8 / 4 = 2 channels per frame: the "frames" layout.
  np.testing.assert_array_equal(reader.load(0).frames[:, 0, 0, 0, 0], [0, 1, 2])
  np.testing.assert_array_equal(reader.load(1).frames[:, 0, 0, 0, 0], [20, 21])
  # `every` counts episodes as they START: #1 actor 0, #2 actor 1 run 0, #3 actor 1 run 1, #4 actor 0 again.
  for every, lengths in ((2, [3, 2]), (3, [3])):     # every=2: #1 and #3; every=3: #1 (and #4, unfinished)
    rec2 = replays.ReplayRecorder(str(tmp_path / f'rec{every}'), num_frames=4, num_actions=19, every=every)
    for s in stream:
      rec2.add_step(s)
    assert [e['length'] for e in replays.ReplayReader(rec2.writer.directory).entries] == lengths


def test_saved_agents_can_play_for_the_recorder(tmp_path):
  from rlcv_tf.marl import export  # pylint: disable=g-import-not-at-top
  from rlcv_tf.marl import networks  # pylint: disable=g-import-not-at-top
  net = networks.build_network('cnn', 19, (5, 18, 24, 16), **SMALL)
  sm = export.export_policy(net, str(tmp_path / 'sm'), (18, 24, 16))
  policy = replays.saved_model_policy(sm, greedy=True)
  env = make_env(length=5)
  replays.record_env_episodes(env, str(tmp_path / 'rep'), 1, policy=policy)
  reader = replays.ReplayReader(str(tmp_path / 'rep'))
  assert reader.entries[0]['length'] == 5 and reader.entries[0]['source'] == 'play'


def test_split_is_by_episode_and_holds_out_one_fifteenth():
  train, val = pretraining.split_episodes(30, 1 / 15, seed=0)
  assert len(val) == 2 and len(train) == 28 and not set(train) & set(val)
  assert sorted(train + val) == list(range(30))
  assert pretraining.split_episodes(30, 1 / 15, seed=0) == (train, val)
  assert len(pretraining.split_episodes(3, 1 / 15, seed=0)[1]) == 1       # at least one validation episode
  with pytest.raises(replays.ReplayError, match='at least 2'):
    pretraining.split_episodes(1, 1 / 15, seed=0)


@pytest.fixture(scope='module')
def replay_dir(tmp_path_factory):
  d = str(tmp_path_factory.mktemp('replays') / 'mini')
  record(d, episodes=4, length=25, seed=1)
  return d


@pytest.mark.parametrize('kind,objective', [('cnn', 'predict'), ('acnn', 'observe_all')])
def test_pretrain_learns_reports_per_axis_nll_and_saves_a_transferable_checkpoint(replay_dir, tmp_path, kind,
                                                                                  objective):
  lines = []
  cfg = pretraining.PretrainConfig(replay_dir=replay_dir, model=kind, objective=objective, max_steps=40,
                                   eval_every=10, patience=5, batch_size=8, validation_fraction=0.25, **SMALL)
  logdir = str(tmp_path / 'pre')
  res = pretraining.pretrain(cfg, logdir, print_fn=lines.append)
  assert len(res.val_episodes) == 1 and len(res.train_episodes) == 3
  assert {'aux/nll_row', 'aux/nll_col'} <= set(res.best_val)
  first = res.history[0]['val/aux/nll_row'] + res.history[0]['val/aux/nll_col']
  assert res.best_val_nll <= first
  if objective == 'predict':
    assert res.best_val_nll < np.log(18) + np.log(24), 'better than the uniform bound after 40 steps'
    assert any('uniform 2.890 / 3.178' in l for l in lines)
  assert os.path.exists(os.path.join(logdir, 'saved_model', 'saved_model.pb'))
  assert any(f.startswith('events.out.tfevents') for f in os.listdir(logdir))
  net, meta = pretraining.load_pretrained(logdir, (5, 18, 24, 16), kind=kind)
  assert meta['objective'] == objective and meta['checkpoint'] == res.checkpoint
  assert res.checkpoint.endswith(f'ckpt-{res.best_step}')


def test_pretrain_stops_early_when_validation_stops_improving(replay_dir, tmp_path):
  cfg = pretraining.PretrainConfig(replay_dir=replay_dir, model='cnn', max_steps=400, eval_every=1, patience=1,
                                   batch_size=4, learning_rate=0.05, validation_fraction=0.25, max_eval_batches=1,
                                   **SMALL)
  lines = []
  res = pretraining.pretrain(cfg, str(tmp_path / 'pre'), print_fn=lines.append)
  assert res.steps < 400 and any('early stop' in l for l in lines)
  last = res.history[-1]
  assert last['val/aux/nll_row'] + last['val/aux/nll_col'] >= res.best_val_nll


def test_rl_run_records_replays_with_record_dir(tmp_path):
  from rlcv_tf.marl import config as config_lib  # pylint: disable=g-import-not-at-top
  from rlcv_tf.marl import training  # pylint: disable=g-import-not-at-top
  d = str(tmp_path / 'rec')
  cfg = config_lib.MarlConfig(env='mini_5v5_small', model='cnn', env_kwargs={'episode_length': 6}, num_actors=2,
                              batch_size=2, unroll_length=8, total_frames=32, checkpoint_interval_s=1e9,
                              log_interval_s=1e9, record_dir=d, aux='predict', **SMALL)
  training.train(cfg, str(tmp_path / 'run'), print_fn=lambda s: None)
  reader = replays.ReplayReader(d)
  assert len(reader) >= 2
  assert all(e['length'] == 6 and e['source'] == 'rl' and 'learner_frames' in e for e in reader.entries)
  assert reader.observation_shape == (5, 18, 24, 16)


def run_pretrain_launcher(*args, timeout=300):
  return subprocess.run([sys.executable, '-m', 'launchers.marl_pretrain', *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=timeout)


@pytest.mark.parametrize('args,needle', [
    ([], '--replay_dir'),
    (['--replay_dir=/nonexistent/replays'], '--replay_dir=/nonexistent/replays'),
    (['--replay_dir={empty}'], 'index.json missing'),
    (['--replay_dir={rep}', '--objective=guess'], '--objective=guess'),
    (['--replay_dir={rep}', '--stack_channels=8by1'], '--stack_channels=8by1'),
    (['--replay_dir={rep}', '--batch_size=0'], '--batch_size=0'),
    (['--replay_dir={rep}', '--max_resident_episodes=1'], '--max_resident_episodes=1'),
])
def test_pretrain_launcher_bad_flags_give_one_clear_line(args, needle, replay_dir, tmp_path):
  empty = tmp_path / 'empty'
  empty.mkdir()
  args = [a.format(empty=empty, rep=replay_dir) for a in args]
  assert needle in marl_test_helpers.error_line(run_pretrain_launcher(*args, f'--logdir={tmp_path / "out"}'))


def test_pretrain_launcher_end_to_end(replay_dir, tmp_path):
  logdir = tmp_path / 'pre'
  proc = run_pretrain_launcher(f'--replay_dir={replay_dir}', f'--logdir={logdir}', '--model=cnn', '--max_steps=4',
                               '--eval_every=2', '--batch_size=4', '--stack_channels=8x1,8x1', '--feature_dim=32',
                               '--validation_fraction=0.25')
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert 'uniform NLL bounds log 18 = 2.890, log 24 = 3.178' in proc.stdout
  assert '--init_from=' in proc.stdout
  assert (logdir / 'pretrain_config.json').exists() and list((logdir / 'best').glob('ckpt-*.index'))


# ------------------------------------------------------------------------------------------ resuming a run
def _resume_checkpoint(logdir):
  """(step, Adam iterations, {variable key: value}) of a logdir's latest resume checkpoint."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  reader = tf.train.load_checkpoint(os.path.join(logdir, pretraining.RESUME_DIR))
  values = {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if k.startswith('model/') and 'OPTIMIZER_SLOT' not in k}
  iterations = [reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
                if k.startswith('optimizer/') and 'iteration' in k]
  return int(reader.get_tensor('step/.ATTRIBUTES/VARIABLE_VALUE')), int(iterations[0]), values


@pytest.mark.parametrize('max_resident', [0, 3])
def test_pretrain_resumes_weights_adam_state_and_step_exactly(replay_dir, tmp_path, max_resident):
  def cfg(steps, **kw):
    settings = dict(SMALL, replay_dir=replay_dir, model='cnn', max_steps=steps, eval_every=2, batch_size=4,
                    validation_fraction=0.25)
    return pretraining.PretrainConfig(**dict(settings, **kw))
  k = 4
  resumed, straight = str(tmp_path / 'resumed'), str(tmp_path / 'straight')
  lines = []
  first = pretraining.pretrain(cfg(k), resumed, print_fn=lines.append)
  assert first.steps == k and first.resumed_from == 0
  step, iterations, after_first = _resume_checkpoint(resumed)
  assert step == k and iterations == k
  second = pretraining.pretrain(cfg(2 * k), resumed, print_fn=lines.append)
  assert second.resumed_from == k and second.steps == 2 * k
  assert any('resumed from' in l and f'at step {k}' in l for l in lines)
  assert [h['step'] for h in second.history] == [2, 4, 6, 8]      # the first session's evaluations are kept
  step, iterations, after_second = _resume_checkpoint(resumed)
  assert step == 2 * k and iterations == 2 * k, 'Adam continued from the saved state, not afresh'
  assert any(not np.array_equal(after_first[key], after_second[key]) for key in after_first)
  # An uninterrupted run of 2k steps lands on the same weights: the resumed session started from the first
  # session's step-k weights, Adam moments and batch sampler state.
  whole = pretraining.pretrain(cfg(2 * k), straight, print_fn=lambda s: None)
  _, _, after_whole = _resume_checkpoint(straight)
  for key, value in after_whole.items():
    np.testing.assert_allclose(after_second[key], value, rtol=1e-5, atol=1e-6, err_msg=key)
  assert whole.best_val_nll == pytest.approx(second.best_val_nll, rel=1e-5)
  assert pretraining.load_pretrained(resumed, (5, 18, 24, 16), kind='cnn')[1]['checkpoint'] == second.checkpoint
  # A saved run of another architecture or objective is not continued: one message naming the flags.
  with pytest.raises(pretraining.ResumeError, match=r'--logdir=.*--model=cnn.*--model=acnn.*new --logdir'):
    pretraining.pretrain(cfg(3 * k, model='acnn'), resumed, print_fn=lambda s: None)
  with pytest.raises(pretraining.ResumeError, match=r'--objective=predict.*--objective=observe_all'):
    pretraining.pretrain(cfg(3 * k, objective='observe_all'), resumed, print_fn=lambda s: None)
  with pytest.raises(pretraining.ResumeError, match=r'--stack_channels=8x1,8x1.*--stack_channels=8x1'):
    pretraining.pretrain(cfg(3 * k, stack_channels=((8, 1),)), resumed, print_fn=lambda s: None)
  with pytest.raises(pretraining.ResumeError, match='validation split differs'):
    pretraining.pretrain(cfg(3 * k, seed=5), resumed, print_fn=lambda s: None)


def test_pretrain_launcher_refuses_to_resume_another_architecture(replay_dir, tmp_path):
  logdir = tmp_path / 'pre'
  cfg = pretraining.PretrainConfig(replay_dir=replay_dir, model='acnn', **SMALL)
  pretraining.write_meta(str(logdir), cfg, (5, 18, 24, 16), 19)
  proc = run_pretrain_launcher(f'--replay_dir={replay_dir}', f'--logdir={logdir}', '--model=cnn',
                               '--stack_channels=8x1,8x1', '--feature_dim=32')
  assert proc.returncode == 2 and 'Traceback' not in proc.stderr
  # This check needs the saved run, so it comes after TensorFlow's import, whose start-up banner (printed before
  # absl's logging starts, whatever TF_CPP_MIN_LOG_LEVEL says) shares stderr: count the error lines.
  lines = [l for l in proc.stderr.splitlines() if l.startswith('error:')]
  assert len(lines) == 1 and '--model=acnn' in lines[0] and '--model=cnn' in lines[0], proc.stderr


# ------------------------------------------------------------------------------------- streaming replays
class _CountingReader(replays.ReplayReader):
  """Counts the decoded episodes alive (CPython frees an Episode as soon as its last reference goes)."""

  def __init__(self, directory):
    super().__init__(directory)
    self.live = 0
    self.peak = 0

  def load(self, i):
    import weakref  # pylint: disable=g-import-not-at-top
    episode = super().load(i)
    self.live += 1
    self.peak = max(self.peak, self.live)
    weakref.finalize(episode, self._freed)
    return episode

  def _freed(self):
    self.live -= 1


@pytest.fixture(scope='module')
def many_episodes(tmp_path_factory):
  d = str(tmp_path_factory.mktemp('replays') / 'many')
  record(d, episodes=10, length=6, seed=2)
  return d


def _draw_sequence(buffer, draws, batch_size=4):
  seen = []
  for _ in range(draws):
    pieces = buffer.draw(batch_size)
    batch = pretraining._assemble(pieces, 'predict', False)  # pylint: disable=protected-access
    assert len(batch[0]) == batch_size
    seen += [(ep.entry['file'], int(t)) for ep, ts in pieces for t in ts]
    del pieces, batch                         # the caller keeps no episode past the next draw
  return seen


def test_shuffle_buffer_bounds_residency_covers_every_episode_and_is_seeded(many_episodes):
  reader = _CountingReader(many_episodes)
  train = [0, 1, 2, 3, 4, 5, 6, 7]
  buffer = replays.EpisodeShuffleBuffer(reader, train, capacity=3, seed=7)
  seen = _draw_sequence(buffer, 100)
  assert reader.peak <= 3 and buffer.peak_resident == 3 and reader.live == 3
  files = {reader.entries[i]['file'] for i in train}
  assert {f for f, _ in seen} == files, 'every training episode is sampled, the held-out ones never'
  assert all(0 <= t < 5 for _, t in seen)                  # length 6: steps 0..4 have a next step
  assert buffer.loads > 8, 'episodes rotate through the buffer'
  counts = np.array([sum(f == g for g, _ in seen) for f in sorted(files)])
  assert counts.min() > 0.3 * counts.mean()                # roughly uniform over episodes of equal length
  # Deterministic for a seed, different for another; state() / restore() continue the same draws.
  assert _draw_sequence(replays.EpisodeShuffleBuffer(reader, train, 3, seed=7), 100) == seen
  assert _draw_sequence(replays.EpisodeShuffleBuffer(reader, train, 3, seed=8), 100) != seen
  a = replays.EpisodeShuffleBuffer(reader, train, 3, seed=7)
  _draw_sequence(a, 30)
  b = replays.EpisodeShuffleBuffer(reader, train, 3, seed=0)
  assert b.restore(json.loads(json.dumps(a.state())))     # the state survives JSON (the resume checkpoint)
  assert _draw_sequence(b, 40) == _draw_sequence(a, 40)
  del a, b, buffer
  assert not replays.EpisodeShuffleBuffer(reader, train, 4, seed=0).restore(
      replays.EpisodeShuffleBuffer(reader, train, 3, seed=0).state())
  # Room for every episode: nothing rotates.
  whole = replays.EpisodeShuffleBuffer(reader, train, 20, seed=0)
  _draw_sequence(whole, 30)
  assert whole.capacity == 8 and whole.loads == 8


def test_streamed_pretraining_keeps_the_bound_and_validates_on_the_whole_split(many_episodes, tmp_path,
                                                                               monkeypatch):
  readers = []

  def counting_reader(directory):
    readers.append(_CountingReader(directory))
    return readers[-1]

  monkeypatch.setattr(replays, 'ReplayReader', counting_reader)
  loads = []
  original = _CountingReader.load
  monkeypatch.setattr(_CountingReader, 'load', lambda self, i: (loads.append(i), original(self, i))[1])
  cfg = pretraining.PretrainConfig(replay_dir=many_episodes, model='cnn', max_steps=6, eval_every=3,
                                   batch_size=4, validation_fraction=0.3, max_resident_episodes=3, **SMALL)
  lines = []
  res = pretraining.pretrain(cfg, str(tmp_path / 'pre'), print_fn=lines.append)
  assert readers[0].peak <= 3 and res.peak_resident_episodes == 3
  assert any('at most 3 episodes decoded at once' in l for l in lines)
  assert len(res.val_episodes) == 3
  # Two evaluations, each streaming every held-out episode once.
  assert sorted(i for i in loads if i in res.val_episodes) == sorted(res.val_episodes * 2)
  with pytest.raises(ValueError, match='max_resident_episodes'):
    pretraining.pretrain(dataclasses.replace(cfg, max_resident_episodes=1), str(tmp_path / 'other'))


def test_predict_pretraining_skips_jumped_targets_like_the_rl_aux_loss():
  """A target far from the agent's current position (switched player, kick-off) is dropped in pre-training
  exactly as in the RL auxiliary loss, so the two objectives measure the same thing."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from rlcv_tf.marl import learning  # pylint: disable=g-import-not-at-top
  from rlcv_tf.marl import networks  # pylint: disable=g-import-not-at-top
  model = networks.build_network('cnn', 19, (3, 18, 24, 8), prediction_heads=True, **{
      k: v for k, v in SMALL.items() if k in ('stack_channels', 'feature_dim')})
  rng = np.random.default_rng(0)
  obs = rng.integers(0, 256, (4, 3, 18, 24, 8)).astype(np.uint8)
  now = rng.integers(5, 12, (4, 3, 2)).astype(np.int32)
  nxt = now + rng.integers(-1, 2, (4, 3, 2)).astype(np.int32)
  nxt[0, 0] = [0, 0]                                    # a jump of at least 5 px
  nxt[2, 1] = [17, 23]
  loss, _ = pretraining.objective_loss('predict', model, obs, (nxt, now), max_jump=3)
  out = model(obs)
  valid = np.ones((4, 3), np.float32)
  valid[0, 0] = valid[2, 1] = 0
  ref, _ = learning.predict_loss(out['pred_row'], out['pred_col'], nxt, valid)
  np.testing.assert_allclose(float(loss), float(ref), rtol=1e-5)
  unmasked, _ = pretraining.objective_loss('predict', model, obs, (nxt, now), max_jump=0)
  assert abs(float(unmasked) - float(loss)) > 1e-4
