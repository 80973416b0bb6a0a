"""Self-play opponents for Chapter 4 training (thesis Sec. 4.3.1 and App. 4.C; spec ch4 §3.6).

The thesis trains against two kinds of learned opponent:

  * **Mixed self-play** (`opponent=selfplay_mixed`), how its self-play AIs were made: k right-team field players
    are driven by the policy being trained and the rest of that team by the built-in AI (CNN-v1, leaderboard
    "smarl:b3", used k = 2; CNN-v2, "smarl:b2", k = 1). "We calculate the policy gradients for the opponent
    players controlled by the model in training in the same way as home players": the k agents are a second
    agent group of the learner (`Learner(agent_groups=(N, k))`), with their own rewards and their own view of
    the game (the environment rotates the right team's observation so it attacks towards +x), attending only
    among themselves. Nothing here is needed for it beyond `team_sizes`.
  * **Fixed self-play** (`opponent=selfplay_fixed`): the right field players are driven by frozen earlier agents
    (the thesis's CNN-v1 / v2, which are not published, so we regenerate ours with mixed self-play). Each episode
    draws one of them uniformly [spec PROPOSAL]; they run batched in the inference thread with no gradients, and
    only the home team is trained. `FrozenOpponents` is that opponent.

Workflow (the thesis's, scaled down):
  python -m launchers.marl --opponent=selfplay_mixed --selfplay_agents=2 --model=cnn --logdir=runs/cnn_v1
  python -m launchers.marl --opponent=selfplay_mixed --selfplay_agents=1 --model=cnn --logdir=runs/cnn_v2
  python -m launchers.marl --opponent=selfplay_fixed --opponent_agents=runs/cnn_v1,runs/cnn_v2 --model=acnn
"""

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from rlcv_tf.marl import agents as agents_lib


class SelfPlayError(ValueError):
  """An opponent cannot be used for this run; the message names it and the fix."""


def load_opponents(paths: Sequence[str], observation_hwc: Tuple[int, int, int]) -> List[agents_lib.Policy]:
  """Loads frozen opponents (run logdirs, SavedModels or checkpoints; see `agents.resolve_agent`) and checks
  that each reads this environment's observations (H, W, C including the frame stack)."""
  policies = []
  for path in paths:
    try:
      policy = agents_lib.load_agent(path)
    except agents_lib.AgentLoadError as e:
      raise SelfPlayError(f'opponent_agents: {e}') from None
    if tuple(policy.observation_hwc) != tuple(observation_hwc):
      raise SelfPlayError(
          f'opponent_agents: {path} reads observations of H, W, C = {policy.observation_hwc}, but this run\'s '
          f'environment gives {tuple(observation_hwc)}; train the opponent with the same environment, map size '
          'and frame stack')
    policies.append(policy)
  names = [p.name for p in policies]
  for i, name in enumerate(names):   # names label TensorBoard curves: make repeated ones distinct
    if names.count(name) > 1:
      policies[i].name = f'{name}_{i}'
  return policies


class FrozenOpponents:
  """Drives the trailing `num_agents` agents of every actor's environment with frozen policies.

  Each actor's episode draws one policy uniformly (seeded); `act` is called by the inference thread with the
  steps it is answering (`runtime.actors.EnvStep`) and the opponents' observations, in the same order. A step
  with `done` starts a new episode: the statistics of the episode that ended there get `'opponent'` (the name of
  the policy that played it) before the next draw.
  """

  def __init__(self, policies: Sequence[agents_lib.Policy], num_agents: int, seed: int = 0, greedy: bool = False):
    if not policies:
      raise SelfPlayError('opponent_agents: no frozen opponent given')
    if num_agents < 1:
      raise ValueError(f'num_agents must be >= 1, got {num_agents}')
    self.policies = list(policies)
    self.num_agents = int(num_agents)
    self.greedy = greedy
    self._rng = np.random.default_rng(seed)
    self._current: Dict[int, Tuple[int, int]] = {}   # actor id -> (run id, policy index)

  @property
  def names(self) -> List[str]:
    return [p.name for p in self.policies]

  def current(self, actor_id: int) -> Optional[str]:
    entry = self._current.get(actor_id)
    return None if entry is None else self.policies[entry[1]].name

  def _draw(self, actor_id: int, run_id: int) -> int:
    index = int(self._rng.integers(len(self.policies)))
    self._current[actor_id] = (run_id, index)
    return index

  def act(self, steps, observations: np.ndarray) -> np.ndarray:
    """int32 [b, num_agents] actions for the opponents' observations [b, num_agents, H, W, C]."""
    observations = np.asarray(observations)
    if observations.shape[1] != self.num_agents:
      raise ValueError(f'expected observations of {self.num_agents} opponent agents, got shape {observations.shape}')
    chosen = np.empty(len(steps), np.int64)
    for k, s in enumerate(steps):
      entry = self._current.get(s.actor_id)
      if entry is not None and s.episode is not None and entry[0] == s.run_id:
        s.episode['opponent'] = self.policies[entry[1]].name
      if entry is None or entry[0] != s.run_id or s.done:
        chosen[k] = self._draw(s.actor_id, s.run_id)   # a new actor, a restarted one, or a new episode
      else:
        chosen[k] = entry[1]
    actions = np.zeros((len(steps), self.num_agents), np.int32)
    for index in np.unique(chosen):
      rows = np.flatnonzero(chosen == index)    # one batched call per opponent policy
      actions[rows] = self.policies[index].act(observations[rows], self.greedy, self._rng)
    return actions


def split_team_returns(episode: Dict, num_home: int) -> Dict:
  """Episode statistics from an actor hold every agent's return, home agents first. Keeps the home team's in
  'return' (what learning curves and the progress line show) and moves the right team's to 'opponent_return'."""
  returns = np.asarray(episode['return'])
  if returns.shape[0] > num_home:
    episode['opponent_return'] = returns[num_home:]
    episode['return'] = returns[:num_home]
  return episode
