"""`python -m launchers.stochastic_ac` and `launchers.stochastic_ac_eval` (issue 10 §5): bad input is one `error:`
line naming the flag and its valid values, exit 2, no traceback, the logdir untouched (unknown env / model, model vs
action space, --total_frames=-5, --num_envs=0, --num_samples=0, --log_var=nan, resume with another model, eval
without a checkpoint, a missing engine); a small run and its evaluation through both launchers."""

import json
import os
import subprocess
import sys

import pytest

from rlcv_tf.stochastic_ac import config as config_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(module, *args, env=None, timeout=300):
  return subprocess.run([sys.executable, '-m', f'launchers.{module}', *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=timeout, env=env)


def error_line(proc) -> str:
  assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
  assert 'Traceback' not in proc.stderr, proc.stderr
  lines = [l for l in proc.stderr.splitlines() if l.strip()]
  assert len(lines) == 1 and lines[0].startswith('error: '), proc.stderr
  return lines[0]


@pytest.mark.parametrize('args,needles', [
    (['--env=nope'], ['--env=nope: unknown environment; valid values:', 'atari_seaquest', 'cartpole_masked']),
    (['--env=grf_5v5'], ['--env=grf_5v5: a Chapter 4 environment', 'python -m launchers.marl']),
    (['--model=transformer'], ['--model=transformer: unknown model; valid values: a3c, sa3c', 'pn_ddpg']),
    (['--model=sddpg', '--env=atari_seaquest'], ['--model=sddpg: sddpg is a DDPG-family model for continuous '
                                                 'actions, but atari_seaquest has discrete actions', 'sa3c']),
    (['--model=sa3c', '--env=bipedal_walker'], ['--model=sa3c: sa3c is an A3C-family model for discrete actions',
                                                'ddpg, sddpg, pn_ddpg']),
    (['--total_frames=-5'], ['--total_frames=-5: must be an integer >= 1']),
    (['--num_envs=0'], ['--num_envs=0: must be an integer >= 1']),
    (['--num_samples=0'], ['--num_samples=0: must be an integer >= 1']),
    (['--log_var=nan'], ['--log_var=nan: must be a finite number']),
    (['--reward_clip=lots'], ['--reward_clip=lots: expected a positive number or none']),
    (['--eval_mode=argmax'], ['--eval_mode=argmax: unknown value', 'map, vote, mean_prob, sample']),
    (['--preset=huge'], ['--preset=huge: unknown preset for the A3C family; valid values: laptop, thesis, '
                         'cartpole_check']),
    (['--model=a3c', '--env=cartpole_masked', '--preset=pendulum_check'], ['--preset=pendulum_check: unknown preset '
                                                                           'for the A3C family']),
    (['--model=sddpg', '--env=pendulum', '--preset=cartpole_check'], ['--preset=cartpole_check: unknown preset for '
                                                                      'the DDPG family', 'pendulum_check']),
    (['--model=sddpg', '--env=pendulum', '--lstm_units=32'], ['--lstm_units: not a setting of the DDPG family']),
    (['--model=sacer', '--env=car_racing', '--num_envs=0'], ['--num_envs=0: must be an integer >= 1']),
])
def test_bad_flags_give_one_line_and_leave_the_logdir_alone(args, needles, tmp_path):
  logdir = tmp_path / 'run'
  line = error_line(run('stochastic_ac', *args, f'--logdir={logdir}'))
  for needle in needles:
    assert needle in line
  assert not logdir.exists()


def test_resume_with_another_model_is_refused_untouched(tmp_path):
  logdir = tmp_path / 'run'
  logdir.mkdir()
  (logdir / 'config.json').write_text(config_lib.make_config('cartpole_masked', 'hpa3c').to_json())
  before = sorted(os.listdir(logdir)), (logdir / 'config.json').read_text()
  line = error_line(run('stochastic_ac', '--env=cartpole_masked', '--model=sa3c', f'--logdir={logdir}'))
  assert f"--logdir={logdir} holds a run with model='hpa3c', but this run asks for model='sa3c'" in line
  line = error_line(run('stochastic_ac', '--env=cartpole_masked', '--model=hpa3c', '--lstm_units=32',
                        f'--logdir={logdir}'))
  assert 'lstm_units=64' in line and 'lstm_units=32' in line
  assert (sorted(os.listdir(logdir)), (logdir / 'config.json').read_text()) == before


def test_replay_models_go_to_the_off_policy_trainer(tmp_path):
  logdir = tmp_path / 'run'
  proc = run('stochastic_ac', '--env=pendulum', '--model=sddpg', '--preset=pendulum_check', '--total_frames=100',
             f'--logdir={logdir}')
  assert proc.returncode == 0, proc.stderr
  assert '[stochastic_ac] pendulum / sddpg (DDPG family, replay), preset pendulum_check: 100 agent steps' in proc.stdout
  assert '[sddpg] done: 100 agent steps' in proc.stdout
  saved = json.loads((logdir / 'config.json').read_text())
  assert (saved['model'], saved['preset'], saved['warmup'], saved['batch_size']) == ('sddpg', 'pendulum_check', 500, 64)
  line = error_line(run('stochastic_ac', '--env=pendulum', '--model=pn_ddpg', f'--logdir={logdir}'))
  assert "holds a run with model='sddpg', but this run asks for model='pn_ddpg'" in line


def test_missing_ale_py_is_one_line_with_the_pip_command(tmp_path):
  shim = tmp_path / 'shim' / 'ale_py'
  shim.mkdir(parents=True)
  (shim / '__init__.py').write_text('raise ImportError("No module named ale_py (test shim)")\n')
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / 'shim'), ROOT]))
  logdir = tmp_path / 'run'
  line = error_line(run('stochastic_ac', '--env=atari_breakout', '--model=a3c', f'--logdir={logdir}', env=env))
  assert 'pip install ale-py==0.12.1' in line
  assert not logdir.exists()


