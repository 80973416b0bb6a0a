"""The shared first conv (networks.py, `shared_channels`): stack 0's entry conv computes the response to the planes
a team shares once per batch element and adds each agent's own term. Same outputs and gradients as the plain model
to 1e-5 (CNN, ACNN, PrCNN, PrACNN, prediction heads, N = 1, 4, 5), same variables and checkpoints both ways,
different outputs when the planes are NOT shared (so these tests can fail), and the environments' declarations:
GRF and the stand-in share the SMM's team and ball planes, DMLab2D Cleanup shares nothing.

Networks use the thesis torso on an 18x24 map (as in test_marl_networks.py), learners a small torso.
"""

import numpy as np
import pytest
import tensorflow as tf

import marl_test_helpers
from rlcv_tf.envs import registry
from rlcv_tf.envs import smm
from rlcv_tf.marl import agents as agents_lib
from rlcv_tf.marl import config as config_lib
from rlcv_tf.marl import learner as learner_lib
from rlcv_tf.marl import networks
from rlcv_tf.marl import progressive

N, H, W, FRAMES = 4, 18, 24, 4
C = FRAMES * len(smm.SMM_LAYERS)
OBS = (N, H, W, C)
SHARED = tuple(f * 4 + p for f in range(FRAMES) for p in smm.SHARED_LAYERS)   # 0, 1, 2, 4, 5, 6, ...
OWN = tuple(c for c in range(C) if c not in SHARED)                            # the `active` planes 3, 7, 11, 15
OUTPUTS = ('policy_logits', 'baseline', 'pred_row', 'pred_col', 'attention')
TOL = 1e-5


def smm_obs(batch, n, seed, shared=True):
  """SMM-like uint8 [batch, n, H, W, C]: sparse team and ball planes, one `active` pixel per agent and frame. With
  `shared`, every agent of a batch element gets agent 0's team and ball planes (as the environments draw them)."""
  rng = np.random.default_rng(seed)
  obs = ((rng.random((batch, n, H, W, C)) < 0.05) * 255).astype(np.uint8)
  obs[..., OWN] = 0
  for b in range(batch):
    for i in range(n):
      for c in OWN:
        obs[b, i, rng.integers(H), rng.integers(W), c] = 255
  if shared:
    obs[:, 1:, ..., SHARED] = obs[:, :1, ..., SHARED]
  return obs


def randomise(model, seed):
  """New lecun-normal-sized kernels and non-zero biases and LayerNorm parameters, so a dropped bias would show
  and the outputs stay of order 1 (the tolerance is absolute)."""
  rng = np.random.default_rng(seed)
  for v in model.weights:
    shape = tuple(v.shape)
    if len(shape) > 1:
      value = rng.normal(scale=1.0 / np.sqrt(np.prod(shape[:-1])), size=shape)
    else:
      value = rng.normal(scale=0.1, size=shape) + (1.0 if 'gamma' in v.path else 0.0)
    v.assign(value.astype(np.float32))


def max_diff(a, b):
  return max(float(np.max(np.abs(a[k].numpy() - b[k].numpy()))) for k in OUTPUTS if k in a)


@pytest.fixture(scope='module', params=['cnn', 'acnn', 'prcnn', 'pracnn'])
def pair(request):
  """(plain model, shared model) with the same weights, both with prediction heads."""
  kind = request.param
  if kind in progressive.PROGRESSIVE_KINDS:
    base = progressive.PROGRESSIVE_KINDS[kind]
    frozen = networks.build_network(base, 19, OBS, prediction_heads=True)
    randomise(frozen, 1)
    plain = progressive.build_progressive_network(frozen, base, 19, OBS, prediction_heads=True)
    shared = progressive.build_progressive_network(frozen, base, 19, OBS, prediction_heads=True,
                                                   shared_channels=SHARED)
  else:
    plain = networks.build_network(kind, 19, OBS, prediction_heads=True)
    shared = networks.build_network(kind, 19, OBS, prediction_heads=True, shared_channels=SHARED)
  randomise(plain, 2)
  shared.set_weights(plain.get_weights())
  return kind, plain, shared


# ---------------------------------------------------------------------------------------------- same function
@pytest.mark.parametrize('n', [1, 4, 5])
def test_shared_model_equals_plain_model(pair, n):
  kind, plain, shared = pair
  obs = smm_obs(3, n, seed=n)
  a, b = plain(obs), shared(obs)
  assert set(a) == set(b)
  assert max_diff(a, b) < TOL, (kind, n, max_diff(a, b))


