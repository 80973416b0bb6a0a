"""Chapter 5 evaluation: importance-sampled NLL, inception score with an in-house classifier, reconstruction error.

* NLL (thesis Sec. 5.4.1, Table 5.B.1, T:L5249-5258; spec A3.5): with K samples z_k ~ q(z|x),

      NLL(x) = -log (1/K) sum_k exp( log p(x|z_k) + log N(z_k; 0, I) - log q(z_k|x) )

  computed in nats per example with a streaming logsumexp over chunks of samples, so memory stays bounded for the
  thesis's K = 10,000. The estimate is an upper bound on the true NLL that tightens as K grows (Burda et al., IWAE).
* Inception score (T:L4971-4975; spec A5.4): IS = exp(E_x KL(p(y|x) || p(y))), computed per split (10 splits) and
  reported as mean and std. The thesis classifiers (ImageNet VGG11 fine-tuned on birds / CASIA faces) cannot be
  obtained here (spec §8-A15), so `build_classifier` provides a VGG11-A-shaped network at reduced width to train on
  the stand-in datasets; its scores rank models against each other and are not comparable with the thesis numbers.
* Reconstruction error: pixel MSE of the posterior-mean reconstruction (and per-pixel BCE for Bernoulli models).

The VAE interface used here: `encode(x, training=False) -> (mu, logvar)` of any latent shape, `decode_logits(z,
training=False) -> [B, R, R, C]` pre-activation, and `likelihood` in {'bernoulli', 'gaussian'}. Gaussian models end
in tanh (spec §0), so their pixel mean is tanh(decode_logits(z)).
"""

import math
import os
import warnings

import keras
import numpy as np
import tensorflow as tf

from rlcv_tf.core.vaegan import classifier as classifier_lib
from rlcv_tf.core.vaegan import losses


# ----------------------------------------------------------------------------------------- importance-sampled NLL


def _reparameterised_samples(mu, logvar, num_samples, generator):
  """K draws z = mu + exp(lv/2) eps, returned flat as [K*B, ...] (sample-major) plus eps-free shapes."""
  eps = generator.normal(tf.concat([[num_samples], tf.shape(mu)], axis=0), dtype=mu.dtype)
  z = mu[tf.newaxis] + tf.exp(0.5 * logvar)[tf.newaxis] * eps
  return tf.reshape(z, tf.concat([[-1], tf.shape(mu)[1:]], axis=0))


def importance_sampled_nll(encode_fn, log_likelihood_fn, x, num_samples: int, batch_size: int = 100,
                           samples_per_chunk: int = 100, seed: int = 0, use_tf_function: bool = True):
  """Per-example negative log-likelihood in nats by importance sampling from the approximate posterior.

  Args:
    encode_fn: x [B, ...] -> (mu, logvar), each of any latent shape [B, ...]; q(z|x) = N(mu, diag(exp(logvar))).
    log_likelihood_fn: (x [N, ...], z [N, ...]) -> log p(x|z) [N], summed over the data dimensions.
    x: data, an array or tensor [N, ...].
    num_samples: K, importance samples per example.
    batch_size: examples encoded at a time.
    samples_per_chunk: samples decoded at a time per example; the decoder sees batch_size * samples_per_chunk
      inputs at once, which bounds memory.
    seed: seed of the sampling noise (the estimate is deterministic given the seed and chunk sizes).
    use_tf_function: compile the per-chunk computation (much faster for Keras models).

  Returns:
    float64 numpy array [N]: -log (1/K) sum_k w_k per example.
  """
  if num_samples < 1:
    raise ValueError(f'num_samples must be >= 1, got {num_samples}')
  x = tf.convert_to_tensor(x, tf.float32)
  generator = tf.random.Generator.from_seed(seed)

  def chunk_log_weights(x_batch, mu, logvar, k):
    """log w for k samples of each example in the batch: [k, B]."""
    z = _reparameterised_samples(mu, logvar, k, generator)                   # [k*B, ...], sample-major
    x_tiled = tf.tile(x_batch, tf.concat([[k], tf.ones([tf.rank(x_batch) - 1], tf.int32)], axis=0))
    mu_tiled = tf.tile(mu, tf.concat([[k], tf.ones([tf.rank(mu) - 1], tf.int32)], axis=0))
    lv_tiled = tf.tile(logvar, tf.concat([[k], tf.ones([tf.rank(logvar) - 1], tf.int32)], axis=0))
    log_w = (tf.cast(log_likelihood_fn(x_tiled, z), tf.float32) + losses.gaussian_log_prob_std(z)
             - losses.diag_gaussian_log_prob(z, mu_tiled, lv_tiled))
    return tf.reshape(log_w, (k, -1))

  if use_tf_function:
    chunk_log_weights = tf.function(chunk_log_weights, reduce_retracing=True)

  nll = []
  for start in range(0, int(x.shape[0]), batch_size):
    x_batch = x[start:start + batch_size]
    mu, logvar = encode_fn(x_batch)
    mu = tf.convert_to_tensor(mu, tf.float32)
    logvar = tf.convert_to_tensor(logvar, tf.float32)
    # Streaming log-sum-exp over chunks: running = log sum_{k seen} w_k, kept in float64 across chunks.
    running = np.full((int(x_batch.shape[0]),), -np.inf)
    done = 0
    while done < num_samples:
      k = min(samples_per_chunk, num_samples - done)
      chunk = tf.reduce_logsumexp(chunk_log_weights(x_batch, mu, logvar, tf.constant(k)), axis=0).numpy()
      running = np.logaddexp(running, chunk.astype(np.float64))
      done += k
    nll.append(-(running - math.log(num_samples)))
  return np.concatenate(nll)


