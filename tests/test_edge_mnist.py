import json

import numpy as np
import pytest

from experiments import edge_mnist
from ibjax import claims, data, pipeline, runs
from ibjax.result import InfoPlane

FIRST1000_MD5 = {
    "t10k-images-idx3-ubyte.gz": "c3379f275b566375ab4528689c1795c4",
    "t10k-labels-idx1-ubyte.gz": "1d88dbe1fbee9022616057ede4463181",
}


@pytest.fixture(scope="module")
def first1000(data_dir):
    """data 'mnist_test' read from tests/data/mnist/first1000 (the 1000-image subset, its own md5s)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(
            runs._LOADERS,
            "mnist_test",
            lambda path=None: data.mnist("test", path=data_dir / "mnist" / "first1000", md5=FIRST1000_MD5),
        )
        yield


@pytest.fixture(scope="module")
def quick(first1000, tmp_path_factory):
    out = tmp_path_factory.mktemp("edge_mnist") / "edge_mnist"
    edge_mnist.main(["--quick", "--out", str(out)])
    return out, json.loads((out / "summary.json").read_text())


def test_quick_summary_planes_and_claims(quick):
    out, s = quick
    # no MNIST training images under tests/data: the 1000 test images, all trained on, the first 100 as X
    assert s["dataset"] == "mnist_test" and s["n_train"] == 1000 and s["n_mi_samples"] == 100
    assert "trained and measured on the official 10k test images" in s["data_note"]
    ours = s["estimator_settings"]["ours"]
    e420, e441 = ours["edge420"], ours["edge441"]
    assert (e420["variant"], e420["U"], e420["U_ty"], e420["gamma_x"], e420["gamma_y"], e420["epsilon_ty"]) == (
        "4.2.0",
        20.0,
        10.0,
        0.2,
        1e-4,
        0.2,
    )
    assert e420["gamma_t_xt"] == [0.8] and e420["gamma_t_ty"] == [0.4] and e420["L"] == 10
    assert (e441["variant"], e441["U"], e441["U_ty"], e441["epsilon_ty"]) == ("4.4.1", 20.0, 20.0, None)
    assert "U=20" in s["estimator_settings"]["original"]["I(X;T)"]
    assert len(s["claims"]) == 5 and all(c["rule"] == claims.RULE.name for c in s["claims"])
    assert all(c["agrees"] in (True, False, None) and (c["agrees"] is not None or c["reason"]) for c in s["claims"])
    assert s["claims"][4]["agrees"] is None and "training accuracy" in s["claims"][4]["reason"]
    diag = s["layer1_normalisation"]
    assert diag["steps"] == [0, 5] and set(diag) == {"steps", "N=100", "N=20"}
    for n in (100, 20):
        d = diag[f"N={n}"]
        assert d["log2_N"] == pytest.approx(np.log2(n), abs=1e-4)
        assert all(0.001 - 1e-5 <= v <= np.log2(n) + 1e-4 for v in d["normalised"] + d["first_pass"])
        assert len(d["normalised"]) == len(d["first_pass"]) == 2
    for act in ("tanh", "relu"):
        plane = InfoPlane.load(out / s["planes"][act]["edge420"][0])  # one file per hidden layer
        assert plane.measured["n_samples"] == 100 and list(plane.epochs) == list(range(6))
        assert plane.layer_names == ("layer 1",) and plane.settings["gamma_t_xt"] == 0.8
        assert plane.settings["variant"] == "4.2.0"
        # every EDGE pointwise term is clipped to [0.001, min(U, log2 N)]: N n_ij / (n_i m_j) <= N
        assert np.all((plane.i_xt >= 0.001 - 1e-5) & (plane.i_xt <= np.log2(100) + 1e-4))
        assert np.all((plane.i_ty >= 0.001 - 1e-5) & (plane.i_ty <= np.log2(100) + 1e-4))
        stat = claims.compression(plane.i_xt[:, :, 0], plane.epochs, cap=np.log2(100))  # recomputed from the file
        saved = s["compression"][f"{act} edge420"]["layer 1"]
        assert saved["peak-to-final drop [bits]"]["mean"] == pytest.approx(stat.drop.mean, abs=1e-4)
        assert saved["drop / peak"]["ci"][0] == pytest.approx(stat.frac.lo, abs=1e-4)
        low = plane.i_xt.mean(axis=0).min()
        assert s["at_ceiling_every_epoch"][f"{act} edge420"]["layer 1"]["lowest_mean"] == pytest.approx(low, abs=1e-4)
        hsic = InfoPlane.load(out / s["planes"][act]["hsic"])
        assert hsic.measured["n_samples"] == 100 and list(hsic.epochs) == [0, 2, 4]
        assert np.all((hsic.i_xt >= -1e-5) & (hsic.i_xt <= 1 + 1e-5) & (hsic.i_ty <= 1 + 1e-5))
        contrast = InfoPlane.load(out / s["planes"][act]["edge441"])
        assert contrast.settings["variant"] == "4.4.1" and contrast.i_xt.shape == (2, 6, 2)  # + the softmax output
    # six Adam steps on 1000 images already classify above chance (0.1) on those images
    assert all(s["final_accuracy"][a]["mean"] > 0.2 for a in ("tanh", "relu"))
    for name in ("infoplane_edge_hsic.png", "mi_xt.png", "mi_ty.png", "loss.png"):
        assert (out / name).stat().st_size > 10_000 and name in s["files"]


def test_mi_samples_are_the_first_training_images(first1000):
    """The study's MI samples (pipeline.samples_of "train" / "train:N") are its training images, in order."""
    rc = edge_mnist.Config().run
    ds = pipeline.load_data(rc)
    x, y, about = pipeline.samples_of(rc, "train")
    assert len(pipeline.split_of(rc).y_train) == len(y) == 1000 and np.array_equal(x, ds.x)  # split "all"
    x50, y50, about50 = pipeline.samples_of(rc, "train:50")
    assert np.array_equal(x50, ds.x[:50]) and np.array_equal(y50, ds.y[:50])
    assert about["samples"] == "all 1000 train samples" and about50["n_samples"] == 50


