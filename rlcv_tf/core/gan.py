"""Shared GAN maths: BCE losses, the thesis discriminator minibatch, D accuracy, warm-up and the accuracy gate.

Used by Chapter 5 (crVAE-GAN, thesis Sec. 5.3-5.4; spec ch5 A3.1-A3.2), Chapter 6 and the GAN seed lecture.

* Losses are binary cross-entropies from logits averaged over the batch (spec §0). The generator uses the
  non-saturating form BCE(D(G(z)), 1) everywhere (spec §8-A26).
* D minibatch (T:L5383-5386, R5): with 1-based position i, i % 4 == 0 takes the reconstruction, i % 4 == 3 the prior
  sample and every other position the real image: half real, a quarter reconstructions, a quarter prior samples.
  The mix is data (`MinibatchMix`: named sources, their labels, and a periodic pattern of sources over positions);
  `THESIS_MIX` is this 2:1:1 instance and `mix_pattern` / `mix_batch` are its shorthands. `MinibatchMix.mix` also
  returns each position's source index, so a caller can gather per-position conditions (`MinibatchMix.gather`).
* Conditional D minibatch (Chapter 6: the cGAN game T:L5765-5771, Eq. 6.1 T:L5800-5810, T:L5996-5999; spec ch5_6
  Part B3, §8-A6): D sees (image, attribute vector) pairs of three kinds: real pairs (x_i, a_i) labelled 1,
  mismatched pairs (x_i, a(x')) labelled 0, where a(x') is the vector of another example of the batch that differs
  from a_i (`mismatched_attributes`), and generated pairs (x~_i, a_i) labelled 0 (reconstructions and prior samples,
  both decoded with a_i). `COND_THIRDS_MIX` is the thesis' "a third real, a third fake, a third mismatched" (period 6,
  the fake third alternating reconstruction and prior sample), `COND_QUARTERS_MIX` R6's quarters (period 4);
  `conditional_mix_batch` builds the images, conditions and labels of either.
* D gate (T:L5339-5343): when D's accuracy on the mixed batch exceeds 0.9 the D update is skipped entirely: no
  variable and no optimizer slot changes, and `optimizer.iterations` does not advance.
* D warm-up (R5 `adam_gan.lua`; not in the thesis, spec §8-A24): the D learning rate is LR/50 for its first 10
  optimiser calls and LR/5 for calls 10-29; the call counter advances even when the gate skips the step, so it is a
  separate counter, not `optimizer.iterations`.

Labels are float32 vectors [B]; the loss and accuracy functions reshape them to the logits' shape ([B] or [B, 1]),
so a [B] label vector never broadcasts against [B, 1] logits into a [B, B] matrix.
"""

import dataclasses
from typing import Mapping, Tuple

import tensorflow as tf

# Warm-up schedule of R5 adam_gan.lua: (first call index at which the multiplier applies, multiplier).
WARMUP_STAGES = ((0, 1.0 / 50.0), (10, 1.0 / 5.0), (30, 1.0))


def _labels_like(labels, logits):
  labels = tf.cast(tf.convert_to_tensor(labels), logits.dtype)
  return tf.reshape(labels, tf.shape(logits))


def discriminator_loss(logits, labels):
  """Mean binary cross-entropy between sigmoid(logits) and labels (1 real, 0 fake); a scalar."""
  logits = tf.convert_to_tensor(logits, tf.float32)
  labels = _labels_like(labels, logits)
  return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


def generator_loss(fake_logits):
  """Non-saturating generator loss BCE(D(G(z)), 1) = mean softplus(-logits); a scalar."""
  fake_logits = tf.convert_to_tensor(fake_logits, tf.float32)
  return discriminator_loss(fake_logits, tf.ones_like(fake_logits))


