"""The default Chapter 5 run learns something visible (issue 9 §1): a short run of the launcher's default preset.

`python -m launchers.crvae` trains `small32_synthbirds_crvaegan` for 1,500 steps (about 20 minutes on 2 cores) and
ends with the learning check (crvae/learning_check.py): held-out reconstruction error <= 0.6x the mean image's,
posterior KL >= 20 nats, prior samples spread >= 0.3x the data's. The full run's numbers are in
docs/crvae_default_diagnosis.md. This test runs the same preset for STEPS steps, the first part of the default, and
holds it to a looser reconstruction threshold that the early part of a learning run already meets: measured 0.80
(KL 207.5 nats) at 400 steps, seed 96.

It can fail: with the thesis loss balance at small32 (`presets.rebalance(cfg, 'thesis')`, the preset before the fix)
a 400-step run gives a held-out ratio of 1.31 (docs/crvae_default_diagnosis.md, run e10).

The sample spread is not tested here: it does not separate the two at 400 steps (0.11 now, 0.13 before), and the
full default still falls short of the check's 0.3 (0.21; the diagnosis document says what is open).
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
            f"spread {ev['eval/sample_spread']:.3f}")
  assert ev['eval/reconstruction_ratio'] <= MAX_RATIO, report
  assert ev['eval/kl_nats'] >= MIN_KL_NATS, report
  assert any('learning check' in line for line in lines)
