import json
import math

import numpy as np
import pytest

from experiments import snr
from ibjax import checkpoints, dynamics

ARGS = ["--quick", "--set", "run.train.schedule=log:12"]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("snr")
    summary = snr.main([*ARGS, "--out", str(out)])
    return out, summary


def _metrics(summary, act):
    ms = [checkpoints.load_metrics(d) for d in summary["run_dirs"][act]]
    return {k: np.stack([m[k] for m in ms]) for k in ms[0]}


def _naive_transition(snr_E, window):
    """The definition in results/snr/NOTES.md, written out independently: epoch n = 1..E."""
    e = len(snr_E)
    sm = []
    for k in range(e):
        half = min(max(math.floor(window * (k + 1)), dynamics.MIN_HALF), k, e - 1 - k)
        sm.append(float(np.median(snr_E[k - half : k + half + 1])))
    early = int(math.sqrt(e))
    k_peak = max(range(early), key=lambda k: sm[k])
    if not sm[k_peak] > 1:
        return None
    for k in range(k_peak, int(e / (1 + window))):
        if sm[k] < 1:
            return k + 1
    return None


def test_quick_run_writes_files_and_claims(quick):
    out, summary = quick
    for name in (
        "snr.png",
        "snr.npz",
        "summary.json",
        "config.json",
        "tanh/infoplane_binning.npz",
        "relu/infoplane_binning.npz",
    ):
        assert (out / name).stat().st_size > 0, name
    assert summary["dataset"] == "var_u" and summary["snr_undefined"] is False
    assert [c["source"].split(",")[0] for c in summary["claims"]] == [snr.SZT, snr.SZT, snr.SAXE]
    for c in summary["claims"]:
        assert {"claim", "source", "measured", "agrees"} <= set(c) and c["agrees"] in (True, False, None)
    saved = json.loads((out / "summary.json").read_text())
    assert saved["transition_epochs"] == json.loads(json.dumps(summary["transition_epochs"]))


def test_snr_is_mean_over_std_of_the_saved_metrics(quick):
    out, summary = quick
    with np.load(out / "snr.npz") as z:
        assert np.array_equal(z["epochs_E"], np.arange(1, 201))
        for act in ("tanh", "relu"):
            m = _metrics(summary, act)
            assert m["grad_mean_norm"].shape == (2, 200, 6)
            np.testing.assert_array_equal(z[f"{act}_snr_SxExL"], m["grad_mean_norm"] / m["grad_std_norm"])
            assert np.isfinite(z[f"{act}_snr_SxExL"]).all()


def test_transition_epochs_match_a_recomputation(quick):
    out, summary = quick
    found = 0
    for act in ("tanh", "relu"):
        m = _metrics(summary, act)
        ratio = m["grad_mean_norm"] / m["grad_std_norm"]
        table = summary["transition_epochs"][act]
        for l in range(6):
            entry = table[f"layer {l + 1}"]
            want = [_naive_transition(ratio[s, :, l], 0.1) for s in range(2)]
            again = [dynamics.snr_transition(ratio[s, :, l], 0.1) for s in range(2)]
            assert entry["snr_below_1"]["per_seed"] == want == [a["epoch"] for a in again]
            assert entry["steepest_decline"]["per_seed"] == [a["steepest"] for a in again]
            have = [w for w in want if w is not None]
            assert entry["snr_below_1"]["n_null"] == 2 - len(have)
            if have:
                assert entry["snr_below_1"]["mean"] == pytest.approx(np.mean(have), abs=1e-4)
            found += len(have)
    assert found >= 12  # most layers cross within 200 epochs


def test_transition_of_synthetic_curves():
    n = np.arange(1, 4001)
    crossing = dynamics.snr_transition(10 / (1 + n / 100))  # equals 1 at epoch 900
    assert crossing["epoch"] in (900, 901) and crossing["peak_epoch"] == 1 and crossing["reason"] is None
    # log10 SNR = 1 - 2 sigmoid(3 (log10 n - 2)): below 1 from epoch 100, steepest there too
    sig = 10 ** (1 - 2 / (1 + np.exp(-3 * (np.log10(n) - 2))))
    got = dynamics.snr_transition(sig)
    assert got["epoch"] in (100, 101) and abs(got["steepest"] - 100) <= 3
    never = dynamics.snr_transition(2 + 1 / n)
    assert never["epoch"] is None and "never falls below 1" in never["reason"]
    flat = dynamics.snr_transition(np.full(500, 0.5))
    assert flat["epoch"] is None and "no drift phase" in flat["reason"]
    nan = dynamics.snr_transition(np.full(100, np.nan))
    assert nan["epoch"] is None and nan["steepest"] is None and "undefined" in nan["reason"]