@dataclasses.dataclass(frozen=True)
class MinibatchMix:
  """A discriminator minibatch built from equally sized source batches, position by position.

  0-based position j takes example j of source `pattern[j % len(pattern)]` and gets that source's label, so a batch
  size must be a multiple of the pattern's length. Sources are named; `mix` takes one batch per source name.

  Attributes:
    sources: source names, e.g. ('real', 'prior', 'recon'); the source index is the position in this tuple.
    labels: the D target of each source (1 real, 0 fake), aligned with `sources`.
    pattern: the source index of each position in one period, e.g. (0, 0, 1, 2).
  """
  sources: Tuple[str, ...]
  labels: Tuple[float, ...]
  pattern: Tuple[int, ...]

  def __post_init__(self):
    object.__setattr__(self, 'sources', tuple(str(s) for s in self.sources))
    object.__setattr__(self, 'labels', tuple(float(v) for v in self.labels))
    object.__setattr__(self, 'pattern', tuple(int(i) for i in self.pattern))
    if not self.sources or len(set(self.sources)) != len(self.sources):
      raise ValueError(f'MinibatchMix: sources must be distinct names, got {self.sources}')
    if len(self.labels) != len(self.sources):
      raise ValueError(f'MinibatchMix: {len(self.labels)} labels for {len(self.sources)} sources')
    if any(not 0.0 <= v <= 1.0 for v in self.labels):
      raise ValueError(f'MinibatchMix: labels must lie in [0, 1], got {self.labels}')
    if not self.pattern or any(not 0 <= i < len(self.sources) for i in self.pattern):
      raise ValueError(f'MinibatchMix: pattern entries must index sources 0..{len(self.sources) - 1}, '
                       f'got {self.pattern}')

  @property
  def period(self) -> int:
    return len(self.pattern)

  def index(self, name: str) -> int:
    """The source index of `name`."""
    if name not in self.sources:
      raise ValueError(f'MinibatchMix: unknown source {name!r}; valid values are {self.sources}')
    return self.sources.index(name)

  def check_batch_size(self, batch_size: int) -> None:
    """Raises ValueError unless `batch_size` is a positive multiple of the period."""
    if batch_size < 1 or batch_size % self.period:
      raise ValueError(f'the D minibatch needs a batch size divisible by {self.period} ({self.describe()}), '
                       f'got {batch_size}')

  def describe(self) -> str:
    counts = {name: self.pattern.count(i) for i, name in enumerate(self.sources)}
    return ' : '.join(f'{n} {name}' for name, n in counts.items() if n) + f' per {self.period}'

  def source_index(self, batch_size):
    """Source index of every position: an int32 [B] tensor (B may be a tensor)."""
    return tf.gather(tf.constant(self.pattern, tf.int32), tf.range(batch_size) % self.period)

  def labels_for(self, source_index):
    """The D target of every position, float32, from `source_index`."""
    return tf.gather(tf.constant(self.labels, tf.float32), source_index)

  def gather(self, source_index, per_source: Mapping[str, tf.Tensor]):
    """out[j] = per_source[sources[source_index[j]]][j]: one value per position, taken from its source's batch.

    Every source named in `source_index` must be in `per_source`; the same function mixes images and conditions
    (e.g. attribute vectors, where a mismatched pair takes another example's image but its own vector).
    """
    missing = [name for name in self.sources if name not in per_source]
    unknown = sorted(set(per_source) - set(self.sources))
    if unknown:
      raise ValueError(f'MinibatchMix: unknown sources {unknown}; valid values are {self.sources}')
    if missing:
      raise ValueError(f'MinibatchMix: missing batches for sources {missing}')
    tensors = [tf.convert_to_tensor(per_source[name]) for name in self.sources]
    first = tensors[0]
    tensors = [tf.cast(t, first.dtype) for t in tensors]
    for name, t in zip(self.sources, tensors):
      if not first.shape.is_compatible_with(t.shape):
        raise ValueError(f'MinibatchMix: every source must have the same shape; {self.sources[0]} is {first.shape}, '
                         f'{name} is {t.shape}')
    stacked = tf.stack(tensors, axis=0)                                    # [S, B, ...]
    source_index = tf.convert_to_tensor(source_index, tf.int32)
    positions = tf.range(tf.shape(source_index)[0], dtype=tf.int32)
    return tf.gather_nd(stacked, tf.stack([source_index, positions], axis=1))

  def mix(self, per_source: Mapping[str, tf.Tensor]):
    """The D minibatch from one batch per source.

    Returns:
      (x_mix [B, ...], labels float32 [B], source_index int32 [B]).

    Raises:
      ValueError: if the (static) batch size is not a multiple of the period or the batches differ in shape. With
        a dynamic batch size the same checks run as graph assertions.
    """
    missing = [name for name in self.sources if name not in per_source]
    if missing:
      raise ValueError(f'MinibatchMix: missing batches for sources {missing}')
    shapes = {name: tf.convert_to_tensor(per_source[name]).shape for name in self.sources}
    first = tf.convert_to_tensor(per_source[self.sources[0]])
    if not all(first.shape.is_compatible_with(shape) for shape in shapes.values()):
      raise ValueError(f'MinibatchMix: the source batches must have the same shape, got '
                       f'{", ".join(f"{name} {shape}" for name, shape in shapes.items())}')
    static_batch = first.shape[0]
    if static_batch is not None:
      self.check_batch_size(int(static_batch))
    batch = tf.shape(first)[0]
    checks = []
    if static_batch is None:
      checks.append(tf.debugging.assert_equal(batch % self.period, 0,
                                              message=f'mix: batch size must be divisible by {self.period}'))
    with tf.control_dependencies(checks):
      source = self.source_index(batch)
    return self.gather(source, per_source), self.labels_for(source), source


