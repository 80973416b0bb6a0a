"""Google Research Football (gfootball 2.10.2, built from source) behind the `base.MultiAgentEnv` interface.

Thesis Sec. 4.3.1: 5-vs-5 against the built-in AI with the goalie controlled too (N = 5; the stock
`5_vs_5` scenario marks both keepers uncontrollable, so we build a variant of it), super-mini-map (SMM)
observations of 72x96 with planes (home team, opponents, ball, active agent), 19 actions per agent
(gfootball's default action set), per-agent rewards `scoring,checkpoints`, 3000-step games. Also
`11_vs_11_hard_stochastic` with one active player and the academy scenarios by name.

Two-team control (`right_agents` > 0; for agent-vs-agent evaluation): gfootball's
`number_of_right_players_agent_controls` hands right-team players to the caller too. The agent axis then holds
the left agents first and the right agents after them (gfootball's order). gfootball shows a right-team agent the
game from its own side (`football_env._convert_observations`: our agents are `PlayerBase`s with
`can_play_right() == False`, so their observation goes through `observation_rotation.flip_observation`): the
pitch is rotated by 180 degrees about the centre spot (x -> -x AND y -> -y, not a left-right mirror), the teams
are swapped (SMM plane 0 is the agent's own team, plane 1 the opponents), so every agent attacks towards +x;
its direction actions are rotated back (`flip_single_action`) before the engine applies them, its scoring
reward is negated and its checkpoint reward is computed on the rotated observation. A policy trained on the left
therefore plays the right side unchanged; `tests/test_grf_two_team.py` checks this on the engine.

gfootball is imported lazily; without it every factory raises `base.EnvironmentUnavailableError` naming the
command that builds it. Frames are single SMMs here: stacking happens once, in `frame_stack.FrameStack`.
"""

import importlib
import sys
import types
from typing import Optional, Tuple

import dm_env
import numpy as np
from dm_env import specs

from rlcv_tf.core import quiet
from rlcv_tf.envs import base
from rlcv_tf.envs import smm

NUM_ACTIONS = 19
_INSTALL_HINT = ('Google Research Football (the `gfootball` engine) is not installed in this Python environment. '
                 'Install it with `bash scripts/setup.sh` (builds gfootball 2.10.2 from source once, about 5 '
                 'minutes, and caches the wheel in ~/.cache/rlcv_tf/wheels).')


def _import_gfootball():
  # gfootball runs on gym 0.26: its import banner and old-step-API warnings are noise here (core/quiet.py).
  quiet.silence_gym_notice()
  quiet.filter_known_warnings()
  try:
    import gfootball.env as football_env  # pylint: disable=g-import-not-at-top
    from gfootball.scenarios import __dict__ as scenario_api  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise base.EnvironmentUnavailableError(f'{_INSTALL_HINT} (import failed: {e})') from None
  return football_env, scenario_api


def check_available():
  _import_gfootball()


def _register_scenario(name: str, build) -> str:
  """Makes `build(builder)` loadable by gfootball, which imports scenarios as `gfootball.scenarios.<name>`."""
  full = f'gfootball.scenarios.{name}'
  if full not in sys.modules:
    module = types.ModuleType(full)
    module.build_scenario = build
    sys.modules[full] = module
  return name


