"""Evaluation of saved Chapter 4 agents on the football stand-in: vs the built-in AI, agent vs agent (two-team
control), the round-robin tournament and the launchers' error handling."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import marl_test_helpers
from rlcv_tf.envs import registry
from rlcv_tf.marl import agents as agents_lib
from rlcv_tf.marl import config as config_lib
from rlcv_tf.marl import evaluation
from rlcv_tf.marl import training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL_NET = dict(stack_channels=((8, 1), (8, 1)), feature_dim=32)
SHORT = 30  # steps per evaluation game


def _train(logdir, model, seed):
  cfg = config_lib.MarlConfig(env='mini_5v5_small', model=model, num_actors=1, batch_size=2, unroll_length=8,
                              total_frames=16, checkpoint_interval_s=1e9, log_interval_s=1e9, seed=seed,
                              **SMALL_NET)
  training.train(cfg, logdir, print_fn=lambda s: None)
  return logdir


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  root = tmp_path_factory.mktemp('runs')
  return {'acnn': _train(str(root / 'acnn'), 'acnn', 0), 'cnn': _train(str(root / 'cnn'), 'cnn', 1)}


# ------------------------------------------------------------------------------------------ two-team stand-in
def test_mini_two_team_control_views_each_side_from_itself():
  env = registry.make_env('mini_5v5_small', seed=3, num_frames=1, right_agents=5)
  ts = env.reset()
  assert env.team_sizes == (5, 5) and ts.observation.shape == (10, 18, 24, 4)
  raw = env.raw()
  left, right = ts.observation[:5], ts.observation[5:]
  # Each side sees its own team in plane 0, the rotated pitch for the right team.
  np.testing.assert_array_equal(left[0, ..., 0] > 0, _draw(raw['left_team'], (18, 24)))
  np.testing.assert_array_equal(right[0, ..., 0] > 0, _draw(-raw['right_team'], (18, 24)))
  np.testing.assert_array_equal(right[0, ..., 1] > 0, _draw(-raw['left_team'], (18, 24)))
  for i, (r, c) in enumerate(env.agent_positions()):
    assert ts.observation[i, r, c, 3] == 255 and ts.observation[i, ..., 3].sum() == 255
  # Action 5 ('right') moves a right-team agent towards the left goal (its attacking direction).
  actions = np.zeros(10, np.int32)
  actions[5 + 3] = 5
  x0 = env.raw()['right_team'][3, 0]
  for _ in range(5):
    ts = env.step(actions)
  assert env.raw()['right_team'][3, 0] < x0 - 0.02
  assert ts.reward.shape == (10,)
  # The default (one team) is unchanged.
  assert registry.make_env('mini_5v5_small', num_frames=1).observation_spec().shape == (5, 18, 24, 4)
  with pytest.raises(ValueError, match='right_agents'):
    registry.make_env('mini_academy_3v1', right_agents=4)


def test_mini_two_team_rewards_are_zero_sum_on_goals():
  env = registry.make_env('mini_5v5_small', seed=0, num_frames=1, right_agents=4, rewards='scoring',
                          episode_length=400)
  env.reset()
  rng = np.random.default_rng(0)
  total = np.zeros(9)
  for _ in range(400):
    ts = env.step(rng.integers(0, 19, size=9))
    total += ts.reward
    if ts.last():
      break
  info = env.episode_info()
  diff = info['score_home'] - info['score_away']
  np.testing.assert_allclose(total[:5], diff)
  np.testing.assert_allclose(total[5:], -diff)


def _draw(points, hw):
  from rlcv_tf.envs import smm
  out = np.zeros(hw, bool)
  rc = smm.position_to_rc(np.asarray(points), hw)
  out[rc[:, 0], rc[:, 1]] = True
  return out


# ------------------------------------------------------------------------------------------------- loading
def test_resolve_agent_paths(runs, tmp_path):
  run = runs['acnn']
  assert agents_lib.resolve_agent(run).kind == 'saved_model'
  src = agents_lib.resolve_agent(run, prefer='checkpoint')
  assert src.kind == 'checkpoint' and src.config.model == 'acnn' and src.name == 'acnn'
  assert agents_lib.resolve_agent(os.path.join(run, 'checkpoints')).kind == 'checkpoint'
  assert agents_lib.resolve_agent(src.weights).name == 'acnn'
  sm = agents_lib.resolve_agent(os.path.join(run, 'saved_model'))
  assert sm.kind == 'saved_model' and sm.config is not None and sm.name == 'acnn'
  with pytest.raises(agents_lib.AgentLoadError, match='no such file'):
    agents_lib.resolve_agent(str(tmp_path / 'missing'))
  with pytest.raises(agents_lib.AgentLoadError, match='not a run logdir'):
    agents_lib.resolve_agent(str(tmp_path))


def test_saved_model_and_checkpoint_give_the_same_policy(runs):
  a = agents_lib.load_agent(runs['acnn'])
  b = agents_lib.load_agent(runs['acnn'], prefer='checkpoint')
  obs = np.random.default_rng(0).integers(0, 2, size=(2, 5, 18, 24, 16)).astype(np.uint8) * 255
  # As the stand-in's observations are: the team and ball planes (all but every 4th channel) are the same for all
  # agents of a step; the checkpoint-built policy computes them once (networks.shared_entry_conv).
  shared = [c for c in range(16) if c % 4 != 3]
  obs[:, :, :, :, shared] = obs[:, :1, :, :, shared]
  np.testing.assert_allclose(a.logits(obs), b.logits(obs), atol=1e-5)
  w = b.attention(obs)
  assert w.shape == (2, 2, 5, 5)
  np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)
  rng = np.random.default_rng(0)
  greedy = a.act(obs, True, rng)
  np.testing.assert_array_equal(greedy, np.argmax(a.logits(obs), -1))


# ------------------------------------------------------------------------------------------------- playing
def test_vs_builtin_and_agent_vs_agent(runs):
  a = agents_lib.load_agent(runs['acnn'])
  c = agents_lib.load_agent(runs['cnn'], prefer='checkpoint')
  lines = []
  r = evaluation.play_games(a, None, num_games=2, episode_length=SHORT, seed=1, print_fn=lines.append)
  s = r['summary']
  assert r['away'] == 'builtin' and s['games'] == 2 and s['wins'] + s['ties'] + s['losses'] == 2
  assert s['goal_difference'] == s['goals_for'] - s['goals_against']
  assert all(g['length'] == SHORT for g in r['games'])
  assert len(lines) == 2 and 'W/T/L' in lines[-1]
  again = evaluation.play_games(a, None, num_games=2, episode_length=SHORT, seed=1, print_fn=lambda s: None)
  assert again['games'][0]['score_home'] == r['games'][0]['score_home'], 'seeded evaluation repeats'
  vs = evaluation.play_games(a, c, num_games=1, episode_length=SHORT, greedy=True, print_fn=lambda s: None)
  assert vs['env_kwargs']['right_agents'] == 5 and vs['away'] == 'cnn' and vs['greedy']
  json.dumps(vs)
  with pytest.raises(ValueError, match='two-team'):
    evaluation.play_games(a, c, num_games=1, env_name='mini_academy_3v1', print_fn=lambda s: None)


class _SpyEnv:
  """Passes everything to the environment, keeping each game's (observation, positions) of the home agents."""

  def __init__(self, env, num_home):
    self.env, self.num_home, self.games = env, num_home, []

  def __getattr__(self, name):
    return getattr(self.env, name)

  def _keep(self, ts):
    self.games[-1].append((ts.observation[:self.num_home].copy(), self.env.agent_positions()[:self.num_home]))

  def reset(self):
    ts = self.env.reset()
    self.games.append([])
    self._keep(ts)
    return ts

  def step(self, actions):
    ts = self.env.step(actions)
    if not ts.last():            # replays hold no terminal observation
      self._keep(ts)
    return ts


