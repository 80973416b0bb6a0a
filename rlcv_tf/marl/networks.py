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


def scale_observations(x, dtype):
  """uint8 observations -> float in [0, 1] (spec §2.1: the model input is float32(obs) / 255); float ones are taken
  to be in [0, 1] already and only cast."""
  if keras.backend.standardize_dtype(x.dtype) == 'uint8':
    return ops.cast(x, dtype) / 255.0
  return ops.cast(x, dtype)


def _static_hwc(observations) -> Tuple[int, int, int]:
  # H, W, C must be static (the FC kernel size depends on them); B and N may be dynamic tensors.
  hwc = tuple(observations.shape[2:])
  if len(hwc) != 3 or any(d is None for d in hwc):
    raise ValueError(f'observation H, W, C must be static, got {observations.shape}')
  return hwc


def fold_observations(observations, dtype):
  """uint8/float [B, N, H, W, C] -> float [B*N, H, W, C] in [0, 1], plus the dynamic B and N. Folding the agents
  into the batch gives every agent its own pass through the same torso weights."""
  hwc = _static_hwc(observations)
  shape = ops.shape(observations)
  return ops.reshape(scale_observations(observations, dtype), (-1,) + hwc), shape[0], shape[1]


def _take_channels(x, channels: Sequence[int]):
  """x[..., channels] for sorted channel indices. Where they repeat with a period P (the same planes of every
  stacked frame: SMM planes 0-2, or plane 3, of each 4-plane frame) and are contiguous within it, a slice of x
  viewed as [..., C / P, P], several times faster on CPU than a gather along the last axis; a gather otherwise."""
  c = int(x.shape[-1])
  chosen = set(channels)
  for period in (p for p in range(1, c + 1) if c % p == 0):
    within = [p for p in range(period) if p in chosen]
    if (within and within[-1] - within[0] + 1 == len(within)
        and all((i % period in within) == (i in chosen) for i in range(c))):
      lead = tuple(ops.shape(x)[:-1])
      view = ops.reshape(x, lead + (c // period, period))[..., within[0]:within[-1] + 1]
      return ops.reshape(view, lead + (len(chosen),))
  return ops.take(x, list(channels), axis=-1)


def shared_entry_conv(conv: keras.layers.Conv2D, observations, shared_channels: Tuple[int, ...], dtype):
  """`conv` on every agent's observation, uint8/float [B, N, H, W, C] -> [B*N, H, W, F], with the response to the
  channels in `shared_channels` computed once per batch element, from agent 0 (module docstring: only valid where
  those channels are equal across the N agents). Channels are picked before the uint8 -> float scaling, so the
  whole observation is never converted. Reads the layer's own kernel and bias: a drop-in for the folded conv."""
  h, w, c = _static_hwc(observations)
  if shared_channels[-1] >= c:
    raise ValueError(f'shared_channels {shared_channels} name channels the {c}-channel observation lacks')
  n = ops.shape(observations)[1]
  if not conv.built:
    conv.build((None, h, w, c))
  shared = list(shared_channels)
  own = [i for i in range(c) if i not in set(shared)]
  kernel = ops.cast(conv.kernel, dtype)                                # [3, 3, C, F]: one variable, split here
  y = ops.conv(scale_observations(_take_channels(observations[:, 0], shared), dtype),
               ops.take(kernel, shared, axis=2), padding='same')       # [B, H, W, F]: agent 0 of every element
  if conv.use_bias:
    y = y + ops.cast(conv.bias, dtype)
  out_hwf = tuple(y.shape[1:])
  if own:
    own_in = ops.reshape(scale_observations(_take_channels(observations, own), dtype), (-1, h, w, len(own)))
    y = ops.reshape(ops.conv(own_in, ops.take(kernel, own, axis=2), padding='same'), (-1, n) + out_hwf) + y[:, None]
  else:                                                                # nothing agent-specific at all
    y = ops.repeat(y[:, None], n, axis=1)
  return ops.reshape(y, (-1,) + out_hwf)


def torso_input(torso: 'ResidualTorso', observations, shared_channels: Tuple[int, ...], dtype):
  """What `torso` reads for observations [B, N, H, W, C]: (x, skip_entry, B, N). x is the folded float observations
  [B*N, H, W, C], or, with `shared_channels`, already stack 0's entry conv response (`skip_entry` True)."""
  if not shared_channels:
    x, b, n = fold_observations(observations, dtype)
    return x, False, b, n
  entry = torso.stacks[0][0]
  if not entry.built:
    # Built where the torso's own call would build it, so its variables keep their paths (`.../torso/stack0_conv`).
    with keras.name_scope(torso.name, caller=torso):
      entry.build((None,) + _static_hwc(observations))
  shape = ops.shape(observations)
  return shared_entry_conv(entry, observations, shared_channels, dtype), True, shape[0], shape[1]


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

  def stack_outputs(self, x, skip_entry: bool = False):
    """The output of every conv stack (before the final relu), in order: the taps of a progressive column.
    `skip_entry`: x is stack 0's entry conv response already (the shared first conv, `torso_input`)."""
    taps = []
    for k, (entry, pool, res) in enumerate(self.stacks):
      x = pool(x if skip_entry and k == 0 else entry(x))
      for conv_a, conv_b in res:
        # Pre-activation residual block: relu before each conv, identity skip.
        x = x + conv_b(ops.relu(conv_a(ops.relu(x))))
      taps.append(x)
    return taps

  def call(self, x, skip_entry: bool = False):
    return self.fc(self.flatten(ops.relu(self.stack_outputs(x, skip_entry)[-1])))

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
    return fold_observations(observations, self.compute_dtype)

  def column_features(self, observations, agent_mask=None, shared_channels: Optional[Sequence[int]] = None):
    """`features` plus the torso's per-stack outputs [B*N, h_k, w_k, c_k] (the laterals of a progressive net).
    `shared_channels` replaces the network's own (a progressive network passes its own to its frozen column)."""
    if shared_channels is None:
      shared_channels = self.shared_channels
    x, skip, b, n = torso_input(self.torso, observations, normalise_channels(shared_channels), self.compute_dtype)
    taps = self.torso.stack_outputs(x, skip)
    z = self.torso.fc(self.torso.flatten(ops.relu(taps[-1])))
    z = ops.reshape(z, (b, n, self.feature_dim))
    if self.attention is None:
      return z, None, taps
    feat, weights = self.attention(z, agent_mask=agent_mask)
    return feat, weights, taps

  def features(self, observations, agent_mask=None):
    """Per-agent features read by the heads (z for CNN, z~ for ACNN) and the attention weights (None for CNN)."""
    x, skip, b, n = torso_input(self.torso, observations, self.shared_channels, self.compute_dtype)
    z = ops.reshape(self.torso(x, skip_entry=skip), (b, n, self.feature_dim))
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
