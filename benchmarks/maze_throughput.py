r"""Chapter 3 throughput (issue 11): the batched maze engine and phase 1's loop, side by side in one run.

Two parts (`--parts`), each timed in interleaved rounds: every round times every variant once, in an order that
rotates from round to round, so load changes on a shared machine hit all variants alike; the report gives each
variant's median over the rounds and, as a second estimate, the ratio of the fastest rounds.

env     env-steps/s (B x batch steps per second) of `envs.maze.BatchMaze` and of `ReferenceVecMaze` below, a plain
        per-env Python loop (one object per maze: sets of cells, if/else rules, a NumPy observation per env, stacked
        as a synchronous vector env stacks them), on the `--task` (multigoal) of the `--maze` (small) at each B of
        `--batch_sizes` (1, 16, 128), and multigoal_stochastic (the lava re-draw after every step) at the largest B.
        Both see the same uniformly random actions, drawn before timing. The reference follows the engine's
        per-env random-draw protocol (maze.py's docstring), so the two do the same work: before timing the run
        checks that they give the same observations, rewards and episode ends step by step, and stops if not.
        Ratio batched / reference per B; goal >= 10x at B = 128.
phase1  `worldgraph.exploration.Explorer` with `WorldGraphConfig.for_profile('cpu', maze=--maze)` (B = 16 agents,
        T = 25): the time of one full Alg. 6 iteration (blocks of `--iterations_per_round` after
        `--warmup_iterations`), and the parts of an iteration timed alone in the same process, on the same
        Explorer (its traced functions; the parts' train steps also update its networks, which changes nothing
        the timing depends on except pi_g's rollout lengths, and those are counted):
          env        graph.random_walks of B walks of T moves, then the pi_g rollout's engine work with uniformly
                     random actions (reset, set_goal, set_agent; per step the agent cells, BatchMaze.step and
                     graph.step_cells), for as many steps as the timed iterations took;
          inference  pi_g's acting calls (Explorer._act: tf.constant of the observation, the seed, the network,
                     the sample, .numpy()) on stored observations, as many calls per iteration as the timed
                     iterations made (steps + the bootstrap call);
          relabel    the curiosity relabelling (Explorer._relabel, vae.relabel_probabilities in a tf.function);
          pi_g train the A2C step (Explorer._train_pi_g) on a stored rollout batch of the iteration's shapes;
          VAE train  VAETrainer.step on the 2B sequences (walks + rollouts) of the iteration's shapes;
          V_p        refresh_waypoints, once every `waypoint_every` iterations (its time divided by that).
        Reported: the iteration's time and iterations/s, env-only iterations/s and the ratio iteration rate /
        env-only rate, the sum of the parts and the ratio sum / iteration (goal >= 0.85: the loop adds <= 15%).

Each run appends one JSON line to OUT.jsonl and writes OUT.md: this run in full, then, once the file holds several,
every run of OUT.jsonl in a table. The thesis gives no timings for these; the goals are the issue's.

  python benchmarks/maze_throughput.py                       # both parts, docs/maze_throughput.{md,jsonl}
  python benchmarks/maze_throughput.py --quick --out=/tmp/mt # smoke test: a few short rounds (< 40 s)
  python benchmarks/maze_throughput.py --parts=env --batch_sizes=1,16,128,512 --env_rounds=7
"""

import math
import os
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags  # pylint: disable=g-import-not-at-top
from absl import logging  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

import machine_state  # pylint: disable=g-import-not-at-top  (this folder)
from rlcv_tf.envs import maze as maze_lib  # pylint: disable=g-import-not-at-top  (NumPy only)
from rlcv_tf.envs import maze_layouts  # pylint: disable=g-import-not-at-top

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOAL_BATCHED_OVER_REFERENCE = 10.0   # issue 11: BatchMaze >= 10x the reference loop at B = 128
GOAL_BATCH = 128
GOAL_PARTS_OVER_ITERATION = 0.85     # issue 11: sum of the parts / iteration time >= 0.85
PARTS = ('env', 'phase1')
REFERENCE_TASKS = ('multigoal', 'multigoal_sparse', 'multigoal_stochastic')
PHASE1_PARTS = ('env', 'inference', 'relabel', 'pi_g_train', 'vae_train', 'waypoints')
QUICK = dict(env_rounds=2, env_seconds=0.05, check_steps=60, phase1_rounds=2, iterations_per_round=1)

flags.DEFINE_list('parts', list(PARTS), 'What to measure: env (BatchMaze vs the reference loop), phase1 (Alg. 6 '
                  'iterations vs their parts).')
