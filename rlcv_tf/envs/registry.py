"""`make_env(name, ...)`: the single place where environment names become environments.

Real engines are imported lazily by their adapters, so asking for `grf_5v5` without gfootball installed raises
`base.EnvironmentUnavailableError` with the install command; it never falls back to a stand-in. The stand-ins
have names of their own (`mini_*`, and `test_scripted` for the runtime's fault tests).

Each entry records the chapter whose methods it serves (`names(chapter=4)` lists the multi-agent ones) and its
default frame stack (`make_env(num_frames=None)`): 4 for Chapter 4's SMM/pixel envs and the DDPG family's state
vectors (App. 2.E), 1 where an LSTM carries the history (Chapter 2's A3C/ACER on Atari, CarRacing, CartPole).

Chapter 0 marks the environments of the companion seed documents (../shared/seeds/001-002: VAE representations for
policy gradients, the fully-convolutional beta-VAE), which belong to no thesis chapter: the ALE presets
`atari_<game>_seed001` / `atari_<game>_seed002[_rgb]` (rlcv_tf/envs/atari.py) and the NumPy stand-in
`mini_breakout[_tiny|_84]` (rlcv_tf/envs/mini_breakout.py).
"""

import dataclasses
import importlib
import inspect
from typing import Any, Callable, Dict, Optional, Tuple

from rlcv_tf.envs import base
from rlcv_tf.envs import frame_stack


@dataclasses.dataclass(frozen=True)
class EnvEntry:
  module: str            # rlcv_tf.envs.<module>
  factory: str           # function in that module: factory(seed=..., **kwargs) -> unstacked MultiAgentEnv
  kwargs: Tuple[Tuple[str, Any], ...] = ()
  description: str = ''
  real: bool = True      # False for the pure-NumPy stand-ins
  default_frames: int = 4  # the frame stack make_env builds when not told (num_frames=None)
  chapter: int = 4       # the thesis chapter whose methods use it (2: single-agent actor-critic; 4: multi-agent)


_REGISTRY: Dict[str, EnvEntry] = {}


def register(name: str, entry: EnvEntry):
  if name in _REGISTRY:
    raise ValueError(f'environment {name!r} registered twice')
  _REGISTRY[name] = entry


def names(chapter: Optional[int] = None):
  """Registered names, sorted; only those of one thesis chapter when `chapter` is given."""
  return sorted(n for n, e in _REGISTRY.items() if chapter is None or e.chapter == chapter)


def entry(name: str) -> EnvEntry:
  if name not in _REGISTRY:
    if name.startswith('atari_'):
      atari_names = ', '.join(n for n in names(chapter=2) if n.startswith('atari_'))
      seed_names = ', '.join(n for n in names(chapter=0) if n.startswith('atari_'))
      raise ValueError(f'unknown Atari environment {name!r}: the thesis games are {atari_names}; the seed presets '
                       f'are {seed_names}; other ALE games '
                       'are built with rlcv_tf.envs.atari.make_atari(game=ROM_ID) (list the ROM ids with `python '
                       '-c "import ale_py.roms as r; print(r.get_all_rom_ids())"`)')
    raise ValueError(f'unknown environment {name!r}; valid names: {", ".join(names())}')
  return _REGISTRY[name]


def check_available(name: str) -> None:
  """Raises `base.EnvironmentUnavailableError` (with the install command) if `name`'s engine is missing.

  Cheap: imports the engine but builds nothing, so launchers can fail fast before loading TensorFlow.
  Adapters opt in with a module-level `check_available()`; it is given those of the entry's keyword arguments it
  names (e.g. the Atari `game`, whose ROM it then checks).
  """
  e = entry(name)
  module = importlib.import_module(f'rlcv_tf.envs.{e.module}')
  check = getattr(module, 'check_available', None)
  if check is not None:
    accepted = inspect.signature(check).parameters
    check(**{k: v for k, v in e.kwargs if k in accepted})


