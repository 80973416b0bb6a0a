"""The default Chapter 5 run learns something visible (issue 9 §1): a short run of the launcher's default preset.

`python -m launchers.crvae` trains `small32_synthbirds_crvaegan` for 1,500 steps (about 12-20 minutes on 2 cores)
and ends with the learning check (crvae/learning_check.py): held-out reconstruction error <= 0.6x the mean image's,
posterior KL >= 20 nats, and samples of the ex-post Gaussian that vary (spread >= 0.3) with a colour mix near the
data's (distance <= 0.3). The full run's numbers are in docs/crvae_default_diagnosis.md (passed: 0.29, 141.5 nats,
0.83, 0.24). This test runs the same preset for STEPS steps, the first part of the default, and holds it to a
looser reconstruction threshold that the early part of a learning run already meets: measured 0.79-0.80 (KL
93-208 nats) at 400 steps, seed 96.

It can fail: with the thesis loss balance at small32 (`presets.rebalance(cfg, 'thesis')`, the preset before the fix)
a 400-step run gives a held-out ratio of 1.31 (docs/crvae_default_diagnosis.md, run e10).

The samples are not tested here: at 400 steps neither measure separates the default from the failing runs (ex-post
spread 0.44 and colour distance 0.61 now; the thesis balance 0.59 / 0.71, a collapsed run 0.46 / 0.59). The line
printed with -s gives them.
"""

import pytest

from rlcv_tf.crvae import presets
from rlcv_tf.crvae import training
from rlcv_tf.crvae.run_config import RunConfig

DEFAULT_PRESET = 'small32_synthbirds_crvaegan'     # what `python -m launchers.crvae` trains
STEPS = 400
MAX_RATIO = 0.9           # the full default must reach 0.6; the mean image is 1.0; the thesis balance gives 1.31
MIN_KL_NATS = 20.0


@pytest.mark.slow
def test_the_default_preset_learns_in_a_short_run(tmp_path):
  cfg = presets.get_preset(DEFAULT_PRESET)
  assert cfg.loss_balance == 'cpu_short'
  run = RunConfig(dataset='synth_birds', steps=STEPS, image_every=STEPS, log_interval_s=600.0,
                  checkpoint_interval_s=1e9, num_eval_images=256)
  lines = []
  result = training.train(cfg, run, str(tmp_path), print_fn=lines.append)
  ev = result.evaluation
  report = (f"ratio {ev['eval/reconstruction_ratio']:.3f}, KL {ev['eval/kl_nats']:.1f} nats, "
            f"spread {ev['eval/sample_spread']:.3f}, ex-post spread {ev['eval/expost_spread']:.3f}, "
            f"ex-post colour distance {ev['eval/expost_colour_distance']:.3f}")
  print(f'[{STEPS} steps of {DEFAULT_PRESET}] {report}')
  assert ev['eval/reconstruction_ratio'] <= MAX_RATIO, report
  assert ev['eval/kl_nats'] >= MIN_KL_NATS, report
  assert any('learning check' in line for line in lines)
