"""Evaluating A3C-family policies (thesis Sec. 2.5, T:L1129-1167; spec ch2 §2.7, §5): the test-time modes, the
value-variance helper, held-out episodes and the 3 runs x 10 seeds protocol with the thesis's tables beside.

Modes (`MODES`), for a batch of B observations:
  map        z = mu (NoisyNet: the mean weights), action argmax pi (T:L1154-1160);
  vote       N sampled activations; each sample's argmax pi^(i) votes and the most frequent action wins, ties
             broken by the highest mean probability (1/N) sum_i pi^(i) (T:L1160-1161: "vote the majority
             decision"; N = 5, Freeway 1, T:L1164-1167 and T:L1194-1195);
  mean_prob  N samples, argmax of the mean probability (1/N) sum_i pi^(i) (Table 2.3's caption says "averaging");
  sample     one sampled activation and an action drawn from its pi (the behaviour policy of training).
The encoder and the LSTM run once per step for any N: h_t does not depend on the sampled z (`a3c` docstring), so
only the heads run on N tiled copies of h_t (`sampled_heads`).

Noise at evaluation is drawn in NumPy from the evaluator's seeded generator (so an evaluation is reproducible),
anew at every step for every noise input (NoisyNet's weights too, when a NoisyNet model is voted; by default
NoisyNet models are evaluated with MAP).

Protocol (T:L1131-1146): each of 3 runs keeps its best-validated checkpoint; each is tested on the same 10 unseen
seeds (`config.test_seeds`), giving mu_i +- sigma_i (sigma over the 10 episodes, population std); Best is the run
with the largest mu_i (its mu_i +- sigma_i) and Avg is the mean +- population std of mu_1..3 (spec §5: the thesis
does not say which std). The thesis's Table 2.2, 2.G.1 and 2.E.1 numbers are kept verbatim (spec §12-18) in
`THESIS_*`.
"""

import dataclasses
import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from rlcv_tf.envs import registry
from rlcv_tf.stochastic_ac import a3c
from rlcv_tf.stochastic_ac import config as config_lib
from rlcv_tf.stochastic_ac import layers as layers_lib

MODES = ('map', 'vote', 'mean_prob', 'sample')


# ------------------------------------------------------------------------------------------------- decisions


def vote_actions(per_sample_logits) -> tf.Tensor:
  """Majority vote over N samples: logits [N, B, A] -> int32 [B].

  Each sample votes for its argmax; the action with the most votes wins; among actions with equally many votes,
  the one with the highest mean probability (1/N) sum_i softmax(logits_i) wins (an exact tie of both: the lowest
  index). Votes are integers and mean probabilities lie in [0, 1], so votes + mean / 2 orders by votes first.
  """
  logits = tf.convert_to_tensor(per_sample_logits)
  num_actions = tf.shape(logits)[-1]
  votes = tf.reduce_sum(tf.one_hot(tf.argmax(logits, axis=-1), num_actions, dtype=tf.float32), axis=0)
  mean_prob = tf.reduce_mean(tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1), axis=0)
  return tf.argmax(votes + 0.5 * mean_prob, axis=-1, output_type=tf.int32)


def mean_prob_actions(per_sample_logits) -> tf.Tensor:
  """argmax of the mean probability over N samples: logits [N, B, A] -> int32 [B]."""
  probs = tf.nn.softmax(tf.cast(per_sample_logits, tf.float32), axis=-1)
  return tf.argmax(tf.reduce_mean(probs, axis=0), axis=-1, output_type=tf.int32)


def value_variance(values, axis: int = 0) -> np.ndarray:
  """The unbiased sample variance of V over activation samples, (1/(N-1)) sum_i (V^(i) - mean V)^2 (thesis
  Sec. 2.6.2, Fig. 2.5); `values` [N, ...] with the samples on `axis`. Equals np.var(values, ddof=1)."""
  values = np.asarray(values, np.float64)
  n = values.shape[axis]
  if n < 2:
    raise ValueError(f'the value variance needs at least 2 samples, got {n}')
  centred = values - values.mean(axis=axis, keepdims=True)
  return (centred ** 2).sum(axis=axis) / (n - 1)