def test_smoothing_keeps_monotone_curves_and_removes_spikes():
    x = 10 / (1 + np.arange(1, 1001) / 50)
    np.testing.assert_array_equal(dynamics.moving_median(x), x)
    spiky = x.copy()
    spiky[[3, 400, 401]] = [100.0, 0.001, 0.001]
    np.testing.assert_allclose(dynamics.moving_median(spiky)[[3, 400, 401]], x[[3, 400, 401]], rtol=0.02)
    stacked = np.stack([spiky, x])[:, :, None]  # along an inner axis, as the experiment does (S x E x L)
    np.testing.assert_array_equal(dynamics.moving_median(stacked, axis=1)[0, :, 0], dynamics.moving_median(spiky))


def test_full_batch_is_undefined_not_zero(tmp_path):
    out = tmp_path / "fb"
    summary = snr.main(
        [
            "--set",
            "run.train.batch_size=0",
            "--set",
            "activations=tanh",
            "--set",
            "run.train.n_epochs=30",
            "--set",
            "run.train.schedule=log:4",
            "--seeds",
            "1",
            "--out",
            str(out),
        ]
    )
    assert summary["snr_undefined"] is True
    assert all(c["agrees"] is None and "undefined" in c["reason"] for c in summary["claims"])
    assert "undefined" in summary["transition_epochs"]["tanh"]["note"]
    with np.load(out / "snr.npz") as z:
        assert np.isnan(z["tanh_snr_SxExL"]).all() and np.isnan(z["tanh_transition_SxL"]).all()
    assert (out / "snr.png").stat().st_size > 0


@pytest.mark.parametrize(
    "args,message",
    [
        (["--set", "activations=gelu"], "activations must be at least 1 distinct value(s) of"),
        (["--set", "activations=tanh,tanh"], "activations must be at least 1 distinct value(s) of"),
        (["--set", "activations="], "activations must be at least 1 distinct value(s) of"),
        (["--set", "run.model.activation=relu"], "run.model.activation must be one of ('tanh',), got 'relu'"),
        (["--set", "window=0"], "window must be a number in (0, 1)"),
        (["--set", "window=1.5"], "window must be a number in (0, 1)"),
        (["--set", "options=n_bins=1"], "n_bins must be an integer >= 2"),
        (["--set", "options_unbounded=size=1"], "is not NAME=VALUE"),
        (["--set", "epochs=some"], "epochs must be"),
        (["--set", "seeds=0"], "seeds must be an integer >= 1"),
        (["--set", "run.train.batch_size=-1"], "batch_size must be an integer >= 0"),
        (["--seeds", "0"], "--seeds must be >= 1"),
    ],
)
def test_bad_settings_fail_before_training(refused, args, message):
    assert message in refused(snr, [*args])


def test_a_transition_far_from_the_peak_is_no_only_in_szt_s_batch_size():
    """Two seeds whose last hidden layer peaks at epoch 1000 and loses half its I(X;T), with the SNR
    transition at epoch 10 (two decades early): "no" at SZT's batch 512, undecided at 256."""
    from ibjax.result import InfoPlane

    epochs = np.array([0, 10, 100, 1000, 3000])
    curve = np.array([1.0, 2.0, 3.0, 4.0, 2.0])  # hidden layer: peak at 1000, drop 2 = 50% of its peak
    i_xt = np.stack([np.stack([curve, curve, np.ones(5)], axis=1)] * 2)  # S x E x (2 hidden + output)
    r = {
        "plane": InfoPlane(
            epochs,
            {"i_xt": i_xt[None], "i_ty": np.zeros((1,) + i_xt.shape)},
            "binning",
            {},
            measured={"n_samples": 4096},
        ),
        "transition": np.full((2, 3), 10.0),
        "steepest": np.full((2, 3), 10.0),
    }
    claim = ("the transition coincides with the onset of compression", "SZT")
    at_512 = snr._coincide(r, claim, 512)
    assert at_512["agrees"] is False and "reason" not in at_512
    assert at_512["measured"]["layer 2 |log10(transition / peak epoch)|"]["mean"] == pytest.approx(2.0)
    at_256 = snr._coincide(r, claim, 256)
    assert at_256["agrees"] is None and at_256["reason"].startswith("not SZT's setting: batch 256, SZT used 512")
