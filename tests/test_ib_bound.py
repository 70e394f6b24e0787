import json

import jax
import numpy as np
import pytest

from experiments import ib_bound
from ibjax import ib, pipeline


def test_quick_end_to_end(tmp_path):
    out = tmp_path / "ib"
    summary = ib_bound.main(["--quick", "--out", str(out)])
    for name in ("planes.png", "distance.png", "small_data.png", "summary.json"):
        assert (out / name).stat().st_size > 0
    saved = json.loads((out / "summary.json").read_text())
    assert len(saved["claims"]) == 8 and saved["rule"]["name"] == "ibjax-verdict/1"
    for c in saved["claims"]:
        assert c["agrees"] in (True, False, None) and c["rule"] == "ibjax-verdict/1"
        assert c["agrees"] is not None or c["reason"]  # undecided always says why
    assert saved["szt_12bit"]["caveat"].startswith("Y is a deterministic") and saved["stochastic_12bit"]["caveat"] == ""
    assert saved["stochastic_12bit"]["i_xy_bits"] == pytest.approx(0.5631, abs=1e-3)
    assert max(saved["stochastic_12bit"]["ib_solutions_own_gap_bits"]) < 1e-3  # IB solutions satisfy the equations
    assert summary["claims"] == saved["claims"]

    # the exact plane under one-hot p(y|x) is the binning estimator's plane on the same run
    dirs = sorted((out / "runs" / "szt_12bit").rglob("seed_0"))[:1]
    plane = pipeline.evaluate_runs(dirs, "binning", {"n_bins": 30})
    run = pipeline.load_runs(dirs)[0]
    ds = pipeline.load_data(ib_bound._task(ib_bound.Config(), "szt_12bit")[0])
    i_xt, i_ty = ib.layer_planes(pipeline.RunConfig.from_dict(run.config).model.build().apply, run.params, ds.x,
                                 np.eye(2)[ds.y])
    np.testing.assert_allclose(i_xt, plane.i_xt[0], atol=2e-5)
    np.testing.assert_allclose(i_ty, plane.i_ty[0], atol=2e-5)
    # every layer of the stochastic task lies on or below the IB curve of its true p(x, y)
    rc, ds, p_yx = ib_bound._task(ib_bound.Config(), "stochastic_12bit")
    curve = ib.curve(np.full(4096, 1 / 4096), p_yx, np.geomspace(1, 2000, 16), n_iter=200)
    runs = pipeline.load_runs(sorted((out / "runs" / "stochastic_12bit").rglob("seed_0"))[:1])
    xt, ty = ib.layer_planes(rc.model.build().apply, runs[0].params, ds.x, p_yx)
    assert np.all(curve.distance(xt, ty) > -1e-2) and np.all(ty <= curve.i_xy + 1e-5)
    assert jax.device_count() >= 1
