"""Deep Q-learning (seed 003 S3:L576-602 and Algorithm 1, S3:L1025-1057; spec Sec. 4.4-4.5).

The slides' Algorithm 1 is the 2013 workshop version: replay memory, no target network, squared error, the target
y = r + gamma max_a' Q(s', a'; theta) held fixed (the slide writes "max" where the action is argmax, erratum 4).
The Nature 2015 additions [orig, Mnih et al. 2015; cited but not shown on the slides]: a target network
Q(theta^-) in y, copied from theta every C updates; the error clipped to [-1, 1], i.e. the Huber loss with
delta = 1; RMSProp(2.5e-4, rho 0.95, epsilon 0.01, centred). `double=True` [orig, van Hasselt et al. 2016; not in
the seeds]: the online network picks a' = argmax Q(s', .; theta), the target network values it.

Networks (`build_network`): 'nips2013' 84x84x4 -> conv 16 8x8/4 -> conv 32 4x4/2 -> FC 256 -> |A| (677,172
parameters for 4 actions); 'nature2015' conv 32 8x8/4 -> 64 4x4/2 -> 64 3x3/1 -> FC 512 -> |A| (1,686,180); all
ReLU; uint8 frames scaled by 1/255 inside the network. 'mlp' (state vectors: CartPole, the chain): 64-64 ReLU.
Only Q(s, a_taken) enters the loss, so the gradient with respect to the other actions' outputs is exactly zero.
"""

import dataclasses
from typing import Dict, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from rlcv_tf.rl_basics import exploration
from rlcv_tf.rl_basics import tabular

NETWORKS = ('mlp', 'nips2013', 'nature2015')
LOSSES = ('mse', 'huber')


def build_network(kind: str, observation_shape: Sequence[int], num_actions: int, hidden=(64, 64),
                  name: str = 'q') -> keras.Model:
  """Q(s, .) -> [B, num_actions] (module docstring)."""
  if kind not in NETWORKS:
    raise ValueError(f'unknown network {kind!r}; valid values: {", ".join(NETWORKS)}')
  inputs = keras.Input(tuple(observation_shape), name='observation')
  x = keras.layers.Lambda(lambda t: tf.cast(t, tf.float32), name='to_float')(inputs)
  if kind == 'mlp':
    x = keras.layers.Flatten(name='flatten')(x)          # state vectors arrive as [B, D, 1] (the project's layout)
    for i, h in enumerate(hidden):
      x = keras.layers.Dense(h, activation='relu', name=f'fc{i}')(x)
  else:
    x = keras.layers.Rescaling(1.0 / 255.0, name='scale')(x)
    convs = ((16, 8, 4), (32, 4, 2)) if kind == 'nips2013' else ((32, 8, 4), (64, 4, 2), (64, 3, 1))
    for i, (filters, size, stride) in enumerate(convs):
      x = keras.layers.Conv2D(filters, size, strides=stride, activation='relu', name=f'conv{i}')(x)
    x = keras.layers.Flatten(name='flatten')(x)
    x = keras.layers.Dense(256 if kind == 'nips2013' else 512, activation='relu', name='fc')(x)
  q = keras.layers.Dense(num_actions, name='q_values')(x)
  return keras.Model(inputs, q, name=name)


def td_target(rewards, discounts, q_next_target, q_next_online=None) -> tf.Tensor:
  """y = r + discount max_a' Q_target(s', a') ('discount' = gamma (1 - done)); with `q_next_online` (double DQN)
  the online network's argmax is valued by the target network. No gradient flows through y."""
  q_next_target = tf.cast(q_next_target, tf.float32)
  if q_next_online is None:
    best = tf.reduce_max(q_next_target, axis=-1)
  else:
    pick = tf.argmax(q_next_online, axis=-1, output_type=tf.int32)
    best = tf.gather(q_next_target, pick, axis=-1, batch_dims=1)
  return tf.stop_gradient(tf.cast(rewards, tf.float32) + tf.cast(discounts, tf.float32) * best)


