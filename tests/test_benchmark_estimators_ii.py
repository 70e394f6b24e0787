import json

from experiments import benchmark_estimators_ii


def test_quick_benchmark_writes_json(tmp_path):
    result = benchmark_estimators_ii.main(["--quick", "--repeats", "1", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "estimators_ii_quick.json").read_text())
    assert saved["quick"] is True and not list(tmp_path.glob(".*.tmp"))
    names = {r["name"] for r in saved["estimators"]}
    assert {"edge_i_xt", "smoothed_entropy_nmc1", "hsic_normalized"} <= names
    assert all(r["ms_per_item"] > 0 and r["batch"] == 4 for r in saved["estimators"])
    assert len(result["estimators"]) == len(saved["estimators"])
