"""Chapter 6 generation tools (rlcv_tf.acvae.tools; thesis Sec. 6.5-6.6, spec ch5_6 B3 "Generation tools").

References are independent of the tools: a per-element loop with math.cos for the cos^2 path; a NumPy stub model
whose linear maps are known, which records every (z, a) that reaches its decoder; direct `decode` calls of the real
tiny models; hand-made key / answer files and a hand table of classifier signs.
"""

import csv
import json
import math
import types

import keras
import numpy as np
from PIL import Image
import pytest

from rlcv_tf.acvae import networks
from rlcv_tf.acvae import presets
from rlcv_tf.acvae import tools

T, N, LATENT, IMAGE = 4, 3, (2, 2, 8), (4, 4, 3)
NAMES = ('Male', 'Smiling', 'Bangs')


class StubVAE:
  """The AttributeVAE interface with NumPy linear maps; records every (z, a) given to decode.

  decode: x = sum_t scale_t * (block t of z) @ D_t + (a summed over steps if per-step) @ A, reshaped to the image (no
  tanh, so pixel changes are linear in the latent). encode: mu = x @ E + a @ F, logvar = -1. prior: mu_p = a @ P,
  logvar_p = a @ Q.
  """

  latent_shape, image_shape, num_blocks, num_attributes = LATENT, IMAGE, T, N

  def __init__(self, scales=(1.0, 1.0, 1.0, 1.0), recurrent=True, seed=0, mask=None):
    rng = np.random.default_rng(seed)
    z_dim, x_dim = int(np.prod(LATENT)), int(np.prod(IMAGE))
    self.scales = np.asarray(scales, np.float32)
    self.d = rng.normal(size=(z_dim, x_dim)).astype(np.float32) / np.sqrt(z_dim)
    self.amap = rng.normal(size=(N, x_dim)).astype(np.float32)
    self.e = rng.normal(size=(x_dim, z_dim)).astype(np.float32) * 0.1
    self.f = rng.normal(size=(N, z_dim)).astype(np.float32)
    self.p = rng.normal(size=(N, z_dim)).astype(np.float32)
    self.q = rng.normal(size=(N, z_dim)).astype(np.float32) * 0.3
    self.config = types.SimpleNamespace(recurrent=recurrent, model='acvaegan' if recurrent else 'cvaegan',
                                        attribute_names=NAMES)
    self.attention = None if mask is None else types.SimpleNamespace(mask=lambda: np.asarray(mask, np.float32))
    self.decoded = []

  def channel_scales(self):
    per = LATENT[-1] // T
    return np.repeat(self.scales, per)             # block t = channels [(t-1) per, t per)

  def decode(self, z, a, training=False):
    assert not training
    z, a = np.asarray(z, np.float32), np.asarray(a, np.float32)
    self.decoded.append((z.copy(), a.copy()))
    flat_a = a.sum(axis=1) if a.ndim == 3 else a
    x = (z * self.channel_scales()).reshape(len(z), -1) @ self.d + flat_a @ self.amap
    return None, x.reshape((-1,) + IMAGE)

  def encode(self, x, a, training=False):
    assert not training
    x, a = np.asarray(x, np.float32), np.asarray(a, np.float32)
    mu = x.reshape(len(x), -1) @ self.e + a @ self.f
    return mu.reshape((-1,) + LATENT), -np.ones((len(x),) + LATENT, np.float32)

  def prior_params(self, a, training=False):
    a = np.asarray(a, np.float32)
    return (a @ self.p).reshape((-1,) + LATENT), (a @ self.q).reshape((-1,) + LATENT)

  def per_step(self, a):
    return np.repeat(np.asarray(a, np.float32)[:, None], T, axis=1)


def rand_attributes(batch, n=N, seed=0):
  return np.sign(np.random.default_rng(seed).normal(size=(batch, n)) + 1e-3).astype(np.float32)


def rand_latents(batch, shape=LATENT, seed=1):
  return np.random.default_rng(seed).normal(size=(batch,) + tuple(shape)).astype(np.float32)


