"""Chapter 6 evaluation (rlcv_tf/acvae/evaluation.py; thesis Sec. 6.5.2, spec ch5_6 B1, B3): generations from the
test-set attribute vectors, the Table 6.3 accuracy table against a NumPy loop, and the identity inception score
against its closed form on hand-made probability matrices."""

import keras
import numpy as np
import pytest

from rlcv_tf.acvae import classifier
from rlcv_tf.acvae import evaluation
from rlcv_tf.acvae import networks
from rlcv_tf.acvae import presets


def pass_through(num_outputs):
  """A 'classifier' whose logits are the image's pixels: images [B, 1, 1, K] -> logits [B, K]."""
  inputs = keras.Input((1, 1, num_outputs))
  return keras.Model(inputs, keras.layers.Reshape((num_outputs,))(inputs))


def as_images(logits):
  return np.asarray(logits, np.float32)[:, None, None, :]


def closed_form_is(probs, splits):
  """exp(mean_x sum_y p(y|x) log(p(y|x) / p(y))) per contiguous split, p(y) the split's mean; (mean, std)."""
  scores = []
  for part in np.array_split(np.asarray(probs, np.float64), splits):
    marginal = part.mean(axis=0)
    total = 0.0
    for row in part:
      for p, m in zip(row, marginal):
        if p > 0:
          total += p * np.log(p / m)
    scores.append(np.exp(total / len(part)))
  return np.mean(scores), np.std(scores)


# ----------------------------------------------------------------------------------------------- inception score


def test_identity_is_of_uniform_predictions_is_one():
  k = 5
  images = as_images(np.zeros((40, k)))                 # softmax(0) = uniform
  mean, std = evaluation.identity_inception_score(pass_through(k), images)
  assert mean == pytest.approx(1.0, abs=1e-9) and std == pytest.approx(0.0, abs=1e-9)


def test_identity_is_of_distinct_one_hot_predictions_is_k():
  k, splits = 4, 10
  labels = np.tile(np.arange(k), splits)                # every contiguous split holds each identity once
  logits = np.where(np.eye(k)[labels] > 0, 0.0, -1e4)    # softmax = one-hot
  mean, std = evaluation.identity_inception_score(pass_through(k), as_images(logits), splits=splits,
                                                  shuffle_seed=None)
  assert mean == pytest.approx(k, rel=1e-9) and std == pytest.approx(0.0, abs=1e-9)


def test_identity_is_matches_the_closed_form_on_a_random_matrix():
  rng = np.random.default_rng(3)
  probs = rng.dirichlet(np.full(6, 0.3), size=53)
  mean, std = evaluation.identity_inception_score(pass_through(6), as_images(np.log(probs)), splits=10,
                                                  shuffle_seed=None)
  ref_mean, ref_std = closed_form_is(probs, 10)
  assert mean == pytest.approx(ref_mean, rel=1e-5) and std == pytest.approx(ref_std, rel=1e-4, abs=1e-6)
  # Random splits (the thesis): the closed form of the same rows permuted by the seed.
  mean, std = evaluation.identity_inception_score(pass_through(6), as_images(np.log(probs)), splits=10,
                                                  shuffle_seed=7)
  ref_mean, ref_std = closed_form_is(probs[np.random.default_rng(7).permutation(53)], 10)
  assert mean == pytest.approx(ref_mean, rel=1e-5) and std == pytest.approx(ref_std, rel=1e-4, abs=1e-6)


def test_train_identity_classifier_runs_and_scores():
  rng = np.random.default_rng(0)
  images = rng.uniform(-1, 1, (24, 28, 28, 3)).astype(np.float32)
  labels = rng.integers(0, 20, 24)
  model, accuracy = evaluation.train_identity_classifier((images[:16], labels[:16]), (images[16:], labels[16:]),
                                                         epochs=1, width=4, batch_size=8)
  assert model.output_shape == (None, 20)
  assert 0.0 <= accuracy <= 1.0
  mean, _ = evaluation.identity_inception_score(model, images, splits=2)
  assert 1.0 <= mean <= 20.0


