r"""Diagnosis runs for the Chapter 5 default (docs/crvae_default_diagnosis.md): a preset with overrides, N steps.

Trains one Stage-1 model on synth_birds with the given CrVAEConfig overrides, then prints (and appends to --out) the
learning check's held-out numbers (rlcv_tf/crvae/learning_check.py) and the last training metrics:

  python examples/crvae_default_diagnosis.py --tag=e0_default --steps=400
  python examples/crvae_default_diagnosis.py --tag=e2_vae_only --steps=400 \
      --overrides='{"beta": 0.0, "kappa": 0.0, "use_mi": false}'
  python examples/crvae_default_diagnosis.py --tag=e6_plainvae --steps=300 \
      --overrides='{"model": "vae", "alpha1": 0.0003, "alpha2": 0.0002, "beta": 0.0, "kappa": 0.0, "use_mi": false}'
"""

import json
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags  # pylint: disable=g-import-not-at-top

from rlcv_tf.crvae import presets  # pylint: disable=g-import-not-at-top
from rlcv_tf.crvae import training  # pylint: disable=g-import-not-at-top
from rlcv_tf.crvae.run_config import RunConfig  # pylint: disable=g-import-not-at-top

flags.DEFINE_string('preset', 'small32_synthbirds_crvaegan', 'Preset to start from.')
flags.DEFINE_string('overrides', '{}', 'JSON object of CrVAEConfig fields to change.')
flags.DEFINE_integer('steps', 400, 'Optimizer steps.')
flags.DEFINE_string('tag', 'run', 'Name of the run (its logdir under --logdir_root).')
flags.DEFINE_string('logdir_root', 'runs/crvae_diagnosis', 'Where the runs go.')
flags.DEFINE_string('out', 'runs/crvae_diagnosis/results.jsonl', 'JSON lines appended here.')
FLAGS = flags.FLAGS


def main(_):
  try:
    overrides = json.loads(FLAGS.overrides)
    cfg = presets.get_preset(FLAGS.preset, **overrides)
  except ValueError as e:
    raise app.UsageError(f'--overrides={FLAGS.overrides}: {e}') from None
  run = RunConfig(dataset='synth_birds', steps=FLAGS.steps, log_interval_s=60.0,
                  image_every=max(FLAGS.steps // 2, 1))
  result = training.train(cfg, run, os.path.join(FLAGS.logdir_root, FLAGS.tag), print_fn=print)
  row = dict(tag=FLAGS.tag, preset=FLAGS.preset, overrides=overrides, steps=result.steps,
             evaluation=result.evaluation,
             last={k: v for k, v in result.metrics.items() if not k.startswith('loss/kl_block')})
  print(json.dumps(row))
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
  with open(FLAGS.out, 'a') as f:
    f.write(json.dumps(row) + '\n')


if __name__ == '__main__':
  app.run(main)