def value_variance_tf(values) -> tf.Tensor:
  """`value_variance` over axis 0 in TensorFlow: [N, ...] -> [...]."""
  values = tf.convert_to_tensor(values)
  n = tf.cast(tf.shape(values)[0], values.dtype)
  centred = values - tf.reduce_mean(values, axis=0, keepdims=True)
  return tf.reduce_sum(tf.square(centred), axis=0) / (n - 1.0)


def sampled_heads(model, h, num_samples: int, noise=None, z_prev=None):
  """The heads on N copies of the LSTM output h [B, units]: (logits [N, B, A], values [N, B], extras with a
  leading [N * B] axis). `noise` {name: [N * B, ...]} (sample-major: row n * B + b), or None: the layers draw
  their own per row. HPA3C's z_prev only enters the prior's KL, not the actions."""
  batch = h.shape[0] if h.shape[0] is not None else tf.shape(h)[0]
  tiled = tf.reshape(tf.tile(h[None], [num_samples, 1, 1]), [num_samples * batch, h.shape[-1]])
  if z_prev is not None:
    z_prev = tf.reshape(tf.tile(z_prev[None], [num_samples, 1, 1]), [num_samples * batch, z_prev.shape[-1]])
  logits, values, extras = model.head(tiled, noise, z_prev, 'sample')
  logits = tf.reshape(logits, [num_samples, batch, -1])
  values = tf.reshape(values, [num_samples, batch])
  return logits, values, extras


class EvalPolicy:
  """A NumPy policy for evaluation: `actions, new_state, info = policy(observations [B, ...], state, first [B])`.

  `state` is the network's {'h', 'c'(, 'z_prev')} as NumPy arrays (`initial_state(B)`); `first` marks episode
  starts (their state is zeroed first). `info` has 'values' [N, B] (MAP: [1, B]) and 'logits' [N, B, A].
  """

  def __init__(self, model, mode: str = 'vote', num_samples: int = 5, seed: int = 0):
    if mode not in MODES:
      raise ValueError(f'mode: unknown value {mode!r}; valid values: {", ".join(MODES)}')
    if int(num_samples) < 1:
      raise ValueError(f'num_samples: must be >= 1, got {num_samples}')
    self.model = model
    self.mode = mode
    self.num_samples = 1 if mode in ('map', 'sample') else int(num_samples)
    self.rng = np.random.default_rng(seed)
    self.specs = model.noise_specs()
    self._decide = tf.function(self._decide_impl)

  def initial_state(self, batch: int) -> Dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in self.model.initial_state(batch).items()}

  def _decide_impl(self, observation, state, first, noise, gumbel):
    h, new_state = self.model.core(observation, state, first)
    if self.mode == 'map':
      logits, value, extras = self.model.head(h, None, None, 'map')
      logits, values = logits[None], value[None]
      actions = tf.argmax(logits[0], axis=-1, output_type=tf.int32)
    else:
      logits, values, extras = sampled_heads(self.model, h, self.num_samples, noise)
      if self.mode == 'vote':
        actions = vote_actions(logits)
      elif self.mode == 'mean_prob':
        actions = mean_prob_actions(logits)
      else:
        actions = tf.argmax(logits[0] + gumbel, axis=-1, output_type=tf.int32)
    if 'z_prev' in state:
      batch = tf.shape(h)[0]
      new_state['z_prev'] = extras['z'][:batch]
    return actions, new_state, values, logits

  def __call__(self, observation, state, first):
    observation = np.asarray(observation, np.float32)
    batch = observation.shape[0]
    noise = {}
    if self.mode != 'map':
      noise = layers_lib.draw_noise(self.specs, self.num_samples * batch, self.rng)
    gumbel = np.zeros((batch, self.model.config.num_actions), np.float32)
    if self.mode == 'sample':
      gumbel = self.rng.gumbel(size=gumbel.shape).astype(np.float32)
    actions, new_state, values, logits = self._decide(observation, state, np.asarray(first, bool), noise, gumbel)
    return (actions.numpy(), {k: v.numpy() for k, v in new_state.items()},
            {'values': values.numpy(), 'logits': logits.numpy()})