flags.DEFINE_string('maze', 'small', 'Maze of both parts: tiny, small, medium or large.')
flags.DEFINE_string('task', 'multigoal', 'Task of the env part\'s B sweep (a multigoal task).')
flags.DEFINE_list('batch_sizes', ['1', '16', '128'], 'B of the env part (multigoal_stochastic runs at the largest).')
flags.DEFINE_integer('env_rounds', 5, 'Interleaved rounds of the env part.')
flags.DEFINE_float('env_seconds', 0.4, 'About how long one variant is timed per round (env part).')
flags.DEFINE_integer('check_steps', 300, 'Steps on which the reference and BatchMaze must agree before timing.')
flags.DEFINE_integer('warmup_iterations', 2, 'Untimed phase-1 iterations first (tracing).')
flags.DEFINE_integer('phase1_rounds', 7, 'Interleaved rounds of the phase-1 part.')
flags.DEFINE_integer('iterations_per_round', 3, 'Phase-1 iterations timed per round (each part is run as often).')
flags.DEFINE_bool('quick', False, 'Smoke test: ' + ', '.join(f'--{k}={v}' for k, v in QUICK.items()) + '.')
flags.DEFINE_string('out', os.path.join(ROOT, 'docs', 'maze_throughput'),
                    'Appends a JSON line to OUT.jsonl and writes OUT.md; empty: print only.')
FLAGS = flags.FLAGS


def rotated(items, r):
  k = r % len(items)
  return items[k:] + items[:k]


# ------------------------------------------------------------------------------------------ the reference loop


class ReferenceMaze:
  """One multigoal maze, the plain way: Python sets and if/else rules, one env per object.

  Same rules and the same per-env random-draw protocol as `maze.BatchMaze` (its module docstring): at reset
  `rng.random(H*W)` priorities for the balls (the n_balls candidates with the smallest), in multigoal_stochastic
  `rng.random(H*W)` again for the lava, and again after every step that does not end the episode.
  """

  def __init__(self, layout: maze_layouts.Layout, task: str, seed: int, max_steps: int,
               num_balls: int = maze_lib.NUM_BALLS):
    self.h, self.w = layout.height, layout.width
    self.walls = np.asarray(layout.walls)
    self.wall_plane = self.walls.astype(np.uint8)
    self.floor = {(r, c) for r in range(self.h) for c in range(self.w) if not self.walls[r, c]}
    self.exit = layout.exit
    self.task = task
    self.max_steps = max_steps
    self.num_balls = num_balls
    self.num_lava = maze_lib.default_num_lava(len(self.floor)) if task == 'multigoal_stochastic' else 0
    self.ball_candidates = sorted(x for x in self.floor if x not in (maze_layouts.START, self.exit))
    self.rng = np.random.default_rng(seed)
    self.reset()

  def smallest(self, cells, count):
    priorities = self.rng.random(self.h * self.w)
    return set(sorted(cells, key=lambda x: priorities[x[0] * self.w + x[1]])[:count])

  def draw_lava(self):
    candidates = [x for x in self.floor if x != self.agent and x not in self.balls and x != self.exit]
    self.lava = self.smallest(candidates, self.num_lava)

  def reset(self):
    self.agent = maze_layouts.START
    self.t, self.ret, self.collected = 0, 0.0, 0
    self.balls = self.smallest(self.ball_candidates, self.num_balls)
    self.lava = set()
    if self.task == 'multigoal_stochastic':
      self.draw_lava()

  def step(self, action):
    self.t += 1
    reward = maze_lib.STEP_PENALTY
    dr, dc = maze_layouts.MOVES[action]
    target = (self.agent[0] + dr, self.agent[1] + dc)
    if target in self.floor:
      self.agent = target
    if self.agent in self.balls:
      self.balls.remove(self.agent)
      self.collected += 1
      if self.task != 'multigoal_sparse':
        reward += 1.0
    on_lava = self.agent in self.lava
    success = self.agent == self.exit
    if success and self.task == 'multigoal_sparse':
      reward += self.collected / self.num_balls
    terminated = success or on_lava
    truncated = not terminated and self.t >= self.max_steps
    self.ret += reward
    ended = terminated or truncated
    if self.task == 'multigoal_stochastic' and not ended:
      self.draw_lava()
    info = dict(episode_return=self.ret, episode_length=self.t, balls_collected=self.collected, success=success,
                lava=on_lava)
    obs = self.observe()
    if ended:
      info['final_obs'] = obs
      self.reset()
      obs = self.observe()
    return obs, reward, terminated, truncated, info

  def observe(self):
    obs = np.zeros((self.h, self.w, maze_lib.NUM_PLANES), np.uint8)
    obs[..., maze_lib.WALL_PLANE] = self.wall_plane
    obs[self.agent + (maze_lib.AGENT_PLANE,)] = 1
    for cell in self.balls:
      obs[cell + (maze_lib.BALL_PLANE,)] = 1
    obs[self.exit + (maze_lib.EXIT_PLANE,)] = 1
    for cell in self.lava:
      obs[cell + (maze_lib.LAVA_PLANE,)] = 1
    return obs