# The thesis' 2:1:1 minibatch (R5): positions [real, real, prior, recon] repeated.
THESIS_MIX = MinibatchMix(sources=('real', 'prior', 'recon'), labels=(1.0, 0.0, 0.0), pattern=(0, 0, 1, 2))


def mix_pattern(batch_size: int):
  """Source of each position of the D minibatch: 0 real, 1 prior sample, 2 reconstruction; an int32 [B] tensor.

  0-based position j is 1-based i = j + 1, so j % 4 in {0, 1} -> real, j % 4 == 2 -> prior, j % 4 == 3 -> recon.
  (`THESIS_MIX.source_index`.)
  """
  return THESIS_MIX.source_index(batch_size)


def mix_batch(real, recon, prior):
  """The thesis D minibatch from equally sized batches of real images, reconstructions and prior samples.

  Args:
    real: x, [B, ...].
    recon: x~_q (decoded posterior samples), [B, ...]; callers pass it gradient-stopped.
    prior: x~_p (decoded prior samples), [B, ...].

  Returns:
    (x_mix [B, ...], labels float32 [B]). For B = 8 the positions are
    [real, real, prior, recon, real, real, prior, recon] and the labels [1, 1, 0, 0, 1, 1, 0, 0].
    (`THESIS_MIX.mix`, which also returns the source index.)

  Raises:
    ValueError: if the (static) batch size is not a multiple of 4 or the three batches differ in shape. With a
      dynamic batch size the same checks run as graph assertions.
  """
  real = tf.convert_to_tensor(real)
  recon = tf.convert_to_tensor(recon, real.dtype)
  prior = tf.convert_to_tensor(prior, real.dtype)
  if not (real.shape.is_compatible_with(recon.shape) and real.shape.is_compatible_with(prior.shape)):
    raise ValueError(f'real {real.shape}, recon {recon.shape} and prior {prior.shape} must have the same shape')
  x_mix, labels, _ = THESIS_MIX.mix({'real': real, 'prior': prior, 'recon': recon})
  return x_mix, labels


# ----------------------------------------------------------------------------------- Chapter 6: conditional D batch

