"""Actor faults in `LocalActorPool`, on the scripted test environment (`test_scripted`): a hanging actor is killed
after `actor_timeout_s` and replaced while the other keeps stepping, a crash mid-episode is replaced, a failed rebuild
is retried within the restart budget, a spent budget raises with the actor's own error, and a step of a dead run is
never answered to its replacement. No TensorFlow here."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import marl_test_helpers
from rlcv_tf.runtime import actors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED = 5


def _configs(faulty_kwargs, n=2):
  """Actor 0 gets `faulty_kwargs`; the others a plain scripted environment."""
  return [actors.ActorConfig('test_scripted', dict(faulty_kwargs) if i == 0 else {}, seed=SEED + 100 * i,
                             num_frames=1) for i in range(n)]


def _seed(run_id):
  return actors.restart_seed(SEED, run_id)


class _Log:
  """Steps every actor (action = 1 for every agent) and keeps (time, actor, run) of every step received."""

  def __init__(self, pool):
    self.pool = pool
    self.events = []

  def pump(self, until, timeout_s=60.0):
    deadline = time.monotonic() + timeout_s
    while not until():
      assert time.monotonic() < deadline, f'timed out; last events {self.events[-5:]}'
      got = self.pool.receive(0.05)
      now = time.monotonic()
      self.events += [(now, s.actor_id, s.run_id) for s in got]
      if got:
        self.pool.send_actions([s.actor_id for s in got], np.ones((len(got), 2), np.int32))

  def runs(self, actor_id):
    return {r for _, a, r in self.events if a == actor_id}

  def times(self, actor_id, run_id=None):
    return [t for t, a, r in self.events if a == actor_id and (run_id is None or r == run_id)]


def test_a_hanging_actor_is_killed_and_replaced_while_the_other_keeps_stepping(caplog):
  # Actor 0's first run hangs in its 6th step; every build of actor 0 takes 1.5 s, so a restart that blocked the
  # pool would stop actor 1 for at least that long.
  pool = actors.LocalActorPool(_configs({'hang_at_step': 6, 'only_seeds': (_seed(0),), 'build_delay_s': 1.5}),
                               actor_timeout_s=1.0)
  with pool:
    log = _Log(pool)
    hung_pid = pool.pids()[0]
    log.pump(lambda: 1 in log.runs(0))
    replaced_at = log.times(0, 1)[0]
    log.pump(lambda: len(log.times(0, 1)) >= 5)
  assert pool.restarts == 1
  assert len(log.times(0, 0)) == 6, 'five answered steps, then the first step of the hang'
  last_before_hang = log.times(0, 0)[-1]
  assert replaced_at - last_before_hang >= 1.0 + 1.5, 'the actor timeout, then a 1.5 s build'
  others = [t for t in log.times(1) if last_before_hang <= t <= replaced_at]
  gaps = np.diff([last_before_hang] + others + [replaced_at])
  assert len(others) >= 20 and gaps.max() < 0.5, \
      f'actor 1 must keep stepping during the timeout and the restart: {len(others)} steps, gap {gaps.max():.2f} s'
  assert 'did not answer its actions within actor_timeout_s=1' in caplog.text
  with pytest.raises(ProcessLookupError):
    os.kill(hung_pid, 0)


def test_no_timeout_before_the_first_actions_or_when_disabled():
  # A slow build (2 s) is not a hang: the timeout only runs once an actor has been sent actions. With
  # actor_timeout_s=0 a slow step is waited for.
  pool = actors.LocalActorPool(_configs({'build_delay_s': 2.0}, n=1), actor_timeout_s=1.0)
  with pool:
    log = _Log(pool)
    log.pump(lambda: len(log.times(0)) >= 3)
  assert pool.restarts == 0
  pool = actors.LocalActorPool(_configs({'step_delay_s': 1.2}, n=1), actor_timeout_s=0)
  with pool:
    log = _Log(pool)
    log.pump(lambda: len(log.times(0)) >= 2)
  assert pool.restarts == 0


def test_a_crash_mid_episode_is_replaced(caplog):
  pool = actors.LocalActorPool(_configs({'crash_at_step': 4, 'only_seeds': (_seed(0),)}))
  with pool:
    log = _Log(pool)
    log.pump(lambda: len(log.times(0, 1)) >= 3)
    assert pool.restarts == 1 and log.runs(0) == {0, 1} and log.runs(1) == {0}
  assert len(log.times(0, 0)) == 4
  assert 'actor 0 failed: RuntimeError: scripted crash at step 4; restarting it' in caplog.text


def test_a_failed_rebuild_is_retried_then_succeeds(caplog):
  # Run 0 is killed; runs 1 and 2 cannot build their environment; run 3 can.
  pool = actors.LocalActorPool(_configs({'fail_to_build': True, 'only_seeds': (_seed(1), _seed(2))}),
                               max_restarts=5)
  with pool:
    log = _Log(pool)
    log.pump(lambda: len(log.times(0)) >= 3)
    os.kill(pool.pids()[0], signal.SIGKILL)
    log.pump(lambda: 3 in log.runs(0))
    log.pump(lambda: len(log.times(0, 3)) >= 3)
  assert pool.restarts == 3 and log.runs(0) == {0, 3}
  assert caplog.text.count('could not start its environment: RuntimeError: scripted build failure') == 2


def test_a_spent_budget_stops_with_the_actors_own_error():
  pool = actors.LocalActorPool(_configs({'fail_to_build': True, 'only_seeds': (_seed(1), _seed(2), _seed(3))}),
                               max_restarts=2)
  with pool:
    log = _Log(pool)
    log.pump(lambda: len(log.times(0)) >= 3)
    os.kill(pool.pids()[0], signal.SIGKILL)
    with pytest.raises(actors.ActorFailedError) as e:
      log.pump(lambda: False)
  message = str(e.value)
  assert message.startswith('actor 0 could not start its environment') and 'budget of 2 is spent' in message
  assert f'RuntimeError: scripted build failure (seed {_seed(2)})' in message, 'the actor\'s own last error'
  assert pool.restarts == 2
  assert all(p is None or p.poll() is not None for p in pool._procs)  # pylint: disable=protected-access


def test_a_spent_budget_after_crashes_carries_the_actors_traceback():
  pool = actors.LocalActorPool(_configs({'crash_at_step': 2}), max_restarts=1)
  with pool:
    log = _Log(pool)
    with pytest.raises(actors.ActorFailedError) as e:
      log.pump(lambda: False)
  message = str(e.value)
  assert message.startswith('actor 0 failed: RuntimeError: scripted crash at step 2, and the restart budget of 1 is '
                            'spent'), message
  assert 'Traceback (most recent call last)' in message and 'scripted.py' in message, 'the actor\'s own text'
  assert pool.restarts == 1 and log.runs(0) == {0, 1}


def test_a_failure_at_start_stops_at_once():
  pool = actors.LocalActorPool(_configs({'fail_to_build': True}), max_restarts=100)
  with pytest.raises(actors.ActorStartupError, match=r'actor 0 could not start its environment: RuntimeError: '
                     r'scripted build failure \(seed 5\)'):
    pool.start()
  assert pool.restarts == 0
  assert all(p is None or p.poll() is not None for p in pool._procs)  # pylint: disable=protected-access


def test_the_answer_to_a_dead_runs_step_never_reaches_its_replacement():
  """The caller answers every step it got, even one whose actor died meanwhile: that answer is dropped, so the
  replacement gets the answer to its own first step (the scripted reward echoes the action)."""
  pool = actors.LocalActorPool(_configs({}, n=1))
  with pool:
    [old] = pool.receive(10.0)
    os.kill(pool.pids()[0], signal.SIGKILL)
    got = []
    deadline = time.monotonic() + 60
    while not got:
      assert time.monotonic() < deadline
      got = pool.receive(0.2)
    [new] = got
    assert (old.run_id, new.run_id) == (0, 1)
    pool.send_actions([old.actor_id, new.actor_id], np.array([[4, 4], [2, 3]], np.int32))
    [after] = pool.receive(10.0)
    assert after.run_id == 1 and after.reward.tolist() == [2.0, 3.0]
    pool.send_actions([0], np.array([[1, 1]]))
    [after] = pool.receive(10.0)
    assert after.reward.tolist() == [1.0, 1.0], 'no answer left over in the socket'
  assert pool.restarts == 1


def test_actor_timeout_is_a_validated_setting_that_reaches_the_pool(tmp_path):
  from rlcv_tf.marl import config as config_lib  # pylint: disable=g-import-not-at-top
  from rlcv_tf.marl import training  # pylint: disable=g-import-not-at-top  (TensorFlow: only this test)
  with pytest.raises(ValueError, match='actor_timeout_s: must be >= 0'):
    config_lib.MarlConfig(actor_timeout_s=-1.0).validate()
  assert config_lib.MarlConfig().actor_timeout_s == 60.0
  pool = training.make_actor_pool(config_lib.MarlConfig(env='test_scripted', actor_timeout_s=7.5,
                                                        max_actor_restarts=3).validate())
  assert pool._actor_timeout == 7.5  # pylint: disable=protected-access
  assert pool._max_restarts == 3  # pylint: disable=protected-access
  with pytest.raises(ValueError, match='max_actor_restarts: must be an integer >= 0'):
    config_lib.MarlConfig(max_actor_restarts=-1).validate()
  proc = subprocess.run([sys.executable, '-m', 'launchers.marl', '--env=test_scripted', '--actor_timeout_s=-2',
                         f'--logdir={tmp_path}'], cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert '--actor_timeout_s=-2' in marl_test_helpers.error_line(proc)
