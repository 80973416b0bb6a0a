"""Saved Chapter 4 agents: from a path to a policy that acts (spec ch4 §3.6, §7.1 item 36).

An agent is any of (`resolve_agent`):
  * a run's logdir (has config.json): its SavedModel (`saved_model/`), or its latest checkpoint with
    `prefer='checkpoint'`;
  * a SavedModel directory (endpoint `serve`, see `export.py`); a config.json next to it (the logdir) is read
    when present, otherwise the observation shape comes from the signature (C = 4 planes x frames);
  * a checkpoint prefix or a checkpoints/ directory, with the run's config.json (found in the parent
    directories, or given as `config_path`); the network is rebuilt from the config and restored through the
    learner's checkpoint layout (`model=...`).

`resolve_agent` only reads paths and config.json, so a wrong path fails in a second; TensorFlow is imported when
the weights load (`load_policy`), which lets the launchers check their flags first. Evaluation and tournaments
(`evaluation.py`), frozen self-play opponents (`selfplay.py`) and attention pictures (`attention_viz.py`) all
play the `Policy` this module returns.

`env_layout` builds one environment to read what the agents see and do (observation shape, actions, team
sizes): what a checkpoint's network is rebuilt for, and what a training run sizes its learner by.
`env_shared_channels` reads, from the same environment, the observation channels its agents of one team share
(the networks compute their first conv on them once per team; empty for DMLab2D Cleanup). Both are remembered
per (environment, frames, environment arguments), so asking both builds one environment (GRF: about 3 s).
"""

import dataclasses
import os
from typing import Optional, Tuple

import numpy as np

from rlcv_tf.envs import registry
from rlcv_tf.marl import config as config_lib

SMM_PLANES = 4  # gfootball SMM planes per frame (left team, right team, ball, active)


class AgentLoadError(ValueError):
  """A path does not name a loadable agent; the message says what was expected."""


@dataclasses.dataclass
class AgentSource:
  """Where an agent's weights and configuration live (pure paths; nothing is loaded)."""
  path: str                         # what the user gave
  kind: str                         # 'saved_model' or 'checkpoint'
  weights: str                      # SavedModel directory or checkpoint prefix
  config: Optional[config_lib.MarlConfig]
  name: str


# (env, num_frames, env kwargs) -> (observation shape, actions, team sizes, shared channels); none depends on the seed.
_LAYOUTS = {}


def _describe_env(cfg: config_lib.MarlConfig):
  kwargs = cfg.effective_env_kwargs
  key = (cfg.env, cfg.num_frames, repr(sorted(kwargs.items())))
  if key not in _LAYOUTS:
    env = registry.make_env(cfg.env, seed=cfg.seed, num_frames=cfg.num_frames, **kwargs)
    try:
      _LAYOUTS[key] = (tuple(env.observation_spec().shape), env.num_actions, tuple(env.team_sizes),
                       tuple(env.shared_channels))
    finally:
      env.close()
  return _LAYOUTS[key]


def env_layout(cfg: config_lib.MarlConfig):
  """Builds one environment in this process (once per layout) to read (observation shape [N, H, W, C], actions
  per agent, (home agents, right agents)); raises the engine's own clear error."""
  return _describe_env(cfg)[:3]


def env_shared_channels(cfg: config_lib.MarlConfig) -> Tuple[int, ...]:
  """The channels of the run's observations that are equal for every agent of one team at one step
  (`base.MultiAgentEnv.shared_channels`): the `shared_channels` of its network."""
  return _describe_env(cfg)[3]


def env_specs(cfg: config_lib.MarlConfig):
  """(observation shape [N, H, W, C] over every agent the caller drives, actions per agent)."""
  return env_layout(cfg)[:2]


# ------------------------------------------------------------------------------------------------ paths
def _find_config(start: str, levels: int = 2) -> Optional[str]:
  d = os.path.abspath(start)
  for _ in range(levels + 1):
    candidate = os.path.join(d, 'config.json')
    if os.path.isfile(candidate):
      return candidate
    d = os.path.dirname(d)
  return None


def _load_config(path: str) -> config_lib.MarlConfig:
  try:
    with open(path) as f:
      return config_lib.MarlConfig.from_json(f.read())
  except (OSError, ValueError, TypeError, KeyError) as e:
    raise AgentLoadError(f'{path}: not a readable Chapter 4 config.json ({e})') from None


