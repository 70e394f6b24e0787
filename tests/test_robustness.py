import json

import numpy as np

from experiments import robustness
from ibjax import claims
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
    # a layer counted as compressing is one the verdict module says compresses
    from ibjax import claims as verdicts

    stats = verdicts.layers(i_xt, plane.epochs, cap=12.0)
    assert got["compresses"] == [verdicts.decide(st).outcome == "compresses" for st in stats]
    # Rényi reports the spread over its random subsets
    renyi = InfoPlane.load(out / "planes" / "relu" / "Renyi_silverman_a_sweep" / "infoplane_renyi.npz")
    assert np.all(renyi.i_xt_se >= 0) and np.any(renyi.i_xt_se > 0)
    claims = json.loads((out / "summary.json").read_text())["claims"]
    votes = claims[0]["measured"]["family votes"]
    assert set(votes) <= {"binning", "KDE", "Renyi"} and claims[0]["rule"] == verdicts.RULE.name
    assert (out / "heatmap.png").stat().st_size > 0
    # the data-processing inequality per setting, recomputed from the saved plane (every layer is deterministic)
    assert summary["dpi"]["tanh"]["bin size 0.1"] == verdicts.dpi(plane.i_xt)
    assert all(d["violations"] >= 0 for act in ("tanh", "relu") for d in summary["dpi"][act].values())


def test_settings_that_cannot_vote_are_left_out_with_the_reason():
    from types import SimpleNamespace

    knn, kde = SimpleNamespace(estimator="knn"), SimpleNamespace(estimator="kde")
    clean = {"violations": 0, "cells": 180, "worst excess [bits]": 0.0}
    assert claims.unusable(kde, clean, binary_x=True) == ""
    assert claims.unusable(knn, clean, binary_x=False) == ""
    assert "KSG on binary inputs" in claims.unusable(knn, clean, binary_x=True)
    why = claims.unusable(kde, {"violations": 30, "cells": 180, "worst excess [bits]": 0.52}, binary_x=False)
    assert why.startswith("undecided: violates the data-processing inequality at 30 of 180") and "0.52 bits" in why


def _plane(estimator: str, final: float, seeds=(0.0, 0.05, -0.05), **settings) -> InfoPlane:
    """A 3-seed plane of one hidden layer (plus the output) that rises to 6 bits and ends at ``final``."""
    curve = np.array([[4.0, 6.0, 6.0 + (final - 6.0) / 2, final]]) + np.array(seeds)[:, None]
    v = np.stack([curve, curve / 4], axis=-1)[None]  # 1 x S x E x 2
    return InfoPlane(np.arange(4), {"i_xt": v, "i_ty": v / 12}, estimator, settings, measured={"n_samples": 4096})


def _results(planes: dict) -> dict:
    return {
        "stats": {"tanh": {lab: claims.hidden_drops(p) for lab, p in planes.items()}},
        "families": {"tanh": {lab: p.estimator for lab, p in planes.items()}},
    }


def test_an_estimator_family_votes_once_and_the_exact_plane_is_its_own_line():
    planes = {
        "kNN k=3": _plane("knn", 3.0),  # compresses
        "kNN k=10": _plane("knn", 3.1),  # compresses: the same family, one vote
        "bin size 0.1": _plane("binning", 6.0),  # flat: does not
        "exact (8-bit twin)": _plane("exact", 3.0),
    }
    c = robustness.claims(_results(planes), robustness.Config())
    assert [x["agrees"] for x in c] == [None, True]  # 1 family for, 1 against: a tie (by settings it was 2 of 3)
    assert c[0]["measured"]["family votes"] == {
        "kNN": "holds",
        "binning": "fails: 0 agree (none), 1 disagree (bin size 0.1), 0 undecided",
    }
    assert c[0]["reason"].startswith("no majority") and "exact plane" in c[1]["claim"]
    # the input on which "tanh networks compress" is false: every family clearly flat
    flat = {"kNN k=3": _plane("knn", 6.0), "bin size 0.1": _plane("binning", 6.0), "KDE var 0.1": _plane("kde", 6.0)}
    (c,) = robustness.claims(_results(flat), robustness.Config())
    assert c["agrees"] is False and c["effect"] == 0.0


def test_an_undefined_setting_decides_nothing():
    nan = _plane("renyi", 3.0, subset=256)
    nan.values["i_xt"][0, 0, 1, 0] = np.nan
    st = claims.hidden_drops(nan)
    assert st["network"]["compresses"].agrees is None and not st["finite"].any()
    assert claims.cap_seen(_plane("renyi", 3.0, subset=256)) == 8.0
