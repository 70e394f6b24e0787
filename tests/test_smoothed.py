import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.io
from scipy.stats import norm

from ibjax.estimators import smoothed

jax.config.update("jax_numpy_rank_promotion", "raise")

LN2 = math.log(2.0)


@pytest.fixture(scope="module")
def randnet(data_dir):
    t = np.load(data_dir / "reference" / "randnet_T1_f32.npy")
    y = scipy.io.loadmat(data_dir / "var_u.mat")["y"].ravel().astype(np.int32)
    return jnp.asarray(t), jnp.asarray(y)


def _gaussian_grid(cov_2x2, n_side=64):
    """A 64 x 64 grid of standard-normal quantiles, rescaled to unit variance, then coloured: an
    empirical measure with covariance exactly ``cov`` and (unlike a random sample) almost no
    sampling error in h(P_n * N), so the Monte Carlo error is the only error left."""
    q = norm.ppf((np.arange(n_side) + 0.5) / n_side)
    q = q / q.std()
    g = np.stack(np.meshgrid(q, q, indexing="ij"), axis=-1).reshape(-1, 2)
    return g @ np.linalg.cholesky(cov_2x2).T


def test_matches_gaussian_closed_form_within_3_stderr():
    cov = np.array([[1.0, 0.6], [0.6, 1.5]])
    sigma = 0.5
    h, se = smoothed.entropy(_gaussian_grid(cov), sigma, jax.random.key(0), n_mc=4, base=math.e)
    exact = 0.5 * np.log(np.linalg.det(2 * np.pi * np.e * (cov + sigma**2 * np.eye(2))))
    assert 0 < float(se) < 0.01
    assert abs(float(h) - exact) < 3 * float(se)


def test_randnet_layer_inside_kde_bracket_and_near_reference(randnet, reference):
    t, y = randnet
    var = 0.1
    kde, mc = reference["kde_bounds"]["T1_var_0.1"], reference["mixture_entropy_monte_carlo"]["T1_var_0.1"]
    h, h_se, i_ty, i_ty_se = smoothed.entropy_with_labels(t, y, math.sqrt(var), jax.random.key(1))
    i_xt = float(h) - 0.5 * t.shape[1] * math.log2(2 * math.pi * math.e * var)
    cond = kde["cond_entropy_nats"]
    lower, upper = ((kde[k] - cond) / LN2 for k in ("entropy_lower_nats", "entropy_upper_nats"))
    assert lower < i_xt < upper
    assert abs(i_xt - mc["i_xt_mean"]) < 3 * mc["i_xt_sd"]
    assert kde["i_ty_lower"] < float(i_ty) < kde["i_ty_upper"]
    assert abs(float(i_ty) - mc["i_ty_mean"]) < 3 * mc["i_ty_sd"]
    assert 0 < float(i_ty_se) < float(h_se)  # the paired difference is far less noisy than h itself


def test_stderr_matches_spread_over_20_keys(randnet):
    t, _ = randnet
    keys = jax.random.split(jax.random.key(2), 20)
    h_K, se_K = jax.vmap(lambda k: smoothed.entropy(t, math.sqrt(0.1), k))(keys)
    ratio = float(jnp.std(h_K, ddof=1) / jnp.mean(se_K))
    assert 1 / 1.5 < ratio < 1.5, ratio


def test_vmaps_over_epochs_layers_and_traced_sigma():
    s_ExLxNxD = jax.random.normal(jax.random.key(3), (2, 3, 100, 3))
    keys_ExL = jax.random.split(jax.random.key(4), 6).reshape(2, 3)
    sigma_L = jnp.array([0.2, 0.3, 1.0])
    per_layer = jax.vmap(lambda s, k, sg: smoothed.entropy(s, sg, k, n_mc=2, block_size=7))
    h_ExL, se_ExL = jax.jit(jax.vmap(per_layer, in_axes=(0, 0, None)))(s_ExLxNxD, keys_ExL, sigma_L)
    assert h_ExL.shape == se_ExL.shape == (2, 3)
    h_one, se_one = smoothed.entropy(s_ExLxNxD[1, 1], 0.3, keys_ExL[1, 1], n_mc=2, block_size=7)
    np.testing.assert_allclose(h_ExL[1, 1], h_one, rtol=1e-5)
    np.testing.assert_allclose(se_ExL[1, 1], se_one, rtol=1e-4)
    assert np.all(np.diff(np.asarray(h_ExL), axis=1) > 0)  # more noise, more entropy


def test_block_size_and_base_do_not_change_the_estimate():
    s = jax.random.normal(jax.random.key(5), (100, 3))
    key = jax.random.key(6)
    h_a, se_a = smoothed.entropy(s, 0.3, key, n_mc=2, block_size=7)
    h_b, se_b = smoothed.entropy(s, 0.3, key, n_mc=2, block_size=1000)
    np.testing.assert_allclose(h_a, h_b, rtol=1e-5)
    np.testing.assert_allclose(se_a, se_b, rtol=1e-4)
    h_nats, _ = smoothed.entropy(s, 0.3, key, n_mc=2, base=math.e)
    np.testing.assert_allclose(h_nats / LN2, h_a, rtol=1e-5)


def test_well_separated_centres_give_log_n_plus_noise_entropy():
    """Centres far apart: the mixture entropy is log N + h(Z) (exact in the limit)."""
    s = 100.0 * jnp.arange(8.0)[:, None] * jnp.ones((1, 2))
    h, se = smoothed.entropy(s, 1.0, jax.random.key(7), n_mc=2000, base=math.e)
    exact = math.log(8) + float(smoothed.gaussian_entropy_nats(2, 1.0))
    assert abs(float(h) - exact) < 4 * float(se) and float(se) < 0.02


def test_large_n_is_blocked():
    """N = 10,000: the compiled program's scratch memory is a few row blocks, not N x N."""
    s = jax.ShapeDtypeStruct((10_000, 10), jnp.float32)
    compiled = (
        jax.jit(lambda s, k: smoothed.entropy_nats(s, 0.5, k, n_mc=1, block_size=256, n_var=256))
        .lower(s, jax.random.key(0))
        .compile()
    )
    mem = compiled.memory_analysis()
    if mem is None:
        pytest.skip("backend gives no memory analysis")
    assert mem.temp_size_in_bytes < 10_000**2 * 4 / 4  # far below one N x N float32 matrix


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sigma=0.0), "sigma"),
        (dict(sigma=-1.0), "sigma"),
        (dict(n_mc=0), "n_mc"),
        (dict(s=np.full((5, 2), np.nan)), "s"),
        (dict(s=np.zeros((5,))), "s"),
        (dict(s=np.zeros((0, 2))), "s"),
        (dict(base=1), "base"),
        (dict(block_size=0), "block_size"),
    ],
)
def test_bad_input_raises(kwargs, match):
    args = dict(s=np.zeros((5, 2)), sigma=1.0, key=jax.random.key(0))
    args.update(kwargs)
    s, sigma, key = args.pop("s"), args.pop("sigma"), args.pop("key")
    with pytest.raises(ValueError, match=match):
        smoothed.entropy(s, sigma, key, **args)


def test_labels_must_match_samples():
    with pytest.raises(ValueError, match="y"):
        smoothed.entropy_with_labels(np.zeros((5, 2)), np.zeros(4, np.int32), 1.0, jax.random.key(0))
