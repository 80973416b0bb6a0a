"""Chapter 2's replay-based trainers (rlcv_tf/stochastic_ac/offpolicy_training.py) on the real engines: thesis
defaults; rollouts of real environments fed into the replay memory (pendulum's time limits, CartPole's
terminations); the OU process and the categorical sampler against their closed forms; parameter-noise adaptation
against a NumPy distance; DDPG on BipedalWalker and ACER (SACER, NN-ACER) on CarRacing / cartpole_masked end to end
with resume, save-on-signal and SavedModel round trips; and a learning check that can fail: SDDPG on `pendulum`
must clearly beat a uniformly random policy on held-out seeds."""

import dataclasses
import json
import os
import signal

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from rlcv_tf.core import runs
from rlcv_tf.envs import registry
from rlcv_tf.runtime import pools
from rlcv_tf.runtime import replay
from rlcv_tf.runtime import sync_rollouts
from rlcv_tf.stochastic_ac import acer
from rlcv_tf.stochastic_ac import config as config_lib
from rlcv_tf.stochastic_ac import ddpg
from rlcv_tf.stochastic_ac import offpolicy_training as ot


def test_thesis_defaults_and_bad_settings():
  a = ot.make_config('car_racing', 'sacer').validate()
  assert (a.num_envs, a.unroll_length, a.replay_capacity, a.replay_start, a.replay_ratio) == (8, 20, 15_000, 5_000, 1)
  assert (a.truncation, a.trust_region_delta, a.average_decay, a.printed_algorithm) == (10, 1, 0.99, False)
  assert (a.learning_rate, a.adam_epsilon, a.grad_clip_norm, a.gamma, a.entropy_weight, a.log_var) == \
      (5e-4, 1e-3, 40, 0.95, 0.01, -6)
  assert ot.make_config('car_racing', 'acer', 'thesis').total_frames == 10_000 * 8 * 20
  d = ot.make_config('bipedal_walker', 'sddpg').validate()
  assert (d.batch_size, d.learning_rate, d.log_var, d.layer_norm) == (128, 5e-4, -5, True)
  assert (d.pn_initial_stddev, d.pn_desired_distance, d.pn_adaptation) == (0.05, 0.3, 1.05)
  assert (d.gamma, d.tau, d.ou_theta, d.ou_sigma, d.replay_capacity) == (0.99, 0.001, 0.15, 0.2, 1_000_000)
  for bad, match in ((dict(num_envs=0), 'num_envs'), (dict(total_frames=-5), 'total_frames'),
                     (dict(log_var=float('nan')), 'log_var'), (dict(replay_start=20_000), 'replay_start'),
                     (dict(offpolicy_noise='new'), 'offpolicy_noise')):
    with pytest.raises(ValueError, match=match):
      ot.make_config('car_racing', 'acer', **bad).validate()
  with pytest.raises(ValueError, match='warmup'):
    ot.make_config('bipedal_walker', 'ddpg', warmup=0).validate()
  with pytest.raises(ValueError, match='model'):
    ot.make_config('car_racing', 'a3c')
  with pytest.raises(ValueError, match='model'):
    ot.ACERConfig(model='ddpg').validate()
  with pytest.raises(TypeError, match='tau'):
    ot.make_config('car_racing', 'acer', tau=0.1)
  # From the launcher's config: ACER takes the shared Seaquest fields, DDPG keeps its own gamma.
  run_cfg = config_lib.make_config('car_racing', 'nn_acer', num_envs=4, total_frames=123)
  got = ot.from_run_config(run_cfg, replay_start=100)
  assert isinstance(got, ot.ACERConfig) and (got.num_envs, got.total_frames, got.replay_start) == (4, 123, 100)
  got = ot.from_run_config(config_lib.make_config('bipedal_walker', 'sddpg', total_frames=77))
  assert isinstance(got, ot.DDPGConfig) and (got.total_frames, got.gamma, got.num_envs) == (77, 0.99, 1)



