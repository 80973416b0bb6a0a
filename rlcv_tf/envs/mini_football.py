"""A small pure-NumPy football game with the Google Research Football interface, for fast tests and demos.

Not GRF: a stand-in with the same observation (SMM planes drawn by `smm.render_smm`), action set (19 actions,
gfootball's order and meanings) and rewards (`scoring`, `checkpoints` per controlled agent) so the runtime
and models can be tested in seconds. It is only ever used when asked for by name (`mini_*`).
Simplifications (documented, spec ch4 §5.3): no offside, fouls or cards; world-relative directions; a simple
scripted opponent ("built-in AI") whose randomness grows as `difficulty` falls.

Scenarios:
  5v5          kick-off positions of gfootball's 5_vs_5; N = 5 controls the goalie too, N = 4 leaves it to the AI.
  academy_3v1  3 attackers with the ball vs a defender and a keeper; ends on a goal, lost ball, ball out or
               200 steps.
  run_to_score N (1-2) players with the ball and an empty goal; ends on a goal or after `episode_length` steps.

Two-team control (5v5 only, `right_agents` = 1..5; for agent-vs-agent evaluation and self-play): right-team
players are driven by the caller too: all 5 with the goalie, 4 = the field players, 1-3 = that many field players
(players 1..k; the rest, goalie included, stay with the scripted AI, as in the thesis's mixed self-play, App. 4.C;
gfootball instead hands the k controlled slots to whichever players it makes active). The agent axis then holds
the N left agents first and the right agents after them, each seeing the game from its own side, as gfootball
does for right-team agents (see `grf.py`): the pitch rotated by 180 degrees (x -> -x, y -> -y) with its own team
in plane 0 and attacking towards +x; its direction actions are rotated back before they are applied, and its
rewards are its own team's (scoring negated, its own checkpoints).
"""

from typing import Dict, Optional, Tuple

import dm_env
import numpy as np
from dm_env import specs

from rlcv_tf.envs import base
from rlcv_tf.envs import smm

NUM_ACTIONS = len(smm.GRF_ACTION_NAMES)
# Unit vectors of the 8 directions, actions 1..8 (left, top_left, top, ..., bottom_left); y grows downwards.
_DIRS = np.array([[0, 0], [-1, 0], [-1, -1], [0, -1], [1, -1], [1, 0], [1, 1], [0, 1], [-1, 1]], np.float64)
_DIRS[1:] /= np.linalg.norm(_DIRS[1:], axis=1, keepdims=True)
WALK, SPRINT = 0.0085, 0.0133
GOAL_HALF_WIDTH = 0.044
PICKUP_RADIUS = 0.015
FIELD_Y = smm.FIELD_Y

_5V5_HOME = np.array([[-1.0, 0.0], [0.0, 0.02], [0.0, -0.02], [-0.1, -0.1], [-0.1, 0.1]])
_5V5_AWAY = np.array([[-1.0, 0.0], [-0.04, 0.04], [-0.04, -0.04], [-0.1, -0.1], [-0.1, 0.1]])  # own frame