CONDITIONAL_SOURCES = ('real', 'mismatched', 'prior', 'recon')
# Thesis (T:L5997-5999): a third real pairs, a third mismatched pairs, a third generated pairs; the generated third
# alternates reconstruction and prior sample, so one period is 0-based positions
#   j % 6:   0     1           2      3     4           5
#          [real, mismatched, recon, real, mismatched, prior]        labels [1, 0, 0, 1, 0, 0]
# (the order of the two fakes within a period is our choice; D sees each kind at the same share either way).
# Batch size % 6 == 0.
COND_THIRDS_MIX = MinibatchMix(sources=CONDITIONAL_SOURCES, labels=(1.0, 0.0, 0.0, 0.0), pattern=(0, 1, 3, 0, 1, 2))
# R6 (spec Part B3): 1-based i % 4 == 1 real, 2 mismatched, 3 prior, 0 recon, i.e. 0-based positions
#   j % 4:   0     1           2      3
#          [real, mismatched, prior, recon]                           labels [1, 0, 0, 0]
COND_QUARTERS_MIX = MinibatchMix(sources=CONDITIONAL_SOURCES, labels=(1.0, 0.0, 0.0, 0.0), pattern=(0, 1, 2, 3))
CONDITIONAL_MIXES = {'thirds': COND_THIRDS_MIX, 'quarters': COND_QUARTERS_MIX}


def conditional_mix(mode: str = 'thirds') -> MinibatchMix:
  """The conditional D minibatch of `mode`: 'thirds' (the thesis, B % 6 == 0) or 'quarters' (R6, B % 4 == 0)."""
  if mode not in CONDITIONAL_MIXES:
    raise ValueError(f'd_mix: got {mode!r}; valid values are {tuple(CONDITIONAL_MIXES)} (thirds: the thesis, batch '
                     'size divisible by 6; quarters: R6, divisible by 4)')
  return CONDITIONAL_MIXES[mode]


def mismatched_attributes(attributes, seed=None):
  """For every example i of the batch, an attribute vector of another example that differs from a_i.

  Eq. 6.1's mismatched pair (x, a(x')), x != x': row i of the result is a_k for an example k of the same batch
  with a_k != a_i in at least one attribute, so (x_i, result_i) is never a real pair, even when vectors repeat.
    * seed None (deterministic): k is the first such example after i in cyclic order (i + 1, i + 2, ..., mod B),
      the roll-by-one derangement wherever the neighbour differs (spec Part B3 [P]).
    * seed (int [2], a stateless seed): k is uniform over the examples whose vector differs from a_i.
  If no example of the batch differs from a_i (every row of the batch equals a_i, e.g. B = 1), row i is a_i with
  one attribute flipped (negated): attribute i mod N without a seed, else one drawn uniformly from the seed.

  Works eagerly and in tf.function with a dynamic batch size (O(B^2 N) comparisons: 0.7M at B = 128, N = 40).

  Args:
    attributes: [B, N] attribute vectors in {-1, +1}.
    seed: None or a stateless seed, int32/int64 [2].

  Returns:
    [B, N], the dtype of `attributes`.
  """
  a = tf.convert_to_tensor(attributes)
  if not a.dtype.is_floating:
    a = tf.cast(a, tf.float32)
  if a.shape.rank != 2:
    raise ValueError(f'mismatched_attributes: attributes must be [B, N], got shape {a.shape}')
  batch, num = tf.shape(a)[0], tf.shape(a)[1]
  differ = tf.reduce_any(tf.not_equal(a[:, None, :], a[None, :, :]), axis=-1)        # [B, B]: a_k != a_i
  positions = tf.range(batch)
  if seed is None:
    # Cyclic distance from i to k (0 for k = i, which never differs); non-candidates score B.
    distance = (positions[None, :] - positions[:, None]) % tf.maximum(batch, 1)
    choice = tf.argmin(tf.where(differ, distance, batch), axis=1, output_type=tf.int32)
    flip = positions % tf.maximum(num, 1)
  else:
    seed = tf.convert_to_tensor(seed)
    pick_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    score = tf.random.stateless_uniform(tf.stack([batch, batch]), pick_seed)          # in [0, 1)
    choice = tf.argmin(tf.where(differ, score, 2.0), axis=1, output_type=tf.int32)
    flip = tf.random.stateless_uniform(tf.stack([batch]), flip_seed, minval=0, maxval=tf.maximum(num, 1),
                                       dtype=tf.int32)
  flipped = a * (1.0 - 2.0 * tf.one_hot(flip, num, dtype=a.dtype))                      # negate attribute `flip`
  has_other = tf.reduce_any(differ, axis=1)
  return tf.where(has_other[:, None], tf.gather(a, choice), flipped)


