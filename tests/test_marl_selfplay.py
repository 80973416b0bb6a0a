"""Self-play (thesis App. 4.C; spec ch4 §3.6): mixed self-play trains on the right-team agents it drives as a
second attention group; fixed self-play plays frozen saved agents, one drawn per episode, and trains the home
team only. Engine-level checks of gfootball's k-agent right team are in test_grf_two_team.py."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import marl_test_helpers
from rlcv_tf.envs import registry
from rlcv_tf.marl import agents as agents_lib
from rlcv_tf.marl import config as config_lib
from rlcv_tf.marl import evaluation
from rlcv_tf.marl import learner as learner_lib
from rlcv_tf.marl import selfplay
from rlcv_tf.marl import training
from rlcv_tf.runtime import actors as actors_lib
from rlcv_tf.runtime import inference as inference_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(stack_channels=((4, 1),), feature_dim=16)


def tiny_config(**kw):
  base = dict(env='mini_5v5_small', model='acnn', env_kwargs={'episode_length': 40}, total_frames=240,
              num_actors=2, batch_size=2, unroll_length=20, log_interval_s=60.0, **TINY)
  base.update(kw)
  return config_lib.MarlConfig(**base)


# ------------------------------------------------------------------------------------------------ environment
def test_stand_in_hands_k_right_field_players_to_the_caller():
  env = registry.make_env('mini_5v5_small', seed=1, num_frames=2, num_agents=4, right_agents=2)
  ts = env.reset()
  assert env.team_sizes == (4, 2) and env.num_agents == 6        # FrameStack forwards team_sizes
  assert ts.observation.shape == (6, 18, 24, 8)
  raw = env.unwrapped.raw()
  x0 = raw['right_team'][1][0]
  actions = np.zeros(6, np.int32)
  actions[4] = 5                 # right agent 0 = right player 1: 'right' in its own view is world -x
  for _ in range(10):
    ts = env.step(actions)
  assert env.unwrapped.raw()['right_team'][1][0] < x0 - 0.02
  assert ts.reward.shape == (6,)
  with pytest.raises(ValueError, match='right_agents'):
    registry.make_env('mini_5v5_small', right_agents=6)


def test_effective_env_kwargs_follow_the_opponent():
  assert tiny_config().effective_env_kwargs == {'episode_length': 40}
  mixed = tiny_config(opponent='selfplay_mixed', selfplay_agents=1).effective_env_kwargs
  assert mixed == {'episode_length': 40, 'num_agents': 4, 'right_agents': 1}
  fixed = tiny_config(opponent='selfplay_fixed', opponent_agents=('x',), env_kwargs={'num_agents': 5})
  assert fixed.effective_env_kwargs == {'num_agents': 5, 'right_agents': 4}


@pytest.mark.parametrize('kw,needle', [
    (dict(opponent='league'), 'opponent: unknown value'),
    (dict(opponent='selfplay_mixed', env='mini_academy_3v1'), 'two-team control'),
    (dict(opponent='selfplay_mixed', selfplay_agents=5), 'selfplay_agents'),
    (dict(opponent='selfplay_fixed'), 'opponent_agents: opponent=selfplay_fixed needs'),
    (dict(opponent_agents=('a',)), 'only used by opponent=selfplay_fixed'),
    (dict(env_kwargs={'right_agents': 2}), 'right_agents is set by the opponent'),
])
def test_bad_opponent_settings_are_named(kw, needle):
  with pytest.raises(ValueError, match=needle):
    tiny_config(**kw).validate()


# --------------------------------------------------------------------------------------- learner: two groups
def _obs(rng, b, n):
  return rng.integers(0, 256, size=(b, n, 18, 24, 8)).astype(np.uint8)


def test_groups_attend_only_within_their_team():
  cfg = tiny_config(opponent='selfplay_mixed', selfplay_agents=2)
  learner = learner_lib.Learner(cfg, (6, 18, 24, 8), 19, agent_groups=(4, 2))
  obs = _obs(np.random.default_rng(0), 3, 6)
  grouped = learner._forward(tf.constant(obs), training=False)['policy_logits'].numpy()
  home = learner.model(obs[:, :4])['policy_logits'].numpy()
  away = learner.model(obs[:, 4:])['policy_logits'].numpy()
  np.testing.assert_allclose(grouped, np.concatenate([home, away], axis=1), atol=1e-5)
  # The test can fail: one pass over all 6 agents lets the teams attend to each other and changes the logits.
  mixed = learner.model(obs)['policy_logits'].numpy()
  assert np.abs(mixed - grouped).max() > 1e-4
  with pytest.raises(ValueError, match='add up'):
    learner_lib.Learner(cfg, (6, 18, 24, 8), 19, agent_groups=(4, 1))


def _unroll_batch(opponent_reward):
  batch = marl_test_helpers.synthetic_unroll_batch((6, 18, 24, 8), t1=6, b=2, seed=7)
  batch['reward'][:] = 0.0
  batch['reward'][:, :, 4:] = opponent_reward     # only the right-team agents are rewarded
  return batch


def test_opponent_group_rewards_reach_the_gradient():
  """Spec test 30: the loss includes the opponent group's terms. Two identical learners updated on batches that
  differ only in the right-team agents' rewards end with different weights."""
  cfg = tiny_config(opponent='selfplay_mixed', selfplay_agents=2, seed=3)
  weights = []
  for reward in (0.0, 1.0):
    learner = learner_lib.Learner(cfg, (6, 18, 24, 8), 19, agent_groups=(4, 2))
    learner.train(_unroll_batch(reward))
    weights.append([v.numpy() for v in learner.model.trainable_variables])
  assert max(np.abs(a - b).max() for a, b in zip(*weights)) > 1e-6


