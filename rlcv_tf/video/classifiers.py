"""Chapter 7 baselines and evaluation heads: the Table 7.1 retrieval baselines, the Table 7.2 attentive classifier,
the Table 7.3 fine-tune classifier, and their trainers (thesis 7.5, T:L6614-6650, T:L6720-6830; spec ch7 §3.6, §5).

What the thesis states:

  * Table 7.1 compares retrieval in P with "a 3D CNN classifier trained with supervision" and "an autoencoder
    trained with reconstruction loss", both sharing "the same backbone" and giving features of P's size (32 for
    MMNIST, 512 otherwise); the classifier's feature is "the last fully connected layer before the softmax"
    (T:L6614-6650; spec §3.6).
  * Table 7.2 (Weizmann): a linear classifier on frozen (S, P) with an attention weight,
    g_S = FC(S), g_P = FC(P), a = sigmoid(FC([g_S; g_P])) in [0, 1], logits = FC([a g_S; (1 - a) g_P]); the thesis
    prints g_D for g_P (spec A13). The clips of one video vote together (T:L6760-6790).
  * Table 7.3 (RAVDESS): Enc_v fine-tuned for expression recognition; "the FC that produced P is replaced by average
    pooling and a linear layer"; initialised from stage 2 (ours), from an S-only stage 2, or at random (the
    supervised 3D CNN) (T:L6800-6830). lr 1e-3, halved every 50 epochs, up to 200 epochs (7.b.3).

[proposal] (spec §3.6, §6):

  * every model composes a `models.VideoEncoder(config)` and uses only its `trunk` (conv1, layer1-3) and
    `layer4_features` (layer4 + global average pool), so the baselines have Enc_v's exact trunk and feature width;
    the encoder's S head and P FCs are never called and so never get weights.
  * SupervisedVideoClassifier: GAP(layer4) -> Dense(dynamics_hidden)-ReLU -> Dense(dim P) (the retrieval feature,
    `features`) -> Dense(num_classes). MMNIST's task is the 55 unordered digit pairs.
  * VideoAutoencoderBaseline: the same encoder to a dim-P bottleneck (`features`), then Dense(T' h' w' 8w)-ReLU ->
    reshape to layer4's grid -> 3 x [Conv3DTranspose(c, 4, stride 2)+BN+ReLU] for c in (4w, 2w, w) ->
    Conv3DTranspose(w, (3, 4, 4), stride (1, 2, 2))+BN+ReLU -> Conv3D(C, 3) -> sigmoid / tanh
    (`config.output_activation`); for the paper width w = 64 this is spec §3.6's 256-128-64-64 decoder, and the
    widths scale with `config.video_width`. Any excess frames (T not a multiple of 8) are cropped. Loss: the
    reconstruction error of `losses.reconstruction` with the config's reduction (MSE by default).
  * AttentiveClassifier: c_g = 128 (not stated); the four layers are affine (no nonlinearity besides the sigmoid).
  * FinetuneClassifier: GAP(layer4) -> Dense(num_classes); `load_from` copies conv1..layer4 (BN statistics included)
    from a trained Enc_v; the S head and the P FCs are not used.
  * `BaselineTrainer`: Adam(1e-3, the config's betas / epsilon) on softmax cross-entropy (classifier) or the
    reconstruction error (autoencoder). The learning rate of Tables 7.1 / 7.2 is not stated; 1e-3 is RAVDESS's.
  * `train_head`: Adam on a small head over frozen features; with `group_ids` the clip logits of one video are
    averaged before the cross-entropy (the Weizmann protocol: the clips of a video vote together), so a batch is a
    set of videos.
"""

from typing import Dict, Optional, Sequence, Tuple, Union

import keras
import numpy as np
import tensorflow as tf

from rlcv_tf.core import tracking
from rlcv_tf.video import blocks
from rlcv_tf.video import losses
from rlcv_tf.video import models
from rlcv_tf.video import presets

CLASSIFIER_LR = 1e-3          # stated for RAVDESS (7.b.3); used for every baseline [proposal]
ATTENTION_HIDDEN = 128        # c_g, not stated (spec A13)
TRAINER_KINDS = ('classifier', 'autoencoder')
TRUNK_LAYERS = ('conv1', 'conv1_bn', 'layer1', 'layer2', 'layer3')
LAYER4 = ('layer4',)

