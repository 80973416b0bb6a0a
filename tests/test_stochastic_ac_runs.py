"""Chapter 2 A3C-family runs end to end (issue 10 §5, §6): determinism over 5 iterations, resume by re-running
(and a resume with another model or network refused before anything is written), save on SIGINT, and a few hundred
emulator frames (100 agent steps) of A3C (actor processes) and SA3C (in process) on real ALE Breakout with the
thesis network: validation, the best checkpoint and the SavedModel."""

import dataclasses
import json
import os
import signal

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.core import runs
from rlcv_tf.envs import registry
from rlcv_tf.stochastic_ac import config as config_lib
from rlcv_tf.stochastic_ac import training

SMALL = dict(encoder='mlp', mlp_units=(12,), lstm_units=16, fc_units=8)


def _config(model='sa3c', **kw):
  base = dict(SMALL, num_envs=2, unroll_length=10, total_frames=10_000, validate_every_frames=0,
              checkpoint_interval_s=1e9, log_interval_s=1e9, summary_interval_s=1e9)
  base.update(kw)
  return config_lib.make_config('cartpole_masked', model, 'laptop', **base)


def test_determinism_over_five_iterations(tmp_path):
  cfg = _config('sa3c')
  a = training.train(cfg, str(tmp_path / 'a'), print_fn=lambda s: None, max_iterations=5)
  b = training.train(cfg, str(tmp_path / 'b'), print_fn=lambda s: None, max_iterations=5)
  assert len(a.losses) == 5 and a.losses == b.losses
  c = training.train(_config('sa3c', seed=1), str(tmp_path / 'c'),
                     print_fn=lambda s: None, max_iterations=5)
  assert c.losses != a.losses


def test_resume_by_rerunning_and_refusing_another_model(tmp_path):
  logdir = str(tmp_path / 'run')
  lines = []
  cfg = _config('hpa3c', total_frames=40, validate_every_frames=20, eval_max_steps=30)
  first = training.train(cfg, logdir, print_fn=lines.append)
  assert first.frames == 40 and first.iterations == 2 and len(first.validations) == 2
  assert os.path.exists(os.path.join(logdir, 'best', 'best.json'))
  assert os.path.isdir(os.path.join(logdir, 'saved_model'))
  more = dataclasses.replace(cfg, total_frames=80)
  second = training.train(more, logdir, print_fn=lines.append)
  assert any('resumed from' in l and 'at 40 agent steps' in l for l in lines)
  assert second.frames == 80 and second.iterations == 4 and len(second.losses) == 2
  history = [json.loads(l) for l in open(os.path.join(logdir, 'config_history.jsonl'))]
  assert history[1]['step'] == 40 and history[1]['changes']['total_frames'] == {'old': 40, 'new': 80}
  before = {n: os.path.getmtime(os.path.join(logdir, n)) for n in os.listdir(logdir)}
  with pytest.raises(runs.ResumeMismatchError, match="model='hpa3c', but this run asks for model='sa3c'"):
    training.train(dataclasses.replace(more, model='sa3c'), logdir)
  with pytest.raises(runs.ResumeMismatchError, match='lstm_units=16'):
    training.train(dataclasses.replace(more, lstm_units=32), logdir)
  assert {n: os.path.getmtime(os.path.join(logdir, n)) for n in os.listdir(logdir)} == before


def test_a_signal_saves_and_stops(tmp_path):
  logdir = str(tmp_path / 'run')
  cfg = _config('sa3c', unroll_length=5, log_interval_s=0.0)
  lines = []

  def print_fn(line):
    lines.append(line)
    if 'agent steps 20/' in line:
      os.kill(os.getpid(), signal.SIGINT)

  with pytest.raises(runs.Interrupted) as e:
    training.train(cfg, logdir, print_fn=print_fn)
  assert e.value.exit_code == 128 + signal.SIGINT
  assert any('stopped by SIGINT: saved checkpoint' in l for l in lines), lines
  assert tf.train.latest_checkpoint(os.path.join(logdir, 'checkpoints')).endswith('ckpt-20')
  assert os.path.isdir(os.path.join(logdir, 'saved_model'))
  resumed = training.train(cfg, logdir, print_fn=lines.append, max_iterations=1)
  assert resumed.frames == 30


@pytest.mark.parametrize('model,runtime', [('a3c', 'actors'), ('sa3c', 'inline')])
def test_a_few_hundred_agent_steps_on_real_atari(model, runtime, tmp_path):
  logdir = str(tmp_path / model)
  cfg = config_lib.make_config('atari_breakout', model, num_envs=2, unroll_length=10, total_frames=100,
                               validate_every_frames=50, eval_max_steps=40, runtime=runtime,
                               checkpoint_interval_s=1e9, log_interval_s=1e9)
  lines = []
  result = training.train(cfg, logdir, print_fn=lines.append)
  assert result.frames == 100 and result.iterations == 5
  assert result.emulator_frames == sum(e['frames'] for e in result.episodes)
  assert all(np.isfinite(result.losses))
  assert result.last_logs['replay/max_logit_diff'] < 1e-4         # the thesis network on 80x80 frames
  assert result.last_logs['policy/entropy'] > 1.3                 # 4 actions, barely trained: near ln 4
  if model == 'sa3c':
    assert result.last_logs['value/variance_5_samples'] > 0
  else:
    # No stochastic units: the 5 passes are the same network on the same input. Exactly 0 in exact arithmetic; one CI
    # run measured 4e-21 (the passes' last bits can differ under multithreaded CPU kernels), so: zero to 1e-12.
    assert result.last_logs['value/variance_5_samples'] == pytest.approx(0.0, abs=1e-12)
  assert [v['frames'] for v in result.validations] == [60, 100]   # the first multiple of 20 past 50, the end
  assert os.path.exists(os.path.join(logdir, 'best', 'best.json'))
  with open(os.path.join(logdir, 'config.json')) as f:
    assert json.load(f)['encoder'] == 'slim'                      # Breakout's slimmer CNN
  # The SavedModel acts on a real frame.
  env = registry.make_env('atari_breakout', seed=3)
  obs = env.reset().observation
  env.close()
  served = tf.saved_model.load(os.path.join(logdir, 'saved_model'))
  state = served.initial_state(tf.constant(1))
  out = served.serve(tf.constant(obs), state['h'], state['c'], tf.constant(5))
  assert 0 <= int(out['map_action'][0]) < 4 and out['h'].shape == (1, 512)
