"""rlcv_tf.video.viz: the Chapter 7 picture sheets (stage 1, g_dec(S), the swap, retrieval montages, strips).

Each sheet's size and dtype follow from the layout (1-pixel white padding, `SEPARATOR` between groups), and its cells
are read back at offsets computed here by hand: input cells must equal to_uint8 of the inputs in the model's range
((0, 1) for the sigmoid MMNIST model, (-1, 1) for the tanh Weizmann model, so a wrong range fails), model cells
must equal to_uint8 of the models' outputs computed frame by frame here. Saved PNG / GIF files read back.
"""

import keras
import numpy as np
import pytest
from PIL import Image

from rlcv_tf.core import images
from rlcv_tf.video import models as models_lib
from rlcv_tf.video import presets
from rlcv_tf.video import viz

SIZE = 32          # tiny presets' frames
CELL = SIZE + 1    # a frame plus its padding


@pytest.fixture(scope='module', params=['mmnist', 'weizmann'])
def setup(request):
  config = presets.get_preset(request.param, 'tiny')
  keras.utils.set_random_seed(1)
  models = models_lib.build_models(config)
  lo, hi = (0.0, 1.0) if config.output_activation == 'sigmoid' else (-1.0, 1.0)
  rng = np.random.default_rng(0)
  videos = rng.uniform(lo, hi, size=(2,) + config.video_shape).astype(np.float32)
  return config, models, videos, (lo, hi)


def _cell(sheet, row, col, y0=0, x0=0):
  """The frame at grid position (row, col) of a make_grid sheet starting at (y0, x0)."""
  y, x = y0 + 1 + row * CELL, x0 + 1 + col * CELL
  return sheet[y:y + SIZE, x:x + SIZE]


def _rgb(frame_uint8):
  return np.repeat(frame_uint8, 3, axis=-1) if frame_uint8.shape[-1] == 1 else frame_uint8


def _expected(frame, vrange):
  return _rgb(images.to_uint8(np.asarray(frame), vrange))


def _assert_cell(sheet, row, col, frame, vrange, y0=0, x0=0):
  np.testing.assert_array_equal(_cell(sheet, row, col, y0, x0), _expected(frame, vrange))


def test_pixel_range_follows_the_output_activation(setup):
  config, models, _, vrange = setup
  assert viz.pixel_range(config) == vrange
  assert viz.pixel_range(models['frame_autoencoder']) == vrange
  assert viz.pixel_range('tanh') == (-1.0, 1.0)
  with pytest.raises(ValueError, match='output_activation'):
    viz.pixel_range('relu')


def test_stage1_sheet(setup):
  config, models, videos, vrange = setup
  ae, stn = models['frame_autoencoder'], models['block_stn']
  source, target = videos[:, 0], videos[:, 5]
  sheet = viz.stage1_sheet(ae, stn, source, target)
  assert sheet.dtype == np.uint8 and sheet.shape == (2 * CELL + 1, 5 * CELL + 1, 3)
  s_i = ae.encode(source, training=False)
  s_j = ae.encode(target, training=False)
  warped = stn.warp_blocks(s_i, stn.localise(s_i, s_j))
  for n in range(2):
    _assert_cell(sheet, n, 0, source[n], vrange)
    _assert_cell(sheet, n, 2, target[n], vrange)
    for col, latent in ((1, s_i), (3, warped), (4, s_j)):
      _assert_cell(sheet, n, col, ae.decode(latent[n:n + 1], training=False)[0], vrange)
  with pytest.raises(ValueError, match='target'):
    viz.stage1_sheet(ae, stn, source, target[:1])


def test_statics_sheet(setup):
  config, models, videos, vrange = setup
  t = config.num_frames
  sheet = viz.statics_sheet(models['video_encoder'], models['frame_autoencoder'], videos)
  assert sheet.dtype == np.uint8 and sheet.shape == (2 * CELL + 1, (t + 1) * CELL + 1, 3)
  statics, _ = models['video_encoder'](videos, training=False)
  for n in range(2):
    for i in range(t):
      _assert_cell(sheet, n, i, videos[n, i], vrange)
    _assert_cell(sheet, n, t, models['frame_autoencoder'].decode(statics[n:n + 1], training=False)[0], vrange)


