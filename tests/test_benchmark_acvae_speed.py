"""benchmarks/acvae_speed.py (issue 12 §5, Chapter 6 compute ratios) run end to end at --scale=tiny, and its guards.

Not timings (benchmarks are not tests): the script exits 0, appends its JSON line and writes the Markdown report,
prints the ratios, and the figures it derives agree with the measurements it saved, recomputed here independently
(medians over rounds, ratios to cVAE-GAN by the medians and by the fastest rounds, the grown 2R / R step and the
cost per image, the pipeline's batches/s against what the 2R step consumes). Its parameter counts agree with the
models' optimiser groups (`networks.model_parameter_counts`, another path through the model than the benchmark's
trainable variables), its settings with the presets. The advice printed when the input is too slow names the fixes
and the right memory figure. Bad flags give one `error:` line, exit 2 and write nothing.
"""

import importlib.util
import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from rlcv_tf.acvae import presets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'benchmarks', 'acvae_speed.py')
MODELS = ('cvaegan', 'crvaegan', 'acvaegan')
ROUNDS = 2
ARGS = ('--scale=tiny', f'--rounds={ROUNDS}', '--warmup_steps=1', '--train_iters=1', '--eval_iters=1',
        '--pipeline_batches=2')


def _run(*args, timeout=240):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=timeout, env=env,
                        cwd=ROOT)


@pytest.fixture(scope='module')
def bench_module():
  spec = importlib.util.spec_from_file_location('acvae_speed_under_test', SCRIPT)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
  out = str(tmp_path_factory.mktemp('acvae_speed') / 'as')
  with open(out + '.jsonl', 'w') as f:      # an earlier line of another benchmark stays and is not reported
    f.write(json.dumps({'benchmark': 'other', 'earlier': True}) + '\n')
  res = _run(*ARGS, f'--out={out}')
  assert res.returncode == 0, res.stderr[-3000:]
  with open(out + '.jsonl') as f:
    rows = [json.loads(line) for line in f if line.strip()]
  with open(out + '.md') as f:
    report = f.read()
  return res, rows, report


def test_row_medians_and_model_ratios(tiny_run):
  res, rows, report = tiny_run
  earlier, row = rows
  assert earlier == {'benchmark': 'other', 'earlier': True}
  assert row['benchmark'] == 'acvae_speed' and row['settings']['scale'] == 'tiny'
  assert row['settings']['rounds'] == ROUNDS
  for key in ('start', 'after_setup', 'end'):
    assert len(row['load_average'][key]) == 3
  models = row['models']
  assert set(models) == set(MODELS) | {'acvaegan_2R'}
  for name in MODELS:
    cfg = presets.get_preset(f'tiny_{name}')
    m = models[name]
    assert (m['resolution'], m['batch_size'], m['latent_shape']) == (16, cfg.batch_size, list(cfg.latent_shape))
    assert len(m['d_updated_last_step_of_round']) == ROUNDS
  for m in models.values():
    for k in ('train_step', 'generate', 'encode'):
      times = m['times_ms_all'][k]
      assert len(times) == ROUNDS and min(times) > 0
      np.testing.assert_allclose(m['ms_median'][k], np.median(times), rtol=1e-9)
    np.testing.assert_allclose(m['train_images_per_s'], m['batch_size'] / (np.median(m['times_ms_all']['train_step'])
                                                                            / 1e3), rtol=1e-9)
  base = models['cvaegan']
  ratios = {e['model']: e for e in row['ratios']}
  assert list(ratios) == list(MODELS)
  for name in MODELS:
    e, m = ratios[name], models[name]
    for k in ('train_step', 'generate', 'encode'):
      np.testing.assert_allclose(e[k], np.median(m['times_ms_all'][k]) / np.median(base['times_ms_all'][k]),
                                 rtol=1e-9)
      np.testing.assert_allclose(e[f'{k}_fastest_round'], min(m['times_ms_all'][k]) / min(base['times_ms_all'][k]),
                                 rtol=1e-9)
    for k in ('vae_params', 'encode_params', 'generate_params', 'discriminator_params'):
      assert m[k] > 0
      np.testing.assert_allclose(e[k], m[k] / base[k], rtol=1e-12)
  assert all(ratios['cvaegan'][k] == 1.0 for k in ('train_step', 'vae_params', 'discriminator_params'))
  # Printed side by side, with the values saved.
  for name, label in (('crvaegan', 'crVAE-GAN'), ('acvaegan', 'acVAE-GAN')):
    m = re.search(rf'^{label} / cVAE-GAN: train step ([0-9.]+)x .* generate ([0-9.]+)x .* encode ([0-9.]+)x .* '
                  rf'VAE parameters ([0-9.]+)x, D parameters ([0-9.]+)x', res.stdout, re.M)
    assert m, res.stdout[-3000:]
    for value, key in zip(m.groups(), ('train_step', 'generate', 'encode', 'vae_params', 'discriminator_params')):
      assert abs(float(value) - ratios[name][key]) < 0.006, (name, key)
  assert '## Headline ratios' in report and '| train step (ms / batch, median) |' in report
  assert 'load average' in report and 'fastest rounds' in report and 'nothing is claimed' in report


