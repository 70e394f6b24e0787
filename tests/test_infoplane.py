"""The engine: same numbers as calling each estimator epoch by epoch and layer by layer."""

import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from ibjax import adapters, infoplane, models, noisy
from ibjax.estimators import binning, edge, hsic, kde, knn
from ibjax.train import TrainConfig, make_train
from ibjax.data import Split, var_u


@pytest.fixture(scope="module")
def small_run(shared_dir):
    ds = var_u(shared_dir / "data" / "var_u.mat")
    idx = np.random.default_rng(0).choice(4096, 192, replace=False)
    x, y = ds.x[idx], ds.y[idx]
    cfg = TrainConfig(widths=(12, 5, 3, 2), n_epochs=6, schedule="every:2", batch_size=64, learning_rate=0.05)
    out = make_train(cfg, Split(x, y, x, y))(jax.random.key(0))
    m = models.mlp(cfg.widths)
    return m, jax.tree.map(np.asarray, out["params"]), np.asarray(out["epochs"]), x, y


def direct(name, st, m, p, e, l, x, y, key):
    """One (epoch, layer) by the public estimator functions."""
    k = jax.random.fold_in(jax.random.fold_in(key, e), l)
    t = np.asarray(m.apply(p, x)[1][l])
    if name == "binning":
        return binning.info_plane(t, y, n_bins=st["n_bins"])
    if name == "kde":
        return kde.info_plane(t, y, st["noise_var"], bound="upper")  # n_classes from y (eager)
    if name == "knn":
        big = 2 * np.sqrt(t.shape[1]) * (t.max() - t.min()) + 1  # labels beyond T's diameter (Ross 2014)
        return knn.mi(x, t, k=st["k"]), knn.mi(t, big * np.eye(2)[y], k=st["k"])
    if name == "edge":
        k1, k2 = jax.random.split(k)
        return edge.mi(x, t, key=k1), edge.mi(t, y.astype(np.float32), key=k2)
    if name == "hsic":
        return hsic.hsic(x, t, normalized=True), hsic.hsic(t, np.eye(2)[y], normalized=True)
    sample = lambda kk: m.noisy_apply(p, x, kk, st["sigma"])[2]
    plane = noisy.info_plane(sample, y, st["sigma"], jax.random.fold_in(key, e), n_c=st["n_c"], n_mc=1)
    return plane.i_xt[l], plane.i_ty[l]


@pytest.mark.parametrize("name", sorted(adapters.ESTIMATORS))
def test_engine_equals_per_epoch_per_layer_calls(small_run, name):
    m, params, epochs, x, y = small_run
    st = adapters.resolve(name, {"n_c": 4} if name == "smoothed" else {}, n=len(y), n_classes=2)
    key = jax.random.key(7)
    two_epochs = 2 * infoplane.work_bytes(name, st, len(y), [5, 3, 2]) / 2**30  # chunks of 2: [0, 2], [4]
    got = infoplane.evaluate_params(infoplane.ApplyFns(m.apply, m.noisy_apply), params, epochs, x, y,
                                    estimator=name, settings=st, key=key, memory_gb=two_epochs)
    assert got["i_xt"].shape == (3, 3)
    for i, e in enumerate(epochs):
        p = jax.tree.map(lambda a: a[i], params)
        for l in range(3):
            want = direct(name, st, m, p, e, l, x, y, key)
            # HSIC: 1e-4 relative, its centred float32 kernel sums lose digits when vmapped reductions
            # are reordered (values are O(0.1), not bits); every other estimator to 1e-6
            tol = 1e-4 if name == "hsic" else 1e-6
            np.testing.assert_allclose([got["i_xt"][i, l], got["i_ty"][i, l]], np.asarray(want, np.float64),
                                       atol=tol, rtol=tol, err_msg=f"{name} epoch {e} layer {l}")
            if name == "kde":
                lower = kde.info_plane(np.asarray(m.apply(p, x)[1][l]), y, st["noise_var"], bound="lower")
                np.testing.assert_allclose([got["i_xt_lower"][i, l], got["i_ty_lower"][i, l]], lower, atol=tol)