# --------------------------------------------------------------------------------------------------- episodes


@dataclasses.dataclass
class EpisodeResult:
  seed: int
  score: float          # raw game score (sum of unclipped rewards)
  steps: int            # agent steps
  frames: int           # emulator frames
  cut: bool             # stopped by `max_steps` before the episode ended (score so far)


def run_episodes(policy: Callable, env_name: str, seeds: Sequence[int], max_steps: int = 0,
                 env_kwargs: Optional[Mapping[str, Any]] = None) -> List[EpisodeResult]:
  """One episode per seed, the environments stepped in lock-step and decided in one batch per step.

  `policy` is an `EvalPolicy` (or any callable with its contract and an `initial_state(B)`). `max_steps` > 0 cuts
  episodes longer than that many agent steps (the result says so); 0 plays to the episode's end (ALE's frame
  cap for Atari). Environments are built here from the registry, each with its seed.
  """
  envs = [registry.make_env(env_name, seed=int(s), **dict(env_kwargs or {})) for s in seeds]
  try:
    batch = len(envs)
    observations = np.stack([env.reset().observation[0] for env in envs])
    state = policy.initial_state(batch)
    first = np.ones(batch, bool)
    done = np.zeros(batch, bool)
    results: List[Optional[EpisodeResult]] = [None] * batch
    steps = 0
    while not done.all():
      actions, state, _ = policy(observations, state, first)
      first = np.zeros(batch, bool)
      steps += 1
      for i, env in enumerate(envs):
        if done[i]:
          continue
        action = np.asarray(actions[i])[None]
        ts = env.step(action)
        observations[i] = ts.observation[0]
        if ts.last() or (max_steps and steps >= max_steps):
          info = env.episode_info()
          results[i] = EpisodeResult(int(seeds[i]), float(info.get('score', np.nan)), int(info.get('steps', steps)),
                                     int(info.get('frames', 0)), cut=not ts.last())
          done[i] = True
    return list(results)
  finally:
    for env in envs:
      env.close()


# --------------------------------------------------------------------------------------------------- protocol


def run_summary(scores: Sequence[float]) -> Tuple[float, float]:
  """(mean, population std) of one run's test scores: its mu_i +- sigma_i."""
  scores = np.asarray(scores, np.float64)
  return float(scores.mean()), float(scores.std())


def protocol(run_scores: Sequence[Sequence[float]]) -> Dict[str, Any]:
  """The thesis's Best / Avg over runs (module docstring): {'best': (mu, sigma), 'best_run': i, 'avg': (mu,
  sigma), 'runs': [(mu_i, sigma_i), ...]}."""
  if not run_scores:
    raise ValueError('protocol needs at least one run')
  runs = [run_summary(s) for s in run_scores]
  means = np.array([m for m, _ in runs])
  best = int(np.argmax(means))
  return {'best': runs[best], 'best_run': best, 'avg': (float(means.mean()), float(means.std())), 'runs': runs}


def format_score(mean: float, std: float) -> str:
  digits = 1 if abs(mean) < 1000 else 0
  return f'{mean:.{digits}f}±{std:.{digits}f}'


