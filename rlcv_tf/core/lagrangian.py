"""Learned Lagrange multipliers for the weighted terms of an objective (thesis Ch. 3, Eq. 3.12 and App. 3.C.1).

The waypoint VAE minimises J = NLL + lambda_1 KL + lambda_2 L0 + lambda_3 LT over the model and "maximizes the
original objective" over the weights lambda_i, "after each update of the latent model", with learning rate 0.0005,
from lambda = (0.01, 0.06, 0.02) (App. 3.C.1, T:L2962-2965; spec Sec. 4.1). Here:

  mode='ascent' (default; spec A4):  one Adam step on -J with respect to lambda, i.e. d(-J)/d lambda_i = -term_i,
                                     then the projection lambda_i <- max(lambda_i, 0). Terms >= 0 make lambda rise
                                     until the terms stop changing; it never falls.
  mode='constraint' (spec A4, [P]):  J's lambda part is sum_i lambda_i (term_i - eps_i) (minimise the NLL subject to
                                     term_i <= eps_i), so the gradient is -(term_i - eps_i) and lambda can fall,
                                     projected at 0 as well.

The multipliers have their own Adam (lr 5e-4, beta_1 0.9, beta_2 0.999, eps 1e-3: the model's settings, spec
Sec. 4.1). Keras' Adam is Kingma & Ba's Algorithm 1 in the form of their Sec. 2 (lr_t = lr sqrt(1 - beta_2^t) /
(1 - beta_1^t), update lr_t m_t / (sqrt(v_t) + eps)). The module is a tf.Module: `tf.train.Checkpoint(x=multipliers)`
saves the multipliers and the optimizer's state (its slots are built in the constructor), and `update` runs
inside tf.function.
"""

from typing import Mapping, Optional, Sequence, Union

import keras
import numpy as np
import tensorflow as tf

TERM_NAMES = ('kl', 'l0', 'lt')
INITIAL = (0.01, 0.06, 0.02)                 # App. 3.C.1: KL, L0, LT
LEARNING_RATE = 5e-4                         # App. 3.C.1
BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-3   # App. 3.C.1 (the model's Adam; spec Sec. 4.1)
# mode='constraint' tolerances [P]: KL <= 1 nat per sequence, (E||z||_0 - mu0)^2 <= 1 (one gate off the target),
# (E[#switches] - 2 mu0)^2 <= 4 (two switches off, switches come in pairs).
DEFAULT_TOLERANCES = (1.0, 1.0, 4.0)
MODES = ('ascent', 'constraint')

Terms = Union[Sequence, Mapping[str, object], tf.Tensor, np.ndarray]


