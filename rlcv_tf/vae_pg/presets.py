"""Settings of a seed-001 run (VAE representations guided by policy gradients): one frozen dataclass, three presets.

Source: seed 001 Tables 1-3 (S:L522-556; copied in spec seed001 Sec. 5). What the paper leaves unstated is the spec's
reading (its Sec. 9), recorded in every run's config.json so a run says which reading it used:

  "batch size 32" (Tables 2/3)    32 minibatches per epoch (minibatch = 16 x 2048 / 32 = 1,024; spec A1: the other
                                  values are OpenAI-baselines ppo2's defaults, where 32 is `nminibatches`)
  n (frames stacked)              4 (A3)
  PPO clip eps, delta_target      0.2, 0.015, checked after each minibatch with early stop (A4, A5); the literal
                                  Algorithm 1 lines 11-13 (revert the whole update) is kl_mode='revert'
  beta                            1 (A8)
  reconstruction                  Bernoulli log-likelihood summed over pixels, mean over frames (A7)
  VAE loss in joint training      on all n frames of each sample (A10; 'newest' as an option)
  trunk                           one 64-64 tanh trunk shared by policy and value (A9)
  gradient clipping, value clip   none, none (a global-norm clip would partly cancel kappa)
  advantages                      normalised per minibatch
  rewards                         sign-clipped for training; raw scores logged (A11)

Presets:
  paper   ALE Breakout (`atari_breakout_seed001`: whole frame, grey 84x84, frame skip 4, <= 30 no-ops, FIRE on
          reset and after a lost life, 27,000-step cap), Tables 1-3: 16 envs x 2048 steps, 32 minibatches, K = 10,
          10^7 agent steps, VAE pre-training 25,000 frames x 100 epochs at batch 128. GPU-days for 3 variants x
          3 seeds (spec Sec. 5); the command is documented, not run here.
  small   mini_breakout 42x42 (a NumPy stand-in, a 1-pixel ball), n = 2, encoder Conv 16-32 + FC 128, 20 latents,
          8 envs x 128 steps, 4 minibatches, K = 4, 200,000 agent steps; VAE pre-training 5,000 frames x 10 epochs.
  check   mini_breakout_tiny 21x21, n = 2, encoder Conv 8-16 + FC 32, 8 latents, 8 envs x 64 steps, 4 minibatches,
          K = 4, Adam 1e-3, entropy bonus c3 = 0.01, 200,000 agent steps; pre-training 2,000 frames x 10 epochs at
          batch 32. The launcher's flagless run and the slow learning test; its learning check is calibrated
          (learning_check.CALIBRATED). Two departures from Tables 2/3, both measured on this stand-in: with c3 = 0
          (the paper's) the policy's entropy fell from 1.39 to 0.47 within 75,000 steps at Adam 3e-4 without any
          learning, and at 1e-3 it learned to 18 bricks by 160,000 steps and then collapsed to a deterministic
          policy (entropy 0.009) at random play's score; with c3 = 0.01, 3 of 3 seeds passed the learning check (best 100
          episodes 2.8-8.1x random play), though runs can still collapse later (learning_check's docstring).
  tiny    mini_breakout_tiny 21x21, n = 2, encoder Conv 8-16 + FC 32, 4 latents, 2 envs x 16 steps, K = 1: tests.
"""

import dataclasses
import os
from typing import Tuple

from rlcv_tf.core import runs

VARIANTS = ('fixed', 'adapt', 'joint')
KL_MODES = ('early_stop', 'revert')
STAGES = ('pretrain', 'rl')
VAE_LOSS_FRAMES = ('all', 'newest')
PRESETS = ('paper', 'small', 'check', 'tiny')
RUNTIMES = ('actors', 'inline')

# Fields that fix the networks: a resumed run, or a pre-trained VAE loaded into a policy, must agree on them.
ARCHITECTURE_FIELDS = ('env', 'image_size', 'num_frames', 'enc_filters', 'enc_fc', 'latent_dim')