def test_parameter_counts_match_the_optimiser_groups(tiny_run):
  from rlcv_tf.acvae import networks  # pylint: disable=g-import-not-at-top
  _, rows, _ = tiny_run
  models = rows[-1]['models']
  for name in MODELS:
    vae, disc = networks.build_models(presets.get_preset(f'tiny_{name}'))
    counts = networks.model_parameter_counts(vae, disc)
    d_groups = {f'd_{g}' if not g.startswith('d_') else g for g in disc.variable_groups()}
    vae_groups = set(vae.variable_groups())
    assert models[name]['vae_params'] == sum(counts[g] for g in vae_groups), name
    assert models[name]['discriminator_params'] == sum(counts[g] for g in d_groups), name
    # encode reads from-RGB, E and LSTM_inf; generate the prior, LSTM_gen, Dec and to-RGB; both read the attention.
    shared = counts.get('attention', 0)
    assert models[name]['encode_params'] == sum(counts.get(g, 0) for g in ('from_rgb', 'enc', 'lstm_inf')) + shared
    assert models[name]['generate_params'] == sum(counts.get(g, 0)
                                                  for g in ('prior', 'lstm_gen', 'dec', 'to_rgb')) + shared


def test_grown_step_and_pipeline(tiny_run):
  res, rows, report = tiny_run
  row = rows[-1]
  g, r, grown = row['models']['acvaegan_2R'], row['models']['acvaegan'], row['grown']
  assert (grown['resolution'], grown['base_resolution'], grown['pixel_ratio'], grown['alpha']) == (32, 16, 4.0, 0.5)
  assert g['batch_size'] == r['batch_size'] and g['resolution'] == 32
  step, r_step = np.median(g['times_ms_all']['train_step']), np.median(r['times_ms_all']['train_step'])
  np.testing.assert_allclose(grown['ratio'], step / r_step, rtol=1e-9)
  np.testing.assert_allclose(grown['fastest_round_ratio'],
                             min(g['times_ms_all']['train_step']) / min(r['times_ms_all']['train_step']), rtol=1e-9)
  np.testing.assert_allclose(grown['ms_per_image'], step / g['batch_size'], rtol=1e-9)
  np.testing.assert_allclose(grown['r_ms_per_image'], r_step / r['batch_size'], rtol=1e-9)
  # Growing adds layers: more parameters than the R model, not fewer.
  assert g['vae_params'] > r['vae_params'] and g['discriminator_params'] > r['discriminator_params']
  m = re.search(r'^grown acVAE-GAN 32 px / 16 px: train step ([0-9.]+)x', res.stdout, re.M)
  assert m and abs(float(m.group(1)) - grown['ratio']) < 0.006, res.stdout[-3000:]

  p = row['pipeline']
  cfg = presets.get_preset('tiny_acvaegan')
  assert (p['dataset'], p['resolution'], p['batch_size'], p['seed']) == ('synth_faces', 32, cfg.batch_size, cfg.seed)
  assert p['attributes'] == list(cfg.attribute_names) and p['train'] and p['epochs'] is None and not p['cache']
  assert len(p['batches_per_s_all']) == ROUNDS and min(p['batches_per_s_all']) > 0
  np.testing.assert_allclose(p['batches_per_s'], np.median(p['batches_per_s_all']), rtol=1e-9)
  np.testing.assert_allclose(p['step_batches_per_s'], 1e3 / step, rtol=1e-9)
  np.testing.assert_allclose(p['ratio'], np.median(p['batches_per_s_all']) * step / 1e3, rtol=1e-9)
  np.testing.assert_allclose(p['fastest_round_ratio'],
                             max(p['batches_per_s_all']) * min(g['times_ms_all']['train_step']) / 1e3, rtol=1e-9)
  assert math.isfinite(p['ratio']) and p['ratio'] > 0
  assert bool(p['fixes']) == (min(p['ratio'], p['fastest_round_ratio']) < 1)
  m = re.search(r'^pipeline synth_faces 32 px: [0-9.]+ batches/s vs [0-9.]+ the 2R step consumes: ratio ([0-9.]+)',
                res.stdout, re.M)
  assert m and abs(float(m.group(1)) - p['ratio']) < 0.006, res.stdout[-3000:]
  assert '## The 32 px input pipeline vs the 2R step' in report and '## Grown acVAE-GAN: 16 -> 32 px' in report


def test_fixes_name_the_remedies(bench_module, tiny_run):
  row = dict(dataset='synth_faces', data_dir='', resolution=64, cache=False, num_examples_in_split=10_000,
             private_threadpool_size=None)
  text = ' '.join(bench_module.fixes(row))
  assert 'cache=True' in text and '10,000 images' in text
  assert '117 MiB' in text          # 10,000 x 64 x 64 x 3 bytes = 117.2 MiB
  assert 'more parallelism' in text and 'all ' in text and 'numpy_function' in text
  assert 'make_image_cache' not in text          # only for real images
  text = ' '.join(bench_module.fixes(dict(row, dataset='celeba', data_dir='/data/celeba', cache=True)))
  assert 'cache=True' not in text and 'make_image_cache.py --dataset=celeba' in text and '--resolution=64' in text
  # A run whose input falls behind: the report says so and lists the fixes.
  row = json.loads(json.dumps(tiny_run[1][-1]))
  row['pipeline'].update(ratio=0.5, fastest_round_ratio=0.7)
  row['pipeline']['fixes'] = bench_module.fixes(row['pipeline'])
  report = bench_module.markdown([row])
  assert 'What would fix it' in report and 'Above 1 by both' not in report
  assert all(f'- {f}' in report for f in row['pipeline']['fixes']) and len(row['pipeline']['fixes']) >= 3


def test_bad_flags_give_one_error_line(tmp_path):
  for flag, words in (('--scale=huge', 'one of tiny, small32, full64'),
                      ('--rounds=0', 'must be >= 1'),
                      ('--batch_size=10', 'multiple of 6'),
                      ('--threads=-1', '--threads=-1'),
                      (f'--data_dir={tmp_path}', 'no CelebA there')):
    res = _run(flag, f'--out={tmp_path / "x"}', timeout=60)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith('error: ') and words in lines[0], (
        flag, res.stderr[-2000:])
    assert not os.path.exists(str(tmp_path / 'x.jsonl'))
