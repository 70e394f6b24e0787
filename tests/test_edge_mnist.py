import json

import numpy as np
import pytest

from experiments import _harness as harness
from experiments import edge_mnist
from ibjax import data, runs
from ibjax.result import InfoPlane

FIRST1000_MD5 = {"t10k-images-idx3-ubyte.gz": "c3379f275b566375ab4528689c1795c4",
                 "t10k-labels-idx1-ubyte.gz": "1d88dbe1fbee9022616057ede4463181"}
HIDDEN = ["layer 1"]  # --quick: 784-16-10


@pytest.fixture(scope="module")
def first1000(data_dir):
    """data 'mnist_test' read from tests/data/mnist/first1000 (the 1000-image subset, its own md5s)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(runs._LOADERS, "mnist_test",
                   lambda path=None: data.mnist("test", path=data_dir / "mnist" / "first1000", md5=FIRST1000_MD5))
        yield


@pytest.fixture(scope="module")
def quick(first1000, tmp_path_factory):
    out = tmp_path_factory.mktemp("edge_mnist") / "edge_mnist"
    edge_mnist.main(["--quick", "--out", str(out)])
    return out, json.loads((out / "summary.json").read_text())


def test_quick_summary_planes_and_claims(quick):
    out, s = quick
    # no MNIST training images under tests/data: the 1000 test images, 800 train / 200 held out, 100 as X
    assert s["dataset"] == "mnist_test" and s["n_train"] == 800 and s["n_mi_samples"] == 100
    assert "test split was split in two" in s["data_note"]
    ours = s["estimator_settings"]["ours"]
    assert ours["edge"]["U"] == 20.0 and ours["edge"]["L"] == 10 and ours["hsic"]["normalized"] is True
    assert "U=20" in s["estimator_settings"]["original"]["I(X;T)"]
    assert [c["agrees"] in (True, False, None) for c in s["claims"]] == [True] * 5
    assert s["claims"][4]["agrees"] is None  # accuracy: not comparable on the 10k split
    for act in ("tanh", "relu"):
        for est in ("edge", "hsic"):
            plane = InfoPlane.load(out / s["planes"][act][est])
            assert plane.measured["n_samples"] == 100 and list(plane.epochs) == [0, 1]
            i_xt = plane.i_xt[:, :, :1]  # S x E x hidden
            assert plane.i_xt.shape == (2, 2, 2)  # the hidden layer and the softmax output
            if est == "hsic":  # normalised HSIC lies in [0, 1]
                assert np.all((plane.i_xt >= -1e-5) & (plane.i_xt <= 1 + 1e-5) & (plane.i_ty <= 1 + 1e-5))
            else:  # every EDGE pointwise term is clipped to [0.001, min(U, log2 N)]: N n_ij / (n_i m_j) <= N
                assert np.all((plane.i_xt >= 0.001 - 1e-5) & (plane.i_xt <= np.log2(100) + 1e-4))
                assert np.all((plane.i_ty >= 0.001 - 1e-5) & (plane.i_ty <= np.log2(100) + 1e-4))
            drop = i_xt.max(axis=1) - i_xt[:, -1]  # the summary's table, recomputed from the saved plane
            for l, name in enumerate(HIDDEN):
                v = s["drops"][act][est][name]
                assert v["mean"] == pytest.approx(drop[:, l].mean(), abs=1e-4) and v["n_seeds"] == 2
                assert v["se"] == pytest.approx(drop[:, l].std(ddof=1) / np.sqrt(2), abs=1e-4)
    m = s["claims"][0]["measured"]["tanh layer 1 EDGE I(X;T) drop [bits]"]
    assert m == s["drops"]["tanh"]["edge"]["layer 1"]
    # two epochs (14 Adam steps) on 800 images already classify well above chance (0.1) on the held-out 200
    assert all(s["final_test_acc"][a]["mean"] > 0.3 for a in ("tanh", "relu"))
    for name in ("infoplane_edge_hsic.png", "mi_xt.png", "mi_ty.png", "loss.png"):
        assert (out / name).stat().st_size > 10_000 and name in s["files"]


def test_mi_samples_are_held_out(first1000):
    rc = edge_mnist.Config().run
    x, y, ds, n_train, n_held = edge_mnist.mi_samples(rc, 0)
    split = data.split(ds, "random", seed=0, train_frac=0.8)
    assert (n_train, n_held, len(y)) == (800, 200, 200)
    train_rows = {r.tobytes() for r in split.x_train}
    assert not any(r.tobytes() in train_rows for r in x)
    assert edge_mnist.mi_samples(rc, 50)[0].shape == (50, 784)


def test_curve_corr_and_status_closed_forms():
    a = np.arange(12.0).reshape(2, 3, 2) ** 2  # S x E x H
    np.testing.assert_allclose(edge_mnist.curve_corr(a, 2 * a + 1), 1.0)
    np.testing.assert_allclose(edge_mnist.curve_corr(a, -a), -1.0)
    np.testing.assert_allclose(edge_mnist.curve_corr(a, np.ones_like(a)), 0.0)  # a flat curve: 0, not NaN
    assert harness.status([0.5, 0.5], 0.1) is True and harness.status([0.0, 0.0], 0.1) is False
    assert harness.status([0.0, 0.4], 0.1) is None  # mean 0.2, se 0.2: neither clearly above nor below 0.1


@pytest.mark.parametrize("args,message", [
    (["--set", "data=cifar"], "data must be one of ('auto', 'mnist_train', 'mnist_test'), got 'cifar'"),
    (["--set", "seeds=0"], "seeds must be an integer >= 1"),
    (["--set", "mi_samples=5"], "mi_samples must be 0 (all held-out samples) or an integer >= 20, got 5"),
    (["--set", "edge_U=0"], "edge_U / edge_L / edge_keys: estimator option U must be a finite number > 0"),
    (["--set", "memory_gb=0"], "memory_gb must be a number > 0, got 0.0"),
    (["--set", "edge_L=0"], "estimator option L must be an integer >= 1"),
    (["--set", "contrast_activation=tanh"], "contrast_activation must differ"),
    (["--set", "run.model.widths=12,10,2"], "run.model must be an MLP from 784 inputs to 10 classes"),
    (["--set", "hsic_epochs=log:x"], "hsic_epochs: epochs 'log:x'"),
])
def test_bad_settings_fail_before_training(refused, args, message):
    assert message in refused(edge_mnist, [*args, "--quick"])
