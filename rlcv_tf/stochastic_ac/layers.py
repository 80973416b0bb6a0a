"""Stochastic units of Chapter 2 (thesis Sec. 2.4-2.5, App. 2.E-2.G; spec ch2 §2.6): the layers every network of
`a3c.py`, `acer.py` and `ddpg.py` is built from.

* `StochasticDense`: a Dense layer whose output is a factored Gaussian z = mu + sigma * eps, mu = x W + b. The
  log-variance is fixed (SA3C/FSA3C, log sigma^2 a hyper-parameter, T:L1724-1726) or learned from the same input
  (HPA3C's f_var, T:L1872-1912), clipped to `log_var_range` before exp. `scale_by_input_norm` multiplies the
  standard deviation by ||x||, the activation distribution of Prop. 1 (T:L1366-1380: Gaussian weights with a fixed
  variance give N(U^T x, sigma^2 ||x||^2)); off by default, as in the thesis's Atari runs (T:L1382-1384).
* `NoisyDense`: factorised Gaussian NoisyNet layer (Fortunato et al. 2017), with noise per batch row (per env), so a
  batch of envs each sees its own weights without building [B, p, q] tensors.
* `CReLU`: concat([relu(x), relu(-x)]) (Shang et al. 2016); HPA3C's activation on z (T:L1684-1695), the slim
  encoder's on its stride-1 convs (Table 2.G.2).
* `DropoutUnits`: inverted dropout at rate 0.25 in place of the Gaussian units (App. 2.F, T:L1744-1757).
* `HierarchicalPrior`: HPA3C's prior N(f_p(z_{t-1}), sigma_p^2) on the stochastic units and the KL to it, both the
  prior on the mean and the prior on the variance (T:L942-955; the thesis says dropping either hurts).

Noise. Every stochastic layer takes its noise from the caller (`noise=`), so a training step can replay exactly the
noise used when acting (spec §4.1); the layers draw it themselves only when none is passed. The standard-normal
eps (Gaussian units, NoisyNet's eps_in / eps_out) and the uniform u of dropout units are stored raw. A network
describes its noise with `NoiseSpec`s (shape, distribution, schedule) and `draw_noise` / `next_noise` make it:
'per_step' noise is new at every environment step for every env (SA3C, T:L1410-1418), 'per_rollout' noise is drawn
once per rollout per env and held (NoisyNet, Table 2.5).

Modes: 'sample' uses the noise; 'map' uses the means (z = mu, no dropout, NoisyNet's mean weights; T:L1154-1160).
Distributions are `tfp.distributions` objects (`StochasticDense.distribution`, `gaussian_kl`).
"""

import dataclasses
import math
from typing import Dict, Mapping, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from keras import ops

from rlcv_tf.core.layers import CReLU  # pylint: disable=unused-import  (re-exported: layers.CReLU)
from rlcv_tf.core.layers import leaky_relu  # pylint: disable=unused-import  (re-exported: layers.leaky_relu)

tfd = tfp.distributions

MODES = ('sample', 'map')
SCHEDULES = ('per_step', 'per_rollout')
NOISE_KINDS = ('normal', 'uniform')


def check_mode(mode: str) -> str:
  if mode not in MODES:
    raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
  return mode


# ------------------------------------------------------------------------------------------------------ noise


@dataclasses.dataclass(frozen=True)
class NoiseSpec:
  """One noise input of a network: `shape` per env (no batch axis), `kind` 'normal' (N(0, 1)) or 'uniform'
  (U[0, 1)), and `schedule` 'per_step' (new every step) or 'per_rollout' (new at each rollout's first step)."""
  shape: Tuple[int, ...]
  kind: str = 'normal'
  schedule: str = 'per_step'

  def __post_init__(self):
    if self.kind not in NOISE_KINDS:
      raise ValueError(f'noise kind must be one of {NOISE_KINDS}, got {self.kind!r}')
    if self.schedule not in SCHEDULES:
      raise ValueError(f'noise schedule must be one of {SCHEDULES}, got {self.schedule!r}')


def draw_noise(specs: Mapping[str, NoiseSpec], batch: int, rng: np.random.Generator) -> Dict[str, np.ndarray]:
  """A fresh draw of every noise input: {name: float32 [batch, *shape]}. Drawn in NumPy so a rollout can store it
  as data; keys in sorted order so one seed gives one draw."""
  out = {}
  for name in sorted(specs):
    spec = specs[name]
    shape = (int(batch),) + tuple(spec.shape)
    if spec.kind == 'normal':
      out[name] = rng.standard_normal(shape, dtype=np.float32)
    else:
      out[name] = rng.random(shape, dtype=np.float32)
  return out


