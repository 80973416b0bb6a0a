"""Chapter 2 evaluation (issue 10 §4, §6; spec ch2 §5, §11 items 14, 15, 21): the vote rule against a slow reference
written from the thesis's wording, mean_prob, the value-variance helper against np.var(ddof=1), the encoder and
LSTM running once per step for any N, the protocol's Best / Avg. arithmetic, the thesis tables, and held-out
episodes on the real cartpole_masked engine."""

import numpy as np
import pytest
import tensorflow as tf

from rlcv_tf.stochastic_ac import a3c
from rlcv_tf.stochastic_ac import config as config_lib
from rlcv_tf.stochastic_ac import evaluation

SMALL = dict(encoder='mlp', mlp_units=(12,), lstm_units=16, fc_units=8)


def _vote_reference(per_sample_logits):
  """Majority of the per-sample argmax; among the most-voted actions the highest mean probability (a Python loop)."""
  logits = np.asarray(per_sample_logits, np.float64)
  n, b, a = logits.shape
  probs = np.exp(logits - logits.max(-1, keepdims=True))
  probs /= probs.sum(-1, keepdims=True)
  out = []
  for j in range(b):
    counts = {}
    for i in range(n):
      choice = int(np.argmax(logits[i, j]))
      counts[choice] = counts.get(choice, 0) + 1
    top = max(counts.values())
    tied = sorted(k for k, c in counts.items() if c == top)
    mean = probs[:, j].mean(0)
    best = tied[0]
    for k in tied[1:]:
      if mean[k] > mean[best]:
        best = k
    out.append(best)
  return np.array(out)


def _logits_choosing(choices, num_actions, rng, margin=3.0):
  """[N, 1, A] logits whose per-sample argmax are `choices`."""
  logits = rng.normal(size=(len(choices), 1, num_actions))
  for i, c in enumerate(choices):
    logits[i, 0, c] = logits[i, 0].max() + margin * rng.random() + 0.1
  return logits.astype(np.float32)


def test_vote_majority_ties_and_single_sample():
  rng = np.random.default_rng(0)
  # Spec §11-14: per-sample argmaxes [2, 2, 1, 3, 2] give 2.
  logits = _logits_choosing([2, 2, 1, 3, 2], 5, rng)
  assert evaluation.vote_actions(logits).numpy().tolist() == [2]
  # A tie [1, 1, 2, 2] goes to the higher mean probability: make action 2's samples much more confident.
  logits = np.full((4, 1, 4), -4.0, np.float32)
  logits[0, 0, 1] = logits[1, 0, 1] = 0.1     # votes for 1, barely
  logits[2, 0, 2] = logits[3, 0, 2] = 6.0     # votes for 2, confidently
  assert evaluation.vote_actions(logits).numpy().tolist() == [2]
  logits[[0, 1, 2, 3]] = logits[[2, 3, 0, 1]]  # same tie, other order: still 2
  assert evaluation.vote_actions(logits).numpy().tolist() == [2]
  # Swap the confidences: 1 wins.
  logits = np.full((4, 1, 4), -4.0, np.float32)
  logits[0, 0, 1] = logits[1, 0, 1] = 6.0
  logits[2, 0, 2] = logits[3, 0, 2] = 0.1
  assert evaluation.vote_actions(logits).numpy().tolist() == [1]
  # N = 1 is the sample's argmax.
  one = rng.normal(size=(1, 7, 6)).astype(np.float32)
  np.testing.assert_array_equal(evaluation.vote_actions(one).numpy(), one[0].argmax(-1))


def test_vote_matches_the_slow_reference_on_random_batches():
  rng = np.random.default_rng(1)
  for n in (1, 2, 4, 5, 50):
    logits = rng.normal(scale=0.7, size=(n, 64, 3)).astype(np.float32)   # 3 actions: many ties
    np.testing.assert_array_equal(evaluation.vote_actions(logits).numpy(), _vote_reference(logits))


