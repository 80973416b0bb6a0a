"""Seed 001 runs: PPO on the tiny stand-in (every variant), resume, Ctrl-C, the SavedModels (reloaded, matching
Keras; the paper-sized policy plays a real Breakout episode), the launcher's one-line errors, and the slow learning
check (which fails with the learning rate at ~0)."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.core import runs
from rlcv_tf.vae_pg import export
from rlcv_tf.vae_pg import ppo
from rlcv_tf.vae_pg import presets
from rlcv_tf.vae_pg import training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = presets.TINY


def _quiet(_):
  pass


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory):
  logdir = str(tmp_path_factory.mktemp('pretrain'))
  result = training.pretrain(TINY, logdir, print_fn=_quiet)
  return logdir, result


def test_pretrain_writes_weights_eval_and_a_vae_savedmodel(pretrained):
  logdir, result = pretrained
  assert os.path.exists(os.path.join(logdir, training.VAE_WEIGHTS))
  assert os.path.exists(os.path.join(logdir, 'reconstructions.png'))
  with open(os.path.join(logdir, 'eval.json')) as f:
    ev = json.load(f)
  assert np.isfinite(ev['val_nll']) and ev['train_frames'] > 0
  loaded = tf.saved_model.load(result.saved_model)
  x = np.random.default_rng(0).random((3, 21, 21, 1)).astype(np.float32)
  enc = loaded.encode(images=tf.constant(x))
  vae = training.vae_lib.VAE(TINY.image_size, TINY.enc_filters, TINY.enc_fc, TINY.latent_dim).build_all()
  vae.load_weights(result.weights)
  mu, logvar = vae.encoder(x)
  np.testing.assert_allclose(enc['mean'].numpy(), mu.numpy(), atol=1e-5)
  np.testing.assert_allclose(enc['log_variance'].numpy(), logvar.numpy(), atol=1e-5)
  assert loaded.sample(num=tf.constant(2))['images'].shape == (2, 21, 21, 1)


@pytest.mark.parametrize('variant', ['fixed', 'adapt', 'joint'])
def test_each_variant_trains_resumes_and_exports(pretrained, tmp_path, variant):
  logdir = str(tmp_path / variant)
  cfg = TINY.replace(variant=variant)
  pre = pretrained[0] if variant != 'joint' else None
  first = training.train_rl(cfg, logdir, pre, print_fn=_quiet, max_iterations=1)
  assert first.iterations == 1 and first.agent_steps == cfg.num_envs * cfg.t_max
  assert np.isfinite(first.logs['loss/total'])
  assert first.grad_norms and first.grad_norms[0]['grad_u/vae'] > 0
  lines = []
  second = training.train_rl(cfg, logdir, pre, print_fn=lines.append, max_iterations=1)
  assert second.iterations == 2 and any('resumed' in line for line in lines)
  third = training.train_rl(cfg, logdir, pre, print_fn=_quiet)             # nothing left to train (64 steps)
  assert [n['agent_steps'] for n in training.load_grad_norms(logdir)] == [0, 32]     # both sessions' R5 kept
  assert third.grad_norms == training.load_grad_norms(logdir)
  loaded = tf.saved_model.load(second.saved_model)
  frames = np.random.default_rng(1).integers(0, 256, (4, 21, 21, 2)).astype(np.uint8)
  out = loaded.serve(frames=tf.constant(frames))
  learner = ppo.PPOLearner(cfg, 4)
  learner.checkpoint().restore(os.path.join(logdir, 'checkpoints', 'ckpt-64')).expect_partial()
  logits, value = learner.act(frames)
  np.testing.assert_allclose(out['logits'].numpy(), logits, atol=1e-5)
  np.testing.assert_allclose(out['value'].numpy(), value, atol=1e-5)
  np.testing.assert_array_equal(out['greedy_action'].numpy(), logits.argmax(1))
  assert out['action'].shape == (4,)
  assert hasattr(loaded, 'reconstruct') == (variant == 'joint')


def test_fixed_variant_keeps_the_pretrained_encoder(pretrained, tmp_path):
  cfg = TINY.replace(variant='fixed')
  training.train_rl(cfg, str(tmp_path), pretrained[0], print_fn=_quiet, max_iterations=2)
  vae = training.vae_lib.VAE(cfg.image_size, cfg.enc_filters, cfg.enc_fc, cfg.latent_dim).build_all()
  vae.load_weights(os.path.join(pretrained[0], training.VAE_WEIGHTS))
  learner = ppo.PPOLearner(cfg, 4)
  learner.checkpoint().restore(tf.train.latest_checkpoint(str(tmp_path / 'checkpoints'))).expect_partial()
  for a, b in zip(vae.encoder.variables, learner.model.encoder.variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_sigint_saves_and_resume_refuses_other_networks(tmp_path):
  logdir = str(tmp_path / 'run')
  cfg = TINY.replace(variant='joint', total_steps=10_000)

  def interrupt(line):
    if 'agent steps' in line and 'iteration' in line:
      os.kill(os.getpid(), signal.SIGINT)

  with pytest.raises(runs.Interrupted):
    training.train_rl(cfg, logdir, print_fn=interrupt)
  assert tf.train.latest_checkpoint(os.path.join(logdir, 'checkpoints'))
  assert os.path.exists(os.path.join(logdir, 'saved_model', 'saved_model.pb'))
  with pytest.raises(runs.ResumeMismatchError, match='latent_dim'):
    training.train_rl(cfg.replace(latent_dim=5), logdir, print_fn=_quiet, max_iterations=1)


def test_paper_policy_export_plays_real_breakout(tmp_path):
  from rlcv_tf.envs import registry
  cfg = presets.PAPER.replace(variant='joint')
  learner = ppo.PPOLearner(cfg, 4)
  path = export.export_policy(learner.model, str(tmp_path / 'policy'), 84, learner.vae.decoder)
  loaded = tf.saved_model.load(path)
  env = registry.make_env('atari_breakout_seed001', seed=0, num_frames=4)
  ts = env.reset()
  assert ts.observation.shape == (1, 84, 84, 4) and ts.observation.dtype == np.uint8
  steps, score = 0, 0.0
  while not ts.last():
    action = int(loaded.serve(frames=tf.constant(ts.observation))['action'].numpy()[0])
    ts = env.step(np.array([action]))
    score += float(ts.reward[0])
    steps += 1
  assert steps > 10 and score >= 0
  recon = loaded.reconstruct(frames=tf.constant(ts.observation))['images']
  assert recon.shape == (1, 84, 84, 4)


def _launch(*args, timeout=60):
  return subprocess.run([sys.executable, '-m', 'launchers.vae_pg', *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=timeout)


@pytest.mark.parametrize('args,needle', [
    (['--variant=frozen'], '--variant=frozen: unknown variant'),
    (['--kappa=0'], '--kappa=0.0: must be > 0'),
    (['--kl_mode=soft'], '--kl_mode=soft: unknown mode'),
    (['--env=atari_pong_seed002'], '--env=atari_pong_seed002: not a seed-001 environment'),
    (['--stage=rl', '--variant=adapt'], 'starts from a pre-trained VAE'),
])
def test_launcher_refuses_bad_flags_in_one_line(args, needle):
  proc = _launch(*args)
  assert proc.returncode == 2, proc.stderr
  lines = [line for line in proc.stderr.splitlines() if line.strip()]
  assert lines == [lines[-1]] and lines[-1].startswith('error: ') and needle in lines[-1], proc.stderr


def test_launcher_refuses_empty_frames_dir_and_mismatched_pretrain(tmp_path, pretrained):
  empty = tmp_path / 'frames'
  empty.mkdir()
  proc = _launch('--stage=pretrain', f'--frames_dir={empty}', f'--logdir={tmp_path / "x"}')
  assert proc.returncode == 2 and 'no PNG frames' in proc.stderr
  proc = _launch('--stage=rl', '--variant=fixed', f'--pretrain_logdir={pretrained[0]}', f'--logdir={tmp_path / "y"}')
  assert proc.returncode == 2 and 'latent_dim' in proc.stderr.splitlines()[-1]   # check preset vs a tiny VAE
  assert not os.path.exists(tmp_path / 'y')


@pytest.fixture
def deterministic_ops():
  """TensorFlow's op determinism for one test, then off again (the flag is process-wide)."""
  from rlcv_tf.core import determinism  # pylint: disable=g-import-not-at-top
  with determinism.op_determinism():
    yield


