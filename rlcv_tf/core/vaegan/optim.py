"""Grouped optimisation of the VAE-GAN family: one Adam per parameter group, gradient routes and the D gate.

Thesis App. 5.D (T:L5339-5399) and Sec. 6.4 (the same optimiser for Chapter 6); spec ch5 §A3.2. A training step is a
model-specific loss builder (the loss terms under a gradient tape and `Route`s saying which loss trains which
parameter group, and which routes the D gate controls) plus the generic pieces here: `ParamGroup`s (per-group Adam
settings, LR multiplier, element-wise clipping, per-call LR with the D warm-up) collected in a `GroupedAdam`, and an
`UpdateApplier` that applies the routed gradients with the gate (when D's accuracy exceeds the threshold the gated
routes are dropped: no apply_gradients, Adam moments and iterations untouched). `GroupedTrainer` is what every
trainer over a GroupedAdam shares (checkpoint objects, learning-rate decay, the compiled step call).
"""

import collections
import dataclasses
from typing import Dict, Mapping, NamedTuple, Sequence, Tuple

import keras
import tensorflow as tf

from rlcv_tf.core import gan
from rlcv_tf.core.vaegan.config import CrVAEConfig

LSTM_GROUPS = ('lstm_inf', 'lstm_gen')


# ------------------------------------------------------------------------------------ the update applier
@dataclasses.dataclass(frozen=True)
class ParamGroup:
  """One optimiser group: its variables and its own Adam settings.

  Attributes:
    name: the group's name (checkpoint key `optimizer_<name>` in the trainers).
    variables: the variables it updates.
    lr_multiplier: its learning rate is base LR x this.
    beta_1, beta_2, epsilon: its Adam settings.
    clip: element-wise gradient clipping to [-clip, clip]; 0 disables.
    per_call_lr: its learning rate is computed and set at every apply (base x multiplier x the warm-up when
      `warmup`), so `set_learning_rate` leaves it alone (Chapter 5's D head).
    warmup: multiply the learning rate by `gan.warmup_multiplier(calls)` (the D warm-up; needs per_call_lr).
  """
  name: str
  variables: Tuple
  lr_multiplier: float = 1.0
  beta_1: float = 0.9
  beta_2: float = 0.999
  epsilon: float = 1e-8
  clip: float = 0.0
  per_call_lr: bool = False
  warmup: bool = False

  def __post_init__(self):
    object.__setattr__(self, 'variables', tuple(self.variables))
    if self.warmup and not self.per_call_lr:
      raise ValueError(f'group {self.name}: warmup needs per_call_lr=True (the rate changes from call to call)')


class GroupedAdam:
  """One Adam per parameter group, built up front (so gated / conditional applies never create slots).

  Attributes:
    groups: {name: variables}; specs: {name: ParamGroup}; multipliers: {name: lr multiplier};
    optimizers: {name: keras Adam}; base_learning_rate: a tf.Variable (the step-decayed base LR).
  """

  def __init__(self, groups: Sequence[ParamGroup], learning_rate: float):
    self.specs = collections.OrderedDict((g.name, g) for g in groups)
    if len(self.specs) != len(groups):
      raise ValueError(f'parameter group names must be distinct, got {[g.name for g in groups]}')
    self.groups = {name: list(g.variables) for name, g in self.specs.items()}
    self.multipliers = {name: float(g.lr_multiplier) for name, g in self.specs.items()}
    self.base_learning_rate = tf.Variable(float(learning_rate), trainable=False, dtype=tf.float32,
                                          name='base_learning_rate')
    self.optimizers = {}
    for name, g in self.specs.items():
      optimizer = keras.optimizers.Adam(learning_rate=float(learning_rate) * self.multipliers[name],
                                        beta_1=g.beta_1, beta_2=g.beta_2, epsilon=g.epsilon)
      optimizer.build(self.groups[name])
      self.optimizers[name] = optimizer

  def clip(self, name, grads):
    clip = float(self.specs[name].clip)
    if clip > 0:
      return [None if g is None else tf.clip_by_value(g, -clip, clip) for g in grads]
    return list(grads)

  def apply(self, name, grads):
    self.optimizers[name].apply_gradients(zip(self.clip(name, grads), self.groups[name]))

  def learning_rate_at(self, name, call_index):
    """The learning rate a per-call group uses at (0-based) warm-up call `call_index`."""
    lr = self.base_learning_rate * self.multipliers.get(name, 1.0)
    spec = self.specs.get(name)
    if spec is not None and spec.warmup:
      lr = lr * gan.warmup_multiplier(call_index)
    return lr

  def set_learning_rate(self, learning_rate, skip=()):
    """Sets the base LR (step decay); each group keeps its multiplier; per-call groups pick it up at their apply."""
    self.base_learning_rate.assign(float(learning_rate))
    for name, optimizer in self.optimizers.items():
      if name not in skip and not self.specs[name].per_call_lr:
        optimizer.learning_rate = float(learning_rate) * self.multipliers[name]