def make_env(name: str, seed: int = 0, num_frames: Optional[int] = None, **overrides) -> base.MultiAgentEnv:
  """Builds environment `name` with frame stacking (`num_frames` <= 1 disables it; None: the entry's default).

  `overrides` replace the registered keyword arguments (e.g. `smm_hw=(36, 48)`, `num_agents=4`).
  """
  e = entry(name)
  factory: Callable[..., base.MultiAgentEnv] = getattr(importlib.import_module(f'rlcv_tf.envs.{e.module}'),
                                                      e.factory)
  kwargs = dict(e.kwargs)
  kwargs.update(overrides)
  env = factory(seed=seed, **kwargs)
  if num_frames is None:
    num_frames = e.default_frames
  if num_frames > 1:
    env = frame_stack.FrameStack(env, num_frames)
  return env



@dataclasses.dataclass(frozen=True)
class Probe:
  """What a learner needs to know of an environment before building its networks."""
  observation_shape: Tuple[int, ...]       # without the agent axis, with `num_frames` stacked
  num_actions: int                         # actions (discrete) or action dimensions (continuous)
  continuous_actions: bool
  settings: Dict[str, Any]                 # what the environment records about itself (ALE presets: ale_settings)


def probe(name: str, num_frames: Optional[int] = None, **overrides) -> Probe:
  """Builds environment `name` once (seed 0), reads its layout and closes it."""
  env = make_env(name, seed=0, num_frames=num_frames, **overrides)
  try:
    raw = getattr(env, 'unwrapped', env)
    return Probe(tuple(int(d) for d in env.observation_spec().shape[1:]), int(env.num_actions),
                 bool(getattr(raw, 'continuous_actions', False) or getattr(env, 'continuous_actions', False)),
                 dict(getattr(raw, 'ale_settings', None) or {'env': name}))
  finally:
    close = getattr(env, 'close', None)
    if close:
      close()

# ---------------------------------------------------------------------------------------------------- GRF (real)
register('grf_5v5', EnvEntry(
    'grf', 'make_5v5', (('num_agents', 5),),
    'Google Research Football 5_vs_5 vs the built-in AI; N=5 controls the goalie too (thesis), N=4 leaves it '
    'to the built-in AI.'))
register('grf_11v11_hard', EnvEntry(
    'grf', 'make_scenario', (('scenario', '11_vs_11_hard_stochastic'), ('num_agents', 1)),
    'Google Research Football 11_vs_11_hard_stochastic, one active player (Sec. 4.4.4).'))
for _scenario in ('academy_empty_goal_close', 'academy_empty_goal', 'academy_run_to_score',
                  'academy_run_to_score_with_keeper', 'academy_pass_and_shoot_with_keeper',
                  'academy_run_pass_and_shoot_with_keeper', 'academy_3_vs_1_with_keeper', 'academy_corner',
                  'academy_counterattack_easy', 'academy_counterattack_hard', 'academy_single_goal_versus_lazy'):
  register(f'grf_{_scenario}', EnvEntry(
      'grf', 'make_scenario', (('scenario', _scenario), ('num_agents', 1)),
      f'Google Research Football academy scenario {_scenario} (num_agents controls that many left players).'))

# ---------------------------------------------------------------------------------------------- DMLab2D (real)
register('dmlab2d_cleanup', EnvEntry(
    'dmlab2d_cleanup', 'make_cleanup', (('num_agents', 4),),
    'DeepMind Lab 2D clean_up (dmlab2d 1.0.2): 4 agents, 60 actions, +1 per apple, 1000 steps, global 72x96 '
    'RGB with the observer blue and the others red (Sec. 4.3.2).'))

# ------------------------------------------------------------------------------------- stand-ins (pure NumPy)
register('mini_5v5', EnvEntry(
    'mini_football', 'make_mini_football', (('scenario', '5v5'), ('num_agents', 5)),
    'Pure-NumPy football stand-in with the grf_5v5 interface (72x96 SMM, 19 actions). Tests and demos only.',
    real=False))
register('mini_5v5_small', EnvEntry(
    'mini_football', 'make_mini_football',
    (('scenario', '5v5'), ('num_agents', 5), ('smm_hw', (18, 24)), ('episode_length', 400),
     ('speed_scale', 3.0)),
    'mini_5v5 at 18x24 with faster players and 400-step games, for CPU learning checks.', real=False))