def _latest_checkpoint(directory: str) -> Optional[str]:
  # tf.train.latest_checkpoint reads the `checkpoint` state file; done by hand to avoid importing TF here.
  state = os.path.join(directory, 'checkpoint')
  if not os.path.isfile(state):
    return None
  with open(state) as f:
    for line in f:
      if line.startswith('model_checkpoint_path:'):
        name = line.split(':', 1)[1].strip().strip('"')
        return name if os.path.isabs(name) else os.path.join(directory, name)
  return None


def resolve_agent(path: str, config_path: Optional[str] = None, prefer: str = 'saved_model',
                  name: Optional[str] = None) -> AgentSource:
  """Works out what `path` is (module docstring) without loading TensorFlow; raises AgentLoadError."""
  if prefer not in ('saved_model', 'checkpoint'):
    raise AgentLoadError(f'prefer must be saved_model or checkpoint, got {prefer!r}')
  if not path:
    raise AgentLoadError('empty agent path')
  if config_path is not None and not os.path.isfile(config_path):
    raise AgentLoadError(f'{config_path}: config file not found')
  p = os.path.abspath(path)
  display = name or os.path.basename(p.rstrip(os.sep)) or p
  is_prefix = os.path.isfile(p + '.index')
  if not is_prefix and not os.path.exists(p):
    raise AgentLoadError(f'{path}: no such file or directory (expected a run logdir, a SavedModel directory, a '
                         'checkpoint prefix or a checkpoints/ directory)')
  cfg_file = config_path
  if os.path.isdir(p) and os.path.isfile(os.path.join(p, 'config.json')):   # a run's logdir
    cfg_file = cfg_file or os.path.join(p, 'config.json')
    sm, ckpt = os.path.join(p, 'saved_model'), _latest_checkpoint(os.path.join(p, 'checkpoints'))
    has_sm = os.path.isfile(os.path.join(sm, 'saved_model.pb'))
    if (prefer == 'checkpoint' and ckpt) or (not has_sm and ckpt):
      return AgentSource(path, 'checkpoint', ckpt, _load_config(cfg_file), display)
    if has_sm:
      return AgentSource(path, 'saved_model', sm, _load_config(cfg_file), display)
    raise AgentLoadError(f'{path}: run directory without saved_model/ or checkpoints/ (did the run finish?)')
  if os.path.isdir(p) and os.path.isfile(os.path.join(p, 'saved_model.pb')):
    if name is None and os.path.basename(p) == 'saved_model':
      display = os.path.basename(os.path.dirname(p))
    cfg_file = cfg_file or _find_config(os.path.dirname(p), levels=0)
    return AgentSource(path, 'saved_model', p, _load_config(cfg_file) if cfg_file else None, display)
  prefix = p if is_prefix else (_latest_checkpoint(p) if os.path.isdir(p) else None)
  if prefix is None:
    raise AgentLoadError(f'{path}: not a run logdir (config.json), a SavedModel (saved_model.pb), a checkpoint '
                         'prefix (<prefix>.index) or a checkpoints/ directory')
  cfg_file = cfg_file or _find_config(os.path.dirname(prefix))
  if cfg_file is None:
    raise AgentLoadError(f'{path}: a checkpoint needs the run\'s config.json to rebuild the network; none found '
                         'next to it or in its parent directories (pass the config path)')
  if name is None and os.path.basename(os.path.dirname(prefix)) == 'checkpoints':
    display = os.path.basename(os.path.dirname(os.path.dirname(prefix)))
  return AgentSource(path, 'checkpoint', prefix, _load_config(cfg_file), display)


