"""Playing saved Chapter 4 agents: against the built-in AI, against each other, and in a round-robin tournament.

Thesis Sec. 4.5 / Table 4.1 (lines 3765-3840): agents play matches against the built-in AI and against each
other ("20 matches against another", home = row agent); ELO ratings follow App. 4.F (`elo.py`). Spec ch4 §3.6,
§6.3, §7.1 item 36, §8 row 24 (sampled actions by default, as SEED actors act; `greedy=True` takes the argmax).

The agents are `agents.Policy` objects: `agents.load_agent` (or `resolve_agent` then `load_policy`) turns a run
logdir, a SavedModel or a checkpoint into one.

`play_games(record_dir=...)` saves the games as observation replays of the home agents, for pre-training
(`replays`, `launchers/marl_pretrain.py`).

Agent vs agent needs two-team control (`right_agents`, grf.py / mini_football.py): the home agent plays the
left team, the away agent the right team, each seeing the game from its own side. A game's result is decided by
its goals (`episode_info`: score_home / score_away, from the home side).
"""

import json
import os
import time
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from rlcv_tf.core import progress
from rlcv_tf.envs import registry
from rlcv_tf.marl import agents as agents_lib
from rlcv_tf.marl import config as config_lib
from rlcv_tf.marl import elo
from rlcv_tf.marl import replays

BUILTIN = 'builtin'
TWO_TEAM_ENVS = config_lib.TWO_TEAM_ENVS   # environments whose adapter supports `right_agents`


# ---------------------------------------------------------------------------------------------------- games
def game_result(score_home: int, score_away: int) -> str:
  return 'win' if score_home > score_away else 'loss' if score_home < score_away else 'tie'


