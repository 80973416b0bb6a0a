"""Video files on disk: decode (PyAV), encode, and list a `<root>/<class>/*.{avi,mp4}` tree (issue 13 §1).

The thesis's Chapter 7 data are videos: Weizmann's AVIs (180x144, T:L6652-6655) and RAVDESS's MP4s (T:L6658-6666).
This module is the one place that touches video containers; the readers (`weizmann.py`, `ravdess.py`) and the
prepare step build on it.

Decoder: PyAV (`av>=18,<19`, whose cp311 wheel bundles FFmpeg: it decodes h264/mpeg4/mjpeg/indeo/cinepak and
encodes mpeg4/libx264). A file that cannot be decoded *completely* is an error, never a silent short read:

  * missing, not a regular file, or 0 bytes -> `VideoReadError` (kind 'missing' / 'empty');
  * no container FFmpeg recognises (random bytes, an MP4 cut before its `moov` index) -> kind 'container';
  * no video stream (an audio-only MP4; some cut MP4s keep only a data stream) or no decoder -> 'no_video';
  * a decoder error anywhere in the stream -> 'decode'. With `strict=True` (the default) the decoder runs with
    FFmpeg's `err_detect=explode`: without it FFmpeg conceals damaged macroblocks, and a bit-flipped AVI decodes
    to all its frames with garbage in some, or stops a few frames early with no error (checked on mpeg4 AVIs:
    one bit flipped in a key frame decodes silently without it). Damage that leaves a valid bitstream changes
    pixels unnoticed either way (AVI and MP4 carry no checksums);
  * fewer frames decoded than the container lists (a file cut mid-stream whose header survived) or none at
    all -> 'short'. Only checked when the whole file was read (`max_frames` stops early on purpose).

OpenCV (already a dependency) is not used for decoding: it returned 8 of 20 frames of a bit-flipped AVI without
an error (issue 13 §1).

Encoder (`write_video`, used for the generated stand-ins): '.avi' -> mpeg4, '.mp4'/'.mkv'/'.mov' -> libx264
(mpeg4 when this FFmpeg lacks libx264), yuv420p, so frame sizes must be even. Files are written under a temporary
name and renamed, so an interrupted write never leaves a plausible-looking video behind.
"""

import dataclasses
import fractions
import os
from typing import List, Optional, Sequence, Tuple

import numpy as np

from rlcv_tf.datasets import records as records_lib

VIDEO_EXTENSIONS = ('.avi', '.mp4')
READ_ERROR_KINDS = ('missing', 'empty', 'container', 'no_video', 'decode', 'short')
# Container format and default encoder by file extension.
_FORMATS = {'.avi': 'avi', '.mp4': 'mp4', '.mkv': 'matroska', '.mov': 'mov'}
_DEFAULT_CODECS = {'.avi': 'mpeg4', '.mp4': 'libx264', '.mkv': 'libx264', '.mov': 'libx264'}
VIDEO_FOLDER_LAYOUT = '<root>/<class>/<video>.{avi,mp4} (the video_folder / UCF101 / HMDB51 layout)'


class VideoReadError(ValueError):
  """A video file cannot be decoded completely. `path`, `reason` (one line) and `kind` (READ_ERROR_KINDS)."""

  def __init__(self, path: str, reason: str, kind: str):
    super().__init__(f'{path}: {reason}')
    self.path = path
    self.reason = reason
    self.kind = kind


def _av():
  try:
    import av  # pylint: disable=g-import-not-at-top
  except ImportError as e:  # pragma: no cover (a dependency in setup.cfg)
    raise ImportError('reading videos needs PyAV: pip install "av>=18,<19"') from e
  return av


def _check_file(path: str) -> None:
  if not os.path.exists(path):
    raise VideoReadError(path, 'missing file', 'missing')
  if not os.path.isfile(path):
    raise VideoReadError(path, 'not a regular file', 'missing')
  if os.path.getsize(path) == 0:
    raise VideoReadError(path, 'empty file (0 bytes)', 'empty')


def _open(path: str):
  """Opens `path` for reading and returns (container, its first video stream) or raises VideoReadError."""
  av = _av()
  _check_file(path)
  try:
    container = av.open(path, mode='r')
  except (av.FFmpegError, OSError) as e:
    raise VideoReadError(path, f'not a readable video container ({type(e).__name__}: {e})', 'container') from e
  streams = list(container.streams.video)
  if not streams:
    kinds = ', '.join(s.type for s in container.streams) or 'none'
    container.close()
    raise VideoReadError(path, f'no video stream (streams: {kinds})', 'no_video')
  stream = streams[0]
  if stream.codec_context is None:
    container.close()
    raise VideoReadError(path, 'the video stream has no decoder in this FFmpeg build', 'no_video')
  return container, stream


@dataclasses.dataclass(frozen=True)
class VideoInfo:
  """What the container header says (no decoding). frames: 0 when the header does not list a count."""
  frames: int
  fps: float
  width: int
  height: int
  codec: str
  duration_s: Optional[float]


def video_info(path: str) -> VideoInfo:
  """Frame count, frame rate, size and codec from the container header; raises VideoReadError."""
  container, stream = _open(path)
  try:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    duration = None
    if stream.duration is not None and stream.time_base is not None:
      duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
      duration = container.duration / 1e6
    return VideoInfo(frames=int(stream.frames or 0), fps=float(rate) if rate else 0.0,
                     width=int(stream.codec_context.width), height=int(stream.codec_context.height),
                     codec=str(stream.codec_context.name), duration_s=duration)
  finally:
    container.close()


