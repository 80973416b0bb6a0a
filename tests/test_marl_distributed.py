"""The learner under `tf.distribute`: a MirroredStrategy over two virtual CPU devices gives the same updates as the
default strategy (weights, Adam slots and logs after 3 updates, to 1e-5), with truncations that leave the two
replicas different numbers of valid entries (each replica's share is weighted by its count)."""

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
    # Truncations in some unrolls only: the replicas' halves hold different numbers of valid entries.
    batch['truncated'] = np.zeros((t1, b), bool)
    batch['truncated'][2, 0] = batch['truncated'][3, 1] = True
    results = {}
    for name in ('default', 'mirrored'):
      strategy = distribute.make_strategy(name)
      learner = learner_lib.Learner(cfg, obs_shape, A, strategy)
      logs = [learner.train(batch) for _ in range(3)]
      slots = [v.numpy() for v in learner.optimizer.variables if 'momentum' in v.path or 'velocity' in v.path]
      results[name] = (strategy.num_replicas_in_sync, [v.numpy() for v in learner.model.trainable_variables],
                       int(learner.frames.numpy()), logs, slots)
    assert results['mirrored'][0] == 2, results['mirrored'][0]
    biggest = 0.0
    for a, b in zip(results['default'][1], results['mirrored'][1]):
      np.testing.assert_allclose(a, b, atol=1e-5)
      biggest = max(biggest, float(np.abs(a - b).max()))
    assert len(results['default'][4]) == 2 * len(results['default'][1]) > 0
    for a, b in zip(results['default'][4], results['mirrored'][4]):
      np.testing.assert_allclose(a, b, atol=1e-5)
    assert results['default'][2] == results['mirrored'][2] == 48
    for la, lb in zip(results['default'][3], results['mirrored'][3]):
      for key in ('loss/total', 'loss/policy_gradient', 'loss/baseline', 'policy/entropy', 'vtrace/rho_mean'):
        np.testing.assert_allclose(la[key], lb[key], rtol=1e-5, atol=1e-6, err_msg=key)
    print('largest weight difference after 3 updates:', biggest)
    print('MIRRORED_OK')
''')


def test_mirrored_update_equals_single_device_update():
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL='2')
  proc = subprocess.run([sys.executable, '-c', SCRIPT], capture_output=True, text=True, timeout=600, env=env,
                        cwd=ROOT)
  assert 'MIRRORED_OK' in proc.stdout, proc.stdout[-2000:] + proc.stderr[-4000:]