def _likelihood_kind(vae):
  kind = getattr(vae, 'likelihood', None)
  if kind not in ('bernoulli', 'gaussian'):
    raise ValueError(f"the model's likelihood attribute must be 'bernoulli' or 'gaussian', got {kind!r}")
  return kind


def _likelihood_fn(vae, sigma=None, output_activation=tf.tanh):
  """log p(x|z) for the VAE's observation model, [N]."""
  kind = _likelihood_kind(vae)
  if kind == 'bernoulli':
    return lambda x, z: losses.bernoulli_log_likelihood(x, vae.decode_logits(z, training=False))
  if kind == 'gaussian':
    if sigma is None:
      raise ValueError('a Gaussian-likelihood VAE needs a fixed pixel sigma for its NLL (e.g. sigma**2 = '
                       'alpha*C*H*W/2 under the spec §0 normalisation)')
    return lambda x, z: losses.gaussian_log_likelihood(x, output_activation(vae.decode_logits(z, training=False)),
                                                       sigma)


def model_nll(vae, images, num_samples: int, batch_size: int = 100, samples_per_chunk: int = 100, sigma=None,
              seed: int = 0, output_activation=tf.tanh):
  """`importance_sampled_nll` for a VAE with encode / decode_logits / likelihood (see module docstring).

  Args:
    vae: the model; the networks run in inference mode.
    images: [N, R, R, C]; binary {0, 1} for Bernoulli models (the MNIST protocol uses statically binarised data).
    num_samples: K (thesis: 10,000).
    sigma: the fixed pixel standard deviation, required for 'gaussian' models.
    output_activation: maps decode_logits to the Gaussian pixel mean (tanh for the [-1, 1] RGB models).

  Returns:
    float64 numpy array [N] of NLLs in nats; average it for the reported number.
  """
  def encode(x):
    return vae.encode(x, training=False)
  return importance_sampled_nll(encode, _likelihood_fn(vae, sigma, output_activation), images, num_samples,
                                batch_size=batch_size, samples_per_chunk=samples_per_chunk, seed=seed)


# ----------------------------------------------------------------------------------------- inception score


def inception_score(probs, num_splits: int = 10, shuffle_seed=None):
  """IS = exp(E_x KL(p(y|x) || p(y))) per split, p(y) being the split's marginal; returns (mean, std) over splits.

  Args:
    probs: [N, num_classes] class probabilities p(y|x) (rows sum to 1).
    num_splits: number of equal contiguous splits (the last absorbs the remainder).
    shuffle_seed: if not None, permute the rows with this seed before splitting (random splits).
  """
  probs = np.asarray(probs, np.float64)
  if probs.ndim != 2:
    raise ValueError(f'probs must be [N, num_classes], got shape {probs.shape}')
  if not 1 <= num_splits <= probs.shape[0]:
    raise ValueError(f'num_splits must be in [1, N={probs.shape[0]}], got {num_splits}')
  if shuffle_seed is not None:
    probs = probs[np.random.default_rng(shuffle_seed).permutation(probs.shape[0])]
  scores = []
  for part in np.array_split(probs, num_splits):
    marginal = part.mean(axis=0, keepdims=True)
    # x log(x / m) with 0 log 0 = 0; m > 0 wherever x > 0 because m is the mean of the rows.
    with np.errstate(divide='ignore', invalid='ignore'):
      terms = np.where(part > 0, part * (np.log(part) - np.log(marginal)), 0.0)
    scores.append(np.exp(terms.sum(axis=1).mean()))
  return float(np.mean(scores)), float(np.std(scores))