# Table 2.2 (T:L1454-1507), verbatim: Best / Avg. of the thesis's protocol, vote over 5 samples (Freeway 1).
_T22_GAMES = ('seaquest', 'beam_rider', 'ms_pacman', 'boxing', 'breakout', 'qbert', 'freeway')
_T22 = {
    'a3c': (('13922±4920', '6785±5050'), ('9214±608', '8723±627'), ('4670±1864', '3973±543'),
            ('100±0.0', '99.7±0.2'), ('588±180', '560±22'), ('15333±2462', '14732±482'), ('23.3±1.2', '22.8±0.7')),
    'sa3c': (('28876±4270', '23411±4783'), ('9994±3717', '8966±1013'), ('4960±1639', '4743±220'),
             ('100±0.0', '99.9±0.0'), ('621±194', '556±45'), ('15560±184', '15365±150'), ('22.4±1.1', '21.6±0.5')),
    'nn_a3c': (('849±313', '1332±367'), ('6117±1808', '5838±287'), ('4096±1351', '3705±297'),
               ('94±4.4', '11.6±59.6'), ('570±252', '551±25'), ('14352±1335', '11231±3348'), ('22.4±0.8', '21.5±0.6')),
}
THESIS_TABLE_2_2 = {game: {model: {'best': rows[i][0], 'avg': rows[i][1]} for model, rows in _T22.items()}
                    for i, game in enumerate(_T22_GAMES)}
# Table 2.2, last column: the optimal stochastic-activation model per game.
THESIS_TABLE_2_2_OPTIMAL = {
    'seaquest': ('hpa3c', '29656±5317', '24992±3356'), 'beam_rider': ('fsa3c', '13779±3605', '10551±2341'),
    'ms_pacman': ('fsa3c', '5590±1521', '5382±268'), 'boxing': ('hpa3c', '100.0±0.0', '99.6±0.23'),
    'breakout': ('hpa3c', '596±197', '569±22'), 'qbert': ('hpa3c', '16045±556', '15365±150'),
    'freeway': ('hpa3c', '23.9±1.3', '23.2±0.5'),
}
for _game, (_model, _best, _avg) in THESIS_TABLE_2_2_OPTIMAL.items():
  THESIS_TABLE_2_2[_game][_model] = {'best': _best, 'avg': _avg}

# Table 2.G.1 (T:L1810-1843) and Table 2.E.1 (dropout units, T:L1670-1681), verbatim: 10 random-seeded games per
# mode ('map' or the number of voted samples), one mu +- sigma per game.
_G1 = {
    ('sa3c', 'map'): ('27695±9096', '9970±3428', '4816±1569', '99.4±1.2', '497±139', '15530±480', '22.4±1.1'),
    ('sa3c', 1): ('27081±6817', '9648±2623', '4819±1569', '99.5±0.8', '524±180', '15330±146', '22.4±1.1'),
    ('sa3c', 5): ('28876±4270', '9319±2125', '4830±1595', '99.2±1.6', '493±135', '15570±462', '21.3±0.6'),
    ('sa3c', 50): ('28341±9839', '10540±3176', '5096±1283', '99.9±0.3', '552±162', '15530±480', '21.2±0.6'),
    ('fsa3c', 'map'): ('4287±171', '11105±3402', '5590±1521', '99.4±1.0', '409±14', '14095±1762', '21.2±2.3'),
    ('fsa3c', 1): ('5090±1099', '10108±2858', '4464±1638', '98.7±2.0', '422±27', '14592±1943', '24.2±0.6'),
    ('fsa3c', 5): ('4453±592', '13779±3650', '5304±1920', '99.6±0.8', '412±18', '14017±1935', '21.2±0.6'),
    ('fsa3c', 50): ('4794±523', '9401±2207', '3988±1697', '99.4±1.8', '423±89', '14412±1652', '21.3±0.6'),
    ('hpa3c', 'map'): ('25474±8067', '3349±2171', '4515±2116', '98.9±1.4', '437±197', '15302±2535', '21.2±0.6'),
    ('hpa3c', 1): ('24475±4765', '4338±3017', '4287±1765', '99.6±1.2', '564±167', '13160±147', '23.9±1.3'),
    ('hpa3c', 5): ('29656±5317', '4951±2171', '4131±1345', '100±0.0', '596±197', '12035±4306', '21.3±0.6'),
    ('hpa3c', 50): ('28341±9839', '5278±2234', '3988±1697', '99.2±1.6', '378±192', '12030±4923', '21.2±0.6'),
    ('dropout_sa3c', 'map'): ('24601±4614', '9886±1936', '3665±1942', '99.7±0.9', '427±19', '14772±2257',
                              '21.7±2.3'),
    ('dropout_sa3c', 1): ('18749±6386', '7331±1135', '3368±1540', '99.5±1.2', '410±30', '13535±2886', '5.1±1.1'),
    ('dropout_sa3c', 5): ('26550±8240', '7826±1519', '3344±1788', '100.0±0.0', '495±152', '14772±1033',
                          '10.2±1.0'),
    ('dropout_sa3c', 50): ('24552±6911', '8580±1824', '4267±1962', '99.9±0.3', '448±159', '15227±290',
                           '19.8±0.9'),
}
THESIS_TABLE_2_G_1 = {game: {key: row[i] for key, row in _G1.items()} for i, game in enumerate(_T22_GAMES)}


