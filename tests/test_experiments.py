import json

import numpy as np

from experiments import benchmark_training, tishby


def test_tishby_quick_end_to_end(tmp_path, capsys):
    out = tmp_path / "tishby"
    summary = tishby.main(["--quick", "--out", str(out), "--seeds", "2"])
    printed = capsys.readouterr().out
    assert "dataset: var_u" in printed and "final accuracy" in printed and "time: training" in printed
    for name in ("infoplane.png", "loss.png", "mi_epoch.png", "summary.json", "infoplane.npz"):
        assert (out / name).stat().st_size > 0
    with np.load(out / "infoplane.npz") as z:
        i_xt, i_ty = z["i_xt_SxExL"], z["i_ty_SxExL"]
    assert i_xt.shape == (2, 45, 6)
    # 10 tanh units binned in 30 bins keep all 4096 inputs apart: I(X;T_1) = 12 bits (to a few collisions)
    assert np.all(i_xt[:, :, 0] > 11.9) and np.all(i_xt <= 12.0 + 1e-5)
    assert np.all(i_ty <= 1.0 + 1e-5) and np.all(i_ty >= -1e-6)
    assert json.loads((out / "summary.json").read_text())["final_test_acc"][0] > 0.8
    # rerun: the finished run directories are reused, not retrained
    again = tishby.main(["--quick", "--out", str(out), "--seeds", "2"])
    assert again["train_seconds"] == 0.0
    with np.load(out / "infoplane.npz") as z:
        np.testing.assert_array_equal(z["i_xt_SxExL"], i_xt)


def test_benchmark_training_quick(tmp_path):
    res = benchmark_training.main(["--quick", "--out", str(tmp_path)])
    assert res["training"][0]["epochs_per_second"] > 0 and res["checkpoints"]["load_seconds"] > 0
    assert (tmp_path / "training_quick.json").is_file()