def test_eval_without_a_checkpoint(tmp_path):
  line = error_line(run('stochastic_ac_eval', f'--runs={tmp_path / "missing"}'))
  assert 'is not a directory' in line
  empty = tmp_path / 'empty'
  empty.mkdir()
  line = error_line(run('stochastic_ac_eval', f'--runs={empty}'))
  assert 'holds no Chapter 2 run (no config.json)' in line
  (empty / 'config.json').write_text(config_lib.make_config('cartpole_masked', 'sa3c').to_json())
  line = error_line(run('stochastic_ac_eval', f'--runs={empty}'))
  assert 'holds no checkpoint yet' in line
  assert sorted(os.listdir(empty)) == ['config.json']
  line = error_line(run('stochastic_ac_eval', f'--runs={empty}', '--mode=best'))
  assert '--mode=best: unknown mode' in line
  line = error_line(run('stochastic_ac_eval', f'--runs={empty}', '--num_samples=0'))
  assert '--num_samples=0' in line


@pytest.mark.slow
def test_a_small_run_and_its_evaluation_through_the_launchers(tmp_path):
  logdir = tmp_path / 'run'
  proc = run('stochastic_ac', '--env=cartpole_masked', '--model=sa3c', '--total_frames=40', '--num_envs=2',
             '--unroll_length=10', '--validate_every_frames=20', '--eval_max_steps=50', f'--logdir={logdir}')
  assert proc.returncode == 0, proc.stderr
  assert ('[stochastic_ac] cartpole_masked / sa3c (A3C family, synchronous on-policy), preset cartpole_check'
          in proc.stdout)
  assert '[stochastic_ac] done: 40 agent steps, 2 iterations' in proc.stdout
  assert {'config.json', 'checkpoints', 'best', 'saved_model'} <= set(os.listdir(logdir))
  out = tmp_path / 'protocol.json'
  proc = run('stochastic_ac_eval', f'--runs={logdir},{logdir}', '--episodes=2', '--mode=vote', '--num_samples=3',
             f'--output={out}')
  assert proc.returncode == 0, proc.stderr
  assert '| cartpole_masked | sa3c | vote-3 |' in proc.stdout
  result = json.loads(out.read_text())
  assert len(result['runs']) == 2 and len(result['runs'][0]['scores']) == 2
  assert result['runs'][0]['scores'] == result['runs'][1]['scores']        # same weights, seeds and noise seed
  assert result['seeds'] == list(config_lib.test_seeds(2))
