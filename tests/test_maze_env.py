"""Chapter 3's batched maze engine (rlcv_tf/envs/maze.py), its house adapter and its gymnasium ids (maze_gym.py).

The reference is `RefMaze` below: one maze in plain Python (sets of cells, if/else rules, its own breadth-first
search), written from the rules of spec ch3 Sec. 5.4 and issue 11 Sec. 1. It shares with the engine only the
random-draw protocol (which numbers each env draws, in which order), which is the contract of a per-env seed.
B batched envs must equal B reference envs step by step, through auto-resets.
"""

import collections

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rlcv_tf.envs import maze
from rlcv_tf.envs import maze_gym
from rlcv_tf.envs import maze_layouts
from rlcv_tf.envs import registry

DELTAS = {0: (-1, 0), 1: (1, 0), 2: (0, -1), 3: (0, 1)}


def bfs(open_cells, source):
  """Cells of `open_cells` (a set) reachable from `source` by 4-neighbour moves."""
  if source not in open_cells:
    return set()
  seen, queue = {source}, collections.deque([source])
  while queue:
    r, c = queue.popleft()
    for dr, dc in DELTAS.values():
      n = (r + dr, c + dc)
      if n in open_cells and n not in seen:
        seen.add(n)
        queue.append(n)
  return seen


