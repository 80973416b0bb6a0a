r"""Attention pictures of a trained ACNN agent over one played episode (thesis Fig. 4.2).

  python -m launchers.marl_attention --agent=runs/marl/grf_5v5_acnn --steps=100 --outdir=runs/attention
  python -m launchers.marl_attention --agent=RUN/checkpoints/ckpt-4096 --focus=1,2 --greedy

The agent is restored from its checkpoint (a run logdir, a checkpoint prefix or a checkpoints/ directory; the
SavedModel does not return the attention weights). Writes one PNG per step (rows: the focus agents, columns: the
attention heads; red borders and lines with opacity = attention weight), attention.gif and attention.npz.
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')

from absl import app
from absl import flags

from launchers import common

flags.DEFINE_string('agent', '', 'ACNN agent: run logdir, checkpoint prefix or checkpoints/ directory.')
flags.DEFINE_string('config', '', 'config.json, if the checkpoint is not inside its run directory.')
flags.DEFINE_string('env', '', 'Environment name; default: the agent\'s training environment.')
flags.DEFINE_integer('steps', 100, 'Steps to play and draw (fewer if the episode ends first).')
flags.DEFINE_integer('episode_length', 0, 'Episode length override (0 = the agent\'s setting).')
flags.DEFINE_boolean('greedy', False, 'Greedy actions instead of sampling.')
flags.DEFINE_integer('seed', 0, 'Seed of the environment and of the action sampling.')
flags.DEFINE_list('focus', [], 'Agents whose attention is drawn (rows), e.g. 1,2; default: all.')
flags.DEFINE_integer('scale', 0, 'Pixels per SMM cell; 0 = about 384 pixels wide.')
flags.DEFINE_integer('gif_ms', 150, 'Milliseconds per GIF frame.')
flags.DEFINE_boolean('png', True, 'Also write one PNG per step.')
flags.DEFINE_boolean('relative', False, 'Opacity = weight / the row\'s largest weight (clearer for near-uniform '
                     'attention); default: opacity = the weight itself.')
flags.DEFINE_string('outdir', '', 'Output directory; default: <run dir>/attention (or ./attention).')

FLAGS = flags.FLAGS



def main(argv):
  common.start(argv)
  from rlcv_tf.envs import base  # pylint: disable=g-import-not-at-top
  from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
  from rlcv_tf.marl import agents as agents_lib  # pylint: disable=g-import-not-at-top
  if not FLAGS.agent:
    common.fail('--agent is required: an ACNN run logdir or checkpoint')
  for name in ('steps', 'gif_ms'):
    if getattr(FLAGS, name) < 1:
      common.fail(f'--{name}={getattr(FLAGS, name)}: must be >= 1')
  if FLAGS.scale < 0 or FLAGS.episode_length < 0:
    common.fail(f'--scale={FLAGS.scale} / --episode_length={FLAGS.episode_length}: must be >= 0')
  if FLAGS.env and common.env_error(FLAGS.env, chapter=4):
    common.fail(common.env_error(FLAGS.env, chapter=4))
  try:
    focus = [int(x) for x in FLAGS.focus] if FLAGS.focus else None
  except ValueError:
    common.fail(f'--focus={",".join(FLAGS.focus)}: expected agent indices, e.g. 0,1')
  try:
    source = agents_lib.resolve_agent(FLAGS.agent, FLAGS.config or None, prefer='checkpoint')
    if source.kind != 'checkpoint':
      common.fail(f'--agent={FLAGS.agent}: a SavedModel does not return attention weights; give the run logdir or '
            'its checkpoint')
    if source.config.model != 'acnn':
      common.fail(f'--agent={FLAGS.agent}: model {source.config.model!r} has no agent-centric attention (needs acnn)')
    env_name = FLAGS.env or source.config.env
    registry.check_available(env_name)
    from rlcv_tf.marl import attention_viz  # pylint: disable=g-import-not-at-top
    policy = agents_lib.load_policy(source)
    env_kwargs = {'episode_length': FLAGS.episode_length} if FLAGS.episode_length else None
    print(f'[attention] {source.name} on {env_name}: playing up to {FLAGS.steps} steps', flush=True)
    episode = attention_viz.record_episode(policy, env_name, FLAGS.steps, FLAGS.greedy, FLAGS.seed, env_kwargs)
    n = episode['attention'].shape[-1]
    if focus is not None and any(not 0 <= i < n for i in focus):
      common.fail(f'--focus={",".join(FLAGS.focus)}: agent indices must lie in [0, {n - 1}]')
    run_dir = source.path if os.path.isfile(os.path.join(source.path, 'config.json')) else ''
    outdir = FLAGS.outdir or (os.path.join(run_dir, 'attention') if run_dir else 'attention')
    paths = attention_viz.save_episode(episode, outdir, FLAGS.scale or None, focus, FLAGS.gif_ms, FLAGS.png,
                                       FLAGS.relative)
  except (agents_lib.AgentLoadError, base.EnvironmentUnavailableError, ValueError) as e:
    common.fail(str(e))
  print(f'[attention] {len(episode["frames"])} frames: {paths["gif"]}, {paths["npz"]}'
        + (f', PNGs in {paths["pngs"]}' if paths['pngs'] else ''), flush=True)


if __name__ == '__main__':
  app.run(main)
