"""Chapter 3's networks (spec ch3 §3.3-3.7): the grid encoder with a split first convolution, the goal-conditioned
policy pi_g, the Worker, the flat A2C baseline, the Wide-then-Narrow Manager and the Feudal (FN) baseline's Manager,
and the "+pi_g-init" transfer of the state encoder. Keras 3; the policies are `tfp.distributions.Categorical`.

The thesis gives no layer sizes (spec A6; its code folder is not available): every size here is the spec's [P].
Thesis citations are T:Lnnnn (lines of shared/seeds/000_c47052dd0852ee6d.txt).

Inputs. Observations are the maze's uint8 [B, H, W, 9] planes (`envs/maze.py`); the networks cast them to float32
and add two coordinate planes r/(H-1), c/(W-1) themselves, giving the 11 state channels X_s (spec §3.4). Goal and map
planes X_e are float32 [B, H, W, k_extra] (`goal_planes`, `worker_planes`, `waypoint_map` build them from cells).
Cells are (row, col) int pairs.

GridEncoder (spec §3.4), out sizes for small 13x13 at the full sizes (cpu profile: 16/16/32/32, Dense 128):
    conv1  Conv_s(X_s) + Conv_e(X_e), 3x3, stride 1, same, 32 (Conv_e has no bias), LeakyReLU(0.01)   13x13x32
    conv2  3x3, stride 1, same, 32, LeakyReLU                                                            13x13x32
    conv3  3x3, stride 2, same, 64, LeakyReLU                                                            7x7x64
    conv4  3x3, stride 2, same, 64, LeakyReLU                                                            4x4x64
    fc     Flatten -> Dense(256), LeakyReLU                                                              256
A sum of two convolutions is one convolution over the concatenated channels; the split lets the state encoder
{Conv_s, conv2, conv3, conv4, fc} move between networks with different goal planes. conv1 is computed as that one
convolution over [X_s || X_e] with the kernels of Conv_s and Conv_e stacked (see `GridEncoder.call` for why).

Recurrent actor-critics (pi_g §3.3, Worker §3.5, flat A2C §3.7): GridEncoder(k_extra) -> LSTMCell ->
[FC1 || FC2] (Dense + LeakyReLU each, both on h_t; Ch. 2's A3C-LSTM two-branch head) -> policy logits Dense(A) and
value Dense(1). k_extra = 1 (pi_g: the goal plane), 2 (Worker: wide goal plane, narrow goal plane), 0 (flat A2C).
Acting: `step(obs, extra, state, reset)` with an explicit LSTM state {'h', 'c'}; `reset` [B] zeroes the incoming
state (a new rollout for pi_g, a new subgoal pair for the Worker [P], a new episode). Training: `unroll(obs [T, B],
extra [T, B], initial_state, reset [T, B])` replays a stored rollout from its stored initial state (stop-gradient),
zeroing the state before every step whose reset flag is set; the encoder and heads run on all T*B inputs at once and
only the LSTMCell steps through time.

Wide-then-Narrow Manager (spec §3.6; T:L2437-2452; Alg. 7, T:L3039-3062: z_m = f_LSTM(CNN(s_m, s_V), h_m)):
GridEncoder(k_extra=1) with the waypoint map s_V (1 on the V_p cells, which the Manager holds in a non-trainable
variable, `set_waypoint_cells`) -> LSTMCell, which advances only at Manager decision steps: the caller calls `step`
only then, and `unroll` takes an `advance` [T, B] flag (the decision mask) that holds the state in between. Heads on
h_m:
  value V_m = Dense(1);
  wide pi^w(g^w | s) = softmax(Dense(|V_p|)) over waypoint indices;
  narrow pi^n(g^n | s, g^w, s_w): [h_m || flatten(s_w) || Dense(32)(one-hot(g^w index))] -> Dense(128, leaky) ->
    Dense(N^2) logits over the N x N window centred on g^w; s_w is the N x N x 11 crop of the state planes around
    g^w, cells outside the grid padded as wall (wall plane 1, other object planes 0, coordinate planes continued
    past the border). Wall and outside cells get logit -1e9 (probability 0), so g^n is a free cell within
    Chebyshev distance (N-1)/2 of g^w (the thesis's epsilon-net, T:L2448-2449; N = 5 small/medium, 7 large,
    T:L3091-3093). The wall
    plane is read from the observation, so Door-Key's divider is masked too; lava, locked doors and objects are not.
  joint log-prob log pi^w(g^w) + log pi^n(g^n | g^w); entropy surrogate H(pi^w) + H(pi^n(. | g^w)) (T:L3007-3036:
  the exact entropy over O(|V| N^2) pairs is avoided).
Window index k in [0, N^2) <-> offset (k // N - (N-1)/2, k % N - (N-1)/2) from g^w (`window_offsets`).

FN Manager (spec §3.7, Fig. 3.3 left): GridEncoder(k_extra=0) -> LSTMCell -> value and one categorical over the
grid's H*W cells with the wall cells (of the observation's wall plane) masked to -1e9, i.e. a categorical over
S_free; the action is the flat cell index r*W + c.

Transfer ("+pi_g-init", spec §3.4; T:L2432-2435 "the feature extraction layers of the Manager and Worker that encode
s_t are initialized with the corresponding layers from pi_g", App. 3.B T:L2928-2945): `transfer_state_encoder(pi_g,
dst)` copies {Conv_s, conv2-4, fc} exactly (variable assignment, bitwise); the LSTM, the heads and Conv_e stay as
initialised. Decision on the spec's [P] extra (the Worker's narrow-goal Conv_e kernel <- pi_g's goal kernel): off by
default, so the function does exactly what the thesis states; pass `goal_plane=Worker.NARROW_PLANE` to copy pi_g's
goal kernel into that input plane of dst's Conv_e as well (what spec §3.4 proposes for the Worker's pi_g-init). The
wide-goal kernel and the Manager's map kernel keep their Glorot initialisation. The Dense layer's input size depends
on H x W, so the transfer needs the same maze (the persistent world) and the same sizes; a mismatch is a ValueError
naming the layer.

Initialisation [P]: Keras defaults (Glorot uniform kernels, zero biases, LSTMCell with forget-gate bias 1), except
the policy heads (pi, pi^w, pi^n, FN), whose kernels are orthogonal with gain 0.01 so the first policies are near
uniform over the valid actions.
"""

