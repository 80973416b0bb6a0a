"""Chapter 2 stochastic units against slow references (issue 10 §6; spec ch2 §11 items 1-3, 6-9).

* Prop. 1 (T:L1366-1380): 200k NumPy draws of Gaussian weights W = U + sigma E against
  StochasticDense(scale_by_input_norm=True): mean U^T X, variance sigma^2 ||X||^2, no covariance between units, a
  two-sample KS test per unit; with shared weight draws two inputs correlate (sigma^2 X1^T X2), with activation
  noise they do not.
* The factored Gaussian's log-prob and entropy against the NumPy formulas and Monte Carlo; HPA3C's KL against the
  thesis's closed form (T:L949-955), Monte Carlo, 0 at equal arguments, and its gradient in mu.
* The reparameterisation gradients with a fixed eps; NoisyDense's batched formula against per-row weight matrices
  built explicitly; CReLU; dropout units; the per-step and per-rollout noise schedules.
"""

import math

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

from rlcv_tf.stochastic_ac import layers


def _dense_layer(u, log_var, scale_by_input_norm):
  layer = layers.StochasticDense(u.shape[1], log_var=log_var, scale_by_input_norm=scale_by_input_norm,
                                 use_bias=False)
  layer.build((None, u.shape[0]))
  layer.kernel.assign(u.astype(np.float32))
  return layer


def _weight_draws(u, x, sigma, samples, rng, chunk=50_000):
  """Y = W^T X for `samples` independent W = U + sigma E (NumPy, float64), in chunks. x: [K, n] -> [samples, K, m]."""
  out = []
  for start in range(0, samples, chunk):
    e = rng.standard_normal((min(chunk, samples - start),) + u.shape)       # [S, n, m]
    w = u[None] + sigma * e
    out.append(np.einsum('snm,kn->skm', w, x))
  return np.concatenate(out)


def _check_moments(y, mean, var):
  """y: [S, m] samples; checks mean, per-unit variance and the off-diagonal covariance at ~5 standard errors."""
  s = y.shape[0]
  np.testing.assert_allclose(y.mean(0), mean, atol=5 * math.sqrt(var / s))
  np.testing.assert_allclose(y.var(0, ddof=1), var, rtol=5 * math.sqrt(2.0 / s))
  cov = np.cov(y, rowvar=False)
  off = cov[~np.eye(cov.shape[0], dtype=bool)]
  assert np.max(np.abs(off)) < 5 * var / math.sqrt(s), np.max(np.abs(off))


def test_prop1_weight_noise_equals_activation_noise():
  rng = np.random.default_rng(0)
  n, m, samples = 16, 8, 200_000
  sigma2 = math.exp(-4.0)
  u = rng.normal(size=(n, m))
  x = rng.normal(size=(n,))
  y_weights = _weight_draws(u, x[None], math.sqrt(sigma2), samples, rng)[:, 0]          # [S, m]
  expected_mean, expected_var = u.T @ x, sigma2 * float(x @ x)
  _check_moments(y_weights, expected_mean, expected_var)

  layer = _dense_layer(u, math.log(sigma2), scale_by_input_norm=True)
  tf.random.set_seed(1)
  y_act = layer(np.tile(x.astype(np.float32), (samples, 1))).numpy().astype(np.float64)
  _check_moments(y_act, expected_mean, expected_var)
  for i in range(m):
    assert scipy.stats.ks_2samp(y_weights[:, i], y_act[:, i]).pvalue > 0.01, i

  # Without the ||X||^2 scaling (the thesis's Atari setting) the variance is sigma^2, which differs here.
  plain = _dense_layer(u, math.log(sigma2), scale_by_input_norm=False)
  y_plain = plain(np.tile(x.astype(np.float32), (20_000, 1))).numpy()
  np.testing.assert_allclose(y_plain.var(0), sigma2, rtol=0.1)
  assert abs(float(x @ x) - 1.0) > 0.5