# ----------------------------------------------------------------------------------------------- Table 6.3


def test_accuracy_table_matches_a_numpy_loop():
  rng = np.random.default_rng(1)
  names = ('Male', 'Smiling', 'Eyeglasses')
  real_attrs = rng.choice([-1.0, 1.0], (30, 3))
  real_logits = rng.normal(size=(30, 3))
  generated = {'cvaegan': as_images(rng.normal(size=(30, 3))), 'acvaegan': as_images(real_attrs * 2.0)}
  baseline = classifier.majority_baseline(rng.choice([-1.0, 1.0], (11, 3)), real_attrs)
  table = evaluation.attribute_accuracy_table(pass_through(3), as_images(real_logits), real_attrs, generated,
                                              real_attrs, names, baseline, batch_size=7)

  def loop(logits, attrs):
    hits = np.zeros(3)
    for i in range(len(attrs)):
      for j in range(3):
        hits[j] += (1.0 if logits[i, j] > 0 else -1.0) == attrs[i, j]
    return hits / len(attrs)

  assert list(table.rows) == ['real', 'cvaegan', 'acvaegan']
  np.testing.assert_allclose(table.rows['real'], loop(real_logits, real_attrs))
  np.testing.assert_allclose(table.rows['cvaegan'], loop(generated['cvaegan'][:, 0, 0], real_attrs))
  np.testing.assert_allclose(table.rows['acvaegan'], [1.0, 1.0, 1.0])
  np.testing.assert_allclose(table.baseline, baseline)
  text = table.markdown()
  assert text.splitlines()[0] == '| attribute | majority baseline | real | cvaegan | acvaegan |'
  assert f'{100 * loop(real_logits, real_attrs).mean():.2f}' in text.splitlines()[-1]
  assert table.to_dict()['mean']['acvaegan'] == pytest.approx(1.0)
  with pytest.raises(ValueError, match='one generation per vector'):
    evaluation.attribute_accuracy_table(pass_through(3), as_images(real_logits), real_attrs,
                                        {'cvae': as_images(real_logits[:5])}, real_attrs, names)
  with pytest.raises(ValueError, match="'real'"):
    evaluation.attribute_accuracy_table(pass_through(3), as_images(real_logits), real_attrs,
                                        {'real': as_images(real_logits)}, real_attrs, names)


# ----------------------------------------------------------------------------------------------- generation


@pytest.fixture(name='vae', scope='module')
def fixture_vae():
  vae, _ = networks.build_models(presets.get_preset('tiny_acvaegan'))
  return vae


def test_generation_is_z_from_the_conditional_prior_one_per_vector(vae):
  rng = np.random.default_rng(4)
  attrs = rng.choice([-1.0, 1.0], (7, vae.num_attributes)).astype(np.float32)
  images = evaluation.generate_for_attributes(vae, attrs, batch_size=3, seed=11)
  assert images.shape == (7,) + tuple(vae.image_shape)
  assert np.abs(images).max() <= 1.0
  # The reference: z = mu_p(a) + exp(logvar_p(a) / 2) * eps with eps from the seeded generator, all at once.
  mu_p, logvar_p = (np.asarray(t) for t in vae.prior_params(attrs))
  eps = np.random.default_rng(11).standard_normal(mu_p.shape).astype(np.float32)
  expected = np.asarray(vae.decode(mu_p + np.exp(0.5 * logvar_p) * eps, attrs)[1])
  scale = np.abs(expected).max()                         # an untrained decoder's outputs are small
  np.testing.assert_allclose(images, expected, rtol=1e-4, atol=1e-4 * scale)
  # Same seed, same images (up to batching round-off); another seed, other images.
  np.testing.assert_allclose(evaluation.generate_for_attributes(vae, attrs, batch_size=7, seed=11), images,
                             rtol=1e-4, atol=1e-4 * scale)
  assert np.abs(evaluation.generate_for_attributes(vae, attrs, seed=12) - images).max() > 0.1 * scale
  with pytest.raises(ValueError, match='attributes'):
    evaluation.generate_for_attributes(vae, attrs[:, :2])
