"""The engine: same numbers as calling each estimator epoch by epoch and layer by layer."""

import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from ibjax import adapters, infoplane, noisy, pipeline, registry
from ibjax.config import DataConfig, MLPConfig, RunConfig, TrainConfig
from ibjax.data import Split, var_u
from ibjax.estimators import binning, edge, hsic, kde, knn, renyi
from ibjax.train import hyper, make_train, uses

WIDTHS = (12, 5, 2)  # one hidden layer and the output: two layer shapes, each compiled per estimator


@pytest.fixture(scope="module")
def small_run(data_dir):
    ds = var_u(data_dir / "var_u.mat")
    idx = np.random.default_rng(0).choice(4096, 192, replace=False)
    x, y = ds.x[idx], ds.y[idx]
    cfg = RunConfig(
        MLPConfig(WIDTHS), DataConfig(), TrainConfig(n_epochs=6, schedule="every:2", batch_size=64, learning_rate=0.05)
    )
    out = make_train(cfg.model.build(), cfg.train, Split(x, y, x, y), u=uses([cfg])).train(
        jax.random.key(0), hyper(cfg)
    )
    m = cfg.model.build()
    return m, jax.tree.map(np.asarray, out["params"]), np.asarray(out["epochs"]), x, y


def direct(name, st, m, p, e, l, x, y, key):
    """One (epoch, layer) by the public estimator functions, with the engine's key for that item."""
    k_item = jax.random.fold_in(jax.random.fold_in(key, infoplane.run_tag("r0")), e)
    k = jax.random.fold_in(k_item, l)
    t = np.asarray(m.apply(p, x)[1][l])
    if name == "binning":
        return binning.info_plane(t, y, n_bins=st["n_bins"])
    if name == "kde":
        return kde.info_plane(t, y, st["noise_var"], bound="upper")  # n_classes from y (eager)
    if name == "kde_relative":  # the variance by hand: scale x the mean squared pairwise distance
        t64 = t.astype(np.float64)
        var = st["scale"] * ((t64[:, None] - t64[None]) ** 2).sum(-1).mean()
        return kde.info_plane(t, y, var, bound="upper")
    if name == "knn":
        big = 2 * np.sqrt(t.shape[1]) * (t.max() - t.min()) + 1  # labels beyond T's diameter (Ross 2014)
        return knn.mi(x, t, k=st["k"]), knn.mi(t, big * np.eye(2)[y], k=st["k"])
    if name == "edge":
        k1, k2 = jax.random.split(k)
        return (
            edge.mi_keys(x, t, key=k1, n_keys=st["n_keys"])[0],
            edge.mi_keys(t, y.astype(np.float32), key=k2, n_keys=st["n_keys"])[0],
        )
    if name == "renyi":  # subset 0: all rows, no randomness
        return renyi.info_plane(t, x, y, alpha=st["alpha"], width=st["width"], gamma=st["gamma"], k=st["k"])
    if name == "hsic":
        return hsic.hsic(x, t, normalized=True), hsic.hsic(t, np.eye(2)[y], normalized=True)
    sample = lambda kk: m.noisy_apply(p, x, kk, st["sigma"])[2]
    plane = noisy.info_plane(sample, y, st["sigma"], k_item, n_c=st["n_c"], n_mc=1)
    return plane.i_xt[l], plane.i_ty[l]


def engine(m, params, epochs, x, y, name, options=None, **kw):
    return pipeline.evaluate_arrays(
        infoplane.ApplyFns(m.apply, m.noisy_apply),
        jax.tree.map(lambda a: a[None], params),
        epochs,
        x,
        y,
        name,
        options,
        run_ids=["r0"],
        progress=False,
        log=lambda *_: None,
        **kw,
    )


OPTIONS = {"smoothed": {"n_c": 4, "sigma": 0.1}, "edge": {"n_keys": 3}, "renyi": {"subset": 0}}


# "exact" counts a quantized network's codes and refuses this float run; tests/test_exact.py checks its
# engine path against the library on a quantized one
@pytest.mark.parametrize("name", sorted(set(registry.builtin()) - {"exact"}))
def test_engine_equals_per_epoch_per_layer_calls(small_run, name):
    m, params, epochs, x, y = small_run
    options = OPTIONS.get(name, {})
    st = registry.resolve(name, options, registry.Context(len(y), 2))
    est = registry.get(name)
    two_epochs = 2 * infoplane.item_bytes(est, st, len(y), list(WIDTHS[1:]), 1, 1) / 2**30  # chunks of 2: [0, 2], [4]
    got = engine(m, params, epochs, x, y, name, options, seed=7, memory_gb=two_epochs)
    assert got.shape == (1, 1, 3, len(WIDTHS) - 1)
    for i, e in enumerate(epochs):
        p = jax.tree.map(lambda a: a[i], params)
        for l in range(len(WIDTHS) - 1):
            want = direct(name, st, m, p, e, l, x, y, jax.random.key(7))
            # HSIC: 1e-4 relative, its centred float32 kernel sums lose digits when vmapped reductions
            # are reordered (values are O(0.1), not bits); Rényi 2e-4 bits, I = S(T) + S(Y) - S(T, Y)
            # of ~8-bit float32 entropies from a batched vs a single eigvalsh; every other estimator to 1e-6
            tol = {"hsic": 1e-4, "renyi": 2e-4, "kde_relative": 1e-5}.get(name, 1e-6)
            np.testing.assert_allclose(
                [got.i_xt[0, i, l], got.i_ty[0, i, l]],
                np.asarray(want, np.float64),
                atol=tol,
                rtol=tol,
                err_msg=f"{name} epoch {e} layer {l}",
            )
            if name == "kde":
                lower = kde.info_plane(np.asarray(m.apply(p, x)[1][l]), y, st["noise_var"], bound="lower")
                np.testing.assert_allclose(
                    [got.values["i_xt_lower"][0, 0, i, l], got.values["i_ty_lower"][0, 0, i, l]], lower, atol=tol
                )


