"""The uniform random policy's return: the chance baseline every learning check is measured against."""

import numpy as np

from rlcv_tf.envs import base


def random_actions(env: base.MultiAgentEnv, rng: np.random.Generator) -> np.ndarray:
  """One uniform random joint action: int32 [N] for a discrete set, float32 [N, D] inside a continuous box."""
  if env.continuous_actions:
    spec = env.action_spec()
    return rng.uniform(spec.minimum, spec.maximum).astype(np.float32)
  return rng.integers(0, env.num_actions, size=env.num_agents).astype(np.int32)


def mean_random_return(env: base.MultiAgentEnv, episodes: int, seed: int = 0):
  """Mean and standard error over `episodes` of the per-agent-averaged episode return of uniform random actions."""
  rng = np.random.default_rng(seed)
  returns = []
  for _ in range(episodes):
    ts, total = env.reset(), 0.0
    while not ts.last():
      ts = env.step(random_actions(env, rng))
      total += float(np.mean(ts.reward))
    returns.append(total)
  return float(np.mean(returns)), float(np.std(returns) / np.sqrt(len(returns)))


def random_play_scores(name: str, episodes: int, seed_base: int, seed: int = 0, **make_kwargs) -> list:
  """Raw episode scores (rewards summed over agents and steps) of uniform random actions on the registered
  environment `name`: episode i on a fresh environment seeded `seed_base` + i, the actions from one generator
  seeded `seed` (the random-play baselines of learning checks and examples)."""
  from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top  (registry imports the adapters lazily)
  rng = np.random.default_rng(seed)
  scores = []
  for i in range(episodes):
    env = registry.make_env(name, seed=seed_base + i, **make_kwargs)
    try:
      ts, total = env.reset(), 0.0
      while not ts.last():
        ts = env.step(random_actions(env, rng))
        total += float(np.sum(ts.reward))
      scores.append(total)
    finally:
      close = getattr(env, 'close', None)
      if close:
        close()
  return scores