def test_games_are_recorded_as_replays_of_the_home_agents_for_pretraining(runs, tmp_path, monkeypatch):
  from rlcv_tf.marl import pretraining  # pylint: disable=g-import-not-at-top
  from rlcv_tf.marl import replays  # pylint: disable=g-import-not-at-top
  a = agents_lib.load_agent(runs['acnn'])
  c = agents_lib.load_agent(runs['cnn'], prefer='checkpoint')
  d = str(tmp_path / 'replays')
  vs_ai = evaluation.play_games(a, None, num_games=3, episode_length=12, seed=4, print_fn=lambda s: None,
                                record_dir=d, record_every=2)
  assert vs_ai['recorded'] == {'directory': d, 'episodes': 2, 'every': 2}        # games 0 and 2
  spies = []
  make_env = registry.make_env
  monkeypatch.setattr(evaluation.registry, 'make_env',
                      lambda *args, **kw: spies.append(_SpyEnv(make_env(*args, **kw), 5)) or spies[-1])
  vs_agent = evaluation.play_games(a, c, num_games=2, episode_length=12, seed=5, print_fn=lambda s: None,
                                   record_dir=d)
  reader = replays.ReplayReader(d)
  assert len(reader) == 4 and reader.observation_shape == (5, 18, 24, 16) and reader.num_actions == 19
  assert [(e['game'], e['away'], e['source'], e['length']) for e in reader.entries] == [
      (0, 'builtin', 'eval', 12), (2, 'builtin', 'eval', 12), (0, 'cnn', 'eval', 12), (1, 'cnn', 'eval', 12)]
  assert [e['score_home'] for e in reader.entries[2:]] == [g['score_home'] for g in vs_agent['games']]
  # Agent vs agent: the home team's stacked observations and positions, bit for bit (10 agents played).
  assert spies[0].env.num_agents == 10
  for k, game in enumerate(spies[0].games):
    episode = reader.load(2 + k)
    stacked = episode.stacked(np.arange(episode.length))
    assert len(game) == episode.length
    for t, (obs, pos) in enumerate(game):
      np.testing.assert_array_equal(stacked[t], obs, err_msg=f'game {k} step {t}')
      np.testing.assert_array_equal(episode.positions[t], pos)
  # The recorded games pre-train like RL replays.
  cfg = pretraining.PretrainConfig(replay_dir=d, model='cnn', max_steps=2, eval_every=2, batch_size=4,
                                   validation_fraction=0.25, **SMALL_NET)
  res = pretraining.pretrain(cfg, str(tmp_path / 'pre'), print_fn=lambda s: None)
  assert res.steps == 2 and np.isfinite(res.best_val_nll) and len(res.train_episodes) == 3
  # A directory of other observations is refused before any game is played.
  other = replays.GameRecorder(str(tmp_path / 'other'), num_frames=4, num_actions=19)
  other.begin_game()
  other.add_step(np.zeros((2, 4, 5, 8), np.uint8), np.zeros((2, 2)))
  other.end_game()
  with pytest.raises(replays.ReplayError, match='already holds replays'):
    evaluation.play_games(a, None, num_games=1, episode_length=12, print_fn=lambda s: None,
                          record_dir=other.directory)