import dataclasses
from typing import Any, Dict, NamedTuple, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from keras import ops

from rlcv_tf.core import layers as layers_lib
from rlcv_tf.envs import maze

tfd = tfp.distributions

NUM_OBS_PLANES = maze.NUM_PLANES       # 9 object planes from the env
NUM_STATE_CHANNELS = NUM_OBS_PLANES + 2  # + the two coordinate planes
WALL_CHANNEL = maze.WALL_PLANE
MASKED_LOGIT = -1e9
ACTION_COUNTS = (4, 6)                 # the four moves; Door-Key adds pick and toggle


@dataclasses.dataclass(frozen=True)
class NetworkSizes:
  """Layer sizes (spec §3.4-3.6 and §6; all [P])."""
  filters: Tuple[int, int, int, int] = (32, 32, 64, 64)
  dense: int = 256
  lstm: int = 256
  fc: int = 128
  narrow_hidden: int = 128
  waypoint_embedding: int = 32
  leaky_slope: float = 0.01

  def __post_init__(self):
    object.__setattr__(self, 'filters', tuple(int(f) for f in self.filters))
    if len(self.filters) != 4 or min(self.filters) < 1:
      raise ValueError(f'filters must be 4 positive counts (conv1..conv4), got {self.filters}')
    for name in ('dense', 'lstm', 'fc', 'narrow_hidden', 'waypoint_embedding'):
      if int(getattr(self, name)) < 1:
        raise ValueError(f'{name} must be a positive size, got {getattr(self, name)}')


FULL_SIZES = NetworkSizes()                                                       # spec §3.4 / §6 "full"
CPU_SIZES = NetworkSizes(filters=(16, 16, 32, 32), dense=128, lstm=128, fc=64)   # spec §6 CPU column


def _leaky(x, slope):
  return layers_lib.leaky_relu(x, slope)      # its gradient reads the output: no "remapper failed" line


def _policy_kernel():
  return keras.initializers.Orthogonal(gain=0.01)


def _grid_shape(grid_shape) -> Tuple[int, int]:
  shape = tuple(int(d) for d in grid_shape)
  if len(shape) != 2 or min(shape) < 2:
    raise ValueError(f'grid_shape must be (H, W) with H, W >= 2, got {grid_shape!r}')
  return shape


# ------------------------------------------------------------------------------------------------ planes

def _check_observation(observation, grid_shape=None):
  shape = observation.shape
  if shape.rank != 4 or shape[-1] != NUM_OBS_PLANES:
    raise ValueError(f'observation must be the maze planes [B, H, W, {NUM_OBS_PLANES}] (envs/maze.py), got shape '
                     f'{shape}')
  if grid_shape is not None and tuple(shape[1:3]) != tuple(grid_shape):
    raise ValueError(f'observation grid {tuple(shape[1:3])} does not match the network\'s grid_shape {grid_shape}; '
                     f'build the network for this maze')


def coordinate_planes(height: int, width: int, row_pad: int = 0, col_pad: int = 0) -> tf.Tensor:
  """[H + 2 row_pad, W + 2 col_pad, 2] float32: r / (H - 1) and c / (W - 1) for r in -row_pad .. H - 1 + row_pad."""
  rows = (np.arange(-row_pad, height + row_pad, dtype=np.float32) / max(height - 1, 1))
  cols = (np.arange(-col_pad, width + col_pad, dtype=np.float32) / max(width - 1, 1))
  r, c = np.meshgrid(rows, cols, indexing='ij')
  return tf.constant(np.stack([r, c], axis=-1))


def state_planes(observation) -> tf.Tensor:
  """The 11 state channels X_s, float32 [B, H, W, 11]: the 9 observation planes then r/(H-1), c/(W-1)."""
  observation = tf.convert_to_tensor(observation)
  _check_observation(observation)
  obs = tf.cast(observation, tf.float32)
  height, width = observation.shape[1], observation.shape[2]
  coords = coordinate_planes(height, width)
  coords = tf.broadcast_to(coords[tf.newaxis], tf.concat([tf.shape(obs)[:1], [height, width, 2]], 0))
  return tf.concat([obs, coords], axis=-1)


def _check_cells_array(cells, grid_shape, name):
  if not isinstance(cells, (list, tuple, np.ndarray)):
    return                            # tensors and variables: checked by the caller or not at all
  arr = np.asarray(cells)
  if arr.ndim < 1 or arr.shape[-1] != 2:
    raise ValueError(f'{name} must be (row, col) pairs [..., 2], got shape {arr.shape}')
  bad = (arr[..., 0] < 0) | (arr[..., 0] >= grid_shape[0]) | (arr[..., 1] < 0) | (arr[..., 1] >= grid_shape[1])
  if np.any(bad):
    first = tuple(int(v) for v in arr[bad][0])
    raise ValueError(f'{name}: cell {first} lies outside the {grid_shape[0]}x{grid_shape[1]} grid; cells are '
                     f'(row, col) with 0 <= row < H and 0 <= col < W')


def cell_planes(cells, grid_shape) -> tf.Tensor:
  """One-hot planes float32 [B, H, W, 1] with a 1 at each env's cell (cells: int [B, 2])."""
  grid_shape = _grid_shape(grid_shape)
  _check_cells_array(cells, grid_shape, 'cells')
  cells = tf.cast(tf.convert_to_tensor(cells), tf.int32)
  flat = cells[:, 0] * grid_shape[1] + cells[:, 1]
  return tf.reshape(tf.one_hot(flat, grid_shape[0] * grid_shape[1], dtype=tf.float32), (-1,) + grid_shape + (1,))


def goal_planes(goal_cells, grid_shape) -> tf.Tensor:
  """pi_g's extra plane: the goal, [B, H, W, 1]."""
  return cell_planes(goal_cells, grid_shape)


def worker_planes(wide_cells, narrow_cells, grid_shape) -> tf.Tensor:
  """The Worker's extra planes [B, H, W, 2]: plane 0 the wide goal g^w, plane 1 the narrow goal g^n."""
  return tf.concat([cell_planes(wide_cells, grid_shape), cell_planes(narrow_cells, grid_shape)], axis=-1)


