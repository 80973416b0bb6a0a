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
               step_hook: Optional[Callable[[actors_lib.EnvStep], None]] = None, opponent=None):
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
    out = []
    while len(out) < count:
      self.check()
      try:
        out.append(self.unrolls.get(timeout=timeout_s))
      except queue.Empty:
        if self._stop.is_set() or (should_stop is not None and should_stop()):
          return None
    return out

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
        t1 = time.monotonic()
        self.receive_seconds += t1 - t0
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
              'done': np.bool_(s.done), 'discount': np.float32(s.discount),
              'truncated': np.bool_(s.truncated), 'agent_positions': np.asarray(s.agent_positions, np.int32)[:trained],
              'action': actions[k], 'behaviour_logits': logits[k]})
          if unroll is not None:
            self._put(unroll)
    except BaseException as e:  # pylint: disable=broad-except
      logging.exception('inference thread failed')
      self._error = e

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