class ReferenceVecMaze:
  """B `ReferenceMaze`s stepped one after the other, results stacked (what a synchronous vector env does)."""

  INFO_KEYS = ('episode_return', 'episode_length', 'balls_collected', 'success', 'lava')

  def __init__(self, num_envs: int, layout, task: str, seed: int, max_steps: int):
    self.envs = [ReferenceMaze(layout, task, seed + i, max_steps) for i in range(num_envs)]

  def step(self, actions):
    results = [env.step(int(a)) for env, a in zip(self.envs, actions)]
    obs = np.stack([r[0] for r in results])
    info = {k: np.array([r[4][k] for r in results]) for k in self.INFO_KEYS}
    ended = [i for i, r in enumerate(results) if 'final_obs' in r[4]]
    final = obs
    if ended:
      final = obs.copy()
      for i in ended:
        final[i] = results[i][4]['final_obs']
    info['final_obs'] = final
    return (obs, np.array([r[1] for r in results], np.float32), np.array([r[2] for r in results]),
            np.array([r[3] for r in results]), info)


def check_reference(layout, task: str, num_envs: int, steps: int, seed: int) -> int:
  """Steps both on the same seeds and random actions; returns the episodes that ended (fails on a difference)."""
  batched = maze_lib.BatchMaze(num_envs, layout, task, seeds=seed)
  reference = ReferenceVecMaze(num_envs, layout, task, seed, batched.max_steps)
  actions = np.random.default_rng(seed).integers(0, 4, (steps, num_envs))
  ended = 0
  for t, a in enumerate(actions):
    b_out, r_out = batched.step(a), reference.step(a)
    for name, x, y in (('observation', b_out[0], r_out[0]), ('reward', b_out[1], r_out[1]),
                       ('terminated', b_out[2], r_out[2]), ('truncated', b_out[3], r_out[3]),
                       ('final observation', b_out[4]['final_obs'], r_out[4]['final_obs'])):
      if not np.array_equal(x, y):
        raise RuntimeError(f'{task}, step {t}: BatchMaze and the reference loop differ in the {name}; the speed '
                           'comparison would not compare the same work')
    ended += int(np.sum(b_out[2] | b_out[3]))
  return ended


# ------------------------------------------------------------------------------------------------- env part


def env_variants(batch_sizes, task):
  largest = max(batch_sizes)
  out = [(task, b, impl) for b in batch_sizes for impl in ('batched', 'reference')]
  if task != 'multigoal_stochastic':
    out += [('multigoal_stochastic', largest, impl) for impl in ('batched', 'reference')]
  return out


def time_env(layout, batch_sizes, task, rounds, seconds):
  """{variant key: dict(task, B, impl, steps_per_s_all, batch_steps)} over interleaved rounds."""
  setups = {}
  for task_v, b, impl in env_variants(batch_sizes, task):
    key = f'{task_v}/B{b}/{impl}'
    if impl == 'batched':
      env = maze_lib.BatchMaze(b, layout, task_v, seeds=100)
    else:
      env = ReferenceVecMaze(b, layout, task_v, 100, maze_lib.MAX_STEPS.get(layout.name, 200))
    # Calibrate: batch steps for about `seconds` (at least 3), from a short untimed run.
    probe = np.random.default_rng(0).integers(0, 4, (5, b))
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < min(0.1, seconds) or n < 3:
      env.step(probe[n % 5])
      n += 1
    per_step = (time.perf_counter() - t0) / n
    steps = max(3, int(math.ceil(seconds / per_step)))
    setups[key] = dict(task=task_v, batch_size=b, impl=impl, env=env, batch_steps=steps,
                       actions=np.random.default_rng(b).integers(0, 4, (steps, b)),  # both impls of a B: the same
                    times=[])
  keys = list(setups)
  for r in range(rounds):
    for key in rotated(keys, r):
      s = setups[key]
      env, actions = s['env'], s['actions']
      t0 = time.perf_counter()
      for a in actions:
        env.step(a)
      s['times'].append(time.perf_counter() - t0)
    print(f'[bench] env round {r + 1}/{rounds} done (load {machine_state.load_average()})', flush=True)
  out = {}
  for key, s in setups.items():
    rates = [s['batch_size'] * s['batch_steps'] / t for t in s['times']]
    out[key] = dict(task=s['task'], batch_size=s['batch_size'], impl=s['impl'], batch_steps=s['batch_steps'],
                    env_steps_per_s_all=rates, env_steps_per_s=float(np.median(rates)))
  return out


def env_ratios(env):
  """[dict(task, B, batched, reference, ratio (medians), fastest_round_ratio)] per (task, B)."""
  out = []
  for key, r in env.items():
    if r['impl'] != 'batched':
      continue
    ref = env[key[:-len('batched')] + 'reference']
    out.append(dict(task=r['task'], batch_size=r['batch_size'], batched=r['env_steps_per_s'],
                    reference=ref['env_steps_per_s'], ratio=r['env_steps_per_s'] / ref['env_steps_per_s'],
                    fastest_round_ratio=max(r['env_steps_per_s_all']) / max(ref['env_steps_per_s_all'])))
  return out


# ---------------------------------------------------------------------------------------------- phase-1 part


class _Counted:
  """Calls `fn` and counts the calls (the timed iterations' env steps and pi_g acting calls)."""

  def __init__(self, fn):
    self.fn, self.calls = fn, 0

  def __call__(self, *args, **kwargs):
    self.calls += 1
    return self.fn(*args, **kwargs)


