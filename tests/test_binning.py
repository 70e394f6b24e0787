"""Binning estimator: reference values, exact discrete entropies, batching, input errors."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.io

from ibjax.estimators import binning

jax.config.update("jax_numpy_rank_promotion", "raise")

DATA = Path(__file__).resolve().parent / "data"
REF = DATA / "reference"


def _load_refs():
    values = json.loads((REF / "values.json").read_text())
    y_N = scipy.io.loadmat(DATA / "var_u.mat")["y"].ravel().astype(np.int32)
    return values, np.load(REF / "randnet_T1_f32.npy"), y_N


def _np_entropy_bits(rows_NxD):
    _, counts = np.unique(rows_NxD, axis=0, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def _np_mi_bits(rows_NxD, y_N):
    joint = np.concatenate([rows_NxD, y_N[:, None]], axis=1)
    return _np_entropy_bits(rows_NxD) + _np_entropy_bits(y_N[:, None]) - _np_entropy_bits(joint)


# 1. Reference values of the original implementations (float32 inputs; 1e-6 bits).


@pytest.mark.parametrize("n_bins", [8, 30])
def test_idnns_linspace_reference(n_bins):
    values, t1, y = _load_refs()
    ref = values["binning_linspace"][f"T1_n_bins_{n_bins}"]
    i_xt, i_ty = binning.info_plane(t1, y, n_bins=n_bins)
    np.testing.assert_allclose([i_xt, i_ty], [ref["i_xt"], ref["i_ty"]], rtol=0, atol=1e-6)


def test_ibsgd_bin_size_reference():
    values, t1, y = _load_refs()
    ref = values["binning_binsize"]["T1_bin_size_0.5"]
    i_xt, i_ty = binning.info_plane(t1, y, bin_size=0.5)
    np.testing.assert_allclose([i_xt, i_ty], [ref["i_xt"], ref["i_ty"]], rtol=0, atol=1e-6)


def test_gauss_plugin_mi_reference():
    values, _, _ = _load_refs()
    g_Nx2 = np.load(REF / "gauss_rho0.5_n2000.npy").astype(np.float32)
    h = lambda a: binning.entropy(a, bin_size=0.25)  # noqa: E731
    mi = h(g_Nx2[:, :1]) + h(g_Nx2[:, 1:]) - h(g_Nx2)
    np.testing.assert_allclose(mi, values["binning_binsize"]["gauss_rho0.5_bin_size_0.25_plugin_mi"], atol=1e-6)


# 2. Exactness.


@pytest.mark.parametrize("n_bins", [8, 30, 100])  # 100 takes the gather path, the others the unrolled one
def test_codes_match_numpy_digitize(n_bins):
    edges = binning.bin_edges(n_bins)
    rng = np.random.default_rng(0)
    t = np.concatenate([rng.uniform(-1.3, 1.3, 5000), edges, np.nextafter(edges, -2), np.nextafter(edges, 2)])
    t = t.astype(np.float32)
    expected = np.clip(np.digitize(t, edges) - 1, 0, n_bins - 1)
    np.testing.assert_array_equal(binning.codes_n_bins(jnp.asarray(t), n_bins=n_bins), expected)


def test_discrete_variable_exact_entropy():
    counts = np.array([1, 2, 3, 10, 50, 100, 34])  # N = 200
    t_N = np.repeat(np.arange(len(counts)) * 0.3 - 0.9, counts).astype(np.float32)[:, None]
    p = counts / counts.sum()
    exact_bits = -(p * np.log2(p)).sum()
    np.testing.assert_allclose(binning.entropy(t_N, n_bins=30), exact_bits, atol=1e-6)
    np.testing.assert_allclose(binning.entropy(t_N, bin_size=0.1), exact_bits, atol=1e-6)
    np.testing.assert_allclose(binning.entropy(t_N, bin_size=0.1, base=np.e), exact_bits * np.log(2), atol=1e-6)


def test_uniform_over_8_symbols_is_3_bits():
    t = np.tile(np.arange(8, dtype=np.float32), 64)[:, None]
    assert float(binning.entropy(t, bin_size=1.0)) == 3.0


def test_wide_codes_need_several_words_and_stay_exact():
    # Codes spanning 2**24 (exact in float32) in 4 columns: ~97 bits, several sort passes.
    rng = np.random.default_rng(1)
    base_Mx4 = rng.integers(-(2**23), 2**23 - 1, size=(40, 4))
    rows_Nx4 = base_Mx4[rng.integers(0, 40, size=600)]
    rows_Nx4[:, 3] += rng.integers(0, 2, size=600)  # near-duplicates differing in the last column
    y_N = rng.integers(0, 3, size=600)
    i_xt, i_ty = binning.info_plane(rows_Nx4.astype(np.float32), y_N, bin_size=1.0)
    np.testing.assert_allclose(i_xt, _np_entropy_bits(rows_Nx4), atol=1e-6)
    np.testing.assert_allclose(i_ty, _np_mi_bits(rows_Nx4, y_N), atol=1e-6)


def test_wide_layer_with_constant_columns():
    # 150 columns, a third of them constant (dead units): words only span non-constant columns.
    rng = np.random.default_rng(5)
    t = rng.integers(-3, 3, size=(400, 150)).astype(np.float32)
    t[:, ::3] = 1.5
    t[200:] = t[:200]  # every row appears twice
    y = rng.integers(0, 2, size=400)
    i_xt, i_ty = binning.info_plane(t, y, bin_size=1.0)
    np.testing.assert_allclose(i_xt, _np_entropy_bits(t), atol=1e-6)
    np.testing.assert_allclose(i_ty, _np_mi_bits(t, y), atol=1e-6)


def test_lexsort_rows_orders_like_numpy():
    rng = np.random.default_rng(2)
    codes_NxC = rng.integers(-5, 5, size=(300, 3)).astype(np.int32)
    perm = np.asarray(binning.lexsort_rows(jnp.asarray(codes_NxC)))
    np.testing.assert_array_equal(codes_NxC[perm], codes_NxC[np.lexsort(codes_NxC.T[::-1])])


def test_info_plane_matches_numpy_on_random_activations():
    rng = np.random.default_rng(3)
    t = np.tanh(rng.normal(size=(500, 5))).astype(np.float32)
    y = rng.integers(0, 4, size=500)
    codes = np.floor(t / np.float32(0.4))
    i_xt, i_ty = binning.info_plane(t, y, bin_size=0.4)
    np.testing.assert_allclose(i_xt, _np_entropy_bits(codes), atol=1e-6)
    np.testing.assert_allclose(i_ty, _np_mi_bits(codes, y), atol=1e-6)


# 3. Batching: leading axes, vmap, traced bin_size.


def _epoch_layer_batch():
    rng = np.random.default_rng(4)
    t_ExLxNxD = np.tanh(rng.normal(size=(4, 4, 256, 6)) * rng.uniform(0.5, 3, size=(4, 4, 1, 1)))
    return t_ExLxNxD.astype(np.float32), rng.integers(0, 2, size=256)


@pytest.mark.parametrize("kw", [dict(n_bins=12), dict(bin_size=0.3)])
def test_leading_axes_equal_separate_calls(kw):
    t, y = _epoch_layer_batch()
    i_xt, i_ty = binning.info_plane(t, y, **kw)
    assert i_xt.shape == i_ty.shape == (4, 4)
    for e in range(4):
        for layer in range(4):
            one = binning.info_plane(t[e, layer], y, **kw)
            np.testing.assert_allclose([i_xt[e, layer], i_ty[e, layer]], one, atol=1e-6)


def test_vmap_of_public_function_and_traced_bin_size():
    t, y = _epoch_layer_batch()
    t16 = t.reshape(16, 256, 6)
    i_xt, i_ty = jax.vmap(lambda a: binning.info_plane(a, y, bin_size=0.3))(t16)
    np.testing.assert_allclose(i_xt, binning.info_plane(t, y, bin_size=0.3)[0].reshape(16), atol=1e-6)
    sizes = jnp.array([0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0, 2.0])
    sweep = jax.jit(jax.vmap(lambda b: binning.info_plane(t16[0], y, bin_size=b)))(sizes)
    for b, xt, ty in zip(np.asarray(sizes), *sweep):
        np.testing.assert_allclose([xt, ty], binning.info_plane(t16[0], y, bin_size=float(b)), atol=1e-6)


def test_jit_of_public_function():
    t, y = _epoch_layer_batch()
    f = jax.jit(lambda a, b: binning.info_plane(a, b, n_bins=12))
    np.testing.assert_allclose(f(t[0, 0], y), binning.info_plane(t[0, 0], y, n_bins=12), atol=1e-6)


# 6. Input errors name the argument.


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(), "n_bins or bin_size"),
        (dict(n_bins=8, bin_size=0.5), "n_bins or bin_size"),
        (dict(n_bins=1), "n_bins"),
        (dict(n_bins=2.5), "n_bins"),
        (dict(bin_size=0.0), "bin_size"),
        (dict(bin_size=-1.0), "bin_size"),
        (dict(n_bins=8, value_range=(1, -1)), "value_range"),
        (dict(n_bins=8, value_range=(0,)), "value_range"),
        (dict(n_bins=8, base=1), "base"),
    ],
)
def test_bad_settings(kwargs, match):
    t = np.zeros((10, 2), np.float32)
    with pytest.raises(ValueError, match=match):
        binning.entropy(t, **kwargs)


def test_bad_arrays():
    t = np.zeros((10, 2), np.float32)
    y = np.zeros(10, np.int32)
    bad_t = t.copy()
    bad_t[3, 1] = np.nan
    for args, match in [
        ((bad_t, y), "t"),
        ((np.where(bad_t == bad_t, np.inf, 0.0), y), "t"),
        ((np.zeros(10, np.float32), y), "t"),
        ((np.zeros((0, 2), np.float32), y[:0]), "t"),
        ((t, np.zeros(9, np.int32)), "y"),
        ((t, np.full(10, 0.5)), "y"),
        ((t, -np.ones(10, np.int32)), "y"),
    ]:
        with pytest.raises(ValueError, match=match):
            binning.info_plane(*args, n_bins=8)
