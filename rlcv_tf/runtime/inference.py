"""Central inference (SEED RL): one thread batches the observations of every waiting actor, runs the policy
once with the learner's current weights, answers each actor, and turns the trajectory into unrolls.

It knows nothing about the model or the loss: `infer_fn(observations [b, ...]) -> (actions, logits)` is all
it needs. An optional `opponent` drives the trailing `opponent.num_agents` agents of every actor's environment
(frozen self-play opponents): it gets their observations, its actions are appended to the trained policy's, and
the unrolls keep only the leading (trained) agents. Its interface is duck-typed so the runtime stays free of
TensorFlow: `opponent.num_agents` and `opponent.act(steps, observations [b, M, ...]) -> int actions [b, M]`,
which may add keys (e.g. which opponent played) to the `episode` statistics of the steps it is given.

Finished unrolls go into a bounded queue that the learner reads; when the learner falls behind, the queue fills,
inference blocks and the actors wait, which bounds how stale (off-policy) an unroll can be.

With `inline=True` there is no thread: `get_unrolls` itself steps an in-process pool (`inline.InlinePool`), one
batched inference over every environment at a time, until it has the unrolls asked for. The learner then trains
on them, so each unroll is at most one update old and a run is a deterministic function of its seed.
"""

import collections
import logging
import queue
import threading
import time
from typing import Callable, Deque, Dict, List, Optional, Tuple

import numpy as np

from rlcv_tf.runtime import actors as actors_lib
from rlcv_tf.runtime import unrolls as unrolls_lib