def waypoint_map(cells, grid_shape) -> tf.Tensor:
  """s_V: float32 [H, W], 1 on the waypoint cells (cells: int [V, 2])."""
  grid_shape = _grid_shape(grid_shape)
  _check_cells_array(cells, grid_shape, 'waypoint cells')
  cells = tf.cast(tf.convert_to_tensor(cells), tf.int32)
  flat = cells[:, 0] * grid_shape[1] + cells[:, 1]
  hits = tf.reduce_max(tf.one_hot(flat, grid_shape[0] * grid_shape[1], dtype=tf.float32), axis=0)
  return tf.reshape(hits, grid_shape)


# ------------------------------------------------------------------------------------------------ encoder

class GridEncoder(keras.layers.Layer):
  """Split-first-conv CNN (module docstring). `call(observation uint8 [B, H, W, 9], extra float [B, H, W, k])`."""

  def __init__(self, filters: Sequence[int] = FULL_SIZES.filters, dense: int = FULL_SIZES.dense, k_extra: int = 0,
               leaky_slope: float = 0.01, **kwargs):
    super().__init__(**kwargs)
    filters = tuple(int(f) for f in filters)
    if len(filters) != 4:
      raise ValueError(f'filters must list conv1..conv4, got {filters}')
    if int(k_extra) < 0:
      raise ValueError(f'k_extra must be >= 0, got {k_extra}')
    self.filters, self.units, self.k_extra, self.leaky_slope = filters, int(dense), int(k_extra), float(leaky_slope)
    conv = keras.layers.Conv2D
    self.conv_s = conv(filters[0], 3, strides=1, padding='same', name='conv_s')
    self.conv_e = (conv(filters[0], 3, strides=1, padding='same', use_bias=False, name='conv_e')
                   if self.k_extra else None)
    self.conv2 = conv(filters[1], 3, strides=1, padding='same', name='conv2')
    self.conv3 = conv(filters[2], 3, strides=2, padding='same', name='conv3')
    self.conv4 = conv(filters[3], 3, strides=2, padding='same', name='conv4')
    self.flatten = keras.layers.Flatten(name='flatten')
    self.dense = keras.layers.Dense(self.units, name='dense')

  def state_encoder_layers(self) -> Dict[str, keras.layers.Layer]:
    """The layers `transfer_state_encoder` copies: Conv_s, conv2, conv3, conv4, fc."""
    return {'conv_s': self.conv_s, 'conv2': self.conv2, 'conv3': self.conv3, 'conv4': self.conv4,
            'dense': self.dense}

  def call(self, observation, extra=None):
    observation = tf.convert_to_tensor(observation)
    x = state_planes(observation)
    if not self.conv_s.built:
      self.conv_s.build(tuple(x.shape))
    kernel = self.conv_s.kernel
    if self.k_extra:
      if extra is None:
        raise ValueError(f'this encoder takes {self.k_extra} extra plane(s) [B, H, W, {self.k_extra}]; got none')
      extra = ops.cast(extra, 'float32')
      if extra.shape.rank != 4 or extra.shape[-1] != self.k_extra or tuple(extra.shape[1:3]) != tuple(
          observation.shape[1:3]):
        raise ValueError(f'extra planes must be [B, H, W, {self.k_extra}] on the observation\'s grid '
                         f'{tuple(observation.shape[1:3])}, got {extra.shape}')
      if not self.conv_e.built:
        self.conv_e.build(tuple(extra.shape))
      # Conv_s(X_s) + Conv_e(X_e) computed as the one convolution it equals, over [X_s || X_e] with the stacked
      # kernels. Not as a sum: in TF 2.21's graph mode the oneDNN fusion of Conv2D + BiasAdd + Add + LeakyRelu
      # ignores the slope (it applies 0.2), so a tf.function'd sum gave other numbers than eager execution.
      x = ops.concatenate([x, extra], axis=-1)
      kernel = ops.concatenate([kernel, self.conv_e.kernel], axis=2)
    elif extra is not None and extra.shape[-1] != 0:
      raise ValueError(f'this encoder has k_extra = 0 but got extra planes of shape {extra.shape}')
    x = _leaky(ops.conv(x, kernel, strides=1, padding='same') + self.conv_s.bias, self.leaky_slope)
    for conv in (self.conv2, self.conv3, self.conv4):
      x = _leaky(conv(x), self.leaky_slope)
    return _leaky(self.dense(self.flatten(x)), self.leaky_slope)


def _encoder_of(net) -> GridEncoder:
  if isinstance(net, GridEncoder):
    return net
  encoder = getattr(net, 'encoder', None)
  if not isinstance(encoder, GridEncoder):
    raise ValueError(f'{net!r} is neither a GridEncoder nor a network with a GridEncoder `encoder`')
  return encoder


