"""Binning range modes (fixed, layer, neuron, global) and spacings (uniform, quantile)."""

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ibjax import registry
from ibjax.estimators import binning

RNG = np.random.default_rng(0)
T = RNG.normal(size=(512, 3)).astype(np.float32) * np.array([1.0, 5.0, 0.2], np.float32)
Y = RNG.integers(0, 2, 512)


def test_layer_and_global_uniform_equal_fixed_on_the_same_range():
    lo, hi = float(T.min()), float(T.max())
    fixed = binning.info_plane(T, Y, n_bins=12, value_range=(lo, hi))
    layer = binning.info_plane(T, Y, n_bins=12, range_mode="layer")
    edges = binning.global_edges([T[:100], T[100:]], n_bins=12)
    assert edges == tuple(float(e) for e in binning.bin_edges(12, (lo, hi)))
    glob = binning.info_plane(T, Y, range_mode="global", edges=edges)
    np.testing.assert_allclose(np.array([layer, glob]), np.array([fixed, fixed]), atol=1e-6)


def test_neuron_mode_is_invariant_to_per_unit_scale_and_layer_mode_is_not():
    grid = RNG.integers(0, 8, (512, 3)).astype(np.float32)  # 8 values per unit, each inside its own bin of 16
    scaled = grid * np.array([1.0, 100.0, 0.01], np.float32) + np.array([0.0, -3.0, 7.0], np.float32)
    h = lambda t, mode: float(binning.entropy(t, n_bins=16, range_mode=mode))
    h_codes = -sum(c / 512 * math.log2(c / 512) for c in np.unique(grid, axis=0, return_counts=True)[1])
    np.testing.assert_allclose([h(grid, "neuron"), h(scaled, "neuron")], [h_codes, h_codes], atol=1e-5)
    assert h(scaled, "layer") < h_codes - 1.0  # the small unit collapses into one bin of the layer range


def test_quantile_bins_have_equal_mass():
    t = RNG.permutation(1000).astype(np.float32)[:, None] ** 3  # distinct, very skewed values
    y = (t[:, 0] > np.median(t)).astype(int)
    for mode in ("layer", "neuron"):
        i_xt, i_ty = binning.info_plane(t, y, n_bins=4, range_mode=mode, spacing="quantile")
        np.testing.assert_allclose([i_xt, i_ty], [2.0, 1.0], atol=1e-5)  # 4 bins of 250; the median is an edge
    edges = binning.global_edges(t, n_bins=4, spacing="quantile")
    np.testing.assert_allclose(binning.entropy(t, range_mode="global", edges=edges), 2.0, atol=1e-5)
    codes = np.minimum(np.digitize(t[:, 0], binning.bin_edges(4, (0.0, float(t.max())))) - 1, 3)
    p = np.unique(codes, return_counts=True)[1] / 1000  # uniform bins on the skewed values: 69%, 18%, 13%, 0.1%
    np.testing.assert_allclose(binning.entropy(t, n_bins=4, range_mode="layer"), -np.sum(p * np.log2(p)), atol=1e-5)


def test_padding_is_ignored_and_fixed_range_clipping_warns():
    padded = np.concatenate([T, np.zeros((512, 2), np.float32)], axis=1)
    for mode, spacing in (("layer", "quantile"), ("neuron", "uniform")):
        want = binning.info_plane(T, Y, n_bins=10, range_mode=mode, spacing=spacing)
        got = binning.info_plane(padded, Y, n_bins=10, range_mode=mode, spacing=spacing, n_live=3)
        np.testing.assert_allclose(got, want, atol=1e-6)
    relu = np.linspace(0.0, 10.0, 512, dtype=np.float32)[:, None]  # 90% above the fixed range's top
    with pytest.warns(UserWarning, match="outside value_range"):
        clipped = binning.entropy(relu, n_bins=30, value_range=(-1.0, 1.0))
    codes = np.minimum(np.digitize(relu[:, 0], binning.bin_edges(30)) - 1, 29)  # IDNNs codes, numpy
    p = np.unique(codes, return_counts=True)[1] / 512  # 460 of 512 values share the top bin
    assert p.max() == 460 / 512
    np.testing.assert_allclose(clipped, -np.sum(p * np.log2(p)), atol=1e-5)
    assert float(clipped) < float(binning.entropy(relu, n_bins=30, range_mode="layer")) - 3.0
    fn = jax.jit(
        partial(
            registry.get("binning").fn,
            n_bins=30,
            bin_size=None,
            value_range=(-1.0, 1.0),
            range_mode="fixed",
            spacing="uniform",
            edges=None,
        )
    )
    assert bool(fn(jnp.asarray(relu), 3, None, None, jnp.asarray(Y))["warn_outside_range"])


def test_bad_settings():
    ctx = registry.Context(512, 2)
    bad = [
        ({"range_mode": "bogus"}, "range_mode must be one of"),
        ({"spacing": "quantile"}, "quantile"),
        ({"range_mode": "global"}, "needs edges"),
        ({"range_mode": "global", "edges": (1.0, 0.0)}, "non-decreasing"),
        ({"range_mode": "global", "edges": (1.0, 1.0)}, "non-empty range"),
        ({"bin_size": 0.1, "range_mode": "layer"}, "n_bins only"),
        ({"value_range": (1.0, 1.0)}, "low < high"),
    ]
    for options, message in bad:
        with pytest.raises(ValueError, match=message):
            registry.resolve("binning", options, ctx)
    with pytest.raises(ValueError, match="empty range"):
        binning.global_edges(np.ones((5, 2)), n_bins=4)
    with pytest.raises(ValueError, match="disagrees"):
        binning.entropy(T, n_bins=5, range_mode="global", edges=(0.0, 1.0, 2.0))
