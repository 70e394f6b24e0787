import json

import numpy as np
import pytest

from experiments import ib_bound
from ibjax import ib, pipeline
from ibjax.config import DataConfig, RunConfig
from ibjax.result import InfoPlane


def _task(name):
    """(run config, dataset, p(y|x)) of a task as the study trains and measures it."""
    rc = RunConfig(data=DataConfig(name=name))
    ds = pipeline.load_data(rc)
    return rc, ds, ib.p_y_given_x(ds.meta, ds.y)


def test_quick_end_to_end(tmp_path):
    out = tmp_path / "ib"
    summary = ib_bound.main(["--quick", "--out", str(out)])
    for name in ("planes.png", "distance.png", "small_data.png", "summary.json"):
        assert (out / name).stat().st_size > 0
    saved = json.loads((out / "summary.json").read_text())
    assert len(saved["claims"]) == 6 and saved["rule"]["name"] == "ibjax-verdict/1"
    for c in saved["claims"]:
        assert c["agrees"] in (True, False, None) and c["rule"] == "ibjax-verdict/1"
        assert c["agrees"] is not None or c["reason"]  # undecided always says why
    task = saved["stochastic_12bit"]
    assert task["caveat"] == "" and task["i_xy_bits"] == pytest.approx(0.5631, abs=1e-3)
    assert max(task["ib_solutions_own_gap_bits"]) < 1e-3  # IB solutions satisfy the equations
    # the hard encoder T = the inputs' p(y|x) class reaches the equations only as beta -> inf (levels 5e-5 apart
    # need beta ~ 1e8, past float32's KL): at the grid's best beta its gap is small, and it is the claim's reference
    assert 0 <= task["best_hard_encoder_gap_bits"] < 0.2
    assert set(task["per_layer"]) == {f"layer {l}" for l in range(1, 7)}
    assert summary["claims"] == saved["claims"]

    # the exact plane under one-hot p(y|x) of the drawn labels is the binning estimator's plane
    dirs = sorted((out / "runs" / "stochastic_12bit").rglob("seed_0"))[:1]
    plane = pipeline.evaluate_runs(dirs, "binning", {"n_bins": 30})
    rc, ds, _ = _task("stochastic_12bit")
    apply = rc.model.build().apply
    run = pipeline.load_runs(dirs)[0]
    i_xt, i_ty = ib.layer_planes(apply, run.params, ds.x, np.eye(2)[ds.y])
    np.testing.assert_allclose(i_xt, plane.i_xt[0], atol=2e-5)
    np.testing.assert_allclose(i_ty, plane.i_ty[0], atol=2e-5)
    # under the true p(y|x) every layer lies on or below the IB curve (the summary's envelope)
    exact = InfoPlane.load(out / "stochastic_12bit" / "infoplane_exact_full.npz")
    at = np.interp(exact.i_xt, task["curve"]["i_xt"], task["curve"]["i_ty"])
    assert np.all(at - exact.i_ty > -1e-3) and np.all(exact.i_ty <= task["i_xy_bits"] + 1e-4)
    assert not np.allclose(exact.i_ty[0], ib.layer_planes(apply, run.params, ds.x, np.eye(2)[ds.y])[1])


def test_deterministic_task_is_one_hot_and_carries_the_caveat():
    _, ds, p_yx = _task("szt_12bit")
    np.testing.assert_array_equal(p_yx, np.eye(2)[ds.y])
    assert ib.curve(np.full(len(ds.y), 1 / len(ds.y)), p_yx, [2.0, 50.0]).caveat.startswith("Y is a deterministic")


def test_ends_on_curve_holds_fails_and_is_undecided_on_the_flat_part():
    """A hand-made IB curve rising from (0, 0) to (4, 0.5) bits, flat at I(X;Y) = 0.5 up to H(X) = 12: a layer at
    (2, 0.24) is 0.01 bits below it (on the curve), one at (2, 0.05) is 0.2 below (off it), and one at (10, 0.5) is
    on the flat part, where the distance is 0 for any I(X;T): undecided, with the excess of 6 bits reported."""
    from ibjax import claims
    from ibjax.ib import Curve

    e = np.zeros(0)
    curve = Curve(e, e, e, e, e, np.array([0.0, 4.0, 12.0]), np.array([0.0, 0.5, 0.5]), 0.5, 1.0, "")
    seeds = lambda v: np.array([v - 0.01, v, v + 0.01])
    v, m = claims.ends_on_curve(curve, seeds(2.0), seeds(0.24), margin=0.05)
    assert v.agrees is True and m["final distance below the curve [bits]"]["mean"] == pytest.approx(0.01, abs=1e-4)
    assert claims.ends_on_curve(curve, seeds(2.0), seeds(0.05), margin=0.05)[0].agrees is False
    v, m = claims.ends_on_curve(curve, seeds(10.0), np.full(3, 0.5), margin=0.05)
    assert v.agrees is None and "where the curve is flat" in v.reason
    assert m["final excess I(X;T) over the curve at equal I(T;Y) [bits]"]["mean"] == pytest.approx(6.0, abs=1e-3)