register('mini_academy_3v1', EnvEntry(
    'mini_football', 'make_mini_football', (('scenario', 'academy_3v1'), ('num_agents', 3)),
    'Stand-in 3 attackers vs defender + keeper; ends on a goal, lost ball or 200 steps.', real=False))
register('mini_run_to_score', EnvEntry(
    'mini_football', 'make_mini_football', (('scenario', 'run_to_score'), ('num_agents', 2)),
    'Stand-in sanity task: no opponents, run the ball into the goal.', real=False))
register('test_scripted', EnvEntry(
    'scripted', 'make_scripted', (),
    'Test stand-in for the runtime: tiny predictable observations and faults on request (hang_at_step, '
    'crash_at_step, fail_to_build, only_seeds). Tests only.', real=False))

# ------------------------------------------------------------------------ Chapter 2: single-agent (real engines)
_ATARI_TITLES = {'seaquest': 'Seaquest', 'beam_rider': 'BeamRider', 'ms_pacman': 'MsPacman', 'boxing': 'Boxing',
                 'breakout': 'Breakout', 'qbert': 'Qbert', 'freeway': 'Freeway'}
for _game, _title in _ATARI_TITLES.items():
  register(f'atari_{_game}', EnvEntry(
      'atari', 'make_atari', (('game', _game),),
      f'{_title} on ALE (ale-py 0.12.1, ALE/{_title}-v5 with the v4 settings): frame skip 2-4, no sticky actions, '
      'minimal action set, 80x80 normalised grayscale, raw rewards (Sec. 2.5).', default_frames=1, chapter=2))
register('bipedal_walker', EnvEntry(
    'box2d', 'make_bipedal_walker', (),
    'BipedalWalker-v3 (Box2D): 24-number state as [1, 24, 1], 4 continuous actions in [-1, 1]; 4 stacked states '
    '(DDPG family, App. 2.E).', default_frames=4, chapter=2))
register('car_racing', EnvEntry(
    'box2d', 'make_car_racing', (),
    'CarRacing-v3 (Box2D): 12 discrete actions (brake/gas/right/left x 3 intensities) held 4 physics steps, static '
    'zoom, 80x80 normalised grayscale (ACER family, App. 2.D).', default_frames=1, chapter=2))
register('cartpole_masked', EnvEntry(
    'classic', 'make_cartpole_masked', (),
    'CartPole-v1 seeing only (x, theta), actions held 2-4 steps: a cheap memory task for learning checks.',
    default_frames=1, chapter=2))
register('pendulum', EnvEntry(
    'classic', 'make_pendulum', (),
    'Pendulum-v1: state [1, 3, 1], one torque in [-2, 2]; the DDPG family\'s cheap learning check.',
    default_frames=4, chapter=2))

# ----------------------------------------------------------------- Chapter 3: world graphs (our own maze engine)
_MAZE_TASKS = {
    'goalreach': 'GoalReach (phase 1): reach the goal (set by the caller, default the exit) in 25 steps, +1',
    'multigoal': 'MultiGoal: +1 per ball (6), the exit ends the episode, -0.01 per action',
    'multigoal_sparse': 'MultiGoal-Sparse: on the exit, balls collected / 6; -0.01 per action',
    'multigoal_stochastic': 'MultiGoal-Stochastic: MultiGoal with lava re-drawn every step (terminal)',
    'doorkey': 'Door-Key: key, pick/toggle a locked door in a divider (+1 first toggle), +1 on the exit (success)',
}
_MAZE_SIZES = {'tiny': '7x7', 'small': '13x13', 'medium': '21x21', 'large': '29x29'}
for _size, _hw in _MAZE_SIZES.items():
  for _task, _what in _MAZE_TASKS.items():
    register(f'maze_{_size}_{_task}', EnvEntry(
        'maze', 'make_maze', (('size', _size), ('task', _task)),
        f'{_what}; {_size} {_hw} maze, full uint8 [1, H, W, 9] view, N = 1 (Table 3.1, our engine: '
        'rlcv_tf/envs/maze.py).', default_frames=1, chapter=3))