def build_classifier(input_shape, num_classes: int, width: int = 16, batch_norm: bool = True,
                     bn_momentum: float = 0.9, dense_units=None, dropout: float = 0.5, name: str = 'vgg11a_classifier'):
  """A VGG11-A-shaped classifier at reduced width, returning logits (the in-house IS / perceptual network).

  Built by `classifier.vgg11` (the package's one VGG11 builder, layer names block{i}_conv{j} / block{i}_pool, so
  a classifier saved with `save_classifier` serves Stage 2 as a perceptual net at `block4_pool`): the VGG11 'A'
  column (8 convs 3x3 + 3 FC) with conv widths scaled by width/64 (width=16 is the spec's "width/4"). Pooling uses
  'same' padding, so inputs as small as 28x28 survive the five 2x2 poolings. `batch_norm` adds BN after every conv
  (as in VGG11-BN), which makes short training from scratch reliable; `bn_momentum` 0.9 (not Keras's 0.99) lets the
  inference-mode statistics catch up within a few hundred steps.

  Args:
    input_shape: (H, W, C).
    num_classes: number of output logits.
    width: width of the first conv (64 in the original VGG11).
    dense_units: width of the two hidden FC layers (4096 in VGG11); default 8 * width.
  """
  return classifier_lib.vgg11(input_shape, num_classes, width=width, batch_norm=batch_norm, bn_momentum=bn_momentum,
                              head='fc', dense_units=dense_units, dropout=dropout, name=name)


def _binary_targets(labels):
  """Multi-label targets in {0, 1}: 1 where the label is > 0 (accepts {0, 1} and CelebA's {-1, +1})."""
  return tf.cast(tf.convert_to_tensor(labels) > 0, tf.float32)


def _as_dataset(data, batch_size, shuffle, seed, multi_label=False):
  """(images, labels) batches: a given tf.data.Dataset as is, or arrays batched here (shuffled each epoch)."""
  if isinstance(data, tf.data.Dataset):
    ds = data
  else:
    x, y = data
    y = np.asarray(y, np.float32 if multi_label else np.int64)
    ds = tf.data.Dataset.from_tensor_slices((np.asarray(x, np.float32), y))
    if shuffle:
      ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
  if multi_label:
    ds = ds.map(lambda x, y: (x, _binary_targets(y)))
  return ds


def train_classifier(model, dataset_or_arrays, epochs: int, validation=None, learning_rate: float = 1e-3,
                     batch_size: int = 64, seed: int = 0, verbose: int = 0, multi_label: bool = False,
                     callbacks=None) -> float:
  """Train `model` (logits out) with Adam; return its accuracy in inference mode.

  Single-label (default): softmax cross-entropy on integer class labels; accuracy = fraction of images whose largest
  logit is the label. Multi-label (`multi_label=True`, e.g. the 40 CelebA attributes): one sigmoid cross-entropy
  per output against binary targets (labels [N, K] in {0, 1} or {-1, +1}; > 0 means present); the returned
  accuracy is the mean over the K attributes of each attribute's accuracy (`classifier_accuracy` gives each).

  Args:
    model: e.g. `build_classifier(...)` (K outputs for K attributes when multi-label).
    dataset_or_arrays: a `tf.data.Dataset` of (images, labels) batches, or an (images, labels) tuple.
    epochs: passes over the data.
    validation: optional held-out data in the same form; the returned accuracy is measured on it, otherwise on the
      training data (in inference mode).
    callbacks: optional Keras callbacks for `fit` (e.g. a per-epoch progress line).

  Returns:
    accuracy in [0, 1].
  """
  train = _as_dataset(dataset_or_arrays, batch_size, shuffle=True, seed=seed, multi_label=multi_label)
  if multi_label:
    loss = keras.losses.BinaryCrossentropy(from_logits=True)
    metric = keras.metrics.BinaryAccuracy(name='accuracy', threshold=0.0)     # on logits: sigmoid(0) = 0.5
  else:
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    metric = keras.metrics.SparseCategoricalAccuracy(name='accuracy')
  model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=[metric])
  with warnings.catch_warnings():
    # Keras warns "Your input ran out of data" at the end of the first epoch of any finite dataset whose length it
    # cannot know in advance (e.g. after a filter); each epoch here is one full pass by design.
    warnings.filterwarnings('ignore', message='Your input ran out of data')
    model.fit(train, epochs=epochs, verbose=verbose, shuffle=False, callbacks=callbacks)   # the data shuffles itself
  held_out = dataset_or_arrays if validation is None else validation
  return float(np.mean(classifier_accuracy(model, held_out, multi_label=multi_label, batch_size=batch_size)))