# ------------------------------------------------------------------------------------------------ policies
class Policy:
  """A loaded agent: `logits(obs uint8 [B, N, H, W, C]) -> float [B, N, A]` and `act(...)`.

  `attention(obs)` returns the ACNN weights [B, heads, N, N] (checkpoint agents only; None for CNN).
  """

  def __init__(self, source: AgentSource, observation_hwc: Tuple[int, int, int], logits_fn, attention_fn=None,
               model=None):
    self.source = source
    self.name = source.name
    self.config = source.config
    self.observation_hwc = tuple(int(x) for x in observation_hwc)
    self._logits_fn = logits_fn
    self._attention_fn = attention_fn
    self.model = model

  @property
  def num_frames(self) -> int:
    if self.config is not None:
      return self.config.num_frames
    return self.observation_hwc[2] // SMM_PLANES

  def logits(self, observations: np.ndarray) -> np.ndarray:
    return np.asarray(self._logits_fn(observations))

  def attention(self, observations: np.ndarray) -> Optional[np.ndarray]:
    if self._attention_fn is None:
      return None
    w = self._attention_fn(observations)
    return None if w is None else np.asarray(w)

  def act(self, observations: np.ndarray, greedy: bool, rng: np.random.Generator) -> np.ndarray:
    """int32 [B, N]: argmax, or a sample from the policy (Gumbel-max with our own seeded generator, so a
    seeded evaluation repeats exactly; the SavedModel's own `actions` output is unseeded)."""
    logits = self.logits(observations).astype(np.float64)
    if not greedy:
      logits = logits + rng.gumbel(size=logits.shape)
    return np.argmax(logits, axis=-1).astype(np.int32)


def build_model(cfg: config_lib.MarlConfig, observation_shape, num_actions: int,
                shared_channels: Optional[Tuple[int, ...]] = None):
  """The run's network, rebuilt from its config by the learner itself, so every variant it knows (CNN/ACNN,
  prediction heads for aux runs, progressive columns) gets the same layers and checkpoint keys. The Adam slots
  it also creates are tiny and unused here. `shared_channels` defaults to the run's environment's
  (`env_shared_channels`); they change no variable, only how fast the first conv runs."""
  from rlcv_tf.marl import learner as learner_lib  # pylint: disable=g-import-not-at-top  (imports TensorFlow)
  if shared_channels is None:
    shared_channels = env_shared_channels(cfg)
  return learner_lib.Learner(cfg, tuple(observation_shape), num_actions, shared_channels=shared_channels).model


def restore_model(cfg: config_lib.MarlConfig, checkpoint_prefix: str, observation_shape=None, num_actions=None):
  """Rebuilds the network and restores its weights from a learner checkpoint (layout `model=...`)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if observation_shape is None or num_actions is None:
    observation_shape, num_actions = env_specs(cfg)
  model = build_model(cfg, observation_shape, num_actions)
  status = tf.train.Checkpoint(model=model).restore(checkpoint_prefix)
  try:
    status.assert_existing_objects_matched()   # every network variable found in the checkpoint
  except AssertionError as e:
    raise AgentLoadError(f'{checkpoint_prefix}: checkpoint does not match the network of its config ({e})') from None
  status.expect_partial()                       # the optimizer and counters are not needed here
  return model


def load_policy(source: AgentSource) -> Policy:
  """Loads the agent's weights (TensorFlow is imported here, so path errors come fast)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if source.kind == 'saved_model':
    try:
      served = tf.saved_model.load(source.weights)
    except Exception as e:  # pylint: disable=broad-except  (TF raises several types for a broken directory)
      raise AgentLoadError(f'{source.path}: could not load the SavedModel ({type(e).__name__}: {e})') from None
    if not hasattr(served, 'serve'):
      raise AgentLoadError(f'{source.path}: SavedModel has no `serve` endpoint (export with marl/export.py)')
    spec = served.signatures['serving_default'].structured_input_signature[1]
    hwc = tuple(next(iter(spec.values())).shape[2:])
    return Policy(source, hwc, lambda obs: served.serve(tf.constant(obs, tf.uint8))['policy_logits'].numpy())
  cfg = source.config
  obs_shape, num_actions = env_specs(cfg)
  model = restore_model(cfg, source.weights, obs_shape, num_actions)
  h, w, c = obs_shape[1:]

  @tf.function(input_signature=[tf.TensorSpec([None, None, h, w, c], tf.uint8)])
  def forward(obs):
    out = model(obs, training=False)
    return out['policy_logits'], out.get('attention', tf.zeros([0]))

  def attention(obs):
    if cfg.model != 'acnn':
      return None
    return forward(tf.constant(obs, tf.uint8))[1].numpy()

  return Policy(source, (h, w, c), lambda obs: forward(tf.constant(obs, tf.uint8))[0].numpy(), attention, model)


def load_agent(path: str, config_path: Optional[str] = None, prefer: str = 'saved_model',
               name: Optional[str] = None) -> Policy:
  """`resolve_agent` then `load_policy`: a path straight to a policy that acts."""
  return load_policy(resolve_agent(path, config_path, prefer, name))
