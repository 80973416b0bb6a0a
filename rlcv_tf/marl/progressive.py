"""Progressive networks PrCNN / PrACNN (thesis Sec. 4.2.3 "Progressive Neural Networks", Fig. 4.1c; spec ch4 §2.8).

A pre-trained predictor (CNN or ACNN from `pretraining`) becomes a FROZEN column: its variables are not trainable
and every activation read from it goes through `stop_gradient`, so RL can never change it. A freshly initialised
RL column of the same kind runs next to it; "the intermediate features [of the frozen column], after a non-linear
function, are concatenated to the corresponding activation from the RL model" (thesis). The thesis does not name
the taps; we follow spec §2.8 [PROPOSAL]:

  1. frozen stack k output -> relu -> concatenated on channels to the INPUT of RL stack k+1 (k = 1..K-1), so the
     first conv of RL stacks 2..K reads twice the channels;
  2. frozen stack K output -> relu -> concatenated to relu(RL stack K output) before Flatten (FC input doubles);
  3. the frozen column's final feature (z for PrCNN, z~ for PrACNN) -> concatenated to the RL column's z / z~
     before the policy, value and predictive heads (heads read 2D). The RL column's attention runs on its own z.

Both columns need the same number of conv stacks (the laterals must match spatially); their widths may differ.
"""

from typing import Optional, Sequence, Tuple

import keras
from keras import ops

from rlcv_tf.marl import attention as attention_lib
from rlcv_tf.marl import networks

PROGRESSIVE_KINDS = {'prcnn': 'cnn', 'pracnn': 'acnn'}


class LateralTorso(networks.ResidualTorso):
  """The RL column's torso: `ResidualTorso` whose stacks 2..K and FC also read the frozen column's laterals.

  The convs build on first call, so the doubled input channels need no special construction. Stack 1 reads the
  observation alone, so its entry conv can be the shared one (`skip_entry`: x is its response already, see
  `networks.torso_input`).
  """

  def call(self, x, laterals, skip_entry: bool = False):
    for k, (entry, pool, res) in enumerate(self.stacks):
      if k > 0:
        x = ops.concatenate([x, laterals[k - 1]], axis=-1)     # tap 1: frozen stack k -> RL stack k+1 input
      x = pool(x if skip_entry and k == 0 else entry(x))
      for conv_a, conv_b in res:
        x = x + conv_b(ops.relu(conv_a(ops.relu(x))))
    x = ops.concatenate([ops.relu(x), laterals[-1]], axis=-1)  # tap 2: frozen stack K -> FC input
    return self.fc(self.flatten(x))


class ProgressiveNetwork(keras.Model):
  """PrCNN / PrACNN: `frozen` (a built, pre-trained `networks.MarlNetwork`) plus a trainable column of `kind`.

  Same call convention and output dict as `networks.MarlNetwork` (attention weights are the RL column's).
  `shared_channels` (see `networks.MarlNetwork`) applies to the first conv of both columns.
  """

  def __init__(self, frozen: networks.MarlNetwork, kind: str, num_actions: int,
               stack_channels: Sequence[Tuple[int, int]] = networks.DEFAULT_STACKS, feature_dim: int = 256,
               num_heads: int = 2, prediction_heads: bool = False, map_hw: Tuple[int, int] = (72, 96),
               attention_out_proj: bool = False, shared_channels: Sequence[int] = (), **kwargs):
    super().__init__(**kwargs)
    if kind not in networks.KINDS:
      raise ValueError(f'kind must be one of {networks.KINDS}, got {kind!r}')
    stack_channels = tuple((int(c), int(n)) for c, n in stack_channels)
    if len(stack_channels) != len(frozen.stack_channels):
      raise ValueError(f'the frozen column has {len(frozen.stack_channels)} conv stacks and the RL column '
                       f'{len(stack_channels)}; lateral connections need the same number')
    self.kind = kind
    self.num_actions = int(num_actions)
    self.stack_channels = stack_channels
    self.feature_dim = int(feature_dim)
    self.num_heads = int(num_heads)
    self.prediction_heads = bool(prediction_heads)
    self.map_hw = (int(map_hw[0]), int(map_hw[1]))
    self.shared_channels = networks.normalise_channels(shared_channels)
    self.frozen = frozen
    self.frozen.trainable = False     # not in trainable_variables: neither Adam nor the tape ever sees it
    self.torso = LateralTorso(stack_channels, self.feature_dim, name='torso')
    self.attention = None
    if kind == 'acnn':
      self.attention = attention_lib.AgentCentricAttention(self.num_heads, attention_out_proj, name='attention')
    networks.build_heads(self)

  def call(self, observations, agent_mask=None, training=False):
    del training
    frozen_feat, _, taps = self.frozen.column_features(observations, agent_mask, self.shared_channels)
    # stop_gradient as well as trainable=False: no gradient may reach the frozen column through the laterals.
    frozen_feat = ops.stop_gradient(frozen_feat)
    laterals = [ops.relu(ops.stop_gradient(t)) for t in taps]
    x, skip, b, n = networks.torso_input(self.torso, observations, self.shared_channels, self.compute_dtype)
    z = ops.reshape(self.torso(x, laterals, skip_entry=skip), (b, n, self.feature_dim))
    weights = None
    if self.attention is not None:
      z, weights = self.attention(z, agent_mask=agent_mask)
    feat = ops.concatenate([z, ops.cast(frozen_feat, z.dtype)], axis=-1)   # tap 3: heads read [z~_rl, z~_frozen]
    return networks.head_outputs(self, feat, weights)

  def rl_column_variables(self):
    """The trainable column's variables (everything but `frozen`)."""
    frozen_ids = {id(v) for v in self.frozen.weights}
    return [v for v in self.weights if id(v) not in frozen_ids]


def build_progressive_network(frozen: networks.MarlNetwork, kind: str, num_actions: int,
                              observation_shape: Tuple[int, int, int, int],
                              map_hw: Optional[Tuple[int, int]] = None, **kwargs) -> ProgressiveNetwork:
  """Creates a `ProgressiveNetwork` around a built frozen column and builds it on zeros of (N, H, W, C)."""
  n, h, w, c = (int(d) for d in observation_shape)
  net = ProgressiveNetwork(frozen, kind, num_actions, map_hw=map_hw or (h, w), **kwargs)
  net(ops.zeros((1, n, h, w, c), 'uint8'))
  return net
