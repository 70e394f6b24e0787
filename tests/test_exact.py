"""Exact counting estimator: brute-force counts over the 4096 12-bit inputs, closed forms, relabelling
invariance, repeated inputs, the registry entry and bad input."""

import collections
import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ibjax import models, pipeline, quantize, registry
from ibjax.estimators import exact

X12 = ((np.arange(4096)[:, None] >> np.arange(12)) & 1).astype(np.float32)  # all 12-bit inputs
Y12 = np.random.default_rng(0).integers(0, 2, 4096)


def brute(rows, y, x_ids=None):
    """(I(X;T), I(T;Y)) in bits by dictionaries of counts, in float64 numpy."""
    rows = [tuple(r) for r in np.asarray(rows).tolist()]
    n = len(rows)
    h = lambda c: -sum(v / n * math.log2(v / n) for v in c.values())
    c_t = collections.Counter(rows)
    i_ty = h(c_t) + h(collections.Counter(y.tolist())) - h(collections.Counter(zip(rows, y.tolist())))
    if x_ids is None:
        return h(c_t), i_ty
    h_t_given_x = h(collections.Counter(zip(rows, x_ids.tolist()))) - h(collections.Counter(x_ids.tolist()))
    return h(c_t) - h_t_given_x, i_ty


@pytest.mark.parametrize("activation,bits", [("tanh", 2), ("relu", 4)])  # same shapes: one compile
def test_quantized_network_matches_brute_force(activation, bits):
    m = models.mlp((12, 6, 2), activation=activation, quant_bits=bits)
    params = m.init(jax.random.key(1))
    acts = m.apply(params, jnp.asarray(X12))[1]
    ranges = quantize.layer_ranges(params, activation, m.n_layers)
    with jax.enable_x64(True):  # 1e-9 bits needs float64 sums of the exact counts
        for a, (lo, hi) in zip(acts, ranges):
            want = brute(np.asarray(a), Y12)
            got = exact.info_plane_values(np.asarray(a), Y12, levels=2**bits)
            np.testing.assert_allclose([float(g) for g in got], want, rtol=0, atol=1e-9)
            codes = quantize.codes(a, bits=bits, lo=lo, hi=hi)  # the quantizer's own codes: same counts
            assert int(codes.min()) >= 0 and int(codes.max()) <= 2**bits - 1
            np.testing.assert_allclose([float(g) for g in exact.info_plane(codes, Y12)], want, rtol=0, atol=1e-9)


def test_relabelling_and_closed_forms():
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 4, (4096, 5))
    perm = rng.permutation(100)
    relabelled = perm[codes] * 7 - 300  # a bijection per value, shifted negative
    with jax.enable_x64(True):  # counts are identical; only the summation order of the logs differs
        a, b = exact.info_plane(codes, Y12), exact.info_plane(relabelled, Y12)
        np.testing.assert_allclose(np.array(a), np.array(b), rtol=0, atol=1e-12)
        np.testing.assert_allclose(exact.entropy(codes[:, ::-1]), exact.entropy(codes), rtol=0, atol=1e-12)
    np.testing.assert_allclose(exact.entropy(X12.astype(np.int32)), 12.0, atol=1e-5)  # T = X: log2 4096
    np.testing.assert_allclose(exact.entropy(np.zeros((4096, 3), np.int32)), 0.0, atol=0)
    i_xt, i_ty = exact.info_plane(Y12[:, None], Y12)  # T = Y: I(T;Y) = H(Y)
    p = Y12.mean()
    h_y = -(p * math.log2(p) + (1 - p) * math.log2(1 - p))
    np.testing.assert_allclose([i_xt, i_ty], [h_y, h_y], atol=1e-5)
    batched = exact.info_plane(np.stack([codes, relabelled]), Y12)  # leading axes: one call
    np.testing.assert_allclose(batched[0], [a[0], a[0]], atol=1e-5)


def test_repeated_inputs():
    rng = np.random.default_rng(2)
    x_ids = rng.integers(0, 60, 4096)
    codes = rng.integers(0, 3, (4096, 2))  # T varies for one input: H(T|X) > 0
    with jax.enable_x64(True):
        got = exact.info_plane(codes, Y12, x_ids=x_ids)
        np.testing.assert_allclose([float(g) for g in got], brute(codes, Y12, x_ids), atol=1e-9)
    x = X12[x_ids]  # inputs that repeat; T a function of x: I(X;T) = H(T) exactly
    ids = exact.input_ids(x)
    assert len(np.unique(np.asarray(ids))) == len(np.unique(x_ids))
    t = (X12[:, :3].astype(np.int32) @ np.array([1, 2, 4]))[x_ids][:, None]
    i_xt, _ = exact.info_plane(t, Y12, x_ids=ids)
    assert float(i_xt) == float(exact.entropy(t))