def _five_vs_five(control_goalie: bool, game_duration: int, control_right_goalie: bool = False):
  """5_vs_5 as gfootball ships it (positions, 0.05 difficulty for both teams), with the home goalie
  controllable when `control_goalie` (the away goalie when `control_right_goalie`) and a configurable game
  length."""
  _, api = _import_gfootball()
  team, gk = api['Team'], api['e_PlayerRole_GK']
  rm, cf, lb, cb = api['e_PlayerRole_RM'], api['e_PlayerRole_CF'], api['e_PlayerRole_LB'], api['e_PlayerRole_CB']

  def build(builder):
    builder.config().game_duration = game_duration
    builder.config().right_team_difficulty = 0.05
    builder.config().left_team_difficulty = 0.05
    builder.config().deterministic = False
    # As in the stock scenario, the team laid out first alternates between episodes.
    first, second = (team.e_Left, team.e_Right) if builder.EpisodeNumber() % 2 == 0 else (team.e_Right, team.e_Left)
    for side, field_players in ((first, ((0.0, 0.02, rm), (0.0, -0.02, cf))),
                                (second, ((-0.04, 0.04, rm), (-0.04, -0.04, cf)))):
      builder.SetTeam(side)
      gk_controllable = control_goalie if side == team.e_Left else control_right_goalie
      builder.AddPlayer(-1.0, 0.0, gk, controllable=gk_controllable)
      for x, y, role in field_players:
        builder.AddPlayer(x, y, role)
      builder.AddPlayer(-0.1, -0.1, lb)
      builder.AddPlayer(-0.1, 0.1, cb)

  suffix = '_rgk1' if control_right_goalie else ''  # the old names stay as they were
  return _register_scenario(f'rlcv_5_vs_5_gk{int(control_goalie)}{suffix}_d{game_duration}', build)


def _with_duration(scenario: str, game_duration: Optional[int]) -> str:
  if game_duration is None:
    return scenario
  stock = importlib.import_module(f'gfootball.scenarios.{scenario}')

  def build(builder):
    stock.build_scenario(builder)
    builder.config().game_duration = game_duration

  return _register_scenario(f'rlcv_{scenario}_d{game_duration}', build)


class GoogleFootball(base.MultiAgentEnv):
  """N controlled left-team players of a gfootball scenario; observations uint8 [N, H, W, 4] (one SMM each).

  With `right_agents` = M > 0 the caller controls M right-team players too: observations, actions and rewards
  have N + M agents, left first, each from its own side (module docstring).
  """

  def __init__(self, level: str, num_agents: int, smm_hw: Tuple[int, int] = (72, 96),
               rewards: str = 'scoring,checkpoints', seed: int = 0, render: bool = False, right_agents: int = 0):
    football_env, _ = _import_gfootball()
    if num_agents < 1:
      raise ValueError(f'num_agents must be >= 1, got {num_agents}')
    if right_agents < 0:
      raise ValueError(f'right_agents must be >= 0, got {right_agents}')
    self._n_left = num_agents
    self._n_right = int(right_agents)
    self._n = num_agents + self._n_right
    self._hw = (int(smm_hw[0]), int(smm_hw[1]))
    self._env = football_env.create_environment(
        env_name=level, representation='extracted', stacked=False, rewards=rewards, render=render,
        number_of_left_players_agent_controls=num_agents, number_of_right_players_agent_controls=self._n_right,
        channel_dimensions=(self._hw[1], self._hw[0]),
        other_config_options={'game_engine_random_seed': int(seed) % (2**31)})
    n_act = self._env.action_space.nvec[0] if hasattr(self._env.action_space, 'nvec') else self._env.action_space.n
    if n_act != NUM_ACTIONS:
      raise RuntimeError(f'gfootball gave {n_act} actions per player, expected the default set of {NUM_ACTIONS}')
    self._obs = None
    self._score = (0, 0)
    self._needs_reset = True

  @property
  def num_agents(self) -> int:
    return self._n

  @property
  def team_sizes(self) -> Tuple[int, int]:
    """(left agents, right agents) on the agent axis; right agents is 0 unless two-team control is on."""
    return (self._n_left, self._n_right)

  @property
  def num_actions(self) -> int:
    return NUM_ACTIONS

  @property
  def map_hw(self) -> Tuple[int, int]:
    return self._hw

  def observation_spec(self):
    return specs.Array((self._n,) + self._hw + (4,), np.uint8, name='smm')

  @property
  def shared_channels(self) -> Tuple[int, ...]:
    """The SMM's left team, right team and ball planes: the same for every agent of a team (smm.SHARED_LAYERS)."""
    return smm.SHARED_LAYERS

  def _observe(self, obs) -> np.ndarray:
    # gfootball drops the player axis when it controls a single player.
    obs = np.asarray(obs, np.uint8)
    if obs.ndim == 3:
      obs = obs[np.newaxis]
    self._obs = obs
    return obs

  def _update_score(self):
    raw = self._env.unwrapped.observation()
    if raw:
      score = raw[0].get('score')
      if score is not None:
        self._score = (int(score[0]), int(score[1]))

  def reset(self) -> dm_env.TimeStep:
    obs = self._observe(self._env.reset())
    self._score = (0, 0)
    self._needs_reset = False
    return dm_env.restart(obs)

  def step(self, actions) -> dm_env.TimeStep:
    if self._needs_reset:
      return self.reset()
    actions = base.check_actions(actions, self._n, NUM_ACTIONS)
    obs, reward, done, _ = self._env.step(actions if self._n > 1 else actions[:1])
    obs = self._observe(obs)
    reward = np.broadcast_to(np.asarray(reward, np.float32), (self._n,)).copy()
    self._update_score()
    if done:
      self._needs_reset = True
      return dm_env.termination(reward, obs)
    return dm_env.transition(reward, obs)

  def agent_positions(self) -> np.ndarray:
    """(row, col) of the single marked pixel in each agent's `active` plane."""
    active = self._obs[..., 3].reshape(self._n, -1)
    flat = np.argmax(active, axis=1)
    return np.stack(np.unravel_index(flat, self._hw), axis=1).astype(np.int32)

  def episode_info(self):
    return {'score_home': self._score[0], 'score_away': self._score[1]}

  def raw_observations(self):
    """gfootball's raw per-player observation dicts (positions, roles, score, ...), for tests and tools."""
    return self._env.unwrapped.observation()

  def close(self):
    self._env.close()