def test_window_view_one_is_the_plain_plane_and_pools_epochs(small_run):
    m, params, epochs, x, y = small_run
    plain = engine(m, params, epochs, x, y, "binning")
    one = engine(m, params, epochs, x, y, "binning", view="window:1")
    np.testing.assert_allclose(one.i_xt, plain.i_xt, atol=1e-6)
    np.testing.assert_allclose(one.i_ty, plain.i_ty, atol=1e-6)
    w3 = engine(m, params, epochs, x, y, "binning", view="window:3")
    assert w3.shape == (1, 1, 1, len(WIDTHS) - 1) and w3.epochs.tolist() == [0]
    # by hand: pool the 3 epochs' layer-1 codes, I(T; input id) = H(T) - H(T | id)
    t = np.concatenate([np.asarray(m.apply(jax.tree.map(lambda a: a[i], params), x)[1][0]) for i in range(3)])
    ids = np.tile(np.arange(len(y)), 3)
    codes = np.asarray(binning.codes_n_bins(t, n_bins=30))
    rows = [tuple(r) for r in codes]
    h = lambda keys: (
        -sum(c / len(keys) * np.log2(c / len(keys)) for c in np.unique(keys, return_counts=True, axis=0)[1])
    )
    h_t = h(np.array([hash(r) for r in rows]))
    h_t_id = h(np.array([hash((r, i)) for r, i in zip(rows, ids)])) - np.log2(len(y))
    assert w3.i_xt[0, 0, 0] == pytest.approx(h_t - h_t_id, abs=1e-5)
    assert np.all(w3.i_xt <= np.log2(len(y)) + 1e-5)
    with pytest.raises(ValueError, match="needs a label-conditional estimator"):
        engine(m, params, epochs, x, y, "edge", view="window:2")


def test_memory_budget_too_small(small_run):
    m, params, epochs, x, y = small_run
    with pytest.raises(ValueError, match="memory_gb=1e-09 is too small for one epoch"):
        engine(m, params, epochs, x, y, "binning", memory_gb=1e-9)


def test_four_forced_devices_shard_items_and_match_one_device(small_run, tmp_path):
    m, params, epochs, x, y = small_run
    np.savez(
        tmp_path / "in.npz", x=x, y=y, epochs=epochs, **{f"p{i}": a for i, a in enumerate(jax.tree.leaves(params))}
    )
    script = textwrap.dedent(f"""
        import jax, numpy as np
        from ibjax import infoplane, models, pipeline, views
        assert jax.device_count() == 4
        z = np.load({str(tmp_path / "in.npz")!r})
        m = models.mlp({WIDTHS!r})
        tdef = jax.tree.structure(m.init(jax.random.key(0)))
        params = jax.tree.unflatten(tdef, [z[f"p{{i}}"][None] for i in range(tdef.num_leaves)])
        fns = infoplane.ApplyFns(m.apply)
        res = {{}}
        for name in ("binning", "kde"):
            plane = pipeline.evaluate_arrays(fns, params, z["epochs"], z["x"], z["y"], name, run_ids=["r0"], progress=False)
            res.update({{f"{{name}}_{{k}}": v for k, v in plane.values.items()}})
            p4, t4, e4 = infoplane.shard_items((jax.tree.map(lambda a: np.concatenate([a[0], a[0, :1]]), params),
                                                np.zeros(4, np.int32), np.concatenate([z["epochs"], z["epochs"][:1]]).astype(np.int32)))
            st = tuple(sorted(plane.settings.items()))
            out, fin = infoplane.evaluate_chunk(p4, t4, e4, z["x"], z["y"], jax.random.key(0), {{}}, apply_fn=fns, name=name,
                                                static=st, view=views.get("layers"), n_classes=2)
            assert len(out["i_xt"].sharding.device_set) == 4, out["i_xt"].sharding
        np.savez({str(tmp_path / "out.npz")!r}, **res)
        """)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    four = np.load(tmp_path / "out.npz")
    for name in ("binning", "kde"):
        one = engine(m, params, epochs, x, y, name)
        for k, v in one.values.items():
            np.testing.assert_allclose(four[f"{name}_{k}"], v, atol=1e-6)


def test_knn_label_mi_ground_truth():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    separated = (30.0 * y[:, None] + rng.normal(size=(2000, 2))).astype(np.float32) * 0.1
    # classes 30 noise-sd apart: I(T;Y) = H(Y) = 1 bit (to the sample's label balance)
    h_y = -sum(p * np.log2(p) for p in np.bincount(y) / 2000)
    assert float(adapters.label_mi(separated, y, k=3, metric="chebyshev", n_classes=2)) == pytest.approx(h_y, abs=0.02)
    independent = rng.normal(size=(2000, 2)).astype(np.float32)
    assert abs(float(adapters.label_mi(independent, y, k=3, metric="chebyshev", n_classes=2))) < 0.03