def phase1_setup(maze: str, warmup: int):
  """The Explorer after `warmup` iterations, and stored inputs of the iteration's shapes for the parts."""
  from rlcv_tf.worldgraph import config as config_lib  # pylint: disable=g-import-not-at-top
  from rlcv_tf.worldgraph import exploration  # pylint: disable=g-import-not-at-top
  from rlcv_tf.worldgraph import graph as graph_lib  # pylint: disable=g-import-not-at-top
  cfg = config_lib.WorldGraphConfig.for_profile('cpu', maze=maze)
  t0 = time.monotonic()
  explorer = exploration.Explorer(cfg)
  build_s = time.monotonic() - t0
  act, env_step = explorer._act, explorer.env.step  # pylint: disable=protected-access
  counted_act, counted_step = _Counted(act), _Counted(env_step)
  explorer._act, explorer.env.step = counted_act, counted_step  # pylint: disable=protected-access
  t0 = time.monotonic()
  for _ in range(warmup):
    explorer.iteration()
  warmup_s = time.monotonic() - t0
  b, horizon = cfg.num_envs, cfg.horizon
  rng = np.random.default_rng([cfg.seed, 424242])
  vp = explorer.waypoints
  starts = vp[rng.integers(len(vp), size=b)]
  walk_cells, walk_actions = graph_lib.random_walks(explorer.walls, starts, horizon, rng)
  goals = walk_cells[:, -1].copy()
  for i in np.nonzero(np.all(goals == starts, axis=1))[0]:
    goals[i] = walk_cells[i, np.nonzero(np.any(walk_cells[i] != starts[i], axis=1))[0][-1]]
  rollouts = explorer.rollout_policy(starts, goals)
  lengths = np.maximum(rollouts.lengths, 1)
  counts = dict(env_steps=counted_step.calls, act_calls=counted_act.calls, iterations=warmup)
  stored = dict(walk_cells=walk_cells, walk_actions=walk_actions, goals=goals, rollouts=rollouts, lengths=lengths,
                rewards=rollouts.reached.astype(np.float32),
                env=maze_lib.BatchMaze(b, explorer.layout, 'goalreach', seeds=cfg.seed + 7, max_steps=horizon))
  counted_act.calls = counted_step.calls = 0
  return dict(cfg=cfg, explorer=explorer, act=act, counted_act=counted_act, counted_step=counted_step,
              stored=stored, warmup_counts=counts, build_s=build_s, warmup_s=warmup_s, rng=rng)


def run_part(name, setup, env_steps: int, act_calls: int):
  """One run of part `name` of an iteration (module docstring); returns after its results are in NumPy."""
  # pylint: disable=protected-access  (the Explorer's own traced functions and seeds)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top  (loaded by the Explorer)
  from rlcv_tf.worldgraph import graph as graph_lib  # pylint: disable=g-import-not-at-top
  from rlcv_tf.worldgraph import networks  # pylint: disable=g-import-not-at-top
  cfg, explorer, s, rng = setup['cfg'], setup['explorer'], setup['stored'], setup['rng']
  b, horizon = cfg.num_envs, cfg.horizon
  ro = s['rollouts']
  if name == 'env':
    vp = explorer.waypoints
    starts = vp[rng.integers(len(vp), size=b)]
    walk_cells, _ = graph_lib.random_walks(explorer.walls, starts, horizon, rng)
    env, ids = s['env'], np.arange(b)
    env.reset(ids)
    env.set_goal(ids, walk_cells[:, -1])
    env.set_agent(ids, starts)
    for _ in range(env_steps):
      action = rng.integers(0, 4, size=b)
      before = env.agent.copy()
      env.step(action)
      graph_lib.step_cells(explorer.walls, before, action)
  elif name == 'inference':
    goal_plane = networks.goal_planes(s['goals'], explorer.grid_shape)
    state = explorer.pi_g.initial_state(b)
    reset = tf.ones([b], tf.bool)
    for t in range(act_calls):
      action, _, state = setup['act'](tf.constant(ro.observations[t % horizon]), goal_plane, state, reset,
                                      explorer._seed(0, t, 1))
      reset = tf.zeros([b], tf.bool)
      action.numpy()
  elif name == 'relabel':
    explorer._relabel(tf.constant(ro.cells, tf.int32), tf.constant(ro.actions.T, tf.int32),
                      tf.constant(s['lengths'], tf.int32), explorer._seed(2)).numpy()
  elif name == 'pi_g_train':
    logs = explorer._train_pi_g(
        tf.constant(ro.observations), networks.goal_planes(s['goals'], explorer.grid_shape),
        tf.constant(ro.actions), tf.constant(s['rewards']), tf.constant(ro.reached), tf.constant(ro.live),
        tf.constant(ro.bootstrap_value))
    [float(v) for v in logs.values()]  # pylint: disable=expression-not-assigned
  elif name == 'vae_train':
    cells = np.concatenate([s['walk_cells'], ro.cells])
    actions = np.concatenate([s['walk_actions'], ro.actions.T])
    seq_lengths = np.concatenate([np.full(b, horizon), s['lengths']])
    logs = explorer.vae_trainer.step(cells, actions, seq_lengths, seed=explorer._seed(3))
    [float(v) for v in logs.values()]  # pylint: disable=expression-not-assigned
  elif name == 'waypoints':
    kept = explorer.waypoints_var.numpy()
    explorer.refresh_waypoints()
    explorer.waypoints_var.assign(kept)      # the timed loop keeps its own V_p
  else:
    raise ValueError(f'unknown phase-1 part {name!r}')


