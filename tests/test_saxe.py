import json

import numpy as np
import pytest

from experiments import _harness as harness
from experiments import saxe
from ibjax import pipeline
from ibjax.result import InfoPlane

ESTIMATORS = ("binning", "idnns_binning", "kde_upper", "kde_lower")
HIDDEN = [f"layer {l}" for l in range(1, 6)]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("saxe") / "saxe"
    saxe.main(["--quick", "--out", str(out)])
    return out, json.loads((out / "summary.json").read_text())


def _plane(out, entry) -> np.ndarray:
    """I(X;T) (S x E x L) of one summary 'planes' entry, read back from its saved InfoPlane file."""
    plane = InfoPlane.load(out / entry["file"])
    return plane.values[entry["value"]][entry["g"]]


def test_summary_has_claims_and_drops_table(quick):
    out, s = quick
    assert s["dataset"] == "var_u" and s["config"]["seeds"] == 2
    assert len(s["claims"]) == 4
    for c in s["claims"]:
        assert {"claim", "source", "measured", "agrees"} <= set(c) and c["agrees"] in (True, False, None)
        assert c["measured"] and all({"mean", "se", "n_seeds"} <= set(v) for v in c["measured"].values())
    assert set(s["drops"]) == {"tanh", "relu"} and set(s["drops_full_batch"]) == {"tanh"}
    for act in ("tanh", "relu"):
        assert set(s["drops"][act]) == set(ESTIMATORS)
        for est in ESTIMATORS:
            assert list(s["drops"][act][est]) == HIDDEN
            for v in s["drops"][act][est].values():
                assert v["n_seeds"] == 2 and v["mean"] >= 0 and v["se"] >= 0
    assert set(s["drops_full_batch"]["tanh"]) == {"binning", "kde_upper", "kde_lower"}
    assert set(s["run_dirs"]) == {"tanh", "relu", "tanh_gd"} and all(len(d) == 2 for d in s["run_dirs"].values())
    sens = s["sensitivity"]["tanh"]
    assert sens["bin_size"]["values"] == [0.01, 0.07] and sens["noise_var"]["values"] == [0.001, 0.1]
    assert len(sens["bin_size"]["layer 5"]) == 2


def test_drops_equal_recomputed_from_saved_planes(quick):
    out, s = quick
    tables = {
        **{(a, k): t for a, by in s["drops"].items() for k, t in by.items()},
        **{(f"{a}_gd", k): t for a, by in s["drops_full_batch"].items() for k, t in by.items()},
    }
    assert len(tables) == 11
    for (net, est), table in tables.items():
        i_xt = _plane(out, s["planes"][net][est])[:, :, :-1]  # hidden layers
        drop = i_xt.max(axis=1) - i_xt[:, -1]
        for l, name in enumerate(HIDDEN):
            assert table[name]["mean"] == pytest.approx(drop[:, l].mean(), abs=1e-4), (net, est, name)
            assert table[name]["se"] == pytest.approx(drop[:, l].std(ddof=1) / np.sqrt(2), abs=1e-4), (net, est, name)
    # the main binning and KDE panels are the sweeps' points at bin_size 0.07 / noise_var 1e-3
    assert s["planes"]["tanh"]["binning"]["g"] == 1 and s["planes"]["tanh"]["kde_upper"]["g"] == 0
    first = s["sensitivity"]["tanh"]["bin_size"]["layer 5"][1]
    assert first == s["drops"]["tanh"]["binning"]["layer 5"]


def test_figures_exist(quick):
    out, s = quick
    for name in ("infoplane_grid.png", "mi_xt_grid.png", "gd_vs_sgd.png", "gd_vs_sgd_mi_xt.png", "sensitivity.png"):
        assert (out / name).stat().st_size > 10_000 and name in s["files"]
    assert not any(f.startswith("runs/") for f in s["files"])


