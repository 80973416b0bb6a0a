"""Synchronous batched rollouts on the actor pool: the thesis's batch A3C (T:L1410-1418; issue 10 Sec. 2).

Every step, each of the E environments reports its observation, the learner's policy chooses all E actions in one
batched call, and every environment steps; after `unroll_length` (t_max) steps `collect` returns the rollout, the
learner updates, and the next `collect` acts with the new weights (on-policy: Chapter 4's asynchronous
`inference.InferenceServer` would hand the learner rollouts of older weights). The per-environment recurrent state
(the LSTM's (h, c), HPA3C's z_{t-1}, ...) lives here, on the learner's side: it is carried from step to step and from
rollout to rollout, and reset to the initial state where an episode begins.

The environments run on any `actors.ActorPool` (`pools.make_pool`): in this process (`inline.InlinePool`, for
tests and small runs), in actor processes over the binary protocol (`actors.LocalActorPool`, restarts included) or
on a Ray cluster; an actor may step K environments (`actors.ActorConfig.num_envs`). `actor_configs` lays E
environments out over actors, environment e with seed `seed + e` whatever K is, so the layout never changes what
is played. NumPy only: the policy is a plain callable, and this module does not know the networks.

The policy contract:

    actions, new_state, extras = policy(observations, state, first)

  observations  [E, ...]: the observation each environment's next action is chosen for, the environment's
                one-agent axis dropped (Chapter 2 environments have one agent): Atari float32 [E, 80, 80, 1],
                cartpole_masked [E, 2, 1], pendulum with 4 stacked states [E, 3, 4];
  state         the per-environment state: a structure of arrays with leading axis E (tuples, lists, dicts,
                namedtuples: dm-tree's nesting), or () when `initial_state` is None. Rows of environments whose
                observation begins an episode already hold the initial state;
  first         bool [E]: the observation begins an episode (the first of the run, a new episode after an end, or
                the first observation of a restarted actor process); e.g. to draw per-episode noise;
  ->
  actions       integers [E] (a discrete action set) or floats [E, D] (continuous actions), one per environment;
  new_state     the state after this step: the same structure and shapes as `state`;
  extras        {name: array [E, ...]}: whatever the step drew or computed that the learner needs again (the
                noise eps of SA3C, NoisyNet's per-rollout noise, HPA3C's z sample, behaviour logits, values);
                the same names every step. Stored as given (copied), time-major.

A policy that samples per-rollout noise (NoisyNet, per iteration) draws it before `collect` and closes over it.

What a rollout holds (`Rollout`), in the layout of `core/returns.py` (time-major; step t holds observation o_t, the
action a_t chosen for it and the reward r_t received for it):

  observations [T+1, E, ...]  o_0 .. o_T (o_T: the next rollout's o_0, for the bootstrap value V(o_T));
  actions      [T, E] int32 or [T, E, D] float32;
  rewards      [T, E] float32, the environments' raw rewards (clipping is the learner's);
  discounts    [T, E] float32, dm_env's discount of transition t: 1 mid-episode, 0 where the episode terminated
               after a_t, 0 at a `bootstrap_only` step;
  first        [T+1, E] bool: o_t begins an episode, so the state was reset before step t;
  bootstrap_only [T, E] bool: a_t was never applied and transition t is not real: o_t is the last observation of an
               episode cut by a time limit (the runtime's `truncated` step: the next observation starts the next
               episode; bootstrap from V(o_t)), or the environment's actor process was replaced during step t.
               Reward and discount are 0 there; `core/returns.py` takes this mask as `bootstrap_only`;
  initial_state the state passed with o_0 (reset where first[0]); replaying the rollout from it with the stored
               extras reproduces the acting outputs;
  final_state  the state that goes with o_T (reset where first[T]), the next rollout's `initial_state`;
  extras       {name: [T, E, ...]};
  episodes     the episodes whose statistics arrived during the rollout, with the observation that starts the next
               episode (for a truncation, one step after its last observation): the environment's statistics
               (`return` [1], `length`, and for the gymnasium engines `score`, emulator `frames`, agent `steps`) plus
               `env` (its index) and `iteration` (the rollout's, 1-based).

Counting (the attributes of `SyncRollouts`): `agent_steps` counts actions the environments applied (one per
environment and step, `bootstrap_only` steps excluded); `--total_frames` counts these. `iterations` counts
rollouts. `emulator_frames` adds the emulator `frames` of every finished episode (ALE's own counter for Atari,
engine steps for Box2D and classic control: each agent step is 2-4 of them); an episode's frames are counted when it
ends, and episodes cut by an actor restart are not counted.
"""

