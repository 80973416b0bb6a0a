"""Entry point of one actor process: build the environment, then step it with the learner's actions.

Run by `actors.LocalActorPool`; never imports TensorFlow (an actor costs tens of MB, starts in a second).
Messages to the learner: ('step', obs_bytes, obs_shape, reward[N], done, positions[N,2], episode|None, discount,
truncated) (the fields of `env_runner.StepOutput`) and ('error', actor_id, text). From the learner: ('act', actions[N])
and ('close',).
"""

import argparse
import json
import os
import sys
import traceback
from multiprocessing import connection


def run(conn, cfg, actor_id: int, run_id: int, seed: int):
  from rlcv_tf.envs import registry  # imported here so a bad environment is reported over the socket
  from rlcv_tf.runtime import env_runner
  env_kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg['env_kwargs'].items()}
  try:
    env = registry.make_env(cfg['env_name'], seed=seed, num_frames=cfg['num_frames'], **env_kwargs)
  except Exception as e:  # pylint: disable=broad-except
    conn.send(('error', actor_id, f'{type(e).__name__}: {e}'))
    return 1
  conn.send(('hello', actor_id, run_id))
  runner = env_runner.EnvRunner(env)
  out = runner.reset()
  while True:
    obs = out.observation
    conn.send(('step', obs.tobytes(), obs.shape, out.reward, out.done, out.agent_positions, out.episode,
               out.discount, out.truncated))
    msg = conn.recv()
    if msg[0] == 'close':
      break
    out = runner.step(msg[1])
  runner.close()
  return 0


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--address', required=True)
  parser.add_argument('--actor_id', type=int, required=True)
  parser.add_argument('--run_id', type=int, required=True)
  parser.add_argument('--seed', type=int, required=True)
  args = parser.parse_args(argv)
  cfg = json.loads(sys.stdin.read())
  authkey = bytes.fromhex(os.environ['RLCV_ACTOR_AUTHKEY'])
  conn = connection.Client(args.address, family='AF_UNIX', authkey=authkey)
  try:
    return run(conn, cfg, args.actor_id, args.run_id, args.seed)
  except (EOFError, BrokenPipeError, ConnectionResetError):
    return 0  # the learner went away: nothing left to do
  except Exception:  # pylint: disable=broad-except
    try:
      conn.send(('error', args.actor_id, traceback.format_exc(limit=3)))
    except OSError:
      pass
    return 1


if __name__ == '__main__':
  sys.exit(main())