def conditional_mix_batch(real, attributes, recon, prior, mode='thirds', seed=None):
  """The conditional D minibatch (Eq. 6.1) from equally sized batches.

  Position j takes its image and condition from its source (`conditional_mix(mode)`):
    real        (x_j,   a_j)                               label 1
    mismatched  (x_j,   mismatched_attributes(a, seed)_j)  label 0 (a vector of another example, != a_j)
    recon       (x~q_j, a_j)                               label 0
    prior       (x~p_j, a_j)                               label 0
  For B = 12 in 'thirds': [real, mismatched, recon, real, mismatched, prior] twice, labels [1, 0, 0] x 4; in
  'quarters': [real, mismatched, prior, recon] three times, labels [1, 0, 0, 0] x 3.

  Args:
    real: x, [B, ...].
    attributes: a, [B, N] in {-1, +1}; the condition of x_j, and the one recon_j and prior_j were decoded with.
    recon: reconstructions x~_q [B, ...] (callers pass them gradient-stopped for the D step).
    prior: prior samples x~_p [B, ...] decoded with `attributes`.
    mode: 'thirds' | 'quarters', or a `MinibatchMix` over CONDITIONAL_SOURCES.
    seed: passed to `mismatched_attributes` (None: the deterministic choice).

  Returns:
    (images [B, ...], conditions [B, N], labels float32 [B], source_index int32 [B] into CONDITIONAL_SOURCES).

  Raises:
    ValueError: unknown mode, shapes that differ, or a (static) batch size the mix cannot split (the message says
      the divisor). With a dynamic batch size the divisibility check runs as a graph assertion.
  """
  mix = mode if isinstance(mode, MinibatchMix) else conditional_mix(mode)
  if set(mix.sources) != set(CONDITIONAL_SOURCES):
    raise ValueError(f'conditional_mix_batch: the mix must have the sources {CONDITIONAL_SOURCES}, got '
                     f'{mix.sources}')
  real = tf.convert_to_tensor(real)
  attributes = tf.convert_to_tensor(attributes)
  if not attributes.dtype.is_floating:
    attributes = tf.cast(attributes, tf.float32)
  if attributes.shape.rank != 2:
    raise ValueError(f'conditional_mix_batch: attributes must be [B, N], got shape {attributes.shape}')
  if not real.shape[:1].is_compatible_with(attributes.shape[:1]):
    raise ValueError(f'conditional_mix_batch: {real.shape[0]} images but {attributes.shape[0]} attribute vectors')
  checks = []
  if real.shape[0] is None or attributes.shape[0] is None:
    checks.append(tf.debugging.assert_equal(tf.shape(real)[0], tf.shape(attributes)[0],
                                            message='conditional_mix_batch: one attribute vector per image'))
  with tf.control_dependencies(checks):
    images, labels, source = mix.mix({'real': real, 'mismatched': real, 'recon': recon, 'prior': prior})
  mismatched = mismatched_attributes(attributes, seed)
  conditions = mix.gather(source, {'real': attributes, 'mismatched': mismatched, 'recon': attributes,
                                   'prior': attributes})
  return images, conditions, labels, source