import dataclasses
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import tree

from rlcv_tf.runtime import actors as actors_lib

Policy = Callable[[np.ndarray, Any, np.ndarray], Tuple[np.ndarray, Any, Dict[str, np.ndarray]]]


def actor_configs(env_name: str, num_envs: int, envs_per_actor: int = 1, seed: int = 0,
                  num_frames: Optional[int] = None,
                  env_kwargs: Optional[Dict[str, Any]] = None) -> List[actors_lib.ActorConfig]:
  """`num_envs` environments of `env_name` on ceil(num_envs / envs_per_actor) actors (the last may have fewer);
  environment e gets seed `seed + e` (a resumed run passes a new base seed, e.g. `core.runs.derived_seed(seed,
  frames at the start)`). `num_frames` None: the registry entry's default frame stack."""
  if not isinstance(num_envs, int) or num_envs < 1:
    raise ValueError(f'num_envs must be an integer >= 1, got {num_envs!r}')
  if not isinstance(envs_per_actor, int) or envs_per_actor < 1:
    raise ValueError(f'envs_per_actor must be an integer >= 1, got {envs_per_actor!r}')
  if num_frames is None:
    from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
    num_frames = registry.entry(env_name).default_frames
  return [actors_lib.ActorConfig(env_name, dict(env_kwargs or {}), seed=seed + first, num_frames=num_frames,
                                 num_envs=min(envs_per_actor, num_envs - first))
          for first in range(0, num_envs, envs_per_actor)]


@dataclasses.dataclass
class Rollout:
  """One rollout of T steps of E environments (module docstring)."""
  observations: np.ndarray
  actions: np.ndarray
  rewards: np.ndarray
  discounts: np.ndarray
  first: np.ndarray
  bootstrap_only: np.ndarray
  initial_state: Any
  final_state: Any
  extras: Dict[str, np.ndarray]
  episodes: List[Dict[str, Any]]
  agent_steps: int
  iteration: int

  @property
  def num_steps(self) -> int:
    return self.rewards.shape[0]

  @property
  def num_envs(self) -> int:
    return self.rewards.shape[1]


@dataclasses.dataclass
class _Batch:
  """What the E environments reported at one step, in environment order."""
  observation: np.ndarray    # [E, ...]
  reward: np.ndarray         # float32 [E]
  discount: np.ndarray       # float32 [E]
  first: np.ndarray          # bool [E]
  truncated: np.ndarray      # bool [E]
  restarted: np.ndarray      # bool [E]: the actor process was replaced since the last step
  episodes: List[Tuple[int, Dict[str, Any]]]
  answer: List[Tuple[int, int, int]]   # (actor id, first env index, number of envs)


def _copy(x) -> np.ndarray:
  return np.array(x, copy=True)