def grouped_adam(config: CrVAEConfig, groups: Dict[str, list], multipliers: Dict[str, float],
                         per_call=(), warmup=()) -> GroupedAdam:
  """GroupedAdam from a CrVAEConfig: its Adam settings for every group, `grad_clip` on the LSTM groups."""
  return GroupedAdam([ParamGroup(name, variables, lr_multiplier=multipliers[name], beta_1=config.adam_beta1,
                                 beta_2=config.adam_beta2, epsilon=config.adam_epsilon,
                                 clip=float(config.grad_clip) if name in LSTM_GROUPS else 0.0,
                                 per_call_lr=name in per_call, warmup=name in warmup)
                      for name, variables in groups.items()], config.learning_rate)


class Route(NamedTuple):
  """The gradient of loss `loss` goes to parameter group `group`; `gated` ones only when the D gate is open."""
  loss: str
  group: str
  gated: bool = False


def _add(a, b):
  if a is None:
    return b
  if b is None:
    return a
  return a + b


class UpdateApplier:
  """Applies routed gradients to a GroupedAdam: the D gate and the D warm-up counter live here.

  For each group, its gradient contributions (from `Route`s) are summed in the order given:
    * only ungated contributions: applied;
    * only gated ones: applied when gate accuracy <= threshold, otherwise skipped entirely (`gan.gated_apply`: no
      variable, Adam moment or iteration changes);
    * both: always applied, the gated parts zeroed while the gate is closed (Chapter 5's F with an MI head).
  `calls` counts the applies that had gated contributions (the D calls, gated or not): the warm-up index.
  """

  def __init__(self, optimisation: GroupedAdam, gate_threshold: float = 0.9):
    self.opt = optimisation
    self.gate_threshold = float(gate_threshold)
    self.calls = tf.Variable(0, dtype=tf.int64, trainable=False, name='d_calls')

  def apply(self, contributions: Mapping[str, Sequence[Tuple[Sequence, bool]]], gate_accuracy=None):
    """Applies {group: [(grads, gated), ...]}; returns dict(applied={group: bool}, learning_rate={group: lr},
    call_index, gate_open)."""
    call_index = self.calls.read_value()
    has_gated = any(gated for parts in contributions.values() for _, gated in parts)
    if has_gated and gate_accuracy is None:
      raise ValueError('gated gradients need the gate accuracy')
    gate_open = None
    if gate_accuracy is not None:
      gate_accuracy = tf.convert_to_tensor(gate_accuracy, tf.float32)
      gate_open = gate_accuracy <= self.gate_threshold
    applied, rates = {}, {}
    for name, parts in contributions.items():
      if not parts:
        continue
      spec = self.opt.specs[name]
      lr = None
      if spec.per_call_lr:
        lr = self.opt.learning_rate_at(name, call_index)
        rates[name] = lr
      if all(gated for _, gated in parts):
        grads = None
        for part, _ in parts:
          grads = list(part) if grads is None else [_add(a, b) for a, b in zip(grads, part)]
        applied[name] = gan.gated_apply(self.opt.optimizers[name], self.opt.clip(name, grads), self.opt.groups[name],
                                        gate_accuracy, self.gate_threshold, learning_rate=lr)
        continue
      grads = None
      for part, gated in parts:
        if gated:
          part = [None if g is None else tf.where(gate_open, g, tf.zeros_like(g)) for g in part]
        grads = list(part) if grads is None else [_add(a, b) for a, b in zip(grads, part)]
      if lr is not None:
        self.opt.optimizers[name].learning_rate = lr
      self.opt.apply(name, grads)
      applied[name] = tf.constant(True)
    if has_gated:
      self.calls.assign_add(1)
    return dict(applied=applied, learning_rate=rates, call_index=call_index, gate_open=gate_open)


