"""Chapter 4 networks (Fig. 4.1): one set of weights shared by every agent of a team.

  CNN  (Fig. 4.1a): z_i = f_fc(f_cnn(s_i)); pi_i = f_pi(z_i); V_i = f_v(z_i). Agents never exchange information.
  ACNN (Fig. 4.1b, Eq. 4.3): the same torso, then `AgentCentricAttention` across the team's agents, then heads.

The torso follows SEED RL's football network, which the thesis adapts: four residual conv stacks (16, 32, 32,
32 channels, two residual blocks each, 3x3 max-pool with stride 2), relu, flatten, a 256-unit FC. There is no
LSTM: temporal information comes from the 4-frame stack only (Sec. 4.4.1). lecun_normal kernels, zero biases.
Agents are folded into the batch for the torso ([B, N, ...] -> [B*N, ...]), so N may change between calls.
"""

from typing import Sequence, Tuple

import keras
from keras import ops

from rlcv_tf.marl import attention as attention_lib

DEFAULT_STACKS = ((16, 2), (32, 2), (32, 2), (32, 2))
_INIT = 'lecun_normal'


class ResidualTorso(keras.layers.Layer):
  """f_fc(f_cnn(s)): residual conv stacks -> relu -> flatten -> Dense(feature_dim) -> relu."""

  def __init__(self, stack_channels: Sequence[Tuple[int, int]] = DEFAULT_STACKS, feature_dim: int = 256, **kwargs):
    super().__init__(**kwargs)
    self.stack_channels = tuple(tuple(s) for s in stack_channels)
    self.feature_dim = feature_dim
    self.stacks = []
    for i, (channels, blocks) in enumerate(self.stack_channels):
      entry = keras.layers.Conv2D(channels, 3, padding='same', kernel_initializer=_INIT, name=f'stack{i}_conv')
      pool = keras.layers.MaxPooling2D(3, strides=2, padding='same', name=f'stack{i}_pool')
      res = [(keras.layers.Conv2D(channels, 3, padding='same', kernel_initializer=_INIT, name=f'stack{i}_res{j}a'),
              keras.layers.Conv2D(channels, 3, padding='same', kernel_initializer=_INIT, name=f'stack{i}_res{j}b'))
             for j in range(blocks)]
      self.stacks.append((entry, pool, res))
    self.flatten = keras.layers.Flatten()
    self.fc = keras.layers.Dense(feature_dim, activation='relu', kernel_initializer=_INIT, name='fc')

  def call(self, x):
    for entry, pool, res in self.stacks:
      x = pool(entry(x))
      for conv_a, conv_b in res:
        x = x + conv_b(ops.relu(conv_a(ops.relu(x))))
    return self.fc(self.flatten(ops.relu(x)))

  def get_config(self):
    return dict(super().get_config(), stack_channels=self.stack_channels, feature_dim=self.feature_dim)


class MarlNetwork(keras.Model):
  """CNN or ACNN. `call(observations [B, N, H, W, C], agent_mask=None)` returns a dict:
  policy_logits [B, N, A], baseline [B, N], and for ACNN attention [B, heads, N, N]."""

  def __init__(self, kind: str, num_actions: int, stack_channels=DEFAULT_STACKS, feature_dim: int = 256,
               num_heads: int = 2, attention_out_proj: bool = False, **kwargs):
    super().__init__(**kwargs)
    if kind not in ('cnn', 'acnn'):
      raise ValueError(f'kind must be cnn or acnn, got {kind!r}')
    self.kind = kind
    self.num_actions = num_actions
    self.torso = ResidualTorso(stack_channels, feature_dim, name='torso')
    self.attention = attention_lib.AgentCentricAttention(num_heads, attention_out_proj, name='attention') \
        if kind == 'acnn' else None
    self.policy_head = keras.layers.Dense(num_actions, kernel_initializer=_INIT, name='policy')
    self.value_head = keras.layers.Dense(1, kernel_initializer=_INIT, name='baseline')

  def features(self, observations, agent_mask=None):
    """Per-agent features fed to the heads (z for CNN, z~ for ACNN) and the attention weights (or None)."""
    x = observations
    if x.dtype == 'uint8':
      x = ops.cast(x, 'float32') / 255.0
    shape = ops.shape(x)
    b, n = shape[0], shape[1]
    z = self.torso(ops.reshape(x, (b * n,) + tuple(x.shape[2:])))
    z = ops.reshape(z, (b, n, z.shape[-1]))
    if self.attention is None:
      return z, None
    return self.attention(z, agent_mask=agent_mask)

  def call(self, observations, agent_mask=None, training=False):
    feat, weights = self.features(observations, agent_mask)
    out = {'policy_logits': self.policy_head(feat), 'baseline': ops.squeeze(self.value_head(feat), -1)}
    if weights is not None:
      out['attention'] = weights
    return out


def build_network(kind: str, num_actions: int, observation_shape, **kwargs) -> MarlNetwork:
  """Creates a network and its variables for observations of shape (N, H, W, C)."""
  net = MarlNetwork(kind, num_actions, **kwargs)
  net(ops.zeros((1,) + tuple(observation_shape), 'uint8'))
  return net