@pytest.fixture(scope='module')
def tiny():
  out = {}
  for i, kind in enumerate(('cvaegan', 'crvaegan', 'acvaegan')):
    keras.utils.set_random_seed(i)
    vae, _ = networks.build_models(presets.get_preset(f'tiny_{kind}'))
    rng = np.random.default_rng(i)
    for w in vae.trainable_weights:             # off the initial values, so the conditioning is visible
      w.assign(w.numpy() + rng.normal(scale=0.05, size=w.shape).astype(np.float32))
    if vae.attention is not None:
      vae.attention.w.assign(rng.normal(scale=1.5, size=vae.attention.w.shape).astype(np.float32))
    out[kind] = vae
  return out


# ------------------------------------------------------------------------------------------------- cos^2
def test_cos2_endpoints_and_formula_against_a_loop():
  rng = np.random.default_rng(0)
  z1, z2 = rng.normal(size=(2, 2, 2, 4)), rng.normal(size=(2, 2, 2, 4))
  n = 7
  path = tools.interp_cos2(z1, z2, n)
  assert path.shape == (n, 2, 2, 2, 4)
  np.testing.assert_allclose(path[0], z1, atol=1e-6)
  np.testing.assert_allclose(path[-1], z2, atol=1e-6)
  for i in range(n):
    psi = (math.pi / 2) * i / (n - 1)
    for idx in np.ndindex(z1.shape):
      expected = math.cos(psi) ** 2 * z1[idx] + (1 - math.cos(psi) ** 2) * z2[idx]
      assert abs(path[(i,) + idx] - expected) < 1e-5
  # Not the linear path: the cos^2 weight at psi = pi/6 is 3/4, the linear one 2/3.
  np.testing.assert_allclose(tools.cos2_weights(4), [1.0, 0.75, 0.25, 0.0], atol=1e-12)
  with pytest.raises(ValueError, match='n: '):
    tools.interp_cos2(z1, z2, 1)


def test_prior_interpolation_sheet_decodes_the_cos2_path_between_two_prior_modes():
  vae = StubVAE()
  a = rand_attributes(2)
  noise1, noise2 = rand_latents(2, seed=3), rand_latents(2, seed=4)
  sheet = tools.prior_interpolation_sheet(vae, a, n=5, noise1=noise1, noise2=noise2)
  assert sheet.images.shape == (2, 5) + IMAGE and len(sheet.columns) == 5
  mu_p, logvar_p = vae.prior_params(a)
  z1, z2 = mu_p + np.exp(0.5 * logvar_p) * noise1, mu_p + np.exp(0.5 * logvar_p) * noise2
  calls = vae.decoded[-5:]
  w = [math.cos(math.pi / 2 * i / 4) ** 2 for i in range(5)]
  for i, (z, a_used) in enumerate(calls):
    np.testing.assert_allclose(z, w[i] * z1 + (1 - w[i]) * z2, atol=1e-5)
    np.testing.assert_array_equal(a_used, a)            # the same attributes along the path (Fig. 6.6)
  # With an end vector, the attributes follow the same weights.
  a_end = -a
  tools.prior_interpolation_sheet(vae, a, n=5, noise1=noise1, noise2=noise2, attributes_end=a_end)
  np.testing.assert_allclose(vae.decoded[-3][1], w[2] * a + (1 - w[2]) * a_end, atol=1e-6)