def test_shared_model_equals_plain_model_in_tf_function_with_unknown_batch_and_agents(pair):
  kind, plain, shared = pair
  spec = [tf.TensorSpec([None, None, H, W, C], tf.uint8)]
  fns = [tf.function(lambda obs, m=m: m(obs, training=False), input_signature=spec) for m in (plain, shared)]
  for b, n in ((2, 5), (1, 1), (3, 4)):
    obs = smm_obs(b, n, seed=10 + n)
    assert max_diff(fns[0](obs), fns[1](obs)) < TOL, (kind, b, n)
  assert fns[1].experimental_get_tracing_count() == 1


@pytest.mark.parametrize('n', [1, 4, 5])
def test_gradients_equal_plain_model(pair, n):
  kind, plain, shared = pair
  obs = smm_obs(2, n, seed=20 + n)
  grads = []
  for model in (plain, shared):
    rng = np.random.default_rng(n)     # the same random weighting of the outputs for both models
    with tf.GradientTape() as tape:
      out = model(obs, training=True)
      loss = sum(tf.reduce_sum(out[k] * rng.normal(size=out[k].shape).astype(np.float32))
                 for k in ('policy_logits', 'baseline', 'pred_row', 'pred_col'))
    grads.append(tape.gradient(loss, model.trainable_variables))
  assert len(grads[0]) == len(grads[1]) and all(g is not None for g in grads[1])
  first = shared.torso.stacks[0][0].kernel
  assert any(v is first for v in shared.trainable_variables)   # the split kernel is trained as one variable
  worst = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in zip(*grads))
  scale = max(float(np.max(np.abs(np.asarray(a)))) for a in grads[0])
  assert worst < TOL * max(1.0, scale), (kind, n, worst, scale)


def test_every_column_shares_its_first_conv(pair, monkeypatch):
  kind, plain, shared = pair
  calls = []
  real = networks.shared_entry_conv
  monkeypatch.setattr(networks, 'shared_entry_conv', lambda *a: calls.append(a[2]) or real(*a))
  plain(smm_obs(1, 2, seed=0))
  assert not calls
  shared(smm_obs(1, 2, seed=0))
  assert calls == [SHARED] * (2 if kind in progressive.PROGRESSIVE_KINDS else 1)   # frozen column too
  strip = lambda m: [(v.path.split('/', 1)[1], tuple(v.shape)) for v in m.weights]
  assert strip(shared) == strip(plain)                         # the same variables, under the same paths


@pytest.mark.parametrize('channels', [OWN, SHARED, (0, 5), (2, 3, 4), tuple(range(1, 16, 2)), tuple(range(16))])
def test_channel_selection_matches_numpy(channels):
  x = np.arange(2 * 3 * 5 * 16).reshape(2, 3, 5, 16)
  fn = tf.function(lambda t: networks._take_channels(t, channels),   # pylint: disable=protected-access
                   input_signature=[tf.TensorSpec([None, None, 5, 16], tf.int64)])
  np.testing.assert_array_equal(fn(tf.constant(x)).numpy(), x[..., list(channels)])


def test_empty_shared_channels_is_the_plain_model():
  net = networks.build_network('acnn', 19, OBS, shared_channels=())
  assert net.shared_channels == () and net.get_config()['shared_channels'] == ()
  other = networks.build_network('acnn', 19, OBS)
  other.set_weights(net.get_weights())
  obs = smm_obs(2, N, seed=3, shared=False)
  assert max_diff(net(obs), other(obs)) == 0.0


def test_config_keeps_shared_channels_and_rejects_channels_out_of_range():
  net = networks.build_network('cnn', 19, OBS, shared_channels=reversed(SHARED))
  assert net.get_config()['shared_channels'] == SHARED      # sorted, part of the config
  clone = networks.MarlNetwork(**{k: v for k, v in net.get_config().items() if k not in ('name', 'trainable',
                                                                                          'dtype')})
  assert clone.shared_channels == SHARED
  with pytest.raises(ValueError, match='channel'):
    networks.build_network('cnn', 19, OBS, shared_channels=(0, C))
  with pytest.raises(ValueError, match='non-negative'):
    networks.MarlNetwork('cnn', 19, shared_channels=(-1,))


