"""Checkpoints and transfer of pre-trained models (thesis Sec. 4.2.3, Fig. 4.1c; spec ch4 §2.8, §7.1 items 20, 21,
31): model-only checkpoints round-trip every variable (the Keras-3 container-tracking pitfall), --init_from copies
the pre-trained torso / attention / heads exactly and leaves the policy and value heads fresh, and the frozen
column of PrCNN / PrACNN does not change during training while the RL column does."""

import os

import numpy as np
import pytest
import tensorflow as tf

import marl_test_helpers
from rlcv_tf.marl import config as config_lib
from rlcv_tf.marl import export
from rlcv_tf.marl import learner as learner_lib
from rlcv_tf.marl import networks
from rlcv_tf.marl import pretraining
from rlcv_tf.marl import progressive

OBS = (3, 12, 16, 8)
SMALL = dict(stack_channels=((8, 1), (8, 1)), feature_dim=32)


def randomise(model, seed):
  rng = np.random.default_rng(seed)
  for v in model.weights:
    v.assign(rng.normal(scale=0.2, size=v.shape).astype(np.float32))


def snapshot(variables):
  return [v.numpy().copy() for v in variables]


def random_obs(b=2, seed=0, shape=OBS):
  rng = np.random.default_rng(seed)
  return ((rng.random((b,) + shape) < 0.1) * 255).astype(np.uint8)


@pytest.mark.parametrize('kind', ['cnn', 'acnn'])
def test_model_only_checkpoint_round_trips_every_weight(kind, tmp_path):
  """No optimizer in the checkpoint: every torso conv must be reachable through the model itself."""
  m1 = networks.build_network(kind, 19, OBS, prediction_heads=True, **SMALL)
  randomise(m1, 1)
  path = tf.train.Checkpoint(model=m1).save(str(tmp_path / 'ckpt'))
  saved = [name for name, _ in tf.train.list_variables(path) if name.startswith('model/')]
  assert len(saved) == len(m1.weights), 'every model variable is in the checkpoint under model/'
  m2 = networks.build_network(kind, 19, OBS, prediction_heads=True, **SMALL)
  assert not all(np.array_equal(a, b) for a, b in zip(snapshot(m1.weights), snapshot(m2.weights)))
  tf.train.Checkpoint(model=m2).restore(path).assert_existing_objects_matched()
  strip = lambda m: [v.path.split('/', 1)[1] for v in m.weights]   # drop the model's own (unique) name
  assert strip(m1) == strip(m2)
  for a, b in zip(m1.weights, m2.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
  obs = random_obs()
  np.testing.assert_array_equal(m1(obs)['policy_logits'].numpy(), m2(obs)['policy_logits'].numpy())


def test_learner_checkpoints_of_the_pre_fix_layout_still_restore(tmp_path):
  """Runs saved before the tracking fix have the torso convs only under the optimizer's references: a resumed
  run (model + optimizer, as training.train restores) must still get every value back."""
  cfg = config_lib.MarlConfig(model='acnn', **SMALL)
  old = learner_lib.Learner(cfg, OBS, 19)
  removed = 0
  while hasattr(old.model.torso, f'stack_layer_{removed}'):
    object.__delattr__(old.model.torso, f'stack_layer_{removed}')   # bypass Keras: back to the old object graph
    removed += 1
  assert removed == 8
  randomise(old.model, 4)
  path = old.checkpoint.save(str(tmp_path / 'ckpt'))
  names = [n for n, _ in tf.train.list_variables(path)]
  assert not any(n.startswith('model/torso/stack_layer') for n in names), 'really the old layout'
  new = learner_lib.Learner(cfg, OBS, 19)
  new.checkpoint.restore(path).assert_existing_objects_matched()
  for a, b in zip(old.model.weights, new.model.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=b.path)


def make_pretrained(tmp_path, kind, objective='predict', seed=7, **arch):
  arch = dict(SMALL, **arch)
  net = networks.build_network(kind, 19, OBS, prediction_heads=True, **arch)
  randomise(net, seed)
  logdir = str(tmp_path / f'pre_{kind}_{objective}')
  cfg = pretraining.PretrainConfig(model=kind, objective=objective, **arch)
  ckpt = pretraining.save_pretrained(net, cfg, logdir, OBS)
  return net, logdir, ckpt


@pytest.mark.parametrize('kind', ['cnn', 'acnn'])
@pytest.mark.parametrize('use_prefix', [False, True])
def test_init_from_loads_the_pretrained_values(kind, use_prefix, tmp_path):
  pre, logdir, ckpt = make_pretrained(tmp_path, kind)
  cfg = config_lib.MarlConfig(model=kind, aux='predict', batch_size=2, unroll_length=4, **SMALL)
  lrn = learner_lib.Learner(cfg, OBS, 19)
  fresh_policy = snapshot(lrn.model.policy_head.weights) + snapshot(lrn.model.value_head.weights)
  summary = lrn.initialise_from(ckpt if use_prefix else logdir)
  assert 'torso' in summary and 'pred_row' in summary
  copied = [(pre.torso, lrn.model.torso), (pre.row_head, lrn.model.row_head), (pre.col_head, lrn.model.col_head)]
  if kind == 'acnn':
    copied.append((pre.attention, lrn.model.attention))
  for src, dst in copied:
    assert src.weights
    for a, b in zip(src.weights, dst.weights):
      np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=b.path)
  # Policy and value heads keep their own fresh initialisation (and are not the pre-trained ones).
  for a, b in zip(fresh_policy, snapshot(lrn.model.policy_head.weights) + snapshot(lrn.model.value_head.weights)):
    np.testing.assert_array_equal(a, b)
  assert not np.array_equal(pre.policy_head.kernel.numpy(), lrn.model.policy_head.kernel.numpy())