def accuracy(logits, labels, threshold: float = 0.5):
  """Fraction of examples with (sigmoid(logits) > threshold) == label; a float32 scalar."""
  logits = tf.convert_to_tensor(logits, tf.float32)
  labels = _labels_like(labels, logits)
  predicted_real = tf.cast(tf.sigmoid(logits) > threshold, tf.float32)
  return tf.reduce_mean(tf.cast(tf.equal(predicted_real, labels), tf.float32))


def warmup_multiplier(call_index):
  """D learning-rate multiplier at optimiser call `call_index` (0-based): 1/50 for 0-9, 1/5 for 10-29, 1 after."""
  call_index = tf.convert_to_tensor(call_index)
  if not call_index.dtype.is_integer:
    call_index = tf.cast(tf.floor(tf.cast(call_index, tf.float32)), tf.int64)
  call_index = tf.cast(call_index, tf.int64)
  multiplier = tf.constant(WARMUP_STAGES[0][1], tf.float32)
  for start, value in WARMUP_STAGES[1:]:
    multiplier = tf.where(call_index >= start, tf.constant(value, tf.float32), multiplier)
  return multiplier


def _check_built_for(optimizer, variables):
  """Raise clearly unless `optimizer.build(variables)` ran: slots cannot be created inside a tf.cond branch."""
  if not getattr(optimizer, 'built', False):
    raise ValueError(f'gated_apply needs a built optimizer: call optimizer.build(variables) once, outside '
                     f'tf.function, before the first gated step ({type(optimizer).__name__} is not built)')
  index = getattr(optimizer, '_trainable_variables_indices', None)
  key_fn = getattr(optimizer, '_var_key', None)
  if index is None or key_fn is None:   # Keras internals changed; the built flag is all we can check.
    return
  missing = [v.path if hasattr(v, 'path') else v.name for v in variables if key_fn(v) not in index]
  if missing:
    raise ValueError(f'optimizer was built for other variables; these were not passed to optimizer.build(): '
                     f'{missing[:5]}{" ..." if len(missing) > 5 else ""}')


def gated_apply(optimizer, grads, variables, accuracy, threshold: float = 0.9, learning_rate=None):
  """Apply `grads` to `variables` only when the discriminator accuracy is <= threshold (the thesis D gate).

  Written for use inside `tf.function` as `tf.cond(accuracy <= threshold, apply, no-op)`. A skipped step changes no
  variable and no optimizer state (moments, `iterations`). Because an optimizer must not create its slot variables
  inside a conditional branch, call `optimizer.build(variables)` once beforehand (outside tf.function); this function
  raises ValueError otherwise.

  Args:
    optimizer: a built `keras.optimizers.Optimizer`.
    grads: gradients, aligned with `variables` (None entries are skipped by Keras).
    variables: the variables to update.
    accuracy: scalar D accuracy on the mixed batch (e.g. `accuracy(logits, labels)`).
    threshold: skip the update when accuracy > threshold.
    learning_rate: optional learning rate to set before an applied step (e.g. `base_lr * warmup_multiplier(calls)`);
      needs an optimizer built with a float (variable) learning rate, not a schedule.

  Returns:
    bool scalar tensor `applied`.
  """
  grads = list(grads)
  variables = list(variables)
  if len(grads) != len(variables):
    raise ValueError(f'{len(grads)} gradients for {len(variables)} variables')
  _check_built_for(optimizer, variables)
  if learning_rate is not None and not isinstance(optimizer._learning_rate, tf.Variable) and not hasattr(
      optimizer._learning_rate, 'assign'):
    raise ValueError('learning_rate was given but the optimizer uses a schedule; build it with a float learning rate')
  accuracy = tf.convert_to_tensor(accuracy, tf.float32)

  def apply():
    if learning_rate is not None:
      optimizer.learning_rate = learning_rate
    optimizer.apply_gradients(zip(grads, variables))
    return tf.constant(True)

  def skip():
    return tf.constant(False)

  return tf.cond(accuracy <= threshold, apply, skip)
