"""What a data-set reader hands to the generic pipeline (`pipeline.py`), and the errors every reader raises.

A reader of files on disk returns `Records`: one row per image with its path, label, optional attributes and its
crop, either a window per image (`boxes`) or a rule applied to the decoded size (`ShorterSideCrop`). A generated
stand-in returns `Generated`: a NumPy function from example indices to images. The pipeline knows nothing else
about a data set; readers never import the pipeline.
"""

import dataclasses
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np


class DatasetError(RuntimeError):
  """A data set cannot be used as asked (unknown split, malformed annotation file, too few images, ...)."""


class DatasetUnavailableError(DatasetError):
  """A real data set is missing or incomplete on disk. The message names the path, the layout and the source."""


def unavailable(dataset: str, data_dir: Optional[str], problem: str, layout: str, source: str,
                stand_in: Optional[str] = None) -> DatasetUnavailableError:
  """Builds the one-message error used by every reader (what path, what layout, where to get it)."""
  where = 'no data_dir was given' if data_dir is None else f'looked in {os.path.abspath(data_dir)!r}'
  msg = (f'{dataset} is not available: {problem} ({where}). Expected layout: {layout}. Get it from {source}; '
         'nothing is downloaded at run time.')
  if stand_in:
    msg += f' For a procedurally generated stand-in ask for {stand_in!r} explicitly.'
  return DatasetUnavailableError(msg)


# What an `attributes` argument may be: None (the reader's default), 'all', or attribute names in the order wanted.
AttributeSelection = Union[None, str, Sequence[str]]


def resolve_attributes(available: Sequence[str], attributes: AttributeSelection, dataset: str,
                       known: Sequence[str] = ()) -> Tuple[Tuple[str, ...], np.ndarray]:
  """Which attribute columns an `attributes` argument asks for (spec ch5_6 §B5: Chapter 6 conditions on a chosen
  subset of the CelebA attributes).

  Args:
    available: the names the data set has, in its column (file) order.
    attributes: None or 'all' (every available name, in file order), or a list of distinct available names, kept
      in the order given.
    dataset: the data set's name, for messages.
    known: names that exist elsewhere but not here (the 40 CelebA names for a stand-in that renders 12 of them),
      so the message can say such a name is not rendered rather than unknown.

  Returns:
    (the selected names, int64 column indices into `available`).

  Raises:
    ValueError: the data set has no attributes, `attributes` is a bare string other than 'all', empty, or holds an
      unknown, unrendered or repeated name; the message lists the valid names.
  """
  available = tuple(str(a) for a in available)
  if not available:
    raise ValueError(f'attributes: {dataset} has no attributes; leave attributes=None for it')
  if attributes is None or (isinstance(attributes, str) and attributes == 'all'):
    return available, np.arange(len(available), dtype=np.int64)
  valid = f"'all' or a list of names from {', '.join(available)}"
  if isinstance(attributes, str):
    raise ValueError(f'attributes: got the string {attributes!r}; valid values are {valid} (write [{attributes!r}] '
                     'for a single attribute)')
  names = tuple(attributes)
  if not names:
    raise ValueError(f'attributes: got an empty list; valid values are {valid}')
  if any(not isinstance(n, str) for n in names):
    raise ValueError(f'attributes: names must be strings, got {names!r}; valid values are {valid}')
  repeated = sorted({n for n in names if names.count(n) > 1})
  unknown = [n for n in names if n not in available]
  problems = []
  unrendered = [n for n in unknown if n in known]
  if unrendered:
    problems.append(f'{", ".join(unrendered)} {"is" if len(unrendered) == 1 else "are"} not rendered by {dataset} '
                    f'(it renders {len(available)} of the {len(known)} known attributes)')
  if len(unknown) > len(unrendered):
    problems.append(f'unknown names {", ".join(n for n in unknown if n not in known)}')
  if repeated:
    problems.append(f'repeated names {", ".join(repeated)}')
  if problems:
    raise ValueError(f'attributes: {"; ".join(problems)} for {dataset}; valid values are {valid}, each at most once')
  return names, np.array([available.index(n) for n in names], np.int64)


@dataclasses.dataclass(frozen=True)
class ShorterSideCrop:
  """A square of side `fraction` x the shorter image side: at a random position in training, centred otherwise
  (LSUN's "shorter side -> 72, crop 64" is fraction 64/72)."""
  fraction: float