class RefMaze:
  """One maze, the plain way (see the module docstring)."""

  def __init__(self, size, task, seed, max_steps=None, step_penalty=None, num_balls=6, num_lava=None):
    rows = maze_layouts.get_layout(size).text().splitlines()
    self.h, self.w = len(rows), len(rows[0])
    self.base_floor = {(r, c) for r in range(self.h) for c in range(self.w) if rows[r][c] == '.'}
    self.task = task
    self.exit = (self.h - 2, self.w - 2)
    limits = {'tiny': 100, 'small': 200, 'medium': 500, 'large': 1000}
    self.max_steps = max_steps or (25 if task == 'goalreach' else limits[size])
    self.penalty = step_penalty if step_penalty is not None else (0.0 if task == 'goalreach' else -0.01)
    self.num_balls = num_balls
    self.num_lava = num_lava or max(1, round(0.03 * len(self.base_floor)))
    self.rng = np.random.default_rng(seed)
    self.reset()

  def cell_order(self, cells, priorities):
    return sorted(cells, key=lambda rc: priorities[rc[0] * self.w + rc[1]])

  def draw_lava(self):
    priorities = self.rng.random(self.h * self.w)
    candidates = [x for x in self.floor if x != self.agent and x not in self.balls and x != self.exit]
    self.lava = set(self.cell_order(candidates, priorities)[:self.num_lava])

  def reset(self):
    self.agent, self.goal = (1, 1), self.exit
    self.floor = set(self.base_floor)
    self.balls, self.lava = set(), set()
    self.key = self.door = None
    self.locked = self.carrying = self.opened = False
    self.t, self.ret, self.collected = 0, 0.0, 0
    if self.task.startswith('multigoal'):
      priorities = self.rng.random(self.h * self.w)
      candidates = [x for x in self.floor if x not in ((1, 1), self.exit)]
      self.balls = set(self.cell_order(candidates, priorities)[:self.num_balls])
      if self.task == 'multigoal_stochastic':
        self.draw_lava()
    if self.task == 'doorkey':
      options = []
      for col in range(0, self.w, 2):
        if not self.w / 3 <= col <= 2 * self.w / 3:
          continue
        divided = {x for x in self.base_floor if x[1] != col}
        left, right = bfs(divided, (1, 1)), bfs(divided, self.exit)
        rows = [r for r in range(1, self.h - 1) if (r, col - 1) in left and (r, col + 1) in right]
        keys = sorted(left - {(1, 1)})
        if rows and keys:
          options.append((col, rows, keys, divided))
      col, rows, keys, divided = options[self.rng.integers(len(options))]
      row = rows[self.rng.integers(len(rows))]
      self.key = keys[self.rng.integers(len(keys))]
      self.door, self.locked = (row, col), True
      self.floor = divided | {self.door}

  def set_agent(self, cell):
    self.agent = cell
    self.lava.discard(cell)

  def step(self, a):
    """-> (obs, reward, terminated, truncated, info), auto-resetting after an episode's last step."""
    self.t += 1
    reward = self.penalty
    if a in DELTAS:
      n = (self.agent[0] + DELTAS[a][0], self.agent[1] + DELTAS[a][1])
      if n in self.floor and not (self.locked and n == self.door):
        self.agent = n
    elif a == 4:
      if self.agent == self.key and not self.carrying:
        self.carrying, self.key = True, None
    elif a == 5:
      if (self.carrying and self.locked and abs(self.agent[0] - self.door[0]) + abs(self.agent[1] - self.door[1]) == 1):
        self.locked, self.opened = False, True
        reward += 1.0
    terminated = success = on_lava = False
    if self.agent in self.balls:
      self.balls.remove(self.agent)
      self.collected += 1
      if self.task in ('multigoal', 'multigoal_stochastic'):
        reward += 1.0
    if self.agent in self.lava:
      terminated = on_lava = True
    if self.agent == self.goal:
      terminated = success = True
      if self.task in ('goalreach', 'doorkey'):
        reward += 1.0
      elif self.task == 'multigoal_sparse':
        reward += self.collected / self.num_balls
    truncated = not terminated and self.t >= self.max_steps
    self.ret += reward
    if self.task == 'multigoal_stochastic' and not (terminated or truncated):
      self.draw_lava()
    info = {'episode_return': self.ret, 'episode_length': self.t, 'balls_collected': self.collected,
            'door_opened': self.opened, 'success': success, 'lava': on_lava}
    obs = self.observe()
    info['final_obs'] = obs
    if terminated or truncated:
      self.reset()
      obs = self.observe()
    return obs, reward, terminated, truncated, info

  def observe(self):
    obs = np.zeros((self.h, self.w, 9), np.uint8)
    for r in range(self.h):
      for c in range(self.w):
        x = (r, c)
        obs[r, c, 0] = x not in self.floor
        obs[r, c, 1] = x == self.agent
        obs[r, c, 2] = x in self.balls
        obs[r, c, 3] = x == self.exit and self.task != 'goalreach'
        obs[r, c, 4] = x in self.lava
        obs[r, c, 5] = x == self.key
        obs[r, c, 6] = x == self.door and self.locked
        obs[r, c, 7] = x == self.door and not self.locked
        obs[r, c, 8] = self.carrying
    return obs