# ---------------------------------------------------------------------------------------------- swaps
def test_swap_grid_columns_use_exactly_a_with_one_attribute_flipped():
  vae = StubVAE()
  x = np.tanh(np.random.default_rng(5).normal(size=(3,) + IMAGE)).astype(np.float32)
  a = rand_attributes(3)
  sheet = tools.attribute_swap_grid(vae, x, a, NAMES, columns=['Bangs', 0])
  assert sheet.columns == ('real', 'reconstruction', 'flip Bangs', 'flip Male')
  assert sheet.images.shape == (3, 4) + IMAGE
  assert sheet.image.shape == (3 * (4 + 1) + 1, 4 * (4 + 1) + 1, 3) and sheet.image.dtype == np.uint8
  mu = (x.reshape(3, -1) @ vae.e + a @ vae.f).reshape((-1,) + LATENT)
  calls = vae.decoded
  assert len(calls) == 3
  for (z, a_used), flipped in zip(calls, [None, 2, 0]):
    np.testing.assert_allclose(z, mu, atol=1e-5)                       # the posterior mean of q(z|x, a)
    expected = a.copy()
    if flipped is not None:
      expected[:, flipped] = -a[:, flipped]
    np.testing.assert_array_equal(a_used, expected)
  np.testing.assert_array_equal(sheet.images[:, 0], x)
  # The uint8 sheet holds the panels: row 1, column 3 is face 1 with Bangs flipped.
  r = 1 + 1 * (4 + 1)
  c = 1 + 2 * (4 + 1)
  cell = sheet.image[r:r + 4, c:c + 4]
  expected = np.clip(np.round((np.clip(sheet.images[1, 2], -1, 1) + 1) / 2 * 255), 0, 255)
  np.testing.assert_array_equal(cell, expected.astype(np.uint8))


def test_prior_swap_grid_keeps_the_noise_and_moves_the_prior():
  vae = StubVAE()
  a, noise = rand_attributes(2, seed=7), rand_latents(2, seed=8)
  sheet = tools.prior_swap_grid(vae, a, noise)
  assert sheet.columns == ('prior sample',) + tuple(f'flip {n}' for n in NAMES)
  for k, (z, a_used) in enumerate(vae.decoded):
    expected_a = a.copy()
    if k > 0:
      expected_a[:, k - 1] *= -1
    np.testing.assert_array_equal(a_used, expected_a)
    np.testing.assert_allclose(z, ((expected_a @ vae.p) + np.exp(0.5 * expected_a @ vae.q)
                                   * noise.reshape(2, -1)).reshape(z.shape), atol=1e-5)


def test_swap_grid_on_the_tiny_acvae_equals_direct_decode_calls(tiny):
  vae = tiny['acvaegan']
  cfg = vae.config
  x = np.tanh(np.random.default_rng(0).normal(size=(2,) + cfg.image_shape)).astype(np.float32)
  a = rand_attributes(2, cfg.num_attributes)
  sheet = tools.attribute_swap_grid(vae, x, a, None)
  assert sheet.columns[2:] == tuple(f'flip {n}' for n in cfg.attribute_names)
  mu = np.asarray(vae.encode(x, a)[0])
  for n in range(cfg.num_attributes):
    flipped = a.copy()
    flipped[:, n] *= -1
    np.testing.assert_allclose(sheet.images[:, 2 + n], np.asarray(vae.decode(mu, flipped)[1]), atol=1e-5)
  assert np.abs(sheet.images[:, 2] - sheet.images[:, 1]).max() > 1e-4      # flipping changes the face


def test_swap_grid_refuses_bad_arguments():
  vae = StubVAE()
  x, a = np.zeros((2,) + IMAGE, np.float32), rand_attributes(2)
  with pytest.raises(ValueError, match='columns'):
    tools.attribute_swap_grid(vae, x, a, NAMES, columns=['Hat'])
  with pytest.raises(ValueError, match='attributes'):
    tools.attribute_swap_grid(vae, x, a[:, :2], NAMES)
  with pytest.raises(ValueError, match='names'):
    tools.attribute_swap_grid(vae, x, a, NAMES[:2])


# --------------------------------------------------------------------------------- progressive generation
def test_progressive_generation_zeroes_later_latents_and_attributes():
  vae = StubVAE()
  a, z = rand_attributes(2), rand_latents(2)
  frames = tools.progressive_generation(vae, a, z)
  assert frames.shape == (T, 2) + IMAGE
  per = LATENT[-1] // T
  for i, (z_seen, a_seen) in enumerate(vae.decoded, start=1):
    np.testing.assert_array_equal(z_seen[..., :i * per], z[..., :i * per])
    assert not z_seen[..., i * per:].any()                            # zero latents after step i
    assert a_seen.shape == (2, T, N)
    np.testing.assert_array_equal(a_seen[:, :i], np.repeat(a[:, None], i, axis=1))
    assert not a_seen[:, i:].any()                                    # and zero attributes
  assert len(vae.decoded) == T


