import json
from pathlib import Path

import numpy as np
import pytest

from experiments import _harness as harness
from experiments import depth_and_data as dd
from ibjax import checkpoints, claims, pipeline
from ibjax.result import InfoPlane

SIZES = (0.05, 0.45, 0.85)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("depth_and_data") / "out"
    dd.main(["--quick", "--out", str(out)])
    return out, json.loads((out / "summary.json").read_text())


def _first_below(loss, threshold):
    """An independent recomputation: epochs trained (1-based) at the first loss <= threshold."""
    for e, v in enumerate(loss):
        if v <= threshold:
            return e + 1
    return None


def test_epochs_to_threshold_table_matches_the_run_directories(quick):
    out, s = quick
    threshold, metric = s["threshold"]["value"], s["threshold"]["metric"]
    assert (metric, threshold) == ("train_loss", dd.QUICK["threshold"])
    assert set(s["epochs_to_threshold"]) == {"1", "2"}
    for depth, dirs in s["run_dirs"].items():
        per_size = {}
        for d in dirs:
            sub = checkpoints.read_config(d)["data"]["train_subset"]
            size = min(SIZES, key=lambda x: abs(x / 0.85 - sub))
            per_size.setdefault(f"{size:g}", []).append(_first_below(checkpoints.load_metrics(d)[metric], threshold))
        for size, values in per_size.items():
            cell = s["epochs_to_threshold"][depth][size]
            assert cell["per_seed"] == values and cell["n_reached"] == sum(v is not None for v in values)
            if None in values:
                assert cell["mean"] is None and cell["se"] is None
            else:
                assert {k: cell[k] for k in ("mean", "se", "n_seeds")} == harness.mean_se(values)
    # both branches are exercised: the 85% networks reach 0.5 nats within 100 epochs, the 5% ones do not
    assert all(s["epochs_to_threshold"][d]["0.85"]["mean"] is not None for d in ("1", "2"))
    assert all(s["epochs_to_threshold"][d]["0.05"]["mean"] is None for d in ("1", "2"))


def test_every_depth_and_size_has_a_cell_with_spread(quick):
    _, s = quick
    for table in ("epochs_to_threshold", "peak_ixt_epoch", "peak_ixt_drop", "final_i_ty", "final_test_loss"):
        assert set(s[table]) == {"1", "2"}
        for depth in s[table].values():
            assert set(depth) == {"0.05", "0.45", "0.85"}
            for cell in depth.values():
                assert {"mean", "se", "n_seeds"} <= set(cell) and cell["n_seeds"] == 2
    assert s["architectures"] == {"1": "12-10-2", "2": "12-10-7-2"}
    assert [s["sizes"][k]["n_train"] for k in ("0.05", "0.45", "0.85")] == [205, 1843, 3482]


def test_run_grid_holds_the_three_sizes_per_depth(quick):
    out, s = quick
    for depth, dirs in s["run_dirs"].items():
        assert len(dirs) == 6  # 3 sizes x 2 seeds, one vmapped call
        configs = [checkpoints.read_config(d) for d in dirs]
        subs = [c["data"]["train_subset"] for c in configs]
        assert subs == pytest.approx([0.05 / 0.85] * 2 + [0.45 / 0.85] * 2 + [1.0] * 2)  # grid-major
        assert {c["data"]["train_frac"] for c in configs} == {0.85} and {c["vmapped_runs"] for c in configs} == {6}
        assert [c["seed"] for c in configs] == [0, 1] * 3
        assert all(Path(d).parent.parent == out / "runs" / f"depth_{depth}" for d in dirs)


def test_planes_and_figures(quick):
    out, s = quick
    for name in ("infoplanes.png", "epochs.png", "loss.png", "summary.json", "config.json"):
        assert (out / name).stat().st_size > 0
    for depth in ("1", "2"):
        plane = InfoPlane.load(out / f"depth_{depth}" / "infoplane_binning.npz")
        assert plane.shape[:2] == (1, 6) and plane.shape[3] == int(depth) + 1  # hidden layers + output
        for i, size in enumerate(("0.05", "0.45", "0.85")):
            i_ty = plane.i_ty[2 * i : 2 * i + 2, -1, -1]
            assert s["final_i_ty"][depth][size]["mean"] == pytest.approx(i_ty.mean(), abs=1e-4)
            xt = plane.i_xt[2 * i : 2 * i + 2, :, -2]
            assert s["peak_ixt_drop"][depth][size]["mean"] == pytest.approx((xt.max(1) - xt[:, -1]).mean(), abs=1e-4)
    claims = s["claims"]
    assert [c["source"] for c in claims] == [
        "Shwartz-Ziv & Tishby 2017, Fig. 5",
        "Shwartz-Ziv & Tishby 2017, Sec. 3.4",
        "Shwartz-Ziv & Tishby 2017, Fig. 6",
    ]
    assert all(c["agrees"] in (True, False, None) for c in claims)


def test_epochs_to_threshold_function():
    loss = np.array([0.7, 0.5, 0.31, 0.3, 0.2, 0.35])
    assert claims.epochs_to_threshold(loss, 0.3) == 4  # the 4th epoch is the first at or below
    assert claims.epochs_to_threshold(loss, 0.8) == 1
    assert claims.epochs_to_threshold(loss, 0.1) is None  # never crossing
    assert claims.epochs_to_threshold([np.nan, 0.05], 0.1) == 2
    assert claims.epochs_to_threshold([np.nan, np.nan], 0.1) is None
    assert claims.mean_se_all([3, 5]) == {"mean": 4.0, "se": 1.0, "n_seeds": 2, "n_reached": 2, "per_seed": [3, 5]}
    assert claims.mean_se_all([3, None]) == {
        "mean": None,
        "se": None,
        "n_seeds": 2,
        "n_reached": 1,
        "per_seed": [3, None],
    }


