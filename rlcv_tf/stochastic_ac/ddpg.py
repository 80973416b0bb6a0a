"""The DDPG family's networks (thesis Sec. 2.4.2, App. 2.E; spec ch2 §2.8, §3.4): actor and critic with separate
1-D conv encoders over 4 stacked states and no LSTM (T:L1046-1052, T:L1651-1660).

Actor (all three models): encoder (1600) -> Dense(400) -> LayerNorm -> LeakyReLU -> Dense(300) -> LayerNorm ->
LeakyReLU -> Dense(action_dim) -> tanh. Critic: encoder (1600) concatenated with the action -> Dense(400) ->
LeakyReLU -> Dense(300) -> LeakyReLU -> Dense(1). Last layers start U(+-3e-3) (Lillicrap et al. 2016).

* `ddpg`: the baseline (exploration by OU action noise, in training).
* `sddpg`: Dense(400)'s first 200 units stay deterministic and the last 200 get + sigma eps after the LayerNorm,
  log sigma^2 = -5 (T:L1740-1742), in the behaviour actor only: `actor(obs, noise, mode='sample')` when acting,
  `mode='map'` (the default) for the critic target and the actor update (T:L1050-1052).
* `pn_ddpg`: parameter noise (Plappert et al. 2017) on a perturbed copy of the actor: N(0, sigma_pn^2) added to the
  Dense kernels and biases, never to the conv encoder (T:L1049-1050) nor to the LayerNorm gains; sigma_pn adapts
  from 0.05 by the factor 1.05 towards an action-space distance of 0.3 (T:L1740-1741).

LayerNorm (T:L1696-1704: after the linear layers with stochastic weights or activations): after both hidden
layers, in every actor, as in Plappert et al.'s actors, so the three models share one architecture; not after the
action layer (normalising the 4 action pre-activations to zero mean and unit variance would constrain the action)
and not in the critic, which has no noise.
"""

import dataclasses
import functools
import math
from typing import Dict, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from rlcv_tf.stochastic_ac import encoders
from rlcv_tf.stochastic_ac import layers as layers_lib
from rlcv_tf.stochastic_ac.layers import NoiseSpec

MODEL_NAMES = ('ddpg', 'sddpg', 'pn_ddpg')
SDDPG_LOG_VAR = -5.0            # T:L1742
PN_INITIAL_STDDEV = 0.05        # T:L1740
PN_DESIRED_DISTANCE = 0.3       # T:L1740-1741
PN_ADAPTATION = 1.05            # T:L1741
LN_EPSILON = 1e-5               # not stated; Keras' default 1e-3 is large next to a small pre-activation variance


@dataclasses.dataclass(frozen=True)
class DDPGNetworkConfig:
  action_dim: int
  observation_shape: Tuple[int, ...] = (24, 4)   # [state length, stacked states]
  encoder: str = 'conv1d'                         # conv1d | mlp (stand-ins)
  mlp_units: Tuple[int, ...] = (64,)
  hidden: Tuple[int, int] = (400, 300)
  stochastic_units: int = 200                     # SDDPG: the last units of the first hidden layer
  log_var: float = SDDPG_LOG_VAR
  leaky_slope: float = 0.1
  layer_norm: bool = True

  def __post_init__(self):
    object.__setattr__(self, 'observation_shape', tuple(int(d) for d in self.observation_shape))
    object.__setattr__(self, 'hidden', tuple(int(d) for d in self.hidden))
    object.__setattr__(self, 'mlp_units', tuple(int(u) for u in self.mlp_units))
    if int(self.action_dim) < 1:
      raise ValueError(f'action_dim must be >= 1, got {self.action_dim}')
    if not 0 < self.stochastic_units <= self.hidden[0]:
      raise ValueError(f'stochastic_units must be in (0, {self.hidden[0]}], got {self.stochastic_units}')
    if not math.isfinite(self.log_var):
      raise ValueError(f'log_var must be finite, got {self.log_var}')


def _last_layer(units, name):
  init = keras.initializers.RandomUniform(-3e-3, 3e-3)
  return keras.layers.Dense(units, kernel_initializer=init, bias_initializer=init, name=name)