class Recording:
  """Wraps a model and records what reaches its decoder."""

  def __init__(self, vae):
    self._vae, self.decoded = vae, []

  def __getattr__(self, name):
    return getattr(self._vae, name)

  def decode(self, z, a, training=False):
    self.decoded.append((np.asarray(z), np.asarray(a)))
    return self._vae.decode(z, a, training=training)


@pytest.mark.parametrize('kind', ['crvaegan', 'acvaegan'])
def test_progressive_generation_on_the_tiny_models(tiny, kind):
  vae = tiny[kind]
  cfg = vae.config
  a = rand_attributes(2, cfg.num_attributes)
  z = rand_latents(2, cfg.latent_shape)
  recorder = Recording(vae)
  frames = tools.progressive_generation(recorder, a, z)
  t_total, per = cfg.num_blocks, cfg.latent_block_channels
  if kind == 'acvaegan':
    w = np.asarray(vae.attention.w.numpy(), np.float64)
    m = np.exp(w) / np.exp(w).sum(axis=0, keepdims=True)                # softmax over steps, in NumPy
    steps = a[:, None, :] * m[None]
  else:
    steps = np.repeat(a[:, None], t_total, axis=1)
  for i, (z_seen, a_seen) in enumerate(recorder.decoded, start=1):
    np.testing.assert_array_equal(z_seen[..., :i * per], z[..., :i * per])
    assert not z_seen[..., i * per:].any()
    np.testing.assert_allclose(a_seen[:, :i], steps[:, :i], atol=1e-6)
    assert not a_seen[:, i:].any()
  # Step T is the full decode of (z, a).
  np.testing.assert_allclose(frames[-1], np.asarray(vae.decode(z, a)[1]), atol=1e-5)
  assert np.abs(frames[0] - frames[-1]).max() > 1e-3
  sheet = tools.progressive_sheet(vae, a, z)
  assert sheet.columns == tuple(f'step {t}' for t in range(1, t_total + 1)) and sheet.images.shape[:2] == (2, 4)


def test_progressive_generation_refuses_cvaegan(tiny):
  vae = tiny['cvaegan']
  with pytest.raises(ValueError, match='crvaegan or acvaegan'):
    tools.progressive_generation(vae, rand_attributes(1, vae.num_attributes), rand_latents(1, vae.latent_shape))
  with pytest.raises(ValueError, match='crvaegan or acvaegan'):
    tools.progressive_generation(StubVAE(recurrent=False), rand_attributes(1), rand_latents(1))


def test_attribute_appearance_steps_against_a_hand_table():
  # Classifier logit signs per step (rows t = 1..4) for one example, a = (+1, +1, -1).
  signs = np.array([[+1, -1, -1],
                    [-1, -1, +1],
                    [+1, -1, -1],
                    [+1, +1, +1]], np.float32)
  calls = []

  def classifier(images):
    calls.append(np.asarray(images).shape)
    return signs[len(calls) - 1][None]

  mask = np.array([[0.1, 0.7, 0.2], [0.6, 0.1, 0.2], [0.2, 0.1, 0.5], [0.1, 0.1, 0.1]], np.float32)
  vae = StubVAE(mask=mask)
  out = tools.attribute_appearance_steps(vae, classifier, np.array([[1, 1, -1]], np.float32), rand_latents(1))
  assert len(calls) == T and calls[0] == (1,) + IMAGE
  # attr 0: agrees at steps 1, 3, 4 -> first 1, settled 3; attr 1: step 4 only -> 4, 4; attr 2 (a = -1): agrees at
  # steps 1 and 3 (negative logits), not at 4 -> first 1, never settled (0).
  np.testing.assert_array_equal(out['first_agree'], [[1, 4, 1]])
  np.testing.assert_array_equal(out['settled'], [[3, 4, 0]])
  np.testing.assert_array_equal(out['attention_step'], [2, 1, 3])
  assert [row['attribute'] for row in out['rows']] == list(NAMES)
  assert out['rows'][2]['settled_median'] is None and out['rows'][2]['agree_at_T'] == 0.0
  assert out['rows'][0]['attention_step'] == 2 and out['rows'][0]['settled_median'] == 3.0


