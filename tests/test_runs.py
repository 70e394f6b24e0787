"""Training groups into run directories: reuse, retraining, run ids, and surviving kill -9."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ibjax import checkpoints, pipeline, runs
from ibjax.config import DataConfig, MLPConfig, RunConfig, TrainConfig

CFG = RunConfig(
    MLPConfig((12, 6, 4, 2)), DataConfig(name="var_u"), TrainConfig(n_epochs=24, schedule="every:6", learning_rate=0.01)
)
QUIET = lambda *_: None


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_reuse_retrain_and_changed_schedule(tmp_path):
    said = []
    dirs = runs.train_or_reuse(CFG, [0, 1], tmp_path, log=said.append)
    assert [d.name for d in dirs] == ["seed_0", "seed_1"] and any(s.startswith("trained 2 run(s)") for s in said)
    said.clear()
    assert runs.train_or_reuse(CFG, [0, 1], tmp_path, log=said.append) == dirs and said[0].startswith("reusing 2")
    # other epochs and schedule in the same directories: replaced whole, no stale params files, no crash
    longer = CFG.replace(**{"train.n_epochs": 30, "train.schedule": "every:10"})
    runs.train_or_reuse(longer, [0, 1], tmp_path, log=QUIET)
    assert checkpoints.kept_epochs(dirs[0]).tolist() == [0, 10, 20]
    runs.train_or_reuse(CFG, [0, 1], tmp_path, force=True, log=QUIET)
    assert checkpoints.kept_epochs(dirs[0]).tolist() == [0, 6, 12, 18]
    assert not [f for f in _files(tmp_path) if ".tmp" in f or ".old-" in f or f.startswith(".train-")]


def test_config_records_versions_and_vmapped_group(tmp_path):
    d = runs.train_or_reuse(CFG, [3], tmp_path, log=QUIET)[0]
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["seed"] == 3 and cfg["vmapped_runs"] == 1
    assert {"jax", "jaxlib", "flax", "optax", "numpy", "ibjax"} <= set(cfg["versions"])
    assert RunConfig.from_dict(cfg) == CFG


def test_seed_trained_alone_and_beside_others_are_different_runs(tmp_path):
    """Regression: seed 0 trained alone and beside another seed differ at 1e-7 but shared a run id,
    so cached results could be served for a different training."""
    alone = runs.train_or_reuse(CFG, [0], tmp_path / "a", log=QUIET)[0]
    pair = runs.train_or_reuse(CFG, [0, 1], tmp_path / "b", log=QUIET)[0]
    id_alone, id_pair = (checkpoints.read_config(d)["run_id"] for d in (alone, pair))
    assert id_alone != id_pair
    shared_out = tmp_path / "eval"
    p1 = pipeline.evaluate_runs([alone], "binning", out=shared_out, progress=False, log=QUIET)
    said = []
    p2 = pipeline.evaluate_runs([pair], "binning", out=shared_out, progress=False, log=said.append)
    assert said and said[0].startswith("recomputing") and p2.run_ids != p1.run_ids


def test_sweep_grid_gets_one_directory_per_setting_and_seed(tmp_path):
    dirs = runs.train_or_reuse(CFG, [0, 1], tmp_path, sweep={"train.learning_rate": [0.01, 0.03]}, log=QUIET)
    assert [str(d.relative_to(tmp_path)) for d in dirs] == [
        "learning_rate=0.01/seed_0",
        "learning_rate=0.01/seed_1",
        "learning_rate=0.03/seed_0",
        "learning_rate=0.03/seed_1",
    ]
    lrs = [checkpoints.read_config(d)["train"]["learning_rate"] for d in dirs]
    assert lrs == [0.01, 0.01, 0.03, 0.03]
    with pytest.raises(ValueError, match="sweep setting 'train.batch_size' cannot be an array axis"):
        runs.train_or_reuse(CFG, [0], tmp_path, sweep={"train.batch_size": [64, 128]}, log=QUIET)
    with pytest.raises(ValueError, match="must be a number, got '1e-3'"):
        runs.train_or_reuse(CFG, [0], tmp_path, sweep={"train.learning_rate": ["1e-3"]}, log=QUIET)
    with pytest.raises(ValueError, match="seeds must be distinct"):
        runs.train_or_reuse(CFG, [0, 0], tmp_path, log=QUIET)


# ---------------------------------------------------------------- kill -9


SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from ibjax import io, runs, pipeline
    from ibjax.config import DataConfig, MLPConfig, RunConfig, TrainConfig
    cfg = RunConfig(MLPConfig((12, 6, 4, 2)), DataConfig(name="var_u"),
                    TrainConfig(n_epochs=60, schedule="every:5", learning_rate=0.01))
    root, what, after = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    count = [0]
    def killer(real):
        def wrapped(*a, **k):
            out = real(*a, **k)
            count[0] += 1
            if count[0] == after:
                os.kill(os.getpid(), signal.SIGKILL)
            return out
        return wrapped
    if what == "state":
        runs._save_state = killer(runs._save_state)
    elif what == "write":
        io.atomic_save_npz = killer(io.atomic_save_npz)
    dirs = runs.train_or_reuse(cfg, [0, 1], root / "runs", save_every=10, log=print)
    if what == "eval":
        io.atomic_save_npz = killer(io.atomic_save_npz)
    pipeline.evaluate_runs(dirs, "kde", out=root / "eval", memory_gb=0.04, progress=False)
    print("done")
""")


def _run(root, what="none", after=0):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, str(root), what, str(after)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("clean")
    proc = _run(root)
    assert proc.returncode == 0 and "done" in proc.stdout, proc.stderr[-2000:]
    return root


@pytest.mark.parametrize("what,after", [("state", 2), ("write", 5), ("eval", 2)])
def test_kill_9_then_rerun_finishes_bit_identical(uninterrupted, tmp_path, what, after):
    proc = _run(tmp_path, what, after)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr[-2000:])
    again = _run(tmp_path)
    assert again.returncode == 0 and "done" in again.stdout, again.stderr[-2000:]
    if what == "state":
        assert "resuming training at epoch 20" in again.stdout
    for seed in (0, 1):
        a = checkpoints.load_run(uninterrupted / "runs" / f"seed_{seed}")
        b = checkpoints.load_run(tmp_path / "runs" / f"seed_{seed}")
        assert a.config["run_id"] == b.config["run_id"]
        for (pa, la), (_pb, lb) in zip(_leaves(a.params), _leaves(b.params)):
            np.testing.assert_array_equal(la, lb, err_msg=pa)
        for k in a.metrics:
            np.testing.assert_array_equal(a.metrics[k], b.metrics[k], err_msg=k)
    want = pipeline.InfoPlane.load(uninterrupted / "eval" / "infoplane_kde.npz")
    got = pipeline.InfoPlane.load(tmp_path / "eval" / "infoplane_kde.npz")
    for k in want.values:
        np.testing.assert_array_equal(got.values[k], want.values[k])
    left = [
        f
        for f in _files(tmp_path)
        if f.endswith(".tmp") or ".tmp-" in f or ".old-" in f or "/.train-" in f or f.startswith("runs/.train-")
    ]
    assert not left, left


def _leaves(tree, prefix=""):
    for k in sorted(tree):
        if isinstance(tree[k], dict):
            yield from _leaves(tree[k], f"{prefix}{k}/")
        else:
            yield f"{prefix}{k}", tree[k]
