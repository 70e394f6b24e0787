"""kNN estimators: reference KSG values, closed-form Gaussians, repeated rows, batching, errors."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ibjax.estimators import knn

jax.config.update("jax_numpy_rank_promotion", "raise")

REF = Path(__file__).resolve().parent / "data" / "reference"


def _gauss_pair(n, dx, dy, seed, rho=0.6):
    """x ~ N(0, I_dx), y = rho * x[:, :dy] + sqrt(1 - rho^2) * noise; returns x, y, I in nats."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dx))
    y = rho * x[:, :dy] + np.sqrt(1 - rho**2) * rng.normal(size=(n, dy))
    return x.astype(np.float32), y.astype(np.float32), -0.5 * min(dx, dy) * np.log(1 - rho**2)


# 1. Reference values (KSG-1, max-norm; 2e-3 bits).


def test_ksg_reference_k3_k5_as_one_k_sweep():
    ref = json.loads((REF / "values.json").read_text())["knn_ksg"]
    g = np.load(REF / "gauss_rho0.5_n2000.npy").astype(np.float32)
    swept = jax.vmap(lambda k: knn.mi(g[:, :1], g[:, 1:], k=k))(jnp.array([3, 5]))
    np.testing.assert_allclose(swept, [ref["gauss_rho0.5_k3"], ref["gauss_rho0.5_k5"]], atol=2e-3)
    np.testing.assert_allclose(knn.mi(g[:, :1], g[:, 1:], k=5), swept[1], atol=1e-6)


# 2. Closed-form ground truth (tolerances: KSG bias + sampling error at N = 5000, stated per test).


@pytest.mark.parametrize("metric", ["chebyshev", "euclidean"])
@pytest.mark.parametrize("dims", [(1, 1), (2, 2)])
def test_ksg_gaussian_closed_form_within_0p03_nats(metric, dims):
    x, y, truth = _gauss_pair(5000, *dims, seed=sum(dims))
    assert abs(float(knn.mi(x, y, metric=metric, base=np.e)) - truth) < 0.03


def test_ksg_independent_is_about_zero():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(2, 2000, 2)).astype(np.float32)
    assert abs(float(knn.mi(x, y, base=np.e))) < 0.03


@pytest.mark.parametrize("metric", ["chebyshev", "euclidean"])
def test_kl_entropy_of_3d_gaussian_within_0p05_nats(metric):
    cov = np.array([[1.0, 0.5, 0.2], [0.5, 1.0, 0.3], [0.2, 0.3, 2.0]])
    z = np.random.default_rng(8).multivariate_normal(np.zeros(3), cov, size=4000).astype(np.float32)
    truth = 0.5 * np.log(np.linalg.det(2 * np.pi * np.e * cov))
    assert abs(float(knn.entropy(z, metric=metric, base=np.e)) - truth) < 0.05


# 4. Repeated rows (treatment in the knn module docstring).


def test_ksg_with_30pct_duplicated_rows_stays_bounded():
    # 600 of 2000 rows are copies of other rows. A copy is a neighbour at distance 0 in both
    # marginals, which KSG (with or without the original's tiny jitter) reads as dependence: the
    # estimate rises but stays finite. Stated bounds: within [truth - 0.1, truth + 0.35] nats at
    # k = 3 and within 0.1 nats at k = 10 (truth 0.223 nats).
    x, y, truth = _gauss_pair(1400, 1, 1, seed=9)
    dup = np.random.default_rng(10).choice(1400, size=600, replace=False)
    xd, yd = np.concatenate([x, x[dup]]), np.concatenate([y, y[dup]])
    k3, k10 = (float(v) for v in jax.vmap(lambda k: knn.mi(xd, yd, k=k, base=np.e))(jnp.array([3, 10])))
    assert np.isfinite(k3) and truth - 0.1 < k3 < truth + 0.35
    assert abs(k10 - truth) < 0.1


def test_ksg_discrete_repeats_give_log_m():
    # I(X;X) for X uniform on 8 values, 250 copies each: Gao et al.'s treatment gives log 8.
    x = np.repeat(np.arange(8, dtype=np.float32), 250)[:, None]
    np.testing.assert_allclose(knn.mi(x, x, base=2), 3.0, atol=0.01)
    # Independent discrete variables: ~0 (digamma offsets leave about -0.03 bits at 62 per cell).
    y = np.tile(np.arange(4, dtype=np.float32), 500)[:, None]
    assert abs(float(knn.mi(x, y))) < 0.05


def test_entropy_with_30pct_duplicated_rows_is_finite_and_bounded():
    # Skipping zero distances: bias about ln(N / N_distinct) = ln(1/0.7) = 0.36 nats at most.
    z = np.random.default_rng(11).normal(size=(1400, 2)).astype(np.float32)
    dup = np.random.default_rng(12).choice(1400, size=600, replace=False)
    got = float(knn.entropy(np.concatenate([z, z[dup]]), base=np.e))
    truth = np.log(2 * np.pi * np.e)
    assert np.isfinite(got) and abs(got - truth) < 0.4


def test_kth_smallest_counts_ties():
    d = jnp.array([[0.0, 1.0, 1.0, 1.0, 2.0], [3.0, 0.0, 0.0, 0.0, 0.0], [5.0, 4.0, 3.0, 2.0, 1.0]])
    for k in range(1, 6):
        kth, n_min = knn.kth_smallest(d, d, k, floor=-1.0)
        np.testing.assert_array_equal(kth, np.sort(np.asarray(d), axis=1)[:, k - 1])
    np.testing.assert_array_equal(n_min, [1, 4, 1])
    kth, _ = knn.kth_smallest(d, d, 1, floor=0.0)  # entropy mode skips zeros
    np.testing.assert_array_equal(kth, [1.0, 3.0, 1.0])