Inputs = Union[np.ndarray, tf.Tensor, Sequence[Union[np.ndarray, tf.Tensor]]]


def _check_classes(num_classes) -> int:
  if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
    raise ValueError(f'num_classes: got {num_classes!r}; valid values are integers >= 2')
  return int(num_classes)


def _trace(model: keras.Model, config: presets.VideoConfig) -> None:
  """Creates the model's weights by one symbolic call on a [1, T, H, W, C] video (no computation, no BN update)."""
  spec = tf.TensorSpec((1,) + config.video_shape, tf.float32)
  tf.function(lambda v: model(v, training=False)).get_concrete_function(spec)


class _VideoModel(keras.Model):
  """A model on [B, T, H, W, C] videos built around an Enc_v (`self.encoder`) from one `VideoConfig`."""

  def __init__(self, config: presets.VideoConfig, **kwargs):
    super().__init__(**kwargs)
    if not isinstance(config, presets.VideoConfig):
      raise ValueError(f'config: expected a VideoConfig, got {type(config).__name__}')
    self._config = config.validate()
    self.encoder = models.VideoEncoder(self._config, name='encoder')

  @property
  def config(self) -> presets.VideoConfig:
    return self._config

  def build(self, input_shape=None):
    # Sub-layers create their weights on their first call; the encoder's S head and P FCs never do.
    self.built = True

  def pooled(self, video, training=False) -> tf.Tensor:
    """Global-average-pooled layer4 features [B, 8w] of Enc_v's trunk."""
    return self.encoder.layer4_features(self.encoder.trunk(video, training=training), training=training)

  def build_weights(self) -> '_VideoModel':
    """Creates every weight (symbolic trace, no BN update); returns self."""
    if not self.weights:
      _trace(self, self._config)
    return self

  def get_config(self):
    return dict(super().get_config(), config=self._config.to_dict())


# --------------------------------------------------------------------------------------- Table 7.1 baselines
class SupervisedVideoClassifier(_VideoModel):
  """Table 7.1's supervised 3D CNN: video -> logits [B, num_classes]; `features(video)` -> [B, dim P], the last FC
  before the softmax (module docstring)."""

  def __init__(self, config: presets.VideoConfig, num_classes: int, **kwargs):
    kwargs.setdefault('name', 'supervised_classifier')
    super().__init__(config, **kwargs)
    self.num_classes = _check_classes(num_classes)
    c = self._config
    self.hidden = keras.layers.Dense(c.dynamics_hidden, activation='relu', name='hidden')
    self.feature = keras.layers.Dense(c.dynamics_dim, name='feature')
    self.classify = keras.layers.Dense(self.num_classes, name='classify')

  def features(self, video, training=False) -> tf.Tensor:
    return self.feature(self.hidden(self.pooled(video, training=training)))

  def call(self, video, training=False):
    return self.classify(self.features(video, training=training))

  def get_config(self):
    return dict(super().get_config(), num_classes=self.num_classes)

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    return cls(presets.VideoConfig.from_dict(config.pop('config')), config.pop('num_classes'),
               name=config.get('name'))