def thesis_numbers(env: str, model: str, mode: str, num_samples: int) -> Dict[str, str]:
  """The thesis's numbers for this game, model and mode: 'best' / 'avg' (Table 2.2) and 'ten_seeds' (Tables 2.G.1
  and 2.E.1), where the thesis has them; {} otherwise (e.g. cartpole_masked)."""
  game = env[len('atari_'):] if env.startswith('atari_') else env
  out = {}
  row = THESIS_TABLE_2_2.get(game, {}).get(model)
  if row:
    out.update(best=row['best'], avg=row['avg'], source='Table 2.2')
  key = 'map' if mode == 'map' else (num_samples if mode == 'vote' else None)
  ten = THESIS_TABLE_2_G_1.get(game, {}).get((model, key))
  if ten:
    out['ten_seeds'] = ten
    out['ten_seeds_source'] = 'Table 2.E.1' if model == 'dropout_sa3c' else 'Table 2.G.1'
  return out


def format_protocol_table(env: str, model: str, mode: str, num_samples: int, result: Dict[str, Any]) -> str:
  """A Markdown table of a protocol result beside the thesis's numbers for the same game, model and mode."""
  thesis = thesis_numbers(env, model, mode, num_samples)
  mode_name = f'vote-{num_samples}' if mode == 'vote' else (f'mean_prob-{num_samples}' if mode == 'mean_prob'
                                                             else mode)
  runs = ', '.join(format_score(m, s) for m, s in result['runs'])
  lines = [
      '| env | model | mode | runs | Best | Avg. | thesis Best | thesis Avg. | thesis 10 seeds |',
      '|---|---|---|---|---|---|---|---|---|',
      f'| {env} | {model} | {mode_name} | {runs} | {format_score(*result["best"])} | {format_score(*result["avg"])} '
      f'| {thesis.get("best", "-")} | {thesis.get("avg", "-")} | {thesis.get("ten_seeds", "-")} |',
  ]
  sources = [s for s in (thesis.get('source'), thesis.get('ten_seeds_source')) if s]
  if sources:
    lines.append(f'\nThesis numbers from {" and ".join(sources)} (verbatim; 150K iterations x 64 agents per run).')
  return '\n'.join(lines)


# ------------------------------------------------------------------------------------------------ trained runs


class NoCheckpointError(ValueError):
  """A logdir holds no A3C-family run or no checkpoint to evaluate."""


def env_layout(env: str) -> Tuple[Tuple[int, ...], int]:
  """(observation shape without the agent axis, number of actions) of a Chapter 2 environment (builds one)."""
  layout = registry.probe(env)
  return layout.observation_shape, layout.num_actions


def build_model(cfg: config_lib.StochasticACConfig, observation_shape, num_actions: int) -> a3c.ActorCriticLSTM:
  """The run's network (built, freshly initialised)."""
  return a3c.MODELS[cfg.model](num_actions, tuple(observation_shape), **cfg.network_kwargs())