def route_gradients(tape, loss_values: Mapping[str, tf.Tensor], routes: Sequence[Route], groups: Mapping[str, list],
                    contributions: Dict[str, list]) -> None:
  """Adds d loss / d group for every route whose loss is in `loss_values` to `contributions[group]` (one
  `tape.gradient` call per loss)."""
  by_loss = collections.OrderedDict()
  for route in routes:
    if route.loss in loss_values:
      by_loss.setdefault(route.loss, []).append(route)
  for loss, loss_routes in by_loss.items():
    grads = tape.gradient(loss_values[loss], [groups[r.group] for r in loss_routes])
    for route, group_grads in zip(loss_routes, grads):
      contributions.setdefault(route.group, []).append((group_grads, route.gated))


def batch_norm_moving_statistics(parts) -> list:
  """The moving means and variances of every BatchNormalization inside `parts` (layers; None entries skipped)."""
  found = []
  for part in parts:
    if part is None:
      continue
    for layer in part._flatten_layers(include_self=True):  # pylint: disable=protected-access
      if isinstance(layer, keras.layers.BatchNormalization):
        found += [layer.moving_mean, layer.moving_variance]
  return found


def keeping_moving_statistics(statistics: Sequence, fn):
  """fn()'s result, with the variables `statistics` (e.g. `batch_norm_moving_statistics`) put back afterwards to
  the values they had before fn ran: a training-mode pass that normalises with its own batch statistics but leaves
  the moving statistics to another pass (the prior-sample pass of Chapters 5 and 6)."""
  saved = [tf.identity(v) for v in statistics]
  out = fn()
  with tf.control_dependencies([t for t in tf.nest.flatten(out) if t is not None]):
    for v, value in zip(statistics, saved):
      v.assign(value)
  return out


class GroupedTrainer:
  """What every trainer over a `GroupedAdam` shares. Subclasses set `vae`, `step` (int64 variable), `opt`
  (GroupedAdam) and `_compiled_step`, and optionally `disc` and `d_calls` (the D-call counter of the warm-up)."""

  disc = None
  d_calls = None

  @property
  def optimizers(self) -> Dict[str, keras.optimizers.Optimizer]:
    return self.opt.optimizers

  def train_step(self, *inputs) -> Dict[str, tf.Tensor]:
    """One compiled step on float32 inputs (images, and attributes for the conditional models)."""
    return self._compiled_step(*(tf.convert_to_tensor(x, tf.float32) for x in inputs))

  def set_learning_rate(self, learning_rate: float):
    """Sets the base LR (step decay); every group keeps its multiplier, the D head also its warm-up."""
    self.opt.set_learning_rate(learning_rate)

  def checkpoint_objects(self) -> Dict[str, object]:
    """The trackables of a training checkpoint, under names that stay stable across versions."""
    objects = dict(vae=self.vae, step=self.step)
    if self.d_calls is not None:
      objects['d_calls'] = self.d_calls
    objects['base_learning_rate'] = self.opt.base_learning_rate
    if self.disc is not None:
      objects['discriminator'] = self.disc
    objects.update({f'optimizer_{name}': optimizer for name, optimizer in self.optimizers.items()})
    return objects