class VideoAutoencoderBaseline(_VideoModel):
  """Table 7.1's reconstruction autoencoder: `features(video)` -> bottleneck [B, dim P]; `decode(z)` -> video;
  call(video) -> reconstruction [B, T, H, W, C] in [0, 1] (sigmoid) or [-1, 1] (tanh) (module docstring)."""

  def __init__(self, config: presets.VideoConfig, **kwargs):
    kwargs.setdefault('name', 'autoencoder_baseline')
    super().__init__(config, **kwargs)
    c = self._config
    w1, w2, w3, w4 = c.video_widths
    # layer4's grid: conv1 keeps T and halves H, W; layers 2-4 halve everything ('same' padding rounds up).
    self._grid = (-(-c.num_frames // 8), -(-c.image_size // 16), -(-c.image_size // 16), w4)
    self.hidden = keras.layers.Dense(c.dynamics_hidden, activation='relu', name='hidden')
    self.bottleneck = keras.layers.Dense(c.dynamics_dim, name='bottleneck')
    self.expand = keras.layers.Dense(int(np.prod(self._grid)), activation='relu', name='expand')
    self.up_stages = []
    for i, (width, kernel, strides) in enumerate(((w3, 4, 2), (w2, 4, 2), (w1, 4, 2), (w1, (3, 4, 4), (1, 2, 2)))):
      self.up_stages.append((
          keras.layers.Conv3DTranspose(width, kernel, strides=strides, padding='same', use_bias=False,
                                       kernel_initializer='he_normal', name=f'up{i + 1}'),
          blocks.batch_norm(c.bn_momentum, c.bn_epsilon, f'up{i + 1}_bn')))
    tracking.track_sublayers(self, 'up', self.up_stages)
    # Glorot, as g_dec's last conv: no BN follows and He-scaled logits saturate the output at initialisation.
    self.to_pixels = keras.layers.Conv3D(c.channels, 3, padding='same', name='to_pixels')

  def features(self, video, training=False) -> tf.Tensor:
    return self.bottleneck(self.hidden(self.pooled(video, training=training)))

  def decode(self, z, training=False) -> tf.Tensor:
    c = self._config
    x = tf.reshape(self.expand(z), (-1,) + self._grid)
    for conv, bn in self.up_stages:
      x = keras.ops.relu(bn(conv(x), training=training))
    x = self.to_pixels(x)[:, :c.num_frames, :c.image_size, :c.image_size]
    return keras.ops.sigmoid(x) if c.output_activation == 'sigmoid' else keras.ops.tanh(x)

  def call(self, video, training=False):
    return self.decode(self.features(video, training=training), training=training)

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    return cls(presets.VideoConfig.from_dict(config.pop('config')), name=config.get('name'))


# ---------------------------------------------------------------------------------- Table 7.2 attentive head
class AttentiveClassifier(keras.Model):
  """Table 7.2's attentive linear classifier on frozen (S, P) (module docstring).

  call(S, P) or call((S, P)) -> logits [B, num_classes]; `logits_and_attention(S, P)` -> (logits, a [B]) and
  `attention(S, P)` -> a [B] in [0, 1], the weight of the statics path (1 - a goes to the dynamics path).
  S is [B, h, w, c] or already flattened [B, d]; P is [B, dim P].
  """

  def __init__(self, num_classes: int, hidden: int = ATTENTION_HIDDEN, **kwargs):
    kwargs.setdefault('name', 'attentive_classifier')
    super().__init__(**kwargs)
    self.num_classes = _check_classes(num_classes)
    if isinstance(hidden, bool) or not isinstance(hidden, (int, np.integer)) or hidden < 1:
      raise ValueError(f'hidden: got {hidden!r}; valid values are integers >= 1')
    self.hidden = int(hidden)
    self.flatten = keras.layers.Flatten()
    self.statics_proj = keras.layers.Dense(self.hidden, name='statics_proj')      # g_S
    self.dynamics_proj = keras.layers.Dense(self.hidden, name='dynamics_proj')    # g_P
    self.gate = keras.layers.Dense(1, name='gate')                                # a = sigmoid(gate([g_S; g_P]))
    self.classify = keras.layers.Dense(self.num_classes, name='classify')

  def build(self, input_shape=None):
    # Sub-layers create their weights on their first call.
    self.built = True

  def logits_and_attention(self, statics, dynamics=None, training=False) -> Tuple[tf.Tensor, tf.Tensor]:
    if dynamics is None:
      if not isinstance(statics, (tuple, list)) or len(statics) != 2:
        raise ValueError('inputs: expected (S, P), as call(S, P) or call((S, P))')
      statics, dynamics = statics
    g_s = self.statics_proj(self.flatten(tf.convert_to_tensor(statics)))
    g_p = self.dynamics_proj(tf.convert_to_tensor(dynamics))
    a = keras.ops.sigmoid(self.gate(tf.concat([g_s, g_p], axis=-1)))
    logits = self.classify(tf.concat([a * g_s, (1.0 - a) * g_p], axis=-1))
    return logits, a[:, 0]

  def attention(self, statics, dynamics=None) -> tf.Tensor:
    return self.logits_and_attention(statics, dynamics)[1]

  def call(self, statics, dynamics=None, training=False):
    return self.logits_and_attention(statics, dynamics, training=training)[0]

  def get_config(self):
    return dict(super().get_config(), num_classes=self.num_classes, hidden=self.hidden)

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    return cls(config.pop('num_classes'), config.pop('hidden'), name=config.get('name'))


# ----------------------------------------------------------------------------------- Table 7.3 fine-tuning
class FinetuneClassifier(_VideoModel):
  """Table 7.3's classifier: Enc_v conv1..layer4 -> global average pool -> Dense(num_classes) -> logits.

  Random initialisation (the supervised 3D CNN) unless `load_from(video_encoder)` copies a trained Enc_v's
  conv1..layer4 weights and BN statistics (ours, or the S-only ablation).
  """

  def __init__(self, config: presets.VideoConfig, num_classes: int, **kwargs):
    kwargs.setdefault('name', 'finetune_classifier')
    super().__init__(config, **kwargs)
    self.num_classes = _check_classes(num_classes)
    self.classify = keras.layers.Dense(self.num_classes, name='classify')

  def features(self, video, training=False) -> tf.Tensor:
    """The pooled layer4 features [B, 8w] the linear layer reads."""
    return self.pooled(video, training=training)

  def call(self, video, training=False):
    return self.classify(self.pooled(video, training=training))

  def load_from(self, video_encoder: models.VideoEncoder, layers: Sequence[str] = TRUNK_LAYERS + LAYER4) -> int:
    """Copies `layers` (default conv1..layer4) of a built `video_encoder` into this model; returns the number of
    scalars copied. The linear head keeps its initialisation."""
    if not isinstance(video_encoder, models.VideoEncoder):
      raise ValueError(f'video_encoder: expected a models.VideoEncoder, got {type(video_encoder).__name__}')
    mine, theirs = self._config, video_encoder.config
    for field in ('image_size', 'channels', 'num_frames', 'video_width', 'conv1_kernel'):
      if getattr(mine, field) != getattr(theirs, field):
        raise ValueError(f'video_encoder: its {field} is {getattr(theirs, field)!r} but this classifier has '
                         f'{getattr(mine, field)!r}; build the classifier from the encoder\'s config')
    unknown = [name for name in layers if name not in TRUNK_LAYERS + LAYER4]
    if unknown:
      raise ValueError(f'layers: got {unknown}; valid values are {TRUNK_LAYERS + LAYER4}')
    self.build_weights()
    copied = 0
    for name in layers:
      source, target = getattr(video_encoder, name), getattr(self.encoder, name)
      if not source.weights:
        raise ValueError(f'video_encoder: its {name} has no weights yet; build it (call it once or restore its '
                         f'checkpoint) before load_from')
      values = source.get_weights()
      if [v.shape for v in values] != [tuple(w.shape) for w in target.weights]:
        raise ValueError(f'video_encoder: the {name} weight shapes differ from this classifier\'s; build the '
                         f'classifier from the encoder\'s config')
      target.set_weights(values)
      copied += int(sum(v.size for v in values))
    return copied

  def get_config(self):
    return dict(super().get_config(), num_classes=self.num_classes)

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    return cls(presets.VideoConfig.from_dict(config.pop('config')), config.pop('num_classes'),
               name=config.get('name'))


# ------------------------------------------------------------------------------------------------ trainers
def _adam(config: presets.VideoConfig, learning_rate: float) -> keras.optimizers.Adam:
  return keras.optimizers.Adam(float(learning_rate), beta_1=config.adam_beta1, beta_2=config.adam_beta2,
                               epsilon=config.adam_epsilon)


class BaselineTrainer:
  """One tf.function step of a baseline on a batch of clips.

  Args:
    config: the VideoConfig (Adam settings, the reconstruction reduction).
    model: SupervisedVideoClassifier or FinetuneClassifier (kind 'classifier'), VideoAutoencoderBaseline
      ('autoencoder').
    kind: 'classifier' (softmax cross-entropy on integer labels) or 'autoencoder' (reconstruction error).
    learning_rate: Adam's rate (CLASSIFIER_LR by default); `set_learning_rate` changes it between steps.

  train_step(video [B, T, H, W, C], label [B] int) -> {'loss', 'accuracy'} (classifier) or {'loss'} (autoencoder;
  label is ignored and may be None). eval_step is the same in inference mode without an update. `step` counts
  applied updates.
  """

  def __init__(self, config: presets.VideoConfig, model: keras.Model, kind: str = 'classifier',
               learning_rate: float = CLASSIFIER_LR):
    if kind not in TRAINER_KINDS:
      raise ValueError(f'kind: got {kind!r}; valid values are {TRAINER_KINDS}')
    wanted = (VideoAutoencoderBaseline,) if kind == 'autoencoder' else (SupervisedVideoClassifier,
                                                                          FinetuneClassifier)
    if not isinstance(model, wanted):
      raise ValueError(f'model: a {type(model).__name__} cannot be trained as kind={kind!r}; valid models are '
                       f'{", ".join(m.__name__ for m in wanted)}')
    if not float(learning_rate) > 0:
      raise ValueError(f'learning_rate: got {learning_rate}; valid values are > 0')
    self.config = config.validate()
    self.model = model.build_weights()
    self.kind = kind
    self.optimizer = _adam(self.config, learning_rate)
    self.variables = list(self.model.trainable_variables)
    self.optimizer.build(self.variables)
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
    self._train = tf.function(self._train_step)
    self._eval = tf.function(lambda video, label: self.loss_terms(video, label, training=False))

  def loss_terms(self, video, label=None, training: bool = True) -> Dict[str, tf.Tensor]:
    if self.kind == 'autoencoder':
      return {'loss': losses.reconstruction(video, self.model(video, training=training), self.config.reduction)}
    logits = self.model(video, training=training)
    label = tf.cast(tf.reshape(label, [-1]), tf.int64)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=label, logits=logits))
    accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, axis=-1), label), tf.float32))
    return {'loss': loss, 'accuracy': accuracy}

  def _train_step(self, video, label):
    with tf.GradientTape() as tape:
      terms = self.loss_terms(video, label, training=True)
    grads = tape.gradient(terms['loss'], self.variables)
    self.optimizer.apply_gradients(zip(grads, self.variables))
    self.step.assign_add(1)
    return terms

  def _inputs(self, video, label):
    video = tf.convert_to_tensor(video, tf.float32)
    if self.kind == 'autoencoder':
      return video, tf.zeros([0], tf.int64)
    if label is None:
      raise ValueError('label: a classifier step needs integer labels [B]; pass the batch\'s labels')
    return video, tf.convert_to_tensor(label, tf.int64)

  def train_step(self, video, label=None) -> Dict[str, tf.Tensor]:
    return self._train(*self._inputs(video, label))

  def eval_step(self, video, label=None) -> Dict[str, tf.Tensor]:
    return self._eval(*self._inputs(video, label))

  def set_learning_rate(self, learning_rate: float) -> None:
    self.optimizer.learning_rate = float(learning_rate)

  def checkpoint_objects(self) -> Dict[str, object]:
    """Objects for tf.train.Checkpoint(**...): the model (BN statistics included), its optimizer, the step."""
    return {self.kind: self.model, f'{self.kind}_optimizer': self.optimizer, 'step': self.step}