def test_value_relations(quick):
    out, s = quick
    for net in ("tanh", "relu", "tanh_gd"):
        up = InfoPlane.load(out / s["planes"][net]["kde_upper"]["file"])
        for name in ("i_xt", "i_ty"):  # Kolchinsky-Tracey: lower bound <= upper bound
            assert np.all(up.values[f"{name}_lower"] <= up.values[name] + 1e-4), (net, name)
        for est in ("binning", "kde_upper"):
            v = _plane(out, s["planes"][net][est])
            assert np.all(v <= 12 + 1e-4) and np.all(v >= -1e-4)  # at most log2(4096) bits
    # floor(t / 0.07) is a function of floor(t / 0.01): the coarser grid merges bins, H cannot grow
    for act in ("tanh", "relu"):
        bins = InfoPlane.load(out / s["planes"][act]["binning"]["file"])
        assert bins.sweep["bin_size"] == [0.01, 0.07]
        assert np.all(bins.values["i_xt"][1] <= bins.values["i_xt"][0] + 0.02), act


def test_idnns_binning_folds_relu_values(quick):
    """The IDNNs grid (30 edges on [-1, 1], step 2/29) extended to [-1, 9] with the same step is a
    refinement that keeps ReLU values above 1 apart: the folded plane's I(X;T) is never larger, strictly
    smaller for ReLU, and equal for tanh (whose values never leave [-1, 1])."""
    out, s = quick
    for act in ("tanh", "relu"):
        folded = InfoPlane.load(out / s["planes"][act]["idnns_binning"]["file"])
        wide = pipeline.evaluate_runs(
            s["run_dirs"][act],
            "binning",
            {"n_bins": 30 + 116, "value_range": (-1.0, 9.0)},
            epochs="all",
            progress=False,
            log=lambda *a: None,
        )
        assert np.array_equal(wide.epochs, folded.epochs)
        assert np.all(folded.i_xt <= wide.i_xt + 1e-5), act
        if act == "tanh":
            assert not folded.warnings
            np.testing.assert_allclose(folded.i_xt, wide.i_xt, atol=1e-5)
        else:
            assert folded.warnings  # "activations outside value_range were clipped into the edge bins"
            assert (wide.i_xt - folded.i_xt).max() > 0.5


@pytest.mark.parametrize(
    "args,message",
    [
        (["--set", "run.model.activation=gelu"], "activation must be one of"),
        (["--set", "run.model.widths=12,2"], "widths must list the input, at least one hidden layer"),
        (["--set", "run.data.train_subset=1.5"], "data.train_subset must be in (0, 1]"),
        (["--set", "bin_size=0"], "bin_size: estimator option bin_size must be a finite number > 0"),
        (["--set", "bin_sweep=0.01,-0.1"], "estimator option bin_size must be a finite number > 0, got -0.1"),
        (["--set", "noise_var=-1e-3"], "noise_var: estimator option noise_var must be a finite number > 0"),
        (["--set", "idnns_bins=1"], "estimator option n_bins must be an integer >= 2"),
        (["--set", "contrast_activation=gelu"], "contrast_activation must be one of"),
        (["--set", "contrast_activation=tanh"], "contrast_activation must differ"),
        (["--set", "kde_epochs=log:x"], "kde_epochs: epochs 'log:x'"),
        (["--set", "run.train.batch_size=0"], "run.train.batch_size must be an integer >= 1, got 0"),
        (["--set", "seeds=0"], "seeds must be an integer >= 1"),
    ],
)
def test_bad_settings_fail_before_training(refused, args, message):
    assert message in refused(saxe, [*args, "--quick"])


def test_the_harness_checks_again_before_training(tmp_path, monkeypatch):
    """A config changed around its dataclass (object.__setattr__ skips the construction's checks) is
    refused by the harness's own validate before anything is trained."""
    monkeypatch.setattr(saxe.pipeline, "train_or_reuse", lambda *a, **k: pytest.fail("trained"))
    cfg = saxe.Config()
    object.__setattr__(cfg, "bin_size", -1.0)
    with pytest.raises(ValueError, match="bin_size: estimator option bin_size must be a finite number > 0"):
        harness._write(
            "saxe", cfg, {}, saxe.run, saxe.figures, saxe.claims, harness.parse_args("saxe", cfg, {}, []), tmp_path
        )