def classifier_accuracy(model, dataset_or_arrays, multi_label: bool = False, batch_size: int = 100):
  """Accuracy of `model` (logits out) in inference mode on (images, labels) batches or arrays.

  Returns:
    single-label: a float, the fraction of images whose largest logit is the label;
    multi-label: float64 [K], per attribute the fraction of images with (logit > 0) == (label > 0).
  """
  correct, count = None, 0
  for x, y in _as_dataset(dataset_or_arrays, batch_size, shuffle=False, seed=0, multi_label=multi_label):
    logits = model(x, training=False)
    if multi_label:
      hits = tf.reduce_sum(tf.cast(tf.equal(tf.cast(logits > 0, tf.float32), y), tf.float64), axis=0)
    else:
      hits = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, axis=-1), tf.cast(y, tf.int64)), tf.float64))
    correct = hits.numpy() if correct is None else correct + hits.numpy()
    count += int(x.shape[0])
  if not count:
    raise ValueError('classifier_accuracy: no images')
  accuracy = correct / count
  return np.asarray(accuracy, np.float64) if multi_label else float(accuracy)


def classifier_probs(model, images, batch_size: int = 100):
  """Softmax class probabilities [N, num_classes]; images are resized to the classifier's input size if needed."""
  height, width = model.input_shape[1:3]
  outputs = []
  for start in range(0, len(images), batch_size):
    batch = tf.convert_to_tensor(images[start:start + batch_size], tf.float32)
    if batch.shape[1:3] != (height, width):
      batch = tf.image.resize(batch, (height, width), method='bilinear', antialias=True)
    outputs.append(tf.nn.softmax(model(batch, training=False), axis=-1).numpy())
  return np.concatenate(outputs)


def inception_score_of_generator(generate_fn, classifier, num_images: int, batch_size: int = 100,
                                 num_splits: int = 10, shuffle_seed=None):
  """IS of `num_images` images from `generate_fn(n) -> [n, H, W, C]` under `classifier`; returns (mean, std).

  The thesis does not state the sample count for Chapter 5; the spec proposes 50,000 in 10 splits (§8-A34).
  """
  probs = []
  remaining = num_images
  while remaining > 0:
    n = min(batch_size, remaining)
    probs.append(classifier_probs(classifier, np.asarray(generate_fn(n)), batch_size=n))
    remaining -= n
  return inception_score(np.concatenate(probs), num_splits=num_splits, shuffle_seed=shuffle_seed)


def save_classifier(model, path: str) -> str:
  """Save as a native Keras archive; the path must end in .keras. Returns the path."""
  if not path.endswith('.keras'):
    raise ValueError(f'classifier paths must end in .keras, got {path!r}')
  directory = os.path.dirname(path)
  if directory:
    os.makedirs(directory, exist_ok=True)
  model.save(path)
  return path