def test_tournament_table_is_mirror_consistent(runs):
  agents = [agents_lib.load_agent(runs['acnn']), agents_lib.load_agent(runs['cnn'])]
  res = evaluation.tournament(agents, games_per_pair=2, episode_length=SHORT, elo_shuffles=10,
                              print_fn=lambda s: None)
  t = res['table']
  assert t[0][0] is None and sum(t[0][1]) == 2 and sum(t[1][0]) == 2
  assert len(res['matches']) == 2
  # Every game is counted once: the ELO sum falls by k per game (thesis scoring).
  assert sum(res['elo']['single_shuffle'].values()) == pytest.approx(2000 - 16 * 4, abs=0.5)
  # Goals for one agent's home games are the other's goals against in its away games.
  assert res['goals']['acnn']['for'] == res['goals']['cnn']['against']
  text = evaluation.format_table(res)
  assert 'acnn' in text and 'ELO' in text


# ------------------------------------------------------------------------------------------------ launchers
def _launch(module, *args, timeout=240):
  return subprocess.run([sys.executable, '-m', module, *args], cwd=ROOT, capture_output=True, text=True,
                        timeout=timeout)


def test_eval_launcher_end_to_end(runs, tmp_path):
  out = tmp_path / 'eval.json'
  rec = tmp_path / 'replays'
  proc = _launch('launchers.marl_eval', f'--agent={runs["acnn"]}', f'--opponent={runs["cnn"]}', '--games=1',
                 f'--episode_length={SHORT}', '--greedy', f'--output={out}', f'--record_dir={rec}')
  assert proc.returncode == 0, proc.stderr
  res = json.loads(out.read_text())
  assert res['summary']['games'] == 1 and res['away'] == 'cnn'
  assert '[eval]' in proc.stdout and f'--replay_dir={rec}' in proc.stdout
  index = json.loads((rec / 'index.json').read_text())
  assert [(e['home'], e['away'], e['num_agents'], e['length']) for e in index['episodes']] == [
      ('acnn', 'cnn', 5, SHORT)]


@pytest.mark.parametrize('module,args,needle', [
    ('launchers.marl_eval', ['--agent=/nonexistent/run'], '/nonexistent/run'),
    ('launchers.marl_eval', ['--agent=RUN', '--games=0'], '--games=0'),
    ('launchers.marl_eval', ['--agent=RUN', '--env=nope'], '--env=nope'),
    ('launchers.marl_eval', ['--agent=RUN', '--prefer=onnx'], '--prefer=onnx'),
    ('launchers.marl_eval', [], '--agent'),
    ('launchers.marl_eval', ['--agent=RUN', '--record_every=0'], '--record_every=0'),
    ('launchers.marl_eval', ['--agent=RUN', '--record_dir=RUN/config.json'], 'not a directory'),
    ('launchers.marl_tournament', ['--agents=RUN'], 'at least two'),
    ('launchers.marl_tournament', ['--agents=RUN,/nonexistent/x'], '/nonexistent/x'),
    ('launchers.marl_tournament', ['--agents=RUN,RUN2', '--elo_scoring=fide'], '--elo_scoring=fide'),
])
def test_launchers_bad_flags_give_one_line(runs, module, args, needle):
  args = [a.replace('RUN2', runs['cnn']).replace('RUN', runs['acnn']) for a in args]
  proc = _launch(module, *args, timeout=120)
  assert proc.returncode == 2, (proc.stdout, proc.stderr)
  assert needle in marl_test_helpers.error_line(proc)


@pytest.mark.slow
def test_tournament_launcher_end_to_end(runs, tmp_path):
  out = tmp_path / 'tour'
  proc = _launch('launchers.marl_tournament', f'--agents=a={runs["acnn"]},c={runs["cnn"]}', '--games=1',
                 f'--episode_length={SHORT}', '--elo_shuffles=20', f'--output_dir={out}')
  assert proc.returncode == 0, proc.stderr
  res = json.loads((out / 'tournament.json').read_text())
  assert res['agents'] == ['a', 'c'] and sum(res['table'][0][1]) == 1
  assert 'ELO' in (out / 'table.txt').read_text() and '[tournament] done' in proc.stdout
