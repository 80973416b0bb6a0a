"""gymnasium ids for Chapter 3's maze tasks over the batched engine `maze.BatchMaze` (issue 11 Sec. 1, spec ch3 Sec. 5).

Importing this module registers `rlcv_tf/Maze-{Task}-{Size}-v0` for Task in GoalReach, MultiGoal, MultiGoalSparse,
MultiGoalStochastic, DoorKey and Size in Tiny, Small, Medium, Large (also reachable without the import as
`gymnasium.make('rlcv_tf.envs.maze_gym:rlcv_tf/Maze-MultiGoal-Small-v0')`):

  * `gymnasium.make(id)` gives `MazeGymEnv`, one maze: observation Box uint8 {0, 1} [H, W, 9] (planes as in
    `maze.PLANES`), action Discrete(4) (Discrete(6) in DoorKey). `reset(seed=s)` seeds its `np_random`, which the
    engine then draws from. `reset(options={'agent': (r, c), 'goal': (r, c)})` places the agent (any task) and the
    goal (GoalReach only) after the reset. The time limit is the engine's own (a truncation).
  * `gymnasium.make_vec(id, num_envs=B, vectorization_mode='vector_entry_point')` gives `MazeVectorEnv`, the B envs
    of one `BatchMaze` stepped together. `reset(seed=s)` seeds sub-env i with s + i (as SyncVectorEnv does), so
    sub-env i equals `gymnasium.make(id)` reset with seed s + i. It resets an ended sub-env within the same step
    (AutoresetMode.SAME_STEP): `info['final_obs']` holds the last observation of the episode that ended and
    `info['final_info']` its statistics.

Keyword arguments of `make`/`make_vec` go to `BatchMaze` (max_steps, step_penalty, num_balls, num_lava).
"""

from typing import Any, Dict, Optional

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from rlcv_tf.envs import maze
from rlcv_tf.envs import maze_layouts

TASK_IDS = {'goalreach': 'GoalReach', 'multigoal': 'MultiGoal', 'multigoal_sparse': 'MultiGoalSparse',
            'multigoal_stochastic': 'MultiGoalStochastic', 'doorkey': 'DoorKey'}
SIZE_IDS = {'tiny': 'Tiny', 'small': 'Small', 'medium': 'Medium', 'large': 'Large'}
STATS = ('episode_return', 'episode_length', 'balls_collected', 'door_opened', 'success', 'lava')


def env_id(task: str, size: str) -> str:
  """The gymnasium id of `task` (a `maze.TASKS` name) on the maze of `size`."""
  if task not in TASK_IDS or size not in SIZE_IDS:
    raise ValueError(f'unknown maze task/size {task!r}/{size!r}; tasks: {", ".join(TASK_IDS)}; sizes: '
                     f'{", ".join(SIZE_IDS)}')
  return f'rlcv_tf/Maze-{TASK_IDS[task]}-{SIZE_IDS[size]}-v0'


def _spaces(engine: maze.BatchMaze):
  return (spaces.Box(0, 1, engine.observation_shape, np.uint8), spaces.Discrete(engine.num_actions))


class MazeGymEnv(gymnasium.Env):
  """One maze as a `gymnasium.Env` (module docstring)."""

  metadata = {'render_modes': ['ansi'], 'render_fps': 4}

  def __init__(self, task: str = 'multigoal', size: str = 'small', render_mode: Optional[str] = None, **kwargs):
    if render_mode not in (None, 'ansi'):
      raise ValueError(f'render_mode must be None or "ansi", got {render_mode!r}')
    self.render_mode = render_mode
    self._engine = maze.BatchMaze(1, maze=size, task=task, seeds=[0], autoreset=False, **kwargs)
    self.observation_space, self.action_space = _spaces(self._engine)

  @property
  def engine(self) -> maze.BatchMaze:
    return self._engine

  def reset(self, *, seed: Optional[int] = None, options: Optional[Dict[str, Any]] = None):
    super().reset(seed=seed)
    self._engine.set_rngs([0], [self.np_random])
    obs = self._engine.reset()
    options = dict(options or {})
    unknown = set(options) - {'agent', 'goal'}
    if unknown:
      raise ValueError(f'unknown reset options {sorted(unknown)}; valid: agent=(row, col), goal=(row, col)')
    if 'goal' in options:
      self._engine.set_goal([0], [options['goal']])
    if 'agent' in options:
      obs = self._engine.set_agent([0], [options['agent']])
    return obs[0], {'goal': self._engine.goals[0]}

  def step(self, action):
    obs, reward, terminated, truncated, info = self._engine.step(np.array([int(action)]))
    return (obs[0], float(reward[0]), bool(terminated[0]), bool(truncated[0]),
            {k: info[k][0].item() for k in STATS})

  def render(self) -> Optional[str]:
    return self._engine.text(0) if self.render_mode == 'ansi' else None


class MazeVectorEnv(gymnasium.vector.VectorEnv):
  """B mazes of one `BatchMaze` as a `gymnasium.vector.VectorEnv` (module docstring)."""

  metadata = {'autoreset_mode': AutoresetMode.SAME_STEP, 'render_modes': []}

  def __init__(self, num_envs: int = 1, task: str = 'multigoal', size: str = 'small', **kwargs):
    self._engine = maze.BatchMaze(num_envs, maze=size, task=task, autoreset=True, **kwargs)
    self.num_envs = self._engine.num_envs
    self.single_observation_space, self.single_action_space = _spaces(self._engine)
    self.observation_space = batch_space(self.single_observation_space, self.num_envs)
    self.action_space = batch_space(self.single_action_space, self.num_envs)

  @property
  def engine(self) -> maze.BatchMaze:
    return self._engine

  def reset(self, *, seed=None, options: Optional[Dict[str, Any]] = None):
    """`seed`: None (the sub-envs' generators go on), an int s (sub-env i gets s + i) or one int per sub-env."""
    if options:
      raise ValueError(f'MazeVectorEnv.reset takes no options, got {sorted(options)}; use .engine.set_agent / '
                       '.engine.set_goal after the reset')
    super().reset(seed=seed if isinstance(seed, (int, np.integer)) else None)
    return self._engine.reset(seeds=seed), {}

  def step(self, actions):
    obs, reward, terminated, truncated, info = self._engine.step(np.asarray(actions))
    everyone = np.ones(self.num_envs, bool)
    infos: Dict[str, Any] = {}
    for k in STATS:
      infos[k], infos[f'_{k}'] = info[k], everyone
    ended = terminated | truncated
    if ended.any():
      final_obs = np.full(self.num_envs, None, dtype=object)
      for i in np.flatnonzero(ended):
        final_obs[i] = info['final_obs'][i]
      infos['final_obs'], infos['_final_obs'] = final_obs, ended
      final_info: Dict[str, Any] = {}
      for k in STATS:
        final_info[k] = np.where(ended, info[k], np.zeros_like(info[k]))
        final_info[f'_{k}'] = ended
      infos['final_info'], infos['_final_info'] = final_info, ended
    return obs, reward, terminated, truncated, infos


def register_all() -> None:
  """Registers every `rlcv_tf/Maze-{Task}-{Size}-v0` not registered yet (importing this module does it)."""
  for size in maze_layouts.SIZES:
    for task in maze.TASKS:
      name = env_id(task, size)
      if name not in gymnasium.registry:
        gymnasium.register(id=name, entry_point=f'{__name__}:MazeGymEnv',
                           vector_entry_point=f'{__name__}:MazeVectorEnv', kwargs={'task': task, 'size': size})


register_all()