def make_5v5(seed: int = 0, num_agents: int = 5, smm_hw=(72, 96), episode_length: int = 3000,
             rewards: str = 'scoring,checkpoints', render: bool = False, right_agents: int = 0) -> GoogleFootball:
  """5-vs-5 against the built-in AI. N = 5 controls the goalie too (thesis); N = 4 leaves it to the AI.

  `right_agents` = 4 or 5 also hands the right team to the caller (two-team control, same goalie rule); 1-3
  hands over that many right field players and leaves the rest, goalie included, to the built-in AI (the
  thesis's mixed self-play, App. 4.C); gfootball then gives the controlled slots to the players it makes
  active, as for a human player. 0 (the default) leaves the whole right team to the built-in AI.
  """
  if num_agents not in (4, 5):
    raise ValueError(f'grf_5v5 controls 4 field players or all 5 players including the goalie; '
                     f'num_agents={num_agents} is neither')
  if right_agents not in (0, 1, 2, 3, 4, 5):
    raise ValueError(f'grf_5v5 right_agents must be 0 (built-in AI), 1-3 (that many field players, the rest '
                     f'built-in), 4 (field players) or 5 (with the goalie); got {right_agents}')
  level = _five_vs_five(control_goalie=(num_agents == 5), game_duration=int(episode_length),
                        control_right_goalie=(right_agents == 5))
  return GoogleFootball(level, num_agents, smm_hw, rewards, seed, render, right_agents)


def make_scenario(seed: int = 0, scenario: str = '11_vs_11_hard_stochastic', num_agents: int = 1,
                  smm_hw=(72, 96), episode_length: Optional[int] = None, rewards: str = 'scoring,checkpoints',
                  render: bool = False) -> GoogleFootball:
  """Any stock gfootball scenario by name, with `num_agents` controlled left players."""
  _import_gfootball()
  level = _with_duration(scenario, episode_length)
  return GoogleFootball(level, num_agents, smm_hw, rewards, seed, render)
