"""SavedModel export of a trained Chapter 7 video model (issue 13 §5; thesis 7.4, spec ch7 §3.7 and §5 (e)).

`export_model(models, config, path)` writes one SavedModel (atomically, `core.runs.write_saved_model`) that plain
TensorFlow serves without this package: `tf.saved_model.load(path)` needs no rlcv_tf import. It holds the five models
of `models.build_models` (g_enc / g_dec, the BlockSTN, Enc_v, f_enc / f_dec, f_auto) and every endpoint runs them in
inference mode (`training=False`: batch-norm moving statistics). Shapes: b is any batch size (None in every signature),
T = config.num_frames, H x W x C = config.frame_shape, h x w x c = config.latent_shape; pixels are float32 in [0, 1]
(sigmoid configs, MMNIST) or [-1, 1] (tanh configs, Weizmann / RAVDESS), as `config.output_activation` says.

  encode(video [b, T, H, W, C]) -> {statics [b, h, w, c], dynamics [b, dim P]}       (`serving_default`)
        (S, P) = Enc_v(V), the statics / dynamics decomposition (7.4.2).
  frame_dynamics(video [b, T, H, W, C], statics [b, h, w, c]) -> {p [b, T, dim p]}
        p_t = f_enc(x_t, S) for every frame (7.4.3).
  decode_statics(statics [b, h, w, c]) -> {images [b, H, W, C]}: g_dec(S), the picture of the statics.
  compose(statics [b, h, w, c], p [b, T', dim p]) -> {video [b, T', H, W, C]}: f_dec(p_t, S) per t; with p from one
        video and S from another this is the swap of 7.5 (the time length T' is free).
  predict(dynamics [b, dim P], p1 [b, dim p]) -> {p_hat [b, T - 1, dim p]}: the open-loop predictor f_auto(P, p1),
        whose step t predicts p_{t+2} (7.4.3; no true p_2..p_T are inputs).
  encode_frames(frames [b, H, W, C]) -> {latents [b, h, w, c]}: s = g_enc(x) of the transformation module.
  transform(source [b, h, w, c], target [b, h, w, c]) -> {warped [b, h, w, c], theta [b, K, 2, 3]}: T(s_i, s_j),
        block k of `source` warped by theta[:, k] (7.4.1).
  config() -> {config_json}: the VideoConfig as JSON (also the string variable `config_json` of the loaded object);
        `exported_config(loaded)` rebuilds the VideoConfig, so `models.build_models(exported_config(loaded))` gives
        the same architecture to load a checkpoint into.

Serving, from a shell (the TensorFlow pip package ships `saved_model_cli`):
  saved_model_cli show --dir <logdir>/saved_model --all
  saved_model_cli run --dir <logdir>/saved_model --tag_set serve --signature_def serving_default \
      --input_exprs 'video=np.zeros((1, 8, 64, 64, 1), np.float32)'
and from Python: `m = tf.saved_model.load(path); out = m.encode(video)` (or `m.signatures['encode'](video=video)`).

[proposal] beyond the issue's four endpoints: predict, encode_frames, transform and config, so that every trained
part of both stages can be used from the SavedModel alone.
"""

from typing import Dict

import tensorflow as tf

from rlcv_tf.core import runs
from rlcv_tf.video import presets

MODEL_NAMES = ('frame_autoencoder', 'block_stn', 'video_encoder', 'frame_dynamics', 'predictor')
SIGNATURES = ('encode', 'frame_dynamics', 'decode_statics', 'compose', 'predict', 'encode_frames', 'transform',
              'config')


def _latent_spec(config: presets.VideoConfig, name: str) -> tf.TensorSpec:
  return tf.TensorSpec((None,) + tuple(config.latent_shape), tf.float32, name=name)


