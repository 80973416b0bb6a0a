"""The learner under `tf.distribute`: a MirroredStrategy over two virtual CPU devices gives the same update as
the default strategy (the batch is split across replicas and gradients are averaged)."""

import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent('''
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices('CPU')[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from rlcv_tf.core import distribute
    from rlcv_tf.marl import config as config_lib, learner as learner_lib
    cfg = config_lib.MarlConfig(env='x', model='acnn', batch_size=4, unroll_length=4,
                                stack_channels=((4, 1),), feature_dim=16, learning_rate=1e-2)
    obs_shape, A = (3, 8, 12, 8), 19
    rng = np.random.default_rng(0)
    t1, b, n = 5, 4, 3
    batch = {'observation': (rng.random((t1, b) + obs_shape) < 0.3).astype(np.uint8) * 255,
             'reward': rng.normal(size=(t1, b, n)).astype(np.float32), 'done': rng.random((t1, b)) < 0.2,
             'truncated': np.zeros((t1, b), bool),
             'agent_positions': np.zeros((t1, b, n, 2), np.int32),
             'action': rng.integers(0, A, size=(t1, b, n)).astype(np.int32),
             'behaviour_logits': rng.normal(size=(t1, b, n, A)).astype(np.float32)}
    batch['discount'] = (~batch['done']).astype(np.float32)
    results = {}
    for name in ('default', 'mirrored'):
      strategy = distribute.make_strategy(name)
      learner = learner_lib.Learner(cfg, obs_shape, A, strategy)
      logs = learner.train(batch)
      results[name] = (strategy.num_replicas_in_sync, [v.numpy() for v in learner.model.trainable_variables],
                       int(learner.frames.numpy()), logs)
    assert results['mirrored'][0] == 2, results['mirrored'][0]
    for a, b in zip(results['default'][1], results['mirrored'][1]):
      np.testing.assert_allclose(a, b, atol=2e-5)
    assert results['default'][2] == results['mirrored'][2] == 16
    for key in ('loss/total', 'loss/policy_gradient', 'loss/baseline', 'policy/entropy'):
      np.testing.assert_allclose(results['default'][3][key], results['mirrored'][3][key], rtol=1e-4, atol=1e-6)
    print('MIRRORED_OK')
''')


def test_mirrored_update_equals_single_device_update():
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL='2')
  proc = subprocess.run([sys.executable, '-c', SCRIPT], capture_output=True, text=True, timeout=600, env=env,
                        cwd=ROOT)
  assert 'MIRRORED_OK' in proc.stdout, proc.stdout[-2000:] + proc.stderr[-4000:]