def huber(errors, delta: float = 1.0) -> tf.Tensor:
  """0.5 e^2 for |e| <= delta, delta (|e| - 0.5 delta) beyond: the error clipped to [-delta, delta] in the gradient."""
  a = tf.abs(errors)
  return tf.where(a <= delta, 0.5 * tf.square(errors), delta * (a - 0.5 * delta))


def hard_update(target: keras.Model, online: keras.Model) -> None:
  for t, o in zip(target.variables, online.variables):
    t.assign(o)


def soft_update(target: keras.Model, online: keras.Model, tau: float) -> None:
  """theta^- <- (1 - tau) theta^- + tau theta (Polyak)."""
  for t, o in zip(target.variables, online.variables):
    t.assign((1.0 - tau) * t + tau * o)


@dataclasses.dataclass(frozen=True)
class DQNConfig:
  network: str = 'mlp'
  gamma: float = 0.99
  loss: str = 'huber'
  target_update_period: int = 100        # 0: no target network (the slides' Algorithm 1)
  double: bool = False
  optimizer: str = 'adam'                # 'adam' or 'rmsprop' (Nature 2015's settings)
  learning_rate: float = 1e-3
  hidden: Sequence[int] = (64, 64)

  def validate(self) -> 'DQNConfig':
    if self.network not in NETWORKS:
      raise ValueError(f'network: unknown value {self.network!r}; valid values: {", ".join(NETWORKS)}')
    if self.loss not in LOSSES:
      raise ValueError(f'loss: unknown value {self.loss!r}; valid values: {", ".join(LOSSES)}')
    if not 0.0 <= self.gamma <= 1.0:
      raise ValueError(f'gamma must lie in [0, 1], got {self.gamma}')
    if self.target_update_period < 0:
      raise ValueError(f'target_update_period must be >= 0 (0: no target network), got {self.target_update_period}')
    if self.double and self.target_update_period == 0:
      raise ValueError('double DQN needs a target network: set target_update_period >= 1')
    if self.optimizer not in ('adam', 'rmsprop'):
      raise ValueError(f'optimizer: unknown value {self.optimizer!r}; valid values: adam, rmsprop')
    return self


class DQNLearner:
  """The online network, its optional target network, and one gradient step on a replay minibatch."""

  def __init__(self, cfg: DQNConfig, observation_shape: Sequence[int], num_actions: int, seed: int = 0):
    self.cfg = cfg.validate()
    keras.utils.set_random_seed(int(seed))
    self.num_actions = int(num_actions)
    self.online = build_network(cfg.network, observation_shape, num_actions, cfg.hidden, name='q_online')
    self.target = None
    if cfg.target_update_period:
      self.target = build_network(cfg.network, observation_shape, num_actions, cfg.hidden, name='q_target')
      hard_update(self.target, self.online)
    if cfg.optimizer == 'rmsprop':
      self.optimizer = keras.optimizers.RMSprop(cfg.learning_rate, rho=0.95, epsilon=0.01, centered=True)
    else:
      self.optimizer = keras.optimizers.Adam(cfg.learning_rate)
    self.optimizer.build(self.online.trainable_variables)
    self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name='updates')
    self._step = tf.function(self._step_impl, reduce_retracing=True)
    self._q = tf.function(lambda obs: self.online(obs), reduce_retracing=True)

  def q_values(self, observations) -> np.ndarray:
    return self._q(tf.convert_to_tensor(observations)).numpy()

  def loss_terms(self, observations, actions, rewards, discounts, next_observations) -> Dict[str, tf.Tensor]:
    q = self.online(observations)
    q_taken = tf.gather(q, tf.cast(actions, tf.int32), axis=-1, batch_dims=1)
    net = self.target if self.target is not None else self.online
    q_next = net(next_observations)
    q_next_online = self.online(next_observations) if self.cfg.double else None
    y = td_target(rewards, discounts, q_next, q_next_online)
    err = y - q_taken
    per = huber(err) if self.cfg.loss == 'huber' else tf.square(err)
    return {'loss': tf.reduce_mean(per), 'q_taken': tf.reduce_mean(q_taken), 'target': tf.reduce_mean(y),
            'q_values': q}

  def _step_impl(self, observations, actions, rewards, discounts, next_observations):
    with tf.GradientTape() as tape:
      out = self.loss_terms(observations, actions, rewards, discounts, next_observations)
    grads = tape.gradient(out['loss'], self.online.trainable_variables)
    self.optimizer.apply_gradients(zip(grads, self.online.trainable_variables))
    self.updates.assign_add(1)
    return {k: v for k, v in out.items() if k != 'q_values'}

  def train_step(self, batch: Dict[str, np.ndarray]) -> Dict[str, float]:
    """One update on a minibatch {'observation', 'action', 'reward', 'discount', 'next_observation'} (discount =
    gamma (1 - done), or the replay's stored 0/1 discount times gamma); syncs the target every C updates."""
    out = self._step(tf.convert_to_tensor(batch['observation']), tf.convert_to_tensor(batch['action']),
                     tf.convert_to_tensor(batch['reward'], tf.float32),
                     tf.convert_to_tensor(batch['discount'], tf.float32),
                     tf.convert_to_tensor(batch['next_observation']))
    if self.target is not None and int(self.updates.numpy()) % self.cfg.target_update_period == 0:
      hard_update(self.target, self.online)
    return {k: float(v) for k, v in out.items()}


