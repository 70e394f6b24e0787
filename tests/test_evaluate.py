"""python -m ibjax.evaluate: outputs, errors, resuming, adaptive epoch selection."""

import json
import subprocess
import sys

import numpy as np
import pytest

from ibjax import data, evaluate, infoplane, runs, skipping
from ibjax.train import TrainConfig


@pytest.fixture(scope="module")
def run_dir(shared_dir, tmp_path_factory):
    ds = data.var_u(shared_dir / "data" / "var_u.mat")
    cfg = TrainConfig(widths=(12, 8, 5, 3, 2), n_epochs=40, schedule="all", learning_rate=0.01)
    dirs, _ = runs.train_and_save(cfg, ds, "random", 0, [0], tmp_path_factory.mktemp("runs"), log=lambda *_: None)
    return dirs[0]


def test_binning_writes_results_and_figure(run_dir, tmp_path, capsys):
    out = evaluate.main([str(run_dir), "--estimator", "binning", "--n-bins", "30", "--epochs", "every:10",
                         "--out", str(tmp_path)])
    assert out["epochs_E"].tolist() == [0, 10, 20, 30]
    assert out["i_xt_RxExL"].shape == (1, 4, 4)
    assert (tmp_path / "infoplane_binning.png").stat().st_size > 0
    with np.load(tmp_path / "infoplane_binning.npz") as z:
        np.testing.assert_array_equal(z["i_xt_mean_ExL"], out["i_xt_RxExL"][0])
    assert "binning: 1 run(s) x 4 epochs x 4 layers" in capsys.readouterr().out
    again = evaluate.main([str(run_dir), "--estimator", "binning", "--epochs", "every:10", "--out", str(tmp_path)])
    assert "exists; pass --recompute" in capsys.readouterr().out
    np.testing.assert_array_equal(again["i_xt_RxExL"], out["i_xt_RxExL"])


def test_help_documents_every_option():
    text = subprocess.run([sys.executable, "-m", "ibjax.evaluate", "--help"], capture_output=True, text=True).stdout
    for flag in list(evaluate.OPTIONS) + ["--epochs", "--memory-gb", "--out", "--estimator", "--recompute"]:
        assert flag in text
    assert "default" in text


@pytest.mark.parametrize("args,message", [
    (["--estimator", "binning", "--k", "3"], "option --k belongs to estimator 'knn'"),
    (["--estimator", "binning", "--n-bins", "1"], "n_bins must be an integer >= 2"),
    (["--estimator", "kde", "--noise-var", "-1"], "noise_var must be a finite number > 0"),
    (["--estimator", "binning", "--epochs", "list:3,999"], "epochs [999] are not present in the run"),
    (["--estimator", "binning", "--epochs", "fib:2"], "--epochs must be"),
    (["--estimator", "binning", "--memory-gb", "1e-9"], "too small for one epoch"),
])
def test_clear_errors(run_dir, tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as e:
        evaluate.main([str(run_dir), "--out", str(tmp_path), *args])
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_not_a_run_directory(tmp_path, capsys):
    with pytest.raises(SystemExit):
        evaluate.main([str(tmp_path), "--estimator", "binning"])
    assert "is not a run directory" in capsys.readouterr().err


def test_interrupted_evaluation_resumes_without_recomputing(run_dir, tmp_path, monkeypatch):
    args = [str(run_dir), "--estimator", "binning", "--memory-gb", "0.02", "--out", str(tmp_path)]
    real = infoplane.evaluate_chunk
    calls = []

    def dying(*a, **k):
        calls.append(len(a[1]))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(infoplane, "evaluate_chunk", dying)
    with pytest.raises(KeyboardInterrupt):
        evaluate.main(args)
    assert not (tmp_path / "infoplane_binning.npz").exists()
    cached = sorted((tmp_path / ".cache").rglob("chunk_*.npz"))
    assert len(cached) == 2
    calls.clear()
    monkeypatch.setattr(infoplane, "evaluate_chunk", lambda *a, **k: (calls.append(len(a[1])), real(*a, **k))[1])
    resumed = evaluate.main(args)
    n_resumed = len(calls)
    calls.clear()
    fresh = evaluate.main(args[:-1] + [str(tmp_path / "fresh")])
    assert n_resumed == len(calls) - 2  # the two finished chunks were not recomputed
    np.testing.assert_allclose(resumed["i_xt_RxExL"], fresh["i_xt_RxExL"])


@pytest.mark.parametrize("how", ["exact", "approx"])
def test_delta_skip_on_a_real_run(run_dir, tmp_path, how):
    full = evaluate.main([str(run_dir), "--estimator", "binning", "--out", str(tmp_path / "full")])
    out = evaluate.main([str(run_dir), "--estimator", "binning", "--epochs", f"delta:0.05:{how}",
                         "--compare-full", "--out", str(tmp_path / how)])
    report = json.loads((tmp_path / how / "skipping_binning.json").read_text())
    assert report["n_total"] == 40 and report["n_evaluated"] < 40
    epochs = out["epochs_E"]
    assert epochs[0] == 0 and epochs[-1] == 39 and np.all(np.diff(epochs) > 0)
    i_xt, i_ty = out["i_xt_RxExL"][0], out["i_ty_RxExL"][0]
    np.testing.assert_allclose(i_xt, full["i_xt_RxExL"][0][epochs])  # same values as the full evaluation
    h_x, h_y = 12.0, float(report["h_y"])
    dist = skipping.consecutive_distances(i_xt, i_ty, h_x=h_x, h_y=h_y)
    if how == "exact":
        assert np.all((dist <= 0.05 + 1e-9) | (np.diff(epochs) == 1))
    assert set(report) >= {"max_interp_error", "n_rounds"}
    assert report["max_interp_error"]["norm"] >= 0
