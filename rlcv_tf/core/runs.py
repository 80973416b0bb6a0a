"""Run plumbing every training job shares: never lose work, and know what a logdir holds.

* `StopOnSignal`: SIGINT (Ctrl-C) and SIGTERM (cloud preemption) become a flag the training loop polls between
  updates, so the job can save a checkpoint and its SavedModel and say where, losing at most the update in flight.
  A second signal raises `KeyboardInterrupt` at once, without saving.
* `Interrupted`: raised by a job that stopped on a signal after saving; launchers exit with 128 + the signal.
* `record_config`: writes `config.json` and appends to `config_history.jsonl`, so a resumed run whose settings
  changed says what changed and at which step (the caller also writes it to TensorBoard;
  `checkpointing.open_writer` does both).
* `load_config` / `check_same_settings` / `ResumeMismatchError`: a re-run on a logdir resumes it, unless it asks for
  other values of the settings that fix the saved variables (the model, the environment, ...): then one
  `ResumeMismatchError` names the field, both values and the fix, before anything is built or written (launchers
  print it as their one `error:` line and exit 2).
* `derived_seed`: seeds for the random streams of a (re)started run from (seed, step at start, ...), so a resumed
  run does not replay the first run's streams.
* `ConfigRecord`: the JSON round trip of the frozen config dataclasses (`replace` that refuses unknown fields and
  turns lists into tuples, `to_dict`/`to_json`/`from_dict`/`from_json`), shared by the chapters' configs.
* `write_saved_model`: writes a SavedModel to a temporary sibling directory and swaps it in, so an interrupted
  export never leaves a half-written model where a complete one was.

No TensorFlow here (except inside `write_saved_model`'s caller-supplied function): launchers import this module
before TensorFlow loads.
"""

import dataclasses
import json
import os
import shutil
import signal
import threading
import time
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

_SIGNAL_NAMES = {signal.SIGINT: 'SIGINT', signal.SIGTERM: 'SIGTERM'}


def tuplify(value):
  """Lists (from JSON or flags) as tuples, recursively, so frozen configs stay hashable and compare equal."""
  if isinstance(value, (list, tuple)):
    return tuple(tuplify(v) for v in value)
  return value


class ConfigRecord:
  """Mixin for frozen config dataclasses whose defaults build a valid config: JSON round trip and checked replace."""

  def replace(self, **overrides):
    """A copy with `overrides` (lists become tuples); an unknown field raises one ValueError. Not validated."""
    names = [f.name for f in dataclasses.fields(self)]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
      raise ValueError(f'{unknown[0]}: unknown {type(self).__name__} field; valid values are {names}')
    return dataclasses.replace(self, **{k: tuplify(v) for k, v in overrides.items()})

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), indent=1, sort_keys=True)

  @classmethod
  def from_dict(cls, values: dict):
    return cls().replace(**values)

  @classmethod
  def from_json(cls, text: str):
    return cls.from_dict(json.loads(text))


class Interrupted(Exception):
  """A job stopped on SIGINT/SIGTERM after saving its work. `exit_code` is 128 + the signal number."""

  def __init__(self, signum: int, message: str):
    super().__init__(message)
    self.signum = signum

  @property
  def exit_code(self) -> int:
    return 128 + int(self.signum)


class ResumeMismatchError(ValueError):
  """A logdir holds a run whose saved variables another setting cannot restore (see `check_same_settings`)."""


def load_config(logdir: str) -> Optional[Dict[str, Any]]:
  """The `config.json` that `record_config` wrote in `logdir`, as a dict; None for a new logdir."""
  path = os.path.join(logdir, 'config.json')
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def _setting(config, field: str):
  if isinstance(config, dict):
    return config.get(field)
  return getattr(config, field)


def check_same_settings(logdir: str, saved, current, fields) -> None:
  """Raises `ResumeMismatchError` at the first of `fields` whose value differs between the run saved in `logdir`
  (`saved`: its configuration, e.g. `load_config(logdir)` or a config dataclass loaded from there; None for a new
  run, which passes) and this run's `current` configuration. Configurations are dicts or objects with the fields as
  attributes; compare like with like (a dict written to JSON holds lists where a dataclass holds tuples)."""
  if saved is None:
    return
  for field in fields:
    a, b = _setting(saved, field), _setting(current, field)
    if a != b:
      raise ResumeMismatchError(
          f'--logdir={logdir} holds a run with {field}={a!r}, but this run asks for {field}={b!r}. Use the same '
          f'value to resume it, or a new --logdir to start a new run.')