# -------------------------------------------------------------------------------------- the test can fail
def test_not_equal_when_shared_planes_differ_across_agents(pair):
  kind, plain, shared = pair
  obs = smm_obs(2, N, seed=5, shared=False)
  a, b = plain(obs)['policy_logits'].numpy(), shared(obs)['policy_logits'].numpy()
  diff = np.abs(a - b).max(axis=(0, 2))
  assert diff[1:].min() > 1e-3, (kind, diff)                 # agents 1.. were given agent 0's planes
  if kind in ('cnn', 'prcnn'):
    assert diff[0] < TOL                                      # agent 0's own planes are the ones used


def test_not_equal_when_an_own_plane_is_declared_shared():
  plain = networks.build_network('cnn', 19, OBS)
  wrong = networks.build_network('cnn', 19, OBS, shared_channels=SHARED + (OWN[-1],))
  randomise(plain, 4)
  wrong.set_weights(plain.get_weights())
  obs = smm_obs(2, N, seed=6)
  assert np.abs(plain(obs)['policy_logits'].numpy() - wrong(obs)['policy_logits'].numpy())[:, 1:].max() > 1e-3


# ----------------------------------------------------------------------------------- variables, checkpoints
@pytest.mark.parametrize('kind,expected', [('cnn', 396_868), ('acnn', 595_268)])
def test_parameter_counts_and_variable_paths_unchanged_at_thesis_scale(kind, expected):
  shape = (5, 72, 96, 16)
  plain = networks.build_network(kind, 19, shape)
  shared = networks.build_network(kind, 19, shape, shared_channels=SHARED)
  assert shared.count_params() == plain.count_params() == expected
  strip = lambda m: [(v.path.split('/', 1)[1], tuple(v.shape)) for v in m.weights]
  assert strip(shared) == strip(plain)
  assert shared.torso.stacks[0][0].kernel.shape == (3, 3, 16, 16)


@pytest.mark.parametrize('direction', ['plain_to_shared', 'shared_to_plain'])
def test_checkpoint_restores_both_ways(tmp_path, direction):
  plain = networks.build_network('acnn', 19, OBS, prediction_heads=True)
  shared = networks.build_network('acnn', 19, OBS, prediction_heads=True, shared_channels=SHARED)
  src, dst = (plain, shared) if direction == 'plain_to_shared' else (shared, plain)
  randomise(src, 7)
  randomise(dst, 8)
  obs = smm_obs(2, 5, seed=9)
  assert max_diff(src(obs), dst(obs)) > 1e-3
  path = tf.train.Checkpoint(model=src).save(str(tmp_path / 'ckpt'))
  tf.train.Checkpoint(model=dst).restore(path).assert_existing_objects_matched().assert_consumed()
  assert max_diff(src(obs), dst(obs)) < TOL


# --------------------------------------------------------------------------------------------- the learner
def test_learner_passes_shared_channels_and_trains_the_same():
  kw = dict(model='acnn', batch_size=2, unroll_length=4, stack_channels=((8, 1), (8, 1)), feature_dim=32)
  cfg = config_lib.MarlConfig(**kw)
  batch = marl_test_helpers.synthetic_unroll_batch(OBS, t1=5)
  batch['observation'][:, :, 1:, ..., SHARED] = batch['observation'][:, :, :1, ..., SHARED]
  plain = learner_lib.Learner(cfg, OBS, 19)
  shared = learner_lib.Learner(cfg, OBS, 19, shared_channels=SHARED)
  assert plain.model.shared_channels == () and shared.model.shared_channels == SHARED
  for a, b in zip(shared.model.weights, plain.model.weights):
    a.assign(b)
  obs = batch['observation'][0]
  np.testing.assert_allclose(shared.infer(obs)[1].numpy(), plain.infer(obs)[1].numpy(), atol=TOL)
  la, lb = plain.train(batch), shared.train(batch)
  for key in ('loss/total', 'optimizer/grad_norm', 'policy/entropy'):
    np.testing.assert_allclose(lb[key], la[key], rtol=1e-5, atol=TOL, err_msg=key)


