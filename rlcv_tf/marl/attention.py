"""The agent-centric attention module of ACNN (thesis Sec. 4.2.2, Eq. 4.3; spec ch4 §2.5).

Eq. 4.3, for the N agents of one team at one time step (z_i = f_fc(f_cnn(s_i)), the shared torso's feature):

    u_i = LN_in(z_i)
    q_i = W_q u_i + b_q,   k_i = W_k u_i + b_k,   v_i = W_v u_i + b_v          (each D -> D)
    per head h (d_k = D / heads):  A^h = softmax_j( q_i^h . k_j^h / sqrt(d_k) )   over agents j = 1..N, incl. i
    v~_i = concat_h( sum_j A^h_ij v_j^h )
    z~_i = LN_out(z_i + v~_i)

The thesis stresses the LayerNorm placement: one LN before the q/k/v projections (shared by all three) and one
after the residual. Eq. 4.3 has no output projection W_O, so there is none by default (`out_proj=True` adds a
D -> D Dense after the head concat, for ablations). There is no positional or agent-id embedding, so the module
is permutation-equivariant over agents and one set of weights serves any N.
"""

import math

import keras
from keras import ops

# Logit given to masked keys. Finite on purpose: with -inf a fully masked row would compute (-inf) - (-inf) = NaN
# in the max-subtracted softmax below; with a finite value the row is merely uniform and is zeroed afterwards.
MASKED_LOGIT = -1e9


class AgentCentricAttention(keras.layers.Layer):
  """Eq. 4.3: multi-head scaled dot-product self-attention across the agents of one team.

  Args:
    num_heads: number of heads h (the thesis uses 2); the feature size D must be divisible by it.
    out_proj: add an output projection W_O (not in Eq. 4.3; off by default).
    epsilon: LayerNorm epsilon for LN_in and LN_out.

  Call: `layer(z, agent_mask=None)` with z float [B, N, D] and agent_mask optional bool [B, N] (False marks an
  absent / padding agent). Returns `(z~ [B, N, D], weights [B, heads, N, N])`; row i of `weights` holds agent i's
  weights over the agents j, and sums to 1 over the unmasked agents of its sample.
  """

  def __init__(self, num_heads: int = 2, out_proj: bool = False, epsilon: float = 1e-6, **kwargs):
    super().__init__(**kwargs)
    self.num_heads = int(num_heads)
    self.out_proj = bool(out_proj)
    self.epsilon = float(epsilon)
    # LayerNorms have no size argument, so they can be created here; the Dense widths wait for build().
    self.ln_in = keras.layers.LayerNormalization(epsilon=self.epsilon, name='ln_in')
    self.ln_out = keras.layers.LayerNormalization(epsilon=self.epsilon, name='ln_out')

  def build(self, input_shape):
    d = input_shape[-1]
    if d is None:
      raise ValueError('AgentCentricAttention needs a static feature size (last axis)')
    d = int(d)
    if d % self.num_heads:
      raise ValueError(f'feature size {d} is not divisible by num_heads={self.num_heads}')
    self.d_model = d
    self.d_head = d // self.num_heads
    # Same initialisers as the rest of the network ([SEED-RL]: lecun_normal kernels, zero biases).
    dense = lambda name: keras.layers.Dense(d, kernel_initializer='lecun_normal', bias_initializer='zeros', name=name)
    self.query, self.key, self.value = dense('query'), dense('key'), dense('value')
    self.ln_in.build(input_shape)
    self.ln_out.build(input_shape)
    for layer in (self.query, self.key, self.value):
      layer.build(input_shape)
    self.output_dense = None
    if self.out_proj:
      self.output_dense = dense('output')
      self.output_dense.build(input_shape)

  def _split_heads(self, x, b, n):
    # [B, N, D] -> [B, heads, N, d_head]: head h owns feature slice [h*d_head, (h+1)*d_head).
    return ops.transpose(ops.reshape(x, (b, n, self.num_heads, self.d_head)), (0, 2, 1, 3))

  def call(self, z, agent_mask=None):
    shape = ops.shape(z)
    b, n = shape[0], shape[1]          # dynamic inside tf.function: N may change between calls
    u = self.ln_in(z)                  # one LN shared by q, k and v (Eq. 4.3)
    # Scale q rather than the [N, N] logits: same result, and keeps the scale a Python constant.
    q = self._split_heads(self.query(u), b, n) * (1.0 / math.sqrt(self.d_head))
    k = self._split_heads(self.key(u), b, n)
    v = self._split_heads(self.value(u), b, n)
    logits = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2)))           # [B, heads, N(query i), N(key j)]
    keep = None
    if agent_mask is not None:
      keep = ops.cast(agent_mask, 'bool')[:, None, None, :]            # masks keys j, broadcast over heads and i
      logits = ops.where(keep, logits, ops.cast(MASKED_LOGIT, logits.dtype))
    # Softmax over j written out: keras.ops.softmax warns on a size-1 axis, and N = 1 is a legitimate case
    # (single-agent GRF, spec §2.9). The max subtraction keeps exp() finite.
    logits = logits - ops.max(logits, axis=-1, keepdims=True)
    weights = ops.exp(logits)
    weights = weights / ops.sum(weights, axis=-1, keepdims=True)
    if keep is not None:
      # A sample whose agents are all masked gets a uniform row over padding from the softmax; report zeros
      # instead (its outputs are excluded from the losses anyway). `where`, not a product, so it is NaN-proof.
      weights = ops.where(keep, weights, ops.zeros_like(weights))
    attended = ops.matmul(weights, v)                                   # [B, heads, N, d_head]
    attended = ops.reshape(ops.transpose(attended, (0, 2, 1, 3)), (b, n, self.d_model))
    if self.output_dense is not None:
      attended = self.output_dense(attended)
    return self.ln_out(z + attended), weights                          # residual, then post-LN

  def compute_output_shape(self, input_shape):
    b, n = input_shape[0], input_shape[1]
    return tuple(input_shape), (b, self.num_heads, n, n)

  def get_config(self):
    return dict(super().get_config(), num_heads=self.num_heads, out_proj=self.out_proj, epsilon=self.epsilon)