@dataclasses.dataclass(frozen=True)
class VaePgConfig(runs.ConfigRecord):
  """One run's settings (defaults: the `small` preset, variant adapt)."""
  preset: str = 'small'
  variant: str = 'adapt'
  env: str = 'mini_breakout'
  image_size: int = 42
  num_frames: int = 2                      # n
  enc_filters: Tuple[int, int] = (16, 32)  # Table 1: (32, 64)
  enc_fc: int = 128                        # Table 1: 512
  latent_dim: int = 20                     # Table 1: 20
  hidden: Tuple[int, int] = (64, 64)       # Tables 2/3: FC 64 (tanh) - FC 64 (tanh)
  # PPO (Tables 2/3)
  total_steps: int = 200_000               # agent steps over all envs (spec A12)
  num_envs: int = 8                        # 16
  envs_per_actor: int = 4
  t_max: int = 128                         # 2048
  num_minibatches: int = 4                 # "batch size 32" read as 32 minibatches (A1)
  epochs: int = 4                          # K = 10
  learning_rate: float = 3e-4
  clip_eps: float = 0.2
  c1: float = 1.0
  c2: float = 0.5
  c3: float = 0.0
  gamma: float = 0.99
  gae_lambda: float = 0.95
  kappa: float = 20.0                      # joint only (Table 3); fixed/adapt use 1
  beta: float = 1.0
  delta_target: float = 0.015
  kl_mode: str = 'early_stop'
  normalize_advantages: bool = True
  reward_clip: str = 'sign'                # 'sign' or 'none'
  vae_loss_frames: str = 'all'
  # VAE pre-training (Table 1)
  pretrain_frames: int = 5_000             # 25,000
  pretrain_epochs: int = 10                # 100
  pretrain_batch: int = 128
  pretrain_lr: float = 1e-4
  val_fraction: float = 0.1
  collect_policy: str = 'tracker'          # the paper's "already trained policy" is not available (A13)
  # run plumbing
  seed: int = 0
  runtime: str = 'actors'
  checkpoint_interval_s: float = 600.0
  log_interval_s: float = 30.0

  @property
  def effective_kappa(self) -> float:
    """kappa weights the PPO loss only in joint training (Table 3); fixed and adapt minimise L_PPO alone."""
    return float(self.kappa) if self.variant == 'joint' else 1.0

  @property
  def batch_size(self) -> int:
    return self.num_envs * self.t_max

  @property
  def minibatch_size(self) -> int:
    return self.batch_size // self.num_minibatches

  def validate(self) -> 'VaePgConfig':
    """Raises ValueError (one line naming the setting and the fix) for an impossible configuration."""
    choices = (('variant', VARIANTS), ('kl_mode', KL_MODES), ('preset', PRESETS), ('runtime', RUNTIMES),
               ('vae_loss_frames', VAE_LOSS_FRAMES), ('reward_clip', ('sign', 'none')))
    for name, valid in choices:
      if getattr(self, name) not in valid:
        raise ValueError(f'{name}: unknown value {getattr(self, name)!r}; valid values: {", ".join(valid)}')
    if not self.kappa > 0:
      raise ValueError(f'kappa must be > 0 (it multiplies the PPO loss; the paper uses 20), got {self.kappa}')
    if self.beta < 0:
      raise ValueError(f'beta must be >= 0, got {self.beta}')
    positive = ('image_size', 'num_frames', 'enc_fc', 'latent_dim', 'total_steps', 'num_envs', 'envs_per_actor',
                't_max', 'num_minibatches', 'epochs', 'pretrain_frames', 'pretrain_epochs', 'pretrain_batch')
    for name in positive:
      if int(getattr(self, name)) < 1:
        raise ValueError(f'{name} must be >= 1, got {getattr(self, name)}')
    if self.batch_size % self.num_minibatches:
      raise ValueError(f'num_minibatches={self.num_minibatches} must divide num_envs x t_max = {self.batch_size}')
    if not 0 < self.clip_eps < 1:
      raise ValueError(f'clip_eps must lie in (0, 1), got {self.clip_eps}')
    if not 0 <= self.gamma <= 1 or not 0 <= self.gae_lambda <= 1:
      raise ValueError(f'gamma and gae_lambda must lie in [0, 1], got {self.gamma}, {self.gae_lambda}')
    if not self.delta_target > 0:
      raise ValueError(f'delta_target must be > 0, got {self.delta_target}')
    if not 0 <= self.val_fraction < 1:
      raise ValueError(f'val_fraction must lie in [0, 1), got {self.val_fraction}')
    return self

  def architecture(self) -> dict:
    return {k: getattr(self, k) for k in ARCHITECTURE_FIELDS}


