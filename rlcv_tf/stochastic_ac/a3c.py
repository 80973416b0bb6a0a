"""The A3C-LSTM family's network (thesis Sec. 2.3-2.4, Alg. 1-3, App. 2.F-2.G; spec ch2 §2.3-2.7): one Keras model
for every `--model=` of the family, with an explicit step API and a replaying unroll.

    h_t = LSTMCell(512)(encoder(o_t), h_{t-1})                        (Table 2.G.2)
    channel 1 (512) and channel 2 (512) from h_t, concatenated to u_t; pi_t = softmax(Dense(A)(u_t)),
    V_t = Dense(1)(u_t)  (ACER, `acer.py`: Q_t = Dense(A)(u_t), V_t = sum_a pi_t(a) Q_t(a)).

| model            | channel 1 (512)                     | channel 2 (512)       | heads      | reference     |
|------------------|-------------------------------------|-----------------------|------------|---------------|
| a3c              | phi(Dense(h))                       | phi(Dense(h))         | Dense      | Alg. 2        |
| sa3c             | phi(mu + sigma eps), mu = Dense(h)  | phi(Dense(h))         | Dense      | Alg. 1        |
| fsa3c            | phi(mu1 + sigma eps1)               | phi(mu2 + sigma eps2) | Dense      | T:L921-923    |
| hpa3c            | CReLU(mu + sigma_t eps) (see below) | phi(Dense(h))         | Dense      | Alg. 3        |
| dropout_sa3c     | Dropout(0.25)(phi(Dense(h)))        | phi(Dense(h))         | Dense      | App. 2.F      |
| nn_a3c (v1)      | phi(Dense(h))                       | phi(Dense(h))         | NoisyDense | App. 2.G      |
| nn_a3c_v2        | phi(NoisyDense(h))                  | phi(NoisyDense(h))    | Dense      | App. 2.G      |
| nn_a3c_v3        | phi(NoisyDense(h))                  | phi(NoisyDense(h))    | NoisyDense | App. 2.G      |
| nn_sa3c          | as sa3c                             | phi(Dense(h))         | NoisyDense | T:L1799-1806  |
| sa3c_value_only  | V reads phi(z), pi reads phi(mu)    | phi(Dense(h))         | Dense      | Sec. 2.6.1    |
| sa3c_policy_only | pi reads phi(z), V reads phi(mu)    | phi(Dense(h))         | Dense      | Sec. 2.6.1    |

HPA3C: log sigma_t^2 = Dense(h) (clipped to [-12, 2]), z = mu + sigma_t eps, and a prior N(Dense(z_{t-1}),
sigma_p^2) whose KL the loss adds (`extras['kl']`, summed over units).

phi is LeakyReLU(0.1) on the pre-activation, so the noise goes in before the nonlinearity (spec §12-3). The
stochastic sample z_t is not fed back into the LSTM: h_t depends on the observations only. HPA3C's CReLU is on z
only, so its heads read 1024 + 512 = 1536 features (spec §12-13).

Step API. `step(observation [B, ...], state, noise, first, mode)` -> `StepOutput(logits [B, A], value [B],
state, extras)`. `state` is {'h', 'c'} ([B, lstm_units]) plus, for HPA3C, 'z_prev' (the previous step's sample
z_{t-1}, [B, fc_units]). `first` [B] marks the envs whose observation starts a new episode: their incoming state is
zeroed before the step (the same flags replay the resets in `unroll`). `noise` is {name: [B, *shape]} for every
entry of `noise_specs()`, drawn by the caller (`layers.next_noise`): SA3C's eps is new every step per env and is
shared by actor and critic (one sample of z feeds both heads); NoisyNet's eps_in / eps_out are held for a rollout
per env by default (`weight_noise='per_step'` for Table 2.5's other column). With noise=None the layers draw their
own (handy for acting when nothing will be replayed). `mode='map'` uses the means (T:L1154-1160).

Replay. `unroll(observations [T, B, ...], initial_state, noise, first, mode)` recomputes a rollout from its
stored initial state (taken with stop-gradient) and stored per-step noise ([T, B, *shape], or [B, *shape] for
noise held over the rollout) and gives the acting step's logits and values again (to float rounding; tested to
1e-5). The encoder and the heads run on all T * B inputs at once; only the LSTM steps through time.

Voting (`evaluation`): `core(observation, state, first)` gives h_t once; `head(h, noise, z_prev, mode)` then
runs on N tiled copies with N noise draws, so the encoder and LSTM run once per step for any N.
"""