class DDPGActor(keras.Model):
  """mu(s) in [-1, 1]^action_dim; `call(observation, noise=None, mode='map')`. Only `sddpg` has noise inputs
  ({'z1': [B, stochastic_units]}, per step); in 'map' mode (or for ddpg / pn_ddpg) the actor is deterministic."""

  def __init__(self, model: str, config: DDPGNetworkConfig, name: str = 'actor', **kwargs):
    super().__init__(name=name, **kwargs)
    if model not in MODEL_NAMES:
      raise ValueError(f'unknown model {model!r}; valid: {", ".join(MODEL_NAMES)}')
    self.model_name = model
    self.config = config
    c = config
    self.encoder = encoders.build_encoder(c.encoder, mlp_units=c.mlp_units, leaky_slope=c.leaky_slope,
                                          name='encoder')
    self.fc1 = keras.layers.Dense(c.hidden[0], name='fc1')
    self.fc2 = keras.layers.Dense(c.hidden[1], name='fc2')
    self.ln1 = keras.layers.LayerNormalization(epsilon=LN_EPSILON, name='ln1') if c.layer_norm else None
    self.ln2 = keras.layers.LayerNormalization(epsilon=LN_EPSILON, name='ln2') if c.layer_norm else None
    self.action = _last_layer(c.action_dim, 'action')

  @property
  def stochastic(self) -> bool:
    return self.model_name == 'sddpg'

  def noise_specs(self) -> Dict[str, NoiseSpec]:
    return {'z1': NoiseSpec((self.config.stochastic_units,), 'normal', 'per_step')} if self.stochastic else {}

  def dense_layers(self):
    """The layers parameter noise perturbs (kernels and biases): the Dense layers after the encoder."""
    return [self.fc1, self.fc2, self.action]

  def call(self, observation, noise=None, mode: str = 'map'):
    c = self.config
    layers_lib.check_mode(mode)
    x = self.fc1(self.encoder(ops.cast(observation, 'float32')))
    if self.ln1 is not None:
      x = self.ln1(x)
    if self.stochastic and mode == 'sample':
      n_det = c.hidden[0] - c.stochastic_units
      eps = (tf.random.normal(tf.shape(x[:, n_det:])) if noise is None
             else ops.cast(noise['z1'], x.dtype))
      x = ops.concatenate([x[:, :n_det], x[:, n_det:] + math.exp(0.5 * c.log_var) * eps], axis=-1)
    x = self.fc2(layers_lib.leaky_relu(x, c.leaky_slope))
    if self.ln2 is not None:
      x = self.ln2(x)
    return ops.tanh(self.action(layers_lib.leaky_relu(x, c.leaky_slope)))

  def build_network(self):
    if not self.built:
      self(np.zeros((1,) + self.config.observation_shape, np.float32))
    return self


class DDPGCritic(keras.Model):
  """Q(s, a): `call(observation, action)` -> [B]."""

  def __init__(self, config: DDPGNetworkConfig, name: str = 'critic', **kwargs):
    super().__init__(name=name, **kwargs)
    self.config = config
    c = config
    self.encoder = encoders.build_encoder(c.encoder, mlp_units=c.mlp_units, leaky_slope=c.leaky_slope,
                                          name='encoder')
    self.fc1 = keras.layers.Dense(c.hidden[0], name='fc1')
    self.fc2 = keras.layers.Dense(c.hidden[1], name='fc2')
    self.q = _last_layer(1, 'q')

  def call(self, observation, action):
    slope = self.config.leaky_slope
    x = ops.concatenate([self.encoder(ops.cast(observation, 'float32')), ops.cast(action, 'float32')], axis=-1)
    x = layers_lib.leaky_relu(self.fc1(x), slope)
    x = layers_lib.leaky_relu(self.fc2(x), slope)
    return self.q(x)[:, 0]

  def build_network(self):
    if not self.built:
      self(np.zeros((1,) + self.config.observation_shape, np.float32),
           np.zeros((1, self.config.action_dim), np.float32))
    return self


def build_networks(model: str, action_dim: int, observation_shape: Sequence[int] = (24, 4),
                   **config) -> Tuple[DDPGActor, DDPGCritic]:
  """(actor, critic) of `--model=model`, built; `config` overrides `DDPGNetworkConfig`."""
  cfg = DDPGNetworkConfig(action_dim=int(action_dim), observation_shape=tuple(observation_shape), **config)
  return DDPGActor(model, cfg).build_network(), DDPGCritic(cfg).build_network()


MODELS = {name: functools.partial(build_networks, name) for name in MODEL_NAMES}


def clone_actor(actor: DDPGActor, name: str) -> DDPGActor:
  """A new actor of the same model and config with a copy of the weights (target or perturbed actor)."""
  out = DDPGActor(actor.model_name, actor.config, name=name).build_network()
  out.set_weights(actor.get_weights())
  return out


def clone_critic(critic: DDPGCritic, name: str) -> DDPGCritic:
  out = DDPGCritic(critic.config, name=name).build_network()
  out.set_weights(critic.get_weights())
  return out


def soft_update(target: keras.Model, source: keras.Model, tau: float) -> None:
  """theta' <- tau theta + (1 - tau) theta' for every weight (tau = 1 copies)."""
  for t_var, s_var in zip(target.weights, source.weights):
    t_var.assign(tau * s_var + (1.0 - tau) * t_var)


def perturb_actor(actor: DDPGActor, perturbed: DDPGActor, stddev: float, rng: np.random.Generator) -> None:
  """perturbed <- actor, then + N(0, stddev^2) on every Dense kernel and bias after the encoder (never the conv
  encoder, never the LayerNorm gains and offsets)."""
  perturbed.set_weights(actor.get_weights())
  for layer in perturbed.dense_layers():
    for var in (layer.kernel, layer.bias):
      var.assign(var + rng.normal(0.0, stddev, size=tuple(var.shape)).astype(np.float32))


def action_distance(actions, perturbed_actions) -> float:
  """d = sqrt(mean over batch and action dims of (mu(s) - mu~(s))^2) (Plappert et al. 2017, DDPG)."""
  diff = np.asarray(actions, np.float64) - np.asarray(perturbed_actions, np.float64)
  return float(np.sqrt(np.mean(np.square(diff))))


@dataclasses.dataclass
class ParamNoiseAdaptation:
  """Adaptive sigma_pn: x `coefficient` when the distance is <= `desired_distance`, / `coefficient` otherwise."""
  stddev: float = PN_INITIAL_STDDEV
  desired_distance: float = PN_DESIRED_DISTANCE
  coefficient: float = PN_ADAPTATION

  def adapt(self, distance: float) -> float:
    if distance > self.desired_distance:
      self.stddev /= self.coefficient
    else:
      self.stddev *= self.coefficient
    return self.stddev
