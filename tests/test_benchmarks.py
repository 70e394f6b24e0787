"""The --quick modes of experiments.benchmarks.*: each writes its JSON with the expected content."""

import json

import pytest

from experiments.benchmarks import estimators, evaluate, sweeps, training


def _saved(tmp_path, name):
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, nothing left behind
    return json.loads((tmp_path / name).read_text())


def test_estimators_quick(tmp_path):
    # one case per setup path: plain jit, the kNN sizes, vmapped with a shared input, vmapped with keys
    cases = ["binning_n_bins30", "ksg_mi", "hsic_normalized", "smoothed_entropy_nmc1"]
    result = estimators.main(["--quick", "--repeats", "1", "--out", str(tmp_path), "--only", *cases])
    saved = _saved(tmp_path, "estimators_quick.json")
    assert saved["quick"] is True and saved["ksg_memory"] is None
    assert {"backend", "cpu_count", "jax_version", "sizes", "load_average"} <= set(saved)
    assert {r["name"] for r in saved["estimators"]} == set(cases)
    assert {r["mode"] for r in saved["estimators"]} == {"batched", "single"}
    assert all(r["ms_per_item"] > 0 and r["first_call_seconds"] > 0 for r in saved["estimators"])
    assert len(result["estimators"]) == len(saved["estimators"])


def test_estimators_memory_child_runs(tmp_path, monkeypatch):
    """The KSG memory run's child process imports ibjax from the repository root, whatever the cwd."""
    monkeypatch.chdir(tmp_path)
    mem = estimators.ksg_memory(n=300, d=2)
    assert mem["peak_rss_mb"] > 0 and mem["met"] and mem["mi_bits"] > 0


def test_training_quick(tmp_path):
    res = training.main(["--quick", "--out", str(tmp_path)])
    saved = _saved(tmp_path, "training_quick.json")
    assert saved["quick"] is True and {"backend", "cpu_count", "jax_version", "widths"} <= set(saved)
    assert [r["seeds"] for r in saved["training"]] == [1, 2]
    for r in saved["training"]:
        assert r["epochs"] == 20 and r["seconds"] > 0 and r["first_call_seconds"] > 0
        assert r["seed_epochs_per_second"] == pytest.approx(r["seeds"] * r["epochs_per_second"])
    assert res["training"][0]["epochs_per_second"] > 0 and res["checkpoints"]["load_seconds"] > 0
    assert saved["checkpoints"]["n_epochs"] == 10 and saved["checkpoints"]["write_seconds"] > 0


def test_evaluate_quick(tmp_path):
    evaluate.main(["--quick", "--out", str(tmp_path)])
    saved = _saved(tmp_path, "evaluate_quick.json")
    assert saved["quick"] is True and saved["n_epochs"] == 30
    for name in ("binning", "kde"):
        r = saved[name]
        assert r["n_layers"] == 3  # 12-6-4-2: two hidden layers and the output
        assert r["end_to_end_seconds"] > 0 and r["loop_seconds_extrapolated"] > 0 and r["speedup"] > 0
    for how in ("exact", "approx"):
        r = saved[f"delta_skip_{how}"]
        assert r["n_total"] == 30 and 2 <= r["n_evaluated"] <= 30 and r["n_rounds"] >= 1
        assert 0 <= r["max_interp_error"]["norm"] < 1
        t = saved[f"delta_skip_{how}_seconds"]
        assert t["seconds_warm"] > 0 and t["warm_over_all_epochs_warm"] == pytest.approx(
            t["seconds_warm"] / saved["all_epochs_binning"]["seconds_warm"]
        )


def test_sweeps_quick(tmp_path):
    sweeps.main(["--quick", "--out", str(tmp_path)])
    saved = _saved(tmp_path, "sweeps_quick.json")
    assert saved["quick"] is True and {"backend", "cpu_count", "jax_version"} <= set(saved)
    kde = saved["kde_sweep"]
    assert kde["shape"] == [3, 1, 3, 3] and len(kde["noise_vars"]) == 3
    assert kde["one_call_seconds"] > 0 and kde["separate_calls_seconds"] > 0
    assert set(kde["max_abs_diff_by_output"]) == {"i_xt", "i_ty", "i_xt_lower", "i_ty_lower"}
    assert kde["max_abs_diff"] < 1e-5
    grid = saved["training_grid"]
    assert grid["n_runs"] == 32 and grid["epochs"] == 20
    for name in ("grid", "sequential"):
        assert grid[name]["seconds"] > 0 and grid[name]["seed_epochs_per_second"] > 0
    assert grid["grid"]["first_call_seconds"] > 0 and grid["sequential"]["seconds_with_compile"] > 0
    assert grid["speedup"] > 0 and grid["max_abs_param_diff"] < 1e-4


def test_overhead_pieces():
    """The overhead benchmark's parts (its full run takes minutes: results/benchmarks/overhead.json)."""
    from experiments.benchmarks import overhead

    rows = [
        dict(load=load, policy=pol, seeds=50, seed_epochs_per_second=v)
        for load, vals in (("idle", (880.0, 2272.0, 2272.0)), ("busy", (393.0, 140.0, 380.0)))
        for pol, v in zip(("one device", "one device per core", "default"), vals)
    ]
    r = overhead.ratios(rows, 50)
    assert r["idle"]["default_over_best"] == 1.0
    assert r["busy"]["default_over_best"] == pytest.approx(380 / 393, abs=1e-3)
    with overhead.busy(1) as b:
        assert all(p.poll() is None for p in b.procs)  # spinning
    assert all(p.poll() is not None for p in b.procs)  # stopped at the end
    with pytest.raises(RuntimeError, match=r"failed \(3\)"):
        overhead.timed(["-c", "import sys; sys.exit(3)"], overhead._env(None))
    assert overhead._env(None)["IBJAX_XLA_CACHE"] == "off"