# ------------------------------------------------------------------------------------------- 2-stage tool
def test_two_stage_tool_keeps_the_other_blocks_fixed_exactly():
  vae = StubVAE()
  a = rand_attributes(1)[0]
  result = tools.two_stage_tool(vae, a, n_candidates=5, pick=3, n_refine=4, block=2, seed=1)
  per = LATENT[-1] // T
  kept = result.candidate_latents[3]
  assert result.candidates.shape == (5,) + IMAGE and result.refinements.shape == (4,) + IMAGE
  for z in result.refinement_latents:
    np.testing.assert_array_equal(z[..., :per], kept[..., :per])
    np.testing.assert_array_equal(z[..., 2 * per:], kept[..., 2 * per:])
    assert np.abs(z[..., per:2 * per] - kept[..., per:2 * per]).min() > 0          # block 2 redrawn
  # Candidates and refinements are draws of p(z|a): z = mu_p + sigma_p * eps with distinct eps.
  mu_p, logvar_p = vae.prior_params(a[None])
  eps = (result.candidate_latents - mu_p) / np.exp(0.5 * logvar_p)
  assert np.abs(eps[0] - eps[1]).max() > 0.1
  assert len({z.tobytes() for z in result.refinement_latents}) == 4
  np.testing.assert_allclose(result.refinements, np.stack([vae.decode(z[None], a[None])[1][0]
                                                           for z in result.refinement_latents]), atol=1e-5)
  assert result.sheet.images.shape[:2] == (2, 5)
  np.testing.assert_array_equal(result.sheet.images[1, 0], result.candidates[3])
  again = tools.two_stage_tool(vae, a, n_candidates=5, pick=3, n_refine=4, block=2, seed=1)
  np.testing.assert_array_equal(again.refinement_latents, result.refinement_latents)


def test_choose_minor_block_by_hand():
  # Largest 0.5: floor 0.125 -> eligible 0.5 and 0.2 -> block 3 (1-based); 0.05 and 0 are too small.
  assert tools.choose_minor_block([0.0, 0.5, 0.2, 0.05]) == 3
  assert tools.choose_minor_block([0.0, 0.5, 0.2, 0.05], min_change_fraction=0.0) == 1
  assert tools.choose_minor_block([0.0, 0.5, 0.2, 0.05], min_change_fraction=1.0) == 2


def test_two_stage_tool_picks_the_minor_block_by_measured_change():
  # Decoder scales per block: 4 (drastic), 2, 0.01 (ignored), 1.5 (minor): the smallest change >= 1/4 of the largest
  # is block 4's.
  vae = StubVAE(scales=(4.0, 2.0, 0.01, 1.5))
  vae.q[:] = 0.0                                          # unit prior variance: the change scales with the block only
  result = tools.two_stage_tool(vae, rand_attributes(1)[0], 3, 0, 6, block=None, seed=2, n_probe=64)
  changes = result.block_changes
  assert changes.shape == (T,)
  # The measured order follows the scales (the kept block's own draw makes the ratios only roughly 1 : .5 : 0 : .38).
  assert changes[0] > changes[1] > changes[3] > 0.25 * changes[0] > 10 * changes[2]
  assert result.block == 4
  named = tools.two_stage_tool(vae, rand_attributes(1)[0], 3, 0, 6, block=4, seed=2)
  np.testing.assert_array_equal(named.refinement_latents, result.refinement_latents)