def time_phase1(maze: str, warmup: int, rounds: int, per_round: int):
  setup = phase1_setup(maze, warmup)
  cfg, explorer = setup['cfg'], setup['explorer']
  print(f'[bench] phase 1: Explorer built in {setup["build_s"]:.1f} s, {warmup} warm-up iterations in '
        f'{setup["warmup_s"]:.1f} s', flush=True)
  wc = setup['warmup_counts']
  steps = dict(env=wc['env_steps'] / max(wc['iterations'], 1), act=wc['act_calls'] / max(wc['iterations'], 1))
  for name in PHASE1_PARTS:                  # untimed: the first call of each part outside an iteration
    run_part(name, setup, round(steps['env']), round(steps['act']))
  times = {name: [] for name in ('iteration',) + PHASE1_PARTS}
  per_round_steps = []
  items = ['iteration'] + list(PHASE1_PARTS)
  for r in range(rounds):
    for item in rotated(items, r):
      if item == 'iteration':
        setup['counted_act'].calls = setup['counted_step'].calls = 0
        t0 = time.perf_counter()
        for _ in range(per_round):
          explorer.iteration()               # returns floats: its work has finished
        times['iteration'].append((time.perf_counter() - t0) / per_round)
        steps = dict(env=setup['counted_step'].calls / per_round, act=setup['counted_act'].calls / per_round)
        per_round_steps.append(steps)
      else:
        env_steps, act_calls = round(steps['env']), round(steps['act'])
        t0 = time.perf_counter()
        for _ in range(per_round):
          run_part(item, setup, env_steps, act_calls)
        elapsed = (time.perf_counter() - t0) / per_round
        times[item].append(elapsed / cfg.waypoint_every if item == 'waypoints' else elapsed)
    print(f'[bench] phase-1 round {r + 1}/{rounds}: iteration {1e3 * times["iteration"][-1]:.0f} ms, parts '
          f'{1e3 * sum(times[p][-1] for p in PHASE1_PARTS):.0f} ms (load {machine_state.load_average()})',
          flush=True)
  return dict(times_ms={k: [1e3 * t for t in v] for k, v in times.items()}, steps_per_round=per_round_steps,
              num_envs=cfg.num_envs, horizon=cfg.horizon, waypoint_every=cfg.waypoint_every,
              iterations_done=explorer.iteration_count, build_s=setup['build_s'], warmup_s=setup['warmup_s'],
              network=dict(filters=list(cfg.filters), dense=cfg.dense, policy_lstm=cfg.policy_lstm,
                           policy_fc=cfg.policy_fc, vae_lstm=cfg.lstm_units))


def phase1_summary(p):
  """Medians, the sums, the ratios (medians and fastest rounds), from the saved per-round times."""
  t = p['times_ms']
  med = {k: float(np.median(v)) for k, v in t.items()}
  parts_sum = sum(med[k] for k in PHASE1_PARTS)
  fastest_sum = sum(min(t[k]) for k in PHASE1_PARTS)
  iteration = med['iteration']
  return dict(ms_median=med, parts_sum_ms=parts_sum, parts_over_iteration=parts_sum / iteration,
              fastest_round_parts_over_iteration=fastest_sum / min(t['iteration']),
              iterations_per_s=1e3 / iteration, env_only_iterations_per_s=1e3 / med['env'],
              iteration_rate_over_env_only=med['env'] / iteration, overhead_ms=iteration - parts_sum)


# ---------------------------------------------------------------------------------------------------- report


def goals(row) -> list:
  out = []
  for r in row.get('env_ratios', []):
    if r['task'] == row['settings']['task'] and r['batch_size'] == GOAL_BATCH:
      out.append(dict(goal=f'BatchMaze >= {GOAL_BATCHED_OVER_REFERENCE:g}x the reference loop at B = {GOAL_BATCH} '
                      f'({r["task"]})', limit=GOAL_BATCHED_OVER_REFERENCE, value=r['ratio'],
                      fastest_round_value=r['fastest_round_ratio'], met=bool(r['ratio'] >= GOAL_BATCHED_OVER_REFERENCE),
                      met_fastest_round=bool(r['fastest_round_ratio'] >= GOAL_BATCHED_OVER_REFERENCE)))
  if 'phase1' in row:
    s = row['phase1']['summary']
    out.append(dict(goal=f'phase 1: sum of the parts / iteration >= {GOAL_PARTS_OVER_ITERATION}',
                    limit=GOAL_PARTS_OVER_ITERATION, value=s['parts_over_iteration'],
                    fastest_round_value=s['fastest_round_parts_over_iteration'],
                    met=bool(s['parts_over_iteration'] >= GOAL_PARTS_OVER_ITERATION),
                    met_fastest_round=bool(s['fastest_round_parts_over_iteration'] >= GOAL_PARTS_OVER_ITERATION)))
  return out


