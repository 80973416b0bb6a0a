"""The binary recurrent VAE that picks waypoint states (thesis Sec. 3.3.1, Fig. 3.2, App. 3.A and 3.C.1).

Given a state-action trajectory {(s_t, a_t)}, t = 0..T (T = 25 actions; token T carries the END action), the model
infers one gate z_t in [0, 1] per state, with exact 0s and 1s, and decodes the whole action sequence from the
states whose gates are open (T:L2233-2246). Three networks, trained end to end (T:L2959):

  prior       p_psi(z_t | s_t) = Beta(alpha_t, beta_t)                     from the state alone
  inference   q_phi(z_t | a, s) = HardKuma(a~_t, 1, l=-0.1, r=1.1)           BiLSTM over the (s_t, a_t) tokens
  generation  p_theta(a_t | s, z)                                           BiLSTM over the gated states z_t s_t

The gates z_0 and z_{T_n} (the first and the last state of a sequence of T_n actions) are fixed to 1 (T:L2244).
The waypoint score of a state is the prior mean alpha / (alpha + beta) (T:L2253-2256).

Objective (Eq. 3.1, 3.2, 3.8-3.12; spec Sec. 4.1), per sequence n, with one reparameterised gate sample:

  NLL_n = -sum_{t < T_n} log p_theta(a_t | s, z)
  KL_n  =  sum_{t free} KL(Kuma(a~_t, 1) || Beta(alpha_t, beta_t))          the free gates are t = 1..T_n - 1
  L0_n  = (sum_{t free} (1 - p0_t) - mu0_n)^2                              p0_t = P(z_t = 0) = (1/12)^a~_t
  LT_n  = (sum_{t=1}^{T_n - 1} [p0_t (1 - p0_{t+1}) + (1 - p0_t) p0_{t+1}] - 2 mu0_n)^2
  J     = mean_n [NLL_n + lambda_1 KL_n + lambda_2 L0_n + lambda_3 LT_n]

with mu0 = 5 for T = 25 (T:L2270-2272) and mu0_n = mu0 (T_n - 1) / (T - 1) for a shorter sequence [P]. The model
step minimises J with Adam (lr 1e-4, eps 1e-3), gradients of the inference and generation nets clipped to global
norm 40 (T:L2954-2956); then the multipliers take one projected ascent step on J (`core.lagrangian`; T:L2962-2965).

Sizes the thesis does not give are the spec's proposals (Sec. 3.2 [P]): each network has its own state featuriser
(cell embedding + normalised coordinates -> Dense, ReLU), actions are one-hot(A + 1) -> Dense(16), and the BiLSTMs
have `lstm_units` per direction. The generator's input masks the state features by the continuous gate,
[z_t phi(s_t) || z_t], so it stays differentiable. At test time the gate is the HardKuma median (spec Sec. 3.2 [P]).

Batches: `cells` int [B, T + 1, 2] (s_0..s_T as (row, col)), `actions` int [B, T] (a_0..a_{T-1}), `lengths` int [B]
(T_n, the number of actions, 1 <= T_n <= T). Steps after T_n are padding and change nothing (tested).
"""

import dataclasses
from typing import Dict, Optional, Tuple

import keras
import tensorflow as tf

from rlcv_tf.core import hardkuma
from rlcv_tf.core import lagrangian

# HardKuma support (T:L2957): l = -0.1, r = 1.1 (Eq. 3.6 swaps the labels; spec A2).
STRETCH_LOW, STRETCH_HIGH = -0.1, 1.1