def test_trend():
    c = lambda m, se=1.0: {"mean": m, "se": se, "n_seeds": 5}
    assert claims.trend([1, 2, 3], [c(30), c(20), c(10)], -1) is True
    assert claims.trend([1, 2, 3], [c(30, 10), c(20, 10), c(10, 10)], -1) is None  # within the spread: no power
    assert claims.trend([1, 2, 3], [c(10), c(20), c(30)], -1) is False  # significantly the other way
    assert claims.trend_verdict([1, 2, 3], [c(30, 10), c(20, 10), c(10, 10)], -1).reason.startswith("no power")
    assert claims.trend_verdict([1, 2, 3], [c(10), c(20), c(30)], -1).agrees is False
    assert claims.trend([1, 2, 3], [c(10), c(20), c(30)], +1) is True
    assert claims.trend([1, 2], [c(None), c(3)], -1) is None


@pytest.mark.parametrize(
    "args,message",
    [
        (["--set", "depths=0,1"], "must be an integer in [1, 6], got"),
        (["--set", "depths=7"], "must be an integer in [1, 6], got"),
        (["--set", "run.model.activation=gelu"], "activation must be one of"),
        (
            ["--set", "sizes=0,0.45"],
            "sizes item 1 of (0.0, 0.45): must be a number in (0, run.data.train_frac = 0.85], got 0.0",
        ),
        (
            ["--set", "sizes=0.05,0.9"],
            "sizes item 2 of (0.05, 0.9): must be a number in (0, run.data.train_frac = 0.85], got 0.9",
        ),
        (["--set", "run.data.train_frac=1.5"], "data.train_frac must be in (0, 1)"),
        (["--set", "threshold_metric=accuracy"], "threshold_metric must be one of"),
        (["--set", "threshold=-1"], "threshold must be a finite loss (nats) > 0, got -1.0"),
        (["--set", "epochs=log:x"], "is not an integer"),
        (["--seeds", "0"], "--seeds must be >= 1"),
    ],
)
def test_bad_settings_fail_before_training(refused, args, message):
    assert message in refused(dd, [*args])


def test_split_grid_gives_each_point_its_own_runs():
    """A network trained over a 2-point train_sweep x 3 seeds (6 runs, point-major) splits into two planes and
    metric sets of 3 runs each, in order; a count that does not divide the runs is refused."""
    v = np.arange(6 * 2 * 1, dtype=float).reshape(1, 6, 2, 1)
    plane = InfoPlane(np.array([0, 1]), {"i_xt": v, "i_ty": -v}, "binning", {}, run_ids=tuple("abcdef"))
    row = {"dirs": list("abcdef"), "planes": {"b": plane}, "metrics": {"loss": np.arange(6)[:, None] * 1.0}}
    (p0, m0), (p1, m1) = pipeline.split_grid(row, 2)
    assert p0["b"].run_ids == ("a", "b", "c") and p1["b"].run_ids == ("d", "e", "f")
    np.testing.assert_array_equal(p1["b"].values["i_xt"], v[:, 3:])
    np.testing.assert_array_equal(m1["loss"][:, 0], [3, 4, 5])
    with pytest.raises(ValueError, match="n_points=4"):
        pipeline.split_grid(row, 4)
    with pytest.raises(ValueError, match="outside"):
        plane.runs([6])


def test_compression_phase_length_and_its_trend_by_hand():
    """Peak 10 bits at epoch 2, final 0: 90% of the drop is done at the first epoch at or below 1 bit (epoch 8:
    6 epochs after the peak); a flat seed does not compress (None). Shorter phases with depth hold, longer ones
    fail, overlapping ones leave the layer without power, and a layer in one depth only has no trend."""
    ep = np.array([0, 1, 2, 4, 8, 16])
    v = np.array([[5.0, 8.0, 10.0, 5.0, 1.0, 0.0], [5.0, 5.0, 5.0, 5.0, 5.0, 5.0]])
    assert claims.phase_length(v, ep) == [6, None]
    assert claims.phase_length(v[:1], ep, share=0.5) == [2]  # 5 bits: epoch 4
    cell = lambda m, se=1.0: {"mean": m, "se": se, "n_seeds": 5, "n_reached": 5, "per_seed": []}
    shorter = {
        (1, 1): cell(50),
        (1, 2): cell(30),
        (1, 3): cell(10),
        (2, 2): cell(40),
        (2, 3): cell(20),
        (3, 3): cell(5),
    }
    v, measured = claims.shorter_with_depth(shorter, [1, 2, 3])
    assert v.agrees is True and measured["T3, 3 hidden: epochs from peak to 90% of the drop"]["mean"] == 5
    longer = {k: cell(100 - c["mean"]) for k, c in shorter.items()}
    assert claims.shorter_with_depth(longer, [1, 2, 3])[0].agrees is False
    noisy = {k: cell(c["mean"], 100.0) for k, c in shorter.items()}
    assert claims.shorter_with_depth(noisy, [1, 2, 3])[0].agrees is None
    assert claims.shorter_with_depth({(1, 1): cell(5)}, [1])[0].agrees is None
    with pytest.raises(ValueError, match="share must be in"):
        claims.phase_length(np.ones((1, 6)), ep, share=0)