def transfer_state_encoder(src, dst, *, goal_plane: Optional[int] = None) -> Tuple[str, ...]:
  """dst's state encoder <- src's, exactly (module docstring); returns the names of the variables written.

  Args:
    src: the network (or GridEncoder) copied from, pi_g in "+pi_g-init".
    dst: the network (or GridEncoder) written to (Worker, Manager, or any GridEncoder network).
    goal_plane: None (default: the thesis's transfer, state encoder only), or the index of dst's extra plane whose
      Conv_e kernel slice receives src's goal kernel (src must have exactly one extra plane, pi_g's goal):
      `Worker.NARROW_PLANE` for the spec's [P] narrow-goal kernel copy.
  Raises:
    ValueError: unbuilt networks, different sizes or grids (naming the layer), or a goal_plane dst does not have.
  """
  source, target = _encoder_of(src), _encoder_of(dst)
  written = []
  pairs = []
  for key, layer in source.state_encoder_layers().items():
    other = target.state_encoder_layers()[key]
    if not layer.weights or not other.weights:
      raise ValueError(f'layer {key}: build both networks (build_network()) before transferring')
    for a, b in zip(layer.weights, other.weights):
      if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f'layer {key}: source variable {a.path} has shape {tuple(a.shape)}, destination '
                         f'{b.path} has {tuple(b.shape)}; both networks need the same sizes and the same maze grid')
      pairs.append((a, b))
  if goal_plane is not None:
    if source.k_extra != 1:
      raise ValueError(f'goal_plane needs a source with exactly one extra (goal) plane like pi_g; it has '
                       f'{source.k_extra}')
    if not 0 <= int(goal_plane) < target.k_extra:
      raise ValueError(f'goal_plane {goal_plane} is not an extra plane of the destination (it has '
                       f'{target.k_extra}); the Worker\'s narrow-goal plane is Worker.NARROW_PLANE = '
                       f'{Worker.NARROW_PLANE}')
    if not source.conv_e.weights or not target.conv_e.weights:
      raise ValueError('conv_e: build both networks (build_network()) before transferring')
    if tuple(source.conv_e.kernel.shape[:2]) + tuple(source.conv_e.kernel.shape[3:]) != tuple(
        target.conv_e.kernel.shape[:2]) + tuple(target.conv_e.kernel.shape[3:]):
      raise ValueError(f'conv_e: source kernel {tuple(source.conv_e.kernel.shape)} and destination '
                       f'{tuple(target.conv_e.kernel.shape)} differ in size (filters)')
  for a, b in pairs:
    b.assign(a)
    written.append(b.path)
  if goal_plane is not None:
    kernel = np.array(target.conv_e.kernel.numpy())
    kernel[:, :, int(goal_plane), :] = source.conv_e.kernel.numpy()[:, :, 0, :]
    target.conv_e.kernel.assign(kernel)
    written.append(f'{target.conv_e.kernel.path}[:, :, {int(goal_plane)}, :]')
  return tuple(written)


# ------------------------------------------------------------------------------------------------ actor-critics

class StepOutput(NamedTuple):
  logits: Any                 # [B, A]
  value: Any                  # [B]
  state: Dict[str, Any]       # {'h', 'c'} [B, lstm]


class UnrollOutput(NamedTuple):
  logits: Any                 # [T, B, A]
  values: Any                 # [T, B]
  state: Dict[str, Any]       # after the last step


def categorical(logits) -> tfd.Categorical:
  """The policy distribution of `logits` (masked entries at -1e9 have probability 0)."""
  return tfd.Categorical(logits=logits)


def _stateless_seed(seed) -> tf.Tensor:
  """An int32 [2] stateless seed (tfp samples deterministically with one) from an int or a [2] tensor."""
  if isinstance(seed, (int, np.integer)):
    return tf.constant([int(seed), 0], tf.int32)
  seed = tf.cast(seed, tf.int32)
  if seed.shape != (2,):
    raise ValueError(f'seed must be an int or an int32 [2] stateless seed, got shape {seed.shape}')
  return seed


def _zero_where(state, reset):
  if reset is None:
    return state['h'], state['c']
  keep = 1.0 - ops.cast(reset, state['h'].dtype)[:, None]
  return state['h'] * keep, state['c'] * keep


def _flatten_time(x):
  """[T, B, ...] -> [T*B, ...] (static trailing axes)."""
  shape = tf.shape(x)
  return tf.reshape(x, tf.concat([[shape[0] * shape[1]], shape[2:]], 0))


def _unflatten_time(x, t, b):
  return tf.reshape(x, tf.concat([[t, b], tf.shape(x)[1:]], 0))


class RecurrentActorCritic(keras.Model):
  """GridEncoder(k_extra) -> LSTMCell -> [FC1 || FC2] -> policy logits, value (module docstring).

  Layer names (checkpoint keys): encoder, lstm, fc1, fc2, policy, value.
  """

  K_EXTRA = 0

  def __init__(self, grid_shape, num_actions: int = 4, sizes: NetworkSizes = FULL_SIZES, name: str = 'actor_critic',
               **kwargs):
    super().__init__(name=name, **kwargs)
    if int(num_actions) not in ACTION_COUNTS:
      raise ValueError(f'num_actions must be 4 (the moves) or 6 (Door-Key: moves, pick, toggle), got {num_actions}')
    self.grid_shape = _grid_shape(grid_shape)
    self.num_actions = int(num_actions)
    self.sizes = sizes
    self.k_extra = self.K_EXTRA
    self.encoder = GridEncoder(sizes.filters, sizes.dense, self.k_extra, sizes.leaky_slope, name='encoder')
    self.lstm = keras.layers.LSTMCell(sizes.lstm, name='lstm')
    self.fc1 = keras.layers.Dense(sizes.fc, name='fc1')
    self.fc2 = keras.layers.Dense(sizes.fc, name='fc2')
    self.policy = keras.layers.Dense(self.num_actions, kernel_initializer=_policy_kernel(), name='policy')
    self.value = keras.layers.Dense(1, name='value')

  def initial_state(self, batch_size: int) -> Dict[str, tf.Tensor]:
    zeros = tf.zeros((batch_size, self.sizes.lstm))
    return {'h': zeros, 'c': zeros}

  def zero_extra(self, batch_size: int):
    return None if not self.k_extra else tf.zeros((batch_size,) + self.grid_shape + (self.k_extra,))

  def build_network(self):
    """Creates every variable (one step on zeros); returns self."""
    if not self.built:
      obs = tf.zeros((1,) + self.grid_shape + (NUM_OBS_PLANES,), tf.uint8)
      self.step(obs, self.zero_extra(1), self.initial_state(1))
      self.built = True
    return self

  def _check_extra(self, extra):
    if self.k_extra and extra is None:
      raise ValueError(f'{self.name} needs its {self.k_extra} extra plane(s) [B, H, W, {self.k_extra}]')
    if not self.k_extra and extra is not None:
      raise ValueError(f'{self.name} takes no extra planes; pass extra=None')

  def heads(self, h):
    """(logits [N, A], value [N]) from LSTM outputs h [N, lstm]."""
    slope = self.sizes.leaky_slope
    u = ops.concatenate([_leaky(self.fc1(h), slope), _leaky(self.fc2(h), slope)], axis=-1)
    return self.policy(u), self.value(u)[:, 0]

  def step(self, observation, extra, state, reset=None) -> StepOutput:
    """One acting step: observation uint8 [B, H, W, 9], extra [B, H, W, k] (None for k = 0), state {'h', 'c'},
    reset [B] (zero the incoming state first)."""
    observation = tf.convert_to_tensor(observation)
    _check_observation(observation, self.grid_shape)
    self._check_extra(extra)
    h, c = _zero_where(state, reset)
    h, (h, c) = self.lstm(self.encoder(observation, extra), [h, c])
    logits, value = self.heads(h)
    return StepOutput(logits, value, {'h': h, 'c': c})

  def call(self, observation, extra, state, reset=None):
    return self.step(observation, extra, state, reset)

  def unroll(self, observations, extras, initial_state, reset=None) -> UnrollOutput:
    """Replays a [T, B] rollout: observations uint8 [T, B, H, W, 9], extras [T, B, H, W, k] (None for k = 0),
    initial_state {'h', 'c'} [B, lstm] (stop-gradient), reset [T, B] (zero the state before step t)."""
    self.build_network()
    observations = tf.convert_to_tensor(observations)
    if observations.shape.rank != 5:
      raise ValueError(f'observations must be time-major [T, B, H, W, {NUM_OBS_PLANES}], got {observations.shape}')
    self._check_extra(extras)
    t, b = tf.shape(observations)[0], tf.shape(observations)[1]
    flat_obs = _flatten_time(observations)
    flat_extra = None if extras is None else _flatten_time(tf.cast(extras, tf.float32))
    feats = self.encoder(flat_obs, flat_extra)
    feats = _unflatten_time(feats, t, b)
    keep = tf.ones((t, b)) if reset is None else 1.0 - tf.cast(reset, tf.float32)
    h0 = tf.stop_gradient(tf.cast(initial_state['h'], tf.float32))
    c0 = tf.stop_gradient(tf.cast(initial_state['c'], tf.float32))

    def lstm_step(carry, inputs):
      h, c = carry
      x_t, keep_t = inputs
      _, (h, c) = self.lstm(x_t, [h * keep_t[:, None], c * keep_t[:, None]])
      return h, c

    hs, cs = tf.scan(lstm_step, (feats, keep), initializer=(h0, c0))
    logits, values = self.heads(_flatten_time(hs))
    return UnrollOutput(_unflatten_time(logits, t, b), _unflatten_time(values, t, b), {'h': hs[-1], 'c': cs[-1]})


