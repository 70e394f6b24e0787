"""End to end: the same run as an ibjax run directory and as an orbax CheckpointManager directory.

    python -m experiments.benchmarks.checkpoints            # the default tishby run, 274 kept epochs
    python -m experiments.benchmarks.checkpoints --quick    # a 30-epoch run (a smoke test)

Trains one seed of the default 12-10-7-5-4-3-2 tanh network (or reuses results/tishby/runs/seed_0),
writes its kept epochs as orbax steps ({"params", "opt_state" (Adam moments, zeros), "step"}, one
step per epoch, as a user's CheckpointManager loop would), then times ``python -m ibjax.evaluate``
in fresh processes (start, imports, load, compile, estimate) on each, binning and KDE, best of
``--repeats``; checks the planes are equal. Writes results/benchmarks/checkpoints.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ibjax import checkpoints, io, models, runs
from ibjax.config import DataConfig, MLPConfig, RunConfig, TrainConfig
from ibjax.result import InfoPlane

TISHBY = RunConfig(MLPConfig(), DataConfig(name="szt_12bit"), TrainConfig())
QUICK = RunConfig(MLPConfig((12, 6, 4, 2)), DataConfig(name="szt_12bit"), TrainConfig(n_epochs=30, schedule="all"))
ESTIMATORS = {"binning": ["--n-bins", "30"], "kde": ["--noise-var", "0.1"]}


def make_model():
    """The --model factory: the run's network (the orbax steps hold its params)."""
    return models.mlp(_widths())


def _widths():
    return tuple(int(w) for w in os.environ.get("IBJAX_BENCH_WIDTHS", "12,10,7,5,4,3,2").split(","))


def write_orbax(run_dir: Path, out: Path) -> float:
    """Every kept epoch of the run as one orbax step; returns the seconds it took."""
    import jax
    import orbax.checkpoint as ocp

    run = checkpoints.load_run(run_dir)
    t0 = time.perf_counter()
    with ocp.CheckpointManager(out.resolve()) as mngr:
        for i, e in enumerate(run.epochs):
            p = jax.tree.map(lambda a: a[i], run.params)
            zeros = jax.tree.map(np.zeros_like, p)
            mngr.save(
                int(e),
                args=ocp.args.StandardSave({"params": p, "opt_state": {"mu": zeros, "nu": zeros}, "step": int(e)}),
            )
        mngr.wait_until_finished()
    return time.perf_counter() - t0


def timed(args: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ibjax.evaluate", *args], check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run-dir", default="results/tishby/runs/seed_0", help="reused when it holds the default run")
    p.add_argument("--quick", action="store_true", help="a 30-epoch 12-6-4-2 run (smoke test)")
    p.add_argument("--repeats", type=int, default=2, help="timed runs of each command (best kept, default 2)")
    p.add_argument("--out", default="results/benchmarks", help="output directory (default results/benchmarks)")
    a = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="ibjax_ckpt_bench_"))
    try:
        return run(a, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(a, tmp: Path) -> dict:
    cfg = QUICK if a.quick else TISHBY
    run_dir = Path(a.run_dir)
    if a.quick or not checkpoints.is_complete(run_dir):
        run_dir = runs.train_or_reuse(cfg, [0], tmp / "runs", log=lambda *_: None)[0]
    n_epochs = len(checkpoints.kept_epochs(run_dir))
    data_name = checkpoints.read_config(run_dir)["data"]["name"]  # szt_12bit resolves to what was found
    write_seconds = write_orbax(run_dir, tmp / "orbax")
    env = dict(
        os.environ,
        IBJAX_BENCH_WIDTHS=",".join(map(str, cfg.model.widths)),
        PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]),
    )
    result = {
        "quick": a.quick,
        "n_epochs": n_epochs,
        "data": data_name,
        "widths": list(cfg.model.widths),
        "orbax_write_seconds": write_seconds,
        "load_average": os.getloadavg(),
        "cpu_count": os.cpu_count(),
        "repeats": a.repeats,
    }
    for name, opts in ESTIMATORS.items():
        rows = {}
        for kind, path, extra in (
            ("run_dir", run_dir, []),
            ("orbax", tmp / "orbax", ["--model", "experiments.benchmarks.checkpoints:make_model", "--data", data_name]),
        ):
            out = tmp / f"{kind}_{name}"
            args = [str(path), "--estimator", name, *opts, *extra, "--out", str(out), "--recompute"]
            rows[kind] = min(timed(args, env) for _ in range(a.repeats))
            rows[f"{kind}_plane"] = InfoPlane.load(out / f"infoplane_{name}.npz")
        equal = all(
            np.array_equal(rows["run_dir_plane"].values[k], rows["orbax_plane"].values[k])
            for k in rows["run_dir_plane"].values
        )
        result[name] = {
            "run_dir_seconds": rows["run_dir"],
            "orbax_seconds": rows["orbax"],
            "ratio": rows["orbax"] / rows["run_dir"],
            "equal_values": equal,
        }
        print(
            f"{name}: run directory {rows['run_dir']:.2f} s, orbax {rows['orbax']:.2f} s "
            f"({rows['orbax'] / rows['run_dir']:.2f}x), equal values: {equal}"
        )
    result["load_average_after"] = os.getloadavg()
    path = Path(a.out) / ("checkpoints_quick.json" if a.quick else "checkpoints.json")
    io.atomic_write_json(path, result)
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
