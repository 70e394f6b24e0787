import json

import numpy as np
import pytest

from experiments import skipping as exp
from ibjax import claims, skipping
from ibjax.result import InfoPlane


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("skipping") / "skipping"
    exp.main(["--quick", "--out", str(out)])
    return out, json.loads((out / "summary.json").read_text())


def test_quick_table_against_the_saved_full_plane(quick):
    out, s = quick
    full = InfoPlane.load(out / "infoplane_binning.npz")
    epochs, h_x, h_y = full.epochs, s["h_x_bits"], s["h_y_bits"]
    assert h_x == 12.0 and 0.9 < h_y <= 1.0  # 4096 distinct inputs; var_u's labels are close to balanced
    assert len(epochs) == s["n_kept_epochs"] and full.shape == (
        1,
        1,
        len(epochs),
        3,
    )  # 12-6-4-2: 2 hidden layers + output
    rows = {(r["strategy"], r["param"]): r for r in s["table"]}
    assert set(rows) == {("every", 4), ("approx", 0.02), ("approx", 0.1), ("exact", 0.02), ("exact", 0.1)}
    for r in rows.values():
        assert "epochs_kept" not in r  # the summary's table leaves the epoch lists out
        assert r["values_match_full"] and r["n_total"] == len(epochs) and r["n_kept"] <= r["n_evaluated"]
    every = rows[("every", 4)]
    assert (
        every["n_evaluated"] == len(np.union1d(np.arange(0, len(epochs), 4), [len(epochs) - 1]))
        and every["n_rounds"] == 1
    )
    for d in (0.02, 0.1):  # exact: consecutive kept epochs within delta unless adjacent; fewer than all evaluated
        assert rows[("exact", d)]["max_skipped_gap_norm"] <= d + 1e-9
        assert rows[("exact", d)]["n_evaluated"] < len(epochs)
    assert rows[("exact", 0.1)]["n_evaluated"] <= rows[("exact", 0.02)]["n_evaluated"]


def test_quick_errors_recomputed_from_interpolation(quick):
    out, s = quick
    full = InfoPlane.load(out / "infoplane_binning.npz")
    i_xt, i_ty = full.i_xt[0], full.i_ty[0]  # E x L, one seed
    md = (out / "table.md").read_text()
    for r in s["table"]:
        ep = full.epochs
        # the kept epochs are those a strategy reaches; rebuild them from the evaluate_batch replay
        res = {
            "every": lambda b: skipping.every_nth(b, ep, n=int(r["param"])),
            "exact": lambda b: skipping.delta_skip_exact(b, ep, delta=r["param"], h_x=12.0, h_y=s["h_y_bits"]),
            "approx": lambda b: skipping.delta_skip_approx(
                b, ep, delta=r["param"], h_x=12.0, h_y=s["h_y_bits"], round_size=8
            ),
        }[r["strategy"]](lambda e: (i_xt[np.searchsorted(ep, e)], i_ty[np.searchsorted(ep, e)]))
        assert res.n_evaluated == r["n_evaluated"] and res.n_rounds == r["n_rounds"]
        x = np.stack([np.interp(ep, res.epochs, res.i_xt[:, l]) for l in range(3)], 1)
        y = np.stack([np.interp(ep, res.epochs, res.i_ty[:, l]) for l in range(3)], 1)
        worst = max(np.abs(x - i_xt).max() / 12.0, np.abs(y - i_ty).max() / s["h_y_bits"])
        mean = max(np.abs(x - i_xt).mean() / 12.0, np.abs(y - i_ty).mean() / s["h_y_bits"])
        assert r["max_error_norm"] == pytest.approx(worst, abs=1e-5)
        assert r["mean_error_norm"] == pytest.approx(mean, abs=1e-5)
        assert r["max_error_norm_per_seed"][0] == pytest.approx(r["max_error_norm"], abs=1e-5)
        assert f"{r['n_evaluated']} / {r['n_total']}" in md
    claims = {c["claim"]: c for c in s["claims"]}
    assert len(claims) == 5 and all(c["agrees"] is not None or c["reason"] for c in claims.values())
    (few,) = [c for k, c in claims.items() if k.startswith("delta-skip evaluates far fewer")]
    ex = next(r for r in s["table"] if (r["strategy"], r["param"]) == ("exact", 0.02))
    assert few["agrees"] is (ex["n_evaluated"] / ex["n_total"] <= exp.FAR_FEWER)
    assert (out / "skipping.png").stat().st_size > 10_000 and (out / "skipping_curves.png").stat().st_size > 10_000


