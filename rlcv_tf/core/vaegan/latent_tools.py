"""Latent-space tools of thesis Sec. 5.4.4-5.4.6: progressive generation, block interpolation / resampling, completion.

Spec ch5 A2.5 and A3.4. Latents are [B, H, W, C] (4 x 4 x n_z for the crVAE models) cut into T channel blocks
(`rlcv_tf.core.vaegan.blocks`). **Blocks are numbered t = 1..T here, as in the thesis** (z_t, Fig. 5.8-5.10): block t holds
channels [(t-1)*C/T, t*C/T). Every function checks 1 <= t <= T.

* Progressive generation (Fig. 5.8, T:L5069-5080): start from all zeros and fill blocks 1..t, then decode.
* Block interpolation (Fig. 5.10, T:L5086-5094): interpolate block t linearly, the other blocks fixed.
* Block resampling (T:L5100-5105): fresh prior draws of z_t, the other blocks fixed.
* Completion (Sec. 5.4.6, T:L5031-5057, L5500-5505) by optimising z with the networks frozen:

      min_z  sum_pixels ((Dec(z) - x) * m)^2  +  gamma * 0.5 * ||z||^2  +  tau * log(1 - D(Dec(z)))

  The thesis writes +gamma log N(z; 0, I), which under a minimisation pushes z away from the prior; the penalty
  -gamma log N(z; 0, I) = gamma ||z||^2 / 2 + const is what is meant (spec §8-A11). z starts at the posterior mean of
  the masked image, the optimiser is Adam(0.01) for 1000 steps [P], and observed pixels are copied from x.
  D scores each decoded image as a batch of one (`per_example_logits`): the Chapter 5 D ends in minibatch
  discrimination, which compares every example with its batch-mates, so a batched D term would make an image's
  completion depend on the other images it is completed with. On a batch of one the minibatch features are those
  of an example with no batch-mates (0 for `layers.MinibatchDiscrimination`), the same for every image.

The VAE interface: `encode(x, training=False) -> (mu, logvar)`, `decode_logits(z, training=False)` (pre-activation;
sigmoid gives the image for likelihood 'bernoulli', tanh for 'gaussian' RGB in [-1, 1]), and the number of blocks as
`vae.num_blocks` (or passed explicitly as `num_blocks=`).
"""

import keras
import numpy as np
import tensorflow as tf

from rlcv_tf.core.vaegan import blocks

# Completion masks on 64x64 aligned crops [P, spec A3.4]: (rows, cols) occluded, 0-based, end exclusive.
_MASK_BOXES_64 = {
    'right_half': ((0, 64), (32, 64)),     # CelebA
    'eyes': ((20, 34), (10, 54)),          # CelebA
    'mouth': ((40, 54), (18, 46)),         # CelebA
    'upper': ((0, 32), (0, 64)),           # Birds
    'lower': ((32, 64), (0, 64)),          # Birds
    'center': ((16, 48), (16, 48)),        # LSUN
}
_MASK_DATASETS = {'celeba': ('right_half', 'eyes', 'mouth'), 'birds': ('upper', 'lower'), 'lsun': ('center',)}
MASK_NAMES = tuple(_MASK_BOXES_64)


# ----------------------------------------------------------------------------------------- block helpers


def _num_blocks(vae, num_blocks):
  if num_blocks is None:
    num_blocks = getattr(vae, 'num_blocks', None)
  if num_blocks is None:
    raise ValueError('the number of latent blocks is unknown: pass num_blocks= or give the model a num_blocks '
                     'attribute')
  return int(num_blocks)


def _check_block(t, num_blocks):
  if not 1 <= t <= num_blocks:
    raise ValueError(f'block index t={t} out of range: blocks are numbered 1..{num_blocks} (thesis notation)')


def block_channel_mask(channels: int, t: int, num_blocks: int):
  """float32 [C]: 1 on the channels of block t (1-based), 0 elsewhere."""
  blocks.check_divisible(channels, num_blocks)
  _check_block(t, num_blocks)
  per = channels // num_blocks
  mask = np.zeros((channels,), np.float32)
  mask[(t - 1) * per:t * per] = 1.0
  return tf.constant(mask)


