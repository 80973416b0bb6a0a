r"""Play a saved Chapter 4 agent against the built-in AI or against another agent, K games (thesis Sec. 4.5).

  python -m launchers.marl_eval --agent=runs/marl/grf_5v5_acnn --games=10                 # vs the built-in AI
  python -m launchers.marl_eval --agent=RUN_A --opponent=RUN_B --games=10 --greedy         # agent vs agent
  python -m launchers.marl_eval --agent=RUN/checkpoints/ckpt-4096 --env=mini_5v5_small     # a checkpoint
  python -m launchers.marl_eval --agent=RUN_A --opponent=RUN_B --games=100 --record_dir=replays/5v5  # replays

An agent is a run's logdir, its SavedModel directory, or a checkpoint (prefix or checkpoints/ directory) with the
run's config.json nearby (or --config). The agent plays the left (home) team; agent vs agent hands the right team
to the opponent (two-team control: grf_5v5, mini_5v5, mini_5v5_small). Prints one line per game and writes the
results (per game and W/T/L, goals for/against, goal difference) as JSON to --output.

--record_dir saves the games (every --record_every-th) as observation replays of the HOME agents (the --agent's
team, as it saw the game; no actions) in the format launchers/marl_pretrain.py --replay_dir reads: recordings
of saved agents playing, next to those of RL runs (launchers/marl.py --record_dir). A directory that already
holds replays is appended to (they must be of the same observation shape).
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')  # TensorFlow's C++ start-up banner is noise here

from absl import app
from absl import flags

from launchers import common

flags.DEFINE_string('agent', '', 'The agent to evaluate (home, left team): run logdir, SavedModel directory or '
                    'checkpoint.')
flags.DEFINE_string('opponent', 'builtin', '`builtin` (the environment\'s built-in AI) or a second agent path '
                    '(away, right team).')
flags.DEFINE_integer('games', 10, 'Games to play.')
flags.DEFINE_boolean('greedy', False, 'Greedy (argmax) actions instead of sampling from the policy (the default, '
                     'as the agents act in training; spec ch4 §8 row 24).')
flags.DEFINE_string('env', '', 'Environment name; default: the agent\'s training environment.')
flags.DEFINE_integer('episode_length', 0, 'Steps per game; 0 = the agent\'s training setting / env default.')
flags.DEFINE_integer('seed', 0, 'Seed of the environment and of the action sampling.')
flags.DEFINE_string('config', '', 'config.json for a checkpoint agent whose run directory is elsewhere.')
flags.DEFINE_string('opponent_config', '', 'config.json for a checkpoint opponent.')
flags.DEFINE_string('prefer', 'saved_model', 'For a run logdir: load its saved_model or its latest checkpoint.')
flags.DEFINE_string('record_dir', '', 'Also save the games as observation replays of the home agents here (for '
                    'launchers/marl_pretrain.py --replay_dir); appended to if it holds replays.')
flags.DEFINE_integer('record_every', 1, 'With --record_dir: record every k-th game (the first included).')
flags.DEFINE_string('output', '', 'Results JSON; default: <agent run dir>/eval/<agent>_vs_<opponent>.json '
                    '(or ./eval_<agent>_vs_<opponent>.json).')

FLAGS = flags.FLAGS



def _check_flags():
  if not FLAGS.agent:
    common.fail('--agent is required: a run logdir, a SavedModel directory or a checkpoint')
  if FLAGS.games < 1:
    common.fail(f'--games={FLAGS.games}: must be >= 1')
  if FLAGS.episode_length < 0:
    common.fail(f'--episode_length={FLAGS.episode_length}: must be >= 1 (or 0 for the default)')
  if FLAGS.env and common.env_error(FLAGS.env, chapter=4):
    common.fail(common.env_error(FLAGS.env, chapter=4))
  if FLAGS.prefer not in ('saved_model', 'checkpoint'):
    common.fail(f'--prefer={FLAGS.prefer}: valid values: saved_model, checkpoint')
  if FLAGS.record_every < 1:
    common.fail(f'--record_every={FLAGS.record_every}: must be >= 1 (1 = record every game)')
  if FLAGS.record_dir:
    from rlcv_tf.marl import replays  # pylint: disable=g-import-not-at-top  (NumPy only)
    if os.path.exists(FLAGS.record_dir) and not os.path.isdir(FLAGS.record_dir):
      common.fail(f'--record_dir={FLAGS.record_dir}: exists and is not a directory')
    if os.path.exists(os.path.join(FLAGS.record_dir, replays.INDEX)):
      try:
        replays.read_index(FLAGS.record_dir)
      except (replays.ReplayError, ValueError) as e:   # a malformed index.json is a json ValueError
        common.fail(f'--record_dir={FLAGS.record_dir}: {e}; record to another directory')


def default_output(agent_source, home: str, away: str) -> str:
  run_dir = agent_source.path if os.path.isfile(os.path.join(agent_source.path, 'config.json')) else ''
  name = f'{home}_vs_{away}.json'
  return os.path.join(run_dir, 'eval', name) if run_dir else f'eval_{name}'


def main(argv):
  common.start(argv)
  _check_flags()
  from rlcv_tf.envs import base  # pylint: disable=g-import-not-at-top
  from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
  from rlcv_tf.marl import agents as agents_lib  # pylint: disable=g-import-not-at-top
  from rlcv_tf.marl import evaluation  # pylint: disable=g-import-not-at-top
  from rlcv_tf.marl import replays  # pylint: disable=g-import-not-at-top
  try:
    # Paths first (no TensorFlow yet), so a typo fails in a second.
    home_src = agents_lib.resolve_agent(FLAGS.agent, FLAGS.config or None, FLAGS.prefer)
    away_src = None
    if FLAGS.opponent != evaluation.BUILTIN:
      away_src = agents_lib.resolve_agent(FLAGS.opponent, FLAGS.opponent_config or None, FLAGS.prefer)
      if away_src.name == home_src.name:
        away_src.name += '_away'
    env_name = FLAGS.env or (home_src.config.env if home_src.config else '')
    if not env_name:
      common.fail(f'--agent={FLAGS.agent}: a SavedModel without its run\'s config.json; pass --env')
    registry.check_available(env_name)
    home = agents_lib.load_policy(home_src)
    away = agents_lib.load_policy(away_src) if away_src else None
    out_path = FLAGS.output or default_output(home_src, home.name, away.name if away else 'builtin')
    mode = 'greedy' if FLAGS.greedy else 'sampled'
    print(f'[eval] {home.name} ({home_src.kind}) vs {away.name + " (" + away_src.kind + ")" if away else "built-in AI"}'
          f' on {env_name}: {FLAGS.games} games, {mode} actions', flush=True)
    result = evaluation.play_games(home, away, FLAGS.games, FLAGS.greedy, env_name, FLAGS.episode_length or None,
                                   FLAGS.seed, print_fn=lambda s: print(s, flush=True),
                                   record_dir=FLAGS.record_dir or None, record_every=FLAGS.record_every)
  except replays.ReplayError as e:
    common.fail(f'--record_dir={FLAGS.record_dir}: {e}')
  except (agents_lib.AgentLoadError, base.EnvironmentUnavailableError, ValueError) as e:
    common.fail(str(e))
  evaluation.write_json(result, out_path)
  s = result['summary']
  print(f'[eval] done: W/T/L {s["wins"]}/{s["ties"]}/{s["losses"]}, goals {s["goals_for"]}-{s["goals_against"]} '
        f'(difference {s["goal_difference"]:+d}, {s["goal_difference_per_game"]:+.2f} per game); results '
        f'{out_path}', flush=True)
  if 'recorded' in result:
    rec = result['recorded']
    print(f'[eval] recorded {rec["episodes"]} games (home agents\' observations) to {rec["directory"]}; pre-train '
          f'on them with python -m launchers.marl_pretrain --replay_dir={rec["directory"]}', flush=True)


if __name__ == '__main__':
  app.run(main)