@pytest.mark.slow
def test_adapt_beats_random_play_on_the_check_preset(tmp_path, deterministic_ops):
  """The `check` preset end to end: 2,000 tracker frames, 10 epochs of VAE pre-training, 200,000 agent steps of PPO
  adapt on mini_breakout_tiny (about 1.5 minutes on 2 cores). The learning check wants the best 100 consecutive
  training episodes at >= 2.5x uniformly random play (100 held-out episodes: 1.23 bricks at seed 0).

  With TensorFlow's op determinism the run is the same every time: 5.21 (4.2x) at seed 0, twice, side by side on a
  loaded machine. Without it, CPU reductions vary from run to run and so does the whole run: seed 0 measured 9.91
  (8.1x) once and 2.54 (2.1x) in a CI-like run, which failed the check; a learning check must not depend on that.
  With the learning rate at 1e-9 (deterministic): 2.03 (1.7x), failed; learning_check's docstring has the other seeds
  and variants.
  """
  cfg = presets.preset('check')
  pre = str(tmp_path / 'pretrain')
  training.pretrain(cfg, pre, print_fn=_quiet)
  lines = []
  result = training.train_rl(cfg, str(tmp_path / 'rl'), pretrain_logdir=pre, print_fn=lines.append)
  check = result.learning_check
  assert check is not None, lines[-5:]
  print(check['line'])
  assert check['passed'], check['line']
  assert os.path.exists(os.path.join(tmp_path, 'rl', 'returns.png'))


def test_reconstruction_sheet_shows_frames_in_their_own_greys(tmp_path):
  """The sheet's top row is the frames themselves: black background, the ball white, the walls / bricks / paddle in
  their greys (no second rescaling of already-converted pixels)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
  from rlcv_tf.vae_pg import vae as vae_lib  # pylint: disable=g-import-not-at-top
  vae = vae_lib.VAE(21, (8, 16), 32, 4).build_all()
  frame = registry.make_env('mini_breakout_tiny', seed=0, num_frames=1).reset().observation[0]
  path = str(tmp_path / 'sheet.png')
  training.reconstruction_sheet(vae, np.stack([frame, frame]), path)
  img = np.asarray(Image.open(path))
  scale = 168 // 21
  np.testing.assert_array_equal(img[scale:scale * 22:scale, scale:scale * 22:scale, 0], frame[..., 0])
  recon = img[scale * 23:scale * 44:scale, scale:scale * 22:scale, 0]          # bottom row: sigmoid means
  assert recon.shape == (21, 21) and 0 < recon.mean() < 255
