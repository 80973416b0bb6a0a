"""Channel blocks: the time axis of channel-recurrent autoencoding (thesis Sec. 5.3; spec ch5 §0).

A feature map or latent of shape [B, H, W, C] is cut along channels into T equal blocks; block t (0-based) holds
channels [t*C/T, (t+1)*C/T). `split_blocks` flattens every block in (h, w, c) order into one time step of an LSTM
input, [B, T, H*W*C/T]; `merge_blocks` is its exact inverse. (The thesis authors' Torch code flattens in (c, h, w)
order: a fixed permutation inside each block, irrelevant when training from scratch, relevant only to port weights.)
"""

from keras import ops


def check_divisible(channels: int, num_blocks: int):
  if num_blocks < 1 or channels % num_blocks:
    raise ValueError(f'{channels} channels cannot be cut into {num_blocks} equal channel blocks; choose a number '
                     f'of blocks that divides {channels}')


def split_blocks(x, num_blocks: int):
  """[B, H, W, C] -> [B, T, H*W*C/T]; block t holds channels [t*C/T, (t+1)*C/T)."""
  _, h, w, c = x.shape
  check_divisible(c, num_blocks)
  per = c // num_blocks
  x = ops.reshape(x, (-1, h, w, num_blocks, per))
  x = ops.transpose(x, (0, 3, 1, 2, 4))               # [B, T, H, W, C/T]
  return ops.reshape(x, (-1, num_blocks, h * w * per))


def merge_blocks(y, num_blocks: int, height: int, width: int):
  """Inverse of `split_blocks`: [B, T, H*W*C/T] -> [B, H, W, C]."""
  per = y.shape[-1] // (height * width)
  if per * height * width != y.shape[-1] or y.shape[1] != num_blocks:
    raise ValueError(f'cannot merge {tuple(y.shape)} into {num_blocks} blocks of {height}x{width}xC')
  y = ops.reshape(y, (-1, num_blocks, height, width, per))
  y = ops.transpose(y, (0, 2, 3, 1, 4))               # [B, H, W, T, C/T]
  return ops.reshape(y, (-1, height, width, num_blocks * per))


def block_sums(x, num_blocks: int):
  """Sum of x within each channel block, per example: [B, H, W, C] -> [B, T]."""
  _, h, w, c = x.shape
  check_divisible(c, num_blocks)
  x = ops.reshape(x, (-1, h * w, num_blocks, c // num_blocks))
  return ops.sum(x, axis=(1, 3))