@pytest.mark.parametrize('change,message', [
    (dict(envs_per_actor=0), 'envs_per_actor: must be an integer >= 1, got 0'),
    (dict(validation_episodes=20_000), 'validation_episodes: at most 10000, got 20000'),
    (dict(eval_max_steps=-1), 'eval_max_steps: must be an integer >= 0, got -1'),
    (dict(checkpoint_interval_s=0.0), 'checkpoint_interval_s: must be a finite number > 0, got 0.0'),
    (dict(log_interval_s=float('nan')), 'log_interval_s: must be a finite number >= 0, got nan'),
    (dict(backend='mpi'), "backend: unknown value 'mpi'; valid values: local, ray"),
])
def test_run_settings_are_one_definition_for_every_trainer(change, message):
  """The run-level fields (validation, runtime, checkpoints, logging) are `config.RunSettings`'s in the A3C config
  and both off-policy configs: the same names, and the same check with the same message for a bad value; zero
  intervals and timeouts (every iteration; no actor time limit) are valid in all three."""
  run_fields = {f.name for f in dataclasses.fields(config_lib.RunSettings)}
  configs = (config_lib.make_config('car_racing', 'acer'), ot.make_config('car_racing', 'acer'),
             ot.make_config('bipedal_walker', 'ddpg'))
  for cfg in configs:
    assert isinstance(cfg, config_lib.RunSettings) and run_fields <= {f.name for f in dataclasses.fields(cfg)}
    with pytest.raises(ValueError) as e:
      dataclasses.replace(cfg, **change).validate()
    assert str(e.value) == message
    dataclasses.replace(cfg, log_interval_s=0.0, summary_interval_s=0.0, actor_timeout_s=0.0).validate()


def test_ornstein_uhlenbeck_moments():
  """x <- (1 - theta) x + sigma N(0, 1): stationary variance sigma^2 / (1 - (1 - theta)^2), lag-1 correlation
  1 - theta."""
  ou = ot.OrnsteinUhlenbeck((4000, 1), 0.15, 0.2, np.random.default_rng(0))
  for _ in range(100):      # burn-in: (0.85)^100 ~ 1e-7
    ou.sample()
  xs = np.stack([ou.sample() for _ in range(50)])[..., 0]      # [50, 4000]
  var = 0.04 / (1 - 0.85 ** 2)
  assert abs(xs.var() - var) < 0.03 * var
  corr = np.mean(xs[1:] * xs[:-1]) / xs.var()
  assert abs(corr - 0.85) < 0.01
  ou.reset(np.arange(4000) < 10)
  assert np.all(ou.x[:10] == 0) and np.all(ou.x[10:] != 0)


def test_categorical_sampler_and_action_scaling():
  rng = np.random.default_rng(1)
  probs = np.array([[0.1, 0.6, 0.3, 0.0]] * 60_000)
  draws = ot.sample_categorical(probs, rng)
  counts = np.bincount(draws, minlength=4)
  assert counts[3] == 0
  assert stats.chisquare(counts[:3], 60_000 * probs[0, :3]).pvalue > 1e-3
  low, high = np.array([-2.0, 0.0], np.float32), np.array([2.0, 1.0], np.float32)
  a = rng.uniform(-1, 1, size=(50, 2)).astype(np.float32)
  env_a = ot.scale_actions(a, low, high)
  assert np.all(env_a >= low) and np.all(env_a <= high)
  np.testing.assert_allclose(env_a[:, 0], 2 * a[:, 0], atol=1e-6)
  np.testing.assert_allclose(ot.unscale_actions(env_a, low, high), a, atol=1e-6)
  assert ot._solved_at([0] * 9 + [300] * 9 + [3000]) == 19 and ot._solved_at([299.0] * 30) is None


def _collect(name, num_envs, num_frames, iterations, steps, act):
  cfgs = sync_rollouts.actor_configs(name, num_envs, seed=5, num_frames=num_frames)
  with sync_rollouts.SyncRollouts(pools.make_pool(cfgs, runtime='inline'), steps) as rollouts:
    counter = {'t': 0}

    def policy(obs, state, first):
      counter['t'] += 1
      return act(obs, counter['t']), state, {}
    return [rollouts.collect(policy) for _ in range(iterations)]