def verdict(g) -> str:
  if g['met'] != g['met_fastest_round']:
    return 'not settled by this run (the two estimates disagree)'
  margin = min(abs(g['limit'] - g['value']), abs(g['limit'] - g['fastest_round_value']))
  noise = abs(g['value'] - g['fastest_round_value'])
  return ('met' if g['met'] else 'not met') + (' by both estimates, but closer to the limit than they are to each '
                                               'other' if margin < noise else ' by both estimates')


def _rate(v: float) -> str:
  return f'{v:,.0f}'


def _ms(v: float) -> str:
  return f'{v:.0f}' if v >= 100 else (f'{v:.1f}' if v >= 10 else f'{v:.2f}')


def env_table(row) -> str:
  lines = ['| task | B | BatchMaze env-steps/s | reference env-steps/s | batched / reference | fastest-round ratio | '
           'BatchMaze, all rounds | reference, all rounds |', '|---|---|---|---|---|---|---|---|']
  env = row['env']
  for r in row['env_ratios']:
    key = f'{r["task"]}/B{r["batch_size"]}/'
    lines.append(f'| {r["task"]} | {r["batch_size"]} | {_rate(r["batched"])} | {_rate(r["reference"])} | '
                 f'{r["ratio"]:.1f} | {r["fastest_round_ratio"]:.1f} | '
                 f'{", ".join(_rate(v) for v in env[key + "batched"]["env_steps_per_s_all"])} | '
                 f'{", ".join(_rate(v) for v in env[key + "reference"]["env_steps_per_s_all"])} |')
  return '\n'.join(lines)


PART_LABELS = dict(iteration='full iteration (`Explorer.iteration`)', env='env: random walks + rollout engine steps',
                   inference='inference: pi_g acting calls', relabel='relabel: VAE curiosity probabilities',
                   pi_g_train='pi_g train step (A2C)', vae_train='VAE train step (`VAETrainer.step`)',
                   waypoints='V_p refresh (amortised)')


def phase1_table(row) -> str:
  p = row['phase1']
  s = p['summary']
  lines = ['| what | ms per iteration (median) | share of the iteration | all rounds (ms) |', '|---|---|---|---|']
  for k in ('iteration',) + PHASE1_PARTS:
    lines.append(f'| {PART_LABELS[k]} | {_ms(s["ms_median"][k])} | '
                 f'{s["ms_median"][k] / s["ms_median"]["iteration"]:.3f} | '
                 f'{", ".join(_ms(v) for v in p["times_ms"][k])} |')
  lines.append(f'| sum of the parts | {_ms(s["parts_sum_ms"])} | {s["parts_over_iteration"]:.3f} | |')
  return '\n'.join(lines)


def ratio_lines(row) -> list:
  """The headline ratios, one line each (printed and in the report)."""
  out = []
  for r in row.get('env_ratios', []):
    out.append(f'{r["task"]} B={r["batch_size"]}: BatchMaze {_rate(r["batched"])} vs reference '
               f'{_rate(r["reference"])} env-steps/s, ratio {r["ratio"]:.2f} (fastest rounds '
               f'{r["fastest_round_ratio"]:.2f})')
  if 'phase1' in row:
    s = row['phase1']['summary']
    out.append(f'phase 1: iteration {_ms(s["ms_median"]["iteration"])} ms ({s["iterations_per_s"]:.3f} iterations/s), '
               f'env-only {_ms(s["ms_median"]["env"])} ms ({s["env_only_iterations_per_s"]:.2f} iterations/s), '
               f'iteration rate / env-only rate {s["iteration_rate_over_env_only"]:.4f}')
    out.append(f'phase 1: sum of the parts {_ms(s["parts_sum_ms"])} ms, sum / iteration '
               f'{s["parts_over_iteration"]:.3f} '
               f'(fastest rounds {s["fastest_round_parts_over_iteration"]:.3f}), loop overhead '
               f'{_ms(s["overhead_ms"])} ms')
  return out


