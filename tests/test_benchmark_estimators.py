import json

from experiments import benchmark_estimators


def test_quick_benchmark_writes_table_json(tmp_path):
    cases = ["binning_n_bins30", "kde_upper_lower", "ksg_mi", "edge_i_xt", "smoothed_entropy_nmc1", "hsic_normalized"]
    only = ["--only", *cases]
    result = benchmark_estimators.main(["--quick", "--repeats", "1", "--out", str(tmp_path), *only])
    saved = json.loads((tmp_path / "estimators_quick.json").read_text())
    assert saved["quick"] is True and not list(tmp_path.glob(".*.tmp"))
    names = {r["name"] for r in saved["estimators"]}
    assert names == set(cases)
    assert {r["mode"] for r in saved["estimators"]} == {"batched", "single"}
    assert all(r["ms_per_item"] > 0 and r["first_call_seconds"] > 0 for r in saved["estimators"])
    assert len(result["estimators"]) == len(saved["estimators"])
