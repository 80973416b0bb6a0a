"""The seed-001 actor-critic on VAE features (Fig. 2; Tables 2/3, S:L526-556; spec Sec. 2.3-2.4).

One encoder (the VAE's, shared weights) runs on each of the n stacked frames: [B, S, S, n] -> [B*n, S, S, 1] ->
mu [B*n, d] -> U = concat(mu_1 .. mu_n) [B, n*d], oldest frame first (the frame stack's channel order). PPO always
reads the posterior means, never samples (S:L266-268: "gradients coming from Z and h1 are added" at the encoder;
Z is the sampled code the decoder reads, h1 the trunk's first layer that reads U).

U -> Dense(64, tanh) -> Dense(64, tanh) -> policy logits Dense(|A|) and value Dense(1): one trunk shared by the two
heads (spec A9). Orthogonal initialisation, gain sqrt(2) for the trunk, 0.01 for the policy head, 1 for the value
head (OpenAI-baselines' ppo2, whose defaults Tables 2/3 match; a proposal).
"""

import math
from typing import Sequence, Tuple

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from rlcv_tf.core import tracking
from rlcv_tf.vae_pg import vae as vae_lib

tfd = tfp.distributions


def frames_to_units(frames) -> tf.Tensor:
  """[B, S, S, n] -> [B*n, S, S, 1], frame i of sample b at row b*n + i (oldest first)."""
  x = vae_lib.frames_to_float(frames)
  shape = tf.shape(x)
  b, s1, s2, n = shape[0], shape[1], shape[2], shape[3]
  x = tf.transpose(x, (0, 3, 1, 2))
  return tf.reshape(x, tf.stack([b * n, s1, s2, 1]))


class ActorCritic(keras.Model):
  """frames uint8 [B, S, S, n] -> (logits [B, A], value [B], U [B, n*d]) (module docstring)."""

  def __init__(self, encoder: vae_lib.Encoder, num_actions: int, num_frames: int, latent_dim: int,
               hidden: Sequence[int] = (64, 64), name: str = 'actor_critic'):
    super().__init__(name=name)
    self.encoder = encoder
    self.num_actions = int(num_actions)
    self.num_frames = int(num_frames)
    self.latent_dim = int(latent_dim)
    ortho = keras.initializers.Orthogonal
    self.trunk = [keras.layers.Dense(h, activation='tanh', kernel_initializer=ortho(math.sqrt(2.0)),
                                     name=f'h{i + 1}') for i, h in enumerate(hidden)]
    self.policy_head = keras.layers.Dense(num_actions, kernel_initializer=ortho(0.01), name='policy')
    self.value_head = keras.layers.Dense(1, kernel_initializer=ortho(1.0), name='value')
    tracking.track_sublayers(self, 'trunk', self.trunk)    # tf.train.Checkpoint does not see Keras lists

  def features(self, frames) -> tf.Tensor:
    """U = concat of the posterior means of the n frames, [B, n*d]."""
    mu, _ = self.encoder(frames_to_units(frames))
    return tf.reshape(mu, (-1, self.num_frames * self.latent_dim))

  def heads(self, u) -> Tuple[tf.Tensor, tf.Tensor]:
    h = u
    for layer in self.trunk:
      h = layer(h)
    return self.policy_head(h), self.value_head(h)[:, 0]

  def call(self, frames, freeze_encoder: bool = False):
    u = self.features(frames)
    if freeze_encoder:
      u = tf.stop_gradient(u)
    logits, value = self.heads(u)
    return logits, value, u

  def head_variables(self):
    """The trunk's and the two heads' variables (the MLP of Fig. 2)."""
    out = []
    for layer in self.trunk + [self.policy_head, self.value_head]:
      out.extend(layer.trainable_variables)
    return out

  def build_all(self, image_size: int) -> 'ActorCritic':
    self(tf.zeros((1, image_size, image_size, self.num_frames), tf.uint8))
    return self


def distribution(logits) -> tfd.Categorical:
  return tfd.Categorical(logits=logits)
