"""python -m ibjax.evaluate: outputs, errors, resuming, adaptive epoch selection."""

import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest

from ibjax import evaluate, infoplane, io, pipeline, skipping
from ibjax.config import DataConfig, MLPConfig, RunConfig, TrainConfig
from ibjax.result import InfoPlane
from ibjax.timing import compile_clock


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    cfg = RunConfig(
        MLPConfig((12, 8, 5, 3, 2)),
        DataConfig(name="var_u"),
        TrainConfig(n_epochs=40, schedule="all", learning_rate=0.01),
    )
    return pipeline.train_or_reuse(cfg, [0], tmp_path_factory.mktemp("runs"), log=lambda *_: None)[0]


def test_binning_writes_results_and_figure(run_dir, tmp_path, capsys):
    out = evaluate.main(
        [str(run_dir), "--estimator", "binning", "--n-bins", "30", "--epochs", "every:10", "--out", str(tmp_path)]
    )
    assert out.epochs.tolist() == [0, 10, 20, 30] and out.shape == (1, 1, 4, 4)
    assert (tmp_path / "infoplane_binning.png").stat().st_size > 0
    loaded = InfoPlane.load(tmp_path / "infoplane_binning.npz")
    np.testing.assert_array_equal(loaded.i_xt, out.i_xt)
    for f in (tmp_path / "infoplane_binning.npz", tmp_path / "infoplane_binning.png"):
        assert stat.S_IMODE(f.stat().st_mode) == 0o644 & ~_umask()
    printed = capsys.readouterr().out.splitlines()
    assert "binning: 1 run(s) x 4 epochs x 4 T's" in printed[0]
    assert printed[-3].startswith("dataset: var_u") and printed[-2] == f"runs: {run_dir}"
    assert printed[-1].startswith(f"wrote {tmp_path / 'infoplane_binning.npz'}")
    again = evaluate.main([str(run_dir), "--estimator", "binning", "--epochs", "every:10", "--out", str(tmp_path)])
    assert "reusing" in capsys.readouterr().out
    np.testing.assert_array_equal(again.i_xt, out.i_xt)


def _umask():
    m = os.umask(0)
    os.umask(m)
    return m


def test_new_settings_are_recomputed_not_served_from_the_old_result(run_dir, tmp_path, capsys):
    """Regression: --n-bins 10 after a finished 30-bin run returned the 30-bin numbers with exit 0."""
    thirty = evaluate.main([str(run_dir), "--estimator", "binning", "--n-bins", "30", "--out", str(tmp_path)])
    ten = evaluate.main([str(run_dir), "--estimator", "binning", "--n-bins", "10", "--out", str(tmp_path)])
    assert "recomputing" in capsys.readouterr().out
    fresh = evaluate.main([str(run_dir), "--estimator", "binning", "--n-bins", "10", "--out", str(tmp_path / "fresh")])
    np.testing.assert_array_equal(ten.i_xt, fresh.i_xt)
    assert not np.array_equal(ten.i_xt, thirty.i_xt)
    every10 = ["--epochs", "every:10"]  # 4 of the 40 epochs: KDE is O(N^2) per epoch and layer
    kde1 = evaluate.main([str(run_dir), "--estimator", "kde", "--noise-var", "0.1", *every10, "--out", str(tmp_path)])
    kde2 = evaluate.main([str(run_dir), "--estimator", "kde", "--noise-var", "0.01", *every10, "--out", str(tmp_path)])
    assert kde2.settings["noise_var"] == 0.01 and not np.array_equal(kde1.i_xt, kde2.i_xt)
    sub = evaluate.main(
        [str(run_dir), "--estimator", "kde", "--noise-var", "0.01", "--epochs", "every:20", "--out", str(tmp_path)]
    )
    assert sub.epochs.tolist() == [0, 20]


def test_sweep_gives_a_settings_axis(run_dir, tmp_path):
    out = evaluate.main(
        [
            str(run_dir),
            "--estimator",
            "kde",
            "--sweep",
            "noise_var=1e-3,1e-2,1e-1",
            "--epochs",
            "every:10",
            "--out",
            str(tmp_path),
        ]
    )
    assert out.shape[:2] == (3, 1) and out.sweep == {"noise_var": [1e-3, 1e-2, 1e-1]}


def test_help_documents_every_option():
    text = subprocess.run([sys.executable, "-m", "ibjax.evaluate", "--help"], capture_output=True, text=True).stdout
    for flag in list(evaluate.option_flags()) + [
        "--epochs",
        "--memory-gb",
        "--out",
        "--estimator",
        "--recompute",
        "--sweep",
        "--view",
        "--nan",
        "--allow-partial",
    ]:
        assert flag in text
    assert "default" in text and "sweepable in one call" in text