def test_layer_view_gives_one_layer():
    import jax

    from ibjax import models

    m = models.mlp((784, 8, 5, 10))
    p = m.init(jax.random.key(0))
    x = np.random.default_rng(0).random((7, 784)).astype(np.float32)
    v = pipeline.layer_view(1)
    (t,) = v.fn(m.apply, p, x)
    np.testing.assert_array_equal(t, m.apply(p, x)[1][1])
    assert v.names([(8,), (5,), (10,)]) == ["layer 2"] and v.spec == "layer2"


def test_every_layer_and_curve_corr_closed_forms():
    a = np.arange(12.0).reshape(2, 3, 2) ** 2  # S x E x H
    np.testing.assert_allclose(claims.curve_corr(a, 2 * a + 1), 1.0)
    np.testing.assert_allclose(claims.curve_corr(a, np.ones_like(a)), 0.0)  # a flat curve: 0, not NaN
    yes, no = claims.positive([1.0, 1.1, 0.9]), claims.positive([-1.0, -1.1, -0.9])
    maybe = claims.positive([1.0, -1.0, 0.1])
    assert claims.every_layer([yes, yes]).agrees is True and claims.every_layer([yes, no, maybe]).agrees is False
    v = claims.every_layer([yes, maybe])
    assert v.agrees is None and v.reason.startswith("layer 2: no power")


@pytest.mark.parametrize(
    "args,message",
    [
        (["--set", "data=cifar"], "data must be one of ('auto', 'mnist_train', 'mnist_test'), got 'cifar'"),
        (["--set", "seeds=0"], "seeds must be an integer >= 1"),
        (["--set", "mi_samples=5"], "mi_samples must be 0 or an integer >= 20, got 5"),
        (["--set", "contrast_U=0"], "contrast_U: estimator option U must be a finite number > 0"),
        (["--set", "contrast_seeds=3"], "contrast_seeds must be an integer in [1, seeds = 2], got 3"),
        (["--set", "gamma_xt=0.8,1.0"], "gamma_xt must list 1 value(s) (one per hidden layer of run.model.widths)"),
        (["--set", "memory_gb=0"], "memory_gb must be a number > 0, got 0.0"),
        (["--set", "edge_L=0"], "estimator option L must be an integer >= 1"),
        (["--set", "contrast_activation=tanh"], "contrast_activation must differ"),
        (
            ["--set", "run.model.widths=12,10,2"],
            "run.model.widths must be widths from 784 inputs to 10 classes, got (12, 10, 2)",
        ),
        (["--set", "hsic_epochs=log:x"], "hsic_epochs: epochs 'log:x'"),
    ],
)
def test_bad_settings_fail_before_training(refused, args, message):
    assert message in refused(edge_mnist, [*args, "--quick"])


def test_deeper_layers_from_their_activations_equal_the_network_path(tmp_path):
    """Layers 2.. are evaluated from activations computed once (deeper_activations + given_view): the same
    EDGE 4.2.0 values as a call through the network's own view of that layer (same keys, same inputs)."""
    import jax

    from ibjax import models, pipeline

    m = models.mlp((784, 8, 5, 10))
    keys = jax.random.split(jax.random.key(0), 4)
    params = jax.tree.map(lambda a: a.reshape((2, 2) + a.shape[1:]), jax.vmap(m.init)(keys))  # 2 runs x 2 epochs
    rng = np.random.default_rng(0)
    x, y = rng.random((120, 784)).astype(np.float32), rng.integers(0, 10, 120)
    (t2,) = pipeline.deeper_activations(m, params, x, 2)
    np.testing.assert_allclose(t2[1, 0], m.apply(jax.tree.map(lambda a: a[1, 0], params), x)[1][1], rtol=1e-6)
    opts = {"variant": "4.2.0", "gamma_t_xt": 1.2, "gamma_t_ty": 0.6, "n_keys": 1}
    kw = dict(run_ids=["a", "b"], progress=False, log=lambda *_: None)
    through = pipeline.evaluate_arrays(m.apply, params, [0, 5], x, y, "edge", opts, view=pipeline.layer_view(1), **kw)
    given = pipeline.evaluate_arrays(
        pipeline.given_apply, t2, [0, 5], x, y, "edge", opts, view=pipeline.given_view(1), **kw
    )
    assert given.layer_names == through.layer_names == ("layer 2",)
    np.testing.assert_allclose(given.i_xt, through.i_xt, rtol=1e-5)
    np.testing.assert_allclose(given.i_ty, through.i_ty, rtol=1e-5)