# ------------------------------------------------------------------------------------------ frozen opponents
class _ConstantPolicy:
  """Stands in for agents.Policy: always plays action `action` (so the test sees who acted)."""

  def __init__(self, name, action):
    self.name = name
    self.action = action
    self.calls = 0

  def act(self, observations, greedy, rng):
    self.calls += 1
    return np.full(observations.shape[:2], self.action, np.int32)


def _step(actor_id, done=False, run_id=0, episode=None):
  return actors_lib.EnvStep(actor_id, run_id, None, np.zeros(8, np.float32), done, None, episode)


def test_frozen_opponents_draw_one_policy_per_episode_and_label_it():
  policies = [_ConstantPolicy('v1', 3), _ConstantPolicy('v2', 7)]
  opp = selfplay.FrozenOpponents(policies, num_agents=4, seed=0)
  obs = np.zeros((2, 4, 1, 1, 1), np.uint8)
  a = opp.act([_step(0), _step(1)], obs)
  first = [opp.current(0), opp.current(1)]
  assert a.shape == (2, 4)
  assert [{3: 'v1', 7: 'v2'}[int(a[k, 0])] for k in range(2)] == first
  # Mid-episode steps keep the opponent; one batched call per policy in use.
  calls = sum(p.calls for p in policies)
  opp.act([_step(0), _step(1)], obs)
  assert [opp.current(0), opp.current(1)] == first
  assert sum(p.calls for p in policies) - calls == len(set(first))
  # The step that ends an episode labels it with the opponent that played it, then draws again.
  labels = []
  for _ in range(400):
    episode = {'return': np.zeros(8)}
    before = opp.current(0)
    opp.act([_step(0, done=True, episode=episode)], obs[:1])
    assert episode['opponent'] == before
    labels.append(before)
  counts = [labels.count('v1'), labels.count('v2')]
  assert min(counts) > 150, counts           # uniform draws: 200 +- 10 each
  # A restarted actor (new run id) draws afresh and does not label the old process's episode.
  episode = {'return': np.zeros(8)}
  opp.act([_step(0, done=True, run_id=1, episode=episode)], obs[:1])
  assert 'opponent' not in episode


class _ScriptedPool(actors_lib.ActorPool):
  """One actor whose env has 2 home and 3 opponent agents; records the joint actions it is sent."""

  def __init__(self, steps):
    self._steps = list(steps)
    self.sent = []

  @property
  def num_actors(self):
    return 1

  def start(self):
    pass

  def receive(self, timeout):
    return [self._steps.pop(0)] if self._steps else []

  def send_actions(self, actor_ids, actions):
    self.sent.append(np.asarray(actions).copy())

  def close(self):
    pass


