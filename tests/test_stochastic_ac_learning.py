"""Chapter 2 learning checks that can fail (issue 10 §6; spec ch2 §9 A10): A3C and SA3C on `cartpole_masked`
(CartPole-v1 seeing only position and angle, actions held 2-4 physics steps) must clearly beat a uniformly random
policy within the `cartpole_check` preset's 60,000 agent steps. SA3C under that preset is the flagless default of
`python -m launchers.stochastic_ac`, and the trainer runs the same check at its end (`learning_check.py`).

Measure (`learning_check.check`): the mean return (balanced physics steps, at most 500) of the last 100 training
episodes, which the behaviour policy (sampled actions, sampled activations) played, against the mean of 100 episodes
of uniformly random actions on the same engine. Pass: at least 3x the random mean (random ~17-18; measured on the
shared 2-core machine: A3C and SA3C reach ~55-150 in this budget, and stay at the random level when the update does
nothing, learning rate 1e-12). Slow: about 1.5 minutes per model on 2 loaded cores.
"""

import os

import numpy as np
import pytest

from rlcv_tf.stochastic_ac import config as config_lib
from rlcv_tf.stochastic_ac import learning_check
from rlcv_tf.stochastic_ac import training


def test_check_verdicts():
  returns = np.r_[np.full(50, 10.0), np.full(100, 60.0)]
  ok = learning_check.check('cartpole_masked', 'cartpole_check', returns, random_mean=18.0)
  assert ok.passed and ok.trained == 60.0 and 'passed' in ok.line and '3.3x' in ok.line
  low = learning_check.check('cartpole_masked', 'cartpole_check', returns, random_mean=21.0)
  assert not low.passed and 'FAILED' in low.line
  few = learning_check.check('cartpole_masked', 'cartpole_check', returns[:99], random_mean=1.0)
  assert not few.passed and 'only 99 training episodes' in few.line
  assert learning_check.check('atari_seaquest', 'laptop', returns, random_mean=1.0) is None


def test_flagless_default_is_the_checked_stand_in():
  assert config_lib.default_preset('cartpole_masked', 'sa3c') == 'cartpole_check'
  assert config_lib.default_preset('pendulum', 'sddpg') == 'pendulum_check'
  assert config_lib.default_preset('atari_seaquest', 'sa3c') == 'laptop'
  assert learning_check.factor_for('cartpole_masked', 'cartpole_check') == 3.0


def test_random_play_on_cartpole_masked():
  assert 10.0 < learning_check.random_policy_return('cartpole_masked', 2) < 30.0


@pytest.mark.slow
@pytest.mark.parametrize('model', ['a3c', 'sa3c'])
def test_beats_a_random_policy_on_cartpole_masked(model, tmp_path):
  cfg = config_lib.make_config('cartpole_masked', model, 'cartpole_check', log_interval_s=1e9,
                               checkpoint_interval_s=1e9)
  lines = []
  result = training.train(cfg, str(tmp_path / model), print_fn=lines.append)
  check = result.learning_check
  print(f'{model}: {check["line"]}; {result.frames} agent steps in {result.wall_s:.0f} s')
  assert 10.0 < check['random'] < 30.0
  assert any(l.endswith(check['line']) for l in lines)
  assert os.path.exists(tmp_path / model / 'learning_check.json')
  assert os.path.getsize(tmp_path / model / 'returns.png') > 1000
  assert check['passed'], check
