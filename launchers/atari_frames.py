r"""Seeds 001-002: collect game frames as PNG + index.csv for VAE pre-training and probes (issue 14 Sec. 1, Data).

  python -m launchers.atari_frames                                  # bounded default: 2,000 mini_breakout frames
  python -m launchers.atari_frames --env=atari_breakout_seed001 --policy=tracker --num_frames=25000 \
      --output_dir=runs/frames/breakout_seed001 --seed=0            # seed 001's 25,000 pre-training frames
  python -m launchers.atari_frames --env=atari_pong_seed002 --policy=random --num_frames=50000 \
      --output_dir=runs/frames/pong_seed002                         # seed 002's beta-VAE frames
  python -m launchers.atari_frames --env=atari_breakout_seed001 --policy=saved:runs/vae_pg/adapt/saved_model \
      --output_dir=runs/frames/breakout_adapt                       # frames of a trained policy's play

Environments: the companion seeds' pixel environments (registry chapter 0). Policies: random; tracker (a scripted
ball tracker from the RAM / state positions, epsilon random actions; the paper's trained policy is not available);
saved:<dir> (a SavedModel whose serving_default takes `frames` uint8 [B, H, W, n] and returns `action`). Frames go
to <output_dir>/frames/ep<E>/<S>.png with <output_dir>/index.csv and collect_report.json (rlcv_tf/datasets/
atari_frames.py). Split by episode into train / val (--val_fraction). Re-running the same command resumes (finished
episodes are kept, the unfinished one is replayed); a larger --num_frames extends; other settings are refused.
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')

from absl import app
from absl import flags

from launchers import common

flags.DEFINE_string('env', 'mini_breakout', 'Frame environment: mini_breakout, mini_breakout_tiny, mini_breakout_84, '
                    'atari_breakout_seed001, atari_<pong|breakout|space_invaders>_seed002[_rgb].')
flags.DEFINE_string('policy', 'tracker', 'random, tracker (scripted ball tracker, Breakout-like games), or '
                    'saved:<SavedModel dir>.')
flags.DEFINE_integer('num_frames', 2000, 'Frames to collect in all (seed 001: 25,000; seed 002: 50,000 per game).')
flags.DEFINE_string('output_dir', '', 'Where frames, index.csv and collect_report.json go (a collection there with '
                    'the same settings is resumed). Default: runs/atari_frames/<env>_<policy>_seed<seed>.')
flags.DEFINE_integer('seed', 0, 'Seed of the environment and the policy (episode e is played from (seed, e)).')
flags.DEFINE_float('val_fraction', 0.1, 'Share of episodes in the val split (whole episodes).')
flags.DEFINE_float('epsilon', 0.05, 'tracker: probability of a uniform random action.')
flags.DEFINE_integer('max_episode_steps', 500, 'Cut an episode after this many agent steps (0: the game\'s own end).')
flags.DEFINE_float('log_interval_s', 10.0, 'Seconds between progress lines.')

FLAGS = flags.FLAGS


def default_output_dir() -> str:
  kind = 'saved' if FLAGS.policy.startswith('saved:') else FLAGS.policy
  return os.path.join('runs', 'atari_frames', f'{FLAGS.env}_{kind}_seed{FLAGS.seed}')


def main(argv):
  common.start(argv)
  from rlcv_tf.datasets import atari_frames  # pylint: disable=g-import-not-at-top  (no TensorFlow)
  from rlcv_tf.envs import base  # pylint: disable=g-import-not-at-top
  from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
  frame_envs = [n for n in registry.names(chapter=0) if n.startswith(('atari_', 'mini_breakout'))]
  try:
    atari_frames.check_request(FLAGS.env, FLAGS.policy, FLAGS.num_frames, FLAGS.val_fraction, FLAGS.epsilon,
                               FLAGS.max_episode_steps, valid_envs=frame_envs)
    registry.check_available(FLAGS.env)
  except (atari_frames.FramesError, base.EnvironmentUnavailableError) as e:
    common.fail(str(e))
  if FLAGS.log_interval_s <= 0:
    common.fail(f'--log_interval_s={FLAGS.log_interval_s:g}: must be > 0 (e.g. 10)')
  output_dir = FLAGS.output_dir or default_output_dir()
  try:
    atari_frames.collect(FLAGS.env, output_dir, make_env=registry.make_env, num_frames=FLAGS.num_frames,
                         policy=FLAGS.policy, seed=FLAGS.seed,
                         val_fraction=FLAGS.val_fraction, epsilon=FLAGS.epsilon,
                         max_episode_steps=FLAGS.max_episode_steps, print_fn=lambda s: print(s, flush=True),
                         progress_interval_s=FLAGS.log_interval_s)
  except (atari_frames.FramesError, base.EnvironmentUnavailableError) as e:
    common.fail(str(e))
  except KeyboardInterrupt:
    print(f'[atari_frames] interrupted: the finished episodes in {output_dir} are kept; run the same command to '
          'resume', flush=True)
    raise SystemExit(130) from None


if __name__ == '__main__':
  app.run(main)
