"""MIG and the DSRL symbol accuracy against cases whose answers are known by hand."""

import itertools

import numpy as np
import pytest

from rlcv_tf.datasets import dsprites
from rlcv_tf.fcvae import disentanglement as dis


def _factor_grid():
  """Every combination of 3 shapes x 6 scales x 10 orientations x 8 x 8 positions (plus the constant colour)."""
  combos = np.array(list(itertools.product([0], range(3), range(6), range(10), range(8), range(8))))
  return combos


def test_mutual_information_and_entropy_by_hand():
  a = np.array([0, 0, 1, 1])
  assert dis.entropy(a) == pytest.approx(np.log(2))
  assert dis.mutual_information(a, a) == pytest.approx(np.log(2))
  assert dis.mutual_information(a, np.array([0, 1, 0, 1])) == pytest.approx(0.0, abs=1e-12)
  # p(a, b): (0,0) 1/2, (1,0) 1/4, (1,1) 1/4 -> I = H(b) - H(b|a) = H(3/4) - 1/2 * log 2.
  a, b = np.array([0, 0, 1, 1]), np.array([0, 0, 0, 1])
  h = -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
  assert dis.mutual_information(a, b) == pytest.approx(h - 0.5 * np.log(2))


def test_mig_is_one_for_the_factors_themselves():
  factors = _factor_grid()
  codes = factors[:, 1:].astype(np.float64) + 0.1        # the five varying factors as latents, in another order
  codes = codes[:, ::-1]
  result = dis.mig(codes, factors, num_bins=20, factor_names=dsprites.LATENT_NAMES)
  assert result['factors'] == dsprites.LATENT_NAMES[1:]  # colour is constant: left out
  assert result['mig'] == pytest.approx(1.0, abs=1e-9)
  # Rotating two factors into two mixed units (posY + posX, posY - posX) closes both of their gaps.
  mixed = codes.copy()
  mixed[:, 0], mixed[:, 1] = codes[:, 0] + codes[:, 1], codes[:, 0] - codes[:, 1]
  result = dis.mig(mixed, factors)
  assert result['per_factor']['factor_5'] < 0.2 and result['per_factor']['factor_4'] < 0.2
  assert result['mig'] < 0.7


def test_mig_is_about_zero_for_noise():
  factors = _factor_grid()
  noise = np.random.default_rng(0).normal(size=(len(factors), 10))
  assert dis.mig(noise, factors)['mig'] < 0.02


def test_hungarian_accuracy_on_a_hand_example():
  true = np.array([1, 1, 1, 2, 2, 0, 0, 2])
  pred = np.array([5, 5, 7, 7, 7, 9, 9, 5])             # best matching: 5->1, 7->2, 9->0 : 6 of 8 right
  acc, mapping = dis.hungarian_accuracy(true, pred)
  assert acc == pytest.approx(6 / 8) and mapping == {5: 1, 7: 2, 9: 0}
  # Pinning 9 -> 2 (0 right) leaves labels 1, 0 for clusters 5, 7: 5 -> 1 (2 right), 7 -> 0 (0) beats the swap (1).
  acc, mapping = dis.hungarian_accuracy(true, pred, fixed={9: 2})
  assert acc == pytest.approx(2 / 8) and mapping == {9: 2, 5: 1, 7: 0}
  # More clusters than labels: the extra cluster counts as wrong.
  acc, _ = dis.hungarian_accuracy(np.array([0, 0, 1, 1]), np.array([0, 1, 2, 2]))
  assert acc == pytest.approx(3 / 4)


def _perfect_maps(cells, size=21, k=2, swap=False):
  """Latent maps whose filter f is 3 in the cells of type f + 1 (type 2 on filter 0 when `swap`), 0 elsewhere."""
  mu = np.zeros((len(cells), size, size, k))
  parts = np.array_split(np.arange(size), 2)
  for n, cell in enumerate(cells):
    for r in range(2):
      for c in range(2):
        if cell[r, c]:
          f = (2 - cell[r, c]) if swap else (cell[r, c] - 1)
          mu[n, parts[r][0]:parts[r][-1] + 1, parts[c][0]:parts[c][-1] + 1, f] = 3.0
  return mu


def test_symbol_accuracy_of_a_perfect_and_a_useless_latent():
  cells = dsprites.dsrl_world(50, seed=0)['cells']
  for swap in (False, True):                              # filters carry no names: either order is perfect
    result = dis.symbol_accuracy(_perfect_maps(cells, swap=swap), cells)
    assert result['accuracy'] == 1.0 and result['scenes_all_right'] == 1.0 and result['type_accuracy'] == 1.0
    assert result['mapping'] == ({0: 0, 1: 1, 2: 2} if not swap else {0: 0, 1: 2, 2: 1})
  # Occupancy right but one filter for both types: at most the larger type plus the empties.
  maps = _perfect_maps(cells)
  both = maps.max(axis=-1, keepdims=True).repeat(2, axis=-1)
  both[..., 1] = 0
  result = dis.symbol_accuracy(both, cells)
  counts = np.bincount(cells.ravel(), minlength=3)
  assert result['occupancy_accuracy'] == 1.0
  assert result['accuracy'] == pytest.approx((counts[0] + counts[1:].max()) / cells.size)
  assert result['type_accuracy'] == pytest.approx(counts[1:].max() / counts[1:].sum())   # about 1/2: types not told


def test_cell_scores_and_otsu():
  mu = np.zeros((1, 4, 4, 1))
  mu[0, :2, 2:, 0] = -2.0                                 # top-right cell
  np.testing.assert_allclose(dis.cell_scores(mu)[0, :, :, 0], [[0, 2], [0, 0]])
  values = np.concatenate([np.full(10, 0.1), np.full(5, 2.0)])
  t = dis.otsu_threshold(values)
  assert 0.1 < t <= 2.0