def batched_outputs(fn, videos, batch_size: int = 32) -> np.ndarray:
  """np.concatenate of fn(videos[i:i + batch_size]) over the batches, e.g. fn = model.features (inference mode)."""
  if batch_size < 1:
    raise ValueError(f'batch_size: got {batch_size}; valid values are integers >= 1')
  outs = [np.asarray(fn(tf.convert_to_tensor(videos[i:i + batch_size], tf.float32)))
          for i in range(0, len(videos), batch_size)]
  return np.concatenate(outs, axis=0)


# ------------------------------------------------------------------------------------------------ heads
def _as_arrays(inputs: Inputs) -> Tuple[np.ndarray, ...]:
  arrays = tuple(np.asarray(x, np.float32) for x in (inputs if isinstance(inputs, (tuple, list)) else (inputs,)))
  if not arrays or len({a.shape[0] for a in arrays}) != 1:
    raise ValueError(f'inputs: expected arrays with one row per clip, got shapes {[a.shape for a in arrays]}')
  return arrays


def _groups(num_clips: int, group_ids) -> Tuple[np.ndarray, np.ndarray]:
  """(sorted unique ids, segment index per clip)."""
  ids = np.arange(num_clips) if group_ids is None else np.asarray(group_ids).reshape(-1)
  if ids.shape[0] != num_clips:
    raise ValueError(f'group_ids: got {ids.shape[0]} ids for {num_clips} clips; pass one video id per clip')
  return np.unique(ids, return_inverse=True)


