"""benchmarks/video_throughput.py (issue 13 §7, Chapter 7 throughput) run end to end with --quick, and its guards.

Not timings (benchmarks are not tests; nothing here asserts a speed): the script exits 0, writes its JSON and
Markdown report, and every figure it derives agrees with the measurements it saved and with the numbers it printed,
recomputed here independently: clips/s per round from batches x batch size / seconds, medians over rounds, the
input / train and end-to-end / train ratios (by the medians and by the fastest rounds), the goal verdicts, the Enc_v
ms per clip and its ratios, the rough-load flag. Enc_v's parameter counts agree with a freshly built encoder's
weights counted in NumPy. Bad flags give one `error:` line, exit 2 and write nothing.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'benchmarks', 'video_throughput.py')
VARIANTS = ('mmnist_input_stage1', 'mmnist_input_stage2', 'shards_input', 'stage1_train', 'stage2_train',
            'stage1_end_to_end', 'stage2_end_to_end')
REPEATS = 3                    # odd, so that a mean in place of the median shows


def _run(*args, timeout=240):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=timeout, env=env,
                        cwd=ROOT)


@pytest.fixture(scope='module')
def quick_run(tmp_path_factory):
  out = str(tmp_path_factory.mktemp('video_throughput') / 'vt')
  res = _run('--quick', f'--repeats={REPEATS}', f'--out={out}')
  assert res.returncode == 0, res.stderr[-3000:]
  with open(out + '.json') as f:
    row = json.load(f)
  with open(out + '.md') as f:
    report = f.read()
  return res, row, report


def test_json_keys_settings_and_machine(quick_run):
  _, row, report = quick_run
  assert row['benchmark'] == 'video_throughput'
  assert {'machine', 'settings', 'rates', 'decode', 'input_over_train', 'end_to_end_over_train', 'goals', 'encoder',
          'encoder_ratios', 'load_average', 'max_load_1min', 'rough', 'other_work', 'other_work_end'} <= set(row)
  m = row['machine']
  assert m['cpu_count'] == os.cpu_count() and m['tf_version'] and m['device'] in ('CPU only',) + tuple(
      f'GPU ({n})' for n in range(1, 17))
  st = row['settings']
  assert st['quick'] and st['preset'] == 'tiny' and st['batch_size'] == 2 and st['repeats'] == REPEATS
  assert st['encv_presets'] == ['tiny', 'small'] and st['num_frames'] == 8 and st['image_size'] == 32
  # The load: three readings plus one per round, the rough flag from the largest 1-minute reading.
  load = row['load_average']
  assert len(load['by_round']) == REPEATS and all(len(r) == 3 for r in [load['start'], load['end']] + load['by_round'])
  largest = max(r[0] for r in [load['start'], load['after_setup'], load['end']] + load['by_round'])
  assert row['max_load_1min'] == largest and row['rough'] == (largest > 1.0)
  assert ('**Rough numbers**' in report) == row['rough']
  for heading in ('## Machine', '## Ratios', '## Clips per second', '## Decoding', '## Enc_v: tiny vs small'):
    assert heading in report, heading


def test_rates_are_medians_of_the_rounds(quick_run):
  _, row, _ = quick_run
  st = row['settings']
  assert set(row['rates']) == set(VARIANTS)
  for name, r in row['rates'].items():
    frames = st['stage1_clip_length'] if name.startswith(('stage1', 'mmnist_input_stage1')) else st['num_frames']
    channels = 3 if name == 'shards_input' else 1
    assert r['clip_shape'] == [st['batch_size'], frames, st['image_size'], st['image_size'], channels], name
    assert r['batch_size'] == st['batch_size'] and r['frames'] == frames
    assert r['batches_per_round'] == (st['input_batches'] if 'input' in name else st['train_batches'])
    assert len(r['seconds_all']) == REPEATS and min(r['seconds_all']) > 0
    per_round = [r['batches_per_round'] * r['batch_size'] / s for s in r['seconds_all']]
    np.testing.assert_allclose(r['clips_per_s_all'], per_round, rtol=1e-12)
    np.testing.assert_allclose(r['clips_per_s'], sorted(per_round)[REPEATS // 2], rtol=1e-12)
    np.testing.assert_allclose(r['frames_per_s'], r['clips_per_s'] * frames, rtol=1e-12)
  d = row['decode']
  assert d['videos_written'] == d['videos_listed'] == 11 and d['videos_skipped'] == 0   # 10 actions + a second take
  assert d['frames_decoded'] == 11 * st['standin_frames'] and d['decode_frames_per_s'] > 0
  np.testing.assert_allclose(d['decode_frames_per_s'], np.median(d['decode_frames_per_s_all']), rtol=1e-12)


def _printed(stdout, key):
  m = re.search(rf'^{re.escape(key)}: ([0-9.]+) / ([0-9.]+) clips/s = ([0-9.]+) \(([0-9.]+) fastest rounds', stdout,
                re.M)
  assert m, (key, stdout[-3000:])
  return [float(g) for g in m.groups()]


def test_ratios_come_from_the_reported_rates(quick_run):
  res, row, report = quick_run
  rates = row['rates']
  pairs = {('input/train', 'stage1'): ('mmnist_input_stage1', 'stage1_train'),
           ('input/train', 'stage2'): ('mmnist_input_stage2', 'stage2_train'),
           ('input/train', 'shards_stage2'): ('shards_input', 'stage2_train'),
           ('end_to_end/train', 'stage1'): ('stage1_end_to_end', 'stage1_train'),
           ('end_to_end/train', 'stage2'): ('stage2_end_to_end', 'stage2_train')}
  for (kind, key), (num, den) in pairs.items():
    e = row['input_over_train' if kind == 'input/train' else 'end_to_end_over_train'][key]
    assert (e['numerator'], e['denominator']) == (num, den)
    a, b = rates[num], rates[den]
    np.testing.assert_allclose(e['value'], np.median(a['clips_per_s_all']) / np.median(b['clips_per_s_all']),
                               rtol=1e-9)
    np.testing.assert_allclose(e['fastest_round_value'], max(a['clips_per_s_all']) / max(b['clips_per_s_all']),
                               rtol=1e-9)
    # The printed line: both rates as saved, and the ratio is theirs (to the printed rounding).
    x, y, ratio, fastest = _printed(res.stdout, f'{kind} {key}')
    assert abs(x - a['clips_per_s']) <= 0.005 and abs(y - b['clips_per_s']) <= 0.005
    assert abs(ratio - e['value']) <= 0.0005 and abs(fastest - e['fastest_round_value']) <= 0.0005
    assert abs(ratio - x / y) <= 0.0005 + ratio * (0.005 / x + 0.005 / y), (kind, key)
    assert f'{kind} {key}: {x:.2f} / {y:.2f} clips/s = {ratio:.3f}' in report
  goals = {g['goal']: g for g in row['goals']}
  assert list(goals) == ['stage 1 end-to-end / train-only >= 0.9', 'stage 2 end-to-end / train-only >= 0.9']
  for stage, g in zip(('stage1', 'stage2'), goals.values()):
    e = row['end_to_end_over_train'][stage]
    assert g['value'] == e['value'] and g['met'] == (e['value'] >= 0.9)
    assert g['met_fastest_round'] == (e['fastest_round_value'] >= 0.9)
    verdict = re.search(rf'^end_to_end/train {stage}: .* goal >= 0.9: (met|NOT met) by the medians, (met|NOT met) by '
                        'the fastest rounds$', res.stdout, re.M)
    assert verdict and verdict.groups() == ('met' if g['met'] else 'NOT met',
                                            'met' if g['met_fastest_round'] else 'NOT met'), res.stdout[-2000:]


def test_encoder_widths_times_and_parameters(quick_run):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from rlcv_tf.video import models  # pylint: disable=g-import-not-at-top
  from rlcv_tf.video import presets  # pylint: disable=g-import-not-at-top
  res, row, _ = quick_run
  enc, rat = row['encoder'], row['encoder_ratios']
  assert list(enc) == ['tiny', 'small'] and rat['label'] == 'small / tiny'
  for name, e in enc.items():
    cfg = presets.get_preset('mmnist', name)
    assert e['widths'] == [cfg.video_width * k for k in (1, 2, 4, 8)] and e['batch'] == 1
    encoder = models.VideoEncoder(cfg)
    encoder(tf.zeros((1,) + cfg.video_shape), training=False)
    assert e['params'] == sum(int(np.prod(w.shape)) for w in encoder.weights), name
    assert e['trainable_params'] == sum(int(np.prod(w.shape)) for w in encoder.trainable_weights), name
    for mode in ('forward', 'forward_backward'):
      times = e[f'{mode}_ms_per_clip_all']
      assert len(times) == row['settings']['encv_repeats'] and min(times) > 0
      np.testing.assert_allclose(e[f'{mode}_ms_per_clip'], np.median(times), rtol=1e-12)
    m = re.search(rf'^Enc_v {name}: ([0-9,]+) parameters .* forward ([0-9.]+) ms/clip, forward\+backward ([0-9.]+) '
                  'ms/clip', res.stdout, re.M)
    assert m and int(m.group(1).replace(',', '')) == e['params'], res.stdout[-2000:]
    assert abs(float(m.group(2)) - e['forward_ms_per_clip']) <= 0.005
  assert enc['small']['params'] > enc['tiny']['params']
  np.testing.assert_allclose(rat['params'], enc['small']['params'] / enc['tiny']['params'], rtol=1e-12)
  for mode in ('forward', 'forward_backward'):
    np.testing.assert_allclose(rat[f'{mode}_ms_per_clip'],
                               enc['small'][f'{mode}_ms_per_clip'] / enc['tiny'][f'{mode}_ms_per_clip'], rtol=1e-12)


def test_bad_flags_give_one_error_line(tmp_path):
  for flag, words in (('--preset=huge', 'one of tiny, small, paper'),
                      ('--encv_presets=small', 'two different presets'),
                      ('--repeats=0', 'must be >= 1'),
                      ('--standin_frames=9', 'at least 14')):
    res = _run(flag, f'--out={tmp_path / "x"}', timeout=60)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith('error: ') and words in lines[0], (
        flag, res.stderr[-2000:])
    assert not os.path.exists(str(tmp_path / 'x.json'))