class GoalPolicy(RecurrentActorCritic):
  """pi_g(a | s, g) (spec §3.3): one extra plane, the goal (`goal_planes`); 4 moves."""

  K_EXTRA = 1

  def __init__(self, grid_shape, num_actions: int = 4, sizes: NetworkSizes = FULL_SIZES, name: str = 'pi_g',
               **kwargs):
    super().__init__(grid_shape, num_actions, sizes, name=name, **kwargs)


class Worker(RecurrentActorCritic):
  """pi_worker(a | s, g^w, g^n) (spec §3.5): extra planes (wide goal, narrow goal) (`worker_planes`); 4 or 6
  actions. The FN baseline's Worker uses the same network with g^w = g^n (spec §3.7)."""

  K_EXTRA = 2
  WIDE_PLANE = 0
  NARROW_PLANE = 1

  def __init__(self, grid_shape, num_actions: int = 4, sizes: NetworkSizes = FULL_SIZES, name: str = 'worker',
               **kwargs):
    super().__init__(grid_shape, num_actions, sizes, name=name, **kwargs)


class FlatA2C(RecurrentActorCritic):
  """The flat A2C baseline (spec §3.7): no extra planes; 4 or 6 actions."""

  K_EXTRA = 0

  def __init__(self, grid_shape, num_actions: int = 4, sizes: NetworkSizes = FULL_SIZES, name: str = 'a2c',
               **kwargs):
    super().__init__(grid_shape, num_actions, sizes, name=name, **kwargs)


# ------------------------------------------------------------------------------------------------ managers

class ManagerDecision(NamedTuple):
  action: Any                 # WN: g^w index [B]; FN: flat cell index r*W + c [B]
  goal_cells: Any             # WN: g^w cells [B, 2]; FN: the chosen cells [B, 2]
  narrow_index: Any           # WN: window index of g^n [B]; FN: None
  narrow_cells: Any           # WN: g^n cells [B, 2]; FN: the chosen cells (g^w = g^n)
  log_prob: Any               # [B]: WN log pi^w + log pi^n; FN log pi
  entropy: Any                # [B]: WN H(pi^w) + H(pi^n(. | g^w)); FN H(pi)
  value: Any                  # V_m [B]
  state: Dict[str, Any]       # {'h', 'c'} after the decision step


class ManagerUnroll(NamedTuple):
  log_probs: Any              # [T, B] (meaningful at advance steps only)
  entropies: Any              # [T, B]
  values: Any                 # [T, B]
  state: Dict[str, Any]       # after the last step