@dataclasses.dataclass(frozen=True)
class VAEConfig:
  """Sizes and weights of the waypoint VAE; thesis values where it gives them (T), the spec's proposals (P)."""
  height: int = 13
  width: int = 13
  num_actions: int = 4                  # moves; the END token is index num_actions
  horizon: int = 25                     # T (T:L2957)
  mu0: float = 5.0                      # target open gates of T (T:L2270-2272)
  state_embedding: int = 32             # [P] (cpu: 16)
  state_hidden: int = 64                # [P] (cpu: 32)
  action_features: int = 16             # [P]
  lstm_units: int = 128                 # [P] per direction (cpu: 64)
  head_hidden: int = 64                 # [P]
  learning_rate: float = 1e-4           # T:L2954
  adam_epsilon: float = 1e-3            # T:L2955
  clip_norm: float = 40.0               # T:L2955-2956, inference and generation nets
  kl_terms: Optional[int] = 5           # Eq. 3.5 truncated at 5 terms (T, App. 3.A); None = accurate (spec A5)
  multipliers_init: Tuple[float, float, float] = (0.01, 0.06, 0.02)   # T:L2962-2963 (KL, L0, LT)
  multipliers_learning_rate: float = 5e-4                              # T:L2964
  lagrange_mode: str = 'ascent'         # projected ascent (spec A4) | 'constraint'

  @property
  def num_cells(self) -> int:
    return self.height * self.width


class _StateFeatures(keras.layers.Layer):
  """phi(s): Embedding(H W, E)(cell index) || (r / (H - 1), c / (W - 1)) -> Dense(hidden, ReLU) [P]."""

  def __init__(self, cfg: VAEConfig, **kwargs):
    super().__init__(**kwargs)
    self.cfg = cfg
    self.embed = keras.layers.Embedding(cfg.num_cells, cfg.state_embedding, name='embed')
    self.dense = keras.layers.Dense(cfg.state_hidden, activation='relu', name='dense')

  def call(self, cells):
    cells = tf.cast(cells, tf.int32)
    index = cells[..., 0] * self.cfg.width + cells[..., 1]
    coords = tf.stack([tf.cast(cells[..., 0], tf.float32) / (self.cfg.height - 1),
                       tf.cast(cells[..., 1], tf.float32) / (self.cfg.width - 1)], axis=-1)
    return self.dense(tf.concat([self.embed(index), coords], axis=-1))


def _softplus_clip(x, low, high):
  return tf.clip_by_value(tf.nn.softplus(x) + 1e-3, low, high)