def test_prop1_shared_weights_correlate_inputs_activations_do_not():
  rng = np.random.default_rng(2)
  n, m, samples = 16, 8, 200_000
  sigma2 = math.exp(-4.0)
  u = rng.normal(size=(n, m))
  x1 = rng.normal(size=(n,))
  x2 = 0.7 * x1 + 0.3 * rng.normal(size=(n,))
  dot = float(x1 @ x2)
  y = _weight_draws(u, np.stack([x1, x2]), math.sqrt(sigma2), samples, rng)              # [S, 2, m]
  cov_w = np.array([np.cov(y[:, 0, i], y[:, 1, i])[0, 1] for i in range(m)])
  se = sigma2 * math.sqrt(float(x1 @ x1) * float(x2 @ x2)) * math.sqrt(2.0 / samples)
  np.testing.assert_allclose(cov_w, sigma2 * dot, atol=6 * se)
  assert sigma2 * dot > 20 * se                     # clearly non-zero

  layer = _dense_layer(u, math.log(sigma2), scale_by_input_norm=True)
  tf.random.set_seed(3)
  pair = np.tile(np.stack([x1, x2]).astype(np.float32)[None], (samples, 1, 1))           # [S, 2, n]
  ya = layer(pair).numpy().astype(np.float64)
  cov_a = np.array([np.cov(ya[:, 0, i], ya[:, 1, i])[0, 1] for i in range(m)])
  assert np.max(np.abs(cov_a)) < 6 * se, cov_a


def _np_log_prob(z, mean, std):
  return np.sum(-0.5 * np.log(2 * np.pi * std ** 2) - 0.5 * ((z - mean) / std) ** 2, axis=-1)


def _np_entropy(std):
  return np.sum(0.5 * np.log(2 * np.pi * np.e * std ** 2), axis=-1)


@pytest.mark.parametrize('learn_log_var', [False, True])
def test_factored_gaussian_log_prob_and_entropy(learn_log_var):
  rng = np.random.default_rng(4)
  layer = layers.StochasticDense(5, log_var=-2.0, learn_log_var=learn_log_var)
  x = rng.normal(size=(3, 6)).astype(np.float32)
  layer.build(x.shape)
  if learn_log_var:
    layer.log_var_kernel.assign(0.3 * rng.normal(size=(6, 5)).astype(np.float32))
  mean, std = (t.numpy().astype(np.float64) for t in layer.moments(x))
  if learn_log_var:
    expected_lv = np.clip(x @ layer.log_var_kernel.numpy() + layer.log_var_bias.numpy(), -12, 2)
    np.testing.assert_allclose(std, np.exp(0.5 * expected_lv), rtol=1e-5)
    assert np.ptp(std) > 0.1
  else:
    np.testing.assert_allclose(std, math.exp(-1.0), rtol=1e-6)
  np.testing.assert_allclose(mean, x @ layer.kernel.numpy() + layer.bias.numpy(), rtol=1e-5, atol=1e-6)

  dist = layer.distribution(x)
  z = rng.normal(size=(3, 5)).astype(np.float32)
  np.testing.assert_allclose(dist.log_prob(z).numpy(), _np_log_prob(z, mean, std), rtol=1e-5)
  np.testing.assert_allclose(dist.entropy().numpy(), _np_entropy(std), rtol=1e-5)

  # Monte Carlo with the layer's own samples: E[z] = mu, Var z = sigma^2, -E[log q(z)] = entropy.
  samples = 100_000
  tf.random.set_seed(5)
  zs = layer(np.repeat(x, samples, axis=0)).numpy().reshape(3, samples, 5).transpose(1, 0, 2).astype(np.float64)
  np.testing.assert_allclose(zs.mean(0), mean, atol=5 * std.max() / math.sqrt(samples))
  np.testing.assert_allclose(zs.var(0), std ** 2, rtol=0.03)
  mc_entropy = -_np_log_prob(zs, mean, std).mean(0)
  np.testing.assert_allclose(mc_entropy, _np_entropy(std), atol=5 * math.sqrt(2.5 / samples))


def _np_kl(mean, std, prior_mean, prior_std):
  """The thesis's closed form, element-wise (T:L949-955)."""
  return np.log(prior_std / std) + (std ** 2 + (mean - prior_mean) ** 2) / (2 * prior_std ** 2) - 0.5


