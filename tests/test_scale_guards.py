"""No silent wrong numbers from the scale of the inputs (issue 25).

Binning codes stay exact at any bin size; EDGE and Rényi warn on concrete inputs whose scale lies
outside the range where their absolute constants / float32 leave the estimate scale-free (the
ranges come from measurements recorded next to ``edge.SAFE_STD`` and ``renyi.SAFE_SPREAD``); HSIC
refuses a normalised estimate against a constant (one-class) y.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ibjax.estimators import binning, edge, hsic, renyi

X_4096x12 = ((np.arange(4096)[:, None] >> np.arange(12)) & 1).astype(np.float32)
Y_4096 = (np.arange(4096) % 2).astype(np.int32)


def _tanh_layer(x, width, seed=0):
    """A fixed random tanh layer: bijective on the 12-bit inputs (4096 distinct rows)."""
    w = np.random.default_rng(seed).normal(size=(x.shape[1], width)).astype(np.float32)
    return np.tanh(x @ w - 0.5).astype(np.float32)


T_4096x10 = _tanh_layer(X_4096x12, 10)


@pytest.fixture
def no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _plugin_bits(labels_N):
    _, counts = np.unique(labels_N, return_counts=True)
    p = counts / counts.sum()
    return float(-np.sum(p * np.log2(p)))


# ---------------------------------------------------------------- binning: exact codes at any bin size


def test_bin_size_finer_than_the_floats_keeps_every_row_apart():
    assert len(np.unique(T_4096x10, axis=0)) == 4096
    # I(X;T) = H(T) = H(X) = 12 bits for a bijective T; clipping the codes at +-2**30 gave 6.09 bits.
    i_xt, i_ty = binning.info_plane(T_4096x10, Y_4096, bin_size=1e-12)
    assert (float(i_xt), float(i_ty)) == (12.0, 1.0)
    assert float(binning.entropy(X_4096x12, bin_size=1e-12)) == 12.0
    sizes = jnp.array([1e-12, 1e-30, 1e-38, 1e-6], jnp.float32)  # traced under jit + vmap: no check, exact codes
    i_xt_S, _ = jax.jit(jax.vmap(lambda b: binning.info_plane(T_4096x10, Y_4096, bin_size=b)))(sizes)
    np.testing.assert_array_equal(i_xt_S, 12.0)


def test_bin_size_codes_partition_like_exact_floor_across_the_fine_threshold():
    """b = 2**-30: the grid/fine threshold is at |t| = 2**25 b = 2**-5; float64 floor is exact here."""
    b = 2.0**-30
    up, down = (lambda v: np.nextafter(np.float32(v), np.float32(np.inf))), (lambda v: np.nextafter(np.float32(v), 0))
    t_N = np.array(
        [
            *(2.0**-20 + np.array([0, 2.0**-32, 2.0**-31])),  # three floats, one bin
            2.0**-20 + 2.0**-30,  # the next bin
            *(-(2.0**-20) - np.array([0, 2.0**-32])),  # one bin (negative)
            0.0,
            -0.0,  # one bin
            down(2.0**-5),
            down(down(2.0**-5)),  # just below the threshold: float spacing 2 b, two bins
            2.0**-5,
            up(2.0**-5),
            0.5,
            up(0.5),
            -0.5,
            1.0,
            up(1.0),
            1.5,
            -1.0,
            -1.5,  # |t / b| >= 2**30: collided at the old +-2**30 clip
        ],
        np.float32,
    )[:, None]
    exact_N = np.floor(t_N[:, 0].astype(np.float64) / b)
    assert len(np.unique(exact_N)) == 17
    np.testing.assert_allclose(binning.entropy(t_N, bin_size=b), _plugin_bits(exact_N), atol=1e-6)
    codes_N = np.asarray(binning.codes_bin_size(jnp.asarray(t_N), b))[:, 0]
    same_code = codes_N[:, None] == codes_N[None, :]
    np.testing.assert_array_equal(same_code, exact_N[:, None] == exact_N[None, :])


def test_bin_size_below_the_smallest_normal_float_is_refused():
    with pytest.raises(ValueError, match=r"bin_size=1e-40 on activations in \[-.*\] is below 1.175e-38"):
        binning.info_plane(T_4096x10, Y_4096, bin_size=1e-40)
    with pytest.raises(ValueError, match="bin_size must be >= 1.175e-38"):
        binning.entropy(T_4096x10, bin_size=np.array([0.5, 1e-45]))


# ---------------------------------------------------------------- EDGE: warn outside the measured safe std range


def test_edge_warns_on_a_tiny_layer_and_returns_the_same_number():
    t_small = 1e-6 * T_4096x10  # p-stable: columns of std < 1e-4 are not standardised
    with pytest.warns(UserWarning, match=r"p-stable hashing\): the median column std of y is 6.*e-07, outside \[0.001"):
        i_warned = float(edge.mi(X_4096x12, t_small))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert float(edge.mi(X_4096x12, t_small)) == i_warned
    assert i_warned < 0.01  # the collapse the warning is about (9.79 bits at scale 1)
    with pytest.warns(UserWarning, match="median column std of x is .*standardise x"):
        edge.mi_keys(t_small, Y_4096, key=jax.random.key(1), n_keys=2)


def test_edge_floor_hashing_warns_below_its_larger_threshold():
    rng = np.random.default_rng(1)
    a_N = rng.normal(size=4096).astype(np.float32)
    b_N = (0.8 * a_N + 0.6 * rng.normal(size=4096)).astype(np.float32)
    with pytest.warns(
        UserWarning, match=r"floor hashing\): the median column std of x is 0.01, outside \[0.15, 1e\+30\]"
    ):
        edge.mi(0.01 * a_N, b_N)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        edge.mi(0.01 * a_N, b_N, epsilon=0.001)  # a manual epsilon has no absolute part: no lower bound


def test_edge_in_range_does_not_warn_and_traced_inputs_are_skipped(no_warnings):
    i_1 = float(edge.mi(X_4096x12, T_4096x10, U=20.0))  # U above the estimate: no near-cap warning
    np.testing.assert_allclose(i_1, 11.0094, atol=1e-3)  # measured, scale 1
    assert float(edge.mi(X_4096x12, 1e10 * T_4096x10, U=20.0)) == i_1  # p-stable in range: scale-free
    i = jax.jit(lambda t: edge.mi(X_4096x12, t))(1e-6 * T_4096x10)  # traced: no check, no warning
    assert float(i) < 0.01


def test_edge_through_the_engine_records_the_scale_warning_per_epoch_and_layer():
    """The engine's traced path cannot warn per call: the flag is computed in the compiled program and
    recorded in the plane's warnings, naming each (setting, run, epoch, T) outside edge.SAFE_STD."""
    from ibjax import pipeline

    acts = [np.stack([T_4096x10[:1024], 1e-6 * T_4096x10[:1024]])]  # epoch 0 in range, epoch 1 tiny
    said = []
    plane = pipeline.evaluate_activations(
        acts, Y_4096[:1024], "edge", {"n_keys": 1}, x=X_4096x12[:1024], progress=False, log=said.append
    )
    (message,) = [m for m in plane.warnings if "median column std" in m]
    assert plane.warnings[message] == [[0, 0, 1, 0]]  # epoch 1 only
    assert any("median column std" in line for line in said)
    assert edge.scale_outside(1e-6 * T_4096x10, "p-stable") and not edge.scale_outside(T_4096x10, "p-stable")
    assert edge.scale_outside(0.01 * T_4096x10[:, :3], "floor")
    assert not edge.scale_outside(0.01 * T_4096x10[:, :3], "floor", knn_bandwidth=False)