def run_against_reference(size, task, num_envs, steps, seed, move_agents=False, **kwargs):
  """Steps B batched envs and B references with the same random actions; returns event counts."""
  batch = maze.BatchMaze(num_envs, size, task, seeds=seed, **kwargs)
  refs = [RefMaze(size, task, seed + i, **kwargs) for i in range(num_envs)]
  np.testing.assert_array_equal(batch.observe(), np.stack([r.observe() for r in refs]))
  actions_rng = np.random.default_rng(1000 + seed)
  counts = collections.Counter()
  for t in range(steps):
    if move_agents and t % 7 == 0:               # phase-1 style restarts: agent and goal placed by the caller
      ids = np.flatnonzero(actions_rng.random(num_envs) < 0.5)
      agents, goals = [], []
      for i in ids:
        free = sorted(refs[i].floor - ({refs[i].door} if refs[i].locked else set()))
        agents.append(free[actions_rng.integers(len(free))])
        goals.append(free[actions_rng.integers(len(free))])
      batch.set_agent(ids, agents)
      if task == 'goalreach':
        batch.set_goal(ids, goals)
      for i, a, g in zip(ids, agents, goals):
        refs[i].set_agent(a)
        if task == 'goalreach':
          refs[i].goal = g
    if task == 'doorkey':                          # favour pick/toggle so doors get opened
      actions = np.where(actions_rng.random(num_envs) < 0.3, actions_rng.integers(4, 6, num_envs),
                         actions_rng.integers(0, 4, num_envs))
    else:
      actions = actions_rng.integers(0, batch.num_actions, num_envs)
    obs, reward, terminated, truncated, info = batch.step(actions)
    expected = [ref.step(int(a)) for ref, a in zip(refs, actions)]
    where = f'{size} {task}, step {t}'
    np.testing.assert_array_equal(obs, np.stack([e[0] for e in expected]), err_msg=where)
    np.testing.assert_allclose(reward, [e[1] for e in expected], atol=1e-6, err_msg=where)
    assert reward.dtype == np.float32 and obs.dtype == np.uint8
    np.testing.assert_array_equal(terminated, [e[2] for e in expected], err_msg=where)
    np.testing.assert_array_equal(truncated, [e[3] for e in expected], err_msg=where)
    for key in ('episode_length', 'balls_collected', 'door_opened', 'success', 'lava', 'final_obs'):
      np.testing.assert_array_equal(info[key], np.stack([e[4][key] for e in expected]), err_msg=f'{where} {key}')
    np.testing.assert_allclose(info['episode_return'], [e[4]['episode_return'] for e in expected], atol=1e-9)
    np.testing.assert_array_equal(batch.agent, [r.agent for r in refs], err_msg=where)
    counts['terminated'] += terminated.sum()
    counts['truncated'] += truncated.sum()
    counts['success'] += info['success'].sum()
    counts['lava'] += info['lava'].sum()
    counts['balls'] += (np.asarray([e[4]['balls_collected'] for e in expected]) > 0).sum()
    counts['doors'] += (reward > 0.5).sum() if task == 'doorkey' else 0
  return counts


@pytest.mark.parametrize('size, task, steps, max_steps, expect', [
    ('tiny', 'goalreach', 300, None, ('success', 'truncated')),
    ('small', 'goalreach', 200, None, ('success', 'truncated')),
    ('tiny', 'multigoal', 300, 60, ('success', 'truncated', 'balls')),
    ('small', 'multigoal', 300, None, ('truncated', 'balls')),
    ('tiny', 'multigoal_sparse', 300, 60, ('success', 'truncated', 'balls')),
    ('tiny', 'multigoal_stochastic', 300, 60, ('lava', 'success', 'balls')),
    ('medium', 'multigoal_stochastic', 120, 50, ('lava', 'truncated', 'balls')),
    ('tiny', 'doorkey', 400, 60, ('doors', 'success', 'truncated')),
    ('small', 'doorkey', 250, None, ('doors', 'truncated')),
])
def test_batched_envs_equal_reference_envs_step_by_step(size, task, steps, max_steps, expect):
  counts = run_against_reference(size, task, num_envs=12, steps=steps, seed=7, move_agents=True, max_steps=max_steps)
  for event in expect:                                   # the run exercised the rules it compares
    assert counts[event] > 0, (event, counts)


def test_large_maze_equals_reference_briefly():
  run_against_reference('large', 'multigoal_stochastic', num_envs=3, steps=40, seed=3)
  run_against_reference('large', 'doorkey', num_envs=3, steps=40, seed=3)


# ------------------------------------------------------------------------------------------- scripted task rules

def neighbour_of(env, cell, avoid=()):
  """(free neighbour cell, action from it onto `cell`) of env 0, avoiding cells in `avoid`."""
  walls = env.observe()[0, ..., maze.WALL_PLANE]
  for action, (dr, dc) in enumerate(maze_layouts.MOVES):
    n = (cell[0] - dr, cell[1] - dc)
    if not walls[n] and n not in avoid:
      return n, action
  raise AssertionError(f'no free neighbour of {cell}')