PAPER = VaePgConfig(
    preset='paper', env='atari_breakout_seed001', image_size=84, num_frames=4, enc_filters=(32, 64), enc_fc=512,
    latent_dim=20, total_steps=10_000_000, num_envs=16, envs_per_actor=2, t_max=2048, num_minibatches=32, epochs=10,
    pretrain_frames=25_000, pretrain_epochs=100, c3=0.0, log_interval_s=60.0)
SMALL = VaePgConfig()
CHECK = VaePgConfig(
    preset='check', env='mini_breakout_tiny', image_size=21, num_frames=2, enc_filters=(8, 16), enc_fc=32,
    latent_dim=8, total_steps=200_000, num_envs=8, envs_per_actor=4, t_max=64, num_minibatches=4, epochs=4,
    learning_rate=1e-3, c3=0.01, pretrain_frames=2_000, pretrain_epochs=10, pretrain_batch=32, runtime='inline',
    log_interval_s=20.0)
TINY = VaePgConfig(
    preset='tiny', env='mini_breakout_tiny', image_size=21, num_frames=2, enc_filters=(8, 16), enc_fc=32,
    latent_dim=4, hidden=(64, 64), total_steps=64, num_envs=2, envs_per_actor=2, t_max=16, num_minibatches=2,
    epochs=1, pretrain_frames=200, pretrain_epochs=1, pretrain_batch=32, runtime='inline', log_interval_s=5.0)
_PRESETS = {'paper': PAPER, 'small': SMALL, 'check': CHECK, 'tiny': TINY}


def preset(name: str, **overrides) -> VaePgConfig:
  """The named preset with `overrides` (validated)."""
  if name not in _PRESETS:
    raise ValueError(f'preset: unknown value {name!r}; valid values: {", ".join(PRESETS)}')
  return _PRESETS[name].replace(**overrides).validate()


CONFIG_FILE = 'config.json'


def load(logdir: str):
  """The config of the run in `logdir` (None if there is none). Files only, no TensorFlow."""
  saved = runs.load_config(logdir)
  return None if saved is None else VaePgConfig.from_dict({k: v for k, v in saved.items()
                                                           if k in {f.name for f in dataclasses.fields(VaePgConfig)}})


def check_pretrain_logdir(cfg: VaePgConfig, pretrain_logdir: str) -> None:
  """ValueError (one line) unless `pretrain_logdir` holds a finished VAE pre-training whose networks fit `cfg`."""
  saved = load(pretrain_logdir)
  if saved is None or not os.path.exists(os.path.join(pretrain_logdir, 'vae', 'vae.weights.h5')):
    raise ValueError(f'{pretrain_logdir} holds no pre-trained VAE (no config.json or vae/vae.weights.h5): run '
                     f'python -m launchers.vae_pg --stage=pretrain --logdir={pretrain_logdir} first')
  for name in ARCHITECTURE_FIELDS:
    if name == 'env':
      continue
    if runs.tuplify(getattr(saved, name)) != runs.tuplify(getattr(cfg, name)):
      raise ValueError(f'the pre-trained VAE in {pretrain_logdir} has {name}={getattr(saved, name)!r}, this run '
                       f'{name}={getattr(cfg, name)!r}: use the same preset/flags as its pre-training, or pre-train '
                       'again')
