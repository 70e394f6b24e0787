import json
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ibjax import checkpoints, data, models, pipeline
from ibjax.config import CNNConfig, ResNetConfig, RunConfig, TrainConfig
from ibjax.estimators import binning
from ibjax.train import batch_indices, hyper, make_train, merge_variables

FIRST1000_MD5 = {
    "t10k-images-idx3-ubyte.gz": "c3379f275b566375ab4528689c1795c4",
    "t10k-labels-idx1-ubyte.gz": "1d88dbe1fbee9022616057ede4463181",
}


def _split():
    x = np.asarray(jax.random.uniform(jax.random.key(5), (16, 6, 6, 1)))
    y = (x.mean(axis=(1, 2, 3)) > 0.5).astype(np.int32)
    return data.Split(x[:12], y[:12], x[12:], y[12:])


def test_batch_norm_scan_equals_python_loop_and_checkpoints_reproduce(tmp_path):
    """Batch norm inside the training scan: 2 epochs x 3 steps of SGD equal a hand-written loop (float32
    reduction order: 1e-5) for seed 0 of a vmapped pair, the running mean after the first step is
    0.9 * 0 + 0.1 * the batch mean of tanh(conv(x)) (BN momentum 0.9), and a checkpoint reloads to the
    same activations."""
    sp = _split()
    model = models.cnn((6, 6, 1), filters=(2, 3), n_classes=2, activation="tanh", batch_norm=True)
    cfg = TrainConfig(
        optimizer="sgd", learning_rate=0.1, batch_size=4, n_epochs=2, schedule="all", checkpoint_at="after"
    )
    hp = hyper(RunConfig(CNNConfig((6, 6, 1), (2, 3), 2, "tanh", batch_norm=True), train=cfg))
    tr = make_train(model, cfg, sp)
    key = jax.random.key(0)
    both = jax.jit(jax.vmap(tr.train, in_axes=(0, None)))(jax.vmap(jax.random.key)(jnp.arange(2)), hp)  # seeds
    out = jax.tree.map(lambda a: a[0], both)

    v = model.init(jax.random.split(key)[0])
    params, stats = v["params"], v["batch_stats"]
    x, y = jnp.asarray(sp.x_train), jnp.asarray(sp.y_train)
    loss = lambda p, s, xb, yb, w: (
        optax.softmax_cross_entropy_with_integer_labels((r := model.train_apply(p, s, xb, w > 0))[0], yb).mean(),
        r[1],
    )
    step = jax.jit(jax.value_and_grad(loss, has_aux=True))
    first = None
    for epoch in range(2):  # structural: the reference loop the scan must equal
        idx, w = batch_indices(jax.random.split(jax.random.fold_in(jax.random.split(key)[1], epoch))[0], 12, 4)
        for b in range(3):
            (_, stats_new), g = step(params, stats, x[idx[b]], y[idx[b]], w[b])
            if first is None:
                k, bias = params["Conv_0"]["kernel"], params["Conv_0"]["bias"]
                z = jax.lax.conv_general_dilated(
                    x[idx[b]], k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
                )
                first = (stats_new, jnp.tanh(z + bias[None, None, None]).mean(axis=(0, 1, 2)))
            params = jax.tree.map(lambda p, gg: p - 0.1 * gg, params, g)
            stats = stats_new
    np.testing.assert_allclose(first[0]["BatchNorm_0"]["mean"], 0.1 * first[1], rtol=1e-5, atol=1e-7)
    want = {"params": params, "batch_stats": stats}
    got = jax.tree.map(lambda a: a[-1], out["params"])
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), got, want)
    assert float(jnp.abs(stats["BatchNorm_1"]["var"] - 1.0).max()) > 1e-3  # running stats moved from init
    # metrics use the running averages: the test accuracy is that of model.apply on the final variables
    acc = (jnp.argmax(model.apply(want, jnp.asarray(sp.x_test))[0], -1) == sp.y_test).mean()
    np.testing.assert_allclose(out["metrics"]["test_acc"][-1], acc, atol=1e-6)
    assert not np.allclose(both["params"]["params"]["Conv_0"]["kernel"][1], out["params"]["params"]["Conv_0"]["kernel"])
    # a run directory stores {params, batch_stats}; load_run + apply gives the same activations
    rc = RunConfig(CNNConfig((6, 6, 1), (2, 3), 2, "tanh", batch_norm=True), train=cfg).to_dict()
    checkpoints.write_run(tmp_path / "r", rc, out["epochs"], out["params"], out["metrics"])
    run = checkpoints.load_run(tmp_path / "r")
    assert "batch_stats/BatchNorm_0/mean" in np.load(tmp_path / "r" / "params" / "epoch_000001.npz").files
    rebuilt = RunConfig.from_dict(run.config).model.build()
    a = rebuilt.apply(jax.tree.map(lambda a: a[-1], run.params), sp.x_test)[1]
    b = model.apply(got, sp.x_test)[1]
    jax.tree.map(lambda p, q: np.testing.assert_allclose(p, q, rtol=1e-6), a, b)
    assert merge_variables(models.mlp([2, 2]), {"a": 1}, {}) == {"a": 1}


