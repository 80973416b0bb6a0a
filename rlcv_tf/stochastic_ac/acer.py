"""The ACER family's networks (thesis Sec. 2.4.2, Alg. 4-5, App. 2.E; spec ch2 §2.9): the Seaquest A3C-LSTM
(default encoder, LSTMCell 512, FC 512 + 512) whose value head outputs one Q-value per action (12 on CarRacing),
V_t = sum_a pi_t(a) Q_t(a) (T:L1664-1667). The losses (Retrace, truncation with bias correction, trust region)
live in `losses.py` / `core/retrace.py`.

* `acer`: deterministic channels (Alg. 4).
* `sacer`: SA3C's channel 1 (Alg. 5), log sigma^2 = -6 (not printed; the Seaquest value, spec §12-21). On-policy
  updates replay the acting noise; off-policy replays draw fresh eps (T:L1056-1059: SACER "also use[s] stochastic
  activations for off-policy training"): pass `layers.draw_rollout_noise(...)` (new eps) to the replayed unroll.
* `nn_acer`: NoisyDense on the pi and Q heads (the v1 placement, T:L1060-1062).

Average network (trust region): `make_average_network` is a copy with the same architecture and weights;
`update_average_network` does theta_a <- alpha theta_a + (1 - alpha) theta with alpha 0.99 (Alg. 4). For NN-ACER
the average network is evaluated in 'map' mode (its mean weights; spec §3.3 PROPOSAL), and for SACER with the same
eps as the current network at each step, so the KL measures the policy change rather than the noise.
"""

import functools
from typing import Sequence

import tensorflow as tf

from rlcv_tf.stochastic_ac import a3c

VARIANTS = {
    'acer': a3c.Variant(q_head=True),
    'sacer': a3c.Variant(channel1='gaussian', q_head=True),
    'nn_acer': a3c.Variant(noisy_heads=True, q_head=True),
}
MODEL_NAMES = tuple(VARIANTS)
AVERAGE_DECAY = 0.99      # "model averaging ratio 0.99" (T:L1736-1737)
SACER_LOG_VAR = -6.0      # spec §12-21


def build_network(model: str, num_actions: int = 12, observation_shape: Sequence[int] = (80, 80, 1),
                  **config) -> a3c.ActorCriticLSTM:
  """The built network of `--model=model` ('acer', 'sacer' or 'nn_acer'); `config` overrides `a3c.NetworkConfig`."""
  config.setdefault('log_var', SACER_LOG_VAR)
  return a3c.build_network(model, num_actions, observation_shape, variants=VARIANTS, **config)


MODELS = {name: functools.partial(build_network, name) for name in VARIANTS}


def make_average_network(model: a3c.ActorCriticLSTM) -> a3c.ActorCriticLSTM:
  """A new network of `model`'s architecture holding a copy of its weights (theta_a <- theta)."""
  average = a3c.ActorCriticLSTM(model.config, model.variant, name=f'{model.name}_average').build_network()
  average.set_weights(model.get_weights())
  return average


def update_average_network(average: a3c.ActorCriticLSTM, model: a3c.ActorCriticLSTM,
                           decay: float = AVERAGE_DECAY) -> None:
  """theta_a <- decay * theta_a + (1 - decay) * theta, variable by variable."""
  if len(average.weights) != len(model.weights):
    raise ValueError('the average network and the model have different architectures')
  for avg, var in zip(average.weights, model.weights):
    avg.assign(decay * avg + (1.0 - decay) * tf.cast(var, avg.dtype))