def leading_blocks_mask(channels: int, upto: int, num_blocks: int):
  """float32 [C]: 1 on the channels of blocks 1..upto, 0 on later blocks (upto = 0 zeroes everything)."""
  blocks.check_divisible(channels, num_blocks)
  if not 0 <= upto <= num_blocks:
    raise ValueError(f'upto={upto} out of range 0..{num_blocks}')
  mask = np.zeros((channels,), np.float32)
  mask[:upto * (channels // num_blocks)] = 1.0
  return tf.constant(mask)


def replace_block(z, t: int, values, num_blocks: int):
  """z with block t (1-based) replaced; `values` is a full latent [B, H, W, C] or just the block [B, H, W, C/T]."""
  z = tf.convert_to_tensor(z, tf.float32)
  values = tf.convert_to_tensor(values, tf.float32)
  channels = z.shape[-1]
  mask = block_channel_mask(channels, t, num_blocks)
  if values.shape[-1] == channels // num_blocks and channels != channels // num_blocks:
    per = channels // num_blocks
    paddings = [[0, 0]] * (values.shape.rank - 1) + [[(t - 1) * per, channels - t * per]]
    values = tf.pad(values, paddings)
  elif values.shape[-1] != channels:
    raise ValueError(f'values must have {channels} or {channels // num_blocks} channels, got {values.shape[-1]}')
  return z * (1.0 - mask) + values * mask


def _likelihood(vae):
  if not hasattr(vae, 'likelihood'):
    raise ValueError("the model needs a likelihood attribute ('bernoulli' or 'gaussian') to turn logits into images")
  return vae.likelihood


def decode_images(vae, z):
  """Images from latents in inference mode: sigmoid (Bernoulli) or tanh (Gaussian, [-1, 1]) of decode_logits."""
  logits = vae.decode_logits(z, training=False)
  kind = _likelihood(vae)
  if kind == 'bernoulli':
    return tf.sigmoid(logits)
  if kind == 'gaussian':
    return tf.tanh(logits)
  raise ValueError(f"unknown likelihood {kind!r}; expected 'bernoulli' or 'gaussian'")


# ----------------------------------------------------------------------------------------- Sec. 5.4.4-5.4.5


def progressive_blocks(vae, z, upto: int, num_blocks=None):
  """Decode z with every block after `upto` zeroed (blocks 1..upto kept): [B, R, R, C_img]."""
  num_blocks = _num_blocks(vae, num_blocks)
  z = tf.convert_to_tensor(z, tf.float32)
  return decode_images(vae, z * leading_blocks_mask(z.shape[-1], upto, num_blocks))


def progressive_sequence(vae, z, num_blocks=None):
  """Fig. 5.8: images for t = 1..T, step t decoding blocks 1..t of z (the rest zero): [T, B, R, R, C_img]."""
  num_blocks = _num_blocks(vae, num_blocks)
  return tf.stack([progressive_blocks(vae, z, t, num_blocks) for t in range(1, num_blocks + 1)])


def interpolate_block(vae, z, t: int, z_t_new, n: int, num_blocks=None):
  """Fig. 5.10: n images moving block t linearly from z_t to z_t_new, other blocks fixed: [n, B, R, R, C_img].

  Args:
    z: latents [B, H, W, C].
    t: the block (1-based).
    z_t_new: the end point, a full latent [B, H, W, C] (only block t is used) or the block alone [B, H, W, C/T].
    n: number of steps, including both end points (n >= 2).
  """
  if n < 2:
    raise ValueError(f'n must be >= 2 (both end points), got {n}')
  num_blocks = _num_blocks(vae, num_blocks)
  z = tf.convert_to_tensor(z, tf.float32)
  end = replace_block(z, t, z_t_new, num_blocks)
  frames = [decode_images(vae, (1.0 - a) * z + a * end) for a in np.linspace(0.0, 1.0, n, dtype=np.float32)]
  return tf.stack(frames)


def resample_block(vae, z, t: int, n: int, seed: int = 0, num_blocks=None):
  """n images with block t redrawn from the prior N(0, I), other blocks fixed: [n, B, R, R, C_img]."""
  num_blocks = _num_blocks(vae, num_blocks)
  z = tf.convert_to_tensor(z, tf.float32)
  generator = tf.random.Generator.from_seed(seed)
  frames = [decode_images(vae, replace_block(z, t, generator.normal(tf.shape(z)), num_blocks)) for _ in range(n)]
  return tf.stack(frames)


# ----------------------------------------------------------------------------------------- Sec. 5.4.6 completion


def mask(name: str, resolution: int = 64, channels: int = 3):
  """Completion mask [resolution, resolution, channels], float32, 1 = observed, 0 = occluded (spec A3.4 [P]).

  `name` is one of MASK_NAMES ('right_half', 'eyes', 'mouth' for CelebA; 'upper', 'lower' for Birds; 'center' for
  LSUN), optionally prefixed by its dataset ('celeba_eyes', 'birds/upper'). The 64x64 boxes scale with resolution.
  """
  key = name.lower()
  for dataset, names in _MASK_DATASETS.items():
    for separator in ('_', '/'):
      if key.startswith(dataset + separator) and key[len(dataset) + 1:] in names:
        key = key[len(dataset) + 1:]
  if key not in _MASK_BOXES_64:
    raise ValueError(f'unknown mask {name!r}; choose from {MASK_NAMES} (optionally prefixed celeba_/birds_/lsun_)')
  (row0, row1), (col0, col1) = _MASK_BOXES_64[key]
  scale = resolution / 64.0
  result = np.ones((resolution, resolution, channels), np.float32)
  result[int(round(row0 * scale)):int(round(row1 * scale)), int(round(col0 * scale)):int(round(col1 * scale))] = 0.0
  return result


def _as_logits_fn(discriminator):
  """Accept a callable x -> [B, 1] logits or an object with features(x) and logits(f); None disables the D term."""
  if discriminator is None:
    return None
  if hasattr(discriminator, 'features') and hasattr(discriminator, 'logits'):
    return lambda x: discriminator.logits(discriminator.features(x, training=False), training=False)
  if callable(discriminator):
    return discriminator
  raise TypeError('d_logits_fn must be a callable x -> logits, an object with features()/logits(), or None')


def per_example_logits(logits_fn, images, parallel_iterations: int = 32):
  """D's logits [B] with each image scored as a batch of one, so no example sees its batch-mates (a D with minibatch
  discrimination otherwise mixes the batch). One tf.map_fn loop over the images: the traced graph holds one copy of
  D whatever B is (a Python loop over 64 images took 25x longer to trace at small32), and the iterations run in
  parallel."""
  def one(image):
    return tf.reshape(logits_fn(image[tf.newaxis]), (-1,))[0]
  return tf.map_fn(one, images, fn_output_signature=tf.float32, parallel_iterations=parallel_iterations)


def completion_terms(decoded, x, observed_mask, z, d_logits, gamma: float, tau: float):
  """The three per-example terms of the completion objective, each [B].

  Args:
    decoded: Dec(z), [B, R, R, C].
    x: the image to complete, [B, R, R, C].
    observed_mask: broadcastable to x; 1 = observed, 0 = occluded.
    z: latents [B, ...].
    d_logits: D's logits on `decoded`, [B, 1] or [B], each computed from its own image only (see
      `per_example_logits`); None skips the adversarial term.

  Returns:
    dict 'data' = sum ((Dec(z) - x) m)^2, 'prior' = gamma ||z||^2 / 2, 'adversarial' = tau log(1 - sigmoid(logits))
    (computed as -tau softplus(logits), which stays finite for confident logits).
  """
  per_example_sum = lambda t: tf.reduce_sum(tf.reshape(t, (tf.shape(t)[0], -1)), axis=1)
  data = per_example_sum(tf.square((decoded - x) * observed_mask))
  prior = gamma * 0.5 * per_example_sum(tf.square(z))
  if d_logits is None:
    adversarial = tf.zeros_like(data)
  else:
    adversarial = -tau * tf.reshape(tf.nn.softplus(d_logits), (-1,))
  return {'data': data, 'prior': prior, 'adversarial': adversarial}


def complete(vae, d_logits_fn, x, mask, steps: int = 1000, lr: float = 0.01, gamma: float = 1e-5,
             tau: float = 0.003):
  """Fill the occluded pixels of x by optimising the latent (thesis Sec. 5.4.6; spec A3.4).

  Args:
    vae: the Stage-1 model (encode / decode_logits), kept frozen and in inference mode.
    d_logits_fn: the discriminator, a callable x -> [B, 1] logits or an object with features()/logits(); None
      drops the adversarial term (equivalent to tau = 0). It is called on one image at a time (a batch of one), so
      each image completes the same whatever the other images of `x` are, even with minibatch discrimination in D.
    x: images [B, R, R, C] in the decoder's output range.
    mask: 1 = observed, 0 = occluded; [R, R, C], [R, R, 1] or [B, R, R, C] (see `mask()`).
    steps, lr: Adam iterations and learning rate on z.
    gamma, tau: weights of the prior penalty and the adversarial term (thesis: 1e-5, 0.003).

  Returns:
    (completed [B, R, R, C] numpy: x on observed pixels, Dec(z*) on occluded ones,
     history [steps] numpy: the batch mean of the objective before each Adam step).
  """
  x = tf.convert_to_tensor(x, tf.float32)
  observed = tf.broadcast_to(tf.convert_to_tensor(mask, tf.float32), tf.shape(x))
  logits_fn = _as_logits_fn(d_logits_fn)
  mu, _ = vae.encode(x * observed, training=False)
  z = tf.Variable(tf.convert_to_tensor(mu, tf.float32), trainable=True, name='completion_z')
  optimizer = keras.optimizers.Adam(lr)
  optimizer.build([z])

  def objective():
    decoded = decode_images(vae, z)
    logits = None if logits_fn is None else per_example_logits(logits_fn, decoded)
    terms = completion_terms(decoded, x, observed, z, logits, gamma, tau)
    # Each example's objective involves only its own z and image (D sees one image at a time), so the batch sum
    # optimises them independently.
    return tf.reduce_sum(terms['data'] + terms['prior'] + terms['adversarial'])

  @tf.function
  def step():
    with tf.GradientTape() as tape:
      tape.watch(z)
      total = objective()
    optimizer.apply_gradients([(tape.gradient(total, z), z)])
    return total

  batch = float(x.shape[0])
  history = np.array([float(step()) / batch for _ in range(steps)], np.float32)
  decoded = decode_images(vae, z)
  completed = observed * x + (1.0 - observed) * decoded
  return completed.numpy(), history