class WaypointVAE(keras.Model):
  """Prior, inference and generation networks (module docstring); `loss_terms` is Eq. 3.12's pieces."""

  def __init__(self, cfg: VAEConfig, **kwargs):
    super().__init__(**kwargs)
    self.cfg = cfg
    # Prior p_psi(z_t | s_t) = Beta(alpha, beta), alpha, beta = clip(softplus + 1e-3, 1e-2, 1e2) [P].
    self.prior_features = _StateFeatures(cfg, name='prior_state')
    self.prior_hidden = keras.layers.Dense(cfg.head_hidden, activation='relu', name='prior_hidden')
    self.prior_out = keras.layers.Dense(2, name='prior_out')
    # Inference q_phi(z_t | a, s) = HardKuma(a~_t, 1): BiLSTM over [phi(s_t) || phi(a_t)] [T: BiLSTM; sizes P].
    self.inference_features = _StateFeatures(cfg, name='inference_state')
    self.inference_actions = keras.layers.Dense(cfg.action_features, name='inference_action')
    self.inference_lstm = keras.layers.Bidirectional(
        keras.layers.LSTM(cfg.lstm_units, return_sequences=True), name='inference_bilstm')
    self.inference_hidden = keras.layers.Dense(cfg.head_hidden, activation='relu', name='inference_hidden')
    self.inference_out = keras.layers.Dense(1, name='inference_out')
    # Generation p_theta(a_t | s, z): BiLSTM over [z_t phi(s_t) || z_t].
    self.generation_features = _StateFeatures(cfg, name='generation_state')
    self.generation_lstm = keras.layers.Bidirectional(
        keras.layers.LSTM(cfg.lstm_units, return_sequences=True), name='generation_bilstm')
    self.generation_hidden = keras.layers.Dense(cfg.head_hidden, activation='relu', name='generation_hidden')
    self.generation_out = keras.layers.Dense(cfg.num_actions, name='generation_out')

  # ----------------------------------------------------------------- the three networks
  def prior_params(self, cells) -> Tuple[tf.Tensor, tf.Tensor]:
    """(alpha, beta) of p_psi(z | s) for cells [..., 2]; each clipped to [1e-2, 1e2]."""
    h = self.prior_out(self.prior_hidden(self.prior_features(cells)))
    params = _softplus_clip(h, 1e-2, 1e2)
    return params[..., 0], params[..., 1]

  def prior_mean(self, cells) -> tf.Tensor:
    """The waypoint score alpha / (alpha + beta) (T:L2253-2256)."""
    alpha, beta = self.prior_params(cells)
    return alpha / (alpha + beta)

  def inference_concentration(self, cells, actions, lengths) -> tf.Tensor:
    """a~_t of q(z_t | a, s) = HardKuma(a~_t, 1), [B, T + 1], clipped to [0.05, 20] [P]."""
    mask = token_mask(lengths, self.cfg.horizon)
    tokens = end_padded_actions(actions, lengths, self.cfg.num_actions)
    a = tf.one_hot(tokens, self.cfg.num_actions + 1)
    x = tf.concat([self.inference_features(cells), self.inference_actions(a)], axis=-1)
    h = self.inference_lstm(x, mask=mask)
    return _softplus_clip(self.inference_out(self.inference_hidden(h))[..., 0], 0.05, 20.0)

  def action_logits(self, cells, gates, lengths) -> tf.Tensor:
    """Logits of p_theta(a_t | s, z), [B, T, A] for a_0..a_{T-1}."""
    mask = token_mask(lengths, self.cfg.horizon)
    g = gates[..., None]
    x = tf.concat([g * self.generation_features(cells), g], axis=-1)
    h = self.generation_lstm(x, mask=mask)
    return self.generation_out(self.generation_hidden(h))[:, :-1]

  def call(self, inputs, training=False):
    cells, actions, lengths = inputs
    concentration = self.inference_concentration(cells, actions, lengths)
    return self.action_logits(cells, median_gates(concentration, lengths, self.cfg.horizon), lengths)

  # ----------------------------------------------------------------- the objective
  def sample_gates(self, cells, actions, lengths, seed):
    """(the posterior HardKuma [B, T + 1], gates [B, T + 1]): one reparameterised sample on the free gates, 1 on the
    fixed ones, 0 on padding."""
    lengths = tf.cast(lengths, tf.int32)
    concentration = self.inference_concentration(cells, actions, lengths)
    posterior = hardkuma.HardKumaraswamy(concentration, tf.ones_like(concentration),
                                         low=STRETCH_LOW, high=STRETCH_HIGH)
    gates = (free_gate_mask(lengths, self.cfg.horizon) * posterior.sample(seed=seed) +
             fixed_gate_mask(lengths, self.cfg.horizon))
    return posterior, gates

  def loss_terms(self, cells, actions, lengths, seed) -> Dict[str, tf.Tensor]:
    """Per-sequence NLL, KL, L0, LT [B] and the logging numbers, with one gate sample (stateless `seed`)."""
    cfg = self.cfg
    lengths = tf.cast(lengths, tf.int32)
    posterior, gates = self.sample_gates(cells, actions, lengths, seed)
    free = free_gate_mask(lengths, cfg.horizon)                              # [B, T + 1]
    fixed = fixed_gate_mask(lengths, cfg.horizon)
    concentration = posterior.concentration1
    logits = self.action_logits(cells, gates, lengths)
    action_mask = tf.sequence_mask(lengths, cfg.horizon, dtype=tf.float32)   # [B, T]
    log_p = -tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(actions, tf.int32), logits=logits)
    nll = -tf.reduce_sum(log_p * action_mask, axis=1)

    alpha, beta = self.prior_params(cells)
    kl_steps = hardkuma.kl_kumaraswamy_beta(posterior.kumaraswamy, tfd_beta(alpha, beta), num_terms=cfg.kl_terms)
    kl = tf.reduce_sum(kl_steps * free, axis=1)

    p0 = posterior.prob_zero() * free                                        # fixed gates: p0 = 0
    counted = free + fixed                                                   # the gates 0..T_n
    expected_l0 = hardkuma.expected_l0(p0, free)
    switch_pairs = switch_pair_mask(lengths, cfg.horizon)
    expected_switches = hardkuma.expected_switches(p0, switch_pairs)
    mu0 = cfg.mu0 * tf.cast(lengths - 1, tf.float32) / float(cfg.horizon - 1)
    l0 = tf.square(expected_l0 - mu0)
    lt = tf.square(expected_switches - 2.0 * mu0)

    median = median_gates(concentration, lengths, cfg.horizon)
    greedy = tf.argmax(self.action_logits(cells, median, lengths), axis=-1, output_type=tf.int32)
    correct = tf.cast(tf.equal(greedy, tf.cast(actions, tf.int32)), tf.float32) * action_mask
    steps = tf.reduce_sum(action_mask)
    return {
        'nll': nll, 'kl': kl, 'l0': l0, 'lt': lt,
        'nll_per_step': tf.reduce_sum(nll) / steps,
        'recon_accuracy': tf.reduce_sum(correct) / steps,
        'expected_l0': tf.reduce_mean(expected_l0),
        'expected_switches': tf.reduce_mean(expected_switches),
        'open_gates': tf.reduce_mean(tf.reduce_sum(tf.cast(gates > 0, tf.float32) * counted, axis=1)),
        'gates': gates,
    }

  @property
  def clipped_variables(self):
    """The inference and generation nets' variables (gradients clipped to 40, T:L2955-2956)."""
    layers = (self.inference_features, self.inference_actions, self.inference_lstm, self.inference_hidden,
              self.inference_out, self.generation_features, self.generation_lstm, self.generation_hidden,
              self.generation_out)
    return [v for layer in layers for v in layer.trainable_variables]

  @property
  def prior_variables(self):
    return [v for layer in (self.prior_features, self.prior_hidden, self.prior_out) for v in layer.trainable_variables]


