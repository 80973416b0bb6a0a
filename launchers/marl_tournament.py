r"""Round-robin tournament of saved Chapter 4 agents with ELO ratings (thesis Table 4.1 left, App. 4.F).

  python -m launchers.marl_tournament --agents=RUN_A,RUN_B,RUN_C --games=10 --output_dir=runs/tournament

Every ordered pair (home, away) plays --games games, so each pair meets 2 x --games times, once per side (the
thesis: 20 matches per pair). Writes <output_dir>/tournament.json (W/T/L table of row = home vs column = away,
goals, every game, ELO) and <output_dir>/table.txt (the Table 4.1-style table). ELO is App. 4.F: start 1000,
shuffled match order, k = 16, win 1 / tie 0 / loss -1 (--elo_scoring=standard: 1 / 0.5 / 0); the table shows one
shuffle (as the thesis reports) and the mean and spread over --elo_shuffles orders.
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')

from absl import app
from absl import flags

from launchers import common

flags.DEFINE_list('agents', [], 'Comma-separated agents (run logdirs, SavedModels or checkpoints); NAME=PATH '
                  'names one explicitly (default name: the run directory).')
flags.DEFINE_integer('games', 10, 'Games per ordered pair (home and away each play this many).')
flags.DEFINE_boolean('greedy', False, 'Greedy actions instead of sampling from the policies.')
flags.DEFINE_string('env', '', 'Environment with two-team control; default: the first agent\'s.')
flags.DEFINE_integer('episode_length', 0, 'Steps per game; 0 = the agents\' training setting / env default.')
flags.DEFINE_integer('seed', 0, 'Seed of the games and of the ELO match order.')
flags.DEFINE_string('prefer', 'saved_model', 'For run logdirs: load the saved_model or the latest checkpoint.')
flags.DEFINE_integer('elo_shuffles', 1000, 'Match orders for the ELO mean and spread.')
flags.DEFINE_string('elo_scoring', 'thesis', 'thesis (win 1 / tie 0 / loss -1, App. 4.F) or standard (1/0.5/0).')
flags.DEFINE_string('output_dir', 'runs/marl_tournament', 'Where tournament.json and table.txt go.')

FLAGS = flags.FLAGS



def main(argv):
  common.start(argv)
  from rlcv_tf.envs import base  # pylint: disable=g-import-not-at-top
  from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
  from rlcv_tf.marl import agents as agents_lib  # pylint: disable=g-import-not-at-top
  from rlcv_tf.marl import elo  # pylint: disable=g-import-not-at-top
  from rlcv_tf.marl import evaluation  # pylint: disable=g-import-not-at-top
  if len(FLAGS.agents) < 2:
    common.fail(f'--agents={",".join(FLAGS.agents)}: a tournament needs at least two agents')
  if FLAGS.games < 1:
    common.fail(f'--games={FLAGS.games}: must be >= 1')
  if FLAGS.episode_length < 0:
    common.fail(f'--episode_length={FLAGS.episode_length}: must be >= 1 (or 0 for the default)')
  if FLAGS.elo_scoring not in elo.SCORINGS:
    common.fail(f'--elo_scoring={FLAGS.elo_scoring}: valid values: {", ".join(elo.SCORINGS)}')
  if FLAGS.elo_shuffles < 1:
    common.fail(f'--elo_shuffles={FLAGS.elo_shuffles}: must be >= 1')
  if FLAGS.prefer not in ('saved_model', 'checkpoint'):
    common.fail(f'--prefer={FLAGS.prefer}: valid values: saved_model, checkpoint')
  if FLAGS.env and FLAGS.env not in evaluation.TWO_TEAM_ENVS:
    common.fail(f'--env={FLAGS.env}: agents play each other only with two-team control; valid values: '
          f'{", ".join(evaluation.TWO_TEAM_ENVS)}')
  try:
    sources = []
    for item in FLAGS.agents:
      name, sep, path = item.partition('=')
      sources.append(agents_lib.resolve_agent(path if sep else item, prefer=FLAGS.prefer,
                                              name=name if sep else None))
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
      common.fail(f'--agents: agent names must be unique, got {", ".join(names)} (use NAME=PATH)')
    env_name = FLAGS.env or (sources[0].config.env if sources[0].config else '')
    if not env_name:
      common.fail('--env is required when the first agent is a SavedModel without its config.json')
    registry.check_available(env_name)
    agents = [agents_lib.load_policy(s) for s in sources]
    pairs = len(agents) * (len(agents) - 1)
    print(f'[tournament] {len(agents)} agents ({", ".join(names)}) on {env_name}: {pairs} ordered pairs x '
          f'{FLAGS.games} games = {pairs * FLAGS.games} games, {"greedy" if FLAGS.greedy else "sampled"} actions',
          flush=True)
    result = evaluation.tournament(agents, FLAGS.games, FLAGS.greedy, env_name, FLAGS.episode_length or None,
                                   FLAGS.seed, FLAGS.elo_shuffles, FLAGS.elo_scoring,
                                   print_fn=lambda s: print(s, flush=True))
  except (agents_lib.AgentLoadError, base.EnvironmentUnavailableError, ValueError) as e:
    common.fail(str(e))
  os.makedirs(FLAGS.output_dir, exist_ok=True)
  evaluation.write_json(result, os.path.join(FLAGS.output_dir, 'tournament.json'))
  table = evaluation.format_table(result)
  with open(os.path.join(FLAGS.output_dir, 'table.txt'), 'w') as f:
    f.write(table + '\n')
  print(table)
  print(f'[tournament] done: {FLAGS.output_dir}/tournament.json, {FLAGS.output_dir}/table.txt', flush=True)


if __name__ == '__main__':
  app.run(main)