def next_noise(specs: Mapping[str, NoiseSpec], previous: Optional[Mapping[str, np.ndarray]], batch: int,
               rng: np.random.Generator, rollout_start: bool) -> Dict[str, np.ndarray]:
  """The noise for the next environment step: per-step inputs are drawn anew; per-rollout inputs are drawn anew
  when `rollout_start` (or when there is no previous noise) and otherwise kept from `previous`."""
  fresh = draw_noise(specs, batch, rng)
  if previous is None or rollout_start:
    return fresh
  return {name: (fresh[name] if specs[name].schedule == 'per_step' else previous[name]) for name in fresh}


def draw_rollout_noise(specs: Mapping[str, NoiseSpec], steps: int, batch: int,
                       rng: np.random.Generator) -> Dict[str, np.ndarray]:
  """Fresh noise for a whole T-step forward (e.g. SACER's off-policy replays, which draw new eps): per-step inputs
  [steps, batch, *shape], per-rollout inputs [batch, *shape] (held over the T steps; `a3c.ActorCriticLSTM.unroll`
  takes both layouts)."""
  out = {}
  for name in sorted(specs):
    spec = specs[name]
    draws = draw_noise({name: spec}, batch * (steps if spec.schedule == 'per_step' else 1), rng)[name]
    out[name] = draws.reshape((steps, batch) + tuple(spec.shape)) if spec.schedule == 'per_step' else draws
  return out


def _standard_normal_like(x):
  return tf.random.normal(tf.shape(x), dtype=x.dtype)


# ---------------------------------------------------------------------------------------------- activations


class DropoutUnits(keras.layers.Layer):
  """Inverted dropout driven by external uniform noise: x * [u >= rate] / (1 - rate) in 'sample' mode, x in 'map'.

  A unit is kept with probability 1 - rate, so E[output] = x. `noise` is u ~ U[0, 1) with x's shape (drawn here when
  None). App. 2.F: rate 0.25 replaces SA3C's Gaussian units, a new mask every step.
  """

  def __init__(self, rate: float = 0.25, **kwargs):
    super().__init__(**kwargs)
    if not 0.0 <= float(rate) < 1.0:
      raise ValueError(f'dropout rate must be in [0, 1), got {rate}')
    self.rate = float(rate)

  def call(self, x, noise=None, mode: str = 'sample'):
    if check_mode(mode) == 'map' or self.rate == 0.0:
      return x
    if noise is None:
      noise = tf.random.uniform(tf.shape(x), dtype=x.dtype)
    keep = ops.cast(ops.greater_equal(ops.cast(noise, x.dtype), self.rate), x.dtype)
    return x * keep / (1.0 - self.rate)

  def get_config(self):
    return dict(super().get_config(), rate=self.rate)


# -------------------------------------------------------------------------------------------- Gaussian units