def test_hpa3c_kl_closed_form_tfp_and_monte_carlo():
  rng = np.random.default_rng(6)
  prior = layers.HierarchicalPrior(4, prior_log_var=-4.0)
  mean = rng.normal(size=(2, 4)) * 0.2
  std = np.exp(0.5 * rng.uniform(-6, -2, size=(2, 4)))
  prior_mean = rng.normal(size=(2, 4)) * 0.2
  prior_std = math.exp(-2.0)
  kl = prior.kl(mean.astype(np.float32), std.astype(np.float32), prior_mean.astype(np.float32)).numpy()
  expected = _np_kl(mean, std, prior_mean, prior_std).sum(-1)
  np.testing.assert_allclose(kl, expected, rtol=1e-4)

  samples = 1_000_000
  z = mean + std * rng.standard_normal((samples,) + mean.shape)
  log_q = -0.5 * np.log(2 * np.pi * std ** 2) - 0.5 * ((z - mean) / std) ** 2
  log_p = -0.5 * np.log(2 * np.pi * prior_std ** 2) - 0.5 * ((z - prior_mean) / prior_std) ** 2
  terms = (log_q - log_p).sum(-1)
  np.testing.assert_allclose(terms.mean(0), expected, atol=5 * terms.std(0).max() / math.sqrt(samples))

  # 0 at equal arguments; d KL / d mu = (mu - mu_p) / sigma_p^2.
  same = prior.kl(prior_mean.astype(np.float32), np.full((2, 4), prior_std, np.float32),
                  prior_mean.astype(np.float32)).numpy()
  np.testing.assert_allclose(same, 0.0, atol=1e-5)
  mu = tf.Variable(mean)
  with tf.GradientTape() as tape:
    total = tf.reduce_sum(layers.gaussian_kl(mu, std, prior_mean, prior_std))
  np.testing.assert_allclose(tape.gradient(total, mu).numpy(), (mean - prior_mean) / prior_std ** 2, rtol=1e-6)


def test_hierarchical_prior_mean_is_linear_in_previous_sample():
  rng = np.random.default_rng(7)
  prior = layers.HierarchicalPrior(3, prior_log_var=-6.0)
  z_prev = rng.normal(size=(4, 3)).astype(np.float32)
  out = prior(z_prev).numpy()
  np.testing.assert_allclose(out, z_prev @ prior.kernel.numpy() + prior.bias.numpy(), rtol=1e-5, atol=1e-6)
  assert prior.prior_stddev == pytest.approx(math.exp(-3.0))


def test_reparameterisation_gradients_with_fixed_noise():
  rng = np.random.default_rng(8)
  layer = layers.StochasticDense(3, log_var=-1.0, learn_log_var=True, dtype='float64')
  x = rng.normal(size=(2, 4))
  eps = rng.normal(size=(2, 3))
  layer.build(x.shape)
  with tf.GradientTape(persistent=True) as tape:
    z, mean, std = layer(x, noise=eps, return_moments=True)
    total = tf.reduce_sum(z)
  # dz/d(log var bias) = 0.5 sigma eps (summed over the batch); dz/dmu = 1, i.e. d sum z / d bias = batch size.
  np.testing.assert_allclose(tape.gradient(total, layer.log_var_bias).numpy(),
                             (0.5 * std.numpy() * eps).sum(0), rtol=1e-10)
  np.testing.assert_allclose(tape.gradient(total, layer.bias).numpy(), np.full(3, 2.0), rtol=1e-12)
  # Central finite differences on the log-variance bias.
  h = 1e-5
  base = layer.log_var_bias.numpy().copy()
  grads = []
  for j in range(3):
    vals = []
    for sign in (1, -1):
      shifted = base.copy()
      shifted[j] += sign * h
      layer.log_var_bias.assign(shifted)
      vals.append(float(tf.reduce_sum(layer(x, noise=eps))))
    grads.append((vals[0] - vals[1]) / (2 * h))
  layer.log_var_bias.assign(base)
  np.testing.assert_allclose(grads, tape.gradient(total, layer.log_var_bias).numpy(), rtol=1e-3)