def test_skipping_claims_can_fail():
    """The inputs on which each rewritten claim is false: 273 of 274 epochs evaluated; half the epochs
    skipped for 5% of the time (and a saving that the timing's repeats cannot decide); an interpolation error
    above its delta."""
    few = lambda n: claims.share_at_most(n, 274, exp.FAR_FEWER).agrees
    assert few(273) is False and few(100) is True
    assert claims.saves_time(0.95, 0.5).agrees is False and claims.saves_time(0.6, 0.4).agrees is True
    # 58% skipped needs a 29% saving; repeats that put the time at 0.66-0.75 of the full one cannot decide
    v = claims.saves_time(0.71, 0.42, time_range=(0.66, 0.75))
    assert v.agrees is None and "spans 25% to 34%, the need 29%" in v.reason
    assert claims.saves_time(0.6, 0.42, time_range=(0.58, 0.62)).agrees is True
    assert claims.saves_time(0.9, 0.42, time_range=(0.85, 0.95)).agrees is False
    assert claims.within_bounds([0.004, 0.012], [0.005, 0.01]).agrees is False
    assert claims.within_bounds([0.004, 0.009], [0.005, 0.01]).agrees is True
    v, _, full, kept = claims.drop_survives(np.array([[0, 4, 1.0]]).T, np.array([[0, 1.0]]).T, tol=0.5)
    assert v.agrees is False and full.tolist() == [3.0] and kept.tolist() == [0.0]  # the peak was skipped


def test_bucket_sizes():
    assert [skipping.bucket(n, 8) for n in (1, 8, 9, 64, 65, 274)] == [8, 8, 16, 64, 80, 320]
    assert all(n <= skipping.bucket(n, 8) <= max(8, 1.25 * n + 8) for n in range(1, 600))
    assert {skipping.bucket(n, 32) for n in range(1, 33)} == {32}


def test_interp_errors_closed_form():
    """Kept epochs 0 and 4 of a curve 0,1,4,1,0 (one T): the chord is 0, so errors are 0,1,4,1,0."""
    ep = np.arange(5)
    curve = np.array([0.0, 1.0, 4.0, 1.0, 0.0])[:, None]
    res = skipping.every_nth(lambda e: (curve[e], 0.5 * curve[e]), ep, n=4)
    assert res.epochs.tolist() == [0, 4] and res.n_evaluated == 2 and res.n_rounds == 1
    err = skipping.interp_errors(res, ep, curve, 0.5 * curve, h_x=8.0, h_y=1.0)
    assert err["i_xt_abs"] == 4.0 and err["i_xt_mean_abs"] == pytest.approx(6 / 5)
    assert err["i_ty_mean_abs"] == pytest.approx(3 / 5) and err["mean_norm"] == pytest.approx(3 / 5)
    assert err["norm"] == pytest.approx(2.0)  # I(T;Y): 2 bits off over h_y = 1
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        skipping.every_nth(lambda e: (curve[e], curve[e]), ep, n=0)


def test_bad_settings_exit_before_training(refused):
    assert "deltas" in refused(exp, ["--set", "deltas=0,0.1"])
    assert "headline_delta" in refused(exp, ["--set", "headline_delta=0.3"])
