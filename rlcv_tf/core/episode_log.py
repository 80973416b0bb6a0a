"""A run's finished episodes as JSON lines in its logdir (`episodes.jsonl`), kept in step with its checkpoints.

`append(logdir, rows)` adds rows as they finish; `load(logdir, up_to, key)` reads them, and with `up_to` (a resumed
run's restored counter) drops from the file too the rows recorded after the checkpoint (`row[key] > up_to`): the
resumed run plays those again. Used by seed 001's PPO and seeds 003-004's DQN and REINFORCE.
"""

import json
import os
from typing import Dict, List, Optional, Sequence

FILE = 'episodes.jsonl'


def append(logdir: str, rows: Sequence[Dict], name: str = FILE) -> None:
  if not rows:
    return
  with open(os.path.join(logdir, name), 'a') as f:
    f.writelines(json.dumps(r) + '\n' for r in rows)


def load(logdir: str, up_to: Optional[int] = None, key: str = 'agent_steps', name: str = FILE) -> List[Dict]:
  path = os.path.join(logdir, name)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    rows = [json.loads(line) for line in f if line.strip()]
  if up_to is not None and any(r[key] > up_to for r in rows):
    rows = [r for r in rows if r[key] <= up_to]
    with open(path, 'w') as f:
      f.writelines(json.dumps(r) + '\n' for r in rows)
  return rows
