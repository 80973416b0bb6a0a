"""Pictures of the Chapter 7 models: NumPy uint8 sheets written as PNG (and to TensorBoard by the trainers).

The qualitative results of the thesis (7.5; spec ch7 §5 (e)): g_dec(S) shows what the statics hold (a clean
background / the digits without their motion), the swap f_dec(p_t^B, S^A) for t = 1..T plays video B's motion with
video A's content, and retrieval montages put a query clip beside the top-1 clip of each feature. The stage-1 sheet
shows the transformation module at work (T(s_i, s_j) decoded against x_j).

Every sheet is an [H, W, 3] uint8 array built with `core.images` (white 1-pixel padding between frames). Pixel
values map to uint8 by the model's range, never per image: (0, 1) for sigmoid configs (MMNIST) and (-1, 1) for tanh
configs (Weizmann, RAVDESS), from `config.output_activation` (`pixel_range`). Models run with training=False.

Layouts (frames in a row are 1 pixel apart, rows of one sheet too; groups are `SEPARATOR` pixels apart):
  stage1_sheet   one row per pair, 5 columns: x_i | g_dec(s_i) | x_j | g_dec(T(s_i, s_j)) | g_dec(s_j).
                 Column 2 is also the identity warp's prediction of x_j (stn.warp with the identity theta reproduces
                 s_i exactly), the baseline T must beat; column 5 is the best a warp of s_i could reach [proposal:
                 the issue asked for g_dec(s_i) twice].
  statics_sheet  one row per video: its T frames, then g_dec(S).
  swap_sheet     per pair, three rows: A's frames, B's frames, f_dec(p_t^B, S^A) with p_t^B = f_enc(x_t^B, S^B).
  retrieval_montage  a header of names, then one row per query: the query clip, then the top-1 clip of each feature
                 (`frames_per_clip` evenly spaced frames each), clips `SEPARATOR` pixels apart; optional per-query
                 captions in a left margin.
  video_strip    a video's frames in one row.
"""

from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from rlcv_tf.core import images

SEPARATOR = 4          # pixels between groups (clips of a montage, pairs of a swap sheet)
STAGE1_COLUMNS = ('x_i', 'g_dec(s_i)', 'x_j', 'g_dec(T(s_i, s_j))', 'g_dec(s_j)')
_TEXT_HEIGHT = 12


def pixel_range(config_or_activation) -> Tuple[float, float]:
  """(0, 1) for 'sigmoid', (-1, 1) for 'tanh'; takes a VideoConfig, a model carrying one (`.config`) or the name."""
  activation = config_or_activation
  if hasattr(activation, 'config') and hasattr(activation.config, 'output_activation'):
    activation = activation.config
  activation = getattr(activation, 'output_activation', activation)
  if activation == 'sigmoid':
    return (0.0, 1.0)
  if activation == 'tanh':
    return (-1.0, 1.0)
  raise ValueError(f'output_activation: got {activation!r}; valid values are sigmoid, tanh')


def _array(x, rank: int, what: str) -> np.ndarray:
  x = np.asarray(x, dtype=np.float32)
  if x.ndim != rank or x.shape[-1] not in (1, 3):
    shape = ('[N, T, H, W, 1 or 3]' if rank == 5 else '[T, H, W, 1 or 3]' if rank == 4 else f'rank {rank}')
    raise ValueError(f'{what}: expected {shape}, got shape {x.shape}')
  return x


def _same_shape(a: np.ndarray, b: np.ndarray, what_a: str, what_b: str) -> None:
  if a.shape != b.shape:
    raise ValueError(f'{what_b}: shape {b.shape} differs from {what_a} {a.shape}; pass clips of the same shape')


def _numpy(x) -> np.ndarray:
  return np.asarray(x.numpy() if hasattr(x, 'numpy') else x, dtype=np.float32)