class _RecurrentManager(keras.Model):
  """Encoder -> LSTMCell -> value, with the decision-step bookkeeping both Managers share."""

  K_EXTRA = 0

  def __init__(self, grid_shape, sizes: NetworkSizes, name: str, **kwargs):
    super().__init__(name=name, **kwargs)
    self.grid_shape = _grid_shape(grid_shape)
    self.sizes = sizes
    self.k_extra = self.K_EXTRA
    self.encoder = GridEncoder(sizes.filters, sizes.dense, self.k_extra, sizes.leaky_slope, name='encoder')
    self.lstm = keras.layers.LSTMCell(sizes.lstm, name='lstm')
    self.value = keras.layers.Dense(1, name='value')

  def initial_state(self, batch_size: int) -> Dict[str, tf.Tensor]:
    zeros = tf.zeros((batch_size, self.sizes.lstm))
    return {'h': zeros, 'c': zeros}

  def _extra(self, batch):
    return None

  def core(self, observation, state, reset=None):
    """(h_m, new state) after one LSTM step on the observation (and the Manager's own extra plane)."""
    observation = tf.convert_to_tensor(observation)
    _check_observation(observation, self.grid_shape)
    h, c = _zero_where(state, reset)
    feats = self.encoder(observation, self._extra(tf.shape(observation)[0]))
    h, (h, c) = self.lstm(feats, [h, c])
    return h, {'h': h, 'c': c}

  def value_head(self, h):
    return self.value(h)[:, 0]

  def bootstrap_value(self, observation, state, reset=None):
    """V_m(s_{t_max+1}) for Alg. 7's bootstrap: a tentative LSTM step on the observation whose state is not
    returned (not committed); spec §4.4."""
    h, _ = self.core(observation, state, reset)
    return self.value_head(h)

  def _unroll_core(self, observations, initial_state, advance, reset):
    """h_m [T, B, lstm] with the LSTM stepped only where `advance` (held elsewhere), and the last state."""
    observations = tf.convert_to_tensor(observations)
    if observations.shape.rank != 5:
      raise ValueError(f'observations must be time-major [T, B, H, W, {NUM_OBS_PLANES}], got {observations.shape}')
    t, b = tf.shape(observations)[0], tf.shape(observations)[1]
    flat_obs = _flatten_time(observations)
    feats = _unflatten_time(self.encoder(flat_obs, self._extra(t * b)), t, b)
    advance = tf.cast(advance, tf.bool)
    keep = tf.ones((t, b)) if reset is None else 1.0 - tf.cast(reset, tf.float32)
    h0 = tf.stop_gradient(tf.cast(initial_state['h'], tf.float32))
    c0 = tf.stop_gradient(tf.cast(initial_state['c'], tf.float32))

    def lstm_step(carry, inputs):
      h, c = carry
      x_t, adv_t, keep_t = inputs
      h, c = h * keep_t[:, None], c * keep_t[:, None]
      _, (h_new, c_new) = self.lstm(x_t, [h, c])
      return tf.where(adv_t[:, None], h_new, h), tf.where(adv_t[:, None], c_new, c)

    hs, cs = tf.scan(lstm_step, (feats, advance, keep), initializer=(h0, c0))
    return hs, {'h': hs[-1], 'c': cs[-1]}