def cells_of(obs, plane):
  return [tuple(map(int, rc)) for rc in np.argwhere(obs[..., plane])]


def bump_action(env, cell):
  walls = env.observe()[0, ..., maze.WALL_PLANE]
  return next(a for a, (dr, dc) in enumerate(maze_layouts.MOVES) if walls[cell[0] + dr, cell[1] + dc])


def test_multigoal_ball_pays_once_and_exit_ends_without_bonus():
  env = maze.BatchMaze(1, 'small', 'multigoal', seeds=4)
  obs = env.observe()[0]
  balls = cells_of(obs, maze.BALL_PLANE)
  assert len(balls) == 6 and (1, 1) not in balls and (11, 11) not in balls
  assert cells_of(obs, maze.EXIT_PLANE) == [(11, 11)]
  ball = balls[0]
  start, action = neighbour_of(env, ball, avoid=balls)
  env.set_agent([0], [start])
  obs, reward, terminated, _, info = env.step([action])
  assert reward[0] == pytest.approx(0.99) and not terminated[0] and info['balls_collected'][0] == 1
  assert not obs[0][ball + (maze.BALL_PLANE,)]
  back = {0: 1, 1: 0, 2: 3, 3: 2}[action]
  env.step([back])
  _, reward, _, _, info = env.step([action])                   # onto the emptied cell again
  assert reward[0] == pytest.approx(-0.01) and info['balls_collected'][0] == 1
  start, action = neighbour_of(env, (11, 11), avoid=balls)
  env.set_agent([0], [start])
  obs, reward, terminated, truncated, info = env.step([action])
  assert terminated[0] and not truncated[0] and info['success'][0] and reward[0] == pytest.approx(-0.01)
  assert info['episode_length'][0] == 4 and info['episode_return'][0] == pytest.approx(0.99 - 0.03)
  assert info['final_obs'][0][11, 11, maze.AGENT_PLANE] == 1 and obs[0][1, 1, maze.AGENT_PLANE] == 1   # auto-reset


def test_sparse_pays_the_fraction_of_balls_on_the_exit_only():
  env = maze.BatchMaze(1, 'small', 'multigoal_sparse', seeds=5)
  balls = cells_of(env.observe()[0], maze.BALL_PLANE)
  for ball in balls[:2]:
    start, action = neighbour_of(env, ball, avoid=balls)
    env.set_agent([0], [start])
    _, reward, _, _, info = env.step([action])
    assert reward[0] == pytest.approx(-0.01)
  assert info['balls_collected'][0] == 2
  start, action = neighbour_of(env, (11, 11), avoid=balls)
  env.set_agent([0], [start])
  _, reward, terminated, _, info = env.step([action])
  assert terminated[0] and info['success'][0] and reward[0] == pytest.approx(-0.01 + 2 / 6)


def test_stochastic_lava_is_redrawn_every_step_kills_and_avoids_agent_balls_exit():
  for size, n_lava in (('small', 2), ('medium', 6), ('large', 12)):    # max(1, round(0.03 * |S_free|))
    assert maze.BatchMaze(1, size, 'multigoal_stochastic').num_lava == n_lava
  env = maze.BatchMaze(8, 'small', 'multigoal_stochastic', seeds=0)
  rng = np.random.default_rng(0)
  previous = env.observe()[..., maze.LAVA_PLANE]
  changed = 0
  for _ in range(100):
    obs, _, terminated, truncated, info = env.step(rng.integers(0, 4, 8))
    lava = obs[..., maze.LAVA_PLANE].astype(bool)
    assert (lava.sum(axis=(1, 2)) == 2).all()
    assert not (lava & (obs[..., maze.AGENT_PLANE] | obs[..., maze.BALL_PLANE] | obs[..., maze.WALL_PLANE]
                        | obs[..., maze.EXIT_PLANE]).astype(bool)).any()
    going_on = ~(terminated | truncated)
    changed += (lava[going_on] != previous[going_on]).any(axis=(1, 2)).sum()
    previous = lava
  assert changed > 700                                                   # re-drawn, not kept
  # Stepping onto lava ends the episode, no success, only the step penalty.
  env = maze.BatchMaze(1, 'small', 'multigoal_stochastic', seeds=1)
  obs = env.observe()[0]
  for lava_cell in cells_of(obs, maze.LAVA_PLANE):
    blocked = cells_of(obs, maze.BALL_PLANE) + cells_of(obs, maze.LAVA_PLANE) + [(11, 11)]
    try:
      start, action = neighbour_of(env, lava_cell, avoid=blocked)
    except AssertionError:
      continue
    env.set_agent([0], [start])
    _, reward, terminated, truncated, info = env.step([action])
    assert terminated[0] and not truncated[0] and info['lava'][0] and not info['success'][0]
    assert reward[0] == pytest.approx(-0.01)
    return
  pytest.fail('no lava cell with a free neighbour')


