"""`python -m launchers.video_prepare`: bad flags and missing data give one `error:` line and exit 2; a tiny
Weizmann stand-in with a broken file mixed in is prepared (spawned worker), resumed, and a skip limit stops it."""

import json
import os
import shutil

import pytest

from launcher_test_helpers import one_error_line, run_module  # pylint: disable=g-bad-import-order

from rlcv_tf.datasets import video_standins


def run_launcher(*args, timeout=300):
  return run_module('launchers.video_prepare', *args, timeout=timeout)


@pytest.fixture(scope='module')
def root(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('weizmann'))
  video_standins.write_weizmann(path, num_actors=1, num_frames=12, actions=('bend', 'walk', 'wave1'),
                                extra_take=False)
  broken = video_standins.write_broken(str(tmp_path_factory.mktemp('broken')))
  shutil.copy(broken['random.avi'], os.path.join(path, 'bend', 'zulu_bend.avi'))
  return path   # alpha_walk has 2 + 3 empty end frames: 7 left after trimming, too short


@pytest.mark.parametrize('args,needles', [
    (['--dataset=ucf101', '--data_dir=/x', '--out=/y'], ['--dataset=ucf101', 'weizmann', 'ravdess']),
    (['--dataset=weizmann', '--out=/y'], ['--data_dir', 'required']),
    (['--dataset=ravdess', '--data_dir=/x'], ['--out', 'required']),
    (['--dataset=weizmann', '--data_dir=/x', '--out=/y', '--max_skipped_fraction=1.5'], ['--max_skipped_fraction=1.5',
                                                                                         '[0, 1]']),
    (['--dataset=weizmann', '--data_dir=/x', '--out=/y', '--max_skipped_fraction=-0.1'], ['--max_skipped_fraction']),
    (['--dataset=weizmann', '--data_dir=/x', '--out=/y', '--num_workers=-1'], ['--num_workers=-1']),
    (['--dataset=weizmann', '--data_dir=/x', '--out=/y', '--min_frames=0'], ['--min_frames=0']),
    (['--dataset=weizmann', 'extra'], ['unexpected arguments']),
    (['--dataset=ravdess', '--data_dir=/x', '--out=/y', '--openpose_dir=/p'], ['--openpose_dir', 'weizmann',
                                                                                'face landmarks']),
])
def test_bad_flags_give_one_line(args, needles, tmp_path):
  line = one_error_line(run_launcher(*args, timeout=120))
  for needle in needles:
    assert needle in line, line


@pytest.mark.parametrize('dataset,layout', [('weizmann', '<actor>_<action>'), ('ravdess', 'Actor_NN')])
def test_missing_data_dir_names_path_and_layout(dataset, layout, tmp_path):
  missing = str(tmp_path / 'nowhere')
  line = one_error_line(run_launcher(f'--dataset={dataset}', f'--data_dir={missing}', f'--out={tmp_path / "out"}',
                                     timeout=120))
  assert missing in line and layout in line and 'not available' in line
  assert not os.path.exists(tmp_path / 'out')


def test_a_missing_openpose_dir_is_one_line(root, tmp_path):
  line = one_error_line(run_launcher('--dataset=weizmann', f'--data_dir={root}', f'--out={tmp_path / "out"}',
                                     f'--openpose_dir={tmp_path / "no_pose"}', timeout=120))
  assert f'--openpose_dir={tmp_path / "no_pose"}' in line and 'write_json' in line


def test_prepares_resumes_and_stops_past_the_skip_limit(root, tmp_path):
  out = str(tmp_path / 'shards')
  proc = run_launcher('--dataset=weizmann', f'--data_dir={root}', f'--out={out}', '--num_workers=1',
                      '--max_skipped_fraction=0.5', '--videos_per_shard=2')
  assert proc.returncode == 0, proc.stdout + proc.stderr
  done = [l for l in proc.stdout.splitlines() if 'done:' in l]
  assert len(done) == 1 and '2 of 4 videos written' in done[0] and '2 skipped (container 1, too_short 1)' in done[0]
  assert 'frames/s' in done[0] and os.path.join(out, 'prepare_report.json') in done[0]
  assert 'skipped 2 of 4 videos' in proc.stderr      # the one warning line
  with open(os.path.join(out, 'prepare_report.json')) as f:
    report = json.load(f)
  assert report['status'] == 'complete' and report['counts']['written'] == 2 and report['counts']['shards'] == 2
  again = run_launcher('--dataset=weizmann', f'--data_dir={root}', f'--out={out}', '--num_workers=1',
                       '--max_skipped_fraction=0.5', '--videos_per_shard=2')
  assert again.returncode == 0, again.stderr
  assert 'resuming: 2 of 2 shards' in again.stdout and 'nothing new to decode' in again.stdout
  line = one_error_line(run_launcher('--dataset=weizmann', f'--data_dir={root}', f'--out={tmp_path / "strict"}',
                                     '--num_workers=0'))
  assert '--max_skipped_fraction=0.05' in line and 'zulu_bend.avi' in line and '1 of 4' in line