def online_q_learning(mdp, steps: int, learning_rate: float = 0.05, epsilon: float = 0.2, seed: int = 0,
                      hidden: Sequence[int] = ()) -> np.ndarray:
  """The slides' online neural Q-learning (S3:L576-581; spec Sec. 4.4) on a `mdp.TabularMDP`, sampled: each step
  act epsilon-greedily, observe r_t and s_{t+1}, set y_t = r_t + gamma (1 - done) max_a Q(s_{t+1}, a; theta) held
  fixed (stop_gradient), and take one plain SGD step on (y_t - Q(s_t, a_t; theta))^2: no replay, no target network.
  States enter one-hot; with `hidden=()` the network is one Dense(|A|) layer, so theta is a table plus a bias and
  the step is tabular Q-learning at a step size of 2 learning_rate. Returns Q [S, A] of the final network."""
  keras.utils.set_random_seed(int(seed))
  rng = np.random.default_rng(seed)
  num_states, num_actions = mdp.num_states, mdp.num_actions
  layers = [keras.Input((num_states,))] + [keras.layers.Dense(h, activation='relu') for h in hidden]
  net = keras.Sequential(layers + [keras.layers.Dense(num_actions, kernel_initializer='zeros')])
  optimizer = keras.optimizers.SGD(learning_rate)
  eye = np.eye(num_states, dtype=np.float32)

  @tf.function
  def update(s, a, r, not_done, s2, s_next):
    """One SGD step on transition (s, a, r, s2); returns Q(s_next, .) after it (the state acted from next)."""
    y = tf.stop_gradient(r + mdp.gamma * not_done * tf.reduce_max(net(s2), axis=-1))
    with tf.GradientTape() as tape:
      q_taken = tf.gather(net(s), a, axis=-1, batch_dims=1)
      loss = tf.reduce_sum(tf.square(y - q_taken))
    grads = tape.gradient(loss, net.trainable_variables)
    optimizer.apply_gradients(zip(grads, net.trainable_variables))
    return net(s_next)[0]

  s = int(rng.choice(num_states, p=mdp.start))
  q_s = net(eye[s:s + 1]).numpy()[0]
  for _ in range(steps):
    a = exploration.epsilon_greedy(q_s, epsilon, rng)
    s2, r, done = tabular.step(mdp, s, a, rng)
    s_next = int(rng.choice(num_states, p=mdp.start)) if done else s2
    q_s = update(eye[s:s + 1], np.array([a]), np.array([r], np.float32), np.array([0.0 if done else 1.0], np.float32),
                 eye[s2:s2 + 1], eye[s_next:s_next + 1]).numpy()
    s = s_next
  return net(eye).numpy()
