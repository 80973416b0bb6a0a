"""Conditional GAN (cGAN) pieces: the condition vector, and D's three kinds of pairs (issue 15 §2; spec §2.2).

The slide's objective [S3:L180] (its misplaced parenthesis fixed, errata §8.2):

  min_G max_D E_{x,c ~ p_data}[log D(x, c)] + E_{z ~ p_z, c ~ p_data(c)}[log(1 - D(G(z, c), c))]

The thesis' attribute cGAN (T:L5757-5770, Gauthier 2014) adds the mismatched term E_{x != x'}[log(1 - D(x, a(x')))]
so that D also rejects real images shown with the wrong condition; weights (1, 1) there and (0.5, 0.5) in StackGAN
[orig] (`core.gan.CGAN_WEIGHTS`). Wrong conditions come from a derangement of the batch (`core.gan.mismatch_pairs`,
a roll by one), and pairs whose wrong condition equals their own are masked out.

Conditions are float vectors: a one-hot class (`condition_kind='label'`) or an attribute vector in {-1, +1}
('attributes'); G concatenates c with z, D takes it as described in `networks`.
"""

from typing import Dict, Tuple

import numpy as np
import tensorflow as tf

from rlcv_tf.core import gan


def check_condition_array(condition, condition_dim: int, kind: str = 'label') -> np.ndarray:
  """A [N, condition_dim] float32 condition array, or ValueError('condition: ...') naming the expected size.

  kind 'label': rows must be one-hot; 'attributes': entries in {-1, +1}."""
  c = np.asarray(condition, np.float32)
  if c.ndim == 1:
    c = c[None]
  if c.ndim != 2 or c.shape[1] != condition_dim:
    raise ValueError(f'condition: got shape {tuple(np.shape(condition))}, expected [N, {condition_dim}] '
                     f'({"a one-hot class" if kind == "label" else "attributes in {-1, +1}"} of size {condition_dim})')
  if kind == 'label' and not (np.all((c == 0) | (c == 1)) and np.all(c.sum(axis=1) == 1)):
    raise ValueError(f'condition: rows must be one-hot vectors of size {condition_dim}')
  if kind == 'attributes' and not np.all(np.abs(c) == 1):
    raise ValueError(f'condition: attribute vectors take values in {{-1, +1}}, size {condition_dim}')
  return c


def discriminator_pairs(discriminator, real, fake, condition, training=True, shift: int = 1):
  """D's logits on the three kinds of pairs: real (x, c), generated (G(z, c), c), mismatched (x, c[perm]).

  Returns (l_real, l_fake, l_mismatch, valid) with valid bool [B] from `core.gan.mismatch_pairs`."""
  perm, valid = gan.mismatch_pairs(condition, shift)
  wrong = tf.gather(condition, perm)
  l_real = discriminator(real, condition, training=training)
  l_fake = discriminator(fake, condition, training=training)
  l_mismatch = discriminator(real, wrong, training=training)
  return l_real, l_fake, l_mismatch, valid


def discriminator_loss(discriminator, real, fake, condition, weights: Tuple[float, float] = (1.0, 1.0),
                       mismatch: bool = True, training=True) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
  """The cGAN D loss and D's accuracy over the pairs it was scored on (real 1; fake and valid mismatched 0).

  `mismatch=False` gives the slide's two-term objective."""
  l_real, l_fake, l_mismatch, valid = discriminator_pairs(discriminator, real, fake, condition, training)
  w_fake, w_mismatch = weights
  if mismatch:
    loss = gan.conditional_discriminator_loss(l_real, l_fake, l_mismatch, w_fake, w_mismatch, valid)
  else:
    loss = gan.conditional_discriminator_loss(l_real, l_fake, None, w_fake)
  hits = [tf.cast(tf.reshape(l_real, [-1]) > 0, tf.float32), tf.cast(tf.reshape(l_fake, [-1]) <= 0, tf.float32)]
  weights_ = [tf.ones_like(hits[0]), tf.ones_like(hits[1])]
  if mismatch:
    hits.append(tf.cast(tf.reshape(l_mismatch, [-1]) <= 0, tf.float32))
    weights_.append(tf.cast(valid, tf.float32))
  hits, weights_ = tf.concat(hits, 0), tf.concat(weights_, 0)
  accuracy = tf.reduce_sum(hits * weights_) / tf.reduce_sum(weights_)
  return loss, {'d/accuracy': accuracy, 'd/real_logit': tf.reduce_mean(l_real),
                'd/fake_logit': tf.reduce_mean(l_fake), 'd/mismatch_logit': tf.reduce_mean(l_mismatch),
                'd/mismatch_valid': tf.reduce_mean(tf.cast(valid, tf.float32))}
