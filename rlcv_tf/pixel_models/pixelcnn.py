"""PixelCNN (seed 004 S4:L177-220, L243-246; architecture [orig] Table 2 of van den Oord et al. 2016, spec §3.3).

S4 says: generation starts from the corner, a CNN over a context region models the dependence on earlier pixels,
training maximises the likelihood with all conditionals in parallel, sampling stays sequential. The layers are from
the paper ([orig]):

  7x7 conv mask A (2h channels)
  -> L residual blocks: ReLU -> 1x1 B (2h -> h) -> ReLU -> 3x3 B (h -> h) -> ReLU -> 1x1 B (h -> 2h), + skip
  -> ReLU -> 1x1 B (`head` units) -> ReLU -> 1x1 B (C * levels) -> reshape [B, H, W, C, levels].

All 1x1 convs are mask B (it matters only for the colour groups). `activation='tanh'` exists for the gradient tests
(spec §7.6: ReLU dead units could give accidental zeros).

Slide erratum (S4:L243-246, spec §8.7): the slides' table seems to list PixelCNN with a "full dependency field". It
has a BLIND SPOT: stacked 3x3 masked convs never reach a wedge above-right of the pixel, e.g. output (r, c) never
depends on input (r-1, c+2) (tests/test_pixel_models_masks.py checks it by gradients). The gated PixelCNN removes it.
"""

import keras

from rlcv_tf.core import tracking
from rlcv_tf.pixel_models import masked_conv


class PixelCNN(keras.Model):
  """PixelCNN on [B, H, W, C] inputs scaled to [-1, 1]; returns logits [B, H, W, C, levels].

  `receptive_rows`: how many rows above a pixel its logits can read (the fast sampler's window)."""

  def __init__(self, image_shape, levels: int = 256, hidden: int = 64, blocks: int = 5, first_kernel: int = 7,
               head: int = 128, activation: str = 'relu', **kwargs):
    super().__init__(**kwargs)
    self.image_shape, self.levels = tuple(int(s) for s in image_shape), int(levels)
    self.num_classes = 0
    c = self.image_shape[-1]
    self.act = keras.activations.get(activation)
    conv = lambda f, k, t, name: masked_conv.MaskedConv2D(f, k, t, color_groups=c, name=name)
    width, half = 2 * hidden, hidden  # `hidden` and `head` must be multiples of C (the colour groups)
    self.first = conv(width, first_kernel, 'A', 'in_A')
    self.blocks = [(conv(half, 1, 'B', f'b{i}_1x1a'), conv(half, 3, 'B', f'b{i}_3x3'),
                    conv(width, 1, 'B', f'b{i}_1x1b')) for i in range(blocks)]
    tracking.track_sublayers(self, 'block', self.blocks)   # tf.train.Checkpoint does not see Keras lists
    self.head1 = conv(head, 1, 'B', 'head1')
    self.head2 = conv(c * self.levels, 1, 'B', 'logits')
    self.receptive_rows = first_kernel // 2 + blocks

  def call(self, x, condition=None):
    del condition  # unconditional
    h = self.first(x)
    for a, b, d in self.blocks:
      h = h + d(self.act(b(self.act(a(self.act(h))))))
    y = self.head2(self.act(self.head1(self.act(h))))
    return masked_conv.reshape_logits(y, self.image_shape[-1], self.levels)