def markdown(rows) -> str:
  row = rows[-1]
  m, st = row['machine'], row['settings']
  out = [
      '# Chapter 3 throughput: the batched maze engine and phase 1\'s loop',
      '',
      'Written by `python benchmarks/maze_throughput.py` (issue 11). The thesis gives no timings; the goals are the '
      f'issue\'s: BatchMaze >= {GOAL_BATCHED_OVER_REFERENCE:g}x a plain per-env Python loop at B = {GOAL_BATCH}, and '
      f'a phase-1 iteration no slower than its parts timed alone by more than the goal allows (sum / iteration >= '
      f'{GOAL_PARTS_OVER_ITERATION}). Variants were timed in interleaved rounds (the order rotating each round), '
      'medians over the rounds; the fastest-round ratios are a second estimate.',
      '',
      '## Latest run',
      '',
      f'- date {m["date"]}, host {m["host"]}, {m["device"]}, {m["cpu_count"]} cores ({m["processor"]}), '
      f'TensorFlow {m["tf_version"]}, code {m["code"]}',
      f'- load average (1, 5, 15 min) at start {row["load_average"]["start"]}, after the env part '
      f'{row["load_average"]["after_env"]}, at the end {row["load_average"]["end"]}',
      '- other work on the machine at start: '
      + ('; '.join(f'{w["command"]} ({w["cpu_percent"]}% CPU)' for w in row['other_work']) or 'none seen'),
      '- other work on the machine at the end: '
      + ('; '.join(f'{w["command"]} ({w["cpu_percent"]}% CPU)' for w in row['other_work_end']) or 'none seen'),
      f'- settings: maze {st["maze"]}; env part: task {st["task"]} at B = {", ".join(map(str, st["batch_sizes"]))} '
      f'(and multigoal_stochastic at the largest), {st["env_rounds"]} rounds of about {st["env_seconds"]} s per '
      f'variant, reference checked equal to BatchMaze on {st["check_steps"]} steps; phase 1: '
      f'{st["warmup_iterations"]} warm-up iterations, {st["phase1_rounds"]} rounds of {st["iterations_per_round"]} '
      f'iteration(s) and as many runs of each part' + (' (--quick)' if st['quick'] else ''),
      '',
      '## Headline ratios',
      '',
  ] + [f'- {line}' for line in ratio_lines(row)]
  if 'env' in row:
    out += ['', '## Env stepping (`BatchMaze.step` vs the per-env reference loop; env-steps = B x batch steps)', '',
            env_table(row), '',
            f'The reference was checked step by step against BatchMaze before timing ({row["reference_check"]}).']
  if 'phase1' in row:
    p = row['phase1']
    spr = p['steps_per_round']

    def span(k):
      low, high = min(x[k] for x in spr), max(x[k] for x in spr)
      return f'{low:.1f}' if low == high else f'{low:.1f} to {high:.1f}'

    med = p['summary']['ms_median']
    largest = sorted(PHASE1_PARTS, key=lambda k: -med[k])[:2]
    out += ['', f'## Phase 1 (`Explorer`, cpu profile: B = {p["num_envs"]}, T = {p["horizon"]})', '',
            phase1_table(row), '',
            f'- pi_g rollout per iteration: {span("env")} engine steps and {span("act")} acting calls (means per '
            f'round; T = {p["horizon"]} at most, + 1 bootstrap call); the env and inference parts of a round did the '
            'counts of the latest iteration block before them.',
            '- Largest parts: ' + ', '.join(f'{PART_LABELS[k]} ({med[k] / med["iteration"]:.0%} of the iteration)'
                                           for k in largest) + '.',
            f'- Explorer built in {p["build_s"]:.1f} s; {row["settings"]["warmup_iterations"]} warm-up iterations '
            f'(tracing) took {p["warmup_s"]:.1f} s; {p["iterations_done"]} iterations in all (V_p refresh every '
            f'{p["waypoint_every"]}).']
  out += ['', '## Goals', '']
  for g in row['goals']:
    out.append(f'- {g["goal"]}: {g["value"]:.3f} (medians), {g["fastest_round_value"]:.3f} (fastest rounds): '
               f'{verdict(g)}')
  out += [
      '',
      '## Reading and confounds',
      '',
      '- The machine is shared: the load and the other work above ran during the measurement; interleaving spreads '
      'it over the variants, but rounds that straddle a load change are noisier (all rounds are listed).',
      '- The reference loop is plain but not deliberately slow: Python sets for balls and lava, one NumPy '
      'observation per env (whole-plane writes for the walls), results stacked once per batch step; it draws the '
      'same random numbers as BatchMaze (so the ball and lava draws cost it what they cost the engine: a '
      'priority per cell, then a sort of the candidates).',
      '- Phase-1 parts are timed on the iteration\'s own Explorer and traced functions, with stored inputs of the '
      'same shapes; what they leave out is the loop itself: drawing starts and goals, building the reward and '
      'rollout arrays, the tensor conversions of the iteration\'s train-step inputs, the visited-cell update. '
      'The env part times a separate BatchMaze of the same B, with random actions instead of pi_g\'s.',
  ]
  if len(rows) > 1:
    out += ['', '## All runs in the JSON lines file', '',
            f'| date | maze | batched / reference at B = {GOAL_BATCH} | stochastic at the largest B | phase-1 '
            'iteration (ms) | sum / iteration | load at start |', '|---|---|---|---|---|---|---|']
    for r in rows:
      ratios = {(x['task'], x['batch_size']): x['ratio'] for x in r.get('env_ratios', [])}
      main = ratios.get((r['settings']['task'], GOAL_BATCH))
      stoch = ratios.get(('multigoal_stochastic', max(r['settings']['batch_sizes'])))
      s = r['phase1']['summary'] if 'phase1' in r else None
      cells = [f'{main:.1f}' if main else '-', f'{stoch:.1f}' if stoch else '-',
               _ms(s['ms_median']['iteration']) if s else '-', f'{s["parts_over_iteration"]:.3f}' if s else '-']
      out.append(f'| {r["machine"]["date"]} | {r["settings"]["maze"]} | {" | ".join(cells)} | '
                 f'{r["load_average"]["start"]} |')
  return '\n'.join(out) + '\n'