class LagrangeMultipliers(tf.Module):
  """Non-negative weights lambda_i of named objective terms, updated by projected Adam ascent of J (Eq. 3.12)."""

  def __init__(self,
               initial: Sequence[float] = INITIAL,
               names: Sequence[str] = TERM_NAMES,
               learning_rate: float = LEARNING_RATE,
               beta_1: float = BETA_1,
               beta_2: float = BETA_2,
               epsilon: float = EPSILON,
               mode: str = 'ascent',
               tolerances: Optional[Sequence[float]] = None,
               name: str = 'lagrange_multipliers'):
    """Creates the multipliers and their optimizer.

    Args:
      initial: lambda_i at the start, each >= 0 (thesis: 0.01 KL, 0.06 L0, 0.02 LT).
      names: one name per term, in the order `update` and `values` use.
      learning_rate, beta_1, beta_2, epsilon: the multipliers' own Adam.
      mode: 'ascent' (ascend J = sum_i lambda_i term_i) or 'constraint' (ascend sum_i lambda_i (term_i - eps_i)).
      tolerances: eps_i for mode='constraint' (default DEFAULT_TOLERANCES for the three default terms).
      name: module name.

    Raises:
      ValueError: a negative or mis-sized `initial`, an unknown `mode`, tolerances with mode='ascent', or missing
        or mis-sized tolerances with mode='constraint'.
    """
    super().__init__(name=name)
    names = tuple(names)
    initial = tuple(float(v) for v in initial)
    if len(set(names)) != len(names) or not names:
      raise ValueError(f'LagrangeMultipliers: names={names} must be distinct and non-empty')
    if len(initial) != len(names):
      raise ValueError(f'LagrangeMultipliers: initial has {len(initial)} values but there are {len(names)} terms '
                       f'{names}; give one initial multiplier per term')
    negative = [n for n, v in zip(names, initial) if not v >= 0.0]
    if negative:
      raise ValueError(f'LagrangeMultipliers: initial multipliers for {negative} are negative or NaN ({initial}); '
                       'Lagrange multipliers must be >= 0 (thesis: 0.01, 0.06, 0.02)')
    if mode not in MODES:
      raise ValueError(f'LagrangeMultipliers: mode={mode!r} is not one of {MODES} (spec A4)')
    if mode == 'ascent' and tolerances is not None:
      raise ValueError("LagrangeMultipliers: tolerances are used only with mode='constraint'; drop them or set "
                       "mode='constraint'")
    if mode == 'constraint':
      if tolerances is None:
        if names != TERM_NAMES:
          raise ValueError(f"LagrangeMultipliers: mode='constraint' with terms {names} needs tolerances=(...), one "
                           'per term (the defaults are for the terms kl, l0, lt)')
        tolerances = DEFAULT_TOLERANCES
      tolerances = tuple(float(v) for v in tolerances)
      if len(tolerances) != len(names):
        raise ValueError(f'LagrangeMultipliers: {len(tolerances)} tolerances for {len(names)} terms {names}; give '
                         'one per term')
    self.names = names
    self.mode = mode
    self.tolerances = tolerances
    with self.name_scope:
      self.multipliers = tf.Variable(initial, dtype=tf.float32, trainable=True, name='multipliers')
    self.optimizer = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
                                           epsilon=epsilon)
    self.optimizer.build([self.multipliers])

  def values(self) -> tf.Tensor:
    """The current lambda, float32 [len(names)] (read; no gradient reaches the variable through J)."""
    return tf.convert_to_tensor(self.multipliers)

  def as_dict(self):
    """{name: lambda_i} (scalars), for logging."""
    values = self.values()
    return {n: values[i] for i, n in enumerate(self.names)}

  def _stack(self, terms: Terms) -> tf.Tensor:
    if isinstance(terms, Mapping):
      missing = [n for n in self.names if n not in terms]
      extra = [k for k in terms if k not in self.names]
      if missing or extra:
        raise ValueError(f'LagrangeMultipliers.update: terms has keys {sorted(terms)} but the multipliers are for '
                         f'{list(self.names)} (missing {missing}, unknown {extra})')
      terms = [terms[n] for n in self.names]
    if isinstance(terms, (list, tuple)):
      values = [tf.reshape(tf.cast(t, tf.float32), []) for t in terms]
      stacked = tf.stack(values) if values else tf.zeros([0])
    else:
      stacked = tf.cast(tf.convert_to_tensor(terms), tf.float32)
    if stacked.shape.rank != 1 or stacked.shape[0] != len(self.names):
      raise ValueError(f'LagrangeMultipliers.update: got terms of shape {stacked.shape}, expected one scalar per '
                       f'term {list(self.names)}')
    return tf.stop_gradient(stacked)

  def update(self, terms: Terms) -> tf.Tensor:
    """One projected Adam ascent step of J on lambda (after the model step); returns the new lambda.

    Args:
      terms: the batch-mean values of the weighted terms, in `names` order (list, tuple or vector) or by name.
    """
    terms = self._stack(terms)
    if self.mode == 'constraint':
      terms = terms - tf.constant(self.tolerances, tf.float32)
    # Ascending J is minimising -J; d(-J)/d lambda_i = -term_i (or -(term_i - eps_i)).
    self.optimizer.apply_gradients([(-terms, self.multipliers)])
    self.multipliers.assign(tf.maximum(self.multipliers, 0.0))   # projection onto lambda >= 0
    return self.values()
