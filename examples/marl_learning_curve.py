r"""Learning check for Chapter 4 training: trains one or more models on an environment and saves the curve of
episode return against frames (PNG in docs/ by default) next to a random-policy baseline measured the same way.

Real GRF academy scenario at a reduced SMM (about 20-40 minutes on 2 CPU cores):
  python examples/marl_learning_curve.py --env=grf_academy_empty_goal_close --smm_size=36x48 \
      --total_frames=60000 --models=cnn --out=docs/learning_grf_empty_goal_close.png
"""

import json
import os
import sys
import tempfile

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=g-import-not-at-top

from rlcv_tf.envs import random_policy  # pylint: disable=g-import-not-at-top
from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
from rlcv_tf.marl import config as config_lib  # pylint: disable=g-import-not-at-top
from rlcv_tf.marl import training  # pylint: disable=g-import-not-at-top

flags.DEFINE_string('env', 'grf_academy_empty_goal_close', 'Environment.')
flags.DEFINE_list('models', ['cnn'], 'Models to train.')
flags.DEFINE_integer('total_frames', 60_000, 'Frames per model.')
flags.DEFINE_string('smm_size', '36x48', 'Super-mini-map HxW (empty = environment default).')
flags.DEFINE_integer('num_agents', 0, 'Controlled agents (0 = the environment default).')
flags.DEFINE_string('rewards', '', 'gfootball reward set, e.g. scoring or scoring,checkpoints (empty = default).')
flags.DEFINE_integer('num_actors', 4, 'Actor processes.')
flags.DEFINE_integer('batch_size', 8, 'Unrolls per update.')
flags.DEFINE_integer('unroll_length', 32, 'Unroll length.')
flags.DEFINE_float('learning_rate', 5e-4, 'Adam learning rate (higher than the thesis for a short run).')
flags.DEFINE_float('entropy_cost', 3e-3, 'Entropy cost (higher than the thesis for a short run).')
flags.DEFINE_integer('random_episodes', 100, 'Episodes of a uniform random policy for the baseline.')
flags.DEFINE_integer('seed', 0, 'Seed.')
flags.DEFINE_string('out', 'docs/learning_curve.png', 'Where the PNG (and a .json of the numbers) go.')
flags.DEFINE_string('logdir', '', 'Training logdir root (default: a temporary directory).')
FLAGS = flags.FLAGS


def env_kwargs():
  kw = {'smm_hw': tuple(int(x) for x in FLAGS.smm_size.split('x'))} if FLAGS.smm_size else {}
  if FLAGS.num_agents:
    kw['num_agents'] = FLAGS.num_agents
  if FLAGS.rewards:
    kw['rewards'] = FLAGS.rewards
  return kw


def random_policy_return(episodes):
  env = registry.make_env(FLAGS.env, seed=FLAGS.seed + 12345, **env_kwargs())
  try:
    return random_policy.mean_random_return(env, episodes, seed=FLAGS.seed)
  finally:
    env.close()


def main(_):
  root = FLAGS.logdir or tempfile.mkdtemp(prefix='rlcv_curve_')
  rand_mean, rand_se = random_policy_return(FLAGS.random_episodes)
  print(f'[curve] random policy: mean return per agent {rand_mean:.3f} +- {rand_se:.3f}', flush=True)
  curves = {}
  for model in FLAGS.models:
    cfg = config_lib.MarlConfig(
        env=FLAGS.env, model=model, env_kwargs=env_kwargs(), total_frames=FLAGS.total_frames,
        num_actors=FLAGS.num_actors, batch_size=FLAGS.batch_size, unroll_length=FLAGS.unroll_length,
        learning_rate=FLAGS.learning_rate, entropy_cost=FLAGS.entropy_cost, seed=FLAGS.seed, log_interval_s=30)
    res = training.train(cfg, os.path.join(root, model), print_fn=lambda s: print(s, flush=True))
    frames = np.array([e['frames'] for e in res.episodes], float)
    returns = np.array([float(np.mean(e['return'])) for e in res.episodes])
    curves[model] = {'frames': frames.tolist(), 'returns': returns.tolist(),
                     'wall_s': res.wall_s, 'frames_per_s': res.steady_frames_per_second}
    k = max(1, len(returns) // 5)
    print(f'[curve] {model}: first {k} episodes {returns[:k].mean():.3f}, last {k} episodes '
          f'{returns[-k:].mean():.3f} (random {rand_mean:.3f}); {res.steady_frames_per_second:.1f} frames/s',
          flush=True)

  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(7, 4))
  for model, c in curves.items():
    f, r = np.array(c['frames']), np.array(c['returns'])
    w = max(1, len(r) // 20)
    smooth = np.convolve(r, np.ones(w) / w, mode='valid')
    ax.plot(f, r, '.', alpha=0.25)
    ax.plot(f[w - 1:], smooth, label=f'{model} (moving mean of {w})')
  ax.axhline(rand_mean, color='k', ls='--', label='uniform random policy')
  ax.set_xlabel('frames (env steps)')
  ax.set_ylabel('episode return per agent')
  ax.set_title(f'{FLAGS.env}, SMM {FLAGS.smm_size or "default"}, rewards {FLAGS.rewards or "default"}')
  ax.legend()
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
  fig.savefig(FLAGS.out, dpi=100)
  with open(os.path.splitext(FLAGS.out)[0] + '.json', 'w') as f:
    json.dump({'env': FLAGS.env, 'smm_size': FLAGS.smm_size, 'random_mean': rand_mean, 'random_se': rand_se,
               'curves': curves}, f)
  print(f'[curve] wrote {FLAGS.out}', flush=True)


if __name__ == '__main__':
  app.run(main)
