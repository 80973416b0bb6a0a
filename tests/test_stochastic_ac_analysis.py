"""Chapter 2 analysis tools (issue 10 §4; thesis Sec. 2.6.2-2.6.3, Figs. 2.5 / 2.6; spec ch2 §5) on the real
cartpole_masked engine: the empirical entropy against its closed form, the value variance against a per-sample
loop and np.var(ddof=1), the 50-sample entropy against the known expectation for a uniform and a one-hot policy, the
snapshots training keeps, and the launcher's figures and bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.stochastic_ac import a3c
from rlcv_tf.stochastic_ac import analysis
from rlcv_tf.stochastic_ac import config as config_lib
from rlcv_tf.stochastic_ac import evaluation
from rlcv_tf.stochastic_ac import layers as layers_lib
from rlcv_tf.stochastic_ac import training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = dict(encoder='mlp', mlp_units=(12,), lstm_units=16, fc_units=8)
ENV = 'cartpole_masked'


def _model(name, **kwargs):
  shape, num_actions = evaluation.env_layout(ENV)
  model = a3c.MODELS[name](num_actions, shape, **dict(SMALL, **kwargs))
  return model.build_network()


def test_empirical_entropy_closed_form():
  assert analysis.empirical_entropy([3, 3, 3], 4) == 0.0
  assert analysis.empirical_entropy([0, 1, 0, 1], 2) == pytest.approx(np.log(2))
  counts = [5, 3, 2]
  p = np.array(counts) / 10
  actions = np.repeat([0, 1, 2], counts)
  assert analysis.empirical_entropy(actions, 3) == pytest.approx(-(p * np.log(p)).sum())


def test_value_variance_matches_a_per_sample_loop():
  """sigma_v^2(t) is np.var(ddof=1) of V under the same 5 noise rows, each row's V computed on its own."""
  model = _model('sa3c', log_var=0.0)
  stats = analysis.trajectory_statistics(model, ENV, seed=7, steps=4, value_samples=5, action_samples=3,
                                         noise_seed=11)
  # Replay: the same generator order (value noise, action noise, gumbel per step) and the MAP trajectory.
  rng = np.random.default_rng(11)
  specs = model.noise_specs()
  from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
  env = registry.make_env(ENV, seed=7)
  obs = np.asarray(env.reset().observation, np.float32)
  state = model.initial_state(1)
  for t in range(stats.value_variance.size):
    value_noise = layers_lib.draw_noise(specs, 5, rng)
    layers_lib.draw_noise(specs, 3, rng)
    rng.gumbel(size=(3, 2))
    h, state = model.core(obs, state, np.array([t == 0]))
    values = [float(model.head(h, {k: v[i:i + 1] for k, v in value_noise.items()}, None, 'sample')[1][0])
              for i in range(5)]
    assert stats.value_variance[t] == pytest.approx(np.var(values, ddof=1), rel=1e-4, abs=1e-10)
    logits, value, _ = model.head(h, None, None, 'map')
    assert stats.map_value[t] == pytest.approx(float(value[0]), abs=1e-5)
    action = int(np.argmax(logits[0]))
    assert stats.map_action[t] == action
    ts = env.step(np.array([action]))
    obs = np.asarray(ts.observation, np.float32)
    if ts.last():
      break
  env.close()
  assert stats.value_variance.max() > 0


def test_a3c_has_no_value_variance_and_sa3c_does():
  a3c_stats = analysis.trajectory_statistics(_model('a3c'), ENV, seed=3, steps=5, action_samples=10)
  assert np.all(a3c_stats.value_variance == 0.0)
  sa3c_stats = analysis.trajectory_statistics(_model('sa3c', log_var=0.0), ENV, seed=3, steps=5, action_samples=10)
  assert np.all(sa3c_stats.value_variance > 0.0)


def _set_policy(model, bias):
  model.policy.kernel.assign(tf.zeros_like(model.policy.kernel))
  model.policy.bias.assign(np.asarray(bias, np.float32))


def test_action_entropy_against_known_policies():
  """A uniform 2-action policy: the 50-sample histogram entropy averages E[H] ~ ln 2 - 1/(2 * 50) (the plug-in
  estimator's bias, (A - 1) / 2n); a one-hot policy gives exactly 0."""
  model = _model('a3c')
  _set_policy(model, [0.0, 0.0])
  entropies = []
  for seed in range(40):
    stats = analysis.trajectory_statistics(model, ENV, seed=seed, steps=20, action_samples=50, noise_seed=seed)
    entropies.extend(stats.action_entropy)
  assert np.mean(entropies) == pytest.approx(np.log(2) - 1 / 100, abs=0.005)
  _set_policy(model, [30.0, 0.0])
  stats = analysis.trajectory_statistics(model, ENV, seed=0, steps=20, action_samples=50)
  assert np.all(stats.action_entropy == 0.0)
  assert np.all(stats.map_action == 0)


def test_bad_sample_counts():
  model = _model('a3c')
  with pytest.raises(ValueError, match='value_samples'):
    analysis.trajectory_statistics(model, ENV, seed=0, value_samples=1)