def video_strip(video, value_range: Tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
  """[T, H, W, C] -> one uint8 row [H + 2, T (W + 1) + 1, 3]."""
  video = _array(video, 4, 'video')
  return images.make_grid(video, rows=1, cols=video.shape[0], value_range=value_range)


def stage1_sheet(autoencoder, stn, source, target) -> np.ndarray:
  """Rows x_i | g_dec(s_i) | x_j | g_dec(T(s_i, s_j)) | g_dec(s_j) (module docstring) for frame pairs
  source = x_i [N, H, W, C], target = x_j [N, H, W, C]; `autoencoder` a models.FrameAutoencoder, `stn` a BlockSTN."""
  source = _array(source, 4, 'source')
  target = _array(target, 4, 'target')
  _same_shape(source, target, 'source', 'target')
  s_i = autoencoder.encode(source, training=False)
  s_j = autoencoder.encode(target, training=False)
  warped, _ = stn(s_i, s_j)
  columns = [source, _numpy(autoencoder.decode(s_i, training=False)), target,
             _numpy(autoencoder.decode(warped, training=False)), _numpy(autoencoder.decode(s_j, training=False))]
  grid = np.stack(columns, axis=1).reshape((-1,) + source.shape[1:])
  return images.make_grid(grid, rows=source.shape[0], cols=len(columns), value_range=pixel_range(autoencoder))


def statics_sheet(video_encoder, autoencoder, videos) -> np.ndarray:
  """One row per video of [N, T, H, W, C]: its T frames, then g_dec(S) of (S, P) = Enc_v(video)."""
  videos = _array(videos, 5, 'videos')
  statics, _ = video_encoder(videos, training=False)
  pictures = _numpy(autoencoder.decode(statics, training=False))
  n, t = videos.shape[:2]
  grid = np.concatenate([videos, pictures[:, np.newaxis]], axis=1).reshape((-1,) + videos.shape[2:])
  return images.make_grid(grid, rows=n, cols=t + 1, value_range=pixel_range(autoencoder))


def swap_frames(video_encoder, frame_dynamics, video_a, video_b) -> np.ndarray:
  """f_dec(p_t^B, S^A) for t = 1..T: [N, T, H, W, C], B's motion with A's statics (p^B is encoded under S^B)."""
  video_a = _array(video_a, 5, 'video_a')
  video_b = _array(video_b, 5, 'video_b')
  _same_shape(video_a, video_b, 'video_a', 'video_b')
  statics_a, _ = video_encoder(video_a, training=False)
  statics_b, _ = video_encoder(video_b, training=False)
  p_b = frame_dynamics.encode_video(video_b, statics_b, training=False)
  return _numpy(frame_dynamics.decode_video(p_b, statics_a, training=False))


def swap_sheet(video_encoder, frame_dynamics, video_a, video_b) -> np.ndarray:
  """Per pair (video_a[n], video_b[n]) three rows: A's frames, B's frames, the swap f_dec(p_t^B, S^A); pairs are
  `SEPARATOR` pixels apart."""
  swapped = swap_frames(video_encoder, frame_dynamics, video_a, video_b)
  video_a, video_b = _array(video_a, 5, 'video_a'), _array(video_b, 5, 'video_b')
  vrange = pixel_range(frame_dynamics)
  t = video_a.shape[1]
  sheets = []
  for a, b, s in zip(video_a, video_b, swapped):
    sheets.append(images.make_grid(np.concatenate([a, b, s], axis=0), rows=3, cols=t, value_range=vrange))
  return images.stack_rows(sheets, pad=SEPARATOR)


def _frame_indices(num_frames: int, frames_per_clip: int) -> np.ndarray:
  k = min(int(frames_per_clip), num_frames)
  if k < 1:
    raise ValueError(f'frames_per_clip: got {frames_per_clip}; valid values are integers >= 1')
  return np.round(np.linspace(0, num_frames - 1, k)).astype(int)


def _text_band(texts: Sequence[str], widths: Sequence[int], height: int = _TEXT_HEIGHT) -> np.ndarray:
  """A white band with each text written at the left of its column (PIL's default bitmap font, black)."""
  from PIL import Image, ImageDraw  # pylint: disable=g-import-not-at-top
  band = Image.new('RGB', (int(sum(widths)), height), (255, 255, 255))
  draw = ImageDraw.Draw(band)
  x = 0
  for text, width in zip(texts, widths):
    draw.text((x + 2, 0), str(text), fill=(0, 0, 0))
    x += width
  return np.asarray(band, dtype=np.uint8)


def retrieval_montage(query_videos, retrieved_videos_by_feature: Dict[str, object],
                      labels: Optional[Sequence[str]] = None, value_range: Tuple[float, float] = (0.0, 1.0),
                      frames_per_clip: int = 4, header: bool = True) -> np.ndarray:
  """Rows per query: the query clip, then each feature's top-1 clip (module docstring).

  Args:
    query_videos: [Q, T, H, W, C].
    retrieved_videos_by_feature: feature name -> [Q, T, H, W, C], its top-1 clip for every query (in order).
    labels: optional caption per query (e.g. its digit pair), written in a left margin.
    value_range: the pixel range of the clips ((0, 1) MMNIST, (-1, 1) Weizmann / RAVDESS; `pixel_range(config)`).
    frames_per_clip: evenly spaced frames shown per clip (first and last included).
    header: a band with 'query' and the feature names above the columns.
  """
  queries = _array(query_videos, 5, 'query_videos')
  if not retrieved_videos_by_feature:
    raise ValueError('retrieved_videos_by_feature: got no features; pass at least one name -> videos')
  retrieved = {}
  for name, videos in retrieved_videos_by_feature.items():
    retrieved[name] = _array(videos, 5, f'retrieved_videos_by_feature[{name!r}]')
    _same_shape(queries, retrieved[name], 'query_videos', f'retrieved_videos_by_feature[{name!r}]')
  if labels is not None and len(labels) != len(queries):
    raise ValueError(f'labels: got {len(labels)} for {len(queries)} queries; pass one caption per query or None')
  index = _frame_indices(queries.shape[1], frames_per_clip)
  gap = np.full((queries.shape[2] + 2, SEPARATOR, 3), 255, np.uint8)
  rows = []
  for q in range(len(queries)):
    parts = []
    for clip in [queries[q]] + [videos[q] for videos in retrieved.values()]:
      parts.extend([video_strip(clip[index], value_range), gap])
    rows.append(np.concatenate(parts[:-1], axis=1))
  strip_width = len(index) * (queries.shape[3] + 1) + 1       # video_strip's width
  if labels is not None:
    margin = max(_TEXT_HEIGHT, 7 * max(len(str(label)) for label in labels) + 4)
    rows = [np.concatenate([_text_band([label], [margin], row.shape[0]), row], axis=1)
            for label, row in zip(labels, rows)]
  else:
    margin = 0
  sheet = images.stack_rows(rows, pad=1)
  if header:
    names = (['', 'query'] if margin else ['query']) + list(retrieved)
    widths = ([margin] if margin else []) + [strip_width] + [strip_width + SEPARATOR] * len(retrieved)
    widths[-1] = sheet.shape[1] - sum(widths[:-1])
    sheet = np.concatenate([_text_band(names, widths), sheet], axis=0)
  return sheet


def save(image: np.ndarray, path: str, scale: int = 1) -> str:
  """Writes a sheet (uint8 [H, W, 3]) as PNG at `path`, nearest-neighbour upscaled by `scale`; returns `path`."""
  image = np.asarray(image)
  if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
    raise ValueError(f'image: expected uint8 [H, W, 3] (a sheet of this module), got {image.dtype} {image.shape}')
  return images.save_png(image, path, scale=scale)


def save_gif(video, path: str, value_range: Tuple[float, float] = (0.0, 1.0), frame_ms: int = 125,
             scale: int = 1) -> str:
  """Writes a video [T, H, W, C] as a looping GIF (`frame_ms` per frame); returns `path`."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  video = images.to_uint8(_array(video, 4, 'video'), value_range)
  if video.shape[-1] == 1:
    video = np.repeat(video, 3, axis=-1)
  if scale > 1:
    video = np.repeat(np.repeat(video, scale, axis=1), scale, axis=2)
  frames = [Image.fromarray(frame) for frame in video]
  frames[0].save(path, save_all=True, append_images=frames[1:], duration=int(frame_ms), loop=0)
  return path
