import json

import numpy as np

from experiments import _grid, robustness
from ibjax.result import InfoPlane


def test_robustness_quick_drops_shares_and_heatmap(tmp_path):
    out = tmp_path / "r"
    summary = robustness.main(["--quick", "--out", str(out)])
    assert summary["settings"] == ["bin size 0.1", "KDE var 0.1", "Renyi silverman a=2"]
    # the recorded drop of every hidden layer is the peak-to-final drop of the saved plane, mean over seeds
    plane = InfoPlane.load(out / "planes" / "tanh" / "bin_size_sweep" / "infoplane_binning.npz")
    i_xt = plane.i_xt[:, :, :-1]
    want = (i_xt.max(axis=1) - i_xt[:, -1]).mean(axis=0)
    got = summary["drops"]["tanh"]["bin size 0.1"]
    np.testing.assert_allclose(got["drop"], want, atol=1e-4)
    assert all(se >= 0 for se in got["se"])
    # a layer counted as compressing has a drop above 0.05 bits and 2 standard errors
    for act in ("tanh", "relu"):
        for st in summary["drops"][act].values():
            for d, se, c in zip(st["drop"], st["se"], st["compresses"]):
                assert not c or (d > 0.05 and d > 2 * se)
    # Rényi reports the spread over its random subsets
    renyi = InfoPlane.load(out / "planes" / "relu" / "Renyi_silverman_a_sweep" / "infoplane_renyi.npz")
    assert np.all(renyi.i_xt_se >= 0) and np.any(renyi.i_xt_se > 0)
    claims = json.loads((out / "summary.json").read_text())["claims"]
    skip = summary["excluded"]["tanh"]
    n_tanh = sum(any(st["compresses"]) for lab, st in summary["drops"]["tanh"].items() if lab not in skip)
    assert claims[0]["measured"]["share of estimator settings supporting it"].startswith(f"{n_tanh} of {3 - len(skip)}")
    assert (out / "heatmap.png").stat().st_size > 0
    # the data-processing inequality per setting, recomputed from the saved plane (every layer is deterministic)
    from ibjax import claims as verdicts

    assert summary["dpi"]["tanh"]["bin size 0.1"] == verdicts.dpi(plane.i_xt)
    assert all(d["violations"] >= 0 for act in ("tanh", "relu") for d in summary["dpi"][act].values())


def test_settings_that_cannot_vote_are_left_out_with_the_reason():
    from types import SimpleNamespace

    knn, kde = SimpleNamespace(estimator="knn"), SimpleNamespace(estimator="kde")
    clean = {"violations": 0, "cells": 180, "worst excess [bits]": 0.0}
    assert _grid.unusable(kde, clean, binary_x=True) == ""
    assert _grid.unusable(knn, clean, binary_x=False) == ""
    assert "KSG on binary inputs" in _grid.unusable(knn, clean, binary_x=True)
    why = _grid.unusable(kde, {"violations": 30, "cells": 180, "worst excess [bits]": 0.52}, binary_x=False)
    assert why.startswith("undecided: violates the data-processing inequality at 30 of 180") and "0.52 bits" in why
    stats = {
        "tanh": {
            "a": {"compresses": np.array([True]), "finite": np.array([True])},
            "b": {"compresses": np.array([False]), "finite": np.array([True])},
        }
    }
    assert robustness.share(stats, "tanh", compress=True) == (1, 2)
    assert robustness.share(stats, "tanh", compress=True, excluded={"b": why}) == (1, 1)