# ------------------------------------------------------------------------------------------------------ main


def check_flags():
  if FLAGS.quick:
    for name, value in QUICK.items():
      if not FLAGS[name].present:
        setattr(FLAGS, name, value)
  bad = [p for p in FLAGS.parts if p not in PARTS]
  if bad or not FLAGS.parts:
    machine_state.fail(f'--parts={",".join(FLAGS.parts)}: valid values are {", ".join(PARTS)} (comma-separated)')
  if FLAGS.maze not in maze_layouts.SIZES:
    machine_state.fail(f'--maze={FLAGS.maze}: one of {", ".join(maze_layouts.SIZES)}')
  if FLAGS.task not in REFERENCE_TASKS:
    machine_state.fail(f'--task={FLAGS.task}: the reference loop covers {", ".join(REFERENCE_TASKS)}')
  try:
    batch_sizes = [int(b) for b in FLAGS.batch_sizes]
  except ValueError:
    machine_state.fail(f'--batch_sizes={",".join(FLAGS.batch_sizes)}: comma-separated integers >= 1 expected, '
                       'e.g. 1,16,128')
  if not batch_sizes or min(batch_sizes) < 1:
    machine_state.fail(f'--batch_sizes={",".join(FLAGS.batch_sizes)}: every B must be >= 1')
  for name in ('env_rounds', 'phase1_rounds', 'iterations_per_round', 'check_steps'):
    if getattr(FLAGS, name) < 1:
      machine_state.fail(f'--{name}={getattr(FLAGS, name)}: must be >= 1')
  if FLAGS.warmup_iterations < 1:
    machine_state.fail(f'--warmup_iterations={FLAGS.warmup_iterations}: must be >= 1 (the first iteration traces)')
  if not FLAGS.env_seconds > 0:
    machine_state.fail(f'--env_seconds={FLAGS.env_seconds}: must be > 0')
  return sorted(dict.fromkeys(batch_sizes))


def main(argv):
  if len(argv) > 1:
    machine_state.fail(f'unexpected arguments {argv[1:]}; all settings are --flags (see --help)')
  logging.set_verbosity(logging.WARNING)
  batch_sizes = check_flags()
  load_start = machine_state.load_average()
  busy = machine_state.other_work()
  print(f'[bench] maze {FLAGS.maze}: parts {", ".join(FLAGS.parts)}; load average {load_start} on {os.cpu_count()} '
        'cores; other work: ' + ('; '.join(f'{w["command"][:60]} ({w["cpu_percent"]}%)' for w in busy)
                                 or 'none seen'), flush=True)
  from rlcv_tf.core import quiet  # pylint: disable=g-import-not-at-top
  tf = quiet.import_tensorflow()
  info = machine_state.machine_info(tf)
  layout = maze_layouts.get_layout(FLAGS.maze)
  row = dict(benchmark='maze_throughput', machine=info, other_work=busy,
             settings=dict(maze=FLAGS.maze, task=FLAGS.task, batch_sizes=batch_sizes, env_rounds=FLAGS.env_rounds,
                           env_seconds=FLAGS.env_seconds, check_steps=FLAGS.check_steps,
                           warmup_iterations=FLAGS.warmup_iterations, phase1_rounds=FLAGS.phase1_rounds,
                           iterations_per_round=FLAGS.iterations_per_round, quick=FLAGS.quick, parts=FLAGS.parts))
  if 'env' in FLAGS.parts:
    checked = []
    for task in dict.fromkeys([FLAGS.task, 'multigoal_stochastic']):
      try:
        ended = check_reference(layout, task, 4, FLAGS.check_steps, seed=11)
      except RuntimeError as e:
        print(f'error: {e}', file=sys.stderr)
        sys.exit(1)
      checked.append(f'{task}: 4 envs x {FLAGS.check_steps} steps, {ended} episode ends, identical')
    row['reference_check'] = '; '.join(checked)
    print(f'[bench] reference check: {row["reference_check"]}', flush=True)
    row['env'] = time_env(layout, batch_sizes, FLAGS.task, FLAGS.env_rounds, FLAGS.env_seconds)
    row['env_ratios'] = env_ratios(row['env'])
  load_after_env = machine_state.load_average()
  if 'phase1' in FLAGS.parts:
    p = time_phase1(FLAGS.maze, FLAGS.warmup_iterations, FLAGS.phase1_rounds, FLAGS.iterations_per_round)
    p['summary'] = phase1_summary(p)
    row['phase1'] = p
  row['load_average'] = dict(start=load_start, after_env=load_after_env, end=machine_state.load_average())
  row['other_work_end'] = machine_state.other_work()
  row['goals'] = goals(row)
  print()
  if 'env' in row:
    print(env_table(row))
    print()
  if 'phase1' in row:
    print(phase1_table(row))
    print()
  for line in ratio_lines(row):
    print(line)
  machine_state.print_goals(row['goals'])
  if FLAGS.out:
    machine_state.save_report(FLAGS.out, row, 'maze_throughput', markdown)


if __name__ == '__main__':
  app.run(main)