def test_resnet_layers_and_max_pool():
    m = ResNetConfig(input_shape=(8, 8, 1), filters=(2, 2, 3), n_classes=3).build()
    v = m.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (4, 8, 8, 1))
    logits, acts = m.apply(v, x)
    assert [a.shape for a in acts] == [(4, 4, 4, 2), (4, 4, 4, 2), (4, 2, 2, 3), (4, 1, 1, 3), (4, 3)]
    np.testing.assert_allclose(acts[3][:, 0, 0], acts[2].max(axis=(1, 2)), rtol=1e-6)  # 2x2 max pool of 2x2
    np.testing.assert_allclose(acts[-1], jax.nn.softmax(logits), rtol=1e-6)
    with pytest.raises(ValueError, match="filters must list >= 2"):
        models.resnet(filters=(4,))
    with pytest.raises(ValueError, match="strides must list one integer"):
        models.cnn(filters=(2, 2), strides=(1,))


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """The quick experiment on the committed first 1000 MNIST test images (their own md5s)."""
    from experiments import cnn

    root = tmp_path_factory.mktemp("cnn_data")
    shutil.copytree(Path(__file__).parent / "data" / "mnist" / "first1000", root / "mnist")
    mp = pytest.MonkeyPatch()
    mp.setenv("IBJAX_DATA_DIR", str(root))
    for k, v in FIRST1000_MD5.items():
        mp.setitem(data.MNIST_MD5, k, v)
    out = root / "cnn"
    try:
        cnn.main(["--quick", "--out", str(out)])
        x, y, _ = pipeline.samples_of(next(iter(cnn.networks(cnn.Config()).values())), "held-out:100")
    finally:
        mp.undo()
    return out, json.loads((out / "summary.json").read_text()), x, y


def test_cnn_quick_end_to_end(quick):
    out, s, x, y = quick
    assert s["dataset"] == "mnist_test" and "200 training images" in s["data_note"]
    assert [c["agrees"] in (True, False, None) for c in s["claims"]] == [True] * 4
    assert "planes_kde.png" not in s["files"]  # --quick: binning only
    for name in ("planes_binning.png", "per_filter.png", "pooling.png"):
        assert (out / name).stat().st_size > 5_000 and name in s["files"]
    z = np.load(out / "per_filter.npz")
    a = z["cnn_tanh_sgd/binning/i_xt_SxExLxF"]
    assert a.shape == (1, 2, 4, 4) and list(z["cnn_tanh_sgd/layers_L"]) == [1, 2, 3, 4]
    assert np.isnan(a[:, :, 0, 2:]).all() and np.isfinite(a[:, :, 3]).all()  # layer 1 has 2 filters
    assert np.isfinite(a[:, :, 1, :3]).all() and np.isnan(a[:, :, 1, 3]).all()  # layer 2 has 3 filters
    assert not any(k.startswith("resnet") or "/knn/" in k for k in z.files)  # --quick: the CNN, binning
    # a saved per-filter value equals binning of that filter's activations recomputed from the checkpoint
    run = checkpoints.load_run(s["run_dirs"]["cnn_tanh_sgd"][0])
    model = RunConfig.from_dict(run.config).model.build()
    e = int(z["cnn_tanh_sgd/epochs_E"][-1])
    acts = model.apply(jax.tree.map(lambda p: p[list(run.epochs).index(e)], run.params), x)[1]
    want = binning.info_plane(np.asarray(acts[2][..., 1]).reshape(100, -1), y, bin_size=0.5)
    np.testing.assert_allclose(z["cnn_tanh_sgd/binning/i_xt_SxExLxF"][0, -1, 2, 1], want[0], atol=1e-5)
    np.testing.assert_allclose(z["cnn_tanh_sgd/binning/i_ty_SxExLxF"][0, -1, 2, 1], want[1], atol=1e-5)
    # binning: pooling merges bins (after <= before exactly); every value within [0, log2 100]
    pool = s["claims"][2]["measured"]
    assert pool["cnn tanh sgd, binning: share of (epoch, layer) with after <= before"]["mean"] == 1.0
    assert all(v <= np.log2(100) + 1e-4 for v in a[np.isfinite(a)])


def test_fashion_mnist_is_a_data_name_of_the_study(tmp_path, monkeypatch, refused):
    """--set data.name=fashion_mnist: the study's split and MI samples come from Fashion-MNIST (the
    committed first 500 test images here); other datasets are refused before training."""
    from experiments import cnn

    root = tmp_path / "data"
    shutil.copytree(Path(__file__).parent / "data" / "fashion-mnist" / "first500", root / "fashion-mnist")
    monkeypatch.setenv("IBJAX_DATA_DIR", str(root))
    for k, v in {
        "t10k-images-idx3-ubyte.gz": "de8c3e9bbf39c9b1488ea32722149bda",
        "t10k-labels-idx1-ubyte.gz": "054aa312f89c1a1bd60b2658a90cc583",
    }.items():
        monkeypatch.setitem(data.FASHION_MNIST_MD5, k, v)
    cfg = cnn.Config(data=cnn.DataConfig(name="fashion_mnist", train_frac=0.2), mi_samples=300)
    x, y, about = pipeline.samples_of(next(iter(cnn.networks(cfg).values())), f"held-out:{cfg.mi_samples}")
    assert about["data"] == "fashion_mnist_test" and about["samples"] == "first 300 held-out samples"
    sp = data.split(data.fashion_mnist("test", flat=False), "random", seed=0, train_frac=0.2)
    np.testing.assert_array_equal(x, sp.x_test[:300])
    np.testing.assert_array_equal(y, sp.y_test[:300])
    assert x.shape == (300, 28, 28, 1)
    err = refused(cnn, ["--quick", "--set", "data.name=var_u"])
    assert "data.name must be one of ('mnist_test', 'fashion_mnist', 'fashion_mnist_test')" in err