@pytest.mark.parametrize('name,num_frames', [('pendulum', 4), ('cartpole_masked', 3)])
def test_rollouts_into_the_replay_memory(name, num_frames):
  """Every applied action of real rollouts becomes one transition whose stacked observations are the rollout's
  o_t and o_{t+1}: across pendulum's 200-step time limits (bootstrap-only steps store nothing) and CartPole's
  terminations (discount 0 into the next episode's first observation)."""
  if name == 'pendulum':
    act = lambda obs, t: np.clip(-1.5 * obs[:, 2, -1:] + np.sin(0.3 * t), -2, 2).astype(np.float32)
  else:
    act = lambda obs, t: ((obs[:, 1, -1] > 0) ^ (t % 5 == 0)).astype(np.int32)
  rollouts = _collect(name, 2, num_frames, 45, 10, act)
  obs_shape = rollouts[0].observations.shape[2:]
  c = obs_shape[-1] // num_frames
  action_shape = rollouts[0].actions.shape[2:]
  memory = replay.TransitionReplay(10_000, obs_shape[:-1] + (c,), np.float32, num_frames=num_frames,
                                   action_shape=action_shape, action_dtype=rollouts[0].actions.dtype, num_streams=2)
  expected = []
  for i, r in enumerate(rollouts):
    ot.store_transitions(memory, r, c, begin=i == 0)
    for t in range(r.num_steps):
      for e in range(2):
        if not r.bootstrap_only[t, e]:
          expected.append((r.observations[t, e].tobytes(), np.asarray(r.actions[t, e]).tobytes(),
                           float(r.rewards[t, e]), float(r.discounts[t, e]),
                           r.observations[t + 1, e].tobytes() if r.discounts[t, e] > 0 else b''))
  boots = sum(int(r.bootstrap_only.sum()) for r in rollouts)
  terminals = sum(x[3] == 0 for x in expected)
  assert (boots > 0) if name == 'pendulum' else (terminals > 0)
  assert memory.num_transitions == len(expected) == sum(r.agent_steps for r in rollouts)
  got = memory.get(memory.sampleable_ids())
  stored = [(got['observation'][j].tobytes(), got['action'][j].tobytes(), float(got['reward'][j]),
             float(got['discount'][j]), got['next_observation'][j].tobytes() if got['discount'][j] > 0 else b'')
            for j in range(len(got['id']))]
  assert sorted(stored) == sorted(expected)


def _small_pn_learner(desired):
  cfg = ot.make_config('bipedal_walker', 'pn_ddpg', hidden=(32, 16), stochastic_units=8,
                       pn_desired_distance=desired)
  return ot.DDPGLearner(cfg, (24, 4), 4)


def test_param_noise_adaptation_against_numpy():
  """The distance is sqrt(mean (mu(s) - mu~(s))^2) of the actor and a copy whose Dense kernels and biases got
  N(0, sigma^2) (conv encoder untouched), and sigma moves by x1.05 below the threshold, /1.05 above it."""
  rng = np.random.default_rng(2)
  obs = rng.normal(size=(64, 24, 4)).astype(np.float32)
  learner = _small_pn_learner(desired=0.3)
  before = {v.path: v.numpy() for v in learner.actor.weights}
  dense_paths = {v.path.replace('actor', 'adaptive_actor', 1) for layer in learner.actor.dense_layers()
                 for v in (layer.kernel, layer.bias)}
  distance = learner.adapt_param_noise(obs, np.random.default_rng(7))
  # NumPy: the same draws, in the same order, added to a copy of the weights.
  reference = ddpg.clone_actor(learner.actor, 'reference')
  draw = np.random.default_rng(7)
  for layer in reference.dense_layers():
    for var in (layer.kernel, layer.bias):
      var.assign(var.numpy() + draw.normal(0.0, 0.05, size=tuple(var.shape)).astype(np.float32))
  mu, mu_tilde = learner.actor(obs).numpy(), reference(obs).numpy()
  assert distance == pytest.approx(float(np.sqrt(np.mean((mu - mu_tilde) ** 2))), rel=1e-4)
  assert float(learner.pn_stddev.numpy()) == pytest.approx(0.05 * 1.05 if distance <= 0.3 else 0.05 / 1.05)
  for v in learner.adaptive.weights:
    if v.path not in dense_paths:
      np.testing.assert_array_equal(v.numpy(), before[v.path.replace('adaptive_actor', 'actor', 1)])
  for desired, factor in ((1e9, 1.05), (1e-9, 1 / 1.05)):
    learner = _small_pn_learner(desired)
    for _ in range(3):
      learner.adapt_param_noise(obs, rng)
    assert float(learner.pn_stddev.numpy()) == pytest.approx(0.05 * factor ** 3)


