r"""Seed 001 on real ALE Breakout at the paper's network size, CPU-bounded (issue 14 Sec. 6): R6 (the pre-trained VAE
drops the ball), R5 (the gradient norms at U, at the first iteration and after training), R7 (the value-Jacobian
overlay) and a short run of each variant beside uniformly random play, reported as it comes out.

  python examples/vae_pg_breakout.py                                  # ~30 min on 2 cores
  python examples/vae_pg_breakout.py --pretrain_frames=25000 --pretrain_epochs=100 --total_steps=10000000  # paper

Settings: the `paper` preset (Table 1 VAE: Conv 32-64 + FC 512, 20 latents; n = 4 frames of 84x84; the seed-001
ALE preset `atari_breakout_seed001`) with a CPU budget: --pretrain_frames tracker frames (the paper's 25,000 come
from "an already trained policy", not available: the scripted RAM ball tracker with epsilon 0.05 stands in) for
--pretrain_epochs epochs, then --total_steps agent steps per variant on --num_envs x --t_max rollouts with
--ppo_epochs epochs of 4 minibatches (the paper: 16 x 2,048, 32 minibatches, K = 10, 10^7 steps). Every variant
gets the same settings. A few thousand agent steps are ~1/2,000 of the paper's budget: no variant is expected to
beat random play here; the diagnostics are the point.
Outputs (--out, default docs/vae_pg_breakout): .md, .json, _recon.png (validation frames over reconstructions),
_jacobian.png (R7 overlays for each variant's final policy). Runs live under --root (re-running resumes them).
"""

import json
import os
import sys
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=g-import-not-at-top

flags.DEFINE_integer('pretrain_frames', 4000, 'Tracker frames for VAE pre-training (paper 25,000).')
flags.DEFINE_integer('pretrain_epochs', 4, 'VAE pre-training epochs (paper 100).')
flags.DEFINE_integer('total_steps', 3072, 'Agent steps per variant (paper 10^7).')
flags.DEFINE_integer('num_envs', 8, 'Environments (paper 16).')
flags.DEFINE_integer('t_max', 64, 'Rollout length (paper 2,048).')
flags.DEFINE_integer('ppo_epochs', 2, 'PPO epochs K (paper 10).')
flags.DEFINE_list('variants', ['fixed', 'adapt', 'joint'], 'Variants.')
flags.DEFINE_integer('random_episodes', 10, 'Episodes of uniformly random play for the baseline.')
flags.DEFINE_integer('seed', 0, 'Seed.')
flags.DEFINE_string('root', 'runs/examples/vae_pg_breakout', 'Where the runs go.')
flags.DEFINE_string('out', 'docs/vae_pg_breakout', 'Output prefix.')
FLAGS = flags.FLAGS


def _jacobian_frames(env_name: str, num_frames: int, count: int, seed: int):
  """`count` stacked observations [count, 84, 84, n] from a tracker-played episode (ball in play in each)."""
  from rlcv_tf.datasets import atari_frames  # pylint: disable=g-import-not-at-top
  from rlcv_tf.envs import registry  # pylint: disable=g-import-not-at-top
  env = registry.make_env(env_name, seed=seed, num_frames=num_frames)
  rng = np.random.default_rng(seed)
  ts = env.reset()
  picked = []
  for t in range(2000):
    raw = env.unwrapped
    pos = raw.object_positions() if hasattr(raw, 'object_positions') else {}
    if t > 40 and t % 37 == 0 and pos.get('ball_col', -1) >= 0:
      picked.append(np.asarray(ts.observation[0]))
      if len(picked) == count:
        break
    ts = env.step(np.array([atari_frames.tracker_action(pos, raw.geometry, rng, 0.05)]))
    if ts.last():
      ts = env.reset()
  env.close()
  return np.stack(picked)


