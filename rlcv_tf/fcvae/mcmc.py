"""MCMC re-encoding sampler of Creswell et al. (2016), as seed 002 describes it (S:L783-828, Eq. 3.45):

  x_{t+1} ~ p_theta(x | z_t),   z_{t+1} ~ q_phi(z | x_{t+1}),   z_0 arbitrary

which converges to the aggregate posterior p^(z) = int q(z|x) p(x) dx instead of the prior the decoder was never
trained on (Eqs. 3.41-3.44). z_0 is a prior draw (S:L827, Fig. 3.14) or the encoding of a frame.

Options [proposal, spec 3.5]: x_{t+1} is the decoder's mean (default) or a Bernoulli draw (`sample_x`); z_{t+1} a
posterior draw (default) or its mean (`sample_z=False`); the chain stops early once the mean absolute change of x
falls below `tolerance`. The draft shows the chain after 1, 2, 7, 19, 26, 60, 90 and 98 steps (Figs. 6.62-6.73):
`DRAFT_STEPS`.

`run_chain` takes plain functions (decode_fn: z -> Bernoulli means in [0, 1]; encode_fn: x -> (mu, logvar)) so
that any encoder / decoder pair fits (a test runs it with identities: a fixed point); `model_chain` wraps a
seed-002 VAE.
"""

from typing import Callable, Dict, Iterable, Optional

import numpy as np
import tensorflow as tf

DRAFT_STEPS = (1, 2, 7, 19, 26, 60, 90, 98)


def run_chain(decode_fn: Callable, encode_fn: Callable, z0, steps: int, record: Iterable[int] = DRAFT_STEPS,
              sample_x: bool = False, sample_z: bool = True, tolerance: Optional[float] = None,
              seed: int = 0) -> Dict[str, object]:
  """Runs up to `steps` steps of Eq. 3.45 from z0.

  Returns {'images': {t: x_t as numpy [B, ...]} for t in {0} | record (t <= steps taken; x_0 = decode(z_0)),
  'z': the last z, 'steps': steps taken, 'changes': [mean |x_t - x_{t-1}| per step]}.
  """
  generator = tf.random.Generator.from_seed(seed)
  record = set(int(t) for t in record)
  z = tf.convert_to_tensor(z0, tf.float32)
  x = tf.convert_to_tensor(decode_fn(z), tf.float32)
  images = {0: x.numpy()}
  changes = []
  taken = 0
  for t in range(1, int(steps) + 1):
    x_in = tf.cast(generator.uniform(tf.shape(x)) < x, tf.float32) if sample_x else x
    mu, logvar = encode_fn(x_in)
    z = mu + tf.exp(0.5 * logvar) * generator.normal(tf.shape(mu)) if sample_z else mu
    x_new = tf.convert_to_tensor(decode_fn(z), tf.float32)
    changes.append(float(tf.reduce_mean(tf.abs(x_new - x))))
    x, taken = x_new, t
    if t in record:
      images[t] = x.numpy()
    if tolerance is not None and changes[-1] < tolerance:
      images[t] = x.numpy()
      break
  return {'images': images, 'z': z.numpy(), 'steps': taken, 'changes': changes}


def model_chain(model, z0=None, num: int = 8, steps: int = max(DRAFT_STEPS), record: Iterable[int] = DRAFT_STEPS,
                seed: int = 0, **kwargs) -> Dict[str, object]:
  """`run_chain` with a seed-002 VAE in inference mode, from z0 (default: `num` draws from N(0, I))."""
  if z0 is None:
    z0 = np.random.default_rng(seed).standard_normal((num,) + tuple(model.latent_shape)).astype(np.float32)
  decode = tf.function(lambda z: model.decode_images(z, training=False))
  encode = tf.function(lambda x: model.encode(x, training=False))
  return run_chain(decode, encode, z0, steps, record, seed=seed, **kwargs)


def chain_strip(result: Dict[str, object]) -> np.ndarray:
  """The recorded images of a chain as [T, B, ...] in step order (rows of a picture: one per recorded step)."""
  return np.stack([result['images'][t] for t in sorted(result['images'])])