class StochasticDense(keras.layers.Layer):
  """Dense mean plus factored Gaussian noise: z = mu + sigma * eps with mu = x W + b, eps ~ N(0, I).

  sigma = exp(log_var / 2), where log_var is the fixed `log_var` or, with `learn_log_var`, a second linear map of
  the same input, log_var(x) = x W_v + b_v clipped to `log_var_range` (W_v starts at zero and b_v at `log_var`, so
  the learned variance starts at the prior's and HPA3C's KL starts at the mean term only). With
  `scale_by_input_norm`, sigma is multiplied by ||x||_2 (Prop. 1).

  Call: `layer(x, noise=None, mode='sample', return_moments=False)` returns z (pre-activation; the caller applies
  the nonlinearity), or (z, mu, sigma) with `return_moments`. In 'map' mode z = mu. `noise` is eps, [B, units]
  (drawn here when None). Its weights are named like Dense's (kernel, bias), so a Dense layer's weights copy in.

  Args:
    units: number of stochastic units.
    log_var: fixed log sigma^2; with `learn_log_var` the initial value of the learned one.
    learn_log_var: learn log sigma^2 from x (HPA3C).
    log_var_range: clip of the learned log-variance (spec §2.4 PROPOSAL [-12, 2]).
    scale_by_input_norm: sigma * ||x|| (Prop. 1 form). Default False, as in the thesis's Atari models.
    use_bias, kernel_initializer, bias_initializer: of the mean's Dense map.
  """

  def __init__(self, units: int, log_var: float = -6.0, learn_log_var: bool = False,
               log_var_range: Tuple[float, float] = (-12.0, 2.0), scale_by_input_norm: bool = False,
               use_bias: bool = True, kernel_initializer='glorot_uniform', bias_initializer='zeros', **kwargs):
    super().__init__(**kwargs)
    self.units = int(units)
    self.log_var = float(log_var)
    if not math.isfinite(self.log_var):
      raise ValueError(f'log_var must be finite, got {log_var}')
    self.learn_log_var = bool(learn_log_var)
    self.log_var_range = (float(log_var_range[0]), float(log_var_range[1]))
    self.scale_by_input_norm = bool(scale_by_input_norm)
    self.use_bias = bool(use_bias)
    self.kernel_initializer = keras.initializers.get(kernel_initializer)
    self.bias_initializer = keras.initializers.get(bias_initializer)

  def build(self, input_shape):
    p = int(input_shape[-1])
    self.kernel = self.add_weight(shape=(p, self.units), name='kernel', initializer=self.kernel_initializer)
    self.bias = (self.add_weight(shape=(self.units,), name='bias', initializer=self.bias_initializer)
                 if self.use_bias else None)
    if self.learn_log_var:
      self.log_var_kernel = self.add_weight(shape=(p, self.units), name='log_var_kernel', initializer='zeros')
      self.log_var_bias = self.add_weight(shape=(self.units,), name='log_var_bias',
                                          initializer=keras.initializers.Constant(self.log_var))

  def moments(self, x):
    """(mu, sigma), both [B, units]."""
    mean = ops.matmul(x, self.kernel)
    if self.bias is not None:
      mean = mean + self.bias
    if self.learn_log_var:
      log_var = ops.clip(ops.matmul(x, self.log_var_kernel) + self.log_var_bias, *self.log_var_range)
      stddev = ops.exp(0.5 * log_var)
    else:
      stddev = ops.ones_like(mean) * math.exp(0.5 * self.log_var)
    if self.scale_by_input_norm:
      stddev = stddev * ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True))
    return mean, stddev

  def distribution(self, x) -> tfd.Distribution:
    """The factored Gaussian of z given x: Independent(Normal(mu, sigma), 1) over the units."""
    mean, stddev = self.moments(x)
    return tfd.Independent(tfd.Normal(loc=mean, scale=stddev), reinterpreted_batch_ndims=1)

  def call(self, x, noise=None, mode: str = 'sample', return_moments: bool = False):
    mean, stddev = self.moments(x)
    if check_mode(mode) == 'map':
      z = mean
    else:
      noise = _standard_normal_like(mean) if noise is None else ops.cast(noise, mean.dtype)
      z = mean + stddev * noise
    return (z, mean, stddev) if return_moments else z

  def compute_output_shape(self, input_shape):
    return tuple(input_shape[:-1]) + (self.units,)

  def get_config(self):
    return dict(super().get_config(), units=self.units, log_var=self.log_var, learn_log_var=self.learn_log_var,
                log_var_range=self.log_var_range, scale_by_input_norm=self.scale_by_input_norm,
                use_bias=self.use_bias, kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
                bias_initializer=keras.initializers.serialize(self.bias_initializer))


def gaussian_kl(mean, stddev, prior_mean, prior_stddev):
  """KL[N(mean, stddev^2) || N(prior_mean, prior_stddev^2)] per unit, via tfp (element-wise: factored Gaussians).

  Closed form (T:L949-955): log(sigma_p / sigma_t) + (sigma_t^2 + (mu_t - mu_p)^2) / (2 sigma_p^2) - 1/2.
  """
  return tfd.kl_divergence(tfd.Normal(loc=mean, scale=stddev), tfd.Normal(loc=prior_mean, scale=prior_stddev))


class HierarchicalPrior(keras.layers.Layer):
  """HPA3C's prior on the stochastic units: N(f_p(z_{t-1}), sigma_p^2), f_p a linear map (T:L942-955).

  `layer(z_prev)` gives the prior mean mu^p_t = z_{t-1} W_p + b_p; `kl(mean, stddev, prior_mean)` the KL of the
  units' distribution N(mu_t, sigma_t^2) to the prior, summed over units ([B]). sigma_p^2 = exp(`prior_log_var`) is
  fixed (the per-game log sigma^2 of SA3C, T:L1724-1727). Both parts stay: the learned mean prior and the fixed
  variance prior.
  """

  def __init__(self, units: int, prior_log_var: float = -6.0, kernel_initializer='glorot_uniform', **kwargs):
    super().__init__(**kwargs)
    self.units = int(units)
    self.prior_log_var = float(prior_log_var)
    if not math.isfinite(self.prior_log_var):
      raise ValueError(f'prior_log_var must be finite, got {prior_log_var}')
    self.kernel_initializer = keras.initializers.get(kernel_initializer)

  @property
  def prior_stddev(self) -> float:
    return math.exp(0.5 * self.prior_log_var)

  def build(self, input_shape):
    p = int(input_shape[-1])
    self.kernel = self.add_weight(shape=(p, self.units), name='kernel', initializer=self.kernel_initializer)
    self.bias = self.add_weight(shape=(self.units,), name='bias', initializer='zeros')

  def call(self, z_prev):
    return ops.matmul(z_prev, self.kernel) + self.bias

  def kl(self, mean, stddev, prior_mean):
    """Sum over units of KL[N(mean, stddev^2) || N(prior_mean, sigma_p^2)]: [B]."""
    return ops.sum(gaussian_kl(mean, stddev, prior_mean, self.prior_stddev), axis=-1)

  def get_config(self):
    return dict(super().get_config(), units=self.units, prior_log_var=self.prior_log_var,
                kernel_initializer=keras.initializers.serialize(self.kernel_initializer))