def test_registry_entry_matches_library_and_refuses_float_runs():
    m = models.mlp((12, 6, 2), activation="tanh", quant_bits=4)
    params = jax.tree.map(lambda *a: jnp.stack(a)[None], *[m.init(jax.random.key(s)) for s in range(2)])  # 1 x 2 x ...
    plane = pipeline.evaluate_arrays(
        m, params, [0, 1], X12, Y12, "exact", {"levels": 16}, progress=False, log=lambda *_: None
    )
    acts = m.apply(m.init(jax.random.key(1)), jnp.asarray(X12))[1]
    for l, a in enumerate(acts):
        want = exact.info_plane_values(np.asarray(a), Y12, levels=16)
        # float32 sums of the same counts in two orders (engine vs library call): 1e-4 bits; exactness
        # itself is tested above in float64 to 1e-9
        np.testing.assert_allclose([plane.i_xt[0, 1, l], plane.i_ty[0, 1, l]], want, atol=1e-4)
    with pytest.raises(ValueError, match="quant_bits=0"):
        pipeline.evaluate_arrays(
            m,
            params,
            [0, 1],
            X12,
            Y12,
            "exact",
            run_config={"model": {"quant_bits": 0}},
            progress=False,
            log=lambda *_: None,
        )
    with pytest.raises(ValueError, match="needs option levels"):
        pipeline.evaluate_arrays(m, params, [0, 1], X12, Y12, "exact", progress=False, log=lambda *_: None)
    t = jnp.tanh(jnp.asarray(X12[:, :4]) @ jnp.linspace(-1, 1, 12).reshape(4, 3))  # continuous: refused
    out = jax.jit(partial(registry.get("exact").fn, levels=16))(t, 3, None, None, jnp.asarray(Y12))
    assert bool(out["warn_not_quantized"]) and np.isnan(out["i_xt"])  # the engine raises on the NaN, naming it


def test_minmax_run_counts_its_softmax_output_of_quantized_logits():
    """quant_range minmax (Lorenzen et al.): the output is the softmax of 2**b-level logits, up to
    (2**b)**C values; the run's config sets the exact estimator's levels so, and the counts are right."""
    m = models.mlp((12, 6, 2), activation="tanh", quant_bits=2, quant_range="minmax")
    v = m.init(jax.random.key(0))
    v["batch_stats"]["range_1"] = jnp.array([-0.6, 0.6])  # a narrow logit range: many output values
    v["params"]["Dense_1"]["kernel"] = v["params"]["Dense_1"]["kernel"] * 20.0
    params = jax.tree.map(lambda a: jnp.asarray(a)[None, None], v)
    cfg = {"model": {"quant_bits": 2, "quant_range": "minmax"}}
    kw = dict(progress=False, log=lambda *_: None)
    plane = pipeline.evaluate_arrays(m, params, [0], X12, Y12, "exact", run_config=cfg, **kw)
    acts = m.apply(v, jnp.asarray(X12))[1]
    assert len(np.unique(np.asarray(acts[-1]))) > 4  # more than 2**bits values: the old default refused it
    want = exact.info_plane_values(np.asarray(acts[-1]), Y12, levels=16)
    np.testing.assert_allclose([plane.i_xt[0, 0, -1], plane.i_ty[0, 0, -1]], want, atol=1e-4)


def test_bad_input():
    with pytest.raises(ValueError, match="non-integer"):
        exact.info_plane(np.full((10, 2), 0.5), np.zeros(10, int))
    with pytest.raises(ValueError, match="integer dtype"):
        jax.jit(lambda c: exact.entropy(c))(jnp.zeros((10, 2)))
    with pytest.raises(ValueError, match="not quantized"):
        exact.info_plane_values(np.linspace(0, 1, 40).reshape(20, 2), np.zeros(20, int), levels=4)
    with pytest.raises(ValueError, match="levels"):
        exact.info_plane_values(np.zeros((4, 2)), np.zeros(4, int), levels=1)
    with pytest.raises(ValueError, match="x_ids"):
        exact.info_plane(np.zeros((4, 2), int), np.zeros(4, int), x_ids=np.array([0, 1, 2, 9]))
    assert float(exact.entropy(np.array([[1.0], [2.0], [2.0], [1.0]]))) == 1.0  # whole-number floats are codes
