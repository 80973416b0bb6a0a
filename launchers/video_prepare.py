r"""Chapter 7: decode Weizmann or RAVDESS once into TFRecord shards (issue 13 §1, "Decode once").

  python -m launchers.video_prepare --dataset=weizmann --data_dir=~/data/weizmann --out=~/data/weizmann_shards
  python -m launchers.video_prepare --dataset=ravdess --data_dir=~/data/ravdess --out=~/data/ravdess_shards
  python -m launchers.video_prepare --dataset=weizmann --data_dir=~/data/weizmann --openpose_dir=~/data/weizmann_pose \
      --out=~/data/weizmann_pose_shards           # keypoints: your OpenPose --write_json output (the thesis's)

Worker processes decode each video (PyAV), crop (Weizmann: centred 144x144 -> 96x96 and median-background trimming;
RAVDESS: every 3rd frame, one FFHQ-style face crop -> 128x128 from landmark sidecars or MTCNN) and PNG-encode the
frames; the shards are `<out>/all-NNNNN-of-MMMMM.tfrecord` with `<out>/prepare_report.json` (counts, skipped files
with reasons, frames/s, settings). Re-running the same command resumes: complete shards are kept. Corrupt, empty,
stream-less and too-short files are skipped and counted; more than --max_skipped_fraction of them stops the run.
Training reads the shards with `rlcv_tf.datasets.video_shards.make_dataset`.
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')

from absl import app
from absl import flags

from launchers import common

DATASETS = ('weizmann', 'ravdess')

flags.DEFINE_string('dataset', '', f'Data set: {", ".join(DATASETS)}.')
flags.DEFINE_string('data_dir', '', 'The data set root in its published layout (weizmann: <root>/<action>/'
                    '<actor>_<action>.avi and classification_masks.mat; ravdess: <root>/Actor_NN/*.mp4 with optional '
                    '<stem>.landmarks.csv sidecars).')
flags.DEFINE_string('out', '', 'Shard folder (created; an unfinished preparation there is resumed).')
flags.DEFINE_integer('num_workers', 2, 'Decoding processes; 0 decodes in this process.')
flags.DEFINE_float('max_skipped_fraction', 0.05, 'Stop when more than this fraction of the listed videos cannot be '
                   'used (corrupt, empty, no video stream, too short).')
flags.DEFINE_integer('min_frames', 8, 'Skip clips with fewer frames after trimming (Weizmann) or x3 subsampling '
                     '(RAVDESS).')
flags.DEFINE_integer('videos_per_shard', 32, 'Listed videos per shard.')
flags.DEFINE_float('log_interval_s', 10.0, 'Seconds between progress lines.')
flags.DEFINE_string('openpose_dir', '', 'weizmann: the folder of OpenPose --write_json output for these videos '
                    '(<video stem>_<frame>_keypoints.json); its joints, the thesis\'s keypoints, are stored instead of '
                    'the mask keypoints.')

FLAGS = flags.FLAGS


def flag_error():
  """The first bad flag as one line (without 'error: '), or None."""
  if FLAGS.dataset not in DATASETS:
    return f'--dataset={FLAGS.dataset}: unknown data set; valid values: {", ".join(DATASETS)}'
  if not FLAGS.data_dir:
    return f'--data_dir is required: the {FLAGS.dataset} root in its published layout'
  if not FLAGS.out:
    return '--out is required: the folder the shards and prepare_report.json go to'
  if not 0.0 <= FLAGS.max_skipped_fraction <= 1.0:
    return f'--max_skipped_fraction={FLAGS.max_skipped_fraction:g}: must be in [0, 1] (e.g. 0.05)'
  if FLAGS.num_workers < 0:
    return f'--num_workers={FLAGS.num_workers}: must be >= 0 (0 decodes in this process)'
  if FLAGS.min_frames < 1:
    return f'--min_frames={FLAGS.min_frames}: must be >= 1 (the models take 8-frame clips)'
  if FLAGS.videos_per_shard < 1:
    return f'--videos_per_shard={FLAGS.videos_per_shard}: must be >= 1'
  if FLAGS.openpose_dir and FLAGS.dataset != 'weizmann':
    return (f'--openpose_dir is for --dataset=weizmann (body joints); {FLAGS.dataset} keypoints are face landmarks '
            '(sidecars or MTCNN)')
  return None


def main(argv):
  common.start(argv)
  problem = flag_error()
  if problem:
    common.fail(problem)
  from rlcv_tf.datasets import openpose  # pylint: disable=g-import-not-at-top  (no TensorFlow)
  from rlcv_tf.datasets import records  # pylint: disable=g-import-not-at-top  (no TensorFlow)
  from rlcv_tf.datasets import video_shards  # pylint: disable=g-import-not-at-top  (TensorFlow loads when writing)
  data_dir, out = os.path.expanduser(FLAGS.data_dir), os.path.expanduser(FLAGS.out)
  print(f'[video_prepare] {FLAGS.dataset} from {data_dir} -> {out} with {FLAGS.num_workers} worker(s)', flush=True)
  try:
    report = video_shards.prepare(FLAGS.dataset, data_dir, out, num_workers=FLAGS.num_workers,
                                  max_skipped_fraction=FLAGS.max_skipped_fraction, min_frames=FLAGS.min_frames,
                                  videos_per_shard=FLAGS.videos_per_shard,
                                  print_fn=lambda s: print(s, flush=True), progress_interval_s=FLAGS.log_interval_s,
                                  openpose_dir=os.path.expanduser(FLAGS.openpose_dir))
  except (records.DatasetError, openpose.OpenPoseError) as e:
    common.fail(str(e))
  counts, timing = report['counts'], report['timing']
  fps = timing['decode_frames_per_s']
  kinds = ', '.join(f'{k} {v}' for k, v in sorted(counts['skipped_by_kind'].items()))
  print(f'[video_prepare] done: {counts["written"]} of {counts["listed"]} videos written ({counts["frames_written"]:,} '
        f'frames, {report["image_shape"][0]}x{report["image_shape"][1]}, {report["num_keypoints"]} keypoints: '
        f'{report["keypoints"]["source"]}), {counts["skipped"]} skipped{f" ({kinds})" if kinds else ""}, '
        f'{counts["shards"]} shards; decode {f"{fps:,.0f} frames/s" if fps else "- (nothing new to decode)"} this run; '
        f'report: {os.path.join(out, video_shards.REPORT_FILE)}', flush=True)


if __name__ == '__main__':
  app.run(main)
