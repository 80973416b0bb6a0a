r"""Chapter 7's Weizmann and RAVDESS protocols end to end on the generated stand-ins, through the launchers: write
stand-in videos in the published layouts (plus broken files), decode them once into shards, train the tiny stage 1,
stage 2 and the Table 7.1 baselines, then Table 7.2 (attentive, leave one actor out), Table 7.1's retrieval rows and
Table 7.3's fine-tuning. Writes <out>.md, <out>.json and the montages (<out>_*.png).

  python examples/video_standins.py                        # ~15 min on 2 cores; docs/video_standins
  python examples/video_standins.py --steps=4 --epochs=1 --out=/tmp/vs --logdir=/tmp/vs_runs        # smoke

The stand-ins are stick figures and cartoon faces (rlcv_tf/datasets/video_standins.py). What this shows is that the
readers, the skip accounting, training and every protocol run on the published layouts; the numbers are not the
thesis's and say nothing about it. The commands for the real data sets are in the output. Every step is a plain
command (printed before it runs); finished steps are reused when the example is run again.
"""

import json
import os
import shutil

from absl import app
from absl import flags

import example_steps  # pylint: disable=g-bad-import-order  (examples/, on sys.path when run as a script)


flags.DEFINE_integer('steps', 300, 'Steps of every training run (tiny preset).')
flags.DEFINE_integer('epochs', 5, 'Epochs of the attentive head and of each fine-tuning fold.')
flags.DEFINE_integer('weizmann_actors', 9, 'Stand-in Weizmann actors (10 actions each; the real set has 9).')
flags.DEFINE_integer('ravdess_actors', 5, 'Stand-in RAVDESS actors (10 recordings each; the real set has 24).')
flags.DEFINE_integer('seed', 0, 'Seed of the stand-ins, every run and the evaluation.')
flags.DEFINE_string('logdir', 'runs/video_standins', 'Root of the stand-in data, shards and runs.')
flags.DEFINE_string('out', 'docs/video_standins', 'Output prefix (.md, .json, _*.png).')
FLAGS = flags.FLAGS


def _run(name, args, log, module=True):
  return example_steps.run('video_standins', name, args, log, module)


_json = example_steps.read_json