class MiniFootball(base.MultiAgentEnv):
  """State is kept in gfootball's normalised coordinates; the right team attacks towards -x."""

  def __init__(self, scenario: str = '5v5', num_agents: int = 5, smm_hw=(72, 96), episode_length: int = 3000,
               speed_scale: float = 1.0, rewards: str = 'scoring,checkpoints', difficulty: float = 0.05,
               seed: int = 0, right_agents: int = 0):
    if scenario not in ('5v5', 'academy_3v1', 'run_to_score'):
      raise ValueError(f'unknown scenario {scenario!r}; valid: 5v5, academy_3v1, run_to_score')
    valid_n = {'5v5': (4, 5), 'academy_3v1': (1, 2, 3), 'run_to_score': (1, 2)}[scenario]
    if num_agents not in valid_n:
      raise ValueError(f'scenario {scenario} supports num_agents in {valid_n}, got {num_agents}')
    unknown = set(rewards.split(',')) - {'scoring', 'checkpoints'}
    if unknown:
      raise ValueError(f'unknown reward components {sorted(unknown)}; valid: scoring, checkpoints')
    if right_agents and (scenario != '5v5' or right_agents not in (1, 2, 3, 4, 5)):
      raise ValueError(f'right_agents (two-team control) needs scenario 5v5 and 1 to 5 right agents, got '
                       f'scenario={scenario!r}, right_agents={right_agents}')
    if episode_length < 1:
      raise ValueError(f'episode_length must be >= 1, got {episode_length}')
    self._scenario = scenario
    self._n = num_agents
    self._hw = (int(smm_hw[0]), int(smm_hw[1]))
    self._length = episode_length
    self._speed = speed_scale
    self._checkpoints = 'checkpoints' in rewards
    self._difficulty = difficulty
    self._rng = np.random.default_rng(seed)
    if scenario == '5v5':
      self._home0, self._away0 = _5V5_HOME, -_5V5_AWAY
      # Left player 0 is the goalie; with N = 4 the agents are the field players 1..4.
      self._controlled = np.arange(5) if num_agents == 5 else np.arange(1, 5)
    elif scenario == 'academy_3v1':
      self._home0 = np.array([[-1.0, 0.0], [0.6, 0.0], [0.7, -0.2], [0.7, 0.2]])
      self._away0 = np.array([[1.0, 0.0], [0.75, 0.0]])
      self._controlled = np.arange(1, 1 + num_agents)
    else:
      # Far enough that a shot from the start dies short of the goal: the agent must carry the ball first.
      self._home0 = np.array([[-0.5, 0.0], [-0.5, 0.15]])[:num_agents]
      self._away0 = np.zeros((0, 2))
      self._controlled = np.arange(num_agents)
    self._nr = int(right_agents)
    # Right player 0 is its goalie too: with 1-4 right agents the goalie stays with the scripted AI.
    self._right_controlled = np.arange(5) if self._nr == 5 else np.arange(1, 1 + self._nr)
    self._reward_fn = smm.CheckpointReward(num_agents)
    self._right_reward_fn = smm.CheckpointReward(max(1, self._nr))
    self._needs_reset = True

  # ------------------------------------------------------------------------------------------ interface
  @property
  def num_agents(self) -> int:
    return self._n + self._nr

  @property
  def team_sizes(self) -> Tuple[int, int]:
    """(left agents, right agents) on the agent axis; right agents is 0 unless two-team control is on."""
    return (self._n, self._nr)

  @property
  def num_actions(self) -> int:
    return NUM_ACTIONS

  @property
  def map_hw(self) -> Tuple[int, int]:
    return self._hw

  def observation_spec(self):
    return specs.Array((self.num_agents,) + self._hw + (4,), np.uint8, name='smm')

  @property
  def shared_channels(self) -> Tuple[int, ...]:
    """The SMM's left team, right team and ball planes: the same for every agent of a team (smm.SHARED_LAYERS)."""
    return smm.SHARED_LAYERS

  def raw(self) -> Dict[str, np.ndarray]:
    """A gfootball-like raw observation (positions, ball, owner) for tests and tools."""
    return {'left_team': self._home.copy(), 'right_team': self._away.copy(), 'ball': self._ball.copy(),
            'ball_owned_team': -1 if self._owner is None else self._owner[0],
            'ball_owned_player': -1 if self._owner is None else self._owner[1], 'steps': self._steps}

  def agent_positions(self) -> np.ndarray:
    rc = smm.position_to_rc(self._home[self._controlled], self._hw).astype(np.int32)
    if self._nr:  # right agents in their own, rotated, view
      right = smm.position_to_rc(-self._away[self._right_controlled], self._hw).astype(np.int32)
      rc = np.concatenate([rc, right])
    return rc

  def episode_info(self):
    return {'score_home': self._score[0], 'score_away': self._score[1]}

  def reset(self) -> dm_env.TimeStep:
    self._score = [0, 0]
    self._steps = 0
    self._reward_fn.reset()
    self._right_reward_fn.reset()
    self._kickoff(left_has_ball=True)
    self._needs_reset = False
    return dm_env.restart(self._observe())

  def step(self, actions) -> dm_env.TimeStep:
    if self._needs_reset:
      return self.reset()
    actions = base.check_actions(actions, self.num_agents, NUM_ACTIONS)
    team_actions = [np.zeros(len(self._home), np.int64), self._ai_actions(1)]
    team_actions[0][:] = self._ai_actions(0)
    team_actions[0][self._controlled] = actions[:self._n]
    if self._nr:
      team_actions[1][self._right_controlled] = flip_actions(actions[self._n:])
    owner_before = self._owner
    for team in (0, 1):
      self._apply(team, team_actions[team])
    scored = self._move_ball()
    self._steps += 1

    reward = np.zeros(self._n, np.float32)
    if scored:
      reward += 1.0 if scored == 'left' else -1.0
      self._score[0 if scored == 'left' else 1] += 1
    if self._checkpoints:
      owner_agent, owner_xy = None, None
      if self._owner is not None and self._owner[0] == 0 and self._owner[1] in self._controlled:
        owner_agent = int(np.flatnonzero(self._controlled == self._owner[1])[0])
        owner_xy = self._home[self._owner[1]]
      reward += self._reward_fn(owner_agent, owner_xy, scored == 'left')
    if self._nr:
      reward = np.concatenate([reward, self._right_rewards(scored)])

    done = self._steps >= self._length
    if self._scenario == 'academy_3v1':
      lost = owner_before is not None and self._owner is not None and self._owner[0] == 1
      done = done or scored is not None or lost or self._out
    elif self._scenario == 'run_to_score':
      done = done or scored is not None
    if scored and not done:
      self._kickoff(left_has_ball=(scored == 'right'))
    obs = self._observe()
    if done:
      self._needs_reset = True
      return dm_env.termination(reward, obs)
    return dm_env.transition(reward, obs)

  def close(self):
    pass

  def _right_rewards(self, scored) -> np.ndarray:
    """The right agents' rewards from their own side: +1 when the right team scores, their checkpoints."""
    reward = np.zeros(self._nr, np.float32)
    if scored:
      reward += 1.0 if scored == 'right' else -1.0
    if self._checkpoints:
      owner_agent, owner_xy = None, None
      if self._owner is not None and self._owner[0] == 1 and self._owner[1] in self._right_controlled:
        owner_agent = int(np.flatnonzero(self._right_controlled == self._owner[1])[0])
        owner_xy = -self._away[self._owner[1]]  # rotated: the right team's goal to attack is at (+1, 0)
      reward += self._right_reward_fn(owner_agent, owner_xy, scored == 'right')
    return reward

  # ---------------------------------------------------------------------------------------------- game
  def _kickoff(self, left_has_ball: bool):
    self._home = self._home0.astype(np.float64).copy()
    self._away = self._away0.astype(np.float64).copy()
    self._dir = [np.zeros(len(self._home), np.int64), np.zeros(len(self._away), np.int64)]
    self._sprint = [np.zeros(len(self._home), bool), np.zeros(len(self._away), bool)]
    self._dribble = [np.zeros(len(self._home), bool), np.zeros(len(self._away), bool)]
    self._stun = [np.zeros(len(self._home), np.int64), np.zeros(len(self._away), np.int64)]
    self._ball_vel = np.zeros(2)
    self._kick_cooldown = None  # (team, player, steps): a kicker cannot catch its own kick at once
    self._out = False
    if left_has_ball or len(self._away) < 2:
      carrier = (0, 1 if self._scenario == '5v5' else (1 if self._scenario == 'academy_3v1' else 0))
    else:
      carrier = (1, 1)
    self._owner = carrier
    self._ball = self._team(carrier[0])[carrier[1]].copy()

  def _team(self, team):
    return self._home if team == 0 else self._away

  def _ai_actions(self, team) -> np.ndarray:
    """Scripted policy: the carrier runs at goal and shoots when close, the nearest player chases the ball,
    the keeper tracks the ball on its line, the rest hold position. Random actions with prob (1-d)/2."""
    players = self._team(team)
    acts = np.zeros(len(players), np.int64)
    if len(players) == 0:
      return acts
    sign = 1.0 if team == 0 else -1.0  # the direction this team attacks
    goal = np.array([sign, 0.0])
    dists = np.linalg.norm(players - self._ball, axis=1)
    chaser = int(np.argmin(dists[1:]) + 1) if len(players) > 1 else 0
    for i, p in enumerate(players):
      if self._owner == (team, i):
        if np.linalg.norm(goal - p) < 0.3:
          acts[i] = 12
        else:
          acts[i] = _direction_action(goal - p)
      elif i == 0 and self._scenario != 'run_to_score':  # keeper: stay on the line, follow the ball's y
        target = np.array([-sign * 0.98, np.clip(self._ball[1], -0.05, 0.05)])
        acts[i] = _direction_action(target - p) if np.linalg.norm(target - p) > 0.01 else 14
      elif i == chaser and (self._owner is None or self._owner[0] != team):
        acts[i] = 16 if dists[i] < 0.03 and self._owner is not None else _direction_action(self._ball - p)
      else:
        acts[i] = 14
    noisy = self._rng.random(len(players)) < (1.0 - self._difficulty) / 2
    acts[noisy] = self._rng.integers(0, NUM_ACTIONS, size=int(noisy.sum()))
    return acts

  def _apply(self, team, acts):
    players = self._team(team)
    for i, a in enumerate(acts):
      if self._stun[team][i] > 0:
        self._stun[team][i] -= 1
        continue
      if 1 <= a <= 8:
        self._dir[team][i] = a
      elif a == 14:
        self._dir[team][i] = 0
      elif a in (13, 15):
        self._sprint[team][i] = a == 13
      elif a in (17, 18):
        self._dribble[team][i] = a == 17
      elif a in (9, 10, 11, 12) and self._owner == (team, i):
        self._kick(team, i, a)
      elif a == 16 and self._owner is not None and self._owner[0] != team:
        carrier = self._team(self._owner[0])[self._owner[1]]
        if np.linalg.norm(carrier - players[i]) < 0.03 and self._rng.random() < 0.5:
          self._owner = (team, i)
        else:
          self._stun[team][i] = 5
      speed = (SPRINT if self._sprint[team][i] else WALK) * self._speed
      players[i] += _DIRS[self._dir[team][i]] * speed
    np.clip(players[:, 0], -1.0, 1.0, out=players[:, 0])
    np.clip(players[:, 1], -FIELD_Y, FIELD_Y, out=players[:, 1])

  def _kick(self, team, i, action):
    players = self._team(team)
    p = players[i]
    sign = 1.0 if team == 0 else -1.0
    if action == 12:  # shot at the goal mouth, noisier from further away
      target = np.array([sign * 1.05, self._rng.uniform(-GOAL_HALF_WIDTH, GOAL_HALF_WIDTH)])
      target[1] += self._rng.normal(0.0, 0.03 * np.linalg.norm(target - p))
      speed = 0.06
    else:
      mates = [j for j in range(len(players)) if j != i]
      if not mates:
        return
      if action == 11:  # short pass: the team-mate best in front of the facing direction and near
        facing = _DIRS[self._dir[team][i]] if self._dir[team][i] else np.array([sign, 0.0])
        def score(j):
          d = players[j] - p
          n = np.linalg.norm(d) + 1e-9
          return float(d @ facing / n - n / 2)
        j = max(mates, key=score)
        speed = 0.03
      else:  # long / high pass: the most advanced team-mate
        j = max(mates, key=lambda j: sign * players[j][0])
        speed = 0.045
      target = players[j]
    d = target - p
    self._ball_vel = d / (np.linalg.norm(d) + 1e-9) * speed * max(1.0, self._speed ** 0.5)
    self._owner = None
    self._kick_cooldown = (team, i, 3)

  def _move_ball(self) -> Optional[str]:
    self._out = False
    if self._owner is not None:
      team, i = self._owner
      self._ball = self._team(team)[i].copy()
      # Passive tackles: an opponent close to the carrier steals it now and then (less when dribbling).
      others = self._team(1 - team)
      if len(others):
        d = np.linalg.norm(others - self._ball, axis=1)
        j = int(np.argmin(d))
        p_steal = 0.10 * (0.5 if self._dribble[team][i] else 1.0)
        if d[j] < 0.02 and self._rng.random() < p_steal:
          self._owner = (1 - team, j)
      return None
    self._ball = self._ball + self._ball_vel
    self._ball_vel *= 0.95
    if abs(self._ball[0]) >= 1.0:
      if abs(self._ball[1]) <= GOAL_HALF_WIDTH:
        return 'left' if self._ball[0] > 0 else 'right'
      self._out_of_play()
      return None
    if abs(self._ball[1]) > FIELD_Y:
      self._out_of_play()
      return None
    # Keepers save shots that pass close to them.
    for team in (0, 1):
      players = self._team(team)
      if len(players) and self._scenario != 'run_to_score' and np.linalg.norm(players[0] - self._ball) < 0.03 \
          and self._rng.random() < 0.7:
        self._take(team, 0)
        return None
    cands = []
    for team in (0, 1):
      players = self._team(team)
      if len(players):
        d = np.linalg.norm(players - self._ball, axis=1)
        for j in np.flatnonzero(d < PICKUP_RADIUS * max(1.0, self._speed)):
          if self._kick_cooldown and self._kick_cooldown[:2] == (team, j) and self._kick_cooldown[2] > 0:
            continue
          cands.append((d[j], team, int(j)))
    if self._kick_cooldown:
      t, j, k = self._kick_cooldown
      self._kick_cooldown = (t, j, k - 1) if k > 1 else None
    if cands:
      _, team, j = min(cands)
      self._take(team, j)
    return None

  def _take(self, team, j):
    self._owner = (team, j)
    self._ball_vel[:] = 0.0
    self._ball = self._team(team)[j].copy()

  def _out_of_play(self):
    """The ball goes to the nearest player of the team that did not touch it last (approximated: the team
    that is not attacking that side), at the clamped position."""
    self._out = True
    self._ball = np.array([np.clip(self._ball[0], -0.99, 0.99), np.clip(self._ball[1], -FIELD_Y, FIELD_Y)])
    team = 1 if self._ball[0] > 0 and len(self._away) else 0
    players = self._team(team)
    j = int(np.argmin(np.linalg.norm(players - self._ball, axis=1)))
    players[j] = self._ball.copy()
    self._take(team, j)

  def _observe(self) -> np.ndarray:
    raw = {'left_team': self._home, 'right_team': self._away, 'ball': self._ball}
    obs = smm.render_smm(raw, self._hw, self._controlled)
    if self._nr:
      rotated = {'left_team': -self._away, 'right_team': -self._home, 'ball': -self._ball}
      obs = np.concatenate([obs, smm.render_smm(rotated, self._hw, self._right_controlled)])
    return obs


def flip_actions(actions) -> np.ndarray:
  """Direction actions rotated by 180 degrees (left <-> right, top_left <-> bottom_right, ...); others kept."""
  a = np.asarray(actions, np.int64).copy()
  move = (a >= 1) & (a <= 8)
  a[move] = (a[move] + 3) % 8 + 1
  return a


def _direction_action(d) -> int:
  """The action (1..8) whose direction is closest to vector d."""
  return int(np.argmax(_DIRS[1:] @ np.asarray(d, np.float64)) + 1)


def make_mini_football(seed: int = 0, scenario: str = '5v5', num_agents: int = 5, smm_hw=(72, 96),
                       episode_length: Optional[int] = None, speed_scale: float = 1.0,
                       rewards: str = 'scoring,checkpoints', difficulty: float = 0.05,
                       right_agents: int = 0) -> MiniFootball:
  if episode_length is None:
    episode_length = {'5v5': 3000, 'academy_3v1': 200, 'run_to_score': 200}.get(scenario, 1)
  return MiniFootball(scenario, num_agents, smm_hw, episode_length, speed_scale, rewards, difficulty, seed,
                      right_agents)