def _restored_actor(logdir, model, observation_shape, action_dim, **net):
  actor, _ = ddpg.build_networks(model, action_dim, observation_shape, **net)
  tf.train.Checkpoint(actor=actor).restore(tf.train.latest_checkpoint(os.path.join(logdir, 'checkpoints'))
                                           ).expect_partial()
  return actor


@pytest.mark.slow   # 21-70 s on the 2-core machine, depending on its load
def test_ddpg_on_bipedal_walker_end_to_end_resume_and_saved_model(tmp_path):
  logdir = str(tmp_path / 'pn')
  cfg = ot.make_config('bipedal_walker', 'pn_ddpg', total_frames=240, warmup=64, batch_size=32,
                       replay_capacity=5_000, log_interval_s=2.0, validate_every_frames=200, validation_episodes=2,
                       eval_max_steps=40)
  lines = []
  result = ot.train(cfg, logdir, print_fn=lines.append)
  assert result.frames == 240 and result.updates == 240 - 64 + 1
  assert result.diagnostics['pn_stddev'] != pytest.approx(0.05)        # adapted 3 times
  assert any('agent steps 240/240' in line and 'PN sigma' in line for line in lines)
  assert [f for f, _ in result.validations] == [200]
  assert any(line.startswith('[pn_ddpg] validation at 200 agent steps') and 'over 2 held-out episodes (map' in line
             for line in lines)
  with open(os.path.join(logdir, 'best', 'best.json')) as f:
    assert json.load(f)['agent_steps'] == 200
  for name in ('config.json', 'config_history.jsonl', 'replay.npz', 'saved_model', 'checkpoints'):
    assert os.path.exists(os.path.join(logdir, name)), name
  assert any(f.startswith('events.') for f in os.listdir(logdir))
  with open(os.path.join(logdir, 'config.json')) as f:
    assert json.load(f)['model'] == 'pn_ddpg'
  # SavedModel: MAP actor in the environment's units ([-1, 1] on BipedalWalker), equal to the checkpoint's actor.
  served = tf.saved_model.load(result.saved_model).signatures['serve']
  obs = np.random.default_rng(3).normal(size=(5, 24, 4)).astype(np.float32)
  out = served(observation=tf.constant(obs))
  actor = _restored_actor(logdir, 'pn_ddpg', (24, 4), 4)
  np.testing.assert_allclose(out['action_normalized'].numpy(), actor(obs).numpy(), atol=1e-5)
  np.testing.assert_allclose(out['action'].numpy(), out['action_normalized'].numpy(), atol=1e-6)
  # Resume with a larger budget: counters, replay memory and settings carry over.
  lines.clear()
  result = ot.train(dataclasses_replace(cfg, total_frames=400), logdir, print_fn=lines.append)
  assert any('resumed from' in line and '240 agent steps' in line for line in lines)
  assert any('restored the replay memory (240 transitions)' in line for line in lines)
  assert result.frames == 400 and result.updates == 400 - 64 + 1
  assert [f for f, _ in result.validations] == [400]
  with open(os.path.join(logdir, 'config_history.jsonl')) as f:
    assert '"total_frames"' in f.readlines()[-1]
  with pytest.raises(ot.ResumeMismatchError, match='model'):
    ot.train(dataclasses_replace(cfg, model='sddpg'), logdir, print_fn=lines.append)