def tfd_beta(alpha, beta):
  import tensorflow_probability as tfp  # pylint: disable=g-import-not-at-top
  return tfp.distributions.Beta(alpha, beta)


# --------------------------------------------------------------------- masks (tokens 0..T)
def token_mask(lengths, horizon: int) -> tf.Tensor:
  """bool [B, T + 1]: tokens 0..T_n are real (T_n actions and the END token)."""
  return tf.sequence_mask(tf.cast(lengths, tf.int32) + 1, horizon + 1)


def free_gate_mask(lengths, horizon: int) -> tf.Tensor:
  """float [B, T + 1]: the free gates 1..T_n - 1."""
  lengths = tf.cast(lengths, tf.int32)
  t = tf.range(horizon + 1)[None]
  return tf.cast((t >= 1) & (t <= lengths[:, None] - 1), tf.float32)


def fixed_gate_mask(lengths, horizon: int) -> tf.Tensor:
  """float [B, T + 1]: the gates fixed to 1, z_0 and z_{T_n}."""
  lengths = tf.cast(lengths, tf.int32)
  t = tf.range(horizon + 1)[None]
  return tf.cast((t == 0) | (t == lengths[:, None]), tf.float32)


def switch_pair_mask(lengths, horizon: int) -> tf.Tensor:
  """float [B, T + 1]: 1 at t where the pair (t, t + 1) counts as a possible switch, t = 1..T_n - 1 (spec A3)."""
  return free_gate_mask(lengths, horizon)


def end_padded_actions(actions, lengths, num_actions: int) -> tf.Tensor:
  """int [B, T + 1]: a_0..a_{T_n - 1}, then END (= num_actions) at T_n and after."""
  actions = tf.cast(actions, tf.int32)
  horizon = actions.shape[1]
  padded = tf.concat([actions, tf.fill([tf.shape(actions)[0], 1], num_actions)], axis=1)
  real = tf.sequence_mask(tf.cast(lengths, tf.int32), horizon + 1)
  return tf.where(real, padded, num_actions)


def median_gates(concentration, lengths, horizon: int) -> tf.Tensor:
  """The HardKuma(a~, 1) median clip(l + (r - l) 0.5^(1/a~), 0, 1) on the free gates, 1 on the fixed ones [P]."""
  median = tf.clip_by_value(STRETCH_LOW + (STRETCH_HIGH - STRETCH_LOW) * tf.pow(0.5, 1.0 / concentration), 0.0, 1.0)
  return median * free_gate_mask(lengths, horizon) + fixed_gate_mask(lengths, horizon)