import dataclasses
import functools
import math
from typing import Any, Dict, NamedTuple, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from rlcv_tf.stochastic_ac import encoders
from rlcv_tf.stochastic_ac import layers as layers_lib
from rlcv_tf.stochastic_ac.layers import NoiseSpec

CHANNEL_KINDS = ('dense', 'gaussian', 'learned_gaussian', 'dropout', 'noisy')
STOCHASTIC_TO = ('both', 'value', 'policy')


@dataclasses.dataclass(frozen=True)
class Variant:
  """What a `--model=` changes in the network (see the module table)."""
  channel1: str = 'dense'
  channel2: str = 'dense'
  noisy_heads: bool = False
  stochastic_to: str = 'both'     # which head reads the sample z (the other reads phi(mu)); 'both' = SA3C
  q_head: bool = False            # ACER: the value head outputs one Q per action

  def __post_init__(self):
    if self.channel1 not in CHANNEL_KINDS or self.channel2 not in ('dense', 'gaussian', 'noisy'):
      raise ValueError(f'unknown channel kinds {self.channel1!r}, {self.channel2!r}')
    if self.stochastic_to not in STOCHASTIC_TO:
      raise ValueError(f'stochastic_to must be one of {STOCHASTIC_TO}, got {self.stochastic_to!r}')
    if self.stochastic_to != 'both' and self.channel1 != 'gaussian':
      raise ValueError('the value-only / policy-only ablations need a Gaussian channel 1')

  @property
  def hierarchical(self) -> bool:
    return self.channel1 == 'learned_gaussian'


VARIANTS = {
    'a3c': Variant(),
    'sa3c': Variant(channel1='gaussian'),
    'fsa3c': Variant(channel1='gaussian', channel2='gaussian'),
    'hpa3c': Variant(channel1='learned_gaussian'),
    'dropout_sa3c': Variant(channel1='dropout'),
    'nn_a3c': Variant(noisy_heads=True),
    'nn_a3c_v2': Variant(channel1='noisy', channel2='noisy'),
    'nn_a3c_v3': Variant(channel1='noisy', channel2='noisy', noisy_heads=True),
    'nn_sa3c': Variant(channel1='gaussian', noisy_heads=True),
    'sa3c_value_only': Variant(channel1='gaussian', stochastic_to='value'),
    'sa3c_policy_only': Variant(channel1='gaussian', stochastic_to='policy'),
}
MODEL_NAMES = tuple(VARIANTS)


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
  """Sizes and noise settings of an A3C-family (or ACER-family) network. Defaults: the thesis's (Table 2.G.2,
  App. 2.E) with the spec's readings where it is silent (LeakyReLU 0.1, FC 512 + 512, NoisyNet sigma0 0.5)."""
  num_actions: int
  observation_shape: Tuple[int, ...] = (80, 80, 1)
  encoder: str = 'default'            # default | slim | mlp (stand-ins)
  conv7_padding: int = 0
  mlp_units: Tuple[int, ...] = (64,)
  lstm_units: int = 512
  fc_units: int = 512
  leaky_slope: float = 0.1
  log_var: float = -6.0               # SA3C/FSA3C's fixed log sigma^2; HPA3C's prior log sigma_p^2 (T:L1724-1727)
  log_var_range: Tuple[float, float] = (-12.0, 2.0)   # clip of HPA3C's learned log sigma_t^2
  scale_by_input_norm: bool = False   # Prop. 1 form; off as in the thesis's Atari runs (T:L1382-1384)
  dropout_rate: float = 0.25          # App. 2.F
  noisy_sigma0: float = 0.5           # factorised NoisyNet init sigma0 / sqrt(p)
  activation_noise: str = 'per_step'  # Gaussian / dropout units (T:L1410-1418); 'per_rollout' for Table 2.5
  weight_noise: str = 'per_rollout'   # NoisyDense (Table 2.5); 'per_step' for its other column
  stop_grad_prior_input: bool = False  # HPA3C: no gradient into z_{t-1} through the prior (spec §2.6)

  def __post_init__(self):
    object.__setattr__(self, 'observation_shape', tuple(int(d) for d in self.observation_shape))
    object.__setattr__(self, 'mlp_units', tuple(int(u) for u in self.mlp_units))
    object.__setattr__(self, 'log_var_range', tuple(float(v) for v in self.log_var_range))
    if int(self.num_actions) < 1:
      raise ValueError(f'num_actions must be >= 1, got {self.num_actions}')
    if self.encoder not in ('default', 'slim', 'mlp'):
      raise ValueError(f"encoder must be 'default', 'slim' or 'mlp', got {self.encoder!r}")
    if not math.isfinite(self.log_var):
      raise ValueError(f'log_var must be finite, got {self.log_var}')
    for name in ('activation_noise', 'weight_noise'):
      if getattr(self, name) not in layers_lib.SCHEDULES:
        raise ValueError(f'{name} must be one of {layers_lib.SCHEDULES}, got {getattr(self, name)!r}')


