"""KDE (Kolchinsky-Tracey) bounds: reference values, numpy cross-check, MC bracket, batching, errors."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.io
from scipy.special import logsumexp

from ibjax.estimators import kde

jax.config.update("jax_numpy_rank_promotion", "raise")

DATA = Path(__file__).resolve().parent / "data"
REF = DATA / "reference"
LN2 = np.log(2.0)


def _load_refs():
    values = json.loads((REF / "values.json").read_text())["kde_bounds"]
    y_N = scipy.io.loadmat(DATA / "var_u.mat")["y"].ravel().astype(np.int32)
    return values, np.load(REF / "randnet_T1_f32.npy"), y_N


def _np_entropy_nats(t, var, bound):
    """Kolchinsky-Tracey bound in float64 numpy, straight from the formula."""
    v = var if bound == "upper" else 4 * var
    n, d = t.shape
    d2 = ((t[:, None, :] - t[None, :, :]) ** 2).sum(-1)
    h = d / 2 + d / 2 * np.log(2 * np.pi * v) + np.log(n) - logsumexp(-d2 / (2 * v), axis=1).mean()
    return h + (d / 2 * np.log(0.25) if bound == "lower" else 0.0)


def _np_info_plane_nats(t, y, var, bound):
    h_t = _np_entropy_nats(t, var, bound)
    h_cond = t.shape[1] / 2 * (np.log(2 * np.pi * var) + 1)
    h_t_given_y = sum((y == c).mean() * _np_entropy_nats(t[y == c], var, bound) for c in np.unique(y))
    return h_t - h_cond, h_t - h_t_given_y


# 1. Reference values (original computed in float32; 1e-4 bits).


def test_t1_var_0p1_reference():
    values, t1, y = _load_refs()
    ref = values["T1_var_0.1"]
    np.testing.assert_allclose(kde.entropy(t1, 0.1, base=np.e), ref["entropy_upper_nats"], atol=1e-4 * LN2)
    np.testing.assert_allclose(
        kde.entropy(t1, 0.1, bound="lower", base=np.e), ref["entropy_lower_nats"], atol=1e-4 * LN2
    )
    (xt_u, xt_l), (ty_u, ty_l) = kde.info_plane(t1, y, 0.1, bound="both")
    np.testing.assert_allclose(
        [xt_u, ty_u, xt_l, ty_l],
        [ref["i_xt_upper"], ref["i_ty_upper"], ref["i_xt_lower"], ref["i_ty_lower"]],
        atol=1e-4,
    )
    h_cond = kde.entropy(t1, 0.1, base=np.e) - kde.info_plane(t1, y, 0.1, base=np.e)[0]
    np.testing.assert_allclose(h_cond, ref["cond_entropy_nats"], atol=1e-4 * LN2)


def test_t1_var_0p001_reference():
    values, t1, y = _load_refs()
    ref = values["T1_var_0.001"]
    np.testing.assert_allclose(kde.info_plane(t1, y, 0.001), [ref["i_xt_upper"], ref["i_ty_upper"]], atol=1e-4)


# Cross-check against the formula in numpy (float64), odd N, 3 classes, several block sizes.


@pytest.mark.parametrize("bound", ["upper", "lower"])
@pytest.mark.parametrize("block_size", [None, 16])
def test_matches_numpy_formula(bound, block_size):
    rng = np.random.default_rng(0)
    t = np.tanh(rng.normal(size=(157, 3))).astype(np.float32)
    y = rng.integers(0, 3, size=157)
    y[y == 2] = 1 if bound == "upper" else 2  # one case with an empty class id in between
    expected = np.array(_np_info_plane_nats(t.astype(np.float64), y, 0.05, bound)) / LN2
    got = kde.info_plane(t, y, 0.05, bound=bound, n_classes=3, block_size=block_size)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    np.testing.assert_allclose(
        kde.entropy(t, 0.05, bound=bound, base=np.e, block_size=block_size),
        _np_entropy_nats(t.astype(np.float64), 0.05, bound),
        atol=1e-4,
    )


# 2. The bounds bracket a Monte Carlo estimate of the same mixture entropy.


def test_bounds_bracket_monte_carlo_mixture_entropy():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(40, 2)) * 0.6
    var = 0.1
    n_mc = 100_000
    z = centres[rng.integers(0, 40, n_mc)] + rng.normal(size=(n_mc, 2)) * np.sqrt(var)
    log_p = (
        logsumexp(-((z[:, None, :] - centres[None]) ** 2).sum(-1) / (2 * var), axis=1)
        - np.log(40)
        - np.log(2 * np.pi * var)
    )
    h_mc, se = -log_p.mean(), log_p.std() / np.sqrt(n_mc)
    upper = float(kde.entropy(centres.astype(np.float32), var, base=np.e))
    lower = float(kde.entropy(centres.astype(np.float32), var, bound="lower", base=np.e))
    assert lower - 4 * se < h_mc < upper + 4 * se
    assert lower < upper


# 3. Batching.


def test_leading_axes_and_vmap_equal_separate_calls():
    rng = np.random.default_rng(2)
    t = np.tanh(rng.normal(size=(4, 4, 96, 5)) * rng.uniform(0.5, 3, size=(4, 4, 1, 1))).astype(np.float32)
    y = rng.integers(0, 2, size=96)
    i_xt, i_ty = kde.info_plane(t, y, 0.1, bound="both")
    assert i_xt.shape == i_ty.shape == (4, 4, 2)
    vm_xt, _ = jax.vmap(lambda a: kde.info_plane(a, y, 0.1, bound="both"))(t.reshape(16, 96, 5))
    np.testing.assert_allclose(vm_xt, np.asarray(i_xt).reshape(16, 2), atol=1e-6)
    for e in range(4):
        for layer in range(4):
            one_xt, one_ty = kde.info_plane(t[e, layer], y, 0.1, bound="both")
            np.testing.assert_allclose([i_xt[e, layer], i_ty[e, layer]], [one_xt, one_ty], atol=1e-6)
    np.testing.assert_allclose(i_xt[1, 2, 1], kde.info_plane(t[1, 2], y, 0.1, bound="lower")[0], atol=1e-6)


def test_noise_var_sweep_is_one_call():
    rng = np.random.default_rng(3)
    t = np.tanh(rng.normal(size=(64, 4))).astype(np.float32)
    y = rng.integers(0, 2, size=64)
    variances = jnp.array([1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0])
    swept = jax.jit(jax.vmap(lambda v: kde.info_plane(t, y, v, n_classes=2)))(variances)
    broadcast = kde.info_plane(t, y, variances)  # leading axis on noise_var
    for j, v in enumerate(np.asarray(variances)):
        one = kde.info_plane(t, y, float(v))
        np.testing.assert_allclose([swept[0][j], swept[1][j]], one, atol=1e-5)
        np.testing.assert_allclose([broadcast[0][j], broadcast[1][j]], one, atol=1e-5)


def test_zero_padded_columns_with_dim():
    rng = np.random.default_rng(4)
    t = rng.normal(size=(50, 3)).astype(np.float32)
    padded = np.concatenate([t, np.zeros((50, 4), np.float32)], axis=1)
    np.testing.assert_allclose(kde.entropy(padded, 0.2, dim=3), kde.entropy(t, 0.2), atol=1e-5)


# 6. Input errors name the argument.


def test_bad_inputs():
    t = np.zeros((10, 2), np.float32)
    y = np.zeros(10, np.int32)
    nan_t = t.copy()
    nan_t[0, 0] = np.nan
    cases = [
        (lambda: kde.info_plane(t, y, 0.0), "noise_var"),
        (lambda: kde.info_plane(t, y, -1.0), "noise_var"),
        (lambda: kde.info_plane(t, y, 0.1, bound="middle"), "bound"),
        (lambda: kde.info_plane(t, y[:9], 0.1), "y"),
        (lambda: kde.info_plane(t, y + 0.5, 0.1), "y"),
        (lambda: kde.info_plane(t, y + 2, 0.1, n_classes=2), "n_classes"),
        (lambda: kde.info_plane(nan_t, y, 0.1), "t"),
        (lambda: kde.info_plane(t[0], y, 0.1), "t"),
        (lambda: kde.entropy(t[:0], 0.1), "t"),
        (lambda: kde.entropy(t, 0.1, base=0), "base"),
        (lambda: kde.entropy(t, 0.1, dim=0), "dim"),
        (lambda: kde.info_plane(t, y, 0.1, block_size=0), "block_size"),
        (lambda: jax.jit(lambda a, b: kde.info_plane(a, b, 0.1))(t, y), "n_classes"),
    ]
    for call, match in cases:
        with pytest.raises(ValueError, match=match):
            call()


def test_relative_kernels_are_the_kde_at_scale_times_the_spread_and_scale_free():
    """kde_relative = kde at noise_var = scale x mean_ij ||t_i - t_j||^2 (by hand: the double sum in
    float64), unchanged when the layer is multiplied by 7.3 or shifted, zero-padded columns ignored,
    the variance used recorded; a constant T gives 0 bits and the warning."""
    from ibjax import adapters

    values, t, y = _load_refs()
    t = t[:512].astype(np.float32)
    y = y[:512]
    t64 = t.astype(np.float64)
    by_hand = ((t64[:, None, :] - t64[None, :, :]) ** 2).sum(-1).mean()
    np.testing.assert_allclose(float(adapters.mean_sq_distance(jnp.asarray(t))), by_hand, rtol=1e-5)
    rel = lambda t, d: adapters._kde_relative(jnp.asarray(t), d, None, None, jnp.asarray(y), scale=0.05, n_classes=2)
    got = rel(t, t.shape[1])
    np.testing.assert_allclose(float(got["kernel_var"]), 0.05 * by_hand, rtol=1e-5)
    i_xt, i_ty = kde.info_plane(t, y, 0.05 * by_hand, n_classes=2)
    np.testing.assert_allclose([got["i_xt"], got["i_ty"]], [i_xt, i_ty], rtol=1e-5)
    assert 0.5 < float(got["i_xt"]) < np.log2(512) - 0.5  # off both ends at this scale
    moved = rel(7.3 * t + 2.0, t.shape[1])
    np.testing.assert_allclose([moved["i_xt"], moved["i_ty"]], [got["i_xt"], got["i_ty"]], rtol=1e-4)
    padded = rel(np.pad(t, ((0, 0), (0, 5))), t.shape[1])
    np.testing.assert_allclose([padded["i_xt"], padded["i_ty"]], [got["i_xt"], got["i_ty"]], rtol=1e-5)
    flat = rel(np.ones_like(t), t.shape[1])
    assert bool(flat["warn_constant"]) and abs(float(flat["i_xt"])) < 1e-5 and not bool(got["warn_constant"])
