"""Entry point of one actor process: say hello to the learner, build the environment, step it with its actions.

Run by `actors.LocalActorPool` (and, over TCP, by pools that place actors on other machines); never imports
TensorFlow (an actor costs tens of MB, starts in a second). It speaks `transport`'s frames:

  -> HELLO (key, actor id, run id)    <- WELCOME, or ERROR if refused (another protocol version, wrong key)
  -> STEP (first observation)         or ERROR (the environment could not be built: the text says why)
  <- ACTIONS  -> STEP  ...            until <- CLOSE, or -> ERROR (a traceback) if stepping fails

The actor steps its environment unstacked and sends each step's newest frame, with the planes its teams share
once per team, bit-packed where binary (`compact.FrameEncoder`); the learner rebuilds the `num_frames` stack
(`compact.FrameStacker`), bit for bit what `envs.frame_stack.FrameStack` would have given, so no actor copies or
sends stacks.

An actor of K > 1 environments (`num_envs` in its configuration; Chapter 2's synchronous rollouts) builds
environment k with seed `seed + k`, steps them one after the other and answers each ACTIONS frame, whose leading
axis holds the K joint actions, with one STEPS frame of the K steps in environment order: K environments on one
actor stream what K one-environment actors of seeds seed, seed + 1, ... would.

The configuration (`actors.ActorConfig` as JSON) comes on stdin and the per-run key in the environment variable
RLCV_ACTOR_KEY (`transport.KEY_ENV`, hex), so neither shows in the process list. Exit codes: 0 closed by the
learner (or the learner went away), 1 the environment failed, `transport.EXIT_REFUSED` (3) refused by the
learner, 2 bad invocation or learner unreachable. With RLCV_ACTOR_PARENT_PID (`PARENT_PID_ENV`) set, as a Ray actor
hosting it does, the process dies with that parent (Linux), so a killed worker or a lost node leaves no actor behind.
"""

import argparse
import json
import os
import signal
import sys
import traceback

from rlcv_tf.runtime import transport

PARENT_PID_ENV = 'RLCV_ACTOR_PARENT_PID'


def run(sock, cfg, actor_id: int, run_id: int, seed: int) -> int:
  from rlcv_tf.envs import registry  # imported here so a bad environment is reported over the socket
  from rlcv_tf.runtime import compact
  from rlcv_tf.runtime import env_runner
  env_kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg['env_kwargs'].items()}
  num_envs = int(cfg.get('num_envs', 1))
  runners, encoders = [], []
  try:
    for k in range(num_envs):
      # Unstacked: the learner stacks the frames (module docstring).
      env = registry.make_env(cfg['env_name'], seed=seed + k, num_frames=1, **env_kwargs)
      runners.append(env_runner.EnvRunner(env))
      # Binary planes travel bit-packed: at 72x96 that costs the learner less than receiving them as bytes
      # (benchmarks/marl_transport.py), and between machines the bytes are the cost.
      encoders.append(compact.FrameEncoder(cfg['num_frames'], env.shared_channels, env.team_sizes))
  except Exception as e:  # pylint: disable=broad-except
    for r in runners:
      r.close()
    sock.sendall(transport.encode_error(actor_id, f'{type(e).__name__}: {e}'))
    return 1
  warned = False

  def step_args(k, out):
    nonlocal warned
    obs = encoders[k].encode(out.observation)
    if encoders[k].fallbacks and not warned:
      warned = True
      env = runners[k].env
      _say(actor_id, f'{cfg["env_name"]} declares channels {tuple(env.shared_channels)} shared by a team, but they '
                     'differed between agents: such steps travel whole')
    return (obs.arrays, out.reward, out.done, out.agent_positions, out.episode, out.discount, out.truncated,
            obs.encoding, obs.num_frames)

  try:
    outs = [r.reset() for r in runners]
    while True:
      if num_envs == 1:
        sock.sendall(transport.encode_step(*step_args(0, outs[0])))
      else:
        sock.sendall(transport.encode_steps([step_args(k, out) for k, out in enumerate(outs)]))
      frame_type, payload = transport.read_frame(sock)
      if frame_type == transport.CLOSE:
        return 0
      if frame_type != transport.ACTIONS:
        raise transport.ProtocolError('expected ACTIONS or CLOSE from the learner, got '
                                      f'{transport.FRAME_NAMES.get(frame_type, frame_type)}')
      actions = transport.decode_actions(payload)
      if num_envs == 1:
        outs = [runners[0].step(actions)]
      else:
        if actions.ndim < 1 or actions.shape[0] != num_envs:
          raise transport.ProtocolError(f'ACTIONS of shape {actions.shape} for {num_envs} environments: the leading '
                                        'axis must hold one joint action per environment')
        outs = [r.step(a) for r, a in zip(runners, actions)]
  finally:
    for r in runners:
      r.close()