class SyncRollouts:
  """Synchronous rollouts of `unroll_length` steps over every environment of `pool` (module docstring).

    with SyncRollouts(pool, unroll_length=20, initial_state=net_initial_state) as rollouts:
      while rollouts.agent_steps < total_frames:
        rollout = rollouts.collect(policy)
        ...update on rollout...

  `initial_state`: the per-environment state at an episode start, a structure of arrays with leading axis E, or a
  function E -> that structure (called at `start`), or None (no state). `max_wait_s`: how long one step may wait for
  the environments before `RuntimeError` names the actors it waits for (the pool's own timeouts replace a stuck
  actor well before).
  """

  def __init__(self, pool: actors_lib.ActorPool, unroll_length: int, initial_state=None, max_wait_s: float = 600.0):
    if not isinstance(unroll_length, int) or unroll_length < 1:
      raise ValueError(f'unroll_length must be an integer >= 1, got {unroll_length!r}')
    self.pool = pool
    self.unroll_length = unroll_length
    self._initial_arg = initial_state
    self._max_wait = max_wait_s
    self._layout: List[Tuple[int, int]] = []   # (actor id, its number of envs), actor order
    self._run_ids: Dict[int, int] = {}
    self._pending: Optional[_Batch] = None
    self._initial = ()
    self._state = ()
    self.num_envs = 0
    self.iterations = 0
    self.agent_steps = 0
    self.emulator_frames = 0
    self.episodes = 0
    self.restarted_envs = 0
    self.superseded_steps = 0   # steps of replaced actor runs answered without acting (see `_gather`)
    self.policy_seconds = 0.0   # time in the policy (inference)
    self.wait_seconds = 0.0     # time waiting for the environments (stepping, transport)
    self._started = False

  # ---------------------------------------------------------------------------------------------- lifecycle
  def start(self) -> None:
    """Starts the pool and waits for every environment's first observation."""
    self.pool.start()
    self._started = True
    try:
      self._pending = self._gather(first_call=True)
      self.num_envs = len(self._pending.reward)
      initial = self._initial_arg(self.num_envs) if callable(self._initial_arg) else self._initial_arg
      self._initial = () if initial is None else tree.map_structure(_copy, initial)
      for leaf in tree.flatten(self._initial):
        if leaf.ndim < 1 or leaf.shape[0] != self.num_envs:
          raise ValueError(f'initial_state arrays must have a leading axis of the {self.num_envs} environments, '
                           f'got shape {leaf.shape}')
      self._state = tree.map_structure(_copy, self._initial)
    except BaseException:
      self.close()
      raise

  def close(self) -> None:
    if self._started:
      self._started = False
      self.pool.close()

  def __enter__(self):
    self.start()
    return self

  def __exit__(self, *exc):
    self.close()

  @property
  def observation_shape(self) -> Tuple[int, ...]:
    """One environment's observation shape, without the E axis (after `start`)."""
    return tuple(self._pending.observation.shape[1:])

  @property
  def observation_dtype(self) -> np.dtype:
    return self._pending.observation.dtype

  @property
  def state(self):
    """The state that goes with the next observation (a copy)."""
    return tree.map_structure(_copy, self._state)

  # ---------------------------------------------------------------------------------------------- the rollout
  def collect(self, policy: Policy) -> Rollout:
    """Acts `unroll_length` steps with `policy` in every environment and returns the rollout."""
    if not self._started or self._pending is None:
      raise RuntimeError('call start() before collect()')
    t_max, e = self.unroll_length, self.num_envs
    batch = self._pending
    observations, firsts = [batch.observation], [batch.first]
    actions_t, rewards, discounts, boot, extras_t = [], [], [], [], []
    episodes: List[Dict[str, Any]] = []
    initial_state = tree.map_structure(_copy, self._state)
    extra_names = None
    for t in range(t_max):
      t0 = time.monotonic()
      actions, new_state, extras = policy(batch.observation, self._state, batch.first.copy())
      self.policy_seconds += time.monotonic() - t0
      actions = self._check_actions(actions)
      new_state = self._check_state(new_state)
      extras = {k: _copy(v) for k, v in dict(extras or {}).items()}
      if extra_names is None:
        extra_names = sorted(extras)
      if sorted(extras) != extra_names:
        raise ValueError(f'the policy returned extras {sorted(extras)} at step {t}, {extra_names} before: the same '
                         'names every step')
      for k, v in extras.items():
        if v.ndim < 1 or v.shape[0] != e:
          raise ValueError(f'extra {k!r} has shape {v.shape}: its leading axis must be the {e} environments')
      self._send(batch, actions)
      t0 = time.monotonic()
      nxt = self._gather()
      self.wait_seconds += time.monotonic() - t0
      lost = batch.truncated | nxt.restarted     # a_t not applied, or its outcome lost with the actor process
      actions_t.append(actions)
      extras_t.append(extras)
      rewards.append(np.where(lost, 0.0, nxt.reward).astype(np.float32))
      discounts.append(np.where(lost, 0.0, nxt.discount).astype(np.float32))
      boot.append(lost)
      observations.append(nxt.observation)
      firsts.append(nxt.first)
      self._state = self._reset(new_state, nxt.first)
      for env, stats in nxt.episodes:
        episodes.append(dict(stats, env=env, iteration=self.iterations + 1))
      batch = nxt
    self._pending = batch
    bootstrap_only = np.stack(boot)
    applied = int(bootstrap_only.size - bootstrap_only.sum())
    self.iterations += 1
    self.agent_steps += applied
    self.episodes += len(episodes)
    self.emulator_frames += sum(int(ep.get('frames', 0)) for ep in episodes)
    return Rollout(
        observations=np.stack(observations), actions=np.stack(actions_t), rewards=np.stack(rewards),
        discounts=np.stack(discounts), first=np.stack(firsts), bootstrap_only=bootstrap_only,
        initial_state=initial_state, final_state=tree.map_structure(_copy, self._state),
        extras={k: np.stack([x[k] for x in extras_t]) for k in (extra_names or [])},
        episodes=episodes, agent_steps=applied, iteration=self.iterations)

  # ------------------------------------------------------------------------------------------------ internals
  def _reset(self, state, first: np.ndarray):
    if not first.any():
      return state
    return tree.map_structure(
        lambda s, i: np.where(first.reshape((-1,) + (1,) * (s.ndim - 1)), i, s), state, self._initial)

  def _check_actions(self, actions) -> np.ndarray:
    a = np.asarray(actions)
    if np.issubdtype(a.dtype, np.integer):
      a = a.astype(np.int32)
    elif np.issubdtype(a.dtype, np.floating):
      a = a.astype(np.float32)
    else:
      raise ValueError(f'the policy returned actions of dtype {a.dtype}: integers [E] or floats [E, D] expected')
    if a.ndim not in (1, 2) or a.shape[0] != self.num_envs:
      raise ValueError(f'the policy returned actions of shape {a.shape}: [{self.num_envs}] (discrete) or '
                       f'[{self.num_envs}, D] (continuous) expected')
    return a

  def _check_state(self, state):
    state = () if state is None else state
    try:
      tree.assert_same_structure(state, self._initial)
    except (ValueError, TypeError) as err:
      raise ValueError(f'the policy returned a state of another structure than the initial state: {err}') from None
    state = tree.map_structure(np.asarray, state)
    for new, old in zip(tree.flatten(state), tree.flatten(self._initial)):
      if new.shape != old.shape:
        raise ValueError(f'the policy returned a state array of shape {new.shape}, the initial state has '
                         f'{old.shape}')
    return state

  def _send(self, batch: _Batch, actions: np.ndarray) -> None:
    rows = []
    for _, first, count in batch.answer:
      # Each environment has one agent: its joint action is [1] (discrete) or [1, D] (continuous).
      rows.append(actions[first][None] if count == 1 else actions[first:first + count][:, None])
    self.pool.send_actions([a for a, _, _ in batch.answer], rows)

  def _gather(self, first_call: bool = False) -> _Batch:
    """Waits until every actor has reported its environments' next step; answers steps of replaced runs."""
    got: Dict[int, List[actors_lib.EnvStep]] = {}
    stale: List[int] = []
    deadline = time.monotonic() + self._max_wait
    num_actors = self.pool.num_actors
    while len(got) < num_actors:
      steps = self.pool.receive(timeout=0.5)
      fresh: Dict[int, List[actors_lib.EnvStep]] = {}
      for s in steps:
        fresh.setdefault(s.actor_id, []).append(s)
      for actor_id, group in fresh.items():
        if actor_id in got:
          # A second report: the run whose step we hold was replaced after handing it out. The pool expects an
          # answer to that step (it drops it), before the new run's.
          stale.append(actor_id)
        got[actor_id] = group
      if len(got) < num_actors and time.monotonic() > deadline:
        missing = sorted(set(range(num_actors)) - set(got))
        raise RuntimeError(f'no step from actors {missing} within max_wait_s={self._max_wait:g} s')
    if stale:
      self.superseded_steps += len(stale)
      self.pool.send_actions(stale, [np.zeros(1, np.int32)] * len(stale))   # never sent: the pool drops them
    if first_call:
      self._layout = [(a, len(got[a])) for a in range(num_actors)]
    steps, answer, restarted = [], [], []
    for actor_id, count in self._layout:
      group = sorted(got[actor_id], key=lambda s: s.env_index)
      if [s.env_index for s in group] != list(range(count)):
        raise RuntimeError(f'actor {actor_id} reported environments {[s.env_index for s in group]}, expected '
                           f'0..{count - 1}')
      run_id = group[0].run_id
      new_run = not first_call and run_id != self._run_ids.get(actor_id)
      self._run_ids[actor_id] = run_id
      answer.append((actor_id, len(steps), count))
      steps.extend(group)
      restarted.extend([new_run] * count)
    for s in steps:
      if s.observation.shape[:1] != (1,):
        raise ValueError(f'synchronous rollouts drive one-agent environments; actor {s.actor_id} reports '
                         f'{s.observation.shape[0]} agents')
    restarted = np.array(restarted, bool)
    self.restarted_envs += int(restarted.sum())
    done = np.array([s.done for s in steps], bool)
    first = done | restarted | first_call
    episodes = [(e, s.episode) for e, s in enumerate(steps) if s.episode is not None]
    return _Batch(observation=np.stack([s.observation[0] for s in steps]),
                  reward=np.array([s.reward[0] for s in steps], np.float32),
                  discount=np.array([s.discount for s in steps], np.float32),
                  first=first, truncated=np.array([s.truncated for s in steps], bool), restarted=restarted,
                  episodes=episodes, answer=answer)