def main(argv):
  del argv
  from rlcv_tf.core import quiet  # pylint: disable=g-import-not-at-top
  quiet.import_tensorflow()
  from rlcv_tf.core import images as images_lib  # pylint: disable=g-import-not-at-top
  from rlcv_tf.vae_pg import jacobian  # pylint: disable=g-import-not-at-top
  from rlcv_tf.vae_pg import learning_check  # pylint: disable=g-import-not-at-top
  from rlcv_tf.vae_pg import presets  # pylint: disable=g-import-not-at-top
  from rlcv_tf.vae_pg import training  # pylint: disable=g-import-not-at-top
  start = time.monotonic()
  os.makedirs(os.path.dirname(FLAGS.out) or '.', exist_ok=True)
  base = presets.preset('paper', seed=FLAGS.seed, pretrain_frames=FLAGS.pretrain_frames,
                        pretrain_epochs=FLAGS.pretrain_epochs, total_steps=FLAGS.total_steps, num_envs=FLAGS.num_envs,
                        envs_per_actor=max(1, FLAGS.num_envs // 2), t_max=FLAGS.t_max, num_minibatches=4,
                        epochs=FLAGS.ppo_epochs, log_interval_s=60.0)
  say = lambda line: print('  ' + line, flush=True) if ('done' in line or 'check' in line or 'frames' in line) else None
  pre_dir = os.path.join(FLAGS.root, 'pretrain')
  record = {'settings': {k: FLAGS[k].value for k in ('pretrain_frames', 'pretrain_epochs', 'total_steps', 'num_envs',
                                                      't_max', 'ppo_epochs', 'seed')}, 'runs': []}
  record['settings']['env'] = base.env
  if not os.path.exists(os.path.join(pre_dir, training.VAE_WEIGHTS)):
    print(f'[example] VAE pre-training on {FLAGS.pretrain_frames:,} tracker frames of real Breakout', flush=True)
    t0 = time.monotonic()
    training.pretrain(base, pre_dir, print_fn=say)
    record['pretrain_wall_s'] = time.monotonic() - t0
  with open(os.path.join(pre_dir, 'eval.json')) as f:
    record['pretrain'] = json.load(f)
  frames = _jacobian_frames(base.env, base.num_frames, 4, FLAGS.seed + 77)
  overlays = []
  for variant in FLAGS.variants:
    cfg = base.replace(variant=variant)
    logdir = os.path.join(FLAGS.root, variant)
    print(f'[example] {variant}: {FLAGS.total_steps:,} agent steps into {logdir}', flush=True)
    t0 = time.monotonic()
    result = training.train_rl(cfg, logdir, pre_dir if variant != 'joint' else None, print_fn=say)
    episodes = training.load_episodes(logdir)
    with open(os.path.join(logdir, 'grad_norms.json')) as f:
      norms = json.load(f)
    learner = training.restore_learner(cfg, logdir)
    jac = jacobian.value_jacobian(learner.model, frames)
    overlays.append(np.stack([jacobian.overlay(fr, j) for fr, j in zip(frames, jac)]))
    record['runs'].append({
        'variant': variant, 'agent_steps': result.agent_steps, 'wall_s': time.monotonic() - t0,
        'episodes': episodes, 'mean_score': float(np.mean([e['score'] for e in episodes])) if episodes else None,
        'grad_norms_first': norms[0] if norms else None, 'grad_norms_last': norms[-1] if norms else None,
        'probe_r2': training.encoder_ball_probe(cfg, logdir, os.path.join(pre_dir, 'frames'))})
  record['random'] = learning_check.random_play_score(base.env, base.num_frames, episodes=FLAGS.random_episodes,
                                                      seed=FLAGS.seed)
  grid = np.concatenate(overlays, axis=0).astype(np.float32) / 255.0
  images_lib.save_grid(grid, FLAGS.out + '_jacobian.png', rows=len(overlays), value_range=(0.0, 1.0), scale=2)
  recon = os.path.join(pre_dir, 'reconstructions.png')
  if os.path.exists(recon):
    from PIL import Image  # pylint: disable=g-import-not-at-top
    img = Image.open(recon)
    img.crop((0, 0, min(img.size[0], img.size[0] // 2), img.size[1])).save(FLAGS.out + '_recon.png')
  record['wall_s'] = time.monotonic() - start
  _write(record)
  print(f'[example] done in {record["wall_s"] / 60:.1f} min: {FLAGS.out}.md, .json, _recon.png, _jacobian.png',
        flush=True)


def _write(record):
  s = record['settings']
  p = record['pretrain']
  b = p.get('ball', {})
  lines = [
      '# Seed 001 on real ALE Breakout (paper network, CPU budget): R5, R6, R7 and short runs', '',
      f'`python examples/vae_pg_breakout.py` on `{s["env"]}` (whole frame, grey 84x84, frame skip 4, <= 30 no-ops, '
      f'FIRE on reset and after a lost life), the Table 1 VAE and the 64-64 tanh trunk, seed {s["seed"]}. '
      f'Total wall time {record["wall_s"] / 60:.1f} min on 2 shared CPU cores.', '',
      '## R6: the pre-trained VAE and the ball', '',
      f'Pre-training: {s["pretrain_frames"]:,} frames played by the scripted RAM ball tracker (epsilon 0.05; the '
      f'paper\'s "already trained policy" is not available), {s["pretrain_epochs"]} epochs at batch 128, Adam 1e-4 '
      '(paper: 25,000 frames, 100 epochs).', '',
      '| val frames | val NLL | val KL | ball-pixel MSE | whole-frame MSE | ratio | reconstruction at the ball | '
      'mean-image MSE | probe R^2 mu -> ball (x, y) |', '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      f'| {p["val_frames"]} | {p["val_nll"]:.1f} | {p["val_kl"]:.1f} | {b.get("mse_ball", float("nan")):.3f} | '
      f'{b.get("mse_frame", float("nan")):.4f} | '
      f'{b.get("mse_ball", float("nan")) / max(b.get("mse_frame", float("nan")), 1e-12):.0f}x | '
      f'{b.get("recon_at_ball", float("nan")):.2f} (ball {b.get("ball_intensity", float("nan")):.2f}) | '
      f'{p.get("mean_frame_mse", float("nan")):.4f} | {p.get("ball_probe_r2") or float("nan"):.2f} |', '',
      '![reconstructions](vae_pg_breakout_recon.png)', '',
      '## R5 and the short runs', '',
      f'Each variant: {s["total_steps"]:,} agent steps, {s["num_envs"]} envs x {s["t_max"]} steps, 4 minibatches x '
      f'{s["ppo_epochs"]} epochs, Adam 3e-4, c3 = 0 (the paper\'s Tables 2/3 otherwise). Uniformly random play: '
      f'{record["random"]:.2f} (mean raw score of {FLAGS.random_episodes} episodes).', '',
      '| variant | episodes | mean raw score | kappa | ‖d(kappa L_PPO)/dU‖ first -> last | ‖dL_VAE/dU‖ first -> last | '
      'ratio VAE / PPO first -> last | kappa that would equalise (first) | probe R^2 after | wall |',
      '|---|---:|---:|---:|---|---|---|---:|---:|---:|']
  for r in record['runs']:
    g0, g1 = r['grad_norms_first'] or {}, r['grad_norms_last'] or {}
    pair = lambda k: f'{g0.get(k, float("nan")):.3g} -> {g1.get(k, float("nan")):.3g}'
    kappa = 20 if r['variant'] == 'joint' else 1
    lines.append(f'| {r["variant"]} | {len(r["episodes"])} | '
                 f'{r["mean_score"] if r["mean_score"] is not None else float("nan"):.2f} | {kappa} | '
                 f'{pair("grad_u/ppo")} | {pair("grad_u/vae")} | {pair("grad_u/vae_over_ppo")} | '
                 f'{g0.get("grad_u/kappa_needed", float("nan")):.3g} | '
                 f'{r["probe_r2"] if r["probe_r2"] is not None else float("nan"):.2f} | {r["wall_s"] / 60:.1f} min |')
  lines += ['', '## R7: value-Jacobian overlays', '',
            'Rows: ' + ', '.join(r['variant'] for r in record['runs']) + ' (each final policy); |dV/dx| of the '
            'newest frame added to blue where it exceeds its mean (spec A14).', '',
            '![value Jacobian](vae_pg_breakout_jacobian.png)', '']
  with open(FLAGS.out + '.md', 'w') as f:
    f.write('\n'.join(lines) + '\n')
  slim = dict(record, runs=[dict({k: v for k, v in r.items() if k != 'episodes'},
                                 scores=[e['score'] for e in r['episodes']]) for r in record['runs']])
  with open(FLAGS.out + '.json', 'w') as f:
    json.dump(slim, f, indent=1)


if __name__ == '__main__':
  app.run(main)
