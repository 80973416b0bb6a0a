"""Chapter 4 networks (thesis Fig. 4.1; spec ch4 §2.3–2.6): one set of weights shared by every agent of a team.

  CNN  (Fig. 4.1a): z_i = f_fc(f_cnn(s_i));  pi_i = f_pi(z_i);  V_i = f_v(z_i).  Agents never exchange information.
  ACNN (Fig. 4.1b, Eq. 4.3): the same torso, then `AgentCentricAttention` across the team's agents, giving z~_i,
       then the same heads on z~_i.
  Predictive heads (Eq. 4.4, optional): row and column logits of the agent's own next-step location,
       Dense(H)(feat_i) and Dense(W)(feat_i), feat = z (CNN) or z~ (ACNN). Softmax / CE live in the loss.

The torso follows SEED RL's football network, which the thesis adapts: four residual conv stacks (16, 32, 32, 32
channels, two residual blocks each, 3x3 max-pool with stride 2), relu, flatten, a 256-unit FC with relu. There is
no LSTM: temporal information comes from the 4-frame stack only (Sec. 4.4.1). lecun_normal kernels, zero biases.

Agents are folded into the batch for the torso ([B, N, ...] -> [B*N, ...]) and unfolded afterwards, so the
variables never depend on N: the same built model runs with any N, also inside a tf.function whose input
signature leaves B and N unknown.

Shared planes (`shared_channels`): the observation channels that are the same for every agent of one team at one
step (GRF's and the stand-in's SMM: left team, right team and ball of every stacked frame; only the `active` plane
is the agent's own; the environment declares them, `base.MultiAgentEnv.shared_channels`). Stack 0's entry conv is
linear, so conv(s_i) = conv(s[shared]) + conv(s_i[own]) + bias with the kernel split along its input channels: the
shared term is computed once per (batch element) from agent 0 and every agent adds its own term (up to float
summation order, the same result). Still one kernel variable, so checkpoints and parameter counts are unchanged
and a model restores into the other. It assumes that the N agents of one call are one team at one step, which is
how every caller uses it (self-play: one call per team, `learner.Learner._forward`). Empty (the default): the plain
conv on all channels, e.g. for DMLab2D Cleanup, where each agent sees itself blue and the others red.

Checkpoints: `tf.train.Checkpoint` does not follow sub-layers kept in Python containers in Keras 3 custom layers,
so the torso's conv layers (held in `self.stacks`) are also given attributes of their own with
`core.tracking.track_sublayers`; without that, restoring a model without its optimizer (`--init_from`, a frozen
progressive column) would silently restore none of the torso.
"""

from typing import Optional, Sequence, Tuple

import keras
from keras import ops

from rlcv_tf.core import tracking
from rlcv_tf.marl import attention as attention_lib

DEFAULT_STACKS = ((16, 2), (32, 2), (32, 2), (32, 2))
KINDS = ('cnn', 'acnn')
_INIT = 'lecun_normal'   # [SEED-RL] kernel initialiser; biases start at zero (Keras default, stated explicitly)


def _conv(channels, name):
  return keras.layers.Conv2D(channels, 3, strides=1, padding='same', kernel_initializer=_INIT,
                             bias_initializer='zeros', name=name)


def _dense(units, name, activation=None):
  return keras.layers.Dense(units, activation=activation, kernel_initializer=_INIT, bias_initializer='zeros',
                            name=name)


def normalise_channels(channels: Sequence[int]) -> Tuple[int, ...]:
  """Sorted, distinct, non-negative channel indices (a `shared_channels` argument) as a tuple of ints."""
  out = tuple(sorted({int(c) for c in channels}))
  if out and out[0] < 0:
    raise ValueError(f'shared_channels must be non-negative channel indices, got {tuple(channels)}')
  return out


def _take_channels(x, channels: Tuple[int, ...], axis: int):
  """x's `channels` along `axis` (non-negative); a strided slice when they are evenly spaced (the `active`
  plane of each stacked frame: 3, 7, 11, 15), a gather otherwise."""
  step = channels[1] - channels[0] if len(channels) > 1 else 1
  if step > 0 and all(b - a == step for a, b in zip(channels, channels[1:])):
    index = [slice(None)] * axis + [slice(channels[0], channels[-1] + 1, step)]
    return x[tuple(index)]
  return ops.take(x, list(channels), axis=axis)