def exit_reachable(obs):
  """The exit is reachable from the agent through cells that are neither walls nor locked doors (own BFS)."""
  h, w = obs.shape[:2]
  open_cells = {(r, c) for r in range(h) for c in range(w)
                if not obs[r, c, maze.WALL_PLANE] and not obs[r, c, maze.LOCKED_PLANE]}
  agent = cells_of(obs, maze.AGENT_PLANE)[0]
  return (h - 2, w - 2) in bfs(open_cells, agent)


def test_doorkey_pick_toggle_door_and_exit():
  env = maze.BatchMaze(1, 'small', 'doorkey', seeds=2)
  obs = env.observe()[0]
  door, key = cells_of(obs, maze.LOCKED_PLANE)[0], cells_of(obs, maze.KEY_PLANE)[0]
  assert door[1] in (6, 8) and obs[1:12, door[1], maze.WALL_PLANE].sum() == 10      # divider with one door
  assert not exit_reachable(obs) and not obs[..., maze.CARRY_PLANE].any()
  left = (door[0], door[1] - 1)
  # Toggle without the key does nothing; walking into the locked door does not pass.
  env.set_agent([0], [left])
  obs, reward, *_ = env.step([maze.TOGGLE])
  assert reward[0] == pytest.approx(-0.01) and obs[0][door + (maze.LOCKED_PLANE,)]
  obs, *_ = env.step([maze.RIGHT])
  assert cells_of(obs[0], maze.AGENT_PLANE) == [left]
  # Pick only on the key.
  env.set_agent([0], [left if left != key else (1, 1)])
  obs, reward, *_ = env.step([maze.PICK])
  assert not obs[0][..., maze.CARRY_PLANE].any() and reward[0] == pytest.approx(-0.01)
  env.set_agent([0], [key])
  obs, reward, *_ = env.step([maze.PICK])
  assert obs[0][..., maze.CARRY_PLANE].all() and not obs[0][..., maze.KEY_PLANE].any()
  assert reward[0] == pytest.approx(-0.01)
  # Toggle away from the door does nothing; next to it opens it for +1, once.
  far = (1, 1) if abs(door[0] - 1) + abs(door[1] - 1) > 1 else (3, 1)
  env.set_agent([0], [far])
  _, reward, *_ = env.step([maze.TOGGLE])
  assert reward[0] == pytest.approx(-0.01)
  env.set_agent([0], [left])
  obs, reward, _, _, info = env.step([maze.TOGGLE])
  assert reward[0] == pytest.approx(0.99) and info['door_opened'][0]
  assert obs[0][door + (maze.OPEN_PLANE,)] and not obs[0][..., maze.LOCKED_PLANE].any() and exit_reachable(obs[0])
  _, reward, *_ = env.step([maze.TOGGLE])
  assert reward[0] == pytest.approx(-0.01)
  obs, *_ = env.step([maze.RIGHT])
  assert cells_of(obs[0], maze.AGENT_PLANE) == [door]                             # the open door is walkable
  start, action = neighbour_of(env, (11, 11))
  env.set_agent([0], [start])
  _, reward, terminated, _, info = env.step([action])
  assert terminated[0] and info['success'][0] and reward[0] == pytest.approx(0.99)
  assert info['episode_return'][0] == pytest.approx(2 - 0.01 * 9)               # 9 actions, two +1