@pytest.mark.parametrize(
    "args,message",
    [
        (["--estimator", "binning", "--k", "3"], "option --k belongs to estimator 'knn' or 'renyi', not 'binning'"),
        (["--estimator", "binning", "--n-bins", "1"], "n_bins must be an integer >= 2"),
        (["--estimator", "kde", "--noise-var", "-1"], "noise_var must be a finite number > 0"),
        (["--estimator", "binning", "--epochs", "list:3,999"], "epochs [999] are not present in the run"),
        (["--estimator", "binning", "--epochs", "fib:2"], "epochs must be"),
        (["--estimator", "binning", "--memory-gb", "1e-9"], "too small for one epoch"),
        (
            ["--estimator", "kde", "--sweep", "noise_var=1e-3,big"],
            "--sweep 'noise_var=1e-3,big': values of noise_var must be of type float",
        ),
        (["--estimator", "kde", "--sweep", "bandwidth=1"], "estimator 'kde' has no option 'bandwidth'"),
        (["--estimator", "binning", "--view", "filters"], "view 'filters' applies to convolutional layers"),
    ],
)
def test_clear_errors(run_dir, tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as e:
        evaluate.main([str(run_dir), "--out", str(tmp_path), *args])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_out_that_is_a_file_or_not_writable_fails_before_computing(run_dir, tmp_path, capsys, monkeypatch):
    called = []
    monkeypatch.setattr(pipeline, "evaluate_runs", lambda *a, **k: called.append(1))
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(SystemExit):
        evaluate.main([str(run_dir), "--estimator", "binning", "--out", str(a_file)])
    assert "is a file, not a directory" in capsys.readouterr().err

    def refuse(**kw):  # an unwritable directory (root ignores mode bits, so simulate the OS's answer)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(io.tempfile, "NamedTemporaryFile", refuse)
    with pytest.raises(SystemExit):
        evaluate.main([str(run_dir), "--estimator", "binning", "--out", str(tmp_path / "locked")])
    assert "is not writable" in capsys.readouterr().err and not called


def test_not_a_run_directory(tmp_path, capsys):
    with pytest.raises(SystemExit):
        evaluate.main([str(tmp_path), "--estimator", "binning"])
    err = capsys.readouterr().err
    assert "no config.json" in err or "not a run directory" in err


def test_interrupted_evaluation_resumes_without_recomputing(run_dir, tmp_path, monkeypatch):
    args = [str(run_dir), "--estimator", "binning", "--memory-gb", "0.002", "--out", str(tmp_path)]
    real = infoplane.evaluate_chunk
    calls = []

    def dying(*a, **k):
        calls.append(len(a[2]))
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
    monkeypatch.setattr(infoplane, "evaluate_chunk", lambda *a, **k: (calls.append(len(a[2])), real(*a, **k))[1])
    resumed = evaluate.main(args)
    n_resumed = len(calls)
    calls.clear()
    fresh = evaluate.main(args[:-1] + [str(tmp_path / "fresh")])
    assert n_resumed == len(calls) - 2  # the two finished chunks were not recomputed
    np.testing.assert_array_equal(resumed.i_xt, fresh.i_xt)


def test_corrupt_cache_chunk_is_named_and_recomputed(run_dir, tmp_path, monkeypatch):
    args = [str(run_dir), "--estimator", "binning", "--memory-gb", "0.002", "--out", str(tmp_path)]
    full = evaluate.main(args)
    (tmp_path / "infoplane_binning.npz").unlink()
    chunk = sorted((tmp_path / ".cache").rglob("chunk_*.npz"))[0]
    chunk.write_bytes(chunk.read_bytes()[:100])
    with pytest.warns(UserWarning, match=f"cache chunk {chunk} is corrupt"):
        again = evaluate.main(args)
    np.testing.assert_array_equal(again.i_xt, full.i_xt)


def test_delta_skip_rounds_reuse_a_few_compiled_programs(run_dir, tmp_path):
    """Each round evaluates another number of epochs; chunk shards are rounded up to a
    power of two and the model is built once per setting, so the engine compiles at most one program per
    bucket, and a second delta-skip run in the same process compiles none."""
    args = [str(run_dir), "--estimator", "binning", "--n-bins", "17", "--epochs", "delta:0.05:exact"]
    with compile_clock() as first:
        evaluate.main([*args, "--out", str(tmp_path / "a")])
    report = json.loads((tmp_path / "a" / "skipping_binning.json").read_text())
    engine = first["by_name"]["jit(evaluate_chunk)"]
    buckets = {infoplane._bucket(n) for n in range(1, 41)}  # 40 kept epochs: {1, 2, 4, ..., 64}
    # one call per round (the kept epochs' plane is assembled from the rounds), each a distinct bucket at most
    assert 1 <= engine <= min(report["n_rounds"], len(buckets)), (engine, report["n_rounds"])
    with compile_clock() as again:
        evaluate.main([*args, "--out", str(tmp_path / "b")])
    assert again["by_name"]["jit(evaluate_chunk)"] == 0, again["by_name"]
    assert json.loads((tmp_path / "b" / "skipping_binning.json").read_text())["epochs_kept"] == report["epochs_kept"]


@pytest.mark.parametrize("how", ["exact", "approx"])
def test_delta_skip_on_a_real_run(run_dir, tmp_path, how):
    full = evaluate.main([str(run_dir), "--estimator", "binning", "--out", str(tmp_path / "full")])
    out = evaluate.main(
        [
            str(run_dir),
            "--estimator",
            "binning",
            "--epochs",
            f"delta:0.05:{how}",
            "--compare-full",
            "--out",
            str(tmp_path / how),
        ]
    )
    report = json.loads((tmp_path / how / "skipping_binning.json").read_text())
    assert report["n_total"] == 40 and report["n_evaluated"] < 40
    epochs = out.epochs
    assert epochs[0] == 0 and epochs[-1] == 39 and np.all(np.diff(epochs) > 0)
    i_xt, i_ty = out.i_xt[0], out.i_ty[0]
    np.testing.assert_allclose(i_xt, full.i_xt[0][epochs])  # same values as the full evaluation
    np.testing.assert_allclose(i_ty, full.i_ty[0][epochs])
    assert out.key == "" and out.run_ids == full.run_ids  # assembled from the rounds: no single evaluation's key
    h_x, h_y = 12.0, float(report["h_y"])
    dist = skipping.consecutive_distances(i_xt, i_ty, h_x=h_x, h_y=h_y)
    if how == "exact":
        assert np.all((dist <= 0.05 + 1e-9) | (np.diff(epochs) == 1))
    assert set(report) >= {"max_interp_error", "n_rounds"}
    assert report["max_interp_error"]["norm"] >= 0