# ------------------------------------------------------------- companion seeds 001-002 (chapter 0; issue 14)
register('mini_breakout', EnvEntry(
    'mini_breakout', 'make_mini_breakout', (('size', 42), ('auto_serve', True)),
    'MiniBreakout 42x42 (seed 001 spec Sec. 6, the `small` preset): pure-NumPy Breakout, uint8 grey [1, 42, 42, 1], '
    '1-px ball, 6x12 bricks, 5 lives, actions NOOP/FIRE/RIGHT/LEFT, a ball served at reset and after a lost life '
    '(as the ALE seed-001 preset FIREs). A stand-in, never a fallback for the ALE.',
    real=False, default_frames=2, chapter=0))
register('mini_breakout_tiny', EnvEntry(
    'mini_breakout', 'make_mini_breakout', (('size', 21), ('auto_serve', True)),
    'MiniBreakout 21x21 (seed 001 `tiny` preset): faster ball, wider paddle; learning checks in seconds.',
    real=False, default_frames=2, chapter=0))
register('mini_breakout_84', EnvEntry(
    'mini_breakout', 'make_mini_breakout', (('size', 84), ('auto_serve', True)),
    'MiniBreakout 84x84 (paper-like size): 2x2 ball, 2-px bricks and walls, 12x2 paddle.',
    real=False, default_frames=2, chapter=0))
_SEED002_TITLES = {'pong': 'Pong', 'breakout': 'Breakout', 'space_invaders': 'SpaceInvaders'}
register('atari_breakout_seed001', EnvEntry(
    'atari', 'make_atari', (('game', 'breakout'), ('preset', 'seed001')),
    'Breakout on ALE, seed 001 preset: frame skip 4, the whole frame in ALE grey area-resized to uint8 84x84, '
    '1-30 no-ops, FIRE on reset and after a lost life, 27,000-step cap, raw rewards; n = 4 frames.',
    default_frames=4, chapter=0))
for _game, _title in _SEED002_TITLES.items():
  register(f'atari_{_game}_seed002', EnvEntry(
      'atari', 'make_atari', (('game', _game), ('preset', 'seed002')),
      f'{_title} on ALE, seed 002 preset: frame skip 4, max of the last two RGB frames, luminance, area-resized '
      'to uint8 84x84, sticky actions 0.25 (frames for the beta-VAE).', default_frames=1, chapter=0))
  register(f'atari_{_game}_seed002_rgb', EnvEntry(
      'atari', 'make_atari', (('game', _game), ('preset', 'seed002_rgb')),
      f'{_title} on ALE, seed 002 colour preset: as atari_{_game}_seed002 keeping RGB, uint8 [1, 84, 84, 3].',
      default_frames=1, chapter=0))


# ------------------------------------------------------------- companion seeds 003-004 (chapter 0; issue 15)
for _game, _title in (('breakout', 'Breakout'), ('pong', 'Pong')):
  register(f'atari_{_game}_nature', EnvEntry(
      'atari', 'make_atari', (('game', _game), ('preset', 'nature_dqn')),
      f'{_title} on ALE, Nature-DQN preset: frame skip 4, max of the last two RGB frames, Y luminance, area-resized '
      'to uint8 84x84, 1-30 no-ops, raw rewards (DQN sign-clips); 4 frames stacked by the learner.',
      default_frames=4, chapter=0))
for _game, _gym_id in (('cartpole', 'CartPole-v1'), ('acrobot', 'Acrobot-v1'), ('mountaincar', 'MountainCar-v0')):
  register(_game, EnvEntry(
      'classic', 'make_classic', (('game', _game),),
      f'{_gym_id} as gymnasium has it: the state vector as float32 [1, D, 1], discrete actions (seeds 003-004 DQN '
      'and REINFORCE).', default_frames=1, chapter=0))
register('mini_chain', EnvEntry(
    'chain', 'make_chain', (),
    'A 6-state corridor (spec seeds003_004 Sec. 7.7): one-hot state float32 [1, 6, 1], left / right, +1 and the end '
    'at the right end, 20-step cap. A stand-in for DQN learning checks.', real=False, default_frames=1, chapter=0))