def dataclasses_replace(cfg, **changes):
  import dataclasses  # pylint: disable=g-import-not-at-top
  return dataclasses.replace(cfg, **changes)


def test_signal_saves_then_rerun_resumes(tmp_path):
  logdir = str(tmp_path / 'sd')
  cfg = ot.make_config('pendulum', 'sddpg', 'pendulum_check', total_frames=150, warmup=32, batch_size=16,
                       log_interval_s=1e-3, save_replay=True)
  sent = []

  def print_fn(line):
    if 'agent steps' in line and not sent:
      sent.append(line)
      os.kill(os.getpid(), signal.SIGINT)

  with pytest.raises(runs.Interrupted):
    ot.train(cfg, logdir, print_fn=print_fn)
  assert tf.train.latest_checkpoint(os.path.join(logdir, 'checkpoints'))
  assert os.path.exists(os.path.join(logdir, 'saved_model', 'saved_model.pb'))
  saved = replay.load(os.path.join(logdir, 'replay.npz'))
  stopped_at = int(saved['saved_at_agent_steps'])
  assert 0 < stopped_at < 150
  lines = []
  result = ot.train(cfg, logdir, print_fn=lines.append)
  assert result.frames == 150 and any(f'at {stopped_at:,} agent steps' in line for line in lines)


@pytest.mark.slow   # 15-60 s on the 2-core machine, depending on its load
def test_acer_family_on_car_racing_end_to_end_with_saved_model(tmp_path):
  """SACER on CarRacing, the thesis encoder: on-policy updates replay the acting noise from the stored LSTM state
  (rho = 1), off-policy updates start once the memory holds replay_start transitions, and the SavedModel's MAP
  outputs (with Q-values) equal the checkpoint's network."""
  logdir = str(tmp_path / 'sacer')
  net = dict(lstm_units=32, fc_units=32)
  cfg = ot.make_config('car_racing', 'sacer', num_envs=2, unroll_length=5, total_frames=200, replay_capacity=100,
                       replay_start=30, log_interval_s=5.0, validate_every_frames=100, validation_episodes=2,
                       eval_max_steps=10, **net)
  lines = []
  result = ot.train(cfg, logdir, print_fn=lines.append)
  assert result.frames == 200 and result.iterations == 20
  assert [f for f, _ in result.validations] == [100, 200]
  assert any('validation at 100 agent steps' in line and '(vote-5' in line for line in lines)
  assert result.diagnostics['onpolicy_rho_max_error'] < 1e-4
  assert result.diagnostics['offpolicy_updates'] > 0
  assert result.updates == 20 + result.diagnostics['offpolicy_updates']
  assert all(np.isfinite(result.losses))
  loaded = tf.saved_model.load(result.saved_model)
  env = registry.make_env('car_racing', seed=9)
  obs = np.concatenate([env.reset().observation, env.step(np.array([4])).observation])    # [2, 80, 80, 1]
  env.close()
  state = loaded.signatures['initial_state'](batch_size=tf.constant(2))
  assert state['h'].shape == (2, 32) and not np.any(state['h'].numpy())
  out = loaded.signatures['serve'](observation=tf.constant(obs), h=state['h'], c=state['c'],
                                   num_samples=tf.constant(5))
  assert out['q_values'].shape == (2, 12)
  probs = tf.nn.softmax(out['policy_logits']).numpy()
  np.testing.assert_allclose(out['value'].numpy(), np.sum(probs * out['q_values'].numpy(), -1), rtol=1e-5,
                             atol=1e-5)
  network = acer.build_network('sacer', 12, (80, 80, 1), **net)
  tf.train.Checkpoint(network=network).restore(
      tf.train.latest_checkpoint(os.path.join(logdir, 'checkpoints'))).expect_partial()
  step = network.step(obs, network.initial_state(2), mode='map')
  np.testing.assert_allclose(out['policy_logits'].numpy(), step.logits.numpy(), atol=1e-4)
  np.testing.assert_allclose(out['q_values'].numpy(), step.extras['q_values'].numpy(), atol=1e-4)
  np.testing.assert_allclose(out['h'].numpy(), step.state['h'].numpy(), atol=1e-5)