# --------------------------------------------------------------------- training
class VAETrainer(tf.Module):
  """The model step (Adam, clip 40 on inference/generation) and the multiplier step (Eq. 3.12), as one tf.function.

  Checkpoint `vae`, `optimizer`, `multipliers` (their own Adam inside) to resume.
  """

  def __init__(self, vae: WaypointVAE, cfg: VAEConfig, name: str = 'vae_trainer'):
    super().__init__(name=name)
    self.vae, self.cfg = vae, cfg
    self.optimizer = keras.optimizers.Adam(cfg.learning_rate, epsilon=cfg.adam_epsilon)
    self.multipliers = lagrangian.LagrangeMultipliers(
        initial=cfg.multipliers_init, learning_rate=cfg.multipliers_learning_rate, mode=cfg.lagrange_mode)
    self._step = None

  def _build(self, cells, actions, lengths):
    if not self.vae.built:
      self.vae.loss_terms(cells, actions, lengths, seed=tf.constant([0, 0]))
      self.optimizer.build(self.vae.trainable_variables)

  def step(self, cells, actions, lengths, seed) -> Dict[str, tf.Tensor]:
    """One model step on the batch, then one multiplier step; returns the logging numbers (scalars)."""
    cells = tf.convert_to_tensor(cells, tf.int32)
    actions = tf.convert_to_tensor(actions, tf.int32)
    lengths = tf.convert_to_tensor(lengths, tf.int32)
    self._build(cells, actions, lengths)
    if self._step is None:
      self._step = tf.function(self._train_step, reduce_retracing=True)
    return self._step(cells, actions, lengths, tf.convert_to_tensor(seed, tf.int32))

  def _train_step(self, cells, actions, lengths, seed):
    lam = self.multipliers.values()
    with tf.GradientTape() as tape:
      terms = self.vae.loss_terms(cells, actions, lengths, seed)
      parts = {'kl': tf.reduce_mean(terms['kl']), 'l0': tf.reduce_mean(terms['l0']),
               'lt': tf.reduce_mean(terms['lt'])}
      objective = tf.reduce_mean(terms['nll']) + (lam[0] * parts['kl'] + lam[1] * parts['l0'] +
                                                  lam[2] * parts['lt'])
    clipped, prior = self.vae.clipped_variables, self.vae.prior_variables
    grads = tape.gradient(objective, clipped + prior)
    clipped_grads, norm = tf.clip_by_global_norm(grads[:len(clipped)], self.cfg.clip_norm)
    self.optimizer.apply_gradients(zip(clipped_grads + grads[len(clipped):], clipped + prior))
    self.multipliers.update([parts['kl'], parts['l0'], parts['lt']])
    lam = self.multipliers.values()
    out = {'vae/objective': objective, 'vae/nll': tf.reduce_mean(terms['nll']),
           'vae/nll_per_step': terms['nll_per_step'], 'vae/recon_accuracy': terms['recon_accuracy'],
           'vae/kl': parts['kl'], 'vae/l0': parts['l0'], 'vae/lt': parts['lt'],
           'vae/expected_l0': terms['expected_l0'], 'vae/expected_switches': terms['expected_switches'],
           'vae/open_gates': terms['open_gates'], 'vae/grad_norm': norm,
           'vae/lambda_kl': lam[0], 'vae/lambda_l0': lam[1], 'vae/lambda_lt': lam[2]}
    return out


def relabel_probabilities(vae: WaypointVAE, cells, actions, lengths, seed) -> tf.Tensor:
  """p_theta(a_t | s, z) of the taken actions [B, T] with one gate sample and no gradient (the curiosity term of
  Alg. 6, T: r_t = 1[s_{t+1} = g] - lambda p_theta(a_t | s, z); a probability, not a log). Padding steps are 0.
  Wrap it in tf.function for speed (exploration.Explorer does: eager, it took a third of a phase-1 iteration)."""
  lengths = tf.convert_to_tensor(lengths, tf.int32)
  actions = tf.convert_to_tensor(actions, tf.int32)
  _, gates = vae.sample_gates(cells, actions, lengths, seed)
  logits = vae.action_logits(cells, gates, lengths)
  probs = tf.gather(tf.nn.softmax(logits), actions, batch_dims=2)
  return tf.stop_gradient(probs * tf.sequence_mask(lengths, vae.cfg.horizon, dtype=tf.float32))