class _ExportModule(tf.Module):
  """What every exported module holds: the models' variables (BN moving statistics included), not the Keras models
  themselves (a Keras model held as an attribute would be saved with Keras's own default signatures, which do not
  fit two-input models); the config as the string variable `config_json`; and the endpoint config()."""

  def __init__(self, name: str, variables, config: presets.VideoConfig):
    super().__init__(name=name)
    self._all_variables = list(variables)
    text = config.to_json()
    self.config_json = tf.Variable(text, trainable=False, dtype=tf.string, name='config_json')

    @tf.function(input_signature=[])
    def config_fn():
      return {'config_json': tf.constant(text)}

    self.config = config_fn

  def save(self, path: str) -> str:
    """Writes the module with `signatures()` as a SavedModel at `path` (atomically: `runs.write_saved_model`)."""
    return runs.write_saved_model(path, lambda tmp: tf.saved_model.save(self, tmp, signatures=self.signatures()))


def _stage1_endpoints(autoencoder, stn_model, config: presets.VideoConfig):
  """(encode_frames, transform) of the transformation module, inference mode (module docstring)."""
  frames = tf.TensorSpec((None,) + tuple(config.frame_shape), tf.float32, name='frames')

  @tf.function(input_signature=[frames])
  def encode_frames(frames):
    return {'latents': autoencoder.encode(frames, training=False)}

  @tf.function(input_signature=[_latent_spec(config, 'source'), _latent_spec(config, 'target')])
  def transform(source, target):
    warped, theta = stn_model(source, target)
    return {'warped': warped, 'theta': theta}

  return encode_frames, transform


class _VideoModule(_ExportModule):
  """The five models of one config and inference-mode tf.functions over them (module docstring)."""

  def __init__(self, models: Dict[str, object], config: presets.VideoConfig):
    super().__init__('video_model', [v for name in MODEL_NAMES for v in models[name].variables], config)
    ae, stn_model, enc_v = models['frame_autoencoder'], models['block_stn'], models['video_encoder']
    dyn, predictor = models['frame_dynamics'], models['predictor']
    steps = config.num_frames - 1
    video = tf.TensorSpec((None,) + tuple(config.video_shape), tf.float32, name='video')

    @tf.function(input_signature=[video])
    def encode(video):
      statics, dynamics = enc_v(video, training=False)
      return {'statics': statics, 'dynamics': dynamics}

    @tf.function(input_signature=[video, _latent_spec(config, 'statics')])
    def frame_dynamics(video, statics):
      return {'p': dyn.encode_video(video, statics, training=False)}

    @tf.function(input_signature=[_latent_spec(config, 'statics')])
    def decode_statics(statics):
      return {'images': ae.decode(statics, training=False)}

    @tf.function(input_signature=[_latent_spec(config, 'statics'),
                                  tf.TensorSpec((None, None, config.frame_code_dim), tf.float32, name='p')])
    def compose(statics, p):
      return {'video': dyn.decode_video(p, statics, training=False)}

    @tf.function(input_signature=[tf.TensorSpec((None, config.dynamics_dim), tf.float32, name='dynamics'),
                                  tf.TensorSpec((None, config.frame_code_dim), tf.float32, name='p1')])
    def predict(dynamics, p1):
      return {'p_hat': predictor(dynamics, p1, steps=steps, training=False)}

    self.encode, self.frame_dynamics = encode, frame_dynamics
    self.decode_statics, self.compose = decode_statics, compose
    self.predict = predict
    self.encode_frames, self.transform = _stage1_endpoints(ae, stn_model, config)

  def signatures(self) -> Dict[str, object]:
    out = {name: getattr(self, name) for name in SIGNATURES}
    out['serving_default'] = self.encode
    return out


def _check_models(models, config: presets.VideoConfig) -> None:
  if not isinstance(config, presets.VideoConfig):
    raise ValueError(f'config: expected a presets.VideoConfig, got {type(config).__name__}')
  config.validate()
  missing = [name for name in MODEL_NAMES if name not in models]
  if missing:
    raise ValueError(f'models: missing {missing}; pass the dict of models.build_models(config)')
  for name in MODEL_NAMES:
    if not models[name].variables:
      raise ValueError(f'models[{name!r}] has no variables yet; build it first (models.build_models does)')
  for name in ('frame_autoencoder', 'video_encoder', 'frame_dynamics'):
    own = getattr(models[name], 'config', None)
    if own is not None and own.to_dict() != config.to_dict():
      field = next(k for k, v in own.to_dict().items() if config.to_dict()[k] != v)
      raise ValueError(f'config: models[{name!r}] was built with config {field}={getattr(own, field)!r}, but config '
                       f'has {field}={getattr(config, field)!r}; pass the config the models were built with')