def test_nn_acer_printed_algorithm_stored_noise_and_resume(tmp_path):
  """NN-ACER with the printed Alg. 4/5 and stored off-policy noise on cartpole_masked (a small LSTM): rho = 1
  on-policy, off-policy updates run, and a re-run resumes the counters and the replay memory."""
  logdir = str(tmp_path / 'nn')
  cfg = ot.make_config('cartpole_masked', 'nn_acer', num_envs=4, unroll_length=10, total_frames=400,
                       replay_capacity=400, replay_start=80, encoder='mlp', lstm_units=16, fc_units=16,
                       printed_algorithm=True, offpolicy_noise='stored', log_interval_s=5.0,
                       validate_every_frames=200, validation_episodes=2, eval_max_steps=50)
  first = ot.train(cfg, logdir, print_fn=lambda line: None)
  assert first.frames == 400 and first.diagnostics['onpolicy_rho_max_error'] < 1e-4
  assert [f for f, _ in first.validations] == [200, 400]
  assert os.path.exists(os.path.join(logdir, 'best', 'best.json'))
  assert first.diagnostics['offpolicy_updates'] > 0 and first.episodes
  lines = []
  second = ot.train(dataclasses_replace(cfg, total_frames=600), logdir, print_fn=lines.append)
  assert second.frames == 600 and second.iterations == 15
  assert any('restored the replay memory (400 transitions)' in line for line in lines)
  with pytest.raises(ot.ResumeMismatchError, match='lstm_units'):
    ot.train(dataclasses_replace(cfg, lstm_units=32), logdir, print_fn=lines.append)


# ------------------------------------------------------------------------------------------- learning check

def _play(act, seeds):
  returns = []
  for seed in seeds:
    env = registry.make_env('pendulum', seed=seed)
    ts, total = env.reset(), 0.0
    while not ts.last():
      ts = env.step(act(ts.observation))
      total += float(ts.reward[0])
    returns.append(total)
  return np.array(returns)


def pendulum_check(logdir, **overrides):
  """Trains SDDPG on pendulum with the `pendulum_check` preset; returns (returns of the best-validated MAP actor,
  returns of uniform torques in [-2, 2]) on the protocol's 10 test seeds (never trained or validated on)."""
  cfg = ot.make_config('pendulum', 'sddpg', 'pendulum_check', log_interval_s=30.0, **overrides)
  ot.train(cfg, logdir, print_fn=lambda line: None)
  actor, _ = ddpg.build_networks('sddpg', 1, (3, 4), **cfg.network_kwargs())
  tf.train.Checkpoint(actor=actor).read(os.path.join(logdir, 'best', 'ckpt')).expect_partial()
  seeds = config_lib.test_seeds(10)
  trained = _play(lambda obs: ot.scale_actions(actor(obs).numpy(), -2.0, 2.0), seeds)
  rng = np.random.default_rng(0)
  uniform = _play(lambda obs: rng.uniform(-2, 2, size=(1, 1)).astype(np.float32), seeds)
  return trained, uniform


@pytest.mark.slow   # 63-80 s on the 2-core machine
def test_sddpg_learns_pendulum(tmp_path):
  trained, uniform = pendulum_check(str(tmp_path / 'check'))
  print(f'SDDPG pendulum: best-validated MAP actor {trained.mean():.0f} {np.round(trained)}, random '
        f'{uniform.mean():.0f}')
  assert trained.mean() > uniform.mean() + 400
