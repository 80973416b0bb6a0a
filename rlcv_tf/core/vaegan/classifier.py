"""The one VGG11 builder of Chapter 5: the in-house inception-score classifier and the Stage-2 perceptual net.

VGG11 configuration "A" (Simonyan & Zisserman, 2015): 64-M-128-M-256-256-M-512-512-M-512-512-M, 'M' = 2x2 max
pooling. Both users of a VGG11 in this package build it here, so a classifier trained for the inception score and
saved with `evaluation.save_classifier` has the same layer names as the feature net Stage 2 expects:

  block{i}_conv{j}   3x3 conv j of block i (i = 1..5)       block{i}_bn{j}     its batch norm (batch_norm=True)
  block{i}_relu{j}   its ReLU                              block{i}_pool      the 2x2 max pooling ending block i
  head 'fc':  flatten, fc1, fc1_dropout, fc2, fc2_dropout, logits   (VGG's classifier, narrowed)
  head 'gap': gap (global average pooling), logits

`block4_pool` is the output of the 4th block, the Stage-2 perceptual feature of spec A2.4 [P]. Pooling uses 'same'
padding, so inputs as small as 28x28 survive the five poolings (for even sizes it equals 'valid' pooling).
"""

from typing import Optional, Sequence

import keras

# VGG11 configuration "A": conv widths at full size, 'M' = 2x2 max pooling.
VGG11_A = (64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M')
HEADS = ('fc', 'gap')


def vgg11(input_shape: Sequence[int], num_classes: Optional[int] = None, width: int = 64, batch_norm: bool = False,
          bn_momentum: float = 0.9, head: str = 'fc', dense_units: Optional[int] = None, dropout: float = 0.5,
          name: str = 'vgg11') -> keras.Model:
  """A functional VGG11-A at width `width`/64 of the original, returning logits (or block5_pool features).

  Args:
    input_shape: (H, W, C).
    num_classes: number of output logits; None ends the model at `block5_pool` (a feature extractor).
    width: width of the first conv (64 in the original VGG11; 16 is the spec's "width/4"); every conv is scaled by
      width / 64 (at least 1 channel).
    batch_norm: batch norm after every conv (VGG11-BN), which makes short training from scratch reliable.
    bn_momentum: Keras BN momentum; 0.9 (not Keras's 0.99) lets the inference statistics catch up within a few
      hundred steps.
    head: 'fc' (flatten, two hidden dense layers with dropout, logits; VGG's own head) or 'gap' (global average
      pooling, logits).
    dense_units: width of the two hidden dense layers of the 'fc' head (4096 in VGG11); default 8 * width.
    dropout: dropout rate after each hidden dense layer of the 'fc' head (0 disables).
    name: the model name.

  Raises:
    ValueError: on an unknown head or a non-positive width.
  """
  if head not in HEADS:
    raise ValueError(f'head: got {head!r}; valid values are {HEADS}')
  if width < 1:
    raise ValueError(f'width: got {width}; valid values are integers >= 1')
  inputs = keras.Input(tuple(input_shape), name='images')
  h = inputs
  block, conv = 1, 0
  for item in VGG11_A:
    if item == 'M':
      h = keras.layers.MaxPooling2D(2, padding='same', name=f'block{block}_pool')(h)
      block, conv = block + 1, 0
      continue
    conv += 1
    h = keras.layers.Conv2D(max(1, item * width // 64), 3, padding='same', use_bias=not batch_norm,
                            name=f'block{block}_conv{conv}')(h)
    if batch_norm:
      h = keras.layers.BatchNormalization(momentum=bn_momentum, name=f'block{block}_bn{conv}')(h)
    h = keras.layers.ReLU(name=f'block{block}_relu{conv}')(h)
  if num_classes:
    if head == 'fc':
      units = dense_units or 8 * width
      h = keras.layers.Flatten(name='flatten')(h)
      for i in (1, 2):
        h = keras.layers.Dense(units, activation='relu', name=f'fc{i}')(h)
        if dropout:
          h = keras.layers.Dropout(dropout, name=f'fc{i}_dropout')(h)
    else:
      h = keras.layers.GlobalAveragePooling2D(name='gap')(h)
    h = keras.layers.Dense(int(num_classes), name='logits')(h)
  return keras.Model(inputs, h, name=name)