def test_config_snapshot_iterations():
  cfg = config_lib.make_config(ENV, 'sa3c', 'cartpole_check', total_frames=8000)   # 8 envs x t_max 10: 100 iters
  assert cfg.total_iterations == 100
  assert cfg.resolved_snapshot_iterations == (1, 25, 50, 100)
  assert config_lib.make_config('atari_seaquest', 'sa3c', 'thesis').resolved_snapshot_iterations == \
      (100, 2000, 6000, 75_000, 150_000)
  with pytest.raises(ValueError, match='snapshot_iterations'):
    config_lib.make_config(ENV, 'sa3c', snapshot_iterations=(0, 3)).validate()
  roundtrip = config_lib.StochasticACConfig.from_dict(cfg.to_dict() | {'snapshot_iterations': [3, 1]})
  assert roundtrip.snapshot_iterations == (3, 1) and roundtrip.resolved_snapshot_iterations == (1, 3)


@pytest.fixture(scope='module')
def trained_runs(tmp_path_factory):
  """Two tiny cartpole_masked runs (A3C and SA3C) with snapshots at iterations 1, 3 and 6; the SA3C one stopped at
  iteration 4 and resumed, so its snapshots span two sessions."""
  root = tmp_path_factory.mktemp('analysis')
  dirs = {}
  for model in ('a3c', 'sa3c'):
    cfg = config_lib.make_config(ENV, model, 'cartpole_check', total_frames=480, num_envs=8, unroll_length=10,
                                 snapshot_iterations=(1, 3, 6), **SMALL)
    logdir = str(root / model)
    if model == 'sa3c':
      training.train(cfg, logdir, print_fn=lambda s: None, max_iterations=4)
      assert sorted(os.listdir(os.path.join(logdir, 'snapshots'))) == ['iteration_0000001', 'iteration_0000003']
    training.train(cfg, logdir, print_fn=lambda s: None)
    dirs[model] = logdir
  return dirs


def test_training_keeps_snapshots_and_analysis_reads_them(trained_runs):
  logdir = trained_runs['sa3c']
  assert sorted(os.listdir(os.path.join(logdir, 'snapshots'))) == [
      'iteration_0000001', 'iteration_0000003', 'iteration_0000006']
  snaps = analysis.run_snapshots(logdir)
  assert [s.iteration for s in snaps] == [1, 3, 6]
  assert [s.agent_steps for s in snaps] == [80, 240, 480]
  # The snapshot holds the weights of that iteration: iteration 6 is the run's last, equal to its checkpoint.
  cfg = config_lib.StochasticACConfig.load(logdir)

  def weights(path):
    shape, num_actions = evaluation.env_layout(ENV)
    model = evaluation.build_model(cfg, shape, num_actions).build_network()
    tf.train.Checkpoint(model=model).read(path).assert_existing_objects_matched().expect_partial()
    return [w.numpy() for w in model.weights]

  final = weights(tf.train.latest_checkpoint(os.path.join(logdir, 'checkpoints')))
  for a, b in zip(weights(snaps[-1].path), final):
    np.testing.assert_array_equal(a, b)
  assert any(not np.array_equal(a, b) for a, b in zip(weights(snaps[0].path), final))


def test_run_without_snapshots_uses_latest_checkpoint(trained_runs, tmp_path):
  import shutil  # pylint: disable=g-import-not-at-top
  copy = str(tmp_path / 'copy')
  shutil.copytree(trained_runs['a3c'], copy)
  shutil.rmtree(os.path.join(copy, 'snapshots'))
  snaps = analysis.run_snapshots(copy)
  assert len(snaps) == 1 and snaps[0].iteration == 6 and 'latest checkpoint' in snaps[0].label


def launcher(*args):
  return subprocess.run([sys.executable, '-m', 'launchers.stochastic_ac_analysis', *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=300)


def test_launcher_writes_figures_and_json(trained_runs, tmp_path):
  out = str(tmp_path / 'figs')
  proc = launcher(f'--runs={trained_runs["a3c"]},{trained_runs["sa3c"]}', '--steps=30', f'--out={out}')
  assert proc.returncode == 0, proc.stderr
  for name in ('value_variance.png', 'action_entropy.png', 'analysis.json'):
    assert os.path.getsize(os.path.join(out, name)) > 1000 or name == 'analysis.json'
  with open(os.path.join(out, 'analysis.json')) as f:
    result = json.load(f)
  assert [r['model'] for r in result['runs']] == ['a3c', 'sa3c']
  assert [s['iteration'] for s in result['runs'][1]['snapshots']] == [1, 3, 6]
  assert all(v == 0 for s in result['runs'][0]['snapshots'] for v in s['value_variance'])
  assert '[stochastic_ac_analysis] wrote' in proc.stdout


@pytest.mark.parametrize('args,needle', [
    ([], '--runs: give one or more run logdirs'),
    (['--runs=/nonexistent/run'], '--runs: /nonexistent/run is not a directory'),
    (['--runs=.', '--steps=0'], '--steps=0: must be an integer >= 1'),
    (['--runs=.', '--value_samples=1'], '--value_samples=1: must be >= 2'),
    (['--runs=.', '--action_samples=0'], '--action_samples=0: must be >= 1'),
    (['--runs=testdata'], 'holds no Chapter 2 run (no config.json)'),
])
def test_launcher_bad_input(args, needle):
  proc = launcher(*args)
  assert proc.returncode == 2, (proc.stdout, proc.stderr)
  assert 'Traceback' not in proc.stderr
  lines = [l for l in proc.stderr.splitlines() if l.strip()]
  assert len(lines) == 1 and lines[0].startswith('error: ') and needle in lines[0], proc.stderr