def shared_entry_conv(conv: keras.layers.Conv2D, x, num_agents, shared_channels: Tuple[int, ...]):
  """`conv(x)` for x [B*N, H, W, C] (N agents of one team per batch element), with the response to the channels in
  `shared_channels` computed once per batch element, from agent 0 (module docstring: only valid when those channels
  are equal across the N agents). Reads the layer's own kernel and bias, so it is a drop-in for `conv(x)`."""
  if not conv.built:
    conv.build(tuple(x.shape))
  c = int(x.shape[-1])
  if shared_channels[-1] >= c:
    raise ValueError(f'shared_channels {shared_channels} name channels the {c}-channel observation lacks')
  own_channels = tuple(i for i in range(c) if i not in shared_channels)
  kernel = ops.cast(conv.kernel, x.dtype)                             # [3, 3, C, F]: one variable, split here
  spatial = tuple(x.shape[1:3])
  per_env = ops.reshape(x, (-1, num_agents) + spatial + (c,))[:, 0]   # agent 0 of every batch element
  y = ops.conv(_take_channels(per_env, shared_channels, 3), _take_channels(kernel, shared_channels, 2),
               padding='same')
  if conv.use_bias:
    y = y + ops.cast(conv.bias, y.dtype)                              # [B, H, W, F]: once per batch element
  out_hwf = tuple(y.shape[1:])
  if own_channels:
    own = ops.conv(_take_channels(x, own_channels, 3), _take_channels(kernel, own_channels, 2), padding='same')
    y = ops.reshape(own, (-1, num_agents) + out_hwf) + y[:, None]
  else:                                                               # nothing agent-specific at all
    y = ops.repeat(y[:, None], num_agents, axis=1)
  return ops.reshape(y, (-1,) + out_hwf)


class ResidualTorso(keras.layers.Layer):
  """f_fc(f_cnn(s)) of spec §2.3: residual conv stacks -> relu -> flatten -> Dense(feature_dim) -> relu.

  Each stack is Conv3x3(ch) -> MaxPool(3, stride 2, 'same') -> `blocks` x [x + Conv(relu(Conv(relu(x))))].
  Input: float [B*, H, W, C] in [0, 1]. Output: [B*, feature_dim]. At 72x96 the flatten is 5*6*32 = 960.
  """

  def __init__(self, stack_channels: Sequence[Tuple[int, int]] = DEFAULT_STACKS, feature_dim: int = 256,
               **kwargs):
    super().__init__(**kwargs)
    self.stack_channels = tuple((int(c), int(n)) for c, n in stack_channels)
    self.feature_dim = int(feature_dim)
    self.stacks = []
    for i, (channels, blocks) in enumerate(self.stack_channels):
      entry = _conv(channels, f'stack{i}_conv')
      pool = keras.layers.MaxPooling2D(3, strides=2, padding='same', name=f'stack{i}_pool')
      res = [(_conv(channels, f'stack{i}_res{j}a'), _conv(channels, f'stack{i}_res{j}b')) for j in range(blocks)]
      self.stacks.append((entry, pool, res))
    # Checkpoint keys `stack_layer_<i>` (see the module docstring); weights are not counted twice.
    tracking.track_sublayers(self, 'stack_layer', self.stacks)
    self.flatten = keras.layers.Flatten()
    self.fc = _dense(self.feature_dim, 'fc', activation='relu')

  def first_conv(self, x, num_agents=None, shared_channels: Tuple[int, ...] = ()):
    """Stack 0's entry conv on x [B*N, H, W, C]; with `shared_channels` (and the N of the fold, `num_agents`)
    their response is computed once per batch element (`shared_entry_conv`)."""
    entry = self.stacks[0][0]
    if not shared_channels or num_agents is None:
      return entry(x)
    return shared_entry_conv(entry, x, num_agents, shared_channels)

  def stack_outputs(self, x, num_agents=None, shared_channels: Tuple[int, ...] = ()):
    """The output of every conv stack (before the final relu), in order: the taps of a progressive column."""
    taps = []
    for k, (entry, pool, res) in enumerate(self.stacks):
      x = pool(self.first_conv(x, num_agents, shared_channels) if k == 0 else entry(x))
      for conv_a, conv_b in res:
        # Pre-activation residual block: relu before each conv, identity skip.
        x = x + conv_b(ops.relu(conv_a(ops.relu(x))))
      taps.append(x)
    return taps

  def call(self, x, num_agents=None, shared_channels: Tuple[int, ...] = ()):
    return self.fc(self.flatten(ops.relu(self.stack_outputs(x, num_agents, shared_channels)[-1])))

  def get_config(self):
    return dict(super().get_config(), stack_channels=self.stack_channels, feature_dim=self.feature_dim)