class StepOutput(NamedTuple):
  logits: Any      # [B, A]
  value: Any       # [B]
  state: Dict[str, Any]
  extras: Dict[str, Any]


class UnrollOutput(NamedTuple):
  logits: Any      # [T, B, A]
  values: Any      # [T, B]
  state: Dict[str, Any]   # after the last step
  extras: Dict[str, Any]  # each [T, B, ...]


def _kernel(std):
  return layers_lib.normalized_columns_initializer(std)


class ActorCriticLSTM(keras.Model):
  """Encoder -> LSTMCell -> two FC channels -> policy and value (or Q) heads; see the module docstring.

  Layer names (checkpoint keys): encoder, lstm, fc1, fc2, policy, value (q with a Q head), prior (HPA3C). FC1 of
  A3C and the mean map of SA3C's channel 1 are both `fc1` with weights (kernel, bias), so weights copy across.
  Heads (spec §2.5 PROPOSAL, the A3C-LSTM code base): policy kernel with columns of norm 0.01, value / Q columns of
  norm 1, zero biases; LSTM biases zero (no forget-gate offset); Keras defaults elsewhere.
  """

  def __init__(self, config: NetworkConfig, variant: Variant, name: str = 'actor_critic', **kwargs):
    super().__init__(name=name, **kwargs)
    self.config = config
    self.variant = variant
    c, v = config, variant
    self.encoder = encoders.build_encoder(c.encoder, c.conv7_padding, c.mlp_units, c.leaky_slope, name='encoder')
    self.lstm = keras.layers.LSTMCell(c.lstm_units, bias_initializer='zeros', unit_forget_bias=False, name='lstm')
    self.fc1 = self._channel_layer(v.channel1, 'fc1')
    self.fc2 = self._channel_layer(v.channel2, 'fc2')
    self.dropout = layers_lib.DropoutUnits(c.dropout_rate, name='dropout1') if v.channel1 == 'dropout' else None
    self.prior = (layers_lib.HierarchicalPrior(c.fc_units, c.log_var, name='prior') if v.hierarchical else None)
    out = c.num_actions if v.q_head else 1
    value_name = 'q' if v.q_head else 'value'
    if v.noisy_heads:
      self.policy = layers_lib.NoisyDense(c.num_actions, c.noisy_sigma0, name='policy')
      self.value = layers_lib.NoisyDense(out, c.noisy_sigma0, name=value_name)
    else:
      self.policy = keras.layers.Dense(c.num_actions, kernel_initializer=_kernel(0.01), name='policy')
      self.value = keras.layers.Dense(out, kernel_initializer=_kernel(1.0), name=value_name)
    self.value_key = value_name

  def _channel_layer(self, kind, name):
    c = self.config
    if kind in ('dense', 'dropout'):
      return keras.layers.Dense(c.fc_units, name=name)
    if kind == 'gaussian':
      return layers_lib.StochasticDense(c.fc_units, log_var=c.log_var, scale_by_input_norm=c.scale_by_input_norm,
                                        name=name)
    if kind == 'learned_gaussian':
      return layers_lib.StochasticDense(c.fc_units, log_var=c.log_var, learn_log_var=True,
                                        log_var_range=c.log_var_range, scale_by_input_norm=c.scale_by_input_norm,
                                        name=name)
    return layers_lib.NoisyDense(c.fc_units, c.noisy_sigma0, name=name)

  # ------------------------------------------------------------------------------------------------ shapes

  @property
  def head_input_dim(self) -> int:
    return self.config.fc_units * (3 if self.variant.hierarchical else 2)

  def noise_specs(self) -> Dict[str, NoiseSpec]:
    """{name: NoiseSpec} of every noise input (per env, no batch axis)."""
    c, v = self.config, self.variant
    specs = {}
    for i, kind in ((1, v.channel1), (2, v.channel2)):
      if kind in ('gaussian', 'learned_gaussian'):
        specs[f'z{i}'] = NoiseSpec((c.fc_units,), 'normal', c.activation_noise)
      elif kind == 'dropout':
        specs[f'dropout{i}'] = NoiseSpec((c.fc_units,), 'uniform', c.activation_noise)
      elif kind == 'noisy':
        specs[f'fc{i}_in'] = NoiseSpec((c.lstm_units,), 'normal', c.weight_noise)
        specs[f'fc{i}_out'] = NoiseSpec((c.fc_units,), 'normal', c.weight_noise)
    if v.noisy_heads:
      value_out = c.num_actions if v.q_head else 1
      for key, width in (('policy', c.num_actions), (self.value_key, value_out)):
        specs[f'{key}_in'] = NoiseSpec((self.head_input_dim,), 'normal', c.weight_noise)
        specs[f'{key}_out'] = NoiseSpec((width,), 'normal', c.weight_noise)
    return specs

  def initial_state(self, batch_size: int) -> Dict[str, Any]:
    state = {'h': tf.zeros((batch_size, self.config.lstm_units)), 'c': tf.zeros((batch_size, self.config.lstm_units))}
    if self.variant.hierarchical:
      state['z_prev'] = tf.zeros((batch_size, self.config.fc_units))
    return state

  def build_network(self):
    """Creates every variable (one MAP step on zeros); returns self."""
    if not self.built:
      obs = np.zeros((1,) + self.config.observation_shape, np.float32)
      self.step(obs, self.initial_state(1), mode='map')
      self.built = True
    return self

  # ------------------------------------------------------------------------------------------------ pieces

  def core(self, observation, state, first=None):
    """(h_t, {'h', 'c'}) after one LSTM step; the incoming state is zeroed where `first`."""
    h, c = state['h'], state['c']
    if first is not None:
      keep = 1.0 - ops.cast(first, h.dtype)[:, None]
      h, c = h * keep, c * keep
    h, (h, c) = self.lstm(self.encoder(ops.cast(observation, 'float32')), [h, c])
    return h, {'h': h, 'c': c}

  def _noise(self, noise, key):
    if noise is None:
      return None
    if key not in noise:
      raise KeyError(f'noise {key!r} missing: this network needs {sorted(self.noise_specs())}, '
                     f'got {sorted(noise)}')
    return noise[key]

  def _noisy_pair(self, noise, key):
    if noise is None:
      return None
    return self._noise(noise, f'{key}_in'), self._noise(noise, f'{key}_out')

  def _channels(self, h, noise, mode):
    """(value input, policy input, extras) of the heads."""
    c, v = self.config, self.variant
    phi = lambda x: layers_lib.leaky_relu(x, c.leaky_slope)
    extras = {}
    # Channel 1.
    if v.channel1 == 'dense':
      one_v = one_p = phi(self.fc1(h))
    elif v.channel1 == 'gaussian':
      z, mean, _ = self.fc1(h, noise=self._noise(noise, 'z1'), mode=mode, return_moments=True)
      one_v = one_p = phi(z)
      if v.stochastic_to == 'value':
        one_p = phi(mean)
      elif v.stochastic_to == 'policy':
        one_v = phi(mean)
      extras['z'] = z
    elif v.channel1 == 'learned_gaussian':
      z, mean, stddev = self.fc1(h, noise=self._noise(noise, 'z1'), mode=mode, return_moments=True)
      one_v = one_p = ops.concatenate([ops.relu(z), ops.relu(-z)], axis=-1)     # CReLU on z only
      extras.update(z=z, mean=mean, stddev=stddev)
    elif v.channel1 == 'dropout':
      one_v = one_p = self.dropout(phi(self.fc1(h)), noise=self._noise(noise, 'dropout1'), mode=mode)
    else:
      one_v = one_p = phi(self.fc1(h, noise=self._noisy_pair(noise, 'fc1'), mode=mode))
    # Channel 2.
    if v.channel2 == 'dense':
      two = phi(self.fc2(h))
    elif v.channel2 == 'gaussian':
      two = phi(self.fc2(h, noise=self._noise(noise, 'z2'), mode=mode))
    else:
      two = phi(self.fc2(h, noise=self._noisy_pair(noise, 'fc2'), mode=mode))
    return ops.concatenate([one_v, two], axis=-1), ops.concatenate([one_p, two], axis=-1), extras

  def _heads(self, value_in, policy_in, noise, mode):
    if self.variant.noisy_heads:
      logits = self.policy(policy_in, noise=self._noisy_pair(noise, 'policy'), mode=mode)
      out = self.value(value_in, noise=self._noisy_pair(noise, self.value_key), mode=mode)
    else:
      logits, out = self.policy(policy_in), self.value(value_in)
    extras = {}
    if self.variant.q_head:
      extras['q_values'] = out
      value = ops.sum(ops.softmax(logits, axis=-1) * out, axis=-1)
    else:
      value = out[:, 0]
    return logits, value, extras

  def _prior_terms(self, z_prev, extras):
    if self.config.stop_grad_prior_input:
      z_prev = tf.stop_gradient(z_prev)
    prior_mean = self.prior(z_prev)
    return {'prior_mean': prior_mean, 'kl': self.prior.kl(extras['mean'], extras['stddev'], prior_mean)}

  def head(self, h, noise=None, z_prev=None, mode: str = 'sample'):
    """(logits, value, extras) from LSTM outputs h [N, lstm_units]. HPA3C: `z_prev` [N, fc_units] (zeros when
    None) gives the prior terms 'prior_mean' and 'kl' (summed over units, [N]); extras also carry 'z', 'mean' and
    'stddev' of the stochastic units, and 'q_values' with a Q head."""
    layers_lib.check_mode(mode)
    value_in, policy_in, extras = self._channels(h, noise, mode)
    logits, value, more = self._heads(value_in, policy_in, noise, mode)
    extras.update(more)
    if self.variant.hierarchical:
      if z_prev is None:
        z_prev = ops.zeros_like(extras['z'])
      extras.update(self._prior_terms(z_prev, extras))
    return logits, value, extras

  # ------------------------------------------------------------------------------------------------ API

  def step(self, observation, state, noise=None, first=None, mode: str = 'sample') -> StepOutput:
    """One acting step for a batch of envs; see the module docstring."""
    h, new_state = self.core(observation, state, first)
    z_prev = None
    if self.variant.hierarchical:
      z_prev = state['z_prev']
      if first is not None:
        z_prev = z_prev * (1.0 - ops.cast(first, z_prev.dtype)[:, None])
    logits, value, extras = self.head(h, noise, z_prev, mode)
    if self.variant.hierarchical:
      new_state['z_prev'] = extras['z']
    return StepOutput(logits, value, new_state, extras)

  def call(self, observation, state, noise=None, first=None, mode: str = 'sample'):
    return self.step(observation, state, noise, first, mode)

  def _flat_noise(self, noise, t, b):
    """{name: [T*B, *shape]} from [T, B, *shape] (per step) or [B, *shape] (held for the rollout)."""
    if noise is None:
      return None
    specs = self.noise_specs()
    out = {}
    for key, spec in specs.items():
      x = ops.convert_to_tensor(self._noise(noise, key), 'float32')
      if len(x.shape) == len(spec.shape) + 1:
        x = ops.broadcast_to(x[None], (t, b) + spec.shape)
      out[key] = ops.reshape(x, (t * b,) + spec.shape)
    return out

  def unroll(self, observations, initial_state, noise=None, first=None, mode: str = 'sample') -> UnrollOutput:
    """Replays T steps from `initial_state` (stop-gradient) with the stored noise and episode-start flags."""
    self.build_network()
    observations = ops.cast(observations, 'float32')
    t, b = tf.shape(observations)[0], tf.shape(observations)[1]
    flat = ops.reshape(observations, tf.concat([[t * b], tf.shape(observations)[2:]], 0))
    feats = self.encoder(flat)
    feats = ops.reshape(feats, (t, b, feats.shape[-1]))
    keep = tf.ones((t, b)) if first is None else 1.0 - ops.cast(first, 'float32')
    h0 = tf.stop_gradient(ops.convert_to_tensor(initial_state['h'], 'float32'))
    c0 = tf.stop_gradient(ops.convert_to_tensor(initial_state['c'], 'float32'))

    def lstm_step(carry, inputs):
      h, c = carry
      x_t, keep_t = inputs
      h, c = h * keep_t[:, None], c * keep_t[:, None]
      _, (h, c) = self.lstm(x_t, [h, c])
      return h, c

    hs, cs = tf.scan(lstm_step, (feats, keep), initializer=(h0, c0))
    units = self.config.lstm_units
    flat_noise = self._flat_noise(noise, t, b)
    value_in, policy_in, extras = self._channels(ops.reshape(hs, (t * b, units)), flat_noise, mode)
    logits, values, more = self._heads(value_in, policy_in, flat_noise, mode)
    extras.update(more)
    state = {'h': hs[-1], 'c': cs[-1]}
    if self.variant.hierarchical:
      z = ops.reshape(extras['z'], (t, b, self.config.fc_units))
      z_prev0 = tf.stop_gradient(ops.convert_to_tensor(initial_state['z_prev'], 'float32'))
      z_prev = ops.concatenate([z_prev0[None], z[:-1]], axis=0) * keep[:, :, None]
      extras.update(self._prior_terms(ops.reshape(z_prev, (t * b, self.config.fc_units)), extras))
      state['z_prev'] = z[-1]
    unflat = lambda x: ops.reshape(x, tf.concat([[t, b], tf.shape(x)[1:]], 0))
    return UnrollOutput(unflat(logits), unflat(values), state, {k: unflat(x) for k, x in extras.items()})


def build_network(model: str, num_actions: int, observation_shape: Sequence[int] = (80, 80, 1),
                  variants: Optional[Dict[str, Variant]] = None, **config) -> ActorCriticLSTM:
  """The built network of `--model=model` (an A3C-family name, or one of `variants`), with `config` overrides."""
  variants = VARIANTS if variants is None else variants
  if model not in variants:
    raise ValueError(f'unknown model {model!r}; valid: {", ".join(variants)}')
  cfg = NetworkConfig(num_actions=int(num_actions), observation_shape=tuple(observation_shape), **config)
  return ActorCriticLSTM(cfg, variants[model], name=model).build_network()


# --model= name -> builder(num_actions, observation_shape, **config) -> built network.
MODELS = {name: functools.partial(build_network, name) for name in VARIANTS}


def copy_weights(source: keras.Model, target: keras.Model, layer_names: Sequence[str]) -> None:
  """target.<name> <- source.<name> for each layer name (e.g. A3C's weights into SA3C: every layer has the same
  weight list, the Gaussian channel's mean map included)."""
  for name in layer_names:
    getattr(target, name).set_weights(getattr(source, name).get_weights())