def test_swap_sheet_plays_b_with_the_statics_of_a(setup):
  config, models, videos, vrange = setup
  enc_v, dyn = models['video_encoder'], models['frame_dynamics']
  t = config.num_frames
  video_a, video_b = videos, videos[::-1].copy()
  sheet = viz.swap_sheet(enc_v, dyn, video_a, video_b)
  pair_height = 3 * CELL + 1
  assert sheet.dtype == np.uint8 and sheet.shape == (2 * pair_height + viz.SEPARATOR, t * CELL + 1, 3)
  s_a, _ = enc_v(video_a, training=False)
  s_b, _ = enc_v(video_b, training=False)
  for n in range(2):
    y0 = n * (pair_height + viz.SEPARATOR)
    for i in range(t):
      _assert_cell(sheet, 0, i, video_a[n, i], vrange, y0)
      _assert_cell(sheet, 1, i, video_b[n, i], vrange, y0)
      p_b = dyn.encode(video_b[n:n + 1, i], s_b[n:n + 1], training=False)
      _assert_cell(sheet, 2, i, dyn.decode(p_b, s_a[n:n + 1], training=False)[0], vrange, y0)
  # The swap row is not A's own reconstruction (B's codes were used).
  p_a = dyn.encode(video_a[0:1, 0], s_a[0:1], training=False)
  own = _expected(dyn.decode(p_a, s_a[0:1], training=False)[0], vrange)
  assert np.any(_cell(sheet, 2, 0) != own)


def test_retrieval_montage_layout_and_pixels(setup):
  config, _, videos, vrange = setup
  t = config.num_frames
  rng = np.random.default_rng(1)
  found = {name: rng.uniform(*vrange, size=videos.shape).astype(np.float32) for name in ('P', 'S')}
  sheet = viz.retrieval_montage(videos, found, value_range=vrange, frames_per_clip=3, header=False)
  strip = 3 * CELL + 1
  row_height = SIZE + 2
  assert sheet.dtype == np.uint8
  assert sheet.shape == (2 * row_height + 1, 3 * strip + 2 * viz.SEPARATOR, 3)
  frames = [0, 4, 7]          # round(linspace(0, 7, 3))
  for q in range(2):
    for clip_index, clips in enumerate([videos, found['P'], found['S']]):
      x0 = clip_index * (strip + viz.SEPARATOR)
      for k, frame in enumerate(frames):
        _assert_cell(sheet, 0, k, clips[q, frame], vrange, y0=q * (row_height + 1), x0=x0)
  # With the header and captions: the clips move right and down, the pixels stay.
  labelled = viz.retrieval_montage(videos, found, labels=['3+5', '0+9'], value_range=vrange, frames_per_clip=3)
  extra_h, extra_w = labelled.shape[0] - sheet.shape[0], labelled.shape[1] - sheet.shape[1]
  assert extra_h > 0 and extra_w > 0
  np.testing.assert_array_equal(labelled[extra_h:, extra_w:], sheet)
  assert np.any(labelled[:extra_h] < 128)    # some text was written
  with pytest.raises(ValueError, match='labels'):
    viz.retrieval_montage(videos, found, labels=['one'], value_range=vrange)
  with pytest.raises(ValueError, match='features'):
    viz.retrieval_montage(videos, {}, value_range=vrange)
  with pytest.raises(ValueError, match="'P'"):
    viz.retrieval_montage(videos, {'P': found['P'][:, :t - 1]}, value_range=vrange)


def test_video_strip_and_saved_files(setup, tmp_path):
  config, _, videos, vrange = setup
  strip = viz.video_strip(videos[0], vrange)
  assert strip.dtype == np.uint8 and strip.shape == (CELL + 1, config.num_frames * CELL + 1, 3)
  for i in range(config.num_frames):
    _assert_cell(strip, 0, i, videos[0, i], vrange)
  path = viz.save(strip, str(tmp_path / 'strip.png'), scale=2)
  back = np.asarray(Image.open(path).convert('RGB'))
  np.testing.assert_array_equal(back, np.repeat(np.repeat(strip, 2, axis=0), 2, axis=1))
  gif = viz.save_gif(videos[0], str(tmp_path / 'clip.gif'), vrange)
  with Image.open(gif) as im:
    assert im.n_frames == config.num_frames and im.size == (SIZE, SIZE)
  with pytest.raises(ValueError, match='uint8'):
    viz.save(strip.astype(np.float32), str(tmp_path / 'bad.png'))