# ---------------------------------------------------------------- Rényi: warn outside the float32-safe spread

A_400x3 = np.random.default_rng(0).normal(size=(400, 3)).astype(np.float32)
B_400x3 = (0.6 * A_400x3 + 0.8 * np.random.default_rng(1).normal(size=(400, 3))).astype(np.float32)


@pytest.mark.parametrize("scale, value", [(1e-20, 0.0), (1e20, 0.0)])
def test_renyi_warns_beyond_the_float32_range(scale, value):
    with pytest.warns(UserWarning, match=r"RMS spread .* of x is .*, outside \[1e-15, 1e\+15\]"):
        with pytest.warns(UserWarning, match="RMS spread .* of y is"):
            i = float(renyi.mi(scale * A_400x3, scale * B_400x3))
    np.testing.assert_allclose(i, value, atol=1e-3)  # the wrong number warned about (3.07 bits at scale 1)
    with pytest.warns(UserWarning, match="spread .* of t is"):
        renyi.info_plane(scale * A_400x3, B_400x3, np.arange(400) % 3)


def test_renyi_in_range_does_not_warn_and_traced_inputs_are_skipped(no_warnings):
    i_1 = float(renyi.mi(A_400x3, B_400x3))
    np.testing.assert_allclose(i_1, 3.0695, atol=1e-3)  # measured
    np.testing.assert_allclose(renyi.mi(1e12 * A_400x3, 1e12 * B_400x3), i_1, rtol=1e-4)  # scale-free in range
    np.testing.assert_allclose(jax.jit(renyi.entropy)(A_400x3), renyi.entropy(A_400x3), rtol=1e-6)
    renyi.entropy(np.ones((50, 2), np.float32))  # all rows equal: spread 0 is the width-1 case, no warning


# ---------------------------------------------------------------- HSIC: one class in y


def test_hsic_normalized_refuses_one_class_labels():
    y_1hot = jax.nn.one_hot(np.zeros(64, np.int32), 2)
    with pytest.raises(ValueError, match=r"y is constant .* HSIC with the labels needs at least 2 classes \(got 1\)"):
        hsic.hsic(A_400x3[:64], y_1hot, normalized=True)
    assert float(hsic.hsic(A_400x3[:64], y_1hot)) == 0.0  # raw HSIC against a constant is exactly 0


def test_hsic_through_the_engine_refuses_one_class_before_computing():
    from ibjax import infoplane, models, pipeline

    m = models.mlp((3, 4, 2))
    params = jax.tree.map(lambda a: a[None, None], m.init(jax.random.key(0)))
    x, y = np.asarray(A_400x3[:64]), np.zeros(64, np.int32)
    with pytest.raises(ValueError, match=r"HSIC with the labels needs at least 2 classes \(got 1\)"):
        pipeline.evaluate_arrays(infoplane.ApplyFns(m.apply), params, [0], x, y, "hsic", {}, progress=False)