@pytest.mark.parametrize("metric", ["chebyshev", "euclidean"])
def test_pairwise_many_dims_matches_numpy(metric):
    rng = np.random.default_rng(13)
    a, b = rng.normal(size=(7, 45)).astype(np.float32), rng.normal(size=(11, 45)).astype(np.float32)
    diff = np.abs(a[:, None] - b[None])
    expected = diff.max(-1) if metric == "chebyshev" else (diff**2).sum(-1)
    np.testing.assert_allclose(knn.pairwise(a, b.T, metric=metric), expected, rtol=1e-5)


# 3. Batching.


def test_leading_axes_and_vmap_equal_separate_calls():
    rng = np.random.default_rng(14)
    x = rng.normal(size=(4, 4, 200, 2)).astype(np.float32)
    y = np.tanh(x[..., :1] * rng.uniform(0.2, 3, size=(4, 4, 1, 1)) + 0.5 * rng.normal(size=(4, 4, 200, 1)))
    y = y.astype(np.float32)
    batched = knn.mi(x, y)
    vmapped = jax.vmap(knn.mi)(x.reshape(16, 200, 2), y.reshape(16, 200, 1))
    ent = knn.entropy(x)
    np.testing.assert_allclose(vmapped, np.asarray(batched).reshape(16), atol=1e-6)
    for e in range(4):
        for layer in range(4):
            np.testing.assert_allclose(batched[e, layer], knn.mi(x[e, layer], y[e, layer]), atol=1e-6)
            np.testing.assert_allclose(ent[e, layer], knn.entropy(x[e, layer]), atol=1e-6)


def test_shared_x_broadcasts_against_batched_y():
    rng = np.random.default_rng(15)
    x = rng.normal(size=(100, 3)).astype(np.float32)
    y = rng.normal(size=(3, 100, 1)).astype(np.float32)
    got = knn.mi(x, y, block_size=16)
    for i in range(3):
        np.testing.assert_allclose(got[i], knn.mi(x, y[i]), atol=1e-6)


# 6. Input errors name the argument.


def test_bad_inputs():
    x = np.zeros((10, 2), np.float32)
    x[:, 0] = np.arange(10)
    nan_x = x.copy()
    nan_x[2, 1] = np.nan
    cases = [
        (lambda: knn.mi(x, x, k=10), "k"),
        (lambda: knn.mi(x, x, k=0), "k"),
        (lambda: knn.mi(x, x, k=2.5), "k"),
        (lambda: knn.entropy(x, k=np.array([3, 12])), "k"),
        (lambda: knn.mi(x, x, metric="manhattan"), "metric"),
        (lambda: knn.mi(x, x[:9]), "x and y"),
        (lambda: knn.mi(nan_x, x), "x"),
        (lambda: knn.mi(x, np.full((10, 1), np.inf, np.float32)), "y"),
        (lambda: knn.mi(x[:, 0], x), "x"),
        (lambda: knn.entropy(x[:0]), "t"),
        (lambda: knn.entropy(x, base=-2), "base"),
        (lambda: knn.entropy(x, dim=-1), "dim"),
        (lambda: knn.mi(x, x, block_size=0), "block_size"),
    ]
    for call, match in cases:
        with pytest.raises(ValueError, match=match):
            call()


# 7. Subsampling error bars (Holmes & Nemenman 2019).


def test_error_bars_cover_the_truth_at_about_the_nominal_rate():
    """100 Gaussian pairs (rho = 0.6, N = 200, truth 0.322 bits), one vmapped call: the estimate +- 2
    standard errors covers the truth in 93 of 100 (nominal 95; +- 1: 63, nominal 68); the mean
    standard error (0.082) is within 15% of the estimates' actual spread (0.093)."""
    rng = np.random.default_rng(0)
    rho, truth = 0.6, -0.5 * np.log2(1 - 0.6**2)
    x = rng.normal(size=(100, 200, 1))
    y = (rho * x + np.sqrt(1 - rho**2) * rng.normal(size=x.shape)).astype(np.float32)
    f = jax.jit(jax.vmap(lambda a, b, kk: knn.mi_with_error(a, b, kk)))
    i, se = (np.asarray(v) for v in f(x.astype(np.float32), y, jax.random.split(jax.random.key(0), 100)))
    assert 0.88 <= np.mean(np.abs(i - truth) < 2 * se) <= 0.99
    assert 0.55 <= np.mean(np.abs(i - truth) < se) <= 0.8
    assert np.mean(se) == pytest.approx(np.std(i, ddof=1), rel=0.15)
    # the full-sample value is knn.mi's; duplicated rows (ties) keep the bars finite
    np.testing.assert_allclose(i[3], knn.mi(x[3].astype(np.float32), y[3]), atol=1e-6)
    xd, yd = np.concatenate([x[0], x[0, :50]]).astype(np.float32), np.concatenate([y[0], y[0, :50]])
    _, se_dup = knn.mi_with_error(xd, yd, jax.random.key(1))
    assert 0.0 < float(se_dup) < 0.3
    with pytest.raises(ValueError, match="splits"):
        knn.mi_with_error(x[0], y[0], jax.random.key(0), splits=(2, 100))
