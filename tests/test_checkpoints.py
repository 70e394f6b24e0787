import json

import jax
import numpy as np
import pytest

from ibjax import checkpoints, data, io, runs
from ibjax.train import TrainConfig

CFG = {"train": {"n_epochs": 3}, "seed": 0}


def fake_params(e=4):
    rng = np.random.default_rng(0)
    return {"Dense_0": {"kernel": rng.normal(size=(e, 3, 2)).astype(np.float32), "bias": np.zeros((e, 2), np.float32)},
            "Dense_1": {"kernel": rng.normal(size=(e, 2, 2)).astype(np.float32), "bias": np.ones((e, 2), np.float32)}}


def test_round_trip(tmp_path):
    p = fake_params()
    cfg = checkpoints.write_run(tmp_path, CFG, [0, 1, 5, 9], p, {"train_loss": np.arange(10.0)})
    assert checkpoints.is_complete(tmp_path, CFG) and cfg["run_id"] == checkpoints.run_id(CFG)
    run = checkpoints.load_run(tmp_path)
    np.testing.assert_array_equal(run.epochs, [0, 1, 5, 9])
    jax.tree.map(np.testing.assert_array_equal, run.params, p)
    np.testing.assert_array_equal(run.metrics["train_loss"], np.arange(10.0))
    sub = checkpoints.load_run(tmp_path, epochs=[9, 1])
    np.testing.assert_array_equal(sub.params["Dense_0"]["kernel"], p["Dense_0"]["kernel"][[1, 3]])
    with np.load(checkpoints.epoch_path(tmp_path, 5)) as z:  # readable with numpy alone, '/'-joined names
        assert {"Dense_0/kernel", "Dense_1/bias"} <= set(z.files)
    assert json.loads((tmp_path / "config.json").read_text())["ibjax_version"]


def test_errors_name_the_problem(tmp_path):
    checkpoints.write_run(tmp_path, CFG, [0, 1, 5, 9], fake_params(), {})
    with pytest.raises(ValueError, match=r"epochs \[2\] were not kept"):
        checkpoints.load_run(tmp_path, epochs=[1, 2])
    path = checkpoints.epoch_path(tmp_path, 5)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(ValueError, match="epoch_000005.npz: corrupt or truncated"):
        checkpoints.load_run(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        checkpoints.load_run(tmp_path / "params")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        checkpoints.load_run(tmp_path / "nowhere")


def test_file_from_another_run_is_refused(tmp_path):
    checkpoints.write_run(tmp_path / "a", CFG, [0, 1], fake_params(2), {})
    checkpoints.write_run(tmp_path / "b", {**CFG, "seed": 1}, [0, 1], fake_params(2), {})
    src = checkpoints.epoch_path(tmp_path / "b", 1)
    checkpoints.epoch_path(tmp_path / "a", 1).write_bytes(src.read_bytes())
    with pytest.raises(ValueError, match="different run"):
        checkpoints.load_run(tmp_path / "a")
    checkpoints.epoch_path(tmp_path / "a", 0).rename(checkpoints.epoch_path(tmp_path / "a", 7))
    with pytest.raises(ValueError, match="does not hold epoch 7"):
        checkpoints.load_run(tmp_path / "a", epochs=[7])


def test_interrupted_write_leaves_only_loadable_files(tmp_path, monkeypatch):
    real = io.atomic_write_bytes
    calls = {"n": 0}

    def dying(path, data):  # the 4th file write is killed half way through the temporary file
        calls["n"] += 1
        if calls["n"] == 4:
            (path.parent / f".{path.name}.partial.tmp").write_bytes(data[: len(data) // 2])
            raise KeyboardInterrupt
        real(path, data)

    monkeypatch.setattr(io, "atomic_write_bytes", dying)
    with pytest.raises(KeyboardInterrupt):
        checkpoints.write_run(tmp_path, CFG, [0, 1, 5, 9], fake_params(), {})
    monkeypatch.setattr(io, "atomic_write_bytes", real)
    assert not checkpoints.is_complete(tmp_path)
    done = checkpoints.kept_epochs(tmp_path)
    np.testing.assert_array_equal(done, [0, 1])  # config + 2 params files completed
    run = checkpoints.load_run(tmp_path)
    np.testing.assert_array_equal(run.params["Dense_0"]["kernel"], fake_params()["Dense_0"]["kernel"][:2])


def test_rerun_after_interruption_retrains_and_completes(tmp_path, shared_dir, monkeypatch):
    ds = data.var_u(shared_dir / "data" / "var_u.mat")
    cfg = TrainConfig(widths=(12, 4, 2), n_epochs=4, schedule="all", batch_size=1024)
    real = io.atomic_save_npz
    calls = {"n": 0}

    def dying(path, arrays):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        real(path, arrays)

    monkeypatch.setattr(io, "atomic_save_npz", dying)
    with pytest.raises(KeyboardInterrupt):
        runs.train_and_save(cfg, ds, "random", 0, [0], tmp_path, log=lambda *_: None)
    monkeypatch.setattr(io, "atomic_save_npz", real)
    run_dir = tmp_path / "seed_0"
    assert not checkpoints.is_complete(run_dir)
    partial = checkpoints.load_run(run_dir)
    dirs, secs = runs.train_and_save(cfg, ds, "random", 0, [0], tmp_path, log=lambda *_: None)
    assert secs > 0 and checkpoints.is_complete(dirs[0])
    full = checkpoints.load_run(dirs[0])
    np.testing.assert_array_equal(full.epochs, [0, 1, 2, 3])
    np.testing.assert_array_equal(full.params["Dense_0"]["kernel"][:2], partial.params["Dense_0"]["kernel"])
    msgs = []
    _, secs = runs.train_and_save(cfg, ds, "random", 0, [0], tmp_path, log=msgs.append)
    assert secs == 0.0 and "reusing" in msgs[0]