def test_two_team_learner_shares_within_each_agent_group():
  """Mixed self-play: one call per team (`agent_groups`), so each team shares its own planes; on real two-team
  observations of the stand-in the shared learner then equals the plain one, and would not in a single call."""
  env = registry.make_env('mini_5v5_small', seed=1, num_frames=FRAMES, num_agents=4, right_agents=3)
  obs = _random_steps(env, 6, seed=2)
  env.close()
  cfg = config_lib.MarlConfig(model='acnn', batch_size=2, unroll_length=4, stack_channels=((8, 1), (8, 1)),
                              feature_dim=32)
  shape = obs.shape[1:]
  learners = {(groups, shared): learner_lib.Learner(cfg, shape, 19, agent_groups=groups, shared_channels=shared)
              for groups in ((4, 3), None) for shared in ((), SHARED)}
  ref = learners[(4, 3), ()].model.weights
  for lrn in learners.values():
    for a, b in zip(lrn.model.weights, ref):
      a.assign(b)
  logits = {k: lrn._forward(obs, training=False)['policy_logits'].numpy() for k, lrn in learners.items()}
  np.testing.assert_allclose(logits[(4, 3), SHARED], logits[(4, 3), ()], atol=TOL)
  # One call for both teams: the right team would be given the left team's planes.
  assert np.abs(logits[None, SHARED] - logits[None, ()])[:, 4:].max() > 1e-4


def test_saved_agents_are_rebuilt_with_their_environments_shared_channels():
  cfg = config_lib.MarlConfig(env='mini_5v5_small', model='cnn', stack_channels=((8, 1), (8, 1)), feature_dim=32)
  assert agents_lib.env_shared_channels(cfg) == SHARED
  shape, num_actions = agents_lib.env_specs(cfg)
  assert agents_lib.build_model(cfg, shape, num_actions).shared_channels == SHARED
  assert agents_lib.build_model(cfg, shape, num_actions, shared_channels=()).shared_channels == ()


# ------------------------------------------------------------------------------------ environment declarations
def _random_steps(env, steps, seed):
  rng = np.random.default_rng(seed)
  ts = env.reset()
  out = [ts.observation]
  for _ in range(steps):
    ts = env.step(rng.integers(0, env.num_actions, env.num_agents))
    out.append(ts.observation)
    if ts.last():
      ts = env.reset()
  return np.stack(out)


def _check_team_shares(obs, shared, groups):
  """The declared channels are equal within each team group, and the rest (the `active` planes) are not."""
  start = 0
  for size in groups:
    team = obs[:, start:start + size]
    np.testing.assert_array_equal(team[..., list(shared)], np.broadcast_to(team[:, :1][..., list(shared)],
                                                                         team[..., list(shared)].shape))
    if size > 1:
      own = [c for c in range(obs.shape[-1]) if c not in shared]
      assert np.any(team[:, 1:][..., own] != team[:, :1][..., own])
    start += size


def test_base_environment_declares_nothing_shared():
  env = registry.make_env('mini_5v5_small', num_frames=1)
  assert super(type(env), env).shared_channels == ()          # base.MultiAgentEnv's default
  env.close()


@pytest.mark.parametrize('num_frames', [1, 4])
def test_mini_football_declares_the_smm_team_and_ball_planes(num_frames):
  env = registry.make_env('mini_5v5_small', num_frames=num_frames, right_agents=3)
  assert env.shared_channels == tuple(f * 4 + p for f in range(num_frames) for p in (0, 1, 2))
  obs = _random_steps(env, 30, seed=num_frames)
  _check_team_shares(obs, env.shared_channels, env.team_sizes)
  # Two-team control: shared within a team only (the right team sees the pitch rotated), which is why the learner
  # runs one network pass per team.
  assert np.any(obs[:, :1][..., list(env.shared_channels)] != obs[:, -1:][..., list(env.shared_channels)])
  env.close()


def test_dmlab2d_cleanup_declares_nothing_shared():
  pytest.importorskip('dmlab2d')
  env = registry.make_env('dmlab2d_cleanup', num_frames=4, episode_length=20)
  assert env.shared_channels == ()
  obs = _random_steps(env, 3, seed=0)
  # Each agent sees itself blue (0, 0, 255) and the others red (255, 0, 0): red and blue differ between agents.
  for c in (0, 2):
    assert np.any(obs[:, 0, ..., c] != obs[:, 1, ..., c]), c
  env.close()


def test_dmlab2d_cleanup_learner_gets_no_shared_channels():
  pytest.importorskip('dmlab2d')
  cfg = config_lib.MarlConfig(env='dmlab2d_cleanup', model='cnn')
  assert agents_lib.env_shared_channels(cfg) == ()


@pytest.mark.grf
def test_grf_declares_the_smm_team_and_ball_planes_for_both_teams():
  pytest.importorskip('gfootball')
  env = registry.make_env('grf_5v5', seed=3, num_frames=4, episode_length=40, right_agents=5)
  try:
    assert env.shared_channels == SHARED
    obs = _random_steps(env, 25, seed=1)
    _check_team_shares(obs, env.shared_channels, env.team_sizes)
  finally:
    env.close()
