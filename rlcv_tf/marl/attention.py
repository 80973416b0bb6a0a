"""The agent-centric attention module of ACNN (thesis Sec. 4.2.2, Eq. 4.3).

    u_i = LN_in(z_i);  q_i = W_q u_i + b_q,  k_i = W_k u_i + b_k,  v_i = W_v u_i + b_v
    per head: A = softmax_j(q_i . k_j / sqrt(d_k)) over the N agents of one team at one time step
    z~_i = LN_out(z_i + concat_heads(sum_j A_ij v_j))

The thesis stresses the LayerNorm placement (before q/k/v and after the residual). It gives no output
projection W_O, so there is none by default (`out_proj=True` adds one). No positional or agent-id embedding:
the module is permutation-equivariant over agents and works for any N with one set of weights.
"""

import keras
from keras import ops


class AgentCentricAttention(keras.layers.Layer):

  def __init__(self, num_heads: int = 2, out_proj: bool = False, epsilon: float = 1e-6, **kwargs):
    super().__init__(**kwargs)
    self.num_heads = num_heads
    self.out_proj = out_proj
    self.epsilon = epsilon

  def build(self, input_shape):
    d = int(input_shape[-1])
    if d % self.num_heads:
      raise ValueError(f'feature size {d} is not divisible by num_heads={self.num_heads}')
    self.d_model = d
    self.d_head = d // self.num_heads
    self.ln_in = keras.layers.LayerNormalization(epsilon=self.epsilon, name='ln_in')
    self.ln_out = keras.layers.LayerNormalization(epsilon=self.epsilon, name='ln_out')
    init = keras.initializers.LecunNormal()
    self.query = keras.layers.Dense(d, kernel_initializer=init, name='query')
    self.key = keras.layers.Dense(d, kernel_initializer=init, name='key')
    self.value = keras.layers.Dense(d, kernel_initializer=init, name='value')
    for layer in (self.ln_in, self.ln_out, self.query, self.key, self.value):
      layer.build(input_shape)
    if self.out_proj:
      self.output_dense = keras.layers.Dense(d, kernel_initializer=init, name='output')
      self.output_dense.build(input_shape)

  def _split_heads(self, x):
    # [B, N, D] -> [B, heads, N, d_head]
    b, n = ops.shape(x)[0], ops.shape(x)[1]
    return ops.transpose(ops.reshape(x, (b, n, self.num_heads, self.d_head)), (0, 2, 1, 3))

  def call(self, z, agent_mask=None):
    """z: [B, N, D] per-agent features; agent_mask: optional bool [B, N], False for absent agents.

    Returns (z~ [B, N, D], attention weights [B, heads, N, N]); row i holds agent i's weights over agents j.
    """
    u = self.ln_in(z)
    q = self._split_heads(self.query(u))
    k = self._split_heads(self.key(u))
    v = self._split_heads(self.value(u))
    logits = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / ops.sqrt(ops.cast(self.d_head, q.dtype))
    if agent_mask is not None:
      keep = ops.cast(agent_mask, 'bool')[:, None, None, :]
      logits = ops.where(keep, logits, ops.full_like(logits, -1e9))
    # Softmax written out: keras.ops.softmax warns on a size-1 axis, which is the legitimate N = 1 case.
    logits = logits - ops.max(logits, axis=-1, keepdims=True)
    weights = ops.exp(logits)
    weights = weights / ops.sum(weights, axis=-1, keepdims=True)
    if agent_mask is not None:
      # A row whose keys are all masked would be uniform over padding: zero it instead.
      weights = weights * ops.cast(keep, weights.dtype)
    attended = ops.matmul(weights, v)                                   # [B, heads, N, d_head]
    b, n = ops.shape(z)[0], ops.shape(z)[1]
    attended = ops.reshape(ops.transpose(attended, (0, 2, 1, 3)), (b, n, self.d_model))
    if self.out_proj:
      attended = self.output_dense(attended)
    return self.ln_out(z + attended), weights

  def get_config(self):
    return dict(super().get_config(), num_heads=self.num_heads, out_proj=self.out_proj, epsilon=self.epsilon)
