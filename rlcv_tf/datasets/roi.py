"""What the bird readers (CUB, NABirds, Birdsnap, the combined Birds set) share: the ROI rule, which the synth_birds
stand-in is cropped with too, and the table of every image with its box and split.

Spec ch5_6 §A5.1 [P, StackGAN convention]: a square of side 1.5 x max(w, h) centred on the bounding box. The
readers hand these windows to the pipeline, which shifts a window that leaves the image back inside it and pads
(repeating border pixels) only where the square is larger than the image (`pipeline.place_window`).
"""

import dataclasses

import numpy as np

from rlcv_tf.datasets import records

ROI_SCALE = 1.5


def bird_roi(bbox: np.ndarray, scale: float = ROI_SCALE) -> np.ndarray:
  """(x, y, w, h) boxes [N, 4] -> square crop windows (y0, x0, side, side) [N, 4], side = scale * max(w, h),
  centred on the box (before the pipeline moves it inside the image)."""
  bbox = np.asarray(bbox, np.float32).reshape(-1, 4)
  x, y, w, h = bbox.T
  side = scale * np.maximum(w, h)
  cy, cx = y + h / 2, x + w / 2
  return np.stack([cy - side / 2, cx - side / 2, side, side], 1).astype(np.float32)


@dataclasses.dataclass
class BirdTable:
  """Every image of a bird data set, before a split is chosen.

  Attributes:
    paths: str [N] absolute image paths.
    labels: int64 [N] class index in 0..num_classes-1.
    bboxes: float32 [N, 4] the bird's box (x, y, w, h) in pixels, (x, y) its top-left corner.
    is_train: bool [N], the data set's own train / test split.
  """
  paths: np.ndarray
  labels: np.ndarray
  bboxes: np.ndarray
  is_train: np.ndarray
  num_classes: int
  display_name: str

  def records(self, split: str) -> records.Records:
    """The images of `split` ('train', or 'val' / 'test': the test split; these sets have no validation split)
    with their bird ROI windows."""
    keep = self.is_train if split == 'train' else ~self.is_train
    boxes = bird_roi(self.bboxes) if len(self.bboxes) else np.zeros((0, 4), np.float32)
    out = records.Records(paths=np.asarray(self.paths, object), labels=np.asarray(self.labels, np.int64),
                          boxes=boxes, num_classes=self.num_classes, display_name=self.display_name)
    return out.select(np.asarray(keep, bool))