def test_doorkey_draws_valid_dividers_doors_and_keys():
  layout = maze_layouts.get_layout('small')
  assert maze.divider_columns(13) == (6, 8)
  # The spec's own example, on its layout before the opened wall (6, 1): c_d = 6 -> {1, 2, 3, 5}, 8 -> {1, 3, 5}.
  spec_small = np.array(layout.walls)
  spec_small[6, 1] = True
  assert maze.door_rows(spec_small, 6)[0] == (1, 2, 3, 5) and maze.door_rows(spec_small, 8)[0] == (1, 3, 5)
  env = maze.BatchMaze(64, 'small', 'doorkey', seeds=0)
  seen_columns = set()
  for _ in range(4):
    obs = env.reset()
    for o in obs:
      door, key = cells_of(o, maze.LOCKED_PLANE)[0], cells_of(o, maze.KEY_PLANE)[0]
      seen_columns.add(door[1])
      floor = {(r, c) for r in range(13) for c in range(13) if not o[r, c, maze.WALL_PLANE]} - {door}
      left = bfs(floor, (1, 1))
      assert (door[0], door[1] - 1) in left and (door[0], door[1] + 1) in bfs(floor, (11, 11))
      assert key in left and key != (1, 1)
  assert seen_columns == {6, 8}


def test_goalreach_no_penalty_goal_set_by_caller_and_horizon_25():
  env = maze.BatchMaze(2, 'small', 'goalreach', seeds=0)
  obs = env.observe()
  assert not obs[..., 2:].any()                                           # phase 1: object planes all zero
  np.testing.assert_array_equal(env.goals, [[11, 11], [11, 11]])
  env.set_agent([0, 1], [(3, 2), (5, 5)])
  env.set_goal([0, 1], [(3, 3), (1, 1)])
  _, reward, terminated, _, info = env.step([maze.RIGHT, maze.UP])       # env 0 reaches its goal, env 1 bumps
  np.testing.assert_array_equal(terminated, [True, False])
  np.testing.assert_allclose(reward, [1.0, 0.0])
  np.testing.assert_array_equal(info['success'], [True, False])
  np.testing.assert_array_equal(env.goals, [[11, 11], [1, 1]])           # reset restores the default goal
  for t in range(24):
    _, reward, terminated, truncated, _ = env.step([maze.UP, maze.UP])
    assert reward[1] == 0 and not terminated[1] and truncated[1] == (t == 23)


def test_truncation_is_not_termination_and_autoreset_false_asks_for_reset():
  env = maze.BatchMaze(1, 'small', 'multigoal', seeds=0, max_steps=3, autoreset=False)
  for t in range(3):
    obs, _, terminated, truncated, _ = env.step([maze.UP])                # bumps into the wall above (1, 1)
  assert truncated[0] and not terminated[0]
  with pytest.raises(ValueError, match=r'envs \[0\] ended their episodes at the last step: call reset\(\[0\]\)'):
    env.step([maze.UP])
  env.reset([0])
  env.step([maze.UP])