def _say(actor_id: int, text: str):
  print(f'[actor {actor_id}] {text}', file=sys.stderr, flush=True)


def _die_with_parent(parent_pid: int):
  """Asks Linux to SIGKILL this process when its parent exits; exits at once if the parent is already gone."""
  try:
    import ctypes  # pylint: disable=g-import-not-at-top
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
  except (OSError, AttributeError):
    return   # not Linux: the learner's end of the connection still stops an orphan at its next read
  if os.getppid() != parent_pid:
    sys.exit(0)


def _unreachable(address: str, error: Exception) -> str:
  text = f'cannot reach the learner at {address}: {error}'
  if address.startswith('tcp:'):
    text += ('; the learner listens on its --learner_host, which must be an address of its machine that this '
             'machine can reach (e.g. --learner_host=<the learner machine\'s IP on this network>)')
  return text


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--address', required=True, help='the learner: unix:PATH or tcp:HOST:PORT')
  parser.add_argument('--actor_id', type=int, required=True)
  parser.add_argument('--run_id', type=int, required=True)
  parser.add_argument('--seed', type=int, required=True)
  parser.add_argument('--connect_timeout_s', type=float, default=30.0)
  # Tests only: speak another protocol version, to check that the learner refuses it cleanly.
  parser.add_argument('--protocol_version', type=int, default=transport.VERSION, help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  # Ctrl-C in a terminal reaches the whole process group: the learner saves its work and then closes its actors
  # (CLOSE, or the end of the connection), so an actor does not die of it mid-step with a traceback of its own.
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  if os.environ.get(PARENT_PID_ENV, '').isdigit():
    _die_with_parent(int(os.environ[PARENT_PID_ENV]))
  cfg = json.loads(sys.stdin.read())
  try:
    key = bytes.fromhex(os.environ[transport.KEY_ENV])
  except (KeyError, ValueError):
    _say(args.actor_id, f'the learner\'s key is missing: set {transport.KEY_ENV} (hex), as the actor pool does')
    return 2
  try:
    sock = transport.connect(args.address, timeout=args.connect_timeout_s)
  except (OSError, ValueError) as e:
    _say(args.actor_id, _unreachable(args.address, e))
    return 2
  try:
    sock.sendall(transport.encode_hello(key, args.actor_id, args.run_id, version=args.protocol_version))
    frame_type, payload = transport.read_frame(sock, transport.MAX_HELLO_BYTES)
    if frame_type == transport.ERROR:
      _say(args.actor_id, f'refused by the learner at {args.address}: {transport.decode_error(payload)[1]}')
      return transport.EXIT_REFUSED
    if frame_type != transport.WELCOME:
      _say(args.actor_id, f'the learner at {args.address} answered the hello with '
                          f'{transport.FRAME_NAMES.get(frame_type, frame_type)}, not WELCOME')
      return transport.EXIT_REFUSED
    return run(sock, cfg, args.actor_id, args.run_id, args.seed)
  except (EOFError, BrokenPipeError, ConnectionResetError):
    return 0  # the learner went away: nothing left to do
  except Exception:  # pylint: disable=broad-except
    try:
      sock.sendall(transport.encode_error(args.actor_id, traceback.format_exc(limit=-4)))
    except OSError:
      pass
    return 1
  finally:
    sock.close()


if __name__ == '__main__':
  sys.exit(main())