def _small_copy(src, dst, max_width=1200):
  """Copies a PNG, shrunk (area) to at most `max_width` pixels wide, so the docs stay small."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  image = Image.open(src)
  if image.width > max_width:
    image = image.resize((max_width, round(image.height * max_width / image.width)), Image.BOX)
  image.save(dst, optimize=True)


def _pct(x):
  return '–' if x is None else f'{100 * x:.1f} %'


def _data(root, timings):
  raw = os.path.join(root, 'raw')
  if not os.path.exists(os.path.join(raw, 'ravdess')):
    timings['stand-ins'] = _run('stand-ins', [
        'scripts/make_video_testdata.py', f'--out={raw}', '--kind=all', f'--actors={FLAGS.weizmann_actors}',
        '--frames=32', f'--ravdess_actors={FLAGS.ravdess_actors}', '--ravdess_frames=48',
        '--ravdess_size=320x180', f'--seed={FLAGS.seed}'], os.path.join(root, 'standins.log'), module=False)
    # Two broken files among the Weizmann videos, so the report shows the skip accounting (2 of 92 < 5 %).
    broken = os.path.join(raw, 'broken')
    shutil.copy(os.path.join(broken, 'random.avi'), os.path.join(raw, 'weizmann', 'bend', 'zulu_bend.avi'))
    shutil.copy(os.path.join(broken, 'truncated.avi'), os.path.join(raw, 'weizmann', 'jack', 'zulu_jack.avi'))
  shards = {}
  for dataset in ('weizmann', 'ravdess'):
    out = os.path.join(root, f'{dataset}_shards')
    report = _json(os.path.join(out, 'prepare_report.json'))
    if not report or report.get('status') != 'complete':
      timings[f'prepare {dataset}'] = _run(f'prepare {dataset}', [
          'launchers.video_prepare', f'--dataset={dataset}', f'--data_dir={os.path.join(raw, dataset)}',
          f'--out={out}'], os.path.join(root, f'prepare_{dataset}.log'))
    shards[dataset] = out
  return shards


def _train(name, args, root, timings):
  logdir = os.path.join(root, name)
  done = _json(os.path.join(logdir, 'eval.json'))
  if not (done and done.get('step') == FLAGS.steps):
    timings[name] = _run(name, ['launchers.video', '--preset=tiny', f'--steps={FLAGS.steps}', f'--seed={FLAGS.seed}',
                                f'--logdir={logdir}', '--log_interval_s=60'] + args,
                         os.path.join(root, f'{name}.log'))
    done = _json(os.path.join(logdir, 'eval.json'))
  return logdir, done


def _evaluate(name, args, root, timings):
  out = os.path.join(root, f'eval_{name}')
  timings[f'eval {name}'] = _run(f'eval {name}', ['launchers.video_eval', f'--out={out}', f'--seed={FLAGS.seed}']
                                 + args, os.path.join(root, f'eval_{name}.log'))
  return out, _json(os.path.join(out, 'eval.json'))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  root = os.path.abspath(FLAGS.logdir)
  os.makedirs(root, exist_ok=True)
  out = os.path.abspath(FLAGS.out)
  os.makedirs(os.path.dirname(out), exist_ok=True)
  timings = {}
  shards = _data(root, timings)
  runs, checks = {}, {}
  for dataset in ('weizmann', 'ravdess'):
    data = [f'--dataset={dataset}', f'--data_dir={shards[dataset]}']
    s1, checks[f'{dataset} stage1'] = _train(f'{dataset}_stage1', data + ['--stage=1'], root, timings)
    runs[f'{dataset} stage2'], checks[f'{dataset} stage2'] = _train(
        f'{dataset}_stage2', data + ['--stage=2', f'--stage1_logdir={s1}'], root, timings)
    for model in ('classifier', 'autoencoder'):
      runs[f'{dataset} {model}'], checks[f'{dataset} {model}'] = _train(
          f'{dataset}_{model}', data + [f'--model={model}'], root, timings)
  evals = {}
  evals['weizmann attentive'] = _evaluate('weizmann_attentive', [
      '--task=attentive', f'--logdir={runs["weizmann stage2"]}', f'--epochs={FLAGS.epochs}'], root, timings)
  for dataset in ('weizmann', 'ravdess'):
    evals[f'{dataset} retrieval'] = _evaluate(f'{dataset}_retrieval', [
        '--task=retrieval', f'--logdir={runs[f"{dataset} stage2"]}',
        f'--classifier_logdir={runs[f"{dataset} classifier"]}',
        f'--autoencoder_logdir={runs[f"{dataset} autoencoder"]}'], root, timings)
  evals['ravdess finetune, pretrained (shared)'] = _evaluate('ravdess_finetune_shared', [
      '--task=finetune', f'--logdir={runs["ravdess stage2"]}', '--cv_pretrain=shared', f'--epochs={FLAGS.epochs}',
      f'--num_folds={min(5, FLAGS.ravdess_actors)}'], root, timings)
  evals['ravdess finetune, random init'] = _evaluate('ravdess_finetune_random', [
      '--task=finetune', '--init=random', '--preset=tiny', f'--data_dir={shards["ravdess"]}',
      f'--epochs={FLAGS.epochs}', f'--num_folds={min(5, FLAGS.ravdess_actors)}'], root, timings)

  images = {}
  for name, (path, _) in evals.items():
    png = os.path.join(path, 'retrieval_montage.png')
    if os.path.exists(png):
      key = name.replace(' ', '_')
      images[key] = f'{out}_{key}.png'
      _small_copy(png, images[key])
  reports = {d: _json(os.path.join(shards[d], 'prepare_report.json')) for d in shards}
  record = {
      'settings': {'steps': FLAGS.steps, 'epochs': FLAGS.epochs, 'weizmann_actors': FLAGS.weizmann_actors,
                   'ravdess_actors': FLAGS.ravdess_actors, 'seed': FLAGS.seed, 'preset': 'tiny'},
      'seconds': {k: round(v, 1) for k, v in timings.items()},
      'prepare': {d: {k: r[k] for k in ('counts', 'timing', 'skipped', 'listing_skipped', 'keypoints',
                                        'image_shape', 'settings')} for d, r in reports.items()},
      'learning_checks': {k: v and v.get('learning_check') for k, v in checks.items()},
      'evaluations': {k: e['results'] for k, (_, e) in evals.items()},
      'images': {k: os.path.relpath(v, os.path.dirname(out)) for k, v in images.items()},
  }
  with open(f'{out}.json', 'w') as f:
    json.dump(record, f, indent=1, sort_keys=True, default=str)

  prep = ['| data set | listed | written | skipped (kind: count) | bad names | frames decoded | frames/s | stored |',
          '|---|---:|---:|---|---:|---:|---:|---|']
  for d, r in reports.items():
    c = r['counts']
    kinds = ', '.join(f'{k}: {v}' for k, v in sorted(c['skipped_by_kind'].items())) or '–'
    fps = r['timing']['decode_frames_per_s']
    prep.append(f'| {d} | {c["listed"]} | {c["written"]} | {kinds} | {c["listing_skipped"]} | '
                f'{c["frames_decoded"]:,} | {"–" if fps is None else f"{fps:.0f}"} | '
                f'{"x".join(str(v) for v in r["image_shape"])} |')
  reasons = [f'- {d}: `{s["path"]}` ({s["kind"]}): {s["reason"]}' for d, r in reports.items() for s in r['skipped']]
  md = [
      '# Chapter 7 on the stand-ins: Weizmann and RAVDESS protocols end to end',
      '',
      f'Written by `python examples/video_standins.py` (tiny preset, {FLAGS.steps} steps per run, seed '
      f'{FLAGS.seed}). The videos are generated stick figures ({FLAGS.weizmann_actors} actors x 10 actions, avi, '
      f'with classification_masks.mat) and cartoon faces ({FLAGS.ravdess_actors} actors, mp4 with landmark '
      'sidecars) in the published layouts. This shows that the readers, the skip accounting, training and every '
      'protocol run end to end; the numbers are the stand-ins\' and say nothing about the thesis\'s tables, which '
      'need the real data (commands at the end).',
      '',
      '## Decoding once (launchers.video_prepare)', '', *prep, '',
      'Skipped, with the reasons the report gives:', '', *(reasons or ['- none']), '',
      '## Training (launchers.video, tiny preset)', '',
      '| run | held-out check |', '|---|---|',
      *[f'| {k} | {v} |' for k, v in record['learning_checks'].items()], '',
      *([f'Checks fail here because the runs are short: the tiny preset (32x32 frames, batch 4) for {FLAGS.steps} '
         'steps at the thesis\'s learning rates (Weizmann stage 1: 1e-4). The runs exercise the pipeline; the '
         'learning checks that matter are the Moving MNIST ones (docs/video_mmnist.md).', '']
        if any('FAILED' in (v or '') for v in record['learning_checks'].values()) else []),
      '## Protocols (launchers.video_eval)', '',
  ]
  for name, (_, e) in evals.items():
    md += [f'### {name}', '', e['table_markdown'], '']
  md += ['## Pictures', '', *[f'- {k}: ![{k}]({os.path.basename(v)})' for k, v in images.items()], '',
         '## The same on the real data', '', '```bash',
         'python -m launchers.video_prepare --dataset=weizmann --data_dir=~/data/weizmann --out=~/data/weizmann_shards',
         'python -m launchers.video --dataset=weizmann --data_dir=~/data/weizmann_shards --preset=paper '
         '--logdir=runs/wz_stage1',
         'python -m launchers.video --dataset=weizmann --data_dir=~/data/weizmann_shards --stage=2 '
         '--stage1_logdir=runs/wz_stage1 --logdir=runs/wz_stage2',
         'python -m launchers.video --dataset=weizmann --data_dir=~/data/weizmann_shards --preset=paper '
         '--model=classifier --logdir=runs/wz_cls   # and --model=autoencoder --logdir=runs/wz_ae',
         'python -m launchers.video_eval --task=attentive --logdir=runs/wz_stage2                     # Table 7.2',
         'python -m launchers.video_eval --task=retrieval --logdir=runs/wz_stage2 --classifier_logdir=runs/wz_cls '
         '--autoencoder_logdir=runs/wz_ae',
         'python -m launchers.video_prepare --dataset=ravdess --data_dir=~/data/ravdess --out=~/data/ravdess_shards',
         '# Table 7.3: per fold i, stages 1 and 2 with --exclude_actors=<fold i\'s people> '
         '(launchers.video_eval --task=finetune names them)',
         'python -m launchers.video_eval --task=finetune --pretrain_logdir_pattern=\'runs/rv_fold{fold}_stage2\'',
         'python -m launchers.video_eval --task=finetune --init=random --data_dir=~/data/ravdess_shards --preset=paper',
         '```', '']
  with open(f'{out}.md', 'w') as f:
    f.write('\n'.join(md))
  print(f'[video_standins] wrote {out}.md, {out}.json and {len(images)} PNG(s)', flush=True)


if __name__ == '__main__':
  app.run(main)