@dataclasses.dataclass
class Records:
  """What a reader found on disk: one row per listed image.

  Attributes:
    paths: str [N] absolute image paths.
    labels: int64 [N].
    boxes: float32 [N, 4] crop windows (y0, x0, height, width) in pixels of the original image; a window that
      leaves the image is shifted inside it by the pipeline, and padded only where it is larger than the image.
      None when `crop` gives the rule instead.
    crop: the crop rule when `boxes` is None (None and no boxes: the whole image).
    attributes: float32 [N, K] in {-1, +1}, or None.
    attribute_names: the K names, in file order.
    num_classes: number of distinct labels, or None when labels are not classes (CelebA without identities).
    display_name: the data set's name in messages.
    skipped: (path, reason) of the images that failed the host-side file check (filled by the pipeline).
  """
  paths: np.ndarray
  labels: np.ndarray
  boxes: Optional[np.ndarray] = None
  crop: Optional[ShorterSideCrop] = None
  attributes: Optional[np.ndarray] = None
  attribute_names: Tuple[str, ...] = ()
  num_classes: Optional[int] = None
  display_name: str = ''
  skipped: List[Tuple[str, str]] = dataclasses.field(default_factory=list)

  def __len__(self) -> int:
    return len(self.paths)

  def select(self, keep: np.ndarray) -> 'Records':
    """The rows where `keep` (bool [N] or int indices) holds, in that order."""
    return dataclasses.replace(
        self, paths=self.paths[keep], labels=self.labels[keep],
        boxes=None if self.boxes is None else self.boxes[keep],
        attributes=None if self.attributes is None else self.attributes[keep])

  def select_attributes(self, attributes: AttributeSelection, known: Sequence[str] = ()) -> 'Records':
    """The same rows with only the attribute columns `attributes` asks for, in its order (`resolve_attributes`)."""
    names, columns = resolve_attributes(self.attribute_names if self.attributes is not None else (), attributes,
                                        self.display_name or 'this data set', known)
    return dataclasses.replace(self, attributes=self.attributes[:, columns], attribute_names=names)

  @staticmethod
  def concatenate(parts: List['Records'], display_name: str = '') -> 'Records':
    """Rows of several readers one after the other (labels as given: offset them first if they must not clash)."""
    if not parts:
      raise ValueError('nothing to concatenate')
    if any((p.boxes is None) != (parts[0].boxes is None) or p.crop != parts[0].crop for p in parts):
      raise ValueError('records to concatenate must share one kind of crop')
    if any((p.attributes is None) != (parts[0].attributes is None) for p in parts):
      raise ValueError('records to concatenate must all have attributes or none')
    return Records(
        paths=np.concatenate([p.paths for p in parts]).astype(object),
        labels=np.concatenate([p.labels for p in parts]).astype(np.int64),
        boxes=None if parts[0].boxes is None else np.concatenate([p.boxes for p in parts]).astype(np.float32),
        crop=parts[0].crop,
        attributes=None if parts[0].attributes is None else np.concatenate([p.attributes for p in parts]),
        attribute_names=parts[0].attribute_names, display_name=display_name or parts[0].display_name,
        skipped=[s for p in parts for s in p.skipped])


@dataclasses.dataclass
class Generated:
  """A procedurally generated split (the stand-ins of `synthetic.py`).

  Attributes:
    generate: fn(indices int64 [n]) -> {'image': uint8 [n, S, S, 3], 'label': int64 [n], 'box': float32 [n, 4]
      crop windows (y0, x0, h, w), optional 'attributes': float32 [n, K]}; image i depends on i only.
    size: S, the canvas side.
    num_examples: N, the split's size.
    crop: a rule applied instead of 'box' (e.g. the LSUN-style shorter-side square), or None.
  """
  generate: Callable[[np.ndarray], Dict[str, np.ndarray]]
  size: int
  num_examples: int
  crop: Optional[ShorterSideCrop] = None
  attribute_names: Tuple[str, ...] = ()
  num_classes: Optional[int] = None
  display_name: str = ''

  def select_attributes(self, attributes: AttributeSelection, known: Sequence[str] = ()) -> 'Generated':
    """The same split whose rows carry only the attribute columns `attributes` asks for, in its order
    (`resolve_attributes`)."""
    names, columns = resolve_attributes(self.attribute_names, attributes, self.display_name or 'this data set', known)
    inner = self.generate

    def generate(indices):
      row = dict(inner(indices))
      row['attributes'] = np.asarray(row['attributes'])[:, columns]
      return row

    return dataclasses.replace(self, generate=generate, attribute_names=names)


def find_root(data_dir: str, nested: str, marker: str) -> str:
  """data_dir itself, or data_dir/`nested` (the folder a published archive unpacks to) when data_dir lacks the
  file `marker` and that folder exists: a reader accepts either the data set's root or the folder above it."""
  inner = os.path.join(data_dir, nested)
  if not os.path.exists(os.path.join(data_dir, marker)) and os.path.isdir(inner):
    return inner
  return data_dir


def read_id_table(path: str, num_fields: int, cast=str, key=int) -> Dict:
  """`<id> v1 .. vk` lines (fields separated by runs of spaces; the CUB / NABirds annotation format) ->
  {key(id): (cast(v1), .., cast(vk))}. Raises DatasetError naming the file and the bad line."""
  out = {}
  with open(path) as f:
    for i, line in enumerate(f):
      parts = line.split()
      if not parts:
        continue
      if len(parts) != num_fields + 1:
        raise DatasetError(f'{path}: line {i + 1} should have {num_fields + 1} fields, got {line.strip()!r}')
      try:
        out[key(parts[0])] = tuple(cast(p) for p in parts[1:])
      except ValueError as e:
        raise DatasetError(f'{path}: line {i + 1} is malformed: {line.strip()!r}') from e
  return out
