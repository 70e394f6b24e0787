import json

import jax
import numpy as np
import pytest

from experiments import as_if_random as exp
from ibjax import checkpoints, pipeline
from ibjax import claims as claims_mod
from ibjax.config import RunConfig
from ibjax.result import InfoPlane

W = 3  # QUICK's window


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("as_if_random") / "as_if_random"
    exp.main(["--quick", "--out", str(out)])
    return out, json.loads((out / "summary.json").read_text())


def _h(rows_NxD) -> float:
    """Plug-in entropy (bits) of the distinct rows."""
    _, counts = np.unique(rows_NxD, axis=0, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def _cond_h(rows_NxD, labels_N) -> float:
    return sum(np.mean(labels_N == c) * _h(rows_NxD[labels_N == c]) for c in np.unique(labels_N))


def test_quick_window_values_recomputed_with_numpy(quick):
    """The pooled window's I(X;T) = H(T) - H(T | input), with T binned (floor(t / 0.07)) over W epochs'
    activations of the 4096 inputs, and the per-epoch I(X;T) = H(T), recomputed with numpy."""
    out, s = quick
    per = InfoPlane.load(s["planes"]["relu per epoch"])
    win = InfoPlane.load(s["planes"]["relu window 3"])
    assert per.shape == (1, 1, 10, 2) and win.shape == (1, 1, 10 - W + 1, 2)  # every:4 of 40 epochs; 1 hidden + output
    np.testing.assert_array_equal(win.epochs, per.epochs[: 10 - W + 1])
    run = checkpoints.load_run(s["run_dirs"]["relu"][0])
    rc = RunConfig.from_dict(run.config)
    ds = pipeline.load_data(rc)
    apply = rc.model.build().apply
    k = len(win.epochs) - 1  # the last window: kept epochs k .. k + W - 1
    codes = [
        np.floor(np.asarray(apply(jax.tree.map(lambda a: a[k + w], run.params), ds.x)[1][0]) / 0.07) for w in range(W)
    ]
    pooled, ids, y = np.concatenate(codes), np.tile(np.arange(len(ds.y)), W), np.tile(ds.y, W)
    h_x = _h(pooled)
    assert win.i_xt[0, k, 0] == pytest.approx(h_x - _cond_h(pooled, ids), abs=2e-3)
    assert win.i_ty[0, k, 0] == pytest.approx(h_x - _cond_h(pooled, y), abs=2e-3)
    assert per.i_xt[0, k, 0] == pytest.approx(_h(codes[0]), abs=2e-3)
    assert 0 < _cond_h(pooled, ids) < np.log2(W) + 1e-9  # the weights moved: T is a noisy function of X


def test_quick_summary_tables_and_claims(quick):
    out, s = quick
    assert s["dataset"] == "var_u" and set(s["drops"]) == {"relu per epoch", "relu window 3"}
    for label, table in s["drops"].items():
        plane = InfoPlane.load(s["planes"][label])
        i_xt = plane.i_xt[:, :, 0]  # S x E, the one hidden layer
        k = claims_mod.late_index(plane.epochs, 40, 0.5)
        row = table["layer 1"]
        assert row["peak"]["mean"] == pytest.approx(i_xt.max(), abs=1e-4)
        drop = row["compression"]["peak-to-final drop [bits]"]
        assert drop["mean"] == pytest.approx(i_xt.max() - i_xt[0, -1], abs=1e-4)
        assert row["late_change"]["mean"] == pytest.approx(i_xt[0, -1] - i_xt[0, k], abs=1e-4)
        assert row["verdict"] in ("undecided", "does not compress")  # one seed: no interval, no power
        assert np.all(plane.i_xt <= 12 + 1e-4) and np.all(plane.i_xt >= -1e-4)
    claims = {c["source"][:4]: c for c in s["claims"]}
    assert len(s["claims"]) == 2 and set(claims) == {"stud", "Saxe"}  # ReLU only: the tanh claims are left out
    assert claims["Saxe"]["agrees"] is None and "one seed" in claims["Saxe"]["reason"]  # never a "no" from 1 seed
    assert (out / "as_if_random.png").stat().st_size > 10_000 and (out / "infoplane_grid.png").stat().st_size > 10_000


def test_bad_settings_exit_before_training(refused):
    assert "window" in refused(exp, ["--set", "window=1"])
    assert "knn" in refused(exp, ["--set", "estimator=knn"])
