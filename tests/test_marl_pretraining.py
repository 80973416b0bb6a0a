"""Learning from observations without actions (thesis Sec. 4.4.2, App. 4.D; spec ch4 §3.4, §7.1 items 33-35):
the replay format (no actions, no pickle, stacks rebuilt bit for bit), the recorder's episode bookkeeping, the
validation split by episode, pre-training with early stopping and per-axis NLL, the RL run's --record_dir, and
launchers/marl_pretrain.py's one-line errors and end-to-end run."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

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
])
def test_pretrain_launcher_bad_flags_give_one_clear_line(args, needle, replay_dir, tmp_path):
  empty = tmp_path / 'empty'
  empty.mkdir()
  args = [a.format(empty=empty, rep=replay_dir) for a in args]
  proc = run_pretrain_launcher(*args, f'--logdir={tmp_path / "out"}')
  assert proc.returncode != 0
  assert 'Traceback' not in proc.stderr
  lines = [l for l in proc.stderr.splitlines() if l.strip()]
  assert len(lines) == 1, proc.stderr
  assert needle in lines[0]


def test_pretrain_launcher_end_to_end(replay_dir, tmp_path):
  logdir = tmp_path / 'pre'
  proc = run_pretrain_launcher(f'--replay_dir={replay_dir}', f'--logdir={logdir}', '--model=cnn', '--max_steps=4',
                               '--eval_every=2', '--batch_size=4', '--stack_channels=8x1,8x1', '--feature_dim=32',
                               '--validation_fraction=0.25')
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert 'uniform NLL bounds log 18 = 2.890, log 24 = 3.178' in proc.stdout
  assert '--init_from=' in proc.stdout
  assert (logdir / 'pretrain_config.json').exists() and list((logdir / 'best').glob('ckpt-*.index'))