# ---------------------------------------------------------------------------------------------------- NoisyNet


def factorised_noise_transform(eps):
  """f(x) = sign(x) sqrt(|x|), applied to NoisyNet's factorised noise (Fortunato et al. 2017, Eq. 11)."""
  return ops.sign(eps) * ops.sqrt(ops.abs(eps))


class NoisyDense(keras.layers.Layer):
  """Factorised Gaussian NoisyNet layer with noise per batch row.

  Weights W = mu_w + sigma_w * (f(eps_in) f(eps_out)^T), bias b = mu_b + sigma_b * f(eps_out), f(x) = sign(x)
  sqrt|x|; init mu ~ U[-1/sqrt(p), 1/sqrt(p)], sigma = sigma0 / sqrt(p) (p = input width). Row b of the batch uses
  its own eps_in[b] ([B, p]) and eps_out[b] ([B, q]), computed without per-row weight matrices:
      y = x mu_w + mu_b + f(eps_out) * ((x * f(eps_in)) sigma_w + sigma_b).
  A [p] / [q] noise (no batch axis) is shared by every row. 'map' mode uses the mean weights (evaluation,
  T:L1154-1156). Call: `layer(x, noise=(eps_in, eps_out), mode='sample')`; noise drawn per row when None.
  """

  def __init__(self, units: int, sigma0: float = 0.5, **kwargs):
    super().__init__(**kwargs)
    self.units = int(units)
    self.sigma0 = float(sigma0)

  def build(self, input_shape):
    p = int(input_shape[-1])
    self.input_dim = p
    bound = 1.0 / math.sqrt(p)
    sigma = keras.initializers.Constant(self.sigma0 / math.sqrt(p))
    uniform = keras.initializers.RandomUniform(-bound, bound)
    self.kernel_mean = self.add_weight(shape=(p, self.units), name='kernel_mean', initializer=uniform)
    self.kernel_stddev = self.add_weight(shape=(p, self.units), name='kernel_stddev', initializer=sigma)
    self.bias_mean = self.add_weight(shape=(self.units,), name='bias_mean', initializer=uniform)
    self.bias_stddev = self.add_weight(shape=(self.units,), name='bias_stddev', initializer=sigma)

  def noise_shapes(self, input_dim: int) -> Tuple[Tuple[int], Tuple[int]]:
    """Per-row shapes of (eps_in, eps_out)."""
    return (int(input_dim),), (self.units,)

  def call(self, x, noise=None, mode: str = 'sample'):
    mean = ops.matmul(x, self.kernel_mean) + self.bias_mean
    if check_mode(mode) == 'map':
      return mean
    if noise is None:
      batch = tf.shape(x)[0]
      noise = (tf.random.normal((batch, self.input_dim), dtype=x.dtype),
               tf.random.normal((batch, self.units), dtype=x.dtype))
    eps_in, eps_out = (ops.cast(n, x.dtype) for n in noise)
    f_in, f_out = factorised_noise_transform(eps_in), factorised_noise_transform(eps_out)
    return mean + f_out * (ops.matmul(x * f_in, self.kernel_stddev) + self.bias_stddev)

  def compute_output_shape(self, input_shape):
    return tuple(input_shape[:-1]) + (self.units,)

  def get_config(self):
    return dict(super().get_config(), units=self.units, sigma0=self.sigma0)


def normalized_columns_initializer(std: float = 1.0):
  """Kernel init of the A3C-LSTM code base the thesis builds on: N(0, 1) columns rescaled to norm `std`."""
  return _NormalizedColumns(std)


class _NormalizedColumns(keras.initializers.Initializer):

  def __init__(self, std: float = 1.0, seed=None):
    self.std = float(std)
    self.seed = seed

  def __call__(self, shape, dtype=None):
    w = keras.random.normal(shape, dtype=dtype or 'float32', seed=self.seed)
    return w * self.std / ops.sqrt(ops.sum(ops.square(w), axis=0, keepdims=True))

  def get_config(self):
    return {'std': self.std, 'seed': self.seed}


def concat(parts: Sequence):
  return parts[0] if len(parts) == 1 else ops.concatenate(list(parts), axis=-1)