def test_mean_prob_is_the_argmax_of_the_averaged_policy():
  rng = np.random.default_rng(2)
  logits = rng.normal(size=(5, 32, 6)).astype(np.float32)
  probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  np.testing.assert_array_equal(evaluation.mean_prob_actions(logits).numpy(), probs.mean(0).argmax(-1))
  # It can differ from the vote: 3 weak votes for 0 vs 2 confident ones for 1.
  logits = np.full((5, 1, 2), 0.0, np.float32)
  logits[:3, 0, 0] = 0.05
  logits[3:, 0, 1] = 5.0
  assert evaluation.vote_actions(logits).numpy().tolist() == [0]
  assert evaluation.mean_prob_actions(logits).numpy().tolist() == [1]


def test_value_variance_is_numpys_unbiased_variance():
  rng = np.random.default_rng(3)
  values = rng.normal(size=(5, 700)) * rng.random(700)
  np.testing.assert_allclose(evaluation.value_variance(values), np.var(values, axis=0, ddof=1), rtol=1e-12)
  np.testing.assert_allclose(evaluation.value_variance_tf(values.astype(np.float32)).numpy(),
                             np.var(values, axis=0, ddof=1), rtol=1e-4, atol=1e-7)
  np.testing.assert_allclose(evaluation.value_variance(values.T, axis=1), np.var(values.T, axis=1, ddof=1))
  assert evaluation.value_variance(np.ones((5, 3))).tolist() == [0.0, 0.0, 0.0]
  with pytest.raises(ValueError, match='at least 2 samples'):
    evaluation.value_variance(np.ones((1, 3)))


def test_value_variance_is_zero_in_map_and_without_noise_and_positive_with_it():
  model = a3c.build_network('sa3c', 3, (2, 1), **SMALL, log_var=0.0)
  h = tf.random.normal((4, 16))
  _, values, _ = evaluation.sampled_heads(model, h, 5)
  assert float(tf.reduce_min(evaluation.value_variance_tf(values))) > 0
  zero = {'z1': np.zeros((20, 8), np.float32)}
  _, values, _ = evaluation.sampled_heads(model, h, 5, zero)
  np.testing.assert_allclose(evaluation.value_variance_tf(values).numpy(), 0.0, atol=1e-10)
  policy = evaluation.EvalPolicy(model, 'map', 5)
  _, _, info = policy(np.zeros((4, 2, 1), np.float32), policy.initial_state(4), np.ones(4, bool))
  assert info['values'].shape == (1, 4)


@pytest.mark.parametrize('mode,n', [('map', 1), ('vote', 1), ('vote', 5), ('vote', 50), ('mean_prob', 5),
                                    ('sample', 1)])
def test_encoder_and_lstm_run_once_per_step_for_any_n(mode, n):
  """The encoder and the LSTM see B rows per step whatever N is; only the heads see N * B."""
  model = a3c.build_network('hpa3c', 4, (2, 1), **SMALL)
  seen = {}

  def spy(layer_name):
    layer = getattr(model, layer_name)
    original = layer.call

    def call(*args, **kwargs):
      seen.setdefault(layer_name, []).append(int(args[0].shape[0]))
      return original(*args, **kwargs)
    layer.call = call
  for name in ('encoder', 'lstm', 'policy'):
    spy(name)
  policy = evaluation.EvalPolicy(model, mode, n, seed=0)
  actions, state, info = policy(np.random.default_rng(0).normal(size=(3, 2, 1)).astype(np.float32),
                                policy.initial_state(3), np.ones(3, bool))
  assert seen['encoder'] == [3] and seen['lstm'] == [3]          # traced once, with B = 3 rows
  assert seen['policy'] == [3 * (n if mode in ('vote', 'mean_prob') else 1)]
  assert actions.shape == (3,) and set(state) == {'h', 'c', 'z_prev'}
  assert info['logits'].shape[:2] == ((n if mode in ('vote', 'mean_prob') else 1), 3)