def test_init_from_skips_heads_of_another_objective_and_rejects_mismatches(tmp_path):
  pre, logdir, _ = make_pretrained(tmp_path, 'acnn', objective='observe_all')
  lrn = learner_lib.Learner(config_lib.MarlConfig(model='acnn', aux='predict', **SMALL), OBS, 19)
  head = snapshot(lrn.model.row_head.weights)
  assert 'pred_row' not in lrn.initialise_from(logdir)
  for a, b in zip(head, snapshot(lrn.model.row_head.weights)):
    np.testing.assert_array_equal(a, b)
  with pytest.raises(pretraining.TransferError, match='needs a cnn'):
    learner_lib.Learner(config_lib.MarlConfig(model='cnn', **SMALL), OBS, 19).initialise_from(logdir)
  with pytest.raises(pretraining.TransferError, match='feature_dim'):
    learner_lib.Learner(config_lib.MarlConfig(model='acnn', stack_channels=((8, 1), (8, 1)), feature_dim=16),
                        OBS, 19).initialise_from(logdir)
  with pytest.raises(pretraining.TransferError, match='HxWxC'):
    learner_lib.Learner(config_lib.MarlConfig(model='acnn', **SMALL), (3, 12, 16, 4), 19).initialise_from(logdir)
  with pytest.raises(pretraining.TransferError, match='no such'):
    pretraining.load_pretrained(str(tmp_path / 'nope'), OBS)
  with pytest.raises(pretraining.TransferError, match='not a pre-training logdir'):
    pretraining.load_pretrained(str(tmp_path), OBS)


def test_loading_a_checkpoint_without_the_torso_fails_loudly(tmp_path):
  """A checkpoint that misses variables (e.g. the pre-fix layout that kept the torso out of the model graph)
  must raise, not silently leave fresh weights."""
  pre, logdir, _ = make_pretrained(tmp_path, 'cnn')
  heads_only = tf.train.Checkpoint(model=tf.train.Checkpoint(policy_head=pre.policy_head))
  bad = str(tmp_path / 'bad')
  os.makedirs(os.path.join(bad, 'best'))
  os.replace(os.path.join(logdir, pretraining.CONFIG_FILE), os.path.join(bad, pretraining.CONFIG_FILE))
  heads_only.save(os.path.join(bad, 'best', 'ckpt'))
  with pytest.raises(AssertionError):
    pretraining.load_pretrained(bad, OBS)