def summarize(games: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
  """W/T/L (from the home side), goals for/against and goal difference over games."""
  gf = int(sum(g['score_home'] for g in games))
  ga = int(sum(g['score_away'] for g in games))
  n = len(games)
  out = {'games': n, 'wins': sum(g['result'] == 'win' for g in games),
         'ties': sum(g['result'] == 'tie' for g in games), 'losses': sum(g['result'] == 'loss' for g in games),
         'goals_for': gf, 'goals_against': ga, 'goal_difference': gf - ga}
  out['win_rate'] = out['wins'] / n if n else 0.0
  out['goal_difference_per_game'] = (gf - ga) / n if n else 0.0
  return out


def evaluation_env(env_name: Optional[str], home: agents_lib.Policy, away: Optional[agents_lib.Policy],
                   episode_length: Optional[int] = None) -> Tuple[str, Dict[str, Any]]:
  """The environment name and kwargs for a match: the home agent's training env and its kwargs unless
  `env_name` is given; two-team control when there is an away agent."""
  cfg = home.config
  if env_name is None:
    if cfg is None:
      raise agents_lib.AgentLoadError(f'{home.source.path}: a SavedModel without its run\'s config.json does not '
                                      'say which environment it was trained on; name the environment')
    env_name = cfg.env
  if env_name not in registry.names():
    raise ValueError(f'unknown environment {env_name!r}; valid names: {", ".join(registry.names())}')
  kwargs = cfg.home_env_kwargs if cfg is not None and cfg.env == env_name else {}
  if episode_length:
    kwargs['episode_length'] = int(episode_length)
  if away is not None:
    if env_name not in TWO_TEAM_ENVS:
      raise ValueError(f'agent vs agent needs two-team control, which {env_name} does not have; use one of '
                       f'{", ".join(TWO_TEAM_ENVS)}')
    away_kwargs = away.config.home_env_kwargs if away.config is not None else {}
    # Each side controls as many players as its agent was trained with (5 = goalie included, the default).
    kwargs['right_agents'] = int(away_kwargs.get('num_agents', dict(registry.entry(env_name).kwargs)['num_agents']))
  return env_name, kwargs


def _check_shapes(policy: agents_lib.Policy, obs_hwc, who: str):
  if tuple(obs_hwc) != policy.observation_hwc:
    raise ValueError(f'{who} agent {policy.name} takes observations {policy.observation_hwc} (H, W, C) but the '
                     f'environment gives {tuple(obs_hwc)}: evaluate it on the SMM size and frame stack it was '
                     'trained with')


def play_games(home: agents_lib.Policy, away: Optional[agents_lib.Policy] = None, num_games: int = 10,
               greedy: bool = False, env_name: Optional[str] = None, episode_length: Optional[int] = None,
               seed: int = 0, print_fn: Callable[[str], None] = print, label: str = '',
               record_dir: Optional[str] = None, record_every: int = 1) -> Dict[str, Any]:
  """Plays `num_games` games of `home` (left team) vs `away` (right team; None = the built-in AI).

  With `record_dir`, every `record_every`-th game (the first included) is saved there as an observation replay
  (`replays` format, source "eval", no actions; what `launchers/marl_pretrain.py` reads). Only the HOME agents
  are recorded, as they saw the game (their stacked observations and positions; the left team's view), so agent
  vs built-in AI and agent vs agent games of one home agent go to one directory alike; the away agents' view of
  an agent-vs-agent game is not kept. Each episode's index entry also names the players, the game and its score.

  Returns a JSON-ready dict: the setting, one record per game and `summary` (from the home side), and with
  `record_dir` a `recorded` entry (directory, episodes written).
  """
  if num_games < 1:
    raise ValueError(f'num_games must be >= 1, got {num_games}')
  env_name, kwargs = evaluation_env(env_name, home, away, episode_length)
  if away is not None and away.num_frames != home.num_frames:
    raise ValueError(f'the agents stack different numbers of frames ({home.name}: {home.num_frames}, '
                     f'{away.name}: {away.num_frames}); they cannot share one environment')
  env = registry.make_env(env_name, seed=seed, num_frames=home.num_frames, **kwargs)
  rng = np.random.default_rng(seed)
  games = []
  start = time.monotonic()
  opponent = BUILTIN if away is None else away.name
  label = label or f'{home.name} vs {opponent}'
  recorder = None
  try:
    obs_shape = env.observation_spec().shape
    _check_shapes(home, obs_shape[1:], 'home')
    n_home = obs_shape[0] - (kwargs.get('right_agents') or 0)
    if away is not None:
      _check_shapes(away, obs_shape[1:], 'away')
    if record_dir:
      recorder = replays.GameRecorder(record_dir, home.num_frames, env.num_actions, every=record_every,
                                      source='eval')
      recorder.check((n_home,) + tuple(obs_shape[1:]))
    for g in range(num_games):
      ts = env.reset()
      steps, t0 = 0, time.monotonic()
      ret = np.zeros(obs_shape[0], np.float64)
      recorded = recorder is not None and recorder.begin_game()
      while not ts.last():
        obs = ts.observation
        if recorded:
          recorder.add_step(obs[:n_home], env.agent_positions()[:n_home])
        actions = home.act(obs[None, :n_home], greedy, rng)[0]
        if away is not None:
          actions = np.concatenate([actions, away.act(obs[None, n_home:], greedy, rng)[0]])
        ts = env.step(actions)
        ret += ts.reward
        steps += 1
      info = env.episode_info()
      sh, sa = int(info['score_home']), int(info['score_away'])
      if recorded:
        recorder.end_game(game=g, home=home.name, away=opponent, score_home=sh, score_away=sa,
                          greedy=bool(greedy), seed=int(seed))
      games.append({'game': g, 'score_home': sh, 'score_away': sa, 'result': game_result(sh, sa),
                    'length': steps, 'home_return_per_agent': float(ret[:n_home].mean()),
                    'seconds': round(time.monotonic() - t0, 3)})
      s = summarize(games)
      elapsed = time.monotonic() - start
      eta = elapsed / (g + 1) * (num_games - g - 1)
      print_fn(f'[eval] {label}: game {g + 1}/{num_games} {sh}-{sa} ({games[-1]["result"]}) | W/T/L '
               f'{s["wins"]}/{s["ties"]}/{s["losses"]} | goals {s["goals_for"]}-{s["goals_against"]} '
               f'(GD {s["goal_difference"]:+d}) | {elapsed / (g + 1):.1f} s/game, ETA {progress.format_duration(eta)}')
  finally:
    env.close()
  result = {'home': home.name, 'away': opponent, 'home_path': home.source.path,
            'away_path': None if away is None else away.source.path, 'env': env_name,
            'env_kwargs': {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()},
            'greedy': bool(greedy), 'seed': int(seed), 'games': games, 'summary': summarize(games),
            'wall_s': round(time.monotonic() - start, 3)}
  if recorder is not None:
    result['recorded'] = {'directory': recorder.directory, 'episodes': recorder.episodes_written,
                          'every': recorder.every}
  return result


# ------------------------------------------------------------------------------------------------ tournament
def tournament(agents: Sequence[agents_lib.Policy], games_per_pair: int = 10, greedy: bool = False,
               env_name: Optional[str] = None, episode_length: Optional[int] = None, seed: int = 0,
               elo_shuffles: int = 200, elo_scoring: str = 'thesis',
               print_fn: Callable[[str], None] = print) -> Dict[str, Any]:
  """Round robin: every ordered pair (home i, away j), i != j, plays `games_per_pair` games, so each pair meets
  2 x games_per_pair times, home and away (the thesis: 20 per pair). Returns the W/T/L table of row (home) vs
  column, goals, and ELO (App. 4.F; every game counted once: `mirrored=False`)."""
  names = [a.name for a in agents]
  if len(set(names)) != len(names):
    raise ValueError(f'agent names must be unique, got {names}')
  if len(agents) < 2:
    raise ValueError('a tournament needs at least two agents')
  results, matches = {}, []
  pair = 0
  for i, home in enumerate(agents):
    for j, away in enumerate(agents):
      if i == j:
        continue
      pair += 1
      r = play_games(home, away, games_per_pair, greedy, env_name, episode_length, seed=seed + 1000 * pair,
                     print_fn=print_fn, label=f'[{pair}/{len(agents) * (len(agents) - 1)}] {home.name} vs {away.name}')
      matches.append(r)
      s = r['summary']
      results[(home.name, away.name)] = (s['wins'], s['ties'], s['losses'])
  table = elo.table_from_results(names, results)
  match_list = elo.matches_from_table(table, mirrored=False)
  single = elo.ratings(match_list, len(names), scoring=elo_scoring, rng=np.random.default_rng(seed))
  stats = elo.shuffle_statistics(match_list, len(names), num_shuffles=max(1, elo_shuffles), seed=seed,
                                 scoring=elo_scoring)
  goals = {n: {'for': 0, 'against': 0} for n in names}
  for r in matches:
    goals[r['home']]['for'] += r['summary']['goals_for']
    goals[r['home']]['against'] += r['summary']['goals_against']
    goals[r['away']]['for'] += r['summary']['goals_against']
    goals[r['away']]['against'] += r['summary']['goals_for']
  return {
      'agents': names, 'paths': [a.source.path for a in agents], 'games_per_ordered_pair': games_per_pair,
      'greedy': bool(greedy), 'seed': int(seed),
      'table': [[None if c is None else list(c) for c in row] for row in table],
      'elo': {'procedure': 'thesis App. 4.F: start 1000, shuffled match order, k=16, '
                           f'scoring={elo_scoring} (thesis: win 1 / tie 0 / loss -1)',
              'single_shuffle': dict(zip(names, single.round(1).tolist())),
              'mean': dict(zip(names, stats['mean'].round(1).tolist())),
              'std': dict(zip(names, stats['std'].round(1).tolist())), 'num_shuffles': max(1, elo_shuffles)},
      'goals': goals, 'matches': matches,
  }


def format_table(result: Dict[str, Any]) -> str:
  """A Table 4.1-style text table: W/T/L of row (home) vs column, then the ELO columns."""
  names = result['agents']
  corner = 'home \\ away'
  first = max(len(corner), max(len(n) for n in names)) + 1
  width = max(8, max(len(n) for n in names) + 1)
  head = ''.join(f'{n:>{width}}' for n in names)
  lines = [f'{corner:<{first}}{head}{"ELO":>9}{"ELO mean":>10}{"+-":>6}']
  for i, n in enumerate(names):
    cells = ''.join(f'{"-" if c is None else "/".join(map(str, c)):>{width}}' for c in result['table'][i])
    e = result['elo']
    lines.append(f'{n:<{first}}{cells}{e["single_shuffle"][n]:>9.0f}{e["mean"][n]:>10.0f}{e["std"][n]:>6.0f}')
  return '\n'.join(lines)


def write_json(obj: Dict[str, Any], path: str):
  d = os.path.dirname(os.path.abspath(path))
  os.makedirs(d, exist_ok=True)
  with open(path, 'w') as f:
    json.dump(obj, f, indent=2)
