import json
import subprocess
import sys

import numpy as np
import pytest

from experiments import _harness as harness
from experiments import tishby
from ibjax.result import InfoPlane


def test_tishby_quick_end_to_end(tmp_path, capsys):
    out = tmp_path / "tishby"
    summary = tishby.main(["--quick", "--out", str(out), "--seeds", "2"])
    printed = capsys.readouterr().out
    assert "dataset: var_u" in printed and f"wrote {out}/summary.json" in printed
    saved = json.loads((out / "summary.json").read_text())
    assert [c["claim"] for c in summary["claims"]] == [c["claim"] for c in saved["claims"]] and saved["claims"]
    for name in ("infoplane.png", "loss.png", "mi_epoch.png", "summary.json", "config.json", "infoplane_binning.npz"):
        assert (out / name).stat().st_size > 0
    plane = InfoPlane.load(out / "infoplane_binning.npz")
    i_xt, i_ty = plane.i_xt, plane.i_ty
    assert i_xt.shape == (2, 45, 6)
    # 10 tanh units binned in 30 bins keep all 4096 inputs apart: I(X;T_1) = 12 bits (to a few collisions)
    assert np.all(i_xt[:, :, 0] > 11.9) and np.all(i_xt <= 12.0 + 1e-5)
    assert np.all(i_ty <= 1.0 + 1e-5) and np.all(i_ty >= -1e-6)
    assert not np.allclose(i_xt[0], i_xt[1])  # each seed its own plane
    saved = json.loads((out / "summary.json").read_text())
    assert saved["final_test_acc"][0] > 0.8 and saved["dataset"] == "var_u" and saved["versions"]["jax"]
    assert {"claim", "source", "measured", "agrees"} <= set(saved["claims"][0])
    drop = saved["claims"][0]["measured"]["T5"]["peak-to-final drop [bits]"]
    want = i_xt[:, :, 4].max(1) - i_xt[:, -1, 4]
    assert drop["mean"] == pytest.approx(want.mean(), abs=1e-4) and drop["n_seeds"] == 2
    assert all(c["rule"] == "ibjax-verdict/1" and (c["agrees"] is not None or c["reason"]) for c in saved["claims"])
    # rerun: the finished run directories and the result are reused, not recomputed
    tishby.main(["--quick", "--out", str(out), "--seeds", "2"])
    printed = capsys.readouterr().out
    assert "reusing 2 finished run directories" in printed and "reusing" in printed.split("\n")[1]
    # --force: retrained and re-evaluated, nothing reused (a forced rerun never shows an older plane)
    tishby.main(["--quick", "--out", str(out), "--seeds", "2", "--force"])
    printed = capsys.readouterr().out
    assert "reusing" not in printed and "recomputing" in printed
    np.testing.assert_array_equal(InfoPlane.load(out / "infoplane_binning.npz").i_xt, i_xt)  # deterministic


def test_set_explicit_beats_quick_and_says_so(capsys):
    a = harness.parse_args("tishby", tishby.Config(), tishby.QUICK, ["--quick", "--set", "run.train.n_epochs=50"])
    cfg, settings = harness.build_config(tishby.Config(), tishby.QUICK, a)
    assert cfg.run.train.n_epochs == 50 and cfg.run.train.schedule == "log:60"
    assert "note: --set run.train.n_epochs=50 overrides --quick's run.train.n_epochs=300" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args,message",
    [
        (["--set", "run.train.lr=1"], "--set run.train.lr: unknown setting"),
        (["--set", "run.train.n_epochs=ten"], "--set run.train.n_epochs='ten': expected a value of type int"),
        (["--set", "run.model.activation=gelu"], "activation must be one of"),
        (["--set", "run.model.widths=12,2"], "widths must list the input, at least one hidden layer"),
        (["--set", "run.data.train_subset=1.5"], "data.train_subset must be in (0, 1]"),
        (["--seeds", "0"], "--seeds must be >= 1"),
    ],
)
def test_bad_settings_fail_before_training(refused, args, message):
    assert message in refused(tishby, [*args])


def test_out_that_is_a_file_fails_early(tmp_path, capsys):
    f = tmp_path / "f"
    f.write_text("")
    with pytest.raises(SystemExit):
        tishby.main(["--quick", "--out", str(f)])
    assert "is a file, not a directory" in capsys.readouterr().err


def _plane(i_xt_SxExL, i_ty_SxExL):
    e = i_xt_SxExL.shape[1]
    v = {"i_xt": i_xt_SxExL[None], "i_ty": i_ty_SxExL[None]}
    return InfoPlane(np.arange(e), v, "binning", {}, measured={"n_samples": 4096, "data": "var_u"})


def test_tishby_claims_fail_on_a_plane_that_contradicts_them():
    """Each claim can fail: a plane whose last hidden layer only rises and whose I(T;Y) falls, and one
    whose last hidden layer compresses before it fits."""
    s, e = 4, 6
    jitter = np.linspace(-0.02, 0.02, s)[:, None, None]
    up = np.linspace(2.0, 6.0, e)[None, :, None] + jitter  # I(X;T) only rises: no compression
    down = np.linspace(0.8, 0.3, e)[None, :, None] + jitter  # I(T;Y) falls: no fitting
    x = np.concatenate([np.full((s, e, 1), 12.0), up, up / 2], axis=2)  # T1 at the cap, T2 hidden, output
    y = np.concatenate([np.full((s, e, 1), 1.0), down, down], axis=2)
    c = tishby.claims({"plane": _plane(x, y), "h_y": 1.0}, tishby.Config())
    assert [k["agrees"] for k in c] == [False, False, None]  # the third: no I(T;Y) gain to share out
    assert c[1]["measured"]["decided on (the others start at H(Y))"] == ["T2", "T3"]
    # compression before fitting: I(X;T) peaks at epoch 1, I(T;Y) gains only afterwards
    xt = np.array([3.0, 6.0, 5.0, 4.0, 3.5, 3.0])[None, :, None] + jitter
    ty = np.array([0.2, 0.2, 0.3, 0.6, 0.8, 0.9])[None, :, None] + jitter
    x2 = np.concatenate([np.full((s, e, 1), 12.0), xt, xt / 2], axis=2)
    y2 = np.concatenate([np.full((s, e, 1), 1.0), ty, ty], axis=2)
    c = tishby.claims({"plane": _plane(x2, y2), "h_y": 1.0}, tishby.Config())
    assert [k["agrees"] for k in c] == [True, True, False]


def test_tishby_module_is_small():
    src = open(tishby.__file__).read().splitlines()
    assert len(src) < 100


def test_help_lists_settings():
    text = subprocess.run([sys.executable, "-m", "experiments.tishby", "--help"], capture_output=True, text=True).stdout
    assert "run.train.learning_rate" in text and "--quick" in text and "--seeds" in text
