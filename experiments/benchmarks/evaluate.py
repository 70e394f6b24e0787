"""End-to-end evaluation speed on the default Tishby run, and epoch skipping.

    python -m experiments.tishby                        # makes results/tishby/runs/seed_0 first
    python -m experiments.benchmarks.evaluate           # binning, KDE, loop baseline, delta-skip
    python -m experiments.benchmarks.evaluate --quick   # a tiny freshly trained run (CI)

Times ``python -m ibjax.evaluate RUN_DIR`` (load, compile and estimate, all 274 epochs x 6 layers)
for binning and KDE (upper and lower, I(X;T) and I(T;Y)); times a per-epoch, per-layer Python loop
calling the same public estimator on a sample of epochs and extrapolates it; runs both delta-skip
strategies with the full evaluation for comparison, and times each (cold and warm, in this process)
against evaluating every kept epoch. ``JAX_NUM_CPU_DEVICES=1`` measures one device. Writes
results/benchmarks/evaluate.json (evaluate_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from ibjax import checkpoints, evaluate, io, runs
from ibjax.config import DataConfig, MLPConfig, RunConfig, TrainConfig
from ibjax.estimators import binning, kde

# the --quick run: a 12-6-4-2 net, 30 epochs, every epoch kept
QUICK_RUN = RunConfig(
    model=MLPConfig(widths=(12, 6, 4, 2)),
    data=DataConfig(name="szt_12bit"),
    train=TrainConfig(n_epochs=30, schedule="all"),
)


def quick_run(root: Path) -> Path:
    """A tiny freshly trained run directory under ``root`` (reused when it is already there)."""
    return runs.train_or_reuse(QUICK_RUN, [0], root, log=lambda *_: None)[0]


def timed_cli(args) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = evaluate.main(args)
    return time.perf_counter() - t0, out


def loop_baseline(run_dir: Path, name: str, n_sample: int) -> dict:
    """Seconds per (epoch, layer) of a Python loop over epochs and layers calling the estimator."""
    run = checkpoints.load_run(run_dir)
    cfg = RunConfig.from_dict(run.config)
    ds = runs.load_data(cfg)
    m = cfg.model.build()
    pick = np.linspace(0, len(run.epochs) - 1, n_sample).astype(int)
    fn = {
        "binning": lambda t: binning.info_plane(t, ds.y, n_bins=30),
        "kde": lambda t: (kde.info_plane(t, ds.y, 0.1, bound="upper"), kde.info_plane(t, ds.y, 0.1, bound="lower")),
    }[name]
    apply = jax.jit(m.apply)
    p0 = jax.tree.map(lambda a: a[0], run.params)
    acts = apply(p0, ds.x)[1]
    [jax.block_until_ready(fn(a)) for a in acts]  # compile each layer shape once, untimed
    t0 = time.perf_counter()
    for i in pick:
        for a in apply(jax.tree.map(lambda v: v[i], run.params), ds.x)[1]:
            jax.block_until_ready(fn(a))
    return dict(seconds_per_epoch_layer=(time.perf_counter() - t0) / (len(pick) * len(acts)), sampled_epochs=len(pick))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run-dir", default="results/tishby/runs/seed_0", help="run directory (default: the tishby run)")
    p.add_argument("--quick", action="store_true", help="a tiny freshly trained run (CI)")
    p.add_argument("--delta", type=float, default=0.02, help="delta for the skipping strategies (default 0.02)")
    p.add_argument("--out", default="results/benchmarks", help="output directory (default results/benchmarks)")
    a = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="ibjax_bench_"))
    try:
        return run(a, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(a, tmp: Path) -> dict:
    run_dir = Path(a.run_dir)
    if a.quick:
        run_dir = quick_run(tmp / "runs")
    elif not (run_dir / "config.json").is_file():
        raise SystemExit(f"{run_dir} is not a run directory: run `python -m experiments.tishby` first")
    n_epochs = len(checkpoints.kept_epochs(run_dir))
    result = dict(run_dir=str(run_dir), n_epochs=n_epochs, backend=jax.default_backend(), quick=a.quick)
    for name, extra in (("binning", ["--n-bins", "30"]), ("kde", ["--noise-var", "0.1"])):
        secs, plane = timed_cli([str(run_dir), "--estimator", name, *extra, "--out", str(tmp / name), "--recompute"])
        n_layers = plane.i_xt.shape[-1]  # S x E x L
        base = loop_baseline(run_dir, name, 3 if a.quick else 20)
        loop_total = base["seconds_per_epoch_layer"] * n_epochs * n_layers
        result[name] = dict(
            end_to_end_seconds=secs,
            n_layers=n_layers,
            per_epoch_layer_ms=1e3 * secs / (n_epochs * n_layers),
            loop_seconds_extrapolated=loop_total,
            loop_per_epoch_layer_ms=1e3 * base["seconds_per_epoch_layer"],
            speedup=loop_total / secs,
        )
        print(
            f"{name}: {secs:.1f} s end to end for {n_epochs} x {n_layers}; per-epoch loop ~{loop_total:.1f} s "
            f"-> {loop_total / secs:.1f}x"
        )
    base = [str(run_dir), "--estimator", "binning", "--n-bins", "30"]
    n_times = 1 if a.quick else 2  # cold, then warm (--quick: one call, its time stands for both)
    times = [timed_cli([*base, "--out", str(tmp / f"all{i}"), "--recompute"])[0] for i in range(n_times)]
    full_cold, full_warm = times[0], times[-1]
    result["all_epochs_binning"] = dict(seconds_cold=full_cold, seconds_warm=full_warm)
    for how in ("exact", "approx"):  # timed without --compare-full (its extra full evaluation is not the strategy's)
        spec = ["--epochs", f"delta:{a.delta}:{how}"]
        times = [timed_cli([*base, *spec, "--out", str(tmp / f"{how}{i}")])[0] for i in range(n_times)]
        cold, warm = times[0], times[-1]
        result[f"delta_skip_{how}_seconds"] = dict(
            seconds_cold=cold, seconds_warm=warm, warm_over_all_epochs_warm=warm / full_warm
        )
        print(f"delta-skip {how} (delta {a.delta}): {warm:.2f} s warm against {full_warm:.2f} s for every epoch")
    for how in ("exact", "approx"):
        evaluate.main(
            [
                str(run_dir),
                "--estimator",
                "binning",
                "--epochs",
                f"delta:{a.delta}:{how}",
                "--compare-full",
                "--out",
                str(tmp / how),
            ]
        )
        rep = json.loads((tmp / how / "skipping_binning.json").read_text())
        result[f"delta_skip_{how}"] = {
            k: rep[k] for k in ("delta", "n_evaluated", "n_total", "n_rounds", "max_interp_error")
        }
    io.atomic_write_json(Path(a.out) / ("evaluate_quick.json" if a.quick else "evaluate.json"), result)
    return result


if __name__ == "__main__":
    main()