def test_as_if_random_window_one_is_the_plain_plane(small_run):
    m, params, epochs, x, y = small_run
    st = tuple(sorted(adapters.resolve("binning", {}, n=len(y), n_classes=2).items()))
    pooled = infoplane.as_if_random(params, x, y, apply_fn=infoplane.ApplyFns(m.apply), window=1, name="binning", settings=st)
    plain = infoplane.evaluate_params(infoplane.ApplyFns(m.apply), params, epochs, x, y, estimator="binning",
                                      settings=dict(st))
    np.testing.assert_allclose(pooled["i_xt"], plain["i_xt"], atol=1e-6)
    np.testing.assert_allclose(pooled["i_ty"], plain["i_ty"], atol=1e-6)
    w3 = infoplane.as_if_random(params, x, y, apply_fn=infoplane.ApplyFns(m.apply), window=3, name="binning", settings=st)
    assert w3["i_xt"].shape == (1, 3)
    # pooling 3 networks can only add symbols: I(T; input id) = H(T) - H(T | id) <= log2(N) bits
    assert np.all(w3["i_xt"] <= np.log2(len(y)) + 1e-5)
    with pytest.raises(ValueError, match="as-if-random supports"):
        infoplane.as_if_random(params, x, y, apply_fn=infoplane.ApplyFns(m.apply), window=1, name="edge", settings=())


def test_memory_budget_too_small(small_run):
    m, params, epochs, x, y = small_run
    with pytest.raises(ValueError, match="memory_gb=1e-09 is too small for one epoch"):
        infoplane.evaluate_params(infoplane.ApplyFns(m.apply), params, epochs, x, y, estimator="binning",
                                  settings=adapters.resolve("binning", {}, n=len(y), n_classes=2), memory_gb=1e-9)


def test_four_forced_devices_shard_epochs_and_match_one_device(small_run, tmp_path):
    m, params, epochs, x, y = small_run
    np.savez(tmp_path / "in.npz", x=x, y=y, epochs=epochs, **{f"p{i}": a for i, a in enumerate(jax.tree.leaves(params))})
    script = textwrap.dedent(f"""
        import jax, numpy as np
        from ibjax import adapters, infoplane, models
        assert jax.device_count() == 4
        z = np.load({str(tmp_path / 'in.npz')!r})
        m = models.mlp((12, 5, 3, 2))
        tdef = jax.tree.structure(m.init(jax.random.key(0)))
        params = jax.tree.unflatten(tdef, [z[f"p{{i}}"] for i in range(tdef.num_leaves)])
        fns = infoplane.ApplyFns(m.apply)
        res = {{}}
        for name in ("binning", "kde"):
            st = adapters.resolve(name, {{}}, n=192, n_classes=2)
            res.update({{f"{{name}}_{{k}}": v for k, v in infoplane.evaluate_params(
                fns, params, z["epochs"], z["x"], z["y"], estimator=name, settings=st).items()}})
            p4 = infoplane.shard_epochs(jax.tree.map(lambda a: np.concatenate([a, a[:1]]), params))
            e4 = infoplane.shard_epochs(np.concatenate([z["epochs"], z["epochs"][:1]]).astype(np.int32))
            out = infoplane.evaluate_chunk(p4, e4, z["x"], z["y"], jax.random.key(0), apply_fn=fns, name=name,
                                           settings=tuple(sorted(st.items())))
            assert len(out["i_xt"].sharding.device_set) == 4, out["i_xt"].sharding
            assert [s.data.shape[0] for s in out["i_xt"].addressable_shards] == [1, 1, 1, 1]
        np.savez({str(tmp_path / 'out.npz')!r}, **res)
        """)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    four = np.load(tmp_path / "out.npz")
    fns = infoplane.ApplyFns(m.apply)
    for name in ("binning", "kde"):
        one = infoplane.evaluate_params(fns, params, epochs, x, y, estimator=name,
                                        settings=adapters.resolve(name, {}, n=192, n_classes=2))
        for k, v in one.items():
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