class InferenceServer:

  def __init__(self, pool: actors_lib.ActorPool, infer_fn: Callable, unroll_length: int, max_queued_unrolls: int,
               poll_timeout_s: float = 0.05, min_batch: int = 0, batch_wait_s: float = 0.005,
               step_hook: Optional[Callable[[actors_lib.EnvStep], None]] = None, opponent=None,
               inline: bool = False):
    self._pool = pool
    self._infer = infer_fn
    self._builder = unrolls_lib.UnrollBuilder(unroll_length)
    self.unrolls: 'queue.Queue[Dict[str, np.ndarray]]' = queue.Queue(maxsize=max_queued_unrolls)
    self._poll_timeout = poll_timeout_s
    self._min_batch = min_batch or max(1, pool.num_actors // 2)
    self._batch_wait = batch_wait_s
    # Called with every env step in arrival order (e.g. the replay recorder); runs in the inference thread.
    self._step_hook = step_hook
    self._opponent = opponent
    # inline: no inference thread; the learner's own thread steps the (in-process) pool in `get_unrolls`.
    self._inline = inline
    self._ready: Deque[Dict[str, np.ndarray]] = collections.deque()
    self._stop = threading.Event()
    self._thread: Optional[threading.Thread] = None
    self._error: Optional[BaseException] = None
    self._episodes: Deque[Dict] = collections.deque()
    self._lock = threading.Lock()
    self._running: Dict[int, Tuple[int, np.ndarray, int]] = {}   # actor -> (run id, return so far, steps)
    self.env_steps = 0          # env steps answered (all actors)
    self.inference_batches = 0
    self.infer_seconds = 0.0    # time spent in infer_fn (for the runtime's own diagnostics)
    self.receive_seconds = 0.0  # time spent waiting for actors

  def start(self):
    if self._inline:
      return   # no thread: `get_unrolls` steps the pool itself
    self._thread = threading.Thread(target=self._run, name='inference', daemon=True)
    self._thread.start()

  def stop(self):
    self._stop.set()
    if self._thread is not None:
      self._thread.join(timeout=30)

  def check(self):
    """Re-raises, in the caller's thread, an exception that ended the inference thread."""
    if self._error is not None:
      raise RuntimeError('the inference thread failed') from self._error

  def pop_episodes(self) -> List[Dict]:
    """Statistics of the episodes finished since the last call."""
    with self._lock:
      eps = list(self._episodes)
      self._episodes.clear()
    return eps

  def get_unrolls(self, count: int, timeout_s: float = 0.5,
                  should_stop: Optional[Callable[[], bool]] = None) -> Optional[List[Dict[str, np.ndarray]]]:
    """Blocks until `count` unrolls are available; None if the thread stopped or `should_stop()` turned true
    first (checked every `timeout_s`). Unrolls taken before an early return are dropped."""
    if self._inline:
      return self._inline_unrolls(count, should_stop)
    out = []
    while len(out) < count:
      self.check()
      try:
        out.append(self.unrolls.get(timeout=timeout_s))
      except queue.Empty:
        if self._stop.is_set() or (should_stop is not None and should_stop()):
          return None
    return out

  def _inline_unrolls(self, count, should_stop):
    # One process, no threads: every environment of the pool is stepped once per inference, in actor order, so
    # a run is a deterministic function of its seed.
    while len(self._ready) < count:
      if self._stop.is_set() or (should_stop is not None and should_stop()):
        return None
      t0 = time.monotonic()
      steps = self._pool.receive(0.0)
      self.receive_seconds += time.monotonic() - t0
      if steps:
        self._serve(steps)
    return [self._ready.popleft() for _ in range(count)]

  def running_episodes(self) -> List[Tuple[np.ndarray, int]]:
    """(return so far [N], steps so far) of every actor's episode in progress (for progress lines before the
    first episode ends)."""
    with self._lock:
      return [(ret.copy(), length) for _, ret, length in self._running.values()]

  def _run(self):
    try:
      while not self._stop.is_set():
        t0 = time.monotonic()
        steps = self._pool.receive(self._poll_timeout)
        if not steps:
          continue
        # Actors that are a few milliseconds behind join this batch: one larger inference costs much less
        # than several small ones (SEED batches requests the same way).
        deadline = time.monotonic() + self._batch_wait
        while len(steps) < self._min_batch and time.monotonic() < deadline:
          steps.extend(self._pool.receive(max(0.0, deadline - time.monotonic())))
        self.receive_seconds += time.monotonic() - t0
        self._serve(steps)
    except BaseException as e:  # pylint: disable=broad-except
      logging.exception('inference thread failed')
      self._error = e

  def _serve(self, steps: List[actors_lib.EnvStep]):
    """One batched inference for `steps`: answers their actors and files each step into its unroll."""
    t1 = time.monotonic()
    obs = np.stack([s.observation for s in steps])
    trained = obs.shape[1] - (self._opponent.num_agents if self._opponent is not None else 0)
    actions, logits = self._infer(obs[:, :trained])
    actions = np.asarray(actions, np.int32)
    logits = np.asarray(logits, np.float32)
    joint = actions
    if self._opponent is not None:
      opponent_actions = np.asarray(self._opponent.act(steps, obs[:, trained:]), np.int32)
      joint = np.concatenate([actions, opponent_actions], axis=1)
    self.infer_seconds += time.monotonic() - t1
    self._pool.send_actions([s.actor_id for s in steps], joint)
    self.inference_batches += 1
    self.env_steps += len(steps)
    for k, s in enumerate(steps):
      if self._step_hook is not None:
        self._step_hook(s)
      if s.episode is not None:
        with self._lock:
          self._episodes.append(s.episode)
      self._track_running(s)
      unroll = self._builder.append(s.actor_id, s.run_id, {
          'observation': s.observation[:trained], 'reward': np.asarray(s.reward, np.float32)[:trained],
          'done': np.bool_(s.done), 'discount': np.float32(s.discount), 'truncated': np.bool_(s.truncated),
          'agent_positions': np.asarray(s.agent_positions, np.int32)[:trained],
          'action': actions[k], 'behaviour_logits': logits[k]})
      if unroll is not None:
        if self._inline:
          self._ready.append(unroll)
        else:
          self._put(unroll)

  def _track_running(self, s: actors_lib.EnvStep):
    entry = self._running.get(s.actor_id)
    reward = np.asarray(s.reward, np.float32)
    with self._lock:
      if entry is None or entry[0] != s.run_id or s.done:
        self._running[s.actor_id] = (s.run_id, np.zeros_like(reward), 0)
      else:
        self._running[s.actor_id] = (s.run_id, entry[1] + reward, entry[2] + (0 if s.truncated else 1))

  def _put(self, unroll):
    while not self._stop.is_set():
      try:
        self.unrolls.put(unroll, timeout=0.5)
        return
      except queue.Full:
        continue