def export_model(models: Dict[str, object], config: presets.VideoConfig, path: str) -> str:
  """Writes the models of `config` (the dict of `models.build_models(config)`, trained) as one SavedModel at `path`
  (module docstring), replacing what was there only once the new one is complete; returns `path`."""
  _check_models(models, config)
  return _VideoModule(models, config).save(path)


def load_exported(path: str):
  """`tf.saved_model.load(path)`: the object with encode, frame_dynamics, decode_statics, compose, predict,
  encode_frames, transform, config and `signatures` (module docstring)."""
  return tf.saved_model.load(path)


def exported_config(loaded) -> presets.VideoConfig:
  """The VideoConfig an exported model was built with (from `load_exported(path)`)."""
  text = loaded.config()['config_json'].numpy().decode('utf-8')
  return presets.VideoConfig.from_json(text).validate()


# ------------------------------------------------------------------------------------- stage 1, baselines
STAGE1_SIGNATURES = ('encode_frames', 'decode', 'transform', 'config')


class _Stage1Module(_ExportModule):
  """A stage-1 run's transformation module alone: encode_frames (serving_default), decode, transform, config."""

  def __init__(self, autoencoder, stn_model, config: presets.VideoConfig):
    super().__init__('video_stage1', list(autoencoder.variables) + list(stn_model.variables), config)

    @tf.function(input_signature=[_latent_spec(config, 'latents')])
    def decode(latents):
      return {'images': autoencoder.decode(latents, training=False)}

    self.decode = decode
    self.encode_frames, self.transform = _stage1_endpoints(autoencoder, stn_model, config)

  def signatures(self) -> Dict[str, object]:
    out = {name: getattr(self, name) for name in STAGE1_SIGNATURES}
    out['serving_default'] = self.encode_frames
    return out


def export_stage1(autoencoder, stn_model, config: presets.VideoConfig, path: str) -> str:
  """The stage-1 module (g_enc, g_dec, T) as a SavedModel at `path`, inference mode:
    encode_frames(frames [b, H, W, C]) -> {latents}  (serving_default);  decode(latents) -> {images};
    transform(source, target) -> {warped, theta [b, K, 2, 3]};  config() -> {config_json}."""
  config.validate()
  if not (autoencoder.variables and stn_model.variables):
    raise ValueError('export_stage1: build the models first (models.build_models does)')
  return _Stage1Module(autoencoder, stn_model, config).save(path)


class _BaselineModule(_ExportModule):
  """A Table 7.1 baseline: features (the dim-P retrieval feature; serving_default) and logits (classifier) or
  reconstruct (autoencoder), inference mode."""

  def __init__(self, model, config: presets.VideoConfig, kind: str):
    super().__init__(f'video_{kind}', model.variables, config)
    video = tf.TensorSpec((None,) + tuple(config.video_shape), tf.float32, name='video')

    @tf.function(input_signature=[video])
    def features(video):
      return {'features': model.features(video, training=False)}

    @tf.function(input_signature=[video])
    def outputs(video):
      key = 'logits' if kind == 'classifier' else 'video'
      return {key: model(video, training=False)}

    self.features = features
    self.second_name = 'logits' if kind == 'classifier' else 'reconstruct'
    setattr(self, self.second_name, outputs)

  def signatures(self) -> Dict[str, object]:
    return {'serving_default': self.features, 'features': self.features,
            self.second_name: getattr(self, self.second_name), 'config': self.config}


def export_baseline(model, config: presets.VideoConfig, kind: str, path: str) -> str:
  """A baseline (`classifiers.SupervisedVideoClassifier` with kind 'classifier', `VideoAutoencoderBaseline` with
  'autoencoder') as a SavedModel: features(video) -> {features [b, dim P]} (serving_default), logits(video) ->
  {logits} or reconstruct(video) -> {video}, config() -> {config_json}."""
  if kind not in ('classifier', 'autoencoder'):
    raise ValueError(f'kind: got {kind!r}; valid values are classifier, autoencoder')
  return _BaselineModule(model, config, kind).save(path)
