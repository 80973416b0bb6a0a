"""WGAN as the slides' algorithm (rlcv_tf/gans/wgan.py; spec seeds003_004 §7.4): clipping after every critic step,
exactly n_critic critic updates per generator update, the critic untouched by a generator step, the Dirac toy, and
WGAN-GP's penalty in the critic loss."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.gans import networks
from rlcv_tf.gans import wgan


class Constant(networks.Model):
  """g_theta(z) = theta for every z (the paper's Dirac example)."""

  def __init__(self, theta, **kwargs):
    super().__init__(**kwargs)
    self.theta = self.add_weight(shape=(1,), initializer=keras.initializers.Constant(theta), name='theta')

  def call(self, z, condition=None, training=False):
    return tf.zeros_like(z[:, :1]) + self.theta


class Linear(networks.Model):
  """f_w(x) = w x."""

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    self.dense = keras.layers.Dense(1, use_bias=False, kernel_initializer='zeros')

  def call(self, x, condition=None, training=False):
    return self.dense(x)


def mlp_pair(seed=0):
  keras.utils.set_random_seed(seed)
  g = networks.build(networks.MLPGenerator(2, (16,)), (4,))
  c = networks.build(networks.MLPDiscriminator((16,)), (2,))
  return g, c


@pytest.mark.parametrize('n_critic', [1, 3, 5])
def test_exactly_n_critic_updates_and_clipping_after_each(n_critic):
  g, c = mlp_pair()
  trainer = wgan.WGANTrainer(g, c, z_dim=4, batch_size=8, n_critic=n_critic, learning_rate=0.05, clip=0.01)
  clipped_after = []
  original = trainer.critic_step

  def watched(real, condition=None):   # eager: check the bound right after every critic step
    out = original(real, condition)
    clipped_after.append(max(float(np.max(np.abs(v.numpy()))) for v in c.trainable_variables))
    return out

  trainer.critic_step = watched
  trainer._train = trainer._train_impl        # eager, so the wrapper runs at each step
  rng = np.random.default_rng(0)
  for _ in range(4):
    trainer.train_step(rng.normal(size=(n_critic * 8, 2)).astype(np.float32))
  assert int(trainer.critic_optimizer.iterations.numpy()) == 4 * n_critic     # not 4 * (n_critic + 1)
  assert int(trainer.g_optimizer.iterations.numpy()) == 4
  assert int(trainer.step.numpy()) == 4
  assert len(clipped_after) == 4 * n_critic and max(clipped_after) <= 0.01 + 1e-9


def test_compiled_step_clips_every_critic_variable():
  g, c = mlp_pair(1)
  trainer = wgan.WGANTrainer(g, c, z_dim=4, batch_size=8, n_critic=2, learning_rate=0.5, clip=0.02)
  trainer.train_step(np.random.default_rng(0).normal(size=(16, 2)).astype(np.float32))
  assert all(np.all(np.abs(v.numpy()) <= 0.02) for v in c.trainable_variables)
  assert int(trainer.critic_optimizer.iterations.numpy()) == 2


def test_generator_step_leaves_the_critic_bit_identical_and_vice_versa():
  keras.utils.set_random_seed(0)
  g = networks.build(networks.DCGANGenerator(28, 1, 8), (8,))
  c = networks.build(networks.DCGANDiscriminator(28, 8), (28, 28, 1))          # BatchNorm in both
  trainer = wgan.WGANTrainer(g, c, z_dim=8, batch_size=4, n_critic=1, learning_rate=0.01)
  c_before = [v.numpy().copy() for v in c.variables]
  trainer.generator_step()
  assert all(np.array_equal(a, v.numpy()) for a, v in zip(c_before, c.variables))
  g_before = [v.numpy().copy() for v in g.variables]
  trainer.critic_step(tf.zeros((4, 28, 28, 1)))
  assert all(np.array_equal(a, v.numpy()) for a, v in zip(g_before, g.variables))
  assert not all(np.array_equal(a, v.numpy()) for a, v in zip(c_before, c.variables))


def test_dirac_toy_converges_to_the_point_mass():
  """P_r = delta_0, g_theta(z) = theta from 2, f_w(x) = w x, c = 1, RMSProp 0.05, n_critic 5 (Arjovsky et al.
  Example 1 [orig]; spec T-WGAN-3): after 100 generator steps |theta| < 0.2."""
  keras.utils.set_random_seed(0)
  g = networks.build(Constant(2.0), (1,))
  c = networks.build(Linear(), (1,))
  trainer = wgan.WGANTrainer(g, c, z_dim=1, batch_size=16, n_critic=5, learning_rate=0.05, clip=1.0)
  real = np.zeros((5 * 16, 1), np.float32)
  for _ in range(100):
    trainer.train_step(real)
  theta = float(g.theta.numpy()[0])
  assert abs(theta) < 0.2, theta
  assert abs(float(c.dense.kernel.numpy()[0, 0])) <= 1.0


def test_gradient_penalty_option_changes_the_critic_loss_and_skips_clipping():
  g, c = mlp_pair(2)
  trainer = wgan.WGANTrainer(g, c, z_dim=4, batch_size=8, n_critic=1, learning_rate=1e-4, clip=0.0, gp_weight=10.0,
                             optimizer='adam')
  out = trainer.train_step(np.random.default_rng(0).normal(size=(8, 2)).astype(np.float32) * 5)
  assert float(out['critic/gradient_penalty']) > 0
  assert isinstance(trainer.critic_optimizer, keras.optimizers.Adam)
  assert float(trainer.critic_optimizer.beta_2) == pytest.approx(0.9)
  with pytest.raises(ValueError, match='n_critic'):
    wgan.WGANTrainer(g, c, z_dim=4, batch_size=8, n_critic=0)