def find_checkpoint(logdir: str, which: str = 'best') -> Tuple[config_lib.StochasticACConfig, str]:
  """(config, checkpoint path) of a trained A3C-family run: `which` 'best' (the best-validated weights in
  `<logdir>/best`, or the latest checkpoint when the run never validated) or 'latest'. Raises NoCheckpointError
  (one line) when there is nothing to load. No TensorFlow graph work: cheap enough for a launcher's checks."""
  if which not in ('best', 'latest'):
    raise ValueError(f'which: unknown value {which!r}; valid values: best, latest')
  try:
    cfg = config_lib.check_trained_run(logdir)
  except ValueError as e:
    raise NoCheckpointError(str(e)) from None
  latest = tf.train.latest_checkpoint(os.path.join(logdir, 'checkpoints'))
  best = os.path.join(logdir, 'best', 'ckpt')
  path = best if which == 'best' and os.path.exists(best + '.index') else latest
  if not path:
    raise NoCheckpointError(f'{logdir} holds no checkpoint yet ({os.path.join(logdir, "checkpoints")} is empty); '
                            'train longer or wait for the run\'s first checkpoint')
  return cfg, path


def load_run(logdir: str, which: str = 'best') -> Tuple[config_lib.StochasticACConfig, a3c.ActorCriticLSTM, str]:
  """(config, network with the checkpoint's weights, checkpoint path); see `find_checkpoint`."""
  cfg, path = find_checkpoint(logdir, which)
  observation_shape, num_actions = env_layout(cfg.env)
  model = build_model(cfg, observation_shape, num_actions)
  tf.train.Checkpoint(model=model).read(path).assert_existing_objects_matched().expect_partial()
  return cfg, model, path


def evaluate_runs(logdirs: Sequence[str], mode: str = '', num_samples: int = 0, episodes: int = 10,
                  which: str = 'best', max_steps: Optional[int] = None, seed: int = 0,
                  print_fn: Callable[[str], None] = print) -> Dict[str, Any]:
  """The protocol (module docstring) over the runs in `logdirs` (the thesis: 3), each tested on the same
  `episodes` unseen seeds (`config.test_seeds`). `mode` / `num_samples` / `max_steps` default to the first run's
  (its `resolved_eval_mode`, `num_samples`, `eval_max_steps`). Returns a JSON-ready dict with the per-run scores,
  Best / Avg., the thesis's numbers and a Markdown `table`."""
  found = [find_checkpoint(d, which) for d in logdirs]
  first = found[0][0]
  for d, (cfg, _) in zip(logdirs, found):
    if (cfg.env, cfg.model) != (first.env, first.model):
      raise ValueError(f'runs: {d} is {cfg.env} / {cfg.model}, but {logdirs[0]} is {first.env} / {first.model}; '
                       'the protocol compares runs of one game and model')
  mode = mode or first.resolved_eval_mode
  num_samples = num_samples or first.num_samples
  max_steps = first.eval_max_steps if max_steps is None else max_steps
  seeds = config_lib.test_seeds(episodes)
  per_run = []
  for d in logdirs:
    cfg, model, path = load_run(d, which)
    policy = EvalPolicy(model, mode, num_samples, seed=seed)
    results = run_episodes(policy, cfg.env, seeds, max_steps=max_steps)
    scores = [r.score for r in results]
    mean, std = run_summary(scores)
    print_fn(f'[stochastic_ac_eval] {d} ({os.path.basename(path)}): {format_score(mean, std)} over {len(scores)} '
             f'unseen seeds{f" ({sum(r.cut for r in results)} cut at {max_steps} steps)" if max_steps else ""}')
    per_run.append({'logdir': d, 'checkpoint': path, 'scores': scores, 'mean': mean, 'std': std,
                    'cut': sum(r.cut for r in results), 'steps': [r.steps for r in results]})
  result = protocol([r['scores'] for r in per_run])
  return {
      'env': first.env, 'model': first.model, 'mode': mode, 'num_samples': num_samples, 'max_steps': max_steps,
      'seeds': list(seeds), 'runs': per_run, 'best': result['best'], 'best_run': result['best_run'],
      'avg': result['avg'], 'thesis': thesis_numbers(first.env, first.model, mode, num_samples),
      'table': format_protocol_table(first.env, first.model, mode, num_samples, result),
  }
