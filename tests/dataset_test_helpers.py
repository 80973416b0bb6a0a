"""Helpers shared by the data-set tests (imported as `dataset_test_helpers`: pytest puts tests/ on sys.path)."""

import io
import os

import numpy as np
from PIL import Image

from rlcv_tf.datasets import celeba


def png(array):
  buf = io.BytesIO()
  Image.fromarray(np.asarray(array, np.uint8)).save(buf, format='PNG')
  return buf.getvalue()


def jpeg(array, quality=90):
  buf = io.BytesIO()
  Image.fromarray(np.asarray(array, np.uint8)).save(buf, format='JPEG', quality=quality)
  return buf.getvalue()


def write_celeba(root, n, splits=None, corrupt=(), truncated=()):
  """A CelebA-layout folder with n images: PNG bytes, red outside the face ROI and green inside."""
  os.makedirs(os.path.join(root, 'img_align_celeba'), exist_ok=True)
  rng = np.random.default_rng(0)
  signs = rng.choice([-1, 1], size=(n, 40))
  splits = splits if splits is not None else [0] * n
  image = np.zeros((218, 178, 3), np.uint8)
  image[..., 0] = 255
  image[40:188, 15:163] = (0, 255, 0)
  names = ' '.join(celeba.ATTRIBUTE_NAMES)
  with open(os.path.join(root, 'list_attr_celeba.txt'), 'w') as f:
    f.write(f'{n}\n{names}\n')
    for i in range(n):
      f.write(f'{i + 1:06d}.jpg ' + ' '.join(f'{v:2d}' for v in signs[i]) + '\n')
  with open(os.path.join(root, 'list_eval_partition.txt'), 'w') as f:
    f.writelines(f'{i + 1:06d}.jpg {splits[i]}\n' for i in range(n))
  for i in range(n):
    path = os.path.join(root, 'img_align_celeba', f'{i + 1:06d}.jpg')
    if i in corrupt:
      data = b'this is not an image' * 10
    elif i in truncated:
      data = jpeg(rng.integers(0, 255, (218, 178, 3)))[:2000]  # valid header, cut short
    else:
      data = png(image)
    with open(path, 'wb') as f:
      f.write(data)
  return signs