def build_heads(model: keras.Model):
  """Adds the heads every Chapter 4 network reads its per-agent features with (their names are checkpoint
  keys): f_pi (`policy_head`), f_v (`value_head`) and, with `model.prediction_heads`, the Eq. 4.4 row and
  column logits (`row_head`, `col_head`; None otherwise). Reads `num_actions`, `map_hw`, `prediction_heads`."""
  model.policy_head = _dense(model.num_actions, 'policy')
  model.value_head = _dense(1, 'baseline')
  model.row_head = model.col_head = None
  if model.prediction_heads:
    model.row_head = _dense(model.map_hw[0], 'pred_row')
    model.col_head = _dense(model.map_hw[1], 'pred_col')


def head_outputs(model: keras.Model, features, attention_weights=None):
  """The output dict of a network from its per-agent features [B, N, F] (see `MarlNetwork`)."""
  out = {
      'policy_logits': model.policy_head(features),
      'baseline': ops.squeeze(model.value_head(features), -1),
  }
  if attention_weights is not None:
    out['attention'] = attention_weights
  if model.prediction_heads:
    out['pred_row'] = model.row_head(features)
    out['pred_col'] = model.col_head(features)
  return out


class MarlNetwork(keras.Model):
  """CNN or ACNN (Fig. 4.1a/b), with optional agent-centric predictive heads (Eq. 4.4).

  Args:
    kind: 'cnn' (independent agents) or 'acnn' (agent-centric attention, Eq. 4.3).
    num_actions: A, the per-agent discrete action count (19 for GRF, 60 for DMLab2D Cleanup).
    stack_channels: ((channels, residual_blocks), ...) of the torso.
    feature_dim: width D of the FC feature z (256 in the thesis); also the attention width.
    num_heads: attention heads (2 in the thesis; d_k = D / num_heads).
    prediction_heads: add the row/column location heads of Eq. 4.4.
    map_hw: (H, W) bins of those heads, i.e. the map size (72, 96 at paper scale).
    attention_out_proj: W_O after the head concat (not in Eq. 4.3; off by default).
    shared_channels: observation channels equal for the N agents of a call (the environment's
      `shared_channels`); their first-conv response is computed once per batch element (module docstring).
      Empty: the plain conv. Changes no variable.

  `call(observations, agent_mask=None, training=False)`: observations uint8 [B, N, H, W, C] (scaled by 1/255
  here) or float already in [0, 1]; agent_mask optional bool [B, N] (ACNN masks absent agents' keys; CNN agents
  are independent so it has nothing to do there). Returns a dict:
    policy_logits [B, N, A], baseline [B, N],
    attention [B, heads, N, N]                 (ACNN only),
    pred_row [B, N, H], pred_col [B, N, W]     (logits; only with prediction_heads).
  """

  def __init__(self, kind: str, num_actions: int, stack_channels: Sequence[Tuple[int, int]] = DEFAULT_STACKS,
               feature_dim: int = 256, num_heads: int = 2, prediction_heads: bool = False,
               map_hw: Tuple[int, int] = (72, 96), attention_out_proj: bool = False,
               shared_channels: Sequence[int] = (), **kwargs):
    super().__init__(**kwargs)
    if kind not in KINDS:
      raise ValueError(f'kind must be one of {KINDS}, got {kind!r}')
    self.kind = kind
    self.shared_channels = normalise_channels(shared_channels)
    self.num_actions = int(num_actions)
    self.stack_channels = tuple((int(c), int(n)) for c, n in stack_channels)
    self.feature_dim = int(feature_dim)
    self.num_heads = int(num_heads)
    self.prediction_heads = bool(prediction_heads)
    self.map_hw = (int(map_hw[0]), int(map_hw[1]))
    self.attention_out_proj = bool(attention_out_proj)

    self.torso = ResidualTorso(self.stack_channels, self.feature_dim, name='torso')
    self.attention = None
    if kind == 'acnn':
      self.attention = attention_lib.AgentCentricAttention(self.num_heads, self.attention_out_proj,
                                                           name='attention')
    build_heads(self)

  def fold(self, observations):
    """uint8/float [B, N, H, W, C] -> float [B*N, H, W, C] in [0, 1], plus the dynamic B and N."""
    x = observations
    if keras.backend.standardize_dtype(x.dtype) == 'uint8':
      x = ops.cast(x, self.compute_dtype) / 255.0       # spec §2.1: the model input is float32(obs) / 255
    else:
      x = ops.cast(x, self.compute_dtype)
    shape = ops.shape(x)
    # Fold agents into the batch: every agent gets its own pass through the same torso weights. H, W, C must be
    # static (the FC kernel size depends on them); B and N may be dynamic tensors here.
    hwc = tuple(x.shape[2:])
    if any(d is None for d in hwc):
      raise ValueError(f'observation H, W, C must be static, got {x.shape}')
    return ops.reshape(x, (-1,) + hwc), shape[0], shape[1]

  def column_features(self, observations, agent_mask=None, shared_channels: Optional[Sequence[int]] = None):
    """`features` plus the torso's per-stack outputs [B*N, h_k, w_k, c_k] (the laterals of a progressive net).
    `shared_channels` replaces the network's own (a progressive network passes its own to its frozen column)."""
    if shared_channels is None:
      shared_channels = self.shared_channels
    x, b, n = self.fold(observations)
    taps = self.torso.stack_outputs(x, n, normalise_channels(shared_channels))
    z = self.torso.fc(self.torso.flatten(ops.relu(taps[-1])))
    z = ops.reshape(z, (b, n, self.feature_dim))
    if self.attention is None:
      return z, None, taps
    feat, weights = self.attention(z, agent_mask=agent_mask)
    return feat, weights, taps

  def features(self, observations, agent_mask=None):
    """Per-agent features read by the heads (z for CNN, z~ for ACNN) and the attention weights (None for CNN)."""
    x, b, n = self.fold(observations)
    z = ops.reshape(self.torso(x, num_agents=n, shared_channels=self.shared_channels),
                    (b, n, self.feature_dim))
    if self.attention is None:
      return z, None
    return self.attention(z, agent_mask=agent_mask)

  def call(self, observations, agent_mask=None, training=False):
    del training  # no dropout / batch norm anywhere; accepted for the Keras calling convention
    feat, weights = self.features(observations, agent_mask)
    return head_outputs(self, feat, weights)

  def get_config(self):
    return dict(super().get_config(), kind=self.kind, num_actions=self.num_actions,
                stack_channels=self.stack_channels, feature_dim=self.feature_dim, num_heads=self.num_heads,
                prediction_heads=self.prediction_heads, map_hw=self.map_hw,
                attention_out_proj=self.attention_out_proj, shared_channels=self.shared_channels)


def build_network(kind: str, num_actions: int, observation_shape: Tuple[int, int, int, int],
                  map_hw: Optional[Tuple[int, int]] = None, **kwargs) -> MarlNetwork:
  """Creates a `MarlNetwork` and its variables for observations of shape (N, H, W, C).

  The variables do not depend on N; it is only used for the one build call on zeros. `map_hw` defaults to the
  observation's (H, W), so the predictive heads (if requested) match the map (spec §2.6).
  """
  n, h, w, c = (int(d) for d in observation_shape)
  net = MarlNetwork(kind, num_actions, map_hw=map_hw or (h, w), **kwargs)
  net(ops.zeros((1, n, h, w, c), 'uint8'))
  return net