def test_two_stage_tool_on_the_tiny_acvae(tiny):
  vae = tiny['acvaegan']
  a = rand_attributes(1, vae.num_attributes)
  result = tools.two_stage_tool(vae, a, 4, 1, 3, seed=0)
  assert 1 <= result.block <= vae.num_blocks and result.block_changes.shape == (vae.num_blocks,)
  assert result.block == tools.choose_minor_block(result.block_changes)
  np.testing.assert_allclose(result.candidates, np.asarray(vae.decode(result.candidate_latents,
                                                                      np.repeat(a, 4, 0))[1]), atol=1e-5)
  with pytest.raises(ValueError, match='pick'):
    tools.two_stage_tool(vae, a, 4, 4, 3)
  with pytest.raises(ValueError, match='block'):
    tools.two_stage_tool(vae, a, 4, 0, 3, block=0)


# ---------------------------------------------------------------------------------------- preference
def _solid(value, m):
  return np.full((m,) + IMAGE, value, np.float32)


def test_preference_sheets_key_round_trip(tmp_path):
  colours = {'cvaegan': -1.0, 'crvaegan': 0.0, 'acvaegan': 1.0}
  out = tools.preference_sheets({k: _solid(v, 12) for k, v in colours.items()}, str(tmp_path), seed=3, scale=1)
  with open(out['key_file']) as f:
    key = json.load(f)
  assert key['models'] == list(colours) and len(key['trials']) == 12
  orders = set()
  for trial, path in zip(key['trials'], out['sheets']):
    assert sorted(trial['order']) == sorted(colours)
    orders.add(tuple(trial['order']))
    sheet = np.asarray(Image.open(path))
    for column, model in enumerate(trial['order']):            # the PNG shows the key's model in each column
      pixel = sheet[1, 1 + column * (IMAGE[1] + 1)]
      assert pixel[0] == int(round((colours[model] + 1) / 2 * 255))
  assert len(orders) > 1                                          # shuffled per trial
  with open(out['template']) as f:
    assert list(csv.reader(f))[:2] == [['trial', 'choice'], ['0', '']]
  # Raters pick acVAE-GAN in trials 0-5 (by position or letter), cVAE-GAN in 6, nothing in 7.
  rows = [['trial', 'choice']]
  for trial in key['trials'][:6]:
    position = trial['order'].index('acvaegan')
    rows.append([trial['trial'], str(position + 1) if trial['trial'] % 2 else 'ABC'[position]])
  rows.append([6, key['trials'][6]['order'].index('cvaegan') + 1])
  rows.append([7, ''])
  answers = tmp_path / 'answers.csv'
  with open(answers, 'w', newline='') as f:
    csv.writer(f).writerows(rows)
  result = tools.tally(out['key_file'], str(answers))
  assert result['counts'] == {'cvaegan': 1, 'crvaegan': 0, 'acvaegan': 6}
  assert result['answered'] == 7 and result['blank'] == 1
  assert abs(result['fractions']['acvaegan'] - 6 / 7) < 1e-12


def test_tally_on_a_hand_made_key_and_answers(tmp_path):
  key = {'version': 1, 'models': ['x', 'y', 'z'], 'seed': 0,
         'trials': [{'trial': 0, 'sheet': 'a.png', 'order': ['y', 'x', 'z']},
                    {'trial': 1, 'sheet': 'b.png', 'order': ['z', 'y', 'x']}]}
  (tmp_path / 'key.json').write_text(json.dumps(key))
  (tmp_path / 'answers.csv').write_text('trial,choice\n0,1\n0,b\n1,1\n1,3\n1,C\n')
  # trial 0: col 1 = y, col B = x; trial 1: col 1 = z, col 3 = x, col C = x.
  result = tools.tally(str(tmp_path / 'key.json'), str(tmp_path / 'answers.csv'))
  assert result['counts'] == {'x': 3, 'y': 1, 'z': 1} and result['answered'] == 5
  (tmp_path / 'bad.csv').write_text('trial,choice\n0,4\n')
  with pytest.raises(ValueError, match='line 2'):
    tools.tally(str(tmp_path / 'key.json'), str(tmp_path / 'bad.csv'))
  (tmp_path / 'bad2.csv').write_text('trial,choice\n9,1\n')
  with pytest.raises(ValueError, match='trial'):
    tools.tally(str(tmp_path / 'key.json'), str(tmp_path / 'bad2.csv'))
