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

Seed 003 (the GAN lecture; issue 15 §2, spec seeds003_004 §2.1-2.5), below the Chapter 5/6 pieces:
* `minimax_discriminator_loss`, `saturating_generator_loss` (the slide's minimax G loss) beside the non-saturating
  `generator_loss` (the default), `generator_loss_fn(kind)`, `optimal_discriminator` (D* = p / (p + q)).
* Conditional GAN: `conditional_discriminator_loss` with the mismatched-pair term (weights `CGAN_WEIGHTS`: thesis
  1, 1; StackGAN 0.5, 0.5), `derangement` / `mismatch_pairs` (wrong-condition pairs, masked where the conditions
  coincide).
* WGAN: `wgan_critic_loss`, `wgan_generator_loss`, `clip_weights`, `gradient_penalty` (WGAN-GP [orig]), `emd_1d`.
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


# ==================================================================================== seed 003: the GAN family
# The lecture's GAN, cGAN and WGAN objectives on logits / critic scores (issue 15 §2; spec seeds003_004 §2.1-2.2,
# §2.5; errata §8.1-8.3). All losses are to be MINIMISED and averaged over the batch.


def minimax_discriminator_loss(real_logits, fake_logits):
  """L_D = mean softplus(-l_r) + mean softplus(l_f) = -(mean log D(x) + mean log(1 - D(G(z)))).

  The negated bracket of the slide's D ascent step [S3:L113-115]; on logits, so it stays finite for |l| = 100.
  Unlike `discriminator_loss` on a mixed batch, the real and fake means are taken separately (the slide's form; the
  two agree when the batches have equal sizes, up to a factor 2).
  """
  real_logits = tf.convert_to_tensor(real_logits, tf.float32)
  fake_logits = tf.convert_to_tensor(fake_logits, tf.float32)
  return tf.reduce_mean(tf.nn.softplus(-real_logits)) + tf.reduce_mean(tf.nn.softplus(fake_logits))


def saturating_generator_loss(fake_logits):
  """The slide's minimax G loss [S3:L121-123]: mean log(1 - D(G(z))) = -mean softplus(l_f) (descended).

  Its gradient -sigmoid(l_f) / B vanishes where D confidently rejects the fakes (l_f = -10: |dL/dl| = 4.54e-5 per
  example), which is why the non-saturating `generator_loss` (gradient -(1 - sigmoid(l_f)), 0.99995 at -10;
  Goodfellow et al. 2014 Sec. 3 [orig], and the thesis' generator objective T:L4823) is the default.
  """
  fake_logits = tf.convert_to_tensor(fake_logits, tf.float32)
  return -tf.reduce_mean(tf.nn.softplus(fake_logits))


GENERATOR_LOSSES = {'non_saturating': generator_loss, 'saturating': saturating_generator_loss}


def generator_loss_fn(kind: str = 'non_saturating'):
  """The G loss of `kind`: 'non_saturating' (default, the thesis) or 'saturating' (the slide's minimax form)."""
  if kind not in GENERATOR_LOSSES:
    raise ValueError(f'generator_loss: got {kind!r}; valid values are {tuple(GENERATOR_LOSSES)}')
  return GENERATOR_LOSSES[kind]


def optimal_discriminator(p_data, p_g):
  """D*(x) = p_data(x) / (p_data(x) + p_g(x)) for a fixed G (Goodfellow et al. 2014, Prop. 1 [orig]); NumPy-like.

  Where both densities are 0 the value is 1/2 (any value is optimal there)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  p_data, p_g = np.asarray(p_data, np.float64), np.asarray(p_g, np.float64)
  total = p_data + p_g
  return np.where(total > 0, p_data / np.where(total > 0, total, 1.0), 0.5)


# ------------------------------------------------------------------------------------------------ conditional GAN

# (w_fake, w_mismatch) of the three-term conditional D loss: the thesis' attribute cGAN (T:L5757-5770, weights 1, 1)
# and StackGAN / GAN-CLS, real + (wrong + fake) / 2 [orig: StackGAN stageI/trainer.py].
CGAN_WEIGHTS = {'thesis': (1.0, 1.0), 'stackgan': (0.5, 0.5)}


def derangement(batch_size, shift: int = 1):
  """A permutation of range(B) without fixed points: roll by `shift` (1 <= shift < B), perm[i] = (i + shift) % B.

  An int32 [B] tensor; B may be a tensor. For B = 1 there is no derangement and perm = [0] (the pair is then masked
  by `mismatch_pairs`)."""
  batch_size = tf.convert_to_tensor(batch_size, tf.int32)
  return (tf.range(batch_size) + shift) % tf.maximum(batch_size, 1)


def mismatch_pairs(conditions, shift: int = 1):
  """The mismatched (wrong-condition) pairs of a cGAN batch: (perm, valid).

  Example i is shown with the condition of example perm[i] (a derangement, `derangement`); valid[i] is False where
  that condition equals its own (identical label / attribute vector), so the pair is really a matched one and must be
  left out of the mismatched term (spec §2.2). The thesis' Chapter 6 batch uses `mismatched_attributes`, which looks
  further for a differing vector; this is the plain derangement with a mask.

  Args:
    conditions: [B, ...] condition vectors (one-hot labels, attribute vectors) or [B] integer labels.
    shift: the roll.

  Returns:
    (perm int32 [B], valid bool [B]).
  """
  c = tf.convert_to_tensor(conditions)
  perm = derangement(tf.shape(c)[0], shift)
  other = tf.gather(c, perm)
  differ = tf.not_equal(c, other)
  if c.shape.rank is not None and c.shape.rank > 1:
    differ = tf.reduce_any(tf.reshape(differ, (tf.shape(c)[0], -1)), axis=1)
  return perm, differ


def _masked_mean(values, mask):
  values = tf.reshape(values, [-1])
  if mask is None:
    return tf.reduce_mean(values)
  mask = tf.cast(tf.reshape(mask, [-1]), values.dtype)
  return tf.math.divide_no_nan(tf.reduce_sum(values * mask), tf.reduce_sum(mask))


def conditional_discriminator_loss(real_logits, fake_logits, mismatch_logits=None, w_fake: float = 1.0,
                                   w_mismatch: float = 1.0, mismatch_mask=None):
  """The three-term cGAN D loss (minimised):

    mean softplus(-D(x, c)) + w_fake mean softplus(D(G(z, c), c)) + w_mismatch mean_valid softplus(D(x, c'))

  i.e. -[E log D(x, a(x)) + w_f E log(1 - D(G(z, a), a)) + w_m E_{x != x'} log(1 - D(x, a(x')))] (thesis cGAN,
  T:L5757-5765, weights 1, 1; the slide's two-term objective [S3:L180] with its parenthesis fixed, errata §8.2, when
  `mismatch_logits` is None; StackGAN (0.5, 0.5) [orig]). `mismatch_mask` (bool [B], from `mismatch_pairs`) drops
  pairs whose wrong condition equals the right one; the mismatched mean is over the valid pairs only (0 if none).
  """
  real_logits = tf.convert_to_tensor(real_logits, tf.float32)
  fake_logits = tf.convert_to_tensor(fake_logits, tf.float32)
  loss = tf.reduce_mean(tf.nn.softplus(-real_logits)) + w_fake * tf.reduce_mean(tf.nn.softplus(fake_logits))
  if mismatch_logits is not None:
    mismatch_logits = tf.convert_to_tensor(mismatch_logits, tf.float32)
    loss += w_mismatch * _masked_mean(tf.nn.softplus(mismatch_logits), mismatch_mask)
  return loss


# ------------------------------------------------------------------------------------------------ Wasserstein GAN


def wgan_critic_loss(real_scores, fake_scores):
  """-(mean f_w(x) - mean f_w(g_theta(z))): the negated critic objective of the slides' line 5 [S3:L487-505].

  The critic is unbounded (no sigmoid); minimising this is the slide's ascent `w <- w + alpha RMSProp(w, g_w)`."""
  real_scores = tf.convert_to_tensor(real_scores, tf.float32)
  fake_scores = tf.convert_to_tensor(fake_scores, tf.float32)
  return tf.reduce_mean(fake_scores) - tf.reduce_mean(real_scores)


def wgan_generator_loss(fake_scores):
  """-mean f_w(g_theta(z)) (line 10; its gradient is -E[grad_theta f_w(g_theta(z))], the ∇ the slide's S3:L461
  formula lacks, errata §8.3)."""
  return -tf.reduce_mean(tf.convert_to_tensor(fake_scores, tf.float32))


def clip_weights(variables, clip: float):
  """w <- clip(w, -c, c) for every variable (line 7, after each critic step; Arjovsky et al. c = 0.01 [orig]).

  Clipping makes the critic K-Lipschitz for some K, so it estimates W up to a constant (the slide's `< 1` is the
  paper's `<= 1`, errata §8.3). Returns the list of assign ops (eager: already applied)."""
  if clip <= 0:
    raise ValueError(f'clip: got {clip}; valid values are > 0')
  return [v.assign(tf.clip_by_value(v, -clip, clip)) for v in variables]


def gradient_penalty(critic_fn, real, fake, weight: float = 10.0, epsilon=None, seed=None):
  """WGAN-GP's penalty lambda * E[(||grad_x f(x_hat)||_2 - 1)^2], x_hat = eps x + (1 - eps) x~, eps ~ U[0, 1] per
  example (Gulrajani et al. 2017, Alg. 1 [orig]; not on the slides). Norms are over all non-batch axes.

  Args:
    critic_fn: x -> scores [B] or [B, 1].
    real, fake: [B, ...] batches (fake gradient-stopped by the caller, or not: only x_hat is differentiated).
    weight: lambda (10 in the paper).
    epsilon: optional [B] interpolation weights (tests); else drawn (stateless when `seed` is given).

  Returns:
    the scalar penalty.
  """
  real = tf.convert_to_tensor(real, tf.float32)
  fake = tf.convert_to_tensor(fake, tf.float32)
  batch = tf.shape(real)[0]
  if epsilon is None:
    epsilon = (tf.random.stateless_uniform([batch], seed) if seed is not None else tf.random.uniform([batch]))
  epsilon = tf.reshape(tf.cast(epsilon, tf.float32), tf.concat([[batch], tf.ones([tf.rank(real) - 1], tf.int32)], 0))
  x_hat = epsilon * real + (1.0 - epsilon) * fake
  with tf.GradientTape() as tape:
    tape.watch(x_hat)
    scores = tf.reduce_sum(critic_fn(x_hat))
  grads = tf.reshape(tape.gradient(scores, x_hat), (batch, -1))
  norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=1) + 1e-12)
  return weight * tf.reduce_mean(tf.square(norms - 1.0))


def emd_1d(x, y):
  """W1 between two equal-size 1-D samples: mean |sort(x) - sort(y)| (exact for empirical measures; spec §2.5)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  x, y = np.sort(np.ravel(np.asarray(x, np.float64))), np.sort(np.ravel(np.asarray(y, np.float64)))
  if x.shape != y.shape:
    raise ValueError(f'emd_1d: equal-size samples needed, got {x.size} and {y.size}')
  return float(np.mean(np.abs(x - y)))