def _head_input(arrays):
  return arrays if len(arrays) > 1 else arrays[0]


def train_head(head: keras.Model, inputs: Inputs, labels, group_ids=None, epochs: int = 100, batch_size: int = 64,
               learning_rate: float = CLASSIFIER_LR, seed: int = 0, adam: Optional[Dict[str, float]] = None
               ) -> Dict[str, list]:
  """Fits `head` (e.g. an AttentiveClassifier, or Flatten + Dense for a linear probe) on frozen clip features.

  Args:
    head: a Keras model called as head(x) on one array, or head((x1, x2, ...)) on several.
    inputs: one [n_clips, ...] array or a tuple of them (e.g. (S, P)).
    labels: [n_clips] integer labels; the clips of one video must share it.
    group_ids: [n_clips] video ids: the clip logits of a video are averaged before the cross-entropy, and batches
      are made of whole videos. None: every clip is its own video.
    epochs, batch_size (videos per batch), learning_rate, seed (the batch order).
    adam: optional beta_1 / beta_2 / epsilon for Adam.

  Returns:
    {'loss': [per-epoch mean video cross-entropy], 'accuracy': [per-epoch video accuracy, training mode]}.
  """
  arrays = _as_arrays(inputs)
  labels = np.asarray(labels).reshape(-1).astype(np.int64)
  n = arrays[0].shape[0]
  if labels.shape[0] != n:
    raise ValueError(f'labels: got {labels.shape[0]} labels for {n} clips; pass one label per clip')
  if epochs < 1 or batch_size < 1:
    raise ValueError(f'epochs, batch_size: got {epochs}, {batch_size}; valid values are integers >= 1')
  unique, segment = _groups(n, group_ids)
  video_labels = np.zeros(len(unique), np.int64)
  video_labels[segment] = labels
  if np.any(video_labels[segment] != labels):
    raise ValueError('labels: the clips of one video have different labels; give every clip its video\'s label')
  clips_of = [np.flatnonzero(segment == g) for g in range(len(unique))]
  optimizer = keras.optimizers.Adam(float(learning_rate), **(adam or {}))
  head(_head_input(tuple(tf.constant(a[:1]) for a in arrays)))
  variables = list(head.trainable_variables)
  optimizer.build(variables)
  specs = tuple(tf.TensorSpec((None,) + a.shape[1:], tf.float32) for a in arrays)

  @tf.function(input_signature=(specs, tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.int64)))
  def step(xs, seg, y):
    with tf.GradientTape() as tape:
      logits = head(_head_input(xs), training=True)
      video_logits = tf.math.unsorted_segment_mean(logits, seg, tf.shape(y)[0])
      loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=video_logits))
    grads = tape.gradient(loss, variables)
    optimizer.apply_gradients(zip(grads, variables))
    correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(video_logits, axis=-1), y), tf.float32))
    return loss, correct

  rng = np.random.default_rng(seed)
  history = {'loss': [], 'accuracy': []}
  for _ in range(int(epochs)):
    order = rng.permutation(len(unique))
    total, correct = 0.0, 0.0
    for start in range(0, len(order), batch_size):
      videos = order[start:start + batch_size]
      rows = np.concatenate([clips_of[g] for g in videos])
      seg = np.concatenate([np.full(len(clips_of[g]), i, np.int32) for i, g in enumerate(videos)])
      loss, right = step(tuple(tf.constant(a[rows]) for a in arrays), tf.constant(seg),
                         tf.constant(video_labels[videos]))
      total += float(loss) * len(videos)
      correct += float(right)
    history['loss'].append(total / len(unique))
    history['accuracy'].append(correct / len(unique))
  return history


def head_video_logits(head: keras.Model, inputs: Inputs, group_ids=None,
                      batch_size: int = 1024) -> Tuple[np.ndarray, np.ndarray]:
  """(sorted unique video ids, [n_videos, C] mean clip logits) of `head` in inference mode."""
  arrays = _as_arrays(inputs)
  n = arrays[0].shape[0]
  unique, segment = _groups(n, group_ids)
  logits = np.concatenate([np.asarray(head(_head_input(tuple(tf.constant(a[i:i + batch_size]) for a in arrays)),
                                           training=False), np.float64) for i in range(0, n, batch_size)])
  sums = np.zeros((len(unique), logits.shape[-1]))
  np.add.at(sums, segment, logits)
  return unique, sums / np.bincount(segment, minlength=len(unique))[:, np.newaxis]