def test_inference_trains_on_home_agents_and_sends_the_opponents_actions():
  n_home, n_opp, t = 2, 3, 3
  steps = []
  for i in range(t + 1):
    obs = np.full((n_home + n_opp, 2, 2, 1), i, np.uint8)
    obs[n_home:] += 100                                   # opponents' observations are told apart
    steps.append(actors_lib.EnvStep(0, 0, obs, np.arange(5, dtype=np.float32) + i, False,
                                    np.zeros((5, 2), np.int32)))
  pool = _ScriptedPool(steps)
  seen = []

  def infer(obs):
    seen.append(obs.copy())
    return np.ones(obs.shape[:2], np.int32), np.zeros(obs.shape[:2] + (19,), np.float32)

  opponent = selfplay.FrozenOpponents([_ConstantPolicy('v', 9)], n_opp)
  server = inference_lib.InferenceServer(pool, infer, t, max_queued_unrolls=4, min_batch=1, opponent=opponent)
  server.start()
  unroll = server.get_unrolls(1, timeout_s=5.0)[0]
  server.stop()
  assert all(o.shape[1] == n_home and o.max() < 100 for o in seen)      # the trained policy sees home only
  np.testing.assert_array_equal(pool.sent[0], [[1, 1, 9, 9, 9]])         # joint action: home then opponents
  assert unroll['observation'].shape == (t + 1, n_home, 2, 2, 1)
  np.testing.assert_array_equal(unroll['reward'][:, :], np.arange(t + 1)[:, None] + np.arange(n_home))
  assert unroll['action'].shape == (t + 1, n_home)


def test_episode_returns_split_by_team():
  e = selfplay.split_team_returns({'return': np.array([1.0, 2.0, 3.0])}, 2)
  np.testing.assert_array_equal(e['return'], [1.0, 2.0])
  np.testing.assert_array_equal(e['opponent_return'], [3.0])
  scalars = training._episode_scalars([
      {'return': np.array([1.0, 1.0]), 'opponent_return': np.array([0.5]), 'length': 10, 'opponent': 'v1',
       'score_home': 2, 'score_away': 0},
      {'return': np.array([0.0, -1.0]), 'opponent_return': np.array([1.5]), 'length': 10, 'opponent': 'v2',
       'score_home': 0, 'score_away': 1}])
  assert scalars['episode/opponent_return_team'] == 1.0
  assert scalars['opponents/v1/return_team'] == 2.0 and scalars['opponents/v2/goal_difference'] == -1.0


# ------------------------------------------------------------------------------------------------ end to end
def test_mixed_then_fixed_self_play(tmp_path):
  """Makes a self-play AI with mixed self-play (1 right agent trained on), then trains a new agent against it
  and its checkpoint, frozen; every fixed-self-play episode is labelled with the frozen opponent that played it."""
  mixed_dir = str(tmp_path / 'v2')
  r = training.train(tiny_config(opponent='selfplay_mixed', selfplay_agents=1), mixed_dir, print_fn=lambda s: None)
  assert r.frames >= 240 and r.episodes
  assert all(e['return'].shape == (4,) and e['opponent_return'].shape == (1,) for e in r.episodes)
  fixed = tiny_config(model='cnn', opponent='selfplay_fixed', total_frames=320,
                      opponent_agents=(mixed_dir, os.path.join(mixed_dir, 'checkpoints')))
  lines = []
  r = training.train(fixed, str(tmp_path / 'fixed'), print_fn=lines.append)
  assert any('selfplay_fixed: 4 home agents vs 4 right field players' in l for l in lines)
  assert r.episodes and all(e['opponent'] in ('v2_0', 'v2_1') for e in r.episodes)
  assert all(e['return'].shape == (4,) for e in r.episodes)
  assert os.path.isfile(os.path.join(tmp_path, 'fixed', 'saved_model', 'saved_model.pb'))
  # Evaluation plays each side with the players it trained with: 4 field players (goalies built-in).
  home, away = agents_lib.load_agent(str(tmp_path / 'fixed')), agents_lib.load_agent(mixed_dir)
  assert evaluation.evaluation_env(None, home, None)[1] == {'episode_length': 40, 'num_agents': 4}
  assert evaluation.evaluation_env(None, home, away)[1]['right_agents'] == 4
  game = evaluation.play_games(home, away, num_games=1, print_fn=lambda s: None)
  assert game['games'][0]['length'] == 40


def test_an_opponent_for_another_map_is_refused(tmp_path):
  other = str(tmp_path / 'other')
  training.train(tiny_config(env='mini_5v5_small', env_kwargs={'episode_length': 40, 'smm_hw': (12, 16)},
                             total_frames=40, batch_size=1), other, print_fn=lambda s: None)
  with pytest.raises(selfplay.SelfPlayError, match=r'H, W, C = \(12, 16, 16\)'):
    selfplay.load_opponents([other], (18, 24, 16))


def test_launcher_names_a_missing_opponent(tmp_path):
  for args, needle in ((['--opponent=selfplay_fixed'], '--opponent_agents'),
                       (['--opponent=selfplay_fixed', f'--opponent_agents={tmp_path}/nope'], 'no such file')):
    proc = subprocess.run([sys.executable, '-m', 'launchers.marl', '--env=mini_5v5_small', f'--logdir={tmp_path}',
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and needle in marl_test_helpers.error_line(proc), proc.stderr