def test_map_mode_and_external_noise():
  rng = np.random.default_rng(9)
  layer = layers.StochasticDense(4, log_var=-2.0)
  x = rng.normal(size=(3, 5)).astype(np.float32)
  eps = rng.normal(size=(3, 4)).astype(np.float32)
  mean = layer(x, mode='map').numpy()
  np.testing.assert_allclose(layer(x, noise=eps).numpy(), mean + math.exp(-1.0) * eps, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(layer(x, noise=np.zeros_like(eps)).numpy(), mean)
  with pytest.raises(ValueError, match='mode'):
    layer(x, mode='vote')
  with pytest.raises(ValueError, match='finite'):
    layers.StochasticDense(4, log_var=float('nan'))


def _f(e):
  return np.sign(e) * np.sqrt(np.abs(e))


def _explicit_weights(layer, eps_in, eps_out):
  """One row's weights built entry by entry (float64): W_ij = mu_ij + sigma_ij f(eps_in_i) f(eps_out_j),
  b_j = mu_j + sigma_j f(eps_out_j) (Fortunato et al. 2017, factorised noise)."""
  mu_w, sigma_w = layer.kernel_mean.numpy(), layer.kernel_stddev.numpy()
  mu_b, sigma_b = layer.bias_mean.numpy(), layer.bias_stddev.numpy()
  p, q = mu_w.shape
  w = np.zeros((p, q))
  for i in range(p):
    for j in range(q):
      w[i, j] = mu_w[i, j] + sigma_w[i, j] * _f(float(eps_in[i])) * _f(float(eps_out[j]))
  b = np.array([mu_b[j] + sigma_b[j] * _f(float(eps_out[j])) for j in range(q)])
  return w, b


def test_noisy_dense_batched_equals_explicit_per_row_weights():
  rng = np.random.default_rng(10)
  p, q, batch = 7, 5, 6
  layer = layers.NoisyDense(q, sigma0=0.5)
  layer.build((None, p))
  bound = 1 / math.sqrt(p)
  assert np.all(np.abs(layer.kernel_mean.numpy()) <= bound) and np.all(np.abs(layer.bias_mean.numpy()) <= bound)
  np.testing.assert_allclose(layer.kernel_stddev.numpy(), 0.5 / math.sqrt(p), rtol=1e-6)
  np.testing.assert_allclose(layer.bias_stddev.numpy(), 0.5 / math.sqrt(p), rtol=1e-6)
  layer.kernel_stddev.assign(rng.uniform(0.1, 1.0, size=(p, q)).astype(np.float32))
  layer.bias_stddev.assign(rng.uniform(0.1, 1.0, size=(q,)).astype(np.float32))
  x = rng.normal(size=(batch, p)).astype(np.float32)
  eps_in = rng.normal(size=(batch, p)).astype(np.float32)
  eps_out = rng.normal(size=(batch, q)).astype(np.float32)
  y = layer(x, noise=(eps_in, eps_out)).numpy()
  for b in range(batch):
    w, bias = _explicit_weights(layer, eps_in[b], eps_out[b])
    np.testing.assert_allclose(y[b], x[b] @ w + bias, rtol=1e-5, atol=1e-5)
  # A shared (unbatched) noise gives every row the same weights; 'map' gives the mean weights.
  y_shared = layer(x, noise=(eps_in[0], eps_out[0])).numpy()
  w0, b0 = _explicit_weights(layer, eps_in[0], eps_out[0])
  np.testing.assert_allclose(y_shared, x @ w0 + b0, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(layer(x, mode='map').numpy(), x @ layer.kernel_mean.numpy() + layer.bias_mean.numpy(),
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(layers.factorised_noise_transform(np.array([-4.0, 0.0, 9.0])).numpy(), [-2, 0, 3])
  with tf.GradientTape() as tape:
    total = tf.reduce_sum(layer(x, noise=(eps_in, eps_out)))
  grads = tape.gradient(total, [layer.kernel_stddev, layer.bias_stddev])
  assert all(float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)


def test_crelu():
  x = np.array([[-2.0, 0.0, 3.0]], np.float32)
  y = layers.CReLU()(x).numpy()
  np.testing.assert_array_equal(y, [[0, 0, 3, 2, 0, 0]])
  np.testing.assert_array_equal(y[:, :3] - y[:, 3:], x)
  v = tf.Variable(np.zeros((1, 2), np.float32))
  with tf.GradientTape() as tape:
    total = tf.reduce_sum(layers.CReLU()(v))
  np.testing.assert_array_equal(tape.gradient(total, v).numpy(), [[0, 0]])


def test_dropout_units():
  rng = np.random.default_rng(11)
  drop = layers.DropoutUnits(0.25)
  x = np.ones((4000, 50), np.float32)
  u = rng.random(x.shape).astype(np.float32)
  y = drop(x, noise=u).numpy()
  np.testing.assert_array_equal(y, np.where(u >= 0.25, 1 / 0.75, 0.0).astype(np.float32))
  assert abs((y > 0).mean() - 0.75) < 0.005 and abs(y.mean() - 1.0) < 0.01
  np.testing.assert_array_equal(drop(x, noise=u, mode='map').numpy(), x)
  tf.random.set_seed(12)
  assert abs(float(tf.reduce_mean(tf.cast(drop(x) > 0, tf.float32))) - 0.75) < 0.005


def test_noise_schedules():
  specs = {'z1': layers.NoiseSpec((3,), 'normal', 'per_step'),
           'w_in': layers.NoiseSpec((2,), 'normal', 'per_rollout'),
           'drop': layers.NoiseSpec((3,), 'uniform', 'per_step')}
  rng = np.random.default_rng(13)
  envs, t_max = 4, 5
  rollouts = []
  noise = None
  for _ in range(2):
    steps = []
    for t in range(t_max):
      noise = layers.next_noise(specs, noise, envs, rng, rollout_start=(t == 0))
      steps.append(noise)
    rollouts.append(steps)
  for steps in rollouts:
    for t in range(1, t_max):
      np.testing.assert_array_equal(steps[t]['w_in'], steps[0]['w_in'])     # held within the rollout
      assert not np.any(steps[t]['z1'] == steps[t - 1]['z1'])              # new every step
    assert len({tuple(row) for row in steps[0]['z1']}) == envs             # and per env
    assert len({tuple(row) for row in steps[0]['w_in']}) == envs
    assert steps[0]['drop'].min() >= 0 and steps[0]['drop'].max() < 1
    assert steps[0]['z1'].dtype == np.float32 and steps[0]['z1'].shape == (envs, 3)
  assert not np.any(rollouts[0][0]['w_in'] == rollouts[1][0]['w_in'])      # new per rollout
  a = layers.draw_noise(specs, 2, np.random.default_rng(1))
  b = layers.draw_noise(specs, 2, np.random.default_rng(1))
  for key in specs:
    np.testing.assert_array_equal(a[key], b[key])
  rollout = layers.draw_rollout_noise(specs, 6, 4, np.random.default_rng(2))
  assert rollout['z1'].shape == (6, 4, 3) and rollout['drop'].shape == (6, 4, 3) and rollout['w_in'].shape == (4, 2)
  assert len({tuple(r) for r in rollout['z1'].reshape(-1, 3)}) == 24
  with pytest.raises(ValueError, match='schedule'):
    layers.NoiseSpec((1,), 'normal', 'per_episode')


# ------------------------------------------------------------------------------------------- LeakyReLU


@pytest.mark.parametrize('slope', [0.1, 0.0, 0.3])
def test_leaky_relu_values_and_gradient_are_tf_leaky_relu_bit_for_bit(slope):
  """`layers.leaky_relu` (gradient read from the output, so that grappler's remapper can fuse it) against
  tf.nn.leaky_relu and the NumPy definition, exactly: values max(x, slope x), gradient dy where x > 0 and
  slope dy elsewhere (x = 0 and -0 included; denormal x count as 0, as TensorFlow flushes them), eager and traced."""
  rng = np.random.default_rng(3)
  special = [0.0, -0.0, 1e-45, -1e-45, 1e-38, -1e-38, 1.0, -1.0, 3e30, -3e30]
  x = np.concatenate([np.array(special, np.float32), rng.normal(size=200).astype(np.float32)]).reshape(2, -1, 1)
  dy = rng.normal(size=x.shape).astype(np.float32)

  def value_and_grad(fn, inputs):
    with tf.GradientTape() as tape:
      tape.watch(inputs)
      y = fn(inputs)
    return y, tape.gradient(y, inputs, output_gradients=tf.constant(dy))

  mine = lambda t: layers.leaky_relu(t, slope)
  ref = lambda t: tf.nn.leaky_relu(t, alpha=slope)
  # TensorFlow's CPU kernels flush denormal floats to zero (inputs and results): so does the NumPy reference.
  flushed = np.where(np.abs(x) < np.finfo(np.float32).tiny, np.copysign(np.float32(0), x), x)
  numpy_y = np.where(flushed > 0, flushed, np.float32(slope) * flushed)
  numpy_g = np.where(flushed > 0, dy, np.float32(slope) * dy)
  for run in (value_and_grad, tf.function(value_and_grad)):
    y, g = (t.numpy() for t in run(mine, tf.constant(x)))
    y_ref, g_ref = (t.numpy() for t in run(ref, tf.constant(x)))
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(g, g_ref)
    np.testing.assert_array_equal(y, numpy_y)
    np.testing.assert_array_equal(g, numpy_g)
    np.testing.assert_array_equal(np.signbit(y), np.signbit(y_ref))


def test_leaky_relu_rejects_a_negative_slope():
  with pytest.raises(ValueError, match='leaky_slope must be >= 0'):
    layers.leaky_relu(tf.zeros([2]), -0.1)
