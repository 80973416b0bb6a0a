r"""Throughput of the Chapter 4 runtime, measured side by side in one run (these machines are noisy).

For each model it prints
  env-only      env steps/s with random actions, the same actor processes and transport as training;
  learner-only  train samples/s (env steps per second of V-trace updates) on a fixed batch, no actors;
  system        env steps/s of a full training run (after start-up and compilation);
and the ratio system / min(env-only, learner-only). The SEED design goal is a ratio close to 1 (>= 0.9), which
assumes inference and training run on their own accelerator cores. Where actors, inference and training share
the same CPU cores, each env step costs the sum of the three, so it also prints
  inference-only  env steps/s of central inference alone (batches of `num_actors` observations);
  shared-core bound  1 / (1/env + 1/learner + 1/inference), the most one machine can do when nothing overlaps
                     on separate hardware, and the system's ratio to it.

  python benchmarks/marl_throughput.py --env=grf_5v5 --models=cnn,acnn --num_actors=4 --batch_size=4
"""

import os
import sys
import tempfile
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=g-import-not-at-top

from rlcv_tf.marl import agents as agents_lib  # pylint: disable=g-import-not-at-top
from rlcv_tf.marl import config as config_lib  # pylint: disable=g-import-not-at-top
from rlcv_tf.marl import learner as learner_lib  # pylint: disable=g-import-not-at-top
from rlcv_tf.marl import training  # pylint: disable=g-import-not-at-top

flags.DEFINE_string('env', 'grf_5v5', 'Environment.')
flags.DEFINE_list('models', ['cnn', 'acnn'], 'Models to measure.')
flags.DEFINE_integer('num_actors', 4, 'Actor processes.')
flags.DEFINE_integer('batch_size', 4, 'Unrolls per update.')
flags.DEFINE_integer('unroll_length', 32, 'Unroll length.')
flags.DEFINE_string('smm_size', '', 'HxW super-mini-map size; empty = environment default.')
flags.DEFINE_float('env_seconds', 20.0, 'Seconds of env-only stepping.')
flags.DEFINE_integer('learner_updates', 5, 'Timed updates for the learner-only bound (after 2 warm-up).')
flags.DEFINE_integer('system_updates', 30, 'Updates in the full-system run (the first is not timed).')
FLAGS = flags.FLAGS


def make_config(model):
  env_kwargs = {}
  if FLAGS.smm_size:
    env_kwargs['smm_hw'] = tuple(int(x) for x in FLAGS.smm_size.split('x'))
  return config_lib.MarlConfig(env=FLAGS.env, model=model, env_kwargs=env_kwargs, num_actors=FLAGS.num_actors,
                               batch_size=FLAGS.batch_size, unroll_length=FLAGS.unroll_length,
                               log_interval_s=1e9, summary_interval_s=1e9, checkpoint_interval_s=1e9)


def env_only(cfg, num_actions, seconds):
  pool = training.make_actor_pool(cfg)
  rng = np.random.default_rng(0)
  steps = 0
  with pool:
    t0 = None
    while True:
      got = pool.receive(0.1)
      if got:
        acts = rng.integers(0, num_actions, size=(len(got), got[0].reward.shape[0]))
        pool.send_actions([s.actor_id for s in got], acts)
        if t0 is None:
          t0 = time.monotonic()
        else:
          steps += len(got)
      if t0 is not None and time.monotonic() - t0 >= seconds:
        return steps / (time.monotonic() - t0)


def learner_only(cfg, obs_shape, num_actions, updates):
  learner = learner_lib.Learner(cfg, obs_shape, num_actions)
  rng = np.random.default_rng(0)
  t1, b = cfg.unroll_length + 1, cfg.batch_size
  n = obs_shape[0]
  batch = {
      'observation': rng.integers(0, 2, size=(t1, b) + tuple(obs_shape), dtype=np.uint8) * 255,
      'reward': rng.normal(size=(t1, b, n)).astype(np.float32),
      'done': np.zeros((t1, b), bool),
      'discount': np.ones((t1, b), np.float32),
      'truncated': np.zeros((t1, b), bool),
      'agent_positions': np.zeros((t1, b, n, 2), np.int32),
      'action': rng.integers(0, num_actions, size=(t1, b, n)).astype(np.int32),
      'behaviour_logits': np.zeros((t1, b, n, num_actions), np.float32),
  }
  for _ in range(2):
    learner.train(batch)
  t0 = time.monotonic()
  for _ in range(updates):
    learner.train(batch)
  return updates * cfg.frames_per_update / (time.monotonic() - t0)


def inference_only(cfg, obs_shape, num_actions, seconds=10.0):
  learner = learner_lib.Learner(cfg, obs_shape, num_actions)
  obs = np.zeros((cfg.num_actors,) + tuple(obs_shape), np.uint8)
  learner.infer(obs)
  t0, calls = time.monotonic(), 0
  while time.monotonic() - t0 < seconds:
    learner.infer(obs)
    calls += 1
  return calls * cfg.num_actors / (time.monotonic() - t0)


def main(_):
  print(f'[bench] env={FLAGS.env} actors={FLAGS.num_actors} batch={FLAGS.batch_size}x{FLAGS.unroll_length} '
        f'cpu cores={os.cpu_count()}', flush=True)
  rows = []
  for model in FLAGS.models:
    cfg = make_config(model)
    obs_shape, num_actions = agents_lib.env_specs(cfg)
    env_sps = env_only(cfg, num_actions, FLAGS.env_seconds)
    print(f'[bench] {model}: env-only {env_sps:.1f} env steps/s', flush=True)
    learn_sps = learner_only(cfg, obs_shape, num_actions, FLAGS.learner_updates)
    print(f'[bench] {model}: learner-only {learn_sps:.1f} samples/s', flush=True)
    infer_sps = inference_only(cfg, obs_shape, num_actions)
    print(f'[bench] {model}: inference-only {infer_sps:.1f} env steps/s', flush=True)
    cfg.total_frames = FLAGS.system_updates * cfg.frames_per_update
    with tempfile.TemporaryDirectory() as d:
      res = training.train(cfg, d, print_fn=lambda s: None)
    sys_sps = res.steady_frames_per_second
    ratio = sys_sps / min(env_sps, learn_sps)
    shared = 1.0 / (1.0 / env_sps + 1.0 / learn_sps + 1.0 / infer_sps)
    print(f'[bench] {model}: system {sys_sps:.1f} env steps/s; ratio to the slower bound '
          f'({"env" if env_sps < learn_sps else "learner"}) {ratio:.2f}; shared-core bound {shared:.1f}, ratio '
          f'{sys_sps / shared:.2f}', flush=True)
    rows.append((model, env_sps, learn_sps, infer_sps, sys_sps, ratio, shared))
  print('\nmodel  env-only  learner-only  inference-only  system  system/min(env,learner)  shared-core bound  '
        'system/shared')
  for model, e, l, i, s, r, b in rows:
    print(f'{model:5s}  {e:8.1f}  {l:12.1f}  {i:14.1f}  {s:6.1f}  {r:23.2f}  {b:17.1f}  {s / b:13.2f}')


if __name__ == '__main__':
  app.run(main)
