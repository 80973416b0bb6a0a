"""acvae/training: the learning check's verdicts on hand-made numbers (it must be able to fail on each of its three
conditions), and a resume with another model or other attributes refused before anything is built."""

import json
import os

import pytest

from rlcv_tf.acvae import presets
from rlcv_tf.acvae import run_config
from rlcv_tf.acvae import training
from rlcv_tf.core import runs

GOOD = {'recon_over_mean': 0.34, 'accuracy_generated': 0.883, 'accuracy_real': 0.992, 'accuracy_baseline': 0.719}


def test_the_default_runs_numbers_pass():
  ok, line = training.learning_check(GOOD)
  assert ok and line.startswith('learning check passed')
  assert '88.3%' in line and '71.9%' in line


@pytest.mark.parametrize('field,value', [
    ('recon_over_mean', 0.61),          # reconstructions barely better than the mean image
    ('accuracy_generated', 0.79),       # generations ignore the attributes (+7.1 points only)
    ('accuracy_real', 0.83),            # the classifier itself cannot judge (+11.1 points)
])
def test_each_condition_can_fail_alone(field, value):
  ok, line = training.learning_check({**GOOD, field: value})
  assert not ok and 'FAILED' in line


def _write_run(logdir, cfg, dataset='synth_faces'):
  os.makedirs(logdir)
  with open(os.path.join(logdir, 'config.json'), 'w') as f:
    json.dump({'model': cfg.to_dict(), 'run': {'dataset': dataset}}, f)


def test_a_resume_with_another_model_attributes_or_data_is_refused(tmp_path):
  cfg = presets.get_preset('tiny_acvaegan')
  run = run_config.RunConfig(dataset='synth_faces')
  logdir = str(tmp_path / 'run')
  _write_run(logdir, cfg)
  training.check_resume(cfg, run, logdir)                          # the same settings resume
  with pytest.raises(runs.ResumeMismatchError, match="model='acvaegan'.*model='crvaegan'"):
    training.check_resume(presets.get_preset('tiny_crvaegan'), run, logdir)
  other = cfg.replace(attribute_names=tuple(reversed(cfg.attribute_names)))
  with pytest.raises(runs.ResumeMismatchError, match='attribute_names'):
    training.check_resume(other, run, logdir)
  with pytest.raises(runs.ResumeMismatchError, match='--dataset=synth_faces, not celeba'):
    training.check_resume(cfg, run_config.RunConfig(dataset='celeba'), logdir)