def read_video(path: str, max_frames: Optional[int] = None, stride: int = 1, strict: bool = True) -> np.ndarray:
  """Decodes a video file into uint8 RGB frames [T, H, W, 3].

  Args:
    path: the file.
    max_frames: keep at most this many frames (after `stride`) and stop decoding there; None reads the whole
      file and checks that every listed frame decoded.
    stride: keep decoded frames 0, stride, 2*stride, ... (the thesis takes every 3rd RAVDESS frame, T:L6665).
    strict: run the decoder with `err_detect=explode`, so damaged data raises instead of being concealed.

  Raises:
    VideoReadError: missing/empty file, unknown container, no video stream, a decoder error, a short read, or
      frames whose size changes mid-stream. `kind` says which (READ_ERROR_KINDS).
  """
  if stride < 1:
    raise ValueError(f'stride must be >= 1, got {stride}')
  if max_frames is not None and max_frames < 1:
    raise ValueError(f'max_frames must be >= 1 or None, got {max_frames}')
  av = _av()
  container, stream = _open(path)
  kept: List[np.ndarray] = []
  decoded = 0
  stopped_early = False
  try:
    if strict:
      stream.codec_context.options = {'err_detect': 'explode'}
    try:
      for frame in container.decode(stream):
        if decoded % stride == 0:
          kept.append(frame.to_ndarray(format='rgb24'))
        decoded += 1
        if max_frames is not None and len(kept) >= max_frames:
          stopped_early = True
          break
    except (av.FFmpegError, OSError, ValueError) as e:
      raise VideoReadError(path, f'decoder error after {decoded} frames ({type(e).__name__}: {e})',
                           'decode') from e
    listed = int(stream.frames or 0)
  finally:
    container.close()
  if not decoded:
    raise VideoReadError(path, f'no frames decoded (the container lists {listed})', 'short')
  if not stopped_early and decoded < listed:
    raise VideoReadError(path, f'decoded only {decoded} of the {listed} frames the container lists', 'short')
  shapes = {f.shape for f in kept}
  if len(shapes) > 1:
    raise VideoReadError(path, f'frame size changes mid-stream ({sorted(shapes)})', 'decode')
  return np.stack(kept)


def _encoder_available(name: str) -> bool:
  av = _av()
  try:
    av.codec.Codec(name, 'w')
  except (av.FFmpegError, ValueError):
    return False
  return True


def default_codec(path: str) -> str:
  """The encoder `write_video` uses for `path`'s extension (libx264 falls back to mpeg4 if absent)."""
  ext = os.path.splitext(path)[1].lower()
  if ext not in _DEFAULT_CODECS:
    raise ValueError(f'{path}: unsupported video extension {ext!r}; use one of {sorted(_DEFAULT_CODECS)}')
  codec = _DEFAULT_CODECS[ext]
  if codec == 'libx264' and not _encoder_available('libx264'):
    codec = 'mpeg4'
  return codec


def write_video(path: str, frames: np.ndarray, fps: float = 25, codec: Optional[str] = None) -> str:
  """Encodes uint8 RGB frames [T, H, W, 3] (H, W even) to `path`; returns the codec used.

  mpeg4 runs at about 2 bits per pixel and libx264 at crf 17, both close to visually lossless on the
  stand-ins' flat colours (a round trip is within a few grey levels on average).
  """
  av = _av()
  frames = np.asarray(frames)
  if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or not len(frames):
    raise ValueError(f'frames must be uint8 [T, H, W, 3] with T >= 1, got {frames.dtype} {frames.shape}')
  _, height, width, _ = frames.shape
  if height % 2 or width % 2:
    raise ValueError(f'frame size {width}x{height}: yuv420p video needs an even width and height')
  codec = codec or default_codec(path)
  ext = os.path.splitext(path)[1].lower()
  if ext not in _FORMATS:
    raise ValueError(f'{path}: unsupported video extension {ext!r}; use one of {sorted(_FORMATS)}')
  rate = fractions.Fraction(fps).limit_denominator(1001)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = f'{path}.part'
  try:
    with av.open(tmp, mode='w', format=_FORMATS[ext]) as container:
      options = {'crf': '17'} if codec == 'libx264' else {}
      stream = container.add_stream(codec, rate=rate, options=options)
      stream.width, stream.height, stream.pix_fmt = width, height, 'yuv420p'
      if codec != 'libx264':
        stream.bit_rate = int(max(200_000, 2 * width * height * float(rate)))
      for image in frames:
        for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format='rgb24')):
          container.mux(packet)
      for packet in stream.encode():
        container.mux(packet)
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return codec


def list_videos(root: str, extensions: Sequence[str] = VIDEO_EXTENSIONS,
                dataset: str = 'video_folder') -> List[Tuple[str, str]]:
  """Every `<root>/<class>/<name><ext>` video as (path, class name), sorted by class then file name.

  Hidden files and folders are ignored; extensions match case-insensitively. Only one level of class folders
  is read (the UCF101 / HMDB51 layout). Raises DatasetUnavailableError when root is missing or holds no video.
  """
  exts = tuple(e.lower() for e in extensions)
  source = 'your own videos, or an unpacked UCF101 / HMDB51 archive'
  if not root or not os.path.isdir(root):
    raise records_lib.unavailable(dataset, root, 'the root folder does not exist', VIDEO_FOLDER_LAYOUT, source)
  out = []
  for class_name in sorted(os.listdir(root)):
    folder = os.path.join(root, class_name)
    if class_name.startswith('.') or not os.path.isdir(folder):
      continue
    for name in sorted(os.listdir(folder)):
      path = os.path.join(folder, name)
      if not name.startswith('.') and name.lower().endswith(exts) and os.path.isfile(path):
        out.append((path, class_name))
  if not out:
    raise records_lib.unavailable(dataset, root, f'no {"/".join(exts)} files in class folders',
                                  VIDEO_FOLDER_LAYOUT, source)
  return out