@pytest.mark.parametrize('model', ['prcnn', 'pracnn'])
def test_progressive_frozen_column_is_unchanged_by_training_and_rl_column_learns(model, tmp_path):
  base = config_lib.PROGRESSIVE_MODELS[model]
  pre, logdir, _ = make_pretrained(tmp_path, base)
  cfg = config_lib.MarlConfig(model=model, progressive_from=logdir, aux='predict', batch_size=2, unroll_length=4,
                              learning_rate=1e-2, **SMALL)
  lrn = learner_lib.Learner(cfg, OBS, 19)
  net = lrn.model
  assert isinstance(net, progressive.ProgressiveNetwork)
  # The frozen column holds the pre-trained values, and none of its variables is trainable.
  for a, b in zip(pre.weights, net.frozen.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  frozen_ids = {id(v) for v in net.frozen.weights}
  assert not frozen_ids & {id(v) for v in net.trainable_variables}
  # Laterals (spec §2.8): RL stacks 2..K read twice the channels, the FC reads both flattens, heads read 2D.
  assert net.torso.stacks[1][0].kernel.shape[2] == 8 + 8
  assert net.torso.fc.kernel.shape[0] == 2 * pre.torso.fc.kernel.shape[0]
  assert net.policy_head.kernel.shape[0] == 2 * 32 and net.row_head.kernel.shape[0] == 2 * 32
  # Gradients of the loss never reach the frozen column, even through the laterals' stop_gradient.
  obs = random_obs()
  frozen_tf = [v.value for v in net.frozen.weights]       # the tf.Variables under the Keras variables
  with tf.GradientTape() as tape:
    tape.watch(frozen_tf)                                  # watched explicitly: they are not trainable
    out = net(obs)
    loss = tf.reduce_sum(out['policy_logits']) + tf.reduce_sum(out['baseline']) + tf.reduce_sum(out['pred_row'])
  for g in tape.gradient(loss, frozen_tf):
    assert g is None or float(tf.reduce_max(tf.abs(g))) == 0.0
  frozen_before, rl_before = snapshot(net.frozen.weights), snapshot(net.rl_column_variables())
  for i in range(3):
    lrn.train(marl_test_helpers.synthetic_unroll_batch(OBS, seed=i))
  for a, v in zip(frozen_before, net.frozen.weights):
    np.testing.assert_array_equal(a, v.numpy(), err_msg=f'frozen {v.path} changed')
  changed = [not np.array_equal(a, v.numpy()) for a, v in zip(rl_before, net.rl_column_variables())]
  assert sum(changed) >= 0.9 * len(changed), 'the RL column trains'


def test_progressive_checkpoint_restores_both_columns_and_exports(tmp_path):
  pre, logdir, _ = make_pretrained(tmp_path, 'acnn')
  cfg = config_lib.MarlConfig(model='pracnn', progressive_from=logdir, **SMALL)
  l1 = learner_lib.Learner(cfg, OBS, 19)
  randomise(l1.model, 3)
  path = l1.checkpoint.save(str(tmp_path / 'rl' / 'ckpt'))
  l2 = learner_lib.Learner(cfg, OBS, 19)
  l2.checkpoint.restore(path).assert_existing_objects_matched()
  for a, b in zip(l1.model.weights, l2.model.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
  sm = export.export_policy(l2.model, str(tmp_path / 'sm'), OBS[1:])
  served = tf.saved_model.load(sm)
  obs = random_obs(3, seed=5)
  np.testing.assert_allclose(served.serve(tf.constant(obs))['policy_logits'].numpy(),
                             l2.model(obs)['policy_logits'].numpy(), atol=1e-5)
  sig = served.signatures['serving_default'](observations=tf.constant(obs[:, :2]))
  assert sig['policy_logits'].shape == (3, 2, 19)


def test_progressive_config_errors():
  with pytest.raises(ValueError, match='progressive_from'):
    config_lib.MarlConfig(model='prcnn').validate()
  with pytest.raises(ValueError, match='progressive_from'):
    config_lib.MarlConfig(model='cnn', progressive_from='x').validate()
  with pytest.raises(ValueError, match='init_from'):
    config_lib.MarlConfig(model='pracnn', progressive_from='x', init_from='y').validate()


# ------------------------------------------------------------------------------ through training / launcher
MINI = (5, 18, 24, 16)     # mini_5v5_small observations


def mini_config(**kw):
  base = dict(env='mini_5v5_small', num_actors=2, batch_size=2, unroll_length=8, total_frames=16,
              checkpoint_interval_s=1e9, log_interval_s=1e9, **SMALL)
  base.update(kw)
  return config_lib.MarlConfig(**base)


def mini_pretrained(tmp_path, kind):
  net = networks.build_network(kind, 19, MINI, prediction_heads=True, **SMALL)
  randomise(net, 11)
  logdir = str(tmp_path / f'pre_{kind}')
  pretraining.save_pretrained(net, pretraining.PretrainConfig(model=kind, **SMALL), logdir, MINI)
  return net, logdir


def test_training_with_init_from_initialises_once_and_resumes_its_own_weights(tmp_path):
  from rlcv_tf.marl import training  # pylint: disable=g-import-not-at-top
  _, pre = mini_pretrained(tmp_path, 'acnn')
  run = str(tmp_path / 'run')
  lines = []
  training.train(mini_config(model='acnn', aux='predict', init_from=pre), run, print_fn=lines.append)
  assert any('initialised torso, attention, pred_row, pred_col' in l for l in lines), lines
  lines = []
  training.train(mini_config(model='acnn', aux='predict', init_from=pre, total_frames=32), run,
                 print_fn=lines.append)
  assert any('resumed from' in l for l in lines) and not any('initialised' in l for l in lines)


def test_training_a_progressive_model_exports_a_serving_signature(tmp_path):
  from rlcv_tf.marl import training  # pylint: disable=g-import-not-at-top
  pre_net, pre = mini_pretrained(tmp_path, 'cnn')
  res = training.train(mini_config(model='prcnn', progressive_from=pre, aux='predict'), str(tmp_path / 'run'),
                       print_fn=lambda s: None)
  served = tf.saved_model.load(res.saved_model)
  out = served.signatures['serving_default'](observations=tf.constant(random_obs(2, shape=MINI)))
  assert out['policy_logits'].shape == (2, 5, 19) and out['pred_row'].shape == (2, 5, 18)
  # The exported frozen column still holds the pre-trained weights: rebuild and compare the restored checkpoint.
  lrn = learner_lib.Learner(mini_config(model='prcnn', progressive_from=pre, aux='predict'), MINI, 19)
  lrn.checkpoint.restore(tf.train.latest_checkpoint(str(tmp_path / 'run' / 'checkpoints'))).expect_partial()
  for a, b in zip(pre_net.weights, lrn.model.frozen.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def run_launcher(*args, timeout=120):
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  return subprocess.run([sys.executable, '-m', 'launchers.marl', *args], cwd=root, capture_output=True, text=True,
                        timeout=timeout)


@pytest.mark.parametrize('args,needle', [
    (['--aux=everything'], '--aux=everything'),
    (['--aux_coef=-1'], '--aux_coef=-1.0'),
    (['--init_from=/nonexistent/pre'], '--init_from=/nonexistent/pre'),
    (['--model=prcnn'], '--progressive_from'),
    (['--model=cnn', '--progressive_from=/tmp'], '--progressive_from=/tmp'),
    (['--stack_channels=8by1'], '--stack_channels=8by1'),
    (['--record_every=0'], '--record_every=0'),
])
def test_marl_launcher_new_flags_give_one_clear_line(args, needle, tmp_path):
  assert needle in marl_test_helpers.error_line(run_launcher(*args, f'--logdir={tmp_path}'))


def test_marl_launcher_reports_a_pretrained_model_of_the_wrong_kind(tmp_path):
  _, pre = mini_pretrained(tmp_path, 'cnn')
  proc = run_launcher('--env=mini_5v5_small', '--model=pracnn', f'--progressive_from={pre}',
                      f'--logdir={tmp_path / "run"}', '--num_actors=1', '--total_frames=8', timeout=300)
  assert proc.returncode != 0 and 'Traceback' not in proc.stderr
  assert 'error: --progressive_from=' in proc.stderr and 'needs a acnn' in proc.stderr