def test_bad_input_is_refused_with_the_fix():
  env = maze.BatchMaze(2, 'small', 'multigoal', seeds=0)
  with pytest.raises(ValueError, match=r'actions must lie in \[0, 3\]'):
    env.step([0, 4])
  with pytest.raises(ValueError, match=r'one action per agent, shape \(2,\)'):
    env.step([0])
  with pytest.raises(ValueError, match=r'set_agent: env 1, row 0, column 0 is not a floor cell .* choose a floor'):
    env.set_agent([0, 1], [(1, 1), (0, 0)])
  with pytest.raises(ValueError, match=r'set_goal: task .multigoal. has a fixed exit'):
    env.set_goal([0], [(1, 1)])
  with pytest.raises(ValueError, match=r'env ids must lie in 0..1'):
    env.reset([2])
  with pytest.raises(ValueError, match=r"unknown maze task 'maze'; valid: goalreach"):
    maze.BatchMaze(1, 'small', 'maze')
  with pytest.raises(ValueError, match=r'num_balls must be in 1..17'):
    maze.BatchMaze(1, 'tiny', 'multigoal', num_balls=18)
  with pytest.raises(ValueError, match=r'expected 2 seeds'):
    maze.BatchMaze(2, 'tiny', 'multigoal', seeds=[1, 2, 3])
  with pytest.raises(ValueError, match=r'has no Door-Key divider'):
    maze.BatchMaze(1, '#######\n#....##\n####..#\n####..#\n#######', 'doorkey')   # crossing needs a vertical step


def test_seeds_make_runs_reproducible_and_distinct():
  a = maze.BatchMaze(4, 'small', 'multigoal_stochastic', seeds=11)
  b = maze.BatchMaze(4, 'small', 'multigoal_stochastic', seeds=[11, 12, 13, 14])
  np.testing.assert_array_equal(a.observe(), b.observe())
  assert not np.array_equal(a.observe()[0], a.observe()[1])
  single = maze.BatchMaze(1, 'small', 'multigoal_stochastic', seeds=[13])
  np.testing.assert_array_equal(single.observe()[0], a.observe()[2])
  a.reset(seeds=11)
  np.testing.assert_array_equal(a.observe(), b.observe())


# -------------------------------------------------------------------------------------- house interface, gymnasium

def test_registry_names_build_and_step():
  expected = {f'maze_{s}_{t}' for s in maze_layouts.SIZES for t in maze.TASKS}
  assert set(registry.names(chapter=3)) == expected
  for name in sorted(expected):
    e = registry.entry(name)
    assert e.real and e.chapter == 3 and e.default_frames == 1
    env = registry.make_env(name, seed=1)
    h, w = maze_layouts.get_layout(dict(e.kwargs)['size']).walls.shape
    assert env.num_agents == 1 and env.map_hw == (h, w) and env.has_agent_positions
    assert env.observation_spec().shape == (1, h, w, 9) and env.num_actions == (6 if 'doorkey' in name else 4)
    ts = env.reset()
    assert ts.first() and ts.observation.dtype == np.uint8
    np.testing.assert_array_equal(env.agent_positions(), [[1, 1]])
    ts = env.step(np.array([1], np.int32))
    assert ts.mid() and ts.reward.shape == (1,) and ts.reward.dtype == np.float32


def test_house_adapter_signals_termination_and_truncation():
  env = maze.make_maze(seed=0, size='small', task='goalreach')
  env.reset()
  env.engine.set_goal([0], [(1, 2)])
  ts = env.step(np.array([maze.RIGHT]))
  assert ts.last() and ts.discount == 0 and ts.reward[0] == 1 and env.episode_info()['success']
  assert env.step(np.array([maze.RIGHT])).first()                       # a step after LAST starts a new episode
  for _ in range(25):
    ts = env.step(np.array([maze.UP]))
  assert ts.last() and ts.discount == 1 and env.episode_info()['episode_length'] == 25


@pytest.mark.parametrize('task', maze.TASKS)
def test_gymnasium_env_passes_check_env(task):
  env = gymnasium.make(maze_gym.env_id(task, 'small'))
  check_env(env.unwrapped, skip_render_check=True)
  obs, info = env.reset(seed=0, options={'agent': (3, 1)} if task != 'goalreach' else
                        {'agent': (3, 1), 'goal': (3, 2)})
  assert obs.shape == (13, 13, 9) and obs[3, 1, maze.AGENT_PLANE] == 1
  if task == 'goalreach':
    _, reward, terminated, _, _ = env.step(maze.RIGHT)
    assert terminated and reward == 1.0