class WideNarrowManager(_RecurrentManager):
  """The Wide-then-Narrow Manager (spec §3.6; module docstring).

  Layer names: encoder, lstm, value, wide, narrow_embedding, narrow_hidden, narrow; `waypoint_cells` is a
  non-trainable int32 [|V_p|, 2] variable (set by the constructor or `set_waypoint_cells`).
  """

  K_EXTRA = 1

  def __init__(self, num_waypoints: int, window: int = 5, *, grid_shape, sizes: NetworkSizes = FULL_SIZES,
               waypoint_cells=None, name: str = 'wn_manager', **kwargs):
    super().__init__(grid_shape, sizes, name=name, **kwargs)
    if int(num_waypoints) < 1:
      raise ValueError(f'num_waypoints must be >= 1 (|V_p|), got {num_waypoints}')
    if int(window) < 1 or int(window) % 2 == 0:
      raise ValueError(f'window N must be a positive odd number (5 small/medium, 7 large), got {window}')
    self.num_waypoints = int(num_waypoints)
    self.window = int(window)
    self.radius = (self.window - 1) // 2
    self.wide = keras.layers.Dense(self.num_waypoints, kernel_initializer=_policy_kernel(), name='wide')
    self.narrow_embedding = keras.layers.Dense(sizes.waypoint_embedding, name='narrow_embedding')
    self.narrow_hidden = keras.layers.Dense(sizes.narrow_hidden, name='narrow_hidden')
    self.narrow = keras.layers.Dense(self.window ** 2, kernel_initializer=_policy_kernel(), name='narrow')
    self.waypoint_cells = self.add_weight(shape=(self.num_waypoints, 2), dtype='int32',
                                          initializer=keras.initializers.Constant(-1), trainable=False,
                                          name='waypoint_cells')
    self._cells_set = False
    if waypoint_cells is not None:
      self.set_waypoint_cells(waypoint_cells)

  # ---------------------------------------------------------------------------------------------- waypoints

  def set_waypoint_cells(self, cells) -> None:
    """V_p, int [|V_p|, 2] in index order (the world graph's node order)."""
    arr = np.asarray(cells)
    if arr.shape != (self.num_waypoints, 2):
      raise ValueError(f'waypoint cells must be [{self.num_waypoints}, 2] (num_waypoints = |V_p|), got shape '
                       f'{arr.shape}')
    _check_cells_array(arr, self.grid_shape, 'waypoint cells')
    if len({tuple(c) for c in arr.tolist()}) != len(arr):
      raise ValueError('waypoint cells must be distinct')
    self.waypoint_cells.assign(arr.astype(np.int32))
    self._cells_set = True

  def _checked_cells(self) -> tf.Tensor:
    """The waypoint cells, failing with one message while they are unset (-1)."""
    message = f'{self.name}: set the waypoint cells first (waypoint_cells= or set_waypoint_cells)'
    if self._cells_set:
      return self.waypoint_cells
    if tf.executing_eagerly():
      if not np.all(self.waypoint_cells.numpy() >= 0):
        raise ValueError(message)
      self._cells_set = True          # restored from a checkpoint
      return self.waypoint_cells
    # Traced before any eager use: check when the graph runs, before anything reads the cells (a bare assert
    # in a tf.function only runs at some point before the function returns; a gather could fail first).
    check = tf.debugging.assert_non_negative(self.waypoint_cells, message=message)
    with tf.control_dependencies([check]):
      return tf.identity(self.waypoint_cells)

  def waypoint_map(self) -> tf.Tensor:
    """s_V [H, W] from the stored cells."""
    return waypoint_map(self.waypoint_cells, self.grid_shape)

  def _extra(self, batch):
    plane = waypoint_map(self._checked_cells(), self.grid_shape)[tf.newaxis, :, :, tf.newaxis]
    return tf.tile(plane, tf.stack([batch, 1, 1, 1]))

  def build_network(self):
    """Creates every variable (the layers on zeros; the waypoint cells need not be set yet, so a checkpoint can be
    restored into a fresh Manager); returns self."""
    if not self.built:
      obs = tf.zeros((1,) + self.grid_shape + (NUM_OBS_PLANES,), tf.uint8)
      feats = self.encoder(obs, tf.zeros((1,) + self.grid_shape + (1,)))
      state = self.initial_state(1)
      h, _ = self.lstm(feats, [state['h'], state['c']])
      self.value_head(h)
      self.wide(h)
      embed = self.narrow_embedding(tf.zeros((1, self.num_waypoints)))
      x = ops.concatenate([h, tf.zeros((1, self.window ** 2 * NUM_STATE_CHANNELS)), embed], axis=-1)
      self.narrow(self.narrow_hidden(x))
      self.built = True
    return self

  # ---------------------------------------------------------------------------------------------- window

  def window_offsets(self) -> np.ndarray:
    """int [N^2, 2]: window index k -> (dr, dc) = (k // N - (N-1)/2, k % N - (N-1)/2)."""
    k = np.arange(self.window ** 2)
    return np.stack([k // self.window - self.radius, k % self.window - self.radius], axis=-1).astype(np.int32)

  def window_index_to_cell(self, centers, index) -> tf.Tensor:
    """Cells [B, 2] of window indices [B] around centers [B, 2] (g^w)."""
    offsets = tf.constant(self.window_offsets())
    return tf.cast(centers, tf.int32) + tf.gather(offsets, tf.cast(index, tf.int32))

  def cell_to_window_index(self, centers, cells) -> tf.Tensor:
    """Window indices [B] of cells [B, 2] around centers [B, 2]; -1 where the cell is outside the window."""
    d = tf.cast(cells, tf.int32) - tf.cast(centers, tf.int32)
    inside = tf.reduce_all(tf.abs(d) <= self.radius, axis=-1)
    index = (d[:, 0] + self.radius) * self.window + (d[:, 1] + self.radius)
    return tf.where(inside, index, -tf.ones_like(index))

  def crop(self, observation, centers) -> tf.Tensor:
    """s_w: the N x N x 11 crop of the state planes around centers [B, 2], float32 [B, N, N, 11]; cells outside
    the grid are wall (module docstring)."""
    observation = tf.convert_to_tensor(observation)
    _check_observation(observation, self.grid_shape)
    p = self.radius
    height, width = self.grid_shape
    obs = tf.cast(observation, tf.float32)
    padded = tf.pad(obs, [[0, 0], [p, p], [p, p], [0, 0]])
    outside = tf.pad(tf.zeros((height, width)), [[p, p], [p, p]], constant_values=1.0)
    wall = tf.maximum(padded[..., WALL_CHANNEL], outside[tf.newaxis])
    planes = tf.concat([padded[..., :WALL_CHANNEL], wall[..., tf.newaxis], padded[..., WALL_CHANNEL + 1:]], axis=-1)
    coords = coordinate_planes(height, width, p, p)
    batch = tf.shape(obs)[0]
    coords = tf.broadcast_to(coords[tf.newaxis], tf.concat([[batch], tf.shape(coords)], 0))
    planes = tf.concat([planes, coords], axis=-1)                     # [B, H + 2p, W + 2p, 11]
    cells = self.window_index_to_cell(
        tf.repeat(tf.cast(centers, tf.int32)[:, tf.newaxis], self.window ** 2, axis=1),
        tf.broadcast_to(tf.range(self.window ** 2)[tf.newaxis], tf.stack([batch, self.window ** 2])))
    rows = cells[..., 0] + p
    cols = cells[..., 1] + p
    ids = tf.broadcast_to(tf.range(batch)[:, tf.newaxis], tf.shape(rows))
    crop = tf.gather_nd(planes, tf.stack([ids, rows, cols], axis=-1))  # [B, N^2, 11]
    return tf.reshape(crop, tf.stack([batch, self.window, self.window, NUM_STATE_CHANNELS]))

  # ---------------------------------------------------------------------------------------------- heads

  def wide_logits(self, h):
    return self.wide(h)

  def wide_distribution(self, h) -> tfd.Categorical:
    """pi^w(. | s) over the |V_p| waypoint indices."""
    return categorical(self.wide_logits(h))

  def waypoint_to_cell(self, waypoint) -> tf.Tensor:
    return tf.gather(self.waypoint_cells, tf.cast(waypoint, tf.int32))

  def narrow_logits(self, h, observation, waypoint) -> tf.Tensor:
    """Masked logits [B, N^2] of pi^n(. | s, g^w, s_w) for waypoint indices [B]."""
    cells = self._checked_cells()
    waypoint = tf.cast(waypoint, tf.int32)
    crop = self.crop(observation, tf.gather(cells, waypoint))
    batch = tf.shape(crop)[0]
    flat = tf.reshape(crop, tf.stack([batch, self.window ** 2 * NUM_STATE_CHANNELS]))
    embed = self.narrow_embedding(tf.one_hot(waypoint, self.num_waypoints, dtype=tf.float32))
    x = ops.concatenate([h, flat, embed], axis=-1)
    logits = self.narrow(_leaky(self.narrow_hidden(x), self.sizes.leaky_slope))
    free = tf.equal(tf.reshape(crop[..., WALL_CHANNEL], tf.stack([batch, self.window ** 2])), 0.0)
    return tf.where(free, logits, tf.fill(tf.shape(logits), tf.constant(MASKED_LOGIT, logits.dtype)))

  def narrow_distribution(self, h, observation, waypoint) -> tfd.Categorical:
    """pi^n(. | s, g^w) over the N^2 window cells (walls and outside cells have probability 0)."""
    return categorical(self.narrow_logits(h, observation, waypoint))

  def log_prob_and_entropy(self, h, observation, waypoint, narrow_index):
    """(joint log-prob [B], entropy surrogate [B], parts {'log_prob_wide', 'log_prob_narrow', 'entropy_wide',
    'entropy_narrow'}) of the pair (g^w index, g^n window index)."""
    wide = self.wide_distribution(h)
    narrow = self.narrow_distribution(h, observation, waypoint)
    parts = {'log_prob_wide': wide.log_prob(tf.cast(waypoint, tf.int32)),
             'log_prob_narrow': narrow.log_prob(tf.cast(narrow_index, tf.int32)),
             'entropy_wide': wide.entropy(), 'entropy_narrow': narrow.entropy()}
    return (parts['log_prob_wide'] + parts['log_prob_narrow'], parts['entropy_wide'] + parts['entropy_narrow'],
            parts)

  def sample(self, h, observation, seed=None):
    """(g^w index [B], g^n window index [B]): g^w ~ pi^w, then g^n ~ pi^n(. | g^w). `seed`: None (stateful
    sampling) or a stateless seed (an int, or an int32 [2] tensor): the same seed gives the same pair."""
    seeds = (None, None) if seed is None else tfp.random.split_seed(_stateless_seed(seed), n=2)
    waypoint = tf.cast(self.wide_distribution(h).sample(seed=seeds[0]), tf.int32)
    narrow_index = tf.cast(self.narrow_distribution(h, observation, waypoint).sample(seed=seeds[1]), tf.int32)
    return waypoint, narrow_index

  def decide(self, h, observation, waypoint=None, narrow_index=None, seed=None) -> ManagerDecision:
    """A decision from h_m: samples the pair unless given; returns cells, joint log-prob, entropy and V_m."""
    if waypoint is None or narrow_index is None:
      waypoint, narrow_index = self.sample(h, observation, seed)
    log_prob, entropy, _ = self.log_prob_and_entropy(h, observation, waypoint, narrow_index)
    goal = self.waypoint_to_cell(waypoint)
    return ManagerDecision(waypoint, goal, narrow_index, self.window_index_to_cell(goal, narrow_index), log_prob,
                           entropy, self.value_head(h), None)

  def step(self, observation, state, reset=None, seed=None) -> ManagerDecision:
    """One Manager decision (call only at decision steps): advances the LSTM and samples (g^w, g^n)."""
    h, new_state = self.core(observation, state, reset)
    return self.decide(h, observation, seed=seed)._replace(state=new_state)

  def call(self, observation, state, reset=None):
    return self.step(observation, state, reset)

  def unroll(self, observations, initial_state, advance, waypoints, narrow_indices, reset=None) -> ManagerUnroll:
    """Replays a rollout in env time [T, B] for Alg. 7's loss: the LSTM advances only where `advance` (the decision
    mask); log-probs and entropies of the stored pairs (waypoints, narrow_indices [T, B]; any valid index at the
    other steps) and V_m, each [T, B] and meaningful at the decision steps only."""
    self.build_network()
    hs, state = self._unroll_core(observations, initial_state, advance, reset)
    t, b = tf.shape(hs)[0], tf.shape(hs)[1]
    flat_h = _flatten_time(hs)
    flat_obs = _flatten_time(tf.convert_to_tensor(observations))
    log_prob, entropy, _ = self.log_prob_and_entropy(flat_h, flat_obs, tf.reshape(waypoints, [-1]),
                                                     tf.reshape(narrow_indices, [-1]))
    values = self.value_head(flat_h)
    return ManagerUnroll(*(_unflatten_time(x, t, b) for x in (log_prob, entropy, values)), state)


class FullManager(_RecurrentManager):
  """The FN baseline's Manager (spec §3.7): one categorical over the free cells (H*W logits, walls -1e9).

  Layer names: encoder, lstm, value, cells.
  """

  K_EXTRA = 0

  def __init__(self, *, grid_shape, sizes: NetworkSizes = FULL_SIZES, name: str = 'fn_manager', **kwargs):
    super().__init__(grid_shape, sizes, name=name, **kwargs)
    self.num_cells = self.grid_shape[0] * self.grid_shape[1]
    self.cells = keras.layers.Dense(self.num_cells, kernel_initializer=_policy_kernel(), name='cells')

  def build_network(self):
    if not self.built:
      obs = np.zeros((1,) + self.grid_shape + (NUM_OBS_PLANES,), np.uint8)
      h, _ = self.core(obs, self.initial_state(1))
      self.value_head(h)
      self.cell_logits(h, obs)
      self.built = True
    return self

  def cell_logits(self, h, observation) -> tf.Tensor:
    """Logits [B, H*W] (flat index r*W + c), wall cells of the observation at -1e9."""
    observation = tf.convert_to_tensor(observation)
    logits = self.cells(h)
    walls = tf.reshape(tf.cast(observation[..., WALL_CHANNEL], tf.float32), tf.stack([tf.shape(h)[0],
                                                                                      self.num_cells]))
    return tf.where(walls > 0, tf.fill(tf.shape(logits), tf.constant(MASKED_LOGIT, logits.dtype)), logits)

  def distribution(self, h, observation) -> tfd.Categorical:
    return categorical(self.cell_logits(h, observation))

  def index_to_cell(self, index) -> tf.Tensor:
    index = tf.cast(index, tf.int32)
    return tf.stack([index // self.grid_shape[1], index % self.grid_shape[1]], axis=-1)

  def cell_to_index(self, cells) -> tf.Tensor:
    cells = tf.cast(cells, tf.int32)
    return cells[:, 0] * self.grid_shape[1] + cells[:, 1]

  def decide(self, h, observation, action=None, seed=None) -> ManagerDecision:
    dist = self.distribution(h, observation)
    if action is None:
      action = tf.cast(dist.sample(seed=None if seed is None else _stateless_seed(seed)), tf.int32)
    cells = self.index_to_cell(action)
    return ManagerDecision(action, cells, None, cells, dist.log_prob(action), dist.entropy(), self.value_head(h),
                           None)

  def step(self, observation, state, reset=None, seed=None) -> ManagerDecision:
    h, new_state = self.core(observation, state, reset)
    return self.decide(h, observation, seed=seed)._replace(state=new_state)

  def call(self, observation, state, reset=None):
    return self.step(observation, state, reset)

  def unroll(self, observations, initial_state, advance, actions, reset=None) -> ManagerUnroll:
    """As `WideNarrowManager.unroll`, with the stored flat cell indices `actions` [T, B]."""
    self.build_network()
    hs, state = self._unroll_core(observations, initial_state, advance, reset)
    t, b = tf.shape(hs)[0], tf.shape(hs)[1]
    flat_h = _flatten_time(hs)
    dist = self.distribution(flat_h, _flatten_time(tf.convert_to_tensor(observations)))
    log_prob = dist.log_prob(tf.cast(tf.reshape(actions, [-1]), tf.int32))
    outs = (log_prob, dist.entropy(), self.value_head(flat_h))
    return ManagerUnroll(*(_unflatten_time(x, t, b) for x in outs), state)

