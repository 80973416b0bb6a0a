"""Chapter 2 run settings (issue 10 §3, §5; spec ch2 §6): App. 2.E's values per game, the layering of game values,
presets and explicit settings, validation messages, the model/action-space table against the real engines, and
the held-out seeds."""

import dataclasses
import math

import pytest

from rlcv_tf.envs import registry
from rlcv_tf.stochastic_ac import config as config_lib


def test_thesis_values_are_the_defaults():
  c = config_lib.make_config('atari_seaquest', 'sa3c')
  assert (c.learning_rate, c.adam_epsilon, c.adam_beta1, c.adam_beta2) == (5e-4, 1e-3, 0.9, 0.999)   # T:L1716-1717
  assert (c.grad_clip_norm, c.gamma, c.value_weight, c.entropy_weight) == (40.0, 0.95, 5.0, 0.01)    # T:L1717-1721
  assert (c.reward_clip, c.unroll_length, c.gae_lambda, c.kl_weight) == (1.0, 20, 1.0, 1e-4)          # T:L1721-1727
  assert (c.log_var, c.encoder, c.num_samples, c.lstm_units, c.fc_units) == (-6.0, 'default', 5, 512, 512)


@pytest.mark.parametrize('game,log_var,encoder', [
    ('seaquest', -6.0, 'default'), ('beam_rider', -4.0, 'default'), ('ms_pacman', -6.0, 'default'),
    ('boxing', -4.0, 'slim'), ('breakout', -6.0, 'slim'), ('qbert', -4.0, 'default'), ('freeway', -4.0, 'slim')])
def test_per_game_values(game, log_var, encoder):
  c = config_lib.make_config(f'atari_{game}', 'hpa3c')
  assert (c.log_var, c.encoder) == (log_var, encoder)     # T:L1724-1726; T:L1121-1122
  if game == 'freeway':                                    # T:L1718-1724, footnote T:L1194-1195
    assert (c.value_weight, c.reward_clip, c.unroll_length, c.gae_lambda, c.num_samples) == (0.5, None, 30, 0.92, 1)
  else:
    assert (c.value_weight, c.reward_clip, c.unroll_length, c.gae_lambda, c.num_samples) == (5.0, 1.0, 20, 1.0, 5)


def test_thesis_preset_scale_and_explicit_settings_win():
  c = config_lib.make_config('atari_seaquest', 'sa3c', 'thesis')
  assert (c.num_envs, c.total_frames, c.runtime) == (64, 150_000 * 64 * 20, 'actors')     # T:L1706-1707, T:L1727
  assert config_lib.make_config('atari_freeway', 'sa3c', 'thesis').total_frames == 150_000 * 64 * 30
  assert config_lib.make_config('car_racing', 'sacer', 'thesis').num_envs == 8             # T:L1707
  c = config_lib.make_config('atari_seaquest', 'sa3c', 'thesis', num_envs=16, log_var=-5.0)
  assert (c.num_envs, c.total_frames, c.log_var) == (16, 150_000 * 16 * 20, -5.0)
  laptop = config_lib.make_config('atari_seaquest', 'sa3c')
  assert (laptop.num_envs, laptop.total_frames, laptop.runtime) == (8, 20_000, 'inline')
  assert 'preset=thesis' in config_lib.thesis_scale_command(laptop)
  check = config_lib.make_config('cartpole_masked', 'a3c', 'cartpole_check')
  assert (check.encoder, check.lstm_units, check.unroll_length) == ('mlp', 64, 10)
  with pytest.raises(ValueError, match='preset: unknown value'):
    config_lib.make_config('atari_seaquest', 'sa3c', 'huge')
  with pytest.raises(TypeError, match='unknown config fields'):
    config_lib.make_config('atari_seaquest', 'sa3c', bogus=1)


def test_model_names_match_the_network_registries():
  from rlcv_tf.stochastic_ac import a3c, acer, ddpg  # pylint: disable=g-import-not-at-top
  assert config_lib.A3C_MODELS == tuple(a3c.MODELS)
  assert config_lib.ACER_MODELS == tuple(acer.MODELS)
  assert config_lib.DDPG_MODELS == tuple(ddpg.MODELS)
  assert set(config_lib.MAP_EVAL_MODELS) <= set(config_lib.A3C_MODELS)


def test_action_kinds_match_the_engines():
  assert set(config_lib.ACTION_KINDS) == set(registry.names(chapter=2))
  for name, kind in config_lib.ACTION_KINDS.items():
    env = registry.make_env(name, seed=0)
    try:
      assert ('continuous' if env.continuous_actions else 'discrete') == kind, name
    finally:
      env.close()


@pytest.mark.parametrize('change,needle', [
    (dict(env='grf_5v5'), 'env: unknown Chapter 2 environment'),
    (dict(model='sddpg'), 'model: sddpg is a DDPG-family model for continuous actions, but atari_seaquest has '
                          'discrete actions'),
    (dict(env='pendulum'), 'model: sa3c is an A3C-family model for discrete actions'),
    (dict(model='nope'), 'model: unknown value'),
    (dict(total_frames=-5), 'total_frames: must be an integer >= 1'),
    (dict(num_envs=0), 'num_envs: must be an integer >= 1'),
    (dict(num_samples=0), 'num_samples: must be an integer >= 1'),
    (dict(log_var=math.nan), 'log_var: must be a finite number'),
    (dict(log_var=math.inf), 'log_var: must be a finite number'),
    (dict(gamma=1.5), 'gamma: must lie in [0, 1]'),
    (dict(learning_rate=0.0), 'learning_rate: must be a finite number > 0'),
    (dict(reward_clip=-1.0), 'reward_clip: must be a finite number > 0'),
    (dict(eval_mode='argmax'), 'eval_mode: unknown value'),
    (dict(runtime='threads'), 'runtime: unknown value'),
    (dict(validation_episodes=20_000), 'validation_episodes: at most'),
])
def test_validation_names_the_field(change, needle):
  cfg = dataclasses.replace(config_lib.make_config('atari_seaquest', 'sa3c'), **change)
  with pytest.raises(ValueError) as e:
    cfg.validate()
  assert str(e.value).startswith(needle), str(e.value)


def test_json_round_trip(tmp_path):
  cfg = config_lib.make_config('atari_freeway', 'hpa3c', seed=3)
  assert config_lib.StochasticACConfig.from_dict(cfg.to_dict()) == cfg
  assert config_lib.StochasticACConfig.load(str(tmp_path)) is None
  (tmp_path / 'config.json').write_text(cfg.to_json())
  assert config_lib.StochasticACConfig.load(str(tmp_path)) == cfg


def test_eval_mode_defaults():
  assert config_lib.make_config(model='a3c').resolved_eval_mode == 'map'
  assert config_lib.make_config(model='nn_a3c').resolved_eval_mode == 'map'
  assert config_lib.make_config(model='sa3c').resolved_eval_mode == 'vote'
  assert config_lib.make_config(model='sa3c', eval_mode='mean_prob').resolved_eval_mode == 'mean_prob'


def test_training_and_held_out_seeds_never_meet():
  test = set(config_lib.test_seeds(10))
  validation = set(config_lib.validation_seeds(10))
  assert len(test) == 10 and not test & validation
  for seed in (0, 1, 2 ** 30, 2 ** 31 - 1):
    for frames in (0, 10_000, 123_456_789):
      base = config_lib.training_seed_base(seed, frames)
      assert 0 <= base and base + 2 ** 16 < min(test | validation)
  assert config_lib.training_seed_base(0, 0) != config_lib.training_seed_base(0, 1000)