def load_classifier(path: str):
  """Load a classifier saved with `save_classifier` (or any Keras .keras model returning logits)."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f'no classifier at {path!r}: train one with build_classifier/train_classifier and '
                            f'save_classifier, or pass the path of a user-supplied .keras model (spec A5.4)')
  return keras.models.load_model(path)


# ----------------------------------------------------------------------------------------- reconstruction error


def reconstruction_error(vae, images, batch_size: int = 100, output_activation=tf.tanh):
  """Error of the posterior-mean reconstruction Dec(mu(x)), in inference mode.

  Returns:
    dict with 'mse' (mean over all pixels of (x~ - x)^2, with x~ = sigmoid or `output_activation` of the logits)
    and, for Bernoulli models, 'bce_per_pixel' (mean binary cross-entropy per pixel, nats).
  """
  kind = _likelihood_kind(vae)
  squared, bce, count = 0.0, 0.0, 0
  for start in range(0, len(images), batch_size):
    x = tf.convert_to_tensor(images[start:start + batch_size], tf.float32)
    mu, _ = vae.encode(x, training=False)
    logits = vae.decode_logits(mu, training=False)
    x_tilde = tf.sigmoid(logits) if kind == 'bernoulli' else output_activation(logits)
    squared += float(tf.reduce_sum(tf.square(x_tilde - x)))
    if kind == 'bernoulli':
      bce -= float(tf.reduce_sum(losses.bernoulli_log_likelihood(x, logits)))
    count += int(np.prod(x.shape))
  result = {'mse': squared / count}
  if kind == 'bernoulli':
    result['bce_per_pixel'] = bce / count
  return result


# ----------------------------------------------------------------------------------------- held-out ELBO, KL per block


def held_out_elbo(vae, images, num_blocks: int, sigma=None, num_samples: int = 1, batch_size: int = 100,
                  seed: int = 0, output_activation=tf.tanh) -> dict:
  """The ELBO and its parts on held-out images, in nats per image, with the KL of each latent channel block.

      ELBO(x) = E_{q(z|x)} [log p(x|z)] - sum_t KL_t(x),   KL_t(x) = KL(q(z_t|x) || N(0, I)) over block t's units,

  E_q estimated with `num_samples` reparameterised draws per image (seeded, inference mode). Blocks are the channel
  blocks of `rlcv_tf.core.vaegan.blocks` (block t = channels [t*C/T, (t+1)*C/T)), so KL_1..KL_T show how the
  information is spread over the sequence (thesis: the early blocks, weighted alpha1 > alpha2, carry less).

  Args:
    vae: encode / decode_logits / likelihood (see the module docstring).
    images: [N, R, R, C] held-out images in the model's range.
    num_blocks: T.
    sigma: the fixed pixel standard deviation of a 'gaussian' model's p(x|z) = N(output_activation(logits),
      sigma^2 I) (the training objective's weights fix it: alpha * C*H*W = 2 sigma^2, spec §0); unused for
      'bernoulli' models.

  Returns:
    {'elbo': mean ELBO, 'log_likelihood': mean E_q log p(x|z), 'kl': mean total KL, 'kl_per_block': float64 [T]
     mean KL_t} -- all nats per image; kl == kl_per_block.sum().
  """
  log_likelihood = _likelihood_fn(vae, sigma, output_activation)
  generator = tf.random.Generator.from_seed(seed)
  total_ll, total_kl, count = 0.0, np.zeros(num_blocks, np.float64), 0
  for start in range(0, len(images), batch_size):
    x = tf.convert_to_tensor(images[start:start + batch_size], tf.float32)
    n = int(x.shape[0])
    mu, logvar = vae.encode(x, training=False)
    mu = tf.convert_to_tensor(mu, tf.float32)
    logvar = tf.convert_to_tensor(logvar, tf.float32)
    total_kl += n * losses.gaussian_kl_per_block(mu, logvar, num_blocks).numpy().astype(np.float64)
    z = _reparameterised_samples(mu, logvar, num_samples, generator)                 # [K*n, ...], sample-major
    x_tiled = tf.tile(x, tf.concat([[num_samples], tf.ones([tf.rank(x) - 1], tf.int32)], axis=0))
    total_ll += float(tf.reduce_sum(tf.cast(log_likelihood(x_tiled, z), tf.float64))) / num_samples
    count += n
  if not count:
    raise ValueError('held_out_elbo: no images')
  kl_per_block = total_kl / count
  ll = total_ll / count
  return {'elbo': ll - float(kl_per_block.sum()), 'log_likelihood': ll, 'kl': float(kl_per_block.sum()),
          'kl_per_block': kl_per_block}


def objective_sigma(alpha: float, image_shape) -> float:
  """The pixel sigma implied by a KL weight under the element-mean reconstruction term: alpha * C*H*W = 2 sigma^2
  (spec §0; minimising mse + alpha * KL is maximising the ELBO of N(x~, sigma^2 I) pixels, scaled by alpha)."""
  return float(np.sqrt(alpha * float(np.prod(image_shape)) / 2.0))