def test_make_vec_is_the_batched_engine_with_sub_env_i_seeded_s_plus_i():
  task_id = maze_gym.env_id('multigoal_stochastic', 'tiny')
  vec = gymnasium.make_vec(task_id, num_envs=3, vectorization_mode='vector_entry_point', max_steps=15)
  assert isinstance(vec.unwrapped, maze_gym.MazeVectorEnv) and vec.num_envs == 3
  assert vec.metadata['autoreset_mode'] == gymnasium.vector.AutoresetMode.SAME_STEP
  singles = [gymnasium.make(task_id, max_steps=15) for _ in range(3)]
  obs, _ = vec.reset(seed=40)
  np.testing.assert_array_equal(obs, np.stack([s.reset(seed=40 + i)[0] for i, s in enumerate(singles)]))
  rng = np.random.default_rng(0)
  ended = 0
  for _ in range(120):
    actions = rng.integers(0, 4, 3)
    obs, reward, terminated, truncated, info = vec.step(actions)
    for i, single in enumerate(singles):
      o, r, te, tr, _ = single.step(int(actions[i]))
      assert (r, te, tr) == (pytest.approx(float(reward[i])), terminated[i], truncated[i])
      if te or tr:
        ended += 1
        assert info['_final_obs'][i]
        np.testing.assert_array_equal(info['final_obs'][i], o)
        o, _ = single.reset()
      np.testing.assert_array_equal(obs[i], o)
  assert ended > 5
  vec.close()


def test_the_house_adapter_prints_its_maze():
  from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
  env = registry.make_env('maze_tiny_multigoal', seed=3, num_frames=1)
  env.reset()
  text = getattr(env, 'text', None) or env.env.text
  lines = text().splitlines()
  assert len(lines) == 7 and lines[0] == '#######' and sum(l.count('A') for l in lines) == 1


@pytest.mark.parametrize('task', ['multigoal_stochastic', 'doorkey'])
def test_get_state_then_set_state_continues_exactly(task):
  # A copy restored into a fresh engine (other seeds, other episode) must replay the original's future exactly:
  # observations, rewards, ends and the random draws (lava, resets) that follow.
  rng = np.random.default_rng(0)
  original = maze.BatchMaze(3, 'small', task, seeds=[1, 2, 3], max_steps=40)
  original.reset()
  for _ in range(25):
    original.step(rng.integers(original.num_actions, size=3))
  state = original.get_state()
  copy = maze.BatchMaze(3, 'small', task, seeds=[7, 8, 9], max_steps=40)
  copy.reset()
  copy.set_state(state)
  np.testing.assert_array_equal(copy.observe(), original.observe())
  for _ in range(60):                       # crosses the 40-step limit: auto-resets draw from the generators
    actions = rng.integers(original.num_actions, size=3)
    a, b = original.step(actions), copy.step(actions)
    for x, y in zip(a[:4], b[:4]):
      np.testing.assert_array_equal(x, y)
  state['balls'][0, 1, 1] = not state['balls'][0, 1, 1]     # the returned state is a copy, not a view
  assert not np.array_equal(state['balls'], original.get_state()['balls'])


def test_set_state_refuses_a_state_of_another_engine():
  small = maze.BatchMaze(2, 'small', 'multigoal', seeds=[0, 1])
  with pytest.raises(ValueError, match='num_envs, maze and task'):
    small.set_state(maze.BatchMaze(3, 'small', 'multigoal', seeds=[0, 1, 2]).get_state())
  state = small.get_state()
  del state['lava']
  with pytest.raises(ValueError, match=r"missing keys \['lava'\]"):
    small.set_state(state)