class StopOnSignal:
  """Context manager: while inside, SIGINT/SIGTERM set `requested` (the signal's name) instead of killing the
  process. Only the main thread can install signal handlers; elsewhere this is a no-op with `requested` None."""

  def __init__(self, print_fn: Callable[[str], None] = print, prefix: str = ''):
    self._print = print_fn
    self._prefix = prefix
    self._previous: Dict[int, Any] = {}
    self._announced = False
    self.signum: Optional[int] = None
    self._requested: Optional[str] = None

  @property
  def requested(self) -> Optional[str]:
    """The signal's name once one arrived, else None. The first read after a signal also prints the notice: the
    handler itself prints nothing, since a handler that writes to stdout while the interrupted code is writing
    there fails with a reentrant-call error."""
    if self._requested is not None and not self._announced:
      self._announced = True
      self._print(f'{self._prefix}{self._requested} received: finishing the update in flight, then saving '
                  '(send it again to quit at once)')
    return self._requested

  def _handler(self, signum, frame):  # pylint: disable=unused-argument
    if self._requested is not None:
      raise KeyboardInterrupt(f'second {_SIGNAL_NAMES.get(signum, signum)}')
    self.signum = signum
    self._requested = _SIGNAL_NAMES.get(signum, str(signum))

  def request(self, signum: int = signal.SIGINT):
    """Acts as if `signum` had arrived (tests, and code that wants the same orderly stop)."""
    self._handler(signum, None)

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for sig in (signal.SIGINT, signal.SIGTERM):
        self._previous[sig] = signal.signal(sig, self._handler)
    return self

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
    self._previous.clear()
    return False


def derived_seed(seed: int, *parts: int) -> int:
  """A 31-bit seed from (seed, parts...), e.g. (seed, frames at the start of this session, actor index).

  Distinct inputs give independent streams (numpy's SeedSequence hashing); the same inputs the same seed.
  """
  entropy = [int(seed) & 0xFFFFFFFF] + [int(p) & 0xFFFFFFFFFFFFFFFF for p in parts]
  return int(np.random.SeedSequence(entropy).generate_state(1, np.uint32)[0] & 0x7FFFFFFF)


def _diff(old: Dict[str, Any], new: Dict[str, Any]) -> Dict[str, Tuple[Any, Any]]:
  keys = sorted(set(old) | set(new))
  return {k: (old.get(k), new.get(k)) for k in keys if old.get(k) != new.get(k)}


def record_config(logdir: str, config: Dict[str, Any], step: int) -> Dict[str, Tuple[Any, Any]]:
  """Writes `config` (a JSON-able dict) to `logdir/config.json` and logs it in `logdir/config_history.jsonl`.

  The first call for a logdir records the whole config; later calls (resumed runs) record the fields that
  differ from the previous config.json, with the step the run resumed at. Returns {field: (old, new)} ({} for
  a new run or an unchanged config).
  """
  os.makedirs(logdir, exist_ok=True)
  path = os.path.join(logdir, 'config.json')
  config = json.loads(json.dumps(config))    # tuples -> lists, so the comparison sees what the file holds
  old = None
  if os.path.exists(path):
    with open(path) as f:
      old = json.load(f)
  entry: Dict[str, Any] = {'time': time.strftime('%Y-%m-%dT%H:%M:%S'), 'step': int(step)}
  changes: Dict[str, Tuple[Any, Any]] = {}
  if old is None:
    entry['config'] = config
  else:
    changes = _diff(old, config)
    if not changes:
      entry['resumed'] = True
    else:
      entry['changes'] = {k: {'old': a, 'new': b} for k, (a, b) in changes.items()}
  with open(os.path.join(logdir, 'config_history.jsonl'), 'a') as f:
    f.write(json.dumps(entry, sort_keys=True) + '\n')
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(config, f, indent=2, sort_keys=True)
  os.replace(tmp, path)
  return changes


def format_changes(changes: Dict[str, Tuple[Any, Any]]) -> str:
  """'learning_rate 0.001 -> 0.0005, batch_size 4 -> 8' (one line, for the console and TensorBoard)."""
  return ', '.join(f'{k} {a!r} -> {b!r}' for k, (a, b) in changes.items())


def write_saved_model(path: str, write_fn: Callable[[str], Any]) -> str:
  """Calls `write_fn(tmp_dir)` to write a SavedModel, then replaces `path` with it (the old model stays intact
  until the new one is complete)."""
  parent = os.path.dirname(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  tmp = f'{os.path.abspath(path)}.partial'
  shutil.rmtree(tmp, ignore_errors=True)
  write_fn(tmp)
  old = f'{os.path.abspath(path)}.old'
  shutil.rmtree(old, ignore_errors=True)
  if os.path.exists(path):
    os.replace(path, old)
  os.replace(tmp, path)
  shutil.rmtree(old, ignore_errors=True)
  return path
