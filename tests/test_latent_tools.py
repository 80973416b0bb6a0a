"""Latent tools of thesis Sec. 5.4.4-5.4.6 on a hand-made linear VAE (spec ch5 A2.5, A3.4, §7.3 item 16)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.core.vaegan import latent_tools


class LinearVAE(keras.Model):
  """The VAE interface with linear maps: images [B, 8, 8, 3], latents [B, H, W, C] cut into `num_blocks` blocks.

  Records the last latent it decoded and refuses to run in training mode (the tools must keep networks frozen).
  """

  likelihood = 'gaussian'

  def __init__(self, latent_shape=(4, 4, 8), num_blocks=4, seed=0):
    super().__init__()
    self.latent_shape = latent_shape
    self.num_blocks = num_blocks
    latent_size = int(np.prod(latent_shape))
    rng = np.random.default_rng(seed)
    self.decoder_matrix = tf.constant(rng.normal(scale=1.0 / np.sqrt(latent_size), size=(latent_size, 192)),
                                      tf.float32)
    self.encoder_matrix = tf.constant(rng.normal(scale=0.05, size=(192, 2 * latent_size)), tf.float32)
    self.decoded_latents = []

  def encode(self, x, training=False):
    assert not training
    h = tf.reshape(x, (-1, 192)) @ self.encoder_matrix
    mu, logvar = tf.split(h, 2, axis=-1)
    return tf.reshape(mu, (-1,) + self.latent_shape), tf.reshape(logvar, (-1,) + self.latent_shape)

  def decode_logits(self, z, training=False):
    assert not training
    self.decoded_latents.append(z)
    return tf.reshape(tf.reshape(z, (tf.shape(z)[0], -1)) @ self.decoder_matrix, (-1, 8, 8, 3))


def decode_np(vae, z):
  """tanh(z W) computed with NumPy, independently of the tools."""
  return np.tanh(z.reshape(z.shape[0], -1) @ vae.decoder_matrix.numpy()).reshape(-1, 8, 8, 3)


def random_latents(batch=3, shape=(4, 4, 8), seed=1):
  return np.random.default_rng(seed).normal(size=(batch,) + shape).astype(np.float32)


# ----------------------------------------------------------------------------------------- progressive generation


@pytest.mark.parametrize('upto', [0, 1, 3, 4])
def test_progressive_blocks_zeroes_later_blocks(upto):
  vae, z = LinearVAE(), random_latents()
  images = latent_tools.progressive_blocks(vae, z, upto).numpy()
  kept = z.copy()
  kept[..., 2 * upto:] = 0.0                       # 8 channels / 4 blocks: block t is channels 2(t-1), 2t-1
  np.testing.assert_allclose(images, decode_np(vae, kept), atol=1e-5)
  np.testing.assert_array_equal(vae.decoded_latents[-1].numpy(), kept)


def test_progressive_sequence_fills_blocks_in_order():
  vae, z = LinearVAE(), random_latents()
  sequence = latent_tools.progressive_sequence(vae, z).numpy()
  assert sequence.shape == (4, 3, 8, 8, 3)
  for t in range(1, 5):
    kept = z.copy()
    kept[..., 2 * t:] = 0.0
    np.testing.assert_allclose(sequence[t - 1], decode_np(vae, kept), atol=1e-5)
  np.testing.assert_allclose(sequence[-1], decode_np(vae, z), atol=1e-5)   # all blocks = the full decode


def test_block_indices_are_one_based_and_checked():
  vae, z = LinearVAE(), random_latents()
  for bad in (0, 5):
    with pytest.raises(ValueError, match='numbered 1..4'):
      latent_tools.resample_block(vae, z, bad, 2)
  with pytest.raises(ValueError, match='upto'):
    latent_tools.progressive_blocks(vae, z, 5)
  with pytest.raises(ValueError, match='num_blocks'):
    latent_tools.progressive_sequence(keras.Model(), z)


# ----------------------------------------------------------------------------------------- interpolation, resampling


@pytest.mark.parametrize('full_latent_end', [True, False])
def test_interpolate_block_moves_only_block_t_linearly(full_latent_end):
  vae, z = LinearVAE(), random_latents()
  target = random_latents(seed=2)
  t = 3
  end = target if full_latent_end else target[..., 4:6]
  frames = latent_tools.interpolate_block(vae, z, t, end, n=5).numpy()
  assert frames.shape == (5, 3, 8, 8, 3)
  latents = [l.numpy() for l in vae.decoded_latents[-5:]]
  for i, (alpha, latent) in enumerate(zip(np.linspace(0, 1, 5), latents)):
    expected = z.copy()
    expected[..., 4:6] = (1 - alpha) * z[..., 4:6] + alpha * target[..., 4:6]
    np.testing.assert_allclose(latent, expected, atol=1e-6)
    np.testing.assert_allclose(frames[i], decode_np(vae, expected), atol=1e-5)
  with pytest.raises(ValueError):
    latent_tools.interpolate_block(vae, z, t, target, n=1)


def test_resample_block_redraws_only_block_t():
  vae, z = LinearVAE(), random_latents(batch=64)
  frames = latent_tools.resample_block(vae, z, 2, n=4, seed=7).numpy()
  assert frames.shape == (4, 64, 8, 8, 3)
  latents = np.stack([l.numpy() for l in vae.decoded_latents[-4:]])
  np.testing.assert_array_equal(latents[..., :2], np.broadcast_to(z[..., :2], latents[..., :2].shape))
  np.testing.assert_array_equal(latents[..., 4:], np.broadcast_to(z[..., 4:], latents[..., 4:].shape))
  redrawn = latents[..., 2:4]
  assert not np.allclose(redrawn[0], redrawn[1])
  assert abs(redrawn.mean()) < 0.1 and abs(redrawn.std() - 1.0) < 0.1      # N(0, I) draws
  again = latent_tools.resample_block(vae, z, 2, n=4, seed=7).numpy()
  np.testing.assert_array_equal(frames, again)                               # deterministic per seed


# ----------------------------------------------------------------------------------------- masks


@pytest.mark.parametrize('name, occluded', [('right_half', 64 * 32), ('celeba_eyes', 14 * 44), ('mouth', 14 * 28),
                                            ('birds/upper', 32 * 64), ('lower', 32 * 64), ('lsun_center', 32 * 32)])
def test_mask_presets(name, occluded):
  m = latent_tools.mask(name, 64)
  assert m.shape == (64, 64, 3) and m.dtype == np.float32
  assert set(np.unique(m)) <= {0.0, 1.0}
  assert int((m[..., 0] == 0).sum()) == occluded
  assert int((latent_tools.mask(name, 128)[..., 0] == 0).sum()) == 4 * occluded   # boxes scale with resolution


def test_mask_geometry_and_errors():
  m = latent_tools.mask('right_half', 64, channels=1)[..., 0]
  assert m[:, :32].min() == 1.0 and m[:, 32:].max() == 0.0
  eyes = latent_tools.mask('eyes', 64)[..., 0]
  assert eyes[20, 10] == 0.0 and eyes[19, 10] == 1.0 and eyes[33, 53] == 0.0 and eyes[34, 53] == 1.0
  with pytest.raises(ValueError, match='unknown mask'):
    latent_tools.mask('nose', 64)
  with pytest.raises(ValueError, match='unknown mask'):
    latent_tools.mask('celeba_upper', 64)            # a Birds mask under the CelebA prefix


# ----------------------------------------------------------------------------------------- 7.3-16: completion


def test_completion_terms_gradients():
  rng = np.random.default_rng(3)
  decoded = tf.Variable(rng.normal(size=(2, 8, 8, 3)).astype(np.float32))
  z = tf.Variable(rng.normal(size=(2, 4, 4, 8)).astype(np.float32))
  logits = tf.Variable(rng.normal(size=(2, 1)).astype(np.float32))
  x = rng.normal(size=(2, 8, 8, 3)).astype(np.float32)
  m = latent_tools.mask('center', 8)
  gamma, tau = 1e-5, 0.003
  with tf.GradientTape(persistent=True) as tape:
    terms = latent_tools.completion_terms(decoded, x, m, z, logits, gamma, tau)
    data, prior, adversarial = (tf.reduce_sum(terms[k]) for k in ('data', 'prior', 'adversarial'))
  grad_data = tape.gradient(data, decoded).numpy()
  occluded = np.broadcast_to(m == 0, grad_data.shape)
  assert occluded.any()
  assert np.all(grad_data[occluded] == 0.0)                               # exactly zero, not merely small
  np.testing.assert_allclose(grad_data[~occluded], 2 * (decoded.numpy() - x)[~occluded], rtol=1e-5)
  np.testing.assert_allclose(tape.gradient(prior, z).numpy(), gamma * z.numpy(), rtol=1e-6)
  p_real = 1 / (1 + np.exp(-logits.numpy()[:, 0].astype(np.float64)))
  np.testing.assert_allclose(terms['adversarial'].numpy(), tau * np.log(1 - p_real), rtol=1e-5)
  np.testing.assert_allclose(terms['data'].numpy(), (((decoded.numpy() - x) * m) ** 2).sum(axis=(1, 2, 3)),
                             rtol=1e-5)
  # The adversarial term rewards "real" (higher logits lower it).
  assert float(tape.gradient(adversarial, logits)[0, 0]) < 0


class FeatureDiscriminator:
  """A discriminator with features()/logits() that records the mode it was called in."""

  def __init__(self):
    self.modes = []

  def features(self, x, training=None):
    self.modes.append(training)
    return tf.reduce_mean(x, axis=(1, 2, 3))[:, None]

  def logits(self, f, training=None):
    self.modes.append(training)
    return 3.0 * f


def test_complete_recovers_occluded_pixels_of_a_decodable_image():
  vae = LinearVAE(latent_shape=(2, 2, 4), num_blocks=2, seed=4)
  z_true = random_latents(batch=2, shape=(2, 2, 4), seed=5)
  x = decode_np(vae, z_true).astype(np.float32)
  m = latent_tools.mask('center', 8)
  occluded = np.broadcast_to(m == 0, x.shape)
  start = decode_np(vae, vae.encode(x * m)[0].numpy())
  completed, history = latent_tools.complete(vae, None, x, m, steps=400, lr=0.05)
  assert completed.shape == x.shape and history.shape == (400,)
  np.testing.assert_array_equal(completed[~occluded], x[~occluded])        # observed pixels kept from x
  error_before = np.abs(start - x)[occluded].mean()
  error_after = np.abs(completed - x)[occluded].mean()
  assert error_after < 0.1 * error_before
  assert history[-1] < 0.01 * history[0]


def test_complete_objective_uses_discriminator_in_inference_mode():
  vae = LinearVAE(latent_shape=(2, 2, 4), num_blocks=2, seed=6)
  x = decode_np(vae, random_latents(batch=2, shape=(2, 2, 4), seed=7)).astype(np.float32)
  m = latent_tools.mask('lower', 8)
  d = FeatureDiscriminator()
  gamma, tau = 1e-2, 0.5
  _, history = latent_tools.complete(vae, d, x, m, steps=3, lr=0.01, gamma=gamma, tau=tau)
  assert d.modes and all(mode is False for mode in d.modes)
  # history[0] is the objective at z0 = mu(x * m), computed here with NumPy.
  z0 = vae.encode(x * m)[0].numpy()
  decoded = decode_np(vae, z0)
  logits = 3.0 * decoded.mean(axis=(1, 2, 3))
  per_example = ((((decoded - x) * m) ** 2).sum(axis=(1, 2, 3)) + gamma * 0.5 * (z0 ** 2).sum(axis=(1, 2, 3))
                 - tau * np.log1p(np.exp(logits)))
  assert history[0] == pytest.approx(per_example.mean(), rel=1e-4)


def test_an_image_completes_the_same_whatever_its_batch_mates():
  """Review finding 8: the Chapter 5 D ends in minibatch discrimination, so a batched D term coupled the images of
  a completion batch. An image completed alone and completed beside other images must give the same result."""
  from rlcv_tf.core.vaegan import networks  # pylint: disable=g-import-not-at-top
  from rlcv_tf.crvae import presets  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(0)
  config = presets.get_preset('tiny')                  # crVAE-GAN: D with minibatch discrimination
  vae, disc = networks.build_models(config)
  rng = np.random.default_rng(8)
  x = np.tanh(rng.normal(size=(4,) + config.image_shape)).astype(np.float32)
  m = latent_tools.mask('center', config.resolution)
  kwargs = dict(steps=15, lr=0.05, gamma=1e-5, tau=3.0)
  alone, _ = latent_tools.complete(vae, disc, x[:1], m, **kwargs)
  together, _ = latent_tools.complete(vae, disc, x, m, **kwargs)
  np.testing.assert_allclose(together[:1], alone, atol=1e-5)      # 1e-3 apart with a batched D term
  # The D term does act on the result (so the comparison above can see a coupling).
  without_d, _ = latent_tools.complete(vae, None, x[:1], m, **kwargs)
  assert np.abs(without_d - alone).max() > 1e-3


def test_per_example_logits_scores_each_image_alone():
  seen = []

  def logits_fn(images):
    seen.append(int(images.shape[0]))
    return tf.reduce_sum(images, axis=(1, 2, 3))[:, None] - tf.reduce_mean(images)   # couples a batch

  images = tf.constant(np.random.default_rng(0).normal(size=(3, 2, 2, 1)).astype(np.float32))
  got = latent_tools.per_example_logits(logits_fn, images).numpy()
  expected = [float(logits_fn(images[i:i + 1])[0, 0]) for i in range(3)]
  np.testing.assert_allclose(got, expected, rtol=1e-6)
  assert seen and set(seen) == {1}                        # D only ever sees batches of one
  unknown_batch = tf.function(lambda t: latent_tools.per_example_logits(logits_fn, t),
                              input_signature=[tf.TensorSpec([None, 2, 2, 1], tf.float32)])
  np.testing.assert_allclose(unknown_batch(images).numpy(), expected, rtol=1e-6)
  assert set(seen) == {1}