def test_modes_agree_for_a_deterministic_network_and_sample_draws_from_pi():
  model = a3c.build_network('a3c', 3, (2, 1), **SMALL)
  model.policy.set_weights([w * 300.0 for w in model.policy.get_weights()])   # sharp policies
  obs = np.random.default_rng(4).normal(size=(16, 2, 1)).astype(np.float32)
  got = {}
  for mode in ('map', 'vote', 'mean_prob'):
    policy = evaluation.EvalPolicy(model, mode, 5)
    got[mode], _, _ = policy(obs, policy.initial_state(16), np.ones(16, bool))
  np.testing.assert_array_equal(got['map'], got['vote'])
  np.testing.assert_array_equal(got['map'], got['mean_prob'])
  # 'sample' draws a ~ pi: with a flat policy, all 3 actions appear over many rows.
  flat = a3c.build_network('a3c', 3, (2, 1), **SMALL)
  flat.policy.set_weights([np.zeros_like(w) for w in flat.policy.get_weights()])
  policy = evaluation.EvalPolicy(flat, 'sample', 1, seed=5)
  many = np.repeat(obs[:1], 300, axis=0)
  actions, _, _ = policy(many, policy.initial_state(300), np.ones(300, bool))
  counts = np.bincount(actions, minlength=3)
  assert counts.min() > 70, counts


def test_protocol_best_and_avg():
  # Spec §11-21: run means [10, 20, 30] with stds [1, 2, 3] -> Best 30 +- 3, Avg 20 +- 8.165 (ddof 0).
  runs = [[9.0, 11.0], [18.0, 22.0], [27.0, 33.0]]
  result = evaluation.protocol(runs)
  assert result['best'] == (30.0, 3.0) and result['best_run'] == 2
  np.testing.assert_allclose(result['avg'], (20.0, np.std([10.0, 20.0, 30.0])), rtol=1e-12)
  assert abs(result['avg'][1] - 8.165) < 1e-3
  assert evaluation.run_summary([1.0, 2.0, 3.0, 4.0]) == (2.5, float(np.std([1, 2, 3, 4])))


def test_thesis_tables_are_looked_up_by_game_model_and_mode():
  t = evaluation.thesis_numbers('atari_seaquest', 'sa3c', 'vote', 5)
  assert (t['best'], t['avg'], t['ten_seeds']) == ('28876±4270', '23411±4783', '28876±4270')
  assert evaluation.thesis_numbers('atari_seaquest', 'fsa3c', 'map', 5)['ten_seeds'] == '4287±171'  # Table 2.G.1
  assert evaluation.thesis_numbers('atari_boxing', 'nn_a3c', 'map', 5)['avg'] == '11.6±59.6'
  assert evaluation.thesis_numbers('atari_freeway', 'hpa3c', 'vote', 1)['best'] == '23.9±1.3'   # optimal model
  assert evaluation.thesis_numbers('atari_freeway', 'dropout_sa3c', 'vote', 1)['ten_seeds'] == '5.1±1.1'
  assert evaluation.thesis_numbers('cartpole_masked', 'sa3c', 'vote', 5) == {}
  table = evaluation.format_protocol_table('atari_qbert', 'sa3c', 'vote', 5, evaluation.protocol([[1.0, 3.0]]))
  assert '| atari_qbert | sa3c | vote-5 | 2.0±1.0 | 2.0±1.0 | 2.0±0.0 | 15560±184 | 15365±150 | 15570±462 |' in table


def test_run_episodes_plays_held_out_seeds_to_the_end_or_the_cut():
  model = a3c.build_network('sa3c', 2, (2, 1), **SMALL)
  seeds = config_lib.test_seeds(3)
  policy = evaluation.EvalPolicy(model, 'vote', 3, seed=0)
  results = evaluation.run_episodes(policy, 'cartpole_masked', seeds)
  assert [r.seed for r in results] == list(seeds)
  assert all(not r.cut and r.steps >= 1 and r.frames >= 2 * r.steps and r.score == r.frames for r in results)
  again = evaluation.run_episodes(evaluation.EvalPolicy(model, 'vote', 3, seed=0), 'cartpole_masked', seeds)
  assert [r.score for r in again] == [r.score for r in results]        # reproducible
  cut = evaluation.run_episodes(evaluation.EvalPolicy(model, 'map', 1), 'cartpole_masked', seeds, max_steps=2)
  assert all(r.steps <= 2 for r in cut) and any(r.cut for r in cut)
